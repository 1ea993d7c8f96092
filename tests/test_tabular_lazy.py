"""The shared per-call machinery of tracked frames stays exact where it was made cheaper: graph nodes built at the
first query, column lineages shared per frame lineage, column positions read from a dict kept per Index."""

import gc

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import whence as wh
from whence.tabular.frame.base import column_positions, lineage_of


@pytest.fixture(autouse=True)
def _fresh():
    wh.reset()
    yield
    wh.reset()


def _cells(res, name):
    return {tuple(map(int, c)) for c in res.get(name, np.zeros((0, 2), int))}


def test_node_is_built_at_the_first_query_after_its_history():
    df = wh.track_frame(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6]}), name="t")
    s = df["a"] * 2
    t = s + df["b"]
    lin_s, lin_t = lineage_of(s), lineage_of(t)
    assert lin_s._node is None and lin_t._node is None  # nothing built by the operations themselves
    node = t._whence_node
    assert lin_s._node is not None  # the history is built first ...
    assert lin_s._node.id < node.id  # ... so that a parent is numbered before its child
    assert lin_s._node in node.parents
    assert _cells(wh.backward(t, rows=[1]), "t") == {(1, 0), (1, 1)}


def test_a_long_chain_of_unqueried_writes_builds_its_nodes_without_recursion():
    df = wh.track_frame(pd.DataFrame({"a": np.arange(5.0)}), name="t")
    for k in range(3000):  # deeper than Python's recursion limit
        df["a"] = df["a"] + 1.0
    assert _cells(wh.backward(df, rows=[3], columns=[0]), "t") == {(3, 0)}
    ids = []
    node = df._whence_node
    while node is not None and node.name is None:
        ids.append(node.id)
        nxt = [p for p in node.parents if p.name is None]
        node = nxt[-1] if nxt else None
    assert ids == sorted(ids, reverse=True) and len(ids) > 3000


def test_a_column_read_again_after_a_write_takes_the_new_lineage():
    df = wh.track_frame(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}), name="t")
    before = df["a"]
    assert lineage_of(df["a"]) is lineage_of(before)  # one lineage per (frame lineage, column)
    df["a"] = df["b"] * 2
    after = df["a"]
    assert _cells(wh.backward(before, rows=[0]), "t") == {(0, 0)}
    assert _cells(wh.backward(after, rows=[0]), "t") == {(0, 1)}
    assert before.name == after.name == "a"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.sampled_from(["a", "b", "c", "A", "", "a b"]), st.integers(-2, 2), st.just(None),
                          st.just(float("nan")), st.just(True)), min_size=0, max_size=6, unique_by=repr),
       st.lists(st.one_of(st.sampled_from(["a", "b", "c", "z"]), st.integers(-2, 2), st.just(1.0)), max_size=6),
       st.booleans())
def test_column_positions_equal_get_indexer(labels, wanted, as_str_dtype):
    cols = pd.Index(labels, dtype="str" if as_str_dtype and all(type(x) is str for x in labels) else None)
    if not cols.is_unique:
        return
    expected = cols.get_indexer(pd.Index(wanted, dtype=object) if wanted else pd.Index([], dtype=object))
    got = column_positions(cols, pd.Index(wanted, dtype=object) if wanted else pd.Index([], dtype=object))
    assert got.tolist() == expected.tolist()
    got_list = column_positions(cols, list(wanted))
    assert got_list.tolist() == cols.get_indexer(list(wanted)).tolist()


def test_lineages_make_no_reference_cycles():
    # a lineage in a reference cycle outlives its frame until the garbage collector runs, and every collection
    # then walks every lineage of the pipeline: column reads (memoised per frame lineage), writes and window
    # relations (built lazily) must be freed by reference counting alone
    df = wh.track_frame(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [5.0, 6.0, 7.0, 8.0]}), name="t")
    gc.collect()
    gc.disable()
    try:
        x = df["a"] + df["a"]
        df["c"] = df["b"] * 2
        y = df["c"] - df["a"]
        r = df["a"].rolling(2).mean() + df["b"].shift(1).cumsum()
        del x, y, r
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        cyclic = sorted({type(o).__name__ for o in gc.garbage if type(o).__module__.startswith("whence")})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert cyclic == []
