"""scikit-learn examples gallery, "Time-related feature engineering" (hourly bike sharing demand).

Source: https://github.com/scikit-learn/scikit-learn,
``examples/applications/plot_cyclical_feature_engineering.py``
Licence: BSD-3-Clause (scikit-learn).

Changes made to run it here:

* data: generated with the columns of OpenML's ``Bike_Sharing_Demand`` (data id 42712: season, year, month,
  hour, holiday, weekday, workingday, weather, temp, feel_temp, humidity, windspeed, count), 24 x 21 = 504
  hourly rows, a handful of ``heavy_rain`` hours as in the original; ``fetch_openml`` needs the network;
* from the example's models: the one-hot encoded time features with ``RidgeCV`` and the sine / cosine
  ``FunctionTransformer`` features; the spline, kernel and gradient boosting variants and the cross-validated
  evaluation are left out; one ``TimeSeriesSplit`` fold is fitted instead of ``cross_validate``;
* the outputs are the normalised target, the one-hot and the cyclic feature matrices and the predictions.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder

OPERATIONS = ("Series.replace", "division by Series.max()", "drop column", "astype('category')",
              "ColumnTransformer(OneHotEncoder, MinMaxScaler remainder)",
              "FunctionTransformer(np.sin / np.cos) on tracked frames", "TimeSeriesSplit", "RidgeCV")
READ = {"bike_sharing": {}}
ORACLE = {"max_sources": 6, "max_repl": 2}  # each run fits RidgeCV and two ColumnTransformers


def make_data(rng, days=21):
    t = pd.date_range("2011-03-01", periods=24 * days, freq="h")
    n = len(t)
    weather = rng.choice(["clear", "misty", "rain", "heavy_rain"], n, p=[0.6, 0.27, 0.125, 0.005])
    hour = t.hour.to_numpy()
    demand = 40 + 200 * np.exp(-((hour - 8) ** 2) / 3) + 250 * np.exp(-((hour - 17.5) ** 2) / 4)
    weekday = t.dayofweek.to_numpy()
    count = rng.poisson(np.where(weekday >= 5, demand * 0.6, demand) * np.where(weather == "rain", 0.5, 1.0))
    return {"bike_sharing": pd.DataFrame({
        "season": "spring", "year": t.year - 2011, "month": t.month, "hour": hour,
        "holiday": rng.random(n) < 0.02, "weekday": (weekday + 1) % 7, "workingday": weekday < 5,
        "weather": weather, "temp": rng.normal(15, 5, n).round(2), "feel_temp": rng.normal(17, 6, n).round(3),
        "humidity": rng.uniform(0.2, 1.0, n).round(2), "windspeed": rng.gamma(2, 6, n).round(4),
        "count": count})}


def sin_transformer(period):
    return FunctionTransformer(lambda x: np.sin(x / period * 2 * np.pi))


def cos_transformer(period):
    return FunctionTransformer(lambda x: np.cos(x / period * 2 * np.pi))


def run(src):
    df = src["bike_sharing"]
    df["weather"] = df["weather"].replace(to_replace="heavy_rain", value="rain")
    y = df["count"] / df["count"].max()
    X = df.drop("count", axis="columns")
    X["weather"] = X["weather"].astype("category")

    ts_cv = TimeSeriesSplit(n_splits=3, gap=24, max_train_size=240, test_size=72)
    train, test = list(ts_cv.split(X, y))[-1]

    categorical_columns = ["weather", "season", "holiday", "workingday"]
    categories = [["clear", "misty", "rain"], ["spring", "summer", "fall", "winter"], [False, True], [False, True]]
    one_hot_encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, categories=categories)
    alphas = np.logspace(-6, 6, 25)
    one_hot_linear_pipeline = make_pipeline(
        ColumnTransformer(transformers=[("categorical", one_hot_encoder, categorical_columns),
                                        ("one_hot_time", OneHotEncoder(handle_unknown="ignore",
                                                                       sparse_output=False),
                                         ["hour", "weekday", "month"])],
                          remainder=MinMaxScaler()),
        RidgeCV(alphas=alphas))
    one_hot_linear_pipeline.fit(X.iloc[train], y.iloc[train])
    predictions = one_hot_linear_pipeline.predict(X.iloc[test])
    one_hot_features = one_hot_linear_pipeline[0].transform(X.iloc[test])

    cyclic_cossin_transformer = ColumnTransformer(transformers=[
        ("categorical", one_hot_encoder, categorical_columns),
        ("month_sin", sin_transformer(12), ["month"]), ("month_cos", cos_transformer(12), ["month"]),
        ("weekday_sin", sin_transformer(7), ["weekday"]), ("weekday_cos", cos_transformer(7), ["weekday"]),
        ("hour_sin", sin_transformer(24), ["hour"]), ("hour_cos", cos_transformer(24), ["hour"]),
    ], remainder=MinMaxScaler())
    cyclic = cyclic_cossin_transformer.fit_transform(X.iloc[train])
    return {"y": y, "one_hot_features": one_hot_features, "predictions": predictions, "cyclic": cyclic}
