"""Values that carry lineage outside the tracked classes, and the constants that carry none.

* plain arrays handed out by ``np.asarray(frame)``, ``frame.to_numpy()`` of text or datetime columns, and
  ``Index`` objects of tracked frames (``df.index``, ``df.index.dayofweek``): registered here by identity,
  so that a query on them, or a write of them into a tracked frame, finds their lineage;
* values that enter a tracked frame from a path whence cannot see (a plain array, a list, an untracked Series
  or Index): constants by the contract.  Each such write raises one
  :class:`~whence.errors.ConstantValueWarning` naming the column; :func:`constant` declares a deliberate
  constant and silences it.
"""

from __future__ import annotations

import collections
import warnings
import weakref

import numpy as np
import pandas as pd

from ...errors import ConstantValueWarning
from .base import user_stacklevel, lineage_of

__all__ = ["constant", "plain_node", "plain_lineage"]

# id -> (weak reference, node or None, series-like Lineage or None, the owner's Lineage or None)
plain_arrays: dict = {}
# ids of arrays declared constant by wh.constant
_const: dict = {}


# id -> (the scalar, the Lineage it was reduced from): values that reductions of tracked objects returned
# (``s.max()``).  The entry holds the scalar itself, so its id is not reused while the entry lives; the
# oldest entries are dropped past SCALARS_KEPT.
_scalars: collections.OrderedDict = collections.OrderedDict()
SCALARS_KEPT = 4096


def _scalar_kind(v):
    """Scalars a reduction hands out as a new object each time (never a shared singleton such as a small
    ``int``, ``True``, ``np.True_`` or ``pd.NaT``, whose identity says nothing about where it came from)."""
    if isinstance(v, np.bool_):
        return False
    if isinstance(v, np.generic):
        return True
    if type(v) is float:
        return v is not np.nan  # a float a reduction computed is a new object; ``np.nan`` is one shared object
    if type(v) is int:
        return not -5 <= v <= 256  # CPython shares the small ints
    return isinstance(v, (pd.Timestamp, pd.Timedelta)) and v is not pd.NaT


def register_scalar(value, lin):
    """Remember that the scalar ``value`` was reduced from every data cell of the tracked object of Lineage
    ``lin`` (see :func:`scalar_lineage`); returns ``value`` unchanged."""
    if lin is not None and value is np.nan:
        value = np.float64(value)  # pandas' NaN of an all-missing reduction is a shared object: hand out a new one
    if lin is not None and _scalar_kind(value):
        _scalars[id(value)] = (value, lin)
        _scalars.move_to_end(id(value))
        while len(_scalars) > SCALARS_KEPT:
            _scalars.popitem(last=False)
    return value


def scalar_lineage(value):
    """The Lineage a scalar was reduced from (None for any other value)."""
    e = _scalars.get(id(value))
    if e is not None and e[0] is value:
        return e[1]
    return None


def scalar_parts(value, n, ncells, rows=None, wholes=None):
    """Parts giving every cell of ``n`` rows (cmat rows ``rows``, every row when None, of ``ncells``) every
    data cell the registered scalar ``value`` was reduced from (none for other values).  ``wholes``: a dict
    that lends one "every row" relation to the statistics reduced over the same row relation (their parts can
    then share row relations and merge)."""
    from ..relations import Part
    parts = []
    for p, row, whole in scalar_sources(value, n, wholes):
        if rows is None:
            parts.append(Part(p.node, whole, row[None, :].copy(), p.control, wide=True))
        else:
            cm = np.zeros((ncells, row.shape[0]), bool)
            cm[rows] = row
            parts.append(Part(p.node, whole, cm, p.control))
    return parts


def scalar_sources(value, n, wholes=None):
    """What the registered scalar ``value`` was reduced from, for ``n`` rows that each read all of it: one
    ``(part, row, whole)`` per part of its lineage that reads data cells, ``row`` the input columns it read
    (bool), ``whole`` the relation from each of the ``n`` rows to every input row the part reads (empty for
    other values).  ``wholes``: see :func:`scalar_parts`."""
    from ..relations import RowRel
    lin = scalar_lineage(value)
    if lin is None:
        return []
    out = []
    for p in lin.parts:
        row = p.data_row(lin.nidx)
        if not row.any():
            continue
        key = (id(p.rel), lin.n, n)
        whole = None if wholes is None else wholes.get(key)
        if whole is None:
            zeros = _zeros(wholes, lin.n)
            one = p.rel.group(zeros, 1)
            if one.codes is None and not one.all_rows:
                whole = RowRel(n, one.n_src, _zeros(wholes, n), one.csr)  # ``one.take(zeros)``, its codes shared
            else:
                whole = one.take(np.zeros(n, np.int64))
            if wholes is not None:
                wholes[key] = whole
        out.append((p, row, whole))
    return out


