"""The pandas function table: every public name of ``DataFrame``, ``Series``, the group-by and window objects,
the ``.str`` / ``.dt`` / ``.cat`` accessors, ``Index`` and the ``pandas`` module sits in one bucket.

Buckets (the rule of each is in docs/semantics.md):

``"cellwise"``
    same cell: cell (i, j) of the result derives from cell (i, j) of each aligned operand (operators, casts,
    fills, ``where``/``mask``, accessor methods, ``to_datetime``).  Generic handler: one wrapper for all.
``"selection"``
    row selection: each cell is copied from one input cell; the cells that chose the rows (masks, sort keys)
    are control.  Generic handler: the method runs on positional row labels, which give the rows kept.
``"windows"``
    row-order windows (``rolling``, ``shift``, ``diff``, ``cumsum``, ``rank``, ``ffill``, ``interpolate``,
    ``resample``, ``merge_asof``, ...): the window of rows, the lag or the copied row, by the rules of
    :mod:`whence.tabular.windows` (``asof`` and uncovered arguments: PARTIAL, with a warning).
``"groups"``
    group maps: ``groupby`` and ``value_counts``; each cell derives from the cells of its group.
``"reductions"``
    along an axis: each cell derives from every cell of its column (``axis=0``) or row (``axis=1``).
``"joins"``
    joins and lookups: ``merge``, ``join``, ``Series.map``; the join keys are control.
``"reshapes"``
    cells moved to other positions: ``set_index``, ``reset_index``, ``melt``, ``pivot_table``, ``to_frame``,
    ``transpose``, ``unstack`` (the last two, and ``reindex``, ``align``, ``duplicated``, ``mode``, ``corr``,
    ``cov``: :mod:`whence.tabular.frame.moves`).
``"writes"``
    in-place writes: ``df[c] = v``, ``insert``, ``assign``, ``pop``: the written cells take the value's lineage.
``"udf"``
    user functions and expressions (``apply``, ``pipe``, ``eval``): their own operations are tracked.
``"meta"``
    metadata, I/O and formatting: no cells derive from values (``shape``, ``to_csv``, ``info``, ``repr``).
``"untracked"``
    plain values (scalars, arrays, lists: ``unique``, ``to_list``, ``argmax``) that carry no lineage; written
    into a tracked frame they raise a :class:`~whence.errors.ConstantValueWarning`.
``"opaque"``
    every cell derives from every cell of the tracked inputs: PARTIAL, with a
    :class:`~whence.errors.PartialLineageWarning` naming the method.

A name of a newer pandas missing from the table is treated as opaque.
"""

from __future__ import annotations

import functools
import inspect

import pandas as pd

from .cellwise import same_shape_method
from .classes import TrackedFrame, TrackedSeries
from .groups import window_method
from .meta import html_with_lineage, quiet_method, series_html
from .opaque import opaque_function, opaque_method
from .reductions import reduction
from .selection import rows_op, tracked_sort_index

__all__ = ["BUCKETS", "FRAME", "SERIES", "GROUPBY", "WINDOW", "STR", "DT", "CAT", "INDEX", "PANDAS",
           "REGISTRATIONS", "bucket_of", "install"]

BUCKETS = {
    "cellwise": "same cell", "selection": "row selection", "windows": "row-order windows",
    "groups": "group maps", "reductions": "reductions along an axis", "joins": "joins and lookups",
    "reshapes": "reshapes", "writes": "in-place writes", "udf": "user functions and expressions",
    "meta": "metadata / I/O / formatting (no cells)", "untracked": "plain values with no lineage",
    "opaque": "opaque (PARTIAL with a warning)",
}

#: every registration: (namespace, name, bucket); a name must appear once per namespace
REGISTRATIONS: list = []


def _table(namespace, **buckets):
    table = {}
    for bucket, names in buckets.items():
        if bucket not in BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r}")
        for name in names.split():
            REGISTRATIONS.append((namespace, name, bucket))
            if name in table:
                raise RuntimeError(f"{namespace}.{name} is registered twice ({table[name]} and {bucket})")
            table[name] = bucket
    return table


