"""Lineage of ufuncs: ``__call__`` (elementwise and generalized), ``reduce``, ``accumulate``, ``reduceat``,
``outer`` and ``at``, with ``out=`` and ``where=``."""

from __future__ import annotations

import functools
import math
import numbers
import re

import numpy as np

from ..maps import (BandMap, EinsumMap, ElementwiseMap, GatherMap, OpaqueMap, PairsMap, ReduceMap, UnionMap,
                    normalize_axes as _normalize_axes)
from ..tracked import LAZY_BACKEND as _DASK, TrackedArray, wrap as _wrap, as_values, is_lazy, make_node, warn_partial
from .common import is_t, raw

__all__ = ["handle_ufunc", "gufunc_labels"]

_OK_TYPES = (TrackedArray, np.ndarray, numbers.Number, np.generic, list, tuple, type(None))


def handle_ufunc(ufunc, method, inputs, kwargs):
    if _DASK[0] is not None:  # lazy (dask) operands: reductions and accumulations become dask functions
        r = _DASK[0].dispatch_ufunc(ufunc, method, inputs, kwargs)
        if r is not _DASK[0].NOT_LAZY:
            return r
    out = kwargs.pop("out", None)
    outs = out if isinstance(out, tuple) else ((out,) if out is not None else ())
    for x in inputs + tuple(outs):
        if not isinstance(x, _OK_TYPES) and getattr(x, "__array_ufunc__", None) is not None and not is_lazy(x):
            return NotImplemented
    where = kwargs.get("where", True)
    where_t = where if is_t(where) else None
    if where_t is not None:
        kwargs["where"] = where_t._data
    raw_inputs = [raw(x) for x in inputs]
    for o in outs:
        if is_t(o):
            o._before_write()
    if method == "at" and is_t(inputs[0]):
        inputs[0]._before_write()
    if any(o is not None for o in outs):
        kwargs["out"] = tuple(raw(o) for o in outs)
    fp_error = None
    try:
        result = getattr(ufunc, method)(*raw_inputs, **kwargs)
    except FloatingPointError as e:
        # np.errstate(...="raise"): numpy wrote every cell, then reported; the lineage follows the buffer
        if not (any(is_t(o) for o in outs) or (method == "at" and is_t(inputs[0]))):
            raise
        fp_error = e
        result = _written_outputs(ufunc, kwargs.get("out", ()), inputs[0])
    kwargs.pop("out", None)
    tracked = [x for x in inputs if is_t(x)]
    name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"

    if method == "at":
        r = _at(ufunc, inputs, kwargs)
        if fp_error is not None:
            raise fp_error
        return r

    results = result if isinstance(result, tuple) else (result,)
    results = [as_values(r) for r in results]
    out_shape = results[0].shape
    control = ()
    partial = None
    wmask = None if (where is True or where is None) else np.asarray(raw(where), dtype=bool)

    if method == "__call__":
        if ufunc.signature is None:
            valid = None
            if wmask is not None and not any(o is not None for o in outs):
                valid = np.array(np.broadcast_to(wmask, out_shape))
            m = ElementwiseMap(out_shape, [x.shape for x in tracked], valid)
        else:
            m, partial = _gufunc_map(ufunc, raw_inputs, tracked, inputs, out_shape, kwargs)
        parents = [x.node for x in tracked]
        if where_t is not None and not any(o is not None for o in outs):
            parts = [(m, tuple(range(len(parents))))]
            parts.append((ElementwiseMap(out_shape, [where_t.shape]), (len(parents),)))
            parents.append(where_t.node)
            m = UnionMap(out_shape, [p.shape for p in parents], parts)
            control = (len(parents) - 1,)
    elif method == "reduce":
        a = raw_inputs[0]
        a_shape = np.shape(a)
        axis = kwargs.get("axis", 0)
        axes = _normalize_axes(axis, len(a_shape))
        wr = None if wmask is None else np.array(np.broadcast_to(wmask, a_shape))
        m = ReduceMap(a_shape, axes, out_shape, [a_shape] if is_t(inputs[0]) else [], where=wr)
        parents = [inputs[0].node] if is_t(inputs[0]) else []
    elif method == "accumulate":
        a_shape = np.shape(raw_inputs[0])
        axis = kwargs.get("axis", 0) % max(len(a_shape), 1)
        n = a_shape[axis]
        m = BandMap(out_shape, a_shape, lambda: [(axis, np.zeros(n, np.int64), np.arange(n, dtype=np.int64))])
        parents = [inputs[0].node] if is_t(inputs[0]) else []
    elif method == "reduceat":
        a_shape = np.shape(raw_inputs[0])
        axis = kwargs.get("axis", 0) % max(len(a_shape), 1)
        idx = np.asarray(raw_inputs[1] if len(raw_inputs) > 1 else kwargs["indices"], dtype=np.int64)
        n = a_shape[axis]
        lo = idx.copy()
        nxt = np.append(idx[1:], n)
        hi = np.where(lo < nxt, nxt - 1, lo)
        m = BandMap(out_shape, a_shape, [(axis, lo, hi)])
        parents = [inputs[0].node] if is_t(inputs[0]) else []
        if len(inputs) > 1 and is_t(inputs[1]):
            parents_ctrl = inputs[1]
            parts = [(m, (0,) if parents else ())]
            k = len(parents)
            parts.append((EinsumMap([("i",)], tuple(f"o{j}" if j != axis else "i" for j in range(len(out_shape))),
                                    out_shape, [parents_ctrl.shape]), (k,)))
            parents.append(parents_ctrl.node)
            m = UnionMap(out_shape, [p.shape for p in parents], [pp for pp in parts if pp[1]])
            control = (k,)
    elif method == "outer":
        sa, sb = (np.shape(v) for v in raw_inputs)
        la = tuple(("a", j) for j in range(len(sa)))
        lb = tuple(("b", j) for j in range(len(sb)))
        shapes, labels, parents = [], [], []
        for x, lab in zip(inputs, (la, lb)):
            if is_t(x):
                shapes.append(x.shape)
                labels.append(lab)
                parents.append(x.node)
        m = EinsumMap(labels, la + lb, out_shape, shapes)
    else:  # pragma: no cover - numpy has no other methods
        m = OpaqueMap(out_shape, [x.shape for x in tracked])
        parents = [x.node for x in tracked]
        partial = f"ufunc method {method} is opaque"

    nodes = [make_node(name, r.shape, m, parents, control, partial) for r in results]
    if partial:
        warn_partial(name, partial)
    if any(o is not None for o in outs):
        ret = []
        for j, (o, node, r) in enumerate(zip(outs, nodes, results)):
            if o is None:
                ret.append(_wrap(r, node))
            elif is_t(o):
                _write_result(o, node, wmask if method == "__call__" else None)
                ret.append(o)
            else:
                if tracked:
                    import warnings
                    from ..errors import LineageLostWarning
                    warnings.warn("whence: tracked values were written into a plain array through out=; their "
                                  "lineage stops there", LineageLostWarning, stacklevel=3)
                ret.append(o)
        if fp_error is not None:
            raise fp_error
        return tuple(ret) if isinstance(out, tuple) and len(ret) > 1 else (
            ret[0] if not isinstance(result, tuple) else tuple(ret))
    wrapped = [_wrap(r, node) for r, node in zip(results, nodes)]
    return tuple(wrapped) if isinstance(result, tuple) else wrapped[0]


