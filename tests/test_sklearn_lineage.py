"""scikit-learn keeps lineage: tracked data in, tracked outputs out, with the cells each output derives from.

Every expectation is computed by hand from the fitted estimator (its feature names, ``powers_``,
``output_indices_``, ...), independently of how whence builds the relation.
"""

import inspect
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("sklearn")
sp = pytest.importorskip("scipy.sparse")

import whence as wh  # noqa: E402
import whence.tabular  # noqa: E402,F401
from whence.tabular import sklearn as whsk  # noqa: E402

from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.feature_selection import SelectKBest, f_classif  # noqa: E402
from sklearn.impute import KNNImputer, SimpleImputer  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import (FunctionTransformer, MaxAbsScaler, MinMaxScaler, Normalizer,  # noqa: E402
                                   OneHotEncoder, OrdinalEncoder, PolynomialFeatures, RobustScaler,
                                   StandardScaler)


@pytest.fixture(autouse=True)
def fresh_names():
    wh.reset()
    yield
    wh.reset()


def cells(res, source):
    """The cells of one source in a LineageResult, as a set of tuples."""
    if source not in res:
        return set()
    return {tuple(r) for r in np.asarray(res[source]).tolist()}


def some_cells(shape, k=6, seed=0):
    rng = np.random.default_rng(seed)
    return [tuple(int(rng.integers(0, d)) for d in shape) for _ in range(k)]


def numeric_frame(n=14, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x0": rng.normal(size=n), "x1": rng.normal(5, 2, size=n), "x2": rng.uniform(size=n),
                         "x3": rng.normal(size=n)})


def mixed_frame(n=16, seed=1):
    rng = np.random.default_rng(seed)
    df = numeric_frame(n, seed)
    df["color"] = rng.choice(["red", "green", "blue", "teal"], n, p=[0.4, 0.3, 0.25, 0.05])
    df["size"] = rng.choice(["S", "M", "L"], n)
    return df


def row_block(i, cols):
    return {(i, c) for c in cols}


# --------------------------------------------------------------------------------------------- transformers

@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler])
def test_scalers_map_each_cell_to_its_input_cell(cls):
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(12, 4))
    X = wh.track(raw, name="X")
    est = cls().fit(X)
    Z = est.transform(X)
    assert isinstance(Z, wh.TrackedArray)
    np.testing.assert_allclose(np.asarray(Z), cls().fit(raw).transform(raw))
    for i, j in some_cells(Z.shape):
        r = wh.backward(Z, (i, j))
        assert cells(r, "X") == {(i, j)} and r.complete
    Z2 = cls().fit_transform(X)
    for i, j in some_cells(Z2.shape, seed=1):
        assert cells(wh.backward(Z2, (i, j)), "X") == {(i, j)}


def test_normalizer_mixes_the_whole_row_and_keeps_no_fit_statistics():
    X = wh.track(np.random.default_rng(0).random((8, 3)), name="X")
    Z = Normalizer().fit(X).transform(X)
    for i, j in some_cells(Z.shape):
        r = wh.backward(Z, (i, j))
        assert cells(r, "X") == row_block(i, range(3)) and r.complete
        assert cells(wh.backward(Z, (i, j), control=True), "X") == row_block(i, range(3))


@pytest.mark.parametrize("keep_empty", [False, True])
def test_simple_imputer_drops_empty_columns_and_adds_indicators(keep_empty):
    rng = np.random.default_rng(5)
    raw = pd.DataFrame(rng.normal(size=(10, 4)), columns=["a", "b", "c", "d"])
    raw.loc[:, "b"] = np.nan          # an all-NaN column: dropped unless keep_empty_features
    raw.loc[[2, 7], "c"] = np.nan
    df = wh.track_frame(raw, name="t")
    imp = SimpleImputer(add_indicator=True, keep_empty_features=keep_empty)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn: "Skipping features without any observed values"
        Z = imp.fit_transform(df)
    names = list(imp.get_feature_names_out())
    src = {c: k for k, c in enumerate(raw.columns)}
    expected_col = [src[n.removeprefix("missingindicator_")] for n in names]
    assert Z.shape[1] == len(names) == (3 if not keep_empty else 4) + 2
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            r = wh.backward(Z, (i, j))
            assert cells(r, "t") == {(i, expected_col[j])}, (i, j, names[j])
            assert r.complete


