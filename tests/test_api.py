"""The public API contract, bad input, views and in-place writes."""


import numpy as np
import pytest

import whence as wh


@pytest.fixture(autouse=True)
def fresh_names():
    wh.reset()
    yield
    wh.reset()


def cells(rows):
    return [tuple(r) for r in np.asarray(rows).tolist()]


def test_contract_example():
    a = wh.track(np.random.rand(4, 3), name="a")
    b = wh.track(np.random.rand(3), name="b")
    y = np.tanh(a * b + 1).sum(axis=1)
    assert isinstance(y, wh.TrackedArray)
    assert isinstance(np.asarray(y), np.ndarray) and not isinstance(np.asarray(y), wh.TrackedArray)
    np.testing.assert_allclose(np.asarray(y), np.tanh(np.asarray(a) * np.asarray(b) + 1).sum(axis=1))
    r = wh.backward(y, (2,))
    assert set(r) == {"a", "b"}
    assert r["a"].dtype == np.int64 and r["a"].shape == (3, 2)
    assert cells(r["a"]) == [(2, 0), (2, 1), (2, 2)]
    assert cells(r["b"]) == [(0,), (1,), (2,)]
    assert r.complete
    whole = wh.backward(y)
    assert len(whole["a"]) == 12 and len(whole["b"]) == 3
    assert cells(wh.forward(a, (1, 2), y)) == [(1,)]
    assert y.cell(2).parents == [("a", (2, 0)), ("a", (2, 1)), ("a", (2, 2)), ("b", (0,)), ("b", (1,)), ("b", (2,))]
    assert wh.sources(y) == ["a", "b"]
    assert wh.ops(y) == ["multiply", "add", "tanh", "sum"]
    recs = wh.ancestors(y)
    assert [r.op for r in recs][:4] == ["sum", "tanh", "add", "multiply"]
    assert [r.op for r in wh.ancestors(y, depth=1)] == ["sum", "tanh"]
    rel = wh.lineage(y)
    assert rel.nbytes > 0 and rel.complete


def test_region_and_mask_queries():
    a = wh.track(np.arange(20.0).reshape(4, 5), name="a")
    y = a * 2
    r = wh.backward(y, (slice(1, 3), slice(None, None, 2)))
    assert cells(r["a"]) == [(1, 0), (1, 2), (1, 4), (2, 0), (2, 2), (2, 4)]
    mask = np.zeros((4, 5), bool)
    mask[0, 1] = mask[3, 4] = True
    assert cells(wh.backward(y, mask)["a"]) == [(0, 1), (3, 4)]
    assert cells(wh.backward(y, (-1, -1))["a"]) == [(3, 4)]


def test_control_cells():
    a = wh.track(np.array([0.1, 0.9, 0.4, 0.8]), name="a")
    b = wh.track(np.array([1.0, 2.0, 3.0, 4.0]), name="b")
    y = b[a > 0.5]
    assert cells(wh.backward(y, (1,))["b"]) == [(3,)]
    assert "a" not in wh.backward(y, (1,))
    r = wh.backward(y, (1,), control=True)
    assert cells(r["a"]) == [(3,)] and cells(r["b"]) == [(3,)]
    w = np.where(a > 0.5, b, 0.0)
    assert cells(wh.backward(w, (2,), control=True)["a"]) == [(2,)]
    assert "b" not in wh.backward(w, (2,))


def test_zero_d_and_empty():
    a = wh.track(np.float64(3.0), name="a")
    y = a * 2
    assert y.shape == () and cells(wh.backward(y, ())["a"]) == [()]
    assert wh.backward(y)["a"].shape == (1, 0)
    e = wh.track(np.zeros((0, 3)), name="e")
    s = e.sum(axis=0)
    assert wh.backward(s) == {}
    assert wh.backward(e + 1) == {}


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint16, np.int64, np.float16, np.float32, np.float64,
                                   np.complex64, np.complex128])
def test_dtypes(dtype):
    a = wh.track(np.ones((2, 3), dtype=dtype), name="a")
    y = (a + a)[1]
    assert cells(wh.backward(y, (2,))["a"]) == [(1, 2)]


def test_bad_input():
    with pytest.raises(TypeError, match="dtype object"):
        wh.track(np.array([1, "x"], dtype=object), name="o")
    with pytest.raises(TypeError, match="ragged"):
        wh.track([[1, 2], [3]], name="r")
    with pytest.raises(TypeError, match="dtype"):
        wh.track(np.array(["a", "b"]), name="s")
    a = wh.track(np.ones(3), name="a")
    with pytest.raises(wh.SourceNameError, match="already in use"):
        wh.track(np.ones(3), name="a")
    with pytest.raises(wh.LineageQueryError, match="out of range"):
        wh.backward(a, (3,))
    with pytest.raises(wh.LineageQueryError, match="more entries"):
        wh.backward(a, (0, 0))
    with pytest.raises(wh.LineageQueryError, match="shape"):
        wh.backward(a, np.ones(4, bool))
    with pytest.raises(wh.NotTrackedError, match="not a tracked array"):
        wh.backward(np.ones(3))
    with pytest.raises(wh.NotTrackedError):
        wh.forward(np.ones(3), (0,), a)
    with pytest.raises(wh.NotTrackedError):
        wh.sources([1, 2])
    with pytest.raises(wh.WhenceError):
        wh.track(a)


