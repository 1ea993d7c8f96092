"""Cellwise bucket: results of the same shape whose cell (i, j) derives from cell (i, j) of each aligned
operand (operators, ufuncs, casts, fills, ``where``/``mask``, ``isin``, ``between``, ``copy``).
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import pandas as pd

from ...tracked import TrackedArray
from ..relations import Part, RowRel
from .values import is_scalar_like, scalar_parts, scalar_sources
from .base import (as_tracked, attach, attach_inplace, guard_depth, dims, elementwise, fallback, fallback_reason,
                   guard, is_tracked_frame, lineage_of, remap, row_preserving, warn_partial)


def as_arrays(x):
    """``x`` with tracked Series and frames replaced by TrackedArrays (plain pandas objects by numpy arrays),
    lists and tuples walked; None when a tracked object holds values numpy lineage cannot carry."""
    from .meta import to_tracked_array
    if is_tracked_frame(x):
        arr = np.asarray(pd.Series.to_numpy(x) if isinstance(x, pd.Series) else pd.DataFrame.to_numpy(x))
        if arr.dtype.kind not in "biufc":
            return None
        return to_tracked_array(x, arr)
    if isinstance(x, (pd.Series, pd.DataFrame, pd.Index)):
        return np.asarray(x)
    if isinstance(x, (list, tuple)):
        out = [as_arrays(v) for v in x]
        if any(v is None and w is not None for v, w in zip(out, x)):
            return None
        return type(x)(out) if isinstance(x, list) else tuple(out)
    return x


def _scan(x, flag):
    if is_tracked_frame(x):
        flag[0] = True
    elif isinstance(x, (list, tuple)):
        for v in x:
            _scan(v, flag)
    elif isinstance(x, dict):
        for v in x.values():
            _scan(v, flag)


def same_shape_method(op):
    """A covered same-shape method: cells keep their lineage (elementwise, relabelling, casting)."""

    def make(base):
        @functools.wraps(base)
        def method(self, *args, **kwargs):
            if guard_depth():
                return base(self, *args, **kwargs)
            with guard:
                if kwargs.get("inplace"):
                    lin = lineage_of(self)
                    base(self, *args, **kwargs)
                    attach_inplace(self, lin.parts, op, [lin])
                    return None
                res = base(self, *args, **kwargs)
                if not isinstance(res, (pd.DataFrame, pd.Series)):
                    return res
                if res.shape != self.shape:
                    return fallback(res, op, [self])
                if op in _STAT_FILLS:
                    try:
                        out = _stat_fill(self, res, op, args, kwargs)
                    except (TypeError, ValueError, KeyError):  # arguments pandas took, read otherwise here
                        out = None
                    if out is not None:
                        return out
                extra = [a for a in list(args) + list(kwargs.values()) if is_tracked_frame(a)]
                if extra:
                    res = elementwise(res, op, [self] + extra)
                    return fallback_reason(res, f"{op} with a tracked argument: its cells are taken "
                                                 f"elementwise (a superset)")
                lin = lineage_of(self)
                if res.index.nlevels == lin.nidx:
                    return attach(res, lin.parts, op, [self], merged=True)
                crow = [-1] * res.index.nlevels + [lin.nidx + j for j in range(lin.ncols)]
                return attach(res, remap(lin, crow), op, [self])

        return method

    return make


# the fills whose value may be a statistic of tracked data (a scalar a reduction returned, or, for a frame's
# ``fillna``, a tracked Series of one value per column such as ``df.mean()``); ``where``/``mask`` are operators
# (:func:`_binary`): a statistic as ``other`` gives its cells to every cell, like any operand
_STAT_FILLS: tuple = ("fillna", "clip", "replace")


def _arg(args, kwargs, i, name, default=None):
    return kwargs[name] if name in kwargs else (args[i] if len(args) > i else default)


def _cells_mask(obj):
    a = np.asarray(obj.to_numpy() if isinstance(obj, (pd.Series, pd.DataFrame)) else obj)
    return (a[:, None] if a.ndim == 1 else a).astype(bool, copy=False)


def _stat_fill(src, res, op, args, kwargs):
    """Lineage of ``fillna`` / ``clip`` / ``replace`` whose value is a statistic of tracked data: the cells that
    took the value (``fillna``: the missing cells it filled; ``replace``: the cells equal to ``to_replace``;
    ``clip``: every cell, compared with the bound) get the cells it was computed from as *control* (a fitted
    statistic: a data query never expands it), and keep their own.  Returns None when no argument is such a
    statistic (the generic rule applies)."""
    from .values import scalar_lineage
    n, nidx, ncols, _ = dims(res)
    series = isinstance(src, pd.Series)
    labels = [src.name] if series else list(src.columns)
    # (value, cells that took it: bool (n, ncols) or None for every cell, columns it applies to or None)
    uses = []
    if op == "fillna":
        value = _arg(args, kwargs, 0, "value")
        if value is None or _arg(args, kwargs, 1, "method") is not None:
            return None
        filled = _cells_mask(src.isna()) & ~_cells_mask(res.isna())
        if isinstance(value, dict):
            uses = [(v, filled, [k]) for k, v in value.items() if scalar_lineage(v) is not None]
        elif is_tracked_frame(value) and isinstance(value, pd.Series) and not series:
            uses = [(value, filled, None)]
        elif scalar_lineage(value) is not None:
            uses = [(value, filled, None)]
    elif op == "clip":
        for i, name in ((0, "lower"), (1, "upper")):
            v = _arg(args, kwargs, i, name)
            if scalar_lineage(v) is not None:
                uses.append((v, None, None))  # a comparison with every cell
    elif op == "replace":
        to_replace, value = _arg(args, kwargs, 0, "to_replace"), _arg(args, kwargs, 1, "value")
        if scalar_lineage(value) is None or kwargs.get("regex"):
            return None
        keys = list(to_replace) if isinstance(to_replace, (list, tuple)) else [to_replace]
        if not all(np.ndim(k) == 0 and not isinstance(k, str) or isinstance(k, str) for k in keys):
            return None
        hit = _cells_mask(src.isin([k for k in keys if k == k]))
        if any(k != k for k in keys):
            hit |= _cells_mask(src.isna())
        uses = [(value, hit, None)]
    if not uses:
        return None
    if any(is_tracked_frame(a) for a in list(args) + list(kwargs.values())
           if not any(a is u[0] for u in uses)):
        return None
    lin = lineage_of(src)
    crow = None if res.index.nlevels == lin.nidx else [-1] * nidx + [lin.nidx + j for j in range(lin.ncols)]
    parts = remap(lin, crow)
    inputs = [src]
    shared, wholes = {}, {}  # one row relation per (statistic's rows, filled rows): parts that share it merge
    filled_parts = {}  # (input, relation) -> the control Part of the cells filled through that relation
    rels = {}  # (statistic's relation, column's filled rows) -> the relation of those filled rows
    for value, mask, cols in uses:
        js = range(ncols) if cols is None else [labels.index(c) for c in cols if c in labels]
        if is_tracked_frame(value):  # a Series of one value per column of the frame
            vl = lineage_of(value)
            inputs.append(value)
            if not value.index.is_unique:
                return None
            pos = value.index.get_indexer(res.columns)
            for j in js:
                if pos[j] < 0:
                    continue
                sel = np.where(mask[:, j], int(pos[j]), -1)
                crow_v = [-1] * (nidx + ncols)
                crow_v[nidx + j] = vl.nidx
                parts += [q.with_(control=True) for q in remap(vl, crow_v, sel)]
            continue
        if mask is None:
            parts += [p.with_(control=True) for p in scalar_parts(value, n, nidx + ncols,
                                                                  rows=[nidx + j for j in js], wholes=wholes)]
            continue
        sources = scalar_sources(value, n, wholes)
        for j in js:
            m, key = _column_cells(shared, mask, j)
            if m is None:
                continue
            for p, row, whole in sources:
                rel = rels.get((id(whole), key))
                if rel is None:
                    rel = rels[(id(whole), key)] = _filled_rows(shared, whole, m, key)
                k = (id(p.node), id(rel))
                q = filled_parts.get(k)
                if q is None:
                    q = filled_parts[k] = Part(p.node, rel, np.zeros((nidx + ncols, row.shape[0]), bool), True)
                    parts.append(q)
                q.cmat[nidx + j] |= row
    return attach(res, parts, op, inputs)


def _column_cells(shared, mask, j):
    """Column ``j`` of the cells that took a statistic, contiguous, with a hash of it (the key of
    :func:`_filled_rows`), made once per column; ``(None, None)`` when no cell of the column took it."""
    e = shared.get(("column", id(mask), j))
    if e is None:
        m = np.ascontiguousarray(mask[:, j])
        e = shared[("column", id(mask), j)] = (m, hash(m.tobytes())) if m.any() else (None, None)
    return e


def _filled_rows(shared, rel, filled, fkey):
    """The row relation of the cells a statistic filled: rows ``filled`` read every source row ``rel`` (the
    statistic's "every row" relation, lent by :func:`scalar_sources` to every statistic reduced over the same
    rows) reads, the others none.  The same relation and the same filled rows give the very same relation
    object, so that their parts merge into one: a frame filled column by column with medians carries one part
    per pattern of missing rows and source relation, not one per column.  Relations whose codes are one array
    (:func:`scalar_sources` lends one array of zeros to all its "every row" relations) share one code array per
    pattern of filled rows: a fill costs one array per pattern, not one per statistic's source relation.
    ``fkey``: a hash of ``filled``."""
    key = (id(rel), fkey)
    out = shared.get(key)
    if out is not None and (out[0] is filled or out[0].shape == filled.shape and np.array_equal(out[0], filled)):
        return out[1]
    if rel.codes is None or rel.all_rows or rel.codes.shape[0] != filled.shape[0]:
        res = rel.take(np.where(filled, np.arange(filled.shape[0]), -1))
    else:  # ``rel.take`` of the filled rows: the same codes there, -1 elsewhere
        ckey = ("codes", id(rel.codes), fkey)
        c = shared.get(ckey)
        if c is None or c[0] is not rel.codes or not (c[1] is filled or np.array_equal(c[1], filled)):
            c = shared[ckey] = (rel.codes, filled, np.where(filled, rel.codes, -1))
        res = RowRel(rel.n_out, rel.n_src, c[2], rel.csr)
    shared[key] = (filled, res)
    return res


def _binary(res, op, *operands, columns=False):
    """Lineage of an operator's result; ``columns``: a Series operand of a frame aligns on the columns."""
    if not isinstance(res, (pd.Series, pd.DataFrame)):
        return res
    name = getattr(op, "__name__", str(op)).strip("_")
    ops = [o for o in operands if is_tracked_frame(o)]
    others = [o for o in operands if not is_tracked_frame(o)]
    on_cols = [o for o in ops if columns and isinstance(o, pd.Series) and isinstance(res, pd.DataFrame)]
    out = elementwise(res, name, [o for o in ops if not any(o is c for c in on_cols)])
    extra, reasons = [], []
    for o in on_cols:
        extra += _series_on_columns(out, o)
    for a in others:
        if is_scalar_like(a):
            extra += scalar_parts(a, len(out), 0)  # a reduction's scalar: every cell it reduced
        elif isinstance(a, TrackedArray):
            parts, reason = _array_operand(out, a)
            extra += parts
            if reason:
                reasons.append(f"{name} with a TrackedArray operand {reason}")
    if not extra and not reasons:
        return out
    lin = lineage_of(out)
    out = attach(out, list(lin.parts) + extra, name, [out, *on_cols], reasons)
    if reasons:
        warn_partial("whence: " + reasons[0] + " (PARTIAL)")
    return out


