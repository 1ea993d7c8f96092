"""Temporary elision (whence.elision): a temporary operand's buffer takes the result, never a buffer that
anything else can still see.

Elision runs here on small arrays (``elision.min_bytes(0)``).  Checked:

- random operator chains (binary and unary operators, direct ufunc calls, bool logic, broadcasting,
  Python and numpy scalars) written as real Python code, with some intermediates kept alive by the test
  in variables: the values equal plain numpy's, bit for bit; every cell's lineage equals the brute-force
  oracle's, for the result and for every kept intermediate, whose values are checked again after the
  chain ran; and the chain did elide (the count is compared with the number of operators that had a
  temporary operand of the result's dtype);
- a chain whose every intermediate is held in a list: nothing elided, values and lineage untouched;
- each other way an operand can be seen (a variable, a list, a weak reference, a view of it, its buffer, a pending
  sort permutation, a source, ``functools.partial``, ``itertools.starmap``, an object array, a debugger's
  tracing, a walrus): no elision, values untouched, also when the instruction-level check is bypassed
  (the reference count alone refuses);
- the numpy oracle grid of ``test_oracle_ops`` and random pipelines of every bucket (``strategies``) with
  elision active.
"""

from __future__ import annotations

import functools
import gc
import itertools
import pathlib
import sys
import warnings
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import whence as wh
from whence import compose, elision

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import oracle as O  # noqa: E402
from strategies import cfg  # noqa: E402

pytestmark = pytest.mark.skipif(not elision.ACTIVE, reason="elision is off on this interpreter / numpy")


@pytest.fixture(autouse=True)
def _small():
    wh.reset()
    elision.stats(reset=True)
    with elision.min_bytes(0), np.errstate(all="ignore"):
        yield
    wh.reset()


def _check_lineage(y, yo, ndims, tag):
    assert wh.is_tracked(y), tag
    np.testing.assert_array_equal(np.asarray(y), yo.val, err_msg=tag)
    for o in np.ndindex(*yo.shape):
        res = wh.backward(y, o)
        O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(o), yo.partial(o), False,
                  f"{tag}: backward{o}")


# --------------------------------------------------------------------------------- random operator chains

_BIN = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide, "**": np.power}
_BOOL = {"&": np.logical_and, "|": np.logical_or, "^": np.logical_xor}
_UNARY_CALLS = ["tanh", "exp", "negative", "sqrt", "absolute", "sin"]


class _Expr:
    """One generated expression: its code, its oracle value, and how many operators in it had a temporary
    operand whose buffer fits the result (the elisions the chain must do)."""

    def __init__(self, code, ora, temp, fits, born=True):
        self.code = code      # Python source
        self.ora = ora        # OArray
        self.temp = temp      # the value is a fresh temporary of the elementwise path
        self.fits = fits      # elisions expected inside
        self.born = born      # computed where whence sees the instruction (a numpy scalar on the left of an
        #                       operator calls the ufunc from C: no birth, so no elision of this value later)


def _elementwise(fn, *xs):
    return O.elementwise(fn, *[x.ora if isinstance(x, _Expr) else x for x in xs])


