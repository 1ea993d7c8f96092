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
    is absolute; ``lo_ax = [-2]``: over flat indices, the output cell ``f`` copying the parent cell
    ``lo_off[1] + lo_mul[1] * f``, as for a reshape).  Lists are 1-based in SQL.
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

Concurrency guarantees
----------------------
- **Saves take turns and none is lost.**  A save takes the store's write lock, an exclusive ``flock`` on
  ``<path>.lock`` (through :mod:`filelock`), waiting at most ``lock_timeout`` seconds (default
  ``LOCK_TIMEOUT``, 60) before it raises :class:`~whence.errors.StoreLockedError` and leaves the file alone.
  Creating a store happens under the same lock, so concurrent savers of distinct runs into a new path all
  land in one file.  A save that returns has its run in the file.
- **A save is atomic.**  Under the lock, the store is copied beside itself (``.<name>.<pid>.<id>.tmp``), the run
  is committed into the copy (one transaction; Parquet array files are written to ``<path>.arrays/`` under
  names no other run uses), the copy is flushed to disk and renamed over the store.  A process killed at any
  point leaves the store as it was or with the whole new run; the next save removes the temporary files and
  the Parquet files no run references (those of a killed save, those of an overwritten run).
- **Readers never wait and never block.**  Reading takes no lock: every read statement reads one file, the
  newest at the time (DuckDB keeps the file it attached open, so a file renamed over it does not change what
  it reads), and a run's graph is read from one file.  A handle on a run overwritten since it was read raises
  :class:`~whence.errors.StoreStaleError` when it needs more.  The explorer (:mod:`whence.web`) keeps what it
  read until the file's identity (device, inode, size, modification time) changes.
