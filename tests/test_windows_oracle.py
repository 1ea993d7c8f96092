"""The time-series family against a brute-force oracle: windows, lags, cumulative ops, rank, fills, time bins,
their group-wise forms and ``merge_asof``.

Every example draws a small frame (floats with NaN, int keys with duplicates and NaN, a datetime column and
maybe a datetime index, unsorted, with duplicates), maybe a first step that reorders or filters its rows,
then one or two operations with random parameters (window sizes, ``min_periods``, ``center``, ``closed``,
time windows, ``periods``, ``limit``, ...).  The same code runs on plain pandas.  The oracle computes, for
every output cell, the set of source cells by the definition in docs/semantics.md, with Python loops over
rows; which rows a window holds is read off plain pandas itself (a window's ``apply`` over a column of row
positions, a bin's ``agg`` over row positions, a row-id column through ``merge_asof``), never off whence.

Checked for every example: values identical to plain pandas; ``backward`` of every cell (and of whole rows)
equals the oracle and is FULL (or, where the rule is PARTIAL, a superset with a warning); ``forward`` of
source cells is the oracle's inverse; ``trace_to_file`` lists the oracle's source rows.  A perturbation check
then keeps the oracle honest: changing a source cell outside an output cell's set never changes its value.
"""

from __future__ import annotations

import pathlib
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
wh = pytest.importorskip("whence")
import strategies as S  # noqa: E402

cfg = S.cfg
COLS = ["x", "y", "k", "t"]


# ----------------------------------------------------------------------------------------------------------
# source frames
# ----------------------------------------------------------------------------------------------------------

@st.composite
def frames(draw, min_rows=0, max_rows=12):
    n = draw(st.integers(min_rows, max_rows))
    fl = st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.0, -1.5, 3.25, 7.0]))
    x = [np.nan if v is None else v for v in draw(st.lists(fl, min_size=n, max_size=n))]
    y = [np.nan if v is None else v for v in draw(st.lists(fl, min_size=n, max_size=n))]
    k = draw(st.lists(st.one_of(st.sampled_from([1.0, 2.0, 3.0]), st.just(np.nan) if draw(st.booleans())
                                else st.just(1.0)), min_size=n, max_size=n))
    hours = draw(st.lists(st.integers(0, 96), min_size=n, max_size=n))
    if draw(st.booleans()):
        hours = sorted(hours)
    t = pd.to_datetime("2024-01-01") + pd.to_timedelta(hours, unit="h")
    df = pd.DataFrame({"x": x, "y": y, "k": k, "t": t})
    if draw(st.booleans()):
        df.index = pd.DatetimeIndex(t, name="ts")
    return df


# ----------------------------------------------------------------------------------------------------------
# the oracle: per-cell sets of (row, col) source cells
# ----------------------------------------------------------------------------------------------------------

def _reg_apply(reg):
    def f(a):
        reg.append(frozenset(int(v) for v in np.asarray(a)))
        return float(len(reg) - 1)
    return f


def _rows_from_reg(vals, reg):
    return [reg[int(v)] if v == v else frozenset() for v in np.asarray(vals, float)]


def window_rows(P, expr):
    """Rows of each window of ``expr`` (a rolling/expanding call on ``P``, written with ``{v}`` for the
    frame), read off pandas: the window's ``apply`` over a column of row positions."""
    H = P.copy()
    H["x"] = H["y"] = np.arange(len(P), dtype=float)
    reg = []
    out = eval(expr.format(v="H") + ".apply(f, raw=True)", {"H": H, "f": _reg_apply(reg), "pd": pd})
    if isinstance(out, pd.DataFrame):
        out = out.iloc[:, 0]
    return _rows_from_reg(out.to_numpy(), reg), out


def group_codes(P, dropna=True):
    g = P.groupby("k", dropna=dropna).ngroup()
    return [int(c) if c == c else -1 for c in g.to_numpy(dtype=float)]


