"""Bucket B, region maps: reductions, accumulations, windows and contractions.

Each output cell derives from a rectangle of input cells (ranges along axes): the reduced lane, the
prefix, the window, or the contracted row and column.  Recorded in O(1) (plus O(length) of one axis for
windows); the cells are computed at query time.
"""

from __future__ import annotations


import numpy as np

from ..maps import (BandMap, EinsumMap, ElementwiseMap, LaneMap, ReduceMap, UnionMap, normalize_axes as _normalize_axes,
                    replay_gather)
from ..graph import Node
from ..tracked import FAST_FUNCTIONS, TrackedArray, wrap as _wrap, as_values, is_lazy, make_node
from .common import freeze, internal_ravel, is_t, raw
from .registry import implements, signature
from .ufuncs import gufunc_labels

_linalg = np.linalg
_NoValue = getattr(np, "_NoValue", None)


def _opt(mod, name):
    return getattr(mod, name, None)


def _call_bound(func, args, kwargs):
    """Bind, replace tracked arguments by their values, call; returns (result, bound arguments)."""
    ba = signature(func).bind(*args, **kwargs)
    tracked = {}
    for name, v in list(ba.arguments.items()):
        if is_t(v):
            tracked[name] = v
            ba.arguments[name] = v._data
        elif isinstance(v, (list, tuple)) and any(is_t(x) for x in v):
            ba.arguments[name] = raw(v)
    result = func(*ba.args, **ba.kwargs)
    return result, ba.arguments, tracked


def _align_along(wshape, a_shape, axes):
    """Shape a weights-like operand is reshaped to before broadcasting against ``a_shape``."""
    if tuple(wshape) == tuple(a_shape) or len(wshape) != 1 or len(axes) != 1:
        return None
    align = [1] * len(a_shape)
    align[axes[0]] = wshape[0]
    return tuple(align)


_REDUCTIONS = [np.sum, np.prod, np.mean, np.std, np.var, np.max, np.min, np.amax, np.amin, np.all, np.any,
               np.ptp, np.argmax, np.argmin, np.median, np.percentile, np.quantile, np.average,
               np.count_nonzero, np.nansum, np.nanprod, np.nanmean, np.nanstd, np.nanvar, np.nanmax, np.nanmin,
               np.nanargmax, np.nanargmin, np.nanmedian, np.nanpercentile, np.nanquantile,
               _opt(np, "trapezoid"), _linalg.norm, _opt(_linalg, "vector_norm"),
               None if hasattr(np, "trapezoid") else _opt(np, "trapz")]  # numpy 1.x's name of trapezoid


_FAST_KW = frozenset(["dtype", "keepdims", "ddof"])


def reduce_fast(func, a, axis=None, *args, **kwargs):
    """The common case of a reduction (a tracked array, an axis, maybe dtype/keepdims/ddof) without binding."""
    if args or type(a) is not TrackedArray or not _FAST_KW.issuperset(kwargs):
        return _reduction(func, a, axis, *args, **kwargs)
    d = a._data
    r = func(d, axis=axis, **kwargs)
    if type(r) is not np.ndarray:
        r = as_values(r)
    nd = d.ndim
    if axis is None:
        axes = tuple(range(nd))
    elif type(axis) is int and -nd <= axis < nd:
        axes = (axis % nd,)
    else:
        axes = _normalize_axes(axis, nd)
    shape = d.shape
    return _wrap(r, Node(func.__name__, r.shape, ReduceMap(shape, axes, r.shape, (shape,)), (a.node,)))


@implements("B", *[f for f in _REDUCTIONS if f is not None])
def _reduction_handler(func, *args, **kwargs):
    if func in _FAST_FUNCS and args:
        return reduce_fast(func, *args, **kwargs)
    return _reduction(func, *args, **kwargs)


