"""Kaggle tutorial "EDA & Ensemble Model (Top 10 Percentile)" (Vivek Srinivasan), Bike Sharing Demand.

Source: https://www.kaggle.com/code/viveksrinivasan/eda-ensemble-model-top-10-percentile (Kaggle notebook;
copies on GitHub as ``eda-ensemble-model-top-10-percentile.ipynb``).
Licence: Apache-2.0 (Kaggle's licence for published notebooks).  Rewritten here step by step.

Changes made to run it here:

* data: generated with the columns of the competition's ``train.csv`` (datetime as text, season, holiday,
  workingday, weather, temp, atemp, humidity, windspeed, casual, registered, count), 24 x 20 = 480 hourly
  rows, a few high-demand hours as outliers;
* the feature engineering of the EDA part is kept as written (``apply`` with lambdas splitting the datetime
  text, ``calendar`` names, ``map`` with dicts, ``astype("category")``, the 3-sigma outlier filter, the
  aggregates behind its plots, ``melt``); the plots and the ensemble models are left out; the modelling part's
  ``np.log1p`` of the target is kept;
* the outputs are the engineered frame, the frame without outliers, the aggregates and the log target.
"""

import calendar
from datetime import datetime

import numpy as np
import pandas as pd

OPERATIONS = ("Series.apply(lambda: str.split)", "apply(lambda: calendar.day_name[strptime(...).weekday()])",
              "map(dict)", "astype('category') in a loop", "drop column",
              "filter with np.abs(s - s.mean()) <= 3 * s.std()", "pd.DataFrame(groupby().mean()).reset_index()",
              "sort_values", "groupby([a, b], sort=True).mean()", "pd.melt", "np.log1p on a Series")
READ = {"bike_train": {}}
MEMBERSHIP = {"month_aggregated": ("bike_train.datetime",), "month_sorted": ("bike_train.datetime", "bike_train.count"),
              "hour_aggregated": ("bike_train.datetime", "bike_train.season"),
              "hour_transformed": ("bike_train.datetime",)}


def make_data(rng, days=20):
    t = pd.date_range("2011-01-01", periods=24 * days, freq="h") + pd.to_timedelta(
        np.repeat(np.arange(days) * 0, 24), unit="D")
    t = t[np.r_[0:24 * 10]].append(pd.date_range("2011-06-01", periods=24 * (days - 10), freq="h"))
    n = len(t)
    hour = t.hour.to_numpy()
    base = 20 + 150 * np.exp(-((hour - 8) ** 2) / 3) + 200 * np.exp(-((hour - 17.5) ** 2) / 4)
    casual = rng.poisson(base * 0.2)
    registered = rng.poisson(base * 0.8)
    spike = rng.random(n) < 0.01
    registered[spike] += 2000
    return {"bike_train": pd.DataFrame({
        "datetime": t.strftime("%Y-%m-%d %H:%M:%S"), "season": np.where(t.month <= 3, 1, 2),
        "holiday": (rng.random(n) < 0.03).astype(int), "workingday": (t.dayofweek < 5).astype(int),
        "weather": rng.choice([1, 2, 3, 4], n, p=[0.65, 0.25, 0.09, 0.01]), "temp": rng.normal(15, 6, n).round(2),
        "atemp": rng.normal(18, 7, n).round(3), "humidity": rng.integers(20, 100, n),
        "windspeed": rng.gamma(2, 6, n).round(4), "casual": casual, "registered": registered,
        "count": casual + registered})}


def run(src):
    daily_data = src["bike_train"]
    daily_data["date"] = daily_data.datetime.apply(lambda x: x.split()[0])
    daily_data["hour"] = daily_data.datetime.apply(lambda x: x.split()[1].split(":")[0])
    daily_data["weekday"] = daily_data.date.apply(
        lambda s: calendar.day_name[datetime.strptime(s, "%Y-%m-%d").weekday()])
    daily_data["month"] = daily_data.date.apply(lambda s: calendar.month_name[datetime.strptime(s, "%Y-%m-%d").month])
    daily_data["season"] = daily_data.season.map({1: "Spring", 2: "Summer", 3: "Fall", 4: "Winter"})
    daily_data["weather"] = daily_data.weather.map({1: " Clear + Few clouds + Partly cloudy + Partly cloudy",
                                                    2: " Mist + Cloudy, Mist + Broken clouds, Mist + Few clouds, Mist ",
                                                    3: " Light Snow, Light Rain + Thunderstorm + Scattered clouds, "
                                                       "Light Rain + Scattered clouds",
                                                    4: " Heavy Rain + Ice Pallets + Thunderstorm + Mist, Snow + Fog "})
    for var in ["hour", "weekday", "month", "season", "weather", "holiday", "workingday"]:
        daily_data[var] = daily_data[var].astype("category")
    daily_data = daily_data.drop(["datetime"], axis=1)

    without_outliers = daily_data[np.abs(daily_data["count"] - daily_data["count"].mean())
                                  <= (3 * daily_data["count"].std())]
    month_aggregated = pd.DataFrame(daily_data.groupby("month", observed=True)["count"].mean()).reset_index()
    month_sorted = month_aggregated.sort_values(by="count", ascending=False)
    hour_aggregated = pd.DataFrame(daily_data.groupby(["hour", "season"], sort=True, observed=True)["count"]
                                   .mean()).reset_index()
    hour_transformed = pd.melt(daily_data[["hour", "casual", "registered"]], id_vars=["hour"],
                               value_vars=["casual", "registered"])
    y_log = np.log1p(daily_data["count"])
    return {"daily_data": daily_data, "without_outliers": without_outliers, "month_aggregated": month_aggregated,
            "month_sorted": month_sorted, "hour_aggregated": hour_aggregated, "hour_transformed": hour_transformed,
            "y_log": y_log}
