"""Benchmark 6: tabular lineage on the credit-risk case study (issue 4).

Data: :func:`whence.datasets.credit_risk` writes ``application.csv``, ``bureau.csv`` and
``previous_application.csv`` (about 9 source rows per applicant) into a temporary directory, generated once
per size and deleted afterwards.  The ETL is :func:`whence.datasets.credit_risk_etl` (filters, group-by
aggregates, two left joins, derived columns, ``fillna``, ``get_dummies``, ``to_numpy``), unchanged.

Timed, plain and tracked alternating in one run (:func:`common.alternate`: ``gc.collect()`` before every
batch, median of >= 7 rounds, >= 5 at the large size):

* **ETL**: plain = the ETL on the frames from ``pandas.read_csv`` (read once, beforehand); tracked =
  ``whence.reset()``, ``whence.track_frame(df, name)`` for the three frames, then the same ETL.  The ratio is
  the lineage-capture overhead of the ETL itself.
* **read + ETL**: plain = ``pandas.read_csv`` x 3 + ETL; tracked = ``whence.reset()``,
  ``whence.read_csv(path, name=...)`` x 3 + ETL (the tracked reader also records each row's file line).

Queries on ``X`` of the tracked read + ETL variant (its sources are files, so traces carry file lines):

* ``trace_to_file(X, row=r)``: the **first call** after the ETL (it computes the file line offsets and the
  group-by relations lazily; timed once per fresh build: 3 builds, 1 at the large size), on a row that has
  rows in all three tables, so that every lazy structure is built by that call; then the **steady state**:
  median over >= 9 batches of the per-call time, each batch cycling through 1000 random rows;
* ``backward(X, (r, c))`` for random cells and ``forward("bureau", None, X, rows=[k])`` for random bureau rows,
  the same way (forward: 5 calls, 3 at the large size).

Exactness (cheap, inside the benchmark): for 20 random rows of ``X``, ``trace_to_file`` must return exactly
the application row of that applicant, the bureau rows (by file position) with its ``SK_ID_CURR`` and
``CREDIT_ACTIVE`` in (Active, Closed), and the previous_application rows with its ``SK_ID_CURR`` and
``NAME_CONTRACT_STATUS`` in (Approved, Refused); the applicant of each row comes from the plain ETL's
``return_frame=True`` frame (the tracked ``X`` is also checked equal to the plain one).  Each source row's
``line`` must be its row + 2 (header, 1-based lines).

One-cell queries on the ETL's final *frame* (``return_frame=True``, a tracked DataFrame of every applicant's
features): ``backward(frame, (r, c))``, ``forward("bureau", (k, c), frame)`` (one source cell) and
``trace_to_file(frame, row=r)``: the first call on a fresh build, the steady state (median over 9 batches, each
cycling through 200 random cells; the bureau cells: random cells of the backward answers of random rows, so
that each reaches the frame) against the 1 ms target, and the peak memory ``tracemalloc`` traces during
one call, with the size of its answer (memory should be O(answer)).

Memory: ``whence.lineage(X).nbytes`` (the library's account: it sums the map of every upstream node, so an
index array shared by several nodes is counted once per node) and the bytes of the *distinct* index arrays
held by those maps (each buffer once), right after the ETL and again after the queries (which build the
group-by CSR relations); and, measured, the bytes ``tracemalloc`` still traces while ``X`` is alive, tracked ETL
(``track_frame`` inputs) minus plain ETL, right after the ETL (one run each).

Side by side: Traceprop's published figures, cited (its 2026 preprint): 2.93x on its 3-table credit-risk ETL
(20,000 applicants, 180,000 source rows; 0.100 s plain pandas vs 0.293 s tracked) and 2.36 ms for its
``trace_to_file()``.  The installed ``traceprop`` package is checked for a pandas API that could run the same
ETL; the JSON says what was found.
"""

from __future__ import annotations

import gc
import itertools
import shutil
import tempfile
import tracemalloc

import numpy as np
import pandas as pd
from common import alternate, median_time, perf, rng

import whence as wh
from whence.datasets import credit_risk, credit_risk_etl

TABLES = ("application", "bureau", "previous_application")
BUREAU_KEEP = ("Active", "Closed")
PREV_KEEP = ("Approved", "Refused")

PUBLISHED = {
    "source": "Traceprop, 2026 preprint",
    "etl": {"ratio": 2.93, "plain_s": 0.100, "tracked_s": 0.293, "applicants": 20_000,
            "source_rows": 180_000, "what": "3-table credit-risk ETL (application, bureau, "
                                           "previous_application), plain pandas vs tracked"},
    "trace_to_file_s": 2.36e-3,
}

