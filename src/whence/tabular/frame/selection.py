"""Row-selection bucket: results holding some rows (and columns) of their input, each cell copied from one
input cell (``[]``, ``loc``, ``iloc``, ``head``, ``query``, ``sort_values``, ``dropna``, ``drop_duplicates``, ...);
the cells that chose the rows (masks, sort keys) are control.
"""

from __future__ import annotations

import functools
import io
import keyword
import tokenize
import weakref

import numpy as np
import pandas as pd

from .base import (align_rows, as_tracked, attach, attach_inplace, col_control, column_rows, cols_result,
                   control_parts, guard_depth, dims, elementwise, fallback, guard, hashable, is_bool_mask,
                   is_label_list, label_positions, merge_parts, remap, row_positions, column_positions,
                   is_tracked_frame, lineage_of)
from .writes import after_cell_write


def rows_op(op, ignore_arg="ignore_index"):
    """A covered row-subset/reorder method (positions recovered by running it on positional row labels)."""

    def make(base):
        @functools.wraps(base)
        def method(self, *args, **kwargs):
            if guard_depth():
                return base(self, *args, **kwargs)
            with guard:
                inplace = kwargs.pop("inplace", False)
                ignore = kwargs.pop(ignore_arg, False) if ignore_arg else False
                if kwargs.get("axis", 0) not in (0, "index", "rows"):
                    res = base(self, *args, **kwargs)
                    return cols_result(self, res, op)
                if op == "dropna" and isinstance(self, pd.Series) and not (args or kwargs or inplace or ignore):
                    # a Series keeps its non-missing cells: the positions are read off notna, and pandas' own
                    # result is kept (no second run on positional labels)
                    res = base(self)
                    sel = np.flatnonzero(pd.Series.to_numpy(pd.Series.notna(self))).astype(np.int64)
                    if len(sel) == len(res):
                        lin = lineage_of(self)
                        parts = remap(lin, None, sel) + col_control(lin, sel, [lin.nidx], lin.nidx + lin.ncols)
                        return attach(res, parts, op, [self])
                keyed = _level_keys(self, op, args, kwargs)
                if keyed:  # keys name index levels: the shadow keeps them, positions ride in a last level
                    shadow = self.set_axis(_positions_appended(self.index, self.columns), axis=0)
                else:
                    shadow = self.set_axis(pd.RangeIndex(len(self)), axis=0)
                object.__setattr__(shadow, "_wh", None)
                res = base(shadow, *args, **kwargs)
                if keyed and isinstance(res, pd.DataFrame) and isinstance(res.index, pd.MultiIndex):
                    res.index = pd.Index(res.index.get_level_values(-1))
                    if np.array_equal(res.index, np.arange(len(self))):  # pandas returns a copy when unmoved
                        res.index = pd.RangeIndex(len(self))
                if not isinstance(res, pd.DataFrame if isinstance(self, pd.DataFrame) else pd.Series) or (
                        isinstance(res, pd.DataFrame) and not res.columns.equals(self.columns)):
                    return fallback(base(self, *args, **kwargs), op, [self])
                sel = np.asarray(res.index, dtype=np.int64)
                if ignore:
                    # pandas' own empty result keeps its own kind of index (and, from an empty input, its
                    # name; from rows that were all dropped, none): ask it, on the same input
                    res.index = pd.RangeIndex(len(res)) if len(res) else \
                        base(self, *args, **kwargs, **{ignore_arg: True}).index
                elif isinstance(res.index, pd.RangeIndex) and isinstance(self.index, pd.RangeIndex) and \
                        res.index.step > 0:  # pandas kept a range (pandas 2.x, nothing dropped): so do we
                    res.index = self.index[res.index.start:res.index.stop:res.index.step]
                else:
                    res.index = self.index.take(sel)
                lin = lineage_of(self)
                # a fresh RangeIndex (ignore_index) has no lineage: one empty index row
                crow = [-1] + [lin.nidx + j for j in range(lin.ncols)] if ignore else None
                parts = remap(lin, crow, sel)
                ctl = _op_control(self, op, args, kwargs)
                if ctl:
                    parts += col_control(lin, sel, ctl, lin.nidx + lin.ncols)
                if inplace:
                    self._update_inplace(res)
                    attach_inplace(self, parts, op, [lin])
                    return None
                return attach(res, parts, op, [self])

        return method

    return make


