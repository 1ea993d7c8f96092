"""The whole lineage relation of an array, kept compressed: one map per operation, written to Parquet on demand.
"""

from __future__ import annotations

import numpy as np

from ..errors import NotTrackedError
from ..maps import GatherMap
from .api import backward
from .nodes import lineage_upstream, node_of, upstream_nodes
from .prepare import HOOKS, compose_before_query, prepare_node
from .regions import start_set
from .walk import backward_sets

__all__ = ["Relation", "lineage"]


class Relation:
    """The whole lineage relation of an array, kept compressed: one map per operation.

    Shape-determined operations (classes A and B) are described by ProvRC-style rectangles computed from
    their maps, with no pass over cells (:meth:`rectangles`); data-dependent operations (class C) by the
    index arrays they stored.  The relation can be written to Parquet (:meth:`to_parquet`).

    Attributes
    ----------
    records : list of OpRecord
        The operations, in creation order.
    nbytes : int
        Bytes of the compressed relation: 4 bytes per integer of the rectangles and map descriptors (8 where
        some value does not fit in int32), plus the stored index arrays of data-dependent operations.
    complete : bool
    """

    def __init__(self, y):
        self.node = node_of(y)
        if HOOKS["prepare"]:
            prepare_node(self.node)
        compose_before_query(self.node)
        nodes = upstream_nodes(self.node)
        self.history = nodes
        self.records = [n.record() for n in nodes if not n.is_source]
        self.complete = not any(n.partial for n in nodes)
        self.sources = {n.name: n.shape for n in nodes if n.is_source}
        # the relation itself: the nodes its (composed) maps reach
        self.nodes = lineage_upstream(self.node)
        self._rects = None

    def _op_rects(self):
        if self._rects is None:
            out = {}
            for n in self.nodes:
                m, ps, _ = n.lineage
                if m is not None and ps:
                    out[n.id] = m.rectangles()
            self._rects = out
        return self._rects

    @property
    def nbytes(self):
        """Bytes of the relation: per map of the relation, a descriptor (id, op code, shape, parents) and its
        rectangles or the index arrays it stores; composed maps count once for the operations folded into
        them (their history is in :attr:`records`).  The integers of descriptors and rectangles count 4 bytes
        each (int32, the width of the explicit pairs they replace) when every one of them fits, else 8."""
        lim = 2**31 - 1
        w = 4
        for n in self.nodes:
            m, ps, _ = n.lineage
            if any(d > lim for d in n.shape):
                w = 8
            rows = self._op_rects().get(n.id) if m is not None and ps else None
            if rows and any(abs(v) > lim for row in rows for f in row[1:] for v in f):
                w = 8
        total = 0
        seen = set()  # index arrays shared by several maps (table row relations) count once
        for n in self.nodes:
            m, ps, _ = n.lineage
            total += w * (3 + len(n.shape) + len(ps))  # map descriptor: id, op code, shape, parents
            if m is None or not ps:
                continue
            rows = self._op_rects().get(n.id)
            if rows is None:  # a map with no rectangles counts the arrays it holds (table maps: row relations)
                for a in m.held_arrays():
                    if id(a) not in seen:
                        seen.add(id(a))
                        total += a.nbytes
            else:
                total += sum(w * (1 + sum(len(f) for f in row[1:])) for row in rows)
        return total

    def rectangles(self):
        """Every rectangle of every shape-determined operation, as a dict of columns.

        Columns: ``op_id``, ``op``, ``parent_id``, ``out_lo``, ``out_hi``, ``lo_ax``, ``lo_mul``, ``lo_off``,
        ``hi_ax``, ``hi_mul``, ``hi_off`` (lists per axis; see :mod:`whence.maps`).  Data-dependent
        operations are listed in :meth:`index_arrays` instead.
        """
        cols = {k: [] for k in ("op_id", "op", "parent_id", "out_lo", "out_hi", "lo_ax", "lo_mul", "lo_off",
                                "hi_ax", "hi_mul", "hi_off")}
        for n in self.nodes:
            rows = self._op_rects().get(n.id)
            if not rows:
                continue
            ps = n.lineage[1]
            for row in rows:
                cols["op_id"].append(n.id)
                cols["op"].append(n.op)
                cols["parent_id"].append(ps[row[0]].id)
                for name, v in zip(list(cols)[3:], row[1:]):
                    cols[name].append([int(x) for x in v])
        return cols

    def index_arrays(self):
        """``{op id: flat source-index array}`` of the data-dependent operations (computed where lazy)."""
        out = {}
        for n in self.nodes:
            m, ps, _ = n.lineage
            if m is None or not ps or self._op_rects().get(n.id) is not None:
                continue
            if type(m) is GatherMap:  # (a subclass, such as a lifted or a lazy gather, has no plain index array)
                out[n.id] = np.ravel(m.src())
        return out

    def to_parquet(self, path, pairs=False):
        """Write the relation to the directory ``path``: ``ops.parquet`` (one row per operation, with ``map``,
        ``map_parents`` and ``composed``: the map kept for it, over which parents, or True where its map was
        composed into a reader's),
        ``rectangles.parquet`` and ``index_arrays.parquet``; with ``pairs=True`` also ``pairs.parquet``, the
        same relation as explicit (output cell, source cell) pairs for each source (large).

        Returns the list of files written.  Needs pyarrow.
        """
        import os

        import pyarrow as pa
        import pyarrow.parquet as pq

        for f in HOOKS["to_parquet"]:
            done = f(self, path, pairs)
            if done is not None:
                return done
        os.makedirs(path, exist_ok=True)
        written = []
        hist = self.history
        rel = {n.id: n.lineage for n in self.nodes}
        ops_t = pa.table({
            "id": [n.id for n in hist], "op": [n.op if not n.is_source else "source" for n in hist],
            "source": [n.name for n in hist], "shape": [list(n.shape) for n in hist],
            "parents": [[p.id for p in n.parents] for n in hist],
            "control": [sorted(n.control) for n in hist],
            # the map the relation keeps for this operation (None: a source, or folded into a reader's)
            "map": [type(rel[n.id][0]).__name__ if n.id in rel and rel[n.id][0] is not None else None
                    for n in hist],
            "map_parents": [[p.id for p in rel[n.id][1]] if n.id in rel else [] for n in hist],
            # the operation's map was composed into a reader's (whence.compose): the relation covers it there
            "composed": [not n.is_source and n.id not in rel for n in hist],
            "completeness": ["FULL" if not n.partial else "PARTIAL" for n in hist],
            "reason": [n.partial for n in hist], "detail": [n.detail for n in hist]})
        f = os.path.join(path, "ops.parquet")
        pq.write_table(ops_t, f)
        written.append(f)
        f = os.path.join(path, "rectangles.parquet")
        pq.write_table(pa.table(self.rectangles()), f)
        written.append(f)
        idx = self.index_arrays()
        f = os.path.join(path, "index_arrays.parquet")
        pq.write_table(pa.table({"op_id": list(idx), "src": [v.astype(np.int64) for v in idx.values()]}), f)
        written.append(f)
        if pairs:
            tabs = []
            for name, shape in self.sources.items():
                pr = self.pairs(name)
                tabs.append(pa.table({"source": [name] * len(pr),
                                      **{f"out{j}": pr[:, j] for j in range(len(self.node.shape))},
                                      **{f"in{j}": pr[:, len(self.node.shape) + j] for j in range(len(shape))}}))
            f = os.path.join(path, "pairs.parquet")
            pq.write_table(pa.concat_tables(tabs, promote_options="default") if tabs else pa.table({}), f)
            written.append(f)
        return written

    def backward(self, index=None, control=False):
        return backward(self.node, index, control)

    def pairs(self, source):
        """Explicit (output cell, source cell) pairs for one source: int64 array (k, y.ndim + src.ndim),
        computed by one backward query per output cell (a per-cell pass, for comparisons on small arrays)."""
        src = next((n for n in self.nodes if n.is_source and n.name == source), None)
        if src is None:
            raise NotTrackedError(f"{source!r} is not a source of this relation")
        rows = []
        shape = self.node.shape
        for cell in np.ndindex(*shape):
            found, _ = backward_sets(self.node, start_set(shape, cell))
            cs = found.get(src)
            if cs is None:
                continue
            ins = cs.coordinates()
            if len(ins):
                rows.append(np.hstack([np.broadcast_to(np.array(cell, np.int64), (len(ins), len(cell))), ins]))
        if not rows:
            return np.zeros((0, len(shape) + len(src.shape)), np.int64)
        return np.vstack(rows).astype(np.int64)

    def __repr__(self):
        return (f"<Relation of {len(self.records)} ops from {sorted(self.sources)}, {self.nbytes} bytes, "
                f"{'FULL' if self.complete else 'PARTIAL'}>")


def lineage(y):
    """The whole lineage relation of ``y``, compressed (one map per operation), with ``.nbytes``.

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.ones((100, 100)), name="a")
    >>> rel = wh.lineage((a.T + 1).sum(axis=0))
    >>> rel.complete, rel.nbytes < 1000
    (True, True)
    """
    return Relation(y)
