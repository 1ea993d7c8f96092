"""Run a corpus pipeline plain and under whence, and check every lineage answer against a perturbation oracle.

A pipeline module (listed in ``tests/corpus/__init__.py``) has ``make_data(rng)`` (its source tables, generated
with a seeded generator and written to CSV), ``READ`` (the ``read_csv`` arguments per table) and ``run(src)``:
the pipeline's own code, run on a dict of frames, returning a dict of named outputs (frames, Series, arrays;
names starting with ``_`` are not checked).  The very same ``run`` is called on frames from
``pandas.read_csv`` and on frames from ``whence.read_csv``.

The oracle: source-cell perturbation
------------------------------------
What can be computed exactly for arbitrary pandas and scikit-learn code is *influence*: source cell ``s``
influences output cell ``o`` when changing the value of ``s`` alone changes the value of ``o``.  For each probed
source cell the oracle re-runs the plain pipeline with that one value replaced, up to three times (a far larger
and a far smaller number, a missing value, another value of the column, a new category, a shifted date, as the
dtype allows; values the pipeline rejects are skipped), and records the output cells that changed, over all
replacements.  Outputs are compared cell by cell only when the replacement left their shape and columns (and
those of the outputs they are positions of, ``DEPENDS``) unchanged: a row that vanished or appeared makes the
replacement inconclusive for that output.  Rows are matched by their index labels when these are unique,
not a ``RangeIndex`` and the same set (a reordering by value is not a change), else by position.

Influence is a *lower bound* of the complete lineage, data and control together: every observed change has a
cause among the cells that a query with ``control=True`` must name (the cells copied or computed from, and the
mask, key, condition, join-key and fitted-statistic cells that chose them).  It never proves an answer too
large (a non-maximal cell of a ``max`` moved within range changes nothing); it proves an answer too small.
One kind of influence is not lineage under the contract: *membership*.  The control lineage of a group's
aggregate names the key cells of the rows in the group, not the keys of rows outside it, yet changing an
outside row's key moves it into the group and changes the aggregate; the same holds for join keys (a row
matching another key) and sort keys of positional outputs.  Each pipeline therefore declares, per output, the
source columns that decide membership there (``MEMBERSHIP``, read off its group-by, pivot, join and sort keys);
their influence on that output is not counted.

Checked for every pipeline (each a test in ``tests/test_corpus.py``):

* ``values``: the tracked outputs equal the plain ones (values, dtypes, index, columns); every output is a
  tracked object; when an answer is PARTIAL, the run issued a ``PartialLineageWarning``;
* ``backward``: for every checked output cell ``o`` and every probed source cell ``s`` that influences it,
  ``s`` is in ``backward(y, o, control=True)``, FULL or PARTIAL alike (a PARTIAL answer must be a superset);
  the checked cells are random ones plus, for every probed source cell, one of the cells it influences;
* ``forward``: ``forward(source, (r, c), y, control=True)`` and ``forward(source, None, y, rows=[r],
  control=True)`` contain every output cell that ``s = (r, c)`` influences; the source is given by name for
  every other probe and as the tracked source frame for the others, in the coordinates ``backward`` answers in
  (index levels first for a source read with ``index_col``);
* ``trace``: ``trace_to_file(y, row=i, control=True)`` contains every source row that has a probed cell
  influencing row ``i``, and each traced row sits on its file line (``row + 2``).

Reported, not asserted: each FULL data answer's cells, sampled, are *confirmed* when some replacement of the
cell changes the output cell (``Outcome.confirmed``; a cell that is never confirmed may be an answer wider
than the truth, or a cell whose influence no replacement reaches, such as a ``count``).  "Exact rows" in the
corpus table are the checked output rows whose answers are FULL, contain the influence and are not refuted
by confirmation.

Source cells are probed one or more per source column (every column of small tables), up to
``max_sources`` (``ORACLE`` in a module lowers it for pipelines that fit a model at every run).  Everything
that decides what is probed is seeded by the pipeline's name and the cell, so a failure reproduces.
"""

from __future__ import annotations

import importlib
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import whence as wh
from whence.tabular.frame import untracked

# ------------------------------------------------------------------------------------------------------------
# data and runs
# ------------------------------------------------------------------------------------------------------------