def test_onehot_and_ordinal_encoders_map_output_blocks_to_their_feature():
    raw = mixed_frame(40)
    df = wh.track_frame(raw, name="m")
    cat = df[["color", "size"]]
    src = {c: k for k, c in enumerate(raw.columns)}
    for enc in [OneHotEncoder(sparse_output=False),
                OneHotEncoder(sparse_output=False, drop="first"),
                OneHotEncoder(sparse_output=False, min_frequency=4, handle_unknown="infrequent_if_exist"),
                OneHotEncoder(sparse_output=False, max_categories=2, drop="if_binary")]:
        Z = enc.fit(cat).transform(cat)
        assert isinstance(Z, wh.TrackedArray)
        np.testing.assert_array_equal(np.asarray(Z), enc.transform(raw[["color", "size"]]))
        feature = ["color" if n.startswith("color_") else "size" for n in enc.get_feature_names_out()]
        for i in range(0, Z.shape[0], 3):
            for j in range(Z.shape[1]):
                r = wh.backward(Z, (i, j))
                assert cells(r, "m") == {(i, src[feature[j]])} and r.complete
                # the categories are fitted statistics of that column: every row of it
                rc = wh.backward(Z, (i, j), control=True)
                assert cells(rc, "m") == {(k, src[feature[j]]) for k in range(len(raw))}
    enc = OrdinalEncoder().fit(cat)
    Z = enc.transform(cat)
    for i, j in some_cells(Z.shape):
        assert cells(wh.backward(Z, (i, j)), "m") == {(i, src[["color", "size"][j]])}


def test_sparse_output_stays_sparse_and_is_registered():
    raw = mixed_frame(12)
    df = wh.track_frame(raw, name="m")
    enc = OneHotEncoder().fit(df[["size", "color"]])
    Z = enc.transform(df[["size", "color"]])
    plain = OneHotEncoder().fit(raw[["size", "color"]]).transform(raw[["size", "color"]])
    assert sp.issparse(Z) and type(Z) is type(plain)
    node = whsk.output_node(Z)
    assert node is not None and node.shape == Z.shape
    nsize = len(enc.categories_[0])
    for i, j in some_cells(Z.shape):
        col = raw.columns.get_loc("size" if j < nsize else "color")
        assert cells(wh.backward(node, (i, j)), "m") == {(i, col)}
    try:  # whence.backward(Z) itself works once whence.query asks output_node (see whence.tabular.sklearn)
        r = wh.backward(Z, (0, 0))
    except wh.NotTrackedError:
        return
    assert cells(r, "m") == {(0, raw.columns.get_loc("size"))}


def test_polynomial_features_follow_powers():
    raw = np.random.default_rng(2).normal(size=(9, 3))
    X = wh.track(raw, name="X")
    pf = PolynomialFeatures(degree=2).fit(X)
    Z = pf.transform(X)
    for i in range(0, 9, 4):
        for j in range(Z.shape[1]):
            want = {(i, c) for c in np.flatnonzero(pf.powers_[j] > 0)}
            assert cells(wh.backward(Z, (i, j)), "X") == want  # the bias column derives from nothing
            assert cells(wh.backward(Z, (i, j), control=True), "X") == want  # powers are not fitted statistics


def test_function_transformer_runs_func_on_the_tracked_data():
    raw = np.random.default_rng(4).random((7, 3))
    X = wh.track(raw, name="X")
    ft = FunctionTransformer(lambda a: np.column_stack([a[:, 0] + a[:, 1], np.exp(a[:, 2])]))
    Z = ft.fit_transform(X)
    for i in range(7):
        r0, r1 = wh.backward(Z, (i, 0)), wh.backward(Z, (i, 1))
        assert cells(r0, "X") == {(i, 0), (i, 1)} and cells(r1, "X") == {(i, 2)} and r0.complete
    assert FunctionTransformer().fit_transform(X) is X  # the identity, exactly as sklearn returns it
    with pytest.warns(wh.PartialLineageWarning, match="FunctionTransformer"):
        Zv = FunctionTransformer(np.abs, validate=True).fit_transform(X)
    r = wh.backward(Zv, (3, 1))
    assert cells(r, "X") == row_block(3, range(3)) and not r.complete


