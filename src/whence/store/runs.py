"""A saved run and the handles of its objects: what ``store["etl"]`` and ``store["etl"]["X"]`` are.

A :class:`Run` reads its objects, results and graph from the store's snapshot of the moment, checked to hold
this very run (a run saved over since raises :class:`~whence.errors.StoreStaleError`); its graph is rebuilt
on first use (:mod:`whence.store.loader`).  An :class:`ObjectHandle` answers lineage queries like the live
object did.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import StoreCorruptError, StoreError, StoreKeyError, StoreStaleError
from .loader import build_graph

__all__ = ["Run", "ObjectHandle"]


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

    def checked_connection(self):
        """The store's connection, checked to hold this very run (not one saved over it since)."""
        con = self.store.connection
        if not self.store.follows:  # a fixed snapshot: the run was read from it (or carried over unchanged)
            return con
        row = con.execute("SELECT run_uid FROM runs WHERE run = ?", [self.name]).fetchone()
        if row is None or row[0] != self.run_uid:
            raise StoreStaleError(f"run {self.name!r} in {str(self.store.path)!r} was overwritten or deleted "
                                  f"since it was opened: open the store again")
        return con

    def _load_objects(self):
        if self._objects is None:
            con = self.checked_connection()
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
        return sorted(n.name for n in self.nodes() if n.is_source)

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
            src = next((n for n in self.nodes() if n.is_source and n.name == name), None)
            if src is None:
                raise StoreKeyError(f"run {self.name!r} has no object or source named {name!r}; objects: "
                                    f"{self.objects()}, sources: {self.sources()}")
            h = self.source(name)
        self._handles[name] = h
        return h

    def result_rows(self):
        """The rows ``(name, kind, payload)`` of the run's results and referenced datasets, by name."""
        con = self.checked_connection()
        has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() "
                          "AND table_name = 'results'").fetchone()[0]
        if not has:  # a store written before results were kept has no such table
            return []
        return con.execute("SELECT name, kind, payload FROM results WHERE run = ? ORDER BY name",
                           [self.name]).fetchall()

    def results(self):
        """The results saved with the run: a list of ``{"name", "kind"}`` (see :mod:`whence.store.results`);
        referenced Parquet datasets have the kind ``parquet_dataset``."""
        return [{"name": n, "kind": k} for n, k, _ in self.result_rows()]

    def dataset(self, name):
        """The directory of the Parquet relation dataset ``name`` referenced by this run (``save(datasets=)``).

        Raises
        ------
        StoreKeyError
            When the run references no dataset of that name.
        FileNotFoundError
            When the directory is no longer there.
        """
        for n, k, text in self.result_rows():
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
        for n, k, text in self.result_rows():
            if n == name:
                doc = json.loads(text)
                doc["kind"] = k
                return doc
        raise StoreKeyError(f"run {self.name!r} has no result named {name!r}; results: "
                            f"{[r['name'] for r in self.results()]}")

    def source(self, name):
        """A handle on a source of the run, to start forward queries from (``wh.forward(src, rows, X)``)."""
        nodes = self.nodes()
        for i, n in enumerate(nodes):
            if n.is_source and n.name == name:
                cols = self._source_columns().get(name)
                return ObjectHandle(self, name, i, "source", cols)
        raise StoreKeyError(f"run {self.name!r} has no source named {name!r}; sources: {self.sources()}")

    def _source_columns(self):
        if self._source_cols is not None:
            return self._source_cols
        rows = self.checked_connection().execute("SELECT name, columns FROM sources WHERE run = ?",
                                             [self.name]).fetchall()
        try:
            self._source_cols = {n: (None if c is None else json.loads(c)) for n, c in rows}
            return self._source_cols
        except (TypeError, ValueError) as e:
            raise StoreCorruptError(f"run {self.name!r} in {str(self.store.path)!r} has unreadable source "
                                    f"columns: the store is corrupted") from e

    def nodes(self):
        """The run's operation graph: its nodes, numbered as in the store's ``nodes`` table (read on first use)."""
        if self._graph is None:
            try:
                self._graph = build_graph(self)
            except StoreError:
                raise
            except (ValueError, KeyError, TypeError, IndexError, OverflowError, AttributeError) as e:
                raise StoreCorruptError(f"run {self.name!r} in {str(self.store.path)!r} has a malformed graph: the "
                                        f"store is corrupted ({type(e).__name__}: {e})") from e
        return self._graph

    _nodes = nodes  # the former private spelling

    def __repr__(self):
        return f"<whence.Run {self.name!r}: {len(self._load_objects())} objects, {self.n_nodes} nodes>"


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
    def node(self):
        """The object's node in the run's graph (the graph is read on first use)."""
        return self.run.nodes()[self._index]

    _whence_node = node  # how whence.query finds the node of an object that is not a tracked array

    @property
    def node_number(self):
        """The number of the object's node in the store's ``nodes`` table."""
        return self._index

    @property
    def shape(self):
        return self.node.shape

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def completeness(self):
        from ..query import upstream_nodes as _upstream
        return "PARTIAL" if any(n.partial for n in _upstream(self.node)) else "FULL"

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
