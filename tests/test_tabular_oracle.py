"""Property tests: whence's pandas lineage against a brute-force oracle on random pandas pipelines.

Every example is a random chain of ordinary pandas code (tests/tabular_strategies.py) over two tracked
frames ``a`` and ``b``: filters, sorts, head/tail, iloc/loc, dropna, drop_duplicates, fillna, astype,
rename, column arithmetic, set_index/reset_index, merges (every ``how``), group-by aggregations and
transforms, concat on both axes, get_dummies and melt, maybe ending in a Series or a numpy array.  The very
same code runs on plain pandas frames, where the oracle computes the lineage sets of every cell by
definition.  A failing example prints as a runnable script.

Checked for every example:

* the tracked results equal plain pandas' (values, dtypes, index, columns, ``to_csv``), and no hidden
  column shows;
* ``backward`` of single cells, of whole rows (``rows=``) and of the whole output, with and without
  ``control=True``, equals the oracle's set, and is FULL;
* ``forward`` of source cells equals the oracle's inverse, and the inverse of whence's own per-cell
  ``backward``;
* ``trace_to_file`` gives the oracle's source rows and columns (and, for ``read_csv`` sources, lines);
* through an operation whence does not cover: a ``PartialLineageWarning`` at that operation, answers
  marked PARTIAL, and a superset of the truth.

``WHENCE_ORACLE_SCALE`` multiplies the number of examples (default 1).
"""

from __future__ import annotations

import os
import pathlib
import random
import sys
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
wh = pytest.importorskip("whence")
import whence.tabular  # noqa: E402,F401  (installs the pandas wrappers before any pipeline is drawn)
import tabular_strategies as T  # noqa: E402

SCALE = float(os.environ.get("WHENCE_ORACLE_SCALE", "1"))


def cfg(n, **kw):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None, report_multiple_bugs=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much], **kw)


# ----------------------------------------------------------------------------------------------------------
# replay on whence
# ----------------------------------------------------------------------------------------------------------

def replay(p, csv_paths=None):
    """Run the pipeline's code on tracked frames; return the namespace and the PartialLineageWarnings of
    each step."""
    wh.reset()
    ns = {"pd": pd, "np": np}
    for name, df in p.sources.items():
        if csv_paths:
            ns[name] = wh.read_csv(csv_paths[name], name=name)
        else:
            ns[name] = wh.track_frame(df.copy(), name=name)
    warns = {}
    for var, code, step in p.lines:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            exec(code, ns)
        warns[var] = [str(x.message) for x in w if issubclass(x.category, wh.PartialLineageWarning)]
    return ns, warns


def as_plain(y):
    if isinstance(y, pd.DataFrame):
        return pd.DataFrame(y)
    if isinstance(y, pd.Series):
        return pd.Series(y)
    return np.asarray(y)


def check_results(p, ns, warns):
    """Values, types, hidden columns, to_csv, and the PartialLineageWarnings of every step."""
    ctx = "\n" + p.script()
    for var, code, step in p.lines:
        y, R = ns[var], p.pns[var]
        if isinstance(R, pd.DataFrame):
            assert type(y).__name__ == "TrackedFrame", f"{var} is a {type(y).__name__}{ctx}"
            assert not any(str(c).startswith("__") for c in y.columns), f"hidden column in {var}{ctx}"
            assert list(y.columns) == list(R.columns), ctx
            assert y.to_csv() == R.to_csv(), f"{var}.to_csv() differs from pandas'{ctx}"
        elif isinstance(R, pd.Series):
            assert type(y).__name__ == "TrackedSeries", f"{var} is a {type(y).__name__}{ctx}"
            assert y.to_csv() == R.to_csv(), f"{var}.to_csv() differs from pandas'{ctx}"
        else:
            assert wh.is_tracked(y), f"{var} is a {type(y).__name__}, not a TrackedArray{ctx}"
        try:
            T.plain_equal(as_plain(y), R)
        except AssertionError as e:
            raise AssertionError(f"{var} differs from plain pandas: {e}{ctx}") from None
        if step.covered:
            assert not warns[var], f"PartialLineageWarning at a covered step {var}: {warns[var]}{ctx}"
        else:
            assert warns[var], f"no PartialLineageWarning at {code!r} ({step.what}){ctx}"


