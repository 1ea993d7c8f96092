"""Region maps: an output cell derives from a region of each parent -- reductions, lanes, windows (bands),
contractions -- and the all-to-all relation of opaque operations (classes B and D of the design)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Map, shape_size, unbroadcast_any
from .index import ElementwiseMap, clamp_to_parent
from .rectangles import absolute_bound, rows_from_axes, relative_bound

__all__ = ["ReduceMap", "LaneMap", "BandMap", "EinsumMap", "OpaqueMap"]


def _all_true(self):
    return [True] * len(self.parent_shapes)


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
    composable = True

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

    def backward_sparse(self, flat, limit=1 << 22):
        if self.where is not None or any(a is not None for a in self.aligns) or self.lead:
            return None
        in_shape = tuple(self.in_shape)
        if not shape_size(in_shape):
            return [np.zeros(0, np.int64) for _ in self.parent_shapes]
        lane = 1
        for ax in self.axes:
            lane *= in_shape[ax]
        if flat.size * lane > limit:
            return None
        kept = self.kept
        if tuple(self.out_shape) == kept:
            base: list[Any] = list(np.unravel_index(flat, kept)) if kept else []
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
        strides: Any = np.cumprod((in_shape + (1,))[::-1])[::-1][1:]
        offs = np.zeros(1, np.int64)
        for ax in self.axes:
            offs = (offs[:, None] + np.arange(in_shape[ax], dtype=np.int64)[None, :] * strides[ax]).ravel()
        full = (bflat[:, None] + offs[None, :]).ravel()
        return [clamp_to_parent(full, in_shape, s) for s in self.parent_shapes]

    def forward_sparse(self, k, flat):
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

    def backward_all(self):
        return _all_true(self) if self.where is None else None

    def forward_all(self, k):
        return True if self.where is None else None

    def rectangles(self):
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
                    axes.append(absolute_bound(0, d - 1))
                else:
                    axes.append(relative_bound(oj[i]))
            rows.append(rows_from_axes(k, out, axes))
        return rows


class LaneMap(Map):
    """Each output cell derives from its whole lane along ``axes`` of the (same-shaped) input."""

    kind = "lane"
    composable = True

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

    def backward_all(self):
        return _all_true(self)

    def forward_all(self, k):
        return True

    def rectangles(self):
        out = tuple(self.out_shape)
        if tuple(self.parent_shapes[0]) != out:
            return None
        return [rows_from_axes(0, out, [absolute_bound(0, d - 1) if j in self.axes else relative_bound(j)
                                         for j, d in enumerate(out)])]


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
    composable = True

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

    def backward_sparse(self, flat, limit=1 << 22):
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
        if total > min(limit, max(shape_size(pshape) // 8, 4096)):
            return None  # a bitmap is cheaper
        vals = np.repeat(mL - np.cumsum(lens) + lens, lens) + np.arange(total, dtype=np.int64)
        lane_of, pos = np.divmod(vals, stride)
        pc = list(np.unravel_index(lane_of, other)) if other else []
        pc.insert(axis, pos)
        return [np.ravel_multi_index(pc, pshape)]

    def backward_all(self):
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

    def forward_all(self, k):
        return True if all((hi >= lo).all() for _, lo, hi in self.bands) else None

    def rectangles(self):
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
    composable = True

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
            first: dict[Any, int] = {}
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

    def backward_all(self):
        if all(not plan[2] for plan in self.plans):
            return [True] * len(self.plans)
        return None

    def forward_all(self, k):
        return True if not self.plans[k][2] else None

    def rectangles(self):
        out = tuple(self.out_shape)
        rows = []
        for k, (s, (labels, first, diag, shared)) in enumerate(zip(self.parent_shapes, self.plans)):
            if diag:
                return None
            axes = [relative_bound(self.out_labels.index(lab)) if lab in shared else absolute_bound(0, s[j] - 1)
                    for j, lab in enumerate(labels)]
            rows.append(rows_from_axes(k, out, axes))
        return rows


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

    def backward_all(self):
        return _all_true(self)

    def forward_all(self, k):
        return True

    def rectangles(self):
        out = tuple(self.out_shape)
        return [rows_from_axes(k, out, [absolute_bound(0, d - 1) for d in s]) for k, s in enumerate(self.parent_shapes)]