def _reduction(func, *args, **kwargs):
    result, arguments, tracked = _call_bound(func, args, kwargs)
    params = list(signature(func).parameters)
    a_name = params[0]
    a_val = arguments[a_name]
    a_shape = np.shape(a_val)
    axis = arguments.get("axis", None)
    if axis is _NoValue:
        axis = None
    if func is _linalg.norm and axis is None:
        axis = None
    axes = _normalize_axes(axis, len(a_shape))
    where = arguments.get("where", True)
    where = None if where is True or where is _NoValue or where is None else np.array(
        np.broadcast_to(np.asarray(where, bool), a_shape))
    parents, aligns, shapes = [], [], []
    if a_name in tracked:
        parents.append(tracked[a_name])
        aligns.append(None)
        shapes.append(a_shape)
    for wname in ("weights", "x", "mean"):
        if wname in tracked and wname != a_name:
            w = tracked[wname]
            parents.append(w)
            aligns.append(_align_along(w.shape, a_shape, axes) if wname != "mean" else None)
            shapes.append(w.shape)
    q = tracked.get("q")
    extra = []
    if q is not None:
        extra.append(q)
    results = result if isinstance(result, tuple) else (result,)
    outs = []
    for j, r in enumerate(results):
        r = as_values(r)
        if j == 1 and func is np.average:  # the sum of weights: from the weights only
            ps = [(p, al, s) for p, al, s in zip(parents, aligns, shapes) if p is tracked.get("weights")]
        else:
            ps = list(zip(parents, aligns, shapes))
        m = ReduceMap(a_shape, axes, r.shape, [s for _, _, s in ps], [al for _, al, s in ps], where)
        pnodes = [p.node for p, _, _ in ps]
        if extra and j == 0:
            qlab = tuple(("q", t) for t in range(q.ndim))
            olab = qlab + tuple(("o", t) for t in range(r.ndim - q.ndim))
            parts = [(m, tuple(range(len(pnodes)))), (EinsumMap([qlab], olab, r.shape, [q.shape]), (len(pnodes),))]
            pnodes = pnodes + [q.node]
            m = UnionMap(r.shape, [p.shape for p in pnodes], parts)
        outs.append(_wrap(r, make_node(func.__name__, r.shape, m, pnodes, detail=f"axis={axis}")))
    return tuple(outs) if isinstance(result, tuple) else outs[0]


def _matrix_reduce(name, a, result):
    if not is_t(a):
        return result
    nd = a.ndim
    axes = (nd - 2, nd - 1) if nd >= 2 else tuple(range(nd))
    results = result if isinstance(result, tuple) else (result,)
    outs = []
    for r in results:
        r = as_values(r)
        outs.append(_wrap(r, make_node(name, r.shape, ReduceMap(a.shape, axes, r.shape, [a.shape]), [a.node])))
    if hasattr(result, "_fields"):
        return type(result)(*outs)
    return tuple(outs) if isinstance(result, tuple) else outs[0]


_FAST_FUNCS = frozenset([np.sum, np.prod, np.mean, np.std, np.var, np.max, np.min, np.amax, np.amin, np.all,
                         np.any, np.argmax, np.argmin, np.nansum, np.nanmean, np.nanmax, np.nanmin, np.median])


@implements("B", _linalg.det, _linalg.slogdet, _linalg.matrix_rank, _linalg.cond, _opt(_linalg, "matrix_norm"))
def _matrix_reduction(func, x, *args, **kwargs):
    result = func(raw(x), *freeze(args), **freeze(kwargs))
    return _matrix_reduce(func.__name__, x, result)


@implements("B", np.allclose, np.array_equal, np.array_equiv)
def _all_compare(func, a, b, *args, **kwargs):
    va, vb = raw(a), raw(b)
    result = as_values(func(va, vb, *args, **kwargs))
    try:
        shape = np.broadcast_shapes(np.shape(va), np.shape(vb))
    except ValueError:
        shape = None
    if func is np.array_equal and np.shape(va) != np.shape(vb):
        shape = None
    ts = [x for x in (a, b) if is_t(x)]
    if shape is None or not ts:
        return _wrap(result, make_node(func.__name__, (), None, ()))
    m = ReduceMap(shape, tuple(range(len(shape))), (), [x.shape for x in ts])
    return _wrap(result, make_node(func.__name__, (), m, [x.node for x in ts]))


