"""Tracked pandas objects: real DataFrames and Series whose row and column lineage is kept beside them.

:class:`TrackedFrame` and :class:`TrackedSeries` subclass :class:`pandas.DataFrame` and
:class:`pandas.Series`.  Every pandas operation still computes the values (ordinary pandas code runs
unchanged); the operations whence covers also compose a :class:`~whence.tabular.relations.Lineage` for the
result, with vectorised numpy on row-id arrays.  The lineage lives in an attribute pandas never copies,
writes or shows: no hidden column reaches ``to_csv``, ``to_parquet``, ``df.columns`` or ``repr``.

An operation whence does not cover still runs; its result is marked PARTIAL (all of its input's cells, with
the reason) and a :class:`~whence.errors.PartialLineageWarning` is raised.  It is never silently wrong.
"""

from __future__ import annotations

import functools
import io
import keyword
import sys
import threading
import tokenize
import warnings

import numpy as np
import pandas as pd

from ..errors import PartialLineageWarning
from ..graph import Node
from .relations import Lineage, Part, RowRel

_ARRAY_COPY = "copy" in __import__("inspect").signature(pd.DataFrame.__array__).parameters

__all__ = ["TrackedFrame", "TrackedSeries", "TrackedGroupBy", "lineage_of", "is_tracked_frame"]

_local = threading.local()


def _depth():
    return getattr(_local, "depth", 0)


class _Guard:
    """Inside a covered operation: pandas' own internal steps record nothing."""

    __slots__ = ()

    def __enter__(self):
        _local.depth = getattr(_local, "depth", 0) + 1

    def __exit__(self, *exc):
        _local.depth -= 1


_guard = _Guard()


def _stacklevel():
    """Stack level of the first frame outside pandas and whence (for warnings)."""
    f = sys._getframe(1)
    level = 1
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        if not (mod.startswith("pandas") or mod.startswith("whence") or mod.startswith("sklearn")
                or mod.startswith("numpy") or mod == "functools"):
            return level
        f = f.f_back
        level += 1
    return 2


def _warn(msg):
    warnings.warn(msg, PartialLineageWarning, stacklevel=_stacklevel())


# --- lineage helpers -------------------------------------------------------------------------------------------

def is_tracked_frame(x):
    return isinstance(x, (TrackedFrame, TrackedSeries))


def lineage_of(x):
    """The :class:`Lineage` of a tracked frame or series (None for plain pandas objects and scalars)."""
    if not isinstance(x, (TrackedFrame, TrackedSeries)):
        return None
    lin = x.__dict__.get("_wh")
    if lin is None:
        n = len(x)
        nidx = x.index.nlevels
        series = isinstance(x, pd.Series)
        ncols = 1 if series else x.shape[1]
        # nothing tells where it came from: every cell of every live source, PARTIAL (a sound superset)
        from ..graph import _sources
        parts = [Part(node, RowRel.everything(n, node.shape[0] if node.shape else 1),
                      np.ones((1, 1 if len(node.shape) < 2 else node.shape[1]), bool), wide=True)
                 for node in list(_sources.values())]
        lin = Lineage(parts, n, nidx, ncols, ("its lineage was lost by a pandas operation whence does not cover "
                                              "(taken as every cell of every live source)",),
                      op="unknown", series=series)
        object.__setattr__(x, "_wh", lin)
        _warn("whence: a tracked frame lost its lineage in a pandas operation whence does not cover; "
              "its cells are marked PARTIAL")
    return lin


def _dims(obj):
    series = isinstance(obj, pd.Series)
    return len(obj), obj.index.nlevels, (1 if series else obj.shape[1]), series


def _merge_parts(parts):
    """Parts with the same input, the same row relation object and the same role share one column matrix."""
    if len(parts) < 2:
        return parts
    out, seen = [], {}
    for p in parts:
        key = (id(p.node), id(p.rel), p.control, p.wide)
        k = seen.get(key)
        if k is None:
            seen[key] = len(out)
            out.append(p)
        else:
            q = out[k]
            out[k] = q.with_(cmat=q.cmat | p.cmat)
    return out


def _remap(lin, crow=None, sel=None, rel_cache=None):
    """Parts of ``lin`` with columns remapped by ``crow`` (old cmat row per new row, -1 none) and rows by
    ``sel`` (old row per new row, -1 none)."""
    if crow is None and sel is None:
        return list(lin.parts)
    parts = []
    cache = {} if rel_cache is None else rel_cache
    neg = None
    if crow is not None:
        crow = np.asarray(crow, np.int64)
        neg = crow < 0
        if neg.any():
            crow = np.where(neg, 0, crow)
        else:
            neg = None
    for p in lin.parts:
        if crow is None or p.wide:
            cm = p.cmat
        else:
            cm = p.cmat[crow]
            if neg is not None:
                cm[neg] = False
        if not p.wide and not cm.any():
            continue
        rel = p.rel
        if sel is not None:
            r = cache.get(id(rel))
            if r is None:
                r = cache[id(rel)] = rel.take(sel)
            rel = r
        parts.append(Part(p.node, rel, cm, p.control, p.wide))
    return parts


def _reasons(*lins):
    out = []
    for lin in lins:
        if lin is not None:
            out.extend(lin.reasons)
    return out


def _attach(res, parts, op, inputs, reasons=(), detail=""):
    """Make ``res`` a tracked object carrying a new lineage built from ``parts``."""
    if isinstance(res, pd.DataFrame) and not isinstance(res, TrackedFrame):
        res = TrackedFrame(res)
    elif isinstance(res, pd.Series) and not isinstance(res, TrackedSeries):
        res = TrackedSeries(res)
    n, nidx, ncols, series = _dims(res)
    lins = [lineage_of(o) for o in inputs]
    allr = _reasons(*lins) + list(reasons)
    lin = Lineage(_merge_parts(parts), n, nidx, ncols, allr, op=op,
                  history=tuple(x.node for x in lins if x is not None), series=series, detail=detail)
    object.__setattr__(res, "_wh", lin)
    return res


def _fallback(res, op, inputs):
    """An operation whence does not cover: every cell of the result derives from every cell of the inputs."""
    if not isinstance(res, (pd.DataFrame, pd.Series)):
        return res
    parts = []
    n, nidx, ncols, _ = _dims(res)
    for o in inputs:
        lin = lineage_of(o)
        if lin is None:
            continue
        for p in lin.parts:
            parts.append(Part(p.node, RowRel.everything(n, p.rel.n_src), p.cmat.any(0)[None, :].copy(),
                              p.control, wide=True))
    reason = f"{op} is not covered: every cell is taken to derive from every cell of its input"
    if inputs and any(lineage_of(o) is not None for o in inputs):
        _warn(f"whence: {op} is not covered; its result derives from all cells of its input (PARTIAL)")
    return _attach(res, parts, op, inputs, [reason])


def _elementwise(res, op, operands):
    """Same-shape elementwise result: cell (i, j) derives from cell (i, j) of every aligned operand."""
    n, nidx, ncols, series = _dims(res)
    parts = []
    reasons = []
    for o in operands:
        lin = lineage_of(o)
        if lin is None:
            continue
        sel = _align_rows(o, res)
        if sel is False:
            return _fallback(res, op, operands)
        if isinstance(o, pd.Series) and not series:
            # a Series broadcast against a frame's rows (axis=0 alignment is the only row-wise case)
            crow = [-1] * nidx + [lin.nidx] * ncols
        elif isinstance(o, pd.DataFrame) and not series:
            if o.shape[1] == ncols and (o.columns.equals(res.columns)):
                crow = list(range(lin.nidx)) + [lin.nidx + j for j in range(ncols)]
            elif o.columns.is_unique:
                pos = o.columns.get_indexer(res.columns)
                crow = [-1] * nidx + [lin.nidx + p if p >= 0 else -1 for p in pos]
            else:
                return _fallback(res, op, operands)
            if lin.nidx != nidx:
                crow = [-1] * nidx + crow[lin.nidx:]
        else:
            crow = ([j if j < lin.nidx else -1 for j in range(nidx)] if lin.nidx == nidx else [-1] * nidx) + \
                   [lin.nidx + (j if lin.ncols == ncols else 0) for j in range(ncols)]
        parts.extend(_remap(lin, crow, sel))
    return _attach(res, parts, op, operands, reasons)


def _align_rows(o, res):
    """Row positions of ``o`` for each row of ``res`` (None: identity; False: cannot tell)."""
    a, b = o.index, res.index
    if a is b:
        return None
    if type(a) is pd.RangeIndex and type(b) is pd.RangeIndex:
        if a.equals(b):
            return None
    elif len(a) == len(b) and a.equals(b):
        return None
    if o.index.is_unique:
        return o.index.get_indexer(res.index)
    return False


