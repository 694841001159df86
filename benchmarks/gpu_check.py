"""One-shot GPU check of CifarFineTune: everything a first GPU should confirm, in one table.

Needs a Python with the package and its ``vision`` extra (torch, torchvision) installed, and no
network: the data is synthetic CIFAR-10 written in the official on-disk format at full size
(50,000 training + 10,000 test images) and the weights are random (``weights=None``). It runs
3 trials of 5 epochs at batch 256 and at batch 1024, each with and without CUDA graphs, then a
study whose first trial hits a real, injected out-of-memory error, and prints one markdown
table: seconds per trial, training images/s, peak GPU memory, GPU utilisation and accuracy.
On an H100/H200 it is meant to finish well inside 8 minutes.

    bash benchmarks/gpu_check.sh --out gpu_check.md       # GPU: the full check
    python benchmarks/gpu_check.py --device cpu --tiny    # CPU: same code path, tiny sizes

``--tiny`` shrinks the data, batches, epochs and trials so that a CPU finishes in well under a
minute; CI runs it. On a CPU the "graphs" rows run the persistent-model path with a capture
that does nothing (a CPU cannot capture CUDA graphs), and no GPU numbers are printed. The
accuracies are on synthetic data: they show that training learns, not CIFAR-10 accuracy.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import math
import os
from pathlib import Path
import resource
import statistics
import sys
import tempfile
import threading
import time
import traceback
from typing import Any


if not __package__:
    # Run as a file (`python benchmarks/gpu_check.py`): make the repository root importable,
    # so the `benchmarks.*` imports below resolve as they do under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Light: it imports optuna_transfer only when called, after the check has timed its imports.
from benchmarks import provenance
from benchmarks.arguments import check_output_file


# The recipe every timed trial trains with: SGD, lr per 256 images (scaled with the batch).
RECIPE: dict[str, Any] = {
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "warmup_fraction": 0.1,
    "augment_strength": 0.5,
    "frozen_stages": 0,
}

COLUMNS = (
    "run",
    "batch",
    "graphs",
    "trials",
    "first trial s",
    "later trials s",
    "train images/s",
    "peak mem MiB",
    "GPU util %",
    "val acc",
    "test acc",
)

TARGET_SECONDS = 5.0  # the target: a 5-epoch trial at batch 1024 on one H100/H200
TARGET_UTILISATION = 50.0


@dataclass(frozen=True)
class Sizes:
    n_train: int
    n_test: int
    batches: tuple[int, ...]
    epochs: int
    trials: int


FULL = Sizes(n_train=50_000, n_test=10_000, batches=(256, 1024), epochs=5, trials=3)
TINY = Sizes(n_train=640, n_test=128, batches=(32, 128), epochs=1, trials=2)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the check, print the table; returns its rows (column name -> value)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto (default), cuda, cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: a CPU smoke run")
    parser.add_argument("--data-dir", help="use this folder's cifar-10-batches-py instead")
    parser.add_argument("--out", help="also write the report (markdown) to this file")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: 1 with --tiny, else torch's)")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="skip the runs that would start after this many seconds")
    args = parser.parse_args(argv)
    # Before the check, which runs for minutes on a GPU: not a traceback after it.
    check_output_file(parser, None if args.out is None else Path(args.out))
    sizes = TINY if args.tiny else FULL
    start = time.perf_counter()

    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    t0 = time.perf_counter()
    import optuna
    import torch

    from optuna_transfer.objectives import CifarFineTune  # noqa: F401

    import_s = time.perf_counter() - t0
    verbosity, old_threads = optuna.logging.get_verbosity(), torch.get_num_threads()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threads = args.threads if args.threads is not None else (1 if args.tiny else None)
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _check(args, sizes, start, import_s, say, lines, argv)
    finally:
        optuna.logging.set_verbosity(verbosity)
        torch.set_num_threads(old_threads)


def _check(
    args: argparse.Namespace,
    sizes: Sizes,
    start: float,
    import_s: float,
    say: Any,
    lines: list[str],
    argv: list[str] | None,
) -> list[dict[str, Any]]:
    import torch

    from optuna_transfer.objectives._device import resolve_device

    device = resolve_device(args.device)
    cuda = device.type == "cuda"

    command = provenance.command_line(
        "benchmarks.gpu_check", sys.argv[1:] if argv is None else argv
    )
    say(f"# CifarFineTune GPU check ({'tiny' if args.tiny else 'full size'})")
    say()
    say(f"Command: `{command}`")
    say(f"Machine: {_machine(device)}")
    say(f"Versions: {provenance.versions()}")
    say(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
        f"{torch.backends.cudnn.version() if cuda else 'n/a'}; imports took {import_s:.1f} s")

    tmp = None
    t0 = time.perf_counter()
    if args.data_dir is None:
        from optuna_transfer.objectives import write_synthetic_cifar

        tmp = tempfile.TemporaryDirectory()
        data_dir = tmp.name
        write_synthetic_cifar(data_dir, n_train=sizes.n_train, n_test=sizes.n_test, seed=0)
        source = f"synthetic CIFAR-10 files ({sizes.n_train:,} + {sizes.n_test:,} images)"
    else:
        data_dir = args.data_dir
        source = f"{data_dir}"
    from optuna_transfer.objectives._cifar_data import load_on_device

    data = load_on_device(data_dir, "cifar10", device)
    n_fit = data.num_train - int(round(0.1 * data.num_train))
    say(f"Data: {source}, written and loaded onto {device} in "
        f"{time.perf_counter() - t0:.1f} s; {n_fit:,} training images per epoch")
    say(f"Each run: {sizes.trials} trials x {sizes.epochs} epoch(s), weights=None, recipe "
        f"{RECIPE}; 'later trials' excludes the first (cuDNN autotuning, graph capture)")
    say()

    rows: list[dict[str, Any]] = []
    failed = False
    try:
        for batch in sizes.batches:
            for graphs in (False, True):
                name = f"batch {batch}, {'graphs' if graphs else 'eager'}"
                if time.perf_counter() - start > args.budget_s:
                    rows.append(_skipped(name, batch, graphs, "time budget"))
                    continue
                try:
                    rows.append(_timed_run(name, data_dir, device, batch, graphs, sizes, n_fit))
                except Exception as err:  # one broken configuration must not hide the rest
                    traceback.print_exc()  # the table holds the first line only
                    failed = True
                    rows.append(_skipped(name, batch, graphs, f"{type(err).__name__}: {err}"))
        rows.append(_oom_run(data_dir, device, sizes))
        failed |= rows[-1]["trials"] != "FAIL, COMPLETE"
    except KeyboardInterrupt:  # the wrapper's timeout: still print what was measured
        failed = True
        say("Interrupted: the table holds the runs that finished.")
    finally:
        if tmp is not None:
            tmp.cleanup()

    say("| " + " | ".join(COLUMNS) + " |")
    say("|" + "|".join("---" if c in ("run", "graphs", "trials") else "---:" for c in COLUMNS)
        + "|")
    for row in rows:
        say("| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |")
    say()
    for line in _verdicts(rows, device, args.tiny):
        say(line)
    say(f"Total: {time.perf_counter() - start:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    if failed:
        say("Some runs failed: see the table.")
    return rows


def _objective(
    data_dir: str,
    device: Any,
    batch: int,
    graphs: bool,
    epochs: int,
    trainer_class: type | None = None,
) -> Any:
    from optuna_transfer.objectives import CifarFineTune
    from optuna_transfer.objectives._cifar_graphs import GraphCache

    class Objective(CifarFineTune):
        def _make_trainer(self, model: Any, data: Any, idx: Any, config: Any, seed: int) -> Any:
            if trainer_class is None:
                return super()._make_trainer(model, data, idx, config, seed)
            return trainer_class(model, data, idx, config, self.device, seed)

    cuda = device.type == "cuda"
    objective = Objective(
        "cifar10", data_dir, epochs=epochs, device=str(device), weights=None,
        fixed={**RECIPE, "batch_size": batch}, cuda_graphs=graphs and cuda,
    )
    if graphs and not cuda:
        # A CPU cannot capture CUDA graphs: run the persistent-model path with a capture that
        # leaves the model as it is, so everything up to the device is exercised.
        objective._graphs = GraphCache(device, capture=lambda model, sample: model)
    return objective


def _timed_run(
    name: str, data_dir: str, device: Any, batch: int, graphs: bool, sizes: Sizes, n_fit: int
) -> dict[str, Any]:
    import optuna
    import torch

    objective = _objective(data_dir, device, batch, graphs, sizes.epochs)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    seconds: list[float] = []
    utilisation: list[list[float]] = []

    def timed(trial: optuna.trial.Trial) -> float:
        with _UtilisationSampler(device) as sampler:
            start = time.perf_counter()
            value = objective(trial)
            if cuda:
                torch.cuda.synchronize(device)
            seconds.append(time.perf_counter() - start)
        utilisation.append(sampler.samples)
        return float(value)

    study = optuna.create_study(direction="maximize")
    study.optimize(timed, n_trials=sizes.trials)
    states = [t.state.name for t in study.trials]
    later = seconds[1:] or seconds
    steady_util = [u for samples in utilisation[1:] for u in samples]
    used_graphs = [t.user_attrs.get("cuda_graph") for t in study.trials]
    return {
        "run": name,
        "batch": batch,
        "graphs": _graphs_cell(graphs, cuda, used_graphs),
        "trials": ", ".join(states) if set(states) != {"COMPLETE"} else f"{len(states)} COMPLETE",
        "first trial s": seconds[0],
        "later trials s": statistics.fmean(later),
        "train images/s": n_fit * sizes.epochs / statistics.fmean(later),
        "peak mem MiB": _peak_memory_mib(device),
        "GPU util %": statistics.fmean(steady_util) if steady_util else None,
        "val acc": statistics.fmean(t.value for t in study.trials if t.value is not None),
        "test acc": statistics.fmean(
            t.user_attrs["test_accuracy"] for t in study.trials if "test_accuracy" in t.user_attrs
        ),
    }


def _oom_run(data_dir: str, device: Any, sizes: Sizes) -> dict[str, Any]:
    """A study whose first trial runs out of memory for real (on CUDA), then a normal trial."""
    import optuna
    import torch

    from optuna_transfer.objectives._cifar_train import FastTrainer

    batch = sizes.batches[0]
    cuda = device.type == "cuda"
    inject = [True]

    class OomTrainer(FastTrainer):
        def train_epoch(self, epoch: int, max_steps: int | None = None) -> float:
            if inject[0]:
                inject[0] = False
                super().train_epoch(epoch, max_steps=2)  # model, graphs and data in use
                if cuda:
                    total = torch.cuda.get_device_properties(device).total_memory
                    torch.empty(2 * total, dtype=torch.uint8, device=device)  # a real OOM
                raise torch.OutOfMemoryError("CUDA out of memory (simulated on the CPU)")
            return super().train_epoch(epoch, max_steps)

    objective = _objective(data_dir, device, batch, True, epochs=1, trainer_class=OomTrainer)
    before = 0
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)
    after_oom = torch.cuda.memory_allocated(device) if cuda else None
    study.optimize(objective, n_trials=1)
    first, second = study.trials
    reason = str(first.user_attrs.get("fail_reason", "no fail_reason")).split(" (")[0]
    # What the failed trial left allocated (the dataset stays cached either way).
    left = "" if after_oom is None else f"; it left {(after_oom - before) / 2**20:.0f} MiB"
    return {
        "run": f"injected OOM, then a trial ({reason}{left})",
        "batch": batch,
        "graphs": _graphs_cell(True, cuda, [t.user_attrs.get("cuda_graph") for t in study.trials]),
        "trials": f"{first.state.name}, {second.state.name}",
        "peak mem MiB": _peak_memory_mib(device),
        "val acc": second.value,
        "test acc": second.user_attrs.get("test_accuracy"),
    }


def _graphs_cell(graphs: bool, cuda: bool, used: list[Any]) -> str:
    if not graphs:
        return "no"
    if not cuda:
        return "CPU: persistent model, no capture"
    return "yes" if all(u is True for u in used) else f"asked; used {used}"


def _skipped(name: str, batch: int, graphs: bool, why: str) -> dict[str, Any]:
    return {"run": name, "batch": batch, "graphs": "yes" if graphs else "no",
            "trials": f"not run: {why.splitlines()[0][:160]}"}


class _UtilisationSampler:
    """Samples torch.cuda.utilization() (NVML) in the background while a trial runs."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _UtilisationSampler:
        import torch

        if self.device.type != "cuda":
            return self
        try:
            torch.cuda.utilization(self.device)
        except Exception:  # no NVML (pynvml) on this machine: the column stays empty
            return self
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        import torch

        while not self._stop.wait(0.2):
            self.samples.append(float(torch.cuda.utilization(self.device)))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _peak_memory_mib(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # The CPU has no per-run counter: the process's peak resident set so far (Linux: KiB).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _verdicts(rows: list[dict[str, Any]], device: Any, tiny: bool) -> list[str]:
    if device.type != "cuda" or tiny:
        return [
            "Targets (5-epoch trial <= 5 s at batch 1024, GPU utilisation > 50%): not measured "
            "in this run (needs the full-size check on a GPU). GPU numbers elsewhere are "
            "estimates until this check has run on one."
        ]
    out = []
    best = [r for r in rows if r["batch"] == 1024 and r["graphs"] == "yes"
            and isinstance(r.get("later trials s"), float)]
    if best:
        s = best[0]["later trials s"]
        met = "met" if s <= TARGET_SECONDS else "NOT met"
        out.append(f"Target 5-epoch trial <= {TARGET_SECONDS:.0f} s at batch 1024 (graphs): "
                   f"{s:.1f} s, {met}")
        util = best[0].get("GPU util %")
        if util is None:
            out.append("Target GPU utilisation > 50%: not measured (no NVML on this machine)")
        else:
            met = "met" if util > TARGET_UTILISATION else "NOT met"
            out.append(f"Target GPU utilisation > {TARGET_UTILISATION:.0f}% (batch 1024, graphs, "
                       f"later trials): {util:.0f}%, {met}")
    else:
        out.append("Target 5-epoch trial at batch 1024 (graphs): not measured (run failed)")
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) < 1:
            return f"{value:.3g}"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return str(value).replace("|", "/")


def _machine(device: Any) -> str:
    import torch

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (f"{props.name} ({props.total_memory / 2**30:.0f} GiB) as {device}, "
                f"{os.cpu_count()} CPU cores")
    return (f"CPU: {provenance.cpu_model()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads")


if __name__ == "__main__":
    rows = main()
    sys.exit(0 if all("COMPLETE" in str(r["trials"]) for r in rows) else 1)
