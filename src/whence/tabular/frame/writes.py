"""Writes into a tracked frame (``df[c] = v``, ``insert``, ``assign``, ``del``, ``loc[...] = v``): the written cells
take the value's lineage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..relations import Part, RowRel, node_cols
from .values import (is_scalar_like, plain_lineage, plain_node, scalar_lineage, scalar_parts,
                     warn_constant)
from .base import (align_rows, attach_inplace, guard_depth, guard, hashable, label_positions, remap, warn_partial,
                   column_positions, lineage_of)


def after_cell_write(obj, lin, key, value, kind, old_cols):
    """Lineage after ``obj.loc/iloc[key] = value``: the written cells take the value's lineage."""
    is_frame = isinstance(obj, pd.DataFrame)
    try:
        if is_frame and isinstance(key, tuple) and len(key) == 2:
            rk, ck = key
        else:
            rk, ck = key, slice(None)
        if callable(rk):
            rk = rk(obj)
        n = len(obj)
        if kind in ("iloc", "iat"):
            rpos = np.atleast_1d(np.arange(n, dtype=np.int64)[rk if not isinstance(rk, pd.Series) else np.asarray(rk)])
        else:
            rpos = label_positions(rk, obj.index)
            if rpos is None:
                rpos = pd.Series(np.arange(n, dtype=np.int64), index=obj.index).loc[rk]
            rpos = np.asarray(np.atleast_1d(rpos), np.int64)
        if is_frame:
            cols = obj.columns
            if kind in ("iloc", "iat"):
                cpos = np.atleast_1d(np.arange(len(cols))[ck])
            else:
                cpos = label_positions(ck, cols)
                if cpos is None:
                    cpos = pd.Series(np.arange(len(cols)), index=cols).loc[ck]
                cpos = np.atleast_1d(cpos)
        else:
            cpos = np.array([0])
    except Exception:
        cpos = None
    nidx = obj.index.nlevels
    ncols = obj.shape[1] if is_frame else 1
    if cpos is None or len(obj) != lin.n:
        parts = [p.with_(rel=RowRel.everything(len(obj), p.rel.n_src),
                         cmat=np.broadcast_to(p.cmat.any(0), (nidx + ncols, p.cmat.shape[1])).copy())
                 for p in lin.parts] + _everything_of(value, len(obj))
        parts += [p.with_(control=True) for p in _everything_of(rk, len(obj))]
        attach_inplace(obj, parts, f"{kind} write", [lin], [f"a {kind} write whence could not follow"])
        warn_partial(f"whence: a {kind} write whence could not follow; the frame is marked PARTIAL")
        return
    # columns added by the write are new, empty
    crow = list(range(lin.nidx)) + [lin.nidx + j for j in range(lin.ncols)] + [-1] * (ncols - lin.ncols)
    written = np.zeros(nidx + ncols, bool)
    written[nidx + np.asarray(cpos, np.int64)] = True
    keep_sel = np.arange(len(obj), dtype=np.int64)
    keep_sel[rpos] = -1
    parts = []
    kept = {}
    for p in remap(lin, crow):
        if p.wide:
            parts.append(p)
            continue
        cm_w = p.cmat & written[:, None]
        if not np.count_nonzero(cm_w):
            parts.append(p)  # no written column reads this part
            continue
        cm_k = p.cmat & ~written[:, None]
        if np.count_nonzero(cm_k):
            parts.append(p.with_(cmat=cm_k))
        rel = kept.get(id(p.rel))
        if rel is None:
            rel = kept[id(p.rel)] = p.rel.take(keep_sel)
        parts.append(p.with_(rel=rel, cmat=cm_w))
    vlin = lineage_of(value)
    reasons = []
    if vlin is not None and is_frame and isinstance(value, pd.DataFrame):
        fparts = _frame_value_parts(obj, value, vlin, kind, rpos, cpos, nidx + ncols)
        if fparts is None:
            reasons.append(f"a {kind} write of a DataFrame whose rows or columns cannot be matched (taken as "
                           f"all its cells)")
            warn_partial(f"whence: a {kind} write of a DataFrame whose rows or columns cannot be matched is "
                         f"taken as all its cells (PARTIAL)")
            parts += _everything_of(value, len(obj))
        else:
            parts += fparts
    elif vlin is not None:
        vsel = np.full(len(obj), -1, np.int64)
        if len(value) == len(rpos) and not isinstance(value, pd.Series):
            vsel[rpos] = np.arange(len(rpos))
        else:
            al = align_rows(value, obj)
            if al is False:
                reasons.append("a write from a Series whose index cannot be aligned (taken as all its cells)")
                al = np.full(len(obj), -1, np.int64)
                parts += _everything_of(value, len(obj))
            vsel[rpos] = (np.arange(len(obj)) if al is None else al)[rpos]
        for p in vlin.parts:
            row = p.data_row(vlin.nidx)
            cm = np.zeros((nidx + ncols, row.shape[0]), bool)
            cm[written] = row
            parts.append(Part(p.node, p.rel.take(vsel), cm, p.control))
    else:
        from ...tracked import TrackedArray
        if isinstance(value, TrackedArray):
            node = value.node
            parts.append(Part(node, RowRel.everything(len(obj), node.shape[0] if node.shape else 1),
                              np.ones((1, node_cols(node)), bool), wide=True))
            reasons.append(f"a {kind} write of a TrackedArray (taken as all its cells)")
            warn_partial(f"whence: a {kind} write of a TrackedArray is taken as all its cells (PARTIAL)")
        elif scalar_lineage(value) is not None:  # a reduction's scalar: the written cells, every cell it read
            vsel = np.full(len(obj), -1, np.int64)
            vsel[rpos] = 0
            parts += [p.with_(rel=p.rel.take(vsel)) for p in
                      scalar_parts(value, 1, nidx + ncols, rows=np.flatnonzero(written))]
        else:
            warn_constant(f"a {kind} write", value)
    mparts, mlin, mreason = _mask_control(rk, obj, written)
    parts += mparts
    if mreason:
        reasons.append(mreason)
    attach_inplace(obj, parts, f"{kind} write", [lin, vlin, mlin], reasons)


