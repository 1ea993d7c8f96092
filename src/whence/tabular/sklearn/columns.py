"""Column maps: which input columns (and which fitted statistics) each output column of a fitted transformer
derives from.

A handler per scikit-learn class reads the fitted attributes (``categories_``, ``powers_``, ``get_support()``,
``transformers_``, ...) and returns :class:`ColumnMaps`: ``M`` (output x input columns) for data, ``C`` for
the fitted statistics (control), ``Y`` for the dependence on the fit's ``y``.  A transformer with no handler, or
whose fitted attributes do not explain the output's shape, falls back to the whole input row (PARTIAL, with a
warning).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import defining_class, is_sklearn, warn_partial


class _NoMap(Exception):
    """The fitted attributes do not explain the output's shape: fall back to the whole row."""


class ColumnMaps:
    """Column lineage of one call: ``M`` (output x input columns) for data, ``C`` for fitted statistics
    (None: the transformer keeps none), ``Y`` (per output column: depends on the fit's ``y``), reasons."""

    __slots__ = ("M", "C", "Y", "reasons")

    def __init__(self, M, C=None, Y=None, reasons=()):
        self.M = M
        self.C = C
        self.Y = Y
        self.reasons = list(reasons)


def all_columns(k, n):
    """Every output column from every input column: a ``(k, n)`` matrix of True."""
    return np.ones((k, n), bool)


def predictor_maps(k, n_in):
    """The maps of a prediction: each of its ``k`` columns from the whole input row, its fitted statistics
    from every column of the fit data and from ``y``."""
    return ColumnMaps(all_columns(k, n_in), all_columns(k, n_in), np.ones(k, bool))


def _identity(n_in, n_out, stateful=True):
    if n_in != n_out:
        raise _NoMap
    M = np.eye(n_in, dtype=bool)
    return ColumnMaps(M, M.copy() if stateful else None)


def _whole_row(n_in, n_out, stateful=True, supervised=False):
    M = all_columns(n_out, n_in)
    return ColumnMaps(M, M.copy() if stateful else None, np.ones(n_out, bool) if supervised else None)


def _blocks(sizes, n_in, n_out):
    sizes = [int(s) for s in sizes]
    if len(sizes) != n_in or sum(sizes) != n_out or min(sizes, default=0) < 0:
        raise _NoMap
    M = np.zeros((n_out, n_in), bool)
    start = 0
    for i, s in enumerate(sizes):
        M[start:start + s, i] = True
        start += s
    return ColumnMaps(M, M.copy())


def _h_onehot(est, n_in, n_out, names, warn):
    cats = est.categories_
    try:
        infrequent = est.infrequent_categories_
    except AttributeError:
        infrequent = [None] * len(cats)
    drop = getattr(est, "drop_idx_", None)
    sizes = []
    for i, c in enumerate(cats):
        s = len(c)
        if infrequent[i] is not None:
            s -= len(infrequent[i]) - 1
        if drop is not None and drop[i] is not None:
            s -= 1
        sizes.append(s)
    try:
        return _blocks(sizes, n_in, n_out)
    except _NoMap:
        private = getattr(est, "_n_features_outs", None)
        if private is None:
            raise
        return _blocks(private, n_in, n_out)


def _h_kbins(est, n_in, n_out, names, warn):
    if est.encode == "ordinal":
        return _identity(n_in, n_out)
    return _blocks(est.n_bins_, n_in, n_out)


