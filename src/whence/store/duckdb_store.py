"""The lineage store: runs saved to one DuckDB file and queried later, without the data.

``whence.save(path, run, X=X, y=y)`` writes the lineage of the objects named, and of everything they derive
from: the operation graph, every operation's map (its parameters, and the index arrays of data-dependent
operations), the lineage relation as ProvRC-style rectangles, and a description of every source (for files:
path, size, sha256, row count and the line of every row).  ``whence.open(path)`` reads it back; a handle
such as ``store["etl"]["X"]`` answers ``whence.backward``, ``whence.forward``, ``whence.trace_to_file``,
``sources``, ``ops`` and ``ancestors`` with the same answers as the live object had.  No array data is
stored or loaded; index arrays are read when a query first needs them.

Tables (query them with :meth:`Store.sql`)
------------------------------------------
``whence_meta(key, value)``
    ``format`` (``whence-lineage-store``), ``schema_version``, ``created_by``.
``runs(run, run_uid, created, whence_version, n_nodes, n_objects, n_arrays, n_sources)``
    One row per saved run.
``objects(run, name, node, kind, shape, columns, completeness)``
    The objects saved under a name: ``kind`` is ``array``, ``frame`` or ``series``; ``columns`` is a JSON list
    for frames.
``nodes(run, node, op, shape, source, completeness, reason, internal, detail, map_kind, map, lineage_nbytes)``
    One row per operation or source; ``node`` numbers them in a topological order (parents first); ``map`` is
    the map's record (JSON, see :mod:`whence.store.codec`).
``edges(run, child, parent, position, control)``
    ``parent`` is input number ``position`` of ``child``; ``control`` marks masks, conditions, keys.
``rectangles(run, node, position, parent, out_lo, out_hi, lo_ax, lo_mul, lo_off, hi_ax, hi_mul, hi_off)``
    The relation of every shape-determined operation as ProvRC rectangles: the output cells ``o`` with
    ``out_lo <= o <= out_hi`` derive from the parent cells ``i`` with, on every parent axis ``j``,
    ``lo_off[j] + lo_mul[j] * o[lo_ax[j]] <= i[j] <= hi_off[j] + hi_mul[j] * o[hi_ax[j]]`` (axis -1: the bound
    is absolute; ``lo_ax = [-2]``: a flat identity, as for a reshape).  Lists are 1-based in SQL.
``arrays(run, run_uid, id, dtype, shape, nbytes, codec, crc32, data, path)``
    The index arrays of data-dependent operations and of table row relations, zstd-compressed in ``data``,
    or, above ``inline_limit`` bytes, in a Parquet file beside the database (``path``, relative to it).
``sources(run, node, name, kind, shape, columns, path, format, size, mtime_ns, sha256, n_rows, line_note,
lines)``
    Every source: ``kind`` is ``table`` (read from a file or a frame) or ``array``; ``lines`` references the
    array of 1-based file lines of the rows (in ``arrays``).
``results(run, name, kind, payload)``
    Results saved with the run (``save(..., results={...})``): attributions, unlearning figures, tables, as
    JSON documents (see :mod:`whence.store.results`).

Saving is one transaction (a new file is written beside and renamed into place), so a process killed while
saving leaves the file as it was or with the whole new run.  Readers open the file read-only; several
processes may read at once while none writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import uuid
import warnings
import weakref
import zlib
from pathlib import Path

import numpy as np

from ..errors import (NotTrackedError, PartialLineageWarning, StoreError, StoreKeyError, StoreVersionError)
from ..graph import Node, OpRecord
from . import codec

__all__ = ["save", "open", "Store", "Run", "ObjectHandle", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
FORMAT = "whence-lineage-store"
INLINE_LIMIT = 64 << 20
_BLOCK_SIZE = 16384  # small blocks: a store of a few runs stays in the tens of kilobytes

_DDL = """
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
_RESULTS_DDL = "CREATE TABLE IF NOT EXISTS results (run VARCHAR, name VARCHAR, kind VARCHAR, payload VARCHAR)"
_TABLES = ("runs", "objects", "nodes", "edges", "rectangles", "arrays", "sources", "results")

_open_stores: "weakref.WeakSet[Store]" = weakref.WeakSet()


def _duckdb():
    try:
        import duckdb
    except ImportError as e:  # pragma: no cover - duckdb is a dependency of the store extra
        raise ImportError("the lineage store needs duckdb: pip install 'whence[store]'") from e
    return duckdb


def _key(path):
    return str(Path(path).resolve())


