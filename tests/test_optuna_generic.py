"""Optuna's own ``tests/samplers_tests/test_samplers.py`` (from the optuna sdist), run with this
package's samplers patched into its sampler lists. See
``tests/conformance/run_optuna_sampler_tests.py`` for what is patched and what cannot apply.

Needs a reachable package registry (``pip download``); if the download fails the test fails.
"""

from __future__ import annotations

from pathlib import Path
import sys
import xml.etree.ElementTree as ET

import _support
import pytest


sys.path.insert(0, str(Path(__file__).parent / "conformance"))
import run_optuna_sampler_tests as runner  # noqa: E402


@pytest.mark.slow
def test_optuna_generic_sampler_tests(tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    proc = runner.run(tmp_path, ["-q", f"--junitxml={report}"])
    assert report.exists(), f"pytest did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    cases = ET.parse(report).getroot().iter("testcase")
    failed, passed, skipped = [], [], []
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    # Every sampler of the package is exercised by the seed-reproducibility tests.
    for name in _support.SAMPLER_NAMES:
        assert any(f"test_reproducible_in_other_process[{name}]" in p for p in passed), name
    # Grid samplers join only the reseed test, as optuna's GridSampler does in this file.
    for name in _support.GRID_SAMPLER_NAMES:
        assert f"test_samplers::test_sampler_reseed_rng[{name}]" in passed, name
    assert not skipped, skipped
    assert not failed, f"{len(failed)} failed of {len(failed) + len(passed)}:\n" + "\n".join(
        failed
    )
    assert len(passed) >= 90