def test_name_freed_when_garbage_collected():
    a = wh.track(np.ones(3), name="tmp")
    del a
    import gc
    gc.collect()
    wh.track(np.ones(3), name="tmp")


def test_opaque_warns_and_marks_partial():
    m = wh.track(np.random.rand(3, 3) + 3 * np.eye(3), name="m")
    with pytest.warns(wh.PartialLineageWarning, match="inv"):
        inv = np.linalg.inv(m)
    r = wh.backward(inv, (0, 0))
    assert not r.complete and len(r["m"]) == 9
    assert any("inv" in reason for reason in r.reasons)
    assert "PARTIAL" in repr(inv)


def test_setitem_and_inplace():
    a = wh.track(np.zeros((3, 3)), name="a")
    b = wh.track(np.ones(3), name="b")
    a[1] = b
    assert cells(wh.backward(a, (1, 2))["b"]) == [(2,)]
    assert "a" not in wh.backward(a, (1, 2))
    assert cells(wh.backward(a, (0, 2))["a"]) == [(0, 2)]
    a += 1
    assert cells(wh.backward(a, (1, 0))["b"]) == [(0,)]
    a[[0, 0], [1, 1]] = wh.track(np.array([5.0, 6.0]), name="c")
    assert cells(wh.backward(a, (0, 1))["c"]) == [(1,)]  # the last write wins, as in numpy
    a[a > 5] = 0.0
    assert wh.backward(a, (0, 1)) == {} or "c" not in wh.backward(a, (0, 1))


def test_writes_through_views():
    x = wh.track(np.arange(6.0), name="x")
    w = wh.track(np.array([10.0]), name="w")
    v = x[2:5]
    v[1] = w[0]
    assert np.asarray(x)[3] == 10.0
    assert cells(wh.backward(x, (3,))["w"]) == [(0,)]
    x[4] = -1.0  # write to the base: the view sees it
    assert wh.backward(v, (2,)) == {}
    assert cells(wh.backward(v, (0,))["x"]) == [(2,)]
    r = x.reshape(2, 3)
    x[0] = 7.0
    assert wh.backward(r, (0, 0)) == {}
    np.multiply(v, 2, out=v)
    assert cells(wh.backward(x, (3,))["w"]) == [(0,)]


def test_ufunc_out_where_and_at():
    a = wh.track(np.arange(4.0), name="a")
    o = wh.track(np.zeros(4), name="o")
    np.add(a, 1, out=o, where=np.array([True, False, True, False]))
    assert cells(wh.backward(o, (0,))["a"]) == [(0,)]
    assert cells(wh.backward(o, (1,))["o"]) == [(1,)]
    b = wh.track(np.array([1.0, 2.0, 3.0]), name="b")
    np.add.at(a, [0, 0, 2], b)
    r = wh.backward(a, (0,))
    assert cells(r["a"]) == [(0,)] and cells(r["b"]) == [(0,), (1,)]


def test_repr_and_conversions():
    a = wh.track(np.arange(3.0), name="a")
    s = repr(a * 2)
    assert s.startswith("TrackedArray([0., 2., 4.])") and "lineage: multiply" in s and "[a]" in s
    assert float(a.sum()) == 3.0 and len(a) == 3 and a.tolist() == [0.0, 1.0, 2.0]
    assert int(a[1]) == 1 and bool(a[1])
    assert [wh.backward(r)["a"].tolist() for r in a] == [[[0]], [[1]], [[2]]]


def test_out_to_plain_array_warns():
    a = wh.track(np.arange(3.0), name="a")
    out = np.zeros(3)
    with pytest.warns(wh.LineageLostWarning):
        np.multiply(a, 2, out=out)
    np.testing.assert_array_equal(out, [0, 2, 4])


def test_foreign_types_get_notimplemented():
    class Other:
        __array_ufunc__ = None

        def __radd__(self, other):
            return "other"

    a = wh.track(np.arange(3.0), name="a")
    assert a + Other() == "other"


def test_forward_from_mutated_source_and_by_name():
    a = wh.track(np.arange(4.0), name="a")
    y = np.cumsum(a)
    a += 1
    assert cells(wh.forward(a, (2,), y)) == [(2,), (3,)]
    assert cells(wh.forward("a", (2,), y)) == [(2,), (3,)]


