"""Row and cell lineage through ``dask.dataframe``: many CSV files, lazy pipelines, queries at the end.

:func:`read_csv` reads a glob pattern or a list of CSV files as one partition per file and gives a
:class:`DaskTrackedFrame`.  Lineage is carried *inside the dask graph* and evaluated only when asked:

- every source row gets a hidden int64 row id (``file index << 32 | row in the file``), a column of the
  dask frame that filters, merges and shuffles move with the row; it is never shown (``columns``,
  ``compute``, ``head``, ``to_csv`` and ``repr`` drop it);
- a group-by output row keeps hidden copies of its key values; a query finds the group's rows in the
  group-by's input by those keys, then goes on from there;
- the column lineage (output column -> input columns, per input) is kept beside the frame in Python.

A query (:meth:`DaskTrackedFrame.backward`, :meth:`DaskTrackedFrame.forward`, ``whence.trace_to_file``;
``whence.backward``/``forward`` too, after computing the frame's row count) evaluates the frame's graph
partition by partition and keeps its hidden columns: a query for row ``i`` computes partitions one at a time
until it reaches row ``i``, and ``compute()`` keeps the hidden columns of the pass it makes.  Row ``i`` is row ``i`` of
``frame.compute()``: merges run with the deterministic task shuffle so that positions do not move between
computations.

The semantics are those of the pandas frames (``docs/semantics.md``): a cell derives from the source cells
it was copied or computed from; ``control=True`` adds the cells that chose the row (filter masks, join
keys, group keys).  Source rows are numbered as in the concatenation of the files, in the order given
(sorted, for a glob), so that answers equal those of ``whence.read_csv`` on the concatenated file.  An
operation whence does not cover still runs, warns :class:`~whence.errors.PartialLineageWarning` and marks
the result PARTIAL: each of its cells derives from every cell of its input (a superset, never a subset).

>>> import os, tempfile, whence as wh
>>> d = tempfile.mkdtemp()
>>> for i, body in enumerate(["k,v\\n1,5\\n2,6\\n", "k,v\\n1,7\\n"]):
...     with open(os.path.join(d, f"part{i}.csv"), "w") as f:
...         _ = f.write(body)
>>> t = wh.read_csv(os.path.join(d, "part*.csv"), name="t")
>>> agg = t[t["v"] > 5].groupby("k").agg(total=("v", "sum"))
>>> agg.compute()["total"].to_dict()
{1: 7, 2: 6}
>>> [(r.row, os.path.basename(r.path), r.line, r.columns) for r in wh.trace_to_file(agg, row=0)]
[(2, 'part1.csv', 2, ('v',))]
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..errors import LineageQueryError, SourceNameError
from .frame_lineage import (HIDDEN_PREFIX, ROW_SHIFT, DaskSource, FrameLineage, all_sources, cell_hits, cells_out,
                            default_source_name, expand_paths, fresh_column, read_partition, resolve_cells,
                            union_deps)
from .frame_lineage import wants_dask  # noqa: F401  (re-exported: the rule of whence.read_csv)
from .frame_map import FrameRowsMap, graph_source_node
from .frame_ops import DaskTrackedGroupBy, register_classes
from .frame_ops import fallback as _fallback, merge as _merge

__all__ = ["read_csv", "from_pandas", "DaskTrackedFrame", "DaskTrackedSeries", "DaskTrackedGroupBy",
           "DaskSource", "is_dask_tracked"]

def is_dask_tracked(x):
    """True for a :class:`DaskTrackedFrame` or :class:`DaskTrackedSeries`."""
    return isinstance(x, (DaskTrackedFrame, DaskTrackedSeries))


def read_csv(paths, *, name=None, **kwargs):
    """Read many CSV files into one lazily evaluated tracked dask frame (one partition per file).

    Parameters
    ----------
    paths : str or list of str
        A glob pattern (files taken in sorted order) or a list of paths (in the order given).
    name : str, optional
        The source name in query answers; by default the file stem without trailing digits.
    **kwargs
        Passed to :func:`pandas.read_csv` for every file.  ``blocksize``, ``chunksize``, ``iterator`` and
        ``index_col`` are not supported (split big inputs into several files).  Pass ``dtype=`` when files
        may infer different types (dask takes the types of the first file).

    Returns
    -------
    DaskTrackedFrame

    Examples
    --------
    >>> import os, tempfile, whence.dask as whd
    >>> d = tempfile.mkdtemp()
    >>> for i in range(2):
    ...     with open(os.path.join(d, f"p{i}.csv"), "w") as f:
    ...         _ = f.write(f"x\\n{i}\\n{i + 10}\\n")
    >>> t = whd.read_csv(os.path.join(d, "p*.csv"), name="p")
    >>> t.npartitions, t.compute()["x"].tolist()
    (2, [0, 10, 1, 11])
    >>> t.backward(3)["p"].tolist()
    [[3, 0]]
    """
    import dask.dataframe as dd
    from ..tabular.source_tables import csv_line_options
    for bad in ("blocksize", "chunksize", "iterator", "index_col"):
        if kwargs.get(bad) not in (None, False):
            raise ValueError(f"whence.dask.read_csv reads one partition per file; {bad}= is not supported")
        kwargs.pop(bad, None)
    files = [os.path.abspath(p) for p in expand_paths(paths)]
    if name is None:
        name = default_source_name(files)
    if not isinstance(name, str) or not name:
        raise SourceNameError(f"a source name must be a non-empty string, got {name!r}")
    meta = pd.read_csv(files[0], nrows=100, **{k: v for k, v in kwargs.items() if k != "nrows"}).iloc[:0]
    hid = fresh_column("s")
    meta[hid] = np.zeros(0, np.int64)
    ddf = dd.from_map(read_partition, list(enumerate(files)), args=(kwargs, hid), meta=meta,
                      label="whence-read-csv", enforce_metadata=False)
    src = DaskSource(name, files, [c for c in meta.columns if c != hid], csv_line_options(kwargs))
    src._count_fn = lambda: ddf[[hid]].map_partitions(len).compute().tolist()
    return _source_frame(ddf, src, hid)


def from_pandas(df, npartitions, *, name):
    """Start tracking an in-memory pandas frame split into ``npartitions`` dask partitions (rows by
    position, no file).

    Examples
    --------
    >>> import pandas as pd, whence.dask as whd
    >>> t = whd.from_pandas(pd.DataFrame({"a": [1, 2, 3]}), 2, name="m")
    >>> (t["a"] * 2).compute().tolist(), t[t["a"] > 1].backward(1)["m"].tolist()
    ([2, 4, 6], [[2, 0]])
    """
    import dask.dataframe as dd
    df = pd.DataFrame(df).reset_index(drop=True)
    n = len(df)
    bounds = np.linspace(0, n, max(1, int(npartitions)) + 1).astype(int)
    hid = fresh_column("s")
    parts = []
    for f, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        p = df.iloc[a:b].reset_index(drop=True)
        p[hid] = (np.int64(f) << ROW_SHIFT) + np.arange(b - a, dtype=np.int64)
        parts.append(p)
    ddf = dd.from_map(lambda p: p, parts, meta=parts[0].iloc[:0], label="whence-from-pandas")
    src = DaskSource(name, [None] * len(parts), list(df.columns), None, counts=np.diff(bounds))
    src.line_note = "a frame tracked from memory has no file"
    return _source_frame(ddf, src, hid)


def _source_frame(ddf, src, hid):
    cols = {c: {hid: frozenset([c])} for c in src.columns}
    return DaskTrackedFrame(ddf, FrameLineage({hid: (src, (hid,))}, cols, {}))


# --- frames ---------------------------------------------------------------------------------------------------

class _Base:
    def _visible(self):
        raise NotImplementedError

    def compute(self, **kwargs):
        """The values as a plain pandas object (hidden lineage columns dropped)."""
        return self._visible().compute(**kwargs)

    def persist(self, **kwargs):
        new = self._wrap_same(self._d.persist(**kwargs))
        return new

    def __len__(self):
        return len(self._d)

    def __repr__(self):
        return repr(self._visible())

    @property
    def npartitions(self):
        return self._d.npartitions

    @property
    def lineage_complete(self):
        return not self._lin.reasons

    @property
    def dask(self):
        """The visible dask collection (no hidden columns)."""
        return self._visible()


class DaskTrackedFrame(_Base):
    """A dask DataFrame whose row and column lineage is carried lazily (see the module docstring).

    Supported with exact lineage: column selection, ``df[mask]`` and ``query``-free boolean filters,
    ``assign`` and ``df[c] = ...``, ``rename``, ``drop``, ``dropna``, ``fillna``/``astype``/``round`` and
    ``abs``, ``merge`` (every ``how``, ``on`` or ``left_on``/``right_on``), ``groupby(...).agg`` (named,
    dict and string aggregations), ``groupby(...).sum/mean/count/min/max/size``, ``to_dask_array``.
    Any other dask method runs on the visible columns and is marked PARTIAL with a warning.
    """

    def __init__(self, ddf, lin):
        object.__setattr__(self, "_d", ddf)
        object.__setattr__(self, "_lin", lin)
        object.__setattr__(self, "_cache", {})

    # -- plumbing
    @property
    def columns(self):
        return pd.Index(list(self._lin.cols))

    @property
    def dtypes(self):
        return self._visible().dtypes

    def _visible(self):
        return self._d[list(self._lin.cols)]

    def _wrap_same(self, ddf):
        return DaskTrackedFrame(ddf, self._lin)

    def _snapshot(self):
        return DaskTrackedFrame(self._d, self._lin.copy())

    def compute(self, **kwargs):
        """The values as a plain pandas DataFrame (hidden lineage columns dropped).

        The hidden columns are computed in the same pass (the very same graph, so that row positions of
        later queries are those of this result) and kept for queries on this frame.
        """
        full = self._d.compute(**kwargs)
        self._cache["all"] = full[self._lin.hidden()].reset_index(drop=True)
        return full[list(self._lin.cols)]

    def head(self, n=5, **kwargs):
        return self._visible().head(n, **kwargs)

    def to_csv(self, *args, **kwargs):
        return self._visible().to_csv(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._lin.cols:
            return self[name]
        attr = getattr(self._visible(), name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            return _fallback(self, name, attr(*args, **kwargs))

        return call

    def __getitem__(self, key):
        if isinstance(key, DaskTrackedSeries):
            return self._filter(key)
        if isinstance(key, (list, tuple, pd.Index)):
            key = list(key)
            missing = [k for k in key if k not in self._lin.cols]
            if missing:
                raise KeyError(missing)
            lin = self._lin.copy(cols={k: self._lin.cols[k] for k in key})
            return DaskTrackedFrame(self._d[key + lin.hidden()], lin)
        if key in self._lin.cols:
            return DaskTrackedSeries(self._d[key], self, self._lin.cols[key])
        raise KeyError(key)

    def __setitem__(self, key, value):
        if not isinstance(key, str):
            raise TypeError("a tracked dask frame sets one column at a time: df['name'] = value")
        new = self.assign(**{key: value})
        object.__setattr__(self, "_d", new._d)
        object.__setattr__(self, "_lin", new._lin)
        object.__setattr__(self, "_cache", {})

    def __setattr__(self, name, value):
        raise AttributeError("set columns with df[name] = value")

    def _check_aligned(self, s, op):
        """Whether series ``s`` holds the rows of this frame, in its order (it was computed from them)."""
        return s._lin_token == self._lin.token

    def _filter(self, mask):
        if not self._check_aligned(mask, "filter"):
            return _fallback(self, "a boolean filter with a mask of other rows", self._visible()[mask._s])
        ctrl = union_deps(self._lin.ctrl, mask._dep, mask._ctrl)
        lin = self._lin.copy(ctrl=ctrl, token=None, reasons=self._lin.reasons + mask._reasons)
        return DaskTrackedFrame(self._d[mask._s], lin)

    def assign(self, **kwargs):
        """``DataFrame.assign``: a new column derives from the same-row cells of the columns it is computed
        from (a scalar contributes nothing)."""
        d, cols = self._d, dict(self._lin.cols)
        reasons = self._lin.reasons
        extra = {}
        for k, v in kwargs.items():
            if callable(v):
                return _fallback(self, "assign with a callable", self._visible().assign(**{k: v}))
            if isinstance(v, DaskTrackedSeries):
                if not self._check_aligned(v, "assign"):
                    return _fallback(self, "assign of a series of other rows", self._visible().assign(**{k: v._s}))
                extra[k] = v._s
                cols[k] = dict(v._dep)
                reasons += v._reasons
            elif isinstance(v, (pd.Series, np.ndarray)) or hasattr(v, "dask"):
                return _fallback(self, "assign of an untracked series", self._visible().assign(**{k: v}))
            else:
                extra[k] = v
                cols[k] = {}
        d = d.assign(**extra)
        order = list(self._lin.cols) + [k for k in kwargs if k not in self._lin.cols]
        d = d[order + self._lin.hidden()]
        return DaskTrackedFrame(d, self._lin.copy(cols={k: cols[k] for k in order}, reasons=reasons))

    def rename(self, columns=None, **kwargs):
        if columns is None or kwargs or callable(columns):
            return _fallback(self, "rename", self._visible().rename(columns=columns, **kwargs))
        new = [columns.get(c, c) for c in self._lin.cols]
        if len(set(new)) != len(new):
            return _fallback(self, "rename to duplicate labels", self._visible().rename(columns=columns))
        d = self._d.rename(columns={k: v for k, v in columns.items() if k in self._lin.cols})
        cols = {columns.get(c, c): v for c, v in self._lin.cols.items()}
        return DaskTrackedFrame(d, self._lin.copy(cols=cols))

    def drop(self, columns=None, **kwargs):
        if columns is None or kwargs:
            return _fallback(self, "drop", self._visible().drop(columns=columns, **kwargs))
        columns = [columns] if isinstance(columns, str) else list(columns)
        return self[[c for c in self._lin.cols if c not in columns]]

    def dropna(self, how="any", subset=None):
        """Rows without missing values; control: the checked cells of the row."""
        subset = list(self._lin.cols) if subset is None else ([subset] if isinstance(subset, str) else list(subset))
        d = self._d.dropna(how=how, subset=subset)
        ctrl = union_deps(self._lin.ctrl, *[self._lin.cols[c] for c in subset])
        return DaskTrackedFrame(d, self._lin.copy(ctrl=ctrl, token=None))

    def sort_values(self, by, ascending=True, **kwargs):
        """Rows reordered; a cell keeps its lineage; control: the sort-key cells of the row."""
        keys = [by] if isinstance(by, str) else list(by)
        if kwargs or any(k not in self._lin.cols for k in keys):
            return _fallback(self, "sort_values", self._visible().sort_values(by, ascending=ascending, **kwargs))
        d = self._d.sort_values(by, ascending=ascending)
        ctrl = union_deps(self._lin.ctrl, *[self._lin.cols[c] for c in keys])
        return DaskTrackedFrame(d, self._lin.copy(ctrl=ctrl, token=None, index=None))

    def reset_index(self, drop=False):
        """``reset_index``: the key levels of a group-by result become columns deriving from the key cells
        of the group's rows; other index levels (dask's per-partition positions) only with ``drop=True``."""
        if drop:
            return DaskTrackedFrame(self._d.reset_index(drop=True), self._lin.copy(index=None))
        idx = self._lin.index
        if idx is None:
            return _fallback(self, "reset_index of a positional index", self._visible().reset_index())
        # per partition (as dask's own reset_index), opaque to dask's filter pushdown, which mis-aligns two
        # chained filters after a reset_index of a group-by result
        d = self._d.map_partitions(pd.DataFrame.reset_index, meta=self._d._meta.reset_index())
        vis = [c for c in d.columns if not str(c).startswith(HIDDEN_PREFIX)]
        cols = dict(idx)
        cols.update(self._lin.cols)
        if sorted(map(str, vis)) != sorted(map(str, cols)):
            return _fallback(self, "reset_index (labels whence cannot follow)", d[vis])
        return DaskTrackedFrame(d, self._lin.copy(cols={c: cols[c] for c in vis}, index=None))

    def _same_cells(self, op, *args, **kwargs):
        if any(is_dask_tracked(a) for a in list(args) + list(kwargs.values())):
            return _fallback(self, f"{op} with a tracked argument", getattr(self._visible(), op)(*args, **kwargs))
        vis = getattr(self._visible(), op)(*args, **kwargs)
        d = vis.assign(**{h: self._d[h] for h in self._lin.hidden()}) if self._lin.hidden() else vis
        return DaskTrackedFrame(d, self._lin.copy())

    def fillna(self, value=None, **kwargs):
        if not np.isscalar(value) or kwargs:
            return _fallback(self, "fillna", self._visible().fillna(value, **kwargs))
        return self._same_cells("fillna", value)

    def astype(self, dtype):
        return self._same_cells("astype", dtype)

    def round(self, decimals=0):
        return self._same_cells("round", decimals)

    def abs(self):
        return self._same_cells("abs")

    def merge(self, right, how="inner", on=None, left_on=None, right_on=None, suffixes=("_x", "_y"), **kwargs):
        """``DataFrame.merge``: a column cell derives from the matched row of its side (both sides for a
        shared ``on`` key); control: the join-key cells of both matched rows."""
        return _merge(self, right, how, on, left_on, right_on, suffixes, kwargs)

    def groupby(self, by, **kwargs):
        return DaskTrackedGroupBy(self, by, kwargs)

    def to_dask_array(self, lengths=True):
        """The values as a :class:`~whence.TrackedArray` over a dask array, cell ``(i, j)`` deriving from the
        cells of row ``i``, column ``j`` of this frame (``whence.backward``/``forward`` reach the source
        files' rows; numpy operations on it are tracked lazily as for any tracked dask array).

        Chunk sizes are computed now (dask's ``lengths=True``: one pass over the frame); values stay lazy.

        Examples
        --------
        >>> import pandas as pd, whence as wh, whence.dask as whd
        >>> wh.reset()
        >>> t = whd.from_pandas(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]}), 2, name="fr")
        >>> X = t[t["a"] > 1].to_dask_array()
        >>> X.lazy, X.shape, X.compute().tolist()
        (True, (2, 2), [[2.0, 5.0], [3.0, 6.0]])
        >>> wh.backward(X.sum(axis=1), (1,))["fr"].tolist()
        [[2, 0], [2, 1]]
        """
        from ..tracked import derive
        if lengths is not True:
            raise ValueError("to_dask_array computes its chunk sizes (lengths=True)")
        vis = list(self._lin.cols)
        # after the whole graph (dask may order rows otherwise in a graph of the visible columns only)
        arr = self._d.map_partitions(lambda p: p[vis], meta=self._d._meta[vis]).to_dask_array(lengths=True)
        snap = self._snapshot()
        srcs = all_sources(self)
        nodes = [graph_source_node(s) for s in srcs]
        m = FrameRowsMap(snap, srcs, tuple(int(x) for x in arr.shape))
        partial = "; ".join(self._lin.reasons) or None
        return derive("to_dask_array", arr, m, nodes + nodes, control=range(len(nodes), 2 * len(nodes)),
                      partial=partial, detail="dask frame rows")

    @property
    def _whence_node(self):
        """A graph node for ``whence.backward`` / ``forward`` / ``sources`` on this frame (its row count is
        computed on first use, with the hidden columns, and kept)."""
        return _frame_node(self, self)

    # -- queries
    def backward(self, row, columns=None, control=False):
        """The source cells of row ``row`` (a position in ``compute()``) of this frame.

        Parameters
        ----------
        row : int
        columns : list of labels, optional
            Only the cells of these columns (all by default).
        control : bool, default False
            Also the cells that chose the row (filter masks, join keys, group keys).

        Returns
        -------
        dict
            ``{source name: int64 array (k, 2)}`` of (row, column) in the source (rows numbered over the
            concatenated files), sorted; ``.complete`` is not carried: see :attr:`lineage_complete`.
        """
        H = self._hidden_rows([row])
        need = union_deps(*[self._lin.cols[c] for c in (self._lin.cols if columns is None else columns)])
        acc = {}
        resolve_cells(self, H, need, control, acc)
        return {s.name: v for s, v in cells_out(acc).items()}

    def _whence_trace(self, row, control=False):
        from ..tabular.trace import SourceRow, Trace
        if isinstance(row, (bool, np.bool_)) or not isinstance(row, (int, np.integer)):
            raise LineageQueryError(f"row must be an integer position, got {row!r}")
        H = self._hidden_rows([row])
        need = union_deps(*self._lin.cols.values())
        acc = {}
        resolve_cells(self, H, need, control, acc)
        out = []
        for src in sorted(acc, key=lambda s: s.name):
            cells = cells_out({src: acc[src]})[src]
            off = src.offsets()
            for r in np.unique(cells[:, 0]).tolist():
                cs = tuple(src.columns[c] for c in sorted(set(cells[cells[:, 0] == r, 1].tolist())))
                f = int(np.searchsorted(off, r, side="right") - 1)
                lines = src.lines(f)
                line = int(lines[r - off[f]]) if lines is not None else None
                out.append(SourceRow(src.name, src.paths[f], r, line, cs))
        return Trace(out, complete=not self._lin.reasons, reasons=self._lin.reasons)

    def forward(self, source, rows=None, columns=None, control=False):
        """The cells of this frame that derive from source cells.

        Parameters
        ----------
        source : str or DaskTrackedFrame
            A source upstream of this frame, by name or as the frame :func:`read_csv` returned.
        rows : list of int, optional
            Source rows (numbered over the concatenated files); all by default.
        columns : list of labels, optional
            Source columns; all by default.
        control : bool, default False
            Also follow control edges (a mask cell reaches the rows it selected).

        Returns
        -------
        ndarray of int64, shape (k, 2)
            (row, column) positions in this frame, sorted.
        """
        src = _find_source(self, source)
        if rows is None:
            rows = np.arange(int(src.offsets()[-1]))
        cidx = range(len(src.columns)) if columns is None else src.col_index(columns)
        target = (src, np.unique(np.asarray(rows, np.int64)), frozenset(src.columns[c] for c in cidx))
        hit = cell_hits(self, target, control, {})
        return np.argwhere(hit).astype(np.int64)

    # row access ------------------------------------------------------------------------------------------
    def _hidden_part(self, k):
        key = ("part", k)
        if key not in self._cache:
            # the whole graph, not a projection: dask may order rows differently in another graph
            self._cache[key] = self._d.partitions[k].compute()[self._lin.hidden()]
        return self._cache[key]

    def _hidden_all(self):
        if "all" not in self._cache:
            self._cache["all"] = self._d.compute()[self._lin.hidden()].reset_index(drop=True)
        return self._cache["all"]

    def _hidden_rows(self, rows):
        """Hidden columns of the rows at these positions, computing partitions only as far as needed."""
        out = []
        for r in rows:
            if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, np.integer)):
                raise LineageQueryError(f"row must be an integer position, got {r!r}")
            r = int(r)
            if "all" in self._cache:
                allh = self._cache["all"]
                if not -len(allh) <= r < len(allh):
                    raise LineageQueryError(f"row {r} is out of range for {len(allh)} rows")
                out.append(allh.iloc[[r]])
                continue
            if r < 0:
                r += len(self._hidden_all())
            start = 0
            for k in range(self._d.npartitions):
                p = self._hidden_part(k)
                if r < start + len(p):
                    out.append(p.iloc[[r - start]])
                    break
                start += len(p)
            else:
                raise LineageQueryError(f"row {r} is out of range for {start} rows")
        return pd.concat(out, ignore_index=True)


def _find_source(frame, source, seen=None):
    if isinstance(source, DaskTrackedFrame):
        srcs = [o for o, _ in source._lin.origins.values() if isinstance(o, DaskSource)]
        if len(srcs) != 1:
            raise LineageQueryError("pass a source frame (as read_csv returned it) or a source name")
        return srcs[0]
    found = all_sources(frame)
    for s in found:
        if s.name == source:
            return s
    raise LineageQueryError(f"no source named {source!r} is upstream of this frame")


# --- arrays ---------------------------------------------------------------------------------------------------

def _frame_node(owner, frame):
    node = owner._cache.get("node")
    if node is None:
        from ..tracked import make_node
        n = len(frame._hidden_all())
        shape = (n,) if isinstance(owner, DaskTrackedSeries) else (n, len(frame._lin.cols))
        srcs = all_sources(frame)
        nodes = [graph_source_node(s) for s in srcs]
        snap = DaskTrackedFrame(frame._d, frame._lin.copy())
        object.__setattr__(snap, "_cache", frame._cache)  # rows computed so far (df[c] = ... starts a new cache)
        m = FrameRowsMap(snap, srcs, shape)
        node = owner._cache["node"] = make_node("dask_frame", shape, m, nodes + nodes,
                                                control=range(len(nodes), 2 * len(nodes)),
                                                partial="; ".join(frame._lin.reasons) or None,
                                                detail="dask frame rows")
    return node


# --- series ---------------------------------------------------------------------------------------------------

class DaskTrackedSeries(_Base):
    """A column of a :class:`DaskTrackedFrame`, or an elementwise expression of its columns."""

    def __init__(self, s, frame, dep, reasons=None):
        object.__setattr__(self, "_s", s)
        object.__setattr__(self, "_d", s)
        object.__setattr__(self, "_frame", frame)
        object.__setattr__(self, "_dep", dict(dep))
        object.__setattr__(self, "_ctrl", dict(frame._lin.ctrl))
        object.__setattr__(self, "_lin_token", frame._lin.token)
        object.__setattr__(self, "_reasons", frame._lin.reasons if reasons is None else tuple(reasons))
        object.__setattr__(self, "_lin", frame._lin)
        object.__setattr__(self, "_cache", {})

    def _visible(self):
        return self._s

    def _wrap_same(self, s):
        return DaskTrackedSeries(s, self._frame, self._dep, self._reasons)

    @property
    def name(self):
        return self._s.name

    @property
    def dtype(self):
        return self._s.dtype

    def _view(self):
        f = self._frame
        v = DaskTrackedFrame(f._d, f._lin.copy(cols={self._s.name: self._dep}))
        object.__setattr__(v, "_cache", f._cache)
        return v

    def backward(self, row, control=False):
        """The source cells of element ``row`` (see :meth:`DaskTrackedFrame.backward`)."""
        return self._view().backward(row, control=control)

    def _whence_trace(self, row, control=False):
        return self._view()._whence_trace(row, control)

    @property
    def _whence_node(self):
        return _frame_node(self, self._view())

    def forward(self, source, rows=None, columns=None, control=False):
        """Positions (k, 1) of the elements deriving from source cells (see :meth:`DaskTrackedFrame.forward`)."""
        return self._view().forward(source, rows, columns, control)[:, :1]

    def to_frame(self, name=None):
        nm = self._s.name if name is None else name
        return self._frame.assign(**{"__wh_tmp": self})[["__wh_tmp"]].rename(columns={"__wh_tmp": nm})

    def _binary(self, other, fn, opname):
        if isinstance(other, DaskTrackedSeries):
            if other._lin_token != self._lin_token:
                return _fallback(self._frame, f"{opname} of series of other rows", fn(self._s, other._s))
            return DaskTrackedSeries(fn(self._s, other._s), self._frame, union_deps(self._dep, other._dep),
                                     self._reasons + other._reasons)
        if hasattr(other, "dask") or isinstance(other, (pd.Series, pd.DataFrame, np.ndarray)):
            return _fallback(self._frame, f"{opname} with an untracked collection", fn(self._s, other))
        return DaskTrackedSeries(fn(self._s, other), self._frame, self._dep, self._reasons)

    def _unary(self, fn):
        return DaskTrackedSeries(fn(self._s), self._frame, self._dep, self._reasons)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._s, name)
        if not callable(attr):
            return attr
        if name in _SERIES_SAME:
            def same(*args, **kwargs):
                if any(is_dask_tracked(a) for a in list(args) + list(kwargs.values())):
                    return _fallback(self._view(), f"Series.{name} with a tracked argument", attr(
                        *[a._s if is_dask_tracked(a) else a for a in args], **kwargs))
                return self._unary(lambda s: getattr(s, name)(*args, **kwargs))
            return same
        if name in _SERIES_SCALAR:
            return attr  # a plain (dask) scalar: constants downstream

        def call(*args, **kwargs):
            return _fallback(self._view(), f"Series.{name}", attr(*args, **kwargs))

        return call

    def __getitem__(self, key):
        if isinstance(key, DaskTrackedSeries):
            sub = self._frame.assign(__wh_tmp=self)[key]
            s = sub["__wh_tmp"]
            return DaskTrackedSeries(s._s.rename(self._s.name), sub, s._dep, s._reasons)
        return _fallback(self._view(), "Series.__getitem__", self._s[key])

    def __invert__(self):
        return self._unary(lambda s: ~s)

    def __neg__(self):
        return self._unary(lambda s: -s)

    def __abs__(self):
        return self._unary(abs)


_SERIES_SAME = {"isna", "notna", "isnull", "notnull", "fillna", "astype", "round", "abs", "isin", "between",
                "clip", "add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow", "eq", "ne", "lt",
                "le", "gt", "ge"}
_SERIES_SCALAR = {"sum", "mean", "min", "max", "count", "std", "var", "median", "nunique", "any", "all",
                  "size", "prod", "sem"}

for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor",
            "lt", "le", "gt", "ge", "eq", "ne"):
    def _make(op):
        import operator
        f = getattr(operator, op if op not in ("and", "or") else op + "_")

        def fwd(self, other):
            return self._binary(other, f, op)

        def rev(self, other):
            return self._binary(other, lambda a, b: f(b, a), op)

        return fwd, rev
    _f, _r = _make(_op)
    setattr(DaskTrackedSeries, f"__{_op}__", _f)
    if _op not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(DaskTrackedSeries, f"__r{_op}__", _r)


register_classes(DaskTrackedFrame, DaskTrackedSeries)
