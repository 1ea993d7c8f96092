"""pandas documentation, "10 minutes to pandas": the tour's operations on a dated frame and a grades table.

Source: https://github.com/pandas-dev/pandas, ``doc/source/user_guide/10min.rst``
Licence: BSD-3-Clause (pandas).

Changes made to run it here:

* data: the tour builds its frames in memory from ``np.random.randn`` and literals; here they are two CSV
  files of the same shape: ``dated`` (a date index column and columns A-D, 48 rows instead of 6, so that
  the time-series steps have something to aggregate) and ``grades`` (id, raw_grade, 36 rows);
* the tour's steps that need the frame it builds by hand (``df2`` with mixed types) or print only are left out;
  the outputs are the results of the remaining steps, in the tour's order.
"""

import numpy as np
import pandas as pd

OPERATIONS = ("read_csv(index_col=0, parse_dates)", "sort_index(axis=1)", "sort_values", "loc date slices",
              "boolean filter", "where (df[df > 0])", "column from a list with isin", "mean / mean(axis=1)",
              "Series.shift on a date index", "sub(axis='index')", "agg(lambda)", "transform(lambda)",
              "value_counts", "str.lower", "concat of slices", "groupby().sum()", "stack / unstack",
              "pivot_table", "resample('5D').sum()", "astype('category')", "rename_categories",
              "set_categories", "sort by category", "groupby(category, observed=False).size()")
READ = {"dated": {"index_col": 0, "parse_dates": True}, "grades": {}}
# the sign of A is a group key (counts, grouped and the frames built from it, pivot): moving a row across
# zero moves it into another group
MEMBERSHIP = {"*": ("grades.raw_grade",), "counts": ("dated.A",), "grouped": ("dated.A",),
              "stacked": ("dated.A",), "unstacked": ("dated.A",), "pivot": ("dated.A",)}
ORDER = {"*": ("dated.date",)}  # the date index: labels change, rows move


def make_data(rng):
    dates = pd.date_range("2013-01-01", periods=48, name="date")
    dated = pd.DataFrame(rng.standard_normal((48, 4)).round(6), index=dates, columns=list("ABCD"))
    grades = pd.DataFrame({"id": np.arange(1, 37), "raw_grade": rng.choice(list("abe"), 36, p=[0.4, 0.35, 0.25])})
    return {"dated": dated, "grades": grades}


def run(src):
    df, grades = src["dated"], src["grades"]
    dates = df.index
    sorted_cols = df.sort_index(axis=1, ascending=False)
    by_b = df.sort_values(by="B")
    window = df.loc["20130102":"20130104", ["A", "B"]]
    positive_a = df[df["A"] > 0]
    where_positive = df[df > 0]
    means = df.mean()
    row_means = df.mean(axis=1)
    s = pd.Series(np.arange(len(dates), dtype=float), index=dates).shift(2)
    shifted = df.sub(s, axis="index")
    agg = df.agg(lambda x: np.mean(x) * 5.6)
    scaled = df.transform(lambda x: x * 101.2)
    pieces = [df[:3], df[3:7], df[7:]]
    joined = pd.concat(pieces)
    signs = np.sign(df["A"]).astype(int)
    counts = signs.value_counts()
    frame = df.reset_index()
    frame["half"] = np.where(frame.index < len(frame) // 2, "first", "second")
    frame["sign"] = np.where(frame["A"] > 0, "pos", "neg")
    grouped = frame.groupby(["half", "sign"])[["C", "D"]].sum()
    stacked = grouped.stack()
    unstacked = stacked.unstack()
    pivot = frame.pivot_table(values="D", index=["half"], columns=["sign"], aggfunc="mean")
    resampled = df.resample("5D").sum()

    grades["grade"] = grades["raw_grade"].astype("category")
    grades["grade"] = grades["grade"].cat.rename_categories(["very good", "good", "very bad"])
    grades["grade"] = grades["grade"].cat.set_categories(["very bad", "bad", "medium", "good", "very good"])
    by_grade = grades.sort_values(by="grade")
    sizes = grades.groupby("grade", observed=False).size()
    upper = grades["raw_grade"].str.upper()
    return {"sorted_cols": sorted_cols, "by_b": by_b, "window": window, "positive_a": positive_a,
            "where_positive": where_positive, "means": means, "row_means": row_means, "shifted": shifted,
            "agg": agg, "scaled": scaled, "joined": joined, "counts": counts, "grouped": grouped,
            "stacked": stacked, "unstacked": unstacked, "pivot": pivot, "resampled": resampled,
            "by_grade": by_grade, "sizes": sizes, "upper": upper}