def _frame_value_parts(obj, value, vlin, kind, rpos, cpos, ncells):
    """Parts of ``obj.loc/iloc[rows, cols] = frame`` for the written cells, or None when whence cannot match them.

    ``iloc`` writes the value by position (its ``i``-th column into the ``i``-th written column, its rows in
    order); ``loc`` matches it by label, as pandas does: rows by index, columns by label (a written column the
    value lacks becomes a constant NaN).
    """
    n, nidx = len(obj), obj.index.nlevels
    cpos = np.asarray(cpos, np.int64)
    if kind in ("iloc", "iat"):
        if value.shape != (len(rpos), len(cpos)):
            return None
        src = np.arange(len(cpos))
        rows = np.arange(len(rpos), dtype=np.int64)
    else:
        vcols = value.columns
        if vcols.is_unique:
            src = column_positions(vcols, obj.columns[cpos])
        elif vcols.equals(obj.columns):
            src = cpos
        else:
            return None
        al = align_rows(value, obj)
        if al is False:
            return None
        rows = (np.arange(n, dtype=np.int64) if al is None else np.asarray(al, np.int64))[rpos]
    vsel = np.full(n, -1, np.int64)
    vsel[rpos] = rows
    parts = []
    for p in vlin.parts:
        cm = np.zeros((ncells, p.cmat.shape[1]), bool)
        for c, s in zip(cpos, src):
            if s >= 0:
                cm[nidx + c] |= p.cmat[0] if p.wide else p.cmat[vlin.nidx + s]
        if cm.any():
            parts.append(Part(p.node, p.rel.take(vsel), cm, p.control))
    return parts


