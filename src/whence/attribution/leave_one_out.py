"""Leave-one-out values of group-by aggregates: every group's aggregate without each of its input rows.

For deletion propagation (:mod:`whence.attribution.deletion`): deleting a source row that feeds an aggregate
changes the aggregate of its group (or removes the group, when it was the group's only row).  Computed for every
input row at once, vectorised: ``count``, ``size``, ``sum``, ``mean``, ``var``, ``std`` in closed form,
``min``/``max`` through the second-best value of each group, ``first``/``last`` through the second non-missing
value, ``nunique`` through value multiplicities, and any other function pandas applies (``median``, ``prod``,
callables, ...) by one pandas group-by over all leave-one-out subsets at once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["loo_values", "group_values", "float64_or_none"]


def float64_or_none(a):
    """``a`` as a float64 array, or None when its values are not numbers."""
    try:
        return np.asarray(a, np.float64)
    except (TypeError, ValueError):
        return None


def _first_two(codes, order_key, valid, ng):
    """Per group: the input row ranked first and the value rank second by ``order_key`` among valid rows
    (-1 when missing)."""
    pos = np.flatnonzero(valid & (codes >= 0))
    o = pos[np.lexsort((order_key[pos], codes[pos]))]
    g = codes[o]
    start = np.ones(o.size, bool)
    start[1:] = g[1:] != g[:-1]
    first = np.full(ng, -1, np.int64)
    first[g[start]] = o[start]
    sec = np.full(ng, -1, np.int64)
    nxt = np.flatnonzero(start)[:] + 1
    ok = (nxt < o.size)
    ok[ok] = g[nxt[ok]] == g[start][ok]
    sec[g[start][ok]] = o[nxt[ok]]
    return first, sec


def loo_values(func, values, codes, ng, *, max_expanded=50_000_000):
    """The value of an aggregate of every group without each input row, for every input row at once.

    Parameters
    ----------
    func : str or callable
        The aggregation (``"sum"``, ``"mean"``, ``"count"``, ``"size"``, ``"min"``, ``"max"``, ``"var"``,
        ``"std"``, ``"first"``, ``"last"``, ``"nunique"`` in closed form; anything else pandas applies).
    values : ndarray (n,) or None
        The input column (None for ``size``).
    codes : ndarray of int (n,)
        Group of every input row (-1: in no group).
    ng : int
        Number of groups.

    Returns
    -------
    (new, vanish, rule)
        ``new`` (n,) float64: the group's value without the row (NaN for rows in no group); ``vanish`` (n,)
        bool: the row was its group's only row (the group disappears); ``rule``: the rule's name, or None when
        there is none (the caller falls back).

    Examples
    --------
    >>> import numpy as np
    >>> v = np.array([1.0, 5.0, 3.0, 7.0]); g = np.array([0, 0, 0, 1])
    >>> new, vanish, rule = loo_values("max", v, g, 2)
    >>> new.tolist()[:3], vanish.tolist(), rule
    ([5.0, 3.0, 5.0], [False, False, False, True], 'second-best value (max)')
    >>> loo_values("median", v, g, 2)[0].tolist()[:3]
    [4.0, 2.0, 3.0]
    """
    codes = np.asarray(codes, np.int64)
    n = codes.size
    ing = codes >= 0
    cc = np.where(ing, codes, 0)
    size = np.bincount(codes[ing], minlength=ng)
    vanish = ing & (size[cc] == 1)
    new = np.full(n, np.nan)
    if func == "size":
        new[ing] = size[cc][ing] - 1
        return new, vanish, "size - 1"
    if func == "count" and float64_or_none(values) is None:
        import pandas as pd
        values = np.where(np.asarray(pd.isna(values)), np.nan, 0.0)
    if isinstance(func, str) and func in ("count", "sum", "mean", "var", "std", "min", "max"):
        v = float64_or_none(values)
        if v is None:
            return _expanded(func, values, codes, ng, vanish, max_expanded)
        return _loo_closed_form(func, v, codes, cc, ing, ng, new, vanish)
    if isinstance(func, str) and func in ("first", "last"):
        import pandas as pd
        ok = ing & ~np.asarray(pd.isna(values))
        order = np.arange(n, dtype=np.float64) * (1 if func == "first" else -1)
        first, sec = _first_two(codes, order, ok, ng)
        fv = float64_or_none(values)
        if fv is None:
            return _expanded(func, values, codes, ng, vanish, max_expanded)
        best = np.where(first >= 0, fv[np.maximum(first, 0)], np.nan)
        second = np.where(sec >= 0, fv[np.maximum(sec, 0)], np.nan)
        out = np.where(np.arange(n) == first[cc], second[cc], best[cc])
        new[ing] = out[ing]
        return new, vanish, f"second non-missing value ({func})"
    if func == "nunique":
        import pandas as pd
        fcodes, _ = pd.factorize(np.asarray(values), use_na_sentinel=True)
        ok = ing & (fcodes >= 0)
        key = cc.astype(np.int64) * (int(fcodes.max()) + 2 if fcodes.size else 1) + fcodes
        _, inv, mult = np.unique(np.where(ok, key, -1), return_inverse=True, return_counts=True)
        distinct = np.zeros(ng)
        first_of = np.zeros(inv.size, bool)
        _, idx = np.unique(np.where(ok, key, -1), return_index=True)
        first_of[idx] = True
        np.add.at(distinct, cc[ok & first_of], 1.0)
        out = distinct[cc] - (ok & (mult[inv] == 1))
        new[ing] = out[ing]
        return new, vanish, "nunique - (value unique in its group)"
    return _expanded(func, values, codes, ng, vanish, max_expanded)


def _loo_closed_form(func, v, codes, cc, ing, ng, new, vanish):
    """:func:`loo_values` of ``count``, ``sum``, ``mean``, ``var``, ``std`` (closed forms), ``min`` and ``max``
    (the second-best value of each group) over the float64 values ``v``; fills ``new``."""
    n = codes.size
    ok = ing & ~np.isnan(v)
    v0 = np.where(ok, v, 0.0)
    cnt = np.bincount(cc, weights=ok.astype(float), minlength=ng)
    s = np.bincount(cc, weights=v0, minlength=ng)
    c_new = cnt[cc] - ok
    if func == "count":
        new[ing] = c_new[ing]
        return new, vanish, "count - 1 (non-missing)"
    if func == "sum":
        new[ing] = (s[cc] - v0)[ing]
        return new, vanish, "sum - value"
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s / cnt
        if func == "mean":
            out = np.where(ok, (s[cc] - v0) / c_new, mean[cc])
            out = np.where(c_new > 0, out, np.nan)
            new[ing] = out[ing]
            return new, vanish, "(sum - value) / (count - 1)"
        if func in ("var", "std"):
            dev = np.where(ok, v0 - mean[cc], 0.0)
            m2 = np.bincount(cc, weights=dev * dev, minlength=ng)
            m_new = np.where(c_new > 0, (s[cc] - v0) / c_new, np.nan)
            m2_new = np.where(ok, m2[cc] - (v0 - mean[cc]) * (v0 - m_new), m2[cc])
            # rounding: what is left of the sum of squares after cancellation is noise below this
            m2_new = np.where(np.abs(m2_new) <= 1e-12 * (m2[cc] + (v0 - mean[cc]) ** 2), 0.0, m2_new)
            var = np.where(c_new > 1, np.maximum(m2_new, 0.0) / (c_new - 1), np.nan)
            var_keep = np.where(cnt[cc] > 1, m2[cc] / (cnt[cc] - 1), np.nan)
            out = np.where(ok, var, var_keep)
            new[ing] = (np.sqrt(out) if func == "std" else out)[ing]
            return new, vanish, "Welford removal (sample, ddof=1)"
    # min / max: the second-best value of each group
    key = v if func == "min" else -v
    first, sec = _first_two(codes, np.where(ok, key, 0.0), ok, ng)
    best = np.where(first >= 0, v[np.maximum(first, 0)], np.nan)
    second = np.where(sec >= 0, v[np.maximum(sec, 0)], np.nan)
    out = np.where(np.arange(n) == first[cc], second[cc], best[cc])
    new[ing] = out[ing]
    return new, vanish, f"second-best value ({func})"


def _expanded(func, values, codes, ng, vanish, max_expanded):
    """Leave-one-out by one pandas group-by over every leave-one-out subset (sum of squared group sizes)."""
    import pandas as pd
    n = codes.size
    ing = codes >= 0
    size = np.bincount(codes[ing], minlength=ng)
    if int((size.astype(np.int64) ** 2).sum()) > max_expanded:
        return np.full(n, np.nan), vanish, None
    from ..tabular.relations import group_members
    members = group_members(codes, ing, ng)  # input rows sorted by group
    starts = np.zeros(ng + 1, np.int64)
    np.cumsum(size, out=starts[1:])
    # for the member at sorted position q (group g, start st, size k): rows st..st+k-1 except q
    g_of = codes[members]
    k = size[g_of]
    st = starts[g_of]
    rep = np.repeat(np.arange(members.size), k)
    off = np.arange(rep.size) - np.repeat(np.cumsum(k) - k, k)
    pos = np.repeat(st, k) + off
    keep = pos != rep
    rows = members[pos[keep]]
    owner = members[rep[keep]]
    s = pd.Series(np.asarray(values)[rows]).groupby(owner)
    try:
        agg = s.agg(func)
    except Exception:  # noqa: BLE001 - a function pandas cannot apply on the subsets: no rule
        return np.full(n, np.nan), vanish, None
    new = np.full(n, np.nan)
    a = float64_or_none(agg.to_numpy())
    if a is None:
        return new, vanish, None
    new[agg.index.to_numpy()] = a
    return new, vanish, f"leave-one-out subsets through pandas ({getattr(func, '__name__', func)})"


def group_values(func, values, codes, ng, drop_mask):
    """The aggregate of every group over its rows not in ``drop_mask``: ``(new (ng,), alive (ng,) bool)``.

    Used for deleting several source rows at once (all functions pandas applies, exact).
    """
    import pandas as pd
    codes = np.asarray(codes, np.int64)
    keep = (codes >= 0) & ~drop_mask
    alive = np.bincount(codes[keep], minlength=ng) > 0
    new = np.full(ng, np.nan)
    if func == "size":
        new[:] = np.bincount(codes[keep], minlength=ng)
        return new, alive
    s = pd.Series(np.asarray(values)[keep]).groupby(codes[keep])
    agg = s.agg(func)
    new[agg.index.to_numpy()] = np.asarray(agg.to_numpy(), np.float64)
    return new, alive
