"""A short walk through whence's lineage queries on a small image-like pipeline (``make demo``).

Run with ``python -m whence.demo``.  Everything printed is computed live.
"""

from __future__ import annotations

import warnings

import numpy as np

import whence as wh


def _show(title, value):
    print(f"  {title:<46} {value}")


def whence_command():
    """The ``whence`` command as the user can type it here: ``whence`` when the shell finds this installation's
    script, else the script's path (``.venv/bin/whence``), else ``python -m whence``.

    >>> whence_command().endswith("whence")
    True
    """
    import os
    import shutil
    import sys

    script = os.path.join(os.path.dirname(sys.executable), "whence")
    found = shutil.which("whence")
    if found and (not os.path.isfile(script) or os.path.realpath(found) == os.path.realpath(script)):
        return "whence"
    if os.path.isfile(script):
        rel = os.path.relpath(script)
        return rel if not rel.startswith("..") else script
    return f"{sys.executable} -m whence"


def main():
    from ._extras import require
    require("whence demo", "pandas", "sklearn", "store")  # all three named at once, before anything is written
    wh.reset()
    rng = np.random.default_rng(7)
    print("whence demo: where did this value come from?\n")

    # two sources: a 6x8 "sensor image" and per-column calibration gains
    image = wh.track(rng.normal(100, 15, size=(6, 8)).round(1), name="image")
    gains = wh.track(rng.uniform(0.9, 1.1, size=8).round(3), name="gains")
    print("sources: image (6x8 readings), gains (8 per-column calibration factors)\n")

    calibrated = image * gains                       # elementwise with broadcasting
    smooth = (calibrated[:, :-1] + calibrated[:, 1:]) / 2   # a moving average via slicing
    bright = smooth > 100                            # comparisons keep lineage
    picked = np.where(bright, smooth, 0.0)           # a data-dependent copy
    ranked = np.sort(picked, axis=1)[:, ::-1]        # sort each row, descending
    score = ranked[:, :3].mean(axis=1)               # mean of the three brightest per row

    print("pipeline: calibrate -> smooth -> threshold -> where -> sort rows -> top-3 mean per row")
    print(f"score = {np.round(np.asarray(score), 2)}\n")

    row = int(np.argmax(np.asarray(score)))
    print(f"Backward: which source cells made score[{row}]?")
    r = wh.backward(score, (row,))
    _show("image cells:", r["image"].tolist())
    _show("gains cells:", r["gains"].tolist())
    _show("complete:", r.completeness)
    rc = wh.backward(score, (row,), control=True)
    _show("with control cells (the where-condition too):", f"{len(rc['image'])} image cells")

    print("\nThe DSLog-style view of one cell of the sorted array:")
    cell = ranked.cell(row, 0)
    _show(f"ranked[{row}, 0] = {cell.value:.2f} came from", cell.parents)

    col = int(r["image"][0][1])
    print(f"\nForward: what did image[{row}, {col}] touch?")
    _show("cells of smooth:", wh.forward(image, (row, col), smooth).tolist())
    _show("cells of score:", wh.forward(image, (row, col), score).tolist())

    print("\nIn-place writes replace lineage: zero a bad reading, then recompute")
    image[2, 3] = 0.0
    again = (image * gains).sum(axis=1)
    _show("sources of row 2 sum now:", {k: len(v) for k, v in wh.backward(again, (2,)).items()})
    _show("image[2, 3] still in it?", bool((wh.backward(again, (2,))["image"] == [2, 3]).all(1).any()))

    print("\nThe graph:")
    _show("sources(score):", wh.sources(score))
    _show("ops(score):", wh.ops(score))
    _show("ancestors(score, depth=2):", [r.op for r in wh.ancestors(score, depth=2)])
    rel = wh.lineage(score)
    _show("lineage held for the whole relation:", f"{rel.nbytes} bytes for {len(rel.records)} ops")

    print("\nAn opaque step is flagged, never silently wrong:")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spectrum = np.abs(np.fft.rfft(image, axis=1))
    _show("warning:", str(caught[0].message)[:88] + "...")
    _show("backward(spectrum, (0, 0)).completeness:", wh.backward(spectrum, (0, 0)).completeness)
    print()
    print(repr(score))
    credit_risk_case()


