"""Group maps and row-order windows: ``groupby`` (reductions per group, ``transform``), and the window objects
(``rolling``, ``expanding``, ``ewm``, ``resample``).
"""

from __future__ import annotations

import functools
import types

import numpy as np
import pandas as pd

from ..aggregates import record_aggregate
from ..relations import Part, RowRel
from .base import attach, column_rows, guard_depth, dims, fallback, guard, hashable, remap, lineage_of
from .pergroup import GroupRuns, merge_disjoint


# groups up to which ``transform(func)`` runs ``func`` again on each group's tracked rows (beyond: whole groups)
_UDF_GROUPS = 256

_REDUCERS = frozenset(["sum", "mean", "median", "min", "max", "std", "var", "sem", "prod", "count", "nunique",
                       "first", "last", "any", "all", "size", "idxmin", "idxmax", "skew", "quantile", "kurt"])


def _windows():
    """The rules of the time-series family (:mod:`whence.tabular.windows`, which builds on this package)."""
    from .. import windows
    return windows


class TrackedWindow:
    """``rolling`` / ``expanding`` / ``ewm`` / ``resample`` of a tracked object: results are marked PARTIAL
    (every cell derives from every cell of the input), never left without lineage."""

    def __init__(self, obj, inner, name, group=None, kw=None):
        self._obj, self._inner, self._name = obj, inner, name
        self._args = ()  # the call's positional arguments (a group-wise resample runs them again per group)
        self._group, self._kw = group, kw or {}  # the group-by it came from; the call's keyword arguments

    def __repr__(self):
        return repr(self._inner)

    def __iter__(self):
        return iter(self._inner)

    def __getitem__(self, key):
        with guard:
            win = TrackedWindow(self._obj, self._inner[key], self._name, self._group, self._kw)
        win._args = self._args
        return win

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with guard:
                res = attr(*args, **kwargs)
                return _windows().window_result(self, name, res)  # the rules: whence.tabular.windows
        return call


def window_method(name):
    base_f = getattr(pd.DataFrame, name)
    base_s = getattr(pd.Series, name)

    @functools.wraps(base_f)
    def method(self, *args, **kwargs):
        base = base_f if isinstance(self, pd.DataFrame) else base_s
        if guard_depth():
            return base(self, *args, **kwargs)
        with guard:
            inner = base(self, *args, **kwargs)
        return TrackedWindow(self, inner, name, kw=kwargs)

    return method


