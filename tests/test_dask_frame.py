"""Dask frames against pandas frames and a brute-force oracle, on random pipelines.

Each example draws two small tables ``a`` and ``b``, writes ``a`` both as one CSV file and split into
several files (one dask partition each), and draws a chain of steps (filters, column arithmetic, selection,
rename, dropna, fillna, sort, merge of every ``how``, group-by aggregations).  The same code runs

- on pandas frames tracked by ``whence.read_csv`` over the single files,
- on dask frames tracked by ``whence.read_csv`` over the split files (a glob pattern),
- and through a brute-force oracle that carries, for every row, the set of source cells of every cell
  (and of the row's control cells) by the definition in docs/semantics.md.

Rows of a dask result come in another order than pandas', so results are compared as multisets of rows,
each row with its values and its per-cell lineage: ``backward`` (data and control), ``trace_to_file``
(with the file and line of the split file each row came from), and ``forward`` checked as the inverse of
``backward``.
"""

from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

dd = pytest.importorskip("dask.dataframe")
import whence as wh  # noqa: E402
import whence.dask as whd  # noqa: E402
from whence.errors import PartialLineageWarning  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

DTYPES_A = {"k": "int64", "v": "float64", "w": "float64", "s": "str"}
DTYPES_B = {"k": "int64", "z": "float64"}


@pytest.fixture(scope="module", autouse=True)
def _sync_scheduler():
    import dask
    with dask.config.set(scheduler="sync"):
        yield


# --- data ---------------------------------------------------------------------------------------------------

@st.composite
def tables(draw):
    na = draw(st.integers(2, 10))
    nb = draw(st.integers(1, 6))
    fl = st.one_of(st.sampled_from([0.0, 1.0, 2.5, -1.0]), st.just(np.nan))
    a = pd.DataFrame({
        "k": draw(st.lists(st.integers(0, 3), min_size=na, max_size=na)),
        "v": draw(st.lists(fl, min_size=na, max_size=na)),
        "w": draw(st.lists(fl, min_size=na, max_size=na)),
        "s": draw(st.lists(st.sampled_from(["x", "y", "zz"]), min_size=na, max_size=na)),
    })
    b = pd.DataFrame({"k": draw(st.lists(st.integers(0, 4), min_size=nb, max_size=nb)),
                      "z": draw(st.lists(fl, min_size=nb, max_size=nb))})
    cuts = sorted(set(draw(st.lists(st.integers(1, na - 1), min_size=1, max_size=3))))
    return a, b, cuts


# --- pipelines: (code, oracle step) ----------------------------------------------------------------------------

class Step:
    def __init__(self, code, kind, **kw):
        self.code, self.kind, self.kw = code, kind, kw

    def __repr__(self):
        return self.code


