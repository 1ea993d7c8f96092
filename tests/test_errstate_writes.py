"""In-place writes that numpy completes and then reports an error for (``np.errstate(... ="raise")``).

Under ``np.errstate(over="raise")`` (or ``invalid``, ``divide``, ``under``), ``a += b``, ``np.add(a, b, out=a)``,
``np.add.at(a, i, b)`` and a cast in ``a[k] = v`` write every cell and then raise ``FloatingPointError``.  The
lineage must follow the values now in memory.  Random sequences of such writes, with values chosen to overflow,
underflow, divide by zero and cast NaN to integers, are run on tracked arrays under ``np.errstate(all="raise")``
and on the oracle (``tests/oracle.py``) under ``np.errstate(all="ignore")``: the values must agree (numpy did
write) and so must every cell's lineage.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import oracle as O  # noqa: E402
import strategies as S  # noqa: E402

import whence as wh  # noqa: E402

SPECIAL = [1e308, -1e308, 1e-300, 0.0, 1.5, -2.0, 3.0, np.inf, np.nan, 7.0]
FLOATS = ("a", "b", "c")


def _lineage(x, cell):
    r = wh.backward(x, cell)
    assert r.complete, (cell, r.reasons)
    return {(name, tuple(int(v) for v in c)) for name in r for c in np.asarray(r[name]).reshape(len(r[name]), -1)}


def _check(live, ora):
    for name in live:
        x, o = live[name], ora[name]
        assert np.array_equal(np.asarray(x), o.val, equal_nan=True), (name, np.asarray(x), o.val)
        for cell in np.ndindex(*o.shape):
            assert _lineage(x, cell) == set(o.lineage(cell)), (name, cell)


@st.composite
def programs(draw):
    shape = draw(st.sampled_from([(4,), (2, 3), (3, 2), (1, 4)]))
    n = int(np.prod(shape))
    vals = {k: np.array(draw(st.lists(st.sampled_from(SPECIAL), min_size=n, max_size=n)), float).reshape(shape)
            for k in FLOATS}
    ints = np.array(draw(st.lists(st.integers(-100, 100), min_size=n, max_size=n)), np.int8).reshape(shape)
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["iop", "out", "cast", "at"]))
        if kind == "iop":
            steps.append(("iop", draw(st.sampled_from([np.add, np.multiply, np.divide, np.subtract])),
                          draw(st.sampled_from(FLOATS)), draw(st.sampled_from(FLOATS))))
        elif kind == "out":
            steps.append(("out", draw(st.sampled_from([np.add, np.multiply, np.divide])),
                          draw(st.sampled_from(FLOATS)), draw(st.sampled_from(FLOATS)), draw(st.sampled_from(FLOATS))))
        elif kind == "cast":
            flat = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n, unique=True))
            steps.append(("cast", draw(st.sampled_from(FLOATS)), np.array(flat, np.int64)))
        else:
            flat = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=2 * n))
            steps.append(("at", draw(st.sampled_from([np.add, np.multiply, np.divide])),
                          draw(st.sampled_from(FLOATS)), draw(st.sampled_from(FLOATS)), np.array(flat, np.int64)))
    return shape, vals, ints, steps


@S.cfg(60)
@given(programs())
def test_writes_that_raise_after_writing_leave_the_lineage_of_the_values(prog):
    shape, vals, ints, steps = prog
    wh.reset()
    live = {k: wh.track(v.copy(), name=k) for k, v in vals.items()}
    live["t"] = wh.track(ints.copy(), name="t")
    ora = {k: O.OArray.source(k, v.copy()) for k, v in vals.items()}
    ora["t"] = O.OArray.source("t", ints.copy())
    for step in steps:
        raised = False
        with np.errstate(all="raise"):
            try:
                if step[0] == "iop":
                    _, fn, x, y = step
                    fn(live[x], live[y], out=live[x])  # what x op= y does
                elif step[0] == "out":
                    _, fn, x, y, dst = step
                    fn(live[x], live[y], out=live[dst])
                elif step[0] == "cast":
                    _, src, flat = step
                    k = np.unravel_index(flat, shape)
                    live["t"][k] = live[src][k]
                else:
                    _, fn, x, y, flat = step
                    k = np.unravel_index(flat, shape)
                    fn.at(live[x], k, live[y][k])
            except FloatingPointError:
                raised = True
        with np.errstate(all="ignore"):
            if step[0] == "iop":
                O.iop(fn, ora[x], ora[y])
            elif step[0] == "out":
                O.ufunc_out(fn, ora[x], ora[y], out=ora[dst])
            elif step[0] == "cast":
                O.setitem(ora["t"], k, O.getitem(ora[src], k))
            else:
                O.ufunc_at(fn, ora[x], k, O.getitem(ora[y], k))
        _check(live, ora)
        del raised


@pytest.mark.parametrize("write", ["iadd", "out", "setitem_int8", "at", "out_where", "copyto_int8", "put_int8"])
def test_the_reported_cases(write):
    """The three writes of the report (and ufunc.at, out= with where=): they raise, and the written cells'
    lineage is the new one."""
    wh.reset()
    a = wh.track(np.array([1.0, 1e308, 2.0]), name="a")
    b = wh.track(np.array([5.0, 1e308, 6.0]), name="b")
    t = wh.track(np.zeros(3, np.int8), name="t")
    v = b + 0.5  # 1e308 does not fit an int8: the cast is invalid
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):
        if write == "iadd":
            a += b
        elif write == "out":
            np.add(a, b, out=a)
        elif write == "at":
            np.add.at(a, [1], b[1:2])
        elif write == "out_where":
            np.add(a, b, out=a, where=np.array([False, True, False]))
        elif write == "copyto_int8":
            np.copyto(t, v, casting="unsafe")
        elif write == "put_int8":
            np.put(t, [0, 1, 2], v)
        else:
            t[...] = v
    if write.endswith("int8"):
        for i in range(3):
            assert sorted(wh.backward(t, (i,))) == ["b"] and wh.backward(t, (i,)).complete
    else:
        r = wh.backward(a, (1,))
        assert sorted(r) == ["a", "b"] and r["b"].tolist() == [[1]] and r.complete
    if write == "out_where":
        assert sorted(wh.backward(a, (0,))) == ["a"]  # not written
