"""Row-order windows, time bins and fills of tracked pandas objects: the time-series family.

Each rule here builds the :class:`~whence.tabular.relations.Lineage` of a result from the lineage of the
object it was computed from and the operation's parameters; ``frame.py`` only calls in.  Row lineage is
composed with vectorised numpy on int64 arrays, never per row in Python:

* windows (``rolling``, ``expanding``, ``ewm``, the cumulative family, ``diff``, ``pct_change``, a group's
  prefix) are a :class:`~whence.tabular.relations.RangeRel`: two bounds per output row (pandas' own window
  bounds, from the window's indexer), expanded only for the rows a query asks about;
* copies (``shift``, ``ffill``/``bfill``) take one input row per output row (``RowRel.take``); fills are
  data-dependent, so the row copied is recorded per column, like numpy's class C (an index array per
  output cell);
* whole-lane maps (``rank``) and time bins (``resample``, ``groupby(pd.Grouper(freq=...))``) are group
  relations, built when a query first needs them;
* ``merge_asof``: the matched right row, from pandas' own asof indexer.

What a cell derives from, operation by operation, is in ``docs/semantics.md`` ("Time series and windows").
An argument combination not covered here (a custom ``BaseIndexer``, ``method="table"``, ``win_type``,
``axis=1``, ...) runs unchanged and gives a PARTIAL result (every cell of the input) with a
:class:`~whence.errors.PartialLineageWarning` naming the method and the argument.

Examples
--------
>>> import pandas as pd, whence as wh
>>> t = wh.track_frame(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), name="ts")
>>> m = t["x"].rolling(2).mean()
>>> sorted(map(tuple, wh.backward(m, 3)["ts"].tolist()))
[(2, 0), (3, 0)]
>>> dict(wh.backward(m, 0))  # fewer rows than min_periods: a constant NaN
{}
>>> sorted(map(tuple, wh.backward(t["x"].cumsum(), 2)["ts"].tolist()))
[(0, 0), (1, 0), (2, 0)]
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd

from .frame import base as F
from .frame.joins import suffixed
from .relations import LazyCSR, Part, RangeRel, RowRel, group_member_rows

__all__ = ["window_result", "group_method", "frame_method", "time_group_codes", "merge_asof", "install"]

_EMPTY = np.zeros(0, np.int64)


# --- relations over the rows of the frame being windowed ------------------------------------------------------

def _ranges(base, lo, hi, order=None):
    """Output row ``i`` derives from ``order[lo[i]:hi[i]]`` of ``base``'s output rows."""
    if base.all_rows:
        return RowRel.everything(len(lo), base.n_src)
    return RangeRel(lo, hi, base, order)


def _lazy(base, n_out, make):
    """A :class:`RangeRel` whose bounds ``make() -> (lo, hi, order)`` are computed when a query needs them."""
    if base.all_rows:
        return RowRel.everything(n_out, base.n_src)
    return RangeRel(None, None, base, n_out=n_out, make=make)


def _rows(base, n, src_fn):
    """Output row ``i`` derives from row ``src[i]`` of ``base`` (-1: none), ``src = src_fn()`` computed when a
    query needs it (a take deferred: nothing composed at capture)."""

    def make():
        src = src_fn()
        ok = src >= 0
        return np.where(ok, src, 0), np.where(ok, src + 1, 0), None
    return _lazy(base, n, make)


def _once(fn):
    """``fn()`` computed on the first call and kept (bounds shared by the parts of one result)."""
    box = []

    def get():
        if not box:
            box.append(fn())
        return box[0]
    return get


def _pair_bounds(a, b):
    n = a.shape[0]
    order = np.empty(2 * n, np.int64)
    has_a, has_b = a >= 0, b >= 0
    order[0::2] = np.where(has_a, a, np.where(has_b, b, 0))
    order[1::2] = np.where(has_a & has_b, b, 0)
    lo = 2 * np.arange(n, dtype=np.int64)
    hi = lo + has_a + has_b
    return lo, hi, order


def _pairs(base, a, b):
    """Output row ``i`` derives from rows ``a[i]`` and ``b[i]`` of ``base`` (-1: none)."""
    return _lazy(base, a.shape[0], lambda: _pair_bounds(a, b))


def _prefix_bounds(n, gstart=None):
    """Bounds of the prefix of every row (in its group, rows sorted by group)."""
    hi = np.arange(1, n + 1, dtype=np.int64)
    lo = np.zeros(n, np.int64) if gstart is None else gstart
    return lo, hi


class _Layout:
    """Rows sorted by group (stable), and where each row sits in its group."""

    def __init__(self, codes):
        codes = np.asarray(codes, np.int64)
        self.codes = codes
        n = codes.shape[0]
        valid = codes >= 0
        self.ng = int(codes.max()) + 1 if n and valid.any() else 0
        self.order = group_member_rows(codes, valid, self.ng)
        self.counts = np.bincount(codes[valid], minlength=self.ng).astype(np.int64)
        gstart = np.zeros(self.ng, np.int64)
        if self.ng:
            np.cumsum(self.counts[:-1], out=gstart[1:])
        self.gstart = gstart
        self.g = codes[self.order]                                    # group of each sorted position
        self.k = np.arange(self.order.shape[0], dtype=np.int64) - gstart[self.g]  # position in its group
        self.n = n

    def scatter(self, vals, fill=-1):
        """Per-row array from per-sorted-position values (rows in no group get ``fill``)."""
        out = np.full(self.n, fill, np.int64)
        out[self.order] = vals
        return out


def _shift_src(n, p, lay=None):
    """Row copied into each row by ``shift(p)`` (in its group), -1 for none."""
    if lay is None:
        src = np.arange(n, dtype=np.int64) - p
        src[(src < 0) | (src >= n)] = -1
        return src
    s = np.arange(lay.order.shape[0], dtype=np.int64)
    kk = lay.k - p
    ok = (kk >= 0) & (kk < lay.counts[lay.g])
    return lay.scatter(np.where(ok, lay.order[np.where(ok, s - p, 0)], -1))