- **Errors say what happened.**  Every failure to read is a :class:`~whence.errors.StoreError`:
  :class:`~whence.errors.NotAStoreError`, :class:`~whence.errors.StoreCorruptError` (truncated or damaged
  database or array file: DuckDB's block checksums and a CRC-32 per index array catch the damage),
  :class:`~whence.errors.StoreVersionError`, :class:`~whence.errors.StoreKeyError`,
  :class:`~whence.errors.StoreArrayMissingError`, :class:`~whence.errors.StoreLockedError` (the file held
  locked by another program), :class:`~whence.errors.StoreStaleError`.

The lock is advisory and local: processes on one machine (or on a file system whose ``flock`` works across
machines) take turns; a store written by a program that does not take the lock has no such guarantee.
"""

from __future__ import annotations

import builtins
import glob
import hashlib
import io
import itertools
import json
import os
import shutil
import threading
import time
import uuid
import warnings
import weakref
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import (NotAStoreError, NotTrackedError, PartialLineageWarning, StoreArrayMissingError,
                      StoreCorruptError, StoreError, StoreKeyError, StoreLockedError, StoreStaleError,
                      StoreVersionError)
from ..graph import Node, OpRecord
from . import codec

__all__ = ["save", "open", "Store", "Run", "ObjectHandle", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
FORMAT = "whence-lineage-store"
INLINE_LIMIT = 64 << 20
LOCK_TIMEOUT = 60.0  # seconds a save waits for another process's save to finish
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



def _pyarrow(name="pyarrow"):
    from .._extras import import_module
    return import_module(name, "the lineage store", "store")


def _duckdb():
    from .._extras import import_module
    return import_module("duckdb", "the lineage store", "store")


def _key(path):
    return str(Path(path).resolve())


# ================================================================================================== save
def save(path, run, objects=None, *, results=None, datasets=None, overwrite=False, inline_limit=INLINE_LIMIT,
         progress=True, lock_timeout=LOCK_TIMEOUT, **named):
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
    lock_timeout : float or None, default 60
        Seconds to wait for the store's write lock while another process saves to it (saves take turns);
        None waits as long as it takes.
    **named
        The objects to save: tracked arrays, tracked frames and series, and plain arrays or sparse
        matrices handed out by tracked frames and scikit-learn.

    Returns
    -------
    dict
        What was written: ``run``, ``nodes``, ``arrays``, ``bytes`` (the file's size), ``seconds``.

    Raises
    ------
    StoreError
        The run is already in the store (and not ``overwrite``), or the file cannot be written.
    StoreLockedError
        Another process held the write lock for longer than ``lock_timeout``.
    NotAStoreError, StoreCorruptError, StoreVersionError
        The file is not a whence store, is damaged, or has a newer schema: it is left as it was.

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
    objs = _checked_save_arguments(run, objects, named, results, lock_timeout)
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
        return _save_payload(path, run, payload, overwrite, inline_limit, t0, lock_timeout)
    finally:
        bar.close()


def _checked_save_arguments(run, objects, named, results, lock_timeout):
    """The objects of :func:`save` as one ``{name: object}``, after checking the arguments (a clear error, before
    anything is written)."""
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
    if lock_timeout is not None and (isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float))
                                     or not lock_timeout >= 0):
        raise ValueError(f"lock_timeout must be a number of seconds >= 0, or None to wait as long as it takes; "
                         f"got {lock_timeout!r}")
    return objs


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


def _save_payload(path, run, payload, overwrite, inline_limit, t0, lock_timeout):
    duckdb = _duckdb()
    array_dir = Path(str(path) + ".arrays")
    written_files = []
    with _write_lock(path, lock_timeout):
        _remove_leftovers(path)
        exists = path.exists() and path.stat().st_size > 0
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        con = _instance().cursor()
        alias = _alias("w")
        attached = False
        try:
            if exists:
                # copy on write: readers keep the file they opened; the new one replaces it when complete
                wal = Path(str(path) + ".wal")
                try:
                    shutil.copyfile(path, tmp)
                    if wal.exists():  # left by a writer that wrote the file in place (not whence) and stopped
                        shutil.copyfile(wal, str(tmp) + ".wal")  # replayed into the copy when attached
                except OSError as e:
                    raise StoreError(f"cannot copy {str(path)!r} to write beside it: {e}") from e
                try:
                    con.execute(f"ATTACH '{_sql_str(tmp)}' AS {alias}")
                except duckdb.Error as e:
                    raise _open_error(path, e) from e
                attached = True
                con.execute(f"USE {alias}")
                _check_meta(_Connection(con, path, owned=False), path)
            else:
                con.execute(f"ATTACH '{_sql_str(tmp)}' AS {alias} (BLOCK_SIZE {_BLOCK_SIZE})")
                attached = True
                con.execute(f"USE {alias}")
            target = con
            target.execute("BEGIN TRANSACTION")
            try:
                if not exists:
                    target.execute(_DDL)
                    target.executemany("INSERT INTO whence_meta VALUES (?, ?)", [
                        ("format", FORMAT), ("schema_version", str(SCHEMA_VERSION)),
                        ("created_by", f"whence {_version()}")])
                target.execute(_RESULTS_DDL)
                if target.execute("SELECT count(*) FROM runs WHERE run = ?", [run]).fetchone()[0]:
                    if not overwrite:
                        raise StoreError(f"run {run!r} is already in {str(path)!r}: choose another name, or pass "
                                         f"overwrite=True to replace it")
                    for t in _TABLES:
                        target.execute(f"DELETE FROM {t} WHERE run = ?", [run])
                _write(target, payload, array_dir, inline_limit, written_files)
                target.execute("COMMIT")
                kept = {r[0] for r in target.execute(
                    "SELECT path FROM arrays WHERE path IS NOT NULL").fetchall()}
            except duckdb.Error as e:
                raise StoreError(f"cannot write run {run!r} into {str(path)!r}: {_first_line(e)}") from e
            con.execute("USE memory")
            con.execute(f"DETACH {alias}")  # checkpoints and closes the file
            attached = False
            con.close()
            _fsync(tmp)
            try:
                os.remove(str(path) + ".wal")  # its changes are in the copy; it must not be replayed into it
            except FileNotFoundError:
                pass
            os.replace(tmp, path)  # the commit point: readers opening the file from now on see the new run
            _fsync(path.parent)
            written_files = []
        except BaseException:
            for f in written_files:
                try:
                    os.remove(f)
                except OSError:
                    pass
            raise
        finally:
            if attached:
                try:
                    con.execute("USE memory")
                    con.execute(f"DETACH {alias}")
                except Exception:  # noqa: BLE001
                    pass
            try:
                con.close()
            except Exception:  # noqa: BLE001
                pass
            for f in (tmp, Path(str(tmp) + ".wal")):
                try:
                    os.remove(f)
                except OSError:
                    pass
        _remove_orphan_arrays(array_dir, kept)
        size = path.stat().st_size
    return {"run": run, "nodes": len(payload["nodes"]), "arrays": payload["n_arrays"],
            "bytes": size, "seconds": time.perf_counter() - t0}


def _lock_path(path):
    return Path(str(path) + ".lock")


@contextmanager
def _write_lock(path, timeout):
    """The store's write lock: an exclusive lock (``flock``) on ``<path>.lock``, held while saving."""
    import filelock
    lock = filelock.FileLock(str(_lock_path(path)), timeout=-1 if timeout is None else float(timeout))
    try:
        lock.acquire()
    except filelock.Timeout:
        raise StoreLockedError(f"{str(path)!r} is being saved to by another process: its write lock "
                               f"({_lock_path(path).name}) was not free within {timeout} s; try again, or "
                               f"pass a longer lock_timeout") from None
    except OSError as e:
        raise StoreError(f"cannot create the write lock {str(_lock_path(path))!r} of {str(path)!r}: {e}") from e
    try:
        yield
    finally:
        lock.release()


def _remove_leftovers(path):
    """Remove what a killed save left beside the store (its temporary file and log); called under the lock,
    when no other save can be running."""
    for f in path.parent.glob(f".{glob.escape(path.name)}.*.tmp*"):
        try:
            os.remove(f)
        except OSError:
            pass


def _remove_orphan_arrays(array_dir, kept):
    """Remove the Parquet array files that no run of the store references (left by a killed save, or by a run
    that was overwritten); called under the lock."""
    if not array_dir.is_dir():
        return
    for f in array_dir.glob("*.parquet"):
        if f.name not in kept:
            try:
                os.remove(f)
            except OSError:
                pass


def _fsync(p):
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _first_line(e):
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _sql_str(p):
    return str(p).replace("'", "''")


def _version():
    from .. import __version__
    return __version__


def _object_node(x):
    from ..query import node_of as _node_of
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
    from ..query import _forced, prepare_node as _prepare, upstream_nodes as _upstream
    # lazy (Dask) objects: shapes unknown at capture are resolved first, as before any query
    roots = {name: _prepare(_object_node(x)) for name, x in objs.items()}
    for node in roots.values():  # the relation of each object composed as a query composes it (its rectangles)
        _forced(node)
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
                # the relation before a query composed it over live steps (forward walks from a start that
                # the composed relation passes over follow it: see whence.compose.forward_lineage)
                before = (n.cache or {}).get("uncompacted")
                if before is not None and before[0] is not None:
                    bm, bparents, bcontrol = before
                    try:
                        brec = codec.encode_map(bm, w)
                    except codec.Unstorable as e:
                        from ..maps import OpaqueMap
                        brec = codec.encode_map(OpaqueMap(n.shape, [p.shape for p in bparents]), w)
                        partial = (partial + "; " if partial else "") + f"{e} cannot be stored: saved as all-to-all"
                        warned.append(f"{n.op}: {e}")
                    rec["before"] = {"map": brec, "parents": [num[p.id] for p in bparents],
                                     "control": sorted(int(c) for c in bcontrol)}
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
    pa = _pyarrow()
    run = p["run"]
    run_uid = uuid.uuid4().hex
    arows = []
    for aid, a in p["arrays"]:
        a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        raw = a.tobytes()
        crc = zlib.crc32(raw)
        if len(raw) > inline_limit:
            pq = _pyarrow('pyarrow.parquet')
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
    pa = _pyarrow()
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
def _is_lock_message(low):
    # DuckDB's own words for a file another process holds open for writing (a corruption message may contain
    # "block", so the bare word "lock" is not enough)
    return "could not set lock on file" in low or "conflicting lock" in low


def _open_error(path, e):
    msg = _first_line(e)
    low = msg.lower()
    if _is_lock_message(low):
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


def _check_meta(con, path):
    # the table read directly: information_schema lists the tables of every database attached to the instance
    # (the other stores of the process), and under load that took most of an open's time
    duckdb = _duckdb()
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
            f"this whence {_version()} reads schema {SCHEMA_VERSION} and older: upgrade whence to read it")
    if version < SCHEMA_VERSION:
        # no older schema has been released; a migration would go here
        raise StoreVersionError(f"{str(path)!r} has store schema {version}, which this whence cannot migrate")
    return version


