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

__all__ = ["TableSource", "table_source", "register", "csv_line_options", "csv_line_reason", "csv_record_lines"]

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
            "read_csv options that whence does not follow to file lines (comment=, skiprows= as a list, a "
            "separator of several characters, engine='python', ...)")

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


def rows_of_lines(node, table, lines, by="line"):
    """The positions (sorted int64) of the rows of source table ``table`` (node ``node``) at the given file
    ``lines`` (1-based, ``by="line"``), or the given row positions checked against the table (``by="row"``).

    Raises ``IndexError`` for a row out of range, ``ValueError`` when the lines of the table are unknown or a
    line is not a data row (the header, a blank line, past the end).

    Examples
    --------
    >>> import pandas as pd, whence as wh
    >>> from whence.tabular.sources import rows_of_lines
    >>> wh.reset()
    >>> df = wh.track_frame(pd.DataFrame({"x": [10, 20, 30]}), name="t")
    >>> rows_of_lines(df._whence_node, "t", [2, 0, 2], by="row").tolist()
    [0, 2]
    >>> rows_of_lines(df._whence_node, "t", [3], by="row")
    Traceback (most recent call last):
    ...
    IndexError: rows [3] of 't' are out of range (3 rows)
    >>> rows_of_lines(df._whence_node, "t", [2])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: the lines of 't' are unknown (...); give source rows instead with by='row'
    """
    t = table_source(node)
    n = node.shape[0]
    vals = np.asarray(sorted(set(int(v) for v in lines)), np.int64)
    if by == "row":
        bad = vals[(vals < 0) | (vals >= n)]
        if bad.size:
            raise IndexError(f"rows {bad[:5].tolist()} of {table!r} are out of range ({n} rows)")
        return vals
    line_of = t.lines() if t is not None else None
    if line_of is None:
        raise ValueError(f"the lines of {table!r} are unknown ({getattr(t, 'line_note', 'no file')}); give source "
                         f"rows instead with by='row'")
    pos = np.searchsorted(line_of, vals)
    ok = (pos < line_of.size) & (line_of[np.minimum(pos, line_of.size - 1)] == vals)
    if not ok.all():
        raise ValueError(f"lines {vals[~ok][:5].tolist()} of {t.path} are not data rows (the header, a blank line or "
                         f"past the end)")
    return pos.astype(np.int64)


__all__ += ["rows_of_lines"]

# read_csv options under which the line of every row can be computed from the bytes of the file
_LINE_SAFE = {"sep", "delimiter", "header", "names", "index_col", "usecols", "dtype", "engine", "converters",
              "true_values", "false_values", "na_values", "keep_default_na", "na_filter", "nrows", "skiprows",
              "parse_dates", "date_format", "dayfirst", "cache_dates", "thousands", "decimal", "quotechar",
              "quoting", "doublequote", "encoding", "encoding_errors", "low_memory", "memory_map",
              "float_precision", "storage_options", "dtype_backend", "skip_blank_lines", "compression",
              "on_bad_lines", "skipinitialspace", "verbose", "comment", "escapechar"}


def csv_line_options(kwargs):
    """The options needed to compute row lines, or None when ``kwargs`` make lines unknowable
    (:func:`csv_line_reason` says why).

    Examples
    --------
    >>> csv_line_options({"nrows": 5})["nrows"]
    5
    >>> csv_line_options({"skipfooter": 1}) is None
    True
    """
    opts = _line_options(kwargs)
    return opts if isinstance(opts, dict) else None


def csv_line_reason(kwargs):
    """Why ``read_csv`` options ``kwargs`` leave rows without lines, or None when lines are computed.

    Examples
    --------
    >>> csv_line_reason({"skipfooter": 1})
    'read_csv option skipfooter= is not followed to file lines'
    """
    opts = _line_options(kwargs)
    return opts if isinstance(opts, str) else None


