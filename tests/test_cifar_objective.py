"""CifarFineTune on synthetic data: learning, Optuna citizenship, weights and devices (CPU)."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import math
import os
from pathlib import Path
import pickle
import re
import socket
import stat
import sys
import threading
import time
from typing import Any
import urllib.error
import urllib.request
import weakref

# From the `vision` extra, which the test command installs: missing means failing, not skipping.
from _cifar_support import CHEAP_PARAMS  # noqa: E402
from _cifar_support import one_torch_thread  # noqa: E402,F401
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
import pytest
import torch  # noqa: E402
import torchvision  # noqa: E402, F401

from optuna_transfer.objectives import _cifar_objective  # noqa: E402
from optuna_transfer.objectives import CifarFineTune  # noqa: E402
from optuna_transfer.objectives import CifarNotFoundError  # noqa: E402
from optuna_transfer.objectives import pretrain_checkpoint  # noqa: E402
from optuna_transfer.objectives import UnsafeCheckpointError  # noqa: E402
from optuna_transfer.objectives import WeightsUnavailableError  # noqa: E402
from optuna_transfer.objectives import write_synthetic_cifar  # noqa: E402
from optuna_transfer.objectives._cifar_augment import Augment  # noqa: E402
from optuna_transfer.objectives._cifar_augment import prepare_batch  # noqa: E402
from optuna_transfer.objectives._cifar_data import load_on_device  # noqa: E402
from optuna_transfer.objectives._cifar_data import read_cifar  # noqa: E402
from optuna_transfer.objectives._cifar_model import build_resnet18  # noqa: E402
from optuna_transfer.objectives._cifar_train import FastTrainer  # noqa: E402
from optuna_transfer.objectives._cifar_train import TrainConfig  # noqa: E402
from optuna_transfer.objectives._device import resolve_device  # noqa: E402


# The cheapest settings that still train every layer: 16 px, 8 steps of 16 images.
CHEAP = CHEAP_PARAMS


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar(root, n_train=160, n_test=40, num_classes=10, seed=0)
    return root


def _objective(root: Path, **kwargs: Any) -> CifarFineTune:
    # lr_reference_batch=16: CHEAP's lr reaches the optimizer unscaled at its batch of 16.
    options: dict[str, Any] = {
        "epochs": 1, "device": "cpu", "weights": None, "val_fraction": 0.2, "resolution": 16,
        "fixed": CHEAP, "lr_reference_batch": 16,
    }
    options.update(kwargs)
    return CifarFineTune("cifar10", root, **options)


def _study(**kwargs: Any) -> optuna.Study:
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0),
                               **kwargs)


def test_one_epoch_beats_chance(tmp_path: Path) -> None:
    # 256 training images, 8 steps at native 32 px: the class colours are learnt within one
    # epoch. Over data seeds 0-3 x objective seeds 0-1 validation accuracy (flip TTA on)
    # ranged 0.61-1.0 (0.72 for this seed); chance is 0.1, so 0.4 leaves room for numeric
    # differences.
    write_synthetic_cifar(tmp_path, n_train=320, n_test=100, seed=1)
    fixed = {**CHEAP, "batch_size": 32}
    study = _study()
    study.optimize(
        _objective(tmp_path, resolution=32, fixed=fixed, lr_reference_batch=32), n_trials=1
    )
    trial = study.trials[0]
    assert trial.state == TrialState.COMPLETE
    assert trial.value is not None and trial.value > 0.4
    assert trial.intermediate_values == {1: trial.value}
    assert trial.user_attrs["test_accuracy"] > 0.4


def test_trial_is_reproducible_on_cpu(data_root: Path) -> None:
    fixed = {k: v for k, v in CHEAP.items() if k not in ("lr", "augment_strength")}
    objective = _objective(data_root, fixed=fixed)
    params = {**CHEAP, "lr": 2e-3, "augment_strength": 1.0}
    runs = [optuna.trial.FixedTrial(params, number=3) for _ in range(2)]
    values = [objective(trial) for trial in runs]
    assert values[0] == values[1]
    assert runs[0].user_attrs["test_accuracy"] == runs[1].user_attrs["test_accuracy"]
    assert 0.0 <= values[0] <= 1.0


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_pruner_stops_trial(data_root: Path) -> None:
    study = _study(pruner=_AlwaysPrune())
    study.optimize(_objective(data_root, epochs=3), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]  # stopped after the first epoch
    assert "test_accuracy" not in trial.user_attrs


def test_nan_loss_prunes_with_reason(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def nan_loss(self: Any, logits: Any, target: Any) -> Any:
        return logits.sum() * float("nan")

    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", nan_loss)
    study = _study()
    study.optimize(_objective(data_root), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert "training loss became nan" in trial.user_attrs["prune_reason"]
    assert trial.intermediate_values == {}


def test_oom_fails_trial_and_study_continues(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_epoch = FastTrainer.train_epoch
    collected: list[int] = []
    seed_of: weakref.WeakKeyDictionary[FastTrainer, int] = weakref.WeakKeyDictionary()

    def oom_on_first_trial(self: FastTrainer, epoch: int, max_steps: int | None = None) -> float:
        if seed_of[self] == 0:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_epoch(self, epoch, max_steps)

    real_init = FastTrainer.__init__

    def init(self: FastTrainer, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        seed_of[self] = args[-1] if len(args) == 6 else kwargs["seed"]

    def collect() -> int:
        collected.append(1)
        return 0

    monkeypatch.setattr(FastTrainer, "__init__", init)
    monkeypatch.setattr(FastTrainer, "train_epoch", oom_on_first_trial)
    monkeypatch.setattr(_cifar_objective.gc, "collect", collect)
    study = _study()
    study.optimize(_objective(data_root), n_trials=2)  # no catch= needed
    first, second = study.trials
    assert first.state == TrialState.FAIL
    assert "CUDA out of memory" in first.user_attrs["fail_reason"]
    assert "batch_size=16" in first.user_attrs["fail_reason"]
    assert collected == [1]
    assert second.state == TrialState.COMPLETE


class _Recorder:
    """Stands in for FastTrainer to capture the config a trial trains with."""

    configs: list[Any] = []

    def __init__(self, model: Any, data: Any, train_idx: Any, config: Any, *args: Any) -> None:
        _Recorder.configs.append(config)

    def train_epoch(self, epoch: int) -> float:
        return 0.0

    def accuracy(self, indices: Any) -> float:
        return 0.5


def test_fixed_and_narrowed_values_are_used(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cifar_objective, "FastTrainer", _Recorder)
    _Recorder.configs = []
    objective = CifarFineTune(
        "cifar10", data_root, epochs=1, device="cpu", weights=None, resolution=16,
        fixed={"optimizer": "sgd", "batch_size": 16},
        space={
            "lr": FloatDistribution(1e-4, 1e-3, log=True),
            "frozen_stages": IntDistribution(2, 3),
        },
    )
    space = objective.search_space
    assert space["optimizer"] == CategoricalDistribution(("sgd",))
    assert space["momentum"] == FloatDistribution(0.0, 0.99)
    study = _study()
    study.optimize(objective, n_trials=8)
    for trial, config in zip(study.trials, _Recorder.configs, strict=True):
        assert trial.params["optimizer"] == config.optimizer == "sgd"
        assert trial.params["batch_size"] == config.batch_size == 16
        assert 1e-4 <= trial.params["lr"] <= 1e-3
        # lr is per 256 images (the default lr_reference_batch): batch 16 gets 1/16 of it.
        assert config.lr == pytest.approx(trial.params["lr"] * 16 / 256)
        assert trial.user_attrs["effective_lr"] == config.lr
        assert trial.params["frozen_stages"] == config.frozen_stages in (2, 3)
        assert trial.distributions["lr"] == FloatDistribution(1e-4, 1e-3, log=True)
    assert {c.frozen_stages for c in _Recorder.configs} == {2, 3}


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("label_smoothing", -0.5, "a number in [0, 0.2]"),
        ("warmup_fraction", 5, "a number in [0, 0.3]"),
        ("momentum", 1.5, "a number in [0, 0.99]"),
        ("lr", 0.5, "a number in [1e-05, 0.1]"),
        ("weight_decay", -1e-3, "a number in [1e-06, 0.01]"),  # Optuna refuses it (log scale)
        ("augment_strength", "0.5", "a number in [0, 1]"),
        ("frozen_stages", 7, "an integer in [0, 4]"),
        ("batch_size", 16, "one of (128, 256, 512, 1024)"),  # Optuna refuses it, unnamed
        ("optimizer", "rmsprop", "one of ('sgd', 'adam', 'adamw')"),
    ],
)
def test_enqueued_value_outside_the_space_fails_the_trial_naming_it(
    data_root: Path, name: str, value: Any, allowed: str
) -> None:
    # Optuna only warns about an enqueued value outside the distribution and returns it: on
    # main warmup_fraction=5 trained, momentum=1.5 failed inside torch.optim, and batch_size=16
    # failed with Optuna's message, which does not name the parameter.
    fixed = {k: v for k, v in CHEAP.items() if k != name}  # `name` keeps its default range
    study = _study()
    study.enqueue_trial({name: value})
    with pytest.raises(ValueError) as info:
        study.optimize(_objective(data_root, fixed=fixed), n_trials=1)
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    assert repr(value) in message
    assert f"must be {allowed}. Enqueue {allowed}" in message
    (trial,) = study.trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == message


def test_enqueued_value_outside_a_narrowed_or_fixed_range_fails(data_root: Path) -> None:
    # The range is the objective's own space, as narrowed by space= and fixed=.
    fixed = {k: v for k, v in CHEAP.items() if k != "lr"}
    objective = _objective(data_root, fixed=fixed, space={"lr": FloatDistribution(1e-4, 1e-3)})
    cases: list[tuple[dict[str, Any], str]] = [
        ({"lr": 1e-2}, "a number in [0.0001, 0.001]"),
        ({"lr": 1e-3, "optimizer": "sgd"}, "one of ('adam',)"),
    ]
    for params, allowed in cases:
        study = _study()
        study.enqueue_trial(params)
        with pytest.raises(ValueError, match=re.escape(f"must be {allowed}. Enqueue {allowed}")):
            study.optimize(objective, n_trials=1)
        assert study.trials[0].state == TrialState.FAIL


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fixed": {"learning_rate": 0.1}}, r"Unknown hyperparameter\(s\) \['learning_rate'\]"),
        ({"space": {"dropout": FloatDistribution(0, 1)}}, "CifarFineTune tunes"),
        ({"fixed": {"optimizer": "rmsprop"}}, "must be one of"),
        ({"fixed": {"lr": 1e-3}, "space": {"lr": FloatDistribution(1e-4, 1e-2)}}, "both"),
        ({"space": {"frozen_stages": IntDistribution(0, 5)}}, r"allows \[5\]"),
        ({"space": {"optimizer": FloatDistribution(0, 1)}}, "CategoricalDistribution of"),
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"train_subset": 1.5}, r"fraction must lie in \(0, 1\]"),
        ({"resolution": 8}, "resolution must be an int >= 16"),
        ({"val_fraction": 1.0}, r"val_fraction must be a number in \(0, 1\)"),
        # On main these passed construction and failed in every trial with an error that
        # did not name them, or (flip_tta="no") turned silently into True.
        ({"val_fraction": "0.1"}, r"val_fraction must be a number in \(0, 1\), got '0.1'"),
        ({"seed": None}, r"seed must be an integer in \[0, 2\*\*63\), got None"),
        ({"seed": -1}, r"seed must be an integer in \[0, 2\*\*63\), got -1"),
        ({"seed": 1.5}, r"seed must be an integer"),
        ({"flip_tta": "no"}, "flip_tta must be True or False, got 'no'"),
        ({"lr_reference_batch": 0}, "lr_reference_batch must be an int >= 1"),
        ({"cuda_graphs": True}, "cuda_graphs=True needs a CUDA device, but the device is cpu"),
        ({"cuda_graphs": "yes"}, "cuda_graphs must be None, True or False"),
    ],
)
def test_invalid_arguments_rejected_up_front(
    data_root: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CifarFineTune("cifar10", data_root, device="cpu", weights=None, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((["cifar10"], "data"), {}, r"dataset must be 'cifar10' or 'cifar100', got \["),
        (("cifar10", None), {}, "data_dir must be a folder path, got None"),
        (("cifar10", "data"), {"device": None}, "device must be 'auto', 'cpu', 'cuda'"),
    ],
)
def test_positional_and_device_arguments_of_the_wrong_type_are_named(
    args: tuple[Any, Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CifarFineTune(*args, weights=None, **{"device": "cpu", **kwargs})


@pytest.mark.parametrize("missing", ["torch", "torchvision"])
def test_missing_torch_names_the_vision_extra(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On main CifarFineTune raised a bare "No module named 'torch'" (and, without torchvision,
    # built and failed at the first trial), with no word of the extra that installs them.
    monkeypatch.setitem(sys.modules, missing, None)
    message = (
        rf"needs torch and torchvision, and {missing} is not installed: "
        r"`pip install 'optuna-transfer\[vision\]'`"
    )
    with pytest.raises(ImportError, match=f"CifarFineTune {message}") as raised:
        CifarFineTune(device="cpu", weights=None)
    assert isinstance(raised.value.__cause__, ImportError)
    with pytest.raises(ImportError, match=f"pretrain_checkpoint {message}"):
        pretrain_checkpoint(tmp_path, tmp_path / "c.pt", device="cpu")


def test_missing_weights_file_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="weights file .*nope.pt' does not exist"):
        CifarFineTune(device="cpu", weights=str(tmp_path / "nope.pt"))


def test_device_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="'cuda' was requested but CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        CifarFineTune(device="cuda:1", weights=None)
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0")


def test_offline_download_error_says_where_to_put_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.utils

    calls = []

    def offline(url: str, **kwargs: Any) -> None:
        calls.append((url, kwargs))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", offline)
    with pytest.raises(CifarNotFoundError) as info:
        read_cifar(tmp_path, "cifar10")
    message = str(info.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in message
    assert "cifar-10-python.tar.gz" in message and "name resolution" in message
    assert calls == [(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        {"download_root": str(tmp_path), "filename": "cifar-10-python.tar.gz",
         "md5": "c58f30108f718f92721af3b95e74349a"},
    )]


def test_a_partly_copied_folder_names_the_missing_files(tmp_path: Path) -> None:
    # On main the message asked for data_batch_1, which was there, and never named the file
    # that was not; nor that the folder held the other dataset.
    write_synthetic_cifar(tmp_path, n_train=50, n_test=10)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(CifarNotFoundError) as info:
        read_cifar(tmp_path, "cifar10", download=False)
    message = str(info.value)
    assert "(missing: test_batch)" in message
    assert f"so that {tmp_path / 'cifar-10-batches-py' / 'test_batch'} exists" in message
    with pytest.raises(CifarNotFoundError, match="did you mean dataset='cifar10'"):
        read_cifar(tmp_path, "cifar100", download=False)


def test_imagenet_weights_offline_error_names_both_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def offline(*args: Any, **kwargs: Any) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_resnet18(10, "imagenet")
    message = str(info.value)
    assert "weights='/path/to/resnet18-f37072fd.pth'" in message
    assert "weights=None" in message


@pytest.fixture
def silent_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every download goes through a proxy that accepts the connection and never answers, as
    a firewall that swallows traffic does; downloads wait at most 1 s at a time."""
    from optuna_transfer.objectives import _network

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    for name in ("https_proxy", "http_proxy", "HTTPS_PROXY", "HTTP_PROXY"):
        monkeypatch.setenv(name, url)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_network, "DOWNLOAD_TIMEOUT_S", 1.0)
    # urlopen builds its opener (and reads the proxy variables) once per process: built now,
    # and again after, so that later tests do not go through this proxy.
    urllib.request.install_opener(None)
    yield
    urllib.request.install_opener(None)
    server.close()
    for conn in accepted:
        conn.close()