def test_other_transformers_fall_back_to_the_whole_row_with_a_warning():
    raw = np.random.default_rng(6).normal(size=(10, 3))
    raw[2, 1] = np.nan
    X = wh.track(raw, name="X")
    with pytest.warns(wh.PartialLineageWarning, match="KNNImputer"):
        Z = KNNImputer(n_neighbors=2).fit(X).transform(X)
    r = wh.backward(Z, (2, 1))
    assert cells(r, "X") == row_block(2, range(3)) and not r.complete
    # a projection mixes the whole row: that is exact
    Xc = wh.track(np.nan_to_num(raw), name="Xc")
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        Q = PCA(n_components=2).fit(Xc).transform(Xc)
    r = wh.backward(Q, (5, 1))
    assert cells(r, "Xc") == row_block(5, range(3)) and r.complete


def test_feature_selection_keeps_the_selected_columns():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 30)
    raw = rng.normal(size=(30, 5))
    raw[:, 3] += 3 * y
    X = wh.track(raw, name="X")
    sel = SelectKBest(f_classif, k=2).fit(X, y)
    Z = sel.transform(X)
    support = np.flatnonzero(sel.get_support())
    for i, j in some_cells(Z.shape):
        assert cells(wh.backward(Z, (i, j)), "X") == {(i, support[j])}


def test_set_output_pandas_returns_a_tracked_frame():
    raw = numeric_frame()
    raw.index = raw.index * 10 + 3
    df = wh.track_frame(raw.reset_index(drop=True), name="f")
    sub = df[["x1", "x3"]].iloc[2:]
    Z = StandardScaler().set_output(transform="pandas").fit_transform(sub)
    assert isinstance(Z, wh.TrackedFrame) and list(Z.columns) == ["x1", "x3"]
    assert Z.index.equals(sub.index)
    for i, j in some_cells(Z.shape):
        assert cells(wh.backward(Z, (i, j)), "f") == {(i + 2, [1, 3][j])}


# --------------------------------------------------------------------------------------------- composites

def test_column_transformer_composes_its_parts():
    raw = mixed_frame(20)
    df = wh.track_frame(raw, name="m")
    src = {c: k for k, c in enumerate(raw.columns)}
    ct = ColumnTransformer([("oh", OneHotEncoder(sparse_output=False), ["color"]),
                            ("sc", StandardScaler(), ["x0", "x1"]),
                            ("gone", "drop", ["size"])], remainder="passthrough")
    Z = ct.fit_transform(df)
    assert isinstance(Z, wh.TrackedArray)
    np.testing.assert_allclose(np.asarray(Z, dtype=float), ct.transform(raw).astype(float))

    def source_col(name):
        prefix, rest = name.split("__", 1)
        return src["color"] if prefix == "oh" else src[rest]

    expected = [source_col(n) for n in ct.get_feature_names_out()]
    assert set(expected) == {src[c] for c in ("color", "x0", "x1", "x2", "x3")}  # "size" is dropped
    for i in range(0, 20, 3):
        for j in range(Z.shape[1]):
            r = wh.backward(Z, (i, j))
            assert cells(r, "m") == {(i, expected[j])} and r.complete
    # control: a scaled column depends on every row of its own fit column; a passed-through one on nothing
    sl_sc, sl_rem = ct.output_indices_["sc"], ct.output_indices_["remainder"]
    for j in range(sl_sc.start, sl_sc.stop):
        assert cells(wh.backward(Z, (0, j), control=True), "m") == {(k, expected[j]) for k in range(20)}
    assert cells(wh.backward(Z, (4, sl_rem.start), control=True), "m") == {(4, expected[sl_rem.start])}
    # a frame with its columns reordered and one more column is selected by name
    other = raw[["size", "x3", "color", "x2", "x1", "x0"]].assign(extra=1.0)
    dfo = wh.track_frame(other, name="o")
    Zo = ct.transform(dfo)
    osrc = {c: k for k, c in enumerate(other.columns)}
    names = list(raw.columns)
    for j, s in enumerate(expected):
        assert cells(wh.backward(Zo, (5, j)), "o") == {(5, osrc[names[s]])}
    for j in range(sl_sc.start, sl_sc.stop):  # the fit statistics are still those of the fit frame's column
        assert cells(wh.backward(Zo, (5, j), control=True), "m") == {(k, expected[j]) for k in range(20)}


