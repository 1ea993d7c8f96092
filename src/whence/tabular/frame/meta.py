"""Metadata, I/O and formatting bucket (no cells derive from values: ``repr``, ``to_csv``, ``info``, ...) and the
hand-over to numpy (``to_numpy``, ``values``, ``np.asarray``).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ...graph import Node
from .base import guard_depth, guard, lineage_of
from .values import register_plain, plain_node  # noqa: F401

# pandas < 2.2.2: DataFrame.__array__ has no copy parameter
_ARRAY_COPY = "copy" in __import__("inspect").signature(pd.DataFrame.__array__).parameters


def quiet_method(base):
    """A method that must record nothing and warn about nothing (formatting, writing)."""

    @functools.wraps(base)
    def method(self, *args, **kwargs):
        with guard:
            return base(self, *args, **kwargs)

    return method


def to_tracked_array(obj, arr):
    """``arr`` (the values of ``obj``) with the lineage of ``obj``: a :class:`whence.TrackedArray` for numeric
    and bool values; pandas' own array otherwise (object, datetime), registered so that queries on it and
    writes of it into a tracked frame find its lineage."""
    from ...tracked import wrap as _wrap
    if arr.dtype.kind not in "biufc":
        register_plain(arr, lineage_of(obj).node)
        return arr
    lin = lineage_of(obj)
    node = lin.node
    if node.shape != arr.shape:
        from ...maps import ViewMap
        node = Node("to_numpy", arr.shape, ViewMap(arr.shape, node.shape, "reshape"), (node,))
    t = _wrap(arr, node)
    return t


def html_with_lineage(base):
    quiet = quiet_method(base)

    @functools.wraps(base)
    def _repr_html_(self):
        table = quiet(self)
        if table is None:  # pandas' display.notebook_repr_html is off
            return None
        from ...notebook import frame_html
        return frame_html(self, table)

    return _repr_html_


def series_html(self):
    from ...notebook import frame_html
    return frame_html(self, quiet_method(pd.DataFrame.to_html)(self.to_frame()))


class Meta:

    def to_numpy(self, dtype=None, copy=False, na_value=pd.api.extensions.no_default):
        """The values as a :class:`whence.TrackedArray` whose lineage continues from this frame's (text,
        datetime and categorical values: pandas' own object or datetime array, its lineage queryable)."""
        with guard:
            base = pd.DataFrame.to_numpy if isinstance(self, pd.DataFrame) else pd.Series.to_numpy
            arr = base(self, dtype=dtype, copy=copy, na_value=na_value)
        if guard_depth():
            return arr
        return to_tracked_array(self, arr)

    @property
    def values(self):
        if guard_depth():
            return super().values
        with guard:
            arr = super().values
        if not isinstance(arr, np.ndarray):
            return arr
        return to_tracked_array(self, arr)

    def __array__(self, dtype=None, copy=None):
        with guard:
            # pandas < 2.2.2 has no copy parameter (and numpy 1.x never passes one)
            arr = super().__array__(dtype=dtype) if copy is None or not _ARRAY_COPY else \
                super().__array__(dtype=dtype, copy=copy)
        if not guard_depth():
            register_plain(arr, lineage_of(self).node)
        return arr
