"""Python Data Science Handbook, "Combining Datasets: Merge and Join": US states population density.

Source: Jake VanderPlas, *Python Data Science Handbook*, https://github.com/jakevdp/PythonDataScienceHandbook,
``notebooks/03.07-Merge-and-Join.ipynb`` ("Example: US States Data").
Licence: the book's code is MIT; its text is CC-BY-NC-ND and is not reproduced here.

Changes made to run it here:

* data: generated with the columns of ``state-population.csv`` (state/region, ages, year, population),
  ``state-areas.csv`` (state, area (sq. mi)) and ``state-abbrevs.csv`` (state, abbreviation), for 20 states
  plus PR and USA (no abbreviation row, as in the original), years 2005-2012, missing populations for PR in
  early years, as in the original files (from the US Census Bureau, public domain);
* the outputs are the merged table, the 2010 table and the sorted density Series.
"""

import numpy as np
import pandas as pd

OPERATIONS = ("merge(how='outer', left_on/right_on)", "drop column", "loc masked assignment (2)",
              "merge(how='left')", "dropna(inplace=True)", "query", "set_index(inplace=True)",
              "Series division", "sort_values(inplace=True)")
READ = {"pop": {}, "areas": {}, "abbrevs": {}}
STATES = ["Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware",
          "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky",
          "Louisiana", "Maine", "Maryland"]
ABBR = ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
        "LA", "ME", "MD"]
# keys that reorder positional outputs (the outer merge sorts its keys): their influence is not counted
ORDER = {"*": ("pop.state/region", "abbrevs.abbreviation", "abbrevs.state", "areas.state")}
DEPENDS = {"final": ("merged",), "data2010": ("final",), "density": ("data2010",)}


def make_data(rng):
    rows = []
    for ab in ABBR + ["PR", "USA"]:
        for year in range(2005, 2013):
            for ages in ("under18", "total"):
                pop = float(rng.integers(500_000, 30_000_000))
                if ab == "PR" and year < 2008:
                    pop = np.nan
                rows.append((ab, ages, year, pop))
    pop = pd.DataFrame(rows, columns=["state/region", "ages", "year", "population"])
    pop = pop.iloc[rng.permutation(len(pop))].reset_index(drop=True)
    areas = pd.DataFrame({"state": STATES + ["Puerto Rico"],
                          "area (sq. mi)": rng.integers(1_000, 600_000, len(STATES) + 1)})
    abbrevs = pd.DataFrame({"state": STATES, "abbreviation": ABBR})
    return {"pop": pop, "areas": areas, "abbrevs": abbrevs}


def run(src):
    pop, areas, abbrevs = src["pop"], src["areas"], src["abbrevs"]
    merged = pd.merge(pop, abbrevs, how="outer", left_on="state/region", right_on="abbreviation")
    merged = merged.drop("abbreviation", axis=1)
    merged.loc[merged["state/region"] == "PR", "state"] = "Puerto Rico"
    merged.loc[merged["state/region"] == "USA", "state"] = "United States"
    final = pd.merge(merged, areas, on="state", how="left")
    final.dropna(inplace=True)
    data2010 = final.query("year == 2010 & ages == 'total'")
    data2010.set_index("state", inplace=True)
    density = data2010["population"] / data2010["area (sq. mi)"]
    density.sort_values(ascending=False, inplace=True)
    return {"merged": merged, "final": final, "data2010": data2010, "density": density}
