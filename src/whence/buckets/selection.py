"""Bucket C, data-dependent maps: sort, partition, masks, computed indices, ``where``, ``choose``, unique and
set operations, and the in-place writers (``put``, ``place``, ``copyto``, ...).

The index array the operation computes anyway (a permutation, the selected positions, the positions
written) is kept; queries gather through it.  Control edges (``control=True`` in queries) lead from each
output cell to the mask, condition or index-array cell that chose it.
"""

from __future__ import annotations

import math

import numpy as np

from ..maps import ElementwiseMap, GatherMap, LazyIndex, OpaqueMap, PairsMap, UnionMap, replay_gather
from ..tracked import TrackedArray, wrap as _wrap, make_node
from .common import internal_ravel, is_t, raw
from .registry import implements, signature

__all__ = []


def _gather_with_control(op, result, operands, replay, controls=(), stored=(), detail="", elementwise=False):
    """A gather (``replay`` on index arrays) plus control edges ``[(tracked array, src function)]``.

    ``elementwise``: each output cell is a copy of the same cell of one of the operands (``where``,
    ``select``); the gather is then marked ``aligned`` when every operand is tracked and has the output's
    shape, so that composition sees, without computing it, that a cell copied from any of them is copied
    from the same place (:mod:`whence.compose`)."""
    result = np.asarray(result)
    vals = [raw(o) for o in operands]
    shapes = [np.shape(v) for v in vals]
    tracked = [is_t(o) for o in operands]
    data_parents = [o.node for o in operands if is_t(o)]
    gm = replay_gather(result.shape, shapes, tracked, replay, stored=stored)
    if elementwise and all(tracked) and all(tuple(s) == result.shape for s in shapes):
        gm.aligned = True
    return wrap_gather(op, result, gm, data_parents, controls, detail)


def wrap_gather(op, result, gm, data_parents, controls=(), detail=""):
    """``result`` wrapped with the gather map ``gm`` over the nodes ``data_parents``, plus control edges
    ``[(array, map or src function)]`` for the tracked arrays among them (numpy and dask gathers alike)."""
    ctrl = [(c, f) for c, f in controls if is_t(c)]
    if not ctrl:
        return _wrap(result, make_node(op, result.shape, gm, data_parents, detail=detail))
    parents = list(data_parents)
    parts = [(gm, tuple(range(len(parents))))]
    for c, f in ctrl:
        if callable(f):
            parts.append((GatherMap(result.shape, [c.shape], f), (len(parents),)))
        else:  # a map given directly
            parts.append((f, (len(parents),)))
        parents.append(c.node)
    m = UnionMap(result.shape, [p.shape for p in parents], parts)
    m.out_shape = tuple(result.shape)  # as given (a lazy result's sizes may still be unknown)
    return _wrap(result, make_node(op, result.shape, m, parents, control=range(len(data_parents), len(parents)),
                                   detail=detail))


def _small_index(idx):
    """Store an index array as int32 when its values fit (4 bytes per output cell)."""
    idx = np.asarray(idx)
    if idx.dtype.itemsize > 4 and idx.size and idx.dtype.kind in "iu" and int(idx.max(initial=0)) < 2**31 - 1 \
            and int(idx.min(initial=0)) >= 0:
        return idx.astype(np.int32)
    return idx


# ------------------------------------------------------------------------------------- sorting

