"""Reshapes bucket: cells moved to other positions (``set_index``, ``reset_index``, ``melt``, ``pivot_table``,
``to_frame``, ``rename``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..relations import LazyCSR, Part, RowRel
from .groups import same_cells
from .base import (attach, attach_inplace, column_rows, guard_depth, fallback, guard, hashable, remap, rows_union,
                   is_tracked_frame, lineage_of)


def _melt_lineage(src, res, id_vars, value_vars, ignore_index):
    lin = lineage_of(src)
    cols = src.columns
    if not cols.is_unique or not ignore_index:
        return fallback(res, "melt", [src])
    ids = [] if id_vars is None else (list(id_vars) if isinstance(id_vars, (list, tuple)) else [id_vars])
    if value_vars is None:
        vals = [c for c in cols if c not in ids]
    else:
        vals = list(value_vars) if isinstance(value_vars, (list, tuple)) else [value_vars]
    n = len(src)
    if len(res) != n * len(vals) or res.shape[1] != len(ids) + 2:
        return fallback(res, "melt", [src])
    nidx = res.index.nlevels
    ncells = nidx + res.shape[1]
    base = np.tile(np.arange(n, dtype=np.int64), len(vals))
    parts = []
    crow = [-1] * nidx + [lin.nidx + int(cols.get_loc(c)) for c in ids] + [-1, -1]
    parts += remap(lin, crow, base)
    for k, v in enumerate(vals):
        sel = np.full(n * len(vals), -1, np.int64)
        sel[k * n:(k + 1) * n] = np.arange(n)
        crow = [-1] * (ncells - 1) + [lin.nidx + int(cols.get_loc(v))]
        parts += remap(lin, crow, sel)
    return attach(res, parts, "melt", [src])


def _key_parts(k, n, level, ncells):
    """Parts giving index level ``level`` the lineage of the key values ``k`` (taken by position)."""
    from ...tracked import TrackedArray
    from .values import plain_lineage, plain_node, warn_constant
    vlin = lineage_of(k)
    if vlin is None and isinstance(k, (pd.Index, np.ndarray)):
        vlin = plain_lineage(k)
        node = plain_node(k) if vlin is None else None
        if node is not None and len(node.shape) == 1 and node.shape[0] == n:
            cm = np.zeros((ncells, 1), bool)
            cm[level] = True
            return [Part(node, RowRel.identity(n), cm)]
    if vlin is not None and vlin.n == n:
        out = []
        for p in vlin.parts:
            if p.wide:
                out.append(p)
                continue
            row = p.data_row(vlin.nidx)
            if row.any():
                cm = np.zeros((ncells, row.shape[0]), bool)
                cm[level] = row
                out.append(Part(p.node, p.rel, cm, p.control))
        return out
    if isinstance(k, TrackedArray) and k.ndim == 1 and k.shape[0] == n:
        cm = np.zeros((ncells, 1), bool)
        cm[level] = True
        return [Part(k.node, RowRel.identity(n), cm)]
    if vlin is not None or isinstance(k, TrackedArray):  # another length: all its cells (PARTIAL)
        nodes = [(p.node, p.cmat.any(0)) for p in vlin.parts] if vlin is not None else \
            [(k.node, np.ones(1 if k.ndim < 2 else k.shape[1], bool))]
        return [Part(nd, RowRel.everything(n, nd.shape[0] if nd.shape else 1), row[None, :].copy(), wide=True)
                for nd, row in nodes]
    if not isinstance(k, (range, pd.RangeIndex)):
        warn_constant("the index", k)
    return []


def _stack_lineage(src, res, args, kwargs):
    lin = lineage_of(src)
    level = kwargs.get("level", args[0] if args else -1)
    if not isinstance(res, pd.Series) or isinstance(src.columns, pd.MultiIndex) or level not in (-1, 0) or \
            not src.columns.is_unique:
        return fallback(res, "stack", [src])
    n, k = src.shape
    # positions carried through the same stack, with the frame's missing cells (pandas 2.x drops them)
    pos = pd.DataFrame(np.arange(n * k, dtype=np.float64).reshape(n, k), index=pd.RangeIndex(n),
                       columns=pd.RangeIndex(k))
    pos = pos.mask(pd.DataFrame(src).isna().to_numpy())
    try:
        flat = pd.DataFrame.stack(pos, *args, **kwargs)
    except Exception:
        return fallback(res, "stack", [src])
    if len(flat) != len(res):
        return fallback(res, "stack", [src])
    f = flat.to_numpy(dtype=np.float64)
    if np.isnan(f).any():  # a missing cell kept by the stack: its position from the index instead
        f = np.asarray(flat.index.get_level_values(0), np.float64) * k + \
            np.asarray(flat.index.get_level_values(-1), np.float64)
    f = f.astype(np.int64)
    rows, cols = np.divmod(f, k)
    nidx = res.index.nlevels
    parts = []
    crow = list(range(lin.nidx)) + [-1] * (nidx - lin.nidx) + [-1]
    if len(crow) == nidx + 1:
        parts += remap(lin, crow, rows)
    for j in range(k):
        sel = np.where(cols == j, rows, -1)
        if (sel >= 0).any():
            parts += remap(lin, [-1] * nidx + [lin.nidx + j], sel)
    return attach(res, parts, "stack", [src])


def crosstab_lineage(res, index, columns):
    """``pd.crosstab(a, b)`` (counts): cell (r, c) derives from the cells of ``a`` and ``b`` in the rows counted
    into it; index cell r from the cells of ``a`` in the rows of r."""
    a, b = index, columns
    if not a.index.equals(b.index):
        return None
    ca = np.asarray(res.index.get_indexer(pd.Index(pd.Series.array.fget(a))), np.int64)
    cb = np.asarray(res.columns.get_indexer(pd.Index(pd.Series.array.fget(b))), np.int64)
    ok = (ca >= 0) & (cb >= 0)
    nres, nidx = len(res), res.index.nlevels
    parts = []
    for s in (a, b):
        lin = lineage_of(s)
        for p in lin.parts:
            row = p.data_row(lin.nidx)
            if not row.any():
                continue
            for j in range(res.shape[1]):
                g = np.where(ok & (cb == j), ca, -1)
                if not (g >= 0).any():
                    continue
                cm = np.zeros((nidx + res.shape[1], row.shape[0]), bool)
                cm[nidx + j] = row
                parts.append(Part(p.node, p.rel.group(g, nres), cm, p.control))
            if s is a and nidx == 1:
                cm = np.zeros((nidx + res.shape[1], row.shape[0]), bool)
                cm[0] = row
                parts.append(Part(p.node, p.rel.group(np.where(ok, ca, -1), nres), cm, p.control))
    return parts


_PIVOT_ARGS = ("values", "index", "columns", "aggfunc", "fill_value", "margins", "dropna", "margins_name",
               "observed", "sort")


def _as_list(v):
    return [] if v is None else (list(v) if isinstance(v, (list, tuple)) else [v])


def _pivot_via_groupby(src, res, kw):
    """``pivot_table`` with keys given as values (arrays, Series, ``df.index.month``): the same table built by
    the tracked ``groupby(index + columns)[values].<aggfunc>()`` and ``unstack`` of the column keys (the rules
    of those, keys given as values included), each cell of ``res`` read from the cell with its labels.  None
    (the label rule or PARTIAL) for margins, an aggfunc that is not a name, or a table whose labels or values
    differ from pandas' own."""
    aggfunc = kw.get("aggfunc", "mean")
    if kw.get("margins") or not isinstance(res, pd.DataFrame) or not isinstance(aggfunc, str) or \
            not res.index.is_unique or not res.columns.is_unique:
        return None
    idx, cls_ = _as_list(kw.get("index")), _as_list(kw.get("columns"))
    values = kw.get("values")
    keys = idx + cls_
    labels = [k for k in keys if hashable(k)]
    sel = values if values is not None else [c for c in src.columns if c not in labels]
    gkw = {k: kw[k] for k in ("observed", "sort") if k in kw}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandas' default of observed, as pivot_table's
            t = getattr(src.groupby(keys, dropna=kw.get("dropna", True), **gkw)[sel], aggfunc)()
            if cls_:
                t = t.unstack(list(range(len(idx), len(keys))))
            if isinstance(t, pd.Series):
                t = t.to_frame()
    except Exception:  # noqa: BLE001  (pandas built the table its own way: the label rule decides)
        return None
    if not isinstance(t, pd.DataFrame) or t.index.nlevels != res.index.nlevels or not t.index.is_unique or \
            not t.columns.is_unique:
        return None
    rpos = np.asarray(t.index.get_indexer(res.index), np.int64)
    cpos = np.asarray(t.columns.get_indexer(res.columns), np.int64)
    if (rpos < 0).any() or (cpos < 0).any():
        return None
    with guard:
        mine = pd.DataFrame.to_numpy(t, dtype=object)[np.ix_(rpos, cpos)] if len(rpos) and len(cpos) else None
        theirs = pd.DataFrame.to_numpy(res, dtype=object)
    if mine is not None:
        fill = kw.get("fill_value")
        if fill is not None:  # a fill value: pandas' constant where the table has no value
            mine = mine.copy()
            mine[pd.isna(mine) & ~pd.isna(theirs)] = fill
        if not same_cells(mine, theirs):
            return None
    tl = lineage_of(t)
    crow = list(range(tl.nidx)) + [tl.nidx + int(c) for c in cpos]
    return attach(res, remap(tl, crow, rpos), "pivot_table", [src, t])


