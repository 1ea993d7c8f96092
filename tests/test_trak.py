"""TRAK-style attribution for torch models (whence.attribution.trak): small, CPU only."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from whence.attribution.explain import Explanation  # noqa: E402
from whence.attribution.trak import TorchAttributor, UnsupportedModelError, _margin_from_logits  # noqa: E402


def _data(n=40, d=3, seed=0, classes=2):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    w = torch.randn(d, classes, generator=g)
    y = (X @ w + 0.5 * torch.randn(n, classes, generator=g)).argmax(1)
    return X, y


def _mlp(d=3, h=6, c=2, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.Tanh(), torch.nn.Linear(h, c))


def _logreg(d=3, c=2, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, c))


def _fit(net, X, y, wd=1e-2, steps=50):
    """Full-batch L-BFGS on cross-entropy (or BCE for one logit) + wd/2 |theta|^2: deterministic."""
    opt = torch.optim.LBFGS(net.parameters(), lr=1, max_iter=steps, tolerance_grad=1e-10,
                            tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = net(X)
        if z.shape[1] == 1:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0], y.float())
        else:
            loss = torch.nn.functional.cross_entropy(z, y)
        loss = loss + 0.5 * wd * sum((p ** 2).sum() for p in net.parameters())
        loss.backward()
        return loss

    for _ in range(2):
        opt.step(closure)
    return net


def _autograd_rows(net, X, y, task="classification", params=None):
    params = list(net.parameters()) if params is None else params
    rows = []
    for i in range(len(X)):
        out = _margin_from_logits(net(X[i:i + 1]), y[i:i + 1], task)[0]
        gs = torch.autograd.grad(out, params)
        rows.append(torch.cat([g.reshape(-1) for g in gs]))
    return torch.stack(rows)


def _spearman(a, b):
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


# ------------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("make", [_logreg, _mlp])
def test_per_sample_gradients_equal_autograd(make):
    X, y = _data(12)
    net = make()
    attr = TorchAttributor(net, (X, y), proj_dim=10_000)
    fn, dim = attr._grad_fn(net)
    G, out = fn(X, y)
    assert dim == sum(p.numel() for p in net.parameters()) == G.shape[1]
    torch.testing.assert_close(G, _autograd_rows(net, X, y), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out.double(), torch.from_numpy(attr.outputs(X, y)), rtol=1e-5, atol=1e-6)


def test_per_sample_gradients_regression_and_binary_logit():
    X, y = _data(10)
    net = _logreg(c=1)
    attr = TorchAttributor(net, (X, y), proj_dim=10_000)
    G, _ = attr._grad_fn(net)[0](X, y)
    torch.testing.assert_close(G, _autograd_rows(net, X, y), rtol=1e-5, atol=1e-6)
    t = X[:, 0] * 2.0
    attr = TorchAttributor(net, (X, t), task="regression", proj_dim=10_000)
    G, out = attr._grad_fn(net)[0](X, t)
    torch.testing.assert_close(G, _autograd_rows(net, X, t, "regression"), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, net(X)[:, 0].detach())


def test_last_layer_gradients_equal_autograd():
    X, y = _data(10, classes=3)
    net = _mlp(c=3)
    attr = TorchAttributor(net, (X, y), mode="last_layer", proj_dim=10_000)
    G, _ = attr._grad_fn(net)[0](X, y)
    last = net[2]
    torch.testing.assert_close(G, _autograd_rows(net, X, y, params=[last.weight, last.bias]), rtol=1e-5,
                               atol=1e-6)


def test_margin_is_log_odds_of_correct_class():
    z = torch.tensor([[1.0, 2.0, -0.5], [0.3, -1.0, 0.0]])
    y = torch.tensor([1, 2])
    p = torch.softmax(z, 1)[torch.arange(2), y]
    torch.testing.assert_close(_margin_from_logits(z, y, "classification"), torch.log(p / (1 - p)))


# ------------------------------------------------------------------------------------------- scores

@pytest.mark.parametrize("n", [30, 50])       # n <= k: kernel form; n > k: Gram form
def test_scores_shape_dtype_and_exact_formula(n):
    X, y = _data(n)
    net = _fit(_mlp(), X, y)
    Xt, yt = _data(7, seed=1)
    attr = TorchAttributor(net, (X, y), proj_dim=4096, lam=1e-3)     # 38 parameters: no projection
    S = attr.scores(Xt, yt)
    assert S.shape == (7, n) and S.dtype == np.float32 and np.isfinite(S).all()
    Phi = _autograd_rows(net, X, y).double().numpy()
    phi = _autograd_rows(net, Xt, yt).double().numpy()
    q = 1 - torch.sigmoid(_margin_from_logits(net(X), y, "classification")).detach().double().numpy()
    ref = phi @ np.linalg.solve(Phi.T @ Phi + 1e-3 * np.eye(Phi.shape[1]), Phi.T) * q[None, :]
    np.testing.assert_allclose(S, ref, rtol=2e-2, atol=2e-3 * np.abs(ref).max())  # float32 features
    assert "TorchAttributor" in repr(attr) and "fitted" in repr(attr)


def test_projected_scores_track_exact_ones():
    X, y = _data(60, d=8)
    net = _fit(_mlp(d=8, h=16), X, y)
    Xt, yt = _data(10, d=8, seed=2)
    exact = TorchAttributor(net, (X, y), proj_dim=10_000).scores(Xt, yt)
    for projector in ("sjlt", "rademacher"):
        S = TorchAttributor(net, (X, y), proj_dim=128, projector=projector).scores(Xt, yt)
        r = np.mean([np.corrcoef(S[i], exact[i])[0, 1] for i in range(len(Xt))])
        assert r > 0.7, (projector, r)


def test_linear_model_agrees_with_leave_one_out():
    """proj_dim >= parameters and lam -> 0: TRAK on a logistic regression ranks training points like
    leave-one-out retraining does."""
    X, y = _data(30, d=2, seed=3)
    Xt, yt = _data(6, d=2, seed=4)
    wd = 1e-2
    full = _fit(_logreg(d=2, c=1), X, y, wd)
    base = _margin_from_logits(full(Xt), yt, "classification").detach().numpy()
    loo = np.zeros((len(Xt), len(X)))
    for i in range(len(X)):
        keep = torch.tensor([j for j in range(len(X)) if j != i])
        net = _fit(_logreg(d=2, c=1), X[keep], y[keep], wd)
        loo[:, i] = base - _margin_from_logits(net(Xt), yt, "classification").detach().numpy()
    S = TorchAttributor(full, (X, y), proj_dim=2048, lam=1e-8).scores(Xt, yt)
    rho = np.mean([_spearman(S[t], loo[t]) for t in range(len(Xt))])
    assert rho > 0.5, rho


def test_ensembles_average_models():
    X, y = _data(25)
    Xt, yt = _data(5, seed=1)
    a = _fit(_mlp(seed=0), X, y)
    b = _fit(_mlp(seed=1), X, y)
    both = TorchAttributor(_mlp(), (X, y), checkpoints=[a.state_dict(), b], proj_dim=16, seed=5)
    Sa = TorchAttributor(a, (X, y), proj_dim=16, seed=5).scores(Xt, yt)
    Sb = TorchAttributor(b, (X, y), proj_dim=16, seed=6).scores(Xt, yt)
    np.testing.assert_allclose(both.scores(Xt, yt), (Sa + Sb) / 2, rtol=1e-4, atol=1e-5)


def test_last_layer_mode_equals_full_mode_on_the_last_layer():
    X, y = _data(30, classes=3)
    Xt, yt = _data(6, seed=1, classes=3)
    net = _fit(_mlp(c=3), X, y)
    ll = TorchAttributor(net, (X, y), mode="last_layer", proj_dim=4096, lam_rel=1.0).scores(Xt, yt)
    for p in net[0].parameters():
        p.requires_grad_(False)
    full = TorchAttributor(net, (X, y), mode="full", proj_dim=4096, lam_rel=1.0).scores(Xt, yt)
    np.testing.assert_allclose(ll, full, rtol=1e-3, atol=1e-4 * np.abs(full).max())


def test_regression_scores_and_dataset_input():
    X, _ = _data(20)
    t = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(20, generator=torch.Generator().manual_seed(0))
    net = torch.nn.Linear(3, 1)
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        ((net(X)[:, 0] - t) ** 2).mean().backward()
        opt.step()
    a = TorchAttributor(net, (X, t), task="regression", proj_dim=64)
    b = TorchAttributor(net, torch.utils.data.TensorDataset(X, t), task="regression", proj_dim=64, batch_size=7)
    S = a.scores(X[:4], t[:4])
    assert S.shape == (4, 20)
    np.testing.assert_allclose(S, b.scores(X[:4], t[:4]), rtol=1e-4, atol=1e-6)


def test_gradients_go_to_a_gradient_store_on_disk(tmp_path):
    from whence.attribution.gradient_store import GradientStore
    X, y = _data(40, d=8)
    net = _fit(_mlp(d=8, h=16), X, y)
    a = TorchAttributor(net, (X, y), proj_dim=32, store_path=str(tmp_path), store_dtype="float16")
    b = TorchAttributor(net, (X, y), proj_dim=32)
    np.testing.assert_allclose(a.scores(X[:3], y[:3]), b.scores(X[:3], y[:3]), rtol=0.05,
                               atol=0.02 * np.abs(b.scores(X[:3], y[:3])).max())
    st = GradientStore.open(str(tmp_path / "trak_model0.bin"))
    assert st.shape == (40, 32) and st.weights is not None
    q = 1 - torch.sigmoid(_margin_from_logits(net(X), y, "classification")).detach().numpy()
    np.testing.assert_allclose(st.weights, q, rtol=1e-4, atol=1e-6)
    st.close()


def test_float64_model_and_numpy_inputs():
    X, y = _data(20)
    net = _mlp().double()
    a = TorchAttributor(net, (X.double().numpy(), y.numpy()), proj_dim=16)
    S = a.scores(X[:3].numpy(), y[:3].numpy())          # float32 test rows are cast to the model's dtype
    b = TorchAttributor(_mlp(), (X, y), proj_dim=16)
    np.testing.assert_allclose(S, b.scores(X[:3], y[:3]), rtol=1e-3, atol=1e-5 * np.abs(S).max())


def test_explain_and_retrain_outputs():
    X, y = _data(20)
    net = _fit(_mlp(), X, y)

    def train_fn(sub, seed):
        torch.manual_seed(seed)
        return _fit(_mlp(seed=seed), *sub)

    attr = TorchAttributor(net, (X.numpy(), y.numpy()), proj_dim=8, train_fn=train_fn)
    ex = attr.explain(X[3], y[3])
    assert isinstance(ex, Explanation) and ex.scores.shape == (20,) and ex.train is None
    assert ex.top(1)[0].row == int(np.argmax(ex.scores))
    assert ex.label == f"margin of class {int(y[3])}"
    out = attr.retrain_outputs(np.arange(10), X[:5], y[:5], seed=1)
    assert out.dtype == np.float64 and out.shape == (5,)
    same = attr.retrain_outputs(np.arange(10), X[:5], y[:5], seed=1)
    np.testing.assert_allclose(out, same)


def test_tracked_training_matrix_is_kept_for_explanations():
    wh = pytest.importorskip("whence")
    X, y = _data(15)
    Xtr = wh.track(X.numpy().astype(np.float64), name="Xtr")
    attr = TorchAttributor(_mlp(), (Xtr, y), proj_dim=8)
    assert attr.explain(X[0].numpy(), int(y[0])).train is Xtr


# ------------------------------------------------------------------------------------------- bad input

def test_bad_input():
    X, y = _data(10)
    net = _mlp()
    with pytest.raises(UnsupportedModelError, match="torch.nn.Module"):
        TorchAttributor(object(), (X, y))
    with pytest.raises(ValueError, match="task"):
        TorchAttributor(net, (X, y), task="ranking")
    with pytest.raises(ValueError, match="rows"):
        TorchAttributor(net, (X, y[:5]))
    Xn = X.clone()
    Xn[2, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        TorchAttributor(net, (Xn, y))
    with pytest.raises(ValueError, match="class"):
        TorchAttributor(net, (X, y + 5))
    with pytest.raises(ValueError, match="integer"):
        TorchAttributor(net, (X, y + 0.5))
    with pytest.raises(ValueError, match="empty"):
        TorchAttributor(net, (X, y), checkpoints=[])
    with pytest.raises(UnsupportedModelError, match="failed"):
        TorchAttributor(net, (torch.randn(10, 4), y))
    with pytest.raises(UnsupportedModelError, match="one output"):
        TorchAttributor(net, (X, y.float()), task="regression")
    with pytest.raises(UnsupportedModelError, match="Linear"):
        conv = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Flatten())
        TorchAttributor(conv, (X[:, None, :], y), mode="last_layer")
    attr = TorchAttributor(net, (X, y), proj_dim=8)
    with pytest.raises(ValueError, match="shape"):
        attr.scores(torch.randn(3, 4), y[:3])
    with pytest.raises(ValueError, match="rows"):
        attr.scores(X[:3], y[:2])
    with pytest.raises(ValueError, match="NaN"):
        attr.scores(Xn, y)
    with pytest.raises(RuntimeError, match="train_fn"):
        attr.retrain_outputs([0, 1], X[:2], y[:2])
    with pytest.raises(ValueError, match="checkpoints\\[0\\]"):
        TorchAttributor(net, (X, y), checkpoints=[_logreg().state_dict()]).scores(X[:2], y[:2])
    follow = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    with pytest.raises(UnsupportedModelError, match="last Linear"):
        TorchAttributor(follow, (X, y), mode="last_layer").scores(X[:2], y[:2])


def test_attributor_torch_entry_point():
    from whence.attribution import Attributor
    X, y = _data(12)
    attr = Attributor.torch(_mlp(), (X, y), task="classification", checkpoints=None, proj_dim=8)
    assert isinstance(attr, TorchAttributor)
    assert attr.scores(X[:2], y[:2]).shape == (2, 12)
