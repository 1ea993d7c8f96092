"""Brute-force, per-cell lineage oracle for testing whence.

This module is a reference implementation of docs/semantics.md that shares no
code and no idea with the library: every cell of every array carries the
*set* of source cells it derives from (DSLog ``CellProvenance`` style), and
every operation computes the sets of its output cells with Python loops over
``np.ndindex``, following the contract literally.  It is slow (quadratic in
places) and only meant for small arrays.

An :class:`OArray` holds

* ``val``: the numpy values, computed with the very numpy call the library
  makes, so that data-dependent decisions (masks, sorts) are taken on
  identical values;
* ``rec``: an object array of the same shape; each element is a :class:`R`
  record with

  - ``d``: frozenset of ``(source_name, coord_tuple)``, the data lineage;
  - ``c``: the same plus the control cells (``control=True`` queries):
    mask cells, ``where`` conditions, index-array cells that chose a copy;
  - ``pd`` / ``pc``: whether the data / control lineage passed through an
    opaque (PARTIAL) operation, in which case the sets are the contract's
    over-approximation and the library may only be checked for a superset.

Views (basic slicing) are numpy views of *both* arrays, so that writes through
a view change the base's lineage and vice versa, exactly as numpy does for the
values.

Besides the per-cell oracle the module offers two independent cross-checks:
:func:`trace_move` (run a pure move on arrays of unique integer tags) and
:func:`perturbation_lineage` (change one source cell at a time and see which
output cells change), both exact for data-independent moves only.

Examples
--------
>>> import numpy as np
>>> a = OArray.source("a", np.arange(6.0).reshape(2, 3))
>>> b = OArray.source("b", np.array([1.0, 2.0, 3.0]))
>>> y = reduce(np.sum, elementwise(np.multiply, a, b), axis=1)
>>> sorted(y.lineage((1,)))
[('a', (1, 0)), ('a', (1, 1)), ('a', (1, 2)), ('b', (0,)), ('b', (1,)), ('b', (2,))]
>>> s = getitem(a, (slice(None), [2, 0]))
>>> sorted(s.lineage((1, 0)))
[('a', (1, 2))]
>>> m = elementwise(np.greater, a, 2.5)
>>> z = getitem(a, m)
>>> sorted(z.lineage((0,))), sorted(z.lineage((0,), control=True))
([('a', (1, 0))], [('a', (1, 0))])
>>> w = where(elementwise(np.greater, b, 1.5), a, 0.0)
>>> sorted(w.lineage((0, 0))), sorted(w.lineage((0, 0), control=True))
([], [('b', (0,))])
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = [
    "BUDGET",
    "NIL",
    "BudgetExceeded",
    "OArray",
    "R",
    "accumulate",
    "append",
    "argsort",
    "argwhere",
    "array_split",
    "as_oarray",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
    "block",
    "broadcast_to",
    "choose",
    "column_stack",
    "compress",
    "concatenate",
    "convolve",
    "copy",
    "correlate",
    "decode_index",
    "delete",
    "diagonal",
    "diff",
    "dot",
    "dstack",
    "ediff1d",
    "einsum",
    "elementwise",
    "expand_dims",
    "extract",
    "flatnonzero",
    "flip",
    "getitem",
    "hstack",
    "inner",
    "insert",
    "iop",
    "isin",
    "kron",
    "lane_sets",
    "matmul",
    "moveaxis",
    "nonzero",
    "opaque",
    "outer",
    "pad",
    "perturbation_lineage",
    "ravel",
    "reduce",
    "reduceat",
    "repeat",
    "reshape",
    "resize",
    "roll",
    "rot90",
    "searchsorted",
    "select",
    "setitem",
    "sort",
    "split",
    "squeeze",
    "stack",
    "swapaxes",
    "take",
    "take_along_axis",
    "tensordot",
    "tile",
    "trace",
    "trace_move",
    "transpose",
    "tril",
    "triu",
    "ufunc_at",
    "ufunc_out",
    "ufunc_outer",
    "union",
    "unique",
    "vdot",
    "vstack",
    "where",
]


# ----------------------------------------------------------------------------
# records
# ----------------------------------------------------------------------------

class R:
    """Lineage record of one cell (immutable by convention, freely shared)."""

    __slots__ = ("c", "d", "pc", "pd")

    def __init__(self, d=frozenset(), c=None, pd=False, pc=None):
        self.d = d
        self.c = d if c is None else c
        self.pd = pd
        self.pc = pd if pc is None else pc

    def __repr__(self):
        extra = "" if self.c == self.d else f", ctl+{sorted(self.c - self.d)}"
        flag = "" if not (self.pd or self.pc) else f", partial=({self.pd},{self.pc})"
        return f"R({sorted(self.d)}{extra}{flag})"


NIL = R()


class BudgetExceeded(Exception):
    """The oracle's set sizes went past ``BUDGET`` (see ``budget``)."""


BUDGET = [None]  # remaining set entries the oracle may create, or None for no limit


def union(recs):
    """Union of records (data with data, control with control, flags or-ed)."""
    recs = [r for r in recs if r is not NIL]
    if not recs:
        return NIL
    if len(recs) == 1:
        return recs[0]
    d = set()
    c = set()
    pd = pc = False
    for r in recs:
        d |= r.d
        c |= r.c
        pd = pd or r.pd
        pc = pc or r.pc
    if BUDGET[0] is not None:
        BUDGET[0] -= len(d) + len(c)
        if BUDGET[0] < 0:
            raise BudgetExceeded()
    return R(frozenset(d), frozenset(c) if c != d else None, pd, pc)


def with_control(rec, ctl):
    """``rec`` copied, plus the control-inclusive lineage of the ``ctl`` records."""
    ctl = list(ctl)
    if not ctl:
        return rec
    c = set(rec.c)
    pc = rec.pc
    for r in ctl:
        c |= r.c
        pc = pc or r.pc
    return R(rec.d, frozenset(c), rec.pd, pc)