def _line_options(kwargs):
    for k in kwargs:
        if k not in _LINE_SAFE:
            return f"read_csv option {k}= is not followed to file lines"
    skiprows = kwargs.get("skiprows")
    if skiprows is not None and not isinstance(skiprows, (int, np.integer)):
        return "read_csv skiprows= given as a list or a callable is not followed to file lines"
    header = kwargs.get("header", "infer")
    if header == "infer":
        header = None if kwargs.get("names") is not None else 0
    if header is not None and not isinstance(header, (int, np.integer)):
        return "a header of several rows is not followed to file lines"
    if kwargs.get("on_bad_lines", "error") not in ("error",):
        return "read_csv on_bad_lines= skips rows: lines are not followed"
    enc = str(kwargs.get("encoding") or "utf-8").lower().replace("_", "-")
    if enc.startswith("utf-16") or enc.startswith("utf-32"):
        return f"lines are not computed for the {enc} encoding"
    sep = kwargs.get("sep", kwargs.get("delimiter", ","))
    if sep is None or not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n":
        return f"a separator {sep!r} other than one character is not followed to file lines"
    if kwargs.get("engine") == "python":
        return "lines are computed for pandas' C parser only (engine='python' was asked)"
    quoting = kwargs.get("quoting", csv.QUOTE_MINIMAL)
    quotechar = kwargs.get("quotechar", '"')
    if quoting != csv.QUOTE_NONE and (not isinstance(quotechar, str) or len(quotechar) != 1):
        return f"a quote character {quotechar!r} is not followed to file lines"
    return {"skiprows": int(skiprows or 0), "header": header,
            "quote": None if quoting == csv.QUOTE_NONE else quotechar.encode("latin-1", "replace"),
            "quotechar": None if quoting == csv.QUOTE_NONE else quotechar,
            "sep": sep, "encoding": kwargs.get("encoding") or "utf-8",
            "encoding_errors": kwargs.get("encoding_errors", "strict"),
            "doublequote": kwargs.get("doublequote", True),
            "skipinitialspace": bool(kwargs.get("skipinitialspace", False)),
            "skip_blank": kwargs.get("skip_blank_lines", True), "nrows": kwargs.get("nrows"),
            "comment": kwargs.get("comment"), "escapechar": kwargs.get("escapechar"),
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
    try:
        rec = _record_lines(path, opts)
    except _Unfollowed as e:
        table.line_note = str(e)
        return None
    except (UnicodeDecodeError, csv.Error, LookupError) as e:
        table.line_note = f"the file's records could not be followed to lines ({type(e).__name__}: {e})"
        return None
    if rec.size != n_rows:
        table.line_note = (f"the file has {rec.size} records where the frame read has {n_rows} rows "
                           f"(options whence cannot follow)")
        return None
    return rec


class _Unfollowed(ValueError):
    """The file has a layout whose lines whence does not follow."""


_WS = np.zeros(256, bool)
_WS[[32, 9, 10, 13]] = True


def csv_record_lines(path, opts):
    """:func:`_record_lines`, or None when the file's lines cannot be followed (a layout whence does not
    follow, an undecodable file)."""
    try:
        return _record_lines(path, opts)
    except (_Unfollowed, UnicodeDecodeError, csv.Error, LookupError):
        return None


def _record_lines(path, opts):
    """1-based line of every record that ``read_csv`` with the options ``opts`` (from :func:`csv_line_options`)
    reads from the file at ``path``, as int64 (its size is the number of rows read).

    A line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (as for pandas' parser).  A file without the quote
    character, lone carriage returns, comments or escapes is read with numpy over its bytes: one record per
    line, blank lines and lines of spaces and tabs skipped as pandas skips them (``skip_blank_lines``),
    ``skiprows`` counting lines, blank ones included, ``header`` the records left.  Any other file is read
    again by pandas itself, with the same options, each line prefixed with its number (see
    :func:`_marked_records`): the first field of every row is the line where its record starts.
    """
    data = _read_bytes(path, opts["compression"])
    b = np.frombuffer(data, np.uint8)
    q = opts["quote"]
    cr = np.flatnonzero(b == 13)
    lone_cr = cr.size and bool(np.any(b[np.minimum(cr + 1, b.size - 1)] != 10) or cr[-1] == b.size - 1)
    if (q is None or data.find(q) < 0) and not lone_cr and opts.get("comment") is None \
            and opts.get("escapechar") is None:
        starts, blank = _physical_records(b)
        rec = np.arange(starts.size)
        rec = rec[opts["skiprows"]:]
        if opts["skip_blank"]:
            rec = rec[~blank[rec]]
        if opts["header"] is not None:
            rec = rec[opts["header"] + 1:]
        if opts["nrows"] is not None:
            rec = rec[:int(opts["nrows"])]
        return starts[rec].astype(np.int64)
    return _marked_records(data, opts)


def _physical_records(b):
    """Records of a file without quotes: one per line; (1-based line, blank) of each."""
    nl = np.flatnonzero(b == 10)
    starts = np.concatenate([[0], nl + 1])
    if starts[-1] >= b.size:
        starts = starts[:-1]
    ends = np.concatenate([nl, [b.size]])[:starts.size]
    if b.size >= 3 and bytes(b[:3]) == b"\xef\xbb\xbf":
        b = b.copy()
        b[:3] = 32  # the UTF-8 byte order mark, which pandas drops
    # blank: nothing but spaces, tabs and the line end
    nonws = np.concatenate([[0], np.cumsum(~_WS[b], dtype=np.int64)])
    blank = (nonws[ends] - nonws[starts]) == 0
    return np.arange(1, starts.size + 1, dtype=np.int64), blank


def _marked_records(data, opts):
    """The line of every record, from pandas' own parse of the file with every line prefixed by its number.

    The text is split at ``\\r\\n``, ``\\r`` and ``\\n``; every line that pandas would not skip outright (blank,
    spaces and tabs only, or starting with the comment character) gets ``"<line><sep>"`` in front, which adds a
    first field to every record (the line where it starts) and, on a line inside a quoted field, only changes
    that field's text.  pandas then reads it with the options that decide where records begin and end
    (separator, quoting, escapes, comments, ``skiprows``, ``header``, ``nrows``), and the first column is the
    answer.  A row without a number (a record pandas made from a line it did not skip) means the lines cannot
    be followed.
    """
    import codecs
    import io
    import re

    import pandas as pd
    enc = opts["encoding"]
    if codecs.lookup(enc).name == "utf-8":
        enc = "utf-8-sig"  # pandas drops a byte order mark
    text = data.decode(enc, errors=opts["encoding_errors"])
    sep = opts["sep"]
    comment = opts.get("comment")
    parts = re.split(r"(\r\n|\r|\n)", text)
    out = []
    for i in range(0, len(parts), 2):
        line = parts[i]
        end = parts[i + 1] if i + 1 < len(parts) else ""
        if not line and not end:
            break
        bare = (comment is not None and line.startswith(comment)) or (opts["skip_blank"] and not line.strip(" \t"))
        out.append(line + end if bare else f"{i // 2 + 1}{sep}{line}{end}")
    kw = {"sep": sep, "header": opts["header"], "skiprows": opts["skiprows"] or None, "nrows": opts["nrows"],
          "usecols": [0], "index_col": False, "dtype": str, "keep_default_na": False, "na_filter": False,
          "skip_blank_lines": opts["skip_blank"], "skipinitialspace": opts["skipinitialspace"],
          "doublequote": opts["doublequote"], "engine": "c"}
    if opts["quotechar"] is None:
        kw["quoting"] = csv.QUOTE_NONE
    else:
        kw["quotechar"] = opts["quotechar"]
    if comment is not None:
        kw["comment"] = comment
    if opts.get("escapechar") is not None:
        kw["escapechar"] = opts["escapechar"]
    try:
        col = pd.read_csv(io.StringIO("".join(out)), **kw).iloc[:, 0]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise _Unfollowed(f"the file's records could not be followed to lines ({type(e).__name__}: {e})") from e
    nums = col.to_numpy(dtype=object)
    try:
        return np.array([int(v) for v in nums], np.int64)
    except (TypeError, ValueError):
        raise _Unfollowed("a row of the file does not start on a line whence can number") from None
