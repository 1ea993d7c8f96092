"""Opaque bucket: methods whose lineage whence does not compose.  They still run; every cell of the result
is taken to derive from every cell of the tracked inputs (PARTIAL, with the method named in the reason) and
a :class:`~whence.errors.PartialLineageWarning` is raised.  An in-place call marks the frame the same way.

The row-order window family (``shift``, ``diff``, ``cumsum``, ``rank``, ``ffill``, ...) goes through the
same path until its exact rules are installed (:data:`whence.tabular.frame.registry.FRAME`, bucket
``"windows"``).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..relations import Part, RowRel
from .base import attach_inplace, guard_depth, fallback, guard, warn_partial, is_tracked_frame, lineage_of

__all__ = ["opaque_method", "opaque_function"]


def _tracked_args(args, kwargs):
    out = []
    for a in list(args) + list(kwargs.values()):
        if is_tracked_frame(a):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(x for x in a if is_tracked_frame(x))
        elif isinstance(a, dict):
            out.extend(x for x in a.values() if is_tracked_frame(x))
    return out


def _mark(res, op, inputs):
    if isinstance(res, (pd.DataFrame, pd.Series)):
        return fallback(res, op, inputs)
    if isinstance(res, tuple):
        return tuple(_mark(r, op, inputs) for r in res)
    return res


def _everything_inplace(obj, op, inputs):
    n = len(obj)
    nidx = obj.index.nlevels
    ncells = nidx + (obj.shape[1] if isinstance(obj, pd.DataFrame) else 1)
    parts = []
    lins = [lineage_of(o) for o in inputs]
    for lin in lins:
        if lin is None:
            continue
        for p in lin.parts:
            parts.append(Part(p.node, RowRel.everything(n, p.rel.n_src),
                              np.broadcast_to(p.cmat.any(0), (ncells, p.cmat.shape[1])).copy(), p.control))
    reason = f"{op} is not covered: every cell is taken to derive from every cell of its input"
    attach_inplace(obj, parts, op, lins, [reason])
    warn_partial(f"whence: {op} is not covered; the frame derives from all cells of its inputs (PARTIAL)")


def opaque_method(name, base):
    """The method ``base`` as an opaque one (see the module docstring)."""

    @functools.wraps(base)
    def method(self, *args, **kwargs):
        if guard_depth():
            return base(self, *args, **kwargs)
        inputs = [self] + _tracked_args(args, kwargs)
        with guard:
            res = base(self, *args, **kwargs)
            if res is None:  # an in-place call
                _everything_inplace(self, name, inputs)
                return None
            return _mark(res, name, inputs)

    return method


def opaque_function(name, orig):
    """A pandas function as an opaque one: with a tracked argument, its result is PARTIAL."""

    @functools.wraps(orig)
    def fn(*args, **kwargs):
        if guard_depth():
            return orig(*args, **kwargs)
        inputs = _tracked_args(args, kwargs)
        if not inputs:
            return orig(*args, **kwargs)
        with guard:
            return _mark(orig(*args, **kwargs), name, inputs)

    fn.__whence_wrapped__ = True
    return fn
