"""Benchmark: counterfactual attribution in source rows, checked against the truth (issue 19).

The credit case study (``whence.datasets.credit_risk``, 20,000 applicants, about 180,000 source rows in three
files; 4,000 applicants in ``--quick``), its pandas ETL under lineage, and
``StandardScaler -> LogisticRegression(solver="newton-cholesky", tol=1e-10)``.  For several test points (training applicants):

- **single rows**: for random source rows of each table that fed the training matrix (100 per table; 25 in
  ``--quick``), the truth is measured by deleting the row, re-running the ETL in plain pandas, retraining the
  pipeline from scratch to the optimum (scikit-learn's Newton solver, tolerance 1e-10) and
  taking the change of the correct-class margin.  Reported per table: the Spearman correlation between
  whence's predicted effect and the truth (mean and minimum over the test points), and the median relative
  error ``|predicted - actual| / |actual|``; beside them the equal-split convention
  (:meth:`Explanation.by_source`'s share of each training row's score) on the same rows;
- **groups**: the whole bureau and previous_application files, and random 1 % and 5 % of each table, deleted
  together: the Newton-corrected group effect and the first-order one against the truth (relative error);
- **the scaler**: whence holds the pipeline's preprocessing fixed (the fitted ``StandardScaler`` is part of the
  model it differentiates), while the truth above refits it on the reduced data.  The same predictions are also
  compared with a second truth that keeps the fitted scaler and retrains only the logistic regression; the gap
  between the two truths is the part of each effect that comes from refitting the scaler;
- **time**: the effects of every source row on one prediction (the first call on a fitted model, propagation
  included, in CPU and wall seconds with the load average, and a later call), and on 1,000 predictions (in
  blocks of 100).
"""

from __future__ import annotations

import tempfile
import time
import warnings

import numpy as np


def _model():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cholesky", tol=1e-10))


def _refit(model, X, y):
    """The pipeline retrained from scratch on (X, y) (scikit-learn's Newton solver, to the optimum)."""
    from sklearn.base import clone
    return clone(model).fit(X, y)


