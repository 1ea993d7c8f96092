"""The fast paths of the dispatch (operators computed by TrackedArray's own methods, basic-index views, the
common calls of sum/mean/max/min, cumsum/cumprod and matmul) give exactly what the general path gives.

Checked on random operands (hypothesis, derandomized): for every operator, with the other operand a Python
or numpy scalar, a plain array or a tracked array (broadcasting included), both orders: the values (dtype
included) equal plain numpy's and the ufunc call's through ``__array_ufunc__``; every cell's lineage equals
the brute-force oracle's.  For the fast functions, every call form is compared with the handler of its
bucket: values, the recorded operation (name, detail, map kind) and every cell's lineage.
"""

from __future__ import annotations

import operator
import pathlib
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import whence as wh
from whence import tracked as T
from whence.buckets import registry

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import oracle as O  # noqa: E402
from strategies import cfg  # noqa: E402

_BINARY = {"+": (operator.add, np.add), "-": (operator.sub, np.subtract), "*": (operator.mul, np.multiply),
           "/": (operator.truediv, np.true_divide), "//": (operator.floordiv, np.floor_divide),
           "%": (operator.mod, np.remainder), "**": (operator.pow, np.power), "<": (operator.lt, np.less),
           "<=": (operator.le, np.less_equal), "==": (operator.eq, np.equal), "!=": (operator.ne, np.not_equal),
           ">": (operator.gt, np.greater), ">=": (operator.ge, np.greater_equal)}
_INT_BINARY = {"&": (operator.and_, np.bitwise_and), "|": (operator.or_, np.bitwise_or),
               "^": (operator.xor, np.bitwise_xor), "<<": (operator.lshift, np.left_shift),
               ">>": (operator.rshift, np.right_shift)}
_UNARY = {"-": (operator.neg, np.negative), "+": (operator.pos, np.positive), "abs": (abs, np.absolute)}


def _cells_equal_oracle(y, yo, ndims, tag):
    assert wh.is_tracked(y), tag
    for o in np.ndindex(*yo.shape):
        res = wh.backward(y, o)
        O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(o), yo.partial(o), False,
                  f"{tag}: backward{o}")


def _same(got, want, tag):
    got = np.asarray(got)
    assert got.dtype == np.asarray(want).dtype, tag
    np.testing.assert_array_equal(got, want, err_msg=tag)


@st.composite
def binary_cases(draw):
    ints = draw(st.booleans())
    table = {**_BINARY, **_INT_BINARY} if ints else _BINARY
    sym = draw(st.sampled_from(sorted(table)))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if ints:
        a = rng.integers(1, 5, shape)
    else:
        a = rng.uniform(0.5, 2.0, shape)
    kind = draw(st.sampled_from(["int", "float", "bool", "np.float64", "np.int64", "np.float32", "array",
                                 "tracked", "row"]))
    if kind in ("array", "tracked", "row"):
        oshape = shape if kind != "row" else (1,) + shape[1:] if shape else (1,)
        other = rng.integers(1, 4, oshape) if ints else rng.uniform(0.5, 2.0, oshape)
    elif ints:
        other = {"int": 2, "float": 2.0, "bool": True, "np.float64": np.float64(2.0), "np.int64": np.int64(3),
                 "np.float32": np.float32(1.5)}[kind]
    else:
        other = {"int": 2, "float": 1.5, "bool": True, "np.float64": np.float64(0.75), "np.int64": np.int64(3),
                 "np.float32": np.float32(1.5)}[kind]
    return sym, table[sym], a, kind, other, draw(st.booleans())


