"""Tabular lineage: the API contract, the case study traced exactly, bad input, nothing hidden leaks."""

import io
import warnings

import numpy as np
import pandas as pd
import pytest

import whence as wh
from whence.tabular.frame import untracked  # noqa: E402
from whence.datasets import credit_risk, credit_risk_etl


@pytest.fixture(autouse=True)
def _fresh():
    wh.reset()
    yield
    wh.reset()


def cells(res, name):
    return {tuple(map(int, c)) for c in res.get(name, np.zeros((0, 2), int))}


# --- the case study ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def case(tmp_path_factory):
    files = credit_risk(600, seed=3, path=tmp_path_factory.mktemp("credit"))
    raw = {k: pd.read_csv(v) for k, v in files.paths.items()}
    return files, raw


def test_case_study_traces_exactly_the_applicants_lines(case):
    files, raw = case
    apps, bureau, prev = files.read()
    X, y, names, df = credit_risk_etl(apps, bureau, prev, return_frame=True)
    assert isinstance(X, wh.TrackedArray) and X.shape[1] == len(names)
    Xp, yp, names_p = credit_risk_etl(*raw.values())
    np.testing.assert_array_equal(np.asarray(wh.plain(X)), Xp)
    ids = pd.DataFrame(df)["SK_ID_CURR"].to_numpy()
    app_ids = raw["application"]["SK_ID_CURR"].to_numpy()
    b, p = raw["bureau"], raw["previous_application"]
    rng = np.random.default_rng(0)
    for r in rng.choice(len(X), 25, replace=False):
        t = wh.trace_to_file(X, row=int(r))
        assert t.complete
        by = {}
        for s in t:
            by.setdefault(s.table, set()).add(s.row)
            assert s.path.endswith(f"{s.table}.csv")
            assert s.line == s.row + 2  # header on line 1, no quoted newlines in these files
        cid = ids[r]
        assert by["application"] == {int(np.flatnonzero(app_ids == cid)[0])}
        want_b = set(np.flatnonzero((b["SK_ID_CURR"] == cid) & b["CREDIT_ACTIVE"].isin(["Active", "Closed"])).tolist())
        want_p = set(np.flatnonzero((p["SK_ID_CURR"] == cid) &
                                    p["NAME_CONTRACT_STATUS"].isin(["Approved", "Refused"])).tolist())
        assert by.get("bureau", set()) == want_b
        assert by.get("previous_application", set()) == want_p


def test_case_study_column_lineage_of_one_cell(case):
    files, raw = case
    apps, bureau, prev = files.read()
    X, y, names, df = credit_risk_etl(apps, bureau, prev, return_frame=True)
    j = names.index("CREDIT_INCOME_RATIO")
    res = wh.backward(X, (4, j))
    cols = {raw["application"].columns[c] for _, c in cells(res, "application")}
    assert cols == {"AMT_CREDIT", "AMT_INCOME_TOTAL"} and set(res) == {"application"}
    # control=True adds the cells that chose the row: the gender filter and the join keys
    ctl = wh.backward(X, (4, j), control=True)
    ccols = {raw["application"].columns[c] for _, c in cells(ctl, "application")}
    assert {"CODE_GENDER", "SK_ID_CURR"} <= ccols


# --- operations ------------------------------------------------------------------------------------------------

def frame(name="t", **cols):
    return wh.track_frame(pd.DataFrame(cols), name=name)


def test_frames_stay_real_pandas_objects_and_nothing_leaks(tmp_path):
    t = frame(a=[1.0, 2.0, np.nan], b=[1, 2, 3])
    u = t[t["b"] > 1].assign(c=lambda d: d["a"] * 2).fillna(0)
    assert isinstance(u, pd.DataFrame) and list(u.columns) == ["a", "b", "c"]
    plain = pd.DataFrame({"a": [1.0, 2.0, np.nan], "b": [1, 2, 3]})
    pu = plain[plain["b"] > 1].assign(c=lambda d: d["a"] * 2).fillna(0)
    assert u.to_csv() == pu.to_csv()
    u.to_parquet(tmp_path / "u.parquet")
    assert list(pd.read_parquet(tmp_path / "u.parquet").columns) == ["a", "b", "c"]
    pd.testing.assert_frame_equal(untracked(u), pu)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        repr(u), u._repr_html_(), u.describe(), str(u["a"])


def test_merge_every_how_and_group_lineage():
    left = frame("L", k=[1, 2, 2, 3], x=[10.0, 20.0, 21.0, 30.0])
    right = frame("R", k=[2, 2, 4], y=[0.5, 0.6, 0.7])
    for how in ("inner", "left", "right", "outer"):
        m = left.merge(right, on="k", how=how)
        pm = untracked(left).merge(untracked(right), on="k", how=how)
        pd.testing.assert_frame_equal(untracked(m), pm)
        for i in range(len(m)):
            res = wh.backward(m, (i, list(m.columns).index("y")))
            yv = pm["y"].iloc[i]
            got = {r for r, _ in cells(res, "R")}
            want = set(np.flatnonzero(pd.DataFrame(right)["y"].to_numpy() == yv).tolist()) if yv == yv else set()
            assert got == want
            assert "L" not in res
    g = left.groupby("k").agg(total=("x", "sum"), n=("x", "count"))
    assert cells(wh.backward(g, (1, 0)), "L") == {(1, 1), (2, 1)}
    rg = g.reset_index()
    assert cells(wh.backward(rg, (1, 0)), "L") == {(1, 0), (2, 0)}  # the key cells of the group's rows


