"""Lineage queries: composing the per-operation maps hop by hop, only when asked.

A backward query starts from a set of cells of the array asked about and pushes it through the maps of the
upstream operations in reverse creation order (a topological order), merging the sets that reach a node
along several paths, until it reaches the sources.  A forward query runs the other way, restricted to the
operations that lie between the source and the target.

The package holds one module per step, and this module re-exports every name (callers import from
``whence.query``):

- :mod:`whence.query.nodes`: which node a query is about, and the nodes upstream of one;
- :mod:`whence.query.prepare`: before a query, the hooks of lazy backends (:data:`HOOKS`) and the composition
  of folded relations;
- :mod:`whence.query.regions`: the cells asked about, as a cell set;
- :mod:`whence.query.walk`: the graph walk, backward to the sources and forward to a target;
- :mod:`whence.query.api`: the public queries (:func:`backward`, :func:`forward`, :func:`sources`,
  :func:`ops`, :func:`ancestors`, :class:`Cell`);
- :mod:`whence.query.relation`: the whole relation of an array (:class:`Relation`, :func:`lineage`).
"""

from __future__ import annotations

from .. import hooks as _hooks
from .api import Cell, LineageResult, ancestors, backward, forward, ops, sources
from .nodes import lineage_upstream, node_of, resolve_node, upstream_nodes
from .prepare import HOOKS, compose_before_query, prepare_node
from .regions import region_mask
from .relation import Relation, lineage
from .walk import backward_sets, cell_coordinates, forward_sets

__all__ = ["backward", "forward", "sources", "ops", "ancestors", "lineage", "Cell", "LineageResult",
           "Relation", "region_mask"]

# the former private spellings, kept as aliases (tests and benchmarks import some of them)
_upstream = upstream_nodes
_lineage_upstream = lineage_upstream
_node_of = node_of
_other_node = resolve_node
_backward_sets = backward_sets
_forward_sets = forward_sets
_cells = cell_coordinates
_prepare = prepare_node
_forced = compose_before_query

# TrackedArray (one layer below) reaches the walk and the cell view through whence.hooks
_hooks.ARRAY.update(upstream=upstream_nodes, cell=Cell, node_of=node_of)
