"""The file line of every row read by ``whence.read_csv``: right, or None with the reason in the answer.

Random CSV files are written with a known line for every record (a unique ``id`` column names the record):
line ends ``\\n``, ``\\r\\n`` or a lone ``\\r``, a byte order mark, quoted fields spanning lines, quotes inside
unquoted fields, doubled quotes, quoting off, blank and whitespace-only lines, comment lines, junk lines skipped by
``skiprows`` (a number, a list of lines, a callable, one that also skips rows at random), a header on another row
or none, ``nrows``, ``usecols``, separators that are regular expressions, pandas' C and Python parsers and
several encodings (UTF-16 and UTF-32 included).  pandas reads
the file (the reference parse); every row's ``trace_to_file`` line must be the line of the record pandas
made the row from (found by its ``id``), or None with a reason in the answer's ``reasons``.
"""

from __future__ import annotations

import csv
import pathlib
import random
import re
import sys
import tempfile

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

pd = pytest.importorskip("pandas")

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import strategies as S  # noqa: E402

import whence as wh  # noqa: E402

VALUES = ["abc", "x y", "\u00e9t\u00e9", "1.5", '"q,uoted"', '"multi\nline"', '"two\n\nbreaks"', '"dq ""in"" side"',
          'x"y', '"a"b', "", "  pad  "]
TERMINATORS = re.compile(r"\r\n|\r|\n")
_DIR = tempfile.mkdtemp(prefix="whence-csv-lines-")
_COUNTER = [0]


# separators: the text written between fields, and the ``sep`` given to read_csv (several characters: a regular
# expression, read by the Python parser, which does not know quotes)
SEPARATORS = [(",", ","), (",", ","), (",", ","), (" ; ", r"\s*;\s*"), ("::", "::"), ("||", r"\|\|")]
PLAIN = [v for v in VALUES if '"' not in v and "\n" not in v]


@st.composite
def csv_files(draw):
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "cp1252", "utf-16", "utf-32"]))
    bom = encoding == "utf-8" and draw(st.booleans())
    comment = draw(st.sampled_from([None, None, "#"]))
    quoting_off = draw(st.sampled_from([False, False, False, True]))
    joiner, sep = draw(st.sampled_from(SEPARATORS))
    engine = "python" if sep != "," else draw(st.sampled_from([None, None, "python"]))
    values = VALUES if sep == "," else PLAIN
    n_cols = draw(st.integers(1, 3))
    id_pos = draw(st.integers(0, n_cols))
    cols = [f"c{j}" for j in range(n_cols)]
    cols.insert(id_pos, "id")
    skip_mode = draw(st.sampled_from(["int", "int", "list", "callable", "random"]))
    skiprows = draw(st.sampled_from([None, 0, 1, 2]))
    header_mode = draw(st.sampled_from(["0", "0", "1", "none"]))
    parts = []  # (text, record id or None, skipped by a skiprows list or callable)

    def filler():
        kind = draw(st.sampled_from(["blank", "spaces", "comment"] if comment else ["blank", "spaces"]))
        return {"blank": "", "spaces": draw(st.sampled_from([" ", "  \t", "\t"])), "comment": "# note, \"x\""}[kind]

    for _ in range(skiprows or 0):
        parts.append((draw(st.sampled_from(["junk,line", "", "# skipped"])), None, True))
    if draw(st.booleans()):
        parts.append((filler(), None, False))
    if header_mode == "1":
        parts.append(("pre,header", None, False))
    if header_mode != "none":
        parts.append((joiner.join(cols), None, False))
    n_rows = draw(st.integers(0, 8))
    for i in range(n_rows):
        while draw(st.integers(0, 4)) == 0:
            parts.append((filler(), None, False))
        if skip_mode != "int" and draw(st.integers(0, 3)) == 0:
            parts.append(("junk" + joiner + "line", None, True))  # skipped by its line number
        fields = [str(100 + i) if c == "id" else draw(st.sampled_from(values)) for c in cols]
        parts.append((joiner.join(fields), 100 + i, False))
    text, lines, skipped = "", {}, set()
    for body, rid, skip in parts:
        if rid is not None:
            lines[rid] = len(TERMINATORS.findall(text)) + 1
        if skip:
            skipped.add(len(TERMINATORS.findall(text)))
        text += body.replace("\n", eol) if eol != "\n" and draw(st.booleans()) else body
        text += eol
    if bom:
        text = "\ufeff" + text
    opts = {"encoding": encoding, "dtype": str, "keep_default_na": False}
    if skip_mode == "int":
        if skiprows is not None:
            opts["skiprows"] = skiprows
    elif skip_mode == "list":
        opts["skiprows"] = sorted(skipped)
    else:
        seed = draw(st.integers(0, 2**16)) if skip_mode == "random" else None
        opts["skiprows"] = ("callable", frozenset(skipped), seed)  # made into a fresh callable per read
    if sep != ",":
        opts["sep"] = sep
    if engine is not None:
        opts["engine"] = engine
    if header_mode == "1":
        opts["header"] = 1
    elif header_mode == "none":
        opts["header"] = None
        opts["names"] = cols
    if comment:
        opts["comment"] = comment
    if quoting_off:
        opts["quoting"] = 3  # csv.QUOTE_NONE
    nrows = draw(st.sampled_from([None, None, 0, 1, 3, 20]))
    if nrows is not None:
        opts["nrows"] = nrows
    usecols = None
    if draw(st.booleans()):
        usecols = draw(st.lists(st.sampled_from(cols), min_size=1, unique=True))
    return text, encoding, opts, usecols, lines