def members(codes):
    d = {}
    for i, c in enumerate(codes):
        if c >= 0:
            d.setdefault(c, []).append(i)
    return d


def fill_rows(col, codes, forward, limit):
    n = len(col)
    out = []
    seq = range(n)
    for i in seq:
        if not pd.isna(col[i]):
            out.append([i])
            continue
        if codes[i] < 0 and codes is not None:
            out.append(None)
            continue
        step = -1 if forward else 1
        j, d = i + step, 1
        found = None
        while 0 <= j < n and (limit is None or d <= limit):
            if codes[j] == codes[i]:
                if not pd.isna(col[j]):
                    found = j
                    break
                d += 1
            j += step
        out.append([found] if found is not None else [i])
    return out


class Oracle:
    """Cells of a frame ``P`` whose rows come from source rows ``rid``: cell (i, c) is {(rid[i], c)}."""

    def __init__(self, P, rid, off):
        self.P, self.rid, self.off = P, list(rid), off  # off: 1 where the source's index is a column

    def cell(self, i, col):
        return frozenset([(self.rid[i], COLS.index(col) + self.off)])

    def rows_cells(self, rows, col):
        out = set()
        for r in rows:
            out |= self.cell(r, col)
        return frozenset(out)


def expected(O, op, prm):
    """(plain result, {(out_row, out_col): set}, key control per out_row or None) of operation ``op``."""
    P = O.P
    n = len(P)
    col = prm.get("col", "x")
    cols = [col]
    rowsets = None  # out row -> rows of P (same for every column)
    own = None      # out row -> row of P it sits on
    per_col = {}
    keyctl = None
    if op in ("rolling", "expanding", "grolling", "gexpanding"):
        rows, res = window_rows(P, prm["expr"])
        rowsets = rows
    elif op == "ewm":
        mp = max(prm["mp"], 1)
        rowsets = [list(range(i + 1)) if i + 1 >= mp else [] for i in range(n)]
    elif op in ("cumsum", "cummax"):
        rowsets = [list(range(i + 1)) for i in range(n)]
    elif op == "shift":
        p = prm["p"]
        rowsets = [[i - p] if 0 <= i - p < n else [] for i in range(n)]
    elif op in ("diff", "pct_change"):
        p = prm["p"]
        rowsets = [([i - p, i] if p else [i]) if 0 <= i - p < n else [] for i in range(n)]
    elif op == "rank":
        rowsets = [list(range(n)) for _ in range(n)]
    elif op in ("ffill", "bfill"):
        cols = ["x", "y"]
        for c in cols:
            fr = fill_rows(P[c].to_numpy(), [0] * n, op == "ffill", prm["limit"])
            per_col[c] = [r if r is not None else [] for r in fr]
    elif op == "interpolate":
        v = P[col].to_numpy()
        valid = [i for i in range(n) if not pd.isna(v[i])]
        R = pd.Series(v).interpolate(limit=prm["limit"], limit_direction=prm["dir"]).to_numpy()
        rs = []
        for i in range(n):
            if not pd.isna(v[i]) or pd.isna(R[i]):
                rs.append([i])
            else:
                prev = [j for j in valid if j < i][-1:]
                nxt = [j for j in valid if j > i][:1]
                rs.append(prev + nxt)
        rowsets = rs
    elif op.startswith("g"):
        codes = group_codes(P)
        mem = members(codes)
        pos = {}
        for g, ms in mem.items():
            for kk, i in enumerate(ms):
                pos[i] = (g, kk)
        rowsets = []
        for i in range(n):
            if op in ("gshift", "gdiff") and prm["p"] == 0:
                rowsets.append([i])  # shift(0) is a copy and diff(0) is x - x, rows in no group included
                continue
            if codes[i] < 0:
                rowsets.append([])
                continue
            g, kk = pos[i]
            ms = mem[g]
            p = prm.get("p", 1)
            if op == "gshift":
                rowsets.append([ms[kk - p]] if 0 <= kk - p < len(ms) else [])
            elif op == "gdiff":
                rowsets.append([ms[kk - p], i] if 0 <= kk - p < len(ms) else [])
            elif op in ("gcumsum", "gcumcount"):
                rowsets.append(ms[:kk + 1])
            elif op == "grank":
                rowsets.append(list(ms))
            elif op == "gffill":
                rowsets.append(None)
        if op == "gffill":
            fr = fill_rows(P[col].to_numpy(), codes, True, prm["limit"])
            rowsets = [r if (r is not None and codes[i] >= 0) else [] for i, r in enumerate(fr)]
            # a non-NA value of a row in no group becomes NA: a constant
        if op == "gcumcount":
            cols = ["k"]
        keyctl = [O.rows_cells(mem[codes[i]], "k") if codes[i] >= 0 else frozenset() for i in range(n)]
    exp = {}
    if per_col:
        for j, c in enumerate(cols):
            for i in range(n):
                exp[(i, j)] = O.rows_cells(per_col[c][i], c)
    elif op in ("grolling", "gexpanding"):
        order = np.concatenate([np.array(v, np.int64) for v in members(group_codes(P)).values()]) \
            if n else np.zeros(0, np.int64)
        for r in range(len(rowsets)):
            exp[(r, 0)] = O.rows_cells(rowsets[r], col)
        own = order
    else:
        src_col = "k" if op == "gcumcount" else col
        for i in range(len(rowsets)):
            exp[(i, 0)] = O.rows_cells(rowsets[i], src_col)
    return exp, keyctl, own


