"""The constructors: ``pd.DataFrame(...)`` and ``pd.Series(...)`` built from tracked objects.

pandas' constructors copy the cells of the objects they are given (a dict of Series, one Series, a frame, a
group-by result) into a new, plain object: no pandas hook runs on the way (no ``__finalize__``, no protocol a
Series could answer), so the lineage of the pieces would be lost without a word.  whence wraps the two
constructors' ``__init__``: when the data holds a tracked object, the object pandas built becomes a tracked
one and each of its cells takes the lineage of the cell it was copied from:

* ``pd.DataFrame({"x": s, "y": t})``: column ``x`` is ``s`` aligned on the result's index (the union of the
  Series' indexes, or ``index=``), row by label; a label missing from ``s`` is NaN, a constant.  A value
  whence cannot see into (a list, a plain array) is a constant, and a
  :class:`~whence.errors.ConstantValueWarning` says so, naming the column;
* ``pd.DataFrame(s)`` / ``pd.Series(s)``: the Series' cells (one column), rows by label;
* ``pd.DataFrame(frame, index=..., columns=...)``: the frame's cells, rows and columns by label;
* the index cells of the result are those of the objects that hold the label (for a dict of Series, every
  Series holding it), or the lineage of a tracked ``index=`` argument;
* anything else holding a tracked object (a list of Series as rows, non-unique labels that cannot be aligned)
  is opaque: every cell of the result derives from every cell of the tracked inputs (PARTIAL, with a
  :class:`~whence.errors.PartialLineageWarning`).

With no tracked object in the data, the constructors are pandas' own (one type check more).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..relations import Part
from .base import (TYPES, TrackedMixin, align_rows, attach, guard_depth, fallback, guard, remap, warn_partial,
                   is_tracked_frame, lineage_of)
from .values import plain_lineage, scalar_lineage

__all__ = ["install", "untracked"]

_ORIG: dict = {}


def _seen(v):
    """True when ``v`` carries lineage whence knows (a tracked object, a tracked array, a registered Index,
    array or scalar)."""
    if isinstance(v, TrackedMixin):
        return True
    if isinstance(v, (pd.Index, np.ndarray)):
        return plain_lineage(v) is not None
    return isinstance(v, _tracked_array()) or scalar_lineage(v) is not None


_LATE: list = []


def _tracked_array():
    if not _LATE:
        from ...tracked import TrackedArray
        _LATE.append(TrackedArray)
    return _LATE[0]


def _holds_tracked(data):
    if is_tracked_frame(data):
        return True
    if isinstance(data, dict):
        return any(_seen(v) for v in data.values())
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], (pd.Series, pd.DataFrame)):
        return any(is_tracked_frame(v) for v in data)
    return False


def _args(args, kwargs, names):
    out = dict(zip(names, args))
    out.update(kwargs)
    return out


def _index_parts(res, index, nidx, ncells):
    """Parts for the index cells of ``res`` built from a tracked ``index=`` argument (by position)."""
    ilin = lineage_of(index) if is_tracked_frame(index) else (
        plain_lineage(index) if isinstance(index, (pd.Index, np.ndarray)) else None)
    if ilin is None or len(index) != len(res):
        return [], ilin
    parts = []
    al = align_rows(index, res) if isinstance(index, pd.Series) else None
    if al is False:
        al = None  # an index argument is taken by position
    for p in ilin.parts:
        row = p.data_row(ilin.nidx)
        if not row.any():
            continue
        cm = np.zeros((ncells, row.shape[0]), bool)
        cm[:nidx] = row
        parts.append(Part(p.node, p.rel, cm, p.control))
    return parts, ilin


def _own_index_parts(obj, res, sel, nidx, ncells):
    """Index cells of ``res`` copied from the index of the tracked ``obj`` (rows ``sel``)."""
    lin = lineage_of(obj)
    if lin is None or lin.nidx != nidx:
        return []
    crow = list(range(nidx)) + [-1] * (ncells - nidx)
    return remap(lin, crow, sel)


def frame_lineage(res, data, index, columns):
    """Attach to the new frame ``res`` (built by ``pd.DataFrame(data, index, columns)``) its lineage."""
    from .writes import value_parts
    n, nidx, ncols, _ = _dims_of(res)
    ncells = nidx + ncols
    if not res.columns.is_unique:
        return fallback(res, "DataFrame", _inputs(data, index))
    parts, reasons, inputs = [], [], []
    if isinstance(data, dict):
        for j, label in enumerate(res.columns):
            if label not in data:
                continue
            v = data[label]
            vparts, vreasons, _ = value_parts(v, res, nidx + j, ncells, f"column {label!r}")
            parts += vparts
            reasons += vreasons
            if is_tracked_frame(v):
                inputs.append(v)
                if index is None and isinstance(v, pd.Series):
                    sel = align_rows(v, res)
                    if sel is not False:
                        parts += _own_index_parts(v, res, sel, nidx, ncells)
    elif isinstance(data, (pd.Series, pd.DataFrame)):
        lin = lineage_of(data)
        inputs.append(data)
        sel = align_rows(data, res)
        if sel is False:
            return fallback(res, "DataFrame", _inputs(data, index))
        if isinstance(data, pd.Series):
            name = data.name if data.name is not None else 0
            crow = [-1] * ncells
            for j, label in enumerate(res.columns):
                if label == name or (data.name is None and ncols == 1 and columns is not None):
                    crow[nidx + j] = lin.nidx
        else:
            if not data.columns.is_unique:
                return fallback(res, "DataFrame", _inputs(data, index))
            pos = data.columns.get_indexer(res.columns)
            crow = [-1] * nidx + [lin.nidx + int(p) if p >= 0 else -1 for p in pos]
        parts += remap(lin, crow, sel)
        if index is None:
            parts += _own_index_parts(data, res, sel, nidx, ncells)
    else:
        return fallback(res, "DataFrame", _inputs(data, index))
    if index is not None:
        iparts, ilin = _index_parts(res, index, nidx, ncells)
        parts += iparts
        if ilin is not None and is_tracked_frame(index):
            inputs.append(index)
    if reasons:
        warn_partial("whence: DataFrame: " + "; ".join(reasons) + " (PARTIAL)")
    return attach(res, parts, "DataFrame", inputs, reasons)


def series_lineage(res, data, index):
    """Attach to the new Series ``res`` (built by ``pd.Series(data, index)``) its lineage."""
    n, nidx, ncols, _ = _dims_of(res)
    ncells = nidx + 1
    if not isinstance(data, pd.Series):
        return fallback(res, "Series", _inputs(data, index))
    lin = lineage_of(data)
    sel = align_rows(data, res)
    if sel is False:
        return fallback(res, "Series", _inputs(data, index))
    parts = remap(lin, [-1] * nidx + [lin.nidx], sel)
    inputs = [data]
    if index is None:
        parts += _own_index_parts(data, res, sel, nidx, ncells)
    else:
        iparts, ilin = _index_parts(res, index, nidx, ncells)
        parts += iparts
        if ilin is not None and is_tracked_frame(index):
            inputs.append(index)
    return attach(res, parts, "Series", inputs)


def _dims_of(res):
    series = isinstance(res, pd.Series)
    return len(res), res.index.nlevels, (1 if series else res.shape[1]), series


def _inputs(data, index):
    vals = list(data.values()) if isinstance(data, dict) else (
        list(data) if isinstance(data, (list, tuple)) else [data])
    return [v for v in vals + [index] if is_tracked_frame(v)]


def _wrap(cls, kind, names):
    orig = cls.__init__
    _ORIG[kind] = orig

    @functools.wraps(orig)
    def __init__(self, *args, **kwargs):
        if guard_depth() or type(self) is not cls:
            return orig(self, *args, **kwargs)
        data = args[0] if args else kwargs.get("data")
        if not _holds_tracked(data):
            return orig(self, *args, **kwargs)
        a = _args(args, kwargs, names)
        with guard:
            orig(self, *args, **kwargs)
            object.__setattr__(self, "__class__", TYPES[kind])
            if kind == "frame":
                frame_lineage(self, data, a.get("index"), a.get("columns"))
            else:
                series_lineage(self, data, a.get("index"))

    __init__.__whence_wrapped__ = True
    return __init__


def install():
    """Wrap ``pd.DataFrame.__init__`` and ``pd.Series.__init__`` (once)."""
    if _ORIG:
        return
    pd.DataFrame.__init__ = _wrap(pd.DataFrame, "frame", ("data", "index", "columns", "dtype", "copy"))
    pd.Series.__init__ = _wrap(pd.Series, "series", ("data", "index", "dtype", "name", "copy"))


def untracked(x):
    """A plain pandas copy of a tracked frame or Series (shallow, as ``pd.DataFrame(x)`` of plain pandas);
    any other object is returned as it is.

    ``pd.DataFrame(tracked)`` keeps the lineage (see the module docstring); code that must hand plain pandas
    objects to a library (a model's own ``transform``) uses this.

    Examples
    --------
    >>> import io, whence as wh
    >>> from whence.tabular.frame import untracked
    >>> wh.reset()
    >>> df = wh.read_csv(io.StringIO("a\\n1\\n2\\n"), name="u")
    >>> type(pd.DataFrame(df)).__name__, type(untracked(df)).__name__, type(untracked(df["a"])).__name__
    ('TrackedFrame', 'DataFrame', 'Series')
    """
    if not is_tracked_frame(x):
        return x
    with guard:
        return pd.DataFrame(x) if isinstance(x, pd.DataFrame) else pd.Series(x)
