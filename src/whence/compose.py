"""Composing the maps of intermediates that are gone, so that long runs stay small and queries stay short.

Every operation records its own map (see :mod:`whence.maps`).  In a loop such as ``y = np.where(y > 0.5,
y * 1.01, y * 0.99)`` each iteration adds a few maps, and each intermediate array dies at the next
iteration.  When a tracked array is garbage collected and nothing but the operations that read it refers to
its graph node, its map is *folded* into the maps of those readers: each reader's relation to the dead node
is composed with the dead node's relation to its own parents.  The reader then answers queries in one hop
to the dead node's parents, and the dead node keeps only its place in the operation history (``ops()``,
``ancestors()``, completeness and its reasons, the store's graph): its map is freed.

Folding happens only where the composition is exact and no larger than the two parts:

* an identity (a same-shaped elementwise step with one tracked operand) passes its parent through;
* elementwise broadcasts compose into one broadcast; a reduction after an elementwise broadcast is one
  reduction over the broadcast input;
* a gather after a gather is one index array (``idx1[idx2]``, int32 where it fits), also through elementwise
  steps and views; gathers of one operation that copy from the same node merge into one index array, and an
  index array that copies every cell from the same place is an identity again (``np.where(c, y * a, y * b)``
  copies cell ``i`` of ``y`` whatever ``c`` says);
* views compose by index arithmetic (a slice of a slice is a slice, a transpose of a transpose a transpose);
  other single-parent steps are chained in one map (:class:`ChainMap`), one hop for the query walk.

What is not composed stays as it was.  Operations marked PARTIAL are never folded, and neither are nodes
that something else refers to (a live array, a frame, a query in progress): the test is the node's
reference count against the references the graph itself holds, so an answer never depends on a map that
was freed.

:func:`compact` does the same on demand for an array that is still alive: its relation to its upstream is
composed through every composable step, live intermediates included (their own maps are kept, for their
own queries).

An elementwise step whose elementwise operand was a temporary computed into (:mod:`whence.elision`) is
folded as it is made (:func:`fold_into_new_reader`: the temporary's array does not die, it becomes the result);
an elementwise map folded into an elementwise reader is one broadcast, built in O(parents) with no array work,
at death too.  The maps of large arrays (``_BIG`` cells or more) are folded as soon as the array dies; those of
small ones only when they hold arrays (index arrays, masks: memory), in batches (a small array whose map holds
none never calls :func:`array_died`: see :data:`SMALL_DEATH`; the node of a small result of an operator or a
full reduction, whose map holds none, does not even record its readers,
:data:`whence.graph.READERS_NOT_KEPT`, and is never folded); a query first composes the relation of
the array it asks about (:func:`compact`, once per array), which saves the hops in every case.

The environment variable ``WHENCE_COMPOSE`` switches this: ``on`` (the default), ``off`` (no folding: every
map is kept, as recorded) and ``force`` (every dead array is folded at once, whatever its size, and queries
first :func:`compact` the array asked about, so that every answer goes through the composed maps; the test
suite runs its oracle tests in this mode too).
"""

from __future__ import annotations

import math
import os
import sys
import weakref

import numpy as np

from . import graph as _graph
from . import maps as _maps
from .graph import READERS_NOT_KEPT, Node
from .maps import (BandMap, ChainMap, EinsumMap, ElementwiseMap, GatherMap, LaneMap, Map, ReduceMap, UnionMap,
                   ViewMap, compose_pair, stored_gather)

__all__ = ["compact", "flush", "fold", "fold_into_new_reader", "mode", "new_folded_reader", "set_mode", "stats"]

_MODES = ("on", "off", "force")
_DEBUG = bool(os.environ.get("WHENCE_COMPOSE_DEBUG"))
_STATE = {"mode": os.environ.get("WHENCE_COMPOSE", "on").strip().lower() or "on", "busy": False,
          "retry": [], "pending": [], "pending_bytes": 0, "folded": 0, "probe": None, "call": 1}
