"""Gather and selection maps: each output cell copies at most one parent cell, given by a source-index
array (replayed from shapes and arguments, or stored by a data-dependent operation: class C), and explicit
relations given as pairs."""

from __future__ import annotations

from typing import Any

import math

import numpy as np

from .base import Map, shape_size
from .index import ElementwiseMap
from .rectangles import MAX_ROWS, DEFERRED, affine_runs

__all__ = ["GatherMap", "PairsMap", "LazyIndex", "stored_gather", "mask_gather", "replay_gather",
           "split_by_parent", "rows_to_src", "gather_from_rows"]


def split_by_parent(m, sel):
    """Source-index values ``sel`` of a gather (1-based over the concatenated parents, 0 for a constant) as
    flat cell positions per parent of ``m``."""
    sel = sel[sel > 0] - 1
    if len(m.parent_shapes) == 1:
        return [sel]
    return [sel[(sel >= m.offsets[k]) & (sel < m.offsets[k + 1])] - m.offsets[k]
            for k in range(len(m.parent_shapes))]


class GatherMap(Map):
    """Each output cell is a copy of at most one parent cell.

    ``src()`` returns an int64 array of the output's shape: 0 for a constant cell, else
    ``offset[k] + flat_index + 1`` for a copy of parent ``k``'s cell ``flat_index``, where ``offset[k]`` is the
    total size of parents ``0 .. k-1``.

    Parameters
    ----------
    out_shape : tuple
    parent_shapes : sequence of tuple
    src : callable returning ndarray
        Computed lazily, at query time.
    stored : sequence of ndarray, optional
        Arrays the map keeps (counted in :attr:`nbytes`).

    Attributes
    ----------
    index : ndarray or None
        The stored 1-based index array (:func:`stored_gather`), None when the map computes it.
    bits : ndarray or None
        The selection mask, one bit per parent cell (:func:`mask_gather`), None otherwise.
    whole, part : GatherMap or None, int or None
        For the channel of one parent of a multi-parent gather (:meth:`channel`): the gather and the parent.
    aligned : bool
        Every output cell copies the same cell of one of the parents, which all have the output's shape
        (``where``, ``select``): composition merges the channels without computing the index array.
    lazy : bool
        True for a subclass whose index array is a lazy (out-of-core) array, written chunk by chunk.
    """

    kind = "gather"
    copies = True
    composable = True
    index: np.ndarray | None = None
    bits: np.ndarray | None = None
    whole: GatherMap | None = None
    part: int | None = None
    aligned: bool = False
    lazy: bool = False

    def __init__(self, out_shape, parent_shapes, src, stored=()):
        self.out_shape = tuple(out_shape)
        self.parent_shapes = tuple(tuple(s) for s in parent_shapes)
        self._src = src
        self.stored = tuple(stored)
        offs = [0]
        for s in self.parent_shapes:
            offs.append(offs[-1] + shape_size(s))
        self.offsets = offs

    def src(self):
        s = np.asarray(self._src())
        if s.shape != self.out_shape:
            s = np.broadcast_to(s, self.out_shape)
        return s

    def backward(self, out_mask):
        src = self.src()
        sel = src[np.broadcast_to(out_mask, self.out_shape)]
        sel = sel[sel > 0] - 1
        res = []
        for k, shape in enumerate(self.parent_shapes):
            lo, hi = self.offsets[k], self.offsets[k + 1]
            part = sel[(sel >= lo) & (sel < hi)] - lo if len(self.parent_shapes) > 1 else sel
            m = np.zeros(shape_size(shape), bool)
            m[part] = True
            res.append(m.reshape(shape))
        return res

    def forward(self, k, in_mask):
        src = self.src()
        lo, hi = self.offsets[k], self.offsets[k + 1]
        local = src.astype(np.int64, copy=False) - 1 - lo
        ok = (local >= 0) & (local < hi - lo)
        flat = np.ravel(in_mask)
        out = np.zeros(self.out_shape, bool)
        out[ok] = flat[local[ok]]
        return out

    @property
    def nbytes(self):
        return sum(getattr(a, "nbytes", 0) for a in self.stored)

    def held_arrays(self):
        return tuple(a for a in self.stored if getattr(a, "nbytes", 0))

    def channel(self, k):
        if type(self) is not GatherMap:
            return None
        lo, n = self.offsets[k], shape_size(self.parent_shapes[k])
        src = self.src

        def local(src=src, lo=lo, n=n):
            s = np.asarray(src(), dtype=np.int64) - lo
            return np.where((s >= 1) & (s <= n), s, 0)

        ch = GatherMap(self.out_shape, [self.parent_shapes[k]], local, stored=self.stored)
        ch.whole, ch.part = self, k  # composition merges the channels of an aligned gather without computing
        return ch

    def copy_index(self):
        return self.src()

    def backward_sparse(self, flat):
        return split_by_parent(self, np.ravel(self.src())[flat])

    def forward_sparse(self, k, flat):
        src = np.ravel(self.src()).astype(np.int64, copy=False) - 1 - self.offsets[k]
        n = self.offsets[k + 1] - self.offsets[k]
        hit = np.zeros(n, bool)
        hit[flat] = True
        ok = (src >= 0) & (src < n)
        out = np.zeros(src.shape, bool)
        out[ok] = hit[src[ok]]
        return np.flatnonzero(out)

    def broadcast(self, out_shape, valid=None):
        """This gather followed by a broadcast of its output to ``out_shape`` (cells where ``valid`` is False
        are constants): one gather, whose index array is the broadcast of this one's."""
        if type(self) is not GatherMap or len(self.parent_shapes) != 1:
            return None
        pshape = tuple(self.out_shape)
        out = tuple(out_shape)
        src = self.src

        def bsrc(src=src, pshape=pshape, out=out, valid=valid):
            s = np.broadcast_to(np.reshape(src(), pshape), out)
            return s if valid is None else np.where(np.broadcast_to(valid, out), s, 0)

        return GatherMap(out, self.parent_shapes, bsrc, stored=tuple(self.held_arrays()) + (
            () if valid is None else (np.asarray(valid),)))

    def compose(self, inner):
        if type(self) is not GatherMap:
            return None
        if not inner.copies or len(inner.parent_shapes) != 1:
            return None
        if type(inner) is GatherMap and self.bits is not None and inner.bits is not None:
            # a mask of a mask: one mask over the inner parent, by boolean passes (no index arrays)
            pshape = inner.parent_shapes[0]
            mid = np.unpackbits(self.bits, count=shape_size(self.parent_shapes[0])).view(bool)
            sel = np.unpackbits(inner.bits, count=shape_size(pshape)).view(bool)
            sel[sel] = mid
            if len(pshape) == 1 and tuple(self.out_shape) == tuple(pshape):
                return ElementwiseMap(tuple(pshape), (tuple(pshape),))  # every cell, in order
            return mask_gather(self.out_shape, pshape, sel)
        # one index array for both: idx_inner[idx_self]
        if not self.held_arrays() and not inner.held_arrays():
            return None  # both computed from shapes and arguments: chained, nothing stored
        s1 = np.asarray(self.src())
        s2 = np.ravel(np.asarray(inner.copy_index()))
        if s1.size and int(s1.min()) > 0:  # every output cell is a copy: no constant to carry
            return stored_gather(self.out_shape, inner.parent_shapes[0], s2[s1 - 1])
        s2 = np.concatenate([np.zeros(1, s2.dtype), s2])
        return stored_gather(self.out_shape, inner.parent_shapes[0], s2[s1])

    def rectangles(self):
        """Rows of a gather from the runs of its index array (see :mod:`whence.maps.rectangles`), or None."""
        cached = self.__dict__.get("_rect_rows", False)
        if cached is not False:
            return cached
        if DEFERRED[0]:
            return None
        rows = None
        out = tuple(self.out_shape)
        if type(self) is GatherMap and shape_size(out) and all(shape_size(p) for p in self.parent_shapes) and \
                not self.lazy:  # (a lazy index array is written chunk by chunk, not read here)
            try:
                rows = _gather_rows(self, out)
            except MemoryError:  # pragma: no cover - the index array is the compressed form then
                rows = None
        self.__dict__["_rect_rows"] = rows
        return rows


