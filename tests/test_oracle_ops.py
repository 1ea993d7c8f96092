"""A grid of numpy functions x random inputs: every output cell's lineage against the oracle.

Each case runs one numpy call on whence TrackedArrays and the matching
by-definition computation of tests/oracle.py on the same values, then compares
``wh.backward`` for every output cell (and ``control=True`` where a mask /
condition / index array chose the copy), ``wh.forward`` for a few source
cells, and the values.  Opaque functions must warn, be PARTIAL and give a
superset; ``np.partition`` is only checked lane by lane (its order among equal
keys is not defined).

The module also checks the oracle itself: against hand-computed examples and,
for every pure move, against the tag-tracing oracle ``O.trace_move``.
"""

from __future__ import annotations

import pathlib
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import oracle as O

# ----------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------


def F(r, shape):
    """Distinct floats (no ties), a few negative."""
    n = int(np.prod(shape))
    return ((r.permutation(n) - n / 3) / 4.0).reshape(shape)


def I(r, shape, lo=0, hi=4):
    """Small integers, many ties."""
    return r.integers(lo, hi, size=shape).astype(np.int64)


def SQ(r, n=3, batch=()):
    """Well-conditioned square matrices."""
    return np.round(r.uniform(-1, 1, batch + (n, n)), 3) + 3 * np.eye(n)


class Case:
    def __init__(self, id, make, lib, ora, mode="exact", control=False, move=None):
        self.id = id
        self.make = make
        self.lib = lib
        self.ora = ora
        self.mode = mode          # "exact", "opaque", "partition"
        self.control = control    # also compare control=True answers exactly
        self.move = move          # plain-numpy function of the inputs for the tag-trace cross-check

    def __repr__(self):
        return self.id


def _cp(x):
    return x.copy()


def _put(x, ind, v):
    x = x.copy()
    np.put(x, ind, v)
    return x


def _o_put(x, ind, v):
    x = O.copy(x)
    flat = O.OArray(x.val.reshape(-1), x.rec.reshape(-1))  # views of the fresh copy
    vv = O.as_oarray(v)
    vf = O.ravel(vv)
    for k, i in enumerate(np.ravel(ind)):
        O.setitem(flat, (int(i),), O.getitem(vf, (k % vf.size,)))
    return x


def _place(x, m, v):
    x = x.copy()
    np.place(x, m, v)
    return x


def _o_place(x, m, v):
    x = O.copy(x)
    vv = O.ravel(O.as_oarray(v))
    k = 0
    for idx in np.ndindex(*x.shape):
        if np.asarray(m)[idx]:
            O.setitem(x, idx, O.getitem(vv, (k % vv.size,)))
            k += 1
    return x


def _copyto(x, v):
    x = x.copy()
    np.copyto(x, v)
    return x


def _o_copyto(x, v):
    x = O.copy(x)
    O.setitem(x, (Ellipsis,), v)
    return x


def _sum_out(a):
    buf = a[1] * 0.0                 # a tracked buffer: its old lineage must be replaced
    np.sum(a, axis=0, out=buf)
    return buf


def _o_sum_out(a):
    r = O.reduce(np.sum, a, axis=0)
    return O.OArray(r.val.copy(), r.rec.copy())


def _cumsum_out_view(a):
    x = a.copy()
    np.cumsum(a[0], out=x[2])       # out= is a view of another tracked array
    return x


def _o_cumsum_out_view(a):
    x = O.copy(a)
    r = O.accumulate(np.cumsum, O.getitem(a, (0,)), axis=0)
    O.setitem(x, (2,), r)
    return x


def _matmul_out(a, b):
    c = b[:3] * 0.0                  # a tracked buffer: its old lineage must be replaced
    np.matmul(a, b, out=c)
    return c


def _o_matmul_out(a, b):
    r = O.matmul(a, b)
    return O.OArray(r.val.copy(), r.rec.copy())


def _clip_inplace(a, lo):
    x = a.copy()
    np.clip(x, lo, 1.0, out=x)
    return x


def _negative_out_strided(a, b):
    x = a.copy()
    np.negative(b, out=x[::2, 1:])
    return x


def _o_negative_out_strided(a, b):
    x = O.copy(a)
    v = O.getitem(x, (slice(None, None, 2), slice(1, None)))
    O.ufunc_out(np.negative, b, out=v)
    return x


def _o_cov(a):
    val = np.cov(a.val)
    rows = [O.union(a.rec[i]) for i in range(a.shape[0])]
    return O.OArray(val, O._fill(val, lambda o: O.union([rows[o[0]], rows[o[1]]])))


def _o_corrcoef(a):
    r = _o_cov(a)
    return O.OArray(np.corrcoef(a.val), r.rec)


def _o_vecdot(a, b):
    val = np.vecdot(a.val, b.val)
    return O.OArray(val, O._fill(val, lambda o: O.union(list(a.rec[o]) + list(b.rec))))


def _fill_method(x):
    x = x.copy()
    x.fill(0.5)
    return x


def _o_fill(x):
    x = O.copy(x)
    O.setitem(x, (Ellipsis,), 0.5)
    return x


def _inplace_sort(x):
    x = x.copy()
    x.sort(axis=0)
    return x


def _o_inplace_sort(x):
    x = O.copy(x)
    s = O.sort(x, axis=0)
    x.rec[...] = s.rec
    x.val[...] = s.val
    return x


def _add_at(x, b):
    x = x.copy()
    np.add.at(x, np.array([0, 2, 0]), b)
    return x


def _o_add_at(x, b):
    x = O.copy(x)
    O.ufunc_at(np.add, x, (np.array([0, 2, 0]),), b)
    return x


def _iadd(x, b):
    x = x.copy()
    x += b
    return x


def _o_iadd(x, b):
    x = O.copy(x)
    O.iop(np.add, x, b)
    return x


def _out(x, b):
    y = x.copy()
    np.multiply(x, b, out=y)
    return y


def _o_out(x, b):
    y = O.copy(x)
    O.ufunc_out(np.multiply, x, b, out=y)
    return y


def _setitem_mask(x, b):
    x = x.copy()
    x[x > 0] = b[x > 0]
    return x


def _o_setitem_mask(x, b):
    x = O.copy(x)
    m = O.elementwise(np.greater, x, 0)
    O.setitem(x, m, O.getitem(b, m))
    return x


def _o_out_generic(fn, x, *args):
    y = O.copy(x)
    O.ufunc_out(fn, x, *args, out=y)
    return y