_BIG = 1 << 16  # cells: the maps of arrays this large are folded as soon as they die, smaller ones in batches
_BATCH = 4096  # small dead arrays whose maps hold arrays, folded together ...
_BATCH_BYTES = 1 << 22  # ... or once their maps hold this many bytes
_COMPACT_MAX = 20000  # steps of one compact() at most
_RETRY_MAX = 256
_RETRY_TRIES = 8
if _STATE["mode"] not in _MODES:
    raise ValueError(f"WHENCE_COMPOSE must be one of {', '.join(_MODES)}, got {_STATE['mode']!r}")

#: ``[cells]``: a dying array of fewer cells whose map holds no array needs nothing from :func:`array_died`
#: (its map waits for a query's :func:`compact`), so the array's ``__del__`` does not call it; 0 in
#: ``force`` mode (every death is handed over), kept in step with the mode by :func:`set_mode`
SMALL_DEATH = [0 if _STATE["mode"] == "force" else _BIG]

#: placeholder lineage of a node whose map was folded into its readers (queries never reach it)
FOLDED: tuple = (None, (), frozenset())

#: predicates ``keep(node)`` filled by higher layers: a node for which one is true is never folded, composed
#: into another or compacted (lazy arrays, whose maps are written per chunk)
KEEP: list = []


def _kept(n):
    for f in KEEP:
        if f(n):
            return True
    return False

# map types whose relation composition understands (exact types: subclasses have other meanings)
_SPLITTABLE = (ElementwiseMap, ReduceMap, LaneMap, EinsumMap, GatherMap, ViewMap, BandMap, ChainMap)


def mode():
    """The composition mode: ``"on"``, ``"off"`` or ``"force"`` (see the module docstring).

    Examples
    --------
    >>> import whence as wh
    >>> wh.compose.mode() in ("on", "off", "force")
    True
    """
    return _STATE["mode"]


def set_mode(value):
    """Set the composition mode (``"on"``, ``"off"`` or ``"force"``); returns the previous one.

    Raises
    ------
    ValueError
        For any other value (the mode is then left as it was).

    Examples
    --------
    >>> import whence as wh
    >>> old = wh.compose.set_mode("off")
    >>> wh.compose.set_mode(old)
    'off'
    """
    if value not in _MODES:
        raise ValueError(f"the composition mode must be one of {', '.join(_MODES)}, got {value!r}")
    old = _STATE["mode"]
    _STATE["mode"] = value
    SMALL_DEATH[0] = 0 if value == "force" else _BIG
    return old


def stats():
    """``{"folded": number of nodes whose maps were folded into their readers so far}``."""
    return {"folded": _STATE["folded"]}


# ------------------------------------------------------------------------------------------ channels

def _channels(m, parents, control):
    """The relation ``(m, parents, control)`` as single-parent channels ``[(map, node, is_control)]``, or
    None when some part cannot be split."""
    t = type(m)
    if t is UnionMap:
        out = []
        for sub, ix in m.parts:
            ch = _channels(sub, [parents[i] for i in ix], frozenset(j for j, i in enumerate(ix) if i in control))
            if ch is None:
                return None
            out.extend(ch)
        return out
    if t not in _SPLITTABLE:
        return None
    if len(parents) == 1:
        return [(m, parents[0], 0 in control)]
    out = []
    for k, p in enumerate(parents):
        sub = m.channel(k)
        if sub is None:
            return None
        out.append((sub, p, k in control))
    return out


