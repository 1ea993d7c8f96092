"""The tracked classes: :class:`TrackedFrame` and :class:`TrackedSeries`, assembled from the bucket modules.

Each bucket module holds the methods of its bucket as a mixin; the classes only add pandas' constructor
plumbing.  The generic methods of each bucket (one wrapper per bucket, applied to many names) are installed
from the table in :mod:`whence.tabular.frame.registry`.
"""

from __future__ import annotations

import pandas as pd

from .base import TYPES, _TrackedMixin
from .cellwise import _Cellwise, _FrameCellwise, _SeriesCellwise
from .groups import _Groups
from .indexes import FRAME_INDEX, SERIES_INDEX, _Indexes
from .joins import _FrameJoins, _SeriesLookups
from .meta import _Meta
from .reshapes import _FrameReshapes, _SeriesReshapes
from .selection import _FrameSelection, _Selection, _SeriesSelection
from .udf import _FrameApply, _SeriesApply
from .writes import _FrameWrites, _SeriesWrites

__all__ = ["TrackedFrame", "TrackedSeries"]


class TrackedSeries(_SeriesSelection, _SeriesWrites, _SeriesCellwise, _SeriesLookups, _SeriesReshapes, _SeriesApply,
                    _Selection, _Cellwise, _Groups, _Meta, _Indexes, _TrackedMixin, pd.Series):
    """A :class:`pandas.Series` with lineage (see :mod:`whence.tabular.frame`)."""

    index = SERIES_INDEX

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


class TrackedFrame(_FrameSelection, _FrameWrites, _FrameCellwise, _FrameJoins, _FrameReshapes, _FrameApply,
                   _Selection, _Cellwise, _Groups, _Meta, _Indexes, _TrackedMixin,
                   pd.DataFrame):
    """A :class:`pandas.DataFrame` with row and column lineage.

    Made by :func:`whence.read_csv`, :func:`whence.read_parquet` or :func:`whence.track_frame`; every pandas
    operation on it returns tracked objects.  ``isinstance(df, pandas.DataFrame)`` holds.
    """

    index = FRAME_INDEX

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


TYPES["frame"] = TrackedFrame
TYPES["series"] = TrackedSeries
