"""The hyperparameters ``CifarFineTune`` tunes, and how users fix or narrow them."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
import math
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_transfer._encoding import choice_index
from optuna_transfer._encoding import is_number


OPTIMIZERS = ("sgd", "adam", "adamw")


def _is_real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class _Knob:
    default: BaseDistribution
    valid: Callable[[Any], bool]
    requirement: str  # shown when a value fails ``valid``


_KNOBS: dict[str, _Knob] = {
    "lr": _Knob(
        FloatDistribution(1e-5, 1e-1, log=True), lambda v: _is_real(v) and v > 0, "a number > 0"
    ),
    "weight_decay": _Knob(
        FloatDistribution(1e-6, 1e-2, log=True),
        lambda v: _is_real(v) and v >= 0,
        "a number >= 0",
    ),
    "optimizer": _Knob(
        CategoricalDistribution(OPTIMIZERS), lambda v: v in OPTIMIZERS, f"one of {OPTIMIZERS}"
    ),
    "momentum": _Knob(
        FloatDistribution(0.0, 0.99), lambda v: _is_real(v) and 0 <= v < 1, "a number in [0, 1)"
    ),
    "batch_size": _Knob(
        CategoricalDistribution((128, 256, 512, 1024)),
        lambda v: _is_int(v) and v >= 2,
        "an int >= 2",
    ),
    "label_smoothing": _Knob(
        FloatDistribution(0.0, 0.2), lambda v: _is_real(v) and 0 <= v < 1, "a number in [0, 1)"
    ),
    "frozen_stages": _Knob(
        IntDistribution(0, 4), lambda v: _is_int(v) and 0 <= v <= 4, "an int in [0, 4]"
    ),
    "warmup_fraction": _Knob(
        FloatDistribution(0.0, 0.3), lambda v: _is_real(v) and 0 <= v < 1, "a number in [0, 1)"
    ),
    "augment_strength": _Knob(
        FloatDistribution(0.0, 1.0),
        lambda v: _is_real(v) and 0 <= v <= 1,
        "a number in [0, 1]",
    ),
}

KNOB_NAMES = tuple(_KNOBS)


def default_search_space() -> dict[str, BaseDistribution]:
    """The distributions ``CifarFineTune`` samples when nothing is fixed or narrowed."""
    return {name: knob.default for name, knob in _KNOBS.items()}


def build_search_space(
    space: Mapping[str, BaseDistribution] | None, fixed: Mapping[str, Any] | None
) -> dict[str, BaseDistribution]:
    """The default space with ``space`` entries replacing distributions and ``fixed`` entries
    pinned to one value.

    A fixed value becomes a one-point distribution of the same kind, so it is still recorded in
    ``trial.params`` and studies with and without the constant stay comparable.
    """
    space = dict(space or {})
    fixed = dict(fixed or {})
    for arg, names in (("space", space), ("fixed", fixed)):
        unknown = sorted(set(names) - set(_KNOBS))
        if unknown:
            raise ValueError(
                f"Unknown hyperparameter(s) {unknown} in {arg}=. CifarFineTune tunes "
                f"{list(KNOB_NAMES)}; fix or narrow those names."
            )
    both = sorted(set(space) & set(fixed))
    if both:
        raise ValueError(f"{both} appear in both space= and fixed=; give each in one of them.")
    result = default_search_space()
    for name, dist in space.items():
        _check_distribution(name, dist)
        result[name] = dist
    for name, value in fixed.items():
        knob = _KNOBS[name]
        if not knob.valid(value):
            raise ValueError(
                f"fixed[{name!r}]={value!r} is invalid: it must be {knob.requirement}."
            )
        if isinstance(knob.default, FloatDistribution):
            result[name] = FloatDistribution(float(value), float(value))
        elif isinstance(knob.default, IntDistribution):
            result[name] = IntDistribution(value, value)
        else:
            result[name] = CategoricalDistribution((value,))
    return result


def _check_distribution(name: str, dist: BaseDistribution) -> None:
    knob = _KNOBS[name]
    if isinstance(dist, CategoricalDistribution):
        values: list[Any] = list(dist.choices)
    elif isinstance(dist, FloatDistribution | IntDistribution) and name != "optimizer":
        if isinstance(dist, FloatDistribution) and name in ("batch_size", "frozen_stages"):
            raise ValueError(
                f"space[{name!r}] must be an IntDistribution or CategoricalDistribution of "
                f"ints, got {dist}."
            )
        values = [dist.low, dist.high]
    else:
        raise ValueError(
            f"space[{name!r}] must be a CategoricalDistribution of {OPTIMIZERS}, got {dist}."
            if name == "optimizer"
            else f"space[{name!r}] must be a Float/Int/CategoricalDistribution, got {dist!r}."
        )
    bad = [v for v in values if not knob.valid(v)]
    if bad:
        raise ValueError(f"space[{name!r}] allows {bad}, but {name} must be {knob.requirement}.")


def suggest(trial: optuna.trial.BaseTrial, name: str, dist: BaseDistribution) -> Any:
    """Ask ``trial`` for ``name`` from ``dist`` through the public ``suggest_*`` API."""
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise TypeError(f"Unsupported distribution for {name!r}: {dist!r}.")


def suggest_in_space(trial: optuna.trial.BaseTrial, name: str, dist: BaseDistribution) -> Any:
    """``suggest``, refusing a value outside ``dist``.

    An enqueued value (or a ``FixedTrial``'s) outside the distribution is returned by Optuna
    with only a warning, and would train a meaningless model or fail inside torch; a choice not
    offered, NaN or a value <= 0 on a log scale Optuna refuses itself, without naming the
    parameter.

    Raises:
        ValueError: Naming ``name``, the value given, the range and the fix.
    """
    try:
        value = suggest(trial, name, dist)
    except ValueError as err:  # Optuna's message quotes the value but not the parameter.
        raise ValueError(_outside(name, dist, str(err).rstrip("."))) from None
    if not _contains(dist, value):
        raise ValueError(_outside(name, dist, f"got {value!r}"))
    return value


def _contains(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return choice_index(dist, value) is not None
    # suggest_int returns int(value): an enqueued 2.5 trains, and is recorded, as 2.
    assert isinstance(dist, FloatDistribution | IntDistribution)
    return is_number(value) and dist.low <= value <= dist.high  # NaN compares False


def _outside(name: str, dist: BaseDistribution, problem: str) -> str:
    if isinstance(dist, CategoricalDistribution):
        allowed = f"one of {dist.choices}"
    else:
        assert isinstance(dist, FloatDistribution | IntDistribution)
        kind = "an integer" if isinstance(dist, IntDistribution) else "a number"
        allowed = f"{kind} in [{dist.low:g}, {dist.high:g}]"
    return (
        f"{name}: {problem}, but CifarFineTune's search space says {name} must be {allowed}. "
        f"Enqueue {allowed}, or change CifarFineTune's space=/fixed= to allow it."
    )
