"""Composition of lineage maps (whence.compose, whence.maps.compose_pair).

* Property: for random pairs of one-parent maps (elementwise broadcasts, views, gathers, masks, reductions,
  bands, lanes, chains), the composed map relates exactly the pairs (output cell, input cell) of the
  composition of the two per-cell relations, in both directions, dense and sparse, and its rectangles (when
  it gives some) describe the same relation.
* Folding on garbage collection: long loops keep a bounded amount of lineage, answers equal the oracle's,
  the operation history keeps every operation, and nothing is folded while something still refers to it.
"""

from __future__ import annotations

import gc
import itertools
import sys
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import whence as wh
from whence import compose
from whence.maps import (BandMap, ChainMap, ElementwiseMap, GatherMap, LaneMap, ReduceMap, ViewMap, compose_pair,
                         expand_basic_key, is_identity_map, mask_gather, rectangles_to_pairs, replay_gather,
                         stored_gather)

SETTINGS = settings(max_examples=int(__import__("os").environ.get("WHENCE_COMPOSE_EXAMPLES", "150")), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def relation(m):
    """The per-cell relation of a one-parent map: set of (out flat, in flat), by one backward per cell."""
    out = set()
    size = math.prod(m.out_shape)
    for f in range(size):
        mask = np.zeros(size, bool)
        mask[f] = True
        pm = m.backward(mask.reshape(m.out_shape))[0]
        if pm is not None:
            out.update((f, int(i)) for i in np.flatnonzero(pm))
    return out


def compose_rel(r1, r2):
    by_mid = {}
    for mid, i in r2:
        by_mid.setdefault(mid, set()).add(i)
    return {(o, i) for o, mid in r1 for i in by_mid.get(mid, ())}


@st.composite
def shapes(draw, min_dims=1, max_dims=3):
    return tuple(draw(st.lists(st.integers(1, 4), min_size=min_dims, max_size=max_dims)))


@st.composite
def maps_into(draw, pshape):
    """A random one-parent map whose parent has shape ``pshape``."""
    kind = draw(st.sampled_from(["elementwise", "broadcast", "slice", "transpose", "reshape", "gather", "mask",
                                 "reduce", "band", "lane", "move"]))
    n = math.prod(pshape)
    if not pshape:  # a 0-d parent: an identity or a broadcast of the one cell
        return ElementwiseMap(draw(st.sampled_from([(), (2,), (2, 3)])), ((),))
    if kind == "elementwise":
        valid = None
        if draw(st.booleans()):
            valid = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool).reshape(pshape)
        return ElementwiseMap(pshape, (pshape,), valid)
    if kind == "broadcast":
        lead = tuple(draw(st.lists(st.integers(1, 3), max_size=1)))
        out = lead + tuple(d if d != 1 else draw(st.integers(1, 3)) for d in pshape)
        return ElementwiseMap(out, (pshape,))
    if kind == "slice":
        key = []
        for d in pshape:
            c = draw(st.sampled_from(["all", "int", "slice", "rev"]))
            if c == "int":
                key.append(draw(st.integers(-d, d - 1)))
            elif c == "slice":
                a = draw(st.integers(0, d - 1))
                key.append(slice(a, draw(st.integers(a + 1, d)), draw(st.sampled_from([1, 2]))))
            elif c == "rev":
                key.append(slice(None, None, -1))
            else:
                key.append(slice(None))
        if draw(st.booleans()):
            key.insert(draw(st.integers(0, len(key))), None)
        ek = expand_basic_key(tuple(key), len(pshape))
        out = np.zeros(pshape)[tuple(key)].shape
        return ViewMap(out, pshape, "slice", ek)
    if kind == "transpose":
        perm = tuple(draw(st.permutations(range(len(pshape)))))
        return ViewMap(tuple(pshape[p] for p in perm), pshape, "transpose", perm)
    if kind == "reshape":
        return ViewMap((n,), pshape, "reshape")
    if kind == "gather":
        k = draw(st.integers(1, 6))
        src = np.array(draw(st.lists(st.integers(0, n), min_size=k, max_size=k)), np.int64)
        return stored_gather((k,), pshape, src) if src.any() else GatherMap((k,), [pshape], lambda s=src: s,
                                                                               stored=[src])
    if kind == "move":
        return draw(moves(pshape))
    if kind == "mask":
        mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool).reshape(pshape)
        return mask_gather((int(mask.sum()),), pshape, mask)
    if kind == "reduce":
        axes = tuple(sorted(set(draw(st.lists(st.integers(0, len(pshape) - 1), max_size=len(pshape))))))
        keep = draw(st.booleans())
        out = tuple(1 if i in axes else d for i, d in enumerate(pshape)) if keep else \
            tuple(d for i, d in enumerate(pshape) if i not in axes)
        return ReduceMap(pshape, axes, out, [pshape])
    if kind == "band":
        ax = draw(st.integers(0, len(pshape) - 1))
        L = pshape[ax]
        lo = np.zeros(L, np.int64) if draw(st.booleans()) else np.maximum(np.arange(L) - 1, 0)
        hi = np.arange(L, dtype=np.int64)
        return BandMap(pshape, pshape, [(ax, lo, hi)])
    ax = draw(st.integers(0, len(pshape) - 1))
    return LaneMap(pshape, (ax,))


