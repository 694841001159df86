"""The README's quick start runs as printed, its commands are shown, and no table is stale."""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any

import pytest

from benchmarks import readme_tables


ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.M | re.S)


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_quick_start_runs_and_warm_starts_from_the_old_study(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (code,) = _blocks(_section(README.read_text(encoding="utf-8"), "Quick start"), "python")
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md quick start", "exec"), namespace)

    old, study = namespace["old"], namespace["study"]
    # Zero-shot: the first new trial is last time's best configuration.
    assert study.trials[0].params == old.best_params
    assert study.best_value <= study.trials[0].value
    weights = study.sampler.get_source_weights(study)
    assert weights and all(set(w) == {"last-time", "target"} for w in weights.values())
    out = capsys.readouterr().out
    assert "best after 20 trials:" in out and "last-time" in out


def test_main_job_and_test_command_are_shown_as_commands() -> None:
    commands = "\n".join(_blocks(README.read_text(encoding="utf-8"), "bash")).splitlines()
    assert "bash benchmarks/run.sh" in commands
    assert "bash tests/run.sh" in commands


def test_readme_sections_others_rely_on_are_there() -> None:
    text = README.read_text(encoding="utf-8")
    for heading in (
        "Install",
        "Quick start",
        "See what the sampler believed",
        "Search-space changes and source hygiene",
        "Failure handling",
    ):
        assert f"\n## {heading}\n" in text, heading
    # The hygiene table that the samplers' docstrings point to.
    assert "| PRUNED trial |" in _section(text, "Search-space changes and source hygiene")


@pytest.mark.parametrize("readme", readme_tables.READMES, ids=lambda p: p.name)
def test_generated_tables_match_the_files_the_scripts_wrote(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    assert "<!-- generated: " in text
    assert readme_tables.render(text) == text, (
        f"{readme.relative_to(ROOT)} is out of date: run python benchmarks/readme_tables.py"
    )


def test_generated_block_names_a_missing_section_clearly(tmp_path: Path) -> None:
    (tmp_path / "t.md").write_text("# T\n\n## A\n\nx\n", encoding="utf-8")
    text = "<!-- generated: t.md § B -->\n<!-- end generated -->"
    with pytest.raises(ValueError, match="t.md has no '## ' heading containing 'B'"):
        readme_tables.render(text, root=tmp_path)
    assert readme_tables.render(text.replace("§ B", "§ A"), root=tmp_path) == (
        "<!-- generated: t.md § A -->\n\n### A\n\nx\n\n<!-- end generated -->"
    )


def test_a_generated_block_left_open_is_refused_not_run_on(tmp_path: Path) -> None:
    # On main the block's pattern ran on to the next block's end marker and replaced the
    # hand-written text between them (149 lines of benchmarks/README.md in the probe).
    (tmp_path / "t.md").write_text("# T\n", encoding="utf-8")
    text = (
        "<!-- generated: t.md -->\nold\n"
        "Hand-written text.\n"
        "<!-- generated: t.md -->\nold\n<!-- end generated -->\n"
    )
    with pytest.raises(ValueError, match="opened at line 1 has no '<!-- end generated -->' "
                       "before the next block at line 4"):
        readme_tables.render(text, root=tmp_path)
    with pytest.raises(ValueError, match="line 1 ends a generated block that was never opened"):
        readme_tables.render("<!-- end generated -->\n", root=tmp_path)
    with pytest.raises(ValueError, match="opened at line 1 is never closed"):
        readme_tables.render("<!-- generated: t.md -->\nold\n", root=tmp_path)


def test_postgresql_urls_name_the_driver_the_dev_extra_installs() -> None:
    # On main one example said `postgresql://`, which SQLAlchemy 2.1 maps to psycopg 3: with
    # the psycopg2-binary the dev extra installs, the workers failed at their first connect.
    from sqlalchemy.engine import make_url

    urls = re.findall(r"postgresql[\w+]*://[^\s\"'`]+", README.read_text(encoding="utf-8"))
    assert len(urls) >= 2
    for url in urls:
        dialect = make_url(url).get_dialect()
        assert dialect.driver == "psycopg2", url
        dialect.import_dbapi()  # raises where the driver is not installed