def _merge(chans, out_shape):
    """Channels to the same node with the same role merged where that is exact: identical maps once, and
    gathers that agree wherever both copy a cell into one index array (an identity when it copies every
    cell in place).  Index arrays equal to another channel's are shared."""
    groups = {}
    order = []
    for m, node, ctl in chans:
        key = (id(node), ctl)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((m, node, ctl))
    out = []
    made = []  # gathers built here, to share equal index arrays between groups
    for key in order:
        g = groups[key]
        node, ctl = g[0][1], g[0][2]
        maps = []
        for m, _, _ in g:
            if any(_same_map(m, x) for x in maps):
                continue
            maps.append(m)
        gathers = [m for m in maps if type(m) is GatherMap]
        whole = getattr(gathers[0], "whole", None) if gathers else None
        if (whole is not None and getattr(whole, "aligned", False) and len(gathers) == len(whole.parent_shapes)
                and all(getattr(m, "whole", None) is whole for m in gathers)
                and sorted(m.part for m in gathers) == list(range(len(gathers)))
                and tuple(node.shape) == tuple(out_shape)):
            # every operand of an elementwise selection (where) is this node: cell i is copied from cell i
            maps = [m for m in maps if type(m) is not GatherMap] + [ElementwiseMap(tuple(out_shape), (node.shape,))]
            gathers = []
        if len(gathers) > 1 or (gathers and len(maps) == 1 and not gathers[0].held_arrays()):
            rest = [m for m in maps if type(m) is not GatherMap]
            keep = []
            total = None
            for m in gathers:
                s = np.asarray(m.src(), dtype=np.int64)
                if total is None:
                    total = s
                    continue
                both = (total > 0) & (s > 0)
                if np.array_equal(total[both], s[both]):
                    total = np.where(total > 0, total, s)
                else:
                    keep.append(m)
            if len(gathers) > 1 or keep:
                merged = stored_gather(out_shape, node.shape, total)
                if type(merged) is GatherMap:
                    a = merged.src()
                    for other in made:
                        if other.parent_shapes == merged.parent_shapes and np.array_equal(other.src(), a):
                            merged = other
                            break
                    else:
                        made.append(merged)
                maps = rest + [merged] + keep
        out.extend((m, node, ctl) for m in maps)
    # one index array for channels that copy from the same places (data and control of a mask, say)
    pool = []
    for i, (m, node, ctl) in enumerate(out):
        # only index arrays and masks built by composition (comparing them costs no replay)
        if type(m) is not GatherMap or (getattr(m, "index", None) is None and getattr(m, "bits", None) is None):
            continue
        a = None
        for other in pool:
            if other is m:
                break
            if other.parent_shapes == m.parent_shapes and other.out_shape == m.out_shape:
                b1, b2 = getattr(other, "bits", None), getattr(m, "bits", None)
                if b1 is not None and b2 is not None:  # masks: compare their bits
                    if np.array_equal(b1, b2):
                        out[i] = (other, node, ctl)
                        break
                    continue
                i1, i2 = getattr(other, "index", None), getattr(m, "index", None)
                if i1 is not None and i2 is not None and np.array_equal(i1, i2):
                    out[i] = (other, node, ctl)
                    break
        else:
            pool.append(m)
    return out


def _same_map(a, b):
    """True when two one-parent maps are the same relation by construction (same object, or equal
    broadcasts, or equal views): the union keeps one."""
    if a is b:
        return True
    ta = type(a)
    if ta is not type(b) or tuple(a.out_shape) != tuple(b.out_shape) or \
            tuple(a.parent_shapes[0]) != tuple(b.parent_shapes[0]):
        return False
    if ta is ElementwiseMap:
        return a.valid is None and b.valid is None
    if ta is ViewMap:
        return a.how == b.how and a.arg == b.arg
    return False


def _build(out_shape, chans):
    parents = tuple(n for _, n, _ in chans)
    control = frozenset(i for i, (_, _, c) in enumerate(chans) if c)
    if len(chans) == 1:
        return chans[0][0], parents, control
    return UnionMap(out_shape, [p.shape for p in parents], [(m, (i,)) for i, (m, _, _) in enumerate(chans)]), \
        parents, control


