"""Python Data Science Handbook, "Working with Time Series": the Seattle Fremont Bridge bicycle counts.

Source: Jake VanderPlas, *Python Data Science Handbook*, https://github.com/jakevdp/PythonDataScienceHandbook,
``notebooks/03.11-Working-with-Time-Series.ipynb`` ("Example: Visualizing Seattle Bicycle Counts").
Licence: the book's code is MIT; its text is CC-BY-NC-ND and is not reproduced here.

Changes made to run it here:

* data: generated hourly counts with the original file's layout (a ``Date`` index column parsed as dates, then
  the two sidewalk counts), 4 weeks = 672 rows; the original is the City of Seattle's open data (public
  domain), about 100,000 rows;
* the column names follow the book's first edition (``West``, ``East``, ``Total = West + East`` by ``eval``);
  the plotting calls are left out; the outputs are the tables the plots were drawn from.
"""

import numpy as np
import pandas as pd

OPERATIONS = ("read_csv(index_col='Date', parse_dates=True)", "rename columns", "eval", "resample('W').sum()",
              "resample('D').sum()", "rolling(30, center=True).sum()", "groupby(index.time).mean()",
              "groupby(index.dayofweek).mean()", "np.where on index.weekday", "groupby([array, index.time])")
READ = {"fremont": {"index_col": "Date", "parse_dates": True}}
MEMBERSHIP = {k: ("fremont.Date",) for k in ("weekly", "daily", "smooth", "by_time", "by_weekday",
                                             "by_time_weekend")}


def make_data(rng):
    idx = pd.date_range("2012-10-03", periods=24 * 28, freq="h", name="Date")
    hour = idx.hour.to_numpy()
    base = 20 + 80 * np.exp(-((hour - 8) ** 2) / 4) + 60 * np.exp(-((hour - 17) ** 2) / 4)
    weekend = idx.dayofweek.to_numpy() >= 5
    base = np.where(weekend, base * 0.5, base)
    df = pd.DataFrame({"Fremont Bridge West Sidewalk": rng.poisson(base).astype(float),
                       "Fremont Bridge East Sidewalk": rng.poisson(base * 0.8).astype(float)}, index=idx)
    df.iloc[rng.choice(len(df), 4, replace=False), 0] = np.nan
    return {"fremont": df}


def run(src):
    data = src["fremont"]
    data.columns = ["West", "East"]
    data["Total"] = data.eval("West + East")
    weekly = data.resample("W").sum()
    daily = data.resample("D").sum()
    smooth = daily.rolling(7, center=True).sum()
    by_time = data.groupby(data.index.time).mean()
    by_weekday = data.groupby(data.index.dayofweek).mean()
    by_weekday.index = ["Mon", "Tues", "Wed", "Thurs", "Fri", "Sat", "Sun"]
    weekend = np.where(data.index.weekday < 5, "Weekday", "Weekend")
    by_time_weekend = data.groupby([weekend, data.index.time]).mean()
    return {"data": data, "weekly": weekly, "daily": daily, "smooth": smooth, "by_time": by_time,
            "by_weekday": by_weekday, "by_time_weekend": by_time_weekend}