# ================================================================================================== save
def save(path, run, objects=None, *, results=None, datasets=None, overwrite=False, inline_limit=INLINE_LIMIT,
         progress=True, **named):
    """Save the lineage of tracked objects to a DuckDB store, under a run name.

    Parameters
    ----------
    path : str or path-like
        The store file; created when missing.  One file holds several runs.
    run : str
        The run's name.  Saving a run name that is already in the store is an error unless ``overwrite``.
    objects : dict, optional
        ``{name: object}``, for names that are not Python identifiers.
    results : dict, optional
        ``{name: result}`` kept with the run and drawn by the report and the explorer: an
        :class:`~whence.attribution.Explanation` or a list of them, a :func:`~whence.unlearn.forget_sources`
        result, a :class:`~whence.unlearn.ComparisonReport`, a DataFrame (a table), or a dict with a
        ``"kind"`` (see :mod:`whence.store.results`).
    datasets : dict, optional
        ``{name: directory}`` of lineage relations written as Parquet datasets (``whence.lineage(y).to_parquet``,
        partitioned and written on the workers for Dask arrays), referenced by the run rather than copied:
        :meth:`Run.dataset` gives the directory back and :meth:`Store.dataset_views` makes DuckDB views over
        it.  A directory inside the store's folder is recorded relative to it, so both can move together.
    overwrite : bool, default False
        Replace a run of the same name (atomically: readers see the old run or the new one).
    inline_limit : int
        Index arrays larger than this many bytes go to Parquet files beside the store (``<path>.arrays/``)
        rather than into the database.
    progress : bool, default True
        A progress bar on stderr when the save takes more than a second.
    **named
        The objects to save: tracked arrays, tracked frames and series, and plain arrays or sparse
        matrices handed out by tracked frames and scikit-learn.

    Returns
    -------
    dict
        What was written: ``run``, ``nodes``, ``arrays``, ``bytes`` (the file's size), ``seconds``.

    Examples
    --------
    >>> import os, tempfile, numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.arange(12.0).reshape(3, 4), name="a")
    >>> y = np.cumsum(a * 2, axis=1)[:, ::2]
    >>> path = os.path.join(tempfile.mkdtemp(), "run.duckdb")
    >>> info = wh.save(path, "demo", y=y)
    >>> with wh.open(path) as store:
    ...     wh.backward(store["demo"]["y"], (1, 1))["a"].tolist() == wh.backward(y, (1, 1))["a"].tolist()
    True
    """
    t0 = time.perf_counter()
    if not isinstance(run, str) or not run:
        raise ValueError(f"a run name must be a non-empty string, got {run!r}")
    objs = dict(objects or {})
    for k, v in named.items():
        if k in objs:
            raise ValueError(f"object {k!r} is given twice")
        objs[k] = v
    if not objs:
        raise ValueError("nothing to save: name at least one tracked object, e.g. save(path, 'etl', X=X)")
    for k in objs:
        if not isinstance(k, str) or not k:
            raise ValueError(f"an object name must be a non-empty string, got {k!r}")
    if results is not None and not isinstance(results, dict):
        raise TypeError(f"results must be a dict {{name: result}}, got {type(results).__name__}")
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{str(path)!r} is a directory, not a store file")
    from ..progress import progress_bar
    bar = progress_bar(3, f"saving run {run!r}", enabled=progress)
    try:
        payload = _collect(run, objs)
        bar.update()
        from .results import encode_result
        payload["results"] = [(run, *encode_result(k, v)) for k, v in (results or {}).items()]
        if datasets is not None and not isinstance(datasets, dict):
            raise TypeError(f"datasets must be a dict {{name: directory}}, got {type(datasets).__name__}")
        names = {r[1] for r in payload["results"]}
        for k, d in (datasets or {}).items():
            if k in names:
                raise ValueError(f"{k!r} names both a result and a dataset")
            payload["results"].append((run, k, "parquet_dataset", _dataset_record(k, d, path)))
        bar.update()
        return _save_payload(path, run, payload, overwrite, inline_limit, t0)
    finally:
        bar.close()


_DATASET_TABLES = ("ops", "rectangles", "index_arrays", "pairs")


