"""mlinspect's ``compas`` example pipeline: recidivism score classification on COMPAS screening data.

Source: https://github.com/stefan-grafberger/mlinspect, ``example_pipelines/compas/compas.py``
Licence: Apache-2.0 (mlinspect).  Rewritten in this project's layout, same steps.

Changes made to run it here:

* data: generated with the columns of ``compas_train.csv`` / ``compas_test.csv`` (an unnamed index column,
  then sex, dob, age, c_charge_degree, race, score_text, priors_count, days_b_screening_arrest,
  decile_score, is_recid, two_year_recid, c_jail_in, c_jail_out, plus two columns the pipeline drops),
  260 + 80 rows, with missing ``?`` values; the original data are ProPublica's (no licence stated);
* ``LogisticRegression(solver="liblinear")``; the outputs are the filtered training frame, the labels from
  ``label_binarize``, the feature matrix and the test predictions.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, label_binarize

OPERATIONS = ("read_csv(index_col=0)", "column selection", "boolean filters (4)", "replace", "label_binarize",
              "ColumnTransformer(SimpleImputer+OneHot, SimpleImputer+KBinsDiscretizer)", "LogisticRegression")
READ = {"compas_train": {"na_values": "?", "index_col": 0}, "compas_test": {"na_values": "?", "index_col": 0}}
COLUMNS = ["sex", "dob", "age", "c_charge_degree", "race", "score_text", "priors_count",
           "days_b_screening_arrest", "decile_score", "is_recid", "two_year_recid", "c_jail_in", "c_jail_out"]
ORACLE = {"max_sources": 8, "max_repl": 2}
DEPENDS = {"features": ("train_data",), "predictions": ("train_data",), "train_labels": ("train_data",)}


def _table(rng, n, start):
    dob = pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 18000, n), unit="D")
    jail_in = pd.Timestamp("2013-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="h") * 24
    age = rng.integers(18, 70, n).astype(float)
    age[rng.random(n) < 0.04] = np.nan
    df = pd.DataFrame({
        "name": [f"person {i}" for i in range(start, start + n)],
        "sex": rng.choice(["Male", "Female"], n, p=[0.8, 0.2]),
        "dob": dob.strftime("%Y-%m-%d"),
        "age": age,
        "c_charge_degree": rng.choice(["F", "M", "O"], n, p=[0.6, 0.35, 0.05]),
        "race": rng.choice(["African-American", "Caucasian", "Hispanic", "Other"], n),
        "score_text": rng.choice(["Low", "Medium", "High"], n, p=[0.5, 0.3, 0.2]),
        "priors_count": rng.poisson(3, n),
        "days_b_screening_arrest": rng.integers(-60, 60, n),
        "decile_score": rng.integers(1, 11, n),
        "is_recid": rng.choice([0, 1, -1], n, p=[0.5, 0.45, 0.05]),
        "two_year_recid": rng.integers(0, 2, n),
        "c_jail_in": jail_in.strftime("%Y-%m-%d %H:%M:%S"),
        "c_jail_out": (jail_in + pd.to_timedelta(rng.integers(1, 90, n), unit="D")).strftime("%Y-%m-%d %H:%M:%S"),
        "v_decile_score": rng.integers(1, 11, n),
    }, index=pd.RangeIndex(start, start + n) + 1)
    return df


def make_data(rng):
    return {"compas_train": _table(rng, 260, 0), "compas_test": _table(rng, 80, 1000)}


def run(src):
    train_data, test_data = src["compas_train"], src["compas_test"]
    train_data = train_data[COLUMNS]
    test_data = test_data[COLUMNS]

    train_data = train_data[(train_data["days_b_screening_arrest"] <= 30)
                            & (train_data["days_b_screening_arrest"] >= -30)]
    train_data = train_data[train_data["is_recid"] != -1]
    train_data = train_data[train_data["c_charge_degree"] != "O"]
    train_data = train_data[train_data["score_text"] != "N/A"]

    train_data = train_data.replace("Medium", "Low")
    test_data = test_data.replace("Medium", "Low")

    train_labels = label_binarize(train_data["score_text"], classes=["High", "Low"])
    test_labels = label_binarize(test_data["score_text"], classes=["High", "Low"])

    impute1_and_onehot = Pipeline([("imputer1", SimpleImputer(strategy="most_frequent")),
                                   ("onehot", OneHotEncoder(handle_unknown="ignore"))])
    impute2_and_bin = Pipeline([("imputer2", SimpleImputer(strategy="mean")),
                                ("discretizer", KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="uniform"))])
    featurizer = ColumnTransformer(transformers=[
        ("impute1_and_onehot", impute1_and_onehot, ["is_recid"]),
        ("impute2_and_bin", impute2_and_bin, ["age"]),
    ])
    pipeline = Pipeline([("features", featurizer), ("classifier", LogisticRegression(solver="liblinear"))])
    pipeline.fit(train_data, train_labels.ravel())
    return {"train_data": train_data, "train_labels": train_labels,
            "features": featurizer.transform(train_data), "predictions": pipeline.predict(test_data),
            "_test_labels": test_labels}