def _pair_rel(base, n, p, lay=None):
    """``diff``/``pct_change``: the row itself and the row ``p`` before it (nothing when there is none).
    ``lay``: a callable giving the group layout (group-wise forms)."""

    def make():
        L = None if lay is None else lay()
        if p == 0:
            own = np.arange(n, dtype=np.int64) if L is None else np.where(L.codes >= 0, np.arange(n), -1)
            return own, np.where(own >= 0, own + 1, own), None
        src = _shift_src(n, p, L)
        own = np.where(src >= 0, np.arange(n, dtype=np.int64), -1)
        return _pair_bounds(src, own)

    if p == 0:
        def make0():
            own, _, _ = make()
            ok = own >= 0
            return np.where(ok, own, 0), np.where(ok, own + 1, 0), None
        return _lazy(base, n, make0)
    return _lazy(base, n, make)


def _prefix_rel(base, n, lay=None, mp=1):
    if lay is None:
        def make():
            lo, hi = _prefix_bounds(n)
            return lo, np.where(hi - lo < mp, lo, hi), None
        return _lazy(base, n, make)

    def make_g():
        L = lay()
        m = L.order.shape[0]
        lo = L.gstart[L.g]
        hi = np.arange(1, m + 1, dtype=np.int64)
        hi = np.where(hi - lo < mp, lo, hi)
        # row order[s] gets bounds (lo[s], hi[s]) in sorted space
        return L.scatter(lo, 0), L.scatter(hi, 0), L.order
    return _lazy(base, n, make_g)


def _lane_rel(base, n, lay=None):
    """Every row of the column (of the row's group; rows in no group: nothing)."""
    if lay is None:
        codes = np.zeros(n, np.int64)
        return base.group(codes, 1).take(codes)

    def make():
        L = lay()
        lo = L.gstart[L.g]
        return L.scatter(lo, 0), L.scatter(lo + L.counts[L.g], 0), L.order
    return _lazy(base, n, make)


def _fill_src(isna, forward, lay=None):
    """For every row, the nearest row at or before (``forward``) / after it that is not NA, in its group."""
    n = isna.shape[0]
    if lay is None and forward:  # the common case, with as few arrays as possible
        src = np.where(isna, -1, np.arange(n, dtype=np.int64))
        if n:
            np.maximum.accumulate(src, out=src)
        return src
    if lay is None:
        order = None
        valid = ~isna
        pos = np.arange(n, dtype=np.int64)
        lo_g, hi_g = np.zeros(n, np.int64), np.full(n, n, np.int64)
    else:
        order = lay.order
        valid = ~isna[order]
        pos = np.arange(order.shape[0], dtype=np.int64)
        lo_g = lay.gstart[lay.g]
        hi_g = lo_g + lay.counts[lay.g]
    if forward:
        src = np.maximum.accumulate(np.where(valid, pos, -1)) if pos.shape[0] else pos
        src = np.where(src >= lo_g, src, -1)
    else:
        big = pos.shape[0]
        src = np.minimum.accumulate(np.where(valid, pos, big)[::-1])[::-1] if big else pos
        src = np.where(src < hi_g, src, -1)
    if order is None:
        return src
    return lay.scatter(np.where(src >= 0, order[np.maximum(src, 0)], -1))


# --- building the lineage of a result ------------------------------------------------------------------------

def _loc(cols, lab):
    try:
        loc = cols.get_loc(lab)
    except (KeyError, TypeError, pd.errors.InvalidIndexError):
        return None
    return int(loc) if isinstance(loc, (int, np.integer)) else None


def _crow(src, res, lin):
    """cmat row of ``src`` for every data column of ``res`` (matched by label), or None."""
    labels = [res.name] if isinstance(res, pd.Series) else list(res.columns)
    if isinstance(src, pd.Series):
        return [lin.nidx] * len(labels)
    cols = src.columns
    if not cols.is_unique:
        return None
    out = []
    for lab in labels:
        loc = _loc(cols, lab)
        if loc is None and isinstance(lab, tuple) and lab and not isinstance(cols, pd.MultiIndex):
            loc = _loc(cols, lab[0])  # agg with a list of functions: (column, function)
        if loc is None:
            return None
        out.append(lin.nidx + loc)
    return out