def _gather_rows(m, out):
    """The rows of gather ``m`` (output shape ``out``), parent by parent; None past ``MAX_ROWS``."""
    src = np.ravel(np.asarray(m.src(), dtype=np.int64))
    rows: list[Any] = []
    for k, pshape in enumerate(m.parent_shapes):
        lo, hi = m.offsets[k], m.offsets[k + 1]
        local = src - 1 - lo
        valid = (local >= 0) & (local < hi - lo)
        if not valid.any():
            continue
        cap = MAX_ROWS - len(rows)
        if len(out) <= 1:  # rows over flat indices first (one pass), rows over axes only where they are fewer
            f = _gather_flat_rows(k, local, valid, cap)
            a = None
            if out and (f is None or len(f) > 1):
                a = _gather_axis_rows(k, out, tuple(pshape), local, valid, cap if f is None else len(f) - 1)
        else:  # rows over axes first: they compose with reductions and windows
            a = _gather_axis_rows(k, out, tuple(pshape), local, valid, cap)
            f = None
            if a is None or len(a) > 1:
                f = _gather_flat_rows(k, local, valid, cap if a is None else len(a) - 1)
        best = a if a is not None and (f is None or len(a) < len(f)) else f
        if best is None:
            return None
        rows.extend(best)
        if len(rows) > MAX_ROWS:
            return None
    return rows


