"""Forgetting source rows: a person's lines in the source files, followed through the ETL to the model.

:func:`forget_sources` reads the source files under lineage and runs the user's own ETL function; the lines to
drop are turned into source rows (through the file line of every row), and the lineage says which training
rows they fed.  The ETL runs again on the sources without those rows; training rows are matched between the
two runs through their *anchor* source (the table whose rows map one to one onto training rows, such as the
applicants of a credit table), which gives the training rows that vanished and those that remained but
changed (an aggregate over dropped rows).  The model is then updated by Newton steps from its parameters to
the optimum of its objective over the new training set: vanished rows removed, changed rows replaced.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..tabular.source_tables import rows_of_lines as _lines_to_rows  # noqa: F401  (the former home)
from ..attribution.model_math import model_input
from .newton import Certificate, Objective, clone_fitted, newton_fit

__all__ = ["forget_sources", "ForgetSourcesResult"]


@dataclass
class ForgetSourcesResult:
    """The outcome of :func:`forget_sources`.

    Attributes
    ----------
    removed_rows : ndarray
        Training rows (of the original ETL output) that no longer exist.
    changed_rows : ndarray
        Training rows that remain but changed: those that derive from a dropped source row (aggregates,
        joins), and those whose values the re-run changed without a lineage path (a column statistic used as
        a constant; ``report["lineage_check"]`` lists them).  Their new values replace the old in the model.
    model : the updated model (a copy; ``.certificate`` holds the Newton certificate)
    X, y : the new training set (the ETL's output without the dropped rows), tracked
    dropped : dict
        ``{table: source rows dropped}`` (0-based rows of the files' records).
    report : dict
        Counts, timings, the lineage checks, and (``check=True``) the comparison with a model retrained on the
        new training set.
    """

    removed_rows: np.ndarray
    changed_rows: np.ndarray
    model: object
    X: object
    y: object
    dropped: dict
    report: dict = field(default_factory=dict)

    def result_document(self):
        """``("unlearning", document)``: what :func:`whence.save` stores for this result (see
        :mod:`whence.store.results`)."""
        from ..attribution.explain import json_ready
        r = self.report
        figures = {"training_rows_before": r["training_rows"]["before"],
                   "training_rows_after": r["training_rows"]["after"],
                   "training_rows_removed": r["training_rows"]["removed"],
                   "training_rows_changed": r["training_rows"]["changed"],
                   "source_rows_dropped": sum(r["source_rows_dropped"].values()),
                   "update_seconds": r["seconds"]["update"]}
        if "retrained" in r:
            figures["retrain_seconds"] = r["seconds"]["retrain"]
            figures["param_distance_to_retrained"] = r["retrained"]["param_distance"]
            figures["kl_retrained_vs_unlearned"] = r["retrained"]["test_kl_on_new_training_set"]
        cert = r.get("certificate") or getattr(self.model, "certificate", None)
        if cert is not None:
            figures["gradient_residual_relative"] = cert.residual_relative
            figures["newton_steps"] = cert.steps
        detail = {k2: v for k2, v in r.items() if k2 != "certificate"}
        return "unlearning", json_ready({"method": "forget_sources (Newton update through the lineage)",
                                         "n_forgotten": sum(r["source_rows_dropped"].values()),
                                         "figures": figures, "detail": detail})

    def _repr_html_(self):
        from ..notebook import unlearning_html
        return unlearning_html(self)

    def __repr__(self):
        r = self.report
        return (f"<ForgetSourcesResult: dropped {sum(len(v) for v in self.dropped.values())} source rows from "
                f"{sorted(self.dropped)}; {len(self.removed_rows)} training rows removed, {len(self.changed_rows)} "
                f"changed; update {r.get('seconds', {}).get('update', float('nan')) * 1e3:.1f} ms>")


def _read(path, name, tracked=True):
    import pandas as pd

    from .. import tabular
    p = str(path)
    if tracked:
        return tabular.read_parquet(p, name=name) if p.endswith(".parquet") else tabular.read_csv(p, name=name)
    return pd.read_parquet(p) if p.endswith(".parquet") else pd.read_csv(p)


def _run_etl(etl, frames, target):
    from ..attribution.etl_rerun import run_etl
    return run_etl(etl, frames, target)


def _anchor(X, n_out):
    """The source whose rows map one to one onto training rows, with the source row of every training row."""
    from ..attribution.training_matrix import anchor_of
    from ..attribution.source_scores import row_relation
    rel = row_relation(X)
    return anchor_of(rel, n_out), rel


def forget_sources(etl, sources, drop, model, target=None, *, by="line", check=True, allow_unused=False,
                   tol=None, max_steps=30, progress=True):
    """Forget source rows through the lineage, and update the model without retraining it.

    Parameters
    ----------
    etl : callable
        The user's own function from source frames (keyword arguments named as in ``sources``, or positional
        in that order) to ``(X, y)``, or to one DataFrame whose ``target`` column is the label.
    sources : dict
        ``{name: path}`` of the CSV (or Parquet) files.
    drop : dict
        ``{name: [file lines]}`` (1-based, as :func:`whence.trace_to_file` reports them), or source rows with
        ``by="row"``.
    model : fitted scikit-learn model, trained on the ETL's output of the full sources
    target : str, optional
        The label column when ``etl`` returns one table.
    check : bool, default True
        Also retrain on the new training set and put the comparison in the report.
    allow_unused : bool, default False
        Accept dropped source rows that fed no training row (otherwise an error lists them).
    tol, max_steps : optional
        The Newton update's stopping rule (gradient tolerance, and the most steps).
    progress : bool, default True
        A progress bar on stderr, by step (ETL, lineage, replay, update, check), when it takes over a second.

    Returns
    -------
    ForgetSourcesResult
    """
    from ..tabular.frame import TrackedFrame  # noqa: F401  (installs the pandas wrappers)
    if not sources:
        raise ValueError("sources is empty: give {name: path} of the files the ETL reads")
    unknown = sorted(set(drop) - set(sources))
    if unknown:
        raise ValueError(f"drop names {unknown}, which are not among the sources {sorted(sources)}")
    for name, path in sources.items():
        if not Path(path).exists():
            raise FileNotFoundError(f"source {name!r}: no file at {str(path)!r}")
    if by not in ("line", "row"):
        raise ValueError(f"by must be 'line' or 'row', got {by!r}")
    from ..progress import progress_bar
    bar = progress_bar(5 if check else 4, "forget_sources: ETL under lineage", enabled=progress, unit="steps")
    try:
        return _forget_sources(etl, sources, drop, model, target, by, check, allow_unused, tol, max_steps, bar)
    finally:
        bar.close()


def _forget_sources(etl, sources, drop, model, target, by, check, allow_unused, tol, max_steps, bar):
    from .. import graph, query, tabular
    t0 = time.perf_counter()
    for name in sources:
        graph.release(name)
    frames = {name: _read(path, name) for name, path in sources.items()}
    X0, y0 = _run_etl(etl, frames, target)
    bar.update()
    bar.set_description("forget_sources: forward lineage of the dropped rows")
    t_etl0 = time.perf_counter() - t0
    n0 = len(y0)
    # the dropped source rows, and the training rows they fed (lineage, forward)
    dropped, fed = {}, {}
    for name, lines in drop.items():
        node = frames[name]._whence_node
        rows = _lines_to_rows(node, name, lines, by)
        dropped[name] = rows
        if rows.size:
            cells = query.forward(name, X0, rows=rows.tolist())
            fed[name] = np.unique(cells[:, 0]) if len(cells) else np.zeros(0, np.int64)
            unused = []
            if not allow_unused:
                for r in rows.tolist():
                    if not len(query.forward(name, X0, rows=[r])):
                        unused.append(r)
            if unused:
                raise ValueError(f"source rows {unused[:10]} of {name!r} fed no training row (filtered out by the "
                                 f"ETL, or unused): there is nothing to forget for them; pass allow_unused=True to "
                                 f"go on without them")
    affected = np.unique(np.concatenate(list(fed.values()))) if fed else np.zeros(0, np.int64)
    anchor, _ = _anchor(X0, n0)
    if anchor is None:
        raise ValueError("no source table maps one to one onto the training rows, so the rows of two ETL runs "
                         "cannot be matched; forget training rows with whence.unlearn.forget instead")
    a_name, a_rows0 = anchor
    # run the ETL again without the dropped rows (tracked, so that the new rows can be matched)
    bar.update()
    bar.set_description("forget_sources: ETL replay without the rows")
    t1 = time.perf_counter()
    from ..attribution.etl_rerun import CounterfactualError, rerun_without
    try:
        X1, y1, match = rerun_without(etl, sources, dropped, target, a_name=a_name, a_rows0=a_rows0)
    except CounterfactualError as e:
        raise ValueError(str(e)) from None
    t_etl1 = time.perf_counter() - t1
    n1 = len(y1)
    survived = np.zeros(n0, bool)
    survived[match] = True
    removed = np.flatnonzero(~survived)
    changed_lineage = np.setdiff1d(affected, removed)
    Xa0, Xa1 = np.asarray(X0, np.float64), np.asarray(X1, np.float64)
    differs = ~np.all((Xa0[match] == Xa1) | (np.isnan(Xa0[match]) & np.isnan(Xa1)), axis=1)
    ya0, ya1 = np.asarray(y0), np.asarray(y1)
    differs |= ya0[match] != ya1
    changed_values = np.sort(match[differs])
    # values can also change without a lineage path: a scalar computed from a whole column (a median used to
    # fill gaps) is a constant in the lineage (docs/semantics.md), so the re-run's values are the check
    value_only = np.setdiff1d(changed_values, changed_lineage)
    changed = np.union1d(changed_lineage, changed_values)
    # the update: Newton from the old parameters to the optimum over the new training set
    bar.update()
    bar.set_description("forget_sources: Newton update")
    t2 = time.perf_counter()
    new = _newton_refit(model, X1, ya1, tol=tol, max_steps=max_steps, removed=len(removed) + len(changed))
    t_up = time.perf_counter() - t2
    report = {
        "source_rows_dropped": {k: int(v.size) for k, v in dropped.items()},
        "training_rows": {"before": int(n0), "after": int(n1), "removed": int(removed.size),
                          "changed": int(changed.size), "changed_by_lineage": int(changed_lineage.size),
                          "changed_by_value_only": int(value_only.size)},
        "anchor": a_name,
        "lineage_check": {
            "removed_rows_fed_by_dropped_rows": bool(np.isin(removed, affected).all()
                                                     or a_name not in dropped),
            "changed_by_lineage_but_equal_values": int(np.setdiff1d(changed_lineage, changed_values).size),
            "changed_by_value_only": value_only.tolist()[:50],
            "note": ("rows whose values changed with no lineage path from a dropped row: scalars computed from a "
                     "whole column (such as a median used to fill gaps) are constants in the lineage") if
            value_only.size else "",
        },
        "seconds": {"etl": t_etl0, "etl_again": t_etl1, "update": t_up},
        "certificate": new.certificate,
    }
    bar.update()
    if check:
        from sklearn.base import clone

        from .comparison import compare
        bar.set_description("forget_sources: retraining, to compare")
        t3 = time.perf_counter()
        retrained = clone(model).fit(model_input(X1), ya1)
        t_re = time.perf_counter() - t3
        rep = compare(new, model, retrained, model_input(X1), ya1, times={"unlearn": t_up, "retrain": t_re})
        report["retrained"] = {"param_distance": rep.param_distance, "test_kl_on_new_training_set": rep.test_kl,
                               "seconds": t_re}
        report["seconds"]["retrain"] = t_re
        bar.update()
    return ForgetSourcesResult(removed_rows=removed, changed_rows=changed, model=new, X=X1, y=y1,
                               dropped=dropped, report=report)


def _newton_refit(model, X, y, tol=None, max_steps=30, removed=0):
    """A copy of ``model`` moved by Newton steps to the optimum of its objective over (X, y)."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline
    t0 = time.perf_counter()
    new = clone_fitted(model)
    if isinstance(model, Pipeline):
        fitted = clone(model[:-1]).fit(model_input(X), y)
        new.steps[:-1] = fitted.steps
        F = np.asarray(fitted.transform(model_input(X)), np.float64)
        est = new[-1]
    else:
        F = np.asarray(model_input(X), np.float64)
        est = new
    if not np.isfinite(F).all():
        raise ValueError("the new training matrix has NaN or infinite values")
    obj = Objective(est, F, y)
    theta0 = obj.theta()
    rows = np.arange(F.shape[0])
    try:
        theta, hist, steps = newton_fit(obj, theta0, rows, tol=tol, max_steps=max_steps)
    except FloatingPointError as e:
        raise ValueError(f"{e}: retrain the model on the new training set") from None
    obj.set_theta(est, theta)
    new.certificate = Certificate(method="newton", removed=int(removed), residual=float(hist[-1]),
                                  residual_relative=float(hist[-1] / hist[0]) if hist[0] > 0 else 0.0,
                                  steps=int(steps), seconds=time.perf_counter() - t0,
                                  history=[float(h) for h in hist])
    return new
