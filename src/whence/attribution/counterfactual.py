"""Counterfactual attribution in source rows: what would this prediction be without that source row?

The effect of a source row on a prediction is ``f(all data) - f(data without the row)``: positive when the row
raised the output (the correct-class margin for classifiers, the prediction for regressors), after re-running
the ETL and retraining to the optimum.  whence answers it without either:

1. the deletion is propagated through the recorded operations (:mod:`whence.attribution.deletion`): a row of
   the anchor table removes its training row, a row that feeds an aggregate changes that aggregate in the
   training rows it fed (leave-one-out values for every row at once);
2. the model's change follows from the influence function: with ``H`` the Hessian of the training objective at
   the fitted parameters and ``dG`` the change of the summed loss gradient over the changed training rows
   (``g(new row) - g(old row)``, ``-g(old row)`` for a removed one), the parameters move by ``-H^-1 dG`` and the
   effect is ``grad f(x)^T H^-1 dG``; for all source rows at once this is one matrix product.

Deleting a group (a file's rows, a fraction of a table, the rows matching a predicate) is propagated jointly
(aggregates recomputed over each group's remaining rows) and the model is moved by Newton steps with the
Hessian of the new training set: the second-order correction that large groups need.

A source row that fed no training row (filtered out by the ETL) has effect 0, and the answer says which rows
those are.  The equal split of training-row scores among source rows (:meth:`Explanation.by_source`) is a
convention, not a quantity anyone can check; these effects are checked against deleting, re-running the ETL
and retraining (``tests/test_counterfactual.py``, ``benchmarks/bench_counterfactual.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .deletion import CounterfactualError, propagate, propagate_group

__all__ = ["SourceEffect", "GroupEffect", "SourceEffects", "Counterfactual", "CounterfactualError"]


class SourceEffect(NamedTuple):
    """One source row's effect on a prediction: ``f(with) - f(without the row)`` (positive: it raised it).

    ``line`` is the 1-based line of the file (None when unknown); ``train_rows`` how many training rows its
    deletion removes or changes.
    """

    rank: int
    table: str
    row: int
    effect: float
    line: int | None
    train_rows: int


class GroupEffect(NamedTuple):
    """The effect of deleting a group of source rows together.

    ``effect`` is ``f(with) - f(without the group)`` after Newton steps on the new training set (the
    second-order correction, to convergence by default); ``first_order`` the influence-function estimate of the same joint deletion;
    ``sum_of_rows`` the sum of the rows' single effects (what adding up single deletions would say);
    ``prediction_without`` the output without the group.
    """

    effect: float
    first_order: float
    sum_of_rows: float
    prediction_without: float
    source_rows: int
    removed_training_rows: int
    changed_training_rows: int
    exact: bool
    rules: tuple


def _lines(node):
    from ..tabular.source_tables import table_source
    t = table_source(node)
    if t is None:
        return None, None
    try:
        return t.lines(), t.path
    except Exception:  # noqa: BLE001 - a file that moved or changed: no lines
        return None, t.path


class SourceEffects:
    """The effect of deleting each source row on each of several predictions.

    Attributes
    ----------
    effects : dict
        ``{table: float32 array (n_predictions, rows of the table)}``.
    outputs : ndarray (n_predictions,)
        The outputs explained (margins or predictions).
    fed_nothing : dict
        ``{table: bool array}``: source rows that fed no training row (effect 0: deleting them changes nothing).
    rules : dict
        ``{table: [{"op", "rule", "exact"}, ...]}``: the operations each table's deletions went through.
    """

    def __init__(self, attributor, ctx, X1_test, y_idx, effects, props, outputs, label, test_rows, dG):
        self._attr = attributor
        self._ctx = ctx
        self._X1_test = X1_test
        self._y_idx = y_idx
        self.effects = effects
        self._props = props
        self.outputs = outputs
        self.label = label
        self.test_rows = test_rows
        self._dG = dG

    @property
    def tables(self):
        return list(self.effects)

    @property
    def fed_nothing(self):
        return {t: p.fed_nothing for t, p in self._props.items()}

    @property
    def rules(self):
        return {t: p.rules for t, p in self._props.items()}

    @property
    def exact(self):
        """``{table: True}`` when every deletion of the table went through exact rules (no ETL re-run)."""
        return {t: p.exact for t, p in self._props.items()}

    def __len__(self):
        return int(self.outputs.size)

    def __getitem__(self, t):
        """The :class:`Counterfactual` of prediction ``t``."""
        m = len(self)
        if not -m <= t < m:
            raise IndexError(f"prediction {t} is out of range for {m} predictions")
        t = t % m
        return Counterfactual(self, t)

    def __repr__(self):
        tabs = ", ".join(f"{k} ({v.shape[1]} rows)" for k, v in self.effects.items())
        return f"<SourceEffects of {len(self)} prediction(s) over {tabs}>"


class Counterfactual:
    """What one prediction would be without each source row (or group of rows).

    Made by :meth:`Attributor.counterfactual` or :meth:`Explanation.counterfactual`.

    Examples
    --------
    >>> import io, numpy as np, pandas as pd, whence as wh
    >>> from sklearn.linear_model import LogisticRegression
    >>> from whence.attribution import Attributor
    >>> wh.reset()
    >>> rng = np.random.default_rng(0)
    >>> people = wh.track_frame(pd.DataFrame({"id": np.arange(60), "x": rng.normal(size=60)}), name="people")
    >>> loans = wh.track_frame(pd.DataFrame({"id": rng.integers(0, 60, 200), "amt": rng.gamma(2, 1, 200)}),
    ...                        name="loans")
    >>> agg = loans.groupby("id").agg(debt=("amt", "mean"), n=("amt", "count"))
    >>> df = people.merge(agg, on="id", how="left").fillna({"debt": 0.0, "n": 0.0})
    >>> X = df[["x", "debt", "n"]].to_numpy()
    >>> y = (np.asarray(X)[:, 0] + 0.5 * np.asarray(X)[:, 1] + rng.normal(size=60) > 1).astype(int)
    >>> attr = Attributor(LogisticRegression(C=10.0).fit(np.asarray(X), y), X, y)
    >>> cf = attr.counterfactual(np.asarray(X)[3], y[3])
    >>> sorted(cf.tables), cf.effects["loans"].shape, cf.exact
    (['loans', 'people'], (200,), {'loans': True, 'people': True})
    >>> r = cf.top(1)[0]; r.table in ("loans", "people")
    True
    >>> g = cf.group("loans", rows=np.arange(20))   # deleted together: Newton steps on the new training set
    >>> g.source_rows, g.exact, g.prediction_without == cf.output - g.effect
    (20, True, True)
    """

    def __init__(self, effects, t):
        self._all = effects
        self._t = t
        self.output = float(effects.outputs[t])
        self.label = effects.label
        self.test_row = effects.test_rows[t] if effects.test_rows is not None else None
        self.effects = {k: v[t] for k, v in effects.effects.items()}

    # ------------------------------------------------------------------ reading
    @property
    def tables(self):
        return list(self.effects)

    @property
    def fed_nothing(self):
        """``{table: bool array}``: source rows that fed no training row; their effect is 0 by construction
        (deleting them changes no training row)."""
        return self._all.fed_nothing

    @property
    def exact(self):
        return self._all.exact

    @property
    def rules(self):
        return self._all.rules

    def _ranked(self, key, k, table):
        tabs = [table] if table is not None else self.tables
        for tb in tabs:
            if tb not in self.effects:
                raise CounterfactualError(f"no effects for table {tb!r}; tables: {self.tables}")
        vals = np.concatenate([self.effects[tb] for tb in tabs]).astype(np.float64)
        which = np.concatenate([np.full(self.effects[tb].size, i) for i, tb in enumerate(tabs)])
        rows = np.concatenate([np.arange(self.effects[tb].size) for tb in tabs])
        order = np.lexsort((rows, which, key(vals)))[:k]
        return [self._entry(i, tabs[which[o]], int(rows[o])) for i, o in enumerate(order)]

    def _entry(self, rank, table, row):
        p = self._all._props[table]
        lines, _ = _lines(self._all._ctx.sources[table])
        n_tr = int(np.count_nonzero(p.src == row))
        return SourceEffect(rank, table, row, float(self.effects[table][row]),
                            None if lines is None else int(lines[row]), n_tr)

    def top(self, k=10, table=None):
        """The ``k`` source rows whose deletion would lower the output most (they raised it most)."""
        return self._ranked(lambda v: -v, k, table)

    def bottom(self, k=10, table=None):
        """The ``k`` source rows whose deletion would raise the output most (most negative effect first)."""
        return self._ranked(lambda v: v, k, table)

    def largest(self, k=10, table=None):
        """The ``k`` source rows with the largest effect in absolute value."""
        return self._ranked(lambda v: -np.abs(v), k, table)

    def row(self, table, row):
        """The :class:`SourceEffect` of one source row."""
        if table not in self.effects:
            raise CounterfactualError(f"no effects for table {table!r}; tables: {self.tables}")
        n = self.effects[table].size
        if not 0 <= row < n:
            raise IndexError(f"row {row} of {table!r} is out of range ({n} rows)")
        return self._entry(0, table, int(row))

    def prediction_without(self, table, row):
        """The output had source row ``row`` of ``table`` not existed (first order)."""
        return self.output - self.row(table, row).effect

    def trace_to_file(self, rank=0, *, table=None, row=None, ranking="largest"):
        """The file line of a source row (by ``rank`` in ``ranking``, or ``table`` and ``row``) and the
        training rows its deletion changes or removes.

        Returns
        -------
        dict
            ``{"table", "row", "path", "line", "effect", "training_rows": [...], "removed": [...]}``.
        """
        if table is None:
            ranked = getattr(self, ranking)(rank + 1)
            if len(ranked) <= rank:
                raise IndexError(f"rank {rank} is out of range")
            e = ranked[rank]
            table, row = e.table, e.row
        e = self.row(table, row)
        p = self._all._props[table]
        sel = p.src == row
        _, path = _lines(self._all._ctx.sources[table])
        return {"table": table, "row": int(row), "path": path, "line": e.line, "effect": e.effect,
                "training_rows": np.unique(p.train[sel & ~p.removed]).tolist(),
                "removed": np.unique(p.train[sel & p.removed]).tolist(),
                "fed_nothing": bool(p.fed_nothing[row])}

    # ------------------------------------------------------------------ groups
    def group(self, table=None, rows=None, *, where=None, lines=None, drop=None, steps=None, etl=None,
              sources=None, target=None):
        """The effect of deleting a group of source rows together.

        Parameters
        ----------
        table : str
            The table of ``rows`` / ``where`` / ``lines``; alone: every row of the table (its whole file).
        rows : array of int or bool mask, optional
            Source rows (0-based) of ``table``.
        where : callable, optional
            A predicate on the table's rows: called with the source file read by plain pandas, it returns a
            boolean mask (``where=lambda t: t["CREDIT_ACTIVE"] == "Closed"``).
        lines : list of int, optional
            1-based file lines of ``table``.
        drop : dict, optional
            ``{table: rows}`` over several tables at once.
        steps : int, optional
            Newton steps on the new training set, with the exact Hessian (1: one second-order correction of the
            first-order estimate); by default until the gradient vanishes (the retrained optimum, for the
            features whence propagated).
        etl, sources, target : optional
            Used only when a deletion has no rule (the ETL is re-run once for the whole group).

        Returns
        -------
        GroupEffect
        """
        drop = self._drop(table, rows, where, lines, drop)
        attr = self._all._attr
        ctx = self._all._ctx
        removed, changed, new, rules = propagate_group(ctx, drop, etl=etl, sources=sources, target=target)
        eff, first, f_new = attr._group_effect(removed, changed, new, self._all._X1_test[self._t:self._t + 1],
                                               self._all._y_idx[self._t:self._t + 1], steps)
        ssum = float(sum(float(self.effects[t][np.asarray(r)].astype(np.float64).sum()) for t, r in drop.items()
                         if t in self.effects))
        return GroupEffect(float(eff[0]), float(first[0]), ssum, float(f_new[0]),
                           int(sum(len(v) for v in drop.values())), int(removed.size), int(changed.size),
                           all(r["exact"] for r in rules), tuple(rules))

    def _drop(self, table, rows, where, lines, drop):
        ctx = self._all._ctx
        if drop is not None:
            if table is not None or rows is not None or where is not None or lines is not None:
                raise ValueError("give drop= alone, or table with rows / where / lines")
            out = {}
            for t, r in drop.items():
                ctx.check_table(t)
                out[t] = _rows_of(r, ctx.sources[t].shape[0], t)
            return out
        if table is None:
            raise ValueError("name the table (table=...) or give drop={table: rows}")
        ctx.check_table(table)
        n = ctx.sources[table].shape[0]
        given = sum(x is not None for x in (rows, where, lines))
        if given > 1:
            raise ValueError("give one of rows, where and lines")
        if rows is not None:
            return {table: _rows_of(rows, n, table)}
        if lines is not None:
            from ..tabular.source_tables import rows_of_lines
            return {table: rows_of_lines(ctx.sources[table], table, lines, "line")}
        if where is not None:
            from ..tabular.source_tables import table_source
            t = table_source(ctx.sources[table])
            if t is None or t.path is None:
                raise CounterfactualError(f"table {table!r} was not read from a file: give rows= instead of where=")
            from .etl_rerun import read_table
            mask = np.asarray(where(read_table(t.path)), bool)
            if mask.shape != (n,):
                raise ValueError(f"where= returned {mask.shape} values for {n} rows of {table!r}")
            return {table: np.flatnonzero(mask)}
        return {table: np.arange(n)}

    def summary(self):
        """Per table: rows, rows that fed nothing, the largest effect (absolute), the sums of the positive and
        of the negative single-row effects, and whether every rule was exact."""
        out = {}
        for t, e in self.effects.items():
            e64 = e.astype(np.float64)
            i = int(np.argmax(np.abs(e64))) if e64.size else -1
            out[t] = {"rows": int(e.size), "fed_nothing": int(self.fed_nothing[t].sum()),
                      "largest": float(e64[i]) if i >= 0 else 0.0, "largest_row": i,
                      "sum_positive": float(e64[e64 > 0].sum()), "sum_negative": float(e64[e64 < 0].sum()),
                      "exact": bool(self.exact[t])}
        return out

    def table_effects(self, steps=None, *, reasons=False):
        """``{table: GroupEffect}`` of deleting every row of each table that is not the anchor (a table whose
        deletion removes every training row has no counterfactual model: it is left out, as is a table whose
        deletion leaves the ETL without a training matrix; ``reasons=True`` also returns ``{table: why}`` for
        those)."""
        ctx = self._all._ctx
        out, why = {}, {}
        for t in self.tables:
            if ctx.anchor is not None and ctx.anchor[0] == t:
                why[t] = "deleting the anchor table deletes every training row"
                continue
            try:
                out[t] = self.group(t, steps=steps)
            except CounterfactualError as e:
                why[t] = str(e)
        return (out, why) if reasons else out

    def to_dict(self, k=10, with_tables=True):
        """A JSON-ready summary: output, per-table summary, the ``k`` largest rows with their file lines, the
        whole-table deletions, the rules."""
        doc = {"output": self.output, "label": self.label, "test_row": self.test_row,
               "tables": self.summary(),
               "largest": [dict(e._asdict()) for e in self.largest(k)],
               "rules": self.rules}
        if with_tables:
            eff, why = self.table_effects(reasons=True)
            doc["delete_table"] = {t: {"effect": g.effect, "first_order": g.first_order,
                                       "prediction_without": g.prediction_without,
                                       "changed_training_rows": g.changed_training_rows}
                                   for t, g in eff.items()}
            doc["delete_table_undefined"] = why
        for e in doc["largest"]:
            e["path"] = _lines(self._all._ctx.sources[e["table"]])[1]
        return doc

    def __repr__(self):
        head = f"Counterfactual of {self.label or 'an output'} = {self.output:.4g}"
        lines = [head + ": effect of deleting each source row (f with - f without)"]
        for t, s in self.summary().items():
            lines.append(f"  {t:<22} {s['rows']:>8} rows  largest {s['largest']:+.3g} (row {s['largest_row']})"
                         f"  fed nothing {s['fed_nothing']}{'' if s['exact'] else '  (ETL re-run)'}")
        return "\n".join(lines)


def _rows_of(r, n, table):
    r = np.asarray(r)
    if r.dtype == bool:
        if r.shape != (n,):
            raise ValueError(f"a boolean rows mask of {table!r} needs {n} entries, got {r.shape}")
        r = np.flatnonzero(r)
    r = r.astype(np.int64).reshape(-1)
    bad = r[(r < 0) | (r >= n)]
    if bad.size:
        raise IndexError(f"rows {bad[:5].tolist()} of {table!r} are out of range ({n} rows)")
    return np.unique(r)


def _one_blas_thread():
    """Deletion propagation multiplies tall matrices with a few dozen columns: one BLAS thread does it as fast
    as several, and spares the CPU time that waiting threads burn on a busy machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def source_effects(attr, X_test, y_test, tables=None, *, rows=None, etl=None, sources=None, target=None,
                   test_rows=None, progress=False):
    """See :meth:`whence.attribution.Attributor.source_effects`."""
    if attr.train is None:
        raise CounterfactualError("the training matrix has no lineage: pass a tracked X_train (a tracked frame "
                                  "or its to_numpy) to the Attributor to attribute in source rows")
    if getattr(attr, "_cf_ctx", None) is None:
        with _one_blas_thread():
            attr._cf_context()
    ctx = attr._cf_context()
    if tables is None:
        tables = sorted(ctx.sources)
    elif isinstance(tables, str):
        tables = [tables]
    for t in tables:
        ctx.check_table(t)
    if rows is not None and len(tables) != 1:
        raise ValueError("rows= needs exactly one table")
    X1 = attr._design(attr._features(X_test, "X_test"))
    y_idx = attr._labels(y_test, "y_test")
    if y_idx.shape[0] != X1.shape[0]:
        raise ValueError(f"X_test has {X1.shape[0]} rows but y_test has {y_idx.shape[0]}")
    B = attr._test_directions(X1, y_idx)  # (m, P): grad f H^-1
    effects, props, dGs = {}, {}, {}
    memo = {}  # products with the training matrix, shared by the tables
    for t in tables:
        key = (t, None if rows is None else tuple(np.asarray(rows).reshape(-1).tolist()))
        cached = attr._cf_cache.get(key)
        if cached is None:
            with _one_blas_thread():
                p = propagate(ctx, t, rows, etl=etl, sources=sources, target=target, progress=progress)
                dG = attr._delta_grads(p)
            cached = attr._cf_cache[key] = (p, dG)
        p, dG = cached
        props[t], dGs[t] = p, dG
        effects[t] = dG.apply(B, memo)
    outputs = attr._outputs_of(X1, y_idx, attr.W)
    label = attr._label_of(y_idx[0]) if len(y_idx) == 1 else attr._output_kind()
    return SourceEffects(attr, ctx, X1, y_idx, effects, props, outputs, label, test_rows, dGs)


__all__ += ["source_effects"]
