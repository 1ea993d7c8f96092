"""The public queries: backward, forward, sources, ops, ancestors, and the DSLog-style cell view.

Each query finds the node asked about (:mod:`.nodes`), runs the steps before a query (:mod:`.prepare`), turns
the region asked about into a cell set (:mod:`.regions`) and walks the graph with it (:mod:`.walk`).
"""

from __future__ import annotations

from ..cellset import CellSet
from ..errors import LineageQueryError, NotTrackedError
from ..graph import Node, sources_by_name
from ..tracked import TrackedArray
from .nodes import node_of, resolve_node, upstream_nodes
from .prepare import HOOKS, compose_before_query, prepare_node
from .regions import region_mask, rows_cols_index, start_set
from .walk import backward_sets, cell_coordinates, forward_sets, is_upstream

__all__ = ["backward", "forward", "sources", "ops", "ancestors", "Cell", "LineageResult"]


class LineageResult(dict):
    """``{source name: int64 array (k, ndim)}`` of source cells, with completeness attributes.

    Attributes
    ----------
    complete : bool
        False when an operation on the way is PARTIAL (the answer is then a superset of the true lineage).
    reasons : list of str
        Why, for each PARTIAL operation met.
    """

    def __init__(self, *args, complete=True, reasons=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.complete = complete
        self.reasons = list(reasons)

    @property
    def completeness(self):
        return "FULL" if self.complete else "PARTIAL"

    def __repr__(self):
        body = ", ".join(f"{k!r}: <{len(v)} cells>" for k, v in self.items())
        return f"LineageResult({{{body}}}, {self.completeness})"


def backward(y, index=None, control=False, *, rows=None, columns=None):
    """Source cells of cells of ``y``.

    Parameters
    ----------
    y : TrackedArray
    index : tuple of int and slice, or bool ndarray, optional
        The cells asked about; all of ``y`` when omitted.
    control : bool, default False
        Also include the cells that chose a copy (masks, conditions, index arrays).

    Returns
    -------
    LineageResult
        ``{source name: int64 array (k, source.ndim)}``, rows unique and sorted; sources that contribute no
        cell are left out.  ``.complete`` tells FULL from PARTIAL.

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.arange(12.0).reshape(4, 3), name="a")
    >>> b = wh.track(np.ones(3), name="b")
    >>> y = (a * b).sum(axis=1)
    >>> r = wh.backward(y, (2,))
    >>> r["a"].tolist(), r["b"].tolist(), r.complete
    ([[2, 0], [2, 1], [2, 2]], [[0], [1], [2]], True)
    """
    node = node_of(y)
    if HOOKS["prepare"]:
        prepare_node(node)
    compose_before_query(node)
    index = rows_cols_index(node.shape, index, rows, columns)
    found, reasons = backward_sets(node, start_set(node.shape, index), control)
    res = LineageResult(complete=not reasons, reasons=reasons)
    for n in sorted(found, key=lambda n: n.name):
        c = cell_coordinates(found[n], n.shape)
        if len(c):
            res[n.name] = c
    return res


def _start_node(x, target=None):
    if isinstance(x, str):
        # a source of that name upstream of the target (also for handles of a saved store), else a live one
        if target is not None:
            srcs = target.memo("source_nodes", lambda: tuple(n for n in upstream_nodes(target) if n.is_source))
            for n in srcs:
                if n.name == x:
                    return n
        node = sources_by_name.get(x)
        if node is None:
            raise NotTrackedError(f"no live source is named {x!r}")
        return node
    if isinstance(x, TrackedArray) and x._origin is not None:
        return x._origin
    origin = getattr(x, "__dict__", {}).get("_wh_origin")  # a tracked source frame (read or tracked)
    if isinstance(origin, Node):
        return origin
    return node_of(x, "source")


def forward(x, index=None, y=None, control=False, *, rows=None, columns=None):
    """Cells of ``y`` derived from cells of ``x``.

    Parameters
    ----------
    x : TrackedArray or str
        A source (by array or by name) or any tracked array upstream of ``y``.  For a tracked array that
        was written in place after being tracked, the query starts from its original source cells; so does
        it for a frame from :func:`whence.read_csv` / :func:`whence.track_frame` (written in place or not),
        whose cells are then given in the source's coordinates, index levels first, as ``backward``
        answers them.
    index : tuple of int and slice, or bool ndarray, or None
        The cells of ``x``.
    y : TrackedArray
    control : bool, default False
        Also follow control edges (a mask cell reaches the cells it selected).

    Returns
    -------
    ndarray of int64, shape (k, y.ndim)
        Rows unique and sorted.

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    >>> y = np.cumsum(a, axis=1)
    >>> wh.forward(a, (0, 1), y).tolist()
    [[0, 1], [0, 2]]
    """
    if y is None:
        if not (isinstance(index, (TrackedArray, Node)) or resolve_node(index) is not None):
            raise LineageQueryError("forward needs the array to push the cells to: forward(x, index, y)")
        index, y = None, index
    target = node_of(y)
    if HOOKS["prepare"]:
        prepare_node(target)
    compose_before_query(target)
    start = _start_node(x, target)
    if HOOKS["prepare"]:
        prepare_node(start)
    index = rows_cols_index(start.shape, index, rows, columns)
    cs = start_set(start.shape, index)
    if not start.is_source and ((start.map is not None and start.map.kind == "table")
                                or not is_upstream(start, target)):
        # a derived table (or a tracked frame, whose relation to its sources is composed, and which later
        # tables name only as history): push its source cells forward
        found, _ = backward_sets(start, cs, control)
        acc = None
        for src, scs in found.items():
            r = forward_sets(src, scs, target, control)
            acc = r if acc is None else CellSet.dense(acc.to_mask() | r.to_mask(), target.shape)
        return (acc if acc is not None else CellSet.empty(target.shape)).coordinates()
    return forward_sets(start, cs, target, control).coordinates()


def sources(y):
    """Names of the sources ``y`` derives from, sorted.

    Answers are memoised on the graph node (nodes never change), so asking again costs O(1).
    """
    node = node_of(y)
    return list(node.memo("sources", lambda: tuple(sorted(n.name for n in upstream_nodes(node) if n.is_source))))


def ops(y):
    """Names of the operations ``y`` derives from, in the order they ran (internal steps left out)."""
    node = node_of(y)
    return list(node.memo("ops", lambda: tuple(n.op for n in upstream_nodes(node)
                                                if not n.is_source and not n.internal)))


def ancestors(y, depth=None):
    """Records of the upstream operations of ``y``, nearest first, up to ``depth`` hops (None: all).

    Returns
    -------
    list of whence.graph.OpRecord
    """
    node = node_of(y)
    if depth is not None and depth < 0:
        raise ValueError("depth must be >= 0 or None")
    levels = node.memo("levels", lambda: _levels(node))
    if depth is None or depth >= levels[-1][1]:
        return [rec for rec, _ in levels[:-1]]
    return [rec for rec, lvl in levels[:-1] if lvl <= depth]


def _levels(node):
    """(record, hops from ``node``) of every upstream operation, nearest first by creation order; the last
    entry carries the maximum depth."""
    seen = {node.id: 0}
    frontier = [node]
    out = [node]
    level = 0
    while frontier:
        level += 1
        nxt = []
        for n in frontier:
            for p in n.parents:
                if p.id not in seen:
                    seen[p.id] = level
                    nxt.append(p)
        out.extend(nxt)
        frontier = nxt
    out.sort(key=_neg_id)
    recs = [(n.record(), seen[n.id]) for n in out if not n.internal]
    recs.append((None, level))
    return recs


def _neg_id(n):
    return -n.id


class Cell:
    """One cell of a tracked array, DSLog style: ``.value`` and ``.parents``."""

    def __init__(self, array, index):
        self.array = array
        if HOOKS["prepare"] and isinstance(array, TrackedArray):
            prepare_node(array.node)
        self.index = tuple(int(i) for i in index)
        region_mask(array.shape, self.index)
        if len(self.index) != array.ndim:
            raise LineageQueryError(f"a cell needs {array.ndim} indices, got {len(self.index)}")

    @property
    def value(self):
        v = self.array._data[self.index]
        return v.compute() if getattr(self.array, "lazy", False) else v

    @property
    def parents(self):
        res = backward(self.array, self.index)
        return [(name, tuple(int(v) for v in row)) for name in sorted(res) for row in res[name]]

    def __repr__(self):
        return f"Cell({self.index}, value={self.value!r}, parents={len(self.parents)})"