@st.composite
def _float_expr(draw, env, depth):
    """A float expression over the sources and kept names of ``env`` (name -> OArray)."""
    if depth == 0 or draw(st.integers(0, 4)) == 0:
        name = draw(st.sampled_from(sorted(env)))
        return _Expr(name, env[name], False, 0)
    kind = draw(st.sampled_from(["bin", "bin", "bin", "scalar", "rscalar", "unary_op", "call1", "call2"]))
    if kind == "bin":
        op = draw(st.sampled_from(["+", "-", "*", "/"]))
        x = draw(_float_expr(env, depth - 1))
        y = draw(_float_expr(env, depth - 1))
        return _combine(f"({x.code} {op} {y.code})", _elementwise(_BIN[op], x, y), [x, y])
    if kind in ("scalar", "rscalar"):
        op = draw(st.sampled_from(["+", "-", "*", "/", "**"]))
        c = draw(st.sampled_from([2, 0.5, 3.0, "np.float64(1.5)", -1]))
        cv = eval(str(c), {"np": np})
        if op == "**":
            c, cv = 2, 2
        x = draw(_float_expr(env, depth - 1))
        if kind == "scalar":
            return _combine(f"({x.code} {op} {c})", _elementwise(_BIN[op], x, cv), [x])
        return _combine(f"({c} {op} {x.code})", _elementwise(_BIN[op], cv, x), [x],
                        born=not isinstance(cv, np.generic))
    if kind == "unary_op":
        x = draw(_float_expr(env, depth - 1))
        return _combine(f"(-{x.code})", _elementwise(np.negative, x), [x])
    if kind == "call1":
        f = draw(st.sampled_from(_UNARY_CALLS))
        x = draw(_float_expr(env, depth - 1))
        return _combine(f"np.{f}({x.code})", _elementwise(getattr(np, f), x), [x])
    op = draw(st.sampled_from(["add", "multiply", "subtract", "maximum"]))
    x = draw(_float_expr(env, depth - 1))
    y = draw(_float_expr(env, depth - 1))
    return _combine(f"np.{op}({x.code}, {y.code})", _elementwise(getattr(np, op), x, y), [x, y])


def _combine(code, ora, operands, born=True):
    fits = sum(o.fits for o in operands)
    if any(o.temp and o.born and o.ora.shape == ora.shape and o.ora.dtype == ora.dtype for o in operands):
        fits += 1
    return _Expr(code, ora, True, fits, born)


@st.composite
def _bool_expr(draw, env, depth):
    x = draw(_float_expr(env, 1))
    c = draw(st.sampled_from([0.0, 0.5, -0.5]))
    cmp_ = draw(st.sampled_from([">", "<"]))
    e = _Expr(f"({x.code} {cmp_} {c})", _elementwise(np.greater if cmp_ == ">" else np.less, x, c), True,
              x.fits)
    if depth == 0:
        return e
    kind = draw(st.sampled_from(["bin", "invert"]))
    if kind == "invert":
        return _combine(f"(~{e.code})", _elementwise(np.invert, e), [e])
    op = draw(st.sampled_from(sorted(_BOOL)))
    y = draw(_bool_expr(env, depth - 1))
    return _combine(f"({e.code} {op} {y.code})", _elementwise(_BOOL[op], e, y), [e, y])


@st.composite
def chains(draw):
    """Sources ``a``, ``b`` (R, C) and ``r`` (1, C); a few kept intermediates ``k0, k1, ...``; a result."""
    R = draw(st.integers(1, 4))
    C = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    vals = {"a": rng.uniform(0.1, 2.0, (R, C)), "b": rng.uniform(-2.0, 2.0, (R, C)),
            "r": rng.uniform(0.1, 2.0, (1, C))}
    env = {n: O.OArray.source(n, v) for n, v in vals.items()}
    lines = []
    kept = []
    for i in range(draw(st.integers(0, 2))):
        e = draw(_float_expr(env, 2))
        name = f"k{i}"
        lines.append(f"    {name} = {e.code}")
        env[name] = e.ora
        kept.append(name)
    if draw(st.booleans()):
        e = draw(_bool_expr(env, 2))
    else:
        e = draw(_float_expr(env, 4))
    lines.append(f"    y = {e.code}")
    src = "def chain(np, a, b, r):\n" + "\n".join(lines) + "\n    return y, {" + \
        ", ".join(f"{k!r}: {k}" for k in kept) + "}\n"
    return vals, env, kept, src, e


