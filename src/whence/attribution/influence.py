"""Exact influence functions for scikit-learn models with a closed-form Hessian.

For a model fitted by minimising ``sum_i w_i l(z_i, theta) + R(theta)`` (the model's own loss, sample and class
weights, and regularisation), including training row ``i`` moves the output ``f(x)`` of a test point by, to first
order,

    score(x, i) = f(theta) - f(theta without i)  ~=  - grad f(x)^T H^-1 grad l_i

where ``H`` is the Hessian of the whole objective at the fitted parameters.  ``f`` is the correct-class margin
(log-odds of the true class against the others) for classifiers and the prediction for regressors.  Scores
are positive for rows that raised the output.

Covered: ``LogisticRegression`` (binary and multinomial, L2 or no penalty, ``class_weight``, liblinear's
penalised intercept), ``LinearRegression``, ``Ridge``, ``SGDClassifier`` (binary, ``log_loss``, L2) and
``SGDRegressor`` (``squared_error``, L2), and :class:`~sklearn.pipeline.Pipeline` objects ending in one of them
(the steps before the estimator are taken as fixed feature maps).
"""

from __future__ import annotations

import numpy as np
from .._extras import require

require("whence.attribution.Attributor", "sklearn")

import scipy.linalg  # noqa: E402

from ..errors import UnsupportedModelError
from .explain import Explanation

__all__ = ["Attributor", "UnsupportedModelError"]


def _plain(X):
    """Plain float64 values of an array, tracked array, frame or store-free object."""
    try:
        import scipy.sparse as sp
        if sp.issparse(X):
            return X.toarray().astype(np.float64)
    except ImportError:  # pragma: no cover
        pass
    return np.array(np.asarray(X), dtype=np.float64)


def _has_lineage(X):
    from ..query import resolve_node as _other_node
    from ..tracked import TrackedArray
    return isinstance(X, TrackedArray) or _other_node(X) is not None


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softmax(Z):
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def _describe(est):
    """(kind, settings) of a fitted final estimator, or raise UnsupportedModelError."""
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


