"""The wrong answers and crashes of the pandas layer's first version, as regression tests against brute-force
oracles on random frames (duplicated keys, NaN, text, datetime and categorical columns).

Each oracle computes the source cells of an output cell by definition, from the plain pandas values (or from
a row-id column carried through the same pandas code), and whence's answer must equal it (FULL) or contain it
(PARTIAL, with a warning).
"""

from __future__ import annotations

import pathlib
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import strategies as S  # noqa: E402

import whence as wh  # noqa: E402
from whence.tabular.frame import untracked  # noqa: E402

cfg = S.cfg
COLS = ["t", "u", "s", "d", "k"]  # source column positions 0..4


@st.composite
def frames(draw, min_rows=0, max_rows=8):
    n = draw(st.integers(min_rows, max_rows))
    nums = st.one_of(st.sampled_from([-2.0, -1.0, 0.0, 1.0, 3.0, 150.0]), st.just(np.nan))
    t = draw(st.lists(nums, min_size=n, max_size=n))
    u = draw(st.lists(nums, min_size=n, max_size=n))
    s = draw(st.lists(st.sampled_from(["ab", "cd", "Ef", None]), min_size=n, max_size=n))
    days = draw(st.lists(st.one_of(st.integers(0, 400).map(lambda k: pd.Timestamp("2020-01-01")
                                                              + pd.Timedelta(days=k)), st.just(pd.NaT)),
                         min_size=n, max_size=n))
    k = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    return pd.DataFrame({"t": t, "u": u, "s": pd.Series(s, dtype=object), "d": pd.Series(days, dtype="M8[ns]"),
                         "k": k})


def track(df, name="x"):
    wh.reset()
    return wh.track_frame(df.copy(), name=name)


def cells(res, name="x"):
    if name not in res:
        return set()
    return {tuple(map(int, c)) for c in np.asarray(res[name]).reshape(-1, 2)}


def col(c):
    return COLS.index(c)


def check(out, i, j, truth, control=False, partial_ok=False):
    """Backward of cell (i, j) of ``out`` against ``truth`` (a set of (row, column) source cells)."""
    res = wh.backward(out, rows=[i], columns=[j], control=control) if isinstance(out, pd.DataFrame) else \
        wh.backward(out, rows=[i], control=control)
    got = cells(res)
    if res.complete:
        assert got == truth, (i, j, got, truth)
    else:
        assert partial_ok, (i, j, "PARTIAL", res)
        assert got >= truth and (got or not truth), (i, j, got, truth)


# ---------------------------------------------------------------------------------------------------------
# accessors, conversions, numpy functions: cellwise
# ---------------------------------------------------------------------------------------------------------

@cfg(25)
@given(frames())
def test_accessors_and_conversions_are_cellwise(P):
    df = track(P)
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        df["m"] = df["d"].dt.month
        df["up"] = df["s"].str.upper()
        df["code"] = df["s"].astype("category").cat.codes
        df["dd"] = pd.to_datetime(df["d"])
        df["num"] = pd.to_numeric(df["t"])
        df["f"] = df["t"].astype("float32")
        df["td"] = pd.to_timedelta(df["u"], unit="D")
        df["cp"] = df["t"].copy()
        df["bin"] = pd.cut(df["t"], [-5, 0, 5, 200])
    plain = P.assign(m=P["d"].dt.month, up=P["s"].str.upper())
    pd.testing.assert_series_equal(untracked(df["m"]), plain["m"], check_series_type=False)
    for i in range(len(P)):
        for j, src in ((5, "d"), (6, "s"), (7, "s"), (8, "d"), (9, "t"), (10, "t"), (11, "u"), (12, "t"),
                       (13, "t")):
            check(df, i, j, {(i, col(src))})


@cfg(20)
@given(frames(min_rows=1))
def test_fitted_bins_are_control(P):
    df = track(P)
    if P["t"].nunique() < 2:
        return
    q = pd.cut(df["t"], 2)
    for i in range(len(P)):
        check(q, i, 0, {(i, 0)})
        check(q, i, 0, {(i, 0)} | {(r, 0) for r in range(len(P))}, control=True)