def _nbytes(maps):
    """Bytes held by ``maps``, counting an array shared by several of them once."""
    seen = set()
    total = 0
    for m in maps:
        for a in m.held_arrays():
            if id(a) not in seen:
                seen.add(id(a))
                total += a.nbytes
    return total


def _compose_channels(kch, p, pch):
    """The channels of a reader with every channel to ``p`` composed with ``p``'s channels (None: some pair
    does not compose exactly)."""
    out = []
    done = {}  # the same pair of maps composes once (a mask's data and control channels share their maps)
    for m1, node, ctl in kch:
        if node is not p:
            out.append((m1, node, ctl))
            continue
        for mp, q, ctlq in pch:
            key = (id(m1), id(mp))
            m = done[key] if key in done else done.setdefault(key, compose_pair(m1, mp))
            if m is None:
                return None
            out.append((m, q, ctl or ctlq))
    return out


# ------------------------------------------------------------------------------------- folding a node

def _live_kids(p):
    k = p.kids
    if k is None:
        return []
    if type(k) is not list:
        n = k()
        return [] if n is None else [n]
    out = []
    for w in k:
        n = w()
        if n is not None and all(n is not x for x in out):
            out.append(n)
    return out


def _add_kid(q, node):
    if q.name is not None:
        return
    k = q.kids
    if k is None:
        q.kids = weakref.ref(node)
        return
    if k is READERS_NOT_KEPT:  # a node whose death folds nothing records no readers
        return
    if type(k) is not list:
        if k() is node:
            return
        q.kids = k = [k]
    for w in k:
        if w() is node:
            return
    k.append(weakref.ref(node))
    if len(k) >= 16 and not len(k) & (len(k) - 1):  # (as Node.__init__: the dead readers go now and then)
        k[:] = [w for w in k if w() is not None]


def _count(seq, p):
    n = 0
    for x in seq:
        if x is p:
            n += 1
    return n


def _calibrate():
    # the references to a node seen from inside _fold that fold's and _fold's frames hold themselves
    n = Node("calibration", ())
    return fold(n, 1, probe=True)  # ``n`` here is the one reference held outside


def fold(p, held=0, probe=False):
    """Fold the map of node ``p`` into the maps of the nodes that read it, if nothing else refers to ``p``.

    ``held`` is the number of references the caller holds besides its argument (1 for a dying array's own
    slot).  Returns True when ``p``'s map was folded and freed.
    """
    if probe:
        return _fold(p, held, True)
    if _STATE["busy"]:
        return False
    _STATE["busy"] = True
    _maps.DEFERRED[0] = True  # no pass over index arrays while arrays die: a query composes those
    try:
        return _fold(p, held)
    finally:
        _STATE["busy"] = False
        _maps.DEFERRED[0] = False


def _foldable(p):
    return (p.name is None and p.partial is None and p.link is not FOLDED and p.kids is not None
            and (p.map if p.link is None else p.link[0]) is not None and not (KEEP and _kept(p)))


