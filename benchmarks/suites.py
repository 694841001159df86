"""The benchmark suites, registered by name in ``SUITES``.

A suite is everything a benchmark needs to know to run and score a family of tasks: its tasks
(which target, warm-started from which sources), the methods it compares by default and the cold
baseline its speed-ups are measured against. Adding a suite means adding one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import functools

from benchmarks.tasks import Problem
from benchmarks.tasks import TABLE_BENCHES
from benchmarks.tasks import Task


TABLE_METHODS = ("random", "tpe", "tpe+enqueue", "wscmaes", "transfer-tpe")
GRID_METHODS = ("grid", "grid+enqueue", "warm-grid")
# Cold TPE is the reference of every published table whenever it is among the methods run,
# in the grid suites too; a suite's own baseline counts only where TPE is not run.
PREFERRED_BASELINE = "tpe"


@dataclass(frozen=True)
class Suite:
    name: str
    # (suite name, CIFAR data folder) -> its tasks; only the CIFAR suite uses the folder.
    make_tasks: Callable[[str, str], list[Task]]
    methods: tuple[str, ...]
    baseline: str

    def tasks(self, cifar_data_dir: str = "data") -> list[Task]:
        """The suite's tasks; CIFAR problems read (or download) their data in
        ``cifar_data_dir``."""
        return self.make_tasks(self.name, cifar_data_dir)

    def baseline_among(self, methods: Sequence[str]) -> str:
        """The cold baseline of a run of ``methods``: cold TPE if it runs, else the suite's
        baseline if it runs, else the first method."""
        for candidate in (PREFERRED_BASELINE, self.baseline):
            if candidate in methods:
                return candidate
        return methods[0]


def _leave_one_out(bench: str, negate_sources: bool, suite: str, data_dir: str) -> list[Task]:
    # Each dataset in turn is the target, the others its sources.
    datasets = TABLE_BENCHES[bench][3]
    return [
        Task(
            suite,
            Problem(bench, target),
            tuple(Problem(bench, d, negate_sources) for d in datasets if d != target),
        )
        for target in datasets
    ]


def _mixed(bench: str, suite: str, data_dir: str) -> list[Task]:
    # Each dataset in turn is the target; of the others, the one after it in the table's
    # order (cyclically) is a plain source and the rest are negated. A user's old studies are
    # rarely all good or all bad: one is the related task, others lead elsewhere. The related
    # source's place among the sources varies with the target, so no position is favoured.
    datasets = TABLE_BENCHES[bench][3]
    tasks = []
    for i, target in enumerate(datasets):
        related = datasets[(i + 1) % len(datasets)]
        sources = tuple(Problem(bench, d, d != related) for d in datasets if d != target)
        tasks.append(Task(suite, Problem(bench, target), sources))
    return tasks


def _cifar_tasks(suite: str, data_dir: str) -> list[Task]:
    target = Problem("cifar", "cifar10", data_dir=data_dir)
    return [
        Task(suite, target, (Problem("cifar", "cifar100", data_dir=data_dir),)),
        Task(suite, target, (Problem("cifar", "cifar10-10pct-1epoch", data_dir=data_dir),)),
    ]


# HPOBench: the first 4 tables are the targets, each warm-started from the other 4, so one
# seed's 4 source studies serve every target.
HPOBENCH_TARGETS = ("australian", "blood_transfusion", "car", "credit_g")


def _hpobench_tasks(suite: str, data_dir: str) -> list[Task]:
    sources = [d for d in TABLE_BENCHES["hpobench"][3] if d not in HPOBENCH_TARGETS]
    return [
        Task(suite, Problem("hpobench", t), tuple(Problem("hpobench", s) for s in sources))
        for t in HPOBENCH_TARGETS
    ]


def _continuous_tasks(suite: str, data_dir: str) -> list[Task]:
    # Imported here: benchmarks.continuous builds on benchmarks.synthetic, which imports this
    # module.
    from benchmarks.continuous import continuous_tasks

    return continuous_tasks(suite)


_hpolib = functools.partial(_leave_one_out, "hpolib", False)
_nb201 = functools.partial(_leave_one_out, "nb201", False)
# Same pairing as ``hpolib`` but each source optimised the *negated* loss, so its best trials
# are the worst configurations: a robust warm start must not be dragged there.
_misleading = functools.partial(_leave_one_out, "hpolib", True)
# One related source beside misleading ones: the sampler must follow the related one without
# being dragged to the others' best configurations.
_mixed_hpolib = functools.partial(_mixed, "hpolib")

SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("hpolib", _hpolib, TABLE_METHODS, "tpe"),
        Suite("nb201", _nb201, TABLE_METHODS, "tpe"),
        Suite("grid", _hpolib, GRID_METHODS, "grid"),
        Suite("grid-nb201", _nb201, GRID_METHODS, "grid"),
        Suite("cifar10", _cifar_tasks, TABLE_METHODS, "tpe"),
        Suite("misleading", _misleading, TABLE_METHODS, "tpe"),
        Suite("grid-misleading", _misleading, GRID_METHODS, "grid"),
        Suite("mixed", _mixed_hpolib, TABLE_METHODS, "tpe"),
        Suite("grid-mixed", _mixed_hpolib, GRID_METHODS, "grid"),
        Suite("hpobench", _hpobench_tasks, TABLE_METHODS, "tpe"),
        Suite("grid-hpobench", _hpobench_tasks, GRID_METHODS, "grid"),
        Suite("continuous", _continuous_tasks, TABLE_METHODS, "tpe"),
    )
}


def get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(f"Unknown suite {name!r}; choose from {list(SUITES)}.") from None


def suite_tasks(name: str) -> list[Task]:
    """The tasks of suite ``name``."""
    return get_suite(name).tasks()


def default_methods(name: str) -> list[str]:
    """The methods suite ``name`` compares when ``--methods`` is not given."""
    return list(get_suite(name).methods)


def cold_baseline(name: str) -> str:
    """The suite's own cold baseline (see :meth:`Suite.baseline_among` for a given run)."""
    return get_suite(name).baseline
