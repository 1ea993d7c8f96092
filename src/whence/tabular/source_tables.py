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

__all__ = ["TableSource", "table_source", "register", "csv_line_options", "csv_line_reason", "csv_record_lines",
           "SkipRecorder"]

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
        # line_opts: the options of csv_line_options, or the reason (csv_line_reason) lines are not followed
        self._line_opts = line_opts if isinstance(line_opts, dict) else None
        self.line_note = None if format == "csv" and self._line_opts is not None else (
            line_opts if isinstance(line_opts, str) else
            "rows of a Parquet file have no lines" if format == "parquet" else
            "a frame tracked from memory has no file" if format == "frame" else
            "read_csv options that whence does not follow to file lines (skipfooter=, a sniffed separator, "
            "skiprows= as a callable it did not see called, ...)")

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
    >>> from whence.tabular.source_tables import rows_of_lines
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


class SkipRecorder:
    """A ``skiprows`` callable that keeps its answers, so that file lines are computed from the very rows it
    skipped (a callable may draw at random: it is not called again).

    ``read_csv`` hands pandas the recorder; afterwards :meth:`answers` is what line computation replays.

    Examples
    --------
    >>> r = SkipRecorder(lambda i: i % 2 == 1)
    >>> [r(i) for i in range(4)], r.answers().skip
    ([False, True, False, True], {0: False, 1: True, 2: False, 3: True})
    """

    def __init__(self, func):
        self.func = func
        self._answers = {}
        self._inconsistent = False

    def __call__(self, i):
        v = bool(self.func(i))
        old = self._answers.setdefault(int(i), v)
        if old != v:  # asked twice, answered differently: which one pandas used is not known
            self._inconsistent = True
        return v

    def answers(self):
        return SkipAnswers(dict(self._answers), self._inconsistent)


class SkipAnswers:
    """The answers a ``skiprows`` callable gave while pandas read a file (see :class:`SkipRecorder`)."""

    def __init__(self, skip, inconsistent=False):
        self.skip, self.inconsistent = skip, inconsistent