@cfg(25)
@given(frames())
def test_numpy_functions_on_series_follow_the_numpy_buckets(P):
    df = track(P)
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        warnings.simplefilter("error", wh.ConstantValueWarning)
        df["hot"] = np.where(df["t"] > 1, 1, 0)
        df["pick"] = np.where(df["t"] > 1, df["t"], df["u"])
        df["sel"] = np.select([df["t"] > 1, df["u"] > 1], [df["t"], df["u"]], 0.0)
        df["lg"] = np.log(df["t"].abs() + 1)
        df["cl"] = np.clip(df["t"], 0, 100)
        df["mx"] = np.maximum(df["t"], df["u"])
    t, u = P["t"].to_numpy(), P["u"].to_numpy()
    for i in range(len(P)):
        check(df, i, 5, set())
        check(df, i, 5, {(i, 0)}, control=True)
        check(df, i, 6, {(i, 0)} if t[i] > 1 else {(i, 1)})
        check(df, i, 7, {(i, 0)} if t[i] > 1 else ({(i, 1)} if u[i] > 1 else set()))
        check(df, i, 8, {(i, 0)})
        check(df, i, 9, {(i, 0)})
        check(df, i, 10, {(i, 0), (i, 1)})


# ---------------------------------------------------------------------------------------------------------
# lookups and group maps
# ---------------------------------------------------------------------------------------------------------

@cfg(25)
@given(frames())
def test_map_through_value_counts_is_a_lookup(P):
    df = track(P)
    vc = df["s"].value_counts()
    df["n"] = df["s"].map(vc)
    df["dm"] = df["s"].map({"ab": 1, "cd": 2})
    s = P["s"].tolist()
    for r, v in enumerate(vc.index):
        check(vc, r, 0, {(q, 2) for q in range(len(s)) if s[q] == v})
    for i in range(len(P)):
        same = {(q, 2) for q in range(len(s)) if s[i] is not None and s[q] == s[i]}
        check(df, i, 5, {(i, 2)} | same)
        check(df, i, 6, {(i, 2)})
    assert df["n"].tolist() == P["s"].map(P["s"].value_counts()).tolist() or \
        np.allclose(df["n"].to_numpy(float), P["s"].map(P["s"].value_counts()).to_numpy(float), equal_nan=True)


@cfg(20)
@given(frames())
def test_reductions_take_whole_columns(P):
    df = track(P)
    tot = df[["t", "u"]].sum()
    desc = df[["t", "u"]].describe()
    n = len(P)
    for j in range(2):
        check(tot, j, 0, {(r, j) for r in range(n)})
        for i in range(len(desc)):
            check(desc, i, j, {(r, j) for r in range(n)})


# ---------------------------------------------------------------------------------------------------------
# row selections with a row-id oracle
# ---------------------------------------------------------------------------------------------------------

@cfg(25)
@given(frames(), st.sampled_from(["nlargest", "nsmallest", "explode", "dedup", "query"]))
def test_row_selections_against_row_ids(P, op):
    df = track(P)
    rid = P.assign(rid=np.arange(len(P)))
    mu = 0.5  # noqa: F841  (used by the query through @mu)
    if op == "nlargest":
        out, ref = df.nlargest(3, "t"), rid.nlargest(3, "t")
    elif op == "nsmallest":
        out, ref = df.nsmallest(2, ["u", "t"]), rid.nsmallest(2, ["u", "t"])
    elif op == "explode":
        df["l"] = df["s"].str.split("")
        out, ref = df.explode("l"), rid.assign(l=rid["s"].str.split("")).explode("l")
    elif op == "dedup":
        out, ref = df.drop_duplicates("k"), rid.drop_duplicates("k")
    else:
        out, ref = df.query("t > @mu"), rid.query("t > @mu")
    assert len(out) == len(ref) and list(out.index) == list(ref.index)
    rows = ref["rid"].to_numpy()
    for i, r in enumerate(rows):
        for j in range(5):
            check(out, i, j, {(int(r), j)})


# ---------------------------------------------------------------------------------------------------------
# index lineage
# ---------------------------------------------------------------------------------------------------------

@cfg(20)
@given(frames(min_rows=1))
def test_index_carries_lineage(P):
    wh.reset()
    ymd = pd.DataFrame({"y": 2020 + P["k"], "m": 1 + P["k"], "d": 1 + np.arange(len(P)) % 28, "v": P["t"]})
    b = wh.track_frame(ymd, name="x")
    b.index = pd.to_datetime((10000 * b.y + 100 * b.m + b.d).astype(str), format="%Y%m%d")
    b["dow"] = b.index.day_of_week
    b["dn"] = b.index.day_name()
    s = b.index.to_series()
    r = b.reset_index()
    for i in range(len(P)):
        three = {(i, 0), (i, 1), (i, 2)}
        check(b, i, 4, three)
        check(b, i, 5, three)
        check(s, i, 0, three)
        check(r, i, 0, three)
    assert b["dow"].tolist() == list(pd.to_datetime((10000 * ymd.y + 100 * ymd.m + ymd.d).astype(str),
                                                    format="%Y%m%d").dt.day_of_week)


