"""Writing a run into a store: :func:`save`, under the write lock, as one atomic replacement of the file.

The run's rows are gathered first (:mod:`whence.store.run_rows`; an error there leaves the file alone).  Under
the store's write lock (:mod:`whence.store.locking`) the store is copied beside itself, the run is committed
into the copy in one transaction (its rows inserted through Arrow, its large index arrays written to Parquet
files, see :mod:`whence.store.arrays`), and the copy is flushed and renamed over the store: the commit point.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from ..errors import StoreError
from .arrays import array_rows
from .connection import Connection, catalog_alias, shared_instance
from .locking import fsync_path, remove_leftovers, remove_orphan_arrays, write_lock
from .run_rows import collect_rows
from .schema import (BLOCK_SIZE, COLUMN_TYPES, COLUMNS, DDL, FORMAT, INLINE_LIMIT, LOCK_TIMEOUT, RESULTS_DDL,
                     SCHEMA_VERSION, TABLES, check_meta, duckdb_module, first_line, open_error, pyarrow_module,
                     sql_string, whence_version)

__all__ = ["save"]


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
        payload = collect_rows(run, objs)
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
    duckdb = duckdb_module()
    array_dir = Path(str(path) + ".arrays")
    written_files = []
    with write_lock(path, lock_timeout):
        remove_leftovers(path)
        exists = path.exists() and path.stat().st_size > 0
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        con = shared_instance().cursor()
        alias = catalog_alias("w")
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
                    con.execute(f"ATTACH '{sql_string(tmp)}' AS {alias}")
                except duckdb.Error as e:
                    raise open_error(path, e) from e
                attached = True
                con.execute(f"USE {alias}")
                check_meta(Connection(con, path, owned=False), path)
            else:
                con.execute(f"ATTACH '{sql_string(tmp)}' AS {alias} (BLOCK_SIZE {BLOCK_SIZE})")
                attached = True
                con.execute(f"USE {alias}")
            target = con
            target.execute("BEGIN TRANSACTION")
            try:
                if not exists:
                    target.execute(DDL)
                    target.executemany("INSERT INTO whence_meta VALUES (?, ?)", [
                        ("format", FORMAT), ("schema_version", str(SCHEMA_VERSION)),
                        ("created_by", f"whence {whence_version()}")])
                target.execute(RESULTS_DDL)
                if target.execute("SELECT count(*) FROM runs WHERE run = ?", [run]).fetchone()[0]:
                    if not overwrite:
                        raise StoreError(f"run {run!r} is already in {str(path)!r}: choose another name, or pass "
                                         f"overwrite=True to replace it")
                    for t in TABLES:
                        target.execute(f"DELETE FROM {t} WHERE run = ?", [run])
                _write(target, payload, array_dir, inline_limit, written_files)
                target.execute("COMMIT")
                kept = {r[0] for r in target.execute(
                    "SELECT path FROM arrays WHERE path IS NOT NULL").fetchall()}
            except duckdb.Error as e:
                raise StoreError(f"cannot write run {run!r} into {str(path)!r}: {first_line(e)}") from e
            con.execute("USE memory")
            con.execute(f"DETACH {alias}")  # checkpoints and closes the file
            attached = False
            con.close()
            fsync_path(tmp)
            try:
                os.remove(str(path) + ".wal")  # its changes are in the copy; it must not be replayed into it
            except FileNotFoundError:
                pass
            os.replace(tmp, path)  # the commit point: readers opening the file from now on see the new run
            fsync_path(path.parent)
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
        remove_orphan_arrays(array_dir, kept)
        size = path.stat().st_size
    return {"run": run, "nodes": len(payload["nodes"]), "arrays": payload["n_arrays"],
            "bytes": size, "seconds": time.perf_counter() - t0}


def _write(con, p, array_dir, inline_limit, written_files):
    """Insert the rows of run ``p`` (from :func:`~whence.store.run_rows.collect_rows`), within the caller's
    transaction; Parquet array files written are appended to ``written_files``."""
    run = p["run"]
    run_uid = uuid.uuid4().hex
    arows = array_rows(run, run_uid, p["arrays"], array_dir, inline_limit, written_files)
    _insert(con, "nodes", p["nodes"])
    _insert(con, "edges", p["edges"])
    _insert(con, "rectangles", p["rects"])
    _insert(con, "sources", p["sources"])
    _insert(con, "objects", p["objects"])
    _insert(con, "arrays", arows)
    _insert(con, "results", p.get("results", []))
    con.execute("INSERT INTO runs VALUES (?, ?, current_timestamp, ?, ?, ?, ?, ?)",
                [run, run_uid, whence_version(), len(p["nodes"]), len(p["objects"]), len(arows), len(p["sources"])])


def _insert(con, table, rows):
    """Bulk insert through Arrow (one statement, whatever the number of rows)."""
    if not rows:
        return
    pa = pyarrow_module()
    types = {"string": pa.string(), "int64": pa.int64(), "int32": pa.int32(), "bool": pa.bool_(),
             "binary": pa.binary(), "list": pa.list_(pa.int64())}
    names = COLUMNS[table]
    cols = list(zip(*rows))
    tab = pa.table({n: pa.array(list(c), type=types[t]) for n, c, t in zip(names, cols, COLUMN_TYPES[table])})
    con.register("_whence_rows", tab)
    try:
        con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT * FROM _whence_rows")
    finally:
        con.unregister("_whence_rows")

