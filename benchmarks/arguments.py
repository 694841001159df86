"""Command-line argument types the benchmark scripts share: a bad value is refused by
argparse, naming the option, before any run starts (not a traceback after all of them)."""

from __future__ import annotations

import argparse
from pathlib import Path
import tempfile
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import optuna


def parse_seeds(text: str) -> list[int]:
    """``"10"`` -> seeds 0..9; ``"3,7,11"`` -> those seeds (each once, at least one)."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seeds (10: seeds 0-9) or a comma-separated list of seeds "
            f"(3,7,11), got {text!r}"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"needs at least one seed, got {text!r}")
    if len(set(seeds)) < len(seeds):
        # A seed fixes its source studies: counted twice, one seed would pass for two.
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        raise argparse.ArgumentTypeError(f"lists seed(s) {repeated} more than once")
    return seeds


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


_FOLDER_FIX = "give a folder that can be created and written to"
_FILE_FIX = "give a file in a folder that can be created and written to"


def _unwritable(folder: Path) -> str | None:
    """Why no file can be written in ``folder`` (made if missing), or None."""
    try:
        existing = next(f for f in (folder, *folder.parents) if f.exists() or f == f.parent)
        if existing.exists() and not existing.is_dir():
            # mkdir would say "File exists" or "Not a directory": name the file in the way.
            return f"{existing} is not a folder"
        folder.mkdir(parents=True, exist_ok=True)
        # Writing is the only test that holds for root, ACLs and read-only mounts alike.
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return err.strerror or str(err)
    return None


def check_output_folder(parser: argparse.ArgumentParser, folder: Path,
                        option: str = "--out") -> None:
    """Make ``folder``, or stop with a usage error naming ``option``: before the run, not
    with a traceback after it."""
    if (why := _unwritable(folder)) is not None:
        parser.error(f"{option} {folder}: cannot write there ({why}); {_FOLDER_FIX}")


def check_output_file(parser: argparse.ArgumentParser, path: Path | None,
                      option: str = "--out") -> None:
    """Stop with a usage error naming ``option`` unless ``path`` (if given) can be written."""
    if path is None:
        return
    why = "it is a folder" if path.is_dir() else _unwritable(path.parent)
    if why is not None:
        parser.error(f"{option} {path}: cannot write there ({why}); {_FILE_FIX}")


def open_storage(parser: argparse.ArgumentParser, url: str,
                 option: str = "--storage") -> optuna.storages.BaseStorage | None:
    """The Optuna storage at ``url`` (None for ``none``), or a usage error naming ``option``
    with the URL's password hidden."""
    # Imported here: the GPU check imports this module before it times optuna's import.
    import optuna

    from optuna_transfer import redact_url

    if url == "none":
        return None
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as err:  # noqa: BLE001 - a bad URL, driver or database: all the user's to fix
        lines = str(err).strip().splitlines() or [""]
        why = f"{type(err).__name__}: {lines[0]}".rstrip(": ")
        parser.error(f"{option} {redact_url(url)}: cannot open it ({why}); give an SQLAlchemy "
                     "database URL such as sqlite:///studies.db, or none")
