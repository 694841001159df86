"""The ``continuous`` suite: shifted, rotated test functions over unit-range floats.

The quadratic bowls of ``benchmarks/synthetic.py`` are one smooth, separable, unimodal shape.
This family adds curved valleys and many local minima, so defaults are not chosen on bowls
alone: Rosenbrock (a narrow curved valley), Levy (many local minima) and Styblinski-Tang (a
local minimum per coordinate besides the global one), each in 4 and 8 dimensions: 6 tasks.

A problem searches ``x0``..``x{d-1}`` in [0, 1], a log-scaled ``lr`` in [1e-5, 1e-1] and a
categorical ``opt``, as the synthetic family does (same learning-rate and penalty terms). The
function is evaluated at ``z = z* + width * R (x - x_opt)``, ``R`` a random rotation and
``x_opt`` a random point of [0.2, 0.8]^d, ``width`` the function's usual domain width, so its
minimum is at ``x_opt``. The loss is::

    ((f(z) - f(z*)) / m_f + 0.3 (log10 lr - l0)^2 + penalty[opt]) / m

``m_f`` and ``m`` are the medians of the function part and of the whole over random
configurations, so 0 is optimal, 1 a median random configuration (as the tables' normalised
regret), and the scores of different tasks can be averaged.

Each task is one instance (rotation, optimum, learning-rate optimum and penalties, drawn from
the task's name), warm-started from 3 sources: the same instance with the optimum moved by
N(0, 0.05) per coordinate and the learning-rate optimum by N(0, 0.3) decades; each source is a
100-trial TPE study by default (``cold_vs_warm --source-trials``). The instance does not change
with the run seed: a problem's objective does not know the seed (the runner builds it from the
problem alone), so seeds vary the source studies and the samplers, as on the tables.

    python -m benchmarks.cold_vs_warm --suites continuous --seeds 4 --n-trials 50
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from dataclasses import dataclass
import functools
import math
from typing import Any

import numpy as np

from benchmarks.synthetic import CHOICES
from benchmarks.synthetic import draw_lr_and_penalty
from benchmarks.synthetic import LR_RANGE
from benchmarks.synthetic import LR_WEIGHT
from benchmarks.synthetic import N_SOURCES
from benchmarks.synthetic import SyntheticProblem
from benchmarks.tasks import derive_seed
from benchmarks.tasks import Encoding
from benchmarks.tasks import Objective
from benchmarks.tasks import Problem
from benchmarks.tasks import Task


DIMS = (4, 8)
SOURCE_SHIFT = 0.05  # per-coordinate standard deviation of a source's optimum, in [0, 1] units
SOURCE_LR_SHIFT = 0.3  # decades
N_MEDIAN_SAMPLES = 10_000  # random configurations the normalising medians are taken over


def rosenbrock(z: np.ndarray) -> np.ndarray:
    """Rosenbrock's valley of each row of ``z``; minimum 0 at (1, ..., 1)."""
    return np.sum(100.0 * (z[:, 1:] - z[:, :-1] ** 2) ** 2 + (1.0 - z[:, :-1]) ** 2, axis=1)


def levy(z: np.ndarray) -> np.ndarray:
    """Levy's function of each row of ``z``; minimum 0 at (1, ..., 1)."""
    w = 1.0 + (z - 1.0) / 4.0
    inner = (w[:, :-1] - 1.0) ** 2 * (1.0 + 10.0 * np.sin(np.pi * w[:, :-1] + 1.0) ** 2)
    last = (w[:, -1] - 1.0) ** 2 * (1.0 + np.sin(2.0 * np.pi * w[:, -1]) ** 2)
    return np.sin(np.pi * w[:, 0]) ** 2 + np.sum(inner, axis=1) + last


def styblinski_tang(z: np.ndarray) -> np.ndarray:
    """Styblinski-Tang's function of each row of ``z``; minimum at ``STYBLINSKI_TANG_MIN``
    in every coordinate."""
    return 0.5 * np.sum(z**4 - 16.0 * z**2 + 5.0 * z, axis=1)


def _styblinski_tang_argmin() -> float:
    # The function is separable; its 1-d minimiser is the real root of the derivative
    # 4z^3 - 32z + 5 with the lowest value (about -2.9035).
    roots = np.roots([4.0, 0.0, -32.0, 5.0])
    real = roots[np.abs(roots.imag) < 1e-12].real
    return float(real[np.argmin(real**4 - 16.0 * real**2 + 5.0 * real)])


STYBLINSKI_TANG_MIN = _styblinski_tang_argmin()

# Name -> (function, minimiser per coordinate, width of the domain the unit range spans).
FUNCTIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float, float]] = {
    "rosenbrock": (rosenbrock, 1.0, 4.0),
    "levy": (levy, 1.0, 20.0),
    "styblinski_tang": (styblinski_tang, STYBLINSKI_TANG_MIN, 10.0),
}


