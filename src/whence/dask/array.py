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
import weakref

import numpy as np

from ..buckets.common import is_t as _is_t, raw as _raw
from ..buckets.registry import backend_handlers, implements_for
from .. import compose as _compose
from ..errors import LineageQueryError, WhenceError
from ..graph import new_source
from ..maps import ElementwiseMap, GatherMap, OpaqueMap, UnionMap
from .gather import (ARRAYS, DaskGatherMap, control_map, dask_array, dask_compute, gather, has_unknown_size,
                     known_sizes)
from .parquet_export import (ESTIMATE_ABOVE_BYTES, export_estimate, register_duckdb,  # noqa: F401  (re-exported)
                             relation_to_parquet)
from ..tracked import TrackedArray, NUMERIC_KINDS as _NUMERIC_KINDS, wrap as _wrap, is_lazy, make_node, warn_partial

__all__ = ["LazyUnsupportedError", "DaskGatherMap", "track", "is_lazy", "dask_implements", "relation_to_parquet",
           "register_duckdb", "resolve_shapes"]

#: returned by the dispatchers when no operand is lazy (the numpy path then runs)
NOT_LAZY = object()

#: node -> the dask array of its values (the table of :mod:`whence.dask.gather`)
_ARRAYS = ARRAYS
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
    if has_unknown_size(node.shape):
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
    module = dask_array()
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
        if is_lazy(r) and has_unknown_size(r.shape):
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
            d = np.broadcast_to(np.zeros((), d.dtype), tuple(int(v) for v in known_sizes(d).shape))
        return _wrap(d, nodes[id(obj)])
    if is_lazy(obj):
        return np.broadcast_to(np.zeros((), obj.dtype), tuple(int(v) for v in known_sizes(obj).shape))
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


# ------------------------------------------------------------------------------- class C handlers

#: the lazy rules of this backend, in the numpy function table (:func:`whence.buckets.registry.implements_for`):
#: only the functions whose lineage dask arrays record differently; the others run numpy's handlers
_HANDLERS = backend_handlers("dask")


def _implements(*funcs):
    return implements_for("dask", *funcs)


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
    result = dask_array().where(cond, _raw(x), _raw(y))
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
            cb = np.asarray(dask_compute(dask_array().broadcast_to(cond, m.out_shape)[box])[0])
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

    return gather("where", result, [x, y], lambda ixs: dask_array().where(cond, ixs[0], ixs[1]), ctrl,
                   deps=[cond] if is_lazy(cond) else [], point=point)


@_implements(np.compress)
def _compress(func, condition, a, axis=None, out=None):
    if out is not None:
        raise LazyUnsupportedError("np.compress(..., out=) is not supported on dask arrays")
    cond = _mask_of(condition)
    result = dask_array().compress(cond, _raw(a), axis=axis)
    nd = np.ndim(_raw(a))
    ax = 0 if axis is None else axis % nd
    data = gather("compress", result, [a], lambda ixs: dask_array().compress(cond, ixs[0], axis=axis),
                   deps=[cond] if is_lazy(cond) else [])
    if not _is_t(condition):
        return data
    dm = data.node.map
    cm = control_map(result, _raw(condition), lambda ix: dask_array().asarray(ix)[cond], ax, dm)
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
    result = dask_array().extract(cond, _raw(arr))
    data = gather("extract", result, [arr], lambda ixs: dask_array().extract(cond, ixs[0]),
                   deps=[cond] if is_lazy(cond) else [])
    if not _is_t(condition):
        return data
    cm = control_map(result, _raw(condition), lambda ix: dask_array().asarray(ix).ravel()[cond.ravel()], 0,
                      data.node.map)
    return _with_control(data, "extract", condition, cm)


