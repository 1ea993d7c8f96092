"""Operations on lazy dask frames that build new frames from several pieces: the PARTIAL fallback of what whence
does not cover, merges, and group-by aggregations (:class:`DaskTrackedGroupBy`).

They build :class:`~whence.dask.dataframe.DaskTrackedFrame` and :class:`~whence.dask.dataframe.DaskTrackedSeries`
objects through :data:`_classes`, which :mod:`whence.dask.dataframe` fills when it defines them (that module
imports this one, not the other way round).
"""

from __future__ import annotations

from types import SimpleNamespace

from .frame_lineage import HIDDEN_PREFIX, FrameLineage, GroupOrigin, fresh_column, union_deps, warn_partial

__all__ = ["DaskTrackedGroupBy", "fallback", "merge", "register_classes"]

#: the frame and series classes of :mod:`whence.dask.dataframe` (``FRAME``, ``SERIES``), set by
#: :func:`register_classes`
_classes = SimpleNamespace(FRAME=None, SERIES=None)


def register_classes(frame, series):
    """Called by :mod:`whence.dask.dataframe` once its frame and series classes are defined."""
    _classes.FRAME, _classes.SERIES = frame, series


def fallback(frame, op, res):
    """``res`` computed by an operation whence does not cover: every cell derives from every cell of
    ``frame`` (data and control as they were), PARTIAL, with a warning."""
    reason = f"{op} is not covered on dask frames: every cell is taken to derive from every cell of its input"
    warn_partial(f"whence: {op} is not covered on dask frames; its result derives from all cells of its input (PARTIAL)")
    import dask.dataframe as dd
    oid = fresh_column("a")
    parent = frame._snapshot()
    allcols = frozenset(frame._lin.cols)
    origins = {oid: (GroupOrigin(parent, ()), ())}
    reasons = frame._lin.reasons + (reason,)
    if isinstance(res, dd.DataFrame):
        lin = FrameLineage(origins, {c: {oid: allcols} for c in res.columns}, {}, reasons)
        return _classes.FRAME(res, lin)
    if isinstance(res, dd.Series):
        fr = _classes.FRAME(res.to_frame(), FrameLineage(origins, {res.name: {oid: allcols}}, {}, reasons))
        return _classes.SERIES(res, fr, {oid: allcols})
    return res


# --- merge ----------------------------------------------------------------------------------------------------

def _rehide(frame, taken):
    """``frame`` with its hidden columns renamed where they clash with ``taken`` (a self-merge)."""
    lin = frame._lin
    ren = {}
    origins, cols, ctrl = {}, {}, {}
    oid_map = {}
    for oid, (o, hs) in lin.origins.items():
        if oid in taken or any(h in taken for h in hs):
            new_oid = fresh_column("m")
            new_hs = tuple(f"{new_oid}_{j}" for j in range(len(hs)))
            ren.update(dict(zip(hs, new_hs)))
            oid_map[oid] = new_oid
            origins[new_oid] = (o, new_hs)
        else:
            oid_map[oid] = oid
            origins[oid] = (o, hs)
    if not ren and all(k == v for k, v in oid_map.items()):
        return frame
    cols = {c: {oid_map[k]: v for k, v in d.items()} for c, d in lin.cols.items()}
    ctrl = {oid_map[k]: v for k, v in lin.ctrl.items()}
    return _classes.FRAME(frame._d.rename(columns=ren), FrameLineage(origins, cols, ctrl, lin.reasons, lin.token))


def _as_list(x):
    return None if x is None else ([x] if not isinstance(x, (list, tuple)) else list(x))


def merge(left, right, how, on, left_on, right_on, suffixes, kwargs):
    if not isinstance(right, _classes.FRAME):
        return fallback(left, "merge with an untracked frame", left._visible().merge(
            right, how=how, on=on, left_on=left_on, right_on=right_on, suffixes=suffixes, **kwargs))
    if kwargs.get("left_index") or kwargs.get("right_index") or kwargs.get("indicator") or how == "cross":
        return fallback(left, f"merge({how}, index or indicator)", left._visible().merge(
            right._visible(), how=how, on=on, left_on=left_on, right_on=right_on, suffixes=suffixes, **kwargs))
    on, left_on, right_on = _as_list(on), _as_list(left_on), _as_list(right_on)
    lcols, rcols = list(left._lin.cols), list(right._lin.cols)
    if on is None and left_on is None:
        on = [c for c in lcols if c in rcols]
    if on is not None:
        left_on = right_on = on
    shared = [a for a, b in zip(left_on, right_on) if a == b]
    taken = set(left._lin.origins) | set(left._lin.hidden())
    right = _rehide(right, taken)
    kwargs.setdefault("shuffle_method", "tasks")
    d = left._d.merge(right._d, how=how, left_on=left_on, right_on=right_on, suffixes=suffixes, **kwargs)
    overlap = (set(lcols) & set(rcols)) - set(shared)
    cols = {}
    for c in lcols:
        out = c + suffixes[0] if c in overlap else c
        cols[out] = dict(left._lin.cols[c])
        if c in shared:
            cols[out] = union_deps(cols[out], right._lin.cols[c])
    for c in rcols:
        if c in shared:
            continue
        out = c + suffixes[1] if c in overlap else c
        if out in cols:
            return fallback(left, "merge with clashing column labels", d[list(d.columns)[:0]])
        cols[out] = dict(right._lin.cols[c])
    vis = [c for c in d.columns if not str(c).startswith(HIDDEN_PREFIX)]
    if sorted(map(str, vis)) != sorted(map(str, cols)):
        return fallback(left, "merge (column labels whence cannot follow)", d[vis])
    cols = {c: cols[c] for c in vis}
    keyl = union_deps(*[left._lin.cols[c] for c in left_on])
    keyr = union_deps(*[right._lin.cols[c] for c in right_on])
    ctrl = union_deps(left._lin.ctrl, right._lin.ctrl, keyl, keyr)
    origins = dict(left._lin.origins)
    origins.update(right._lin.origins)
    return _classes.FRAME(d, FrameLineage(origins, cols, ctrl, left._lin.reasons + right._lin.reasons))


