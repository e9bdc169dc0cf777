"""Point cleaning: the first pipeline step, turning raw phone fixes into trustworthy points.

Why: phones emit invalid coordinates, duplicated fixes (e-mission stores a fix as both
``location`` and ``filtered_location``), out-of-order uploads, coarse cell-tower fixes and
"jumps" (one fix kilometres away, then back). Segmentation on such points invents trips.
This module drops them with numpy over whole arrays and keeps a removal log (each removed
row with a ``reason``) so nothing disappears silently.

Jump removal uses a per-user robust speed threshold (upper fence ``Q3 + k * IQR`` of the
user's own step speeds, clipped to ``[min_jump_speed_mps, max_speed_mps]``): a fix is a jump
when the speeds into it *and* out of it both exceed the threshold and the detour is not
explained by travel (the neighbours are closer to each other than to it). Unlike e-mission's
per-section zig-zag smoothing it runs once over every user's points at the same time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emission_ext import schema

from .geo import fast_distance_m


def sort_by_user_time(codes: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """Stable ordering by (user code, time); no work when already ordered.

    One int64 key (user code and microseconds since the earliest fix) sorted once, instead
    of a two-key lexsort; falls back to lexsort when the key would overflow.
    """
    order = _user_time_order(codes, ts_ns)
    return np.arange(codes.size) if order is None else order


def _user_time_order(codes: np.ndarray, ts_ns: np.ndarray) -> np.ndarray | None:
    """:func:`sort_by_user_time`, or None when the points are in order already (the caller
    can then use slices instead of gathering by an identity index)."""
    if codes.size == 0:
        return None
    us = (ts_ns - ts_ns.min()) // 1000
    span = int(us.max()) + 1
    if (int(codes.max()) + 1) * span < 2 ** 62:
        key = codes.astype(np.int64) * span + us
        if np.all(key[1:] >= key[:-1]):
            return None
        return np.argsort(key, kind="stable")
    return np.lexsort((ts_ns, codes))

def as_points(points: pd.DataFrame) -> pd.DataFrame:
    """``schema.coerce(points, "points")``, skipped when it would change nothing.

    A frame fresh from a reader (or from :func:`clean_points`) already has the table's
    columns first, in order, with the declared dtypes; rebuilding it would copy every column
    of a million points for nothing.
    """
    t = schema.table("points")
    names = t.names
    if list(points.columns[:len(names)]) == list(names):
        for c in t.columns:
            dt = points[c.name].dtype
            if c.dtype == schema.STR:
                if dt == object or not pd.api.types.is_string_dtype(dt):
                    break
            elif str(dt) != c.dtype:
                break
        else:
            return points
    return schema.coerce(points, "points")


def user_codes(user_id: pd.Series) -> tuple[np.ndarray, object]:
    """``pd.factorize(user_id, sort=True)``, in one pass when the ids are already in order.

    Points from a reader or from :func:`clean_points` are sorted by user: then the codes are
    a cumulative count of the changes between neighbours and the sorted uniques are the first
    id of each run, with no hashing of a million strings. Anything else (nulls, unsorted
    ids, no Arrow storage) goes through ``pd.factorize``.

    A reader computes these codes while finishing its table
    (:attr:`emission_ext.io._common.RawData.user_codes`); callers hand them on explicitly
    (:func:`clean_points_coded` ``codes=``) instead of asking again.
    """
    arr = getattr(user_id.array, "_pa_array", None)
    n = len(user_id)
    if arr is not None and n > 1 and arr.null_count == 0:
        import pyarrow as pa  # present: the ids are stored by Arrow
        import pyarrow.compute as pc

        try:
            if isinstance(arr, pa.ChunkedArray):  # combine_chunks copies even one chunk
                arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
            a, b = arr.slice(0, n - 1), arr.slice(1)
            # one pass over the ids: where they change; sorted if they rise at every change
            at = np.flatnonzero(pc.not_equal(a, b).to_numpy(zero_copy_only=False))
            idx = pa.array(at)
            if pc.all(pc.less(a.take(idx), b.take(idx))).as_py() is not False:
                return codes_from_starts(user_id, np.r_[0, at + 1])
        except (ImportError, TypeError, ValueError, pa.ArrowException):
            pass
    return pd.factorize(user_id, sort=True)


def codes_from_starts(user_id: pd.Series, starts) -> tuple[np.ndarray, pd.Index]:
    """:func:`user_codes` of ids sorted in runs starting at rows ``starts``
    (rising, the first 0, each run's id above the previous one's): ``(codes, users)``
    without looking at the ids again, but for the one per run that names it."""
    starts = np.asarray(starts, dtype=np.intp)
    n = len(user_id)
    if starts.size == 0 or starts[0] != 0 or starts[-1] >= n:
        raise ValueError(f"user run starts do not fit {n} rows")
    codes = np.repeat(np.arange(starts.size, dtype=np.intp), np.diff(np.r_[starts, n]))
    return codes, pd.Index(user_id.iloc[starts].array, dtype=user_id.dtype)


REASONS = ("invalid", "duplicate", "inaccurate", "jump")

#: Jump detection works on blocks of whole users of about this many points (bounds memory).
BLOCK_POINTS = 200_000


@dataclass(frozen=True)
class CleanParams:
    """Cleaning thresholds.

    Attributes
    ----------
    max_accuracy_m : float
        Fixes with a larger reported accuracy radius (metres) are dropped (cell/wifi fixes).
    min_jump_speed_mps : float
        Lower clip of the robust jump threshold, m/s (no car or train is removed below it).
    max_speed_mps : float
        Upper clip of the threshold, m/s (faster than an airliner is always a jump).
    iqr_k : float
        ``k`` of the upper fence ``Q3 + k * IQR`` of a user's step speeds.
    jump_passes : int
        Passes of jump removal (a burst of jumps is removed one layer per pass).
    """

    max_accuracy_m: float = 200.0
    min_jump_speed_mps: float = 50.0
    max_speed_mps: float = 300.0
    iqr_k: float = 3.0
    jump_passes: int = 3


def _robust_threshold(speed: np.ndarray, valid: np.ndarray, codes: np.ndarray, ngroups: int,
                      p: CleanParams) -> np.ndarray:
    """Per-group jump threshold (m/s), one value per group."""
    thr = np.full(ngroups, p.min_jump_speed_mps)
    if not valid.any():
        return thr
    g = codes[valid]  # non-decreasing: points are in (user, time) order
    v = speed[valid]
    bounds = np.searchsorted(g, np.arange(ngroups + 1))
    for k in range(ngroups):  # one iteration per user, numpy inside
        if bounds[k + 1] > bounds[k]:
            q1, q3 = np.quantile(v[bounds[k]:bounds[k + 1]], [0.25, 0.75])
            thr[k] = np.clip(q3 + p.iqr_k * (q3 - q1), p.min_jump_speed_mps, p.max_speed_mps)
    return thr


def _jumps(lat: np.ndarray, lon: np.ndarray, t: np.ndarray, codes: np.ndarray,
           thr_of_group: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Boolean mask of jump fixes among sorted points (one pass)."""
    n = lat.size
    out = np.zeros(n, dtype=bool)
    if n < 3:
        return out
    # d[k]: step k -> k+1, metres
    dt = np.diff(t)
    v = np.where(dt > 0, d / np.maximum(dt, 1e-9), np.where(d > 0, np.inf, 0.0))
    same = codes[1:] == codes[:-1]
    v = np.where(same, v, 0.0)
    d = np.where(same, d, 0.0)
    thr = thr_of_group[codes[1:-1]]
    v_in, v_out = v[:-1], v[1:]
    d_in, d_out = d[:-1], d[1:]
    # distance between the two neighbours of each interior point, needed only where the
    # speeds in and out are both above the threshold (a few points, not all of them)
    cand = np.flatnonzero((v_in > thr) & (v_out > thr))
    d_skip = fast_distance_m(lat[cand], lon[cand], lat[cand + 2], lon[cand + 2])
    out[1 + cand[d_skip < 0.5 * (d_in[cand] + d_out[cand])]] = True
    return out