# ----------------------------------------------------------------------------------------------------------
# random operations
# ----------------------------------------------------------------------------------------------------------

@st.composite
def operations(draw, P):
    n = len(P)
    op = draw(st.sampled_from(["rolling", "rolling", "trolling", "expanding", "ewm", "cumsum", "cummax", "shift",
                               "diff", "pct_change", "rank", "ffill", "bfill", "interpolate", "gshift", "gdiff",
                               "gcumsum", "gcumcount", "grank", "gffill", "grolling", "gexpanding"]))
    col = draw(st.sampled_from(["x", "y"]))
    prm = {"col": col}
    # pandas' own RollingGroupBy raises (np.concatenate of no group) on rows that are all in no group
    assume(not (op in ("grolling", "gexpanding") and n and P["k"].isna().all()))
    if op == "rolling":
        w = draw(st.integers(1, 5))
        mp = draw(st.one_of(st.none(), st.integers(0, w)))
        center = draw(st.booleans())
        closed = draw(st.sampled_from([None, "right", "both"]))
        agg = draw(st.sampled_from(["mean", "sum", "max", "count", "std"]))
        prm["expr"] = f"{{v}}[{col!r}].rolling({w}, min_periods={mp}, center={center}, closed={closed!r})"
        code = prm["expr"] + f".{agg}()"
    elif op == "trolling":
        op = "rolling"
        win = draw(st.sampled_from(["2h", "5h", "1D"]))
        closed = draw(st.sampled_from([None, "left", "both", "neither"]))
        mp = draw(st.sampled_from([None, 1, 2]))
        if isinstance(P.index, pd.DatetimeIndex) and P.index.is_monotonic_increasing and draw(st.booleans()):
            prm["expr"] = f"{{v}}[{col!r}].rolling({win!r}, min_periods={mp}, closed={closed!r})"
        elif P["t"].is_monotonic_increasing:
            prm["expr"] = f"{{v}}[[{col!r}, 't']].rolling({win!r}, on='t', min_periods={mp}, closed={closed!r})"
            prm["on"] = True
        else:
            prm["expr"] = f"{{v}}[{col!r}].rolling(2, min_periods=1)"
        code = prm["expr"] + ".sum()"
    elif op == "expanding":
        mp = draw(st.integers(0, 3))
        prm["expr"] = f"{{v}}[{col!r}].expanding({mp})"
        code = prm["expr"] + f".{draw(st.sampled_from(['mean', 'min', 'count']))}()"
    elif op == "ewm":
        mp = draw(st.integers(0, 3))
        prm["mp"] = mp
        code = f"{{v}}[{col!r}].ewm(alpha=0.5, min_periods={mp}, adjust={draw(st.booleans())}).mean()"
    elif op in ("cumsum", "cummax"):
        code = f"{{v}}[{col!r}].{op}(skipna={draw(st.booleans())})"
    elif op in ("shift", "diff", "pct_change"):
        p = draw(st.integers(-3, 3))
        prm["p"] = p
        extra = ", fill_method=None" if op == "pct_change" and pd.__version__ < "3" else ""
        code = f"{{v}}[{col!r}].{op}({p}{extra})"
    elif op == "rank":
        code = f"{{v}}[{col!r}].rank(method={draw(st.sampled_from(['average', 'min', 'first']))!r}, " \
               f"pct={draw(st.booleans())})"
    elif op in ("ffill", "bfill"):
        prm["limit"] = draw(st.sampled_from([None, 1, 2]))
        code = f"{{v}}[['x', 'y']].{op}(limit={prm['limit']})"
    elif op == "interpolate":
        prm["limit"] = draw(st.sampled_from([None, 1, 2]))
        prm["dir"] = draw(st.sampled_from(["forward", "backward", "both"]))
        code = f"{{v}}[{col!r}].interpolate(limit={prm['limit']}, limit_direction={prm['dir']!r})"
    elif op in ("gshift", "gdiff"):
        p = draw(st.integers(-2, 2))
        prm["p"] = p
        code = f"{{v}}.groupby('k')[{col!r}].{op[1:]}({p})"
        if draw(st.booleans()):
            code = f"{{v}}.groupby('k')[{col!r}].transform({op[1:]!r}, {p})"
    elif op in ("gcumsum", "grank"):
        code = f"{{v}}.groupby('k')[{col!r}].{op[1:]}()"
        if draw(st.booleans()):
            code = f"{{v}}.groupby('k')[{col!r}].transform({op[1:]!r})"
    elif op == "gcumcount":
        code = "{v}.groupby('k').cumcount()"
    elif op == "gffill":
        prm["limit"] = draw(st.sampled_from([None, 1]))
        code = f"{{v}}.groupby('k')[{col!r}].ffill(limit={prm['limit']})"
    elif op == "grolling":
        w = draw(st.integers(1, 4))
        mp = draw(st.one_of(st.none(), st.integers(0, w)))
        prm["expr"] = f"{{v}}.groupby('k')[{col!r}].rolling({w}, min_periods={mp}, center={draw(st.booleans())})"
        code = prm["expr"] + ".mean()"
    else:  # gexpanding
        prm["expr"] = f"{{v}}.groupby('k')[{col!r}].expanding({draw(st.integers(0, 2))})"
        code = prm["expr"] + ".sum()"
    return op, prm, code