def credit_risk_case(n_applicants=20_000):
    """The three-table credit-risk case study: pandas ETL under lineage, one applicant traced to file lines."""
    import contextlib
    import os
    import time

    from .datasets import credit_risk, credit_risk_etl

    print("\n" + "=" * 100)
    print("Case study: three CSV files -> pandas ETL -> training matrix; trace one applicant's row to file lines\n")
    t_case = time.perf_counter()
    wh.reset()
    # the generated files stay beside the store (demo/data), so that a trace from demo/run.duckdb, the report
    # and the explorer point at files that exist
    data_dir = os.path.join("demo", "data")
    os.makedirs(data_dir, exist_ok=True)
    with contextlib.nullcontext(data_dir) as tmp:
        files = credit_risk(n_applicants, seed=0, path=tmp)
        t0 = time.perf_counter()
        apps, bureau, prev = files.read()
        X, y, names, df = credit_risk_etl(apps, bureau, prev, return_frame=True)
        took = time.perf_counter() - t0
        rows = len(apps) + len(bureau) + len(prev)
        _show("source rows read (3 files):", f"{rows:,}")
        _show("training matrix X:", f"{type(X).__name__} {X.shape}, built in {took:.2f} s with lineage")
        i = 5
        cid = int(df["SK_ID_CURR"].iloc[i])
        print(f"\ntrace_to_file(X, row={i}): the source lines of applicant {cid}'s training row")
        trace = wh.trace_to_file(X, row=i)
        for s in trace:
            cols = ", ".join(s.columns)
            print(f"  {s.table:<21} line {s.line:<7} {cols[:66] + ('...' if len(cols) > 66 else '')}")
        _show("complete:", "FULL" if trace.complete else "PARTIAL")
        j = names.index("BUREAU_DEBT_MEAN") if "BUREAU_DEBT_MEAN" in names else 2
        r = wh.backward(X, (i, j))
        print(f"\nbackward(X, ({i}, {j})) -- feature {names[j]!r}:")
        for name, cells in r.items():
            cols = sorted({files_col(name, c) for c in cells[:, 1].tolist()})
            _show(f"{name}:", f"rows {sorted(set(cells[:, 0].tolist()))[:8]} columns {cols}")
        first = trace[0] if trace else None
        if first is not None:
            hit = wh.forward(first.table, X, rows=[first.row])
            _show(f"forward({first.table!r}, row {first.row}) reaches X cells:", f"{len(hit)} cells in rows "
                  f"{sorted(set(hit[:, 0].tolist()))}")
        _show("sources(X):", wh.sources(X))
        _show("pandas operations behind X:", len(wh.ops(X)))
        explanations, forgot = _attribution_and_unlearning(files, X, y, df, i)
        store_path = os.path.join("demo", "run.duckdb")
        t0 = time.perf_counter()
        info = wh.save(store_path, "etl", X=X, y=y, df=df, overwrite=True,
                       results={"attribution": explanations, "unlearning": forgot})
        took = time.perf_counter() - t0
        n_src = len(wh.sources(X))
        print(f"\nwh.save({store_path.rsplit('/', 1)[-1]!r}, 'etl', X=X, y=y, df=df, results=...): "
              f"{info['nodes'] - n_src} operations and {n_src} sources, {len(explanations)} explained predictions, "
              f"the unlearning figures; "
              f"{info['bytes'] / 1024:.0f} KiB, {took * 1e3:.0f} ms")
        with wh.open(store_path) as store:
            x = store["etl"]["X"]
            again = wh.trace_to_file(x, row=i)
            _show("reopened: trace_to_file(store['etl']['X'], row=5) equal to the live answer:",
                  list(again) == list(trace))
            _show("the run's tables, by SQL:", ", ".join(
                f"{r.op} x{r.n}" for r in store.sql(
                    "SELECT op, count(*) AS n FROM nodes GROUP BY op ORDER BY n DESC, op LIMIT 4").itertuples()))
        from .report import write_report
        bench = os.path.join("benchmarks", "results", "summary.md")
        out = write_report(store_path, os.path.join("demo", "report.html"), row=i,
                           bench=bench if os.path.isfile(bench) else None)
        _show("report (one self-contained HTML file):", str(out))
        r = forgot.report
        print("\n" + "=" * 100)
        print("Summary")
        _show("source rows read, training matrix:", f"{rows:,} rows in 3 files -> X {X.shape[0]:,} x {X.shape[1]}")
        _show(f"applicant row {i} traced to:", f"{len(trace)} lines of {len({s.table for s in trace})} files, "
              f"{'FULL' if trace.complete else 'PARTIAL'}")
        _show("explained predictions saved:", f"{len(explanations)} (top and bottom training rows, the effect of "
              f"deleting each source row and each file)")
        _show("forgotten:", f"{sum(r['source_rows_dropped'].values())} source lines -> "
              f"{r['training_rows']['changed']} training rows changed ({r['training_rows']['changed_by_lineage']} "
              f"through the lineage, the rest by a column median); parameter distance to retraining "
              f"{r['retrained']['param_distance']:.1e}; update {r['seconds']['update'] * 1e3:.0f} ms vs retrain "
              f"{r['seconds']['retrain'] * 1e3:.0f} ms")
        _show("store, report:", f"{store_path} ({info['bytes'] / 1024:.0f} KiB), {out}")
        _show("case study time:", f"{time.perf_counter() - t_case:.1f} s")
        cmd = whence_command()
        print(f"\nNext: {cmd} serve demo/run.duckdb   (the lineage explorer in a browser, on 127.0.0.1)")
        print(f"      {cmd} trace demo/run.duckdb etl X --row 5   |   {cmd} show demo/run.duckdb")