def _line_options(kwargs):
    for k in kwargs:
        if k not in _LINE_SAFE:
            return f"read_csv option {k}= is not followed to file lines"
    skiprows = kwargs.get("skiprows")
    if isinstance(skiprows, SkipRecorder):
        skiprows = skiprows.answers()
    if isinstance(skiprows, SkipAnswers):
        if skiprows.inconsistent:
            return "the skiprows= callable answered differently for the same row: lines are not followed"
    elif callable(skiprows):
        return "read_csv skiprows= given as a callable whence did not see called is not followed to file lines"
    elif skiprows is not None and not isinstance(skiprows, (int, np.integer)):
        try:
            skiprows = sorted({int(v) for v in skiprows})
        except (TypeError, ValueError):
            return f"read_csv skiprows={skiprows!r} is not followed to file lines"
    header = kwargs.get("header", "infer")
    if header == "infer":
        header = None if kwargs.get("names") is not None else 0
    if header is not None and not isinstance(header, (int, np.integer)):
        return "a header of several rows is not followed to file lines"
    if kwargs.get("on_bad_lines", "error") not in ("error",):
        return "read_csv on_bad_lines= skips rows: lines are not followed"
    sep = kwargs.get("sep", kwargs.get("delimiter", ","))
    if sep is None:
        return "a separator sniffed from the file (sep=None) is not followed to file lines"
    if not isinstance(sep, str) or not sep or sep in ("\r", "\n"):
        return f"a separator {sep!r} is not followed to file lines"
    engine = kwargs.get("engine")
    if engine not in (None, "c", "python"):
        return f"lines are computed for pandas' C and Python parsers, not engine={engine!r}"
    if engine is None:  # as pandas chooses: a separator of several characters is a regular expression
        engine = "python" if len(sep) > 1 and sep != "\\s+" else "c"
    quoting = kwargs.get("quoting", csv.QUOTE_MINIMAL)
    quotechar = kwargs.get("quotechar", '"')
    if quoting != csv.QUOTE_NONE and (not isinstance(quotechar, str) or len(quotechar) != 1):
        return f"a quote character {quotechar!r} is not followed to file lines"
    return {"skiprows": skiprows if isinstance(skiprows, (list, SkipAnswers)) else int(skiprows or 0),
            "header": header,
            "quote": None if quoting == csv.QUOTE_NONE else quotechar.encode("latin-1", "replace"),
            "quotechar": None if quoting == csv.QUOTE_NONE else quotechar,
            "sep": sep, "engine": engine, "encoding": kwargs.get("encoding") or "utf-8",
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
            and opts.get("escapechar") is None and isinstance(opts["skiprows"], int) \
            and opts.get("engine", "c") == "c" and len(opts["sep"]) == 1 and not _wide(opts["encoding"]):
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


def _wide(encoding):
    """Whether ``encoding`` is UTF-16 or UTF-32 (its bytes are not read as lines: the text is decoded first)."""
    import codecs
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return name.startswith("utf-16") or name.startswith("utf-32")


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


_LITERALS = (",", ";", "|", "\t", " ", ":", "::", "||", ";;", ", ", " | ", "\x1f")


def _marked_records(data, opts):
    """The line of every record, from pandas' own parse of the file with every line prefixed by its number.

    The text is decoded (UTF-16 and UTF-32 included) and split at ``\\r\\n``, ``\\r`` and ``\\n``; every line
    that pandas would not skip outright (blank, spaces and tabs only, or starting with the comment character)
    gets ``"<line><sep>"`` in front, which adds a first field to every record (the line where it starts) and,
    on a line inside a quoted field, only changes that field's text.  pandas then reads it with the parser and
    the options that decide where records begin and end (engine, separator, quoting, escapes, comments,
    ``skiprows`` as a number, a list or the recorded answers of a callable, ``header``, ``nrows``), and the
    first column is the answer.  A separator that is a regular expression (the Python parser splits each
    line with it) is given a literal it matches, checked on every line to split it as the line alone plus the
    number.  A row without a number (a record pandas made from a line it did not skip) means the lines cannot
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
    engine = opts.get("engine", "c")
    comment = opts.get("comment")
    regex = engine == "python" and len(sep) > 1
    lit = " " if sep == "\\s+" else sep  # the C parser reads r"\s+" as runs of spaces and tabs
    if regex:
        pat = re.compile(sep)
        lit = next((c for c in _LITERALS if pat.split(f"1{c}x") == ["1", "x"]), None)
        if lit is None:
            raise _Unfollowed(f"no separator text found that the regular expression {sep!r} splits on")
    parts = re.split(r"(\r\n|\r|\n)", text)
    out = []
    for i in range(0, len(parts), 2):
        line = parts[i]
        end = parts[i + 1] if i + 1 < len(parts) else ""
        if not line and not end:
            break
        blank = not (line.strip() if engine == "python" else line.strip(" \t"))
        bare = (comment is not None and line.startswith(comment)) or (opts["skip_blank"] and blank)
        if bare:
            out.append(line + end)
            continue
        # the Python parser strips a line before splitting it at a regular expression: the number goes first
        marked = f"{i // 2 + 1}{lit}{line.lstrip() if regex else line}"
        if regex and pat.split(marked.strip()) != [str(i // 2 + 1)] + pat.split(line.strip()):
            raise _Unfollowed(f"the separator {sep!r} does not split line {i // 2 + 1} apart from its number")
        out.append(marked + end)
    skiprows = opts["skiprows"]
    missed = []
    if isinstance(skiprows, SkipAnswers):
        answers = skiprows.skip

        def skiprows(i):
            v = answers.get(int(i))
            if v is None:  # a row pandas did not ask about when it read the file
                missed.append(i)
                return False
            return v
    kw = {"sep": sep, "header": opts["header"], "skiprows": skiprows or None, "nrows": opts["nrows"],
          "index_col": False, "dtype": str, "keep_default_na": False, "na_filter": False,
          "skip_blank_lines": opts["skip_blank"], "skipinitialspace": opts["skipinitialspace"],
          "doublequote": opts["doublequote"], "engine": engine}
    if opts["quotechar"] is None:
        kw["quoting"] = csv.QUOTE_NONE
    else:
        kw["quotechar"] = opts["quotechar"]
    if comment is not None:
        kw["comment"] = comment
    if opts.get("escapechar") is not None:
        kw["escapechar"] = opts["escapechar"]
    try:
        if engine != "python":
            col = pd.read_csv(io.StringIO("".join(out), newline=""), usecols=[0], **kw).iloc[:, 0]
        else:
            col = _checked_python_parse(pd, text, "".join(out), kw, lit)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as e:
        raise _Unfollowed(f"the file's records could not be followed to lines ({type(e).__name__}: {e})") from e
    if missed:
        raise _Unfollowed("the skiprows= callable was not asked about every row the lines depend on")
    nums = col.to_numpy(dtype=object)
    try:
        return np.array([int(v) for v in nums], np.int64)
    except (TypeError, ValueError):
        raise _Unfollowed("a row of the file does not start on a line whence can number") from None


def _checked_python_parse(pd, text, marked, kw, lit):
    """The numbers column of the Python parser's read of the numbered text, checked against its read of the
    text itself: the same rows, field for field (the numbers taken out of fields that span lines).

    The Python parser decides whether a line is empty or a comment from its fields, which the number changes
    (``  # note`` is a comment, ``7,  # note`` a row): a row it made only from the numbered text shows here,
    and the lines are then not followed.
    """
    import io
    import re
    plain = pd.read_csv(io.StringIO(text, newline=""), **kw)  # lines end as in a file (a lone CR too)
    numbered = pd.read_csv(io.StringIO(marked, newline=""), **kw)
    if numbered.shape != (plain.shape[0], plain.shape[1] + 1):
        raise _Unfollowed("the Python parser reads the numbered lines into other rows than the file's")
    inner = re.compile(r"(\r\n|\r|\n)\d+" + re.escape(lit))
    a = numbered.iloc[:, 1:].to_numpy(dtype=object)
    b = plain.to_numpy(dtype=object)
    for x, y in zip(a.ravel(), b.ravel()):
        if isinstance(x, str) and x != y:
            x = inner.sub(lambda m: m.group(1), x)
        if x != y and not (x != x and y != y):  # NaN equals NaN here
            raise _Unfollowed("the Python parser reads the numbered lines into other rows than the file's")
    return numbered.iloc[:, 0]