@implements("B", np.trace, _opt(_linalg, "trace"))
def _trace(func, a, *args, **kwargs):
    if func is np.trace:
        ba = signature(func).bind(a, *args, **kwargs)
        ba.apply_defaults()
        off, ax1, ax2 = (ba.arguments[k] for k in ("offset", "axis1", "axis2"))
    else:
        off, ax1, ax2 = kwargs.get("offset", 0), -2, -1
    result = as_values(func(raw(a), *args, **kwargs))
    if not is_t(a):
        return result
    d = np.diagonal(a._data, off, ax1, ax2)
    dnode = make_node("diagonal", d.shape, replay_gather(d.shape, [a.shape], [True],
                                                          lambda xs: np.diagonal(xs[0], off, ax1, ax2)),
                      [a.node], internal=True)
    m = ReduceMap(d.shape, (d.ndim - 1,), result.shape, [d.shape])
    return _wrap(result, make_node("trace", result.shape, m, [dnode]))


# ------------------------------------------------------------------------------ accumulations

def _axis_source(a, axis):
    """The array an axis-wise operation works on and the normalised axis: ``axis=None`` means the flattened
    array (an internal ravel node), axis 0."""
    if axis is None:
        return internal_ravel(a), 0
    return a, axis % max(a.ndim, 1)


def _prefix(n, initial=False):
    i = np.arange(n + (1 if initial else 0), dtype=np.int64)
    return np.zeros_like(i), (i - 1 if initial else i)


@implements("B", np.cumsum, np.cumprod, np.nancumsum, np.nancumprod, _opt(np, "cumulative_sum"),
            _opt(np, "cumulative_prod"))
def _cumulative(func, a, *args, **kwargs):
    if len(args) <= 1 and set(kwargs) <= {"axis", "dtype"} and func in (np.cumsum, np.cumprod, np.nancumsum,
                                                                        np.nancumprod):
        args_ = {"a": a, "axis": args[0] if args else kwargs.get("axis"), "dtype": kwargs.get("dtype")}
    else:
        ba = signature(func).bind(a, *args, **kwargs)
        ba.apply_defaults()
        args_ = dict(ba.arguments)
    axis = args_.get("axis")
    initial = bool(args_.get("include_initial", False))
    kw = {k: v for k, v in args_.items() if k in ("dtype", "include_initial")}
    d = raw(a)
    # a 1-d input: axis=None and axis=0 are the same call (dask before 2025.9 cannot rechunk unknown sizes for None)
    result = as_values(func(d, axis=0 if axis is None and getattr(d, "ndim", 0) == 1 else axis, **kw))
    if not is_t(a):
        return result
    src = a
    if axis is None:
        src = internal_ravel(a) if a.ndim != 1 else a
        axis = 0
    axis = axis % max(src.ndim, 1)
    n = src.shape[axis]
    m = BandMap(result.shape, src.shape, lambda: [(axis, *_prefix(n, initial))])
    return _wrap(result, make_node(func.__name__, result.shape, m, [src.node], detail=f"axis={axis}"))


_CUMULATIVE_METHODS = {np.cumsum: np.ndarray.cumsum, np.cumprod: np.ndarray.cumprod}
_NO_CONTROL: frozenset[int] = frozenset()


def _make_cumulative_fast(func):
    method = _CUMULATIVE_METHODS[func]
    name = func.__name__

    def fast(args, kwargs):
        a = args[0]
        if type(a) is not TrackedArray or len(args) > 2:
            return None
        d = a._data
        if type(d) is not np.ndarray:
            return None
        if len(args) == 2:
            if "axis" in kwargs:
                return None
            axis = args[1]
        else:
            axis = kwargs.get("axis")
        dtype = None
        if kwargs:
            for k in kwargs:
                if k != "axis" and k != "dtype":
                    return None
            dtype = kwargs.get("dtype")
        nd = d.ndim
        if axis is None:
            if nd != 1:
                return None  # (a flattened copy first: the handler's internal node)
            axis = 0
        elif type(axis) is not int or not -nd <= axis < nd:
            return None
        axis = axis % nd
        result = method(d, axis=axis, dtype=dtype)
        shape = d.shape
        n = shape[axis]
        m = BandMap(result.shape, shape, lambda: [(axis, *_prefix(n))])
        return _wrap(result, Node(name, result.shape, m, (a.node,), _NO_CONTROL, None, detail=f"axis={axis}"))

    return fast


