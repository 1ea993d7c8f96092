"""Lineage of dask arrays: the :class:`~whence.TrackedArray` API over a lazy ``dask.array.Array``.

``whence.track(dask_array, name=...)`` returns a :class:`~whence.TrackedArray` whose values are a dask array.
Every numpy operation on it stays lazy: dask builds the task graph of the values, whence records the
operation and its lineage map exactly as for numpy, and nothing is computed at capture time.

- Classes A and B (moves, elementwise, reductions, windows, contractions) record the same shape arithmetic
  as for numpy arrays; their maps never read values.
- Class C (``where``, boolean masks, fancy indexing, ``take``, ``compress``, ``extract``, ``nonzero``,
  ``unique``) records a :class:`DaskGatherMap`: the source-index array is a dask array, built on the first
  query by replaying the operation with dask on index arrays chunked like the operands, and computed only
  where a query needs it (the chunks holding the cells asked about).
- Functions that dask itself cannot run lazily raise :class:`LazyUnsupportedError`, naming the function;
  data-dependent functions without a lazy lineage rule fall back to all-to-all with a
  :class:`~whence.errors.PartialLineageWarning` (PARTIAL), as for numpy.
- Operations whose output shape depends on the data (boolean masks, ``nonzero``, ``unique``) give unknown
  chunk sizes in dask.  Capture stays lazy; the first query that reaches such an array computes its chunk
  sizes (``compute_chunk_sizes``, in place) and completes the shapes recorded in the lineage maps.

Queries (:func:`whence.backward`, :func:`whence.forward`) run with whatever dask scheduler is active: the
threaded one by default, a ``dask.distributed.Client`` when one is set up (a ``LocalCluster`` or a
multi-node cluster given its scheduler address).  :meth:`whence.query.Relation.to_parquet` of a relation
over dask arrays writes a partitioned Parquet dataset chunk by chunk, in parallel on the cluster
(:func:`relation_to_parquet`); :func:`register_duckdb` exposes it to DuckDB.

Examples
--------
>>> import numpy as np, dask.array as da, whence as wh
>>> wh.reset()
>>> x = wh.track(da.arange(12.0, chunks=4).reshape(3, 4), name="x")
>>> y = np.where(x > 5, x, 0.0).sum(axis=1)
>>> y.lazy
True
>>> wh.backward(y, (2,))["x"].tolist()
[[2, 0], [2, 1], [2, 2], [2, 3]]
>>> y.compute().tolist()
[0.0, 13.0, 38.0]
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import weakref

import numpy as np

from ..buckets.common import is_t as _is_t, raw as _raw
from ..buckets.selection import wrap_gather
from .. import compose as _compose
from ..errors import LineageQueryError, WhenceError
from ..graph import new_source
from ..maps import ElementwiseMap, GatherMap, OpaqueMap, UnionMap, split_by_parent
from ..tracked import TrackedArray, NUMERIC_KINDS as _NUMERIC_KINDS, wrap as _wrap, is_lazy, make_node, warn_partial

__all__ = ["LazyUnsupportedError", "DaskGatherMap", "track", "is_lazy", "dask_implements", "relation_to_parquet",
           "register_duckdb", "resolve_shapes"]

#: returned by the dispatchers when no operand is lazy (the numpy path then runs)
NOT_LAZY = object()

#: node -> the dask array of its values (chunk grids for the relation; unknown shapes resolved from it)
_ARRAYS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
#: nodes whose shape had unknown (NaN) sizes at capture
_UNKNOWN: "weakref.WeakSet" = weakref.WeakSet()


def _keep_lazy(node):
    return node in _ARRAYS


# the maps of lazy arrays are written per chunk: composition (whence.compose) leaves them as recorded
_compose.KEEP.append(_keep_lazy)
#: set once a node of unknown shape was recorded in this process: from then on a query checks the maps above
#: it (nodes recorded after an unknown shape may hold it in their maps though their own shape is known, such as
#: the sum of a masked array); nodes found complete are remembered in _COMPLETE and not checked again
_EVER_UNKNOWN = [False]
_COMPLETE: "weakref.WeakSet" = weakref.WeakSet()


class LazyUnsupportedError(WhenceError, NotImplementedError):
    """An operation that dask cannot run lazily on a tracked dask array (or that whence cannot record
    without computing values).  Compute first (``np.asarray(x)``) and track the numpy values, or use a
    dask equivalent."""


def _da():
    import dask.array as da
    return da


def _nan_shape(shape):
    return any(isinstance(d, float) and math.isnan(d) for d in shape)


def _is_lazy_t(x):
    return type(x) is TrackedArray and type(x._data) is not np.ndarray and is_lazy(x._data)


def _lazy_operand(x):
    return _is_lazy_t(x) or (type(x) is not np.ndarray and is_lazy(x))


# ------------------------------------------------------------------------------------------- capture

def track(data, name=None):
    """Track a dask array (called by :func:`whence.track`): nothing is computed.

    Parameters
    ----------
    data : dask.array.Array
        Numeric or bool dtype; chunk sizes may be unknown (they are computed by the first query that
        needs them).
    name : str, optional

    Returns
    -------
    TrackedArray
        Its values are ``data`` itself (dask arrays are immutable values: no copy is needed).

    Examples
    --------
    >>> import dask.array as da, whence as wh
    >>> wh.reset()
    >>> a = wh.track(da.ones((4, 4), chunks=2), name="a")
    >>> a.lazy, a.shape, a.dask.chunks
    (True, (4, 4), ((2, 2), (2, 2)))
    """
    if data.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"cannot track a dask array of dtype {data.dtype}: whence tracks numeric and bool arrays "
                        f"only")
    data = data.copy()  # a new array object on the same graph: writes through whence never touch the caller's
    node = new_source(data.shape, name)
    t = _wrap(data, node)
    t._origin = node
    return t


def wrapped(data, node):
    """Called by :func:`whence.tracked._wrap` for every lazy array it wraps: remember the array of the node."""
    _ARRAYS[node] = data
    if _nan_shape(node.shape):
        _UNKNOWN.add(node)
        _EVER_UNKNOWN[0] = True


def dask_implements(func):
    """True when dask runs the numpy function ``func`` lazily (dask's own ``__array_function__`` rule).

    Examples
    --------
    >>> import numpy as np
    >>> dask_implements(np.cumsum), dask_implements(np.sort)
    (True, False)
    """
    from dask.array.core import _HANDLED_FUNCTIONS
    if func in _HANDLED_FUNCTIONS:
        return True
    module = _da()
    for sub in (getattr(func, "__module__", None) or "numpy").split(".")[1:]:
        module = getattr(module, sub, None)
        if module is None:
            return False
    f = getattr(module, getattr(func, "__name__", ""), None)
    return f is not None and f is not func


def _has_lazy(args, kwargs, depth=0):
    for a in itertools.chain(args, kwargs.values()) if kwargs is not None else args:
        if _lazy_operand(a):
            return True
        if depth < 3 and isinstance(a, (list, tuple)) and _has_lazy(a, None, depth + 1):
            return True
    return False


def dispatch_function(func, types, args, kwargs):
    """``__array_function__`` for calls with a lazy operand; :data:`NOT_LAZY` when there is none."""
    if not _has_lazy(args, kwargs):
        return NOT_LAZY
    if "out" in kwargs and kwargs["out"] is None:
        kwargs = {k: v for k, v in kwargs.items() if k != "out"}
    h = _HANDLERS.get(func)
    if h is not None:
        return h(func, *args, **kwargs)
    from ..buckets import registry
    from ..buckets.opaque import deep_raw as _deep_raw, opaque_call
    bucket = registry.bucket_of(func)
    if bucket == "M":
        return func(*[_deep_raw(a) for a in args], **{k: _deep_raw(v) for k, v in kwargs.items()})
    name = getattr(func, "__name__", repr(func))
    if not dask_implements(func):
        raise LazyUnsupportedError(
            f"np.{name} has no lazy implementation in dask.array; whence does not compute values at capture. "
            f"Compute first (np.asarray(x)) and track the numpy values, or use a dask equivalent")
    if kwargs.get("out") is not None:
        raise LazyUnsupportedError(f"np.{name}(..., out=) is not supported on dask arrays")
    if bucket == "C":
        return opaque_call(func, args, kwargs, reason="no lazy lineage rule for this data-dependent function on "
                                                       "dask arrays")
    handler = registry.HANDLERS.get(func)
    if handler is None:
        return opaque_call(func, args, kwargs, reason="whence has no lineage rule for this function")
    import warnings
    with warnings.catch_warnings():
        # dask computes a function it does not implement (with this warning): refuse instead
        warnings.filterwarnings("error", message=".*is not implemented by Dask array", category=FutureWarning)
        try:
            result = handler(func, *args, **kwargs)
        except FutureWarning as exc:
            raise LazyUnsupportedError(f"np.{name} on a dask array needs a function dask does not run lazily "
                                       f"({exc}); compute first") from None
    if _UNKNOWN and _has_unknown(args, kwargs):
        _defer(result, handler, func, args, kwargs)
    return result


#: node -> (output position, handler, func, args, kwargs, {id(tracked operand): node at capture}): maps recorded
#: with unknown sizes, rebuilt once the sizes are known
_DEFERRED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _has_unknown(args, kwargs, depth=0):
    for a in itertools.chain(args, kwargs.values()) if kwargs is not None else args:
        r = _raw(a) if isinstance(a, TrackedArray) else a
        if is_lazy(r) and _nan_shape(r.shape):
            return True
        if depth < 3 and isinstance(a, (list, tuple)) and _has_unknown(a, None, depth + 1):
            return True
    return False


def _operands(obj, out, depth=0):
    if isinstance(obj, TrackedArray):
        out[id(obj)] = obj.node
    elif depth < 4 and isinstance(obj, (list, tuple)):
        for v in obj:
            _operands(v, out, depth + 1)
    elif isinstance(obj, dict):
        for v in obj.values():
            _operands(v, out, depth + 1)
    return out


def _defer(result, handler, func, args, kwargs):
    """Remember how to rebuild the maps of ``result`` (recorded while some operand's size was unknown)."""
    nodes = _operands((args, kwargs), {})
    outs = result if isinstance(result, (list, tuple)) else [result]
    for j, r in enumerate(outs):
        if isinstance(r, TrackedArray):
            _DEFERRED[r.node] = (j if isinstance(result, (list, tuple)) else None, handler, func, args, kwargs, nodes)


def _standin(obj, nodes, depth=0):
    """``obj`` with every lazy operand replaced by zeros of its (now known) shape: tracked ones keep the node
    they had at capture."""
    if isinstance(obj, TrackedArray):
        d = obj._data
        if is_lazy(d):
            d = np.broadcast_to(np.zeros((), d.dtype), tuple(int(v) for v in _known(d).shape))
        return _wrap(d, nodes[id(obj)])
    if is_lazy(obj):
        return np.broadcast_to(np.zeros((), obj.dtype), tuple(int(v) for v in _known(obj).shape))
    if depth < 4 and isinstance(obj, list):
        return [_standin(v, nodes, depth + 1) for v in obj]
    if depth < 4 and isinstance(obj, tuple):
        return tuple(_standin(v, nodes, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return {k: _standin(v, nodes, depth + 1) for k, v in obj.items()}
    return obj


def _rebuild(node):
    """Record again, on zeros of the known shapes, an operation captured with unknown sizes; keep its map."""
    import warnings
    j, handler, func, args, kwargs, nodes = _DEFERRED.pop(node)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        r = handler(func, *_standin(args, nodes), **_standin(kwargs, nodes))
    r = r[j] if j is not None else r
    node.map = r.node.map


_UREDUCE = {np.add: np.sum, np.multiply: np.prod, np.maximum: np.max, np.minimum: np.min,
            np.logical_and: np.all, np.logical_or: np.any}
_UACCUMULATE = {np.add: np.cumsum, np.multiply: np.cumprod}


def dispatch_ufunc(ufunc, method, inputs, kwargs):
    """Ufunc methods with a lazy operand: ``reduce`` and ``accumulate`` become the dask functions
    (``np.add.reduce`` is ``np.sum``); ``at`` and ``reduceat`` raise :class:`LazyUnsupportedError`."""
    if method in ("__call__", "outer"):
        return NOT_LAZY
    if not any(_lazy_operand(x) for x in inputs):
        return NOT_LAZY
    kw = dict(kwargs)
    for k in ("out", "where", "initial"):
        v = kw.pop(k, None)
        if v is not None and not (k == "where" and v is True):
            raise LazyUnsupportedError(f"{ufunc.__name__}.{method}(..., {k}=) is not supported on dask arrays")
    axis = kw.pop("axis", 0)
    if method == "reduce" and ufunc in _UREDUCE:
        f = _UREDUCE[ufunc]
        if f not in (np.sum, np.prod):
            kw.pop("dtype", None)
        return f(inputs[0], axis=axis, **kw)
    if method == "accumulate" and ufunc in _UACCUMULATE:
        return _UACCUMULATE[ufunc](inputs[0], axis=axis, **kw)
    raise LazyUnsupportedError(f"{ufunc.__name__}.{method} is not supported on dask arrays")


# ------------------------------------------------------------------------------------ index arrays

def _known(x):
    """``x`` with known chunk sizes (computed in place, on query, when unknown)."""
    if is_lazy(x) and _nan_shape(x.shape):
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
    x = _known(x)
    return _da().map_blocks(_index_block, dtype=np.int64, chunks=x.chunks, offset=int(offset),
                            full=tuple(int(d) for d in x.shape), meta=np.empty((0,) * x.ndim, np.int64))


def _zeros_like(x):
    if not is_lazy(x):
        return np.zeros(np.shape(x), np.int64)
    x = _known(x)
    return _da().zeros(x.shape, chunks=x.chunks, dtype=np.int64)


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
                _known(d)
            ops = [_known(v) for v in self._operands]
            ixs, off, shapes = [], 0, []
            for v, t in zip(ops, self._tracked):
                if t:
                    ixs.append(index_like(v, off))
                    n = math.prod(np.shape(v))
                    shapes.append(np.shape(v))
                    off += n
                else:
                    ixs.append(_zeros_like(v) if np.ndim(v) else 0)
            s = self._replay(ixs)
            s = _known(s) if is_lazy(s) else np.asarray(s)
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
            return np.asarray(_dask_compute(s.vindex[coords])[0]).astype(np.int64, copy=False)
        if need:
            vals = _dask_compute(*[s.blocks[k] for k in need])
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
        hit = _da().isin(s, targets)
        coords = np.asarray(_da().argwhere(hit).compute())
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


def _dask_compute(*xs):
    import dask
    return dask.compute(*xs)


def _gather(op, result, operands, replay, controls=(), deps=(), detail="", point=None):
    """Wrap a lazy class-C result: a :class:`DaskGatherMap` from the tracked operands, plus control maps
    ``[(tracked control array, map)]``."""
    tracked = [_is_t(o) for o in operands]
    data_parents = [o.node for o in operands if _is_t(o)]
    gm = DaskGatherMap(result.shape, [_raw(o) for o in operands], tracked, replay, deps, point)
    return wrap_gather(op, result, gm, data_parents, controls, detail)


def _placed(sel, pos, out_ndim):
    """``sel`` (the index cells of a selection block) placed at output axes ``pos ..`` of an
    ``out_ndim``-dimensional result: None elsewhere (for broadcasting)."""
    return sel[(None,) * pos + (slice(None),) * sel.ndim + (None,) * (out_ndim - pos - sel.ndim)]


def _control_map(result, comp_raw, select, pos, data_map):
    """A control map from each cell of ``result`` to the index cell that chose it: ``select(ix)`` picks the
    cells of the index array's index array in output order, placed at output axis ``pos``."""
    out_ndim = len(result.shape)

    def replay(ixs):
        sel = select(ixs[0])
        shape = data_map.lazy_src().shape
        e = _placed(sel, pos, out_ndim)
        e = _known(e) if is_lazy(e) else e
        return _da().broadcast_to(e, shape) if is_lazy(e) else np.broadcast_to(e, shape)

    return DaskGatherMap(result.shape, [comp_raw], [True], replay, deps=[comp_raw] if is_lazy(comp_raw) else [])


# ------------------------------------------------------------------------------- class C handlers

_HANDLERS: dict = {}


def _implements(*funcs):
    def deco(f):
        for fn in funcs:
            if fn is not None:
                _HANDLERS[fn] = f
        return f
    return deco


def _mask_of(c):
    r = _raw(c)
    return r.astype(bool) if is_lazy(r) else np.array(r, dtype=bool, copy=True)


if hasattr(np, "astype"):
    @_implements(np.astype)
    def _astype(func, x, dtype, /, *, copy=True, **kw):
        from ..buckets.common import elementwise_call
        return elementwise_call("astype", [x], lambda vs: vs[0].astype(dtype, copy=copy))


@_implements(np.copy)
def _copy(func, a, order="K", subok=False):
    from ..buckets.common import elementwise_call
    return elementwise_call("copy", [a], lambda vs: vs[0].copy())


@_implements(np.ravel)
def _ravel(func, a, order="C"):
    if order not in ("C", "K", "A", None) or not _is_t(a):
        raise LazyUnsupportedError(f"np.ravel(order={order!r}) is not supported on dask arrays")
    return a.ravel()


@_implements(np.array_split, np.split)
def _split(func, ary, indices_or_sections, axis=0):
    """The pieces are basic slices of ``ary`` (numpy's own rule for the boundaries)."""
    n = ary.shape[axis]
    if np.ndim(indices_or_sections) == 0:
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.")
        if func is np.split and n % sections:
            raise ValueError("array split does not result in an equal division")
        each, extra = divmod(n, sections)
        bounds = np.cumsum([0] + extra * [each + 1] + (sections - extra) * [each]).tolist()
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    ax = axis % ary.ndim
    return [ary[(slice(None),) * ax + (slice(bounds[i], bounds[i + 1]),)] for i in range(len(bounds) - 1)]


@_implements(np.where)
def _where(func, condition, *xy):
    if not xy:
        return np.nonzero(condition)
    if len(xy) != 2:
        raise ValueError("either both or neither of x and y should be given")
    x, y = xy
    cond = _mask_of(condition)
    result = _da().where(cond, _raw(x), _raw(y))
    ctrl = [(condition, ElementwiseMap(result.shape, [condition.shape]))] if _is_t(condition) else []
    shapes = [np.shape(_raw(x)), np.shape(_raw(y))]
    tracked = [_is_t(x), _is_t(y)]

    def point(m, coords):
        """The index values at output cells ``coords``: only the box of the condition around them is computed
        (an elementwise choice), and the operands' indices are index arithmetic."""
        lo = [int(c.min()) for c in coords]
        box = tuple(slice(lo_, int(c.max()) + 1) for lo_, c in zip(lo, coords))
        local = tuple(c - lo_ for c, lo_ in zip(coords, lo))
        if is_lazy(cond):
            cb = np.asarray(_dask_compute(_da().broadcast_to(cond, m.out_shape)[box])[0])
        else:
            cb = np.broadcast_to(cond, m.out_shape)[box]
        out, k = [], 0
        for shape, t in zip(shapes, tracked):
            if not t:
                out.append(np.zeros(coords[0].shape if coords else (), np.int64))
                continue
            off = len(m.out_shape) - len(shape)
            pc = [coords[off + j] if d != 1 else np.zeros_like(coords[0]) for j, d in enumerate(shape)]
            out.append(m.offsets[k] + 1 + (np.ravel_multi_index(pc, shape) if shape else 0))
            k += 1
        return np.where(cb[local], out[0], out[1]).astype(np.int64, copy=False)

    return _gather("where", result, [x, y], lambda ixs: _da().where(cond, ixs[0], ixs[1]), ctrl,
                   deps=[cond] if is_lazy(cond) else [], point=point)


@_implements(np.compress)
def _compress(func, condition, a, axis=None, out=None):
    if out is not None:
        raise LazyUnsupportedError("np.compress(..., out=) is not supported on dask arrays")
    cond = _mask_of(condition)
    result = _da().compress(cond, _raw(a), axis=axis)
    nd = np.ndim(_raw(a))
    ax = 0 if axis is None else axis % nd
    data = _gather("compress", result, [a], lambda ixs: _da().compress(cond, ixs[0], axis=axis),
                   deps=[cond] if is_lazy(cond) else [])
    if not _is_t(condition):
        return data
    dm = data.node.map
    cm = _control_map(result, _raw(condition), lambda ix: _da().asarray(ix)[cond], ax, dm)
    return _with_control(data, "compress", condition, cm)


def _with_control(data, op, control, cm):
    node = data.node
    parents = list(node.parents) + [control.node]
    m = UnionMap(node.shape, [p.shape for p in parents],
                 [(node.map, tuple(range(len(node.parents)))), (cm, (len(node.parents),))])
    return _wrap(data._data, make_node(op, node.shape, m, parents, control=(len(parents) - 1,)))


@_implements(np.extract)
def _extract(func, condition, arr):
    cond = _mask_of(condition)
    result = _da().extract(cond, _raw(arr))
    data = _gather("extract", result, [arr], lambda ixs: _da().extract(cond, ixs[0]),
                   deps=[cond] if is_lazy(cond) else [])
    if not _is_t(condition):
        return data
    cm = _control_map(result, _raw(condition), lambda ix: _da().asarray(ix).ravel()[cond.ravel()], 0,
                      data.node.map)
    return _with_control(data, "extract", condition, cm)


@_implements(np.take)
def _take(func, a, indices, axis=None, out=None, mode="raise"):
    if out is not None or mode != "raise":
        raise LazyUnsupportedError("np.take(..., out=, mode=) is not supported on dask arrays")
    ind = _raw(indices)
    ind = ind if is_lazy(ind) else np.array(ind, copy=True)
    result = _da().take(_raw(a), ind, axis=axis)
    data = _gather("take", result, [a], lambda ixs: _da().take(ixs[0], ind, axis=axis),
                   deps=[ind] if is_lazy(ind) else [])
    if not _is_t(indices):
        return data
    pos = 0 if axis is None else axis % np.ndim(_raw(a))
    cm = _control_map(result, ind, lambda ix: ix, pos, data.node.map)
    return _with_control(data, "take", indices, cm)


@_implements(np.nonzero, np.argwhere, np.flatnonzero)
def _positions(func, a):
    v = _raw(a)
    result = func(v)
    if not _is_t(a):
        return result
    nz = v.ravel() != 0

    def flat_src(ixs):
        return _da().asarray(ixs[0]).ravel()[nz]

    if func is np.nonzero:
        return tuple(_gather("nonzero", r, [a], flat_src, deps=[nz]) for r in result)
    if func is np.argwhere:
        def replay(ixs):
            s = _known(flat_src(ixs))
            return _da().broadcast_to(s[:, None], (s.shape[0], v.ndim))
        return _gather("argwhere", result, [a], replay, deps=[nz])
    return _gather("flatnonzero", result, [a], flat_src, deps=[nz])


@_implements(np.unique)
def _unique(func, ar, return_index=False, return_inverse=False, return_counts=False, axis=None, **kwargs):
    v = _raw(ar)
    if axis is not None or kwargs:
        raise LazyUnsupportedError("np.unique with axis= or other options is not supported on dask arrays")
    res = _da().unique(v, return_index=True, return_inverse=return_inverse, return_counts=return_counts)
    if not _is_t(ar):
        out = [res[0]] + ([res[1]] if return_index else []) + list(res[2:])
        return tuple(out) if len(out) > 1 else out[0]
    first = res[1]
    outs = []

    def first_src(ixs):
        return _known(first) + 1

    outs.append(_gather("unique", res[0], [ar], first_src, deps=[first]))
    if return_index:
        outs.append(_gather("unique.index", res[1], [ar], first_src, deps=[first]))
    j = 2
    if return_inverse:
        inv = res[j]
        j += 1
        outs.append(_gather("unique.inverse", inv, [ar], lambda ixs: _da().asarray(ixs[0]).reshape(inv.shape)
                            if np.ndim(ixs[0]) != len(inv.shape) else ixs[0]))
    if return_counts:
        c = res[j]
        reason = "unique counts: each count derives from every equal value (not recorded lazily)"
        warn_partial("np.unique(return_counts=True) on a dask array", reason)
        outs.append(_wrap(c, make_node("unique.counts", c.shape, OpaqueMap(c.shape, [ar.shape]), [ar.node],
                                       partial=reason)))
    return tuple(outs) if len(outs) > 1 else outs[0]


# ------------------------------------------------------------------------------------ indexing

def _key_has_lazy(key):
    for k in key if isinstance(key, tuple) else (key,):
        if _lazy_operand(k):
            return True
    return False


def lazy_key(d, key):
    """True when indexing ``d`` with ``key`` goes through this module: the key holds a lazy array, or ``d``
    is lazy (non-basic keys only reach here)."""
    return _key_has_lazy(key) or (d is not None and type(d) is not np.ndarray and is_lazy(d))


def _single_advanced(rk, ndim):
    """(position in the key, output axis where its block goes) of the only array in a key of slices and
    Ellipsis around it; None for other keys."""
    arrays = [i for i, k in enumerate(rk) if not (k is None or k is Ellipsis or isinstance(k, slice))]
    if len(arrays) != 1:
        return None
    p = arrays[0]
    k = rk[p]
    if isinstance(k, (int, np.integer)) or np.ndim(k) == 0:
        return None
    consumed = sum(np.ndim(k) if getattr(k, "dtype", None) == bool else 1 if k is not None and k is not Ellipsis
                   else 0 for k in rk)
    out_axis = 0
    for q in rk[:p]:
        if q is Ellipsis:
            out_axis += ndim - consumed
        elif q is None or isinstance(q, slice):
            out_axis += 1
    return p, out_axis


def getitem(x, key):
    """``x[key]`` for a non-basic key when ``x`` or the key is lazy: dask indexes, whence records a
    :class:`DaskGatherMap` (and control maps to tracked key arrays)."""
    from ..tracked import control_parts as _control_parts, key_repr as _key_repr
    d = x._data
    if not isinstance(key, tuple):
        key = (key,)
    if any(type(k) is np.ndarray and k.ndim == 0 and k.dtype.kind in "iu" for k in key):
        # a 0-d integer array indexes like an integer (numpy copies where an int gives a view: same lineage)
        key = tuple(int(k) if type(k) is np.ndarray and k.ndim == 0 and k.dtype.kind in "iu" else k for k in key)
        return x[key]
    rk, comps = [], []
    for i, k in enumerate(key):
        if isinstance(k, TrackedArray):
            comps.append((i, k))
            rk.append(k._data if _is_lazy_t(k) else np.array(k._data, copy=True))
        elif is_lazy(k):
            rk.append(k)
        elif isinstance(k, np.ndarray):
            rk.append(np.array(k, copy=True))
        elif isinstance(k, (list, range)):
            rk.append(np.asarray(k))
        else:
            rk.append(k)
    rk = tuple(rk)
    kk = rk if len(rk) != 1 else rk[0]
    if not is_lazy(d):
        d = _da().from_array(d, chunks=-1)
    result = d[kk]
    deps = [k for k in rk if is_lazy(k)]
    gm = DaskGatherMap(result.shape, [d], [True], lambda ixs: ixs[0][kk], deps)
    detail = _key_repr(rk)
    if not comps:
        return _wrap(result, make_node("getitem", result.shape, gm, [x.node], detail=detail))
    parts = [(gm, (0,))]
    if not deps and not _nan_shape(result.shape) and not _nan_shape(x.shape):
        parts += _control_parts(rk, x.ndim, result.shape, comps, 1)
    else:
        adv = _single_advanced(rk, x.ndim)
        if adv is None or len(comps) != 1:
            raise LazyUnsupportedError(
                "indexing a dask array with a tracked lazy index array is supported for one index array among "
                "slices (x[mask], x[:, idx]); compute the index first for other keys")
        p, out_axis = adv
        k = rk[p]
        if getattr(k, "dtype", None) == bool:
            def select(ix, k=k):
                return _da().asarray(ix)[k]
        else:
            def select(ix):  # type: ignore[misc]  # one helper per branch
                return ix
        parts.append((_control_map(result, k, select, out_axis, gm), (1,)))
    parents = [x.node] + [c.node for _, c in comps]
    m = UnionMap(result.shape, [p.shape for p in parents], parts)
    m.out_shape = tuple(result.shape)
    return _wrap(result, make_node("getitem", result.shape, m, parents, control=range(1, len(parents)),
                                   detail=detail))


def setitem(x, key, value):
    """``x[mask] = value`` with a lazy boolean mask of ``x``'s shape and a scalar or 0-d value: dask writes,
    whence records the written cells through a :class:`DaskGatherMap` (values and lineage of arrays taken from
    ``x`` earlier do not change: dask arrays are values)."""
    k = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    kr = _raw(k)
    vr = _raw(value)
    if isinstance(key, tuple) and len(key) != 1 or not is_lazy(kr) or getattr(kr, "dtype", None) != bool \
            or tuple(kr.shape) != tuple(x.shape) or np.ndim(vr) != 0:
        raise LazyUnsupportedError("writing into a tracked array through a lazy index is supported for a boolean "
                                   "mask of the array's shape and a scalar value (x[mask] = v)")
    d = x._data
    if not is_lazy(d):
        raise LazyUnsupportedError("writing into a numpy-backed tracked array through a lazy mask: compute the "
                                   "mask first")
    old = x.node
    new = d.copy()
    new[kr] = vr
    operands = [x] + ([value] if _is_t(value) else [])

    def replay(ixs):
        v = ixs[1] if len(ixs) > 1 else 0
        return _da().where(kr, v, ixs[0])

    gm = DaskGatherMap(d.shape, [_raw(o) for o in operands], [True] * len(operands), replay, deps=[kr])
    parents = [old] + ([value.node] if _is_t(value) else [])
    m, control = gm, ()
    if _is_t(k):
        cm = DaskGatherMap(d.shape, [kr], [True], lambda ixs: _da().where(kr, ixs[0], 0), deps=[kr])
        parts = [(gm, tuple(range(len(parents)))), (cm, (len(parents),))]
        parents.append(k.node)
        m = UnionMap(d.shape, [p.shape for p in parents], parts)
        control = (len(parents) - 1,)
    x._data = new
    x._node_ = make_node("setitem", d.shape, m, parents, control=control)
    _ARRAYS[x._node_] = new
    x._version += 1


# ------------------------------------------------------------------------------ unknown shapes

def _upstream(node):
    from ..query import upstream_nodes as up
    return up(node)


def _map_nan(m):
    for attr in ("out_shape", "in_shape"):
        s = getattr(m, attr, None)
        if s is not None and _nan_shape(s):
            return True
    return any(_nan_shape(s) for s in getattr(m, "parent_shapes", ()) or ())


def _patch(m, out_shape, pshapes):
    """Complete the shapes recorded in map ``m`` (NaN at capture) from the resolved node shapes."""
    if isinstance(m, DaskGatherMap):
        m.lazy_src()
        return
    if isinstance(m, UnionMap):
        m.out_shape = tuple(out_shape)
        m.parent_shapes = tuple(pshapes)
        for sub, ix in m.parts:
            _patch(sub, out_shape, [pshapes[i] for i in ix])
        return
    if getattr(m, "in_shape", None) is not None and _nan_shape(m.in_shape):
        if len(pshapes) == 1 and len(pshapes[0]) == len(m.in_shape):
            m.in_shape = tuple(pshapes[0])
    if hasattr(m, "out_shape"):
        m.out_shape = tuple(out_shape)
    if getattr(m, "parent_shapes", None) is not None and len(m.parent_shapes) == len(pshapes):
        m.parent_shapes = tuple(tuple(s) for s in pshapes)
    if isinstance(m, GatherMap):
        offs = [0]
        for s in m.parent_shapes:
            offs.append(offs[-1] + math.prod(s))
        m.offsets = offs


def resolve_shapes(node):
    """Compute the unknown chunk sizes upstream of ``node`` (on the first query that meets them) and
    complete the shapes held by the nodes and maps there.  Run by every query (a hook of
    :mod:`whence.query`); costs nothing when no shape was unknown.

    Raises
    ------
    whence.errors.LineageQueryError
        When a shape cannot be completed (an operation whose map depends on a shape dask did not know).
    """
    if not _EVER_UNKNOWN[0] or node in _COMPLETE:
        return
    up = _upstream(node)
    todo = [n for n in up if n in _UNKNOWN]
    for n in todo:
        a = _ARRAYS.get(n)
        if a is None:
            raise LineageQueryError(f"the shape of {n} is unknown (a data-dependent size on dask) and its values "
                                    f"are gone")
        _known(a)
        n.shape = tuple(int(d) for d in a.shape)
        _UNKNOWN.discard(n)
    for n in up:
        if n in _DEFERRED:
            _rebuild(n)
        if n.map is not None and n.parents and (_map_nan(n.map) or isinstance(n.map, (DaskGatherMap, UnionMap))):
            _patch(n.map, n.shape, [p.shape for p in n.parents])
            if _map_nan(n.map):
                raise LineageQueryError(
                    f"whence cannot complete the shapes of {n.op!r} after a data-dependent size on a dask array; "
                    f"call x.dask.compute_chunk_sizes() before this operation")
    for n in up:  # everything above ``node`` is complete now: later queries through them skip the checks
        if n not in _UNKNOWN and n not in _DEFERRED:
            _COMPLETE.add(n)


def _register_hooks():
    from .. import query
    if resolve_shapes not in query.HOOKS["prepare"]:
        query.HOOKS["prepare"].append(resolve_shapes)
    if relation_to_parquet not in query.HOOKS["to_parquet"]:
        query.HOOKS["to_parquet"].append(relation_to_parquet)


# --------------------------------------------------------------------------- relation to Parquet

def _parts(m):
    if isinstance(m, UnionMap):
        out = []
        for sub, ix in m.parts:
            out.extend((s, tuple(ix[i] for i in sx)) for s, sx in _parts(sub))
        return out
    return [(m, tuple(range(len(m.parent_shapes))))]


def _chunk_boxes(chunks):
    """(block number in C order, lo, hi inclusive) of every block of a chunk grid."""
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) if len(c) else np.zeros(0, int) for c in chunks]
    for num, idx in enumerate(itertools.product(*[range(len(c)) for c in chunks])):
        lo = tuple(int(starts[a][i]) for a, i in enumerate(idx))
        hi = tuple(int(starts[a][i] + chunks[a][i] - 1) for a, i in enumerate(idx))
        yield num, lo, hi


def _write_rects(fname, parent_ids, rows, boxes):
    """Rectangles ``rows`` of one operation clipped to each output chunk in ``boxes``: one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    cols = {k: [] for k in ("chunk", "parent_id", "out_lo", "out_hi", "lo_ax", "lo_mul", "lo_off", "hi_ax",
                            "hi_mul", "hi_off")}
    cells = 0
    for b, (bi, lo, hi) in enumerate(boxes):
        for row in rows:
            parent, olo, ohi = row[0], row[1], row[2]
            if row[3] == (-2,):  # a flat identity (reshape): one row over flat indices, kept in the first chunk
                if b:
                    continue
                clo, chi = olo, ohi
            else:
                clo = tuple(max(a, c) for a, c in zip(olo, lo))
                chi = tuple(min(a, c) for a, c in zip(ohi, hi))
                if any(a > c for a, c in zip(clo, chi)):
                    continue
            cols["chunk"].append(int(bi))
            cols["parent_id"].append(int(parent_ids[parent]))
            cols["out_lo"].append(list(clo))
            cols["out_hi"].append(list(chi))
            for name, v in zip(("lo_ax", "lo_mul", "lo_off", "hi_ax", "hi_mul", "hi_off"), row[3:]):
                cols[name].append([int(t) for t in v])
        cells += math.prod(h - l + 1 for l, h in zip(lo, hi))
    schema = pa.schema([("chunk", pa.int64()), ("parent_id", pa.int64())] +
                       [(k, pa.list_(pa.int64())) for k in list(cols)[2:]])
    pq.write_table(pa.table(cols, schema=schema), fname)
    return cells


def _write_index_block(fname, block, lo, shape, parent_ids, offsets):
    """One block of a source-index array as (out, parent_id, src) rows: output flat index, parent op id,
    flat index in that parent (constant cells left out)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    b = np.asarray(block).astype(np.int64, copy=False)
    grids = np.meshgrid(*[np.arange(l, l + n, dtype=np.int64) for l, n in zip(lo, b.shape)], indexing="ij") \
        if b.ndim else []
    out = np.ravel_multi_index(tuple(g.ravel() for g in grids), shape) if b.ndim else np.zeros(1, np.int64)
    v = b.ravel()
    keep = v > 0
    out, v = out[keep], v[keep] - 1
    k = np.searchsorted(np.asarray(offsets[1:]), v, side="right")
    pid = np.asarray(parent_ids, np.int64)[k]
    src = v - np.asarray(offsets, np.int64)[k]
    pq.write_table(pa.table({"out": out, "parent_id": pid, "src": src}), fname)
    return int(b.size)


def relation_to_parquet(rel, path, pairs=False):
    """Write the relation of an array computed from dask arrays as a partitioned Parquet dataset.

    Called by :meth:`whence.query.Relation.to_parquet` (returns None, and the numpy writer runs, when no
    operation of the relation is lazy).  The dataset, chunk by chunk and written in parallel by the active
    dask scheduler (the workers of a ``dask.distributed`` cluster; a multi-node cluster needs ``path`` on a
    file system every worker sees):

    ``ops.parquet``
        one row per operation, as for numpy (``chunks``: the output chunk sizes per axis);
    ``rectangles/op_id=<id>/part.parquet``
        the ProvRC rectangles of every class A/B operation, clipped to each output chunk (column ``chunk``:
        the block index);
    ``index_arrays/op_id=<id>/block-<i>.parquet``
        the gathered cells of every class C operation, one file per output block: ``out`` (flat output
        index), ``parent_id``, ``src`` (flat index in that parent).

    Returns
    -------
    dict
        ``{"files": [...], "cells": output cells covered, "ops": operations written}``.

    Examples
    --------
    >>> import tempfile, numpy as np, dask.array as da, whence as wh
    >>> wh.reset()
    >>> x = wh.track(da.arange(8.0, chunks=4), name="x")
    >>> y = np.cumsum(x[x > 2])
    >>> out = wh.lineage(y).to_parquet(tempfile.mkdtemp())
    >>> sorted({f.split(os.sep)[-3] for f in out["files"] if "op_id=" in f})
    ['index_arrays', 'rectangles']
    """
    if pairs or not any(n in _ARRAYS and n.map is not None for n in rel.nodes):
        return None
    import dask
    import pyarrow as pa
    import pyarrow.parquet as pq
    os.makedirs(path, exist_ok=True)
    nodes = rel.nodes
    chunks_of = {n.id: (_ARRAYS[n].chunks if n in _ARRAYS else tuple((d,) for d in n.shape)) for n in nodes}
    f = os.path.join(path, "ops.parquet")
    pq.write_table(pa.table({
        "id": [n.id for n in nodes], "op": [n.op if not n.is_source else "source" for n in nodes],
        "source": [n.name for n in nodes], "shape": [list(n.shape) for n in nodes],
        "parents": [[p.id for p in n.parents] for n in nodes], "control": [sorted(n.control) for n in nodes],
        "map": [type(n.map).__name__ if n.map is not None else None for n in nodes],
        "completeness": ["FULL" if not n.partial else "PARTIAL" for n in nodes],
        "reason": [n.partial for n in nodes],
        "chunks": [[list(map(int, c)) for c in chunks_of[n.id]] for n in nodes]}), f)
    files = [f]
    tasks = []
    index_cells = 0
    delayed = dask.delayed
    for n in nodes:
        if n.map is None or not n.parents:
            continue
        pids = [p.id for p in n.parents]
        chunks = chunks_of[n.id]
        rect_rows = []
        for m, ix in _parts(n.map):
            rows = m.rectangles()
            if rows is not None:
                rect_rows.extend((ix[r[0]],) + tuple(r[1:]) for r in rows)
                continue
            if isinstance(m, GatherMap):
                s = m.lazy_src() if isinstance(m, DaskGatherMap) else m.src()
                if not is_lazy(s):
                    s = _da().from_array(np.asarray(s), chunks=chunks if not _nan_shape(n.shape) else -1)
                d = os.path.join(path, "index_arrays", f"op_id={n.id}")
                os.makedirs(d, exist_ok=True)
                sub_pids = [pids[i] for i in ix]
                blocks = s.to_delayed().ravel()
                index_cells += math.prod(s.shape) if not _nan_shape(s.shape) else 0
                for b, (bi, lo, hi) in zip(blocks, _chunk_boxes(s.chunks)):
                    fn = os.path.join(d, f"block-{bi}.parquet")
                    files.append(fn)
                    tasks.append(delayed(_write_index_block)(fn, b, lo, tuple(s.shape), sub_pids, m.offsets))
                continue
            raise LineageQueryError(f"the relation of {n.op!r} ({type(m).__name__}) cannot be written chunk by "
                                    f"chunk")
        if rect_rows:
            d = os.path.join(path, "rectangles", f"op_id={n.id}")
            os.makedirs(d, exist_ok=True)
            boxes = list(_chunk_boxes(chunks))
            per = max(1, math.ceil(len(boxes) / 64))
            for j in range(0, len(boxes), per):
                fn = os.path.join(d, f"part-{j // per}.parquet")
                files.append(fn)
                tasks.append(delayed(_write_rects)(fn, pids, rect_rows, boxes[j:j + per]))
    est = export_estimate(index_cells, len(tasks))
    if est["bytes"] >= ESTIMATE_ABOVE_BYTES and _progress_enabled():
        print(f"whence: writing the lineage relation to {path}: about {_human(est['bytes'])} "
              f"({index_cells:.3g} index-array cells), about {est['seconds']:.0f} s with {est['threads']} "
              f"thread(s); ask about cells with wh.backward instead when the whole relation is not needed",
              file=sys.stderr, flush=True)
    from ..progress import progress_bar
    counts = []
    with progress_bar(len(tasks), "relation to Parquet", unit="chunks") as bar:
        step = max(1, 4 * est["threads"])  # batches keep every worker busy and let the bar move
        for j in range(0, len(tasks), step):
            counts.extend(dask.compute(*tasks[j:j + step]))
            bar.update(len(tasks[j:j + step]))
    return {"files": files, "cells": int(sum(counts)), "ops": sum(1 for n in nodes if n.map is not None),
            "estimate": est}


#: Above this estimated size, :func:`relation_to_parquet` says how big and how long before it writes.
ESTIMATE_ABOVE_BYTES = 256 * 2**20
#: Measured: the 1e9-cell example of the README wrote 4.0 GB of index arrays in 121 s on 2 cores.
_BYTES_PER_INDEX_CELL = 4.0
_INDEX_CELLS_PER_THREAD_SECOND = 4.1e6


def _progress_enabled():
    return os.environ.get("WHENCE_PROGRESS", "1") not in ("0", "false", "no", "off")


def _human(nbytes):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes:.0f} B"
        nbytes /= 1000


def _threads():
    """Threads of the active dask scheduler: the cluster's when a distributed client is the default."""
    try:
        from distributed import default_client
        return max(1, sum(default_client().nthreads().values()))
    except (ImportError, ValueError):
        return os.cpu_count() or 1


def export_estimate(index_cells, tasks=0):
    """The size and time of a relation export with ``index_cells`` cells of class-C index arrays.

    Rectangles (classes A and B) are a few rows per chunk and negligible; index arrays take about 4 bytes per
    cell in Parquet and are written at about 4e6 cells per second per thread (measured on the 1e9-cell
    pipeline of the README: 4.0 GB in 121 s on 2 cores).

    >>> est = export_estimate(1e9)
    >>> _human(est["bytes"])
    '4.0 GB'
    """
    threads = _threads()
    return {"bytes": index_cells * _BYTES_PER_INDEX_CELL, "index_cells": int(index_cells), "tasks": tasks,
            "threads": threads, "seconds": index_cells / (_INDEX_CELLS_PER_THREAD_SECOND * threads)}


def register_duckdb(con, path, prefix="whence_"):
    """Create DuckDB views over a dataset written by :func:`relation_to_parquet`: ``<prefix>ops``,
    ``<prefix>rectangles`` and ``<prefix>index_arrays`` (``op_id`` from the partition directories).

    Examples
    --------
    >>> import tempfile, duckdb, numpy as np, dask.array as da, whence as wh
    >>> wh.reset()
    >>> x = wh.track(da.arange(6.0, chunks=3), name="x")
    >>> d = tempfile.mkdtemp()
    >>> _ = wh.lineage(np.where(x > 2, x, 0.0)).to_parquet(d)
    >>> con = duckdb.connect()
    >>> register_duckdb(con, d)
    >>> con.sql("SELECT out, src FROM whence_index_arrays ORDER BY out").fetchall()
    [(3, 3), (4, 4), (5, 5)]
    """
    p = os.path.abspath(path)
    con.execute(f"CREATE OR REPLACE VIEW {prefix}ops AS SELECT * FROM read_parquet('{p}/ops.parquet')")
    for name in ("rectangles", "index_arrays"):
        files = os.path.join(p, name, "*", "*.parquet")
        if os.path.isdir(os.path.join(p, name)) and any(os.scandir(os.path.join(p, name))):
            con.execute(f"CREATE OR REPLACE VIEW {prefix}{name} AS SELECT * FROM "
                        f"read_parquet('{files}', hive_partitioning = true)")
        else:
            con.execute(f"CREATE OR REPLACE VIEW {prefix}{name} AS SELECT NULL::BIGINT AS op_id WHERE false")


_register_hooks()
