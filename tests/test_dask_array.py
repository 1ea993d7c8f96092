"""Lineage on dask arrays: the numpy oracle pipelines replayed on dask sources of random chunking.

Every random pipeline of tests/strategies.py that dask can run lazily (no writes: dask arrays are values,
so writes through numpy views have no dask meaning) is run twice, on numpy sources and on dask sources of
random chunks, on a ``LocalCluster``.  Capture must compute nothing; the values must equal numpy's; every
backward and forward answer must equal the numpy TrackedArray's answer and the brute-force oracle.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import oracle as O  # noqa: E402
import strategies as S  # noqa: E402

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
import whence as wh  # noqa: E402
from whence.dask.array import LazyUnsupportedError, register_duckdb  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::RuntimeWarning",
                                        "ignore::DeprecationWarning")


class Computed(Exception):
    pass


def _forbid(dsk, keys, **kwargs):
    raise Computed("a dask graph was computed at capture time")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


# ----------------------------------------------------------------------------------- random pipelines

DASK_OPS = ("unary", "binary", "center", "reduce", "cumulative", "matmul", "move", "join", "slice", "mask",
            "fancy", "where", "view", "extra")
_SRC = re.compile(r"^(\w+) = wh\.track\((.*), name='(\w+)'\)$")
_ASSIGN = re.compile(r"^x\d+(, x\d+)*,? = ")


def _no_writes(p):
    return all(_ASSIGN.match(line) and "out=" not in line for line in p.lines)


def _dask_script(p, chunks):
    out = []
    for line in p.script().split("\n"):
        m = _SRC.match(line)
        if m:
            var, expr, name = m.groups()
            line = f"{var} = wh.track(da.from_array({expr}, chunks={chunks[name]!r}), name={name!r})"
        out.append(line)
    return "\n".join(out)


def _replay_dask(p, chunks):
    """Run the pipeline on dask sources with a scheduler that refuses to compute; None when dask (or whence on
    dask) cannot run one of its steps lazily."""
    ns = {"np": np, "wh": wh, "da": da}
    with warnings.catch_warnings(record=True) as rec, np.errstate(all="ignore"), \
            dask.config.set(scheduler=_forbid):
        warnings.simplefilter("always")
        try:
            exec(compile(_dask_script(p, chunks), "<dask pipeline>", "exec"), ns)  # noqa: S102
        except (LazyUnsupportedError, NotImplementedError, TypeError) as exc:
            if isinstance(exc, Computed):
                raise
            return None, None
        except ValueError as exc:  # dask's own limits: unknown chunk sizes, reshapes across chunks
            if "chunk" in str(exc) or "reshape" in str(exc) or "Unknown dimension" in str(exc):
                return None, None
            raise
    return [ns[v] for v in p.vars], rec


def _answers(res, ndims):
    return O.result_set(res, ndims), res.complete


@S.cfg(60)
@given(S.pipelines(ops=DASK_OPS, max_steps=12), st.data())
def test_random_pipelines_equal_numpy_and_oracle(client, p, data):
    assume(_no_writes(p))
    chunks = {n: tuple(data.draw(st.integers(1, max(d, 1))) for d in np.shape(v)) for n, v in p.sources}
    pool_d, warns_d = _replay_dask(p, chunks)
    assume(pool_d is not None)
    pool_n, warns_n = p.replay()
    partial_n = any(issubclass(w.category, wh.PartialLineageWarning) for w in warns_n)
    partial_d = any(issubclass(w.category, wh.PartialLineageWarning) for w in warns_d)
    ctx = _dask_script(p, chunks)
    assert partial_d == partial_n, f"PartialLineageWarning differs from numpy's\n{ctx}"
    ndims = p.source_ndims()
    srcs_d = {n: pool_d[k] for k, (n, _) in enumerate(p.sources)}
    srcs_n = {n: pool_n[k] for k, (n, _) in enumerate(p.sources)}
    for i in p.output_indices():
        yd, yn, yo = pool_d[i], pool_n[i], p.oracle[i]
        assert wh.is_tracked(yd) and yd.lazy, f"{p.vars[i]} is not a lazy TrackedArray\n{ctx}"
        np.testing.assert_allclose(np.asarray(yd), yo.val, rtol=1e-9, atol=1e-12, equal_nan=True,
                                   err_msg=f"{p.vars[i]}: values differ from numpy's\n{ctx}")
        for cell in O.sample_cells(yo.shape, 4):
            for control in (False, True):
                rd = wh.backward(yd, cell, control=control)
                rn = wh.backward(yn, cell, control=control)
                assert _answers(rd, ndims) == _answers(rn, ndims), \
                    f"backward({p.vars[i]}, {cell}, control={control}) differs from numpy\n{ctx}"
                if not control:
                    O.compare(O.result_set(rd, ndims), bool(rd.complete), yo.lineage(cell, False),
                              yo.partial(cell, False), p.has_opaque, f"backward({p.vars[i]}, {cell})\n{ctx}")
        rd, rn = wh.backward(yd), wh.backward(yn)
        assert _answers(rd, ndims) == _answers(rn, ndims), f"backward({p.vars[i]}) differs from numpy\n{ctx}"
        for name, v in p.sources:
            for cell in O.sample_cells(np.shape(v), 2):
                fd = wh.forward(srcs_d[name], cell, yd)
                fn = wh.forward(srcs_n[name], cell, yn)
                assert fd.tolist() == fn.tolist(), f"forward({name}, {cell}, {p.vars[i]}) differs\n{ctx}"


# ------------------------------------------------------------------------------------ hand-picked

def _pair(values, chunks, name):
    return wh.track(da.from_array(values, chunks=chunks), name=name), wh.track(values, name=name + "_np")


def _same(rd, rn, suffix="_np"):
    a = {k: v.tolist() for k, v in rd.items()}
    b = {k[: -len(suffix)]: v.tolist() for k, v in rn.items()}
    return a == b and rd.complete == rn.complete


def test_capture_computes_nothing_and_values_compute(client):
    wh.reset()
    rng = np.random.default_rng(0)
    v = rng.random((6, 8))
    with dask.config.set(scheduler=_forbid):
        x = wh.track(da.from_array(v, chunks=(2, 3)), name="x")
        m = x > 0.5
        y = np.cumsum(np.where(m, x * 2, 0.0), axis=1)[:, ::2].T @ x[:, :3]
        z = x[m]
        s = (z + 1).sum()
        assert y.lazy and z.lazy and s.lazy
        assert np.isnan(z.shape[0])
    exp = np.cumsum(np.where(v > 0.5, v * 2, 0.0), axis=1)[:, ::2].T @ v[:, :3]
    np.testing.assert_allclose(y.compute(), exp)
    np.testing.assert_allclose(np.asarray(y), exp)
    np.testing.assert_allclose(y.values, exp)
    assert float(s) == pytest.approx((v[v > 0.5] + 1).sum())
    assert "lineage:" in repr(y) and "dask.array" in repr(y)


def test_track_does_not_touch_the_callers_array():
    wh.reset()
    d = da.from_array(np.arange(6.0), chunks=3)
    x = wh.track(d, name="x")
    x[1:3] = 0.0
    assert np.asarray(d).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert x.compute().tolist() == [0.0, 0.0, 0.0, 3.0, 4.0, 5.0]
    assert wh.backward(x, (1,)) == {} and wh.backward(x, (4,))["x"].tolist() == [[4]]


_CALLS = []


def _record_block(b, block_info=None):
    _CALLS.append(block_info[0]["chunk-location"])
    return b


def test_point_query_computes_only_the_chunks_it_needs(client):
    calls = _CALLS
    calls.clear()
    block = _record_block
    wh.reset()
    v = np.arange(100.0).reshape(10, 10)
    base = da.from_array(v, chunks=(1, 10)).map_blocks(block, dtype=float)
    x = wh.track(base, name="x")
    y = np.where(x % 3 == 0, x, -x)[::-1].sum(axis=1)
    assert not calls
    r = wh.backward(y, (2,))
    assert r["x"].tolist() == [[7, j] for j in range(10)]
    assert len(set(calls)) == 1, calls  # one row block out of ten
    calls.clear()
    q = np.where(x % 3 == 0, x, -x)
    assert wh.backward(q, (4, 5))["x"].tolist() == [[4, 5]]
    assert set(calls) == {(4, 0)}


def test_unknown_chunk_sizes_are_computed_on_query(client):
    wh.reset()
    v = np.array([[3.0, -1.0, 2.0, 7.0], [0.0, 5.0, -2.0, 1.0], [4.0, 4.0, -3.0, 9.0]])
    x, xn = _pair(v, (2, 3), "x")
    for f in (lambda a: np.cumsum(a[a > 0] * 2), lambda a: (a[a > 0] - 1).sum(), lambda a: np.unique(a % 3),
              lambda a: np.nonzero(a > 2)[1], lambda a: np.flatnonzero(a < 4), lambda a: np.argwhere(a > 3),
              lambda a: np.extract(a > 0, a) * 2, lambda a: np.compress(a[0] > 0, a, axis=1)):
        with dask.config.set(scheduler=_forbid):
            yd = f(x)
        yn = f(xn)
        np.testing.assert_array_equal(yd.compute(), np.asarray(yn))
        for cell in np.ndindex(*yn.shape):
            assert _same(wh.backward(yd, cell), wh.backward(yn, cell))
            assert _same(wh.backward(yd, cell, control=True), wh.backward(yn, cell, control=True))
        assert wh.forward(x, (0, 3), yd).tolist() == wh.forward(xn, (0, 3), yn).tolist()


def test_tracked_lazy_index_arrays_and_control(client):
    wh.reset()
    v = np.arange(20.0).reshape(4, 5)
    x, xn = _pair(v, (2, 2), "x")
    m, mn = _pair(v[:, 0] > 4, 3, "m")
    i, i_n = _pair(np.array([4, 0, 0, 2]), 2, "i")
    for f in (lambda a, k, j: a[k], lambda a, k, j: a[:, j], lambda a, k, j: np.take(a, j, axis=1),
              lambda a, k, j: np.where(k[:, None], a, 0.0), lambda a, k, j: np.compress(k, a, axis=0)):
        yd, yn = f(x, m, i), f(xn, mn, i_n)
        np.testing.assert_array_equal(yd.compute(), np.asarray(yn))
        for cell in np.ndindex(*yn.shape):
            for control in (False, True):
                a, b = wh.backward(yd, cell, control=control), wh.backward(yn, cell, control=control)
                assert _same(a, b), (cell, control, a, b)
    with pytest.raises(NotImplementedError):
        x[m, i]  # two lazy index arrays: dask refuses, clearly
    with pytest.raises(LazyUnsupportedError):
        x[0, i]  # an int beside a tracked lazy index array: whence refuses, clearly


def test_mismatched_chunking_is_unified(client):
    wh.reset()
    v, w = np.arange(12.0).reshape(3, 4), np.arange(12.0).reshape(3, 4) * 10
    a, an = _pair(v, (1, 3), "a")
    b, bn = _pair(w, (2, 2), "b")
    c, cn = _pair(w[0], 1, "c")
    for f in (lambda p, q, r: p + q * r, lambda p, q, r: np.concatenate([p, q], axis=1),
              lambda p, q, r: np.where(p > 4, q, r), lambda p, q, r: p @ q.T, lambda p, q, r: p[q > 50]):
        yd, yn = f(a, b, c), f(an, bn, cn)
        np.testing.assert_array_equal(yd.compute(), np.asarray(yn))
        for cell in np.ndindex(*yn.shape):
            assert _same(wh.backward(yd, cell), wh.backward(yn, cell))
    with pytest.raises(ValueError):
        a + wh.track(da.ones((4, 3), chunks=2), name="bad")  # shapes that do not broadcast: dask's clear error


def test_unsupported_ops_are_refused_or_partial(client):
    wh.reset()
    x = wh.track(da.from_array(np.arange(6.0), chunks=2), name="x")
    for f in (np.sort, np.argsort, lambda a: np.add.at(a, [0], 1.0), lambda a: np.add.reduceat(a, [0, 2])):
        with pytest.raises(LazyUnsupportedError):
            with dask.config.set(scheduler=_forbid):
                f(x)
    with pytest.warns(wh.PartialLineageWarning), dask.config.set(scheduler=_forbid):
        e = wh.track(da.from_array(np.eye(2) * 2, chunks=2), name="e")
        inv = np.linalg.inv(e + x[:2])  # dask runs it lazily; whence: opaque, PARTIAL
    assert inv.lazy and not wh.backward(inv, (0, 0)).complete
    with pytest.warns(wh.PartialLineageWarning):
        y = np.choose(np.array([0, 1, 0, 1, 0, 1]), [x, x * 2])
    r = wh.backward(y, (0,))
    assert not r.complete and r["x"].shape[0] == 6  # all-to-all, PARTIAL: a superset, never silently wrong
    with pytest.warns(wh.PartialLineageWarning):
        u, counts = np.unique(x // 2, return_counts=True)
    assert not wh.backward(counts, (0,)).complete


def test_setitem_semantics_of_dask_values(client):
    wh.reset()
    v = np.arange(8.0)
    x = wh.track(da.from_array(v, chunks=3), name="x")
    before = x[2:6]
    x[2:4] = -1.0
    x[x > 5] = 0.0
    assert x.compute().tolist() == [0.0, 1.0, -1.0, -1.0, 4.0, 5.0, 0.0, 0.0]
    assert before.compute().tolist() == [2.0, 3.0, 4.0, 5.0]  # dask arrays are values: no aliasing
    assert wh.backward(before, (0,))["x"].tolist() == [[2]]
    assert wh.backward(x, (2,)) == {} and wh.backward(x, (7,)) == {}
    assert wh.backward(x, (5,))["x"].tolist() == [[5]]
    assert wh.forward(x, (5,), x).tolist() == [[5]]


# ------------------------------------------------------------------------------ relation to Parquet

def test_relation_to_parquet_and_duckdb(client, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    wh.reset()
    v = np.arange(24.0).reshape(4, 6)
    x, xn = _pair(v, (2, 3), "x")

    def f(a):
        return np.cumsum(np.where(a % 4 == 1, a * 2, 0.0), axis=1).T

    y, yn = f(x), f(xn)
    out = wh.lineage(y).to_parquet(str(tmp_path / "rel"))
    assert out["cells"] > 0 and os.path.exists(tmp_path / "rel" / "ops.parquet")
    con = duckdb.connect()
    register_duckdb(con, str(tmp_path / "rel"))
    # the class-C step (where) as explicit cells, queried in SQL: which source cells feed output cell 7?
    ops = dict(con.sql("SELECT id, op FROM whence_ops").fetchall())
    where_id = next(i for i, op in ops.items() if op == "where")
    rows = con.sql(f"SELECT out, src FROM whence_index_arrays WHERE op_id = {where_id} ORDER BY out").fetchall()
    mask = (v % 4 == 1).ravel()
    assert [o for o, _ in rows] == np.flatnonzero(mask).tolist() and all(o == s for o, s in rows)
    n_rect = con.sql("SELECT count(*) FROM whence_rectangles").fetchone()[0]
    assert n_rect >= 4  # rectangles clipped per output chunk
    cum_id = next(i for i, op in ops.items() if op == "cumsum")
    got = con.sql(f"SELECT out_lo, out_hi, hi_off FROM whence_rectangles WHERE op_id = {cum_id} ORDER BY chunk"
                  ).fetchall()
    assert [tuple(r[0]) for r in got] == [(0, 0), (0, 3), (2, 0), (2, 3)]
    assert wh.lineage(yn).rectangles()["out_lo"]  # the numpy relation has the same rows, unclipped


def test_worker_lost_mid_computation(tmp_path):
    """Kill one worker process of a 2-process cluster while a class-C query and the relation compute."""
    import threading
    import time

    wh.reset()
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    try:
        v = np.arange(4000.0).reshape(40, 100)
        marker = tmp_path / "started"
        x = wh.track(da.from_array(v, chunks=(2, 100)).map_blocks(_slow, marker=str(marker), dtype=float), name="x")
        y = np.where(x % 7 == 0, x, 0.0)[::-1]
        pids = list(c.run(os.getpid).values())

        def kill():  # as soon as the first task of the query has started on a worker
            while not marker.exists():
                time.sleep(0.01)
            time.sleep(0.15)
            os.kill(pids[0], 9)
            killed.append(pids[0])

        killed = []

        t = threading.Thread(target=kill)
        t.start()
        got = wh.forward(x, (3, 1), y)  # 301 = 7 * 43: selected, and row 3 is row 36 once reversed
        out = wh.lineage(y).to_parquet(str(tmp_path / "rel"))
        t.join()
        assert killed and got.tolist() == [[36, 1]]
        duckdb = pytest.importorskip("duckdb")
        con = duckdb.connect()
        register_duckdb(con, str(tmp_path / "rel"))
        n = con.sql("SELECT count(*) FROM whence_index_arrays").fetchone()[0]
        assert n == int((v % 7 == 0).sum()) and out["cells"] > 0
    finally:
        import asyncio
        try:
            c.close()
            cluster.close()
        except (TimeoutError, asyncio.TimeoutError, asyncio.CancelledError):
            pass  # distributed before 2025 can time out closing a cluster one of whose workers was killed


def _slow(b, marker):
    import time
    open(marker, "a").close()
    time.sleep(0.1)
    return b


def test_mixed_operands_ufunc_methods_and_cells(client):
    wh.reset()
    v = np.arange(12.0).reshape(3, 4)
    x = wh.track(da.from_array(v, chunks=2), name="x")
    n = wh.track(v * 10, name="n")  # numpy-backed
    plain = da.from_array(np.ones(4), chunks=3)  # an untracked dask operand is a constant
    y = x + n + plain
    assert y.lazy and wh.backward(y, (1, 2))["n"].tolist() == [[1, 2]]
    assert wh.backward(y, (1, 2))["x"].tolist() == [[1, 2]]
    m = n[x > 5]  # a numpy-backed array indexed by a lazy tracked mask
    assert m.lazy and m.compute().tolist() == (v * 10)[v > 5].tolist()
    r = wh.backward(m, (0,), control=True)
    assert r["n"].tolist() == [[1, 2]] and r["x"].tolist() == [[1, 2]]
    s = np.add.reduce(x, axis=1)
    c = np.multiply.accumulate(x, axis=0)
    assert s.lazy and wh.backward(s, (2,))["x"].tolist() == [[2, j] for j in range(4)]
    assert wh.backward(c, (1, 3))["x"].tolist() == [[0, 3], [1, 3]]
    assert y.cell(2, 3).value == v[2, 3] * 11 + 1
    assert y.cell(2, 3).parents == [("n", (2, 3)), ("x", (2, 3))]
    parts = np.array_split(x, 3, axis=1)
    assert [p.shape for p in parts] == [(3, 2), (3, 1), (3, 1)]
    assert wh.backward(parts[2], (0, 0))["x"].tolist() == [[0, 3]]


# ------------------------------------------------------------------------------------ the store

@S.cfg(20)
@given(S.pipelines(ops=DASK_OPS, max_steps=8), st.data())
def test_random_dask_pipelines_saved_and_reopened(client, tmp_path_factory, p, data):
    """A dask-tracked object saved to the store (lazy index arrays computed at save, unknown shapes resolved)
    answers backward like the live object after reopening."""
    pytest.importorskip("duckdb")
    assume(_no_writes(p))
    chunks = {n: tuple(data.draw(st.integers(1, max(d, 1))) for d in np.shape(v)) for n, v in p.sources}
    pool_d, _ = _replay_dask(p, chunks)
    assume(pool_d is not None)
    outs = {f"y{i}": pool_d[i] for i in p.output_indices()}
    path = tmp_path_factory.mktemp("dstore") / "s.duckdb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wh.PartialLineageWarning)
        wh.save(path, "r", objects=outs)
    ctx = _dask_script(p, chunks)
    with wh.open(path) as store:
        for name, y in outs.items():
            h = store["r"][name]
            assert tuple(h.shape) == tuple(np.shape(np.asarray(y))), ctx
            cells = O.sample_cells(tuple(h.shape), 3)
            for cell in cells:
                live, saved = wh.backward(y, cell), wh.backward(h, cell)
                assert {k: v.tolist() for k, v in live.items()} == {k: v.tolist() for k, v in saved.items()}, ctx
                assert live.complete == saved.complete, ctx


def test_store_references_a_relation_dataset(client, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    from whence.errors import StoreKeyError
    wh.reset()
    v = np.arange(24.0).reshape(4, 6)
    x = wh.track(da.from_array(v, chunks=(2, 3)), name="x")
    y = np.cumsum(np.where(x % 4 == 1, x * 2, 0.0), axis=1).T
    folder = tmp_path / "audit"
    folder.mkdir()
    wh.lineage(y).to_parquet(str(folder / "rel"))
    store_path = folder / "s.duckdb"
    wh.save(store_path, "r", y=y, datasets={"rel": folder / "rel"})
    # the folder moves as a whole: the dataset is recorded relative to the store
    moved = tmp_path / "moved"
    folder.rename(moved)
    with wh.open(moved / "s.duckdb") as store:
        run = store["r"]
        assert run.results() == [{"name": "rel", "kind": "parquet_dataset"}]
        assert run.dataset("rel") == (moved / "rel").resolve()
        views = store.dataset_views("r", "rel")
        assert set(views) >= {"rel_ops", "rel_rectangles", "rel_index_arrays"}
        where_id = int(store.sql("SELECT id FROM rel_ops WHERE op = 'where'").id[0])
        rows = store.sql(f"SELECT out, src FROM rel_index_arrays WHERE op_id = {where_id} ORDER BY out")
        assert rows.out.tolist() == np.flatnonzero((v % 4 == 1).ravel()).tolist()
        # the same answers as the live array, from the store's own lineage
        for cell in [(0, 0), (3, 1), (5, 3)]:
            live, saved = wh.backward(y, cell), wh.backward(run["y"], cell)
            assert {k: v.tolist() for k, v in saved.items()} == {k: v.tolist() for k, v in live.items()}
        assert wh.backward(run["y"], (3, 1))["x"].tolist() == [[1, 3]]  # y = cumsum(...).T: x[1, 3] = 9
        with pytest.raises(StoreKeyError, match="references no dataset named 'nope'"):
            run.dataset("nope")
        with pytest.raises(ValueError, match="plain SQL identifier"):
            store.dataset_views("r", "rel", prefix="x; DROP")
    con = duckdb.connect()
    register_duckdb(con, str(moved / "rel"))
    assert con.sql("SELECT count(*) FROM whence_ops").fetchone()[0] >= 4
    # bad input: nothing written
    other = tmp_path / "o.duckdb"
    with pytest.raises(FileNotFoundError, match="no directory"):
        wh.save(other, "r", y=y, datasets={"rel": tmp_path / "missing"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no ops.parquet"):
        wh.save(other, "r", y=y, datasets={"rel": tmp_path / "empty"})
    with pytest.raises(ValueError, match="names both a result and a dataset"):
        wh.save(other, "r", y=y, datasets={"rel": moved / "rel"}, results={"rel": {"kind": "k"}})
    assert not other.exists()
    # a dataset deleted since: a clear error
    import shutil
    shutil.rmtree(moved / "rel")
    with wh.open(moved / "s.duckdb") as store:
        with pytest.raises(FileNotFoundError, match="is gone"):
            store["r"].dataset("rel")


def test_maps_after_an_unknown_size_complete_whatever_the_query_order(client):
    """An op recorded after a data-dependent size (a sum of a masked array) is completed even when the masked
    array itself was queried first (its shape already resolved by then)."""
    wh.reset()
    v = np.array([2.0, 5.0, 1.0, 7.0])
    b, bn = _pair(v, 2, "b")
    outs = []
    for src in (b, bn):
        m = src[src > 1.5]
        outs.append((m, np.sum(m), np.cumsum(m) * 2, abs(m)))
    (m, s, c, a), (mn, sn, cn, an) = outs
    assert _same(wh.backward(m, (1,)), wh.backward(mn, (1,)))  # resolves m's shape first
    assert wh.backward(s, ())["b"].tolist() == [[0], [1], [3]]
    for yd, yn, cell in ((s, sn, ()), (c, cn, (2,)), (a, an, (2,))):
        assert _same(wh.backward(yd, cell), wh.backward(yn, cell))


def test_relation_export_estimates_size_and_time_first(client, tmp_path, monkeypatch, capfd):
    """Before a large export: its estimated size and time on stderr, then a progress bar; the estimate counts the
    index-array cells that are written."""
    import whence.dask.parquet_export as wdp
    wh.reset()
    rng = np.random.default_rng(3)
    v = rng.random((60, 50))
    x = wh.track(da.from_array(v, chunks=(20, 25)), name="x")
    y = np.where(x > 0.5, x * 2, 0.0)
    monkeypatch.setattr(wdp, "ESTIMATE_ABOVE_BYTES", 0)
    monkeypatch.setenv("WHENCE_PROGRESS", "1")
    out = wh.lineage(y).to_parquet(str(tmp_path / "rel"))
    err = capfd.readouterr().err
    est = out["estimate"]
    assert est["index_cells"] == v.size  # where's index array: one cell per output cell
    assert est["bytes"] == 4 * v.size and est["seconds"] > 0 and est["tasks"] >= 6
    assert "about 12.0 KB" in err and "index-array cells" in err
    monkeypatch.setenv("WHENCE_PROGRESS", "0")
    wh.lineage(y).to_parquet(str(tmp_path / "rel2"))
    assert "about" not in capfd.readouterr().err  # WHENCE_PROGRESS=0: silent


def test_dask_contributes_only_what_differs_to_the_one_function_table():
    """The dask backend's lazy rules sit in the numpy function table (registry.implements_for): each is a function
    with a bucket there, a function without a lazy rule runs numpy's handler, and a backend handler for a function
    in no bucket is refused."""
    from whence.buckets import registry
    lazy = registry.backend_handlers("dask")
    assert {np.where, np.compress, np.extract, np.take, np.unique, np.nonzero} <= set(lazy)
    assert all(registry.bucket_of(f) is not None for f in lazy)
    assert np.cumsum not in lazy and registry.bucket_of(np.cumsum) == "B"

    def not_in_the_table():
        pass

    with pytest.raises(RuntimeError, match="sits in no bucket"):
        registry.implements_for("dask", not_in_the_table)(lambda func, *a, **k: None)
    assert not_in_the_table not in lazy
    with pytest.raises(RuntimeError, match="registered twice"):
        registry.implements_for("dask", np.where)(lambda func, *a, **k: None)
    assert lazy[np.where].__module__ == "whence.dask.array"