@cfg(15)
@given(frames(min_rows=1))
def test_set_index_with_value_keys(P):
    df = track(P)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = df.set_index([(df["t"] * 2).rename("tt"), "k"]).reset_index()
    for i in range(len(P)):
        check(r, i, 0, {(i, 0)})
        check(r, i, 1, {(i, 4)})
    with pytest.warns(wh.ConstantValueWarning, match="index"):
        df.set_index(np.arange(len(P)) * 2)


# ---------------------------------------------------------------------------------------------------------
# forward from any tracked frame
# ---------------------------------------------------------------------------------------------------------

@cfg(20)
@given(frames(min_rows=1), st.sampled_from(["index_col", "intermediate", "written"]))
def test_forward_from_any_tracked_frame(P, how):
    wh.reset()
    if how == "index_col":
        f = wh.track_frame(P.set_index("k"), name="x")
        out = f[f["t"] > 0][["u", "t"]]
    else:
        f = wh.track_frame(P.copy(), name="x")
        if how == "intermediate":
            f = f[f["t"].notna()]
        else:
            f["w"] = f["t"] * 2
        out = f.sort_values("u")[["w"] if how == "written" else ["t"]] * 3
    for k in range(len(f)):
        got = {tuple(c) for c in wh.forward(f, out, rows=[k]).tolist()}
        src = cells(wh.backward(f, rows=[k]))
        exp = {(i, j) for i in range(out.shape[0]) for j in range(out.shape[1])
               if cells(wh.backward(out, rows=[i], columns=[j])) & src}
        assert got == exp


# ---------------------------------------------------------------------------------------------------------
# numpy hand-over, constants, PARTIAL answers
# ---------------------------------------------------------------------------------------------------------

def test_values_of_text_and_datetime_frames():
    P = pd.DataFrame({"t": [1.0, 2.0], "s": ["a", None], "d": pd.to_datetime(["2020-01-01", None]),
                      "c": pd.Categorical(["x", "y"])})
    df = track(P)
    for arr in (df.values, df.to_numpy(), np.asarray(df)):
        assert type(arr) is np.ndarray and arr.dtype == P.values.dtype
        for i in range(2):
            for j in range(4):
                assert cells(wh.backward(arr, (i, j))) == {(i, j)}
    d = df["d"].to_numpy()
    assert d.dtype.kind == "M" and cells(wh.backward(d, (1,))) == {(1, 2)}


def test_values_computed_outside_whence_are_constants_and_say_so():
    df = track(pd.DataFrame({"t": [1.0, 2.0, 3.0]}))
    with pytest.warns(wh.ConstantValueWarning, match="'x2'"):
        df["x2"] = np.asarray(df["t"]) * 2
    with pytest.warns(wh.ConstantValueWarning, match="'lst'"):
        df["lst"] = [v + 1 for v in df["t"]]
    assert cells(wh.backward(df, rows=[1], columns=[1])) == set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df["one"] = 1  # a literal scalar is plainly a constant
        df["w"] = wh.constant([0.5, 0.25, 0.0])
        df["w2"] = wh.constant(np.arange(3))
        df["t2"] = df["t"] * 2  # tracked: no warning
    assert issubclass(wh.ConstantValueWarning, UserWarning)
    assert not issubclass(wh.ConstantValueWarning, wh.PartialLineageWarning)


@cfg(20)
@given(frames(min_rows=2))
def test_partial_answers_are_never_empty_when_the_truth_is_not(P):
    df = track(P)
    with pytest.warns(wh.PartialLineageWarning):  # a weighted window (win_type) is not covered: PARTIAL
        df["sh"] = df["t"].rolling(1, win_type="boxcar", min_periods=0).sum().shift(1)
    df["e"] = df["sh"] + df["u"]
    for i in range(len(P)):
        truth = ({(i - 1, 0)} if i else set())
        check(df, i, 5, truth, partial_ok=True)
        check(df, i, 6, truth | {(i, 1)}, partial_ok=True)