def _row_positions(src, res):
    """Positions in ``src`` of the rows of ``res`` (a subset or reordering), or None when unknowable."""
    idx = src.index
    if isinstance(idx, pd.RangeIndex) or idx.is_unique:
        pos = idx.get_indexer(res.index)
        if (pos < 0).any():
            return None
        return pos.astype(np.int64, copy=False)
    return None


def _rows_union(p, rows):
    """Input columns used by the cmat rows ``rows`` of part ``p`` (a wide part uses its one row)."""
    if p.wide:
        return p.cmat[0]
    if not len(rows):
        return np.zeros(p.cmat.shape[1], bool)
    return p.cmat[list(rows)].any(0)


def _is_bool_mask(key):
    dt = getattr(key, "dtype", None)
    return dt is not None and pd.api.types.is_bool_dtype(dt)


def _control_parts(mask, sel, nrows_out, ncells, cache=None):
    """Control parts from a tracked boolean mask aligned with the input rows, taken through ``sel``."""
    lin = lineage_of(mask)
    if lin is None:
        return [], None
    parts = []
    cache = {} if cache is None else cache
    for p in lin.parts:
        row = p.data_row(lin.nidx)
        if not row.any():
            continue
        rel = cache.get(id(p.rel))
        if rel is None:
            rel = cache[id(p.rel)] = p.rel.take(sel)
        parts.append(Part(p.node, rel, row[None, :].copy(), True, wide=True))
    return parts, lin


def _col_control(lin, sel, col_rows, ncells, cache=None):
    """Control parts: the cells of columns ``col_rows`` (cmat rows of ``lin``) of each row, for every cell."""
    parts = []
    cache = {} if cache is None else cache
    for p in lin.parts:
        if p.wide and p.control:
            continue  # already on every cell of the result
        row = _rows_union(p, col_rows)
        if not row.any():
            continue
        rel = p.rel
        if sel is not None:
            r = cache.get(id(rel))
            if r is None:
                r = cache[id(rel)] = rel.take(sel)
            rel = r
        parts.append(Part(p.node, rel, row[None, :].copy(), True, wide=True))
    return parts


def _col_rows(obj, labels):
    """cmat rows (index levels first) of column labels of ``obj`` (None when a label is missing or ambiguous)."""
    lin = lineage_of(obj)
    cols = obj.columns if isinstance(obj, pd.DataFrame) else pd.Index([obj.name])
    out = []
    for lab in labels:
        if isinstance(obj, pd.DataFrame) and lab in cols:
            loc = cols.get_loc(lab)
            if not isinstance(loc, (int, np.integer)):
                return None
            out.append(lin.nidx + int(loc))
        elif lab in list(obj.index.names) and lab is not None:
            out.append(list(obj.index.names).index(lab))
        elif not isinstance(obj, pd.DataFrame) and lab == obj.name:
            out.append(lin.nidx)
        else:
            return None
    return out


def _quiet(base):
    """A method that must record nothing and warn about nothing (formatting, writing)."""

    @functools.wraps(base)
    def method(self, *args, **kwargs):
        with _guard:
            return base(self, *args, **kwargs)

    return method


def _same(op):
    """A covered same-shape method: cells keep their lineage (elementwise, relabelling, casting)."""

    def make(base):
        @functools.wraps(base)
        def method(self, *args, **kwargs):
            if _depth():
                return base(self, *args, **kwargs)
            with _guard:
                if kwargs.get("inplace"):
                    lin = lineage_of(self)
                    base(self, *args, **kwargs)
                    _attach_inplace(self, lin.parts, op, [lin])
                    return None
                res = base(self, *args, **kwargs)
                if not isinstance(res, (pd.DataFrame, pd.Series)):
                    return res
                if res.shape != self.shape:
                    return _fallback(res, op, [self])
                extra = [a for a in list(args) + list(kwargs.values()) if is_tracked_frame(a)]
                if extra:
                    res = _elementwise(res, op, [self] + extra)
                    return _fallback_reason(res, f"{op} with a tracked argument: its cells are taken "
                                                 f"elementwise (a superset)")
                lin = lineage_of(self)
                if res.index.nlevels == lin.nidx:
                    return _attach(res, list(lin.parts), op, [self])
                crow = [-1] * res.index.nlevels + [lin.nidx + j for j in range(lin.ncols)]
                return _attach(res, _remap(lin, crow), op, [self])

        return method

    return make


def _attach_inplace(obj, parts, op, lins, reasons=()):
    allr = _reasons(*lins) + list(reasons)
    n, nidx, ncols, series = _dims(obj)
    lin = Lineage(_merge_parts(parts), n, nidx, ncols, allr, op=op,
                  history=tuple(x.node for x in lins if x is not None), series=series)
    object.__setattr__(obj, "_wh", lin)


def _rows_op(op, ignore_arg="ignore_index"):
    """A covered row-subset/reorder method (positions recovered by running it on positional row labels)."""

    def make(base):
        @functools.wraps(base)
        def method(self, *args, **kwargs):
            if _depth():
                return base(self, *args, **kwargs)
            with _guard:
                inplace = kwargs.pop("inplace", False)
                ignore = kwargs.pop(ignore_arg, False) if ignore_arg else False
                if kwargs.get("axis", 0) not in (0, "index", "rows"):
                    res = base(self, *args, **kwargs)
                    return _cols_result(self, res, op)
                shadow = self.set_axis(pd.RangeIndex(len(self)), axis=0)
                object.__setattr__(shadow, "_wh", None)
                res = base(shadow, *args, **kwargs)
                sel = np.asarray(res.index, dtype=np.int64)
                if ignore:
                    # pandas' own empty result keeps its own kind of index: ask it
                    res.index = pd.RangeIndex(len(res)) if len(res) else \
                        base(self.iloc[:0], *args, **kwargs, **{ignore_arg: True}).index
                elif isinstance(res.index, pd.RangeIndex) and isinstance(self.index, pd.RangeIndex) and \
                        res.index.step > 0:  # pandas kept a range (pandas 2.x, nothing dropped): so do we
                    res.index = self.index[res.index.start:res.index.stop:res.index.step]
                else:
                    res.index = self.index.take(sel)
                lin = lineage_of(self)
                # a fresh RangeIndex (ignore_index) has no lineage: one empty index row
                crow = [-1] + [lin.nidx + j for j in range(lin.ncols)] if ignore else None
                parts = _remap(lin, crow, sel)
                ctl = _op_control(self, op, args, kwargs)
                if ctl:
                    parts += _col_control(lin, sel, ctl, lin.nidx + lin.ncols)
                if inplace:
                    self._update_inplace(res)
                    _attach_inplace(self, parts, op, [lin])
                    return None
                return _attach(res, parts, op, [self])

        return method

    return make


def _op_control(obj, op, args, kwargs):
    """cmat rows of the columns that choose rows in ``op`` (sort keys, NA checks, duplicate subsets)."""
    if not isinstance(obj, pd.DataFrame):
        return [lineage_of(obj).nidx] if op in ("sort_values", "dropna", "drop_duplicates") else []
    if op == "sort_values":
        by = kwargs.get("by", args[0] if args else None)
    elif op in ("dropna", "drop_duplicates"):
        by = kwargs.get("subset", None)
        if by is None:
            by = list(obj.columns)
    else:
        return []
    if by is None:
        return []
    if not isinstance(by, (list, tuple, pd.Index, np.ndarray)):
        by = [by]
    rows = _col_rows(obj, list(by))
    return rows or []


def _cols_result(src, res, op):
    """A result holding some of ``src``'s columns (same rows): columns matched by label."""
    if not isinstance(res, pd.DataFrame) or len(res) != len(src) or not src.columns.is_unique:
        return _fallback(res, op, [src])
    lin = lineage_of(src)
    sel = _align_rows(src, res)
    if sel is False:
        return _fallback(res, op, [src])
    pos = src.columns.get_indexer(res.columns)
    crow = list(range(lin.nidx)) if res.index.nlevels == lin.nidx else [-1] * res.index.nlevels
    crow += [lin.nidx + int(p) if p >= 0 else -1 for p in pos]
    return _attach(res, _remap(lin, crow, sel), op, [src])


# --- the tracked classes ---------------------------------------------------------------------------------------

