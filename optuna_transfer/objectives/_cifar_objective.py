"""``CifarFineTune``: fine-tune a pretrained ResNet-18 on CIFAR as an Optuna objective."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
import contextlib
import gc
import math
import os
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
import optuna
from optuna.distributions import BaseDistribution

from optuna_transfer._arguments import is_integer
from optuna_transfer._encoding import is_number
from optuna_transfer.objectives._cifar_data import check_dataset
from optuna_transfer.objectives._cifar_data import load_on_device
from optuna_transfer.objectives._cifar_data import split_train_val
from optuna_transfer.objectives._cifar_graphs import GraphCache
from optuna_transfer.objectives._cifar_graphs import GraphKey
from optuna_transfer.objectives._cifar_model import build_resnet18
from optuna_transfer.objectives._cifar_model import check_weights
from optuna_transfer.objectives._cifar_model import WeightsLike
from optuna_transfer.objectives._cifar_space import build_search_space
from optuna_transfer.objectives._cifar_space import suggest_in_space
from optuna_transfer.objectives._cifar_train import FastTrainer
from optuna_transfer.objectives._cifar_train import NonFiniteLossError
from optuna_transfer.objectives._cifar_train import TrainConfig
from optuna_transfer.objectives._cuda_failures import memory_failure
from optuna_transfer.objectives._device import require_vision
from optuna_transfer.objectives._device import resolve_device


if TYPE_CHECKING:
    import torch
    from torch import nn

    from optuna_transfer.objectives._cifar_data import DeviceCifar


_logger = optuna.logging.get_logger(__name__)


def check_train_subset(train_subset: float | int | None) -> None:
    if train_subset is None:
        return
    if isinstance(train_subset, float):
        if not 0.0 < train_subset <= 1.0:
            raise ValueError(f"train_subset as a fraction must lie in (0, 1], got {train_subset}.")
        return
    if isinstance(train_subset, bool) or not isinstance(train_subset, int) or train_subset < 2:
        raise ValueError(
            "train_subset must be None (all images), a fraction in (0, 1] or an image count "
            f">= 2, got {train_subset!r}."
        )


def check_lr_reference_batch(lr_reference_batch: int | None) -> None:
    if lr_reference_batch is None:
        return
    if (
        isinstance(lr_reference_batch, bool)
        or not isinstance(lr_reference_batch, int)
        or lr_reference_batch < 1
    ):
        raise ValueError(
            "lr_reference_batch must be an int >= 1 (the batch size at which lr is used as "
            f"is) or None (no scaling), got {lr_reference_batch!r}."
        )


def check_resolution(resolution: int) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 16:
        raise ValueError(
            f"resolution must be an int >= 16 (32 is CIFAR's native size), got {resolution!r}."
        )


class CifarFineTune:
    """Objective that fine-tunes ResNet-18 on CIFAR-10/100 and returns validation accuracy.

    Each call trains one configuration sampled from :attr:`search_space` and returns the
    top-1 accuracy on a validation split carved from the training set (maximise it). The test
    set is only scored after training and stored as the user attribute ``test_accuracy``; the
    search never sees it. Both are scored with flip test-time augmentation (the logits of each
    image and its mirror image are summed) unless ``flip_tta=False``.

    Tuned hyperparameters (names in ``trial.params``):

    * ``lr`` (log, 1e-5..1e-1): peak learning rate of a linear-warmup + cosine schedule, for a
      batch of ``lr_reference_batch`` (256) images. The optimizer gets
      ``lr * batch_size / lr_reference_batch`` (the linear scaling rule), so a good ``lr`` stays
      good when the batch size changes; the value used is the user attribute ``effective_lr``.
    * ``weight_decay`` (log, 1e-6..1e-2).
    * ``optimizer``: ``"sgd"``, ``"adam"`` or ``"adamw"``.
    * ``momentum`` (0..0.99): SGD momentum, or beta1 of Adam/AdamW.
    * ``batch_size``: 128, 256, 512 or 1024 (GPU-sized: on a GPU a step costs about the same
      at any of these sizes, so larger batches finish the epochs sooner).
    * ``label_smoothing`` (0..0.2).
    * ``frozen_stages`` (0..4): backbone stages kept frozen (1 = stem + layer1, 4 = only the
      new head trains); frozen BatchNorm layers keep their statistics.
    * ``warmup_fraction`` (0..0.3): share of all steps spent warming up the learning rate.
    * ``augment_strength`` (0..1): 0 = no augmentation, 0.5 = random crop with 4 px padding
      and horizontal flips of half the images (the standard recipe), 1 = 8 px padding.

    ``fixed`` pins knobs to constants (still recorded in ``trial.params`` as one-point
    distributions) and ``space`` replaces their distributions, without subclassing.

    A value outside this space, enqueued with ``study.enqueue_trial`` or given to a
    ``FixedTrial`` (Optuna only warns and runs it), is refused before anything trains: the trial
    fails with a ``ValueError`` naming the parameter, the value, the allowed range and the fix,
    also stored as the user attribute ``fail_reason``. Optuna records it as FAIL and, as for
    any error, ``study.optimize`` re-raises it unless ``catch=(ValueError,)``. It fails rather
    than being pruned because the samplers count a pruned trial as a bad configuration, while
    this one is a wrong input.

    Resolution: the ImageNet stem (7x7 stride-2 convolution + max-pool) is kept, so at the
    native 32 px the final feature map of layer4 is 1x1. That makes trials cheap and suits the
    pretrained first layer, but costs accuracy; ``resolution=64`` (images upsampled on the
    device, 2x2 final map, 4x the FLOPs) is the higher-accuracy choice when trials can afford
    it. On a GPU small steps are bound by kernel launches rather than arithmetic, so the extra
    FLOPs may cost little wall time there (an estimate until measured).

    GPU: ``device="auto"`` takes GPU ``rank % torch.cuda.device_count()``, the rank read from
    ``$OPTUNA_TRANSFER_RANK``, else ``$LOCAL_RANK``, else 0, so worker processes started with
    ranks 0..n-1 spread over the node's GPUs. On CUDA, ``torch.backends.cudnn.benchmark`` is
    switched on (a process-wide setting; every shape here is fixed) and, with ``cuda_graphs``
    (on by default there), each training shape (batch size, resolution, ``frozen_stages``,
    class count) is captured once as CUDA graphs of the forward and backward passes. The
    captured model persists across trials and each trial copies its starting weights into it;
    the loss, optimizer and learning rate stay outside the graphs, so every trial of a shape
    reuses them. At most four shapes are kept.

    Each epoch reports the validation accuracy with ``trial.report(acc, epoch)`` (epochs
    counted from 1) and honours the study's pruner. A NaN/inf loss prunes the trial (reason in
    the user attribute ``prune_reason``). Running out of memory in any form (a
    ``torch.OutOfMemoryError``, or cuBLAS/cuDNN failing to allocate a workspace) frees the
    trial's memory and the cached graphs, stores ``fail_reason`` and returns NaN, which Optuna
    records as a FAIL while the study goes on; no ``catch=`` is needed. Errors that leave the
    CUDA context unusable (illegal memory access, device-side assert) are not caught: they
    stop the worker, since every later trial in that process would fail as well.

    Trials are reproducible on CPU: the seed is ``seed + trial.number`` (the model's
    initialisation uses torch's global generator inside ``fork_rng``, so with ``n_jobs > 1``
    only the data order and augmentation stay reproducible). On a CPU, tiny batches often run
    faster with ``torch.set_num_threads(1)``; tests fix ``batch_size`` to a small value (any
    int >= 2 is accepted) and set ``lr_reference_batch`` to match.

    Example:

        .. testcode::

            import tempfile

            import optuna

            from optuna_transfer.objectives import CifarFineTune
            from optuna_transfer.objectives import write_synthetic_cifar

            root = tempfile.mkdtemp()
            write_synthetic_cifar(root, n_train=256, n_test=64)
            objective = CifarFineTune(
                "cifar10", root, epochs=1, device="cpu", weights=None, lr_reference_batch=32,
                fixed={"batch_size": 32, "optimizer": "adam", "frozen_stages": 0},
            )
            study = optuna.create_study(direction="maximize")
            study.optimize(objective, n_trials=1)
            assert 0.0 <= study.best_value <= 1.0

    Args:
        dataset: ``"cifar10"`` or ``"cifar100"``.
        data_dir: Folder containing ``cifar-10-batches-py`` / ``cifar-100-python``; the
            official archive is downloaded there with torchvision when missing.
        epochs: Training epochs per trial (a fidelity knob for cheap source studies).
        device: ``"auto"`` (GPU ``rank % device_count()`` if CUDA is available, else CPU; see
            above), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        weights: ``"imagenet"`` (torchvision's ``ResNet18_Weights.IMAGENET1K_V1``, downloaded
            once into torch's cache), a path to a state dict (e.g. from
            :func:`pretrain_checkpoint`), or ``None`` for random initialisation.
        train_subset: Train on a seeded subset: a fraction in (0, 1] or an image count.
        resolution: Input size; 32 is native, other sizes are resized on the device.
            ``64`` is the higher-accuracy choice (see above).
        val_fraction: Share of the training set held out for validation (seeded, the same
            for every trial).
        seed: Base seed for the split, initialisation, data order and augmentation.
        space: Replacement distributions, e.g. ``{"lr": FloatDistribution(1e-4, 1e-2,
            log=True)}``.
        fixed: Constants, e.g. ``{"optimizer": "sgd"}``.
        cuda_graphs: Replay each training shape's forward/backward as CUDA graphs. ``None``
            (default): on for CUDA devices, off for the CPU. ``True`` needs a CUDA device.
        lr_reference_batch: The batch size at which ``lr`` is passed to the optimizer
            unchanged; other batch sizes scale it linearly. ``None`` turns scaling off.
        flip_tta: Score validation and test images with flip test-time augmentation.
    """

    def __init__(
        self,
        dataset: str = "cifar10",
        data_dir: str | os.PathLike[str] = "data",
        *,
        epochs: int = 5,
        device: str = "auto",
        weights: WeightsLike = "imagenet",
        train_subset: float | int | None = None,
        resolution: int = 32,
        val_fraction: float = 0.1,
        seed: int = 0,
        space: Mapping[str, BaseDistribution] | None = None,
        fixed: Mapping[str, Any] | None = None,
        cuda_graphs: bool | None = None,
        lr_reference_batch: int | None = 256,
        flip_tta: bool = True,
    ) -> None:
        # Before the arguments: without the extra no argument makes it run.
        require_vision("CifarFineTune")
        if not isinstance(dataset, str):
            raise ValueError(f"dataset must be 'cifar10' or 'cifar100', got {dataset!r}.")
        check_dataset(dataset)
        if not isinstance(data_dir, (str, os.PathLike)):
            raise ValueError(f"data_dir must be a folder path, got {data_dir!r}.")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {epochs!r}.")
        check_weights(weights)
        check_train_subset(train_subset)
        check_resolution(resolution)
        check_lr_reference_batch(lr_reference_batch)
        if not is_number(val_fraction) or not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be a number in (0, 1), got {val_fraction!r}.")
        # Seeds numpy's and torch's generators, which take 0 <= seed < 2**63.
        if not is_integer(seed) or not 0 <= seed < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}.")
        if not isinstance(device, str):
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}."
            )
        if cuda_graphs not in (None, True, False):
            raise ValueError(f"cuda_graphs must be None, True or False, got {cuda_graphs!r}.")
        if not isinstance(flip_tta, (bool, np.bool_)):
            raise ValueError(f"flip_tta must be True or False, got {flip_tta!r}.")
        self._search_space = build_search_space(space, fixed)
        self.dataset = dataset
        self.data_dir = data_dir
        self.epochs = epochs
        self.device = resolve_device(device)
        self.weights = weights
        self.train_subset = train_subset
        self.resolution = resolution
        self.val_fraction = val_fraction
        self.seed = seed
        self.lr_reference_batch = lr_reference_batch
        self.flip_tta = bool(flip_tta)
        cuda = self.device.type == "cuda"
        if cuda_graphs and not cuda:
            raise ValueError(
                f"cuda_graphs=True needs a CUDA device, but the device is {self.device}. "
                "Leave cuda_graphs=None (graphs on CUDA, eager on the CPU) or pass False."
            )
        self.cuda_graphs = cuda if cuda_graphs is None else cuda_graphs
        # Persistent captured models, one per training shape; see _cifar_graphs.
        self._graphs = GraphCache(self.device) if self.cuda_graphs else None

    @property
    def search_space(self) -> dict[str, BaseDistribution]:
        """Name -> distribution of every hyperparameter a trial suggests."""
        return dict(self._search_space)

    def __call__(self, trial: optuna.trial.BaseTrial) -> float:
        import torch

        try:
            params = {n: suggest_in_space(trial, n, d) for n, d in self._search_space.items()}
        except ValueError as err:
            # An enqueued value outside the space: Optuna records the trial as FAIL and stops
            # the study, as for any invalid input; fail_reason keeps why for the dashboard.
            trial.set_user_attr("fail_reason", str(err))
            raise
        reason = None
        try:
            with self._on_device():
                return self._train(trial, params)
        except RuntimeError as err:
            kind = memory_failure(err)
            if kind is None:
                raise
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            reason = (
                f"{kind} with batch_size={params['batch_size']} and "
                f"resolution={self.resolution} on {self.device} ({type(err).__name__}: "
                f"{first_line}). Narrow batch_size or resolution if this repeats."
            )
        # Outside the except block the traceback (and the model it references) is gone.
        if self._graphs is not None:
            self._graphs.clear()  # captured models hold memory the next shape may need
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        trial.set_user_attr("fail_reason", reason)
        _logger.error(f"Trial {trial.number} failed: {reason} The study continues.")
        return math.nan  # Optuna marks the trial FAIL without stopping the study.

    @contextlib.contextmanager
    def _on_device(self) -> Iterator[None]:
        import torch

        if self.device.type != "cuda":
            yield
            return
        # Fixed shapes: let cuDNN time its algorithms once per shape and keep the fastest.
        torch.backends.cudnn.benchmark = True
        # Graph capture and cuDNN handles use the current device: make it this worker's GPU.
        with torch.cuda.device(self.device):
            yield

    def _train(self, trial: optuna.trial.BaseTrial, params: dict[str, Any]) -> float:
        import torch

        data = load_on_device(self.data_dir, self.dataset, self.device)
        train_np, val_np = split_train_val(
            data.num_train, self.val_fraction, self.train_subset, self.seed
        )
        config = self._config(params, n_fit=len(train_np))
        trial.set_user_attr("effective_lr", config.lr)
        train_idx = torch.from_numpy(train_np).to(self.device)
        val_idx = torch.from_numpy(val_np).to(self.device)
        seed = self.seed + trial.number
        with torch.random.fork_rng(devices=_cuda_devices(self.device)):
            torch.manual_seed(seed)  # The new head's initialisation.
            fresh = build_resnet18(data.num_classes, self.weights)
        with self._model(trial, fresh, config, data.num_classes) as model:
            trainer = self._make_trainer(model, data, train_idx, config, seed)
            return self._fit(trial, trainer, data, val_idx)

    def _config(self, params: dict[str, Any], n_fit: int) -> TrainConfig:
        # The batch actually used: a subset smaller than batch_size trains in one batch.
        batch = min(int(params["batch_size"]), n_fit)
        lr = float(params["lr"])
        if self.lr_reference_batch is not None:
            lr *= batch / self.lr_reference_batch
        return TrainConfig(
            **{**params, "lr": lr, "batch_size": batch},
            epochs=self.epochs,
            resolution=self.resolution,
            flip_tta=self.flip_tta,
        )

    @contextlib.contextmanager
    def _model(
        self, trial: optuna.trial.BaseTrial, fresh: nn.Module, config: TrainConfig, classes: int
    ) -> Iterator[nn.Module]:
        if self._graphs is None:
            yield fresh
            return
        key = GraphKey(classes, config.batch_size, config.resolution, config.frozen_stages)
        with self._graphs.model_for(key, fresh) as persistent:
            # None: another thread trains this shape right now (n_jobs > 1); train eagerly.
            trial.set_user_attr("cuda_graph", persistent is not None)
            yield fresh if persistent is None else persistent

    def _make_trainer(
        self,
        model: nn.Module,
        data: DeviceCifar,
        train_idx: torch.Tensor,
        config: TrainConfig,
        seed: int,
    ) -> FastTrainer:
        return FastTrainer(model, data, train_idx, config, self.device, seed)

    def _fit(
        self,
        trial: optuna.trial.BaseTrial,
        trainer: FastTrainer,
        data: DeviceCifar,
        val_idx: torch.Tensor,
    ) -> float:
        import torch

        val_acc = math.nan
        for epoch in range(1, self.epochs + 1):
            try:
                trainer.train_epoch(epoch)
                val_acc = trainer.accuracy(val_idx)
            except NonFiniteLossError as err:
                message = f"Trial {trial.number} pruned: {err}."
                trial.set_user_attr("prune_reason", message)
                _logger.warning(message)
                raise optuna.TrialPruned(message) from None
            trial.report(val_acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"Trial {trial.number} pruned by the pruner after epoch {epoch} with "
                    f"validation accuracy {val_acc:.4f}."
                )
        test_idx = torch.arange(data.num_train, data.num_train + data.num_test, device=self.device)
        trial.set_user_attr("test_accuracy", trainer.accuracy(test_idx))
        return val_acc


def _cuda_devices(device: torch.device) -> list[torch.device]:
    return [device] if device.type == "cuda" else []