class Attributor:
    """Attribute a fitted model's outputs to its training rows, exactly (influence function).

    Parameters
    ----------
    model : fitted scikit-learn estimator or Pipeline
    X_train : array-like (n, d)
        The training matrix the model was fitted on (a :class:`whence.TrackedArray`, tracked frame or store
        handle keeps its lineage, so that explanations reach source rows and files).
    y_train : array-like (n,)
    sample_weight : array-like (n,), optional
        The weights the model was fitted with (scikit-learn does not keep them).
    damping : float, default 0
        Added to the Hessian's diagonal (relative to its mean diagonal) when the objective has no
        regularisation of its own and the Hessian is singular.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
    >>> attr = Attributor(LogisticRegression().fit(X, y), X, y)
    >>> S = attr.scores(X[:5], y[:5])
    >>> S.shape, S.dtype
    ((5, 200), dtype('float32'))
    >>> ex = attr.explain(X[0], y[0])
    >>> ex.top(1)[0].row == int(np.argmax(S[0]))
    True
    """

    def __init__(self, model, X_train, y_train, *, sample_weight=None, damping=0.0):
        from sklearn.exceptions import NotFittedError
        from sklearn.pipeline import Pipeline
        from sklearn.utils.validation import check_is_fitted
        self.model = model
        self.pre, est = (model[:-1], model[-1]) if isinstance(model, Pipeline) else (None, model)
        try:
            check_is_fitted(model)
        except NotFittedError as e:
            raise UnsupportedModelError(f"the model {type(model).__name__} is not fitted: fit it before "
                                        f"attributing ({e})") from None
        except TypeError as e:
            raise UnsupportedModelError(f"{type(model).__name__} is not a scikit-learn estimator: {e}") from None
        self.estimator = est
        self.kind, self.settings = _describe(est)
        self.classifier = self.kind in ("logistic", "sgd_log")
        self.train = X_train if _has_lineage(X_train) else None
        self.X_train_raw = X_train
        self.y_train = np.asarray(y_train).reshape(-1)
        X = self._features(X_train, "X_train")
        n = X.shape[0]
        if self.y_train.shape[0] != n:
            raise ValueError(f"X_train has {n} rows but y_train has {self.y_train.shape[0]}")
        self.n_train = n
        self._user_sw = None if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(-1)
        w = np.ones(n) if sample_weight is None else self._user_sw
        if w.shape[0] != n:
            raise ValueError(f"sample_weight has {w.shape[0]} entries for {n} training rows")
        cw = self.settings.get("class_weight")
        if cw is not None:
            from sklearn.utils.class_weight import compute_sample_weight
            w = w * compute_sample_weight(cw, self.y_train)
        self.sample_weight = w
        self._prepare(X, damping)

    # ------------------------------------------------------------------ features and parameters
    def _features(self, X, what):
        X = _as_rows(X)
        Xp = _plain(X) if self.pre is None else _plain(self.pre.transform(_plain_input(X)))
        if Xp.ndim == 1:
            Xp = Xp.reshape(1, -1)
        if Xp.ndim != 2:
            raise ValueError(f"{what} must be 2-D, got shape {Xp.shape}")
        d = self._n_features()
        if Xp.shape[1] != d:
            raise ValueError(f"{what} has {Xp.shape[1]} features after preprocessing; the model has {d}")
        if not np.isfinite(Xp).all():
            bad = np.argwhere(~np.isfinite(Xp))[0]
            raise ValueError(f"{what} has a NaN or infinite value (row {bad[0]}, column {bad[1]} after "
                             f"preprocessing): impute it first")
        return Xp

    def _n_features(self):
        coef = np.atleast_2d(self.estimator.coef_)
        return coef.shape[1]

    def _design(self, X):
        """Features with the intercept column appended when the model has one."""
        if self.fit_intercept:
            return np.hstack([X, np.ones((X.shape[0], 1))])
        return X

    def _labels(self, y, what):
        y = np.asarray(y).reshape(-1)
        if not self.classifier:
            return y.astype(np.float64)
        classes = self.estimator.classes_
        idx = np.searchsorted(classes, y)
        idx = np.clip(idx, 0, len(classes) - 1)
        bad = classes[idx] != y
        if bad.any():
            raise ValueError(f"{what} has labels the model does not know: {sorted(set(y[bad].tolist()))[:5]} "
                             f"(classes {classes.tolist()})")
        return idx

    def _prepare(self, X, damping):
        est = self.estimator
        self.fit_intercept = bool(getattr(est, "fit_intercept", True))
        coef = np.atleast_2d(np.asarray(est.coef_, np.float64))
        b = np.atleast_1d(np.asarray(est.intercept_, np.float64)) if self.fit_intercept else \
            np.zeros(coef.shape[0])
        self.W = np.hstack([coef, b[:, None]]) if self.fit_intercept else coef  # (K, p)
        X1 = self._design(X)
        self.X1 = X1
        n, p = X1.shape
        y = self._labels(self.y_train, "y_train")
        self.y_idx = y
        w = self.sample_weight
        K = self.W.shape[0]
        self.K = K
        kind, s = self.kind, self.settings
        reg = np.zeros(p)
        Z = X1 @ self.W.T  # (n, K)
        if kind in ("logistic", "sgd_log") and K == 1:
            pr = _sigmoid(Z[:, 0])
            yb = (y == 1).astype(np.float64)
            self.R = (w * (pr - yb))[:, None]  # dl/dz, (n, 1)
            curv = w * pr * (1 - pr)
            H = (X1 * curv[:, None]).T @ X1
            if kind == "logistic":
                reg[: coef.shape[1]] = s["reg"]
                if self.fit_intercept:
                    reg[-1] = s["reg_b"]
            else:
                reg[: coef.shape[1]] = s["alpha"] * n
        elif kind == "logistic":
            P = _softmax(Z)
            Y = np.zeros_like(P)
            Y[np.arange(n), y] = 1
            self.R = w[:, None] * (P - Y)  # (n, K)
            H = multinomial_hessian(X1, w, P)
            reg = np.tile(reg, K)
            for a in range(K):
                reg[a * p: a * p + coef.shape[1]] = s["reg"]
                if self.fit_intercept:
                    reg[a * p + p - 1] = s["reg_b"]
        else:  # squared losses
            resid = Z[:, 0] - y
            if kind == "ridge":
                # ||y - Xw||^2 + alpha ||w||^2: gradient and Hessian carry a factor 2 on both terms; drop it
                self.R = (w * resid)[:, None]
                H = (X1 * w[:, None]).T @ X1
                reg[: coef.shape[1]] = s["alpha"]
            elif kind == "sgd_sq":
                self.R = (w * resid)[:, None]
                H = (X1 * w[:, None]).T @ X1
                reg[: coef.shape[1]] = s["alpha"] * n
            else:
                self.R = (w * resid)[:, None]
                H = (X1 * w[:, None]).T @ X1
        H = H + np.diag(reg)
        self._reg = reg
        if damping:
            H = H + np.eye(H.shape[0]) * damping * float(np.mean(np.diag(H)))
        self.H = H
        self._solve = _symmetric_solver(H)
        self._XT32 = self._nR32 = None
        self._cf_ctx = None
        self._cf_cache = {}

    # ------------------------------------------------------------------ outputs
    def outputs(self, X, y):
        """The attributed output of each row: correct-class margin (classifiers) or prediction (regressors)."""
        X1 = self._design(self._features(X, "X"))
        y = self._labels(y, "y")
        Z = X1 @ self.W.T
        return _margin(Z, y) if self.classifier else Z[:, 0]

    def _output_grads(self, X1, y):
        """d f / d theta for each row: (m, K * p)."""
        Z = X1 @ self.W.T
        m, p = X1.shape
        if not self.classifier:
            return X1.copy()
        if self.K == 1:
            s = np.where(y == 1, 1.0, -1.0)
            return X1 * s[:, None]
        # margin f = z_y - logsumexp_{c != y} z_c
        Zo = Z.copy()
        Zo[np.arange(m), y] = -np.inf
        Q = _softmax(Zo)  # weights of the other classes
        D = -Q
        D[np.arange(m), y] = 1.0
        return (D[:, :, None] * X1[:, None, :]).reshape(m, -1)

    def scores(self, X_test, y_test):
        """Effect of each training row on each test output: float32 (n_test, n_train).

        ``S[t, i] = -grad f_t^T H^-1 grad l_i``: positive when training row ``i`` raised output ``t``.
        """
        X1 = self._design(self._features(X_test, "X_test"))
        y = self._labels(y_test, "y_test")
        if y.shape[0] != X1.shape[0]:
            raise ValueError(f"X_test has {X1.shape[0]} rows but y_test has {y.shape[0]}")
        F = self._output_grads(X1, y)  # (m, K p)
        B = self._solve(F.T).T  # (m, K p): F H^-1
        p = self.X1.shape[1]
        if self._XT32 is None:
            self._XT32 = np.ascontiguousarray(self.X1.T, np.float32)  # (p, n)
            self._nR32 = np.ascontiguousarray(-self.R.T, np.float32)  # (K, n)
        out = None
        for a in range(self.K):
            Ba = np.ascontiguousarray(B[:, a * p:(a + 1) * p], np.float32)
            part = Ba @ self._XT32
            part *= self._nR32[a]
            out = part if out is None else out + part
        return out

    def explain(self, x, y, test_row=None):
        """The attribution of one test point (``x`` one row, ``y`` its label or target; ``test_row`` names it in
        reports).

        ``x`` is what the model accepts: an array row, a one-row DataFrame or a Series (a row of a frame) for
        a pipeline that selects columns by name; column names are kept.
        """
        X = _as_rows(x)
        yy = np.asarray(y).reshape(-1)
        s = self.scores(X, yy)[0]
        out = float(self.outputs(X, yy)[0])
        label = self._label_of(self._labels(yy, "y")[0]) if self.classifier else "prediction"
        ex = Explanation(s, train=self.train, output=out, label=label, test_row=test_row,
                         target=yy[0].item() if yy.size else None, model=_model_name(self.model))
        ex._source = (self, X, yy)
        return ex

    # ------------------------------------------------------------------ counterfactual effects of source rows
    def source_effects(self, X_test, y_test, tables=None, *, rows=None, etl=None, sources=None, target=None,
                       test_rows=None, progress=False):
        """The effect of deleting each source row on each test output, through the ETL.

        ``effect = f(with the row) - f(without it)`` (positive: the row raised the output), where deleting a row
        of the anchor table removes its training row and deleting a row that feeds an aggregate changes the
        aggregate in the training rows it fed (:mod:`whence.attribution.deletion`); the model's change is the
        influence step on the changed training rows.

        Parameters
        ----------
        X_test, y_test : what the model accepts (array, DataFrame; one row as a Series) and the labels
        tables : str or list of str, optional
            Source tables (default: every table upstream of the training matrix).
        rows : array of int, optional
            Only these source rows of the one table in ``tables``.
        etl, sources, target : optional
            The ETL function and ``{table: file}``, for deletions through operations with no deletion rule
            (re-run without each row); an error says when they are needed.
        test_rows : list, optional
            Names of the test points for reports.

        Returns
        -------
        SourceEffects
            ``effects[table]``: float32 (n_test, rows of the table); ``se[t]`` is the
            :class:`~whence.attribution.counterfactual.Counterfactual` of test point ``t``.
        """
        from .counterfactual import source_effects
        return source_effects(self, X_test, y_test, tables, rows=rows, etl=etl, sources=sources, target=target,
                              test_rows=test_rows, progress=progress)

    def counterfactual(self, x, y, tables=None, **kw):
        """What one prediction would be without each source row: the
        :class:`~whence.attribution.counterfactual.Counterfactual` of one test point (see
        :meth:`source_effects` for the arguments)."""
        X = _as_rows(x)
        if _n_rows(X) != 1:
            raise ValueError(f"counterfactual explains one test point; got {_n_rows(X)} rows (use source_effects)")
        return self.source_effects(X, np.asarray(y).reshape(-1), tables, **kw)[0]

    def _cf_context(self):
        if self._cf_ctx is None:
            from .deletion import _Context
            self._cf_ctx = _Context(self.X_train_raw)
        return self._cf_ctx

    def _label_of(self, yi):
        if not self.classifier:
            return "prediction"
        cls = self.estimator.classes_[int(yi)]
        return f"margin of class {getattr(cls, 'item', lambda: cls)()!r}"

    def _output_kind(self):
        return "correct-class margin" if self.classifier else "prediction"

    def _test_directions(self, X1, y):
        """``grad f^T H^-1`` of each test output: (m, P)."""
        F = self._output_grads(X1, y)
        return self._solve(F.T).T

    def _outputs_of(self, X1, y, W):
        Z = X1 @ W.T
        return _margin(Z, y) if self.classifier else Z[:, 0]

    def _row_grads(self, X1, y, w, W=None):
        """Gradient of each row's weighted loss: (m, K p)."""
        W = self.W if W is None else W
        Z = X1 @ W.T
        m = X1.shape[0]
        if self.classifier and self.K == 1:
            r = w * (_sigmoid(Z[:, 0]) - (y == 1))
            return r[:, None] * X1
        if self.classifier:
            P = _softmax(Z)
            P[np.arange(m), y] -= 1.0
            return ((w[:, None] * P)[:, :, None] * X1[:, None, :]).reshape(m, -1)
        return (w * (Z[:, 0] - y))[:, None] * X1

    def _row_hessian(self, X1, y, w, W=None):
        """The summed loss Hessian of the rows: (K p, K p)."""
        W = self.W if W is None else W
        Z = X1 @ W.T
        if self.classifier and self.K == 1:
            pr = _sigmoid(Z[:, 0])
            return (X1 * (w * pr * (1 - pr))[:, None]).T @ X1
        if self.classifier:
            return multinomial_hessian(X1, w, _softmax(Z))
        return (X1 * w[:, None]).T @ X1

    def _delta_grads(self, prop):
        """``dG`` of every source row of a :class:`~whence.attribution.deletion.Propagation`: the change of the
        summed loss gradient when the row is deleted, float32 (rows of the table, K p).

        For one-output models (binary logistic, squared losses), a source row that changes or removes one
        training row also carries that row's change of the Hessian (Sherman-Morrison-Woodbury, rank 1 or 2):
        ``H dG_eff = H H'^-1 dG``, so that ``grad f^T H^-1 dG_eff`` is the Newton step with the new Hessian.
        """
        P = self.W.size
        out = np.zeros((prop.n_rows, P), np.float64)
        if not prop.src.size:
            return out.astype(np.float32)
        t = prop.train
        y = self.y_idx[t]
        w = self.sample_weight[t]
        X1o = self.X1[t]
        d = -self._row_grads(X1o, y, w)
        ch = ~prop.removed
        X1n = None
        if ch.any():
            new = prop.new.iloc[np.flatnonzero(ch)] if hasattr(prop.new, "iloc") else prop.new[ch]
            X1n = np.zeros_like(X1o)
            X1n[ch] = self._design(self._features(new, "the changed training rows"))
            d[ch] += self._row_grads(X1n[ch], y[ch], w[ch])
        if self.K == 1:
            single = np.bincount(prop.src, minlength=prop.n_rows)[prop.src] == 1
            d = self._woodbury(d, X1o, X1n, ch, y, w, single)
        out = _sum_by(prop.src, d, prop.n_rows)
        ss, sj, sd = prop.shifts
        if ss.size:
            D = self._fill_sensitivity()
            cols = sorted(D)
            Dm = np.stack([D[j] for j in cols]) if cols else np.zeros((0, P))
            pos = {j: i for i, j in enumerate(cols)}
            keep = np.array([j in pos for j in sj.tolist()], bool)
            ci = np.array([pos.get(j, 0) for j in sj.tolist()], np.int64)
            import scipy.sparse as sp
            M = sp.csr_matrix((sd[keep], (ss[keep], ci[keep])), shape=(prop.n_rows, len(cols)))
            out += M @ Dm
        return out.astype(np.float32)

    def _hinv(self):
        if getattr(self, "_Hinv", None) is None:
            self._Hinv = self._solve(np.eye(self.H.shape[0]))
        return self._Hinv

    def _fill_sensitivity(self):
        """``{column: d(summed loss gradient) / d(fill value)}`` for the fill values that are column
        statistics: every filled cell moves with the statistic (central differences through the pipeline)."""
        if getattr(self, "_fill_D", None) is not None:
            return self._fill_D
        from .deletion import _raw_rows, _set
        ctx = self._cf_context()
        out = {}
        for st in ctx.stats:
            rows = np.flatnonzero(~st.genuine & ~np.isnan(ctx.values[:, st.j]))
            if not rows.size:
                continue
            eps = 1e-4 * max(1.0, abs(st.fill), float(np.std(st.vals)))
            g = []
            for sgn in (1.0, -1.0):
                raw = _raw_rows(ctx.X, rows)
                _set(raw, st.j, ctx.values[rows, st.j] + sgn * eps)
                X1 = self._design(self._features(raw, "the filled rows"))
                g.append(self._row_grads(X1, self.y_idx[rows], self.sample_weight[rows]).sum(0))
            out[st.j] = (g[0] - g[1]) / (2 * eps)
        self._fill_D = out
        return out

    def _curvature(self, X1, y, w):
        if self.classifier:
            pr = _sigmoid(X1 @ self.W[0])
            return w * pr * (1 - pr)
        return np.asarray(w, np.float64)

    def _woodbury(self, d, X1o, X1n, ch, y, w, single):
        """``dG - U (D^-1 + U^T H^-1 U)^-1 U^T H^-1 dG`` per entry: the entry's Hessian change ``U D U^T``
        (``-c x x^T`` for a removed row, ``+ c' x' x'^T`` more for a changed one) folded into its gradient."""
        d = d.copy()
        co = np.maximum(self._curvature(X1o, y, w), 1e-300)
        Hinv = self._hinv()
        HU = X1o @ Hinv  # H^-1 x per row (k, P); H is symmetric
        if X1n is None or not ch.any():
            h = np.einsum("ij,ij->i", X1o, HU)
            f = 1.0 / np.maximum(1.0 - co * h, 1e-6)
            d[single] *= f[single, None]
            return d
        Hd = d @ Hinv
        if X1n is None or not ch.any():
            # removal only: rank 1, dG / (1 - c h)
            h = np.einsum("ij,ij->i", X1o, HU)
            f = 1.0 / np.maximum(1.0 - co * h, 1e-6)
            d[single] *= f[single, None]
            return d
        rem = ~ch & single
        h = np.einsum("ij,ij->i", X1o, HU)
        d[rem] *= (1.0 / np.maximum(1.0 - co * h, 1e-6))[rem, None]
        c2 = ch & single
        if c2.any():
            xo, xn = X1o[c2], X1n[c2]
            cn = np.maximum(self._curvature(xn, y[c2], w[c2]), 1e-300)
            HUn = xn @ Hinv
            a11 = -1.0 / co[c2] + np.einsum("ij,ij->i", xo, HU[c2])
            a22 = 1.0 / cn + np.einsum("ij,ij->i", xn, HUn)
            a12 = np.einsum("ij,ij->i", xo, HUn)
            b1 = np.einsum("ij,ij->i", xo, Hd[c2])
            b2 = np.einsum("ij,ij->i", xn, Hd[c2])
            det = a11 * a22 - a12 * a12
            ok = np.abs(det) > 1e-300
            z1 = np.where(ok, (a22 * b1 - a12 * b2) / np.where(ok, det, 1.0), 0.0)
            z2 = np.where(ok, (a11 * b2 - a12 * b1) / np.where(ok, det, 1.0), 0.0)
            d[c2] -= xo * z1[:, None] + xn * z2[:, None]
        return d

    def _group_effect(self, removed, changed, new, X1_test, y_test, steps=1):
        """(effect, first-order effect, new output) of the test points when training rows ``removed``
        disappear and rows ``changed`` get the features ``new``: Newton steps on the new training set."""
        n = self.n_train
        keep = np.ones(n, bool)
        keep[removed] = False
        X1 = self.X1.copy()
        if len(changed):
            X1[changed] = self._design(self._features(new, "the changed training rows"))
        X1, y, w = X1[keep], self.y_idx[keep], self.sample_weight[keep]
        theta = self.W.reshape(-1).copy()
        K, p = self.W.shape
        B = self._test_directions(X1_test, y_test)
        f0 = self._outputs_of(X1_test, y_test, self.W)
        first = None
        n_steps = 50 if steps is None else max(int(steps), 1)
        for step in range(n_steps):
            W = theta.reshape(K, p)
            g = self._row_grads(X1, y, w, W).sum(0) + self._reg * theta
            if step == 0:
                first = B @ g  # f(with) - f(without), to first order
                g0 = float(np.linalg.norm(g))
            elif steps is None and float(np.linalg.norm(g)) <= 1e-10 * max(g0, 1e-300):
                break
            H = self._row_hessian(X1, y, w, W) + np.diag(self._reg)
            try:
                dt = scipy.linalg.solve(H, g, assume_a="sym")
            except (np.linalg.LinAlgError, ValueError):
                dt = scipy.linalg.lstsq(H, g)[0]
            theta = theta - dt
            if steps is None and float(np.linalg.norm(dt)) <= 1e-12 * max(1.0, float(np.linalg.norm(theta))):
                break
        f1 = self._outputs_of(X1_test, y_test, theta.reshape(K, p))
        return f0 - f1, first, f1

    # ------------------------------------------------------------------ the LDS harness's retraining
    def retrain_outputs(self, train_idx, X_test, y_test, seed=0):
        """Outputs on the test points of the same model fitted from scratch on the rows ``train_idx``."""
        from sklearn.base import clone
        m = clone(self.model)
        _set_seed(m, seed)
        Xtr = _plain_input(self.X_train_raw)
        idx = np.asarray(train_idx)
        Xs = Xtr.iloc[idx] if hasattr(Xtr, "iloc") else np.asarray(Xtr)[idx]
        ys = self.y_train[idx]
        kw = {}
        if self._user_sw is not None:
            key = "sample_weight" if self.pre is None else f"{self.model.steps[-1][0]}__sample_weight"
            kw[key] = self._user_sw[idx]
        m.fit(Xs, ys, **kw)
        est = m[-1] if self.pre is not None else m
        sub = Attributor.__new__(Attributor)
        sub.pre = m[:-1] if self.pre is not None else None
        sub.estimator = est
        sub.kind, sub.classifier = self.kind, self.classifier
        sub.fit_intercept = self.fit_intercept
        coef = np.atleast_2d(np.asarray(est.coef_, np.float64))
        b = np.atleast_1d(np.asarray(est.intercept_, np.float64))
        sub.W = np.hstack([coef, b[:, None]]) if self.fit_intercept else coef
        return sub.outputs(X_test, y_test)

    def __repr__(self):
        return (f"<whence.Attributor exact influence of {type(self.estimator).__name__} "
                f"({self.kind}, {self.W.size} parameters) over {self.n_train} training rows"
                f"{', with lineage' if self.train is not None else ''}>")

    @classmethod
    def torch(cls, model, train_data, task="classification", checkpoints=None, proj_dim=2048, **kw):
        """A TRAK-style attributor for torch models (needs the ``torch`` extra); see
        :class:`whence.attribution.trak.TorchAttributor`."""
        try:
            from .trak import TorchAttributor
        except ImportError as e:  # pragma: no cover - torch missing
            raise ImportError("Attributor.torch needs torch: pip install 'whence[torch]'") from e
        return TorchAttributor(model, train_data, task=task, checkpoints=checkpoints, proj_dim=proj_dim, **kw)


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