def _jump_pass(la, lo, tt, cc, params: CleanParams) -> np.ndarray:
    """One pass of jump detection over sorted points of whole users."""
    d = fast_distance_m(la[:-1], lo[:-1], la[1:], lo[1:])
    dt = np.diff(tt)
    same = cc[1:] == cc[:-1]
    valid = same & (dt > 0)
    v = np.zeros(d.size)
    v[valid] = d[valid] / dt[valid]
    g0 = int(cc.min())
    thr = _robust_threshold(v, valid & (d > 0), cc[1:] - g0, int(cc.max()) - g0 + 1, params)
    return _jumps(la, lo, tt, cc - g0, thr, d)


def clean_points(points: pd.DataFrame, params: CleanParams = CleanParams()
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop invalid, duplicate, inaccurate and jumping fixes; sort by user and time.

    See :func:`clean_points_coded` (the same, plus the user codes of the clean points).
    """
    clean, removed, _ = clean_points_coded(points, params)
    return clean, removed


def clean_points_coded(points: pd.DataFrame, params: CleanParams = CleanParams(),
                       codes: tuple[np.ndarray, object] | None = None
                       ) -> tuple[pd.DataFrame, pd.DataFrame, tuple[np.ndarray, object]]:
    """Drop invalid, duplicate, inaccurate and jumping fixes; sort by user and time.

    Parameters
    ----------
    points : DataFrame
        Schema ``points`` table (one or many users; any order). Extra columns are kept.
    params : CleanParams
        Thresholds (metres, m/s).
    codes : (codes, users), optional
        :func:`user_codes` of ``points["user_id"]`` when the caller has them (a reader's
        :attr:`~emission_ext.io._common.RawData.user_codes`); computed here otherwise.

    Returns
    -------
    clean : DataFrame
        Schema-typed points sorted by ``user_id``, ``ts``, with a fresh RangeIndex.
    removed : DataFrame
        The dropped rows (same columns) plus ``reason`` (one of :data:`REASONS`).
    coded : (codes, users)
        :func:`user_codes` of ``clean["user_id"]``, already computed here, so that
        :func:`pipeline.trips.make_track` need not redo it (None when there are no valid
        points: the sort left nothing to reuse).

    Raises
    ------
    ValueError
        ``codes`` has not one code per point.
    """
    pts = as_points(points)
    n = len(pts)
    reason = np.zeros(n, dtype=np.int8)  # 0 kept, else 1 + index into REASONS
    if n == 0:
        return pts.reset_index(drop=True), pts.assign(reason=pd.Series([], dtype="str")), None
    lat = pts["lat"].to_numpy(dtype="float64", na_value=np.nan)
    lon = pts["lon"].to_numpy(dtype="float64", na_value=np.nan)
    tsv = pts["ts"].isna().to_numpy()
    invalid = (tsv | ~np.isfinite(lat) | ~np.isfinite(lon) | (np.abs(lat) > 90) | (np.abs(lon) > 180)
               | ((lat == 0) & (lon == 0)) | pts["user_id"].isna().to_numpy())
    reason[invalid] = 1
    acc = pts["accuracy_m"].to_numpy(dtype="float64", na_value=np.nan)
    if codes is None:
        codes = user_codes(pts["user_id"])
    elif len(codes[0]) != n:
        raise ValueError(f"codes: {len(codes[0])} user codes for {n} points")
    codes, users = codes
    codes = codes.astype(np.int32)
    tsi = np.where(tsv, 0, pts["ts"].to_numpy(dtype="datetime64[ns]").astype("int64"))
    # order the valid points by (user, time); ``ident``: every point valid and in order
    # already (the usual case), so ``order`` is 0..n-1 and gathers by it become the arrays
    # themselves (and slices below), with the same values
    if invalid.any():
        valid_idx = np.flatnonzero(~invalid)
        o = _user_time_order(codes[valid_idx], tsi[valid_idx])
        order, ident = (valid_idx if o is None else valid_idx[o]), False
    else:
        o = _user_time_order(codes, tsi)
        ident = o is None
        order = np.arange(n) if ident else o
    # duplicates: same user and timestamp; keep the most accurate one
    c_o, t_o = (codes, tsi) if ident else (codes[order], tsi[order])
    new_key = np.r_[True, (c_o[1:] != c_o[:-1]) | (t_o[1:] != t_o[:-1])]
    if not new_key.all():
        ident = False
        acc_o = acc[order]
        acc_o = np.where(np.isfinite(acc_o), acc_o, np.inf)
        run = np.cumsum(new_key) - 1
        best = np.minimum.reduceat(acc_o, np.flatnonzero(new_key))
        cand = np.flatnonzero(acc_o == best[run])
        _, first = np.unique(run[cand], return_index=True)
        keep = np.zeros(order.size, dtype=bool)
        keep[cand[first]] = True
        reason[order[~keep]] = 2
        order = order[keep]
    acc_o = acc if ident else acc[order]
    bad_acc = np.isfinite(acc_o) & (acc_o > params.max_accuracy_m)
    if bad_acc.any():
        reason[order[bad_acc]] = 3
        keep_idx, ident = order[~bad_acc], False
    else:
        keep_idx = order

    # jump removal on the surviving points, in (user, ts) order, a block of users at a time
    # (bounded memory: the work arrays never exceed BLOCK_POINTS points)
    t_all = tsi.astype("float64") / 1e9
    kc = codes if ident else codes[keep_idx]
    cut = np.flatnonzero(np.r_[True, kc[1:] != kc[:-1]])
    del kc
    blocks, start = [], 0
    for u in range(1, cut.size + 1):  # one iteration per user
        end = cut[u] if u < cut.size else keep_idx.size
        if end - cut[start] > BLOCK_POINTS or u == cut.size:
            lo_i = cut[start]
            blocks.append((lo_i, end))
            start = u
    kept, contiguous = [], ident  # keep_idx is 0..n-1: a block's rows are a slice
    for lo_i, hi_i in blocks:
        idx = keep_idx[lo_i:hi_i]
        jm_all = np.zeros(idx.size, dtype=bool)
        for _ in range(max(0, params.jump_passes)):
            if contiguous and not jm_all.any():  # rows lo_i..hi_i themselves: views
                if idx.size < 3:
                    break
                sl = slice(lo_i, hi_i)
                jm = _jump_pass(lat[sl], lon[sl], t_all[sl], codes[sl], params)
            else:
                cur = idx[~jm_all]
                if cur.size < 3:
                    break
                jm = _jump_pass(lat[cur], lon[cur], t_all[cur], codes[cur], params)
            if not jm.any():
                break
            jm_all[np.flatnonzero(~jm_all)[jm]] = True
        if jm_all.any():
            reason[idx[jm_all]] = 4
            kept.append(idx[~jm_all])
            ident = False
        else:
            kept.append(idx)
    keep_idx = np.concatenate(kept) if kept else keep_idx

    removed_mask = reason > 0
    if ident or (keep_idx.size == n and np.all(keep_idx[1:] > keep_idx[:-1])):
        clean = pts.reset_index(drop=True)  # nothing dropped, already in order: no copy
    else:
        clean = pts.iloc[keep_idx].reset_index(drop=True)
    removed = pts.loc[removed_mask].copy()
    names = np.array(("",) + REASONS, dtype=object)
    removed["reason"] = pd.Series(names[reason[removed_mask]], index=removed.index, dtype="str")
    coded = None
    if keep_idx.size:  # the kept users, renumbered 0..U-1 in order (as user_codes numbers them)
        kc = (codes if ident else codes[keep_idx]).astype(np.intp)
        present = np.flatnonzero(np.bincount(kc, minlength=len(users)))
        if present.size == len(users):
            coded = (kc, users)
        else:
            renum = np.zeros(len(users), dtype=np.intp)
            renum[present] = np.arange(present.size)
            coded = (renum[kc], users[present])
    return clean, removed.reset_index(drop=True), coded