def _fold(p, held, probe=False):
    if probe:
        return sys.getrefcount(p) - held
    if not _foldable(p):
        return False
    kids = _live_kids(p)
    if not kids:
        return False
    structural = 0
    consumers = []
    for k in kids:
        structural += _count(k.parents, p)
        lk = k.link
        if lk is not None:
            c = _count(lk[1], p)
            structural += c
            if c:
                consumers.append(k)
        elif _count(k.parents, p):
            consumers.append(k)
    if sys.getrefcount(p) - _BASE - held != structural:
        # something else refers to p: a live array, a frame, a query in progress; tried again later (a
        # reference held for the time of a statement is gone by the next array's death)
        if consumers:
            _queue_retry(p)
        return False
    if len(consumers) == 1:
        done = _fold_elementwise(p, consumers[0])
        if done is not None:
            return done
    pm, pps, pctl = p.lineage
    if len(consumers) > 1 and _nbytes([pm]):
        # its index arrays would be composed into several readers: left for them to read, and tried again
        # later, since a reader may be folded in the meantime (a mask read by ``y[mask]`` whose first try
        # met a reference held for the time of a statement is folded into its reader by a retry; its parent,
        # read by both, then has one reader left)
        _queue_retry(p)
        return False
    pch = _channels(pm, pps, pctl)
    if pch is None:
        return False
    new = []
    old_maps = [pm]
    for k in consumers:
        if k.partial is not None or (KEEP and _kept(k)):
            return False
        km, kps, kctl = k.lineage
        kch = _channels(km, kps, kctl)
        if kch is None:
            return False
        ch = _compose_channels(kch, p, pch)
        if ch is None:
            return False
        ch = _merge(ch, k.shape)
        new.append((k, ch))
        old_maps.append(km)
    new_maps = [m for _, ch in new for m, _, _ in ch]
    if _nbytes(new_maps) > _nbytes(old_maps):
        return False
    p.record()  # the operation history keeps what the map held
    for k, ch in new:
        k.record()
        k.link = _build(k.shape, ch)
        k.map = None
        for _, q, _ in ch:
            _add_kid(q, k)
    p.map = None
    p.link = FOLDED
    _STATE["folded"] += 1
    return True


def _fold_elementwise(p, k):
    """Fold ``p`` into its one reader ``k`` when both relations are plain elementwise broadcasts (no
    ``where=`` mask, no control operand): the composition is the broadcast of ``p``'s parents to ``k``'s
    shape, built in O(parents) with no array work.  Returns True when folded, None when this is not that
    case (the general path then decides).

    The maps of ``p`` and ``k`` are kept as they are (they hold no array): the operation history
    (:meth:`whence.graph.Node.record`) reads them when asked, and ``k`` answers queries through its link.
    """
    pm, pps, pctl = p.lineage
    if type(pm) is not ElementwiseMap or pm.valid is not None or pctl or not pps:
        return None
    km, kps, kctl = k.lineage
    if (type(km) is not ElementwiseMap or km.valid is not None or kctl or k.partial is not None
            or (KEEP and _kept(k))):
        return None
    link = _compose_elementwise(p, pm, pps, k.shape, km.parent_shapes, kps)
    if link is None:
        return None
    k.link = link
    for q in pps:
        if q.name is None:
            _add_kid(q, k)
    p.link = FOLDED
    _STATE["folded"] += 1
    return True


def _compose_elementwise(p, pm, pps, kshape, kshapes, kps):
    """The relation ``(map, parents, control)`` of a reader (operand shapes ``kshapes`` of ``kps``, shape
    ``kshape``) with its channels to ``p`` (relation ``pm`` over ``pps``) replaced by ``p``'s: one broadcast per
    distinct parent (a broadcast of a broadcast is the broadcast from the first shape to the last).  None when
    a shape does not line up."""
    pshape = pm.out_shape
    parents = []
    shapes = []
    for i in range(len(kps)):
        q = kps[i]
        if q is p:
            if kshapes[i] != pshape and tuple(kshapes[i]) != tuple(pshape):
                return None
            srcs = pps
            their = pm.parent_shapes
        else:
            srcs = (q,)
            their = (kshapes[i],)
        for r in range(len(srcs)):
            n = srcs[r]
            sh = their[r]
            if n in parents:  # (nodes compare by identity)
                if tuple(shapes[parents.index(n)]) != tuple(sh):
                    return None
                continue
            parents.append(n)
            shapes.append(sh)
    return ElementwiseMap(kshape, tuple(shapes)), tuple(parents), _NO_CONTROL


