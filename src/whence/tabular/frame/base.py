"""The shared machinery of tracked pandas objects: the recursion guard, warnings, and the lineage helpers
(attach, remap, align, fall back) that every bucket module composes.
"""

from __future__ import annotations

import sys
import threading
import warnings
import weakref

import numpy as np
import pandas as pd

from ...errors import PartialLineageWarning
from ..relations import Lineage, Part, RowRel


class _Local(threading.local):
    depth = 0  # (a class default: every thread starts outside any covered operation)


guard_state = _Local()


def guard_depth():
    return guard_state.depth


class _Guard:
    """Inside a covered operation: pandas' own internal steps record nothing."""

    __slots__ = ()

    def __enter__(self):
        guard_state.depth += 1

    def __exit__(self, *exc):
        guard_state.depth -= 1


guard = _Guard()


def user_stacklevel():
    """Stack level of the first frame outside pandas and whence (for warnings)."""
    f = sys._getframe(1)
    level = 1
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        if not (mod.startswith("pandas") or mod.startswith("whence") or mod.startswith("sklearn")
                or mod.startswith("numpy") or mod == "functools"):
            return level
        f = f.f_back
        level += 1
    return 2


def warn_partial(msg):
    warnings.warn(msg, PartialLineageWarning, stacklevel=user_stacklevel())


# the concrete classes (:mod:`whence.tabular.frame.classes`) register themselves here: "frame", "series"
TYPES: dict = {}


def as_tracked(res):
    """``res`` as a tracked object (a plain DataFrame or Series is wrapped; anything else is returned)."""
    if isinstance(res, pd.DataFrame) and not isinstance(res, TrackedMixin):
        return TYPES["frame"](res)
    if isinstance(res, pd.Series) and not isinstance(res, TrackedMixin):
        return TYPES["series"](res)
    return res


def is_tracked_frame(x):
    return isinstance(x, TrackedMixin)


def lineage_of(x):
    """The :class:`Lineage` of a tracked frame or series (None for plain pandas objects and scalars)."""
    if not isinstance(x, TrackedMixin):
        return None
    lin = x.__dict__.get("_wh")
    if lin is None:
        n = len(x)
        nidx = x.index.nlevels
        series = isinstance(x, pd.Series)
        ncols = 1 if series else x.shape[1]
        # nothing tells where it came from: every cell of every live source, PARTIAL (a sound superset)
        from ...graph import sources_by_name as _sources
        parts = [Part(node, RowRel.everything(n, node.shape[0] if node.shape else 1),
                      np.ones((1, 1 if len(node.shape) < 2 else node.shape[1]), bool), wide=True)
                 for node in list(_sources.values())]
        lin = Lineage(parts, n, nidx, ncols, ("its lineage was lost by a pandas operation whence does not cover "
                                              "(taken as every cell of every live source)",),
                      op="unknown", series=series)
        object.__setattr__(x, "_wh", lin)
        warn_partial("whence: a tracked frame lost its lineage in a pandas operation whence does not cover; "
              "its cells are marked PARTIAL")
    return lin


def dims(obj):
    series = isinstance(obj, pd.Series)
    return len(obj), obj.index.nlevels, (1 if series else obj.shape[1]), series


def merge_parts(parts):
    """Parts with the same input, the same row relation object and the same role share one column matrix;
    then parts with the same input, role and column matrix whose row relations agree wherever both have a row
    share one relation (their union, see :func:`_union_rel`).

    Both merges leave every cell's lineage as it was (the union over parts); the second keeps the number of
    parts bounded when a frame is written again and again through masks computed from its own columns (each
    write would otherwise add the mask's parts, which already hold the previous writes' parts).
    """
    if len(parts) < 2:
        return parts
    out, seen, inputs, shared = [], {}, set(), False
    for p in parts:
        key = (id(p.node), id(p.rel), p.control, p.wide)
        k = seen.get(key)
        if k is None:
            seen[key] = len(out)
            out.append(p)
            if not shared:
                ikey = key[0], key[2], key[3]
                shared = ikey in inputs
                inputs.add(ikey)
        else:
            q = out[k]
            out[k] = q.with_(cmat=q.cmat | p.cmat)
    if not shared:  # no two parts left with the same input and role: nothing more to merge
        return out
    res, groups = [], {}
    for p in out:
        rel = p.rel
        if type(rel) is not RowRel or rel.all_rows:
            res.append(p)
            continue
        key = (id(p.node), p.control, p.wide, id(rel.csr), rel.n_out, rel.n_src, p.cmat.shape, p.cmat.tobytes())
        cands = groups.get(key)
        if cands is None:
            groups[key] = [len(res)]
            res.append(p)
            continue
        for k in cands:
            u = _union_rel(res[k].rel, rel)
            if u is not None:
                res[k] = res[k].with_(rel=u)
                break
        else:
            cands.append(len(res))
            res.append(p)
    return res