def gt(o, t=0.0):
    return O.elementwise(np.greater, o, t)


W3 = np.array([0.5, 1.0, 2.0, 0.25])
MASK34 = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])

CASES = [
    # ---- moves and copies ------------------------------------------------
    Case("reshape", lambda r: [F(r, (2, 6))], lambda a: np.reshape(a, (3, 4)), lambda a: O.reshape(a, (3, 4)),
         move=lambda a: np.reshape(a, (3, 4))),
    Case("ravel", lambda r: [F(r, (2, 3, 2))], lambda a: a.ravel(), lambda a: O.ravel(a), move=np.ravel),
    Case("transpose", lambda r: [F(r, (2, 3, 4))], lambda a: np.transpose(a, (1, 2, 0)),
         lambda a: O.transpose(a, (1, 2, 0)), move=lambda a: np.transpose(a, (1, 2, 0))),
    Case("swapaxes", lambda r: [F(r, (2, 3, 4))], lambda a: np.swapaxes(a, 0, 2), lambda a: O.swapaxes(a, 0, 2),
         move=lambda a: np.swapaxes(a, 0, 2)),
    Case("moveaxis", lambda r: [F(r, (2, 3, 4))], lambda a: np.moveaxis(a, 0, -1), lambda a: O.moveaxis(a, 0, -1),
         move=lambda a: np.moveaxis(a, 0, -1)),
    Case("flip", lambda r: [F(r, (3, 4))], lambda a: np.flip(a, axis=1), lambda a: O.flip(a, 1),
         move=lambda a: np.flip(a, axis=1)),
    Case("flip_all", lambda r: [F(r, (3, 4))], lambda a: np.flip(a), lambda a: O.flip(a), move=np.flip),
    Case("rot90", lambda r: [F(r, (3, 4))], lambda a: np.rot90(a), lambda a: O.rot90(a), move=np.rot90),
    Case("rot90_k3", lambda r: [F(r, (2, 3, 4))], lambda a: np.rot90(a, 3, axes=(1, 2)),
         lambda a: O.rot90(a, 3, (1, 2)), move=lambda a: np.rot90(a, 3, axes=(1, 2))),
    Case("roll_flat", lambda r: [F(r, (3, 4))], lambda a: np.roll(a, 5), lambda a: O.roll(a, 5),
         move=lambda a: np.roll(a, 5)),
    Case("roll_axes", lambda r: [F(r, (3, 4))], lambda a: np.roll(a, (1, -1), axis=(0, 1)),
         lambda a: O.roll(a, (1, -1), (0, 1)), move=lambda a: np.roll(a, (1, -1), axis=(0, 1))),
    Case("tile", lambda r: [F(r, (2, 3))], lambda a: np.tile(a, (2, 1, 2)), lambda a: O.tile(a, (2, 1, 2)),
         move=lambda a: np.tile(a, (2, 1, 2))),
    Case("repeat", lambda r: [F(r, (2, 3))], lambda a: np.repeat(a, [1, 0, 3], axis=1),
         lambda a: O.repeat(a, np.array([1, 0, 3]), 1), move=lambda a: np.repeat(a, [1, 0, 3], axis=1)),
    Case("repeat_flat", lambda r: [F(r, (2, 3))], lambda a: np.repeat(a, 2), lambda a: O.repeat(a, 2),
         move=lambda a: np.repeat(a, 2)),
    Case("concatenate", lambda r: [F(r, (2, 3)), F(r, (1, 3))], lambda a, b: np.concatenate([a, b, a]),
         lambda a, b: O.concatenate([a, b, a]), move=lambda a, b: np.concatenate([a, b, a])),
    Case("concatenate_none", lambda r: [F(r, (2, 3)), F(r, (4,))],
         lambda a, b: np.concatenate([a, np.ones(2), b], axis=None),
         lambda a, b: O.concatenate([a, np.ones(2), b], axis=None),
         move=lambda a, b: np.concatenate([a, np.zeros(2, dtype=a.dtype), b], axis=None)),  # tags: 0 = constant
    Case("stack", lambda r: [F(r, (2, 3)), F(r, (2, 3))], lambda a, b: np.stack([a, b], axis=1),
         lambda a, b: O.stack([a, b], axis=1), move=lambda a, b: np.stack([a, b], axis=1)),
    Case("vstack", lambda r: [F(r, (3,)), F(r, (2, 3))], lambda a, b: np.vstack([a, b]),
         lambda a, b: O.vstack([a, b]), move=lambda a, b: np.vstack([a, b])),
    Case("hstack", lambda r: [F(r, (2, 3)), F(r, (2, 1))], lambda a, b: np.hstack([a, b]),
         lambda a, b: O.hstack([a, b]), move=lambda a, b: np.hstack([a, b])),
    Case("dstack", lambda r: [F(r, (2, 3)), F(r, (2, 3))], lambda a, b: np.dstack([a, b]),
         lambda a, b: O.dstack([a, b]), move=lambda a, b: np.dstack([a, b])),
    Case("column_stack", lambda r: [F(r, (3,)), F(r, (3, 2))], lambda a, b: np.column_stack([a, b]),
         lambda a, b: O.column_stack([a, b]), move=lambda a, b: np.column_stack([a, b])),
    Case("block", lambda r: [F(r, (2, 2)), F(r, (2, 1)), F(r, (1, 3))], lambda a, b, c: np.block([[a, b], [c]]),
         lambda a, b, c: O.block([[a, b], [c]]), move=lambda a, b, c: np.block([[a, b], [c]])),
    Case("pad_constant", lambda r: [F(r, (2, 3))], lambda a: np.pad(a, ((1, 0), (2, 1)), constant_values=9.0),
         lambda a: O.pad(a, ((1, 0), (2, 1)), constant_values=9.0), move=lambda a: np.pad(a, ((1, 0), (2, 1)))),
    Case("pad_edge", lambda r: [F(r, (2, 3))], lambda a: np.pad(a, 2, mode="edge"), lambda a: O.pad(a, 2, "edge"),
         move=lambda a: np.pad(a, 2, mode="edge")),
    Case("pad_wrap", lambda r: [F(r, (2, 3))], lambda a: np.pad(a, ((1, 1), (0, 2)), mode="wrap"),
         lambda a: O.pad(a, ((1, 1), (0, 2)), "wrap"), move=lambda a: np.pad(a, ((1, 1), (0, 2)), mode="wrap")),
    Case("squeeze", lambda r: [F(r, (1, 3, 1))], lambda a: np.squeeze(a), lambda a: O.squeeze(a), move=np.squeeze),
    Case("expand_dims", lambda r: [F(r, (2, 3))], lambda a: np.expand_dims(a, (0, 2)),
         lambda a: O.expand_dims(a, (0, 2)), move=lambda a: np.expand_dims(a, (0, 2))),
    Case("broadcast_to", lambda r: [F(r, (3, 1))], lambda a: np.broadcast_to(a, (2, 3, 4)),
         lambda a: O.broadcast_to(a, (2, 3, 4)), move=lambda a: np.broadcast_to(a, (2, 3, 4))),
    Case("tril", lambda r: [F(r, (3, 4))], lambda a: np.tril(a, -1), lambda a: O.tril(a, -1),
         move=lambda a: np.tril(a, -1)),
    Case("triu", lambda r: [F(r, (2, 3, 3))], lambda a: np.triu(a, 1), lambda a: O.triu(a, 1),
         move=lambda a: np.triu(a, 1)),
    Case("diagonal", lambda r: [F(r, (3, 4))], lambda a: np.diagonal(a, 1), lambda a: O.diagonal(a, 1),
         move=lambda a: np.diagonal(a, 1)),
    Case("diagonal_3d", lambda r: [F(r, (3, 2, 4))], lambda a: np.diagonal(a, -1, 2, 0),
         lambda a: O.diagonal(a, -1, 2, 0), move=lambda a: np.diagonal(a, -1, 2, 0)),
    Case("take_const", lambda r: [F(r, (3, 4))], lambda a: np.take(a, [3, 0, -1, 3], axis=1),
         lambda a: O.take(a, np.array([3, 0, -1, 3]), axis=1), move=lambda a: np.take(a, [3, 0, -1, 3], axis=1)),
    Case("take_tracked", lambda r: [F(r, (3, 4)), F(r, (2, 3))], lambda a, b: np.take(a, np.argsort(b)),
         lambda a, b: O.take(a, O.argsort(b)), control=True),
    Case("take_along_axis", lambda r: [F(r, (3, 4)), F(r, (3, 4))],
         lambda a, b: np.take_along_axis(a, np.argsort(b, axis=0), axis=0),
         lambda a, b: O.take_along_axis(a, O.argsort(b, axis=0), axis=0), control=True),
    Case("take_along_bcast", lambda r: [F(r, (3, 4)), F(r, (3, 1))],
         lambda a, b: np.take_along_axis(a, np.argsort(b, axis=0), axis=0),
         lambda a, b: O.take_along_axis(a, O.argsort(b, axis=0), axis=0), control=True),
    Case("compress", lambda r: [F(r, (3, 4)), F(r, (4,))], lambda a, b: np.compress(b > 0, a, axis=1),
         lambda a, b: O.compress(gt(b), a, axis=1), control=True),
    Case("extract", lambda r: [F(r, (3, 4)), F(r, (3, 4))], lambda a, b: np.extract(b > 0, a),
         lambda a, b: O.extract(gt(b), a), control=True),
    Case("choose", lambda r: [I(r, (3, 4), 0, 3), F(r, (3, 4)), F(r, (4,))],
         lambda i, a, b: np.choose(i, [a, b, np.zeros(4)]), lambda i, a, b: O.choose(i, [a, b, np.zeros(4)]),
         control=True),
    Case("select", lambda r: [F(r, (3, 4)), F(r, (3, 4))],
         lambda a, b: np.select([a > 0.5, b > 0], [a, b], default=-1.0),
         lambda a, b: O.select([gt(a, 0.5), gt(b)], [a, b], default=-1.0)),
    Case("where", lambda r: [F(r, (3, 4)), F(r, (4,)), F(r, (3, 1))], lambda a, b, c: np.where(c > 0, a, b),
         lambda a, b, c: O.where(gt(c), a, b), control=True),
    Case("where_const", lambda r: [F(r, (3, 4))], lambda a: np.where(a > 0, a, 0.0),
         lambda a: O.where(gt(a), a, 0.0), control=True),
    Case("delete", lambda r: [F(r, (3, 4))], lambda a: np.delete(a, [0, 2], axis=1),
         lambda a: O.delete(a, [0, 2], axis=1), move=lambda a: np.delete(a, [0, 2], axis=1)),
    Case("delete_flat", lambda r: [F(r, (3, 4))], lambda a: np.delete(a, slice(1, 9, 3)),
         lambda a: O.delete(a, slice(1, 9, 3)), move=lambda a: np.delete(a, slice(1, 9, 3))),
    Case("insert", lambda r: [F(r, (3, 4))], lambda a: np.insert(a, [1, 3], 7.0, axis=1),
         lambda a: O.insert(a, [1, 3], 7.0, axis=1)),
    Case("insert_tracked", lambda r: [F(r, (3, 4)), F(r, (3,))], lambda a, b: np.insert(a, 2, b, axis=1),
         lambda a, b: O.insert(a, 2, b, axis=1)),
    Case("append", lambda r: [F(r, (3, 4)), F(r, (1, 4))], lambda a, b: np.append(a, b, axis=0),
         lambda a, b: O.append(a, b, axis=0), move=lambda a, b: np.append(a, b, axis=0)),
    Case("append_flat", lambda r: [F(r, (2, 2)), F(r, (3,))], lambda a, b: np.append(a, b),
         lambda a, b: O.append(a, b), move=np.append),
    Case("resize", lambda r: [F(r, (2, 3))], lambda a: np.resize(a, (4, 4)), lambda a: O.resize(a, (4, 4)),
         move=lambda a: np.resize(a, (4, 4))),
    Case("split", lambda r: [F(r, (4, 3))], lambda a: np.split(a, [1, 3]), lambda a: O.split(a, [1, 3]),
         move=lambda a: np.split(a, [1, 3])),
    Case("array_split", lambda r: [F(r, (3, 5))], lambda a: np.array_split(a, 3, axis=1),
         lambda a: O.array_split(a, 3, axis=1), move=lambda a: np.array_split(a, 3, axis=1)),
    Case("hsplit", lambda r: [F(r, (2, 4))], lambda a: np.hsplit(a, 2), lambda a: O.split(a, 2, axis=1),
         move=lambda a: np.hsplit(a, 2)),
    Case("getitem_mixed", lambda r: [F(r, (3, 4, 2))], lambda a: a[[2, 0, 2], :, 1], lambda a: O.getitem(
        a, (np.array([2, 0, 2]), slice(None), 1)), move=lambda a: a[[2, 0, 2], :, 1]),
    Case("getitem_bool", lambda r: [F(r, (3, 4)), F(r, (3, 4))], lambda a, b: a[b > 0],
         lambda a, b: O.getitem(a, gt(b)), control=True),
    Case("getitem_fancy_tracked", lambda r: [F(r, (4, 3)), F(r, (2, 4))], lambda a, b: a[np.argsort(b), 1:],
         lambda a, b: O.getitem(a, (O.argsort(b), slice(1, None))), control=True),
    # ---- data-dependent results ---------------------------------------------
    Case("sort", lambda r: [F(r, (3, 4))], lambda a: np.sort(a, axis=0), lambda a: O.sort(a, axis=0)),
    Case("sort_ties_stable", lambda r: [I(r, (3, 5))], lambda a: np.sort(a, axis=1), lambda a: O.sort(a, axis=1)),
    Case("sort_flat", lambda r: [F(r, (3, 4))], lambda a: np.sort(a, axis=None), lambda a: O.sort(a, axis=None)),
    Case("argsort", lambda r: [F(r, (3, 4))], lambda a: np.argsort(a, axis=1), lambda a: O.argsort(a, axis=1)),
    Case("argpartition", lambda r: [F(r, (3, 4))], lambda a: np.argpartition(a, 1, axis=1),
         lambda a: O.OArray(np.argpartition(a.val, 1, axis=1), O.argsort(a, axis=1).rec)),  # the whole lane
    Case("lexsort", lambda r: [F(r, (4,)), I(r, (4,))], lambda a, b: np.lexsort((a, b)),
         lambda a, b: O.OArray(np.lexsort((a.val, b.val)),
                               O._fill((4,), lambda o: O.union(list(a.rec) + list(b.rec))))),
    Case("partition", lambda r: [F(r, (3, 5))], lambda a: np.partition(a, 2, axis=1), lambda a: a,
         mode="partition"),
    Case("partition_ties", lambda r: [I(r, (2, 6))], lambda a: np.partition(a, (1, 3), axis=1), lambda a: a,
         mode="partition"),
    Case("unique", lambda r: [I(r, (3, 4))], lambda a: np.unique(a), lambda a: O.unique(a)),
    Case("unique_all", lambda r: [I(r, (3, 4))],
         lambda a: np.unique(a, return_index=True, return_inverse=True, return_counts=True),
         lambda a: O.unique(a, True, True, True)),
    Case("nonzero", lambda r: [F(r, (3, 4))], lambda a: np.nonzero(a > 0), lambda a: O.nonzero(gt(a))),
    Case("argwhere", lambda r: [F(r, (3, 4))], lambda a: np.argwhere(a > 0), lambda a: O.argwhere(gt(a))),
    Case("flatnonzero", lambda r: [F(r, (3, 4))], lambda a: np.flatnonzero(a > 0),
         lambda a: O.flatnonzero(gt(a))),
    Case("searchsorted", lambda r: [F(r, (5,)), F(r, (2, 3))], lambda a, v: np.searchsorted(np.sort(a), v),
         lambda a, v: O.searchsorted(O.sort(a), v)),
    Case("digitize", lambda r: [F(r, (2, 3)), F(r, (4,))], lambda x, b: np.digitize(x, np.sort(b)),
         lambda x, b: O.searchsorted(O.sort(b), x)),
    Case("isin", lambda r: [I(r, (3, 4)), I(r, (3,))], lambda a, b: np.isin(a, b), lambda a, b: O.isin(a, b)),
    # ---- reductions -----------------------------------------------------------
    Case("sum_where", lambda r: [F(r, (3, 4))], lambda a: np.sum(a, axis=1, where=MASK34),
         lambda a: O.reduce(np.sum, a, axis=1, where=MASK34)),
    Case("median", lambda r: [F(r, (3, 4))], lambda a: np.median(a, axis=0), lambda a: O.reduce(np.median, a, 0)),
    Case("median_all", lambda r: [F(r, (3, 4))], lambda a: np.median(a), lambda a: O.reduce(np.median, a)),
    Case("percentile", lambda r: [F(r, (3, 4))], lambda a: np.percentile(a, [10, 50, 90], axis=1),
         lambda a: O.reduce(lambda v, axis: np.percentile(v, [10, 50, 90], axis=axis), a, 1)),
    Case("quantile_keepdims", lambda r: [F(r, (2, 3, 4))], lambda a: np.quantile(a, 0.3, axis=(0, 2), keepdims=True),
         lambda a: O.reduce(lambda v, axis, **k: np.quantile(v, 0.3, axis=axis, **k), a, (0, 2), keepdims=True)),
    Case("std", lambda r: [F(r, (3, 4))], lambda a: np.std(a, axis=0, ddof=1),
         lambda a: O.reduce(np.std, a, 0, ddof=1)),
    Case("var_tuple", lambda r: [F(r, (2, 3, 4))], lambda a: np.var(a, axis=(0, 2)),
         lambda a: O.reduce(np.var, a, (0, 2))),
    Case("mean_keepdims", lambda r: [F(r, (2, 3, 4))], lambda a: a.mean(axis=-1, keepdims=True),
         lambda a: O.reduce(np.mean, a, -1, keepdims=True)),
    Case("average", lambda r: [F(r, (3, 4))], lambda a: np.average(a, axis=1, weights=W3),
         lambda a: O.reduce(lambda v, axis: np.average(v, axis=axis, weights=W3), a, 1)),
    Case("ptp", lambda r: [F(r, (3, 4))], lambda a: np.ptp(a, axis=1), lambda a: O.reduce(np.ptp, a, 1)),
    Case("count_nonzero", lambda r: [I(r, (3, 4))], lambda a: np.count_nonzero(a, axis=0),
         lambda a: O.reduce(np.count_nonzero, a, 0)),
    Case("any", lambda r: [F(r, (3, 4))], lambda a: np.any(a > 1, axis=1), lambda a: O.reduce(np.any, gt(a, 1), 1)),
    Case("all", lambda r: [F(r, (3, 4))], lambda a: np.all(a > -1), lambda a: O.reduce(np.all, gt(a, -1))),
    Case("argmax", lambda r: [F(r, (3, 4))], lambda a: np.argmax(a, axis=0), lambda a: O.reduce(np.argmax, a, 0)),
    Case("argmin_flat", lambda r: [F(r, (3, 4))], lambda a: np.argmin(a), lambda a: O.reduce(np.argmin, a)),
    Case("max_reduce_tuple", lambda r: [F(r, (2, 3, 4))], lambda a: np.maximum.reduce(a, axis=(0, 2)),
         lambda a: O.reduce(np.maximum.reduce, a, (0, 2))),
    Case("nansum", lambda r: [F(r, (3, 4))], lambda a: np.nansum(a, axis=0), lambda a: O.reduce(np.nansum, a, 0)),
    Case("trace", lambda r: [F(r, (3, 4))], lambda a: np.trace(a, 1), lambda a: O.trace(a, 1)),
    Case("det", lambda r: [SQ(r, 3, (2,))], lambda a: np.linalg.det(a),
         lambda a: O.reduce(lambda v, axis: np.linalg.det(v), a, (1, 2))),
    Case("norm", lambda r: [F(r, (3, 4))], lambda a: np.linalg.norm(a, axis=1),
         lambda a: O.reduce(lambda v, axis: np.linalg.norm(v, axis=axis), a, 1)),
    # ---- accumulations and windows --------------------------------------------
    Case("cumsum", lambda r: [F(r, (3, 4))], lambda a: np.cumsum(a, axis=1),
         lambda a: O.accumulate(np.cumsum, a, 1)),
    Case("cumsum_flat", lambda r: [F(r, (3, 4))], lambda a: np.cumsum(a), lambda a: O.accumulate(np.cumsum, a)),
    Case("cumprod", lambda r: [F(r, (3, 4))], lambda a: a.cumprod(axis=0), lambda a: O.accumulate(np.cumprod, a, 0)),
    Case("multiply_accumulate", lambda r: [F(r, (3, 4))], lambda a: np.multiply.accumulate(a, axis=1),
         lambda a: O.accumulate(np.multiply.accumulate, a, 1)),
    Case("diff", lambda r: [F(r, (3, 5))], lambda a: np.diff(a, n=2), lambda a: O.diff(a, 2)),
    Case("diff_prepend", lambda r: [F(r, (3, 4))], lambda a: np.diff(a, axis=0, prepend=0.0),
         lambda a: O.diff(a, 1, 0, prepend=0.0)),
    Case("ediff1d", lambda r: [F(r, (2, 3))], lambda a: np.ediff1d(a, to_begin=[9.0]),
         lambda a: O.ediff1d(a, to_begin=np.array([9.0]))),
    Case("convolve_full", lambda r: [F(r, (5,)), F(r, (3,))], lambda a, v: np.convolve(a, v),
         lambda a, v: O.convolve(a, v)),
    Case("convolve_same", lambda r: [F(r, (3,)), F(r, (6,))], lambda a, v: np.convolve(a, v, "same"),
         lambda a, v: O.convolve(a, v, "same")),
    Case("convolve_valid", lambda r: [F(r, (6,)), F(r, (3,))], lambda a, v: np.convolve(a, v, "valid"),
         lambda a, v: O.convolve(a, v, "valid")),
    Case("correlate_same", lambda r: [F(r, (6,)), F(r, (4,))], lambda a, v: np.correlate(a, v, "same"),
         lambda a, v: O.correlate(a, v, "same")),
    Case("correlate_full_long_v", lambda r: [F(r, (3,)), F(r, (5,))], lambda a, v: np.correlate(a, v, "full"),
         lambda a, v: O.correlate(a, v, "full")),
    Case("add_reduceat", lambda r: [F(r, (3, 5))], lambda a: np.add.reduceat(a, [0, 3, 1, 4], axis=1),
         lambda a: O.reduceat(np.add, a, [0, 3, 1, 4], axis=1)),
    # ---- contractions ------------------------------------------------------------
    Case("matmul", lambda r: [F(r, (3, 4)), F(r, (4, 2))], lambda a, b: a @ b, lambda a, b: O.matmul(a, b)),
    Case("matmul_1d", lambda r: [F(r, (4,)), F(r, (2, 4, 3))], lambda a, b: np.matmul(a, b),
         lambda a, b: O.matmul(a, b)),
    Case("matmul_batch", lambda r: [F(r, (2, 1, 2, 3)), F(r, (3, 3, 2))], lambda a, b: a @ b,
         lambda a, b: O.matmul(a, b)),
    Case("matmul_vec", lambda r: [F(r, (2, 3, 4)), F(r, (4,))], lambda a, b: a @ b, lambda a, b: O.matmul(a, b)),
    Case("dot_nd", lambda r: [F(r, (2, 3)), F(r, (2, 3, 2))], lambda a, b: np.dot(a, b), lambda a, b: O.dot(a, b)),
    Case("dot_1d", lambda r: [F(r, (4,)), F(r, (4,))], lambda a, b: np.dot(a, b), lambda a, b: O.dot(a, b)),
    Case("vdot", lambda r: [F(r, (2, 2)), F(r, (4,))], lambda a, b: np.vdot(a, b), lambda a, b: O.vdot(a, b)),
    Case("inner", lambda r: [F(r, (2, 3)), F(r, (4, 3))], lambda a, b: np.inner(a, b), lambda a, b: O.inner(a, b)),
    Case("outer", lambda r: [F(r, (2, 2)), F(r, (3,))], lambda a, b: np.outer(a, b), lambda a, b: O.outer(a, b)),
    Case("tensordot", lambda r: [F(r, (2, 3, 4)), F(r, (4, 3, 2))], lambda a, b: np.tensordot(a, b, ([1, 2], [1, 0])),
         lambda a, b: O.tensordot(a, b, ([1, 2], [1, 0]))),
    Case("einsum_matmul", lambda r: [F(r, (2, 3)), F(r, (3, 4))], lambda a, b: np.einsum("ij,jk->ik", a, b),
         lambda a, b: O.einsum("ij,jk->ik", a, b)),
    Case("einsum_trace", lambda r: [F(r, (3, 3))], lambda a: np.einsum("ii", a), lambda a: O.einsum("ii", a)),
    Case("einsum_implicit", lambda r: [F(r, (2, 3)), F(r, (3,))], lambda a, b: np.einsum("ij,j", a, b),
         lambda a, b: O.einsum("ij,j", a, b)),
    Case("kron", lambda r: [F(r, (2, 2)), F(r, (3,))], lambda a, b: np.kron(a, b), lambda a, b: O.kron(a, b)),
    Case("add_outer", lambda r: [F(r, (2, 2)), F(r, (3,))], lambda a, b: np.add.outer(a, b),
         lambda a, b: O.ufunc_outer(np.add, a, b)),
    # ---- elementwise -------------------------------------------------------------
    Case("clip_tracked", lambda r: [F(r, (3, 4)), F(r, (4,))], lambda a, lo: np.clip(a, lo, 1.0),
         lambda a, lo: O.elementwise(np.clip, a, lo, 1.0)),
    Case("divmod", lambda r: [F(r, (3, 4)), F(r, (3, 1))], lambda a, b: np.divmod(a, b + 10),
         lambda a, b: O.elementwise(np.divmod, a, O.elementwise(np.add, b, 10))),
    Case("real_imag", lambda r: [F(r, (3,)) + 1j * F(r, (3,))], lambda a: (np.real(a), a.imag),
         lambda a: (O.elementwise(np.real, a), O.elementwise(np.imag, a))),
    Case("astype_round", lambda r: [F(r, (3, 4))], lambda a: np.round(a, 1).astype(np.float32),
         lambda a: O.elementwise(lambda v: np.round(v, 1).astype(np.float32), a)),
    Case("nan_to_num", lambda r: [F(r, (3, 4))], lambda a: np.nan_to_num(np.log(a)),
         lambda a: O.elementwise(lambda v: np.nan_to_num(np.log(v)), a)),
    # ---- in-place writes -----------------------------------------------------------
    Case("setitem_mask", lambda r: [F(r, (3, 4)), F(r, (3, 4))], _setitem_mask, _o_setitem_mask),
    Case("iadd_bcast", lambda r: [F(r, (3, 4)), F(r, (4,))], _iadd, _o_iadd),
    Case("ufunc_out", lambda r: [F(r, (3, 4)), F(r, (3, 1))], _out, _o_out),
    Case("add_at", lambda r: [F(r, (3, 4)), F(r, (3, 4))], _add_at, _o_add_at),
    Case("put", lambda r: [F(r, (3, 4)), F(r, (2,))], lambda a, b: _put(a, [0, 5, 11, 5], b),
         lambda a, b: _o_put(a, [0, 5, 11, 5], b)),
    Case("place", lambda r: [F(r, (3, 4)), F(r, (3,))], lambda a, b: _place(a, MASK34, b),
         lambda a, b: _o_place(a, MASK34, b)),
    Case("copyto", lambda r: [F(r, (3, 4)), F(r, (4,))], _copyto, _o_copyto),
    Case("fill", lambda r: [F(r, (3, 4))], _fill_method, _o_fill),
    Case("sort_inplace", lambda r: [F(r, (3, 4))], _inplace_sort, _o_inplace_sort),
    Case("sum_out", lambda r: [F(r, (3, 4))], _sum_out, _o_sum_out),
    Case("cumsum_out_view", lambda r: [F(r, (3, 4))], _cumsum_out_view, _o_cumsum_out_view),
    Case("matmul_out", lambda r: [F(r, (3, 4)), F(r, (4, 2))], _matmul_out, _o_matmul_out),
    Case("clip_inplace", lambda r: [F(r, (3, 4)), F(r, (4,))], _clip_inplace,
         lambda a, lo: _o_out_generic(np.clip, a, lo, 1.0)),
    Case("negative_out_strided", lambda r: [F(r, (4, 3)), F(r, (2, 2))], _negative_out_strided,
         _o_negative_out_strided),
    # ---- more functions ----------------------------------------------------------------
    Case("where_1arg", lambda r: [F(r, (3, 4))], lambda a: np.where(a > 0), lambda a: O.nonzero(gt(a))),
    Case("take_wrap", lambda r: [F(r, (3, 4))], lambda a: np.take(a, [5, -7, 1], axis=1, mode="wrap"),
         lambda a: O.take(a, np.array([5, -7, 1]), axis=1, mode="wrap")),
    Case("take_clip", lambda r: [F(r, (3, 4))], lambda a: np.take(a, [[5, -7], [1, 0]], mode="clip"),
         lambda a: O.take(a, np.array([[5, -7], [1, 0]]), mode="clip")),
    Case("compress_short", lambda r: [F(r, (3, 4)), F(r, (2,))], lambda a, c: np.compress(c > 0, a, axis=0),
         lambda a, c: O.compress(gt(c), a, axis=0), control=True),
    Case("diff_append_tracked", lambda r: [F(r, (3, 4)), F(r, (3, 1))], lambda a, b: np.diff(a, append=b),
         lambda a, b: O.diff(a, 1, -1, append=b)),
    Case("pad_reflect", lambda r: [F(r, (3, 4))], lambda a: np.pad(a, ((2, 1), (3, 0)), mode="reflect"),
         lambda a: O.trace_move(lambda v: np.pad(v, ((2, 1), (3, 0)), mode="reflect"), a)),
    Case("pad_symmetric", lambda r: [F(r, (3, 4))], lambda a: np.pad(a, 2, mode="symmetric"),
         lambda a: O.trace_move(lambda v: np.pad(v, 2, mode="symmetric"), a)),
    Case("roll_big_shift", lambda r: [F(r, (3, 4))], lambda a: np.roll(a, -13, axis=1), lambda a: O.roll(a, -13, 1),
         move=lambda a: np.roll(a, -13, axis=1)),
    Case("cov", lambda r: [F(r, (3, 5))], lambda a: np.cov(a), _o_cov),
    Case("corrcoef", lambda r: [F(r, (3, 5))], lambda a: np.corrcoef(a), _o_corrcoef),
    *([Case("vecdot", lambda r: [F(r, (3, 4)), F(r, (4,))], lambda a, b: np.vecdot(a, b), _o_vecdot)]
      if hasattr(np, "vecdot") else []),  # numpy >= 2.0
    Case("multi_dot", lambda r: [F(r, (2, 3)), F(r, (3, 4)), F(r, (4, 2))],
         lambda a, b, c: np.linalg.multi_dot([a, b, c]), lambda a, b, c: O.matmul(O.matmul(a, b), c)),
    Case("nancumsum", lambda r: [F(r, (3, 4))], lambda a: np.nancumsum(a, axis=0),
         lambda a: O.accumulate(np.nancumsum, a, 0)),
    Case("unwrap", lambda r: [F(r, (3, 4)) * 4], lambda a: np.unwrap(a, axis=1),
         lambda a: O.accumulate(lambda v, axis: np.unwrap(v, axis=axis), a, 1)),
    # ---- opaque ----------------------------------------------------------------------
    Case("linalg_inv", lambda r: [SQ(r, 3), F(r, (3,))], lambda a, b: np.linalg.inv(a) @ b,
         lambda a, b: O.matmul(O.opaque(np.linalg.inv, a), b), mode="opaque"),
    Case("fft", lambda r: [F(r, (2, 4))], lambda a: np.fft.fft(a, axis=1), lambda a: O.opaque(np.fft.fft, a, axis=1),
         mode="opaque"),
    Case("histogram", lambda r: [F(r, (3, 4))], lambda a: np.histogram(a, bins=3),
         lambda a: O.opaque(lambda v: np.histogram(v, bins=3), a), mode="opaque"),
    Case("piecewise", lambda r: [F(r, (3, 4))], lambda a: np.piecewise(a, [a < 0, a >= 0], [-1.0, lambda v: v * 2]),
         lambda a: O.opaque(lambda v: np.piecewise(v, [v < 0, v >= 0], [-1.0, lambda w: w * 2]), a), mode="opaque"),
    Case("apply_along_axis", lambda r: [F(r, (3, 4))], lambda a: np.apply_along_axis(np.sort, 1, a),
         lambda a: O.opaque(lambda v: np.apply_along_axis(np.sort, 1, v), a), mode="opaque"),
]


