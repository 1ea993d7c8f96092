"""Window lineage for :mod:`scipy.ndimage` filters.

scipy's filters do not dispatch through numpy's protocols: given a tracked array they would see plain values
and lose the lineage.  This adapter runs the real scipy function on the values and records a window map:
output cell ``i`` derives from the input cells in the filter's window around ``i`` along every axis (a
rectangle).  Boundary modes that read inside the array (``reflect``, ``mirror``, ``nearest``) or a
constant (``constant``) are exact; ``wrap`` reads across the array and falls back to the whole axis, marked
PARTIAL.  A footprint with holes gives its bounding rectangle, also marked PARTIAL.

Examples
--------
>>> import numpy as np, whence as wh
>>> from whence import ndimage
>>> wh.reset()
>>> img = wh.track(np.arange(25.0).reshape(5, 5), name="img")
>>> sm = ndimage.uniform_filter(img, size=3)
>>> wh.backward(sm, (0, 0))["img"].tolist()
[[0, 0], [0, 1], [1, 0], [1, 1]]
"""

from __future__ import annotations

import numpy as np

from .graph import Node
from .maps import BandMap, EinsumMap, UnionMap
from .tracked import TrackedArray, wrap as _wrap, warn_partial

__all__ = ["convolve", "correlate", "uniform_filter", "gaussian_filter", "median_filter", "maximum_filter",
           "minimum_filter", "window_lineage"]

_EXACT_MODES = {"reflect", "mirror", "nearest", "constant", "grid-constant", "grid-mirror"}


def _ndi():
    try:
        import scipy.ndimage as ndi
    except ImportError as exc:  # pragma: no cover - scipy is a dependency of the sklearn extra
        raise ImportError("whence.ndimage needs scipy (pip install 'whence[sklearn]')") from exc
    return ndi


def _per_axis(value, ndim, name):
    if np.ndim(value) == 0:
        return [value] * ndim
    value = list(value)
    if len(value) != ndim:
        raise ValueError(f"{name} must be a scalar or have one entry per axis ({ndim}), got {len(value)}")
    return value


def window_lineage(op, result, x, sizes, origins, modes, extra=(), partial=None, axes=None):
    """Wrap ``result`` with a window map: along axis ``k`` the window has ``sizes[k]`` cells, centred at
    ``sizes[k] // 2 + origins[k]``.  ``extra`` are tracked operands every output cell derives from entirely
    (the weights).  Returns a TrackedArray."""
    shape = x.shape
    axes = range(len(shape)) if axes is None else axes
    bands = []
    reasons = [partial] if partial else []
    for ax in axes:
        n = shape[ax]
        s = int(sizes[ax])
        mode = modes[ax]
        if s <= 1 and origins[ax] == 0:
            continue
        if mode in ("wrap", "grid-wrap"):
            lo, hi = np.zeros(n, np.int64), np.full(n, n - 1, np.int64)
            reasons.append(f"mode {mode!r} wraps around axis {ax}: the whole axis is reported")
        else:
            if mode not in _EXACT_MODES:
                raise ValueError(f"unknown boundary mode {mode!r}")
            lo, hi = _window_range(n, s, int(origins[ax]), mode)
        bands.append((ax, lo, hi))
    m = BandMap(shape, shape, bands)
    parents = [x.node]
    if any(isinstance(e, TrackedArray) for e in extra):
        parts = [(m, (0,))]
        for e in extra:
            if isinstance(e, TrackedArray):
                lab = tuple(("w", j) for j in range(e.ndim))
                parts.append((EinsumMap([lab], tuple(("o", j) for j in range(len(shape))), shape, [e.shape]),
                              (len(parents),)))
                parents.append(e.node)
        m = UnionMap(shape, [p.shape for p in parents], parts)
    reason = "; ".join(reasons) if reasons else None
    if reason:
        warn_partial(f"scipy.ndimage.{op}", reason)
    return _wrap(np.asarray(result), Node(op, np.shape(result), m, tuple(parents), partial=reason))


