"""The registries through which a lower layer learns of a higher one (see ``docs/architecture.md``).

Imports flow down the layers only. Where a lower layer must call into a higher one, it looks the function up in
one of these tables, and the higher layer fills the table when it is imported. Every such table is here, so a
reader sees in one place what the low layers may reach above them:

``ARRAY``
    Functions the arrays layer (:class:`whence.tracked.TrackedArray`, :mod:`whence.compose`) calls, filled by
    the layers that own them: ``"reduce"``, ``"ufunc"``, ``"gufunc_labels"`` and ``"dispatch"`` by
    :mod:`whence.buckets` (the numpy function table); ``"elide"`` and ``"elide_operator"`` by
    :mod:`whence.elision`; ``"upstream"``, ``"cell"`` and ``"node_of"`` by :mod:`whence.query`. (``"died"``
    caches :func:`whence.compose.array_died`, a layer below.)
``NODE_RESOLVERS``
    Functions ``object -> Node or None`` that :mod:`whence.query` asks, in order, for the node of an object that
    is not a tracked array; filled by :mod:`whence.tabular.frame.values` (arrays handed out by a tracked frame) and
    :mod:`whence.tabular.sklearn` (model outputs).
``LAZY``
    Loaders (no argument, returning the module) of the lazy backends, which are imported on first use only:
    ``"array"`` (:mod:`whence.dask.array`) and ``"dataframe"`` (:mod:`whence.dask.dataframe`); set by the package
    facade ``whence/__init__.py``.

:data:`whence.query.HOOKS` (filled by :mod:`whence.dask.array`) is the fourth table: the query layer's own.

Examples
--------
A higher layer fills a table once, when it is imported; a lower one looks the entry up when it needs it:

>>> from whence import hooks
>>> def resolve(x):  # "the node of x, or None when x is not mine"
...     return None
>>> hooks.NODE_RESOLVERS.append(resolve)
>>> [f(object()) for f in hooks.NODE_RESOLVERS if f is resolve]
[None]
>>> hooks.NODE_RESOLVERS.remove(resolve)
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["ARRAY", "NODE_RESOLVERS", "LAZY"]

#: functions lent to TrackedArray by the layers above it (keys listed in the module docstring)
ARRAY: dict[str, Callable[..., Any]] = {}

#: ``object -> Node or None``, asked in order by :func:`whence.query.node_of`
NODE_RESOLVERS: list[Callable[[Any], Any]] = []

#: loaders of the lazy backends (keys listed in the module docstring)
LAZY: dict[str, Callable[[], Any]] = {}
