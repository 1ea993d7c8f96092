"""Before a query walks the graph: the hooks of lazy backends, and the composition of folded relations.

:data:`HOOKS` is the query layer's own table, filled from above (the dask backend resolves shapes that were
unknown at capture, and writes relations over lazy arrays to Parquet). :func:`compose_before_query` folds the
dead intermediates queued so far and composes the relation of the node asked about (see :mod:`whence.compose`).
"""

from __future__ import annotations

from .. import compose as _compose

__all__ = ["HOOKS", "prepare_node", "compose_before_query"]

#: hooks run before a query: ``prepare(node)`` with the node asked about (the dask layer resolves shapes that
#: were unknown at capture), ``to_parquet(relation, path, pairs)`` returning the files written or None
HOOKS: dict = {"prepare": [], "to_parquet": []}


def prepare_node(node):
    """Run the query hooks (lazy backends resolve unknown shapes) on a node before a query walks it."""
    for f in HOOKS["prepare"]:
        f(node)
    return node


def compose_before_query(node):
    """Before a query: fold the dead intermediates queued so far, and compose the relation of the node asked
    about through its upstream steps (live ones included, see :func:`whence.compact`) -- once per node, on
    its first query, in the default mode; before every query in the ``force`` mode."""
    _compose.flush()
    mode = _compose.mode()
    if mode == "force":
        _compose.compact_node(node)
    elif mode == "on":
        c = node.cache
        if c is None or "compacted" not in c:
            _compose.compact_node(node)
            node.memo("compacted", lambda: True)
