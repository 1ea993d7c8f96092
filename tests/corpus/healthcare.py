"""mlinspect's ``healthcare`` example pipeline: which patients are at a higher risk of complications.

Source: https://github.com/stefan-grafberger/mlinspect, ``example_pipelines/healthcare/healthcare.py``
Licence: Apache-2.0 (mlinspect).  The code below follows the example's steps in this project's own layout.

Changes made to run it here:

* data: generated with the columns and dtypes of ``patients.csv`` (id, first_name, last_name, race, county,
  num_children, income, age_group, ssn) and ``histories.csv`` (smoker, complications, ssn), 180 patients,
  some ``?`` (missing) values, as in the shipped files; the original files were generated with Mockaroo;
* the word2vec featurisation of ``last_name`` (``MyW2VTransformer``, gensim) is left out and the Keras network
  is replaced by ``LogisticRegression(solver="liblinear")``: neither library is a dependency here;
* ``OneHotEncoder(sparse=False)`` is spelled ``sparse_output=False`` (scikit-learn >= 1.2);
* ``train_test_split`` gets ``random_state=0``; the outputs are the frame before featurisation, the
  feature matrix of the training split and the predicted probabilities on the test split.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

OPERATIONS = ("merge", "groupby-agg", "merge on group key", "column comparison", "column selection",
              "isin filter", "train_test_split", "ColumnTransformer(SimpleImputer+OneHot, StandardScaler)",
              "LogisticRegression")
READ = {"patients": {"na_values": "?"}, "histories": {"na_values": "?"}}
# columns that decide group or join membership (see harness: membership influence is not lineage)
MEMBERSHIP = {"*": ("patients.age_group", "patients.ssn", "histories.ssn")}
ORACLE = {"max_sources": 8, "max_repl": 2}
# outputs whose rows are positions in another output: compared only when that one kept its shape
DEPENDS = {"features": ("data",), "proba": ("data",)}


def make_data(rng, n=180):
    ssn = [f"{a:03d}-{b:02d}-{c:04d}" for a, b, c in zip(rng.integers(100, 999, n), rng.integers(10, 99, n),
                                                          rng.integers(1000, 9999, n))]
    ssn = list(dict.fromkeys(ssn))
    n = len(ssn)
    patients = pd.DataFrame({
        "id": np.arange(1, n + 1),
        "first_name": rng.choice(["Ann", "Bob", "Cid", "Dee", "Eve", "Fay", "Gus"], n),
        "last_name": rng.choice(["Smith", "Jones", "Brown", "Lee", "Diaz", "Khan"], n),
        "race": rng.choice(["race1", "race2", "race3", "?"], n, p=[0.4, 0.3, 0.25, 0.05]),
        "county": rng.choice(["county1", "county2", "county3", "county4"], n),
        "num_children": rng.integers(0, 5, n),
        "income": rng.normal(60000, 15000, n).round(2),
        "age_group": rng.choice(["group1", "group2", "group3"], n),
        "ssn": ssn,
    })
    order = rng.permutation(n)
    histories = pd.DataFrame({
        "smoker": rng.choice(["yes", "no", "?"], n, p=[0.3, 0.65, 0.05])[order],
        "complications": rng.integers(0, 10, n)[order],
        "ssn": np.asarray(ssn)[order],
    })
    return {"patients": patients, "histories": histories}


def run(src):
    patients, histories = src["patients"], src["histories"]
    data = patients.merge(histories, on=["ssn"])
    complications = data.groupby("age_group").agg(mean_complications=("complications", "mean"))
    data = data.merge(complications, on=["age_group"])
    data["label"] = data["complications"] > 1.2 * data["mean_complications"]
    data = data[["smoker", "last_name", "county", "num_children", "race", "income", "label"]]
    data = data[data["county"].isin(["county2", "county3"])]

    impute_and_one_hot_encode = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("encode", OneHotEncoder(sparse_output=False, handle_unknown="ignore")),
    ])
    featurisation = ColumnTransformer(transformers=[
        ("impute_and_one_hot_encode", impute_and_one_hot_encode, ["smoker", "county", "race"]),
        ("numeric", StandardScaler(), ["num_children", "income"]),
    ])
    train_data, test_data = train_test_split(data, random_state=0)
    features = featurisation.fit_transform(train_data)
    model = LogisticRegression(solver="liblinear").fit(features, train_data["label"])
    proba = model.predict_proba(featurisation.transform(test_data))
    return {"data": data, "features": features, "proba": proba}
