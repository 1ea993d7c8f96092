"""Regression tests for the time-series family (tabular/windows.py): forms the random oracle does not draw,
argument combinations left PARTIAL, bad input, in-place fills, saved lineage."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

wh = pytest.importorskip("whence")


def cells(res, name="s"):
    return sorted(tuple(int(v) for v in row) for row in np.asarray(res.get(name, np.zeros((0, 2)))).reshape(-1, 2))


def frame():
    wh.reset()
    df = pd.DataFrame({"k": [1, 2, 1, 2, 1, 1], "x": [1.0, np.nan, 3.0, 4.0, np.nan, 6.0],
                       "y": [0.5, 1.5, np.nan, 2.5, 3.5, np.nan]})
    return wh.track_frame(df, name="s"), df


def quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        return fn()


# --- values identical to pandas, FULL and quiet -------------------------------------------------------------

COVERED = [
    "t.rolling(3, min_periods=2).mean()", "t['x'].rolling(2, center=True).sum()",
    "t['x'].rolling(pd.api.indexers.FixedForwardWindowIndexer(window_size=2)).sum()",
    "t['x'].rolling(3, step=2).mean()", "t.expanding(2).std()", "t[['x', 'y']].ewm(alpha=0.3).mean()",
    "t['x'].rolling(3).apply(lambda a: a[-1] - a[0], raw=True)", "t['x'].rolling(2).agg(['sum', 'max'])",
    "t.shift(-1)", "t.diff(2)", "t[['x', 'y']].pct_change(fill_method=None)", "t.cummax()", "t.cumprod()",
    "t.rank(pct=True)", "t.bfill(limit=1)", "t.interpolate()", "t['x'].interpolate(limit_direction='both')",
    "t.groupby('k').shift(2)", "t.groupby('k').cumsum()", "t.groupby('k')['x'].pct_change(fill_method=None)",
    "t.groupby('k')['x'].cumcount(ascending=False)", "t.groupby('k').rank()", "t.groupby('k')['y'].bfill()",
    "t.groupby('k')['x'].ewm(span=2).mean()", "t.groupby('k').rolling(2).sum()",
    "t.groupby('k', as_index=False).rolling(2).sum()", "t.groupby('k')['x'].expanding().max()",
    "t.groupby('k')['x'].transform('diff')", "t.groupby('k')['x'].transform('rank')",
]


@pytest.mark.parametrize("code", COVERED)
def test_covered_forms_match_pandas_and_are_full(code):
    t, df = frame()
    y = quiet(lambda: eval(code, {"t": t, "pd": pd, "np": np}))
    ref = eval(code, {"t": df, "pd": pd, "np": np})
    assert type(y).__name__ in ("TrackedFrame", "TrackedSeries")
    assert y.to_csv() == ref.to_csv()
    res = wh.backward(y)
    assert res.complete, res.reasons


def test_rolling_center_and_step_rows():
    t, _ = frame()
    y = t["x"].rolling(3, center=True, min_periods=1).sum()
    assert cells(wh.backward(y, 0)) == [(0, 1), (1, 1)]
    assert cells(wh.backward(y, 5)) == [(4, 1), (5, 1)]
    y = t["x"].rolling(2, step=2).sum()  # rows 0, 2, 4
    assert cells(wh.backward(y, 1)) == [(1, 1), (2, 1)]


def test_forward_window_indexer():
    t, _ = frame()
    y = t["x"].rolling(pd.api.indexers.FixedForwardWindowIndexer(window_size=2)).sum()
    assert cells(wh.backward(y, 0)) == [(0, 1), (1, 1)]
    assert cells(wh.backward(y, 5)) == []  # one row left, min_periods 2: a constant NaN


def test_group_rolling_index_and_key_columns():
    t, _ = frame()
    y = t.groupby("k").rolling(2).sum()  # rows in group order: (1, 0), (1, 2), (1, 4), (1, 5), (2, 1), (2, 3)
    assert list(y.columns) == ["x", "y"]
    assert cells(wh.backward(y, (1, 0))) == [(0, 1), (2, 1)]
    assert cells(wh.backward(y, (5, 1))) == [(1, 2), (3, 2)]
    z = t.groupby("k", as_index=False).rolling(2).sum()
    assert list(z.columns)[0] == "k"
    assert cells(wh.backward(z, (1, 0))) == [(2, 0)]  # the key column: the row's own key
    assert cells(wh.backward(z, (1, 1))) == [(0, 1), (2, 1)]


def test_group_ops_control_is_the_group_keys():
    t, _ = frame()
    y = t.groupby("k")["x"].shift(1)
    assert cells(wh.backward(y, 2)) == [(0, 1)]
    assert cells(wh.backward(y, 2, control=True)) == [(0, 0), (0, 1), (2, 0), (4, 0), (5, 0)]
    c = t.groupby("k").cumcount()
    assert cells(wh.backward(c, 4)) == [(0, 0), (2, 0), (4, 0)]  # the key cells of the rows counted


def test_resample_size_ohlc_and_index_lineage():
    wh.reset()
    idx = pd.to_datetime(["2024-01-03 00:00", "2024-01-01 00:00", "2024-01-02 12:00", "2024-01-05 00:00"])
    df = pd.DataFrame({"v": [1.0, 2.0, 3.0, 4.0]}, index=pd.DatetimeIndex(idx, name="ts"))
    t = wh.track_frame(df, name="s")
    s = quiet(lambda: t.resample("2D").size())
    assert s.to_csv() == df.resample("2D").size().to_csv()
    # bins: [01-01, 01-03): rows 1, 2; [01-03, 01-05): row 0; [01-05, ...): row 3 -- the time cells (col 0)
    assert cells(wh.backward(s, 0)) == [(1, 0), (2, 0)]
    o = quiet(lambda: t["v"].resample("2D").ohlc())
    assert o.to_csv() == df["v"].resample("2D").ohlc().to_csv()
    assert cells(wh.backward(o, (1, 3))) == [(0, 1)]
    m = t.resample("2D").mean()
    assert cells(wh.backward(m, (0, 0), control=True)) == [(1, 0), (1, 1), (2, 0), (2, 1)]


def test_time_grouper_unsorted_with_other_key():
    wh.reset()
    df = pd.DataFrame({"t": pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-01"]),
                       "k": [1, 1, 2, 2], "v": [1.0, 2.0, 3.0, 4.0]})
    t = wh.track_frame(df, name="s")
    y = quiet(lambda: t.groupby(pd.Grouper(key="t", freq="2D"))["v"].sum())
    assert y.to_csv() == df.groupby(pd.Grouper(key="t", freq="2D"))["v"].sum().to_csv()
    assert cells(wh.backward(y, 0)) == [(1, 2), (2, 2), (3, 2)]
    assert cells(wh.backward(y, 1)) == [(0, 2)]


def test_merge_asof_by_and_tolerance():
    wh.reset()
    left = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 01:00", "2024-01-01 05:00", "2024-01-01 09:00"]),
                         "k": [1, 2, 1], "a": [1.0, 2.0, 3.0]})
    right = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 04:00", "2024-01-01 08:30"]),
                          "k": [1, 2, 2], "b": [10.0, 20.0, 30.0]})
    L, R = wh.track_frame(left, name="L"), wh.track_frame(right, name="R")
    y = quiet(lambda: pd.merge_asof(L, R, on="t", by="k", tolerance=pd.Timedelta("2h")))
    ref = pd.merge_asof(left, right, on="t", by="k", tolerance=pd.Timedelta("2h"))
    assert y.to_csv() == ref.to_csv()
    b = list(y.columns).index("b")
    assert cells(wh.backward(y, (0, b)), "R") == [(0, 2)]
    assert cells(wh.backward(y, (1, b)), "R") == [(1, 2)]
    assert cells(wh.backward(y, (2, b)), "R") == []  # nothing within 2 h for k=1
    assert cells(wh.backward(y, (2, 2)), "L") == [(2, 2)]
    assert pd.merge_asof(left, right, on="t").to_csv() == \
        pd.merge_asof(left, right, on="t").to_csv()  # plain frames untouched


def test_inplace_fills_replace_the_lineage():
    t, df = frame()
    quiet(lambda: t.ffill(inplace=True))
    df.ffill(inplace=True)
    assert t.to_csv() == df.to_csv()
    assert cells(wh.backward(t, (1, 1))) == [(0, 1)]
    assert cells(wh.backward(t, (4, 2))) == [(4, 2)]
    assert wh.backward(t).complete


def test_interpolate_uses_the_two_neighbours():
    t, _ = frame()
    y = t["x"].interpolate()
    assert cells(wh.backward(y, 1)) == [(0, 1), (2, 1)]
    assert cells(wh.backward(y, 4)) == [(3, 1), (5, 1)]
    assert cells(wh.backward(y, 3)) == [(3, 1)]


def test_pct_change_with_freq():
    wh.reset()
    idx = pd.date_range("2024-01-01", periods=5, freq="D")
    df = pd.DataFrame({"v": [1.0, 2.0, 4.0, 8.0]}, index=idx.delete(2))
    t = wh.track_frame(df, name="s")
    y = quiet(lambda: t["v"].pct_change(freq="D"))
    assert y.to_csv() == df["v"].pct_change(freq="D").to_csv()
    assert cells(wh.backward(y, 1)) == [(0, 1), (1, 1)]
    assert cells(wh.backward(y, 2)) == []  # no row one day before: a constant NaN
    assert cells(wh.backward(y, 3)) == [(2, 1), (3, 1)]


# --- argument combinations left PARTIAL: a warning naming the method and the argument -----------------------

class _Custom(pd.api.indexers.BaseIndexer):
    def get_window_bounds(self, num_values=0, min_periods=None, center=None, closed=None, step=None):
        end = np.arange(1, num_values + 1, dtype=np.int64)
        return np.maximum(end - 2, 0), end


UNCOVERED = {
    "t.rolling(_Custom(window_size=2)).sum()": "BaseIndexer",
    "t['x'].rolling(2, win_type='triang').mean()": "win_type",
    "t.ffill(axis=1)": "axis",
    "t.shift([1, 2])": "periods",
    "t['x'].rolling(3).corr(t['y'])": "corr",
    "t['x'].ewm(span=2).corr(t['y'])": "corr",
    "t['x'].interpolate(method='nearest')": "nearest",
    "t.set_index(pd.date_range('2024', periods=6, freq='h')).resample('2h').ffill()": "ffill",
}


@pytest.mark.parametrize("code", sorted(UNCOVERED))
def test_uncovered_arguments_are_partial_with_a_named_warning(code):
    t, df = frame()
    with pytest.warns(wh.PartialLineageWarning, match=UNCOVERED[code]):
        y = eval(code, {"t": t, "pd": pd, "np": np, "_Custom": _Custom})
    ref = eval(code, {"t": df, "pd": pd, "np": np, "_Custom": _Custom})
    assert y.to_csv() == ref.to_csv()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wh.PartialLineageWarning)
        res = wh.backward(y)
    assert not res.complete and res.reasons


def test_uncovered_superset():
    t, _ = frame()
    with pytest.warns(wh.PartialLineageWarning):
        y = t["x"].rolling(_Custom(window_size=2)).sum()
    assert {(4, 1), (5, 1)} <= set(cells(wh.backward(y, 5)))


# --- bad input: pandas' own error, nothing recorded -----------------------------------------------------------

BAD = ["t.rolling(-1)", "t['x'].rolling(2, min_periods=5).sum()", "t.shift(1.5)", "t['x'].ffill(limit=0)",
       "t.rank(method='nope')", "t['x'].ewm(alpha=2).mean()", "t.groupby('k')['x'].shift(1.5)",
       "t['x'].resample('1D').sum()", "t['x'].interpolate(method='nope')", "t['x'].diff('a')",
       "pd.merge_asof(t, t.iloc[::-1], on='x')"]


@pytest.mark.parametrize("code", BAD)
def test_bad_input_raises_pandas_error_and_changes_nothing(code):
    t, df = frame()
    from whence.tabular.frame import lineage_of
    lin = lineage_of(t)
    with pytest.raises(Exception) as got:
        eval(code, {"t": t, "pd": pd})
    with pytest.raises(type(got.value)) as ref:
        eval(code, {"t": df, "pd": pd})
    assert str(got.value) == str(ref.value)
    assert lineage_of(t) is lin and t.to_csv() == df.to_csv()


# --- saved lineage ---------------------------------------------------------------------------------------------

def test_store_round_trip_of_windows(tmp_path):
    t, _ = frame()
    r = t["x"].rolling(2).sum()
    c = t.groupby("k")["y"].cumsum()
    f = t.ffill()
    path = str(tmp_path / "w.duckdb")
    with warnings.catch_warnings():
        warnings.simplefilter("error", wh.PartialLineageWarning)
        wh.save(path, "run", {"r": r, "c": c, "f": f})
    with wh.open(path) as store:
        run = store["run"]
        for name, obj, cell in (("r", r, 3), ("c", c, 4), ("f", f, (1, 1))):
            assert cells(wh.backward(obj, cell)) == cells(wh.backward(run[name], cell)), name
