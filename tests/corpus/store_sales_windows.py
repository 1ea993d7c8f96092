"""pandas user guide idioms for time-series feature engineering, applied to a daily store-sales table.

Source: pandas documentation, https://github.com/pandas-dev/pandas, ``doc/source/user_guide/``:
``groupby.rst`` (transformation: standardising within groups, filling with the group mean, group-wise
``cumsum``/``shift``/``rolling``/``expanding``, ``cumcount``, ``resample`` per group), ``window.rst`` (time-based
``rolling("7D")``, ``ewm``) and ``timeseries.rst`` (``resample``, ``shift``, ``asfreq``, ``.dt`` accessors).
Licence: BSD-3-Clause (pandas).

The user guide shows each idiom on a toy frame; here they are chained the way a demand-forecasting feature
table is built (the layout of the Kaggle "Store Item Demand Forecasting" data: date, store, item, sales).

Changes made to run it here:

* data: generated, 3 stores x 2 items x 60 days = 360 rows, a few missing sales, rows shuffled;
* the outputs are the feature table, a monthly per-store table and an ``asfreq``/``pct_change`` view.
"""

import numpy as np
import pandas as pd

OPERATIONS = ("pd.to_datetime", "sort_values", ".dt.dayofweek/.dt.month/.dt.is_month_end",
              "groupby().transform(lambda: fillna(mean))", "groupby().transform(lambda: standardise)",
              "groupby().shift(1, 7)", "groupby().diff()", "groupby().cumsum()", "groupby().cumcount()",
              "groupby().rolling(7).mean()", "groupby().expanding().max()", "ewm(span=7).mean()",
              "rolling('7D', on=date)", "np.log1p on a Series", "set_index + groupby().resample('MS').sum()",
              "pivot", "asfreq", "pct_change")
READ = {"sales": {}}
# sort keys of the positional feature table (sort_values + reset_index)
ORDER = {"*": ("sales.store", "sales.item", "sales.date")}


def make_data(rng):
    days = pd.date_range("2017-01-01", periods=60, freq="D")
    rows = []
    for store in (1, 2, 3):
        for item in (1, 2):
            level = rng.uniform(20, 60)
            s = rng.poisson(level * (1 + 0.3 * (days.dayofweek >= 5))).astype(float)
            s[rng.random(len(days)) < 0.04] = np.nan
            rows.append(pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "store": store, "item": item,
                                      "sales": s}))
    df = pd.concat(rows, ignore_index=True)
    return {"sales": df.iloc[rng.permutation(len(df))].reset_index(drop=True)}


def run(src):
    df = src["sales"]
    df["date"] = pd.to_datetime(df["date"])
    df = df.sort_values(["store", "item", "date"]).reset_index(drop=True)
    df["dayofweek"] = df["date"].dt.dayofweek
    df["month"] = df["date"].dt.month
    df["is_month_end"] = df["date"].dt.is_month_end
    g = df.groupby(["store", "item"])
    df["sales"] = g["sales"].transform(lambda x: x.fillna(x.mean()))
    df["sales_z"] = g["sales"].transform(lambda x: (x - x.mean()) / x.std())
    df["lag_1"] = g["sales"].shift(1)
    df["lag_7"] = g["sales"].shift(7)
    df["diff_1"] = g["sales"].diff()
    df["cum_sales"] = g["sales"].cumsum()
    df["day_number"] = g.cumcount()
    df["roll_mean_7"] = g["sales"].rolling(7).mean().reset_index(level=[0, 1], drop=True)
    df["expanding_max"] = g["sales"].expanding().max().reset_index(level=[0, 1], drop=True)
    df["ewm_7"] = g["sales"].transform(lambda x: x.ewm(span=7).mean())
    df["log_sales"] = np.log1p(df["sales"])
    by_time = df[(df["store"] == 1) & (df["item"] == 1)].rolling("7D", on="date")["sales"].sum()

    monthly = df.set_index("date").groupby("store")["sales"].resample("MS").sum()
    wide = df[df["item"] == 1].pivot(index="date", columns="store", values="sales")
    weekly = wide.asfreq("7D")
    growth = weekly.pct_change()
    return {"features": df, "by_time": by_time, "monthly": monthly, "wide": wide, "growth": growth}