@st.composite
def pipelines(draw):
    """A list of steps on variable ``x`` (starting as ``a``); columns tracked to keep every step valid."""
    cols = {"k": "i", "v": "f", "w": "f", "s": "s"}
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        num = [c for c, t in cols.items() if t in "if"]
        choices = ["filter", "assign", "select", "rename", "dropna", "fillna", "sort"]
        if "k" in cols:  # group-bys and merges after group-bys too
            choices += ["merge", "groupby", "groupby"]
        what = draw(st.sampled_from(choices))
        if what == "filter" and num:
            c = draw(st.sampled_from(num))
            op = draw(st.sampled_from([">", "<=", "=="]))
            t = draw(st.sampled_from([0, 1, 2]))
            if draw(st.booleans()) and len(num) > 1:
                c2 = draw(st.sampled_from(num))
                code = f"x = x[(x[{c!r}] {op} {t}) | (x[{c2!r}] > 1)]"
                steps.append(Step(code, "filter", cols=[c, c2]))
            else:
                steps.append(Step(f"x = x[x[{c!r}] {op} {t}]", "filter", cols=[c]))
        elif what == "assign" and num:
            c1, c2 = draw(st.sampled_from(num)), draw(st.sampled_from(num))
            new = draw(st.sampled_from(["n1", "n2", c1]))
            steps.append(Step(f"x = x.assign({new}=x[{c1!r}] * 2 + x[{c2!r}])", "assign", new=new, cols=[c1, c2]))
            cols[new] = "f"
        elif what == "select" and len(cols) > 1:
            keep = draw(st.lists(st.sampled_from(list(cols)), min_size=1, max_size=len(cols), unique=True))
            steps.append(Step(f"x = x[{keep!r}]", "select", keep=keep))
            cols = {c: cols[c] for c in keep}
        elif what == "rename" and [c for c in cols if c != "k"]:
            c = draw(st.sampled_from([c for c in cols if c != "k"]))
            new = c + "r"
            steps.append(Step(f"x = x.rename(columns={{{c!r}: {new!r}}})", "rename", old=c, new=new))
            cols = {(new if k == c else k): t for k, t in cols.items()}
        elif what == "dropna":
            sub = draw(st.lists(st.sampled_from(list(cols)), min_size=1, max_size=2, unique=True))
            steps.append(Step(f"x = x.dropna(subset={sub!r})", "dropna", cols=sub))
        elif what == "fillna":
            steps.append(Step("x = x.fillna(0)", "fillna"))
        elif what == "sort" and num:
            c = draw(st.sampled_from(num))
            steps.append(Step(f"x = x.sort_values({c!r})", "sort", cols=[c]))
        elif what == "merge":
            how = draw(st.sampled_from(["inner", "left", "right", "outer"]))
            steps.append(Step(f"x = x.merge(b, on='k', how={how!r})", "merge", how=how))
            sfx = {"z"} & set(cols)
            for c in list(cols):
                if c in sfx:
                    cols[c + "_x"] = cols.pop(c)
            cols.update({("z_y" if sfx else "z"): "f"})
        elif what == "groupby":
            valc = [c for c in num if c != "k"]
            if not valc:
                continue
            c = draw(st.sampled_from(valc))
            fn = draw(st.sampled_from(["sum", "max", "count"]))
            as_index = draw(st.booleans())
            if draw(st.booleans()):
                code = f"x = x.groupby('k', as_index={as_index}).agg(t=({c!r}, {fn!r}))"
                steps.append(Step(code, "groupby", spec={"t": c}, as_index=as_index))
                cols = ({"k": "i"} if not as_index else {}) | {"t": "f"}
            else:
                code = f"x = x.groupby('k', as_index={as_index}).agg({{{c!r}: {fn!r}}})"
                steps.append(Step(code, "groupby", spec={c: c}, as_index=as_index))
                cols = ({"k": "i"} if not as_index else {}) | {c: "f"}
    return steps


# --- brute-force oracle -----------------------------------------------------------------------------------------

class Orc:
    """A plain frame and, per row, the source cells of each cell (``data[i][col]``) and of its control."""

    def __init__(self, df, data, ctrl):
        self.df, self.data, self.ctrl = df.reset_index(drop=True), data, ctrl


def orc_source(name, df):
    cols = list(df.columns)
    data = [{c: frozenset([(name, i, c)]) for c in cols} for i in range(len(df))]
    return Orc(df, data, [frozenset()] * len(df))


def _rows_cells(o, i, cols):
    return frozenset().union(*[o.data[i][c] for c in cols]) if cols else frozenset()


def orc_take(o, pos, extra_ctrl=None):
    pos = list(pos)
    ctrl = [o.ctrl[p] | (extra_ctrl[p] if extra_ctrl else frozenset()) for p in pos]
    return Orc(o.df.iloc[pos], [dict(o.data[p]) for p in pos], ctrl)


