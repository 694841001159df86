"""CIFAR-10/100 on disk -> one uint8 tensor on the training device.

The loader reads the official "python version" folders (``cifar-10-batches-py``,
``cifar-100-python``) through a restricted unpickler, downloads them with torchvision when they
are missing and the machine is online, and keeps one copy per (folder, device) for the life of
the process so that every trial of a study reuses it. ``write_synthetic_cifar`` writes the same
formats with learnable class structure for tests, examples and offline benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import pickle
import threading
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
import optuna

from optuna_transfer.objectives._network import bounded_wait
from optuna_transfer.objectives._safe_pickle import load_cifar_pickle


if TYPE_CHECKING:
    import torch


_logger = optuna.logging.get_logger(__name__)


@dataclass(frozen=True)
class _Format:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: str
    meta_file: str
    num_classes: int
    archive_class: str  # torchvision.datasets class that knows the archive URL and checksum


_FORMATS = {
    "cifar10": _Format(
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        label_key="labels",
        meta_file="batches.meta",
        num_classes=10,
        archive_class="CIFAR10",
    ),
    "cifar100": _Format(
        folder="cifar-100-python",
        train_files=("train",),
        test_files=("test",),
        label_key="fine_labels",
        meta_file="meta",
        num_classes=100,
        archive_class="CIFAR100",
    ),
}

DATASETS = tuple(_FORMATS)


class CifarNotFoundError(FileNotFoundError):
    """The dataset folder is missing and could not be downloaded."""


@dataclass(frozen=True)
class CifarArrays:
    """A CIFAR dataset in memory: images are ``(N, 3, 32, 32)`` uint8, labels int64."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int


@dataclass(frozen=True)
class DeviceCifar:
    """All images of a dataset (train first, then test) as one uint8 tensor on one device."""

    images: torch.Tensor
    labels: torch.Tensor
    num_train: int
    num_classes: int

    @property
    def num_test(self) -> int:
        return int(self.images.shape[0]) - self.num_train


def check_dataset(dataset: str) -> None:
    if dataset not in _FORMATS:
        raise ValueError(
            f"Unknown dataset {dataset!r}. Use one of {list(DATASETS)} (CIFAR-10 or CIFAR-100)."
        )


def dataset_folder(data_dir: str | os.PathLike[str], dataset: str) -> Path:
    """Where ``dataset`` lives under ``data_dir`` (the folder the official archive extracts)."""
    check_dataset(dataset)
    return Path(data_dir) / _FORMATS[dataset].folder


def read_cifar(
    data_dir: str | os.PathLike[str], dataset: str, *, download: bool = True
) -> CifarArrays:
    """Read ``dataset`` from ``data_dir``, downloading it with torchvision if it is missing."""
    check_dataset(dataset)
    fmt = _FORMATS[dataset]
    folder = dataset_folder(data_dir, dataset)
    expected = [folder / name for name in (*fmt.train_files, *fmt.test_files)]
    if not all(p.is_file() for p in expected):
        if not download:
            raise CifarNotFoundError(_not_found_message(data_dir, dataset, reason=None))
        _download(data_dir, dataset)
    train_x, train_y = _read_split(folder, fmt.train_files, fmt)
    test_x, test_y = _read_split(folder, fmt.test_files, fmt)
    if not len(train_y) or not len(test_y):
        # An empty split would score every trial 0 (or divide by zero) without a word.
        empty = "training" if not len(train_y) else "test"
        raise ValueError(f"{folder}: the {empty} files hold no image.")
    return CifarArrays(train_x, train_y, test_x, test_y, fmt.num_classes)


def _read_split(
    folder: Path, names: tuple[str, ...], fmt: _Format
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in names:
        path = folder / name
        batch = load_cifar_pickle(path)
        data = batch.get("data")
        label_list = batch.get(fmt.label_key)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
            raise ValueError(f"{path}: 'data' must be a uint8 array of shape (N, 3072).")
        if data.shape[1] != 3 * 32 * 32 or label_list is None or len(label_list) != len(data):
            raise ValueError(
                f"{path}: expected 'data' of shape (N, 3072) and N '{fmt.label_key}', got "
                f"{data.shape} and {None if label_list is None else len(label_list)} labels."
            )
        raw = np.asarray(label_list)
        if raw.ndim != 1 or (raw.size and raw.dtype.kind not in "iu"):
            # Float labels would be truncated (1.7 -> 1), bools taken as 0 and 1.
            raise ValueError(
                f"{path}: '{fmt.label_key}' must be a list of integer class indices, got "
                f"{raw.dtype} values of shape {raw.shape}."
            )
        y = raw.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= fmt.num_classes):
            raise ValueError(f"{path}: labels must lie in [0, {fmt.num_classes}).")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def _not_found_message(data_dir: str | os.PathLike[str], dataset: str, reason: str | None) -> str:
    fmt = _FORMATS[dataset]
    folder = dataset_folder(data_dir, dataset)
    archive = "cifar-10-python.tar.gz" if dataset == "cifar10" else "cifar-100-python.tar.gz"
    why = f" and could not be downloaded ({reason})" if reason else ""
    names = (*fmt.train_files, *fmt.test_files)
    missing = [name for name in names if not (folder / name).is_file()]
    if folder.is_dir() and 0 < len(missing) < len(names):
        # A partly extracted or partly copied folder: say which files, not only the first.
        why = f" (missing: {', '.join(missing)}){why}"
    others = [d for d in _FORMATS if d != dataset and dataset_folder(data_dir, d).is_dir()]
    hint = (
        f" ({Path(data_dir)} holds {others[0]}: did you mean dataset={others[0]!r}?)"
        if others
        else ""
    )
    return (
        f"{dataset} was not found at {folder}{why}{hint}. Download "
        f"https://www.cs.toronto.edu/~kriz/{archive} on a machine with internet access and "
        f"extract it into {Path(data_dir)} so that {folder / (missing or names)[0]} exists, or "
        "pass data_dir= pointing at the folder that contains "
        f"'{fmt.folder}'."
    )