def _with_margins(src, res, kw, op):
    """``pivot_table(..., margins=True)`` with keys named by label: the cells of the table proper by the label
    rule (the same call without margins), each margin cell (the ``margins_name`` row and column) from the rows
    pandas aggregates into it, found by running the same call on a frame whose value columns hold row positions
    (missing where the value is missing, so that ``dropna`` leaves out the same rows).  A margin cell reads the
    value cells of those rows; their key cells, which placed them, and the cells ``dropna`` checked are
    control.  None when a label is not found or the run on positions does not give one set per margin cell."""
    idx, cls_ = _as_list(kw.get("index")), _as_list(kw.get("columns"))
    vals = _as_list(kw.get("values")) or [c for c in src.columns if c not in idx + cls_]
    name = kw.get("margins_name", "All")
    if not src.columns.is_unique or not all(hashable(c) and c in src.columns for c in idx + cls_ + vals):
        return None
    if res.size == 0:  # no cell at all (every value missing)
        return attach(res, [], op, [src])
    lin = lineage_of(src)
    base_kw = {k: v for k, v in kw.items() if k != "margins"}
    nidx, ncols = res.index.nlevels, res.shape[1]
    direct = _margin_members(src, res, kw, idx, cls_, vals, name)
    if direct is not None:
        # the table proper is ``res`` less its margins: the label rule names no margin cell
        rsel, ccol, members_of = direct
        blin = lineage_of(_pivot_lineage(src, res, (), base_kw, op))
        if blin.reasons:
            return None
        parts = remap(blin, list(range(blin.nidx)) + [blin.nidx + int(c) if c >= 0 else -1 for c in ccol],
                      rsel)
    else:
        parts, rsel, ccol, members_of = _margins_by_positions(src, res, kw, idx, cls_, vals, base_kw, op)
        if parts is None:
            return None
    vrows = {v: column_rows(src, [v])[0] for v in vals}
    krows = column_rows(src, idx + cls_)
    multi = isinstance(res.columns, pd.MultiIndex) and len(vals) > 1
    for j in range(ncols):
        lab = res.columns[j]
        v = lab[0] if multi else (vals[0] if len(vals) == 1 else lab)
        if v not in vrows:
            return None
        margin_rows = np.flatnonzero(rsel < 0) if ccol[j] >= 0 else np.arange(len(res))
        if not margin_rows.size:
            continue
        members = members_of(margin_rows, j, v)
        if members is None:
            return None
        codes = np.full(len(res), -1, np.int64)
        codes[margin_rows] = np.arange(margin_rows.size)
        indptr = np.concatenate([[0], np.cumsum([m.size for m in members])]).astype(np.int64)
        indices = np.concatenate(members) if members else np.zeros(0, np.int64)
        for p in lin.parts:
            rel = RowRel(len(res), p.rel.n_src, codes, LazyCSR(indptr, indices))
            rel = _compose_rows(p.rel, rel)
            drow = p.cmat[0] if p.wide else p.cmat[vrows[v]]
            crow_ = p.cmat[0] if p.wide else rows_union(p, krows + [vrows[v]])
            for row, ctl in ((drow, p.control), (crow_, True)):
                if row.any():
                    cm = np.zeros((nidx + ncols, row.shape[0]), bool)
                    cm[nidx + j] = row
                    parts.append(Part(p.node, rel, cm, ctl))
    return attach(res, parts, op, [src])


