"""Whole-frame moves and statistics whose lineage is computed exactly: ``transpose`` / ``T``, ``unstack``,
``reindex``, ``reindex_like``, ``asfreq``, ``align``, ``duplicated``, ``mode``, ``corr`` and ``cov``.

Cell moves (``transpose``, ``unstack``, ``reindex``, ``reindex_like``, ``asfreq``, ``align``) run the very same pandas method,
with the same arguments, on a frame of *cell positions* (``row * ncols + column``, as floats; a fill value
becomes NaN): each cell of that result names the input cell that pandas copied there, NaN a constant.  So
``reindex(method="ffill")``, ``unstack(fill_value=0)`` and ``align(join="outer")`` follow pandas' own rules,
whatever they are.  The index cells of a reindexed result are those of the input row with the same label;
the remaining index levels of an ``unstack`` come from the index cells of the rows placed in that row, and
every index cell of the moved row is control of the moved cell (it chose the place: row and column); a
transposed frame has no index cells from the input (labels become column labels, which carry no cells).

Statistics:

* ``duplicated(subset, keep)``: cell ``i`` compares row ``i`` with the rows before it (``keep="first"``), after
  it (``"last"``) or all rows (``False``): it derives from the ``subset`` cells of those rows and of row ``i``,
  a window like a cumulative one;
* ``mode(axis=0)``: each cell derives from every cell of its column (all of them are counted); ``axis=1``:
  of its row;
* ``corr`` / ``cov``: cell ``(a, b)`` derives from every cell of columns ``a`` and ``b`` (the rows where
  either is missing are left out by their own cells, so all of them are read).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..relations import Lineage, Part, RangeRel, RowRel
from .base import attach, guard_depth, fallback, guard, remap, row_preserving, warn_partial, lineage_of
from .values import register_scalar

__all__ = ["install_moves", "MOVES"]

#: the method names whose lineage this module gives (registry buckets: reshapes, selection, windows,
#: reductions)
MOVES = ("transpose", "T", "unstack", "reindex", "reindex_like", "asfreq", "align", "duplicated", "mode", "corr",
         "cov")

#: more (input column, output column) pairs than this in a cell move: PARTIAL (one part per pair)
MAX_PAIRS = 20_000


def _positions(src):
    """A float frame (or Series) of ``src``'s shape and labels holding each cell's position."""
    n = len(src)
    if isinstance(src, pd.Series):
        return pd.Series(np.arange(n, dtype=np.float64), index=src.index, name=src.name)
    k = src.shape[1]
    return pd.DataFrame(np.arange(n * k, dtype=np.float64).reshape(n, k), index=src.index, columns=src.columns)


def _codes(obj):
    """Position codes of a positions result as an (n, k) int64 matrix, -1 where NaN."""
    a = obj.to_numpy(dtype=np.float64, na_value=np.nan)
    if a.ndim == 1:
        a = a[:, None]
    out = np.full(a.shape, -1, np.int64)
    ok = ~np.isnan(a)
    out[ok] = a[ok].astype(np.int64)
    return out


def _cell_parts(lin, codes, k_in, nidx):
    """Parts for data cells: output cell ``(r, c)`` derives from input cell ``divmod(codes[r, c], k_in)``.

    Output columns sharing the same row selection from some input column share one part."""
    n_out, k_out = codes.shape
    rows = np.where(codes >= 0, codes // max(k_in, 1), -1)
    cols = np.where(codes >= 0, codes % max(k_in, 1), -1)
    groups = {}
    npairs = 0
    for c in range(k_out):
        cc = cols[:, c]
        for j in np.unique(cc[cc >= 0]):
            sel = np.where(cc == j, rows[:, c], -1)
            key = sel.tobytes()
            g = groups.get(key)
            if g is None:
                g = groups[key] = (sel, {})
            g[1][c] = int(j)
            npairs += 1
            if npairs > MAX_PAIRS:
                return None
    parts = []
    if len(groups) > 1 and any(p.wide for p in lin.parts):
        # a part on every cell of an input row holds only for the cells moved from that row: spelled out per
        # input cell, the columns of each row selection take it alone (not the output row's other cells)
        ncell = lin.nidx + k_in
        lin = _Parts([Part(p.node, p.rel, np.repeat(p.cmat, ncell, 0), p.control) if p.wide else p
                      for p in lin.parts], lin.nidx, lin.ncols)
    for sel, m in groups.values():
        crow = [-1] * (nidx + k_out)
        for c, j in m.items():
            crow[nidx + c] = lin.nidx + j
        parts += remap(lin, crow, sel)
    return parts


class _Parts:
    """The parts of a lineage and its shape, for :func:`~whence.tabular.frame.base.remap` (which reads only
    these)."""

    def __init__(self, parts, nidx, ncols):
        self.parts, self.nidx, self.ncols = parts, nidx, ncols


def _placement_parts(lin, codes, k_in, nidx, levels):
    """Control parts: the index cells (levels ``levels`` of the input) of the row each cell was moved from."""
    if not levels:
        return []
    n_out, k_out = codes.shape
    rows = np.where(codes >= 0, codes // max(k_in, 1), -1)
    parts = []
    groups = {}
    for c in range(k_out):
        sel = rows[:, c]
        if not (sel >= 0).any():
            continue
        groups.setdefault(sel.tobytes(), (sel, []))[1].append(c)
    for sel, cs in groups.values():
        for p in lin.parts:
            if p.wide:
                continue
            row = p.cmat[list(levels)].any(0)
            if not row.any():
                continue
            cm = np.zeros((nidx + k_out, row.shape[0]), bool)
            cm[[nidx + c for c in cs]] = row
            parts.append(Part(p.node, p.rel.take(sel), cm, True))
    return parts


def _label_index_parts(src, res, lin, nidx):
    """Index cells of ``res`` copied from the input row with the same label (unique labels only)."""
    if lin.nidx != nidx or not src.index.is_unique or isinstance(res.index, pd.RangeIndex) and \
            isinstance(src.index, pd.RangeIndex):
        return []
    sel = src.index.get_indexer(res.index)
    if not (sel >= 0).any():
        return []
    ncells = nidx + (1 if isinstance(res, pd.Series) else res.shape[1])
    return remap(lin, list(range(nidx)) + [-1] * (ncells - nidx), sel)


def _moved(src, res, pos_res, op, index_rule, placement=()):
    """Attach the lineage of a cell move: ``pos_res`` is the same method run on ``_positions(src)``."""
    if not isinstance(res, (pd.DataFrame, pd.Series)):
        return res
    if pos_res.shape != res.shape:
        return fallback(res, op, [src])
    lin = lineage_of(src)
    k_in = 1 if isinstance(src, pd.Series) else src.shape[1]
    nidx = res.index.nlevels
    codes = _codes(pos_res)
    parts = _cell_parts(lin, codes, k_in, nidx)
    if parts is None:
        return fallback(res, f"{op} (more than {MAX_PAIRS} cell blocks)", [src])
    if index_rule == "label":
        parts += _label_index_parts(src, res, lin, nidx)
    elif index_rule == "rows":
        parts += _group_index_parts(lin, codes, k_in, nidx, placement[1] if placement else ())
    if placement:
        parts += _placement_parts(lin, codes, k_in, nidx, placement[0])
    return attach(res, parts, op, [src])


def _group_index_parts(lin, codes, k_in, nidx, remaining):
    """Index level ``l`` of output row ``r``: the index cells (input level ``remaining[l]``) of every input row
    moved into row ``r``."""
    if len(remaining) != nidx or lin.nidx == 0:
        return []
    n_out = codes.shape[0]
    rows = np.where(codes >= 0, codes // max(k_in, 1), -1)
    g = np.full(lin.n, -1, np.int64)
    r_idx, _ = np.nonzero(rows >= 0)
    g[rows[rows >= 0]] = r_idx
    ncells = nidx + codes.shape[1]
    parts = []
    for p in lin.parts:
        if p.wide:
            continue
        cm = np.zeros((ncells, p.cmat.shape[1]), bool)
        for l, src_l in enumerate(remaining):
            if src_l is not None:
                cm[l] = p.cmat[src_l]
        if cm.any():
            parts.append(Part(p.node, p.rel.group(g, n_out), cm, p.control))
    return parts


def _run_positions(src, name, args, kwargs, fill_pos=None):
    """The pandas method ``name`` run on ``_positions(src)`` (a fill value replaced by NaN)."""
    pos = _positions(src)
    a, kw = list(args), dict(kwargs)
    if "fill_value" in kw:
        kw["fill_value"] = np.nan
    elif fill_pos is not None and len(a) > fill_pos:
        a[fill_pos] = np.nan
    base = getattr(pd.Series if isinstance(src, pd.Series) else pd.DataFrame, name)
    return base(pos, *a, **kw)


def _levels_of(index, level):
    levels = level if isinstance(level, (list, tuple)) else [level]
    return sorted({index._get_level_number(lv) for lv in levels})


def _wrap(name, base):
    @functools.wraps(base)
    def method(self, *args, **kwargs):
        if guard_depth():
            return base(self, *args, **kwargs)
        with guard:
            res = base(self, *args, **kwargs)
            if res is None or not isinstance(res, (pd.DataFrame, pd.Series, tuple)):
                return res
            try:
                return _LINEAGE[name](self, res, args, kwargs)
            except Exception:  # noqa: BLE001  (pandas accepted it; the positions run did not: superset)
                if isinstance(res, tuple):
                    return tuple(fallback(r, name, [self]) for r in res)
                return fallback(res, name, [self])

    return method


def _transpose(src, res, args, kwargs):
    if isinstance(src, pd.Series):
        return attach(res, remap(lineage_of(src), None), "transpose", [src])
    return _moved(src, res, pd.DataFrame.transpose(_positions(src)), "transpose", None)


def _unstack(src, res, args, kwargs):
    level = kwargs.get("level", args[0] if args else -1)
    unstacked = _levels_of(src.index, level)
    remaining = [i for i in range(src.index.nlevels) if i not in unstacked]
    pos = _run_positions(src, "unstack", args, kwargs, fill_pos=1)
    if list(pos.index.names) != list(res.index.names):
        return fallback(res, "unstack", [src])
    if isinstance(res, pd.Series):  # every level unstacked: the column labels, then the levels in that order
        lv = level if isinstance(level, (list, tuple)) else [level]
        ncl = 1 if isinstance(src, pd.Series) else src.columns.nlevels
        remaining = [None] * ncl + [src.index._get_level_number(x) for x in lv]
    return _moved(src, res, pos, "unstack", "rows", (list(range(src.index.nlevels)), remaining))


def _reindex(src, res, args, kwargs, name="reindex"):
    return _moved(src, res, _run_positions(src, name, args, kwargs), name, "label")


def _reindex_like(src, res, args, kwargs):
    return _reindex(src, res, args, kwargs, "reindex_like")


def _asfreq(src, res, args, kwargs):
    # a reindex on a regular time grid: a slot at an input timestamp reads that row, a new slot reads nothing
    # unless ``method=`` fills it (then the row it was filled from); ``fill_value`` is a constant
    normalize = kwargs.get("normalize", args[3] if len(args) > 3 else False)
    if normalize or isinstance(src.index, pd.PeriodIndex):
        # the labels are moved (to midnight, to another period frequency): a label no longer names its row
        return fallback(res, "asfreq(normalize=True)" if normalize else "asfreq of periods", [src])
    return _moved(src, res, _run_positions(src, "asfreq", args, kwargs, fill_pos=4), "asfreq", "label")


def _align(src, res, args, kwargs):
    other = kwargs.get("other", args[0] if args else None)
    if not isinstance(res, tuple) or len(res) != 2:
        return res
    pos_self = _positions(src)
    pos_other = _positions(other) if lineage_of(other) is not None else other
    a, kw = list(args), dict(kwargs)
    if a:
        a[0] = pos_other
    else:
        kw["other"] = pos_other
    if "fill_value" in kw:
        kw["fill_value"] = np.nan
    base = pd.Series.align if isinstance(src, pd.Series) else pd.DataFrame.align
    pl, po = base(pos_self, *a, **kw)
    left = _moved(src, res[0], pl, "align", "label")
    if lineage_of(other) is not None:
        right = _moved(other, res[1], po, "align", "label")
    else:
        right = res[1]
    return left, right


def _duplicated(src, res, args, kwargs):
    lin = lineage_of(src)
    n = len(src)
    if isinstance(src, pd.Series):
        keep = kwargs.get("keep", args[0] if args else "first")
        used = [lin.nidx]
    else:
        subset = kwargs.get("subset", args[0] if args else None)
        keep = kwargs.get("keep", args[1] if len(args) > 1 else "first")
        if subset is None:
            used = [lin.nidx + j for j in range(src.shape[1])]
        else:
            labels = [subset] if not isinstance(subset, (list, tuple, pd.Index, np.ndarray)) or \
                isinstance(subset, tuple) and subset in src.columns else list(subset)
            if not src.columns.is_unique:
                return fallback(res, "duplicated", [src])
            used = [lin.nidx + int(p) for p in src.columns.get_indexer(labels)]
    if len(res) != n:
        return fallback(res, "duplicated", [src])
    i = np.arange(n, dtype=np.int64)
    if keep == "first":
        lo, hi = np.zeros(n, np.int64), i + 1
    elif keep == "last":
        lo, hi = i, np.full(n, n, np.int64)
    else:
        lo, hi = np.zeros(n, np.int64), np.full(n, n, np.int64)
    nidx = res.index.nlevels
    parts = []
    for p in lin.parts:
        row = p.cmat[used].any(0) if not p.wide else p.cmat[0]
        if not row.any():
            continue
        if p.wide:
            parts.append(Part(p.node, p.rel, row[None, :].copy(), p.control, wide=True))
            continue
        cm = np.zeros((nidx + 1, row.shape[0]), bool)
        cm[nidx] = row
        parts.append(Part(p.node, RangeRel(lo, hi, p.rel), cm, p.control))
    if nidx == lin.nidx:
        parts += remap(lin, list(range(nidx)) + [-1])
    return attach(res, parts, "duplicated", [src])


def _whole(lin, n_out):
    """Every row of the input for each of ``n_out`` output rows (one group), per part."""
    out = []
    for p in lin.parts:
        if p.wide:
            out.append((p, p.rel if p.rel.n_out == n_out else p.rel.take(np.zeros(n_out, np.int64))))
        else:
            out.append((p, p.rel.group(np.zeros(lin.n, np.int64), 1).take(np.zeros(n_out, np.int64))))
    return out


def _mode(src, res, args, kwargs):
    lin = lineage_of(src)
    axis = kwargs.get("axis", args[0] if args and isinstance(src, pd.DataFrame) else 0)
    if isinstance(src, pd.DataFrame) and axis in (1, "columns"):
        return row_preserving(res, "mode", src)
    n_out = len(res)
    nidx = res.index.nlevels
    if isinstance(src, pd.Series):
        crow = {0: lin.nidx}
    else:
        if not (src.columns.is_unique and res.columns.is_unique):
            return fallback(res, "mode", [src])
        pos = src.columns.get_indexer(res.columns)
        if (pos < 0).any():
            return fallback(res, "mode", [src])
        crow = {c: lin.nidx + int(p) for c, p in enumerate(pos)}
    parts = []
    k_out = 1 if isinstance(res, pd.Series) else res.shape[1]
    for p, rel in _whole(lin, n_out):
        if p.wide:
            parts.append(Part(p.node, rel, p.cmat.copy(), p.control, wide=True))
            continue
        cm = np.zeros((nidx + k_out, p.cmat.shape[1]), bool)
        for c, r in crow.items():
            cm[nidx + c] = p.cmat[r]
        if cm.any():
            parts.append(Part(p.node, rel, cm, p.control))
    return attach(res, parts, "mode", [src])


def _pairwise(op):
    def lineage(src, res, args, kwargs):
        lin = lineage_of(src)
        if isinstance(src, pd.Series) or not isinstance(res, pd.DataFrame) or not src.columns.is_unique or \
                not res.columns.is_unique or not res.index.is_unique:
            return fallback(res, op, [src])
        pc = src.columns.get_indexer(res.columns)
        pr = src.columns.get_indexer(res.index)
        if (pc < 0).any() or (pr < 0).any():
            return fallback(res, op, [src])
        n_out, k_out = res.shape
        nidx = res.index.nlevels
        parts = []
        for p, rel in _whole(lin, n_out):
            if p.wide:
                parts.append(Part(p.node, rel, p.cmat.copy(), p.control, wide=True))
                continue
            # cell (a, b) <- column b: every output row
            cm = np.zeros((nidx + k_out, p.cmat.shape[1]), bool)
            for c, q in enumerate(pc):
                cm[nidx + c] = p.cmat[lin.nidx + int(q)]
            if cm.any():
                parts.append(Part(p.node, rel, cm, p.control))
            # cell (a, b) <- column a: output row a only
            for r, q in enumerate(pr):
                row = p.cmat[lin.nidx + int(q)]
                if not row.any():
                    continue
                sel = np.full(n_out, -1, np.int64)
                sel[r] = r
                cm = np.zeros((nidx + k_out, row.shape[0]), bool)
                cm[nidx:] = row
                parts.append(Part(p.node, rel.take(sel), cm, p.control))
        return attach(res, parts, op, [src])

    return lineage


def _pairs_used(a, b):
    """Positions in ``a`` and in ``b`` of the pairs pandas correlates (labels in both), or None when labels
    repeat (pandas' alignment then pairs rows whence does not follow)."""
    if a.index.equals(b.index):
        same = np.arange(len(a), dtype=np.int64)
        return same, same
    if not (a.index.is_unique and b.index.is_unique):
        return None
    common = a.index.intersection(b.index)
    return a.index.get_indexer(common).astype(np.int64), b.index.get_indexer(common).astype(np.int64)


def _series_pairwise(name, base):
    """``Series.corr(other)`` / ``Series.cov(other)``: pandas' scalar, remembered (see
    :func:`~whence.tabular.frame.values.register_scalar`) as computed from the cells of both Series on the
    rows pandas pairs (labels in both; a missing value leaves its pair out by its own cell, so it is read)."""

    @functools.wraps(base)
    def method(self, other, *args, **kwargs):
        if guard_depth():
            return base(self, other, *args, **kwargs)
        with guard:
            res = base(self, other, *args, **kwargs)
            if np.ndim(res) != 0 or not isinstance(other, pd.Series):
                return res
            pairs = _pairs_used(self, other)
            n = len(self) if pairs is None else pairs[0].shape[0]
            parts, lins = [], []
            for k, obj in enumerate((self, other)):
                sel = None if pairs is None else pairs[k]
                lin = lineage_of(obj)
                if lin is None:
                    continue
                lins.append(lin)
                if sel is None:  # every cell of both
                    parts += [Part(p.node, RowRel.everything(n, p.rel.n_src), p.data_row(lin.nidx)[None, :].copy(),
                                   p.control, wide=True) for p in lin.parts if p.data_row(lin.nidx).any()]
                else:
                    parts += remap(lin, [-1, lin.nidx], sel)
            if not lins:
                return res
            reasons = ()
            if pairs is None:
                reasons = (f"Series.{name} of Series whose labels repeat: every cell of both is taken",)
                warn_partial("whence: " + reasons[0] + " (PARTIAL)")
            lin = Lineage(parts, n, 1, 1, reasons, op=name, history=tuple(x.node for x in lins), series=True)
            return register_scalar(res, lin)

    return method


_LINEAGE = {"transpose": _transpose, "unstack": _unstack, "reindex": _reindex, "reindex_like": _reindex_like,
            "asfreq": _asfreq,
            "align": _align, "duplicated": _duplicated, "mode": _mode, "corr": _pairwise("corr"),
            "cov": _pairwise("cov")}


def install_moves(frame_cls, series_cls):
    """Put the methods of this module on the tracked classes (pandas' own signatures and docstrings)."""
    for cls, pbase in ((frame_cls, pd.DataFrame), (series_cls, pd.Series)):
        for name in _LINEAGE:
            if name in ("corr", "cov") and pbase is pd.Series:  # a scalar (see register_scalar)
                m = _series_pairwise(name, getattr(pbase, name))
                m.__whence_bucket__ = BUCKET[name]
                setattr(cls, name, m)
                continue
            if hasattr(pbase, name):
                m = _wrap(name, getattr(pbase, name))
                m.__whence_bucket__ = BUCKET[name]
                setattr(cls, name, m)
        tr = cls.transpose

        def T(self, _tr=tr):
            return _tr(self)
        T.__doc__ = "The transpose (see :meth:`pandas.DataFrame.transpose`)."
        setattr(cls, "T", property(T))


#: the registry bucket of each method
BUCKET = {"transpose": "reshapes", "T": "reshapes", "unstack": "reshapes", "reindex": "selection",
          "reindex_like": "selection", "asfreq": "windows", "align": "selection", "duplicated": "windows",
          "mode": "reductions", "corr": "reductions", "cov": "reductions"}
