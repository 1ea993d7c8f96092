"""Property tests: whence's lineage queries against a brute-force oracle on random pipelines.

Every example is a random numpy pipeline (tests/strategies.py) over 2-3 named
sources; the same code runs on whence TrackedArrays and, cell by cell, on the
oracle (tests/oracle.py).  The final array and a few earlier ones are queried.
A failing example prints as a runnable script (``Pipeline('''...''')``).

The rules (docs/semantics.md): an answer marked FULL must equal the oracle's
set exactly; an answer through an opaque op must be marked PARTIAL and be a
superset; nothing may be PARTIAL when no opaque op was used.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pathlib
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import oracle as O
import strategies as S

wh = pytest.importorskip("whence")

SCALE = float(os.environ.get("WHENCE_ORACLE_SCALE", "1"))


def cfg(n, **kw):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None, report_multiple_bugs=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much], **kw)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def run(p):
    """Replay a pipeline on whence; check every array is tracked and has numpy's values."""
    pool, warns = p.replay()
    for var, y, yo in zip(p.vars, pool, p.oracle):
        assert wh.is_tracked(y), f"{var} is a {type(y).__name__}, not a TrackedArray\n{p.script()}"
        v = np.asarray(y)
        assert v.shape == yo.shape, f"{var}: shape {v.shape} != numpy's {yo.shape}\n{p.script()}"
        np.testing.assert_allclose(v, yo.val, rtol=1e-9, atol=1e-12, equal_nan=True,
                                   err_msg=f"{var}: values differ from numpy's\n{p.script()}")
    partial_warned = any(issubclass(w.category, wh.PartialLineageWarning) for w in warns)
    if p.has_opaque:
        assert partial_warned, f"no PartialLineageWarning for an opaque op\n{p.script()}"
    else:
        assert not partial_warned, "PartialLineageWarning without an opaque op:\n" + "\n".join(
            str(w.message) for w in warns if issubclass(w.category, wh.PartialLineageWarning)) + "\n" + p.script()
    return pool


def check_cells(p, pool, control=False, k=10, everything=False):
    ndims = p.source_ndims()
    for i in (range(len(pool)) if everything else p.output_indices()):
        y, yo = pool[i], p.oracle[i]
        for cell in O.sample_cells(yo.shape, k):
            ctx = f"backward({p.vars[i]}, {cell}{', control=True' if control else ''})\n{p.script()}"
            res = wh.backward(y, cell, control=control) if control else wh.backward(y, cell)
            got = O.result_set(res, ndims)
            O.compare(got, bool(res.complete), yo.lineage(cell, control), yo.partial(cell, control),
                      p.has_opaque, ctx)


def region_items(draw, shape):
    items = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "all"])) if n else "all"
        if kind == "int":
            items.append(draw(st.integers(0, n - 1)))
        elif kind == "slice":
            a = draw(st.integers(0, n))
            b = draw(st.integers(a, n))
            step = draw(st.sampled_from([None, 1, 2]))
            items.append(slice(a, b, step))
        else:
            items.append(slice(None))
    return tuple(items)


# ----------------------------------------------------------------------------
# backward, cell by cell
# ----------------------------------------------------------------------------

@cfg(500)
@given(S.pipelines(ops=S.NO_OPAQUE))
def test_backward_cells(p):
    pool = run(p)
    check_cells(p, pool)


@cfg(400)
@given(S.pipelines(ops=S.CONTROL_HEAVY))
def test_backward_control(p):
    """control=True adds exactly the mask / condition / index-array cells that chose each copy."""
    assume(p.control_checkable)
    pool = run(p)
    check_cells(p, pool, control=True, k=6, everything=True)


@cfg(200)
@given(S.pipelines(ops=S.NO_OPAQUE + ("opaque",) * 3))
def test_backward_with_opaque_ops(p):
    """Through linalg.inv / fft: PARTIAL and a superset; elsewhere still exact."""
    pool = run(p)
    check_cells(p, pool, k=6)
    if p.control_checkable:
        check_cells(p, pool, control=True, k=3)


@cfg(100)
@given(S.broadcast_pairs(), st.sampled_from(["add", "multiply", "maximum", "arctan2", "greater", "where"]),
       st.integers(0, 2**31 - 1))
