"""The corpus of public pandas / scikit-learn pipelines (tests/corpus/), run under whence with the
perturbation oracle of :mod:`corpus.harness`.

Each pipeline runs plain and tracked; every check (values, backward, forward, trace_to_file) is one test.
The checks that fail today are strict xfails naming the defect and a minimal reproducer: when a fix lands,
the xfail turns into an unexpected pass and the mark is removed.
"""

from __future__ import annotations

import functools
import pathlib
import sys
import tempfile
import types

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
wh = pytest.importorskip("whence")
pytest.importorskip("sklearn")
from corpus import PIPELINES, harness  # noqa: E402

# ----------------------------------------------------------------------------------------------------------
# the defects the corpus finds today (each with a one- or two-line reproducer)
# ----------------------------------------------------------------------------------------------------------

LABEL_BINARIZE = ("sklearn.preprocessing.label_binarize(tracked_series, classes=[...]) returns a plain ndarray: "
                  "the labels lose their lineage, with no warning")
DESCRIBE = "tracked_frame.describe() returns a plain DataFrame: lineage lost, with no warning"
FRAME_CTOR = ("the DataFrame constructor on tracked Series, pd.DataFrame({'x': t['A'], 'y': t['A'] * 2}) or "
              "pd.DataFrame(t.groupby('k')['x'].mean()), gives a plain DataFrame: lineage lost, with no warning")
VALUE_COUNTS = "tracked_series.value_counts() returns a plain Series: lineage lost, with no warning"
LIST_CONSTANT = ("lbl.fit(list(d[c].values)); d[c] = lbl.transform(list(d[c].values)) (LabelEncoder on a list): "
                 "the list is computed outside whence, so the encoded column is a constant by the contract (a "
                 "ConstantValueWarning says so) and backward(d, (i, c), control=True) is {}; the oracle sees the "
                 "encoded cell change with its source cell")

KNOWN = {
    ("house_prices", "backward"): LIST_CONSTANT,
    ("house_prices", "forward"): LIST_CONSTANT,
    ("house_prices", "trace"): LIST_CONSTANT,
}


@functools.lru_cache(maxsize=None)
def outcome(name):
    return harness.check(name)




def _params():
    out = []
    for name in PIPELINES:
        for check in harness.CHECKS:
            reason = KNOWN.get((name, check))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(name, check, marks=marks, id=f"{name}-{check}"))
    return out


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name,check", _params())
def test_corpus_pipeline(name, check):
    """Values equal plain pandas'; every answer contains the oracle's influence set (FULL or PARTIAL)."""
    res = outcome(name)
    assert not res.failures[check], res.summary(check)


#: pipelines whose every checked answer is FULL (the rest are PARTIAL on some rows, each with a reason in
#: docs/corpus.md)
ALL_FULL = ("store_sales_windows", "births", "planets", "ten_minutes", "bicycles", "us_states", "healthcare",
            "bike_lagged_features", "bike_sharing_kaggle", "titanic_kaggle", "sql_comparison")


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", ALL_FULL)
def test_corpus_pipeline_answers_full_on_every_checked_row(name):
    """No checked answer of these pipelines is PARTIAL (asfreq, concat, group-wise resample and transform,
    pivot_table keyed by values, groupby filter/apply, df[df > 0] and the others are exact)."""
    res = outcome(name)
    assert res.rows_checked and res.rows_partial == 0, (res.rows_partial, res.rows_checked)


def test_known_defects_name_real_checks():
    assert {k for k in KNOWN} <= {(n, c) for n in PIPELINES for c in harness.CHECKS}


@pytest.mark.parametrize("name", PIPELINES)
def test_corpus_module_documents_itself(name, tmp_path):
    """Source, licence, the changes made, the operations; generated data files small."""
    mod = harness.load(name)
    doc = mod.__doc__ or ""
    for word in ("Source:", "Licence:", "Changes made to run it here:"):
        assert word in doc, f"{name}: docstring lacks {word!r}"
    assert mod.OPERATIONS and all(isinstance(o, str) for o in mod.OPERATIONS)
    data = harness.Data(mod, tmp_path)
    for path in data.paths.values():
        assert path.stat().st_size < 200_000, f"{path.name} is {path.stat().st_size} bytes"
    cols = {f"{n}.{c}" for n, df in data.read_plain().items() for c in harness.flat_columns(df)}
    outputs = set(harness.run_plain(mod, data.read_plain())) | {"*"}
    for decl in ("MEMBERSHIP", "ORDER", "DEPENDS"):
        for k, names in getattr(mod, decl, {}).items():
            assert k in outputs, f"{name}: {decl} names an unknown output {k!r}"
            known = outputs if decl == "DEPENDS" else cols
            assert set(names) <= known, f"{name}: {decl}[{k!r}] names unknown {set(names) - known}"


