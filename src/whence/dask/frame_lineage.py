"""The lineage of lazy dask frames: sources, origins and the cell look-ups of their queries.

A dask frame tracked by whence carries hidden columns (named with :data:`HIDDEN_PREFIX`) that hold, for every
row, the position of the source row it comes from (file number shifted by :data:`ROW_SHIFT`, plus the row in the
file) or the keys of its group.  :class:`FrameLineage` says which hidden columns (origins: a
:class:`DaskSource` or a :class:`GroupOrigin`) each visible column derives from; :func:`resolve_cells` and
:func:`cell_hits` turn hidden values into source cells for :mod:`whence.dask.dataframe`'s queries.
"""

from __future__ import annotations

import glob as _glob
import itertools
import os
import warnings

import numpy as np
import pandas as pd

from ..errors import LineageQueryError, PartialLineageWarning

__all__ = ["HIDDEN_PREFIX", "ROW_SHIFT", "ROW_MASK", "DaskSource", "GroupOrigin", "FrameLineage", "fresh_column",
           "warn_partial", "file_stat", "union_deps", "expand_paths", "wants_dask", "default_source_name",
           "read_partition", "all_sources", "cells_out", "key_frame", "group_members", "keyed_rows",
           "resolve_cells", "cell_hits"]

HIDDEN_PREFIX = "__wh_"
_ids = itertools.count(1)
ROW_SHIFT = 32
ROW_MASK = (1 << ROW_SHIFT) - 1


def fresh_column(kind):
    return f"{HIDDEN_PREFIX}{kind}{next(_ids)}"


def warn_partial(msg):
    warnings.warn(msg, PartialLineageWarning, stacklevel=3)



class DaskSource:
    """A source table read from several files, one dask partition per file.

    Attributes
    ----------
    name : str
        The source name in query answers.
    paths : list of str
        The files, in partition order (``None`` entries for frames from memory).
    columns : list
        Column labels of the source, in file order.
    """

    def __init__(self, name, paths, columns, line_opts=None, counts=None):
        self.name = name
        self.paths = list(paths)
        self.columns = list(columns)
        self._line_opts = line_opts
        self._stat = [file_stat(p) if p is not None else None for p in self.paths]
        self._lines = [None] * len(self.paths)
        self._counts = None if counts is None else np.asarray(counts, np.int64)
        self._count_fn = None
        self.line_note = None if line_opts is not None else "read_csv options that move rows off their lines"

    def __repr__(self):
        return f"<DaskSource {self.name!r}: {len(self.paths)} files x {len(self.columns)} columns>"

    def col_index(self, names):
        return [self.columns.index(n) for n in names]

    def lines(self, f):
        """1-based line of every row of file ``f`` (int64), or None when it cannot be known."""
        if self._lines[f] is None and self._line_opts is not None and self.paths[f] is not None:
            from ..tabular.source_tables import csv_record_lines
            p = self.paths[f]
            if file_stat(p) != self._stat[f]:
                self.line_note = f"{p} changed after it was read"
                return None
            self._lines[f] = csv_record_lines(p, self._line_opts)
        return self._lines[f]

    def counts(self):
        """Rows of every file (computed on first use: from the line scan, else by reading the files)."""
        if self._counts is None:
            lines = [self.lines(f) for f in range(len(self.paths))] if self._line_opts is not None else None
            if lines is not None and all(x is not None for x in lines):
                self._counts = np.array([x.size for x in lines], np.int64)
            else:
                self._counts = np.asarray(self._count_fn(), np.int64)
        return self._counts

    def offsets(self):
        c = self.counts()
        out = np.zeros(c.size + 1, np.int64)
        np.cumsum(c, out=out[1:])
        return out

    def to_global(self, rid):
        rid = np.asarray(rid, np.int64)
        return self.offsets()[rid >> ROW_SHIFT] + (rid & ROW_MASK)

    def to_rid(self, rows):
        rows = np.asarray(rows, np.int64)
        off = self.offsets()
        n = int(off[-1])
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise LineageQueryError(f"source rows out of range for {n} rows of {self.name!r}")
        f = np.searchsorted(off, rows, side="right") - 1
        return (f << ROW_SHIFT) | (rows - off[f])