def _margin(Z, y):
    n, K = Z.shape
    if K == 1:
        return np.where(y == 1, Z[:, 0], -Z[:, 0])
    zy = Z[np.arange(n), y]
    Zo = Z.copy()
    Zo[np.arange(n), y] = -np.inf
    mx = Zo.max(axis=1)
    return zy - (mx + np.log(np.exp(Zo - mx[:, None]).sum(axis=1)))


def _as_rows(x):
    """Test input as rows the model accepts: a Series (one row of a frame) becomes a one-row DataFrame with
    its column names, a 1-D array one row; DataFrames and 2-D arrays stay as they are."""
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


def _sum_by(idx, rows, n):
    """``out[i] = sum of rows[idx == i]`` for ``i < n`` (one sparse product, not a Python loop)."""
    import scipy.sparse as sp
    if not idx.size:
        return np.zeros((n, rows.shape[1]))
    M = sp.csr_matrix((np.ones(idx.size), (idx, np.arange(idx.size))), shape=(n, idx.size))
    return np.asarray(M @ rows)


def _n_rows(X):
    return X.shape[0] if hasattr(X, "shape") else len(X)


def _plain_input(X):
    """What the model's own ``transform``/``fit`` should see: a DataFrame stays a DataFrame (plain pandas),
    arrays become plain ndarrays."""
    try:
        import pandas as pd
        if isinstance(X, pd.DataFrame):
            return pd.DataFrame(X)
        if isinstance(X, pd.Series):
            return pd.Series(X)
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(X)


