"""Make our own pretrained ResNet-18 checkpoint on CIFAR-100 (no ImageNet download needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import optuna

from optuna_transfer.objectives._cifar_data import check_dataset
from optuna_transfer.objectives._cifar_data import load_on_device
from optuna_transfer.objectives._cifar_model import build_resnet18
from optuna_transfer.objectives._cifar_model import WeightsLike
from optuna_transfer.objectives._cifar_objective import check_resolution
from optuna_transfer.objectives._cifar_objective import check_train_subset
from optuna_transfer.objectives._cifar_space import build_search_space
from optuna_transfer.objectives._cifar_train import FastTrainer
from optuna_transfer.objectives._cifar_train import TrainConfig
from optuna_transfer.objectives._device import require_vision
from optuna_transfer.objectives._device import resolve_device


_logger = optuna.logging.get_logger(__name__)

CHECKPOINT_FORMAT = "optuna-transfer/resnet18/v1"


def pretrain_checkpoint(
    data_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    dataset: str = "cifar100",
    *,
    epochs: int = 30,
    train_subset: float | int | None = None,
    weights: WeightsLike = None,
    lr: float = 0.05,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    batch_size: int = 128,
    label_smoothing: float = 0.1,
    warmup_fraction: float = 0.05,
    augment_strength: float = 0.5,
    resolution: int = 32,
    device: str = "auto",
    seed: int = 0,
) -> Path:
    """Train ResNet-18 on all (or ``train_subset`` of the) training images and save it.

    The file holds ``{"state_dict": ..., "num_classes": ..., "dataset": ..., "format": ...}``,
    is readable by the current user only (0o600) and loads with ``weights_only=True``. Pass it
    as ``CifarFineTune(weights=out_path)``: the backbone is loaded and the head is
    re-initialised when the class counts differ (CIFAR-100 -> CIFAR-10).

    Example:

        .. testcode::

            import os
            import tempfile

            from optuna_transfer.objectives import CifarFineTune
            from optuna_transfer.objectives import pretrain_checkpoint
            from optuna_transfer.objectives import write_synthetic_cifar

            root = tempfile.mkdtemp()
            write_synthetic_cifar(root, n_train=200, n_test=20, num_classes=100)
            write_synthetic_cifar(root, n_train=200, n_test=20, num_classes=10)
            ckpt = pretrain_checkpoint(
                root, os.path.join(root, "c100.pt"), epochs=1, batch_size=50, device="cpu"
            )
            objective = CifarFineTune("cifar10", root, weights=ckpt, epochs=1, device="cpu")

    Args:
        data_dir: Folder with ``cifar-100-python`` (or ``cifar-10-batches-py``).
        out_path: Where to write the checkpoint (parent folders are created, 0o700).
        dataset: ``"cifar100"`` (default) or ``"cifar10"``.
        epochs: Training epochs.
        train_subset: Train on a seeded subset: a fraction in (0, 1] or an image count.
        weights: Starting point: ``None`` (random), ``"imagenet"`` or a state-dict path.
        lr, optimizer, momentum, weight_decay, batch_size, label_smoothing, warmup_fraction,
            augment_strength: As in ``CifarFineTune``'s search space.
        resolution: Input size (32 native).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        seed: Seed of the subset, initialisation, data order and augmentation.

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.
    """
    require_vision("pretrain_checkpoint")
    import torch

    check_dataset(dataset)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}.")
    check_train_subset(train_subset)
    check_resolution(resolution)
    hyper = {
        "lr": lr,
        "optimizer": optimizer,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "batch_size": batch_size,
        "label_smoothing": label_smoothing,
        "warmup_fraction": warmup_fraction,
        "augment_strength": augment_strength,
        "frozen_stages": 0,
    }
    build_search_space(None, hyper)  # Same validation and messages as CifarFineTune's fixed=.
    dev = resolve_device(device)

    data = load_on_device(data_dir, dataset, dev)
    order = np.random.default_rng(seed).permutation(data.num_train)
    if isinstance(train_subset, float):
        order = order[: max(2, int(round(train_subset * data.num_train)))]
    elif isinstance(train_subset, int):
        if train_subset > data.num_train:
            raise ValueError(
                f"train_subset={train_subset} exceeds the {data.num_train} training images."
            )
        order = order[:train_subset]
    train_idx = torch.from_numpy(np.sort(order)).to(dev)

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        model = build_resnet18(data.num_classes, weights)
    config = TrainConfig(**hyper, epochs=epochs, resolution=resolution)  # type: ignore[arg-type]
    trainer = FastTrainer(model, data, train_idx, config, dev, seed)
    for epoch in range(1, epochs + 1):
        loss = trainer.train_epoch(epoch)
        _logger.info(f"pretrain {dataset} epoch {epoch}/{epochs}: train loss {loss:.4f}")

    out = Path(out_path)
    if not out.parent.exists():
        out.parent.mkdir(mode=0o700, parents=True)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "num_classes": data.num_classes,
        "dataset": dataset,
        "format": CHECKPOINT_FORMAT,
    }
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
