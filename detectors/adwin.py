"""ADWIN (ADaptive WINdowing), one numba call per batch for all features, exact to river.

ADWIN keeps a variable-length window of recent values, summarised in exponential
buckets (level ``i`` holds up to ``max_buckets`` summaries of ``2**i`` values). Every
``clock`` values it checks every split of the window into an older part W0 and a newer
part W1; when their means differ by more than the Hoeffding-style bound epsilon_cut it
drops the oldest bucket(s) and signals drift (Bifet & Gavaldà, 2007). Parameters are
river's ``drift.ADWIN`` names and defaults.

Exactness: every number river's ``AdaptiveWindowing`` computes (river 0.26,
``rust_src/adwin.rs``, itself a port of ``adwin_c.pyx``) is computed here with the same
floating-point operations in the same order, so windows, variances and detections are
bit-identical. Like river's wrapper, a detector is reset completely on the update
*after* a detection. What differs is the bookkeeping:

* Between two resets ADWIN never deletes, so the window holds every value since the
  reset and its bucket *shape* is a function of the count ``n`` alone: level ``k`` has
  received ``a_k`` buckets (``a_0 = n``) and merged ``m_k = max(0, (a_k - mb + 1) // 2)``
  pairs away (``a_{k+1} = m_k``); its live buckets are the ``a_k - 2 m_k`` newest. The
  ``j``-th level-``k`` bucket always covers values ``[j 2^k, (j+1) 2^k)`` and is the merge
  of level-``k-1`` buckets ``2j`` and ``2j+1``. So every bucket is made as soon as its last
  value arrives (a binary counter: one merge per value on average), it lives in a
  per-level ring indexed by ``j`` (``2 max_buckets - 1`` slots hold river's live buckets and
  the early ones), and nothing shifts. River's live range of each level is computed from
  ``n`` at each scan.
* Width, total and variance follow a per-value recurrence independent of the buckets: a
  first pass computes it for a chunk of 32 features at once (features innermost, on
  in-kernel blocks of constant stride, so the CPU vectorises the two divisions per value);
  a detection (rare) recomputes its feature's tail.
* Divisions by a bucket size (a power of two) are multiplications by its exact inverse,
  which IEEE-754 makes bit-identical.
* A cut-point scan first runs a division-free *sound* filter (see ``_FILTER_NOTE``) on
  each bucket's running total; only when some cut could pass river's test does river's
  exact scan (and its deletions) run. The filter's margins are orders of magnitude above
  the rounding errors it covers: it may say "maybe" needlessly (costing time), never
  "no" wrongly. ``ADWIN(..., use_filter=False)`` runs the exact scan every time.

>>> import numpy as np
>>> from detectors import ADWIN
>>> rng = np.random.default_rng(0)
>>> X = np.r_[rng.normal(0, 1, 500), rng.normal(4, 1, 500)].reshape(-1, 1)
>>> d = ADWIN(n_features=1)
>>> d.update(X)[:, 0].tolist()        # rows where river's ADWIN fires, too
[511]
>>> float(d.width[0]) < 500
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from driftsentinel.detectors._adwin_buckets import (
    _MAX_LEVELS,
    _POW2,
    _POW2INV,
    CERT_A,
    CERT_B,
    CERT_M,
    CERT_MU,
    CERT_SLACK,
    CERT_SLOTS,
    CERT_T,
    CERT_VALID,
    CERT_W,
    CERT_WAKE,
    DP_CACHE,
    LEVEL_A,
    LEVEL_B,
    LEVEL_M,
    LEVEL_MARGIN,
    LEVEL_SLOTS,
    LEVEL_T,
    LEVEL_W,
    LEVEL_WAKE,
    RUN_A,
    RUN_T,
    RUN_V,
    RUN_W,
    _carry,
    _increment,
    _last,
    _live_ranges,
    _merge,
    _put,
    _river_scan,
    _shape,
)
from driftsentinel.detectors._adwin_lockstep import MAX_BUCKETS as LOCKSTEP_MAX_BUCKETS
from driftsentinel.detectors._adwin_lockstep import SEG, lockstep_kernel, lockstep_plan, plan_rows, work_size
from driftsentinel.detectors._hits import collect_hits, feature_indices
from driftsentinel.detectors._state import STATE_VERSION, as_array, as_matrix, check_kind, per_feature, to_builtin
from driftsentinel.schemas.config import RIVER_ADWIN as _D

__all__ = ["ADWIN"]

# river's drift.ADWIN() defaults, defined once in the config schema; a feature added later
# without a construction-time scalar gets these
_PARAMS = ("delta", "clock", "max_buckets", "min_window_length", "grace_period")
_DEFAULTS: dict[str, Any] = {name: getattr(_D, name) for name in _PARAMS}
# river's parameter name -> (the per-feature array attribute, its dtype)
_ARRAYS: dict[str, tuple[str, Any]] = {
    "delta": ("_delta", np.float64),
    "clock": ("_clock", np.int64),
    "max_buckets": ("_mb", np.int64),
    "min_window_length": ("_mwl", np.float64),
    "grace_period": ("_grace", np.float64),
}
_TILE = 128  # rows per pass-1 / pass-2 round: per-row results stay in L1/L2
_CHUNK = 32  # features per pass-1 block (the block's row stride is a compile-time constant)
# A cut's old-part total ("te", the running total at its bucket's end) is read, for the
# levels below this, from a ring of the running totals after each recent value (one store
# per value); higher levels keep it with the bucket (stored when the bucket is made, rare)
_HIST_LEVELS = 3
# The lockstep kernel saves about 3 ns per value but costs about 15 us per call (a plan, and
# the general kernel on masked copies of the rows before and after whole segments) plus
# about 1 us per feature that went through the general kernel since (a fresh certificate):
# it takes a batch of rows x F values when rows x F >= a + b F (measured crossover with
# random batch sizes; at 20 features, 775 rows)
LOCKSTEP_MIN_CELLS = (6500, 450)


def _ring_size(max_buckets: int) -> int:
    # A level's ring holds river's live buckets of that level plus the ones made early
    # (before river merges them): at most 2 max_buckets - 1 consecutive indices (checked
    # for every count up to 2**15 and max_buckets 1..33 in the tests).
    need = 2 * int(max_buckets) + 1
    return 1 << (need - 1).bit_length()


def _hist_size(max_buckets: int) -> int:
    # the running total after each of the last P values (P a power of two): it must reach
    # back over every live bucket of the levels below _HIST_LEVELS, at most
    # (max_buckets + 1) (1 + 2 + ... + 2**(_HIST_LEVELS - 1)) values
    need = (int(max_buckets) + 1) * (2**_HIST_LEVELS) + 8
    return 1 << (need - 1).bit_length()


def _check_integers(name: str, value: Any) -> None:
    # river's ADWIN takes integers here (a float raises TypeError there); casting 2.5 to 2
    # or comparing with 2.5 would silently differ from river, so refuse it
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer)
        or (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))
    ):
        raise ValueError(f"{name} must be an integer (as in river's ADWIN), got {value!r}")


def _check_values(name: str, arr: np.ndarray) -> None:
    # river's ranges: a window needs clock, max_buckets >= 1; delta > 0 (river takes its log)
    lowest = {"delta": 0.0, "clock": 1, "max_buckets": 1, "min_window_length": 0, "grace_period": 0}[name]
    ok = np.all(arr > lowest) if name == "delta" else np.all(arr >= lowest)
    if not (ok and np.all(np.isfinite(arr))):
        op = ">" if name == "delta" else ">="
        raise ValueError(f"{name} must be a finite number {op} {lowest}, got {arr.tolist()!r}")


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _group_add(cachef, f, k, mu0, grow, gA, gB, gS, gW):  # pragma: no cover - numba
    # fold level k's certificate (its growth ``grow`` since it was cached) into the group's
    # A, B, min slack and wake-up width; see _GROUP_NOTE
    mu = cachef[f, k, LEVEL_T] / cachef[f, k, LEVEL_W]
    b = cachef[f, k, LEVEL_B]
    return (
        max(gA, cachef[f, k, LEVEL_A] + b * (abs(mu0 - mu) + 1e-12 * (abs(mu) + abs(mu0)))),
        max(gB, b * (1.0 + 1e-12)),
        min(gS, cachef[f, k, LEVEL_MARGIN] * (1.0 - 1e-12) - grow),
        min(gW, cachef[f, k, LEVEL_WAKE]),
    )


# Few, big kernels on purpose: in numba, a call that passes arrays pays atomic
# reference-count updates per array (~100 ns here), more than the work for one value, so
# calls happen once per chunk of features (and array views are avoided inside); the
# helpers below are inlined into _chunk (numba's inline="always", measured free).
@nb.njit(cache=True, error_model="numpy", nogil=True)
def _adwin_kernel(X, params, state, rings, caches, lo, hi, flags, cut, use_filter):  # pragma: no cover - numba
    """All rows of batch ``X`` for every feature. ``params``: the per-feature arrays
    (delta, clock, max_buckets, min_window_length, grace_period); ``state``: (count since
    the reset, width, total, variance, sum |x|, reset due, detections); ``rings``: (tot,
    var, tend, hist); ``caches``: (cachef, cachea, grp); ``lo`` / ``hi`` scratch per level;
    ``flags`` a zeroed scratch [rows, F] (only the cells of hits are written, and read
    back); ``cut`` a scratch [2, rows, F] that gets, at each hit's cell, the width and total
    of river's window after its deletions (the sub-window after the cut). Returns the hits
    as (row, feature) pairs in stream order."""
    rows, F = X.shape
    row_hits = np.zeros(rows, np.int64)
    n_hits = 0
    for c0 in range(0, F, _CHUNK):
        nf = min(_CHUNK, F - c0)
        n_hits += _chunk(X, c0, nf, params, state, rings, caches, lo, hi, flags, cut, row_hits, use_filter)
    return collect_hits(flags, row_hits, rows, F, n_hits)


@nb.njit(cache=True, error_model="numpy", nogil=True)
def _chunk(
    X, fc0, nf, params, state, rings, caches, lo, hi, flags, cut, row_hits, use_filter
):  # pragma: no cover - numba
    # features [fc0, fc0 + nf) over all rows, a tile of _TILE rows at a time: pass 1 for the
    # chunk (features innermost), then pass 2 feature by feature. State and per-row results
    # live in in-kernel blocks of constant row stride (S: a feature's running width / total /
    # variance / sum |x| and its values in the tile; RB: running total / variance / sum |x|
    # per row): with few distinct arrays LLVM's run-time alias checks are cheap and it
    # vectorises the feature loop for few features. Tiles keep RB in cache for pass 2.
    # The argument tuples are unpacked here once: unpacked in the inlined helpers, they cost
    # reference-count updates in the loops (measured 2x slower)
    deltas, clocks, max_bucketss, min_window_lengths, grace_periods = params
    nins, Wa, Ta, Va, Aa, pending, n_det = state
    tot, var, tend, hist = rings
    cachef, cachea, grp = caches
    rows = X.shape[0]
    S = np.empty((5, _CHUNK))
    RB = np.empty((3, _TILE, _CHUNK))
    n_hits = 0
    for r0 in range(0, rows, _TILE):
        r1 = min(rows, r0 + _TILE)
        _pass1(X, fc0, nf, r0, r1, pending, Wa, Ta, Va, Aa, S, RB)
        # ---- pass 2, feature by feature: buckets (merge replay) and cut-point scans
        for jf in range(nf):
            f = fc0 + jf
            delta = deltas[f]
            clock = clocks[f]
            max_buckets = max_bucketss[f]
            min_window_length = min_window_lengths[f]
            grace_period = grace_periods[f]
            kg = 1  # the lowest level of the group certificate: changes at most every 8th scan
            while (1 << kg) < 8 * clock:
                kg += 1
            # n0 >= min_window_length <=> n0 >= min_window_int (n0 an integer)
            min_window_int = int(math.ceil(min_window_length)) if min_window_length >= 1.0 else 1
            filt = use_filter and min_window_length >= 1.0
            n = nins[f]
            pend = pending[f]
            next_scan = (n // clock + 1) * clock
            qrow = _qrow(X, f, r0, r1, S[_SEEN, jf], 3 * max_buckets)
            rmask = tot.shape[2] - 1
            pmask = hist.shape[1] - 1
            i = r0
            while True:
                if pend:  # river resets on the update after a detection
                    while i < r1 and X[i, f] != X[i, f]:
                        i += 1
                    if i == r1:
                        break
                    pend = False
                    n = 0
                    next_scan = clock
                    for k in range(cachea.shape[1]):
                        cachea[f, k] = -1
                    grp[f, CERT_VALID] = 0.0
                i, n = _insert(X, f, jf, r0, r1, i, n, next_scan, qrow, max_buckets, RB, tot, var, tend, hist)
                if n != next_scan:  # the tile ended first
                    break
                next_scan += clock
                W = float(n)
                if not W > grace_period:
                    if i == r1:
                        break
                    continue
                i -= 1  # the row of the value just inserted
                # ---- detect_change at this value: live bucket ranges from the shape
                Tc = RB[_RB_T, i - r0, jf]
                Vc = RB[_RB_V, i - r0, jf]
                nl = _live_ranges(n, max_buckets, lo, hi)  # river's live buckets per level
                # ---- the sound pre-check of every cut (_FILTER_NOTE): levels whose buckets did
                # not change keep certificates (cachef), the levels from kg up one for all of
                # them (grp, _GROUP_NOTE). Written out here: as an inline helper (same code,
                # early returns for "maybe") it made the general kernel 2x slower (measured).
                maybe = True
                if filt:
                    # a lower bound of delta_prime is enough here (the bound grows with it), so
                    # it is recomputed only when the window has grown by a quarter
                    if not (W >= cachef[f, 0, DP_CACHE] and W <= 1.25 * cachef[f, 0, DP_CACHE]):
                        cachef[f, 0, DP_CACHE] = W
                        cachef[f, 1, DP_CACHE] = math.log(2.0 * math.log(W) / delta)
                    dp = cachef[f, 1, DP_CACHE]
                    B = (2.0 / 3.0) * dp * W
                    AW = 2.0 * (Vc / W) * dp * W
                    if dp > 0.0 and math.isfinite(B) and math.isfinite(AW) and AW >= 0.0:
                        maybe = False
                        Bm = B * (1.0 - 1e-9)
                        AWm = AW * (1.0 - 1e-9)
                        Sabs = RB[_RB_A, i - r0, jf] + abs(Tc)
                        M = (1e-12 + 1e-15 * W) * Sabs * W + 1e-300
                        MB = M - Bm
                        # the levels from kg up change rarely: one certificate for all of them
                        # (see _GROUP_NOTE); their buckets are unchanged while level kg's are
                        kend = nl
                        mu0 = Tc / W
                        if grp[f, CERT_VALID] != 0.0 and kg < nl and cachea[f, kg] == hi[kg] and W < grp[f, CERT_WAKE]:
                            dWg = W - grp[f, CERT_W]
                            dTg = Tc - grp[f, CERT_T]
                            mug = grp[f, CERT_MU]
                            Eg = abs(dTg - mug * dWg)
                            lhs = (
                                grp[f, CERT_A] * dWg
                                + grp[f, CERT_B] * (Eg + 1e-12 * (abs(dTg) + abs(mug) * dWg))
                                + (M - grp[f, CERT_M])
                            )
                            if lhs < grp[f, CERT_SLACK]:
                                kend = kg
                        gok = kend == nl and kg < nl  # this scan visits them all: it can form one
                        if kend == nl:
                            # invalid from here on: the loop below may record a new bucket of a
                            # group level in cachea and then stop early (an exact scan follows)
                            grp[f, CERT_VALID] = 0.0
                        gA = 0.0
                        gB = 0.0
                        gS = np.inf
                        gW = np.inf
                        for k in range(kend):
                            stable = cachea[f, k] == hi[k]
                            if stable and W < cachef[f, k, LEVEL_WAKE] and cachef[f, k, LEVEL_MARGIN] > 0.0:
                                # no bucket added since this level was last checked and the bound
                                # only grows: it stays safe while |D| + M cannot have caught up.
                                # D = te W - T pp moves by te dW - pp dT
                                #   = (te - pp mu) dW - pp (dT - mu dW)   (mu: the mean then),
                                # so a stream whose mean stays put barely moves D, whatever mu is
                                dW = W - cachef[f, k, LEVEL_W]
                                dT = Tc - cachef[f, k, LEVEL_T]
                                mu = cachef[f, k, LEVEL_T] / cachef[f, k, LEVEL_W]
                                grow = (
                                    cachef[f, k, LEVEL_A] * dW
                                    + cachef[f, k, LEVEL_B] * (abs(dT - mu * dW) + 1e-12 * (abs(dT) + abs(mu) * dW))
                                    + (M - cachef[f, k, LEVEL_M])
                                )
                                if grow < cachef[f, k, LEVEL_MARGIN] * (1.0 - 1e-12):
                                    if gok and k >= kg:
                                        gA, gB, gS, gW = _group_add(cachef, f, k, mu0, grow, gA, gB, gS, gW)
                                    continue
                            bs = _POW2[k]
                            # only cuts with n0, n1 >= min_window_length can fire: j in [j0, min(j1, jmax))
                            j0 = max(lo[k], ((min_window_int + (1 << k) - 1) >> k) - 1)  # (j+1) 2^k >= min_window_int
                            j1 = hi[k]
                            jmax = (n - min_window_int) >> k  # (j+1) 2^k <= n - min_window_int: n1 long enough
                            if not stable:
                                cachea[f, k] = hi[k]
                                cachef[f, k, LEVEL_MARGIN] = -1.0  # no bound cached yet
                                if (1 << k) <= clock:
                                    # a level that changes at every scan (the low ones, all below kg):
                                    # cheap test of its testable cuts, no certificate
                                    hit = False
                                    for j in range(j0, min(j1, jmax)):
                                        pp = (j + 1) * bs
                                        te = (
                                            hist[f, (((j + 1) << k) - 1) & pmask]
                                            if k < _HIST_LEVELS
                                            else tend[f, k, j & rmask]
                                        )
                                        g = abs(te * W - Tc * pp) + MB
                                        hit |= ((g > 0.0) & (g * g >= AWm * pp * (W - pp))) | (g != g)
                                    if hit:
                                        maybe = True
                                        break
                                    continue
                            wake = np.inf
                            if jmax < j1:
                                jw = jmax if jmax > j0 else j0
                                if jw < j1:
                                    wake = (jw + 1) * bs + min_window_length  # W at which that cut becomes testable
                                j1 = jmax
                            # a level unchanged since the last scan, or one that changes less often than
                            # every scan: cache its smallest margin to the bound (its certificate)
                            margin = np.inf
                            dmax = 0.0
                            pmax = 0.0
                            for j in range(j0, j1):
                                pp = (j + 1) * bs
                                te = (
                                    hist[f, (((j + 1) << k) - 1) & pmask] if k < _HIST_LEVELS else tend[f, k, j & rmask]
                                )
                                dj = abs(te * W - Tc * pp)
                                mj = math.sqrt(AWm * pp * (W - pp)) - dj - MB
                                if not (mj > 0.0):  # also NaN
                                    maybe = True
                                    break
                                if mj < margin:
                                    margin = mj
                                if dj > dmax:
                                    dmax = dj
                                if pp > pmax:
                                    pmax = pp
                            if maybe:
                                break
                            cachef[f, k, LEVEL_W] = W
                            cachef[f, k, LEVEL_T] = Tc
                            cachef[f, k, LEVEL_M] = M
                            cachef[f, k, LEVEL_MARGIN] = margin
                            # max |te - pp mu| = max |D| / W, plus rounding slack (of D's terms,
                            # <= (S + |T|) W, and of mu)
                            cachef[f, k, LEVEL_A] = dmax / W * (1.0 + 1e-12) + 1e-12 * (Sabs + pmax * abs(Tc / W))
                            cachef[f, k, LEVEL_B] = pmax
                            cachef[f, k, LEVEL_WAKE] = wake
                            if gok and k >= kg:  # its own certificate, fresh: grow = 0
                                gA, gB, gS, gW = _group_add(cachef, f, k, mu0, 0.0, gA, gB, gS, gW)
                        if not maybe and gok:
                            grp[f, CERT_VALID] = 1.0
                            grp[f, CERT_W] = W
                            grp[f, CERT_T] = Tc
                            grp[f, CERT_M] = M
                            grp[f, CERT_MU] = mu0
                            grp[f, CERT_A] = gA * (1.0 + 1e-9)
                            grp[f, CERT_B] = gB * (1.0 + 1e-9)
                            grp[f, CERT_SLACK] = gS * (1.0 - 1e-9)
                            grp[f, CERT_WAKE] = gW
                change = False
                Wx = Tx = Vx = 0.0
                if maybe:  # river's exact scan, with its deletions (on local copies of the ranges)
                    change, Wx, Tx, Vx = _river_scan(
                        tot, var, f, lo, hi, nl, W, Tc, Vc, min_window_length, delta, tot.shape[2] - 1, _POW2, _POW2INV
                    )
                if change:
                    pend = True
                    n_det[f] += 1
                    flags[i, f] = True
                    cut[0, i, f] = Wx  # the sub-window after the cut: its length and total
                    cut[1, i, f] = Tx
                    row_hits[i] += 1
                    n_hits += 1
                    Wa[f], Ta[f], Va[f], Aa[f] = _redo_tail(X, f, jf, i, r0, r1, RB, Wx, Tx, Vx)
                i += 1
                if i == r1:
                    break
            nins[f] = n
            pending[f] = pend
    return n_hits


_SEEN = 4  # S's row: the values a feature received in the tile
_RB_T = 0  # RB's rows: running total, variance, sum |x| after each row of the tile
_RB_V = 1
_RB_A = 2


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _pass1(X, fc0, nf, r0, r1, pending, Wa, Ta, Va, Aa, S, RB):  # pragma: no cover - numba
    # width / total / variance (river's insert_element arithmetic) and sum |x| after each row
    # of [r0, r1), features innermost so the divisions vectorise; it assumes no detection in
    # the tile (pass 2 redoes a feature's tail after one). A feature due for river's reset
    # starts from zero (rows before its next value are missing for it, so they leave that
    # zero state alone).
    for j in range(nf):
        f = fc0 + j
        p = pending[f]
        S[RUN_W, j] = 0.0 if p else Wa[f]
        S[RUN_T, j] = 0.0 if p else Ta[f]
        S[RUN_V, j] = 0.0 if p else Va[f]
        S[RUN_A, j] = 0.0 if p else Aa[f]
        S[_SEEN, j] = 0.0
    for i in range(r0, r1):
        ii = i - r0
        for f in range(nf):
            x = X[i, fc0 + f]
            ok = x == x
            w0 = S[RUN_W, f]
            t0 = S[RUN_T, f]
            v0 = S[RUN_V, f]
            a0 = S[RUN_A, f]
            w = w0 + 1.0
            v = v0 + _increment(w, t0, x)
            t = t0 + x
            a = a0 + abs(x)
            RB[_RB_T, ii, f] = t
            RB[_RB_V, ii, f] = v
            RB[_RB_A, ii, f] = a
            S[RUN_W, f] = w if ok else w0
            S[RUN_T, f] = t if ok else t0
            S[RUN_V, f] = v if ok else v0
            S[RUN_A, f] = a if ok else a0
            S[_SEEN, f] += 1.0 if ok else 0.0
    for j in range(nf):
        if S[_SEEN, j] > 0.0:  # else keep the read-outs (a pending feature's post-detection window)
            f = fc0 + j
            Wa[f] = S[RUN_W, j]
            Ta[f] = S[RUN_T, j]
            Va[f] = S[RUN_V, j]
            Aa[f] = S[RUN_A, j]


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _qrow(X, f, r0, r1, seen, k1):  # pragma: no cover - numba
    # the tile's rows from the returned one on hold the last k1 of feature f's values in the
    # tile (r0 - 1: it had fewer)
    if seen == r1 - r0:
        return r1 - k1
    cnt = 0
    for rr in range(r1 - 1, r0 - 1, -1):
        if X[rr, f] == X[rr, f]:
            cnt += 1
            if cnt == k1:
                return rr
    return r0 - 1


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _insert(X, f, jf, r0, r1, i, n, stop, qrow, max_buckets, RB, tot, var, tend, hist):  # pragma: no cover - numba
    # insert feature f's values from row i (level-0 buckets, count n) until the count reaches
    # stop or the tile ends; returns (row, count). A bucket of any level is made as soon as
    # its last value arrives (level-k bucket j from level-(k-1) buckets 2j and 2j+1): its
    # value does not depend on when river merges it.
    # The unrolled path writes the level-0 and level-1 rings (and the level-0/1 running
    # totals) only where they can be read: river's live level-0 buckets are at most the newest
    # max_buckets values, its live level-1 buckets lie within the newest 3 max_buckets (and
    # the level-2 ones, always written, within the newest 7 max_buckets), and they are read
    # only at a scan or where this loop stops (the tile's end; qrow: see _qrow).
    rmask = tot.shape[2] - 1
    pmask = hist.shape[1] - 1
    k1 = 3 * max_buckets
    prev = tot[f, 0, (n - 1) & rmask]
    prev1_t, prev1_v = _last(tot, var, f, 1, n, rmask)
    prev2_t, prev2_v = _last(tot, var, f, 2, n, rmask)
    prev3_t, prev3_v = _last(tot, var, f, 3, n, rmask)
    prev4_t, prev4_v = _last(tot, var, f, 4, n, rmask)
    while i < r1 and n < stop:
        if (n & 3) == 0 and n + 4 <= stop and i + 4 <= r1:
            # four present values from a multiple of 4: the same merges, unrolled
            x0 = X[i, f]
            x1 = X[i + 1, f]
            x2 = X[i + 2, f]
            x3 = X[i + 3, f]
            if (x0 == x0) & (x1 == x1) & (x2 == x2) & (x3 == x3):
                b = i - r0
                near = i + 4 > qrow  # fewer than 3 max_buckets values may follow in the tile
                dst = stop - n - 4  # values after these four before the scan
                h = n & pmask  # R >= 4 and P >= 4: slots s .. s + 3 are contiguous
                te = RB[_RB_T, b + 3, jf]
                hist[f, h + 3] = te  # a level-2 bucket's end
                ta, va = _merge(x0, 0.0, x1, 0.0, 1.0, 0.5)
                tb, vb = _merge(x2, 0.0, x3, 0.0, 1.0, 0.5)
                if near or dst < k1:
                    d = (n >> 1) & rmask
                    tot[f, 1, d] = ta
                    var[f, 1, d] = va
                    tot[f, 1, d + 1] = tb
                    var[f, 1, d + 1] = vb
                    hist[f, h + 1] = RB[_RB_T, b + 1, jf]
                    if near or dst < max_buckets:
                        s = n & rmask
                        tot[f, 0, s] = x0
                        tot[f, 0, s + 1] = x1
                        tot[f, 0, s + 2] = x2
                        tot[f, 0, s + 3] = x3
                        hist[f, h] = RB[_RB_T, b, jf]
                        hist[f, h + 2] = RB[_RB_T, b + 2, jf]
                j2 = n >> 2
                d2 = j2 & rmask
                t2, v2 = _merge(ta, va, tb, vb, 0.5, 1.0)
                tot[f, 2, d2] = t2
                var[f, 2, d2] = v2
                # levels 3-5 from the previous bucket of each level, kept in registers
                # (measured a little faster than the ring-reading loop)
                if j2 & 1:
                    t3, v3 = _merge(prev2_t, prev2_v, t2, v2, 0.25, 2.0)
                    j3 = j2 >> 1
                    _put(tot, var, tend, f, 3, j3 & rmask, t3, v3, te)
                    if j3 & 1:
                        t4, v4 = _merge(prev3_t, prev3_v, t3, v3, 0.125, 4.0)
                        j4 = j3 >> 1
                        _put(tot, var, tend, f, 4, j4 & rmask, t4, v4, te)
                        if j4 & 1:
                            t5, v5 = _merge(prev4_t, prev4_v, t4, v4, 0.0625, 8.0)
                            j5 = j4 >> 1
                            _put(tot, var, tend, f, 5, j5 & rmask, t5, v5, te)
                            _carry(tot, var, tend, f, j5, 5, te, rmask, _POW2, _POW2INV)
                        prev4_t = t4
                        prev4_v = v4
                    prev3_t = t3
                    prev3_v = v3
                prev2_t = t2
                prev2_v = v2
                prev = x3
                prev1_t = tb
                prev1_v = vb
                n += 4
                i += 4
                continue
        x = X[i, f]
        if x == x:
            s = n & rmask
            tot[f, 0, s] = x  # level-0 variances are 0.0: not stored
            te = RB[_RB_T, i - r0, jf]
            hist[f, n & pmask] = te
            if n & 1:
                j1 = n >> 1
                d = j1 & rmask
                t1_, v1_ = _merge(prev, 0.0, x, 0.0, 1.0, 0.5)
                tot[f, 1, d] = t1_
                var[f, 1, d] = v1_
                if j1 & 1:  # and each pair of level-1 buckets into level 2
                    j2 = j1 >> 1
                    d2 = j2 & rmask
                    prev2_t, prev2_v = _merge(prev1_t, prev1_v, t1_, v1_, 0.5, 1.0)
                    tot[f, 2, d2] = prev2_t
                    var[f, 2, d2] = prev2_v
                    _carry(tot, var, tend, f, j2, 2, te, rmask, _POW2, _POW2INV)
                    prev3_t, prev3_v = _last(tot, var, f, 3, n + 1, rmask)
                    prev4_t, prev4_v = _last(tot, var, f, 4, n + 1, rmask)
                prev1_t = t1_
                prev1_v = v1_
            prev = x
            n += 1
        i += 1
    return i, n


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _redo_tail(X, f, jf, i, r0, r1, RB, W, T, V):  # pragma: no cover - numba
    # a detection at row i: pass 1 assumed none, so redo feature f's running stats after it
    # (river's window after its deletions until the next value, then a fresh start); returns
    # the width, total, variance and sum |x| at the tile's end
    pr = True
    s = RB[_RB_A, i - r0, jf]
    for i2 in range(i + 1, r1):
        x = X[i2, f]
        if x != x:
            continue
        if pr:
            pr = False
            W = 0.0
            T = 0.0
            V = 0.0
            s = 0.0
        W += 1.0
        V += _increment(W, T, x)
        T += x
        s += abs(x)
        RB[_RB_T, i2 - r0, jf] = T
        RB[_RB_V, i2 - r0, jf] = V
        RB[_RB_A, i2 - r0, jf] = s
    return W, T, V, s


_FILTER_NOTE = """
The pre-check before each cut-point scan is sound and division-free. river fires at a
cut (n0 old values with sum u0, n1 = W - n0 newer ones with sum u1) when

    |u0/n0 - u1/n1| > sqrt(2 m (v/W) dp) + (2/3) dp m,   m = 1/(n0-mwl+1) + 1/(n1-mwl+1).