def load(name):
    """The pipeline module ``tests/corpus/<name>.py``."""
    return importlib.import_module(f"corpus.{name}")


def _default_index(df):
    ix = df.index
    return isinstance(ix, pd.RangeIndex) and ix.start == 0 and ix.step == 1


class Data:
    """A pipeline's source tables written to CSV files in a temporary directory."""

    def __init__(self, mod, directory):
        self.mod = mod
        seed = getattr(mod, "SEED", 0)
        frames = mod.make_data(np.random.default_rng(seed))
        self.paths = {}
        self.read_kw = dict(getattr(mod, "READ", {}))
        for name, df in frames.items():
            path = Path(directory) / f"{name}.csv"
            df.to_csv(path, index=not _default_index(df))
            self.paths[name] = path
            self.read_kw.setdefault(name, {})

    def read_plain(self):
        return {n: pd.read_csv(p, **self.read_kw[n]) for n, p in self.paths.items()}

    def read_tracked(self):
        return {n: wh.read_csv(p, name=n, **self.read_kw[n]) for n, p in self.paths.items()}

    def nbytes(self):
        return sum(p.stat().st_size for p in self.paths.values())


def copy_sources(src):
    return {n: df.copy() for n, df in src.items()}


def run_plain(mod, src):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mod.run(copy_sources(src))


def run_tracked(mod, data):
    """Run on tracked sources; return (sources, outputs, PartialLineageWarning messages)."""
    wh.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = data.read_tracked()
        out = mod.run(src)
    partial = [f"{w.category.__name__}: {w.message}" for w in caught
               if issubclass(w.category, (wh.PartialLineageWarning, wh.LineageLostWarning))]
    return src, out, partial


# ------------------------------------------------------------------------------------------------------------
# outputs as cells
# ------------------------------------------------------------------------------------------------------------


def as_plain(y):
    if isinstance(y, (pd.DataFrame, pd.Series)):
        return untracked(y)
    if hasattr(y, "toarray"):
        return np.asarray(y.toarray())
    return np.asarray(y)


def shape_of(y):
    y = as_plain(y)
    return tuple(y.shape)


def _positional(ix):
    return isinstance(ix, pd.RangeIndex) or not ix.is_unique


