"""Copy the generated result tables into the READMEs, so no number in them is typed by hand.

The benchmark scripts write their tables to ``benchmarks/figures/*.md``. A README shows one by
a pair of markers; everything between them is replaced by the file (or by one ``##`` section of
it), with its headings moved down to sit under the README's own ``##`` heading::

    <!-- generated: benchmarks/figures/hpolib_table.md -->
    <!-- end generated -->

    <!-- generated: benchmarks/figures/hpolib_table.md § Trials to a top-1% configuration -->
    <!-- end generated -->

Run from anywhere after copying a new table into ``benchmarks/figures/``::

    python benchmarks/readme_tables.py          # rewrite README.md and benchmarks/README.md
    python benchmarks/readme_tables.py --check  # exit 1 if either is out of date
"""

from __future__ import annotations

import argparse
from pathlib import Path
import re
import sys


ROOT = Path(__file__).resolve().parents[1]
READMES = (ROOT / "README.md", ROOT / "benchmarks" / "README.md")
_BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<path>[^ §]+?)(?: § (?P<section>[^>]+?))? -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- end generated -->)",
    re.DOTALL,
)


def _section(text: str, title: str, path: str) -> str:
    """The ``## title...`` section of ``text``, heading included, up to the next heading."""
    lines = text.splitlines(keepends=True)
    start = next(
        (i for i, line in enumerate(lines) if line.startswith("## ") and title in line), None
    )
    if start is None:
        raise ValueError(f"{path} has no '## ' heading containing {title!r}; fix the marker.")
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines)
    )
    return "".join(lines[start:end])


def _demote(text: str, levels: int) -> str:
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + levels) + " ", text, flags=re.M)


def check_markers(text: str, name: str = "README") -> None:
    """Raise a ValueError naming the line of a generated block that is never closed (or of an
    end marker with no block): the blocks' pattern would otherwise run on to the next block's
    end and replace the hand-written text between them."""
    opened: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("<!-- generated:"):
            if opened is not None:
                raise ValueError(
                    f"{name}: the generated block opened at line {opened} has no "
                    f"'<!-- end generated -->' before the next block at line {number}; add it."
                )
            opened = number
        elif line.startswith("<!-- end generated -->"):
            if opened is None:
                raise ValueError(
                    f"{name}: line {number} ends a generated block that was never opened; "
                    "remove it or add its '<!-- generated: path -->' marker."
                )
            opened = None
    if opened is not None:
        raise ValueError(
            f"{name}: the generated block opened at line {opened} is never closed; add "
            "'<!-- end generated -->' after it."
        )


def render(text: str, root: Path = ROOT) -> str:
    """``text`` with every generated block replaced by the current content of its file."""
    check_markers(text)

    def fill(match: re.Match[str]) -> str:
        path = match.group("path")
        source = root / path
        if not source.is_file():
            raise FileNotFoundError(f"README marker names {path}, which does not exist.")
        body = source.read_text(encoding="utf-8")
        # A whole file's "#" title sits under the README's "##" heading; a "##" section beside it.
        levels = 2
        if match.group("section"):
            body = _section(body, match.group("section"), path)
            levels = 1
        body = _demote(body, levels).strip("\n") + "\n"
        return match.group("open") + "\n" + body + "\n" + match.group("close")

    return _BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only report READMEs that are out of date"
    )
    args = parser.parse_args(argv)
    stale = []
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        try:
            new = render(text)
        except (ValueError, FileNotFoundError) as err:
            print(f"{readme.relative_to(ROOT)}: {err}", file=sys.stderr)
            return 2
        if new != text:
            stale.append(readme)
            if not args.check:
                readme.write_text(new, encoding="utf-8")
    for readme in stale:
        verb = "out of date" if args.check else "updated"
        print(f"{readme.relative_to(ROOT)}: {verb}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
