"""The map protocol (:class:`Map`) and the shape helpers every map family shares."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

__all__ = ["Map", "unbroadcast_any", "normalize_axes", "unravel1", "ravel1"]


def shape_size(shape: tuple[int, ...]) -> int:
    """The number of cells of an array of ``shape`` (1 for a 0-d array)."""
    return math.prod(shape)


def unbroadcast_any(mask: Any, shape: tuple[int, ...]) -> Any:
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


def _normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
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


def unravel1(f: int, shape: tuple[int, ...]) -> list[int]:
    """Coordinates of one flat index (pure Python: faster than numpy for a single cell)."""
    coords = []
    for d in reversed(shape):
        f, c = divmod(f, d)
        coords.append(c)
    return coords[::-1]


def ravel1(coords: Any, shape: tuple[int, ...]) -> int:
    """The flat (C-order) index of one cell's coordinates (pure Python, as :func:`unravel1`)."""
    f = 0
    for c, d in zip(coords, shape):
        f = f * d + c
    return f


#: a rectangle row (see :mod:`whence.maps.rectangles`): parent, out_lo, out_hi, lo_ax, lo_mul, lo_off, hi_ax,
#: hi_mul, hi_off
Row = tuple[Any, ...]


class Map:
    """Base class: ``out_shape``, ``parent_shapes`` and the two directions of the relation.

    The protocol every map follows (``docs/contributing.md``, "Add a map kind").  Every method below is
    defined here, so that a query or an encoder calls it on any map; the optional ones answer "not
    supported" here (None, False or ``()``), and a class that can do better overrides them.

    Required (each class defines them)
        ``kind`` (a string the store records), ``out_shape``, ``parent_shapes``, ``backward(out_mask)`` (for
        each parent, the boolean mask of its cells that the cells of ``out_mask`` derive from, or None) and
        ``forward(k, in_mask)`` (the output cells that derive from the cells ``in_mask`` of parent ``k``).
    Optional (queries use them, and fall back to the dense masks where they answer None)
        ``backward_sparse(flat)`` / ``forward_sparse(k, flat)``: the same on sorted flat indices, or None when
        not available for this input; ``backward_all()`` / ``forward_all(k)``: the answer for the whole array
        (per parent True / False, or None: ask ``backward``); ``rectangles()``: the ProvRC rows of the
        relation (see :mod:`whence.maps.rectangles`), or None; ``nbytes`` and ``held_arrays()``: what the map
        keeps; ``channel(k)``, ``compose(inner)`` and ``broadcast(out_shape, valid)`` (used by
        :mod:`whence.compose`).
    Flags (class attributes)
        ``copies``: every output cell copies at most one cell of the (one) parent, and ``copy_index()`` says
        which (1-based, 0 for none); ``composable``: :func:`~whence.maps.compose_pair` and
        :mod:`whence.compose` know this class's exact form and may fold it.  ``composable`` is declared by
        each class for itself and is not inherited: a subclass that changes how the relation is computed (a
        lazy index array, a lifted region) is not folded as its base would be unless it says so.
    """

    __slots__ = ("__dict__",)

    kind: ClassVar[str] = "map"
    copies: bool = False
    composable: ClassVar[bool] = False
    out_shape: tuple[int, ...]
    parent_shapes: tuple[tuple[int, ...], ...]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "composable" not in cls.__dict__:
            cls.composable = False

    def backward(self, out_mask: np.ndarray) -> list[Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, k: int, in_mask: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def backward_sparse(self, flat: np.ndarray) -> list[Any] | None:
        """For each parent, the sorted-or-not flat indices of the cells the output cells ``flat`` derive from
        (None for a parent reached by nothing); None: not available here (the query uses ``backward``)."""
        return None

    def forward_sparse(self, k: int, flat: np.ndarray) -> np.ndarray | None:
        """Flat indices of the output cells derived from the cells ``flat`` of parent ``k``; None: not
        available here (the query uses ``forward``)."""
        return None

    def backward_all(self) -> list[Any] | None:
        """For the set of every output cell, per parent: True (every parent cell), False (none) or None (not
        known without computing cells); None altogether: not known (the query asks ``backward``)."""
        return None

    def forward_all(self, k: int) -> bool | None:
        """For every cell of parent ``k``: True (every output cell is reached), False (none) or None (not
        known without computing cells)."""
        return None

    def rectangles(self) -> list[Row] | None:
        """The relation as ProvRC rectangle rows (see :mod:`whence.maps.rectangles`); None: no such form."""
        return None

    def copy_index(self) -> np.ndarray:
        """For a map that ``copies``: the 1-based flat source cell of every output cell (0: none)."""
        raise TypeError(f"a {type(self).__name__} does not copy cells (its ``copies`` is False)")

    @property
    def nbytes(self) -> int:
        """Bytes of lineage held by this map (index arrays and masks it stores)."""
        return 0

    def held_arrays(self) -> tuple[Any, ...]:
        """The arrays this map keeps (index arrays, masks), each once; composition compares their sizes."""
        return ()

    def channel(self, k: int) -> Map | None:
        """The relation between the output and parent ``k`` alone, as a one-parent map (None: not available)."""
        return self if len(self.parent_shapes) == 1 and k == 0 else None

    def compose(self, inner: Map) -> Map | None:
        """This (one-parent) map after the one-parent map ``inner`` (whose output is this map's parent),
        composed exactly into one map of the same or a smaller size; None when no such rule applies (see
        :func:`~whence.maps.compose_pair`, which then chains the two)."""
        return None

    def broadcast(self, out_shape: tuple[int, ...], valid: np.ndarray | None = None) -> Map | None:
        """This one-parent map followed by a broadcast of its output to ``out_shape`` (output cells where
        ``valid`` is False derive from nothing), as one map of this kind; None where there is no such form
        (an elementwise map after this one then composes by other rules, or not at all)."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.parent_shapes} -> {self.out_shape}>"
