"""ADWIN's buckets and river's cut-point scan, shared by the two kernels (no I/O).

Bucket ``j`` of level ``k`` holds values ``[j 2**k, (j+1) 2**k)`` since the last reset and
lives in ring slot ``j & (R - 1)`` of ``tot`` / ``var`` / ``tend`` ``[feature, level, R]``;
every number is computed with river's floating-point operations in river's order.

>>> _shape(10, 5)       # river's live bucket ranges per level after 10 values, max_buckets=5
[(6, 10), (0, 3)]
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_MAX_LEVELS = 64
_POW2 = np.array([float(2**i) for i in range(_MAX_LEVELS)], dtype=np.float64)
_POW2INV = np.array([2.0**-i for i in range(_MAX_LEVELS)], dtype=np.float64)

# Named slots of the kernels' per-feature state (numba folds these module-level integers
# into the indices at compile time: no cost over literal numbers).
# A certificate (adwin.py: the high levels' group ``grp[f, :]``; the lockstep kernel: one
# per lane, ``C[:, lane]``), see _GROUP_NOTE in adwin.py: it says every cut it covers
# stays below river's bound while A dW + B |dT - mu dW| + (M - M0) < SLACK.
CERT_VALID = 0  # 0: none; 1: valid (lockstep: 2, valid but to be extended by newer cuts)
CERT_W = 1  # the width W0 it was made at
CERT_T = 2  # the total T0 then
CERT_M = 3  # the rounding margin M0 then
CERT_MU = 4  # the mean T0 / W0
CERT_A = 5
CERT_B = 6
CERT_SLACK = 7
CERT_WAKE = 8  # valid for W below this (a cut not yet testable becomes testable there)
CERT_NEWEST = 9  # (lockstep) the newest cut position it covers
CERT_SLOTS = 10
# A level's certificate in adwin.py (``cachef[f, k, :]``), see _FILTER_NOTE there: the
# level is safe while LEVEL_A dW + LEVEL_B |dT - mu dW| + (M - M0) < LEVEL_MARGIN
LEVEL_W = 0  # W0 at the level's last check
LEVEL_T = 1  # T0 then (mu = T0 / W0)
LEVEL_M = 2  # the rounding margin M0 then
LEVEL_MARGIN = 3  # the smallest margin to river's bound over its cuts (-1: none cached)
LEVEL_A = 4  # max |te - pp mu| over its cuts, padded
LEVEL_B = 5  # the largest cut position pp
LEVEL_WAKE = 6  # W at which a cut not yet testable becomes testable
DP_CACHE = 7  # delta_prime's cache: level 0 holds the W it was computed at, level 1 its value
LEVEL_SLOTS = 8
# The running width / total / variance / sum |x| of a window, in that order, in the
# kernels' per-feature (or per-lane) blocks
RUN_W = 0
RUN_T = 1
RUN_V = 2
RUN_A = 3


def _shape(n: int, max_buckets: int) -> list[tuple[int, int]]:
    """River's bucket shape after ``n`` inserts since a reset: ``[(lo_k, hi_k)]`` per level."""
    out = [(0, 0)] if n == 0 else []
    a = n
    while a > 0:
        g = max(0, (a - max_buckets + 1) // 2)
        out.append((2 * g, a))
        a = g
    return out


@nb.njit(cache=True, nogil=True, inline="always")
def _received(n, max_buckets, k):  # pragma: no cover - numba
    # a_k, the buckets level k has received after n values since the reset (closed form,
    # checked in docs/lab/kernels.md)
    return max(((n + max_buckets - 1) >> k) - max_buckets + 1, 0)


@nb.njit(cache=True, nogil=True, inline="always")
def _merged(a, max_buckets):  # pragma: no cover - numba
    # the pairs a level that received a buckets has merged away (= a_{k+1})
    g = a - max_buckets + 1
    return (g >> 1) if g > 0 else 0


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _live_ranges(n, max_buckets, lo, hi):  # pragma: no cover - numba
    # river's live buckets after n values since the reset: level k has received a_k buckets
    # (a_0 = n, _received) and merged g_k = a_{k+1} pairs away (_merged), so it holds
    # [lo[k], hi[k]) = [2 g_k, a_k); returns the number of levels (a level exists while a_k > 0).
    a = n
    nl = 0
    while a > 0:
        g = _merged(a, max_buckets)
        lo[nl] = 2 * g
        hi[nl] = a
        a = g
        nl += 1
    return nl


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _increment(w, t0, x):  # pragma: no cover - numba
    # river's insert_element: what the variance sum gains when x joins the w - 1 values that
    # sum to t0 (w the width with x), same operations in the same order
    dv = x - t0 / (w - 1.0)
    inc = (w - 1.0) * dv * dv / w
    return inc if w > 1.0 else 0.0


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _merge(t0, v0, t1, v1, inv, h):  # pragma: no cover - numba
    # river's merge of two buckets of 2**k values (inv = 2**-k, h = 2**k / 2), same order
    mu1 = t0 * inv
    mu2 = t1 * inv
    return t0 + t1, v0 + v1 + h * (mu1 - mu2) * (mu1 - mu2)


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _put(tot, var, tend, f, k, d, t, v, te):  # pragma: no cover - numba
    # a level-k bucket (total, variance, running total at its end) into ring slot d
    tot[f, k, d] = t
    var[f, k, d] = v
    tend[f, k, d] = te


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _last(tot, var, f, k, count, rmask):  # pragma: no cover - numba
    # the newest level-k bucket after ``count`` values (buckets are made as their last value
    # arrives); none yet: a stale slot, never merged with
    d = ((count >> k) - 1) & rmask
    return tot[f, k, d], var[f, k, d]


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _carry(tot, var, tend, f, j2, kk, te, rmask, pow2, pow2inv):  # pragma: no cover - numba
    # level-kk bucket j2 was just made: merge pairs on up (a binary counter: one merge per
    # value on average); te is the running total at the last value
    while j2 & 1:
        c0 = (j2 - 1) & rmask
        c1 = j2 & rmask
        d = (j2 >> 1) & rmask
        inv = pow2inv[kk]
        h = pow2[kk] * 0.5
        t0 = tot[f, kk, c0]
        t1 = tot[f, kk, c1]
        t, v = _merge(t0, var[f, kk, c0], t1, var[f, kk, c1], inv, h)  # t0 * 2**-k == t0 / 2**k
        _put(tot, var, tend, f, kk + 1, d, t, v, te)
        j2 >>= 1
        kk += 1


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _river_scan(
    tot, var, f, lo, hi, nl, W, T, V, min_window_length, delta, rmask, pow2, pow2inv
):  # pragma: no cover - numba
    """river's ``detect_change`` on the live buckets ``[lo[k], hi[k])`` of levels ``0..nl-1``,
    with its deletions (``lo`` is advanced in place): ``(change, width, total, variance)``."""
    change = False
    reduce_width = True
    while reduce_width:
        reduce_width = False
        delta_prime = math.log(2.0 * math.log(W) / delta)
        vw = V / W
        n0 = 0.0
        n1 = W
        u0 = 0.0
        u1 = T
        stop = False
        for idx in range(nl - 1, -1, -1):
            bs = pow2[idx]
            c = hi[idx] - lo[idx]
            for kk in range(c):
                t = tot[f, idx, (lo[idx] + kk) & rmask]
                n0 += bs
                n1 -= bs
                u0 += t
                u1 -= t
                if idx == 0 and kk == c - 1:
                    stop = True
                    break
                if n1 >= min_window_length and n0 >= min_window_length:
                    delta_mean = (u0 / n0) - (u1 / n1)
                    m_recip = 1.0 / (n0 - min_window_length + 1.0) + 1.0 / (n1 - min_window_length + 1.0)
                    epsilon = math.sqrt(2.0 * m_recip * vw * delta_prime) + 2.0 / 3.0 * delta_prime * m_recip
                    if abs(delta_mean) > epsilon:
                        reduce_width = True
                        change = True
                        if W > 0.0:
                            # delete_element: drop the oldest bucket
                            last = nl - 1
                            nn = pow2[last]
                            cu = 0.0
                            cv = 0.0
                            has = hi[last] > lo[last]
                            if has:
                                q = lo[last] & rmask
                                cu = tot[f, last, q]
                                cv = var[f, last, q] if last > 0 else 0.0
                            mu = cu * pow2inv[last]
                            W = W - nn
                            T = T - cu
                            mu_window = T / W
                            V -= cv + nn * W * (mu - mu_window) * (mu - mu_window) / (nn + W)
                            if has:
                                lo[last] += 1
                            if hi[last] == lo[last] and last > 0:
                                nl = last
                        stop = True
                        break
            if stop:
                break
    return change, W, T, V