@implements("C", np.sort, np.partition, np.sort_complex)
def _sort(func, a, *args, **kwargs):
    """Values from numpy's own sort; the permutation (an index per cell, int32 where it fits) matches them
    with the input, equal values in their order (stable), as the lineage contract says."""
    v = raw(a)
    orig = a
    if func is np.sort_complex:
        axis = -1
        kind = None
        p = {}
    else:
        ba = signature(func).bind(a, *args, **kwargs)
        ba.apply_defaults()
        p = dict(ba.arguments)
        axis = p.get("axis", -1)
        kind = p.get("kind")
        if axis is None:
            v = np.ravel(v)
            a = internal_ravel(a) if is_t(a) else a
            axis = -1
    if not is_t(a) or v.ndim == 0 or p.get("order") is not None:
        if func is np.sort_complex:
            values = np.sort_complex(v)
        elif func is np.sort:
            extra = {"stable": p["stable"]} if p.get("stable") is not None else {}
            values = np.sort(v, axis=axis, kind=kind, order=p.get("order"), **extra)
        else:
            values = np.partition(v, p["kth"], axis=axis, kind=p.get("kind", "introselect"), order=p.get("order"))
        if not is_t(a):
            return values
        if v.ndim == 0:
            return _wrap(np.asarray(values), make_node(func.__name__, (), ElementwiseMap((), [()]), [a.node]))
        perm = _match_permutation(v, values, axis % v.ndim)
    else:
        ax = axis % v.ndim
        if func is np.sort_complex:
            values = np.sort_complex(v)
        elif func is np.sort:
            extra = {"stable": p["stable"]} if p.get("stable") is not None else {}
            values = np.sort(v, axis=axis, kind=kind, **extra)
        else:
            values = np.partition(v, p["kth"], axis=axis, kind=p.get("kind", "introselect"))
        # the permutation is computed from the input buffer when a query first needs it, before any write
        # to that buffer, or when the input array is gone (whichever comes first): the sort runs at numpy's
        # speed, and no input values are kept once the input array itself is gone
        if func is np.partition:
            lazy = LazyIndex(lambda v=v, values=values, ax=ax: _match_permutation(v, values, ax))
        else:  # sorted values: the stable order is the permutation (values equal as numbers keep their order)
            # whether two cells of a lane are equal is read now from the sorted values (one pass, before
            # anything can write them): without ties any argsort is the stable order, and the later pass
            # is one argsort, with no gather of the values to look for ties
            ties = has_ties(values, ax)
            lazy = LazyIndex(lambda v=v, ax=ax, ties=ties: sort_permutation(v, ax, ties))
        orig._defer(lazy)
        if v.ndim == 1:  # the replayed operand is arange(1, n + 1): its gather through the permutation
            m = replay_gather(values.shape, [v.shape], [True], lambda xs: lazy.get() + 1, stored=[lazy])
        else:
            m = replay_gather(values.shape, [v.shape], [True],
                              lambda xs: np.take_along_axis(xs[0], lazy.get(), ax), stored=[lazy])
        return _wrap(values, make_node(func.__name__, values.shape, m, [a.node], detail=f"axis={ax}"))
    ax = axis % v.ndim
    if v.size < 2**31 - 1:
        perm = perm.astype(np.int32)
    m = replay_gather(values.shape, [v.shape], [True], lambda xs, perm=perm: np.take_along_axis(xs[0], perm, ax),
                      stored=[perm])
    return _wrap(values, make_node(func.__name__, values.shape, m, [a.node], detail=f"axis={ax}"))


def has_ties(values, axis):
    """True when a lane of ``values`` (sorted along ``axis``) holds two values equal as numbers (NaNs
    count as equal to each other; sorting puts them together at the end of the lane)."""
    if values.ndim == 0 or values.shape[axis] < 2 or values.size == 0:
        return False
    sv = np.moveaxis(values, axis, -1)
    if bool((sv[..., 1:] == sv[..., :-1]).any()):
        return True
    if values.dtype.kind in "fc":
        nan = np.isnan(sv[..., -2:])
        return bool((nan[..., 0] & nan[..., 1]).any())
    return False


def sort_permutation(v, axis, ties):
    """The stable sorting permutation of ``v`` along ``axis`` (:func:`stable_argsort`), int32 where it fits;
    ``ties`` False says that no lane holds two equal values, so that numpy's default argsort is that
    permutation already."""
    perm = stable_argsort(v, axis) if ties else np.argsort(v, axis=axis)
    if v.ndim and v.shape[axis] < 2**31 - 1 and perm.dtype.itemsize > 4:
        perm = perm.astype(np.int32)
    return perm


def stable_argsort(v, axis):
    """``np.argsort(v, axis, kind="stable")``, faster for floats: numpy's default argsort, then the indices
    within each run of equal values put back in increasing order (NaNs count as equal, as sorting puts them
    together at the end)."""
    perm = np.argsort(v, axis=axis)
    if v.shape[axis] < 2:
        return perm
    sv = np.take_along_axis(v, perm, axis)
    sv = np.moveaxis(sv, axis, -1)
    eq = sv[..., 1:] == sv[..., :-1]
    if sv.dtype.kind in "fc":
        nan = np.isnan(sv)
        eq |= nan[..., 1:] & nan[..., :-1]
    if not eq.any():
        return perm
    pm = np.moveaxis(perm, axis, -1)
    L = pm.shape[-1]
    rows = pm.reshape(-1, L)
    starts = np.ones(rows.shape, bool)
    starts[:, 1:] = ~eq.reshape(-1, L - 1)
    run = np.cumsum(starts.ravel()).reshape(rows.shape)  # increasing over rows and along each row
    key = np.sort((run.astype(np.int64) * L + rows).ravel())
    fixed = (key % L).reshape(pm.shape).astype(perm.dtype, copy=False)
    return np.moveaxis(fixed, -1, axis)


