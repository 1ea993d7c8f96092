"""The store file's format: its tables, the schema version, and how a file is recognised as a store.

The tables are described in :mod:`whence.store.duckdb_store`.  :func:`check_meta` reads a file's
``whence_meta`` table and says whether it is a whence store this version reads; :func:`open_error` turns a
failure to attach a file into the :class:`~whence.errors.StoreError` that says what the file is.  The drivers
(DuckDB, pyarrow) are imported on first use through :func:`duckdb_module` and :func:`pyarrow_module`, with
the message that names the ``store`` extra when they are missing.
"""

from __future__ import annotations

import builtins

from ..errors import NotAStoreError, StoreCorruptError, StoreLockedError, StoreVersionError

SCHEMA_VERSION = 1
FORMAT = "whence-lineage-store"
INLINE_LIMIT = 64 << 20
LOCK_TIMEOUT = 60.0  # seconds a save waits for another process's save to finish
BLOCK_SIZE = 16384  # small blocks: a store of a few runs stays in the tens of kilobytes

DDL = """
CREATE TABLE whence_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE runs (run VARCHAR PRIMARY KEY, run_uid VARCHAR, created TIMESTAMP, whence_version VARCHAR,
    n_nodes BIGINT, n_objects BIGINT, n_arrays BIGINT, n_sources BIGINT);
CREATE TABLE objects (run VARCHAR, name VARCHAR, node BIGINT, kind VARCHAR, shape BIGINT[], columns VARCHAR,
    completeness VARCHAR);
CREATE TABLE nodes (run VARCHAR, node BIGINT, op VARCHAR, shape BIGINT[], source VARCHAR, completeness VARCHAR,
    reason VARCHAR, internal BOOLEAN, detail VARCHAR, map_kind VARCHAR, map VARCHAR, lineage_nbytes BIGINT);
CREATE TABLE edges (run VARCHAR, child BIGINT, parent BIGINT, position INTEGER, control BOOLEAN);
CREATE TABLE rectangles (run VARCHAR, node BIGINT, position INTEGER, parent BIGINT, out_lo BIGINT[],
    out_hi BIGINT[], lo_ax BIGINT[], lo_mul BIGINT[], lo_off BIGINT[], hi_ax BIGINT[], hi_mul BIGINT[],
    hi_off BIGINT[]);
CREATE TABLE arrays (run VARCHAR, run_uid VARCHAR, id BIGINT, dtype VARCHAR, shape BIGINT[], nbytes BIGINT,
    codec VARCHAR, crc32 BIGINT, data BLOB, path VARCHAR);
CREATE TABLE sources (run VARCHAR, node BIGINT, name VARCHAR, kind VARCHAR, shape BIGINT[], columns VARCHAR,
    path VARCHAR, format VARCHAR, size BIGINT, mtime_ns BIGINT, sha256 VARCHAR, n_rows BIGINT,
    line_note VARCHAR, lines VARCHAR);
"""
# added after the first release of the format: stores written before it have no such table (read as empty)
RESULTS_DDL = "CREATE TABLE IF NOT EXISTS results (run VARCHAR, name VARCHAR, kind VARCHAR, payload VARCHAR)"
TABLES = ("runs", "objects", "nodes", "edges", "rectangles", "arrays", "sources", "results")

# the columns of the tables written row by row (through Arrow), with their Arrow types
COLUMNS = {
    "nodes": ("run", "node", "op", "shape", "source", "completeness", "reason", "internal", "detail", "map_kind",
              "map", "lineage_nbytes"),
    "edges": ("run", "child", "parent", "position", "control"),
    "rectangles": ("run", "node", "position", "parent", "out_lo", "out_hi", "lo_ax", "lo_mul", "lo_off", "hi_ax",
                   "hi_mul", "hi_off"),
    "sources": ("run", "node", "name", "kind", "shape", "columns", "path", "format", "size", "mtime_ns", "sha256",
                "n_rows", "line_note", "lines"),
    "objects": ("run", "name", "node", "kind", "shape", "columns", "completeness"),
    "arrays": ("run", "run_uid", "id", "dtype", "shape", "nbytes", "codec", "crc32", "data", "path"),
    "results": ("run", "name", "kind", "payload"),
}
COLUMN_TYPES = {
    "nodes": ("string", "int64", "string", "list", "string", "string", "string", "bool", "string", "string",
              "string", "int64"),
    "edges": ("string", "int64", "int64", "int32", "bool"),
    "rectangles": ("string", "int64", "int32", "int64") + ("list",) * 8,
    "sources": ("string", "int64", "string", "string", "list", "string", "string", "string", "int64", "int64",
                "string", "int64", "string", "string"),
    "objects": ("string", "string", "int64", "string", "list", "string", "string"),
    "arrays": ("string", "string", "int64", "string", "list", "int64", "string", "int64", "binary", "string"),
    "results": ("string", "string", "string", "string"),
}


