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