def test_lazy_sort_permutation_survives_later_writes():
    x = wh.track(np.array([3.0, 1.0, 2.0, 1.0]), name="x")
    s = np.sort(x)
    p = np.partition(x, 1)
    f = np.sort(x.reshape(2, 2), axis=None)
    x[0] = -5.0           # the input changes after the sort: the permutation was computed before the write
    x[1:] = 0.0
    assert cells(wh.backward(s, (3,))["x"]) == [(0,)]
    assert cells(wh.backward(s, (0,))["x"]) == [(1,)]  # ties: the earlier cell first
    assert cells(wh.backward(s, (1,))["x"]) == [(3,)]
    assert cells(wh.backward(f, (3,))["x"]) == [(0,)]
    v = np.asarray(p)
    for i in range(4):
        (src,) = cells(wh.backward(p, (i,))["x"])
        assert [3.0, 1.0, 2.0, 1.0][src[0]] == v[i]


def test_functions_returning_the_same_buffer_are_views():
    a = wh.track(np.arange(4.0), name="a")
    r = np.real(a)
    b = wh.track(np.array([7.0]), name="b")
    r[1] = b[0]
    assert np.asarray(a)[1] == 7.0
    assert cells(wh.backward(a, (1,))["b"]) == [(0,)]


def test_cells_hash_like_numpy_scalars_so_sets_and_pandas_isin_are_right():
    """Iterating a tracked array yields one-cell arrays; they hash by value (like numpy scalars), so a set, a
    dict or pandas' ``isin`` finds them; whole arrays stay unhashable."""
    pd = pytest.importorskip("pandas")
    wh.reset()
    ids = wh.track(np.array([5, 9, 200, 7]), name="ids")
    s = pd.Series(np.arange(300))
    assert int(s.isin(ids).sum()) == 4 and int(s.isin(list(ids)).sum()) == 4
    assert 5 in set(ids) and hash(ids[1]) == hash(np.int64(9))
    with pytest.raises(TypeError, match="unhashable"):
        hash(ids)


def test_tracked_arrays_pickle_with_their_lineage():
    """A tracked array crosses a process boundary (joblib, multiprocessing) with its lineage: the weak
    references a node keeps to its readers stay behind."""
    import pickle
    wh.reset()
    a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    b = np.tanh(a * 2 + a).sum(axis=1)
    c = pickle.loads(pickle.dumps(b))
    assert np.array_equal(np.asarray(c), np.asarray(b))
    assert wh.backward(c, (1,))["a"].tolist() == wh.backward(b, (1,))["a"].tolist() == [[1, 0], [1, 1], [1, 2]]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64, np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("shape", [(), (7,), (5, 8)])
def test_power_operator_computes_what_numpy_computes(dtype, shape):
    """``x ** e`` and ``x **= e`` give plain numpy's values and dtype to the last bit: numpy's operator runs
    ``square``/``sqrt``/``reciprocal``/``positive`` for some scalar exponents (which rules depends on the
    numpy version), and those differ from ``power`` in the last bit for float32 and complex64."""
    exponents = [2, 2.0, 0.5, -1, -1.0, 0, 1, 3, np.float32(2), np.int64(2), np.array(2.0), np.array(2), True,
                 np.float64(0.5)]
    for k, e in enumerate(exponents):
        if np.dtype(dtype).kind in "iu" and float(e) < 0:
            continue
        x = np.asarray(np.random.default_rng(k).random(shape) * 5 + 1).astype(dtype)
        wh.reset()
        want = x ** e
        got = wh.track(x.copy(), name="x") ** e
        assert np.asarray(got).dtype == np.asarray(want).dtype, (e, np.asarray(got).dtype)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=repr(e))
        res = wh.backward(got, (0,) * len(shape))
        assert list(res) == ["x"] and np.asarray(res["x"]).tolist() == [[0] * len(shape)]
        assert res.complete
        y = x.copy()
        t = wh.track(x.copy(), name="y")
        try:
            y **= e
        except TypeError as err:  # numpy refuses the in-place cast: so does whence
            with pytest.raises(TypeError):
                t **= e
            continue
        t **= e
        np.testing.assert_array_equal(np.asarray(t), y, err_msg=repr(e))


def test_former_module_paths_keep_importing():
    """Modules renamed or split keep their former import paths (re-exports of the same objects)."""
    pytest.importorskip("sklearn")
    from whence.attribution import deletion, etl_rerun, leave_one_out, model_math, source_scores, training_matrix
    from whence.attribution import influence, sources as attribution_sources
    assert attribution_sources.row_relation is source_scores.row_relation
    assert influence.describe_model is model_math.describe_model and influence.sigmoid is model_math.sigmoid
    assert influence.plain_values is model_math.float64_values and influence.plain_input is model_math.model_input
    assert deletion.loo_values is leave_one_out.loo_values and deletion.rerun_without is etl_rerun.rerun_without
    assert deletion.CounterfactualError is etl_rerun.CounterfactualError
    assert deletion.anchor_of is training_matrix.anchor_of and deletion._Context is deletion.DeletionContext
    from whence.unlearn import source_removal, sources as unlearn_sources
    assert unlearn_sources.forget_sources is source_removal.forget_sources
    from whence.tabular import source_tables, sources as tabular_sources
    assert source_tables.rows_of_lines is tabular_sources.rows_of_lines
