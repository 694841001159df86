"""The runnable examples in the public docstrings run and their assertions hold."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from optuna_transfer import redact_url
from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler


def _testcode_blocks(doc: str) -> list[str]:
    blocks = []
    for part in doc.split(".. testcode::")[1:]:
        lines = part.split("\n")[1:]
        first = next(s for s in lines if s.strip())
        indent = len(first) - len(first.lstrip())
        body = []
        for line in lines:
            if line.strip() and len(line) - len(line.lstrip()) < indent:
                break
            body.append(line)
        blocks.append(textwrap.dedent("\n".join(body)))
    return blocks


@pytest.mark.parametrize(
    "obj",
    [TransferTPESampler, TransferTPESampler.from_storage, WarmStartGridSampler, redact_url],
    ids=lambda o: o.__qualname__,
)
def test_docstring_example_runs(obj: Any) -> None:
    blocks = _testcode_blocks(obj.__doc__)
    assert blocks, f"{obj.__qualname__} has no runnable example"
    for code in blocks:
        exec(compile(code, obj.__qualname__, "exec"), {})
