"""Python Data Science Handbook, "Pivot Tables": the US births example (CDC birth counts by date and sex).

Source: Jake VanderPlas, *Python Data Science Handbook*, https://github.com/jakevdp/PythonDataScienceHandbook,
``notebooks/03.09-Pivot-Tables.ipynb`` ("Example: Birthrate Data").
Licence: the book's code is MIT; its text is CC-BY-NC-ND and is not reproduced here.

Changes made to run it here:

* data: generated with the columns of ``births.csv`` (year, month, day, gender, births), 1969-1988, both
  genders, a few days recorded as ``99`` or missing, with tiny counts (the outliers the sigma-clipping
  removes, as in the original file), about 1,500 rows (the original has 15,547, from the CDC, public domain);
* the plotting calls are left out; the outputs are the tables the plots were drawn from.
"""

import numpy as np
import pandas as pd

OPERATIONS = ("integer arithmetic column", "pivot_table (sum, by decade x gender)", "np.percentile on a Series",
              "query with @ locals", "astype", "pd.to_datetime from arithmetic", "index assignment",
              "index.dayofweek as a column", "pivot_table (mean)", "pivot_table keyed by index arrays")
READ = {"births": {}}
MEMBERSHIP = {"by_decade": ("births.year", "births.gender"),
              "by_weekday": ("births.year", "births.month", "births.day"),
              "births_by_date": ("births.month", "births.day")}


def make_data(rng):
    days = pd.date_range("1969-01-01", "1988-12-31", freq="5D")
    n = len(days)
    rows = []
    for g in ("F", "M"):
        day = days.day.to_numpy().astype(float)
        odd = rng.random(n) < 0.02
        day[odd] = np.where(rng.random(odd.sum()) < 0.5, 99, np.nan)
        births = rng.normal(4800 if g == "F" else 5000, 300, n).round()
        births[odd] = rng.integers(1, 40, odd.sum())  # the odd days carry tiny counts, as in the CDC file
        rows.append(pd.DataFrame({"year": days.year, "month": days.month, "day": day, "gender": g,
                                  "births": births.astype(int)}))
    return {"births": pd.concat(rows, ignore_index=True)}


def run(src):
    births = src["births"]
    births["decade"] = 10 * (births["year"] // 10)
    by_decade = births.pivot_table("births", index="decade", columns="gender", aggfunc="sum")

    quartiles = np.percentile(births["births"], [25, 50, 75])
    mu = quartiles[1]
    sig = 0.74 * (quartiles[2] - quartiles[0])
    births = births.query("(births > @mu - 5 * @sig) & (births < @mu + 5 * @sig)")
    births["day"] = births["day"].astype(int)
    births.index = pd.to_datetime(10000 * births.year + 100 * births.month + births.day, format="%Y%m%d")
    births["dayofweek"] = births.index.dayofweek
    by_weekday = births.pivot_table("births", index="dayofweek", columns="decade", aggfunc="mean")
    births_by_date = births.pivot_table("births", [births.index.month, births.index.day])
    return {"by_decade": by_decade, "births": births, "by_weekday": by_weekday, "births_by_date": births_by_date}
