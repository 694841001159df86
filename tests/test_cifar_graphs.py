"""The CUDA-graph path of CifarFineTune: persistent models per shape, weights reloaded per trial.

A CPU cannot capture CUDA graphs, so most tests inject a capture function that does what a
capture does to the model without CUDA (it runs warm-up steps, which change the weights and
BatchNorm statistics) and check that the graph path trains exactly like the eager path, reuses
one model per shape and releases it on every exit. The last test captures for real when a GPU
is present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# From the `vision` extra, which the test command installs: missing means failing, not skipping.
from _cifar_support import CHEAP_PARAMS  # noqa: E402
from _cifar_support import one_torch_thread  # noqa: E402,F401
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
import pytest
import torch  # noqa: E402
from torch import nn  # noqa: E402

from optuna_transfer.objectives import CifarFineTune  # noqa: E402
from optuna_transfer.objectives import write_synthetic_cifar  # noqa: E402
from optuna_transfer.objectives._cifar_graphs import GraphCache  # noqa: E402
from optuna_transfer.objectives._cifar_graphs import GraphKey  # noqa: E402
from optuna_transfer.objectives._cifar_model import backbone_stages  # noqa: E402
from optuna_transfer.objectives._cifar_model import build_resnet18  # noqa: E402
from optuna_transfer.objectives._cifar_train import FastTrainer  # noqa: E402


PARAMS = CHEAP_PARAMS


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar(root, n_train=96, n_test=24, num_classes=10, seed=0)
    return root


class _WarmUpCapture:
    """Stands in for make_graphed_callables on a CPU: records what it was given and, like the
    real warm-up iterations, trains the model a little so that a missing reload shows."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, model: nn.Module, sample: torch.Tensor) -> nn.Module:
        stages = backbone_stages(model)
        self.calls.append({
            "shape": tuple(sample.shape),
            "requires_grad": sample.requires_grad,
            "training": model.training,
            "stage_modes": [all(m.training for m in stage) for stage in stages],
            "stage_grads": [
                all(p.requires_grad for m in stage for p in m.parameters()) for stage in stages
            ],
        })
        for _ in range(2):
            model(sample).sum().backward()  # updates BatchNorm running statistics
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.5)
        return model


def _objective(root: Path, capture: Any = None, **kwargs: Any) -> CifarFineTune:
    options: dict[str, Any] = {
        "epochs": 1, "device": "cpu", "weights": None, "val_fraction": 0.2, "resolution": 16,
        "lr_reference_batch": 16, "space": {"batch_size": CategoricalDistribution((16, 32))},
    }
    options.update(kwargs)
    objective = CifarFineTune("cifar10", root, **options)
    if capture is not None:
        objective._graphs = GraphCache(torch.device("cpu"), capture=capture)
    return objective


def _run(objective: CifarFineTune, number: int, **params: Any) -> tuple[float, float, Any]:
    trial = optuna.trial.FixedTrial({**PARAMS, **params}, number=number)
    value = objective(trial)
    return value, trial.user_attrs["test_accuracy"], trial.user_attrs


def _storage_of(model: nn.Module) -> list[int]:
    return [t.data_ptr() for t in model.state_dict().values()]


def test_graph_path_trains_like_eager_and_reuses_one_model_per_shape(data_root: Path) -> None:
    capture = _WarmUpCapture()
    graphed = _objective(data_root, capture)
    eager = _objective(data_root)
    assert eager._graphs is None and eager.cuda_graphs is False  # the CPU default

    cache = graphed._graphs
    assert cache is not None
    seen_storage = []
    for number in (0, 1):  # two trials, one shape: one capture
        value, test_acc, attrs = _run(graphed, number, lr=1e-3 * (number + 1))
        assert attrs["cuda_graph"] is True
        assert (value, test_acc) == _run(eager, number, lr=1e-3 * (number + 1))[:2]
        (entry,) = cache._entries.values()
        assert entry.model is not None and not entry.busy
        seen_storage.append(_storage_of(entry.model))
    assert cache.captures == 1 and len(capture.calls) == 1
    assert seen_storage[0] == seen_storage[1]  # the same tensors throughout
    assert capture.calls[0] == {
        "shape": (16, 3, 16, 16), "requires_grad": False, "training": True,
        "stage_modes": [True] * 4, "stage_grads": [True] * 4,
    }

    # Another frozen_stages is another graph: frozen stages are captured without gradients
    # and with their BatchNorm layers in eval mode.
    value, test_acc, _ = _run(graphed, 2, frozen_stages=2)
    assert (value, test_acc) == _run(eager, 2, frozen_stages=2)[:2]
    assert cache.captures == 2 and len(cache) == 2
    assert capture.calls[1]["stage_modes"] == [False, False, True, True]
    assert capture.calls[1]["stage_grads"] == [False, False, True, True]
    # Back to the first shape: no new capture, still the eager result.
    assert _run(graphed, 3)[:2] == _run(eager, 3)[:2]
    assert cache.captures == 2


