"""What the CIFAR objective's tests share: the cheapest settings that still train every layer,
and one torch thread."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch


CHEAP_PARAMS: dict[str, Any] = {
    "batch_size": 16, "optimizer": "adam", "lr": 1e-3, "frozen_stages": 0, "weight_decay": 1e-6,
    "momentum": 0.9, "label_smoothing": 0.0, "warmup_fraction": 0.0, "augment_strength": 0.5,
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    # Tiny batches gain nothing from intra-op threads, and on a busy 2-core CI runner two
    # spinning OpenMP threads made these tests 10x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