def _margins_by_positions(src, res, kw, idx, cls_, vals, base_kw, op):
    """The table proper by the label rule on the same call without margins, and the rows of each margin cell
    read off the same call run on a frame whose value columns hold row positions: ``(parts, rsel, ccol,
    members_of)``, or ``(None, ...)`` where that does not give one set per margin cell."""
    none = (None, None, None, None)
    with guard:
        base = pd.DataFrame.pivot_table(src, **base_kw)
        # plain columns (pandas' own arrays, categoricals kept): the keys, and the values as positions,
        # missing where the value is (dropna leaves such rows out of the margins)
        pos = pd.DataFrame({c: pd.Series(pd.Series.array.fget(src[c])) for c in idx + cls_})
        for v in vals:
            keep = ~pd.isna(pd.Series.to_numpy(src[v])) if kw.get("dropna", True) else True
            pos[v] = np.where(keep, np.arange(len(src), dtype=float), np.nan)
        pkw = dict(kw, aggfunc=lambda x: " ".join(str(int(r)) for r in x if r == r) or np.nan, fill_value=None)
        try:
            with warnings.catch_warnings():  # pandas' warnings about this run are not the user's
                warnings.simplefilter("ignore")
                sets = pd.DataFrame.pivot_table(pos, **pkw)
        except Exception:  # noqa: BLE001  (pandas took the real call, not this one: PARTIAL)
            return none
    base_lin = _pivot_lineage(src, base, (), base_kw, op)
    blin = lineage_of(base_lin)
    if blin.reasons or not res.index.is_unique or not res.columns.is_unique or not sets.index.is_unique or \
            not sets.columns.is_unique:
        return none
    # a margin cell missing from the run on positions aggregated no value (only missing ones): no row
    srow = np.asarray(sets.index.get_indexer(res.index), np.int64)
    scol = np.asarray(sets.columns.get_indexer(res.columns), np.int64)
    rsel = np.asarray(base.index.get_indexer(res.index), np.int64)
    ccol = np.asarray(base.columns.get_indexer(res.columns), np.int64)
    if base.index.nlevels != res.index.nlevels:
        return none
    crow = list(range(blin.nidx)) + [blin.nidx + int(c) if c >= 0 else -1 for c in ccol]
    parts = remap(blin, crow, rsel)
    cells = pd.DataFrame.to_numpy(sets, dtype=object)

    def members_of(margin_rows, j, v):
        out = []
        for i in margin_rows:
            cell = cells[srow[i], scol[j]] if srow[i] >= 0 and scol[j] >= 0 else None
            out.append(np.array([int(t) for t in cell.split()], np.int64) if isinstance(cell, str) else
                       np.zeros(0, np.int64))
        return out
    return parts, rsel, ccol, members_of