def _union_rel(a, b):
    """One :class:`RowRel` for ``a`` and ``b`` (same input, same CSR object, one code per output row) when
    they agree wherever both have a code: output row ``i`` then derives from the union of the rows ``a`` and
    ``b`` give it.  None when they disagree somewhere."""
    if a.codes is b.codes:
        return a
    n = a.n_out
    ca = np.arange(n, dtype=np.int64) if a.codes is None else a.codes
    cb = np.arange(n, dtype=np.int64) if b.codes is None else b.codes
    if ca.shape[0] != n or cb.shape[0] != n:
        return None
    if not ((ca == cb) | (ca < 0) | (cb < 0)).all():
        return None
    if a.codes is None or b.codes is None:
        # the identity (or code i for row i) covers every row already
        return a if a.codes is None else b
    return RowRel(n, a.n_src, np.where(ca >= 0, ca, cb), a.csr)


def remap(lin, crow=None, sel=None, rel_cache=None):
    """Parts of ``lin`` with columns remapped by ``crow`` (old cmat row per new row, -1 none) and rows by
    ``sel`` (old row per new row, -1 none)."""
    if crow is not None:
        m = lin.nidx + lin.ncols
        if len(crow) == m and (crow == list(range(m)) if type(crow) is list else
                               np.array_equal(crow, np.arange(m))):
            crow = None  # every cmat row stays where it is: the parts' column matrices are kept as they are
        else:
            crow = np.asarray(crow, np.int64)
    if crow is None and sel is None:
        return list(lin.parts)
    parts = []
    cache = {} if rel_cache is None else rel_cache
    neg = None
    if crow is not None:
        neg = crow < 0
        if _count(neg):
            crow = np.where(neg, 0, crow)
        else:
            neg = None
    for p in lin.parts:
        if crow is None or p.wide:
            cm = p.cmat
        else:
            cm = p.cmat[crow]
            if neg is not None:
                cm[neg] = False
        if not p.wide and not _count(cm):
            continue
        rel = _taken(p.rel, sel, cache)
        parts.append(Part(p.node, rel, cm, p.control, p.wide))
    return parts


# the number of True cells of a small boolean array (``a.any()`` costs several times more on the small
# column matrices of parts, and it runs for every part of every result)
_count = np.count_nonzero


def _reasons(*lins):
    out = []
    for lin in lins:
        if lin is not None:
            out.extend(lin.reasons)
    return out


def attach(res, parts, op, inputs, reasons=(), detail="", merged=False):
    """Make ``res`` a tracked object carrying a new lineage built from ``parts`` (``merged``: the parts of one
    lineage as they are, already merged and none empty)."""
    res = as_tracked(res)
    n, nidx, ncols, series = dims(res)
    history, allr = [], []
    for o in inputs:
        x = lineage_of(o)
        if x is not None:
            history.append(x)
            if x.reasons:
                allr.extend(x.reasons)
    if reasons:
        allr.extend(reasons)
    lin = Lineage(parts if merged else merge_parts(parts), n, nidx, ncols, allr, op=op,
                  history=tuple(history), series=series, detail=detail, checked=merged)
    object.__setattr__(res, "_wh", lin)
    return res