def _level_keys(obj, op, args, kwargs):
    """Whether ``op`` on the frame ``obj`` sorts by an index level name (``sort_values(by=...)`` accepts
    both column labels and index level names)."""
    if op != "sort_values" or not isinstance(obj, pd.DataFrame) or kwargs.get("axis", 0) not in (0, "index"):
        return False
    by = kwargs.get("by", args[0] if args else None)
    if by is None:
        return False
    if not isinstance(by, (list, tuple, pd.Index, np.ndarray)):
        by = [by]
    names = {n for n in obj.index.names if n is not None}
    return any(hashable(b) and b in names and b not in obj.columns for b in by)


def _positions_appended(index, columns):
    """``index`` with a last level holding the row positions (named apart from every level and column)."""
    taken = set(index.names) | set(columns)
    name = "__position"
    while name in taken:
        name += "_"
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    return pd.MultiIndex.from_arrays(levels + [np.arange(len(index))], names=list(index.names) + [name])


def _op_control(obj, op, args, kwargs):
    """cmat rows of the columns that choose rows in ``op`` (sort keys, NA checks, duplicate subsets)."""
    if not isinstance(obj, pd.DataFrame):
        return [lineage_of(obj).nidx] if op in ("sort_values", "dropna", "drop_duplicates", "nlargest",
                                                "nsmallest") else []
    if op == "sort_values":
        by = kwargs.get("by", args[0] if args else None)
    elif op in ("nlargest", "nsmallest"):
        by = kwargs.get("columns", args[1] if len(args) > 1 else None)
    elif op in ("dropna", "drop_duplicates"):
        # (drop_duplicates takes its subset first, positionally too; dropna's first argument is the axis)
        by = kwargs.get("subset", args[0] if args and op == "drop_duplicates" else None)
        if by is None:
            by = list(obj.columns)
    else:
        return []
    if by is None:
        return []
    if not isinstance(by, (list, tuple, pd.Index, np.ndarray)):
        by = [by]
    rows = column_rows(obj, list(by))
    return rows or []


