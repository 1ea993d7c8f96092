"""Lineage queries: composing the per-operation maps hop by hop, only when asked.

A backward query starts from a set of cells of the array asked about and pushes it through the maps of the
upstream operations in reverse creation order (a topological order), merging the sets that reach a node
along several paths, until it reaches the sources.  A forward query runs the other way, restricted to the
operations that lie between the source and the target.
"""

from __future__ import annotations

import heapq
import numbers

import numpy as np

from . import hooks as _hooks
from .errors import LineageQueryError, NotTrackedError
from .cellset import CellSet
from .graph import Node
from .maps import ElementwiseMap, GatherMap
from .tracked import TrackedArray
from . import compose as _compose

__all__ = ["backward", "forward", "sources", "ops", "ancestors", "lineage", "Cell", "LineageResult",
           "Relation", "region_mask"]


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


def _node_of(x, what="array"):
    if isinstance(x, TrackedArray):
        return x.node
    if isinstance(x, Node):
        return x
    node = _other_node(x)
    if node is not None:
        return node
    raise NotTrackedError(
        f"the {what} is a {type(x).__name__}, not a tracked array: start tracking with whence.track(...) "
        f"and compute from the tracked array")


def _other_node(x):
    """The node of a tracked frame or series, of a store handle, or of a plain array handed out by
    ``np.asarray(tracked_frame)``."""
    f = getattr(type(x), "_whence_node", None)
    if f is not None:
        return x._whence_node
    if isinstance(x, (int, float, str, tuple, list)):
        return None
    for resolve in _hooks.NODE_RESOLVERS:  # filled by the tables layer (see whence.hooks)
        node = resolve(x)
        if node is not None:
            return node
    return None


def _rows_cols_index(shape, index, rows, columns):
    """A query region from ``rows=`` / ``columns=`` (positions) for tables."""
    if rows is None and columns is None:
        return index
    if index is not None:
        raise LineageQueryError("give either an index or rows=/columns=, not both")
    m = np.zeros(shape, bool)
    r = slice(None) if rows is None else np.asarray(rows, np.int64).reshape(-1)
    n = shape[0] if shape else 0
    if rows is not None and r.size and (r.min() < -n or r.max() >= n):
        raise LineageQueryError(f"rows {r.tolist()} out of range for {n} rows")
    if len(shape) == 1:
        if columns is not None:
            raise LineageQueryError("columns= needs a 2-D array or a frame")
        m[r] = True
        return m
    c = slice(None) if columns is None else np.asarray(columns, np.int64).reshape(-1)
    if columns is not None and c.size and (c.min() < -shape[1] or c.max() >= shape[1]):
        raise LineageQueryError(f"columns {c.tolist()} out of range for {shape[1]} columns")
    if rows is None:
        m[:, c] = True
    elif columns is None:
        m[r, :] = True
    else:
        m[np.ix_(r, c)] = True
    return m


def region_mask(shape, index):
    """Boolean mask of ``shape`` for a query region.

    ``index`` is None (every cell), a tuple of ints and slices (a single int for 1-D), or a boolean mask of
    the array's shape.  Out-of-range integers raise :class:`~whence.errors.LineageQueryError`.
    """
    shape = tuple(shape)
    if index is None:
        return np.ones(shape, bool)
    if isinstance(index, TrackedArray):
        index = index._data
    if isinstance(index, np.ndarray) and index.dtype == bool:
        if index.shape != shape:
            raise LineageQueryError(f"a boolean query mask must have the array's shape {shape}, got {index.shape}")
        return index
    if isinstance(index, list):
        index = tuple(index)
    if not isinstance(index, tuple):
        index = (index,)
    if len([k for k in index if k is not Ellipsis]) > len(shape):
        raise LineageQueryError(f"the query index {index!r} has more entries than the array has dimensions "
                                f"({len(shape)})")
    for k, d in zip([k for k in index if k is not Ellipsis], shape):
        if isinstance(k, (bool, np.bool_)):
            raise LineageQueryError(f"query index entries must be ints or slices, got {k!r}")
        if isinstance(k, (numbers.Integral, np.integer)):
            if not -d <= int(k) < d:
                raise LineageQueryError(f"query index {int(k)} is out of range for an axis of length {d} "
                                        f"(array shape {shape})")
        elif not isinstance(k, slice):
            raise LineageQueryError(f"query index entries must be ints or slices, got {type(k).__name__}")
    m = np.zeros(shape, bool)
    m[index] = True
    return m


