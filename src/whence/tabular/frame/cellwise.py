"""Cellwise bucket: results of the same shape whose cell (i, j) derives from cell (i, j) of each aligned
operand (operators, ufuncs, casts, fills, ``where``/``mask``, ``isin``, ``between``, ``copy``).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from .base import (_attach, _attach_inplace, _depth, _elementwise, _fallback, _fallback_reason, _guard, _remap,
                   is_tracked_frame, lineage_of)


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


def _binary(res, op, *operands):
    if not isinstance(res, (pd.Series, pd.DataFrame)):
        return res
    name = getattr(op, "__name__", str(op)).strip("_")
    ops = [o for o in operands if is_tracked_frame(o)]
    others = [o for o in operands if not is_tracked_frame(o)]
    from ...tracked import TrackedArray
    if any(isinstance(o, TrackedArray) for o in others):
        res = _elementwise(res, name, ops)
        return _fallback_reason(res, f"{name} with a numpy TrackedArray operand: the array's lineage is not followed")
    return _elementwise(res, name, ops)


class _Cellwise:

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
            same = pd.Series if isinstance(self, pd.Series) else pd.DataFrame
            if method == "__call__" and isinstance(res, same) and "out" not in kwargs:
                return _binary(res, ufunc, *inputs)
            if isinstance(res, (pd.Series, pd.DataFrame)):
                return _fallback(res, f"{ufunc.__name__}.{method}", [i for i in inputs if is_tracked_frame(i)])
            return res


class _SeriesCellwise:

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


class _FrameCellwise:

    def copy(self, deep=True):
        if _depth():
            return super().copy(deep=deep)
        with _guard:
            res = super().copy(deep=deep)
            object.__setattr__(res, "_wh", lineage_of(self))
            return res