def fallback(res, op, inputs):
    """An operation whence does not cover: every cell of the result derives from every cell of the inputs."""
    if not isinstance(res, (pd.DataFrame, pd.Series)):
        return res
    parts = []
    n, nidx, ncols, _ = dims(res)
    for o in inputs:
        lin = lineage_of(o)
        if lin is None:
            continue
        for p in lin.parts:
            parts.append(Part(p.node, RowRel.everything(n, p.rel.n_src), p.cmat.any(0)[None, :].copy(),
                              p.control, wide=True))
    reason = f"{op} is not covered: every cell is taken to derive from every cell of its input"
    if inputs and any(lineage_of(o) is not None for o in inputs):
        warn_partial(f"whence: {op} is not covered; its result derives from all cells of its input (PARTIAL)")
    return attach(res, parts, op, inputs, [reason])


def elementwise(res, op, operands):
    """Same-shape elementwise result: cell (i, j) derives from cell (i, j) of every aligned operand."""
    n, nidx, ncols, series = dims(res)
    parts = []
    reasons = []
    for o in operands:
        lin = lineage_of(o)
        if lin is None:
            continue
        sel = align_rows(o, res)
        if sel is False:
            return fallback(res, op, operands)
        if isinstance(o, pd.Series) and not series:
            # a Series broadcast against a frame's rows (axis=0 alignment is the only row-wise case)
            crow = [-1] * nidx + [lin.nidx] * ncols
        elif isinstance(o, pd.DataFrame) and not series:
            if o.shape[1] == ncols and (o.columns.equals(res.columns)):
                crow = list(range(lin.nidx)) + [lin.nidx + j for j in range(ncols)]
            elif o.columns.is_unique:
                pos = column_positions(o.columns, res.columns)
                crow = [-1] * nidx + [lin.nidx + p if p >= 0 else -1 for p in pos]
            else:
                return fallback(res, op, operands)
            if lin.nidx != nidx:
                crow = [-1] * nidx + crow[lin.nidx:]
        else:
            crow = ([j if j < lin.nidx else -1 for j in range(nidx)] if lin.nidx == nidx else [-1] * nidx) + \
                   [lin.nidx + (j if lin.ncols == ncols else 0) for j in range(ncols)]
        parts.extend(remap(lin, crow, sel))
    return attach(res, parts, op, operands, reasons)


def align_rows(o, res):
    """Row positions of ``o`` for each row of ``res`` (None: identity; False: cannot tell)."""
    a, b = o.index, res.index
    if a is b:
        return None
    if type(a) is pd.RangeIndex and type(b) is pd.RangeIndex:
        if a.equals(b):
            return None
    elif len(a) == len(b) and a.equals(b):
        return None
    if o.index.is_unique:
        return o.index.get_indexer(res.index)
    return False


# id of a column Index -> (weak reference to it, {label: position}) for small Indexes of text labels
_LABEL_MAPS: dict = {}
_SMALL = 256


def _label_map(cols):
    """``{label: position}`` of a unique Index of at most :data:`_SMALL` ``str`` labels (built once per Index
    object: Indexes never change), or None."""
    e = _LABEL_MAPS.get(id(cols))
    if e is not None and e[0]() is cols:
        return e[1]
    if len(cols) > _SMALL or isinstance(cols, pd.MultiIndex) or cols.dtype.kind not in "OU" and \
            not isinstance(cols.dtype, pd.StringDtype):
        return None
    labels = cols.tolist()
    m = {}
    for j, lab in enumerate(labels):
        if type(lab) is not str or lab in m:
            m = None  # another kind of label (whose equality a dict may not share), or a duplicate
            break
        m[lab] = j
    try:
        key = id(cols)
        ref = weakref.ref(cols, lambda _r, k=key: _LABEL_MAPS.pop(k, None))
    except TypeError:
        return m
    _LABEL_MAPS[key] = (ref, m)
    return m


def column_positions(cols, labels):
    """``cols.get_indexer(labels)`` (int64, -1 for a missing label) for a unique ``cols``; small Indexes of text
    labels answer from a dict kept per Index object, with no hash table built by pandas per call (most of
    the cost of writing or dropping a column of a narrow frame)."""
    m = _label_map(cols)
    if m is not None and len(labels) <= _SMALL:
        out = []
        for lab in (labels.tolist() if isinstance(labels, pd.Index) else labels):
            if type(lab) is not str:
                break
            out.append(m.get(lab, -1))
        else:
            return np.asarray(out, np.int64) if out else np.zeros(0, np.int64)
    return np.asarray(cols.get_indexer(labels), np.int64)


