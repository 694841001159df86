"""Parzen estimators over aligned observations.

A :class:`ParzenEstimator` is a weighted mixture of product kernels in the unit coordinates of
``optuna_transfer._encoding``: a truncated Gaussian on ``[0, 1]`` for each numeric dimension and a
smoothed one-hot distribution for each categorical one. A NaN coordinate makes that kernel
uniform in that dimension, which is how a source that never saw a parameter stays neutral on it.

The estimator is written here instead of reusing Optuna's private ``_ParzenEstimator`` so that
the package depends on public Optuna API only, and so that source estimators can be built once
and evaluated on any number of candidates cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np
from scipy.special import ndtr
from scipy.special import ndtri


_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_EPS = 1e-12
# exp(x) rounds to 0 for every x below this: its smallest positive result, 2**-1074, is
# exp(-744.44), and below ln(2**-1075) = -745.13 the exact value is nearer 0.
_EXP_ZERO = -746.0
# Entries per block of the grid evaluation's matrix product: bounds its memory (32 MiB).
_BLOCK = 1 << 22
# Entries that smooth_grid sums and exponentiates at a time: a chunk that stays in cache.
_CHUNK = 1 << 17
# Up to this many estimators, StackedSmoother averages each one as ParzenEstimator.smooth does
# (equal results); beyond, all at once (equal up to rounding, and much faster).
_LOOP_SEGMENTS = 16


class ParzenEstimator:
    """Mixture of product kernels; see the module docstring.

    Every observation's kernel has weight 1, plus one kernel that is uniform in every dimension
    (the prior), so the density is positive everywhere (exploration, as in Optuna's TPE).

    Args:
        observations: (n, d) unit coordinates or choice indices, NaN where missing.
        n_choices: per dimension, the number of categorical choices or 0 for numeric.
        prior_share: if given, the prior kernel holds this share of the total weight whatever
            the number of observations (else its weight is 1). Two estimators with the same
            share then have ratio 1 where neither has data: neutral, not optimistic.
    """

    def __init__(
        self,
        observations: np.ndarray,
        n_choices: Sequence[int],
        prior_share: float | None = None,
    ) -> None:
        obs = np.asarray(observations, dtype=float).reshape(-1, len(n_choices))
        n, d = obs.shape
        w = np.ones(n)
        prior_weight = 1.0
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
                self._sigmas[:, j] = _bandwidths(col, n_kernels)
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
        total = self.kernel_log_pdf(x) + self._log_w[None, :]
        peak = total.max(axis=1)
        return np.asarray(np.log(np.exp(total - peak[:, None]).sum(axis=1)) + peak)

    def smooth(self, x: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Kernel regression (Nadaraya-Watson) of per-observation ``values`` at rows of ``x``.

        Uses the observation kernels only (not the uniform prior kernel), so the prediction at
        ``x`` is a locally weighted average of what was observed nearest to it.
        """
        return _kernel_average(self.kernel_log_pdf(x)[:, :-1] + self._log_w[None, :-1], values)

    def smooth_grid(self, columns: Sequence[np.ndarray], values: np.ndarray) -> np.ndarray:
        """:meth:`smooth` at every point of the Cartesian grid of ``columns`` (C order).

        Exact, in blocks of points: each dimension's kernel terms are tabulated once per
        (column value, kernel). (A factorised product as in :meth:`log_pdf_grid` would
        underflow: without the prior kernel, a point far from every observation has no term
        within exp's range.) The leading columns' terms are gathered once per combination of
        their values and the trailing columns' added to each by broadcasting; either way a
        point's terms are summed in column order, so every sum is the same as term by term.
        """
        tables = [
            self._dimension_log_pdf(j, np.asarray(c, float))[:, :-1] for j, c in enumerate(columns)
        ]
        sizes = [len(c) for c in columns]
        n_points = math.prod(sizes)
        log_w = self._log_w[:-1]
        rows = max(1, _BLOCK // max(len(log_w), 1))
        # Trailing columns spanning at most a quarter of a block: a block's whole leading
        # combinations then hold at most half a block more points than the block.
        split = len(sizes)
        while split > 0 and math.prod(sizes[split - 1 :]) <= max(1, rows // 4):
            split -= 1
        n_trailing = math.prod(sizes[split:])
        n_kernels = len(log_w)
        # The trailing columns' last ones, spanning at most a chunk of entries (at least one
        # point): their sums are formed, scaled and exponentiated a chunk at a time, while the
        # chunk is in cache. Per point, the same operations in the same order.
        inner = len(sizes)
        while inner > split and math.prod(sizes[inner - 1 :]) * n_kernels <= _CHUNK:
            inner -= 1
        n_inner = math.prod(sizes[inner:])
        per_chunk = max(1, _CHUNK // (n_inner * n_kernels))
        size = per_chunk * n_inner * n_kernels
        scratch = (np.empty(size), np.empty(size))
        out = np.empty(n_points)
        # A block's kernel terms, over the whole leading combinations it spans; reused by every
        # block.
        block = np.empty((min(rows, n_points) // n_trailing + 2) * n_trailing * n_kernels)
        for start in range(0, n_points, rows):
            stop = min(start + rows, n_points)
            first, last = start // n_trailing, -(-stop // n_trailing)
            lead = np.broadcast_to(log_w, (last - first, n_kernels)).copy()
            if split > 0:
                index = np.unravel_index(np.arange(first, last), sizes[:split])
                for table, i in zip(tables[:split], index):
                    lead += table[i]
            # The sums over the columns before the inner ones: one row per chunk unit.
            outer = _cartesian_sum(tables[split:inner], lead)
            logk = block[: (last - first) * n_trailing * n_kernels].reshape(-1, n_kernels)
            for f in range(0, len(outer), per_chunk):
                g = min(f + per_chunk, len(outer))
                chunk = logk[f * n_inner : g * n_inner]
                _cartesian_sum(tables[inner:], outer[f:g], scratch, into=chunk)
                _scaled_exp(chunk)
            offset = first * n_trailing
            # The same blocks as ever: a matrix product's rounding may depend on its shape.
            k = logk[start - offset : stop - offset]
            out[start:stop] = (k @ values) / k.sum(axis=1)
        return out

    def kernel_log_pdf(self, x: np.ndarray) -> np.ndarray:
        """(m, n_kernels) log density of each row of ``x`` under each kernel."""
        x = np.asarray(x, dtype=float).reshape(-1, len(self._n_choices))
        total = np.zeros((len(x), self.n_kernels))
        for j in range(len(self._n_choices)):
            total += self._dimension_log_pdf(j, x[:, j])
        return total

    def log_pdf_grid(self, columns: Sequence[np.ndarray]) -> np.ndarray:
        """:meth:`log_pdf` of every point of the Cartesian grid of ``columns`` (C order).

        A product kernel's log density is a sum of per-dimension terms and a grid column has
        few distinct values, so each term is tabulated once per (value, kernel). Splitting the
        columns into a leading block A and a trailing block B, the mixture density is
        ``p(a, b) = sum_k exp(alpha_k(a)) * exp(beta_k(b))``: one matrix product. Rows are
        scaled by their maxima first; the uniform prior kernel is never more than a few dozen
        nats below a row's maximum, so no point underflows. A 62,208-point grid costs a few
        milliseconds per estimator.
        """
        tables = [self._dimension_log_pdf(j, np.asarray(c, float)) for j, c in enumerate(columns)]
        sizes = [len(c) for c in columns]
        # Split where the leading block's size is closest to sqrt(points): two small factors.
        n_points = math.prod(sizes)
        leading = [math.prod(sizes[:p]) for p in range(len(sizes) + 1)]
        split = int(np.argmin([abs(math.log(m) - 0.5 * math.log(n_points)) for m in leading]))
        alpha = _cartesian_sum(tables[:split], self._log_w)
        beta = _cartesian_sum(tables[split:], np.zeros(self.n_kernels))
        m_beta = beta.max(axis=1)
        e_beta = np.exp(beta - m_beta[:, None])
        out = np.empty((len(alpha), len(beta)))
        rows = max(1, _BLOCK // max(len(beta), self.n_kernels))
        for start in range(0, len(alpha), rows):
            a = alpha[start : start + rows]
            m_a = a.max(axis=1)
            # In place in ``out``, in the order ``log(dens) + m_a + m_beta``: the same values,
            # without a temporary of the grid's size per step (fresh pages are costly).
            dens = np.matmul(np.exp(a - m_a[:, None]), e_beta.T, out=out[start : start + rows])
            with np.errstate(divide="ignore"):
                np.log(dens, out=dens)
            dens += m_a[:, None]
            dens += m_beta[None, :]
        return out.reshape(-1)

    def _dimension_log_pdf(self, j: int, values: np.ndarray) -> np.ndarray:
        """(len(values), n_kernels) log density of dimension ``j``; 0 where a value is NaN."""
        return _dimension_log_pdf(
            self._n_choices[j],
            self._cat_probs.get(j),
            self._mus[:, j],
            self._sigmas[:, j],
            self._log_z[:, j],
            values,
        )

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


class StackedSmoother:
    """:meth:`ParzenEstimator.smooth` of several estimators over one space at once.

    The estimators' observation kernels are stacked into one array, so predicting for many
    sources costs a few array operations instead of one pass per source.
    """

    def __init__(self, estimators: Sequence[ParzenEstimator], values: Sequence[np.ndarray]):
        n_choices = estimators[0]._n_choices if estimators else []
        d = len(n_choices)
        # Observation kernels only: every estimator's last kernel is its prior.
        self._set_kernels(
            n_choices,
            np.vstack([e._mus[:-1] for e in estimators]) if estimators else np.zeros((0, d)),
            np.vstack([e._sigmas[:-1] for e in estimators]) if estimators else np.zeros((0, d)),
            np.vstack([e._log_z[:-1] for e in estimators]) if estimators else np.zeros((0, d)),
            np.concatenate([e._log_w[:-1] for e in estimators]) if estimators else np.zeros(0),
            {
                j: np.vstack([e._cat_probs[j][:-1] for e in estimators])
                for j, c in enumerate(n_choices)
                if c > 0 and estimators
            },
            np.array([e.n_kernels - 1 for e in estimators], dtype=np.intp),
            values,
        )

    @classmethod
    def from_observations(
        cls,
        observations: Sequence[np.ndarray],
        n_choices: Sequence[int],
        values: Sequence[np.ndarray],
    ) -> StackedSmoother:
        """``StackedSmoother([ParzenEstimator(o, n_choices) for o in observations], values)``
        with equal kernels, computed for all estimators together: a thousand sources are a
        few array operations per dimension instead of a thousand estimators."""
        n_choices = list(n_choices)
        d = len(n_choices)
        sizes = np.array([len(o) for o in observations], dtype=np.intp)
        mus = (
            np.vstack([np.asarray(o, dtype=float).reshape(-1, d) for o in observations])
            if len(observations)
            else np.zeros((0, d))
        )
        # Each kernel's estimator has its observations plus the prior kernel, all of weight 1.
        n_kernels = np.repeat(sizes + 1, sizes).astype(float)
        log_w = np.log(1.0 / n_kernels + 1e-300)
        sigmas = np.ones_like(mus)
        cat_probs = {}
        for j, c in enumerate(n_choices):
            col = mus[:, j]
            seen = ~np.isnan(col)
            if c > 0:
                probs = np.repeat((1.0 / n_kernels)[:, None], c, axis=1)
                probs[np.flatnonzero(seen), col[seen].astype(int)] += 1.0
                probs[~seen] = 1.0
                cat_probs[j] = probs / probs.sum(axis=1, keepdims=True)
            else:
                sigmas[:, j] = _stacked_bandwidths(col, sizes, n_kernels)
        mus0 = np.nan_to_num(mus, nan=0.5)
        log_z = np.log(np.maximum(ndtr((1 - mus0) / sigmas) - ndtr(-mus0 / sigmas), _EPS))
        out = cls.__new__(cls)
        out._set_kernels(n_choices, mus, sigmas, log_z, log_w, cat_probs, sizes, values)
        return out

    def _set_kernels(
        self,
        n_choices: list[int],
        mus: np.ndarray,
        sigmas: np.ndarray,
        log_z: np.ndarray,
        log_w: np.ndarray,
        cat_probs: dict[int, np.ndarray],
        sizes: np.ndarray,
        values: Sequence[np.ndarray],
    ) -> None:
        self._n_choices = n_choices
        self._mus, self._sigmas, self._log_z, self._log_w = mus, sigmas, log_z, log_w
        self._cat_probs = cat_probs
        self._values = np.concatenate(values) if len(values) else np.zeros(0)
        # For many estimators, the per-kernel terms are tabulated once: a kernel centre that
        # is missing (uniform in that dimension) gets a zero term through mu = 0, 1/sigma = 0.
        # One contiguous row per dimension (dimension x kernel): a prediction reads every
        # kernel of a dimension at once, which a column of a kernel x dimension array would
        # gather with a stride. (Logarithms are taken before transposing: numpy may compute
        # them another way, to the last bit, on non-contiguous arrays.)
        missing = np.isnan(mus)
        self._mu0 = np.ascontiguousarray(np.where(missing, 0.0, mus).T)
        self._inv_sigma = np.ascontiguousarray(np.where(missing, 0.0, 1.0 / sigmas).T)
        self._norm = np.ascontiguousarray(
            np.where(missing, 0.0, -_LOG_SQRT_2PI - np.log(sigmas) - log_z).T
        )
        # (choice, kernel): a row per choice, gathered whole for each row of x.
        self._log_cat = {
            j: np.ascontiguousarray((np.log(p + _EPS) + np.log(n_choices[j])).T)
            for j, p in cat_probs.items()
        }
        self._stops = np.cumsum(sizes).astype(np.intp)
        self._starts = self._stops - sizes
        self._n = len(sizes)

    def smooth(self, x: np.ndarray, which: Sequence[int] | None = None) -> np.ndarray:
        """(m, len(which)): the :meth:`ParzenEstimator.smooth` of estimators ``which`` (all by
        default) at rows of ``x``."""
        x = np.asarray(x, dtype=float).reshape(-1, len(self._n_choices))
        index = np.arange(self._n) if which is None else np.asarray(which, dtype=np.intp)
        n_segments = len(index)
        out = np.empty((len(x), n_segments))
        if n_segments == 0 or len(x) == 0:
            return out
        starts, stops = self._starts[index], self._stops[index]
        kernels: np.ndarray | slice = (
            slice(None)
            if n_segments == self._n and np.array_equal(index, np.arange(self._n))
            else np.concatenate([np.arange(lo, hi) for lo, hi in zip(starts, stops)])
        )
        bounds = np.concatenate([[0], np.cumsum(stops - starts)])
        rows = max(1, _BLOCK // int(bounds[-1]))
        for start in range(0, len(x), rows):
            block = x[start : start + rows]
            if n_segments > _LOOP_SEGMENTS:
                logk = self._tabulated_log_kernels(block, kernels, int(bounds[-1]))
            else:
                # Summed in the order ParzenEstimator.smooth sums, so the results are equal.
                logk = np.zeros((len(block), int(bounds[-1])))
                for j, c in enumerate(self._n_choices):
                    cat = self._cat_probs.get(j)
                    logk += _dimension_log_pdf(
                        c,
                        None if cat is None else cat[kernels],
                        self._mus[kernels, j],
                        self._sigmas[kernels, j],
                        self._log_z[kernels, j],
                        block[:, j],
                    )
            logk += self._log_w[None, kernels]
            values = self._values[kernels]
            if n_segments <= _LOOP_SEGMENTS:
                # As ParzenEstimator.smooth computes it, so the results are equal bit for bit.
                for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
                    out[start : start + rows, i] = _kernel_average(
                        logk[:, lo:hi], values[lo:hi]
                    )
            else:
                # The same average per segment, summed in another order; in place, as these
                # arrays hold every kernel of every source.
                first = bounds[:-1]
                peak = np.maximum.reduceat(logk, first, axis=1)
                logk -= np.repeat(peak, np.diff(bounds), axis=1)
                k = np.exp(logk, out=logk)
                num = np.add.reduceat(np.multiply(k, values[None, :]), first, axis=1)
                out[start : start + rows] = num / np.add.reduceat(k, first, axis=1)
        return out

    def _tabulated_log_kernels(
        self, block: np.ndarray, kernels: np.ndarray | slice, n_kernels: int
    ) -> np.ndarray:
        """Sum over dimensions of each kernel's log density at each row of ``block``, from the
        tables built in ``__init__`` (equal to ``_dimension_log_pdf`` up to rounding)."""
        logk = np.zeros((len(block), n_kernels))
        buffer = np.empty_like(logk)
        for j, c in enumerate(self._n_choices):
            values = block[:, j]
            known = ~np.isnan(values)
            if not known.any():
                continue
            every = bool(known.all())
            values = values if every else values[known]
            term = buffer[: len(values)]
            if c > 0:
                term[:] = self._log_cat[j][values.astype(int)][:, kernels]
            else:
                # norm - ((x - mu) / sigma)^2 / 2, in place: these arrays hold every kernel.
                np.subtract(values[:, None], self._mu0[j, kernels], out=term)
                term *= self._inv_sigma[j, kernels]
                np.square(term, out=term)
                term *= 0.5
                np.subtract(self._norm[j, kernels], term, out=term)
            if every:
                logk += term
            else:
                logk[known] += term
        return logk


def _dimension_log_pdf(
    c: int,
    cat_probs: np.ndarray | None,
    mu: np.ndarray,
    sigma: np.ndarray,
    log_z: np.ndarray,
    values: np.ndarray,
) -> np.ndarray:
    """(len(values), n_kernels) log density of one dimension with ``c`` choices (0: numeric);
    0 where a value is NaN."""
    table = np.zeros((len(values), len(mu)))
    known = ~np.isnan(values)
    if not known.any():
        return table
    if c > 0:
        assert cat_probs is not None
        idx = values[known].astype(int)
        # + log(c) makes every dimension a density w.r.t. the uniform measure, so ratios
        # between estimators over different dimensions stay comparable.
        table[known] = (np.log(cat_probs[:, idx] + _EPS) + np.log(c)).T
    else:
        z = (values[known, None] - mu[None, :]) / sigma[None, :]
        comp = -0.5 * z**2 - _LOG_SQRT_2PI - np.log(sigma) - log_z
        # A missing kernel centre means uniform on [0, 1]: log density 0.
        table[known] = np.where(np.isnan(mu)[None, :], 0.0, comp)
    return table


def _kernel_average(logk: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row of kernel log-weights ``logk`` (m, n), the weighted mean of ``values`` (n,),
    scaled by each row's maximum so the nearest kernel never underflows."""
    peak = logk.max(axis=1, keepdims=True)
    k = np.exp(logk - peak)
    return np.asarray((k @ values) / k.sum(axis=1))


def _scaled_exp(logk: np.ndarray) -> None:
    """``exp(logk - peak)`` in place, per row of the C-contiguous ``logk`` with its maximum
    ``peak``: the kernel weights of :func:`_kernel_average`, equal to the last bit."""
    logk -= logk.max(axis=1, keepdims=True)
    flat = logk.reshape(-1)
    # exp is exactly 0 below _EXP_ZERO, and numpy's exp is slow on such arguments; on a grid,
    # most points are that far below their nearest kernel under most kernels. So exp runs on
    # the others only (NaN included) and the rest are set to its 0.
    live = np.flatnonzero(~(flat < _EXP_ZERO))
    terms = np.exp(flat[live])
    flat.fill(0.0)
    flat[live] = terms


def _cartesian_sum(
    tables: list[np.ndarray],
    base: np.ndarray,
    buffers: tuple[np.ndarray, np.ndarray] | None = None,
    into: np.ndarray | None = None,
) -> np.ndarray:
    """Rows ``base + sum_j tables[j][i_j]`` for every row of ``base`` (one row if 1-D) and
    every index tuple, in C order, summed left to right. ``buffers``: two flat arrays large
    enough for any step's sums but the last, written in turn instead of allocating them;
    ``into``: a C-contiguous array of the result's shape that takes it."""
    out = base.reshape(-1, base.shape[-1])
    for step, table in enumerate(tables):
        shape = (len(out), len(table), table.shape[1])
        if step == len(tables) - 1 and into is not None:
            dest: np.ndarray | None = into.reshape(shape)
        elif buffers is not None:
            dest = buffers[step % 2][: math.prod(shape)].reshape(shape)
        else:
            dest = None
        out = np.add(out[:, None, :], table[None, :, :], out=dest).reshape(-1, table.shape[1])
    if not tables and into is not None:
        into[...] = out
        return into
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


def _stacked_bandwidths(col: np.ndarray, sizes: np.ndarray, n_kernels: np.ndarray) -> np.ndarray:
    """:func:`_bandwidths` of each estimator's slice of ``col`` (consecutive slices of
    ``sizes`` rows; ``n_kernels`` per row, its estimator's), equal to it, in array operations
    over all estimators."""
    sigmas = np.ones_like(col)
    seen = np.flatnonzero(~np.isnan(col))
    if seen.size == 0:
        return sigmas
    values = col[seen]
    group = np.repeat(np.arange(len(sizes)), sizes)[seen]
    # Each estimator's values stay where they were (estimators are consecutive), sorted.
    order = np.lexsort((values, group))
    sorted_values, sorted_group = values[order], group[order]
    boundary = sorted_group[1:] != sorted_group[:-1]
    tied = ~boundary & (sorted_values[1:] == sorted_values[:-1])
    if tied.any():
        # Which of several equal values gets which gap is np.argsort's choice in _bandwidths:
        # those estimators are sorted exactly as it sorts them.
        edges = np.flatnonzero(np.concatenate([[True], boundary, [True]]))
        for k in np.unique(np.searchsorted(edges, np.flatnonzero(tied), side="right") - 1):
            lo, hi = edges[k], edges[k + 1]
            order[lo:hi] = lo + np.argsort(values[lo:hi])
        sorted_values = values[order]
    first = np.concatenate([[True], boundary])
    last = np.concatenate([boundary, [True]])
    below = np.where(first, 0.0, np.concatenate([[0.0], sorted_values[:-1]]))
    above = np.where(last, 1.0, np.concatenate([sorted_values[1:], [1.0]]))
    gaps = np.maximum(sorted_values - below, above - sorted_values)
    # Like Optuna's consider_endpoints=False: the outermost kernels look inward only (in an
    # estimator with two values or more).
    head = np.flatnonzero(first & ~last)
    gaps[head] = sorted_values[head + 1] - sorted_values[head]
    tail = np.flatnonzero(last & ~first)
    gaps[tail] = sorted_values[tail] - sorted_values[tail - 1]
    min_sigma = 1.0 / np.minimum(100.0, 1.0 + n_kernels[seen][order])
    out = np.empty_like(values)
    out[order] = np.clip(gaps, min_sigma, 1.0)
    sigmas[seen] = out
    return sigmas
