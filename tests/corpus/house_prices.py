"""Kaggle tutorial "Stacked Regressions: Top 4% on LeaderBoard" (Serigne): the House Prices preprocessing.

Source: https://www.kaggle.com/code/serigne/stacked-regressions-top-4-on-leaderboard (Kaggle notebook; copies
on GitHub as ``stacked-regressions-top-4-on-leaderboard.ipynb``).
Licence: Apache-2.0 (Kaggle's licence for published notebooks).  Rewritten here step by step.

Changes made to run it here:

* data: generated with 20 of the 81 columns of Kaggle's House Prices ``train.csv`` / ``test.csv`` (Id,
  MSSubClass, MSZoning, LotFrontage, LotArea, Neighborhood, OverallQual, OverallCond, YearBuilt, MasVnrType,
  MasVnrArea, TotalBsmtSF, 1stFlrSF, 2ndFlrSF, GrLivArea, GarageType, GarageYrBlt, GarageCars, PoolQC, YrSold,
  SalePrice (train only)), 200 + 60 rows, with the missing values the tutorial imputes;
* the tutorial's imputation list is cut to these columns; ``scipy.stats.skew`` and ``boxcox1p`` are used as
  in the tutorial; the models are left out;
* the outputs are the combined feature frame after ``get_dummies``, the training matrix and the log target.
"""

import numpy as np
import pandas as pd
from scipy.special import boxcox1p
from scipy.stats import skew
from sklearn.preprocessing import LabelEncoder

OPERATIONS = ("drop Id", "outlier filter on two columns", "np.log1p on a Series", "concat(ignore_index)",
              "fillna('None') / fillna(0)", "groupby().transform(lambda: fillna(median))", "mode()[0]",
              "apply(str) / astype(str)", "LabelEncoder per column", "column sum", "apply(skew)",
              "boxcox1p on columns", "get_dummies", "positional split (slicing)", ".values")
READ = {"train": {}, "test": {}}
MEMBERSHIP = {"*": ("train.Neighborhood", "test.Neighborhood")}
ORACLE = {"max_sources": 10, "max_repl": 2}
DEPENDS = {"X_train": ("all_data",), "y_train": ("all_data",)}


def _table(rng, n, start, with_price):
    nb = rng.choice(["NAmes", "CollgCr", "OldTown", "Edwards", "Somerst"], n)
    lot = rng.normal(70, 20, n).round()
    lot[rng.random(n) < 0.18] = np.nan
    garage = rng.choice(["Attchd", "Detchd", "BuiltIn", ""], n, p=[0.6, 0.25, 0.1, 0.05])
    bsmt = rng.integers(0, 2000, n).astype(float)
    df = pd.DataFrame({
        "Id": np.arange(start, start + n), "MSSubClass": rng.choice([20, 60, 50, 120], n),
        "MSZoning": rng.choice(["RL", "RM", "FV", ""], n, p=[0.78, 0.15, 0.05, 0.02]), "LotFrontage": lot,
        "LotArea": rng.lognormal(9.1, 0.4, n).round(), "Neighborhood": nb,
        "OverallQual": rng.integers(3, 10, n), "OverallCond": rng.integers(3, 9, n),
        "YearBuilt": rng.integers(1900, 2010, n), "MasVnrType": rng.choice(["BrkFace", "Stone", ""], n),
        "MasVnrArea": np.where(rng.random(n) < 0.05, np.nan, rng.integers(0, 500, n)), "TotalBsmtSF": bsmt,
        "1stFlrSF": rng.integers(500, 2500, n),
        "2ndFlrSF": np.where(rng.random(n) < 0.5, 0, rng.integers(300, 1500, n)),
        "GarageType": garage, "GarageYrBlt": np.where(garage == "", np.nan, rng.integers(1920, 2010, n)),
        "GarageCars": np.where(garage == "", 0, rng.integers(1, 4, n)),
        "PoolQC": np.where(rng.random(n) < 0.98, "", "Gd"),
        "YrSold": rng.integers(2006, 2011, n)})
    df["GrLivArea"] = df["1stFlrSF"] + df["2ndFlrSF"]
    if with_price:
        df["SalePrice"] = (df["GrLivArea"] * rng.normal(110, 20, n) + 20000).round()
        df.loc[:1, "GrLivArea"] = [4800, 5100]
        df.loc[:1, "SalePrice"] = [160000, 184750]
    return df.replace("", np.nan)


def make_data(rng):
    return {"train": _table(rng, 200, 1, True), "test": _table(rng, 60, 1461, False)}


def run(src):
    train, test = src["train"], src["test"]
    train.drop("Id", axis=1, inplace=True)
    test.drop("Id", axis=1, inplace=True)
    train = train.drop(train[(train["GrLivArea"] > 4000) & (train["SalePrice"] < 300000)].index)
    train["SalePrice"] = np.log1p(train["SalePrice"])

    ntrain = train.shape[0]
    y_train = train.SalePrice.values
    all_data = pd.concat((train, test)).reset_index(drop=True)
    all_data.drop(["SalePrice"], axis=1, inplace=True)

    all_data["PoolQC"] = all_data["PoolQC"].fillna("None")
    all_data["LotFrontage"] = all_data.groupby("Neighborhood")["LotFrontage"].transform(
        lambda x: x.fillna(x.median()))
    for col in ("GarageType",):
        all_data[col] = all_data[col].fillna("None")
    for col in ("GarageYrBlt", "GarageCars"):
        all_data[col] = all_data[col].fillna(0)
    for col in ("TotalBsmtSF",):
        all_data[col] = all_data[col].fillna(0)
    all_data["MasVnrType"] = all_data["MasVnrType"].fillna("None")
    all_data["MasVnrArea"] = all_data["MasVnrArea"].fillna(0)
    all_data["MSZoning"] = all_data["MSZoning"].fillna(all_data["MSZoning"].mode()[0])

    all_data["MSSubClass"] = all_data["MSSubClass"].apply(str)
    all_data["OverallCond"] = all_data["OverallCond"].astype(str)
    all_data["YrSold"] = all_data["YrSold"].astype(str)
    for c in ("PoolQC", "OverallCond", "YrSold", "MSSubClass"):
        lbl = LabelEncoder()
        lbl.fit(list(all_data[c].values))
        all_data[c] = lbl.transform(list(all_data[c].values))

    all_data["TotalSF"] = all_data["TotalBsmtSF"] + all_data["1stFlrSF"] + all_data["2ndFlrSF"]
    numeric_feats = all_data.dtypes[all_data.dtypes != "object"].index
    numeric_feats = [c for c in numeric_feats if pd.api.types.is_numeric_dtype(all_data[c])]
    skewed_feats = all_data[numeric_feats].apply(lambda x: skew(x.dropna())).sort_values(ascending=False)
    skewness = pd.DataFrame({"Skew": skewed_feats})
    skewness = skewness[abs(skewness) > 0.75]
    skewed_features = skewness.index
    lam = 0.15
    for feat in skewed_features:
        all_data[feat] = boxcox1p(all_data[feat], lam)

    all_data = pd.get_dummies(all_data)
    train_matrix = all_data[:ntrain]
    return {"all_data": all_data, "X_train": train_matrix.values, "y_train": y_train}
