"""Persistent CUDA-graphed models: one per training shape, reused by every trial of that shape.

At 32 px a ResNet-18 step is a few hundred small kernels, and eager PyTorch spends longer
launching them than the GPU spends running them. Replaying the forward and backward passes as
CUDA graphs turns those launches into two.

Why ``torch.cuda.make_graphed_callables`` and not ``torch.compile(mode="reduce-overhead")``:

* Only the model's forward and backward are captured. The loss (label smoothing), the optimizer
  (SGD/Adam/AdamW, momentum, weight decay) and the per-step learning rate stay eager, so one
  capture serves every trial of a shape whatever hyperparameters it samples; a compiled step
  would bake them in and re-record or recompile when they change.
* Capturing takes seconds, not the minute or more inductor needs per shape (and per
  ``frozen_stages``, since ``requires_grad`` changes force a recompile), and it needs no C++
  compiler or Triton at run time.
* The optimizer remains torch's fused kernel: a handful of launches per step either way.

A graph replays fixed memory addresses, so the model must stay the same tensors across trials:
each trial's initial weights are copied into the persistent model (``load_state_dict`` copies in
place) instead of building a new one. The capture function is a parameter, so the persistence
and reload logic runs (and is tested) on a CPU with a capture that does not need CUDA.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import copy
from dataclasses import dataclass
import threading
from typing import TYPE_CHECKING

from optuna_transfer.objectives._cifar_model import set_train_mode
from optuna_transfer.objectives._cifar_train import prepare_model


if TYPE_CHECKING:
    import torch
    from torch import nn


Capture = Callable[["nn.Module", "torch.Tensor"], "nn.Module"]


@dataclass(frozen=True)
class GraphKey:
    """Everything a captured graph's shapes and kernels depend on."""

    num_classes: int
    batch_size: int
    resolution: int
    frozen_stages: int


def capture_cuda_graph(model: nn.Module, sample: torch.Tensor) -> nn.Module:
    """Graph ``model``'s training forward and backward for inputs shaped like ``sample``.

    The returned module is ``model`` itself: in training mode its forward replays the graphs,
    in eval mode it runs eagerly (so evaluation batches may have any size).
    """
    import torch

    # Graph capture refuses autocast's weight cache; training runs with it off as well.
    with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
        graphed = torch.cuda.make_graphed_callables(model, (sample,))
    if not isinstance(graphed, torch.nn.Module):  # a module comes back with a new forward
        raise TypeError(f"make_graphed_callables returned {type(graphed).__name__}.")
    return graphed


@dataclass
class _Entry:
    model: nn.Module | None = None  # None while the first trial of this shape captures it
    busy: bool = True


class GraphCache:
    """Persistent, captured models keyed by :class:`GraphKey`; at most ``max_entries`` kept.

    A model serves one trial at a time; a trial that finds its shape busy (``n_jobs > 1``)
    trains eagerly instead.
    """

    def __init__(
        self,
        device: torch.device,
        capture: Capture = capture_cuda_graph,
        max_entries: int = 4,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}.")
        self.device = device
        self.capture = capture
        self.max_entries = max_entries
        self.captures = 0  # how many graphs were captured (a reused shape adds none)
        self._entries: OrderedDict[GraphKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return sum(e.model is not None for e in self._entries.values())

    @contextlib.contextmanager
    def model_for(self, key: GraphKey, fresh: nn.Module) -> Iterator[nn.Module | None]:
        """The persistent model for ``key`` holding ``fresh``'s weights and buffers, or
        ``None`` when another trial is using it. ``fresh`` itself is left untouched."""
        entry = self._acquire(key, fresh)
        if entry is None:
            yield None
            return
        try:
            assert entry.model is not None
            yield entry.model
        finally:
            with self._lock:
                entry.busy = False
                self._evict()

    def clear(self) -> None:
        """Drop every idle model and its graphs (their memory returns to the allocator)."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if not e.busy]:
                del self._entries[key]

    def _acquire(self, key: GraphKey, fresh: nn.Module) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                if entry.busy:
                    return None
                entry.busy = True
                self._entries.move_to_end(key)
            else:
                entry = self._entries[key] = _Entry()
        if entry.model is None:
            try:
                entry.model = self._capture(key, fresh)
            except BaseException:
                with self._lock:
                    del self._entries[key]
                raise
        # The capture's warm-up steps changed the weights and BatchNorm statistics, and a
        # reused model holds the last trial's: either way, load this trial's starting point.
        # load_state_dict copies into the existing tensors, so the graphs' addresses stay valid.
        entry.model.load_state_dict(fresh.state_dict())
        return entry

    def _capture(self, key: GraphKey, fresh: nn.Module) -> nn.Module:
        import torch

        model = copy.deepcopy(fresh)
        prepare_model(model, key.frozen_stages, self.device)
        set_train_mode(model, key.frozen_stages)  # the mode every training step runs in
        gen = torch.Generator(device=self.device).manual_seed(0)
        sample = torch.randn(
            (key.batch_size, 3, key.resolution, key.resolution), generator=gen, device=self.device
        )
        if self.device.type == "cuda":
            sample = sample.contiguous(memory_format=torch.channels_last)
        captured = self.capture(model, sample)
        self.captures += 1
        return captured

    def _evict(self) -> None:
        # Called with the lock held: the least recently used idle models go first.
        idle = [k for k, e in self._entries.items() if not e.busy]
        for key in idle[: max(0, len(self._entries) - self.max_entries)]:
            del self._entries[key]