def same_cells(a, b):
    """True when the object arrays ``a`` and ``b`` hold equal values cell by cell (missing equal to missing)."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    if a.shape != b.shape:
        return False
    na, nb = pd.isna(a), pd.isna(b)
    if not (na == nb).all():
        return False
    try:
        return bool(np.all(a[~na] == b[~nb]))
    except (TypeError, ValueError):  # values that do not compare: not shown equal
        return False


class TrackedGroupBy:
    """A pandas group-by on a tracked frame: results carry group lineage.

    Every aggregated cell derives from the cells of its column in every row of its group; the key cells of
    those rows chose the group (control).  Methods not listed here run on pandas' own group-by object and
    their results are marked PARTIAL.
    """

    def __init__(self, obj, gb, by, kwargs, selection=None):
        self._obj = obj
        self._gb = gb
        self._by = by
        self._kwargs = kwargs
        self._selection = selection
        self._codes = None

    def __repr__(self):
        return repr(self._gb)

    def __iter__(self):
        return iter(self._gb)

    def __len__(self):
        return len(self._gb)

    def __getattr__(self, name):
        if name in _windows().GROUP_METHODS:  # the time-series family: whence.tabular.windows
            return lambda *a, **k: _windows().group_method(self, name, a, k)
        if name in ("rolling", "expanding", "ewm", "resample"):  # group-wise windows: whence.tabular.windows
            def window(*a, **k):
                with guard:
                    inner = getattr(self._gb, name)(*a, **k)
                win = TrackedWindow(self._obj, inner, name, group=self, kw=k)
                win._args = a
                return win
            return window
        if not name.startswith("_") and isinstance(self._obj, pd.DataFrame) and name in self._obj.columns \
                and not hasattr(type(self._gb), name):
            return self[name]  # gb.col is gb["col"]
        attr = getattr(self._gb, name)
        if name in _REDUCERS:
            def red(*args, **kwargs):
                with guard:
                    res = attr(*args, **kwargs)
                out = self._lineage(res, name)
                if not args and not kwargs:
                    record_aggregate(self, out, name, {})  # for deletion propagation
                return out
            return red
        if callable(attr):
            def other(*args, **kwargs):
                with guard:
                    res = attr(*args, **kwargs)
                return fallback(res, f"groupby().{name}", [self._obj])
            return other
        return attr

    def __getitem__(self, key):
        with guard:
            gb = self._gb[key]
        return TrackedGroupBy(self._obj, gb, self._by, self._kwargs, selection=key)

    def _group_codes(self):
        if self._codes is None:
            with guard:
                g = self._gb.ngroup()
                codes = g.to_numpy(dtype=np.float64, na_value=-1) if g.dtype.kind == "f" else g.to_numpy()
            self._codes = _windows().time_group_codes(self._obj, self._by, np.asarray(codes, np.int64))
        return self._codes

    def _key_rows(self):
        by = self._by
        obj = self._obj
        if by is None:
            lev = self._kwargs.get("level")
            if lev is None:
                return []
            levs = lev if isinstance(lev, list) else [lev]
            names = list(obj.index.names)
            return [names.index(v) if v in names else int(v) for v in levs]
        blist = by if isinstance(by, list) else [by]
        rows = []
        for b in blist:
            if hashable(b) and ((isinstance(obj, pd.DataFrame) and b in obj.columns) or b in obj.index.names):
                r = column_rows(obj, [b])
                if r:
                    rows.extend(r)
        return rows

    def _value_keys(self):
        """The group keys given as values rather than labels (a tracked Series, an array or Index handed out
        by a tracked frame, such as ``d.index.time``), one entry per key in ``by``: a list of
        ``(node, rel, row, control)`` (``rel`` maps each row of the grouped object to the key's source rows,
        ``row`` the source columns), or None for a key named by label or one without lineage.

        The second value is a reason when a key's rows could not be aligned (its every cell is then taken).
        """
        from ..relations import RowRel, node_cols
        from .base import align_rows
        from .values import plain_lineage, plain_node
        by = self._by
        obj = self._obj
        n = len(obj)
        blist = [] if by is None else (by if isinstance(by, list) else [by])
        out, reasons = [], []
        for b in blist:
            if hashable(b) and ((isinstance(obj, pd.DataFrame) and b in obj.columns) or b in obj.index.names):
                out.append(None)
                continue
            klin = lineage_of(b)
            sel = None
            if klin is not None:
                al = align_rows(b, obj)
                if al is False:
                    reasons.append("a group key whose index cannot be aligned with the frame's rows (taken as "
                                   "all its cells)")
                    out.append([(p.node, RowRel.everything(n, p.rel.n_src), p.data_row(klin.nidx), True)
                                for p in klin.parts if p.data_row(klin.nidx).any()])
                    continue
                sel = al
            elif isinstance(b, (np.ndarray, pd.Index)) and len(b) == n:
                klin = plain_lineage(b)
                if klin is None:
                    node = plain_node(b)
                    if node is not None and len(node.shape) >= 1 and node.shape[0] == n:
                        out.append([(node, RowRel.identity(n), np.ones(node_cols(node), bool), False)])
                    else:
                        out.append(None)
                    continue
            else:
                out.append(None)
                continue
            ent = []
            for p in klin.parts:
                row = p.data_row(klin.nidx)
                if row.any():
                    ent.append((p.node, p.rel if sel is None else p.rel.take(np.asarray(sel, np.int64)), row,
                                p.control))
            out.append(ent)
        return out, reasons

    def _key_labels(self):
        by = self._by
        blist = [] if by is None else (by if isinstance(by, list) else [by])
        return [b for b in blist if hashable(b)]

    def agg(self, func=None, *args, **kwargs):
        with guard:
            res = self._gb.agg(func, *args, **kwargs)
        named = {k: v for k, v in kwargs.items() if isinstance(v, tuple) and len(v) == 2}
        fname = func if isinstance(func, str) else None
        partial = None
        if callable(func) and not isinstance(func, str):
            partial = None  # a reduction by construction: each value derives from its group
        if fname is not None and fname not in _REDUCERS:
            partial = f"groupby().agg({fname!r}) is not a reduction whence knows"
        out = self._lineage(res, "agg", named=named, reason=partial)
        if not args and (fname is not None or (func is None and named and len(named) == len(kwargs))):
            record_aggregate(self, out, fname, named)  # for deletion propagation
        return out

    aggregate = agg

    def size(self):
        with guard:
            res = self._gb.size()
        out = self._lineage(res, "size")
        record_aggregate(self, out, "size", {})  # for deletion propagation
        return out

    def count(self):
        with guard:
            res = self._gb.count()
        out = self._lineage(res, "count")
        record_aggregate(self, out, "count", {})  # for deletion propagation
        return out

    def apply(self, func, *args, **kwargs):
        per_group = callable(func) and not self._kwargs.get("group_keys", True)
        runs = self._group_runs(func, kwargs) if per_group else None
        with guard:
            res = self._gb.apply(func if runs is None else runs, *args, **kwargs)
        if per_group:
            # a result on the input's own rows (pandas puts them back in their order): a transform
            codes = self._group_codes()
            ng = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 0
            out = self._transform_per_group(res, func, args, kwargs, codes, ng, runs)
            if out is not None:
                return out
        return fallback(res, "groupby().apply", [self._obj])

    def filter(self, func, dropna=True, *args, **kwargs):
        """The rows of the groups ``func`` keeps: each cell is the cell copied; ``func`` saw every cell of its
        group, so all of them are control of the kept rows (and the key cells of the group's rows)."""
        with guard:
            res = self._gb.filter(func, dropna, *args, **kwargs)
        obj = self._obj
        pos = None
        if dropna and type(res) is type(obj) and obj.index.is_unique and \
                (isinstance(obj, pd.Series) or res.columns.equals(obj.columns)):
            pos = obj.index.get_indexer(res.index)
        if pos is None or (pos < 0).any():
            return fallback(res, "groupby().filter", [obj])
        pos = pos.astype(np.int64)
        codes = self._group_codes()
        ng = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 0
        lin = lineage_of(obj)
        parts = remap(lin, None, pos)
        for p in lin.parts:
            row = p.cmat.any(0) if not p.wide else p.cmat[0]
            if row.any():
                parts.append(Part(p.node, p.rel.group(codes, ng).take(codes[pos]), row[None, :].copy(), True,
                                  wide=True))
        for q in self._key_parts(lin, codes, ng):
            parts.append(q.with_(rel=q.rel.take(pos)))
        return attach(res, parts, "groupby.filter", [obj])

    def transform(self, func, *args, **kwargs):
        if isinstance(func, str) and func in _windows().GROUP_METHODS:
            return _windows().group_method(self, func, args, kwargs, via="transform")
        udf = callable(func) and not isinstance(func, str)
        runs = self._group_runs(func, kwargs) if udf else None
        with guard:
            res = self._gb.transform(func if runs is None else runs, *args, **kwargs)
        obj = self._obj
        if len(res) != len(obj):
            return fallback(res, "groupby().transform", [obj])
        codes = self._group_codes()
        ng = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 0
        if udf:
            out = self._transform_per_group(res, func, args, kwargs, codes, ng, runs)
            if out is not None:
                return out
        reason = None
        if not (isinstance(func, str) and func in _REDUCERS):
            reason = (f"groupby().transform({getattr(func, '__name__', func)!r}): each cell is taken to derive "
                      f"from its whole group")
        return self._build(res, codes, ng, per_row=True, reason=reason)

    def _udf_column(self):
        """The selected columns that the per-group rule runs ``func`` on (None: the whole-group rule)."""
        obj, sel = self._obj, self._selection
        if isinstance(obj, pd.DataFrame):
            if sel is None or not obj.columns.is_unique:
                return None
            labels = sel if isinstance(sel, list) else [sel]
            if not all(hashable(c) and c in obj.columns for c in labels):
                return None
            return obj[sel]
        return obj

    def _group_runs(self, func, kwargs):
        """``func`` wrapped to keep its tracked result on each group as pandas calls it (see
        :class:`~whence.tabular.frame.pergroup.GroupRuns`), or None where the per-group rule would not
        apply: a function pandas may replace by its own kernel (numpy's, pandas', builtins), another engine
        (numba compiles ``func`` itself), over ``_UDF_GROUPS`` groups, or rows whose labels do not name them
        one to one."""
        if not isinstance(func, types.FunctionType) or \
                (getattr(func, "__module__", None) or "").split(".")[0] in ("numpy", "pandas", "builtins"):
            return None
        if kwargs.get("engine") is not None or pd.get_option("compute.use_numba"):
            return None
        try:
            col = self._udf_column()
            if col is None or not col.index.is_unique:
                return None
            codes = self._group_codes()
            if codes.size and codes.max() + 1 > _UDF_GROUPS:
                return None
            with guard:
                indices = self._gb.indices
        except Exception:  # noqa: BLE001  (pandas will say what is wrong, if anything, in its own call)
            return None
        return GroupRuns(col, indices, func)

    def _transform_per_group(self, res, func, args, kwargs, codes, ng, runs=None):
        """``transform(func)`` (or ``apply(func)`` with ``group_keys=False`` returning each group's own rows) of
        the selected columns, run again group by group on the tracked rows of each group: each cell carries the
        lineage ``func`` gives it there (its own operations are tracked), and the key cells of its group as
        control.  None (the whole-group rule applies) without a selection of columns, over ``_UDF_GROUPS``
        groups, for a result that is not a tracked object on the group's rows with the result's columns, or
        values that differ from pandas' own."""
        obj = self._obj
        col = self._udf_column() if runs is None else runs.col
        if col is None:
            return None
        n = len(col)
        if not isinstance(res, (pd.Series, pd.DataFrame)) or type(res) is not type(col) or len(res) != n or \
                ng > _UDF_GROUPS or not res.index.equals(col.index):
            return None
        if isinstance(res, pd.DataFrame) and not res.columns.is_unique:
            return None
        try:
            indices = self._gb.indices
        except Exception:  # noqa: BLE001  (pandas could not list the groups: the whole-group rule)
            return None
        lin = lineage_of(col)
        nidx = res.index.nlevels
        ncols = 1 if isinstance(res, pd.Series) else res.shape[1]
        if nidx != lin.nidx:
            return None
        parts = remap(lin, list(range(nidx)) + [-1] * ncols)  # the index: each row's own
        plain = pd.Series if isinstance(res, pd.Series) else pd.DataFrame  # pandas' own to_numpy
        values = np.empty((n, ncols), object)
        values[:] = np.nan
        reasons: list = []
        done = {} if runs is None else runs.runs
        for key, idx in indices.items():
            hit = done.get(key)
            if hit is not None and hit[0].shape[0] == len(idx):
                idx, r, sub_index = hit  # func's tracked result on this group, from pandas' own call
            else:
                idx = np.asarray(idx, np.int64)
                sub = col.iloc[idx]
                object.__setattr__(sub, "name", key)  # as pandas hands each group to func
                r = func(sub, *args, **kwargs)
                sub_index = sub.index
            rl = lineage_of(r)
            if rl is None or type(r) is not type(res) or len(r) != idx.shape[0] or \
                    not r.index.equals(sub_index) or rl.nidx != nidx:
                return None
            if isinstance(r, pd.Series):
                pos = np.zeros(1, np.int64)
            elif r.columns.is_unique:
                pos = r.columns.get_indexer(res.columns)
            else:
                return None
            if (pos < 0).any():
                return None
            where = np.full(n, -1, np.int64)
            where[idx] = np.arange(idx.shape[0], dtype=np.int64)
            parts += remap(rl, [-1] * nidx + [rl.nidx + int(q) for q in pos], where)
            reasons += [x for x in rl.reasons if x not in reasons]
            got = plain.to_numpy(r, dtype=object)
            values[idx] = (got[:, None] if got.ndim == 1 else got)[:, pos]
        theirs = plain.to_numpy(res, dtype=object)
        theirs = theirs[:, None] if theirs.ndim == 1 else theirs
        if not same_cells(values, theirs):
            return None
        parts = merge_disjoint(parts)
        parts += self._key_parts(lineage_of(obj), codes, ng)
        return attach(res, parts, "groupby.transform", [obj], reasons)

    def _key_parts(self, lin, codes, ng):
        """Control parts of a per-row result: the key cells of every row of each row's group."""
        parts = []
        key_rows = self._key_rows()
        g = None
        for p in lin.parts:
            if not key_rows or p.wide:
                continue
            krow = np.zeros(p.cmat.shape[1], bool)
            for r in key_rows:
                krow |= p.cmat[r]
            if krow.any():
                parts.append(Part(p.node, p.rel.group(codes, ng).take(codes), krow[None, :].copy(), True,
                                  wide=True))
        vkeys, _ = self._value_keys()
        for ent in vkeys:
            for node, rel, row, _ctl in ent or ():
                g = rel.group(codes, ng).take(codes)
                parts.append(Part(node, g, row[None, :].copy(), True, wide=True))
        return parts

    def _lineage(self, res, op, named=None, reason=None):
        if not isinstance(res, (pd.DataFrame, pd.Series)):
            return res
        codes = self._group_codes()
        ng = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 0
        if len(res) != ng:
            out = self._output_codes(res, codes, ng)
            if out is None:
                return fallback(res, f"groupby().{op}", [self._obj])
            codes, ng = out, len(res)
        return self._build(res, codes, ng, per_row=False, named=named or {}, reason=reason, op=op)

    def _output_codes(self, res, codes, ng):
        """The result row of every input row when the result has rows of no observed group (``observed=False``
        with categorical keys: one row per combination of categories), found by looking each row's keys up in
        the result's index; None when the keys cannot be read or the rows so found do not follow the groups.
        A row of an empty group receives no input row: it reads no cell (its label is a category of the
        key's dtype, not a cell)."""
        obj, by = self._obj, self._by
        if by is None or not self._kwargs.get("as_index", True) or not res.index.is_unique:
            return None
        vals = []
        with guard:
            for b in (by if isinstance(by, list) else [by]):
                if hashable(b) and isinstance(obj, pd.DataFrame) and b in obj.columns:
                    vals.append(pd.Index(obj[b]))
                elif hashable(b) and b in obj.index.names:
                    vals.append(obj.index.get_level_values(b))
                elif isinstance(b, pd.Series) and len(b) == len(obj) and b.index.equals(obj.index) or \
                        isinstance(b, (np.ndarray, pd.Index)) and len(b) == len(obj):
                    vals.append(pd.Index(b))
                else:
                    return None
            if len(vals) != res.index.nlevels:
                return None
            target = pd.MultiIndex.from_arrays(vals) if len(vals) > 1 else vals[0]
            pos = np.asarray(res.index.get_indexer(target), np.int64)
        valid = codes >= 0
        if pos.shape[0] != codes.shape[0] or (pos[valid] < 0).any():
            return None
        first = np.full(ng, -1, np.int64)
        first[codes[valid]] = pos[valid]
        if (first[codes[valid]] != pos[valid]).any() or np.unique(first[first >= 0]).shape[0] != \
                np.unique(codes[valid]).shape[0]:
            return None  # one group, two result rows (or the reverse): not the groups
        return np.where(valid, pos, -1)

    def _build(self, res, codes, ng, per_row, named=None, reason=None, op="agg"):
        obj = self._obj
        lin = lineage_of(obj)
        if not isinstance(res, (pd.DataFrame, pd.Series)):
            return res
        n_res, nidx, ncols, series = dims(res)
        key_rows = self._key_rows()
        labels = [res.name] if series else list(res.columns)
        crow_sets = []
        for lab in labels:
            src = self._source_column(lab, named or {}, series, op)
            if src == "keys":
                crow_sets.append(list(key_rows))
            elif src is None:
                crow_sets.append(None)
            else:
                r = column_rows(obj, [src])
                crow_sets.append(r)
        reasons = [reason] if reason else []
        if any(c is None for c in crow_sets):
            reasons.append(f"groupby().{op}: an output column whose input column whence cannot tell "
                           f"(taken as all columns)")
            allc = list(range(lin.nidx, lin.nidx + lin.ncols))
            crow_sets = [allc if c is None else c for c in crow_sets]
        # index levels: group keys for aggregations (as_index=True), kept index for transform
        if per_row:
            idx_sets = [[i] for i in range(nidx)] if nidx == lin.nidx else [[] for _ in range(nidx)]
        elif res.index.nlevels == len(key_rows) and self._kwargs.get("as_index", True):
            idx_sets = [[r] for r in key_rows]
        else:
            idx_sets = [[] for _ in range(nidx)]
        cache = {}
        parts = []
        # the cmat rows read below (a part with none of them set contributes nothing)
        used = np.asarray(sorted({int(r) for rs in idx_sets + crow_sets for r in rs} |
                                 {int(r) for r in key_rows}), np.int64)
        for p in lin.parts:
            if not p.wide and not np.count_nonzero(p.cmat[used]):
                continue
            g = cache.get(id(p.rel))
            if g is None:
                g = p.rel.group(codes, ng)
                if per_row:
                    g = g.take(codes)
                cache[id(p.rel)] = g
            if p.wide:
                parts.append(Part(p.node, g, p.cmat, p.control, True))
                continue
            cm = np.zeros((nidx + ncols, p.cmat.shape[1]), bool)
            for i, rs in enumerate(idx_sets + crow_sets):
                for r in rs:
                    cm[i] |= p.cmat[r]
            if per_row and idx_sets and all(len(s) == 1 and s[0] == i for i, s in enumerate(idx_sets)):
                # the index of a transform is the input's own: row to row, not group to rows
                cm_idx = cm[:nidx].copy()
                cm[:nidx] = False
                if cm_idx.any():
                    parts.append(Part(p.node, p.rel, np.vstack([cm_idx, np.zeros((ncols, cm.shape[1]), bool)]),
                                      p.control))
            parts.append(Part(p.node, g, cm, p.control))
            if key_rows:
                krow = np.zeros(p.cmat.shape[1], bool)
                for r in key_rows:
                    krow |= p.cmat[r]
                if krow.any():
                    parts.append(Part(p.node, g, krow[None, :].copy(), True, wide=True))
        # keys given as values: their cells chose each row's group (control of every cell of the group's
        # result); as the result's index levels, they are its labels' data
        vkeys, vreasons = self._value_keys()
        reasons += vreasons
        label_index = (not per_row and self._kwargs.get("as_index", True) and res.index.nlevels == len(vkeys))
        inputs = [obj]
        for lev, ent in enumerate(vkeys):
            for node, rel, row, _ctl in ent or ():
                g = rel.group(codes, ng)
                if per_row:
                    g = g.take(codes)
                parts.append(Part(node, g, row[None, :].copy(), True, wide=True))
                if label_index:
                    cm = np.zeros((nidx + ncols, row.shape[0]), bool)
                    cm[lev] = row
                    parts.append(Part(node, g, cm, _ctl))
        return attach(res, parts, f"groupby.{op}", inputs, reasons)

    def _source_column(self, lab, named, series, op):
        obj = self._obj
        sel = self._selection
        if lab in named:
            return named[lab][0]
        if not self._kwargs.get("as_index", True) and lab in self._key_labels():
            return lab
        if op == "size":
            return "keys"
        if series and sel is not None and not isinstance(sel, list):
            return sel
        if isinstance(lab, tuple) and len(lab) >= 1 and isinstance(obj, pd.DataFrame) and lab[0] in obj.columns:
            return lab[0]
        if isinstance(obj, pd.DataFrame) and hashable(lab) and lab in obj.columns:
            return lab
        if not isinstance(obj, pd.DataFrame):
            return obj.name if obj.name is not None else "__series__"
        if sel is not None and not isinstance(sel, list) and hashable(sel):
            return sel
        if lab in ("size", 0):
            return "keys"
        return None


class Groups:

    def groupby(self, by=None, *args, **kwargs):
        if guard_depth():
            return super().groupby(by, *args, **kwargs)
        with guard:
            gb = super().groupby(by, *args, **kwargs)
        return TrackedGroupBy(self, gb, by, kwargs)

    def value_counts(self, *args, **kwargs):
        """Counts per distinct value (a group map): each count and each index label derive from the key cells
        of the rows counted (an unused category: none, its 0 is a constant); with ``normalize=True`` every
        counted row is a control cell (the total)."""
        if guard_depth():
            return super().value_counts(*args, **kwargs)
        with guard:
            res = super().value_counts(*args, **kwargs)
            return _value_counts_lineage(self, res, args, kwargs)


def _value_counts_lineage(src, res, args, kwargs):
    lin = lineage_of(src)
    op = "value_counts"
    if not isinstance(res, pd.Series):
        return fallback(res, op, [src])
    try:
        if isinstance(src, pd.Series):
            keys, krows = pd.Index(pd.Series.array.fget(src)), [lin.nidx]
        else:
            subset = kwargs.get("subset", args[0] if args else None)
            cols = list(src.columns) if subset is None else list(subset)
            krows = column_rows(src, cols)
            kf = pd.DataFrame({i: pd.DataFrame.__getitem__(src, c).array for i, c in enumerate(cols)})
            keys = pd.MultiIndex.from_frame(kf) if isinstance(res.index, pd.MultiIndex) else pd.Index(kf[0])
        codes = np.asarray(res.index.get_indexer(keys), np.int64)
        if not isinstance(keys, pd.MultiIndex) and not isinstance(res.index, pd.MultiIndex):
            # dropna=False: the NA row counts every missing key (None, NaN, NaT alike)
            na_rows = np.flatnonzero(np.asarray(res.index.isna()))
            if na_rows.size == 1:
                codes[(codes < 0) & np.asarray(keys.isna())] = na_rows[0]
    except Exception:
        return fallback(res, op, [src])
    if krows is None:
        return fallback(res, op, [src])
    if len(res):
        # a value no row has: an unused category (pandas counts it 0, a constant with no cells); any other
        # row without rows means the keys were not matched
        empty = np.bincount(codes[codes >= 0], minlength=len(res)) == 0
        counts = np.asarray(pd.Series.to_numpy(res), np.float64)[empty]
        if empty.any() and np.any((counts != 0) & ~np.isnan(counts)):  # (NaN: normalized by a total of 0)
            return fallback(res, op, [src])
    n, nidx, ncols, _ = dims(res)
    parts = []
    total = kwargs.get("normalize", False)
    for p in lin.parts:
        g = p.rel.group(codes, n)
        if p.wide:
            parts.append(Part(p.node, g, p.cmat, p.control, True))
            if total and p.cmat.any():  # (the total reads the counted rows' wide cells too)
                parts.append(_total_part(p, codes, n, nidx, p.cmat[0]))
            continue
        cm = np.zeros((nidx + 1, p.cmat.shape[1]), bool)
        for i, r in enumerate(krows[:nidx] if len(krows) >= nidx else []):
            cm[i] = p.cmat[r]
        if len(krows) < nidx or nidx == 1 and len(krows) > 1:
            cm[:nidx] = p.cmat[krows].any(0)
        cm[nidx] = p.cmat[krows].any(0)
        if cm.any():
            parts.append(Part(p.node, g, cm, p.control))
        if total and cm[nidx].any():
            parts.append(_total_part(p, codes, n, nidx, cm[nidx]))
    return attach(res, parts, op, [src])


def _total_part(p, codes, n, nidx, row):
    """The control part of a ``normalize=True`` total: every counted row's cells (input columns ``row``) are
    control of each label and each proportion, cell by cell: not row control, so a constant cell that later
    joins the row (a ``melt`` variable name) reads none of it."""
    rel = p.rel.group(np.where(codes >= 0, 0, -1), 1).take(np.zeros(n, np.int64))
    return Part(p.node, rel, np.broadcast_to(row, (nidx + 1, row.shape[0])).copy(), True)