def test_broadcast_pairs_elementwise(shapes2, fn, seed):
    """Every cell of a broadcast binary op (and of where with a broadcast condition), both operands tracked."""
    wh.reset()
    rng = np.random.default_rng(seed)
    (sa, sb) = shapes2
    va, vb = S.make_values(rng, sa), S.make_values(rng, sb)
    a, b = wh.track(va.copy(), name="a"), wh.track(vb.copy(), name="b")
    ao, bo = O.OArray.source("a", va), O.OArray.source("b", vb)
    if fn == "where":
        y, yo = np.where(a > 0, b, 0.0), O.where(O.elementwise(np.greater, ao, 0), bo, 0.0)
    else:
        f = getattr(np, fn)
        y, yo = f(a, b), O.elementwise(f, ao, bo)
    np.testing.assert_array_equal(np.asarray(y), yo.val)
    ndims = {"a": len(sa), "b": len(sb)}
    for cell in O.sample_cells(yo.shape, 16):
        for control in (False, True):
            res = wh.backward(y, cell, control=control)
            O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(cell, control), False, False,
                      f"np.{fn}(a{sa}, b{sb}): backward(y, {cell}, control={control})")


# ----------------------------------------------------------------------------
# unions, regions, masks
# ----------------------------------------------------------------------------

@cfg(300)
@given(S.pipelines(ops=S.NO_OPAQUE), st.data())
def test_backward_union_region_and_mask(p, data):
    pool = run(p)
    ndims = p.source_ndims()
    i = len(pool) - 1
    y, yo = pool[i], p.oracle[i]
    ctx = p.script()
    # everything
    res = wh.backward(y)
    O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(None), yo.partial(None), False,
              f"backward({p.vars[i]})\n{ctx}")
    # a region of ints and slices
    reg = region_items(data.draw, yo.shape)
    res = wh.backward(y, reg)
    O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(reg), yo.partial(reg), False,
              f"backward({p.vars[i]}, {reg})\n{ctx}")
    # a boolean mask of y's shape
    seed = data.draw(st.integers(0, 2**31))
    m = np.asarray(np.random.default_rng(seed).random(yo.shape) < 0.4)
    res = wh.backward(y, m)
    O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(m), yo.partial(m), False,
              f"backward({p.vars[i]}, mask={S.lit(m)})\n{ctx}")
    if p.control_checkable:
        res = wh.backward(y, m, control=True)
        O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(m, True), yo.partial(m, True), False,
                  f"backward({p.vars[i]}, mask={S.lit(m)}, control=True)\n{ctx}")


# ----------------------------------------------------------------------------
# forward
# ----------------------------------------------------------------------------

@cfg(250)
@given(S.pipelines(ops=S.NO_OPAQUE + ("opaque",)))
def test_forward_is_inverse_of_backward(p):
    """forward(src, cell, y) = {o : (src, cell) in lineage(y[o])}; extra cells only where PARTIAL."""
    pool = run(p)
    for i in p.output_indices(max_extra=1):
        _check_forward(p, pool, i, 6)


def _check_forward(p, pool, i, n_cells):
    """forward from ``n_cells`` sampled cells of every source into output ``i`` against the oracle's inverse."""
    srcs = {n: pool[k] for k, (n, _) in enumerate(p.sources)}
    y, yo = pool[i], p.oracle[i]
    inv = {}
    for o in np.ndindex(*yo.shape):
        for key in yo.rec[o].d:
            inv.setdefault(key, set()).add(o)
    for name, v in p.sources:
        for cell in O.sample_cells(np.shape(v), n_cells):
            ctx = f"forward({name}, {cell}, {p.vars[i]})\n{p.script()}"
            got = O.coords_set(wh.forward(srcs[name], cell, y), yo.ndim, ctx)
            exp = inv.get((name, cell), set())
            missing = exp - got
            extra = {o for o in got - exp if not yo.rec[o].pd}
            assert not missing and not extra, f"wrong forward lineage: {ctx}\n  missing {sorted(missing)}" \
                                              f"\n  extra {sorted(extra)}"


