"""Temporary elision for tracked arrays: ``a * 2 + 1`` computes ``+ 1`` into the buffer of ``a * 2``.

numpy reuses the buffer of a temporary operand (an array that nothing but the expression holds) for the
result of a binary operator, so that ``a * 2 + 1`` allocates one buffer instead of two; fresh memory costs
page faults, and on large arrays that is most of the time of a cheap operation.  Behind a
:class:`~whence.TrackedArray` numpy cannot see that the operand is a temporary, so whence does the same
itself: for the operators TrackedArray computes itself (``-x``, ``x * y``, ``x & y``, ...:
:func:`operator_call`) and in the ufunc dispatch (:func:`elementwise_call`) for the others and for direct
ufunc calls (``np.tanh(x)``, ``np.add(np.multiply(a, 2), 1)``).

Lineage is unchanged: an elementwise map never reads values.  The values are exactly those numpy computes
without elision (the same loop runs, writing into another buffer).  The temporary's wrapper becomes the
result: it takes the new operation's node, and the temporary's node, which nothing else reads or holds, is
folded into the new one at once (:func:`whence.compose.fold_into_new_reader`: an elementwise map after an
elementwise map is one broadcast, built with no array work), so that ``a * 2 + 1`` answers queries in one hop
and no array dies between the two operators.

When is an operand a temporary?  All of the following hold, else the result gets a fresh buffer:

- the operand is a whence result of this module's path, *born* (computed) in the frame and at the very
  instruction that put it on the interpreter's stack, and the instruction now executing is an operator
  (``BINARY_OP``, ``UNARY_*``) or a call of the ufunc with the operands as its positional arguments,
  reached from that birth instruction by straight-line code that only loads values or computes other
  operands (:func:`_producer`): so the operand sits on the stack of the user's expression, nowhere else;
- CPython's reference count of the operand is exactly the count of that situation: the stack's reference
  and the dispatch's own (``_TEMP_REFS``), nothing more: no variable, list, closure, frame column, view
  (``_root``), debugger snapshot or registry holds it; no weak reference exists to it (sources are in
  :data:`whence.graph.source_arrays`);
- its buffer is held by it alone (no numpy view, no pending sort permutation, no pandas block), owns its
  data, is writeable, is a plain ``numpy.ndarray`` of at least 256 KiB (numpy's threshold), and has the
  result's shape and dtype;
- numpy's floating-point error mode raises or calls for nothing (an error raised after the loop would
  leave a half-written operand visible in the traceback).

The checks run cheapest first and stop at the first refusal: an operand with no birth (a source, a named
intermediate read before) costs one slot read.  What depends on the instruction only (is it an operator or
the call, which instruction pushed each operand) is looked up once per call site (:data:`_SITES`, keyed by
the code object and the offset), and the temporary's node becomes the new operation's, folded, in one step
(:func:`whence.compose.new_folded_reader`).

Why both the instruction and the reference count: the count alone cannot tell the interpreter's stack
from C code that holds the only reference and passes it on without one of its own (an element of an
object-dtype array under an operator, an argument bound by ``functools.partial``, a tuple unpacked by
``itertools.starmap``); the instructions tell them apart, the count rules out every other holder.  One
pattern stays out of reach: an operand born at an instruction that, run again in the same frame (or in a
new frame at the same address), yields a container holding that earlier operand as its only reference
instead of a fresh result, with an operator then applied to the container's elements by C code (a callable
that changes between runs of the same call site, returning an object-dtype array of tracked arrays that
reached it without passing through a whence operation: one that reads an operand clears its birth).

Reference counts depend on the interpreter: elision is active on the CPython versions whose counts the
test suite pins (:data:`ACTIVE`: CPython 3.11 with numpy 2), and off elsewhere (results are then always
fresh buffers, as before).  Where it is off, :func:`elementwise_call` computes a fresh result like the
plain fast path.

Examples
--------
>>> import numpy as np, whence as wh
>>> wh.reset()
>>> a = wh.track(np.ones(100_000), name="a")
>>> y = a * 2 + 1                       # "+ 1" is computed into the buffer of "a * 2"
>>> float(y[0]), wh.backward(y, (5,))["a"].tolist()
(3.0, [[5]])
>>> t = a * 2                           # a named intermediate is never written into
>>> z = t + 1
>>> float(t[0]), float(z[0])
(2.0, 3.0)
"""

