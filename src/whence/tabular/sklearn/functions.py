"""The module functions of scikit-learn on tracked data: ``train_test_split`` (and the cross-validation helpers)
split tracked frames with ``iloc``; the ``sklearn.preprocessing`` functions run as the estimators they wrap;
``label_binarize`` keeps the lineage of ``y`` along each row.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ...graph import Node
from ...tracked import TrackedArray, wrap as _wrap
from ..frame import lineage_of
from .base import FRAME_TYPES, TRACKED_TYPES, WRAPPED_MARK, nesting, untracked_value


def _frame_rows(X, indices):
    key = np.asarray(indices)
    if key.dtype == bool:
        key = np.flatnonzero(key)
    return X.iloc[key.astype(np.int64, copy=False)]


def patch_split(mod):
    """``train_test_split`` (and the cross-validation helpers' ``_safe_split``) index rows with
    ``_safe_indexing``, that is ``DataFrame.take``, which tracked frames do not cover: tracked frames and series
    are split with ``iloc`` instead, which keeps exact row lineage."""
    orig = getattr(mod, "_safe_indexing", None)
    if orig is None or getattr(orig, WRAPPED_MARK, False):
        return

    @functools.wraps(orig)
    def _safe_indexing(X, indices, *args, **kwargs):
        if isinstance(X, FRAME_TYPES) and not args and kwargs.get("axis", 0) == 0 and \
                not isinstance(indices, slice) and not np.isscalar(indices):
            return _frame_rows(X, indices)
        return orig(X, indices, *args, **kwargs)

    setattr(_safe_indexing, WRAPPED_MARK, True)
    mod._safe_indexing = _safe_indexing


# sklearn.preprocessing's functions as the estimators they wrap (name -> (estimator, its arguments, the
# function's arguments that must keep their defaults))
_FUNCTIONS = {
    "scale": ("StandardScaler", ("with_mean", "with_std"), {"axis": 0}),
    "minmax_scale": ("MinMaxScaler", ("feature_range",), {"axis": 0}),
    "maxabs_scale": ("MaxAbsScaler", (), {"axis": 0}),
    "robust_scale": ("RobustScaler", ("with_centering", "with_scaling", "quantile_range", "unit_variance"),
                     {"axis": 0}),
    "normalize": ("Normalizer", ("norm",), {"axis": 1, "return_norm": False}),
    "binarize": ("Binarizer", ("threshold",), {}),
    "quantile_transform": ("QuantileTransformer", ("n_quantiles", "output_distribution", "ignore_implicit_zeros",
                                                   "subsample", "random_state"), {"axis": 0}),
    "power_transform": ("PowerTransformer", ("method", "standardize"), {}),
}


def _preprocessing_function(name, orig, mod):
    """``sklearn.preprocessing.<name>`` on tracked data: the estimator it wraps, fitted on the tracked data (its
    statistics are control, its output cells exact); any other call: all cells of the input (PARTIAL)."""
    import inspect
    est_name, est_args, fixed = _FUNCTIONS[name]
    sig = inspect.signature(orig)

    @functools.wraps(orig)
    def fn(X, *args, **kwargs):
        if not isinstance(X, TRACKED_TYPES) or nesting("depth"):
            return orig(X, *args, **kwargs)
        bound = sig.bind(X, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        if all(a.get(k, v) == v for k, v in fixed.items()) and getattr(X, "ndim", 2) == 2:
            try:
                est = getattr(mod, est_name)(**{k: a[k] for k in est_args if k in a})
                res = est.fit_transform(X)
                if isinstance(res, TrackedArray):
                    return res
            except (TypeError, ValueError):
                pass
        return _opaque_preprocessing(name, orig, X, args, kwargs)

    setattr(fn, WRAPPED_MARK, True)
    return fn


def _opaque_preprocessing(name, orig, X, args, kwargs):
    from ...buckets.opaque import opaque_call
    from ..frame.cellwise import as_arrays
    Xt = as_arrays(X)
    if Xt is None:
        return orig(X, *args, **kwargs)
    return opaque_call(orig, (Xt,) + tuple(args), kwargs,
                       reason=f"sklearn.preprocessing.{name} with these arguments is not covered")


def _label_binarize(orig):
    """``label_binarize(y, classes=...)`` on a tracked y: output cell (i, j) derives from y[i]."""

    @functools.wraps(orig)
    def fn(y, *args, **kwargs):
        if not isinstance(y, TRACKED_TYPES) or nesting("depth"):
            return orig(y, *args, **kwargs)
        plain = orig(untracked_value(y), *args, **kwargs)
        node = y.node if isinstance(y, TrackedArray) else (lineage_of(y).node if isinstance(y, pd.Series)
                                                             else None)
        if node is None or len(node.shape) != 1 or not isinstance(plain, np.ndarray) or plain.ndim != 2 or \
                plain.shape[0] != node.shape[0]:
            return _opaque_preprocessing("label_binarize", orig, y, args, kwargs)
        # every output column is a function of y[i] alone: y[i] broadcast along the row
        return _with_values(node, plain)

    setattr(fn, WRAPPED_MARK, True)
    return fn


def _with_values(node, values):
    """``values`` (n, k) with the lineage of the 1-D ``node`` broadcast along the rows: cell (i, j) from i."""
    from ...maps import ElementwiseMap, ViewMap
    n = node.shape[0]
    col = Node("reshape", (n, 1), ViewMap((n, 1), (n,), "reshape"), (node,))
    out = Node("label_binarize", values.shape, ElementwiseMap(values.shape, [(n, 1)]), (col,))
    return _wrap(np.asarray(values), out)


def patch_preprocessing(mod):
    """Wrap the functions of ``sklearn.preprocessing`` (``mod``) that whence covers."""
    for name in list(_FUNCTIONS) + ["label_binarize"]:
        orig = getattr(mod, name, None)
        if orig is None or getattr(orig, WRAPPED_MARK, False):
            continue
        setattr(mod, name, _label_binarize(orig) if name == "label_binarize" else
                _preprocessing_function(name, orig, mod))