def _set_seed(model, seed):
    params = model.get_params()
    upd = {k: int(seed) for k in params if k == "random_state" or k.endswith("__random_state")}
    if upd:
        model.set_params(**upd)


def _symmetric_solver(H):
    """A solver for H x = b: Cholesky when H is positive definite, else the pseudo-inverse (singular
    directions, such as adding one constant to every class's intercept, carry no influence)."""
    try:
        c = scipy.linalg.cho_factor(H, lower=True, check_finite=False)
        # a near-singular factor would amplify noise: check the conditioning through the diagonal
        dg = np.abs(np.diag(c[0]))
        if dg.min() > 1e-7 * dg.max():
            return lambda B: scipy.linalg.cho_solve(c, B, check_finite=False)
    except np.linalg.LinAlgError:
        pass
    Hp = scipy.linalg.pinvh(H)
    return lambda B: Hp @ B


def _model_name(model):
    """``"StandardScaler -> LogisticRegression"`` for a pipeline, the class name otherwise."""
    steps = getattr(model, "steps", None)
    if steps:
        return " -> ".join(type(est).__name__ for _, est in steps)
    return type(model).__name__


#: public names of the model math the unlearning package shares (the private spellings stay as aliases):
#: ``describe_model(est)`` -> (kind, settings) or UnsupportedModelError, ``plain_values(X)`` (float64),
#: ``plain_input(X)`` (what the model's own transform sees), ``sigmoid``, ``softmax``
describe_model = _describe
plain_values = _plain
plain_input = _plain_input
sigmoid = _sigmoid
softmax = _softmax
