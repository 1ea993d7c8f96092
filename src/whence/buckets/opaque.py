"""Bucket D, opaque functions, and bucket M, metadata and I/O.

An opaque function's output cells derive from every cell of every array operand.  The result is marked
PARTIAL with the reason, and a :class:`~whence.errors.PartialLineageWarning` says so: the answer is a
superset of the true lineage, never a silently wrong subset.  Functions that whence does not know at all
take the same path.
"""

from __future__ import annotations

import numpy as np

from ..maps import OpaqueMap
from ..tracked import TrackedArray, wrap as _wrap, is_lazy, make_node, warn_partial
from .common import is_t, raw
from .registry import UNREGISTERED, implements

_linalg = np.linalg
_fft = np.fft


def _opt(mod, name):
    return getattr(mod, name, None)


def _collect(obj, out):
    if isinstance(obj, TrackedArray):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _collect(v, out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _collect(v, out)
    return out


def _deep_raw(obj):
    if isinstance(obj, dict):
        return {k: _deep_raw(v) for k, v in obj.items()}
    return raw(obj)


def opaque_result(op, result, tracked, reason):
    """Wrap every array in ``result`` with an all-to-all map from ``tracked`` (PARTIAL)."""
    tracked = [t for t in tracked if is_t(t)]
    if not tracked:
        return result
    warn_partial(op, reason)
    pnodes = [t.node for t in tracked]
    shapes = [t.shape for t in tracked]

    def wrap(r):
        if isinstance(r, np.ndarray) or isinstance(r, np.generic) or isinstance(r, (int, float, complex, bool)) \
                or is_lazy(r):
            arr = r if is_lazy(r) else np.asarray(r)
            if arr.dtype.kind not in "biufc":
                return r
            return _wrap(arr, make_node(op, arr.shape, OpaqueMap(arr.shape, shapes), pnodes,
                                        partial=reason))
        if isinstance(r, tuple) and hasattr(r, "_fields"):
            return type(r)(*[wrap(x) for x in r])
        if isinstance(r, (list, tuple)):
            return type(r)(wrap(x) for x in r)
        return r

    return wrap(result)


def opaque_call(func, args, kwargs, reason="opaque function"):
    """Run ``func`` on plain values; its array results derive from all cells of all tracked operands."""
    tracked = _collect(args, [])
    _collect(kwargs, tracked)
    result = func(*[_deep_raw(a) for a in args], **{k: _deep_raw(v) for k, v in kwargs.items()})
    name = getattr(func, "__module__", "numpy") or "numpy"
    name = f"{name.replace('numpy.', 'np.').replace('numpy', 'np')}.{getattr(func, '__name__', repr(func))}"
    return opaque_result(getattr(func, "__name__", "opaque"), result, tracked, f"{name} is opaque to whence"
                         if reason == "opaque function" else f"{name}: {reason}")


_OPAQUE = [
    # linear algebra whose every output cell mixes the whole matrix
    _linalg.cholesky, _linalg.eig, _linalg.eigh, _linalg.eigvals, _linalg.eigvalsh, _linalg.inv,
    _linalg.lstsq, _linalg.matrix_power, _linalg.pinv, _linalg.qr, _linalg.solve, _linalg.svd,
    _opt(_linalg, "svdvals"), _linalg.tensorinv, _linalg.tensorsolve, _opt(_linalg, "cross"), np.cross,
    # Fourier transforms
    _fft.fft, _fft.fft2, _fft.fftn, _fft.hfft, _fft.ifft, _fft.ifft2, _fft.ifftn, _fft.ihfft, _fft.irfft,
    _fft.irfft2, _fft.irfftn, _fft.rfft, _fft.rfft2, _fft.rfftn,
    # binning, interpolation, user callables, polynomials
    np.histogram, np.histogram2d, np.histogramdd, np.histogram_bin_edges, np.interp, np.piecewise,
    np.apply_along_axis, np.apply_over_axes, np.poly, np.polyadd, np.polyder, np.polydiv, np.polyfit,
    np.polyint, np.polymul, np.polysub, np.roots, np.linspace, np.logspace, np.geomspace,
    # dates
    np.busday_count, np.busday_offset, np.is_busday, np.datetime_as_string,
]


@implements("D", *[f for f in _OPAQUE if f is not None])
def _opaque(func, *args, **kwargs):
    return opaque_call(func, args, kwargs)


_METADATA = [
    np.shape, np.ndim, np.size, np.result_type, np.can_cast, np.min_scalar_type, np.common_type,
    np.may_share_memory, np.shares_memory, np.iscomplexobj, np.isrealobj, np.einsum_path,
    np.array2string, np.array_repr, np.array_str, np.save, np.savez, np.savez_compressed, np.savetxt,
    np.diag_indices_from, np.tril_indices_from, np.triu_indices_from,
]


@implements("M", *_METADATA)
def _metadata(func, *args, **kwargs):
    return func(*[_deep_raw(a) for a in args], **{k: _deep_raw(v) for k, v in kwargs.items()})


# the registry hands the functions no bucket holds to opaque_call (it cannot import this module: we import it)
UNREGISTERED[:] = [opaque_call]

#: the public name the lazy backend uses: ``x`` with every tracked array in it (nested too) replaced by its values
deep_raw = _deep_raw
