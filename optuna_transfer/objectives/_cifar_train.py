"""The training loop of the fast path: batches gathered from the device tensor, no DataLoader.

On CUDA the model runs channels_last under bf16 autocast with fused optimizers, and the loss is
checked for NaN/inf every few steps (each check synchronises the GPU). On CPU everything is
float32, so tests exercise the same code. The model may be a persistent CUDA-graphed one
(``_cifar_graphs``): its training forward/backward then replay graphs, and everything here
(loss, optimizer, learning rate, augmentation, evaluation) runs the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import TYPE_CHECKING

from optuna_transfer.objectives._cifar_augment import Augment
from optuna_transfer.objectives._cifar_augment import prepare_batch
from optuna_transfer.objectives._cifar_model import freeze_stages
from optuna_transfer.objectives._cifar_model import set_train_mode


if TYPE_CHECKING:
    import torch
    from torch import nn

    from optuna_transfer.objectives._cifar_data import DeviceCifar


from optuna_transfer.objectives._cifar_space import OPTIMIZERS


_CHECK_EVERY = 25  # steps between NaN checks; each one waits for the GPU
_EVAL_BATCH = 1000


class NonFiniteLossError(ArithmeticError):
    """The training loss, or the model's outputs, became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on besides data, model and seed."""

    lr: float
    weight_decay: float
    optimizer: str
    momentum: float
    batch_size: int
    label_smoothing: float
    frozen_stages: int
    warmup_fraction: float
    augment_strength: float
    epochs: int
    resolution: int
    # Evaluation averages the logits of each image and its mirror image.
    flip_tta: bool = False


def prepare_model(model: nn.Module, frozen_stages: int, device: torch.device) -> None:
    """Freeze stages and move ``model`` to ``device`` (channels_last on CUDA), in place.

    On a model that is already prepared this changes nothing: its tensors keep their storage,
    which a CUDA-graphed model relies on.
    """
    import torch

    freeze_stages(model, frozen_stages)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)


class FastTrainer:
    """Trains ``model`` on ``data.images[train_idx]`` with per-step warmup + cosine LR."""

    def __init__(
        self,
        model: nn.Module,
        data: DeviceCifar,
        train_idx: torch.Tensor,
        config: TrainConfig,
        device: torch.device,
        seed: int,
    ) -> None:
        import torch

        self.model = model
        self.data = data
        self.train_idx = train_idx
        self.config = config
        self.device = device
        self.cuda = device.type == "cuda"
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self.augment = Augment.from_strength(config.augment_strength)
        prepare_model(model, config.frozen_stages, device)
        self.optimizer = _make_optimizer(model, config, fused=self.cuda)
        n = int(train_idx.numel())
        self.batch_size = min(config.batch_size, n)
        self.steps_per_epoch = max(1, n // self.batch_size)  # drop the ragged last batch
        self.total_steps = self.steps_per_epoch * config.epochs
        self.warmup_steps = int(config.warmup_fraction * self.total_steps)
        self.step = 0
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def lr_at(self, step: int) -> float:
        base = self.config.lr
        if step < self.warmup_steps:
            return base * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        return 0.5 * base * (1.0 + math.cos(math.pi * (step - self.warmup_steps) / span))

    def train_epoch(self, epoch: int, max_steps: int | None = None) -> float:
        """One pass over the training images; returns the mean training loss.

        Raises:
            NonFiniteLossError: The loss became NaN/inf.
        """
        import torch

        set_train_mode(self.model, self.config.frozen_stages)
        perm = self.train_idx[
            torch.randperm(self.train_idx.numel(), generator=self.generator, device=self.device)
        ]
        steps = self.steps_per_epoch if max_steps is None else min(max_steps, self.steps_per_epoch)
        loss_sum = torch.zeros((), device=self.device)
        for i in range(steps):
            idx = perm[i * self.batch_size : (i + 1) * self.batch_size]
            x = prepare_batch(
                self.data.images[idx],
                self.augment,
                self.config.resolution,
                self.generator,
                channels_last=self.cuda,
            )
            y = self.data.labels[idx]
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr_at(self.step)
            # No autocast weight cache: CUDA-graph capture refuses it, and ResNet uses each
            # weight once per step, so the cache would save nothing.
            with torch.autocast(
                "cuda", dtype=torch.bfloat16, enabled=self.cuda, cache_enabled=False
            ):
                loss = self.loss_fn(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            loss_sum += loss.detach().float()
            if (i + 1) % _CHECK_EVERY == 0 or i + 1 == steps:
                total = float(loss_sum)
                if not math.isfinite(total):
                    raise NonFiniteLossError(
                        f"training loss became {total} by epoch {epoch} step {i + 1} "
                        f"(lr={self.config.lr:.3g}, optimizer={self.config.optimizer})"
                    )
        return float(loss_sum) / steps

    def accuracy(self, indices: torch.Tensor) -> float:
        """Top-1 accuracy of the current model on ``data.images[indices]`` (with
        ``config.flip_tta``, of the summed logits of each image and its horizontal flip).

        Raises:
            NonFiniteLossError: The outputs are NaN/inf (weights or normalisation statistics
                that overflowed after the last loss was checked): their argmax would score
                the share of one class, not the model.
        """
        import torch

        self.model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        finite = torch.ones((), dtype=torch.bool, device=self.device)
        with (
            torch.inference_mode(),
            torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda),
        ):
            for start in range(0, int(indices.numel()), _EVAL_BATCH):
                idx = indices[start : start + _EVAL_BATCH]
                x = prepare_batch(
                    self.data.images[idx], None, self.config.resolution, None, self.cuda
                )
                logits = self.model(x)
                if self.config.flip_tta:
                    logits = logits.float() + self.model(x.flip(3)).float()
                finite &= torch.isfinite(logits).all()
                pred = logits.argmax(dim=1)
                correct += (pred == self.data.labels[idx]).sum()
        if not bool(finite):
            raise NonFiniteLossError(
                f"the model's outputs became NaN or infinite (lr={self.config.lr:.3g}, "
                f"optimizer={self.config.optimizer})"
            )
        return int(correct) / max(1, int(indices.numel()))


def _make_optimizer(model: nn.Module, config: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    lr, wd = config.lr, config.weight_decay
    use_fused = True if fused else None  # None lets torch pick foreach on CPU.
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=config.momentum, weight_decay=wd, fused=use_fused
        )
    # Adam's beta1 is its momentum, so one knob serves all three optimizers.
    betas = (config.momentum, 0.999)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=wd, fused=use_fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=wd, fused=use_fused)
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {config.optimizer!r}.")