def test_query_and_eval_see_local_variables():
    df = track(pd.DataFrame({"a": [1.0, 5.0, 3.0]}))
    mu = 2.0
    q = df.query("a > @mu")
    assert q["a"].tolist() == [5.0, 3.0]
    assert cells(wh.backward(q, rows=[1])) == {(2, 0)}
    e = df.eval("a * @mu")
    assert e.tolist() == [2.0, 10.0, 6.0]
    assert cells(wh.backward(e, rows=[2])) == {(2, 0)}


def test_bad_input_raises_pandas_error_and_changes_nothing():
    df = track(pd.DataFrame({"a": [1.0, 5.0], "s": ["x", "y"]}))
    before = wh.backward(df).complete, df.columns.tolist()
    with pytest.raises(Exception) as e1:
        df.query("a >> @nothing_here")
    with pytest.raises(Exception) as e2:
        pd.DataFrame({"a": [1.0, 5.0], "s": ["x", "y"]}).query("a >> @nothing_here")
    assert type(e1.value) is type(e2.value)
    with pytest.raises(KeyError):
        df["s"].map(df.set_index("s")["a"]).loc["zz"]
    with pytest.raises(ValueError):
        pd.to_datetime(df["s"], format="%Y")
    assert (wh.backward(df).complete, df.columns.tolist()) == before


# ---------------------------------------------------------------------------------------------------------
# scikit-learn around pandas
# ---------------------------------------------------------------------------------------------------------

