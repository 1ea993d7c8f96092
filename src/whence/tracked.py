"""`TrackedArray`: a numpy array that records the lineage of every operation applied to it.

A :class:`TrackedArray` wraps a real :class:`numpy.ndarray` and a node of the lineage graph.  Every ufunc
(``__array_ufunc__``), every numpy function (``__array_function__``), every operator, method, indexing
operation and in-place write returns or updates a :class:`TrackedArray` whose node records the operation
and its lineage map (see :mod:`whence.maps`).  Values are computed by numpy itself, on the plain arrays.

Views share memory with the array they were taken from, exactly as in numpy.  whence keeps the lineage
of a buffer on its *root* array: writing through a view records the write on the root, and every view
re-reads its lineage from the root when the root has changed since.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
import weakref

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from . import hooks as _hooks
from .compose import SMALL_DEATH as _SMALL_DEATH
from .errors import PartialLineageWarning, WhenceError
from .graph import READERS_NOT_KEPT, Node, new_source, next_node_id, source_arrays
from .maps import (ViewMap, expand_basic_key, ElementwiseMap, EinsumMap, GatherMap, OpaqueMap, ReduceMap,
                   UnionMap, replay_gather, mask_gather)

__all__ = ["TrackedArray", "track", "is_tracked", "plain", "is_lazy", "as_values"]

_NUMERIC_KINDS = frozenset("biufc")
_NUMPY2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
_SCALARS = frozenset([float, int, bool, complex, np.float64, np.float32, np.int64, np.int32, np.bool_,
                      np.complex128, np.float16, np.int8, np.int16, np.uint8, np.uint16, np.uint32, np.uint64,
                      np.complex64])


def track(data, name=None, copy=True):
    """Start tracking the lineage of an array.

    Parameters
    ----------
    data : array_like
        Any shape, numeric or bool dtype (complex included).
    name : str, optional
        Unique source name used in query answers; an automatic one (``"array0"``, ...) when omitted.
    copy : bool, default True
        Copy the data, so that later writes to the original plain array cannot change tracked values
        behind whence's back.  ``copy=False`` wraps the buffer as it is.

    Returns
    -------
    TrackedArray

    Raises
    ------
    TypeError
        For object, string or other non-numeric dtypes, and for ragged input.
    whence.errors.SourceNameError
        When ``name`` is already used by a live tracked array.

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    >>> y = (a * 2).sum(axis=1)
    >>> wh.backward(y, (1,))["a"].tolist()
    [[1, 0], [1, 1], [1, 2]]
    """
    if isinstance(data, TrackedArray):
        raise WhenceError("this array is already tracked; use it directly (or track(np.asarray(x)) for a new source)")
    if is_lazy(data):
        return _lazy_module().track(data, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.VisibleDeprecationWarning
                                  if hasattr(np, "exceptions") else DeprecationWarning)
            arr = np.array(data, copy=True) if copy else np.asarray(data)
    except (ValueError, Warning) as exc:
        raise TypeError(f"cannot track ragged or malformed input: {exc}") from None
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"cannot track an array of dtype {arr.dtype}: whence tracks numeric and bool arrays only "
            f"(object, string, datetime and structured dtypes carry no cell lineage)")
    node = new_source(arr.shape, name)
    t = _wrap(arr, node)
    t._origin = node
    source_arrays[node.id] = t
    return t


def is_lazy(data):
    """True when ``data`` is a lazy array (a ``dask.array.Array``): whence then records lineage without
    computing any value (see :mod:`whence.dask.array`).

    Examples
    --------
    >>> import numpy as np
    >>> from whence.tracked import is_lazy
    >>> is_lazy(np.zeros(3))
    False
    """
    m = sys.modules.get("dask.array")
    return m is not None and isinstance(data, m.Array)


def as_values(r):
    """``r`` as an array of values: numpy arrays and lazy arrays as they are, anything else through
    ``np.asarray`` (results of numpy functions that may return scalars or sequences)."""
    if type(r) is np.ndarray or is_lazy(r):
        return r
    return np.asarray(r)


#: the lazy-array module (whence.dask.array) once a lazy array has been wrapped, else None
_DASK = [None]


def _lazy_module():
    m = _DASK[0]
    if m is None:
        m = _hooks.LAZY["array"]()
        _DASK[0] = m
    return m


def is_tracked(x):
    """True when ``x`` carries lineage (a :class:`TrackedArray`)."""
    return isinstance(x, TrackedArray)


def plain(x):
    """The plain numpy values of ``x`` (the object itself when it is not tracked)."""
    return x._data if isinstance(x, TrackedArray) else x


#: the functions the layers above lend to TrackedArray (filled by whence.buckets, whence.elision and whence.query;
#: see whence.hooks)
_LATE = _hooks.ARRAY

#: ``{numpy function: fast(args, kwargs)}``, filled by the function table (whence.buckets): the result of
#: the common call of the function on a numpy-backed TrackedArray, exactly as its bucket's handler gives it,
#: or None for any other call (which then goes to the handler)
FAST_FUNCTIONS = {}


def _reduce_fast(func, a, axis, **kw):
    return _LATE["reduce"](func, a, axis, **kw)


#: ndarray reductions computed by TrackedArray's methods directly: (op name as numpy's function has it, the
#: ndarray method, whether it takes dtype=); the values are those of the numpy function on a plain ndarray
_SUM = (np.sum.__name__, np.ndarray.sum, True)
_MEAN = (np.mean.__name__, np.ndarray.mean, True)
_MAX = (np.max.__name__, np.ndarray.max, False)
_MIN = (np.min.__name__, np.ndarray.min, False)
_ALL_AXES = [tuple(range(n)) for n in range(65)]


def _reduce_method(a, how, axis, dtype, keepdims):
    """``a.sum(axis)`` and the like for a numpy-backed array and an axis that is None or one int: the
    reduction map without binding arguments (None: not this case)."""
    d = a._data
    if type(d) is not np.ndarray:
        return None
    if axis is None and dtype is None and not keepdims:  # (the common call first: keywords cost numpy's parsing)
        r = how[1](d)
        if type(r) is not np.ndarray:
            r = np.asarray(r)
        shape = d.shape
        if r.shape == ():  # every cell into one: the map depends on the shape alone, one per shape
            m = _FULL_REDUCTIONS.get(shape)
            if m is None:
                if len(_FULL_REDUCTIONS) > 256:
                    _FULL_REDUCTIONS.clear()
                m = _FULL_REDUCTIONS[shape] = ReduceMap(shape, _ALL_AXES[d.ndim], (), (shape,))
            return _wrap_op(r, how[0], (a._node_ if a._root is None else a._node,), None, m)
        axes = _ALL_AXES[d.ndim]
    else:
        nd = d.ndim
        if axis is None:
            axes = _ALL_AXES[nd]
        elif type(axis) is int and -nd <= axis < nd:
            axes = (axis % nd,)
        else:
            return None
        if how[2]:
            r = how[1](d, axis=axis, dtype=dtype, keepdims=keepdims)
        else:
            r = how[1](d, axis=axis, keepdims=keepdims)
        if type(r) is not np.ndarray:
            r = np.asarray(r)
        shape = d.shape
    rs = r.shape
    return _wrap_array(r, Node(how[0], rs, ReduceMap(shape, axes, rs, (shape,)),
                               (a._node_ if a._root is None else a._node,)))


#: ``{shape: ReduceMap}``: the map of a reduction of every cell of an array of that shape into a 0-d result
#: (maps are never changed once made, so reductions of arrays of one shape share one)
_FULL_REDUCTIONS: dict = {}


def _reduce_function(how):
    def fast(args, kwargs):
        # np.sum(a), np.sum(a, axis), np.sum(a, axis=, dtype=, keepdims=): the method's path
        n = len(args)
        if n > 2 or type(args[0]) is not TrackedArray:
            return None
        axis = args[1] if n == 2 else None
        dtype = None
        keepdims = False
        for k, v in kwargs.items():
            if k == "axis" and n == 1:
                axis = v
            elif k == "dtype" and how[2]:
                dtype = v
            elif k == "keepdims" and type(v) is bool:
                keepdims = v
            else:
                return None
        return _reduce_method(args[0], how, axis, dtype, keepdims)

    return fast


for _how, _f in [(_SUM, np.sum), (_MEAN, np.mean), (_MAX, np.max), (_MIN, np.min)]:
    FAST_FUNCTIONS[_f] = _reduce_function(_how)
del _how, _f


#: references to a dying array's node held outside fold(): the dying array's slot, its __del__'s local, this
#: module's frame and array_died's frame (measured once on this interpreter: see whence.compose.calibrate_death)
_DEATH_REFS = [1 << 30]


def _array_died(node, size):
    f = _LATE.get("died")
    if f is None:
        from .compose import array_died as f
        _LATE["died"] = f  # (the calibration's own array dies with nothing folded: the count is still huge)
        _DEATH_REFS[0] = _death_refs()
    f(node, _DEATH_REFS[0], size)


def _death_refs():
    from .compose import calibrate_death
    from .graph import Node

    def drop():
        other = Node("calibration", ())
        n = Node("calibration", ())
        n.kids = weakref.ref(other)
        t = _wrap(np.zeros(1), n)
        del n
        del t

    held = calibrate_death(drop, 2)
    return 1 << 30 if held is None else held


def _handle_ufunc(ufunc, method, inputs, kwargs):
    return _LATE["ufunc"](ufunc, method, inputs, kwargs)


#: operands of at least this many bytes go through whence.elision (see whence.elision.MIN_BYTES)
_ELIDE_BYTES = 262144


_MATMUL_SIGNATURE = np.matmul.signature


def _matmul_fast(inputs):
    """``a @ b`` with tracked or plain ndarray operands and no keyword: the contraction map without binding
    arguments (None: not this case)."""
    a, b = inputs
    ta = type(a)
    tb = type(b)
    if ta is TrackedArray:
        da = a._data
        if type(da) is not np.ndarray:
            return None
    elif ta is np.ndarray:
        da = a
    else:
        return None
    if tb is TrackedArray:
        db = b._data
        if type(db) is not np.ndarray:
            return None
    elif tb is np.ndarray:
        db = b
    else:
        return None
    f = _LATE["gufunc_labels"]
    r = np.matmul(da, db)
    if type(r) is not np.ndarray:
        r = np.asarray(r)
    sa = da.shape
    sb = db.shape
    labels, out_labels = f(_MATMUL_SIGNATURE, (sa, sb))
    if ta is TrackedArray:
        if tb is TrackedArray:
            m = EinsumMap([labels[0], labels[1]], out_labels, r.shape, [sa, sb])
            parents = (a._node, b._node)
        else:
            m = EinsumMap([labels[0]], out_labels, r.shape, [sa])
            parents = (a._node,)
    else:
        m = EinsumMap([labels[1]], out_labels, r.shape, [sb])
        parents = (b._node,)
    return _wrap(r, Node("matmul", r.shape, m, parents))


_NEW = object.__new__


def _wrap(data, node, view_of=None, view_fn=None):
    t = _NEW(TrackedArray)
    if not isinstance(data, np.ndarray):
        if is_lazy(data):
            _lazy_module().wrapped(data, node)
        else:
            data = np.asarray(data)
    t._data = data
    t._node_ = node
    t._root = None
    t._chain = ()
    t._seen = 0
    t._version = 0
    t._origin = None
    t._lazy = None
    t._birth = None
    if view_of is not None:
        root = view_of._root if view_of._root is not None else view_of
        t._root = root
        t._chain = view_of._chain + (view_fn,)
        t._seen = root._version
    return t


def _wrap_array(data, node):
    """:func:`_wrap` for a plain ndarray that is not a view of a tracked array (the operators' path)."""
    t = _NEW(TrackedArray)
    t._data = data
    t._node_ = node
    t._root = None
    t._chain = ()
    t._seen = 0
    t._version = 0
    t._origin = None
    t._lazy = None
    t._birth = None
    return t


_weakref = weakref.ref
_NO_CONTROL: frozenset = frozenset()


def _wrap_op(r, op, pnodes, pshapes, m=None):
    """``_wrap_array(r, Node(op, r.shape, m, pnodes))`` for a plain ndarray ``r``, a tuple ``pnodes`` and a map
    ``m`` that holds no array (an ``ElementwiseMap(r.shape, pshapes)`` when None, else the map of a full
    reduction, ``r`` 0-d): the same wrapper, node and map, built slot by slot without the constructors'
    calls (every operator and full reduction on small arrays makes one; ``tests/test_dispatch_fast.py``
    checks every slot against the constructors'), except that a small result's node does not record its
    readers (:data:`whence.graph.READERS_NOT_KEPT`)."""
    shape = r.shape
    if m is None:
        m = _NEW(ElementwiseMap)
        m.out_shape = shape
        m.parent_shapes = pshapes
        m.valid = None
        size = r.size
    else:  # the map of a full reduction: one cell
        size = 1
    k = _NEW(Node)
    k.id = next_node_id()
    k.op = op
    k.shape = shape
    k.map = m
    k.parents = pnodes
    k.control = _NO_CONTROL
    k.partial = None
    k.name = None
    k.internal = False
    k.detail = ""
    k.cache = None
    k.link = None
    # the readers of a small result, whose map holds no array, are not recorded: its array's death hands
    # nothing to whence.compose (see TrackedArray.__del__), so nothing would read the list
    k.kids = READERS_NOT_KEPT if size < _SMALL_DEATH[0] else None
    w = None
    for p in pnodes:  # (as in Node.__init__: each non-source parent refers to its new reader weakly)
        if p.name is not None:
            continue
        q = p.kids
        if q is READERS_NOT_KEPT:
            continue
        if w is None:
            w = _weakref(k)
        if q is None:
            p.kids = w
        elif type(q) is list:
            q.append(w)
            if len(q) >= 16 and not len(q) & (len(q) - 1):
                q[:] = [v for v in q if v() is not None]
        else:
            p.kids = [q, w]
    t = _NEW(TrackedArray)
    t._data = r
    t._node_ = k
    t._root = None
    t._chain = ()
    t._seen = 0
    t._version = 0
    t._origin = None
    t._lazy = None
    t._birth = None
    return t


def _base(a):
    while isinstance(a, np.ndarray) and a.base is not None and isinstance(a.base, np.ndarray):
        a = a.base
    return a


def shares_buffer(result, source):
    """True when ``result`` is a view into the same buffer as ``source`` (both plain ndarrays)."""
    if result is source:
        return result.size > 0  # numpy returned the same array object (np.squeeze with nothing to squeeze)
    return (isinstance(result, np.ndarray) and result.base is not None and result.size > 0
            and _base(result) is _base(source))


def derive(op, data, map, parents, control=(), partial=None, internal=False, detail=""):
    """Wrap ``data`` in a new :class:`TrackedArray` produced by ``op`` from ``parents`` (TrackedArrays or Nodes)."""
    pnodes = tuple(p._node if isinstance(p, TrackedArray) else p for p in parents)
    node = Node(op, np.shape(data), map, pnodes, frozenset(control), partial, internal=internal, detail=detail)
    return _wrap(data, node)


def make_node(op, shape, map, parents, control=(), partial=None, internal=False, detail=""):
    pnodes = tuple(p._node if isinstance(p, TrackedArray) else p for p in parents)
    return Node(op, shape, map, pnodes, frozenset(control), partial, internal=internal, detail=detail)


def warn_partial(what, reason):
    warnings.warn(f"whence: {what}: {reason}; its lineage falls back to all cells of all inputs and is marked "
                  f"PARTIAL", PartialLineageWarning, stacklevel=4)


# --------------------------------------------------------------------------------------------- indexing

def _is_basic_key(key):
    for k in key:
        if k is None or k is Ellipsis or isinstance(k, slice):
            continue
        if isinstance(k, (bool, np.bool_)):
            return False
        if isinstance(k, (numbers.Integral, np.integer)):
            continue
        return False
    return True


def _plain_basic(key):
    """True for a tuple of ints and slices only (a basic key that needs no expansion)."""
    for k in key:
        t = type(k)
        if t is not slice and t is not int:
            return False
    return True


def _prepare_key(key):
    """Split an index into a plain key (arrays copied) and its tracked components ``[(position, array)]``."""
    if not isinstance(key, tuple):
        key = (key,)
    raw = []
    comps = []
    for i, k in enumerate(key):
        if isinstance(k, TrackedArray):
            comps.append((i, k))
            raw.append(np.array(k._data, copy=True))
        elif isinstance(k, np.ndarray):
            raw.append(np.array(k, copy=True))
        elif isinstance(k, (list, range)):
            raw.append(np.asarray(k))
        else:
            raw.append(k)
    return tuple(raw), comps


def _adv_layout(key, ndim):
    """Where numpy puts the broadcast block of advanced indices in the result.

    Returns ``(bshape, start, comp_index)`` where ``comp_index[i]`` maps each cell of the broadcast block
    to the flat index of the cell of key component ``i`` that selected it, or None for a basic key.
    """
    def consumes(k):
        if k is None:
            return 0
        if isinstance(k, np.ndarray) and k.dtype == bool:
            return k.ndim
        return 1

    consumed = sum(consumes(k) for k in key if k is not Ellipsis)
    has_ell = any(k is Ellipsis for k in key)
    entries = []  # (kind, key position, array-or-None)
    has_array = any(isinstance(k, np.ndarray) and k.ndim > 0 for k in key)
    if not has_array:
        return None
    for pos, k in enumerate(key):
        if k is Ellipsis:
            entries.extend([("s", pos, None)] * (ndim - consumed))
        elif k is None:
            entries.append(("n", pos, None))
        elif isinstance(k, slice):
            entries.append(("s", pos, None))
        elif isinstance(k, np.ndarray) and k.dtype == bool:
            nz = np.flatnonzero(k)
            for _ in range(max(k.ndim, 1)):
                entries.append(("a", pos, nz))
        else:
            arr = np.asarray(k)
            entries.append(("a", pos, arr))
    if not has_ell:
        entries.extend([("s", -1, None)] * (ndim - consumed))
    adv = [i for i, e in enumerate(entries) if e[0] == "a"]
    contiguous = adv == list(range(adv[0], adv[-1] + 1))
    start = sum(1 for e in entries[:adv[0]] if e[0] != "a") if contiguous else 0
    shapes = []
    seen = set()
    for e in entries:
        if e[0] == "a" and not (isinstance(key[e[1]], np.ndarray) and key[e[1]].dtype == bool and e[1] in seen):
            shapes.append(e[2].shape)
            if isinstance(key[e[1]], np.ndarray) and key[e[1]].dtype == bool:
                seen.add(e[1])
    bshape = np.broadcast_shapes(*shapes)
    comp_index = {}
    for kind, pos, arr in entries:
        if kind != "a" or pos in comp_index:
            continue
        k = key[pos]
        if isinstance(k, np.ndarray) and k.dtype == bool:
            comp_index[pos] = np.broadcast_to(arr, bshape)  # arr = flatnonzero(mask)
        else:
            comp_index[pos] = np.broadcast_to(np.arange(arr.size, dtype=np.int64).reshape(arr.shape), bshape)
    return bshape, start, comp_index


def _control_src(key, ndim, result_shape, pos):
    """Flat index of key component ``pos``'s cell that chose each cell of the indexed result."""
    bshape, start, comp_index = _adv_layout(key, ndim)
    nb = len(bshape)
    after = len(result_shape) - start - nb
    bpos = np.arange(math.prod(bshape), dtype=np.int64).reshape((1,) * start + bshape + (1,) * after)
    bpos = np.broadcast_to(bpos, result_shape)
    return np.ravel(comp_index[pos])[bpos]


def _control_parts(key, ndim, result_shape, comps, first_parent):
    """GatherMaps from the result to each tracked key component (control edges)."""
    parts = []
    for j, (pos, comp) in enumerate(comps):
        cshape = comp.shape

        def src(pos=pos):
            return _control_src(key, ndim, result_shape, pos) + 1

        parts.append((GatherMap(result_shape, [cshape], src), (first_parent + j,)))
    return parts


# ------------------------------------------------------------------------------------------ the array

def _scalar_power_ufunc(d, other):
    """The unary ufunc plain numpy's ``ndarray.__pow__`` runs on the buffer ``d`` for a scalar exponent
    ``other``, with the dtype to cast ``d`` to first, or None where it calls ``power``.  ``square``,
    ``sqrt``, ``reciprocal`` and ``positive`` can differ from ``power`` in the last bit (float32,
    complex64), so a tracked ``x ** e`` computes what plain numpy computes.  numpy 2 takes the shortcut for
    a Python ``int`` -1 or 2 and a Python ``float`` 0.5 on inexact arrays; numpy 1.x for any scalar
    exponent (number, 0-d array) of -1, 0.5, 1 or 2 on inexact arrays and of 2 on integer arrays."""
    if type(d) is not np.ndarray or isinstance(other, TrackedArray):
        return None
    kind = d.dtype.kind
    if _NUMPY2:
        t = type(other)
        if kind not in "fc" or not ((t is int and other in (-1, 2)) or (t is float and other == 0.5)):
            return None
        return _POWER_SHORTCUTS[float(other)], None
    if kind not in "biufc":
        return None
    if isinstance(other, (bool, int, np.integer)):
        e, floating = float(other), False
    elif isinstance(other, (float, np.floating)):
        e, floating = float(other), True
    elif isinstance(other, np.ndarray) and other.ndim == 0 and other.dtype.kind in "iuf":
        e, floating = float(other), other.dtype.kind == "f"
    else:
        return None
    if kind in "fc":
        # (numpy 1.x runs ones_like for exponent 0, which power matches exactly)
        ufunc = _POWER_SHORTCUTS.get(e) if e != 1.0 else np.positive
        return None if ufunc is None else (ufunc, None)
    if e == 2.0:
        return np.square, (np.float64 if floating and kind in "iu" else None)
    return None


_POWER_SHORTCUTS = {2.0: np.square, 0.5: np.sqrt, -1.0: np.reciprocal}


class TrackedArray(NDArrayOperatorsMixin):
    """A numpy array with cell-level lineage.

    Do not construct directly: use :func:`whence.track`.  Every numpy operation on a TrackedArray returns a
    TrackedArray; ``np.asarray(x)`` gives the plain values.

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.array([[1.0, 2.0], [3.0, 4.0]]), name="a")
    >>> y = a[:, 0] + a[:, 1]
    >>> y.cell(1).parents
    [('a', (1, 0)), ('a', (1, 1))]
    """

    __slots__ = ("_data", "_node_", "_root", "_chain", "_seen", "_version", "_origin", "_lazy", "_birth",
                 "__weakref__")
    __array_priority__ = 100

    def __init__(self, *args, **kwargs):
        raise TypeError("create tracked arrays with whence.track(data, name=...)")

    def __del__(self):
        # composition hook (whence.compose): once this array is gone, the map of its node may be folded into
        # the maps of the operations that read it
        try:
            n = self._node_
        except AttributeError:  # a wrapper that never got its node
            return
        if self._lazy:  # index arrays still to compute from this buffer (sort): computed now, the values go
            self._before_write()
        k = n.kids
        if k is None or k is READERS_NOT_KEPT:  # nothing reads the node, or its readers are not recorded
            return
        d = self._data
        if n.name is None and type(d) is np.ndarray:
            size = d.size
            if size < _SMALL_DEATH[0]:  # a small array: only a map that holds arrays is queued for folding
                m = n.map if n.link is None else n.link[0]
                if m is None or (m.valid is None if type(m) is ElementwiseMap
                                 else m.where is None if type(m) is ReduceMap else not m.nbytes):
                    return
            _array_died(n, size)

    # -- lineage plumbing ---------------------------------------------------------------------------
    @property
    def _node(self):
        r = self._root
        if r is not None and self._seen != r._version:
            self._refresh()
        return self._node_

    #: The lineage-graph node (:class:`whence.graph.Node`) of this array's cells as they are now (a view written
    #: through is brought up to date first): ``(wh.track(np.arange(3.0), name="a") + 1).node.op == "add"``.
    node = _node

    def _positions(self):
        """Flat positions in the root buffer of each cell of this view."""
        r = self._root
        idx = np.arange(r._data.size, dtype=np.int64).reshape(r._data.shape)
        for f in self._chain:
            idx = f(idx)
        return np.asarray(idx)

    def _refresh(self):
        r = self._root
        chain = self._chain
        rshape = r._data.shape

        def src():
            idx = np.arange(1, math.prod(rshape) + 1, dtype=np.int64).reshape(rshape)
            for f in chain:
                idx = f(idx)
            return idx

        self._node_ = Node("view", self._data.shape, GatherMap(self._data.shape, [rshape], src),
                           (r._node,), internal=True)
        self._seen = r._version

    def _defer(self, lazy):
        """Register a LazyIndex computed from this array's buffer, to be computed before any write to it."""
        root = self._root if self._root is not None else self
        if root._lazy is None:
            root._lazy = []
        root._lazy.append(weakref.ref(lazy))

    def _before_write(self):
        """Compute every pending LazyIndex that reads this buffer, before its values change."""
        root = self._root if self._root is not None else self
        pend = root._lazy
        if pend:
            root._lazy = None
            for r in pend:
                lz = r()
                if lz is not None:
                    lz.materialize()

    def _write(self, region, value_node, value_shape, control_parts=(), control_nodes=(), op="setitem",
               partial=None):
        """Record that cells of this array were overwritten with ``value_node``'s cells (broadcast).

        ``region`` is None (every cell) or a function that indexes an array of this array's shape, giving
        the written cells in the order numpy assigns them (so that, for repeated indices, the last write
        wins in the lineage exactly as in the values).  The lineage is recorded on the root of the buffer.
        """
        root = self._root if self._root is not None else self
        rshape = root._data.shape
        n = math.prod(rshape)
        chain = self._chain if self._root is not None else ()
        old = root._node
        if (region is None and not chain and value_node is not None and tuple(value_node.shape) == rshape
                and not control_parts):
            root._node_ = value_node
            root._version += 1
            return

        def pos_fn():
            idx = np.arange(n, dtype=np.int64).reshape(rshape)
            for f in chain:
                idx = f(idx)
            return np.asarray(idx if region is None else region(idx))

        vshape = tuple(value_shape) if value_node is not None else None

        def src():
            s = np.arange(1, n + 1, dtype=np.int64)
            pos = pos_fn()
            if value_node is None:
                s[pos.ravel()] = 0
            else:
                vs = vshape
                while len(vs) > pos.ndim and vs[0] == 1:
                    vs = vs[1:]
                v = np.arange(n + 1, n + 1 + math.prod(vs), dtype=np.int64).reshape(vs)
                s[pos.ravel()] = np.broadcast_to(v, pos.shape).ravel()
            return s.reshape(rshape)

        parents = [old] + ([value_node] if value_node is not None else [])
        shapes = [rshape] + ([value_node.shape] if value_node is not None else [])
        gmap = GatherMap(rshape, shapes, src)
        control = ()
        if control_parts:
            first = len(parents)
            parents += list(control_nodes)
            shapes += [c.shape for c in control_nodes]
            parts = [(gmap, tuple(range(first)))]
            for m, ix in control_parts:
                parts.append((_LiftMap(m, rshape, pos_fn), tuple(first + i for i in ix)))
            gmap = UnionMap(rshape, shapes, parts)
            control = tuple(range(first, len(parents)))
        root._node_ = Node(op, rshape, gmap, tuple(parents), frozenset(control), partial)
        root._version += 1

    # -- numpy protocols -----------------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        if type(self._data) is not np.ndarray and is_lazy(self._data):
            return np.asarray(self._data.compute(), dtype=dtype)
        if copy:
            return np.array(self._data, dtype=dtype, copy=True)
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        return self._data

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # fast path: a plain elementwise call with one output, no out=/where= (most operators)
        if method == "__call__" and not kwargs and ufunc.nout == 1 and ufunc.signature is None:
            raws = []
            pnodes = []
            pshapes = []
            for x in inputs:
                t = type(x)
                if t is TrackedArray:
                    d = x._data
                    raws.append(d)
                    pnodes.append(x._node)
                    pshapes.append(d.shape)
                elif t is np.ndarray or t in _SCALARS:
                    raws.append(x)
                else:
                    break
            else:
                # large operands: whence.elision reuses the buffer of a temporary operand (numpy's elision)
                if d.nbytes >= _ELIDE_BYTES or (raws[0] is not d and type(raws[0]) is np.ndarray
                                                and raws[0].nbytes >= _ELIDE_BYTES):
                    return _LATE["elide"](ufunc, inputs, raws, pnodes, pshapes)
                r = ufunc(*raws)
                if type(r) is not np.ndarray:
                    if is_lazy(r):
                        return _wrap(r, Node(ufunc.__name__, r.shape, ElementwiseMap(r.shape, pshapes), pnodes))
                    r = np.asarray(r)
                return _wrap_op(r, ufunc.__name__, tuple(pnodes), tuple(pshapes))
        elif ufunc is np.matmul and method == "__call__" and not kwargs:
            r = _matmul_fast(inputs)
            if r is not None:
                return r
        # everything else -- out= and where= (in-place results), other methods, other types -- binds its
        # arguments in buckets.ufuncs.handle_ufunc
        return _handle_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if _DASK[0] is not None:  # a lazy array was tracked in this process: route calls on lazy data
            r = _DASK[0].dispatch_function(func, types, args, kwargs)
            if r is not _DASK[0].NOT_LAZY:
                return r
        f = FAST_FUNCTIONS.get(func)
        if f is not None:  # the common call of a common function, without binding its arguments
            r = f(args, kwargs)
            if r is not None:
                return r
        return _LATE["dispatch"](func, types, args, kwargs)

    # -- attributes ----------------------------------------------------------------------------------
    shape = property(lambda self: self._data.shape, doc="Tuple of array dimensions.")
    ndim = property(lambda self: self._data.ndim, doc="Number of dimensions.")
    size = property(lambda self: self._data.size, doc="Number of cells.")
    dtype = property(lambda self: self._data.dtype, doc="Data type of the cells.")
    nbytes = property(lambda self: self._data.nbytes, doc="Bytes of the values (not of the lineage).")
    itemsize = property(lambda self: self._data.itemsize)
    strides = property(lambda self: self._data.strides)
    flags = property(lambda self: self._data.flags)

    @property
    def values(self):
        """The plain numpy values (the buffer itself, not a copy); computed for a lazy (dask) array."""
        d = self._data
        if type(d) is not np.ndarray and is_lazy(d):
            return np.asarray(d.compute())
        return d

    def compute(self, **kwargs):
        """The values as a numpy array, computing a lazy (dask) array (keyword arguments go to dask's
        ``compute``); the buffer itself for a numpy-backed array.

        Examples
        --------
        >>> import numpy as np, whence as wh
        >>> wh.reset()
        >>> (wh.track(np.arange(3.0), name="a") * 2).compute().tolist()
        [0.0, 2.0, 4.0]
        """
        d = self._data
        if type(d) is not np.ndarray and is_lazy(d):
            return np.asarray(d.compute(**kwargs))
        return d

    @property
    def lazy(self):
        """True when the values are a lazy (dask) array, held in :attr:`dask`."""
        return type(self._data) is not np.ndarray and is_lazy(self._data)

    @property
    def dask(self):
        """The lazy values (a ``dask.array.Array``), or None for a numpy-backed array."""
        return self._data if self.lazy else None

    @property
    def name(self):
        """The source name when this array is an untouched source, else None."""
        return self._node.name

    def _view_op(self, op, result, how, arg, step):
        out = _wrap(result, Node(op, result.shape, ViewMap(result.shape, self._data.shape, how, arg), (self._node,)))
        if shares_buffer(result, self._data):  # reshape copies when the memory layout does not allow a view
            root = self._root if self._root is not None else self
            out._root = root
            out._chain = self._chain + (step,)
            out._seen = root._version
        return out

    @property
    def T(self):
        d = self._data
        return self._view_op("transpose", d.T, "transpose", tuple(range(d.ndim))[::-1], _transpose_all)

    @property
    def mT(self):
        return np.matrix_transpose(self) if hasattr(np, "matrix_transpose") else np.swapaxes(self, -1, -2)

    @property
    def real(self):
        return np.real(self)

    @property
    def imag(self):
        return np.imag(self)

    @property
    def flat(self):
        return self.ravel()

    def __pow__(self, other):
        # plain numpy's ``**`` runs square / sqrt / reciprocal for some scalar exponents (see
        # _scalar_power_ufunc); the frame holds ``self`` and ``other`` only, as the operator mixin's methods do
        # (temporary elision counts their references)
        fast = _scalar_power_ufunc(self._data, other)
        if fast is not None:
            return fast[0](self) if fast[1] is None else fast[0](self.astype(fast[1]))
        if getattr(other, "__array_ufunc__", 0) is None:
            return NotImplemented
        if _NUMPY2 or self._data.ndim != 0 or is_lazy(self._data):
            return np.power(self, other)
        # a 0-d base on numpy 1.x: value-based casting keeps a float32 float32 where np.power promotes it
        r = np.power(self, other)
        want = (self._data ** (other._data if type(other) is TrackedArray else other)).dtype
        return r.astype(want) if type(r) is TrackedArray and r.dtype != want else r

    def __ipow__(self, other):
        fast = _scalar_power_ufunc(self._data, other)
        if fast is not None:  # in place, numpy squares an integer base without the cast
            return fast[0](self, out=(self,))
        return np.power(self, other, out=(self,))

    def __len__(self):
        return len(self._data)

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(len(self._data)):
            yield self[i]

    def __bool__(self):
        return bool(self._data)

    def __float__(self):
        return float(self._data)

    def __int__(self):
        return int(self._data)

    def __complex__(self):
        return complex(self._data)

    def __index__(self):
        return self._data.__index__()

    def __format__(self, spec):
        return format(self._data[()] if self._data.ndim == 0 else self._data, spec)

    def __hash__(self):
        # a 0-d array (one cell, as iteration yields) hashes like the numpy scalar it holds, so that sets, dicts
        # and pandas' hash tables (``Series.isin(tracked)``) find equal values; arrays stay unhashable
        if self._data.ndim == 0:
            return hash(self._data[()])
        raise TypeError("unhashable type: 'TrackedArray'")

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __repr__(self):
        if self.lazy:
            return f"Tracked{self._data!r}\n{self._summary()}"
        body = np.array_repr(self._data)
        if body.startswith("array("):
            body = "TrackedArray(" + body[len("array("):].replace("\n      ", "\n             ")
        return f"{body}\n{self._summary()}"

    def _repr_html_(self):
        from .notebook import array_html
        return array_html(self)

    def __str__(self):
        return f"{self._data!r}\n{self._summary()}" if self.lazy else f"{self._data}\n{self._summary()}"

    def _summary(self):
        nodes = _LATE["upstream"](self._node)
        nops = sum(1 for n in nodes if not n.is_source and not n.internal)
        srcs = [n.name for n in nodes if n.is_source]
        partial = any(n.partial for n in nodes)
        node = self._node
        last = f"source {node.name!r}" if node.is_source else node.op
        return (f"lineage: {last}; {nops} op{'s' if nops != 1 else ''} from {len(srcs)} source"
                f"{'s' if len(srcs) != 1 else ''} [{', '.join(srcs)}], {'PARTIAL' if partial else 'FULL'}")

    # -- queries as methods --------------------------------------------------------------------------
    def cell(self, *index):
        """The DSLog-style view of one cell: ``.value`` and ``.parents`` (list of (source, coordinates)).

        Examples
        --------
        >>> import numpy as np, whence as wh
        >>> wh.reset()
        >>> a = wh.track(np.arange(4.0), name="a")
        >>> np.cumsum(a).cell(1).parents
        [('a', (0,)), ('a', (1,))]
        """
        Cell = _LATE["cell"]
        if len(index) == 1 and isinstance(index[0], tuple):
            index = index[0]
        return Cell(self, tuple(index))

    # -- indexing ------------------------------------------------------------------------------------
    def __getitem__(self, key):
        d = self._data
        # the common basic keys (an int, a slice, a tuple of them) are their own expanded form
        tk = type(key)
        if tk is slice or tk is int:
            ekey = (key,)
        elif tk is tuple and _plain_basic(key):
            ekey = key
        elif isinstance(key, str):
            raise IndexError(f"a TrackedArray has no fields; got the key {key!r}")
        else:
            ekey = expand_basic_key(key, d.ndim) if tk is not TrackedArray else None
        if ekey is not None:
            result = d[key]  # the original key: x[0, ...] is a 0-d view where x[0] is a scalar
            if type(result) is not np.ndarray and not is_lazy(result):
                result = np.asarray(result)
            rshape = result.shape
            out = _wrap(result, Node("getitem", rshape, ViewMap(rshape, d.shape, "slice", ekey),
                                     (self._node_ if self._root is None else self._node,)))
            if type(d) is np.ndarray:
                rb = result.base  # (numpy gives a view of a view the first one's base)
                view = rb is not None and result.size and (rb is d or rb is d.base or _base(result) is _base(d))
            else:
                view = shares_buffer(result, d)
            if view:
                root = self._root if self._root is not None else self
                out._root = root
                out._chain = self._chain + ((lambda x, key=key: x[key]),)
                out._seen = root._version
            return out
        if _DASK[0] is not None and _DASK[0].lazy_key(d, key):
            return _DASK[0].getitem(self, key)
        raw_key, comps = _prepare_key(key)
        result = self._data[raw_key if len(raw_key) != 1 else raw_key[0]]
        node = self._node
        rshape = np.shape(result)
        ndim = self.ndim

        def replay(xs, key=raw_key):
            return xs[0][key if len(key) != 1 else key[0]]

        stored = [k for k in raw_key if isinstance(k, np.ndarray)]
        whole_mask = (len(raw_key) == 1 and type(raw_key[0]) is np.ndarray and raw_key[0].dtype == np.bool_
                      and raw_key[0].shape == self.shape and len(rshape) == 1)
        if whole_mask:
            # a bit per cell; the mask cell that chose each output cell is the cell it copies, so the same map
            # relates the output to the mask (control)
            data_map = mask_gather(rshape, self.shape, raw_key[0])
        else:
            data_map = replay_gather(rshape, [self.shape], [True], replay, stored=stored)
        if not comps:
            return _wrap(result, make_node("getitem", rshape, data_map, [node], detail=_key_repr(raw_key)))
        parents = (node,) + tuple([c._node for _, c in comps])
        shapes = [self.shape] + [c.shape for _, c in comps]
        if whole_mask:
            parts = [(data_map, (0,)), (data_map, (1,))]
        else:
            parts = [(data_map, (0,))] + _control_parts(raw_key, ndim, rshape, comps, 1)
        m = UnionMap(rshape, shapes, parts)
        return _wrap(result, make_node("getitem", rshape, m, parents, control=range(1, len(parents)),
                                       detail=_key_repr(raw_key)))

    def __setitem__(self, key, value):
        if _DASK[0] is not None and _DASK[0].lazy_key(None, key):
            return _DASK[0].setitem(self, key, value)
        raw_key, comps = _prepare_key(key)
        vnode = value._node if isinstance(value, TrackedArray) else None
        raw_value = value._data if isinstance(value, TrackedArray) else value
        k = raw_key if len(raw_key) != 1 else raw_key[0]
        self._before_write()
        try:
            self._data[k] = raw_value  # numpy validates and raises before any lineage is recorded
        except FloatingPointError:
            # np.errstate(invalid="raise") on a cast: numpy wrote every cell, then reported the error; the
            # lineage follows the values now in the buffer
            self._record_setitem(raw_key, k, comps, vnode, raw_value)
            raise
        self._record_setitem(raw_key, k, comps, vnode, raw_value)

    def _record_setitem(self, raw_key, k, comps, vnode, raw_value):
        region = (lambda idx, k=k: idx[k])
        vshape = np.shape(raw_value) if vnode is not None else None
        control_parts = ()
        if comps:
            wshape = np.shape(region(np.empty(self.shape, dtype=np.bool_)))
            control_parts = _control_parts(raw_key, self.ndim, wshape, comps, 0)
        self._write(region, vnode, vshape, control_parts, [c._node for _, c in comps], op="setitem")

    # -- conversions ---------------------------------------------------------------------------------
    def tolist(self):
        return self._data.tolist()

    def item(self, *args):
        return self._data.item(*args)

    def tobytes(self, order="C"):
        return self._data.tobytes(order)

    def unwrap(self):
        """The plain numpy values (alias of :attr:`values`)."""
        return self._data

    # -- ndarray methods (delegating to the numpy functions, so that lineage is recorded once) -------
    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        return np.astype(self, dtype, copy=copy) if hasattr(np, "astype") else _elementwise_method(
            self, "astype", lambda d: d.astype(dtype, order=order, casting=casting, copy=copy))

    def copy(self, order="C"):
        return np.copy(self, order=order)

    def reshape(self, *shape, order="C", **kw):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if order != "C" or kw:
            return np.reshape(self, shape, order=order, **kw)
        r = self._data.reshape(shape)
        return self._view_op("reshape", r, "reshape", None, lambda x, shape=shape: x.reshape(shape))

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes or axes == (None,):
            return self.T
        return np.transpose(self, axes)

    def ravel(self, order="C"):
        if order != "C":
            return np.ravel(self, order=order)
        return self._view_op("ravel", self._data.ravel(), "reshape", None, _ravel)

    def flatten(self, order="C"):
        return np.ravel(self, order=order).copy()

    def squeeze(self, axis=None):
        return np.squeeze(self, axis=axis)

    def swapaxes(self, a1, a2):
        return np.swapaxes(self, a1, a2)

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return np.diagonal(self, offset, axis1, axis2)

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return np.trace(self, offset, axis1, axis2, dtype, out)

    def repeat(self, repeats, axis=None):
        return np.repeat(self, repeats, axis)

    def take(self, indices, axis=None, out=None, mode="raise"):
        return np.take(self, indices, axis, out, mode)

    def compress(self, condition, axis=None, out=None):
        return np.compress(condition, self, axis, out)

    def choose(self, choices, out=None, mode="raise"):
        return np.choose(self, choices, out, mode)

    def nonzero(self):
        return np.nonzero(self)

    def searchsorted(self, v, side="left", sorter=None):
        return np.searchsorted(self, v, side, sorter)

    def clip(self, min=None, max=None, out=None, **kw):
        return np.clip(self, min, max, out=out, **kw)

    def round(self, decimals=0, out=None):
        return np.round(self, decimals, out)

    def conj(self):
        return np.conjugate(self)

    conjugate = conj

    def dot(self, b, out=None):
        return np.dot(self, b, out)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        if out is None and not kw:
            r = _reduce_method(self, _SUM, axis, dtype, keepdims)
            if r is not None:
                return r
            return _reduce_fast(np.sum, self, axis, dtype=dtype, keepdims=keepdims)
        return np.sum(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return np.prod(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        if out is None and not kw:
            r = _reduce_method(self, _MEAN, axis, dtype, keepdims)
            if r is not None:
                return r
            return _reduce_fast(np.mean, self, axis, dtype=dtype, keepdims=keepdims)
        return np.mean(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return np.std(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, **kw)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return np.var(self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, **kw)

    def max(self, axis=None, out=None, keepdims=False, **kw):
        if out is None and not kw:
            r = _reduce_method(self, _MAX, axis, None, keepdims)
            if r is not None:
                return r
            return _reduce_fast(np.max, self, axis, keepdims=keepdims)
        return np.max(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def min(self, axis=None, out=None, keepdims=False, **kw):
        if out is None and not kw:
            r = _reduce_method(self, _MIN, axis, None, keepdims)
            if r is not None:
                return r
            return _reduce_fast(np.min, self, axis, keepdims=keepdims)
        return np.min(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def ptp(self, axis=None, out=None, keepdims=False):
        return np.ptp(self, axis=axis, out=out, keepdims=keepdims)

    def argmax(self, axis=None, out=None, keepdims=False):
        return np.argmax(self, axis=axis, out=out, keepdims=keepdims)

    def argmin(self, axis=None, out=None, keepdims=False):
        return np.argmin(self, axis=axis, out=out, keepdims=keepdims)

    def any(self, axis=None, out=None, keepdims=False, **kw):
        return np.any(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def all(self, axis=None, out=None, keepdims=False, **kw):
        return np.all(self, axis=axis, out=out, keepdims=keepdims, **kw)

    def cumsum(self, axis=None, dtype=None, out=None):
        if out is None:
            return np.cumsum(self, axis=axis, dtype=dtype)
        return np.cumsum(self, axis=axis, dtype=dtype, out=out)

    def cumprod(self, axis=None, dtype=None, out=None):
        if out is None:
            return np.cumprod(self, axis=axis, dtype=dtype)
        return np.cumprod(self, axis=axis, dtype=dtype, out=out)

    def argsort(self, axis=-1, kind=None, order=None, **kw):
        return np.argsort(self, axis=axis, kind=kind, order=order, **kw)

    def argpartition(self, kth, axis=-1, kind="introselect", order=None):
        return np.argpartition(self, kth, axis=axis, kind=kind, order=order)

    def view(self, dtype=None, type=None):
        if type is not None:
            raise TypeError("TrackedArray.view does not support type=")
        if dtype is None or np.dtype(dtype) == self.dtype:
            return self[...]
        return _opaque_method(self, "view", lambda d: d.view(dtype))

    # in-place methods: compute the new values and lineage, then write them into this array
    def sort(self, axis=-1, kind=None, order=None, **kw):
        """Sort in place (the lineage of every cell follows its value)."""
        self[...] = np.sort(self, axis=axis, kind=kind, order=order, **kw)

    def partition(self, kth, axis=-1, kind="introselect", order=None):
        """Partition in place (the lineage of every cell follows its value)."""
        self[...] = np.partition(self, kth, axis=axis, kind=kind, order=order)

    def fill(self, value):
        """Fill with a scalar: every cell becomes a constant (no lineage), or a copy of a tracked 0-d value."""
        self[...] = value

    def put(self, indices, values, mode="raise"):
        np.put(self, indices, values, mode)

    def resize(self, *args, **kwargs):
        raise WhenceError("in-place resize of a tracked array is not supported; use np.resize(a, shape)")

    def setfield(self, *args, **kwargs):
        raise WhenceError("setfield is not supported on tracked arrays")


# ------------------------------------------------------------------------------------------ operators
# The operators of NDArrayOperatorsMixin call the ufunc on the TrackedArray, and numpy then finds and calls
# ``__array_ufunc__``: a few microseconds per operator.  The common case -- a TrackedArray and a scalar, a
# plain array or another TrackedArray, all numpy-backed -- is computed here directly, with the result and
# lineage ``__array_ufunc__`` would give; every other case goes the mixin's way.

def _generic_binary(ufunc, self, other, reflected):
    if _disables_array_ufunc(other):
        return NotImplemented
    return ufunc(other, self) if reflected else ufunc(self, other)


def _disables_array_ufunc(obj):
    try:
        return obj.__array_ufunc__ is None
    except AttributeError:
        return False


def _binary_operator(ufunc, name, reflected):
    uname = ufunc.__name__

    def op(self, other):
        t = type(other)
        if t is TrackedArray:
            o = other._data
            if type(o) is not np.ndarray:
                return _generic_binary(ufunc, self, other, reflected)
        elif t in _SCALARS or t is np.ndarray:
            o = other
        else:
            return _generic_binary(ufunc, self, other, reflected)
        d = self._data
        if type(d) is not np.ndarray:
            return _generic_binary(ufunc, self, other, reflected)
        # (the nodes read without the property's call where the array is not a view)
        pself = self._node_ if self._root is None else self._node
        if t is TrackedArray:
            pother = other._node_ if other._root is None else other._node
            if reflected:
                pnodes = (pother, pself)
                pshapes = (o.shape, d.shape)
            else:
                pnodes = (pself, pother)
                pshapes = (d.shape, o.shape)
            del pother
        else:
            pnodes = (pself,)
            pshapes = (d.shape,)
        del pself
        if d.nbytes >= _ELIDE_BYTES or ((t is TrackedArray or t is np.ndarray) and o.nbytes >= _ELIDE_BYTES):
            # large operands: whence.elision reuses the buffer of a temporary operand (numpy's elision); the
            # references it counts: this frame holds each operand once (self, other) and each tracked
            # operand's buffer once (d, o)
            if reflected:
                return _LATE["elide_operator"](ufunc, (other, self), (o, d), pnodes, pshapes)
            return _LATE["elide_operator"](ufunc, (self, other), (d, o), pnodes, pshapes)
        r = ufunc(o, d) if reflected else ufunc(d, o)
        if type(r) is not np.ndarray:
            r = np.asarray(r)
        # _wrap_op(r, uname, pnodes, pshapes) written out (the most frequent call; the tests compare the two)
        shape = r.shape
        m = _NEW(ElementwiseMap)
        m.out_shape = shape
        m.parent_shapes = pshapes
        m.valid = None
        k = _NEW(Node)
        k.id = next_node_id()
        k.op = uname
        k.shape = shape
        k.map = m
        k.parents = pnodes
        k.control = _NO_CONTROL
        k.partial = None
        k.name = None
        k.internal = False
        k.detail = ""
        k.cache = None
        k.link = None
        k.kids = READERS_NOT_KEPT if r.size < _SMALL_DEATH[0] else None
        w = None
        for p in pnodes:
            if p.name is not None:
                continue
            q = p.kids
            if q is READERS_NOT_KEPT:
                continue
            if w is None:
                w = _weakref(k)
            if q is None:
                p.kids = w
            elif type(q) is list:
                q.append(w)
                if len(q) >= 16 and not len(q) & (len(q) - 1):
                    q[:] = [v for v in q if v() is not None]
            else:
                p.kids = [q, w]
        t = _NEW(TrackedArray)
        t._data = r
        t._node_ = k
        t._root = None
        t._chain = ()
        t._seen = 0
        t._version = 0
        t._origin = None
        t._lazy = None
        t._birth = None
        return t

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``{'other ' if reflected else ''}{name}``: :func:`numpy.{uname}` with lineage."
    return op


def _unary_operator(ufunc, name):
    uname = ufunc.__name__

    def op(self):
        d = self._data
        if type(d) is not np.ndarray:
            return ufunc(self)
        if d.nbytes >= _ELIDE_BYTES:
            return _LATE["elide_operator"](ufunc, (self,), (d,), (self._node,), (d.shape,))
        r = ufunc(d)
        if type(r) is not np.ndarray:
            r = np.asarray(r)
        return _wrap_op(r, uname, (self._node_ if self._root is None else self._node,), (d.shape,))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``{name}``: :func:`numpy.{uname}` with lineage."
    return op


def _matmul_operator(reflected):
    def op(self, other):
        r = _matmul_fast((other, self) if reflected else (self, other))
        if r is None:
            return _generic_binary(np.matmul, self, other, reflected)
        return r

    op.__name__ = "__rmatmul__" if reflected else "__matmul__"
    op.__doc__ = f"``{'other @ self' if reflected else 'self @ other'}``: :func:`numpy.matmul` with lineage."
    return op


#: the operators computed directly (divmod keeps the mixin's: two outputs)
DIRECT_OPERATORS = {"__matmul__": _matmul_operator(False), "__rmatmul__": _matmul_operator(True)}
_COMPARISONS: list = [("lt", np.less), ("le", np.less_equal), ("eq", np.equal), ("ne", np.not_equal),
                      ("gt", np.greater), ("ge", np.greater_equal)]
_ARITHMETIC: list = [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("truediv", np.true_divide),
                     ("floordiv", np.floor_divide), ("mod", np.remainder), ("pow", np.power),
                     ("lshift", np.left_shift), ("rshift", np.right_shift), ("and", np.bitwise_and),
                     ("xor", np.bitwise_xor), ("or", np.bitwise_or)]
_UNARY: list = [("neg", np.negative), ("pos", np.positive), ("abs", np.absolute), ("invert", np.invert)]
for _name, _uf in _COMPARISONS:
    DIRECT_OPERATORS[f"__{_name}__"] = _binary_operator(_uf, f"__{_name}__", False)
for _name, _uf in _ARITHMETIC:
    if _name == "pow" and "__pow__" in TrackedArray.__dict__:
        continue  # the class's own (plain numpy's square / sqrt / reciprocal shortcuts)
    DIRECT_OPERATORS[f"__{_name}__"] = _binary_operator(_uf, f"__{_name}__", False)
    DIRECT_OPERATORS[f"__r{_name}__"] = _binary_operator(_uf, f"__r{_name}__", True)
for _name, _uf in _UNARY:
    DIRECT_OPERATORS[f"__{_name}__"] = _unary_operator(_uf, f"__{_name}__")
for _name, _f in DIRECT_OPERATORS.items():
    _f.__qualname__ = f"TrackedArray.{_name}"
    setattr(TrackedArray, _name, _f)
del _name, _uf, _f


def _transpose_all(x):
    return x.T


def _ravel(x):
    return x.ravel()


def _key_repr(key):
    parts = []
    for k in key:
        if isinstance(k, slice):
            parts.append(":".join("" if v is None else str(v) for v in (k.start, k.stop, k.step)).rstrip(":") or ":")
        elif k is Ellipsis:
            parts.append("...")
        elif k is None:
            parts.append("None")
        elif isinstance(k, np.ndarray):
            parts.append(f"<{k.dtype} array {k.shape}>")
        else:
            parts.append(repr(k))
    return "[" + ", ".join(parts) + "]"


def _elementwise_method(self, name, fn):
    data = fn(self._data)
    return derive(name, data, ElementwiseMap(np.shape(data), [self.shape]), [self])


def _opaque_method(self, name, fn):
    data = fn(self._data)
    warn_partial(f"ndarray.{name}", "reinterpreting the bytes mixes cells")
    return derive(name, data, OpaqueMap(np.shape(data), [self.shape]), [self], partial=f"{name} is opaque")


class _LiftMap(GatherMap):
    """Lift a map defined over a written region (``pos_fn()`` gives its root positions) to the root."""

    def __init__(self, inner, rshape, pos_fn):
        self.inner = inner
        self.out_shape = tuple(rshape)
        self.parent_shapes = inner.parent_shapes
        self.pos_fn = pos_fn
        self.stored = ()

    def backward_sparse(self, flat):
        return None  # not available: queries densify before lifting a control map

    def _winners(self):
        pos = np.asarray(self.pos_fn()).ravel()
        last = np.full(math.prod(self.out_shape), -1, np.int64)
        last[pos] = np.arange(pos.size)
        return pos, last[pos] == np.arange(pos.size)

    def backward(self, out_mask):
        pos, win = self._winners()
        region_mask = (np.ravel(out_mask)[pos] & win).reshape(self.inner.out_shape)
        return self.inner.backward(region_mask)

    def forward(self, k, in_mask):
        pos, win = self._winners()
        region = np.ravel(self.inner.forward(k, in_mask)) & win
        out = np.zeros(math.prod(self.out_shape), bool)
        out[pos[region]] = True
        return out.reshape(self.out_shape)


#: the public name of the wrapper other modules use to hand out a TrackedArray over ``data`` with lineage ``node``
wrap = _wrap


#: the public names of what the lazy backend and the store use (the private spellings stay as aliases)
NUMERIC_KINDS = _NUMERIC_KINDS
control_parts = _control_parts
key_repr = _key_repr
LiftMap = _LiftMap
#: ``[module]`` once a lazy array has been tracked (the lazy-array backend), else ``[None]``
LAZY_BACKEND = _DASK