@cfg(150)
@given(binary_cases())
def test_operators_match_numpy_the_ufunc_call_and_the_oracle(case):
    sym, (op, ufunc), a, kind, other, reflected = case
    wh.reset()
    ta = wh.track(a, name="a")
    oa = O.OArray.source("a", a)
    ndims = {"a": a.ndim}
    if kind in ("tracked", "row"):
        to, oo = wh.track(other, name="b"), O.OArray.source("b", other)
        ndims["b"] = other.ndim
    else:
        to, oo = other, other
    (x, y) = (to, ta) if reflected else (ta, to)
    ox, oy = (oo, oa) if reflected else (oa, oo)
    tag = f"{'other ' if reflected else ''}{sym} with {kind} ({a.dtype}{a.shape})"
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want = op(other, a) if reflected else op(a, other)
        except (TypeError, ValueError) as exc:  # numpy refuses the operand types: so must whence
            with pytest.raises(type(exc)):
                op(x, y)
            return
        got = op(x, y)
        via_ufunc = ufunc(x, y)
    _same(got, want, tag)
    _same(via_ufunc, want, tag)
    # (``2 < a`` is Python's ``a > 2``: the operation recorded is the mirrored comparison, as numpy runs it)
    mirrored = {"less": "greater", "less_equal": "greater_equal", "greater": "less",
                "greater_equal": "less_equal"}.get(ufunc.__name__, ufunc.__name__)
    assert wh.ops(via_ufunc) == [ufunc.__name__], tag
    if sym != "**":  # (``x ** e`` is the class's own method: plain numpy's square / sqrt / ... shortcuts)
        assert wh.ops(got) == [ufunc.__name__] or (reflected and wh.ops(got) == [mirrored]), tag
    _cells_equal_oracle(got, O.elementwise(ufunc, ox, oy), ndims, tag)


@cfg(40)
@given(st.sampled_from(sorted(_UNARY) + ["~"]), st.lists(st.integers(1, 3), min_size=0, max_size=2),
       st.integers(0, 2 ** 16))
def test_unary_operators(sym, shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-3, 4, tuple(shape)) if sym == "~" else rng.uniform(-2, 2, tuple(shape))
    op, ufunc = _UNARY.get(sym, (operator.invert, np.invert))
    wh.reset()
    ta = wh.track(a, name="a")
    got = op(ta)
    _same(got, op(a), sym)
    assert wh.ops(got) == [ufunc.__name__]
    _cells_equal_oracle(got, O.elementwise(ufunc, O.OArray.source("a", a)), {"a": a.ndim}, sym)


def test_other_operand_types_take_the_general_path():
    wh.reset()
    a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    np.testing.assert_array_equal(np.asarray(a + [1, 2, 3]), np.arange(6.0).reshape(2, 3) + [1, 2, 3])
    assert wh.backward(a + [1, 2, 3], (1, 2))["a"].tolist() == [[1, 2]]

    class Refuses:
        __array_ufunc__ = None

        def __radd__(self, other):
            return "refused"

    assert a + Refuses() == "refused"
    q, r = divmod(a, 4)  # two outputs: the mixin's operator
    np.testing.assert_array_equal(np.asarray(r), np.arange(6.0).reshape(2, 3) % 4)


# ------------------------------------------------------------------------------ the fast function table

def _general(func, args, kwargs):
    """The call through the bucket's handler, with the fast table bypassed."""
    return registry.dispatch(func, (T.TrackedArray,), args, kwargs)


def _calls():
    out = []
    for shape in [(), (5,), (3, 4), (2, 3, 2)]:
        axes = [None] + list(range(-len(shape), len(shape)))
        for f in (np.sum, np.mean, np.max, np.min):
            for ax in axes:
                out.append((f, shape, (), {"axis": ax}))
                out.append((f, shape, (ax,), {"keepdims": True}))
            out.append((f, shape, (), {}))
            if f in (np.sum, np.mean):
                out.append((f, shape, (), {"dtype": np.float32}))
        for f in (np.cumsum, np.cumprod):
            for ax in axes[1:] + ([None] if len(shape) == 1 else []):
                out.append((f, shape, (ax,), {}))
                out.append((f, shape, (), {"axis": ax, "dtype": np.float32}))
    return out


@pytest.mark.parametrize("func,shape,args,kwargs", _calls(),
                         ids=lambda v: getattr(v, "__name__", None) or repr(v))