def _parts(src, res, data_rel, *, crow, per_col=False, sel=None, ident=(), idx_map=None, key_rows=(),
           key_rel=None, extra=(), same_rows=True):
    """Parts of ``res``: index levels and ``ident`` columns from the row's own input row (``sel``), data
    columns through ``data_rel`` (per input column when ``per_col``), control from the key cells of
    ``key_rel``'s rows.  With ``same_rows`` (every output row sits on an input row), the control of that row
    (the cells that chose it) stays control of every cell of the row, besides the control of the rows its
    values came from."""
    lin = F.lineage_of(src)
    _, nidx, ncols, _ = F.dims(res)
    if idx_map is None:
        idx_map = [[i] for i in range(nidx)] if nidx == lin.nidx else [[] for _ in range(nidx)]
    ident = set(ident)
    own_c, data_c, key_c = {}, {}, {}

    def own(rel):
        if sel is None:
            return rel
        r = own_c.get(id(rel))
        if r is None:
            r = own_c[id(rel)] = rel.take(sel)
        return r

    def drel(rel, j=None):
        key = (id(rel), j)
        r = data_c.get(key)
        if r is None:
            r = data_c[key] = data_rel(rel, j) if per_col else data_rel(rel)
        return r

    # the cmat rows anything below reads (a part with none of them set contributes nothing: a frame of many
    # parts, most of them other columns', is windowed on one column)
    used = sorted({r for rs in idx_map for r in rs} | {int(r) for r in crow if r >= 0} |
                  {int(r) for rows, _, _ in extra for r in rows} | {int(r) for r in key_rows})
    used = np.asarray(used, np.int64)
    parts = []
    for p in lin.parts:
        k = p.cmat.shape[1]
        if not p.wide and not np.count_nonzero(p.cmat[used]):
            continue
        if p.wide:
            if p.control and same_rows:
                parts.append(Part(p.node, own(p.rel), p.cmat, True, True))
            if not per_col and not ident:
                parts.append(Part(p.node, drel(p.rel), p.cmat, p.control, True))
                continue
            acc = {}  # one part per distinct relation (columns sharing one are one part)
            for j in range(ncols):
                r = crow[j]
                rel = own(p.rel) if (j in ident or r < 0) else drel(p.rel, r - lin.nidx if per_col else None)
                e = acc.get(id(rel))
                if e is None:
                    e = acc[id(rel)] = (rel, np.zeros((nidx + ncols, k), bool))
                e[1][nidx + j] = p.cmat[0]
            parts.extend(Part(p.node, rel, cm, p.control) for rel, cm in acc.values())
            continue
        cm = np.zeros((nidx + ncols, k), bool)
        for i, rs in enumerate(idx_map):
            for r in rs:
                cm[i] |= p.cmat[r]
        for j in ident:
            if crow[j] >= 0:
                cm[nidx + j] = p.cmat[crow[j]]
        if cm.any():
            parts.append(Part(p.node, own(p.rel), cm, p.control))
        if per_col:
            acc = {}  # one part per distinct relation (columns sharing one are one part)
            for j, r in enumerate(crow):
                if r < 0 or j in ident or not p.cmat[r].any():
                    continue
                rel = drel(p.rel, r - lin.nidx)
                e = acc.get(id(rel))
                if e is None:
                    e = acc[id(rel)] = (rel, np.zeros((nidx + ncols, k), bool))
                e[1][nidx + j] = p.cmat[r]
            parts.extend(Part(p.node, rel, cm, p.control) for rel, cm in acc.values())
        else:
            cm = np.zeros((nidx + ncols, k), bool)
            for j, r in enumerate(crow):
                if r >= 0 and j not in ident:
                    cm[nidx + j] = p.cmat[r]
            if cm.any():
                parts.append(Part(p.node, drel(p.rel), cm, p.control))
        for rows, rel_fn, as_data in extra:
            krow = np.zeros(k, bool)
            for r in rows:
                krow |= p.cmat[r]
            if krow.any():
                cm = np.zeros((nidx + ncols, k), bool)
                cm[nidx:] = krow
                parts.append(Part(p.node, rel_fn(p.rel), cm, p.control))
        if key_rows and key_rel is not None:
            krow = np.zeros(k, bool)
            for r in key_rows:
                krow |= p.cmat[r]
            if krow.any():
                rel = key_c.get(id(p.rel))
                if rel is None:
                    rel = key_c[id(p.rel)] = key_rel(p.rel)
                parts.append(Part(p.node, rel, krow[None, :].copy(), True, wide=True))
    return parts


def _finish(src, res, parts, op, reasons=(), inplace=False):
    if inplace:
        lin = F.lineage_of(src)
        F.attach_inplace(src, parts, op, [lin], reasons)
        return None
    return F.attach(res, parts, op, [src], reasons)


def _partial(res, src, op, why):
    """An argument combination not covered: PARTIAL (every cell of the input), with a warning naming it."""
    if res is None:  # in place
        lin = F.lineage_of(src)
        n = len(src)
        parts = [Part(p.node, RowRel.everything(n, p.rel.n_src), p.cmat.any(0)[None, :].copy(), p.control,
                      wide=True) for p in lin.parts]
        F.warn_partial(f"whence: {op} is not covered ({why}); its result derives from all cells of its input (PARTIAL)")
        F.attach_inplace(src, parts, op, [lin], [f"{op}: {why}"])
        return None
    return F.fallback(res, f"{op} ({why})", [src])


def _isna(x):
    """NA mask of a frame or series as a plain bool array."""
    with F.guard:
        return np.asarray(pd.isna(x).to_numpy(), bool)


def _is_frame(x):
    return isinstance(x, (pd.DataFrame, pd.Series))


# --- Series / DataFrame methods ------------------------------------------------------------------------------

_FILL = ("ffill", "bfill", "pad", "backfill")
_CUM = ("cumsum", "cumprod", "cummax", "cummin")
FRAME_METHODS = ("shift", "diff", "pct_change", "rank", "interpolate") + _FILL + _CUM


_SIGS: dict = {}


def _bind(base, self, args, kwargs):
    sig = _SIGS.get(base)
    if sig is None:
        sig = _SIGS[base] = inspect.signature(base)
    try:
        ba = sig.bind(self, *args, **kwargs)
    except TypeError:
        return None
    d = dict(ba.arguments)
    d.update(d.pop("kwargs", {}) or {})
    return d


def _axis0(obj, a):
    if a is None:
        return True
    try:
        return obj._get_axis_number(a) == 0
    except Exception:
        return False


def frame_method(name, base):
    """The tracked form of ``Series.<name>`` / ``DataFrame.<name>`` for the time-series family."""

    def method(self, *args, **kwargs):
        if F.guard_depth():
            return base(self, *args, **kwargs)
        with F.guard:
            inplace = bool(kwargs.get("inplace", False))
            isna = _isna(self) if name in _FILL + ("interpolate",) else None
            res = base(self, *args, **kwargs)
            if not inplace and not _is_frame(res):
                return res
            kw = _bind(base, self, args, kwargs) or {}
            return _frame_rule(name, self, self if inplace else res, kw, isna, inplace)

    method.__name__ = name
    method.__doc__ = base.__doc__
    method.__wrapped__ = base
    return method


