"""Lineage maps: the relation between the cells of one operation's output and the cells of its parents.

A map is recorded once per operation, at O(1) cost for shape-determined operations (classes A and B of the
design) and at the cost of the index array the operation computes anyway for data-dependent ones (class C).
Cells are only computed when a query asks, by pushing cell sets through the map:

``backward(out_mask)``
    the boolean mask of the output cells being asked about goes in; one mask per parent comes out (``None``
    for a parent that contributes nothing).
``forward(k, in_mask)``
    the mask of cells of parent ``k`` goes in; the mask of output cells derived from them comes out.

Masks passed in are never modified; masks returned may be read-only views and must not be modified either.

The map kinds
-------------
:class:`ElementwiseMap`
    broadcasting: an output cell derives from the broadcast cell of each operand.
:class:`ReduceMap`
    an output cell derives from every cell reduced into it (optionally restricted by a ``where`` mask).
:class:`LaneMap`
    an output cell derives from its whole lane along some axes (argsort: every cell compared).
:class:`BandMap`
    windows along axes: output index ``i`` derives from input indices ``lo[i] .. hi[i]`` (cumsum, diff,
    convolve, reduceat, gradient, packbits).
:class:`EinsumMap`
    contractions described by labels (matmul, dot, tensordot, einsum, outer, cov, membership tests).
:class:`GatherMap`
    moves and copies: each output cell is copied from at most one parent cell, given by a source-index array
    that is computed lazily by replaying the operation on index arrays (class A) or stored (class C).
:class:`PairsMap`
    an explicit relation given as (output cell, input cell) pairs, for scatters (``ufunc.at``, ``bincount``).
:class:`OpaqueMap`
    every output cell derives from every input cell (class D, always PARTIAL).
:class:`UnionMap`
    the union of several maps over the same output, e.g. a copy plus the control cells that chose it.
:class:`ChainMap`
    several one-parent maps applied in turn (the composition of maps that have no closed form together,
    see :mod:`whence.compose`).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "Map", "ElementwiseMap", "ReduceMap", "LaneMap", "BandMap", "EinsumMap", "GatherMap", "PairsMap",
    "OpaqueMap", "UnionMap", "ChainMap", "replay_gather", "unbroadcast_any", "compose_pair", "compose_keys",
    "is_identity_map", "stored_gather", "mask_gather",
]


def _size(shape):
    return math.prod(shape)


def unbroadcast_any(mask, shape):
    """Reduce a mask of a broadcast shape to ``shape`` by OR over the broadcast axes."""
    shape = tuple(shape)
    extra = mask.ndim - len(shape)
    if extra > 0:
        mask = mask.any(axis=tuple(range(extra)))
    axes = tuple(i for i, (m, s) in enumerate(zip(mask.shape, shape)) if s == 1 and m != 1)
    if axes:
        mask = mask.any(axis=axes, keepdims=True)
    if mask.shape != shape:
        mask = np.broadcast_to(mask, shape)
    return mask


class Map:
    """Base class: ``out_shape``, ``parent_shapes`` and the two directions of the relation.

    The protocol every map follows (``docs/contributing.md``, "Add a map kind"):

    Required
        ``kind`` (a string the store records), ``out_shape``, ``parent_shapes``, ``backward(out_mask)`` (for
        each parent, the boolean mask of its cells that the cells of ``out_mask`` derive from, or None),
        ``forward(k, in_mask)`` (the output cells that derive from the cells ``in_mask`` of parent ``k``) and
        ``nbytes``.
    Optional (queries use them when a class has them, and fall back to the dense masks otherwise)
        ``backward_sparse(flat)`` / ``forward_sparse(k, flat)``: the same on sorted flat indices, or None when
        not available for this input; ``backward_all()`` / ``forward_all(k)``: the answer for the whole array
        (per parent True / False, or None: ask ``backward``); ``copy_index()``: for a move, the flat source cell
        of every output cell; ``rectangles()``: the ProvRC rows of the relation (or None);
        ``held_arrays()``, ``channel(k)`` and ``compose(inner)`` (defined here, used by :mod:`whence.compose`).
    """

    __slots__ = ("__dict__",)

    kind = "map"
    out_shape: tuple
    parent_shapes: tuple

    def backward(self, out_mask):  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, k, in_mask):  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def nbytes(self):
        """Bytes of lineage held by this map (index arrays and masks it stores)."""
        return 0

    def held_arrays(self):
        """The arrays this map keeps (index arrays, masks), each once; composition compares their sizes."""
        return ()

    def channel(self, k):
        """The relation between the output and parent ``k`` alone, as a one-parent map (None: not available)."""
        return self if len(self.parent_shapes) == 1 and k == 0 else None

    def compose(self, inner):
        """This (one-parent) map after the one-parent map ``inner`` (whose output is this map's parent),
        composed exactly into one map of the same or a smaller size; None when no such rule applies (see
        :func:`compose_pair`, which then chains the two)."""
        return None

    def __repr__(self):
        return f"<{type(self).__name__} {self.parent_shapes} -> {self.out_shape}>"


class ElementwiseMap(Map):
    """Broadcasting elementwise relation.

    Parameters
    ----------
    out_shape : tuple
    parent_shapes : sequence of tuple
        Each broadcasts to ``out_shape``.
    valid : ndarray of bool, optional
        Broadcastable to ``out_shape``; output cells where it is False have no lineage (``where=`` without
        ``out=``).
    """

    kind = "elementwise"

    __slots__ = ("out_shape", "parent_shapes", "valid")

    def __init__(self, out_shape, parent_shapes, valid=None):
        # shapes are kept as given (tuples from ndarray.shape): construction is on the hot path
        self.out_shape = out_shape
        self.parent_shapes = parent_shapes
        self.valid = valid

    def backward(self, out_mask):
        if self.valid is not None:
            out_mask = out_mask & self.valid
        shape = self.out_shape
        return [out_mask if s == shape else unbroadcast_any(out_mask, s) for s in self.parent_shapes]

    def forward(self, k, in_mask):
        out = np.broadcast_to(in_mask, self.out_shape)
        if self.valid is not None:
            out = out & self.valid
        return out

    @property
    def nbytes(self):
        return 0 if self.valid is None else self.valid.nbytes

    def held_arrays(self):
        return () if self.valid is None else (np.asarray(self.valid),)

    def channel(self, k):
        return ElementwiseMap(self.out_shape, (tuple(self.parent_shapes[k]),), self.valid)

    def compose(self, inner):
        if is_identity_map(self):
            return inner
        if type(inner) is ElementwiseMap:
            if inner.valid is not None:
                if self.valid is not None:
                    return None
                pshape = tuple(self.parent_shapes[0])
                v = np.broadcast_to(np.broadcast_to(inner.valid, pshape), tuple(self.out_shape))
                if v.nbytes > np.asarray(inner.valid).nbytes:
                    return None
                return ElementwiseMap(self.out_shape, (tuple(inner.parent_shapes[0]),), v)
            return ElementwiseMap(self.out_shape, (tuple(inner.parent_shapes[0]),), self.valid)
        if type(inner) is GatherMap and len(inner.parent_shapes) == 1:
            pshape = tuple(self.parent_shapes[0])
            out = tuple(self.out_shape)
            src = inner.src
            valid = self.valid

            def bsrc(src=src, pshape=pshape, out=out, valid=valid):
                s = np.broadcast_to(np.reshape(src(), pshape), out)
                return s if valid is None else np.where(np.broadcast_to(valid, out), s, 0)

            return GatherMap(out, inner.parent_shapes, bsrc, stored=tuple(inner.held_arrays()) + (
                () if valid is None else (np.asarray(valid),)))
        return None

    def copy_index(self):
        """1-based source index of every output cell (0: none), as :meth:`GatherMap.src` gives it."""
        pshape = tuple(self.parent_shapes[0])
        s = np.broadcast_to(np.arange(1, _size(pshape) + 1, dtype=np.int64).reshape(pshape), self.out_shape)
        if self.valid is not None:
            s = np.where(np.broadcast_to(self.valid, self.out_shape), s, 0)
        return s


def is_identity_map(m):
    """True for a one-parent elementwise map with the parent's shape and no ``where`` mask: output cell i is
    input cell i."""
    return (type(m) is ElementwiseMap and m.valid is None and len(m.parent_shapes) == 1
            and tuple(m.parent_shapes[0]) == tuple(m.out_shape))


def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    out = []
    for a in axis:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise np.exceptions.AxisError(a, ndim) if hasattr(np, "exceptions") else ValueError(a)
        out.append(a % ndim if ndim else 0)
    return tuple(sorted(set(out)))


#: the public name other modules use: ``axis`` (None, an int or a tuple) as a tuple of non-negative axes
normalize_axes = _normalize_axes


class ReduceMap(Map):
    """Reduction over ``axes`` of an array of shape ``in_shape``.

    The parents broadcast to ``in_shape`` (after an optional reshape given in ``aligns``, used for 1-D
    weights along an axis).  The output has the reduced shape, with the reduced axes kept as length 1 when
    ``keepdims`` is true, possibly preceded by extra leading axes (the ``q`` axes of ``quantile``) along which
    the lineage is the same.

    Parameters
    ----------
    in_shape : tuple
    axes : tuple of int
        Normalised, sorted axes of ``in_shape`` that are reduced.
    out_shape : tuple
    parent_shapes : sequence of tuple
    aligns : sequence of tuple or None, optional
        Shape each parent is reshaped to before broadcasting to ``in_shape`` (None: the parent's own shape).
    where : ndarray of bool, optional
        Broadcastable to ``in_shape``; cells where it is False are not reduced.
    """

    kind = "reduce"

    def __init__(self, in_shape, axes, out_shape, parent_shapes, aligns=None, where=None):
        self.in_shape = in_shape
        self.axes = axes
        self.out_shape = out_shape
        self.parent_shapes = parent_shapes
        self._aligns = aligns
        self.where = where

    @property
    def aligns(self):
        return self._aligns if self._aligns is not None else (None,) * len(self.parent_shapes)

    @property
    def kept(self):
        return tuple(1 if i in self.axes else d for i, d in enumerate(self.in_shape))

    @property
    def lead(self):
        kept, out = self.kept, tuple(self.out_shape)
        if len(out) >= len(kept) and out[len(out) - len(kept):] == kept:
            return len(out) - len(kept)
        return len(out) - (len(self.in_shape) - len(self.axes))

    def _in_mask_from_out(self, out_mask):
        if self.lead:
            out_mask = out_mask.any(axis=tuple(range(self.lead)))
        m = out_mask.reshape(self.kept)
        m = np.broadcast_to(m, self.in_shape)
        if self.where is not None:
            m = m & self.where
        return m

    def backward(self, out_mask):
        m = self._in_mask_from_out(out_mask)
        res = []
        for shape, align in zip(self.parent_shapes, self.aligns):
            if align is None:
                res.append(unbroadcast_any(m, shape))
            else:
                res.append(unbroadcast_any(m, align).reshape(shape))
        return res

    def forward(self, k, in_mask):
        align = self.aligns[k]
        if align is not None:
            in_mask = in_mask.reshape(align)
        m = np.broadcast_to(in_mask, self.in_shape)
        if self.where is not None:
            m = m & self.where
        red = m.any(axis=self.axes, keepdims=True) if self.axes else m
        red = red.reshape(self.out_shape[self.lead:])
        return np.broadcast_to(red, self.out_shape)

    @property
    def nbytes(self):
        return 0 if self.where is None else np.asarray(self.where).nbytes

    def held_arrays(self):
        return () if self.where is None else (np.asarray(self.where),)

    def channel(self, k):
        al = self._aligns
        return ReduceMap(self.in_shape, self.axes, self.out_shape, (tuple(self.parent_shapes[k]),),
                         None if al is None else (al[k],), self.where)

    def compose(self, inner):
        # a reduction of a broadcast is a reduction of the broadcast's input
        if type(inner) is ElementwiseMap and inner.valid is None and self.aligns[0] is None:
            return ReduceMap(self.in_shape, self.axes, self.out_shape, (tuple(inner.parent_shapes[0]),),
                             None, self.where)
        return None


class LaneMap(Map):
    """Each output cell derives from its whole lane along ``axes`` of the (same-shaped) input."""

    kind = "lane"

    def __init__(self, shape, axes, parent_shapes=None):
        self.out_shape = tuple(shape)
        self.axes = tuple(axes)
        self.parent_shapes = tuple(tuple(s) for s in parent_shapes) if parent_shapes else (self.out_shape,)

    def _spread(self, mask):
        if not self.axes:
            return mask
        return np.broadcast_to(mask.any(axis=self.axes, keepdims=True), self.out_shape)

    def backward(self, out_mask):
        m = self._spread(out_mask)
        return [unbroadcast_any(m, s) for s in self.parent_shapes]

    def forward(self, k, in_mask):
        return self._spread(np.broadcast_to(in_mask, self.out_shape))

    def channel(self, k):
        return LaneMap(self.out_shape, self.axes, [self.parent_shapes[k]])

    def compose(self, inner):
        if type(inner) is ElementwiseMap and inner.valid is None:
            return LaneMap(self.out_shape, self.axes, [inner.parent_shapes[0]])
        return None


class BandMap(Map):
    """Windows along one or more axes; every other axis maps one to one.

    Along ``axis``, output index ``i`` derives from input indices ``lo[i]`` to ``hi[i]`` inclusive (nothing
    when ``hi[i] < lo[i]``).  Several (axis, lo, hi) bands compose as a product, which is exact for separable
    windows (a rectangle per output cell).

    Parameters
    ----------
    out_shape, in_shape : tuple
    bands : list of (axis, lo, hi)
        ``lo`` and ``hi`` are int64 arrays of length ``out_shape[axis]`` with values in ``[0, in_shape[axis])``.
    """

    kind = "band"

    def __init__(self, out_shape, in_shape, bands):
        self.out_shape = out_shape
        self.parent_shapes = (in_shape,)
        # ``bands`` may be a callable returning the list, so that recording costs O(1) (prefix sums)
        self._bands = bands

    @property
    def bands(self):
        b = self._bands
        if callable(b):
            b = b()
        return [(int(ax), np.asarray(lo, np.int64), np.asarray(hi, np.int64)) for ax, lo, hi in b]

    @staticmethod
    def _back_axis(mask, axis, lo, hi, n):
        m = np.moveaxis(mask, axis, 0)
        ok = hi >= lo
        diff = np.zeros((n + 1,) + m.shape[1:], np.int64)
        if ok.any():
            vals = m[ok].astype(np.int64)
            np.add.at(diff, lo[ok], vals)
            np.subtract.at(diff, hi[ok] + 1, vals)
        res = np.cumsum(diff[:n], axis=0) > 0
        return np.moveaxis(res, 0, axis)

    @staticmethod
    def _fwd_axis(mask, axis, lo, hi):
        m = np.moveaxis(mask, axis, 0)
        c = np.zeros((m.shape[0] + 1,) + m.shape[1:], np.int64)
        np.cumsum(m, axis=0, out=c[1:])
        ok = hi >= lo
        lo_c = np.where(ok, lo, 0)
        hi_c = np.where(ok, hi + 1, 0)
        res = (c[hi_c] - c[lo_c]) > 0
        return np.moveaxis(res, 0, axis)

    def backward(self, out_mask):
        m = out_mask
        for axis, lo, hi in reversed(self.bands):
            m = self._back_axis(m, axis, lo, hi, self.parent_shapes[0][axis])
        return [m]

    def forward(self, k, in_mask):
        m = in_mask
        for axis, lo, hi in self.bands:
            m = self._fwd_axis(m, axis, lo, hi)
        return m

    @property
    def nbytes(self):
        return 0 if callable(self._bands) else sum(lo.nbytes + hi.nbytes for _, lo, hi in self.bands)

    def held_arrays(self):
        return () if callable(self._bands) else tuple(a for _, lo, hi in self.bands for a in (lo, hi))


class EinsumMap(Map):
    """Contraction described by labels, as in :func:`numpy.einsum`.

    An output cell derives from every cell of operand ``k`` whose labels shared with the output agree with
    the output cell's; labels private to the operand (summed over) take every value.  A label repeated
    within one operand restricts it to the diagonal.  An operand axis of length 1 against a longer label is a
    broadcast axis and is treated as private.

    Parameters
    ----------
    op_labels : sequence of tuple
        The labels (any hashable) of each operand's axes.
    out_labels : tuple
    out_shape : tuple
    parent_shapes : sequence of tuple
    """

    kind = "einsum"

    def __init__(self, op_labels, out_labels, out_shape, parent_shapes):
        self.out_shape = tuple(out_shape)
        self.parent_shapes = tuple(tuple(s) for s in parent_shapes)
        self.out_labels = tuple(out_labels)
        self._op_labels = op_labels
        self._plans = None

    def channel(self, k):
        return EinsumMap([tuple(self._op_labels[k])], self.out_labels, self.out_shape, [self.parent_shapes[k]])

    @property
    def plans(self):
        """Per operand: (labels, first axis of each label, diagonal axis pairs, labels shared with the output),
        worked out on first use (recording a contraction stays O(1))."""
        if self._plans is None:
            self._plans = self._make_plans(self._op_labels)
        return self._plans

    def _make_plans(self, op_labels):
        sizes = dict(zip(self.out_labels, self.out_shape))
        for labels, shape in zip(op_labels, self.parent_shapes):
            for lab, d in zip(labels, shape):
                if d != 1:
                    sizes[lab] = d
                else:
                    sizes.setdefault(lab, d)
        plans = []
        for labels, shape in zip(op_labels, self.parent_shapes):
            first = {}
            diag = []
            for ax, lab in enumerate(labels):
                if lab in first:
                    diag.append((first[lab], ax))
                else:
                    first[lab] = ax
            shared = [lab for lab, ax in first.items()
                      if lab in self.out_labels and not (shape[ax] == 1 and sizes.get(lab, 1) != 1)]
            plans.append((tuple(labels), first, tuple(diag), tuple(shared)))
        return plans

    def _diag_mask(self, shape, diag):
        m = None
        for a1, a2 in diag:
            idx = np.indices(shape, sparse=True)
            eq = idx[a1] == idx[a2]
            m = eq if m is None else (m & eq)
        return m

    def backward(self, out_mask):
        res = []
        for shape, (labels, first, diag, shared) in zip(self.parent_shapes, self.plans):
            other = tuple(i for i, lab in enumerate(self.out_labels) if lab not in shared)
            r = out_mask.any(axis=other) if other else out_mask
            # r's axes follow the output order of the shared labels; reorder to operand order
            out_order = [lab for lab in self.out_labels if lab in shared]
            op_order = sorted(set(shared), key=lambda lab: first[lab])
            if out_order != op_order:
                r = np.transpose(r, [out_order.index(lab) for lab in op_order])
            # place axes: shared first-occurrence axes take r's axes, others are size 1
            view_shape = []
            for ax, lab in enumerate(labels):
                if lab in shared and first[lab] == ax:
                    view_shape.append(shape[ax])
                else:
                    view_shape.append(1)
            m = np.broadcast_to(r.reshape(view_shape), shape)
            if diag:
                m = m & self._diag_mask(shape, diag)
            res.append(m)
        return res

    def forward(self, k, in_mask):
        shape = self.parent_shapes[k]
        labels, first, diag, shared = self.plans[k]
        m = in_mask
        if diag:
            m = m & self._diag_mask(shape, diag)
        keep = [ax for ax, lab in enumerate(labels) if lab in shared and first[lab] == ax]
        drop = tuple(ax for ax in range(len(shape)) if ax not in keep)
        r = m.any(axis=drop) if drop else m
        op_order = [labels[ax] for ax in keep]
        out_order = [lab for lab in self.out_labels if lab in shared]
        if op_order != out_order:
            r = np.transpose(r, [op_order.index(lab) for lab in out_order])
        view_shape = [d if lab in shared else 1 for lab, d in zip(self.out_labels, self.out_shape)]
        return np.broadcast_to(r.reshape(view_shape), self.out_shape)


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
    """

    kind = "gather"

    def __init__(self, out_shape, parent_shapes, src, stored=()):
        self.out_shape = tuple(out_shape)
        self.parent_shapes = tuple(tuple(s) for s in parent_shapes)
        self._src = src
        self.stored = tuple(stored)
        offs = [0]
        for s in self.parent_shapes:
            offs.append(offs[-1] + _size(s))
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
            m = np.zeros(_size(shape), bool)
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
        lo, n = self.offsets[k], _size(self.parent_shapes[k])
        src = self.src

        def local(src=src, lo=lo, n=n):
            s = np.asarray(src(), dtype=np.int64) - lo
            return np.where((s >= 1) & (s <= n), s, 0)

        ch = GatherMap(self.out_shape, [self.parent_shapes[k]], local, stored=self.stored)
        ch.whole, ch.part = self, k  # composition merges the channels of an aligned gather without computing
        return ch

    def copy_index(self):
        return self.src()

    def compose(self, inner):
        if type(self) is not GatherMap:
            return None
        f = getattr(inner, "copy_index", None)
        if f is None or len(inner.parent_shapes) != 1 or (type(inner) is ChainMap and not inner.is_copy):
            return None
        b_out, b_in = getattr(self, "bits", None), getattr(inner, "bits", None)
        if b_out is not None and b_in is not None and type(inner) is GatherMap:
            # a mask of a mask: one mask over the inner parent, by boolean passes (no index arrays)
            pshape = inner.parent_shapes[0]
            mid = np.unpackbits(b_out, count=_size(self.parent_shapes[0])).view(bool)
            sel = np.unpackbits(b_in, count=_size(pshape)).view(bool)
            sel[sel] = mid
            if len(pshape) == 1 and tuple(self.out_shape) == tuple(pshape):
                return ElementwiseMap(tuple(pshape), (tuple(pshape),))  # every cell, in order
            return mask_gather(self.out_shape, pshape, sel)
        # one index array for both: idx_inner[idx_self]
        if not self.held_arrays() and not inner.held_arrays():
            return None  # both computed from shapes and arguments: chained, nothing stored
        s1 = np.asarray(self.src())
        s2 = np.ravel(np.asarray(f()))
        if s1.size and int(s1.min()) > 0:  # every output cell is a copy: no constant to carry
            return stored_gather(self.out_shape, inner.parent_shapes[0], s2[s1 - 1])
        s2 = np.concatenate([np.zeros(1, s2.dtype), s2])
        return stored_gather(self.out_shape, inner.parent_shapes[0], s2[s1])


def stored_gather(out_shape, parent_shape, src):
    """A one-parent :class:`GatherMap` holding the 1-based index array ``src`` (int32 where it fits), or an
    identity :class:`ElementwiseMap` when ``src`` copies every cell in place."""
    out_shape, parent_shape = tuple(out_shape), tuple(parent_shape)
    src = np.asarray(src)
    n = _size(out_shape)
    if out_shape == parent_shape and src.shape == out_shape and n:
        flat = np.ravel(src)
        if int(flat[0]) == 1 and int(flat[-1]) == n and _increasing(flat) and int(flat[-1] - flat[0]) == n - 1:
            return ElementwiseMap(out_shape, (parent_shape,))  # increasing from 1 to n: every cell in place
    if src.shape != out_shape:
        src = np.broadcast_to(src, out_shape)
    npar = _size(parent_shape)
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
    n = _size(parent_shape)
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
            n = _size(shape)
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
            m = np.zeros(_size(shape), bool)
            m[i[flat[o]]] = True
            res.append(m.reshape(shape))
        return res

    def forward(self, k, in_mask):
        o, i = self._pairs(k)
        out = np.zeros(_size(self.out_shape), bool)
        out[o[np.ravel(in_mask)[i]]] = True
        return out.reshape(self.out_shape)

    @property
    def nbytes(self):
        return sum(getattr(a, "nbytes", 0) for a in self.stored)

    def held_arrays(self):
        return tuple(a for a in self.stored if getattr(a, "nbytes", 0))


class OpaqueMap(Map):
    """Every output cell derives from every cell of every parent (class D: PARTIAL)."""

    kind = "opaque"

    def __init__(self, out_shape, parent_shapes):
        self.out_shape = tuple(out_shape)
        self.parent_shapes = tuple(tuple(s) for s in parent_shapes)

    def backward(self, out_mask):
        hit = bool(np.any(out_mask))
        return [np.full(s, hit, bool) for s in self.parent_shapes]

    def forward(self, k, in_mask):
        return np.full(self.out_shape, bool(np.any(in_mask)), bool)


class UnionMap(Map):
    """The union of several maps over one output.

    Parameters
    ----------
    out_shape : tuple
    parent_shapes : sequence of tuple
    parts : sequence of (Map, tuple of int)
        Each sub-map with, for each of its parents, the index of that parent in this map.
    """

    kind = "union"

    def __init__(self, out_shape, parent_shapes, parts):
        self.out_shape = tuple(out_shape)
        self.parent_shapes = tuple(tuple(s) for s in parent_shapes)
        self.parts = [(m, tuple(ix)) for m, ix in parts]

    def backward(self, out_mask):
        res = [None] * len(self.parent_shapes)
        for m, ix in self.parts:
            for j, pm in zip(ix, m.backward(out_mask)):
                if pm is None:
                    continue
                res[j] = pm if res[j] is None else (res[j] | pm)
        return res

    def forward(self, k, in_mask):
        out = None
        for m, ix in self.parts:
            for j, kk in enumerate(ix):
                if kk == k:
                    f = m.forward(j, in_mask)
                    out = f if out is None else (out | f)
        if out is None:
            return np.zeros(self.out_shape, bool)
        return out

    @property
    def nbytes(self):
        return sum(m.nbytes for m, _ in self.parts)

    def held_arrays(self):
        return tuple(a for m, _ in self.parts for a in m.held_arrays())

    def channel(self, k):
        return None


class ViewMap(Map):
    """Analytic index maps for the moves numpy implements as views.

    ``kind`` is one of:

    ``"slice"``
        ``out = parent[key]`` for a basic key (ints, slices, None, Ellipsis, already expanded to a tuple);
    ``"transpose"``
        ``out = parent.transpose(perm)``;
    ``"reshape"``
        ``out = parent.reshape(out_shape)`` in C order (flat indices are unchanged).

    Dense masks move with the same numpy operation; sparse cell sets move by index arithmetic.
    """

    kind = "view"
    __slots__ = ("out_shape", "parent_shapes", "how", "arg")

    def __init__(self, out_shape, parent_shape, how, arg=None):
        self.out_shape = out_shape
        self.parent_shapes = (parent_shape,)
        self.how = how
        self.arg = arg

    def backward(self, out_mask):
        pshape = self.parent_shapes[0]
        if self.how == "reshape":
            return [np.reshape(out_mask, pshape)]
        if self.how == "transpose":
            return [np.transpose(out_mask, np.argsort(self.arg))]
        m = np.zeros(pshape, bool)
        m[self.arg] = out_mask
        return [m]

    def forward(self, k, in_mask):
        if self.how == "reshape":
            return np.reshape(in_mask, self.out_shape)
        if self.how == "transpose":
            return np.transpose(in_mask, self.arg)
        return in_mask[self.arg]

    def backward_sparse(self, flat):
        pshape = self.parent_shapes[0]
        if self.how == "reshape":
            return [flat]
        if not flat.size:
            return [flat]
        if flat.size == 1 and pshape and self.how == "slice":
            pc = _slice_parent_coords(self.arg, pshape, unravel1(int(flat[0]), self.out_shape), int)
            return [np.array([ravel1(pc, pshape)], np.int64)]
        coords = np.unravel_index(flat, self.out_shape)
        if self.how == "transpose":
            pc = [None] * len(pshape)
            for j, ax in enumerate(self.arg):
                pc[ax] = coords[j]
            return [np.ravel_multi_index(pc, pshape)]
        pc = _slice_parent_coords(self.arg, pshape, coords, lambda v: np.full(flat.shape, v, np.int64))
        if not pshape:
            return [np.zeros(flat.shape, np.int64)]
        return [np.ravel_multi_index(pc, pshape)]


def _view_copy_index(self):
    pshape = tuple(self.parent_shapes[0])
    idx = np.arange(1, _size(pshape) + 1, dtype=np.int64).reshape(pshape)
    if self.how == "reshape":
        return idx.reshape(self.out_shape)
    if self.how == "transpose":
        return idx.transpose(self.arg)
    return idx[self.arg]


def _view_compose(self, inner):
    if type(inner) is ElementwiseMap and inner.valid is None and self.how == "slice":
        return _slice_of_broadcast(self, inner)
    if type(inner) is not ViewMap:
        return None
    qshape = tuple(inner.parent_shapes[0])
    out = tuple(self.out_shape)
    if self.how == inner.how == "reshape":
        return ViewMap(out, qshape, "reshape")
    if self.how == inner.how == "transpose":
        return ViewMap(out, qshape, "transpose", tuple(inner.arg[a] for a in self.arg))
    if self.how == inner.how == "slice":
        key = compose_keys(inner.arg, self.arg, qshape)
        if key is None or np.broadcast_to(np.zeros((), np.int8), qshape)[key].shape != out:
            return None
        return ViewMap(out, qshape, "slice", key)
    return None


def _slice_of_broadcast(view, bc):
    """A slice of a broadcast that only slices broadcast axes (or indexes the leading ones it adds) is the
    broadcast of the same input to the slice's shape."""
    p = tuple(bc.out_shape)
    q = tuple(bc.parent_shapes[0])
    pad = len(p) - len(q)
    qa = (1,) * pad + q
    for j, k in enumerate(view.arg):
        if k is None:
            return None
        bcast = qa[j] == 1 and p[j] != 1
        if isinstance(k, slice):
            if not bcast and k.indices(p[j]) != (0, p[j], 1):
                return None
        elif j >= pad:
            return None
    out = tuple(view.out_shape)
    if len(out) < len(q):
        return None
    return ElementwiseMap(out, (q,))


ViewMap.copy_index = _view_copy_index
ViewMap.compose = _view_compose


def compose_keys(k1, k2, shape):
    """One basic key ``k`` with ``x[k1][k2] == x[k]`` for ``x`` of ``shape`` (keys as expanded by
    :func:`expand_basic_key`: ints, slices and None), or None when no basic key does that.

    Examples
    --------
    >>> import numpy as np
    >>> from whence.maps import compose_keys
    >>> x = np.arange(60).reshape(3, 4, 5)
    >>> k = compose_keys((1, slice(None, None, -1)), (slice(1, 3), None), x.shape)
    >>> np.array_equal(x[1, ::-1][1:3, None], x[k])
    True
    """
    shape = tuple(shape)
    # the axes k1 makes: ("s", q axis, start, step, length) for a slice, ("n",) for a new axis
    made = []
    lead = []  # for each made axis: the ints of k1 on q axes that come before it
    ints = []
    q = 0
    for e in k1:
        if e is None:
            made.append(("n",))
            lead.append(ints)
            ints = []
        elif isinstance(e, slice):
            start, stop, step = e.indices(shape[q])
            made.append(("s", q, start, step, len(range(start, stop, step))))
            lead.append(ints)
            ints = []
            q += 1
        else:
            ints.append(int(e) % shape[q] if shape[q] else int(e))
            q += 1
    while q < len(shape):
        made.append(("s", q, 0, 1, shape[q]))
        lead.append(ints)
        ints = []
        q += 1
    tail = ints
    k2 = list(k2) + [slice(None)] * (len(made) - sum(1 for e in k2 if e is not None))
    out = []
    j = 0
    for e in k2:
        if e is None:
            out.append(None)
            continue
        if j >= len(made):
            return None
        m = made[j]
        out.extend(lead[j])
        j += 1
        if m[0] == "n":
            if isinstance(e, slice):
                n = len(range(*e.indices(1)))
                if n != 1:
                    return None
                out.append(None)
            continue
        _, qa, start, step, length = m
        if isinstance(e, slice):
            s2, e2, st2 = e.indices(length)
            cnt = len(range(s2, e2, st2))
            st = step * st2
            first = start + step * s2
            if cnt == 0:
                out.append(slice(0, 0, 1))
            else:
                last = first + st * (cnt - 1)
                stop = last + (1 if st > 0 else -1)
                out.append(slice(first, stop if stop >= 0 else None, st))
        else:
            i = int(e) % length if length else int(e)
            out.append(start + step * i)
    out.extend(tail)
    return tuple(out)


def _slice_parent_coords(key, pshape, coords, const):
    """Parent coordinates of output coordinates ``coords`` (ints or arrays) of ``parent[key]``, for a basic
    key expanded by :func:`expand_basic_key`; ``const`` makes a coordinate fixed by an integer index."""
    pc = []
    j = 0
    for k in key:
        if k is None:
            j += 1
        elif isinstance(k, slice):
            start, _, step = k.indices(pshape[len(pc)])
            pc.append(start + step * coords[j])
            j += 1
        else:
            pc.append(const(int(k) % pshape[len(pc)]))
    while len(pc) < len(pshape):
        pc.append(coords[j])
        j += 1
    return pc


class ChainMap(Map):
    """Several one-parent maps applied one after the other, as one map (one hop for the query walk).

    ``maps[0]`` relates the output to an intermediate array, ``maps[1]`` that array to the next, ..., and
    ``maps[-1]`` the last intermediate to the parent.  Cell sets go through each map in turn: exact, since it
    is the same relation as the maps one by one.  :func:`compose_pair` builds chains where no closed form
    composes two maps.

    Parameters
    ----------
    maps : sequence of Map
        One-parent maps; the parent shape of each is the output shape of the next.

    Examples
    --------
    >>> import numpy as np
    >>> from whence.maps import ChainMap, ViewMap, ReduceMap
    >>> m = ChainMap([ReduceMap((3,), (0,), (), [(3,)]), ViewMap((3,), (6,), "slice", (slice(0, 6, 2),))])
    >>> m.backward(np.ones((), bool))[0].tolist()
    [True, False, True, False, True, False]
    """

    kind = "chain"

    def __init__(self, maps):
        flat = []
        for m in maps:
            flat.extend(m.maps if type(m) is ChainMap else [m])
        self.maps = tuple(flat)
        self.out_shape = tuple(flat[0].out_shape)
        self.parent_shapes = (tuple(flat[-1].parent_shapes[0]),)

    def backward(self, out_mask):
        m = out_mask
        for sub in self.maps:
            r = sub.backward(m)[0]
            if r is None:
                return [None]
            m = r
        return [m]

    def forward(self, k, in_mask):
        m = in_mask
        for sub in reversed(self.maps):
            m = sub.forward(0, m)
        return m

    def backward_sparse(self, flat):
        cur = flat
        dense = None
        for sub in self.maps:
            if dense is None:
                f = getattr(sub, "backward_sparse", None) if sub.out_shape else None
                r = f(cur) if f is not None else None
                if r is not None:
                    if r[0] is None:
                        return [None]
                    cur = r[0]
                    continue
                dense = np.zeros(_size(sub.out_shape), bool)
                dense[cur] = True
                dense = dense.reshape(sub.out_shape)
            dense = sub.backward(dense)[0]
            if dense is None:
                return [None]
        return [cur if dense is None else np.flatnonzero(dense)]

    def forward_sparse(self, k, flat):
        cur = flat
        for sub in reversed(self.maps):
            f = getattr(sub, "forward_sparse", None) if sub.out_shape and sub.parent_shapes[0] else None
            r = f(0, cur) if f is not None else None
            if r is None:
                m = np.zeros(_size(sub.parent_shapes[0]), bool)
                m[cur] = True
                r = np.flatnonzero(sub.forward(0, m.reshape(sub.parent_shapes[0])))
            cur = r
        return cur

    def backward_all(self):
        res = True
        for sub in self.maps:
            f = getattr(sub, "backward_all", None)
            r = f() if f is not None else None
            if r is None:
                return None
            if not r[0]:
                return [False]
        return [res]

    def forward_all(self, k):
        for sub in reversed(self.maps):
            f = getattr(sub, "forward_all", None)
            r = f(0) if f is not None else None
            if r is None:
                return None
            if not r:
                return False
        return True

    @property
    def is_copy(self):
        """True when every step copies cells (each output cell from at most one parent cell)."""
        return all(hasattr(m, "copy_index") and (type(m) is not ChainMap or m.is_copy) for m in self.maps)

    def copy_index(self):
        idx = None
        for sub in reversed(self.maps):
            f = getattr(sub, "copy_index", None)
            if f is None:
                raise TypeError("not a copy")
            s = np.asarray(f(), dtype=np.int64)
            if idx is None:
                idx = s
            else:
                idx = np.concatenate([np.zeros(1, np.int64), np.ravel(idx)])[s]
        return idx

    def rectangles(self):
        cached = self.__dict__.get("_rect_rows", False)
        if cached is False:
            cached = self._rectangles()
            if cached is not None or not DEFERRED[0]:
                self.__dict__["_rect_rows"] = cached
        return cached

    def _rectangles(self):
        rows = None
        for sub in reversed(self.maps):
            f = getattr(sub, "rectangles", None)
            r = f() if f is not None else None
            if r is None:
                return None
            rows = r if rows is None else compose_rects(r, rows, sub.parent_shapes[0], sub.out_shape,
                                                        self.parent_shapes[0])
            if rows is None:
                return None
        return rows

    @property
    def nbytes(self):
        return sum(m.nbytes for m in self.maps)

    def held_arrays(self):
        return tuple(a for m in self.maps for a in m.held_arrays())

    def compose(self, inner):
        c = compose_pair(self.maps[-1], inner)
        if c is None or type(c) is ChainMap:
            return None  # compose_pair chains them where that keeps rectangles
        return ChainMap(self.maps[:-1] + (c,))


_CHAINABLE = ("ElementwiseMap", "ViewMap", "ReduceMap", "LaneMap", "BandMap", "EinsumMap", "GatherMap", "ChainMap",
              "PairsMap")


def compose_pair(outer, inner):
    """One map relating ``outer``'s output to ``inner``'s parent (both one-parent maps, ``inner``'s output
    being ``outer``'s parent): a closed form where one applies (see each class's ``compose``), else a
    :class:`ChainMap` of the two where their rectangles compose; None otherwise (the two stay apart).

    Examples
    --------
    >>> from whence.maps import compose_pair, ViewMap
    >>> every_other = ViewMap((2,), (4,), "slice", (slice(0, 4, 2),))
    >>> second_half = ViewMap((4,), (8,), "slice", (slice(4, 8),))
    >>> compose_pair(every_other, second_half).arg
    (slice(4, 7, 2),)
    """
    if type(outer).__name__ not in _CHAINABLE or type(inner).__name__ not in _CHAINABLE:
        return None
    if tuple(outer.parent_shapes[0]) != tuple(inner.out_shape):
        return None
    if 0 in tuple(inner.out_shape):
        # nothing passes through an empty intermediate, while closed forms such as a broadcast's would
        # project the outer rectangles onto the inner parent's cells: the two stay apart
        return None
    if is_identity_map(inner):
        return outer
    c = outer.compose(inner)
    if c is not None:
        return c
    if type(inner) is ChainMap:
        c = compose_pair(outer, inner.maps[0])
        if c is not None and type(c) is not ChainMap:
            return ChainMap((c,) + inner.maps[1:])
        chain = ChainMap((outer,) + inner.maps)
    else:
        chain = ChainMap([outer, inner])
    # a chain is kept only where its rectangles compose (so that the relation written by lineage() and the
    # store stays one rectangle set); other pairs stay separate maps
    return chain if chain.rectangles() is not None else None


def expand_basic_key(key, ndim):
    """A basic index as a tuple without Ellipsis (explicit slices), or None when it is not basic."""
    if not isinstance(key, tuple):
        key = (key,)
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        return None
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    out = []
    for k in key:
        if k is Ellipsis:
            out.extend([slice(None)] * (ndim - consumed))
        elif k is None or isinstance(k, slice):
            out.append(k)
        elif isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
            out.append(int(k))
        else:
            return None
    return tuple(out)


# ------------------------------------------------------------------ sparse (flat index) backward steps

def unravel1(f, shape):
    """Coordinates of one flat index (pure Python: faster than numpy for a single cell)."""
    coords = []
    for d in reversed(shape):
        f, c = divmod(f, d)
        coords.append(c)
    return coords[::-1]


def ravel1(coords, shape):
    f = 0
    for c, d in zip(coords, shape):
        f = f * d + c
    return f


def _clamp_to(flat, out_shape, shape):
    """Flat indices of ``out_shape`` cells -> flat indices of the broadcast cells of ``shape``."""
    if shape == out_shape or tuple(shape) == tuple(out_shape):
        return flat
    if flat.size == 1 and shape:
        c = unravel1(int(flat[0]), out_shape)
        off = len(out_shape) - len(shape)
        return np.array([ravel1([c[off + j] if d != 1 else 0 for j, d in enumerate(shape)], shape)], np.int64)
    if not shape:
        return np.zeros(min(flat.size, 1), np.int64)
    coords = np.unravel_index(flat, out_shape)
    off = len(out_shape) - len(shape)
    pc = [coords[off + j] if d != 1 else np.zeros_like(flat) for j, d in enumerate(shape)]
    return np.ravel_multi_index(pc, shape)


def _elementwise_sparse(self, flat):
    if self.valid is not None:
        vb = np.broadcast_to(self.valid, self.out_shape)
        flat = flat[vb[np.unravel_index(flat, self.out_shape)]] if flat.size else flat
    return [_clamp_to(flat, self.out_shape, s) for s in self.parent_shapes]


ElementwiseMap.backward_sparse = _elementwise_sparse


def _reduce_sparse(self, flat, limit=1 << 22):
    if self.where is not None or any(a is not None for a in self.aligns) or self.lead:
        return None
    in_shape = tuple(self.in_shape)
    if not _size(in_shape):
        return [np.zeros(0, np.int64) for _ in self.parent_shapes]
    lane = 1
    for ax in self.axes:
        lane *= in_shape[ax]
    if flat.size * lane > limit:
        return None
    kept = self.kept
    if tuple(self.out_shape) == kept:
        base = np.unravel_index(flat, kept) if kept else ()
        base = list(base)
    else:
        oc = np.unravel_index(flat, self.out_shape) if self.out_shape else ()
        base, j = [], 0
        for i in range(len(in_shape)):
            if i in self.axes:
                base.append(np.zeros_like(flat))
            else:
                base.append(oc[j])
                j += 1
    if not in_shape:
        return [flat]
    bflat = np.ravel_multi_index(base, in_shape) if base else np.zeros_like(flat)
    strides = np.cumprod((in_shape + (1,))[::-1])[::-1][1:]
    offs = np.zeros(1, np.int64)
    for ax in self.axes:
        offs = (offs[:, None] + np.arange(in_shape[ax], dtype=np.int64)[None, :] * strides[ax]).ravel()
    full = (bflat[:, None] + offs[None, :]).ravel()
    return [_clamp_to(full, in_shape, s) for s in self.parent_shapes]


ReduceMap.backward_sparse = _reduce_sparse


def _band_sparse(self, flat, limit=1 << 22):
    """A few output cells of a one-band window map (cumulative ops, diff, 1-D windows): each takes its window
    along the band axis, other axes one to one.  Windows in the same lane are merged into disjoint intervals
    first (a row of prefix sums needs one interval, not one per cell); None (densify) when the answer would
    be a large part of the parent."""
    bands = self.bands  # O(length of the band axis)
    if len(bands) != 1:
        return None
    if not flat.size:
        return [np.zeros(0, np.int64)]
    axis, lo, hi = bands[0]
    out_shape, pshape = tuple(self.out_shape), tuple(self.parent_shapes[0])
    coords = np.unravel_index(flat, out_shape)
    i = coords[axis]
    ok = hi[i] >= lo[i]
    if not ok.any():
        return [np.zeros(0, np.int64)]
    other = [d for j, d in enumerate(pshape) if j != axis]
    lane = (np.ravel_multi_index([c[ok] for j, c in enumerate(coords) if j != axis], other) if other
            else np.zeros(int(ok.sum()), np.int64))
    stride = pshape[axis] + 1
    L = lane * stride + lo[i[ok]]
    H = lane * stride + hi[i[ok]]
    order = np.argsort(L, kind="stable")
    L, H = L[order], H[order]
    run = np.maximum.accumulate(H)
    new = np.ones(L.size, bool)
    new[1:] = L[1:] > run[:-1] + 1
    starts = np.flatnonzero(new)
    mL = L[starts]
    mH = np.maximum.reduceat(H, starts)
    lens = mH - mL + 1
    total = int(lens.sum())
    if total > min(limit, max(_size(pshape) // 8, 4096)):
        return None  # a bitmap is cheaper
    vals = np.repeat(mL - np.cumsum(lens) + lens, lens) + np.arange(total, dtype=np.int64)
    lane_of, pos = np.divmod(vals, stride)
    pc = list(np.unravel_index(lane_of, other)) if other else []
    pc.insert(axis, pos)
    return [np.ravel_multi_index(pc, pshape)]


BandMap.backward_sparse = _band_sparse


def split_by_parent(m, sel):
    """Source-index values ``sel`` of a gather (1-based over the concatenated parents, 0 for a constant) as
    flat cell positions per parent of ``m``."""
    sel = sel[sel > 0] - 1
    if len(m.parent_shapes) == 1:
        return [sel]
    return [sel[(sel >= m.offsets[k]) & (sel < m.offsets[k + 1])] - m.offsets[k]
            for k in range(len(m.parent_shapes))]


def _gather_sparse(self, flat):
    return split_by_parent(self, np.ravel(self.src())[flat])


GatherMap.backward_sparse = _gather_sparse


def _union_sparse(self, flat):
    res = [None] * len(self.parent_shapes)
    for m, ix in self.parts:
        f = getattr(m, "backward_sparse", None)
        if f is None:
            return None
        pms = f(flat)
        if pms is None:
            return None
        for j, pm in zip(ix, pms):
            res[j] = pm if res[j] is None else np.concatenate([res[j], pm])
    return res


UnionMap.backward_sparse = _union_sparse


# ------------------------------------------------------------------ sparse (flat index) forward steps

def _elementwise_fwd_sparse(self, k, flat):
    if tuple(self.parent_shapes[k]) != tuple(self.out_shape):
        return None
    if self.valid is not None and flat.size:
        vb = np.broadcast_to(self.valid, self.out_shape)
        flat = flat[vb[np.unravel_index(flat, self.out_shape)]]
    return flat


ElementwiseMap.forward_sparse = _elementwise_fwd_sparse


def _view_fwd_sparse(self, k, flat):
    pshape = self.parent_shapes[0]
    if self.how == "reshape" or not flat.size:
        return flat
    pc = np.unravel_index(flat, pshape)
    if self.how == "transpose":
        return np.ravel_multi_index([pc[ax] for ax in self.arg], self.out_shape)
    keep = np.ones(flat.shape, bool)
    oc = []
    ax = 0
    for key in self.arg:
        if key is None:
            oc.append(np.zeros(flat.shape, np.int64))
        elif isinstance(key, slice):
            start, stop, step = key.indices(pshape[ax])
            c = pc[ax] - start
            keep &= (c % step == 0)
            q = c // step
            keep &= (q >= 0) & (q < len(range(start, stop, step)))
            oc.append(q)
            ax += 1
        else:
            keep &= pc[ax] == int(key) % pshape[ax]
            ax += 1
    while ax < len(pshape):
        oc.append(pc[ax])
        ax += 1
    if not self.out_shape:
        return np.zeros(int(keep.any()), np.int64)
    return np.ravel_multi_index([c[keep] for c in oc], self.out_shape)


ViewMap.forward_sparse = _view_fwd_sparse


def _reduce_fwd_sparse(self, k, flat):
    if self.where is not None or any(a is not None for a in self.aligns) or self.lead:
        return None
    if tuple(self.parent_shapes[k]) != tuple(self.in_shape) or not flat.size:
        return None if flat.size else flat
    pc = np.unravel_index(flat, self.in_shape)
    if tuple(self.out_shape) == self.kept:
        oc = [np.zeros_like(c) if i in self.axes else c for i, c in enumerate(pc)]
    else:
        oc = [c for i, c in enumerate(pc) if i not in self.axes]
    if not self.out_shape:
        return np.zeros(1, np.int64)
    return np.ravel_multi_index(oc, self.out_shape)


ReduceMap.forward_sparse = _reduce_fwd_sparse


def _gather_fwd_sparse(self, k, flat):
    src = np.ravel(self.src()).astype(np.int64, copy=False) - 1 - self.offsets[k]
    n = self.offsets[k + 1] - self.offsets[k]
    hit = np.zeros(n, bool)
    hit[flat] = True
    ok = (src >= 0) & (src < n)
    out = np.zeros(src.shape, bool)
    out[ok] = hit[src[ok]]
    return np.flatnonzero(out)


GatherMap.forward_sparse = _gather_fwd_sparse


# ------------------------------------------------------------ the "entire array" short-circuit
# ``backward_all()`` answers, for the set of *every* output cell, per parent: True (every parent cell),
# False (none) or None (not known without computing cells); ``forward_all(k)`` the same for the output
# cells reached from every cell of parent ``k``.  Whole-array queries through class A/B pipelines then cost
# O(1) per operation.

def _all_true(self):
    return [True] * len(self.parent_shapes)


ElementwiseMap.backward_all = lambda self: _all_true(self) if self.valid is None else None
ElementwiseMap.forward_all = lambda self, k: True if self.valid is None else None
ViewMap.backward_all = lambda self: [True] if self.how != "slice" or all(
    k is None or (isinstance(k, slice) and k == slice(None)) for k in self.arg) else None
ViewMap.forward_all = lambda self, k: True
ReduceMap.backward_all = lambda self: _all_true(self) if self.where is None else None
ReduceMap.forward_all = lambda self, k: True if self.where is None else None
LaneMap.backward_all = _all_true
LaneMap.forward_all = lambda self, k: True
OpaqueMap.backward_all = _all_true
OpaqueMap.forward_all = lambda self, k: True


def _band_backward_all(self):
    shape = self.parent_shapes[0]
    for ax, lo, hi in self.bands:
        n = shape[ax]
        diff = np.zeros(n + 1, np.int64)
        ok = hi >= lo
        np.add.at(diff, lo[ok], 1)
        np.subtract.at(diff, hi[ok] + 1, 1)
        if n and not (np.cumsum(diff[:n]) > 0).all():
            return None
    return [True]


BandMap.backward_all = _band_backward_all
BandMap.forward_all = lambda self, k: True if all((hi >= lo).all() for _, lo, hi in self.bands) else None
EinsumMap.backward_all = lambda self: [True if not plan[2] else None for plan in self.plans] \
    if all(not plan[2] for plan in self.plans) else None
EinsumMap.forward_all = lambda self, k: True if not self.plans[k][2] else None


def _union_backward_all(self):
    res = [False] * len(self.parent_shapes)
    for m, ix in self.parts:
        f = getattr(m, "backward_all", None)
        r = f() if f is not None else None
        if r is None:
            return None
        for j, v in zip(ix, r):
            res[j] = res[j] or v
    return res


def _union_forward_all(self, k):
    unknown = False
    for m, ix in self.parts:
        for j, kk in enumerate(ix):
            if kk == k:
                f = getattr(m, "forward_all", None)
                r = f(j) if f is not None else None
                if r:
                    return True
                if r is None:
                    unknown = True
    return None if unknown else False


UnionMap.backward_all = _union_backward_all
UnionMap.forward_all = _union_forward_all


# ------------------------------------------------------------------- rectangles (ProvRC style)
# ``rectangles()`` describes a map's relation without visiting cells, as rows
# ``(parent, out_lo, out_hi, lo_ax, lo_mul, lo_off, hi_ax, hi_mul, hi_off)``: for output cells ``o`` with
# ``out_lo <= o <= out_hi`` (per output axis), the parent cells ``i`` with, on every parent axis ``j``,
# ``lo_off[j] + lo_mul[j] * o[lo_ax[j]] <= i[j] <= hi_off[j] + hi_mul[j] * o[hi_ax[j]]``, where an axis of
# -1 means the bound is absolute (``mul`` 0).  Relative bounds make an identity or a shift over a whole
# array one row (ProvRC); a stride (strided slices) is the multiplier.  A row over flat (C-order) indices is
# marked by ``lo_ax == hi_ax == (-2,)``: the output cells with flat index ``f`` in ``out_lo[0] .. out_hi[0]``
# copy the parent cell with flat index ``lo_off[0] + lo_mul[0] * f`` (a reshape is one such row, with
# multiplier 1 and offset 0).  A gather (a copy of one parent cell per output cell) describes itself by the
# runs of its index array where the source moves by a constant step per output cell, when there are at most
# ``_MAX_ROWS`` of them (a roll, a flip, a delete, a transpose: a few rows); a gather with more (a sort of
# random values, a repeat) returns None: its index array is its compressed form.

def _row(parent, out_shape, lo, hi):
    """``lo``/``hi``: per parent axis (ax, mul, off)."""
    return (parent, tuple(0 for _ in out_shape), tuple(d - 1 for d in out_shape),
            tuple(t[0] for t in lo), tuple(t[1] for t in lo), tuple(t[2] for t in lo),
            tuple(t[0] for t in hi), tuple(t[1] for t in hi), tuple(t[2] for t in hi))


def _same(ax, mul=1, off=0):
    return (ax, mul, off), (ax, mul, off)


def _absolute(lo, hi):
    return (-1, 0, lo), (-1, 0, hi)


def _rows_from_axes(parent, out_shape, axes):
    return _row(parent, out_shape, [a[0] for a in axes], [a[1] for a in axes])


def _elementwise_rects(self):
    if self.valid is not None:
        return None
    rows = []
    out = tuple(self.out_shape)
    for k, s in enumerate(self.parent_shapes):
        off = len(out) - len(s)
        axes = [_absolute(0, 0) if (d == 1 and out[off + j] != 1) else _same(off + j) for j, d in enumerate(s)]
        rows.append(_rows_from_axes(k, out, axes))
    return rows


def _view_rects(self):
    out, ps = tuple(self.out_shape), tuple(self.parent_shapes[0])
    if self.how == "reshape":
        n = _size(out)
        return [(0, (0,), (n - 1,), (-2,), (1,), (0,), (-2,), (1,), (0,))]
    if self.how == "transpose":
        inv = np.argsort(self.arg)
        return [_rows_from_axes(0, out, [_same(int(inv[j])) for j in range(len(ps))])]
    axes = []
    j = 0
    for key in self.arg:
        if key is None:
            j += 1
        elif isinstance(key, slice):
            start, _, step = key.indices(ps[len(axes)])
            axes.append(_same(j, step, start))
            j += 1
        else:
            v = int(key) % ps[len(axes)]
            axes.append(_absolute(v, v))
    while len(axes) < len(ps):
        axes.append(_same(j))
        j += 1
    return [_rows_from_axes(0, out, axes)]


def _reduce_rects(self):
    if self.where is not None or any(a is not None for a in self.aligns):
        return None
    out = tuple(self.out_shape)
    keep = out[self.lead:] == self.kept
    oj, j = {}, self.lead
    for i in range(len(self.in_shape)):
        if i in self.axes:
            j += 1 if keep else 0
        else:
            oj[i] = j
            j += 1
    rows = []
    for k, s in enumerate(self.parent_shapes):
        off = len(self.in_shape) - len(s)
        axes = []
        for jj, d in enumerate(s):
            i = off + jj
            if i in self.axes or (d == 1 and self.in_shape[i] != 1):
                axes.append(_absolute(0, d - 1))
            else:
                axes.append(_same(oj[i]))
        rows.append(_rows_from_axes(k, out, axes))
    return rows


def _band_rects(self):
    """Rows over runs of output indices whose window bounds follow one affine rule (one row for cumsum)."""
    out = tuple(self.out_shape)
    bands = self.bands
    if len(bands) != 1:
        return None
    axis, lo, hi = bands[0]
    m = len(lo)
    if not m:
        return []
    i = np.arange(m)
    ok = hi >= lo
    # bound rules: lower absolute when it stays 0, else relative; upper relative
    lo_key = np.where(lo == 0, -(1 << 40), lo - i)
    key = np.stack([lo_key, hi - i, ok.astype(np.int64)], axis=1)
    starts = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]).any(axis=1)])
    ends = np.r_[starts[1:], m]
    rows = []
    for st, en in zip(starts, ends):
        if not ok[st]:
            continue
        lo_t = [(a, 1, 0) for a in range(len(out))]
        hi_t = [(a, 1, 0) for a in range(len(out))]
        lo_t[axis] = (-1, 0, 0) if lo[st] == 0 else (axis, 1, int(lo[st] - st))
        hi_t[axis] = (axis, 1, int(hi[st] - st))
        o_lo = [0] * len(out)
        o_hi = [d - 1 for d in out]
        o_lo[axis], o_hi[axis] = int(st), int(en - 1)
        rows.append((0, tuple(o_lo), tuple(o_hi), *(tuple(t[c] for t in lo_t) for c in range(3)),
                     *(tuple(t[c] for t in hi_t) for c in range(3))))
    return rows


