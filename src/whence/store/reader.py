"""Opening a store for reading: :func:`open` and :class:`Store`, the runs in one file and SQL over its tables.

Reading takes no lock and never waits for a writer: every read statement reads one snapshot of the file (see
:mod:`whence.store.connection`), the newest at the time for a store that follows its file.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import NotAStoreError, StoreError, StoreKeyError
from .arrays import read_array
from .connection import connect_snapshot, file_identity
from .runs import Run
from .schema import check_meta, duckdb_module, first_line, sql_string

__all__ = ["open", "Store"]


def _key(path):
    return str(Path(path).resolve())


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
        self.schema_version = check_meta(self.connection, self.path)

    # --- connection -----------------------------------------------------------------------------------------
    @property
    def connection(self):
        """The connection to the snapshot being read (opened on first use; a store that follows its file moves
        to the newest file first).  Its statements raise StoreErrors."""
        if self._closed:
            raise StoreError(f"the store {str(self.path)!r} was closed; open it again with whence.open")
        if self._follow and self._conn is not None:
            self._refresh()
        if self._conn is None:
            ident = file_identity(self.path)
            if ident is None:
                raise StoreError(f"the store {str(self.path)!r} is gone (moved or deleted since it was opened)")
            self._conn = connect_snapshot(self.path)
            self._ident = ident
        return self._conn

    _con = connection  # the former private spelling

    @property
    def follows(self):
        """Whether the store moves to the newest file when a save replaces it (``follow=True``), or keeps reading
        the snapshot it opened."""
        return self._follow

    def _refresh(self):
        """Move to the newest file if a save replaced it since this snapshot was opened."""
        if self._conn is not None and not self._closed:
            ident = file_identity(self.path)
            if ident is not None and ident != self._ident:
                self._conn = None  # released when whoever still reads from it is done (see Connection)

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
        return [r[0] for r in self.connection.execute("SELECT run FROM runs ORDER BY created, run").fetchall()]

    def __contains__(self, run):
        return run in self.runs()

    def __getitem__(self, run):
        con = self.connection
        if self._follow:
            row = con.execute("SELECT run_uid, n_nodes, n_objects, n_arrays FROM runs WHERE run = ?",
                              [run]).fetchone()
        else:  # one snapshot, never moved: its runs are read once
            row = self.all_runs().get(run)
        if row is None:
            raise StoreKeyError(f"no run named {run!r} in {str(self.path)!r}; runs: {self.runs()}")
        r = self._runs.get(run)
        if r is None or r.run_uid != row[0]:  # first access, or the run was overwritten since
            r = self._runs[run] = Run(self, run, *row)
        return r

    def all_runs(self):
        """``{run: (run_uid, n_nodes, n_objects, n_arrays)}`` of every run in the store (read once by a store that
        does not follow its file)."""
        if self._run_rows is None or self._follow:
            self._run_rows = {r[0]: tuple(r[1:]) for r in self.connection.execute(
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
        con = self.connection
        try:
            return con.raw.execute(query, params or []).df()
        except duckdb_module().Error as e:
            raise StoreError(f"SQL error: {first_line(e)}") from e

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
        rec = json.loads(next(t for n, k, t in self[run].result_rows() if n == name))
        prefix = f"{name}_" if prefix is None else prefix
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
            raise ValueError(f"view prefix {prefix!r} is not a plain SQL identifier (letters, digits, _)")
        made = []
        for t, pattern in rec["tables"].items():
            hive = ", hive_partitioning = true" if "*" in pattern else ""
            src = sql_string(d / pattern)
            self.connection.raw.execute(f"CREATE OR REPLACE TEMP VIEW {prefix}{t} AS "
                                  f"SELECT * FROM read_parquet('{src}'{hive})")
            made.append(f"{prefix}{t}")
        return made

    def __repr__(self):
        state = "closed" if self._closed else f"{len(self.runs())} runs"
        return f"<whence.Store {str(self.path)!r}, {state}>"

    # --- arrays ---------------------------------------------------------------------------------------------
    def load_array(self, run, run_uid, aid):
        """Index array ``aid`` of the run ``run`` (saved as ``run_uid``), read from the snapshot of the moment and
        checked (see :func:`whence.store.arrays.read_array`)."""
        return read_array(self.connection, self.path, run, run_uid, aid)

    def carry_runs_from(self, old, run_uids):
        """Take over the runs read from ``old`` (another store on the same path) that this file holds unchanged.

        A run whose id in ``run_uids`` (``{run: run_uid}`` of this file) is the one ``old`` read keeps its graph,
        its arrays and its handles, and reads from this store from now on.
        """
        for name, r in old._runs.items():
            if run_uids.get(name) == r.run_uid:
                r.store = self
                self._runs[name] = r
