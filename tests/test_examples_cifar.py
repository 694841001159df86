"""The CIFAR transfer example runs end to end in its fast synthetic mode."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from optuna.trial import TrialState
import pytest

# torch and torchvision come with the `vision` extra that the test command installs; a missing
# one must fail here rather than skip the example silently.
import torch  # noqa: E402, F401
import torchvision  # noqa: E402, F401


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cifar10_transfer.py"


def test_cifar10_transfer_example_fast(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("cifar10_transfer", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    threads = torch.get_num_threads()
    try:
        trials = module.main(["--synthetic", "--fast"])
    finally:
        torch.set_num_threads(threads)  # --fast pins one thread for the whole process
    states = [t.state for t in trials]
    assert len(states) == 3 and TrialState.COMPLETE in states
    out = capsys.readouterr().out
    assert "source best val accuracy" in out and "pretrained CIFAR-100 checkpoint" in out
    assert "target best val accuracy" in out