from __future__ import annotations

import contextlib
import dis
import sys
import weakref

import numpy as np

from . import compose as _compose
from . import tracked as _tracked
from .graph import Node
from .maps import ElementwiseMap

_TA = _tracked.TrackedArray
_new_folded = _compose.new_folded_reader
_wrap_op = _tracked._wrap_op
_getframe = sys._getframe
_refcount = sys.getrefcount
_weakcount = weakref.getweakrefcount
_ndarray = np.ndarray

__all__ = ["ACTIVE", "MIN_BYTES", "elementwise_call", "min_bytes", "operator_call", "stats"]

#: numpy's own threshold: below 256 KiB a fresh buffer is cheaper than the checks
MIN_BYTES = 256 * 1024

#: reference counts of a temporary operand, seen from :func:`_temporary`, per CPython version and path
#: ("op": an operator reached through ``NDArrayOperatorsMixin``; "call": the ufunc called directly), not
#: counting the references of the dispatch that depend on the operand's position (added in ``_temporary``);
#: an operator computed by TrackedArray's own method (:func:`operator_call`) sees 5, whatever the position
_COUNTS = {(3, 11): {"op": 8, "call": 6}}

_VERSION = sys.version_info[:2]
#: True where elision runs (CPython versions whose reference counts are pinned by the tests)
ACTIVE = (sys.implementation.name == "cpython" and _VERSION in _COUNTS
          and int(np.__version__.split(".")[0]) >= 2)  # numpy 2: NEP 50 promotion, as _fits assumes
_TEMP_REFS = _COUNTS.get(_VERSION, {})

_counts = {"elided": 0, "fresh": 0}