def test_fast_functions_equal_their_handlers(func, shape, args, kwargs):
    assert func in T.FAST_FUNCTIONS
    wh.reset()
    vals = np.random.default_rng(len(shape)).uniform(0.5, 1.5, shape)
    a = wh.track(vals, name="a")
    fast = T.FAST_FUNCTIONS[func]((a,) + args, dict(kwargs))
    assert fast is not None
    general = _general(func, (a,) + args, dict(kwargs))
    via_numpy = func(a, *args, **kwargs)
    want = func(vals, *args, **kwargs)
    for y in (fast, general, via_numpy):
        _same(y, want, f"{func.__name__}{args}{kwargs}")
    for y in (fast, via_numpy):
        assert wh.ancestors(y)[-1][1:] == wh.ancestors(general)[-1][1:]
        assert type(y._node.map) is type(general._node.map)
        for o in np.ndindex(*np.shape(want)):
            assert wh.backward(y, o)["a"].tolist() == wh.backward(general, o)["a"].tolist()


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 2)])
def test_reduction_methods_and_views_equal_the_general_path(shape):
    wh.reset()
    vals = np.random.default_rng(1).uniform(0.5, 1.5, shape)
    a = wh.track(vals, name="a")
    for name in ("sum", "mean", "max", "min"):
        for ax in [None] + list(range(len(shape))):
            got = getattr(a, name)(axis=ax)
            general = _general(getattr(np, name), (a,), {"axis": ax})
            _same(got, getattr(vals, name)(axis=ax), name)
            assert wh.ancestors(got)[-1][1:] == wh.ancestors(general)[-1][1:]
            for o in np.ndindex(*np.shape(got)):
                assert wh.backward(got, o)["a"].tolist() == wh.backward(general, o)["a"].tolist()
    if shape:
        for key in [0, slice(1, None), (slice(None, None, -1),) + (0,) * (len(shape) - 1), slice(5, 5)]:
            got = a[key]
            want = vals[key]
            _same(got, want, repr(key))
            rec = O.OArray.source("a", vals).rec[key]
            if not isinstance(rec, np.ndarray):  # one cell
                rec, one = np.empty((), object), rec
                rec[()] = one
            _cells_equal_oracle(got, O.OArray(np.asarray(want), rec), {"a": len(shape)}, repr(key))
            # a view (numpy's result shares the buffer): writes through the source reach it
            assert (got._root is a) == (isinstance(want, np.ndarray) and want.base is not None and want.size > 0)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((4,), (4, 3)), ((2, 3), (3,)), ((2, 2, 3), (3, 2))])
@pytest.mark.parametrize("which", ["both", "left", "right"])
def test_matmul_operator(sa, sb, which):
    wh.reset()
    rng = np.random.default_rng(0)
    av, bv = rng.uniform(0.5, 1.5, sa), rng.uniform(0.5, 1.5, sb)
    a = wh.track(av, name="a") if which != "right" else av
    b = wh.track(bv, name="b") if which != "left" else bv
    got = a @ b
    _same(got, av @ bv, which)
    oa = O.OArray.source("a", av) if which != "right" else av
    ob = O.OArray.source("b", bv) if which != "left" else bv
    ndims = {"a": len(sa), "b": len(sb)}
    _cells_equal_oracle(got, O.matmul(oa, ob), ndims, which)
    general = np.matmul(a, b, out=None) if which != "right" else np.matmul(av, b, casting="same_kind")
    assert wh.ops(got) == wh.ops(general)


def _slots_of(obj, cls):
    return {s: getattr(obj, s) for s in cls.__slots__ if s != "__weakref__"}


