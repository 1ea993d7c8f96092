"""Reading a run's graph back: nodes with their maps, from one snapshot of the store.

:func:`build_graph` rebuilds the operation graph of a saved run (one row per operation, maps decoded by
:mod:`whence.store.codec`; no array data), registers its source tables with the tables layer (the file is not
read again: the lines of its rows come from the store), and leaves the index arrays to be read when a query
first needs them (:meth:`whence.store.reader.Store.load_array`).
"""

from __future__ import annotations

import json

from ..errors import StoreCorruptError
from ..graph import Node, OpRecord
from . import codec

__all__ = ["build_graph"]


def build_graph(run):
    """The nodes of the saved run ``run`` (a :class:`~whence.store.runs.Run`), in the order of their numbers;
    StoreCorruptError when the rows do not make a graph."""
    store = run.store
    con = run.checked_connection()  # one snapshot for the whole graph
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
        return run.store.load_array(run.name, uid, aid)  # the run's store of the moment (see whence.web)

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
    """Register the source tables of the run with the tables layer, so that queries read their lines."""
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
        t._load = lambda aid, run=run: run.store.load_array(run.name, uid, aid)
        register(nodes[node], t)