@pytest.mark.usefixtures("silent_proxy")
def test_a_download_that_never_gets_an_answer_fails_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On main both downloads waited for ever (torchvision and torch.hub open URLs with no
    # timeout), and the trial stayed RUNNING.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty weights cache
    start = time.monotonic()
    with pytest.raises(CifarNotFoundError, match="timed out"):
        read_cifar(tmp_path, "cifar10")
    with pytest.raises(WeightsUnavailableError, match="timed out"):
        build_resnet18(10, "imagenet")
    assert time.monotonic() - start < 30
    assert socket.getdefaulttimeout() is None  # restored


class _System:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_checkpoint_refused(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"state_dict": {"conv1.weight": _System(f"touch {marker}")}}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="Refusing to load .*evil.pt"):
        build_resnet18(10, path)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_corrupt_checkpoint_names_the_file_and_the_fix(
    data_root: Path, tmp_path: Path, damage: str
) -> None:
    # On main torch's own error came through without the path ("PytorchStreamReader failed
    # reading zip archive: failed finding central directory"; an empty EOFError for 0 bytes).
    path = tmp_path / "c100.pt"
    torch.save(build_resnet18(10, None).state_dict(), path)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else b"")
    study = _study()
    with pytest.raises(ValueError) as info:
        study.optimize(_objective(data_root, weights=path), n_trials=1)
    message = str(info.value)
    assert f"{str(path)!r} is corrupt or incomplete" in message
    assert "pass the path of a good copy as weights=" in message
    assert [t.state for t in study.trials] == [TrialState.FAIL]


