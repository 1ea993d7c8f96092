"""scikit-learn keeps lineage: tracked data in, tracked predictions and features out.

When a tracked input (a :class:`whence.TrackedArray`, a :class:`~whence.tabular.TrackedFrame` or a
:class:`~whence.tabular.TrackedSeries`) is passed to ``fit``, ``transform``, ``fit_transform``, ``predict``,
``predict_proba``, ``predict_log_proba``, ``decision_function`` or ``score_samples`` of any scikit-learn
estimator, the output is tracked:

- an ndarray comes back as a :class:`whence.TrackedArray`, a DataFrame (``set_output(transform="pandas")``)
  as a :class:`~whence.tabular.TrackedFrame`; a scipy sparse output stays sparse and is registered
  (:func:`output_node`), so its lineage can be queried;
- output row ``i`` derives from input row ``i``;
- columns follow the fitted transformer: one-to-one for the scalers and the ordinal encoder, one block per
  input feature for the one-hot encoder, the kept columns (and indicator columns) for the simple imputer,
  ``powers_`` for polynomial features, the whole row for the normalizer and the projections, the selected
  columns for feature selectors, and the composition of the parts for ``ColumnTransformer``, ``FeatureUnion``
  and ``Pipeline`` (tracked data flows through a pipeline's steps; ``FunctionTransformer(validate=False)``
  runs ``func`` on the tracked data, so numpy tracking gives the exact lineage).  Any other transformer
  falls back to the whole input row, is marked PARTIAL and raises a
  :class:`~whence.errors.PartialLineageWarning` naming its class.  A prediction (``predict``,
  ``predict_proba``, ...) derives from its whole input row: that is the contract, and it is FULL;
- fitted statistics are *control* lineage: an estimator remembers (weakly) the node of the data it was fit
  on; a transformer's output column ``j`` control-depends on every row of the fit data's columns behind
  ``j``, a prediction on every cell of the fit data (and of ``y`` when ``y`` was tracked).  Queries follow
  them only with ``control=True``.

``train_test_split`` returns tracked splits with exact row lineage (tracked frames are split with ``iloc``).

The hooks are installed when :mod:`whence.tabular` is imported, whether scikit-learn was imported before or
is imported after: every class deriving from :class:`sklearn.base.BaseEstimator` (and the mixins in its
MRO) has those methods wrapped, and so has every class defined later.  A call with no tracked argument costs
one ``isinstance`` check.
"""

from __future__ import annotations

import functools
import importlib.abc
import sys
import threading
import types
import warnings
import weakref

import numpy as np
import pandas as pd

from ..errors import PartialLineageWarning
from ..graph import Node
from ..tracked import TrackedArray, wrap as _wrap
from .frame import TrackedFrame, TrackedSeries, _guard, lineage_of
from .relations import Lineage, Part, RowRel, TableMap

__all__ = ["install", "output_node", "METHODS"]

METHODS = ("fit", "transform", "fit_transform", "predict", "predict_proba", "predict_log_proba",
           "decision_function", "score_samples")

_TRACKED = (TrackedArray, TrackedFrame, TrackedSeries)
_FRAMES = (TrackedFrame, TrackedSeries)
_MARK = "__whence_sklearn__"

_local = threading.local()


def _get(name):
    return getattr(_local, name, 0)


# --------------------------------------------------------------------------------------------- registries

# estimator id -> (weakref to the estimator, pieces of X, pieces of y, pieces of other tracked fit arguments,
# the fit frame's column names or None).
# A piece is (weakref to a node, a one-row relation to the node's rows the fit data used (None: all rows), the
# node's row count, a columns matrix (fit data columns x node columns), control flag): the fit data's lineage
# composed one hop back, so that a temporary selection (``model.fit(df[["a", "b"]], df["y"])``) still leads to
# its sources.  Nodes are held weakly: a fitted model never keeps a source name alive.
_fits: dict = {}

# id of a sparse (or other untrackable) output -> (weakref to it, its node)
_outputs: dict = {}


def _forget(est):
    _fits.pop(id(est), None)


def _weak_key_entry(table, obj, value):
    key = id(obj)

    def gone(ref, key=key):
        e = table.get(key)
        if e is not None and e[0] is ref:
            del table[key]

    try:
        ref = weakref.ref(obj, gone)
    except TypeError:
        return False
    table[key] = (ref,) + value
    return True


def output_node(x):
    """The lineage node of an output whence could not wrap (a scipy sparse matrix), or None."""
    e = _outputs.get(id(x))
    if e is not None and e[0]() is x:
        return e[1]
    return None