@cfg(120)
@given(chains())
def test_random_operator_chains(case):
    vals, env, kept, src, e = case
    ns = {}
    exec(compile(src, "<chain>", "exec"), ns)
    chain = ns["chain"]
    y_plain, kept_plain = chain(np, *(vals[n].copy() for n in "abr"))
    wh.reset()
    tracked = [wh.track(vals[n], name=n) for n in "abr"]
    elision.stats(reset=True)
    y, kept_t = chain(np, *tracked)
    st_ = elision.stats()
    gc.collect(1)  # the young generations: a whole suite's old objects make a full collection slow
    ndims = {"a": 2, "b": 2, "r": 2}
    np.testing.assert_array_equal(np.asarray(y), np.asarray(y_plain), err_msg=src)
    _check_lineage(y, e.ora, ndims, src)
    for k in kept:
        np.testing.assert_array_equal(np.asarray(kept_t[k]), np.asarray(kept_plain[k]), err_msg=f"{src}: {k}")
        _check_lineage(kept_t[k], env[k], ndims, f"{src}: {k}")
    for n, t in zip("abr", tracked):
        np.testing.assert_array_equal(np.asarray(t), vals[n], err_msg=f"{src}: source {n}")
    # the operators of the last line that had a temporary operand fitting the result elided
    assert st_["elided"] >= e.fits, (src, st_, e.fits)


# ---------------------------------------------------------------------------------- held intermediates

def test_every_intermediate_held_in_a_list():
    rng = np.random.default_rng(3)
    av, bv = rng.uniform(0.1, 2, (3, 4)), rng.uniform(0.1, 2, (3, 4))
    a, b = wh.track(av, name="a"), wh.track(bv, name="b")
    held = []

    def h(x):
        held.append(x)
        return x

    y = h(np.tanh(h(h(h(h(a * 2) + 1) * b) - h(-h(a / b)))))
    plain = []

    def hp(x):
        plain.append(x.copy())
        return x

    yp = hp(np.tanh(hp(hp(hp(hp(av * 2) + 1) * bv) - hp(-hp(av / bv)))))
    assert elision.stats()["elided"] == 0
    np.testing.assert_array_equal(np.asarray(y), yp)
    oa, ob = O.OArray.source("a", av), O.OArray.source("b", bv)
    o1 = O.elementwise(np.multiply, oa, 2)
    o2 = O.elementwise(np.add, o1, 1)
    o3 = O.elementwise(np.multiply, o2, ob)
    o4 = O.elementwise(np.true_divide, oa, ob)
    o5 = O.elementwise(np.negative, o4)
    o6 = O.elementwise(np.subtract, o3, o5)
    o7 = O.elementwise(np.tanh, o6)
    ndims = {"a": 2, "b": 2}
    assert len(held) == len(plain) == 7
    for t, p, o, i in zip(held, plain, [o1, o2, o3, o4, o5, o6, o7], range(7)):
        np.testing.assert_array_equal(np.asarray(t), p, err_msg=f"intermediate {i}")
        _check_lineage(t, o, ndims, f"intermediate {i}")


def test_named_intermediates_keep_their_values():
    av = np.arange(12.0).reshape(3, 4)
    a = wh.track(av, name="a")
    t1 = a * 2
    t2 = t1 + 1
    t3 = -t2
    t4 = np.exp(t3 * 0.1)
    np.testing.assert_array_equal(np.asarray(t1), av * 2)
    np.testing.assert_array_equal(np.asarray(t2), av * 2 + 1)
    np.testing.assert_array_equal(np.asarray(t3), -(av * 2 + 1))
    np.testing.assert_array_equal(np.asarray(t4), np.exp(-(av * 2 + 1) * 0.1))
    np.testing.assert_array_equal(np.asarray(a), av)


# ------------------------------------------------------------------ the ways an operand can still be seen