@contextlib.contextmanager
def min_bytes(n):
    """Within the block, operands of at least ``n`` bytes (instead of :data:`MIN_BYTES`) qualify, so that
    tests can run elision on small arrays.

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> from whence import elision
    >>> a = wh.track(np.ones(4), name="small")
    >>> with elision.min_bytes(0):
    ...     y = a * 2 + 1
    >>> y.tolist()
    [3.0, 3.0, 3.0, 3.0]
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"min_bytes must be >= 0, got {n}")
    old = _tracked._ELIDE_BYTES
    _tracked._ELIDE_BYTES = n
    try:
        yield
    finally:
        _tracked._ELIDE_BYTES = old


def stats(reset=False):
    """How many large elementwise results reused a temporary's buffer (``"elided"``) or got a fresh one
    (``"fresh"``) since the last reset.

    Examples
    --------
    >>> from whence import elision
    >>> sorted(elision.stats(reset=True))
    ['elided', 'fresh']
    """
    out = dict(_counts)
    if reset:
        _counts["elided"] = _counts["fresh"] = 0
    return out


# ---------------------------------------------------------------------------------- the user's instruction

_BINARY = {dis.opmap[n] for n in ("BINARY_OP", "COMPARE_OP") if n in dis.opmap}
_UNARY = {dis.opmap[n] for n in ("UNARY_NEGATIVE", "UNARY_POSITIVE", "UNARY_INVERT") if n in dis.opmap}
_CALL = dis.opmap.get("CALL")

# (pops, pushes) of the instructions that may lie between an operand's birth and its use; anything else
# (stores, copies, container builds, jumps) ends the search with "not a temporary"
_EFFECTS = {
    "NOP": (0, 0), "RESUME": (0, 0), "CACHE": (0, 0), "EXTENDED_ARG": (0, 0), "PRECALL": (0, 0),
    "KW_NAMES": (0, 0), "PUSH_NULL": (0, 1), "LOAD_CONST": (0, 1), "LOAD_FAST": (0, 1), "LOAD_NAME": (0, 1),
    "LOAD_DEREF": (0, 1), "LOAD_CLASSDEREF": (0, 1), "LOAD_ATTR": (1, 1), "LOAD_METHOD": (1, 2),
    "BINARY_OP": (2, 1), "COMPARE_OP": (2, 1), "BINARY_SUBSCR": (2, 1), "UNARY_NEGATIVE": (1, 1),
    "UNARY_POSITIVE": (1, 1), "UNARY_INVERT": (1, 1), "UNARY_NOT": (1, 1),
}
_PRODUCERS = frozenset(["BINARY_OP", "COMPARE_OP", "UNARY_NEGATIVE", "UNARY_POSITIVE", "UNARY_INVERT", "CALL"])

_code_cache: dict = {}     # code -> (instructions, {offset: position})
_producer_cache: dict = {}  # (id(code), offset, depth) -> (code, producing offset or -1)


def _instructions(code):
    e = _code_cache.get(code)
    if e is None:
        if len(_code_cache) > 512:
            _code_cache.clear()
        ins = list(dis.get_instructions(code))
        e = _code_cache[code] = (ins, {x.offset: i for i, x in enumerate(ins)})
    return e


def _effect(ins):
    name = ins.opname
    if name == "LOAD_GLOBAL":
        return (0, 1 + (ins.arg & 1)) if _VERSION >= (3, 11) else (0, 1)
    if name == "CALL":
        return (ins.arg + 2, 1)
    return _EFFECTS.get(name)


def _producer(code, offset, depth):
    """Offset of the instruction that pushed the stack entry ``depth`` (0: the top) read by the instruction
    at ``offset``, when straight-line code that leaves that entry alone leads from it to ``offset``;
    -1 otherwise (a jump lands in between, or an instruction there may move or store the entry)."""
    key = (id(code), offset, depth)  # (hashing a code object hashes its bytecode: slow)
    e = _producer_cache.get(key)
    if e is not None and e[0] is code:
        return e[1]
    if len(_producer_cache) > 4096:
        _producer_cache.clear()
    ins, where = _instructions(code)
    r = -1
    i = where.get(offset)
    h = depth
    steps = 0
    while i is not None and i > 0 and steps < 64:
        if ins[i].is_jump_target:
            break
        i -= 1
        steps += 1
        prev = ins[i]
        eff = _effect(prev)
        if eff is None:
            break
        pops, pushes = eff
        if h < pushes:
            if h == 0 and pushes == 1 and prev.opname in _PRODUCERS:
                r = prev.offset
            break
        h = h - pushes + pops
    _producer_cache[key] = (code, r)  # the code is held, so that its id cannot come back as another's
    return r


#: the user's instructions met so far: ``(offset << 48) + id(code)`` -> ``(code, offset, operands, call
#: arguments, producer of stack entry 0, 1, 2)``: ``operands`` is 2 for a binary operator or comparison, 1 for a
#: unary operator, else 0; ``call arguments`` is the positional argument count of a ``CALL``, else -1; the
#: producers are :func:`_producer`'s answers.  An instruction's bytes never change, so one look per call site
#: (the entry holds its code object, so that the id cannot come back as another's)
_SITES: dict = {}

#: False only in tests: the birth checks (frame and producing instruction) pass, so that what the reference
#: counts alone refuse can be checked
_CHECK_INSTRUCTIONS = True


def _site_entry(code, off):
    if len(_SITES) > 4096:
        _SITES.clear()
    b = code.co_code
    op = b[off]
    e = (code, off, 2 if op in _BINARY else 1 if op in _UNARY else 0, b[off + 1] if op == _CALL else -1,
         _producer(code, off, 0), _producer(code, off, 1), _producer(code, off, 2))
    _SITES[(off << 48) + id(code)] = e
    return e


def _produced(e, depth):
    """Offset of the instruction that pushed stack entry ``depth`` read at site ``e`` (see :func:`_producer`)."""
    return e[4 + depth] if depth < 3 else _producer(e[0], e[1], depth)


def _mixin_kinds():
    from numpy.lib.mixins import NDArrayOperatorsMixin as M
    # the mixin makes every forward operator (comparisons included) from one function, every reflected one
    # from another, every unary one from a third (TrackedArray computes most operators itself, see
    # whence.tracked.DIRECT_OPERATORS, and keeps the mixin's for the others)
    # ``**`` has its own method (plain numpy's shortcuts to square, sqrt, reciprocal), shaped like the mixin's
    return {M.__add__.__code__: "op", M.__radd__.__code__: "op", M.__neg__.__code__: "op",
            _tracked.TrackedArray.__pow__.__code__: "pow"}


_MIXIN: dict = {}
#: the code objects of TrackedArray's own operator methods and of their fallback
_OPERATOR_CODES = frozenset([f.__code__ for f in _tracked.DIRECT_OPERATORS.values()]
                            + [_tracked._generic_binary.__code__])


def _site(nin):
    """``(frame, entry, kind, below)`` of the user's instruction that is running this elementwise ufunc call
    (``entry``: its :data:`_SITES` entry): an operator (kind ``"op"``: through the ``NDArrayOperatorsMixin``
    method, or ``**``, and ``__array_ufunc__``) or a call of the ufunc with its ``nin`` operands as positional
    arguments (kind ``"call"``); None for any other way in (a ufunc called from C code, ``x.__add__(y)``,
    ``operator.add``, ``map``, ``functools.partial``, ...).  (The operators TrackedArray computes itself come
    through :func:`operator_call`.)"""
    if not _MIXIN:
        _MIXIN.update(_mixin_kinds())
    try:
        # 0: _site, 1: elementwise_call, 2: __array_ufunc__, 3: its caller
        f = _getframe(3)
    except ValueError:  # called from C with no Python frame above
        return None
    code = f.f_code
    kind = _MIXIN.get(code)
    if kind is None and code in _OPERATOR_CODES:
        return None  # an operator method's own fallback (other operand types): numpy's dispatch in between
    if kind is not None:
        f = f.f_back
        if f is None:
            return None
        code = f.f_code
    off = f.f_lasti
    e = _SITES.get((off << 48) + id(code))
    if e is None or e[0] is not code:
        e = _site_entry(code, off)
    if kind is None:
        if e[3] == nin:
            return f, e, "call", 0
        return None
    if kind == "pow":  # ``x ** e`` runs power, or a unary shortcut such as square on ``x`` alone
        if e[2] == 2:
            return f, e, "op", 2 - nin  # (the base of a shortcut sits below the exponent)
    elif e[2] == nin:
        return f, e, kind, 0
    return None


# ---------------------------------------------------------------------------------------- the dispatch

def operator_call(ufunc, inputs, raws, pnodes, pshapes):
    """Compute an operator that a TrackedArray's own method computes (``x * 2``, ``2 - x``, ``-x``) on large
    operands, all plain ndarrays, and wrap the result; the result reuses the buffer of a temporary operand
    where one qualifies (see the module docstring).  ``inputs``: the operands, in the ufunc's order;
    ``raws``: their values; ``pnodes``, ``pshapes``: the nodes and shapes of the tracked ones.

    The checks run cheapest first, and each refusal stops at once: the operand's birth (one slot), the
    instruction (one look per call site, :data:`_SITES`), then the counts of references, the buffer, and
    last the result's dtype and shape and the error state."""
    n = len(inputs)
    if ACTIVE:
        f = _getframe(2)  # 0: here, 1: the operator method, 2: the user's frame
        code = f.f_code
        off = f.f_lasti
        e = _SITES.get((off << 48) + id(code))
        if e is None or e[0] is not code:
            e = _site_entry(code, off)
        if e[2] != n:  # not an operator instruction (``x.__add__(y)``, ``operator.add``): never a temporary
            _consumed(inputs)
            return _fresh(ufunc, raws, pnodes, pshapes, None)
        fid = id(f)
        del f, code
        lim = _tracked._ELIDE_BYTES
        for j in range(n):
            x = inputs[j]
            if type(x) is not _TA:
                continue
            birth = x._birth
            if birth is None:
                continue
            x._birth = None  # consumed now: whatever happens, never again a temporary
            # born in this frame at the instruction that pushed the stack entry read here (depth n - 1 - j)
            if (birth[0] != fid or birth[1] != e[3 + n - j]) and _CHECK_INSTRUCTIONS:
                continue
            d = raws[j]
            # references to the operand: the user's stack, the operator method's argument, ``inputs``, ``x``
            # here and getrefcount's argument; to its buffer: the operand's ``_data``, ``raws``, the method's
            # local, ``d`` here and getrefcount's argument (the method checked that it is a plain ndarray)
            if (d.base is not None or _refcount(x) != 5 or _refcount(d) != 5 or d.nbytes < lim
                    or x._root is not None or x._origin is not None or x._lazy or _weakcount(x) or _weakcount(d)):
                continue
            if n == 2 and (inputs[1 - j] is x or raws[1 - j] is d):  # the operand and its buffer appear once
                continue
            if not _fits_operator(ufunc, raws, d) or not d.flags.writeable:
                continue
            if not (_ext[1] if _EXTOBJ is not None and _EXTOBJ.get() is _ext[0] else _errstate_quiet()):
                break  # (an error raised after the loop would leave a half-written operand in the traceback)
            if n == 2:
                ufunc(raws[0], raws[1], d)
            else:
                ufunc(raws[0], d)
            _counts["elided"] += 1
            # the temporary becomes the result (see _became; written out here): references to its node: the
            # wrapper's slot, ``pnodes`` (once per occurrence: one or two operands), ``p`` and the argument
            p = x._node_
            if _refcount(p) == 3 + (pnodes[0] is p) + (len(pnodes) == 2 and pnodes[1] is p):
                k = _new_folded(ufunc.__name__, d.shape, pshapes, pnodes, p)
                if k is not None:
                    x._node_ = k
                    x._birth = (fid, off)
                    return x
            del p
            return _became(x, ufunc, d, pnodes, pshapes, fid, off)
        return _fresh(ufunc, raws, pnodes, pshapes, (fid, off))
    return _fresh(ufunc, raws, pnodes, pshapes, None)