class _TrackedMixin:
    _wh = None

    @property
    def _whence_node(self):
        return lineage_of(self).node

    @property
    def lineage_complete(self):
        """True when every cell's lineage is exact (FULL)."""
        return not lineage_of(self).reasons

    def __finalize__(self, other, method=None, **kwargs):
        res = super().__finalize__(other, method=method, **kwargs)
        if _depth() or res.__dict__.get("_wh") is not None:
            return res
        with _guard:
            inputs = _inputs_of(other)
            if method in ("str", "dt", "cat") and isinstance(other, pd.Series) and len(res) == len(other):
                return _row_preserving(res, f"Series.{method}", other)
            _fallback(res, method or f"a {type(self).__bases__[-1].__name__} operation", inputs)
        return res

    @property
    def loc(self):
        return super().loc if _depth() else _TrackedIndexer(self, "loc")

    @property
    def iloc(self):
        return super().iloc if _depth() else _TrackedIndexer(self, "iloc")

    def _arith_method(self, other, op):
        if _depth():
            return super()._arith_method(other, op)
        with _guard:
            return _binary(super()._arith_method(other, op), op, self, other)

    def _cmp_method(self, other, op):
        if _depth():
            return super()._cmp_method(other, op)
        with _guard:
            return _binary(super()._cmp_method(other, op), op, self, other)

    def _logical_method(self, other, op):
        if _depth():
            return super()._logical_method(other, op)
        with _guard:
            return _binary(super()._logical_method(other, op), op, self, other)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if _depth():
            return super().__array_ufunc__(ufunc, method, *inputs, **kwargs)
        with _guard:
            res = super().__array_ufunc__(ufunc, method, *inputs, **kwargs)
            if method == "__call__" and isinstance(res, type(self).__mro__[2]) and "out" not in kwargs:
                return _binary(res, ufunc, *inputs)
            if isinstance(res, (pd.Series, pd.DataFrame)):
                return _fallback(res, f"{ufunc.__name__}.{method}", [i for i in inputs if is_tracked_frame(i)])
            return res

    def groupby(self, by=None, *args, **kwargs):
        if _depth():
            return super().groupby(by, *args, **kwargs)
        with _guard:
            gb = super().groupby(by, *args, **kwargs)
        return TrackedGroupBy(self, gb, by, kwargs)

    def to_numpy(self, dtype=None, copy=False, na_value=pd.api.extensions.no_default):
        """The values as a :class:`whence.TrackedArray` whose lineage continues from this frame's."""
        with _guard:
            base = pd.DataFrame.to_numpy if isinstance(self, pd.DataFrame) else pd.Series.to_numpy
            arr = base(self, dtype=dtype, copy=copy, na_value=na_value)
        if _depth():
            return arr
        return _to_tracked_array(self, arr)

    @property
    def values(self):
        if _depth():
            return super().values
        with _guard:
            arr = super().values
        if not isinstance(arr, np.ndarray):
            return arr
        return _to_tracked_array(self, arr)

    def __array__(self, dtype=None, copy=None):
        with _guard:
            # pandas < 2.2.2 has no copy parameter (and numpy 1.x never passes one)
            arr = super().__array__(dtype=dtype) if copy is None or not _ARRAY_COPY else \
                super().__array__(dtype=dtype, copy=copy)
        if not _depth():
            _register_plain(arr, lineage_of(self).node)
        return arr


def _to_tracked_array(obj, arr):
    from ..tracked import _wrap
    if arr.dtype.kind not in "biufc":
        bad = []
        if isinstance(obj, pd.DataFrame):
            bad = [c for c, dt in obj.dtypes.items() if getattr(dt, "kind", "O") not in "biufc"]
        what = f" (columns {bad})" if bad else ""
        raise TypeError(
            f"to_numpy gave a {arr.dtype} array{what}: whence tracks numeric and bool arrays only; select the "
            f"numeric columns, one-hot encode the others (pd.get_dummies), or pass dtype='float64'")
    lin = lineage_of(obj)
    node = lin.node
    if node.shape != arr.shape:
        from ..maps import ViewMap
        node = Node("to_numpy", arr.shape, ViewMap(arr.shape, node.shape, "reshape"), (node,))
    t = _wrap(arr, node)
    return t


# plain arrays handed out by np.asarray(frame): their lineage stays queryable
_plain = {}


def _register_plain(arr, node):
    import weakref
    key = id(arr)
    try:
        ref = weakref.ref(arr, lambda _r, k=key: _plain.pop(k, None))
    except TypeError:
        return
    _plain[key] = (ref, node)


def plain_node(arr):
    e = _plain.get(id(arr))
    if e is not None and e[0]() is arr:
        return e[1]
    return None


def _inputs_of(other):
    if isinstance(other, (pd.DataFrame, pd.Series)):
        return [other]
    objs = getattr(other, "objs", None)
    if objs is not None:
        return [o for o in objs if isinstance(o, (pd.DataFrame, pd.Series))]
    out = []
    for attr in ("left", "right", "obj", "_selected_obj"):
        v = getattr(other, attr, None)
        if isinstance(v, (pd.DataFrame, pd.Series)):
            out.append(v)
    return out


def _row_preserving(res, op, src):
    """Each output cell of row i derives from every cell of row i of ``src``."""
    lin = lineage_of(src)
    n, nidx, ncols, _ = _dims(res)
    sel = _align_rows(src, res)
    if sel is False:
        return _fallback(res, op, [src])
    parts = []
    for p in lin.parts:
        row = p.data_row(lin.nidx)
        if row.any():
            cm = np.zeros((nidx + ncols, row.shape[0]), bool)
            cm[nidx:] = row
            parts.append(Part(p.node, p.rel if sel is None else p.rel.take(sel), cm, p.control))
    return _attach(res, parts, op, [src])


class TrackedSeries(_TrackedMixin, pd.Series):
    """A :class:`pandas.Series` with lineage (see :mod:`whence.tabular.frame`)."""

    @property
    def _constructor(self):
        return TrackedSeries

    @property
    def _constructor_expanddim(self):
        return TrackedFrame

    # pandas builds results from block managers: make the subclass directly (no second __init__)
    def _constructor_from_mgr(self, mgr, axes):
        ser = TrackedSeries._from_mgr(mgr, axes=axes)
        object.__setattr__(ser, "_name", None)
        return ser

    def _constructor_expanddim_from_mgr(self, mgr, axes):
        return TrackedFrame._from_mgr(mgr, axes=mgr.axes)

    def _flex_method(self, other, op, *, level=None, fill_value=None, axis=0):
        if _depth():
            return super()._flex_method(other, op, level=level, fill_value=fill_value, axis=axis)
        with _guard:
            res = super()._flex_method(other, op, level=level, fill_value=fill_value, axis=axis)
            return _binary(res, op, self, other)

    def isin(self, values):
        if _depth():
            return super().isin(values)
        with _guard:
            return _binary(super().isin(values), "isin", self, values)

    def between(self, left, right, inclusive="both"):
        if _depth():
            return super().between(left, right, inclusive)
        with _guard:
            return _binary(super().between(left, right, inclusive), "between", self, left, right)

    def to_frame(self, name=pd.api.extensions.no_default):
        if _depth():
            return super().to_frame(name)
        with _guard:
            res = super().to_frame(name)
            return _attach(res, list(lineage_of(self).parts), "to_frame", [self])

    def __getitem__(self, key):
        if _depth():
            return super().__getitem__(key)
        with _guard:
            res = super().__getitem__(key)
            if not isinstance(res, pd.Series):
                return res
            return _subset_rows(self, res, "getitem", key)

    def __setitem__(self, key, value):
        if _depth():
            return super().__setitem__(key, value)
        with _guard:
            lin = lineage_of(self)
            super().__setitem__(key, value)
            _attach_inplace(self, [p.with_(rel=RowRel.everything(len(self), p.rel.n_src)) for p in lin.parts],
                            "setitem", [lin], ["writing into a Series by key is not covered"])
            _warn("whence: writing into a Series by key is not covered; its cells are marked PARTIAL")

    def apply(self, func, *args, **kwargs):
        if _depth():
            return super().apply(func, *args, **kwargs)
        with _guard:
            res = super().apply(func, *args, **kwargs)
            if isinstance(res, pd.Series) and len(res) == len(self):
                return _elementwise(res, "apply", [self])
            if isinstance(res, pd.DataFrame) and len(res) == len(self):
                return _row_preserving(res, "apply", self)
            return _fallback(res, "Series.apply", [self])

    def map(self, arg, na_action=None):
        if _depth():
            return super().map(arg, na_action)
        with _guard:
            return _elementwise(super().map(arg, na_action), "map", [self])

    def where(self, cond, other=np.nan, **kwargs):
        if _depth():
            return super().where(cond, other, **kwargs)
        with _guard:
            return _binary(super().where(cond, other, **kwargs), "where", self, cond, other)

    def mask(self, cond, other=np.nan, **kwargs):
        if _depth():
            return super().mask(cond, other, **kwargs)
        with _guard:
            return _binary(super().mask(cond, other, **kwargs), "mask", self, cond, other)