def test_pipeline_predict_proba_row_lineage_and_control():
    rng = np.random.default_rng(9)
    raw = rng.normal(size=(30, 4))
    yraw = (raw[:, 0] + rng.normal(size=30) > 0).astype(int)
    X = wh.track(raw, name="X")
    y = wh.track(yraw, name="y")
    Xnew = wh.track(rng.normal(size=(5, 4)), name="Xnew")
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)
    P = pipe.predict_proba(Xnew)
    assert isinstance(P, wh.TrackedArray)
    np.testing.assert_allclose(np.asarray(P), make_pipeline(StandardScaler(), LogisticRegression()).fit(raw, yraw)
                               .predict_proba(np.asarray(Xnew)))
    for i, c in some_cells(P.shape):
        r = wh.backward(P, (i, c))
        assert set(r) == {"Xnew"} and cells(r, "Xnew") == row_block(i, range(4)) and r.complete
        rc = wh.backward(P, (i, c), control=True)
        assert cells(rc, "Xnew") == row_block(i, range(4))
        assert cells(rc, "X") == {(k, j) for k in range(30) for j in range(4)}
        assert cells(rc, "y") == {(k,) for k in range(30)}
    labels = pipe.predict(Xnew)
    assert cells(wh.backward(labels, (2,)), "Xnew") == row_block(2, range(4))
    assert set(wh.backward(pipe.decision_function(Xnew), (1,))) == {"Xnew"}


def test_pipeline_composition_is_exact_not_all_to_all():
    raw = mixed_frame(24)
    df = wh.track_frame(raw, name="m")
    y = (raw["x0"] > 0).astype(int).to_numpy()
    src = {c: k for k, c in enumerate(raw.columns)}
    pre = ColumnTransformer([("oh", OneHotEncoder(sparse_output=False, handle_unknown="ignore"), ["color"]),
                             ("sc", StandardScaler(), ["x0", "x1"])], remainder="drop")
    pipe = make_pipeline(pre, FunctionTransformer(lambda a: a * 2.0), LogisticRegression())
    pipe.fit(df, y)
    P = pipe.predict_proba(df)
    used = {src["color"], src["x0"], src["x1"]}
    r = wh.backward(P, (7, 1))
    assert cells(r, "m") == {(7, c) for c in used} and r.complete
    rc = wh.backward(P, (7, 1), control=True)
    assert cells(rc, "m") == {(k, c) for k in range(24) for c in used}
    # transform through the pipeline: column by column (func runs on the tracked data)
    T = make_pipeline(StandardScaler(), FunctionTransformer(lambda a: a[:, ::-1])).fit(df[["x0", "x1", "x2"]])
    Z = T.transform(df[["x0", "x1", "x2"]])
    for i, j in some_cells(Z.shape):
        want = src[["x2", "x1", "x0"][j]]
        r = wh.backward(Z, (i, j))
        assert cells(r, "m") == {(i, want)} and r.complete
    # control through per-column steps stays per column
    T = make_pipeline(StandardScaler(), MinMaxScaler()).fit(df[["x0", "x1", "x2"]])
    Z = T.transform(df[["x0", "x1", "x2"]])
    for i, j in some_cells(Z.shape):
        want = src[["x0", "x1", "x2"][j]]
        assert cells(wh.backward(Z, (i, j)), "m") == {(i, want)}
        assert cells(wh.backward(Z, (i, j), control=True), "m") == {(k, want) for k in range(24)}