def _dataset_record(name, directory, store_path):
    """The JSON record of a Parquet relation dataset referenced by a run (checked to exist and be one)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a dataset name must be a non-empty string, got {name!r}")
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"dataset {name!r}: no directory at {str(d)!r}")
    if not (d / "ops.parquet").is_file():
        raise ValueError(f"dataset {name!r}: {str(d)!r} has no ops.parquet; write it with "
                         f"whence.lineage(y).to_parquet(directory)")
    tables = {}
    for t in _DATASET_TABLES:
        if (d / f"{t}.parquet").is_file():
            tables[t] = f"{t}.parquet"
        elif (d / t).is_dir() and any((d / t).rglob("*.parquet")):
            tables[t] = f"{t}/*/*.parquet"  # partitioned by operation (op_id=...), written chunk by chunk
    files = [f for f in d.rglob("*.parquet") if f.is_file()]
    base = Path(store_path).resolve().parent
    full = d.resolve()
    try:
        stored, relative = str(full.relative_to(base)), True
    except ValueError:
        stored, relative = str(full), False
    return json.dumps({"path": stored, "relative": relative, "tables": tables, "files": len(files),
                       "bytes": int(sum(f.stat().st_size for f in files))}, separators=(",", ":"))


def _save_payload(path, run, payload, overwrite, inline_limit, t0):
    _release_readers(path)
    exists = path.exists() and path.stat().st_size > 0
    duckdb = _duckdb()
    array_dir = Path(str(path) + ".arrays")
    written_files = []
    if exists:
        try:
            con = duckdb.connect(str(path))
        except duckdb.Error as e:
            raise _open_error(path, e) from e
        target = con
        tmp = None
    else:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        con = duckdb.connect()
        con.execute(f"ATTACH '{_sql_str(tmp)}' AS store (BLOCK_SIZE {_BLOCK_SIZE})")
        con.execute("USE store")
        target = con
    try:
        if exists:
            _check_meta(target, path)
        target.execute("BEGIN TRANSACTION")
        try:
            if not exists:
                target.execute(_DDL)
                target.executemany("INSERT INTO whence_meta VALUES (?, ?)", [
                    ("format", FORMAT), ("schema_version", str(SCHEMA_VERSION)),
                    ("created_by", f"whence {_version()}")])
            target.execute(_RESULTS_DDL)
            old_files = []
            if target.execute("SELECT count(*) FROM runs WHERE run = ?", [run]).fetchone()[0]:
                if not overwrite:
                    raise StoreError(f"run {run!r} is already in {str(path)!r}: choose another name, or pass "
                                     f"overwrite=True to replace it")
                old_files = [r[0] for r in target.execute(
                    "SELECT path FROM arrays WHERE run = ? AND path IS NOT NULL", [run]).fetchall()]
                for t in _TABLES:
                    target.execute(f"DELETE FROM {t} WHERE run = ?", [run])
            _write(target, payload, array_dir, inline_limit, written_files)
            target.execute("COMMIT")
        except BaseException:
            try:
                target.execute("ROLLBACK")
            except Exception:
                pass
            for f in written_files:
                try:
                    os.remove(f)
                except OSError:
                    pass
            raise
        if tmp is not None:
            con.execute("USE memory")
            con.execute("DETACH store")
            con.close()
            os.replace(tmp, path)
            tmp = None
        else:
            con.close()
        for f in old_files:
            try:
                os.remove(array_dir / f)
            except OSError:
                pass
    finally:
        try:
            con.close()
        except Exception:
            pass
        if tmp is not None:
            for f in (tmp, Path(str(tmp) + ".wal")):
                try:
                    os.remove(f)
                except OSError:
                    pass
    return {"run": run, "nodes": len(payload["nodes"]), "arrays": payload["n_arrays"],
            "bytes": path.stat().st_size, "seconds": time.perf_counter() - t0}


def _sql_str(p):
    return str(p).replace("'", "''")


def _version():
    from .. import __version__
    return __version__


def _release_readers(path):
    """Close this process's read-only connections to ``path`` (they reconnect on their next use), so that
    DuckDB lets us open the file for writing."""
    key = _key(path)
    for s in list(_open_stores):
        if s._key == key:
            s._disconnect()


def _object_node(x):
    from ..query import _node_of
    try:
        return _node_of(x)
    except NotTrackedError as e:
        raise NotTrackedError(f"{e}; only tracked objects (or handles of a store) can be saved") from None


def _object_kind(x):
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return "array", None
    if isinstance(x, pd.DataFrame):
        return "frame", [str(c) for c in x.columns]
    if isinstance(x, pd.Series):
        return "series", None
    if isinstance(x, ObjectHandle):
        return x.kind, x.columns
    return "array", None


def _collect(run, objs):
    """Everything to write, as rows, before the file is touched (errors here leave the store as it was)."""
    from ..query import _prepare, _upstream
    # lazy (Dask) objects: shapes unknown at capture are resolved first, as before any query
    roots = {name: _prepare(_object_node(x)) for name, x in objs.items()}
    seen = {}
    for node in roots.values():
        for n in _upstream(node):
            seen[n.id] = n
    order = [seen[i] for i in sorted(seen)]
    num = {n.id: i for i, n in enumerate(order)}
    w = codec.ArrayWriter()
    nodes, edges, rects, sources = [], [], [], []
    warned = []
    from ..compose import FOLDED
    for n in order:
        i = num[n.id]
        map_json, kind, partial = None, None, n.partial
        # the relation queries follow: the node's own map, or the composed one when dead intermediates were
        # folded into it (written with its own parents, as a "link"); a folded node keeps only its history
        m, lparents, lcontrol = n.lineage
        if n.link is FOLDED:
            kind, map_json = "folded", json.dumps({"kind": "folded"})
        elif m is not None:
            try:
                rec = codec.encode_map(m, w)
            except codec.Unstorable as e:
                from ..maps import OpaqueMap
                m = OpaqueMap(n.shape, [p.shape for p in lparents])
                rec = codec.encode_map(m, w)
                partial = (partial + "; " if partial else "") + f"{e} cannot be stored: saved as all-to-all"
                warned.append(f"{n.op}: {e}")
            kind = rec["kind"]
            if n.link is not None:
                rec = {"kind": "link", "map": rec, "parents": [num[p.id] for p in lparents],
                       "control": sorted(int(c) for c in lcontrol)}
            map_json = json.dumps(rec, separators=(",", ":"))
            f = getattr(m, "rectangles", None)
            for row in (f() if f is not None and lparents else None) or ():
                pos = int(row[0])
                rects.append((run, i, pos, num[lparents[pos].id], *[list(map(int, v)) for v in row[1:]]))
        nodes.append((run, i, n.op, list(n.shape), n.name, "FULL" if partial is None else "PARTIAL", partial,
                      bool(n.internal), n.detail or "", kind, map_json,
                      int(n.record().lineage_nbytes) if not n.is_source else 0))
        for k, p in enumerate(n.parents):
            edges.append((run, i, num[p.id], k, k in n.control))
        if n.is_source:
            sources.append(_source_row(run, i, n, w))
    if warned:
        warnings.warn("lineage saved as PARTIAL (all-to-all) for: " + "; ".join(warned), PartialLineageWarning,
                      stacklevel=3)
    objects = []
    for name, x in objs.items():
        node = roots[name]
        kind, columns = _object_kind(x)
        partial = any(n.partial for n in _upstream(node))
        objects.append((run, name, num[node.id], kind, list(node.shape),
                        None if columns is None else json.dumps(columns), "PARTIAL" if partial else "FULL"))
    return {"run": run, "nodes": nodes, "edges": edges, "rects": rects, "sources": sources, "objects": objects,
            "arrays": w.arrays, "n_arrays": len(w.arrays)}


def _source_row(run, i, n, w):
    t = None
    try:
        import sys
        mod = sys.modules.get("whence.tabular.sources")
        if mod is not None:
            t = mod.table_source(n)
    except Exception:  # pragma: no cover
        t = None
    if t is None:
        return (run, i, n.name, "array", list(n.shape), None, None, None, None, None, None, None, None, None)
    sha, notes, lines_ref = None, [], None
    if t.path is not None:
        sha, changed = _file_sha256(t)
        if changed:
            notes.append("the file changed (or is gone) since it was read: no sha256")
    lines = t.lines() if hasattr(t, "lines") else None
    if lines is None and getattr(t, "line_note", None):
        notes.append(t.line_note)
    note = "; ".join(dict.fromkeys(notes)) or None
    if lines is not None:
        lines_ref = json.dumps(w.put(np.asarray(lines, np.int64)))
    return (run, i, n.name, "table", list(n.shape), json.dumps([str(c) for c in t.columns]), t.path, t.format,
            t.size, t.mtime_ns, sha, t.n_rows, note, lines_ref)


def _file_sha256(t):
    """(sha256 hex, changed): None when the file is gone or changed since it was read."""
    stored = getattr(t, "sha256", None)
    if stored is not None:
        return stored, False
    try:
        st = os.stat(t.path)
    except OSError:
        return None, True
    if (st.st_size, st.st_mtime_ns) != (t.size, t.mtime_ns):
        return None, True
    h = hashlib.sha256()
    with io.open(t.path, "rb") as f:  # the builtin: this module defines its own open
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest(), False


def _write(con, p, array_dir, inline_limit, written_files):
    import pyarrow as pa
    run = p["run"]
    run_uid = uuid.uuid4().hex
    arows = []
    for aid, a in p["arrays"]:
        a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        raw = a.tobytes()
        crc = zlib.crc32(raw)
        if len(raw) > inline_limit:
            import pyarrow.parquet as pq
            array_dir.mkdir(exist_ok=True)
            name = f"{run_uid}-{aid}.parquet"
            pq.write_table(pa.table({"v": a.reshape(-1)}), array_dir / name, compression="zstd")
            written_files.append(array_dir / name)
            arows.append((run, run_uid, aid, a.dtype.str, list(a.shape), len(raw), "parquet", crc, None, name))
        else:
            data = pa.compress(raw, codec="zstd", asbytes=True) if raw else b""
            arows.append((run, run_uid, aid, a.dtype.str, list(a.shape), len(raw), "zstd", crc, data, None))
    _insert(con, "nodes", p["nodes"])
    _insert(con, "edges", p["edges"])
    _insert(con, "rectangles", p["rects"])
    _insert(con, "sources", p["sources"])
    _insert(con, "objects", p["objects"])
    _insert(con, "arrays", arows)
    _insert(con, "results", p.get("results", []))
    con.execute("INSERT INTO runs VALUES (?, ?, current_timestamp, ?, ?, ?, ?, ?)",
                [run, run_uid, _version(), len(p["nodes"]), len(p["objects"]), len(arows), len(p["sources"])])


_COLUMNS = {
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
_TYPES = {
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


def _insert(con, table, rows):
    """Bulk insert through Arrow (one statement, whatever the number of rows)."""
    if not rows:
        return
    import pyarrow as pa
    types = {"string": pa.string(), "int64": pa.int64(), "int32": pa.int32(), "bool": pa.bool_(),
             "binary": pa.binary(), "list": pa.list_(pa.int64())}
    names = _COLUMNS[table]
    cols = list(zip(*rows))
    tab = pa.table({n: pa.array(list(c), type=types[t]) for n, c, t in zip(names, cols, _TYPES[table])})
    con.register("_whence_rows", tab)
    try:
        con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT * FROM _whence_rows")
    finally:
        con.unregister("_whence_rows")


# ================================================================================================== open
def _open_error(path, e):
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    low = msg.lower()
    if "lock" in low:
        return StoreError(f"{str(path)!r} is being written by another process ({msg}); try again when it is "
                          f"done")
    return StoreError(f"{str(path)!r} is not a readable whence store: the file is not a DuckDB database, or it "
                      f"is truncated or corrupted ({msg})")


def _check_meta(con, path):
    try:
        rows = dict(con.execute("SELECT key, value FROM whence_meta").fetchall())
    except Exception as e:
        raise StoreError(f"{str(path)!r} is a DuckDB database but not a whence store (no whence_meta table)") \
            from e
    if rows.get("format") != FORMAT:
        raise StoreError(f"{str(path)!r} is a DuckDB database but not a whence store")
    try:
        version = int(rows.get("schema_version", ""))
    except ValueError:
        raise StoreError(f"{str(path)!r} has no valid schema version") from None
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{str(path)!r} was written with store schema {version} ({rows.get('created_by', 'a newer whence')}); "
            f"this whence {_version()} reads schema {SCHEMA_VERSION} and older: upgrade whence to read it")
    if version < SCHEMA_VERSION:
        # no older schema has been released; a migration would go here
        raise StoreVersionError(f"{str(path)!r} has store schema {version}, which this whence cannot migrate")
    return version


def open(path):  # noqa: A001 - whence.open mirrors the builtin on purpose
    """Open a lineage store for reading.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Store

    Raises
    ------
    FileNotFoundError
        There is no such file.
    StoreError
        The file is not a whence store, is truncated or corrupted, or is being written.
    StoreVersionError
        It was written by a whence whose store schema this one cannot read.
    """
    return Store(path)


class Store:
    """A lineage store opened for reading (see :func:`whence.open`).

    ``store.runs()`` lists the runs; ``store["etl"]`` is a :class:`Run`; ``store.sql(query)`` runs SQL over
    the store's tables (documented in :mod:`whence.store.duckdb_store`) and returns a DataFrame.  Use it as
    a context manager, or call :meth:`close`, to release the file.
    """

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no lineage store at {str(self.path)!r}")
        if self.path.is_dir():
            raise StoreError(f"{str(self.path)!r} is a directory, not a store file")
        self._key = _key(self.path)
        self._conn = None
        self._closed = False
        self._runs = {}
        self.schema_version = _check_meta(self._con, self.path)
        _open_stores.add(self)

    # --- connection -----------------------------------------------------------------------------------------
    @property
    def _con(self):
        if self._closed:
            raise StoreError(f"the store {str(self.path)!r} was closed; open it again with whence.open")
        if self._conn is None:
            duckdb = _duckdb()
            try:
                self._conn = duckdb.connect(str(self.path), read_only=True)
            except duckdb.Error as e:
                raise _open_error(self.path, e) from e
        return self._conn

    def _disconnect(self):
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self):
        """Release the file.  Handles keep what they loaded; a query needing more raises StoreError."""
        self._disconnect()
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- contents -------------------------------------------------------------------------------------------
    def runs(self):
        """Names of the runs in the store, in the order they were saved."""
        return [r[0] for r in self._con.execute("SELECT run FROM runs ORDER BY created, run").fetchall()]

    def __contains__(self, run):
        return run in self.runs()

    def __getitem__(self, run):
        row = self._con.execute("SELECT run_uid, n_nodes, n_objects, n_arrays FROM runs WHERE run = ?",
                                [run]).fetchone()
        if row is None:
            raise StoreKeyError(f"no run named {run!r} in {str(self.path)!r}; runs: {self.runs()}")
        r = self._runs.get(run)
        if r is None or r.run_uid != row[0]:  # first access, or the run was overwritten since
            r = self._runs[run] = Run(self, run, *row)
        return r

    def sql(self, query, params=None):
        """Run a SQL query over the store (read-only) and return a pandas DataFrame.

        Examples
        --------
        >>> import os, tempfile, numpy as np, whence as wh
        >>> wh.reset()
        >>> a = wh.track(np.ones((4, 5)), name="a")
        >>> path = os.path.join(tempfile.mkdtemp(), "s.duckdb")
        >>> _ = wh.save(path, "r", y=a.T + 1)
        >>> with wh.open(path) as store:
        ...     store.sql("SELECT op, coalesce(map_kind, '-') AS map FROM nodes ORDER BY node").values.tolist()
        [['source', '-'], ['transpose', 'view'], ['add', 'elementwise']]
        """
        try:
            return self._con.execute(query, params or []).df()
        except _duckdb().Error as e:
            raise StoreError(f"SQL error: {str(e).splitlines()[0]}") from e

    def dataset_views(self, run, name, prefix=None):
        """Make DuckDB views over the Parquet relation dataset ``name`` of ``run``, for :meth:`sql`.

        The views (temporary, on this store's connection) are ``<prefix>ops``, ``<prefix>rectangles``,
        ``<prefix>index_arrays`` and ``<prefix>pairs`` for the tables the dataset has (a partitioned table gets
        an ``op_id`` column from its directories).  ``prefix`` defaults to ``name + "_"``.

        Returns
        -------
        list of str
            The views created.

        Examples
        --------
        >>> import os, tempfile, numpy as np, whence as wh
        >>> wh.reset()
        >>> y = np.sort(wh.track(np.array([3.0, 1.0, 2.0]), name="a"))
        >>> d = tempfile.mkdtemp()
        >>> _ = wh.lineage(y).to_parquet(os.path.join(d, "rel"))
        >>> _ = wh.save(os.path.join(d, "s.duckdb"), "r", y=y, datasets={"rel": os.path.join(d, "rel")})
        >>> with wh.open(os.path.join(d, "s.duckdb")) as store:
        ...     views = store.dataset_views("r", "rel")
        ...     int(store.sql("SELECT count(*) AS n FROM rel_ops").n[0]) >= 2
        True
        """
        import re
        d = self[run].dataset(name)
        rec = json.loads(next(t for n, k, t in self[run]._result_rows() if n == name))
        prefix = f"{name}_" if prefix is None else prefix
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
            raise ValueError(f"view prefix {prefix!r} is not a plain SQL identifier (letters, digits, _)")
        made = []
        for t, pattern in rec["tables"].items():
            hive = ", hive_partitioning = true" if "*" in pattern else ""
            src = _sql_str(d / pattern)
            self._con.execute(f"CREATE OR REPLACE TEMP VIEW {prefix}{t} AS SELECT * FROM read_parquet('{src}'{hive})")
            made.append(f"{prefix}{t}")
        return made

    def __repr__(self):
        state = "closed" if self._closed else f"{len(self.runs())} runs"
        return f"<whence.Store {str(self.path)!r}, {state}>"

    # --- arrays ---------------------------------------------------------------------------------------------
    def _load_array(self, run, run_uid, aid):
        row = self._con.execute(
            "SELECT dtype, shape, nbytes, codec, crc32, data, path FROM arrays WHERE run_uid = ? AND id = ?",
            [run_uid, aid]).fetchone()
        if row is None:
            raise StoreError(f"run {run!r} in {str(self.path)!r} was overwritten or deleted since it was opened, "
                             f"or is missing array {aid}: open the store again")
        dtype, shape, nbytes, codec_name, crc, data, rel = row
        dt = np.dtype(dtype)
        try:
            if codec_name == "parquet":
                import pyarrow.parquet as pq
                f = Path(str(self.path) + ".arrays") / rel
                if not f.exists():
                    raise StoreError(f"array file {str(f)!r} of run {run!r} is missing (it is kept beside the "
                                     f"store; copy the .arrays folder with the store file)")
                a = pq.read_table(f).column("v").to_numpy().astype(dt, copy=False)
            else:
                import pyarrow as pa
                raw = pa.decompress(data, decompressed_size=nbytes, codec="zstd", asbytes=True) if nbytes else b""
                a = np.frombuffer(raw, dt)
        except StoreError:
            raise
        except Exception as e:
            raise StoreError(f"array {aid} of run {run!r} in {str(self.path)!r} cannot be read: the store is "
                             f"corrupted ({e})") from e
        if zlib.crc32(np.ascontiguousarray(a).tobytes()) != crc:
            raise StoreError(f"array {aid} of run {run!r} in {str(self.path)!r} fails its checksum: the store is "
                             f"corrupted")
        return a.reshape(shape)


class Run:
    """One saved run: its objects by name (``run["X"]``), its sources, and its operation graph.

    The graph is rebuilt from the store on first use (one row per operation; no array data); index arrays are
    read when a query first needs them.
    """

    def __init__(self, store, name, run_uid, n_nodes, n_objects, n_arrays):
        self.store = store
        self.name = name
        self.run_uid = run_uid
        self.n_nodes = n_nodes
        self._graph = None
        self._objects = None
        self._handles = {}

    def _check_current(self):
        row = self.store._con.execute("SELECT run_uid FROM runs WHERE run = ?", [self.name]).fetchone()
        if row is None or row[0] != self.run_uid:
            raise StoreError(f"run {self.name!r} in {str(self.store.path)!r} was overwritten or deleted since it "
                             f"was opened: open the store again")

    def _load_objects(self):
        if self._objects is None:
            self._check_current()
            rows = self.store._con.execute(
                "SELECT name, node, kind, shape, columns, completeness FROM objects WHERE run = ? ORDER BY name",
                [self.name]).fetchall()
            self._objects = {r[0]: r[1:] for r in rows}
        return self._objects

    def objects(self):
        """Names of the objects saved in this run."""
        return sorted(self._load_objects())

    def sources(self):
        """Names of the sources the run's objects derive from."""
        return sorted(n.name for n in self._nodes() if n.is_source)

    def __contains__(self, name):
        return name in self._load_objects()

    def __getitem__(self, name):
        h = self._handles.get(name)
        if h is not None:
            return h
        objs = self._load_objects()
        if name in objs:
            node_id, kind, shape, columns, completeness = objs[name]
            h = ObjectHandle(self, name, node_id, kind, None if columns is None else json.loads(columns))
        else:
            src = next((n for n in self._nodes() if n.is_source and n.name == name), None)
            if src is None:
                raise StoreKeyError(f"run {self.name!r} has no object or source named {name!r}; objects: "
                                    f"{self.objects()}, sources: {self.sources()}")
            h = self.source(name)
        self._handles[name] = h
        return h

    def _result_rows(self):
        self._check_current()
        try:
            return self.store._con.execute(
                "SELECT name, kind, payload FROM results WHERE run = ? ORDER BY name", [self.name]).fetchall()
        except Exception as e:  # noqa: BLE001 - a store written before results were kept has no such table
            if "results" in str(e) and ("does not exist" in str(e) or "not found" in str(e).lower()):
                return []
            raise

    def results(self):
        """The results saved with the run: a list of ``{"name", "kind"}`` (see :mod:`whence.store.results`);
        referenced Parquet datasets have the kind ``parquet_dataset``."""
        return [{"name": n, "kind": k} for n, k, _ in self._result_rows()]

    def dataset(self, name):
        """The directory of the Parquet relation dataset ``name`` referenced by this run (``save(datasets=)``).

        Raises
        ------
        StoreKeyError
            When the run references no dataset of that name.
        FileNotFoundError
            When the directory is no longer there.
        """
        for n, k, text in self._result_rows():
            if n == name and k == "parquet_dataset":
                rec = json.loads(text)
                d = (Path(self.store.path).resolve().parent / rec["path"]) if rec["relative"] else Path(rec["path"])
                if not d.is_dir():
                    raise FileNotFoundError(f"dataset {name!r} of run {self.name!r}: {str(d)!r} is gone (moved or "
                                            f"deleted since the run was saved)")
                return d
        raise StoreKeyError(f"run {self.name!r} references no dataset named {name!r}; datasets: "
                            f"{[r['name'] for r in self.results() if r['kind'] == 'parquet_dataset']}")

    def result(self, name):
        """The JSON document of the result ``name`` (a dict; its ``"kind"`` added)."""
        for n, k, text in self._result_rows():
            if n == name:
                doc = json.loads(text)
                doc["kind"] = k
                return doc
        raise StoreKeyError(f"run {self.name!r} has no result named {name!r}; results: "
                            f"{[r['name'] for r in self.results()]}")

    def source(self, name):
        """A handle on a source of the run, to start forward queries from (``wh.forward(src, rows, X)``)."""
        nodes = self._nodes()
        for i, n in enumerate(nodes):
            if n.is_source and n.name == name:
                cols = self._source_columns().get(name)
                return ObjectHandle(self, name, i, "source", cols)
        raise StoreKeyError(f"run {self.name!r} has no source named {name!r}; sources: {self.sources()}")

    def _source_columns(self):
        rows = self.store._con.execute("SELECT name, columns FROM sources WHERE run = ?", [self.name]).fetchall()
        return {n: (None if c is None else json.loads(c)) for n, c in rows}

    def _nodes(self):
        if self._graph is None:
            self._graph = _build_graph(self)
        return self._graph

    def __repr__(self):
        return f"<whence.Run {self.name!r}: {len(self._load_objects())} objects, {self.n_nodes} nodes>"


def _build_graph(run):
    con = run.store._con
    store = run.store
    run._check_current()
    rows = con.execute(
        "SELECT node, op, shape, source, reason, internal, detail, map, lineage_nbytes FROM nodes "
        "WHERE run = ? ORDER BY node", [run.name]).fetchall()
    if len(rows) != run.n_nodes:
        raise StoreError(f"run {run.name!r} in {str(store.path)!r} is incomplete ({len(rows)} of {run.n_nodes} "
                         f"operations): the store is corrupted")
    edges = con.execute("SELECT child, parent, position, control FROM edges WHERE run = ? ORDER BY child, position",
                        [run.name]).fetchall()
    parents = [[] for _ in rows]
    control = [[] for _ in rows]
    for child, parent, pos, ctl in edges:
        parents[child].append(parent)
        if ctl:
            control[child].append(pos)
    uid = run.run_uid

    def load(aid):
        return store._load_array(run.name, uid, aid)

    nodes = []
    for (i, op, shape, source, reason, internal, detail, map_json, nbytes), ps, ctl in zip(rows, parents, control):
        if i != len(nodes) or any(p >= i for p in ps):
            raise StoreError(f"run {run.name!r} in {str(store.path)!r} has a malformed graph: the store is "
                             f"corrupted")
        pnodes = tuple(nodes[p] for p in ps)
        m = None
        link = None
        if map_json is not None:
            try:
                d = json.loads(map_json)
                if d["kind"] == "folded":  # folded into its readers' maps: history only
                    from ..compose import FOLDED as link
                elif d["kind"] == "link":  # a composed relation, over its own parents
                    if any(p >= i for p in d["parents"]):
                        raise ValueError("a composed relation refers to a later operation")
                    lp = tuple(nodes[p] for p in d["parents"])
                    link = (codec.decode_map(d["map"], load, lp), lp, frozenset(d["control"]))
                else:
                    m = codec.decode_map(d, load, pnodes)
            except (ValueError, KeyError, TypeError) as e:
                raise StoreError(f"operation {i} ({op}) of run {run.name!r} has an unreadable map: the store is "
                                 f"corrupted ({e})") from e
        n = Node(op, tuple(shape), m, pnodes, frozenset(ctl), reason, name=source, internal=bool(internal),
                 detail=detail or "")
        if link is not None:
            n.link = link
        n.cache = {"record": OpRecord(n.id, op, n.shape, tuple(p.id for p in pnodes),
                                      "FULL" if reason is None else "PARTIAL", reason, source, int(nbytes or 0),
                                      detail or "")}
        nodes.append(n)
    _register_sources(run, nodes)
    return nodes


def _register_sources(run, nodes):
    rows = run.store._con.execute(
        "SELECT node, name, columns, path, format, size, mtime_ns, sha256, n_rows, line_note, lines FROM sources "
        "WHERE run = ? AND kind = 'table'", [run.name]).fetchall()
    if not rows:
        return
    from ..tabular.sources import TableSource, register

    class StoredTableSource(TableSource):
        """A source table described by the store: the file is not read again (lines come from the store)."""

        __slots__ = ("sha256", "_lines_ref", "_load")

        def lines(self):
            if self._lines is None and self._lines_ref is not None:
                self._lines = codec.resolve(self._lines_ref, self._load)
            return self._lines

    uid = run.run_uid
    for node, name, columns, path, fmt, size, mtime, sha, n_rows, note, lines in rows:
        t = object.__new__(StoredTableSource)
        t.name, t.columns, t.n_rows, t.path, t.format = name, json.loads(columns), n_rows, path, fmt
        t.size, t.mtime_ns, t.sha256, t.line_note = size, mtime, sha, note
        t._lines, t._line_opts = None, None
        t._lines_ref = None if lines is None else json.loads(lines)
        t._load = lambda aid, s=run.store, r=run.name: s._load_array(r, uid, aid)
        register(nodes[node], t)


class ObjectHandle:
    """A saved object (or source) of a run: answers lineage queries like the live object did.

    Pass it to :func:`whence.backward`, :func:`whence.forward`, :func:`whence.trace_to_file`,
    :func:`whence.sources`, :func:`whence.ops`, :func:`whence.ancestors` and :func:`whence.lineage`, or use the
    methods of the same names.

    Attributes
    ----------
    name : str
    kind : str
        ``"array"``, ``"frame"``, ``"series"`` or ``"source"``.
    shape : tuple
    columns : list of str or None
        Column labels of a frame or of a source table.
    completeness : str
        ``"FULL"`` or ``"PARTIAL"``.
    """

    def __init__(self, run, name, node_index, kind, columns):
        self.run = run
        self.name = name
        self.kind = kind
        self.columns = columns
        self._index = node_index

    @property
    def _whence_node(self):
        return self.run._nodes()[self._index]

    @property
    def shape(self):
        return self._whence_node.shape

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def completeness(self):
        from ..query import _upstream
        return "PARTIAL" if any(n.partial for n in _upstream(self._whence_node)) else "FULL"

    def backward(self, index=None, control=False, *, rows=None, columns=None):
        from ..query import backward
        return backward(self, index, control, rows=rows, columns=columns)

    def sources(self):
        from ..query import sources
        return sources(self)

    def backward_sql(self, index):
        """:func:`whence.store.backward_sql`: the same backward query, run as one SQL statement in DuckDB."""
        from .sql import backward_sql
        return backward_sql(self, index)

    def ops(self):
        from ..query import ops
        return ops(self)

    def ancestors(self, depth=None):
        from ..query import ancestors
        return ancestors(self, depth)

    def trace_to_file(self, row, control=False):
        from ..tabular.trace import trace_to_file
        return trace_to_file(self, row, control)

    def lineage(self):
        from ..query import lineage
        return lineage(self)

    def __repr__(self):
        return (f"<whence.ObjectHandle {self.run.name}/{self.name}: {self.kind} of shape {self.shape}, "
                f"{self.completeness}>")