@pytest.mark.parametrize("parents", ["source", "intermediate", "both", "same twice"])
@pytest.mark.parametrize("mode", ["on", "force"])
def test_a_wrapped_operation_is_what_the_constructors_make(parents, mode):
    # tracked._wrap_op builds the wrapper, its node and its map slot by slot: every slot of TrackedArray and
    # Node is set, equal to what _wrap_array(r, Node(op, shape, ElementwiseMap(shape, pshapes), parents))
    # sets (the node's id aside, and its list of readers: not kept for a small result, whose array's death
    # hands nothing to composition, unless every death does), and each intermediate parent lists the new
    # node among its readers
    from whence import compose
    from whence.graph import READERS_NOT_KEPT, Node
    from whence.maps import ElementwiseMap, ReduceMap
    old = compose.set_mode(mode)
    try:
        _check_wrapped_operation(parents, Node, ElementwiseMap, ReduceMap)
        s = Node("source", (3,), name="s")
        assert T._wrap_op(np.zeros(3), "negative", (s,), ((3,),))._node_.kids is (
            READERS_NOT_KEPT if mode == "on" else None)
        # a large result keeps its readers (its death folds its map into theirs), and so does a full reduction
        # where every death is handed to composition
        n = max(T._SMALL_DEATH[0], 1)
        big = Node("source", (n,), name="big")
        assert T._wrap_op(np.zeros(n), "negative", (big,), ((n,),))._node_.kids is None
        m = ReduceMap((3,), (0,), (), ((3,),))
        assert T._wrap_op(np.zeros(()), "sum", (s,), None, m)._node_.kids is (
            READERS_NOT_KEPT if mode == "on" else None)
    finally:
        compose.set_mode(old)


def _check_wrapped_operation(parents, Node, ElementwiseMap, ReduceMap):
    src = Node("source", (3, 4), name="a")
    row = Node("source", (1, 4), name="r")
    made = []
    for how in ("slots", "constructors"):
        mid = Node("exp", (3, 4), ElementwiseMap((3, 4), ((3, 4),)), (src,))
        other = Node("tanh", (1, 4), ElementwiseMap((1, 4), ((1, 4),)), (row,))
        ps = {"source": (src,), "intermediate": (mid,), "both": (mid, other), "same twice": (mid, mid)}[parents]
        shapes = tuple(p.shape for p in ps)
        r = np.zeros((3, 4))
        if how == "slots":
            t = T._wrap_op(r, "add", ps, shapes)
        else:
            t = T._wrap_array(r, Node("add", (3, 4), ElementwiseMap((3, 4), shapes), ps))
        made.append((t, mid, other))
    (a, mid_a, other_a), (b, mid_b, other_b) = made
    sa, sb = _slots_of(a, T.TrackedArray), _slots_of(b, T.TrackedArray)
    assert sa.keys() == sb.keys() and sa.pop("_node_") is a._node_ and sb.pop("_node_") is b._node_
    assert sa.pop("_data") is not sb.pop("_data") and sa == sb
    na, nb = _slots_of(a._node_, Node), _slots_of(b._node_, Node)
    assert na.pop("id") < nb.pop("id")
    ma, mb = na.pop("map"), nb.pop("map")
    assert type(ma) is type(mb) is ElementwiseMap
    assert (ma.out_shape, ma.parent_shapes, ma.valid) == (mb.out_shape, mb.parent_shapes, mb.valid)
    pa, pb = na.pop("parents"), nb.pop("parents")
    ka, kb = na.pop("kids"), nb.pop("kids")
    assert kb is None and ka is (T.READERS_NOT_KEPT if T._SMALL_DEATH[0] > 12 else None)
    assert [p.op for p in pa] == [p.op for p in pb] and na == nb
    def readers(p):
        k = p.kids
        return [] if k is None else [w() for w in (k if type(k) is list else [k])]

    for pa_, pb_ in ((mid_a, mid_b), (other_a, other_b)):
        ra, rb = readers(pa_), readers(pb_)
        assert len(ra) == len(rb) == {"source": 0, "intermediate": pa_ is mid_a, "both": 1,
                                      "same twice": 2 * (pa_ is mid_a)}[parents]
        assert all(x is a._node_ for x in ra) and all(x is b._node_ for x in rb)
    # a full reduction: the same, with the map given (one per input shape, shared)
    t = T._wrap_op(np.zeros(()), "sum", (mid_a,), None, ReduceMap((3, 4), (0, 1), (), ((3, 4),)))
    assert _slots_of(t._node_, Node).keys() == _slots_of(b._node_, Node).keys()
    assert t._node_.map.kind == "reduce" and t._node_.parents == (mid_a,)


