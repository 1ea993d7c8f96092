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
from .model_math import (CLASSIFIER_KINDS, as_rows, correct_class_margin, count_rows, describe_model, float64_values,
                         has_lineage, model_input, model_name, multinomial_hessian, set_random_state, sigmoid,
                         softmax, symmetric_solver, weighted_gram)

__all__ = ["Attributor", "UnsupportedModelError"]


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
        self.kind, self.settings = describe_model(est)
        self.classifier = self.kind in CLASSIFIER_KINDS
        self.train = X_train if has_lineage(X_train) else None
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
        X = as_rows(X)
        Xp = float64_values(X) if self.pre is None else float64_values(self.pre.transform(model_input(X)))
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
        if kind in CLASSIFIER_KINDS and K == 1:
            pr = sigmoid(Z[:, 0])
            yb = (y == 1).astype(np.float64)
            self.R = (w * (pr - yb))[:, None]  # dl/dz, (n, 1)
            curv = w * pr * (1 - pr)
            H = weighted_gram(X1, curv)
            if kind == "logistic":
                reg[: coef.shape[1]] = s["reg"]
                if self.fit_intercept:
                    reg[-1] = s["reg_b"]
            else:
                reg[: coef.shape[1]] = s["alpha"] * n
        elif kind == "logistic":
            P = softmax(Z)
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
                H = weighted_gram(X1, w)
                reg[: coef.shape[1]] = s["alpha"]
            elif kind == "sgd_sq":
                self.R = (w * resid)[:, None]
                H = weighted_gram(X1, w)
                reg[: coef.shape[1]] = s["alpha"] * n
            else:
                self.R = (w * resid)[:, None]
                H = weighted_gram(X1, w)
        H = H + np.diag(reg)
        self._reg = reg
        if damping:
            H = H + np.eye(H.shape[0]) * damping * float(np.mean(np.diag(H)))
        self.H = H
        self._solve = symmetric_solver(H)
        self._XT32 = self._nR32 = None
        self._cf_ctx = None
        self._cf_cache = {}

    # ------------------------------------------------------------------ outputs
    def outputs(self, X, y):
        """The attributed output of each row: correct-class margin (classifiers) or prediction (regressors)."""
        X1 = self._design(self._features(X, "X"))
        y = self._labels(y, "y")
        Z = X1 @ self.W.T
        return correct_class_margin(Z, y) if self.classifier else Z[:, 0]

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
        Q = softmax(Zo)  # weights of the other classes
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
        X = as_rows(x)
        yy = np.asarray(y).reshape(-1)
        s = self.scores(X, yy)[0]
        out = float(self.outputs(X, yy)[0])
        label = self._label_of(self._labels(yy, "y")[0]) if self.classifier else "prediction"
        ex = Explanation(s, train=self.train, output=out, label=label, test_row=test_row,
                         target=yy[0].item() if yy.size else None, model=model_name(self.model))
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
        X = as_rows(x)
        if count_rows(X) != 1:
            raise ValueError(f"counterfactual explains one test point; got {count_rows(X)} rows (use source_effects)")
        return self.source_effects(X, np.asarray(y).reshape(-1), tables, **kw)[0]

    def _cf_context(self):
        if self._cf_ctx is None:
            from .deletion import DeletionContext
            self._cf_ctx = DeletionContext(self.X_train_raw)
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
        return correct_class_margin(Z, y) if self.classifier else Z[:, 0]

    def _row_grads(self, X1, y, w, W=None):
        """Gradient of each row's weighted loss: (m, K p)."""
        W = self.W if W is None else W
        Z = X1 @ W.T
        m = X1.shape[0]
        if self.classifier and self.K == 1:
            r = w * (sigmoid(Z[:, 0]) - (y == 1))
            return r[:, None] * X1
        if self.classifier:
            P = softmax(Z)
            P[np.arange(m), y] -= 1.0
            return ((w[:, None] * P)[:, :, None] * X1[:, None, :]).reshape(m, -1)
        return (w * (Z[:, 0] - y))[:, None] * X1

    def _row_hessian(self, X1, y, w, W=None):
        """The summed loss Hessian of the rows: (K p, K p)."""
        W = self.W if W is None else W
        Z = X1 @ W.T
        if self.classifier and self.K == 1:
            pr = sigmoid(Z[:, 0])
            return weighted_gram(X1, w * pr * (1 - pr))
        if self.classifier:
            return multinomial_hessian(X1, w, softmax(Z))
        return weighted_gram(X1, w)

    def _delta_grads(self, prop):
        """``dG`` of every source row of a :class:`~whence.attribution.deletion.Propagation`: the change of the
        summed loss gradient when the row is deleted, float32 (rows of the table, K p).

        A source row that changes or removes one training row also carries that row's change of the Hessian
        (Sherman-Morrison-Woodbury): ``H dG_eff = H H'^-1 dG``, so that ``grad f^T H^-1 dG_eff`` is the Newton
        step with the new Hessian.  The change has rank 1 (removal) or 2 (change) for one-output models (binary
        logistic, squared losses), rank K or 2K for the multinomial logistic regression (:meth:`_woodbury_multi`).
        """
        P = self.W.size
        if not prop.src.size:
            out = np.zeros((prop.n_rows, P), np.float64)
        elif self.K == 1:
            out = _GradChange(prop.n_rows, P, self._delta_grads_one(prop))
        else:
            t = prop.train
            y = self.y_idx[t]
            w = self.sample_weight[t]
            X1o = self.X1[t]
            d = -self._row_grads(X1o, y, w)
            ch = ~prop.removed
            X1n = X1o.copy()
            if ch.any():
                new = prop.new_rows(np.flatnonzero(ch))
                X1n[ch] = self._design(self._features(new, "the changed training rows"))
                d[ch] += self._row_grads(X1n[ch], y[ch], w[ch])
            if self.kind == "logistic":
                single = np.bincount(prop.src, minlength=prop.n_rows)[prop.src] == 1
                d = self._woodbury_multi(d, X1o, X1n, ch, w, single)
            out = _sum_by(prop.src, d, prop.n_rows)
        ss, sj, sd = prop.shifts
        if ss.size:
            D = self._fill_sensitivity()
            cols = sorted(D)
            Dm = np.stack([D[j] for j in cols]) if cols else np.zeros((0, P))
            ca = np.asarray(cols, np.int64)
            ci = np.minimum(np.searchsorted(ca, sj), max(ca.size - 1, 0))
            keep = (ca[ci] == sj) if ca.size else np.zeros(sj.size, bool)
            ci = np.where(keep, ci, 0)
            import scipy.sparse as sp
            M = sp.csr_matrix((sd[keep], (ss[keep], ci[keep])), shape=(prop.n_rows, len(cols)))
            if isinstance(out, _GradChange):
                out.parts.append((M, Dm))
            else:
                out += M @ Dm
        return out if isinstance(out, _GradChange) else _GradChange(prop.n_rows, P, dense=out)

    def _woodbury_multi(self, d, X1o, X1n, ch, w, single, chunk=4096):
        """The Newton step with the new Hessian for the entries ``single`` of a multinomial logistic regression.

        A row's loss Hessian is ``A kron x x^T`` with ``A = w (diag(p) - p p^T)`` (K, K), that is
        ``U A U^T`` with ``U = I_K kron x``.  Removing a row adds ``U_o (-A_o) U_o^T`` to ``H``, changing it also
        ``U_n A_n U_n^T``; with ``D`` their block diagonal (singular: each ``A`` is, along the all-classes
        direction), ``H H'^-1 dG = dG - U (I + D U^T H^-1 U)^-1 D U^T H^-1 dG``: one (K or 2K)-square solve per
        entry.  Returns the corrected ``d`` (entries, K p).
        """
        d = d.copy()
        idx = np.flatnonzero(single)
        if not idx.size:
            return d
        K, p = self.W.shape
        Hinv = self._hinv()
        H4 = Hinv.reshape(K, p, K, p)
        eye = np.eye(K)

        def A_of(X):
            P = softmax(X @ self.W.T)
            return P[:, :, None] * eye[None] - P[:, :, None] * P[:, None, :]

        for lo in range(0, idx.size, chunk):
            e = idx[lo:lo + chunk]
            m = e.size
            xo, xn, c2 = X1o[e], X1n[e], ch[e]
            v = (d[e] @ Hinv).reshape(m, K, p)  # H^-1 dG, per class
            To = np.einsum("ip,apbq->iabq", xo, H4)
            Goo = np.einsum("iabq,iq->iab", To, xo)
            co = np.einsum("iap,ip->ia", v, xo)
            Ao = -w[e][:, None, None] * A_of(xo)
            r = 2 * K
            M = np.zeros((m, r, r))
            D = np.zeros((m, r, r))
            c = np.zeros((m, r))
            M[:, :K, :K] = Goo
            D[:, :K, :K] = Ao
            c[:, :K] = co
            if c2.any():
                Gon = np.einsum("iabq,iq->iab", To, xn)
                Gnn = np.einsum("iabq,iq->iab", np.einsum("ip,apbq->iabq", xn, H4), xn)
                An = w[e][:, None, None] * A_of(xn)
                M[:, :K, K:] = Gon
                M[:, K:, :K] = np.transpose(Gon, (0, 2, 1))
                M[:, K:, K:] = Gnn
                D[:, K:, K:] = np.where(c2[:, None, None], An, 0.0)
                c[:, K:] = np.einsum("iap,ip->ia", v, xn)
            S = np.eye(r)[None] + D @ M
            try:
                z = np.linalg.solve(S, D @ c[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:  # a deletion that leaves the new Hessian singular: least squares
                z = (np.linalg.pinv(S) @ (D @ c[:, :, None]))[:, :, 0]
            corr = z[:, :K, None] * xo[:, None, :] + z[:, K:, None] * xn[:, None, :]
            d[e] -= corr.reshape(m, K * p)
        return d

    def _train_terms(self):
        """Per training row, computed once: the loss derivative ``r`` (the gradient is ``r x``), the curvature
        ``c`` (floored at 1e-300) and the leverage ``x^T H^-1 x``."""
        if getattr(self, "_terms", None) is None:
            r = self.R[:, 0]
            c = np.maximum(self._curvature(self.X1, self.y_idx, self.sample_weight), 1e-300)
            lev = np.einsum("ij,ij->i", self.X1 @ self._hinv(), self.X1)
            self._terms = (r, c, lev)
        return self._terms

    def _delta_grads_one(self, prop, chunk=16384):
        """:meth:`_delta_grads` of a one-output model: ``[(S, V), ...]`` with ``dG = sum S @ V`` (``S`` sparse
        over the table's rows).

        Each entry (source row, training row) changes the gradient by ``a x_old + b x_new``: removing the
        training row gives ``-r_old x_old``, changing it adds ``r_new x_new``; for a source row with one entry the
        Sherman-Morrison-Woodbury correction of the Hessian (rank 1 for a removal, rank 2 for a change) only
        rescales ``a`` and ``b`` through three quadratic forms in ``H^-1`` (``x_o^T H^-1 x_o`` precomputed per
        training row, ``x_o^T H^-1 x_n`` and ``x_n^T H^-1 x_n``).  The changed rows go through the model's
        preprocessing in blocks of ``chunk`` rows, and the sums per source row are two sparse matrices, applied
        to the test directions only when asked (:class:`_GradChange`).
        """
        import scipy.sparse as sp
        r_all, c_all, lev = self._train_terms()
        t, src = prop.train, prop.src
        k = t.size
        ch = ~prop.removed
        single = np.bincount(src, minlength=prop.n_rows)[src] == 1
        r_o, c_o = r_all[t], c_all[t]
        a = -r_o
        b = np.zeros(k)
        rem1 = single & ~ch
        if rem1.any():
            a[rem1] *= 1.0 / np.maximum(1.0 - c_o[rem1] * lev[t[rem1]], 1e-6)
        chi = np.flatnonzero(ch)
        X1n = np.empty((chi.size, self.X1.shape[1]))
        if chi.size:
            Hinv = self._hinv()
            theta = self.W[0]
            y, w = self.y_idx[t[chi]], self.sample_weight[t[chi]]
            r_n, c_n = np.empty(chi.size), np.empty(chi.size)
            h_nn, h_on = np.empty(chi.size), np.empty(chi.size)
            for lo in range(0, chi.size, chunk):
                sl = slice(lo, min(lo + chunk, chi.size))
                e = chi[sl]
                raw = prop.new_rows(e)
                xn = X1n[sl]
                fx = self._features(raw, "the changed training rows")
                xn[:, :fx.shape[1]] = fx
                if self.fit_intercept:
                    xn[:, -1] = 1.0
                z = xn @ theta
                if self.classifier:
                    pr = sigmoid(z)
                    r_n[sl] = w[sl] * (pr - (y[sl] == 1))
                    c_n[sl] = w[sl] * pr * (1 - pr)
                else:
                    r_n[sl] = w[sl] * (z - y[sl])
                    c_n[sl] = w[sl]
                hu = xn @ Hinv
                h_nn[sl] = np.einsum("ij,ij->i", hu, xn)
                h_on[sl] = np.einsum("ij,ij->i", hu, self.X1[t[e]])
            c_n = np.maximum(c_n, 1e-300)
            b[chi] = r_n
            two = single[chi]
            if two.any():
                e = chi[two]
                ro, hoo = r_o[e], lev[t[e]]
                rn, hnn, hon = r_n[two], h_nn[two], h_on[two]
                a11 = -1.0 / c_o[e] + hoo
                a22 = 1.0 / c_n[two] + hnn
                b1 = -ro * hoo + rn * hon
                b2 = -ro * hon + rn * hnn
                det = a11 * a22 - hon * hon
                ok = np.abs(det) > 1e-300
                dd = np.where(ok, det, 1.0)
                z1 = np.where(ok, (a22 * b1 - hon * b2) / dd, 0.0)
                z2 = np.where(ok, (a11 * b2 - hon * b1) / dd, 0.0)
                a[e] -= z1
                b[e] -= z2
        n_rows = prop.n_rows
        parts = [(sp.csr_matrix((a, (src, t)), shape=(n_rows, self.n_train)), self.X1)]
        if chi.size:
            # kept in float32 (the effects are float32): half the memory that every later question reads
            parts.append((sp.csr_matrix((b[chi], (src[chi], np.arange(chi.size))), shape=(n_rows, chi.size)),
                          X1n.astype(np.float32)))
        return parts

    def _hinv(self):
        if getattr(self, "_Hinv", None) is None:
            self._Hinv = self._solve(np.eye(self.H.shape[0]))
        return self._Hinv

    def _fill_sensitivity(self):
        """``{column: d(summed loss gradient) / d(fill value)}`` for the fill values that are column
        statistics: every filled cell moves with the statistic (central differences through the pipeline)."""
        if getattr(self, "_fill_D", None) is not None:
            return self._fill_D
        from .training_matrix import raw_rows, set_column
        ctx = self._cf_context()
        out = {}
        for st in ctx.stats:
            rows = np.flatnonzero(~st.genuine & ~np.isnan(ctx.values[:, st.j]))
            if not rows.size:
                continue
            eps = 1e-4 * max(1.0, abs(st.fill), float(np.std(st.vals)))
            g = []
            for sgn in (1.0, -1.0):
                raw = raw_rows(ctx.X, rows)
                set_column(raw, st.j, ctx.values[rows, st.j] + sgn * eps)
                X1 = self._design(self._features(raw, "the filled rows"))
                g.append(self._row_grads(X1, self.y_idx[rows], self.sample_weight[rows]).sum(0))
            out[st.j] = (g[0] - g[1]) / (2 * eps)
        self._fill_D = out
        return out

    def _curvature(self, X1, y, w):
        if self.classifier:
            pr = sigmoid(X1 @ self.W[0])
            return w * pr * (1 - pr)
        return np.asarray(w, np.float64)

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
        set_random_state(m, seed)
        Xtr = model_input(self.X_train_raw)
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


class _GradChange:
    """The change of the summed loss gradient for every source row of a table, ``dG`` (rows, P): either dense,
    or ``sum S @ V`` over sparse ``S`` (rows, r) and dense ``V`` (r, P), which :meth:`apply` multiplies by the
    test directions first (a first question reads one direction, not every row's whole gradient)."""

    def __init__(self, n_rows, P, parts=None, dense=None):
        self.n_rows, self.P = int(n_rows), int(P)
        self.parts = [] if parts is None else list(parts)
        self._dense = None if dense is None else np.asarray(dense, np.float32)

    @property
    def shape(self):
        return (self.n_rows, self.P)

    def apply(self, B, memo=None):
        """``B @ dG.T``: float32 (m, rows) for test directions ``B`` (m, P) (through the sparse factors for a few
        directions; for many, ``dG`` is formed once and kept).  ``memo`` (a dict) shares ``V @ B.T`` between
        the tables of one question (they all read the training matrix)."""
        if self._dense is not None or B.shape[0] >= 8:
            return np.ascontiguousarray(B.astype(np.float32) @ self.dense().T)
        memo = {} if memo is None else memo
        out = np.zeros((self.n_rows, B.shape[0]))
        for S, V in self.parts:
            VB = memo.get(id(V))
            if VB is None:
                VB = memo[id(V)] = V @ B.T.astype(V.dtype)
            out += S @ VB
        return np.ascontiguousarray(out.T, np.float32)

    def dense(self):
        """``dG`` itself, float32 (rows, P)."""
        if self._dense is None:
            out = np.zeros((self.n_rows, self.P))
            for S, V in self.parts:
                out += S @ V
            self._dense = out.astype(np.float32)
        return self._dense


def _sum_by(idx, rows, n):
    """``out[i] = sum of rows[idx == i]`` for ``i < n`` (one sparse product, not a Python loop)."""
    import scipy.sparse as sp
    if not idx.size:
        return np.zeros((n, rows.shape[1]))
    M = sp.csr_matrix((np.ones(idx.size), (idx, np.arange(idx.size))), shape=(n, idx.size))
    return np.asarray(M @ rows)


#: the former names of the shared model math, now in :mod:`whence.attribution.model_math` (kept as aliases)
plain_values = _plain = float64_values
plain_input = _plain_input = model_input
_describe = describe_model
_sigmoid = sigmoid
_softmax = softmax
