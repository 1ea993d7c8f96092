"""scikit-learn examples gallery, "Column Transformer with Mixed Types" (Titanic from OpenML).

Source: https://github.com/scikit-learn/scikit-learn, ``examples/compose/plot_column_transformer_mixed_types.py``
Licence: BSD-3-Clause (scikit-learn).

Changes made to run it here:

* the selector's text dtypes are ``["object", "str"]`` on pandas 3 (text columns are ``str``) and ``["object"]``
  on pandas 2, which has no ``str`` dtype to select;
* data: generated with the OpenML ``titanic`` (data id 40945) columns the example uses and a few it drops
  (pclass, name, sex, age, sibsp, parch, ticket, fare, cabin, embarked, boat, body, home.dest, survived),
  300 rows, missing ages, fares and ports as in the original; ``fetch_openml`` needs the network;
* the ``SelectPercentile(chi2, percentile=50)`` step is kept; the grid search at the end of the example is left
  out (it refits the same pipeline many times); ``LogisticRegression(solver="liblinear")``;
* the outputs are the preprocessed training matrix, the predicted probabilities on the test split and the
  ``make_column_selector`` variant's matrix.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector as selector
from sklearn.feature_selection import SelectPercentile, chi2
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

OPERATIONS = ("column selection", "train_test_split", "Pipeline(SimpleImputer(median), StandardScaler)",
              "Pipeline(OneHotEncoder, SelectPercentile(chi2))", "ColumnTransformer", "LogisticRegression",
              "make_column_selector(dtype_include/exclude)", "drop columns")
READ = {"titanic": {}}
ORACLE = {"max_sources": 6, "max_repl": 2}  # each run fits two ColumnTransformers and a model


# pandas 3 reads text as the "str" dtype; pandas 2 as object (and has no "str" dtype to select)
TEXT_DTYPES = ["object", "str"] if int(pd.__version__.split(".")[0]) >= 3 else ["object"]

def make_data(rng, n=300):
    sex = rng.choice(["male", "female"], n, p=[0.64, 0.36])
    age = rng.uniform(0.2, 80, n).round(1)
    age[rng.random(n) < 0.2] = np.nan
    fare = np.exp(rng.normal(3, 1, n)).round(4)
    fare[rng.random(n) < 0.01] = np.nan
    embarked = rng.choice(["S", "C", "Q", None], n, p=[0.7, 0.19, 0.09, 0.02])
    return {"titanic": pd.DataFrame({
        "pclass": rng.choice([1, 2, 3], n, p=[0.25, 0.21, 0.54]),
        "name": [f"Passenger {i}" for i in range(n)],
        "sex": sex, "age": age, "sibsp": rng.integers(0, 4, n), "parch": rng.integers(0, 3, n),
        "ticket": [f"T{t}" for t in rng.integers(1000, 9999, n)], "fare": fare,
        "cabin": np.where(rng.random(n) < 0.75, None, "C" + pd.Series(rng.integers(1, 99, n)).astype(str)),
        "embarked": embarked, "boat": np.where(rng.random(n) < 0.6, None, "12"),
        "body": np.where(rng.random(n) < 0.9, np.nan, rng.integers(1, 300, n)),
        "home.dest": rng.choice(["London", "New York, NY", "Paris, France", None], n),
        "survived": (rng.random(n) < np.where(sex == "female", 0.72, 0.19)).astype(int),
    })}


def run(src):
    df = src["titanic"]
    X = df.drop("survived", axis=1)
    y = df["survived"]

    numeric_features = ["age", "fare"]
    numeric_transformer = Pipeline(steps=[("imputer", SimpleImputer(strategy="median")),
                                          ("scaler", StandardScaler())])
    categorical_features = ["embarked", "sex", "pclass"]
    categorical_transformer = Pipeline(steps=[("encoder", OneHotEncoder(handle_unknown="ignore")),
                                              ("selector", SelectPercentile(chi2, percentile=50))])
    preprocessor = ColumnTransformer(transformers=[("num", numeric_transformer, numeric_features),
                                                   ("cat", categorical_transformer, categorical_features)])
    clf = Pipeline(steps=[("preprocessor", preprocessor), ("classifier", LogisticRegression(solver="liblinear"))])

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    clf.fit(X_train, y_train)
    proba = clf.predict_proba(X_test)

    subset_feature = ["embarked", "sex", "pclass", "age", "fare"]
    X_train2 = X_train[subset_feature]
    preprocessor2 = ColumnTransformer(transformers=[
        ("num", numeric_transformer, selector(dtype_exclude=TEXT_DTYPES)),
        ("cat", categorical_transformer, selector(dtype_include=TEXT_DTYPES)),
    ])
    return {"features": preprocessor.transform(X_train), "proba": proba,
            "features_by_dtype": preprocessor2.fit_transform(X_train2, y_train)}