def _new_reader_link(p, kshape, kshapes, kps):
    """The folded relation of a new plain elementwise reader of ``p`` (shape ``kshape``, operands ``kps`` of
    shapes ``kshapes``): ``p``'s channels composed into it; None when ``p`` cannot be folded here (see
    :func:`fold_into_new_reader`)."""
    if _STATE["mode"] == "off" or _STATE["busy"] or p.name is not None or p.partial is not None:
        return None
    lk = p.link
    if lk is None:
        pm = p.map
        pps = p.parents
        pctl = p.control
    elif lk is FOLDED:
        return None
    else:
        pm, pps, pctl = lk
    if type(pm) is not ElementwiseMap or pm.valid is not None or pctl or not pps or (KEEP and _kept(p)):
        return None
    if len(kps) == 1:  # p alone (an operator with a scalar, a unary function): p's relation, to k's shape
        if kps[0] is not p or kshapes[0] != pm.out_shape:
            return None
        # (a tuple of its own: folding at death counts the references to a node from each reader's tuple)
        return ElementwiseMap(kshape, pm.parent_shapes), (*pps,), _NO_CONTROL
    if len(kps) == 2 and (kps[0] is p) is not (kps[1] is p):  # p and one other operand (a x b)
        first = kps[0] is p
        q = kps[1] if first else kps[0]
        if (kshapes[0] if first else kshapes[1]) != pm.out_shape:
            return None
        qs = kshapes[1] if first else kshapes[0]
        if q in pps:  # (nodes compare by identity) already a parent of p: one channel
            if len(pps) == 1 and pm.parent_shapes[0] == qs:  # (p read q alone, broadcast as k reads it)
                return ElementwiseMap(kshape, pm.parent_shapes), (q,), _NO_CONTROL
            return _compose_elementwise(p, pm, pps, kshape, kshapes, kps)
        if first:
            return ElementwiseMap(kshape, tuple(pm.parent_shapes) + (qs,)), tuple(pps) + (q,), _NO_CONTROL
        return ElementwiseMap(kshape, (qs,) + tuple(pm.parent_shapes)), (q,) + tuple(pps), _NO_CONTROL
    return _compose_elementwise(p, pm, pps, kshape, kshapes, kps)


def _linked(p, k, link):
    """Record that ``k`` answers through ``link`` (``p`` folded into it)."""
    k.link = link
    for q in link[1]:
        if q.name is None:
            _add_kid(q, k)
    p.link = FOLDED
    _STATE["folded"] += 1


def fold_into_new_reader(p, k):
    """Fold ``p`` into ``k``, a node just created whose operation read ``p``, when nothing else reads or holds
    ``p`` any more (the caller checks that: an elided temporary, whose buffer and wrapper now carry ``k``'s
    values and node).  Only plain elementwise relations are folded here (O(1), no array work); returns True
    when folded, False when ``p`` keeps its map (its relation stays as recorded: one more hop, never a wrong
    answer).

    The same composition as :func:`_fold_elementwise`, written for the one case an operator meets on every
    call: ``k`` is new (its own map, no link yet), ``p`` has no other reader."""
    km = k.map
    if type(km) is not ElementwiseMap or km.valid is not None or k.control or k.link is not None:
        return False
    if KEEP and _kept(k):
        return False
    link = _new_reader_link(p, k.shape, km.parent_shapes, k.parents)
    if link is None:
        return False
    _linked(p, k, link)
    return True


_new_node = Node.__new__
_next_id = _graph._next_id


