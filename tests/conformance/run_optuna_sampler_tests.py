"""Run Optuna's own generic sampler tests against this package's samplers.

Downloads the optuna sdist matching the installed optuna (``pip download``; a package registry
must be reachable), copies ``tests/samplers_tests/test_samplers.py`` and appends a block that
replaces every sampler list in it with this package's samplers, each built with a real source
study. The parametrize lists are patched in place after the module body has run and before
pytest collects it (the marks hold references to the same list objects).

Usage: ``python tests/conformance/run_optuna_sampler_tests.py [pytest args...]`` or through
``tests/test_optuna_generic.py``. A failed download raises: it never skips.

Tests of ``test_samplers.py`` that cannot apply, and why:

* ``TestSingleOnlySampler``: it asserts that multi-objective studies raise; our samplers support
  several objectives, so the class is removed.
* ``test_sampler_reseed_rng`` introspects Optuna's private ``LazyRandomState`` and wrapped
  samplers; TransferTPESampler holds a plain ``numpy.random.RandomState`` and wraps a
  TPESampler (its fallback), so its entry expects no LazyRandomState and another sampler, whose
  reseeding the test then checks. Reseeding itself is also checked by
  ``test_reseed_rng_change_sampling``, which runs unchanged.
* ``test_pickle_random_sampler`` and ``test_sample_relative`` test Optuna's own RandomSampler
  and FixedSampler; they run unchanged.

Everything else (reproducibility with seeds, in other processes, reseeding, the Basic/Relative/
MultiObjective suites: NaN objectives, conditional and dynamic spaces, ``n_jobs``) runs with
our samplers only. ``WarmStartGridSampler`` joins only ``test_sampler_reseed_rng``, exactly as
optuna lists ``GridSampler`` only there.

Grid sampler (``prepare_grid``/``run_grid``, through ``tests/test_optuna_grid.py``): the sdist's
``tests/samplers_tests/test_grid.py`` is copied with every ``GridSampler`` text-substituted by a
stand-in that builds ``WarmStartGridSampler(source, search_space, seed=seed)`` with a small
finished source study over the file's parameters (``a``-``e``, ``x``), and optuna's
``GridSampler`` itself replaced by a function that raises, so nothing can silently test optuna's
sampler. The system-attribute keys ``"grid_id"``/``"search_space"`` are substituted by the
sampler's own (``warm_start_grid:...``); this is a naming difference, not a behaviour one. All
upstream test functions apply; none is removed or skipped. (The hand port in
``tests/test_grid_conformance.py`` adds checks upstream does not make, e.g. exact grid ids.)
"""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
import tarfile
import tempfile


SAMPLER_TESTS = "tests/samplers_tests/test_samplers.py"

