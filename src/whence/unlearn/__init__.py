"""Unlearning: remove training rows (or source rows, through the lineage) from a fitted model, and compare the
result with retraining.

>>> from whence.unlearn import forget, forget_sources, compare
"""

from __future__ import annotations

import math

import numpy as np

from ..attribution.model_math import describe_model, float64_values, model_input
from .newton import Certificate, Objective, UnsupportedModelError, clone_fitted, newton_fit, now

__all__ = ["forget", "forget_sources", "compare", "Certificate", "UnsupportedModelError"]


def _check_rows(rows, n):
    r = np.asarray(rows)
    if r.dtype == bool:
        if r.shape != (n,):
            raise ValueError(f"a boolean rows mask must have one entry per training row ({n}), got {r.shape}")
        r = np.flatnonzero(r)
    if r.size and r.dtype.kind not in "iu":
        raise ValueError(f"rows must be integer positions, got dtype {r.dtype}")
    r = r.astype(np.int64).reshape(-1)
    bad = r[(r < 0) | (r >= n)]
    if bad.size:
        raise IndexError(f"rows {bad[:5].tolist()} are out of range for {n} training rows")
    u, c = np.unique(r, return_counts=True)
    if (c > 1).any():
        raise ValueError(f"rows {u[c > 1][:5].tolist()} are given more than once")
    return u


def _split(model):
    from sklearn.pipeline import Pipeline
    return (model[:-1], model[-1]) if isinstance(model, Pipeline) else (None, model)


def _take(X, idx):
    X = X if hasattr(X, "iloc") else np.asarray(X)
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def forget(model, X_train, y_train, rows, method="newton", *, sample_weight=None, epsilon=1.0, delta=1e-5,
           sigma=None, tol=None, max_steps=20, seed=0):
    """A new model that behaves as if trained without the training rows ``rows`` (the old one is untouched).

    Parameters
    ----------
    model : fitted scikit-learn model (the families of :class:`whence.attribution.Attributor`)
    X_train, y_train : the data it was fitted on (``X_train`` may be tracked; only its values are used)
    rows : int array or boolean mask
        The training rows to remove.
    method : ``"newton"`` or ``"certified"``
        ``"newton"``: Newton steps with the exact Hessian of the remaining rows' objective until its gradient
        vanishes (to ``tol``).  ``"certified"``: Guo et al. (2020) certified removal: the objective carries a
        random linear perturbation ``b^T theta`` (added now, by moving the model to its perturbed optimum, if
        the model was not trained with one), one Newton step removes the rows, and the gradient residual is
        charged to the budget ``sigma * epsilon / sqrt(2 log(1.5 / delta))``; ``certificate.exceeded`` says
        when the caller must retrain.
    sample_weight : array (n,), optional
        The weights the model was fitted with.
    epsilon, delta, sigma : certified removal's parameters (``sigma``: the perturbation's scale; default 1).

    Returns
    -------
    model
        A deep copy with new parameters, and a :class:`Certificate` in ``.certificate``.  For a pipeline, the
        steps before the estimator are fitted again on the remaining rows (they are closed-form and cheap),
        then the estimator is updated by Newton steps in the new feature space.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4)); y = (X[:, 0] + rng.normal(size=300) > 0).astype(int)
    >>> m = LogisticRegression(tol=1e-10).fit(X, y)
    >>> new = forget(m, X, y, rows=range(30))
    >>> retrained = LogisticRegression(tol=1e-10).fit(X[30:], y[30:])
    >>> bool(np.abs(new.coef_ - retrained.coef_).max() < 1e-6), new.certificate.residual < 1e-8
    (True, True)
    """
    t0 = now()
    if method not in ("newton", "certified"):
        raise ValueError(f"method must be 'newton' or 'certified', got {method!r}")
    pre, est = _fitted_parts(model)
    y = np.asarray(y_train).reshape(-1)
    n = y.shape[0]
    Xraw = X_train if hasattr(X_train, "iloc") else np.asarray(X_train)
    if Xraw.shape[0] != n:
        raise ValueError(f"X_train has {Xraw.shape[0]} rows but y_train has {n}")
    rows = _check_rows(rows, n)
    if rows.size == 0:  # nothing to remove: the same model, untouched
        new = clone_fitted(model)
        new.certificate = Certificate(method=method, removed=0, residual=0.0, residual_relative=0.0, steps=0,
                                      seconds=now() - t0, note="no rows to remove")
        return new
    keep = _remaining_rows(est, y, rows)
    sw = None if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(-1)
    new = clone_fitted(model)
    new_pre, new_est = _split(new)
    if pre is not None:
        # the steps before the estimator are fitted again on the remaining rows
        from sklearn.base import clone
        fitted = clone(pre).fit(model_input(_take(Xraw, keep)), y[keep])
        new.steps[:-1] = fitted.steps
        F = np.asarray(fitted.transform(model_input(_take(Xraw, keep))), np.float64)
        obj = Objective(est, F, y[keep], None if sw is None else sw[keep])
        rows_obj = np.arange(keep.size)
    else:
        F = _features(Xraw, est)
        obj = Objective(est, F, y, sw)
        rows_obj = keep
    theta0 = obj.theta()
    cert_kw = {}
    if method == "certified":
        theta, hist, steps, g_nothing, cert_kw = _certified_removal(
            obj, theta0, rows_obj, getattr(model, "certificate", None), refit_all=np.arange(n) if pre is None
            else None, epsilon=epsilon, delta=delta, sigma=sigma, seed=seed, tol=tol, max_steps=max_steps)
    else:
        theta, hist, steps, g_nothing = _newton_removal(
            model, obj, F, y, theta0, rows, rows_obj, keep.size, downdate=pre is None, tol=tol, max_steps=max_steps)
    resid = hist[-1]
    obj.set_theta(new_est, theta)
    cert = Certificate(method=method, removed=int(rows.size), residual=float(resid),
                       residual_relative=float(resid / g_nothing) if g_nothing > 0 else 0.0, steps=int(steps),
                       seconds=now() - t0, history=[float(h) for h in hist], **cert_kw)
    if method == "certified":
        cert._b = obj.b
        if cert.exceeded:
            import warnings
            warnings.warn(f"certified removal: the accumulated gradient residual {cert.spent:.3g} exceeds the "
                          f"budget {cert.budget:.3g} for epsilon={epsilon}, delta={delta}: retrain the model",
                          RuntimeWarning, stacklevel=2)
    new.certificate = cert
    return new