def _match_permutation(v, r, axis):
    """A permutation ``perm`` along ``axis`` with ``take_along_axis(v, perm) == r``, for ``r`` a
    rearrangement of each lane of ``v`` (numpy's own partition, whose arrangement argpartition does not
    reproduce).  Equal values are matched in order."""
    sv = stable_argsort(v, axis)
    sr = stable_argsort(r, axis)
    perm = np.empty_like(sv)
    np.put_along_axis(perm, sr, sv, axis)
    return perm


# ------------------------------------------------------------------------------- gathers by index

@implements("C", np.take)
def _take(func, a, indices, axis=None, out=None, mode="raise"):
    n = np.size(raw(a)) if axis is None else np.shape(raw(a))[axis]
    ind = np.asarray(raw(indices))
    ind = ind.astype(np.int32) if (mode == "raise" and n < 2**31 - 1 and ind.dtype.kind in "iu"
                                   and np.ndim(ind) and ind.dtype != np.uint64) else np.array(ind, copy=True)
    result = np.take(raw(a), ind, axis=axis, mode=mode)
    nd = np.ndim(raw(a))

    def ctrl_src():
        ax = 0 if axis is None else axis % nd
        shape = (1,) * ax + ind.shape + (1,) * (0 if axis is None else nd - ax - 1)
        return np.broadcast_to(np.arange(1, ind.size + 1, dtype=np.int64).reshape(shape), np.shape(result))

    return _gather_with_control("take", result, [a], lambda xs: np.take(xs[0], ind, axis=axis, mode=mode),
                                [(indices, ctrl_src)], stored=[ind])


@implements("C", np.take_along_axis)
def _take_along_axis(func, arr, indices, *args, **kwargs):
    ind = raw(indices)
    ax = args[0] if args else kwargs.get("axis", -1)
    result = np.take_along_axis(raw(arr), ind, ax)
    # numpy validated every index against the axis length: when that length fits, int32 holds them all, and
    # the cast is also the copy that protects the lineage from later writes to ``indices``
    n = np.size(raw(arr)) if ax is None else np.shape(raw(arr))[ax]
    ind = np.asarray(ind).astype(np.int32) if n < 2**31 - 1 else np.array(ind, copy=True)
    if ax is None:
        return _gather_with_control("take_along_axis", result, [arr],
                                    lambda xs: np.take_along_axis(xs[0], ind, None),
                                    [(indices, lambda: np.arange(1, ind.size + 1).reshape(ind.shape))], stored=[ind])
    return _gather_with_control(
        "take_along_axis", result, [arr], lambda xs: np.take_along_axis(xs[0], ind, ax),
        [(indices, lambda: np.broadcast_to(np.arange(1, ind.size + 1, dtype=np.int64).reshape(ind.shape),
                                           np.shape(result)))], stored=[ind])


@implements("C", np.choose)
def _choose(func, a, choices, out=None, mode="raise"):
    idx = np.array(raw(a), copy=True)
    if isinstance(choices, TrackedArray) or isinstance(choices, np.ndarray):
        ops = [choices]
        result = np.choose(idx, raw(choices), mode=mode)
        replay = lambda xs: np.choose(idx, xs[0], mode=mode)  # noqa: E731
    else:
        ops = list(choices)
        result = np.choose(idx, [raw(c) for c in ops], mode=mode)
        replay = lambda xs: np.choose(idx, xs, mode=mode)  # noqa: E731
    ctrl = (a, ElementwiseMap(np.shape(result), [np.shape(idx)])) if is_t(a) else (a, None)
    return _gather_with_control("choose", result, ops, replay, [ctrl], stored=[idx])