class _Result:
    """A DuckDB result whose fetches raise StoreErrors."""

    __slots__ = ("_res", "_con")

    def __init__(self, res, con):
        self._res, self._con = res, con

    def fetchone(self):
        return self._con._call(self._res.fetchone)

    def fetchall(self):
        return self._con._call(self._res.fetchall)

    def df(self):
        return self._con._call(self._res.df)


class _Connection:
    """A read connection to one snapshot of a store: every DuckDB failure becomes a StoreError that says what
    happened (a damaged file, a lock held by another program)."""

    def __init__(self, raw, path, alias=None, owned=True):
        self.raw = raw
        self.path = path
        self.alias = alias
        # detached and closed when closed, or when nobody holds it any more (a store that moved on to a
        # newer file drops its old connection; a graph being read from it keeps it until done)
        self._finalizer = weakref.finalize(self, _release, raw, alias) if owned else None

    def _call(self, f, *args):
        duckdb = _duckdb()
        try:
            return f(*args)
        except duckdb.Error as e:
            msg = _first_line(e)
            if _is_lock_message(msg.lower()):
                raise StoreLockedError(f"{str(self.path)!r} is held locked by another program ({msg})") from e
            if isinstance(e, (duckdb.CatalogException, duckdb.BinderException)):
                raise StoreCorruptError(f"{str(self.path)!r} lacks a table or column of the whence store "
                                        f"format ({msg}): the store is corrupted") from e
            raise StoreCorruptError(f"{str(self.path)!r} cannot be read: the store is corrupted ({msg})") from e

    def execute(self, query, params=None):
        return _Result(self._call(self.raw.execute, query, params or []), self)

    def register(self, name, table):
        return self._call(self.raw.register, name, table)

    def unregister(self, name):
        return self._call(self.raw.unregister, name)

    def close(self):
        if self._finalizer is not None:
            self._finalizer()