def _frame_rule(name, src, res, kw, isna, inplace):
    op = f"{type(src).__bases__[-1].__name__}.{name}"
    out = None if inplace else res
    if not _axis0(src, kw.get("axis")):
        return _partial(out, src, op, f"axis={kw.get('axis')!r}")
    if res.shape[0] != src.shape[0]:
        return _partial(out, src, op, "a result of another length")
    p = kw.get("periods", 1)
    if name in ("shift", "diff", "pct_change") and not isinstance(p, (int, np.integer)):
        return _partial(out, src, op, f"periods={p!r}")
    lin = F.lineage_of(src)
    crow = _crow(src, res, lin)
    if crow is None:
        return _partial(out, src, op, "output columns not matched to input columns")
    n = len(src)
    reasons = []
    per_col = False
    if name == "shift":
        p, freq = kw.get("periods", 1), kw.get("freq")
        if not isinstance(p, (int, np.integer)):
            return _partial(out, src, op, f"periods={p!r}")
        if freq is not None:
            def data_rel(rel):
                return rel
        else:
            src_rows = _once(lambda: _shift_src(n, int(p)))

            def data_rel(rel):
                return _rows(rel, n, src_rows)
    elif name in ("diff", "pct_change"):
        p = kw.get("periods", 1)
        if not isinstance(p, (int, np.integer)):
            return _partial(out, src, op, f"periods={p!r}")
        p = int(p)
        fm = kw.get("fill_method")
        if name == "pct_change" and fm not in (None, pd.api.extensions.no_default):
            return _partial(out, src, op, f"fill_method={fm!r}")
        if name == "pct_change" and fm is pd.api.extensions.no_default and int(pd.__version__.split(".")[0]) < 3:
            return _partial(out, src, op, "the default fill_method='pad' of pandas 2 (pass fill_method=None)")
        freq = kw.get("freq") if name == "pct_change" else None
        if freq is not None:
            if not src.index.is_unique:
                return _partial(out, src, op, f"freq={freq!r} on an index with duplicates")
            other = src.index.get_indexer(src.index.shift(-p, freq=freq)).astype(np.int64)
            own = np.where(other >= 0, np.arange(n, dtype=np.int64), -1)

            def data_rel(rel):
                return _pairs(rel, other, own)
        else:
            def data_rel(rel):
                return _pair_rel(rel, n, p)
    elif name in _CUM:
        def data_rel(rel):
            return _prefix_rel(rel, n)
    elif name == "rank":
        def data_rel(rel):
            return _lane_rel(rel, n)
    elif name in _FILL:
        forward = name in ("ffill", "pad")
        out_na = _isna(res).reshape(isna.shape)
        copy = _fill_copy(isna, out_na, forward)
        per_col = True
        if copy is None:
            return _partial(out, src, op, "a filled cell whence cannot place")

        na2 = isna if isna.ndim == 2 else isna[:, None]  # (rows, columns), an empty frame included
        had_na = na2.any(0)
        gone = ~na2 & (out_na if out_na.ndim == 2 else out_na[:, None])
        same = ~had_na & ~gone.any(0)  # nothing filled or emptied: the column keeps its own rows

        def data_rel(rel, j):  # type: ignore[misc]  # one helper per branch
            if same[j]:
                return rel
            return _rows(rel, n, lambda: copy[:, j] if copy.ndim == 2 else copy)
    else:  # interpolate
        meth = kw.get("method", "linear")
        out_na = _isna(res).reshape(isna.shape)
        sets = _interp_sets(isna, out_na, meth)
        per_col = True
        if sets is None:
            return _partial(out, src, op, f"method={meth!r}")
        if meth not in _INTERP_LOCAL:
            reasons.append(f"{op}(method={meth!r}): each filled cell is taken to derive from its whole column")
            F.warn_partial(f"whence: {op}(method={meth!r}) is not covered exactly; a filled cell derives from its whole "
                    f"column (PARTIAL)")

        def data_rel(rel, j):  # type: ignore[misc]  # one helper per branch
            a, b = sets
            if a.ndim == 2:
                a, b = a[:, j], b[:, j]
            return _pairs(rel, a, b) if meth in _INTERP_LOCAL else _lane_or_own(rel, a, b, n)
    parts = _parts(src, res, data_rel, crow=crow, per_col=per_col)
    return _finish(src, res, parts, name, reasons, inplace)


def _fill_copy(isna, out_na, forward):
    """Row copied into every cell by ``ffill``/``bfill`` (the cell itself where nothing was filled)."""
    two = isna.ndim == 2
    a = isna if two else isna[:, None]
    o = out_na if two else out_na[:, None]
    n = a.shape[0]
    out = np.empty(a.shape, np.int64)
    pos = np.arange(n, dtype=np.int64)
    for j in range(a.shape[1]):
        src = _fill_src(a[:, j], forward)
        filled = a[:, j] & ~o[:, j]
        if np.any(filled & (src < 0)):
            return None
        np.copyto(out[:, j], np.where(filled, src, pos))
        gone = o[:, j] & ~a[:, j]
        if gone.any():
            out[gone, j] = -1  # a value turned NA: a constant
    return out if two else out[:, 0]


_INTERP_LOCAL = ("linear", "time", "index", "values", "pad", "ffill", "bfill", "backfill")


def _interp_sets(isna, out_na, meth):
    """For every cell, up to two rows it was interpolated from (the cell itself where nothing was filled)."""
    if not isinstance(meth, str):
        return None
    two = isna.ndim == 2
    a = isna if two else isna[:, None]
    o = out_na if two else out_na[:, None]
    n = a.shape[0]
    pos = np.arange(n, dtype=np.int64)
    A = np.empty(a.shape, np.int64)
    B = np.empty(a.shape, np.int64)
    for j in range(a.shape[1]):
        prev = _fill_src(a[:, j], True)
        nxt = _fill_src(a[:, j], False)
        if meth in ("pad", "ffill"):
            nxt = np.full(n, -1, np.int64)
        elif meth in ("bfill", "backfill"):
            prev = np.full(n, -1, np.int64)
        filled = a[:, j] & ~o[:, j]
        A[:, j] = np.where(filled, prev, pos)
        B[:, j] = np.where(filled, nxt, -1)
        gone = ~a[:, j] & o[:, j]
        A[gone, j] = -1
        B[gone, j] = -1
        if ((A[filled, j] < 0) & (B[filled, j] < 0)).any():
            return None
    return (A, B) if two else (A[:, 0], B[:, 0])


def _lane_or_own(rel, a, b, n):
    """A filled cell (``b`` set or ``a`` not itself): the whole column; others: the cell itself."""
    pos = np.arange(n, dtype=np.int64)
    filled = (b >= 0) | ((a >= 0) & (a != pos))
    lane = _lane_rel(rel, n)
    own = rel.take(a)
    if not filled.any():
        return own
    if filled.all():
        return lane
    order = np.concatenate([pos, np.where(a >= 0, a, 0)])
    lo = np.where(filled, 0, n + pos)
    hi = np.where(filled, n, np.where(a >= 0, n + pos + 1, n + pos))
    return _ranges(rel, lo, hi, order)


# --- rolling / expanding / ewm / resample ------------------------------------------------------------------

_WINDOW_REDUCERS = frozenset(["sum", "mean", "median", "min", "max", "std", "var", "sem", "skew", "kurt", "count",
                              "quantile", "rank", "apply", "agg", "aggregate", "nunique", "first", "last", "prod"])