def _same(a, b):
    """Elementwise equality of two arrays, missing equal to missing; floating-point values equal within
    rounding (a relative 1e-9, an absolute 1e-12).

    Rounding is not influence: pandas may sum a column along another code path when a *different* column
    holds a missing value (``resample().sum()`` does), and the last bits of untouched sums move; those
    changes say nothing about which cells a value is computed from.
    """
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    if not a.size:
        return np.zeros(a.shape, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            eq = np.asarray(a == b, dtype=bool)
        except Exception:  # noqa: BLE001  (uncomparable values are different values)
            eq = np.zeros(a.shape, bool)
    eq |= pd.isna(a) & pd.isna(b)
    isf = np.frompyfunc(lambda x: isinstance(x, (float, np.floating)), 1, 1)
    both = np.asarray(isf(a), bool) & np.asarray(isf(b), bool) & ~eq
    if both.any():
        eq[both] = np.isclose(a[both].astype(float), b[both].astype(float), rtol=1e-9, atol=1e-12)
    return eq


def _queryable(y):
    """A plain array whose lineage whence answers: pandas' own object array from ``.values`` / ``to_numpy()``
    of a tracked frame with text, boolean or mixed columns (docs/semantics.md: its lineage stays queryable)."""
    if not isinstance(y, np.ndarray):
        return False
    try:
        wh.sources(y)
    except wh.NotTrackedError:
        return False
    return True


def structure(y):
    """What a replacement must leave unchanged for its run to be compared cell by cell: the shape and the
    column labels."""
    y = as_plain(y)
    if isinstance(y, pd.DataFrame):
        return ("frame", y.shape, tuple(y.columns.tolist()))
    if isinstance(y, (pd.Series, pd.Index)):
        return ("series", y.shape)
    return ("array", np.shape(y))


def _by_label(base, pert):
    """Rows of ``pert`` in the order of ``base``'s labels, when both indexes are unique, not positional and
    hold the same labels (a reordering by value is then not a change of the rows); else None."""
    bi, pi = base.index, pert.index
    if isinstance(bi, pd.RangeIndex) or not bi.is_unique or not pi.is_unique or len(bi) != len(pi):
        return None
    pos = pi.get_indexer(bi)
    if (pos < 0).any():
        return None
    return pos


def changed_cells(base, pert):
    """Positions of the cells of ``base`` whose value differs in ``pert`` (same shape and columns)."""
    base, pert = as_plain(base), as_plain(pert)
    if isinstance(base, pd.Index):
        base, pert = base.to_numpy(dtype=object), pert.to_numpy(dtype=object)
    if isinstance(base, (pd.DataFrame, pd.Series)):
        pos = _by_label(base, pert)
        if pos is not None:
            pert = pert.iloc[pos]
        base, pert = base.to_numpy(dtype=object), pert.to_numpy(dtype=object)
    diff = ~_same(base, pert)
    return {tuple(int(v) for v in ix) for ix in np.argwhere(diff)}


# ------------------------------------------------------------------------------------------------------------
# perturbations
# ------------------------------------------------------------------------------------------------------------


def flat_columns(df):
    """The source columns as whence numbers them: index levels first when the index is not the default."""
    if _default_index(df):
        return list(df.columns)
    return [nm if nm is not None else f"level_{i}" for i, nm in enumerate(df.index.names)] + list(df.columns)


def _column(df, c):
    if _default_index(df):
        return df.iloc[:, c]
    nidx = df.index.nlevels
    if c < nidx:
        return pd.Series(df.index.get_level_values(c), index=df.index)
    return df.iloc[:, c - nidx]


def replacements(s, r, rng):
    """Other values for row ``r`` of column ``s``: far larger and smaller, another value of the column,
    missing, a new category, a shifted date (as the dtype allows)."""
    v = s.iloc[r]
    others = pd.unique(s.dropna())
    others = [o for o in others if not (o == v)] if not pd.isna(v) else list(others)
    pick = [others[int(rng.integers(len(others)))]] if others else []
    kind = s.dtype.kind
    if kind == "b":
        return [not v]
    if kind in "iu":
        span = int(s.max() - s.min()) if len(s) else 0
        big = 10 * span + 10
        return [v + big, v - big] + pick
    if kind == "f":
        fin = s.dropna()
        span = float(fin.max() - fin.min()) if len(fin) else 0.0
        big = 10.0 * span + 10.0
        if pd.isna(v):
            return pick + ([pick[0] + big] if pick else [big])
        return [v + big, v - big, np.nan] + pick
    if kind == "M":
        if pd.isna(v):
            return pick
        return [v + pd.Timedelta(days=37), v - pd.Timedelta(days=400), pd.NaT] + pick
    # text, categorical, object
    new = "zz_unseen" if pd.isna(v) or not isinstance(v, str) else v + "_zz"
    out = pick + [new]
    if not pd.isna(v):
        out.append(np.nan)
    return out


def perturbed_sources(src, name, r, c, value):
    out = copy_sources(src)
    df = out[name]
    if _default_index(df):
        col = df.columns[c]
        s = df[col].astype(object) if df[col].dtype.kind in "iub" and pd.isna(value) else df[col].copy()
        s.iloc[r] = value
        df[col] = s
        return out
    nidx = df.index.nlevels
    if c < nidx:
        if nidx != 1:
            raise NotImplementedError("perturbing a MultiIndex level")
        vals = df.index.to_numpy(dtype=object).copy()
        vals[r] = value
        df.index = pd.Index(list(vals), name=df.index.name)
        return out
    col = df.columns[c - nidx]
    s = df[col].copy()
    try:
        s.iloc[r] = value
    except (TypeError, ValueError):
        s = s.astype(object)
        s.iloc[r] = value
    df[col] = s
    return out


# ------------------------------------------------------------------------------------------------------------
# the check
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    failures: dict = field(default_factory=lambda: {k: [] for k in CHECKS})
    rows_checked: int = 0
    rows_exact: int = 0
    rows_partial: int = 0
    rows_unconfirmed: int = 0
    partial_warnings: list = field(default_factory=list)
    probes: int = 0
    structural: int = 0
    member_runs: int = 0
    confirmed: int = 0
    unconfirmed: list = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0

    def fail(self, check, msg):
        if len(self.failures[check]) < 12:
            self.failures[check].append(msg)

    def summary(self, check):
        f = self.failures[check]
        return f"{self.name}: {check} check failed ({len(f)} shown)\n  " + "\n  ".join(f)


CHECKS = ("values", "backward", "forward", "trace")


def _cells_of(res):
    return {(n, int(r), int(c)) for n, arr in res.items() for r, c in np.asarray(arr).reshape(-1, 2)}


def _rows(fw):
    a = np.asarray(fw)
    if a.size == 0:
        return set()
    return {tuple(int(v) for v in row) for row in a.reshape(len(a), -1)}


def _sample(rng, items, k):
    items = list(items)
    if len(items) <= k:
        return items
    return [items[i] for i in sorted(rng.choice(len(items), size=k, replace=False))]


def _all_cells(shape):
    return [tuple(int(v) for v in ix) for ix in np.ndindex(*shape)]


def _compare_values(out, tracked, plain, partial):
    """Tracked outputs equal plain ones; all tracked."""
    for key, p in plain.items():
        if key.startswith("_"):
            continue
        t = tracked.get(key)
        try:
            if isinstance(p, pd.DataFrame):
                pd.testing.assert_frame_equal(untracked(t), p, check_exact=True)
            elif isinstance(p, pd.Series):
                pd.testing.assert_series_equal(untracked(t), p, check_exact=True)
            else:
                np.testing.assert_array_equal(as_plain(t), as_plain(p))
        except AssertionError as e:
            out.fail("values", f"output {key!r} differs from plain pandas: {str(e)[:300]}")
        if not (wh.is_tracked(t) or isinstance(t, (wh.TrackedFrame, wh.TrackedSeries)) or _queryable(t)):
            out.fail("values", f"output {key!r} is a plain {type(t).__name__}, not a tracked object: no lineage "
                               f"can be asked of it")


def check(name, n_src=1, n_out=6, n_exact=2, max_sources=10, max_repl=3, budget_s=2.0, max_member_runs=4):
    """Run pipeline ``name`` plain and tracked and check every answer; return an :class:`Outcome`.

    A pipeline whose plain run is slow (a model fitted at every run) sets ``ORACLE = {"max_sources": k,
    "max_repl": m}``: fewer probed source cells and replacements per cell; the probes are seeded, so the set
    checked is the same at every run.  ``budget_s`` bounds only the extra probes of the ``exact`` confirmation
    (reported, not asserted).
    """
    t0 = time.perf_counter()
    mod = load(name)
    opts = getattr(mod, "ORACLE", {})
    max_sources = opts.get("max_sources", max_sources)
    max_repl = opts.get("max_repl", max_repl)
    max_member_runs = opts.get("max_member_runs", max_member_runs)
    out = Outcome(name)
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # what is probed: the same at every run
    exact_rng = np.random.default_rng(1)  # the extra confirmation probes (time-bounded, reported only)
    with tempfile.TemporaryDirectory() as tmp:
        data = Data(mod, tmp)
        plain_src = data.read_plain()
        base = run_plain(mod, plain_src)
        try:
            tsrc, tout, partial = run_tracked(mod, data)
        except Exception as e:  # noqa: BLE001
            for k in CHECKS:
                out.fail(k, f"the pipeline raised {type(e).__name__}: {e} under whence (plain pandas ran it)")
            out.seconds = time.perf_counter() - t0
            return out
        out.partial_warnings = partial
        _compare_values(out, tout, base, partial)

        # --- influence of source cells (cached) --------------------------------------------------------
        cache = {}
        shapes = {k: structure(v) for k, v in base.items()}
        membership = getattr(mod, "MEMBERSHIP", {})
        order = getattr(mod, "ORDER", {})
        depends = getattr(mod, "DEPENDS", {})
        minf = {}  # (source cell, output) -> [(replacement, changed cells)] through membership

        def member(k, nm, c):
            col = f"{nm}.{flat_columns(plain_src[nm])[c]}"
            if col in order.get(k, ()) or col in order.get("*", ()):
                return "order"
            if col in membership.get(k, ()) or col in membership.get("*", ()):
                return "member"
            return None

        def influence(s):
            if s not in cache:
                nm, r, c = s
                col = _column(plain_src[nm], c)
                inf = {k: None for k in base}
                cell_rng = np.random.default_rng(zlib.crc32(f"{name}/{nm}/{r}/{c}".encode()))
                for v in replacements(col, r, cell_rng)[:max_repl]:
                    try:
                        res = run_plain(mod, perturbed_sources(plain_src, nm, r, c, v))
                    except Exception:  # noqa: BLE001  (the pipeline rejects this value: inconclusive)
                        continue
                    out.runs += 1
                    same = {k: k in res and structure(res[k]) == shapes[k] for k in base}
                    if not all(same.values()):
                        out.structural += 1
                    for k in base:
                        kind = member(k, nm, c)
                        if k.startswith("_") or kind == "order":
                            continue
                        if not all(same[d] for d in (k,) + depends.get(k, ()) + depends.get("*", ())
                                   if d in same):
                            continue  # rows or columns vanished or appeared: inconclusive for k
                        ch = changed_cells(base[k], res[k])
                        if kind == "member":
                            if ch:
                                minf.setdefault((s, k), []).append((v, ch))
                            continue
                        inf[k] = (inf[k] or set()) | ch
                cache[s] = inf
            return cache[s]

        sources = []
        n_cols = sum(len(flat_columns(df)) for df in plain_src.values())
        per_col = max(n_src, max_sources // max(n_cols, 1))
        for nm, df in plain_src.items():
            for c in range(len(flat_columns(df))):
                for r in rng.choice(len(df), size=min(per_col, len(df)), replace=False):
                    sources.append((nm, int(r), c))
        sources = _sample(rng, sources, max_sources)
        out.probes = len(sources)

        def query(what, fn, *a, **kw):
            try:
                return fn(*a, **kw)
            except Exception as e:  # noqa: BLE001
                args = ", ".join(repr(v) if isinstance(v, (str, tuple, int, type(None))) else type(v).__name__
                                 for v in a)
                out.fail(what, f"{fn.__name__}({args}, {kw}) raised {type(e).__name__}: {str(e)[:200]}")
                return None

        any_partial = False
        for key, y in tout.items():
            if key.startswith("_"):
                continue
            if not (wh.is_tracked(y) or isinstance(y, (wh.TrackedFrame, wh.TrackedSeries))):
                continue  # (reported by the values check)
            shp = shape_of(y)
            if not all(shp):
                continue
            cells = _sample(rng, _all_cells(shp), n_out)
            # and cells the probes are known to influence: one per probed source cell (a row-wise derivation
            # is checked where it happens, not only where a random cell falls)
            for s in sources:
                inf = influence(s)[key]
                if inf:
                    pick = sorted(inf)[int(rng.integers(len(inf)))]
                    if pick not in cells:
                        cells.append(pick)
            state = {}  # output row -> "exact", "partial" or "failed"

            def mark(i, st_):
                order = {"exact": 0, "unconfirmed": 1, "partial": 2, "failed": 3}
                if order[st_] > order[state.get(i, "exact")]:
                    state[i] = st_
                state.setdefault(i, st_)

            for o in cells:
                i = o[0]
                data_ans = query("backward", wh.backward, y, o)
                ctrl_ans = query("backward", wh.backward, y, o, control=True)
                if data_ans is None or ctrl_ans is None:
                    mark(i, "failed")
                    continue
                full = data_ans.complete and ctrl_ans.complete
                any_partial |= not full
                mark(i, "exact" if full else "partial")
                got = _cells_of(ctrl_ans)
                for s in sources:
                    inf = influence(s)[key]
                    if inf is not None and o in inf and s not in got:
                        mark(i, "failed")
                        out.fail("backward", f"backward({key}, {o}, control=True) "
                                 f"[{'FULL' if ctrl_ans.complete else 'PARTIAL'}] misses {s}: changing it "
                                 f"changes the cell")
                if full and time.perf_counter() - t0 < budget_s:
                    for s in _sample(exact_rng, sorted(_cells_of(data_ans)), n_exact):
                        inf = influence(s)[key]
                        if inf is None:
                            continue
                        if o in inf:
                            out.confirmed += 1
                        else:
                            mark(i, "unconfirmed")
                            if len(out.unconfirmed) < 12:
                                out.unconfirmed.append(f"backward({key}, {o}) [FULL] names {s}, but no "
                                                       f"replacement of that cell changes the output cell")
            # forward
            for n_, s in enumerate(sources):
                inf = influence(s)[key]
                if not inf:
                    continue
                nm, r, c = s
                src = nm if n_ % 2 == 0 else tsrc[nm]
                fw = query("forward", wh.forward, src, (r, c), y, control=True)
                if fw is not None:
                    got = _rows(fw)
                    miss = inf - got
                    if miss:
                        how = "by name" if isinstance(src, str) else "by frame"
                        out.fail("forward", f"forward({nm!r} {how}, ({r}, {c}), {key}, control=True) misses "
                                 f"{sorted(miss)[:5]} ({len(miss)} cells) that changing the cell changes")
                fr = query("forward", wh.forward, src, None, y, control=True, rows=[r])
                if fr is not None:
                    got = _rows(fr)
                    miss = inf - got
                    if miss:
                        how = "by name" if isinstance(src, str) else "by frame"
                        out.fail("forward", f"forward({nm!r} {how}, rows=[{r}], {key}, control=True) misses "
                                 f"{sorted(miss)[:5]} ({len(miss)} cells)")
            # trace
            for i in sorted(state):
                tr = query("trace", wh.trace_to_file, y, row=i, control=True)
                if tr is None:
                    mark(i, "failed")
                    continue
                got = {(s_.table, int(s_.row)) for s_ in tr}
                for s_ in tr:
                    if s_.path is not None and s_.line != s_.row + 2:
                        out.fail("trace", f"trace_to_file({key}, row={i}): {s_.table} row {s_.row} is on line "
                                 f"{s_.row + 2}, got {s_.line}")
                for s in sources:
                    inf = influence(s)[key]
                    if inf and any(cell[0] == i for cell in inf) and (s[0], s[1]) not in got:
                        mark(i, "failed")
                        out.fail("trace", f"trace_to_file({key}, row={i}, control=True) "
                                 f"[{'FULL' if tr.complete else 'PARTIAL'}] misses {s[0]} row {s[1]}, whose "
                                 f"cell {s} changes that row")
            for v in state.values():
                out.rows_checked += 1
                out.rows_exact += v == "exact"
                out.rows_partial += v == "partial"
                out.rows_unconfirmed += v == "unconfirmed"
        # --- membership: explained by the key's control lineage before or after the change -------------
        tcache = {}

        def tracked_perturbed(s, i, v):
            if (s, i) not in tcache:
                if len(tcache) >= max_member_runs:
                    return None
                nm, r, c = s
                tag = f"~m{len(tcache)}"
                frames = perturbed_sources(plain_src, nm, r, c, v)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        res = mod.run({n: wh.track_frame(df, name=n + tag) for n, df in frames.items()})
                    except Exception:  # noqa: BLE001
                        res = None
                tcache[(s, i)] = (tag, res)
            return tcache[(s, i)]

        for s in sources:
            for key in base:
                moves = minf.get((s, key))
                y = tout.get(key)
                if not moves or not (wh.is_tracked(y) or isinstance(y, (wh.TrackedFrame, wh.TrackedSeries))):
                    continue
                pick_rng = np.random.default_rng(zlib.crc32(f"{name}/{s}/{key}".encode()))
                for i, (v, ch) in enumerate(moves):
                    for o in _sample(pick_rng, sorted(ch), 2):
                        before = query("backward", wh.backward, y, o, control=True)
                        if before is None or s in _cells_of(before):
                            continue
                        got = tracked_perturbed(s, i, v)
                        if got is None:
                            break
                        tag, res = got
                        if res is None or key not in res or not (
                                wh.is_tracked(res[key]) or isinstance(res[key], (wh.TrackedFrame, wh.TrackedSeries))):
                            continue
                        after = query("backward", wh.backward, res[key], o, control=True)
                        if after is not None and (s[0] + tag, s[1], s[2]) not in _cells_of(after):
                            out.fail("backward", f"backward({key}, {o}, control=True) misses {s} before and after "
                                     f"it is set to {v!r} (a key that moves its row into or out of this cell's "
                                     f"group or match): the key's lineage is lost")
        out.member_runs = len(tcache)
        if any_partial and not partial:
            out.fail("values", "answers are PARTIAL but the run issued no PartialLineageWarning")
    wh.reset()
    out.seconds = time.perf_counter() - t0
    return out