@st.composite
def moves(draw, pshape):
    """A shape-determined move (roll, flip, delete, swapaxes, tile) as the gather whence records for it."""
    ax = draw(st.integers(0, len(pshape) - 1))
    kind = draw(st.sampled_from(["roll", "flip", "delete", "swapaxes", "tile"]))
    if kind == "roll":
        sh = draw(st.integers(-5, 5))
        fn = lambda x: np.roll(x, sh, axis=ax)  # noqa: E731
    elif kind == "flip":
        fn = lambda x: np.flip(x, axis=ax)  # noqa: E731
    elif kind == "delete" and pshape[ax] > 1:
        obj = sorted(set(draw(st.lists(st.integers(0, pshape[ax] - 1), min_size=1, max_size=pshape[ax] - 1))))
        fn = lambda x: np.delete(x, obj, axis=ax)  # noqa: E731
    elif kind == "swapaxes":
        b = draw(st.integers(0, len(pshape) - 1))
        fn = lambda x: np.swapaxes(x, ax, b)  # noqa: E731
    else:
        reps = tuple(draw(st.lists(st.integers(1, 2), min_size=len(pshape), max_size=len(pshape))))
        fn = lambda x: np.tile(x, reps)  # noqa: E731
    out = fn(np.zeros(pshape)).shape
    return replay_gather(out, [pshape], [True], lambda xs: fn(xs[0]))


@SETTINGS
@given(st.data())
def test_gather_rectangles_are_its_relation(data):
    pshape = data.draw(shapes())
    if data.draw(st.booleans()):
        m = data.draw(moves(pshape))
    else:  # any index array: rows where it has a few affine runs, None otherwise
        k = data.draw(shapes())
        n = math.prod(pshape)
        src = np.array(data.draw(st.lists(st.integers(0, n), min_size=math.prod(k), max_size=math.prod(k))),
                       np.int64).reshape(k)
        m = GatherMap(k, [pshape], lambda s=src: s)
    rows = m.rectangles()
    if rows is None:
        return
    got = {(int(a), int(b)) for a, b in rectangles_to_pairs(rows, m.out_shape, [pshape])[0]}
    assert got == relation(m)


@st.composite
def map_pairs(draw):
    q = draw(shapes())
    inner = draw(maps_into(q))
    p = tuple(inner.out_shape)
    if math.prod(p) == 0:
        p = q
        inner = ElementwiseMap(q, (q,))
    outer = draw(maps_into(p))
    return outer, inner