# ----------------------------------------------------------------------------
# composed maps: every intermediate dropped and collected, queries on composed relations
# ----------------------------------------------------------------------------
# A representative part of the tests above, run once more with every array that is not queried dropped and
# garbage collected (its map folds into its readers', whence.compose) and queries in the "force" mode
# (the relation of the array asked about is composed through every step first): the answers must be the
# same.  The whole suite runs in that mode with WHENCE_COMPOSE=force.

@contextlib.contextmanager
def forced_composition():
    old = wh.compose.set_mode("force")
    try:
        yield
    finally:
        wh.compose.set_mode(old)


def run_dropped(p, keep):
    """Replay ``p`` keeping only the arrays at positions ``keep`` (and the sources): the others are dropped and
    collected.  Returns ``{position: array}``."""
    old = wh.compose.set_mode("force")  # every dead array is folded at once, whatever its size
    try:
        pool = run(p)
        kept = {i: pool[i] for i in set(keep) | {k for k in range(len(p.sources))}}
        del pool
        gc.collect(1)  # the young generations: a whole suite's old objects make a full collection slow
    finally:
        wh.compose.set_mode(old)
    return kept


@cfg(60)
@given(S.pipelines(ops=S.NO_OPAQUE))
def test_backward_cells_composed(p):
    pool = run_dropped(p, p.output_indices())
    with forced_composition():
        check_cells(p, pool)


@cfg(40)
@given(S.pipelines(ops=S.CONTROL_HEAVY))
def test_backward_control_composed(p):
    assume(p.control_checkable)
    pool = run_dropped(p, p.output_indices())
    with forced_composition():
        check_cells(p, pool, control=True, k=6)


@cfg(25)
@given(S.pipelines(ops=S.NO_OPAQUE + ("opaque",) * 3))
def test_backward_with_opaque_ops_composed(p):
    pool = run_dropped(p, p.output_indices())
    with forced_composition():
        check_cells(p, pool, k=6)


@cfg(25)
@given(S.pipelines(ops=S.NO_OPAQUE + ("opaque",)))
def test_forward_composed(p):
    """forward from the sources through composed relations (intermediates dropped, queries forced)."""
    outs = p.output_indices(max_extra=1)
    pool = run_dropped(p, outs)
    with forced_composition():
        for i in outs:
            _check_forward(p, pool, i, 4)


# ----------------------------------------------------------------------------
# DSLog-style cell view
# ----------------------------------------------------------------------------

@cfg(150)
@given(S.pipelines(ops=S.NO_OPAQUE, max_steps=8))
def test_cell_parents(p):
    pool = run(p)
    y, yo = pool[-1], p.oracle[-1]
    for cell in O.sample_cells(yo.shape, 5):
        parents = y.cell(*cell).parents
        got = [(str(n), tuple(int(c) for c in co)) for n, co in parents]
        assert len(got) == len(set(got)), f"duplicate parents {got}\n{p.script()}"
        assert set(got) == set(yo.lineage(cell)), \
            f"{p.vars[-1]}.cell{cell}.parents = {sorted(got)}, oracle {sorted(yo.lineage(cell))}\n{p.script()}"


# ----------------------------------------------------------------------------
# lineage(x[idx]) == lineage(x)[idx]
# ----------------------------------------------------------------------------