def file_stat(path):
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class GroupOrigin:
    """The rows of a group-by output (or of an operation taken as all-to-all): rows of ``parent`` whose
    ``keys`` equal the output row's hidden key values (every row of ``parent`` when there are no keys)."""

    __slots__ = ("parent", "keys", "dropna")

    def __init__(self, parent, keys, dropna=True):
        self.parent, self.keys, self.dropna = parent, tuple(keys), dropna


class FrameLineage:
    """Lineage of a dask frame: origins (hidden columns), column lineage, control lineage, PARTIAL reasons.

    ``origins``: oid -> (DaskSource or GroupOrigin, hidden column names).  ``cols``: visible column ->
    {oid: frozenset of origin columns}.  ``ctrl``: {oid: frozenset}, control cells of every cell of the row.
    """

    __slots__ = ("origins", "cols", "ctrl", "reasons", "token", "index")

    def __init__(self, origins, cols, ctrl, reasons=(), token=None, index=None):
        self.origins = dict(origins)
        self.cols = {c: dict(v) for c, v in cols.items()}
        self.ctrl = dict(ctrl)
        self.reasons = tuple(dict.fromkeys(reasons))
        self.token = token if token is not None else next(_ids)
        self.index = index  # lineage of the index levels ({name: dep}) where they are cells (group keys)

    def hidden(self):
        return [h for _, hs in self.origins.values() for h in hs]

    def copy(self, **kw):
        new = FrameLineage(self.origins, self.cols, self.ctrl, self.reasons, self.token, self.index)
        for k, v in kw.items():
            setattr(new, k, v)
        return new


def union_deps(*deps):
    out = {}
    for d in deps:
        for k, v in d.items():
            out[k] = out.get(k, frozenset()) | v
    return out


def expand_paths(paths):
    if isinstance(paths, (str, os.PathLike)):
        p = os.fspath(paths)
        if os.path.isfile(p):
            return [p]
        found = sorted(_glob.glob(p))
        if not found:
            raise FileNotFoundError(f"no file matches {p!r}")
        return found
    out = [os.fspath(p) for p in paths]
    if not out:
        raise ValueError("read_csv needs at least one file")
    return out


def wants_dask(path):
    """The rule of ``whence.read_csv``: a list or tuple of paths, or a glob pattern that names no file,
    reads with dask; anything else (one file, a buffer, a URL) with pandas."""
    if isinstance(path, (list, tuple)):
        return True
    if isinstance(path, (str, os.PathLike)):
        p = os.fspath(path)
        return any(ch in p for ch in "*?[") and not os.path.exists(p)
    return False


def default_source_name(paths):
    base = os.path.basename(paths[0])
    stem = base.split(".")[0].rstrip("-_0123456789")
    return stem or "csv"


def read_partition(arg, kwargs, hid):
    f, path = arg
    pdf = pd.read_csv(path, **kwargs)
    pdf[hid] = (np.int64(f) << ROW_SHIFT) + np.arange(len(pdf), dtype=np.int64)
    return pdf


def all_sources(frame, acc=None):
    acc = [] if acc is None else acc
    for o, _ in frame._lin.origins.values():
        if isinstance(o, DaskSource):
            if o not in acc:
                acc.append(o)
        else:
            all_sources(o.parent, acc)
    return acc


def cells_out(acc):
    out = {}
    for src, pairs in acc.items():
        arr = np.unique(np.concatenate(pairs, axis=0), axis=0) if pairs else np.zeros((0, 2), np.int64)
        out[src] = arr.astype(np.int64).reshape(-1, 2)
    return out


def key_frame(H, hcols, keys):
    K = H[list(hcols)].dropna().drop_duplicates()
    K.columns = list(keys)
    return K


def group_members(group, H, hcols):
    """Hidden columns (and keys) of the rows of ``group.parent`` in the groups of the rows ``H``."""
    P = group.parent
    if not group.keys:
        return P._hidden_all() if len(H) else P._hidden_all().iloc[:0]
    K = key_frame(H, hcols, group.keys)
    allrows = keyed_rows(P, group.keys)
    for k in group.keys:
        try:
            K[k] = K[k].astype(allrows[k].dtype)
        except (TypeError, ValueError):
            pass
    m = allrows.merge(K, on=list(group.keys), how="inner")
    return m[P._lin.hidden()]


