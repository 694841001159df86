"""Optuna's own ``tests/samplers_tests/test_grid.py`` (from the optuna sdist), run with
``WarmStartGridSampler`` in ``GridSampler``'s place. See
``tests/conformance/run_optuna_sampler_tests.py`` (``prepare_grid``) for what is substituted.

Needs a reachable package registry (``pip download``); if the download fails the test fails.
"""

from __future__ import annotations

from pathlib import Path
import sys
import xml.etree.ElementTree as ET

import pytest


sys.path.insert(0, str(Path(__file__).parent / "conformance"))
import run_optuna_sampler_tests as runner  # noqa: E402


@pytest.mark.slow
def test_optuna_grid_tests_with_warm_start_grid(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    proc = runner.run_grid(tmp_path, ["-q", f"--junitxml={report}"])
    assert report.exists(), f"pytest did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    upstream = runner.upstream_test_names(tmp_path / "optuna_grid" / "test_grid.py")
    assert len(upstream) >= 14, upstream
    passed, failed, skipped = [], [], []
    for case in ET.parse(report).getroot().iter("testcase"):
        name = str(case.get("name"))
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    assert not failed, f"{len(failed)} failed:\n{proc.stdout[-6000:]}"
    assert not skipped, skipped
    # Every upstream test function ran and passed: a parametrized one (optuna 5.1 parametrizes
    # test_enqueued_trial) reports one case per parameter set, ``name[ids]``.
    passed_functions = {name.split("[", 1)[0] for name in passed}
    assert passed_functions == set(upstream), sorted(set(upstream) ^ passed_functions)


def test_grid_patch_replaces_every_grid_sampler(tmp_path: Path) -> None:
    # Cheap guard that runs without the slow mark: the substituted file still parses and has
    # no reference to optuna's GridSampler left (prepare_grid raises otherwise).
    path = runner.prepare_grid(tmp_path)
    text = path.read_text()
    assert "_OTGrid(" in text and "WarmStartGridSampler(_ot_grid_source()" in text
    compile(text, str(path), "exec")