@cfg(250)
@given(S.pipelines(ops=S.NO_OPAQUE, max_steps=10), st.data())
def test_lineage_of_index_is_index_of_lineage(p, data):
    pool = run(p)
    y, yo = pool[-1], p.oracle[-1]
    assume(yo.ndim >= 1 and yo.size >= 1)
    form = data.draw(st.sampled_from(["basic", "fancy", "mask"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    if form == "basic":
        items = tuple(S._basic_items(data.draw, yo.shape, allow_new=True))
    elif form == "fancy":
        items = (rng.integers(-yo.shape[0], yo.shape[0], size=data.draw(st.integers(0, 5))),)
    else:
        items = (np.asarray(rng.random(yo.shape) < 0.5),)
    dec = O.decode_index(yo.shape, items)
    z = y[items]
    assert wh.is_tracked(z)
    ndims = p.source_ndims()
    for o in O.sample_cells(dec.shape, 8):
        a = wh.backward(z, o)
        b = wh.backward(y, dec.src[o])
        ctx = f"z = {p.vars[-1]}[{S.fmt_index(list(items))}]; z{list(o)} is {p.vars[-1]}{list(dec.src[o])}\n" \
              f"{p.script()}"
        ga, gb = O.result_set(a, ndims), O.result_set(b, ndims)
        assert ga == gb, f"lineage(x[idx]) != lineage(x)[idx]: {ctx}"
        O.compare(ga, bool(a.complete), yo.lineage(dec.src[o]), yo.partial(dec.src[o]), False, ctx)


# ----------------------------------------------------------------------------
# perturbation cross-check for pure moves
# ----------------------------------------------------------------------------

class _PlainWh:
    """Stand-in for whence that runs a pipeline script on plain numpy."""

    def __init__(self, arrays):
        self.arrays = arrays

    def reset(self):
        pass

    def track(self, values, name):
        return np.array(self.arrays[name], copy=True)


def plain_runner(p):
    def fn(**arrays):
        ns = {"np": np, "wh": _PlainWh(arrays)}
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            exec(compile(p.script(imports=False), "<plain>", "exec"), ns)  # noqa: S102 (the pipeline's own code)
        return ns[p.vars[-1]]
    return fn


@cfg(100)
@given(S.pipelines(ops=S.MOVES_ONLY, pure_moves=True, max_steps=8))
def test_perturbation_agrees_for_pure_moves(p):
    """Three-way check on data-independent moves: perturbation oracle == cell oracle == whence."""
    rel = O.perturbation_lineage(plain_runner(p), dict(p.sources))
    yo = p.oracle[-1]
    for o in np.ndindex(*yo.shape):
        assert rel[o] == set(yo.lineage(o)), f"ORACLE disagrees with perturbation at {o}\n{p.script()}"
    pool = run(p)
    ndims = p.source_ndims()
    for o in O.sample_cells(yo.shape, 16):
        res = wh.backward(pool[-1], o)
        O.compare(O.result_set(res, ndims), bool(res.complete), rel[o], False, False,
                  f"backward({p.vars[-1]}, {o}) vs perturbation\n{p.script()}")


# ----------------------------------------------------------------------------
# larger arrays: cell sets past the sparse/dense switch points
# ----------------------------------------------------------------------------

LARGE_OPS = ("unary", "binary", "center", "reduce", "cumulative", "move", "slice", "mask", "fancy", "where",
             "sort", "setitem", "inplace", "view", "join")


@cfg(12)
@given(S.pipelines(ops=LARGE_OPS, max_steps=5, max_cells=3000, src_cells=1600, max_side=48, max_dims=3,
                   min_side=12, min_dims=2, oracle_budget=3_000_000),
       st.data())
def test_large_arrays(p, data):
    """Sources of up to 1600 cells and intermediates up to 3000, so that lineage sets exceed a thousand
    cells and queries start dense (whole array, masks) or sparse (points)."""
    pool = run(p)
    ndims = p.source_ndims()
    # tails with big lineage sets per cell: a long prefix sum and a total
    y, yo = pool[-1], p.oracle[-1]
    n = min(yo.size, 1500)
    tails = [(np.cumsum(y.ravel()[:n]), O.accumulate(np.cumsum, O.getitem(O.ravel(yo), (slice(0, n),)), axis=0),
              f"np.cumsum({p.vars[-1]}.ravel()[:{n}])"),
             (y.sum(), O.reduce(np.sum, yo), f"{p.vars[-1]}.sum()")]
    ctx = p.script() if len(p.script()) < 4000 else "\n".join(p.lines)
    for z, zo, code in tails:
        for cell in O.sample_cells(zo.shape, 3):
            res = wh.backward(z, cell)
            O.compare(O.result_set(res, ndims), bool(res.complete), zo.lineage(cell), zo.partial(cell), False,
                      f"backward({code}, {cell})\n{ctx}")
    for i in p.output_indices(max_extra=1):
        y, yo = pool[i], p.oracle[i]
        for cell in O.sample_cells(yo.shape, 4):
            res = wh.backward(y, cell)
            O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(cell), yo.partial(cell), False,
                      f"backward({p.vars[i]}, {cell})\n{ctx}")
        res = wh.backward(y)
        O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(None), yo.partial(None), False,
                  f"backward({p.vars[i]})\n{ctx}")
        m = np.asarray(np.random.default_rng(data.draw(st.integers(0, 2**31))).random(yo.shape) < 0.05)
        res = wh.backward(y, m)
        O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(m), yo.partial(m), False,
                  f"backward({p.vars[i]}, sparse mask)\n{ctx}")


