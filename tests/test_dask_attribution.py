"""Gradient stores partitioned across dask workers, and the LDS harness on a cluster, against one machine."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from whence.attribution.gradient_store import GradientStore  # noqa: E402
from whence.dask.attribution import DaskGradientStore, chunk_topk, lds as dask_lds, merge_topk  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("seed", range(4))
def test_topk_equals_single_machine(dtype, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 900))
    d = int(rng.integers(1, 40))
    G = rng.standard_normal((n, d)).astype(dtype)
    if seed % 2:  # ties: repeated rows and a coarse grid of values
        G[rng.integers(0, n, n // 3)] = G[0]
        G = np.round(G * 2).astype(dtype) / 2
    Q = rng.standard_normal((int(rng.integers(1, 6)), d)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, n).astype(np.float32) if seed == 2 else None
    ref = GradientStore.from_array(None, G, dtype=dtype, weights=w)
    for rows in (int(rng.integers(1, 60)), 97, n):
        ds = DaskGradientStore.from_array(G, rows_per_chunk=rows, weights=w)
        for k in (1, 7, min(n, 64), n + 5):
            for largest in (True, False):
                got = ds.topk(Q, k=k, largest=largest)
                want = ref.topk(Q, k=k, largest=largest)
                np.testing.assert_array_equal(got.indices, want.indices)
                np.testing.assert_allclose(got.values, want.values, rtol=1e-6)
    np.testing.assert_allclose(ds.scores(Q).compute(), ref.scores(Q), rtol=1e-6, atol=1e-6)
    v = ds.topk(Q[0], k=3)
    assert v.indices.shape == (3,)


def test_topk_on_a_cluster_from_shards(client, tmp_path):
    rng = np.random.default_rng(5)
    G = rng.standard_normal((2500, 48)).astype(np.float16)
    paths = []
    for i, (lo, hi) in enumerate([(0, 700), (700, 1900), (1900, 2500)]):
        p = str(tmp_path / f"shard{i}.f16")
        GradientStore.from_array(p, G[lo:hi], dtype="float16").close()
        paths.append(p)
    ds = DaskGradientStore.from_stores(paths, rows_per_chunk=500)
    assert ds.shape == (2500, 48) and ds.npartitions == 7  # 2 + 3 + 2 chunks of <= 500 rows
    Q = rng.standard_normal((8, 48)).astype(np.float32)
    ref = GradientStore.from_array(None, G, dtype="float16")
    got = ds.topk(Q, k=25, client=client)
    want = ref.topk(Q, k=25)
    np.testing.assert_array_equal(got.indices, want.indices)
    # products blocked otherwise than on one machine may round differently in the last place
    np.testing.assert_allclose(got.values, want.values, rtol=1e-6)


def test_merge_and_chunk_helpers():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 5)).astype(np.float32)
    A = rng.standard_normal((2, 5)).astype(np.float32)
    parts = [chunk_topk(X[lo:lo + 70], A, lo, 10, 300, sub_rows=16) for lo in range(0, 300, 70)]
    v, i = merge_topk(parts, 10)
    S = A @ X.T
    np.testing.assert_array_equal(i, np.argsort(-S, axis=1, kind="stable")[:, :10])


def test_generated_store_is_deterministic():
    a = DaskGradientStore.generated(10_000, 32, rows_per_chunk=3000, dtype="float16", seed=3)
    b = DaskGradientStore.generated(10_000, 32, rows_per_chunk=3000, dtype="float16", seed=3)
    Q = np.ones((2, 32), np.float32)
    assert a.npartitions == 4 and a.G.dtype == np.float16
    ta, tb = a.topk(Q, k=5), b.topk(Q, k=5)
    np.testing.assert_array_equal(ta.indices, tb.indices)
    G = a.G.compute()
    assert not np.array_equal(G[:3000], G[3000:6000])
    want = GradientStore.from_array(None, G, dtype="float16").topk(Q, k=5)
    np.testing.assert_array_equal(ta.indices, want.indices)


def test_lds_on_a_cluster_equals_serial(client):
    from sklearn.linear_model import LogisticRegression
    from whence.attribution import Attributor
    from whence.attribution.lds import lds
    rng = np.random.default_rng(0)
    X = rng.standard_normal((160, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.5 * rng.standard_normal(160) > 0).astype(int)
    Xtr, ytr, Xte, yte = X[:120], y[:120], X[120:], y[120:]
    attr = Attributor(LogisticRegression(C=1.0, tol=1e-8, max_iter=2000).fit(Xtr, ytr), Xtr, ytr)
    serial = lds(attr, Xtr, ytr, Xte, yte, n_subsets=12, seed=3, n_jobs=1, progress=False, noise_subsets=0)
    with distributed.get_task_stream(client) as ts:
        on = dask_lds(attr, Xtr, ytr, Xte, yte, client=client, n_subsets=12, seed=3, noise_subsets=0)
    assert len({t["worker"] for t in ts.data}) == 2  # the retraining ran as tasks on both workers
    np.testing.assert_array_equal(on.outputs, serial.outputs)
    assert on.mean == serial.mean and on.per_target.tolist() == serial.per_target.tolist()