@SETTINGS
@given(map_pairs())
def test_composed_pair_is_the_composition_of_the_relations(pair):
    outer, inner = pair
    c = compose_pair(outer, inner)
    if c is None:  # no closed form and no rectangles: the two maps stay apart
        assert type(outer).__name__ != "ElementwiseMap" or not is_identity_map(outer)
        return
    assert tuple(c.out_shape) == tuple(outer.out_shape)
    assert tuple(c.parent_shapes[0]) == tuple(inner.parent_shapes[0])
    expected = compose_rel(relation(outer), relation(inner))
    assert relation(c) == expected, (outer, inner, c)
    out_shape, in_shape = tuple(c.out_shape), tuple(c.parent_shapes[0])
    n_out, n_in = math.prod(out_shape), math.prod(in_shape)
    # forward, dense and sparse
    for i in range(n_in):
        m = np.zeros(n_in, bool)
        m[i] = True
        got = set(np.flatnonzero(np.asarray(c.forward(0, m.reshape(in_shape)))).tolist())
        assert got == {o for o, j in expected if j == i}
        f = getattr(c, "forward_sparse", None)
        if f is not None and out_shape and in_shape:
            r = f(0, np.array([i], np.int64))
            if r is not None:
                assert set(np.asarray(r).tolist()) == {o for o, j in expected if j == i}
    # backward sparse
    f = getattr(c, "backward_sparse", None)
    if f is not None and out_shape:
        for o in range(n_out):
            r = f(np.array([o], np.int64))
            if r is not None:
                got = set() if r[0] is None else set(np.asarray(r[0]).tolist())
                assert got == {j for oo, j in expected if oo == o}
    # rectangles, where the composed map gives them
    rf = getattr(c, "rectangles", None)
    rows = rf() if rf is not None else None
    if rows is not None and out_shape:
        pairs = rectangles_to_pairs(rows, out_shape, [in_shape])[0]
        assert {(int(a), int(b)) for a, b in pairs} == expected


def test_views_compose_in_closed_form():
    s1 = ViewMap((3, 2), (6, 4), "slice", expand_basic_key((slice(0, 6, 2), slice(1, 3)), 2))
    s2 = ViewMap((2,), (3, 2), "slice", expand_basic_key((slice(None, None, -2), 0), 2))
    c = compose_pair(s2, s1)
    assert type(c) is ViewMap and c.how == "slice"
    t = compose_pair(ViewMap((4, 3, 2), (2, 3, 4), "transpose", (2, 1, 0)),
                     ViewMap((2, 3, 4), (3, 4, 2), "transpose", (0, 1, 2)[::-1][::-1]))
    assert type(t) is ViewMap and t.how == "transpose"
    r = compose_pair(ViewMap((6,), (2, 3), "reshape"), ViewMap((2, 3), (3, 2), "reshape"))
    assert type(r) is ViewMap and r.how == "reshape"
    g = compose_pair(ReduceMap((2, 3), (0,), (3,), [(2, 3)]), ViewMap((2, 3), (2, 3), "transpose", (0, 1)))
    assert type(g) in (ReduceMap, ChainMap)


def test_masks_compose_into_one_bit_per_cell():
    m1 = mask_gather((3,), (6,), np.array([1, 0, 1, 1, 0, 0], bool))
    m2 = mask_gather((2,), (3,), np.array([0, 1, 1], bool))
    c = compose_pair(m2, m1)
    assert type(c) is GatherMap and c.nbytes == 1
    assert c.src().tolist() == [3, 4]


# ------------------------------------------------------------------------------ folding on collection

def loop(kind, n, iters):
    x = wh.track(np.random.default_rng(0).random(n), name="x")
    y = x
    for _ in range(iters):
        if kind == "where":
            y = np.where(y > 0.5, y * 1.01, y * 0.99)
        elif kind == "mask":
            y = y[y > 0.05]
        else:
            y = np.sort(y * 1.0001)
    return x, y