# ----------------------------------------------------------------------------
# dtypes and empty arrays
# ----------------------------------------------------------------------------

@cfg(250)
@given(S.pipelines(ops=S.ANY_DTYPE, dtypes=("int64", "bool", "float32", "complex128"), max_steps=10))
def test_dtypes(p):
    pool = run(p)
    check_cells(p, pool, k=6)


@cfg(150)
@given(S.pipelines(ops=S.NO_OPAQUE, allow_empty=True, max_steps=10))
def test_empty_arrays(p):
    assume(any(np.size(v) == 0 for _, v in p.sources))
    pool = run(p)
    check_cells(p, pool, k=6)
    ndims = p.source_ndims()
    for i in p.output_indices():
        res = wh.backward(pool[i])
        O.compare(O.result_set(res, ndims), bool(res.complete), p.oracle[i].lineage(None),
                  p.oracle[i].partial(None), False, f"backward({p.vars[i]})\n{p.script()}")


# ----------------------------------------------------------------------------
# targeted write/view scenarios (also drawn at random above)
# ----------------------------------------------------------------------------

def _src(name, shape, seed=0):
    v = np.round(np.random.default_rng(seed).uniform(-1, 1, shape), 3)
    return wh.track(v.copy(), name=name), O.OArray.source(name, v)


def _same(y, yo, cells=None, control=False):
    ndims = {n: len(c) for r in yo.rec.ravel() for n, c in r.c}
    for cell in cells or O.sample_cells(yo.shape, 64):
        res = wh.backward(y, cell, control=control)
        ndims.update({n: a.shape[1] for n, a in res.items()})
        O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(cell, control), False, False,
                  f"backward(y, {cell}, control={control})")


def test_write_through_slice_view_both_ways():
    wh.reset()
    a, ao = _src("a", (4, 3))
    w, wo = _src("w", (3,), 1)
    x = a * 1.0
    xo = O.elementwise(np.multiply, ao, 1.0)
    v = x[1:3]
    vo = O.getitem(xo, (slice(1, 3),))
    v[0] = w                      # changes x[1]
    O.setitem(vo, (0,), wo)
    _same(x, xo)
    x[2, ::2] = -w[:2]            # changes v[1]
    O.setitem(xo, (2, slice(None, None, 2)), O.elementwise(np.negative, O.getitem(wo, (slice(None, 2),))))
    _same(v, vo)
    _same(x, xo)


def test_earlier_results_keep_their_lineage_after_writes():
    """y computed from x before x is overwritten keeps the lineage it had (snapshot semantics)."""
    wh.reset()
    a, ao = _src("a", (3, 3))
    b, bo = _src("b", (3,), 2)
    x = a + 0.0
    xo = O.elementwise(np.add, ao, 0.0)
    y = x.sum(axis=0)
    yo = O.reduce(np.sum, xo, axis=0)
    x[...] = b
    O.setitem(xo, (Ellipsis,), bo)
    x += b
    O.iop(np.add, xo, bo)
    _same(y, yo)
    _same(x, xo)


def test_fancy_setitem_duplicates_last_write_wins():
    wh.reset()
    a, ao = _src("a", (4,))
    b, bo = _src("b", (5,), 3)
    x = a.copy()
    xo = O.copy(ao)
    idx = np.array([1, 3, 1, 0, 1])
    x[idx] = b
    O.setitem(xo, (idx,), bo)
    _same(x, xo)


def test_write_into_source_replaces_its_lineage():
    wh.reset()
    a, ao = _src("a", (3, 2))
    b, bo = _src("b", (2,), 4)
    a[1] = b
    O.setitem(ao, (1,), bo)
    _same(a, ao)
    y = a * 2
    _same(y, O.elementwise(np.multiply, ao, 2))