def _release(raw, alias):
    try:
        if alias is not None:
            raw.execute("USE memory")
            raw.execute(f"DETACH {alias}")
    except Exception:  # noqa: BLE001 - the instance may be gone (interpreter exit)
        pass
    finally:
        try:
            raw.close()
        except Exception:  # noqa: BLE001
            pass


def _identity(path):
    """What changes when a store file is replaced or written: (device, inode, size, mtime); None if missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


_shared = {"pid": None, "db": None}
_shared_lock = threading.Lock()
_aliases = itertools.count()


def _instance():
    """The process's in-memory DuckDB database, to which store files are attached.

    Files are attached, not opened by path: DuckDB keeps one database per path within a process, so a file
    replaced by a save would go on being read as it was.  One instance for all (a new one costs ~20 ms);
    each store gets its own connection (a cursor) and its own catalog name.
    """
    duckdb = _duckdb()
    if tuple(int(v) for v in duckdb.__version__.split(".")[:2]) < (1, 4):
        # DuckDB before 1.4: a USE on one cursor of an instance can change what another cursor's
        # current_database() is (seen with 1.2): one instance per store there, at ~20 ms an open
        return duckdb.connect()
    with _shared_lock:
        if _shared["db"] is None or _shared["pid"] != os.getpid():  # not across a fork
            _shared["db"], _shared["pid"] = _duckdb().connect(), os.getpid()
        return _shared["db"]


def _alias(prefix):
    return f"whence_{prefix}{next(_aliases)}"


def _connect(path):
    """A read-only connection to the store file as it is now (a snapshot: a save that replaces the file
    later does not change what this connection reads; DuckDB keeps the file it attached open)."""
    duckdb = _duckdb()
    raw = _instance().cursor()
    alias = _alias("r")
    try:
        raw.execute(f"ATTACH '{_sql_str(path)}' AS {alias} (READ_ONLY)")
        raw.execute(f"USE {alias}")
    except duckdb.Error as e:
        raw.close()
        raise _open_error(path, e) from e
    except BaseException:
        raw.close()
        raise
    return _Connection(raw, path, alias)


def open(path):  # noqa: A001 - whence.open mirrors the builtin on purpose
    """Open a lineage store for reading.

    Reading never waits for a writer and never blocks one: a save writes a new file beside the store and
    renames it into place, and every read statement reads one whole file, the newest at the time (a graph is
    read from one file).  A run of which a handle is held and that was overwritten since raises
    :class:`~whence.errors.StoreStaleError` when the handle needs to read more.

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
    NotAStoreError
        The file is not a whence store.
    StoreCorruptError
        It is truncated or corrupted.
    StoreVersionError
        It was written by a whence whose store schema this one cannot read.
    StoreLockedError
        Another program holds the file locked for writing.
    """
    return Store(path)


class Store:
    """A lineage store opened for reading (see :func:`whence.open`).

    ``store.runs()`` lists the runs; ``store["etl"]`` is a :class:`Run`; ``store.sql(query)`` runs SQL over
    the store's tables (documented in :mod:`whence.store.duckdb_store`) and returns a DataFrame.  Use it as
    a context manager, or call :meth:`close`, to release the file.

    ``follow=False`` keeps reading the file as it was when opened (a snapshot) even after a save replaced it,
    and reads the list of runs once; the explorer opens its stores so, and opens a new one when the file
    changes.  Temporary views made by :meth:`dataset_views` live on the connection of the moment: make them
    again after a save.
    """

    def __init__(self, path, *, follow=True):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no lineage store at {str(self.path)!r}")
        if self.path.is_dir():
            raise NotAStoreError(f"{str(self.path)!r} is a directory, not a store file")
        self._key = _key(self.path)
        self._conn = None
        self._ident = None
        self._follow = follow
        self._run_rows = None
        self._closed = False
        self._runs = {}
        self.schema_version = _check_meta(self._con, self.path)

    # --- connection -----------------------------------------------------------------------------------------
    @property
    def _con(self):
        """The connection to the snapshot being read (opened on first use)."""
        if self._closed:
            raise StoreError(f"the store {str(self.path)!r} was closed; open it again with whence.open")
        if self._follow and self._conn is not None:
            self._refresh()
        if self._conn is None:
            ident = _identity(self.path)
            if ident is None:
                raise StoreError(f"the store {str(self.path)!r} is gone (moved or deleted since it was opened)")
            self._conn = _connect(self.path)
            self._ident = ident
        return self._conn

    def _refresh(self):
        """Move to the newest file if a save replaced it since this snapshot was opened."""
        if self._conn is not None and not self._closed:
            ident = _identity(self.path)
            if ident is not None and ident != self._ident:
                self._conn = None  # released when whoever still reads from it is done (see _Connection)

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
        con = self._con
        if self._follow:
            row = con.execute("SELECT run_uid, n_nodes, n_objects, n_arrays FROM runs WHERE run = ?",
                              [run]).fetchone()
        else:  # one snapshot, never moved: its runs are read once
            row = self._all_runs().get(run)
        if row is None:
            raise StoreKeyError(f"no run named {run!r} in {str(self.path)!r}; runs: {self.runs()}")
        r = self._runs.get(run)
        if r is None or r.run_uid != row[0]:  # first access, or the run was overwritten since
            r = self._runs[run] = Run(self, run, *row)
        return r

    def _all_runs(self):
        """``{run: (run_uid, n_nodes, n_objects, n_arrays)}``, read once (for a store that does not follow)."""
        if self._run_rows is None or self._follow:
            self._run_rows = {r[0]: tuple(r[1:]) for r in self._con.execute(
                "SELECT run, run_uid, n_nodes, n_objects, n_arrays FROM runs").fetchall()}
        return self._run_rows

    def sql(self, query, params=None):
        """Run a SQL query over the store (read-only) and return a pandas DataFrame.

        Examples
        --------
        The relation of a saved object is stored composed through its upstream steps (here ``a.T + 1`` is one
        view of ``a``), each operation keeping its place in the history:

        >>> import os, tempfile, numpy as np, whence as wh
        >>> wh.reset()
        >>> a = wh.track(np.ones((4, 5)), name="a")
        >>> path = os.path.join(tempfile.mkdtemp(), "s.duckdb")
        >>> _ = wh.save(path, "r", y=a.T + 1)
        >>> with wh.open(path) as store:
        ...     store.sql("SELECT op, coalesce(map_kind, '-') AS map FROM nodes ORDER BY node").values.tolist()
        [['source', '-'], ['transpose', 'view'], ['add', 'view']]
        """
        con = self._con
        try:
            return con.raw.execute(query, params or []).df()
        except _duckdb().Error as e:
            raise StoreError(f"SQL error: {_first_line(e)}") from e

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
            self._con.raw.execute(f"CREATE OR REPLACE TEMP VIEW {prefix}{t} AS "
                                  f"SELECT * FROM read_parquet('{src}'{hive})")
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
            if self._con.execute("SELECT count(*) FROM runs WHERE run_uid = ?", [run_uid]).fetchone()[0]:
                raise StoreCorruptError(f"run {run!r} in {str(self.path)!r} is missing its index array {aid}: the "
                                        f"store is corrupted")
            raise StoreStaleError(f"run {run!r} in {str(self.path)!r} was overwritten or deleted since it was "
                                  f"opened: open the store again")
        dtype, shape, nbytes, codec_name, crc, data, rel = row
        try:
            dt = np.dtype(dtype)
            if codec_name == "parquet":
                pq = _pyarrow('pyarrow.parquet')
                f = Path(str(self.path) + ".arrays") / rel
                if not f.is_file():
                    raise StoreArrayMissingError(
                        f"array file {str(f)!r} of run {run!r} is missing (it is kept beside the store; copy the "
                        f".arrays folder with the store file)")
                a = pq.read_table(f).column("v").to_numpy().astype(dt, copy=False)
            elif codec_name == "zstd":
                pa = _pyarrow()
                raw = pa.decompress(data, decompressed_size=nbytes, codec="zstd", asbytes=True) if nbytes else b""
                a = np.frombuffer(raw, dt)
            else:
                raise ValueError(f"unknown codec {codec_name!r}")
            ok = zlib.crc32(np.ascontiguousarray(a).tobytes()) == crc
            if ok:
                a = a.reshape(shape)
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever a damaged array makes pyarrow or numpy raise
            raise StoreCorruptError(f"array {aid} of run {run!r} in {str(self.path)!r} cannot be read: the store "
                                    f"is corrupted ({type(e).__name__}: {e})") from e
        if not ok:
            raise StoreCorruptError(f"array {aid} of run {run!r} in {str(self.path)!r} fails its checksum: the "
                                    f"store is corrupted")
        return a


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
        self._source_cols = None
        self._handles = {}

    def _check_current(self):
        """The store's connection, checked to hold this very run (not one saved over it since)."""
        con = self.store._con
        if not self.store._follow:  # a fixed snapshot: the run was read from it (or carried over unchanged)
            return con
        row = con.execute("SELECT run_uid FROM runs WHERE run = ?", [self.name]).fetchone()
        if row is None or row[0] != self.run_uid:
            raise StoreStaleError(f"run {self.name!r} in {str(self.store.path)!r} was overwritten or deleted "
                                  f"since it was opened: open the store again")
        return con

    def _load_objects(self):
        if self._objects is None:
            con = self._check_current()
            rows = con.execute(
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
        con = self._check_current()
        has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
                          "AND table_name = 'results'").fetchone()[0]
        if not has:  # a store written before results were kept has no such table
            return []
        return con.execute("SELECT name, kind, payload FROM results WHERE run = ? ORDER BY name",
                           [self.name]).fetchall()

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
        if self._source_cols is not None:
            return self._source_cols
        rows = self._check_current().execute("SELECT name, columns FROM sources WHERE run = ?",
                                             [self.name]).fetchall()
        try:
            self._source_cols = {n: (None if c is None else json.loads(c)) for n, c in rows}
            return self._source_cols
        except (TypeError, ValueError) as e:
            raise StoreCorruptError(f"run {self.name!r} in {str(self.store.path)!r} has unreadable source "
                                    f"columns: the store is corrupted") from e

    def _nodes(self):
        if self._graph is None:
            try:
                self._graph = _build_graph(self)
            except StoreError:
                raise
            except (ValueError, KeyError, TypeError, IndexError, OverflowError, AttributeError) as e:
                raise StoreCorruptError(f"run {self.name!r} in {str(self.store.path)!r} has a malformed graph: the "
                                        f"store is corrupted ({type(e).__name__}: {e})") from e
        return self._graph

    def __repr__(self):
        return f"<whence.Run {self.name!r}: {len(self._load_objects())} objects, {self.n_nodes} nodes>"


