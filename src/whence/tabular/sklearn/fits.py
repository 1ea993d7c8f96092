"""Fitted statistics as control lineage: the fit data an estimator remembers (weakly), and the control parts
of an output that come from it.

An estimator fitted on tracked data keeps, per estimator id, the fit data's lineage composed one hop back
(:func:`record_fit`); a transformer's output column ``j`` then control-depends on every row of the fit data's
columns behind ``j``, a prediction on every cell of the fit data (and of ``y`` when ``y`` was tracked)
(:func:`control_parts`).  Queries follow these parts only with ``control=True``.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from ...tracked import TrackedArray
from ..frame import TrackedFrame
from ..relations import Part, RowRel
from .base import TRACKED_TYPES, nesting, pandas_untracked, weak_key_entry
from .inputs import TrackedInput, with_index_rows


# estimator id -> (weakref to the estimator, pieces of X, pieces of y, pieces of other tracked fit arguments,
# the fit frame's column names or None).
# A piece is (weakref to a node, a one-row relation to the node's rows the fit data used (None: all rows), the
# node's row count, a columns matrix (fit data columns x node columns), control flag): the fit data's lineage
# composed one hop back, so that a temporary selection (``model.fit(df[["a", "b"]], df["y"])``) still leads to
# its sources.  Nodes are held weakly: a fitted model never keeps a source name alive.
fitted_inputs: dict = {}


def forget_fit(est):
    """Drop what ``est`` remembered of its fit data (it was refitted on untracked data)."""
    fitted_inputs.pop(id(est), None)


def _pieces(x):
    """The fit data ``x`` as pieces (see ``fitted_inputs``)."""
    if not isinstance(x, TRACKED_TYPES):
        return ()
    if isinstance(x, TrackedArray) and len(x.shape) > 2:
        return ()
    inp = TrackedInput(x)
    if inp.parts is None:
        return ((weakref.ref(inp.node), None, inp.n, np.eye(inp.ncols, dtype=bool), False),)
    out = []
    for node, rel, dcm, ctrl, _ in inp.parts:
        # one row standing for "every row of the fit data", as rows of this input
        rows = None if rel.all_rows or rel.is_identity else rel.group(np.zeros(rel.n_out, np.int64), 1)
        out.append((weakref.ref(node), rows, rel.n_src, np.array(dcm, bool), ctrl))
    return tuple(out)


def record_fit(est, args, kwargs, X, y):
    """Remember (weakly) the lineage of the tracked fit data ``X``, ``y`` and other tracked arguments of ``est``."""
    others = []
    for v in list(args[2:]) + [v for k, v in kwargs.items() if k not in ("X", "y")]:
        others.extend(_pieces(v))
    xp, yp = _pieces(X), _pieces(y)
    if not (xp or yp or others):
        forget_fit(est)
        return
    names = None
    if isinstance(X, TrackedFrame):
        with pandas_untracked:
            names = list(X.columns)
    weak_key_entry(fitted_inputs, est, (xp, yp, tuple(others), names))


def fit_entry(est):
    """What ``est`` remembers of its fit data (see :data:`fitted_inputs`), or None."""
    e = fitted_inputs.get(id(est))
    if e is None or e[0]() is not est:
        return None
    return e


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
            parts.append(Part(node, _all_rows(n_out, rows, n_src), with_index_rows(cm, nidx), True))
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


def control_parts(est, maps, n_out, k, nidx, names=None):
    """The control parts of an output of ``est`` (``n_out`` rows, ``k`` columns, ``nidx`` index levels): the
    fit data behind each output column's fitted statistics, and the fit's ``y``."""
    if nesting("flow"):
        return []  # inside a pipeline: the pipeline adds the composed control of its own fit
    e = fit_entry(est)
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