@implements("C", np.select)
def _select(func, condlist, choicelist, default=0):
    conds = [np.array(raw(c), dtype=bool, copy=True) for c in condlist]
    choices = list(choicelist)
    ops = choices + [default]
    result = np.select(conds, [raw(c) for c in choices], raw(default))
    shape = np.shape(result)
    n = len(choices)
    ctrls = [(c, ElementwiseMap(shape, [c.shape])) for c in condlist if is_t(c)]
    return _gather_with_control("select", result, ops, lambda xs: np.select(conds, xs[:n], xs[n]), ctrls,
                                stored=conds)


@implements("C", np.where)
def _where(func, condition, *xy):
    if not xy:
        return np.nonzero(condition)
    if len(xy) != 2:
        raise ValueError("either both or neither of x and y should be given")
    x, y = xy
    cond = np.array(raw(condition), dtype=bool, copy=True)
    result = np.where(cond, raw(x), raw(y))
    ctrl = [(condition, ElementwiseMap(result.shape, [condition.shape]))] if is_t(condition) else []
    bits = np.packbits(cond)  # a bit per cell for the choice
    shape = cond.shape
    n = cond.size

    def replay(xs, bits=bits, shape=shape, n=n):
        return np.where(np.unpackbits(bits, count=n).reshape(shape).view(bool), xs[0], xs[1])

    return _gather_with_control("where", result, [x, y], replay, ctrl, stored=[bits], elementwise=True)


def _positions_control(cond_flat_nz, out_shape, axis):
    """Control src for compress-like selections: output index j along ``axis`` <- condition cell nz[j]."""
    def src():
        k = out_shape[axis] if out_shape else 0
        col = cond_flat_nz[:k].astype(np.int64) + 1
        shape = [1] * len(out_shape)
        shape[axis] = k
        return np.broadcast_to(col.reshape(shape), out_shape)
    return src


@implements("C", np.compress)
def _compress(func, condition, a, axis=None, out=None):
    cond = np.array(raw(condition), dtype=bool, copy=True)
    result = np.compress(cond, raw(a), axis=axis)
    nz = np.flatnonzero(cond)
    ax = 0 if axis is None else axis % np.ndim(raw(a))
    return _gather_with_control("compress", result, [a], lambda xs: np.compress(cond, xs[0], axis=axis),
                                [(condition, _positions_control(nz, result.shape, ax))], stored=[cond])


@implements("C", np.extract)
def _extract(func, condition, arr):
    cond = np.array(raw(condition), copy=True)
    result = np.extract(cond, raw(arr))
    nz = np.flatnonzero(np.ravel(cond))
    return _gather_with_control("extract", result, [arr], lambda xs: np.extract(cond, xs[0]),
                                [(condition, _positions_control(nz, result.shape, 0))], stored=[cond])


@implements("C", np.nonzero, np.argwhere, np.flatnonzero)
def _positions(func, a):
    v = raw(a)
    result = func(v)
    if not is_t(a):
        return result
    nz = _small_index(np.flatnonzero(v))
    if func is np.nonzero:
        outs = []
        for r in result:
            outs.append(_wrap(r, make_node("nonzero", r.shape, GatherMap(r.shape, [a.shape], lambda: nz + 1,
                                                                         stored=[nz]), [a.node])))
        return tuple(outs)
    if func is np.argwhere:
        shape = result.shape
        m = GatherMap(shape, [a.shape], lambda: np.broadcast_to((nz.astype(np.int64) + 1)[:, None], shape),
                      stored=[nz])
        return _wrap(result, make_node("argwhere", shape, m, [a.node]))
    return _wrap(result, make_node("flatnonzero", result.shape, GatherMap(result.shape, [a.shape],
                                                                          lambda: nz.astype(np.int64) + 1,
                                                                          stored=[nz]), [a.node]))


@implements("C", np.trim_zeros)
def _trim_zeros(func, filt, trim="fb", *args, **kwargs):
    v = raw(filt)
    result = np.trim_zeros(v, trim, *args, **kwargs)
    if not is_t(filt):
        return result
    if np.ndim(v) != 1:
        from .opaque import opaque_result
        return opaque_result("trim_zeros", result, [filt], "trim_zeros of an N-d array")
    nz = np.flatnonzero(v)
    start = int(nz[0]) if (nz.size and "f" in trim.lower()) else 0
    if nz.size == 0:
        start = 0
    stop = start + len(result)
    return _gather_with_control("trim_zeros", result, [filt], lambda xs: xs[0][start:stop])