def _upstream(node):
    """Every node that ``node`` derives from, itself included, in creation order (the operation history:
    operations whose maps were composed into their readers' are included)."""
    seen = {node.id: node}
    stack = [node]
    while stack:
        n = stack.pop()
        for p in n.parents:
            if p.id not in seen:
                seen[p.id] = p
                stack.append(p)
    return [seen[i] for i in sorted(seen)]


def _lineage_upstream(node, relation=None):
    """Every node that the lineage of ``node`` reaches through the relations queries follow (composed ones
    where dead intermediates were folded, see :mod:`whence.compose`), itself included, in creation order.
    ``relation(n)`` gives the ``(map, parents, control)`` to follow (default: ``n.lineage``)."""
    seen = {node.id: node}
    stack = [node]
    while stack:
        n = stack.pop()
        for p in (n.lineage if relation is None else relation(n))[1]:
            if p.id not in seen:
                seen[p.id] = p
                stack.append(p)
    return [seen[i] for i in sorted(seen)]


def _forced(node):
    """Before a query: fold the dead intermediates queued so far, and compose the relation of the node asked
    about through its upstream steps (live ones included, see :func:`whence.compact`) -- once per node, on
    its first query, in the default mode; before every query in the ``force`` mode."""
    _compose.flush()
    mode = _compose.mode()
    if mode == "force":
        _compose.compact_node(node)
    elif mode == "on":
        c = node.cache
        if c is None or "compacted" not in c:
            _compose.compact_node(node)
            node.memo("compacted", lambda: True)


#: hooks run before a query: ``prepare(node)`` with the node asked about (the dask layer resolves shapes that
#: were unknown at capture), ``to_parquet(relation, path, pairs)`` returning the files written or None
HOOKS: dict = {"prepare": [], "to_parquet": []}


def _prepare(node):
    for f in HOOKS["prepare"]:
        f(node)
    return node


_SPARSE_FRACTION = 16
_SPARSE_MIN = 1024  # sets this small stay sparse whatever the array size


def _too_dense(k, size):
    return k > _SPARSE_MIN and k * _SPARSE_FRACTION > size


def _is_identity(n):
    lk = n.link
    m, ps = (n.map, n.parents) if lk is None else (lk[0], lk[1])
    return (type(m) is ElementwiseMap and m.valid is None and len(ps) == 1 and not n.partial
            and m.parent_shapes[0] == m.out_shape and not (lk is not None and lk[2]))


def _settle(cs, node):
    """A cell set reaching ``node``: None when it is empty, a bitmap once a sparse set has grown dense."""
    kind = cs.kind
    if kind == "sparse":
        v = cs.value
        if not v.size:
            return None
        if not node.shape or _too_dense(v.size, node.size):
            return CellSet.dense(cs.to_mask(), node.shape)
        return cs
    return None if cs.is_empty() else cs


def _merge(pending, p, cs, heap):
    old = pending.get(p.id)
    if old is None:
        pending[p.id] = (p, cs)
        heapq.heappush(heap, -p.id)
        return
    merged = old[1].union(cs)
    if merged.kind == "sparse" and _too_dense(merged.value.size, p.size):
        merged = merged.unique()
        if _too_dense(merged.value.size, p.size):
            merged = CellSet.dense(merged.to_mask(), p.shape)
    pending[p.id] = (p, merged)


