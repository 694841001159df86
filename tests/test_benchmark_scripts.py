"""Every benchmark script runs both ways users run it: as a file and as a module."""

from __future__ import annotations

import os
from pathlib import Path
import subprocess
import sys

import pytest


ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(
    p.stem
    for p in (ROOT / "benchmarks").glob("*.py")
    if 'if __name__ == "__main__":' in p.read_text(encoding="utf-8")
)


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # Only the interpreter's own path: nothing may make the repository importable by accident.
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_scripts_with_a_main_are_found() -> None:
    assert {"cold_vs_warm", "headroom", "synthetic", "overhead", "cifar_throughput"} <= set(
        SCRIPTS
    )


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_as_a_file_from_any_directory(name: str, tmp_path: Path) -> None:
    result = _run([str(ROOT / "benchmarks" / f"{name}.py"), "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:"), result.stdout
    assert "ModuleNotFoundError" not in result.stderr


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_as_a_module_from_the_repository_root(name: str) -> None:
    result = _run(["-m", f"benchmarks.{name}", "--help"], cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:"), result.stdout


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        ("cold_vs_warm", ["--seeds", "3,3"]),
        ("cold_vs_warm", ["--seeds", ","]),
        ("cold_vs_warm", ["--n-trials", "0"]),
        ("headroom", ["--seeds", ","]),
        ("failures", ["--seeds", "0"]),
        ("synthetic", ["--n-trials", "-3"]),
        ("multiobjective", ["--n-trials", "0"]),
        ("overhead", ["--repeats", "0"]),
        ("scale", ["--n-trials", "0"]),
    ],
)
def test_a_count_or_seed_list_that_cannot_run_is_refused_up_front(
    module: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # On main these ran every job and then failed deep in numpy (IndexError, ZeroDivisionError),
    # or wrote tables of nan, or counted a repeated seed twice in the intervals.
    import importlib

    main = importlib.import_module(f"benchmarks.{module}").main
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_seed_lists_parse_as_documented() -> None:
    from benchmarks.arguments import parse_seeds

    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("3,7, 11,") == [3, 7, 11]


def _table_rows(text: str, header_start: str) -> list[list[str]]:
    """The cells of the markdown table whose header line starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith(header_start))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_failures_table_has_no_column_beyond_a_short_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # On main `--n-trials 5` gave a "regret at 10" column read at trial 5.
    from benchmarks import failures

    assert failures.main(["--seeds", "1", "--n-trials", "5", "--source-trials", "5"]) == 0
    header, _, *rows = _table_rows(capsys.readouterr().out, "| scenario |")
    assert header == ["scenario", "method", "FAIL of 5", "distinct configs of 5", "regret at 5"]
    assert rows and all(len(r) == len(header) and r[-1] for r in rows)


def test_conditional_table_has_a_row_per_scenario_sampling_and_method(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import conditional

    assert conditional.main(["--seeds", "2", "--n-trials", "12", "--source-trials", "8"]) == 0
    header, _, *rows = _table_rows(capsys.readouterr().out, "| scenario |")
    assert header == ["scenario", "sampling", "method", "regret at 10", "regret at 12"]
    assert {tuple(r[:3]) for r in rows} == {
        (s.name, sampling, method)
        for s in conditional.scenarios(0, 2)
        for sampling in ("joint", "group")
        for method in conditional.METHOD_NAMES
    }
    for row in rows:
        means = [float(cell.split()[0]) for cell in row[3:]]
        # The best value only improves with the budget, and none beats the optimum (0).
        assert 0 <= means[1] <= means[0], row


def test_synthetic_table_of_a_run_shorter_than_every_budget_shows_its_length(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # On main `--n-trials 3` printed a table with no budget column and empty cells.
    from benchmarks import synthetic

    synthetic.main(["--seeds", "1", "--n-trials", "3", "--kinds", "related", "--methods",
                    "tpe", "--workers", "1"])
    header, _, row = _table_rows(capsys.readouterr().out, "| method |")
    assert header == ["method", "3"]
    mean, median = row[1].split()
    assert row[0] == "tpe" and float(mean) >= 0.0 and median == f"({float(mean):.4f})"


_QUICK = ["--seeds", "1", "--n-trials", "2", "--source-trials", "2"]
_FOLDER_FIX = "give a folder that can be created and written to"
_FILE_FIX = "give a file in a folder that can be created and written to"


def _refused(module: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error ``module`` exits with, having run nothing."""
    import importlib

    main = importlib.import_module(f"benchmarks.{module}").main
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "|" not in captured.out  # no table printed
    return captured.err.strip().splitlines()[-1]


def test_a_storage_url_that_cannot_open_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # On main: sqlalchemy's NoSuchModuleError traceback.
    fix = "give an SQLAlchemy database URL such as sqlite:///studies.db, or none"
    for module, argv in (
        ("cold_vs_warm", [*_QUICK, "--methods", "tpe", "--workers", "1"]),
        ("headroom", ["--seeds", "1", "--source-trials", "2"]),
    ):
        line = _refused(module, [*argv, "--storage", "nonsense://u:secret@x",
                                 "--out", str(tmp_path / module)], capsys)
        assert line.startswith(f"python -m benchmarks.{module}: error: --storage "
                               "nonsense://u:***@x: cannot open it (")
        assert line.endswith(f"); {fix}")
    assert not (tmp_path / "cold_vs_warm" / "hpolib").exists()


def test_an_output_folder_that_cannot_be_written_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # On main: NotADirectoryError / OSError tracebacks from mkdir.
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    argv = [*_QUICK, "--methods", "tpe", "--workers", "1", "--storage", "none"]
    for out, reason in ((a_file / "sub", f"{a_file} is not a folder"),
                        (tmp_path / ("x" * 300), "File name too long")):
        line = _refused("cold_vs_warm", [*argv, "--out", str(out)], capsys)
        assert line == (f"python -m benchmarks.cold_vs_warm: error: --out {out}: cannot write "
                        f"there ({reason}); {_FOLDER_FIX}")


def test_a_read_only_output_folder_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder the process may not write in (mode 0o555 for a user; a read-only mount, which
    # stops root as well): the check's test write fails as the operating system fails it.
    ro = tmp_path / "ro"
    ro.mkdir()

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("benchmarks.arguments.tempfile.TemporaryFile", denied)
    line = _refused("cold_vs_warm", [*_QUICK, "--storage", "none", "--out", str(ro)], capsys)
    assert line.endswith(f"--out {ro}: cannot write there (Permission denied); {_FOLDER_FIX}")


@pytest.mark.parametrize(("module", "argv"), [
    ("failures", _QUICK),
    ("headroom", ["--seeds", "1", "--source-trials", "2"]),
    ("scorecard", ["results-that-do-not-exist"]),
])
def test_an_output_file_that_cannot_be_written_is_refused_before_the_run(
    module: str, argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # On main the whole run went first, then the write failed with a traceback.
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    out = a_file / "table.md"
    line = _refused(module, [*argv, "--out", str(out)], capsys)
    assert line == (f"python -m benchmarks.{module}: error: --out {out}: cannot write there "
                    f"({a_file} is not a folder); {_FILE_FIX}")
    line = _refused(module, [*argv, "--out", str(tmp_path)], capsys)
    assert line.endswith(f"--out {tmp_path}: cannot write there (it is a folder); {_FILE_FIX}")


def test_run_sh_prints_the_paths_it_wrote(tmp_path: Path) -> None:
    # On main run.sh echoed results/quick/hpolib/... and studies.db whatever the options:
    # with --suites nb201 --storage none none of them existed.
    (tmp_path / "benchmarks").mkdir()
    script = tmp_path / "benchmarks" / "run.sh"
    script.write_text((ROOT / "benchmarks" / "run.sh").read_text())
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    # A stand-in venv: pip is already done; the benchmark runs from this checkout.
    python.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = pip ]; then exit 0; fi\n'
        f'PYTHONPATH="{ROOT}" exec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)
    argv = ["bash", str(script), "--suites", "nb201", "--seeds", "1", "--n-trials", "2",
            "--source-trials", "2", "--methods", "tpe", "--workers", "1", "--bootstrap", "5"]
    done = subprocess.run([*argv, "--storage", "none"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    suite = Path("results/quick/nb201")
    assert done.stdout.strip().splitlines()[-1] == (
        f"nb201: table {suite / 'table.md'}, plot {suite / 'regret.png'}, "
        f"curves {suite / 'curves.json'}"
    )
    assert all((tmp_path / suite / name).is_file()
               for name in ("table.md", "regret.png", "curves.json"))
    assert "hpolib" not in done.stdout and "studies" not in done.stdout
    # With the default storage: the database it wrote, and how to open it.
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    db = (tmp_path / "results" / "quick" / "studies.db").resolve()
    assert db.is_file()
    assert done.stdout.strip().splitlines()[-1] == (
        f"studies: sqlite:///{db} (optuna-dashboard sqlite:///{db})")
