"""The pandas function table: every public name of the installed pandas' namespaces sits in exactly one bucket,
and the bucket is what happens at run time (the handler installed is the bucket's)."""

import inspect
import warnings

import numpy as np
import pandas as pd

from whence.tabular import windows
import pytest
from pandas.core.arrays.categorical import CategoricalAccessor
from pandas.core.groupby import DataFrameGroupBy, SeriesGroupBy
from pandas.core.indexes.accessors import DatetimeProperties, PeriodProperties, TimedeltaProperties
from pandas.core.resample import Resampler
from pandas.core.strings.accessor import StringMethods
from pandas.core.window import Expanding, ExponentialMovingWindow, Rolling

import whence as wh
from whence.tabular.frame import TrackedFrame, TrackedSeries
from whence.tabular.frame import registry as R
from whence.tabular.frame.groups import _REDUCERS, TrackedGroupBy
from whence.tabular.frame.indexes import INDEX_CELLWISE
from whence.tabular.frame.moves import MOVES


def _public(*classes):
    return sorted({n for c in classes for n in dir(c) if not n.startswith("_")})


NAMESPACES = {
    "DataFrame": _public(pd.DataFrame),
    "Series": _public(pd.Series),
    "GroupBy": _public(DataFrameGroupBy, SeriesGroupBy),
    "Window": _public(Rolling, Expanding, ExponentialMovingWindow, Resampler),
    "str": _public(StringMethods),
    "dt": _public(DatetimeProperties, TimedeltaProperties, PeriodProperties),
    "cat": _public(CategoricalAccessor),
    "Index": _public(pd.Index, pd.DatetimeIndex),
    "pandas": _public(pd),
}
ALL = [(ns, n) for ns, names in NAMESPACES.items() for n in names]
# names of pandas 2.2 that pandas 3 removed: registered for 2.2, absent here
PANDAS_2_ONLY = {"applymap", "swapaxes", "backfill", "pad", "bool", "lookup", "first", "last", "view", "ravel",
                 "to_gbq", "read_gbq", "dtypes", "grouper", "fillna", "value_counts", "format", "holds_integer",
                 "is_boolean", "is_categorical", "is_floating", "is_integer", "is_interval", "is_numeric",
                 "is_object", "sort"}
PANDAS_MAJOR = int(pd.__version__.split(".")[0])


def test_namespaces_are_enumerated():
    assert len(NAMESPACES["DataFrame"]) > 180 and len(NAMESPACES["Series"]) > 180
    assert len(ALL) > 900


@pytest.mark.parametrize("ns,name", ALL, ids=[f"{ns}.{n}" for ns, n in ALL])
def test_every_public_name_in_exactly_one_bucket(ns, name):
    buckets = {b for s, n, b in R.REGISTRATIONS if s == ns and n == name}
    assert buckets, f"{ns}.{name} is in no bucket"
    assert len(buckets) == 1, f"{ns}.{name} is in several buckets: {sorted(buckets)}"
    assert buckets <= set(R.BUCKETS)
    assert R.bucket_of(ns, name) in buckets


def test_no_registration_of_unknown_names():
    if PANDAS_MAJOR < 3:
        pytest.skip("the table names pandas 3's API; on pandas 2 its newer names are absent by design")
    known = set(ALL)
    extra = sorted(f"{ns}.{n}" for ns, n, _ in R.REGISTRATIONS
                   if (ns, n) not in known and n not in PANDAS_2_ONLY and ns != "Index")
    assert extra == []


@pytest.mark.parametrize("cls,pbase,ns", [(TrackedFrame, pd.DataFrame, "DataFrame"),
                                          (TrackedSeries, pd.Series, "Series")])
def test_methods_get_their_buckets_handler(cls, pbase, ns):
    """Every pandas method outside the metadata and user-function buckets resolves to a whence handler; a
    generic handler is tagged with its bucket."""
    missing, wrong = [], []
    for name in NAMESPACES[ns]:
        if not inspect.isfunction(inspect.getattr_static(pbase, name)):
            continue
        bucket = R.bucket_of(ns, name)
        if bucket == "udf" or (pbase, name) in R._COMPOSED:
            continue
        if not R._whence_defined(cls, name):
            missing.append(name)
            continue
        tag = getattr(inspect.getattr_static(cls, name), "__whence_bucket__", None)
        if tag is not None and tag != bucket:
            wrong.append((name, tag, bucket))
    assert missing == [] and wrong == []


def _numeric():
    wh.reset()
    return wh.track_frame(pd.DataFrame({"a": [1.0, 2.0, 4.0, 3.0], "b": [5.0, 1.0, 2.0, 2.0]}), name="n")


def _call_no_args(obj, name):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            res = getattr(obj, name)()
        except (TypeError, ValueError, NotImplementedError, AttributeError, KeyError, ImportError,
                AssertionError):
            return None, None
    return res, [x.category for x in w]