def _mask_control(rk, obj, written):
    """Control parts of a write through a tracked row key (``obj.loc[mask, c] = v``).

    Whether row ``i`` of a written column is overwritten depends on the mask's cell of row ``i``: that cell is
    control of the column's cell in row ``i``, written or not (changing it may write the row, or spare it).
    Row labels taken from a tracked Series (not a mask) make every key cell control of every cell (PARTIAL).
    Returns (parts, the key's Lineage or None, a reason when the key's rows cannot be aligned).
    """
    mlin = lineage_of(rk)
    if mlin is None or not isinstance(rk, pd.Series):
        return [], None, None
    n = len(obj)
    is_mask = rk.dtype == bool or str(rk.dtype) == "boolean"
    al = align_rows(rk, obj) if is_mask and (len(rk) == n or rk.index.is_unique) else False
    if al is False:
        parts = [Part(p.node, RowRel.everything(n, p.rel.n_src), p.data_row(mlin.nidx)[None, :].copy(), True,
                      wide=True) for p in mlin.parts if p.data_row(mlin.nidx).any()]
        what = "a row mask whose index cannot be aligned" if is_mask else "row labels from a tracked Series"
        warn_partial(f"whence: a write through {what}; all its cells are taken as control (PARTIAL)")
        return parts, mlin, f"a write through {what} (all its cells are control)"
    sel = None if al is None else np.asarray(al, np.int64)  # None: the mask's rows are the frame's
    parts = []
    for p in mlin.parts:
        row = p.data_row(mlin.nidx)
        if not row.any():
            continue
        cm = np.zeros((written.shape[0], row.shape[0]), bool)
        cm[written] = row
        parts.append(Part(p.node, p.rel if sel is None else p.rel.take(sel), cm, True))
    return parts, mlin, None


def _everything_of(value, n):
    """Wide parts: every cell of the tracked ``value`` for every cell (a superset for writes whence cannot
    follow)."""
    vlin = lineage_of(value)
    if vlin is None:
        return []
    return [Part(p.node, RowRel.everything(n, p.rel.n_src), p.cmat.any(0)[None, :].copy(), p.control, wide=True)
            for p in vlin.parts]


def value_parts(v, obj, j, ncells, where):
    """Parts giving cmat row ``j`` of ``obj`` the lineage of the value ``v`` written there (a whole column).

    Returns (parts, reasons, the value's Lineage or None).  A value whence cannot see into is a constant: it
    contributes nothing, and a :class:`~whence.errors.ConstantValueWarning` says so (see
    :func:`whence.constant`).
    """
    from ...tracked import TrackedArray
    n = len(obj)
    vlin = lineage_of(v)
    if vlin is None and isinstance(v, (pd.Index, np.ndarray)):
        vlin = plain_lineage(v)
        if vlin is None:
            node = plain_node(v)
            if node is not None and len(node.shape) >= 1 and node.shape[0] == n and len(v) == n:
                cm = np.zeros((ncells, node_cols(node)), bool)
                cm[j] = True
                return [Part(node, RowRel.identity(n), cm)], [], None
    if vlin is not None:
        if isinstance(v, (pd.Series, pd.DataFrame)):
            al = align_rows(v, obj)
        else:  # an Index or a registered array is written by position
            al = None if len(v) == n else False
        if al is False:
            return _unaligned_parts(vlin, n, where)
        parts = []
        for p in vlin.parts:
            row = p.data_row(vlin.nidx)
            if not row.any():
                continue
            cm = np.zeros((ncells, row.shape[0]), bool)
            cm[j] = row
            parts.append(Part(p.node, p.rel if al is None else p.rel.take(al), cm, p.control))
        return parts, list(vlin.reasons), vlin
    if isinstance(v, TrackedArray):
        arr_node = v.node
        if v.ndim == 1 and v.shape[0] == n:
            cm = np.zeros((ncells, 1), bool)
            cm[j] = True
            return [Part(arr_node, RowRel.identity(n), cm)], [], None
        if v.ndim == 2 and v.shape == (n, 1):
            cm = np.zeros((ncells, 1), bool)
            cm[j] = True
            from ...maps import ViewMap
            from ...graph import Node
            node = Node("reshape", (n,), ViewMap((n,), v.shape, "reshape"), (arr_node,))
            return [Part(node, RowRel.identity(n), cm)], [], None
        cm = np.zeros((ncells, node_cols(arr_node)), bool)
        cm[j] = True
        rel = RowRel.everything(n, arr_node.shape[0] if arr_node.shape else 1)
        return [Part(arr_node, rel, cm)], \
            [f"{where} was assigned from a TrackedArray of shape {v.shape} (taken as all its cells)"], None
    sparts = scalar_parts(v, n, ncells, rows=[j])  # a reduction's scalar: every cell it read
    if sparts:
        return sparts, [], scalar_lineage(v)
    warn_constant(where, v)
    return [], [], None


