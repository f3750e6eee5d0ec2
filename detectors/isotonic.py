"""Isotonic calibration of classifier scores (pool-adjacent-violators), and when to use it.

:func:`fit_isotonic` is scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` in
numpy + numba: the same duplicate merging, the same PAV fit, the same trimmed thresholds,
and :func:`apply_isotonic` the same clipped linear interpolation. :func:`needs_calibration`
is NannyML's rule (``nannyml/calibration.py``): calibrate only when an isotonic map fitted
on 90 % of the reference lowers the expected calibration error (ECE, 10 equal-count bins)
on the other 10 %, pooled over 10 stratified shuffle splits. Fit time only; no I/O.

>>> x_thr, y_thr = fit_isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 0.0, 1.0]))
>>> x_thr.tolist(), y_thr.tolist()
([0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.5, 1.0])
>>> apply_isotonic(x_thr, y_thr, np.array([0.0, 0.25, 0.9])).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: NannyML's needs_calibration parameters: ECE bins, shuffle splits, held-out share, seed.
ECE_BINS = 10
SPLITS = 10
TEST_SHARE = 0.1
SEED = 42
#: Scores ranking this well (ROC AUC) are left as they are (NannyML's rule).
NEAR_PERFECT_AUC = 0.999


@nb.njit(cache=True, nogil=True)
def _pav(y: np.ndarray, w: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Weighted least-squares non-decreasing fit of ``y`` (pool adjacent violators)."""
    n = y.shape[0]
    value = np.empty(n)
    weight = np.empty(n)
    end = np.empty(n, dtype=np.int64)
    blocks = 0
    for i in range(n):
        value[blocks] = y[i]
        weight[blocks] = w[i]
        end[blocks] = i + 1
        blocks += 1
        while blocks > 1 and value[blocks - 2] > value[blocks - 1]:
            total = weight[blocks - 2] + weight[blocks - 1]
            value[blocks - 2] = (
                value[blocks - 2] * weight[blocks - 2] + value[blocks - 1] * weight[blocks - 1]
            ) / total
            weight[blocks - 2] = total
            end[blocks - 2] = end[blocks - 1]
            blocks -= 1
    out = np.empty(n)
    start = 0
    for b in range(blocks):
        for i in range(start, end[b]):
            out[i] = value[b]
        start = end[b]
    return out


def _merge_duplicates(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted ``x`` -> unique x (within float resolution), mean y, counts (sklearn's ``_make_unique``)."""
    eps = np.finfo(np.float64).resolution
    # sklearn starts a new group when x - (first x of the group) >= eps; with sorted x
    # that is the same as a gap >= eps from the group's first value, found sequentially.
    step = np.diff(x)
    gaps = np.flatnonzero(step > 0) + 1  # candidate group starts
    if np.all(step[gaps - 1] >= eps):  # the usual case: every distinct value starts a group
        idx = np.r_[0, gaps].astype(np.int64)
    else:
        starts = [0]
        first = x[0]
        for j in gaps:
            if x[j] - first >= eps:
                starts.append(int(j))
                first = x[j]
        idx = np.asarray(starts, dtype=np.int64)
    counts = np.diff(np.append(idx, x.shape[0])).astype(np.float64)
    sums = np.add.reduceat(y, idx)
    return x[idx], sums / counts, counts


def fit_isotonic(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit a non-decreasing map ``score -> P(target = 1)``; returns its thresholds ``(x, y)``.

    The thresholds equal scikit-learn's ``X_thresholds_`` / ``y_thresholds_`` (to float
    rounding): rows sorted by (score, target), equal scores merged into their mean target,
    PAV, then interior points with the same y as both neighbours dropped.
    """
    x = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(targets, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"isotonic fit needs equal, non-empty scores and targets (got {x.size} and {y.size})")
    order = np.lexsort((y, x))
    ux, uy, uw = _merge_duplicates(x[order], y[order])
    fitted = _pav(uy, uw)
    keep = np.ones(fitted.shape[0], dtype=bool)
    keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    return ux[keep], fitted[keep]


def apply_isotonic(x_thresholds: np.ndarray, y_thresholds: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Calibrated probabilities: clipped linear interpolation through the thresholds."""
    xt = np.asarray(x_thresholds, dtype=np.float64)
    yt = np.asarray(y_thresholds, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if xt.shape[0] == 1:
        return np.full(s.shape, yt[0])
    return np.interp(s, xt, yt)  # np.interp is constant outside [xt[0], xt[-1]]: the clip


def expected_calibration_error(targets: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE over equal-count bins of the sorted probabilities (NannyML's bin edges).

    >>> expected_calibration_error(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5]), bins=2)
    0.0
    """
    p = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    n = p.shape[0]
    if n <= 2 * bins:
        bins = n // 2
        if bins < 2:
            raise ValueError(f"{n} rows cannot be split into 2 calibration bins")
    width = n // bins
    edges = np.arange(0, n + 1, width)
    edges[-1] = n
    order = np.argsort(p, kind="stable")
    p, t = p[order], t[order]
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        total += (hi - lo) / n * abs(float(p[lo:hi].mean()) - float(t[lo:hi].mean()))
    return float(total)


def exact_roc_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC from average ranks (ties count one half); NaN when one class is absent.

    >>> exact_roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    t = np.asarray(targets).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(t.sum())
    n_neg = t.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    first = np.r_[True, sorted_s[1:] != sorted_s[:-1]]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], s.shape[0]]
    avg_rank = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(s.shape[0])
    ranks[order] = avg_rank[group]
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _stratified_splits(targets: np.ndarray, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """``SPLITS`` (train, test) index pairs, each class split ``TEST_SHARE`` held out."""
    by_class = [np.flatnonzero(targets == c) for c in np.unique(targets)]
    out = []
    for _ in range(SPLITS):
        train, test = [], []
        for idx in by_class:
            perm = rng.permutation(idx)
            n_test = min(max(1, round(TEST_SHARE * idx.shape[0])), idx.shape[0] - 1) if idx.shape[0] > 1 else 0
            test.append(perm[:n_test])
            train.append(perm[n_test:])
        out.append((np.concatenate(train), np.concatenate(test)))
    return out


def needs_calibration(scores: np.ndarray, targets: np.ndarray, seed: int = SEED) -> bool:
    """Does an isotonic map lower the held-out ECE of these scores? (NannyML's rule.)

    False when the targets have one class or the scores already rank near perfectly.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    if np.unique(t).shape[0] < 2 or exact_roc_auc(t, s) > NEAR_PERFECT_AUC:
        return False
    truth, before, after = [], [], []
    for train, test in _stratified_splits(t, np.random.default_rng(seed)):
        xt, yt = fit_isotonic(s[train], t[train])
        truth.append(t[test])
        before.append(s[test])
        after.append(apply_isotonic(xt, yt, s[test]))
    y_all = np.concatenate(truth)
    return expected_calibration_error(y_all, np.concatenate(before)) > expected_calibration_error(
        y_all, np.concatenate(after)
    )