PRE = {
    "none": None,
    "sort": "{v}.sort_values('y', kind='stable')",
    "filter": "{v}[{v}['k'] != 3.0]",
    "reverse": "{v}.iloc[::-1]",
}


def run_pre(pre, df):
    if PRE[pre] is None:
        return df, list(range(len(df)))
    H = df.assign(__rid=np.arange(len(df)))
    out = eval(PRE[pre].format(v="H"), {"H": H})
    return df.iloc[out["__rid"].to_numpy()], out["__rid"].tolist()


def as_set(res):
    return {(r, int(i), int(c)) for r, arr in res.items() for i, c in np.asarray(arr).reshape(-1, 2)}


def to_src(cells):
    return {("s", r, c) for r, c in cells}


def cell_key(y, i, j):
    return i if isinstance(y, pd.Series) else (i, j)


def src_off(df):
    # the default 0..n-1 range is no source column; any other index (a reversed RangeIndex too) is the first
    return 0 if isinstance(df.index, pd.RangeIndex) and df.index.equals(pd.RangeIndex(len(df))) else 1


def check_example(df, pre, op, prm, code):
    wh.reset()
    off = src_off(df)
    t = wh.track_frame(df.copy(), name="s")
    P, rid = run_pre(pre, df)
    ns = {"pd": pd, "t": t}
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        warnings.simplefilter("ignore", FutureWarning)
        v = eval(PRE[pre].format(v="t"), ns) if PRE[pre] else t
        y = eval(code.format(v="v"), {"v": v, "pd": pd})
        R = eval(code.format(v="P"), {"P": P, "pd": pd})
    ctx = f"\npre={pre} code={code}\n{df!r}"
    assert type(y).__name__ in ("TrackedSeries", "TrackedFrame"), ctx
    assert y.to_csv() == R.to_csv(), f"values differ from pandas{ctx}"
    exp, keyctl, own = expected(Oracle(P, rid, off), op, prm)
    two = isinstance(y, pd.DataFrame)
    nout = len(R)
    ncol = y.shape[1] if two else 1
    if prm.get("on") and "t" in getattr(y, "columns", ()):
        ncol = 1  # the 't' column of a time window on= is the row's own: checked below
        for i in range(nout):
            got = as_set(wh.backward(y, (i, 1)))
            assert got == to_src(Oracle(P, rid, off).cell(i, "t")), f"on= column, row {i}{ctx}"
    assert len({k[0] for k in exp}) == nout or nout == 0, ctx
    for (i, j), s in exp.items():
        if j >= ncol:
            continue
        res = wh.backward(y, cell_key(y, i, j))
        assert res.complete, f"PARTIAL at {(i, j)}{ctx}"
        got = as_set(res)
        assert got == to_src(s), f"cell {(i, j)}: expected {sorted(s)} got {sorted(got)}{ctx}"
        if keyctl is not None and pre == "none" and own is None:
            got_c = as_set(wh.backward(y, cell_key(y, i, j), control=True))
            assert got_c == to_src(s | keyctl[i]), f"control of {(i, j)}: expected {sorted(s | keyctl[i])} " \
                                                   f"got {sorted(got_c)}{ctx}"
    # forward is the inverse of backward
    n = len(df)
    for r in range(min(n, 4)):
        for c in (COLS.index(prm.get("col", "x")) + off, 2 + off):
            fw = {tuple(int(v) for v in row) for row in wh.forward("s", (r, c), y)}
            inv = {(i, j) if two else (i,) for (i, j), s in exp.items() if (r, c) in s and j < ncol}
            fw = {f for f in fw if not two or f[1] < ncol}
            assert fw == inv, f"forward of {(r, c)}: expected {sorted(inv)} got {sorted(fw)}{ctx}"
    # trace_to_file: the source rows of an output row
    for i in range(min(nout, 3)):
        tr = wh.trace_to_file(y, row=i)
        assert tr.complete, ctx
        rows = {s.row for s in tr}
        want = {r for (ii, j), s in exp.items() if ii == i for r, _ in s}
        if prm.get("on") and "t" in getattr(y, "columns", ()):
            want |= {r for r, _ in Oracle(P, rid, off).cell(i, "t")}
        assert rows == want, f"trace_to_file row {i}: expected {sorted(want)} got {sorted(rows)}{ctx}"
    return exp, R