def _series_on_columns(res, o):
    """Parts of a Series operand broadcast along the rows of a frame (aligned on the column labels): every
    cell of column j derives from the Series cell labelled like column j."""
    lin = lineage_of(o)
    n, nidx, ncols, _ = dims(res)
    if not o.index.is_unique:
        return [Part(p.node, RowRel.everything(n, p.rel.n_src), p.cmat.any(0)[None, :].copy(), p.control, True)
                for p in lin.parts]
    pos = o.index.get_indexer(res.columns)
    parts = []
    for j, q in enumerate(pos):
        if q < 0:
            continue
        crow = [-1] * (nidx + ncols)
        crow[nidx + j] = lin.nidx
        parts += remap(lin, crow, np.full(n, q, np.int64))
    return parts


def _array_operand(res, a):
    """Parts of a TrackedArray operand of the same rows (1-D: every column; 2-D: column by column), or all its
    cells (PARTIAL) for any other shape.  Returns (parts, reason or None)."""
    n, nidx, ncols, _ = dims(res)
    node = a.node
    if a.ndim == 1 and a.shape[0] == n:
        cm = np.zeros((nidx + ncols, 1), bool)
        cm[nidx:] = True
        return [Part(node, RowRel.identity(n), cm)], None
    if a.ndim == 2 and a.shape == (n, ncols):
        cm = np.zeros((nidx + ncols, ncols), bool)
        cm[nidx:] = np.eye(ncols, dtype=bool)
        return [Part(node, RowRel.identity(n), cm)], None
    width = 1 if a.ndim < 2 else a.shape[1]
    rows = a.shape[0] if a.ndim else 1
    return [Part(node, RowRel.everything(n, rows), np.ones((1, width), bool), wide=True)], \
        f"of shape {a.shape} (taken as all its cells)"