# --------------------------------------------------------------------------------------------- control

def test_fit_statistics_are_control_lineage_only():
    rng = np.random.default_rng(11)
    Xfit = wh.track(rng.normal(size=(15, 3)), name="fit")
    Xnew = wh.track(rng.normal(size=(4, 3)), name="new")
    sc = StandardScaler().fit(Xfit)
    Z = sc.transform(Xnew)
    r = wh.backward(Z, (2, 1))
    assert set(r) == {"new"} and cells(r, "new") == {(2, 1)}
    rc = wh.backward(Z, (2, 1), control=True)
    assert cells(rc, "fit") == {(k, 1) for k in range(15)} and cells(rc, "new") == {(2, 1)}
    hit = {tuple(c) for c in wh.forward("fit", (3, 1), Z, control=True).tolist()}
    assert hit == {(i, 1) for i in range(4)}
    assert len(wh.forward("fit", (3, 1), Z)) == 0

    target = wh.track(rng.normal(size=15), name="target")  # held: an estimator remembers its fit data weakly
    reg = LinearRegression().fit(Xfit, target)
    p = reg.predict(Xnew)
    assert set(wh.backward(p, (0,))) == {"new"}
    rc = wh.backward(p, (0,), control=True)
    assert len(rc["fit"]) == 45 and len(rc["target"]) == 15
    reg.fit(np.asarray(Xfit), rng.normal(size=15))  # refit on plain data: the old fit data is forgotten
    assert set(wh.backward(reg.predict(Xnew), (0,), control=True)) == {"new"}


def test_temporary_selections_still_lead_to_the_fit_sources():
    raw = mixed_frame(18)
    df = wh.track_frame(raw, name="m")
    clf = LogisticRegression().fit(df[["x0", "x1"]], df["x2"] > 0.5)
    p = clf.predict_proba(df[["x0", "x1"]].iloc[:3])
    rc = wh.backward(p, (1, 0), control=True)
    want = {(k, c) for k in range(18) for c in (0, 1, 2)}  # x0, x1 (X) and x2 (y)
    assert cells(rc, "m") == want
    assert cells(wh.backward(p, (1, 0)), "m") == {(1, 0), (1, 1)}


# --------------------------------------------------------------------------------------------- splits

def test_train_test_split_keeps_row_lineage():
    raw = mixed_frame(20)
    df = wh.track_frame(raw, name="m")
    X = wh.track(raw[["x0", "x1"]].to_numpy(), name="X")
    parts = train_test_split(df, df["x3"], X, test_size=0.25, random_state=3)
    plain = train_test_split(raw, raw["x3"], np.asarray(X), test_size=0.25, random_state=3)
    assert [type(p) for p in parts] == [wh.TrackedFrame, wh.TrackedFrame, wh.TrackedSeries, wh.TrackedSeries,
                                        wh.TrackedArray, wh.TrackedArray]
    for got, want in zip(parts, plain):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    for frame, ser, arr, plain_frame in [(parts[0], parts[2], parts[4], plain[0]),
                                         (parts[1], parts[3], parts[5], plain[1])]:
        rows = plain_frame.index.to_numpy()  # default index: labels are source rows
        for i in range(len(rows)):
            r = wh.backward(frame, rows=[i])
            assert cells(r, "m") == row_block(rows[i], range(raw.shape[1])) and r.complete
            assert cells(wh.backward(ser.to_numpy(), (i,)), "m") == {(rows[i], raw.columns.get_loc("x3"))}
            assert cells(wh.backward(arr, (i, 1)), "X") == {(rows[i], 1)}
    strat = train_test_split(df, stratify=df["size"], random_state=0, test_size=0.5)
    assert all(isinstance(p, wh.TrackedFrame) and wh.backward(p, rows=[0]).complete for p in strat)


# --------------------------------------------------------------------------------------------- contract

