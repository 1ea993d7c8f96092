"""The same code through a scheduler address: a scheduler and two worker processes on loopback, and a client
that knows only the address (as on several machines)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

import whence as wh  # noqa: E402
from whence.attribution.gradient_store import GradientStore  # noqa: E402
from whence.dask.attribution import DaskGradientStore  # noqa: E402


@pytest.fixture(scope="module")
def address():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def client(address):
    with distributed.Client(address) as c:  # a separate client, connected by address only
        yield c


def test_frame_query_through_the_address(client, tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    a = pd.DataFrame({"k": rng.integers(0, 5, n), "v": rng.integers(0, 100, n).astype(float)})
    b = pd.DataFrame({"k": np.arange(5), "z": np.arange(5) * 10.0})
    for i, lo in enumerate(range(0, n, 20)):
        a.iloc[lo:lo + 20].to_csv(tmp_path / f"a{i}.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    ta = wh.read_csv(str(tmp_path / "a*.csv"), name="a")
    tb = wh.read_csv([tmp_path / "b.csv"], name="b")
    m = ta[ta["v"] > 30].merge(tb, on="k")
    g = m.groupby("k").agg(total=("v", "sum"), z=("z", "max"))
    res = g.compute()
    assert len(client.nthreads()) == 2  # two worker processes behind the address
    expect = a[a["v"] > 30].merge(b, on="k").groupby("k").agg(total=("v", "sum"), z=("z", "max"))
    pd.testing.assert_frame_equal(res, expect, check_dtype=False)
    for i, key in enumerate(res.index):
        tr = wh.trace_to_file(g, row=i)
        assert tr.complete
        rows_a = sorted(r.row for r in tr if r.table == "a")
        assert rows_a == a.index[(a["k"] == key) & (a["v"] > 30)].tolist()
        assert [r.row for r in tr if r.table == "b"] == [int(key)]
        for r in tr:
            if r.table == "a":
                assert r.path.endswith(f"a{r.row // 20}.csv") and r.line == r.row % 20 + 2
    fw = g.forward("a", rows=[int(a.index[a["v"] > 30][0])])
    assert fw[:, 0].tolist() == [list(res.index).index(a.loc[a.index[a["v"] > 30][0], "k"])]


def test_distributed_topk_through_the_address(client):
    rng = np.random.default_rng(1)
    G = rng.standard_normal((5000, 32)).astype(np.float16)
    Q = rng.standard_normal((4, 32)).astype(np.float32)
    ds = DaskGradientStore.from_array(G, rows_per_chunk=1200)
    with distributed.get_task_stream(client) as ts:
        got = ds.topk(Q, k=10, client=client)
    assert len({t["worker"] for t in ts.data}) == 2
    want = GradientStore.from_array(None, G, dtype="float16").topk(Q, k=10)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.values, want.values, rtol=1e-6)
    gen = DaskGradientStore.generated(20_000, 16, rows_per_chunk=5000, seed=2)
    t1 = gen.topk(Q[:, :16], k=5, client=client)
    t2 = gen.topk(Q[:, :16], k=5)  # the default client: the same cluster
    np.testing.assert_array_equal(t1.indices, t2.indices)
