"""Notebook displays (``_repr_html_``) and ``whence.plot.backward``."""

import pathlib
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.patches import Rectangle
from sklearn.linear_model import LogisticRegression

import whence as wh

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from strategies import cfg  # noqa: E402


def _drawn_cells(ax):
    """The (row, column) centres of the cells outlined on a panel."""
    out = set()
    for p in ax.patches:
        if isinstance(p, Rectangle):
            x, y = p.get_xy()
            out.add((int(round(y + 0.5)), int(round(x + 0.5))))
    return out


@cfg(25)
@given(st.integers(2, 9), st.integers(2, 9), st.integers(0, 3), st.data())
def test_plot_outlines_exactly_the_backward_cells(n, m, kind, data):
    wh.reset()
    rng = np.random.default_rng(n * 100 + m)
    a = wh.track(rng.normal(size=(n, m)), name="a")
    b = wh.track(rng.normal(size=m), name="b")
    if kind == 0:
        y = np.cumsum(a * b, axis=1)
    elif kind == 1:
        y = (a.T @ a)[:, ::-1]
    elif kind == 2:
        y = np.sort(a + b, axis=0)
    else:
        y = np.where(a > 0, a, b)
    idx = tuple(data.draw(st.integers(0, s - 1)) for s in y.shape)
    fig = wh.plot.backward(y, idx)
    res = wh.backward(y, idx)
    titles = {ax.get_title(loc="left").split(":")[0]: ax for ax in fig.axes}
    assert set(titles) == set(res.keys())
    if "a" in res:
        assert _drawn_cells(titles["a"]) == {tuple(c) for c in res["a"].tolist()}
    if "b" in res:
        assert _drawn_cells(titles["b"]) == {(0, int(c[0])) for c in res["b"].tolist()}


def test_plot_crops_big_sources_and_marks_control_cells():
    wh.reset()
    rng = np.random.default_rng(0)
    big = wh.track(rng.normal(size=(400, 300)), name="big")
    z = big[::2, 5:].sum(axis=0)
    fig = wh.plot.backward(z, (100,), max_rows=50, max_cols=40)
    (ax,) = fig.axes
    title = ax.get_title(loc="left")
    assert title.startswith("big: 200 cells of 400x300 (values)") and "shown" in title
    assert "175 cells outside" in title and len(_drawn_cells(ax)) == 25  # every other row of 50
    # control cells: the where-condition's cell drawn in the second colour
    c = wh.track(np.array([1.0, -1.0, 2.0]), name="c")
    d = wh.track(np.array([5.0, 6.0, 7.0]), name="d")
    w = np.where(c > 0, d, 0.0)
    fig = wh.plot.backward(w, (1,), control=True)
    colours = {ax.get_title(loc="left").split(":")[0]: [p.get_facecolor()[:3] for p in ax.patches]
               for ax in fig.axes}
    assert colours["c"] and all(np.allclose(col, (1.0, 127 / 255, 14 / 255)) for col in colours["c"])
    assert "control cells in orange" in fig._suptitle.get_text()


def test_plot_without_values_after_a_write_and_into_given_axes():
    from matplotlib.figure import Figure
    wh.reset()
    a = wh.track(np.arange(12.0).reshape(3, 4), name="a")
    y = a * 2
    a[0, 0] = 99.0  # the source array changed: its old values are gone, cells only
    fig = Figure()
    ax = fig.add_subplot()
    out = wh.plot.backward(y, (1, 2), axes=[ax])
    assert out is fig and ax.get_title(loc="left") == "a: 1 cell of 3x4 (cells)"
    with pytest.raises(ValueError, match="2 sources to draw"):
        wh.plot.backward(a * wh.track(np.ones(4), name="o"), (1, 1), axes=[ax])
    with pytest.raises(wh.NotTrackedError):
        wh.plot.backward(np.ones(3), (0,))


def test_array_html_and_partial():
    wh.reset()
    a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    html = np.cumsum(a, axis=1)._repr_html_()
    assert "TrackedArray float64 (2, 3)" in html and "cumsum" in html and "whence-full" in html
    with pytest.warns(wh.PartialLineageWarning):
        f = np.abs(np.fft.rfft(a, axis=1))
    assert "whence-partial" in f._repr_html_() and "rfft" in f._repr_html_()
    big = wh.track(np.zeros(10_000), name="big")
    assert "..." in big._repr_html_() and len(big._repr_html_()) < 5000  # values summarised


def test_frame_and_series_html(tmp_path):
    wh.reset()
    pd.DataFrame({"k": [1, 2, 1], "v": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "t.csv", index=False)
    t = wh.read_csv(tmp_path / "t.csv", name="t")
    g = t.groupby("k", as_index=False).agg(v=("v", "sum"))
    html = g._repr_html_()
    assert html.count("<table") == 2 and "groupby.agg" in html and "t.csv" in html and "FULL" in html
    s = g["v"]._repr_html_()
    assert "<table" in s and "column" in s
    with pd.option_context("display.notebook_repr_html", False):
        assert g._repr_html_() is None


def test_explanation_and_unlearning_html():
    from whence.attribution import Attributor
    from whence.unlearn import forget
    wh.reset()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression(max_iter=500).fit(X, y)
    ex = Attributor(model, wh.track(X, name="X"), y).explain(X[3], y[3], test_row=3)
    html = ex._repr_html_()
    assert "Test row 3" in html and "Training rows that raised it most" in html and "<svg" in html
    new = forget(model, X, y, [0, 1, 2])
    assert "newton" in new.certificate._repr_html_()