def test_fitted_statistics_are_not_expanded_by_a_data_query():
    """A one-cell data backward through a model fitted on StandardScaler output of a filtered, reordered frame
    touches no control relation (it built an n x n one before), and a control query's relations stay O(n)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from whence.tabular.relations import TableMap
    n = 3000
    rng = np.random.default_rng(0)
    wh.reset()
    df = wh.track_frame(pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                                      "y": rng.integers(0, 2, n)}), name="x")
    f = df[df["a"] > -1].sort_values("b")
    X = StandardScaler().fit_transform(f[["a", "b"]])
    p = LogisticRegression().fit(X, f["y"].to_numpy()).predict_proba(X)

    def relation_sizes():
        out, seen, stack = 0, set(), [p._node]
        while stack:
            node = stack.pop()
            if node.id in seen:
                continue
            seen.add(node.id)
            if isinstance(node.map, TableMap):
                out = max([out] + [q.rel.csr.indices.shape[0] for _, q in node.map.entries
                                   if q.rel.csr is not None and q.rel.csr.fn is None])
            stack.extend(node.parents)
        return out

    row = int(f.iloc[[3]].index[0])
    assert cells(wh.backward(p, (3, 1))) == {(row, 0), (row, 1)}
    assert relation_sizes() == 0  # no control relation was built
    ctl = cells(wh.backward(p, (3, 1), control=True))
    assert {(r, 0) for r in np.flatnonzero(df["a"].to_numpy() > -1)} <= ctl
    assert relation_sizes() <= 2 * n


def test_users_own_transformer_runs_on_the_tracked_data():
    from sklearn.base import BaseEstimator, TransformerMixin

    class Centre(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            self.mu_ = X.mean(axis=0)
            return self

        def transform(self, X):
            return (X - self.mu_) * 2

    df = track(pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [3.0, 1.0, 0.0]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        out = Centre().fit_transform(df)
        arr = Centre().fit_transform(df.to_numpy())
    assert np.allclose(np.asarray(out), (df.to_numpy() - df.to_numpy().mean(0)) * 2)
    # the user's code subtracts the column mean: the cell and its whole column, exactly
    for res in (wh.backward(out, rows=[1], columns=[0]), wh.backward(arr, (1, 0))):
        assert res.complete and cells(res) == {(0, 0), (1, 0), (2, 0)}


def test_preprocessing_functions_keep_lineage():
    import sklearn.preprocessing as skp
    df = track(pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [3.0, 1.0, 0.0], "c": ["x", "y", "x"]}))
    X = df[["a", "b"]]
    Xp = pd.DataFrame(X).to_numpy()
    for name in ("scale", "minmax_scale", "maxabs_scale", "robust_scale", "binarize"):
        r = getattr(skp, name)(X)
        assert np.allclose(np.asarray(r), getattr(skp, name)(Xp))
        assert cells(wh.backward(r, (1, 0))) == {(1, 0)}
    r = skp.normalize(X)
    assert cells(wh.backward(r, (1, 0))) == {(1, 0), (1, 1)}
    assert cells(wh.backward(skp.scale(X), (1, 0), control=True)) == {(0, 0), (1, 0), (2, 0)}
    lb = skp.label_binarize(df["c"], classes=["x", "y", "z"])
    assert np.asarray(lb).tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert cells(wh.backward(lb, (2, 1))) == {(2, 2)}
    with pytest.warns(wh.PartialLineageWarning, match="scale"):
        one = skp.scale(df["a"])  # a 1-D input: not the estimator's case, all cells (PARTIAL)
    assert cells(wh.backward(one, (1,))) >= {(1, 0)}


# ---------------------------------------------------------------------------------------------------------
# reshapes: pivot, stack, crosstab
# ---------------------------------------------------------------------------------------------------------

@cfg(25)
@given(frames())
def test_pivot_stack_crosstab_against_row_ids(P):
    df = track(P)
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        st_ = df[["t", "u"]].stack()
        ct = pd.crosstab(df["k"], df["s"])
    # stack: value (i, label) is the cell of row i in that column
    ref = P[["t", "u"]].stack()
    assert len(st_) == len(ref)
    for q, (lab, c) in enumerate(ref.index):
        i = list(P.index).index(lab)
        check(st_, q, 0, {(i, col(c))})
    # crosstab: cell (r, c) from the key cells of the rows counted
    k, s = P["k"].tolist(), P["s"].tolist()
    for r, kv in enumerate(ct.index):
        for j, sv in enumerate(ct.columns):
            rows = [q for q in range(len(P)) if k[q] == kv and s[q] == sv]
            check(ct, r, j, {(q, 4) for q in rows} | {(q, 2) for q in rows})
    # pivot: one row per (index, columns) pair
    u = P.drop_duplicates(["k", "s"]).dropna(subset=["s"])
    if len(u):
        wh.reset()
        t = wh.track_frame(u.reset_index(drop=True), name="x")
        pv = t.pivot(index="k", columns="s", values="t")
        up = u.reset_index(drop=True)
        for r, kv in enumerate(pv.index):
            for j, sv in enumerate(pv.columns):
                rows = [q for q in range(len(up)) if up["k"][q] == kv and up["s"][q] == sv]
                check(pv, r, j, {(q, 0) for q in rows})


# ---------------------------------------------------------------------------------------------------------
# random chains over the buckets, against row ids carried through the same pandas code
# ---------------------------------------------------------------------------------------------------------

STEPS = {
    "filter": lambda x: x[x["t"] > 0],
    "mask_dt": lambda x: x.loc[x["d"] > pd.Timestamp("2020-06-01")],
    "nlargest": lambda x: x.nlargest(3, "u"),
    "sort": lambda x: x.sort_values(["k", "t"], kind="stable"),
    # (drop_duplicates takes column labels only: after set_k, pandas itself raises KeyError on subset=["k"])
    "dedup": lambda x: x.drop_duplicates(subset=["k"], keep="last") if "k" in x.columns else x,
    "query": lambda x: x.query("t < @LIMIT"),
    "set_k": lambda x: x.set_index("k") if "k" in x.columns else x,
    "set_ks": lambda x: x.set_index(["k", "s"]) if {"k", "s"} <= set(x.columns) else x,
    "reset": lambda x: x.reset_index() if x.index.nlevels > 1 or x.index.name is not None else x,
    "head": lambda x: x.head(4),
    "stride": lambda x: x.iloc[::2],
    "sample": lambda x: x.sample(frac=0.5, random_state=1),
    "category": lambda x: x.assign(s=x["s"].astype("category")) if "s" in x.columns else x,
    "month": lambda x: x.assign(m=x["d"].dt.month),
    "upper": lambda x: x.assign(up=x["s"].str.upper()) if "s" in x.columns else x,
    "where": lambda x: x.assign(w=np.where(x["t"] > 1, x["t"], x["u"])) if len(x) else x,
}
DERIVED = {"m": "d", "up": "s"}
LIMIT = 2.0


@cfg(40)
@given(frames(), st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=5))
@example(pd.DataFrame({"t": [1.0, 0.0, 1.0], "u": [1.0, 2.0, 3.0], "s": pd.Series(["ab", None, "cd"], dtype=object),
                       "d": pd.Series([pd.NaT] * 3, dtype="M8[ns]"), "k": [1, 0, 1]}),
         ["set_k", "sort"])  # sort_values by an index level name (k) and a column
@example(pd.DataFrame({"t": [-2.0], "u": [-2.0], "s": pd.Series(["ab"], dtype=object),
                       "d": pd.Series([pd.NaT], dtype="M8[ns]"), "k": [0]}), ["set_k", "dedup"])
def test_random_chains_against_row_ids(P, steps):
    wh.reset()
    T = wh.track_frame(P.copy(), name="x")
    R = P.assign(__rid=np.arange(len(P)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        for s in steps:
            T, R = STEPS[s](T), STEPS[s](R)
    plain = R.drop(columns="__rid")
    pd.testing.assert_frame_equal(untracked(T), plain, check_frame_type=False)
    rid = R["__rid"].to_numpy()
    tv = T["t"].to_numpy() if "t" in T.columns else None
    for i in range(len(T)):
        for j, c in enumerate(T.columns):
            if c == "w":
                truth = {(int(rid[i]), 0)} if tv[i] > 1 else {(int(rid[i]), 1)}
            else:
                truth = {(int(rid[i]), col(DERIVED.get(c, c)))}
            check(T, i, j, truth)
    for r in range(len(P)):  # every output cell comes from a cell of its own source row
        got = {tuple(c) for c in wh.forward("x", T, rows=[r]).tolist()}
        assert got == {(i, j) for i in range(len(T)) for j in range(T.shape[1]) if rid[i] == r}
    if len(T):
        assert [s.row for s in wh.trace_to_file(T, row=0)] == [int(rid[0])]


# ---------------------------------------------------------------------------------------------------------
# masked writes: the mask's cells are control of every cell of the written column
# ---------------------------------------------------------------------------------------------------------

_TWO_ROWS = pd.DataFrame({"t": [-2.0, np.nan], "u": [np.nan, np.nan], "s": pd.Series(["ab", "ab"], dtype=object),
                          "d": pd.Series([pd.NaT, pd.NaT], dtype="M8[ns]"), "k": [0, 0]})


@cfg(30)
@given(frames(), st.sampled_from([-1.0, 0.0, 1.0, 3.0]), st.sampled_from(["const", "column", "two_masks"]),
       st.booleans())
@example(_TWO_ROWS, -1.0, "const", True)  # shuffled to the RangeIndex 1, 0: not the default index
def test_masked_write_control_against_definition(P, thr, how, shuffled):
    """``t.loc[mask, 'u'] = v``: row i of 'u' is v[i] where mask[i], else the old u[i]; the mask cell of row i
    decides which, so it is control of (i, u), written or not; other columns keep their own cell."""
    if shuffled and len(P):
        P = P.sample(frac=1.0, random_state=len(P))  # a non-default, unordered index
    df = track(P)
    if how == "const":
        df.loc[df["t"] <= thr, "u"] = 0.0
        m = (P["t"] <= thr).to_numpy()
        mask_cols, val_col = ("t",), None
    elif how == "column":
        df.loc[df["k"] == 1, "u"] = df["t"] * 2
        m = (P["k"] == 1).to_numpy()
        mask_cols, val_col = ("k",), "t"
    else:
        df.loc[(df["t"] > thr) & (df["k"] != 0), "u"] = 7.0
        m = ((P["t"] > thr) & (P["k"] != 0)).to_numpy()
        mask_cols, val_col = ("t", "k"), None
    # a source index is its first column unless it is the default 0..n-1 range (a shuffled pair of rows can
    # come back as the range 1, 0: a RangeIndex, yet a real index)
    off = 0 if P.index.equals(pd.RangeIndex(len(P))) and isinstance(P.index, pd.RangeIndex) else 1

    def src(i, c):
        return (i, col(c) + off)

    truth = {}  # output cell -> (data, control) source cells, by definition
    for i in range(len(P)):
        for c in COLS:
            truth[i, col(c)] = ({src(i, c)}, {src(i, c)})
        data = ({src(i, val_col)} if val_col else set()) if m[i] else {src(i, "u")}
        truth[i, col("u")] = (data, data | {src(i, c) for c in mask_cols})
    for (i, j), (data, ctl) in truth.items():
        check(df, i, j, data)
        check(df, i, j, ctl, control=True)
    for r in range(len(P)):
        for c in mask_cols + (("t",) if val_col else ()):
            got = {tuple(x) for x in wh.forward("x", src(r, c), df, control=True).tolist()}
            assert got == {o for o, (_, ctl) in truth.items() if src(r, c) in ctl}, (r, c, got)


@cfg(20)
@given(frames(min_rows=1), st.booleans(), st.sampled_from(["none", "new_column", "masked", "rename"]))
def test_forward_from_a_source_frame_in_source_coordinates(P, index_col, write):
    """forward(f, (r, c), y) for a tracked source frame f reads (r, c) in the source's coordinates (index
    levels first, as backward answers), also after f is written in place: it equals the brute-force
    inversion of backward over every cell of y."""
    wh.reset()
    f = wh.track_frame(P.set_index("k") if index_col else P.copy(), name="x")
    y = f[["t", "u"]] * 2 + 1
    z = f.sort_values("u")[["s", "t"]]
    if write == "new_column":
        f["w"] = f["t"] - 1
    elif write == "masked":
        f.loc[f["u"] > 0, "t"] = 0.0
    elif write == "rename":
        f.columns = [f"c{j}" for j in range(f.shape[1])]
    nsrc = P.shape[1]  # the source columns: the index level k first, or the default index's columns
    for out in (y, z):
        back = {(i, j): cells(wh.backward(out, rows=[i], columns=[j]))
                for i in range(out.shape[0]) for j in range(out.shape[1])}
        for r in range(len(P)):
            for c in range(nsrc):
                got = {tuple(x) for x in wh.forward(f, (r, c), out).tolist()}
                assert got == {o for o, s in back.items() if (r, c) in s}, (r, c, got)
            got = {tuple(x) for x in wh.forward(f, out, rows=[r]).tolist()}
            assert got == {o for o, s in back.items() if any(sc[0] == r for sc in s)}


@cfg(25)
@given(frames(), st.sampled_from(["mean", "sum", "max"]), st.sampled_from(["plain", "cut", "two_values"]))
def test_pivot_table_keys_are_control_against_definition(P, aggfunc, keys):
    """pivot_table cell (r, c): data = the value cells of the rows whose (index, columns) keys are (r, c);
    control adds those rows' key cells (also when a key is a column made by pd.cut)."""
    df = track(P)
    if keys == "cut":
        df["b"] = pd.cut(df["u"], [-5, 0, 5, 200])  # a fitted-free binning: cellwise from u
        P = P.assign(b=pd.cut(P["u"], [-5, 0, 5, 200]))
        ckey, kcols = "b", ("k", "u")
    else:
        ckey, kcols = "s", ("k", "s")
    vals = ["t", "u"] if keys == "two_values" else ["t"]
    kw = dict(values=vals, index="k", columns=ckey, aggfunc=aggfunc, observed=True)
    pv = df.pivot_table(**kw)
    ref = P.pivot_table(**kw)
    pd.testing.assert_frame_equal(untracked(pv), ref, check_frame_type=False)
    kv, cv = P["k"].tolist(), P[ckey].tolist()
    for r, ka in enumerate(pv.index):
        for j, lab in enumerate(pv.columns):
            v, ca = lab
            rows = [q for q in range(len(P)) if kv[q] == ka and not pd.isna(cv[q]) and cv[q] == ca]
            data = {(q, col(v)) for q in rows}
            check(pv, r, j, data)
            check(pv, r, j, data | {(q, col(c)) for q in rows for c in kcols}, control=True)