TARGETS = {"etl_ratio": {20_000: 1.3, 200_000: 1.15}, "trace_steady_s": 1e-4, "exact_rows": 20, "one_cell_s": 1e-3}


def traceprop_status(files):
    """Can the installed traceprop run this ETL unchanged?  (No pandas API -> say so, run nothing.)"""
    try:
        import traceprop as tp
    except Exception as exc:  # noqa: BLE001
        return {"run": False, "version": None, "why": f"traceprop not importable: {exc}"}
    version = getattr(tp, "__version__", "?")
    public = sorted(n for n in dir(tp) if not n.startswith("_"))
    pandas_api = [n for n in public if any(k in n.lower() for k in ("frame", "pandas", "read_csv", "series"))]
    out = {"version": version, "public_api": public, "pandas_api_found": pandas_api}
    if pandas_api:
        out.update(run=False, why=f"pandas-looking names {pandas_api} found but not wired into this benchmark")
        return out
    # its only tabular entry point: from_csv (csv.reader, float() per field) -> a numeric ndarray subclass
    try:
        tp.reset_graph()
        tp.from_csv(str(files.application), source_id="application")
        csv_err = "from_csv(application.csv) succeeded"
    except Exception as exc:  # noqa: BLE001
        csv_err = f"from_csv(application.csv) raises {type(exc).__name__}: {exc}"
    out.update(run=False, why=(
        f"traceprop {version} has no pandas API: no DataFrame/Series type, no read_csv or frame wrapper "
        f"(public names: array, from_numpy, from_csv, from_jax, from_torch, ...); its ProvenanceTensor is a "
        f"numeric numpy array and its from_csv converts every field with float() ({csv_err}); the ETL "
        f"(string columns, boolean-mask filters, groupby, merge, get_dummies) cannot run on it unchanged"),
        from_csv=csv_err)
    return out


def _run_alt(res):
    keep = ("median_s", "ratio", "ratio_paired", "ratio_min", "reps", "number", "samples_s")
    return {k: res[k] for k in keep}


def _cycle_fn(fn, items):
    it = itertools.cycle(items)
    return lambda: fn(next(it))


def _source_counts(frames):
    return {k: len(v) for k, v in frames.items()}


def _held_bytes(rel):
    """Bytes of the distinct index arrays held by the maps of ``rel.nodes`` (each buffer counted once)."""
    seen = {}

    def add(a):
        if isinstance(a, np.ndarray):
            base = a
            while isinstance(base.base, np.ndarray):
                base = base.base
            seen[id(base)] = base.nbytes

    for n in rel.nodes:
        m = n.map
        if m is None:
            continue
        entries = getattr(m, "entries", None)
        if entries is None:
            continue
        for _, p in entries:
            r = p.rel
            add(r.codes)
            if r.csr is not None and r.csr.fn is None:
                add(r.csr.indptr)
                add(r.csr.indices)
            add(getattr(p, "cmat", None))
    return int(sum(seen.values()))


def _memory(X, n_source_rows):
    rel = wh.lineage(X)
    nb = int(rel.nbytes)
    try:
        held = _held_bytes(rel)
    except Exception as exc:  # noqa: BLE001
        held, note = None, f"distinct-buffer count failed: {type(exc).__name__}: {exc}"
    else:
        note = None
    out = {"lineage_nbytes": nb, "distinct_index_bytes": held, "nodes": len(rel.nodes),
           "lineage_nbytes_per_source_row": nb / n_source_rows,
           "distinct_index_bytes_per_source_row": None if held is None else held / n_source_rows}
    if note:
        out["note"] = note
    return out


def _retained(fn):
    """Bytes still traced by tracemalloc (numpy buffers included) while the result of ``fn()`` is alive."""
    import tracemalloc
    gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        gc.collect()
        cur, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    return cur


def _measured_lineage_bytes(plain):
    """Retained bytes of the tracked ETL (``track_frame`` inputs) minus those of the plain ETL, X alive."""
    p = _retained(lambda: credit_risk_etl(**plain))

    def tracked():
        wh.reset()
        return credit_risk_etl(**{k: wh.track_frame(v, k) for k, v in plain.items()})
    t = _retained(tracked)
    wh.reset()
    return {"plain_retained_bytes": int(p), "tracked_retained_bytes": int(t), "measured_lineage_bytes": int(t - p)}