# names of both DataFrame and Series (pandas 3.x and 2.2)
_COMMON = dict(
    cellwise="""abs add add_prefix add_suffix astype clip convert_dtypes copy div divide eq floordiv ge gt
        infer_objects isin isna isnull le lt mask mod mul multiply ne notna notnull pow radd rdiv replace
        rfloordiv rmod rmul round rpow rsub rtruediv sub subtract truediv where fillna rename rename_axis
        tz_convert tz_localize to_period to_timestamp applymap""",
    selection="""loc iloc at iat head tail sort_values sort_index dropna drop_duplicates sample nlargest nsmallest
        take truncate at_time between_time explode drop filter get""",
    windows="""rolling expanding ewm resample shift diff pct_change cummax cummin cumprod cumsum rank ffill bfill
        interpolate asfreq asof backfill pad""",
    groups="groupby value_counts",
    reductions="""all any count idxmax idxmin kurt kurtosis max mean median min nunique prod product quantile sem
        skew std sum var describe agg aggregate""",
    reshapes="reset_index",
    udf="apply pipe transform",
    meta="""attrs axes empty flags ndim shape size index keys info memory_usage equals set_flags
        first_valid_index last_valid_index to_numpy values to_clipboard to_csv to_dict to_excel to_hdf to_json
        to_latex to_markdown to_pickle to_sql to_string to_xarray plot hist sparse bool from_arrow""",
    opaque="""combine combine_first compare dot reorder_levels set_axis squeeze swaplevel droplevel update xs
        swapaxes first last""",
)
# exact rules of :mod:`whence.tabular.frame.moves` (both classes)
_COMMON["selection"] += " align reindex reindex_like"
_COMMON["windows"] += " duplicated"
_COMMON["reductions"] += " mode"
_COMMON["reshapes"] += " transpose T unstack"
_FRAME_ONLY = dict(
    selection="query select_dtypes items",
    joins="merge join",
    reshapes="melt pivot_table set_index pivot stack",
    writes="assign insert pop",
    cellwise="map",
    udf="eval",
    meta="""to_gbq boxplot columns dtypes style to_feather to_html to_iceberg to_orc to_parquet to_records to_stata
        to_xml from_dict from_records lookup""",
    opaque="corrwith select isetitem iterrows itertuples",
    reductions="corr cov",
)
_SERIES_ONLY = dict(
    cellwise="between str dt cat to_frame",
    joins="map",
    meta="""dtype name nbytes hasnans is_monotonic_decreasing is_monotonic_increasing is_unique array list
        struct searchsorted dtypes""",
    untracked="argmax argmin argsort item items to_list tolist unique repeat autocorr view ravel factorize",
    opaque="divmod rdivmod case_when pop",
    reductions="corr cov",
)


def _merge(*dicts):
    out = {}
    for d in dicts:
        for b, names in d.items():
            out[b] = (out.get(b, "") + " " + names).strip()
    return out


FRAME = _table("DataFrame", **_merge(_COMMON, _FRAME_ONLY))
SERIES = _table("Series", **_merge(_COMMON, _SERIES_ONLY))
# to_frame is a reshape of a Series (its cells, one column)
SERIES["to_frame"] = "reshapes"
REGISTRATIONS[:] = [(ns, n, "reshapes" if (ns, n) == ("Series", "to_frame") else b) for ns, n, b in REGISTRATIONS]

#: group-by objects (DataFrameGroupBy, SeriesGroupBy): reductions per group are group maps
GROUPBY = _table(
    "GroupBy",
    groups="""agg aggregate all any count first idxmax idxmin last max mean median min nunique prod quantile sem
        size skew std sum var transform kurt apply filter""",
    windows="""bfill ffill cumcount cummax cummin cumprod cumsum diff pct_change rank shift rolling expanding ewm
        resample""",
    meta="dtypes grouper dtype groups indices keys level ndim ngroups plot hist boxplot is_monotonic_decreasing "
         "is_monotonic_increasing",
    opaque="""fillna corr corrwith cov describe get_group head tail nth nlargest nsmallest ngroup ohlc pipe
        sample take unique value_counts""",
)
#: Rolling, Expanding, ExponentialMovingWindow and Resampler (the row-order window family)
WINDOW = _table(
    "Window",
    windows="""agg aggregate apply asfreq bfill corr count cov ffill first interpolate kurt last max mean median
        min nearest nunique ohlc online prod quantile rank sem size skew std sum transform var pipe get_group""",
    meta="grouper exclusions groups indices keys level ndim ngroups",
    opaque="fillna",
)
#: Series.str
STR = _table(
    "str",
    cellwise="""capitalize casefold center contains count decode encode endswith extract find findall fullmatch
        get get_dummies index isalnum isalpha isascii isdecimal isdigit islower isnumeric isspace istitle isupper
        join len ljust lower lstrip match normalize pad partition removeprefix removesuffix repeat replace rfind
        rindex rjust rpartition rsplit rstrip slice slice_replace split startswith strip swapcase title translate
        upper wrap zfill cat""",
    opaque="extractall",
)
#: Series.dt (datetime, timedelta and period values)
DT = _table(
    "dt",
    cellwise="""as_unit asfreq ceil components date day day_name day_of_week day_of_year dayofweek dayofyear days
        days_in_month daysinmonth end_time floor hour is_leap_year is_month_end is_month_start is_quarter_end
        is_quarter_start is_year_end is_year_start isocalendar microsecond microseconds minute month month_name
        nanosecond nanoseconds normalize quarter qyear round second seconds start_time strftime time timetz
        to_period to_pydatetime to_pytimedelta to_timestamp total_seconds tz_convert tz_localize week weekday
        weekofyear year""",
    meta="freq tz unit",
)
#: Series.cat
CAT = _table(
    "cat",
    cellwise="""add_categories as_ordered as_unordered codes remove_categories remove_unused_categories
        rename_categories reorder_categories set_categories""",
    meta="categories ordered",
)