@_implements(np.take)
def _take(func, a, indices, axis=None, out=None, mode="raise"):
    if out is not None or mode != "raise":
        raise LazyUnsupportedError("np.take(..., out=, mode=) is not supported on dask arrays")
    ind = _raw(indices)
    ind = ind if is_lazy(ind) else np.array(ind, copy=True)
    result = dask_array().take(_raw(a), ind, axis=axis)
    data = gather("take", result, [a], lambda ixs: dask_array().take(ixs[0], ind, axis=axis),
                   deps=[ind] if is_lazy(ind) else [])
    if not _is_t(indices):
        return data
    pos = 0 if axis is None else axis % np.ndim(_raw(a))
    cm = control_map(result, ind, lambda ix: ix, pos, data.node.map)
    return _with_control(data, "take", indices, cm)


@_implements(np.nonzero, np.argwhere, np.flatnonzero)
def _positions(func, a):
    v = _raw(a)
    result = func(v)
    if not _is_t(a):
        return result
    nz = v.ravel() != 0

    def flat_src(ixs):
        return dask_array().asarray(ixs[0]).ravel()[nz]

    if func is np.nonzero:
        return tuple(gather("nonzero", r, [a], flat_src, deps=[nz]) for r in result)
    if func is np.argwhere:
        def replay(ixs):
            s = known_sizes(flat_src(ixs))
            return dask_array().broadcast_to(s[:, None], (s.shape[0], v.ndim))
        return gather("argwhere", result, [a], replay, deps=[nz])
    return gather("flatnonzero", result, [a], flat_src, deps=[nz])


@_implements(np.unique)
def _unique(func, ar, return_index=False, return_inverse=False, return_counts=False, axis=None, **kwargs):
    v = _raw(ar)
    if axis is not None or kwargs:
        raise LazyUnsupportedError("np.unique with axis= or other options is not supported on dask arrays")
    res = dask_array().unique(v, return_index=True, return_inverse=return_inverse, return_counts=return_counts)
    if not _is_t(ar):
        out = [res[0]] + ([res[1]] if return_index else []) + list(res[2:])
        return tuple(out) if len(out) > 1 else out[0]
    first = res[1]
    outs = []

    def first_src(ixs):
        return known_sizes(first) + 1

    outs.append(gather("unique", res[0], [ar], first_src, deps=[first]))
    if return_index:
        outs.append(gather("unique.index", res[1], [ar], first_src, deps=[first]))
    j = 2
    if return_inverse:
        inv = res[j]
        j += 1
        outs.append(gather("unique.inverse", inv, [ar], lambda ixs: dask_array().asarray(ixs[0]).reshape(inv.shape)
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
        d = dask_array().from_array(d, chunks=-1)
    result = d[kk]
    deps = [k for k in rk if is_lazy(k)]
    gm = DaskGatherMap(result.shape, [d], [True], lambda ixs: ixs[0][kk], deps)
    detail = _key_repr(rk)
    if not comps:
        return _wrap(result, make_node("getitem", result.shape, gm, [x.node], detail=detail))
    parts = [(gm, (0,))]
    if not deps and not has_unknown_size(result.shape) and not has_unknown_size(x.shape):
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
                return dask_array().asarray(ix)[k]
        else:
            def select(ix):  # type: ignore[misc]  # one helper per branch
                return ix
        parts.append((control_map(result, k, select, out_axis, gm), (1,)))
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
        return dask_array().where(kr, v, ixs[0])

    gm = DaskGatherMap(d.shape, [_raw(o) for o in operands], [True] * len(operands), replay, deps=[kr])
    parents = [old] + ([value.node] if _is_t(value) else [])
    m, control = gm, ()
    if _is_t(k):
        cm = DaskGatherMap(d.shape, [kr], [True], lambda ixs: dask_array().where(kr, ixs[0], 0), deps=[kr])
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
        if s is not None and has_unknown_size(s):
            return True
    return any(has_unknown_size(s) for s in getattr(m, "parent_shapes", ()) or ())


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
    if getattr(m, "in_shape", None) is not None and has_unknown_size(m.in_shape):
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
        known_sizes(a)
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


_register_hooks()
