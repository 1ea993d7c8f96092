"""A corpus of public pandas / scikit-learn pipelines, run under whence with a perturbation oracle.

Each module holds one pipeline: its source and licence, the changes made to run it, ``make_data`` (the source
tables, generated with a seeded generator), ``READ`` (the ``read_csv`` arguments) and ``run`` (the pipeline).
:mod:`corpus.harness` runs them; ``tests/test_corpus.py`` checks them; ``benchmarks/bench_corpus.py`` times them.
"""

PIPELINES = (
    "healthcare",
    "compas",
    "adult_simple",
    "births",
    "bicycles",
    "us_states",
    "planets",
    "titanic_pivot",
    "sklearn_mixed_types",
    "bike_sharing_cyclical",
    "bike_lagged_features",
    "bike_sharing_kaggle",
    "store_sales_windows",
    "titanic_kaggle",
    "house_prices",
    "ten_minutes",
    "sql_comparison",
)
