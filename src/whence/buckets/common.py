"""Helpers shared by the op buckets: unwrapping operands and building result arrays with their maps."""

from __future__ import annotations

import numpy as np

from ..maps import ElementwiseMap, replay_gather
from ..tracked import TrackedArray, wrap as _wrap, as_values, make_node, shares_buffer

__all__ = ["raw", "is_t", "freeze", "replay_call", "elementwise_call", "wrap_result", "flatten_nested",
           "internal_ravel"]


def is_t(x):
    return isinstance(x, TrackedArray)


def raw(x):
    """Plain values of ``x``; sequences are unwrapped element by element."""
    if isinstance(x, TrackedArray):
        return x._data
    if isinstance(x, list):
        return [raw(v) for v in x]
    if isinstance(x, tuple):
        return tuple(raw(v) for v in x)
    return x


def freeze(x):
    """A copy of a non-data argument that later user writes cannot change (arrays copied, tracking dropped)."""
    if isinstance(x, TrackedArray):
        return np.array(x._data, copy=True)
    if isinstance(x, np.ndarray):
        return np.array(x, copy=True)
    if isinstance(x, list):
        return [freeze(v) for v in x]
    if isinstance(x, tuple):
        return tuple(freeze(v) for v in x)
    return x


def _shape(x):
    return np.shape(x)


def replay_call(op, operands, replay, detail=""):
    """Run a pure data-movement function and record it as a lazily replayed gather.

    Parameters
    ----------
    op : str
    operands : list
        The data operands (tracked or not), in the order ``replay`` takes them.
    replay : callable
        ``replay(list_of_plain_arrays)`` computes the result; it is called once on the values now and again
        on index arrays when a query needs the cells.
    """
    values = [raw(o) for o in operands]
    result = replay(values)
    tracked = [is_t(o) for o in operands]
    shapes = [_shape(v) for v in values]
    parents = [o.node for o in operands if is_t(o)]
    single = [o for o in operands if is_t(o)]
    multi = isinstance(result, (list, tuple))
    results = list(result) if multi else [result]
    outs = []
    for j, r in enumerate(results):
        r = as_values(r)
        m = replay_gather(r.shape, shapes, tracked, replay, output=j if multi else None)
        t = _wrap(r, make_node(op, r.shape, m, parents, detail=detail))
        if len(operands) == 1 and len(single) == 1 and shares_buffer(r, values[0]):
            src = single[0]
            root = src._root if src._root is not None else src
            src.node  # refresh a stale view before pinning the version
            t._root = root
            t._chain = src._chain + (_view_step(replay, j if multi else None),)
            t._seen = root._version
        outs.append(t)
    if multi:
        return type(result)(outs) if isinstance(result, tuple) and not hasattr(result, "_fields") else outs
    return outs[0]


def _view_step(replay, j):
    if j is None:
        return lambda x: replay([x])
    return lambda x: replay([x])[j]


def elementwise_call(op, operands, compute, detail="", control=()):
    """Record an elementwise (broadcasting) function of ``operands``; untracked ones are constants."""
    values = [raw(o) for o in operands]
    result = compute(values)
    out = wrap_result(op, result, lambda shape: ElementwiseMap(
        shape, [o.shape for o in operands if is_t(o)]), [o for o in operands if is_t(o)], detail=detail)
    if isinstance(out, TrackedArray):
        for o in operands:
            if is_t(o) and o.shape == out.shape and shares_buffer(out._data, o._data) or (
                    is_t(o) and out._data is o._data):
                # numpy returned the operand's own buffer (np.real of a real array, astype(copy=False)):
                # the result is a view, cell for cell
                root = o._root if o._root is not None else o
                o.node
                out._root = root
                out._chain = o._chain + (_identity,)
                out._seen = root._version
                break
    return out


def _identity(x):
    return x


def wrap_result(op, result, make_map, parents, partial=None, detail="", control=()):
    """Wrap ``result`` (an array or a tuple/list of arrays) with one node per output."""
    pnodes = [p.node if is_t(p) else p for p in parents]
    if isinstance(result, (tuple, list)):
        outs = []
        for r in result:
            r = as_values(r)
            outs.append(_wrap(r, make_node(op, r.shape, make_map(r.shape), pnodes, control, partial,
                                           detail=detail)))
        if hasattr(result, "_fields"):
            return type(result)(*outs)
        return type(result)(outs) if isinstance(result, tuple) else outs
    r = as_values(result)
    return _wrap(r, make_node(op, r.shape, make_map(r.shape), pnodes, control, partial, detail=detail))


def flatten_nested(obj):
    """Leaves of nested lists/tuples of arrays, and a function rebuilding the nesting from new leaves."""
    leaves = []

    def walk(o):
        if isinstance(o, (list, tuple)) and not (isinstance(o, tuple) and hasattr(o, "_fields")):
            kids = [walk(v) for v in o]
            return ("list" if isinstance(o, list) else "tuple", kids)
        leaves.append(o)
        return ("leaf", len(leaves) - 1)

    spec = walk(obj)

    def rebuild(new_leaves, spec=spec):
        kind, v = spec
        if kind == "leaf":
            return new_leaves[v]
        kids = [rebuild(new_leaves, s) for s in v]
        return kids if kind == "list" else tuple(kids)

    return leaves, rebuild


def internal_ravel(x):
    """A flattened copy of ``x`` as an internal (hidden) node, for functions that flatten first."""
    if not is_t(x):
        return np.ravel(x)
    data = np.ravel(x._data)
    m = replay_gather(data.shape, [x.shape], [True], lambda xs: np.ravel(xs[0]))
    return _wrap(data, make_node("ravel", data.shape, m, [x.node], internal=True))