def _after_setitem(obj, lin, key, value, old_cols, insert_at=None):
    """Lineage after ``obj[key] = value`` (column assignment; a new column is added at the end)."""
    cols = obj.columns
    nidx = obj.index.nlevels
    keys = _label_list(key)
    if keys is None and (not hashable(key) or isinstance(key, tuple) and key not in cols) or \
            keys is not None and value is obj:
        _setitem_not_followed(obj, lin, value, "a setitem with a key whence does not cover")
        return
    if keys is None:
        keys = [key]
    fast = _one_column_write(key, cols, old_cols, insert_at)
    if fast is not None:
        pos, loc = fast
        crow = list(range(lin.nidx)) + [lin.nidx + int(p) if p >= 0 else -1 for p in pos]
        crow[nidx + loc] = -1
        locs = {0: loc}
    else:
        crow, locs = _written_columns(keys, cols, old_cols, lin, nidx), {}
    parts = remap(lin, crow)
    reasons = []
    inputs = [lin]
    ncells = nidx + len(cols)
    # a list of labels on duplicated column labels: pandas writes by position in ways not followed here
    writes = _column_values(keys, value, cols) if cols.is_unique or _label_list(key) is None else None
    if writes is None:
        _setitem_not_followed(obj, lin, value, f"a write of a {type(value).__name__} into columns {keys!r}")
        return
    if any(src is not None for _, _, src in writes) and not _shares_lineage(value):
        warn_constant(f"column {keys[0]!r}" if len(keys) == 1 else f"columns {keys!r}", value)
    last = {k: (v, src) for k, v, src in writes}  # pandas writes the columns in turn: the last write of a label wins
    for k, (v, src) in last.items():
        loc = locs[0] if locs else cols.get_loc(k)
        rows = [nidx + int(loc)] if isinstance(loc, (int, np.integer)) else \
            list(nidx + np.arange(len(cols))[loc])
        for j in rows:
            if src is None:
                vparts, vreasons, vlin = value_parts(v, obj, j, ncells, f"column {k!r}")
            else:
                vparts, vreasons, vlin = _column_of(value, src, obj, j, ncells, f"column {k!r}")
            parts += vparts
            reasons += vreasons
            if vlin is not None:
                inputs.append(vlin)
    attach_inplace(obj, parts, "setitem", inputs, reasons)


def _setitem_not_followed(obj, lin, value, why):
    """``obj[key] = value`` that whence cannot follow: every cell of the frame and the value for every cell."""
    nidx = obj.index.nlevels
    attach_inplace(obj, [p.with_(rel=RowRel.everything(len(obj), p.rel.n_src),
                                  cmat=np.broadcast_to(p.cmat.any(0), (nidx + obj.shape[1], p.cmat.shape[1])).copy())
                         for p in lin.parts] + _everything_of(value, len(obj)), "setitem", [lin], [why])
    warn_partial(f"whence: {why} is not covered; the frame is marked PARTIAL")


def _label_list(key):
    """The labels of a list-like column key (``df[["a", "b"]] = v``), or None (one label, or a boolean mask)."""
    if isinstance(key, (list, np.ndarray, pd.Index)) and not isinstance(key, pd.MultiIndex):
        labels = list(key)
        if all(isinstance(x, (bool, np.bool_)) for x in labels) and labels:
            return None
        return labels
    return None


def _shares_lineage(value):
    """True when a multi-column value carries lineage of its own (no constant to warn about)."""
    from ...tracked import TrackedArray
    if lineage_of(value) is not None or isinstance(value, TrackedArray) or is_scalar_like(value):
        return True
    return np.ndim(value) == 1  # one scalar per column, as ``df[c] = 3``