_BIN_REDUCERS = frozenset(["sum", "mean", "median", "min", "max", "std", "var", "sem", "prod", "count", "nunique",
                           "first", "last", "ohlc", "size", "agg", "aggregate", "apply", "quantile"])


def _window_why(inner, kind, method, kwargs):
    """Why a window call is not covered exactly (None: it is)."""
    if method not in _WINDOW_REDUCERS and not (kind == "ewm" and method in ("mean", "sum", "std", "var")):
        return f"{method}()"
    if kind == "ewm" and method not in ("mean", "sum", "std", "var"):
        return f"{method}()"
    if getattr(inner, "method", "single") == "table":
        return "method='table'"
    if kind == "rolling":
        if getattr(inner, "win_type", None) is not None:
            return f"win_type={inner.win_type!r}"
        w = getattr(inner, "window", None)
        from pandas.api.indexers import BaseIndexer, FixedForwardWindowIndexer, VariableOffsetWindowIndexer
        if isinstance(w, BaseIndexer) and type(w) not in (FixedForwardWindowIndexer, VariableOffsetWindowIndexer):
            return f"window={type(w).__name__} (a custom BaseIndexer)"
    return None


def _group_fixed_bounds(inner, sizes, gstart):
    """pandas' fixed-window bounds in every group at once (what its group-by indexer computes group by group)."""
    w = int(inner.window)
    mp = inner.min_periods if inner.min_periods is not None else w
    m = int(sizes.sum())
    size = np.repeat(sizes, sizes)
    k = np.arange(m, dtype=np.int64) - gstart
    offset = (w - 1) // 2 if (inner.center or w == 0) else 0
    end = k + 1 + offset
    start = end - w
    if inner.closed in ("left", "both"):
        start -= 1
    if inner.closed in ("left", "neither"):
        end -= 1
    end = np.clip(end, 0, size)
    start = np.clip(start, 0, size)
    return start + gstart, end + gstart, mp


def _bounds(inner, kind, n):
    """pandas' own window bounds and min_periods for ``n`` rows (rows in the window's order)."""
    if kind == "ewm":
        lo, hi = _prefix_bounds(n)
        return lo, hi, max(int(inner.min_periods or 0), 1)
    indexer = inner._get_window_indexer()
    mp = inner.min_periods if inner.min_periods is not None else indexer.window_size
    if n == 0:
        return _EMPTY, _EMPTY, mp
    start, end = indexer.get_window_bounds(num_values=n, min_periods=mp, center=getattr(inner, "center", False),
                                           closed=getattr(inner, "closed", None), step=getattr(inner, "step", None))
    return np.asarray(start, np.int64), np.asarray(end, np.int64), mp


def window_result(win, method, res):
    """Lineage of ``<obj>.<kind>(...).<method>(...)`` (``win``: the tracked window object)."""
    obj, inner, kind, group = win._obj, win._inner, win._name, win._group
    if not _is_frame(res):
        return res
    if kind == "resample":
        return _resample(win, method, res)
    op = f"{'groupby().' if group is not None else ''}{kind}().{method}"
    why = _window_why(inner, kind, method, {})
    if why:
        return _partial(res, obj, op, why)
    lin = F.lineage_of(obj)
    crow = _crow(obj, res, lin)
    if crow is None:
        return _partial(res, obj, op, "output columns not matched to input columns")
    labels = [res.name] if isinstance(res, pd.Series) else list(res.columns)
    on = getattr(inner, "on", None)
    ident = [j for j, lab in enumerate(labels) if on is not None and _same_label(lab, on)]
    n = len(obj)
    key_rows, key_rel, idx_map = (), None, None
    if group is None:
        step = getattr(inner, "step", None)
        sel = None if not step or step == 1 else np.arange(0, n, step, dtype=np.int64)
        order = None
        if (n if sel is None else sel.shape[0]) != len(res):
            return _partial(res, obj, op, "a result of another length")

        def make():
            lo, hi, mp = _bounds(inner, kind, n)
            return lo, np.where(hi - lo < mp, lo, hi), None
    else:
        idxs = list(inner._grouper.indices.values())
        sizes = np.array([len(v) for v in idxs], np.int64)
        order = np.concatenate(idxs).astype(np.int64) if idxs else _EMPTY
        m = order.shape[0]
        if m != len(res):
            return _partial(res, obj, op, "a result of another length")

        def make():
            gstart = np.repeat(np.cumsum(sizes) - sizes, sizes)
            if kind == "ewm":
                lo, hi = _prefix_bounds(m, gstart)
                mp = max(int(inner.min_periods or 0), 1)
            elif kind == "rolling" and isinstance(getattr(inner, "window", None), (int, np.integer)):
                lo, hi, mp = _group_fixed_bounds(inner, sizes, gstart)
            else:
                lo, hi, mp = _bounds(inner, kind, m)
            return lo, np.where(hi - lo < mp, lo, hi), order
        sel = order
        key_labels = group._key_labels()
        ident += [j for j, lab in enumerate(labels) if any(_same_label(lab, k) for k in key_labels)]
        krows = group._key_rows()
        _, nidx, _, _ = F.dims(res)
        nk = nidx - lin.nidx
        if nk >= 0 and group._kwargs.get("as_index", True):
            kr = [[r] for r in krows] if len(krows) == nk else [[] for _ in range(nk)]
            idx_map = kr + [[i] for i in range(lin.nidx)]
        elif nidx == lin.nidx:
            idx_map = [[i] for i in range(lin.nidx)]
        else:
            idx_map = [[] for _ in range(nidx)]
        if krows:
            key_rows = krows

            def key_bounds():
                gstart = np.repeat(np.cumsum(sizes) - sizes, sizes)
                return gstart, gstart + np.repeat(sizes, sizes), order

            def key_rel(rel):
                return _lazy(rel, m, key_bounds)
    make = _once(make)

    def data_rel(rel):
        return _lazy(rel, len(res), make)

    parts = _parts(obj, res, data_rel, crow=crow, sel=sel, ident=ident, idx_map=idx_map, key_rows=key_rows,
                   key_rel=key_rel)
    reasons = []
    if group is not None:
        nk = F.dims(res)[1] - lin.nidx if group._kwargs.get("as_index", True) else 0
        vparts, reasons = _value_key_parts(group, res, order, nk)
        parts += vparts
    return F.attach(res, parts, op, [obj], reasons)