def _fresh(opts):
    """The options, with a new callable where ``skiprows`` names one (the same answers for every read: a
    random one draws from a generator seeded alike)."""
    sk = opts.get("skiprows")
    if not (isinstance(sk, tuple) and sk[0] == "callable"):
        return dict(opts)
    _, skipped, seed = sk
    rng = random.Random(seed)
    if seed is None:
        return dict(opts, skiprows=lambda i: i in skipped)
    # skips the junk lines, and at random one line in five of the others (the header too: then the file's
    # records are read otherwise than written, and the case says nothing)
    return dict(opts, skiprows=lambda i: i in skipped or rng.random() < 0.2)


@S.cfg(80)
@given(csv_files())
def test_every_row_line_is_right_or_none_with_a_reason(case):
    text, encoding, opts, usecols, lines = case
    _COUNTER[0] += 1
    path = pathlib.Path(_DIR) / f"f{_COUNTER[0]}.csv"
    path.write_bytes(text.encode(encoding))
    try:
        ref = pd.read_csv(path, **_fresh(opts))
    except (pd.errors.ParserError, ValueError, UnicodeError, csv.Error):  # the Python parser's own errors too
        assume(False)
    # a file whose records pandas reads otherwise than written (no id column, rows of no record) says nothing
    assume("id" in ref.columns and (len(ref) == 0 or ref["id"].isin([str(k) for k in lines]).all()))
    wh.reset()
    kw = dict(_fresh(opts), usecols=usecols) if usecols is not None else _fresh(opts)
    t = wh.read_csv(path, name="t", **kw)
    assert len(t) == len(ref)
    for i in range(len(ref)):
        tr = wh.trace_to_file(t, row=i)
        assert len(tr) == 1 and tr[0].row == i
        line = tr[0].line
        if line is None:
            assert tr.reasons and any("line" in r for r in tr.reasons), tr.reasons
        else:
            assert line == lines[int(ref["id"].iloc[i])], (i, line, lines, text)


def test_whitespace_line_with_nrows(tmp_path):
    """The reported case: a whitespace-only line and nrows= gave every later row the line before its own."""
    p = tmp_path / "w.csv"
    p.write_text("a,b\n1,2\n   \n3,4\n5,6\n7,8\n")
    wh.reset()
    t = wh.read_csv(p, name="t", nrows=3)
    assert [wh.trace_to_file(t, row=i)[0].line for i in range(3)] == [2, 4, 5]
    wh.reset()
    t = wh.read_csv(p, name="t")
    assert [wh.trace_to_file(t, row=i)[0].line for i in range(4)] == [2, 4, 5, 6]


def test_a_line_of_none_says_why(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("a,b\nskipped\n1,2\n")
    wh.reset()
    t = wh.read_csv(p, name="t", skiprows=[1])  # a list of lines is followed
    assert wh.trace_to_file(t, row=0)[0].line == 3
    wh.reset()
    t = wh.read_csv(p, name="t", sep=None, engine="python")  # a separator sniffed from the file is not
    tr = wh.trace_to_file(t, row=0)
    assert tr[0].line is None and tr.complete
    assert any("t: rows have no file lines" in r for r in tr.reasons), tr.reasons
    wh.reset()
    t = wh.read_csv(p, name="t", comment="s")  # comments are followed
    assert wh.trace_to_file(t, row=0)[0].line == 3
    wh.reset()
    f = wh.track_frame(pd.DataFrame({"a": [1, 2]}), name="m")
    tr = wh.trace_to_file(f, row=1)
    assert tr[0].line is None and any("memory" in r for r in tr.reasons), tr.reasons
