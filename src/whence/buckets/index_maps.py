"""Bucket A, index maps: moves, copies and elementwise functions whose lineage depends on shapes and
arguments only.

Moves are recorded in O(1): the function and its (frozen) non-data arguments.  When a query needs cells,
the same function is replayed on index arrays (``arange`` of each tracked operand, zeros for constants),
which gives, for every output cell, the input cell it was copied from.  The values and the lineage come
from one and the same function, so they cannot disagree.  Elementwise functions are recorded as
broadcasting maps.
"""

from __future__ import annotations

import numpy as np

from ..graph import Node
from ..maps import ElementwiseMap, GatherMap, ViewMap
from ..tracked import TrackedArray, wrap as _wrap, as_values, make_node, shares_buffer
from .common import elementwise_call, flatten_nested, freeze, is_t, raw, replay_call, wrap_result
from .registry import implements, signature

_linalg = np.linalg
_fft = np.fft


def _opt(mod, name):
    return getattr(mod, name, None)


def _first_and_rest(func, args, kwargs):
    """The data operand (first parameter) and a function replaying ``func`` on another value of it."""
    if args:
        a, rest, kw = args[0], freeze(args[1:]), freeze(kwargs)
        return a, lambda x: func(x, *rest, **kw)
    sig = signature(func)
    first = next(iter(sig.parameters))
    kw = dict(kwargs)
    a = kw.pop(first)
    kw = freeze(kw)
    return a, lambda x: func(**{first: x}, **kw)


@implements("A", np.reshape, np.transpose, _opt(np, "permute_dims"), _opt(np, "matrix_transpose"),
            _opt(_linalg, "matrix_transpose"), np.swapaxes, np.moveaxis, np.rollaxis, np.ravel, np.squeeze,
            np.expand_dims, np.flip, np.fliplr, np.flipud, np.rot90, np.roll, np.tile, np.repeat, np.resize,
            np.broadcast_to, np.diagonal, _opt(_linalg, "diagonal"), np.diag, np.diagflat, np.tril, np.triu,
            np.delete, _fft.fftshift, _fft.ifftshift, np.split, np.array_split, np.hsplit, np.vsplit,
            np.dsplit, _opt(np, "unstack"))
def _unary_move(func, *args, **kwargs):
    a, step = _first_and_rest(func, args, kwargs)
    if type(a) is TrackedArray:
        spec = _ANALYTIC.get(func)
        if spec is not None:
            d = a._data
            try:
                how, arg = spec(d, *args[1:], **kwargs)
            except Exception:
                how = None
            if how is not None:
                r = step(d)
                return view_result(func.__name__, a, r, ViewMap(r.shape, d.shape, how, arg), step)
    return replay_call(func.__name__, [a], lambda xs: step(xs[0]))


def view_result(op, a, r, vmap, step):
    """Wrap the result of an analytic move; register it as a view when it shares ``a``'s buffer."""
    t = _wrap(r, Node(op, r.shape, vmap, (a.node,)))
    if shares_buffer(r, a._data):
        root = a._root if a._root is not None else a
        t._root = root
        t._chain = a._chain + (step,)
        t._seen = root._version
    return t


def _reshape_spec(d, shape=None, order="C", **kw):
    return ("reshape", None) if order == "C" else (None, None)


def _ravel_spec(d, order="C"):
    return ("reshape", None) if order == "C" or (order in ("A", "K") and d.flags.c_contiguous) else (None, None)


def _transpose_spec(d, axes=None):
    nd = d.ndim
    perm = tuple(reversed(range(nd))) if axes is None else tuple(int(x) % nd for x in axes)
    return "transpose", perm


def _swapaxes_spec(d, a1, a2):
    nd = d.ndim
    perm = list(range(nd))
    a1, a2 = a1 % nd, a2 % nd
    perm[a1], perm[a2] = perm[a2], perm[a1]
    return "transpose", tuple(perm)


def _moveaxis_spec(d, source, destination):
    nd = d.ndim
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    src = [x % nd for x in src]
    dst = [x % nd for x in dst]
    order = [n for n in range(nd) if n not in src]
    for de, so in sorted(zip(dst, src)):
        order.insert(de, so)
    return "transpose", tuple(order)


def _mt_spec(d):
    nd = d.ndim
    perm = list(range(nd))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return "transpose", tuple(perm)


def _flip_spec(d, axis=None):
    nd = d.ndim
    axes = range(nd) if axis is None else ([axis] if isinstance(axis, (int, np.integer)) else axis)
    axes = {int(x) % nd for x in axes}
    return "slice", tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(nd))


_ANALYTIC = {
    np.reshape: _reshape_spec, np.ravel: _ravel_spec,
    np.squeeze: lambda d, axis=None: ("reshape", None), np.expand_dims: lambda d, axis: ("reshape", None),
    np.transpose: _transpose_spec, np.swapaxes: _swapaxes_spec, np.moveaxis: _moveaxis_spec,
    np.flip: _flip_spec, np.fliplr: lambda d: _flip_spec(d, 1), np.flipud: lambda d: _flip_spec(d, 0),
}
for _name in ("permute_dims",):
    if hasattr(np, _name):
        _ANALYTIC[getattr(np, _name)] = _transpose_spec
