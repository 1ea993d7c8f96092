"""Joins and lookups bucket: each output row pairs one row of each input (``merge``, ``join``) or looks a value up
through a key (``Series.map``); the join keys are control.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..relations import Part
from .base import (as_tracked, attach, col_control, column_rows, guard_depth, elementwise, fallback, guard, hashable,
                   is_tracked_frame, lineage_of, remap)


def _merge(left, right, kw, join=None):
    """``left.merge(right, **kw)`` with row-id columns carried through pandas' own join."""
    lin_l = lineage_of(left)
    if not isinstance(right, pd.DataFrame):
        right = right.to_frame() if isinstance(right, pd.Series) else right
    lin_r = lineage_of(right)
    res, sel_l, sel_r = _join_rows(left, right, kw, join)
    res = as_tracked(res)
    nidx = res.index.nlevels
    ncols = res.shape[1]
    # which output column comes from which input column
    sfx = kw.get("suffixes") or ("", "")
    lcols, rcols = list(left.columns), list(right.columns)
    how = kw.get("how", "inner")
    on = kw.get("on")
    if join is None and on is None and kw.get("left_on") is None and not kw.get("left_index") and \
            not kw.get("right_index") and how != "cross":
        on = [c for c in lcols if c in rcols]
    on_list = [] if on is None else (list(on) if isinstance(on, (list, tuple)) else [on])
    shared_keys = [k for k in on_list if k in lcols and k in rcols]
    if kw.get("left_on") is not None and kw.get("right_on") is not None:
        lo = kw["left_on"] if isinstance(kw["left_on"], list) else [kw["left_on"]]
        ro = kw["right_on"] if isinstance(kw["right_on"], list) else [kw["right_on"]]
        shared_keys += [a for a, b in zip(lo, ro) if hashable(a) and a == b and a in lcols and b in rcols]
    overlap = (set(lcols) & set(rcols)) - set(shared_keys)
    lmap, rmap = {}, {}
    for j, c in enumerate(lcols):
        lmap.setdefault(suffixed(c, sfx[0], overlap), []).append(j)
    for j, c in enumerate(rcols):
        if c in shared_keys:
            lab = c
        else:
            lab = suffixed(c, sfx[1], overlap)
        rmap.setdefault(lab, []).append(j)
    crow_l = [-1] * (nidx + ncols)
    crow_r = [-1] * (nidx + ncols)
    extra_r = {}
    reasons = []
    for j, lab in enumerate(res.columns):
        a = lmap.get(lab)
        b = rmap.get(lab)
        if a is None and b is None:
            if kw.get("indicator") and lab in ("_merge", kw.get("indicator")):
                continue
            reasons.append(f"merge output column {lab!r} could not be matched to an input column")
            continue
        if a is not None:
            if len(a) > 1:
                reasons.append("merge of frames with duplicated column labels")
            crow_l[nidx + j] = lin_l.nidx + a[0]
        if b is not None:
            if len(b) > 1:
                reasons.append("merge of frames with duplicated column labels")
            if crow_r[nidx + j] == -1:
                crow_r[nidx + j] = lin_r.nidx + b[0] if lin_r is not None else -1
            extra_r[j] = b[0]
    # the index: kept from the left on left_index joins (join), from the right on right_index-only merges
    if kw.get("left_index") and not kw.get("right_index"):
        for i in range(min(nidx, lin_l.nidx)):
            crow_l[i] = i
    elif kw.get("left_index") and kw.get("right_index"):
        for i in range(min(nidx, lin_l.nidx)):
            crow_l[i] = i
            if lin_r is not None and i < lin_r.nidx:
                crow_r[i] = i
    # index joins: the key column of a column-to-index join also derives from the other side's index level
    lkeys, rkeys = _join_keys(kw, on_list, join)
    cols_u = res.columns.is_unique
    if kw.get("right_index") and not kw.get("left_index") and lin_r is not None and cols_u:
        for i, lab in enumerate(lkeys):
            if i < lin_r.nidx and hashable(lab) and lab in res.columns:
                crow_r[nidx + int(res.columns.get_loc(lab))] = i
        rkeys_rows = list(range(lin_r.nidx))
    else:
        rkeys_rows = None
    lkeys_rows = None
    if kw.get("left_index") and not kw.get("right_index") and cols_u:
        for i, lab in enumerate(rkeys):
            if i < lin_l.nidx and hashable(lab) and lab in res.columns:
                crow_l[nidx + int(res.columns.get_loc(lab))] = i
        lkeys_rows = list(range(lin_l.nidx))
    if kw.get("left_index") and kw.get("right_index"):
        lkeys_rows = list(range(lin_l.nidx))
        rkeys_rows = list(range(lin_r.nidx)) if lin_r is not None else None
    parts = remap(lin_l, crow_l, sel_l)
    if lin_r is not None:
        parts += remap(lin_r, crow_r, sel_r)
    # control: the join keys of both rows chose the pairing
    ncells = nidx + ncols
    lrows = lkeys_rows if lkeys_rows is not None else (column_rows(left, lkeys) if lkeys else [])
    if lrows:
        parts += col_control(lin_l, sel_l, lrows, ncells)
    if lin_r is not None:
        rrows = rkeys_rows if rkeys_rows is not None else (column_rows(right, rkeys) if rkeys else [])
        if rrows:
            parts += col_control(lin_r, sel_r, rrows, ncells)
    return attach(res, parts, "merge" if join is None else "join", [left, right] if lin_r else [left], reasons,
                   detail=f"how={how}")


