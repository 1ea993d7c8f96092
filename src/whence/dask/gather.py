"""The lazy gather map of dask arrays and the index arrays it replays on.

A class-C operation on a dask array (``where``, masks, fancy indexing, ``take``, ``unique``, ...) records a
:class:`DaskGatherMap`: its source-index array is a dask array, built on the first query by replaying the
operation with dask on index arrays chunked like the operands (:func:`index_like`), and computed only where a
query needs it.  :data:`ARRAYS` holds the dask array of every lazy node's values (its chunk grid), shared by the
capture (:mod:`whence.dask.array`) and the Parquet export (:mod:`whence.dask.parquet_export`).
"""

from __future__ import annotations

import math
import weakref

import numpy as np

from ..buckets.common import is_t as _is_t, raw as _raw
from ..buckets.selection import wrap_gather
from ..maps import GatherMap, split_by_parent
from ..tracked import is_lazy

__all__ = ["DaskGatherMap", "ARRAYS", "dask_array", "has_unknown_size", "known_sizes", "index_like",
           "zeros_index_like", "dask_compute", "gather", "placed_at", "control_map"]

#: node -> the dask array of its values (chunk grids for the relation; unknown shapes resolved from it)
ARRAYS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def dask_array():
    """The module ``dask.array`` (imported on first use)."""
    import dask.array as da
    return da


def has_unknown_size(shape):
    """True when a dimension of ``shape`` is unknown (NaN: a dask chunk size that depends on the data)."""
    return any(isinstance(d, float) and math.isnan(d) for d in shape)


def known_sizes(x):
    """``x`` with known chunk sizes (computed in place, on query, when unknown)."""
    if is_lazy(x) and has_unknown_size(x.shape):
        x.compute_chunk_sizes()
    return x


def _index_block(offset, full, block_info=None):
    info = block_info[None]
    loc = info["array-location"]
    if not full:
        return np.full((), offset + 1, np.int64)
    strides = [1] * len(full)
    for i in range(len(full) - 2, -1, -1):
        strides[i] = strides[i + 1] * full[i + 1]
    out = np.full(info["chunk-shape"], offset + 1, np.int64)
    for ax, ((lo, hi), st) in enumerate(zip(loc, strides)):
        sh = [1] * len(full)
        sh[ax] = hi - lo
        out += (np.arange(lo, hi, dtype=np.int64) * st).reshape(sh)
    return out


def index_like(x, offset=0):
    """``offset + 1 + flat index`` of every cell of ``x``, chunked like ``x`` (dask) or as numpy; no value of
    ``x`` is read."""
    if not is_lazy(x):
        shape = np.shape(x)
        return np.arange(offset + 1, offset + 1 + math.prod(shape), dtype=np.int64).reshape(shape)
    x = known_sizes(x)
    return dask_array().map_blocks(_index_block, dtype=np.int64, chunks=x.chunks, offset=int(offset),
                            full=tuple(int(d) for d in x.shape), meta=np.empty((0,) * x.ndim, np.int64))


def zeros_index_like(x):
    if not is_lazy(x):
        return np.zeros(np.shape(x), np.int64)
    x = known_sizes(x)
    return dask_array().zeros(x.shape, chunks=x.chunks, dtype=np.int64)