@dataclass(frozen=True)
class Instance:
    """One drawn function of the family (a task's target, or one of its sources)."""

    function: str
    rotation: np.ndarray  # (d, d), orthogonal
    x_opt: np.ndarray  # (d,), the minimiser in [0, 1]^d
    lr_opt: float  # log10 of the best learning rate
    penalty: np.ndarray  # loss of each choice of ``opt``
    f_scale: float = 1.0  # m_f: median of f(z) - f(z*) over random x
    scale: float = 1.0  # m: median of the whole loss before dividing by it

    def gap(self, x: np.ndarray) -> np.ndarray:
        """``f(z) - f(z*)`` of each row of ``x`` (n, d), a point of [0, 1]^d."""
        f, z_opt, width = FUNCTIONS[self.function]
        z = z_opt + width * (x - self.x_opt) @ self.rotation.T
        # Clipped: rounding can put a point next to the minimiser a hair below f(z*).
        return np.maximum(f(z) - f(np.full((1, len(self.x_opt)), z_opt)), 0.0)

    def losses(self, x: np.ndarray, log10_lr: np.ndarray, opt: np.ndarray) -> np.ndarray:
        """Loss of each row: ``x`` (n, d) in [0, 1], ``log10_lr`` (n,), ``opt`` (n,) indices
        into CHOICES."""
        lr_term = LR_WEIGHT * (log10_lr - self.lr_opt) ** 2
        return (self.gap(x) / self.f_scale + lr_term + self.penalty[opt]) / self.scale

    def value(self, params: dict[str, Any]) -> float:
        """The loss of one configuration, as the objective reports it."""
        x = np.array([[params[f"x{i}"] for i in range(len(self.x_opt))]], dtype=float)
        log10_lr = np.array([math.log10(params["lr"])])
        opt = np.array([CHOICES.index(params["opt"])])
        return float(self.losses(x, log10_lr, opt)[0])


def _random_rotation(rng: np.random.RandomState, d: int) -> np.ndarray:
    # QR of a Gaussian matrix, columns' signs fixed so the rotation is uniformly distributed.
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def parse_dataset(dataset: str) -> tuple[str, int]:
    """``"levy-8d"`` -> ("levy", 8)."""
    function, dims = dataset.rsplit("-", 1)
    if function not in FUNCTIONS or not dims.endswith("d") or not dims[:-1].isdigit():
        raise ValueError(
            f"Unknown continuous problem {dataset!r}: <function>-<d>d, function from "
            f"{list(FUNCTIONS)}."
        )
    return function, int(dims[:-1])


@functools.cache
def draw_instance(dataset: str, draw: int, source: int | None) -> Instance:
    """The target (``source`` None) or source ``source`` of draw ``draw`` of ``dataset``.

    Cached per process: the normalising medians evaluate the function at
    ``N_MEDIAN_SAMPLES`` points.
    """
    function, d = parse_dataset(dataset)
    rng = np.random.RandomState(derive_seed(draw, "continuous", dataset))
    rotation = _random_rotation(rng, d)
    x_opt = rng.uniform(0.2, 0.8, d)
    lr_opt, penalty = draw_lr_and_penalty(rng)
    if source is not None:
        # Its own generator per source, so the target does not depend on how many sources
        # are drawn.
        shift = np.random.RandomState([derive_seed(draw, "continuous", dataset), source + 1])
        x_opt = np.clip(x_opt + shift.normal(0, SOURCE_SHIFT, d), 0.0, 1.0)
        lr_opt += shift.normal(0, SOURCE_LR_SHIFT)
    instance = Instance(function, rotation, x_opt, float(lr_opt), penalty)
    # The same random configurations for every problem of a draw: the function part's median
    # first, then the whole loss's.
    sample = np.random.RandomState(derive_seed(draw, "continuous-sample", dataset))
    x = sample.uniform(0.0, 1.0, (N_MEDIAN_SAMPLES, d))
    log10_lr = sample.uniform(math.log10(LR_RANGE[0]), math.log10(LR_RANGE[1]), N_MEDIAN_SAMPLES)
    opt = sample.randint(len(CHOICES), size=N_MEDIAN_SAMPLES)
    instance = dataclasses.replace(instance, f_scale=float(np.median(instance.gap(x))))
    return dataclasses.replace(
        instance, scale=float(np.median(instance.losses(x, log10_lr, opt)))
    )


@dataclass(frozen=True)
class ContinuousProblem(SyntheticProblem):
    """Target or source ``source`` of draw ``draw`` of one function of the family; its
    ``dataset`` is ``<function>-<d>d`` (e.g. ``rosenbrock-4d``).

    Name, direction and search space are the synthetic family's (its ``x_i`` are ``n_dims``
    here); there is no grid.
    """

    bench: str = "continuous"
    dataset: str = "rosenbrock-4d"

    @property
    def n_dims(self) -> int:
        return parse_dataset(self.dataset)[1]

    @property
    def has_grid(self) -> bool:
        return False

    def grid(self) -> dict[str, list[Any]]:
        # Problem.grid raises for a problem without a grid; the family's GRID is 4-dimensional.
        return Problem.grid(self)

    def optimum(self, on_grid: bool) -> float | None:
        return 0.0

    # Seeded as the tables are, not as the synthetic family: every method, task and source
    # draws its own stream (with one seed for all, cold TPE's random start repeats `random`).
    def source_seed(self, seed: int) -> int:
        return Problem.source_seed(self, seed)

    def target_seed(self, seed: int, *keys: str) -> int:
        return Problem.target_seed(self, seed, *keys)

    def instance(self) -> Instance:
        return draw_instance(self.dataset, self.draw, self.source)

    def objective(self, encoding: Encoding) -> Objective:
        return Objective(self, encoding, None, value=self.instance().value)


def continuous_tasks(suite: str) -> list[Task]:
    """One task per function and dimension, each with ``N_SOURCES`` shifted sources."""
    tasks = []
    for function in FUNCTIONS:
        for d in DIMS:
            dataset = f"{function}-{d}d"
            tasks.append(Task(
                suite,
                ContinuousProblem(dataset=dataset),
                tuple(ContinuousProblem(dataset=dataset, source=k) for k in range(N_SOURCES)),
            ))
    return tasks
