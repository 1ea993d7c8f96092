"""The tracked classes: :class:`TrackedFrame` and :class:`TrackedSeries`, assembled from the bucket modules.

Each bucket module holds the methods of its bucket as a mixin; the classes only add pandas' constructor
plumbing.  The generic methods of each bucket (one wrapper per bucket, applied to many names) are installed
from the table in :mod:`whence.tabular.frame.registry`.
"""

from __future__ import annotations

import pandas as pd

from .base import TYPES, TrackedMixin
from .cellwise import Cellwise, FrameCellwise, SeriesCellwise
from .groups import Groups
from .indexes import FRAME_INDEX, SERIES_INDEX, Indexes
from .joins import FrameJoins, SeriesLookups
from .meta import Meta
from .reshapes import FrameReshapes, SeriesReshapes
from .selection import FrameSelection, Selection, SeriesSelection
from .udf import FrameApply, SeriesApply
from .writes import FrameWrites, SeriesWrites

__all__ = ["TrackedFrame", "TrackedSeries"]


class TrackedSeries(SeriesSelection, SeriesWrites, SeriesCellwise, SeriesLookups, SeriesReshapes, SeriesApply,
                    Selection, Cellwise, Groups, Meta, Indexes, TrackedMixin, pd.Series):
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


class TrackedFrame(FrameSelection, FrameWrites, FrameCellwise, FrameJoins, FrameReshapes, FrameApply,
                   Selection, Cellwise, Groups, Meta, Indexes, TrackedMixin,
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
