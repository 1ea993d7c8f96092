"""Judging an unlearned model against the original and a model retrained without the forgotten rows.

Every figure is bounded or says which way it errs:

* ``param_distance``: ``||theta_u - theta_r|| / ||theta_o - theta_r||``: 0 is the retrained model, 1 is doing
  nothing, above 1 is worse than doing nothing;
* ``test_kl``: mean over test points of KL(retrained || unlearned) of the predicted class distributions
  (classifiers), or the mean squared difference of predictions (regressors);
* accuracy (or R^2) and loss on the test set and on the forget set, for the three models;
* ``forget_gap``: where the unlearned model's forget-set loss lies between the original's (0) and the
  retrained model's (1).  ``forget_gap_closed`` clips it to [0, 1]; ``overshoot`` is how far past the retrained
  model it went (a "gap closed" above 100 % is an overshoot, never a success);
* ``mia_advantage``: a loss-threshold membership-inference attack telling forget-set rows from test rows:
  ``max_t |TPR - FPR|`` (0: indistinguishable), for each model; the retrained model's is the floor to reach.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["compare", "ComparisonReport"]


@dataclass
class ComparisonReport:
    """The figures of :func:`compare` (see the module)."""

    param_distance: float
    test_kl: float
    test: dict
    forget: dict
    forget_gap: float | None
    forget_gap_closed: float | None
    overshoot: float | None
    mia_advantage: dict
    seconds: dict = field(default_factory=dict)
    classifier: bool = True

    def as_dict(self):
        return asdict(self)

    def result_document(self):
        """``("unlearning", document)``: what :func:`whence.save` stores for this report (see
        :mod:`whence.store.results`)."""
        from ..attribution.explain import json_ready
        figures = {"param_distance_to_retrained": self.param_distance, "kl_retrained_vs_unlearned": self.test_kl}
        for part in ("test", "forget"):
            for metric, by_model in getattr(self, part).items():
                for m, v in by_model.items():
                    figures[f"{part}_{metric}_{m}"] = v
        for kk, v in (self.seconds or {}).items():
            figures[f"{kk}_seconds"] = v
        if self.forget_gap_closed is not None:
            figures["forget_gap_closed"] = self.forget_gap_closed
        return "unlearning", json_ready({"method": "comparison with retraining", "n_forgotten": None,
                                         "figures": figures, "detail": asdict(self)})

    def _repr_html_(self):
        from ..notebook import unlearning_html
        return unlearning_html(self)

    def __repr__(self):
        lines = ["Unlearning report (0 = retrained, 1 = did nothing):",
                 f"  parameter distance to retrained, relative   {self.param_distance:.3g}",
                 f"  test {'KL(retrained || unlearned)' if self.classifier else 'mean squared difference'}"
                 f"   {self.test_kl:.3g}"]
        for name, d in (("test", self.test), ("forget", self.forget)):
            lines.append(f"  {name:<6} " + "  ".join(f"{k}: " + " / ".join(f"{m} {v:.4g}" for m, v in d[k].items())
                                                   for k in d))
        if self.forget_gap is not None:
            lines.append(f"  forget-loss gap closed {self.forget_gap_closed:.3f}"
                         + (f" (OVERSHOOT by {self.overshoot:.3f}: past the retrained model)" if self.overshoot
                            else ""))
        lines.append("  membership advantage on the forget set: " + ", ".join(
            f"{k} {v:.3f}" for k, v in self.mia_advantage.items()))
        if self.seconds:
            lines.append("  seconds: " + ", ".join(f"{k} {v:.4g}" for k, v in self.seconds.items()))
        return "\n".join(lines)


def _params(model):
    from sklearn.pipeline import Pipeline
    est = model[-1] if isinstance(model, Pipeline) else model
    coef = np.atleast_2d(np.asarray(est.coef_, np.float64))
    b = np.atleast_1d(np.asarray(getattr(est, "intercept_", 0.0), np.float64))
    return np.concatenate([coef.ravel(), b.ravel()])


def _probs(model, X):
    return np.clip(np.asarray(model.predict_proba(X), np.float64), 1e-300, 1.0)


def _losses(model, X, y, classifier):
    if classifier:
        P = _probs(model, X)
        idx = np.searchsorted(model.classes_, y)
        return -np.log(P[np.arange(len(y)), idx])
    return (np.asarray(model.predict(X), np.float64) - y) ** 2


def _mia(loss_forget, loss_test):
    """Best threshold attack on the loss: forget rows (members) have lower loss; max |TPR - FPR|."""
    if not len(loss_forget) or not len(loss_test):
        return float("nan")
    v = np.concatenate([loss_forget, loss_test])
    lab = np.concatenate([np.ones(len(loss_forget)), np.zeros(len(loss_test))])
    order = np.argsort(v, kind="mergesort")
    lab = lab[order]
    tpr = np.cumsum(lab) / len(loss_forget)
    fpr = np.cumsum(1 - lab) / len(loss_test)
    return float(np.max(np.abs(tpr - fpr)))


def compare(unlearned, original, retrained, X_test, y_test, forget=None, *, times=None):
    """Compare an unlearned model with the original and the retrained one.

    Parameters
    ----------
    unlearned, original, retrained : fitted models of the same family
    X_test, y_test : held-out data
    forget : (X_f, y_f), optional
        The forgotten rows (for the forget-set figures and the membership-inference advantage).
    times : dict, optional
        Wall times to report (for example ``{"unlearn": s, "retrain": s}``); the unlearned model's own
        certificate time is used when present.

    Returns
    -------
    ComparisonReport
    """
    from sklearn.base import is_classifier
    classifier = is_classifier(original)
    models = {"unlearned": unlearned, "original": original, "retrained": retrained}
    th = {k: _params(m) for k, m in models.items()}
    if len({v.shape for v in th.values()}) != 1:
        raise ValueError("the three models have different parameter shapes: they must be the same family")
    denom = np.linalg.norm(th["original"] - th["retrained"])
    dist = float(np.linalg.norm(th["unlearned"] - th["retrained"]) / denom) if denom > 0 else (
        0.0 if np.allclose(th["unlearned"], th["retrained"]) else float("inf"))
    y_test = np.asarray(y_test).reshape(-1)
    if classifier:
        Pr, Pu = _probs(retrained, X_test), _probs(unlearned, X_test)
        kl = float(np.mean(np.sum(Pr * (np.log(Pr) - np.log(Pu)), axis=1)))
        kl = max(kl, 0.0)  # KL is never negative: a value like -1e-18 is rounding of identical distributions
    else:
        kl = float(np.mean((np.asarray(retrained.predict(X_test)) - np.asarray(unlearned.predict(X_test))) ** 2))

    def figures(X, y):
        out = {"accuracy" if classifier else "r2": {}, "loss": {}}
        for k, m in models.items():
            out["accuracy" if classifier else "r2"][k] = float(m.score(X, y))
            out["loss"][k] = float(np.mean(_losses(m, X, y, classifier)))
        return out

    test = figures(X_test, y_test)
    fg = {}
    gap = closed = over = None
    mia = {}
    if forget is not None:
        Xf, yf = forget
        yf = np.asarray(yf).reshape(-1)
        fg = figures(Xf, yf)
        lo, lr, lu = fg["loss"]["original"], fg["loss"]["retrained"], fg["loss"]["unlearned"]
        if abs(lr - lo) > 1e-15:
            gap = float((lu - lo) / (lr - lo))
            closed = float(min(max(gap, 0.0), 1.0))
            over = float(max(gap - 1.0, 0.0))
        for k, m in models.items():
            mia[k] = _mia(_losses(m, Xf, yf, classifier), _losses(m, X_test, y_test, classifier))
    secs = dict(times or {})
    cert = getattr(unlearned, "certificate", None)
    if cert is not None and "unlearn" not in secs:
        secs["unlearn"] = float(cert.seconds)
    if "unlearn" in secs and "retrain" in secs and secs["retrain"] > 0:
        secs["ratio"] = secs["unlearn"] / secs["retrain"]
    return ComparisonReport(param_distance=dist, test_kl=kl, test=test, forget=fg, forget_gap=gap,
                            forget_gap_closed=closed, overshoot=over, mia_advantage=mia, seconds=secs,
                            classifier=classifier)