class _TrackedIndexer:
    """``.loc`` / ``.iloc`` of a tracked object."""

    __slots__ = ("obj", "kind")

    def __init__(self, obj, kind):
        self.obj = obj
        self.kind = kind

    def _base(self):
        cls = pd.DataFrame if isinstance(self.obj, pd.DataFrame) else pd.Series
        return getattr(cls, self.kind).fget(self.obj)

    def __call__(self, *args, **kwargs):  # pragma: no cover - rarely used API
        return self._base()(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._base(), name)

    def _positions(self, key, labels):
        n = len(labels)
        if self.kind in ("iloc", "iat"):
            return np.arange(n, dtype=np.int64)[key] if not isinstance(key, (pd.Series,)) else \
                np.arange(n, dtype=np.int64)[np.asarray(key)]
        pos = label_positions(key, labels)
        if pos is not None:
            return pos
        s = pd.Series(np.arange(n, dtype=np.int64), index=labels)
        r = s.loc[key]
        return r.to_numpy() if isinstance(r, pd.Series) else r

    def __getitem__(self, key):
        base = self._base()
        if guard_depth():
            return base[key]
        obj = self.obj
        with guard:
            res = base[key]
            if not isinstance(res, (pd.DataFrame, pd.Series)):
                return res
            if callable(key):
                key = key(obj)
            is_frame = isinstance(obj, pd.DataFrame)
            if is_frame and isinstance(key, tuple) and len(key) == 2:
                rk, ck = key
            elif isinstance(key, tuple) and not is_frame and len(key) == 1:
                rk, ck = key[0], slice(None)
            else:
                rk, ck = key, slice(None)
            if callable(rk):
                rk = rk(obj)
            if callable(ck):
                ck = ck(obj)
            try:
                rpos = self._positions(rk, obj.index)
                cpos = self._positions(ck, obj.columns) if is_frame else 0
            except Exception:
                return fallback(res, f"{self.kind}[...]", [obj])
            lin = lineage_of(obj)
            row_scalar = np.ndim(rpos) == 0
            col_scalar = np.ndim(cpos) == 0
            if row_scalar and col_scalar:
                return res
            if row_scalar:  # one row as a Series: output row j is the cell (rpos, cpos[j])
                cpos = np.atleast_1d(cpos)
                parts = []
                k = len(cpos)
                nidx = res.index.nlevels
                for j, c in enumerate(cpos):
                    sel = np.full(k, -1, np.int64)
                    sel[j] = rpos
                    crow = [-1] * nidx + [lin.nidx + int(c)]
                    parts.extend(remap(lin, crow, sel))
                return attach(res, parts, f"{self.kind}[row]", [obj])
            rpos = np.asarray(rpos, np.int64)
            cols = [int(cpos)] if col_scalar else list(np.asarray(cpos, np.int64))
            crow = list(range(lin.nidx)) + [lin.nidx + c for c in cols]
            if res.index.nlevels != lin.nidx:
                crow = [-1] * res.index.nlevels + crow[lin.nidx:]
            if len(rpos) != len(res):
                return fallback(res, f"{self.kind}[...]", [obj])
            parts = remap(lin, crow, rpos)
            if is_tracked_frame(rk) and is_bool_mask(rk):
                sel_mask = align_rows(rk, obj)
                if sel_mask is not False:
                    msel = rpos if sel_mask is None else sel_mask[rpos]
                    cparts, _ = control_parts(rk, msel, len(res), len(crow))
                    parts += cparts
            return attach(res, parts, self.kind, [obj, rk] if is_tracked_frame(rk) else [obj])

    def __setitem__(self, key, value):
        base = self._base()
        if guard_depth():
            base[key] = value
            return
        obj = self.obj
        with guard:
            lin = lineage_of(obj)
            old_cols = obj.columns if isinstance(obj, pd.DataFrame) else None
            base[key] = value
            after_cell_write(obj, lin, key, value, self.kind, old_cols)


def _column(src, lin, res, loc, detail):
    """``res`` is column ``loc`` of ``src`` (same rows): its lineage is built once per lineage of ``src`` and
    shared by every Series taken from that column while one of them lives (a column is read again and again in
    most pipelines); its parts are kept for the next read after that.

    The memo refers to the column's :class:`Lineage` weakly: that one refers back to ``lin`` (its history), and
    two lineages holding each other would be a reference cycle, freed only by the garbage collector (whose
    passes then grow with every frame of a pipeline)."""
    memo = lin.memo
    if memo is None:
        memo = lin.memo = {}
    key = ("column", loc, detail)
    n, nidx = len(res), res.index.nlevels
    hit = memo.get(key)
    if hit is None or hit[0] != n or hit[1] != nidx:
        crow = list(range(lin.nidx)) + [lin.nidx + loc]
        hit = (n, nidx, merge_parts(remap(lin, crow)), None)
    else:
        clin = hit[3]()
        if clin is not None:
            res = as_tracked(res)
            object.__setattr__(res, "_wh", clin)
            return res
    res = attach(res, hit[2], "column", [src], detail=detail, merged=True)
    memo[key] = (n, nidx, hit[2], weakref.ref(lineage_of(res)))
    return res