def _einsum_rects(self):
    out = tuple(self.out_shape)
    rows = []
    for k, (s, (labels, first, diag, shared)) in enumerate(zip(self.parent_shapes, self.plans)):
        if diag:
            return None
        axes = [_same(self.out_labels.index(lab)) if lab in shared else _absolute(0, s[j] - 1)
                for j, lab in enumerate(labels)]
        rows.append(_rows_from_axes(k, out, axes))
    return rows


def _opaque_rects(self):
    out = tuple(self.out_shape)
    return [_rows_from_axes(k, out, [_absolute(0, d - 1) for d in s]) for k, s in enumerate(self.parent_shapes)]


def _lane_rects(self):
    out = tuple(self.out_shape)
    if tuple(self.parent_shapes[0]) != out:
        return None
    return [_rows_from_axes(0, out, [_absolute(0, d - 1) if j in self.axes else _same(j)
                                     for j, d in enumerate(out)])]


def _union_rects(self):
    rows = []
    for m, ix in self.parts:
        f = getattr(m, "rectangles", None)
        r = f() if f is not None else None
        if r is None:
            return None
        rows.extend((ix[row[0]],) + tuple(row[1:]) for row in r)
    return rows


ElementwiseMap.rectangles = _elementwise_rects
ViewMap.rectangles = _view_rects
ReduceMap.rectangles = _reduce_rects
LaneMap.rectangles = _lane_rects
BandMap.rectangles = _band_rects
EinsumMap.rectangles = _einsum_rects
OpaqueMap.rectangles = _opaque_rects
UnionMap.rectangles = _union_rects
PairsMap.rectangles = lambda self: None