def _join_rows(left, right, kw, join):
    """Run the join and find, for every output row, its left and right input rows (-1: none).

    pandas' own join planner gives the row indexers (the ones it computes anyway); when that is not
    available (a cross join, another pandas version), row-id columns are carried through the join.
    """
    lp = pd.DataFrame(left, copy=False)
    rp = pd.DataFrame(right, copy=False)
    if join is None and kw.get("how") != "cross":
        try:
            from pandas.core.reshape.merge import _MergeOperation
            op = _MergeOperation(lp, rp, **kw)  # what pandas' merge builds (validate checks here)
            # one join: the result of pandas' own plan, with the row indexers it computes on the way
            seen = []
            plan = op._get_join_info

            def _plan():
                seen.append(plan())
                return seen[-1]

            op._get_join_info = _plan
            res = op.get_result()
            if len(seen) != 1:
                raise TypeError("pandas' merge planned more than one join")
            _, li, ri = seen[0]
            n = len(res)
            sel_l = np.arange(n, dtype=np.int64) if li is None else np.asarray(li, np.int64)
            sel_r = np.arange(n, dtype=np.int64) if ri is None else np.asarray(ri, np.int64)
            if len(sel_l) == n and len(sel_r) == n:
                return as_tracked(res), sel_l, sel_r
        except (ImportError, AttributeError, TypeError, ValueError):
            pass
    tag = f"__whence_row_{id(kw)}"
    lt, rt = tag + "_l", tag + "_r"
    l2 = lp.copy(deep=False)
    l2[lt] = np.arange(len(left), dtype=np.int64)
    r2 = rp.copy(deep=False)
    r2[rt] = np.arange(len(right), dtype=np.int64)
    if join is None:
        res = pd.DataFrame.merge(l2, r2, **kw)
    else:
        on, jkw = join
        res = pd.DataFrame.join(l2, r2, on=on, how=kw["how"], **jkw)
    sel_l = res.pop(lt).to_numpy(dtype=np.float64, na_value=-1).astype(np.int64)
    sel_r = res.pop(rt).to_numpy(dtype=np.float64, na_value=-1).astype(np.int64)
    return as_tracked(res), sel_l, sel_r


def suffixed(c, s, overlap):
    if c in overlap and s:
        return f"{c}{s}"
    return c


def _join_keys(kw, on_list, join):
    if join is not None:
        on = join[0]
        lk = [] if on is None else (list(on) if isinstance(on, list) else [on])
        return lk, []
    if on_list:
        return on_list, on_list
    lo = kw.get("left_on")
    ro = kw.get("right_on")
    lk = [] if lo is None else (list(lo) if isinstance(lo, list) else [lo])
    rk = [] if ro is None else (list(ro) if isinstance(ro, list) else [ro])
    return [k for k in lk if hashable(k)], [k for k in rk if hashable(k)]


class SeriesLookups:

    def map(self, arg, na_action=None):
        """``Series.map``: row i derives from the key cell i; through a tracked Series, also from the cell
        looked up (data) and the index cell that matched (control)."""
        if guard_depth():
            return super().map(arg, na_action)
        with guard:
            res = elementwise(super().map(arg, na_action), "map", [self])
            if is_tracked_frame(arg) and isinstance(arg, pd.Series):
                return _lookup(self, arg, res, na_action)
            return res


class FrameJoins:

    def merge(self, right, how="inner", on=None, left_on=None, right_on=None, left_index=False,
              right_index=False, sort=False, suffixes=("_x", "_y"), copy=pd.api.extensions.no_default,
              indicator=False, validate=None):
        kw = dict(how=how, on=on, left_on=left_on, right_on=right_on, left_index=left_index,
                  right_index=right_index, sort=sort, suffixes=suffixes, indicator=indicator, validate=validate)
        if guard_depth():
            return super().merge(right, **kw)
        with guard:
            return _merge(self, right, kw)

    def join(self, other, on=None, how="left", **kwargs):
        if guard_depth():
            return super().join(other, on=on, how=how, **kwargs)
        with guard:
            if isinstance(other, (list, tuple)):
                res = super().join(other, on=on, how=how, **kwargs)
                return fallback(res, "join with a list", [self, *other])
            if isinstance(other, pd.Series):
                other = other.to_frame()
            sfx = kwargs.get("suffixes") or (kwargs.get("lsuffix", ""), kwargs.get("rsuffix", ""))
            kw = dict(how=how, left_on=on, right_index=True, left_index=on is None, sort=kwargs.get("sort", False),
                      suffixes=tuple(sfx), validate=kwargs.get("validate"))
            return _merge(self, other, kw, join=(on, kwargs))


def _lookup(key, table, res, na_action):
    """Add to ``res`` (``key.map(table)``) the looked-up cells of ``table``: its value (data) and the index
    cell that matched (control)."""
    tlin = lineage_of(table)
    try:
        with guard:
            pos = np.asarray(table.index.get_indexer(pd.Index(pd.Series.array.fget(key))), np.int64)
    except Exception:  # a non-unique lookup index (pandas raises on it), or keys it cannot match
        return fallback(res, "map", [key, table])
    if na_action == "ignore":
        pos[np.asarray(pd.isna(pd.Series.array.fget(key)), bool)] = -1
    rlin = lineage_of(res)
    nidx = rlin.nidx
    parts = list(rlin.parts)
    for p in tlin.parts:
        rel = p.rel.take(pos)
        if p.wide:
            parts.append(p.with_(rel=rel))
            continue
        val = p.cmat[tlin.nidx:].any(0)
        if val.any():
            cm = np.zeros((nidx + 1, val.shape[0]), bool)
            cm[nidx] = val
            parts.append(Part(p.node, rel, cm, p.control))
        idx = p.cmat[:tlin.nidx].any(0)
        if idx.any():
            parts.append(Part(p.node, rel, idx[None, :].copy(), True, wide=True))
    return attach(res, parts, "map", [key, table])
