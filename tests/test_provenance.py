"""benchmarks/provenance.py: the commit a result came from, also in a copy without its .git."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import provenance


def test_commit_of_the_checkout() -> None:
    line = provenance.git_commit(Path(__file__).parent)
    assert line.startswith("git ") and line != "git commit unknown"


def test_copy_without_git_names_the_commit_its_launcher_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIT_CEILING_DIRECTORIES stops git from finding a repository above tmp_path.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv(provenance.COMMIT_ENV, raising=False)
    assert provenance.git_commit(tmp_path) == "git commit unknown"
    monkeypatch.setenv(provenance.COMMIT_ENV, "abc1234")
    assert provenance.git_commit(tmp_path) == f"git abc1234 (from {provenance.COMMIT_ENV})"