def rectangles_to_pairs(rows, out_shape, parent_shapes):
    """Expand rectangle rows into explicit (out flat, parent flat) pairs per parent (for tests and size
    comparisons; this is the per-cell pass that the rectangles avoid)."""
    res = {k: [] for k in range(len(parent_shapes))}
    for parent, olo, ohi, lax, lmul, loff, hax, hmul, hoff in rows:
        pshape = parent_shapes[parent]
        if lax == (-2,):
            f = np.arange(olo[0], ohi[0] + 1)
            res[parent].append(np.stack([f, loff[0] + lmul[0] * f], axis=1))
            continue
        for o in np.ndindex(*[h - l + 1 for l, h in zip(olo, ohi)]):
            o = tuple(a + l for a, l in zip(o, olo))
            ranges = []
            for j in range(len(pshape)):
                lo = loff[j] + (lmul[j] * o[lax[j]] if lax[j] >= 0 else 0)
                hi = hoff[j] + (hmul[j] * o[hax[j]] if hax[j] >= 0 else 0)
                ranges.append(range(max(lo, 0), min(hi, pshape[j] - 1) + 1))
            of = np.ravel_multi_index(o, out_shape) if out_shape else 0
            for i in np.ndindex(*[len(r) for r in ranges]):
                cell = tuple(r[x] for r, x in zip(ranges, i))
                res[parent].append(np.array([[of, np.ravel_multi_index(cell, pshape) if pshape else 0]]))
    return {k: (np.unique(np.vstack(v), axis=0) if v else np.zeros((0, 2), np.int64)) for k, v in res.items()}