def _h_spline(est, n_in, n_out, names, warn):
    if n_in == 0 or n_out % n_in:
        raise _NoMap
    return _blocks([n_out // n_in] * n_in, n_in, n_out)


def _h_imputer(est, n_in, n_out, names, warn):
    stats = np.asarray(est.statistics_)
    if stats.shape[0] != n_in:
        raise _NoMap
    if getattr(est, "keep_empty_features", False):
        kept = np.arange(n_in)
    else:
        kept = np.flatnonzero(~np.asarray(pd.isna(stats), bool))
    ind = getattr(est, "indicator_", None)
    feats = np.asarray(ind.features_, np.int64) if ind is not None else np.zeros(0, np.int64)
    if kept.size + feats.size != n_out:
        raise _NoMap
    M = np.zeros((n_out, n_in), bool)
    M[np.arange(kept.size), kept] = True
    M[kept.size + np.arange(feats.size), feats] = True
    return ColumnMaps(M, M.copy())


def _h_indicator(est, n_in, n_out, names, warn):
    feats = np.asarray(est.features_, np.int64)
    if feats.size != n_out:
        raise _NoMap
    M = np.zeros((n_out, n_in), bool)
    M[np.arange(n_out), feats] = True
    return ColumnMaps(M, M.copy())


def _h_poly(est, n_in, n_out, names, warn):
    p = np.asarray(est.powers_)
    if p.shape != (n_out, n_in):
        raise _NoMap
    return ColumnMaps(p > 0, None)  # the powers are fixed by n_features: no fitted statistic


def _h_selector(est, n_in, n_out, names, warn):
    sup = np.asarray(est.get_support(indices=True), np.int64)
    if sup.size != n_out:
        raise _NoMap
    M = np.zeros((n_out, n_in), bool)
    M[np.arange(n_out), sup] = True
    # which columns survive depends on every column of the fit data (and on y)
    return ColumnMaps(M, all_columns(n_out, n_in), np.ones(n_out, bool))


def _h_function(est, n_in, n_out, names, warn):
    # reached when func is not run on tracked data (validate=True, or inside a ColumnTransformer)
    if est.func is None:
        return _identity(n_in, n_out, stateful=False)
    if warn:
        warn_partial("FunctionTransformer (func is not run on tracked data with validate=True or inside a "
                      "composite transformer)")
    return ColumnMaps(all_columns(n_out, n_in), None, None,
                 ["FunctionTransformer: func was not run on tracked data (validate=True, or inside a composite "
                  "transformer); each output cell is taken to derive from the whole input row"])


def _is_str(x, s):
    return isinstance(x, str) and x == s


def _resolve_columns(cols, n, fit_names):
    """Input positions of a ``ColumnTransformer`` column selection (as stored in ``transformers_``)."""
    if callable(cols):
        raise _NoMap
    if isinstance(cols, slice):
        if isinstance(cols.start, str) or isinstance(cols.stop, str):
            if fit_names is None:
                raise _NoMap
            idx = pd.Index(fit_names)
            a = 0 if cols.start is None else idx.get_loc(cols.start)
            b = n if cols.stop is None else idx.get_loc(cols.stop) + 1
            return np.arange(a, b)[::cols.step or 1]
        return np.arange(n)[cols]
    arr = np.atleast_1d(np.asarray(cols))
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype == bool:
        return np.flatnonzero(arr)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64) % n
    if fit_names is None:
        raise _NoMap
    pos = pd.Index(fit_names).get_indexer(arr)
    if (pos < 0).any():
        raise _NoMap
    return pos.astype(np.int64)


def _h_column_transformer(est, n_in, n_out, names, warn):
    M = np.zeros((n_out, n_in), bool)
    C = np.zeros((n_out, n_in), bool)
    Y = np.zeros(n_out, bool)
    reasons = []
    fit_names = getattr(est, "feature_names_in_", None)
    t2i = getattr(est, "_transformer_to_input_indices", None)
    by_name = fit_names is not None and names is not None
    n_fit = getattr(est, "n_features_in_", n_in)
    for name, trans, cols in est.transformers_:
        sl = est.output_indices_.get(name, slice(0, 0))
        width = sl.stop - sl.start
        if _is_str(trans, "drop") or width == 0:
            continue
        idx = np.asarray(t2i[name], np.int64) if t2i is not None and name in t2i else \
            _resolve_columns(cols, n_fit, fit_names)
        if by_name:
            pos = pd.Index(names).get_indexer(np.asarray(fit_names)[idx])
            if (pos < 0).any():
                raise _NoMap
        else:
            pos = idx
        if (pos >= n_in).any():
            raise _NoMap
        if _is_str(trans, "passthrough"):
            sub = _identity(len(pos), width, stateful=False)
        else:
            sub_names = [names[p] for p in pos] if names is not None else None
            sub = transformer_maps(trans, len(pos), width, sub_names, warn)
        M[sl][:, pos] = sub.M
        if sub.C is not None:
            C[sl][:, pos] = sub.C
        if sub.Y is not None:
            Y[sl] = sub.Y
        reasons += sub.reasons
    return ColumnMaps(M, C, Y, reasons)


def _h_feature_union(est, n_in, n_out, names, warn):
    parts = []
    total = 0
    for name, trans in est.transformer_list:
        if _is_str(trans, "drop") or trans is None:
            continue
        if _is_str(trans, "passthrough"):
            w = n_in
        else:
            w = len(trans.get_feature_names_out())
        parts.append((trans, w))
        total += w
    if total != n_out:
        raise _NoMap
    M = np.zeros((n_out, n_in), bool)
    C = np.zeros((n_out, n_in), bool)
    Y = np.zeros(n_out, bool)
    reasons = []
    start = 0
    for trans, w in parts:
        if _is_str(trans, "passthrough"):
            sub = _identity(n_in, w, False)
        else:
            sub = transformer_maps(trans, n_in, w, names, warn)
        M[start:start + w] = sub.M
        if sub.C is not None:
            C[start:start + w] = sub.C
        if sub.Y is not None:
            Y[start:start + w] = sub.Y
        reasons += sub.reasons
        start += w
    return ColumnMaps(M, C, Y, reasons)


def _steps(pipe):
    return [s for _, s in pipe.steps if not (s is None or _is_str(s, "passthrough"))]


def pipeline_maps(pipe, n_in, n_out, names, warn, predict=False):
    """Static composition of a pipeline's steps (data map, control map, y map)."""
    steps = _steps(pipe)
    final = steps.pop() if predict and steps else None
    widths = []
    for i in range(len(steps)):
        nxt = steps[i + 1] if i + 1 < len(steps) else final
        if nxt is None:
            widths.append(n_out)
        else:
            w = getattr(nxt, "n_features_in_", None)
            if w is None:
                raise _NoMap
            widths.append(int(w))
    D = np.eye(n_in, dtype=bool)
    K = np.zeros((n_in, n_in), bool)
    Y = np.zeros(n_in, bool)
    reasons = []
    cur, cur_names = n_in, names
    for s, w in zip(steps, widths):
        m = transformer_maps(s, cur, w, cur_names, warn)
        D, K, Y = _compose(m, D, K, Y)
        reasons += m.reasons
        cur, cur_names = w, None
    if final is not None:
        D, K, Y = _compose(predictor_maps(n_out, cur), D, K, Y)
    elif cur != n_out:
        raise _NoMap
    return ColumnMaps(D, K, Y, reasons)


def _compose(m, D, K, Y):
    """One step after ``D`` (data), ``K`` (control), ``Y`` (y-dependence), all relative to the fit input."""
    D2 = m.M @ D
    K2 = m.M @ K
    if m.C is not None:
        K2 |= m.C @ (D | K)
    Y2 = (m.M @ Y[:, None])[:, 0]
    if m.Y is not None:
        Y2 |= m.Y
    return D2, K2, Y2


def _h_pipeline(est, n_in, n_out, names, warn):
    return pipeline_maps(est, n_in, n_out, names, warn)


_IDENTITY = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "QuantileTransformer",
             "PowerTransformer", "OrdinalEncoder", "LabelEncoder")