def test_write_through_transpose_view():
    """numpy semantics: t = x.T shares memory with x, so writing x rewrites t's cells too.

    Not required by the brief's list (basic-slice views only), but a silent wrong
    answer otherwise: t's values change while its lineage would not.
    """
    wh.reset()
    a, ao = _src("a", (2, 3))
    w, wo = _src("w", (), 5)
    x = a.copy()
    t = x.T
    x[0, 1] = w
    assert np.asarray(t)[1, 0] == np.asarray(w)
    xo = O.copy(ao)
    O.setitem(xo, (0, 1), wo)
    _same(t, O.transpose(xo))


VIEW_CHAINS = {
    "T": lambda x: x.T,
    "reshape": lambda x: x.reshape(6, 2),
    "ravel": lambda x: x.ravel(),
    "swapaxes_slice": lambda x: np.swapaxes(x, 0, 1)[1:],
    "slice_T": lambda x: x[::2].T,
    "flip": lambda x: np.flip(x, 1),
    "noncontig_reshape_copy": lambda x: x[:, 1:3].reshape(-1),   # numpy copies here: no propagation
    "expand_dims": lambda x: np.expand_dims(x, 0),
    "newaxis_row": lambda x: x[None, 1],
    "moveaxis": lambda x: np.moveaxis(x, 0, 1),
    "row": lambda x: x[1],
    "rot90": lambda x: np.rot90(x),
    "squeeze": lambda x: np.squeeze(x[:1]),
    "neg_step_cols": lambda x: x[:, ::-2],
    "squeeze_noop": lambda x: np.squeeze(x),                        # no size-1 axis: still a view
    "T_reshape_copy": lambda x: x.T.reshape(12),                    # numpy copies here: no propagation
    "T_ravel_copy": lambda x: x.T.ravel(),                          # numpy copies here: no propagation
}


@pytest.mark.parametrize("chain", sorted(VIEW_CHAINS))
def test_writes_through_views_follow_numpy_memory(chain):
    """v = f(x) for a numpy view function f: writes through v change x's lineage and vice versa, exactly
    where numpy shares the memory (the oracle applies f to its record array, laid out like the values)."""
    f = VIEW_CHAINS[chain]
    wh.reset()
    a, ao = _src("a", (3, 4))
    w, wo = _src("w", (6,), 9)
    x = a.copy()
    xo = O.copy(ao)
    v = f(x)
    vo = O.OArray(f(xo.val), f(xo.rec))
    assert np.shares_memory(vo.val, xo.val) == np.shares_memory(vo.rec, xo.rec)
    assert wh.is_tracked(v) and np.asarray(v).shape == vo.shape
    # write through the view: first cell and last cell of v
    for k, cell in enumerate([(0,) * vo.ndim, tuple(n - 1 for n in vo.shape)]):
        v[cell] = w[k]
        O.setitem(vo, cell, O.getitem(wo, (k,)))
    np.testing.assert_array_equal(np.asarray(x), xo.val, err_msg=f"{chain}: base values")
    _same(x, xo)
    _same(v, vo)
    # write through the base: a whole row
    x[1] = w[2:6]
    O.setitem(xo, (1,), O.getitem(wo, (slice(2, 6),)))
    np.testing.assert_array_equal(np.asarray(v), vo.val, err_msg=f"{chain}: view values")
    _same(v, vo)
    _same(x, xo)


def test_control_for_mask_where_and_index_arrays():
    wh.reset()
    a, ao = _src("a", (3, 4))
    b, bo = _src("b", (3, 4), 6)
    c, co = _src("c", (4,), 7)
    m = a > 0.0
    mo = O.elementwise(np.greater, ao, 0.0)
    for y, yo in [
        (b[m], O.getitem(bo, mo)),
        (np.where(c > 0.2, a, b), O.where(O.elementwise(np.greater, co, 0.2), ao, bo)),
        (b[:, np.argsort(c)], O.getitem(bo, (slice(None), O.argsort(co)))),
        (np.take_along_axis(b, np.argsort(a, axis=1), axis=1),
         O.take_along_axis(bo, O.argsort(ao, axis=1), axis=1)),
        (np.compress(c > 0.0, b, axis=1), O.compress(O.elementwise(np.greater, co, 0.0), bo, axis=1)),
        (np.where(m, 1.0, 0.0), O.where(mo, 1.0, 0.0)),
    ]:
        _same(y, yo)
        _same(y, yo, control=True)


