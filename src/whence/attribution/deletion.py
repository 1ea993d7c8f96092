"""Deletion propagation: how the training matrix changes when source rows are deleted.

Deleting a source row changes the training matrix in one of two ways, which the lineage tells apart:

- a row of the *anchor* table (the table whose rows map one to one onto training rows, such as the applicants
  of a credit table) removes its training row;
- a row that feeds a group-by aggregate changes the aggregate of its group (or removes the group, when it was
  the group's only row), and so the feature values of the training rows that the group's row was joined to.

For the second case, every covered aggregation records its function per output column and its input values
(:mod:`whence.tabular.aggregates`); the leave-one-out value of every group for every input row is computed at
once, vectorised: ``count``, ``size``, ``sum``, ``mean``, ``var``, ``std`` in closed form, ``min``/``max``
through the second-best value of each group, ``first``/``last`` through the second non-missing value,
``nunique`` through value multiplicities, and any other function pandas applies (``median``, ``prod``,
callables, ...) by one pandas group-by over all leave-one-out subsets at once.  The changed aggregate cell is
located in the training matrix through the row relations (training row -> source rows -> aggregate input
rows -> group) and a column check: a feature column follows an aggregate column when its values equal the
aggregate's on every training row fed by a group (a copy through joins, fills and type casts); training rows
fed by no group hold the fill value a vanished group gets (a left join then ``fillna``).

What has no deletion rule (a feature computed *from* an aggregate, a lookup table joined to many rows, an
aggregate whose input rows mix several source rows, a vanished group whose fill value cannot be seen) is
answered by re-running the ETL without the rows, in plain pandas, matched to the training rows through the
anchor: :func:`rerun_without`, which :func:`whence.unlearn.forget_sources` uses too.  Every answer lists its
operations with the rule used and whether it was exact.

Column statistics computed over a whole column (a median used to fill gaps) are constants in the lineage
(see ``docs/semantics.md``): a deletion that moves such a statistic moves it in the truth but not here.
"""

from __future__ import annotations

import numpy as np

from .etl_rerun import CounterfactualError, read_table, rerun_without, run_etl
from .leave_one_out import float64_or_none, group_values, loo_values
from .training_matrix import (FillStatistic, anchor_of, column_names, fill_statistics, numeric_values, raw_rows,
                              set_column, training_node, walk_nodes)

__all__ = ["CounterfactualError", "Propagation", "propagate", "rerun_without", "anchor_of", "loo_values",
           "group_values", "DeletionContext", "run_etl", "FillStatistic"]


# ----------------------------------------------------------------------------------------------- the graph
class Propagation:
    """The changes of the training matrix when each source row of one table is deleted on its own.

    Attributes
    ----------
    table : str
    n_rows : int
        Rows of the source table.
    src, train : ndarray of int64 (k,)
        One entry per (source row, training row it changes or removes).
    removed : ndarray of bool (k,)
        The training row disappears (else its features change to ``new``).
    new : ndarray (k, d) or DataFrame
        The training row's new raw features (rows of ``removed`` entries are the old ones, unused); built on
        first access when the propagation kept them as the old rows with a few columns replaced
        (:meth:`new_rows` reads some entries without building all).
    fed_nothing : ndarray of bool (n_rows,)
        Source rows that fed no training row: deleting them changes nothing (their effect is 0).
    rules : list of dict
        ``{"op", "rule", "exact"}`` per operation the deletion went through.
    fallback : ndarray of int64
        Source rows answered by re-running the ETL.
    """

    def __init__(self, table, n_rows, src, train, removed, new, fed_nothing, rules, fallback, shifts=None):
        self.table, self.n_rows = table, int(n_rows)
        z = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        self.shifts = z if shifts is None else shifts  # (src, column, delta) of column statistics
        self.src, self.train, self.removed, self._new = src, train, removed, new
        self.fed_nothing = fed_nothing
        self.rules = rules
        self.fallback = fallback

    @property
    def new(self):
        if isinstance(self._new, _Patched):
            self._new = self._new.rows(np.arange(len(self._new)))
        return self._new

    def new_rows(self, sel):
        """The new raw rows of the entries ``sel`` (an index array)."""
        if isinstance(self._new, _Patched):
            return self._new.rows(sel)
        return self._new.iloc[sel] if hasattr(self._new, "iloc") else self._new[sel]

    @property
    def exact(self):
        """True when every operation had an exact deletion rule (no ETL re-run)."""
        return all(r["exact"] for r in self.rules) and not self.fallback.size

    def __repr__(self):
        return (f"<Propagation {self.table!r}: {self.n_rows} source rows, {self.src.size} training-row changes "
                f"({int(self.removed.sum())} removals), {int(self.fed_nothing.sum())} fed nothing, "
                f"{self.fallback.size} by ETL re-run>")


