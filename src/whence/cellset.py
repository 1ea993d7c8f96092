"""Cell sets: the sets of cells of one array that a lineage query pushes through the maps.

A query walks the graph with one :class:`CellSet` per node reached.  It takes one of three forms, chosen for
its size:

``sparse``
    flat (C-order) indices, in any order and possibly repeated, for point and small-region queries
    (answered by index arithmetic, at a cost proportional to the answer);
``dense``
    a boolean mask of the array's shape, once a set is a large part of the array;
``everything``
    every cell of the array, with no array at all: whole-array queries through shape-determined maps cost
    O(1) per operation (see :meth:`whence.maps.Map.backward_all`).

Examples
--------
>>> import numpy as np
>>> from whence.cellset import CellSet
>>> a = CellSet.sparse(np.array([5, 1, 5]), (2, 3))
>>> b = CellSet.dense(np.eye(2, 3, dtype=bool))
>>> u = a.union(b)
>>> u.size, u.to_flat().tolist(), u.coordinates().tolist()
(4, [0, 1, 4, 5], [[0, 0], [0, 1], [1, 1], [1, 2]])
>>> CellSet.everything((2, 3)).union(a).is_everything, CellSet.sparse(np.zeros(0, np.int64), (4,)).is_empty()
(True, True)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CellSet"]

_EMPTY = np.zeros(0, np.int64)


class CellSet:
    """A set of cells of an array of ``shape``: sparse flat indices, a dense mask, or every cell.

    Build one with :meth:`sparse`, :meth:`dense` or :meth:`everything`; the walk reads ``kind`` (``"sparse"``,
    ``"dense"`` or ``"everything"``) and ``value`` (the flat indices, the mask, or an empty array for
    everything).  Values are never
    modified in place: a set may share its array with a map's answer.
    """

    __slots__ = ("kind", "value", "shape")

    SPARSE = "sparse"
    DENSE = "dense"
    EVERYTHING = "everything"

    kind: str
    value: np.ndarray
    shape: tuple[int, ...]

    def __init__(self, kind: str, value: np.ndarray, shape: tuple[int, ...]) -> None:
        self.kind = kind
        self.value = value
        self.shape = shape

    @classmethod
    def sparse(cls, flat: np.ndarray, shape: tuple[int, ...]) -> CellSet:
        """The cells with flat indices ``flat`` (int64, any order, repeats allowed) of an array of ``shape``."""
        return cls("sparse", flat, shape)

    @classmethod
    def dense(cls, mask: np.ndarray, shape: tuple[int, ...] | None = None) -> CellSet:
        """The cells where ``mask`` (boolean, of the array's shape) is True; ``shape`` is the array's (default:
        the mask's)."""
        return cls("dense", mask, mask.shape if shape is None else shape)

    @classmethod
    def everything(cls, shape: tuple[int, ...]) -> CellSet:
        """Every cell of an array of ``shape``."""
        return cls("everything", _EMPTY, shape)

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> CellSet:
        """No cell."""
        return cls("sparse", _EMPTY, shape)

    @property
    def is_sparse(self) -> bool:
        return self.kind == "sparse"

    @property
    def is_dense(self) -> bool:
        return self.kind == "dense"

    @property
    def is_everything(self) -> bool:
        return self.kind == "everything"

    def is_empty(self) -> bool:
        """True when the set holds no cell."""
        kind = self.kind
        if kind == "sparse":
            return not self.value.size
        if kind == "dense":
            return not bool(self.value.any())
        return not math.prod(self.shape)

    def union(self, other: CellSet) -> CellSet:
        """The cells of either set (of the same array): everything if either is, sparse if both are (the
        indices concatenated, repeats kept), else a mask."""
        if self.kind == "everything" or other.kind == "everything":
            return CellSet("everything", _EMPTY, self.shape)
        if self.kind == "sparse" and other.kind == "sparse":
            return CellSet("sparse", np.concatenate([self.value, other.value]), self.shape)
        return CellSet("dense", self.to_mask() | other.to_mask(), self.shape)

    def unique(self) -> CellSet:
        """The same set with repeated sparse indices removed (sorted); other forms are returned as they are."""
        if self.kind == "sparse":
            return CellSet("sparse", np.unique(self.value), self.shape)
        return self

    def to_mask(self) -> np.ndarray:
        """The set as a boolean mask of the array's shape (read-only where it is the set's own mask)."""
        kind = self.kind
        if kind == "dense":
            return self.value
        if kind == "everything":
            return np.ones(self.shape, bool)
        m = np.zeros(math.prod(self.shape), bool)
        m[self.value] = True
        return m.reshape(self.shape)

    def to_flat(self) -> np.ndarray:
        """The flat indices of the cells, sorted and unique (int64)."""
        kind = self.kind
        if kind == "sparse":
            return np.unique(self.value)
        if kind == "dense":
            return np.flatnonzero(self.value).astype(np.int64, copy=False)
        return np.arange(math.prod(self.shape), dtype=np.int64)

    @property
    def size(self) -> int:
        """The number of cells in the set."""
        kind = self.kind
        if kind == "sparse":
            return int(np.unique(self.value).size)
        if kind == "dense":
            return int(np.count_nonzero(self.value))
        return math.prod(self.shape)

    def coordinates(self) -> np.ndarray:
        """The cells' coordinates, an int64 array ``(n, ndim)``, rows sorted (C order) and unique."""
        shape = self.shape
        if not shape:  # a 0-d array has one cell, with no coordinates
            return np.zeros((0 if self.is_empty() else 1, 0), np.int64)
        kind = self.kind
        if kind == "everything":
            return np.indices(shape, dtype=np.int64).reshape(len(shape), -1).T
        if kind == "dense":
            return np.argwhere(self.value).astype(np.int64)
        flat = np.unique(self.value)
        return np.stack(np.unravel_index(flat, shape), axis=1).astype(np.int64)

    def __repr__(self) -> str:
        if self.kind == "everything":
            return f"CellSet(everything of {self.shape})"
        return f"CellSet({self.kind}, {self.size} cells of {self.shape})"