def test_reload_restores_weights_and_batchnorm_statistics() -> None:
    cache = GraphCache(torch.device("cpu"), capture=_WarmUpCapture())
    key = GraphKey(num_classes=10, batch_size=4, resolution=16, frozen_stages=1)
    torch.manual_seed(0)
    fresh = build_resnet18(10, None)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with cache.model_for(key, fresh) as model:
        assert model is not None and model is not fresh
        for name, value in model.state_dict().items():
            assert torch.equal(value, before[name]), name
        model(torch.randn(4, 3, 16, 16)).sum().backward()  # a trial trains it
    for name, value in fresh.state_dict().items():  # the caller's model is left alone
        assert torch.equal(value, before[name]), name
    torch.manual_seed(1)
    other = build_resnet18(10, None)
    with cache.model_for(key, other) as again:
        assert again is model
        for name, value in again.state_dict().items():
            assert torch.equal(value, other.state_dict()[name]), name


def test_busy_shape_trains_eagerly_with_same_result(data_root: Path) -> None:
    # n_jobs > 1: a second trial of a shape that is in use must not share its model.
    graphed = _objective(data_root, _WarmUpCapture())
    cache = graphed._graphs
    assert cache is not None
    key = GraphKey(num_classes=10, batch_size=16, resolution=16, frozen_stages=0)
    with cache.model_for(key, build_resnet18(10, None)) as held:
        assert held is not None
        with cache.model_for(key, build_resnet18(10, None)) as second:
            assert second is None
        value, test_acc, attrs = _run(graphed, 0)
    assert attrs["cuda_graph"] is False
    assert (value, test_acc) == _run(_objective(data_root), 0)[:2]
    assert cache.captures == 1


def test_least_recently_used_shapes_are_dropped() -> None:
    cache = GraphCache(torch.device("cpu"), capture=lambda m, s: m, max_entries=2)
    keys = [GraphKey(10, 4, 16, frozen) for frozen in (0, 1, 2)]
    for key in (keys[0], keys[1], keys[0], keys[2]):
        with cache.model_for(key, build_resnet18(10, None)):
            pass
    assert list(cache._entries) == [keys[0], keys[2]]  # keys[1] was the least recently used
    assert cache.captures == 3
    with pytest.raises(ValueError, match="max_entries must be >= 1"):
        GraphCache(torch.device("cpu"), max_entries=0)


def test_pruned_and_failed_trials_release_their_model(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            return True

    graphed = _objective(data_root, _WarmUpCapture(), fixed=PARAMS, epochs=2, space=None)
    cache = graphed._graphs
    assert cache is not None
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    study.optimize(graphed, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert cache.captures == 1 and not any(e.busy for e in cache._entries.values())

    # Out of memory: the trial fails, the captured models are dropped to give the memory
    # back, and the next trial captures again.
    real_epoch = FastTrainer.train_epoch
    calls = []

    def oom_once(self: FastTrainer, epoch: int, max_steps: int | None = None) -> float:
        calls.append(epoch)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return real_epoch(self, epoch, max_steps)

    monkeypatch.setattr(FastTrainer, "train_epoch", oom_once)
    study = optuna.create_study(direction="maximize")
    study.optimize(graphed, n_trials=1)
    assert study.trials[0].state == TrialState.FAIL
    assert "GPU out of memory" in study.trials[0].user_attrs["fail_reason"]
    assert len(cache) == 0
    study.optimize(graphed, n_trials=1)
    assert study.trials[1].state == TrialState.COMPLETE
    assert cache.captures == 2 and len(cache) == 1


def test_failed_capture_leaves_nothing_behind(data_root: Path) -> None:
    attempts = []

    def capture(model: nn.Module, sample: torch.Tensor) -> nn.Module:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("CUDA error: out of memory")  # e.g. instantiating the graph
        return model

    graphed = _objective(data_root, capture, fixed=PARAMS, space=None)
    study = optuna.create_study(direction="maximize")
    study.optimize(graphed, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert graphed._graphs is not None and graphed._graphs.captures == 1


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="capturing CUDA graphs needs a CUDA GPU; benchmarks/gpu_check.py runs this path there",
)
def test_real_cuda_graphs_match_eager_training(data_root: Path) -> None:
    graphed = _objective(data_root, device="cuda", cuda_graphs=True)
    eager = _objective(data_root, device="cuda", cuda_graphs=False)
    for number in (0, 1):
        g_value, g_test, attrs = _run(graphed, number, augment_strength=0.0)
        e_value, e_test, _ = _run(eager, number, augment_strength=0.0)
        assert attrs["cuda_graph"] is True
        # bf16 and cuDNN's algorithm choice differ between runs; the results must agree
        # closely, not bit for bit.
        assert abs(g_value - e_value) <= 0.1 and abs(g_test - e_test) <= 0.1
    assert graphed._graphs is not None and graphed._graphs.captures == 1