def result_set(res):
    return {(name, int(r), int(c)) for name, arr in res.items() for r, c in np.asarray(arr).reshape(-1, 2)}


def fmt(cells):
    return sorted(cells)


def compare(got, complete, exp, partial, ctx):
    if partial:
        assert not complete, f"answer through an uncovered operation is marked FULL: {ctx}"
        missing = exp - got
        assert not missing, f"PARTIAL answer is not a superset: missing {fmt(missing)}\n got {fmt(got)}\n{ctx}"
    else:
        assert complete, f"answer is PARTIAL on covered operations: {ctx}"
        if got != exp:
            raise AssertionError(f"{ctx}\n expected {fmt(exp)}\n got      {fmt(got)}\n missing {fmt(exp - got)}\n"
                                 f" extra   {fmt(got - exp)}")


def output_vars(p, rng, also_intermediate=True):
    out = [p.final]
    mids = [v for v, _, _ in p.lines[:-1]]
    if also_intermediate and mids:
        out.append(rng.choice(mids))
    return out


def partial_upto(p, var):
    for v, _, s in p.lines:
        if not s.covered:
            return True
        if v == var:
            return False
    return False


def sample(rng, items, k):
    items = list(items)
    return items if len(items) <= k else rng.sample(items, k)


# ----------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------

def check_backward(p, ns, var, rng, k=8, control=(False, True)):
    O, y = p.oracle[var], ns[var]
    partial = partial_upto(p, var)
    script = p.script()
    cells = O.cells()
    for cell in sample(rng, cells, k):
        for ctl in control:
            res = wh.backward(y, cell, control=ctl)
            compare(result_set(res), res.complete, O.lin(cell, ctl), partial,
                    f"wh.backward({var}, {cell}{', control=True' if ctl else ''})\n{script}")
    n = O.shape[0]
    if n:
        rows = sorted(set(rng.choice(range(n)) for _ in range(rng.randint(1, 3))))
        for ctl in control:
            exp = T.union(O.lin(cell, ctl) for cell in cells if cell[0] in rows)
            res = wh.backward(y, rows=rows, control=ctl)
            compare(result_set(res), res.complete, exp, partial,
                    f"wh.backward({var}, rows={rows}{', control=True' if ctl else ''})\n{script}")
    if len(O.shape) == 2 and O.shape[1]:
        cols = sorted(set(rng.choice(range(O.shape[1])) for _ in range(rng.randint(1, 2))))
        exp = T.union(O.lin(cell) for cell in cells if cell[1] in cols)
        res = wh.backward(y, columns=cols)
        compare(result_set(res), res.complete, exp, partial, f"wh.backward({var}, columns={cols})\n{script}")
    for ctl in control:
        exp = T.union(O.lin(cell, ctl) for cell in cells)
        res = wh.backward(y, control=ctl)
        compare(result_set(res), res.complete, exp, partial,
                f"wh.backward({var}{', control=True' if ctl else ''})\n{script}")


def source_cells(p):
    return [(name, r, c) for name, df in p.sources.items() for r in range(df.shape[0]) for c in range(df.shape[1])]


def check_forward(p, ns, var, rng, k=6, own_inverse=True):
    O, y = p.oracle[var], ns[var]
    script = p.script()
    cells = O.cells()
    srcs = sample(rng, source_cells(p), k)
    partial = partial_upto(p, var)
    mine = None
    if own_inverse and not partial and len(cells) <= 150:
        mine = {cell: result_set(wh.backward(y, cell)) for cell in cells}
    for (name, r, c) in srcs:
        for ctl in (False, True):
            got = {tuple(int(v) for v in row) for row in wh.forward(name, (r, c), y, control=ctl)}
            exp = {cell for cell in cells if (name, r, c) in O.lin(cell, ctl)}
            ctx = f"wh.forward({name!r}, ({r}, {c}), {var}{', control=True' if ctl else ''})\n{script}"
            if partial:
                assert exp <= got, f"{ctx}\n forward misses {sorted(exp - got)}"
            elif got != exp:
                raise AssertionError(f"{ctx}\n expected {sorted(exp)}\n got      {sorted(got)}")
            if mine is not None and not ctl:
                inv = {cell for cell, s in mine.items() if (name, r, c) in s}
                assert got == inv, f"{ctx}\n forward {sorted(got)} is not the inverse of backward {sorted(inv)}"