def row_positions(src, res):
    """Positions in ``src`` of the rows of ``res`` (a subset or reordering), or None when unknowable."""
    idx = src.index
    if isinstance(idx, pd.RangeIndex) or idx.is_unique:
        pos = idx.get_indexer(res.index)
        if (pos < 0).any():
            return None
        return pos.astype(np.int64, copy=False)
    return None


def label_positions(key, labels):
    """Positions that ``.loc[key]`` selects along ``labels``, for the keys that need no lookup table: a boolean
    mask aligned with ``labels`` (array, or Series with the same index), the full slice, and one label of a
    unique index (a scalar position).  None for any other key (the caller asks pandas)."""
    if isinstance(key, pd.Series):
        if key.dtype == np.bool_ and (key.index is labels or key.index.equals(labels)):
            return np.flatnonzero(pd.Series.to_numpy(key)).astype(np.int64, copy=False)
        return None
    if isinstance(key, np.ndarray):
        if key.dtype == np.bool_ and key.ndim == 1 and key.shape[0] == len(labels):
            return np.flatnonzero(key).astype(np.int64, copy=False)
        return None
    if isinstance(key, slice):
        return np.arange(len(labels), dtype=np.int64) if key == slice(None) else None
    if isinstance(key, (tuple, list, pd.Index, pd.DataFrame)) or not hashable(key) or \
            isinstance(labels, pd.MultiIndex) or not labels.is_unique:
        return None
    try:
        loc = labels.get_loc(key)
    except Exception:  # a missing label, a key pandas reads otherwise (partial dates): pandas decides
        return None
    return np.int64(loc) if isinstance(loc, (int, np.integer)) else None


def rows_union(p, rows):
    """Input columns used by the cmat rows ``rows`` of part ``p`` (a wide part uses its one row)."""
    if p.wide:
        return p.cmat[0]
    if not len(rows):
        return np.zeros(p.cmat.shape[1], bool)
    if len(rows) == 1:  # (a view, as for a wide part: callers copy before they write)
        return p.cmat[rows[0]]
    return p.cmat[list(rows)].any(0)


def is_bool_mask(key):
    dt = getattr(key, "dtype", None)
    return dt is not None and pd.api.types.is_bool_dtype(dt)


def control_parts(mask, sel, nrows_out, ncells, cache=None):
    """Control parts from a tracked boolean mask aligned with the input rows, taken through ``sel``."""
    lin = lineage_of(mask)
    if lin is None:
        return [], None
    parts = []
    cache = {} if cache is None else cache
    for p in lin.parts:
        row = p.data_row(lin.nidx)
        if not row.any():
            continue
        rel = _taken(p.rel, sel, cache)
        parts.append(Part(p.node, rel, row[None, :].copy(), True, wide=True))
    return parts, lin


def col_control(lin, sel, col_rows, ncells, cache=None):
    """Control parts: the cells of columns ``col_rows`` (cmat rows of ``lin``) of each row, for every cell."""
    parts = []
    cache = {} if cache is None else cache
    for p in lin.parts:
        if p.wide and p.control:
            continue  # already on every cell of the result
        row = rows_union(p, col_rows)
        if not row.any():
            continue
        rel = _taken(p.rel, sel, cache)
        parts.append(Part(p.node, rel, row[None, :].copy(), True, wide=True))
    return parts


def column_rows(obj, labels):
    """cmat rows (index levels first) of column labels of ``obj`` (None when a label is missing or ambiguous)."""
    lin = lineage_of(obj)
    cols = obj.columns if isinstance(obj, pd.DataFrame) else pd.Index([obj.name])
    out = []
    for lab in labels:
        if isinstance(obj, pd.DataFrame) and lab in cols:
            loc = cols.get_loc(lab)
            if not isinstance(loc, (int, np.integer)):
                return None
            out.append(lin.nidx + int(loc))
        elif lab in list(obj.index.names) and lab is not None:
            out.append(list(obj.index.names).index(lab))
        elif not isinstance(obj, pd.DataFrame) and lab == obj.name:
            out.append(lin.nidx)
        else:
            return None
    return out