def orc_apply(o, step, ns, b):
    """The oracle's result of one step (plain pandas for the values; positions via a row-number column)."""
    df = o.df
    if step.kind in ("filter", "dropna", "sort"):
        d2 = df.assign(__p=np.arange(len(df)))
        r = eval(step.code.split("=", 1)[1].replace("x", "d2"), {"d2": d2, "np": np})  # noqa: S307
        pos = r["__p"].tolist()
        extra = [_rows_cells(o, i, step.kw["cols"]) for i in range(len(df))]
        return orc_take(o, pos, extra)
    if step.kind == "assign":
        r = eval(step.code.split("=", 1)[1], {"x": df, "np": np})  # noqa: S307
        data = [dict(d) for d in o.data]
        for i in range(len(df)):
            data[i][step.kw["new"]] = _rows_cells(o, i, step.kw["cols"])
        return Orc(r, data, o.ctrl)
    if step.kind == "select":
        keep = step.kw["keep"]
        return Orc(df[keep], [{c: d[c] for c in keep} for d in o.data], o.ctrl)
    if step.kind == "rename":
        old, new = step.kw["old"], step.kw["new"]
        return Orc(df.rename(columns={old: new}), [{(new if c == old else c): v for c, v in d.items()}
                                                   for d in o.data], o.ctrl)
    if step.kind == "fillna":
        return Orc(df.fillna(0), o.data, o.ctrl)
    if step.kind == "merge":
        bo = b
        left = df.assign(__pl=np.arange(len(df)))
        right = bo.df.assign(__pr=np.arange(len(bo.df)))
        r = left.merge(right, on="k", how=step.kw["how"])
        data, ctrl = [], []
        sfx = "z" in df.columns
        for pl, pr in zip(r["__pl"].tolist(), r["__pr"].tolist()):
            d, c = {}, frozenset()
            okl, okr = pl == pl, pr == pr
            if okl:
                pl = int(pl)
                for col in df.columns:
                    d[col + "_x" if (sfx and col == "z") else col] = o.data[pl][col]
                c |= o.ctrl[pl] | o.data[pl]["k"]
            else:
                for col in df.columns:
                    d[col + "_x" if (sfx and col == "z") else col] = frozenset()
            if okr:
                pr = int(pr)
                d["k"] = d["k"] | bo.data[pr]["k"]
                d["z_y" if sfx else "z"] = bo.data[pr]["z"]
                c |= bo.ctrl[pr] | bo.data[pr]["k"]
            else:
                d["z_y" if sfx else "z"] = frozenset()
            data.append(d)
            ctrl.append(c)
        return Orc(r.drop(columns=["__pl", "__pr"]), data, ctrl)
    if step.kind == "groupby":
        r = eval(step.code.split("=", 1)[1], {"x": df, "np": np})  # noqa: S307
        groups = df.assign(__p=np.arange(len(df))).groupby("k")["__p"].apply(list)
        keys = r["k"].tolist() if not step.kw["as_index"] else r.index.tolist()
        data, ctrl = [], []
        for kv in keys:
            mem = groups[kv]
            d = {out: frozenset().union(*[o.data[p][col] for p in mem]) for out, col in step.kw["spec"].items()}
            kc = frozenset().union(*[o.data[p]["k"] for p in mem])
            if not step.kw["as_index"]:
                d["k"] = kc
            data.append(d)
            ctrl.append(kc | frozenset().union(*[o.ctrl[p] for p in mem]))
        return Orc(r, data, ctrl)
    raise AssertionError(step.kind)


# --- running -----------------------------------------------------------------------------------------------------

def write_files(d, a, b, cuts):
    a.to_csv(os.path.join(d, "a.csv"), index=False)
    b.to_csv(os.path.join(d, "b.csv"), index=False)
    bounds = [0] + cuts + [len(a)]
    where = []
    for f, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        p = os.path.join(d, f"apart{f}.csv")
        a.iloc[lo:hi].to_csv(p, index=False)
        where += [(p, i + 2) for i in range(hi - lo)]
    return where


def run_pipeline(d, steps):
    wh.reset()
    ns_p = {"a": wh.read_csv(os.path.join(d, "a.csv"), name="a", dtype=DTYPES_A),
            "b": wh.read_csv(os.path.join(d, "b.csv"), name="b", dtype=DTYPES_B)}
    ns_d = {"a": wh.read_csv(os.path.join(d, "apart*.csv"), name="a", dtype=DTYPES_A),
            "b": whd.read_csv([os.path.join(d, "b.csv")], name="b", dtype=DTYPES_B)}
    for ns in (ns_p, ns_d):
        ns["x"] = ns["a"]
        for s in steps:
            exec(s.code, ns)  # noqa: S102
    return ns_p["x"], ns_d["x"]


def _key(values):
    # dask keeps strings as pyarrow strings (missing: <NA>); pandas' str dtype has NaN: both are "missing"
    return tuple("nan" if pd.isna(v) else repr(v) for v in values)


def _canon(values, data, full):
    """One output row, comparable and sortable: values, per-column cells, all cells with control."""
    return (_key(values), tuple((c, tuple(sorted(v))) for c, v in sorted(data.items())), tuple(sorted(full)))


def _cellset(res, cols_of):
    out = set()
    for name, cells in res.items():
        for r, c in np.asarray(cells).tolist():
            out.add((name, r, cols_of[name][c]))
    return frozenset(out)


