"""``trace_to_file``: the source rows of a row, with their file, line and the columns used."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import LineageQueryError, NotTrackedError
from .relations import TableMap
from .source_tables import table_source

__all__ = ["trace_to_file", "Trace", "SourceRow"]


class SourceRow(NamedTuple):
    """One source row that fed the traced row.

    ``row`` is 0-based in the source table; ``line`` is the 1-based line of the file where the row starts
    (None for Parquet files, frames from memory and arrays); ``columns`` are the source columns used.
    """

    table: str
    path: str | None
    row: int
    line: int | None
    columns: tuple


class Trace(list):
    """The answer of :func:`trace_to_file`: a list of :class:`SourceRow`, sorted by table and row.

    ``complete`` is False when part of the lineage is PARTIAL (``reasons`` says why).  ``reasons`` also says,
    for every table whose rows come without a line (``line`` None), why: a Parquet file, a frame from memory,
    an array, ``read_csv`` options whence does not follow, a file changed since it was read.
    """

    def __init__(self, rows=(), complete=True, reasons=()):
        super().__init__(rows)
        self.complete = complete
        self.reasons = list(reasons)

    def to_frame(self):
        """The trace as a plain :class:`pandas.DataFrame` (columns table, path, row, line, columns)."""
        import pandas as pd
        return pd.DataFrame(list(self), columns=list(SourceRow._fields))

    def tables(self):
        return sorted({r.table for r in self})

    def __repr__(self):
        if not self:
            return f"Trace([], {'FULL' if self.complete else 'PARTIAL'})"
        lines = [f"Trace ({len(self)} source rows, {'FULL' if self.complete else 'PARTIAL'})"]
        for r in self[:20]:
            where = f"{r.path}:{r.line}" if r.line is not None else (r.path or "(memory)")
            lines.append(f"  {r.table:<22} row {r.row:<8} {where}  {', '.join(map(str, r.columns))}")
        if len(self) > 20:
            lines.append(f"  ... {len(self) - 20} more")
        return "\n".join(lines)


def _node_any(x):
    from ..query import node_of as _node_of
    return _node_of(x)


def trace_to_file(x, row, control=False):
    """The source rows (table, file, line, columns) that row ``row`` of ``x`` derives from.

    Parameters
    ----------
    x : TrackedArray, TrackedFrame or TrackedSeries
        For a 2-D array or a frame, every cell of the row is traced; for a 1-D array or a Series, the cell.
    row : int
        Position of the row (negative counts from the end).
    control : bool, default False
        Also include the rows whose cells chose this row (filter masks, join and group keys).

    Returns
    -------
    Trace
        A list of :class:`SourceRow`.

    Examples
    --------
    >>> import io, whence as wh
    >>> wh.reset()
    >>> t = wh.read_csv(io.StringIO("k,v\\n1,5\\n1,6\\n2,7\\n"), name="t")
    >>> agg = t.groupby("k").agg(total=("v", "sum"))
    >>> [(r.row, r.columns) for r in wh.trace_to_file(agg["total"].to_numpy(), row=0)]
    [(0, ('v',)), (1, ('v',))]
    """
    hook = getattr(type(x), "_whence_trace", None)
    if hook is not None:  # frames that answer for themselves (dask frames)
        return x._whence_trace(row, control)
    node = _node_any(x)
    if not node.shape:
        raise LineageQueryError("a 0-d array has no rows to trace")
    n = node.shape[0]
    if isinstance(row, (bool, np.bool_)) or not isinstance(row, (int, np.integer)):
        raise LineageQueryError(f"row must be an integer position, got {row!r}")
    if not -n <= int(row) < n:
        raise LineageQueryError(f"row {int(row)} is out of range for {n} rows")
    r = int(row) % n
    fast = _fast(node, r, control)
    if fast is not None:
        out = []
        for src in sorted(fast, key=lambda s: s.name):
            out.extend(_rows_from_dict(src, fast[src]))
        return Trace(out, reasons=_line_reasons(fast))
    from ..cellset import CellSet
    from ..query import backward_sets as _backward_sets, region_mask
    idx = (r,) + (slice(None),) * (len(node.shape) - 1)
    sets, reasons = _backward_sets(node, CellSet.dense(region_mask(node.shape, idx)), control)
    out = []
    used = []
    for src in sorted(sets, key=lambda s: s.name):
        cells = sets[src].coordinates()
        if len(cells):
            out.extend(_rows_of(src, cells))
            used.append(src)
    return Trace(out, complete=not reasons, reasons=list(reasons) + _line_reasons(used))


def _line_reasons(sources):
    """Why the rows of these sources have no line (``SourceRow.line`` is None): one reason per source."""
    out = []
    for src in sorted(sources, key=lambda s: s.name):
        t = table_source(src)
        if t is None:
            out.append(f"{src.name}: an array source has no file lines")
        elif t.lines() is None:
            out.append(f"{t.name}: rows have no file lines: {t.line_note or 'not known'}")
    return out


def _fast(node, r, control):
    """One hop for a table node whose inputs are all sources (the usual case): no graph walk, no arrays."""
    m = node.map
    if not isinstance(m, TableMap) or node.partial:
        return None
    cols_of = m.__dict__.get("_trace_cols")
    if cols_of is None:
        cols_of = m._trace_cols = [np.flatnonzero(p.data_row(m.nidx)).tolist() for _, p in m.entries]
    acc = {}
    for (k, p), sc in zip(m.entries, cols_of):
        if not sc or (k in node.control and not control):
            continue
        src = node.parents[k]
        if not src.is_source:
            return None
        rel = p.rel
        if rel.all_rows:
            rows = range(rel.n_src)
        elif getattr(rel, "ranged", False):  # a window: expand this row's range only
            rows = rel.rows_per(np.array([r], np.int64))[1].tolist()
        else:
            c = r if rel.codes is None else int(rel.codes[r])
            if c < 0:
                continue
            if rel.csr is None:
                rows = (c,)
            else:
                ip, ix = rel.csr.get()
                rows = ix[ip[c]:ip[c + 1]].tolist()
        d = acc.get(src)
        if d is None:
            d = acc[src] = {}
        for row in rows:
            e = d.get(row)
            if e is None:
                d[row] = set(sc)
            else:
                e.update(sc)
    return acc


def _rows_from_dict(src, rows):
    t = table_source(src)
    lines = t.lines() if t is not None else None
    names = t.columns if t is not None else None
    path = t.path if t is not None else None
    out = []
    for u in sorted(rows):
        cs = sorted(rows[u])
        labels = tuple(names[c] for c in cs) if names is not None else (tuple(cs) if len(src.shape) > 1 else ())
        out.append(SourceRow(src.name, path, u, int(lines[u]) if lines is not None else None, labels))
    return out


def _rows_of(src, cells):
    if not src.is_source:
        raise NotTrackedError("internal: a trace reached a node that is not a source")
    t = table_source(src)
    cells = np.asarray(cells, np.int64)
    if cells.ndim == 1:
        cells = cells[:, None]
    rows = cells[:, 0]
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    cols = cells[order, 1] if cells.shape[1] > 1 else np.zeros(len(rows), np.int64)
    uniq, start = np.unique(rows, return_index=True)
    bounds = list(start[1:]) + [len(rows)]
    lines = t.lines() if t is not None else None
    names = t.columns if t is not None else None
    out = []
    for u, a, b in zip(uniq.tolist(), start.tolist(), bounds):
        cs = sorted(set(cols[a:b].tolist()))
        labels = tuple(names[c] for c in cs) if names is not None else tuple(cs) if len(src.shape) > 1 else ()
        out.append(SourceRow(src.name, t.path if t is not None else None, u,
                             int(lines[u]) if lines is not None else None, labels))
    return out
