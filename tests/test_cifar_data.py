"""CIFAR files: the real on-disk formats, the restricted unpickler, splits and permissions.

Nothing here needs torch: the data layer must work (and refuse hostile files) without it.
"""

from __future__ import annotations

import os
from pathlib import Path
import pickle
import stat
import subprocess
import sys

import numpy as np
import pytest

from optuna_transfer.objectives._cifar_data import CifarNotFoundError
from optuna_transfer.objectives._cifar_data import read_cifar
from optuna_transfer.objectives._cifar_data import split_train_val
from optuna_transfer.objectives._cifar_data import write_synthetic_cifar
from optuna_transfer.objectives._safe_pickle import load_cifar_pickle
from optuna_transfer.objectives._safe_pickle import UnsafePickleError


REPO = Path(__file__).resolve().parents[1]


class _System:
    """Unpickling this runs ``os.system(command)``: what a hostile batch file would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


class _Exec:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (self.code,))


def test_cifar10_format_roundtrip(tmp_path: Path) -> None:
    folder = write_synthetic_cifar(tmp_path, n_train=103, n_test=17, seed=3)
    assert folder == tmp_path / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    )
    # The keys are bytes, as Python 3 sees the official Python 2 files.
    with open(folder / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert raw[b"data"].dtype == np.uint8 and raw[b"data"].shape == (21, 3072)
    assert isinstance(raw[b"labels"], list) and isinstance(raw[b"labels"][0], int)

    arrays = read_cifar(tmp_path, "cifar10", download=False)
    assert arrays.num_classes == 10
    assert arrays.train_images.shape == (103, 3, 32, 32)
    assert arrays.test_images.shape == (17, 3, 32, 32)
    assert arrays.train_images.dtype == np.uint8
    np.testing.assert_array_equal(arrays.train_images[:21].reshape(21, -1), raw[b"data"])
    np.testing.assert_array_equal(arrays.train_labels[:21], raw[b"labels"])
    assert np.bincount(arrays.train_labels, minlength=10).min() == 10  # balanced classes
    meta = load_cifar_pickle(folder / "batches.meta")
    assert meta["label_names"][0] == b"class_0"


def test_cifar100_format_roundtrip(tmp_path: Path) -> None:
    folder = write_synthetic_cifar(tmp_path, n_train=250, n_test=120, num_classes=100)
    assert sorted(p.name for p in folder.iterdir()) == ["meta", "test", "train"]
    train = load_cifar_pickle(folder / "train")
    assert set(train) == {"filenames", "batch_label", "fine_labels", "coarse_labels", "data"}
    assert [c // 5 for c in train["fine_labels"]] == train["coarse_labels"]
    arrays = read_cifar(tmp_path, "cifar100", download=False)
    assert arrays.num_classes == 100
    assert arrays.train_images.shape == (250, 3, 32, 32)
    assert arrays.train_labels.max() == 99 and arrays.test_labels.shape == (120,)
    assert len(load_cifar_pickle(folder / "meta")["coarse_label_names"]) == 20


def test_classes_differ_in_colour(tmp_path: Path) -> None:
    arrays = read_cifar(write_synthetic_cifar(tmp_path, 500, 10).parent, "cifar10")
    means = np.stack([
        arrays.train_images[arrays.train_labels == c].mean(axis=(0, 2, 3)) for c in range(10)
    ])
    gaps = np.abs(means[:, None, :] - means[None, :, :]).max(axis=2)
    assert gaps[~np.eye(10, dtype=bool)].min() > 5.0  # a learnable signal per class


@pytest.mark.parametrize("module", [b"numpy.core.multiarray", b"numpy._core.multiarray"])
def test_either_numpy_global_name_accepted(tmp_path: Path, module: bytes) -> None:
    # The official files name numpy 1's ``numpy.core.multiarray``, numpy 2 writes
    # ``numpy._core.multiarray``; a file of either must load under the installed numpy, whichever
    # it is. Protocol 3 writes globals as text lines, so the module name can be swapped.
    data = {b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [1, 2]}
    blob = pickle.dumps(data, protocol=3)
    written = next(m for m in (b"numpy._core.multiarray", b"numpy.core.multiarray") if m in blob)
    path = tmp_path / "batch"
    path.write_bytes(blob.replace(written, module))
    assert module in path.read_bytes()
    loaded = load_cifar_pickle(path)
    np.testing.assert_array_equal(loaded["data"], data[b"data"])
    assert loaded["labels"] == [1, 2]


@pytest.mark.parametrize("payload_kind", ["os.system", "exec"])
def test_malicious_batch_refused_and_nothing_runs(tmp_path: Path, payload_kind: str) -> None:
    folder = write_synthetic_cifar(tmp_path / "data", n_train=20, n_test=5)
    marker, control = tmp_path / "pwned", tmp_path / "control"
    (folder / "data_batch_3").write_bytes(_evil_batch(payload_kind, marker))

    with pytest.raises(UnsafePickleError, match="data_batch_3.*Refusing to load global"):
        read_cifar(tmp_path / "data", "cifar10", download=False)
    assert not marker.exists()

    # The same payload is live: plain pickle runs it.
    pickle.loads(_evil_batch(payload_kind, control))
    assert control.exists()


def _evil_batch(kind: str, marker: Path) -> bytes:
    if kind == "os.system":
        payload: object = _System(f"touch {marker}")
    else:
        payload = _Exec(f"open({str(marker)!r}, 'w').close()")
    return pickle.dumps({b"data": payload, b"labels": []}, protocol=2)


def test_malformed_batch_rejected(tmp_path: Path) -> None:
    folder = write_synthetic_cifar(tmp_path, n_train=20, n_test=5)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((5, 3072), np.float32), b"labels": [0] * 5}, f)
    with pytest.raises(ValueError, match="uint8"):
        read_cifar(tmp_path, "cifar10", download=False)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((5, 3072), np.uint8), b"labels": [10] * 5}, f)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        read_cifar(tmp_path, "cifar10", download=False)


def test_written_files_private_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        folder = write_synthetic_cifar(tmp_path / "new" / "root", n_train=10, n_test=5)
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert len(modes) == 7 and set(modes.values()) == {0o600}


def test_missing_dataset_message_says_where(tmp_path: Path) -> None:
    with pytest.raises(CifarNotFoundError) as info:
        read_cifar(tmp_path, "cifar100", download=False)
    message = str(info.value)
    assert str(tmp_path / "cifar-100-python") in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in message
    with pytest.raises(ValueError, match="Unknown dataset 'mnist'"):
        read_cifar(tmp_path, "mnist")


def test_split_is_seeded_disjoint_and_ignores_subset_for_validation() -> None:
    train, val = split_train_val(1000, 0.1, None, seed=7)
    assert len(train) == 900 and len(val) == 100
    assert not set(train) & set(val)
    train_sub, val_sub = split_train_val(1000, 0.1, 0.25, seed=7)
    np.testing.assert_array_equal(val_sub, val)
    assert len(train_sub) == 225 and set(train_sub) <= set(train)
    train_n, _ = split_train_val(1000, 0.1, 50, seed=7)
    assert len(train_n) == 50
    other_train, other_val = split_train_val(1000, 0.1, None, seed=8)
    assert not np.array_equal(other_val, val)
    with pytest.raises(ValueError, match="larger than the 900 training images"):
        split_train_val(1000, 0.1, 901, seed=0)


def test_writer_validates_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes must be 10 or 100"):
        write_synthetic_cifar(tmp_path, 10, 10, num_classes=20)
    with pytest.raises(ValueError, match="n_test must be a positive int"):
        write_synthetic_cifar(tmp_path, 10, 0)


def test_package_imports_and_writes_data_without_torch(tmp_path: Path) -> None:
    code = (
        "import importlib.abc, sys\n"
        # A finder that refuses torch: an import of it anywhere raises ImportError. (Setting
        # sys.modules['torch'] = None instead trips scipy, which inspects sys.modules.)
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'torchvision'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import optuna_transfer.objectives as o\n"
        "from optuna_transfer.objectives._cifar_data import read_cifar\n"
        f"o.write_synthetic_cifar({str(tmp_path)!r}, 20, 5)\n"
        f"print(read_cifar({str(tmp_path)!r}, 'cifar10').train_images.shape)\n"
        "print(o.CifarFineTune.__name__, o.pretrain_checkpoint.__name__)\n"
        "assert 'torch' not in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split("\n")[:2] == ["(20, 3, 32, 32)", "CifarFineTune pretrain_checkpoint"]


def _rewrite(path: Path, **changes: object) -> None:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    batch.update({k.encode(): v for k, v in changes.items()})
    with open(path, "wb") as f:
        pickle.dump(batch, f)


@pytest.mark.parametrize("damage", ["truncated", "empty", "gzipped"])
def test_a_corrupt_batch_file_is_named_with_the_fix(tmp_path: Path, damage: str) -> None:
    # On main: "pickle data was truncated", "Ran out of input", "invalid load key", no path.
    folder = write_synthetic_cifar(tmp_path, n_train=50, n_test=10)
    path = folder / "data_batch_2"
    content = path.read_bytes()
    path.write_bytes(
        {"truncated": content[: len(content) // 2], "empty": b"", "gzipped": b"\x1f\x8b\x08"}[
            damage
        ]
    )
    with pytest.raises(ValueError, match=r"data_batch_2 is corrupt or incomplete .*archive"):
        read_cifar(tmp_path, "cifar10", download=False)


def test_labels_that_are_not_class_indices_or_an_empty_split_are_refused(
    tmp_path: Path,
) -> None:
    # On main float labels were truncated (1.7 -> 1) and an empty test batch scored 0.
    folder = write_synthetic_cifar(tmp_path, n_train=50, n_test=10)
    _rewrite(folder / "data_batch_1", labels=[1.7] * 10)
    with pytest.raises(ValueError, match="'labels' must be a list of integer class indices"):
        read_cifar(tmp_path, "cifar10", download=False)
    folder = write_synthetic_cifar(tmp_path, n_train=50, n_test=10)
    _rewrite(folder / "test_batch", data=np.zeros((0, 3072), np.uint8), labels=[])
    with pytest.raises(ValueError, match="the test files hold no image"):
        read_cifar(tmp_path, "cifar10", download=False)
