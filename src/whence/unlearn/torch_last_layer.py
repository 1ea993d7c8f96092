"""Unlearning for torch models: Newton removal on the last linear layer, with the features below it frozen.

The body of the network is kept; the last ``nn.Linear`` layer is a (multinomial) logistic regression on the
features the body computes.  Its objective is the summed cross-entropy of the training rows plus
``l2 / 2 * ||W||^2``; :func:`forget_last_layer` moves the layer to the optimum of that objective over the
remaining rows with Newton steps (through :func:`whence.unlearn.forget`), so the result is the layer a
retraining of the last layer on the frozen features would give.  The scikit-learn estimators standing for
the layer before and after are attached (``.last_layer_before``, ``.last_layer``), so that
:func:`whence.unlearn.compare` reports it the same way as any other model, on the frozen features
(:func:`last_layer_features`).
"""

from __future__ import annotations

import copy

import numpy as np

__all__ = ["forget_last_layer", "last_layer_features"]


def _last_linear(model, layer):
    import torch.nn as nn
    if layer is not None:
        mod = dict(model.named_modules()).get(layer)
        if not isinstance(mod, nn.Linear):
            raise ValueError(f"{layer!r} is not an nn.Linear layer of the model")
        return layer, mod
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError("the model has no nn.Linear layer to unlearn on")
    return found[-1]


def last_layer_features(model, X, layer=None, batch_size=1024):
    """The inputs of the model's last linear layer for the rows of ``X`` (float64 numpy, (n, d))."""
    import torch
    name, lin = _last_linear(model, layer)
    feats = []

    def hook(mod, inp, out):
        feats.append(inp[0].detach().to(torch.float64).cpu().numpy())
    h = lin.register_forward_hook(hook)
    was = model.training
    model.eval()
    try:
        Xt = torch.as_tensor(np.asarray(X), dtype=next(model.parameters()).dtype)
        with torch.no_grad():
            for s in range(0, Xt.shape[0], batch_size):
                model(Xt[s:s + batch_size])
    finally:
        h.remove()
        model.train(was)
    if not feats:
        return np.zeros((0, lin.in_features))
    F = np.concatenate(feats)
    if F.ndim != 2:
        raise ValueError(f"the last linear layer sees inputs of shape {F.shape[1:]}: only (batch, features) is "
                         f"supported")
    return F


def _estimator(lin, classes, l2):
    import torch
    from sklearn.linear_model import LogisticRegression
    W = lin.weight.detach().to(dtype=torch.float64).cpu().numpy()
    b = (lin.bias.detach().to(dtype=torch.float64).cpu().numpy() if lin.bias is not None
         else np.zeros(W.shape[0]))
    est = LogisticRegression(C=np.inf if l2 == 0 else 1.0 / l2, fit_intercept=lin.bias is not None, tol=1e-10,
                             max_iter=10000)
    est.classes_ = np.asarray(classes)
    est.coef_, est.intercept_ = W.copy(), b.copy()  # one row: a sigmoid (binary); K rows: a softmax
    est.n_features_in_ = W.shape[1]
    est.n_iter_ = np.array([0])
    return est


def forget_last_layer(model, X_train, y_train, rows, *, l2=1.0, layer=None, fit_first=True, batch_size=1024,
                      tol=None):
    """A copy of a torch classifier whose last linear layer forgets the training rows ``rows``.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier whose last ``nn.Linear`` gives the logits (one logit: binary; K logits: softmax).
    X_train, y_train : the training data (arrays or tensors), labels 0..K-1
    rows : the training rows to remove
    l2 : float, default 1.0
        The last layer's L2 penalty in the objective ``sum CE + l2/2 ||W||^2``.
    fit_first : bool, default True
        First move the layer to the optimum of that objective over all rows (a trained network's last layer
        is rarely at it exactly), so that the removal is measured against a well-defined retraining.

    Returns
    -------
    torch.nn.Module
        A deep copy; ``.certificate`` is the Newton certificate, ``.last_layer_before`` and ``.last_layer``
        are scikit-learn estimators of the layer (on :func:`last_layer_features`).
    """
    from . import forget
    y = np.asarray(y_train).reshape(-1).astype(np.int64)
    name, lin = _last_linear(model, layer)
    K = lin.out_features
    classes = np.arange(2 if K == 1 else K)
    if y.size and (y.min() < 0 or y.max() >= len(classes)):
        raise ValueError(f"labels must be 0..{len(classes) - 1} for a last layer with {K} outputs")
    F = last_layer_features(model, X_train, layer=name, batch_size=batch_size)
    if F.shape[0] != y.size:
        raise ValueError(f"X_train has {F.shape[0]} rows but y_train has {y.size}")
    est = _estimator(lin, classes, l2)
    if fit_first:
        from .newton import Objective, newton_fit
        obj = Objective(est, F, y)
        theta, _, _ = newton_fit(obj, obj.theta(), np.arange(F.shape[0]), tol=tol)
        obj.set_theta(est, theta)
    new_est = forget(est, F, y, rows, tol=tol)
    import torch
    new = copy.deepcopy(model)
    _, new_lin = _last_linear(new, name)
    with torch.no_grad():
        new_lin.weight.copy_(torch.as_tensor(new_est.coef_, dtype=new_lin.weight.dtype))
        if new_lin.bias is not None:
            new_lin.bias.copy_(torch.as_tensor(np.ravel(new_est.intercept_), dtype=new_lin.bias.dtype))
    new.certificate = new_est.certificate
    new.last_layer_before = est
    new.last_layer = new_est
    return new