def _refit_fixed_scaler(model, X, y):
    """The pipeline with its fitted preprocessing kept and only the last step retrained on (X, y)."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline
    pre = model[:-1]
    last = clone(model[-1]).fit(pre.transform(X), y)
    return Pipeline(pre.steps + [(model.steps[-1][0], last)])


def _margins(model, X, y):
    d = model.decision_function(X)
    return np.where(y == 1, d, -d)


def _spearman(a, b):
    from scipy.stats import spearmanr
    if np.allclose(a, a[0]) or np.allclose(b, b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)


def run(quick=False, log=print, n_applicants=None, rows_per_table=None):
    import pandas as pd

    import whence as wh
    from whence.attribution import Attributor
    from whence.attribution.source_scores import row_relation
    from whence.datasets import credit_risk, credit_risk_etl
    n_app = n_applicants or (4000 if quick else 20_000)
    n_rows = rows_per_table or (25 if quick else 100)
    n_tests = 5
    out = {"name": "counterfactual", "n_applicants": n_app, "rows_per_table": n_rows, "problems": []}
    tmp = tempfile.mkdtemp(prefix="whence-bench-cf-")
    files = credit_risk(n_app, seed=0, path=tmp)
    wh.reset()
    tables = ("application", "bureau", "previous_application")
    X, y, names, df = credit_risk_etl(*files.read(), return_frame=True)
    Xp, yp = np.asarray(X), np.asarray(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = _model().fit(Xp, yp)
    rng = np.random.default_rng(0)
    tests = np.sort(rng.choice(len(yp), n_tests, replace=False))
    ids = df["SK_ID_CURR"].to_numpy()[tests]
    # ---------------------------------------------------------------- time
    attr = Attributor(model, X, yp)
    import os
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t0, c0 = time.perf_counter(), time.process_time()
    se = attr.source_effects(Xp[tests[:1]], yp[tests[:1]])
    t_first, c_first = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    attr.source_effects(Xp[tests[1:2]], yp[tests[1:2]])
    t_one = time.perf_counter() - t0
    n_src = sum(v.shape[1] for v in se.effects.values())
    m = 1000
    pick = rng.choice(len(yp), m, replace=True)
    t0 = time.perf_counter()
    for b in range(0, m, 100):
        blk = attr.source_effects(Xp[pick[b:b + 100]], yp[pick[b:b + 100]])
        _ = {k: np.abs(v).max(axis=1) for k, v in blk.effects.items()}
    t_many = time.perf_counter() - t0
    out["time"] = {"source_rows": int(n_src), "one_prediction_first_call_s": t_first,
                   "one_prediction_first_call_cpu_s": c_first, "load_average": load, "one_prediction_s": t_one,
                   "predictions": m, "many_predictions_s": t_many}
    log(f"  effects of {n_src:,} source rows: first call {t_first:.2f} s ({c_first:.2f} s CPU, load {load:.1f}), "
        f"one prediction {t_one:.3f} s, {m} predictions {t_many:.2f} s")
    se = attr.source_effects(Xp[tests], yp[tests])
    out["exact"] = se.exact
    # the equal split on the same rows
    rel = row_relation(X)
    S = attr.scores(Xp[tests], yp[tests]).astype(np.float64)
    split = {}
    for t, (tr, src) in rel.items():
        fan = np.bincount(tr, minlength=len(yp))
        share = np.zeros((n_tests, files_rows(files, t)))
        np.add.at(share.T, src, (S[:, tr] / fan[tr]).T)
        split[t] = share
    # ---------------------------------------------------------------- truth, single rows
    plain = dict(zip(tables, files.read(tracked=False)))
    f0 = _margins(model, Xp[tests], yp[tests])

    def truth(drop):
        fr = {t: (plain[t].drop(index=plain[t].index[np.asarray(drop[t])]).reset_index(drop=True)
                  if t in drop else plain[t]) for t in tables}
        X1, y1, _, df1 = credit_risk_etl(fr["application"], fr["bureau"], fr["previous_application"],
                                         return_frame=True)
        if not np.isfinite(X1).all():
            return None  # the ETL's median fill of an emptied column: no training matrix to retrain on
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m1 = _refit(model, X1, y1)
            m2 = _refit_fixed_scaler(model, X1, y1)
        fixed[id(drop)] = f0 - _margins(m2, Xp[tests], yp[tests])
        return f0 - _margins(m1, Xp[tests], yp[tests])

    fixed = {}

    def truth2(drop):
        """(truth with the scaler refitted, truth with the scaler kept), or (None, None)."""
        a = truth(drop)
        return (None, None) if a is None else (a, fixed.pop(id(drop)))

    singles = {}
    t_truth = time.perf_counter()
    for t in tables:
        fed = np.flatnonzero(~se.fed_nothing[t])
        rows = np.sort(rng.choice(fed, min(n_rows, fed.size), replace=False))
        both = [truth2({t: [r]}) for r in rows]
        act = np.array([a for a, _ in both])  # (rows, tests)
        act_fixed = np.array([b for _, b in both])
        pred = se.effects[t][:, rows].T.astype(np.float64)
        eq = split[t][:, rows].T
        rho = [_spearman(pred[:, k], act[:, k]) for k in range(n_tests)]
        rho_eq = [_spearman(eq[:, k], act[:, k]) for k in range(n_tests)]
        nz = np.abs(act) > 1e-12
        relerr = np.abs(pred - act)[nz] / np.abs(act)[nz]
        relerr_eq = np.abs(eq - act)[nz] / np.abs(act)[nz]
        rho_fx = [_spearman(pred[:, k], act_fixed[:, k]) for k in range(n_tests)]
        nzf = np.abs(act_fixed) > 1e-12
        relerr_fx = np.abs(pred - act_fixed)[nzf] / np.abs(act_fixed)[nzf]
        gap = np.abs(act - act_fixed)[nz] / np.abs(act)[nz]
        singles[t] = {"rows": int(rows.size), "spearman_mean": float(np.nanmean(rho)),
                      "spearman_min": float(np.nanmin(rho)), "rel_error_median": float(np.median(relerr)),
                      "rel_error_p90": float(np.quantile(relerr, 0.9)),
                      "equal_split_spearman_mean": float(np.nanmean(rho_eq)),
                      "equal_split_rel_error_median": float(np.median(relerr_eq)),
                      "mean_abs_actual": float(np.abs(act).mean()),
                      "fixed_scaler_spearman_mean": float(np.nanmean(rho_fx)),
                      "fixed_scaler_rel_error_median": float(np.median(relerr_fx)),
                      "scaler_refit_share_median": float(np.median(gap)),
                      "scaler_refit_share_p90": float(np.quantile(gap, 0.9))}
        log(f"  {t:<22} Spearman {singles[t]['spearman_mean']:.3f} (min {singles[t]['spearman_min']:.3f}), "
            f"rel. error {singles[t]['rel_error_median']:.3f}; equal split {singles[t]['equal_split_spearman_mean']:.3f}"
            f" / {singles[t]['equal_split_rel_error_median']:.2f}; scaler kept in the truth: Spearman "
            f"{singles[t]['fixed_scaler_spearman_mean']:.3f}, rel. error "
            f"{singles[t]['fixed_scaler_rel_error_median']:.3f} (refitting it moves the truth by "
            f"{singles[t]['scaler_refit_share_median']:.1%})")
    out["single_rows"] = singles
    # ---------------------------------------------------------------- truth, groups
    groups = []
    cfs = [se[k] for k in range(n_tests)]
    cases = [(t, "whole file", None) for t in ("bureau", "previous_application")]
    for t in tables:
        for frac in (0.01, 0.05):
            for rep in range(2 if quick else 3):
                cases.append((t, f"{frac:.0%}", frac))
    for t, what, frac in cases:
        n_t = len(plain[t])
        rows = np.arange(n_t) if frac is None else np.sort(rng.choice(n_t, max(1, int(frac * n_t)), replace=False))
        act, act_fixed = truth2({t: rows})
        if act is None:
            groups.append({"table": t, "group": what, "source_rows": int(rows.size), "undefined":
                           "the ETL's median fill of an emptied column gives NaN features: no model to retrain"})
            log(f"  group {t} {what}: the truth is undefined (the ETL leaves NaN features)")
            continue
        g = [cf.group(t, rows=rows) for cf in cfs]
        eff = np.array([x.effect for x in g])
        first = np.array([x.first_order for x in g])
        ssum = np.array([x.sum_of_rows for x in g])
        den = np.maximum(np.abs(act), 1e-12)
        groups.append({"table": t, "group": what, "source_rows": int(rows.size),
                       "rel_error_median": float(np.median(np.abs(eff - act) / den)),
                       "first_order_rel_error_median": float(np.median(np.abs(first - act) / den)),
                       "sum_of_rows_rel_error_median": float(np.median(np.abs(ssum - act) / den)),
                       "fixed_scaler_rel_error_median": float(np.median(np.abs(eff - act_fixed)
                                                                        / np.maximum(np.abs(act_fixed), 1e-12))),
                       "scaler_refit_share_median": float(np.median(np.abs(act - act_fixed) / den)),
                       "spearman_over_tests": _spearman(eff, act)})
        log(f"  group {t} {what} ({rows.size} rows): rel. error {groups[-1]['rel_error_median']:.3f} "
            f"(first order {groups[-1]['first_order_rel_error_median']:.3f}, sum of rows "
            f"{groups[-1]['sum_of_rows_rel_error_median']:.3f})")
    out["groups"] = groups
    out["truth_seconds"] = time.perf_counter() - t_truth
    out["test_applicants"] = ids.tolist()
    # targets
    tg = out.setdefault("targets", {})
    tg["spearman_per_table_ge_0.95"] = all(v["spearman_mean"] >= 0.95 for v in singles.values())
    tg["single_rel_error_le_0.10"] = all(v["rel_error_median"] <= 0.10 for v in singles.values())
    five = [g for g in groups if g["group"] == "5%" and "undefined" not in g]
    tg["group_5pct_rel_error_le_0.20"] = all(g["rel_error_median"] <= 0.20 for g in five)
    tg["one_prediction_le_1s"] = t_one <= 1.0
    tg["thousand_predictions_le_20s"] = t_many <= 20.0
    out["markdown"] = markdown(out)
    pd  # noqa: B018 - pandas is needed by the ETL
    return out


def rows(out):
    """The target-table rows (what, target, measured, PASS/MISS, note)."""
    st = lambda ok: "PASS" if ok else "MISS"  # noqa: E731
    s = out["single_rows"]
    tm = out["time"]
    five = [g for g in out["groups"] if g["group"] == "5%" and "undefined" not in g]
    n = f"credit case {out['n_applicants']:,} applicants"
    return [
        (f"counterfactual: Spearman(predicted, actual change) per table, {out['rows_per_table']} source rows each "
         f"({n})", ">= 0.95", ", ".join(f"{t} {v['spearman_mean']:.3f}" for t, v in s.items()),
         st(out["targets"]["spearman_per_table_ge_0.95"]),
         "equal split on the same rows: " + ", ".join(f"{t} {v['equal_split_spearman_mean']:.2f}" for t, v in s.items())),
        ("counterfactual: median relative error, single source rows", "<= 10 %",
         ", ".join(f"{t} {v['rel_error_median']:.1%}" for t, v in s.items()),
         st(out["targets"]["single_rel_error_le_0.10"]),
         "equal split: " + ", ".join(f"{t} {v['equal_split_rel_error_median']:.0%}" for t, v in s.items())),
        ("counterfactual: median relative error, random 5 % groups", "<= 20 %",
         ", ".join(f"{g['table']} {g['rel_error_median']:.1%}" for g in five),
         st(out["targets"]["group_5pct_rel_error_le_0.20"]), "Newton steps on the new training set; first order: "
         + ", ".join(f"{g['first_order_rel_error_median']:.1%}" for g in five)),
        (f"counterfactual: all {tm['source_rows']:,} source rows on one prediction", "<= 1 s",
         f"{tm['one_prediction_s']:.3f} s", st(out["targets"]["one_prediction_le_1s"]),
         f"first call on a model (propagation and gradient changes, once) {tm['one_prediction_first_call_s']:.2f} s "
         f"wall, {tm.get('one_prediction_first_call_cpu_s', float('nan')):.2f} s CPU at load "
         f"{tm.get('load_average', float('nan')):.1f}"),
        (f"counterfactual: all source rows on {tm['predictions']:,} predictions", "<= 20 s",
         f"{tm['many_predictions_s']:.2f} s", st(out["targets"]["thousand_predictions_le_20s"]), "blocks of 100"),
    ]


def files_rows(files, table):
    import pandas as pd
    return len(pd.read_csv(files.paths[table], usecols=[0]))


def markdown(out):
    lines = [f"### Counterfactual attribution in source rows (credit case, {out['n_applicants']:,} applicants)", "",
             "| table | rows | Spearman (mean, min over test points) | median rel. error | p90 rel. error | "
             "equal split: Spearman | equal split: rel. error | scaler kept in the truth: Spearman, rel. error | "
             "refitting the scaler moves the truth by (median) |", "|---|---|---|---|---|---|---|---|---|"]
    for t, v in out["single_rows"].items():
        lines.append(f"| {t} | {v['rows']} | {v['spearman_mean']:.3f}, {v['spearman_min']:.3f} | "
                     f"{v['rel_error_median']:.3f} | {v['rel_error_p90']:.3f} | {v['equal_split_spearman_mean']:.3f} | "
                     f"{v['equal_split_rel_error_median']:.2f} | {v['fixed_scaler_spearman_mean']:.3f}, "
                     f"{v['fixed_scaler_rel_error_median']:.3f} | {v['scaler_refit_share_median']:.2%} |")
    lines += ["", "| group deleted | source rows | median rel. error (Newton step) | first order | sum of single "
              "effects | scaler kept in the truth | refitting the scaler moves the truth by |",
              "|---|---|---|---|---|---|---|"]
    for g in out["groups"]:
        if "undefined" in g:
            lines.append(f"| {g['table']} {g['group']} | {g['source_rows']:,} | undefined: {g['undefined']} | | | | |")
            continue
        lines.append(f"| {g['table']} {g['group']} | {g['source_rows']:,} | {g['rel_error_median']:.3f} | "
                     f"{g['first_order_rel_error_median']:.3f} | {g['sum_of_rows_rel_error_median']:.3f} | "
                     f"{g['fixed_scaler_rel_error_median']:.3f} | {g['scaler_refit_share_median']:.2%} |")
    tm = out["time"]
    lines += ["", f"Effects of all {tm['source_rows']:,} source rows: one prediction {tm['one_prediction_s']:.3f} s "
              f"(first call on the fitted model, propagation included: {tm['one_prediction_first_call_s']:.2f} s wall, "
              f"{tm.get('one_prediction_first_call_cpu_s', float('nan')):.2f} s CPU at load "
              f"{tm.get('load_average', float('nan')):.1f}); "
              f"{tm['predictions']:,} predictions {tm['many_predictions_s']:.2f} s."]
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int)
    ap.add_argument("--rows", type=int)
    a = ap.parse_args()
    res = run(quick=a.quick, n_applicants=a.n, rows_per_table=a.rows)
    print(res["markdown"])
    print(json.dumps(res["targets"]))