def _margin_members(src, res, kw, idx, cls_, vals, name):
    """The rows of each margin cell of ``pivot_table(..., margins=True)`` read off the keys, as pandas builds
    the margins with ``dropna``: the rows whose keys and values are all present, those with the row's index
    keys for the margin column, those with the column's keys for the margin row, all of them for the corner.
    ``(rsel, ccol, members_of)``: -1 at the margin row and columns, the position elsewhere, and the rows of
    a value column's margin cells; None (the rows are found by running pandas on positions) for other
    cases: ``dropna=False``, an ``aggfunc`` that is not a name, no index or no column keys, or margins not
    found where pandas puts them."""
    if not kw.get("dropna", True) or not isinstance(kw.get("aggfunc", "mean"), str) or not idx or not cls_ or \
            not res.index.is_unique or not res.columns.is_unique:
        return None
    rkey = name if len(idx) == 1 else (name,) + ("",) * (len(idx) - 1)
    rows = np.asarray([lab == rkey for lab in res.index], bool)
    if rows.sum() != 1:
        return None
    cols, nk = res.columns, len(cls_)
    multi_values = isinstance(cols, pd.MultiIndex) and cols.nlevels == nk + 1
    if isinstance(cols, pd.MultiIndex) and cols.nlevels != nk + (1 if multi_values else 0):
        return None
    if not isinstance(cols, pd.MultiIndex) and nk != 1:
        return None
    first = [lab[1 if multi_values else 0] if isinstance(cols, pd.MultiIndex) else lab for lab in cols]
    mcols = np.asarray([f == name for f in first], bool)
    if not mcols.any():
        return None
    try:
        with guard:
            keys_i = pd.MultiIndex.from_frame(pd.DataFrame(src[idx])) if len(idx) > 1 else pd.Index(src[idx[0]])
            out_row = np.asarray(res.index.get_indexer(keys_i), np.int64)
            # each row's column keys, as codes of their distinct values (a tuple each)
            if nk > 1:
                kcodes, kvals = pd.factorize(pd.Series(list(src[cls_].itertuples(index=False, name=None)),
                                                       dtype=object))
                kvals = list(kvals)
            else:
                kcodes, kvals = pd.factorize(pd.DataFrame.__getitem__(src, cls_[0]).array)
                kvals = [(k,) for k in kvals]
            kcodes = np.asarray(kcodes, np.int64)
            keep = np.ones(len(src), bool)
            for c in idx + cls_ + list(vals):
                keep &= ~np.asarray(pd.isna(pd.DataFrame.__getitem__(src, c).array), bool)
    except Exception:  # noqa: BLE001  (keys whence cannot read: pandas is run on positions)
        return None
    where = {lab: j for j, lab in enumerate(cols) if not mcols[j]}  # a table column by its label
    rsel = np.where(rows, -1, np.arange(len(res))).astype(np.int64)
    ccol = np.where(mcols, -1, np.arange(len(cols))).astype(np.int64)
    kept = np.flatnonzero(keep)
    by_row, by_col = {}, {}

    def column_of_rows(v):
        """The table column of every kept row's keys for value column ``v`` (-1: none)."""
        got = by_col.get(v)
        if got is None:
            pre = (v,) if multi_values else ()
            lab = [pre + k if isinstance(cols, pd.MultiIndex) else k[0] for k in kvals]
            of_code = np.asarray([where.get(x, -1) for x in lab] + [-1], np.int64)
            got = by_col[v] = of_code[kcodes[kept]]  # (code -1, a missing key, reads the last: -1)
        return got

    def members_of(margin_rows, j, v):
        out = []
        for i in margin_rows:
            if rows[i] and mcols[j]:  # the corner: every row kept
                out.append(kept)
            elif mcols[j]:  # the margin column: the rows with the row's index keys
                m = by_row.get(i)
                if m is None:
                    m = by_row[i] = kept[out_row[kept] == i]
                out.append(m)
            else:  # the margin row: the rows with the column's keys
                out.append(kept[column_of_rows(v) == j])
        return out
    return rsel, ccol, members_of