def _became(x, ufunc, r, pnodes, pshapes, fid, off):
    """The temporary ``x`` whose buffer ``r`` took the result becomes the result: its wrapper takes the new
    node, and its old node (read by nothing else) is folded into the new one
    (:func:`whence.compose.new_folded_reader`), so that nothing dies between the two operations.  References
    to the old node: the wrapper's slot, the caller's tuple of parent nodes (once per occurrence), ``p`` here
    and getrefcount's argument; any other holder: the result gets a wrapper of its own, and the temporary
    dies as before."""
    p = x._node_
    occ = 3
    for v in pnodes:
        if v is p:
            occ += 1
    v = None  # (the loop variable would hold p)
    shape = r.shape
    if _refcount(p) == occ:
        if type(pnodes) is not tuple:
            pnodes = tuple(pnodes)
        k = _new_folded(ufunc.__name__, shape, pshapes, pnodes, p)
        x._node_ = Node(ufunc.__name__, shape, ElementwiseMap(shape, pshapes), pnodes) if k is None else k
        x._birth = (fid, off)
        return x
    del p
    t = _wrap_op(r, ufunc.__name__, pnodes if type(pnodes) is tuple else tuple(pnodes),
                 pshapes if type(pshapes) is tuple else tuple(pshapes))
    t._birth = (fid, off)
    return t


