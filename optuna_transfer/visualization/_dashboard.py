"""Show the transfer in optuna-dashboard, which displays user attrs, notes and figures.

The sampler records its weights as *system* attributes, which optuna-dashboard does not show.
Two explicit, opt-in helpers put them where it looks:

* :func:`with_transfer_attrs` wraps an objective so that each trial, before it finishes, gets
  user attributes (its role and every source's weight): they appear on the dashboard's trial
  page and as sortable columns of its trial table. Optuna refuses user attributes on finished
  trials, so this is the only way to have them per trial.
* :func:`annotate_for_dashboard` works on any study afterwards (also one loaded from storage):
  a study note with a per-trial table and the weights figure, both on the study's page.

TransferTPESampler writes the same per-trial user attributes itself unless it was built with
``record_user_attrs=False`` (user attributes are the user's namespace, which some keep for
their own keys); :func:`with_transfer_attrs` is for such a study.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import math
import reprlib
from typing import Any
from typing import TypeVar

from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import Trial
from optuna.trial import TrialState

from optuna_transfer._arguments import check_integer
from optuna_transfer._arguments import check_study
from optuna_transfer.visualization._source_weights import _probe_numbers
from optuna_transfer.visualization._source_weights import _trial_record
from optuna_transfer.visualization._source_weights import _TrialRecord
from optuna_transfer.visualization._source_weights import in_portfolio_only
from optuna_transfer.visualization._source_weights import plot_source_weights
from optuna_transfer.visualization._source_weights import PROBE_KEY
from optuna_transfer.visualization._source_weights import ROLE_PROBE
from optuna_transfer.visualization._source_weights import ROLE_ZERO_SHOT
from optuna_transfer.visualization._source_weights import TARGET_LABEL
from optuna_transfer.visualization._source_weights import trial_records
from optuna_transfer.visualization._source_weights import why_no_weights


ROLE_ATTR = "transfer:role"
WEIGHT_ATTR_PREFIX = "transfer:weight:"
VOTERS_ATTR = "transfer:voters"
# Up to this many weights (the target's included), every one gets a user attribute, zeros
# too; beyond it only the sources that voted.
MAX_WEIGHT_ATTRS = 21
# Fixed, so annotating again replaces the figure instead of adding a copy.
GRAPH_OBJECT_ID = "transfer-source-weights"

R = TypeVar("R")


def transfer_user_attrs(record: _TrialRecord) -> dict[str, Any]:
    """The user attributes :func:`with_transfer_attrs` writes for one trial: its role, each
    weight (with more than :data:`MAX_WEIGHT_ATTRS` labels, only those above 0), the voters."""
    attrs: dict[str, Any] = {}
    if record.role is not None:
        attrs[ROLE_ATTR] = record.role
    if record.weights is not None:
        many = len(record.weights) > MAX_WEIGHT_ATTRS
        for label, w in record.weights.items():
            if many and w == 0.0:
                continue  # a column per source stops helping long before a thousand sources
            # Rounded: read by people on the dashboard; the exact value stays in system attrs.
            attrs[WEIGHT_ATTR_PREFIX + label] = round(w, 3)
        voters = [(label, w) for label, w in record.weights.items() if label != TARGET_LABEL]
        attrs[VOTERS_ATTR] = (
            ", ".join(f"{label} ({w:.2f})" for label, w in voters if w > 0) or "none"
        )
    return attrs


def with_transfer_attrs(objective: Callable[[Trial], R]) -> Callable[[Trial], R]:
    """Wrap ``objective`` so every trial records the transfer as user attributes.

    Each trial gets ``"transfer:role"`` (``"zero-shot"``, ``"probe"``, ``"transfer"``,
    ``"cold"``, ... see :func:`annotate_for_dashboard`), ``"transfer:weight:<label>"`` for each
    source and the target (rounded to 3 decimals), and ``"transfer:voters"`` (the sources that
    voted, with their weights), written when the objective returns or raises, while the trial
    can still be updated. optuna-dashboard shows them on the trial page and in its trial table.

    Example:

        .. code-block:: python

            from optuna_transfer.visualization import with_transfer_attrs

            study.optimize(with_transfer_attrs(objective), n_trials=50)
    """
    # Up front: wrapped as is, a wrong argument would fail only when the first trial runs.
    if not callable(objective):
        raise TypeError(
            "`objective` must be the objective function study.optimize calls (it takes a "
            f"trial), got the {type(objective).__name__} {reprlib.repr(objective)}."
        )

    @functools.wraps(objective)
    def wrapped(trial: Trial) -> R:
        try:
            return objective(trial)
        finally:
            _record(trial)

    return wrapped


def _record(trial: Trial) -> None:
    study = trial.study
    trials = study.get_trials(deepcopy=False)
    frozen = next((t for t in trials if t.number == trial.number), None)
    if frozen is None:
        return
    record = _trial_record(frozen, _probe_numbers(trials))
    for key, value in transfer_user_attrs(record).items():
        trial.set_user_attr(key, value)


def trial_user_attrs(trial: FrozenTrial) -> dict[str, Any]:
    """The user attributes of one trial recorded by a sampler that marks its probe (as
    TransferTPESampler does), from that trial alone."""
    probes = {trial.number} if trial.system_attrs.get(PROBE_KEY) else set()
    return transfer_user_attrs(_trial_record(trial, probes))


def annotate_for_dashboard(
    study: Study,
    sampler: Any = None,
    *,
    target: Callable[[FrozenTrial], float] | None = None,
    target_name: str = "Objective Value",
) -> None:
    """Write what TransferTPESampler believed where optuna-dashboard shows it.

    Adds to ``study`` (replacing what an earlier call wrote):

    * the study note: for each source, in how many trials it voted and its last vote; the
      zero-shot and probe trials; and a table of every trial's role, value and weights;
    * the figure of :func:`~optuna_transfer.visualization.plot_source_weights`.

    Works on a finished study, also one loaded from storage. Roles: ``zero-shot`` (a source's
    best configuration, evaluated as is), ``probe`` (the trial after those, away from them and
    where the sources predict the worst), ``enqueued`` (user-fixed parameters), ``transfer``
    (chosen by the sampler's own search: the weighted vote, its local steps or a categorical
    space's ranking), ``cold`` (every source refuted and the sampler's own search over: cold
    TPE), ``random`` (a start-up trial sampled at random, where the sampler records it). For
    per-trial user attributes use :func:`with_transfer_attrs` while the study runs.

    Args:
        study: The study, in a storage optuna-dashboard reads.
        sampler: Optional, as in :func:`~optuna_transfer.visualization.plot_source_weights`.
        target: The value drawn beside the weights in the figure, as in
            :func:`~optuna_transfer.visualization.plot_source_weights`; needed for a
            multi-objective study (the note lists every objective's value).
        target_name: The name of that value, for the figure's axis label.
    """
    check_study("study", study)
    try:
        import optuna_dashboard
    except ImportError as e:
        raise ImportError(
            "annotate_for_dashboard needs optuna-dashboard: "
            "`pip install 'optuna-transfer[dashboard]'`."
        ) from e
    # The figure first: a multi-objective study without ``target`` is refused before anything
    # is written.
    figure = plot_source_weights(study, sampler, target=target, target_name=target_name)
    records = trial_records(study, sampler)
    optuna_dashboard.save_note(study, transfer_note(study, records, sampler))
    optuna_dashboard.save_plotly_graph_object(study, figure, graph_object_id=GRAPH_OBJECT_ID)


def source_summary(study: Study, top: int | None = None) -> str:
    """Which sources earned a vote, how often and until when, as Markdown bullets: what the
    transfer sampler believed, read in a second (``print(source_summary(study))``).

    Sources are listed by how many trials they voted in, most first; ``top`` keeps that many
    (the rest are counted in one line). Works on a study loaded from storage.
    """
    check_study("study", study)
    check_integer("top", top, 0, none_ok=True)
    return "\n".join(_summary_lines(study, trial_records(study), top)) + "\n"


def _labels_of(records: list[_TrialRecord]) -> list[str]:
    labels: list[str] = []
    for r in records:
        for label in r.weights or {}:
            if label not in labels:
                labels.append(label)
    return labels


def _summary_lines(
    study: Study, records: list[_TrialRecord], top: int | None, sampler: Any = None
) -> list[str]:
    weighted = [r for r in records if r.weights is not None]
    if in_portfolio_only(records):
        return [
            "No trial records transfer weights yet: the zero-shot trials and the probe follow "
            "the sources' portfolio, not a vote.",
            *_role_lines(records),
        ]
    if not weighted:
        return [f"No trial records transfer weights: {why_no_weights(study, sampler)}."]
    sources = [label for label in _labels_of(records) if label != TARGET_LABEL]
    votes = {
        label: [r for r in weighted if (r.weights or {}).get(label, 0.0) > 0] for label in sources
    }
    ranked = sorted(sources, key=lambda label: -len(votes[label]))
    shown = ranked if top is None else ranked[:top]
    lines = []
    for label in shown:
        if votes[label]:
            last = votes[label][-1]
            lines.append(
                f"* **{label}** voted in {len(votes[label])} of {len(weighted)} trials; last in "
                f"trial {last.number} (weight {(last.weights or {})[label]:.2f})."
            )
        else:
            lines.append(
                f"* **{label}** never voted (refuted by the target's trials, or not used for "
                "this study: the study itself, another number of objectives, or no parameter "
                "in common; the sampler's log says which)."
            )
    if len(shown) < len(ranked):
        rest = ranked[len(shown):]
        n_voted = sum(bool(votes[label]) for label in rest)
        lines.append(f"* {len(rest)} more sources, {n_voted} of which ever voted.")
    return lines + _role_lines(records)


def _role_lines(records: list[_TrialRecord]) -> list[str]:
    lines = []
    for role, name in ((ROLE_ZERO_SHOT, "Zero-shot trials"), (ROLE_PROBE, "Probe trial")):
        numbers = [str(r.number) for r in records if r.role == role]
        lines.append(f"* {name}: {', '.join(numbers) or 'none'}.")
    return lines


def transfer_note(study: Study, records: list[_TrialRecord], sampler: Any = None) -> str:
    """The study note's Markdown: a summary per source, then one row per trial (``sampler``:
    as in :func:`annotate_for_dashboard`)."""
    labels = _labels_of(records)
    lines = ["## What the transfer sampler believed", ""]
    lines += _summary_lines(study, records, None, sampler)
    if not any(r.weights is not None for r in records):
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "A source votes while its trust (how well it ranks the target's finished trials) "
        "exceeds 1/2; its weight is that trust. The target's own model always has weight 1.",
        "",
        "| trial | role | value | " + " | ".join(f"weight: {label}" for label in labels) + " |",
        "|---:|---|---:|" + "---:|" * len(labels),
    ]
    values = {
        t.number: t.values
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    for r in records:
        vals = values.get(r.number)
        value = ", ".join(f"{v:.4g}" for v in vals) if vals else ""
        cells = [_weight_cell((r.weights or {}).get(label)) for label in labels]
        lines.append(f"| {r.number} | {r.role or ''} | {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _weight_cell(w: float | None) -> str:
    if w is None or math.isnan(w):
        return ""
    return f"{w:.2f}"