def _tracked_read_etl(files, return_frame=False):
    wh.reset()
    t = {k: wh.read_csv(p, name=k) for k, p in files.paths.items()}
    return credit_risk_etl(**t, return_frame=return_frame)


def _expected(plain, app_ids):
    """Expected trace rows per applicant id: {table: sorted positions} (from the plain frames)."""
    app, bur, prev = plain["application"], plain["bureau"], plain["previous_application"]
    bur_ok = bur["CREDIT_ACTIVE"].isin(BUREAU_KEEP).to_numpy()
    prev_ok = prev["NAME_CONTRACT_STATUS"].isin(PREV_KEEP).to_numpy()
    a_id = app["SK_ID_CURR"].to_numpy()
    b_id = bur["SK_ID_CURR"].to_numpy()
    p_id = prev["SK_ID_CURR"].to_numpy()
    out = []
    for i in app_ids:
        out.append({"application": np.flatnonzero(a_id == i).tolist(),
                    "bureau": np.flatnonzero((b_id == i) & bur_ok).tolist(),
                    "previous_application": np.flatnonzero((p_id == i) & prev_ok).tolist()})
    return out


def _check_trace(tr, exp):
    got = {k: sorted(r.row for r in tr if r.table == k) for k in TABLES}
    extra = sorted({r.table for r in tr} - set(TABLES))
    ok = (len(got["application"]) == 1 and got == exp and not extra and tr.complete)
    lines_ok = all(r.line == r.row + 2 for r in tr)
    return ok, lines_ok, got