for _f in _CUMULATIVE_METHODS:
    FAST_FUNCTIONS[_f] = _make_cumulative_fast(_f)


@implements("B", np.unwrap)
def _unwrap(func, p, *args, **kwargs):
    ba = signature(func).bind(p, *args, **kwargs)
    ba.apply_defaults()
    axis = ba.arguments["axis"]
    result = as_values(func(raw(p), *args, **kwargs))
    if not is_t(p):
        return result
    axis = axis % p.ndim
    lo, hi = _prefix(p.shape[axis])
    return _wrap(result, make_node("unwrap", result.shape, BandMap(result.shape, p.shape, [(axis, lo, hi)]),
                                   [p.node]))


# ------------------------------------------------------------------------------------ windows

@implements("B", np.diff)
def _diff(func, a, n=1, axis=-1, prepend=_NoValue, append=_NoValue):
    kw = {}
    if prepend is not _NoValue:
        kw["prepend"] = raw(prepend)
    if append is not _NoValue:
        kw["append"] = raw(append)
    result = np.diff(raw(a), n=n, axis=axis, **kw)
    ops = [a] + [x for x in (prepend, append) if x is not _NoValue]
    if not any(is_t(x) for x in ops):
        return result
    va = raw(a) if is_lazy(raw(a)) else np.asanyarray(raw(a))
    ax = axis % va.ndim
    if n == 0:
        return _wrap(result, make_node("diff", result.shape, ElementwiseMap(result.shape, [a.shape]), [a.node]))
    pieces_ops = []
    if prepend is not _NoValue:
        pieces_ops.append(("pre", prepend))
    pieces_ops.append(("a", a))
    if append is not _NoValue:
        pieces_ops.append(("app", append))

    def widen(x):
        x = np.asanyarray(x)
        if x.ndim == 0:
            shape = list(va.shape)
            shape[ax] = 1
            x = np.broadcast_to(x, tuple(shape))
        return x

    def cat(xs):
        return np.concatenate([widen(x) for x in xs], axis=ax) if len(xs) > 1 else xs[0]

    operands = [x for _, x in pieces_ops]
    vals = [raw(x) for x in operands]
    comb_val = cat(vals)
    if len(operands) > 1:
        cm = replay_gather(comb_val.shape, [np.shape(v) for v in vals], [is_t(x) for x in operands], cat)
        comb = make_node("concatenate", comb_val.shape, cm, [x.node for x in operands if is_t(x)], internal=True)
    else:
        comb = a.node
    L = result.shape[ax]
    i = np.arange(L, dtype=np.int64)
    m = BandMap(result.shape, comb_val.shape, [(ax, i, i + n)])
    return _wrap(result, make_node("diff", result.shape, m, [comb], detail=f"n={n}, axis={ax}"))


@implements("B", np.ediff1d)
def _ediff1d(func, ary, to_end=None, to_begin=None):
    result = np.ediff1d(raw(ary), to_end=raw(to_end), to_begin=raw(to_begin))
    if not any(is_t(x) for x in (ary, to_end, to_begin)):
        return result
    if is_t(ary):
        flat = internal_ravel(ary)
        d = np.diff(flat._data)
        i = np.arange(d.size, dtype=np.int64)
        dn = _wrap(d, make_node("diff", d.shape, BandMap(d.shape, flat.shape, [(0, i, i + 1)]), [flat.node],
                                internal=True))
    else:
        dn = np.diff(np.ravel(raw(ary)))
    ops = ([to_begin] if to_begin is not None else []) + [dn] + ([to_end] if to_end is not None else [])
    vals = [np.ravel(raw(x)) for x in ops]
    from .index_maps import finish_replay
    out = finish_replay("ediff1d", ops, vals, result, lambda xs: np.concatenate([np.ravel(x) for x in xs]))
    return out