def pyarrow_module(name="pyarrow"):
    """``pyarrow`` (or one of its modules, such as ``pyarrow.parquet``), or an ImportError naming the extra."""
    from .._extras import import_module
    return import_module(name, "the lineage store", "store")


def duckdb_module():
    """``duckdb``, or an ImportError naming the ``store`` extra."""
    from .._extras import import_module
    return import_module("duckdb", "the lineage store", "store")


def first_line(e):
    """The first line of an exception's message (DuckDB's messages run over several lines)."""
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def sql_string(p):
    """A path as the body of a SQL string literal (quotes doubled)."""
    return str(p).replace("'", "''")


def whence_version():
    """The version of whence writing or reading the file."""
    from .. import __version__
    return __version__


def is_lock_message(low):
    """Whether a DuckDB message (lower case) says another process holds the file open for writing."""
    # DuckDB's own words for a file another process holds open for writing (a corruption message may contain
    # "block", so the bare word "lock" is not enough)
    return "could not set lock on file" in low or "conflicting lock" in low


def open_error(path, e):
    """The StoreError of a file that could not be attached: locked, not a DuckDB file, or damaged."""
    msg = first_line(e)
    low = msg.lower()
    if is_lock_message(low):
        return StoreLockedError(f"{str(path)!r} is held open for writing by another program ({msg}); try again "
                                f"when it is done")
    try:
        with builtins.open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        head = None
    if head is not None and head[8:12] != b"DUCK":
        kind = "an empty file" if not head else (
            "a text file" if all(32 <= c < 127 or c in (9, 10, 13) for c in head) else "another kind of file")
        return NotAStoreError(f"{str(path)!r} is not a whence store: it is {kind}, not a DuckDB database (a store "
                              f"is the .duckdb file written by whence.save; source tables are read with "
                              f"wh.read_csv)")
    if "not a valid duckdb database" in low or "database file with version" in low and "magic" in low:
        return NotAStoreError(f"{str(path)!r} is not a readable whence store: the file is not a DuckDB database "
                              f"({msg})")
    return StoreCorruptError(f"{str(path)!r} is not a readable whence store: the DuckDB file is truncated or "
                             f"corrupted ({msg})")


def check_meta(con, path):
    """The schema version of the store read through ``con``; a StoreError when it is not one this whence reads."""
    # the table read directly: information_schema lists the tables of every database attached to the instance
    # (the other stores of the process), and under load that took most of an open's time
    duckdb = duckdb_module()
    query = "SELECT key, value FROM whence_meta"
    try:
        rows = con.raw.execute(query).fetchall()
    except duckdb.CatalogException:
        raise NotAStoreError(f"{str(path)!r} is a DuckDB database but not a whence store (no whence_meta "
                             f"table)") from None
    except duckdb.Error:
        rows = con.execute(query).fetchall()  # again, for the StoreError that says what failed
    try:
        rows = dict(rows)
    except (TypeError, ValueError) as e:
        raise StoreCorruptError(f"{str(path)!r} has an unreadable whence_meta table: the store is corrupted") \
            from e
    if rows.get("format") != FORMAT:
        raise NotAStoreError(f"{str(path)!r} is a DuckDB database but not a whence store")
    try:
        version = int(rows.get("schema_version", ""))
    except (TypeError, ValueError):
        raise StoreCorruptError(f"{str(path)!r} has no valid schema version: the store is corrupted") from None
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{str(path)!r} was written with store schema {version} ({rows.get('created_by', 'a newer whence')}); "
            f"this whence {whence_version()} reads schema {SCHEMA_VERSION} and older: upgrade whence to read it")
    if version < SCHEMA_VERSION:
        # no older schema has been released; a migration would go here
        raise StoreVersionError(f"{str(path)!r} has store schema {version}, which this whence cannot migrate")
    return version
