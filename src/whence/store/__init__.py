"""Saving lineage and reading it back: the DuckDB store (:mod:`whence.store.duckdb_store`) and the exports
to Parquet, W3C PROV-JSON and OpenLineage (:mod:`whence.store.export`).

>>> import whence as wh
>>> callable(wh.save) and callable(wh.open) and callable(wh.export.prov_json)
True
"""

from .._extras import require

require("the lineage store (whence.save, whence.open)", "store")

from .duckdb_store import SCHEMA_VERSION, ObjectHandle, Run, Store, open, save  # noqa: E402
from .sql import backward_sql, sql_plan  # noqa: E402

__all__ = ["save", "open", "Store", "Run", "ObjectHandle", "SCHEMA_VERSION", "export", "backward_sql", "sql_plan"]


def __getattr__(name):
    if name == "export":
        import importlib
        return importlib.import_module(".export", __name__)
    raise AttributeError(f"module 'whence.store' has no attribute {name!r}")
