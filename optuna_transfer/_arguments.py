"""Up-front checks of the samplers' integer, flag and callable arguments, and of the study
the readers of a run are given, so that a wrong type fails at once with the argument's name
rather than deep inside numpy or Optuna, or as a silently truthy string ("no"), at the first
trial."""

from __future__ import annotations

import reprlib
from typing import Any

import numpy as np
from optuna.study import Study


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


# numpy's random generators take seeds up to 2**32 - 1.
MAX_SEED = 2**32 - 1


def check_integer(
    name: str, value: Any, minimum: int, *, maximum: int | None = None, none_ok: bool = False
) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is an integer >= ``minimum`` and,
    where given, <= ``maximum`` (or None, where ``none_ok``)."""
    if value is None and none_ok:
        return
    if not is_integer(value) or value < minimum or (maximum is not None and value > maximum):
        allowed = f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
        allowed += " or None" if none_ok else ""
        raise ValueError(f"`{name}` must be {allowed}, got {value!r}.")


def check_flag(name: str, value: Any, *, none_ok: bool = False) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is a bool (or None, where
    ``none_ok``): a string such as ``"no"`` would otherwise count as True."""
    if value is None and none_ok:
        return
    if not isinstance(value, (bool, np.bool_)):
        allowed = "True or False" + (" or None" if none_ok else "")
        raise ValueError(f"`{name}` must be {allowed}, got {value!r}.")


def check_callable(name: str, value: Any) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is callable or None."""
    if value is not None and not callable(value):
        raise ValueError(f"`{name}` must be a callable or None, got {value!r}.")


def check_study(name: str, value: Any) -> None:
    """Raise a TypeError naming ``name`` unless ``value`` is an optuna.Study: a study name, a
    list of trials or None would otherwise fail deep inside with an AttributeError."""
    if not isinstance(value, Study):
        raise TypeError(
            f"`{name}` must be an optuna.Study, e.g. from optuna.load_study(study_name=..., "
            f"storage=...), got the {type(value).__name__} {reprlib.repr(value)}."
        )
