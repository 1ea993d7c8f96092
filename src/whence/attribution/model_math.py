"""The model math that attribution and unlearning share: one home for each formula.

- **Which model it is**: :func:`describe_model` names a fitted scikit-learn estimator's objective (its kind and
  settings: regularisation, class weights) or raises :class:`~whence.errors.UnsupportedModelError`.
- **Link functions**: :func:`sigmoid`, :func:`softmax`, and :func:`correct_class_margin` (the attributed output
  of a classifier, ``z_y - logsumexp_{c != y} z_c``).
- **Hessians**: :func:`weighted_gram` (``X^T diag(c) X``, the Hessian of a one-output loss with curvature ``c``),
  :func:`multinomial_hessian` (the softmax loss) and :func:`symmetric_solver` (Cholesky, or the pseudo-inverse
  on singular directions).
- **Inputs**: :func:`float64_values` (the features as float64), :func:`model_input` (what the model's own
  ``fit``/``transform`` sees), :func:`as_rows`, :func:`count_rows`, :func:`has_lineage`.
- **Estimators**: :func:`model_name`, :func:`set_random_state`.

:mod:`whence.attribution.influence` (exact influence), :mod:`whence.unlearn` (Newton removal) and the
counterfactual effects use these; no second copy of a formula lives elsewhere in the package.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedModelError

__all__ = ["describe_model", "sigmoid", "softmax", "correct_class_margin", "weighted_gram", "multinomial_hessian",
           "symmetric_solver", "float64_values", "model_input", "as_rows", "count_rows", "has_lineage",
           "model_name", "set_random_state", "UnsupportedModelError", "CLASSIFIER_KINDS"]

#: the kinds of :func:`describe_model` whose output is a class margin (the others are regressions)
CLASSIFIER_KINDS = ("logistic", "sgd_log")


# --------------------------------------------------------------------------------------------- the estimator

def describe_model(est):
    """The objective of a fitted final estimator: ``(kind, settings)``.

    Parameters
    ----------
    est : fitted scikit-learn estimator (not a pipeline: its last step)

    Returns
    -------
    kind : str
        ``"logistic"``, ``"sgd_log"``, ``"sgd_sq"``, ``"ridge"`` or ``"linear"``.
    settings : dict
        ``reg`` and ``reg_b`` (logistic: the L2 weight ``1/C`` and liblinear's penalty on the intercept),
        ``alpha`` (ridge and SGD), ``class_weight`` (classifiers).

    Raises
    ------
    UnsupportedModelError
        For a model or setting with no smooth loss or no closed-form Hessian, naming what to use instead.
    """
    from sklearn.linear_model import (LinearRegression, LogisticRegression, Ridge, SGDClassifier,
                                      SGDRegressor)
    cls = type(est).__name__
    if isinstance(est, LogisticRegression):
        p = est.get_params()
        pen = p.get("penalty", "l2")
        l1 = p.get("l1_ratio")
        C = float(p.get("C", 1.0))
        if pen in ("deprecated", None, "none") or pen is None:
            if pen in (None, "none"):
                C = np.inf
            elif l1 not in (None, 0, 0.0):
                raise UnsupportedModelError(
                    f"LogisticRegression with l1_ratio={l1} has an L1 part: its objective has no Hessian; refit "
                    f"with l1_ratio=0 (L2) or C=np.inf (no penalty) to attribute it")
        elif pen != "l2":
            raise UnsupportedModelError(f"LogisticRegression with penalty={pen!r} has no Hessian; use 'l2'")
        mc = p.get("multi_class", "auto")
        if len(est.classes_) > 2 and mc == "ovr":
            raise UnsupportedModelError("LogisticRegression(multi_class='ovr') is not supported; use the default "
                                        "(multinomial)")
        reg = 0.0 if not np.isfinite(C) else 1.0 / C
        liblinear = p.get("solver") == "liblinear"
        return "logistic", {"reg": reg, "reg_b": (reg / float(p.get("intercept_scaling", 1.0)) ** 2
                                                 if liblinear and est.fit_intercept else 0.0),
                            "class_weight": p.get("class_weight")}
    if isinstance(est, SGDClassifier):
        p = est.get_params()
        if p["loss"] not in ("log_loss", "log"):
            raise UnsupportedModelError(f"SGDClassifier(loss={p['loss']!r}) has no smooth loss; use loss='log_loss'")
        if p["penalty"] not in ("l2", None):
            raise UnsupportedModelError(f"SGDClassifier(penalty={p['penalty']!r}) has no Hessian; use 'l2'")
        if len(est.classes_) > 2:
            raise UnsupportedModelError("a multiclass SGDClassifier (one-vs-rest) is not supported; use "
                                        "LogisticRegression for several classes")
        return "sgd_log", {"alpha": float(p["alpha"]) if p["penalty"] == "l2" else 0.0,
                           "class_weight": p.get("class_weight")}
    if isinstance(est, SGDRegressor):
        p = est.get_params()
        if p["loss"] != "squared_error":
            raise UnsupportedModelError(f"SGDRegressor(loss={p['loss']!r}) is not supported; use 'squared_error'")
        if p["penalty"] not in ("l2", None):
            raise UnsupportedModelError(f"SGDRegressor(penalty={p['penalty']!r}) has no Hessian; use 'l2'")
        return "sgd_sq", {"alpha": float(p["alpha"]) if p["penalty"] == "l2" else 0.0}
    if isinstance(est, Ridge):
        if np.ndim(est.alpha) > 0:
            raise UnsupportedModelError("Ridge with one alpha per target is not supported")
        if np.ndim(est.coef_) > 1 and est.coef_.shape[0] > 1:
            raise UnsupportedModelError("Ridge with several targets is not supported")
        return "ridge", {"alpha": float(est.alpha)}
    if isinstance(est, LinearRegression):
        if np.ndim(est.coef_) > 1 and est.coef_.shape[0] > 1:
            raise UnsupportedModelError("LinearRegression with several targets is not supported")
        return "linear", {}
    raise UnsupportedModelError(
        f"{cls} is not supported for exact attribution: whence covers LogisticRegression, LinearRegression, Ridge, "
        f"SGDClassifier(loss='log_loss'), SGDRegressor(loss='squared_error') and Pipelines ending in them; for "
        f"torch models use Attributor.torch(...)")


def model_name(model):
    """``"StandardScaler -> LogisticRegression"`` for a pipeline, the class name otherwise."""
    steps = getattr(model, "steps", None)
    if steps:
        return " -> ".join(type(est).__name__ for _, est in steps)
    return type(model).__name__


def set_random_state(model, seed):
    """Set every ``random_state`` parameter of ``model`` (and of a pipeline's steps) to ``seed``, in place."""
    params = model.get_params()
    upd = {k: int(seed) for k in params if k == "random_state" or k.endswith("__random_state")}
    if upd:
        model.set_params(**upd)


# --------------------------------------------------------------------------------------------- link functions

def sigmoid(z):
    """The logistic function ``1 / (1 + exp(-z))``, computed as ``(1 + tanh(z / 2)) / 2`` (no overflow)."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def softmax(Z):
    """Row-wise softmax of logits ``Z`` (n, K), shifted by each row's maximum (no overflow)."""
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def correct_class_margin(Z, y):
    """The correct-class margin of each row: ``z_y - logsumexp_{c != y} z_c`` for logits ``Z`` (n, K) and class
    indices ``y``; for one logit (binary), ``z`` for class 1 and ``-z`` for class 0."""
    n, K = Z.shape
    if K == 1:
        return np.where(y == 1, Z[:, 0], -Z[:, 0])
    zy = Z[np.arange(n), y]
    Zo = Z.copy()
    Zo[np.arange(n), y] = -np.inf
    mx = Zo.max(axis=1)
    return zy - (mx + np.log(np.exp(Zo - mx[:, None]).sum(axis=1)))


# --------------------------------------------------------------------------------------------- Hessians

def weighted_gram(X1, c):
    """``X1^T diag(c) X1``: the Hessian of a one-output loss whose row ``i`` has curvature ``c[i]`` (weights
    included), for the design matrix ``X1`` (n, p)."""
    return (X1 * c[:, None]).T @ X1


def multinomial_hessian(X1, w, P):
    """The softmax loss Hessian ``sum_i w_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T``, parameters ordered class by
    class (``(K p, K p)`` for ``X1`` (n, p) and probabilities ``P`` (n, K))."""
    K, p = P.shape[1], X1.shape[1]
    H = np.zeros((K * p, K * p))
    for a in range(K):
        for c in range(a, K):
            cw = w * P[:, a] * ((a == c) - P[:, c])
            blk = (X1 * cw[:, None]).T @ X1
            H[a * p:(a + 1) * p, c * p:(c + 1) * p] = blk
            if c != a:
                H[c * p:(c + 1) * p, a * p:(a + 1) * p] = blk.T
    return H


def symmetric_solver(H, min_pivot_ratio=1e-7):
    """A solver ``b -> H^-1 b`` for a symmetric ``H``.

    Cholesky when ``H`` is positive definite and its factor's smallest diagonal entry is above
    ``min_pivot_ratio`` times its largest (a near-singular factor would amplify noise); the pseudo-inverse
    otherwise (singular directions, such as adding one constant to every class's intercept, carry no influence).
    """
    import scipy.linalg
    try:
        c = scipy.linalg.cho_factor(H, lower=True, check_finite=False)
        dg = np.abs(np.diag(c[0]))
        if dg.min() > min_pivot_ratio * dg.max():
            return lambda B: scipy.linalg.cho_solve(c, B, check_finite=False)
    except np.linalg.LinAlgError:
        pass
    Hp = scipy.linalg.pinvh(H)
    return lambda B: Hp @ B


# --------------------------------------------------------------------------------------------- inputs

def float64_values(X):
    """The values of an array, tracked array, frame or sparse matrix as a dense float64 ndarray (a copy)."""
    try:
        import scipy.sparse as sp
        if sp.issparse(X):
            return X.toarray().astype(np.float64)
    except ImportError:  # pragma: no cover
        pass
    return np.array(np.asarray(X), dtype=np.float64)


def model_input(X):
    """What the model's own ``transform``/``fit`` should see: a DataFrame stays a DataFrame (plain pandas, its
    lineage left behind), arrays become plain ndarrays."""
    try:
        import pandas as pd
        if isinstance(X, (pd.DataFrame, pd.Series)):
            from ..tabular.frame import untracked
            return untracked(X) if type(X) not in (pd.DataFrame, pd.Series) else type(X)(X)
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(X)


def as_rows(x):
    """Test input as rows the model accepts: a Series (one row of a frame) becomes a one-row DataFrame with
    its column names, a 1-D array one row; DataFrames, sparse matrices and 2-D arrays stay as they are."""
    try:
        import pandas as pd
        if isinstance(x, pd.Series):
            return pd.DataFrame([pd.Series(x).to_numpy()], columns=x.index).infer_objects()
        if isinstance(x, pd.DataFrame):
            return x
    except ImportError:  # pragma: no cover
        pass
    try:
        import scipy.sparse as sp
        if sp.issparse(x):
            return x
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(x)
    return a.reshape(1, -1) if a.ndim == 1 else a


def count_rows(X):
    """The number of rows of an array, frame or sequence."""
    return X.shape[0] if hasattr(X, "shape") else len(X)


def has_lineage(X):
    """Whether ``X`` carries lineage (a tracked array, or an object a node resolver knows: tracked frames, model
    outputs, store handles)."""
    from ..query import resolve_node
    from ..tracked import TrackedArray
    return isinstance(X, TrackedArray) or resolve_node(X) is not None