def _fresh(ufunc, raws, pnodes, pshapes, birth):
    """The result in a buffer of its own, wrapped; born at ``birth`` (``(frame id, offset)``) when large."""
    r = ufunc(*raws)
    _counts["fresh"] += 1
    if type(r) is not _ndarray:
        r = _tracked.as_values(r)
        if type(r) is not _ndarray:  # a lazy (dask) result: _wrap registers it
            return _tracked._wrap(r, Node(ufunc.__name__, r.shape, ElementwiseMap(r.shape, pshapes), pnodes))
    t = _wrap_op(r, ufunc.__name__, pnodes if type(pnodes) is tuple else tuple(pnodes),
                 pshapes if type(pshapes) is tuple else tuple(pshapes))
    if birth is not None and r.nbytes >= _tracked._ELIDE_BYTES:
        t._birth = birth
    return t


def elementwise_call(ufunc, inputs, raws, pnodes, pshapes):
    """Compute a plain elementwise ufunc call on large operands (the fast path of
    ``TrackedArray.__array_ufunc__``: an operator through the ``NDArrayOperatorsMixin``, or the ufunc called
    directly) and wrap the result; the result reuses the buffer of a temporary operand where one qualifies
    (see the module docstring)."""
    site = _site(len(inputs)) if ACTIVE else None
    if site is None:
        _consumed(inputs)
        return _fresh(ufunc, raws, pnodes, pshapes, None)
    fid = id(site[0])
    off = site[1][1]
    j = _temporary(ufunc, inputs, raws, site)
    if j >= 0:
        r = raws[j]
        ufunc(*raws, out=r)
        _counts["elided"] += 1
        return _became(inputs[j], ufunc, r, pnodes, pshapes, fid, off)
    return _fresh(ufunc, raws, pnodes, pshapes, (fid, off))