def _peak_bytes(fn):
    """Peak bytes ``tracemalloc`` traces during one call (the call's own working memory)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return int(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def _one_cell(files, counts, g, log, problems, n):
    """backward of one cell, forward of one source cell and trace_to_file of one row, on the final frame of
    the tracked read + ETL: the first call (on a fresh build, before any other query), the steady state
    (median over 9 batches cycling through 200 random cells) and the peak memory of one call, with the size
    of its answer."""
    frame = _tracked_read_etl(files, return_frame=True)[3]
    nr, nc = frame.shape
    cells = list(zip(g.integers(0, nr, size=200).tolist(), g.integers(0, nc, size=200).tolist()))
    rows = g.integers(0, nr, size=200).tolist()
    qs = {
        "backward_cell": (lambda c: wh.backward(frame, c), cells, lambda r: sum(len(v) for v in r.values())),
        "trace_to_file_row": (lambda r: wh.trace_to_file(frame, row=r), rows, len),
        "forward_cell": (lambda c: wh.forward("bureau", c, frame), None, len),
    }
    firsts = {}
    for name, (fn, items, _) in qs.items():
        if items is None:
            # bureau cells that reach the frame (most bureau rows are filtered out or aggregated away): random
            # cells of the backward answers of random rows
            items = []
            for r in g.permutation(nr)[:2000].tolist():
                got = wh.backward(frame, rows=[r]).get("bureau")
                if got is not None and len(got):
                    items.append(tuple(int(v) for v in np.asarray(got)[g.integers(len(got))]))
                if len(items) == 200:
                    break
            qs[name] = (fn, items, qs[name][2])
        t0 = perf()
        fn(items[0])
        firsts[name] = perf() - t0
    out = {"frame_shape": [int(nr), int(nc)], "target_steady_s": TARGETS["one_cell_s"]}
    for name, (fn, items, size) in qs.items():
        m = median_time(_cycle_fn(fn, items[1:]), reps=9, min_batch=0.02)
        peaks = [_peak_bytes(lambda it=it: fn(it)) for it in items[1:6]]
        answers = [int(size(fn(it))) for it in items[1:6]]
        out[name] = {"first_s": firsts[name], "steady": m, "peak_bytes": peaks, "answer_cells": answers}
        log(f"  one cell {name:18s} first {firsts[name]*1e3:8.3f} ms, steady {m['median_s']*1e3:8.4f} ms per call; "
            f"peak memory per call {np.median(peaks)/1e3:8.1f} kB (answers of {int(np.median(answers))} cells)")
        if m["median_s"] > TARGETS["one_cell_s"]:
            problems.append(f"tabular {n}: one-cell {name} on a frame takes {m['median_s']*1e3:.2f} ms "
                            f"(target {TARGETS['one_cell_s']*1e3:.0f} ms)")
    return out


def run_size(n, files, quick, log, problems):
    paths = files.paths
    plain = {k: pd.read_csv(p) for k, p in paths.items()}
    counts = _source_counts(plain)
    total_rows = sum(counts.values())
    big = n >= 200_000
    reps = 5 if big else 7
    entry = {"applicants": n, "source_rows": counts, "total_source_rows": total_rows, "reps_min": reps}
    log(f"  {n} applicants: {counts} ({total_rows} source rows)")

    # -- correctness of the values first (untimed): tracked X equals plain X
    Xp, _, _, dfp = credit_risk_etl(**plain, return_frame=True)
    entry["X_shape"] = list(Xp.shape)

    # -- 1. ETL, tracked/plain
    def etl_plain():
        return credit_risk_etl(**plain)

    def etl_tracked():
        wh.reset()
        return credit_risk_etl(**{k: wh.track_frame(v, k) for k, v in plain.items()})

    r = alternate({"plain": etl_plain, "tracked": etl_tracked}, reps=reps, min_batch=0.02,
                  budget=(20 if big else 10) * (0.5 if quick else 1.0))
    entry["etl"] = _run_alt(r)
    log(f"  ETL              plain {r['median_s']['plain']*1e3:9.1f} ms  tracked "
        f"{r['median_s']['tracked']*1e3:9.1f} ms  ratio {r['ratio']['tracked']:.3f}x "
        f"(paired {r['ratio_paired']['tracked']:.3f}x, {r['reps']} rounds)")

    # -- read + ETL
    def read_etl_plain():
        return credit_risk_etl(**{k: pd.read_csv(p) for k, p in paths.items()})

    r = alternate({"plain": read_etl_plain, "tracked": lambda: _tracked_read_etl(files)}, reps=reps,
                  min_batch=0.02, budget=(25 if big else 10) * (0.5 if quick else 1.0))
    entry["read_etl"] = _run_alt(r)
    log(f"  read+ETL         plain {r['median_s']['plain']*1e3:9.1f} ms  tracked "
        f"{r['median_s']['tracked']*1e3:9.1f} ms  ratio {r['ratio']['tracked']:.3f}x "
        f"(paired {r['ratio_paired']['tracked']:.3f}x, {r['reps']} rounds)")

    # -- exactness setup: applicant per X row, expected rows (plain pandas)
    g = rng(11)
    app_ids = dfp["SK_ID_CURR"].to_numpy()
    check_rows = g.choice(len(Xp), size=min(TARGETS["exact_rows"], len(Xp)), replace=False).tolist()
    expected = _expected(plain, [int(app_ids[i]) for i in check_rows])
    # a row with rows in all three tables, for the first call (every lazy structure gets built)
    first_row = None
    for i in g.permutation(len(Xp))[:2000].tolist():
        e = _expected(plain, [int(app_ids[i])])[0]
        if e["bureau"] and e["previous_application"]:
            first_row = i
            break
    if first_row is None:
        first_row = check_rows[0]

    # -- 2. first trace_to_file after a fresh build (3 builds; 1 at the large size)
    firsts = []
    mem_before = None
    X = None
    for b in range(1 if big else 3):
        X = None
        X = _tracked_read_etl(files)[0]
        if mem_before is None:
            mem_before = _memory(X, total_rows)
        t0 = perf()
        wh.trace_to_file(X, row=first_row)
        firsts.append(perf() - t0)
    entry["trace_first"] = {"row": first_row, "samples_s": firsts, "median_s": float(np.median(firsts)),
                            "builds": len(firsts)}
    log(f"  trace_to_file first call {np.median(firsts)*1e3:9.3f} ms (median of {len(firsts)} builds)")

    Xv = wh.plain(X)
    if Xv.shape != Xp.shape or not np.array_equal(Xv, Xp, equal_nan=True):
        entry["X_equal_plain"] = False
        problems.append(f"tabular {n}: tracked X differs from plain X")
    else:
        entry["X_equal_plain"] = True

    # -- 3. exactness
    passed, lines_bad, fails = 0, 0, []
    for i, exp in zip(check_rows, expected):
        tr = wh.trace_to_file(X, row=i)
        ok, lines_ok, got = _check_trace(tr, exp)
        passed += ok
        lines_bad += not lines_ok
        if not ok and len(fails) < 5:
            fails.append({"row": i, "SK_ID_CURR": int(app_ids[i]), "expected": exp, "got": got,
                          "complete": tr.complete, "reasons": tr.reasons})
    entry["exactness"] = {"checked": len(check_rows), "passed": int(passed), "failed": len(check_rows) - passed,
                          "lines_wrong": int(lines_bad), "failures": fails, "rows": check_rows}
    log(f"  trace exactness  {passed}/{len(check_rows)} rows exact; file lines wrong in {lines_bad}")
    if passed != len(check_rows):
        problems.append(f"tabular {n}: trace_to_file exact for {passed}/{len(check_rows)} rows; first failure: "
                        f"{fails[0] if fails else '?'}")
    if lines_bad:
        problems.append(f"tabular {n}: trace_to_file line != row + 2 in {lines_bad} traces")

    # -- 2. steady-state queries
    rows = g.integers(0, len(Xp), size=1000).tolist()
    cells = list(zip(g.integers(0, Xp.shape[0], size=1000).tolist(), g.integers(0, Xp.shape[1], size=1000).tolist()))
    brows = g.integers(0, counts["bureau"], size=1000).tolist()
    qs = {
        "trace_to_file": _cycle_fn(lambda r: wh.trace_to_file(X, row=r), rows),
        "backward_cell": _cycle_fn(lambda c: wh.backward(X, c), cells),
        "forward_bureau_row": _cycle_fn(lambda k: wh.forward("bureau", None, X, rows=[k]), brows),
    }
    entry["queries"] = {}
    for name, fn in qs.items():
        q_reps = (3 if big else 5) if name == "forward_bureau_row" else 9
        try:
            m = median_time(fn, reps=q_reps, min_batch=0.02)
            entry["queries"][name] = m
            log(f"  {name:18s} steady {m['median_s']*1e3:9.4f} ms per call ({m['number']} calls/batch, "
                f"{q_reps} batches)")
        except Exception as exc:  # noqa: BLE001
            entry["queries"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            problems.append(f"tabular {n}: {name} raised {type(exc).__name__}: {exc}")
            log(f"  {name:18s} ERROR {exc}")

    # -- 5. one-cell queries on the ETL's final frame (a tracked DataFrame, before to_numpy)
    entry["one_cell"] = _one_cell(files, counts, g, log, problems, n)

    # -- 4. memory
    entry["memory"] = {"after_etl": mem_before, "after_queries": _memory(X, total_rows)}
    X = Xv = qs = None  # free the graph before the tracemalloc run
    wh.reset()
    meas = _measured_lineage_bytes(plain)
    meas["measured_lineage_bytes_per_source_row"] = meas["measured_lineage_bytes"] / total_rows
    entry["memory"]["measured"] = meas
    ma = entry["memory"]["after_queries"]
    log(f"  lineage(X).nbytes {ma['lineage_nbytes']/1e6:8.2f} MB (after ETL "
        f"{mem_before['lineage_nbytes']/1e6:.2f} MB); distinct index arrays {ma['distinct_index_bytes']/1e6:.2f} MB "
        f"({ma['distinct_index_bytes_per_source_row']:.1f} B per source row); measured (tracemalloc, tracked - "
        f"plain retained, right after the ETL) {meas['measured_lineage_bytes']/1e6:.2f} MB")
    return entry


def run(quick=False, log=print):
    sizes = [2_000, 20_000] if quick else [20_000, 200_000]
    problems = []
    entries = []
    tp_status = None
    for n in sizes:
        tmp = tempfile.mkdtemp(prefix="whence-bench-tabular-")
        try:
            t0 = perf()
            files = credit_risk(n, seed=0, path=tmp)
            gen_s = perf() - t0
            log(f"  generated {n} applicants in {gen_s:.1f} s")
            if tp_status is None:
                tp_status = traceprop_status(files)
                log(f"  traceprop: {'runs' if tp_status.get('run') else 'not run'}: {tp_status['why']}")
            e = run_size(n, files, quick, log, problems)
            e["generate_s"] = gen_s
            entries.append(e)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    pub = PUBLISHED["etl"]
    log(f"  Traceprop (published, cited): {pub['ratio']}x on its ETL ({pub['plain_s']} s plain vs "
        f"{pub['tracked_s']} s tracked, {pub['applicants']} applicants / {pub['source_rows']} rows); "
        f"trace_to_file {PUBLISHED['trace_to_file_s']*1e3:.2f} ms")
    return {
        "name": "tabular",
        "what": "credit-risk case study: ETL capture overhead (track_frame; read_csv + ETL), trace_to_file "
                "first call and steady state, backward/forward, exactness of 20 traces, lineage bytes",
        "sizes": entries,
        "targets": {"etl_ratio": {str(k): v for k, v in TARGETS["etl_ratio"].items()},
                    "trace_steady_s": TARGETS["trace_steady_s"], "exact_rows": TARGETS["exact_rows"]},
        "traceprop_published": PUBLISHED,
        "traceprop_measured": tp_status,
        "problems": problems,
    }