def _binary(res, op, *operands):
    if not isinstance(res, (pd.Series, pd.DataFrame)):
        return res
    name = getattr(op, "__name__", str(op)).strip("_")
    ops = [o for o in operands if is_tracked_frame(o)]
    others = [o for o in operands if not is_tracked_frame(o)]
    from ..tracked import TrackedArray
    if any(isinstance(o, TrackedArray) for o in others):
        res = _elementwise(res, name, ops)
        return _fallback_reason(res, f"{name} with a numpy TrackedArray operand: the array's lineage is not followed")
    return _elementwise(res, name, ops)


def _fallback_reason(res, reason):
    lin = lineage_of(res)
    _warn("whence: " + reason)
    return _attach(res, list(lin.parts), lin.node.op, [res], [reason])


class _TrackedIndexer:
    """``.loc`` / ``.iloc`` of a tracked object."""

    __slots__ = ("obj", "kind")

    def __init__(self, obj, kind):
        self.obj = obj
        self.kind = kind

    def _base(self):
        cls = pd.DataFrame if isinstance(self.obj, pd.DataFrame) else pd.Series
        return getattr(cls, self.kind).fget(self.obj)

    def __call__(self, *args, **kwargs):  # pragma: no cover - rarely used API
        return self._base()(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._base(), name)

    def _positions(self, key, labels):
        n = len(labels)
        if self.kind == "iloc":
            return np.arange(n, dtype=np.int64)[key] if not isinstance(key, (pd.Series,)) else \
                np.arange(n, dtype=np.int64)[np.asarray(key)]
        s = pd.Series(np.arange(n, dtype=np.int64), index=labels)
        r = s.loc[key]
        return r.to_numpy() if isinstance(r, pd.Series) else r

    def __getitem__(self, key):
        base = self._base()
        if _depth():
            return base[key]
        obj = self.obj
        with _guard:
            res = base[key]
            if not isinstance(res, (pd.DataFrame, pd.Series)):
                return res
            if callable(key):
                key = key(obj)
            is_frame = isinstance(obj, pd.DataFrame)
            if is_frame and isinstance(key, tuple) and len(key) == 2:
                rk, ck = key
            elif isinstance(key, tuple) and not is_frame and len(key) == 1:
                rk, ck = key[0], slice(None)
            else:
                rk, ck = key, slice(None)
            if callable(rk):
                rk = rk(obj)
            if callable(ck):
                ck = ck(obj)
            try:
                rpos = self._positions(rk, obj.index)
                cpos = self._positions(ck, obj.columns) if is_frame else 0
            except Exception:
                return _fallback(res, f"{self.kind}[...]", [obj])
            lin = lineage_of(obj)
            row_scalar = np.ndim(rpos) == 0
            col_scalar = np.ndim(cpos) == 0
            if row_scalar and col_scalar:
                return res
            if row_scalar:  # one row as a Series: output row j is the cell (rpos, cpos[j])
                cpos = np.atleast_1d(cpos)
                parts = []
                k = len(cpos)
                nidx = res.index.nlevels
                for j, c in enumerate(cpos):
                    sel = np.full(k, -1, np.int64)
                    sel[j] = rpos
                    crow = [-1] * nidx + [lin.nidx + int(c)]
                    parts.extend(_remap(lin, crow, sel))
                return _attach(res, parts, f"{self.kind}[row]", [obj])
            rpos = np.asarray(rpos, np.int64)
            cols = [int(cpos)] if col_scalar else list(np.asarray(cpos, np.int64))
            crow = list(range(lin.nidx)) + [lin.nidx + c for c in cols]
            if res.index.nlevels != lin.nidx:
                crow = [-1] * res.index.nlevels + crow[lin.nidx:]
            if len(rpos) != len(res):
                return _fallback(res, f"{self.kind}[...]", [obj])
            parts = _remap(lin, crow, rpos)
            if is_tracked_frame(rk) and _is_bool_mask(rk):
                sel_mask = _align_rows(rk, obj)
                if sel_mask is not False:
                    msel = rpos if sel_mask is None else sel_mask[rpos]
                    cparts, _ = _control_parts(rk, msel, len(res), len(crow))
                    parts += cparts
            return _attach(res, parts, self.kind, [obj, rk] if is_tracked_frame(rk) else [obj])

    def __setitem__(self, key, value):
        base = self._base()
        if _depth():
            base[key] = value
            return
        obj = self.obj
        with _guard:
            lin = lineage_of(obj)
            old_cols = obj.columns if isinstance(obj, pd.DataFrame) else None
            base[key] = value
            _after_cell_write(obj, lin, key, value, self.kind, old_cols)


def _after_cell_write(obj, lin, key, value, kind, old_cols):
    """Lineage after ``obj.loc/iloc[key] = value``: the written cells take the value's lineage."""
    is_frame = isinstance(obj, pd.DataFrame)
    try:
        if is_frame and isinstance(key, tuple) and len(key) == 2:
            rk, ck = key
        else:
            rk, ck = key, slice(None)
        if callable(rk):
            rk = rk(obj)
        n = len(obj)
        if kind == "iloc":
            rpos = np.atleast_1d(np.arange(n, dtype=np.int64)[rk if not isinstance(rk, pd.Series) else np.asarray(rk)])
        else:
            rpos = np.atleast_1d(pd.Series(np.arange(n, dtype=np.int64), index=obj.index).loc[rk])
            rpos = np.asarray(rpos, np.int64)
        if is_frame:
            cols = obj.columns
            if kind == "iloc":
                cpos = np.atleast_1d(np.arange(len(cols))[ck])
            else:
                cpos = np.atleast_1d(pd.Series(np.arange(len(cols)), index=cols).loc[ck])
        else:
            cpos = np.array([0])
    except Exception:
        cpos = None
    nidx = obj.index.nlevels
    ncols = obj.shape[1] if is_frame else 1
    if cpos is None or len(obj) != lin.n:
        parts = [p.with_(rel=RowRel.everything(len(obj), p.rel.n_src),
                         cmat=np.broadcast_to(p.cmat.any(0), (nidx + ncols, p.cmat.shape[1])).copy())
                 for p in lin.parts]
        _attach_inplace(obj, parts, f"{kind} write", [lin], [f"a {kind} write whence could not follow"])
        _warn(f"whence: a {kind} write whence could not follow; the frame is marked PARTIAL")
        return
    # columns added by the write are new, empty
    crow = list(range(lin.nidx)) + [lin.nidx + j for j in range(lin.ncols)] + [-1] * (ncols - lin.ncols)
    written = np.zeros(nidx + ncols, bool)
    written[nidx + np.asarray(cpos, np.int64)] = True
    keep_sel = np.arange(len(obj), dtype=np.int64)
    keep_sel[rpos] = -1
    parts = []
    for p in _remap(lin, crow):
        if p.wide:
            parts.append(p)
            continue
        cm_w = p.cmat & written[:, None]
        cm_k = p.cmat & ~written[:, None]
        if cm_k.any():
            parts.append(p.with_(cmat=cm_k))
        if cm_w.any():
            parts.append(p.with_(rel=p.rel.take(keep_sel), cmat=cm_w))
    vlin = lineage_of(value)
    reasons = []
    if vlin is not None:
        vsel = np.full(len(obj), -1, np.int64)
        if len(value) == len(rpos) and not isinstance(value, pd.Series):
            vsel[rpos] = np.arange(len(rpos))
        else:
            al = _align_rows(value, obj)
            if al is False:
                reasons.append("a write from a Series whose index cannot be aligned")
                al = np.full(len(obj), -1, np.int64)
            vsel[rpos] = (np.arange(len(obj)) if al is None else al)[rpos]
        for p in vlin.parts:
            row = p.data_row(vlin.nidx)
            cm = np.zeros((nidx + ncols, row.shape[0]), bool)
            cm[written] = row
            parts.append(Part(p.node, p.rel.take(vsel), cm, p.control))
    _attach_inplace(obj, parts, f"{kind} write", [lin, vlin], reasons)


