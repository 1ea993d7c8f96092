"""The outputs of an estimator call, tracked: an ndarray becomes a tracked array, a DataFrame a tracked frame,
and a scipy sparse output stays sparse and is registered (:func:`output_node`) so that its lineage can be
queried.  Output row ``i`` derives from input row ``i``; its columns follow the column maps.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ...graph import Node
from ...tracked import TrackedArray, wrap as _wrap
from ..frame import lineage_of
from ..relations import Lineage, Part, RowRel
from .base import FRAME_TYPES, TRACKED_TYPES, pandas_untracked, weak_key_entry
from .fits import control_parts
from .inputs import with_index_rows


# id of a sparse (or other untrackable) output -> (weakref to it, its node)
_outputs: dict = {}


def output_node(x):
    """The lineage node of an output whence could not wrap (a scipy sparse matrix), or None."""
    e = _outputs.get(id(x))
    if e is not None and e[0]() is x:
        return e[1]
    return None


def _register_output(x, node):
    weak_key_entry(_outputs, x, (node,))


def output_shape(out):
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


def data_parts(inp, M, n_out, nidx, keep_index):
    """The data parts of an output: output column ``o`` from the input columns ``M[o]``, row ``i`` from row ``i``
    (or every output row from every input row when the counts differ)."""
    parts = []
    if inp.parts is not None and n_out == inp.n:
        for node, rel, dcm, ctrl, icm in inp.parts:
            cm = M @ dcm
            if not cm.any():
                continue
            parts.append(Part(node, rel, with_index_rows(cm, nidx, icm if keep_index else None), ctrl))
        return parts
    rel = RowRel.identity(inp.n) if n_out == inp.n else RowRel.everything(n_out, inp.n)
    if M.any():
        parts.append(Part(inp.node, rel, with_index_rows(M, nidx), False))
    return parts


def emit_tracked(out, inp, parts, reasons, op, info):
    """Wrap ``out`` (the plain result) with a lineage built from ``parts``."""
    n_out, k, nidx, one_d = info
    reasons = [r for r in reasons if r]
    if isinstance(out, (pd.DataFrame, pd.Series)):
        from ..frame import attach
        with pandas_untracked:
            return attach(out, parts, op, [inp.frame] if inp.frame is not None else [], reasons)
    lin = Lineage(parts, n_out, 0, k, reasons, op=op, history=inp.history, series=one_d)
    node = lin.node
    if isinstance(out, np.ndarray):
        if out.ndim > 2:
            from ...maps import ViewMap
            node = Node("reshape", out.shape, ViewMap(out.shape, node.shape, "reshape"), (node,))
        return _wrap(out, node)
    _register_output(out, node)
    return out


def _track_one(est, out, inp, maps_fn, op, extra_reasons=()):
    info = output_shape(out)
    if info is None:
        return out
    if isinstance(out, TrackedArray):
        out = out._data
        info = output_shape(out)
    n_out, k, nidx, _ = info
    maps = maps_fn(k)
    keep_index = inp.index is not None and isinstance(out, (pd.DataFrame, pd.Series)) \
        and out.index.nlevels == inp.nidx and out.index.equals(inp.index)
    parts = data_parts(inp, maps.M, n_out, nidx, keep_index)
    parts += control_parts(est, maps, n_out, k, nidx, inp.names)
    reasons = list(inp.reasons) + maps.reasons + list(extra_reasons)
    if n_out != inp.n:
        reasons.append(f"{op}: the output has {n_out} rows for {inp.n} input rows; every output row is taken to "
                       f"derive from every input row")
    return emit_tracked(out, inp, parts, reasons, op, info)


def track_result(est, res, inp, maps_fn, op, predict, extra_reasons=()):
    """The result ``res`` of a call, tracked (each item of a tuple or list whose rows match the input's, for a
    prediction; the first, for a transform)."""
    if isinstance(res, (tuple, list)):
        items = list(res)
        for i, v in enumerate(items):
            if (predict or i == 0) and output_shape(v) is not None and output_shape(v)[0] == inp.n:
                items[i] = _track_one(est, v, inp, maps_fn, op, extra_reasons)
        if isinstance(res, list):
            return items
        return type(res)._make(items) if hasattr(type(res), "_make") else type(res)(items)
    return _track_one(est, res, inp, maps_fn, op, extra_reasons)


def is_tracked_output(res):
    """True when ``res`` already carries lineage (tracked, or a registered output)."""
    if isinstance(res, TRACKED_TYPES):
        return True
    if output_node(res) is not None:
        return True
    if isinstance(res, np.ndarray):
        from ..frame import plain_node
        return plain_node(res) is not None
    return False


def result_node(res):
    """The lineage node of a tracked result, or None."""
    if isinstance(res, TrackedArray):
        return res.node
    if isinstance(res, FRAME_TYPES):
        return lineage_of(res).node
    n = output_node(res)
    if n is None and isinstance(res, np.ndarray):
        from ..frame import plain_node
        n = plain_node(res)
    return n
