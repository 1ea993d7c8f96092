"""mlinspect's ``adult_simple`` example pipeline: income classification on the UCI Adult data.

Source: https://github.com/stefan-grafberger/mlinspect, ``example_pipelines/adult_simple/adult_simple.py``
Licence: Apache-2.0 (mlinspect); the Adult data set is CC BY 4.0 (UCI).

Changes made to run it here:

* data: generated with the columns of mlinspect's ``adult_train.csv`` (an unnamed index column, age,
  workclass, fnlwgt, education, education-num, marital-status, occupation, relationship, race, sex,
  capital-gain, capital-loss, hours-per-week, native-country, income-per-year), 240 rows with ``?`` in
  workclass and occupation as in the original;
* ``DecisionTreeClassifier(random_state=0)`` (the original is unseeded); the outputs are the frame after
  ``dropna``, the labels, the feature matrix and the tree's predictions on the training rows.
"""

import numpy as np
import pandas as pd
from sklearn import compose, pipeline, preprocessing, tree

OPERATIONS = ("read_csv(index_col=0)", "dropna", "label_binarize", "ColumnTransformer(OneHot, StandardScaler)",
              "DecisionTreeClassifier")
READ = {"adult_train": {"na_values": "?", "index_col": 0}}
ORACLE = {"max_sources": 8, "max_repl": 2}
DEPENDS = {"features": ("data",), "predictions": ("data",), "labels": ("data",)}


def make_data(rng, n=240):
    wc = rng.choice(["Private", "Self-emp", "Local-gov", "State-gov", "?"], n, p=[0.6, 0.15, 0.1, 0.1, 0.05])
    df = pd.DataFrame({
        "age": rng.integers(17, 80, n),
        "workclass": wc,
        "fnlwgt": rng.integers(20000, 400000, n),
        "education": rng.choice(["HS-grad", "Bachelors", "Masters", "Some-college", "11th"], n),
        "education-num": rng.integers(5, 16, n),
        "marital-status": rng.choice(["Never-married", "Married-civ-spouse", "Divorced"], n),
        "occupation": rng.choice(["Sales", "Tech-support", "Craft-repair", "?"], n, p=[0.3, 0.3, 0.3, 0.1]),
        "relationship": rng.choice(["Husband", "Wife", "Own-child", "Not-in-family"], n),
        "race": rng.choice(["White", "Black", "Asian-Pac-Islander", "Other"], n),
        "sex": rng.choice(["Male", "Female"], n),
        "capital-gain": np.where(rng.random(n) < 0.9, 0, rng.integers(100, 20000, n)),
        "capital-loss": np.where(rng.random(n) < 0.95, 0, rng.integers(100, 2000, n)),
        "hours-per-week": rng.integers(10, 70, n),
        "native-country": rng.choice(["United-States", "Mexico", "India"], n, p=[0.9, 0.05, 0.05]),
        "income-per-year": rng.choice(["<=50K", ">50K"], n, p=[0.75, 0.25]),
    }, index=pd.RangeIndex(n) * 3 + 7)
    return {"adult_train": df}


def run(src):
    raw_data = src["adult_train"]
    data = raw_data.dropna()
    labels = preprocessing.label_binarize(data["income-per-year"], classes=[">50K", "<=50K"])
    feature_transformation = compose.ColumnTransformer(transformers=[
        ("categorical", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["education", "workclass"]),
        ("numeric", preprocessing.StandardScaler(), ["age", "hours-per-week"]),
    ])
    income_pipeline = pipeline.Pipeline([
        ("features", feature_transformation),
        ("classifier", tree.DecisionTreeClassifier(random_state=0))])
    income_pipeline.fit(data, labels)
    return {"data": data, "labels": labels, "features": feature_transformation.transform(data),
            "predictions": income_pipeline.predict(data)}
