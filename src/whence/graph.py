"""The lineage graph: one :class:`Node` per array operation, linked to its parent nodes.

A node holds the operation's name, its *map* (the lineage relation between the output cells and the cells of
each parent, see :mod:`whence.maps`), and a completeness flag.  Nodes are numbered in creation order, so a
parent's id is always smaller than its child's: sorting by id is a topological order.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from .errors import SourceNameError

__all__ = ["Node", "OpRecord", "READERS_NOT_KEPT", "new_source", "next_node_id", "reset", "release", "source_names"]

_ids = itertools.count()
_next_id = _ids.__next__
#: the id of the next node (ids number nodes in creation order; every node takes its id from here)
next_node_id = _next_id
_NO_CONTROL: frozenset[int] = frozenset()
_ref = weakref.ref
_sources: "weakref.WeakValueDictionary[str, Node]" = weakref.WeakValueDictionary()
# the arrays handed out by ``track`` for each source node (for plots that show a source's values)
# (keyed by node id, values held weakly: the registry keeps neither the array nor its lineage alive)
source_arrays: "weakref.WeakValueDictionary[int, object]" = weakref.WeakValueDictionary()
_auto_names = itertools.count()


class _Gone:
    pass


#: ``Node.kids`` of a node whose readers are not recorded (see :mod:`whence.compose`: a node whose array never
#: hands it over when it dies, a small array whose map holds no array): a dead weak reference, so that whatever
#: reads the list of readers sees none alive, and such a node is never folded
READERS_NOT_KEPT = weakref.ref(_Gone())


class Node:
    """One operation (or source) in the lineage graph.

    Parameters
    ----------
    op : str
        Operation name, e.g. ``"add"`` or ``"getitem"``.
    shape : tuple of int
        Shape of the array this node produced.
    map : whence.maps.Map or None
        Lineage relation to the parents; ``None`` for sources and constants.
    parents : tuple of Node
        Parent nodes, in the order the map numbers them.
    control : frozenset of int
        Positions in ``parents`` that are control inputs (masks, conditions, index arrays).
    partial : str or None
        ``None`` when this op's lineage is exact (FULL), else the reason it is PARTIAL.
    """

    __slots__ = ("id", "op", "shape", "map", "parents", "control", "partial", "name", "internal",
                 "detail", "cache", "kids", "link", "__weakref__")
    cache: dict[Any, Any] | None
    link: tuple[Any, tuple[Node, ...], frozenset[int]] | None
    kids: Any

    def __init__(self, op: str, shape: Iterable[int], map: Any = None, parents: Iterable[Node] = (),
                 control: frozenset[int] = _NO_CONTROL, partial: str | None = None, name: str | None = None,
                 internal: bool = False, detail: str = "") -> None:
        # (created once per array operation: kept to plain attribute stores)
        self.id = _next_id()
        self.op = op
        self.shape = shape if type(shape) is tuple else tuple(shape)
        self.map = map
        if type(parents) is not tuple:
            parents = tuple(parents)
        self.parents = parents
        self.control = control
        self.partial = partial
        self.name = name
        self.internal = internal
        self.detail = detail
        self.cache = None  # memoised query answers (the history of a node never changes once created)
        # lineage composition (see whence.compose): ``link`` is None, or the composed relation
        # ``(map, parents, control)`` that queries use instead of ``(map, parents, control)`` once dead
        # intermediates were folded into this node; ``kids`` holds weak references to the nodes that read
        # this one (a weakref, a list of them, or None)
        self.link = None
        self.kids = None
        r = None
        for p in parents:
            if p.name is not None:  # sources are never folded: they need no list of readers
                continue
            if r is None:  # (one weak reference, made only when a parent keeps a list of readers)
                r = _ref(self)
            k = p.kids
            if k is None:
                p.kids = r
            elif type(k) is list:
                k.append(r)
                if len(k) >= 16 and not len(k) & (len(k) - 1):
                    k[:] = [w for w in k if w() is not None]
            elif k is not READERS_NOT_KEPT:  # (a node that records no readers stays so)
                p.kids = [k, r]

    def __getstate__(self) -> dict[str, Any]:
        # the weak references to readers are of this process only: a copy (pickled to another process) starts
        # with none, as a node nothing has read yet
        return {k: getattr(self, k, None) for k in self.__slots__ if k not in ("kids", "__weakref__")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        self.kids = None

    @property
    def lineage(self) -> tuple[Any, tuple[Node, ...], frozenset[int]]:
        """``(map, parents, control)`` that lineage queries follow: the composed relation when dead
        intermediates were folded into this node (:mod:`whence.compose`), else the node's own."""
        lk = self.link
        return (self.map, self.parents, self.control) if lk is None else lk

    @property
    def is_source(self) -> bool:
        return self.name is not None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def record(self) -> OpRecord:
        c = self.cache
        if c is not None and "record" in c:
            rec: OpRecord = c["record"]
            return rec
        rec = self._record()
        if c is None:
            self.cache = c = {}
        c["record"] = rec
        return rec

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per node and key; later calls return the stored answer."""
        c = self.cache
        if c is None:
            self.cache = c = {}
        v = c.get(key)
        if v is None:
            v = c[key] = compute()
        return v

    def _record(self) -> OpRecord:
        return OpRecord(self.id, self.op, self.shape, tuple(p.id for p in self.parents),
                        "FULL" if self.partial is None else "PARTIAL", self.partial, self.name,
                        self.map.nbytes if self.map is not None else 0, self.detail)

    def __repr__(self) -> str:
        flag = "" if self.partial is None else " PARTIAL"
        label = f"source {self.name!r}" if self.name else self.op
        return f"<Node {self.id} {label} shape={self.shape}{flag}>"


class OpRecord(NamedTuple):
    """A read-only description of one operation, as returned by :func:`whence.ancestors`."""

    id: int
    op: str
    shape: tuple[int, ...]
    parents: tuple[int, ...]
    completeness: str
    reason: str | None
    source: str | None
    lineage_nbytes: int
    detail: str = ""


def new_source(shape: Iterable[int], name: str | None = None) -> Node:
    """Create a source node under a unique name (an automatic one when ``name`` is None)."""
    if name is None:
        while True:
            name = f"array{next(_auto_names)}"
            if name not in _sources:
                break
    if not isinstance(name, str) or not name:
        raise SourceNameError(f"a source name must be a non-empty string, got {name!r}")
    if name in _sources:
        raise SourceNameError(
            f"source name {name!r} is already in use by a live tracked array; choose another name, "
            f"or call whence.release({name!r}) / whence.reset() to free it")
    node = Node("source", shape, name=name)
    _sources[name] = node
    return node


def release(name: str) -> None:
    """Free a source name so that it can be used again (the old arrays keep their lineage)."""
    _sources.pop(name, None)


def reset() -> None:
    """Free every source name (arrays already tracked keep their lineage)."""
    _sources.clear()


def source_names() -> list[str]:
    """Names of the sources that are alive now."""
    return sorted(_sources.keys())


#: the live source nodes by name (read-only for other modules: :func:`new_source` and :func:`release` write it)
sources_by_name = _sources