def _compose_rows(inner, outer):
    """``outer`` (result rows to rows of the frame) followed by ``inner`` (rows of the frame to its input)."""
    if inner.is_identity:
        return outer
    ptr, src = outer.rows_per(np.arange(outer.n_out, dtype=np.int64))
    ptr2, src2 = inner.rows_per(src)
    return RowRel(outer.n_out, inner.n_src, None, LazyCSR(ptr2[ptr], src2))


def _value_cell_parts(src, res, lin, vals, vrows, cls_, keyrows, out_row):
    """Parts of the value cells of a pivot table by the label rule: cell ``(i, j)`` reads value column ``v``'s
    cells of the rows whose index keys are row ``i``'s and whose column keys are column ``j``'s (their key
    cells, which placed them, are control).  ``vrows``: the cmat rows of each value column."""
    nidx = res.index.nlevels
    rcols = res.columns
    parts = []
    inv, ck, shared, level0 = None, None, None, None
    multi_values = isinstance(rcols, pd.MultiIndex) and rcols.nlevels == len(cls_) + 1
    if cls_:
        # the column keys of the rows, factorized once for every value column
        ck = src[cls_].itertuples(index=False, name=None) if len(cls_) > 1 else src[cls_[0]]
        if isinstance(ck, pd.Series):  # each distinct key once, not once per row: then back to the rows
            inv, ck = pd.factorize(ck, use_na_sentinel=False)
        ck = list(ck)
        if multi_values:
            level0 = rcols.get_level_values(0)
    out_row_ok = out_row >= 0
    for v in vals:
        vrow = vrows[v]
        if cls_:
            if multi_values and v not in level0:
                continue  # a value column with no column in the table (all its cells missing): no cell
            if shared is not None:
                out_col = shared  # the same column keys for every value column
            else:
                if isinstance(rcols, pd.MultiIndex):
                    targets = [((v,) + (k if isinstance(k, tuple) else (k,))) if multi_values else
                               (k if isinstance(k, tuple) else (k,)) for k in ck]
                    out_col = rcols.get_indexer(pd.MultiIndex.from_tuples(targets, names=rcols.names)
                                                if targets else rcols[:0])
                else:
                    out_col = rcols.get_indexer(pd.Index(ck))
                out_col = np.asarray(out_col, np.int64)
                if inv is not None:
                    out_col = out_col[inv]
                if not multi_values:
                    shared = out_col
        else:
            j = rcols.get_indexer([v])[0] if v in rcols else -1
            out_col = np.full(len(src), j, np.int64)
        cols_j = np.unique(out_col[out_col >= 0])
        if not cols_j.size:
            continue
        rows = [(p, rows_union(p, vrow), rows_union(p, keyrows)) for p in lin.parts]
        rows = [(p, row, krow, row.any(), krow.any()) for p, row, krow in rows]
        for j in cols_j:
            g = np.where((out_col == j) & out_row_ok, out_row, -1)
            for p, row, krow, has_row, has_krow in rows:
                # the keys that put each row in the cell: control
                if not has_row and not has_krow:
                    continue
                rel = p.rel.group(g, len(res))
                if has_row:
                    cm = np.zeros((nidx + res.shape[1], row.shape[0]), bool)
                    cm[nidx + j] = row
                    parts.append(Part(p.node, rel, cm, p.control))
                if has_krow:
                    cm = np.zeros((nidx + res.shape[1], krow.shape[0]), bool)
                    cm[nidx + j] = krow
                    parts.append(Part(p.node, rel, cm, True))
    return parts


