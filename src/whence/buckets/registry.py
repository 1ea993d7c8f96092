"""The function table: every numpy function that dispatches through ``__array_function__`` sits in one bucket.

Buckets (see the design in the README):

``"A"`` index maps
    lineage is a pure function of shapes and arguments (moves, copies, elementwise functions); answered by
    index arithmetic or by replaying the function on index arrays.
``"B"`` region maps
    reductions, accumulations, windows and contractions; answered with rectangles along axes.
``"C"`` data-dependent maps
    the operation's own index array (sort permutation, mask, computed indices) is recorded.
``"D"`` opaque
    every output cell derives from every input cell; the result is PARTIAL and a
    :class:`~whence.errors.PartialLineageWarning` is issued.
``"M"`` metadata and I/O
    the result holds no cells derived from values (``np.shape``, ``np.result_type``, ``np.save``); the
    function runs on the plain values and its result is returned as numpy returns it.

A function missing from the table is treated as bucket D, with a warning naming it.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..tracked import TrackedArray

__all__ = ["implements", "dispatch", "HANDLERS", "BUCKETS", "REGISTRATIONS", "BUCKET_NAMES", "bucket_of",
           "implements_for", "backend_handlers", "BACKEND_HANDLERS"]

HANDLERS: dict = {}
BUCKETS: dict = {}
#: every registration made, aliases included: (function, bucket); a function must appear in one bucket only
REGISTRATIONS: list = []
BUCKET_NAMES = {"A": "index map", "B": "region map", "C": "data-dependent", "D": "opaque",
                "M": "metadata / I/O"}
_SIGNATURES: dict = {}
#: the handler of the functions no bucket holds (opaque: PARTIAL, with a reason); set by whence.buckets.opaque
UNREGISTERED: list = []


def implements(bucket, *funcs):
    """Register ``handler(func, *args, **kwargs)`` for the numpy functions ``funcs`` in ``bucket``."""
    if bucket not in BUCKET_NAMES:
        raise ValueError(f"unknown bucket {bucket!r}")

    def deco(handler):
        for f in funcs:
            if f is None:
                continue
            REGISTRATIONS.append((f, bucket))
            if f in HANDLERS and HANDLERS[f] is handler:
                continue  # an alias of a function already registered (np.permute_dims is np.transpose)
            if f in HANDLERS:
                raise RuntimeError(f"{getattr(f, '__name__', f)} is registered twice "
                                   f"(buckets {BUCKETS[f]} and {bucket})")
            HANDLERS[f] = handler
            BUCKETS[f] = bucket
        return handler

    return deco


#: what an array backend does differently: backend name -> {numpy function: handler} for its own arrays (the
#: dask backend registers its lazy class C rules here); every function in it sits in a bucket of the table above
BACKEND_HANDLERS: dict = {}


def implements_for(backend, *funcs):
    """Register ``handler(func, *args, **kwargs)`` as how the array ``backend`` runs the numpy functions ``funcs``.

    A backend contributes only what differs from numpy's handlers: each function must already sit in a bucket of
    the table (its bucket, and the handler for numpy arrays, stay the table's), and a backend registers a
    function once.  The backend looks its handlers up with :func:`backend_handlers` and falls back to
    :data:`HANDLERS` for the others.
    """
    table = BACKEND_HANDLERS.setdefault(backend, {})

    def deco(handler):
        for f in funcs:
            if f is None:
                continue
            name = getattr(f, "__name__", f)
            if f not in HANDLERS:
                raise RuntimeError(f"{name} sits in no bucket: register it with implements() before the {backend} "
                                   f"backend changes how it runs")
            if f in table and table[f] is not handler:
                raise RuntimeError(f"{name} is registered twice for the {backend} backend")
            table[f] = handler
        return handler

    return deco


def backend_handlers(backend):
    """``{numpy function: handler}`` that ``backend`` registered with :func:`implements_for` (the live table)."""
    return BACKEND_HANDLERS.setdefault(backend, {})


def bucket_of(func):
    """The bucket letter of a numpy function, or None when whence does not know it."""
    return BUCKETS.get(func)


def signature(func):
    sig = _SIGNATURES.get(func)
    if sig is None:
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):
            sig = False
        _SIGNATURES[func] = sig
    return sig


def bind(func, args, kwargs):
    """Bind a call's arguments to ``func``'s parameters, defaults applied (a dict)."""
    sig = signature(func)
    if not sig:
        raise TypeError(f"cannot bind the arguments of {func!r}")
    ba = sig.bind(*args, **kwargs)
    ba.apply_defaults()
    return ba.arguments


def dispatch(func, types, args, kwargs):
    for t in types:
        if not issubclass(t, (TrackedArray, np.ndarray)):
            return NotImplemented
    handler = HANDLERS.get(func)
    out = kwargs.get("out", None)
    if out is not None and handler is not None and BUCKETS.get(func) != "M":
        kwargs = dict(kwargs)
        kwargs.pop("out")
        result = dispatch(func, types, args, kwargs)
        return _store_out(out, result)
    if handler is None:
        return UNREGISTERED[0](func, args, kwargs, reason="whence has no lineage rule for this function")
    return handler(func, *args, **kwargs)


def _store_out(out, result):
    from ..errors import LineageLostWarning
    import warnings
    outs = out if isinstance(out, tuple) else (out,)
    results = result if isinstance(result, tuple) else (result,)
    for o, r in zip(outs, results):
        if isinstance(o, TrackedArray):
            o[...] = r
        else:
            np.copyto(o, np.asarray(r._data if isinstance(r, TrackedArray) else r), casting="unsafe")
            if isinstance(r, TrackedArray):
                warnings.warn("whence: tracked values were written into a plain array through out=; their "
                              "lineage stops there (pass a TrackedArray as out= to keep it)",
                              LineageLostWarning, stacklevel=4)
    return out