def keyed_rows(P, keys):
    """Key and hidden columns of every row of ``P``, in the order of ``P.compute()`` (the whole graph is
    computed: a projection may order rows otherwise)."""
    ck = ("keys", tuple(keys))
    if ck not in P._cache:
        full = P._d.compute().reset_index(drop=True)
        P._cache["all"] = full[P._lin.hidden()]
        P._cache[ck] = full[list(keys) + P._lin.hidden()]
    return P._cache[ck]


def resolve_cells(F, H, need, control, acc):
    """Add to ``acc`` ({DaskSource: [cells]}) the source cells of the origin columns ``need`` of rows ``H``."""
    if control:
        need = union_deps(need, F._lin.ctrl)
    for oid, names in need.items():
        origin, hcols = F._lin.origins[oid]
        if not names or not len(H):
            continue
        if isinstance(origin, DaskSource):
            rid = H[hcols[0]].dropna().to_numpy()
            if not rid.size:
                continue
            rows = np.unique(origin.to_global(rid.astype(np.int64)))
            cols = np.array(sorted(origin.col_index(names)), np.int64)
            cells = np.stack([np.repeat(rows, cols.size), np.tile(cols, rows.size)], axis=1)
            acc.setdefault(origin, []).append(cells)
        else:
            P = origin.parent
            M = group_members(origin, H, hcols)
            sub = union_deps(*[P._lin.cols[c] for c in names if c in P._lin.cols])
            resolve_cells(P, M, sub, control, acc)


def cell_hits(F, target, control, memo):
    """Boolean (rows of F, visible columns of F): the cells deriving from the target source cells."""
    key = (id(F), control)
    if key in memo:
        return memo[key]
    H = F._hidden_all()
    n = len(H)
    cache = {}

    def origin_hit(oid, names):
        k = (oid, names)
        if k in cache:
            return cache[k]
        origin, hcols = F._lin.origins[oid]
        src, rows, scols = target
        if isinstance(origin, DaskSource):
            if origin is not src or not (names & scols):
                res = np.zeros(n, bool)
            else:
                rid = H[hcols[0]].to_numpy(dtype=np.float64)
                ok = ~np.isnan(rid)
                res = np.zeros(n, bool)
                res[ok] = np.isin(origin.to_global(rid[ok].astype(np.int64)), rows)
        else:
            P = origin.parent
            PK = keyed_rows(P, origin.keys) if origin.keys else None  # before P's hits: the same rows
            ph = cell_hits(P, target, control, memo)
            pcols = list(P._lin.cols)
            sel = [pcols.index(c) for c in names if c in P._lin.cols]
            prow = ph[:, sel].any(1) if sel else np.zeros(ph.shape[0], bool)
            if not origin.keys:
                res = np.full(n, bool(prow.any()))
            else:
                hitkeys = PK.loc[prow, list(origin.keys)].dropna().drop_duplicates()
                mine = H[list(hcols)].copy()
                mine.columns = list(origin.keys)
                mine["__pos"] = np.arange(n)
                for kk in origin.keys:
                    try:
                        hitkeys[kk] = hitkeys[kk].astype(mine[kk].dtype)
                    except (TypeError, ValueError):
                        pass
                m = mine.dropna(subset=list(origin.keys)).merge(hitkeys, on=list(origin.keys), how="inner")
                res = np.zeros(n, bool)
                res[m["__pos"].to_numpy()] = True
        cache[k] = res
        return res

    cols = list(F._lin.cols)
    out = np.zeros((n, len(cols)), bool)
    ctrl_hit = np.zeros(n, bool)
    if control:
        for oid, names in F._lin.ctrl.items():
            ctrl_hit |= origin_hit(oid, names)
    for j, c in enumerate(cols):
        h = ctrl_hit.copy()
        for oid, names in F._lin.cols[c].items():
            h |= origin_hit(oid, names)
        out[:, j] = h
    memo[key] = out
    return out
