"""Removing training rows from a fitted model by Newton steps on the model's own objective.

The objective is the one the model minimised, written over the rows that remain:

    L_R(theta) = sum_{i in R} w_i l(z_i, theta) + 1/2 theta^T Lambda theta  (+ b^T theta when certified)

with the model's loss, sample and class weights (recomputed over the remaining rows for ``"balanced"``) and
regularisation ``Lambda`` (for SGD models ``n_R * alpha``, as their objective averages the loss).  Starting
from the fitted parameters, a Newton step with the exact Hessian lands on the minimiser of a quadratic
objective (linear and ridge regression) and, for logistic losses, within a residual that the refinement steps
(Newton steps reusing the factorised Hessian, each one pass over the remaining rows) drive to the solver
tolerance.  The gradient residual norm on the remaining rows is the certificate: it is computed exactly, not
bounded.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from .._extras import require

require("whence.unlearn", "sklearn")


from ..attribution.model_math import (CLASSIFIER_KINDS, UnsupportedModelError, describe_model, float64_values,
                                      model_input, multinomial_hessian, sigmoid, softmax, symmetric_solver,
                                      weighted_gram)

__all__ = ["Objective", "Certificate", "newton_fit"]


@dataclass
class Certificate:
    """What an unlearning update guarantees, measured.

    Attributes
    ----------
    method : str
        ``"newton"`` or ``"certified"``.
    removed : int
        Training rows removed by this update (and replaced, for :func:`forget_sources`).
    residual : float
        Norm of the gradient of the remaining rows' objective at the new parameters (0 at the exact optimum).
    residual_relative : float
        ``residual`` over the norm of the removed rows' gradient at the old parameters (the residual of doing
        nothing).
    steps : int
        Newton steps taken (the first with the exact Hessian, then refinements).
    seconds : float
        Wall time of the update.
    bound, sigma, epsilon, delta, budget, spent, exceeded : for ``"certified"``
        Guo et al. (2020): with the loss perturbation ``b ~ N(0, sigma^2 I)`` in the objective, removals whose
        accumulated gradient residual stays within ``budget = sigma * epsilon / c`` (``c = sqrt(2 log(1.5 /
        delta))``) are (epsilon, delta)-certified; ``exceeded`` says the caller must retrain.
    history : list
        The residual after each step.
    """

    method: str
    removed: int
    residual: float
    residual_relative: float
    steps: int
    seconds: float
    bound: float | None = None
    sigma: float | None = None
    epsilon: float | None = None
    delta: float | None = None
    budget: float | None = None
    spent: float | None = None
    exceeded: bool = False
    history: list = field(default_factory=list)
    note: str = ""

    def result_document(self):
        """``("unlearning", document)``: what :func:`whence.save` stores for this certificate (see
        :mod:`whence.store.results`)."""
        from dataclasses import asdict
        from ..attribution.explain import json_ready
        d = asdict(self)
        return "unlearning", json_ready({"method": self.method, "n_forgotten": self.removed,
                                         "figures": {k2: v for k2, v in d.items() if isinstance(v, (int, float))},
                                         "detail": d})

    def _repr_html_(self):
        from ..notebook import unlearning_html
        return unlearning_html(self)

    def __repr__(self):
        s = (f"Certificate({self.method}: removed {self.removed} rows, gradient residual {self.residual:.3g} "
             f"({self.residual_relative:.3g} of doing nothing) after {self.steps} steps, {self.seconds * 1e3:.1f} ms")
        if self.method == "certified":
            s += (f"; epsilon {self.epsilon}, delta {self.delta}, sigma {self.sigma:.3g}, residual spent "
                  f"{self.spent:.3g} of {self.budget:.3g}{' -- EXCEEDED: retrain' if self.exceeded else ''}")
        return s + ")"


class Objective:
    """The training objective of a scikit-learn linear model over a set of rows (see the module)."""

    def __init__(self, est, X, y, sample_weight=None):
        self.est = est
        self.kind, self.settings = describe_model(est)
        self.classifier = self.kind in CLASSIFIER_KINDS
        self.fit_intercept = bool(getattr(est, "fit_intercept", True))
        coef = np.atleast_2d(np.asarray(est.coef_, np.float64))
        self.d = coef.shape[1]
        self.K = coef.shape[0]
        self.p = self.d + (1 if self.fit_intercept else 0)
        X = np.asarray(X, np.float64)
        self.X1 = np.hstack([X, np.ones((X.shape[0], 1))]) if self.fit_intercept else X
        y = np.asarray(y).reshape(-1)
        if self.classifier:
            classes = est.classes_
            idx = np.searchsorted(classes, y)
            if (np.clip(idx, 0, len(classes) - 1) != idx).any() or (classes[np.clip(idx, 0, len(classes) - 1)]
                                                                       != y).any():
                raise ValueError("y has labels the model does not know")
            self.y = idx
        else:
            self.y = y.astype(np.float64)
        self.y_raw = y
        self.sw = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
        self.b = None  # certified loss perturbation
        # softmax models: adding one constant to every class's intercept changes nothing (a flat direction of
        # the objective when intercepts are not penalised); steps keep out of it, as the solvers do
        self.null = None
        if self.kind == "logistic" and self.K > 1 and self.fit_intercept and not self.settings.get("reg_b"):
            v = np.zeros(self.K * self.p)
            v[self.p - 1::self.p] = 1.0
            self.null = v / np.linalg.norm(v)

    def theta(self, est=None):
        est = self.est if est is None else est
        coef = np.atleast_2d(np.asarray(est.coef_, np.float64))
        if self.fit_intercept:
            b = np.atleast_1d(np.asarray(est.intercept_, np.float64))
            return np.hstack([coef, b[:, None]]).reshape(-1)
        return coef.reshape(-1)

    def restricted(self, rows):
        """The same objective over ``rows`` only (one copy of their features; later passes index nothing)."""
        sub = copy.copy(self)
        sub.X1 = np.ascontiguousarray(self.X1[rows])
        sub.y = self.y[rows]
        sub.y_raw = self.y_raw[rows]
        sub.sw = self.sw[rows]
        sub._X32 = None
        return sub

    def weights(self, rows):
        w = self.sw[rows]
        cw = self.settings.get("class_weight")
        if cw is not None:
            from sklearn.utils.class_weight import compute_sample_weight
            w = w * compute_sample_weight(cw, self.y_raw[rows])
        return w

    def reg(self, n_rows):
        s, p, d = self.settings, self.p, self.d
        lam = np.zeros(p)
        if self.kind == "logistic":
            lam[:d] = s["reg"]
            if self.fit_intercept:
                lam[-1] = s["reg_b"]
        elif self.kind in ("sgd_log", "sgd_sq"):
            lam[:d] = s["alpha"] * n_rows
        elif self.kind == "ridge":
            lam[:d] = s["alpha"]
        return np.tile(lam, self.K)

    def _residuals(self, theta, rows):
        W = theta.reshape(self.K, self.p)
        n = self.X1.shape[0]
        X1 = self.X1 if rows.shape[0] == n and n and rows[0] == 0 and rows[-1] == n - 1 else self.X1[rows]
        Z = X1 @ W.T
        if self.kind in CLASSIFIER_KINDS and self.K == 1:
            pr = sigmoid(Z[:, 0])
            return X1, (pr - (self.y[rows] == 1))[:, None], (pr * (1 - pr))[:, None]
        if self.kind == "logistic":
            P = softmax(Z)
            Y = np.zeros_like(P)
            Y[np.arange(len(rows)), self.y[rows]] = 1
            return X1, P - Y, P
        return X1, (Z[:, 0] - self.y[rows])[:, None], np.ones((len(rows), 1))

    def grad(self, theta, rows):
        X1, R, _ = self._residuals(theta, rows)
        w = self.weights(rows)
        g = ((R * w[:, None]).T @ X1).reshape(-1)
        g = g + self.reg(len(rows)) * theta
        if self.b is not None:
            g = g + self.b
        return g

    def hess(self, theta, rows, with_reg=True):
        X1, R, C = self._residuals(theta, rows)
        w = self.weights(rows)
        K = self.K
        if K == 1:
            H = weighted_gram(X1, w * C[:, 0])
        else:
            H = multinomial_hessian(X1, w, C)
        return H + np.diag(self.reg(len(rows))) if with_reg else H

    def hvp_fn(self, theta):
        """For one-output models over all rows: ``v -> H(theta) v`` in two passes over the rows (no Hessian
        formed), or None."""
        if self.K != 1:
            return None
        rows = np.arange(self.X1.shape[0])
        X1, _, C = self._residuals(theta, rows)
        c = self.weights(rows) * C[:, 0]
        lam = self.reg(len(rows))
        return lambda v: X1.T @ (c * (X1 @ v)) + lam * v

    def loss_parts(self, theta, rows):
        """(gradient, Hessian) of the loss terms alone (no regularisation, no perturbation) over ``rows``."""
        X1, R, _ = self._residuals(theta, rows)
        w = self.weights(rows)
        return ((R * w[:, None]).T @ X1).reshape(-1), self.hess(theta, rows, with_reg=False)

    def set_theta(self, est, theta):
        W = theta.reshape(self.K, self.p)
        if self.fit_intercept:
            coef, b = W[:, :-1], W[:, -1]
        else:
            coef, b = W, np.zeros(self.K)
        old = np.asarray(est.coef_)
        est.coef_ = coef.reshape(old.shape).astype(old.dtype, copy=False)
        if self.fit_intercept:
            oldb = np.asarray(est.intercept_)
            est.intercept_ = b.reshape(oldb.shape).astype(oldb.dtype, copy=False) if oldb.shape else \
                type(est.intercept_)(b[0])


def _solver(H):
    """The Newton steps' solver: Cholesky while its pivots (squared) stay within 1e-12 of each other."""
    return symmetric_solver(H, min_pivot_ratio=1e-6)