def test_checkpoint_of_foreign_bytes_is_called_possibly_corrupt(tmp_path: Path) -> None:
    # An error page saved under the checkpoint's name fails torch's weights-only unpickler as a
    # crafted file would; on main the message said only that the file could run code.
    path = tmp_path / "c100.pt"
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(UnsafeCheckpointError) as info:
        build_resnet18(10, path)
    message = str(info.value)
    assert f"Refusing to load {str(path)!r}" in message
    assert "Either it is corrupt (write it again or pass the path of a good copy" in message


def test_corrupt_cached_imagenet_weights_name_the_file_to_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch.hub loads a cached file without checking it again; on main a truncated one was
    # reported as a failed download, naming neither the file nor that deleting it helps.
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(build_resnet18(1000, None).state_dict(), cached)
    cached.write_bytes(cached.read_bytes()[:1000])

    def offline(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cached file must not be downloaded again")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_resnet18(10, "imagenet")
    message = str(info.value)
    assert f"The cached ImageNet weights {cached} are corrupt or incomplete" in message
    assert "Delete it so that it is downloaded again" in message


def test_pretrain_then_fine_tune_from_checkpoint(data_root: Path, tmp_path: Path) -> None:
    write_synthetic_cifar(data_root, n_train=100, n_test=20, num_classes=100, seed=5)
    old = os.umask(0)
    try:
        ckpt = pretrain_checkpoint(
            data_root, tmp_path / "ckpt" / "c100.pt", epochs=1, batch_size=25, resolution=16,
            train_subset=50, device="cpu",
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(ckpt.stat().st_mode) == 0o600
    assert stat.S_IMODE(ckpt.parent.stat().st_mode) == 0o700
    saved = torch.load(ckpt, weights_only=True)
    assert saved["num_classes"] == 100 and saved["dataset"] == "cifar100"
    assert saved["state_dict"]["fc.weight"].shape == (100, 512)

    ten = build_resnet18(10, ckpt)  # backbone loaded, head re-initialised for 10 classes
    # get_parameter/get_buffer: build_resnet18 returns nn.Module, whose attributes are untyped.
    assert torch.equal(ten.get_parameter("conv1.weight"), saved["state_dict"]["conv1.weight"])
    assert torch.equal(
        ten.get_buffer("layer4.1.bn2.running_var"), saved["state_dict"]["layer4.1.bn2.running_var"]
    )
    assert ten.get_parameter("fc.weight").shape == (10, 512)
    hundred = build_resnet18(100, str(ckpt))  # same class count: the head is kept too
    assert torch.equal(hundred.get_parameter("fc.weight"), saved["state_dict"]["fc.weight"])

    study = _study()
    study.optimize(_objective(data_root, weights=ckpt), n_trials=1)
    assert study.trials[0].state == TrialState.COMPLETE
    assert 0.0 <= study.trials[0].user_attrs["test_accuracy"] <= 1.0


def test_dataset_cached_once_per_process_as_one_uint8_tensor(data_root: Path) -> None:
    first = load_on_device(data_root, "cifar10", torch.device("cpu"))
    again = load_on_device(data_root, "cifar10", torch.device("cpu"))
    assert first is again
    assert first.images.dtype == torch.uint8 and first.images.shape == (200, 3, 32, 32)
    assert first.num_train == 160 and first.num_test == 40


def test_device_augmentation_matches_crop_and_flip_semantics() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=gen)
    plain = prepare_batch(images, None, 32, None, channels_last=False)
    mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    torch.testing.assert_close(plain, (images.float() / 255 - mean) / std)

    flipped = prepare_batch(images, Augment(padding=0, flip_p=1.0), 32, gen, False)
    torch.testing.assert_close(flipped, plain.flip(3))

    out = prepare_batch(images, Augment(padding=4, flip_p=0.5), 32, gen, False)
    padded = torch.nn.functional.pad(plain * std + mean, (4, 4, 4, 4))  # zero pixels
    padded = (padded - mean) / std
    n_flipped = 0
    for i in range(64):
        windows = [
            (dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
            if torch.allclose(
                out[i], (padded[i, :, dy:dy + 32, dx:dx + 32].flip(2) if flip
                         else padded[i, :, dy:dy + 32, dx:dx + 32])
            )
        ]
        assert windows, f"image {i} is not a padded crop (or its mirror) of the input"
        n_flipped += all(flip for _, _, flip in windows)
    assert 16 <= n_flipped <= 48  # about half

    upsampled = prepare_batch(images, None, 64, None, channels_last=True)
    assert upsampled.shape == (64, 3, 64, 64)
    assert upsampled.is_contiguous(memory_format=torch.channels_last)
    assert Augment.from_strength(0.5) == Augment(padding=4, flip_p=0.5)
    assert Augment.from_strength(0.0) == Augment(padding=0, flip_p=0.0)


def test_outputs_that_diverged_after_the_last_loss_prune_with_reason(tmp_path: Path) -> None:
    # SGD at lr=1e4 on 64 training images (4 steps): the steps' losses were finite, but the
    # weights the last one left are not. On main the trial completed with the share of the
    # class argmax picks from NaN logits (0.125 on this data), not a score of the model.
    write_synthetic_cifar(tmp_path, n_train=80, n_test=20)
    fixed = {**CHEAP, "optimizer": "sgd", "lr": 1e4, "momentum": 0.9}
    study = _study()
    study.optimize(_objective(tmp_path, fixed=fixed), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert "outputs became NaN or infinite (lr=1e+04, optimizer=sgd)" in trial.user_attrs[
        "prune_reason"
    ]


def test_files_replaced_on_disk_are_read_again(tmp_path: Path) -> None:
    # On main the per-process cache served the first copy for ever: 100 images after the
    # folder held 250 (a notebook that regenerates its data).
    write_synthetic_cifar(tmp_path, n_train=80, n_test=20, seed=0)
    cpu = torch.device("cpu")
    first = load_on_device(tmp_path, "cifar10", cpu)
    assert load_on_device(tmp_path, "cifar10", cpu) is first
    write_synthetic_cifar(tmp_path, n_train=200, n_test=50, seed=3)
    again = load_on_device(tmp_path, "cifar10", cpu)
    assert (again.num_train, len(again.labels)) == (200, 250)


def test_nan_returned_for_oom_is_a_failed_trial_in_optuna() -> None:
    # The OOM design relies on this Optuna behaviour; pin it.
    study = _study()
    study.optimize(lambda t: math.nan, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]


def test_frozen_stages_keep_weights_and_batchnorm_statistics(data_root: Path) -> None:
    data = load_on_device(data_root, "cifar10", torch.device("cpu"))
    config = TrainConfig(**{**CHEAP, "frozen_stages": 2, "lr": 1e-2}, epochs=1, resolution=16)
    torch.manual_seed(0)
    model = build_resnet18(10, None)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = FastTrainer(model, data, torch.arange(64), config, torch.device("cpu"), seed=0)
    trainer.train_epoch(1)
    after = model.state_dict()
    for key in ("conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
                "layer2.1.bn2.running_var", "layer2.0.downsample.0.weight"):
        assert torch.equal(before[key], after[key]), key
    for key in ("layer3.0.conv1.weight", "layer3.0.bn1.running_mean", "layer4.1.conv2.weight",
                "fc.weight"):
        assert not torch.equal(before[key], after[key]), key
    assert {id(p) for g in trainer.optimizer.param_groups for p in g["params"]} == {
        id(p) for p in model.parameters() if p.requires_grad
    }


def test_learning_rate_warms_up_then_decays_to_zero(data_root: Path) -> None:
    data = load_on_device(data_root, "cifar10", torch.device("cpu"))
    config = TrainConfig(**{**CHEAP, "warmup_fraction": 0.25, "lr": 0.1}, epochs=2, resolution=16)
    trainer = FastTrainer(
        build_resnet18(10, None), data, torch.arange(64), config, torch.device("cpu"), seed=0
    )
    assert trainer.total_steps == 8 and trainer.warmup_steps == 2  # 64 images / 16 x 2 epochs
    lrs = [trainer.lr_at(step) for step in range(8)]
    assert lrs[:3] == pytest.approx([0.05, 0.1, 0.1])
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:], strict=False))
    assert lrs[-1] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 5 / 6)))


