"""Window maps (cumulative ops, diff, gradient, convolve): the sparse backward path (a few output cells, as
flat indices, with windows merged per lane) equals the dense one (a boolean mask) on random cell sets."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import whence as wh

OPS = {
    "cumsum": lambda a, ax: np.cumsum(a, axis=ax),
    "cumprod_rev": lambda a, ax: np.flip(np.cumprod(np.flip(a, ax), axis=ax), ax),
    "diff": lambda a, ax: np.diff(a, n=1, axis=ax),
    "diff2": lambda a, ax: np.diff(a, n=2, axis=ax),
    "gradient": lambda a, ax: np.gradient(a, axis=ax) if a.shape[ax] > 1 else np.cumsum(a, axis=ax),
}


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=3), st.sampled_from(sorted(OPS)), st.data())
def test_band_sparse_equals_dense(shape, op, data):
    wh.reset()
    shape = tuple(shape)
    ax = data.draw(st.integers(0, len(shape) - 1))
    if op.startswith("diff") and shape[ax] <= int(op[-1] == "2") + 1:
        return
    a = wh.track(np.arange(float(np.prod(shape))).reshape(shape) + 1.0, name="a")
    y = OPS[op](a, ax)
    node = y._node
    maps = [node.map] + [m for m, _ in getattr(node.map, "parts", [])]
    for m in maps:
        if type(m).__name__ != "BandMap":
            continue
        size = int(np.prod(m.out_shape))
        if not size:
            continue
        k = data.draw(st.integers(1, size))
        flat = np.asarray(data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=k)), np.int64)
        sp = m.backward_sparse(flat)
        mask = np.zeros(size, bool)
        mask[flat] = True
        dense = m.backward(mask.reshape(m.out_shape))[0]
        if sp is None:
            continue
        assert set(np.unique(sp[0]).tolist()) == set(np.flatnonzero(dense).tolist()), (shape, op, ax, flat)


def test_large_prefix_lane_stays_sparse():
    """One row of a big cumulative sum: the windows merge into one interval per lane, no bitmap."""
    wh.reset()
    a = wh.track(np.ones((2000, 3000)), name="a")
    y = np.cumsum(a, axis=1)
    flat = np.ravel_multi_index((np.full(500, 7), np.arange(0, 3000, 6)), (2000, 3000))
    got = y._node.map.backward_sparse(flat)
    assert got is not None and np.array_equal(np.sort(got[0]), 7 * 3000 + np.arange(2995))
