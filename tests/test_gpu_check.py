"""benchmarks/gpu_check.py in its CPU mode: the same code path as on a GPU, tiny sizes."""

from __future__ import annotations

import math
import os
from pathlib import Path
import subprocess
import sys

import pytest

# From the `vision` extra, which the test command installs: missing means failing, not skipping.
import torch  # noqa: E402

from benchmarks import cifar_throughput  # noqa: E402
from benchmarks import gpu_check  # noqa: E402


ROOT = Path(__file__).resolve().parents[1]
NUMERIC = ("first trial s", "later trials s", "train images/s", "peak mem MiB", "val acc",
           "test acc")


# The target is under a minute on this CPU; the limit leaves room for a busy runner.
@pytest.mark.timeout(180)
def test_tiny_cpu_check_prints_one_complete_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threads = torch.get_num_threads()
    out = tmp_path / "gpu_check.md"
    rows = gpu_check.main(["--device", "cpu", "--tiny", "--out", str(out)])
    assert torch.get_num_threads() == threads  # --tiny's single thread is not left behind

    assert [r["run"] for r in rows[:4]] == [
        "batch 32, eager", "batch 32, graphs", "batch 128, eager", "batch 128, graphs"
    ]
    for row in rows[:4]:
        assert row["trials"] == "2 COMPLETE", row
        for column in NUMERIC:
            assert isinstance(row[column], float) and math.isfinite(row[column]), (column, row)
        assert row["first trial s"] > 0 and row["train images/s"] > 0
        assert 0.0 <= row["val acc"] <= 1.0 and 0.0 <= row["test acc"] <= 1.0
        assert row["GPU util %"] is None  # no GPU: nothing is made up
    assert rows[1]["graphs"] == "CPU: persistent model, no capture"
    # On a CPU the persistent-model path must train exactly like the eager one.
    assert (rows[0]["val acc"], rows[0]["test acc"]) == (rows[1]["val acc"], rows[1]["test acc"])
    assert rows[0]["val acc"] > 0.3  # learns: chance is 0.1

    oom = rows[4]
    assert oom["trials"] == "FAIL, COMPLETE"
    assert "GPU out of memory with batch_size=32" in oom["run"]
    assert 0.0 <= oom["val acc"] <= 1.0

    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("|")]
    assert table[0] == "| " + " | ".join(gpu_check.COLUMNS) + " |"
    assert len(table) == 2 + 5  # header, rule, five runs
    assert all(line.count("|") == len(gpu_check.COLUMNS) + 1 for line in table)
    assert "Targets (5-epoch trial <= 5 s at batch 1024, GPU utilisation > 50%): not " \
        "measured" in printed
    written = out.read_text()
    assert "\n".join(table) in written and "Command:" in written


def test_wrapper_finds_python_and_the_checkout(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHON"] = sys.executable
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--help"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: gpu_check.py"), result.stdout
    assert "--tiny" in result.stdout


def test_throughput_script_labels_its_trial_with_the_images_it_trained_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # cifar_throughput times its CUDA trial on 2,048 synthetic images by default: the line must
    # say so, and a CIFAR-10-sized figure must be marked as an extrapolation.
    import argparse

    args = argparse.Namespace(batch_size=64, steps=20, warmup_steps=3, trial_epochs=5)
    rows = [{"loop": "fast", "images_per_s": 100.0, "seconds": 1.0},
            {"loop": "loader", "images_per_s": 50.0, "seconds": 2.0}]
    cifar_throughput._print_table(
        rows, args, torch.device("cpu"), 3.0, 2048, "synthetic", ["--device", "cpu"]
    )
    out = capsys.readouterr().out
    assert "5-epoch CifarFineTune trial on CPU" in out
    assert "measured on 1,843 training images (synthetic): 3.0" in out
    assert "Extrapolated linearly to CIFAR-10's 45,000 training images" in out
    assert "not measured: 73 s" in out  # 3.0 s x 45,000 / 1,843


def test_an_output_file_that_cannot_be_written_is_refused_before_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # On a GPU the check runs for minutes; before, an unwritable --out failed with a traceback
    # after all of it, and the report was lost.
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    out = a_file / "gpu_check.md"
    with pytest.raises(SystemExit) as info:
        gpu_check.main(["--device", "cpu", "--tiny", "--out", str(out)])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert "|" not in captured.out  # nothing ran
    assert captured.err.strip().splitlines()[-1].endswith(
        f"--out {out}: cannot write there ({a_file} is not a folder); give a file in a folder "
        "that can be created and written to"
    )
