"""The OptunaHub-style packages in examples/optunahub/ load with optunahub and run a study."""

from __future__ import annotations

import importlib.util
from pathlib import Path
import re
from types import ModuleType

import optuna
import optunahub
import pytest

import optuna_transfer


ROOT = Path(__file__).resolve().parents[1]
REGISTRY_ROOT = ROOT / "examples" / "optunahub"
PACKAGES = ["samplers/transfer_tpe", "samplers/warm_start_grid"]
FRONT_MATTER_KEYS = {"author", "title", "description", "tags", "optuna_versions", "license"}


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", -5, 5)
    return (x - 2) ** 2 + (y + 1) ** 2


def _source() -> optuna.Study:
    source = optuna.create_study(study_name="old", sampler=optuna.samplers.TPESampler(seed=0))
    source.optimize(_objective, n_trials=25)
    return source


def _load(package: str) -> ModuleType:
    return optunahub.load_local_module(package=package, registry_root=str(REGISTRY_ROOT))


def test_transfer_tpe_loads_and_warm_starts_a_study() -> None:
    module = _load("samplers/transfer_tpe")
    assert module.__name__ == "optunahub_registry.package.samplers.transfer_tpe"
    assert module.TransferTPESampler is optuna_transfer.TransferTPESampler

    source = _source()
    sampler = module.TransferTPESampler(source, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=8)
    # Zero-shot start: the first trial is the source's best configuration.
    assert study.trials[0].params == source.best_params
    assert study.best_value <= source.best_value
    weights = sampler.get_source_weights(study)
    assert weights and all(set(w) == {"old", "target"} for w in weights.values())


def test_warm_start_grid_loads_and_walks_the_grid_best_first() -> None:
    module = _load("samplers/warm_start_grid")
    assert module.WarmStartGridSampler is optuna_transfer.WarmStartGridSampler

    source = _source()
    grid: dict[str, list[float]] = {"x": [-8.0, -4.0, 0.0, 2.0, 4.0, 8.0], "y": [-1, 3]}
    study = optuna.create_study(sampler=module.WarmStartGridSampler(source, grid, seed=0))
    study.optimize(_objective)  # the sampler stops the study once the grid is exhausted
    assert len(study.trials) == 12
    assert {(t.params["x"], t.params["y"]) for t in study.trials} == {
        (x, y) for x in grid["x"] for y in grid["y"]
    }
    # The grid point nearest to the source's best (x near 2, y = -1) is the optimum: first.
    assert study.trials[0].params == {"x": 2.0, "y": -1}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_has_what_the_registry_requires(package: str) -> None:
    folder = REGISTRY_ROOT / package
    for name in ("__init__.py", "README.md", "LICENSE", "requirements.txt", "example.py"):
        assert (folder / name).is_file(), f"{package} lacks {name}"
    assert (folder / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert "optuna-transfer" in (folder / "requirements.txt").read_text().splitlines()

    readme = (folder / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", readme, flags=re.S)
    assert match, f"{package}/README.md does not start with front matter"
    fields = dict(line.split(": ", 1) for line in match.group(1).splitlines())
    assert set(fields) == FRONT_MATTER_KEYS
    # A package under samplers/ must carry the "sampler" tag.
    assert "sampler" in [t.strip() for t in fields["tags"].strip("[]").split(",")]
    versions = [v.strip() for v in fields["optuna_versions"].strip("[]").split(",")]
    assert versions and all(re.fullmatch(r"5\.\d+\.\d+", v) for v in versions)
    assert fields["license"] == "MIT License"
    for section in ("## Abstract", "## Class or Function Names", "## Installation", "## Example"):
        assert f"\n{section}\n" in readme, f"{package}/README.md lacks {section}"


@pytest.mark.parametrize("package", PACKAGES)
def test_example_runs(package: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = REGISTRY_ROOT / package / "example.py"
    spec = importlib.util.spec_from_file_location(f"hub_example_{Path(package).name}", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    study = example.main()
    assert study.best_value < 0.5
    assert capsys.readouterr().out
