"""Scores of training rows carried back to source rows through the lineage of the training matrix.

For every training row ``i`` and source table ``T``, the lineage gives the rows of ``T`` that row ``i`` was
computed from (its data cells, not the control cells that chose it).  A training row made from ``m`` rows of
``T`` (a join fans in, an aggregate sums several rows) shares its score among them: each receives
``score / m`` (``normalize=True``, the default), so that the scores of a table's rows add up to the summed
score of the training rows that table fed; with ``normalize=False`` each receives the whole score.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["row_relation", "scores_by_source", "SourceScore"]


class SourceScore(NamedTuple):
    """A source row's share of the scores: table, row in the table, summed score, training rows it fed."""

    table: str
    row: int
    score: float
    train_rows: int


def _node(train):
    from ..query import node_of as _node_of
    return _node_of(train, "training matrix")


def row_relation(train):
    """``{source name: (train_rows, source_rows)}``: int64 pairs, unique, of every training row and the source
    rows its data cells derive from.

    One hop for a table's lineage (a tracked frame's ``to_numpy``: the relation is already composed); any
    other training matrix is answered by one backward query per training row.
    """
    node = _node(train)
    fast = _table_pairs(node)
    if fast is not None:
        return fast
    from ..cellset import CellSet
    from ..query import backward_sets as _backward_sets, region_mask
    n = node.shape[0] if node.shape else 1
    acc = {}
    for i in range(n):
        idx = (i,) + (slice(None),) * (len(node.shape) - 1)
        found, _ = _backward_sets(node, CellSet.dense(region_mask(node.shape, idx)))
        for src, cs in found.items():
            cells = cs.coordinates()
            rows = np.unique(cells[:, 0]) if cells.shape[1] else np.zeros(min(len(cells), 1), np.int64)
            lst = acc.setdefault(src.name, ([], []))
            lst[0].append(np.full(rows.size, i, np.int64))
            lst[1].append(rows.astype(np.int64))
    return {k: (np.concatenate(a), np.concatenate(b)) for k, (a, b) in acc.items()}


def _table_pairs(node):
    """The pairs from a table map whose inputs are all sources (no graph walk), or None."""
    from ..tabular.relations import TableMap
    m = node.map
    if not isinstance(m, TableMap) or not all(node.parents[k].is_source for k, _ in m.entries):
        return None
    n = node.shape[0]
    rows = np.arange(n, dtype=np.int64)
    acc = {}
    for k, p in m.entries:
        if p.control or not p.data_row(m.nidx).any():
            continue
        ptr, src = p.rel.rows_per(rows)
        tr = np.repeat(rows, np.diff(ptr))
        name = node.parents[k].name
        a = acc.setdefault(name, ([], []))
        a[0].append(tr)
        a[1].append(src)
    out = {}
    for name, (a, b) in acc.items():
        tr, sr = np.concatenate(a), np.concatenate(b)
        m = int(sr.max()) + 1 if sr.size else 1
        key = np.unique(tr * m + sr)  # the pairs sorted by (training row, source row), as one int64 key
        out[name] = (key // m, key % m)
    return out


def scores_by_source(train, scores, normalize=True, *, rows=True, relation=None):
    """Scores summed per source table and per source row (see the module's description).

    ``rows=False`` sums the tables only (fast); ``relation`` is :func:`row_relation`'s answer for ``train``,
    when several score vectors of the same training matrix are summed.

    Returns
    -------
    dict
        ``{"tables": {name: total}, "rows": [SourceScore(table, row, score, train_rows), ...]}``, rows by
        descending absolute score.
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    node = _node(train)
    n = node.shape[0] if node.shape else 1
    if scores.size != n:
        raise ValueError(f"{scores.size} scores for a training matrix of {n} rows")
    rel = row_relation(train) if relation is None else relation
    want_rows = rows
    tables, rows = {}, []
    for name, (tr, src) in sorted(rel.items()):
        if not tr.size:
            continue
        share = scores[tr]
        if normalize:
            fan = np.bincount(tr, minlength=n)
            share = share / fan[tr]
        if not want_rows:
            tables[name] = float(share.sum())
            continue
        uniq, inv = np.unique(src, return_inverse=True)
        tot = np.bincount(inv, weights=share)
        cnt = np.bincount(inv)
        tables[name] = float(tot.sum())
        rows.extend(SourceScore(name, int(u), float(t), int(c)) for u, t, c in zip(uniq, tot, cnt))
    rows.sort(key=lambda r: (-abs(r.score), r.table, r.row))
    return {"tables": tables, "rows": rows}