class _TrackedAccessor:
    """``.str`` / ``.dt`` / ``.cat`` of a tracked Series: every result of the same length is cellwise (row ``i``
    of the result derives from row ``i`` of the Series); a result of another length is PARTIAL with a warning."""

    __slots__ = ("_obj", "_inner", "_name")

    def __init__(self, obj, inner, name):
        self._obj, self._inner, self._name = obj, inner, name

    def __repr__(self):
        return repr(self._inner)

    def __dir__(self):
        return dir(self._inner)

    def __iter__(self):
        return iter(self._inner)

    def __getitem__(self, key):
        with guard:
            res = self._inner[key]
        return accessor_result(self._obj, res, f"{self._name}[]")

    def __getattr__(self, name):
        with guard:
            attr = getattr(self._inner, name)
        if not callable(attr):
            return accessor_result(self._obj, attr, f"{self._name}.{name}")

        @functools.wraps(attr)
        def call(*args, **kwargs):
            with guard:
                res = attr(*args, **kwargs)
            extra = [a for a in list(args) + list(kwargs.values()) if is_tracked_frame(a)]
            return accessor_result(self._obj, res, f"{self._name}.{name}", extra)

        return call


def accessor_result(src, res, op, extra=()):
    """Lineage of a result computed from ``src`` row by row (accessors, conversions)."""
    from .meta import to_tracked_array
    from .values import register_plain
    n = len(src)
    if isinstance(res, (pd.Series, pd.DataFrame)):
        if len(res) != n:
            return fallback(res, op, [src, *extra])
        if isinstance(res, pd.Series) and isinstance(src, pd.Series):
            out = elementwise(as_tracked(res), op, [src, *extra])
        else:
            out = row_preserving(as_tracked(res), op, src)
            if extra:
                out = fallback(out, op, [src, *extra])
        return out
    if isinstance(res, pd.Index) and len(res) == n and not extra:
        register_plain(res, None, _series_lineage(src))
        return res
    if isinstance(res, np.ndarray) and res.ndim >= 1 and len(res) == n and not extra:
        if res.dtype.kind in "biufc" and res.ndim == 1:
            return to_tracked_array(src, res)
        register_plain(res, lineage_of(src).node if res.ndim == 1 else None, _series_lineage(src))
        return res
    if isinstance(res, (pd.Series, pd.DataFrame, pd.Index, np.ndarray)) and np.ndim(res) and len(res):
        warn_partial(f"whence: {op} returned a {type(res).__name__} of another length; it carries no lineage")
    return res