def _value_key_parts(group, res, order, nk):
    """Parts of the group keys given as values (``groupby(tracked_series)``, ``groupby(d.index.month)``): their
    cells of every row of the output row's group are control of each cell of that row; as the first ``nk``
    index levels of a result in group order (``order``: the input row of each output row), a level's cells
    are the row's own key cells.  Returns (parts, reasons)."""
    vkeys, reasons = group._value_keys()
    if not any(vkeys):
        return [], reasons
    codes = np.asarray(group._group_codes(), np.int64)
    ng = int(codes.max()) + 1 if codes.size else 0
    out_codes = codes if order is None else codes[order]
    _, nidx, ncols, _ = F.dims(res)
    parts = []
    for lev, ent in enumerate(vkeys):
        for node, rel, row, ctl in ent or ():
            parts.append(Part(node, rel.group(codes, ng).take(out_codes), row[None, :].copy(), True, wide=True))
            if order is not None and nk == len(vkeys) and lev < nidx:
                cm = np.zeros((nidx + ncols, row.shape[0]), bool)
                cm[lev] = row
                parts.append(Part(node, rel.take(order), cm, ctl))
    if reasons:
        F.warn_partial("whence: " + reasons[0] + " (PARTIAL)")
    return parts, reasons


def _same_label(a, b):
    try:
        return bool(a == b) and type(a) is type(b) or (isinstance(a, str) and a == b)
    except Exception:
        return False


def _time_axis(obj, on=None, level=None):
    if on is not None:
        return pd.Index(obj[on])
    if level is not None:
        return obj.index.get_level_values(level)
    return obj.index


def _unsort(codes, ax):
    """Codes pandas computed on the rows sorted by the time axis, put back in the rows' own order."""
    codes = np.asarray(codes, np.int64)
    if ax.is_monotonic_increasing and not ax.hasnans:
        return codes
    sorter = np.asarray(ax.array.argsort(kind="mergesort", na_position="first"), np.int64)
    out = np.empty_like(codes)
    out[sorter] = codes
    return out


def _bin_codes(inner):
    g = inner._grouper
    codes = getattr(g, "codes", None)
    if codes is not None:
        codes = codes[0] if isinstance(codes, (list, tuple)) else codes
    else:  # pragma: no cover - pandas 2.x
        codes = g.group_info[0]
    return np.asarray(codes, np.int64)


def _resample(win, method, res):
    obj, inner = win._obj, win._inner
    op = f"resample().{method}"
    if method not in _BIN_REDUCERS:
        return _partial(res, obj, op, f"{method}() (upsampling or a method whence does not cover)")
    on, level = win._kw.get("on"), win._kw.get("level")
    group = win._group
    ng = len(res)
    if group is not None:
        op = "groupby()." + op
        try:
            grouped = _group_bin_codes(win, res)
        except Exception as e:  # noqa: BLE001  (pandas took it; the bins run again per group did not)
            return _partial(res, obj, op, f"its time bins could not be read ({type(e).__name__})")
        if grouped is None:
            return _partial(res, obj, op, "a result whose rows are not the groups' time bins")
        codes = _once(lambda: grouped)
    else:
        try:
            ax = _time_axis(obj, on, level)
            raw = _bin_codes(inner)
        except Exception as e:  # pragma: no cover - pandas internals moved
            return _partial(res, obj, op, f"its time bins could not be read ({type(e).__name__})")
        if raw.shape[0] != len(obj) or (raw.size and raw.max() >= ng):
            return _partial(res, obj, op, "a result whose rows are not the time bins")
        codes = _once(lambda: _unsort(raw, ax))  # (a sort of the time axis: left to the first query)
    lin = F.lineage_of(obj)
    if on is not None:
        key = F.column_rows(obj, [on])
    elif level is not None:
        names = list(obj.index.names)
        key = [names.index(level) if level in names else int(level)]
    else:
        key = [0] if lin.nidx == 1 else None
    if key is None:
        return _partial(res, obj, op, "a time axis whence cannot place")
    def data_rel(rel):
        if rel.all_rows:
            return RowRel.everything(ng, rel.n_src)
        return RowRel(ng, rel.n_src, None, LazyCSR(fn=lambda: rel._group_csr(codes(), ng)))

    if method == "size":
        crow = [-1]
        extra = [(key, data_rel, True)]
    else:
        crow = _crow(obj, res, lin)
        extra = ()
        if crow is None:
            return _partial(res, obj, op, "output columns not matched to input columns")
    _, nidx, _, _ = F.dims(res)
    idx_map = [list(key)] + [[] for _ in range(nidx - 1)]
    key_rows = list(key)
    if group is not None:  # the group keys' levels first, then the bins; the keys' cells are control too
        gk = group._key_rows()
        if len(gk) != nidx - 1 and len(res):
            return _partial(res, obj, op, "group keys whence cannot place")
        idx_map = [[r] for r in gk] + [list(key)] if len(gk) == nidx - 1 else [[] for _ in range(nidx)]
        key_rows += gk

    # the index (bin labels) and control: the time cells of the bin's rows, through the same relation
    parts = _parts(obj, res, data_rel, crow=crow, idx_map=[[] for _ in range(nidx)], extra=extra,
                   key_rows=key_rows, key_rel=data_rel, same_rows=False)
    parts += _index_parts(obj, res, idx_map, data_rel)
    return F.attach(res, parts, op, [obj])


