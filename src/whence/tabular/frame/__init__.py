"""Tracked pandas objects: real DataFrames and Series whose row and column lineage is kept beside them.

:class:`TrackedFrame` and :class:`TrackedSeries` subclass :class:`pandas.DataFrame` and
:class:`pandas.Series`.  Every pandas operation still computes the values (ordinary pandas code runs
unchanged); the operations whence covers also compose a :class:`~whence.tabular.relations.Lineage` for the
result, with vectorised numpy on row-id arrays.  The lineage lives in an attribute pandas never copies,
writes or shows: no hidden column reaches ``to_csv``, ``to_parquet``, ``df.columns`` or ``repr``.

An operation whence does not cover still runs; its result is marked PARTIAL (all of its input's cells, with
the reason) and a :class:`~whence.errors.PartialLineageWarning` is raised.  It is never silently wrong.

The package is laid out by bucket (see :mod:`whence.tabular.frame.registry` for the table):

``base``       the recursion guard, warnings and the lineage helpers every bucket composes
``cellwise``   same cell: operators, ufuncs, casts, fills, ``where``/``mask``
``selection``  row selection: ``[]``, ``loc``/``iloc``, ``head``, ``query``, sorts, ``dropna``, ``drop_duplicates``
``writes``     column and cell assignment
``joins``      joins and lookups: ``merge``, ``join``, ``Series.map``
``groups``     group maps and the window objects (``groupby``, ``rolling``, ``expanding``, ``ewm``, ``resample``)
``reshapes``   ``set_index``, ``reset_index``, ``melt``, ``pivot_table``, ``to_frame``
``udf``        user functions along an axis (``apply``)
``meta``       metadata, I/O and formatting (no cells), and the hand-over to numpy
``construct``  ``pd.DataFrame(...)`` / ``pd.Series(...)`` built from tracked objects
"""

from __future__ import annotations

from .base import (align_rows, as_tracked, attach, attach_inplace, col_control, column_rows,  # noqa: F401
                   guard_depth, dims, elementwise, fallback, guard, remap, row_positions, warn_partial, is_tracked_frame,
                   lineage_of)
from .classes import TrackedFrame, TrackedSeries
from .groups import TrackedGroupBy, TrackedWindow, window_method  # noqa: F401
from .joins import suffixed  # noqa: F401
from .meta import plain_node  # noqa: F401
from .construct import install as _install_constructors, untracked
from .functions import install as _install_functions
from .indexes import install as _install_indexes
from .registry import install as _install

__all__ = ["TrackedFrame", "TrackedSeries", "TrackedGroupBy", "lineage_of", "is_tracked_frame", "untracked"]

_install()
_install_functions()
_install_indexes()
_install_constructors()