def _conv_bands(n, m, mode, L):
    """lo/hi of each output index for the two operands of a full/same/valid convolution."""
    if mode == "full":
        off = 0
    elif mode == "same":
        off = (min(n, m) - 1) // 2
    else:
        off = min(n, m) - 1
    k = off + np.arange(L, dtype=np.int64)
    lo_a, hi_a = np.maximum(k - m + 1, 0), np.minimum(k, n - 1)
    lo_v, hi_v = np.maximum(k - n + 1, 0), np.minimum(k, m - 1)
    return (lo_a, hi_a), (lo_v, hi_v)


@implements("B", np.convolve, np.correlate)
def _convolve(func, a, v, mode=None):
    mode = mode or ("full" if func is np.convolve else "valid")
    result = as_values(func(raw(a), raw(v), mode))
    if not (is_t(a) or is_t(v)):
        return result
    mode = {0: "valid", 1: "same", 2: "full"}.get(mode, mode)
    n, m = np.size(raw(a)), np.size(raw(v))
    (la, ha), (lv, hv) = _conv_bands(n, m, mode, result.shape[0])
    if func is np.correlate:  # correlate(a, v) == convolve(a, v[::-1])
        lv, hv = m - 1 - hv, m - 1 - lv
    parents, parts = [], []
    if is_t(a):
        parts.append((BandMap(result.shape, a.shape, [(0, la, ha)]), (len(parents),)))
        parents.append(a.node)
    if is_t(v):
        parts.append((BandMap(result.shape, v.shape, [(0, lv, hv)]), (len(parents),)))
        parents.append(v.node)
    mp = UnionMap(result.shape, [p.shape for p in parents], parts)
    return _wrap(result, make_node(func.__name__, result.shape, mp, parents, detail=f"mode={mode}"))


@implements("B", np.gradient)
def _gradient(func, f, *varargs, axis=None, edge_order=1):
    result = np.gradient(raw(f), *raw(varargs), axis=axis, edge_order=edge_order)
    if not is_t(f):
        return result
    if any(is_t(v) for v in varargs):
        from .opaque import opaque_result
        return opaque_result("gradient", result, [f] + [v for v in varargs if is_t(v)],
                             "tracked sample coordinates")
    axes = _normalize_axes(axis, f.ndim)
    if axis is not None and not isinstance(axis, (tuple, list)):
        axes = (axes[0],)
    elif axis is not None:
        axes = tuple(int(x) % f.ndim for x in axis)
    results = result if isinstance(result, (list, tuple)) else [result]
    outs = []
    for ax, r in zip(axes, results):
        n = f.shape[ax]
        i = np.arange(n, dtype=np.int64)
        lo, hi = np.maximum(i - 1, 0), np.minimum(i + 1, n - 1)
        if edge_order == 2 and n >= 3:
            hi[0] = 2
            lo[-1] = n - 3
        outs.append(_wrap(as_values(r), make_node("gradient", np.shape(r), BandMap(np.shape(r), f.shape,
                                                                                     [(ax, lo, hi)]), [f.node],
                                                   detail=f"axis={ax}")))
    if isinstance(result, (list, tuple)):
        return type(result)(outs)
    return outs[0]


@implements("B", np.packbits, np.unpackbits)
def _bits(func, a, *args, **kwargs):
    ba = signature(func).bind(a, *args, **kwargs)
    ba.apply_defaults()
    axis = ba.arguments.get("axis")
    result = as_values(func(raw(a), *args, **kwargs))
    if not is_t(a):
        return result
    src, axis = _axis_source(a, axis)
    n = src.shape[axis]
    i = np.arange(result.shape[axis], dtype=np.int64)
    if func is np.packbits:
        lo, hi = 8 * i, np.minimum(8 * i + 7, n - 1)
    else:
        lo = i // 8
        hi = np.where(lo < n, lo, -1)
        lo = np.where(lo < n, lo, 0)
    return _wrap(result, make_node(func.__name__, result.shape, BandMap(result.shape, src.shape, [(axis, lo, hi)]),
                                   [src.node]))


# ------------------------------------------------------------------------------- contractions

def _einsum_result(op, result, operands, labels, out_labels, detail=""):
    result = as_values(result)
    ts = [(x, lab) for x, lab in zip(operands, labels) if is_t(x)]
    if not ts:
        return result
    m = EinsumMap([lab for _, lab in ts], out_labels, result.shape, [x.shape for x, _ in ts])
    return _wrap(result, make_node(op, result.shape, m, [x.node for x, _ in ts], detail=detail))