def _backward_sets(node, cs, control=False):
    """Push a cell set of ``node`` back to the sources; returns ({source node: cell set}, reasons).

    Cell sets (:class:`~whence.cellset.CellSet`) are sparse flat indices while they are small (point and
    small-region queries, answered by index arithmetic), a boolean mask once they are dense, and "everything"
    for whole-array queries through maps that answer them without cells.
    """
    pending = {node.id: (node, cs)}
    heap = [-node.id]
    found = {}
    reasons = []
    while heap:
        nid = -heapq.heappop(heap)
        n, cs = pending.pop(nid)
        # identity chains (same-shape elementwise ops with one tracked operand) pass cells through unchanged
        while _is_identity(n):
            n = n.lineage[1][0]
            if n.id in pending:
                _merge(pending, n, cs, heap)
                n = None
                break
        if n is None:
            continue
        if n.partial:
            reasons.append(f"{n.op}: {n.partial}")
        if n.name is not None:  # a source
            if n in found:
                cs = found[n].union(cs)
            found[n] = cs
            continue
        lk = n.link
        nmap, nparents, ncontrol = (n.map, n.parents, n.control) if lk is None else lk
        if nmap is None or not nparents:
            if lk is _compose.FOLDED:  # never reached: a folded node has no reader left
                raise LineageQueryError(f"internal error: the map of operation {n.op!r} was folded")
            continue
        # a table's control inputs (fitted statistics, keys) are not computed for a data query
        skip = ncontrol if ncontrol and not control and nmap.kind == "table" else None
        kind = cs.kind
        if kind == "sparse" and n.shape:
            r = nmap.backward_sparse(cs.value) if skip is None else nmap.backward_sparse(cs.value, skip=skip)
            if r is not None:
                # (the hot path of point queries: each parent's flat indices become its cell set here)
                for k, p in enumerate(nparents):
                    pm = r[k]
                    if pm is None or (k in ncontrol and not control) or not pm.size:
                        continue
                    if not p.shape or _too_dense(pm.size, p.size):
                        pcs = CellSet.dense(CellSet("sparse", pm, p.shape).to_mask(), p.shape)
                    else:
                        pcs = CellSet("sparse", pm, p.shape)
                    _merge(pending, p, pcs, heap)
                continue
        pms = None
        if kind == "everything":
            r = nmap.backward_all()
            if r is not None:
                pms = [CellSet.everything(p.shape) if v else None for p, v in zip(nparents, r)]
        if pms is None:
            dense = cs.to_mask()
            r = nmap.backward(dense) if skip is None else nmap.backward(dense, skip=skip)
            pms = [CellSet.dense(pm, p.shape) if pm is not None else None for p, pm in zip(nparents, r)]
        for k, (p, pm) in enumerate(zip(nparents, pms)):
            if pm is None or (k in ncontrol and not control):
                continue
            pm = _settle(pm, p)
            if pm is not None:
                _merge(pending, p, pm, heap)
    return found, reasons


def _start_set(shape, index):
    """The cell set asked about: sparse for single cells and small regions, dense otherwise."""
    if isinstance(index, tuple) and len(index) == len(shape) and all(
            isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)) for k in index):
        for k, d in zip(index, shape):
            if not -d <= int(k) < d:
                raise LineageQueryError(f"query index {int(k)} is out of range for an axis of length {d} "
                                        f"(array shape {tuple(shape)})")
        flat = np.array([np.ravel_multi_index(tuple(int(k) % d for k, d in zip(index, shape)), shape)]
                        if shape else [0], np.int64)
        return CellSet("sparse", flat, tuple(shape))
    if index is None:
        shape = tuple(shape)
        return CellSet.everything(shape) if int(np.prod(shape)) else CellSet.dense(np.zeros(shape, bool), shape)
    mask = region_mask(shape, index)
    size = mask.size
    if size >= 4096:
        flat = np.flatnonzero(mask)
        if flat.size * _SPARSE_FRACTION <= size:
            return CellSet("sparse", flat, tuple(shape))
    return CellSet.dense(mask, tuple(shape))


