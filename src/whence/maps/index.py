"""Index maps: broadcasting elementwise relations and the moves numpy implements as views (slices,
transposes, reshapes), answered by index arithmetic (class A of the design)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Map, shape_size, ravel1, unbroadcast_any, unravel1
from .rectangles import absolute_bound, rows_from_axes, relative_bound

__all__ = ["ElementwiseMap", "ViewMap", "is_identity_map", "compose_keys", "expand_basic_key"]


def clamp_to_parent(flat, out_shape, shape):
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
    copies = True  # (for one parent: output cell i copies the broadcast cell of i)
    composable = True

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

    def backward_sparse(self, flat):
        if self.valid is not None:
            vb = np.broadcast_to(self.valid, self.out_shape)
            flat = flat[vb[np.unravel_index(flat, self.out_shape)]] if flat.size else flat
        return [clamp_to_parent(flat, self.out_shape, s) for s in self.parent_shapes]

    def forward_sparse(self, k, flat):
        if tuple(self.parent_shapes[k]) != tuple(self.out_shape):
            return None
        if self.valid is not None and flat.size:
            vb = np.broadcast_to(self.valid, self.out_shape)
            flat = flat[vb[np.unravel_index(flat, self.out_shape)]]
        return flat

    def backward_all(self):
        return [True] * len(self.parent_shapes) if self.valid is None else None

    def forward_all(self, k):
        return True if self.valid is None else None

    def rectangles(self):
        if self.valid is not None:
            return None
        rows = []
        out = tuple(self.out_shape)
        for k, s in enumerate(self.parent_shapes):
            off = len(out) - len(s)
            axes = [absolute_bound(0, 0) if (d == 1 and out[off + j] != 1) else relative_bound(off + j) for j, d in enumerate(s)]
            rows.append(rows_from_axes(k, out, axes))
        return rows

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
        if len(inner.parent_shapes) == 1:
            return inner.broadcast(tuple(self.out_shape), self.valid)  # a gather's, say (GatherMap.broadcast)
        return None

    def copy_index(self):
        """1-based source index of every output cell (0: none), as :meth:`GatherMap.src` gives it."""
        pshape = tuple(self.parent_shapes[0])
        s = np.broadcast_to(np.arange(1, shape_size(pshape) + 1, dtype=np.int64).reshape(pshape), self.out_shape)
        if self.valid is not None:
            s = np.where(np.broadcast_to(self.valid, self.out_shape), s, 0)
        return s


def is_identity_map(m):
    """True for a one-parent elementwise map with the parent's shape and no ``where`` mask: output cell i is
    input cell i."""
    return (type(m) is ElementwiseMap and m.valid is None and len(m.parent_shapes) == 1
            and tuple(m.parent_shapes[0]) == tuple(m.out_shape))


class ViewMap(Map):
    """Analytic index maps for the moves numpy implements as views.

    ``how`` is one of:

    ``"slice"``
        ``out = parent[key]`` for a basic key (ints, slices, None, Ellipsis, already expanded to a tuple);
    ``"transpose"``
        ``out = parent.transpose(perm)``;
    ``"reshape"``
        ``out = parent.reshape(out_shape)`` in C order (flat indices are unchanged).

    Dense masks move with the same numpy operation; sparse cell sets move by index arithmetic.
    """

    kind = "view"
    copies = True
    composable = True
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

    def forward_sparse(self, k, flat):
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

    def backward_all(self):
        if self.how != "slice" or all(k is None or (isinstance(k, slice) and k == slice(None)) for k in self.arg):
            return [True]
        return None

    def forward_all(self, k):
        return True

    def rectangles(self):
        out, ps = tuple(self.out_shape), tuple(self.parent_shapes[0])
        if self.how == "reshape":
            n = shape_size(out)
            return [(0, (0,), (n - 1,), (-2,), (1,), (0,), (-2,), (1,), (0,))]
        if self.how == "transpose":
            inv = np.argsort(self.arg)
            return [rows_from_axes(0, out, [relative_bound(int(inv[j])) for j in range(len(ps))])]
        axes: list[Any] = []
        j = 0
        for key in self.arg:
            if key is None:
                j += 1
            elif isinstance(key, slice):
                start, _, step = key.indices(ps[len(axes)])
                axes.append(relative_bound(j, step, start))
                j += 1
            else:
                v = int(key) % ps[len(axes)]
                axes.append(absolute_bound(v, v))
        while len(axes) < len(ps):
            axes.append(relative_bound(j))
            j += 1
        return [rows_from_axes(0, out, axes)]

    def copy_index(self):
        pshape = tuple(self.parent_shapes[0])
        idx = np.arange(1, shape_size(pshape) + 1, dtype=np.int64).reshape(pshape)
        if self.how == "reshape":
            return idx.reshape(self.out_shape)
        if self.how == "transpose":
            return idx.transpose(self.arg)
        return idx[self.arg]

    def compose(self, inner):
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
    made: list[tuple[Any, ...]] = []
    lead: list[list[int]] = []  # for each made axis: the ints of k1 on q axes that come before it
    ints: list[int] = []
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
    out: list[Any] = []
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
    pc: list[Any] = []
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


def expand_basic_key(key, ndim):
    """A basic index as a tuple without Ellipsis (explicit slices), or None when it is not basic."""
    if not isinstance(key, tuple):
        key = (key,)
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        return None
    consumed = sum(1 for k in key if k is not None and k is not Ellipsis)
    out: list[Any] = []
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