def _lab(prefix, n):
    return tuple((prefix, j) for j in range(n))


@implements("B", np.dot)
def _dot(func, a, b, out=None):
    va, vb = raw(a), raw(b)
    result = np.dot(va, vb)
    na, nb = np.ndim(va), np.ndim(vb)
    if na == 0 or nb == 0:
        la, lb = _lab("a", na), _lab("b", nb)
        out_l = la if nb == 0 else lb
        if na == 0 and nb == 0:
            out_l = ()
        return _einsum_result("dot", result, [a, b], [la, lb], out_l)
    la = _lab("a", na - 1) + ("s",)
    if nb == 1:
        lb = ("s",)
    else:
        lb = _lab("b", nb - 2) + ("s", ("b", "last"))
    out_l = la[:-1] + lb[:-2] + (lb[-1:] if nb >= 2 else ())
    return _einsum_result("dot", result, [a, b], [la, lb], out_l)


@implements("B", np.inner)
def _inner(func, a, b):
    va, vb = raw(a), raw(b)
    result = np.inner(va, vb)
    na, nb = np.ndim(va), np.ndim(vb)
    if na == 0 or nb == 0:
        la, lb = _lab("a", na), _lab("b", nb)
        return _einsum_result("inner", result, [a, b], [la, lb], la if nb == 0 else lb)
    la, lb = _lab("a", na - 1) + ("s",), _lab("b", nb - 1) + ("s",)
    return _einsum_result("inner", result, [a, b], [la, lb], la[:-1] + lb[:-1])


@implements("B", np.vdot)
def _vdot(func, a, b):
    va, vb = raw(a), raw(b)
    return _einsum_result("vdot", np.vdot(va, vb), [a, b], [_lab("a", np.ndim(va)), _lab("b", np.ndim(vb))], ())


@implements("B", np.outer, _opt(_linalg, "outer"))
def _outer(func, a, b, *args, **kwargs):
    va, vb = raw(a), raw(b)
    result = func(va, vb, *args, **kwargs)
    fa = internal_ravel(a) if is_t(a) else None
    fb = internal_ravel(b) if is_t(b) else None
    return _einsum_result(func.__name__, result, [fa if fa is not None else va, fb if fb is not None else vb],
                          [("i",), ("j",)], ("i", "j"))


def _tensordot_labels(na, nb, axes):
    if isinstance(axes, (int, np.integer)):
        ax_a = list(range(na - axes, na))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
        ax_a = [x % na for x in ax_a]
        ax_b = [x % nb for x in ax_b]
    la = [("a", j) for j in range(na)]
    lb = [("b", j) for j in range(nb)]
    for t, (i, j) in enumerate(zip(ax_a, ax_b)):
        la[i] = ("c", t)
        lb[j] = ("c", t)
    out = tuple(l for l in la if l[0] == "a") + tuple(l for l in lb if l[0] == "b")
    return tuple(la), tuple(lb), out


@implements("B", np.tensordot, _opt(_linalg, "tensordot"))
def _tensordot(func, a, b, *args, **kwargs):
    va, vb = raw(a), raw(b)
    result = func(va, vb, *args, **kwargs)
    axes = args[0] if args else kwargs.get("axes", 2)
    la, lb, out = _tensordot_labels(np.ndim(va), np.ndim(vb), axes)
    return _einsum_result(func.__name__, result, [a, b], [la, lb], out)


