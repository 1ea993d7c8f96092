"""Kaggle tutorial "Titanic Data Science Solutions" (Manav Sehgal): the feature-engineering half.

Source: https://www.kaggle.com/code/startupsci/titanic-data-science-solutions (Kaggle notebook; published
copies on GitHub, e.g. ``titanic-data-science-solutions.ipynb`` in many course repositories).
Licence: Apache-2.0 (Kaggle's licence for published notebooks).  Rewritten here step by step.

Changes made to run it here:

* data: generated with the columns of Kaggle's ``train.csv`` / ``test.csv`` (PassengerId, Survived (train
  only), Pclass, Name with a title, Sex, Age, SibSp, Parch, Ticket, Fare, Cabin, Embarked), 240 + 80 rows,
  missing ages, cabins, ports and one missing test fare as in the original;
* the tutorial's loops over ``combine = [train_df, test_df]`` are kept; its age-guess loop over
  (Sex, Pclass) is kept; the model comparison at the end is left out;
* the outputs are the engineered training and test frames and the ``AgeBand`` / ``FareBand`` survival tables.
"""

import numpy as np
import pandas as pd

OPERATIONS = ("drop columns", ".str.extract(regex)", "replace(list, value)", "map(dict)", "fillna(0)",
              "astype(int)", "dropna().median() to a scalar", "loc masked assignment", "pd.cut",
              "groupby(as_index=False).mean().sort_values", "column arithmetic", "mode()[0]",
              "fillna(scalar)", "pd.qcut", "loc[row mask, col] = constant")
READ = {"train": {}, "test": {}}
MEMBERSHIP = {"age_bands": ("train.Age",), "fare_bands": ("train.Fare",),
              "*": ("train.Sex", "train.Pclass", "test.Sex", "test.Pclass")}
TITLES = ["Mr", "Mrs", "Miss", "Master", "Dr", "Rev", "Col", "Mlle", "Countess", "Ms", "Mme"]


def _table(rng, n, start, with_label):
    sex = rng.choice(["male", "female"], n, p=[0.65, 0.35])
    title = np.where(sex == "male",
                     rng.choice(["Mr", "Master", "Dr", "Rev", "Col"], n, p=[0.85, 0.07, 0.03, 0.03, 0.02]),
                     rng.choice(["Mrs", "Miss", "Mlle", "Countess", "Ms", "Mme"], n,
                                p=[0.45, 0.45, 0.03, 0.02, 0.03, 0.02]))
    names = [f"Surname{i % 97}, {t}. Given{i}" for i, t in zip(range(start, start + n), title)]
    age = rng.uniform(0.5, 75, n).round(1)
    age[rng.random(n) < 0.2] = np.nan
    fare = np.exp(rng.normal(2.8, 1, n)).round(4)
    embarked = rng.choice(["S", "C", "Q", ""], n, p=[0.7, 0.18, 0.1, 0.02])
    df = pd.DataFrame({"PassengerId": np.arange(start, start + n)})
    if with_label:
        df["Survived"] = (rng.random(n) < np.where(sex == "female", 0.74, 0.19)).astype(int)
    df = df.assign(Pclass=rng.choice([1, 2, 3], n, p=[0.24, 0.21, 0.55]), Name=names, Sex=sex, Age=age,
                   SibSp=rng.integers(0, 4, n), Parch=rng.integers(0, 3, n),
                   Ticket=[f"A/{t}" for t in rng.integers(100, 9999, n)], Fare=fare,
                   Cabin=np.where(rng.random(n) < 0.77, "", "C85"), Embarked=embarked)
    if not with_label:
        df.loc[int(rng.integers(n)), "Fare"] = np.nan
    return df.replace("", np.nan)


def make_data(rng):
    return {"train": _table(rng, 240, 1, True), "test": _table(rng, 80, 892, False)}