# ----------------------------------------------------------------------------------------------------------
# the oracle itself: it finds a wrong answer, and it is quiet on a right one
# ----------------------------------------------------------------------------------------------------------


def _toy_module():
    mod = types.ModuleType("corpus.toy_selftest")
    mod.__doc__ = "toy"
    mod.READ = {"t": {}}

    def make_data(rng):
        return {"t": pd.DataFrame({"k": rng.choice(["a", "b"], 20), "x": rng.normal(size=20).round(3),
                                   "y": rng.integers(0, 9, 20)})}

    def run(src):
        t = src["t"]
        t2 = t[["x", "y"]] * 2
        return {"double": t2, "agg": t.groupby("k")[["x"]].sum()}

    mod.make_data, mod.run = make_data, run
    mod.MEMBERSHIP = {"agg": ("t.k",)}
    return mod


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(sys.modules, "corpus.toy_selftest", _toy_module())
    return "toy_selftest"


@pytest.mark.filterwarnings("ignore")
def test_oracle_passes_right_answers(toy):
    res = harness.check(toy)
    assert not any(res.failures.values()), res.failures
    assert res.rows_checked and res.rows_exact == res.rows_checked


@pytest.mark.filterwarnings("ignore")
def test_oracle_catches_a_missing_cell(toy, monkeypatch):
    """An answer that drops one source cell (a FULL answer too small) fails backward, forward and trace."""
    real_b, real_f, real_t = wh.backward, wh.forward, wh.trace_to_file

    def short_backward(y, index=None, control=False, **kw):
        res = real_b(y, index, control, **kw)
        for k, v in list(res.items()):
            res[k] = np.asarray(v)[1:] if len(v) else v
        return res

    def short_forward(*a, **kw):
        return np.asarray(real_f(*a, **kw))[1:]

    def short_trace(y, row, control=False):
        tr = real_t(y, row=row, control=control)
        del tr[:1]
        return tr

    monkeypatch.setattr(wh, "backward", short_backward)
    monkeypatch.setattr(wh, "forward", short_forward)
    monkeypatch.setattr(wh, "trace_to_file", short_trace)
    res = harness.check(toy)
    for check in ("backward", "forward", "trace"):
        assert res.failures[check], f"the oracle missed a dropped cell in {check}"


def test_changed_cells_aligns_reordered_labels():
    base = pd.DataFrame({"v": [1.0, 2.0, np.nan]}, index=["a", "b", "c"])
    pert = pd.DataFrame({"v": [np.nan, 2.0, 5.0]}, index=["c", "b", "a"])
    assert harness.changed_cells(base, pert) == {(0, 0)}
    assert harness.changed_cells(np.array([1, 2]), np.array([1, 3])) == {(1,)}


def test_replacements_respect_the_dtype():
    rng = np.random.default_rng(0)
    ints = pd.Series([1, 5, 9])
    assert all(isinstance(v, (int, np.integer)) for v in harness.replacements(ints, 0, rng))
    text = pd.Series(["a", "b", None])
    vals = harness.replacements(text, 0, rng)
    assert "b" in vals and any(pd.isna(v) for v in vals) and all(v != "a" for v in vals if not pd.isna(v))
    dates = pd.Series(pd.to_datetime(["2020-01-01", "2020-02-01"]))
    assert all(v != dates[0] for v in harness.replacements(dates, 0, rng) if not pd.isna(v))


def test_changed_cells_ignores_rounding_only():
    """The last bits of a sum that pandas computes along another path are not influence; any real change is."""
    base = pd.DataFrame({"v": [0.486869, 1.0, np.nan], "s": ["a", "b", "c"]})
    pert = pd.DataFrame({"v": [0.486869 + 1.1e-16, 1.0 + 1e-6, np.nan], "s": ["a", "b", "d"]})
    assert harness.changed_cells(base, pert) == {(1, 0), (2, 1)}
    assert harness.changed_cells(np.array([1.0, 0.0]), np.array([1.0, 1e-9])) == {(1,)}


def test_an_object_array_handed_out_by_a_tracked_frame_counts_as_tracked():
    wh.reset()
    t = wh.track_frame(pd.DataFrame({"s": ["a", "b"], "x": [1.0, 2.0]}), name="obj")
    assert harness._queryable(t.values) and not harness._queryable(np.array(["a", "b"], dtype=object))
