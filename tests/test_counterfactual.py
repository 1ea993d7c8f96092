"""Counterfactual attribution in source rows, checked against the truth.

- leave-one-out aggregates against pandas on every leave-one-out subset (random groups, missing values, every
  function with a rule);
- deletion propagation against re-running the ETL: random pipelines (a filter, a group-by with random
  functions, a left join, a fill), every source row deleted on its own, the propagated training rows equal the
  re-run's;
- the effect on the prediction against deleting the rows, re-running the ETL in plain pandas and retraining to
  the optimum (the credit case, small): Spearman and relative error per table, groups of 1 % and 5 % and a
  whole file;
- bad input, and models that take frames (named-column pipelines, one row as a Series).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

import whence as wh
from whence.attribution import Attributor, CounterfactualError
from whence.attribution.deletion import group_values, loo_values

FUNCS = ["sum", "mean", "count", "size", "min", "max", "var", "std", "first", "last", "nunique", "median", "prod"]


def _brute_loo(func, v, codes, ng):
    """pandas itself on every leave-one-out subset, one at a time."""
    n = len(v)
    out = np.full(n, np.nan)
    vanish = np.zeros(n, bool)
    for r in range(n):
        if codes[r] < 0:
            continue
        keep = (codes == codes[r]) & (np.arange(n) != r)
        if not keep.any():
            vanish[r] = True
            continue
        s = pd.Series(v[keep])
        out[r] = len(s) if func == "size" else s.groupby(np.zeros(len(s), int)).agg(func).iloc[0]
    return out, vanish


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_leave_one_out_values_match_pandas(data):
    n = data.draw(st.integers(1, 25))
    ng = data.draw(st.integers(1, 5))
    codes = np.array(data.draw(st.lists(st.integers(-1, ng - 1), min_size=n, max_size=n)), np.int64)
    vals = data.draw(st.lists(st.one_of(st.none(), st.integers(-4, 4).map(float)), min_size=n, max_size=n))
    v = np.array([np.nan if x is None else x for x in vals])
    func = data.draw(st.sampled_from(FUNCS))
    new, vanish, rule = loo_values(func, None if func == "size" else v, codes, ng)
    exp, exp_vanish = _brute_loo(func, v, codes, ng)
    assert rule is not None
    np.testing.assert_array_equal(vanish, exp_vanish)
    ok = (codes >= 0) & ~exp_vanish
    np.testing.assert_allclose(new[ok], exp[ok], rtol=1e-9, atol=1e-9, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_group_values_match_pandas(data):
    n = data.draw(st.integers(1, 25))
    ng = data.draw(st.integers(1, 5))
    codes = np.array(data.draw(st.lists(st.integers(-1, ng - 1), min_size=n, max_size=n)), np.int64)
    v = np.array(data.draw(st.lists(st.integers(-4, 4).map(float), min_size=n, max_size=n)))
    drop = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    func = data.draw(st.sampled_from(FUNCS))
    new, alive = group_values(func, v, codes, ng, drop)
    for g in range(ng):
        keep = (codes == g) & ~drop
        assert alive[g] == keep.any()
        if keep.any():
            s = pd.Series(v[keep])
            exp = len(s) if func == "size" else s.groupby(np.zeros(len(s), int)).agg(func).iloc[0]
            np.testing.assert_allclose(new[g], exp, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------------- propagation vs re-running
def _etl(people, loans, funcs, how_filter):
    ln = loans[loans["kind"] != how_filter]
    agg = ln.groupby("pid").agg(**{f"f{i}": (col, f) for i, (col, f) in enumerate(funcs)})
    df = people.merge(agg, on="pid", how="left")
    df = df.fillna({f"f{i}": -1.0 for i in range(len(funcs))})
    cols = ["x"] + [f"f{i}" for i in range(len(funcs))]
    return df[cols].to_numpy(dtype="float64"), df["y"].to_numpy()


def _assert_deletions_rerun(p, X, people, loans, funcs):
    """Check the propagation ``p`` of every single-row deletion of ``loans`` against re-running the ETL without
    that row; returns, per row, the training rows whose values changed."""
    X0 = np.asarray(X)
    out = []
    for r in range(len(loans)):
        X1, _ = _etl(people, loans.drop(index=r).reset_index(drop=True), funcs, "c")
        changed = np.flatnonzero(~np.all((X0 == X1) | (np.isnan(X0) & np.isnan(X1)), axis=1))
        # a statistic recomputed over the same values in another order (a std without a NaN row) may differ in
        # its last bit: such a row may be reported or not, any other change must be
        moved = np.flatnonzero(~np.all(np.isclose(X0, X1, rtol=1e-12, atol=1e-12, equal_nan=True), axis=1))
        sel = p.src == r
        reported = set(p.train[sel].tolist())
        assert set(moved.tolist()) <= reported <= set(changed.tolist())
        if sel.any():
            np.testing.assert_allclose(p.new[sel], X1[p.train[sel]], rtol=1e-9, atol=1e-9)
        out.append(changed)
    assert p.exact
    return out


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_propagation_equals_rerunning_the_etl(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    n_p = data.draw(st.integers(3, 12))
    n_l = data.draw(st.integers(1, 30))
    # person -1 never has loans: the fill value of a vanished group shows in the training matrix
    people = pd.DataFrame({"pid": np.arange(-1, n_p), "x": rng.normal(size=n_p + 1).round(2),
                           "y": rng.integers(0, 2, n_p + 1)})
    amt = rng.integers(0, 5, n_l).astype(float)
    amt[rng.random(n_l) < 0.2] = np.nan
    loans = pd.DataFrame({"pid": rng.integers(0, n_p + 2, n_l), "amt": amt,
                          "kind": rng.choice(["a", "b", "c"], n_l)})
    funcs = data.draw(st.lists(st.tuples(st.just("amt"), st.sampled_from(
        ["sum", "mean", "count", "min", "max", "std", "first", "last", "nunique", "median"])), min_size=1,
        max_size=4, unique_by=lambda t: t[1]))
    wh.reset()
    X, _ = _etl(wh.track_frame(people, name="people"), wh.track_frame(loans, name="loans"), funcs, "c")
    from whence.attribution.deletion import DeletionContext as _Context, propagate
    ctx = _Context(X)
    try:
        p = propagate(ctx, "loans")
    except CounterfactualError as e:
        # the one case without a rule here: two aggregate columns equal on every training row, so that the
        # matrix cannot tell which column is which (a sum and a mean over single rows)
        assert "no deletion rule" in str(e)
        X0 = np.asarray(X)
        cols = [X0[:, j] for j in range(1, X0.shape[1])]
        assert any(np.array_equal(a, b, equal_nan=True) for i, a in enumerate(cols) for b in cols[i + 1:])
        return
    for r, changed in enumerate(_assert_deletions_rerun(p, X, people, loans, funcs)):
        assert not p.removed[p.src == r].any()
        assert p.fed_nothing[r] == (loans["kind"].iloc[r] == "c" or loans["pid"].iloc[r] >= n_p)
        if p.fed_nothing[r]:
            assert not changed.size


def test_count_of_a_text_column_propagates_as_rerunning_the_etl():
    """A ``count`` of a text column records only which values are missing (no Python object per text value):
    deleting each source row on its own still gives the training rows of re-running the ETL."""
    from whence.attribution.deletion import DeletionContext as _Context, propagate
    from whence.tabular.aggregates import aggregate_record
    rng = np.random.default_rng(5)
    n_l = 24
    people = pd.DataFrame({"pid": np.arange(-1, 6), "x": rng.normal(size=7).round(2), "y": rng.integers(0, 2, 7)})
    note = rng.choice(["a", "bb", "c"], n_l).astype(object)
    note[rng.random(n_l) < 0.3] = None
    loans = pd.DataFrame({"pid": rng.integers(0, 7, n_l), "amt": rng.integers(0, 5, n_l).astype(float),
                          "note": pd.array(note, dtype="string"), "kind": rng.choice(["a", "b", "c"], n_l)})
    funcs = [("note", "count"), ("amt", "sum")]
    wh.reset()
    X, _ = _etl(wh.track_frame(people, name="people"), wh.track_frame(loans, name="loans"), funcs, "c")
    ln = wh.track_frame(loans, name="l2")
    rec = aggregate_record(ln.groupby("pid").agg(n=("note", "count"))._whence_node)
    assert rec.columns[0].values.dtype == np.float64
    assert np.array_equal(np.isnan(rec.columns[0].values), loans["note"].isna().to_numpy())
    p = propagate(_Context(X), "loans")
    _assert_deletions_rerun(p, X, people, loans, funcs)


# ------------------------------------------------------------------------------- effects vs the truth
@pytest.fixture(scope="module")
def credit(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from whence.datasets import credit_risk, credit_risk_etl
    files = credit_risk(400, seed=2, path=tmp_path_factory.mktemp("cf"))
    wh.reset()
    X, y, names, df = credit_risk_etl(*files.read(), return_frame=True)
    Xp, yp = np.asarray(X), np.asarray(y)

    def make():
        return make_pipeline(StandardScaler(), LogisticRegression(C=10.0, solver="newton-cholesky", tol=1e-12))
    model = make().fit(Xp, yp)
    return {"files": files, "X": X, "y": yp, "df": df, "model": model, "make": make,
            "plain": dict(zip(("application", "bureau", "previous_application"), files.read(tracked=False)))}


def _truth(c, drop, tests):
    from whence.datasets import credit_risk_etl
    fr = {t: (v.drop(index=v.index[np.asarray(drop[t])]).reset_index(drop=True) if t in drop else v)
          for t, v in c["plain"].items()}
    X1, y1, _ = credit_risk_etl(fr["application"], fr["bureau"], fr["previous_application"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m1 = c["make"]().fit(X1, y1)
    Xt, yt = np.asarray(c["X"])[tests], c["y"][tests]
    f = lambda m: np.where(yt == 1, 1, -1) * m.decision_function(Xt)  # noqa: E731
    return f(c["model"]) - f(m1)


def test_effects_of_single_source_rows_match_deleting_and_retraining(credit):
    c = credit
    Xp = np.asarray(c["X"])
    tests = [0, 7, 19]
    attr = Attributor(c["model"], c["X"], c["y"])
    se = attr.source_effects(Xp[tests], c["y"][tests])
    assert se.exact == {"application": True, "bureau": True, "previous_application": True}
    rng = np.random.default_rng(0)
    for t in ("application", "bureau", "previous_application"):
        fed = np.flatnonzero(~se.fed_nothing[t])
        rows = rng.choice(fed, min(100, fed.size), replace=False)
        act = np.array([_truth(c, {t: [r]}, tests) for r in rows])
        pred = se.effects[t][:, rows].T.astype(np.float64)
        for k in range(len(tests)):
            assert spearmanr(pred[:, k], act[:, k]).statistic >= 0.9, (t, k)
        rel = np.abs(pred - act) / np.maximum(np.abs(act), 1e-12)
        assert np.median(rel) <= 0.25, t
    # a source row that fed nothing (filtered out by the ETL) has effect 0, and the answer says so
    out = np.flatnonzero(se.fed_nothing["bureau"])
    assert out.size and (se.effects["bureau"][:, out] == 0).all()
    cf = se[0]
    assert cf.trace_to_file(table="bureau", row=int(out[0]))["fed_nothing"]
    assert np.allclose(_truth(c, {"bureau": [int(out[0])]}, tests), 0.0, atol=1e-8)


def test_group_effects_match_deleting_and_retraining(credit):
    c = credit
    Xp = np.asarray(c["X"])
    tests = [3, 11]
    attr = Attributor(c["model"], c["X"], c["y"])
    se = attr.source_effects(Xp[tests], c["y"][tests])
    rng = np.random.default_rng(1)
    for t in ("bureau", "previous_application", "application"):
        n = len(c["plain"][t])
        for frac in (0.01, 0.05):
            rows = rng.choice(n, max(2, int(frac * n)), replace=False)
            act = _truth(c, {t: rows}, tests)
            for k in range(len(tests)):
                g = se[k].group(t, rows=rows)
                assert g.source_rows == rows.size and g.exact
                assert abs(g.effect - act[k]) <= 0.2 * abs(act[k]) + 1e-6, (t, frac, g, act[k])
    # a predicate on the file (every closed credit: a third of the file), and the same rows by file lines
    g = se[0].group("bureau", rows=np.arange(10))
    assert g.prediction_without == pytest.approx(se.outputs[0] - g.effect)
    closed = c["plain"]["bureau"]["CREDIT_ACTIVE"] == "Closed"
    g1 = se[0].group("bureau", where=lambda t: t["CREDIT_ACTIVE"] == "Closed")
    g2 = se[0].group("bureau", lines=(np.flatnonzero(closed) + 2).tolist())
    assert g1.effect == pytest.approx(g2.effect)
    assert g1.effect == pytest.approx(_truth(c, {"bureau": np.flatnonzero(closed)}, tests)[0], rel=0.2, abs=1e-6)


def test_ranking_trace_and_summary(credit):
    c = credit
    Xp = np.asarray(c["X"])
    attr = Attributor(c["model"], c["X"], c["y"])
    ex = attr.explain(Xp[5], c["y"][5], test_row=5)
    cf = ex.counterfactual()
    top = cf.top(5)
    assert [e.rank for e in top] == list(range(5))
    assert all(a.effect >= b.effect for a, b in zip(top, top[1:]))
    big = cf.largest(3)
    assert abs(big[0].effect) == max(abs(v).max() for v in cf.effects.values())
    tr = cf.trace_to_file(0)
    assert tr["table"] == big[0].table and tr["line"] == big[0].line and tr["path"].endswith(".csv")
    assert tr["training_rows"] or tr["removed"]
    # the line is the file line of that source row
    with open(tr["path"]) as f:
        text = f.read().splitlines()
    assert text[tr["line"] - 1].startswith(str(c["plain"][tr["table"]].iloc[tr["row"], 0]))
    s = cf.summary()
    assert set(s) == {"application", "bureau", "previous_application"}
    # a single row's effect agrees with deleting it as a group of one (Newton steps to the new optimum)
    for t in ("bureau", "previous_application"):
        r = int(np.flatnonzero(~cf.fed_nothing[t])[0])
        assert cf.effects[t][r] == pytest.approx(cf.group(t, rows=[r]).effect, rel=0.05, abs=1e-6)
    doc = cf.to_dict(k=3)
    assert len(doc["largest"]) == 3 and "bureau" in doc["delete_table"]
    assert ex._counterfactual is cf


def test_bad_input(credit):
    c = credit
    Xp = np.asarray(c["X"])
    attr = Attributor(c["model"], c["X"], c["y"])
    with pytest.raises(CounterfactualError, match="not upstream"):
        attr.counterfactual(Xp[0], c["y"][0], "nonexistent_table")
    with pytest.raises(IndexError, match="out of range"):
        attr.source_effects(Xp[:1], c["y"][:1], "bureau", rows=[10**9])
    with pytest.raises(ValueError, match="one test point"):
        attr.counterfactual(Xp[:2], c["y"][:2])
    # no lineage: a plain matrix
    plain = Attributor(c["model"], Xp, c["y"])
    with pytest.raises(CounterfactualError, match="no lineage"):
        plain.counterfactual(Xp[0], c["y"][0])
    # a model family without a Hessian
    from sklearn.linear_model import LogisticRegression

    from whence.attribution.influence import UnsupportedModelError
    from sklearn.preprocessing import StandardScaler
    Xs = StandardScaler().fit_transform(Xp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saga may stop before it converges: the error is about the family
        import sklearn
        # an L1 penalty: l1_ratio alone on newer scikit-learn; penalty="l1" where l1_ratio needs elasticnet
        l1_kw = {"l1_ratio": 1.0} if tuple(int(v) for v in sklearn.__version__.split(".")[:2]) >= (1, 8) \
            else {"penalty": "l1"}
        l1 = LogisticRegression(solver="saga", max_iter=50, **l1_kw).fit(Xs, c["y"])
    with pytest.raises(UnsupportedModelError, match="Hessian"):
        Attributor(l1, c["X"], c["y"])
    from sklearn.tree import DecisionTreeClassifier
    with pytest.raises(UnsupportedModelError, match="not supported"):
        Attributor(DecisionTreeClassifier().fit(Xp, c["y"]), c["X"], c["y"])


def test_no_rule_falls_back_to_rerunning_the_etl(tmp_path):
    """A feature computed from an aggregate (a ratio) has no deletion rule: without the ETL, a clear error; with
    it, the ETL is re-run for each row, and the effects match the truth."""
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(3)
    n_p, n_l = 40, 90
    people = pd.DataFrame({"pid": np.arange(n_p), "x": rng.normal(size=n_p), "inc": rng.uniform(1, 3, n_p)})
    people["y"] = (people["x"] + rng.normal(size=n_p) > 0).astype(int)
    loans = pd.DataFrame({"pid": rng.integers(0, n_p, n_l), "amt": rng.gamma(2, 1, n_l)})
    people.to_csv(tmp_path / "people.csv", index=False)
    loans.to_csv(tmp_path / "loans.csv", index=False)
    sources = {"people": tmp_path / "people.csv", "loans": tmp_path / "loans.csv"}

    def etl(people, loans):
        agg = loans.groupby("pid").agg(debt=("amt", "sum"))
        df = people.merge(agg, on="pid", how="left").fillna({"debt": 0.0})
        df["ratio"] = df["debt"] / df["inc"]
        return df[["x", "ratio"]].to_numpy(dtype="float64"), df["y"].to_numpy()

    wh.reset()
    X, y = etl(wh.read_csv(sources["people"], name="people"), wh.read_csv(sources["loans"], name="loans"))
    Xp = np.asarray(X)
    model = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(Xp, y)
    attr = Attributor(model, X, y)
    with pytest.raises(CounterfactualError, match="no deletion rule"):
        attr.counterfactual(Xp[0], y[0], "loans")
    with pytest.raises(CounterfactualError, match="sources= lacks"):
        attr.counterfactual(Xp[0], y[0], "loans", rows=[0], etl=etl, sources={"people": sources["people"]})
    rows = [0, 1, 2, 3, 4, 5]
    cf = attr.counterfactual(Xp[0], y[0], "loans", rows=rows, etl=etl, sources=sources)
    assert cf.exact == {"loans": False}
    assert any(not r["exact"] for r in cf.rules["loans"])
    ycls = np.where(y[0] == 1, 1, -1)
    for r in rows:
        X1, y1 = etl(pd.read_csv(sources["people"]), pd.read_csv(sources["loans"]).drop(index=r))
        m1 = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000).fit(X1, y1)
        act = ycls * (model.decision_function(Xp[:1]) - m1.decision_function(Xp[:1]))[0]
        assert cf.effects["loans"][r] == pytest.approx(act, rel=0.1, abs=1e-6)
    # the live sources are the ETL's own again
    assert wh.trace_to_file(X, row=0)
    # an ETL that cannot be re-run
    def broken(people, loans):
        raise RuntimeError("no network")
    wh.reset()
    X, y = etl(wh.read_csv(sources["people"], name="people"), wh.read_csv(sources["loans"], name="loans"))
    attr = Attributor(model, X, y)
    with pytest.raises(CounterfactualError, match="cannot be re-run"):
        attr.counterfactual(Xp[0], y[0], "loans", rows=[0], etl=broken, sources=sources)


def test_named_column_pipeline_accepts_frames_and_series():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    rng = np.random.default_rng(0)
    n = 120
    wh.reset()
    people = wh.track_frame(pd.DataFrame({"pid": np.arange(n), "x": rng.normal(size=n),
                                          "city": rng.choice(["a", "b", "c"], n)}), name="people")
    loans = wh.track_frame(pd.DataFrame({"pid": rng.integers(0, n, 300), "amt": rng.gamma(2, 1, 300)}), name="loans")
    agg = loans.groupby("pid").agg(debt=("amt", "mean"))
    df = people.merge(agg, on="pid", how="left").fillna({"debt": 0.0})
    Xf = df[["x", "debt", "city"]]
    y = (np.asarray(df["x"]) + 0.3 * np.asarray(df["debt"]) + rng.normal(size=n) > 0.5).astype(int)
    ct = ColumnTransformer([("num", StandardScaler(), ["x", "debt"]), ("cat", OneHotEncoder(), ["city"])])
    model = make_pipeline(ct, LogisticRegression(C=2.0, tol=1e-10, max_iter=5000)).fit(pd.DataFrame(Xf), y)
    attr = Attributor(model, Xf, y)
    row = pd.DataFrame(Xf).iloc[4]                       # one row as a Series
    one = pd.DataFrame(Xf).iloc[[4]]                     # one row as a frame
    e1, e2 = attr.explain(row, y[4]), attr.explain(one, y[4])
    np.testing.assert_allclose(e1.scores, e2.scores)
    S = attr.scores(pd.DataFrame(Xf).iloc[:3], y[:3])
    np.testing.assert_allclose(S[2], attr.explain(pd.DataFrame(Xf).iloc[2], y[2]).scores, rtol=1e-5)
    cf = attr.counterfactual(row, y[4])
    assert set(cf.tables) == {"people", "loans"} and cf.exact["loans"]
    # check one loan against the truth: delete it, rebuild, refit
    r = int(np.argmax(np.abs(cf.effects["loans"])))
    plain_people = pd.DataFrame(people)
    plain_loans = pd.DataFrame(loans).drop(index=r)
    agg1 = plain_loans.groupby("pid").agg(debt=("amt", "mean"))
    df1 = plain_people.merge(agg1, on="pid", how="left").fillna({"debt": 0.0})
    m1 = make_pipeline(ColumnTransformer([("num", StandardScaler(), ["x", "debt"]),
                                          ("cat", OneHotEncoder(), ["city"])]),
                       LogisticRegression(C=2.0, tol=1e-10, max_iter=5000)).fit(df1[["x", "debt", "city"]], y)
    sgn = 1 if y[4] == 1 else -1
    act = sgn * (model.decision_function(one) - m1.decision_function(one))[0]
    assert cf.effects["loans"][r] == pytest.approx(act, rel=0.15)


def test_saved_with_the_run_and_drawn_in_the_report(credit, tmp_path):
    from whence.report import write_report
    c = credit
    Xp = np.asarray(c["X"])
    attr = Attributor(c["model"], c["X"], c["y"])
    exs = [attr.explain(Xp[i], c["y"][i], test_row=i) for i in (2, 9)]
    cfs = [ex.counterfactual() for ex in exs]
    path = tmp_path / "run.duckdb"
    wh.save(path, "etl", X=c["X"], results={"attribution": exs})
    with wh.open(path) as store:
        doc = store["etl"].result("attribution")
    for t, cf in zip(doc["test_rows"], cfs):
        got = t["counterfactual"]
        assert got["output"] == pytest.approx(cf.output)
        assert [(e["table"], e["row"]) for e in got["largest"]] == [(e.table, e.row) for e in cf.largest(10)]
        assert got["tables"]["bureau"]["fed_nothing"] == int(cf.fed_nothing["bureau"].sum())
        # the credit ETL fills gaps with column medians: without a whole file there is no training matrix
        assert set(got["delete_table_undefined"]) >= {"application"}
    html = write_report(path, tmp_path / "report.html").read_text()
    assert "Source rows whose deletion would change it most" in html
    e = cfs[0].largest(1)[0]
    assert f":{e.line}</code>" in html


def test_a_table_that_only_chooses_rows_is_not_taken_as_unused(tmp_path):
    """A table used only to choose training rows (a semi-join) feeds no data, but deleting its rows removes
    training rows: no rule follows that, so whence asks for the ETL instead of answering 0."""
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(5)
    people = pd.DataFrame({"pid": np.arange(30), "x": rng.normal(size=30), "y": rng.integers(0, 2, 30)})
    allowed = pd.DataFrame({"pid": np.arange(0, 30, 2)})
    people.to_csv(tmp_path / "people.csv", index=False)
    allowed.to_csv(tmp_path / "allowed.csv", index=False)
    sources = {"people": tmp_path / "people.csv", "allowed": tmp_path / "allowed.csv"}

    def etl(people, allowed):
        df = people.merge(allowed, on="pid", how="inner")
        return df[["x"]].to_numpy(dtype="float64"), df["y"].to_numpy()

    wh.reset()
    X, y = etl(wh.read_csv(sources["people"], name="people"), wh.read_csv(sources["allowed"], name="allowed"))
    model = LogisticRegression(tol=1e-12).fit(np.asarray(X), y)
    attr = Attributor(model, X, y)
    with pytest.raises(CounterfactualError, match="no deletion rule"):
        attr.counterfactual(np.asarray(X)[0], y[0], "allowed")
    cf = attr.counterfactual(np.asarray(X)[0], y[0], "allowed", rows=[3], etl=etl, sources=sources)
    keep = people["pid"].isin(allowed["pid"].drop(index=3))
    m1 = LogisticRegression(tol=1e-12).fit(people.loc[keep, ["x"]].to_numpy(), people.loc[keep, "y"].to_numpy())
    sgn = 1 if y[0] == 1 else -1
    act = sgn * (model.decision_function(np.asarray(X)[:1]) - m1.decision_function(np.asarray(X)[:1]))[0]
    assert cf.effects["allowed"][3] == pytest.approx(act, rel=0.2, abs=1e-6)


def test_a_model_without_a_hessian_is_named():
    pytest.importorskip("torch")
    from whence.attribution.influence import UnsupportedModelError
    from whence.attribution.trak import TorchAttributor
    t = TorchAttributor.__new__(TorchAttributor)
    with pytest.raises(UnsupportedModelError, match="Hessian"):
        t.counterfactual(np.zeros(3), 1)


# ------------------------------------------------------------------------------- multinomial: the Newton step
def _three_class_case():
    from sklearn.linear_model import LogisticRegression

    def etl(people, loans):
        agg = loans.groupby("id").agg(debt=("amt", "mean"), n=("amt", "count"), top=("amt", "max"))
        df = people.merge(agg, on="id", how="left").fillna({"debt": 0.0, "n": 0.0, "top": 0.0})
        return df[["x", "z", "debt", "n", "top"]].to_numpy(), df["label"].to_numpy()

    rng = np.random.default_rng(0)
    n = 150
    people = pd.DataFrame({"id": np.arange(n), "x": rng.normal(size=n), "z": rng.normal(size=n)})
    loans = pd.DataFrame({"id": rng.integers(0, n, 400), "amt": rng.gamma(2, 1, 400)})
    debt = people["id"].map(loans.groupby("id")["amt"].mean()).fillna(0).to_numpy()
    score = np.stack([people.x + 0.3 * debt, people.z - 0.3 * debt, np.full(n, 0.2)], 1) + rng.gumbel(size=(n, 3))
    people["label"] = score.argmax(1)
    wh.reset()
    X, y = etl(wh.track_frame(people, name="people"), wh.track_frame(loans, name="loans"))

    def make():
        return LogisticRegression(C=1.0, solver="newton-cg", tol=1e-12, max_iter=1000)

    def fit(X, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the line search's rounding warnings at this tolerance
            return make().fit(np.asarray(X), y)
    return etl, people, loans, X, y, fit(X, y), fit


def _margins3(m, X, y):
    Z = m.decision_function(X)
    o = Z.copy()
    o[np.arange(len(y)), y] = -np.inf
    return Z[np.arange(len(y)), y] - np.log(np.exp(o).sum(1))


def test_multinomial_effects_are_newton_steps_and_match_retraining():
    import scipy.linalg

    from whence.attribution.deletion import propagate
    from whence.attribution.model_math import multinomial_hessian, softmax as _softmax
    etl, people, loans, X, y, model, fit = _three_class_case()
    Xp = np.asarray(X)
    tests = np.array([0, 5, 9])
    attr = Attributor(model, X, y)
    se = attr.source_effects(Xp[tests], y[tests])
    assert se.exact == {"loans": True, "people": True}
    # the algebra: each single-row effect is grad f^T H'^-1 dG with H' the Hessian of the new training set
    F = attr._output_grads(attr.X1[tests], y[tests])
    for tab in ("loans", "people"):
        p = propagate(attr._cf_context(), tab)
        once = np.flatnonzero(np.bincount(p.src, minlength=p.n_rows)[p.src] == 1)
        for e in once[:: max(1, once.size // 6)]:
            t, r = int(p.train[e]), int(p.src[e])
            xo = attr.X1[t:t + 1]
            w = attr.sample_weight[t:t + 1]
            yo = attr.y_idx[t:t + 1]
            dG = -attr._row_grads(xo, yo, w)[0]
            Hn = attr.H - multinomial_hessian(xo, w, _softmax(xo @ attr.W.T))
            if not p.removed[e]:
                xn = attr._design(attr._features(p.new[e:e + 1], "x"))
                dG += attr._row_grads(xn, yo, w)[0]
                Hn = Hn + multinomial_hessian(xn, w, _softmax(xn @ attr.W.T))
            want = F @ scipy.linalg.pinvh(Hn) @ dG
            np.testing.assert_allclose(se.effects[tab][:, r], want, rtol=1e-4, atol=1e-7)
    # against deleting the row, re-running the ETL and retraining: the Newton step is within 1.5 % (the
    # first-order estimate is 2-4 % off here)
    f0 = _margins3(model, Xp[tests], y[tests])
    rng = np.random.default_rng(1)
    for tab, frame in (("loans", loans), ("people", people)):
        rows = rng.choice(len(frame), 25, replace=False)
        act = []
        for r in rows:
            pp = people.drop(index=r).reset_index(drop=True) if tab == "people" else people
            ll = loans.drop(index=r).reset_index(drop=True) if tab == "loans" else loans
            X1, y1 = etl(pp, ll)
            act.append(f0 - _margins3(fit(X1, y1), Xp[tests], y[tests]))
        act = np.array(act)
        pred = se.effects[tab][:, rows].T.astype(np.float64)
        for k in range(len(tests)):
            assert spearmanr(pred[:, k], act[:, k]).statistic >= 0.99, (tab, k)
        nz = np.abs(act) > 1e-9
        assert np.median(np.abs(pred - act)[nz] / np.abs(act)[nz]) <= 0.015, tab


def test_two_aggregates_of_one_table_over_disjoint_rows():
    # each loan feeds one of two aggregates (by its kind): the changes of both are joined into one answer
    def etl(people, loans):
        a = loans[loans["kind"] == "a"].groupby("pid").agg(a_sum=("amt", "sum"))
        b = loans[loans["kind"] == "b"].groupby("pid").agg(b_max=("amt", "max"))
        df = people.merge(a, on="pid", how="left").merge(b, on="pid", how="left")
        df = df.fillna({"a_sum": 0.0, "b_max": -1.0})
        return df[["x", "a_sum", "b_max"]].to_numpy()

    rng = np.random.default_rng(3)
    people = pd.DataFrame({"pid": np.arange(-1, 8), "x": rng.normal(size=9).round(2)})
    loans = pd.DataFrame({"pid": rng.integers(0, 8, 30), "amt": rng.integers(0, 9, 30).astype(float),
                          "kind": rng.choice(["a", "b"], 30)})
    wh.reset()
    X = etl(wh.track_frame(people, name="people"), wh.track_frame(loans, name="loans"))
    from whence.attribution.deletion import DeletionContext as _Context, propagate
    p = propagate(_Context(X), "loans")
    assert p.exact and not p.fallback.size
    X0 = np.asarray(X)
    for r in range(len(loans)):
        X1 = etl(people, loans.drop(index=r).reset_index(drop=True))
        changed = np.flatnonzero(~np.all(X0 == X1, axis=1))
        sel = np.flatnonzero(p.src == r)
        assert sorted(p.train[sel].tolist()) == changed.tolist()
        if sel.size:
            np.testing.assert_allclose(p.new_rows(sel), X1[p.train[sel]])
            np.testing.assert_allclose(p.new[sel], X1[p.train[sel]])