if hasattr(np, "matrix_transpose"):
    _ANALYTIC[np.matrix_transpose] = _mt_spec


@implements("A", np.pad)
def _pad(func, array, pad_width, mode="constant", **kwargs):
    pw = freeze(pad_width)
    if callable(mode) or mode not in ("constant", "edge", "reflect", "symmetric", "wrap", "empty"):
        from .opaque import opaque_call
        return opaque_call(func, (array, pad_width, mode), kwargs,
                           reason=f"pad mode {mode!r} computes padding from statistics of the edges")
    kw = {k: v for k, v in kwargs.items() if k == "reflect_type"}
    rmode = "constant" if mode == "empty" else mode
    values = raw(array)
    result = np.pad(values, pw, mode, **{k: raw(v) for k, v in kwargs.items()})
    if not is_t(array):
        return result
    m = _replay_map(result.shape, [np.shape(values)], [True],
                    lambda xs: np.pad(xs[0], pw, rmode, **kw))
    return _wrap(result, make_node("pad", result.shape, m, [array.node], detail=f"mode={mode}"))


def _replay_map(shape, shapes, tracked, replay):
    from ..maps import replay_gather
    return replay_gather(shape, shapes, tracked, replay)


def _seq_move(name, seq, rebuild_call):
    """Moves over a sequence of arrays: ``rebuild_call(list)`` performs the function on a new list."""
    return replay_call(name, list(seq), rebuild_call)


@implements("A", np.concatenate, _opt(np, "concat"), np.stack)
def _concat(func, arrays, axis=0, out=None, **kwargs):
    arrays = list(arrays) if not isinstance(arrays, (np.ndarray, TrackedArray)) else list(arrays)
    kw = {k: v for k, v in kwargs.items() if k in ("dtype", "casting")}
    values = [raw(a) for a in arrays]
    result = func(values, axis=axis, **kw)
    return finish_replay(func.__name__, arrays, values, result, lambda xs: func(xs, axis=axis))


def finish_replay(name, operands, values, result, replay, detail=""):
    from ..maps import replay_gather
    tracked = [is_t(o) for o in operands]
    parents = [o.node for o in operands if is_t(o)]
    shapes = [np.shape(v) for v in values]
    if isinstance(result, (list, tuple)):
        outs = []
        for j, r in enumerate(result):
            r = as_values(r)
            outs.append(_wrap(r, make_node(name, r.shape, replay_gather(r.shape, shapes, tracked, replay, output=j),
                                           parents, detail=detail)))
        return outs if isinstance(result, list) else tuple(outs)
    result = as_values(result)
    return _wrap(result, make_node(name, result.shape, replay_gather(result.shape, shapes, tracked, replay),
                                   parents, detail=detail))


@implements("A", np.hstack, np.vstack, np.dstack, np.column_stack)
def _stacks(func, tup, *args, **kwargs):
    arrays = list(tup)
    values = [raw(a) for a in arrays]
    result = func(values, *args, **kwargs)
    return finish_replay(func.__name__, arrays, values, result, lambda xs: func(xs))


@implements("A", np.block)
def _block(func, arrays):
    leaves, rebuild = flatten_nested(arrays)
    values = [raw(v) for v in leaves]
    result = np.block(rebuild(values))
    return finish_replay("block", leaves, values, result, lambda xs: np.block(rebuild(xs)))


@implements("A", np.append)
def _append(func, arr, values, axis=None):
    ops = [arr, values]
    vals = [raw(arr), raw(values)]
    return finish_replay("append", ops, vals, np.append(*vals, axis=axis),
                          lambda xs: np.append(xs[0], xs[1], axis=axis))


@implements("A", np.insert)
def _insert(func, arr, obj, values, axis=None):
    obj = freeze(obj)
    vals = [raw(arr), raw(values)]
    return finish_replay("insert", [arr, values], vals, np.insert(vals[0], obj, vals[1], axis=axis),
                          lambda xs: np.insert(xs[0], obj, xs[1], axis=axis))


@implements("A", np.broadcast_arrays, np.atleast_1d, np.atleast_2d, np.atleast_3d, np.meshgrid)
def _variadic(func, *arrays, **kwargs):
    vals = [raw(a) for a in arrays]
    kw = freeze(kwargs)
    result = func(*vals, **kw)
    if func is np.meshgrid:
        kw = dict(kw, copy=True)
    if isinstance(result, (list, tuple)) and not isinstance(result, np.ndarray):
        result = list(result) if isinstance(result, list) else tuple(result)
    out = finish_replay(func.__name__, list(arrays), vals, result, lambda xs: func(*xs, **kw))
    if len(arrays) == 1 and is_t(arrays[0]) and isinstance(out, TrackedArray):
        _maybe_view(out, arrays[0], lambda x: func(x, **kw))
    return out


