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
  samplers; our samplers hold a plain ``numpy.random.RandomState`` and wrap no sampler, so its
  entry expects neither (it then only checks that). Reseeding itself is checked by
  ``test_reseed_rng_change_sampling``, which runs unchanged.
* ``test_pickle_random_sampler`` and ``test_sample_relative`` test Optuna's own RandomSampler
  and FixedSampler; they run unchanged.

Everything else (reproducibility with seeds, in other processes, reseeding, the Basic/Relative/
MultiObjective suites: NaN objectives, conditional and dynamic spaces, ``n_jobs``) runs with
our samplers only.
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
    # WARM_START_GRID_ENTRY
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
        _ot_mark.args[1][:] = [
            pytest.param(f, False, False, id=k) for k, f in _OT_SAMPLERS.items()
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


def run(workdir: Path, pytest_args: list[str]) -> subprocess.CompletedProcess[str]:
    path = prepare(workdir)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c",
           str(path.parent / "pytest.ini"), "--rootdir", str(path.parent), str(path),
           *pytest_args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=path.parent, timeout=540)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        proc = run(Path(d), sys.argv[1:])
        print(proc.stdout, proc.stderr)
        sys.exit(proc.returncode)
