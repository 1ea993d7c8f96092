"""pandas documentation, "Comparison with SQL": the ``tips`` queries (WHERE, GROUP BY, JOIN, top-N, UPDATE).

Source: https://github.com/pandas-dev/pandas, ``doc/source/getting_started/comparison/comparison_with_sql.rst``
(and ``includes/`` it pulls in).
Licence: BSD-3-Clause (pandas).

Changes made to run it here:

* data: generated with the columns of the ``tips`` data set the page reads (total_bill, tip, sex, smoker, day,
  time, size), 200 rows (the original has 244; it ships with seaborn, BSD-3); the page's two toy frames for
  the joins are ``df1``/``df2`` CSV files of the same shape (key, value), 8 rows each;
* the outputs are the results of the page's queries, in its order.
"""

import numpy as np
import pandas as pd

OPERATIONS = ("column selection", "assign(col / col)", "filter ==, &, |", "isna / notna filters",
              "groupby().size()", "groupby().agg(dict)", "groupby([a, b]).agg(dict of lists)",
              "merge inner / left / right / outer", "concat", "drop_duplicates", "nlargest().tail()",
              "sort_values + groupby().cumcount() + query", "groupby().rank(method='first')",
              "loc masked update (*= 2)", "drop rows by index")
READ = {"tips": {}, "df1": {}, "df2": {}}
MEMBERSHIP = {"by_sex": ("tips.sex",), "by_day": ("tips.day",), "by_smoker_day": ("tips.smoker", "tips.day")}
# keys that decide which rows a join or a top-N keeps and in which order (the joins' RangeIndex is positional)
ORDER = {"*": ("df1.key", "df2.key"), "top_per_day": ("tips.day", "tips.total_bill"),
         "rank_per_day": ("tips.sex", "tips.tip"), "largest": ("tips.tip",)}


def make_data(rng, n=200):
    bill = rng.gamma(4, 5, n).round(2)
    tips = pd.DataFrame({"total_bill": bill, "tip": (bill * rng.uniform(0.08, 0.25, n)).round(2),
                         "sex": rng.choice(["Female", "Male"], n), "smoker": rng.choice(["No", "Yes"], n),
                         "day": rng.choice(["Thur", "Fri", "Sat", "Sun"], n),
                         "time": rng.choice(["Dinner", "Lunch"], n), "size": rng.integers(1, 7, n)})
    df1 = pd.DataFrame({"key": list("ABCDABCD"), "value": rng.standard_normal(8).round(6)})
    df2 = pd.DataFrame({"key": list("BDDEBDDE"), "value": rng.standard_normal(8).round(6)})
    df2.loc[rng.integers(8), "value"] = np.nan
    return {"tips": tips, "df1": df1, "df2": df2}


def run(src):
    tips, df1, df2 = src["tips"], src["df1"], src["df2"]
    selected = tips[["total_bill", "tip", "smoker", "time"]]
    with_pct = tips.assign(tip_rate=tips["tip"] / tips["total_bill"])
    dinner = tips[tips["time"] == "Dinner"]
    big_dinner = tips[(tips["time"] == "Dinner") & (tips["tip"] > 5.00)]
    party = tips[(tips["size"] >= 5) | (tips["total_bill"] > 45)]
    missing = df2[df2["value"].isna()]
    present = df2[df2["value"].notna()]
    by_sex = tips.groupby("sex").size()
    by_day = tips.groupby("day").agg({"tip": "mean", "day": "size"})
    by_smoker_day = tips.groupby(["smoker", "day"]).agg({"tip": ["size", "mean"]})
    inner = pd.merge(df1, df2, on="key")
    left = pd.merge(df1, df2, on="key", how="left")
    right = pd.merge(df1, df2, on="key", how="right")
    outer = pd.merge(df1, df2, on="key", how="outer")
    union = pd.concat([df1, df2])
    distinct = pd.concat([df1, df2]).drop_duplicates()
    largest = tips.nlargest(10 + 5, columns="tip").tail(10)
    top_per_day = (tips.assign(rn=tips.sort_values(["total_bill"], ascending=False)
                               .groupby(["day"]).cumcount() + 1)
                   .query("rn < 3").sort_values(["day", "rn"]))
    rank_per_day = (tips.assign(rnk=tips.groupby(["sex"])["tip"].rank(method="first"))
                    .query("rnk < 3").sort_values(["sex", "rnk"]))
    tips.loc[tips["tip"] < 2, "tip"] *= 2
    remaining = tips.drop(tips[tips["tip"] > 9].index)
    return {"selected": selected, "with_pct": with_pct, "dinner": dinner, "big_dinner": big_dinner,
            "party": party, "missing": missing, "present": present, "by_sex": by_sex, "by_day": by_day,
            "by_smoker_day": by_smoker_day, "inner": inner, "left": left, "right": right, "outer": outer,
            "union": union, "distinct": distinct, "largest": largest, "top_per_day": top_per_day,
            "rank_per_day": rank_per_day, "updated": tips, "remaining": remaining}