@pytest.mark.parametrize("kind", ["where", "mask", "sort"])
def test_loops_keep_bounded_lineage_and_exact_answers(kind):
    wh.reset()
    x, y = loop(kind, 500, 40)
    # the oracle: each cell's source index through the same loop
    v, idx = np.asarray(x).copy(), np.arange(500)
    for _ in range(40):
        if kind == "where":
            v = np.where(v > 0.5, v * 1.01, v * 0.99)
        elif kind == "mask":
            m = v > 0.05
            v, idx = v[m], idx[m]
        else:
            v = v * 1.0001
            p = np.argsort(v, kind="stable")
            v, idx = v[p], idx[p]
    np.testing.assert_array_equal(np.asarray(y), v)
    for c in range(0, len(idx), 37):
        assert wh.backward(y, (c,))["x"].tolist() == [[int(idx[c])]]
        assert wh.backward(y, (c,), control=True)["x"].tolist() == [[int(idx[c])]]
        fw = wh.forward(x, (int(idx[c]),), y)
        assert fw.tolist() == [[c]]
    rel = wh.lineage(y)
    assert rel.complete
    # every op stays in the history (the bounded size of the composed maps is measured by bench_compose on
    # 1e6-cell loops, whose arrays fold as they die)
    assert len(wh.ops(y)) >= 40 * (2 if kind != "where" else 4)
    assert all(r.completeness == "FULL" for r in wh.ancestors(y))


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="folding at death reads CPython's reference "
                    "counts; elsewhere dead maps are composed at the first query instead")
def test_nothing_is_folded_while_an_array_refers_to_it():
    wh.reset()
    n = 1 << 17  # large arrays fold as soon as they die
    a = wh.track(np.arange(float(n)), name="a")
    b = a * 2
    c = b[::-1] + 1
    assert c._node.lineage[1] == (b._node,)  # the dead view b[::-1] is folded into c; b is alive
    mb = b._node.map
    assert wh.backward(b, (1,))["a"].tolist() == [[1]]
    assert b._node.map is mb
    del b
    gc.collect()
    assert c._node.lineage[1] == (a._node,)  # b's map went into c's
    assert wh.backward(c, (0,))["a"].tolist() == [[n - 1]]
    assert wh.ops(c) == ["multiply", "getitem", "add"]


def test_compact_composes_live_intermediates_and_keeps_their_queries():
    wh.reset()
    a = wh.track(np.arange(12.0).reshape(3, 4), name="a")
    b = a.T * 2
    c = b[::2] + a.T[::2]
    d = np.cumsum(c, axis=1)
    hops = wh.compact(d)
    assert hops >= 2
    for cell in itertools.product(range(2), range(3)):
        exp = sorted({(j, 2 * cell[0]) for j in range(cell[1] + 1)})
        assert [tuple(r) for r in wh.backward(d, cell)["a"].tolist()] == exp
    assert wh.backward(b, (1, 2))["a"].tolist() == [[2, 1]]
    # forward from a live intermediate passed over by the compacted relation
    assert wh.forward(b, (2, 1), d).tolist() == [[1, 1], [1, 2]]
    assert wh.forward(a, (0, 2), d).tolist() == [[1, 0], [1, 1], [1, 2]]
    assert wh.ops(d) == ["transpose", "multiply", "getitem", "transpose", "getitem", "add", "cumsum"]


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="reads CPython's reference counts")
def test_dead_maps_fold_as_they_die_on_this_interpreter():
    # the references held on the way from an array's __del__ are measured on the running interpreter
    wh.reset()
    before = compose.stats()["folded"]
    x = wh.track(np.random.default_rng(0).random(1 << 17), name="x")
    y = x
    for _ in range(5):
        y = np.where(y > 0.5, y * 1.0001, y * 0.9999)
    assert compose.stats()["folded"] > before  # without a query: folded as the arrays died
    assert len(wh.ops(y)) >= 5 * 4
    for c in (0, 7, 1000):
        assert wh.backward(y, (c,))["x"].tolist() == [[c]]
    a = wh.track(np.arange(6.0), name="a")
    b = a * 2
    keep = b[::-1]  # alive: b's node is referred to by keep's, nothing is folded into a reader of keep
    c = keep + 1
    assert wh.backward(c, (0,))["a"].tolist() == [[5]] and wh.backward(keep, (0,))["a"].tolist() == [[5]]