def perturb_check(df, pre, code, exp, R, rnd, values_only=False):
    """Changing a source cell outside an output cell's set leaves that cell's value unchanged.

    ``values_only`` (fills): only a value changes, never whether the cell is NA, since NA-ness chooses the
    row copied (a control cell by the contract, as the condition of ``np.where``)."""
    n = len(df)
    if not n or not len(R):
        return
    _, rid0 = run_pre(pre, df)
    two = isinstance(R, pd.DataFrame)
    for _ in range(3):
        r = rnd.randrange(n)
        c = rnd.choice([0, 1])
        d2 = df.copy()
        old = d2.iat[r, c]
        if values_only and pd.isna(old):
            continue
        d2.iat[r, c] = 5.5 if pd.isna(old) else (np.nan if rnd.random() < 0.5 and not values_only else old + 11.0)
        P2, rid2 = run_pre(pre, d2)
        if rid2 != rid0:
            continue  # (the perturbation moved rows: a sort or filter on the changed cell)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            R2 = eval(code.format(v="P"), {"P": P2, "pd": pd})
        if R2.shape != R.shape or not R2.index.equals(R.index):
            continue  # (the perturbation moved rows: a sort or filter on the changed cell)
        A = R.to_numpy(dtype=object).reshape(len(R), -1)
        B = R2.to_numpy(dtype=object).reshape(len(R), -1)
        for (i, j), s in exp.items():
            if j >= A.shape[1] or (r, c + src_off(df)) in s:
                continue
            a, b = A[i, j], B[i, j]
            same = (pd.isna(a) and pd.isna(b)) or (not pd.isna(a) and not pd.isna(b) and np.isclose(a, b))
            assert same, f"cell {(i, j)} changed ({a} -> {b}) when source cell {(r, c)} changed, but its " \
                         f"lineage {sorted(s)} does not hold it\ncode={code} pre={pre}\n{df!r}"


