"""``CifarFineTune``: fine-tune a pretrained ResNet-18 on CIFAR as an Optuna objective."""

from __future__ import annotations

from collections.abc import Mapping
import gc
import math
import os
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.distributions import BaseDistribution

from optuna_transfer.objectives._cifar_data import check_dataset
from optuna_transfer.objectives._cifar_data import load_on_device
from optuna_transfer.objectives._cifar_data import split_train_val
from optuna_transfer.objectives._cifar_model import build_resnet18
from optuna_transfer.objectives._cifar_model import check_weights
from optuna_transfer.objectives._cifar_model import WeightsLike
from optuna_transfer.objectives._cifar_space import build_search_space
from optuna_transfer.objectives._cifar_space import suggest
from optuna_transfer.objectives._cifar_train import FastTrainer
from optuna_transfer.objectives._cifar_train import NonFiniteLossError
from optuna_transfer.objectives._cifar_train import TrainConfig
from optuna_transfer.objectives._device import resolve_device


if TYPE_CHECKING:
    import torch


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
    search never sees it.

    Tuned hyperparameters (names in ``trial.params``):

    * ``lr`` (log, 1e-5..1e-1): peak learning rate of a linear-warmup + cosine schedule.
    * ``weight_decay`` (log, 1e-6..1e-2).
    * ``optimizer``: ``"sgd"``, ``"adam"`` or ``"adamw"``.
    * ``momentum`` (0..0.99): SGD momentum, or beta1 of Adam/AdamW.
    * ``batch_size``: 32, 64, 128 or 256.
    * ``label_smoothing`` (0..0.2).
    * ``frozen_stages`` (0..4): backbone stages kept frozen (1 = stem + layer1, 4 = only the
      new head trains); frozen BatchNorm layers keep their statistics.
    * ``warmup_fraction`` (0..0.3): share of all steps spent warming up the learning rate.
    * ``augment_strength`` (0..1): 0 = no augmentation, 0.5 = random crop with 4 px padding
      and horizontal flips of half the images (the standard recipe), 1 = 8 px padding.

    ``fixed`` pins knobs to constants (still recorded in ``trial.params`` as one-point
    distributions) and ``space`` replaces their distributions, without subclassing.

    Each epoch reports the validation accuracy with ``trial.report(acc, epoch)`` (epochs
    counted from 1) and honours the study's pruner. A NaN/inf loss prunes the trial (reason in
    the user attribute ``prune_reason``). CUDA out-of-memory frees the trial's memory, stores
    ``fail_reason`` and returns NaN, which Optuna records as a FAIL while the study goes on.
    Trials are reproducible on CPU: the seed is ``seed + trial.number`` (the model's
    initialisation uses torch's global generator inside ``fork_rng``, so with ``n_jobs > 1``
    only the data order and augmentation stay reproducible). On a CPU, tiny batches often run
    faster with ``torch.set_num_threads(1)``.

    Example:

        .. testcode::

            import tempfile

            import optuna

            from optuna_transfer.objectives import CifarFineTune
            from optuna_transfer.objectives import write_synthetic_cifar

            root = tempfile.mkdtemp()
            write_synthetic_cifar(root, n_train=256, n_test=64)
            objective = CifarFineTune(
                "cifar10", root, epochs=1, device="cpu", weights=None,
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
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        weights: ``"imagenet"`` (torchvision's ``ResNet18_Weights.IMAGENET1K_V1``, downloaded
            once into torch's cache), a path to a state dict (e.g. from
            :func:`pretrain_checkpoint`), or ``None`` for random initialisation.
        train_subset: Train on a seeded subset: a fraction in (0, 1] or an image count.
        resolution: Input size; 32 is native, other sizes are resized on the device.
        val_fraction: Share of the training set held out for validation (seeded, the same
            for every trial).
        seed: Base seed for the split, initialisation, data order and augmentation.
        space: Replacement distributions, e.g. ``{"lr": FloatDistribution(1e-4, 1e-2,
            log=True)}``.
        fixed: Constants, e.g. ``{"optimizer": "sgd"}``.
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
    ) -> None:
        check_dataset(dataset)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {epochs!r}.")
        check_weights(weights)
        check_train_subset(train_subset)
        check_resolution(resolution)
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}.")
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

    @property
    def search_space(self) -> dict[str, BaseDistribution]:
        """Name -> distribution of every hyperparameter a trial suggests."""
        return dict(self._search_space)

    def __call__(self, trial: optuna.trial.BaseTrial) -> float:
        import torch

        params = {name: suggest(trial, name, d) for name, d in self._search_space.items()}
        config = TrainConfig(**params, epochs=self.epochs, resolution=self.resolution)
        reason = None
        try:
            return self._train(trial, config)
        except torch.OutOfMemoryError as err:
            reason = (
                f"CUDA out of memory with batch_size={config.batch_size} and "
                f"resolution={config.resolution} on {self.device}: {str(err).splitlines()[0]} "
                "Narrow batch_size or resolution if this repeats."
            )
        # Outside the except block the traceback (and the model it references) is gone.
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        trial.set_user_attr("fail_reason", reason)
        _logger.error(f"Trial {trial.number} failed: {reason} The study continues.")
        return math.nan  # Optuna marks the trial FAIL without stopping the study.

    def _train(self, trial: optuna.trial.BaseTrial, config: TrainConfig) -> float:
        import torch

        data = load_on_device(self.data_dir, self.dataset, self.device)
        train_np, val_np = split_train_val(
            data.num_train, self.val_fraction, self.train_subset, self.seed
        )
        train_idx = torch.from_numpy(train_np).to(self.device)
        val_idx = torch.from_numpy(val_np).to(self.device)
        seed = self.seed + trial.number
        with torch.random.fork_rng(devices=_cuda_devices(self.device)):
            torch.manual_seed(seed)  # The new head's initialisation.
            model = build_resnet18(data.num_classes, self.weights)
        trainer = FastTrainer(model, data, train_idx, config, self.device, seed)

        val_acc = math.nan
        for epoch in range(1, self.epochs + 1):
            try:
                trainer.train_epoch(epoch)
            except NonFiniteLossError as err:
                message = f"Trial {trial.number} pruned: {err}."
                trial.set_user_attr("prune_reason", message)
                _logger.warning(message)
                raise optuna.TrialPruned(message) from None
            val_acc = trainer.accuracy(val_idx)
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
