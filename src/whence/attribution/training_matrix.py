"""The training matrix as deletion propagation reads it: its node, its anchor table, its values, and the
column statistics used as fill values.

- :func:`training_node`, :func:`walk_nodes`: the lineage graph above the training matrix;
- :func:`anchor_of`: the source table whose rows map one to one onto the training rows;
- :func:`numeric_values`, :func:`raw_rows`, :func:`set_column`, :func:`column_names`: its values, as float64 and
  as the raw rows the model's preprocessing accepts;
- :class:`FillStatistic`, :func:`fill_statistics`: the columns whose fill value is the median or mean of the
  column's other values (a gap filled with ``df[col].median()``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["walk_nodes", "training_node", "anchor_of", "numeric_values", "raw_rows", "set_column", "column_names",
           "FillStatistic", "fill_statistics"]


def walk_nodes(node):
    """Every node upstream of ``node`` (itself included), each once."""
    seen, out, stack = set(), [], [node]
    while stack:
        x = stack.pop()
        if x is None or x.id in seen:
            continue
        seen.add(x.id)
        out.append(x)
        stack.extend(x.parents)
    return out


def training_node(X):
    """The node of the training matrix ``X`` (a NotTrackedError when it carries no lineage)."""
    from ..query import node_of
    return node_of(X, "training matrix")


def anchor_of(relation, n_train):
    """``(name, source row of every training row)`` of the table whose rows map one to one onto the training
    rows (the first by name when several do), or None."""
    best = None
    for name, (tr, src) in sorted(relation.items()):
        if tr.size != n_train or np.unique(tr).size != n_train or np.unique(src).size != n_train:
            continue
        order = np.argsort(tr)
        if best is None:
            best = (name, src[order])
    return best


def numeric_values(X):
    """The values of ``X`` as float64 (n, d); a DataFrame column that is not numeric is all NaN."""
    try:
        return np.asarray(np.asarray(X), np.float64)
    except (TypeError, ValueError):
        import pandas as pd
        if isinstance(X, pd.DataFrame):
            out = np.full(X.shape, np.nan)
            for j in range(X.shape[1]):
                try:
                    out[:, j] = np.asarray(X.iloc[:, j], np.float64)
                except (TypeError, ValueError):
                    pass
            return out
        raise


def raw_rows(X, rows):
    """Rows ``rows`` of the training matrix ``X`` as plain data (an untracked DataFrame or a float64 array),
    a copy that may be changed."""
    import pandas as pd
    if isinstance(X, pd.DataFrame):
        from ..tabular.frame import untracked
        return untracked(pd.DataFrame(X) if type(X) is pd.DataFrame else X).iloc[rows].copy()
    return np.asarray(X)[rows].astype(np.float64, copy=False)


def set_column(new, j, vals):
    """Set column ``j`` (a position) of rows ``new`` (a DataFrame or an array) to ``vals``, in place."""
    import pandas as pd
    if isinstance(new, pd.DataFrame):
        new.iloc[:, j] = vals
    else:
        new[:, j] = vals


def column_names(X, cols):
    import pandas as pd
    if isinstance(X, pd.DataFrame):
        return [str(X.columns[j]) for j in cols][:8]
    return [int(j) for j in cols][:8]


class FillStatistic:
    """A fill value that is a statistic of its column: ``fill == median`` (or mean) of the column's other
    values over the training rows (a gap filled with ``df[col].median()``)."""

    def __init__(self, j, kind, genuine, fill):
        self.j, self.kind, self.genuine, self.fill = j, kind, genuine, fill
        self.vals = np.zeros(0)
        self.sorted = self.vals

    def after(self, v_old, go, v_new, gn):
        """The statistic after each entry removes ``v_old`` (where ``go``) and adds ``v_new`` (where ``gn``)."""
        a = self.vals
        n = a.size
        if self.kind == "mean":
            tot = a.sum()
            cnt = n - go.astype(np.int64) + gn
            with np.errstate(invalid="ignore", divide="ignore"):
                return (tot - np.where(go, v_old, 0.0) + np.where(gn, v_new, 0.0)) / cnt
        srt = self.sorted
        k = np.where(go, np.searchsorted(srt, np.where(go, v_old, 0.0)), n)
        m = n - go.astype(np.int64)
        qa = np.searchsorted(srt, np.where(gn, v_new, 0.0))
        q = qa - (go & (k < qa))
        size = m + gn

        def b(t):
            idx = np.where(t < k, t, t + 1)
            return srt[np.clip(idx, 0, n - 1)]

        def el(t):
            base = np.where(gn & (t > q), b(t - 1), b(t))
            return np.where(gn & (t == q), v_new, base)
        half = size // 2
        odd = size % 2 == 1
        return np.where(odd, el(half), (el(np.maximum(half - 1, 0)) + el(half)) / 2)


def fill_statistics(values):
    """The columns whose most frequent value is the median or mean of the column's other values."""
    out = []
    for j in range(values.shape[1]):
        col = values[:, j]
        ok = ~np.isnan(col)
        u, cnt = np.unique(col[ok], return_counts=True)
        if u.size < 3 or cnt.max() < 2:
            continue
        kind = None
        for c in u[np.argsort(-cnt, kind="stable")[:3]]:  # the fill is among the most frequent values
            if cnt[np.searchsorted(u, c)] < 2:
                break
            gen = ok & (col != c)
            vals = col[gen]
            if not vals.size:
                continue
            tol = 1e-12 * max(1.0, abs(c))
            if abs(np.median(vals) - c) <= tol:
                kind = "median"
            elif abs(np.median(np.append(vals, c)) - c) <= tol:
                # one genuine cell holds the median itself; which one cannot be told by value (any is taken)
                gen = gen.copy()
                gen[np.flatnonzero(ok & (col == c))[0]] = True
                vals = col[gen]
                kind = "median"
            elif abs(vals.mean() - c) <= tol:
                kind = "mean"
            if kind is not None:
                break
        if kind is None:
            continue
        st = FillStatistic(j, kind, gen, float(c))
        st.vals = vals
        st.sorted = np.sort(vals)
        out.append(st)
    return out