@cfg(220)
@given(st.data(), st.randoms(use_true_random=False))
def test_window_family_against_oracle(data, rnd):
    df = data.draw(frames())
    pre = data.draw(st.sampled_from(list(PRE)))
    P, _ = run_pre(pre, df)
    op, prm, code = data.draw(operations(P))
    exp, R = check_example(df, pre, op, prm, code)
    perturb_check(df, pre, code, exp, R, rnd, values_only=op in ("ffill", "bfill", "interpolate", "gffill"))


# ----------------------------------------------------------------------------------------------------------
# time bins: resample and groupby(pd.Grouper(freq=...))
# ----------------------------------------------------------------------------------------------------------

def bin_rows(P, expr):
    """Rows of each time bin of ``expr`` (a resample or time group-by of ``P``), read off pandas: an ``apply``
    over a column of row positions."""
    H = P.copy()
    H["x"] = H["y"] = np.arange(len(P), dtype=float)
    reg = []

    def f(s):
        reg.append(frozenset(int(v) for v in np.asarray(s)))
        return float(len(reg) - 1)
    out = eval(expr.format(v="H") + "['x'].apply(f)", {"H": H, "f": f, "pd": pd})
    return _rows_from_reg(out.to_numpy(), reg)


@cfg(90)
@given(st.data())
def test_time_bins_against_oracle(data):
    df = data.draw(frames(max_rows=10))
    rule = data.draw(st.sampled_from(["6h", "1D", "2D"]))
    closed = data.draw(st.sampled_from([None, "left", "right"]))
    forms = [f"{{v}}.resample({rule!r}, on='t', closed={closed!r})",
             f"{{v}}.groupby(pd.Grouper(key='t', freq={rule!r}, closed={closed!r}))"]
    if isinstance(df.index, pd.DatetimeIndex):
        forms += [f"{{v}}.resample({rule!r}, closed={closed!r})", f"{{v}}.groupby(pd.Grouper(freq={rule!r}))"]
    expr = data.draw(st.sampled_from(forms))
    agg = data.draw(st.sampled_from(["sum", "mean", "max", "count", "first"]))
    col = data.draw(st.sampled_from(["x", "y"]))
    code = expr + f"[[{col!r}]].{agg}()"
    wh.reset()
    t = wh.track_frame(df.copy(), name="s")
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        y = eval(code.format(v="t"), {"t": t, "pd": pd})
    R = eval(code.format(v="P"), {"P": df, "pd": pd})
    ctx = f"\ncode={code}\n{df!r}"
    assert type(y).__name__ == "TrackedFrame" and y.to_csv() == R.to_csv(), f"values differ from pandas{ctx}"
    rows = bin_rows(df, expr)
    assert len(rows) == len(R), ctx
    O = Oracle(df, range(len(df)), src_off(df))
    for i in range(len(R)):
        res = wh.backward(y, (i, 0))
        exp = to_src(O.rows_cells(rows[i], col))
        assert res.complete and as_set(res) == exp, f"bin {i}: expected {sorted(exp)} got {sorted(as_set(res))}{ctx}"
    for r in range(min(len(df), 4)):
        c = COLS.index(col) + src_off(df)
        fw = {tuple(int(v) for v in row) for row in wh.forward("s", (r, c), y)}
        assert fw == {(i, 0) for i in range(len(R)) if r in rows[i]}, f"forward of {(r, c)}{ctx}"