@implements("C", np.bincount)
def _bincount(func, x, weights=None, minlength=0):
    xv = np.array(raw(x), copy=True)
    result = np.bincount(xv, raw(weights), minlength)
    ops = [o for o in (x, weights) if is_t(o)]
    if not ops:
        return result
    xi = xv.astype(np.int64)

    def pairs(k):
        return xi, np.arange(xi.size, dtype=np.int64)

    m = PairsMap(result.shape, [o.shape for o in ops], pairs, stored=[xi])
    return _wrap(result, make_node("bincount", result.shape, m, [o.node for o in ops]))


# --------------------------------------------------------------------------------- unique, sets

def _first_occurrence(flat, values, equal_nan=True):
    """Flat index of the first occurrence in ``flat`` of each of ``values``."""
    u, first = np.unique(flat, return_index=True, equal_nan=equal_nan) if _has_equal_nan() else np.unique(
        flat, return_index=True)
    pos = np.searchsorted(u, values)
    pos = np.clip(pos, 0, max(len(u) - 1, 0))
    return first[pos] if len(u) else np.zeros(0, np.int64)


def _has_equal_nan():
    try:
        np.unique(np.zeros(1), equal_nan=True)
        return True
    except TypeError:
        return False


@implements("C", np.unique)
def _unique(func, ar, return_index=False, return_inverse=False, return_counts=False, axis=None, **kwargs):
    v = raw(ar)
    result = np.unique(v, return_index, return_inverse, return_counts, axis, **kwargs)
    if not is_t(ar):
        return result
    results = list(result) if isinstance(result, tuple) else [result]
    names = ["values"] + [n for n, f in (("index", return_index), ("inverse", return_inverse),
                                         ("counts", return_counts)) if f]
    if axis is None:
        flat = np.ravel(v)
        first = _small_index(_first_occurrence(flat, results[0], kwargs.get("equal_nan", True)))
        outs = []
        inv = None
        for name, r in zip(names, results):
            r = np.asarray(r)
            if name in ("values", "index"):
                m = GatherMap(r.shape, [ar.shape], lambda first=first: first.astype(np.int64) + 1, stored=[first])
            elif name == "inverse":
                m = GatherMap(r.shape, [ar.shape], lambda r=r: np.arange(1, r.size + 1, dtype=np.int64).reshape(r.shape))
            else:
                inv = np.unique(flat, return_inverse=True)[1].ravel().astype(np.int64)
                m = PairsMap(r.shape, [ar.shape], lambda k, inv=inv: (inv, np.arange(inv.size, dtype=np.int64)),
                             stored=[inv])
            outs.append(_wrap(r, make_node(f"unique.{name}" if name != "values" else "unique", r.shape, m,
                                           [ar.node])))
        return tuple(outs) if isinstance(result, tuple) else outs[0]
    ax = axis % v.ndim
    _, first, inv = np.unique(v, return_index=True, return_inverse=True, axis=ax)
    inv = np.ravel(inv).astype(np.int64)
    coord = np.indices(v.shape)[ax].ravel()
    outs = []
    for name, r in zip(names, results):
        r = np.asarray(r)
        if name == "values":
            fi = first.copy()
            m = replay_gather(r.shape, [v.shape], [True], lambda xs, fi=fi: np.take(xs[0], fi, axis=ax), stored=[fi])
        else:
            if name == "index":
                grp = np.full(v.shape[ax], -1, np.int64)
                grp[first] = np.arange(first.size)
                g = grp[coord]
            elif name == "inverse":
                g = coord.astype(np.int64)
            else:
                g = inv[coord]
            keep = g >= 0
            o, i = g[keep], np.flatnonzero(keep)
            m = PairsMap(r.shape, [v.shape], lambda k, o=o, i=i: (o, i), stored=[o, i])
        outs.append(_wrap(r, make_node(f"unique.{name}" if name != "values" else "unique", r.shape, m, [ar.node])))
    return tuple(outs) if isinstance(result, tuple) else outs[0]