def _subset_rows(src, res, op, mask=None):
    """``res`` holds rows of ``src`` (all its columns): positions recovered from the index or the mask."""
    lin = lineage_of(src)
    sel = None
    mvals = None
    if mask is not None and _is_bool_mask(mask) and len(mask) == len(src):
        if isinstance(mask, pd.Series):
            al = _align_rows(mask, src)
            if al is None:
                mvals = mask.to_numpy(dtype=bool, na_value=False) if hasattr(mask, "to_numpy") else np.asarray(mask)
        else:
            mvals = np.asarray(mask, dtype=bool)
        if mvals is not None:
            sel = np.flatnonzero(mvals).astype(np.int64)
            if len(sel) != len(res):
                sel = None
    if sel is None:
        sel = _row_positions(src, res)
    if sel is None:
        return _fallback(res, op, [src])
    crow = None
    if isinstance(res, pd.DataFrame) and not res.columns.equals(src.columns):
        return _fallback(res, op, [src])
    cache = {}
    parts = _remap(lin, crow, sel, cache)
    inputs = [src]
    if mask is not None and is_tracked_frame(mask):
        al = _align_rows(mask, src)
        if al is not False:
            msel = sel if al is None else al[sel]
            n, nidx, ncols, _ = _dims(res)
            cparts, _ = _control_parts(mask, msel, len(res), nidx + ncols, cache if al is None else None)
            parts += cparts
            inputs.append(mask)
    return _attach(res, parts, op, inputs)


class TrackedFrame(_TrackedMixin, pd.DataFrame):
    """A :class:`pandas.DataFrame` with row and column lineage.

    Made by :func:`whence.read_csv`, :func:`whence.read_parquet` or :func:`whence.track_frame`; every pandas
    operation on it returns tracked objects.  ``isinstance(df, pandas.DataFrame)`` holds.
    """

    @property
    def _constructor(self):
        return TrackedFrame

    @property
    def _constructor_sliced(self):
        return TrackedSeries

    def _constructor_from_mgr(self, mgr, axes):
        return TrackedFrame._from_mgr(mgr, axes=axes)

    def _constructor_sliced_from_mgr(self, mgr, axes):
        ser = TrackedSeries._from_mgr(mgr, axes)
        object.__setattr__(ser, "_name", None)
        return ser

    # -- selection -------------------------------------------------------------------------------------------
    def __getitem__(self, key):
        if _depth():
            return super().__getitem__(key)
        with _guard:
            if callable(key):
                key = key(self)
            res = super().__getitem__(key)
            if not isinstance(res, (pd.DataFrame, pd.Series)):
                return res
            lin = lineage_of(self)
            cols = self.columns
            if isinstance(res, pd.Series) and len(res) == len(self) and _hashable(key) and key in cols:
                loc = cols.get_loc(key)
                if isinstance(loc, (int, np.integer)):
                    crow = list(range(lin.nidx)) + [lin.nidx + int(loc)]
                    return _attach(res, _remap(lin, crow), "column", [self], detail=str(key))
            if isinstance(res, pd.DataFrame) and len(res) == len(self) and _is_label_list(key):
                if cols.is_unique:
                    pos = cols.get_indexer(res.columns)
                    if (pos >= 0).all():
                        crow = list(range(lin.nidx)) + [lin.nidx + int(p) for p in pos]
                        return _attach(res, _remap(lin, crow), "columns", [self])
            if isinstance(res, pd.DataFrame) and res.columns.equals(cols):
                mask = key if (_is_bool_mask(key) or
                               (isinstance(key, list) and key and all(isinstance(k, (bool, np.bool_)) for k in key))) else None
                if isinstance(key, list) and mask is not None:
                    mask = np.asarray(key, bool)
                if isinstance(key, slice) or mask is not None:
                    return _subset_rows(self, res, "filter" if mask is not None else "slice", mask)
            return _fallback(res, "DataFrame[...]", [self])

    def __setitem__(self, key, value):
        if _depth():
            return super().__setitem__(key, value)
        with _guard:
            lin = lineage_of(self)
            old_cols = self.columns
            if callable(value):
                value = value(self)
            super().__setitem__(key, value)
            _after_setitem(self, lin, key, value, old_cols)

    def __delitem__(self, key):
        if _depth():
            return super().__delitem__(key)
        with _guard:
            lin = lineage_of(self)
            old = self.columns
            super().__delitem__(key)
            pos = old.get_indexer(self.columns) if old.is_unique else None
            if pos is None:
                _attach_inplace(self, lin.parts, "delitem", [lin], ["deleting a duplicated column label"])
                return
            crow = list(range(lin.nidx)) + [lin.nidx + int(p) for p in pos]
            _attach_inplace(self, _remap(lin, crow), "delitem", [lin])

    def pop(self, item):
        if _depth():
            return super().pop(item)
        col = self[item]
        del self[item]
        return col

    def insert(self, loc, column, value, allow_duplicates=pd.api.extensions.no_default):
        if _depth():
            return super().insert(loc, column, value, allow_duplicates=allow_duplicates)
        with _guard:
            lin = lineage_of(self)
            old = self.columns
            super().insert(loc, column, value, allow_duplicates=allow_duplicates)
            _after_setitem(self, lin, column, value, old, insert_at=loc)

    def assign(self, **kwargs):
        if _depth():
            return super().assign(**kwargs)
        data = self.copy(deep=False)
        for k, v in kwargs.items():
            data[k] = v(data) if callable(v) else v
        return data

    def copy(self, deep=True):
        if _depth():
            return super().copy(deep=deep)
        with _guard:
            res = super().copy(deep=deep)
            object.__setattr__(res, "_wh", lineage_of(self))
            return res

    def head(self, n=5):
        if _depth():
            return super().head(n)
        with _guard:
            return _positional(self, super().head(n), np.arange(len(self), dtype=np.int64)[:n], "head")

    def tail(self, n=5):
        if _depth():
            return super().tail(n)
        with _guard:
            idx = np.arange(len(self), dtype=np.int64)
            return _positional(self, super().tail(n), idx[-n:] if n else idx[:0], "tail")

    def query(self, expr, **kwargs):
        if _depth():
            return super().query(expr, **kwargs)
        with _guard:
            inplace = kwargs.pop("inplace", False)
            mask = pd.DataFrame.eval(self, expr, **kwargs)
            if not isinstance(mask, pd.Series) or mask.dtype != bool:
                res = super().query(expr, **kwargs)
                return _fallback(res, "query", [self])
            mvals = mask.to_numpy(dtype=bool)
            sel = np.flatnonzero(mvals).astype(np.int64)
            res = pd.DataFrame.take(self, sel)
            lin = lineage_of(self)
            parts = _remap(lin, sel=sel)
            used = [c for c in _names_in(expr) if c in self.columns or c in self.index.names]
            rows = _col_rows(self, used) or []
            parts += _col_control(lin, sel, rows, lin.nidx + lin.ncols)
            if inplace:
                self._update_inplace(res)
                _attach_inplace(self, parts, "query", [lin])
                return None
            return _attach(res, parts, "query", [self], detail=expr)

    def set_index(self, keys, **kwargs):
        if _depth():
            return super().set_index(keys, **kwargs)
        with _guard:
            inplace = kwargs.pop("inplace", False)
            append = kwargs.get("append", False)
            lin = lineage_of(self)
            res = super().set_index(keys, **kwargs)
            klist = keys if isinstance(keys, list) else [keys]
            crow = list(range(lin.nidx)) if append else []
            reasons = []
            for k in klist:
                if _hashable(k) and k in self.columns:
                    crow.append(lin.nidx + int(self.columns.get_loc(k)))
                else:
                    crow.append(-1)
                    if is_tracked_frame(k):
                        reasons.append("set_index with a Series or array key: the key's lineage is not followed")
            pos = self.columns.get_indexer(res.columns) if self.columns.is_unique else None
            if pos is None or (pos < 0).any():
                return _fallback(res, "set_index", [self])
            crow += [lin.nidx + int(p) for p in pos]
            parts = _remap(lin, crow)
            if inplace:
                self._update_inplace(res)
                _attach_inplace(self, parts, "set_index", [lin], reasons)
                return None
            return _attach(res, parts, "set_index", [self], reasons)

    def reset_index(self, level=None, **kw):
        if _depth():
            return super().reset_index(level, **kw)
        with _guard:
            inplace = kw.pop("inplace", False)
            drop = kw.get("drop", False)
            lin = lineage_of(self)
            res = super().reset_index(level, **kw)
            if level is not None:
                return _fallback(res, "reset_index(level=...)", [self])
            if drop:
                crow = [-1] + [lin.nidx + j for j in range(lin.ncols)]
            else:
                crow = [-1] + list(range(lin.nidx)) + [lin.nidx + j for j in range(lin.ncols)]
            if len(crow) != 1 + res.shape[1]:
                return _fallback(res, "reset_index", [self])
            parts = _remap(lin, crow)
            if inplace:
                self._update_inplace(res)
                _attach_inplace(self, parts, "reset_index", [lin])
                return None
            return _attach(res, parts, "reset_index", [self])

    def drop(self, labels=None, **kwargs):
        if _depth():
            return super().drop(labels, **kwargs)
        with _guard:
            lin = lineage_of(self)
            inplace = kwargs.pop("inplace", False)
            res = super().drop(labels, **kwargs)
            if not self.columns.is_unique:
                return _fallback(res, "drop", [self])
            cpos = self.columns.get_indexer(res.columns)
            if len(res) == len(self) and res.index.equals(self.index):
                sel = None
            else:
                sel = _row_positions(self, res)
                if sel is None:
                    return _fallback(res, "drop", [self])
            crow = list(range(lin.nidx)) + [lin.nidx + int(p) for p in cpos]
            parts = _remap(lin, crow, sel)
            if inplace:
                self._update_inplace(res)
                _attach_inplace(self, parts, "drop", [lin])
                return None
            return _attach(res, parts, "drop", [self])

    def rename(self, *args, **kwargs):
        if _depth():
            return super().rename(*args, **kwargs)
        with _guard:
            lin = lineage_of(self)
            inplace = kwargs.pop("inplace", False)
            res = super().rename(*args, **kwargs)
            if inplace:
                self._update_inplace(res)
                _attach_inplace(self, lin.parts, "rename", [lin])
                return None
            return _attach(res, list(lin.parts), "rename", [self])

    def merge(self, right, how="inner", on=None, left_on=None, right_on=None, left_index=False,
              right_index=False, sort=False, suffixes=("_x", "_y"), copy=pd.api.extensions.no_default,
              indicator=False, validate=None):
        kw = dict(how=how, on=on, left_on=left_on, right_on=right_on, left_index=left_index,
                  right_index=right_index, sort=sort, suffixes=suffixes, indicator=indicator, validate=validate)
        if _depth():
            return super().merge(right, **kw)
        with _guard:
            return _merge(self, right, kw)

    def join(self, other, on=None, how="left", **kwargs):
        if _depth():
            return super().join(other, on=on, how=how, **kwargs)
        with _guard:
            if isinstance(other, (list, tuple)):
                res = super().join(other, on=on, how=how, **kwargs)
                return _fallback(res, "join with a list", [self, *other])
            if isinstance(other, pd.Series):
                other = other.to_frame()
            sfx = kwargs.get("suffixes") or (kwargs.get("lsuffix", ""), kwargs.get("rsuffix", ""))
            kw = dict(how=how, left_on=on, right_index=True, left_index=on is None, sort=kwargs.get("sort", False),
                      suffixes=tuple(sfx), validate=kwargs.get("validate"))
            return _merge(self, other, kw, join=(on, kwargs))

    def apply(self, func, axis=0, raw=False, result_type=None, args=(), by_row="compat", engine=None,
              engine_kwargs=None, **kwargs):
        # engine / engine_kwargs only when given: pandas 2.x takes engine=None as its numba path
        kwargs.update({k: v for k, v in (("engine", engine), ("engine_kwargs", engine_kwargs)) if v is not None})
        if _depth():
            return super().apply(func, axis=axis, raw=raw, result_type=result_type, args=args, by_row=by_row,
                                 **kwargs)
        with _guard:
            res = super().apply(func, axis=axis, raw=raw, result_type=result_type, args=args, by_row=by_row,
                                **kwargs)
            return _apply_lineage(self, res, axis)

    def melt(self, id_vars=None, value_vars=None, var_name=None, value_name="value", col_level=None,
             ignore_index=True):
        if _depth():
            return super().melt(id_vars, value_vars, var_name, value_name, col_level, ignore_index)
        with _guard:
            res = super().melt(id_vars, value_vars, var_name, value_name, col_level, ignore_index)
            return _melt_lineage(self, res, id_vars, value_vars, ignore_index)

    def pivot_table(self, *args, **kwargs):
        if _depth():
            return super().pivot_table(*args, **kwargs)
        with _guard:
            res = super().pivot_table(*args, **kwargs)
            return _pivot_lineage(self, res, args, kwargs)