def test_default_batch_sizes_are_gpu_sized() -> None:
    space = CifarFineTune(device="cpu", weights=None).search_space
    assert space["batch_size"] == CategoricalDistribution((128, 256, 512, 1024))


@pytest.mark.parametrize(
    ("reference", "batch", "n_fit", "expected"),
    [
        (256, 1024, 45_000, 0.4),  # 4x the reference batch: 4x the rate
        (256, 128, 45_000, 0.05),
        (256, 512, 100, 0.1 * 100 / 256),  # a subset smaller than a batch trains in one batch
        (None, 1024, 45_000, 0.1),  # scaling off
    ],
)
def test_learning_rate_scales_linearly_with_batch_size(
    data_root: Path, reference: int | None, batch: int, n_fit: int, expected: float
) -> None:
    objective = CifarFineTune(
        "cifar10", data_root, device="cpu", weights=None, lr_reference_batch=reference
    )
    params = {**CHEAP, "lr": 0.1, "batch_size": batch}
    config = objective._config(params, n_fit=n_fit)
    assert config.lr == pytest.approx(expected)
    assert config.batch_size == min(batch, n_fit)
    assert config.flip_tta is True


def test_flip_tta_sums_logits_of_image_and_mirror(data_root: Path) -> None:
    data = load_on_device(data_root, "cifar10", torch.device("cpu"))
    torch.manual_seed(0)
    model = build_resnet18(10, None).eval()
    indices = torch.arange(data.num_train, data.num_train + data.num_test)
    x = prepare_batch(data.images[indices], None, 16, None, channels_last=False)
    with torch.no_grad():
        # The untrained network is not mirror-symmetric, so TTA changes some predictions.
        plain = model(x).argmax(1)
        both = (model(x) + model(x.flip(3))).argmax(1)
    assert not torch.equal(plain, both)
    labels = data.labels[indices]
    accuracies = {}
    for tta in (False, True):
        config = TrainConfig(**CHEAP, epochs=1, resolution=16, flip_tta=tta)
        trainer = FastTrainer(model, data, indices, config, torch.device("cpu"), seed=0)
        accuracies[tta] = trainer.accuracy(indices)
    assert accuracies[False] == pytest.approx((plain == labels).float().mean().item())
    assert accuracies[True] == pytest.approx((both == labels).float().mean().item())