def test_untracked_calls_return_exactly_sklearns_types():
    raw = mixed_frame(12)
    before = len(whsk._fits)
    Z = StandardScaler().fit_transform(raw[["x0", "x1"]])
    assert type(Z) is np.ndarray
    S = OneHotEncoder().fit_transform(raw[["color"]])
    assert sp.issparse(S) and whsk.output_node(S) is None
    F = StandardScaler().set_output(transform="pandas").fit_transform(raw[["x0"]])
    assert type(F) is pd.DataFrame
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(raw[["x0", "x1"]], raw["size"])
    p = pipe.predict(raw[["x0", "x1"]])
    assert type(p) is np.ndarray and p.dtype == object
    a, b = train_test_split(raw, random_state=0)
    assert type(a) is pd.DataFrame and type(b) is pd.DataFrame
    assert len(whsk._fits) == before


def test_wrappers_keep_name_doc_signature_and_availability():
    assert StandardScaler.transform.__name__ == "transform"
    assert StandardScaler.transform.__doc__ and "Perform standardization" in StandardScaler.transform.__doc__
    assert "copy" in inspect.signature(StandardScaler.transform).parameters
    assert getattr(StandardScaler.transform, "__whence_sklearn__", False)
    assert hasattr(make_pipeline(StandardScaler(), LogisticRegression()), "predict_proba")
    assert not hasattr(make_pipeline(StandardScaler()), "predict_proba")  # available_if still decides
    assert "X" in inspect.signature(Pipeline.predict_proba).parameters


def test_bad_input_raises_sklearns_own_error_and_records_nothing():
    bad = np.arange(5.0)
    with pytest.raises(ValueError) as plain_err:
        StandardScaler().fit(bad)
    est = StandardScaler()
    with pytest.raises(ValueError) as tracked_err:
        est.fit(wh.track(bad, name="bad"))
    assert str(tracked_err.value) == str(plain_err.value)
    assert whsk._fit_entry(est) is None
    sc = StandardScaler().fit(np.ones((4, 3)))
    with pytest.raises(ValueError) as plain_err:
        sc.transform(np.ones((2, 2)))
    with pytest.raises(ValueError) as tracked_err:
        sc.transform(wh.track(np.ones((2, 2)), name="narrow"))
    assert str(tracked_err.value) == str(plain_err.value)


CHECK = """
rng = np.random.default_rng(0)
X = wh.track(rng.normal(size=(20, 3)), name="X")
y = (rng.normal(size=20) > 0).astype(int)
pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
P = pipe.predict_proba(X)
assert isinstance(P, wh.TrackedArray), type(P)
assert wh.backward(P, (3, 1))["X"].tolist() == [[3, 0], [3, 1], [3, 2]]
assert len(wh.backward(P, (3, 1), control=True)["X"]) == 60
df = wh.track_frame(pd.DataFrame({"a": rng.normal(size=8), "c": list("xyzxyzxy")}), name="df")
Z = OneHotEncoder(sparse_output=False).fit_transform(df[["c"]])
assert wh.backward(Z, (4, 2))["df"].tolist() == [[4, 1]]
a, b = train_test_split(df, random_state=0)
assert wh.backward(a, rows=[0]).complete
class Mine(StandardScaler):
    pass
assert wh.backward(Mine().fit_transform(X), (1, 2))["X"].tolist() == [[1, 2]]
print("ok")
"""

SKLEARN = """
import sys
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
"""

WHENCE = """
import sys
import numpy as np, pandas as pd
import whence as wh, whence.tabular
"""

ORDERS = {"whence first": WHENCE + 'assert "sklearn" not in sys.modules\n' + SKLEARN + CHECK,
          "sklearn first": SKLEARN + 'assert "whence" not in sys.modules\n' + WHENCE + CHECK}


@pytest.fixture(scope="module")
def import_orders():
    """Both import orders, each in a fresh interpreter (run side by side)."""
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    procs = {k: subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env) for k, code in ORDERS.items()}
    out = {}
    for k, p in procs.items():
        stdout, stderr = p.communicate(timeout=180)
        out[k] = (p.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_import_order(import_orders, order):
    rc, stdout, stderr = import_orders[order]
    assert rc == 0, stderr
    assert stdout.strip() == "ok"