def _hashable(k):
    try:
        hash(k)
        return True
    except TypeError:
        return False


def _is_label_list(key):
    return isinstance(key, (list, pd.Index, np.ndarray, tuple)) and getattr(key, "dtype", None) != bool and not (
        isinstance(key, list) and key and all(isinstance(k, (bool, np.bool_)) for k in key))


def _names_in(expr):
    """Identifiers and backtick-quoted names in a query expression."""
    out = []
    for part in expr.split("`")[1::2]:
        out.append(part)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(expr.replace("`", " ")).readline):
            if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
                out.append(tok.string)
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def _positional(src, res, sel, op):
    lin = lineage_of(src)
    if len(sel) != len(res):
        return _fallback(res, op, [src])
    return _attach(res, _remap(lin, sel=sel), op, [src])


def _after_setitem(obj, lin, key, value, old_cols, insert_at=None):
    """Lineage after ``obj[key] = value`` (column assignment; a new column is added at the end)."""
    cols = obj.columns
    nidx = obj.index.nlevels
    from ..tracked import TrackedArray
    if not _hashable(key) or isinstance(key, tuple) and key not in cols:
        if isinstance(key, list) and isinstance(value, pd.DataFrame):
            pass
        else:
            _attach_inplace(obj, [p.with_(rel=RowRel.everything(len(obj), p.rel.n_src),
                                          cmat=np.broadcast_to(p.cmat.any(0),
                                                               (nidx + obj.shape[1], p.cmat.shape[1])).copy())
                                  for p in lin.parts], "setitem", [lin],
                            ["a setitem with a key whence does not cover"])
            _warn("whence: this setitem is not covered; the frame is marked PARTIAL")
            return
    keys = list(key) if isinstance(key, list) else [key]
    # old columns keep their positions (by label); new ones are empty before the value is added
    if old_cols.is_unique and cols.is_unique:
        pos = old_cols.get_indexer(cols)
    else:
        pos = np.arange(len(cols))
        pos[len(old_cols):] = -1
    crow = list(range(lin.nidx)) + [lin.nidx + int(p) if p >= 0 else -1 for p in pos]
    written = np.zeros(nidx + len(cols), bool)
    for k in keys:
        loc = cols.get_loc(k)
        if isinstance(loc, (int, np.integer)):
            written[nidx + int(loc)] = True
        else:
            written[nidx:][np.asarray(loc) if not isinstance(loc, slice) else np.arange(len(cols))[loc]] = True
    crow = [(-1 if written[i] else c) for i, c in enumerate(crow)]
    parts = _remap(lin, crow)
    reasons = []
    inputs = [lin]
    if isinstance(value, pd.DataFrame) and len(keys) == value.shape[1]:
        vals = [value.iloc[:, j] for j in range(value.shape[1])]
    else:
        vals = [value] * len(keys)
    for k, v in zip(keys, vals):
        j = nidx + int(cols.get_loc(k))
        vlin = lineage_of(v)
        if vlin is not None:
            inputs.append(vlin)
            al = _align_rows(v, obj)
            if al is False:
                reasons.append(f"column {k!r} was assigned from a Series whose index cannot be aligned")
                continue
            for p in vlin.parts:
                row = p.data_row(vlin.nidx)
                if not row.any():
                    continue
                cm = np.zeros((nidx + len(cols), row.shape[0]), bool)
                cm[j] = row
                parts.append(Part(p.node, p.rel if al is None else p.rel.take(al), cm, p.control))
        elif isinstance(v, TrackedArray):
            arr_node = v._node
            if v.ndim == 1 and v.shape[0] == len(obj):
                cm = np.zeros((nidx + len(cols), 1), bool)
                cm[j] = True
                parts.append(Part(arr_node, RowRel.identity(len(obj)), cm))
            else:
                reasons.append(f"column {k!r} was assigned from a TrackedArray of shape {v.shape}")
    _attach_inplace(obj, parts, "setitem", inputs, reasons)


