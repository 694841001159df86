"""Training throughput: CifarFineTune's device-side fast path vs a torchvision DataLoader loop.

Both loops train the same ResNet-18 (standard stem, random init) with the same batch size,
optimizer and augmentation (random crop 32 with 4 px padding + horizontal flip, then
normalisation); only the input pipeline differs. Runs on synthetic CIFAR-10 unless --data-dir
points at a real ``cifar-10-batches-py``. Where CUDA is available it also times one 5-epoch
``CifarFineTune`` trial on the same images (by default 2,048 synthetic ones, not CIFAR-10's
50,000) and labels it with that image count; a full-size trial is extrapolated, and says so.
``benchmarks/gpu_check.py`` measures full-size trials. No GPU number is printed unless it was
measured in this run.

    python benchmarks/cifar_throughput.py                 # CPU, about a minute on 2 cores
    python benchmarks/cifar_throughput.py --device cuda --steps 200 --data-dir data
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

import numpy as np


if not __package__:
    # Run as a file (`python benchmarks/cifar_throughput.py`): make the repository root
    # importable, so the `benchmarks.*` imports below resolve as they do under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance


CIFAR10_FIT = 45_000  # CIFAR-10's 50,000 training images less CifarFineTune's 10% validation


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import torch

    from optuna_transfer.objectives import CifarFineTune
    from optuna_transfer.objectives import write_synthetic_cifar
    from optuna_transfer.objectives._cifar_data import load_on_device
    from optuna_transfer.objectives._cifar_data import read_cifar
    from optuna_transfer.objectives._device import resolve_device

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="folder with cifar-10-batches-py (default: synthetic)")
    parser.add_argument("--n-train", type=int, default=2048, help="synthetic training images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per loop")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--trial-epochs", type=int, default=5, help="epochs of the CUDA trial")
    args = parser.parse_args(argv)

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    tmp = None
    if args.data_dir is None:
        tmp = tempfile.TemporaryDirectory()
        data_dir = tmp.name
        write_synthetic_cifar(data_dir, n_train=args.n_train, n_test=256, seed=0)
    else:
        data_dir = args.data_dir
    needed = (args.warmup_steps + args.steps) * args.batch_size
    arrays = read_cifar(data_dir, "cifar10")
    if len(arrays.train_labels) < needed:
        parser.error(f"need {needed} training images for the requested steps; use --n-train.")

    rows = []
    fast = _fast_path(load_on_device(data_dir, "cifar10", device), args, device)
    rows.append({"loop": "fast path (device tensor, batched augmentation)", **fast})
    loader = _dataloader_path(arrays.train_images, arrays.train_labels, args, device)
    name = f"DataLoader + torchvision transforms ({args.workers} workers)"
    rows.append({"loop": name, **loader})

    trial_seconds = None
    if device.type == "cuda":
        objective = CifarFineTune(
            "cifar10", data_dir, epochs=args.trial_epochs, device=str(device), weights=None,
            fixed={"batch_size": args.batch_size, "optimizer": "sgd", "lr": 0.05,
                   "frozen_stages": 0, "augment_strength": 0.5},
        )
        import optuna

        start = time.perf_counter()
        objective(optuna.trial.FixedTrial({
            "weight_decay": 5e-4, "momentum": 0.9, "label_smoothing": 0.0,
            "warmup_fraction": 0.05, "batch_size": args.batch_size, "optimizer": "sgd",
            "lr": 0.05, "frozen_stages": 0, "augment_strength": 0.5,
        }))
        torch.cuda.synchronize(device)
        trial_seconds = time.perf_counter() - start

    source = "synthetic" if args.data_dir is None else args.data_dir
    _print_table(rows, args, device, trial_seconds, len(arrays.train_labels), source, argv)
    if tmp is not None:
        tmp.cleanup()
    return rows


def _model(device: Any) -> Any:
    import torch
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None, num_classes=10).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def _fast_path(data: Any, args: argparse.Namespace, device: Any) -> dict[str, float]:
    import torch

    from optuna_transfer.objectives._cifar_train import FastTrainer
    from optuna_transfer.objectives._cifar_train import TrainConfig

    config = TrainConfig(
        lr=0.05, weight_decay=5e-4, optimizer="sgd", momentum=0.9,
        batch_size=args.batch_size, label_smoothing=0.0, frozen_stages=0, warmup_fraction=0.0,
        augment_strength=0.5, epochs=1, resolution=32,
    )
    train_idx = torch.arange(data.num_train, device=device)
    trainer = FastTrainer(_model(device), data, train_idx, config, device, seed=0)
    trainer.train_epoch(1, max_steps=args.warmup_steps)
    _sync(device)
    start = time.perf_counter()
    trainer.train_epoch(2, max_steps=args.steps)  # ends with a loss check, which syncs
    _sync(device)
    seconds = time.perf_counter() - start
    return {"steps": args.steps, "seconds": seconds, "images_per_s": args.steps * args.batch_size
            / seconds}


class _CifarDataset:
    """What a torchvision.datasets.CIFAR10 does per item: HWC uint8 -> PIL -> transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Any) -> None:
        self.images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def _dataloader_path(
    images: np.ndarray, labels: np.ndarray, args: argparse.Namespace, device: Any
) -> dict[str, float]:
    import torch
    from torch.utils.data import DataLoader
    from torchvision import transforms

    from optuna_transfer.objectives._cifar_augment import MEAN
    from optuna_transfer.objectives._cifar_augment import STD

    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])
    dataset: Any = _CifarDataset(images, labels, transform)
    loader: Any = DataLoader(
        dataset, batch_size=args.batch_size, shuffle=True,
        drop_last=True, num_workers=args.workers, pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    model = _model(device)
    model.train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4,
        fused=True if device.type == "cuda" else None,
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    cuda = device.type == "cuda"
    start = 0.0
    step = 0
    for x, y in loader:
        if step == args.warmup_steps:
            _sync(device)
            start = time.perf_counter()
        x = x.to(device, non_blocking=True)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step == args.warmup_steps + args.steps:
            break
    float(loss.detach())  # same final synchronisation as the fast path's loss check
    _sync(device)
    seconds = time.perf_counter() - start
    return {"steps": args.steps, "seconds": seconds, "images_per_s": args.steps * args.batch_size
            / seconds}


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _print_table(
    rows: list[dict[str, Any]], args: argparse.Namespace, device: Any,
    trial_seconds: float | None, n_train: int, source: str, argv: list[str] | None,
) -> None:
    import torch

    command = provenance.command_line(
        "benchmarks.cifar_throughput", sys.argv[1:] if argv is None else argv
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = (f"CPU: {provenance.cpu_model()}, {os.cpu_count()} cores, "
                 f"{torch.get_num_threads()} threads")
    print(f"Machine: {where}; load average {load}")
    print(f"torch {torch.__version__}; {n_train} training images; batch {args.batch_size}; "
          f"{args.steps} timed steps after {args.warmup_steps} warm-up steps")
    print(f"Versions: {provenance.versions()}")
    print(f"Command: `{command}`")
    print()
    print("| loop | device | images/s | seconds |")
    print("|---|---|---:|---:|")
    for row in rows:
        print(f"| {row['loop']} | {device} | {row['images_per_s']:.1f} | {row['seconds']:.2f} |")
    speedup = rows[0]["images_per_s"] / rows[1]["images_per_s"]
    print(f"\nFast path / DataLoader: {speedup:.2f}x")
    if trial_seconds is None:
        print(f"Seconds per {args.trial_epochs}-epoch trial on CUDA: not measured (no CUDA "
              "device in this run).")
    else:
        # CifarFineTune trains on what its 10% validation split leaves.
        n_fit = n_train - int(round(0.1 * n_train))
        print(f"Seconds per {args.trial_epochs}-epoch CifarFineTune trial on {where}, measured "
              f"on {n_fit:,} training images ({source}): {trial_seconds:.1f}")
        if n_fit == CIFAR10_FIT:
            return
        full = trial_seconds * CIFAR10_FIT / n_fit
        print(f"Extrapolated linearly to CIFAR-10's {CIFAR10_FIT:,} training images (50,000 "
              f"less the validation split), not measured: {full:.0f} s; "
              "benchmarks/gpu_check.py measures a full-size trial.")


if __name__ == "__main__":
    main()
