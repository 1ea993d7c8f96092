"""User functions applied along an axis (``apply``): a row-wise function reads its whole row, a column-wise one its
whole column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..relations import Part, data_cmat
from .base import attach, guard_depth, elementwise, fallback, guard, row_preserving, lineage_of


def _apply_lineage(src, res, axis):
    if axis in (1, "columns"):
        if isinstance(res, (pd.Series, pd.DataFrame)) and len(res) == len(src):
            return row_preserving(res, "apply(axis=1)", src)
        return fallback(res, "apply(axis=1)", [src])
    lin = lineage_of(src)
    if isinstance(res, pd.DataFrame) and res.shape == src.shape and res.columns.equals(src.columns):
        # column-wise: each cell derives from the whole column it was computed from; on the input's own rows,
        # the index cells and what chose a row stay the row's (the rows' control is control of the values)
        same = res.index.equals(src.index)
        nidx, ncols = lin.nidx, res.shape[1]
        parts = []
        for p in lin.parts:
            grp = p.rel.group(np.zeros(lin.n, np.int64), 1).take(np.zeros(len(res), np.int64))
            if not same or (p.wide and not p.control):
                parts.append(Part(p.node, grp, p.cmat, p.control, p.wide))
            elif p.wide:
                parts.append(Part(p.node, p.rel, p.cmat, True, True))
                parts.append(Part(p.node, grp, data_cmat(p.cmat[0], nidx, ncols), True))
            else:
                own = p.cmat.copy()
                own[nidx:] = False
                if own.any():
                    parts.append(Part(p.node, p.rel, own, p.control))
                vals = p.cmat.copy()
                vals[:nidx] = False
                if vals.any():
                    parts.append(Part(p.node, grp, vals, p.control))
        return attach(res, parts, "apply", [src])
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
        return attach(res, parts, "apply", [src])
    return fallback(res, "apply", [src])


class SeriesApply:

    def apply(self, func, *args, **kwargs):
        if guard_depth():
            return super().apply(func, *args, **kwargs)
        with guard:
            res = super().apply(func, *args, **kwargs)
            if isinstance(res, pd.Series) and len(res) == len(self):
                return elementwise(res, "apply", [self])
            if isinstance(res, pd.DataFrame) and len(res) == len(self):
                return row_preserving(res, "apply", self)
            return fallback(res, "Series.apply", [self])


class FrameApply:

    def _get_cleaned_column_resolvers(self):
        """The columns ``DataFrame.eval`` / ``query`` resolve names to: pandas 2 builds them as new plain Series
        from the column arrays (no lineage); here they are the frame's own tracked columns."""
        out = super()._get_cleaned_column_resolvers()
        if guard_depth() or not self.columns.is_unique:
            return out
        from pandas.core.computation.parsing import clean_column_name
        from .base import is_tracked_frame
        for k in self.columns:
            ck = clean_column_name(k)
            v = out.get(ck)
            if v is not None and not is_tracked_frame(v):
                out[ck] = self[k]
        return out

    def apply(self, func, axis=0, raw=False, result_type=None, args=(), by_row="compat", engine=None,
              engine_kwargs=None, **kwargs):
        # engine / engine_kwargs only when given: pandas 2.x takes engine=None as its numba path
        kwargs.update({k: v for k, v in (("engine", engine), ("engine_kwargs", engine_kwargs)) if v is not None})
        if guard_depth():
            return super().apply(func, axis=axis, raw=raw, result_type=result_type, args=args, by_row=by_row,
                                 **kwargs)
        with guard:
            res = super().apply(func, axis=axis, raw=raw, result_type=result_type, args=args, by_row=by_row,
                                **kwargs)
            return _apply_lineage(self, res, axis)