def rows_pandas(x, cols_of):
    out = []
    vals = pd.DataFrame(x)
    for i in range(len(x)):
        data = {c: _cellset(wh.backward(x, (i, j)), cols_of) for j, c in enumerate(x.columns)}
        full = _cellset(wh.backward(x, rows=[i], control=True), cols_of)
        out.append(_canon(vals.iloc[i].tolist(), data, full))
    return sorted(out)


def rows_dask(x, cols_of):
    out = []
    vals = x.compute()
    for i in range(len(vals)):
        data = {c: _cellset(x.backward(i, columns=[c]), cols_of) for c in x.columns}
        full = _cellset(x.backward(i, control=True), cols_of)
        out.append(_canon(vals.iloc[i].tolist(), data, full))
    return sorted(out), vals


def rows_oracle(o):
    out = []
    for i in range(len(o.df)):
        data = {c: o.data[i][c] for c in o.df.columns}
        full = frozenset().union(*data.values()) | o.ctrl[i] if data else o.ctrl[i]
        out.append(_canon(o.df.iloc[i].tolist(), data, full))
    return sorted(out)


COLS = {"a": ["k", "v", "w", "s"], "b": ["k", "z"]}


@settings(max_examples=int(25 * float(os.environ.get("WHENCE_ORACLE_SCALE", "1"))), deadline=None,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(tables(), pipelines())
def test_random_pipelines_match_pandas_and_oracle(data, steps):
    a, b, cuts = data
    with tempfile.TemporaryDirectory() as d:
        where = write_files(d, a, b, cuts)
        with warnings.catch_warnings():
            warnings.simplefilter("error", PartialLineageWarning)
            xp, xd = run_pipeline(d, steps)
        script = "\n".join(s.code for s in steps)
        o = orc_source("a", a.astype({"k": "int64"}))
        ob = orc_source("b", b)
        for s in steps:
            o = orc_apply(o, s, None, ob)
        want = rows_oracle(o)
        got_p = rows_pandas(xp, COLS)
        got_d, vals = rows_dask(xd, COLS)
        assert list(vals.columns) == list(xp.columns), script
        assert got_p == want, f"pandas differs from the oracle\n{script}"
        assert got_d == want, f"dask differs from the oracle\n{script}"
        # trace_to_file: rows, columns, and the split file and line of every source row of a
        for i in range(len(vals)):
            tr = wh.trace_to_file(xd, row=i, control=True)
            assert tr.complete
            for r in tr:
                if r.table == "a":
                    assert (r.path, r.line) == where[r.row], script
            cells = {(r.table, r.row, c) for r in tr for c in r.columns}
            assert frozenset(cells) == rows_dask_full(xd, i), script
        # forward is the inverse of backward, for every source row of a and of b
        for src, n in (("a", len(a)), ("b", len(b))):
            if src not in {c[0] for row in got_d for c in row[2]}:  # (source, row, column) cells
                continue
            for control in (False, True):
                fw = xd.forward(src, rows=list(range(n)), control=control)
                inv = set()
                for i in range(len(vals)):
                    for j, c in enumerate(xd.columns):
                        cs = xd.backward(i, columns=[c], control=control)
                        if src in cs and len(cs[src]):
                            inv.add((i, j))
                assert set(map(tuple, fw.tolist())) == inv, script
            r0 = 0
            fw1 = {tuple(c) for c in xd.forward(src, rows=[r0]).tolist()}
            inv1 = {(i, j) for i in range(len(vals)) for j, c in enumerate(xd.columns)
                    if r0 in xd.backward(i, columns=[c]).get(src, np.zeros((0, 2), int))[:, 0]}
            assert fw1 == inv1, script


@settings(max_examples=int(10 * float(os.environ.get("WHENCE_ORACLE_SCALE", "1"))), deadline=None,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(tables(), pipelines(), st.sampled_from(["map_partitions(lambda p: p.copy())", "drop_duplicates()",
                                               "cumsum()", "replace(0, 1)"]))
def test_uncovered_step_warns_and_is_a_partial_superset(data, steps, uncovered):
    a, b, cuts = data
    with tempfile.TemporaryDirectory() as d:
        write_files(d, a, b, cuts)
        _, x = run_pipeline(d, steps)
        if uncovered == "cumsum()":
            x = x[[c for c in x.columns if c not in ("s",)]]
        with pytest.warns(PartialLineageWarning):
            y = eval(f"x.{uncovered}")  # noqa: S307
        assert not y.lineage_complete
        vals_x = x.compute()
        n = len(y.compute())
        for i in range(min(n, 4)):
            tr = wh.trace_to_file(y, row=i, control=True)
            assert not tr.complete and tr.reasons
            got = {(r.table, r.row, c) for r in tr for c in r.columns}
            # every cell of y derives from every cell of x: a superset of the lineage of any row of x
            for j in range(len(vals_x)):
                assert rows_dask_full(x, j) <= got


def rows_dask_full(x, i):
    return _cellset(x.backward(i, control=True), COLS)


# --- targeted tests ---------------------------------------------------------------------------------------------

@pytest.fixture
def parts(tmp_path):
    for i, body in enumerate(["k,v\n1,5\n2,6\n", "k,v\n1,7\n3,8\n", "k,v\n2,9\n"]):
        (tmp_path / f"p{i}.csv").write_text(body)
    return tmp_path


def test_read_csv_rule(parts):
    single = wh.read_csv(parts / "p0.csv", name="one")
    assert type(single).__name__ == "TrackedFrame"
    many = wh.read_csv(str(parts / "p*.csv"), name="many")
    assert isinstance(many, whd.DaskTrackedFrame) and many.npartitions == 3
    listed = wh.read_csv([parts / "p2.csv", parts / "p0.csv"], name="listed")
    assert listed.compute()["v"].tolist() == [9, 5, 6]
    assert listed.backward(1)["listed"].tolist() == [[1, 0], [1, 1]]
    with pytest.raises(ValueError):
        whd.read_csv(str(parts / "p*.csv"), blocksize="1MB")
    with pytest.raises(FileNotFoundError):
        whd.read_csv(str(parts / "nothing*.csv"))


def test_no_hidden_columns_leak(parts):
    t = whd.read_csv(str(parts / "p*.csv"), name="t")
    g = t.groupby("k").agg(total=("v", "sum"))
    m = t.merge(g.reset_index(), on="k")
    for x in (t, g, m):
        assert not any(str(c).startswith("__") for c in x.columns)
        assert not any(str(c).startswith("__") for c in x.compute().columns)
        assert "__wh" not in x.compute().to_csv() and "__wh" not in repr(x)
        assert not any(str(c).startswith("__") for c in x.head(2).columns)


def test_query_computes_only_needed_partitions(parts):
    t = whd.read_csv(str(parts / "p*.csv"), name="t")
    y = t[t["v"] > 5]
    assert y.backward(0)["t"].tolist() == [[1, 0], [1, 1]]
    assert ("part", 0) in y._cache and ("part", 2) not in y._cache


def test_uncovered_operation_warns_and_is_partial_superset(parts):
    t = whd.read_csv(str(parts / "p*.csv"), name="t")
    with pytest.warns(PartialLineageWarning):
        c = t.cumsum()
    assert not c.lineage_complete
    tr = wh.trace_to_file(c, row=0)
    assert not tr.complete and tr.reasons
    assert sorted({r.row for r in tr}) == list(range(5))  # all rows: a superset of the prefix
    with pytest.warns(PartialLineageWarning):
        s = t["v"].cumsum()
    assert s.backward(0)["t"].tolist() == [[i, 1] for i in range(5)]  # the series' cells, all rows
    f = c[c["v"] > 10]  # covered steps after an uncovered one stay PARTIAL
    assert not f.lineage_complete and not wh.trace_to_file(f, row=0).complete


def test_self_merge_and_chained_groupby(parts):
    t = whd.read_csv(str(parts / "p*.csv"), name="t")
    m = t.merge(t, on="k")
    vals = m.compute().reset_index(drop=True)
    for i in range(len(vals)):
        b = m.backward(i, columns=["v_x"])["t"]
        assert vals.loc[i, "v_x"] in {5: [5], 6: [6], 7: [7], 8: [8], 9: [9]}[vals.loc[i, "v_x"]]
        assert len(b) == 1
    g = m.groupby("k").agg(n=("v_y", "count"))
    g2 = g.reset_index().groupby("n").agg(keys=("k", "sum"))
    out = g2.compute()
    row = list(out.index).index(4)  # keys 1 and 2 have 2 rows each: 4 pairs
    cells = g2.backward(row)["t"]
    assert sorted(set(cells[:, 0].tolist())) == [0, 1, 2, 4] and set(cells[:, 1].tolist()) == {0}


def test_series_queries(parts):
    t = whd.read_csv(str(parts / "p*.csv"), name="t")
    s = (t["v"] * 2)[t["k"] > 1]
    assert s.compute().tolist() == [12, 16, 18]
    assert s.backward(1)["t"].tolist() == [[3, 1]]
    assert s.backward(1, control=True)["t"].tolist() == [[3, 0], [3, 1]]
    assert s.forward("t", rows=[4]).tolist() == [[2]]
    assert t["v"].sum().compute() == 35  # reductions to scalars are plain values


def test_to_dask_array_lineage(parts, tmp_path):
    wh.reset()
    (tmp_path / "r.csv").write_text("k,z\n1,0.5\n2,1.5\n3,2.5\n")
    t = whd.read_csv(str(parts / "p*.csv"), name="t")
    r = whd.read_csv([tmp_path / "r.csv"], name="r")
    m = t[t["v"] > 5].merge(r, on="k", how="left")
    g = m.groupby("k", as_index=False).agg(total=("v", "sum"), z=("z", "max"))
    for frame in (m, g):
        X = frame.to_dask_array()
        assert wh.is_tracked(X) and X.lazy
        vals = frame.compute()
        np.testing.assert_array_equal(X.compute(), vals.to_numpy())
        cols = list(frame.columns)
        for i in range(X.shape[0]):
            for j, c in enumerate(cols):
                got = {k: v.tolist() for k, v in wh.backward(X, (i, j)).items()}
                want = {k: v.tolist() for k, v in frame.backward(i, columns=[c]).items() if len(v)}
                assert got == want
        for src, n, ncols in (("t", 5, 2), ("r", 3, 2)):
            for row in range(n):
                for c in range(ncols):
                    fw = {tuple(x) for x in wh.forward(src, (row, c), X).tolist()}
                    inv = {(i, j) for i in range(X.shape[0]) for j in range(len(cols))
                           if [row, c] in wh.backward(X, (i, j)).get(src, np.zeros((0, 2), int)).tolist()}
                    assert fw == inv
    y = g.to_dask_array()[:, 1:].sum(axis=1)  # numpy operations on it stay lazy and tracked
    row = int(np.flatnonzero(g.compute()["k"].to_numpy() == 1)[0])
    assert wh.backward(y, (row,))["t"].tolist() == [[2, 1]]
    assert wh.backward(y, (row,))["r"].tolist() == [[0, 1]]


def test_whence_queries_on_dask_frames(parts, tmp_path):
    """wh.backward / wh.forward / wh.sources on a dask frame equal the frame's own queries, control included."""
    wh.reset()
    (tmp_path / "r.csv").write_text("k,z\n1,0.5\n2,1.5\n3,2.5\n")
    t = whd.read_csv(str(parts / "p*.csv"), name="t")
    r = whd.read_csv([tmp_path / "r.csv"], name="r")
    g = t[t["v"] > 5].merge(r, on="k", how="outer").groupby("k", as_index=False).agg(total=("v", "sum"))
    vals = g.compute()
    assert sorted(wh.sources(g)) == ["r", "t"]
    for i in range(len(vals)):
        for j, c in enumerate(g.columns):
            for control in (False, True):
                got = {k: v.tolist() for k, v in wh.backward(g, (i, j), control=control).items()}
                want = {k: v.tolist() for k, v in g.backward(i, columns=[c], control=control).items() if len(v)}
                assert got == want
    for control in (False, True):
        for row in range(5):
            fw = {tuple(x) for x in wh.forward("t", None, g, rows=[row], control=control).tolist()}
            assert fw == {tuple(x) for x in g.forward("t", rows=[row], control=control).tolist()}
    s = g["total"]
    assert wh.backward(s, (0,))["t"].tolist() == s.backward(0)["t"].tolist()
    X = g.to_dask_array()
    i = int(np.flatnonzero(vals["k"].to_numpy() == 1)[0])
    assert wh.backward(X, (i, 1))["t"].tolist() == [[2, 1]]
    assert wh.backward(X, (i, 1), control=True)["t"].tolist() == [[2, 0], [2, 1]]
    assert wh.backward(X, (i, 1), control=True)["r"].tolist() == [[0, 0]]  # the join key of the matched row