def parse_einsum(subscripts, shapes):
    """Labels of each operand and of the output for an einsum subscript string."""
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
    else:
        ins, out = subscripts, None
    terms = ins.split(",")
    if len(terms) != len(shapes):
        raise ValueError("einsum: the number of operands does not match the subscripts")
    ell_nd = 0
    for term, shape in zip(terms, shapes):
        if "..." in term:
            ell_nd = max(ell_nd, len(shape) - (len(term) - 3))
    labels = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            pre, post = term.split("...")
            k = len(shape) - len(pre) - len(post)
            labels.append(tuple(pre) + tuple(("e", ell_nd - k + t) for t in range(k)) + tuple(post))
        else:
            labels.append(tuple(term))
    if out is None:
        counts = {}
        for term in terms:
            for ch in term.replace("...", ""):
                counts[ch] = counts.get(ch, 0) + 1
        letters = sorted(c for c, n in counts.items() if n == 1)
        out_l = tuple(("e", t) for t in range(ell_nd)) + tuple(letters)
    else:
        if "..." in out:
            pre, post = out.split("...")
            out_l = tuple(pre) + tuple(("e", t) for t in range(ell_nd)) + tuple(post)
        else:
            out_l = tuple(out)
    return labels, out_l


@implements("B", np.einsum)
def _einsum(func, *operands, **kwargs):
    kwargs.pop("optimize", None)
    if operands and not isinstance(operands[0], str):
        ops = list(operands)
        arrays, subs = ops[0::2], ops[1::2]
        out_sub = None
        if len(ops) % 2 == 1:
            out_sub = ops[-1]
            arrays = ops[0:-1:2]
            subs = ops[1:-1:2]

        def s(sub):
            return "".join("..." if x is Ellipsis else chr(ord("a") + x) if x < 26 else chr(ord("A") + x - 26)
                           for x in sub)

        spec = ",".join(s(x) for x in subs) + ("->" + s(out_sub) if out_sub is not None else "")
        operands = (spec, *arrays)
    spec, arrays = operands[0], list(operands[1:])
    vals = [raw(x) for x in arrays]
    result = np.einsum(spec, *vals, **kwargs)
    labels, out_l = parse_einsum(spec, [np.shape(v) for v in vals])
    return _einsum_result("einsum", result, arrays, labels, out_l, detail=spec)


@implements("B", _linalg.multi_dot)
def _multi_dot(func, arrays, *, out=None):
    arrays = list(arrays)
    vals = [raw(x) for x in arrays]
    result = np.linalg.multi_dot(vals)
    labels = []
    k = len(arrays)
    for i, v in enumerate(vals):
        if np.ndim(v) == 1:
            labels.append((("c", i),) if i == 0 else (("c", i - 1),) if i == k - 1 else None)
        else:
            labels.append((("c", i - 1) if i > 0 else "row", ("c", i) if i < k - 1 else "col"))
    out_l = (("row",) if np.ndim(vals[0]) == 2 else ()) + (("col",) if np.ndim(vals[-1]) == 2 else ())
    return _einsum_result("multi_dot", result, arrays, labels, out_l)


@implements("B", _opt(_linalg, "vecdot"))
def _linalg_vecdot(func, x1, x2, /, *, axis=-1):
    v1, v2 = raw(x1), raw(x2)
    result = func(v1, v2, axis=axis)
    shapes = [np.shape(v1), np.shape(v2)]
    rest = [tuple(d for j, d in enumerate(s) if j != axis % len(s)) for s in shapes]
    L = len(np.broadcast_shapes(*rest))
    labels = []
    for s in shapes:
        ax = axis % len(s)
        nl = len(s) - 1
        lab, t = [], 0
        for j in range(len(s)):
            if j == ax:
                lab.append("s")
            else:
                lab.append(("l", L - nl + t))
                t += 1
        labels.append(tuple(lab))
    return _einsum_result("vecdot", result, [x1, x2], labels, tuple(("l", t) for t in range(L)))


@implements("B", _opt(_linalg, "matmul"))
def _linalg_matmul(func, x1, x2, /):
    v1, v2 = raw(x1), raw(x2)
    result = np.matmul(v1, v2)
    labels, out_l = gufunc_labels("(n?,k),(k,m?)->(n?,m?)", (np.shape(v1), np.shape(v2)))
    return _einsum_result("matmul", result, [x1, x2], labels, out_l)


