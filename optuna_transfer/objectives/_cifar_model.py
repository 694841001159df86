"""ResNet-18 for CIFAR: weights from ImageNet, from a local file, or random.

The standard ImageNet stem (7x7 stride-2 convolution + max-pool) is kept at 32 px. That keeps
the pretrained first layer meaningful and makes a 32 px trial about 15x cheaper than the usual
CIFAR stem (3x3 stride 1, no pool), which is what cheap source studies need; the price is a
coarse 1x1 final feature map, and ``resolution`` (upsampling on the device) buys the detail
back when a trial can afford it.
"""

from __future__ import annotations

import os
from pathlib import Path
import pickle
from typing import TYPE_CHECKING
from typing import Union

from optuna_transfer.objectives._network import bounded_wait


if TYPE_CHECKING:
    import torch
    from torch import nn


WeightsLike = Union[str, "os.PathLike[str]", None]

IMAGENET = "imagenet"

_HEAD = ("fc.weight", "fc.bias")
# Prefixes added by DataParallel / torch.compile; a state dict saved from either still fits.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class WeightsUnavailableError(RuntimeError):
    """The ImageNet weights are neither cached nor downloadable."""


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint torch.load(weights_only=True) refuses: it holds objects other than tensors
    and plain containers, or it is corrupt."""


def check_weights(weights: WeightsLike) -> None:
    if weights is None or weights == IMAGENET:
        return
    if not isinstance(weights, str | os.PathLike):
        raise TypeError(
            f"weights must be 'imagenet', None or a path to a state dict, got {weights!r}."
        )
    if not Path(weights).is_file():
        raise FileNotFoundError(
            f"weights file {str(weights)!r} does not exist. Pass weights='imagenet' "
            "(torchvision's download/cache), None (random initialisation) or the path of a "
            "state dict saved with torch.save, e.g. by pretrain_checkpoint()."
        )


def build_resnet18(num_classes: int, weights: WeightsLike) -> nn.Module:
    """A torchvision ResNet-18 with a ``num_classes`` head, backbone initialised from
    ``weights``. The head keeps the checkpoint's weights only when its class count matches;
    otherwise it is freshly initialised."""
    from torchvision.models import resnet18

    check_weights(weights)
    model = resnet18(weights=None, num_classes=num_classes)
    if weights is None:
        return model
    if isinstance(weights, str) and weights == IMAGENET:
        state, source = _imagenet_state_dict(), "torchvision ImageNet weights"
    else:
        state, source = load_state_dict(weights), str(weights)
    _load_backbone(model, state, source)
    return model


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict with ``torch.load(weights_only=True)``: a file that would run code
    when unpickled is refused instead of executed, and a truncated or empty one is named in
    the ``ValueError``."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            # torch raises the same error for bytes that are no pickle at all (a cut or
            # overwritten file, an error page saved under its name).
            f"Refusing to load {str(path)!r}: torch.load(weights_only=True) cannot read it as "
            "tensors and plain containers. Either it is corrupt (write it again or pass the "
            "path of a good copy as weights=), or it holds other objects, which could run code "
            "when unpickled, so it was not loaded with weights_only=False either; if you wrote "
            "it yourself, re-save just the weights with torch.save(model.state_dict(), path). "
            f"Details: {err}"
        ) from None
    except (RuntimeError, EOFError) as err:  # torch names no path: a cut or empty file
        raise ValueError(
            f"{str(path)!r} is corrupt or incomplete, so torch.load cannot read it ({err!r}). "
            "Write it again (e.g. with pretrain_checkpoint()) or pass the path of a good copy "
            "as weights=."
        ) from err
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]  # The layout pretrain_checkpoint() writes.
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise ValueError(
            f"{str(path)!r} is not a state dict (a dict of parameter name -> tensor, or such a "
            "dict under the key 'state_dict')."
        )
    return obj


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    import torch
    from torchvision.models import ResNet18_Weights

    weights = ResNet18_Weights.IMAGENET1K_V1
    try:
        # Cached in torch.hub's checkpoint folder after the first download; loaded with
        # weights_only=True by torch.
        with bounded_wait():
            return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as err:  # urllib, DNS, SSL, timeouts, disk and hash: all "unavailable".
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        cached = cache / weights.url.rsplit("/", 1)[-1]
        if cached.is_file():
            # torch.hub downloads to a temporary file, and loads a cached one without checking
            # its hash again: a file there that fails to load is damaged (a cut copy, a full
            # disk), and downloading elsewhere would not help.
            raise WeightsUnavailableError(
                f"The cached ImageNet weights {cached} are corrupt or incomplete, so torch.load "
                f"cannot read them ({err!r}). Delete it so that it is downloaded again, or "
                f"replace it with a good copy of {weights.url}."
            ) from err
        raise WeightsUnavailableError(
            f"Could not download the ImageNet ResNet-18 weights ({type(err).__name__}: {err}). "
            f"Either download {weights.url} on a machine with internet access and pass its "
            f"path as weights='/path/to/{weights.url.rsplit('/', 1)[-1]}' (or copy it into "
            f"{cache}), or pass weights=None to train from random initialisation."
        ) from err


def _load_backbone(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    cleaned = {}
    for key, value in state.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    own = model.state_dict()
    if any(k in cleaned and cleaned[k].shape != own[k].shape for k in _HEAD):
        for k in _HEAD:
            cleaned.pop(k, None)  # Different class count: the head starts fresh.
    missing, unexpected = model.load_state_dict(cleaned, strict=False)
    missing = [k for k in missing if k not in _HEAD]
    if missing or unexpected:
        raise ValueError(
            f"{source} is not a torchvision ResNet-18 state dict: missing {missing[:5]}, "
            f"unexpected {list(unexpected)[:5]}."
        )


def backbone_stages(model: nn.Module) -> list[list[nn.Module]]:
    """The four stages ``frozen_stages`` counts: stem + layer1, layer2, layer3, layer4."""
    m = model
    return [[m.conv1, m.bn1, m.layer1], [m.layer2], [m.layer3], [m.layer4]]  # type: ignore[list-item]


def freeze_stages(model: nn.Module, frozen_stages: int) -> None:
    """Stop gradients through the first ``frozen_stages`` stages (4 = train the head only)."""
    if not 0 <= frozen_stages <= 4:
        raise ValueError(f"frozen_stages must lie in [0, 4], got {frozen_stages}.")
    for stage in backbone_stages(model)[:frozen_stages]:
        for module in stage:
            module.requires_grad_(False)


def set_train_mode(model: nn.Module, frozen_stages: int) -> None:
    """Training mode, except that frozen stages keep their BatchNorm statistics."""
    model.train()
    for stage in backbone_stages(model)[:frozen_stages]:
        for module in stage:
            module.eval()