def _gather_flat_rows(k, local, valid, cap):
    runs = affine_runs([local], valid, cap)
    if runs is None:
        return None
    return [(k, (s,), (e,), (-2,), (m,), (o,), (-2,), (m,), (o,)) for s, e, ((m, o),) in runs]


def _gather_axis_rows(k, out, pshape, local, valid, cap):
    """Rows with each parent coordinate an affine function of one output axis (a separable move), or None."""
    d = len(out)
    V = valid.reshape(out)
    if d == 0:
        return None
    anchor = []
    va = []
    for a in range(d):
        v = V.any(axis=tuple(b for b in range(d) if b != a)) if d > 1 else V
        va.append(v)
        nz = np.flatnonzero(v)
        if not len(nz):
            return []
        anchor.append(int(nz[0]))
    if d > 1:
        sep = va[0].reshape((-1,) + (1,) * (d - 1))
        for a in range(1, d):
            sep = sep & va[a].reshape((1,) * a + (-1,) + (1,) * (d - 1 - a))
        if not np.array_equal(sep, V):
            return None
    flat = np.where(valid, local, 0)
    strides = [shape_size(pshape[j + 1:]) for j in range(len(pshape))]
    dep: dict[int, Any] = {}  # parent axis -> (output axis, line along it) or None for a constant
    first = int(np.flatnonzero(valid)[0])
    const = {}
    for j in range(len(pshape)):
        C = ((flat // strides[j]) % pshape[j]).reshape(out)  # one parent coordinate at a time (memory)
        for a in range(d):
            idx = tuple(slice(None) if b == a else anchor[b] for b in range(d))
            line = C[idx]
            full = np.broadcast_to(line.reshape((1,) * a + (-1,) + (1,) * (d - 1 - a)), out)
            if np.array_equal(C[V], full[V]):
                lv = line[va[a]]
                dep[j] = None if (lv == lv[0]).all() else (a, line.copy())
                break
        else:
            return None
        if dep[j] is None:
            const[j] = int(C.reshape(-1)[first])
        del C
    per_axis = []
    for a in range(d):
        js = [j for j, t in dep.items() if t is not None and t[0] == a]
        runs = affine_runs([dep[j][1] for j in js], va[a], cap)
        if runs is None:
            return None
        per_axis.append((js, runs))
    total = math.prod(len(r) for _, r in per_axis)
    if total > cap:
        return None
    rows = []
    for combo in np.ndindex(*[len(r) for _, r in per_axis]):
        lo, hi = [], []
        aff = {}
        for a, c in enumerate(combo):
            js, runs = per_axis[a]
            s, e, ps = runs[c]
            lo.append(s)
            hi.append(e)
            for j, (m, o) in zip(js, ps):
                aff[j] = (a, m, o) if m else (-1, 0, o)
        t = [aff[j] if j in aff else (-1, 0, const[j]) for j in range(len(pshape))]
        rows.append((k, tuple(lo), tuple(hi), tuple(x[0] for x in t), tuple(x[1] for x in t),
                     tuple(x[2] for x in t), tuple(x[0] for x in t), tuple(x[1] for x in t), tuple(x[2] for x in t)))
    return rows


def rows_to_src(rows, out_shape, parent_shapes):
    """The source-index array (1-based over the concatenated parents, 0 for a constant, of ``out_shape``) of
    the gather that the rectangle rows ``rows`` describe (as :meth:`GatherMap.rectangles` gives them); None
    when a row is not a copy (a range of parent cells per output cell).

    Examples
    --------
    >>> import numpy as np
    >>> from whence.maps import GatherMap, rows_to_src
    >>> flip = GatherMap((5,), [(5,)], lambda: np.arange(5, 0, -1))
    >>> rows_to_src(flip.rectangles(), (5,), [(5,)]).tolist()
    [5, 4, 3, 2, 1]
    """
    out_shape = tuple(out_shape)
    offsets = [0]
    for s in parent_shapes:
        offsets.append(offsets[-1] + shape_size(tuple(s)))
    src = np.zeros(shape_size(out_shape), np.int64)
    d = len(out_shape)
    ostrides = [shape_size(out_shape[a + 1:]) for a in range(d)]
    for k, olo, ohi, lax, lmul, loff, hax, hmul, hoff in rows:
        if (lax, lmul, loff) != (hax, hmul, hoff):
            return None
        if tuple(lax) == (-2,):  # a row over flat indices: output f copies parent cell loff + lmul * f
            f = np.arange(olo[0], ohi[0] + 1, dtype=np.int64)
            src[f] = offsets[k] + loff[0] + lmul[0] * f + 1
            continue
        pshape = tuple(parent_shapes[k])
        if len(olo) != d or len(lax) != len(pshape):
            return None
        axes = [np.arange(olo[a], ohi[a] + 1, dtype=np.int64).reshape([-1 if b == a else 1 for b in range(d)])
                for a in range(d)]
        box = tuple(len(range(olo[a], ohi[a] + 1)) for a in range(d))
        of = sum((axes[a] * ostrides[a] for a in range(d)), np.zeros((1,) * d, np.int64))
        pf = np.zeros((1,) * d, np.int64)
        for j in range(len(pshape)):
            c = loff[j] + (lmul[j] * axes[lax[j]] if lax[j] >= 0 else 0)
            pf = pf + np.asarray(c, np.int64) * shape_size(pshape[j + 1:])
        src[np.broadcast_to(of, box).ravel()] = offsets[k] + np.broadcast_to(pf, box).ravel() + 1
    return src.reshape(out_shape)


def gather_from_rows(out_shape, parent_shapes, rows):
    """The :class:`GatherMap` that the rectangle rows ``rows`` describe (:func:`rows_to_src`): it keeps the rows
    (its :meth:`~GatherMap.rectangles`) and computes its index array from them on first use."""
    rows = [tuple(r) for r in rows]
    cell: list[Any] = []

    def src(rows=rows, out_shape=tuple(out_shape), parent_shapes=tuple(map(tuple, parent_shapes))):
        if not cell:
            cell.append(rows_to_src(rows, out_shape, parent_shapes))
        return cell[0]

    m = GatherMap(out_shape, parent_shapes, src)
    m.__dict__["_rect_rows"] = rows
    return m


def stored_gather(out_shape, parent_shape, src):
    """A one-parent :class:`GatherMap` holding the 1-based index array ``src`` (int32 where it fits), or an
    identity :class:`ElementwiseMap` when ``src`` copies every cell in place."""
    out_shape, parent_shape = tuple(out_shape), tuple(parent_shape)
    src = np.asarray(src)
    n = shape_size(out_shape)
    if out_shape == parent_shape and src.shape == out_shape and n:
        flat = np.ravel(src)
        if int(flat[0]) == 1 and int(flat[-1]) == n and _increasing(flat) and int(flat[-1] - flat[0]) == n - 1:
            return ElementwiseMap(out_shape, (parent_shape,))  # increasing from 1 to n: every cell in place
    if src.shape != out_shape:
        src = np.broadcast_to(src, out_shape)
    npar = shape_size(parent_shape)
    if len(out_shape) == 1 and n and npar // 8 + 1 < 4 * n:
        flat = np.ravel(src)
        if flat[0] > 0 and _increasing(flat):
            # a selection in order (a mask): one bit per parent cell is smaller than an index per output cell
            bits = np.zeros(npar, bool)
            bits[flat - 1] = True
            return mask_gather(out_shape, parent_shape, bits)
    dt = np.int32 if npar < 2**31 - 1 else np.int64
    arr = np.array(src, dtype=dt, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    m = GatherMap(out_shape, [parent_shape], (lambda a=arr: a), stored=[arr])
    m.index = arr
    return m


def _increasing(flat):
    """True when ``flat`` (1-D) is strictly increasing (a sample of its head is looked at first)."""
    n = len(flat)
    if n < 2:
        return True
    head = flat[:1024]
    if not bool((head[1:] > head[:-1]).all()):
        return False
    return n <= 1024 or bool((flat[1:] > flat[:-1]).all())


def mask_gather(out_shape, parent_shape, mask):
    """The one-parent :class:`GatherMap` of ``parent[mask]`` (``mask`` a boolean array of the parent's shape,
    ``out_shape`` its 1-D result), holding the mask as one bit per cell.

    Examples
    --------
    >>> import numpy as np
    >>> from whence.maps import mask_gather
    >>> m = mask_gather((2,), (2, 2), np.array([[True, False], [False, True]]))
    >>> m.src().tolist(), m.nbytes
    ([1, 4], 1)
    """
    n = shape_size(parent_shape)
    bits = np.packbits(np.ravel(mask))

    def src(bits=bits, n=n):
        return np.flatnonzero(np.unpackbits(bits, count=n)).astype(np.int64) + 1

    m = GatherMap(out_shape, [parent_shape], src, stored=[bits])
    m.bits = bits
    return m


class LazyIndex:
    """An index array computed on first use from a reference to the operation's input values.

    Sorting records only a reference to its input buffer; the permutation is computed when a query first
    needs it, and stored from then on.  Before whence writes into that buffer, every pending LazyIndex on it
    is computed (see :meth:`whence.TrackedArray._before_write`), so the answer never depends on later values.
    """

    __slots__ = ("_fn", "_value", "__weakref__")

    def __init__(self, fn):
        self._fn = fn
        self._value = None

    def get(self):
        if self._value is None:
            v = np.asarray(self._fn())
            if v.dtype.itemsize > 4 and v.size and int(v.max(initial=0)) < 2**31 - 1 and int(v.min(initial=0)) >= 0:
                v = v.astype(np.int32)
            self._value = v
            self._fn = None
        return self._value

    materialize = get

    @property
    def pending(self):
        return self._value is None

    @property
    def nbytes(self):
        return 0 if self._value is None else self._value.nbytes


def replay_gather(out_shape, operand_shapes, tracked, replay, output=None, stored=()):
    """A :class:`GatherMap` computed by replaying a pure data-movement function on index arrays.

    Parameters
    ----------
    out_shape : tuple
    operand_shapes : sequence of tuple
        Shapes of all data operands, tracked or not, in the order ``replay`` takes them.
    tracked : sequence of bool
        Which operands are tracked (the map's parents, in order).  Untracked ones are replayed as zeros
        (constants).
    replay : callable
        ``replay(list_of_arrays)`` performs the same movement as the operation did.
    output : int, optional
        Which element of ``replay``'s result to use when it returns several arrays.
    """
    operand_shapes = [tuple(s) for s in operand_shapes]
    parent_shapes = [s for s, t in zip(operand_shapes, tracked) if t]

    def src():
        xs = []
        off = 0
        for shape, t in zip(operand_shapes, tracked):
            n = shape_size(shape)
            if t:
                xs.append(np.arange(off + 1, off + n + 1, dtype=np.int64).reshape(shape))
                off += n
            else:
                xs.append(np.zeros(shape, np.int64))
        out = replay(xs)
        if output is not None:
            out = out[output]
        return np.asarray(out)

    return GatherMap(out_shape, parent_shapes, src, stored)


class PairsMap(Map):
    """An explicit relation: ``pairs(k)`` returns (output flat indices, parent-``k`` flat indices)."""

    kind = "pairs"
    composable = True

    def __init__(self, out_shape, parent_shapes, pairs, stored=()):
        self.out_shape = tuple(out_shape)
        self.parent_shapes = tuple(tuple(s) for s in parent_shapes)
        self._pairs = pairs
        self.stored = tuple(stored)

    def backward(self, out_mask):
        flat = np.ravel(np.broadcast_to(out_mask, self.out_shape))
        res = []
        for k, shape in enumerate(self.parent_shapes):
            o, i = self._pairs(k)
            m = np.zeros(shape_size(shape), bool)
            m[i[flat[o]]] = True
            res.append(m.reshape(shape))
        return res

    def forward(self, k, in_mask):
        o, i = self._pairs(k)
        out = np.zeros(shape_size(self.out_shape), bool)
        out[o[np.ravel(in_mask)[i]]] = True
        return out.reshape(self.out_shape)

    @property
    def nbytes(self):
        return sum(getattr(a, "nbytes", 0) for a in self.stored)

    def held_arrays(self):
        return tuple(a for a in self.stored if getattr(a, "nbytes", 0))