def _column_values(keys, value, cols):
    """What ``df[keys] = value`` writes, as pandas does it: one ``(label, value, source)`` per write, in order.

    ``source`` is the position of the value's column (a DataFrame, a 2-D array) written there, else None and
    ``value`` the single-column value (a scalar, an element of a flat list).  None when whence cannot follow.
    """
    from ...tracked import TrackedArray
    if len(keys) == 1 and not isinstance(value, pd.DataFrame) and np.ndim(value) < 2:
        return [(keys[0], value, None)]
    if isinstance(value, pd.DataFrame):
        if not value.columns.is_unique or value.shape[1] != len(keys):
            return None
        if isinstance(cols, pd.MultiIndex) and not all(isinstance(k, tuple) and len(k) == cols.nlevels
                                                       for k in keys):
            return None  # a key naming several columns: pandas matches the value's columns by sub-label
        return [(k, None, int(value.columns.get_loc(c))) for k, c in zip(keys, value.columns)]
    if isinstance(value, (pd.Series, pd.Index)):
        return None
    if isinstance(value, (list, tuple)) and any(_carries_lineage(x) for x in _flat(value)):
        return None  # tracked objects inside a list: not followed
    if is_scalar_like(value):
        return [(k, value, None) for k in keys]
    if isinstance(value, TrackedArray) or np.ndim(value) == 2:
        if np.shape(value)[-1] != len(keys):
            return None
        return [(k, None, i) for i, k in enumerate(keys)]
    if np.ndim(value) == 1 and len(value) == len(keys):
        return [(k, value[i], None) for i, k in enumerate(keys)]
    return None


def _flat(value):
    for x in value:
        if isinstance(x, (list, tuple)):
            yield from x
        else:
            yield x


def _carries_lineage(x):
    from ...tracked import TrackedArray
    return isinstance(x, (TrackedArray, pd.Series, pd.DataFrame, pd.Index, np.ndarray)) or \
        lineage_of(x) is not None


def _unaligned_parts(vlin, n, where):
    """``value_parts`` of a value whose rows cannot be aligned with the frame's ``n`` rows: every cell of the
    value for every written cell, PARTIAL."""
    parts = [Part(p.node, RowRel.everything(n, p.rel.n_src), p.cmat.any(0)[None, :].copy(), p.control, wide=True)
             for p in vlin.parts]
    return parts, [f"{where} was assigned from a value whose rows cannot be aligned (taken as all its cells)"], vlin


def _column_of(value, src, obj, j, ncells, where):
    """``value_parts`` of column ``src`` of a DataFrame or 2-D array ``value`` written into cmat row ``j``."""
    from ...tracked import TrackedArray
    n = len(obj)
    vlin = lineage_of(value)
    if vlin is not None:
        al = align_rows(value, obj)
        if al is False:
            return _unaligned_parts(vlin, n, where)
        parts = []
        for p in vlin.parts:
            row = p.cmat[0] if p.wide else p.cmat[vlin.nidx + src]
            if not row.any():
                continue
            cm = np.zeros((ncells, row.shape[0]), bool)
            cm[j] = row
            parts.append(Part(p.node, p.rel if al is None else p.rel.take(al), cm, p.control))
        return parts, list(vlin.reasons), vlin
    if isinstance(value, TrackedArray) and value.ndim == 2 and value.shape[0] == n:
        cm = np.zeros((ncells, node_cols(value.node)), bool)
        cm[j, src] = True
        return [Part(value.node, RowRel.identity(n), cm)], [], None
    if isinstance(value, TrackedArray):
        return value_parts(value, obj, j, ncells, where)  # taken as all its cells, with its reason
    return [], [], None  # a plain 2-D array or list of lists: constants (warned once for the write)


