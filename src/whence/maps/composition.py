"""Composition maps: the union of several maps over one output, a chain of one-parent maps applied in turn,
and :func:`compose_pair`, which folds two one-parent maps into one (see :mod:`whence.compose`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Map, shape_size
from .index import is_identity_map
from .rectangles import DEFERRED, compose_rects

__all__ = ["UnionMap", "ChainMap", "compose_pair"]


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


    def backward_sparse(self, flat):
        res = [None] * len(self.parent_shapes)
        for m, ix in self.parts:
            pms = m.backward_sparse(flat)
            if pms is None:
                return None
            for j, pm in zip(ix, pms):
                res[j] = pm if res[j] is None else np.concatenate([res[j], pm])
        return res

    def backward_all(self):
        res = [False] * len(self.parent_shapes)
        for m, ix in self.parts:
            r = m.backward_all()
            if r is None:
                return None
            for j, v in zip(ix, r):
                res[j] = res[j] or v
        return res

    def forward_all(self, k):
        unknown = False
        for m, ix in self.parts:
            for j, kk in enumerate(ix):
                if kk == k:
                    r = m.forward_all(j)
                    if r:
                        return True
                    if r is None:
                        unknown = True
        return None if unknown else False

    def rectangles(self):
        rows: list[Any] = []
        for m, ix in self.parts:
            r = m.rectangles()
            if r is None:
                return None
            rows.extend((ix[row[0]],) + tuple(row[1:]) for row in r)
        return rows


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
    composable = True

    def __init__(self, maps):
        flat: list[Map] = []
        for m in maps:
            flat.extend(m.maps if type(m) is ChainMap else [m])
        self.maps: tuple[Map, ...] = tuple(flat)
        self.out_shape = tuple(flat[0].out_shape)
        self.parent_shapes = (tuple(flat[-1].parent_shapes[0]),)
        #: every step copies cells (each output cell from at most one parent cell): see Map.copies
        self.copies = all(m.copies for m in flat)

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
                r = sub.backward_sparse(cur) if sub.out_shape else None
                if r is not None:
                    if r[0] is None:
                        return [None]
                    cur = r[0]
                    continue
                dense = np.zeros(shape_size(sub.out_shape), bool)
                dense[cur] = True
                dense = dense.reshape(sub.out_shape)
            dense = sub.backward(dense)[0]
            if dense is None:
                return [None]
        return [cur if dense is None else np.flatnonzero(dense)]

    def forward_sparse(self, k, flat):
        cur = flat
        for sub in reversed(self.maps):
            r = sub.forward_sparse(0, cur) if sub.out_shape and sub.parent_shapes[0] else None
            if r is None:
                m = np.zeros(shape_size(sub.parent_shapes[0]), bool)
                m[cur] = True
                r = np.flatnonzero(sub.forward(0, m.reshape(sub.parent_shapes[0])))
            cur = r
        return cur

    def backward_all(self):
        res = True
        for sub in self.maps:
            r = sub.backward_all()
            if r is None:
                return None
            if not r[0]:
                return [False]
        return [res]

    def forward_all(self, k):
        for sub in reversed(self.maps):
            r = sub.forward_all(0)
            if r is None:
                return None
            if not r:
                return False
        return True

    @property
    def is_copy(self):
        """True when every step copies cells (the former spelling of :attr:`copies`)."""
        return self.copies

    def copy_index(self):
        idx = None
        for sub in reversed(self.maps):
            s = np.asarray(sub.copy_index(), dtype=np.int64)  # (TypeError where a step does not copy)
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
            r = sub.rectangles()
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
    if not (outer.composable and inner.composable):  # (declared by each class for itself: see Map)
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
