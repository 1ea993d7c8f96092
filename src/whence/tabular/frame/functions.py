"""Top-level pandas functions that work cell by cell: ``to_datetime``, ``to_numeric``, ``to_timedelta``,
``cut``, ``qcut``, ``factorize``, ``isna`` / ``notna``.

Each output cell derives from the input cell of its row (a frame given to ``to_datetime``: the cells of its
row).  ``cut`` with a number of bins and ``qcut`` compute their bin edges from the whole input: those edges are
fitted statistics, so every cell of the input is a *control* cell of every output cell, never data.

The wrappers are installed on the ``pandas`` module with :mod:`whence.tabular` (pandas' signatures and
docstrings kept); with no tracked argument they call pandas directly.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..relations import Part, RowRel
from .base import attach, guard_depth, guard, is_tracked_frame, lineage_of
from .cellwise import accessor_result
from .values import register_plain, plain_lineage

__all__ = ["install", "CELLWISE_FUNCTIONS"]

#: function name -> True when the function fits statistics on the whole input (bins of cut / qcut)
CELLWISE_FUNCTIONS = {"to_datetime": False, "to_numeric": False, "to_timedelta": False, "cut": None,
                      "qcut": True, "factorize": False, "isna": False, "isnull": False, "notna": False,
                      "notnull": False}

_ORIG: dict = {}


def _fits(name, args, kwargs):
    fit = CELLWISE_FUNCTIONS[name]
    if fit is None:  # cut: edges computed from the data when bins is a number
        bins = kwargs.get("bins", args[0] if args else None)
        return np.ndim(bins) == 0 and not isinstance(bins, pd.IntervalIndex)
    return fit


def _with_fitted_control(res, src, op):
    """Add every cell of ``src`` as control of every cell of ``res`` (statistics fitted on the input)."""
    lin, rlin = lineage_of(src), lineage_of(res)
    if lin is None or rlin is None:
        return res
    n = len(res)
    ctl = [Part(p.node, _every_input_row(p.rel, n), p.data_row(lin.nidx)[None, :].copy(), True, wide=True)
           for p in lin.parts if p.data_row(lin.nidx).any()]
    return attach(res, list(rlin.parts) + ctl, op, [res])


def _every_input_row(rel, n):
    """Every one of ``n`` output rows derives from the source rows that ``rel``'s rows (the input's) derive
    from: all of them only where the input holds every source row (not after a filter, not where a cell has
    no source row)."""
    if rel.all_rows or rel.is_identity:
        return RowRel.everything(n, rel.n_src)
    return rel.group(np.zeros(rel.n_out, np.int64), 1).take(np.zeros(n, np.int64))


def _wrap(name):
    orig = getattr(pd, name)
    _ORIG[name] = orig

    @functools.wraps(orig)
    def fn(arg, *args, **kwargs):
        if guard_depth():
            return orig(arg, *args, **kwargs)
        if not is_tracked_frame(arg):
            plin = plain_lineage(arg) if isinstance(arg, (pd.Index, np.ndarray)) else None
            res = orig(arg, *args, **kwargs)
            if plin is not None:
                first = res[0] if isinstance(res, tuple) else res
                if isinstance(first, (pd.Index, np.ndarray)) and len(first) == len(arg):
                    register_plain(first, None, plin)
            return res
        with guard:
            res = orig(arg, *args, **kwargs)
        first, rest = (res[0], res[1:]) if isinstance(res, tuple) else (res, None)
        out = accessor_result(arg, first, name)
        if _fits(name, args, kwargs) and is_tracked_frame(out):
            out = _with_fitted_control(out, arg, name)
        return out if rest is None else (out,) + tuple(rest)

    fn.__whence_wrapped__ = True
    return fn


def _crosstab():
    orig = pd.crosstab
    _ORIG["crosstab"] = orig

    @functools.wraps(orig)
    def crosstab(index, columns, values=None, *args, **kwargs):
        from .opaque import opaque_function
        if guard_depth() or not (is_tracked_frame(index) or is_tracked_frame(columns)):
            return orig(index, columns, values, *args, **kwargs)
        simple = (values is None and not args and not kwargs.get("margins") and not kwargs.get("normalize")
                  and kwargs.get("aggfunc") is None and isinstance(index, pd.Series)
                  and isinstance(columns, pd.Series) and is_tracked_frame(index) and is_tracked_frame(columns))
        if not simple:
            return opaque_function("crosstab", orig)(index, columns, values, *args, **kwargs)
        from .reshapes import crosstab_lineage
        with guard:
            res = orig(index, columns, values, *args, **kwargs)
            parts = crosstab_lineage(res, index, columns)
        if parts is None:
            return opaque_function("crosstab", orig)(index, columns, values, *args, **kwargs)
        return attach(res, parts, "crosstab", [index, columns])

    crosstab.__whence_wrapped__ = True
    return crosstab


def install():
    """Put the wrappers on the ``pandas`` module (once)."""
    if _ORIG:
        return
    for name in CELLWISE_FUNCTIONS:
        setattr(pd, name, _wrap(name))
    pd.crosstab = _crosstab()