_MAX_ROWS = 64  # rows of one relation at most: a map with more keeps its own form (an index array, a chain)
#: ``[True]`` while maps are folded as arrays die (see :mod:`whence.compose`): a gather whose rows are not
#: known yet answers None instead of reading its index array (that pass belongs to a query, not to capture)
DEFERRED = [False]


def _affine_runs(fs, valid, cap=_MAX_ROWS):
    """Split ``0 .. L-1`` into maximal runs where ``valid`` holds and every integer function in ``fs`` (1-D
    arrays of length ``L``) is affine: a list of ``(start, end, [(mul, off), ...])`` with
    ``f[i] == mul * i + off`` on ``start .. end``; None when there are more than ``cap`` runs."""
    L = len(valid)
    if not L:
        return []
    cuts = [np.flatnonzero(valid[1:] != valid[:-1]) + 1] if L > 1 else []
    segs_lo = np.concatenate([[0]] + cuts) if cuts else np.array([0])
    segs_hi = np.concatenate([segs_lo[1:] - 1, [L - 1]])
    if len(segs_lo) > 2 * cap + 1:
        return None
    ds = [np.diff(f) for f in fs]
    if ds:
        # d-index k (between cells k and k+1) starts a new step where some step changes
        change = np.zeros(max(L - 2, 0), bool)
        for d in ds:
            change |= d[1:] != d[:-1]
        starts = np.concatenate([[0], np.flatnonzero(change) + 1])
        if len(starts) > 2 * cap + 2:
            return None
        ends = np.concatenate([starts[1:] - 1, [max(L - 2, 0)]])
    runs = []
    for a, b in zip(segs_lo.tolist(), segs_hi.tolist()):
        if not valid[a]:
            continue
        i = a
        while i <= b:
            if i == b or not ds:
                e = b if not ds else i
                if not ds:
                    runs.append((i, e, []))
                    break
                runs.append((i, i, [(0, int(f[i])) for f in fs]))
                i += 1
            else:
                k = int(np.searchsorted(starts, i, side="right")) - 1  # the step run holding d-index i
                e = min(int(ends[k]) + 1, b)
                runs.append((i, e, [(int(d[i]), int(f[i]) - int(d[i]) * i) for f, d in zip(fs, ds)]))
                i = e + 1
            if len(runs) > cap:
                return None
    return runs


