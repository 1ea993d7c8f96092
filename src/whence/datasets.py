"""A synthetic credit-risk case study and an example ETL written in ordinary pandas.

:func:`credit_risk` *generates* three CSV files shaped like the public Home Credit Default Risk
tables (``application``, ``bureau`` and ``previous_application``): the same table layout, the
same column names and the same kinds of quirks (the ``DAYS_EMPLOYED`` anomaly ``365243``, a
few ``CODE_GENDER == "XNA"`` rows, heavily missing ``EXT_SOURCE_1``, ...).  Nothing is copied
from the real data: every value is drawn from simple distributions with
``numpy.random.default_rng(seed)``, and the default flag ``TARGET`` follows a logistic model of
the generated features, so a linear model has real but imperfect signal to find.

:func:`credit_risk_etl` is a typical feature pipeline over those tables (filter, aggregate,
left-join, derive, impute, one-hot, to numpy), written with a deliberately small set of
everyday pandas operations so that lineage tools can follow every cell.

>>> import tempfile
>>> import pandas as pd
>>> from whence.datasets import credit_risk, credit_risk_etl
>>> tmp = tempfile.TemporaryDirectory()
>>> files = credit_risk(n_applicants=200, seed=0, path=tmp.name)
>>> tables = {name: pd.read_csv(p) for name, p in files.paths.items()}
>>> X, y, names = credit_risk_etl(**tables)
>>> X.shape[1] == len(names), X.dtype, set(y.tolist()) <= {0, 1}
(True, dtype('float64'), True)
>>> tmp.cleanup()
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ANOMALY_DAYS_EMPLOYED", "COUNT_FEATURES", "FEATURES", "ONE_HOT_COLUMNS",
           "CreditRiskFiles", "credit_risk", "credit_risk_etl", "ADULT_COLUMNS", "AdultData", "adult",
           "adult_features"]

#: The Home Credit placeholder for "not employed" (pensioners, unemployed) in ``DAYS_EMPLOYED``.
ANOMALY_DAYS_EMPLOYED = 365243

#: Aggregated counts (and sums of amounts) that are imputed with 0 when an applicant has no rows.
COUNT_FEATURES = ["BUREAU_COUNT", "BUREAU_OVERDUE_SUM", "PREV_COUNT", "PREV_REFUSED_COUNT"]

#: The numeric feature columns of :func:`credit_risk_etl`, in order.  The one-hot columns of
#: :data:`ONE_HOT_COLUMNS` (``"NAME_CONTRACT_TYPE_Cash loans"``, ...) follow them, one per
#: category present in the input, in the order ``pandas.get_dummies`` creates them.
FEATURES = [
    "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "CNT_CHILDREN",
    "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3",
    "IS_MALE", "OWN_CAR", "DAYS_EMPLOYED_ANOM",
    "CREDIT_INCOME_RATIO", "ANNUITY_INCOME_RATIO", "AGE_YEARS", "EMPLOYED_YEARS",
    "BUREAU_COUNT", "BUREAU_DEBT_MEAN", "BUREAU_OVERDUE_SUM", "BUREAU_DAYS_CREDIT_MAX",
    "PREV_COUNT", "PREV_AMT_APPLICATION_MEAN", "PREV_REFUSED_COUNT",
]

#: Categorical columns one-hot encoded by :func:`credit_risk_etl`.
ONE_HOT_COLUMNS = ["NAME_CONTRACT_TYPE", "NAME_EDUCATION_TYPE"]

_FIRST_ID_CURR = 100001
_FIRST_ID_BUREAU = 5000001
_FIRST_ID_PREV = 1000001
_DEFAULT_RATE = 0.08
_SIGNAL = 0.55  # overall strength of the TARGET model; a scaled logistic regression reaches AUC ~0.74


@dataclass(frozen=True)
class CreditRiskFiles:
    """Where :func:`credit_risk` wrote its three CSV files.

    Attributes
    ----------
    dir : pathlib.Path
        The directory holding the files.
    application, bureau, previous_application : pathlib.Path
        One CSV file per table.
    """

    dir: Path
    application: Path
    bureau: Path
    previous_application: Path

    @property
    def paths(self) -> dict[str, Path]:
        """The three files keyed by table name, in the order :func:`credit_risk_etl` takes them.

        Returns
        -------
        dict of str to pathlib.Path
            ``{"application": ..., "bureau": ..., "previous_application": ...}``.
        """
        return {"application": self.application, "bureau": self.bureau,
                "previous_application": self.previous_application}

    def read(self, tracked: bool = True) -> tuple:
        """The three tables, in the order :func:`credit_risk_etl` takes them.

        Parameters
        ----------
        tracked : bool, default True
            Read with :func:`whence.read_csv` under the table names (lineage down to file lines), or with
            ``pandas.read_csv``.

        Returns
        -------
        tuple of DataFrame
            ``(application, bureau, previous_application)``.
        """
        if tracked:
            from .tabular import read_csv
            return tuple(read_csv(p, name=n) for n, p in self.paths.items())
        pd = _pandas()
        return tuple(pd.read_csv(p) for p in self.paths.values())


def _pandas():
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("whence.datasets needs pandas: pip install 'whence[pandas]'") from exc
    return pandas


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _pick(rng, labels, probs, size):
    """Draw ``size`` labels with the given probabilities (an object array of str)."""
    p = np.asarray(probs, dtype=float)
    idx = rng.choice(len(labels), size=size, p=p / p.sum())
    return np.asarray(labels, dtype=object)[idx]


def _with_nan(rng, values, rate):
    """A float copy of ``values`` with a fraction ``rate`` of entries set to NaN at random."""
    out = np.asarray(values, dtype=float).copy()
    out[rng.random(out.shape[0]) < rate] = np.nan
    return out


def _intercept_for_rate(score, rate):
    """The intercept ``b`` with ``mean(expit(b + score)) == rate`` (bisection, vectorised)."""
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _expit(mid + score).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _check_n(n_applicants):
    if isinstance(n_applicants, bool) or not isinstance(n_applicants, (int, np.integer)):
        raise TypeError(f"n_applicants must be an int, got {type(n_applicants).__name__} "
                        f"{n_applicants!r}")
    if n_applicants < 1:
        raise ValueError(f"n_applicants must be at least 1, got {n_applicants}")
    return int(n_applicants)


def _target_dir(path):
    if path is None:
        # removed when the process exits: repeated calls leave nothing behind in the temporary directory
        directory = tempfile.mkdtemp(prefix="whence-credit-risk-")
        atexit.register(shutil.rmtree, directory, True)
        return Path(directory)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str, a path-like object or None, got "
                        f"{type(path).__name__}")
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"path {str(directory)!r} exists and is not a directory; "
                                 f"credit_risk writes three CSV files into a directory")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def credit_risk(n_applicants: int = 20_000, seed: Any = 0,
                path: str | os.PathLike | None = None) -> CreditRiskFiles:
    """Generate a synthetic credit-risk case study shaped like the Home Credit tables.

    Writes ``application.csv`` (one row per applicant, with the default flag ``TARGET``),
    ``bureau.csv`` (earlier credits at other lenders, about 5 per applicant, some applicants
    have none) and ``previous_application.csv`` (earlier applications here, about 3 per
    applicant) into ``path``.  All values are synthetic: they are drawn from simple
    distributions, never copied from the public Home Credit Default Risk data, whose column
    names and quirks they imitate.  ``TARGET`` (about 8 % ones) follows a logistic model: low
    ``EXT_SOURCE_*`` scores, a high credit-to-income ratio, youth, having no employment, earlier
    refusals and overdue bureau credits all raise the risk.

    Generation is vectorised numpy and deterministic for a given ``seed``: the same arguments
    produce byte-identical files.  The default size (about 180,000 rows in all) takes well
    under two seconds.

    Parameters
    ----------
    n_applicants : int, default 20_000
        Number of applicants (rows of ``application.csv``); at least 1.
    seed : int, default 0
        Seed for :func:`numpy.random.default_rng`.
    path : str or os.PathLike, optional
        Directory to write into; created (with parents) if missing, and existing files of the
        same names are overwritten.  When None a fresh directory is made with
        ``tempfile.mkdtemp(prefix="whence-credit-risk-")`` and removed when the process exits.

    Returns
    -------
    CreditRiskFiles
        The directory and the three file paths (also as a dict, ``.paths``).

    Raises
    ------
    TypeError
        If ``n_applicants`` is not an int, or ``path`` is not a str / path-like / None.
    ValueError
        If ``n_applicants < 1``.
    NotADirectoryError
        If ``path`` exists and is not a directory.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from whence.datasets import credit_risk
    >>> tmp = tempfile.TemporaryDirectory()
    >>> files = credit_risk(n_applicants=200, seed=1, path=tmp.name)
    >>> sorted(files.paths)
    ['application', 'bureau', 'previous_application']
    >>> app = pd.read_csv(files.application)
    >>> len(app), int(app["SK_ID_CURR"].min()), sorted(app["TARGET"].unique().tolist())
    (200, 100001, [0, 1])
    >>> bureau = pd.read_csv(files.bureau)
    >>> bureau["SK_ID_CURR"].isin(app["SK_ID_CURR"]).all()
    np.True_
    >>> tmp.cleanup()
    """
    n = _check_n(n_applicants)
    directory = _target_dir(path)
    pd = _pandas()
    rng = np.random.default_rng(seed)

    app, hidden = _applicants(rng, n)
    bureau, overdue_per_app = _bureau(rng, app["SK_ID_CURR"], hidden)
    prev, refused_per_app = _previous(rng, app["SK_ID_CURR"], hidden)
    app["TARGET"] = _target(rng, app, hidden, overdue_per_app, refused_per_app)

    app_cols = ["SK_ID_CURR", "TARGET", "CODE_GENDER", "NAME_CONTRACT_TYPE", "NAME_INCOME_TYPE",
                "NAME_EDUCATION_TYPE", "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY",
                "DAYS_BIRTH", "DAYS_EMPLOYED", "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3",
                "CNT_CHILDREN", "FLAG_OWN_CAR"]
    files = CreditRiskFiles(dir=directory, application=directory / "application.csv",
                            bureau=directory / "bureau.csv",
                            previous_application=directory / "previous_application.csv")
    pd.DataFrame({c: app[c] for c in app_cols}).to_csv(files.application, index=False)
    pd.DataFrame(bureau).to_csv(files.bureau, index=False)
    pd.DataFrame(prev).to_csv(files.previous_application, index=False)
    return files


def _applicants(rng, n):
    """The application columns (without TARGET), the true EXT scores and a hidden risk factor."""
    ids = np.arange(_FIRST_ID_CURR, _FIRST_ID_CURR + n, dtype=np.int64)
    hidden = rng.standard_normal(n)                       # unobserved creditworthiness

    gender = _pick(rng, ["F", "M", "XNA"], [0.655, 0.342, 0.003], n)
    contract = _pick(rng, ["Cash loans", "Revolving loans"], [0.90, 0.10], n)
    education = _pick(rng, ["Secondary / secondary special", "Higher education",
                            "Incomplete higher", "Lower secondary", "Academic degree"],
                      [0.71, 0.24, 0.033, 0.012, 0.005], n)

    days_birth = -rng.integers(int(np.ceil(21 * 365.25)), int(70 * 365.25), size=n)
    age = -days_birth / 365.25

    # pensioners are mostly old; pensioners and the unemployed carry the 365243 anomaly
    u = rng.random(n)
    p_pension = np.where(age >= 57, 0.55, 0.01)
    working = _pick(rng, ["Working", "Commercial associate", "State servant"],
                    [0.62, 0.29, 0.09], n)
    income_type = np.where(u < p_pension, "Pensioner",
                           np.where(u < p_pension + 0.006, "Unemployed", working)).astype(object)
    not_employed = (income_type == "Pensioner") | (income_type == "Unemployed")
    years_employed = np.minimum(rng.exponential(6.0, n), age - 18)
    days_employed = -np.maximum(1, np.round(years_employed * 365.25)).astype(np.int64)
    days_employed[not_employed] = ANOMALY_DAYS_EMPLOYED

    higher = (education == "Higher education") | (education == "Academic degree")
    log_income = (np.log(135_000) + 0.30 * higher + 0.12 * (gender == "M")
                  - 0.25 * not_employed + 0.45 * rng.standard_normal(n))
    income = np.round(np.exp(log_income) / 2250) * 2250           # 112500, 135000, 157500, ...
    income = np.maximum(income, 2250.0)
    ratio = np.exp(np.log(3.2) + 0.55 * rng.standard_normal(n))
    revolving = contract == "Revolving loans"
    credit = np.where(revolving, np.round(np.exp(rng.normal(np.log(270_000), 0.5, n)) / 2250) * 2250,
                      np.round(income * ratio, 1))
    credit = np.maximum(credit, 45_000.0)
    annuity = np.where(revolving, credit * 0.05, credit * rng.uniform(0.035, 0.075, n))
    annuity = _with_nan(rng, np.round(annuity, 1), 0.03)

    def ext(mean, noise):
        z = mean - 0.75 * hidden + noise * rng.standard_normal(n)
        return np.clip(np.round(_expit(z), 4), 0.0001, 0.9999)

    ext1_true, ext2_true, ext3_true = ext(0.0, 0.9), ext(0.6, 0.8), ext(0.1, 0.9)
    ext2_true = np.clip(np.round(ext2_true + 0.02 * (age - 43) / 10, 4), 0.0001, 0.9999)

    app = {
        "SK_ID_CURR": ids,
        "CODE_GENDER": gender,
        "NAME_CONTRACT_TYPE": contract,
        "NAME_INCOME_TYPE": income_type,
        "NAME_EDUCATION_TYPE": education,
        "AMT_INCOME_TOTAL": income,
        "AMT_CREDIT": credit,
        "AMT_ANNUITY": annuity,
        "DAYS_BIRTH": days_birth.astype(np.int64),
        "DAYS_EMPLOYED": days_employed,
        "EXT_SOURCE_1": _with_nan(rng, ext1_true, 0.50),
        "EXT_SOURCE_2": _with_nan(rng, ext2_true, 0.002),
        "EXT_SOURCE_3": _with_nan(rng, ext3_true, 0.20),
        "CNT_CHILDREN": np.minimum(rng.poisson(np.where(age < 50, 0.55, 0.15)), 6).astype(np.int64),
        "FLAG_OWN_CAR": np.where(rng.random(n) < 0.30 + 0.10 * (gender == "M"), "Y", "N").astype(object),
        # kept for the target model, not written
        "_ext": (ext1_true, ext2_true, ext3_true),
        "_age": age,
        "_not_employed": not_employed,
        "_higher": higher,
    }
    return app, hidden


def _counts(rng, n, mean, dispersion):
    """Negative-binomial counts per applicant (Poisson with gamma-distributed rates)."""
    return rng.negative_binomial(dispersion, dispersion / (dispersion + mean), size=n)


def _bureau(rng, ids, hidden):
    n = ids.shape[0]
    counts = _counts(rng, n, 5.0, 2.0)
    owner = np.repeat(np.arange(n), counts)
    m = owner.shape[0]
    owner = owner[rng.permutation(m)]                     # file order is not grouped by applicant
    h = hidden[owner]

    u = rng.random(m)
    p_bad = _expit(-7.0 + 0.9 * h)
    p_sold = np.full(m, 0.013)
    active = np.where(u < p_bad, "Bad debt",
                      np.where(u < p_bad + p_sold, "Sold",
                               np.where(u < p_bad + p_sold + 0.37, "Active", "Closed"))).astype(object)
    credit_type = _pick(rng, ["Consumer credit", "Credit card", "Car loan", "Mortgage", "Microloan"],
                        [0.73, 0.23, 0.02, 0.012, 0.008], m)
    days_credit = -rng.integers(1, 2923, size=m)
    amount = np.round(np.exp(rng.normal(np.log(110_000), 1.0, m)), 1)
    is_active = active == "Active"
    debt = np.where(is_active, np.round(amount * rng.beta(2.0, 2.5, m), 1), 0.0)
    debt = _with_nan(rng, debt, 0.15)

    overdue_flag = is_active & (rng.random(m) < _expit(-4.0 + 1.0 * h))
    overdue = np.where(overdue_flag, np.round(np.exp(rng.normal(np.log(8_000), 1.0, m)), 1), 0.0)
    day_overdue = np.where(overdue_flag, rng.integers(1, 120, size=m), 0).astype(np.int64)

    table = {
        "SK_ID_CURR": ids[owner],
        "SK_ID_BUREAU": np.arange(_FIRST_ID_BUREAU, _FIRST_ID_BUREAU + m, dtype=np.int64),
        "CREDIT_ACTIVE": active,
        "CREDIT_TYPE": credit_type,
        "DAYS_CREDIT": days_credit.astype(np.int64),
        "AMT_CREDIT_SUM": amount,
        "AMT_CREDIT_SUM_DEBT": debt,
        "AMT_CREDIT_SUM_OVERDUE": overdue,
        "CREDIT_DAY_OVERDUE": day_overdue,
    }
    return table, np.bincount(owner, weights=overdue_flag, minlength=n)


def _previous(rng, ids, hidden):
    n = ids.shape[0]
    counts = _counts(rng, n, 3.0, 1.5)
    owner = np.repeat(np.arange(n), counts)
    m = owner.shape[0]
    owner = owner[rng.permutation(m)]
    h = hidden[owner]

    refused = rng.random(m) < _expit(-1.75 + 0.9 * h)
    other = _pick(rng, ["Approved", "Canceled", "Unused offer"], [0.755, 0.22, 0.025], m)
    status = np.where(refused, "Refused", other).astype(object)
    canceled = status == "Canceled"

    application = np.round(np.exp(rng.normal(np.log(110_000), 0.9, m)) / 450) * 450
    credit = np.where(status == "Approved", np.round(application * rng.uniform(0.9, 1.2, m), 1),
                      application)
    credit = _with_nan(rng, credit, 0.02)
    cnt = rng.choice(np.array([6, 10, 12, 18, 24, 36, 48, 60], dtype=float), size=m,
                     p=[0.12, 0.14, 0.30, 0.10, 0.18, 0.10, 0.04, 0.02])
    annuity = np.round(application * 1.15 / cnt, 1)
    no_terms = (canceled & (rng.random(m) < 0.9)) | (rng.random(m) < 0.03)
    annuity[no_terms] = np.nan
    cnt[no_terms] = np.nan

    table = {
        "SK_ID_PREV": np.arange(_FIRST_ID_PREV, _FIRST_ID_PREV + m, dtype=np.int64),
        "SK_ID_CURR": ids[owner],
        "NAME_CONTRACT_STATUS": status,
        "AMT_APPLICATION": application,
        "AMT_CREDIT": credit,
        "AMT_ANNUITY": annuity,
        "DAYS_DECISION": -rng.integers(1, 2923, size=m).astype(np.int64),
        "CNT_PAYMENT": cnt,
    }
    return table, np.bincount(owner, weights=refused, minlength=n)


def _target(rng, app, hidden, overdue_per_app, refused_per_app):
    """TARGET ~ Bernoulli(expit(b + score)), with b chosen for a default rate of about 8 %."""
    ext1, ext2, ext3 = app["_ext"]
    credit_income = app["AMT_CREDIT"] / app["AMT_INCOME_TOTAL"]
    score = (-2.2 * ext1 - 3.0 * ext2 - 2.8 * ext3
             + 0.35 * np.log(credit_income)
             - 0.025 * (app["_age"] - 43)
             + 0.45 * app["_not_employed"] * (app["_age"] < 57)
             + 0.25 * (app["CODE_GENDER"] == "M")
             - 0.25 * app["_higher"]
             - 0.25 * (app["NAME_CONTRACT_TYPE"] == "Revolving loans")
             + 0.30 * np.minimum(refused_per_app, 4)
             + 0.70 * np.minimum(overdue_per_app, 2)
             + 0.25 * hidden)
    score = _SIGNAL * score
    b = _intercept_for_rate(score, _DEFAULT_RATE)
    return (rng.random(score.shape[0]) < _expit(b + score)).astype(np.int64)


def credit_risk_etl(application: pd.DataFrame, bureau: pd.DataFrame,
                    previous_application: pd.DataFrame, *, return_frame: bool = False):
    """Turn the three credit-risk tables into a model matrix, with everyday pandas.

    The steps, each written with plain pandas (boolean-mask filters, column selection, column
    assignment with vectorised arithmetic and comparisons, ``replace``, ``fillna``, ``astype``,
    named ``groupby(...).agg``, left ``merge`` on ``SK_ID_CURR``, ``pd.get_dummies`` and
    ``to_numpy``; no ``apply``, lambdas, ``.str``, ``.map`` or row loops):

    a. drop applicants with ``CODE_GENDER == "XNA"``; flag the ``DAYS_EMPLOYED`` anomaly
       ``365243`` (``DAYS_EMPLOYED_ANOM``) and replace it with NaN;
    b. keep ``Active`` / ``Closed`` bureau credits and aggregate per applicant: count, mean
       debt, total overdue amount, most recent ``DAYS_CREDIT``;
    c. keep ``Approved`` / ``Refused`` previous applications and aggregate: count, mean
       ``AMT_APPLICATION`` and the number refused;
    d. left-join both aggregates onto the applicants (row order is kept);
    e. derive ``CREDIT_INCOME_RATIO``, ``ANNUITY_INCOME_RATIO``, ``AGE_YEARS``,
       ``EMPLOYED_YEARS`` and 0/1 flags ``IS_MALE``, ``OWN_CAR``;
    f. impute: counts and the overdue sum with 0, every other numeric feature with its median;
    g. one-hot encode ``NAME_CONTRACT_TYPE`` and ``NAME_EDUCATION_TYPE``;
    h. ``X = df[feature_names].to_numpy(dtype="float64")``, ``y = df["TARGET"].to_numpy()``.

    Parameters
    ----------
    application, bureau, previous_application : pandas.DataFrame
        The tables written by :func:`credit_risk`, as read by :func:`pandas.read_csv`.
    return_frame : bool, default False
        Also return the final DataFrame (all columns, including ``SK_ID_CURR``).

    Returns
    -------
    X : numpy.ndarray of float64, shape (n_rows, n_features)
        One row per application row with ``CODE_GENDER != "XNA"``, in input order.  No NaN,
        unless a feature is missing in every row (possible only for tiny inputs).
    y : numpy.ndarray
        ``TARGET`` of the same rows.
    feature_names : list of str
        The columns of ``X``: :data:`FEATURES` followed by the one-hot columns of
        :data:`ONE_HOT_COLUMNS` that the data produce.
    df : pandas.DataFrame
        Only with ``return_frame=True``: the final frame that ``X`` and ``y`` were taken from.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from whence.datasets import credit_risk, credit_risk_etl, FEATURES
    >>> tmp = tempfile.TemporaryDirectory()
    >>> files = credit_risk(n_applicants=200, seed=3, path=tmp.name)
    >>> app = pd.read_csv(files.application)
    >>> X, y, names, df = credit_risk_etl(app, pd.read_csv(files.bureau),
    ...                                   pd.read_csv(files.previous_application),
    ...                                   return_frame=True)
    >>> len(X) == (app["CODE_GENDER"] != "XNA").sum(), names[:len(FEATURES)] == FEATURES
    (np.True_, True)
    >>> names[len(FEATURES)]
    'NAME_CONTRACT_TYPE_Cash loans'
    >>> bool(pd.notna(X).all()), df["SK_ID_CURR"].is_unique
    (True, True)
    >>> tmp.cleanup()
    """
    pd = _pandas()

    # (a) applicants: drop unknown gender, flag and blank out the DAYS_EMPLOYED anomaly
    app = application[application["CODE_GENDER"] != "XNA"]
    app = app[["SK_ID_CURR", "TARGET", "CODE_GENDER", "NAME_CONTRACT_TYPE", "NAME_EDUCATION_TYPE",
               "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "DAYS_BIRTH", "DAYS_EMPLOYED",
               "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3", "CNT_CHILDREN", "FLAG_OWN_CAR"]]
    app["DAYS_EMPLOYED_ANOM"] = (app["DAYS_EMPLOYED"] == ANOMALY_DAYS_EMPLOYED).astype(float)
    app = app.replace({"DAYS_EMPLOYED": {ANOMALY_DAYS_EMPLOYED: np.nan}})

    # (b) bureau: open or closed credits only, aggregated per applicant
    bur = bureau[bureau["CREDIT_ACTIVE"].isin(["Active", "Closed"])]
    bur_agg = bur.groupby("SK_ID_CURR").agg(
        BUREAU_COUNT=("SK_ID_BUREAU", "count"),
        BUREAU_DEBT_MEAN=("AMT_CREDIT_SUM_DEBT", "mean"),
        BUREAU_OVERDUE_SUM=("AMT_CREDIT_SUM_OVERDUE", "sum"),
        BUREAU_DAYS_CREDIT_MAX=("DAYS_CREDIT", "max"),
    )

    # (c) previous applications: decided ones only, with the number refused
    prev = previous_application[
        previous_application["NAME_CONTRACT_STATUS"].isin(["Approved", "Refused"])]
    prev = prev[["SK_ID_CURR", "NAME_CONTRACT_STATUS", "AMT_APPLICATION"]]
    prev["REFUSED"] = (prev["NAME_CONTRACT_STATUS"] == "Refused").astype(float)
    prev_agg = prev.groupby("SK_ID_CURR").agg(
        PREV_COUNT=("NAME_CONTRACT_STATUS", "count"),
        PREV_AMT_APPLICATION_MEAN=("AMT_APPLICATION", "mean"),
        PREV_REFUSED_COUNT=("REFUSED", "sum"),
    )

    # (d) left joins keep every applicant, in order
    df = app.merge(bur_agg, on="SK_ID_CURR", how="left")
    df = df.merge(prev_agg, on="SK_ID_CURR", how="left")

    # (e) derived features
    df["CREDIT_INCOME_RATIO"] = df["AMT_CREDIT"] / df["AMT_INCOME_TOTAL"]
    df["ANNUITY_INCOME_RATIO"] = df["AMT_ANNUITY"] / df["AMT_INCOME_TOTAL"]
    df["AGE_YEARS"] = df["DAYS_BIRTH"] / -365.25
    df["EMPLOYED_YEARS"] = df["DAYS_EMPLOYED"] / -365.25
    df["IS_MALE"] = (df["CODE_GENDER"] == "M").astype(float)
    df["OWN_CAR"] = (df["FLAG_OWN_CAR"] == "Y").astype(float)

    # (f) imputation: no rows -> zero counts; anything else missing -> the column median
    fill = {col: 0.0 for col in COUNT_FEATURES}
    fill.update({col: df[col].median() for col in FEATURES if col not in fill})
    df = df.fillna(fill)

    # (g) one-hot encoding
    df = pd.get_dummies(df, columns=ONE_HOT_COLUMNS, dtype=float)

    # (h) to numpy
    one_hot = [col for col in df.columns
               if any(col.startswith(prefix + "_") for prefix in ONE_HOT_COLUMNS)]
    feature_names = FEATURES + one_hot
    X = df[feature_names].to_numpy(dtype="float64")
    y = df["TARGET"].to_numpy()
    if return_frame:
        return X, y, feature_names, df
    return X, y, feature_names


# ------------------------------------------------------------------------------------------------ Adult
#: Columns of the UCI Adult files, in order (the files have no header).
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
                 "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
                 "native-country", "income"]
_ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
_ADULT_CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
                      "native-country"]


def adult(split: str = "train") -> "pd.DataFrame":
    """The UCI Adult (Census Income) data set, shipped with whence (CC BY 4.0; Becker and Kohavi, 1996).

    Parameters
    ----------
    split : ``"train"`` (32,561 rows) or ``"test"`` (16,281 rows)

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`ADULT_COLUMNS`; ``"?"`` (missing) becomes NaN; ``income`` is ``"<=50K"`` or
        ``">50K"`` in both splits (the test file's trailing dots removed).  The index is the row's position in
        the file's records.

    Examples
    --------
    >>> from whence.datasets import adult
    >>> df = adult("train")
    >>> df.shape, df["income"].value_counts().to_dict()
    ((32561, 15), {'<=50K': 24720, '>50K': 7841})
    """
    pd = _pandas()
    import importlib.resources
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    name = "adult.data.gz" if split == "train" else "adult.test.gz"
    with importlib.resources.files("whence.data").joinpath(name).open("rb") as f:
        df = pd.read_csv(f, compression="gzip", header=None, names=ADULT_COLUMNS, skipinitialspace=True,
                         na_values="?", skiprows=1 if split == "test" else 0, comment=None)
    df = df.dropna(how="all").reset_index(drop=True)
    df["income"] = df["income"].str.rstrip(".")
    return df


class AdultData(NamedTuple):
    """The matrices of :func:`adult_features`."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: list
    train_rows: np.ndarray
    test_rows: np.ndarray


def adult_features(n_train: int = 6000, n_test: int = 1500, seed: int = 0) -> AdultData:
    """One-hot training and test matrices from Adult: a random sample of the train and test splits.

    Numeric columns are standardised with the training sample's mean and standard deviation; categorical
    columns are one-hot encoded over the categories of both splits (a missing value is its own category).
    ``y`` is 1 for ``>50K``.  ``train_rows`` / ``test_rows`` are the sampled rows' positions in their files'
    records.

    Examples
    --------
    >>> from whence.datasets import adult_features
    >>> d = adult_features(600, 150, seed=0)
    >>> d.X_train.shape[0], d.X_test.shape[0], d.X_train.shape[1] == len(d.feature_names)
    (600, 150, True)
    """
    pd = _pandas()
    tr, te = adult("train"), adult("test")
    if not 0 < n_train <= len(tr) or not 0 < n_test <= len(te):
        raise ValueError(f"n_train must be in 1..{len(tr)} and n_test in 1..{len(te)}")
    rng = np.random.default_rng(seed)
    itr = np.sort(rng.choice(len(tr), n_train, replace=False))
    ite = np.sort(rng.choice(len(te), n_test, replace=False))
    both = pd.concat([tr.iloc[itr], te.iloc[ite]], ignore_index=True)
    cats = pd.get_dummies(both[_ADULT_CATEGORICAL].fillna("missing"), dtype=np.float64)
    num = both[_ADULT_NUMERIC].astype(np.float64)
    mu = num.iloc[:n_train].mean()
    sd = num.iloc[:n_train].std(ddof=0).replace(0, 1)
    num = (num - mu) / sd
    X = np.hstack([num.to_numpy(), cats.to_numpy()])
    y = (both["income"] == ">50K").to_numpy().astype(np.int64)
    names = list(num.columns) + list(cats.columns)
    return AdultData(X[:n_train], y[:n_train], X[n_train:], y[n_train:], names, itr, ite)