def _seen_cases(a):
    """(label, function returning (result, the operand that must keep its values, those values))."""
    A = np.asarray(a).copy()

    def variable():
        t = a * 2
        return t + 1, t, A * 2

    def in_list():
        L = [a * 2]
        return L[0] + 1, L[0], A * 2

    def weak():
        refs = []

        def register(x):  # a registry that holds its arrays weakly
            refs.append(weakref.ref(x))
            return x

        return register(a * 2) + 1, None, None

    def view_base():
        t = a * 2
        v = t[::1]
        del t
        base = v._root
        return base + 1, v, A * 2

    def numpy_view():
        t = a * 2
        v = np.asarray(t)[...]
        y = t + 1
        return y, v, A * 2

    def pending_sort():
        t = a * 2
        s = np.sort(t, axis=-1)
        y = t + 1
        return y, s, np.sort(A * 2, axis=-1)

    def source():
        return a + 1, a, A

    def partial():
        p = functools.partial(np.tanh, a * 2)
        p()
        return p(), p.args[0], A * 2

    def starmap():
        L = [(a * 2,)]
        list(itertools.starmap(np.negative, L))
        return L[0][0] + 0, L[0][0], A * 2

    def object_array():
        o = np.empty(2, dtype=object)
        o[0] = a * 2
        o[1] = a * 3
        o + 1
        (o.reshape(-1) + 1)
        return o[0] * 1, o[0], A * 2

    def buffer_kept():
        kept = []

        def keep_buffer(x):  # holds the operand's buffer, not the operand
            kept.append(np.asarray(x))
            return x

        return keep_buffer(a * 2) + 1, kept[0], A * 2

    def dunder():
        t = a * 2
        return t.__add__(1), t, A * 2

    def walrus():
        y = (t := a * 2) + 1
        return y, t, A * 2

    def traced():
        frames = []

        def tracer(frame, event, arg):
            frames.append(frame)
            frame.f_locals  # a debugger reads every frame's variables
            return tracer

        sys.settrace(tracer)
        try:
            t = a * 2
            y = t + 1
        finally:
            sys.settrace(None)
        return y, t, A * 2

    return [("variable", variable), ("list", in_list), ("weakref", weak), ("view base", view_base),
            ("numpy view", numpy_view), ("pending sort", pending_sort), ("source", source), ("partial", partial),
            ("starmap", starmap), ("object array", object_array), ("buffer kept", buffer_kept), ("dunder call", dunder),
            ("walrus", walrus),
            ("traced", traced)]


def _bypass_instruction_checks(monkeypatch):
    """Make every birth and producer check pass: what remains are the counts of references."""
    monkeypatch.setattr(elision, "_CHECK_INSTRUCTIONS", False)


# held by C code with exactly the one reference the interpreter's stack would hold: only the birth and
# producer checks refuse these (the operand is not the value the user's instruction reads)
_C_HELD = {"object array", "partial", "starmap"}


@pytest.mark.parametrize("bypass", [False, True], ids=["all checks", "reference count alone"])
@pytest.mark.parametrize("label", [c[0] for c in _seen_cases(np.zeros(1))])
def test_operands_that_can_still_be_seen_are_not_written(label, bypass, monkeypatch):
    if bypass and label in _C_HELD:
        pytest.skip("refused by the instruction checks only")
    a = wh.track(np.random.default_rng(0).uniform(0.1, 2, (3, 4)), name="a")
    if bypass:
        _bypass_instruction_checks(monkeypatch)
    fn = dict(_seen_cases(a))[label]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elision.stats(reset=True)
        y, seen, want = fn()
    assert elision.stats()["elided"] == 0, label
    if seen is not None:
        np.testing.assert_array_equal(np.asarray(seen), want, err_msg=label)


def test_reference_count_alone_lets_temporaries_through(monkeypatch):
    _bypass_instruction_checks(monkeypatch)
    a = wh.track(np.arange(12.0).reshape(3, 4), name="a")
    y = (a * 2 + 1) * 3
    assert elision.stats()["elided"] == 2
    np.testing.assert_array_equal(np.asarray(y), (np.arange(12.0).reshape(3, 4) * 2 + 1) * 3)