def _index_table():
    from .indexes import INDEX_CELLWISE, INDEX_META, INDEX_UNTRACKED
    return _table("Index", cellwise=" ".join(sorted(INDEX_CELLWISE)), meta=" ".join(sorted(INDEX_META)),
                  untracked=" ".join(sorted(INDEX_UNTRACKED)))


#: Index and its subclasses (DatetimeIndex, ...): see :mod:`whence.tabular.frame.indexes`
INDEX = _index_table()

#: the pandas module
PANDAS = _table(
    "pandas",
    cellwise="to_datetime to_numeric to_timedelta cut qcut factorize isna isnull notna notnull",
    joins="merge",
    reshapes="concat get_dummies melt pivot_table",
    windows="merge_asof",
    groups="crosstab",
    udf="eval",
    meta="""read_gbq ArrowDtype BooleanDtype Categorical CategoricalDtype CategoricalIndex DataFrame DateOffset
        DatetimeIndex DatetimeTZDtype ExcelFile ExcelWriter Flags Float32Dtype Float64Dtype Grouper HDFStore Index
        IndexSlice Int16Dtype Int32Dtype Int64Dtype Int8Dtype Interval IntervalDtype IntervalIndex MultiIndex NA
        NaT NamedAgg NamedFunc Period PeriodDtype PeriodIndex RangeIndex Series SparseDtype StringDtype Timedelta
        TimedeltaIndex Timestamp UInt16Dtype UInt32Dtype UInt64Dtype UInt8Dtype annotations api array arrays
        bdate_range col compat core date_range describe_option errors get_option infer_freq interval_range io
        json_normalize offsets option_context options pandas period_range plotting read_clipboard read_csv
        read_excel read_feather read_fwf read_hdf read_html read_iceberg read_json read_orc read_parquet
        read_pickle read_sas read_spss read_sql read_sql_query read_sql_table read_stata read_table read_xml
        reset_option set_eng_float_format set_option show_versions test testing timedelta_range to_pickle tseries
        util from_dummies""",
    untracked="unique",
    opaque="lreshape merge_ordered pivot wide_to_long value_counts",
)


def bucket_of(namespace, name):
    """The bucket of a pandas name.

    Parameters
    ----------
    namespace : str
        "DataFrame", "Series", "GroupBy", "Window", "str", "dt", "cat", "Index" or "pandas".
    name : str
        A public attribute of that namespace.

    Returns
    -------
    str or None
        The bucket (a key of :data:`BUCKETS`), or None when whence does not list the name (it is then
        treated as opaque).

    Examples
    --------
    >>> from whence.tabular.frame.registry import bucket_of
    >>> bucket_of("DataFrame", "nlargest"), bucket_of("Series", "shift"), bucket_of("dt", "month")
    ('selection', 'windows', 'cellwise')
    """
    table = {"DataFrame": FRAME, "Series": SERIES, "GroupBy": GROUPBY, "Window": WINDOW, "str": STR, "dt": DT,
             "cat": CAT, "Index": INDEX, "pandas": PANDAS}[namespace]
    return table.get(name)


