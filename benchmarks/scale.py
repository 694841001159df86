"""Scale: many source studies, a long target study, and many unrelated sources.

Three measurements, each against cold ``TPESampler`` in the same process and run:

* ``sources``: ms per target trial with N sources of 100 trials each (the overhead
  benchmark's 6-parameter space, random-sampler sources), and the process's peak RSS. Each N
  runs in a fresh subprocess, so the peak is that configuration's.
* ``long``: a 1,000-trial target with 3 sources: ms per trial in each block of 100 trials.
* ``unrelated``: the synthetic family's related sources (3 TPE studies of 100 trials) alone,
  and with 97 unrelated sources added (random-sampler studies of 100 trials from other draws of
  the family): mean regret at 10 and 25 trials over seeds.

Timings on a shared machine drift with its load, so each timing is repeated (``--repeats``,
``--long-repeats``) with cold TPE and TransferTPE alternating (which one goes first alternates
too), each pair compared with itself; the tables show medians over repeats and the range of
the ratios. Every repeat runs the same seeds, so it does exactly the same work.

    python -m benchmarks.scale --out benchmarks/figures/scale_table.md
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import gc
import json
from pathlib import Path
import resource
import subprocess
import sys
import time

import numpy as np
import optuna


if not __package__:
    # Run as a file: make the repository root importable, as under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance  # noqa: E402
from benchmarks import synthetic  # noqa: E402
from benchmarks.arguments import check_output_file  # noqa: E402
from benchmarks.arguments import positive_int  # noqa: E402
from benchmarks.overhead import _objective  # noqa: E402
from benchmarks.overhead import _source  # noqa: E402
from benchmarks.tasks import derive_seed  # noqa: E402
from optuna_transfer import TransferTPESampler  # noqa: E402


def _ms_per_trial(sampler: optuna.samplers.BaseSampler, n_trials: int) -> list[float]:
    """Wall ms of each trial of a study of ``n_trials`` on the overhead objective."""
    study = optuna.create_study(sampler=sampler)
    stamps = [time.perf_counter()]
    study.optimize(
        _objective, n_trials=n_trials, callbacks=[lambda s, t: stamps.append(time.perf_counter())]
    )
    return list(1000 * np.diff(stamps))


def _transfer_ms_per_trial(sources: list[optuna.Study], n_trials: int) -> list[float]:
    """As :func:`_ms_per_trial` for a TransferTPESampler built from ``sources``, its build
    time spread over the trials."""
    start = time.perf_counter()
    sampler = TransferTPESampler(sources, seed=0)
    build = 1000 * (time.perf_counter() - start)
    return [ms + build / n_trials for ms in _ms_per_trial(sampler, n_trials)]


def paired_runs(
    cold: Callable[[], list[float]], transfer: Callable[[], list[float]], repeats: int
) -> list[tuple[list[float], list[float]]]:
    """``repeats`` pairs of (cold, transfer) per-trial times, run back to back so that both of
    a pair see the same load; which runs first alternates, so a trend favours neither."""
    pairs = []
    for r in range(repeats):
        order = (cold, transfer) if r % 2 == 0 else (transfer, cold)
        runs = []
        for run in order:
            gc.collect()  # garbage of the previous run is not collected on this one's time
            runs.append(run())
        pairs.append((runs[0], runs[1]) if r % 2 == 0 else (runs[1], runs[0]))
    return pairs


def _summary(cold: list[float], transfer: list[float]) -> dict[str, float]:
    """Medians over repeats of each sampler's ms/trial and of the paired ratios, and the
    ratios' range."""
    ratios = [w / c for c, w in zip(cold, transfer)]
    return {
        "cold": float(np.median(cold)),
        "transfer": float(np.median(transfer)),
        "ratio": float(np.median(ratios)),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def sources_row(n_sources: int, n_trials: int, repeats: int = 5) -> dict[str, float]:
    """One ``sources`` configuration; run in its own process by :func:`main`."""
    sources = [_source(100, seed) for seed in range(n_sources)]
    pairs = paired_runs(
        lambda: _ms_per_trial(optuna.samplers.TPESampler(seed=0), n_trials),
        lambda: _transfer_ms_per_trial(sources, n_trials),
        repeats,
    )
    row = _summary([float(np.mean(c)) for c, _ in pairs], [float(np.mean(w)) for _, w in pairs])
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"sources": n_sources, **row, "peak_mib": peak_mib, "repeats": repeats}


def long_rows(n_trials: int, repeats: int = 3) -> list[dict[str, float]]:
    """Per block of 100 trials of a long study with 3 sources, as :func:`_summary`."""
    sources = [_source(100, seed) for seed in range(3)]
    pairs = paired_runs(
        lambda: _ms_per_trial(optuna.samplers.TPESampler(seed=0), n_trials),
        lambda: _ms_per_trial(TransferTPESampler(sources, seed=0), n_trials),
        repeats,
    )
    return [
        {
            "start": b,
            **_summary(
                [float(np.mean(c[b : b + 100])) for c, _ in pairs],
                [float(np.mean(w[b : b + 100])) for _, w in pairs],
            ),
        }
        for b in range(0, n_trials, 100)
    ]


def _study(objective: synthetic.Objective, sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=100)
    return study