def run(src):
    train_df, test_df = src["train"], src["test"]
    train_df = train_df.drop(["Ticket", "Cabin"], axis=1)
    test_df = test_df.drop(["Ticket", "Cabin"], axis=1)
    combine = [train_df, test_df]

    for dataset in combine:
        dataset["Title"] = dataset.Name.str.extract(r" ([A-Za-z]+)\.", expand=False)
    for dataset in combine:
        dataset["Title"] = dataset["Title"].replace(
            ["Lady", "Countess", "Capt", "Col", "Don", "Dr", "Major", "Rev", "Sir", "Jonkheer", "Dona"], "Rare")
        dataset["Title"] = dataset["Title"].replace("Mlle", "Miss")
        dataset["Title"] = dataset["Title"].replace("Ms", "Miss")
        dataset["Title"] = dataset["Title"].replace("Mme", "Mrs")
    title_mapping = {"Mr": 1, "Miss": 2, "Mrs": 3, "Master": 4, "Rare": 5}
    for dataset in combine:
        dataset["Title"] = dataset["Title"].map(title_mapping)
        dataset["Title"] = dataset["Title"].fillna(0)

    train_df = train_df.drop(["Name", "PassengerId"], axis=1)
    test_df = test_df.drop(["Name"], axis=1)
    combine = [train_df, test_df]
    for dataset in combine:
        dataset["Sex"] = dataset["Sex"].map({"female": 1, "male": 0}).astype(int)

    guess_ages = np.zeros((2, 3))
    for dataset in combine:
        for i in range(0, 2):
            for j in range(0, 3):
                guess_df = dataset[(dataset["Sex"] == i) & (dataset["Pclass"] == j + 1)]["Age"].dropna()
                age_guess = guess_df.median()
                guess_ages[i, j] = int(age_guess / 0.5 + 0.5) * 0.5
        for i in range(0, 2):
            for j in range(0, 3):
                dataset.loc[(dataset.Age.isnull()) & (dataset.Sex == i) & (dataset.Pclass == j + 1),
                            "Age"] = guess_ages[i, j]
        dataset["Age"] = dataset["Age"].astype(int)

    train_df["AgeBand"] = pd.cut(train_df["Age"], 5)
    age_bands = train_df[["AgeBand", "Survived"]].groupby(["AgeBand"], as_index=False, observed=False).mean() \
        .sort_values(by="AgeBand", ascending=True)
    for dataset in combine:
        dataset.loc[dataset["Age"] <= 16, "Age"] = 0
        dataset.loc[(dataset["Age"] > 16) & (dataset["Age"] <= 32), "Age"] = 1
        dataset.loc[(dataset["Age"] > 32) & (dataset["Age"] <= 48), "Age"] = 2
        dataset.loc[(dataset["Age"] > 48) & (dataset["Age"] <= 64), "Age"] = 3
        dataset.loc[dataset["Age"] > 64, "Age"] = 4
    train_df = train_df.drop(["AgeBand"], axis=1)
    combine = [train_df, test_df]

    for dataset in combine:
        dataset["FamilySize"] = dataset["SibSp"] + dataset["Parch"] + 1
    for dataset in combine:
        dataset["IsAlone"] = 0
        dataset.loc[dataset["FamilySize"] == 1, "IsAlone"] = 1
    train_df = train_df.drop(["Parch", "SibSp", "FamilySize"], axis=1)
    test_df = test_df.drop(["Parch", "SibSp", "FamilySize"], axis=1)
    combine = [train_df, test_df]
    for dataset in combine:
        dataset["Age*Class"] = dataset.Age * dataset.Pclass

    freq_port = train_df.Embarked.dropna().mode()[0]
    for dataset in combine:
        dataset["Embarked"] = dataset["Embarked"].fillna(freq_port)
    for dataset in combine:
        dataset["Embarked"] = dataset["Embarked"].map({"S": 0, "C": 1, "Q": 2}).astype(int)

    test_df["Fare"] = test_df["Fare"].fillna(test_df["Fare"].dropna().median())
    train_df["FareBand"] = pd.qcut(train_df["Fare"], 4)
    fare_bands = train_df[["FareBand", "Survived"]].groupby(["FareBand"], as_index=False, observed=False).mean() \
        .sort_values(by="FareBand", ascending=True)
    for dataset in combine:
        dataset.loc[dataset["Fare"] <= 7.91, "Fare"] = 0
        dataset.loc[(dataset["Fare"] > 7.91) & (dataset["Fare"] <= 14.454), "Fare"] = 1
        dataset.loc[(dataset["Fare"] > 14.454) & (dataset["Fare"] <= 31), "Fare"] = 2
        dataset.loc[dataset["Fare"] > 31, "Fare"] = 3
        dataset["Fare"] = dataset["Fare"].astype(int)
    train_df = train_df.drop(["FareBand"], axis=1)
    return {"train": train_df, "test": test_df, "age_bands": age_bands, "fare_bands": fare_bands}