def _attribution_and_unlearning(files, X, y, df, i):
    """Train a model on the traced matrix, explain applicant ``i`` down to file lines, and forget 20
    applicants' credit history through the lineage, checked against retraining."""
    import time

    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .attribution import Attributor
    from .datasets import credit_risk_etl
    from .unlearn import forget_sources
    Xp, yp = np.asarray(X), np.asarray(y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, tol=1e-8)).fit(Xp, yp)
    print(f"\nA logistic regression on X (train accuracy {model.score(Xp, yp):.3f}); which training rows made "
          f"applicant {int(df['SK_ID_CURR'].iloc[i])}'s prediction?")
    t0 = time.perf_counter()
    attributor = Attributor(model, X, yp)
    ex = attributor.explain(Xp[i], yp[i], test_row=i)
    took = time.perf_counter() - t0
    # a few more applicants for the report and the explorer's attribution view
    explanations = [ex] + [attributor.explain(Xp[j], yp[j], test_row=j) for j in (11, 42, 97, 123)]
    top = ex.top(3)
    _show("most helpful training rows (score):", ", ".join(f"{r.row} ({r.score:+.3g})" for r in top)
          + f"   [{took * 1e3:.0f} ms]")
    first = ex.trace_to_file(0)
    _show("the most helpful row comes from:", "; ".join(f"{s.table} line {s.line}" for s in first))
    # what would this prediction be without each source row? (deletion through the ETL, then the model)
    t0 = time.perf_counter()
    cf = ex.counterfactual()
    took = time.perf_counter() - t0
    n_src = sum(v.size for v in cf.effects.values())
    print(f"\nWithout which source rows would applicant {int(df['SK_ID_CURR'].iloc[i])}'s margin "
          f"({cf.output:+.3f}) change most? All {n_src:,} source rows, in {took:.2f} s:")
    for e in cf.largest(3):
        _show(f"  {e.table} line {e.line}:", f"effect {e.effect:+.2e} (margin without it {cf.output - e.effect:+.4f}; "
              f"{e.train_rows} training row{'s' if e.train_rows != 1 else ''} changed)")
    cid = int(df["SK_ID_CURR"].iloc[i])
    g = cf.group("bureau", where=lambda t: t["SK_ID_CURR"] == cid)
    _show(f"  without applicant {cid}'s own bureau lines:", f"margin {g.prediction_without:+.4f} (effect "
          f"{g.effect:+.3f}, {g.source_rows} lines, Newton steps on the new training set)")
    g = cf.group("bureau", where=lambda t: t["CREDIT_ACTIVE"] == "Closed")
    _show("  without every closed bureau credit:", f"margin {g.prediction_without:+.4f} (effect {g.effect:+.3f}, "
          f"{g.source_rows:,} lines, {g.changed_training_rows:,} training rows change)")
    eff, why = cf.table_effects(reasons=True)
    for t, g in eff.items():
        _show(f"  without the whole {t} file:", f"margin {g.prediction_without:+.4f} (effect {g.effect:+.3f})")
    for t, w in why.items():
        _show(f"  without the whole {t} file:", "no answer: " + w.split(":")[0])
    _show("  rules:", ", ".join(f"{t} {'exact' if ok else 'ETL re-run'}" for t, ok in cf.exact.items())
          + f"; {sum(int(v.sum()) for v in cf.fed_nothing.values()):,} source rows fed nothing (effect 0)")
    for e in explanations[1:]:
        e.counterfactual()  # kept with each explanation: the report and the explorer show them
    # forget 20 applicants' bureau and previous_application lines
    ids = np.asarray(pd.Series(df["SK_ID_CURR"]).sample(20, random_state=1), dtype=np.int64)
    drop = {}
    for name, path in (("bureau", files.bureau), ("previous_application", files.previous_application)):
        t = pd.read_csv(path, usecols=["SK_ID_CURR"])
        drop[name] = (np.flatnonzero(t["SK_ID_CURR"].isin(ids)) + 2).tolist()  # line 1 is the header

    def etl(application, bureau, previous_application):
        return credit_risk_etl(application, bureau, previous_application)[:2]
    print(f"\nForget 20 applicants: {len(drop['bureau'])} bureau and {len(drop['previous_application'])} "
          f"previous_application lines, through the lineage")
    sources = files.paths
    res = forget_sources(etl, sources, drop, model, allow_unused=True)
    r = res.report
    k = r['training_rows']['changed_by_lineage']
    _show("training rows removed:", f"{len(res.removed_rows)} (rows whose application line was dropped; only bureau "
          f"and previous_application lines go here)")
    _show("training rows changed:", f"{len(res.changed_rows)}: {k} fed by a dropped line (through the lineage), "
          f"{len(res.changed_rows) - k} others because a column median that fills missing values moved")
    _show("model vs retraining (parameter distance):", f"{r['retrained']['param_distance']:.1e} "
          f"(0 = retrained, 1 = did nothing)")
    _show("update time vs retraining time:", f"{r['seconds']['update'] * 1e3:.0f} ms vs "
          f"{r['seconds']['retrain'] * 1e3:.0f} ms")
    return explanations, res


def files_col(table, c):
    from .tabular import table_source
    from .graph import sources_by_name as _sources
    node = _sources.get(table)
    t = table_source(node) if node is not None else None
    return t.columns[c] if t is not None else c


if __name__ == "__main__":
    main()