_ROW = ("_BasePCA", "PCA", "IncrementalPCA", "KernelPCA", "TruncatedSVD", "FastICA", "FactorAnalysis", "NMF",
        "MiniBatchNMF", "_BaseSparsePCA", "LatentDirichletAllocation", "GaussianRandomProjection",
        "SparseRandomProjection", "Nystroem", "RBFSampler", "_BaseKMeans", "LabelBinarizer")
_ROW_SUPERVISED = ("LinearDiscriminantAnalysis", "NeighborhoodComponentsAnalysis")

_HANDLERS = {
    "Binarizer": lambda est, n_in, n_out, names, warn: _identity(n_in, n_out, stateful=False),
    "Normalizer": lambda est, n_in, n_out, names, warn: _whole_row(n_in, n_out, stateful=False),
    "OneHotEncoder": _h_onehot,
    "KBinsDiscretizer": _h_kbins,
    "SplineTransformer": _h_spline,
    "SimpleImputer": _h_imputer,
    "MissingIndicator": _h_indicator,
    "PolynomialFeatures": _h_poly,
    "SelectorMixin": _h_selector,
    "FunctionTransformer": _h_function,
    "ColumnTransformer": _h_column_transformer,
    "FeatureUnion": _h_feature_union,
    "Pipeline": _h_pipeline,
}
for _n in _IDENTITY:
    _HANDLERS[_n] = lambda est, n_in, n_out, names, warn: _identity(n_in, n_out)
for _n in _ROW:
    _HANDLERS[_n] = lambda est, n_in, n_out, names, warn: _whole_row(n_in, n_out)
for _n in _ROW_SUPERVISED:
    _HANDLERS[_n] = lambda est, n_in, n_out, names, warn: _whole_row(n_in, n_out, supervised=True)


def _handler(key):
    if key is not None and is_sklearn(key):
        return _HANDLERS.get(key.__qualname__)
    return None


def _requires_fit(est):
    try:
        return bool(est.__sklearn_tags__().requires_fit)
    except Exception:
        return True


def _generic(est, n_in, n_out, warn):
    name = type(est).__name__
    if warn:
        warn_partial(name)
    C = all_columns(n_out, n_in) if _requires_fit(est) else None
    return ColumnMaps(all_columns(n_out, n_in), C, np.ones(n_out, bool),
                 [f"{name}: whence does not know this transformer's column lineage; each output cell is taken "
                  f"to derive from the whole input row"])


def maps_for(key, est, n_in, n_out, names, warn=True):
    """The column maps of ``est`` by the handler of the class ``key`` (the class that defines the method called),
    or the whole row (PARTIAL, with a warning where ``warn``) when no handler explains the output's shape."""
    h = _handler(key)
    if h is not None:
        try:
            m = h(est, n_in, n_out, names, warn)
            if m.M.shape == (n_out, n_in):
                return m
        except _NoMap:
            pass
        except (AttributeError, KeyError, IndexError, TypeError, ValueError):
            pass
    return _generic(est, n_in, n_out, warn)


def transformer_maps(est, n_in, n_out, names=None, warn=True):
    """Static column maps of a fitted transformer (used for the parts of composite transformers)."""
    tp = type(est)
    key = defining_class(tp, "transform") or defining_class(tp, "fit_transform")
    return maps_for(key, est, n_in, n_out, names, warn)
