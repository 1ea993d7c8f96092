"""The pandas function table: which bucket each public method of the tracked classes belongs to.

Generic methods are installed here, one wrapper per bucket, onto :class:`TrackedFrame` and :class:`TrackedSeries`.
"""

from __future__ import annotations

import pandas as pd

from .cellwise import _same
from .classes import TrackedFrame, TrackedSeries
from .groups import _window_method
from .meta import _html_with_lineage, _quiet, _series_html
from .selection import _rows_op, _sort_index


def install():
    # formatting and writing record nothing and warn about nothing
    for _cls, _base in ((TrackedFrame, pd.DataFrame), (TrackedSeries, pd.Series)):
        for _name in ("__repr__", "_repr_html_", "to_string", "to_html", "to_csv", "to_parquet", "to_json",
                      "to_markdown", "to_excel", "to_dict", "to_records", "info", "equals", "describe", "to_latex",
                      "to_pickle", "to_feather", "to_sql", "memory_usage", "_repr_latex_"):
            if hasattr(_base, _name):
                setattr(_cls, _name, _quiet(getattr(_base, _name)))
        for _name in ("astype", "fillna", "replace", "round", "clip", "abs", "isna", "notna", "isnull", "notnull",
                      "infer_objects", "convert_dtypes", "__neg__", "__pos__", "__invert__", "__abs__", "bfill",
                      "ffill"):
            if hasattr(_base, _name) and _name not in ("bfill", "ffill"):
                setattr(_cls, _name, _same(_name)(getattr(_base, _name)))
        for _name, _ign in (("sort_values", "ignore_index"), ("dropna", "ignore_index"),
                            ("drop_duplicates", "ignore_index"), ("sample", "ignore_index")):
            if hasattr(_base, _name):
                setattr(_cls, _name, _rows_op(_name, _ign)(getattr(_base, _name)))
        for _name in ("rolling", "expanding", "ewm", "resample"):
            if hasattr(_base, _name):
                setattr(_cls, _name, _window_method(_name))

    TrackedFrame.sort_index = _sort_index
    TrackedSeries.sort_index = _sort_index

    # notebooks: pandas' table with a lineage summary under it (a Series has no HTML of its own in pandas)
    TrackedFrame._repr_html_ = _html_with_lineage(pd.DataFrame._repr_html_)
    TrackedSeries._repr_html_ = _series_html
