"""The cells a query asks about: regions given by index, mask or ``rows=`` / ``columns=``, as cell sets.

A query region becomes a :class:`~whence.cellset.CellSet`: sparse flat indices for single cells and small
regions, a boolean mask otherwise (:func:`start_set`); :func:`too_dense` is the rule by which a sparse set
turns into a mask as it is pushed through the graph.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..cellset import CellSet
from ..errors import LineageQueryError
from ..tracked import TrackedArray

__all__ = ["region_mask", "rows_cols_index", "start_set", "too_dense", "SPARSE_FRACTION", "SPARSE_MIN"]

#: a sparse set of more than 1/SPARSE_FRACTION of an array's cells becomes a mask
SPARSE_FRACTION = 16
#: sets this small stay sparse whatever the array size
SPARSE_MIN = 1024


def too_dense(k, size):
    """True when ``k`` cells of an array of ``size`` cells are better held as a mask."""
    return k > SPARSE_MIN and k * SPARSE_FRACTION > size


def rows_cols_index(shape, index, rows, columns):
    """A query region from ``rows=`` / ``columns=`` (positions) for tables."""
    if rows is None and columns is None:
        return index
    if index is not None:
        raise LineageQueryError("give either an index or rows=/columns=, not both")
    m = np.zeros(shape, bool)
    r = slice(None) if rows is None else np.asarray(rows, np.int64).reshape(-1)
    n = shape[0] if shape else 0
    if rows is not None and r.size and (r.min() < -n or r.max() >= n):
        raise LineageQueryError(f"rows {r.tolist()} out of range for {n} rows")
    if len(shape) == 1:
        if columns is not None:
            raise LineageQueryError("columns= needs a 2-D array or a frame")
        m[r] = True
        return m
    c = slice(None) if columns is None else np.asarray(columns, np.int64).reshape(-1)
    if columns is not None and c.size and (c.min() < -shape[1] or c.max() >= shape[1]):
        raise LineageQueryError(f"columns {c.tolist()} out of range for {shape[1]} columns")
    if rows is None:
        m[:, c] = True
    elif columns is None:
        m[r, :] = True
    else:
        m[np.ix_(r, c)] = True
    return m


def region_mask(shape, index):
    """Boolean mask of ``shape`` for a query region.

    ``index`` is None (every cell), a tuple of ints and slices (a single int for 1-D), or a boolean mask of
    the array's shape.  Out-of-range integers raise :class:`~whence.errors.LineageQueryError`.
    """
    shape = tuple(shape)
    if index is None:
        return np.ones(shape, bool)
    if isinstance(index, TrackedArray):
        index = index._data
    if isinstance(index, np.ndarray) and index.dtype == bool:
        if index.shape != shape:
            raise LineageQueryError(f"a boolean query mask must have the array's shape {shape}, got {index.shape}")
        return index
    if isinstance(index, list):
        index = tuple(index)
    if not isinstance(index, tuple):
        index = (index,)
    if len([k for k in index if k is not Ellipsis]) > len(shape):
        raise LineageQueryError(f"the query index {index!r} has more entries than the array has dimensions "
                                f"({len(shape)})")
    for k, d in zip([k for k in index if k is not Ellipsis], shape):
        if isinstance(k, (bool, np.bool_)):
            raise LineageQueryError(f"query index entries must be ints or slices, got {k!r}")
        if isinstance(k, (numbers.Integral, np.integer)):
            if not -d <= int(k) < d:
                raise LineageQueryError(f"query index {int(k)} is out of range for an axis of length {d} "
                                        f"(array shape {shape})")
        elif not isinstance(k, slice):
            raise LineageQueryError(f"query index entries must be ints or slices, got {type(k).__name__}")
    m = np.zeros(shape, bool)
    m[index] = True
    return m


def start_set(shape, index):
    """The cell set asked about: sparse for single cells and small regions, dense otherwise."""
    if isinstance(index, tuple) and len(index) == len(shape) and all(
            isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)) for k in index):
        for k, d in zip(index, shape):
            if not -d <= int(k) < d:
                raise LineageQueryError(f"query index {int(k)} is out of range for an axis of length {d} "
                                        f"(array shape {tuple(shape)})")
        flat = np.array([np.ravel_multi_index(tuple(int(k) % d for k, d in zip(index, shape)), shape)]
                        if shape else [0], np.int64)
        return CellSet("sparse", flat, tuple(shape))
    if index is None:
        shape = tuple(shape)
        return CellSet.everything(shape) if int(np.prod(shape)) else CellSet.dense(np.zeros(shape, bool), shape)
    mask = region_mask(shape, index)
    size = mask.size
    if size >= 4096:
        flat = np.flatnonzero(mask)
        if flat.size * SPARSE_FRACTION <= size:
            return CellSet("sparse", flat, tuple(shape))
    return CellSet.dense(mask, tuple(shape))