def _gather_flat_rows(k, local, valid, cap):
    runs = _affine_runs([local], valid, cap)
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
    strides = [_size(pshape[j + 1:]) for j in range(len(pshape))]
    dep = {}  # parent axis -> (output axis, line along it) or None for a constant
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
        runs = _affine_runs([dep[j][1] for j in js], va[a], cap)
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


def _gather_rects(self):
    """Rows of a gather from the runs of its index array (see the section above), or None."""
    cached = self.__dict__.get("_rect_rows", False)
    if cached is not False:
        return cached
    if DEFERRED[0]:
        return None
    rows = None
    out = tuple(self.out_shape)
    if type(self) is GatherMap and _size(out) and all(_size(p) for p in self.parent_shapes) and \
            not getattr(self, "lazy", False):  # (a lazy index array is written chunk by chunk, not read here)
        try:
            rows = _gather_rows(self, out)
        except MemoryError:  # pragma: no cover - the index array is the compressed form then
            rows = None
    self.__dict__["_rect_rows"] = rows
    return rows


def _gather_rows(self, out):
    src = np.ravel(np.asarray(self.src(), dtype=np.int64))
    rows = []
    for k, pshape in enumerate(self.parent_shapes):
        lo, hi = self.offsets[k], self.offsets[k + 1]
        local = src - 1 - lo
        valid = (local >= 0) & (local < hi - lo)
        if not valid.any():
            continue
        cap = _MAX_ROWS - len(rows)
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
        if len(rows) > _MAX_ROWS:
            return None
    return rows