def expected_trace(p, O, i, control=False):
    cells = [cell for cell in O.cells() if cell[0] == i]
    s = T.union(O.lin(cell, control) for cell in cells)
    rows = {}
    for name, r, c in s:
        rows.setdefault((name, r), set()).add(c)
    out = []
    for (name, r) in sorted(rows):
        cols = list(p.sources[name].columns)
        out.append((name, r, tuple(cols[c] for c in sorted(rows[(name, r)]))))
    return out


def check_trace(p, ns, var, rng, k=2, csv=False):
    O, y = p.oracle[var], ns[var]
    n = O.shape[0]
    partial = partial_upto(p, var)
    if not n or partial:
        return
    script = p.script()
    for i in sample(rng, range(n), k):
        for ctl in (False, True):
            tr = wh.trace_to_file(y, row=i, control=ctl)
            got = [(s.table, s.row, tuple(s.columns)) for s in tr]
            exp = expected_trace(p, O, i, ctl)
            ctx = f"wh.trace_to_file({var}, row={i}{', control=True' if ctl else ''})\n{script}"
            assert tr.complete, f"PARTIAL trace on covered operations: {ctx}"
            if got != exp:
                raise AssertionError(f"{ctx}\n expected {exp}\n got      {got}")
            for s in tr:
                if csv:
                    assert s.line == s.row + 2, f"{ctx}\n row {s.row} of {s.table} is on line {s.row + 2}, got {s.line}"
                    assert s.path is not None and os.path.basename(s.path) == f"{s.table}.csv", ctx
                else:
                    assert s.line is None and s.path is None, ctx


# ----------------------------------------------------------------------------------------------------------
# the properties
# ----------------------------------------------------------------------------------------------------------

@cfg(150)
@given(T.pipelines(), st.randoms(use_true_random=False))
def test_chains_backward(p, rng):
    """Random chains of covered operations: every answer FULL and equal to the oracle's."""
    ns, warns = replay(p)
    check_results(p, ns, warns)
    for var in output_vars(p, rng):
        check_backward(p, ns, var, rng)


@cfg(80)
@given(T.pipelines(ops=tuple(T.ROW_OPS * 2 + ["merge", "groupby", "concat", "transform", "melt", "dummies"]),
                   min_len=2, max_len=5),
       st.randoms(use_true_random=False))
def test_chains_relational(p, rng):
    """Chains heavy in merges, group-bys and concats (where lineage fans in and out)."""
    ns, warns = replay(p)
    check_results(p, ns, warns)
    for var in output_vars(p, rng):
        check_backward(p, ns, var, rng, k=6)
    check_forward(p, ns, p.final, rng, k=4)


@cfg(80)
@given(T.pipelines(), st.randoms(use_true_random=False))
def test_chains_forward(p, rng):
    """forward of random source cells equals the oracle's inverse and the inverse of backward."""
    ns, warns = replay(p)
    check_forward(p, ns, p.final, rng)


@cfg(60)
@given(T.pipelines(terminal=0.5), st.randoms(use_true_random=False))
def test_chains_trace_to_file(p, rng):
    ns, warns = replay(p)
    check_trace(p, ns, p.final, rng)


@cfg(40)
@given(T.pipelines(csv=True, max_len=4, terminal=0.3), st.randoms(use_true_random=False))
def test_read_csv_sources(p, rng):
    """The same with sources read by wh.read_csv: rows traced to their file and line."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, df in p.sources.items():
            paths[name] = os.path.join(tmp, f"{name}.csv")
            df.to_csv(paths[name], index=False)
        ns, warns = replay(p, csv_paths=paths)
        check_results(p, ns, warns)
        check_backward(p, ns, p.final, rng, k=4)
        check_trace(p, ns, p.final, rng, csv=True)


@cfg(60)
@given(T.pipelines(uncovered=True, max_len=4, terminal=0.2), st.randoms(use_true_random=False))
def test_uncovered_ops_are_partial_supersets(p, rng):
    """rolling, ffill, bfill, shift, cumsum, diff, rank: a PartialLineageWarning, PARTIAL answers, and a
    superset of the true lineage (never silently wrong)."""
    ns, warns = replay(p)
    check_results(p, ns, warns)
    check_backward(p, ns, p.final, rng, k=6)
    check_forward(p, ns, p.final, rng, k=3)