# ----------------------------------------------------------------------------------------------------------
# merge_asof
# ----------------------------------------------------------------------------------------------------------

@cfg(90)
@given(st.data())
def test_merge_asof_against_oracle(data):
    left = data.draw(frames(max_rows=8)).sort_values("t", kind="stable").reset_index(drop=True)
    m = data.draw(st.integers(0, 8))
    hours = sorted(data.draw(st.lists(st.integers(0, 96), min_size=m, max_size=m)))
    right = pd.DataFrame({"t": pd.to_datetime("2024-01-01") + pd.to_timedelta(hours, unit="h"),
                          "z": data.draw(st.lists(st.sampled_from([1.0, 2.0, np.nan]), min_size=m, max_size=m)),
                          "k": data.draw(st.lists(st.sampled_from([1.0, 2.0]), min_size=m, max_size=m))})
    direction = data.draw(st.sampled_from(["backward", "forward", "nearest"]))
    tol = data.draw(st.sampled_from([None, "3h"]))
    by = data.draw(st.sampled_from([None, "k"]))
    if by is not None:
        left = left[left["k"].notna()].reset_index(drop=True)
    kw = f"on='t', direction={direction!r}" + (f", tolerance=pd.Timedelta({tol!r})" if tol else "") + \
         (f", by={by!r}" if by else "")
    code = f"pd.merge_asof(L, R, {kw})"
    wh.reset()
    tl, tr = wh.track_frame(left.copy(), name="s"), wh.track_frame(right.copy(), name="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        y = eval(code, {"L": tl, "R": tr, "pd": pd})
    R0 = eval(code, {"L": left, "R": right, "pd": pd})
    ctx = f"\ncode={code}\n{left!r}\n{right!r}"
    assert type(y).__name__ == "TrackedFrame" and y.to_csv() == R0.to_csv(), f"values differ{ctx}"
    rid = eval(code, {"L": left, "R": right.assign(__rid=np.arange(m, dtype=float)), "pd": pd})["__rid"].to_numpy()
    rc = {"t": 0, "z": 1, "k": 2}
    for i in range(len(R0)):
        matched = None if pd.isna(rid[i]) else int(rid[i])
        for j, lab in enumerate(R0.columns):
            if lab in ("x", "y", "t") or (lab == "k" and by):
                exp = {("s", i, COLS.index(lab))}
            elif lab == "k_x":
                exp = {("s", i, 2)}
            else:
                src = {"z": "z", "k_y": "k"}[lab]
                exp = set() if matched is None else {("r", matched, rc[src])}
            res = wh.backward(y, (i, j))
            assert res.complete and as_set(res) == exp, f"cell {(i, j)} ({lab}): expected {exp} got " \
                                                        f"{as_set(res)}{ctx}"
        got_c = as_set(wh.backward(y, (i, 0), control=True))
        keys_r = set() if matched is None else {("r", matched, 0)} | ({("r", matched, 2)} if by else set())
        exp_c = {("s", i, 0), ("s", i, 3)} | ({("s", i, 2)} if by else set()) | keys_r
        assert got_c == exp_c, f"control of row {i}: expected {exp_c} got {got_c}{ctx}"