def _written_outputs(ufunc, outs, first):
    """The outputs of a ufunc call that raised a floating-point error after writing ``out=`` (an output
    not given is a placeholder of the written outputs' shape: only its shape is used)."""
    given = [o for o in outs if o is not None]
    if not given:  # ufunc.at: the first operand was written
        return raw(first)
    res = tuple(o if o is not None else np.empty(given[0].shape) for o in outs)
    return res if ufunc.nout > 1 else res[0]


def _write_result(o, node, wmask):
    """Write a full-shape result node into the tracked ``out`` array, only where ``wmask`` is True."""
    if wmask is None or bool(np.all(wmask)):
        o._write(None, node, node.shape)
        return
    wm = np.array(np.broadcast_to(wmask, o.shape))
    n = math.prod(o.shape)

    def src(wm=wm, shape=o.shape):
        idx = np.arange(1, n + 1, dtype=np.int64).reshape(shape)
        return idx[wm]

    k = int(wm.sum())
    sel = make_node("where_select", (k,), GatherMap((k,), [node.shape], src, stored=[wm]), [node], internal=True)
    o._write(lambda idx, wm=wm: idx[wm], sel, (k,))


def _at(ufunc, inputs, kwargs):
    """``ufunc.at(a, indices, b)``: unbuffered in place; each written cell adds the scattered cells of ``b``."""
    a = inputs[0]
    if not is_t(a):
        return None
    indices = inputs[1] if len(inputs) > 1 else kwargs.get("indices")
    b = inputs[2] if len(inputs) > 2 else kwargs.get("b")
    key = raw(indices)
    key = key if isinstance(key, tuple) else (key,)
    key = tuple(np.array(k, copy=True) if isinstance(k, (np.ndarray, list)) else k for k in key)
    k1 = key if len(key) != 1 else key[0]
    shape = a.shape
    n = math.prod(shape)
    old = a.node
    parents = [old]
    parts = [(ElementwiseMap(shape, [shape]), (0,))]
    if is_t(b):
        bshape = b.shape

        def pairs(k, k1=k1, shape=shape, bshape=bshape):
            pos = np.arange(n, dtype=np.int64).reshape(shape)[k1]
            bs = bshape
            while len(bs) > pos.ndim and bs[0] == 1:
                bs = bs[1:]
            bi = np.broadcast_to(np.arange(math.prod(bs), dtype=np.int64).reshape(bs), pos.shape)
            return pos.ravel(), bi.ravel()

        parts.append((PairsMap(shape, [bshape], pairs, stored=[v for v in key if isinstance(v, np.ndarray)]), (1,)))
        parents.append(b.node)
    m = UnionMap(shape, [p.shape for p in parents], parts)
    node = make_node(f"{ufunc.__name__}.at", shape, m, parents)
    a._write(None, node, shape)
    return None