# --- group-by -------------------------------------------------------------------------------------------------

_AGGS = {"sum", "mean", "count", "min", "max", "size", "std", "var", "first", "last", "nunique", "median",
         "prod"}


class DaskTrackedGroupBy:
    """``frame.groupby(keys)``: aggregations whose cells derive from the column's cells in every row of the
    group (control: the key cells of the group's rows)."""

    def __init__(self, frame, by, kwargs, selection=None):
        self._frame, self._kwargs, self._sel = frame, dict(kwargs), selection
        self._as_index = self._kwargs.pop("as_index", True)
        self._by = [by] if isinstance(by, str) else (list(by) if isinstance(by, (list, tuple)) else by)

    def __getitem__(self, key):
        return DaskTrackedGroupBy(self._frame, self._by, dict(self._kwargs, as_index=self._as_index), key)

    def _untracked_groupby(self):
        """The dask group-by of the visible columns (no lineage), with the column selection applied."""
        gb = self._gb()
        return gb if self._sel is None else gb[self._sel]

    def _gb(self):
        kw = dict(self._kwargs)
        kw.setdefault("sort", True)  # pandas' order of groups, and the same order in every computation
        return self._frame._visible().groupby(self._by, **kw)

    def _supported(self):
        f = self._frame
        kw = {k: v for k, v in self._kwargs.items() if k not in ("sort", "observed")}
        return (isinstance(self._by, list) and all(isinstance(b, str) and b in f._lin.cols for b in self._by)
                and kw.get("dropna", True) is not False and set(kw) <= {"dropna"})

    def agg(self, func=None, **named):
        """Aggregate: named (``total=("v", "sum")``), a dict ``{column: function}`` or one function."""
        if not self._supported():
            return fallback(self._frame, "groupby with these keys or options", self._untracked_groupby().agg(func, **named))
        f = self._frame
        if named:
            spec = {out: (col, fn) for out, (col, fn) in named.items()}
            res = self._gb().agg(**named)
        else:
            res = self._untracked_groupby().agg(func)
            if isinstance(func, dict):
                if any(not isinstance(v, str) for v in func.values()):
                    return fallback(f, "groupby.agg with lists of functions", res)
                spec = {c: (c, fn) for c, fn in func.items()}
            elif isinstance(func, str):
                sel = self._sel if self._sel is not None else [c for c in f._lin.cols if c not in self._by]
                if isinstance(sel, str):
                    spec = {sel: (sel, func)}
                else:
                    spec = {c: (c, func) for c in sel}
            else:
                return fallback(f, "groupby.agg with this function", res)
        if any(fn not in _AGGS and not callable(fn) for _, fn in spec.values()):
            return fallback(f, "groupby.agg with this function", res)
        return self._lineage(res, spec)

    aggregate = agg

    def size(self):
        if not self._supported():
            return fallback(self._frame, "groupby.size with these keys or options", self._untracked_groupby().size())
        res = self._gb().size()
        return self._lineage(res, {None: (None, "size")})

    def _lineage(self, res, spec):
        import dask.dataframe as dd
        f = self._frame
        parent = f._snapshot()
        oid = fresh_column("g")
        hs = tuple(f"{oid}_{j}" for j in range(len(self._by)))
        keys = self._by
        series = isinstance(res, dd.Series)
        frame = res.to_frame() if series else res
        outcols = list(frame.columns)

        def add_keys(pdf):
            pdf = pdf.copy()
            for j, h in enumerate(hs):
                pdf[h] = pdf.index.get_level_values(j)
            return pdf

        meta = add_keys(frame._meta)
        d = frame.map_partitions(add_keys, meta=meta)
        keyset = frozenset(keys)
        cols = {}
        for c in outcols:
            col, fn = spec.get(c, spec.get(None)) if (c in spec or None in spec) else (c, None)
            cols[c] = {oid: keyset if fn == "size" else frozenset([col])}
        lin = FrameLineage({oid: (GroupOrigin(parent, keys), hs)}, cols, {oid: keyset}, f._lin.reasons,
                   index={k: {oid: frozenset([k])} for k in keys})
        out = _classes.FRAME(d, lin)
        if not self._as_index:
            return out.reset_index()
        if series:
            s = out[outcols[0]]
            return _classes.SERIES(s._s.rename(res.name), s._frame, s._dep, s._reasons)
        return out

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _AGGS - {"size"}:
            return lambda *a, **k: self.agg(name) if not a and not k else fallback(
                self._frame, f"groupby.{name} with arguments", getattr(self._untracked_groupby(), name)(*a, **k))
        attr = getattr(self._untracked_groupby(), name)

        def call(*args, **kwargs):
            return fallback(self._frame, f"groupby.{name}", attr(*args, **kwargs))

        return call