def _fitted_parts(model):
    """``(preprocessing or None, final estimator)`` of a fitted model whose estimator whence can update, or raise
    :class:`UnsupportedModelError` (before anything else is done)."""
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise UnsupportedModelError(f"the model {type(model).__name__} is not fitted") from None
    pre, est = _split(model)
    describe_model(est)  # an unsupported model is named before anything else is done
    return pre, est


def _remaining_rows(est, y, rows):
    """The training rows left after removing ``rows``; a ValueError when none is left, or a class is gone."""
    keep = np.setdiff1d(np.arange(y.shape[0]), rows)
    if keep.size == 0:
        raise ValueError("removing every training row leaves nothing to fit: nothing was unlearned")
    if hasattr(est, "classes_") and len(np.unique(y[keep])) < len(est.classes_):
        gone = sorted(set(est.classes_.tolist()) - set(np.unique(y[keep]).tolist()))
        raise ValueError(f"after removing these rows no training row of class {gone} remains: the model cannot be "
                         f"fitted again with the same classes; retrain it on the remaining rows")
    return keep


def _certified_removal(obj, theta0, rows_obj, prev, *, refit_all, epsilon, delta, sigma, seed, tol, max_steps):
    """Guo et al.'s certified removal: one Newton step on the perturbed objective over ``rows_obj``.

    The perturbation ``b`` is the previous certified update's (``prev``) or a new one; with a new one the model
    first moves to the perturbed optimum over the rows ``refit_all`` (None: it is already there, as for a
    pipeline whose features were fitted again).  Returns ``(theta, history, steps, residual of doing nothing,
    the certificate's budget fields)``.
    """
    c = math.sqrt(2 * math.log(1.5 / delta))
    if prev is not None and prev.method == "certified" and getattr(prev, "_b", None) is not None:
        b, sig, spent = prev._b, prev.sigma, prev.spent
    else:
        sig = 1.0 if sigma is None else float(sigma)
        b = np.random.default_rng(seed).normal(0.0, sig, size=theta0.size)
        spent = 0.0
        # the model as if trained with the perturbation: its perturbed optimum over all rows
        obj.b = b
        if refit_all is not None:
            theta0, _, _ = newton_fit(obj, theta0, refit_all, tol=tol, max_steps=max_steps)
    obj.b = b
    g_nothing = float(np.linalg.norm(obj.grad(theta0, rows_obj)))
    theta, hist, steps = newton_fit(obj, theta0, rows_obj, tol=0.0, max_steps=1)
    resid = hist[-1]
    budget = sig * epsilon / c
    spent = spent + resid
    cert_kw = dict(sigma=sig, epsilon=epsilon, delta=delta, budget=budget, spent=spent, bound=resid,
                   exceeded=spent > budget)
    return theta, hist, steps, g_nothing, cert_kw