def _consumed(inputs):
    """Clear the births of operands read from an instruction that cannot elide (they are temporaries no
    longer)."""
    for x in inputs:
        if type(x) is _TA and x._birth is not None:
            x._birth = None


def _temporary(ufunc, inputs, raws, site):
    """Position of an operand whose buffer may take the result, or -1."""
    frame, e, kind, below = site
    fid = id(frame)
    n = len(inputs)
    jf = jl = -1  # positions of the first and the last tracked operand
    for j in range(n):
        if type(inputs[j]) is _TA:
            jl = j
            if jf < 0:
                jf = j
    lim = _tracked._ELIDE_BYTES
    for j in range(jf, jl + 1):
        x = inputs[j]
        if type(x) is not _TA:
            continue
        birth = x._birth
        if birth is None:
            continue
        x._birth = None  # consumed now: whatever happens, never again a temporary
        if (birth[0] != fid or birth[1] != _produced(e, n - 1 - j + below)) and _CHECK_INSTRUCTIONS:
            continue
        d = raws[j]
        if (type(d) is not np.ndarray or d.nbytes < lim or d.base is not None or x._root is not None
                or x._origin is not None or x._lazy or not d.flags.writeable):
            continue
        # references to the operand: the user's stack (one) and the dispatch's own: the fixed ones
        # (_TEMP_REFS: the mixin method's, numpy's, the ``inputs`` tuple, ``x`` here and getrefcount's
        # argument) and those that depend on its position: numpy's override dispatch and ``self`` of
        # ``__array_ufunc__`` (two, for the first tracked operand) and its loop variable (the last operand)
        if _refcount(x) != _TEMP_REFS[kind] + 2 * (j == jf) + (j == n - 1):
            continue
        # references to its buffer: the operand's ``_data``, ``raws``, ``d`` of ``__array_ufunc__`` (the
        # last tracked operand's buffer), ``d`` here and getrefcount's argument
        if _refcount(d) != 4 + (j == jl) or _weakcount(x) or _weakcount(d):
            continue
        if n == 2:  # (the common case, inline) the operand and its buffer appear once
            if inputs[1 - j] is x or raws[1 - j] is d:
                continue
        elif n > 2 and (_occurrences(inputs, x) != 1 or _occurrences(raws, d) != 1):
            continue
        if not _fits(ufunc, raws, d):
            continue
        if not _errstate_quiet():
            return -1
        return j
    return -1


def _occurrences(seq, obj):
    k = 0
    for v in seq:
        if v is obj:
            k += 1
    return k


_dtype_cache: dict = {}


