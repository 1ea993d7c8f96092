"""``trace_to_file``: the source rows of a row, with their file, line and the columns used."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import LineageQueryError, NotTrackedError
from .relations import TableMap
from .sources import table_source

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

    ``complete`` is False when part of the lineage is PARTIAL (``reasons`` says why).
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
    from ..query import _node_of
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
    node = _node_any(x)
    if not node.shape:
        raise LineageQueryError("a 0-d array has no rows to trace")
    n = node.shape[0]
    if isinstance(row, (bool, np.bool_)) or not isinstance(row, (int, np.integer)):
        raise LineageQueryError(f"row must be an integer position, got {row!r}")
    if not -n <= int(row) < n:
        raise LineageQueryError(f"row {int(row)} is out of range for {n} rows")
    r = int(row) % n
    found = _fast(node, r, control)
    if found is None:
        from ..query import _backward_sets, region_mask
        idx = (r,) + (slice(None),) * (len(node.shape) - 1)
        mask = region_mask(node.shape, idx)
        sets, reasons = _backward_sets(node, ("d", mask), control)
        found = {}
        for src, cs in sets.items():
            from ..query import _cells
            cells = _cells(cs, src.shape)
            if len(cells):
                found[src] = cells
    else:
        found, reasons = found
    out = []
    for src in sorted(found, key=lambda s: s.name):
        cells = found[src]
        out.extend(_rows_of(src, cells))
    return Trace(out, complete=not reasons, reasons=reasons)


def _fast(node, r, control):
    """One hop for a table node whose inputs are all sources (the usual case): no graph walk."""
    m = node.map
    if type(m) is not TableMap or node.partial:
        return None
    acc = {}
    for k, p in m.entries:
        if k in node.control and not control:
            continue
        src = node.parents[k]
        if not src.is_source:
            return None
        cols = p.data_row(m.nidx)
        if not cols.any():
            continue
        _, srows = p.rel.rows_per(np.array([r], np.int64))
        if not srows.size:
            continue
        sc = np.flatnonzero(cols)
        cells = np.stack([np.repeat(srows, sc.size), np.tile(sc, srows.size)], axis=1)
        acc.setdefault(src, []).append(cells)
    found = {}
    for src, lst in acc.items():
        c = np.concatenate(lst) if len(lst) > 1 else lst[0]
        if len(src.shape) < 2:
            c = c[:, :1]
        found[src] = np.unique(c, axis=0) if len(lst) > 1 or len(c) > 1 else c
    return found, []


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