def _build_graph(run):
    store = run.store
    con = run._check_current()  # one snapshot for the whole graph
    rows = con.execute(
        "SELECT node, op, shape, source, reason, internal, detail, map, lineage_nbytes FROM nodes "
        "WHERE run = ? ORDER BY node", [run.name]).fetchall()
    if len(rows) != run.n_nodes:
        raise StoreCorruptError(f"run {run.name!r} in {str(store.path)!r} is incomplete ({len(rows)} of {run.n_nodes} "
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
        return run.store._load_array(run.name, uid, aid)  # the run's store of the moment (see whence.web)

    nodes = []
    for (i, op, shape, source, reason, internal, detail, map_json, nbytes), ps, ctl in zip(rows, parents, control):
        if i != len(nodes) or any(p >= i for p in ps):
            raise StoreCorruptError(f"run {run.name!r} in {str(store.path)!r} has a malformed graph: the store is "
                             f"corrupted")
        pnodes = tuple(nodes[p] for p in ps)
        m = None
        link = before = None
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
                    b = d.get("before")
                    if b is not None:  # the relation before composition over live steps
                        if any(p >= i for p in b["parents"]):
                            raise ValueError("a relation refers to a later operation")
                        bp = tuple(nodes[p] for p in b["parents"])
                        before = (codec.decode_map(b["map"], load, bp), bp, frozenset(b["control"]))
                else:
                    m = codec.decode_map(d, load, pnodes)
            except (ValueError, KeyError, TypeError) as e:
                raise StoreCorruptError(f"operation {i} ({op}) of run {run.name!r} has an unreadable map: the store is "
                                 f"corrupted ({e})") from e
        n = Node(op, tuple(shape), m, pnodes, frozenset(ctl), reason, name=source, internal=bool(internal),
                 detail=detail or "")
        if link is not None:
            n.link = link
        n.cache = {"record": OpRecord(n.id, op, n.shape, tuple(p.id for p in pnodes),
                                      "FULL" if reason is None else "PARTIAL", reason, source, int(nbytes or 0),
                                      detail or "")}
        if before is not None:
            n.cache["uncompacted"] = before
        nodes.append(n)
    _register_sources(run, nodes, con)
    return nodes


def _register_sources(run, nodes, con):
    rows = con.execute(
        "SELECT node, name, columns, path, format, size, mtime_ns, sha256, n_rows, line_note, lines FROM sources "
        "WHERE run = ? AND kind = 'table'", [run.name]).fetchall()
    if not rows:
        return
    from ..tabular.source_tables import TableSource, register

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
        t._load = lambda aid, run=run: run.store._load_array(run.name, uid, aid)
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
        from ..query import upstream_nodes as _upstream
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


#: public name of the store file's identity, ``(device, inode, size, mtime)`` or None (the explorer watches it)
file_identity = _identity
