"""Parzen estimators over aligned observations.

A :class:`ParzenEstimator` is a weighted mixture of product kernels in the unit coordinates of
``optuna_transfer._sources``: a truncated Gaussian on ``[0, 1]`` for each numeric dimension and a
smoothed one-hot distribution for each categorical one. A NaN coordinate makes that kernel
uniform in that dimension, which is how a source that never saw a parameter stays neutral on it.

The estimator is written here instead of reusing Optuna's private ``_ParzenEstimator`` so that
the package depends on public Optuna API only, and so that source estimators can be built once
and evaluated on any number of candidates cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp
from scipy.special import ndtr
from scipy.special import ndtri


_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_EPS = 1e-12


class ParzenEstimator:
    """Mixture of product kernels; see the module docstring.

    Args:
        observations: (n, d) unit coordinates or choice indices, NaN where missing.
        n_choices: per dimension, the number of categorical choices or 0 for numeric.
        weights: (n,) non-negative kernel weights.
        prior_weight: weight of an extra kernel that is uniform in every dimension, so the
            density is positive everywhere (exploration, as in Optuna's TPE).
        prior_share: if given, overrides ``prior_weight`` so that the uniform kernel holds this
            share of the total weight whatever the number of observations. Two estimators with
            the same share then have ratio 1 where neither has data: neutral, not optimistic.
        bandwidth_factor: multiplies the numeric bandwidths; below 1 sharpens the kernels.
    """

    def __init__(
        self,
        observations: np.ndarray,
        n_choices: Sequence[int],
        weights: np.ndarray | None = None,
        prior_weight: float = 1.0,
        bandwidth_factor: float = 1.0,
        prior_share: float | None = None,
    ) -> None:
        obs = np.asarray(observations, dtype=float).reshape(-1, len(n_choices))
        n, d = obs.shape
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        if prior_share is not None and n > 0:
            prior_weight = prior_share * w.sum() / (1.0 - prior_share)
        self._n_choices = list(n_choices)
        # The prior kernel is a row of NaN: uniform everywhere.
        self._mus = np.vstack([obs, np.full((1, d), np.nan)])
        all_w = np.append(w, prior_weight if n > 0 else 1.0)
        all_w = np.maximum(all_w, 0.0)
        self._log_w = np.log(all_w / all_w.sum() + 1e-300)
        self._sigmas = np.ones_like(self._mus)
        self._cat_probs: dict[int, np.ndarray] = {}
        n_kernels = n + 1
        for j, c in enumerate(self._n_choices):
            col = self._mus[:, j]
            if c > 0:
                probs = np.full((n_kernels, c), prior_weight / n_kernels)
                seen = ~np.isnan(col)
                probs[np.flatnonzero(seen), col[seen].astype(int)] += 1.0
                probs[~seen] = 1.0
                self._cat_probs[j] = probs / probs.sum(axis=1, keepdims=True)
            else:
                self._sigmas[:, j] = bandwidth_factor * _bandwidths(col, n_kernels)
        # Normaliser of each truncated Gaussian on [0, 1]; 1 where the kernel is uniform.
        mus0 = np.nan_to_num(self._mus, nan=0.5)
        self._log_z = np.log(
            np.maximum(ndtr((1 - mus0) / self._sigmas) - ndtr(-mus0 / self._sigmas), _EPS)
        )

    @property
    def n_kernels(self) -> int:
        return len(self._mus)

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density of each row of ``x`` (m, d); NaN entries of ``x`` are marginalised."""
        total = self.kernel_log_pdf(x)
        return np.asarray(logsumexp(total + self._log_w[None, :], axis=1))

    def smooth(self, x: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Kernel regression (Nadaraya-Watson) of per-observation ``values`` at rows of ``x``.

        Uses the observation kernels only (not the uniform prior kernel), so the prediction at
        ``x`` is a locally weighted average of what was observed nearest to it.
        """
        logk = self.kernel_log_pdf(x)[:, :-1] + self._log_w[None, :-1]
        logk -= logk.max(axis=1, keepdims=True)
        k = np.exp(logk)
        return np.asarray((k @ values) / k.sum(axis=1))

    def kernel_log_pdf(self, x: np.ndarray) -> np.ndarray:
        """(m, n_kernels) log density of each row of ``x`` under each kernel."""
        x = np.asarray(x, dtype=float).reshape(-1, len(self._n_choices))
        total = np.zeros((len(x), self.n_kernels))
        for j, c in enumerate(self._n_choices):
            xj = x[:, j]
            known = ~np.isnan(xj)
            if not known.any():
                continue
            mu = self._mus[:, j]
            if c > 0:
                probs = self._cat_probs[j]
                idx = xj[known].astype(int)
                total[known] += np.log(probs[:, idx].T + _EPS) + np.log(c)
            else:
                sigma = self._sigmas[:, j]
                z = (xj[known, None] - mu[None, :]) / sigma[None, :]
                comp = -0.5 * z**2 - _LOG_SQRT_2PI - np.log(sigma) - self._log_z[:, j]
                # A missing kernel centre means uniform on [0, 1]: log density 0.
                total[known] += np.where(np.isnan(mu)[None, :], 0.0, comp)
        # Categorical terms carry + log(c) so every dimension is a density w.r.t. the uniform
        # measure; that keeps ratios between estimators with different dimensions comparable.
        return total

    def sample(self, rng: np.random.RandomState, size: int) -> np.ndarray:
        """``size`` draws (size, d) from the mixture."""
        k = rng.choice(
            self.n_kernels, size=size, p=np.exp(self._log_w) / np.exp(self._log_w).sum()
        )
        out = np.empty((size, len(self._n_choices)))
        for j, c in enumerate(self._n_choices):
            mu = self._mus[k, j]
            missing = np.isnan(mu)
            if c > 0:
                probs = self._cat_probs[j][k]
                cum = np.cumsum(probs, axis=1)
                u = rng.uniform(size=(size, 1))
                out[:, j] = np.minimum((u > cum).sum(axis=1), c - 1)
            else:
                sigma = self._sigmas[k, j]
                mu0 = np.where(missing, 0.5, mu)
                lo, hi = ndtr(-mu0 / sigma), ndtr((1 - mu0) / sigma)
                u = rng.uniform(size=size)
                draw = mu0 + sigma * ndtri(np.clip(lo + u * (hi - lo), 1e-15, 1 - 1e-15))
                out[:, j] = np.where(missing, rng.uniform(size=size), np.clip(draw, 0.0, 1.0))
        return out


def _bandwidths(col: np.ndarray, n_kernels: int) -> np.ndarray:
    """Optuna-style per-dimension bandwidths: the larger gap to a sorted neighbour, clipped."""
    sigmas = np.ones_like(col)
    seen = np.flatnonzero(~np.isnan(col))
    if seen.size == 0:
        return sigmas
    values = col[seen]
    order = np.argsort(values)
    padded = np.concatenate([[0.0], values[order], [1.0]])
    gaps = np.maximum(padded[1:-1] - padded[:-2], padded[2:] - padded[1:-1])
    if padded.size >= 4:
        # Like Optuna's consider_endpoints=False: the outermost kernels look inward only.
        gaps[0] = padded[2] - padded[1]
        gaps[-1] = padded[-2] - padded[-3]
    min_sigma = 1.0 / min(100.0, 1.0 + n_kernels)
    sorted_sigmas = np.clip(gaps, min_sigma, 1.0)
    out = np.empty_like(values)
    out[order] = sorted_sigmas
    sigmas[seen] = out
    return sigmas
