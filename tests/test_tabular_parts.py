"""The parts of a tracked frame's lineage stay few: parts that can share a row relation are merged, without
changing any cell's answer."""

import numpy as np
import pandas as pd
import pytest

import whence as wh
from whence.tabular.frame.base import merge_parts, lineage_of
from whence.tabular.frame import untracked
from whence.tabular.relations import Part, RowRel


@pytest.fixture(autouse=True)
def _fresh():
    wh.reset()
    yield
    wh.reset()


def _cells(res, name):
    return {tuple(map(int, c)) for c in res.get(name, np.zeros((0, 2), int))}


def test_masked_writes_through_own_columns_keep_the_parts_few():
    rng = np.random.default_rng(5)
    n = 40
    a0 = rng.integers(0, 80, n).astype(float)
    b0 = rng.integers(0, 3, n)
    df = wh.track_frame(pd.DataFrame({"a": a0, "b": b0}), name="t")
    plain = pd.DataFrame({"a": a0, "b": b0})
    written = np.zeros(n, bool)
    counts = []
    for k in range(24):  # bands and guesses written through masks read from the column itself
        lo, hi = 10.0 * (k % 8), 10.0 * (k % 8) + 10
        mask = (df["a"] >= lo) & (df["a"] < hi) & (df["b"] == k % 3)
        pmask = (plain["a"] >= lo) & (plain["a"] < hi) & (plain["b"] == k % 3)
        written |= pmask.to_numpy()
        df.loc[mask, "a"] = float(k % 5)
        plain.loc[pmask, "a"] = float(k % 5)
        counts.append(len(lineage_of(df).parts))
        assert counts[-1] <= 6, counts  # without merging: doubles with every write
    pd.testing.assert_frame_equal(untracked(df), plain)
    for i in range(n):
        data = wh.backward(df, rows=[i], columns=[0])
        ctl = wh.backward(df, rows=[i], columns=[0], control=True)
        assert data.complete and ctl.complete
        # data: an unwritten cell is its own source cell; a written one holds a constant
        assert _cells(data, "t") == (set() if written[i] else {(i, 0)})
        # control: every write read the row's own a and b cells
        assert _cells(ctl, "t") == {(i, 0), (i, 1)}


def _part(node, codes, cmat, control=False):
    return Part(node, RowRel(len(codes), 3, np.asarray(codes, np.int64)), np.asarray(cmat, bool), control)


def test_parts_merge_only_where_rows_agree():
    df = wh.track_frame(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1, 2, 3]}), name="m")
    node = lineage_of(df).parts[0].node
    cm = [[False, False], [True, False], [False, False]]
    # the same columns, rows that agree where both have one: one part, the union of the rows
    merged = merge_parts([_part(node, [0, -1, 2], cm), _part(node, [-1, 1, 2], cm)])
    assert len(merged) == 1 and merged[0].rel.codes.tolist() == [0, 1, 2]
    # rows that disagree (row 1 from input row 1 or 2): kept apart
    kept = merge_parts([_part(node, [0, 1, -1], cm), _part(node, [0, 2, -1], cm)])
    assert len(kept) == 2
    # other columns, or another role: kept apart
    other = [[False, False], [False, False], [False, True]]
    assert len(merge_parts([_part(node, [0, 1, 2], cm), _part(node, [0, 1, 2], other)])) == 2
    assert len(merge_parts([_part(node, [0, 1, 2], cm), _part(node, [0, 1, 2], cm, control=True)])) == 2