With mwl >= 1, m >= 1/n0 + 1/n1 = W/(n0 n1) =: q, so (for dp >= 0) a fire needs

    |D| > n0 n1 (sqrt(2 q (v/W) dp) + (2/3) dp q) = sqrt(2 (v/W) dp n0 n1 W) + (2/3) dp W

with D = u0 n1 - u1 n0 = u0 W - T n0; i.e. with g = |D| - (2/3) dp W: g > 0 and
g^2 > 2 (v/W) dp n0 n1 W. Between resets a cut after bucket j sits at n0 = (j+1) 2^k and
u0 is, up to rounding, the running total T at that value, kept with the bucket ("tend").
Both that running sum and river's sums of bucket totals are within W * 2^-53 * S of the
exact prefix sum (S = sum |x| over the window), and river's u1 and divisions add a few
more ulps of (S + |T|) W. The check adds (1e-12 + 1e-15 W) (S + |T|) W to |D| and shrinks
the right-hand sides by 1e-9 relative: far more than those errors. dp < 0 or non-finite
values make the check pass, and the exact scan decides.

A level whose buckets did not change since its last check keeps a cached certificate: the
smallest margin RHS - |D| - M over its cuts at (W_k, T_k). The right-hand side only grows
between resets, and D = te W - T pp moves by te dW - pp dT = (te - pp mu) dW - pp (dT - mu dW)
with mu = T_k / W_k, so the level stays safe while max|te - pp mu| dW + max(pp) |dT - mu dW|
+ (M - M_k) is below that margin (each term padded by 1e-12 relative for its rounding).
Centring on mu makes the certificate last on streams with any mean.
"""

_GROUP_NOTE = """
The levels from kg up (2**kg >= 8 clock) gain a bucket at most every 8th scan, so their
certificates are checked as one. When a scan finds each of them safe, with slack
s_k = margin_k - grow_k at (W0, T0, M0), mu0 = T0 / W0, then for later W = W0 + dW,
T = T0 + dT (W only grows between resets) the triangle inequality gives

    grow_k <= grow_k(W0) + a_k dW + b_k |dT - mu0 dW| + (M - M0),
    a_k = c4_k + c5_k (|mu0 - mu_k| + 1e-12 (|mu_k| + |mu0|)),   b_k = c5_k (1 + 1e-12)