def _unique_api(func, x, names):
    v = raw(x)
    result = func(v)
    if not is_t(x):
        return result
    results = list(result) if isinstance(result, tuple) else [result]
    flat = np.ravel(v)
    first = _small_index(_first_occurrence(flat, np.asarray(results[0])))
    inv = None
    outs = []
    for name, r in zip(names, results):
        r = np.asarray(r)
        if name in ("values", "indices"):
            m = GatherMap(r.shape, [x.shape], lambda: first.astype(np.int64) + 1, stored=[first])
        elif name == "inverse_indices":
            m = GatherMap(r.shape, [x.shape], lambda r=r: np.arange(1, r.size + 1, dtype=np.int64).reshape(r.shape))
        else:
            inv = np.asarray(results[names.index("inverse_indices")]).ravel().astype(np.int64) \
                if "inverse_indices" in names else np.searchsorted(np.asarray(results[0]), flat)
            m = PairsMap(r.shape, [x.shape], lambda k, inv=inv: (inv, np.arange(inv.size, dtype=np.int64)),
                         stored=[inv])
        outs.append(_wrap(r, make_node(f"{func.__name__}.{name}", r.shape, m, [x.node])))
    if hasattr(result, "_fields"):
        return type(result)(*outs)
    return outs[0] if not isinstance(result, tuple) else tuple(outs)


if hasattr(np, "unique_values"):
    @implements("C", np.unique_values)
    def _unique_values(func, x):
        return _unique_api(func, x, ["values"])

    @implements("C", np.unique_counts)
    def _unique_counts(func, x):
        return _unique_api(func, x, ["values", "counts"])

    @implements("C", np.unique_inverse)
    def _unique_inverse(func, x):
        return _unique_api(func, x, ["values", "inverse_indices"])

    @implements("C", np.unique_all)
    def _unique_all(func, x):
        return _unique_api(func, x, ["values", "indices", "inverse_indices", "counts"])


@implements("C", np.intersect1d)
def _intersect1d(func, ar1, ar2, assume_unique=False, return_indices=False):
    v1, v2 = raw(ar1), raw(ar2)
    vals, i1, i2 = np.intersect1d(v1, v2, assume_unique, return_indices=True)
    result = (vals, i1, i2) if return_indices else vals
    ts = [x for x in (ar1, ar2) if is_t(x)]
    if not ts:
        return result
    parents, parts = [], []
    for x, idx in ((ar1, i1), (ar2, i2)):
        if is_t(x):
            parts.append((GatherMap(vals.shape, [x.shape], lambda idx=idx: idx.astype(np.int64) + 1, stored=[idx]),
                          (len(parents),)))
            parents.append(x.node)
    m = UnionMap(vals.shape, [p.shape for p in parents], parts)
    out = _wrap(vals, make_node("intersect1d", vals.shape, m, parents))
    if not return_indices:
        return out
    extra = []
    for x, idx in ((ar1, i1), (ar2, i2)):
        if is_t(x):
            extra.append(_wrap(idx, make_node("intersect1d.indices", idx.shape, GatherMap(
                idx.shape, [x.shape], lambda idx=idx: idx.astype(np.int64) + 1, stored=[idx]), [x.node])))
        else:
            extra.append(idx)
    return (out, *extra)


@implements("C", np.union1d)
def _union1d(func, ar1, ar2):
    v1, v2 = np.ravel(raw(ar1)), np.ravel(raw(ar2))
    result = np.union1d(v1, v2)
    ops = [x for x in (ar1, ar2)]
    if not any(is_t(x) for x in ops):
        return result
    both = np.concatenate([v1, v2])
    first = _first_occurrence(both, result)
    n1 = v1.size
    parents, parts = [], []
    for k, x in enumerate(ops):
        if not is_t(x):
            continue
        lo, hi = (0, n1) if k == 0 else (n1, both.size)
        sel = np.where((first >= lo) & (first < hi), first - lo + 1, 0)
        parts.append((GatherMap(result.shape, [x.shape], lambda sel=sel: sel, stored=[sel]), (len(parents),)))
        parents.append(x.node)
    m = UnionMap(result.shape, [p.shape for p in parents], parts)
    return _wrap(result, make_node("union1d", result.shape, m, parents))