def unrelated_regret(seed: int, n_unrelated: int, budgets: list[int]) -> dict[str, list[float]]:
    source_objectives, target = synthetic.make_task(seed, "related")
    # The family's own sampler seeds: a sampler seeded with ``seed`` would replay the draws
    # that placed the target's optimum.
    task = synthetic.synthetic_task(seed, "related")
    related = [
        _study(objective, optuna.samplers.TPESampler(seed=problem.source_seed(seed)))
        for problem, objective in zip(task.sources, source_objectives)
    ]
    unrelated = []
    for k in range(n_unrelated):
        # Another draw of the family: the target's shape, not its optimum.
        other = synthetic.make_task(10_000 + 100 * seed + k, "related")[1]
        random = optuna.samplers.RandomSampler(seed=derive_seed(seed, "unrelated", str(k)))
        unrelated.append(_study(other, random))
    out = {}
    for name, sources in (("related", related), ("related+unrelated", related + unrelated)):
        sampler = TransferTPESampler(sources, seed=task.target.target_seed(seed))
        study = optuna.create_study(sampler=sampler)
        study.optimize(target, n_trials=max(budgets))
        best = np.minimum.accumulate([float(t.value) for t in study.trials])  # type: ignore[arg-type]
        out[name] = [float(best[b - 1]) for b in budgets]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    p.add_argument("--sources", default="3,100,1000", help="source counts (default: 3,100,1000)")
    p.add_argument("--n-trials", type=positive_int, default=100,
                   help="target trials, sources part")
    p.add_argument("--long-trials", type=positive_int, default=1000,
                   help="target trials, long part")
    p.add_argument("--seeds", type=positive_int, default=8,
                   help="seeds, unrelated part (default: 8)")
    p.add_argument("--unrelated", type=int, default=97, help="unrelated sources (default: 97)")
    p.add_argument("--repeats", type=positive_int, default=5,
                   help="timings per source count (default: 5)")
    p.add_argument(
        "--long-repeats", type=int, default=3, help="timings of the long study (default: 3)"
    )
    p.add_argument("--out", type=Path, default=None, help="also write the tables here")
    p.add_argument("--one-sources-row", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    check_output_file(p, args.out)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.one_sources_row is not None:
        print(json.dumps(sources_row(args.one_sources_row, args.n_trials, args.repeats)))
        return 0

    lines = [
        "# Scale",
        "",
        f"* Machine: {provenance.machine()}",
        f"* Versions: {provenance.versions()}",
        f"* Command: `{provenance.command_line('benchmarks.scale', argv)}`",
        "",
        f"## Many sources ({args.n_trials} target trials; sources of 100 trials)",
        "",
        "| sources | cold TPE ms/trial | TransferTPE ms/trial | ratio | ratio range "
        "| peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n in (int(v) for v in args.sources.split(",")):
        # A fresh process per row: the peak RSS is then this configuration's.
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.scale", "--one-sources-row", str(n),
             "--n-trials", str(args.n_trials), "--repeats", str(args.repeats)],
            capture_output=True, text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        if done.returncode != 0:
            # The row's own error (out of memory with 1,000 sources, say), not only its code.
            raise SystemExit(
                f"The row with {n} sources failed (exit {done.returncode}):\n"
                + done.stderr.strip()[-4000:]
            )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        lines.append(
            f"| {n} | {row['cold']:.1f} | {row['transfer']:.1f} | {row['ratio']:.2f}x | "
            f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}x | {row['peak_mib']:.0f} |"
        )
    lines += [
        "",
        f"TransferTPE's time includes building the sampler, spread over the {args.n_trials} "
        f"trials. Medians of {args.repeats} repeats, each cold TPE and TransferTPE back to "
        "back; the ratio is the median of each repeat's own ratio, the range its smallest and "
        "largest.",
        "",
        f"## A long study ({args.long_trials} target trials, 3 sources)",
        "",
        "| trials | cold TPE ms/trial | TransferTPE ms/trial | ratio | ratio range |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in long_rows(args.long_trials, args.long_repeats):
        start = int(row["start"])
        lines.append(
            f"| {start}-{start + 100} | {row['cold']:.1f} | {row['transfer']:.1f} | "
            f"{row['ratio']:.2f}x | {row['ratio_min']:.2f}-{row['ratio_max']:.2f}x |"
        )
    lines += ["", f"Medians of {args.long_repeats} repeats, as above."]
    budgets = [10, 25]
    results = [unrelated_regret(seed, args.unrelated, budgets) for seed in range(args.seeds)]
    lines += [
        "",
        f"## Related sources among unrelated ones (synthetic family, seeds 0-{args.seeds - 1})",
        "",
        "Mean regret of the best value found (0 = optimum).",
        "",
        "| sources | " + " | ".join(f"at {b} trials" for b in budgets) + " |",
        "|---|" + "---:|" * len(budgets),
    ]
    means = {
        name: np.mean([r[name] for r in results], axis=0)
        for name in ("related", "related+unrelated")
    }
    lines.append("| 3 related | " + " | ".join(f"{v:.4f}" for v in means["related"]) + " |")
    lines.append(
        f"| 3 related + {args.unrelated} unrelated | "
        + " | ".join(f"{v:.4f}" for v in means["related+unrelated"])
        + " |"
    )
    ratio = means["related+unrelated"] / means["related"]
    lines.append("| ratio | " + " | ".join(f"{v:.2f}x" for v in ratio) + " |")
    text = "\n".join(lines) + "\n"
    provenance.publish(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
