"""A per-cell Python provenance baseline in the style of DSLog's ``CellProvenance``.

Every cell is a Python object holding its value and a ``parents`` list of source cells
``(array id, i, j)``.  As DSLog's paper describes: a unary operation copies the parents list, a binary
operation concatenates the two lists (no de-duplication); constants contribute nothing.  Arrays are numpy
object arrays, so numpy's own loops call these methods once per cell.

Usage, as in DSLog::

    a = initialize(plain_array, array_id=0)     # a.astype(CellProvenance); a.initialize()
    y = np.tanh(a * b + 1)                      # ordinary numpy on object arrays
    y[0, 0].parents                             # [(0, 0, 0), (1, 0, 0)]
"""

from __future__ import annotations

import math

import numpy as np


class CellProvenance:
    __slots__ = ("value", "parents")

    def __init__(self, value, parents):
        self.value = value
        self.parents = parents

    # binary: concatenate parents; with a constant: copy them
    def __add__(self, o):
        if isinstance(o, CellProvenance):
            return CellProvenance(self.value + o.value, self.parents + o.parents)
        return CellProvenance(self.value + o, self.parents.copy())

    def __radd__(self, o):
        return CellProvenance(o + self.value, self.parents.copy())

    def __sub__(self, o):
        if isinstance(o, CellProvenance):
            return CellProvenance(self.value - o.value, self.parents + o.parents)
        return CellProvenance(self.value - o, self.parents.copy())

    def __rsub__(self, o):
        return CellProvenance(o - self.value, self.parents.copy())

    def __mul__(self, o):
        if isinstance(o, CellProvenance):
            return CellProvenance(self.value * o.value, self.parents + o.parents)
        return CellProvenance(self.value * o, self.parents.copy())

    def __rmul__(self, o):
        return CellProvenance(o * self.value, self.parents.copy())

    def __truediv__(self, o):
        if isinstance(o, CellProvenance):
            return CellProvenance(self.value / o.value, self.parents + o.parents)
        return CellProvenance(self.value / o, self.parents.copy())

    # unary: copy parents (numpy object loops call these methods by the ufunc's name)
    def __neg__(self):
        return CellProvenance(-self.value, self.parents.copy())

    def tanh(self):
        return CellProvenance(math.tanh(self.value), self.parents.copy())

    def exp(self):
        return CellProvenance(math.exp(self.value), self.parents.copy())

    def sqrt(self):
        return CellProvenance(math.sqrt(self.value), self.parents.copy())

    def __repr__(self):
        return f"CellProvenance({self.value!r}, parents={self.parents!r})"


def initialize(arr, array_id):
    """An object array of :class:`CellProvenance`, each cell its own only parent (DSLog's ``initialize``)."""
    arr = np.asarray(arr)
    shape = arr.shape
    C = shape[-1] if arr.ndim else 1
    vals = arr.ravel().tolist()
    cells = [CellProvenance(v, [(array_id, i // C, i % C)]) for i, v in enumerate(vals)]
    out = np.empty(len(cells), dtype=object)
    out[:] = cells
    return out.reshape(shape)


def values(obj_arr):
    return np.frompyfunc(lambda c: c.value, 1, 1)(obj_arr).astype(np.float64)


def nbytes_estimate(obj_arr, sample=1000):
    """Approximate bytes held by the per-cell lineage (objects, lists, tuples), from a sample of cells."""
    import sys
    flat = obj_arr.ravel()
    n = len(flat)
    if n == 0:
        return 0
    idx = np.linspace(0, n - 1, min(n, sample)).astype(int)
    tot = 0
    for i in idx:
        c = flat[i]
        tot += sys.getsizeof(c) + sys.getsizeof(c.parents)  # tuples are shared with the source cells
    return int(tot / len(idx) * n)