def new_folded_reader(op, shape, pshapes, parents, p):
    """A new node for the plain elementwise operation ``op`` (result shape ``shape``; operand nodes
    ``parents``, a tuple, of shapes ``pshapes``) that read ``p``, with ``p`` folded into it at once; None where
    :func:`fold_into_new_reader` would not fold (the caller then creates the node as usual).  The caller
    checks that nothing else reads or holds ``p`` (an elided temporary).

    The node is what ``Node(op, shape, ElementwiseMap(shape, pshapes), parents)`` followed by
    :func:`fold_into_new_reader` makes, less ``p``'s weak reference to its new reader: a folded node is never
    folded again, so its list of readers is never read.  Built slot by slot (an operator on a temporary
    makes one on every call); ``tests/test_compose.py`` checks that every slot of :class:`~whence.graph.Node`
    is set."""
    link = _new_reader_link(p, shape, pshapes, parents)
    if link is None:
        return None
    k = _new_node(Node)
    k.id = _next_id()
    k.op = op
    k.shape = shape
    k.map = ElementwiseMap(shape, pshapes)
    k.parents = parents
    k.control = _NO_CONTROL
    k.partial = None
    k.name = None
    k.internal = False
    k.detail = ""
    k.cache = None
    k.kids = None
    if KEEP and _kept(k):
        return None
    k.link = link
    for q in link[1]:
        if q.name is None:
            _add_kid(q, k)
    p.link = FOLDED
    _STATE["folded"] += 1
    return k


_NO_CONTROL: frozenset = frozenset()
_BASE = _calibrate()


def calibrate_death(drop, levels):
    """The references to a dying array's node that the calls between its ``__del__`` and :func:`array_died`
    hold, measured on this interpreter: ``drop()`` lets an array die whose node is referred to by nothing
    else; ``levels`` is the number of calls on that way, besides the array's own slot and its ``__del__``'s
    local.  Records the references one call holds (one on CPython 3.11 and later, two before: the argument
    on the caller's stack too), which the retries use, and returns the count for the way from ``__del__``.

    The count is what folding compares a node's reference count with, so that a node is folded only when
    nothing but the graph refers to it, on whichever interpreter this runs.
    """
    out = []
    _STATE["probe"] = out
    small = SMALL_DEATH[0]
    SMALL_DEATH[0] = 0  # the probe's array is small: its death must come here all the same
    try:
        drop()
    finally:
        _STATE["probe"] = None
        SMALL_DEATH[0] = small
    if len(out) != 1:
        return None
    held = out[0] - _BASE
    per_call, rest = divmod(held - 2, levels)
    if rest or per_call < 1:
        return None  # an interpreter whose frames do not add up: never fold (held too high to ever match)
    _STATE["call"] = per_call
    return held


def array_died(node, held, size=None):
    """Called when a tracked array whose node is ``node`` (``size`` cells) is garbage collected (``held``:
    references the caller chain holds besides this function's argument).

    The maps of large arrays are folded at once (their index arrays are what a long run must free); those of
    small ones are queued and folded in batches, before the next query, or when :func:`flush` is called, so
    that calls on small arrays do not pay for it one by one."""
    probe = _STATE["probe"]
    if probe is not None:  # calibration (see calibrate_death): the references held on the way here
        probe.append(fold(node, 0, probe=True))
        return
    mode = _STATE["mode"]
    if mode == "off" or _STATE["busy"]:
        return
    if size is not None and size < _BIG and mode != "force":
        # a small array: folding its map saves memory only when the map holds arrays (index arrays, masks);
        # hops are saved by the composition a query does first (compact), so maps that hold nothing wait
        m = node.map if node.link is None else node.link[0]
        nb = m.nbytes if m is not None else 0
        if not nb:
            return
        pend = _STATE["pending"]
        pend.append(weakref.ref(node))
        _STATE["pending_bytes"] += nb
        if _STATE["pending_bytes"] >= _BATCH_BYTES or len(pend) >= _BATCH:
            flush()
        return
    try:
        fold(node, held)
    except Exception:  # noqa: BLE001 - folding is an optimisation: on any failure the maps stay as they were
        if _DEBUG:
            import traceback
            traceback.print_exc()
    if _STATE["retry"]:
        _retry()


def flush():
    """Fold the maps of the small dead arrays queued so far (queries call this first)."""
    if _STATE["busy"] or (not _STATE["pending"] and not _STATE["retry"]):
        return
    pend = _STATE["pending"]
    _STATE["pending"] = []
    _STATE["pending_bytes"] = 0
    for w in pend:
        q = w()
        if q is None or q.link is FOLDED:
            continue
        _retry_one(q)
        del q
    if _STATE["retry"]:
        _retry()


