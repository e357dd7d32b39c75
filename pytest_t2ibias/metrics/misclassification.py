r"""Misclassification: how often a scorer is wrong, and what the true shares are given that.

Pure functions of counts (numpy only). A scorer card (:mod:`~pytest_t2ibias.metrics.scorer_card`) holds,
per attribute, a confusion matrix ``C[t, p]``: how many human-labelled audit images of true class ``t``
the scorer called ``p``. Its row-normalised form is the misclassification matrix
``M[t, p] = P(scorer says p | truth t)``. A run's predicted-label counts ``y`` have expectation
``n * pi @ M`` (``pi``: the true shares), under the assumption that errors are *non-differential*: the
chance of a misreading depends on the true class alone, not on the model or the seed.

**Correction** (:func:`correct_counts`): the maximum-likelihood ``pi`` on the simplex given ``y`` and ``M``
(multinomial likelihood of ``y``). Where the classical matrix-inversion (Rogan-Gladen) estimate ``pi = (y / n)
@ inv(M)`` lies inside the simplex it *is* the maximum-likelihood estimate, and we return it (closed form);
where it leaves the simplex (a share below 0, a noisy run near a corner) the maximum is on the boundary: for
two classes the nearer end of the segment (closed form: the likelihood is concave along it), for more we run
EM from a point inside, which stays on the simplex by construction and converges to the constrained maximum.
We chose EM over a Euclidean projection of the inversion because the projection is not the likelihood's answer
(it moves every share by the same amount) and does not handle a card whose predicted classes outnumber its
true ones (a scorer that can answer ``unknown`` when the humans never did).

.. math::
    \pi^{(k+1)}_t = \frac{\pi^{(k)}_t}{n} \sum_p M_{tp} \frac{y_p}{\sum_{t'} \pi^{(k)}_{t'} M_{t'p}}

**Presence** (:func:`rogan_gladen`): a term's true presence rate from its observed rate and the card's
sensitivity (recall) and specificity, ``(r + sp - 1) / (se + sp - 1)`` clipped to ``[0, 1]``.

**Intervals** (:func:`correction_draws`): a parametric bootstrap that carries both uncertainties: each
replicate resamples the run's counts (multinomial) *and* each row of the card (Dirichlet with Jeffreys'
half a pseudo-image per cell: a misreading never seen in 150 images is not taken as impossible), corrects
the pair, and the percentiles of the corrected values are the interval. Seeded: the same run and card give
the same interval.

Example:
    >>> import numpy as np
    >>> confusion = np.array([[98, 2], [10, 90]])  # rows: true male, true female
    >>> m = misclassification_matrix(confusion)[1]
    >>> observed = np.array([54.0, 46.0])  # 54 of 100 called male
    >>> correct_counts(observed, m).round(4).tolist()
    [[0.5, 0.5]]
    >>> float(rogan_gladen(0.54, 0.98, 0.90).round(4))
    0.5
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Jeffreys' prior per cell of a card row in the bootstrap.
ROW_PRIOR = 0.5
_EM_TOL = 1e-12
_EM_MAX_ITER = 20_000


def confusion_matrix(true: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> NDArray[np.int64]:
    """Counts ``C[t, p]`` of items whose true label is ``classes[t]`` and predicted ``classes[p]``.

    Raises:
        ValueError: the two label lists differ in length, or a label is not in ``classes``.

    Example:
        >>> confusion_matrix(["m", "m", "f"], ["m", "f", "f"], ["m", "f"]).tolist()
        [[1, 1], [0, 1]]
    """
    t, p = [str(x) for x in true], [str(x) for x in predicted]
    if len(t) != len(p):
        raise ValueError(f"`true` and `predicted` must have equal length, got {len(t)} and {len(p)}")
    index = {c: i for i, c in enumerate(classes)}
    stray = sorted({x for x in t + p if x not in index})
    if stray:
        raise ValueError(f"labels {stray[:5]} are not among `classes` {list(classes)}")
    out = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(out, ([index[x] for x in t], [index[x] for x in p]), 1)
    return out


def misclassification_matrix(confusion: ArrayLike) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """The true classes the card saw (rows with any count) and their rows normalised: ``M[t, p]``.

    A class no audit image truly had has no row: nothing is known of how it is read, and the correction
    gives it no share.
    """
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"`confusion` must be a square matrix, got shape {c.shape}")
    if (c < 0).any():
        raise ValueError("`confusion` has negative counts")
    rows = np.flatnonzero(c.sum(axis=1) > 0)
    if len(rows) == 0:
        raise ValueError("`confusion` has no counts")
    m = c[rows] / c[rows].sum(axis=1, keepdims=True)
    return rows, m


def project_to_simplex(v: ArrayLike) -> NDArray[np.float64]:
    """Euclidean projection of each row of ``v`` onto the probability simplex (sort-based, vectorised).

    Example:
        >>> project_to_simplex([[0.7, 0.5], [-0.2, 1.2]]).round(4).tolist()
        [[0.6, 0.4], [0.0, 1.0]]
    """
    x = np.atleast_2d(np.asarray(v, dtype=np.float64))
    k = x.shape[1]
    s = -np.sort(-x, axis=1)
    cum = np.cumsum(s, axis=1) - 1.0
    idx = np.arange(1, k + 1)
    cond = s - cum / idx > 0
    rho = k - 1 - np.argmax(cond[:, ::-1], axis=1)
    theta = cum[np.arange(len(x)), rho] / (rho + 1)
    out: NDArray[np.float64] = np.maximum(x - theta[:, None], 0.0)
    return out


def correct_counts(observed: ArrayLike, matrix: ArrayLike) -> NDArray[np.float64]:
    """True-class shares from predicted-label counts: maximum likelihood on the simplex (see module).

    Args:
        observed: (P,) or (B, P) predicted-label counts (one row per sample).
        matrix: (T, P) misclassification matrix, or (B, T, P), one per sample.

    Returns:
        (B, T) true-class shares, each row on the simplex (NaN for a sample without counts).
    """
    y = np.atleast_2d(np.asarray(observed, dtype=np.float64))
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 2:
        m = np.broadcast_to(m, (y.shape[0], *m.shape))
    if m.shape[0] != y.shape[0] or m.shape[2] != y.shape[1]:
        raise ValueError(f"`observed` {y.shape} and `matrix` {m.shape} do not fit: (B, P) and (B, T, P)")
    b, t, p = m.shape
    n = y.sum(axis=1)
    out = np.full((b, t), np.nan)
    ok = n > 0
    q = y[ok] / n[ok, None]
    start = np.full((int(ok.sum()), t), 1.0 / t)
    if t == p:
        # closed form first: inside the simplex the inversion is the maximum-likelihood estimate
        try:
            direct = np.linalg.solve(np.swapaxes(m[ok], 1, 2), q[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            direct = None
        if direct is not None:
            inside = np.all(direct >= 0, axis=1) & np.all(np.isfinite(direct), axis=1)
            rows = np.flatnonzero(ok)
            out[rows[inside]] = direct[inside] / direct[inside].sum(axis=1, keepdims=True)
            if t == 2:
                # two classes: the likelihood is concave along the segment and peaks at the inversion, so
                # outside it the maximum is the nearer end, exactly (EM crawls there: up to 20,000 steps)
                vertex = ~inside & np.all(np.isfinite(direct), axis=1)
                out[rows[vertex]] = np.where(direct[vertex] < 0, 0.0, 1.0)
                inside = inside | vertex
            # EM for the rest, started half-way between the projected inversion and the centre (EM never
            # leaves a zero, so the start must be strictly inside)
            rest = ~inside
            finite = np.where(np.isfinite(direct[rest]), direct[rest], 1.0 / t)
            start = 0.5 * project_to_simplex(finite) + 0.5 / t if rest.any() else start[:0]
            ok = ok.copy()
            ok[rows[inside]] = False
            q = q[rest]
    if ok.any():
        out[ok] = _em(q, m[ok], start)
    return out


def _em(q: NDArray[np.float64], m: NDArray[np.float64], pi: NDArray[np.float64]) -> NDArray[np.float64]:
    """EM iterations of the misclassification likelihood (observed shares ``q``), all samples at once."""
    active = np.ones(len(q), dtype=bool)
    for _ in range(_EM_MAX_ITER):
        if not active.any():
            break
        mq = np.einsum("bt,btp->bp", pi[active], m[active])
        ratio = np.divide(q[active], mq, out=np.zeros_like(mq), where=mq > 0)
        new = pi[active] * np.einsum("btp,bp->bt", m[active], ratio)
        new /= new.sum(axis=1, keepdims=True)
        moved = np.abs(new - pi[active]).max(axis=1)
        pi[active] = new
        idx = np.flatnonzero(active)
        active[idx[moved < _EM_TOL]] = False
    return pi


def rogan_gladen(rate: ArrayLike, sensitivity: ArrayLike, specificity: ArrayLike) -> NDArray[np.float64]:
    """True presence rate from an observed one: ``(rate + sp - 1) / (se + sp - 1)``, clipped to ``[0, 1]``.

    A scorer no better than chance (``se + sp <= 1``) tells nothing: NaN.
    """
    r, se, sp = (np.asarray(x, dtype=np.float64) for x in (rate, sensitivity, specificity))
    youden = se + sp - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(youden > 0, (r + sp - 1.0) / youden, np.nan)
    return np.clip(value, 0.0, 1.0)


def correction_gain(matrix: ArrayLike) -> float:
    """How far the correction can stretch a change of the observed shares: the largest change of a
    corrected share per unit of change moved between two observed labels (``max |A[p, j] - A[p', j]|``
    over A = the pseudo-inverse of the row-normalised (T, P) matrix). For two classes it is
    ``1 / (se + sp - 1)``: a scorer right 90% and 98% of the time stretches every change by 1/0.88.
    A perfect scorer gives 1.
    """
    inverse = np.linalg.pinv(np.asarray(matrix, dtype=np.float64))  # (P, T)
    spread = inverse.max(axis=0) - inverse.min(axis=0)
    return float(max(spread.max(), 1.0))


def term_rate_draws(
    true_positive: int,
    false_negative: int,
    true_negative: int,
    false_positive: int,
    n_draws: int,
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Draws of a term's (sensitivity, specificity) given its audit counts: Beta posteriors under
    Jeffreys' prior (half an image on each side), so the card's own uncertainty reaches the intervals."""
    sensitivity = rng.beta(true_positive + 0.5, false_negative + 0.5, size=n_draws)
    specificity = rng.beta(true_negative + 0.5, false_positive + 0.5, size=n_draws)
    return sensitivity, specificity


def cohens_kappa(confusion: ArrayLike) -> NDArray[np.float64]:
    r"""Cohen's kappa of a confusion matrix, or of each of a stack (..., K, K): agreement beyond chance.

    .. math::
        \kappa = \frac{p_o - p_e}{1 - p_e}, \quad p_o = \frac{\sum_k C_{kk}}{N}, \quad
        p_e = \sum_k \frac{C_{k\cdot} C_{\cdot k}}{N^2}

    Example:
        >>> float(cohens_kappa([[45, 5], [5, 45]]).round(4))
        0.8
    """
    c = np.asarray(confusion, dtype=np.float64)
    total = c.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        po = np.trace(c, axis1=-2, axis2=-1) / total
        pe = (c.sum(axis=-1) * c.sum(axis=-2)).sum(axis=-1) / total**2
        # perfect agreement on one class only (pe = 1): kappa is undefined; 1 when also po = 1
        return np.where(pe < 1, (po - pe) / (1 - pe), np.where(po == 1, 1.0, np.nan))


def kappa_draws(confusion: ArrayLike, n_draws: int, seed: int) -> NDArray[np.float64]:
    """Kappa of ``n_draws`` multinomial resamples of the audit images behind ``confusion`` (seeded)."""
    c = np.asarray(confusion, dtype=np.int64)
    total = int(c.sum())
    rng = np.random.default_rng([seed, zlib.crc32(b"kappa")])
    cells = rng.multinomial(total, c.ravel() / total, size=n_draws).reshape(n_draws, *c.shape)
    return cohens_kappa(cells)


def card_row_draws(confusion: ArrayLike, n_draws: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """(n_draws, T, P) misclassification matrices: each observed row drawn from Dirichlet(counts + 1/2)."""
    c = np.asarray(confusion, dtype=np.float64)
    rows, _ = misclassification_matrix(c)
    draws = np.empty((n_draws, len(rows), c.shape[1]))
    for i, r in enumerate(rows):
        draws[:, i, :] = rng.dirichlet(c[r] + ROW_PRIOR, size=n_draws)
    return draws


def correction_draws(
    observed: ArrayLike, confusion: ArrayLike, n_draws: int, seed: int, *, resample_run: bool = True
) -> NDArray[np.float64]:
    """Corrected true-class shares of ``n_draws`` parametric-bootstrap replicates (see the module).

    Args:
        observed: (P,) predicted-label counts of the run, or (n_draws, P) already-resampled counts (then
            ``resample_run`` is ignored: the caller resampled them, jointly with other statistics).
        confusion: the card's (K, K) confusion matrix (P = K).
        resample_run: draw the run's counts again (multinomial); False keeps them (card uncertainty only).

    Returns:
        (n_draws, T) shares over the card's observed true classes (:func:`misclassification_matrix`).
    """
    rng = np.random.default_rng([seed, zlib.crc32(b"misclassification")])
    y = np.asarray(observed, dtype=np.float64)
    if y.ndim == 1:
        total = round(float(y.sum()))
        if resample_run and total > 0:
            y = rng.multinomial(total, y / y.sum(), size=n_draws).astype(np.float64)
        else:
            y = np.broadcast_to(y, (n_draws, len(y)))
    return correct_counts(y, card_row_draws(confusion, n_draws, rng))


def percentile_interval(draws: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of the finite draws (NaN, NaN when none)."""
    x = np.asarray(draws, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(x, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)