def _group_bin_codes(win, res):
    """Output row of every input row of ``groupby(keys).resample(...)``: pandas resamples each group on its
    own (its bins start at the group's first time), and the results follow one another in group order.  The
    same resample is run again on each group's time values; None when the labels so found are not those of
    ``res`` (or a key is given as values)."""
    obj, group = win._obj, win._group
    if any(group._value_keys()[0]) or not (isinstance(res.index, pd.MultiIndex) or len(res) == 0):
        return None
    kw = {k: v for k, v in win._kw.items() if k not in ("on", "level")}
    ax = _time_axis(obj, win._kw.get("on"), win._kw.get("level"))
    out = np.full(len(obj), -1, np.int64)
    labels = []
    off = 0
    for key, idx in group._gb.indices.items():
        idx = np.asarray(idx, np.int64)
        sub_ax = ax[idx]
        bins = pd.Series(np.zeros(idx.shape[0]), index=sub_ax).resample(*win._args, **kw)
        lab = bins.size().index
        c = _unsort(_bin_codes(bins), sub_ax)
        out[idx] = np.where(c >= 0, c + off, -1)
        kt = key if isinstance(key, tuple) else (key,)
        labels += [kt + (b,) for b in lab]
        off += len(lab)
    if off != len(res) or (off and list(res.index) != labels):
        return None
    return out


def _index_parts(obj, res, idx_map, rel_fn):
    lin = F.lineage_of(obj)
    _, nidx, ncols, _ = F.dims(res)
    out = []
    for p in lin.parts:
        if p.wide:
            continue
        cm = np.zeros((nidx + ncols, p.cmat.shape[1]), bool)
        for i, rs in enumerate(idx_map):
            for r in rs:
                cm[i] |= p.cmat[r]
        if cm.any():
            out.append(Part(p.node, rel_fn(p.rel), cm, p.control))
    return out


def time_group_codes(obj, by, codes):
    """Group codes of a group-by with a time ``pd.Grouper(freq=...)`` in the rows' own order (pandas numbers
    the rows sorted by time)."""
    blist = by if isinstance(by, list) else [by]
    tg = [b for b in blist if isinstance(b, pd.Grouper) and getattr(b, "freq", None) is not None]
    if len(tg) != 1:
        return codes
    g = tg[0]
    try:
        ax = _time_axis(obj, g.key, g.level)
    except Exception:  # pragma: no cover
        return codes
    return _unsort(codes, ax)


# --- group-wise forms -----------------------------------------------------------------------------------------

GROUP_METHODS = ("shift", "diff", "pct_change", "cumsum", "cumprod", "cummax", "cummin", "cumcount", "rank",
                 "ffill", "bfill")


def group_method(tgb, name, args, kwargs, via=None):
    """``groupby(...).<name>(...)`` (or ``transform(name)``) of a tracked object."""
    obj = tgb._obj
    with F.guard:
        if via is None:
            res = getattr(tgb._gb, name)(*args, **kwargs)
        else:
            res = tgb._gb.transform(name, *args, **kwargs)
    op = f"groupby().{name}"
    if not _is_frame(res):
        return res
    base = getattr(type(tgb._gb), name, None)
    kw = (_bind(base, tgb._gb, args, kwargs) if base is not None else None) or {}
    if len(res) != len(obj) or F.align_rows(obj, res) is not None:
        return _partial(res, obj, op, "a result whose rows are not the input's")
    lin = F.lineage_of(obj)
    lay = _once(lambda: _Layout(tgb._group_codes()))
    n = len(obj)
    per_col = False
    crow = None
    extra = ()
    key_rows = tgb._key_rows()
    if name == "cumcount":
        crow = [-1]
        asc = kw.get("ascending", True)

        def make_cc():
            L = lay()
            lo, hi = L.gstart[L.g], np.arange(1, L.order.shape[0] + 1, dtype=np.int64)
            if not asc:
                lo, hi = lo + L.k, L.gstart[L.g] + L.counts[L.g]
            return L.scatter(lo, 0), L.scatter(hi, 0), L.order
        extra = [(key_rows, lambda rel: _lazy(rel, n, make_cc), True)]

        def data_rel(rel):
            return rel
    else:
        crow = _crow(obj, res, lin)
        if crow is None:
            return _partial(res, obj, op, "output columns not matched to input columns")
        if name == "shift":
            p = kw.get("periods", 1)
            if not isinstance(p, (int, np.integer)) or kw.get("freq") is not None:
                return _partial(res, obj, op, f"periods={p!r}, freq={kw.get('freq')!r}")
            def make_shift():  # shift(0) is a copy, rows in no group included
                src = _shift_src(n, int(p), lay()) if p else np.arange(n, dtype=np.int64)
                ok = src >= 0
                return np.where(ok, src, 0), np.where(ok, src + 1, 0), None

            def data_rel(rel):
                return _lazy(rel, n, make_shift)
        elif name in ("diff", "pct_change"):
            p = kw.get("periods", 1)
            fm = kw.get("fill_method")
            if not isinstance(p, (int, np.integer)) or kw.get("freq") is not None or \
                    fm not in (None, pd.api.extensions.no_default):
                return _partial(res, obj, op, f"periods={p!r}, freq={kw.get('freq')!r}, fill_method={fm!r}")
            if name == "pct_change" and fm is pd.api.extensions.no_default and \
                    int(pd.__version__.split(".")[0]) < 3:
                return _partial(res, obj, op, "the default fill_method='ffill' of pandas 2 (pass fill_method=None)")

            def data_rel(rel):  # diff(0) is x - x, rows in no group included
                return _pair_rel(rel, n, int(p), None if (name == "diff" and not p) else lay)
        elif name in _CUM:
            def data_rel(rel):
                return _prefix_rel(rel, n, lay)
        elif name == "rank":
            def data_rel(rel):
                return _lane_rel(rel, n, lay)
        else:  # ffill / bfill
            sub = obj[tgb._selection] if tgb._selection is not None and isinstance(obj, pd.DataFrame) else obj
            isna = _isna(sub)
            if isna.ndim == 2:
                cols = list(sub.columns) if isinstance(sub, pd.DataFrame) else [sub.name]
                js = [cols.index(lab) if lab in cols else -1 for lab in
                      ([res.name] if isinstance(res, pd.Series) else list(res.columns))]
                if min(js, default=0) < 0 or not pd.Index(cols).is_unique:
                    return _partial(res, obj, op, "output columns not matched to input columns")
                isna = isna[:, js]
            out_na = _isna(res).reshape(isna.shape)
            forward = name == "ffill"
            two = isna.ndim == 2
            a = isna if two else isna[:, None]
            o = out_na if two else out_na[:, None]
            copy = np.empty(a.shape, np.int64)
            pos = np.arange(n, dtype=np.int64)
            L = lay()
            for j in range(a.shape[1]):
                s = _fill_src(a[:, j], forward, L)
                filled = a[:, j] & ~o[:, j]
                if (s[filled] < 0).any():
                    return _partial(res, obj, op, "a filled cell whence cannot place")
                c = np.where(filled, s, pos)
                c[(~a[:, j] & o[:, j]) | (L.codes < 0)] = -1  # NA made by pandas: a constant
                copy[:, j] = c
            per_col = True
            # res column j <- input column crow[j]: remember which copy column goes with it
            colmap = {r: j for j, r in enumerate(crow)}

            def data_rel(rel, jsrc):  # type: ignore[misc]  # one helper per branch
                return _rows(rel, n, lambda: copy[:, colmap[lin.nidx + jsrc]])
    def key_rel(rel):
        return _lane_rel(rel, n, lay)

    parts = _parts(obj, res, data_rel, crow=crow, per_col=per_col, extra=extra, key_rows=key_rows,
                   key_rel=key_rel)
    vparts, reasons = _value_key_parts(tgb, res, None, 0)
    if name == "cumcount":  # the count is of the key cells: value keys' cells of the prefix are its data
        nidx_res = F.dims(res)[1]
        for ent in tgb._value_keys()[0]:
            for node, rel, row, ctl in ent or ():
                cm = np.zeros((nidx_res + 1, row.shape[0]), bool)
                cm[nidx_res] = row
                vparts.append(Part(node, extra[0][1](rel), cm, ctl))
    return F.attach(res, parts + vparts, op, [obj], reasons)