def newton_fit(obj, theta, rows, tol=None, max_steps=30, H=None, g=None):
    """Newton steps on the objective over ``rows`` from ``theta``; returns (theta, history, steps).

    The first step uses the exact Hessian at ``theta`` (``H`` when the caller has it, for example by
    down-dating the full data's Hessian); later steps reuse its factor (a chord method: one gradient pass each,
    converging linearly at the rate of the Hessian's change), and the Hessian is formed again only when the
    residual stops falling fast.  Stops when the gradient norm is below ``tol`` (default: 1e-10 of the first
    gradient's norm, or 1e-12).
    """
    obj = obj.restricted(rows)
    rows = np.arange(obj.X1.shape[0])
    g = obj.grad(theta, rows) if g is None else g
    g0 = float(np.linalg.norm(g))
    hist = [g0]
    if tol is None:
        tol = max(1e-10 * g0, 1e-12)
    if g0 <= tol:
        return theta, hist, 0
    solve = _solver(obj.hess(theta, rows) if H is None else H)
    steps = 0
    first = True
    while steps < max_steps:
        hvp = None if first else obj.hvp_fn(theta)
        if hvp is None:
            step = solve(g)
        else:
            # an inexact Newton step: conjugate gradients on H(theta) s = g with the first Hessian as the
            # preconditioner (it is close), a few Hessian-vector products instead of forming H again
            step = _pcg(hvp, g, solve, rtol=min(1e-2, 0.1 * hist[-1] / hist[0]))
        first = False
        if obj.null is not None:
            step = step - (step @ obj.null) * obj.null
        theta = theta - step
        steps += 1
        g = obj.grad(theta, rows)
        r = float(np.linalg.norm(g))
        hist.append(r)
        if not np.isfinite(r):
            raise FloatingPointError("the Newton update diverged (the remaining problem is ill-posed)")
        if r <= tol:
            break
        if obj.K != 1 and r > 0.25 * hist[-2]:
            solve = _solver(obj.hess(theta, rows))
    return theta, hist, steps


def _pcg(hvp, b, precond, rtol=1e-6, maxiter=50):
    """Preconditioned conjugate gradients for ``H x = b`` (H symmetric positive definite, given as ``hvp``)."""
    x = np.zeros_like(b)
    r = b.copy()
    z = precond(r)
    p = z.copy()
    rz = r @ z
    nb = np.linalg.norm(b)
    for _ in range(maxiter):
        Hp = hvp(p)
        a = rz / (p @ Hp)
        x += a * p
        r -= a * Hp
        if np.linalg.norm(r) <= rtol * nb:
            break
        z = precond(r)
        rz2 = r @ z
        p = z + (rz2 / rz) * p
        rz = rz2
    return x


def clone_fitted(model):
    """A deep copy of a fitted model (the original is never touched)."""
    return copy.deepcopy(model)


def now():
    return time.perf_counter()


__all__ += ["clone_fitted", "UnsupportedModelError"]

#: former spellings of the shared input helpers (see :mod:`whence.attribution.model_math`)
_plain = float64_values
_plain_input = model_input