@cfg(25)
@given(frames(), st.sampled_from(["series", "index", "index_time", "two"]), st.sampled_from(["sum", "mean", "size"]))
def test_group_keys_given_as_values_are_control_against_definition(P, key, agg):
    """groupby(key values) (a tracked Series, the index, an array computed from it): a group's cell has the
    value cells of its rows as data and, as control, the key cells that put those rows in the group."""
    wh.reset()
    f = wh.track_frame(P.set_index("d"), name="x")  # source columns: d, t, u, s, k
    sc = {"d": 0, "t": 1, "u": 2, "s": 3, "k": 4}
    if key == "series":
        keys, kcols, plain_keys = [f["t"] > 0], ["t"], [(P["t"] > 0).to_numpy()]
    elif key == "index":
        keys, kcols, plain_keys = [f.index], ["d"], [P["d"].to_numpy()]
    elif key == "index_time":
        keys, kcols, plain_keys = [f.index.day_of_week], ["d"], [pd.DatetimeIndex(P["d"]).day_of_week.to_numpy()]
    else:
        keys, kcols = [f["k"] * 2, f.index.month], ["k", "d"]
        plain_keys = [(P["k"] * 2).to_numpy(), pd.DatetimeIndex(P["d"]).month.to_numpy()]
    gb = f.groupby(keys if len(keys) > 1 else keys[0])
    out = gb.size() if agg == "size" else getattr(gb["u"], agg)()
    ref = P.set_index("d").groupby([pd.Index(k) for k in plain_keys] if len(keys) > 1 else
                                   pd.Index(plain_keys[0]))
    ref = ref.size() if agg == "size" else getattr(ref["u"], agg)()
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
    labels = list(zip(*plain_keys))
    for i, lab in enumerate(out.index):
        lab = lab if isinstance(lab, tuple) else (lab,)
        rows = [q for q in range(len(P)) if all(not pd.isna(a) and a == b for a, b in zip(labels[q], lab))]
        data = set() if agg == "size" else {(q, sc["u"]) for q in rows}
        check(out, i, 0, data)
        check(out, i, 0, data | {(q, sc[c]) for q in rows for c in kcols}, control=True)