def _held_map_bytes(y):
    """Bytes of the maps still held by the nodes of ``y``'s lineage (folded nodes hold none)."""
    seen, todo, total = set(), [y._node], 0
    while todo:
        n = todo.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if n.link is not compose.FOLDED:
            m = n.map if n.link is None else n.link[0]
            total += m.nbytes if m is not None else 0
        todo.extend(n.parents)
    return total


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="reads CPython's reference counts")
def test_mask_loop_keeps_one_mask_of_bits():
    # ``y = y[y > -1]``: the comparison's node is read by the getitem, whose input is read by both; a first
    # try of the mask's fold can meet a reference held for the time of the statement (the frame of
    # __getitem__, still being cleared when the mask dies), so the mask is folded by a retry after its
    # parent died; the parent must then be tried again, or every iteration keeps a mask of bits
    wh.reset()
    n, iters = 1 << 17, 60
    x = wh.track(np.random.default_rng(0).random(n), name="x")
    y = x
    for _ in range(iters):
        y = y[y > -1]
    assert _held_map_bytes(y) <= 4 * (n // 8)  # before: about one mask of bits per iteration
    assert len(wh.ops(y)) >= 2 * iters
    for c in (0, 5, n - 1):
        assert wh.backward(y, (c,))["x"].tolist() == [[c]]


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="reads CPython's reference counts")
def test_a_node_with_two_readers_is_folded_once_one_of_them_is():
    # the same order of events on any interpreter: the mask's first fold meets a reference (``hold``); its
    # parent dies while two readers refer to it, one of them the mask not folded yet
    wh.reset()
    n, iters = 1 << 17, 20
    x = wh.track(np.random.default_rng(1).random(n), name="x")
    y = x
    for _ in range(iters):
        m = y > 0.01
        z = y[m]
        hold = m._node
        del m  # its fold meets ``hold``: tried again later
        del hold
        y = z  # the old y has two readers: the getitem and the mask, folded by the retry after this try
        del z
    assert _held_map_bytes(y) <= 4 * (n // 8)
    v, idx = np.asarray(x), np.arange(n)
    for _ in range(iters):
        keep = v > 0.01
        v, idx = v[keep], idx[keep]
    np.testing.assert_array_equal(np.asarray(y), v)
    for c in (0, 3, len(idx) - 1):
        assert wh.backward(y, (c,))["x"].tolist() == [[int(idx[c])]]
        assert wh.backward(y, (c,), control=True)["x"].tolist() == [[int(idx[c])]]
        assert wh.forward(x, (int(idx[c]),), y).tolist() == [[c]]


def test_mode_switch_validates():
    with pytest.raises(ValueError):
        compose.set_mode("sometimes")
    assert compose.mode() in ("on", "off", "force")


def test_off_mode_keeps_every_map():
    wh.reset()
    old = compose.set_mode("off")
    try:
        x = wh.track(np.arange(5.0), name="x")
        y = x
        for _ in range(5):
            y = y * 2.0
        assert y._node.link is None
        assert len(wh.lineage(y).nodes) == 6
    finally:
        compose.set_mode(old)


# ------------------------------------------------------------------------- sort: the permutation later

@SETTINGS
@given(data=st.data())
def test_sort_permutation_is_stable_with_ties_nans_and_signed_zeros(data):
    # np.sort records whether a lane holds equal values when it sorts; the permutation computed later (at a
    # query while the input lives, or when the input dies) must be the stable one either way
    shape = data.draw(shapes(1, 2))
    pool = data.draw(st.sampled_from([[0.5, 1.5, 2.5], [0.0, -0.0, 1.0, np.nan], [np.nan, 3.0], None]))
    if pool is None:
        v = np.random.default_rng(data.draw(st.integers(0, 99))).random(shape)
    else:
        v = np.array(data.draw(st.lists(st.sampled_from(pool), min_size=math.prod(shape),
                                        max_size=math.prod(shape)))).reshape(shape)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    dies = data.draw(st.booleans())
    wh.reset()
    x = wh.track(v, name="x")
    if dies:
        y = np.sort(x * 1.0, axis=axis)  # the input dies here: the permutation is computed now
    else:
        t = x * 1.0
        y = np.sort(t, axis=axis)  # computed at the first query
    perm = np.argsort(v, axis=axis, kind="stable")
    np.testing.assert_array_equal(np.asarray(y), np.sort(v, axis=axis))
    src = np.indices(shape)
    src[axis % len(shape)] = perm
    for o in np.ndindex(*shape):
        want = [tuple(int(s[o]) for s in src)]
        got = [tuple(c) for c in wh.backward(y, o)["x"].tolist()]
        assert got == want, (v, axis, o)


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="folding at death reads CPython's reference counts")
def test_a_loop_of_operator_chains_folds_each_result_as_it_dies():
    # each iteration's chain is folded as it is computed (elision: the temporary becomes the result) and the
    # previous iteration's result is folded into it when the name is rebound: one hop to the source
    wh.reset()
    n = 1 << 17
    x = wh.track(np.random.default_rng(2).random(n), name="x")
    for step in (lambda y: (y * 1.0001 + 0.0) * 1.0, lambda y: (y * 1.0001 + y) * 1.0,
                 lambda y: 2.0 * (y * 1.0001) - 1.0, lambda y: np.tanh(y * 0.5) + 0.5):
        y = x
        for _ in range(4):
            y = step(y)
        assert y._node.lineage[1] == (x._node,)
        for c in (0, 5, n - 1):
            assert wh.backward(y, (c,))["x"].tolist() == [[c]]
        assert len(wh.ops(y)) >= 4 * 3