@pytest.mark.parametrize("shape", [(5,), (3, 4), ()])
def test_full_reductions_of_one_shape_share_their_map_and_answer_alike(shape):
    # the map of a reduction of every cell depends on the input's shape alone: arrays of one shape share
    # it, and every reduction answers with every cell of its own input (by definition)
    wh.reset()
    g = np.random.default_rng(2)
    a = wh.track(g.random(shape), name="a")
    b = wh.track(g.random(shape), name="b")
    ys = [a.sum(), b.mean(), (a * 2).max(), b.min(), np.sum(a), np.mean(b)]
    # (the maximum's node answers through a folded relation where the dead product was folded into it)
    assert len({id(y._node.map) for y in ys if y._node.link is None}) == 1
    n = int(np.prod(shape))
    for y, name in zip(ys, "ababab"):
        assert y.shape == ()
        res = wh.backward(y, ())
        assert res.complete and sorted(map(tuple, res[name].tolist())) == sorted(np.ndindex(*shape))[:n]


def test_small_results_keep_no_readers_and_answers_stay_exact():
    # a small elementwise result does not record its readers (its death hands nothing to composition); read
    # by an operator, a gather (whose node records its readers) and a view, then dropped, every answer is
    # still each cell's own source cell, by definition (composition forced or not)
    from whence import compose
    from whence.graph import READERS_NOT_KEPT
    for mode in ("on", "force"):
        old = compose.set_mode(mode)
        try:
            wh.reset()
            a = wh.track(np.arange(10.0), name="a")
            t = a * 2
            assert (t._node.kids is READERS_NOT_KEPT) == (mode == "on")
            idx = np.array([3, 1, 3, 9])
            u = t[idx] + 1
            v = (t + 1)[::-1]
            w = np.sqrt(t)[idx]
            del t
            compose.flush()
            tp = np.arange(10.0) * 2
            for y, want, rows in ((u, tp[idx] + 1, idx), (v, (tp + 1)[::-1], np.arange(10)[::-1]),
                                  (w, np.sqrt(tp)[idx], idx)):
                np.testing.assert_array_equal(np.asarray(y), want)
                for c in range(len(rows)):
                    res = wh.backward(y, (c,))
                    assert res.complete and res["a"].tolist() == [[int(rows[c])]], (mode, c)
        finally:
            compose.set_mode(old)


@pytest.mark.parametrize("n", [5, 70_000])
def test_an_operator_on_small_operands_wraps_as_wrap_op_does(n):
    # the binary operators write tracked._wrap_op out for small operands (large ones go through whence.elision,
    # which calls it): the result's wrapper, node and map are what _wrap_op makes of the same values (the
    # node's id and a large result's birth aside), for a scalar, a plain and a tracked operand, both orders
    from whence.graph import Node
    wh.reset()
    g = np.random.default_rng(3)
    a = wh.track(g.random(n), name="a")
    t = a * 1.0  # an intermediate parent, keeping or not keeping its readers as its size says
    for other in (2.0, g.random(n), a):
        extra = (other._node_,) if other is a else ()
        for y, pn in ((t + other, (t._node_,) + extra), (other - t, extra + (t._node_,))):
            ref = T._wrap_op(np.asarray(y).copy(), y._node_.op, pn, tuple(p.shape for p in pn))
            sy, sr = _slots_of(y, T.TrackedArray), _slots_of(ref, T.TrackedArray)
            ny, nr = _slots_of(sy.pop("_node_"), Node), _slots_of(sr.pop("_node_"), Node)
            for k in ("_data", "_birth"):
                sy.pop(k), sr.pop(k)
            assert sy == sr and ny.pop("id") < nr.pop("id")
            my, mr = ny.pop("map"), nr.pop("map")
            assert (type(my), my.out_shape, my.parent_shapes, my.valid) == (
                type(mr), mr.out_shape, mr.parent_shapes, mr.valid)
            assert ny == nr