def _cells(cs, shape=None):
    """The coordinates of the cells of the cell set ``cs`` (``shape``, where given, is the set's own)."""
    return cs.coordinates()


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
    node = _node_of(y)
    if HOOKS["prepare"]:
        _prepare(node)
    _forced(node)
    index = _rows_cols_index(node.shape, index, rows, columns)
    found, reasons = _backward_sets(node, _start_set(node.shape, index), control)
    res = LineageResult(complete=not reasons, reasons=reasons)
    for n in sorted(found, key=lambda n: n.name):
        c = _cells(found[n], n.shape)
        if len(c):
            res[n.name] = c
    return res


def _start_node(x, target=None):
    if isinstance(x, str):
        # a source of that name upstream of the target (also for handles of a saved store), else a live one
        if target is not None:
            srcs = target.memo("source_nodes", lambda: tuple(n for n in _upstream(target) if n.is_source))
            for n in srcs:
                if n.name == x:
                    return n
        from .graph import sources_by_name as _sources
        node = _sources.get(x)
        if node is None:
            raise NotTrackedError(f"no live source is named {x!r}")
        return node
    if isinstance(x, TrackedArray) and x._origin is not None:
        return x._origin
    origin = getattr(x, "__dict__", {}).get("_wh_origin")  # a tracked source frame (read or tracked)
    if isinstance(origin, Node):
        return origin
    return _node_of(x, "source")


def _is_upstream(start, target):
    rel = None if start.is_source else _compose.forward_lineage
    return start.id in {n.id for n in _lineage_upstream(target, rel)}


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
        if not (isinstance(index, (TrackedArray, Node)) or _other_node(index) is not None):
            raise LineageQueryError("forward needs the array to push the cells to: forward(x, index, y)")
        index, y = None, index
    target = _node_of(y)
    if HOOKS["prepare"]:
        _prepare(target)
    _forced(target)
    start = _start_node(x, target)
    if HOOKS["prepare"]:
        _prepare(start)
    index = _rows_cols_index(start.shape, index, rows, columns)
    cs = _start_set(start.shape, index)
    if not start.is_source and ((start.map is not None and start.map.kind == "table")
                                or not _is_upstream(start, target)):
        # a derived table (or a tracked frame, whose relation to its sources is composed, and which later
        # tables name only as history): push its source cells forward
        found, _ = _backward_sets(start, cs, control)
        acc = None
        for src, scs in found.items():
            r = _forward_sets(src, scs, target, control)
            acc = r if acc is None else CellSet.dense(acc.to_mask() | r.to_mask(), target.shape)
        return (acc if acc is not None else CellSet.empty(target.shape)).coordinates()
    return _forward_sets(start, cs, target, control).coordinates()


def _forward_sets(start, cs, target, control=False):
    """Push a cell set of ``start`` forward to ``target`` through the operations between them."""
    if target.map is not None and target.map.kind == "table" and start.id != target.id:
        return _forward_table(start, cs, target, control)
    return _forward_walk(start, cs, target, control)


def _forward_table(start, cs, target, control):
    """A table's relation to its inputs is composed: one hop from each input (history edges carry nothing)."""
    m = target.map
    acc = None
    for k in range(m.n_inputs):
        p = target.parents[k]
        if k in target.control and not control:
            continue
        if p.id == start.id:
            pcs = cs
        elif p.is_source or p.id < start.id:
            continue
        else:
            pcs = _forward_sets(start, cs, p, control)
            pcs = _settle(pcs, p) if pcs is not None else None
            if pcs is None:
                continue
        if pcs.kind == "sparse":  # a few cells: pushed as a sparse set (one-cell queries cost their answer)
            r = CellSet("sparse", np.asarray(m.forward_sparse(k, pcs.value), np.int64), target.shape)
        else:
            r = CellSet.dense(np.asarray(m.forward(k, pcs.to_mask())), target.shape)
        acc = r if acc is None else acc.union(r)
    if acc is None:
        return CellSet.empty(target.shape)
    return acc