def test_concat_dummies_melt_apply():
    a = frame("A", c=["u", "v", "u"], x=[1.0, 2.0, 3.0])
    d = pd.get_dummies(a, columns=["c"], dtype=float)
    assert list(d.columns) == ["x", "c_u", "c_v"]
    assert cells(wh.backward(d, (2, 1)), "A") == {(2, 0)}
    b = frame("B", c=["w"], x=[9.0])
    cc = pd.concat([a, b], ignore_index=True)
    assert cells(wh.backward(cc, (3, 1)), "B") == {(0, 1)} and "A" not in wh.backward(cc, (3, 1))
    m = a.melt(id_vars=["c"], value_vars=["x"])
    assert cells(wh.backward(m, (1, 2)), "A") == {(1, 1)}
    rowwise = a.apply(lambda r: str(r["c"]) + str(r["x"]), axis=1)
    assert cells(wh.backward(rowwise, (1,)), "A") == {(1, 0), (1, 1)}


def test_uncovered_operation_warns_and_is_partial():
    t = frame(x=[1.0, 2.0, 3.0, 4.0])
    with pytest.warns(wh.PartialLineageWarning, match="win_type"):
        r = t.rolling(2, win_type="boxcar").sum()
    res = wh.backward(r, (3, 0))
    assert not res.complete and cells(res, "t") >= {(2, 0), (3, 0)}


def test_forward_from_a_source_row():
    t = frame(k=[1, 1, 2], v=[1.0, 2.0, 3.0])
    g = t.groupby("k")["v"].sum()
    X = g.to_numpy()
    assert wh.forward(t, X, rows=[1]).tolist() == [[0]]
    assert wh.forward("t", (2, 1), X).tolist() == [[1]]


# --- read_csv, lines, bad input -------------------------------------------------------------------------------

def test_lines_follow_quoted_newlines_and_blank_lines(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('id,txt\n1,"hello\nworld"\n\n2,plain\n3,"a ""q"" b"\n')
    q = wh.read_csv(p, name="q")
    lines = [wh.trace_to_file(q[["id"]].to_numpy(), row=i)[0].line for i in range(3)]
    assert lines == [2, 5, 6]


def test_read_parquet_and_track_frame(tmp_path):
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(tmp_path / "p.parquet")
    t = wh.read_parquet(tmp_path / "p.parquet", name="pq")
    s = wh.trace_to_file(t[t["a"] > 1].to_numpy(), row=0)[0]
    assert (s.table, s.row, s.line) == ("pq", 1, None)


def test_bad_input_is_pandas_error_and_records_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        wh.read_csv(tmp_path / "missing.csv", name="m")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(pd.errors.ParserError):
        wh.read_csv(bad, name="bad")
    assert wh.source_names() == []
    a = frame("a", k=[1, 2], v=[1.0, 2.0])
    b = frame("b", k=["1", "2"], w=[1.0, 2.0])
    with pytest.raises(ValueError, match="merge on int64 and (str|object)"):  # pandas 3 says str, 2.x object
        a.merge(b, on="k")
    with pytest.raises(wh.SourceNameError):
        frame("a", z=[1])
    c = frame("c", s=["x", "y"], v=[1.0, 2.0])
    mixed = c.to_numpy()  # text columns: pandas' own object array, its lineage queryable
    assert type(mixed) is np.ndarray and mixed.dtype == object
    assert wh.backward(mixed, (1, 0))["c"].tolist() == [[1, 0]]
    with pytest.raises(wh.LineageQueryError):
        wh.trace_to_file(c[["v"]].to_numpy(), row=5)


def test_asarray_of_a_frame_stays_queryable():
    t = frame(a=[1.0, 2.0], b=[3.0, 4.0])
    x = np.asarray(t)
    assert type(x) is np.ndarray
    assert cells(wh.backward(x, (1, 1)), "t") == {(1, 1)}
    assert isinstance(t.values, wh.TrackedArray)
    assert wh.sources(t["a"].to_numpy()) == ["t"]


def test_read_csv_from_buffer_and_names():
    t = wh.read_csv(io.StringIO("a\n1\n2\n"), name="buf")
    s = wh.trace_to_file(t, row=1)[0]
    assert (s.table, s.path, s.row, s.line) == ("buf", None, 1, None)
    with pytest.raises(ValueError):
        wh.read_csv(io.StringIO("a\n1\n"), name="it", chunksize=1)