class _Patched:
    """New raw rows kept as the old rows of their training rows with some columns replaced: ``vals[:, c]`` is
    the new value of column ``cols[c]`` (an ndarray training matrix only; nothing is copied until asked)."""

    def __init__(self, X, values, t, cols, vals):
        self.X, self.values, self.t = X, values, t
        self.cols = np.asarray(cols, np.int64)
        self.vals = vals

    def __len__(self):
        return int(self.t.size)

    def rows(self, sel):
        r = raw_rows(self.X, self.t[sel])
        if self.cols.size:
            r[:, self.cols] = self.vals[sel]
        return r

    def column(self, j):
        c = np.flatnonzero(self.cols == j)
        return self.vals[:, c[0]] if c.size else self.values[self.t, j]

    @staticmethod
    def join(ctx, parts):
        """One :class:`_Patched` of the entries of ``parts`` (in order), over the union of their columns."""
        t = np.concatenate([p.t for p in parts]) if parts else np.zeros(0, np.int64)
        cols = np.unique(np.concatenate([p.cols for p in parts])) if parts else np.zeros(0, np.int64)
        if len(parts) == 1 and np.array_equal(parts[0].cols, cols):
            return parts[0]
        vals = ctx.values[:, cols][t] if cols.size else np.zeros((t.size, 0))
        lo = 0
        for p in parts:
            hi = lo + p.t.size
            if p.cols.size:
                vals[lo:hi, np.searchsorted(cols, p.cols)] = p.vals
            lo = hi
        return _Patched(ctx.X, ctx.values, t, cols, vals)


class DeletionContext:
    """What the lineage says about a training matrix, computed once: relations, sources, aggregates."""

    def __init__(self, X):
        from ..tabular.aggregates import aggregate_record
        from .source_scores import row_relation
        self.X = X
        self.node = training_node(X)
        self.n = self.node.shape[0] if self.node.shape else 1
        self.rel = row_relation(X)
        nodes = walk_nodes(self.node)
        self.sources = {x.name: x for x in nodes if x.is_source}
        self.aggs = [(x, aggregate_record(x)) for x in nodes if aggregate_record(x) is not None]
        self.anchor = anchor_of(self.rel, self.n)
        self.values = numeric_values(X)
        self.col_dep = _column_dependence(self.node)
        self.stats = fill_statistics(self.values)
        self.control = _control_rows(self.node)
        self._paths = {}
        if self.stats:
            # the aggregates' own view of which cells are missing (for fills that are column statistics)
            for name in sorted(self.sources):
                if self.anchor is None or name != self.anchor[0]:
                    self.paths(name)

    def paths(self, table):
        """``_paths(self, table)``, computed once."""
        p = self._paths.get(table)
        if p is None:
            p = self._paths[table] = _paths(self, table)
        return p

    def check_table(self, table):
        if table not in self.sources:
            raise CounterfactualError(
                f"table {table!r} is not upstream of the training matrix (its source tables: "
                f"{sorted(self.sources)})")


def _stat_shifts(ctx, s, t, removed, new):
    """``(src, column, delta)``: how each deletion moves the column statistics used as fill values."""
    import pandas as pd
    if not ctx.stats or not s.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    if isinstance(new, _Patched):
        col = new.column
    else:
        nv = numeric_values(new) if isinstance(new, pd.DataFrame) else np.asarray(new, np.float64)

        def col(j):
            return nv[:, j]
    S, J, D = [], [], []
    for st in ctx.stats:
        j = st.j
        v_old = ctx.values[t, j]
        go = st.genuine[t]
        v_new = col(j)
        gn = ~removed & ~np.isnan(v_new) & (v_new != st.fill)
        same = go & gn & (v_old == v_new)
        go, gn = go & ~same, gn & ~same
        act = go | gn
        if not act.any():
            continue
        after = st.after(v_old[act], go[act], v_new[act], gn[act])
        delta = after - st.fill
        keep = np.isfinite(delta) & (delta != 0)
        S.append(s[act][keep])
        J.append(np.full(int(keep.sum()), j, np.int64))
        D.append(delta[keep])
    if not S:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(S), np.concatenate(J), np.concatenate(D)