def _fits(ufunc, raws, d):
    """True when the result of ``ufunc(*raws)`` has the dtype and shape of ``d`` (numpy's own type
    resolution, NEP 50: Python scalars are weak, numpy scalars and arrays are not)."""
    shape = d.shape
    same = True
    key = [ufunc]
    for v in raws:
        t = type(v)
        if t is np.ndarray:
            key.append(v.dtype)
            if v.shape != shape and v.ndim:  # (a 0-d operand broadcasts to any shape, changing none)
                same = False
        elif t is float or t is int or t is complex:
            key.append(t)
        elif t is bool:
            key.append(_BOOL)
        elif isinstance(v, np.generic):
            key.append(v.dtype)
        else:
            return False
    key = tuple(key)  # (dtypes compare by value: datetime units, byte order and all)
    r = _dtype_cache.get(key, False)
    if r is False:
        r = _resolve(key)
    if r is None or r != d.dtype:
        return False
    if same:
        return True
    shapes = tuple([v.shape for v in raws if type(v) is np.ndarray])
    b = _broadcast_cache.get(shapes)
    if b is None:
        if len(_broadcast_cache) > 1024:
            _broadcast_cache.clear()
        b = _broadcast_cache[shapes] = np.broadcast_shapes(*shapes)  # (numpy's own error where none exists)
    return b == shape


_broadcast_cache: dict = {}


def _fits_operator(ufunc, raws, d):
    """:func:`_fits` for one or two operands, written out (an operator on a temporary asks on every call)."""
    dt = d.dtype
    if len(raws) == 1:
        key = (ufunc, dt)
    else:
        a = raws[0]
        b = raws[1]
        if a is d:
            ka = dt
            other = b
        else:
            kb = dt
            other = a
        t = type(other)
        if t is _ndarray:
            k = other.dtype
            if other.ndim and other.shape != d.shape:  # broadcasting: the general test
                return _fits(ufunc, raws, d)
        elif t is float or t is int or t is complex:
            k = t
        elif t is bool:
            k = _BOOL
        elif isinstance(other, np.generic):
            k = other.dtype
        else:
            return False
        key = (ufunc, ka, k) if a is d else (ufunc, k, kb)
    r = _dtype_cache.get(key, False)
    if r is False:
        r = _resolve(key)
    return r is not None and (r is dt or r == dt)


def _resolve(key):
    """The result dtype of ``key[0]`` (a ufunc) on operands of the dtypes or Python types ``key[1:]``, None
    when numpy has no loop or a dtype is not a builtin one; memoised."""
    if len(_dtype_cache) > 1024:
        _dtype_cache.clear()
    r = None
    if all(k in (int, float, complex) or k.isbuiltin for k in key[1:]):
        try:
            r = key[0].resolve_dtypes(key[1:] + (None,))[-1]
        except Exception:  # noqa: BLE001 - numpy raises several types for loops it does not have
            r = None
        if r is not None and not r.isbuiltin:
            r = None
    _dtype_cache[key] = r
    return r


_BOOL = np.dtype(bool)
_ext = [None, False]  # numpy's error state last seen, and whether it neither raises nor calls


def _errstate_quiet():
    cv = _EXTOBJ
    if cv is None:
        e = np.geterr()
        return "raise" not in e.values() and "call" not in e.values()
    obj = cv.get()
    if obj is not _ext[0]:
        e = np.geterr()
        _ext[1] = "raise" not in e.values() and "call" not in e.values()
        _ext[0] = obj  # held, so that its id cannot come back with other settings
    return _ext[1]


try:  # numpy 2 keeps the error state in a context variable; a new object whenever it changes
    from numpy._core._multiarray_umath import _extobj_contextvar as _EXTOBJ
except ImportError:  # pragma: no cover - other numpy versions: ask every time
    _EXTOBJ = None


# TrackedArray (one layer below) reaches the elision through whence.hooks
from . import hooks as _hooks  # noqa: E402

_hooks.ARRAY["elide"] = elementwise_call
_hooks.ARRAY["elide_operator"] = operator_call
