"""Training-data attribution for scikit-learn models: the exact influence function checked against
leave-one-out retraining, the LDS harness, scores carried back to source rows and files, and bad input."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

import whence as wh
from whence.attribution import Attributor, Explanation, lds
from whence.attribution.influence import UnsupportedModelError
from whence.attribution.lds import spearman_rows, subset_masks

sk = pytest.importorskip("sklearn")
from sklearn.linear_model import (LinearRegression, LogisticRegression, Ridge, SGDClassifier,  # noqa: E402
                                  SGDRegressor)
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def data(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    yb = (X @ np.r_[1.0, -1.0, 0.5, np.zeros(d - 3)] + 0.6 * rng.normal(size=n) > 0).astype(int)
    ym = np.digitize(X[:, 0] + 0.4 * rng.normal(size=n), [-0.5, 0.5])
    yr = X @ np.r_[1.0, 2.0, 0.0, -1.0, np.zeros(d - 4)] + 0.3 * rng.normal(size=n)
    return X, yb, ym, yr, rng.normal(size=(6, d))


def loo_effects(attr, X, y, Xq, yq):
    """Exact effect of each training row: output with it minus output refitted without it."""
    full = attr.retrain_outputs(np.arange(len(y)), Xq, yq)
    out = np.zeros((len(Xq), len(y)))
    for i in range(len(y)):
        out[:, i] = full - attr.retrain_outputs(np.delete(np.arange(len(y)), i), Xq, yq)
    return out


TIGHT = dict(tol=1e-9, max_iter=5000)

FAMILIES = {
    "logistic binary": (lambda: LogisticRegression(C=1.0, **TIGHT), "yb"),
    "logistic multinomial": (lambda: LogisticRegression(C=0.5, **TIGHT), "ym"),
    "logistic liblinear": (lambda: LogisticRegression(solver="liblinear", C=1.0, **TIGHT), "yb"),
    "logistic class_weight": (lambda: LogisticRegression(C=1.0, class_weight={0: 1.0, 1: 2.5}, **TIGHT), "yb"),
    "logistic unpenalised": (lambda: LogisticRegression(C=np.inf, **TIGHT), "yb"),
    "linear": (lambda: LinearRegression(), "yr"),
    "ridge": (lambda: Ridge(alpha=3.0), "yr"),
    "pipeline": (lambda: make_pipeline(StandardScaler(), LogisticRegression(C=2.0, **TIGHT)), "yb"),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_influence_matches_leave_one_out(name):
    X, yb, ym, yr, Xq = data()
    make, which = FAMILIES[name]
    y = {"yb": yb, "ym": ym, "yr": yr}[which]
    if name == "logistic unpenalised":  # separable data would have no optimum: add label noise
        y = y.copy()
        y[::7] = 1 - y[::7]
    yq = y[:6]
    model = make().fit(X, y)
    attr = Attributor(model, X, y)
    S = attr.scores(Xq, yq)
    assert S.shape == (6, len(y)) and S.dtype == np.float32
    exact = loo_effects(attr, X, y, Xq, yq)
    # the pipeline refits its scaler without the row, which the influence of the final step leaves out
    limit = 0.95 if name == "pipeline" else 0.98
    for t in range(6):
        assert pearsonr(S[t], exact[t])[0] > limit, (name, t)
    # the output attributed: the correct-class margin for classifiers, the prediction for regressors
    out = attr.outputs(Xq, yq)
    if which == "yr":
        np.testing.assert_allclose(out, model.predict(Xq), rtol=1e-9, atol=1e-9)
    else:
        lp = model.predict_log_proba(Xq)
        k = np.searchsorted(model.classes_, yq)
        other = np.log(np.clip(1 - np.exp(lp[np.arange(6), k]), 1e-300, None))
        np.testing.assert_allclose(out, lp[np.arange(6), k] - other, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_sgd_models(kind):
    X, yb, _, yr, Xq = data(n=150)
    if kind == "classifier":
        model = SGDClassifier(loss="log_loss", alpha=0.01, max_iter=5000, tol=1e-9, learning_rate="optimal",
                              random_state=0)
        y = yb
    else:
        model = SGDRegressor(alpha=0.01, max_iter=5000, tol=1e-9, random_state=0, learning_rate="invscaling")
        y = yr
    model.fit(X, y)
    attr = Attributor(model, X, y)
    S = attr.scores(Xq, y[:6])
    # SGD's optimum is approximate: compare with the influence of the same objective solved exactly
    exact = loo_effects(attr, X, y, Xq, y[:6])
    assert np.mean([spearmanr(S[t], exact[t])[0] for t in range(6)]) > 0.5


def test_explanation_top_bottom_and_output():
    X, yb, *_ , Xq = data()
    attr = Attributor(LogisticRegression().fit(X, yb), X, yb)
    ex = attr.explain(Xq[2], yb[2])
    assert isinstance(ex, Explanation) and "margin" in ex.label
    s = attr.scores(Xq[2:3], yb[2:3])[0]
    np.testing.assert_array_equal(ex.scores, s)
    top = ex.top(5)
    assert [r.row for r in top] == list(np.argsort(-s, kind="stable")[:5])
    assert all(a.score >= b.score for a, b in zip(top, top[1:]))
    assert ex.bottom(1)[0].row == int(np.argmin(s))
    assert ex.row_at(-1) == int(np.argmin(s))
    with pytest.raises(ValueError, match="no lineage"):
        ex.by_source()
    with pytest.raises(IndexError):
        ex.row_at(10_000)
    assert "training rows" in repr(ex)


# ----------------------------------------------------------------------------------------------------------
# LDS
# ----------------------------------------------------------------------------------------------------------

def test_spearman_rows_matches_scipy():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, size=(40, 7)).astype(float)  # ties
    b = rng.normal(size=(40, 7))
    got = spearman_rows(a, b)
    exp = [spearmanr(a[:, j], b[:, j])[0] for j in range(7)]
    np.testing.assert_allclose(got, exp, rtol=1e-12)
    assert np.isnan(spearman_rows(np.ones((5, 1)), b[:5, :1])[0])


def test_subset_masks():
    m = subset_masks(101, 20, alpha=0.5, protocol="fixed", seed=1)
    assert m.shape == (20, 101) and set(m.sum(axis=1)) == {50}
    b = subset_masks(1000, 30, alpha=0.5, protocol="bernoulli", seed=1)
    assert 0.45 < b.mean() < 0.55 and len(set(b.sum(axis=1))) > 1
    with pytest.raises(ValueError):
        subset_masks(10, 3, alpha=1.5)
    with pytest.raises(ValueError):
        subset_masks(10, 3, protocol="half")


def test_lds_of_exact_influence_is_high_and_random_is_not(tmp_path):
    X, yb, *_ = data(n=300, d=6, seed=4)
    Xtr, ytr, Xte, yte = X[:240], yb[:240], X[240:], yb[240:]
    attr = Attributor(LogisticRegression(C=1.0, tol=1e-8, max_iter=5000).fit(Xtr, ytr), Xtr, ytr)
    cache = str(tmp_path / "lds.npz")
    r = lds(attr, Xtr, ytr, Xte, yte, n_subsets=30, alpha=0.5, seed=0, n_jobs=1, progress=False, cache=cache)
    assert r.mean > 0.9 and r.ci95[0] <= r.mean <= r.ci95[1]
    assert abs(r.random_baseline) < 0.1
    assert r.noise_ceiling == 1.0  # lbfgs on a convex objective: two runs agree
    assert r.per_target.shape == (60,) and r.masks.sum(axis=1).tolist() == [120] * 30
    # resumable: everything is in the cache, nothing is retrained
    r2 = lds(attr, Xtr, ytr, Xte, yte, n_subsets=30, alpha=0.5, seed=0, n_jobs=1, progress=False, cache=cache)
    assert r2.seconds["jobs"] == 0 and r2.mean == r.mean
    assert r.as_dict()["n_subsets"] == 30
    # another method's scores through the same subsets
    rnd = lds(attr, Xtr, ytr, Xte, yte, n_subsets=30, seed=0, n_jobs=1, progress=False, cache=cache,
              scores=np.random.default_rng(0).normal(size=(60, 240)))
    assert abs(rnd.mean) < 0.15
    # Traceprop's protocol
    rb = lds(attr, Xtr, ytr, Xte, yte, n_subsets=20, protocol="bernoulli", n_jobs=1, progress=False)
    assert rb.protocol == "bernoulli" and rb.mean > 0.85
    assert "LDS" in repr(r)


def test_lds_noise_ceiling_with_noisy_training():
    X, yb, *_ = data(n=200, d=5, seed=5)
    Xtr, ytr, Xte, yte = X[:160], yb[:160], X[160:], yb[160:]
    model = SGDClassifier(loss="log_loss", alpha=0.01, max_iter=5, tol=None, random_state=0).fit(Xtr, ytr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attr = Attributor(model, Xtr, ytr)
        r = lds(attr, Xtr, ytr, Xte, yte, n_subsets=16, runs_per_subset=2, n_jobs=1, progress=False)
    assert r.noise_ceiling is not None and r.noise_ceiling < 1.0


def test_lds_parallel_equals_serial():
    X, yb, *_ = data(n=200, d=5, seed=6)
    Xtr, ytr, Xte, yte = X[:150], yb[:150], X[150:], yb[150:]
    attr = Attributor(LogisticRegression().fit(Xtr, ytr), Xtr, ytr)
    a = lds(attr, Xtr, ytr, Xte, yte, n_subsets=12, n_jobs=1, progress=False)
    b = lds(attr, Xtr, ytr, Xte, yte, n_subsets=12, n_jobs=2, progress=False)
    np.testing.assert_allclose(a.outputs, b.outputs)
    assert a.mean == b.mean


# ----------------------------------------------------------------------------------------------------------
# through the lineage: source tables, rows, files, lines
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def credit(tmp_path_factory):
    from whence.datasets import credit_risk, credit_risk_etl
    d = tmp_path_factory.mktemp("credit")
    wh.reset()
    files = credit_risk(1200, seed=2, path=d)
    X, y, names = credit_risk_etl(*files.read())
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(np.asarray(X), np.asarray(y))
    return X, np.asarray(y), model


def test_by_source_through_joins_and_aggregates(credit):
    X, y, model = credit
    attr = Attributor(model, X, y)
    assert attr.train is X
    ex = attr.explain(np.asarray(X)[11], y[11])
    bs = ex.by_source()
    assert set(bs["tables"]) == {"application", "bureau", "previous_application"}
    # every table's rows share exactly the summed score of the training rows it fed
    from whence.attribution.source_scores import row_relation
    rel = row_relation(X)
    for name, total in bs["tables"].items():
        fed = np.unique(rel[name][0])
        assert total == pytest.approx(float(ex.scores.astype(np.float64)[fed].sum()), rel=1e-6, abs=1e-9)
    # a source row's share, recomputed from trace_to_file of the training rows
    top = bs["rows"][0]
    expect = 0.0
    for i in range(X.shape[0]):
        rows = {r.row for r in wh.trace_to_file(X, row=i) if r.table == top.table}
        if top.row in rows:
            expect += float(ex.scores[i]) / len(rows)
    assert top.score == pytest.approx(expect, rel=1e-5)
    # unnormalised: each source row gets the whole score of each training row it fed
    raw = ex.by_source(normalize=False)
    assert {r.table for r in raw["rows"]} == set(bs["tables"])
    # the training row at a rank, traced to its file lines
    t = ex.trace_to_file(0)
    assert t == wh.trace_to_file(X, row=ex.top(1)[0].row)
    assert all(s.line is not None and s.path.endswith(".csv") for s in t)


def test_by_source_from_a_saved_store(credit, tmp_path):
    X, y, model = credit
    path = tmp_path / "run.duckdb"
    wh.save(path, "etl", X=X)
    with wh.open(path) as store:
        h = store["etl"]["X"]
        a1 = Attributor(model, X, y).explain(np.asarray(X)[3], y[3]).by_source()
        a2 = Attributor(model, np.asarray(X), y, ).explain(np.asarray(X)[3], y[3])
        a2.train = h
        assert a2.by_source()["tables"] == pytest.approx(a1["tables"])


def test_by_source_for_a_numpy_pipeline():
    wh.reset()
    rng = np.random.default_rng(0)
    A = wh.track(rng.normal(size=(30, 3)), name="A")
    B = wh.track(rng.normal(size=(30, 2)), name="B")
    X = np.concatenate([A * 2, B[::-1]], axis=1)
    y = (np.asarray(X)[:, 0] > 0).astype(int)
    ex = Attributor(LogisticRegression().fit(np.asarray(X), y), X, y).explain(np.asarray(X)[0], y[0])
    bs = ex.by_source()
    s = ex.scores.astype(np.float64)
    assert bs["tables"]["A"] == pytest.approx(s.sum()) and bs["tables"]["B"] == pytest.approx(s.sum())
    rowsB = {r.row: r.score for r in bs["rows"] if r.table == "B"}
    assert rowsB[29] == pytest.approx(s[0], rel=1e-6)  # B is reversed: training row 0 came from B's row 29


# ----------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------

def test_bad_input():
    X, yb, ym, yr, Xq = data()
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        Attributor(LogisticRegression(), X, yb)
    from sklearn.ensemble import RandomForestClassifier
    with pytest.raises(UnsupportedModelError, match="RandomForestClassifier"):
        Attributor(RandomForestClassifier(n_estimators=3).fit(X, yb), X, yb)
    # an L1 part: l1_ratio alone where penalty is deprecated (newer scikit-learn), penalty="elasticnet" before
    if LogisticRegression().get_params().get("penalty") in ("deprecated", None):
        l1_model, why = LogisticRegression(l1_ratio=1.0, solver="saga", max_iter=200), "l1_ratio"
    else:
        l1_model, why = LogisticRegression(penalty="elasticnet", l1_ratio=1.0, solver="saga", max_iter=200), "elasticnet"
    with pytest.raises(UnsupportedModelError, match=why):
        Attributor(l1_model.fit(X, yb), X, yb)
    with pytest.raises(UnsupportedModelError, match="log_loss"):
        Attributor(SGDClassifier(loss="hinge").fit(X, yb), X, yb)
    with pytest.raises(UnsupportedModelError, match="one-vs-rest"):
        Attributor(SGDClassifier(loss="log_loss").fit(X, ym), X, ym)
    m = LogisticRegression().fit(X, yb)
    with pytest.raises(ValueError, match="rows"):
        Attributor(m, X, yb[:-1])
    with pytest.raises(ValueError, match="features"):
        Attributor(m, X[:, :3], yb)
    Xn = X.copy()
    Xn[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN.*row 5, column 2"):
        Attributor(m, Xn, yb)
    a = Attributor(m, X, yb)
    with pytest.raises(ValueError, match="labels the model does not know"):
        a.scores(Xq, np.array([0, 1, 2, 0, 1, 0]))
    with pytest.raises(ValueError, match="X_test has 6 rows but y_test has 5"):
        a.scores(Xq, yb[:5])
    with pytest.raises(ValueError, match="scores have shape"):
        lds(a, X, yb, Xq, yb[:6], n_subsets=3, scores=np.zeros((2, 2)), progress=False)
    assert "LogisticRegression" in repr(a)


def test_tracked_training_matrix_is_used_as_is():
    wh.reset()
    rng = np.random.default_rng(1)
    Xp = rng.normal(size=(50, 3))
    X = wh.track(Xp, name="X")
    y = (Xp[:, 0] > 0).astype(int)
    m = LogisticRegression().fit(Xp, y)
    S1 = Attributor(m, X, y).scores(Xp[:4], y[:4])
    S2 = Attributor(m, Xp, y).scores(Xp[:4], y[:4])
    np.testing.assert_array_equal(S1, S2)
    assert os.environ.get("WHENCE_NO_SUCH") is None
