"""Reductions bucket: ``sum``, ``mean``, ``describe``, ``quantile``, ``agg``, ... along an axis.

Along the rows (``axis=0``) each result cell derives from every cell of its column (label-matched); along the
columns (``axis=1``) from every cell of its row.  A reduction to a scalar returns pandas' scalar, unchanged;
whence remembers it (by identity) as derived from every cell it reduced, so that an operator or a column
write that uses that very object (``s / s.max()``, ``df["m"] = s.mean()``) carries those cells.  A result whence cannot match to columns or rows is PARTIAL with a warning.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np
import pandas as pd

from ..relations import Part
from .base import attach, guard_depth, fallback, fallback_reason, guard, row_preserving, lineage_of
from .values import register_scalar

__all__ = ["reduction"]


def reduction(name, base):
    """The method ``base`` as a reduction along an axis (see the module docstring)."""
    try:
        sig = inspect.signature(base)
    except (TypeError, ValueError):  # pragma: no cover - pandas methods have signatures
        sig = None

    @functools.wraps(base)
    def method(self, *args, **kwargs):
        if guard_depth():
            return base(self, *args, **kwargs)
        with guard:
            res = base(self, *args, **kwargs)
            if not isinstance(res, (pd.Series, pd.DataFrame)):
                # a scalar: pandas' own, remembered as reduced from every cell read (see register_scalar)
                return register_scalar(res, lineage_of(self)) if np.ndim(res) == 0 else res
            axis, numeric_only = 0, False
            if sig is not None:
                try:
                    bound = sig.bind(self, *args, **kwargs).arguments
                    axis, numeric_only = bound.get("axis", 0), bound.get("numeric_only", False)
                except TypeError:
                    pass
            return reduce_lineage(self, res, name, axis, numeric_only)

    return method


def reduce_lineage(src, res, op, axis, numeric_only=False):
    lin = lineage_of(src)
    if axis in (1, "columns"):
        if isinstance(src, pd.DataFrame) and isinstance(res, pd.Series) and len(res) == len(src):
            out = row_preserving(res, op, src)
            if numeric_only and len(src.select_dtypes(include=["number", "bool"]).columns) != src.shape[1]:
                return fallback_reason(out, f"{op}(axis=1, numeric_only=True): each cell is taken to derive "
                                             f"from every cell of its row")
            return out
        return fallback(res, op, [src])
    n_res = len(res)
    same_rows = len(res) == len(src) and res.index.equals(src.index)
    if isinstance(src, pd.Series):
        whole = [Part(p.node, p.rel.group(np.zeros(lin.n, np.int64), 1).take(np.zeros(n_res, np.int64)),
                      _cm_all(p, res, lin.nidx), p.control) for p in lin.parts if p.data_row(lin.nidx).any()]
        out = attach(res, whole, op, [src])
    elif same_rows and isinstance(res, pd.DataFrame):
        out = _by_column(src, res, op, lin)
    else:
        out = None
    if same_rows:
        # a result of the input's rows (a transform through agg): each cell within its whole column
        return fallback_reason(out if out is not None else fallback(res, op, [src]),
                                f"{op} returned a result of the input's rows: each cell is taken to derive "
                                f"from its whole column")
    if out is not None:
        return out
    if not src.columns.is_unique:
        return fallback(res, op, [src])
    if isinstance(res, pd.Series):
        pos = src.columns.get_indexer(res.index)
        if (pos < 0).any():
            return fallback(res, op, [src])
        parts = []
        nidx = res.index.nlevels
        for p in lin.parts:
            whole = p.rel.group(np.zeros(lin.n, np.int64), 1)
            for j, c in enumerate(pos):
                row = p.cmat[0] if p.wide else p.cmat[lin.nidx + c]
                if not row.any():
                    continue
                sel = np.full(n_res, -1, np.int64)
                sel[j] = 0
                cm = np.zeros((nidx + 1, row.shape[0]), bool)
                cm[-1] = row
                parts.append(Part(p.node, whole.take(sel), cm, p.control))
        return attach(res, parts, op, [src])
    return _by_column(src, res, op, lin)


def _cm_all(p, res, nidx_src):
    nidx = res.index.nlevels
    ncols = 1 if isinstance(res, pd.Series) else res.shape[1]
    cm = np.zeros((nidx + ncols, p.cmat.shape[1]), bool)
    cm[nidx:] = p.data_row(nidx_src)
    return cm


def _by_column(src, res, op, lin):
    """Cell (i, j) of a frame result derives from every cell of the input column labelled like column j."""
    pos = src.columns.get_indexer(res.columns) if src.columns.is_unique else None
    if pos is None or (pos < 0).any():
        return fallback(res, op, [src])
    nidx = res.index.nlevels
    parts = []
    for p in lin.parts:
        whole = p.rel.group(np.zeros(lin.n, np.int64), 1).take(np.zeros(len(res), np.int64))
        if p.wide:
            parts.append(Part(p.node, whole, p.cmat, p.control, True))
            continue
        cm = np.zeros((nidx + len(pos), p.cmat.shape[1]), bool)
        cm[nidx:] = p.cmat[lin.nidx + pos]
        if cm.any():
            parts.append(Part(p.node, whole, cm, p.control))
    return attach(res, parts, op, [src])