def _blank_like(val):
    """An object array laid out like ``val``: the same strides counted in elements, gaps and negative
    steps included (``fft(x).real`` has gaps), so numpy view functions treat both alike."""
    n_el = [s // val.itemsize if s % val.itemsize == 0 else None for s in val.strides]
    if val.size <= 1 or None in n_el or any(e == 0 and n > 1 for e, n in zip(n_el, val.shape)):
        return np.empty_like(val, dtype=object)  # (broadcast values are read-only anyway)
    lo = sum(min(0, e * (n - 1)) for e, n in zip(n_el, val.shape))
    hi = sum(max(0, e * (n - 1)) for e, n in zip(n_el, val.shape))
    base = np.empty(hi - lo + 1, dtype=object)
    return np.lib.stride_tricks.as_strided(base[-lo:], shape=val.shape,
                                           strides=[e * base.itemsize for e in n_el])


def _fill(shape, fn):
    """Object array of records ``fn(index)``; given an array instead of a shape, laid out like it."""
    out = _blank_like(shape) if isinstance(shape, np.ndarray) else np.empty(tuple(shape), object)
    for idx in np.ndindex(*out.shape):
        out[idx] = fn(idx)
    return out


def _same_layout(val, rec):
    """Do ``val`` and ``rec`` have proportional strides (so numpy view functions treat them alike)?"""
    if val.shape != rec.shape:
        return False
    for n, sv, sr in zip(val.shape, val.strides, rec.strides):
        if n > 1 and sv * rec.itemsize != sr * val.itemsize:
            return False
    return True


def _nil(shape):
    out = np.empty(tuple(shape), dtype=object)
    out.fill(NIL)
    return out


# ----------------------------------------------------------------------------
# OArray
# ----------------------------------------------------------------------------

class OArray:
    """Values plus per-cell lineage records."""

    __slots__ = ("rec", "val")

    def __init__(self, val, rec):
        val = np.asarray(val) if not isinstance(val, np.ndarray) else val
        assert isinstance(rec, np.ndarray) and rec.dtype == object, rec
        assert val.shape == rec.shape, (val.shape, rec.shape)
        if not _same_layout(val, rec):
            # keep the records laid out like the values, so that a numpy view function applied to both
            # shares memory for both or for neither (writes through views then follow numpy)
            r = _blank_like(val)
            r[...] = rec
            rec = r
        self.val = val
        self.rec = rec

    @classmethod
    def source(cls, name, val, layout="C"):
        """A source array as ``wh.track(arr)`` holds it: a copy (``np.array(arr, copy=True)``, order K)
        of ``arr`` laid out as ``layout`` says ("C", "F" Fortran order, "flip" a negative-stride
        view); the records follow the same layout, so later views behave alike."""
        val = np.array(val)
        if layout == "F" and val.ndim >= 2:  # (asfortranarray makes 0-d arrays 1-d)
            val = np.asfortranarray(val)
        elif layout == "flip" and val.ndim:
            val = np.flip(np.flip(val, 0).copy(), 0)
        val = np.array(val, copy=True)  # whence.track copies its input (copy=True by default)
        return cls(val, _fill(val, lambda i: R(frozenset({(name, tuple(int(k) for k in i))}))))

    @property
    def shape(self):
        return self.val.shape

    @property
    def ndim(self):
        return self.val.ndim

    @property
    def size(self):
        return self.val.size

    @property
    def dtype(self):
        return self.val.dtype

    def __repr__(self):
        return f"OArray(shape={self.shape}, dtype={self.dtype})"

    # -- queries ----------------------------------------------------------
    def _select(self, where):
        if where is None:
            return list(self.rec.ravel())
        if isinstance(where, np.ndarray) and where.dtype == bool:
            assert where.shape == self.shape
            return list(self.rec[where])
        if isinstance(where, int):
            where = (where,)
        if all(isinstance(w, (int, np.integer)) for w in where) and len(where) == self.ndim:
            return [self.rec[tuple(where)]]
        sub = self.rec[tuple(where) + (Ellipsis,)] if Ellipsis not in where else self.rec[tuple(where)]
        return list(np.asarray(sub).ravel())

    def lineage(self, where=None, control=False):
        """Set of ``(name, coords)`` of a cell, region (tuple of ints/slices), mask, or everything."""
        r = union(self._select(where))
        return r.c if control else r.d

    def partial(self, where=None, control=False):
        r = union(self._select(where))
        return r.pc if control else r.pd

    def forward(self, name, coord, control=False):
        """Output coordinates whose lineage contains source cell ``(name, coord)``."""
        key = (name, tuple(coord))
        return {idx for idx in np.ndindex(*self.shape) if key in (self.rec[idx].c if control else self.rec[idx].d)}


def as_oarray(x):
    """Wrap a constant (untracked operand): values with empty lineage."""
    if isinstance(x, OArray):
        return x
    val = np.asarray(x)
    return OArray(val, _nil(val.shape))


def _val(x):
    return x.val if isinstance(x, OArray) else x


def _norm_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(sorted(a % ndim if ndim else a for a in axis))
    return (axis % ndim if ndim else axis,)


# ----------------------------------------------------------------------------
# elementwise
# ----------------------------------------------------------------------------

def elementwise(fn, *args, **kw):
    """Every ufunc call / elementwise function: union of the broadcast operand cells.

    Constants are passed through unchanged (python scalars stay weakly typed
    as NEP 50 wants).  Returns a tuple for multi-output ufuncs.
    """
    res = fn(*[_val(a) for a in args], **kw)
    outs = res if isinstance(res, tuple) else (res,)
    outs = tuple(np.asarray(o) for o in outs)
    shape = outs[0].shape
    brs = [np.broadcast_to(a.rec, shape) for a in args if isinstance(a, OArray)]
    rec = _fill(outs[0], lambda i: union(b[i] for b in brs))
    arrs = tuple(OArray(o, rec.copy() if k else rec) for k, o in enumerate(outs))
    return arrs if isinstance(res, tuple) else arrs[0]


def opaque(fn, *args, **kw):
    """Opaque op: every cell of every array operand, flagged PARTIAL."""
    res = fn(*[_val(a) for a in args], **kw)
    allr = union(r for a in args if isinstance(a, OArray) for r in a.rec.ravel())
    allr = R(allr.d, allr.c, True, True)
    outs = res if isinstance(res, tuple) else (res,)
    arrs = tuple(OArray(np.asarray(o), _fill(np.shape(o), lambda i: allr)) for o in outs)
    return arrs if isinstance(res, tuple) else arrs[0]


# ----------------------------------------------------------------------------
# reductions, accumulations, windows
# ----------------------------------------------------------------------------

def reduce(fn, x, axis=None, keepdims=False, where=None, **kw):
    """Reductions: every cell of the reduced lane (``where=False`` cells excluded).

    ``fn`` is called as ``fn(x.val, axis=axis, [keepdims=True], [where=...], **kw)``.
    Leading output dimensions beyond the reduced shape (``percentile`` with
    an array ``q``) get the lane's lineage too.
    """
    call = dict(kw)
    if keepdims:
        call["keepdims"] = True
    if where is not None:
        call["where"] = where
    val = np.asarray(fn(x.val, axis=axis, **call))
    nd = x.ndim
    axes = _norm_axis(axis, nd)
    if keepdims:
        rshape = tuple(1 if d in axes else x.shape[d] for d in range(nd))
    else:
        rshape = tuple(x.shape[d] for d in range(nd) if d not in axes)
    lead = val.ndim - len(rshape)
    assert lead >= 0 and val.shape[lead:] == rshape, (val.shape, rshape)
    wm = None if where is None else np.broadcast_to(where, x.shape)
    groups = {}
    for idx in np.ndindex(*x.shape):
        if wm is not None and not wm[idx]:
            continue
        if keepdims:
            key = tuple(0 if d in axes else idx[d] for d in range(nd))
        else:
            key = tuple(idx[d] for d in range(nd) if d not in axes)
        groups.setdefault(key, []).append(x.rec[idx])
    return OArray(val, _fill(val.shape, lambda o: union(groups.get(o[lead:], []))))


def accumulate(fn, x, axis=None, **kw):
    """cumsum / cumprod / ufunc.accumulate: the prefix along the axis, itself included.

    ``axis=None`` (cumsum only) works on the C-order flattening.
    """
    val = np.asarray(fn(x.val, axis=axis, **kw))
    if axis is None:
        flat = x.rec.reshape(-1)
        assert val.shape == flat.shape
        return OArray(val, _fill(val.shape, lambda o: union(flat[: o[0] + 1])))
    ax = axis % x.ndim

    def cell(o):
        return union(x.rec[o[:ax] + (j,) + o[ax + 1:]] for j in range(o[ax] + 1))

    assert val.shape == x.shape
    return OArray(val, _fill(val.shape, cell))


def _window(x, val, ax, lo_hi):
    """Output cell o along axis ``ax`` reads the input cells lo_hi(o[ax]) on that axis."""
    def cell(o):
        lo, hi = lo_hi(o[ax])
        return union(x.rec[o[:ax] + (j,) + o[ax + 1:]] for j in range(lo, hi))
    return OArray(val, _fill(val.shape, cell))


def diff(x, n=1, axis=-1, prepend=None, append=None):
    """np.diff: output i along the axis derives from the window [i, i+n] of the input.

    Untracked ``prepend`` / ``append`` are constants concatenated first.
    """
    kw = {}
    if prepend is not None:
        kw["prepend"] = _val(prepend)
    if append is not None:
        kw["append"] = _val(append)
    val = np.asarray(np.diff(x.val, n=n, axis=axis, **kw))
    ax = axis % x.ndim
    base = x
    parts = []
    for extra in (prepend, append):
        if extra is None:
            parts.append(None)
            continue
        e = as_oarray(extra)
        if e.ndim == 0:
            shp = list(x.shape)
            shp[ax] = 1
            e = broadcast_to(e, tuple(shp))
        parts.append(e)
    seq = [p for p in (parts[0], base, parts[1]) if p is not None]
    full = concatenate(seq, axis=ax) if len(seq) > 1 else base
    if n == 0:
        return OArray(val, full.rec.copy())
    return _window(full, val, ax, lambda i: (i, i + n + 1))


def ediff1d(x, to_end=None, to_begin=None):
    """np.ediff1d: diff of the flattening; to_begin/to_end are constants (or tracked)."""
    val = np.asarray(np.ediff1d(x.val, to_end=_val(to_end), to_begin=_val(to_begin)))
    flat = ravel(x)
    d = diff(flat)
    seq = []
    if to_begin is not None:
        seq.append(ravel(as_oarray(to_begin)))
    seq.append(OArray(d.val, d.rec))
    if to_end is not None:
        seq.append(ravel(as_oarray(to_end)))
    out = concatenate(seq, axis=0) if len(seq) > 1 else seq[0]
    assert out.shape == val.shape
    return OArray(val, out.rec)


def _conv_full(a, v, flip_v):
    """Full-mode lineage of convolve (flip_v=False) or correlate (flip_v=True)."""
    M, N = a.shape[0], v.shape[0]
    L = M + N - 1

    def cell(o):
        k = o[0]
        recs = []
        for j in range(M):
            if flip_v:
                # correlate: c[k'] = sum_n a[n + k' - (N-1)] * v[n]
                i = j - k + (N - 1)
            else:
                i = k - j
            if 0 <= i < N:
                recs.append(a.rec[j])
                recs.append(v.rec[i])
        return union(recs)

    return _fill((max(L, 0),), cell)


def _conv_mode(full, M, N, mode):
    n = min(M, N)
    if mode == "full":
        return full
    if mode == "same":
        off = (n - 1) // 2
        return full[off: off + max(M, N)]
    off = n - 1
    return full[off: off + max(M, N) - n + 1]


def convolve(a, v, mode="full"):
    """np.convolve: out[k] derives from the pairs (a[j], v[k-j]) that are multiplied into it."""
    a, v = as_oarray(a), as_oarray(v)
    val = np.asarray(np.convolve(a.val, v.val, mode=mode))
    rec = _conv_mode(_conv_full(a, v, False), a.size, v.size, mode)
    return OArray(val, np.array(rec, dtype=object))


def correlate(a, v, mode="valid"):
    """np.correlate: out[k] = sum_n a[n+k] * conj(v[n]), lineage of the pairs."""
    a, v = as_oarray(a), as_oarray(v)
    val = np.asarray(np.correlate(a.val, v.val, mode=mode))
    rec = _conv_mode(_conv_full(a, v, True), a.size, v.size, mode)
    return OArray(val, np.array(rec, dtype=object))


def reduceat(ufunc, x, indices, axis=0):
    """ufunc.reduceat: segment [i_k, i_{k+1}) (or just i_k when i_k >= i_{k+1}; last segment to the end)."""
    val = np.asarray(ufunc.reduceat(x.val, indices, axis=axis))
    ax = axis % x.ndim
    idx = [int(i) for i in np.asarray(indices).ravel()]
    n = x.shape[ax]

    def lo_hi(k):
        lo = idx[k]
        hi = idx[k + 1] if k + 1 < len(idx) else n
        return (lo, hi) if lo < hi else (lo, lo + 1)

    return _window(x, val, ax, lo_hi)


# ----------------------------------------------------------------------------
# contractions
# ----------------------------------------------------------------------------

def matmul(a, b):
    """a @ b: row i of a and column j of b (1-D operands promoted, batch dims broadcast)."""
    a, b = as_oarray(a), as_oarray(b)
    val = np.asarray(np.matmul(a.val, b.val))
    ar = a.rec[None, :] if a.ndim == 1 else a.rec
    br = b.rec[:, None] if b.ndim == 1 else b.rec
    batch = np.broadcast_shapes(ar.shape[:-2], br.shape[:-2])
    n, k = ar.shape[-2:]
    m = br.shape[-1]
    A = np.broadcast_to(ar, batch + (n, k))
    B = np.broadcast_to(br, batch + (k, m))

    def cell(o):
        bi, i, j = o[:-2], o[-2], o[-1]
        return union([A[bi + (i, t)] for t in range(k)] + [B[bi + (t, j)] for t in range(k)])

    rec = _fill(batch + (n, m), cell)
    if a.ndim == 1:
        rec = rec[..., 0, :]
    if b.ndim == 1:
        rec = rec[..., 0]
    assert rec.shape == val.shape, (rec.shape, val.shape)
    return OArray(val, np.array(rec, dtype=object))


def _tensordot_rec(a, b, axa, axb):
    axa = [x % a.ndim for x in axa]
    axb = [x % b.ndim for x in axb]
    fa = [d for d in range(a.ndim) if d not in axa]
    fb = [d for d in range(b.ndim) if d not in axb]
    cshape = [a.shape[d] for d in axa]
    shape = tuple(a.shape[d] for d in fa) + tuple(b.shape[d] for d in fb)

    def cell(o):
        oa, ob = o[: len(fa)], o[len(fa):]
        recs = []
        for c in np.ndindex(*cshape):
            ia = [0] * a.ndim
            ib = [0] * b.ndim
            for d, v in zip(fa, oa):
                ia[d] = v
            for d, v in zip(axa, c):
                ia[d] = v
            for d, v in zip(fb, ob):
                ib[d] = v
            for d, v in zip(axb, c):
                ib[d] = v
            recs.append(a.rec[tuple(ia)])
            recs.append(b.rec[tuple(ib)])
        return union(recs)

    return _fill(shape, cell)


def tensordot(a, b, axes=2):
    a, b = as_oarray(a), as_oarray(b)
    val = np.asarray(np.tensordot(a.val, b.val, axes=axes))
    if isinstance(axes, (int, np.integer)):
        axa = list(range(a.ndim - axes, a.ndim))
        axb = list(range(axes))
    else:
        axa, axb = axes
        axa = [axa] if isinstance(axa, (int, np.integer)) else list(axa)
        axb = [axb] if isinstance(axb, (int, np.integer)) else list(axb)
    rec = _tensordot_rec(a, b, axa, axb)
    assert rec.shape == val.shape
    return OArray(val, rec)


def dot(a, b):
    if np.ndim(_val(a)) == 0 or np.ndim(_val(b)) == 0:
        return elementwise(np.multiply, a, b)
    a, b = as_oarray(a), as_oarray(b)
    val = np.asarray(np.dot(a.val, b.val))
    rec = _tensordot_rec(a, b, [-1], [0] if b.ndim == 1 else [-2])
    assert rec.shape == val.shape
    return OArray(val, rec)


def inner(a, b):
    if np.ndim(_val(a)) == 0 or np.ndim(_val(b)) == 0:
        return elementwise(np.multiply, a, b)
    a, b = as_oarray(a), as_oarray(b)
    val = np.asarray(np.inner(a.val, b.val))
    rec = _tensordot_rec(a, b, [-1], [-1])
    assert rec.shape == val.shape
    return OArray(val, rec)


def vdot(a, b):
    a, b = as_oarray(a), as_oarray(b)
    val = np.asarray(np.vdot(a.val, b.val))
    return OArray(val, _fill((), lambda o: union(list(a.rec.ravel()) + list(b.rec.ravel()))))


def ufunc_outer(ufunc, a, b):
    """ufunc.outer: out[i..., j...] = a[i...] op b[j...]."""
    a, b = as_oarray(a), as_oarray(b)
    val = np.asarray(ufunc.outer(a.val, b.val))
    shape = a.shape + b.shape
    assert val.shape == shape
    return OArray(val, _fill(shape, lambda o: union([a.rec[o[: a.ndim]], b.rec[o[a.ndim:]]])))


def outer(a, b):
    """np.outer: the flattenings' outer product."""
    val = np.asarray(np.outer(_val(a), _val(b)))
    r = ufunc_outer(np.multiply, ravel(as_oarray(a)), ravel(as_oarray(b)))
    return OArray(val, r.rec)


def kron(a, b):
    """np.kron: out[i*bs + j] = a[i] * b[j] per axis (shorter operand promoted with leading 1s)."""
    a, b = as_oarray(a), as_oarray(b)
    val = np.asarray(np.kron(a.val, b.val))
    nd = max(a.ndim, b.ndim)
    ar = a.rec.reshape((1,) * (nd - a.ndim) + a.shape)
    br = b.rec.reshape((1,) * (nd - b.ndim) + b.shape)
    shape = tuple(x * y for x, y in zip(ar.shape, br.shape))
    assert shape == val.shape, (shape, val.shape)

    def cell(o):
        ia = tuple(c // s for c, s in zip(o, br.shape))
        ib = tuple(c % s for c, s in zip(o, br.shape))
        return union([ar[ia], br[ib]])

    return OArray(val, _fill(shape, cell))


def einsum(subscripts, *ops):
    """np.einsum (explicit or implicit mode, no ellipsis): every cell multiplied into the output cell."""
    ops = [as_oarray(o) for o in ops]
    val = np.asarray(np.einsum(subscripts, *[o.val for o in ops]))
    subs = subscripts.replace(" ", "")
    if "->" in subs:
        ins, out = subs.split("->")
    else:
        ins = subs
        allc = ins.replace(",", "")
        out = "".join(sorted(c for c in set(allc) if allc.count(c) == 1))
    ins = ins.split(",")
    assert "." not in subs
    sizes = {}
    for lab, o in zip(ins, ops):
        for ch, n in zip(lab, o.shape):
            sizes[ch] = n
    summed = sorted(set("".join(ins)) - set(out))

    def cell(o):
        asg = dict(zip(out, o))
        recs = []
        for s in itertools.product(*[range(sizes[ch]) for ch in summed]):
            asg.update(zip(summed, s))
            for lab, op in zip(ins, ops):
                recs.append(op.rec[tuple(asg[ch] for ch in lab)])
        return union(recs)

    assert val.shape == tuple(sizes[ch] for ch in out)
    return OArray(val, _fill(val.shape, cell))


# ----------------------------------------------------------------------------
# moves and copies (data independent)
# ----------------------------------------------------------------------------

def _gather(x, val, src_of, view=None):
    """Output cell o is a copy of x[src_of(o)] (None: a constant).

    ``view``: the numpy function that produced ``val``; when numpy returned a view of x, the
    records are the same view of x's records (checked against the definition), so that later
    writes through either reach the other, as the values do.
    """
    val = np.asarray(val)

    def cell(o):
        s = src_of(o)
        return NIL if s is None else x.rec[s]
    rec = _fill(val, cell)
    if view is not None and val.size and np.shares_memory(val, x.val):
        rv = view(x.rec)
        assert rv.shape == rec.shape and np.shares_memory(rv, x.rec)
        for o in np.ndindex(*rec.shape):
            assert rv[o] is rec[o], ("view records differ from the definition", o)
        rec = rv
    return OArray(val, rec)


def _ravel(o, shape):
    f = 0
    for c, n in zip(o, shape):
        f = f * n + c
    return f


def _unravel(f, shape):
    out = []
    for n in reversed(shape):
        out.append(f % n)
        f //= n
    return tuple(reversed(out))


def copy(x):
    return OArray(x.val.copy(), x.rec.copy())


def reshape(x, shape, order="C"):
    assert order == "C"
    val = np.reshape(x.val, shape)
    return _gather(x, val, lambda o: _unravel(_ravel(o, val.shape), x.shape), lambda r: np.reshape(r, shape))


def ravel(x):
    val = np.ravel(x.val)
    return _gather(x, val, lambda o: _unravel(o[0], x.shape), np.ravel)


def transpose(x, axes=None):
    axes = tuple(reversed(range(x.ndim))) if axes is None else tuple(a % x.ndim for a in axes)
    val = np.transpose(x.val, axes)

    def src(o):
        s = [0] * x.ndim
        for i, a in enumerate(axes):
            s[a] = o[i]
        return tuple(s)

    return _gather(x, val, src, lambda r: np.transpose(r, axes))


def swapaxes(x, a1, a2):
    axes = list(range(x.ndim))
    a1, a2 = a1 % x.ndim, a2 % x.ndim
    axes[a1], axes[a2] = axes[a2], axes[a1]
    out = transpose(x, axes)
    return OArray(np.swapaxes(x.val, a1, a2), out.rec)


def moveaxis(x, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [s % x.ndim for s in src]
    dst = [d % x.ndim for d in dst]
    order = [n for n in range(x.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    out = transpose(x, order)
    return OArray(np.moveaxis(x.val, source, destination), out.rec)


def flip(x, axis=None):
    axes = _norm_axis(axis, x.ndim)
    val = np.flip(x.val, axis)
    return _gather(x, val, lambda o: tuple(x.shape[d] - 1 - o[d] if d in axes else o[d] for d in range(x.ndim)),
                   lambda r: np.flip(r, axis))


def roll(x, shift, axis=None):
    val = np.roll(x.val, shift, axis)
    if axis is None:
        n = x.size
        flat = x.rec.reshape(-1)
        s = int(np.sum(shift))
        out = _fill((n,), lambda o: flat[(o[0] - s) % n])
        return OArray(val, out.reshape(x.shape))
    shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    tot = [0] * x.ndim
    for s, a in zip(shifts.ravel(), axes.ravel()):
        tot[int(a) % x.ndim] += int(s)
    return _gather(x, val, lambda o: tuple((o[d] - tot[d]) % x.shape[d] for d in range(x.ndim)))


def tile(x, reps):
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    val = np.tile(x.val, reps)
    nd = max(x.ndim, len(reps))
    xs = (1,) * (nd - x.ndim) + x.shape

    def src(o):
        return tuple(c % s for c, s in zip(o, xs))[nd - x.ndim:]

    return _gather(x, val, src)


def repeat(x, repeats, axis=None):
    val = np.repeat(x.val, repeats, axis)
    if axis is None:
        base = ravel(x)
        ax = 0
    else:
        base = x
        ax = axis % x.ndim
    n = base.shape[ax]
    reps = np.broadcast_to(np.asarray(repeats), (n,))
    owner = []
    for j in range(n):
        owner += [j] * int(reps[j])
    return _gather(base, val, lambda o: o[:ax] + (owner[o[ax]],) + o[ax + 1:])


def concatenate(xs, axis=0):
    xs = [as_oarray(x) for x in xs]
    val = np.concatenate([x.val for x in xs], axis=axis)
    if axis is None:
        xs = [ravel(x) for x in xs]
        ax = 0
    else:
        ax = axis % xs[0].ndim
    owner = []
    for k, x in enumerate(xs):
        owner += [(k, j) for j in range(x.shape[ax])]

    def cell(o):
        k, j = owner[o[ax]]
        return xs[k].rec[o[:ax] + (j,) + o[ax + 1:]]

    return OArray(val, _fill(val.shape, cell))


def stack(xs, axis=0):
    xs = [as_oarray(x) for x in xs]
    val = np.stack([x.val for x in xs], axis=axis)
    ax = axis % val.ndim
    return OArray(val, _fill(val.shape, lambda o: xs[o[ax]].rec[o[:ax] + o[ax + 1:]]))


def pad(x, pad_width, mode="constant", **kw):
    """np.pad: constant cells contribute nothing; ``edge`` clamps; ``wrap`` cycles."""
    val = np.pad(x.val, pad_width, mode=mode, **kw)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))

    def src(o):
        s = []
        for d in range(x.ndim):
            c = o[d] - int(pw[d, 0])
            n = x.shape[d]
            if mode == "constant":
                if not 0 <= c < n:
                    return None
            elif mode == "edge":
                c = min(max(c, 0), n - 1)
            elif mode == "wrap":
                c = c % n
            else:
                raise NotImplementedError(mode)
            s.append(c)
        return tuple(s)

    return _gather(x, val, src)


def squeeze(x, axis=None):
    val = np.squeeze(x.val, axis)
    if axis is None:
        drop = [d for d in range(x.ndim) if x.shape[d] == 1]
    else:
        drop = list(_norm_axis(axis, x.ndim))

    def src(o):
        it = iter(o)
        return tuple(0 if d in drop else next(it) for d in range(x.ndim))

    return _gather(x, val, src, lambda r: np.squeeze(r, axis))


def expand_dims(x, axis):
    val = np.expand_dims(x.val, axis)
    new = _norm_axis(axis, val.ndim)
    return _gather(x, val, lambda o: tuple(o[d] for d in range(val.ndim) if d not in new),
                   lambda r: np.expand_dims(r, axis))


def broadcast_to(x, shape):
    x = as_oarray(x)
    val = np.broadcast_to(x.val, shape)
    off = len(val.shape) - x.ndim
    return _gather(x, val, lambda o: tuple(0 if x.shape[d] == 1 else o[d + off] for d in range(x.ndim)))


def atleast_1d(x):
    return reshape(x, (1,)) if x.ndim == 0 else x


def atleast_2d(x):
    if x.ndim == 0:
        return reshape(x, (1, 1))
    if x.ndim == 1:
        return expand_dims(x, 0)
    return x


def atleast_3d(x):
    if x.ndim == 0:
        return reshape(x, (1, 1, 1))
    if x.ndim == 1:
        return reshape(x, (1, x.shape[0], 1))
    if x.ndim == 2:
        return expand_dims(x, 2)
    return x


def vstack(xs):
    xs = [atleast_2d(as_oarray(x)) for x in xs]
    return concatenate(xs, axis=0)


def hstack(xs):
    xs = [atleast_1d(as_oarray(x)) for x in xs]
    return concatenate(xs, axis=0 if xs[0].ndim == 1 else 1)


def dstack(xs):
    return concatenate([atleast_3d(as_oarray(x)) for x in xs], axis=2)


def column_stack(xs):
    cols = []
    for x in xs:
        x = as_oarray(x)
        cols.append(reshape(x, (x.shape[0], 1)) if x.ndim < 2 else x)
    return concatenate(cols, axis=1)


def block(nested):
    """np.block for nested lists of arrays with equal ndim >= the nesting depth."""
    def depth(n):
        return 1 + depth(n[0]) if isinstance(n, list) else 0

    D = depth(nested)

    def rec(n, level):
        if not isinstance(n, list):
            x = as_oarray(n)
            nd = max(x.ndim, D)
            return reshape(x, (1,) * (nd - x.ndim) + x.shape) if x.ndim < nd else x
        parts = [rec(m, level + 1) for m in n]
        return concatenate(parts, axis=-(D - level))

    out = rec(nested, 0)
    val = np.block(_map_nested(nested, _val))
    assert out.shape == val.shape
    return OArray(val, out.rec)


def _map_nested(n, fn):
    return [_map_nested(m, fn) for m in n] if isinstance(n, list) else fn(n)


def rot90(x, k=1, axes=(0, 1)):
    """np.rot90 by its definition in terms of flip and transpose."""
    k %= 4
    a0, a1 = axes[0] % x.ndim, axes[1] % x.ndim
    perm = list(range(x.ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 0:
        out = getitem(x, (slice(None),))  # numpy: m[:]
    elif k == 2:
        out = flip(flip(x, a0), a1)
    elif k == 1:
        out = transpose(flip(x, a1), perm)
    else:
        out = flip(transpose(x, perm), a1)
    val = np.rot90(x.val, k, axes)
    assert out.shape == val.shape
    return OArray(val, out.rec)


def tril(x, k=0):
    val = np.tril(x.val, k)
    return _gather(x, val, lambda o: o if o[-1] - o[-2] <= k else None)


def triu(x, k=0):
    val = np.triu(x.val, k)
    return _gather(x, val, lambda o: o if o[-1] - o[-2] >= k else None)


def diagonal(x, offset=0, axis1=0, axis2=1):
    val = np.diagonal(x.val, offset, axis1, axis2)
    a1, a2 = axis1 % x.ndim, axis2 % x.ndim
    rest = [d for d in range(x.ndim) if d not in (a1, a2)]

    def src(o):
        k = o[-1]
        s = [0] * x.ndim
        for d, c in zip(rest, o[:-1]):
            s[d] = c
        s[a1] = k + max(-offset, 0)
        s[a2] = k + max(offset, 0)
        return tuple(s)

    return _gather(x, val, src)


def trace(x, offset=0, axis1=0, axis2=1):
    d = diagonal(x, offset, axis1, axis2)
    val = np.asarray(np.trace(x.val, offset, axis1, axis2))
    r = reduce(np.sum, d, axis=-1)
    return OArray(val, r.rec)


# ----------------------------------------------------------------------------
# data-dependent selections
# ----------------------------------------------------------------------------

def _idx_cell(ind, o):
    """The cell of a tracked index array ``ind`` (OArray) used at broadcast coordinate ``o``."""
    k = ind.ndim
    tail = o[len(o) - k:] if k else ()
    return ind.rec[tuple(0 if ind.shape[d] == 1 else tail[d] for d in range(k))]


def take(x, indices, axis=None, mode="raise"):
    """np.take: a copy of the cell it names; control: the index cell."""
    ind = indices if isinstance(indices, OArray) else None
    iv = np.asarray(_val(indices))
    val = np.asarray(np.take(x.val, iv, axis=axis, mode=mode))
    base = ravel(x) if axis is None else x
    ax = 0 if axis is None else axis % x.ndim
    n = base.shape[ax]

    def fix(j):
        if mode == "wrap":
            return j % n
        if mode == "clip":
            return min(max(j, 0), n - 1)
        return j + n if j < 0 else j

    def cell(o):
        io = o[ax: ax + iv.ndim]
        s = o[:ax] + (fix(int(iv[io])),) + o[ax + iv.ndim:]
        r = base.rec[s]
        return with_control(r, [ind.rec[io]]) if ind is not None else r

    return OArray(val, _fill(val.shape, cell))


def take_along_axis(x, indices, axis):
    ind = indices if isinstance(indices, OArray) else None
    iv = np.asarray(_val(indices))
    val = np.asarray(np.take_along_axis(x.val, iv, axis=axis))
    if axis is None:
        base, ax = ravel(x), 0
    else:
        base, ax = x, axis % x.ndim
    shape = val.shape
    bi = np.broadcast_to(iv, shape)
    bx = np.broadcast_to(base.rec, shape[:ax] + (base.shape[ax],) + shape[ax + 1:])
    n = base.shape[ax]

    def cell(o):
        j = int(bi[o])
        j = j + n if j < 0 else j
        r = bx[o[:ax] + (j,) + o[ax + 1:]]
        return with_control(r, [_idx_cell(ind, o)]) if ind is not None else r

    return OArray(val, _fill(shape, cell))


def compress(condition, x, axis=None):
    """np.compress: the selected cell; control: the condition cell that selected it."""
    cnd = condition if isinstance(condition, OArray) else None
    cv = np.asarray(_val(condition)).astype(bool)
    val = np.asarray(np.compress(cv, x.val, axis=axis))
    base, ax = (ravel(x), 0) if axis is None else (x, axis % x.ndim)
    pos = [j for j in range(cv.size) if cv[j]]

    def cell(o):
        j = pos[o[ax]]
        r = base.rec[o[:ax] + (j,) + o[ax + 1:]]
        return with_control(r, [cnd.rec[j]]) if cnd is not None else r

    return OArray(val, _fill(val.shape, cell))


def extract(condition, x):
    """np.extract: x.ravel()[cond.ravel()], control: the condition cell."""
    cnd = ravel(condition) if isinstance(condition, OArray) else np.ravel(condition)
    return compress(cnd if isinstance(cnd, OArray) else cnd.astype(bool), ravel(x))


def choose(a, choices, mode="raise"):
    """np.choose: out[i] = choices[a[i]][i] (broadcast); control: the cell of a."""
    av = _val(a)
    chs = [as_oarray(c) for c in choices]
    val = np.asarray(np.choose(av, [_val(c) for c in choices], mode=mode))  # (python scalars stay weak)
    shape = val.shape
    ba = np.broadcast_to(np.asarray(av), shape)
    brs = [np.broadcast_to(c.rec, shape) for c in chs]
    ar = np.broadcast_to(a.rec, shape) if isinstance(a, OArray) else None

    def cell(o):
        r = brs[int(ba[o])][o]
        return with_control(r, [ar[o]]) if ar is not None else r

    return OArray(val, _fill(shape, cell))


def select(condlist, choicelist, default=0):
    """np.select: the cell of the first choice whose condition holds (else ``default``).

    Only the data lineage is defined here (which condition cells "chose" the
    copy is not pinned down by the contract); control adds the winning
    condition cell.
    """
    conds = [as_oarray(c) for c in condlist]
    chs = [as_oarray(c) for c in choicelist]
    dflt = as_oarray(default)
    val = np.asarray(np.select([_val(c) for c in condlist], [_val(c) for c in choicelist], _val(default)))
    shape = val.shape
    bc = [np.broadcast_to(c.val, shape) for c in conds]
    bcr = [np.broadcast_to(c.rec, shape) for c in conds]
    bch = [np.broadcast_to(c.rec, shape) for c in chs]
    bd = np.broadcast_to(dflt.rec, shape)

    def cell(o):
        for k in range(len(conds)):
            if bc[k][o]:
                return with_control(bch[k][o], [bcr[k][o]])
        return bd[o]

    return OArray(val, _fill(shape, cell))


def delete(x, obj, axis=None):
    val = np.asarray(np.delete(x.val, obj, axis=axis))
    base, ax = (ravel(x), 0) if axis is None else (x, axis % x.ndim)
    n = base.shape[ax]
    gone = {int(i) % n for i in np.atleast_1d(np.arange(n)[obj])}
    keep = [j for j in range(n) if j not in gone]
    return _gather(base, val, lambda o: o[:ax] + (keep[o[ax]],) + o[ax + 1:])


def insert(x, obj, values, axis=None):
    """np.insert, traced: inserted values are constants (or tracked ``values`` cells)."""
    return trace_move(lambda a, v: np.insert(a, obj, v, axis=axis), x, values)


def append(x, values, axis=None):
    if axis is None:
        return concatenate([ravel(as_oarray(x)), ravel(as_oarray(values))], axis=0)
    return concatenate([x, values], axis=axis)


def resize(x, new_shape):
    val = np.resize(x.val, new_shape)
    flat = x.rec.reshape(-1)
    n = flat.size
    rflat = _fill((val.size,), lambda o: flat[o[0] % n] if n else NIL)
    return OArray(val, rflat.reshape(val.shape))


def array_split(x, sections, axis=0):
    """np.array_split: basic-slice views of x (so writes through a piece reach x)."""
    vals = np.array_split(x.val, sections, axis=axis)
    ax = axis % x.ndim
    out = []
    start = 0
    for v in vals:
        sl = [slice(None)] * x.ndim
        sl[ax] = slice(start, start + v.shape[ax])
        start += v.shape[ax]
        piece = getitem(x, tuple(sl))
        assert piece.shape == v.shape
        out.append(piece)
    return out


def split(x, sections, axis=0):
    vals = np.split(x.val, sections, axis=axis)
    parts = array_split(x, sections, axis=axis)
    assert [p.shape for p in parts] == [v.shape for v in vals]
    return parts


def _lanes(shape, ax):
    """Iterate over the index tuples of every lane along ``ax`` (yield list of coords)."""
    other = shape[:ax] + shape[ax + 1:]
    for o in np.ndindex(*other):
        yield [o[:ax] + (j,) + o[ax:] for j in range(shape[ax])]


def sort(x, axis=-1):
    """np.sort: each output cell is the cell copied there, ties in stable order."""
    val = np.sort(x.val, axis=axis)
    base, ax = (ravel(x), 0) if axis is None else (x, axis % x.ndim)
    rec = _nil(val.shape)
    for lane in _lanes(base.shape, ax):
        lv = np.array([base.val[c] for c in lane])
        perm = np.argsort(lv, kind="stable")
        for k, j in enumerate(perm):
            rec[lane[k]] = base.rec[lane[int(j)]]
        np.testing.assert_array_equal(lv[perm], np.array([val[c] for c in lane]))
    return OArray(val, rec)


def argsort(x, axis=-1, **kw):
    """np.argsort (and other index results): the whole compared lane for every cell."""
    val = np.argsort(x.val, axis=axis, **kw)
    base, ax = (ravel(x), 0) if axis is None else (x, axis % x.ndim)
    rec = _nil(val.shape)
    for lane in _lanes(base.shape, ax):
        r = union(base.rec[c] for c in lane)
        for c in lane:
            rec[c] = r
    return OArray(val, rec)


def lane_sets(x, axis=-1):
    """{lane-id: union of the lineage of its cells}, for checking partition-like ops."""
    base, ax = (ravel(x), 0) if axis is None else (x, axis % x.ndim)
    out = {}
    for lane in _lanes(base.shape, ax):
        key = lane[0][:ax] + lane[0][ax + 1:]
        out[key] = union(base.rec[c] for c in lane)
    return out


def unique(x, return_index=False, return_inverse=False, return_counts=False):
    """np.unique (axis=None, no NaN): values and return_index from the first occurrence,
    counts from every occurrence, inverse from the cell itself."""
    res = np.unique(x.val, return_index=return_index, return_inverse=return_inverse,
                    return_counts=return_counts)
    res = res if isinstance(res, tuple) else (res,)
    flat_v = x.val.reshape(-1)
    flat_r = x.rec.reshape(-1)
    occ = {}
    for i, v in enumerate(flat_v.tolist()):
        occ.setdefault(v, []).append(i)   # in C order: occ[v][0] is the first occurrence
    uvals = sorted(occ)
    first = [occ[u][0] for u in uvals]
    every = [occ[u] for u in uvals]
    np.testing.assert_array_equal(res[0], np.array(uvals, dtype=res[0].dtype))
    outs = [OArray(res[0], _fill((len(uvals),), lambda o: flat_r[first[o[0]]]))]
    k = 1
    if return_index:
        np.testing.assert_array_equal(res[k], first)
        outs.append(OArray(res[k], _fill((len(uvals),), lambda o: flat_r[first[o[0]]])))
        k += 1
    if return_inverse:
        inv = res[k]
        assert inv.size == flat_v.size
        outs.append(OArray(inv, _fill((inv.size,), lambda o: flat_r[o[0]]).reshape(inv.shape)))
        k += 1
    if return_counts:
        outs.append(OArray(res[k], _fill((len(uvals),), lambda o: union(flat_r[i] for i in every[o[0]]))))
    return outs[0] if len(outs) == 1 else tuple(outs)


def nonzero(x):
    """np.nonzero: position k of every coordinate array points at cell nz[k]."""
    vals = np.nonzero(x.val)
    pos = list(zip(*[v.tolist() for v in vals]))
    return tuple(OArray(v, _fill(v.shape, lambda o: x.rec[pos[o[0]]])) for v in vals)


def argwhere(x):
    val = np.argwhere(x.val)
    return OArray(val, _fill(val.shape, lambda o: x.rec[tuple(int(c) for c in val[o[0]])]))


def flatnonzero(x):
    val = np.flatnonzero(x.val)
    flat = x.rec.reshape(-1)
    return OArray(val, _fill(val.shape, lambda o: flat[int(val[o[0]])]))


def searchsorted(a, v, **kw):
    """np.searchsorted: the cell of v itself plus every cell of a."""
    a, vv = as_oarray(a), as_oarray(v)
    val = np.asarray(np.searchsorted(a.val, _val(v), **kw))
    alla = list(a.rec.ravel())
    br = np.broadcast_to(vv.rec, val.shape)
    return OArray(val, _fill(val.shape, lambda o: union([br[o]] + alla)))


def isin(element, test_elements, **kw):
    e, t = as_oarray(element), as_oarray(test_elements)
    val = np.asarray(np.isin(_val(element), _val(test_elements), **kw))
    allt = list(t.rec.ravel())
    br = np.broadcast_to(e.rec, val.shape)
    return OArray(val, _fill(val.shape, lambda o: union([br[o]] + allt)))


def where(cond, x, y):
    """np.where(c, x, y): the chosen cell; control: the condition cell."""
    c, xx, yy = as_oarray(cond), as_oarray(x), as_oarray(y)
    val = np.asarray(np.where(_val(cond), _val(x), _val(y)))
    shape = val.shape
    bc = np.broadcast_to(c.val, shape)
    bcr = np.broadcast_to(c.rec, shape)
    bx = np.broadcast_to(xx.rec, shape)
    by = np.broadcast_to(yy.rec, shape)
    return OArray(val, _fill(shape, lambda o: with_control(bx[o] if bc[o] else by[o], [bcr[o]])))


# ----------------------------------------------------------------------------
# indexing
# ----------------------------------------------------------------------------

class _Decoded:
    __slots__ = ("basic", "ctl", "plain", "shape", "src")


def decode_index(shape, idx):
    """Decode a numpy index by the rules of numpy's indexing, cell by cell.

    Returns an object with ``shape`` (the result shape), ``src`` (dict out
    coord -> source coord), ``ctl`` (dict out coord -> list of (OArray,
    coord) of the tracked index / mask cells that chose it), ``basic`` and
    ``plain`` (the index with OArrays replaced by their values).  The
    decoding is checked against numpy indexing an array of positions.
    """
    if not isinstance(idx, tuple):
        idx = (idx,)
    items = []
    plain = []
    for it in idx:
        if it is None:
            items.append(["new"])
            plain.append(None)
        elif it is Ellipsis:
            items.append(["ell"])
            plain.append(Ellipsis)
        elif isinstance(it, slice):
            items.append(["slice", it])
            plain.append(it)
        elif isinstance(it, (bool, np.bool_)):
            raise NotImplementedError("scalar boolean index")
        elif isinstance(it, (int, np.integer)):
            items.append(["int", int(it)])
            plain.append(it)
        else:
            tracked = it if isinstance(it, OArray) else None
            arr = np.asarray(_val(it))
            plain.append(arr)
            if arr.dtype == bool:
                items.append(["mask", arr, tracked])
            else:
                assert np.issubdtype(arr.dtype, np.integer) or arr.size == 0, arr.dtype
                items.append(["arr", arr.astype(np.intp), tracked])
    consumed = sum(1 for k in items if k[0] in ("int", "slice", "arr")) + \
        sum(k[1].ndim for k in items if k[0] == "mask")
    n_ell = sum(1 for k in items if k[0] == "ell")
    assert n_ell <= 1
    nfill = len(shape) - consumed
    if nfill < 0:
        raise IndexError("too many indices")
    if n_ell == 0:
        items += [["slice", slice(None)]] * nfill
        items.append(["ell"])  # trailing marker, never between advanced indices
    has_adv = any(k[0] in ("arr", "mask") for k in items)
    # walk
    p = 0
    adv = []      # (item position, kind, src dims, index arrays (broadcast later), tracked, extra)
    basic = []    # (item position, kind, src dim, range)
    fixed = {}
    for pos, k in enumerate(items):
        kind = k[0]
        if kind == "new":
            basic.append((pos, "new", None, None))
        elif kind == "ell":
            for _ in range(nfill if n_ell else 0):
                basic.append((pos, "slice", p, range(shape[p])))
                p += 1
        elif kind == "slice":
            basic.append((pos, "slice", p, range(*k[1].indices(shape[p]))))
            p += 1
        elif kind == "int":
            v = k[1]
            if not -shape[p] <= v < shape[p]:
                raise IndexError("index out of bounds")
            v %= shape[p]
            if has_adv:
                adv.append((pos, "int", (p,), [np.asarray(v)], None, None))
            else:
                fixed[p] = v
            p += 1
        elif kind == "arr":
            arr = k[1]
            n = shape[p]
            if arr.size and (arr.max() >= n or arr.min() < -n):
                raise IndexError("index out of bounds")
            adv.append((pos, "arr", (p,), [np.where(arr < 0, arr + n, arr)], k[2], arr))
            p += 1
        else:  # mask
            m = k[1]
            dims = tuple(range(p, p + m.ndim))
            if m.shape != tuple(shape[d] for d in dims):
                raise IndexError("boolean index did not match")
            adv.append((pos, "mask", dims, list(np.nonzero(m)), k[2], m))
            p += m.ndim
    assert p == len(shape)
    out = _Decoded()
    out.plain = tuple(plain)
    out.basic = not has_adv
    if has_adv:
        B = np.broadcast_shapes(*[a.shape for e in adv for a in e[3]])
        positions = [e[0] for e in adv]
        adjacent = positions == list(range(positions[0], positions[0] + len(positions)))
        if adjacent:
            before = [b for b in basic if b[0] < positions[0]]
            after = [b for b in basic if b[0] > positions[0]]
        else:
            before, after = [], basic
        layout = [("b", b) for b in before] + [("adv", None)] + [("b", b) for b in after]
    else:
        B = ()
        layout = [("b", b) for b in basic]
    oshape = []
    for kind, b in layout:
        if kind == "adv":
            oshape += list(B)
        else:
            oshape.append(1 if b[1] == "new" else len(b[3]))
    oshape = tuple(oshape)
    badv = [[np.broadcast_to(a, B) for a in e[3]] for e in adv]
    src = {}
    ctl = {}
    for o in np.ndindex(*oshape):
        s = [None] * len(shape)
        for d, v in fixed.items():
            s[d] = v
        cells = []
        i = 0
        for kind, b in layout:
            if kind == "adv":
                bo = o[i: i + len(B)]
                i += len(B)
                for e, arrs in zip(adv, badv):
                    coords = [int(a[bo]) for a in arrs]
                    for d, c in zip(e[2], coords):
                        s[d] = c
                    if e[4] is not None:
                        if e[1] == "mask":
                            cells.append((e[4], tuple(coords)))
                        else:
                            cells.append((e[4], _bcoord(e[4].shape, bo)))
            else:
                if b[1] == "slice":
                    s[b[2]] = b[3][o[i]]
                i += 1
        src[o] = tuple(s)
        ctl[o] = cells
    out.shape = oshape
    out.src = src
    out.ctl = ctl
    # cross-check with numpy indexing an array of flat positions
    positions_arr = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)[out.plain]
    positions_arr = np.asarray(positions_arr)
    assert positions_arr.shape == oshape, (positions_arr.shape, oshape, idx)
    for o, s in src.items():
        assert positions_arr[o] == (np.ravel_multi_index(s, shape) if len(shape) else 0), (o, s, idx)
    return out


def _bcoord(shape, bo):
    k = len(shape)
    tail = bo[len(bo) - k:] if k else ()
    return tuple(0 if shape[d] == 1 else tail[d] for d in range(k))


def _with_ellipsis(plain):
    return plain if any(p is Ellipsis for p in plain) else plain + (Ellipsis,)


def getitem(x, idx):
    """x[idx]: a copy of (or, for basic indexing, a view on) the indexed cell; control: the
    mask / index-array cells that chose it."""
    dec = decode_index(x.shape, idx)
    if dec.basic:
        pl = _with_ellipsis(dec.plain)
        val = x.val[pl]
        rec = x.rec[pl]
        for o, s in dec.src.items():
            assert rec[o] is x.rec[s]
        return OArray(val, rec)
    val = np.asarray(x.val[dec.plain])
    assert val.shape == dec.shape

    def cell(o):
        r = x.rec[dec.src[o]]
        cells = dec.ctl[o]
        return with_control(r, [a.rec[c] for a, c in cells]) if cells else r

    return OArray(val, _fill(dec.shape, cell))


def setitem(x, idx, v):
    """x[idx] = v: written cells take v's broadcast cell lineage (sequential: last write wins).

    Only data lineage of v (and its own control lineage) is written: which
    control cells a *tracked* index of a write contributes is not specified
    by the contract, so callers should not query control after such writes.
    """
    dec = decode_index(x.shape, idx)
    vv = as_oarray(v)
    vr = vv.rec
    while vr.ndim > len(dec.shape) and vr.shape[0] == 1:
        vr = vr[0]
    vb = np.array(np.broadcast_to(vr, dec.shape), dtype=object)  # copy: v may alias x
    x.val[dec.plain] = _val(v) if not isinstance(v, OArray) else v.val
    for o in np.ndindex(*dec.shape):
        x.rec[dec.src[o]] = vb[o]
    return x


def iop(fn, x, y):
    """In-place ``x op= y`` (``fn(x, y, out=x)``): new lineage = union of old x cell and y cell."""
    new = elementwise(fn, x, y)
    assert new.shape == x.shape
    fn(x.val, _val(y), out=x.val)
    newrec = np.array(new.rec, dtype=object)
    x.rec[...] = newrec
    return x


def ufunc_out(fn, *inputs, out):
    """``fn(*inputs, out=out)``: out's cells replaced by the broadcast inputs' lineage."""
    brs = [np.broadcast_to(a.rec, out.shape) for a in inputs if isinstance(a, OArray)]
    newrec = _fill(out.shape, lambda i: union(b[i] for b in brs))
    fn(*[_val(a) for a in inputs], out=out.val)
    out.rec[...] = newrec
    return out


def ufunc_at(fn, x, idx, b=None):
    """ufunc.at: the scattered cells are added to the old lineage (unbuffered, all duplicates)."""
    dec = decode_index(x.shape, idx)
    bb = None
    if b is not None:
        bo = as_oarray(b)
        bb = np.array(np.broadcast_to(bo.rec, dec.shape), dtype=object)
    if b is None:
        fn.at(x.val, dec.plain)
    else:
        fn.at(x.val, dec.plain, _val(b))
    for o in np.ndindex(*dec.shape):
        s = dec.src[o]
        if bb is not None:
            x.rec[s] = union([x.rec[s], bb[o]])
    return x


# ----------------------------------------------------------------------------
# independent cross-checks
# ----------------------------------------------------------------------------

def trace_move(fn, *xs):
    """Lineage of a data-independent move by running it on unique integer tags.

    Every cell of every OArray operand gets a unique positive tag (constants get
    0); the output's tags name the cell each output cell was copied from.
    Exact for moves and copies that never compare values.
    """
    tags = []
    table = [NIL]
    for x in xs:
        if isinstance(x, OArray):
            t = np.arange(len(table), len(table) + x.size, dtype=np.int64).reshape(x.shape)
            table += list(x.rec.reshape(-1))
            tags.append(t)
        else:
            tags.append(np.zeros(np.shape(x), dtype=np.int64))
    tout = fn(*tags)
    val = fn(*[_val(x) for x in xs])

    def wrap(t, v):
        t = np.asarray(t)
        return OArray(np.asarray(v), _fill(t.shape, lambda o: table[int(t[o])]))

    if isinstance(tout, (tuple, list)):
        return [wrap(t, v) for t, v in zip(tout, val)]
    return wrap(tout, val)


def perturbation_lineage(fn, sources):
    """{out coord: set of (name, coord)} by perturbing one source cell at a time.

    ``fn(**arrays)`` must be a plain-numpy pipeline.  Each source cell in turn
    is set to a fresh value (one that appears nowhere) and the output cells that
    change are said to derive from it.  Exact for pure moves and copies; an
    under-approximation wherever values can mask each other.
    """
    base = {k: np.array(v) for k, v in sources.items()}
    y0 = np.asarray(fn(**{k: v.copy() for k, v in base.items()}))
    big = 1 + max([float(np.max(np.abs(v))) for v in base.values() if v.size] + [0.0])
    rel = {o: set() for o in np.ndindex(*y0.shape)}
    n = 0
    for name, arr in base.items():
        for c in np.ndindex(*arr.shape):
            n += 1
            pert = {k: v.copy() for k, v in base.items()}
            pert[name][c] = 1000 * big + n
            y = np.asarray(fn(**pert))
            changed = ~((y == y0) | (np.isnan(y) & np.isnan(y0)) if y.dtype.kind in "fc" else (y == y0))
            for o in zip(*np.nonzero(changed)) if y.ndim else ([()] if changed else []):
                rel[tuple(int(k) for k in o)].add((name, tuple(int(k) for k in c)))
    return rel


# ----------------------------------------------------------------------------
# comparing a library answer with the oracle (no library import here)
# ----------------------------------------------------------------------------

def result_set(res, ndims, what="backward"):
    """Validate the format of a backward answer and return it as a set of (name, coords).

    The contract: a dict-like {source name: int64 array (k, source.ndim)}, rows
    unique and sorted in C order, sources without cells omitted.
    """
    out = set()
    for name, arr in res.items():
        assert name in ndims, f"{what}: unknown source {name!r}"
        assert isinstance(arr, np.ndarray), f"{what}[{name!r}] is {type(arr).__name__}, not ndarray"
        assert arr.dtype == np.int64, f"{what}[{name!r}].dtype is {arr.dtype}, not int64"
        assert arr.ndim == 2 and arr.shape[1] == ndims[name], \
            f"{what}[{name!r}].shape is {arr.shape}, expected (k, {ndims[name]})"
        assert arr.shape[0] > 0, f"{what}: source {name!r} has no cells but is not omitted"
        rows = [tuple(int(v) for v in r) for r in arr]
        assert rows == sorted(set(rows)), f"{what}[{name!r}] rows are not unique and sorted: {rows}"
        out |= {(name, r) for r in rows}
    return out


def coords_set(arr, ndim, what="forward"):
    """Validate a forward answer (int64 (k, ndim), sorted unique rows) and return a set of tuples."""
    assert isinstance(arr, np.ndarray), f"{what} returned {type(arr).__name__}, not ndarray"
    assert arr.dtype == np.int64, f"{what}.dtype is {arr.dtype}, not int64"
    assert arr.ndim == 2 and arr.shape[1] == ndim, f"{what}.shape is {arr.shape}, expected (k, {ndim})"
    rows = [tuple(int(v) for v in r) for r in arr]
    assert rows == sorted(set(rows)), f"{what} rows are not unique and sorted: {rows}"
    return set(rows)


def _fmt_cells(cells, limit=12):
    cells = sorted(cells)
    s = ", ".join(f"{n}{list(c)}" for n, c in cells[:limit])
    return s + (f", ... ({len(cells)} in all)" if len(cells) > limit else "")


def compare(got, complete, expected, partial, may_be_partial, ctx=""):
    """The soundness rules for one answer.

    * oracle PARTIAL (an opaque op upstream): whence must say PARTIAL and give a superset;
    * whence FULL: the sets must be equal;
    * whence PARTIAL without reason (no opaque op in the pipeline): an error;
      otherwise a superset is required.
    """
    missing = expected - got
    extra = got - expected
    detail = f"{ctx}\n  missing: {_fmt_cells(missing)}\n  extra:   {_fmt_cells(extra)}"
    assert complete in (True, False), f"{ctx}: .complete is {complete!r}"
    if partial:
        assert not complete, f"whence claims FULL through an opaque (PARTIAL) op{detail}"
        assert not missing, f"PARTIAL answer is not a superset{detail}"
    elif complete:
        assert not missing and not extra, f"wrong lineage{detail}"
    else:
        assert may_be_partial, f"whence says PARTIAL but nothing in the pipeline is opaque{detail}"
        assert not missing, f"PARTIAL answer is not a superset{detail}"


def sample_cells(shape, k=12):
    """All cells of ``shape`` if at most k, else k cells evenly spread in C order (first and last included)."""
    n = math.prod(shape)
    if n <= k:
        return [tuple(int(c) for c in i) for i in np.ndindex(*shape)]
    flat = sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))
    return [tuple(int(c) for c in np.unravel_index(f, shape)) for f in flat]


def per_cell_pairs(node, k, relation=None):
    """Explicit (output flat, parent-``k`` flat) pairs of one map, by one dense backward per output cell.

    ``relation`` is the map to expand (default: the node's own ``node.map``; pass ``node.lineage[0]`` for
    the relation queries follow, which is a composed map where dead intermediates were folded)."""
    ref = []
    rel = node.map if relation is None else relation
    for o in np.ndindex(*node.shape):
        m = np.zeros(node.shape, bool)
        m[o] = True
        pm = rel.backward(m)[k]
        if pm is None:
            continue
        of = np.ravel_multi_index(o, node.shape) if node.shape else 0
        ref.extend((of, c) for c in np.flatnonzero(pm))
    return np.unique(np.array(ref, dtype=np.int64).reshape(-1, 2), axis=0)
