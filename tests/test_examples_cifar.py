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
        result = module.main(["--synthetic", "--fast"])
    finally:
        torch.set_num_threads(threads)  # --fast pins one thread for the whole process
    source, target = result["source"], result["target"]
    assert len(source) == 3 and len(target) == 3
    assert TrialState.COMPLETE in [t.state for t in target]

    # The source learned: its best validation accuracy is well above chance, not 0.
    chance = result["source_chance"]
    assert 0 < chance < 0.5
    source_values = [t.value for t in source if t.state == TrialState.COMPLETE]
    assert max(source_values) > 2 * chance
    # The target starts from it: its first trial is the source's best configuration.
    best_source = max(
        (t for t in source if t.state == TrialState.COMPLETE), key=lambda t: t.value
    )
    assert target[0].params == best_source.params
    assert target[0].value is not None and target[0].value > result["target_chance"]

    out = capsys.readouterr().out
    assert "source best val accuracy" in out and "pretrained CIFAR-100 checkpoint" in out
    assert "target best val accuracy" in out
    assert "chance" in out


def test_synthetic_cifar_can_label_a_few_classes_in_the_cifar100_format(tmp_path: Path) -> None:
    from optuna_transfer.objectives import write_synthetic_cifar
    from optuna_transfer.objectives._cifar_data import read_cifar

    write_synthetic_cifar(tmp_path, 60, 20, num_classes=100, seed=0, used_classes=10)
    data = read_cifar(tmp_path, "cifar100", download=False)
    assert data.num_classes == 100
    assert set(data.train_labels.tolist()) == set(range(10))
    assert set(data.test_labels.tolist()) <= set(range(10))

    with pytest.raises(ValueError, match=r"used_classes must be an int in \[1, num_classes=10\]"):
        write_synthetic_cifar(tmp_path / "x", 10, 10, num_classes=10, used_classes=11)