def _register_output(x, node):
    _weak_key_entry(_outputs, x, (node,))


def _pieces(x):
    """The fit data ``x`` as pieces (see ``_fits``)."""
    if not isinstance(x, _TRACKED):
        return ()
    if isinstance(x, TrackedArray) and len(x.shape) > 2:
        return ()
    inp = _Input(x)
    if inp.parts is None:
        return ((weakref.ref(inp.node), None, inp.n, np.eye(inp.ncols, dtype=bool), False),)
    out = []
    for node, rel, dcm, ctrl, _ in inp.parts:
        # one row standing for "every row of the fit data", as rows of this input
        rows = None if rel.all_rows or rel.is_identity else rel.group(np.zeros(rel.n_out, np.int64), 1)
        out.append((weakref.ref(node), rows, rel.n_src, np.array(dcm, bool), ctrl))
    return tuple(out)


def _record_fit(est, args, kwargs, X, y):
    others = []
    for v in list(args[2:]) + [v for k, v in kwargs.items() if k not in ("X", "y")]:
        others.extend(_pieces(v))
    xp, yp = _pieces(X), _pieces(y)
    if not (xp or yp or others):
        _forget(est)
        return
    names = None
    if isinstance(X, TrackedFrame):
        with _guard:
            names = list(X.columns)
    _weak_key_entry(_fits, est, (xp, yp, tuple(others), names))


def _fit_entry(est):
    e = _fits.get(id(est))
    if e is None or e[0]() is not est:
        return None
    return e


def _ncols(node):
    return 1 if len(node.shape) < 2 else int(node.shape[1])


# --------------------------------------------------------------------------------------------- warnings

def _stacklevel():
    f = sys._getframe(1)
    level = 1
    while f is not None:
        mod = f.f_globals.get("__name__", "") or ""
        if not mod.startswith(("whence", "sklearn", "numpy", "pandas", "scipy", "joblib", "functools",
                               "contextlib")):
            return level
        f = f.f_back
        level += 1
    return 2


def _warn_partial(what):
    warnings.warn(f"whence: {what} is not covered; each of its output cells is taken to derive from the whole "
                  f"input row (PARTIAL)", PartialLineageWarning, stacklevel=_stacklevel())


# --------------------------------------------------------------------------------------------- column maps

class _NoMap(Exception):
    """The fitted attributes do not explain the output's shape: fall back to the whole row."""


class _Maps:
    """Column lineage of one call: ``M`` (output x input columns) for data, ``C`` for fitted statistics
    (None: the transformer keeps none), ``Y`` (per output column: depends on the fit's ``y``), reasons."""

    __slots__ = ("M", "C", "Y", "reasons")

    def __init__(self, M, C=None, Y=None, reasons=()):
        self.M = M
        self.C = C
        self.Y = Y
        self.reasons = list(reasons)


def _ones(k, n):
    return np.ones((k, n), bool)


def _predictor_maps(k, n_in):
    return _Maps(_ones(k, n_in), _ones(k, n_in), np.ones(k, bool))


def _identity(n_in, n_out, stateful=True):
    if n_in != n_out:
        raise _NoMap
    M = np.eye(n_in, dtype=bool)
    return _Maps(M, M.copy() if stateful else None)


def _whole_row(n_in, n_out, stateful=True, supervised=False):
    M = _ones(n_out, n_in)
    return _Maps(M, M.copy() if stateful else None, np.ones(n_out, bool) if supervised else None)


def _blocks(sizes, n_in, n_out):
    sizes = [int(s) for s in sizes]
    if len(sizes) != n_in or sum(sizes) != n_out or min(sizes, default=0) < 0:
        raise _NoMap
    M = np.zeros((n_out, n_in), bool)
    start = 0
    for i, s in enumerate(sizes):
        M[start:start + s, i] = True
        start += s
    return _Maps(M, M.copy())


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
    return _Maps(M, M.copy())


def _h_indicator(est, n_in, n_out, names, warn):
    feats = np.asarray(est.features_, np.int64)
    if feats.size != n_out:
        raise _NoMap
    M = np.zeros((n_out, n_in), bool)
    M[np.arange(n_out), feats] = True
    return _Maps(M, M.copy())


def _h_poly(est, n_in, n_out, names, warn):
    p = np.asarray(est.powers_)
    if p.shape != (n_out, n_in):
        raise _NoMap
    return _Maps(p > 0, None)  # the powers are fixed by n_features: no fitted statistic