# pandas' own attribute stays where it records nothing and claims nothing: properties of metadata, and
# user functions and expressions (their own operations are tracked)
_KEEP = ("meta", "udf")
_WINDOW_OBJECTS = ("rolling", "expanding", "ewm", "resample")
# pandas' own implementation is a composition of tracked methods (Series.reset_index: to_frame, then the
# frame's reset_index): its result carries their exact lineage
_COMPOSED = {(pd.Series, "reset_index")}


def _whence_defined(cls, name):
    """True when ``name`` resolves on ``cls`` to an attribute of a whence class (not pandas' own)."""
    for c in cls.__mro__:
        if name in c.__dict__:
            return c.__module__.startswith("whence")
    return False


def _ignore_arg(base):
    try:
        return "ignore_index" if "ignore_index" in inspect.signature(base).parameters else None
    except (TypeError, ValueError):
        return None


def _generic(name, bucket, base, pbase):
    """The generic handler of ``bucket`` for the pandas method ``base`` (None: keep pandas' own)."""
    if not inspect.isfunction(inspect.getattr_static(pbase, name)):
        return None  # properties, accessors, class methods: pandas' own
    if bucket == "cellwise":
        if name == "fillna":
            return _fillna(base)
        return same_shape_method(name)(base)
    if bucket == "selection":
        return rows_op(name, _ignore_arg(base))(base)
    if bucket == "windows":
        return _window_handler(name, base)
    if bucket == "reductions":
        return reduction(name, base)
    if bucket == "untracked":
        return quiet_method(base)
    if bucket == "meta":
        return quiet_method(base) if not name.startswith("to_numpy") else None
    if bucket == "udf" or (pbase, name) in _COMPOSED:
        return None
    return opaque_method(name, base)  # opaque, and any bucket whose specific handler is missing


def _window_handler(name, base):
    """The handler of a row-order window method: the window objects, the time-series family's exact rules
    (:mod:`whence.tabular.windows`), or opaque for the rest of the bucket (``asof``)."""
    from .. import windows
    if name in _WINDOW_OBJECTS:
        return window_method(name)
    if name in windows.FRAME_METHODS:
        return windows.frame_method(name, base)
    return opaque_method(name, base)


def _fillna(base):
    same, opaque = same_shape_method("fillna")(base), opaque_method("fillna", base)

    @functools.wraps(base)
    def fillna(self, *args, **kwargs):
        # fillna(method=...) (pandas 2.x) fills from other rows: a window, not a cell
        return (opaque if kwargs.get("method") is not None else same)(self, *args, **kwargs)

    return fillna


_INSTALLED: list = []


def install():
    """Install the handlers of the table on :class:`TrackedFrame` and :class:`TrackedSeries` (once)."""
    if _INSTALLED:
        return
    _INSTALLED.append(True)
    for cls, pbase, table in ((TrackedFrame, pd.DataFrame, FRAME), (TrackedSeries, pd.Series, SERIES)):
        for name in dir(pbase):
            if name.startswith("_") or _whence_defined(cls, name):
                continue
            bucket = table.get(name, "opaque")
            base = getattr(pbase, name)
            h = _generic(name, bucket, base, pbase)
            if h is not None:
                h.__whence_bucket__ = bucket
                setattr(cls, name, h)
        for name in ("__repr__", "_repr_latex_"):
            if hasattr(pbase, name):
                setattr(cls, name, quiet_method(getattr(pbase, name)))
        for name in ("__neg__", "__pos__", "__invert__", "__abs__"):
            if hasattr(pbase, name):
                setattr(cls, name, same_shape_method(name)(getattr(pbase, name)))
    from .. import windows
    windows.install()  # pd.merge_asof with the matched row's lineage
    for name, bucket in PANDAS.items():
        if bucket in ("opaque", "windows") and callable(getattr(pd, name, None)) and \
                not getattr(getattr(pd, name), "__whence_wrapped__", False):
            setattr(pd, name, opaque_function(name, getattr(pd, name)))
    from .moves import install_moves
    install_moves(TrackedFrame, TrackedSeries)
    TrackedFrame.sort_index = tracked_sort_index
    TrackedSeries.sort_index = tracked_sort_index
    # notebooks: pandas' table with a lineage summary under it (a Series has no HTML of its own in pandas)
    TrackedFrame._repr_html_ = html_with_lineage(pd.DataFrame._repr_html_)
    TrackedSeries._repr_html_ = series_html