def _newton_removal(model, obj, F, y, theta0, rows, rows_obj, n_keep, *, downdate, tol, max_steps):
    """Newton steps to the optimum of the objective over ``rows_obj``; with ``downdate`` the first step's
    Hessian and gradient are the full data's (kept per model) less the removed ``rows``' ones.  Returns
    ``(theta, history, steps, residual of doing nothing)``."""
    H = g = None
    if downdate and obj.settings.get("class_weight") != "balanced":
        # down-date the full data's loss Hessian and gradient (kept per model) by the removed rows: the
        # first step costs O(removed rows), not a pass over every row
        gl, Hl = _full_loss_parts(model, obj, F, y, theta0)
        gF, HF = obj.loss_parts(theta0, rows)
        lam = obj.reg(n_keep)
        H = Hl - HF + np.diag(lam)
        g = gl - gF + lam * theta0
    g_nothing = float(np.linalg.norm(obj.grad(theta0, rows_obj))) if g is None else float(np.linalg.norm(g))
    try:
        theta, hist, steps = newton_fit(obj, theta0, rows_obj, tol=tol, max_steps=max_steps, H=H, g=g)
    except FloatingPointError as e:
        raise ValueError(f"{e}: retrain the model on the remaining rows") from None
    return theta, hist, steps, g_nothing


_FULL = None


def _full_loss_parts(model, obj, F, y, theta):
    """The loss gradient and Hessian over all training rows at the model's parameters, computed once per model
    and training set (a cheap fingerprint of the features, labels and parameters guards against reuse on other
    data)."""
    import weakref
    global _FULL
    if _FULL is None:
        _FULL = weakref.WeakKeyDictionary()
    probe = np.random.default_rng(12345).standard_normal(F.shape[1])
    key = (F.shape, float((F @ probe).sum()), float(np.abs(F).sum()), hash(np.asarray(y).tobytes()),
           theta.tobytes(), None if obj.sw is None else hash(obj.sw.tobytes()))
    try:
        hit = _FULL.get(model)
    except TypeError:  # not weak-referenceable
        hit = None
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    g, H = obj.loss_parts(theta, np.arange(F.shape[0]))
    try:
        _FULL[model] = (key, g, H)
    except TypeError:
        pass
    return g, H


def _features(X, est):
    F = float64_values(X)
    if F.ndim != 2 or F.shape[1] != np.atleast_2d(est.coef_).shape[1]:
        raise ValueError(f"X_train has shape {F.shape}; the model has {np.atleast_2d(est.coef_).shape[1]} features")
    if not np.isfinite(F).all():
        bad = np.argwhere(~np.isfinite(F))[0]
        raise ValueError(f"X_train has a NaN or infinite value at row {bad[0]}, column {bad[1]}")
    return F


def forget_sources(*args, **kwargs):
    """Forget source rows through the lineage; see :func:`whence.unlearn.source_removal.forget_sources`."""
    from .source_removal import forget_sources as f
    return f(*args, **kwargs)


def compare(*args, **kwargs):
    """Judge an unlearned model against the original and a retrained one; see
    :func:`whence.unlearn.comparison.compare`."""
    from .comparison import compare as f
    return f(*args, **kwargs)