def _control_rows(node):
    """``{source name: sorted source rows}`` that chose training rows without feeding their data (filter masks,
    join and group keys), or None when the node is not a table map."""
    from ..tabular.relations import TableMap
    m = node.map
    if not isinstance(m, TableMap):
        return None
    n = node.shape[0]
    marks = {}
    for k, p in m.entries:
        if not p.control:
            continue
        src = np.flatnonzero(p.rel.back_mask(np.ones(p.rel.n_out, bool)))  # the union, each shared code expanded once
        name = node.parents[k].name
        size = int(src.max()) + 1 if src.size else 0
        mark = marks.get(name, np.zeros(0, bool))
        if mark.size < size:
            mark = np.concatenate([mark, np.zeros(size - mark.size, bool)])
        mark[src] = True
        marks[name] = mark
    return {name: np.flatnonzero(mark) for name, mark in marks.items()}


def _control_only(ctx, table, n_src, feeds):
    """Rows of ``table`` that chose training rows but fed none of their data: deleting them can remove or add
    training rows (a semi-join, a filter on another table), which no rule here follows."""
    if ctx.control is None:
        # the lineage of the matrix is not one table map: control paths cannot be read off it
        return np.zeros(n_src, bool)
    c = np.zeros(n_src, bool)
    rows = ctx.control.get(table)
    if rows is not None and rows.size:
        c[rows] = True
    return c & ~feeds


def _column_dependence(node):
    """``{source name: bool (columns,)}``: the columns of a table node whose data derive from each source, or
    None when the node is not a table map."""
    from ..tabular.relations import TableMap
    m = node.map
    if not isinstance(m, TableMap):
        return None
    out = {}
    for k, p in m.entries:
        if p.control:
            continue
        dep = p.data_cm(m.nidx, m.ncols).any(1)
        name = node.parents[k].name
        out[name] = out.get(name, np.zeros(m.ncols, bool)) | dep
    return out


def _source_cols(node, src_node):
    """bool (columns of a table node, source columns): the source columns each column's data derive from, or
    None when the node is not a table map."""
    from ..tabular.relations import TableMap
    m = node.map
    if not isinstance(m, TableMap):
        return None
    cm = None
    for k, p in m.entries:
        if p.control or node.parents[k] is not src_node:
            continue
        d = p.data_cm(m.nidx, m.ncols)
        cm = d.copy() if cm is None else cm | d
    return cm


class _AggPath:
    """One aggregate fed by a table, located in the training matrix."""

    def __init__(self, agg_node, rec, in2src, g_of_train, matches, fills):
        self.agg_node, self.rec = agg_node, rec
        self.in2src = in2src          # input row -> source row
        self.g_of_train = g_of_train  # training row -> group (-1: none)
        self.matches = matches        # [(agg column index, X column)]
        self.fills = fills            # X column -> fill value (nan allowed) or None when unknown

    @property
    def op(self):
        cols = ", ".join(f"{c.label}={getattr(c.func, '__name__', c.func)}({c.source or ''})"
                         for c in self.rec.columns)
        return f"groupby.agg [{cols}]"


