"""Lineage and attribution on Dask collections (the ``dask`` extra: dask.array, dask.dataframe, distributed).

Everything stays lazy: lineage maps are recorded from shapes and chunk structure at capture time, and a query
computes only the chunks it needs.
"""

from .._extras import require

require("whence.dask", "dask")

from .dataframe import (DaskSource, DaskTrackedFrame, DaskTrackedGroupBy, DaskTrackedSeries,  # noqa: E402,F401
                        from_pandas, is_dask_tracked, read_csv)
from .array import DaskGatherMap, LazyUnsupportedError, register_duckdb, relation_to_parquet  # noqa: E402,F401
from .attribution import DaskGradientStore  # noqa: E402,F401