(c4, c5, mu_k: the level's own certificate). So every level stays safe while
A dW + B (|dT - mu0 dW| + 1e-12 (|dT| + |mu0| dW)) + (M - M0) < min s_k with A = max a_k,
B = max b_k (padded by 1e-9), W below every level's wake-up width, and level kg's buckets
unchanged (a level changes only when every level below it does, so then none above has).
A scan that checks the levels one by one invalidates the group first (it may record a new
bucket of a group level and then stop early, for river's exact scan) and re-forms it only
when it found every one of them safe.
"""


class ADWIN:
    """ADWIN drift detectors for ``n_features`` independent streams, exact to river.

    Parameters are river's, each a scalar or a per-feature array: ``delta``,
    ``clock``, ``max_buckets``, ``min_window_length``, ``grace_period``.

    ``update(X)`` takes a float64 batch ``[n, n_features]`` (NaN = missing: that
    feature's detector does not see the row) and returns the detections as an int64
    array ``[k, 2]`` of ``(row, feature)`` sorted by row then feature.

    Features with ``clock=32`` (river's default) run whole 32-value segments in the lockstep
    kernel (``detectors/_adwin_lockstep.py``), all of them at once; everything else, and the
    rows around those segments, in this module's kernel. ``lockstep=False`` keeps every row
    in this module's kernel; the results are the same either way.

    Read-outs (length ``n_features``): ``width``, ``total``, ``estimation`` (window mean,
    0 when empty), ``variance`` (river's: sum of squared deviations in the window),
    ``n_detections`` (cumulative since construction; river's own counter lives in a helper
    it rebuilds after each detection) and ``drift_detected``.

    Note: river 0.26.1 itself panics for ``max_buckets=1`` on some streams (a deletion
    that empties two bucket levels); this kernel carries on instead.

    >>> import json
    >>> import numpy as np
    >>> from detectors import ADWIN
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(0, 1, (3000, 3)); X[1500:, 1] += 2.0
    >>> a = ADWIN(n_features=3, delta=[0.002, 0.002, 0.0001])
    >>> first = a.update(X[:1000])
    >>> b = ADWIN.from_state(json.loads(json.dumps(a.to_builtin_state())))
    >>> np.array_equal(a.update(X[1000:]), b.update(X[1000:]))
    True
    """

    def __init__(
        self,
        n_features: int,
        delta: ArrayLike = _D.delta,
        clock: ArrayLike = _D.clock,
        max_buckets: ArrayLike = _D.max_buckets,
        min_window_length: ArrayLike = _D.min_window_length,
        grace_period: ArrayLike = _D.grace_period,
        *,
        use_filter: bool = True,
        lockstep: bool = True,
    ) -> None:
        F = int(n_features)
        if F < 0:
            raise ValueError("n_features must be >= 0")
        self._scalars: dict[str, Any] = {}
        for name, value in (
            ("clock", clock),
            ("max_buckets", max_buckets),
            ("min_window_length", min_window_length),
            ("grace_period", grace_period),
        ):
            _check_integers(name, value)
        self._delta, self._scalars["delta"] = per_feature(delta, F, np.float64, "delta")
        self._clock, self._scalars["clock"] = per_feature(clock, F, np.int64, "clock")
        self._mb, self._scalars["max_buckets"] = per_feature(max_buckets, F, np.int64, "max_buckets")
        self._mwl, self._scalars["min_window_length"] = per_feature(
            min_window_length, F, np.float64, "min_window_length"
        )
        self._grace, self._scalars["grace_period"] = per_feature(grace_period, F, np.float64, "grace_period")
        self._check_params()
        self.use_filter = bool(use_filter)
        self.lockstep = bool(lockstep)
        self._alloc_state(F, levels=8)

    def _check_params(self) -> None:
        for name, (attr, _) in _ARRAYS.items():
            _check_values(name, getattr(self, attr))
        # the features the lockstep kernel takes (the others run in the general kernel)
        self._eligible = (self._clock == SEG) & (self._mb <= LOCKSTEP_MAX_BUCKETS) & (self._mwl >= 1.0)
        self._eligible_any = bool(self._eligible.any())
        self._lanes = np.arange(len(self._clock))

    def _alloc_state(self, F: int, levels: int) -> None:
        R = _ring_size(int(self._mb.max()) if F else 1)
        self._tot = np.zeros((F, levels, R))
        self._var = np.zeros((F, levels, R))
        self._tend = np.zeros((F, levels, R))
        self._hist = np.zeros((F, _hist_size(int(self._mb.max()) if F else 1)))
        self._cachef = np.zeros((F, levels, LEVEL_SLOTS))  # per-level filter results; see _FILTER_NOTE
        self._cachea = np.full((F, levels), -1, dtype=np.int64)
        self._grp = np.zeros((F, CERT_SLOTS))  # the group certificate of the high levels; see _GROUP_NOTE
        self._nins = np.zeros(F, dtype=np.int64)
        self._W = np.zeros(F)
        self._T = np.zeros(F)
        self._V = np.zeros(F)
        self._A = np.zeros(F)
        self._pending = np.zeros(F, dtype=np.bool_)
        self._n_det = np.zeros(F, dtype=np.int64)
        self._scratch: tuple[np.ndarray, ...] | None = None
        # the lockstep kernel's scratch, and what lets a call go on from the last one's
        self._work_key: tuple[int, int] | None = None
        self._lsm = np.full((3, F), -1, np.int64)
        self._vb = 0
        self._hits = np.empty((0, 4))  # the lockstep kernel's hits: row, feature, after-cut width, total
        self._post = np.zeros((0, 2))  # per hit of the last update: after-cut width, total

    def _ensure_levels(self, n_new: int) -> None:
        # a level-k bucket holds 2**k values: a window of w values has < bit_length(w) + 1 levels
        w = (int(self._nins.max()) if self._nins.size else 0) + int(n_new)
        need = min(_MAX_LEVELS, w.bit_length() + 1)
        F, L, R = self._tot.shape
        if need > L:
            grow = min(_MAX_LEVELS, need + 1)
            for name in ("_tot", "_var", "_tend"):
                a = np.zeros((F, grow, R))
                a[:, :L] = getattr(self, name)
                setattr(self, name, a)
            self._cachef = np.zeros((F, grow, LEVEL_SLOTS))
            self._cachea = np.full((F, grow), -1, dtype=np.int64)

    def _buffers(self) -> tuple[np.ndarray, ...]:
        L = self._tot.shape[1]
        sc = self._scratch
        if sc is None or sc[0].shape[0] < L:
            sc = (np.empty(L, np.int64), np.empty(L, np.int64))
            self._scratch = sc
        return sc

    # ------------------------------------------------------------------ API
    @property
    def n_features(self) -> int:
        return len(self._W)

    def update(self, X: Any) -> np.ndarray:
        """Feed a batch ``[n, n_features]`` (NaN = missing); return hits ``[k, 2]`` (row, feature)."""
        X = np.ascontiguousarray(as_matrix(X, self.n_features))
        rows = X.shape[0]
        if rows == 0 or self.n_features == 0:
            self._post = np.zeros((0, 2))
            return np.empty((0, 2), dtype=np.int64)
        self._ensure_levels(rows)
        a, b = LOCKSTEP_MIN_CELLS
        if self.use_filter and self.lockstep and self._eligible_any and rows * X.shape[1] >= a + b * X.shape[1]:
            hits, self._post = self._update_lockstep(X)
        else:
            hits, self._post = self._general(X)
        return hits

    def _general(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # the general kernel: every parameter, missing values anywhere. Returns the hits and,
        # per hit, the width and total of the window after river's deletions
        lo, hi = self._buffers()
        flags = np.zeros(X.shape, dtype=np.bool_)
        cut = np.empty((2, *X.shape))  # read only at the hits' cells, which the kernel writes
        hits = _adwin_kernel(
            X, self._params(), self._state(), self._rings(), self._caches(), lo, hi, flags, cut, self.use_filter
        )
        return hits, cut[:, hits[:, 0], hits[:, 1]].T

    # the kernels' argument groups (numba takes tuples of arrays at no cost inside)
    def _params(self) -> tuple[np.ndarray, ...]:
        return self._delta, self._clock, self._mb, self._mwl, self._grace

    def _state(self) -> tuple[np.ndarray, ...]:
        return self._nins, self._W, self._T, self._V, self._A, self._pending, self._n_det

    def _rings(self) -> tuple[np.ndarray, ...]:
        return self._tot, self._var, self._tend, self._hist

    def _caches(self) -> tuple[np.ndarray, ...]:
        return self._cachef, self._cachea, self._grp

    def _general_rows(
        self, X: np.ndarray, start: int, stop: int, first: np.ndarray, end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        # the general kernel on rows [start, stop), feature f seeing only rows [first[f], end[f])
        # (the others masked as missing, which leaves that feature's detector alone)
        Xm = X[start:stop].copy()
        r = np.arange(start, stop)[:, None]
        Xm[(r < first[None, :]) | (r >= end[None, :])] = np.nan
        hits, post = self._general(Xm)
        return hits + [start, 0], post

    def _lockstep_call(
        self,
        Xg: np.ndarray,
        cols: np.ndarray,
        q: np.ndarray,
        n_segs: int,
        mb: int,
        row0: int,
        lo: np.ndarray,
        hi: np.ndarray,
        keep: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        # keep: the lanes are every feature in order, as in the calls whose scratch carries over
        plan = lockstep_plan(mb)
        L = cols.size
        if self._work_key != (mb, L):  # a new scratch layout: nothing carries over
            self._work = np.empty(work_size(mb, L))
            self._iwork = np.empty(4 * L, np.int64)
            self._bwork = np.empty((5 + plan[5]) * L, np.bool_)
            self._work_key = (mb, L)
            self._lsm[0] = -1
        if self._hits.shape[0] <= n_segs:
            self._hits = np.empty((n_segs + 1, 4))
        vb = self._vb
        self._vb += SEG * int(q.max())
        k = lockstep_kernel(
            Xg,
            cols,
            q,
            mb,
            *plan,
            self._delta,
            self._mwl,
            self._grace,
            self._tot,
            self._var,
            self._tend,
            self._hist,
            self._nins,
            self._W,
            self._T,
            self._V,
            self._A,
            self._pending,
            self._n_det,
            self._cachef,
            self._cachea,
            self._grp,
            lo,
            hi,
            _POW2,
            _POW2INV,
            self._hits,
            row0,
            self._work,
            self._iwork,
            self._bwork,
            self._lsm,
            vb,
            keep,
        )
        return self._hits[:k, :2].astype(np.int64), self._hits[:k, 2:].copy()

    def _update_lockstep(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # per feature: rows [0, head) through the general kernel (to its next multiple of 32),
        # then whole segments with no missing value in lockstep, then the rest through the
        # general kernel again (rows outside a feature's range are masked as missing)
        rows, F = X.shape
        head, segs, info = plan_rows(X, self._nins, self._pending, self._eligible, self._mb)
        h_max, single, h0, mb0, n_segs = info.tolist()
        parts = []
        if h_max > 0:
            parts.append(self._general_rows(X, 0, h_max, np.zeros_like(head), head))
        lo, hi = self._buffers()
        if single == 2:  # every feature, one head row: no copy
            parts.append(self._lockstep_call(X[h0:], self._lanes, segs, n_segs, mb0, h0, lo, hi, True))
        elif n_segs:
            lanes = np.flatnonzero(segs)
            key = head[lanes] * (LOCKSTEP_MAX_BUCKETS + 1) + self._mb[lanes]  # one call: the same head, mb
            for g in np.unique(key):
                cols = lanes[key == g]
                h = int(head[cols[0]])
                q = segs[cols]
                Xg = np.ascontiguousarray(X[h : h + SEG * int(q.max())][:, cols])
                parts.append(self._lockstep_call(Xg, cols, q, int(q.sum()), int(self._mb[cols[0]]), h, lo, hi, False))
                segs[cols] = q  # the segments each lane did
        tail = head + SEG * segs
        t_min = int(tail.min())
        if t_min < rows:
            parts.append(self._general_rows(X, t_min, rows, tail, np.full_like(tail, rows)))
        if len(parts) == 1:
            return parts[0]
        out = np.concatenate([h for h, _ in parts])
        post = np.concatenate([p for _, p in parts])
        order = np.lexsort((out[:, 1], out[:, 0]))
        return out[order], post[order]

    def add_features(self, n: int) -> None:
        """Append ``n`` fresh features (construction-time scalars, else river's defaults)."""
        n = int(n)
        if n <= 0:
            return
        fill = {k: (v if v is not None else _DEFAULTS[k]) for k, v in self._scalars.items()}
        state = self.state_dict()
        F = self.n_features
        self._delta = np.r_[self._delta, np.full(n, fill["delta"], dtype=np.float64)]
        self._clock = np.r_[self._clock, np.full(n, fill["clock"], dtype=np.int64)]
        self._mb = np.r_[self._mb, np.full(n, fill["max_buckets"], dtype=np.int64)]
        self._mwl = np.r_[self._mwl, np.full(n, fill["min_window_length"], dtype=np.float64)]
        self._grace = np.r_[self._grace, np.full(n, fill["grace_period"], dtype=np.float64)]
        self._check_params()
        self._alloc_state(F + n, levels=self._tot.shape[1])
        self._load_windows(state, F)

    def set_params(self, features: Sequence[int], **params: Any) -> None:
        """Set river's parameters (``delta``, ``clock``, ``max_buckets``,
        ``min_window_length``, ``grace_period``) of the given features, in place.

        Each value is a scalar or one value per listed feature. The windows are kept and the
        next check uses the new values; a new ``max_buckets`` restarts the feature (river's
        bucket structure is built for one ``max_buckets``; detection counts are kept). A
        fresh feature then runs exactly as one built with these parameters. An unknown name
        or a bad value raises ``ValueError`` naming the parameter, and changes nothing.

        >>> d = ADWIN(n_features=3)
        >>> d.set_params([0, 2], delta=0.05, min_window_length=10)
        >>> d.state_dict()["delta"].tolist(), d.state_dict()["min_window_length"].tolist()
        ([0.05, 0.002, 0.05], [10.0, 5.0, 10.0])
        >>> d.set_params([1], dleta=0.1)
        Traceback (most recent call last):
        ...
        ValueError: unknown ADWIN parameter 'dleta' (expected one of delta, clock, ...)
        """
        idx = feature_indices(features, self.n_features)
        new: dict[str, np.ndarray] = {}
        for name, value in params.items():
            if name not in _ARRAYS:
                raise ValueError(f"unknown ADWIN parameter {name!r} (expected one of {', '.join(_PARAMS[:2])}, ...)")
            attr, dtype = _ARRAYS[name]
            if dtype is np.int64:
                _check_integers(name, value)
            try:
                vals = np.broadcast_to(np.asarray(value, dtype=np.float64), idx.shape)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: expected a number or {idx.size} numbers, got {value!r}") from None
            _check_values(name, vals)
            new[name] = vals.astype(dtype)
        restart = np.zeros(self.n_features, bool)
        if "max_buckets" in new:
            restart[idx] = self._mb[idx] != new["max_buckets"]
            self.reset(restart)
        for name, vals in new.items():
            getattr(self, _ARRAYS[name][0])[idx] = vals
        # a certificate or delta_prime cached for the old values must not be trusted
        self._cachea[idx] = -1
        self._cachef[idx] = 0.0
        self._grp[idx] = 0.0
        self._lsm[0, idx] = -1
        self._check_params()  # the lockstep eligibility may have changed
        mb_max = int(self._mb.max()) if self.n_features else 1
        if _ring_size(mb_max) > self._tot.shape[2] or _hist_size(mb_max) > self._hist.shape[1]:
            # longer rings (bucket j of a level sits in slot j mod ring size): rebuilt from
            # river's buckets, as after a restore
            state = self.state_dict()
            self._alloc_state(self.n_features, levels=self._tot.shape[1])
            self._load_windows(state, self.n_features)

    def reset(self, feature_mask: Any = None) -> None:
        """Restart the detectors of the selected features (all by default); detection counts are kept."""
        mask = np.ones(self.n_features, bool) if feature_mask is None else np.asarray(feature_mask, bool)
        for name in ("_nins", "_W", "_T", "_V", "_A"):
            getattr(self, name)[mask] = 0
        self._pending[mask] = False
        self._lsm[0, mask] = -1
        self._cachea[mask] = -1
        self._grp[mask] = 0.0

    # ------------------------------------------------------------ read-outs
    @property
    def width(self) -> np.ndarray:
        return self._W.copy()

    @property
    def total(self) -> np.ndarray:
        return self._T.copy()

    @property
    def estimation(self) -> np.ndarray:
        w = self._W
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(w == 0, 0.0, self._T / np.where(w == 0, 1.0, w))

    @property
    def variance(self) -> np.ndarray:
        return self._V.copy()

    @property
    def variance_in_window(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._V / self._W

    @property
    def n_detections(self) -> np.ndarray:
        return self._n_det.copy()

    @property
    def post_change_count(self) -> np.ndarray:
        """Per hit of the last :meth:`update` (same order): the length of the sub-window after
        the cut, i.e. the window river keeps after its deletions (the values since the change
        point ADWIN found, the detection's value included). int64."""
        return self._post[:, 0].astype(np.int64)

    @property
    def post_change_mean(self) -> np.ndarray:
        """Per hit of the last :meth:`update` (same order): the mean of that sub-window
        (river's ``estimation`` right after the detection)."""
        return self._post[:, 1] / self._post[:, 0]

    @property
    def drift_detected(self) -> np.ndarray:
        return self._pending.copy()

    @property
    def n_buckets(self) -> np.ndarray:
        """Bucket summaries in each window: O(max_buckets * log2(width)). (Right after a
        detection, until the next value, this is the count before river's deletions.)"""
        return np.array(
            [sum(h - lo for lo, h in _shape(int(n), int(mb))) for n, mb in zip(self._nins, self._mb, strict=True)],
            dtype=np.int64,
        )

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Plain dict of numpy arrays / Python values (no pickle), O(max_buckets*log(width)) per feature.

        Bucket summaries are stored ragged, oldest first within each level: ``level_counts``
        holds the counts of each feature's levels (``n_levels[f]`` of them, concatenated),
        and ``bucket_totals`` / ``bucket_variances`` the summaries in the same order. A
        feature whose last value was a detection stores no buckets (it restarts next value).
        """
        F = self.n_features
        R = self._tot.shape[2]
        counts: list[int] = []
        totals: list[np.ndarray] = []
        variances: list[np.ndarray] = []
        nlev = np.ones(F, dtype=np.int64)
        for f in range(F):
            if self._pending[f]:
                counts.append(0)
                continue
            shape = _shape(int(self._nins[f]), int(self._mb[f]))
            nlev[f] = len(shape)
            for lev, (lo, hi) in enumerate(shape):
                idx = np.arange(lo, hi) & (R - 1)
                counts.append(hi - lo)
                totals.append(self._tot[f, lev, idx])
                variances.append(self._var[f, lev, idx] if lev > 0 else np.zeros(hi - lo))
        return {
            "kind": "adwin",
            "version": STATE_VERSION,
            "n_features": F,
            "scalars": dict(self._scalars),
            "use_filter": self.use_filter,
            "lockstep": self.lockstep,
            "delta": self._delta.copy(),
            "clock": self._clock.copy(),
            "max_buckets": self._mb.copy(),
            "min_window_length": self._mwl.copy(),
            "grace_period": self._grace.copy(),
            "total": self._T.copy(),
            "variance": self._V.copy(),
            "width": self._W.copy(),
            "abs_total": self._A.copy(),
            "tick": self._nins.copy(),
            "pending_reset": self._pending.copy(),
            "n_detections": self._n_det.copy(),
            "n_levels": nlev,
            "level_counts": np.array(counts, dtype=np.int64),
            "bucket_totals": np.concatenate(totals) if totals else np.zeros(0),
            "bucket_variances": np.concatenate(variances) if variances else np.zeros(0),
        }

    def to_builtin_state(self) -> dict:
        """:meth:`state_dict` with arrays as lists: ready for ``json.dumps`` / ``msgpack.packb``."""
        return to_builtin(self.state_dict())

    def _load_windows(self, state: dict, n: int) -> None:
        shp = (n,)
        self._T[:n] = as_array(state["total"], np.float64, shp)
        self._V[:n] = as_array(state["variance"], np.float64, shp)
        self._W[:n] = as_array(state["width"], np.float64, shp)
        self._A[:n] = as_array(state["abs_total"], np.float64, shp)
        self._nins[:n] = as_array(state["tick"], np.int64, shp)
        self._pending[:n] = as_array(state["pending_reset"], np.bool_, shp)
        self._n_det[:n] = as_array(state["n_detections"], np.int64, shp)
        nlev = as_array(state["n_levels"], np.int64, shp)
        counts = as_array(state["level_counts"], np.int64)
        totals = as_array(state["bucket_totals"], np.float64)
        variances = as_array(state["bucket_variances"], np.float64)
        if (
            np.any(self._nins[:n] < 0)
            or counts.size != int(nlev.sum())
            or np.any(counts < 0)
            or totals.size != int(counts.sum())
            or variances.size != totals.size
        ):
            raise ValueError("inconsistent ADWIN state: n_levels / level_counts / buckets")
        self._ensure_levels(0)
        R = self._tot.shape[2]
        P = self._hist.shape[1]
        ci = vi = 0
        for f in range(n):
            c = counts[ci : ci + int(nlev[f])]
            ci += int(nlev[f])
            if self._pending[f]:
                vi += int(c.sum())
                continue
            shape = _shape(int(self._nins[f]), int(self._mb[f]))
            if c.tolist() != [hi - lo for lo, hi in shape] or self._W[f] != self._nins[f]:
                raise ValueError(f"ADWIN state of feature {f} does not match river's bucket shape")
            run = 0.0
            for lev in range(len(shape) - 1, -1, -1):  # oldest level first
                lo, hi = shape[lev]
                off = vi + sum(hi_ - lo_ for lo_, hi_ in shape[:lev])
                idx = np.arange(lo, hi) & (R - 1)
                t = totals[off : off + hi - lo]
                self._tot[f, lev, idx] = t
                self._var[f, lev, idx] = variances[off : off + hi - lo]
                # running totals at bucket ends: any value within the filter's error margin will do
                ends = run + np.cumsum(t)
                if lev < _HIST_LEVELS:  # by the index of the bucket's last value
                    self._hist[f, (((np.arange(lo, hi) + 1) << lev) - 1) & (P - 1)] = ends
                else:
                    self._tend[f, lev, idx] = ends
                run = float(ends[-1]) if ends.size else run
            # the kernel makes each bucket as soon as its last value arrives, before river
            # merges it: rebuild those (level k, indices a_k .. n >> k - 1) bottom-up
            n_ = int(self._nins[f])
            for lev in range(1, n_.bit_length()):
                j_lo = shape[lev][1] if lev < len(shape) else 0
                inv = float(_POW2INV[lev - 1])
                h = float(_POW2[lev - 1]) * 0.5
                for j in range(j_lo, n_ >> lev):
                    a, b = (2 * j) & (R - 1), (2 * j + 1) & (R - 1)
                    t0 = float(self._tot[f, lev - 1, a])
                    t1 = float(self._tot[f, lev - 1, b])
                    v0 = float(self._var[f, lev - 1, a]) if lev > 1 else 0.0
                    v1 = float(self._var[f, lev - 1, b]) if lev > 1 else 0.0
                    self._tot[f, lev, j & (R - 1)], self._var[f, lev, j & (R - 1)] = _merge(t0, v0, t1, v1, inv, h)
                    if lev >= _HIST_LEVELS:
                        self._tend[f, lev, j & (R - 1)] = (
                            self._hist[f, (((j + 1) << lev) - 1) & (P - 1)]
                            if lev - 1 < _HIST_LEVELS
                            else self._tend[f, lev - 1, b]
                        )
            vi += int(c.sum())

    @classmethod
    def from_state(cls, state: dict) -> ADWIN:
        check_kind(state, "adwin")
        F = int(state["n_features"])
        self = cls.__new__(cls)
        self._scalars = {k: state["scalars"].get(k) for k in _DEFAULTS}
        self.use_filter = bool(state.get("use_filter", True))
        self.lockstep = bool(state.get("lockstep", True))
        shp = (F,)
        self._delta = as_array(state["delta"], np.float64, shp)
        self._clock = as_array(state["clock"], np.int64, shp)
        self._mb = as_array(state["max_buckets"], np.int64, shp)
        self._mwl = as_array(state["min_window_length"], np.float64, shp)
        self._grace = as_array(state["grace_period"], np.float64, shp)
        self._check_params()
        self._alloc_state(F, levels=8)
        self._load_windows(state, F)
        return self