def test_auto_device_takes_gpu_rank_modulo_device_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    monkeypatch.delenv("OPTUNA_TRANSFER_RANK", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("auto") == torch.device("cuda:0")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve_device("auto") == torch.device("cuda:3")
    monkeypatch.setenv("OPTUNA_TRANSFER_RANK", "13")  # wins over LOCAL_RANK; wraps around
    assert resolve_device("auto") == torch.device("cuda:5")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    devices = []
    for rank in range(4):
        monkeypatch.setenv("OPTUNA_TRANSFER_RANK", str(rank))
        devices.append(resolve_device("auto"))
    assert devices == [torch.device(f"cuda:{i}") for i in (0, 1, 0, 1)]
    monkeypatch.setenv("OPTUNA_TRANSFER_RANK", "")  # empty counts as unset: LOCAL_RANK=3
    assert resolve_device("auto") == torch.device("cuda:1")
    monkeypatch.setenv("OPTUNA_TRANSFER_RANK", "gpu1")
    with pytest.raises(ValueError, match=r"\$OPTUNA_TRANSFER_RANK='gpu1' is not a worker rank"):
        resolve_device("auto")
    monkeypatch.setenv("OPTUNA_TRANSFER_RANK", "-1")
    with pytest.raises(ValueError, match="int >= 0"):
        resolve_device("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")  # no GPU: the rank is not read


_MEMORY_ERRORS = [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"),
    RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
    RuntimeError("cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE"),
    torch.AcceleratorError("CUDA error: out of memory"),
]


@pytest.mark.parametrize("error", _MEMORY_ERRORS, ids=lambda e: str(e).splitlines()[0][:40])
def test_memory_failures_fail_the_trial_not_the_study(
    data_root: Path, monkeypatch: pytest.MonkeyPatch, error: RuntimeError
) -> None:
    real_epoch = FastTrainer.train_epoch
    calls = []

    def fail_first(self: FastTrainer, epoch: int, max_steps: int | None = None) -> float:
        calls.append(epoch)
        if len(calls) == 1:
            raise error
        return real_epoch(self, epoch, max_steps)

    monkeypatch.setattr(FastTrainer, "train_epoch", fail_first)
    study = _study()
    study.optimize(_objective(data_root), n_trials=2)  # Optuna's default catch=()
    first, second = study.trials
    assert first.state == TrialState.FAIL
    reason = first.user_attrs["fail_reason"]
    assert str(error).splitlines()[0] in reason
    assert "batch_size=16 and resolution=16 on cpu" in reason
    assert "Narrow batch_size or resolution" in reason
    assert second.state == TrialState.COMPLETE


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("CUDA error: an illegal memory access was encountered"),
        RuntimeError("mat1 and mat2 shapes cannot be multiplied (16x512 and 10x10)"),
        ValueError("not a memory problem"),
    ],
)
def test_other_errors_still_propagate(
    data_root: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    # A poisoned CUDA context would fail every later trial too, and a bug should be seen.
    def fail(self: FastTrainer, epoch: int, max_steps: int | None = None) -> float:
        raise error

    monkeypatch.setattr(FastTrainer, "train_epoch", fail)
    study = _study()
    with pytest.raises(type(error), match=str(error)[:20]):
        study.optimize(_objective(data_root), n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    assert "fail_reason" not in study.trials[0].user_attrs
