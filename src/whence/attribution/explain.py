"""One prediction's attribution: the training rows ranked by their effect, and where they came from.

An :class:`Explanation` holds the score of every training row for one output (the effect of each training row
on that output: positive raised it, negative lowered it).  When the training matrix is a tracked array (or a
store handle), the rows are followed through the lineage to their source tables, rows, files and lines.
"""

from __future__ import annotations

from typing import NamedTuple

import math
from dataclasses import asdict, is_dataclass

import numpy as np

from .source_scores import SourceScore, scores_by_source

__all__ = ["Explanation", "RankedRow", "SourceScore", "attribution_document", "json_ready"]


class RankedRow(NamedTuple):
    """One training row in a ranking: its rank (0 is the first), row index and score."""

    rank: int
    row: int
    score: float


class Explanation:
    """The attribution of one output to the training rows.

    Parameters
    ----------
    scores : ndarray, shape (n_train,)
        Effect of each training row on the output (the model's correct-class margin for classifiers, the
        prediction for regressors); positive: the row raised it.
    train : TrackedArray, store handle or None
        The training matrix, when its lineage is known: :meth:`by_source` and :meth:`trace_to_file` follow it.
    output : float, optional
        The value of the output being explained.
    label : str, optional
        What the output is (``"margin of class 1"``, ``"prediction"``).
    test_row : int, optional
        Which test row is explained (kept for reports and stores).
    target : optional
        The test row's label or target.
    model : str, optional
        A short description of the model.

    Examples
    --------
    >>> import numpy as np
    >>> ex = Explanation(np.array([0.5, -2.0, 1.5, 0.0], np.float32))
    >>> [r.row for r in ex.top(2)], [r.row for r in ex.bottom(1)]
    ([2, 0], [1])
    """

    def __init__(self, scores, train=None, output=None, label=None, test_row=None, target=None, model=None):
        self.scores = np.asarray(scores, np.float32).reshape(-1)
        self.train = train
        self.output = output
        self.label = label
        self.test_row = test_row
        self.target = target
        self.model = model
        self._order = None
        self._source = None  # (attributor, x, y) when made by Attributor.explain: for counterfactual()
        self._counterfactual = None

    @property
    def order(self):
        """Training rows from the most positive score to the most negative (ties by row)."""
        if self._order is None:
            self._order = np.lexsort((np.arange(self.scores.size), -self.scores.astype(np.float64)))
        return self._order

    def top(self, k=10):
        """The ``k`` training rows that raised the output most."""
        idx = self.order[:k]
        return [RankedRow(i, int(r), float(self.scores[r])) for i, r in enumerate(idx)]

    def bottom(self, k=10):
        """The ``k`` training rows that lowered the output most (most negative first)."""
        idx = self.order[::-1][:k]
        return [RankedRow(i, int(r), float(self.scores[r])) for i, r in enumerate(idx)]

    def row_at(self, rank):
        """The training row at ``rank`` (0: the most positive; negative ranks count from the most negative)."""
        n = self.scores.size
        if not -n <= rank < n:
            raise IndexError(f"rank {rank} is out of range for {n} training rows")
        return int(self.order[rank])

    def counterfactual(self, table=None, **kw):
        """What this prediction would be without each source row: ``f(with) - f(without the row)`` per source
        row of ``table`` (default: every source table), through the ETL and the model.

        Returns a :class:`~whence.attribution.counterfactual.Counterfactual` (``.top(k)``, ``.group(...)``,
        ``.trace_to_file(...)``); the keywords go to :meth:`Attributor.source_effects`.  The answer is kept
        with the explanation (the report and the store show it).
        """
        if self._source is None:
            raise ValueError("this Explanation was not made by Attributor.explain: no model to ask")
        attr, x, y = self._source
        cf = attr.counterfactual(x, y, table, **kw)
        if table is None:
            self._counterfactual = cf
        return cf

    def by_source(self, normalize=True):
        """The equal-split convention: training-row scores shared out among their source rows and summed per
        table.  It is *not* the effect of deleting a source row (see :meth:`counterfactual`).

        A training row made from several source rows (a join, an aggregate) shares its score among them:
        each of its ``m`` source rows of a table receives ``score / m`` when ``normalize`` (the default), so
        that a table's total equals the summed score of the training rows it fed; with ``normalize=False``
        each source row receives the whole score.  Near the optimum the scores of all training rows sum to
        about zero, so a table that feeds every training row totals about zero whatever its rows do: read the
        totals as a bookkeeping of training-row scores, not as what a table changes.

        Returns
        -------
        dict
            ``{"tables": {table: total score}, "rows": [SourceScore, ...]}`` with rows sorted by descending
            absolute score.
        """
        if self.train is None:
            raise ValueError("the training matrix has no lineage: pass a tracked X_train (whence.track or a "
                             "tracked frame's to_numpy) to the Attributor")
        return scores_by_source(self.train, self.scores, normalize=normalize)

    def trace_to_file(self, rank=0, control=False):
        """The source rows (table, file, line, columns) of the training row at ``rank``."""
        if self.train is None:
            raise ValueError("the training matrix has no lineage: pass a tracked X_train to the Attributor")
        from ..tabular.trace import trace_to_file
        return trace_to_file(self.train, row=self.row_at(rank), control=control)

    def _repr_html_(self):
        from ..notebook import explanation_html
        return explanation_html(self)

    def __repr__(self):
        head = f"Explanation of {self.label or 'an output'}" + (
            f" = {self.output:.4g}" if self.output is not None else "")
        lines = [head + f": {self.scores.size} training rows"]
        for r in self.top(3):
            lines.append(f"  +{r.rank}: row {r.row:<8} {r.score:+.4g}")
        for r in self.bottom(3):
            lines.append(f"  -{r.rank}: row {r.row:<8} {r.score:+.4g}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ stored documents
def json_ready(x):
    """JSON-ready values: numpy scalars and arrays to Python, NaN and infinities to None."""
    if isinstance(x, dict):
        return {str(k): json_ready(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_ready(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_ready(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if is_dataclass(x) and not isinstance(x, type):
        return json_ready(asdict(x))
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)


def _source_rows(ex, row):
    """The source rows (table, row, path, line) of training row ``row`` of an explanation, or []."""
    if ex.train is None:
        return []
    try:
        from ..tabular.trace import trace_to_file
        tr = trace_to_file(ex.train, row=int(row))
    except Exception:  # noqa: BLE001 - a training matrix whose rows do not come from tables: no file lines
        return []
    return [{"table": s.table, "row": int(s.row), "path": s.path, "line": None if s.line is None else int(s.line)}
            for s in tr]


def attribution_document(explanations, k, model, train_object):
    """The stored document of an attribution result (kind ``"attribution"``, see :mod:`whence.store.results`):
    the top and bottom ``k`` training rows of each explanation with their source rows, the scores by source
    table, and the counterfactual effects when they were asked.

    Raises
    ------
    ValueError
        For no explanation.
    """
    if not explanations:
        raise ValueError("an attribution result needs at least one Explanation")
    test_rows = []
    relations = {}
    for pos, ex in enumerate(explanations):
        by_source = []
        if ex.train is not None:
            try:
                from .source_scores import row_relation
                rel = relations.get(id(ex.train))
                if rel is None:
                    rel = relations[id(ex.train)] = row_relation(ex.train)
                tables = scores_by_source(ex.train, ex.scores, rows=False, relation=rel)["tables"]
                by_source = [{"table": t, "score": float(v)} for t, v in tables.items()]
            except Exception:  # noqa: BLE001 - no table lineage: the bar chart is left out
                by_source = []
        entry = {
            "test_row": int(getattr(ex, "test_row", None) if getattr(ex, "test_row", None) is not None else pos),
            "label": json_ready(getattr(ex, "target", None)),
            "output": ex.label,
            "prediction": json_ready(ex.output),
            "top": [{"rank": r.rank, "train_row": r.row, "score": r.score, "sources": _source_rows(ex, r.row)}
                    for r in ex.top(k)],
            "bottom": [{"rank": r.rank, "train_row": r.row, "score": r.score, "sources": _source_rows(ex, r.row)}
                       for r in ex.bottom(k)],
            "by_source": by_source,
        }
        cf = getattr(ex, "_counterfactual", None)
        if cf is not None:  # Explanation.counterfactual() was asked: the effects of deleting source rows
            entry["counterfactual"] = cf.to_dict(k=k)
        test_rows.append(entry)
    first = explanations[0]
    return {"model": model or getattr(first, "model", None) or "", "n_train": int(first.scores.size),
            "train_object": train_object or "", "k": int(k), "test_rows": json_ready(test_rows)}