class DaskGatherMap(GatherMap):
    """A :class:`~whence.maps.GatherMap` whose source-index array is a dask array.

    Parameters
    ----------
    out_shape : tuple
        May hold NaN (unknown) sizes at capture; completed on the first query.
    operands : list
        The data operands (dask arrays, numpy arrays or scalars) in the order ``replay`` takes them.
    tracked : list of bool
        Which operands are tracked (the map's parents, in order); the others are constants.
    replay : callable
        ``replay(index_arrays)`` performs the operation with dask on index arrays (``offset + flat + 1`` per
        tracked operand, 0 for constants) and returns the source-index array.
    deps : sequence of dask arrays, optional
        Other arrays ``replay`` uses (masks, conditions); their chunk sizes are computed first when unknown.

    Notes
    -----
    Nothing is computed at capture.  :meth:`lazy_src` builds the dask source-index array on the first query;
    :meth:`backward_sparse` computes only the chunks that hold the cells asked about (``vindex``);
    :meth:`forward_sparse` scans the index array chunk by chunk in parallel (``isin`` then ``argwhere``).
    """

    lazy = True

    def __init__(self, out_shape, operands, tracked, replay, deps=(), point=None):
        self._point = point
        self._operands = list(operands)
        self._tracked = list(tracked)
        self._replay = replay
        self._deps = list(deps)
        self._dsrc = None
        self._csrc = None
        self._blocks = {}
        shapes = [tuple(np.shape(v)) for v, t in zip(operands, tracked) if t]
        GatherMap.__init__(self, out_shape, shapes, None)

    def _set_shapes(self, out_shape, parent_shapes):
        self.out_shape = tuple(int(d) for d in out_shape)
        self.parent_shapes = tuple(tuple(int(d) for d in s) for s in parent_shapes)
        offs = [0]
        for s in self.parent_shapes:
            offs.append(offs[-1] + math.prod(s))
        self.offsets = offs

    def lazy_src(self):
        """The source-index array as a dask array (numpy when no operand is lazy), built once."""
        if self._dsrc is None:
            for d in self._deps:
                known_sizes(d)
            ops = [known_sizes(v) for v in self._operands]
            ixs, off, shapes = [], 0, []
            for v, t in zip(ops, self._tracked):
                if t:
                    ixs.append(index_like(v, off))
                    n = math.prod(np.shape(v))
                    shapes.append(np.shape(v))
                    off += n
                else:
                    ixs.append(zeros_index_like(v) if np.ndim(v) else 0)
            s = self._replay(ixs)
            s = known_sizes(s) if is_lazy(s) else np.asarray(s)
            self._set_shapes(s.shape, shapes)
            self._dsrc = s
        return self._dsrc

    def src(self):
        if self._csrc is None:
            s = self.lazy_src()
            s = np.asarray(s.compute()) if is_lazy(s) else np.asarray(s)
            if s.size <= 1 << 20:
                self._csrc = s
            return s
        return self._csrc

    def _split(self, sel):
        return split_by_parent(self, sel)

    _BLOCK_CACHE = 1 << 22  # index cells kept from earlier point queries, per map

    def _cells(self, flat):
        """Source-index values at flat output positions ``flat``, computing only the blocks that hold them
        (blocks are kept for later queries while they are small)."""
        s = self.lazy_src()
        coords = np.unravel_index(flat, s.shape)
        if self._point is not None and s.ndim:
            box = math.prod(int(c.max()) - int(c.min()) + 1 for c in coords)
            if box <= max(4 * flat.size, 1 << 16):
                return self._point(self, coords)
        bounds = [np.cumsum((0,) + tuple(c)) for c in s.chunks]
        bidx = [np.searchsorted(b, c, side="right") - 1 for b, c in zip(bounds, coords)]
        bid = np.ravel_multi_index(bidx, s.numblocks)
        ubid = np.unique(bid)
        keys = [tuple(int(v) for v in np.unravel_index(int(b), s.numblocks)) for b in ubid]
        need = [k for k in keys if k not in self._blocks]
        if need and sum(math.prod(s.chunks[a][i] for a, i in enumerate(k)) for k in need) > self._BLOCK_CACHE:
            # large blocks: pick the cells on the workers (only the values travel), keep nothing
            return np.asarray(dask_compute(s.vindex[coords])[0]).astype(np.int64, copy=False)
        if need:
            vals = dask_compute(*[s.blocks[k] for k in need])
            kept = sum(v.size for v in self._blocks.values())
            for k, v in zip(need, vals):
                self._blocks[k] = np.asarray(v)
            if kept + sum(np.size(v) for v in vals) > self._BLOCK_CACHE:
                blocks, self._blocks = self._blocks, {}
            else:
                blocks = self._blocks
        else:
            blocks = self._blocks
        out = np.empty(flat.size, np.int64)
        local = [c - b[i] for c, b, i in zip(coords, bounds, bidx)]
        for b, k in zip(ubid, keys):
            sel = bid == b
            out[sel] = blocks[k][tuple(l[sel] for l in local)]
        return out

    def backward_sparse(self, flat):
        s = self.lazy_src()
        if not is_lazy(s) or s.ndim == 0 or self._csrc is not None:
            return self._split(np.ravel(self.src())[flat])
        if not flat.size:
            return [np.zeros(0, np.int64) for _ in self.parent_shapes]
        return self._split(self._cells(np.asarray(flat, np.int64)))

    def forward_sparse(self, k, flat):
        s = self.lazy_src()
        if not is_lazy(s) or s.ndim == 0 or self._csrc is not None:
            return GatherMap.forward_sparse(self, k, flat)
        targets = np.unique(np.asarray(flat, np.int64)) + 1 + self.offsets[k]
        hit = dask_array().isin(s, targets)
        coords = np.asarray(dask_array().argwhere(hit).compute())
        if not coords.size:
            return np.zeros(0, np.int64)
        return np.ravel_multi_index(tuple(coords.T), s.shape)

    def backward(self, out_mask):
        s = self.lazy_src()
        if not is_lazy(s) or s.ndim == 0 or self._csrc is not None:
            return GatherMap.backward(self, out_mask)
        # only the blocks that hold asked cells are computed
        flat = np.flatnonzero(np.broadcast_to(out_mask, self.out_shape))
        res = []
        for k, part in enumerate(self.backward_sparse(flat)):
            m = np.zeros(math.prod(self.parent_shapes[k]), bool)
            m[part] = True
            res.append(m.reshape(self.parent_shapes[k]))
        return res

    def forward(self, k, in_mask):
        self.lazy_src()
        return GatherMap.forward(self, k, in_mask)

    @property
    def nbytes(self):
        return 0 if self._csrc is None else self._csrc.nbytes

    def __repr__(self):
        return f"<DaskGatherMap {self.parent_shapes} -> {self.out_shape}>"


