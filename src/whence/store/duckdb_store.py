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

Modules
-------
This module is the store's front: it re-exports what the others define.
:mod:`~whence.store.writer` (:func:`save`), :mod:`~whence.store.run_rows` (a run as rows),
:mod:`~whence.store.arrays` (index arrays), :mod:`~whence.store.locking` (the write lock),
:mod:`~whence.store.reader` (:func:`open`, :class:`Store`), :mod:`~whence.store.runs` (:class:`Run`,
:class:`ObjectHandle`), :mod:`~whence.store.loader` (a run's graph read back),
:mod:`~whence.store.connection` (read snapshots), :mod:`~whence.store.schema` (the tables and the format's
version), :mod:`~whence.store.codec` (maps as records).
"""

from __future__ import annotations

from .connection import file_identity
from .reader import Store, open
from .runs import ObjectHandle, Run
from .schema import FORMAT, INLINE_LIMIT, LOCK_TIMEOUT, SCHEMA_VERSION
from .writer import save

__all__ = ["save", "open", "Store", "Run", "ObjectHandle", "SCHEMA_VERSION", "FORMAT", "INLINE_LIMIT", "LOCK_TIMEOUT",
           "file_identity"]