def _download(data_dir: str | os.PathLike[str], dataset: str) -> None:
    # Only torchvision's archive fetch (URL + MD5 check) is used, not the dataset class itself:
    # the class would unpickle the batches with plain ``pickle.load``.
    try:
        import torchvision.datasets
        from torchvision.datasets.utils import download_and_extract_archive
    except ImportError:
        raise CifarNotFoundError(
            _not_found_message(data_dir, dataset, reason="torchvision is not installed")
        ) from None
    archive = getattr(torchvision.datasets, _FORMATS[dataset].archive_class)
    _logger.info(f"Downloading {dataset} into {data_dir}.")
    try:
        with bounded_wait():
            download_and_extract_archive(
                archive.url,
                download_root=str(data_dir),
                filename=archive.filename,
                md5=archive.tgz_md5,
            )
    except Exception as err:  # Offline machines fail in urllib, DNS, SSL, timeouts or checksums.
        raise CifarNotFoundError(
            _not_found_message(data_dir, dataset, reason=f"{type(err).__name__}: {err}")
        ) from err


_CACHE: dict[tuple[Any, ...], DeviceCifar] = {}
_CACHE_LOCK = threading.Lock()


def load_on_device(
    data_dir: str | os.PathLike[str], dataset: str, device: torch.device
) -> DeviceCifar:
    """The dataset as one uint8 tensor on ``device``; read from disk once per process, and
    again when a batch file changes (its size or modification time: files replaced in a
    notebook session are not served from the old copy)."""
    import torch

    check_dataset(dataset)
    folder = dataset_folder(data_dir, dataset)
    key = (str(folder.resolve()), dataset, str(device), _files_signature(folder, dataset))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None:
            arrays = read_cifar(data_dir, dataset)
            images = np.concatenate([arrays.train_images, arrays.test_images])
            labels = np.concatenate([arrays.train_labels, arrays.test_labels])
            cached = DeviceCifar(
                images=torch.from_numpy(images).to(device),
                labels=torch.from_numpy(labels).to(device),
                num_train=len(arrays.train_labels),
                num_classes=arrays.num_classes,
            )
            # The copy of the files as they were is not needed any more.
            for old in [k for k in _CACHE if k[:3] == key[:3]]:
                del _CACHE[old]
            _CACHE[key] = cached
    return cached