def test_temporaries_are_elided_and_lineage_is_kept():
    av = np.random.default_rng(1).uniform(0.1, 2, (3, 4))
    a = wh.track(av, name="a")
    cases = [
        ("a * 2 + 1", lambda: a * 2 + 1, av * 2 + 1, 1),
        ("2 + a * 2", lambda: 2 + a * 2, 2 + av * 2, 1),
        ("((a * a) * a + 1) * 2", lambda: ((a * a) * a + 1) * 2, ((av * av) * av + 1) * 2, 3),
        ("(a * 2 + 1) - a.mean()", lambda: (a * 2 + 1) - a.mean(), (av * 2 + 1) - av.mean(), 2),
        ("-(a * 2)", lambda: -(a * 2), -(av * 2), 1),
        ("np.tanh(a * 2)", lambda: np.tanh(a * 2), np.tanh(av * 2), 1),
        ("np.add(np.multiply(a, 2), 1)", lambda: np.add(np.multiply(a, 2), 1), av * 2 + 1, 1),
        ("~(a > 1) & (a < 1.5)", lambda: ~(a > 1) & (a < 1.5), ~(av > 1) & (av < 1.5), 2),
    ]
    oa = O.OArray.source("a", av)
    for code, fn, want, n in cases:
        elision.stats(reset=True)
        y = fn()
        assert elision.stats()["elided"] == n, code
        np.testing.assert_array_equal(np.asarray(y), want, err_msg=code)
        yo = O.elementwise(np.add, oa, 0.0)  # every elementwise chain of one source: cell (i, j) <- a[i, j]
        if code.startswith("(a * 2 + 1) - a.mean()"):
            yo = O.elementwise(np.subtract, yo, O.reduce(np.mean, oa))
        _check_lineage(y, O.OArray(want, yo.rec), {"a": 2}, code)
    np.testing.assert_array_equal(np.asarray(a), av)


def test_no_elision_when_dtype_or_shape_differ():
    a = wh.track(np.arange(12).reshape(3, 4), name="a")        # int64
    r = wh.track(np.arange(4.0).reshape(1, 4), name="r")
    for fn, want in [(lambda: (a * 2) / 3, (np.arange(12).reshape(3, 4) * 2) / 3),        # int -> float
                     (lambda: (a * 2) > 3, np.arange(12).reshape(3, 4) * 2 > 3),        # int -> bool
                     (lambda: (r * 2) + a, np.arange(4.0).reshape(1, 4) * 2 + np.arange(12).reshape(3, 4)),
                     (lambda: (a * 2) + 0.5, np.arange(12).reshape(3, 4) * 2 + 0.5)]:
        elision.stats(reset=True)
        np.testing.assert_array_equal(np.asarray(fn()), want)
        assert elision.stats()["elided"] == 0


def test_errors_leave_no_trace():
    a = wh.track(np.arange(1.0, 13.0).reshape(3, 4), name="a")
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            (a * 0) ** -1
    assert elision.stats()["elided"] == 0
    with pytest.raises(ValueError):
        with elision.min_bytes(-1):
            pass