def _pivot_lineage(src, res, args, kwargs, op="pivot_table"):
    names = ["values", "index", "columns", "aggfunc", "fill_value", "margins", "dropna", "margins_name",
             "observed", "sort"]
    kw = dict(zip(names, args))
    kw.update(kwargs)
    values, index, columns = kw.get("values"), kw.get("index"), kw.get("columns")
    if kw.get("margins") and index is not None and isinstance(res, pd.DataFrame):
        out = _with_margins(src, res, kw, op)
        if out is not None:
            return out
    if kw.get("margins") or index is None or not isinstance(res, pd.DataFrame):
        return fallback(res, op, [src])
    lin = lineage_of(src)
    lst = lambda v: [] if v is None else (list(v) if isinstance(v, (list, tuple)) else [v])  # noqa: E731
    idx, cls_, vals = lst(index), lst(columns), lst(values)
    if not vals:
        vals = [c for c in src.columns if c not in idx + cls_]
    try:
        keys_i = pd.MultiIndex.from_frame(pd.DataFrame(src[idx])) if len(idx) > 1 else pd.Index(src[idx[0]])
        out_row = res.index.get_indexer(keys_i)
    except Exception:
        return fallback(res, op, [src])
    nidx = res.index.nlevels
    keyrows = column_rows(src, idx + cls_)
    if keyrows is None:
        return fallback(res, op, [src])
    vrows = {}
    for v in vals:
        vrow = column_rows(src, [v])
        if vrow is None:
            return fallback(res, op, [src])
        vrows[v] = vrow
    parts = _value_cell_parts(src, res, lin, vals, vrows, cls_, keyrows, out_row)
    # the index cells: the key cells of the rows grouped into each output row (rows with a missing
    # column key are left out by the group-by; rows whose values are all missing still formed the row)
    contrib = out_row >= 0
    if cls_:
        if src.columns.is_unique and all(hashable(c) and c in src.columns for c in cls_):
            for c in cls_:  # (column by column: no frame of the key columns built)
                contrib &= ~np.asarray(pd.isna(pd.DataFrame.__getitem__(src, c).array), bool)
        else:
            contrib &= pd.DataFrame(src[cls_]).notna().all(axis=1).to_numpy()
    krows = column_rows(src, idx)
    if krows:
        for p in lin.parts:
            cm = np.zeros((nidx + res.shape[1], p.cmat.shape[1]), bool)
            for i, kr in enumerate(krows[:nidx]):
                cm[i] = rows_union(p, [kr])
            if cm.any():
                parts.append(Part(p.node, p.rel.group(np.where(contrib, out_row, -1), len(res)), cm, p.control))
    return attach(res, parts, op, [src])