def _h_selector(est, n_in, n_out, names, warn):
    sup = np.asarray(est.get_support(indices=True), np.int64)
    if sup.size != n_out:
        raise _NoMap
    M = np.zeros((n_out, n_in), bool)
    M[np.arange(n_out), sup] = True
    # which columns survive depends on every column of the fit data (and on y)
    return _Maps(M, _ones(n_out, n_in), np.ones(n_out, bool))


def _h_function(est, n_in, n_out, names, warn):
    # reached when func is not run on tracked data (validate=True, or inside a ColumnTransformer)
    if est.func is None:
        return _identity(n_in, n_out, stateful=False)
    if warn:
        _warn_partial("FunctionTransformer (func is not run on tracked data with validate=True or inside a "
                      "composite transformer)")
    return _Maps(_ones(n_out, n_in), None, None,
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
            sub = _maps(trans, len(pos), width, sub_names, warn)
        M[sl][:, pos] = sub.M
        if sub.C is not None:
            C[sl][:, pos] = sub.C
        if sub.Y is not None:
            Y[sl] = sub.Y
        reasons += sub.reasons
    return _Maps(M, C, Y, reasons)


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
        sub = _identity(n_in, w, False) if _is_str(trans, "passthrough") else _maps(trans, n_in, w, names, warn)
        M[start:start + w] = sub.M
        if sub.C is not None:
            C[start:start + w] = sub.C
        if sub.Y is not None:
            Y[start:start + w] = sub.Y
        reasons += sub.reasons
        start += w
    return _Maps(M, C, Y, reasons)


def _steps(pipe):
    return [s for _, s in pipe.steps if not (s is None or _is_str(s, "passthrough"))]


def _pipeline_maps(pipe, n_in, n_out, names, warn, predict=False):
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
        m = _maps(s, cur, w, cur_names, warn)
        D, K, Y = _compose(m, D, K, Y)
        reasons += m.reasons
        cur, cur_names = w, None
    if final is not None:
        D, K, Y = _compose(_predictor_maps(n_out, cur), D, K, Y)
    elif cur != n_out:
        raise _NoMap
    return _Maps(D, K, Y, reasons)


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
    return _pipeline_maps(est, n_in, n_out, names, warn)


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


def _is_sk(cls, qualname=None):
    mod = getattr(cls, "__module__", "") or ""
    return (mod == "sklearn" or mod.startswith("sklearn.")) and (qualname is None or cls.__qualname__ == qualname)


def _definer(tp, attr):
    for b in tp.__mro__:
        if attr in b.__dict__:
            return b
    return None


def _handler(key):
    if key is not None and _is_sk(key):
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
        _warn_partial(name)
    C = _ones(n_out, n_in) if _requires_fit(est) else None
    return _Maps(_ones(n_out, n_in), C, np.ones(n_out, bool),
                 [f"{name}: whence does not know this transformer's column lineage; each output cell is taken "
                  f"to derive from the whole input row"])


def _maps_for(key, est, n_in, n_out, names, warn=True):
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


def _maps(est, n_in, n_out, names=None, warn=True):
    """Static column maps of a fitted transformer (used for the parts of composite transformers)."""
    tp = type(est)
    key = _definer(tp, "transform") or _definer(tp, "fit_transform")
    return _maps_for(key, est, n_in, n_out, names, warn)


# --------------------------------------------------------------------------------------------- inputs

def _plain(v):
    if isinstance(v, TrackedArray):
        return v._data
    if isinstance(v, TrackedFrame):
        with _guard:
            return pd.DataFrame(v)
    if isinstance(v, TrackedSeries):
        with _guard:
            return pd.Series(v)
    return v


def _call_plain(fn, est, args, kwargs):
    pa = tuple(_plain(a) for a in args)
    pk = {k: _plain(v) for k, v in kwargs.items()}
    _local.depth = _get("depth") + 1
    try:
        return fn(est, *pa, **pk)
    finally:
        _local.depth -= 1


def _dcm(p, nidx, ncols):
    if getattr(p, "wide", False):
        return np.broadcast_to(p.cmat[0], (ncols, p.cmat.shape[1]))
    return p.cmat[nidx:]


def _icm(p, nidx):
    if getattr(p, "wide", False) or nidx == 0:
        return None
    return p.cmat[:nidx]


class _Input:
    """A tracked input: its node, rows and columns, and (when its lineage is a table map) its parts, so that
    the output's lineage is composed in one hop to the inputs' own inputs."""

    __slots__ = ("node", "n", "ncols", "parts", "nidx", "reasons", "history", "frame", "names", "index")

    def __init__(self, X=None, node=None):
        self.frame = None
        self.names = None
        self.index = None
        self.parts = None
        self.nidx = 0
        self.reasons = ()
        self.history = ()
        if isinstance(X, _FRAMES):
            lin = lineage_of(X)
            self.node = lin.node
            self.n = lin.n
            self.ncols = lin.ncols
            self.nidx = lin.nidx
            self.parts = [(p.node, p.rel, _dcm(p, lin.nidx, lin.ncols), p.control, _icm(p, lin.nidx))
                          for p in lin.parts]
            self.reasons = tuple(lin.reasons)
            self.history = (lin.node,)
            self.frame = X
            with _guard:
                self.index = X.index
                if isinstance(X, pd.DataFrame):
                    self.names = list(X.columns)
            return
        if node is None:
            node = X.node
        shape = node.shape
        if len(shape) > 2:
            flat = (shape[0], int(np.prod(shape[1:])))
            from ..maps import ViewMap
            node = Node("reshape", flat, ViewMap(flat, shape, "reshape"), (node,))
            shape = flat
        self.node = node
        self.n = shape[0] if shape else 1
        self.ncols = _ncols(node)
        m = node.map
        if type(m) is TableMap and len(shape) <= 2 and m.ncols == self.ncols:
            self.parts = [(p.node, p.rel, _dcm(p, m.nidx, m.ncols), p.control, None) for _, p in m.entries]
            self.reasons = (node.partial,) if node.partial else ()
            self.history = (node,)


# --------------------------------------------------------------------------------------------- outputs

def _shape_of(out):
    """(rows, columns, index levels, 1-D) of an output whence can track, or None."""
    if isinstance(out, np.ndarray):
        if out.ndim == 0:
            return None
        return out.shape[0], (1 if out.ndim == 1 else int(np.prod(out.shape[1:]))), 0, out.ndim == 1
    if isinstance(out, pd.DataFrame):
        return len(out), out.shape[1], out.index.nlevels, False
    if isinstance(out, pd.Series):
        return len(out), 1, out.index.nlevels, True
    sp = sys.modules.get("scipy.sparse")
    if sp is not None and sp.issparse(out) and len(out.shape) == 2:
        return out.shape[0], out.shape[1], 0, False
    return None


def _with_index_rows(cm, nidx, top=None):
    if not nidx:
        return cm
    if top is None or top.shape[0] != nidx:
        top = np.zeros((nidx, cm.shape[1]), bool)
    return np.concatenate([top, cm], axis=0)


def _data_parts(inp, M, n_out, nidx, keep_index):
    parts = []
    if inp.parts is not None and n_out == inp.n:
        for node, rel, dcm, ctrl, icm in inp.parts:
            cm = M @ dcm
            if not cm.any():
                continue
            parts.append(Part(node, rel, _with_index_rows(cm, nidx, icm if keep_index else None), ctrl))
        return parts
    rel = RowRel.identity(inp.n) if n_out == inp.n else RowRel.everything(n_out, inp.n)
    if M.any():
        parts.append(Part(inp.node, rel, _with_index_rows(M, nidx), False))
    return parts


def _all_rows(n_out, rows, n_src):
    """Every output row derives from the input rows of the one-row relation ``rows`` (None: all rows)."""
    if rows is None:
        return RowRel.everything(n_out, n_src)
    return rows.take(np.zeros(n_out, np.int64))


def _piece_parts(pieces, colsel, n_out, nidx):
    """Control parts: output column ``o`` depends on every row of the fit data's columns ``colsel[o]``."""
    parts = []
    k = colsel.shape[0]
    for ref, rows, n_src, dcm, _ in pieces:
        node = ref()
        if node is None:
            continue
        if colsel.shape[1] != dcm.shape[0]:
            colsel = np.broadcast_to(colsel.any(1)[:, None], (k, dcm.shape[0]))
        cm = colsel @ dcm
        if cm.any():
            parts.append(Part(node, _all_rows(n_out, rows, n_src), _with_index_rows(cm, nidx), True))
    return parts


def _fit_columns(C, names, fit_names):
    """``C`` (output x columns of the data transformed now) as output x columns of the fit data: a frame may
    come with its columns in another order (``ColumnTransformer`` selects them by name)."""
    if names is None or fit_names is None or names == fit_names:
        return C
    try:
        pos = pd.Index(names).get_indexer(fit_names)
    except Exception:  # duplicated labels: every fit column behind any of the output's columns
        return np.broadcast_to(C.any(1)[:, None], (C.shape[0], len(fit_names)))
    out = np.zeros((C.shape[0], len(fit_names)), bool)
    ok = pos >= 0  # a fit column the data lacks now was dropped (sklearn raises otherwise)
    out[:, ok] = C[:, pos[ok]]
    return out


def _control_parts(est, maps, n_out, k, nidx, names=None):
    if _get("flow"):
        return []  # inside a pipeline: the pipeline adds the composed control of its own fit
    e = _fit_entry(est)
    if e is None:
        return []
    _, xp, yp, others, fit_names = e
    C, Y = maps.C, maps.Y
    parts = []
    if C is not None:
        parts += _piece_parts(xp, _fit_columns(C, names, fit_names), n_out, nidx)
        stateful = C.any(1)
        if stateful.any() and others:
            parts += _piece_parts(others, np.broadcast_to(stateful[:, None], (k, 1)), n_out, nidx)
    if Y is not None and Y.any() and yp:
        parts += _piece_parts(yp, np.broadcast_to(Y[:, None], (k, 1)), n_out, nidx)
    return parts


def _emit(out, inp, parts, reasons, op, info):
    """Wrap ``out`` (the plain result) with a lineage built from ``parts``."""
    n_out, k, nidx, one_d = info
    reasons = [r for r in reasons if r]
    if isinstance(out, (pd.DataFrame, pd.Series)):
        from .frame import _attach
        with _guard:
            return _attach(out, parts, op, [inp.frame] if inp.frame is not None else [], reasons)
    lin = Lineage(parts, n_out, 0, k, reasons, op=op, history=inp.history, series=one_d)
    node = lin.node
    if isinstance(out, np.ndarray):
        if out.ndim > 2:
            from ..maps import ViewMap
            node = Node("reshape", out.shape, ViewMap(out.shape, node.shape, "reshape"), (node,))
        return _wrap(out, node)
    _register_output(out, node)
    return out


def _track_one(est, out, inp, maps_fn, op, extra_reasons=()):
    info = _shape_of(out)
    if info is None:
        return out
    if isinstance(out, TrackedArray):
        out = out._data
        info = _shape_of(out)
    n_out, k, nidx, _ = info
    maps = maps_fn(k)
    keep_index = inp.index is not None and isinstance(out, (pd.DataFrame, pd.Series)) \
        and out.index.nlevels == inp.nidx and out.index.equals(inp.index)
    parts = _data_parts(inp, maps.M, n_out, nidx, keep_index)
    parts += _control_parts(est, maps, n_out, k, nidx, inp.names)
    reasons = list(inp.reasons) + maps.reasons + list(extra_reasons)
    if n_out != inp.n:
        reasons.append(f"{op}: the output has {n_out} rows for {inp.n} input rows; every output row is taken to "
                       f"derive from every input row")
    return _emit(out, inp, parts, reasons, op, info)


def _track(est, res, inp, maps_fn, op, predict, extra_reasons=()):
    if isinstance(res, (tuple, list)):
        items = list(res)
        for i, v in enumerate(items):
            if (predict or i == 0) and _shape_of(v) is not None and _shape_of(v)[0] == inp.n:
                items[i] = _track_one(est, v, inp, maps_fn, op, extra_reasons)
        if isinstance(res, list):
            return items
        return type(res)._make(items) if hasattr(type(res), "_make") else type(res)(items)
    return _track_one(est, res, inp, maps_fn, op, extra_reasons)


def _is_tracked_output(res):
    if isinstance(res, _TRACKED):
        return True
    if output_node(res) is not None:
        return True
    if isinstance(res, np.ndarray):
        from .frame import plain_node
        return plain_node(res) is not None
    return False


def _result_node(res):
    if isinstance(res, TrackedArray):
        return res.node
    if isinstance(res, _FRAMES):
        return lineage_of(res).node
    n = output_node(res)
    if n is None and isinstance(res, np.ndarray):
        from .frame import plain_node
        n = plain_node(res)
    return n


# --------------------------------------------------------------------------------------------- the calls

def _op(est, name):
    return f"{type(est).__name__}.{name}"


def _user_code(est, name):
    """True when ``name`` of ``est`` runs the user's own code (a transformer class written outside
    scikit-learn): ``fit_transform`` counts when the user wrote ``fit`` and ``transform``."""
    tp = type(est)
    if _is_sk(tp):
        return False
    d = _definer(tp, name)
    if d is not None and not _is_sk(d) and d.__module__ != "builtins":
        return True
    if name == "fit_transform":
        return all(_definer(tp, m) is not None and not _is_sk(_definer(tp, m)) for m in ("fit", "transform"))
    return False


def _flow(cls, est, name):
    if _is_sk(cls, "Pipeline"):
        return "pipeline"
    if _user_code(est, name):
        return "user"  # the user's own fit/transform run on the tracked data: numpy and pandas tracking record
    if name == "fit_transform" and _is_sk(cls, "TransformerMixin"):
        return "mixin"  # fit then transform: the tracked data flows into both (their own wrappers record)
    if _is_sk(cls, "FunctionTransformer") and name == "transform" and not getattr(est, "validate", True):
        return "function"
    return None


def _run(cls, name, fn, est, args, kwargs, X, y):
    if _get("depth"):
        # inside a call whence already covers, with plain data: no second record
        return _call_plain(fn, est, args, kwargs)
    flow = _flow(cls, est, name)
    fitting = name in ("fit", "fit_transform")
    predict = name not in ("fit", "transform", "fit_transform")
    flowed = False
    if flow == "pipeline":
        _local.flow = _get("flow") + 1
        try:
            res = fn(est, *args, **kwargs)
        finally:
            _local.flow -= 1
    elif flow == "mixin":
        res = fn(est, *args, **kwargs)
        flowed = True
    elif flow in ("function", "user"):
        try:
            res = fn(est, *args, **kwargs)
            flowed = True
        except Exception:
            res = _call_plain(fn, est, args, kwargs)  # the user's own error is raised here, unchanged
    else:
        res = _call_plain(fn, est, args, kwargs)
    if fitting:
        _record_fit(est, args, kwargs, X, y)
    if name == "fit" or not isinstance(X, _TRACKED):
        return res
    if flow == "pipeline":
        return _pipeline_output(est, name, res, X, predict)
    if flowed and _is_tracked_output(res):
        return res
    op = _op(est, name)
    inp = _Input(X)
    n_in = inp.ncols
    if predict:
        return _track(est, res, inp, lambda k: _predictor_maps(k, n_in), op, True)
    key = cls
    if name == "fit_transform" and _is_sk(cls):
        key = _definer(type(est), "transform") or cls
    if flow == "function":
        reason = "FunctionTransformer: func did not keep lineage on tracked data"
        return _track(est, res, inp, lambda k: _Maps(_ones(k, n_in), None, None, [reason]), op, False)
    return _track(est, res, inp, lambda k: _maps_for(key, est, n_in, k, inp.names), op, False)


def _pipeline_output(pipe, name, res, X, predict):
    """The result of a pipeline whose steps saw the tracked data: add the control of the pipeline's fit."""
    inp = _Input(X)
    op = _op(pipe, name)

    def control_maps(k):
        try:
            return _pipeline_maps(pipe, inp.ncols, k, inp.names, False, predict)
        except Exception:
            return _predictor_maps(k, inp.ncols)

    tracked = _is_tracked_output(res) or (isinstance(res, (tuple, list)) and
                                          any(_is_tracked_output(v) for v in res))
    if not tracked:
        # a step dropped the lineage: fall back to the whole row (a prediction's contract, else PARTIAL)
        reasons = []
        if not predict:
            _warn_partial(f"{type(pipe).__name__} (a step did not keep lineage)")
            reasons.append(f"{type(pipe).__name__}: a step did not keep lineage; each output cell is taken to "
                           f"derive from the whole input row")

        def maps_fn(k):
            c = control_maps(k)
            return _Maps(_ones(k, inp.ncols), c.C, c.Y, reasons)

        return _track(pipe, res, inp, maps_fn, op, predict)
    if _get("flow") or _fit_entry(pipe) is None:
        return res
    return _add_control(pipe, res, inp, control_maps, op)


def _add_control(est, res, inp, control_maps, op):
    if isinstance(res, (tuple, list)):
        items = [(_add_control(est, v, inp, control_maps, op) if _is_tracked_output(v) else v) for v in res]
        if isinstance(res, list):
            return items
        return type(res)._make(items) if hasattr(type(res), "_make") else type(res)(items)
    info = _shape_of(res._data if isinstance(res, TrackedArray) else res)
    if info is None:
        return res
    n_out, k, nidx, _ = info
    cparts = _control_parts(est, control_maps(k), n_out, k, nidx, inp.names)
    if not cparts:
        return res
    own = _Input(res) if isinstance(res, _FRAMES) else _Input(node=_result_node(res))
    parts = _data_parts(own, np.eye(k, dtype=bool), n_out, nidx, True) + cparts
    data = res._data if isinstance(res, TrackedArray) else res
    if isinstance(data, (pd.DataFrame, pd.Series)):
        with _guard:
            data = pd.DataFrame(data) if isinstance(data, pd.DataFrame) else pd.Series(data)
    return _emit(data, own, parts, list(own.reasons), op, info)


# --------------------------------------------------------------------------------------------- patching

def _make_wrapper(cls, name, fn):
    if name in ("fit", "fit_transform"):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            if args:
                X = args[0]
                y = args[1] if len(args) > 1 else kwargs.get("y")
            else:
                X = kwargs.get("X")
                y = kwargs.get("y")
            if not isinstance(X, _TRACKED) and not isinstance(y, _TRACKED):
                if _fits:
                    _forget(self)
                return fn(self, *args, **kwargs)
            return _run(cls, name, fn, self, args, kwargs, X, y)
    else:
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            X = args[0] if args else kwargs.get("X")
            if not isinstance(X, _TRACKED):
                return fn(self, *args, **kwargs)
            return _run(cls, name, fn, self, args, kwargs, X, None)
    setattr(wrapper, _MARK, True)
    return wrapper


_patched: weakref.WeakSet = weakref.WeakSet()


def _patch_own(cls):
    """Wrap the covered methods defined in ``cls.__dict__`` (functions and ``available_if`` descriptors)."""
    d = cls.__dict__
    for name in METHODS:
        attr = d.get(name)
        if attr is None:
            continue
        if isinstance(attr, types.FunctionType):
            if not getattr(attr, _MARK, False):
                setattr(cls, name, _make_wrapper(cls, name, attr))
        elif hasattr(attr, "fn") and hasattr(attr, "check") and callable(attr.fn):
            # sklearn.utils._available_if._AvailableIfDescriptor: keep the descriptor (hasattr semantics)
            if not getattr(attr.fn, _MARK, False):
                attr.fn = _make_wrapper(cls, name, attr.fn)


def _patch_mro(cls):
    for b in cls.__mro__:
        if b is object or b.__module__ == "builtins" or b in _patched:
            continue
        try:
            _patch_own(b)
            _patched.add(b)
        except TypeError:  # a class whose attributes cannot be set
            pass


def _all_subclasses(root):
    seen, stack, out = set(), [root], []
    while stack:
        c = stack.pop()
        try:
            subs = c.__subclasses__()
        except TypeError:
            subs = type.__subclasses__(c)
        for s in subs:
            if s not in seen:
                seen.add(s)
                out.append(s)
                stack.append(s)
    return out


def _hook_init_subclass(klass, base_estimator):
    """Wrap ``klass.__init_subclass__`` (keeping the existing one) so that new estimator classes get patched
    once every ``__init_subclass__`` of the chain has run (``set_output`` wraps ``transform`` in one)."""
    existing = klass.__dict__.get("__init_subclass__")
    func = getattr(existing, "__func__", None)
    if func is not None and getattr(func, _MARK, False):
        return

    def __init_subclass__(cls, **kwargs):
        _local.hook = _get("hook") + 1
        try:
            if func is not None:
                func(cls, **kwargs)
            else:
                super(klass, cls).__init_subclass__(**kwargs)
        finally:
            _local.hook -= 1
        if not _local.hook and issubclass(cls, base_estimator):
            try:
                _patch_mro(cls)
            except Exception as exc:  # pragma: no cover - never break a class definition
                warnings.warn(f"whence: could not add lineage to {cls.__name__}: {exc}", RuntimeWarning)

    if func is not None:
        functools.update_wrapper(__init_subclass__, func)
    setattr(__init_subclass__, _MARK, True)
    klass.__init_subclass__ = classmethod(__init_subclass__)


def _install_estimators(base_mod):
    BE = base_mod.BaseEstimator
    _hook_init_subclass(BE, BE)
    so = sys.modules.get("sklearn.utils._set_output")
    mixin = getattr(so, "_SetOutputMixin", None) if so is not None else None
    if mixin is not None:
        _hook_init_subclass(mixin, BE)
    for c in _all_subclasses(BE):
        _patch_mro(c)


def _frame_rows(X, indices):
    key = np.asarray(indices)
    if key.dtype == bool:
        key = np.flatnonzero(key)
    return X.iloc[key.astype(np.int64, copy=False)]


def _patch_split(mod):
    """``train_test_split`` (and the cross-validation helpers' ``_safe_split``) index rows with
    ``_safe_indexing``, that is ``DataFrame.take``, which tracked frames do not cover: tracked frames and series
    are split with ``iloc`` instead, which keeps exact row lineage."""
    orig = getattr(mod, "_safe_indexing", None)
    if orig is None or getattr(orig, _MARK, False):
        return

    @functools.wraps(orig)
    def _safe_indexing(X, indices, *args, **kwargs):
        if isinstance(X, _FRAMES) and not args and kwargs.get("axis", 0) == 0 and \
                not isinstance(indices, slice) and not np.isscalar(indices):
            return _frame_rows(X, indices)
        return orig(X, indices, *args, **kwargs)

    setattr(_safe_indexing, _MARK, True)
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
        if not isinstance(X, _TRACKED) or _get("depth"):
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

    setattr(fn, _MARK, True)
    return fn


def _opaque_preprocessing(name, orig, X, args, kwargs):
    from ..buckets.opaque import opaque_call
    from .frame.cellwise import _as_arrays
    Xt = _as_arrays(X)
    if Xt is None:
        return orig(X, *args, **kwargs)
    return opaque_call(orig, (Xt,) + tuple(args), kwargs,
                       reason=f"sklearn.preprocessing.{name} with these arguments is not covered")


def _label_binarize(orig):
    """``label_binarize(y, classes=...)`` on a tracked y: output cell (i, j) derives from y[i]."""

    @functools.wraps(orig)
    def fn(y, *args, **kwargs):
        if not isinstance(y, _TRACKED) or _get("depth"):
            return orig(y, *args, **kwargs)
        plain = orig(_plain(y), *args, **kwargs)
        node = y.node if isinstance(y, TrackedArray) else (lineage_of(y).node if isinstance(y, pd.Series)
                                                             else None)
        if node is None or len(node.shape) != 1 or not isinstance(plain, np.ndarray) or plain.ndim != 2 or \
                plain.shape[0] != node.shape[0]:
            return _opaque_preprocessing("label_binarize", orig, y, args, kwargs)
        # every output column is a function of y[i] alone: y[i] broadcast along the row
        return _with_values(node, plain)

    setattr(fn, _MARK, True)
    return fn


def _with_values(node, values):
    """``values`` (n, k) with the lineage of the 1-D ``node`` broadcast along the rows: cell (i, j) from i."""
    from ..maps import ElementwiseMap, ViewMap
    n = node.shape[0]
    col = Node("reshape", (n, 1), ViewMap((n, 1), (n,), "reshape"), (node,))
    out = Node("label_binarize", values.shape, ElementwiseMap(values.shape, [(n, 1)]), (col,))
    return _wrap(np.asarray(values), out)


def _patch_preprocessing(mod):
    for name in list(_FUNCTIONS) + ["label_binarize"]:
        orig = getattr(mod, name, None)
        if orig is None or getattr(orig, _MARK, False):
            continue
        setattr(mod, name, _label_binarize(orig) if name == "label_binarize" else
                _preprocessing_function(name, orig, mod))


_AFTER = {"sklearn.base": _install_estimators, "sklearn.model_selection._split": _patch_split,
          "sklearn.utils.metaestimators": _patch_split, "sklearn.preprocessing": _patch_preprocessing}


class _Loader:
    """Runs the real loader, then the hook (the spec keeps the real loader afterwards)."""

    def __init__(self, inner, name, finder):
        self._inner = inner
        self._name = name
        self._finder = finder

    def create_module(self, spec):
        create = getattr(self._inner, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        try:
            self._inner.exec_module(module)
        finally:
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self._inner
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self._inner
        self._finder.done(self._name, module)

    def __getattr__(self, attr):
        return getattr(self._inner, attr)


class _Finder(importlib.abc.MetaPathFinder):
    """Watches for scikit-learn modules and installs the hooks right after they are imported."""

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, fullname, self)
        return spec

    def done(self, name, module):
        self.names.discard(name)
        if not self.names:
            try:
                sys.meta_path.remove(self)
            except ValueError:
                pass
        try:
            _AFTER[name](module)
        except Exception as exc:  # pragma: no cover - never break importing scikit-learn
            warnings.warn(f"whence: could not install the scikit-learn lineage hooks: {exc}", RuntimeWarning)


_installed = False


def install():
    """Install the scikit-learn hooks now (scikit-learn already imported) or when it is imported."""
    global _installed
    if _installed:
        return
    _installed = True
    watch = []
    for name, fn in _AFTER.items():
        mod = sys.modules.get(name)
        if mod is not None:
            fn(mod)
        else:
            watch.append(name)
    if watch:
        sys.meta_path.insert(0, _Finder(watch))


install()


from .. import hooks as _hooks  # noqa: E402

# the query layer asks for the node of a model output whence could not wrap (see whence.hooks)
if output_node not in _hooks.NODE_RESOLVERS:
    _hooks.NODE_RESOLVERS.append(output_node)