def _window_range(n, size, origin, mode):
    """First and last input index read by each output index along one axis (a contiguous range: the
    boundary modes that read inside the array fold the window onto it with steps of at most one)."""
    i = np.arange(n, dtype=np.int64)
    k = (i - (size // 2 + origin))[:, None] + np.arange(size, dtype=np.int64)[None, :]
    if mode in ("constant", "grid-constant"):
        inside = (k >= 0) & (k < n)
        lo = np.where(inside, k, n).min(axis=1)
        hi = np.where(inside, k, -1).max(axis=1)
        return np.where(hi >= 0, lo, 0), hi
    if mode == "nearest" or n == 1:
        v = np.clip(k, 0, n - 1)
    elif mode in ("reflect", "grid-mirror"):
        m = np.mod(k, 2 * n)
        v = np.where(m < n, m, 2 * n - 1 - m)
    else:  # mirror
        p = 2 * n - 2
        m = np.mod(k, p)
        v = np.where(m < n, m, p - m)
    return v.min(axis=1), v.max(axis=1)


def _plain(x):
    return x._data if isinstance(x, TrackedArray) else x


def _run(op, fn, x, sizes, origins, modes, extra=(), partial=None, axes=None):
    result = fn()
    if not isinstance(x, TrackedArray):
        if any(isinstance(e, TrackedArray) for e in extra):
            raise TypeError(f"{op}: track the input array as well as the weights")
        return result
    if isinstance(result, TrackedArray):  # pragma: no cover - defensive
        result = result._data
    return window_lineage(op, result, x, sizes, origins, modes, extra, partial, axes)


def correlate(input, weights, output=None, mode="reflect", cval=0.0, origin=0, **kwargs):
    """:func:`scipy.ndimage.correlate` with lineage: each output cell derives from its window and all weights."""
    _no_output(output)
    ndi = _ndi()
    w = _plain(weights)
    nd = np.ndim(_plain(input))
    res = lambda: ndi.correlate(_plain(input), w, mode=mode, cval=cval, origin=origin, **kwargs)  # noqa: E731
    return _run("correlate", res, input, np.shape(w), _per_axis(origin, nd, "origin"), _per_axis(mode, nd, "mode"),
                extra=(weights,))


def convolve(input, weights, output=None, mode="reflect", cval=0.0, origin=0, **kwargs):
    """:func:`scipy.ndimage.convolve` with lineage (a correlation with flipped weights and shifted origin)."""
    _no_output(output)
    ndi = _ndi()
    w = _plain(weights)
    nd = np.ndim(_plain(input))
    origins = [-o for o in _per_axis(origin, nd, "origin")]
    origins = [o - (1 - s % 2) for o, s in zip(origins, np.shape(w))]
    res = lambda: ndi.convolve(_plain(input), w, mode=mode, cval=cval, origin=origin, **kwargs)  # noqa: E731
    return _run("convolve", res, input, np.shape(w), origins, _per_axis(mode, nd, "mode"), extra=(weights,))


def _sized(op, fn_name, input, size, footprint, output, mode, cval, origin, axes=None, **kwargs):
    _no_output(output)
    ndi = _ndi()
    x = _plain(input)
    nd = np.ndim(x)
    partial = None
    if footprint is not None:
        fp = np.asarray(_plain(footprint), bool)
        sizes = list(fp.shape)
        if not fp.all():
            partial = "a footprint with holes is reported as its bounding window"
    else:
        if size is None:
            raise ValueError(f"{op}: give size or footprint")
        sizes = _per_axis(size, nd, "size")
    fn = getattr(ndi, fn_name)
    kw = dict(kwargs)
    if axes is not None:
        kw["axes"] = axes
    res = lambda: fn(x, size=size, footprint=_plain(footprint), mode=mode, cval=cval, origin=origin, **kw)  # noqa
    if axes is not None:
        axes_n = [a % nd for a in (axes if np.ndim(axes) else [axes])]
        full = [1] * nd
        for a, s in zip(axes_n, sizes if len(sizes) == len(axes_n) else [sizes[0]] * len(axes_n)):
            full[a] = s
        sizes = full
    return _run(op, res, input, sizes, _per_axis(origin, nd, "origin"), _per_axis(mode, nd, "mode"),
                partial=partial)


def uniform_filter(input, size=3, output=None, mode="reflect", cval=0.0, origin=0, **kwargs):
    """:func:`scipy.ndimage.uniform_filter` with window lineage."""
    _no_output(output)
    ndi = _ndi()
    x = _plain(input)
    nd = np.ndim(x)
    res = lambda: ndi.uniform_filter(x, size=size, mode=mode, cval=cval, origin=origin, **kwargs)  # noqa
    return _run("uniform_filter", res, input, _per_axis(size, nd, "size"), _per_axis(origin, nd, "origin"),
                _per_axis(mode, nd, "mode"))


def gaussian_filter(input, sigma, order=0, output=None, mode="reflect", cval=0.0, truncate=4.0, *, radius=None,
                    **kwargs):
    """:func:`scipy.ndimage.gaussian_filter` with window lineage (radius ``int(truncate * sigma + 0.5)``)."""
    _no_output(output)
    ndi = _ndi()
    x = _plain(input)
    nd = np.ndim(x)
    sig = _per_axis(sigma, nd, "sigma")
    if radius is not None:
        rad = _per_axis(radius, nd, "radius")
        kwargs["radius"] = radius
    else:
        rad = [int(float(truncate) * float(s) + 0.5) for s in sig]
    sizes = [2 * r + 1 if s > 0 else 1 for r, s in zip(rad, sig)]
    res = lambda: ndi.gaussian_filter(x, sigma, order=order, mode=mode, cval=cval, truncate=truncate, **kwargs)  # noqa
    return _run("gaussian_filter", res, input, sizes, [0] * nd, _per_axis(mode, nd, "mode"))


def median_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, **kwargs):
    """:func:`scipy.ndimage.median_filter` with window lineage."""
    return _sized("median_filter", "median_filter", input, size, footprint, output, mode, cval, origin, **kwargs)


def maximum_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, **kwargs):
    """:func:`scipy.ndimage.maximum_filter` with window lineage."""
    return _sized("maximum_filter", "maximum_filter", input, size, footprint, output, mode, cval, origin, **kwargs)


def minimum_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, **kwargs):
    """:func:`scipy.ndimage.minimum_filter` with window lineage."""
    return _sized("minimum_filter", "minimum_filter", input, size, footprint, output, mode, cval, origin, **kwargs)


def _no_output(output):
    if output is not None:
        raise TypeError("whence.ndimage returns a new tracked array; output= is not supported")