def _reset_index_columns(index, level, drop, lin):
    """Input cmat row (index levels first, -1 none) per result column of ``reset_index(level, drop)``, index
    levels first: the kept levels stay in the index (a new ``RangeIndex`` when none is kept: no cells), the
    removed ones become the first columns in level order unless ``drop``, then the data columns.  None when
    ``level`` names no level whence can place."""
    nl = index.nlevels
    if level is None:
        removed = list(range(nl))
    else:
        levels = level if isinstance(level, (list, tuple)) else [level]
        try:
            removed = sorted({index._get_level_number(lv) for lv in levels})
        except (KeyError, IndexError, ValueError, TypeError):
            return None
    kept = [i for i in range(nl) if i not in removed]
    crow = kept if kept else [-1]
    if not drop:
        crow = crow + removed
    return crow + [lin.nidx + j for j in range(lin.ncols)]


class SeriesReshapes:

    def reset_index(self, level=None, *, drop=False, **kw):
        if guard_depth() or not drop:
            # without ``drop`` pandas composes tracked methods: ``to_frame``, then the frame's ``reset_index``
            return super().reset_index(level, drop=drop, **kw)
        with guard:
            inplace = kw.get("inplace", False)
            lin = lineage_of(self)
            res = super().reset_index(level, drop=drop, **kw)
            target = self if inplace else res
            crow = _reset_index_columns(self.index, level, True, lin)
            if crow is None or len(crow) != target.index.nlevels + 1:
                return fallback(res, "reset_index", [self])
            parts = remap(lin, crow)
            if inplace:
                attach_inplace(self, parts, "reset_index", [lin])
                return None
            return attach(res, parts, "reset_index", [self])

    def to_frame(self, name=pd.api.extensions.no_default):
        if guard_depth():
            return super().to_frame(name)
        with guard:
            res = super().to_frame(name)
            return attach(res, lineage_of(self).parts, "to_frame", [self], merged=True)