def test_a_folded_new_reader_is_the_node_that_folding_makes():
    # compose.new_folded_reader builds its node slot by slot: every slot of Node is set, and the node equals
    # Node(...) followed by fold_into_new_reader in every field but its id (one operand and two, a parent
    # already read, a source and an intermediate)
    from whence.graph import Node
    src = Node("source", (3, 4), name="a")
    mid = Node("exp", (3, 4), ElementwiseMap((3, 4), ((3, 4),)), (src,))
    row = Node("source", (1, 4), name="r")
    fields = [s for s in Node.__slots__ if s not in ("id", "kids", "link", "__weakref__")]
    for parents_of_p, other in [((src,), None), ((src,), src), ((src,), row), ((src, row), mid), ((mid,), None)]:
        made = []
        for how in ("slots", "fold"):
            p = Node("multiply", (3, 4), ElementwiseMap((3, 4), tuple(q.shape for q in parents_of_p)),
                     parents_of_p)
            ops = (p,) if other is None else (p, other)
            shapes = tuple(q.shape for q in ops)
            if how == "slots":
                k = compose.new_folded_reader("add", (3, 4), shapes, ops, p)
            else:
                k = Node("add", (3, 4), ElementwiseMap((3, 4), shapes), ops)
                assert compose.fold_into_new_reader(p, k)
            assert k is not None and p.link is compose.FOLDED
            for s in Node.__slots__:
                if s != "__weakref__":
                    getattr(k, s)  # set (an unset slot raises AttributeError)
            made.append(k)
        a, b = made
        for s in fields:
            va, vb = getattr(a, s), getattr(b, s)
            if s == "parents":
                assert [q.op for q in va] == [q.op for q in vb] and va[1:] == vb[1:]
            elif s == "map":
                assert (va.out_shape, va.parent_shapes, va.valid) == (vb.out_shape, vb.parent_shapes, vb.valid)
            else:
                assert va == vb, s
        (ma, pa, ca), (mb, pb, cb) = a.link, b.link
        assert (ma.out_shape, tuple(ma.parent_shapes), pa, ca) == (mb.out_shape, tuple(mb.parent_shapes), pb, cb)
        # an intermediate parent of the folded node now knows its new reader (it is folded into it when it dies)
        for q in pa:
            if q.name is None:
                assert any(w() is a for w in (q.kids if type(q.kids) is list else [q.kids]))
