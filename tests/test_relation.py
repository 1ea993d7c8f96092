"""The compressed relation: rectangles equal the per-cell relation of every shape-determined map, and the
relation round-trips to Parquet."""

import pathlib
import sys

import numpy as np
import pytest

import whence as wh
from whence.maps import rectangles_to_pairs

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from oracle import per_cell_pairs  # noqa: E402


OPS = {
    "multiply": lambda a, b, c: a * b, "broadcast": lambda a, b, c: a + c, "transpose": lambda a, b, c: a.T,
    "slice": lambda a, b, c: a[1:, ::2], "reverse_int": lambda a, b, c: a[::-1, 2], "newaxis": lambda a, b, c: a[None, 1],
    "reshape": lambda a, b, c: a.reshape(2, 6), "sum0": lambda a, b, c: a.sum(axis=0),
    "sum_keep": lambda a, b, c: a.sum(axis=1, keepdims=True), "max_all": lambda a, b, c: a.max(),
    "cumsum": lambda a, b, c: np.cumsum(a, axis=1), "diff": lambda a, b, c: np.diff(a, axis=0, n=2),
    "matmul": lambda a, b, c: a @ a.T, "einsum": lambda a, b, c: np.einsum("ij,j->i", a, b),
    "argsort": lambda a, b, c: np.argsort(a, axis=1), "convolve": lambda a, b, c: np.convolve(b, b[:3], "same"),
    "correlate": lambda a, b, c: np.correlate(b, b[:2], "full"), "quantile": lambda a, b, c: np.quantile(a, [0.1, 0.5], axis=0),
    "outer": lambda a, b, c: np.multiply.outer(b, c), "gradient": lambda a, b, c: np.gradient(a, axis=1),
    "moveaxis": lambda a, b, c: np.moveaxis(a.reshape(3, 2, 2), 0, -1), "flip": lambda a, b, c: np.flip(a),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_rectangles_equal_the_per_cell_relation(name):
    wh.reset()
    rng = np.random.default_rng(0)
    a = wh.track(rng.random((3, 4)), name="a")
    b = wh.track(rng.random(4), name="b")
    c = wh.track(rng.random((3, 1)), name="c")
    y = OPS[name](a, b, c)
    node = y.node
    # the relation queries follow: the operation's own map, or (where an intermediate such as ``b[:3]`` died
    # and its map was folded into this one, always under WHENCE_COMPOSE=force) the composed map over the
    # intermediate's parents; either way its rows must be exactly its per-cell relation
    rel, parents, _ = node.lineage
    assert rel is not None and parents, f"{name}: no relation kept"
    rows = rel.rectangles()
    assert rows is not None, f"{name}: a shape-determined map must describe itself as rectangles"
    pairs = rectangles_to_pairs(rows, node.shape, [p.shape for p in parents])
    for k in range(len(parents)):
        np.testing.assert_array_equal(pairs[k], per_cell_pairs(node, k, rel), err_msg=name)
    # and, where the relation reaches the sources in one hop, the per-cell relation is the lineage: every
    # output cell's backward answer, by source
    for o in np.ndindex(*node.shape) if all(p.is_source for p in parents) else ():
        got = wh.backward(y, o)
        of = np.ravel_multi_index(o, node.shape) if node.shape else 0
        want = {}
        for k, p in enumerate(parents):  # (a source read twice, as in ``a @ a.T``, answers the union)
            want.setdefault(p.name, set()).update(
                tuple(int(v) for v in np.unravel_index(int(i), p.shape)) for o_, i in pairs[k] if o_ == of)
        for src, cells in want.items():
            assert {tuple(c) for c in got.get(src, np.zeros((0, 0), np.int64)).tolist()} == cells, (name, o, src)


def test_relation_is_small_and_writes_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    wh.reset()
    a = wh.track(np.random.rand(200, 50), name="a")
    y = np.cumsum(np.tanh(a * 2).T[:, ::2], axis=1).reshape(-1)[::-1]
    rel = wh.lineage(y)
    assert rel.complete
    assert rel.nbytes < 1024 * len(rel.records)  # O(ops), independent of the 10,000 cells
    cols = rel.rectangles()
    assert len(cols["op_id"]) < len(rel.records)  # at most one rectangle per op; the reshape and the flip compose
    files = rel.to_parquet(tmp_path / "rel")
    assert pq.read_table(files[1]).num_rows == len(cols["op_id"])
    z = np.sort(a, axis=0)
    rel2 = wh.lineage(z)
    idx = rel2.index_arrays()
    assert len(idx) == 1 and next(iter(idx.values())).size == 200 * 50
    small = wh.track(np.arange(6.0).reshape(2, 3), name="s")
    pr = wh.lineage(small.T * 2).pairs("s")
    assert pr.tolist() == [[i, j, j, i] for i in range(3) for j in range(2)]


# ------------------------------------------------------------------- composed rectangles through moves
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from strategies import cfg  # noqa: E402

MOVES = {
    "roll0": lambda x: np.roll(x, 2, axis=0), "roll_flat": lambda x: np.roll(x, -3),
    "flip": lambda x: np.flip(x, axis=-1), "rev": lambda x: x[::-1],
    "delete": lambda x: np.delete(x, [0, x.shape[0] // 2], axis=0) if x.shape[0] > 2 else x,
    "ravel": lambda x: np.ravel(x), "swap": lambda x: np.swapaxes(x, 0, -1),
    "rot90": lambda x: np.rot90(x, 2) if x.ndim >= 2 else x, "slice": lambda x: x[1:],
    "tile": lambda x: np.tile(x, 2) if x.size < 64 else x, "scale": lambda x: x * 2.0, "sin": lambda x: np.sin(x),
    "reshape": lambda x: x.reshape(-1, 2) if x.size % 2 == 0 else x,
}


@cfg(40)
@given(st.lists(st.sampled_from(sorted(MOVES)), min_size=1, max_size=7), st.sampled_from([(6, 5), (4, 3, 2), (12,)]))
def test_composed_rectangles_of_moves_are_the_relation(names, shape):
    """A pipeline of moves and elementwise steps: the relation lineage() writes (rows composed through the
    steps, rows of rolls, deletes and flips included) relates every output cell to the cell the pipeline
    copied, which replaying the same steps on an index array gives; the store's SQL answers the same."""
    wh.reset()
    x0 = np.random.default_rng(1).random(shape)
    idx = np.arange(x0.size).reshape(shape)
    y = wh.track(x0, name="a")
    for n in names:
        y = MOVES[n](y)
        if n not in ("scale", "sin"):
            idx = MOVES[n](idx)
    rel = wh.lineage(y)
    want = {(f, int(i)) for f, i in enumerate(np.ravel(idx))}
    rows = [r for n in rel.nodes if n.lineage[0] is not None and n.lineage[1]
            for r in (n.lineage[0].rectangles() or [None])]
    if len(rel.nodes) == 2 and None not in rows:  # one composed map from y to a: its rows are the relation
        pairs = rectangles_to_pairs(rows, y.shape, [shape])[0]
        assert {(int(o), int(i)) for o, i in pairs} == want, names
    for f in range(0, idx.size, max(1, idx.size // 7)):
        cell = np.unravel_index(f, idx.shape)
        assert wh.backward(y, cell)["a"].tolist() == [list(np.unravel_index(int(np.ravel(idx)[f]), shape))]


def test_a_move_pipeline_is_one_rectangle_set():
    from whence import compose
    old = compose.set_mode("on")
    try:
        wh.reset()
        a = wh.track(np.random.default_rng(0).random((1000, 100)), name="a")
        y = np.roll(np.delete(np.flip(np.ravel(np.sin(a)), 0), [19037, 69587]), 20)
        wh.compact(y)
        rel = wh.lineage(y)
        assert len(rel.rectangles()["op_id"]) <= 5  # roll x delete: 4 runs of one step
        assert rel.nbytes < 400  # against ~3e5 bytes for its 1e5 pairs in gzip-Parquet
        assert wh.backward(y, (0,))["a"].tolist() == [list(np.unravel_index(100000 - 1 - 99978 - 2, (1000, 100)))]
    finally:
        compose.set_mode(old)


@pytest.mark.parametrize("names", [("ravel", "rev", "delete", "roll_flat"), ("rot90", "roll0", "swap", "sin"),
                                   ("delete", "flip", "roll0", "tile")])
def test_store_writes_the_composed_rectangles(names, tmp_path):
    pytest.importorskip("duckdb")
    wh.reset()
    shape = (6, 5)
    x0 = np.random.default_rng(2).random(shape)
    idx = np.arange(x0.size).reshape(shape)
    y = wh.track(x0, name="a")
    for n in names:
        y = MOVES[n](y)
        if n not in ("scale", "sin"):
            idx = MOVES[n](idx)
    wh.save(tmp_path / "m.duckdb", "r", y=y)
    with wh.open(tmp_path / "m.duckdb") as store:
        h = store["r"]["y"]
        assert [kind for _, kind in wh.store.sql_plan(h)] == ["rect"]  # one composed map, as rectangles
        for f in range(idx.size):
            cell = np.unravel_index(f, idx.shape)
            want = [list(np.unravel_index(int(np.ravel(idx)[f]), shape))]
            assert wh.store.backward_sql(h, cell)["a"].tolist() == want
            assert wh.backward(h, cell)["a"].tolist() == want


@cfg(40)
@given(st.lists(st.sampled_from(sorted(set(MOVES) - {"scale", "sin"})), min_size=1, max_size=4),
       st.sampled_from([(6, 5), (4, 3, 2), (12,)]), st.sampled_from(["none", "pad", "concatenate"]))
def test_rows_of_a_gather_give_back_its_index_array(names, shape, extra):
    """The store writes a gather as its rectangle rows where they describe it: the index array rebuilt from the
    rows (rows_to_src) is the gather's own, constants (padding) and several parents (concatenate) included."""
    from whence.maps import gather_from_rows, replay_gather, rows_to_src

    def move(x):
        for n in names:
            x = MOVES[n](x)
        if extra == "pad":
            x = np.pad(x, [(1, 0)] + [(0, 0)] * (x.ndim - 1))
        return x

    if extra == "concatenate":
        shapes = [shape, shape]
        replay = (lambda xs: np.concatenate([move(xs[0]), move(xs[1])]))
    else:
        shapes = [shape]
        replay = (lambda xs: move(xs[0]))
    out = replay([np.zeros(s) for s in shapes]).shape
    m = replay_gather(out, shapes, [True] * len(shapes), replay)
    rows = m.rectangles()
    if rows is None:
        return  # more than _MAX_ROWS runs: the index array is the compressed form
    want = np.asarray(m.src(), np.int64)
    assert np.array_equal(rows_to_src(rows, out, shapes), want), (names, extra)
    g = gather_from_rows(out, shapes, rows)
    assert np.array_equal(np.asarray(g.src(), np.int64), want) and g.rectangles() == rows
