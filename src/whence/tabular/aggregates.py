"""What a group-by aggregation computed, kept for deletion propagation.

The lineage of an aggregate says which rows fed each group; it does not say *how* they were combined.  To
answer "what would this aggregate be without that row?" (:mod:`whence.attribution.deletion`), every covered
group-by aggregation also records, beside its graph node, an :class:`AggregateRecord`: the group code of every
input row, and for every output column the aggregation function, the input column's values and the output
values (for a ``count`` of a column that is not numeric, only which values are missing: NaN there, 0.0
elsewhere).  The record holds references to arrays pandas computed anyway (the input column, the result); nothing
is copied per row.  It sits on the node's map (``node.map.aggregate``) and goes with it.

>>> import io, whence as wh
>>> from whence.tabular.aggregates import aggregate_record
>>> wh.reset()
>>> t = wh.read_csv(io.StringIO("k,v\\n1,5\\n1,6\\n2,7\\n"), name="t")
>>> agg = t.groupby("k").agg(total=("v", "sum"), n=("v", "count"))
>>> rec = aggregate_record(agg._whence_node)
>>> rec.codes.tolist(), [(c.label, c.func) for c in rec.columns]
([0, 0, 1], [('total', 'sum'), ('n', 'count')])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["AggregateRecord", "AggColumn", "aggregate_record", "record_aggregate"]

class AggColumn(NamedTuple):
    """One output column of an aggregation: its label, function name (or callable), input column label (None
    for ``size``), the input values (one per input row, None for ``size``; for a ``count`` of a column that is
    not numeric, NaN where the value is missing and 0.0 elsewhere) and the output values (one per
    group)."""

    label: object
    func: object
    source: object
    values: object
    output: object


class AggregateRecord(NamedTuple):
    """An aggregation's inputs and outputs: the input's lineage (input rows to source rows), the group code of
    every input row (-1: no group), the number of groups, and the output columns."""

    input_lineage: object
    codes: np.ndarray
    ngroups: int
    columns: tuple


def aggregate_record(node):
    """The :class:`AggregateRecord` of an aggregation's graph node, or None."""
    return getattr(getattr(node, "map", None), "aggregate", None)


def _fname(f):
    if isinstance(f, str):
        return f
    name = getattr(f, "__name__", None)
    return name if name in ("sum", "mean", "min", "max", "count", "size", "std", "var", "median", "nunique",
                            "first", "last", "prod") else f


def record_aggregate(gb, res, func, named):
    """Record what ``gb`` (a :class:`~whence.tabular.frame.TrackedGroupBy`) computed into ``res``.

    ``func`` is the function given to ``agg`` (or the reducer's name), ``named`` the named aggregations
    ``{label: (column, func)}``.  Aggregations whose function per column cannot be told are not recorded
    (deletion through them falls back to re-running the ETL).
    """
    import pandas as pd

    from .frame.base import guard, lineage_of
    lin = lineage_of(res) if isinstance(res, (pd.DataFrame, pd.Series)) else None
    if lin is None or lin.reasons:
        return
    obj = gb._obj
    series = isinstance(res, pd.Series)
    labels = [res.name] if series else list(res.columns)
    if not series and res.columns.nlevels > 1:
        return
    cols = []
    for lab in labels:
        if lab in named:
            src, f = named[lab]
        else:
            if not isinstance(func, str):
                return
            f = func
            src = gb._source_column(lab, named, series, func)
        f = _fname(f)
        if f == "size" or src == "keys":
            cols.append(AggColumn(lab, "size", None, None, _values(res, lab, series)))
            continue
        if src is None:
            return
        try:
            with guard:
                vals = _input_values(obj[src] if isinstance(obj, pd.DataFrame) else obj, f)
        except Exception:  # noqa: BLE001 - a column pandas cannot hand back: leave this aggregation unrecorded
            return
        cols.append(AggColumn(lab, f, src, vals, _values(res, lab, series)))
    codes = gb._group_codes()
    ng = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 0
    if ng != len(res):  # rows of empty groups (observed=False): not recorded (deletion re-runs the ETL)
        return
    lin.aggregate = AggregateRecord(lineage_of(obj), codes, ng, tuple(cols))  # on the node's map, once built


def _input_values(col, f):
    """The input column's values as an aggregation of ``f`` needs them: a ``count`` of a column that is not
    numeric reads only which values are missing, so it keeps NaN for those and 0.0 elsewhere (the same count,
    without turning every text value into a Python object)."""
    if f == "count" and col.dtype.kind not in "biufc":
        return np.where(np.asarray(col.isna().to_numpy(), bool), np.nan, 0.0)
    return np.asarray(col.to_numpy())


def _values(res, lab, series):
    from .frame.base import guard
    with guard:
        s = res if series else res[lab]
        return np.asarray(s.to_numpy())
