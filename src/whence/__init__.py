"""whence: where did this value come from?

Cell-level lineage through numpy, recorded per operation and composed only when a query asks.

>>> import numpy as np, whence as wh
>>> wh.reset()
>>> a = wh.track(np.arange(12.0).reshape(4, 3), name="a")
>>> b = wh.track(np.arange(3.0), name="b")
>>> y = np.tanh(a * b + 1).sum(axis=1)
>>> wh.backward(y, (2,))["b"].tolist()
[[0], [1], [2]]
>>> wh.forward(a, (1, 2), y).tolist()
[[1]]
>>> wh.sources(y), wh.ops(y)
(['a', 'b'], ['multiply', 'add', 'tanh', 'sum'])
"""

from .errors import (ConstantValueWarning, LineageLostWarning, LineageQueryError, NotTrackedError,
                     PartialLineageWarning, SourceNameError, WhenceError)
from .graph import OpRecord, release, reset, source_names
from .tracked import TrackedArray, is_tracked, plain, track
from .query import Cell, LineageResult, Relation, ancestors, backward, forward, lineage, ops, sources
from . import buckets as _buckets  # noqa: F401  (registers the numpy function table)
from . import elision as _elision  # noqa: F401  (lends TrackedArray the elision of temporaries)
from . import compose
from .compose import compact

__version__ = "0.1.0"

_TABULAR = ("read_csv", "read_parquet", "track_frame", "trace_to_file", "TrackedFrame", "TrackedSeries",
            "constant")
_STORE = ("save", "open", "export", "Store")


def __getattr__(name):
    # pandas is an optional extra: the tabular API loads on first use
    if name in _TABULAR:
        from . import tabular
        return getattr(tabular, name)
    if name in _STORE:
        from . import store
        return getattr(store, name)
    if name == "plot":  # matplotlib loads on first use
        import importlib
        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'whence' has no attribute {name!r}")


__all__ = [
    "track", "TrackedArray", "is_tracked", "plain", "backward", "forward", "sources", "ops", "ancestors",
    "lineage", "Cell", "LineageResult", "Relation", "OpRecord", "reset", "release", "source_names", "compact",
    "WhenceError", "NotTrackedError", "SourceNameError", "LineageQueryError", "PartialLineageWarning",
    "LineageLostWarning", "ConstantValueWarning", *_TABULAR, *_STORE,
]


def _load_lazy_arrays():
    from .dask import array
    return array


def _load_lazy_frames():
    from .dask import dataframe
    return dataframe


# the lazy backends load on first use; the arrays and tables layers below reach them through whence.hooks
from . import hooks as _hooks  # noqa: E402

_hooks.LAZY.update(array=_load_lazy_arrays, dataframe=_load_lazy_frames)