@cfg(25)
@given(frames(min_rows=1), st.sampled_from(["div_max", "sub_mean_filtered", "set_mean", "loc_median", "ufunc"]))
def test_scalar_reductions_carry_the_cells_they_read(P, how):
    """s.max() is pandas' own scalar (a numpy scalar, type unchanged), and an operator or a write that uses it
    carries every cell it reduced: checked cell by cell against the definition."""
    df = track(P)
    n = len(P)
    rows = list(range(n))
    if how == "div_max":
        mx = df["t"].max()
        assert type(mx) is type(P["t"].max())
        out, own, red = df["u"] / mx, "u", "t"
    elif how == "sub_mean_filtered":
        f = df[df["k"] > 0]
        rows = [q for q in range(n) if P["k"][q] > 0]
        out, own, red = f["u"] - f["u"].mean(), "u", "u"
    elif how == "set_mean":
        df["c"] = df["t"].mean()
        out, own, red = df["c"], None, "t"
    elif how == "loc_median":
        df.loc[df["k"] == 1, "u"] = df["t"].median()
        out = df["u"]
        for i in range(n):
            written = P["k"][i] == 1
            data = {(q, col("t")) for q in range(n)} if written else {(i, col("u"))}
            check(out, i, 0, data)
            check(out, i, 0, data | {(i, col("k"))}, control=True)
        return
    else:
        out, own, red = np.maximum(df["u"], df["t"].min()), "u", "t"
    src_rows = rows
    for i in range(len(out)):
        r = src_rows[i]
        check(out, i, 0, ({(r, col(own))} if own else set()) | {(q, col(red)) for q in rows})