def dask_compute(*xs):
    import dask
    return dask.compute(*xs)


def gather(op, result, operands, replay, controls=(), deps=(), detail="", point=None):
    """Wrap a lazy class-C result: a :class:`DaskGatherMap` from the tracked operands, plus control maps
    ``[(tracked control array, map)]``."""
    tracked = [_is_t(o) for o in operands]
    data_parents = [o.node for o in operands if _is_t(o)]
    gm = DaskGatherMap(result.shape, [_raw(o) for o in operands], tracked, replay, deps, point)
    return wrap_gather(op, result, gm, data_parents, controls, detail)


def placed_at(sel, pos, out_ndim):
    """``sel`` (the index cells of a selection block) placed at output axes ``pos ..`` of an
    ``out_ndim``-dimensional result: None elsewhere (for broadcasting)."""
    return sel[(None,) * pos + (slice(None),) * sel.ndim + (None,) * (out_ndim - pos - sel.ndim)]


def control_map(result, comp_raw, select, pos, data_map):
    """A control map from each cell of ``result`` to the index cell that chose it: ``select(ix)`` picks the
    cells of the index array's index array in output order, placed at output axis ``pos``."""
    out_ndim = len(result.shape)

    def replay(ixs):
        sel = select(ixs[0])
        shape = data_map.lazy_src().shape
        e = placed_at(sel, pos, out_ndim)
        e = known_sizes(e) if is_lazy(e) else e
        return dask_array().broadcast_to(e, shape) if is_lazy(e) else np.broadcast_to(e, shape)

    return DaskGatherMap(result.shape, [comp_raw], [True], replay, deps=[comp_raw] if is_lazy(comp_raw) else [])
