"""Task similarity: how far a source's promising region agrees with the target's results.

A source model scores any configuration by ``log l_s(x) - log g_s(x)``: high where the source
found good trials and few bad ones. On the target's finished trials we then ask the question the
target can answer itself: *do the configurations the source prefers actually rank better on the
target?* That is a Kendall-type rank agreement between the source scores and the target's own
ranking. Turning it into a trust weight:

* ``p`` = probability that the source orders a random pair of target trials correctly. Its
  posterior is ``Beta(a0 + n * (1 + tau) / 2, b0 + n * (1 - tau) / 2)`` for ``n`` target trials
  and agreement ``tau`` in [-1, 1] (pairs share trials, so ``n`` rather than the number of pairs
  is the honest sample size).
* trust = P(p > 1/2): the posterior probability that the source is better than a coin flip. It
  starts at ``P(Beta(a0, b0) > 1/2)`` (optimistic: the user chose this source), rises towards 1
  for a related source and falls towards 0 within a handful of target trials for a misleading
  one.

This measures similarity between the source's promising region and the target's with the
target's own evidence, rather than by overlap of two density estimates (Watanabe et al., IJCAI
2023), because the overlap of a sparse early target density with anything is mostly prior: rank
agreement reacts to the first trials that disagree.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc


def rank_agreement(source_scores: np.ndarray, target_losses: np.ndarray) -> float:
    """Kendall-type agreement in [-1, 1] between higher ``source_scores`` and lower losses.

    Pairs tied in either input are ignored; 0 when no pair is informative.
    """
    s = np.asarray(source_scores, dtype=float)
    y = np.asarray(target_losses, dtype=float)
    if s.size < 2:
        return 0.0
    ds = np.sign(s[:, None] - s[None, :])
    dy = np.sign(y[None, :] - y[:, None])  # +1 where the row trial is better (lower loss)
    prod = ds * dy
    informative = np.count_nonzero(prod)
    if informative == 0:
        return 0.0
    return float(prod.sum() / informative)


def trust(agreement: float, n: int, prior_a: float, prior_b: float) -> float:
    """Posterior probability that a source with ``agreement`` on ``n`` trials beats chance."""
    a = prior_a + n * (1.0 + agreement) / 2.0
    b = prior_b + n * (1.0 - agreement) / 2.0
    # P(p > 1/2) for p ~ Beta(a, b) = 1 - I_{1/2}(a, b).
    return float(1.0 - betainc(a, b, 0.5))