def _forward_walk(start, cs, target, control=False):
    # from a source, the composed relations; from an intermediate, those that do not pass over it
    rel = (lambda n: n.lineage) if start.is_source else _compose.forward_lineage
    up = _lineage_upstream(target, rel)
    empty = CellSet.empty(target.shape)
    if start.id not in {n.id for n in up}:
        return empty
    sets = {start.id: cs}
    for n in up:
        if n.id <= start.id:
            continue
        nmap, nparents, ncontrol = rel(n)
        if nmap is None:
            continue
        acc = None
        for k, p in enumerate(nparents):
            pcs = sets.get(p.id)
            if pcs is None or (k in ncontrol and not control):
                continue
            r = None
            kind = pcs.kind
            if kind == "everything":
                v = nmap.forward_all(k)
                if v:
                    r = CellSet.everything(n.shape)
                elif v is False:
                    continue
            elif kind == "sparse" and n.shape and p.shape:
                v = nmap.forward_sparse(k, pcs.value)
                r = CellSet("sparse", v, n.shape) if v is not None else None
            if r is None:
                r = CellSet.dense(np.asarray(nmap.forward(k, pcs.to_mask())), n.shape)
            acc = r if acc is None else acc.union(r)
        acc = _settle(acc, n) if acc is not None else None
        if acc is not None:
            sets[n.id] = acc
    return sets.get(target.id, empty)


def sources(y):
    """Names of the sources ``y`` derives from, sorted.

    Answers are memoised on the graph node (nodes never change), so asking again costs O(1).
    """
    node = _node_of(y)
    return list(node.memo("sources", lambda: tuple(sorted(n.name for n in _upstream(node) if n.is_source))))


def ops(y):
    """Names of the operations ``y`` derives from, in the order they ran (internal steps left out)."""
    node = _node_of(y)
    return list(node.memo("ops", lambda: tuple(n.op for n in _upstream(node)
                                                if not n.is_source and not n.internal)))


def ancestors(y, depth=None):
    """Records of the upstream operations of ``y``, nearest first, up to ``depth`` hops (None: all).

    Returns
    -------
    list of whence.graph.OpRecord
    """
    node = _node_of(y)
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
            _prepare(array.node)
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
        self.node = _node_of(y)
        if HOOKS["prepare"]:
            _prepare(self.node)
        _forced(self.node)
        nodes = _upstream(self.node)
        self.history = nodes
        self.records = [n.record() for n in nodes if not n.is_source]
        self.complete = not any(n.partial for n in nodes)
        self.sources = {n.name: n.shape for n in nodes if n.is_source}
        # the relation itself: the nodes its (composed) maps reach
        self.nodes = _lineage_upstream(self.node)
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
            arrays = getattr(m, "arrays", None)
            if arrays is not None:
                for a in arrays():
                    if id(a) not in seen:
                        seen.add(id(a))
                        total += a.nbytes
            elif rows is None:
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
            found, _ = _backward_sets(self.node, _start_set(shape, cell))
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


# the public names of the helpers other modules use (the private spellings stay as aliases)
#: every node that a node derives from, itself included, in creation order
upstream_nodes = _upstream
#: the node of a tracked array, a node, or another tracked object (NotTrackedError otherwise)
node_of = _node_of
#: the node of an object that is not a tracked array (a tracked frame, a store handle, a model output), or None
resolve_node = _other_node
#: push a cell set of a node back to the sources: ({source node: cell set}, reasons)
backward_sets = _backward_sets
#: the coordinates of the cells of a cell set over ``shape`` (an ``(n, ndim)`` array)
cell_coordinates = _cells
#: run the query hooks (lazy backends resolve unknown shapes) on a node before a query walks it
prepare_node = _prepare


# TrackedArray (one layer below) reaches the walk and the cell view through whence.hooks
_hooks.ARRAY.update(upstream=_upstream, cell=Cell, node_of=_node_of)
#: every node the lineage of a node reaches through the relations queries follow, itself included
lineage_upstream = _lineage_upstream