_PATCH = '''

# ------------------------------------------------------------------------------------------
# Appended by optuna-transfer's tests/conformance/run_optuna_sampler_tests.py.
# ------------------------------------------------------------------------------------------
import functools as _ot_functools

import optuna_transfer as _ot


def _ot_single(trial):
    vals = [trial.suggest_float(n, 0, 10) for n in "abcdefg"]
    x = trial.suggest_float("x", -20, 20)
    return sum(vals) + abs(x)


def _ot_multi(trial):
    x = trial.suggest_float("x", -20, 20)
    y = trial.suggest_float("y", -20, 20)
    return x**2 + y**2, (x - 1) ** 2


@_ot_functools.cache
def _ot_source(n_objectives):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        directions=["minimize"] * n_objectives,
        sampler=optuna.samplers.RandomSampler(seed=3),
    )
    study.optimize(_ot_single if n_objectives == 1 else _ot_multi, n_trials=20)
    return study


_OT_SAMPLERS = {
    "TransferTPESampler": lambda seed=None, n_obj=1: _ot.TransferTPESampler(
        _ot_source(n_obj), seed=seed
    ),
    # WARM_START_GRID_ENTRY: WarmStartGridSampler is deliberately not here. Optuna's own file
    # lists GridSampler only in test_sampler_reseed_rng (a grid sampler suggests grid values
    # only, so the continuous-space suites cannot apply); so do we, below. Its suite is
    # optuna's tests/samplers_tests/test_grid.py (see GRID_TESTS / prepare_grid).
}

sampler_class_with_seed.clear()
sampler_class_with_seed.update(
    {k: (lambda f: lambda seed: f(seed))(f) for k, f in _OT_SAMPLERS.items()}
)
param_sampler_with_seed[:] = [
    pytest.param(sampler_class_with_seed[k], id=k) for k in _OT_SAMPLERS
]
param_sampler_name_with_seed[:] = [pytest.param(k) for k in _OT_SAMPLERS]

for _ot_mark in test_sampler_reseed_rng.pytestmark:
    if _ot_mark.name == "parametrize":
        # TransferTPESampler keeps a plain RandomState, and makes its cold-fallback
        # TPESampler per trial, seeded from a base that reseed_rng redraws: no
        # LazyRandomState, no sampler held between trials.
        _ot_mark.args[1][:] = [
            pytest.param(f, False, False, id=k) for k, f in _OT_SAMPLERS.items()
        ] + [
            # As optuna's GridSampler entry, but no LazyRandomState: the order must be the same
            # in every worker, so reseed_rng is a no-op and there is no RNG to find.
            pytest.param(
                lambda: _ot.WarmStartGridSampler(_ot_source(1), {"x": [0]}), False, False,
                id="WarmStartGridSampler",
            )
        ]


class TestBasicSampler(BasicSamplerTestCase):
    @pytest.fixture(params=list(_OT_SAMPLERS))
    def sampler(self, request):
        return lambda: _OT_SAMPLERS[request.param]()


class TestRelativeSampler(RelativeSamplerTestCase):
    @pytest.fixture(params=list(_OT_SAMPLERS))
    def sampler(self, request):
        return lambda: _OT_SAMPLERS[request.param]()


class TestMultiObjectiveSampler(MultiObjectiveSamplerTestCase):
    @pytest.fixture(params=list(_OT_SAMPLERS))
    def sampler(self, request):
        return lambda: _OT_SAMPLERS[request.param](n_obj=2)


# Our samplers support several objectives: the single-objective-only suite cannot apply.
del TestSingleOnlySampler
'''

_INI = """[pytest]
markers =
    slow: Optuna's slow tests
filterwarnings =
    ignore::optuna.exceptions.ExperimentalWarning
"""


GRID_TESTS = "tests/samplers_tests/test_grid.py"

# (upstream text, replacement, how many times upstream 5.0.0 has it). Order matters: the
# qualified name first. A count that changes means the upstream file changed: update the patch.
_GRID_SUBSTITUTIONS: tuple[tuple[str, str, int], ...] = (
    ("optuna.samplers.GridSampler", "_OTGrid", 1),
    ("samplers.GridSampler", "_OTGrid", 25),
    ('system_attrs["search_space"]', "system_attrs[_OT_SEARCH_SPACE_KEY]", 6),
    ('system_attrs["grid_id"]', "system_attrs[_OT_GRID_ID_KEY]", 2),
    # optuna.testing.storages imports fakeredis (not a dependency here); the file only uses
    # StorageSupplier("sqlite"), which _ot_storages.py provides the same way.
    (
        "from optuna.testing.storages import StorageSupplier",
        "from _ot_storages import StorageSupplier",
        1,
    ),
)

_OT_STORAGES = '''"""StorageSupplier("sqlite") as in optuna.testing.storages, without fakeredis."""
from __future__ import annotations

import contextlib
import os
import tempfile

import optuna


@contextlib.contextmanager
def StorageSupplier(storage_specifier, **kwargs):
    if storage_specifier != "sqlite":
        raise ValueError(f"only 'sqlite' is provided here, not {storage_specifier!r}")
    with tempfile.TemporaryDirectory() as d:
        url = "sqlite:///" + os.path.join(d, "optuna.db")
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
        try:
            yield storage
        finally:
            storage.engine.dispose()
'''

_GRID_PATCH = '''

# ------------------------------------------------------------------------------------------
# Appended by optuna-transfer's tests/conformance/run_optuna_sampler_tests.py.
# ------------------------------------------------------------------------------------------
import functools as _ot_functools

import optuna_transfer as _ot
from optuna_transfer import _grid as _ot_grid

_OT_GRID_ID_KEY = _ot_grid.GRID_ID_ATTR_KEY
_OT_SEARCH_SPACE_KEY = _ot_grid.SEARCH_SPACE_ATTR_KEY


def _ot_source_objective(trial):
    a = trial.suggest_int("a", 0, 100)
    b = trial.suggest_float("b", -0.1, 0.1)
    c = trial.suggest_categorical("c", ("x", "y", None, 1, 2.0))
    d = trial.suggest_float("d", -5, 5, step=1)
    e = trial.suggest_float("e", 0.0001, 1, log=True)
    x = trial.suggest_float("x", 0, 1)
    return a * d + b * e + x + (c == "y")


@_ot_functools.cache
def _ot_grid_source():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5))
    study.optimize(_ot_source_objective, n_trials=12)
    return study


class _OTGrid:
    """Stands in for GridSampler: same call signature, builds a WarmStartGridSampler."""

    _check_value = staticmethod(_ot_grid._check_value)

    def __new__(cls, search_space, seed=None):
        return _ot.WarmStartGridSampler(_ot_grid_source(), search_space, seed=seed)


def _ot_no_grid_sampler(*args, **kwargs):
    raise AssertionError("optuna's GridSampler reached: the substitution missed a use")


samplers.GridSampler = _ot_no_grid_sampler
'''


