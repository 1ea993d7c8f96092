"""numpy 1.x names that numpy 2 removed, each in the bucket of the function it is a name for.

numpy 1.26 still exports ``alltrue``, ``sometrue``, ``product``, ``cumproduct``, ``round_`` (other names of
``all``, ``any``, ``prod``, ``cumprod``, ``round``), ``trapz`` (``trapezoid``'s numpy 1 name), ``msort``
(``sort(a, axis=0)``), ``in1d`` (``isin(...).ravel()``) and ``asfarray`` (a float copy).  Each delegates to the
rule of the function it computes, so its lineage is that function's.  On numpy 2 none of them exists and this
module registers nothing.
"""

from __future__ import annotations

import functools

import numpy as np

from ..tracked import TrackedArray
from .registry import BUCKETS, HANDLERS, implements

_SAME = {"alltrue": "all", "sometrue": "any", "product": "prod", "cumproduct": "cumprod", "round_": "round"}


def _delegate(target, func, *args, **kwargs):
    return HANDLERS[target](target, *args, **kwargs)


def _register():
    for old, new in _SAME.items():
        f, target = getattr(np, old, None), getattr(np, new)
        if f is not None and f is not target and f not in HANDLERS:
            implements(BUCKETS[target], f)(functools.partial(_delegate, target))
    f = getattr(np, "msort", None)
    if f is not None and f not in HANDLERS:
        implements(BUCKETS[np.sort], f)(lambda func, a: HANDLERS[np.sort](np.sort, a, axis=0))
    f = getattr(np, "in1d", None)
    if f is not None and f not in HANDLERS:
        @implements(BUCKETS[np.isin], f)
        def _in1d(func, ar1, ar2, assume_unique=False, invert=False, **kwargs):
            return np.ravel(np.isin(ar1, ar2, assume_unique=assume_unique, invert=invert, **kwargs))
    f = getattr(np, "asfarray", None)
    if f is not None and f not in HANDLERS:
        @implements("A", f)
        def _asfarray(func, a, dtype=np.double):
            dtype = np.dtype(dtype)
            if not np.issubdtype(dtype, np.inexact):
                dtype = np.dtype(np.double)
            return a.astype(dtype) if isinstance(a, TrackedArray) else np.asarray(a, dtype=dtype)


_register()
