"""GradientStore (memory-mapped projected gradients, blocked scoring, streaming top-k) and the projections."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from whence.attribution import gradient_store as gs_mod
from whence.attribution import projection as proj_mod
from whence.attribution.gradient_store import GradientStore
from whence.attribution.projection import RademacherProjection, SJLTProjection


def _rng(seed=0):
    return np.random.default_rng(seed)


def _ref_top(S, k, largest=True):
    key = -S if largest else S
    idx = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(S, idx, 1), idx


@pytest.fixture
def G():
    return _rng(1).standard_normal((1037, 48)).astype(np.float32)


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "grads.bin")


# ------------------------------------------------------------------------------------------ top-k, scores
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("block", [None, 5, 64, 1000])
def test_topk_equals_argsort_of_full_matrix(G, dtype, block):
    s = GradientStore.from_array(None, G, dtype=dtype)
    Q = _rng(2).standard_normal((7, 48)).astype(np.float32)
    S = s.scores(Q, block=block)
    for kk in (1, 10, 33):
        top = s.topk(Q, k=kk, block=block)
        v, i = _ref_top(S, kk)
        np.testing.assert_array_equal(top.indices, i)
        np.testing.assert_array_equal(top.values, v)
        bot = s.topk(Q, k=kk, largest=False, block=block)
        v, i = _ref_top(S, kk, largest=False)
        np.testing.assert_array_equal(bot.indices, i)
        np.testing.assert_array_equal(bot.values, v)


@pytest.mark.parametrize("block", [3, 16, 100, None])
def test_topk_ties_broken_by_lower_index(block):
    # integer data: exact dot products, many equal scores, duplicate rows across blocks
    g = _rng(3)
    base = g.integers(-2, 3, (20, 6)).astype(np.float32)
    G = base[g.integers(0, 20, 300)]
    Q = g.integers(-1, 2, (9, 6)).astype(np.float32)
    Q[0] = 0.0                                   # every score equal
    s = GradientStore.from_array(None, G, dtype="float16")
    S = s.scores(Q)
    np.testing.assert_array_equal(S, Q @ G.T)
    for kk in (1, 5, 40):
        (tv, ti), (bv, bi) = s.topk(Q, k=kk, also_bottom=True, block=block)
        rv, ri = _ref_top(S, kk)
        np.testing.assert_array_equal(ti, ri)
        np.testing.assert_array_equal(tv, rv)
        rv, ri = _ref_top(S, kk, largest=False)
        np.testing.assert_array_equal(bi, ri)
        np.testing.assert_array_equal(bv, rv)
    np.testing.assert_array_equal(s.topk(Q[0], k=4, block=block).indices, [0, 1, 2, 3])


def test_topk_k_clipped_and_vector_query(G):
    s = GradientStore.from_array(None, G[:5], dtype="float32")
    top = s.topk(G[0], k=50)
    assert top.values.shape == (5,) and top.indices[0] == 0
    assert sorted(top.indices.tolist()) == [0, 1, 2, 3, 4]
    assert s.scores(G[0]).shape == (5,)


def test_weights_scale_columns(G, path):
    w = _rng(4).random(G.shape[0]).astype(np.float32)
    Q = _rng(5).standard_normal((3, 48)).astype(np.float32)
    s = GradientStore.from_array(path, G, dtype="float32", weights=w)
    plain = s.scores(Q, weights=np.ones(G.shape[0]))
    S = s.scores(Q)
    np.testing.assert_allclose(S, plain * w, rtol=1e-6)
    _, i = _ref_top(S, 10)
    top, bot = s.topk(Q, k=10, also_bottom=True, block=100)
    np.testing.assert_array_equal(top.indices, i)
    np.testing.assert_array_equal(bot.indices, _ref_top(S, 10, largest=False)[1])
    s.close()
    r = GradientStore.open(path)                  # the weights were saved next to the store
    np.testing.assert_array_equal(r.weights, w)
    np.testing.assert_array_equal(r.scores(Q), S)
    np.testing.assert_array_equal(r.gram(), GradientStore.from_array(None, G, dtype="float32").gram())
    r.close()
    rw = GradientStore.open(path, mode="r+")
    rw.weights = None
    rw.close()
    assert GradientStore.open(path).weights is None and not os.path.exists(path + ".weights.npy")


def test_float16_close_to_float32(G):
    Q = _rng(6).standard_normal((5, 48)).astype(np.float32)
    exact = Q.astype(np.float64) @ G.T.astype(np.float64)
    S16 = GradientStore.from_array(None, G, dtype="float16").scores(Q)
    S32 = GradientStore.from_array(None, G, dtype="float32").scores(Q)
    scale = np.abs(exact).max()
    assert np.abs(S32 - exact).max() < 1e-5 * scale
    assert np.abs(S16 - exact).max() < 3e-3 * scale


def test_scores_out_memmap(G, tmp_path):
    s = GradientStore.from_array(None, G, dtype="float16")
    Q = _rng(7).standard_normal((4, 48)).astype(np.float32)
    out = np.memmap(tmp_path / "S.bin", dtype=np.float32, mode="w+", shape=(4, G.shape[0]))
    r = s.scores(Q, out=out, block=100)
    assert r is out
    np.testing.assert_array_equal(np.asarray(out), s.scores(Q, block=100))


# ----------------------------------------------------------------------------------- file, fill, gram
def test_reopen_and_sidecar(G, path):
    s = GradientStore(path, n=G.shape[0], k=48, dtype="float16")
    assert s.fill((G[i:i + 100] for i in range(0, G.shape[0], 100)), progress=False) == G.shape[0]
    s.close()
    with pytest.raises(ValueError, match="closed"):
        s.scores(G[:1])
    with open(path + ".json") as f:
        meta = json.load(f)
    assert meta["format"] == "whence.GradientStore" and (meta["n"], meta["k"], meta["dtype"]) == (1037, 48, "float16")
    assert os.path.getsize(path) == 1037 * 48 * 2
    raw = np.memmap(path, dtype="<f2", mode="r", shape=(1037, 48))     # headerless: any tool can map it
    np.testing.assert_array_equal(raw, G.astype(np.float16))
    with GradientStore.open(path) as r:
        assert r.shape == (1037, 48) and r.dtype == np.float16 and r.readonly
        np.testing.assert_array_equal(r.rows(), G.astype(np.float16).astype(np.float32))
        with pytest.raises(ValueError, match="read-only"):
            r.write(0, G[:1])
    r = GradientStore(path, 1037, 48, dtype="float16", mode="r+")
    r.write(5, np.zeros(48, np.float32))
    r.close()
    assert not GradientStore.open(path).array[5].any()
    with pytest.raises(ValueError, match="holds"):
        GradientStore(path, 1000, 48, dtype="float16", mode="r")


def test_chunked_fill_equals_from_array(G, path):
    a = GradientStore.from_array(None, G, dtype="float16")
    b = GradientStore(path, *G.shape, dtype="float16")
    sizes = [1, 300, 0, 500, 236]
    chunks, pos = [], 0
    for sz in sizes:
        chunks.append(G[pos:pos + sz])
        pos += sz
    assert b.fill(iter(chunks), progress=False) == G.shape[0]
    np.testing.assert_array_equal(a.array, b.array)
    # a partial fill resumes from a row
    c = GradientStore(None, *G.shape, dtype="float16")
    assert c.fill([G[:500]], progress=False) == 500
    assert c.fill([G[500:]], progress=False, start=500) == G.shape[0]
    np.testing.assert_array_equal(a.array, c.array)


def test_progress_bar(capsys, monkeypatch):
    from whence.progress import progress_bar
    monkeypatch.delenv("WHENCE_PROGRESS", raising=False)
    with progress_bar(100, "fill", delay=0.0, unit="rows") as bar:         # slow work: a bar on stderr
        bar.update(40)
        bar.update(60)
    err = capsys.readouterr().err
    assert "fill" in err and "/100" in err and "rows" in err
    with progress_bar(100, "fill", delay=30.0) as quiet:                   # fast work: no bar at all
        quiet.update(100)
    assert capsys.readouterr().err == "" and quiet.n == 100
    monkeypatch.setenv("WHENCE_PROGRESS", "0")                             # turned off for the whole process
    with progress_bar(100, "fill", delay=0.0) as off:
        off.update(100)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_gram(G, dtype):
    s = GradientStore.from_array(None, G, dtype=dtype)
    X = s.rows().astype(np.float64)
    ref = X.T @ X
    for block in (None, 7, 500, 5000):
        np.testing.assert_allclose(s.gram(block=block), ref, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(s.gram(precision="float32"), ref, rtol=1e-4, atol=1e-3)
    assert s.gram().dtype == np.float64


@pytest.mark.parametrize("torch_cast", [True, False])
def test_large_blocks_cast_and_check(monkeypatch, torch_cast):
    # blocks of >= 65536 values take the torch cast / min-max when torch is importable: same bits either way
    if not torch_cast:
        monkeypatch.setattr(gs_mod, "_TORCH", False)
    G = _rng(8).standard_normal((3000, 48)).astype(np.float32) * 100
    s = GradientStore.from_array(None, G, dtype="float16")
    np.testing.assert_array_equal(s.array, G.astype(np.float16))
    np.testing.assert_array_equal(s.rows(), G.astype(np.float16).astype(np.float32))
    Q = _rng(9).standard_normal((3, 48)).astype(np.float32)
    np.testing.assert_allclose(s.scores(Q), Q @ G.astype(np.float16).astype(np.float32).T, rtol=1e-5, atol=1e-2)
    bad = G.copy()
    bad[2500, 7] = np.nan
    with pytest.raises(ValueError, match=r"rows 0:3000 has NaN or infinite values in rows \[2500\]"):
        s.write(0, bad)
    bad[2500, 7] = 0.0
    bad[[10, 20], 3] = 7e4
    with pytest.raises(ValueError, match=r"beyond float16's range .* rows \[10, 20\]"):
        s.write(0, bad)


# -------------------------------------------------------------------------------------------- bad input
def test_bad_input(G, path, tmp_path):
    s = GradientStore(path, 10, 48, dtype="float16")
    with pytest.raises(ValueError, match=r"shape \(b, 48\)"):
        s.write(0, np.zeros((2, 47), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        s.write(9, np.zeros((2, 48), np.float32))
    with pytest.raises(ValueError, match="out of range"):
        s.write(-1, np.zeros((1, 48), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        s.write(0, np.zeros((1, 48), np.int64))
    with pytest.raises(TypeError, match="start must be an integer"):
        s.write(1.0, np.zeros((1, 48), np.float32))
    bad = np.zeros((3, 48), np.float32)
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match=r"rows 4:7 has NaN or infinite values in rows \[5\]"):
        s.write(4, bad)
    bad[1, 5] = 0.0
    bad[2, 0] = -1e6
    with pytest.raises(ValueError, match=r"beyond float16's range .* rows \[6\]"):
        s.write(4, bad)
    GradientStore(None, 3, 48, dtype="float32").write(0, bad)          # fine in float32
    with pytest.raises(ValueError, match=r"out of range"):
        s.fill([np.zeros((6, 48), np.float32)] * 2, progress=False)
    with pytest.raises(ValueError, match="float16' or 'float32"):
        GradientStore(None, 3, 4, dtype="int8")
    with pytest.raises(ValueError, match="float16' or 'float32"):
        GradientStore(None, 3, 4, dtype="float64")
    with pytest.raises(ValueError, match="n must be >= 1"):
        GradientStore(None, 0, 4)
    with pytest.raises(TypeError, match="k must be an integer"):
        GradientStore(None, 3, 4.0)
    with pytest.raises(ValueError, match="mode"):
        GradientStore(None, 3, 4, mode="a")
    with pytest.raises(ValueError, match=r"Q must have shape \(m, 48\)"):
        s.scores(np.zeros((2, 47), np.float32))
    with pytest.raises(ValueError, match=r"Q has NaN or infinite values in rows \[1\]"):
        s.topk(np.array([[0.0] * 48, [np.inf] + [0.0] * 47]))
    with pytest.raises(ValueError, match="out must be a float32 array"):
        s.scores(np.zeros((2, 48), np.float32), out=np.zeros((2, 9), np.float32))
    with pytest.raises(ValueError, match=r"weights must have shape \(10,\)"):
        s.weights = np.ones(9)
    with pytest.raises(ValueError, match="weights have NaN"):
        s.scores(np.zeros((1, 48)), weights=np.full(10, np.nan))
    with pytest.raises(ValueError, match="also_bottom"):
        s.topk(np.zeros((1, 48)), largest=False, also_bottom=True)
    with pytest.raises(ValueError, match="k must be >= 1"):
        s.topk(np.zeros((1, 48)), k=0)
    with pytest.raises(ValueError, match="2-D"):
        GradientStore.from_array(None, np.zeros(5, np.float32))
    s.close()
    # truncated, too long, no sidecar, not a sidecar
    with open(path, "r+b") as f:
        f.truncate(10 * 48 * 2 - 1)
    with pytest.raises(ValueError, match="truncated: 959 bytes, expected 960"):
        GradientStore.open(path)
    with open(path, "r+b") as f:
        f.truncate(10 * 48 * 2 + 2)
    with pytest.raises(ValueError, match="expected 960"):
        GradientStore.open(path)
    other = str(tmp_path / "nosidecar.bin")
    open(other, "wb").close()
    with pytest.raises(FileNotFoundError, match="no sidecar"):
        GradientStore.open(other)
    with open(other + ".json", "w") as f:
        json.dump({"format": "something else"}, f)
    with pytest.raises(ValueError, match="not a GradientStore sidecar"):
        GradientStore.open(other)
    with pytest.raises(FileNotFoundError, match="no data file"):
        GradientStore.open(str(tmp_path / "missing.bin"))
    with pytest.raises(ValueError, match="mode"):
        GradientStore.open(path, mode="w+")


# ------------------------------------------------------------------------------------------ projections
def _pairs(d, n=40, seed=0):
    g = _rng(seed)
    X = g.standard_normal((n, d))
    X[n // 2:] += 0.7 * X[: n - n // 2]           # some correlated pairs: inner products of all sizes
    return X.astype(np.float32)


@pytest.mark.parametrize("make", [lambda d, k, seed: SJLTProjection(d, k, s=4, seed=seed),
                                  lambda d, k, seed: RademacherProjection(d, k, seed=seed)],
                         ids=["sjlt", "rademacher"])
def test_projection_preserves_inner_products(make):
    d, k = 3000, 1024
    X = _pairs(d)
    ip = X.astype(np.float64) @ X.T.astype(np.float64)
    norms = np.sqrt(np.diag(ip))
    scale = np.outer(norms, norms)
    errs = []
    for seed in range(4):
        Z = make(d, k, seed).project(X).astype(np.float64)
        pip = Z @ Z.T
        # norms within tolerance for k = 1024 (relative std ~ sqrt(2 / k) = 4.4 %)
        assert np.all(np.abs(np.sqrt(np.diag(pip)) / norms - 1) < 0.15)
        # every inner product within a few standard deviations (~ ||x|| ||y|| sqrt(2 / k))
        assert np.abs(pip - ip).max() < 0.25 * scale.max()
        errs.append((pip - ip) / scale)
    # unbiased: the mean error over pairs and seeds is ~0 (its std is ~0.044 / sqrt(#pairs x #seeds))
    assert abs(np.mean(errs)) < 0.01
    assert np.std(errs) < 0.06


def test_projection_determinism_and_shapes():
    X = _pairs(500, n=5)
    for P, Q, R in [(SJLTProjection(500, 64, seed=3), SJLTProjection(500, 64, seed=3), SJLTProjection(500, 64, seed=4)),
                    (RademacherProjection(500, 64, seed=3, block=50), RademacherProjection(500, 64, seed=3, block=77),
                     RademacherProjection(500, 64, seed=4))]:
        Z = P.project(X)
        assert Z.shape == (5, 64) and Z.dtype == np.float32
        np.testing.assert_allclose(Q.project(X), Z, rtol=1e-5, atol=1e-5)   # same seed (block independent)
        assert not np.allclose(R.project(X), Z)
        np.testing.assert_array_equal(P.project(X[0]), P(X[:1])[0])        # a vector; __call__
        np.testing.assert_allclose(P.project(X.astype(np.float64)), Z, rtol=1e-5, atol=1e-5)
    R = RademacherProjection(500, 64, seed=3).matrix(0, 500)
    assert set(np.unique(R).tolist()) == {-0.125, 0.125}
    assert abs(R.mean()) < 0.01
    S = SJLTProjection(500, 66, s=4, seed=0)             # k not a multiple of s: blocks of 16 and 17
    rows = S.rows
    assert rows.shape == (500, 4) and rows.dtype == np.int32
    assert all(len(set(r)) == 4 for r in rows.tolist())                 # s distinct targets per coordinate
    bounds = [0, 16, 33, 49, 66]
    for t in range(4):
        assert rows[:, t].min() >= bounds[t] and rows[:, t].max() < bounds[t + 1]
    np.testing.assert_array_equal(np.abs(S.values), 0.5)


def test_sjlt_without_scipy_matches(monkeypatch):
    X = _pairs(400, n=6)
    P = SJLTProjection(400, 32, seed=1)
    Z = P.project(X)
    monkeypatch.setattr(proj_mod, "_SPARSE", False)
    P2 = SJLTProjection(400, 32, seed=1)
    np.testing.assert_allclose(P2.project(X), Z, rtol=1e-5, atol=1e-5)


def test_projection_memory_is_O_d_at_1e7():
    d, k = 10_000_000, 4096
    dense = 4 * d * k                                     # 164 GB: never allocated
    R = RademacherProjection(d, k, seed=0)
    assert R.nbytes <= 8 * 2**20 and R.nbytes * 1000 < dense
    P = SJLTProjection(d, k, s=2, seed=0)
    assert P.nbytes <= (8 * 2 + 5) * d and P.nbytes * 500 < dense   # int32 row + float32 value per nonzero
    x = np.zeros(d, np.float32)
    x[[0, 123_456, d - 1]] = [1.0, -2.0, 3.0]
    z = P.project(x)
    idx = [0, 123_456, d - 1]
    expected = np.bincount(P.rows[idx].ravel(), weights=(P.values[idx] * x[idx, None]).ravel(), minlength=k)
    assert z.shape == (k,)
    np.testing.assert_allclose(z, expected, rtol=1e-6, atol=1e-6)


def test_projection_bad_input():
    with pytest.raises(ValueError, match=r"s \(8\) must be <= k \(4\)"):
        SJLTProjection(10, 4, s=8)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        RademacherProjection(10, 4, seed=-1)
    with pytest.raises(TypeError, match="d must be an integer"):
        SJLTProjection(10.0, 4)
    P = SJLTProjection(10, 4, s=2)
    with pytest.raises(ValueError, match=r"shape \(n, 10\)"):
        P.project(np.zeros((2, 9), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        P.project(np.zeros((2, 10), np.int32))
    with pytest.raises(ValueError, match="backend"):
        P.project(np.zeros(10), backend="jax")
    with pytest.raises(ValueError, match="out of range"):
        RademacherProjection(10, 4).matrix(5, 11)


def test_numpy_and_torch_paths_agree():
    torch = pytest.importorskip("torch")
    X = _pairs(2000, n=9, seed=5)
    T = torch.from_numpy(X)
    for P in (SJLTProjection(2000, 256, seed=2), RademacherProjection(2000, 256, seed=2, block=300)):
        Z = P.project(X)
        for backend in ("auto", "torch", "numpy"):
            Zt = P.project(T, backend=backend)
            assert isinstance(Zt, torch.Tensor) and Zt.dtype == torch.float32 and Zt.shape == (9, 256)
            np.testing.assert_allclose(Zt.numpy(), Z, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(P.project(T.double(), backend="torch").numpy(), Z, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(P.project(T[0], backend="torch").numpy(), Z[0], rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match="floating-point"):
        SJLTProjection(4, 2, s=1).project(torch.zeros(4, dtype=torch.int64))
    # a torch gradient goes straight into a store
    s = GradientStore.from_array(None, SJLTProjection(2000, 64, seed=0).project(T), dtype="float16")
    assert s.shape == (9, 64)
