"""Augment and normalise whole batches on the training device.

A batch is gathered from the uint8 dataset tensor, randomly cropped (zero padding, like
torchvision's ``RandomCrop(32, padding=p)``) and flipped with one indexing operation, then
converted to float and normalised. No per-image Python work and no DataLoader workers: on a GPU
the input pipeline costs a few kernel launches per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import torch


# ImageNet statistics: the pretrained backbone expects them, and our own checkpoints use the
# same ones so that pretraining and fine-tuning see identically scaled inputs.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Augment:
    """Random crop padding (pixels) and horizontal flip probability."""

    padding: int
    flip_p: float

    @classmethod
    def from_strength(cls, strength: float) -> Augment:
        """One knob for the search: 0 = none, 0.5 = the standard CIFAR recipe (pad 4, flip
        half the images), 1 = pad 8 and flip half."""
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"augment_strength must lie in [0, 1], got {strength}.")
        return cls(padding=int(round(8 * strength)), flip_p=min(0.5, strength))


def prepare_batch(
    images: torch.Tensor,
    augment: Augment | None,
    resolution: int,
    generator: torch.Generator | None,
    channels_last: bool,
) -> torch.Tensor:
    """uint8 ``(B, 3, 32, 32)`` -> normalised float ``(B, 3, resolution, resolution)``."""
    import torch
    import torch.nn.functional as F

    if augment is not None and (augment.padding > 0 or augment.flip_p > 0):
        images = _crop_and_flip(images, augment, generator)
    mean, std = _stats(images.device)
    x = images.float().div_(255.0).sub_(mean).div_(std)
    size = x.shape[-1]
    if resolution != size:
        x = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False,
            antialias=resolution < size,
        )
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@functools.lru_cache(maxsize=8)
def _stats(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Made once per device: building them per batch would copy host -> GPU and synchronise.
    import torch

    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return mean, std


def _crop_and_flip(
    images: torch.Tensor, augment: Augment, generator: torch.Generator | None
) -> torch.Tensor:
    import torch
    import torch.nn.functional as F

    b, c, h, w = images.shape
    p = augment.padding
    dev = images.device
    padded = F.pad(images, (p, p, p, p)) if p else images
    oy = torch.randint(0, 2 * p + 1, (b, 1), generator=generator, device=dev)
    ox = torch.randint(0, 2 * p + 1, (b, 1), generator=generator, device=dev)
    rows = oy + torch.arange(h, device=dev)
    cols = ox + torch.arange(w, device=dev)
    # A flip is a crop read right to left, so both happen in the same gather.
    flip = torch.rand((b, 1), generator=generator, device=dev) < augment.flip_p
    cols = torch.where(flip, cols.flip(1), cols)
    batch = torch.arange(b, device=dev).view(b, 1, 1, 1)
    channel = torch.arange(c, device=dev).view(1, c, 1, 1)
    return padded[batch, channel, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]