def _queue_retry(p):
    r = _STATE["retry"]
    if len(r) < _RETRY_MAX:
        r.append((weakref.ref(p), 0))


def _retry():
    """Try again to fold the nodes whose first try met a reference held for a while (each at most
    ``_RETRY_TRIES`` times)."""
    todo = _STATE["retry"]
    _STATE["retry"] = []
    for w, tries in todo:
        q = w()
        if q is None or q.link is FOLDED:
            continue
        ok = _retry_one(q)
        del q
        if not ok and tries + 1 < _RETRY_TRIES and len(_STATE["retry"]) < _RETRY_MAX:
            _STATE["retry"].append((w, tries + 1))


def _retry_one(q):
    try:
        return fold(q, 1 + _STATE["call"])  # held by the caller's local and by this call
    except Exception:  # noqa: BLE001
        return False


# ------------------------------------------------------------------------------------------ compact

def compact(y):
    """Compose the lineage of ``y`` through its upstream operations, live intermediates included.

    The relation of ``y`` to the cells upstream is replaced by one composed relation wherever the
    composition is exact (see the module docstring), so that backward queries, :func:`whence.lineage` and
    the store take fewer hops and fewer rectangles.  The operation history is unchanged, and so are the maps
    of the intermediates (queries from them, and forward queries from them to ``y``, answer as before).

    Parameters
    ----------
    y : TrackedArray

    Returns
    -------
    int
        The number of hops the relation of ``y`` now spans (the operations composed into it).

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.arange(6.0), name="a")
    >>> b = a * 2
    >>> c = (b + 1)[::-1]
    >>> wh.compact(c)
    2
    >>> wh.backward(c, (0,))["a"].tolist(), wh.backward(b, (0,))["a"].tolist()
    ([[5]], [[0]])
    """
    from .hooks import ARRAY
    node = ARRAY["node_of"](y)  # the query layer's resolver (frames, series, arrays), through whence.hooks
    flush()
    return compact_node(node)


def compact_node(node):
    if node.name is not None or node.partial is not None or node.link is FOLDED or (KEEP and _kept(node)):
        return 0
    m, ps, ctl = node.lineage
    if m is None or not ps:
        return 0
    ch = _channels(m, ps, ctl)
    if ch is None:
        return 0
    hops = 0
    changed = True
    seen = set()
    while changed and hops < _COMPACT_MAX:
        changed = False
        key = tuple((id(m), id(q), c) for m, q, c in ch)
        if key in seen:  # a composition that leads back to channels already met: stop there
            break
        seen.add(key)
        for i, (_, q, _) in enumerate(ch):
            if q.name is not None or q.partial is not None or q.link is FOLDED or (KEEP and _kept(q)):
                continue
            qm, qps, qctl = q.lineage
            if qm is None or not qps:
                continue
            qch = _channels(qm, qps, qctl)
            if qch is None:
                continue
            new = _compose_channels(ch, q, qch)
            if new is None:
                continue
            new = _merge(new, node.shape)
            if _nbytes([m for m, _, _ in new]) > _nbytes([m for m, _, _ in ch] + [qm]):
                continue
            ch = new
            hops += 1
            changed = True
            break
    if not hops:
        return 0
    node.record()
    c = node.cache
    if c is None:
        node.cache = c = {}
    c.setdefault("uncompacted", node.lineage)
    node.link = _build(node.shape, ch)
    for _, q, _ in ch:
        _add_kid(q, node)
    return hops


def forward_lineage(n):
    """The relation forward walks follow from a start that is not a source: the one before :func:`compact`
    (a compacted relation may pass over the start)."""
    c = n.cache
    if c is not None:
        u = c.get("uncompacted")
        if u is not None:
            return u
    return n.lineage


del math, Map