class FrameReshapes:

    def pivot(self, *args, **kwargs):
        """``pivot``: each cell is copied from the one row with its (index, columns) pair (a pivot_table whose
        groups have one row each); without ``index`` (the frame's own index) it is opaque."""
        if guard_depth():
            return super().pivot(*args, **kwargs)
        with guard:
            res = super().pivot(*args, **kwargs)
            kw = dict(zip(["columns", "index", "values"], args))
            kw.update(kwargs)
            if kw.get("index") is None:
                return fallback(res, "pivot(index=None)", [self])
            return _pivot_lineage(self, res, (), {"index": kw["index"], "columns": kw.get("columns"),
                                                  "values": kw.get("values")}, op="pivot")

    def stack(self, *args, **kwargs):
        """``stack`` of single-level columns: value (row, column label) is the cell (row, column)."""
        if guard_depth():
            return super().stack(*args, **kwargs)
        with guard:
            res = super().stack(*args, **kwargs)
            return _stack_lineage(self, res, args, kwargs)

    def set_index(self, keys, **kwargs):
        if guard_depth():
            return super().set_index(keys, **kwargs)
        with guard:
            inplace = kwargs.pop("inplace", False)
            append = kwargs.get("append", False)
            lin = lineage_of(self)
            res = super().set_index(keys, **kwargs)
            klist = keys if isinstance(keys, list) else [keys]
            crow = list(range(lin.nidx)) if append else []
            reasons = []
            keyed = []  # (index level, a key given as values: Series, array, Index)
            for k in klist:
                if hashable(k) and k in self.columns:
                    crow.append(lin.nidx + int(self.columns.get_loc(k)))
                else:
                    keyed.append((len(crow), k))
                    crow.append(-1)
            pos = self.columns.get_indexer(res.columns) if self.columns.is_unique else None
            if pos is None or (pos < 0).any():
                return fallback(res, "set_index", [self])
            crow += [lin.nidx + int(p) for p in pos]
            parts = remap(lin, crow)
            for level, k in keyed:  # a key given as values: its lineage, by position
                parts += _key_parts(k, len(res), level, len(crow))
            if inplace:
                self._update_inplace(res)
                attach_inplace(self, parts, "set_index", [lin], reasons)
                return None
            return attach(res, parts, "set_index", [self], reasons)

    def reset_index(self, level=None, **kw):
        if guard_depth():
            return super().reset_index(level, **kw)
        with guard:
            inplace = kw.pop("inplace", False)
            drop = kw.get("drop", False)
            lin = lineage_of(self)
            res = super().reset_index(level, **kw)
            crow = _reset_index_columns(self.index, level, drop, lin)
            if crow is None or len(crow) != res.index.nlevels + res.shape[1]:
                return fallback(res, "reset_index", [self])
            parts = remap(lin, crow)
            if inplace:
                self._update_inplace(res)
                attach_inplace(self, parts, "reset_index", [lin])
                return None
            return attach(res, parts, "reset_index", [self])

    def rename(self, *args, **kwargs):
        if guard_depth():
            return super().rename(*args, **kwargs)
        with guard:
            lin = lineage_of(self)
            inplace = kwargs.pop("inplace", False)
            res = super().rename(*args, **kwargs)
            if inplace:
                self._update_inplace(res)
                attach_inplace(self, lin.parts, "rename", [lin])
                return None
            return attach(res, lin.parts, "rename", [self], merged=True)

    def melt(self, id_vars=None, value_vars=None, var_name=None, value_name="value", col_level=None,
             ignore_index=True):
        if guard_depth():
            return super().melt(id_vars, value_vars, var_name, value_name, col_level, ignore_index)
        with guard:
            res = super().melt(id_vars, value_vars, var_name, value_name, col_level, ignore_index)
            return _melt_lineage(self, res, id_vars, value_vars, ignore_index)

    def pivot_table(self, *args, **kwargs):
        if guard_depth():
            return super().pivot_table(*args, **kwargs)
        with guard:
            res = super().pivot_table(*args, **kwargs)
        kw = dict(zip(_PIVOT_ARGS, args))
        kw.update(kwargs)
        if any(not hashable(k) for k in _as_list(kw.get("index")) + _as_list(kw.get("columns"))):
            out = _pivot_via_groupby(self, res, kw)  # keys given as values: the tracked group-by and unstack
            if out is not None:
                return out
        with guard:
            return _pivot_lineage(self, res, args, kwargs)