def test_large_arrays_use_the_default_threshold():
    with elision.min_bytes(elision.MIN_BYTES):
        small = wh.track(np.ones(1000), name="small")
        big = wh.track(np.ones(elision.MIN_BYTES // 8), name="big")
        elision.stats(reset=True)
        small * 2 + 1
        assert elision.stats() == {"elided": 0, "fresh": 0}
        y = big * 2 + 1
        assert elision.stats() == {"elided": 1, "fresh": 1}
        assert float(y[0]) == 3.0


# ------------------------------------------------------------------------- the oracle grid, elision active

import test_oracle_ops as _grid  # noqa: E402


@pytest.mark.parametrize("case", _grid.CASES, ids=repr)
def test_oracle_grid_with_elision(case):
    _grid.test_function_against_oracle(case, 0)


# -------------------------------------------------------------- random pipelines of every bucket, elision active

import strategies as _S  # noqa: E402
import test_oracle_pipelines as _pipes  # noqa: E402


@cfg(120)
@given(_S.pipelines(ops=_S.NO_OPAQUE))
def test_random_pipelines_with_elision(p):
    with elision.min_bytes(0):
        pool = _pipes.run(p)
    _pipes.check_cells(p, pool, everything=True)


# --------------------------------------------------------------- the temporary's wrapper takes the result

def test_an_elided_chain_is_one_hop_and_keeps_every_operation():
    # each elided temporary's node is folded into the next operation's as the operation runs (the wrapper
    # of the temporary becomes the result: nothing dies in between)
    rng = np.random.default_rng(4)
    av, bv = rng.uniform(0.1, 2, (3, 4)), rng.uniform(0.1, 2, (1, 4))
    a, b = wh.track(av, name="a"), wh.track(bv, name="b")
    before = compose.stats()["folded"]
    y = np.tanh(((a * 2 + 1) * b - 3) / 2)
    assert elision.stats()["elided"] == 5
    assert compose.stats()["folded"] - before == 5
    m, parents, control = y._node.lineage
    assert parents == (a._node, b._node) and not control
    assert m.parent_shapes == ((3, 4), (1, 4))
    assert wh.ops(y) == ["multiply", "add", "multiply", "subtract", "divide", "tanh"]
    np.testing.assert_array_equal(np.asarray(y), np.tanh(((av * 2 + 1) * bv - 3) / 2))
    for o in np.ndindex(3, 4):
        r = wh.backward(y, o)
        assert r["a"].tolist() == [list(o)] and r["b"].tolist() == [[0, o[1]]]


def test_an_elided_chain_keeps_every_map_when_composition_is_off():
    a = wh.track(np.arange(12.0).reshape(3, 4), name="a")
    old = compose.set_mode("off")
    try:
        y = (a * 2 + 1) * 3
    finally:
        compose.set_mode(old)
    assert elision.stats()["elided"] == 2
    assert y._node.link is None and y._node.parents[0].op == "add"
    assert wh.backward(y, (2, 1))["a"].tolist() == [[2, 1]]


def test_a_temporary_whose_node_is_held_gets_a_new_wrapper(monkeypatch):
    # a node referred to by something besides its array is never folded: the result gets a wrapper of its
    # own (the temporary's buffer still takes the values), and every map stays as recorded
    from whence import graph
    held = []

    class Holding(graph.Node):
        __slots__ = ()

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            held.append(self)

    def holding(*args, **kwargs):  # (results in buffers of their own are wrapped by tracked._wrap_op)
        t = wrap_op(*args, **kwargs)
        held.append(t._node_)
        return t

    wrap_op = elision._wrap_op
    monkeypatch.setattr(elision, "Node", Holding)
    monkeypatch.setattr(elision, "_wrap_op", holding)
    av = np.arange(12.0).reshape(3, 4)
    a = wh.track(av, name="a")
    before = compose.stats()["folded"]
    y = ((a * 2 + 1) * 3) - 1
    assert elision.stats()["elided"] == 3
    assert compose.stats()["folded"] == before
    assert all(n.link is None and n.map is not None for n in held)
    np.testing.assert_array_equal(np.asarray(y), (av * 2 + 1) * 3 - 1)
    for o in [(0, 0), (2, 3)]:
        assert wh.backward(y, o)["a"].tolist() == [list(o)]
    assert wh.ops(y) == ["multiply", "add", "multiply", "subtract"]


def test_a_held_operand_read_by_many_elided_operations_keeps_few_readers():
    # ``(a * 2 + 1) - m`` with ``m`` held: each call folds the elided temporary into a new reader of ``m``;
    # m's list of readers must not keep the dead ones (it grew by one per call, and each call scanned it all)
    wh.reset()
    g = np.random.default_rng(5)
    n = 40_000  # large enough to elide
    a = wh.track(g.random(n), name="a")
    big = wh.track(g.random(n), name="big")
    for m in (a.mean(), big * 3):  # a small result (records no readers) and a large one (records them)
        ys = []
        for i in range(300):
            y = (a * 2 + 1) - m
            if i % 100 == 0:
                ys.append(y)
            del y
        k = m._node.kids
        kept = [] if k is None else [k] if type(k) is not list else k
        assert len(kept) < 32, len(kept)
        truth = (np.asarray(a) * 2 + 1) - np.asarray(m)
        for y in ys:
            np.testing.assert_array_equal(np.asarray(y), truth)
            r = wh.backward(y, (7,))
            # by definition: cell 7 of a, and what m's cell reads (every cell of a; cell 7 of big)
            assert r.complete and set(r) == ({"a", "big"} if m.shape else {"a"})
            assert r["a"].tolist() == ([[7]] if m.shape else [[i] for i in range(n)])
            if m.shape:
                assert r["big"].tolist() == [[7]]
