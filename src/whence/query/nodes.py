"""Which node a query is about, and the nodes upstream of one.

:func:`node_of` finds the graph node of what a query is asked about (a tracked array, a node, or another tracked
object through the resolvers of :data:`whence.hooks.NODE_RESOLVERS`); :func:`upstream_nodes` and
:func:`lineage_upstream` list the nodes a node derives from, in creation order (a topological order).
"""

from __future__ import annotations

from .. import hooks as _hooks
from ..errors import NotTrackedError
from ..graph import Node
from ..tracked import TrackedArray

__all__ = ["node_of", "resolve_node", "upstream_nodes", "lineage_upstream"]


def node_of(x, what="array"):
    """The node of a tracked array, a node, or another tracked object (NotTrackedError otherwise)."""
    if isinstance(x, TrackedArray):
        return x.node
    if isinstance(x, Node):
        return x
    node = resolve_node(x)
    if node is not None:
        return node
    raise NotTrackedError(
        f"the {what} is a {type(x).__name__}, not a tracked array: start tracking with whence.track(...) "
        f"and compute from the tracked array")


def resolve_node(x):
    """The node of a tracked frame or series, of a store handle, or of a plain array handed out by
    ``np.asarray(tracked_frame)``."""
    f = getattr(type(x), "_whence_node", None)
    if f is not None:
        return x._whence_node
    if isinstance(x, (int, float, str, tuple, list)):
        return None
    for resolve in _hooks.NODE_RESOLVERS:  # filled by the tables layer (see whence.hooks)
        node = resolve(x)
        if node is not None:
            return node
    return None


def upstream_nodes(node):
    """Every node that ``node`` derives from, itself included, in creation order (the operation history:
    operations whose maps were composed into their readers' are included)."""
    seen = {node.id: node}
    stack = [node]
    while stack:
        n = stack.pop()
        for p in n.parents:
            if p.id not in seen:
                seen[p.id] = p
                stack.append(p)
    return [seen[i] for i in sorted(seen)]


def lineage_upstream(node, relation=None):
    """Every node that the lineage of ``node`` reaches through the relations queries follow (composed ones
    where dead intermediates were folded, see :mod:`whence.compose`), itself included, in creation order.
    ``relation(n)`` gives the ``(map, parents, control)`` to follow (default: ``n.lineage``)."""
    seen = {node.id: node}
    stack = [node]
    while stack:
        n = stack.pop()
        for p in (n.lineage if relation is None else relation(n))[1]:
            if p.id not in seen:
                seen[p.id] = p
                stack.append(p)
    return [seen[i] for i in sorted(seen)]