@implements("A", np.ix_)
def _ix(func, *args):
    if any(is_t(a) and a.dtype == bool for a in args):
        from .opaque import opaque_call
        return opaque_call(func, args, {}, reason="ix_ of a boolean array turns values into positions")
    vals = [raw(a) for a in args]
    return finish_replay("ix_", list(args), vals, np.ix_(*vals), lambda xs: np.ix_(*xs))


def _maybe_view(out, src, step):
    from ..tracked import shares_buffer
    if shares_buffer(out._data, src._data):
        root = src._root if src._root is not None else src
        src.node
        out._root = root
        out._chain = src._chain + (step,)
        out._seen = root._version


@implements("A", np.kron)
def _kron(func, a, b):
    va, vb = raw(a), raw(b)
    result = np.kron(va, vb)
    sa, sb = np.shape(va), np.shape(vb)
    parents, parts = [], []
    from ..maps import UnionMap

    if is_t(a):
        parts.append((GatherMap(result.shape, [sa], lambda: np.kron(
            np.arange(1, np.size(va) + 1, dtype=np.int64).reshape(sa), np.ones(sb, np.int64))), (len(parents),)))
        parents.append(a)
    if is_t(b):
        parts.append((GatherMap(result.shape, [sb], lambda: np.kron(
            np.ones(sa, np.int64), np.arange(1, np.size(vb) + 1, dtype=np.int64).reshape(sb))), (len(parents),)))
        parents.append(b)
    m = UnionMap(result.shape, [p.shape for p in parents], parts)
    return _wrap(result, make_node("kron", result.shape, m, [p.node for p in parents]))


# ----------------------------------------------------------------------------------- elementwise

def _bound_elementwise(func, args, kwargs, data_names, op=None):
    sig = signature(func)
    ba = sig.bind(*args, **kwargs)
    operands = [ba.arguments[n] for n in data_names if n in ba.arguments]
    names = [n for n in data_names if n in ba.arguments]

    def compute(vals):
        for n, v in zip(names, vals):
            ba.arguments[n] = v
        return func(*ba.args, **ba.kwargs)

    return elementwise_call(op or func.__name__, operands, compute)


_ELEMENTWISE = {
    np.clip: ("a", "a_min", "a_max", "min", "max"),
    np.around: ("a",), np.round: ("a",), np.fix: ("x",), np.i0: ("x",), np.sinc: ("x",),
    np.angle: ("z",), np.real: ("val",), np.imag: ("val",), np.iscomplex: ("x",), np.isreal: ("x",),
    np.isneginf: ("x",), np.isposinf: ("x",), np.isclose: ("a", "b"), np.real_if_close: ("a",),
    np.copy: ("a",),
}
if hasattr(np, "astype"):
    _ELEMENTWISE[np.astype] = ("x",)


@implements("A", *_ELEMENTWISE)
def _elementwise_fn(func, *args, **kwargs):
    return _bound_elementwise(func, args, kwargs, _ELEMENTWISE[func])


@implements("A", np.nan_to_num)
def _nan_to_num(func, x, copy=True, nan=0.0, posinf=None, neginf=None):
    if not copy and is_t(x):
        x._before_write()
        np.nan_to_num(x._data, copy=False, nan=nan, posinf=posinf, neginf=neginf)
        return x  # values changed in place, each cell still derives from itself
    return elementwise_call("nan_to_num", [x], lambda v: np.nan_to_num(v[0], copy=True, nan=nan, posinf=posinf,
                                                                       neginf=neginf))


@implements("A", np.empty_like, np.zeros_like, np.ones_like)
def _constant_like(func, prototype, *args, **kwargs):
    result = func(raw(prototype), *args, **kwargs)
    return _wrap(result, make_node(func.__name__, result.shape, None, ()))


@implements("A", np.full_like)
def _full_like(func, a, fill_value, *args, **kwargs):
    result = np.full_like(raw(a), raw(fill_value), *args, **kwargs)
    if not is_t(fill_value):
        return _wrap(result, make_node("full_like", result.shape, None, ()))
    return wrap_result("full_like", result, lambda s: ElementwiseMap(s, [fill_value.shape]), [fill_value])


@implements("A", np.ravel_multi_index)
def _ravel_multi_index(func, multi_index, dims, mode="raise", order="C"):
    ops = list(multi_index)
    return elementwise_call("ravel_multi_index", ops,
                            lambda v: np.ravel_multi_index(tuple(v), dims, mode=mode, order=order))


@implements("A", np.unravel_index)
def _unravel_index(func, indices, shape, order="C"):
    result = np.unravel_index(raw(indices), shape, order=order)
    if not is_t(indices):
        return result
    return wrap_result("unravel_index", tuple(result), lambda s: ElementwiseMap(s, [indices.shape]), [indices])