def _subset_rows(src, res, op, mask=None):
    """``res`` holds rows of ``src`` (all its columns): positions recovered from the index or the mask."""
    lin = lineage_of(src)
    sel = None
    mvals = None
    if mask is not None and is_bool_mask(mask) and len(mask) == len(src):
        if isinstance(mask, pd.Series):
            al = align_rows(mask, src)
            if al is None:
                mvals = pd.Series.to_numpy(mask) if mask.dtype == np.bool_ else \
                    mask.to_numpy(dtype=bool, na_value=False)  # (a nullable boolean mask: NA selects nothing)
        else:
            mvals = np.asarray(mask, dtype=bool)
        if mvals is not None:
            sel = np.flatnonzero(mvals).astype(np.int64)
            if len(sel) != len(res):
                sel = None
    if sel is None:
        sel = row_positions(src, res)
    if sel is None:
        return fallback(res, op, [src])
    crow = None
    if isinstance(res, pd.DataFrame) and not res.columns.equals(src.columns):
        return fallback(res, op, [src])
    cache = {}
    parts = remap(lin, crow, sel, cache)
    inputs = [src]
    if mask is not None and is_tracked_frame(mask):
        al = align_rows(mask, src)
        if al is not False:
            msel = sel if al is None else al[sel]
            n, nidx, ncols, _ = dims(res)
            cparts, _ = control_parts(mask, msel, len(res), nidx + ncols, cache if al is None else None)
            parts += cparts
            inputs.append(mask)
    return attach(res, parts, op, inputs)


def _names_in(expr):
    """Identifiers and backtick-quoted names in a query expression."""
    out = []
    for part in expr.split("`")[1::2]:
        out.append(part)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(expr.replace("`", " ")).readline):
            if tok.type == tokenize.NAME and not keyword.iskeyword(tok.string):
                out.append(tok.string)
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def _positional(src, res, sel, op):
    lin = lineage_of(src)
    if len(sel) != len(res):
        return fallback(res, op, [src])
    return attach(res, remap(lin, sel=sel), op, [src])


def tracked_sort_index(self, *args, **kwargs):
    base = pd.DataFrame.sort_index if isinstance(self, pd.DataFrame) else pd.Series.sort_index
    if guard_depth():
        return base(self, *args, **kwargs)
    with guard:
        if kwargs.get("inplace") or kwargs.get("axis", 0) not in (0, "index"):
            res = base(self, *args, **kwargs)
            if res is not None and isinstance(self, pd.DataFrame) and kwargs.get("axis") in (1, "columns"):
                return cols_result(self, res, "sort_index")  # the columns reordered: matched by label
            return res if res is None else fallback(res, "sort_index", [self])
        ignore = kwargs.pop("ignore_index", False)
        res = _subset_rows(self, base(self, *args, **kwargs), "sort_index")
        if ignore:
            res.index = pd.RangeIndex(len(res))
            lin = lineage_of(res)
            res = attach(res, remap(lin, [-1] + [lin.nidx + j for j in range(lin.ncols)]), "sort_index", [res])
        return res


class Selection:

    @property
    def loc(self):
        return super().loc if guard_depth() else _TrackedIndexer(self, "loc")

    @property
    def iloc(self):
        return super().iloc if guard_depth() else _TrackedIndexer(self, "iloc")

    @property
    def at(self):
        return super().at if guard_depth() else _TrackedIndexer(self, "at")

    @property
    def iat(self):
        return super().iat if guard_depth() else _TrackedIndexer(self, "iat")

    def get(self, key, default=None):
        """``obj.get(key, default)``: ``obj[key]`` (tracked) when the key is there, else ``default``."""
        if guard_depth():
            return super().get(key, default)
        try:
            return self[key]
        except (KeyError, ValueError, IndexError):
            return default


class SeriesSelection:

    def __getitem__(self, key):
        if guard_depth():
            return super().__getitem__(key)
        with guard:
            res = super().__getitem__(key)
            if not isinstance(res, pd.Series):
                return res
            return _subset_rows(self, res, "getitem", key)


