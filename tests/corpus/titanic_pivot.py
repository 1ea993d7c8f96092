"""Python Data Science Handbook, "Pivot Tables": survival on the Titanic by sex, class, age and fare.

Source: Jake VanderPlas, *Python Data Science Handbook*, https://github.com/jakevdp/PythonDataScienceHandbook,
``notebooks/03.09-Pivot-Tables.ipynb`` (the ``titanic`` examples).
Licence: the book's code is MIT; its text is CC-BY-NC-ND and is not reproduced here.

Changes made to run it here:

* data: generated with the columns of seaborn's ``titanic`` data set (survived, pclass, sex, age, sibsp,
  parch, fare, embarked, class, who, adult_male, deck, embark_town, alive, alone), 300 rows with missing ages,
  decks and embarkation ports as in the original (891 rows);
* ``aggfunc={'survived': sum, ...}`` is spelled ``'sum'`` (pandas 3 deprecates the builtin);
  ``observed=False`` is passed where the book relies on the old default for categorical keys.
"""

import numpy as np
import pandas as pd

OPERATIONS = ("groupby()[[col]].mean()", "groupby([a, b])[col].aggregate('mean').unstack()", "pivot_table",
              "pd.cut", "pivot_table keyed by a Series", "pd.qcut", "pivot_table with two column keys",
              "pivot_table(aggfunc=dict)", "pivot_table(margins=True)")
READ = {"titanic": {}}
MEMBERSHIP = {"by_sex": ("titanic.sex",), "by_sex_class": ("titanic.sex", "titanic.class"),
              "pivot": ("titanic.sex", "titanic.class"), "agg": ("titanic.sex", "titanic.class"),
              "margins": ("titanic.sex", "titanic.class"),
              "by_age": ("titanic.sex", "titanic.age", "titanic.class"),
              "by_age_fare": ("titanic.sex", "titanic.age", "titanic.fare", "titanic.class")}


def make_data(rng, n=300):
    pclass = rng.choice([1, 2, 3], n, p=[0.25, 0.2, 0.55])
    sex = rng.choice(["male", "female"], n, p=[0.65, 0.35])
    age = rng.uniform(0.5, 75, n).round(1)
    age[rng.random(n) < 0.2] = np.nan
    fare = np.exp(rng.normal(3, 1, n)).round(4)
    survived = (rng.random(n) < np.where(sex == "female", 0.7, 0.2)).astype(int)
    embarked = rng.choice(["S", "C", "Q", ""], n, p=[0.7, 0.18, 0.1, 0.02])
    town = pd.Series(embarked).map({"S": "Southampton", "C": "Cherbourg", "Q": "Queenstown", "": ""})
    deck = rng.choice(["A", "B", "C", "D", "E", ""], n, p=[0.05, 0.05, 0.07, 0.05, 0.05, 0.73])
    sibsp = rng.integers(0, 4, n)
    parch = rng.integers(0, 3, n)
    who = np.where(age < 16, "child", np.where(sex == "male", "man", "woman"))
    df = pd.DataFrame({"survived": survived, "pclass": pclass, "sex": sex, "age": age, "sibsp": sibsp,
                       "parch": parch, "fare": fare, "embarked": embarked,
                       "class": pd.Series(pclass).map({1: "First", 2: "Second", 3: "Third"}), "who": who,
                       "adult_male": who == "man", "deck": deck, "embark_town": town,
                       "alive": np.where(survived == 1, "yes", "no"), "alone": (sibsp + parch) == 0})
    return {"titanic": df.replace("", np.nan)}


def run(src):
    titanic = src["titanic"]
    by_sex = titanic.groupby("sex")[["survived"]].mean()
    by_sex_class = titanic.groupby(["sex", "class"])["survived"].aggregate("mean").unstack()
    pivot = titanic.pivot_table("survived", index="sex", columns="class")
    age = pd.cut(titanic["age"], [0, 18, 80])
    by_age = titanic.pivot_table("survived", ["sex", age], "class", observed=False)
    fare = pd.qcut(titanic["fare"], 2)
    by_age_fare = titanic.pivot_table("survived", ["sex", age], [fare, "class"], observed=False)
    agg = titanic.pivot_table(index="sex", columns="class", aggfunc={"survived": "sum", "fare": "mean"})
    margins = titanic.pivot_table("survived", index="sex", columns="class", margins=True)
    return {"by_sex": by_sex, "by_sex_class": by_sex_class, "pivot": pivot, "by_age": by_age,
            "by_age_fare": by_age_fare, "agg": agg, "margins": margins}
