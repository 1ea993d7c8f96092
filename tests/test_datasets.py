"""The synthetic credit-risk case study (whence.datasets) and its plain-pandas ETL."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from whence.datasets import (
    ANOMALY_DAYS_EMPLOYED,
    FEATURES,
    CreditRiskFiles,
    credit_risk,
    credit_risk_etl,
)

APPLICATION_COLUMNS = [
    "SK_ID_CURR", "TARGET", "CODE_GENDER", "NAME_CONTRACT_TYPE", "NAME_INCOME_TYPE",
    "NAME_EDUCATION_TYPE", "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "DAYS_BIRTH",
    "DAYS_EMPLOYED", "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3", "CNT_CHILDREN",
    "FLAG_OWN_CAR"]
BUREAU_COLUMNS = [
    "SK_ID_CURR", "SK_ID_BUREAU", "CREDIT_ACTIVE", "CREDIT_TYPE", "DAYS_CREDIT", "AMT_CREDIT_SUM",
    "AMT_CREDIT_SUM_DEBT", "AMT_CREDIT_SUM_OVERDUE", "CREDIT_DAY_OVERDUE"]
PREVIOUS_COLUMNS = [
    "SK_ID_PREV", "SK_ID_CURR", "NAME_CONTRACT_STATUS", "AMT_APPLICATION", "AMT_CREDIT",
    "AMT_ANNUITY", "DAYS_DECISION", "CNT_PAYMENT"]


def read(files):
    return {name: pd.read_csv(p) for name, p in files.paths.items()}


@pytest.fixture(scope="module")
def default_files(tmp_path_factory):
    """The default size, generated once for the whole module."""
    return credit_risk(path=tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def default_tables(default_files):
    return read(default_files)


@pytest.fixture(scope="module")
def etl_result(default_tables):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return credit_risk_etl(**default_tables, return_frame=True)


# ---------------------------------------------------------------- the files


def test_files_and_layout(default_files, default_tables):
    assert isinstance(default_files, CreditRiskFiles)
    assert default_files.application == default_files.dir / "application.csv"
    assert default_files.bureau == default_files.dir / "bureau.csv"
    assert default_files.previous_application == default_files.dir / "previous_application.csv"
    assert list(default_files.paths) == ["application", "bureau", "previous_application"]
    assert all(isinstance(p, Path) and p.is_file() for p in default_files.paths.values())
    with pytest.raises(AttributeError):
        default_files.dir = Path(".")  # frozen
    app, bur, prev = default_tables.values()
    assert list(app.columns) == APPLICATION_COLUMNS
    assert list(bur.columns) == BUREAU_COLUMNS
    assert list(prev.columns) == PREVIOUS_COLUMNS


def test_row_counts_at_default_size(default_tables):
    app, bur, prev = default_tables.values()
    assert len(app) == 20_000
    assert 4.0 * len(app) <= len(bur) <= 6.0 * len(app)
    assert 2.5 * len(app) <= len(prev) <= 3.5 * len(app)
    assert 150_000 <= len(app) + len(bur) + len(prev) <= 210_000


def test_ids_unique_and_referenced(default_tables):
    app, bur, prev = default_tables.values()
    assert app["SK_ID_CURR"].is_unique and app["SK_ID_CURR"].iloc[0] == 100001
    assert (np.diff(app["SK_ID_CURR"].to_numpy()) > 0).all()
    assert bur["SK_ID_BUREAU"].is_unique and prev["SK_ID_PREV"].is_unique
    assert bur["SK_ID_CURR"].isin(app["SK_ID_CURR"]).all()
    assert prev["SK_ID_CURR"].isin(app["SK_ID_CURR"]).all()
    without_bureau = ~app["SK_ID_CURR"].isin(bur["SK_ID_CURR"])
    assert 0.01 < without_bureau.mean() < 0.25  # some applicants have no earlier credits


def test_target_and_categories(default_tables):
    app, bur, prev = default_tables.values()
    assert set(app["TARGET"].unique()) == {0, 1}
    assert 0.06 <= app["TARGET"].mean() <= 0.10
    gender = app["CODE_GENDER"].value_counts(normalize=True)
    assert set(gender.index) == {"F", "M", "XNA"} and 0.001 <= gender["XNA"] <= 0.006
    assert set(app["NAME_CONTRACT_TYPE"]) == {"Cash loans", "Revolving loans"}
    assert 4 <= app["NAME_INCOME_TYPE"].nunique() <= 6
    assert 4 <= app["NAME_EDUCATION_TYPE"].nunique() <= 5
    assert set(app["FLAG_OWN_CAR"]) == {"Y", "N"}
    assert set(bur["CREDIT_ACTIVE"]) == {"Active", "Closed", "Sold", "Bad debt"}
    assert set(prev["NAME_CONTRACT_STATUS"]) == {"Approved", "Refused", "Canceled", "Unused offer"}


def test_value_ranges(default_tables):
    app, bur, prev = default_tables.values()
    age = -app["DAYS_BIRTH"] / 365.25
    assert age.min() >= 21 and age.max() < 70
    anomaly = app["DAYS_EMPLOYED"] == ANOMALY_DAYS_EMPLOYED
    assert 0.10 <= anomaly.mean() <= 0.20
    assert (app.loc[~anomaly, "DAYS_EMPLOYED"] < 0).all()
    for col in ["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]:
        ext = app[col].dropna()
        assert ((ext > 0) & (ext < 1)).all()
    assert (app["AMT_INCOME_TOTAL"] > 0).all() and (app["AMT_CREDIT"] > 0).all()
    assert (app["CNT_CHILDREN"] >= 0).all()
    assert (bur["DAYS_CREDIT"] < 0).all() and (prev["DAYS_DECISION"] < 0).all()
    assert (bur["AMT_CREDIT_SUM_OVERDUE"] >= 0).all() and (bur["AMT_CREDIT_SUM_OVERDUE"] > 0).any()


def test_missing_values_where_specified(default_tables):
    app, bur, prev = default_tables.values()
    missing = app.isna().mean()
    assert 0.45 <= missing["EXT_SOURCE_1"] <= 0.55
    assert 0.15 <= missing["EXT_SOURCE_3"] <= 0.25
    assert 0.005 <= missing["AMT_ANNUITY"] <= 0.06
    complete = ["SK_ID_CURR", "TARGET", "CODE_GENDER", "AMT_INCOME_TOTAL", "AMT_CREDIT",
                "DAYS_BIRTH", "DAYS_EMPLOYED"]
    assert (missing[complete] == 0).all()
    assert 0.10 <= bur["AMT_CREDIT_SUM_DEBT"].isna().mean() <= 0.20
    assert 0.15 <= prev["AMT_ANNUITY"].isna().mean() <= 0.25
    assert 0 < prev["AMT_CREDIT"].isna().mean() < 0.10


def test_deterministic_for_a_seed(tmp_path):
    a = credit_risk(500, seed=7, path=tmp_path / "a")
    b = credit_risk(500, seed=7, path=tmp_path / "b")
    c = credit_risk(500, seed=8, path=tmp_path / "c")
    for name in a.paths:
        assert a.paths[name].read_bytes() == b.paths[name].read_bytes()
        assert a.paths[name].read_bytes() != c.paths[name].read_bytes()


def test_default_path_is_a_fresh_temp_dir():
    files = credit_risk(50, seed=1)
    try:
        assert files.dir.is_dir() and files.dir.name.startswith("whence-credit-risk-")
        assert all(p.parent == files.dir for p in files.paths.values())
    finally:
        shutil.rmtree(files.dir)


def test_creates_missing_dirs_and_accepts_str(tmp_path):
    target = tmp_path / "new" / "nested"
    files = credit_risk(20, path=str(target))
    assert files.dir == target and files.application.is_file()
    again = credit_risk(20, path=target)  # overwriting an existing directory is fine
    assert again.application.read_bytes() == files.application.read_bytes()
    assert credit_risk(np.int64(5), path=tmp_path / "np").application.is_file()


@pytest.mark.parametrize("n, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                      (100.0, TypeError), ("10", TypeError), (True, TypeError),
                                      (None, TypeError)])
def test_bad_n_applicants(tmp_path, n, error):
    with pytest.raises(error, match="n_applicants"):
        credit_risk(n, path=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_path_that_is_a_file(tmp_path):
    f = tmp_path / "taken"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        credit_risk(10, path=f)
    with pytest.raises(TypeError, match="path"):
        credit_risk(10, path=3)


# ---------------------------------------------------------------- the ETL


def test_etl_matrix(default_tables, etl_result):
    app = default_tables["application"]
    X, y, names, df = etl_result
    kept = app[app["CODE_GENDER"] != "XNA"]
    assert X.dtype == np.float64 and np.isfinite(X).all()
    assert X.shape == (len(kept), len(names))
    assert names[:len(FEATURES)] == FEATURES and len(set(names)) == len(names)
    assert "NAME_CONTRACT_TYPE_Cash loans" in names
    assert "NAME_EDUCATION_TYPE_Higher education" in names
    # row order: the surviving application rows, in file order
    np.testing.assert_array_equal(df["SK_ID_CURR"].to_numpy(), kept["SK_ID_CURR"].to_numpy())
    np.testing.assert_array_equal(y, kept["TARGET"].to_numpy())
    np.testing.assert_array_equal(X, df[names].to_numpy(dtype="float64"))


def test_etl_features_match_an_independent_computation(default_tables, etl_result):
    app, bur, prev = default_tables.values()
    X, _, names, _ = etl_result
    kept = app[app["CODE_GENDER"] != "XNA"]
    ids = kept["SK_ID_CURR"].to_numpy()
    col = {name: X[:, i] for i, name in enumerate(names)}

    open_or_closed = bur[bur["CREDIT_ACTIVE"].isin(["Active", "Closed"])]
    counts = open_or_closed["SK_ID_CURR"].value_counts().reindex(ids, fill_value=0).to_numpy()
    np.testing.assert_array_equal(col["BUREAU_COUNT"], counts)

    decided = prev[prev["NAME_CONTRACT_STATUS"].isin(["Approved", "Refused"])]
    refused = decided[decided["NAME_CONTRACT_STATUS"] == "Refused"]["SK_ID_CURR"]
    np.testing.assert_array_equal(col["PREV_REFUSED_COUNT"],
                                  refused.value_counts().reindex(ids, fill_value=0).to_numpy())

    np.testing.assert_allclose(col["AGE_YEARS"], -kept["DAYS_BIRTH"].to_numpy() / 365.25)
    np.testing.assert_allclose(col["CREDIT_INCOME_RATIO"],
                               (kept["AMT_CREDIT"] / kept["AMT_INCOME_TOTAL"]).to_numpy())
    anomaly = (kept["DAYS_EMPLOYED"] == ANOMALY_DAYS_EMPLOYED).to_numpy()
    np.testing.assert_array_equal(col["DAYS_EMPLOYED_ANOM"], anomaly.astype(float))
    employed = kept["DAYS_EMPLOYED"].to_numpy()[~anomaly] / -365.25
    np.testing.assert_allclose(col["EMPLOYED_YEARS"][~anomaly], employed)
    assert np.unique(col["EMPLOYED_YEARS"][anomaly]).size == 1  # all imputed with the median
    ext1 = kept["EXT_SOURCE_1"].to_numpy()
    np.testing.assert_allclose(col["EXT_SOURCE_1"][np.isnan(ext1)], np.nanmedian(ext1))


def test_etl_leaves_inputs_alone(default_tables):
    small = {name: t.head(400).copy() for name, t in default_tables.items()}
    before = {name: t.copy() for name, t in small.items()}
    X, y, _ = credit_risk_etl(small["application"], small["bureau"],
                              small["previous_application"])
    assert len(X) == len(y) == (small["application"]["CODE_GENDER"] != "XNA").sum()
    for name, table in small.items():
        pd.testing.assert_frame_equal(table, before[name])


def test_logistic_regression_finds_signal(etl_result):
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, _, _ = etl_result
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(X_train, y_train)
    auc = roc_auc_score(y_test, model.predict_proba(X_test)[:, 1])
    assert 0.62 <= auc <= 0.85


def test_credit_risk_temporary_directory_is_removed_at_exit(tmp_path):
    import subprocess
    import sys
    code = ("import tempfile, sys; tempfile.tempdir = sys.argv[1]\n"
            "from whence.datasets import credit_risk\n"
            "for _ in range(2):\n"
            "    f = credit_risk(50, seed=0)\n"
            "    assert f.application.exists()\n"
            "print(f.dir)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         env=_env())
    assert out.returncode == 0, out.stderr
    assert str(tmp_path) in out.stdout
    assert list(tmp_path.iterdir()) == []  # both directories gone when the process ended


def _env():
    import os
    import whence
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(whence.__file__))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env