def optuna_version() -> str:
    import optuna

    return optuna.__version__


def download_sdist(dest: Path, version: str | None = None) -> Path:
    """The optuna sdist in ``dest`` (downloaded if absent). Raises if it cannot be had."""
    version = version or optuna_version()
    target = dest / f"optuna-{version}.tar.gz"
    if target.exists():
        return target
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        f"optuna=={version}", "-d", str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not target.exists():
        raise RuntimeError(
            f"Could not download the optuna {version} sdist (rc={proc.returncode}); the generic "
            f"sampler tests cannot run.\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    return target


def prepare(workdir: Path, version: str | None = None) -> Path:
    """Write the patched ``test_samplers.py`` (and a pytest.ini) into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    sdist = download_sdist(workdir, version)
    with tarfile.open(sdist) as tar:
        prefix = tar.getnames()[0].split("/")[0]
        member = tar.extractfile(f"{prefix}/{SAMPLER_TESTS}")
        if member is None:
            raise RuntimeError(f"{SAMPLER_TESTS} not found in {sdist}")
        text = member.read().decode()
    for anchor in ("sampler_class_with_seed", "param_sampler_with_seed", "TestSingleOnlySampler"):
        if anchor not in text:
            raise RuntimeError(f"{SAMPLER_TESTS} changed: {anchor!r} not found; update the patch")
    out = workdir / "optuna_generic" / "test_samplers.py"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + _PATCH)
    (out.parent / "pytest.ini").write_text(_INI)
    return out


def prepare_grid(workdir: Path, version: str | None = None) -> Path:
    """Write the patched ``test_grid.py`` (and a pytest.ini) into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    sdist = download_sdist(workdir, version)
    with tarfile.open(sdist) as tar:
        prefix = tar.getnames()[0].split("/")[0]
        member = tar.extractfile(f"{prefix}/{GRID_TESTS}")
        if member is None:
            raise RuntimeError(f"{GRID_TESTS} not found in {sdist}")
        text = member.read().decode()
    for old, new, count in _GRID_SUBSTITUTIONS:
        found = text.count(old)
        if found != count:
            raise RuntimeError(
                f"{GRID_TESTS} changed: {old!r} occurs {found} times, expected {count}; "
                "update the patch"
            )
        text = text.replace(old, new)
    if "GridSampler" in text:
        raise RuntimeError(f"{GRID_TESTS}: a GridSampler use was not substituted")
    out = workdir / "optuna_grid" / "test_grid.py"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + _GRID_PATCH)
    (out.parent / "_ot_storages.py").write_text(_OT_STORAGES)
    (out.parent / "pytest.ini").write_text(_INI)
    return out


def upstream_test_names(path: Path) -> list[str]:
    """Names of the test functions defined in a (patched) upstream test file."""
    import ast

    tree = ast.parse(path.read_text())
    return [
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
    ]


def run_grid(workdir: Path, pytest_args: list[str]) -> subprocess.CompletedProcess[str]:
    return _pytest(prepare_grid(workdir), pytest_args)


def run(workdir: Path, pytest_args: list[str]) -> subprocess.CompletedProcess[str]:
    return _pytest(prepare(workdir), pytest_args)


def _pytest(path: Path, pytest_args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c",
           str(path.parent / "pytest.ini"), "--rootdir", str(path.parent), str(path),
           *pytest_args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=path.parent, timeout=540)


if __name__ == "__main__":
    # ``--grid`` as the first argument runs test_grid.py instead of test_samplers.py.
    grid = sys.argv[1:2] == ["--grid"]
    with tempfile.TemporaryDirectory() as d:
        proc = (run_grid if grid else run)(Path(d), sys.argv[1 + grid :])
        print(proc.stdout, proc.stderr)
        sys.exit(proc.returncode)