def _files_signature(folder: Path, dataset: str) -> tuple[tuple[str, int, int] | None, ...]:
    """Size and modification time of each batch file (None for a missing one)."""
    fmt = _FORMATS[dataset]
    out: list[tuple[str, int, int] | None] = []
    for name in (*fmt.train_files, *fmt.test_files):
        try:
            st = (folder / name).stat()
        except OSError:
            out.append(None)
            continue
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def clear_cache() -> None:
    """Drop the per-process dataset cache (e.g. after the files on disk were replaced)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def split_train_val(
    num_train: int, val_fraction: float, train_subset: float | int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation images, both drawn from the training set.

    The validation part depends on ``seed`` and ``val_fraction`` only, so it stays the same
    whatever ``train_subset`` a cheap source study uses. The test set is never touched here.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(num_train)
    n_val = int(round(val_fraction * num_train))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    val_idx, rest = order[:n_val], order[n_val:]
    if train_subset is None:
        n_fit = len(rest)
    elif isinstance(train_subset, float):
        n_fit = max(1, int(round(train_subset * len(rest))))
    else:
        n_fit = int(train_subset)
        if n_fit > len(rest):
            raise ValueError(
                f"train_subset={n_fit} is larger than the {len(rest)} training images left "
                f"after the validation split; pass at most {len(rest)} or a fraction in (0, 1]."
            )
    if n_fit < 2 or len(val_idx) == 0:
        raise ValueError(
            f"{num_train} training images with val_fraction={val_fraction} and "
            f"train_subset={train_subset} leave {n_fit} images to fit and {len(val_idx)} to "
            "validate; both need at least 2 and 1. Use more data or a larger fraction."
        )
    return np.sort(rest[:n_fit]), np.sort(val_idx)


def write_synthetic_cifar(
    root: str | os.PathLike[str],
    n_train: int,
    n_test: int,
    num_classes: int = 10,
    seed: int = 0,
    *,
    used_classes: int | None = None,
) -> Path:
    """Write a small learnable dataset in the official CIFAR-10 or CIFAR-100 on-disk format.

    Each class gets a colour and an oriented stripe pattern; images are that template plus
    noise, so a model can learn the classes within an epoch. Files are readable by the current
    user only (0o600, folders 0o700). ``num_classes=10`` writes ``cifar-10-batches-py``
    (``data_batch_1..5``, ``test_batch``, ``batches.meta``); ``num_classes=100`` writes
    ``cifar-100-python`` (``train``, ``test``, ``meta``).

    Example:

        .. testcode::

            import tempfile

            from optuna_transfer.objectives import write_synthetic_cifar

            folder = write_synthetic_cifar(tempfile.mkdtemp(), n_train=50, n_test=20)
            assert folder.name == "cifar-10-batches-py"

    Args:
        root: Folder that will contain the dataset folder (created if missing).
        n_train: Number of training images (at least 1).
        n_test: Number of test images (at least 1).
        num_classes: 10 (CIFAR-10 format) or 100 (CIFAR-100 format).
        seed: Seed of the templates, labels and noise.
        used_classes: Draw labels from the first ``used_classes`` classes only (default: all),
            a task in the same format that a few hundred images and steps can learn.

    Returns:
        The dataset folder, to be found again by ``data_dir=root``.
    """
    if num_classes not in (10, 100):
        raise ValueError(f"num_classes must be 10 or 100 (the CIFAR formats), got {num_classes}.")
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}.")
    if used_classes is None:
        used_classes = num_classes
    if not isinstance(used_classes, int) or not 1 <= used_classes <= num_classes:
        raise ValueError(
            f"used_classes must be an int in [1, num_classes={num_classes}], "
            f"got {used_classes!r}."
        )
    dataset = "cifar10" if num_classes == 10 else "cifar100"
    fmt = _FORMATS[dataset]
    rng = np.random.default_rng(seed)
    templates = _class_templates(num_classes, rng)

    def make(n: int) -> tuple[np.ndarray, list[int]]:
        labels = rng.permutation(np.arange(n) % used_classes)
        noise = rng.normal(0.0, 24.0, size=(n, 3, 32, 32))
        images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
        return images.reshape(n, 3 * 32 * 32), [int(y) for y in labels]

    root_path = Path(root)
    if not root_path.exists():
        root_path.mkdir(mode=0o700, parents=True)
    folder = root_path / fmt.folder
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask and ignored if it existed.

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    names = [f"class_{c}".encode() for c in range(num_classes)]
    # Keys and strings are bytes, as Python 3 sees the official (Python 2) files.
    if dataset == "cifar10":
        chunks = np.array_split(np.arange(n_train), len(fmt.train_files))
        for i, (name, idx) in enumerate(zip(fmt.train_files, chunks, strict=True)):
            _write_pickle(
                folder / name,
                {
                    b"batch_label": f"training batch {i + 1} of 5".encode(),
                    b"labels": [train_y[j] for j in idx],
                    b"data": train_x[idx],
                    b"filenames": [f"synthetic_{j}.png".encode() for j in idx],
                },
            )
        _write_pickle(
            folder / "test_batch",
            {
                b"batch_label": b"testing batch 1 of 1",
                b"labels": test_y,
                b"data": test_x,
                b"filenames": [f"synthetic_test_{j}.png".encode() for j in range(n_test)],
            },
        )
        _write_pickle(
            folder / "batches.meta",
            {
                b"label_names": names,
                b"num_cases_per_batch": len(chunks[0]),
                b"num_vis": 3072,
            },
        )
    else:
        for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
            _write_pickle(
                folder / name,
                {
                    b"filenames": [f"synthetic_{j}.png".encode() for j in range(len(y))],
                    b"batch_label": f"{name}ing batch 1 of 1".encode(),
                    b"fine_labels": y,
                    b"coarse_labels": [c // 5 for c in y],
                    b"data": x,
                },
            )
        _write_pickle(
            folder / "meta",
            {
                b"fine_label_names": names,
                b"coarse_label_names": [f"superclass_{c}".encode() for c in range(20)],
            },
        )
    return folder


def _class_templates(num_classes: int, rng: np.random.Generator) -> np.ndarray:
    colours = rng.uniform(40, 215, size=(num_classes, 3, 1, 1))
    angles = rng.uniform(0, np.pi, size=(num_classes, 1, 1, 1))
    freqs = rng.uniform(0.15, 0.6, size=(num_classes, 1, 1, 1))
    yy, xx = np.mgrid[0:32, 0:32]
    phase = freqs * (np.cos(angles) * xx + np.sin(angles) * yy)
    return colours + 45.0 * np.sin(phase)


def _write_pickle(path: Path, obj: dict[bytes, Any]) -> None:
    # Written to a private temporary name and renamed, so readers never see half a file and
    # the file is never readable by others, even for a moment.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(obj, f, protocol=4)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
