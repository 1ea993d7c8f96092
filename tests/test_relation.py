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
    node = y._node
    rows = node.map.rectangles()
    assert rows is not None, f"{name}: a shape-determined map must describe itself as rectangles"
    pairs = rectangles_to_pairs(rows, node.shape, [p.shape for p in node.parents])
    for k in range(len(node.parents)):
        np.testing.assert_array_equal(pairs[k], per_cell_pairs(node, k), err_msg=name)


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
