"""The one place that leans on Optuna internals beyond ``study._storage`` and friends.

Optuna's samplers read a study's history through ``Study._get_trials`` (private; its signature
is that of Optuna 5.x, which ``pyproject.toml`` pins). :class:`StudyWithoutTrials` wraps a
study so that some trials are invisible to a sampler, which is how the transfer sampler hands
cold TPE a history without the zero-shot trials of sources it no longer trusts.
``tests/test_optuna_compat.py`` checks that a sampler given the view behaves exactly as on a
study holding only the visible trials, so an Optuna change that breaks this fails a test.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Container
from collections.abc import Sequence
from typing import Any

from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


class StudyWithoutTrials:
    """Read-through view of ``study`` in which trials for which ``hide(trial)`` holds do not
    exist. Everything else (storage, directions, writes to the sampled trial) passes through to
    ``study``; only the trial listings are filtered."""

    def __init__(self, study: Study, hide: Callable[[FrozenTrial], bool]) -> None:
        self._study = study
        self._hide = hide

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        return self._visible(trials)

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._visible(self._study.get_trials(deepcopy=deepcopy, states=states))

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def _visible(self, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        return [t for t in trials if not self._hide(t)]
