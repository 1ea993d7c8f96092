"""scikit-learn examples gallery, "Lagged features for time series forecasting" (hourly bike sharing demand).

Source: https://github.com/scikit-learn/scikit-learn,
``examples/applications/plot_time_series_lagged_features.py``
Licence: BSD-3-Clause (scikit-learn).

Changes made to run it here:

* data: generated with the columns of OpenML's ``Bike_Sharing_Demand`` (data id 42712) that the example
  reads, 24 x 28 = 672 hourly rows; ``fetch_openml`` needs the network;
* the example builds its lagged features with polars (``pl.col("count").shift(...)``, ``rolling_mean``,
  ``rolling_std``, ...); they are written here with the pandas equivalents (``shift``, ``rolling``), one feature
  for one feature, and a ``DataFrame`` built from a dict of Series instead of ``df.select``;
* the gradient boosting models are replaced by ``Ridge`` on the same matrix (the example's lineage question
  is the feature matrix); the outputs are the lagged feature frame, the training matrix and the predictions.
"""

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge

OPERATIONS = ("shift(1, 2, 3, 24, 25, 168, 169)", "shift(1).rolling(24).mean()/std()",
              "shift(1).rolling(168).mean()/std()", "shift(1).rolling(24).min()/max()",
              "DataFrame from a dict of Series", "dropna", "positional train/test split (iloc)", "to_numpy",
              "Ridge")
READ = {"bike_sharing": {}}
ORACLE = {"max_sources": 8, "max_repl": 3}
DEPENDS = {"X_train": ("lagged",), "predictions": ("lagged",)}


def make_data(rng, days=28):
    t = pd.date_range("2011-01-01", periods=24 * days, freq="h")
    hour = t.hour.to_numpy()
    demand = 30 + 180 * np.exp(-((hour - 8) ** 2) / 3) + 220 * np.exp(-((hour - 17.5) ** 2) / 4)
    return {"bike_sharing": pd.DataFrame({
        "season": "winter", "year": 0, "month": t.month, "hour": hour, "weekday": (t.dayofweek.to_numpy() + 1) % 7,
        "temp": rng.normal(8, 4, len(t)).round(2), "count": rng.poisson(demand)})}


def run(src):
    df = src["bike_sharing"]
    count = df["count"]
    lagged = pd.DataFrame({
        "count": count,
        "lagged_count_1h": count.shift(1),
        "lagged_count_2h": count.shift(2),
        "lagged_count_3h": count.shift(3),
        "lagged_count_1d": count.shift(24),
        "lagged_count_1d_1h": count.shift(24 + 1),
        "lagged_count_7d": count.shift(7 * 24),
        "lagged_count_7d_1h": count.shift(7 * 24 + 1),
        "lagged_mean_24h": count.shift(1).rolling(24).mean(),
        "lagged_max_24h": count.shift(1).rolling(24).max(),
        "lagged_min_24h": count.shift(1).rolling(24).min(),
        "lagged_mean_7d": count.shift(1).rolling(7 * 24).mean(),
        "lagged_max_7d": count.shift(1).rolling(7 * 24).max(),
        "lagged_min_7d": count.shift(1).rolling(7 * 24).min(),
    })
    lagged = lagged.dropna()
    X = lagged.drop("count", axis="columns")
    y = lagged["count"]
    cut = int(len(X) * 0.75)
    X_train, X_test = X.iloc[:cut], X.iloc[cut:]
    y_train = y.iloc[:cut]
    model = Ridge(alpha=1.0).fit(X_train.to_numpy(), y_train.to_numpy())
    return {"lagged": lagged, "X_train": X_train.to_numpy(), "predictions": model.predict(X_test.to_numpy())}
