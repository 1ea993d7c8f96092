"""The graph walk: cell sets pushed hop by hop through the maps, back to the sources or forward to a target.

A backward walk (:func:`backward_sets`) starts from a cell set of the node asked about and pushes it through the
maps of the upstream operations in reverse creation order (a topological order), merging the sets that reach a
node along several paths, until it reaches the sources.  A forward walk (:func:`forward_sets`) runs the other
way, restricted to the operations that lie between the start and the target.
"""

from __future__ import annotations

import heapq

import numpy as np

from .. import compose as _compose
from ..cellset import CellSet
from ..errors import LineageQueryError
from ..maps import ElementwiseMap
from .nodes import lineage_upstream
from .regions import too_dense

__all__ = ["backward_sets", "forward_sets", "is_upstream", "cell_coordinates"]


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
        if not node.shape or too_dense(v.size, node.size):
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
    if merged.kind == "sparse" and too_dense(merged.value.size, p.size):
        merged = merged.unique()
        if too_dense(merged.value.size, p.size):
            merged = CellSet.dense(merged.to_mask(), p.shape)
    pending[p.id] = (p, merged)


def backward_sets(node, cs, control=False):
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
                    if not p.shape or too_dense(pm.size, p.size):
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


def cell_coordinates(cs, shape=None):
    """The coordinates of the cells of the cell set ``cs`` (``shape``, where given, is the set's own)."""
    return cs.coordinates()


def is_upstream(start, target):
    """True when the lineage of ``target`` reaches ``start`` through the relations a forward walk follows."""
    rel = None if start.is_source else _compose.forward_lineage
    return start.id in {n.id for n in lineage_upstream(target, rel)}


def forward_sets(start, cs, target, control=False):
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
            pcs = forward_sets(start, cs, p, control)
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
    up = lineage_upstream(target, rel)
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