@implements("B", np.cov, np.corrcoef)
def _cov(func, m, y=None, rowvar=True, *args, **kwargs):
    result = np.asarray(func(raw(m), raw(y), rowvar, *raw(args), **raw(kwargs)))
    weights = [v for v in list(args) + list(kwargs.values()) if is_t(v)]
    if not (is_t(m) or is_t(y) or weights):
        return result

    def as_vars(x):
        x = np.array(x, ndmin=2)
        if not rowvar and x.shape[0] != 1:
            x = x.T
        return x

    ops = [m] + ([y] if y is not None else [])
    vals = [raw(o) for o in ops]

    def build(xs):
        return np.concatenate([as_vars(x) for x in xs], axis=0)

    X = build(vals)
    xm = replay_gather(X.shape, [np.shape(v) for v in vals], [is_t(o) for o in ops], build)
    xnode = make_node("variables", X.shape, xm, [o.node for o in ops if is_t(o)], internal=True)
    out_l = ("i", "j") if result.ndim == 2 else ()
    shapes = [X.shape, X.shape] + [w.shape for w in weights]
    labels = [("i", "k"), ("j", "k")] + [_lab(f"w{t}", w.ndim) for t, w in enumerate(weights)]
    if result.ndim == 0:
        labels[:2] = [("i", "k"), ("i", "k")]
    mp = EinsumMap(labels, out_l, result.shape, shapes)
    return _wrap(result, make_node(func.__name__, result.shape, mp, [xnode, xnode] + [w.node for w in weights]))


@implements("B", np.vander)
def _vander(func, x, N=None, increasing=False):
    return _einsum_result("vander", np.vander(raw(x), N, increasing), [x], [("i",)], ("i", "j"))


def _membership(op, result, probe, against):
    result = as_values(result)
    labels = [_lab("o", np.ndim(raw(probe)))] + [_lab(f"t{j}", np.ndim(raw(t))) for j, t in enumerate(against)]
    return _einsum_result(op, result, [probe] + list(against), labels, _lab("o", result.ndim))


@implements("B", np.isin)
def _isin(func, element, test_elements, *args, **kwargs):
    result = np.isin(raw(element), raw(test_elements), *args, **kwargs)
    return _membership("isin", result, element, [test_elements])


@implements("B", np.searchsorted)
def _searchsorted(func, a, v, side="left", sorter=None):
    result = np.searchsorted(raw(a), raw(v), side, raw(sorter))
    return _membership("searchsorted", result, v, [a] + ([sorter] if sorter is not None else []))


@implements("B", np.digitize)
def _digitize(func, x, bins, right=False):
    return _membership("digitize", np.digitize(raw(x), raw(bins), right), x, [bins])


@implements("B", np.polyval)
def _polyval(func, p, x):
    return _membership("polyval", np.polyval(raw(p), raw(x)), x, [p])


@implements("B", np.argsort, np.argpartition, np.lexsort)
def _arg_lanes(func, a, *args, **kwargs):
    """Index results: every output cell derives from the whole lane it was compared with."""
    if func is np.lexsort:
        keys = a
        axis = args[0] if args else kwargs.get("axis", -1)
        keys_list = list(keys) if not isinstance(keys, TrackedArray) else [keys[i] for i in range(len(keys))]
        vals = [raw(k) for k in keys_list]
        result = np.lexsort(np.asarray(vals) if isinstance(keys, TrackedArray) else tuple(vals), axis)
        ts = [k for k in keys_list if is_t(k)]
        if not ts:
            return result
        ax = axis % result.ndim if result.ndim else 0
        lab_out = _lab("o", result.ndim)
        labels = []
        for k in ts:
            lab = list(_lab("o", k.ndim))
            if k.ndim:
                lab[ax] = ("lane", 0)
            labels.append(tuple(lab))
        m = EinsumMap(labels, lab_out, result.shape, [k.shape for k in ts])
        return _wrap(result, make_node("lexsort", result.shape, m, [k.node for k in ts]))
    ba = signature(func).bind(a, *args, **kwargs)
    ba.apply_defaults()
    axis = ba.arguments.get("axis", -1)
    result = as_values(func(raw(a), *freeze(args), **freeze(kwargs)))
    if not is_t(a):
        return result
    src, axis = _axis_source(a, axis)
    m = LaneMap(result.shape, (axis,) if src.ndim else (), [src.shape])
    return _wrap(result, make_node(func.__name__, result.shape, m, [src.node], detail=f"axis={axis}"))