@implements("C", np.setdiff1d, np.setxor1d)
def _setdiff(func, ar1, ar2, assume_unique=False):
    v1, v2 = raw(ar1), raw(ar2)
    result = func(v1, v2, assume_unique)
    if not (is_t(ar1) or is_t(ar2)):
        return result
    parents, parts = [], []
    if func is np.setxor1d:
        # which values survive depends on every cell of both arrays
        for x in (ar1, ar2):
            if is_t(x):
                parts.append((OpaqueMap(result.shape, [x.shape]), (len(parents),)))
                parents.append(x.node)
    else:
        flat = np.ravel(v1)
        if assume_unique:
            first = np.flatnonzero(~np.isin(flat, v2))
        else:
            first = _first_occurrence(flat, result)
        if is_t(ar1):
            parts.append((GatherMap(result.shape, [ar1.shape], lambda: first.astype(np.int64) + 1, stored=[first]),
                          (len(parents),)))
            parents.append(ar1.node)
        if is_t(ar2):
            parts.append((OpaqueMap(result.shape, [ar2.shape]), (len(parents),)))
            parents.append(ar2.node)
    m = UnionMap(result.shape, [p.shape for p in parents], parts)
    return _wrap(result, make_node(func.__name__, result.shape, m, parents))


# ------------------------------------------------------------------------------ in-place writers

def _inplace(op, target, value_ops, apply):
    """Apply an in-place writer to ``target``'s values, and record it by replaying it on index arrays.

    ``apply(target_array, value_arrays)`` performs the write in place.
    """
    vals = [raw(v) for v in value_ops]
    if is_t(target):
        target._before_write()
    try:
        apply(target._data if is_t(target) else target, vals)
    except FloatingPointError:
        # np.errstate(invalid="raise") on a cast: numpy wrote every cell, then reported; record, then raise
        if not is_t(target):
            raise
        _record_inplace(op, target, value_ops, vals, apply)
        raise
    if not is_t(target):
        return None
    _record_inplace(op, target, value_ops, vals, apply)
    return None


def _record_inplace(op, target, value_ops, vals, apply):
    shape = target.shape
    n = math.prod(shape)
    tracked = [is_t(v) for v in value_ops]
    vshapes = [np.shape(v) for v in vals]

    def src():
        t = np.arange(1, n + 1, dtype=np.int64).reshape(shape)
        xs, off = [], n
        for s, tr in zip(vshapes, tracked):
            k = math.prod(s)
            if tr:
                xs.append(np.arange(off + 1, off + 1 + k, dtype=np.int64).reshape(s))
                off += k
            else:
                xs.append(np.zeros(s, np.int64))
        apply(t, xs)
        return t

    parents = [target.node] + [v.node for v in value_ops if is_t(v)]
    m = GatherMap(shape, [p.shape for p in parents], src)
    node = make_node(op, shape, m, parents)
    target._write(None, node, shape)
    return None


@implements("C", np.put)
def _put(func, a, ind, v, mode="raise"):
    ind = np.array(raw(ind), copy=True)
    return _inplace("put", a, [v], lambda t, xs: np.put(t, ind, xs[0], mode=mode))


@implements("C", np.putmask)
def _putmask(func, a, mask, values):
    mask = np.array(raw(mask), dtype=bool, copy=True)
    return _inplace("putmask", a, [values], lambda t, xs: np.putmask(t, mask, xs[0]))


@implements("C", np.place)
def _place(func, arr, mask, vals):
    mask = np.array(raw(mask), dtype=bool, copy=True)
    return _inplace("place", arr, [vals], lambda t, xs: np.place(t, mask, xs[0]))


@implements("C", np.copyto)
def _copyto(func, dst, src, casting="same_kind", where=True):
    w = np.array(raw(where), dtype=bool, copy=True)
    if not is_t(dst):
        np.copyto(dst, raw(src), casting=casting, where=w)
        return None
    # check casting on the real values first, then replay unsafely on the index arrays
    return _inplace("copyto", dst, [src], lambda t, xs: np.copyto(
        t, xs[0], casting=casting if t is dst._data else "unsafe", where=w))


@implements("C", np.put_along_axis)
def _put_along_axis(func, arr, indices, values, axis):
    ind = np.array(raw(indices), copy=True)
    return _inplace("put_along_axis", arr, [values], lambda t, xs: np.put_along_axis(t, ind, xs[0], axis))


@implements("C", np.fill_diagonal)
def _fill_diagonal(func, a, val, wrap=False):
    return _inplace("fill_diagonal", a, [val], lambda t, xs: np.fill_diagonal(t, xs[0], wrap))