# --- merge_asof -----------------------------------------------------------------------------------------------

_ORIG: dict = {}
_RID = "__whence_asof_rid__"


def merge_asof(left, right, *args, **kwargs):
    """``pandas.merge_asof`` with lineage: a left column from its own row, a right column from the matched
    right row (nothing where none matched); control: the ``on``/``by`` cells of both rows."""
    orig = _ORIG["merge_asof"]
    lt, rt = F.is_tracked_frame(left), F.is_tracked_frame(right)
    if F.guard_depth() or not (lt or rt):
        return orig(left, right, *args, **kwargs)
    with F.guard:
        pl = pd.DataFrame(left) if isinstance(left, pd.DataFrame) else left
        pr = pd.DataFrame(right) if isinstance(right, pd.DataFrame) else right
        res = orig(pl, pr, *args, **kwargs)  # pandas' own errors, unchanged, before anything is recorded
        if not isinstance(pr, pd.DataFrame) or not isinstance(pl, pd.DataFrame) or _RID in pr.columns:
            return F.fallback(F.TYPES["frame"](res), "merge_asof", [x for x in (left, right) if F.is_tracked_frame(x)])
        rid = pr.assign(**{_RID: np.arange(len(pr), dtype=np.int64)})
        probe = orig(pl, rid, *args, **kwargs)
        sel_r = np.asarray(probe[_RID].fillna(-1).to_numpy(), np.int64)
    res = F.TYPES["frame"](res)
    kw = inspect.signature(orig).bind(left, right, *args, **kwargs).arguments
    on, by = kw.get("on"), kw.get("by")
    lon, ron = kw.get("left_on", on), kw.get("right_on", on)
    lby, rby = kw.get("left_by", by), kw.get("right_by", by)
    sfx = kw.get("suffixes", ("_x", "_y"))
    lcols, rcols = list(pl.columns), list(pr.columns)
    keys_l = [k for k in _aslist(lon) + _aslist(lby) if k is not None]
    keys_r = [k for k in _aslist(ron) + _aslist(rby) if k is not None]
    shared = {a for a, b in zip(_aslist(lon) + _aslist(lby), _aslist(ron) + _aslist(rby)) if a == b}
    overlap = (set(lcols) & set(rcols)) - shared
    lmap = {suffixed(c, sfx[0], overlap): j for j, c in enumerate(lcols)}
    rmap = {suffixed(c, sfx[1], overlap): j for j, c in enumerate(rcols) if c not in shared}
    nidx, ncols = res.index.nlevels, res.shape[1]
    lin_l = F.lineage_of(left) if lt else None
    lin_r = F.lineage_of(right) if rt else None
    crow_l, crow_r = [-1] * (nidx + ncols), [-1] * (nidx + ncols)
    reasons = []
    for j, lab in enumerate(res.columns):
        if lab in lmap and lin_l is not None:
            crow_l[nidx + j] = lin_l.nidx + lmap[lab]
        elif lab in rmap and lin_r is not None:
            crow_r[nidx + j] = lin_r.nidx + rmap[lab]
        elif lab not in lmap and lab not in rmap:
            reasons.append(f"merge_asof output column {lab!r} could not be matched to an input column")
    if kw.get("left_index") or kw.get("right_index"):
        reasons.append("merge_asof on an index: the index cells are not followed")
    parts = []
    ncells = nidx + ncols
    if lin_l is not None:
        parts += F.remap(lin_l, crow_l, None if len(res) == len(left) else None)
        lr = F.column_rows(left, keys_l) if keys_l else []
        if lr:
            parts += F.col_control(lin_l, None, lr, ncells)
    if lin_r is not None:
        parts += F.remap(lin_r, crow_r, sel_r)
        rr = F.column_rows(right, keys_r) if keys_r else []
        if rr:
            parts += F.col_control(lin_r, sel_r, rr, ncells)
    if reasons:
        F.warn_partial("whence: " + "; ".join(reasons) + " (PARTIAL)")
        for lin in (lin_l, lin_r):
            if lin is None:
                continue
            parts += [Part(p.node, RowRel.everything(len(res), p.rel.n_src), p.cmat.any(0)[None, :].copy(),
                           p.control, wide=True) for p in lin.parts]
    inputs = [x for x in (left, right) if F.is_tracked_frame(x)]
    return F.attach(res, parts, "merge_asof", inputs, reasons)


def _aslist(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def install():
    """Put the ``merge_asof`` wrapper on the ``pandas`` module (once)."""
    import functools
    if _ORIG:
        return
    orig = pd.merge_asof
    _ORIG["merge_asof"] = orig
    wrapped = functools.wraps(orig)(merge_asof)
    wrapped.__whence_wrapped__ = True
    pd.merge_asof = wrapped