def _merge(left, right, kw, join=None):
    """``left.merge(right, **kw)`` with row-id columns carried through pandas' own join."""
    lin_l = lineage_of(left)
    if not isinstance(right, pd.DataFrame):
        right = right.to_frame() if isinstance(right, pd.Series) else right
    lin_r = lineage_of(right)
    res, sel_l, sel_r = _join_rows(left, right, kw, join)
    res = TrackedFrame(res)
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
        shared_keys += [a for a, b in zip(lo, ro) if _hashable(a) and a == b and a in lcols and b in rcols]
    overlap = (set(lcols) & set(rcols)) - set(shared_keys)
    lmap, rmap = {}, {}
    for j, c in enumerate(lcols):
        lmap.setdefault(_suffixed(c, sfx[0], overlap), []).append(j)
    for j, c in enumerate(rcols):
        if c in shared_keys:
            lab = c
        else:
            lab = _suffixed(c, sfx[1], overlap)
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
            if i < lin_r.nidx and _hashable(lab) and lab in res.columns:
                crow_r[nidx + int(res.columns.get_loc(lab))] = i
        rkeys_rows = list(range(lin_r.nidx))
    else:
        rkeys_rows = None
    lkeys_rows = None
    if kw.get("left_index") and not kw.get("right_index") and cols_u:
        for i, lab in enumerate(rkeys):
            if i < lin_l.nidx and _hashable(lab) and lab in res.columns:
                crow_l[nidx + int(res.columns.get_loc(lab))] = i
        lkeys_rows = list(range(lin_l.nidx))
    if kw.get("left_index") and kw.get("right_index"):
        lkeys_rows = list(range(lin_l.nidx))
        rkeys_rows = list(range(lin_r.nidx)) if lin_r is not None else None
    parts = _remap(lin_l, crow_l, sel_l)
    if lin_r is not None:
        parts += _remap(lin_r, crow_r, sel_r)
    # control: the join keys of both rows chose the pairing
    ncells = nidx + ncols
    lrows = lkeys_rows if lkeys_rows is not None else (_col_rows(left, lkeys) if lkeys else [])
    if lrows:
        parts += _col_control(lin_l, sel_l, lrows, ncells)
    if lin_r is not None:
        rrows = rkeys_rows if rkeys_rows is not None else (_col_rows(right, rkeys) if rkeys else [])
        if rrows:
            parts += _col_control(lin_r, sel_r, rrows, ncells)
    return _attach(res, parts, "merge" if join is None else "join", [left, right] if lin_r else [left], reasons,
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
            mk = {k: v for k, v in kw.items() if k != "validate"}
            op = _MergeOperation(lp, rp, **mk)
            _, li, ri = op._get_join_info()
            res = pd.DataFrame.merge(lp, rp, **kw)
            n = len(res)
            sel_l = np.arange(n, dtype=np.int64) if li is None else np.asarray(li, np.int64)
            sel_r = np.arange(n, dtype=np.int64) if ri is None else np.asarray(ri, np.int64)
            if len(sel_l) == n and len(sel_r) == n:
                return TrackedFrame(res), sel_l, sel_r
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
    return TrackedFrame(res), sel_l, sel_r


def _suffixed(c, s, overlap):
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
    return [k for k in lk if _hashable(k)], [k for k in rk if _hashable(k)]


def _apply_lineage(src, res, axis):
    if axis in (1, "columns"):
        if isinstance(res, (pd.Series, pd.DataFrame)) and len(res) == len(src):
            return _row_preserving(res, "apply(axis=1)", src)
        return _fallback(res, "apply(axis=1)", [src])
    lin = lineage_of(src)
    if isinstance(res, pd.DataFrame) and res.shape == src.shape and res.columns.equals(src.columns):
        # column-wise: each cell derives from the whole column it was computed from
        parts = []
        for p in lin.parts:
            grp = p.rel.group(np.zeros(lin.n, np.int64), 1).take(np.zeros(len(res), np.int64))
            parts.append(Part(p.node, grp, p.cmat, p.control, p.wide))
        return _attach(res, parts, "apply", [src])
    if isinstance(res, pd.Series) and len(res) == src.shape[1] and res.index.equals(src.columns):
        parts = []
        k = len(res)
        for p in lin.parts:
            whole = p.rel.group(np.zeros(lin.n, np.int64), 1)
            for j in range(k):
                row = p.cmat[0] if p.wide else p.cmat[lin.nidx + j]
                if not row.any():
                    continue
                sel = np.full(k, -1, np.int64)
                sel[j] = 0
                cm = np.zeros((res.index.nlevels + 1, row.shape[0]), bool)
                cm[-1] = row
                parts.append(Part(p.node, whole.take(sel), cm, p.control))
        return _attach(res, parts, "apply", [src])
    return _fallback(res, "apply", [src])


def _melt_lineage(src, res, id_vars, value_vars, ignore_index):
    lin = lineage_of(src)
    cols = src.columns
    if not cols.is_unique or not ignore_index:
        return _fallback(res, "melt", [src])
    ids = [] if id_vars is None else (list(id_vars) if isinstance(id_vars, (list, tuple)) else [id_vars])
    if value_vars is None:
        vals = [c for c in cols if c not in ids]
    else:
        vals = list(value_vars) if isinstance(value_vars, (list, tuple)) else [value_vars]
    n = len(src)
    if len(res) != n * len(vals) or res.shape[1] != len(ids) + 2:
        return _fallback(res, "melt", [src])
    nidx = res.index.nlevels
    ncells = nidx + res.shape[1]
    base = np.tile(np.arange(n, dtype=np.int64), len(vals))
    parts = []
    crow = [-1] * nidx + [lin.nidx + int(cols.get_loc(c)) for c in ids] + [-1, -1]
    parts += _remap(lin, crow, base)
    for k, v in enumerate(vals):
        sel = np.full(n * len(vals), -1, np.int64)
        sel[k * n:(k + 1) * n] = np.arange(n)
        crow = [-1] * (ncells - 1) + [lin.nidx + int(cols.get_loc(v))]
        parts += _remap(lin, crow, sel)
    return _attach(res, parts, "melt", [src])


def _pivot_lineage(src, res, args, kwargs):
    names = ["values", "index", "columns", "aggfunc", "fill_value", "margins", "dropna", "margins_name",
             "observed", "sort"]
    kw = dict(zip(names, args))
    kw.update(kwargs)
    values, index, columns = kw.get("values"), kw.get("index"), kw.get("columns")
    if kw.get("margins") or index is None or not isinstance(res, pd.DataFrame):
        return _fallback(res, "pivot_table", [src])
    lin = lineage_of(src)
    lst = lambda v: [] if v is None else (list(v) if isinstance(v, (list, tuple)) else [v])  # noqa: E731
    idx, cls_, vals = lst(index), lst(columns), lst(values)
    if not vals:
        vals = [c for c in src.columns if c not in idx + cls_]
    try:
        keys_i = pd.MultiIndex.from_frame(pd.DataFrame(src[idx])) if len(idx) > 1 else pd.Index(src[idx[0]])
        out_row = res.index.get_indexer(keys_i)
    except Exception:
        return _fallback(res, "pivot_table", [src])
    nidx = res.index.nlevels
    parts = []
    rcols = res.columns
    for v in vals:
        vrow = _col_rows(src, [v])
        if vrow is None:
            return _fallback(res, "pivot_table", [src])
        if cls_:
            ck = src[cls_].itertuples(index=False, name=None) if len(cls_) > 1 else src[cls_[0]]
            ck = list(ck)
            if isinstance(rcols, pd.MultiIndex):
                multi_values = rcols.nlevels == len(cls_) + 1
                targets = [((v,) + (k if isinstance(k, tuple) else (k,))) if multi_values else
                           (k if isinstance(k, tuple) else (k,)) for k in ck]
                out_col = rcols.get_indexer(pd.MultiIndex.from_tuples(targets, names=rcols.names)
                                            if targets else rcols[:0])
            else:
                out_col = rcols.get_indexer(pd.Index(ck))
        else:
            j = rcols.get_indexer([v])[0] if v in rcols else -1
            out_col = np.full(len(src), j)
        out_col = np.asarray(out_col, np.int64)
        for j in np.unique(out_col[out_col >= 0]):
            g = np.where((out_col == j) & (out_row >= 0), out_row, -1)
            for p in lin.parts:
                row = _rows_union(p, vrow)
                if not row.any():
                    continue
                cm = np.zeros((nidx + res.shape[1], row.shape[0]), bool)
                cm[nidx + j] = row
                parts.append(Part(p.node, p.rel.group(g, len(res)), cm, p.control))
    # the index cells: the key cells of the rows grouped into each output row (rows with a missing
    # column key are left out by the group-by; rows whose values are all missing still formed the row)
    contrib = out_row >= 0
    if cls_:
        contrib &= pd.DataFrame(src[cls_]).notna().all(axis=1).to_numpy()
    krows = _col_rows(src, idx)
    if krows:
        for p in lin.parts:
            cm = np.zeros((nidx + res.shape[1], p.cmat.shape[1]), bool)
            for i, kr in enumerate(krows[:nidx]):
                cm[i] = _rows_union(p, [kr])
            if cm.any():
                parts.append(Part(p.node, p.rel.group(np.where(contrib, out_row, -1), len(res)), cm, p.control))
    return _attach(res, parts, "pivot_table", [src])


# --- group-by --------------------------------------------------------------------------------------------------

_REDUCERS = frozenset(["sum", "mean", "median", "min", "max", "std", "var", "sem", "prod", "count", "nunique",
                       "first", "last", "any", "all", "size", "idxmin", "idxmax", "skew", "quantile"])


class _TrackedWindow:
    """``rolling`` / ``expanding`` / ``ewm`` / ``resample`` of a tracked object: results are marked PARTIAL
    (every cell derives from every cell of the input), never left without lineage."""

    def __init__(self, obj, inner, name):
        self._obj, self._inner, self._name = obj, inner, name

    def __repr__(self):
        return repr(self._inner)

    def __iter__(self):
        return iter(self._inner)

    def __getitem__(self, key):
        with _guard:
            return _TrackedWindow(self._obj, self._inner[key], self._name)

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with _guard:
                res = attr(*args, **kwargs)
                if isinstance(res, (pd.DataFrame, pd.Series)):
                    return _fallback(res, f"{self._name}().{name}", [self._obj])
                return res
        return call


def _window_method(name):
    base_f = getattr(pd.DataFrame, name)
    base_s = getattr(pd.Series, name)

    @functools.wraps(base_f)
    def method(self, *args, **kwargs):
        base = base_f if isinstance(self, pd.DataFrame) else base_s
        if _depth():
            return base(self, *args, **kwargs)
        with _guard:
            inner = base(self, *args, **kwargs)
        return _TrackedWindow(self, inner, name)

    return method


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
        attr = getattr(self._gb, name)
        if name in _REDUCERS:
            def red(*args, **kwargs):
                with _guard:
                    res = attr(*args, **kwargs)
                return self._lineage(res, name)
            return red
        if callable(attr):
            def other(*args, **kwargs):
                with _guard:
                    res = attr(*args, **kwargs)
                return _fallback(res, f"groupby().{name}", [self._obj])
            return other
        return attr

    def __getitem__(self, key):
        with _guard:
            gb = self._gb[key]
        return TrackedGroupBy(self._obj, gb, self._by, self._kwargs, selection=key)

    def _group_codes(self):
        if self._codes is None:
            with _guard:
                g = self._gb.ngroup()
                codes = g.to_numpy(dtype=np.float64, na_value=-1) if g.dtype.kind == "f" else g.to_numpy()
            self._codes = np.asarray(codes, np.int64)
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
            if _hashable(b) and ((isinstance(obj, pd.DataFrame) and b in obj.columns) or b in obj.index.names):
                r = _col_rows(obj, [b])
                if r:
                    rows.extend(r)
        return rows

    def _key_labels(self):
        by = self._by
        blist = [] if by is None else (by if isinstance(by, list) else [by])
        return [b for b in blist if _hashable(b)]

    def agg(self, func=None, *args, **kwargs):
        with _guard:
            res = self._gb.agg(func, *args, **kwargs)
        named = {k: v for k, v in kwargs.items() if isinstance(v, tuple) and len(v) == 2}
        fname = func if isinstance(func, str) else None
        partial = None
        if callable(func) and not isinstance(func, str):
            partial = None  # a reduction by construction: each value derives from its group
        if fname is not None and fname not in _REDUCERS:
            partial = f"groupby().agg({fname!r}) is not a reduction whence knows"
        return self._lineage(res, "agg", named=named, reason=partial)

    aggregate = agg

    def size(self):
        with _guard:
            res = self._gb.size()
        return self._lineage(res, "size")

    def count(self):
        with _guard:
            res = self._gb.count()
        return self._lineage(res, "count")

    def transform(self, func, *args, **kwargs):
        with _guard:
            res = self._gb.transform(func, *args, **kwargs)
        obj = self._obj
        if len(res) != len(obj):
            return _fallback(res, "groupby().transform", [obj])
        codes = self._group_codes()
        ng = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 0
        reason = None
        if not (isinstance(func, str) and func in _REDUCERS):
            reason = (f"groupby().transform({getattr(func, '__name__', func)!r}): each cell is taken to derive "
                      f"from its whole group")
        return self._build(res, codes, ng, per_row=True, reason=reason)

    def _lineage(self, res, op, named=None, reason=None):
        if not isinstance(res, (pd.DataFrame, pd.Series)):
            return res
        codes = self._group_codes()
        ng = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 0
        if len(res) != ng:
            return _fallback(res, f"groupby().{op}", [self._obj])
        return self._build(res, codes, ng, per_row=False, named=named or {}, reason=reason, op=op)

    def _build(self, res, codes, ng, per_row, named=None, reason=None, op="agg"):
        obj = self._obj
        lin = lineage_of(obj)
        if not isinstance(res, (pd.DataFrame, pd.Series)):
            return res
        n_res, nidx, ncols, series = _dims(res)
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
                r = _col_rows(obj, [src])
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
        for p in lin.parts:
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
        return _attach(res, parts, f"groupby.{op}", [obj], reasons)

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
        if isinstance(obj, pd.DataFrame) and _hashable(lab) and lab in obj.columns:
            return lab
        if not isinstance(obj, pd.DataFrame):
            return obj.name if obj.name is not None else "__series__"
        if sel is not None and not isinstance(sel, list) and _hashable(sel):
            return sel
        if lab in ("size", 0):
            return "keys"
        return None


def _html_with_lineage(base):
    quiet = _quiet(base)

    @functools.wraps(base)
    def _repr_html_(self):
        table = quiet(self)
        if table is None:  # pandas' display.notebook_repr_html is off
            return None
        from ..notebook import frame_html
        return frame_html(self, table)

    return _repr_html_


def _series_html(self):
    from ..notebook import frame_html
    return frame_html(self, _quiet(pd.DataFrame.to_html)(self.to_frame()))


# formatting and writing record nothing and warn about nothing
for _cls, _base in ((TrackedFrame, pd.DataFrame), (TrackedSeries, pd.Series)):
    for _name in ("__repr__", "_repr_html_", "to_string", "to_html", "to_csv", "to_parquet", "to_json",
                  "to_markdown", "to_excel", "to_dict", "to_records", "info", "equals", "describe", "to_latex",
                  "to_pickle", "to_feather", "to_sql", "memory_usage", "_repr_latex_"):
        if hasattr(_base, _name):
            setattr(_cls, _name, _quiet(getattr(_base, _name)))
    for _name in ("astype", "fillna", "replace", "round", "clip", "abs", "isna", "notna", "isnull", "notnull",
                  "infer_objects", "convert_dtypes", "__neg__", "__pos__", "__invert__", "__abs__", "bfill",
                  "ffill"):
        if hasattr(_base, _name) and _name not in ("bfill", "ffill"):
            setattr(_cls, _name, _same(_name)(getattr(_base, _name)))
    for _name, _ign in (("sort_values", "ignore_index"), ("dropna", "ignore_index"),
                        ("drop_duplicates", "ignore_index"), ("sample", "ignore_index")):
        if hasattr(_base, _name):
            setattr(_cls, _name, _rows_op(_name, _ign)(getattr(_base, _name)))
    for _name in ("rolling", "expanding", "ewm", "resample"):
        if hasattr(_base, _name):
            setattr(_cls, _name, _window_method(_name))


def _sort_index(self, *args, **kwargs):
    base = pd.DataFrame.sort_index if isinstance(self, pd.DataFrame) else pd.Series.sort_index
    if _depth():
        return base(self, *args, **kwargs)
    with _guard:
        if kwargs.get("inplace") or kwargs.get("axis", 0) not in (0, "index"):
            res = base(self, *args, **kwargs)
            return res if res is None else _fallback(res, "sort_index", [self])
        ignore = kwargs.pop("ignore_index", False)
        res = _subset_rows(self, base(self, *args, **kwargs), "sort_index")
        if ignore:
            res.index = pd.RangeIndex(len(res))
            lin = lineage_of(res)
            res = _attach(res, _remap(lin, [-1] + [lin.nidx + j for j in range(lin.ncols)]), "sort_index", [res])
        return res


TrackedFrame.sort_index = _sort_index
TrackedSeries.sort_index = _sort_index

# notebooks: pandas' table with a lineage summary under it (a Series has no HTML of its own in pandas)
TrackedFrame._repr_html_ = _html_with_lineage(pd.DataFrame._repr_html_)
TrackedSeries._repr_html_ = _series_html