def attach_inplace(obj, parts, op, lins, reasons=()):
    allr = _reasons(*lins) + list(reasons)
    n, nidx, ncols, series = dims(obj)
    lin = Lineage(merge_parts(parts), n, nidx, ncols, allr, op=op,
                  history=tuple(x for x in lins if x is not None), series=series)
    object.__setattr__(obj, "_wh", lin)


def cols_result(src, res, op):
    """A result holding some of ``src``'s columns (same rows): columns matched by label."""
    if not isinstance(res, pd.DataFrame) or len(res) != len(src) or not src.columns.is_unique:
        return fallback(res, op, [src])
    lin = lineage_of(src)
    sel = align_rows(src, res)
    if sel is False:
        return fallback(res, op, [src])
    pos = column_positions(src.columns, res.columns)
    crow = list(range(lin.nidx)) if res.index.nlevels == lin.nidx else [-1] * res.index.nlevels
    crow += [lin.nidx + int(p) if p >= 0 else -1 for p in pos]
    return attach(res, remap(lin, crow, sel), op, [src])


def _inputs_of(other):
    if isinstance(other, (pd.DataFrame, pd.Series)):
        return [other]
    objs = getattr(other, "objs", None)
    if objs is not None:
        return [o for o in objs if isinstance(o, (pd.DataFrame, pd.Series))]
    out = []
    for attr in ("left", "right", "obj", "_selected_obj"):
        v = getattr(other, attr, None)
        if isinstance(v, (pd.DataFrame, pd.Series)):
            out.append(v)
    return out


def row_preserving(res, op, src):
    """Each output cell of row i derives from every cell of row i of ``src``."""
    lin = lineage_of(src)
    n, nidx, ncols, _ = dims(res)
    sel = align_rows(src, res)
    if sel is False:
        return fallback(res, op, [src])
    parts = []
    same_index = nidx == lin.nidx
    for p in lin.parts:
        row = p.data_row(lin.nidx)
        if row.any() or (same_index and not p.wide and p.cmat[:nidx].any()):
            cm = np.zeros((nidx + ncols, row.shape[0]), bool)
            cm[nidx:] = row
            if same_index and not p.wide:  # the index cells are the input's own
                cm[:nidx] = p.cmat[:nidx]
            parts.append(Part(p.node, p.rel if sel is None else p.rel.take(sel), cm, p.control))
    return attach(res, parts, op, [src])


def hashable(k):
    try:
        hash(k)
        return True
    except TypeError:
        return False


def is_label_list(key):
    return isinstance(key, (list, pd.Index, np.ndarray, tuple)) and getattr(key, "dtype", None) != bool and not (
        isinstance(key, list) and key and all(isinstance(k, (bool, np.bool_)) for k in key))


def fallback_reason(res, reason):
    lin = lineage_of(res)
    warn_partial("whence: " + reason)
    return attach(res, lin.parts, lin.op, [res], [reason], merged=True)


class TrackedMixin:
    _wh = None

    @property
    def _whence_node(self):
        return lineage_of(self).node

    @property
    def lineage_complete(self):
        """True when every cell's lineage is exact (FULL)."""
        return not lineage_of(self).reasons

    def __finalize__(self, other, method=None, **kwargs):
        res = super().__finalize__(other, method=method, **kwargs)
        if guard_depth() or res.__dict__.get("_wh") is not None:
            return res
        with guard:
            inputs = _inputs_of(other)
            if method in ("str", "dt", "cat") and isinstance(other, pd.Series) and len(res) == len(other):
                return row_preserving(res, f"Series.{method}", other)
            fallback(res, method or f"a {type(self).__bases__[-1].__name__} operation", inputs)
        return res


def _taken(rel, sel, cache):
    """``rel.take(sel)`` (``rel`` itself when ``sel`` is None), once per relation in ``cache``."""
    if sel is None:
        return rel
    r = cache.get(id(rel))
    if r is None:
        r = cache[id(rel)] = rel.take(sel)
    return r
