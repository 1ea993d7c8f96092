"""What every module of the scikit-learn hooks shares: the covered methods, the tracked types, the per-thread
nesting counters, the warning of a PARTIAL answer, how a class is recognised as scikit-learn's, and the call of
an estimator's method on the untracked values of its tracked arguments.
"""

from __future__ import annotations

import sys
import threading
import warnings
import weakref

import pandas as pd

from ...errors import PartialLineageWarning
from ...tracked import TrackedArray
from ..frame import TrackedFrame, TrackedSeries, guard


METHODS = ("fit", "transform", "fit_transform", "predict", "predict_proba", "predict_log_proba",
           "decision_function", "score_samples")

TRACKED_TYPES = (TrackedArray, TrackedFrame, TrackedSeries)
FRAME_TYPES = (TrackedFrame, TrackedSeries)
WRAPPED_MARK = "__whence_sklearn__"

#: the pandas layer's switch: inside ``with pandas_untracked:``, pandas runs on tracked frames without recording
pandas_untracked = guard

#: per-thread nesting counters: ``depth`` (inside a call whence already covers, on untracked data), ``flow``
#: (inside a pipeline whose steps see the tracked data), ``hook`` (inside ``__init_subclass__``)
calls = threading.local()


def nesting(name):
    """The counter ``name`` of :data:`calls` in this thread (0 when never set)."""
    return getattr(calls, name, 0)


def weak_key_entry(table, obj, value):
    """``table[id(obj)] = (weakref to obj,) + value``, removed when ``obj`` dies; False when ``obj`` cannot be
    weakly referenced (nothing is recorded)."""
    key = id(obj)

    def gone(ref, key=key):
        e = table.get(key)
        if e is not None and e[0] is ref:
            del table[key]

    try:
        ref = weakref.ref(obj, gone)
    except TypeError:
        return False
    table[key] = (ref,) + value
    return True


def _stacklevel():
    f = sys._getframe(1)
    level = 1
    while f is not None:
        mod = f.f_globals.get("__name__", "") or ""
        if not mod.startswith(("whence", "sklearn", "numpy", "pandas", "scipy", "joblib", "functools",
                               "contextlib")):
            return level
        f = f.f_back
        level += 1
    return 2


def warn_partial(what):
    """Warn that ``what`` is not covered and falls back to the whole input row (PARTIAL)."""
    warnings.warn(f"whence: {what} is not covered; each of its output cells is taken to derive from the whole "
                  f"input row (PARTIAL)", PartialLineageWarning, stacklevel=_stacklevel())


def is_sklearn(cls, qualname=None):
    """True when ``cls`` is defined in scikit-learn (and, where given, has that ``__qualname__``)."""
    mod = getattr(cls, "__module__", "") or ""
    return (mod == "sklearn" or mod.startswith("sklearn.")) and (qualname is None or cls.__qualname__ == qualname)


def defining_class(tp, attr):
    """The class of ``tp``'s MRO whose ``__dict__`` defines ``attr``, or None."""
    for b in tp.__mro__:
        if attr in b.__dict__:
            return b
    return None


def untracked_value(v):
    """The plain numpy or pandas value of a tracked argument (any other argument unchanged)."""
    if isinstance(v, TrackedArray):
        return v._data
    if isinstance(v, TrackedFrame):
        with pandas_untracked:
            return pd.DataFrame(v)
    if isinstance(v, TrackedSeries):
        with pandas_untracked:
            return pd.Series(v)
    return v


def call_on_untracked(fn, est, args, kwargs):
    """``fn(est, *args, **kwargs)`` with every tracked argument replaced by its untracked value, one ``depth``
    level deeper, so that the estimator calls it makes inside record nothing a second time."""
    pa = tuple(untracked_value(a) for a in args)
    pk = {k: untracked_value(v) for k, v in kwargs.items()}
    calls.depth = nesting("depth") + 1
    try:
        return fn(est, *pa, **pk)
    finally:
        calls.depth -= 1