_SIG_RE = re.compile(r"\(([^()]*)\)")


@functools.lru_cache(maxsize=4096)
def gufunc_labels(signature, shapes):
    """Einsum-style labels for a generalized ufunc call; returns (op_labels, out_labels)."""
    ins, outs = signature.split("->")
    in_cores = [[c.strip() for c in g.split(",") if c.strip()] for g in _SIG_RE.findall(ins)]
    out_cores = [[c.strip() for c in g.split(",") if c.strip()] for g in _SIG_RE.findall(outs)]
    missing = set()
    for core, shape in zip(in_cores, shapes):
        if len(shape) < len(core):
            opt = [c for c in core if c.endswith("?")]
            for c in opt[: len(core) - len(shape)]:
                missing.add(c)
    op_labels = []
    loops = []
    for core, shape in zip(in_cores, shapes):
        core = [c for c in core if c not in missing]
        nl = len(shape) - len(core)
        loops.append(shape[:nl])
        op_labels.append((nl, [c.rstrip("?") for c in core]))
    lshape = np.broadcast_shapes(*loops) if loops else ()
    L = len(lshape)
    labels = []
    for nl, core in op_labels:
        labels.append(tuple(("loop", L - nl + t) for t in range(nl)) + tuple(core))
    out_core = [c.rstrip("?") for c in out_cores[0] if c not in missing]
    out_labels = tuple(("loop", t) for t in range(L)) + tuple(out_core)
    return labels, out_labels


def _gufunc_map(ufunc, raw_inputs, tracked, inputs, out_shape, kwargs):
    if "axes" in kwargs or "axis" in kwargs:
        return OpaqueMap(out_shape, [x.shape for x in tracked]), f"{ufunc.__name__} with axes= is opaque"
    shapes = tuple(np.shape(v) for v in raw_inputs)
    labels, out_labels = gufunc_labels(ufunc.signature, shapes)
    sel = [lab for lab, x in zip(labels, inputs) if is_t(x)]
    return EinsumMap(sel, out_labels, out_shape, [x.shape for x in tracked]), None