def _one_column_write(key, cols, old_cols, insert_at):
    """``(old column per column, position of the written column)`` of ``df[key] = v`` in its two common cases,
    read without hashing the new column labels: a new label (pandas appends it) or an existing unique one
    (the columns are the same object); None otherwise."""
    if insert_at is not None or isinstance(key, (list, tuple)) or old_cols.nlevels != 1:
        return None
    if cols is old_cols:
        if not old_cols.is_unique:
            return None
        try:
            loc = old_cols.get_loc(key)
        except (KeyError, TypeError):
            return None
        return (np.arange(len(cols)), int(loc)) if isinstance(loc, (int, np.integer)) else None
    if len(cols) == len(old_cols) + 1 and key not in old_cols:
        pos = np.arange(len(cols))
        pos[-1] = -1
        return pos, len(cols) - 1
    return None


def _written_columns(keys, cols, old_cols, lin, nidx):
    """The cmat row map of a write of ``keys`` (old row per row; the written columns' rows emptied)."""
    # old columns keep their positions (by label); new ones are empty before the value is added
    if old_cols.is_unique and cols.is_unique:
        pos = column_positions(old_cols, cols)
    else:
        pos = np.arange(len(cols))
        pos[len(old_cols):] = -1
    crow = list(range(lin.nidx)) + [lin.nidx + int(p) if p >= 0 else -1 for p in pos]
    written = np.zeros(nidx + len(cols), bool)
    for k in keys:
        loc = cols.get_loc(k)
        if isinstance(loc, (int, np.integer)):
            written[nidx + int(loc)] = True
        else:
            written[nidx:][np.asarray(loc) if not isinstance(loc, slice) else np.arange(len(cols))[loc]] = True
    return [(-1 if written[i] else c) for i, c in enumerate(crow)]


class SeriesWrites:

    def __setitem__(self, key, value):
        if guard_depth():
            return super().__setitem__(key, value)
        with guard:
            lin = lineage_of(self)
            super().__setitem__(key, value)
            attach_inplace(self, [p.with_(rel=RowRel.everything(len(self), p.rel.n_src)) for p in lin.parts],
                            "setitem", [lin], ["writing into a Series by key is not covered"])
            warn_partial("whence: writing into a Series by key is not covered; its cells are marked PARTIAL")


class FrameWrites:

    def __setitem__(self, key, value):
        if guard_depth():
            return super().__setitem__(key, value)
        with guard:
            lin = lineage_of(self)
            old_cols = self.columns
            if callable(value):
                value = value(self)
            super().__setitem__(key, value)
            _after_setitem(self, lin, key, value, old_cols)

    def __delitem__(self, key):
        if guard_depth():
            return super().__delitem__(key)
        with guard:
            lin = lineage_of(self)
            old = self.columns
            super().__delitem__(key)
            pos = column_positions(old, self.columns) if old.is_unique else None
            if pos is None:
                attach_inplace(self, lin.parts, "delitem", [lin], ["deleting a duplicated column label"])
                return
            crow = list(range(lin.nidx)) + [lin.nidx + int(p) for p in pos]
            attach_inplace(self, remap(lin, crow), "delitem", [lin])

    def pop(self, item):
        if guard_depth():
            return super().pop(item)
        col = self[item]
        del self[item]
        return col

    def insert(self, loc, column, value, allow_duplicates=pd.api.extensions.no_default):
        if guard_depth():
            return super().insert(loc, column, value, allow_duplicates=allow_duplicates)
        with guard:
            lin = lineage_of(self)
            old = self.columns
            super().insert(loc, column, value, allow_duplicates=allow_duplicates)
            _after_setitem(self, lin, column, value, old, insert_at=loc)

    def assign(self, **kwargs):
        if guard_depth():
            return super().assign(**kwargs)
        # a new frame, as pandas' own assign: shallow only where copy-on-write keeps it from sharing writes
        # (pandas 3, or the option set on pandas 2), else a later in-place write to self would show in it
        data = self.copy(deep=not _copy_on_write())
        for k, v in kwargs.items():
            data[k] = v(data) if callable(v) else v
        return data


def _copy_on_write():
    """True when pandas' copy-on-write is in force (always on pandas 3; an option on pandas 2)."""
    if int(pd.__version__.split(".")[0]) >= 3:
        return True
    try:
        return bool(pd.get_option("mode.copy_on_write"))
    except (KeyError, pd.errors.OptionError):  # pragma: no cover - pandas without the option
        return False
