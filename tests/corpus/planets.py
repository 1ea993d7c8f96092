"""Python Data Science Handbook, "Aggregation and Grouping": the exoplanets table.

Source: Jake VanderPlas, *Python Data Science Handbook*, https://github.com/jakevdp/PythonDataScienceHandbook,
``notebooks/03.08-Aggregation-and-Grouping.ipynb`` (the Planets data, GroupBy aggregate / filter / transform /
apply, and the discovery-method-by-decade table).
Licence: the book's code is MIT; its text is CC-BY-NC-ND and is not reproduced here.

Changes made to run it here:

* data: generated with the columns of seaborn's ``planets`` data set (method, number, orbital_period, mass,
  distance, year), 300 rows with missing values as in the original (1,035 rows, from exoplanets.org);
* the book shows ``filter``, ``transform`` and ``apply`` on a toy frame; here they run on the planets table
  (grouped by method), with the book's functions (standard deviation filter, centring, normalising by a sum);
* the outputs are the tables the book prints.
"""

import numpy as np
import pandas as pd

OPERATIONS = ("dropna().describe()", "groupby()[col].median()", "groupby().aggregate([min, median, max])",
              "groupby().filter(func)", "groupby().transform(lambda)", "groupby().apply(func)",
              "integer arithmetic + astype(str) + string concatenation", "Series.name",
              "groupby([col, Series]).sum().unstack().fillna(0)")
READ = {"planets": {}}
METHODS = ["Radial Velocity", "Transit", "Imaging", "Microlensing", "Astrometry", "Eclipse Timing Variations"]
# ``dropna()`` is a row filter: a cell made missing (or filled) moves its row out of (or into) the described
# rows, like a key moving a row between groups; every column decides that membership for ``described``
MEMBERSHIP = {"*": ("planets.method",), "by_decade": ("planets.method", "planets.year"),
              "described": ("planets.number", "planets.orbital_period", "planets.mass", "planets.distance",
                            "planets.year")}


def make_data(rng, n=300):
    method = rng.choice(METHODS, n, p=[0.5, 0.3, 0.08, 0.07, 0.02, 0.03])
    mass = rng.lognormal(0, 1, n).round(3)
    mass[rng.random(n) < 0.4] = np.nan
    period = rng.lognormal(5, 2, n).round(2)
    period[rng.random(n) < 0.05] = np.nan
    dist = rng.lognormal(3.5, 1, n).round(2)
    dist[rng.random(n) < 0.2] = np.nan
    return {"planets": pd.DataFrame({"method": method, "number": rng.integers(1, 7, n), "orbital_period": period,
                                     "mass": mass, "distance": dist, "year": rng.integers(1989, 2015, n)})}


def filter_func(x):
    return x["orbital_period"].std() > 1000


def norm_by_number(x):
    x = x.copy()
    x["number"] /= x["number"].sum()
    return x


def run(src):
    planets = src["planets"]
    described = planets.dropna().describe()
    median_period = planets.groupby("method")["orbital_period"].median()
    num = planets[["method", "number", "orbital_period", "year"]]
    aggregated = num.groupby("method").aggregate(["min", "median", "max"])
    filtered = num.groupby("method").filter(filter_func)
    centred = num.groupby("method")[["orbital_period", "year"]].transform(lambda x: x - x.mean())
    normed = num.groupby("method", group_keys=False)[["number", "year"]].apply(norm_by_number)
    decade = 10 * (planets["year"] // 10)
    decade = decade.astype(str) + "s"
    decade.name = "decade"
    by_decade = planets.groupby(["method", decade])["number"].sum().unstack().fillna(0)
    return {"described": described, "median_period": median_period, "aggregated": aggregated,
            "filtered": filtered, "centred": centred, "normed": normed, "by_decade": by_decade}
