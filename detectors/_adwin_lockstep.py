"""ADWIN's lockstep path: many features advanced together, 32 values at a time, exact to river.

With ``clock=32`` river checks for a change every 32 values since its last reset, and
between resets its buckets are a function of the count alone (``detectors/adwin.py``). So
when a feature's count is a multiple of 32, its next 32 present values form one *segment*:
they make one level-5 bucket (a fixed tree of 31 merges), and the check after them
tests cuts whose positions, counted back from the newest value, follow a fixed pattern for
levels 0-4. A reset happens on the value after a detection, which is a segment's first
value, so segments stay aligned to the same rows until a value is missing.

This kernel takes the features of a batch whose count is at a multiple of 32
(``plan_rows``) and runs them in lockstep, features innermost so that the CPU vectorises
across features: river's width / total / variance per value, the merge tree, and the sound
pre-check (see ``_FILTER_NOTE`` in ``detectors/adwin.py``) of every cut:

* levels 0-4: their fixed pattern of offsets, read from a ring of running totals by row;
* levels from 5 on, newer than ``far_limit`` values: every segment end in that range (a
  superset of river's cuts there; a superset keeps the check sound);
* older cuts: one certificate per feature over all of river's cuts at least ``cert_from``
  values old when it was made. Cut positions only disappear between resets (a merge removes
  the boundary between the two merged buckets), so it covers every older cut for as long as
  ``W - far_limit <= W_made - cert_from`` and the window's total has not moved enough to
  use up its margin (the bound of the per-level certificates of ``adwin.py``). Then it is
  extended by the cuts that left the tested range, composed as in ``_GROUP_NOTE``, or made
  anew when its slack is used up.

When the check cannot rule out a cut, the feature's buckets are written to the shared rings
and river's own scan decides (``_river_scan``). A feature stops before a segment with a
missing value. Rows before a feature's first whole segment and after its last one go
through ``adwin.py``'s general kernel, which shares the state; the scratch (rings,
certificate) carries over to the next call while a feature's state is as this call left it.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba as nb
import numpy as np

from driftsentinel.detectors._adwin_buckets import (
    CERT_A,
    CERT_B,
    CERT_M,
    CERT_MU,
    CERT_NEWEST,
    CERT_SLACK,
    CERT_SLOTS,
    CERT_T,
    CERT_VALID,
    CERT_W,
    CERT_WAKE,
    DP_CACHE,
    RUN_A,
    RUN_T,
    RUN_V,
    RUN_W,
    _carry,
    _increment,
    _live_ranges,
    _merge,
    _merged,
    _put,
    _received,
    _river_scan,
    _shape,
)

SEG = 32
MAX_BUCKETS = 16  # larger max_buckets take the general kernel
# the rows of a lane's per-check constants SC (see _FILTER_NOTE in adwin.py): 2 (v/W) dp W,
# M - B and M, each with its rounding margin
_SC_AW = 0
_SC_MB = 1
_SC_M = 2


@lru_cache(maxsize=32)
def lockstep_plan(max_buckets: int) -> tuple[np.ndarray, np.ndarray, int, int, int, int, int]:
    """Cut offsets and ring sizes for river's ``max_buckets``.

    Returns ``(fixed, far, far_limit, cert_from, tot_ring, seg_ring, tree_ring)``: ``fixed``
    the offsets (newest value = 0 back) of river's level 0-4 cuts at any count that is a
    multiple of 32, ``far`` the segment ends tested every check.

    >>> fixed, far, far_limit, cert_from, *_ = lockstep_plan(5)
    >>> fixed.tolist()[:6], int(fixed.max()), int(far.min()), far_limit, cert_from
    ([1, 2, 3, 4, 6, 8], 112, 128, 384, 256)
    """
    big = SEG * (1 << 20)
    fixed: set[int] = set()
    for n in range(big, big + 8 * SEG, SEG):  # the pattern does not depend on n (checked here)
        shape = _shape(n, max_buckets)[:5]
        offs = {n - ((j + 1) << k) for k, (lo, hi) in enumerate(shape) for j in range(lo, hi)} - {0}
        assert not fixed or offs == fixed
        fixed = offs
    fixed_a = np.array(sorted(fixed), dtype=np.int64)
    fixed_max = max(fixed, default=0)
    far_from = max(max_buckets - 1, 1) * SEG  # level 5's newest cut
    far_limit = far_from + 256
    cert_from = far_limit - 128
    assert fixed_max < cert_from
    far = np.array([o for o in range(far_from, far_limit + 1, SEG) if o not in fixed], dtype=np.int64)
    # the running totals read back: the fixed pattern, and the level 0-4 ends _sync writes
    tot_ring = 1 << int(max(fixed_max + 2 * SEG, (max_buckets + 2) * SEG)).bit_length()
    seg_ring = 1 << (far_limit // SEG + 2).bit_length()
    tree_ring = 1 << (max_buckets + 1).bit_length()
    return fixed_a, far, far_limit, cert_from, tot_ring, seg_ring, tree_ring


@nb.njit(cache=True, nogil=True)
def plan_rows(X, nins, pending, eligible, max_buckets):  # pragma: no cover - numba
    """Per feature: the row where its lockstep rows start (its count a multiple of 32, or a
    reset due) and how many whole 32-row segments follow (the kernel stops a feature early
    at a segment with a missing value); features not ``eligible`` get ``(rows, 0)``.
    ``info``: the last head row, whether the features with segments share their head row
    and max_buckets (2: and they are all the features), that head row, max_buckets and the
    segment count."""
    rows, F = X.shape
    head = np.full(F, rows, np.int64)
    for f in range(F):
        if not eligible[f]:
            continue
        i = 0
        if pending[f]:
            while i < rows and X[i, f] != X[i, f]:
                i += 1
        else:
            need = (SEG - nins[f] % SEG) % SEG
            while need > 0 and i < rows:
                if X[i, f] == X[i, f]:
                    need -= 1
                i += 1
            if need > 0:
                i = rows
        head[f] = i
    segs = np.zeros(F, np.int64)
    info = np.zeros(5, np.int64)
    n_lanes = 0
    single = 1
    for f in range(F):
        segs[f] = (rows - head[f]) // SEG
        info[0] = max(info[0], head[f])
        if segs[f] > 0:
            if n_lanes == 0:
                info[2] = head[f]
                info[3] = max_buckets[f]
            elif head[f] != info[2] or max_buckets[f] != info[3]:
                single = 0
            n_lanes += 1
            info[4] += segs[f]
    info[1] = 0 if n_lanes == 0 else (2 if single and n_lanes == F else single)
    return head, segs, info


def work_size(max_buckets: int, lanes: int) -> int:
    """Length of the float64 scratch ``lockstep_kernel`` needs for ``lanes`` features
    (``iwork``: 4 lanes int64, ``bwork``: (5 + seg_ring) lanes bool)."""
    *_, tot_ring, seg_ring, tree_ring = lockstep_plan(max_buckets)
    tree = 2 * (16 + 8) + 2 * (4 + 2) * tree_ring  # T, V of levels 1-2 (one segment), 3-4 (a ring)
    return (tot_ring + seg_ring + tree + 26) * lanes


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _hit(g, rhs):  # pragma: no cover - numba
    # the pre-check's verdict for one cut: g = |D| + M - B and rhs = 2 (v/W) dp n0 n1 W (see
    # _FILTER_NOTE in adwin.py); a NaN in either side counts as a possible change
    return not ((g <= 0.0) | (g * g < rhs))


@nb.njit(cache=True, nogil=True, inline="always")
def _take2(work, o, a, b):  # pragma: no cover - numba
    return work[o : o + a * b].reshape((a, b)), o + a * b


@nb.njit(cache=True, nogil=True, inline="always")
def _take3(work, o, a, b, c):  # pragma: no cover - numba
    return work[o : o + a * b * c].reshape((a, b, c)), o + a * b * c


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _pair(Xg, i, l):  # pragma: no cover - numba
    # the level-1 bucket of values Xg[i, l] and Xg[i + 1, l] (total, variance), river's merge
    return _merge(Xg[i, l], 0.0, Xg[i + 1, l], 0.0, 1.0, 0.5)


# arguments one by one: with the tree and rings as tuples (unpacked here) ADWIN measured 2.5 % slower
@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _sync(
    l, f, n, rb, fast0, vb, Xg, TBR, T3, V3, T4, V4, tot, var, tend, hist, max_buckets, rmask, los, his
):  # pragma: no cover - numba
    # write lane l's buckets of levels 0-4 made in this call (values from count fast0 on)
    # into the shared rings, with the running totals the general kernel reads (hist, tend);
    # ring rows are virtual (row in Xg + vb), count c at virtual row rb + c. Leaves river's
    # live ranges in los / his and returns their number of levels.
    tmask = TBR.shape[0] - 1
    dmask = T3.shape[0] - 1
    pmask = hist.shape[1] - 1
    nlv = _live_ranges(n, max_buckets, los, his)
    c_hist = n
    for k in range(5):
        lo = los[k] if k < nlv else 0  # a level river does not have yet may hold early buckets
        if k < 3:  # hist holds the ends of levels 0-2 (the general kernel's _HIST_LEVELS)
            c_hist = min(c_hist, ((lo + 1) << k) - 1)
        for j in range(lo, n >> k):
            c0 = j << k
            if c0 < fast0:
                continue
            r = rb + c0
            i = r - vb  # its first row in Xg
            d = j & rmask
            if k == 0:
                tot[f, 0, d] = Xg[i, l]
            elif k == 1:  # levels 1 and 2 made again from the values (same merges, same numbers)
                tot[f, 1, d], var[f, 1, d] = _pair(Xg, i, l)
            elif k == 2:
                ta, va = _pair(Xg, i, l)
                tb, vb2 = _pair(Xg, i + 2, l)
                tot[f, 2, d], var[f, 2, d] = _merge(ta, va, tb, vb2, 0.5, 1.0)
            else:  # levels 3 and 4 from the tree's rings
                st = (r >> 5) & dmask
                q = (c0 & 31) >> k
                te = TBR[(r + (1 << k) - 1) & tmask, l]
                if k == 3:
                    _put(tot, var, tend, f, 3, d, T3[st, q, l], V3[st, q, l], te)
                else:
                    _put(tot, var, tend, f, 4, d, T4[st, q, l], V4[st, q, l], te)
    for c in range(max(c_hist, fast0), n):
        hist[f, c & pmask] = TBR[(rb + c) & tmask, l]
    return nlv


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _carve(work, iwork, bwork, L, tot_ring, seg_ring, tree_ring):  # pragma: no cover - numba
    # the scratch views, carved from ``work`` / ``iwork`` / ``bwork`` (kept by the caller:
    # fresh arrays of this size per call cost page faults); every cell is written before it
    # is read, or masked. rings: running totals by row, segment ends (and their validity);
    # tree: T, V of levels 1-2 (this segment's only) and 3-4 (a ring of segments)
    TBR, o = _take2(work, 0, tot_ring, L)
    E, o = _take2(work, o, seg_ring, L)
    T1, o = _take2(work, o, 16, L)
    V1, o = _take2(work, o, 16, L)
    T2, o = _take2(work, o, 8, L)
    V2, o = _take2(work, o, 8, L)
    T3, o = _take3(work, o, tree_ring, 4, L)
    V3, o = _take3(work, o, tree_ring, 4, L)
    T4, o = _take3(work, o, tree_ring, 2, L)
    V4, o = _take3(work, o, tree_ring, 2, L)
    F3, o = _take2(work, o, 26, L)  # per-lane floats (a lane's certificate is kept or zeroed)
    I3 = iwork[: 4 * L].reshape((4, L))
    B5 = bwork[: 5 * L].reshape((5, L))
    EV = bwork[5 * L : (5 + seg_ring) * L].reshape((seg_ring, L))
    return (TBR, E, EV), (T1, V1, T2, V2, T3, V3, T4, V4), F3, I3, B5


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _enter(l, f, n, vb, max_buckets, far_limit, hist, tend, Ta, TBR, E, EV, lo, hi):  # pragma: no cover - numba
    # lane l (feature f, n values since its reset) starting from the shared state: the running
    # totals at river's boundaries now (the cuts later checks can still see) into the rings
    rmask = tend.shape[2] - 1
    pmask = hist.shape[1] - 1
    tmask = TBR.shape[0] - 1
    emask = E.shape[0] - 1
    vs0 = vb >> 5
    nlv = _live_ranges(n, max_buckets, lo, hi)
    for k in range(nlv):
        if n - (hi[k] << k) > far_limit:  # this level's newest cut is out of reach, and older ones
            break
        for j in range(lo[k], hi[k]):
            pp = (j + 1) << k
            te = hist[f, (pp - 1) & pmask] if k < 3 else tend[f, k, j & rmask]
            if n - pp <= TBR.shape[0] - 2 * 32:
                TBR[(vb + pp - 1 - n) & tmask, l] = te
            if (n - pp) % 32 == 0 and n - pp <= far_limit:
                st = vs0 + ((pp - n) >> 5) - 1
                E[st & emask, l] = te
                EV[st & emask, l] = True
    if n > 0:
        TBR[(vb - 1) & tmask, l] = Ta[f]
        E[(vs0 - 1) & emask, l] = Ta[f]
        EV[(vs0 - 1) & emask, l] = True


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _segment_values(Xg, r0, vb, d, all_act, act, S, TBR, T1, V1, T2, V2, T3, V3, T4, V4):  # pragma: no cover - numba
    # river's width / total / variance per value (insert_element) of rows r0 .. r0 + 31,
    # features innermost, with the segment's merge tree (river's merges, same order) as its
    # rows arrive: the tree's multiplications run while the divider works. Levels 1-2 for
    # this segment only (_sync makes those buckets again from the values), 3-4 in slot d
    L = Xg.shape[1]
    tmask = TBR.shape[0] - 1
    for t in range(32):
        r = r0 + t
        if all_act:
            for l in range(L):
                x = Xg[r, l]
                w = S[RUN_W, l] + 1.0
                t0 = S[RUN_T, l]
                S[RUN_V, l] += _increment(w, t0, x)
                S[RUN_W, l] = w
                S[RUN_T, l] = t0 + x
                S[RUN_A, l] += abs(x)
                TBR[(vb + r) & tmask, l] = t0 + x
        else:
            for l in range(L):
                x = Xg[r, l]
                w0 = S[RUN_W, l]
                t0 = S[RUN_T, l]
                v0 = S[RUN_V, l]
                a0 = S[RUN_A, l]
                w = w0 + 1.0
                inc = _increment(w, t0, x)
                tn = t0 + x
                ok = act[l]
                S[RUN_W, l] = w if ok else w0
                S[RUN_T, l] = tn if ok else t0
                S[RUN_V, l] = v0 + inc if ok else v0
                S[RUN_A, l] = a0 + abs(x) if ok else a0
                TBR[(vb + r) & tmask, l] = tn
        # the merges row r completes (loops written out: one helper per merge level was not
        # inlined by numba, ~2.5x slower with the calls)
        if t & 1:
            q = t >> 1
            for l in range(L):
                tt, vv = _pair(Xg, r - 1, l)
                T1[q, l] = tt
                V1[q, l] = vv
            if (t & 3) == 3:
                q = t >> 2
                for l in range(L):
                    tt, vv = _merge(T1[2 * q, l], V1[2 * q, l], T1[2 * q + 1, l], V1[2 * q + 1, l], 0.5, 1.0)
                    T2[q, l] = tt
                    V2[q, l] = vv
                if (t & 7) == 7:
                    q = t >> 3
                    for l in range(L):
                        tt, vv = _merge(T2[2 * q, l], V2[2 * q, l], T2[2 * q + 1, l], V2[2 * q + 1, l], 0.25, 2.0)
                        T3[d, q, l] = tt
                        V3[d, q, l] = vv
                    if (t & 15) == 15:
                        q = t >> 4
                        for l in range(L):
                            tt, vv = _merge(
                                T3[d, 2 * q, l], V3[d, 2 * q, l], T3[d, 2 * q + 1, l], V3[d, 2 * q + 1, l], 0.125, 4.0
                            )
                            T4[d, q, l] = tt
                            V4[d, q, l] = vv


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _has_missing(Xg, r0, l):  # pragma: no cover - numba
    nan = False
    for t in range(32):
        nan |= Xg[r0 + t, l] != Xg[r0 + t, l]
    return nan


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _level5(f, nl, te, T4, V4, d, l, tot, var, tend, pow2, pow2inv):  # pragma: no cover - numba
    # the segment's level-5 bucket (the tree's last merge) and river's binary counter above it
    rmask = tot.shape[2] - 1
    m = nl >> 5
    t5, v5 = _merge(T4[d, 0, l], V4[d, 0, l], T4[d, 1, l], V4[d, 1, l], 0.0625, 8.0)
    _put(tot, var, tend, f, 5, m & rmask, t5, v5, te)
    _carry(tot, var, tend, f, m, 5, te, rmask, pow2, pow2inv)


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _check_constants(S, SC, Wf, dpc, acc):  # pragma: no cover - numba
    # per lane: the pre-check's constants (see _FILTER_NOTE in adwin.py); a lane whose
    # numbers are not sane goes to river's scan (acc)
    for l in range(S.shape[1]):
        W = Wf[l]
        dp = dpc[l]
        B = (2.0 / 3.0) * dp * W
        AW = 2.0 * (S[RUN_V, l] / W) * dp * W
        Sabs = S[RUN_A, l] + abs(S[RUN_T, l])
        M = (1e-12 + 1e-15 * W) * Sabs * W + 1e-300
        SC[_SC_AW, l] = AW * (1.0 - 1e-9)
        SC[_SC_MB, l] = M - B * (1.0 - 1e-9)
        SC[_SC_M, l] = M
        sane = (dp > 0.0) & (B < np.inf) & (AW < np.inf) & (AW >= 0.0)
        acc[l] = not sane


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _cert_grow(C, l, W, T, M):  # pragma: no cover - numba
    # how much of certificate C[:, l]'s slack the window (W, T, margin M) has used up
    dW = W - C[CERT_W, l]
    dT = T - C[CERT_T, l]
    mu = C[CERT_MU, l]
    return (
        C[CERT_A, l] * dW + C[CERT_B, l] * (abs(dT - mu * dW) + 1e-12 * (abs(dT) + abs(mu) * dW)) + (M - C[CERT_M, l])
    )


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _cert_new(l, f, n, max_buckets, cert_from, far_limit, tend, S, SC, C, min_window_int):  # pragma: no cover - numba
    # lane l's certificate over river's cuts older than cert_from, made at count n: extended by
    # the cuts that left the tested range since (older ones are covered), or, when the old
    # one's slack is used up, a full one over every older cut. False: a cut may be a change
    rmask = tend.shape[2] - 1
    W = float(n)
    Tc = S[RUN_T, l]
    AWm = SC[_SC_AW, l]
    MB = SC[_SC_MB, l]
    Sabs = S[RUN_A, l] + abs(Tc)
    mu1 = Tc / W
    extend = C[CERT_VALID, l] == 2.0
    cA = cB = cS = 0.0
    for _attempt in range(2):
        p_from = int(C[CERT_NEWEST, l]) if extend else -1
        margin = np.inf
        dmax = 0.0
        pmax = 0.0
        # river's levels from 5 up, walked only as far as cuts are new (an extension stops
        # after a level or two: not _live_ranges, which fills every level)
        k = 5
        a = _received(n, max_buckets, 5)
        bad = False
        while a > 0 and not bad and (a << k) > p_from:  # level k's newest cut is new
            g = _merged(a, max_buckets)
            # cuts (j+1) 2^k in (p_from, n - cert_from] with n0 >= min_window_length
            j0 = max(2 * g, ((min_window_int + (1 << k) - 1) >> k) - 1, (p_from >> k) if p_from >= 0 else 0)
            j1 = min(a, ((n - cert_from) >> k))
            for j in range(j0, j1):
                pp = float((j + 1) << k)
                dj = abs(tend[f, k, j & rmask] * W - Tc * pp)
                mj = math.sqrt(AWm * pp * (W - pp)) - dj - MB
                bad |= not (mj > 0.0)  # also NaN
                margin = min(margin, mj)
                dmax = max(dmax, dj)
                pmax = max(pmax, pp)
            a = g
            k += 1
        if bad:
            return False
        cA = dmax / W * (1.0 + 1e-12) + 1e-12 * (Sabs + pmax * abs(mu1))
        cB = pmax
        cS = margin * (1.0 - 1e-12)
        if extend:  # the old certificate seen from (W, T), as in _group_add
            mu0 = C[CERT_MU, l]
            grow = _cert_grow(C, l, W, Tc, SC[_SC_M, l])
            cA = max(cA, C[CERT_A, l] + C[CERT_B, l] * (abs(mu1 - mu0) + 1e-12 * (abs(mu0) + abs(mu1)))) * (1.0 + 1e-9)
            cB = max(cB, C[CERT_B, l] * (1.0 + 1e-12)) * (1.0 + 1e-9)
            cS = min(cS, C[CERT_SLACK, l] - grow) * (1.0 - 1e-9)
        if cS > 0.0 or not extend:
            break
        extend = False
    if not cS > 0.0:
        return False
    C[CERT_VALID, l] = 1.0
    C[CERT_W, l] = W
    C[CERT_T, l] = Tc
    C[CERT_M, l] = SC[_SC_M, l]
    C[CERT_MU, l] = mu1
    C[CERT_A, l] = cA
    C[CERT_B, l] = cB
    C[CERT_SLACK, l] = cS
    C[CERT_WAKE, l] = W + float(far_limit - cert_from)
    C[CERT_NEWEST, l] = float(n - cert_from)
    return True


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _fixed_cuts(fixed, c_fix, TBR, row, Wf, S, SC, lane_min_window, acc):  # pragma: no cover - numba
    # the pre-check of levels 0-4's cuts: the fixed pattern of offsets back from virtual row
    # ``row``, from the ring of running totals
    tmask = TBR.shape[0] - 1
    for c in range(c_fix, fixed.shape[0]):
        o = fixed[c]
        fo = float(o)
        rr = (row - o) & tmask
        for l in range(Wf.shape[0]):
            W = Wf[l]
            pp = W - fo
            g = abs(TBR[rr, l] * W - S[RUN_T, l] * pp) + SC[_SC_MB, l]
            acc[l] |= _hit(g, SC[_SC_AW, l] * pp * fo) & (min(pp, fo) >= lane_min_window[l])


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _far_cuts(far, E, EV, vseg, Wf, S, SC, lane_min_window, acc):  # pragma: no cover - numba
    # the pre-check of the newer cuts of levels 5 and up: every segment end ``far`` back from
    # virtual segment ``vseg``, from the ring of segment ends
    emask = E.shape[0] - 1
    for c in range(far.shape[0]):
        o = far[c]
        fo = float(o)
        se = (vseg - (o >> 5)) & emask
        for l in range(Wf.shape[0]):
            W = Wf[l]
            pp = W - fo
            g = abs(E[se, l] * W - S[RUN_T, l] * pp) + SC[_SC_MB, l]
            acc[l] |= _hit(g, SC[_SC_AW, l] * pp * fo) & (min(pp, fo) >= lane_min_window[l]) & EV[se, l]


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _cert_check(Wf, S, SC, C, scan, acc):  # pragma: no cover - numba
    # per lane: does its certificate still hold (CERT_VALID 1; 2: it does but is due to be
    # extended; 0: it does not)? Returns whether some lane needs a new one, some river's scan
    any_form = False
    any_acc = False
    for l in range(Wf.shape[0]):
        W = Wf[l]
        valid = (C[CERT_VALID, l] != 0.0) & (_cert_grow(C, l, W, S[RUN_T, l], SC[_SC_M, l]) < C[CERT_SLACK, l])
        c0 = 2.0 if valid & (W > C[CERT_WAKE, l]) else (1.0 if valid else 0.0)
        C[CERT_VALID, l] = c0
        any_form |= scan[l] & ~acc[l] & (c0 != 1.0)
        any_acc |= scan[l] & acc[l]
    return any_form, any_acc


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _exit(l, f, n, pend, S, vb_end, state, caches, lsm):  # pragma: no cover - numba
    # lane l's state back into the shared arrays (its buckets already synced by the caller),
    # the general kernel's caches invalidated. lsm records where its scratch ends (virtual
    # row; -1: not kept) and the count and reset flag it left, for the next call
    nins, Wa, Ta, Va, Aa, pending, _ = state
    cachef, cachea, grp = caches
    lsm[0, f] = vb_end
    lsm[1, f] = n
    lsm[2, f] = 1 if pend else 0
    nins[f] = n
    pending[f] = pend
    Wa[f] = S[RUN_W, l]
    Ta[f] = S[RUN_T, l]
    Va[f] = S[RUN_V, l]
    Aa[f] = S[RUN_A, l]
    for k in range(cachea.shape[1]):
        cachea[f, k] = -1
    grp[f, 0] = 0.0
    cachef[f, 0, DP_CACHE] = 0.0


@nb.njit(cache=True, error_model="numpy", nogil=True)
def lockstep_kernel(
    Xg,
    fi,
    qs,
    max_buckets,
    fixed,
    far,
    far_limit,
    cert_from,
    tot_ring,
    seg_ring,
    tree_ring,
    delta,
    min_window_length,
    grace_period,
    tot,
    var,
    tend,
    hist,
    nins,
    Wa,
    Ta,
    Va,
    Aa,
    pending,
    n_det,
    cachef,
    cachea,
    grp,
    lo,
    hi,
    pow2,
    pow2inv,
    hits,
    row0,
    work,
    iwork,
    bwork,
    lsm,
    vb,
    keep,
):  # pragma: no cover - numba
    """``lockstep_run`` with its arguments one by one, as ``ADWIN`` passes them (the groups
    are made here, inside the compiled code, where they cost nothing)."""
    plan = (max_buckets, fixed, far, far_limit, cert_from, tot_ring, seg_ring, tree_ring)
    return lockstep_run(
        Xg,
        (fi, qs),
        plan,
        (delta, min_window_length, grace_period),
        (nins, Wa, Ta, Va, Aa, pending, n_det),
        (tot, var, tend, hist),
        (cachef, cachea, grp),
        (work, iwork, bwork, lsm, lo, hi),
        (pow2, pow2inv),
        (hits, row0, vb, keep),
    )


@nb.njit(cache=True, error_model="numpy", nogil=True, inline="always")
def lockstep_run(Xg, lanes, plan, params, state, rings, caches, scratch, tables, call):  # pragma: no cover - numba
    """Run lanes ``l`` (feature ``fi[l]``, column ``l`` of ``Xg``) over up to ``qs[l]``
    segments of 32 rows each from row 0; a lane stops before a segment with a missing value,
    and ``qs[l]`` is set to the segments it did. Detections go to ``hits`` (float64) as
    (row0 + row in Xg, feature, width and total of the window after river's deletions), in
    stream order; returns their count. The shared state is
    read at entry and written back at exit.

    ``lanes``: (fi, qs); ``plan``: ``lockstep_plan``'s (max_buckets first); ``params``:
    per-feature (delta, min_window_length, grace_period); ``state``, ``rings``, ``caches``:
    ``ADWIN``'s (as the general kernel takes them); ``scratch``: (work, iwork, bwork, lsm,
    lo, hi); ``tables``: (pow2, pow2inv); ``call``: (hits, row0, vb, keep). Rings are indexed
    by virtual rows (row + ``vb``, ``vb`` a multiple of 32 that grows by each call's rows):
    with ``keep`` (the lanes are the features in order, as in the call before), a lane whose
    state is as its last call left it (``lsm``) and that ended at ``vb`` goes on from its
    scratch (certificate and rings) instead of re-reading the shared state."""
    # the groups are unpacked here once (unpacked in the inlined helpers inside the loops,
    # they cost reference counts there: measured 2x slower in adwin.py)
    fi, qs = lanes
    max_buckets, fixed, far, far_limit, cert_from, tot_ring, seg_ring, tree_ring = plan
    delta, min_window_length, grace_period = params
    nins, Wa, Ta, Va, Aa, pending, n_det = state
    tot, var, tend, hist = rings
    work, iwork, bwork, lsm, lo, hi = scratch
    pow2, pow2inv = tables
    hits, row0, vb, keep = call
    L = fi.shape[0]
    nseg = 0
    for l in range(L):
        nseg = max(nseg, qs[l])
    rmask = tot.shape[2] - 1
    tmask = tot_ring - 1
    emask = seg_ring - 1
    (TBR, E, EV), (T1, V1, T2, V2, T3, V3, T4, V4), F3, I3, B5 = _carve(
        work, iwork, bwork, L, tot_ring, seg_ring, tree_ring
    )
    S = F3[0:4]  # running width / total / variance / sum |x| per lane (RUN_*)
    SC = F3[4:7]  # the check's constants (_SC_*)
    C = F3[7 : 7 + CERT_SLOTS]  # a certificate per lane over the older cuts (CERT_*)
    cw = F3[17]  # the width delta_prime was computed at
    dpc = F3[18]  # delta_prime (a lower bound)
    lane_min_window = F3[19]  # min_window_length per lane, rounded up
    S0 = F3[20:24]  # S at the segment's start
    lane_grace = F3[24]  # grace_period per lane
    Wf = F3[25]  # the width as a float, per check
    nl = I3[0]  # count since the reset
    rb = I3[1]  # the row of count 0
    fast0 = I3[2]  # the first count this call inserts
    NL0 = I3[3]  # the count before a reset in this segment
    B5[:, :] = False
    pend, act, acc, scan, done = B5[0], B5[1], B5[2], B5[3], B5[4]
    vs0 = vb >> 5  # the virtual segment of row 0
    min_window_all = np.inf
    # ---- entry: the shared state into the lanes
    for l in range(L):
        f = fi[l]
        lane_min_window[l] = float(int(math.ceil(min_window_length[f])))
        lane_grace[l] = grace_period[f]
        min_window_all = min(min_window_all, lane_min_window[l])
        n = nins[f]
        pend[l] = pending[f]
        S[RUN_W, l] = Wa[f]
        S[RUN_T, l] = Ta[f]
        S[RUN_V, l] = Va[f]
        S[RUN_A, l] = Aa[f]
        nl[l] = n
        fast0[l] = n
        if keep and not pend[l] and lsm[0, f] == vb and lsm[1, f] == n and lsm[2, f] == 0:
            continue  # as the last call left it: its scratch goes on
        C[:, l] = 0.0
        cw[l] = 0.0
        dpc[l] = 0.0
        EV[:, l] = False
        if not pend[l]:
            rb[l] = vb - n
            _enter(l, f, n, vb, max_buckets, far_limit, hist, tend, Ta, TBR, E, EV, lo, hi)
    c_fix = 0  # fixed offsets below every lane's min_window_length test nothing
    while c_fix < fixed.shape[0] and fixed[c_fix] < min_window_all:
        c_fix += 1
    nh = 0
    any_pend = False
    for l in range(L):
        any_pend |= pend[l]
    for s in range(nseg):
        r0 = s * 32
        # per-lane work below runs only where a vectorised pass over the lanes found some
        any_exit = False
        all_act = True
        for l in range(L):
            a_ = s < qs[l]
            act[l] = a_
            any_exit |= a_ & (s == qs[l] - 1)
            all_act &= a_
            for i in range(4):
                S0[i, l] = S[i, l]
        # river resets on the value after a detection; pend stays set until the segment is
        # known to have no missing value (else the feature stops before it, reset still due)
        for l in range(L if any_pend else 0):
            if act[l] and pend[l]:
                NL0[l] = nl[l]
                for i in range(4):
                    S[i, l] = 0.0
                nl[l] = 0
                rb[l] = vb + r0
                fast0[l] = 0
                cw[l] = 0.0
                C[CERT_VALID, l] = 0.0
        d = (vs0 + s) & (tree_ring - 1)
        # ---- river's width / total / variance per value, with the segment's merge tree
        _segment_values(Xg, r0, vb, d, all_act, act, S, TBR, T1, V1, T2, V2, T3, V3, T4, V4)
        # ---- a segment with a missing value: the lane stops before it (a NaN makes the total NaN;
        # so can infinities, which are values: those lanes look at their 32 values)
        any_nan = False
        for l in range(L):
            any_nan |= S[RUN_T, l] != S[RUN_T, l]
        any_done = False
        for l in range(L if any_nan else 0):
            if act[l] and S[RUN_T, l] != S[RUN_T, l] and _has_missing(Xg, r0, l):
                # back to the segment's start (a reset due stays due, as in river)
                for i in range(4):
                    S[i, l] = S0[i, l]
                if pend[l]:
                    nl[l] = NL0[l]
                act[l] = False
                qs[l] = s
                done[l] = True
                any_done = True
        for l in range(L if any_pend else 0):
            pend[l] &= not act[l]
        es = (vs0 + s) & emask
        for l in range(L):
            E[es, l] = TBR[(vb + r0 + 31) & tmask, l]
            EV[es, l] = True
        # ---- level 5 (the segment) and the binary counter above it, per feature
        for l in range(L):
            if act[l]:
                _level5(fi[l], nl[l], S[RUN_T, l], T4, V4, d, l, tot, var, tend, pow2, pow2inv)
                nl[l] += 32
        # ---- which lanes check now; delta_prime (a lower bound is enough: recomputed when W
        # grew by a quarter)
        any_dp = False
        for l in range(L):
            W = float(nl[l])
            Wf[l] = W
            sc = act[l] & (W > lane_grace[l])
            scan[l] = sc
            any_dp |= sc & ~((W >= cw[l]) & (W <= 1.25 * cw[l]))
        for l in range(L if any_dp else 0):
            W = Wf[l]
            if scan[l] and not (W >= cw[l] and W <= 1.25 * cw[l]):
                cw[l] = W
                dpc[l] = math.log(2.0 * math.log(W) / delta[fi[l]])
        _check_constants(S, SC, Wf, dpc, acc)
        # ---- levels 0-4: the fixed pattern; newer cuts of levels 5 and up: every segment end
        _fixed_cuts(fixed, c_fix, TBR, vb + r0 + 31, Wf, S, SC, lane_min_window, acc)
        _far_cuts(far, E, EV, vs0 + s, Wf, S, SC, lane_min_window, acc)
        # ---- older cuts: the certificate (CERT_*); see the module docstring and _GROUP_NOTE in
        # adwin.py; made or extended where it is used up or due
        any_form, any_acc = _cert_check(Wf, S, SC, C, scan, acc)
        for l in range(L if any_form else 0):
            if scan[l] and not acc[l] and C[CERT_VALID, l] != 1.0:
                ok = _cert_new(
                    l, fi[l], nl[l], max_buckets, cert_from, far_limit, tend, S, SC, C, int(lane_min_window[l])
                )
                if not ok:
                    acc[l] = True
                    any_acc = True
                    C[CERT_VALID, l] = 0.0
        # ---- river's own scan where the check could not rule a cut out
        for l in range(L if any_acc else 0):
            if not (scan[l] and acc[l]):
                continue
            f = fi[l]
            n = nl[l]
            nlv = _sync(
                l, f, n, rb[l], fast0[l], vb, Xg, TBR, T3, V3, T4, V4, tot, var, tend, hist, max_buckets, rmask, lo, hi
            )
            fast0[l] = n
            change, Wx, Tx, Vx = _river_scan(
                tot,
                var,
                f,
                lo,
                hi,
                nlv,
                float(n),
                S[RUN_T, l],
                S[RUN_V, l],
                min_window_length[f],
                delta[f],
                rmask,
                pow2,
                pow2inv,
            )
            C[CERT_VALID, l] = 0.0
            if change:
                pend[l] = True
                any_pend = True
                n_det[f] += 1
                hits[nh, 0] = row0 + r0 + 31
                hits[nh, 1] = f
                hits[nh, 2] = Wx  # the sub-window after the cut: its length and total
                hits[nh, 3] = Tx
                nh += 1
                S[RUN_W, l] = Wx
                S[RUN_T, l] = Tx
                S[RUN_V, l] = Vx
        # ---- exit: a lane's last segment done (or stopped before a missing value), its state
        # back into the shared arrays now (the scratch rings are reused by the lanes that go on)
        for l in range(L if any_exit or any_done else 0):
            if done[l] or (act[l] and s == qs[l] - 1):
                f = fi[l]
                if not pend[l]:
                    _sync(
                        l,
                        f,
                        nl[l],
                        rb[l],
                        fast0[l],
                        vb,
                        Xg,
                        TBR,
                        T3,
                        V3,
                        T4,
                        V4,
                        tot,
                        var,
                        tend,
                        hist,
                        max_buckets,
                        rmask,
                        lo,
                        hi,
                    )
                _exit(l, f, nl[l], pend[l], S, (vb + 32 * qs[l]) if keep else -1, state, caches, lsm)
                done[l] = False
    return nh
