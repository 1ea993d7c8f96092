"""Index lineage: the index of a tracked frame carries the lineage of its index cells.

``df.index`` is registered (by identity, see :mod:`whence.tabular.frame.values`) with the lineage of the
frame's index levels; the cellwise methods and properties of ``Index`` and ``DatetimeIndex``
(:data:`INDEX_CELLWISE`: ``dayofweek``, ``month``, ``strftime``, ``to_series``, ``astype``, ...) give their
result the same lineage, row by row; so do the methods of the ``.str`` accessor of an Index (``idx.str.upper()``,
``idx.str[0]``, ``idx.str.split(expand=True)``), as for a Series' ``.str``.  Setting ``df.index = value`` gives the index levels the lineage of
``value`` (a tracked Series, or a registered Index or array); a value whence cannot see is a constant and
raises a :class:`~whence.errors.ConstantValueWarning`.  The other Index methods return objects with no
lineage (:data:`INDEX_UNTRACKED`); written into a tracked frame, they raise the same warning.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings

import numpy as np
import pandas as pd

from ..relations import Lineage, Part
from .base import attach, attach_inplace, guard_depth, guard, guard_state, remap, user_stacklevel, lineage_of
from .values import plain_arrays, register_plain, plain_lineage, warn_constant

__all__ = ["INDEX_CELLWISE", "INDEX_UNTRACKED", "INDEX_META", "install"]

#: results of the same length whose row i derives from row i of the index
INDEX_CELLWISE = frozenset("""
astype copy fillna infer_objects isin isna isnull notna notnull map rename set_names round to_flat_index to_numpy
values array ravel transpose T view where putmask replace to_series to_frame where
year month day hour minute second microsecond nanosecond dayofweek day_of_week weekday dayofyear day_of_year
quarter days_in_month daysinmonth is_month_start is_month_end is_quarter_start is_quarter_end is_year_start
is_year_end is_leap_year date time timetz normalize strftime floor ceil to_period tz_localize tz_convert
month_name day_name to_pydatetime isocalendar as_unit snap to_julian_date asi8 str
""".split())
#: results holding some of the index's values, reductions, set operations: no lineage is carried
INDEX_UNTRACKED = frozenset("""
take delete drop drop_duplicates dropna unique sort_values repeat insert append difference intersection union
symmetric_difference reindex droplevel get_level_values shift diff argsort sortlevel all any argmax argmin max min
mean std nunique value_counts factorize groupby duplicated asof join to_list tolist item
""".split())
#: metadata: no cells (names, dtypes, positions and lookups)
INDEX_META = frozenset("""
format holds_integer is_boolean is_categorical is_floating is_integer is_interval is_numeric is_object sort
dtype name names nlevels ndim shape size empty equals identical is_ is_unique has_duplicates hasnans inferred_type
is_monotonic_increasing is_monotonic_decreasing memory_usage nbytes freq freqstr inferred_freq is_normalized
resolution tz tzinfo unit get_indexer get_indexer_for get_indexer_non_unique get_loc get_slice_bound slice_locs
slice_indexer searchsorted asof_locs indexer_at_time indexer_between_time
""".split())

_INDEX_CLASSES = (pd.Index, pd.DatetimeIndex, pd.TimedeltaIndex, pd.PeriodIndex, pd.CategoricalIndex,
                  pd.IntervalIndex, pd.MultiIndex, pd.RangeIndex)


def index_lineage(lin):
    """Series-like lineage of the index of a frame with lineage ``lin``: the index rows are the frame's index
    levels; the value row is their union (a MultiIndex value is the tuple of its levels)."""
    nidx = lin.nidx
    parts = []
    for p in lin.parts:
        if p.wide:
            parts.append(p)
            continue
        cm = np.vstack([p.cmat[:nidx], p.cmat[:nidx].any(0)[None, :]])
        if cm.any():
            parts.append(Part(p.node, p.rel, cm, p.control))
    return Lineage(parts, lin.n, nidx, 1, lin.reasons, op="index", series=True)


def _register_index(idx, obj):
    lin = obj.__dict__.get("_wh")
    if lin is None or len(idx) != lin.n or idx.nlevels != lin.nidx:
        return
    register_plain(idx, None, functools.partial(index_lineage, lin), owner=lin)


_FRAME_INDEX = pd.DataFrame.__dict__["index"]
_SERIES_INDEX = pd.Series.__dict__["index"]


def _index_getter(axis):
    """The getter of ``index`` for a class whose pandas ``index`` descriptor is ``axis``: pandas reads
    ``self.index`` many times per call, so inside a covered operation it is pandas' own read and nothing more;
    outside, the index's lineage is registered again only when the registry does not hold this frame's lineage
    for this index already."""
    get_axis = axis.__get__
    local = guard_state

    def index(self):
        idx = get_axis(self, None)
        if local.depth:
            return idx
        lin = self.__dict__.get("_wh")
        if lin is not None:
            e = plain_arrays.get(id(idx))
            if e is None or e[3] is not lin or e[0]() is not idx:
                _register_index(idx, self)
        return idx

    return index


def _set_index(self, value):
    """``obj.index = value``: the index levels take the lineage of ``value`` (pandas' own steps: unchanged)."""
    base = pd.DataFrame.__dict__["index"] if isinstance(self, pd.DataFrame) else pd.Series.__dict__["index"]
    lin = self.__dict__.get("_wh")
    if guard_depth() or lin is None or _from_pandas():
        base.__set__(self, value)
        if lin is not None and not guard_depth() and (lin.nidx != self.index.nlevels or lin.n != len(self)):
            object.__setattr__(self, "_wh", None)  # pandas' own step: the operation's lineage is set after
        return
    vlin = lineage_of(value)
    if vlin is None and isinstance(value, (pd.Index, np.ndarray)):
        vlin = plain_lineage(value)
    base.__set__(self, value)
    with guard:
        _after_index_set(self, lin, value, vlin)


def _get_index(self):
    return (_frame_get if isinstance(self, pd.DataFrame) else _series_get)(self)


class Indexes:
    """The ``index`` property of the tracked classes: reading registers its lineage, writing sets it
    (:data:`FRAME_INDEX` and :data:`SERIES_INDEX` are the property of each class)."""

    index = property(_get_index, _set_index)


_frame_get = _index_getter(_FRAME_INDEX)
_series_get = _index_getter(_SERIES_INDEX)
#: the ``index`` property of :class:`TrackedFrame` and of :class:`TrackedSeries` (no type test per read)
_INDEX_DOC = ("The row labels (pandas' own ``index``). Read outside a covered operation, the index of a tracked "
              "object carries the lineage of its labels, so ``df.index.dayofweek`` and ``df.index.to_series()`` "
              "stay tracked; setting it gives the index levels the lineage of the new labels.")
FRAME_INDEX = property(_frame_get, _set_index, doc=_INDEX_DOC)
SERIES_INDEX = property(_series_get, _set_index, doc=_INDEX_DOC)


def _from_pandas():
    """True when the index is being set by pandas' own code (past its ``__setattr__``), not by the user's."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_name == "__setattr__":
        f = f.f_back
    return f is not None and f.f_globals.get("__name__", "").startswith("pandas")


def _after_index_set(obj, lin, value, vlin):
    nidx = obj.index.nlevels
    ncols = lin.ncols
    parts = remap(lin, [-1] * nidx + [lin.nidx + j for j in range(ncols)])
    reasons = []
    if vlin is not None:
        if vlin.n != len(obj):
            reasons.append("the index was set from a value of another length")
        else:
            for p in vlin.parts:
                if p.wide:
                    parts.append(p)
                    continue
                cm = np.zeros((nidx + ncols, p.cmat.shape[1]), bool)
                if isinstance(value, pd.Index) and vlin.nidx == nidx:
                    cm[:nidx] = p.cmat[:nidx]  # an index keeps its levels
                else:
                    cm[:nidx] = p.cmat[vlin.nidx:].any(0)
                if cm.any():
                    parts.append(Part(p.node, p.rel, cm, p.control))
    elif not isinstance(value, (range, pd.RangeIndex)):
        warn_constant("the index", value)
    attach_inplace(obj, parts, "set index", [lin, vlin], reasons)


def _result(idx, res, name):
    """Give ``res`` (computed from the registered index ``idx``) the index's lineage, row by row."""
    plin = plain_lineage(idx)
    if plin is None:
        return res
    n = len(idx)
    if isinstance(res, (pd.Index, np.ndarray)) and np.ndim(res) >= 1 and len(res) == n:
        register_plain(res, None, plin)
        return res
    if isinstance(res, pd.Series) and len(res) == n:
        if res.index is idx or res.index.equals(idx):
            return attach(res, list(plin.parts), f"Index.{name}", [])
        crow = [-1] * res.index.nlevels + [plin.nidx]
        return attach(res, remap(plin, crow), f"Index.{name}", [])
    if isinstance(res, pd.DataFrame) and len(res) == n:
        same = res.index is idx or res.index.equals(idx)
        nidx = res.index.nlevels
        if name == "to_frame" and res.shape[1] == plin.nidx:
            crow = (list(range(nidx)) if same else [-1] * nidx) + list(range(plin.nidx))
        else:
            crow = (list(range(nidx)) if same else [-1] * nidx) + [plin.nidx] * res.shape[1]
        return attach(res, remap(plin, crow), f"Index.{name}", [])
    return res


def _wrap_attr(cls, name):
    attr = inspect.getattr_static(cls, name)
    if isinstance(attr, property) or (hasattr(attr, "__get__") and not callable(attr) and
                                      not isinstance(attr, (staticmethod, classmethod))):
        getter = attr

        def get(self):
            if _internal_caller():
                res = getter.__get__(self, type(self))
            else:
                res = _as_user(getter.__get__, self, type(self))
            if _plain_empty():
                return res
            return _result(self, res, name)

        return property(get, doc=getattr(attr, "__doc__", None))
    if callable(attr) and not isinstance(attr, (staticmethod, classmethod, type)):
        fn = attr

        @functools.wraps(fn)
        def method(self, *args, **kwargs):
            if _internal_caller():
                res = fn(self, *args, **kwargs)
            else:
                res = _as_user(fn, self, *args, **kwargs)
            if _plain_empty():
                return res
            return _result(self, res, name)

        return method
    return None


class _IndexStr:
    """The ``.str`` accessor of a registered Index: each result of the index's length gets the index's
    lineage, row by row (:func:`_result`); anything else is pandas' own."""

    __slots__ = ("_idx", "_acc")

    def __init__(self, idx, acc):
        self._idx, self._acc = idx, acc

    def __repr__(self):
        return repr(self._acc)

    def __dir__(self):
        return dir(self._acc)

    def __iter__(self):
        return iter(self._acc)

    def __getitem__(self, key):
        return _result(self._idx, _as_user(self._acc.__getitem__, key), "str.__getitem__")

    def __getattr__(self, name):
        attr = getattr(self._acc, name)
        if not callable(attr):
            return _result(self._idx, attr, f"str.{name}")

        @functools.wraps(attr)
        def call(*args, **kwargs):
            return _result(self._idx, _as_user(attr, *args, **kwargs), f"str.{name}")
        return call


class _StrProperty(property):
    """``Index.str``: pandas' accessor, behind :class:`_IndexStr` for a registered index; on the class, pandas'
    accessor class (as ``pd.Index.str`` always was)."""

    def __get__(self, obj, cls=None):
        if obj is None:
            return self._acc.__get__(None, cls)
        return super().__get__(obj, cls)


def _wrap_str(cls):
    acc = inspect.getattr_static(cls, "str")

    make = getattr(acc, "_accessor", None)

    def get(self):
        # the accessor made afresh (pandas 2 caches it on the instance, which this property forbids)
        inner = make(self) if make is not None else acc.__get__(self, type(self))
        if _plain_empty() or plain_lineage(self) is None:
            return inner
        return _IndexStr(self, inner)

    prop = _StrProperty(get, doc=getattr(acc, "__doc__", None))
    prop._acc = acc
    return prop


def _internal_caller():
    """True when the wrapped Index attribute was called by pandas' or whence's own code (the frame two up):
    their warnings need no moving to the user's line, and catching them was most of the wrapper's cost."""
    mod = sys._getframe(2).f_globals.get("__name__", "")
    return mod.startswith("pandas") or mod.startswith("whence")


def _as_user(f, *args, **kwargs):
    """``f(*args, **kwargs)``, with the warnings it raises (pandas' deprecations) re-issued at the caller's line:
    pandas attributes a warning to the first frame outside pandas, which would be this wrapper, so that the
    user's own use of a deprecated attribute would read as whence's (and be hidden by Python's default filters)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = f(*args, **kwargs)
    if caught:
        level = user_stacklevel()
        for w in caught:
            warnings.warn(w.message, w.category, stacklevel=level)
    return res


def _plain_empty():
    return not plain_arrays


_INSTALLED: list = []


def _defining_classes():
    seen = []
    for cls in _INDEX_CLASSES:
        for c in cls.__mro__:
            if c.__module__.startswith("pandas") and c not in seen and c is not object:
                seen.append(c)
    return seen


def install():
    """Wrap the cellwise Index attributes where pandas defines them (once)."""
    if _INSTALLED:
        return
    _INSTALLED.append(True)
    for cls in _defining_classes():
        for name in sorted(INDEX_CELLWISE):
            if name in ("T", "view", "ravel", "transpose") or name not in cls.__dict__:
                continue
            if getattr(cls.__dict__[name], "__whence_wrapped__", False):
                continue
            w = _wrap_str(cls) if name == "str" else _wrap_attr(cls, name)
            if w is not None:
                try:
                    w.__whence_wrapped__ = True
                except AttributeError:
                    pass
                setattr(cls, name, w)