def test_scalars_shared_by_identity_are_never_registered():
    """A small int, a bool or NaT is one shared object: its identity says nothing about where it came from,
    so a reduction returning one carries no lineage into later operations (a constant by the contract)."""
    wh.reset()
    df = wh.track_frame(pd.DataFrame({"a": [1, 2, 2], "b": [1.0, 2.0, 3.0]}), name="x")
    k = df["a"].nunique()  # 2: a cached int
    b = (df["a"] > 1).any()  # np.True_: a singleton
    assert isinstance(k, int) and isinstance(b, (bool, np.bool_))
    assert cells(wh.backward(df["b"] * k, rows=[0])) == {(0, 1)}
    assert cells(wh.backward(df["b"] * 2, rows=[0])) == {(0, 1)}  # 2 is the same object as k
    assert cells(wh.backward(df["b"] * df["a"].max(), rows=[0])) == {(0, 1), (0, 0), (1, 0), (2, 0)}


def test_write_through_row_labels_from_a_tracked_series_is_a_partial_superset():
    wh.reset()
    t = wh.track_frame(pd.DataFrame({"F": [1.0, 9.0, 3.0], "G": [2, 0, 1]}), name="x")
    with pytest.warns(wh.PartialLineageWarning):
        t.loc[t["G"].head(1), "F"] = 0.0  # the row labelled 2, chosen by the cell G[0]
    for i in range(3):
        res = wh.backward(t, rows=[i], columns=[0], control=True)
        assert not res.complete and cells(res) >= {(0, 1)} | ({(i, 0)} if i != 2 else set())


def test_pandas_warnings_through_wrapped_index_attributes_name_the_callers_line():
    """A deprecated Index attribute used by the caller warns at the caller's line, not inside whence (where
    Python's default filters would hide it and whence's own deprecation filter would blame whence)."""
    idx = pd.date_range("2024-01-01", periods=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        idx.strftime("%Y")  # a wrapped cellwise method: no warning of its own
        warnings.warn("probe", UserWarning)  # this line's file, for comparison
    assert all(w.filename == __file__ for w in caught), [(w.category, w.filename) for w in caught]
    names = [n for n in ("dayofweek", "weekofyear") if hasattr(pd.DatetimeIndex, n)]
    for name in names:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            getattr(idx, name)
        assert all(w.filename == __file__ for w in caught), (name, [(w.category, w.filename) for w in caught])