def test_opaque_warns_and_is_partial():
    wh.reset()
    a, ao = _src("a", (3, 3))
    b, bo = _src("b", (3,), 8)
    with pytest.warns(wh.PartialLineageWarning):
        inv = np.linalg.inv(a + np.eye(3) * 3)
    y = inv @ b
    yo = O.matmul(O.opaque(np.linalg.inv, O.elementwise(np.add, ao, np.eye(3) * 3)), bo)
    ndims = {"a": 2, "b": 1}
    for cell in O.sample_cells(yo.shape):
        res = wh.backward(y, cell)
        O.compare(O.result_set(res, ndims), bool(res.complete), yo.lineage(cell), True, True, f"inv @ b, {cell}")
    z = np.concatenate([inv[0], b])       # b's part does not pass through the opaque op
    zo = O.concatenate([O.getitem(O.opaque(np.linalg.inv, O.elementwise(np.add, ao, np.eye(3) * 3)), (0,)), bo])
    for cell in O.sample_cells(zo.shape):
        res = wh.backward(z, cell)
        O.compare(O.result_set(res, ndims), bool(res.complete), zo.lineage(cell), zo.partial(cell), True,
                  f"concatenate([inv[0], b]), {cell}")


# ----------------------------------------------------------------------------
# forward with control, source names
# ----------------------------------------------------------------------------

@cfg(150)
@given(S.pipelines(ops=S.CONTROL_HEAVY, max_steps=10))
def test_forward_control_is_inverse_of_backward_control(p):
    """forward(..., control=True) = {o : (src, cell) in control-lineage(y[o])} (whence's extension)."""
    import inspect

    if "control" not in inspect.signature(wh.forward).parameters:
        pytest.skip("wh.forward has no control parameter")
    assume(p.control_checkable)
    pool = run(p)
    srcs = {n: pool[k] for k, (n, _) in enumerate(p.sources)}
    y, yo = pool[-1], p.oracle[-1]
    inv = {}
    for o in np.ndindex(*yo.shape):
        for key in yo.rec[o].c:
            inv.setdefault(key, set()).add(o)
    for name, v in p.sources:
        for cell in O.sample_cells(np.shape(v), 6):
            ctx = f"forward({name}, {cell}, {p.vars[-1]}, control=True)\n{p.script()}"
            got = O.coords_set(wh.forward(srcs[name], cell, y, control=True), yo.ndim, ctx)
            exp = inv.get((name, cell), set())
            assert got == exp, f"wrong forward control lineage: {ctx}\n  missing {sorted(exp - got)}" \
                               f"\n  extra {sorted(got - exp)}"


def test_source_names_unique_until_collected_or_reset():
    import gc

    wh.reset()
    a = wh.track(np.zeros(2), name="n1")
    with pytest.raises(wh.SourceNameError):
        wh.track(np.ones(2), name="n1")
    del a
    gc.collect()
    b = wh.track(np.ones(3), name="n1")       # the old one was garbage-collected
    assert wh.backward(b * 2, (2,))["n1"].tolist() == [[2]]
    wh.reset()
    c = wh.track(np.ones(1), name="n1")       # reset clears every name
    assert wh.backward(c, (0,))["n1"].tolist() == [[0]]


def test_empty_intermediate_passes_nothing():
    """A broadcast of a 0-d source into an empty array, then a reduction: the sum of no cells reads no
    cell, before and after the intermediates are composed away (regression: the composed map projected
    the reduction's rectangle onto the 0-d source)."""
    wh.reset()
    c = wh.track(np.array(3.0), name="c")
    b = wh.track(np.zeros((2, 0)), name="b")
    x0 = c + b
    x2 = abs(abs(x0))
    x3 = np.sum(x2, axis=None)
    res = wh.backward(x3)
    assert dict(res) == {} and res.complete
    del x0, x2
    wh.compact(x3)
    res = wh.backward(x3)
    assert dict(res) == {} and res.complete