GatherMap.rectangles = _gather_rects


def _to_flat(row, out_shape, in_shape):
    """``row`` as a row over flat indices (None where it is not one)."""
    if row[3] == (-2,):
        return row
    p, olo, ohi, lax, lmul, loff, hax, hmul, hoff = row
    if (lax, lmul, loff) != (hax, hmul, hoff):
        return None
    if out_shape == in_shape and olo == tuple(0 for _ in out_shape) and ohi == tuple(d - 1 for d in out_shape) \
            and lax == tuple(range(len(out_shape))) and set(lmul) <= {1} and set(loff) <= {0}:
        return (p, (0,), (_size(out_shape) - 1,), (-2,), (1,), (0,), (-2,), (1,), (0,))  # an identity
    if len(out_shape) != 1 or len(in_shape) != 1:
        return None
    m = lmul[0] if lax[0] >= 0 else 0
    return (p, olo, ohi, (-2,), (m,), (loff[0],), (-2,), (m,), (loff[0],))


def _to_axes(row, out_shape, in_shape):
    """``row`` as a row over axes (None where a row over flat indices is not one)."""
    if row[3] != (-2,):
        return row
    if len(out_shape) != 1 or len(in_shape) != 1:
        return None
    p, olo, ohi, _, lmul, loff, _, _, _ = row
    ax = (0,) if lmul[0] else (-1,)
    return (p, olo, ohi, ax, lmul, loff, ax, lmul, loff)