def _series_lineage(src):
    """The Lineage of a Series (what a registered array or Index computed row by row from it carries)."""
    return lineage_of(src)


def _accessor_property(name):
    desc = pd.Series.__dict__[name]
    make = getattr(desc, "_accessor", None)

    def get(self):
        with guard:
            inner = make(self) if make is not None else desc.__get__(self, type(self))
        if guard_depth():
            return inner
        return _TrackedAccessor(self, inner, name)

    get.__doc__ = getattr(desc, "__doc__", None)
    get.__name__ = name
    return property(get)


def _fallback_inplace(obj, op):
    """An in-place operator whose result whence could not follow: every cell of ``obj`` from every cell it had."""
    res = fallback(obj.copy(deep=False), getattr(op, "__name__", "inplace"), [obj])
    object.__setattr__(obj, "_wh", lineage_of(res))
    return obj


class Cellwise:

    def __array_function__(self, func, types, args, kwargs):
        """numpy functions on tracked Series and frames: numpy's own result, with the numpy buckets' lineage.

        numpy's default first: where it hands the call to a pandas method (``np.clip``, ``np.round``,
        ``np.mean``), the method's result and lineage are the answer.  Where it returns an array
        (``np.where``, ``np.select``, ``np.concatenate``), the call is made again on the values as
        :class:`whence.TrackedArray` objects, so the numpy function table records its lineage.
        """
        res = func._implementation(*args, **kwargs)
        if guard_depth() or isinstance(res, (pd.Series, pd.DataFrame)) or not isinstance(res, (np.ndarray, tuple)):
            return res
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.split(".")[0] in ("pandas", "numpy", "sklearn", "scipy", "whence"):
            return res  # libraries' own internal calls get numpy's plain result, as without whence
        targs, tkw, any_tracked = as_arrays(args), {k: as_arrays(v) for k, v in kwargs.items()}, [False]
        _scan(args, any_tracked)
        _scan(kwargs, any_tracked)
        if not any_tracked[0] or targs is None or any(v is None for v in tkw.values()):
            return res
        return func(*targs, **tkw)


    def _arith_method(self, other, op):
        if guard_depth():
            return super()._arith_method(other, op)
        with guard:
            return _binary(super()._arith_method(other, op), op, self, other,
                           columns=isinstance(self, pd.DataFrame))

    def _inplace_method(self, other, op):
        """``s += x``, ``df /= s.sum()``: pandas computes ``op(self, other)`` (tracked: the operands' cells) and
        writes it into ``self`` (its own way, views included); the written cells take that result's lineage
        (an in-place write replaces it), as ``s = s + x`` would give."""
        if guard_depth() or self.__dict__.get("_wh") is None:
            return super()._inplace_method(other, op)
        results = []

        def computed(a, b):
            r = op(a, b)
            results.append(r)
            return r

        out = super()._inplace_method(other, computed)
        result = results[0] if results else None
        if isinstance(result, (pd.Series, pd.DataFrame)) and not (
                result.index.equals(self.index) and (isinstance(self, pd.Series) or
                                                     result.columns.equals(self.columns))):
            result = result.reindex_like(self)  # aligned as pandas aligned it (tracked: a cell move)
        lin = lineage_of(result) if is_tracked_frame(result) else None
        if lin is None:
            _fallback_inplace(self, op)
        else:
            attach_inplace(self, list(lin.parts), getattr(op, "__name__", "inplace").strip("_"), [lin])
        return out

    def _cmp_method(self, other, op):
        if guard_depth():
            return super()._cmp_method(other, op)
        with guard:
            return _binary(super()._cmp_method(other, op), op, self, other,
                           columns=isinstance(self, pd.DataFrame))

    def _logical_method(self, other, op):
        if guard_depth():
            return super()._logical_method(other, op)
        with guard:
            return _binary(super()._logical_method(other, op), op, self, other,
                           columns=isinstance(self, pd.DataFrame))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if guard_depth():
            return super().__array_ufunc__(ufunc, method, *inputs, **kwargs)
        with guard:
            res = super().__array_ufunc__(ufunc, method, *inputs, **kwargs)
            same = pd.Series if isinstance(self, pd.Series) else pd.DataFrame
            if method == "__call__" and isinstance(res, same) and "out" not in kwargs:
                return _binary(res, ufunc, *inputs)
            if isinstance(res, (pd.Series, pd.DataFrame)):
                return fallback(res, f"{ufunc.__name__}.{method}", [i for i in inputs if is_tracked_frame(i)])
            return res


