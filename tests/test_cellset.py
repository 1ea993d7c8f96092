"""CellSet, the cell sets queries push through the maps: every form (sparse flat indices, a dense mask,
everything) and every operation against a plain Python set of flat indices."""

import math
import pathlib
import sys

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from whence.cellset import CellSet

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from strategies import cfg  # noqa: E402


@st.composite
def cell_sets(draw, shape=None):
    """A cell set of a drawn (or the given) shape, in a drawn form, and the flat indices it holds."""
    if shape is None:
        shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    n = math.prod(shape)
    form = draw(st.sampled_from(["sparse", "dense", "everything"]))
    if form == "everything":
        return CellSet.everything(shape), set(range(n)), shape
    flat = draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=8)) if n else []
    if form == "sparse":
        return CellSet.sparse(np.array(flat, np.int64), shape), set(flat), shape
    mask = np.zeros(n, bool)
    mask[flat] = True
    return CellSet.dense(mask.reshape(shape)), set(flat), shape


@cfg(200)
@given(st.data())
def test_cell_sets_are_sets_of_flat_indices(data):
    a, sa, shape = data.draw(cell_sets())
    b, sb, _ = data.draw(cell_sets(shape))
    for cs, want in ((a, sa), (b, sb), (a.union(b), sa | sb), (a.unique(), sa)):
        assert cs.to_flat().tolist() == sorted(want)
        assert np.flatnonzero(cs.to_mask()).tolist() == sorted(want) and cs.to_mask().shape == shape
        assert cs.size == len(want) and cs.is_empty() == (not want)
        coords = cs.coordinates()
        assert coords.shape == (len(want), len(shape))
        if shape:
            assert np.ravel_multi_index(coords.T, shape).tolist() == sorted(want)
    u = a.union(b)
    assert u.is_everything == (a.is_everything or b.is_everything)
    assert u.is_sparse == (a.is_sparse and b.is_sparse)