def _cdiv(a, b):
    return -((-a) // b)


def _affine_range(mul, off, lo, hi, o_lo, o_hi):
    """The output coordinates ``o`` in ``o_lo .. o_hi`` with ``lo <= mul * o + off <= hi``, as (lo, hi)
    (empty when lo > hi)."""
    if mul == 0:
        return (o_lo, o_hi) if lo <= off <= hi else (1, 0)
    if mul > 0:
        a, b = _cdiv(lo - off, mul), (hi - off) // mul
    else:
        a, b = _cdiv(hi - off, mul), (lo - off) // mul
    return max(a, o_lo), min(b, o_hi)


def _compose_flat(outer_rows, inner_rows):
    out = []
    for orow in outer_rows:
        s, e, a1, c1 = orow[1][0], orow[2][0], orow[4][0], orow[5][0]
        for irow in inner_rows:
            s2, e2, a2, c2 = irow[1][0], irow[2][0], irow[4][0], irow[5][0]
            lo, hi = _affine_range(a1, c1, s2, e2, s, e)
            if lo > hi:
                continue
            m, o = a2 * a1, a2 * c1 + c2
            out.append((0, (lo,), (hi,), (-2,), (m,), (o,), (-2,), (m,), (o,)))
    return out


def _compose_axes(outer_rows, inner_rows, mid_shape):
    out = []
    for orow in outer_rows:
        _, olo, ohi, lax, lmul, loff, hax, hmul, hoff = orow
        for irow in inner_rows:
            _, ilo, ihi, ilax, ilmul, iloff, ihax, ihmul, ihoff = irow
            box_lo, box_hi = list(olo), list(ohi)
            L, H = [], []  # per mid axis: the bounds (ax, mul, off) of the mid cells reached, in this row
            empty = False
            for t, dt in enumerate(mid_shape):
                lt, ht = (lax[t], lmul[t], loff[t]), (hax[t], hmul[t], hoff[t])
                if ilo[t] == 0 and ihi[t] == dt - 1:
                    L.append(lt)
                    H.append(ht)
                elif lt[0] < 0 and ht[0] < 0:
                    a, b = max(lt[2], ilo[t]), min(ht[2], ihi[t])
                    if a > b:
                        empty = True
                        break
                    L.append((-1, 0, a))
                    H.append((-1, 0, b))
                elif lt == ht:
                    a, b = _affine_range(lt[1], lt[2], ilo[t], ihi[t], box_lo[lt[0]], box_hi[lt[0]])
                    if a > b:
                        empty = True
                        break
                    box_lo[lt[0]], box_hi[lt[0]] = a, b
                    L.append(lt)
                    H.append(lt)
                else:
                    return None  # a range of mid cells across a piece of the inner relation
            if empty:
                continue
            used = {}
            nl, nh = [], []
            for j in range(len(ilax)):
                for side, (ax, mul, off), dst in ((0, (ilax[j], ilmul[j], iloff[j]), nl),
                                                  (1, (ihax[j], ihmul[j], ihoff[j]), nh)):
                    if ax < 0 or mul == 0:
                        dst.append((-1, 0, off))
                        continue
                    point = L[ax] == H[ax]
                    if not point:
                        if abs(mul) > 1:
                            return None  # a stride over a range of mid cells is not a range of parent cells
                        if used.setdefault(ax, j) != j:
                            return None  # two parent axes over one range of mid cells: not a box
                    # the lower parent bound comes from the lower mid bound when the map increases
                    a, m, o = (L[ax] if (mul >= 0) == (side == 0) else H[ax])
                    if a < 0:
                        dst.append((-1, 0, off + mul * o))
                    else:
                        dst.append((a, mul * m, off + mul * o))
            out.append((0, tuple(box_lo), tuple(box_hi), *(tuple(t[c] for t in nl) for c in range(3)),
                        *(tuple(t[c] for t in nh) for c in range(3))))
    return out


def _merge_rows(rows):
    """Adjacent rows with the same bounds merged into one (the pieces of a roll of a roll, say)."""
    rows = sorted(set(rows), key=lambda r: (r[3:], r[1]))
    changed = True
    while changed and len(rows) > 1:
        changed = False
        for i in range(len(rows) - 1):
            a, b = rows[i], rows[i + 1]
            if a[0] != b[0] or a[3:] != b[3:]:
                continue
            diff = [x for x in range(len(a[1])) if (a[1][x], a[2][x]) != (b[1][x], b[2][x])]
            if len(diff) == 1 and a[2][diff[0]] + 1 == b[1][diff[0]]:
                x = diff[0]
                hi = tuple(b[2][y] if y == x else a[2][y] for y in range(len(a[2])))
                rows[i:i + 2] = [(a[0], a[1], hi) + tuple(a[3:])]
                changed = True
                break
    return rows


def compose_rects(outer_rows, inner_rows, mid_shape, out_shape=None, parent_shape=None):
    """Rectangle rows of the composition (output -> mid -> parent) of two one-parent relations given as
    rows (see the section above), or None when it is not one set of at most ``_MAX_ROWS`` rows of the same
    form.

    A row of ``outer`` bounds each mid axis by an affine function of one output axis; a row of ``inner``
    bounds each parent axis by an affine function of one mid axis over a box of mid cells.  The output cells
    whose mid cells fall in that box form a box again (a point bound restricts its output axis, an absolute
    range is intersected), and the image of a range of mid cells under a step of -1, 0 or 1 is the range
    between the images of its ends, which is again affine in the output coordinates (ProvRC's chain
    composition).  Rows over flat indices compose with rows over flat indices (and with rows between 1-D
    arrays, which are the same thing), when ``out_shape`` and ``parent_shape`` are given.

    Examples
    --------
    >>> from whence.maps import compose_rects, ViewMap
    >>> flip = ViewMap((4,), (4,), "slice", (slice(None, None, -1),)).rectangles()
    >>> tail = ViewMap((4,), (5,), "slice", (slice(1, 5, 1),)).rectangles()
    >>> [(r[1], r[2], r[4], r[5]) for r in compose_rects(flip, tail, (4,))]  # output o copies cell 4 - o
    [((0,), (3,), (-1,), (4,))]
    """
    mid_shape = tuple(mid_shape)
    flat = any(r[3] == (-2,) for r in outer_rows) or any(r[3] == (-2,) for r in inner_rows)
    if flat:
        if out_shape is None or parent_shape is None:
            return None
        out_shape, parent_shape = tuple(out_shape), tuple(parent_shape)
        fo = [_to_flat(r, out_shape, mid_shape) for r in outer_rows]
        fi = [_to_flat(r, mid_shape, parent_shape) for r in inner_rows]
        if all(r is not None for r in fo) and all(r is not None for r in fi):
            rows = _compose_flat(fo, fi)
        else:
            ao = [_to_axes(r, out_shape, mid_shape) for r in outer_rows]
            ai = [_to_axes(r, mid_shape, parent_shape) for r in inner_rows]
            if any(r is None for r in ao) or any(r is None for r in ai):
                return None
            rows = _compose_axes(ao, ai, mid_shape)
    else:
        rows = _compose_axes(outer_rows, inner_rows, mid_shape)
    if rows is None:
        return None
    rows = _merge_rows(rows)
    return rows if len(rows) <= _MAX_ROWS else None