class FrameSelection:

    def items(self):
        """``(label, column)`` pairs; each column is ``self[label]`` (tracked) when the labels are unique."""
        if guard_depth() or not self.columns.is_unique:
            yield from super().items()
            return
        for c in self.columns:
            yield c, self[c]

    # -- selection -------------------------------------------------------------------------------------------
    def __getitem__(self, key):
        if guard_depth():
            return super().__getitem__(key)
        with guard:
            if callable(key):
                key = key(self)
            res = super().__getitem__(key)
            if not isinstance(res, (pd.DataFrame, pd.Series)):
                return res
            lin = lineage_of(self)
            cols = self.columns
            if isinstance(res, pd.Series) and len(res) == len(self) and hashable(key) and key in cols:
                loc = cols.get_loc(key)
                if isinstance(loc, (int, np.integer)):
                    return _column(self, lin, res, int(loc), str(key))
            if isinstance(res, pd.DataFrame) and len(res) == len(self) and is_label_list(key):
                if cols.is_unique:
                    pos = column_positions(cols, res.columns)
                    if (pos >= 0).all():
                        crow = list(range(lin.nidx)) + [lin.nidx + int(p) for p in pos]
                        return attach(res, remap(lin, crow), "columns", [self])
            if isinstance(res, pd.DataFrame) and res.columns.equals(cols):
                mask = key if (is_bool_mask(key) or
                               (isinstance(key, list) and key and all(isinstance(k, (bool, np.bool_)) for k in key))) else None
                if isinstance(key, list) and mask is not None:
                    mask = np.asarray(key, bool)
                if isinstance(key, slice) or mask is not None:
                    return _subset_rows(self, res, "filter" if mask is not None else "slice", mask)
            if isinstance(key, pd.DataFrame) and is_tracked_frame(key) and res.shape == self.shape and \
                    key.index.equals(self.index) and key.columns.equals(cols) and cols.is_unique:
                return elementwise(res, "where", [self, key])  # df[cond] is df.where(cond)
            return fallback(res, "DataFrame[...]", [self])

    def head(self, n=5):
        if guard_depth():
            return super().head(n)
        with guard:
            return _positional(self, super().head(n), np.arange(len(self), dtype=np.int64)[:n], "head")

    def tail(self, n=5):
        if guard_depth():
            return super().tail(n)
        with guard:
            idx = np.arange(len(self), dtype=np.int64)
            return _positional(self, super().tail(n), idx[-n:] if n else idx[:0], "tail")

    def query(self, expr, **kwargs):
        # one more frame between the caller and pandas' eval than in pandas: @locals are looked up one up
        kwargs["level"] = kwargs.pop("level", 0) + 1
        if guard_depth():
            return super().query(expr, **kwargs)
        with guard:
            inplace = kwargs.pop("inplace", False)
            mask = pd.DataFrame.eval(self, expr, **kwargs)
            if not isinstance(mask, pd.Series) or mask.dtype != bool:
                res = super().query(expr, **kwargs)
                return fallback(res, "query", [self])
            mvals = mask.to_numpy(dtype=bool)
            sel = np.flatnonzero(mvals).astype(np.int64)
            res = pd.DataFrame.take(self, sel)
            lin = lineage_of(self)
            parts = remap(lin, sel=sel)
            used = [c for c in _names_in(expr) if c in self.columns or c in self.index.names]
            rows = column_rows(self, used) or []
            parts += col_control(lin, sel, rows, lin.nidx + lin.ncols)
            if inplace:
                self._update_inplace(res)
                attach_inplace(self, parts, "query", [lin])
                return None
            return attach(res, parts, "query", [self], detail=expr)

    def drop(self, labels=None, **kwargs):
        if guard_depth():
            return super().drop(labels, **kwargs)
        with guard:
            lin = lineage_of(self)
            inplace = kwargs.pop("inplace", False)
            res = super().drop(labels, **kwargs)
            if not self.columns.is_unique:
                return fallback(res, "drop", [self])
            cpos = column_positions(self.columns, res.columns)
            if len(res) == len(self) and res.index.equals(self.index):
                sel = None
            else:
                sel = row_positions(self, res)
                if sel is None:
                    return fallback(res, "drop", [self])
            crow = list(range(lin.nidx)) + [lin.nidx + int(p) for p in cpos]
            parts = remap(lin, crow, sel)
            if inplace:
                self._update_inplace(res)
                attach_inplace(self, parts, "drop", [lin])
                return None
            return attach(res, parts, "drop", [self])
