"""Source tables: where a tracked frame's rows come from (file, format, line of every row).

Reading a file makes one source node (shape ``(rows, columns)``, columns as in the file, index columns
included) and a :class:`TableSource` describing it.  The line of each row is computed on first use, from
the file itself, with vectorised numpy over its bytes (quoted fields spanning lines are handled), so that
reading stays as fast as plain pandas.
"""

from __future__ import annotations

import csv
import os
import weakref
from pathlib import Path

import numpy as np

__all__ = ["TableSource", "table_source", "register"]

_tables: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class TableSource:
    """What is known of a source table.

    Attributes
    ----------
    name : str
        The source name used in query answers.
    columns : list
        Column labels of the source node, in order (index columns first when the file had them).
    path : str or None
        Absolute path of the file read, or None for a frame tracked from memory.
    format : str
        ``"csv"``, ``"parquet"`` or ``"frame"``.
    size, mtime_ns : int or None
        File size and modification time when it was read.
    """

    __slots__ = ("name", "columns", "path", "format", "size", "mtime_ns", "n_rows", "_lines", "_line_opts",
                 "line_note", "__weakref__")

    def __init__(self, name, columns, n_rows, path=None, format="frame", line_opts=None):
        self.name = name
        self.columns = list(columns)
        self.n_rows = int(n_rows)
        self.path = None if path is None else str(Path(path).resolve())
        self.format = format
        self.size = self.mtime_ns = None
        if self.path is not None:
            st = os.stat(self.path)
            self.size, self.mtime_ns = st.st_size, st.st_mtime_ns
        self._lines = None
        self._line_opts = line_opts
        self.line_note = None if format == "csv" and line_opts is not None else (
            "rows of a Parquet file have no lines" if format == "parquet" else
            "a frame tracked from memory has no file" if format == "frame" else
            "read_csv options that move rows off their lines")

    def lines(self):
        """1-based line number in the file of every row (int64), or None when it cannot be known."""
        if self._lines is None and self._line_opts is not None and self.line_note is None:
            self._lines = _csv_lines(self.path, self.n_rows, self._line_opts, self)
        return self._lines

    def __repr__(self):
        where = f" from {self.path}" if self.path else ""
        return f"<TableSource {self.name!r} {self.n_rows} rows x {len(self.columns)} columns{where}>"


def register(node, table):
    _tables[node] = table


def table_source(node):
    """The :class:`TableSource` of a source node, or None for an array source."""
    return _tables.get(node)


# read_csv options under which the line of every row can be computed from the bytes of the file
_LINE_SAFE = {"sep", "delimiter", "header", "names", "index_col", "usecols", "dtype", "engine", "converters",
              "true_values", "false_values", "na_values", "keep_default_na", "na_filter", "nrows", "skiprows",
              "parse_dates", "date_format", "dayfirst", "cache_dates", "thousands", "decimal", "quotechar",
              "quoting", "doublequote", "encoding", "encoding_errors", "low_memory", "memory_map",
              "float_precision", "storage_options", "dtype_backend", "skip_blank_lines", "compression",
              "on_bad_lines", "skipinitialspace", "verbose"}


def csv_line_options(kwargs):
    """The options needed to compute row lines, or None when ``kwargs`` make lines unknowable."""
    for k, v in kwargs.items():
        if k not in _LINE_SAFE:
            return None
    skiprows = kwargs.get("skiprows")
    if skiprows is not None and not isinstance(skiprows, (int, np.integer)):
        return None
    header = kwargs.get("header", "infer")
    if header == "infer":
        header = None if kwargs.get("names") is not None else 0
    if header is not None and not isinstance(header, (int, np.integer)):
        return None  # multi-row headers
    if kwargs.get("on_bad_lines", "error") not in ("error",):
        return None  # skipped bad lines would shift rows
    enc = str(kwargs.get("encoding") or "utf-8").lower().replace("_", "-")
    if enc.startswith("utf-16") or enc.startswith("utf-32"):
        return None
    quoting = kwargs.get("quoting", csv.QUOTE_MINIMAL)
    quotechar = kwargs.get("quotechar", '"')
    return {"skiprows": int(skiprows or 0), "header": header,
            "quote": None if quoting == csv.QUOTE_NONE else quotechar.encode(),
            "skip_blank": kwargs.get("skip_blank_lines", True), "nrows": kwargs.get("nrows"),
            "compression": kwargs.get("compression", "infer")}


def _read_bytes(path, compression):
    try:
        from pandas.io.common import get_handle
        with get_handle(path, "rb", compression=compression, is_text=False) as h:
            return h.handle.read()
    except ImportError:  # pragma: no cover
        with open(path, "rb") as f:
            return f.read()


def _csv_lines(path, n_rows, opts, table):
    st = os.stat(path)
    if (st.st_size, st.st_mtime_ns) != (table.size, table.mtime_ns):
        table.line_note = "the file changed after it was read"
        return None
    rec = csv_record_lines(path, opts)
    if rec.size != n_rows:
        table.line_note = (f"the file has {rec.size} records where the frame read has {n_rows} rows "
                           f"(options whence cannot follow)")
        return None
    return rec


def csv_record_lines(path, opts):
    """1-based line of every record that ``read_csv`` with the options ``opts`` (from :func:`csv_line_options`)
    reads from the file at ``path``, as int64 (its size is the number of rows read)."""
    data = _read_bytes(path, opts["compression"])
    b = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(b == 10)
    q = opts["quote"]
    if q is not None and data.find(q) >= 0:
        # a newline ends a record only outside quotes: an even number of quote characters before it
        quotes = np.cumsum(b == q[0], dtype=np.int64)
        nl = nl[(quotes[nl] & 1) == 0]
    # physical line starts (1-based line numbers), and record start offsets
    starts = np.concatenate([[0], nl + 1])
    if starts[-1] >= b.size:
        starts = starts[:-1]
    ends = np.concatenate([nl, [b.size]])[:starts.size]
    lengths = ends - starts
    if lengths.size:
        # "\r\n" endings: a line of length 1 holding "\r" is blank
        cr = (lengths == 1) & (b[np.minimum(starts, b.size - 1)] == 13)
        blank = (lengths == 0) | cr
    else:
        blank = np.zeros(0, bool)
    # line number of each record start: newlines (quoted ones included) before it, plus one
    all_nl = np.flatnonzero(b == 10)
    line_no = np.searchsorted(all_nl, starts, side="left") + 1
    rec = np.arange(starts.size)
    rec = rec[opts["skiprows"]:]
    if opts["skip_blank"]:
        rec = rec[~blank[rec]]
    if opts["header"] is not None:
        rec = rec[opts["header"] + 1:]
    if opts["nrows"] is not None:
        rec = rec[:int(opts["nrows"])]
    return line_no[rec].astype(np.int64)