def _outputs(x):
    if isinstance(x, (tuple, list)):
        out = []
        for e in x:
            out += _outputs(e)
        return out
    return [x]


def _names(n):
    return "abcdefg"[:n]


# ----------------------------------------------------------------------------
# the oracle checked on its own (no library needed)
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("case", [c for c in CASES if c.move is not None], ids=repr)
def test_oracle_moves_agree_with_tag_tracing(case):
    r = np.random.default_rng(0)
    ins = case.make(r)
    oins = [O.OArray.source(n, v) for n, v in zip(_names(len(ins)), ins)]
    exp = _outputs(case.ora(*oins))
    got = _outputs(O.trace_move(case.move, *oins))
    assert len(exp) == len(got)
    for e, g in zip(exp, got):
        assert e.shape == g.shape  # (values may differ: the move functions use 0 for constants)
        for o in np.ndindex(*e.shape):
            assert e.rec[o].d == g.rec[o].d, (case.id, o)


def test_oracle_hand_examples():
    a = O.OArray.source("a", np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    b = O.OArray.source("b", np.array([10.0, 20.0, 30.0]))
    A = lambda *c: ("a", c)
    B = lambda *c: ("b", c)
    # broadcasting
    y = O.elementwise(np.add, a, b)
    assert y.lineage((1, 2)) == {A(1, 2), B(2)}
    # reduction with keepdims
    s = O.reduce(np.sum, a, axis=0, keepdims=True)
    assert s.shape == (1, 3) and s.lineage((0, 1)) == {A(0, 1), A(1, 1)}
    # cumsum prefix
    c = O.accumulate(np.cumsum, a, axis=1)
    assert c.lineage((1, 1)) == {A(1, 0), A(1, 1)}
    # diff window
    d = O.diff(b, n=2)
    assert d.shape == (1,) and d.lineage((0,)) == {B(0), B(1), B(2)}
    # matmul: row i of a and column j of b
    m = O.matmul(a, O.reshape(b, (3, 1)))
    assert m.lineage((1, 0)) == {A(1, 0), A(1, 1), A(1, 2), B(0), B(1), B(2)}
    # 1-D @ 1-D is 0-d
    v = O.matmul(b, b)
    assert v.shape == () and v.lineage(()) == {B(0), B(1), B(2)}
    # convolution windows
    cv = O.convolve(b, O.OArray.source("k", np.array([1.0, -1.0])), "valid")
    assert cv.lineage((1,)) == {B(1), B(2), ("k", (0,)), ("k", (1,))}
    # transpose and flip
    t = O.flip(O.transpose(a), axis=0)
    assert t.lineage((0, 1)) == {A(1, 2)}
    # pad constant contributes nothing
    p = O.pad(b, (1, 1))
    assert p.lineage((0,)) == set() and p.lineage((1,)) == {B(0)}
    # fancy with duplicates, then setitem: last write wins
    x = O.copy(b)
    O.setitem(x, (np.array([0, 2, 0]),), O.getitem(a, (1,)))
    assert x.lineage((0,)) == {A(1, 2)} and x.lineage((2,)) == {A(1, 1)} and x.lineage((1,)) == {B(1)}
    # where: data from the chosen branch, control the condition
    w = O.where(O.elementwise(np.greater, b, 15.0), a, 0.0)
    assert w.lineage((0, 0)) == set() and w.lineage((0, 0), True) == {B(0)}
    assert w.lineage((1, 2)) == {A(1, 2)} and w.lineage((1, 2), True) == {A(1, 2), B(2)}
    # boolean mask: the selected cell; control: the mask cell (whose lineage is a's cell)
    m2 = O.getitem(b, O.elementwise(np.greater, O.getitem(a, (0,)), 1.5))
    assert m2.shape == (2,) and m2.lineage((0,)) == {B(1)} and m2.lineage((0,), True) == {B(1), A(0, 1)}
    # sort with ties is stable
    z = O.OArray.source("z", np.array([2.0, 1.0, 2.0, 1.0]))
    zs = O.sort(z)
    assert [zs.lineage((i,)) for i in range(4)] == [{("z", (1,))}, {("z", (3,))}, {("z", (0,))}, {("z", (2,))}]
    # unique: first occurrence; counts: every occurrence
    u, _, cnt = O.unique(z, return_index=True, return_counts=True)
    assert u.lineage((1,)) == {("z", (0,))} and cnt.lineage((0,)) == {("z", (1,)), ("z", (3,))}
    # views share lineage both ways
    x = O.copy(a)
    v = O.getitem(x, (slice(None), slice(1, None)))
    O.setitem(v, (0, 0), O.getitem(b, (0,)))
    assert x.lineage((0, 1)) == {B(0)}
    O.setitem(x, (1, 2), 0.0)
    assert v.lineage((1, 1)) == set()
    # in-place add keeps the old lineage
    O.iop(np.add, x, b)
    assert x.lineage((1, 0)) == {A(1, 0), B(0)}
    # opaque: everything, partial
    q = O.opaque(np.linalg.inv, O.OArray.source("s", np.eye(2) * 2))
    assert len(q.lineage((0, 0))) == 4 and q.partial((0, 0))
    # ufunc.at adds to the old lineage
    x = O.copy(b)
    O.ufunc_at(np.add, x, (np.array([1, 1]),), O.getitem(a, (0, slice(0, 2))))
    assert x.lineage((1,)) == {B(1), A(0, 0), A(0, 1)}
    # indexing decode: advanced indices separated by a slice go first
    dec = O.decode_index((2, 3, 4), (np.array([0, 1]), slice(None), np.array([1, 2])))
    assert dec.shape == (2, 3) and dec.src[(1, 2)] == (1, 2, 2)


def test_oracle_bilinear_ops_agree_with_impulses():
    """convolve/correlate/matmul/kron lineage = the pairs (i, j) for which e_i (x) e_j reaches the cell."""
    r = np.random.default_rng(3)
    for fn, ofn, sa, sb in [
        (lambda a, v: np.convolve(a, v, "same"), lambda a, v: O.convolve(a, v, "same"), (3,), (6,)),
        (lambda a, v: np.convolve(a, v, "valid"), lambda a, v: O.convolve(a, v, "valid"), (6,), (4,)),
        (lambda a, v: np.correlate(a, v, "same"), lambda a, v: O.correlate(a, v, "same"), (3,), (5,)),
        (lambda a, v: np.correlate(a, v, "full"), lambda a, v: O.correlate(a, v, "full"), (5,), (2,)),
        (lambda a, v: np.correlate(a, v, "valid"), lambda a, v: O.correlate(a, v, "valid"), (2,), (5,)),
        (np.matmul, O.matmul, (2, 3), (3,)),
        (np.kron, O.kron, (2, 2), (3,)),
        (lambda a, b: np.einsum("ij,jk->ik", a, b), lambda a, b: O.einsum("ij,jk->ik", a, b), (2, 3), (3, 2)),
    ]:
        a = O.OArray.source("a", F(r, sa))
        b = O.OArray.source("b", F(r, sb))
        y = ofn(a, b)
        np.testing.assert_allclose(y.val, fn(a.val, b.val))
        for o in np.ndindex(*y.shape):
            exp = set()
            for i in np.ndindex(*sa):
                for j in np.ndindex(*sb):
                    ea = np.zeros(sa)
                    ea[i] = 1
                    eb = np.zeros(sb)
                    eb[j] = 1
                    if fn(ea, eb)[o] != 0:
                        exp |= {("a", i), ("b", j)}
            assert y.lineage(o) == exp, (o, sorted(y.lineage(o)), sorted(exp))


# ----------------------------------------------------------------------------
# the library against the oracle
# ----------------------------------------------------------------------------

def _check_partition(y, yo_src, res_for, axis, ndims):
    """Each output cell is exactly one cell of its lane with the same value, a bijection per lane."""
    v = np.asarray(y)
    lanes = O.lane_sets(yo_src, axis)
    ax = axis % v.ndim
    for key, lane_rec in lanes.items():
        seen = set()
        for j in range(v.shape[ax]):
            o = key[:ax] + (j,) + key[ax:]
            res = res_for(o)
            got = O.result_set(res, ndims)
            assert bool(res.complete) and len(got) == 1, f"partition cell {o}: {sorted(got)}"
            (cell,) = got
            assert cell in lane_rec.d, f"partition cell {o} copied from outside its lane: {cell}"
            assert yo_src.val[cell[1]] == v[o], f"partition cell {o} has value {v[o]} but names {cell}"
            assert cell not in seen, f"partition lane {key}: {cell} named twice"
            seen.add(cell)
        assert seen == set(lane_rec.d)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_function_against_oracle(case, seed):
    wh = pytest.importorskip("whence")
    wh.reset()
    r = np.random.default_rng(seed)
    ins = case.make(r)
    names = _names(len(ins))
    tracked = [wh.track(v.copy(), name=n) for n, v in zip(names, ins)]
    oins = [O.OArray.source(n, v) for n, v in zip(names, ins)]
    ndims = {n: np.ndim(v) for n, v in zip(names, ins)}
    with warnings.catch_warnings(record=True) as warns, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        out = _outputs(case.lib(*tracked))
        exp = _outputs(case.ora(*oins))
    partial_warned = [w for w in warns if issubclass(w.category, wh.PartialLineageWarning)]
    if case.mode == "opaque":
        assert partial_warned, f"{case.id}: no PartialLineageWarning"
    else:
        assert not partial_warned, f"{case.id}: unexpected PartialLineageWarning (unsupported?): " \
                                   f"{partial_warned[0].message}"
    assert len(out) == len(exp), f"{case.id}: {len(out)} outputs, numpy gives {len(exp)}"
    for k, (y, yo) in enumerate(zip(out, exp)):
        tag = f"{case.id}[{k}]" if len(out) > 1 else case.id
        assert wh.is_tracked(y), f"{tag}: result is a {type(y).__name__}, not tracked"
        v = np.asarray(y)
        if case.mode == "partition":
            np.testing.assert_array_equal(np.sort(v, axis=1), np.sort(yo.val, axis=1))
            _check_partition(y, yo, lambda o, y=y: wh.backward(y, o), 1, ndims)
            continue
        assert v.shape == yo.shape, f"{tag}: shape {v.shape} != {yo.shape}"
        np.testing.assert_allclose(v, yo.val, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=tag)
        for o in np.ndindex(*yo.shape):
            res = wh.backward(y, o)
            O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(o), yo.partial(o),
                      case.mode == "opaque", f"{tag}: backward(y, {o})")
            if case.control:
                res = wh.backward(y, o, control=True)
                O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(o, True), yo.partial(o, True),
                          case.mode == "opaque", f"{tag}: backward(y, {o}, control=True)")
        # whole-array union
        res = wh.backward(y)
        O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(None), yo.partial(None),
                  case.mode == "opaque", f"{tag}: backward(y)")
        # forward from a few source cells
        for n, t, v0 in zip(names, tracked, ins):
            for c in O.sample_cells(np.shape(v0), 3):
                got = O.coords_set(wh.forward(t, c, y), yo.ndim, f"{tag}: forward({n}, {c})")
                want = yo.forward(n, c)
                extra = {o for o in got - want if not yo.rec[o].pd}
                assert not (want - got) and not extra, \
                    f"{tag}: forward({n}, {c}) missing {sorted(want - got)} extra {sorted(extra)}"