@pytest.mark.parametrize("ns", ["DataFrame", "Series"])
def test_opaque_names_are_partial_with_a_warning(ns):
    checked = 0
    for name in NAMESPACES[ns]:
        if R.bucket_of(ns, name) not in ("opaque", "windows") or name in ("rolling", "expanding", "ewm",
                                                                           "resample", "plot"):
            continue
        if name in windows.FRAME_METHODS or name in MOVES:
            continue  # exact rules of the time-series family (tests/test_windows_oracle.py), duplicated
        f = _numeric()
        obj = f if ns == "DataFrame" else f["a"]
        res, cats = _call_no_args(obj, name)
        if not isinstance(res, (pd.DataFrame, pd.Series)):
            continue
        checked += 1
        assert any(issubclass(c, wh.PartialLineageWarning) for c in cats), name
        assert wh.backward(res).complete is False, name
    assert checked >= 1  # the rest of the bucket has exact rules now


@pytest.mark.parametrize("ns", ["DataFrame", "Series"])
def test_cellwise_names_keep_the_cell(ns):
    checked = 0
    for name in NAMESPACES[ns]:
        if R.bucket_of(ns, name) != "cellwise":
            continue
        f = _numeric()
        obj = f if ns == "DataFrame" else f["a"]
        res, cats = _call_no_args(obj, name)
        if not isinstance(res, (pd.DataFrame, pd.Series)) or res.shape != obj.shape:
            continue
        checked += 1
        assert not any(issubclass(c, wh.PartialLineageWarning) for c in cats), name
        for i in range(len(res)):
            for j in range(1 if ns == "Series" else 2):
                got = wh.backward(res, rows=[i]) if ns == "Series" else wh.backward(res, rows=[i], columns=[j])
                assert got.complete, name
                assert got["n"].tolist() == [[i, j]], name
    assert checked >= 8


def test_reductions_take_the_whole_column():
    checked = 0
    for name in NAMESPACES["DataFrame"]:
        if R.bucket_of("DataFrame", name) != "reductions":
            continue
        res, cats = _call_no_args(_numeric(), name)
        if not isinstance(res, pd.Series) or list(res.index) != ["a", "b"]:
            continue
        checked += 1
        for j in range(2):
            got = wh.backward(res, rows=[j])
            assert got.complete, name
            assert sorted(map(tuple, got["n"].tolist())) == [(i, j) for i in range(4)], name
    assert checked >= 10


def test_groupby_names_dispatch_by_bucket():
    for name in NAMESPACES["GroupBy"]:
        bucket = R.bucket_of("GroupBy", name)
        defined = name in TrackedGroupBy.__dict__
        if bucket == "groups":
            assert name in _REDUCERS or defined, name
        elif bucket in ("windows", "opaque"):
            assert name not in _REDUCERS and not defined, name


def test_index_cellwise_attributes_are_wrapped():
    for name in INDEX_CELLWISE:
        for cls in pd.DatetimeIndex.__mro__:
            if name in cls.__dict__ and name not in ("T", "view", "ravel", "transpose"):
                assert getattr(cls.__dict__[name], "__whence_wrapped__", False) or \
                    getattr(getattr(cls.__dict__[name], "fget", None), "__whence_wrapped__", False) or \
                    isinstance(cls.__dict__[name], property), (cls.__name__, name)
                break


def test_pandas_functions_dispatch_by_bucket():
    for name in NAMESPACES["pandas"]:
        bucket = R.bucket_of("pandas", name)
        f = getattr(pd, name)
        if bucket in ("cellwise", "joins", "reshapes", "opaque", "windows", "groups"):
            assert getattr(f, "__whence_wrapped__", False), name


def test_accessor_methods_are_cellwise():
    wh.reset()
    f = wh.track_frame(pd.DataFrame({"s": ["ab", "Cd", None], "d": pd.to_datetime(["2020-01-03", None,
                                                                                   "2021-06-30"])}), name="x")
    for ns, obj in (("str", f["s"].str), ("dt", f["d"].dt)):
        checked = 0
        for name in NAMESPACES[ns]:
            if R.bucket_of(ns, name) != "cellwise":
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    res = getattr(obj, name)
                    res = res() if callable(res) else res
                except (TypeError, ValueError, AttributeError, NotImplementedError):
                    continue
            if not isinstance(res, pd.Series) or len(res) != 3:
                continue
            checked += 1
            col = 0 if ns == "str" else 1
            for i in range(3):
                got = wh.backward(res, rows=[i])
                assert got.complete and got["x"].tolist() == [[i, col]], (ns, name)
        assert checked >= 10, ns
    assert np.array_equal(np.asarray(f["s"].str.len()), pd.Series(["ab", "Cd", None]).str.len(), equal_nan=True)