class SeriesCellwise:
    str = _accessor_property("str")
    dt = _accessor_property("dt")
    cat = _accessor_property("cat")

    def _flex_method(self, other, op, *, level=None, fill_value=None, axis=0):
        if guard_depth():
            return super()._flex_method(other, op, level=level, fill_value=fill_value, axis=axis)
        with guard:
            res = super()._flex_method(other, op, level=level, fill_value=fill_value, axis=axis)
            return _binary(res, op, self, other)

    def isin(self, values):
        if guard_depth():
            return super().isin(values)
        with guard:
            return _binary(super().isin(values), "isin", self, values)

    def between(self, left, right, inclusive="both"):
        if guard_depth():
            return super().between(left, right, inclusive)
        with guard:
            return _binary(super().between(left, right, inclusive), "between", self, left, right)

    def where(self, cond, other=np.nan, **kwargs):
        if guard_depth():
            return super().where(cond, other, **kwargs)
        with guard:
            return _binary(super().where(cond, other, **kwargs), "where", self, cond, other)

    def mask(self, cond, other=np.nan, **kwargs):
        if guard_depth():
            return super().mask(cond, other, **kwargs)
        with guard:
            return _binary(super().mask(cond, other, **kwargs), "mask", self, cond, other)


def _aligned_cond(obj, cond):
    """True when ``cond`` is a tracked frame on ``obj``'s very labels (rows and columns): ``where``/``mask``
    then pair cells as operators do."""
    return isinstance(cond, pd.DataFrame) and is_tracked_frame(cond) and cond.index.equals(obj.index) and \
        cond.columns.equals(obj.columns) and obj.columns.is_unique


class FrameCellwise:

    def where(self, cond, other=np.nan, **kwargs):
        if guard_depth() or kwargs.get("inplace") or not _aligned_cond(self, cond) or is_tracked_frame(other):
            return same_shape_method("where")(pd.DataFrame.where)(self, cond, other, **kwargs)
        with guard:  # as Series.where: the same cell of each operand, the condition's included
            return _binary(pd.DataFrame.where(self, cond, other, **kwargs), "where", self, cond, other)

    def mask(self, cond, other=np.nan, **kwargs):
        if guard_depth() or kwargs.get("inplace") or not _aligned_cond(self, cond) or is_tracked_frame(other):
            return same_shape_method("mask")(pd.DataFrame.mask)(self, cond, other, **kwargs)
        with guard:
            return _binary(pd.DataFrame.mask(self, cond, other, **kwargs), "mask", self, cond, other)

    def copy(self, deep=True):
        if guard_depth():
            return super().copy(deep=deep)
        with guard:
            res = super().copy(deep=deep)
            object.__setattr__(res, "_wh", lineage_of(self))
            return res

