"""Lineage of pandas' module-level reshaping functions: ``concat``, ``merge``, ``get_dummies``, ``melt``,
``pivot_table``.

These are functions of the ``pandas`` module, not methods, so whence wraps them: with no tracked argument the
wrapper calls pandas directly; with one, it computes the result with pandas and composes its lineage.  The
wrapped functions are installed on the ``pandas`` module when :mod:`whence.tabular` is first imported, and
keep pandas' signature and docstring.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .frame import (TrackedFrame, attach, dims, fallback, guard, remap, guard_depth, is_tracked_frame,
                    lineage_of)

__all__ = ["install"]

_ORIG: dict = {}


def _any_tracked(objs):
    return any(is_tracked_frame(o) for o in objs)


def concat(objs, *args, **kwargs):
    orig = _ORIG["concat"]
    if guard_depth():
        return orig(objs, *args, **kwargs)
    items = list(objs.values()) if isinstance(objs, dict) else list(objs)
    if not _any_tracked(items):
        return orig(items if not isinstance(objs, dict) else objs, *args, **kwargs)
    with guard:
        res = orig(objs if isinstance(objs, dict) else items, *args, **kwargs)
        return _concat_lineage(res, [o for o in items if o is not None], kwargs)


def _concat_lineage(res, items, kw):
    axis = kw.get("axis", 0)
    axis = 1 if axis in (1, "columns") else 0
    if not isinstance(res, (pd.DataFrame, pd.Series)):
        return res
    n, nidx, ncols, series = dims(res)
    parts = []
    reasons = []
    ncells = nidx + ncols
    if axis == 0:
        off = 0
        for o in items:
            k = len(o)
            lin = lineage_of(o)
            if lin is not None:
                sel = np.full(n, -1, np.int64)
                sel[off:off + k] = np.arange(k)
                if isinstance(o, pd.Series):
                    if series:
                        crow = [-1] * nidx + [lin.nidx]
                    else:
                        name = o.name if o.name is not None else 0
                        j = res.columns.get_indexer([name])[0] if res.columns.is_unique else -1
                        crow = [-1] * ncells
                        if j >= 0:
                            crow[nidx + j] = lin.nidx
                else:
                    if not o.columns.is_unique or not res.columns.is_unique:
                        return fallback(res, "concat", items)
                    pos = res.columns.get_indexer(o.columns)
                    crow = [-1] * ncells
                    for jj, p in enumerate(pos):
                        if p >= 0:
                            crow[nidx + int(p)] = lin.nidx + jj
                if lin.nidx == nidx and not kw.get("ignore_index") and kw.get("keys") is None:
                    for i in range(nidx):
                        crow[i] = i
                parts += remap(lin, crow, sel)
            off += k
        if off != n:
            return fallback(res, "concat", items)
    else:
        off = 0
        for o in items:
            w = 1 if isinstance(o, pd.Series) else o.shape[1]
            lin = lineage_of(o)
            if lin is not None:
                if len(o) == n and o.index.equals(res.index):
                    sel = None
                elif o.index.is_unique:
                    sel = o.index.get_indexer(res.index).astype(np.int64)
                else:
                    return fallback(res, "concat(axis=1)", items)
                crow = [-1] * ncells
                for jj in range(w):
                    crow[nidx + off + jj] = lin.nidx + jj
                if lin.nidx == nidx:
                    for i in range(nidx):
                        crow[i] = i
                parts += remap(lin, crow, sel)
            off += w
        if off != ncols:
            return fallback(res, "concat(axis=1)", items)
    return attach(res, parts, "concat", [o for o in items if is_tracked_frame(o)], reasons,
                   detail=f"axis={axis}")


def merge(left, right, *args, **kwargs):
    orig = _ORIG["merge"]
    if guard_depth() or not (is_tracked_frame(left) or is_tracked_frame(right)):
        return orig(left, right, *args, **kwargs)
    if not is_tracked_frame(left):
        left = _untracked(left)
    if isinstance(left, pd.Series):
        left = left.to_frame()
    names = ["how", "on", "left_on", "right_on", "left_index", "right_index", "sort", "suffixes", "copy",
             "indicator", "validate"]
    kw = dict(zip(names, args))
    kw.update(kwargs)
    kw.pop("copy", None)
    return TrackedFrame.merge(left, right, **kw)


def _untracked(obj):
    """A plain frame taking part in a tracked operation: tracked, with no lineage (constants)."""
    from .relations import Lineage
    t = TrackedFrame(obj) if isinstance(obj, pd.DataFrame) else obj
    n, nidx, ncols, series = dims(t)
    object.__setattr__(t, "_wh", Lineage([], n, nidx, ncols, op="constant"))
    return t


def get_dummies(data, prefix=None, prefix_sep="_", dummy_na=False, columns=None, sparse=False,
                drop_first=False, dtype=None):
    orig = _ORIG["get_dummies"]
    kw = dict(prefix=prefix, prefix_sep=prefix_sep, dummy_na=dummy_na, columns=columns, sparse=sparse,
              drop_first=drop_first, dtype=dtype)
    if guard_depth() or not is_tracked_frame(data):
        return orig(data, **kw)
    with guard:
        res = orig(data, **kw)
        return _dummies_lineage(data, res, kw)


def _dummies_lineage(data, res, kw):
    lin = lineage_of(data)
    n, nidx, ncols, _ = dims(res)
    if isinstance(data, pd.Series):
        enc = [None]
        keep = []
    else:
        cols = data.columns
        if not cols.is_unique:
            return fallback(res, "get_dummies", [data])
        if kw["columns"] is None:
            enc = [c for c, dt in data.dtypes.items()
                   if dt == object or isinstance(dt, (pd.CategoricalDtype, pd.StringDtype)) or
                   pd.api.types.is_string_dtype(dt)]
        else:
            enc = list(kw["columns"])
        keep = [c for c in cols if c not in enc]
    sizes = []
    for c in enc:
        s = data if c is None else data[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            k = len(s.cat.categories)
        else:
            k = int(s.nunique(dropna=True))
        k += 1 if kw["dummy_na"] else 0
        if kw["drop_first"]:
            k = max(k - 1, 0)
        sizes.append(k)
    if len(keep) + sum(sizes) != ncols:
        return fallback(res, "get_dummies", [data])
    crow = [i if i < lin.nidx and nidx == lin.nidx else -1 for i in range(nidx)]
    for c in keep:
        crow.append(lin.nidx + int(data.columns.get_loc(c)))
    for c, k in zip(enc, sizes):
        src = lin.nidx if c is None else lin.nidx + int(data.columns.get_loc(c))
        crow.extend([src] * k)
    return attach(res, remap(lin, crow), "get_dummies", [data])


def melt(frame, *args, **kwargs):
    if guard_depth() or not is_tracked_frame(frame):
        return _ORIG["melt"](frame, *args, **kwargs)
    return TrackedFrame.melt(frame, *args, **kwargs)


def pivot_table(data, *args, **kwargs):
    if guard_depth() or not is_tracked_frame(data):
        return _ORIG["pivot_table"](data, *args, **kwargs)
    return TrackedFrame.pivot_table(data, *args, **kwargs)


def install():
    """Put the wrappers on the ``pandas`` module (once)."""
    if _ORIG:
        return
    for name, fn in (("concat", concat), ("merge", merge), ("get_dummies", get_dummies), ("melt", melt),
                     ("pivot_table", pivot_table)):
        orig = getattr(pd, name)
        _ORIG[name] = orig
        wrapped = functools.wraps(orig)(fn)
        wrapped.__whence_wrapped__ = True
        setattr(pd, name, wrapped)
