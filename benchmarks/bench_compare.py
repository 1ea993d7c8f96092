"""Benchmark 4: side by side with traceprop (PyPI) and a per-cell Python baseline (DSLog's CellProvenance).

Capture: issue 2's 10-op elementwise pipeline (:func:`common.elementwise_pipeline`) over two arrays of
shape (cells // 100, 100), four variants alternating in one run:

* ``plain``     numpy on ndarrays;
* ``whence``    ``whence.track(copy=False)`` on both inputs, then the pipeline;
* ``traceprop`` ``traceprop.from_numpy`` on both inputs (graph reset first), then the pipeline;
* ``cellprov``  :mod:`cellprov`: ``initialize`` (per-cell objects with a parents list) then the pipeline on
  object arrays; only at the sizes where one run is predicted to finish within 60 s (from the previous
  size, x 10 cells).  It alternates with plain in a separate measurement (5 rounds), so that its slowness
  does not cut the rounds of the other three; where one run is predicted above 10 s it is timed once
  (``cellprov_reps: 1`` in the JSON) against the plain median of the main measurement.

Queries: ``traceprop.provenance(x).ancestors()`` against ``whence.ancestors(y, depth=1000)`` on a chain of
1000 multiplications, and ``sources()`` / ``ops()`` of both, alternating.  Answers differ in kind
(traceprop is op-level: node ids; whence returns op records), the graph walk is comparable.
"""

from __future__ import annotations

import numpy as np
import whence as wh

import cellprov as cp
from common import alternate, elementwise_pipeline, rng, shape_for, size_label, perf


def _traceprop():
    import traceprop as tp
    return tp


def run(quick=False, log=print):
    sizes = [1e3, 1e4, 1e5] if quick else [1e3, 1e4, 1e5, 1e6, 1e7]
    reps = 5
    problems = []
    try:
        tp = _traceprop()
        tp_version = getattr(tp, "__version__", "?")
    except Exception as exc:  # noqa: BLE001
        tp = None
        tp_version = None
        problems.append(f"traceprop not importable: {exc}")
    rows = []
    cell_prev = None  # (cells, seconds) of the last cellprov run
    for cells in sizes:
        g = rng(5)
        shp = shape_for(cells)
        ap, bp = g.random(shp), g.random(shp)
        variants = {"plain": lambda: elementwise_pipeline(ap, bp)}

        def whence_run():
            wh.reset()
            return elementwise_pipeline(wh.track(ap, name="a", copy=False), wh.track(bp, name="b", copy=False))
        variants["whence"] = whence_run
        if tp is not None:
            def tp_run():
                tp.reset_graph()
                return elementwise_pipeline(tp.from_numpy(ap, source_id="a"), tp.from_numpy(bp, source_id="b"))
            variants["traceprop"] = tp_run

        def cell_run():
            return elementwise_pipeline(cp.initialize(ap, 0), cp.initialize(bp, 1))

        predicted = None if cell_prev is None else cell_prev[1] * cells / cell_prev[0]
        cell_mode = "alternating"
        if predicted is not None and predicted > 60:
            cell_mode = f"skipped: predicted {predicted:.0f} s > 60 s for one run"
        elif predicted is not None and predicted > 10:
            cell_mode = "single"
        elif cells > 1e6:
            cell_mode = "skipped: > 1e6 cells"
        elif quick and cells > 1e4:
            cell_mode = "skipped: quick mode"
        # correctness of the variants (values)
        ref = variants["plain"]()
        for k in ("whence", "traceprop"):
            if k in variants and not np.allclose(np.asarray(variants[k]()), ref):
                problems.append(f"{k}: values differ from plain at {size_label(cells)}")
        r = alternate(variants, reps=reps, min_batch=0.005 if quick else 0.01, budget=0.5 if quick else 3.0)
        med = dict(r["median_s"])
        ratio = dict(r["ratio"])
        nums = r["number"]
        if cell_mode == "alternating":
            # its own alternation with plain (a slow variant would cut the rounds of the others)
            r2 = alternate({"plain": variants["plain"], "cellprov": cell_run}, reps=reps,
                           min_batch=0.005 if quick else 0.01)
            med["cellprov"] = r2["median_s"]["cellprov"]
            ratio["cellprov"] = r2["ratio"]["cellprov"]
            cell_plain = r2["median_s"]["plain"]
            cell_reps = r2["reps"]
        if cell_mode == "single":
            t0 = perf()
            cell_run()
            med["cellprov"] = perf() - t0
            ratio["cellprov"] = med["cellprov"] / med["plain"]
            cell_plain = med["plain"]
            cell_reps = 1
        if "cellprov" in med:
            cell_prev = (cells, med["cellprov"])
            yc = cell_run() if cells <= 1e4 else None
            if yc is not None and not np.allclose(cp.values(yc), ref):
                problems.append(f"cellprov baseline values differ at {size_label(cells)}")
        row = {"cells": int(cells), "size": size_label(cells), "median_s": med, "ratio_vs_plain": ratio,
               "reps": r["reps"], "number": nums, "cellprov_mode": cell_mode,
               "whence_vs_traceprop": (med["whence"] / med["traceprop"]) if "traceprop" in med else None}
        if "cellprov" in med:
            row["cellprov_reps"] = cell_reps
            row["cellprov_plain_s"] = cell_plain  # the plain median its ratio is taken against
        rows.append(row)
        log("  compare " + size_label(cells) + "  " + "  ".join(
            f"{k} {med[k]*1e3:.3f} ms (x{ratio[k]:.2f})" for k in med) + f"  [cellprov: {cell_mode}]")
        wh.reset()

    # ancestors / sources / ops at depth 1000
    q = {}
    depth = 1000
    xp = rng(6).random((100, 100))
    wh.reset()
    y = wh.track(xp, name="x", copy=False)
    for _ in range(depth):
        y = y * 1.0001
    variants = {"whence_ancestors": lambda: wh.ancestors(y, depth=depth)}
    if tp is not None:
        tp.reset_graph()
        t = tp.from_numpy(xp, source_id="x")
        for _ in range(depth):
            t = t * 1.0001
        variants["traceprop_ancestors"] = lambda: tp.provenance(t).ancestors()
    r = alternate(variants, reps=reps, min_batch=0.005)
    q["ancestors_depth1000"] = {"median_s": r["median_s"], "reps": reps, "number": r["number"],
                                "whence_returned": len(wh.ancestors(y, depth=depth)),
                                "traceprop_returned": len(tp.provenance(t).ancestors()) if tp else None}
    variants = {"whence_sources": lambda: wh.sources(y), "whence_ops": lambda: wh.ops(y)}
    if tp is not None:
        variants["traceprop_sources"] = lambda: tp.provenance(t).sources()
        variants["traceprop_ops"] = lambda: tp.provenance(t).ops()
    r = alternate(variants, reps=reps, min_batch=0.005)
    q["sources_ops_depth1000"] = {"median_s": r["median_s"], "reps": reps, "number": r["number"]}
    log("  compare depth-1000 queries: " + "  ".join(
        f"{k} {v*1e3:.3f} ms" for d in q.values() for k, v in d["median_s"].items()))
    wh.reset()
    if tp is not None:
        tp.reset_graph()
    return {
        "name": "compare",
        "what": "elementwise 10-op pipeline: plain vs whence vs traceprop vs per-cell CellProvenance baseline; "
                "ancestors/sources/ops at depth 1000 vs traceprop",
        "traceprop_version": tp_version,
        "capture": rows,
        "queries": q,
        "problems": problems,
    }