def _paths(ctx, table):
    """The aggregates through which ``table`` feeds the training matrix, and the X columns left without a
    rule."""
    src_node = ctx.sources[table]
    tr, srows = ctx.rel.get(table, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    n_src = src_node.shape[0]
    paths = []
    covered = np.zeros(ctx.values.shape[1], bool)
    for agg_node, rec in ctx.aggs:
        lin = rec.input_lineage
        parts = [p for p in lin.parts if not p.control and p.node is src_node and p.data_row(lin.nidx).any()]
        if not parts:
            continue
        n_in = lin.n
        ptr, s = parts[0].rel.rows_per(np.arange(n_in))
        if len(parts) > 1 or not np.array_equal(np.diff(ptr), np.ones(n_in, np.int64)):
            continue  # input rows that mix several rows of the table: no rule here
        in2src = s
        src2in = np.full(n_src, -1, np.int64)
        src2in[in2src] = np.arange(n_in)
        # training row -> group
        inr = src2in[srows]
        g = np.where(inr >= 0, rec.codes[np.maximum(inr, 0)], -1)
        use = g >= 0
        g_of_train = np.full(ctx.n, -1, np.int64)
        gmax = np.full(ctx.n, -1, np.int64)
        np.maximum.at(gmax, tr[use], g[use])
        gmin = np.full(ctx.n, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(gmin, tr[use], g[use])
        has = gmax >= 0
        if (gmin[has] != gmax[has]).any():
            continue  # a training row fed by several groups of this aggregate: no rule here
        g_of_train[has] = gmax[has]
        if not has.any():
            continue
        # which columns of X copy which aggregate columns
        dep = ctx.col_dep.get(table) if ctx.col_dep is not None else None
        xcm = _source_cols(ctx.node, src_node)
        acm = _source_cols(agg_node, src_node)
        matches, fills = [], {}
        cols = range(ctx.values.shape[1]) if dep is None else np.flatnonzero(dep)
        for j in cols:
            xv = ctx.values[has, j]
            rest0 = ctx.values[~has, j]
            cands = []
            for ci, col in enumerate(rec.columns):
                out = float64_or_none(col.output)
                if out is None or out.shape[0] != rec.ngroups:
                    continue
                av = out[g_of_train[has]]
                nan = np.isnan(av)
                if not ((xv[~nan] == av[~nan]) | np.isnan(xv[~nan])).all() or \
                        not np.array_equal(np.isnan(xv[~nan]), np.isnan(av[~nan])):
                    continue
                if xcm is not None and acm is not None and not np.array_equal(xcm[j], acm[ci]):
                    continue
                # a missing aggregate (NaN, or no group at all) shows up as one fill value (a left join, then
                # fillna with a constant), or stays missing
                seen = np.concatenate([xv[nan], rest0])
                if seen.size:
                    u = np.unique(seen[~np.isnan(seen)])
                    has_nan = bool(np.isnan(seen).any())
                    if u.size > 1 or (u.size == 1 and has_nan):
                        continue
                    fill = float(u[0]) if u.size == 1 else np.nan
                else:
                    fill = None
                cands.append((ci, fill))
            if len(cands) != 1:
                continue
            matches.append((cands[0][0], int(j)))
            covered[j] = True
            fills[int(j)] = cands[0][1]
            # a fill that is a column statistic: the genuine cells are those with a group and a value
            out = float64_or_none(rec.columns[cands[0][0]].output)
            for st in ctx.stats:
                if st.j == j:
                    gen = np.zeros(ctx.n, bool)
                    gen[has] = ~np.isnan(out[g_of_train[has]])
                    st.genuine = gen
                    st.vals = ctx.values[gen, j]
                    st.sorted = np.sort(st.vals)
        if matches:
            paths.append(_AggPath(agg_node, rec, in2src, g_of_train, matches, fills))
    dep = ctx.col_dep.get(table) if ctx.col_dep is not None else None
    if dep is None:
        dep = np.ones(ctx.values.shape[1], bool) if table in ctx.rel else np.zeros(ctx.values.shape[1], bool)
    uncovered = np.flatnonzero(dep & ~covered)
    return paths, uncovered


def propagate(ctx, table, rows=None, *, etl=None, sources=None, target=None, progress=False):
    """The :class:`Propagation` of deleting each source row of ``table`` (all rows, or ``rows``) on its own."""
    import pandas as pd
    ctx.check_table(table)
    src_node = ctx.sources[table]
    n_src = src_node.shape[0]
    want = _wanted_rows(table, n_src, rows)
    tr, srows = ctx.rel.get(table, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    feeds = np.zeros(n_src, bool)
    feeds[srows] = True
    rules = []
    anchor = ctx.anchor
    agg_fed = any(p.node is src_node for _, rec in ctx.aggs for p in rec.input_lineage.parts)
    ctrl = _control_only(ctx, table, n_src, feeds) & want
    if anchor is not None and anchor[0] == table and not agg_fed and not ctrl.any():
        # each source row feeds at most one training row, and each training row one source row: removal
        sel = want[srows]
        s, t = srows[sel], tr[sel]
        rules.append({"op": f"{table} rows -> training rows (one to one)", "rule": "removes the training row",
                      "exact": True})
        new = raw_rows(ctx.X, t) if isinstance(ctx.X, pd.DataFrame) else \
            _Patched(ctx.X, ctx.values, t, [], np.zeros((t.size, 0)))
        rem = np.ones(s.size, bool)
        shifts = _stat_shifts(ctx, s, t, rem, new)
        rules += _stat_rules(ctx, shifts)
        return Propagation(table, n_src, s, t, rem, new, ~feeds, rules, np.zeros(0, np.int64), shifts)
    paths, uncovered = ctx.paths(table)
    srcs, trains, news = [], [], []
    fallback = np.zeros(n_src, bool)
    if uncovered.size and (feeds & want).any():
        fallback |= feeds
        names = column_names(ctx.X, uncovered)
        rules.append({"op": f"{table} -> columns {names}", "rule": "ETL re-run (no deletion rule: a feature "
                      "computed from an aggregate, a lookup joined to several rows, or an unrecorded operation)",
                      "exact": False})
    covered_src = np.zeros(n_src, bool)
    frame = isinstance(ctx.X, pd.DataFrame)
    for path in paths:
        covered_src[path.in2src[path.rec.codes >= 0]] = True
        s_p, t_p, new_p = _path_changes(ctx, path, want, fallback, rules, frame)
        srcs.append(s_p)
        trains.append(t_p)
        news.append(new_p)
    # rows that feed the training matrix but no aggregate rule covers, and rows that only chose training rows
    fallback |= feeds & ~covered_src
    if ctrl.any():
        fallback |= ctrl
        rules.append({"op": f"{table} rows that choose training rows without feeding them (a filter or join "
                      f"on another table)", "rule": "ETL re-run (no deletion rule)", "exact": False})
    fallback &= want
    fb = np.flatnonzero(fallback)
    if fb.size:
        if etl is None or sources is None:
            ops = sorted({r["op"] for r in rules if not r["exact"]}) or [f"{table} -> training matrix"]
            raise CounterfactualError(
                f"deleting {fb.size} row(s) of {table!r} goes through operation(s) with no deletion rule ({ops}); "
                f"pass etl= (the ETL function) and sources= ({{table: file}}) so that whence can re-run the ETL "
                f"without each row, or restrict rows= to rows with a rule")
        s2, t2, r2, n2 = _fallback_changes(ctx, table, fb, etl, sources, target, progress)
        srcs.append(s2)
        trains.append(t2)
        news.append(n2)
        rem_extra = r2
    else:
        rem_extra = np.zeros(0, bool)
    if srcs:
        s = np.concatenate(srcs)
        t = np.concatenate(trains)
        if isinstance(ctx.X, pd.DataFrame):
            new = pd.concat(news)
        elif fb.size:  # rows of the ETL re-runs: every column may change
            new = np.concatenate([n.rows(np.arange(len(n))) if isinstance(n, _Patched) else n for n in news])
        else:
            new = _Patched.join(ctx, news)
    else:
        s = t = np.zeros(0, np.int64)
        new = raw_rows(ctx.X, t)
    removed = np.concatenate([np.zeros(s.size - rem_extra.size, bool), rem_extra])
    # merge entries of the same (source row, training row) from several aggregates: the later ones carry the
    # earlier changes too
    if s.size:
        key = s * ctx.n + t
        if np.unique(key).size != key.size:
            if isinstance(new, _Patched):
                new = new.rows(np.arange(len(new)))
            s, t, new, removed = _merge_dups(ctx, key, s, t, new, removed)
    fed_nothing = ~feeds
    shifts = _stat_shifts(ctx, s, t, removed, new)
    rules += _stat_rules(ctx, shifts)
    return Propagation(table, n_src, s, t, removed, new, fed_nothing, rules, fb, shifts)


def _wanted_rows(table, n_src, rows):
    """The mask of the source rows of ``table`` asked about (all when ``rows`` is None); an IndexError for a row
    out of range."""
    if rows is None:
        return np.ones(n_src, bool)
    r = np.asarray(rows, np.int64).reshape(-1)
    bad = r[(r < 0) | (r >= n_src)]
    if bad.size:
        raise IndexError(f"rows {bad[:5].tolist()} of {table!r} are out of range ({n_src} rows)")
    want = np.zeros(n_src, bool)
    want[r] = True
    return want


def _path_changes(ctx, path, want, fallback, rules, frame):
    """The changes through one aggregate path of :func:`propagate`: ``(source rows, training rows, new rows)``
    of the wanted input rows whose deletion has a leave-one-out rule.  Appends the rules used to ``rules`` and
    marks in ``fallback`` the source rows that need an ETL re-run."""
    rec = path.rec
    in2src = path.in2src
    sel_in = np.flatnonzero(want[in2src] & (rec.codes >= 0) & ~fallback[in2src])
    # training rows of each group (CSR)
    gt = path.g_of_train
    order = np.argsort(gt, kind="stable")
    order = order[gt[order] >= 0]
    gptr = np.zeros(rec.ngroups + 1, np.int64)
    np.cumsum(np.bincount(gt[order], minlength=rec.ngroups), out=gptr[1:])
    g_in = rec.codes[sel_in]
    k = gptr[g_in + 1] - gptr[g_in]
    from ..tabular.relations import expand_ranges
    t_rows = order[expand_ranges(gptr[g_in], k)]
    in_rep = np.repeat(sel_in, k)
    jj = sorted({j for _, j in path.matches})
    if frame:
        new = raw_rows(ctx.X, t_rows)
    else:  # only the columns of the path's aggregates change: keep those
        new = ctx.values[:, jj][t_rows]
    unknown = np.zeros(in_rep.size, bool)
    for ci, j in path.matches:
        col = rec.columns[ci]
        vals, vanish, rule = loo_values(col.func, col.values, rec.codes, rec.ngroups)
        rules.append({"op": f"groupby.agg {col.label!r} = {getattr(col.func, '__name__', col.func)}"
                      f"({col.source if col.source is not None else ''})",
                      "rule": rule or "ETL re-run (no leave-one-out rule)", "exact": rule is not None})
        if rule is None:
            unknown |= True
            continue
        v = vals[in_rep]
        # a value equal to the old one up to rounding (a missing value deleted from a mean) is the old one
        old = ctx.values[t_rows, j]
        v = np.where(np.isclose(v, old, rtol=1e-12, atol=0.0), old, v)
        van = vanish[in_rep] | np.isnan(v)
        fill = path.fills.get(j)
        if fill is None:
            unknown |= van
            fill = np.nan
        if frame:
            set_column(new, j, np.where(van, fill, v))
        else:
            new[:, jj.index(j)] = np.where(van, fill, v)
        if van.any():
            rules.append({"op": f"{col.label!r} becomes missing (a group's only value deleted)",
                          "rule": "the fill value of training rows fed by no group" if path.fills.get(j)
                          is not None else "ETL re-run (no training row shows the fill value)",
                          "exact": path.fills.get(j) is not None})
    ok = ~unknown
    # entries whose row did not change (a missing value deleted from a sum, a tie of a max) drop out; only
    # the columns of the path's aggregates were set, the others are copies of the old row
    nv = numeric_values(new.iloc[:, jj]) if frame else new
    ov = ctx.values[:, jj][t_rows]
    ok &= ~np.all((nv == ov) | (np.isnan(nv) & np.isnan(ov)), axis=1)
    fallback[in2src[in_rep[unknown]]] = True
    return (in2src[in_rep[ok]], t_rows[ok],
            new.iloc[ok] if frame else _Patched(ctx.X, ctx.values, t_rows[ok], jj, new[ok]))


def _stat_rules(ctx, shifts):
    cols = np.unique(shifts[1])
    if not cols.size:
        return []
    names = column_names(ctx.X, cols)
    kinds = sorted({st.kind for st in ctx.stats if st.j in set(cols.tolist())})
    return [{"op": f"fill values of columns {names} ({'/'.join(kinds)} of the column)",
             "rule": "the statistic without the row, moving every filled cell (the fill value was recognised "
                     "as the column's median or mean over the training rows)", "exact": True}]


def _merge_dups(ctx, key, s, t, new, removed):
    """One entry per (source row, training row): columns changed by several aggregates are combined (each
    entry changed only its own columns; the others hold the old values)."""
    import pandas as pd
    u, inv = np.unique(key, return_inverse=True)
    frame = isinstance(new, pd.DataFrame)
    vals = numeric_values(new) if frame else new
    old = ctx.values[t]
    changed = ~((vals == old) | (np.isnan(vals) & np.isnan(old)))
    out = ctx.values[t[np.unique(inv, return_index=True)[1]]].copy()
    for e in range(key.size):
        out[inv[e], changed[e]] = vals[e, changed[e]]
    first = np.unique(inv, return_index=True)[1]
    s2, t2 = s[first], t[first]
    rem = np.zeros(u.size, bool)
    np.logical_or.at(rem, inv, removed)
    if frame:
        nf = raw_rows(ctx.X, t2)
        for j in range(out.shape[1]):
            if changed[:, j].any():
                nf.iloc[:, j] = out[:, j]
        return s2, t2, nf, rem
    return s2, t2, out, rem


def _fallback_changes(ctx, table, rows, etl, sources, target, progress):
    """Re-run the ETL without each row of ``rows`` on its own: (src, train, removed, new rows)."""
    import pandas as pd

    from ..graph import sources_by_name as live
    from ..progress import progress_bar
    if ctx.anchor is None:
        raise CounterfactualError("no source table maps one to one onto the training rows, so re-run ETL rows "
                                  "cannot be matched to the training rows")
    missing = sorted(set(ctx.sources) - set(sources))
    if missing:
        raise CounterfactualError(f"sources= lacks the file(s) of {missing}: the ETL cannot be re-run")
    a_name, a_rows0 = ctx.anchor
    frames = {name: read_table(p) for name, p in sources.items()}
    keep_live = dict(live)
    srcs, trains, rems, news = [], [], [], []
    bar = progress_bar(len(rows), f"counterfactual: ETL re-runs for {table}", enabled=progress, unit="runs")
    try:
        for r in rows.tolist():
            X1, _, match = rerun_without(etl, sources, {table: [r]}, target, a_name=a_name, a_rows0=a_rows0,
                                         frames=frames)
            v1 = numeric_values(X1)
            survived = np.zeros(ctx.n, bool)
            survived[match] = True
            gone = np.flatnonzero(~survived)
            old = ctx.values[match]
            diff = ~np.all((old == v1) | (np.isnan(old) & np.isnan(v1)), axis=1)
            ch = np.flatnonzero(diff)
            srcs.append(np.full(gone.size + ch.size, r, np.int64))
            trains.append(np.concatenate([gone, match[ch]]))
            rems.append(np.concatenate([np.ones(gone.size, bool), np.zeros(ch.size, bool)]))
            if isinstance(ctx.X, pd.DataFrame):
                news.append(pd.concat([raw_rows(ctx.X, gone), pd.DataFrame(X1).iloc[ch]]))
            else:
                news.append(np.concatenate([raw_rows(ctx.X, gone), v1[ch]]))
            bar.update()
    finally:
        bar.close()
        # the re-runs registered reduced sources under the table names: put the original ones back
        from .. import graph
        for name in sources:
            graph.release(name)
        live.update(keep_live)
    s = np.concatenate(srcs) if srcs else np.zeros(0, np.int64)
    t = np.concatenate(trains) if trains else np.zeros(0, np.int64)
    rem = np.concatenate(rems) if rems else np.zeros(0, bool)
    if isinstance(ctx.X, pd.DataFrame):
        new = pd.concat(news) if news else raw_rows(ctx.X, t)
    else:
        new = np.concatenate(news) if news else raw_rows(ctx.X, t)
    return s, t, rem, new


def propagate_group(ctx, drop, *, etl=None, sources=None, target=None):
    """The training matrix after deleting all of ``drop`` (``{table: source rows}``) together.

    Returns
    -------
    (removed, changed, new, rules)
        Training rows that disappear, training rows that change, their new raw features (rows of ``changed``),
        and the operations with their rules.  Aggregates are recomputed over each affected group's remaining
        rows (exact for every function pandas applies); anything without a rule re-runs the ETL once for the
        whole group.
    """
    removed = np.zeros(ctx.n, bool)
    newvals = ctx.values.copy()
    touched = np.zeros(ctx.n, bool)
    rules, rerun = [], False
    for table, rows in drop.items():
        ctx.check_table(table)
        src_node = ctx.sources[table]
        n_src = src_node.shape[0]
        rows = np.unique(np.asarray(rows, np.int64).reshape(-1))
        bad = rows[(rows < 0) | (rows >= n_src)]
        if bad.size:
            raise IndexError(f"rows {bad[:5].tolist()} of {table!r} are out of range ({n_src} rows)")
        dmask = np.zeros(n_src, bool)
        dmask[rows] = True
        tr, srows = ctx.rel.get(table, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        agg_fed = any(p.node is src_node for _, rec in ctx.aggs for p in rec.input_lineage.parts)
        fed0 = np.zeros(n_src, bool)
        fed0[srows] = True
        if (_control_only(ctx, table, n_src, fed0) & dmask).any():
            rerun = True
            continue
        if ctx.anchor is not None and ctx.anchor[0] == table and not agg_fed:
            removed[tr[dmask[srows]]] = True
            rules.append({"op": f"{table} rows -> training rows (one to one)", "rule": "removes the training rows",
                          "exact": True})
            continue
        paths, uncovered = ctx.paths(table)
        fed = np.zeros(n_src, bool)
        fed[srows] = True
        covered_src = np.zeros(n_src, bool)
        for path in paths:
            rec = path.rec
            covered_src[path.in2src[rec.codes >= 0]] = True
        if (uncovered.size and (dmask & fed).any()) or (dmask & fed & ~covered_src).any():
            rerun = True
            continue
        for path in paths:
            rec = path.rec
            din = dmask[path.in2src]
            hit = np.zeros(rec.ngroups, bool)
            hit[rec.codes[din & (rec.codes >= 0)]] = True
            rows_t = np.flatnonzero((path.g_of_train >= 0) & hit[np.maximum(path.g_of_train, 0)])
            if not rows_t.size:
                continue
            g = path.g_of_train[rows_t]
            for ci, j in path.matches:
                col = rec.columns[ci]
                try:
                    vals, alive = group_values(col.func, col.values, rec.codes, rec.ngroups, din)
                except Exception:  # noqa: BLE001 - a function pandas cannot apply: no rule
                    rerun = True
                    break
                fill = path.fills.get(j)
                missing = ~alive[g] | np.isnan(vals[g])
                if fill is None and missing.any():
                    rerun = True
                    break
                newvals[rows_t, j] = np.where(missing, np.nan if fill is None else fill, vals[g])
                touched[rows_t] = True
                rules.append({"op": f"groupby.agg {col.label!r} = {getattr(col.func, '__name__', col.func)}"
                              f"({col.source if col.source is not None else ''})",
                              "rule": "recomputed over the remaining rows of each affected group", "exact": True})
    if rerun:
        return _group_rerun(ctx, drop, etl, sources, target, rules)
    _refill_statistics(ctx, newvals, touched, removed, rules)
    changed = np.flatnonzero(touched & ~removed)
    changed = changed[~np.all((newvals[changed] == ctx.values[changed])
                              | (np.isnan(newvals[changed]) & np.isnan(ctx.values[changed])), axis=1)]
    new = raw_rows(ctx.X, changed)
    nv = newvals[changed]
    for j in range(ctx.values.shape[1]):
        if not np.array_equal(nv[:, j], ctx.values[changed, j], equal_nan=True):
            set_column(new, j, nv[:, j])
    return np.flatnonzero(removed), changed, new, rules


def _group_rerun(ctx, drop, etl, sources, target, rules):
    """:func:`propagate_group` by one re-run of the ETL without all of ``drop``: ``(removed, changed, new,
    rules)``."""
    import pandas as pd
    if etl is None or sources is None:
        raise CounterfactualError(
            "deleting these rows goes through operation(s) with no deletion rule; pass etl= (the ETL "
            "function) and sources= ({table: file}) so that whence can re-run the ETL without them")
    if ctx.anchor is None:
        raise CounterfactualError("no source table maps one to one onto the training rows, so a re-run "
                                  "cannot be matched to the training rows")
    from ..graph import sources_by_name as live
    keep_live = dict(live)
    try:
        X1, _, match = rerun_without(etl, sources, drop, target, a_name=ctx.anchor[0],
                                     a_rows0=ctx.anchor[1])
    finally:
        from .. import graph
        for name in sources:
            graph.release(name)
        live.update(keep_live)
    v1 = numeric_values(X1)
    survived = np.zeros(ctx.n, bool)
    survived[match] = True
    old = ctx.values[match]
    diff = ~np.all((old == v1) | (np.isnan(old) & np.isnan(v1)), axis=1)
    ch = match[diff]
    new = pd.DataFrame(X1).iloc[np.flatnonzero(diff)] if isinstance(ctx.X, pd.DataFrame) else v1[diff]
    rules.append({"op": "ETL", "rule": "re-run without the rows (plain pandas)", "exact": True})
    return np.flatnonzero(~survived), ch, new, rules


def _refill_statistics(ctx, newvals, touched, removed, rules):
    """Fill values that are statistics of their column (a median, a mean) move with the deletion: recompute them
    over the remaining training rows, in ``newvals`` and ``touched`` (in place)."""
    for st in ctx.stats:
        j = st.j
        moved = touched & ~((newvals[:, j] == ctx.values[:, j])
                            | (np.isnan(newvals[:, j]) & np.isnan(ctx.values[:, j])))
        upd = ~np.isnan(newvals[:, j]) & (newvals[:, j] != st.fill)
        gen = np.where(moved, upd, st.genuine) & ~removed
        if not ((moved & (st.genuine | upd)).any() or (removed & st.genuine).any()):
            continue  # no genuine value of the column changed: the statistic stays
        vals = newvals[gen, j]
        if not vals.size:
            raise CounterfactualError(
                f"deleting these rows leaves column {column_names(ctx.X, [j])[0]} without a value, and its gaps "
                f"are filled with the column's {st.kind}: the ETL would leave missing features, so there is no "
                f"model to move to")
        c = float(np.median(vals) if st.kind == "median" else vals.mean())
        filled = ~gen & ~removed & ~np.isnan(newvals[:, j])
        if c != st.fill and filled.any():
            newvals[filled, j] = c
            touched |= filled
            rules.append({"op": f"fill value of column {column_names(ctx.X, [j])[0]} ({st.kind} of the column)",
                          "rule": "recomputed over the remaining training rows", "exact": True})


#: former private spellings, kept as aliases (the helpers now live in :mod:`whence.attribution.training_matrix`,
#: :mod:`whence.attribution.leave_one_out` and :mod:`whence.attribution.etl_rerun`)
_Context = DeletionContext
_raw_rows = raw_rows
_set = set_column
_read_plain = read_table
_numeric = numeric_values
