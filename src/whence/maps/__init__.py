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

The package holds one module per family, and this module re-exports every name, so that
``from whence.maps import X`` works for all of them:

:mod:`whence.maps.base`
    the :class:`Map` protocol (required and optional methods, flags) and shared shape helpers;
:mod:`whence.maps.rectangles`
    ProvRC-style rectangle rows and their composition (:func:`compose_rects`);
:mod:`whence.maps.index`
    index maps: :class:`ElementwiseMap`, :class:`ViewMap`, basic keys;
:mod:`whence.maps.region`
    region maps: :class:`ReduceMap`, :class:`LaneMap`, :class:`BandMap`, :class:`EinsumMap`, :class:`OpaqueMap`;
:mod:`whence.maps.gather`
    gather and selection maps: :class:`GatherMap`, :class:`PairsMap` and their constructors;
:mod:`whence.maps.composition`
    :class:`UnionMap`, :class:`ChainMap` and :func:`compose_pair`.
"""

from __future__ import annotations

from .base import Map, normalize_axes, ravel1, unbroadcast_any, unravel1
from .rectangles import DEFERRED, compose_rects, rectangles_to_pairs
from .index import ElementwiseMap, ViewMap, compose_keys, expand_basic_key, is_identity_map
from .region import BandMap, EinsumMap, LaneMap, OpaqueMap, ReduceMap
from .gather import (GatherMap, LazyIndex, PairsMap, gather_from_rows, mask_gather, replay_gather, rows_to_src,
                     split_by_parent, stored_gather)
from .composition import ChainMap, UnionMap, compose_pair

__all__ = [
    "Map", "ElementwiseMap", "ReduceMap", "LaneMap", "BandMap", "EinsumMap", "GatherMap", "PairsMap",
    "OpaqueMap", "UnionMap", "ChainMap", "replay_gather", "unbroadcast_any", "compose_pair", "compose_keys",
    "is_identity_map", "stored_gather", "mask_gather",
    # the helpers other modules use
    "ViewMap", "LazyIndex", "normalize_axes", "expand_basic_key", "split_by_parent", "unravel1", "ravel1",
    "compose_rects", "rectangles_to_pairs", "DEFERRED", "rows_to_src", "gather_from_rows",
]