def _zeros(wholes, n):
    """``n`` int64 zeros, one array per length in ``wholes`` (never written: relations' codes are read-only)."""
    z = None if wholes is None else wholes.get(("zeros", n))
    if z is None:
        z = np.zeros(n, np.int64)
        if wholes is not None:
            wholes[("zeros", n)] = z
    return z


def _remember(table, obj, value):
    key = id(obj)
    try:
        ref = weakref.ref(obj, lambda _r, k=key, t=table: t.pop(k, None))
    except TypeError:
        return False
    table[key] = (ref,) + value
    return True


def register_plain(arr, node, lin=None, owner=None):
    """Remember that the plain array (or Index) ``arr`` holds cells of ``node`` (or of the Lineage ``lin``, or
    of what the callable ``lin`` returns when first asked); ``owner`` is the Lineage of the frame that handed
    it out, if any (an index registered again for the same owner needs no new entry)."""
    _remember(plain_arrays, arr, (node, lin, owner))


def plain_node(arr):
    """The graph node of a plain array or Index whose lineage whence knows (None otherwise)."""
    e = plain_arrays.get(id(arr))
    if e is not None and e[0]() is arr:
        return e[1] if e[1] is not None else plain_lineage(arr).node
    return None


def plain_lineage(arr):
    """The series-like :class:`~whence.tabular.relations.Lineage` of a registered Index (None otherwise)."""
    e = plain_arrays.get(id(arr))
    if e is not None and e[0]() is arr:
        lin = e[2]
        if callable(lin):  # built on first use
            lin = lin()
            plain_arrays[id(arr)] = (e[0], e[1], lin, e[3])
        return lin
    return None


def constant(values):
    """Declare ``values`` a deliberate constant: writing it into a tracked frame raises no warning.

    By the contract, a value computed outside whence (a plain array, a list, an untracked Series) has no
    lineage: its cells are constants.  whence says so with a :class:`~whence.errors.ConstantValueWarning`
    when such a value is written into a tracked frame, since it is often a lineage lost by mistake
    (``np.asarray(df["t"]) * 2``).  ``constant`` marks the value as meant.

    Parameters
    ----------
    values : array-like or scalar
        A list or tuple becomes a numpy array; a numpy array, Series or Index is returned as it is, marked.

    Returns
    -------
    numpy.ndarray, pandas.Series or pandas.Index
        The same values, marked as a deliberate constant.

    Examples
    --------
    >>> import io, warnings, whence as wh
    >>> wh.reset()
    >>> df = wh.read_csv(io.StringIO("a\\n1\\n2\\n"), name="c")
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error")
    ...     df["w"] = wh.constant([0.5, 0.25])
    >>> wh.backward(df, rows=[0], columns=[1])
    LineageResult({}, FULL)
    """
    if isinstance(values, (list, tuple)):
        values = np.asarray(values)
    if np.ndim(values) == 0:
        return values
    if not _remember(_const, values, ()):
        raise TypeError(f"whence.constant cannot mark a {type(values).__name__}; pass a list or an array")
    return values


def is_constant(v):
    e = _const.get(id(v))
    return e is not None and e[0]() is v


def is_scalar_like(v):
    return v is None or np.ndim(v) == 0 and not isinstance(v, (pd.Series, pd.DataFrame, pd.Index))


def warn_constant(where, v):
    """A value whence cannot see entered a tracked frame at ``where``: say so once (see :func:`constant`)."""
    if is_scalar_like(v) or is_constant(v) or lineage_of(v) is not None:
        return
    what = type(v).__name__
    warnings.warn(f"whence: {where} was assigned from a {what} whence cannot see into (computed outside "
                  f"tracked objects): its cells are constants with no lineage. Keep the computation on the tracked "
                  f"frame, or mark a deliberate constant with whence.constant(values)", ConstantValueWarning,
                  stacklevel=user_stacklevel())


from ... import hooks as _hooks  # noqa: E402

# the query layer asks for the node of a plain array or Index handed out by a tracked frame (see whence.hooks)
if plain_node not in _hooks.NODE_RESOLVERS:
    _hooks.NODE_RESOLVERS.append(plain_node)
