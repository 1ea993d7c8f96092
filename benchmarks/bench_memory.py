"""Benchmark 5: peak memory of tracked vs plain runs, and bytes of lineage held per operation.

Memory is measured with :mod:`tracemalloc` (numpy reports its data buffers to it), in this process,
plain and tracked runs alternating, median of 5:

* ``peak``: the highest traced memory during the run, above what was traced before it;
* ``retained``: what is still traced after the run while its result is alive (for a tracked result:
  the values plus the lineage graph and maps it keeps).

Bytes of lineage:

* for a pipeline: ``whence.lineage(y).nbytes`` (the library's own account: maps plus 64 B per node)
  divided by the number of ops, and the *measured* difference of retained memory tracked minus plain
  (Python objects included) divided by the number of ops;
* for single class A/B ops: the op's ``lineage_nbytes`` (its map) and the measured retained difference;
* for single class C ops: the same, divided by the number of output cells.

Anchor: a per-cell Python ``CellProvenance`` baseline (see :mod:`cellprov`), measured the same way; DSLog's
C ``tracked_float`` is 32-40 B per cell by its own description.
"""

from __future__ import annotations

import gc
import statistics
import tracemalloc

import numpy as np
import whence as wh

import bench_ops
import cellprov as cp
from common import AB_OPS, ELEMENTWISE_OPS, ab_pipeline, elementwise_pipeline, rng, shape_for, size_label

C_OPS = ["sort", "boolean_mask", "fancy_index", "take_along_axis", "where"]
AB_SINGLE = ["elementwise", "broadcast", "reshape", "transpose", "slice", "reduction", "cumsum", "matmul"]


def class_c_pipeline(a, b, idx):
    """Five class C steps (sort, where, fancy index, argsort + take_along_axis, boolean mask)."""
    y = np.sort(a, axis=1)
    y = np.where(y > 0.5, y, b)
    y = y[idx]
    o = np.argsort(y, axis=1)
    y = np.take_along_axis(y, o, axis=1)
    return y[y > 0.3]


C_PIPE_OPS = 8  # sort, greater, where, getitem, argsort, take_along_axis, greater, getitem


def measure(fn):
    """(peak, retained) bytes of one call of ``fn``, above the memory traced before it."""
    gc.collect()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    cur, peak = tracemalloc.get_traced_memory()
    res = (peak - base, cur - base)
    del out
    gc.collect()
    return res


def alternate_memory(variants, reps=5):
    samples = {k: {"peak": [], "retained": []} for k in variants}
    for _ in range(reps):
        for k, fn in variants.items():
            p, r = measure(fn)
            samples[k]["peak"].append(p)
            samples[k]["retained"].append(r)
    return {k: {"peak_bytes": statistics.median(v["peak"]), "retained_bytes": statistics.median(v["retained"])}
            for k, v in samples.items()}


def pipelines(cells):
    g = rng(9)
    shp = shape_for(cells)
    ap, bp, rp = g.random(shp), g.random(shp), g.random((1, shp[1]))
    idx = g.permutation(shp[0])

    def track(*arrs):
        wh.reset()
        return [wh.track(x, name=n, copy=False) for x, n in zip(arrs, "abr")]
    return {
        "elementwise": (ELEMENTWISE_OPS, lambda: elementwise_pipeline(ap, bp),
                        lambda: elementwise_pipeline(*track(ap, bp))),
        "ab": (AB_OPS, lambda: ab_pipeline(ap, bp, rp), lambda: ab_pipeline(*track(ap, bp, rp))),
        "class_c": (C_PIPE_OPS, lambda: class_c_pipeline(ap, bp, idx),
                    lambda: class_c_pipeline(*track(ap, bp), idx)),
    }


def run(quick=False, log=print):
    sizes = [1e5] if quick else [1e6, 1e7]
    single_size = 1e5 if quick else 1e6
    reps = 5
    problems = []
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    try:
        pipe_rows = []
        for cells in sizes:
            for kind, (nops, p, t) in pipelines(cells).items():
                m = alternate_memory({"plain": p, "tracked": t}, reps)
                y = t()
                rel = wh.lineage(y)
                out_cells = int(np.size(y))
                n_ops = len(wh.ops(y))
                row = {
                    "pipeline": kind, "cells": int(cells), "size": size_label(cells), "n_ops": n_ops,
                    "output_cells": out_cells,
                    "plain": m["plain"], "tracked": m["tracked"],
                    "peak_ratio": m["tracked"]["peak_bytes"] / m["plain"]["peak_bytes"],
                    "lineage_nbytes": int(rel.nbytes),
                    "lineage_nbytes_per_op": rel.nbytes / n_ops,
                    "measured_lineage_bytes": m["tracked"]["retained_bytes"] - m["plain"]["retained_bytes"],
                    "measured_lineage_bytes_per_op":
                        (m["tracked"]["retained_bytes"] - m["plain"]["retained_bytes"]) / n_ops,
                    "per_op_nbytes": [(rec.op, rec.lineage_nbytes) for rec in wh.ancestors(y)
                                      if rec.source is None],
                }
                del y, rel
                pipe_rows.append(row)
                log(f"  memory {size_label(cells)} {kind:12s} peak plain {m['plain']['peak_bytes']/2**20:9.1f} MiB "
                    f"tracked {m['tracked']['peak_bytes']/2**20:9.1f} MiB (x{row['peak_ratio']:.2f}); lineage "
                    f"{row['lineage_nbytes']} B = {row['lineage_nbytes_per_op']:.0f} B/op; measured "
                    f"{row['measured_lineage_bytes_per_op']:.0f} B/op")
                wh.reset()

        op_rows = []
        for op in AB_SINGLE + C_OPS:
            p, t = bench_ops.make_case(op, single_size)
            m = alternate_memory({"plain": p, "tracked": t}, reps)
            y = t()
            rec = wh.ancestors(y, depth=0)[0] if wh.ancestors(y, depth=0) else None
            out_cells = int(np.size(y))
            measured = m["tracked"]["retained_bytes"] - m["plain"]["retained_bytes"]
            row = {"op": op, "class": bench_ops.OP_CLASS[op], "cells": int(single_size),
                   "output_cells": out_cells, "plain": m["plain"], "tracked": m["tracked"],
                   "op_record": rec.op if rec else None,
                   "map_nbytes": int(rec.lineage_nbytes) if rec else None,
                   "map_bytes_per_output_cell": (rec.lineage_nbytes / out_cells) if rec and out_cells else None,
                   "measured_lineage_bytes": measured,
                   "measured_bytes_per_output_cell": measured / out_cells if out_cells else None}
            op_rows.append(row)
            log(f"  memory op {op:16s} ({row['class']}) map {row['map_nbytes']} B "
                f"({row['map_bytes_per_output_cell']:.3f} B/out cell); measured retained +{measured} B "
                f"({row['measured_bytes_per_output_cell']:.3f} B/out cell)")
            del y, p, t
            wh.reset()

        # anchor: per-cell Python provenance
        cells = 1e4
        g = rng(10)
        ap, bp = g.random(shape_for(cells)), g.random(shape_for(cells))
        m = alternate_memory({"plain": lambda: elementwise_pipeline(ap, bp),
                              "cellprov": lambda: elementwise_pipeline(cp.initialize(ap, 0),
                                                                       cp.initialize(bp, 1))}, reps)
        anchor = {"cells": int(cells), "plain": m["plain"], "cellprov": m["cellprov"],
                  "cellprov_retained_bytes_per_cell": m["cellprov"]["retained_bytes"] / cells,
                  "cellprov_peak_ratio": m["cellprov"]["peak_bytes"] / m["plain"]["peak_bytes"]}
        log(f"  memory cellprov 1e4: {anchor['cellprov_retained_bytes_per_cell']:.0f} B/cell retained, "
            f"peak x{anchor['cellprov_peak_ratio']:.1f}")
    finally:
        if not started:
            tracemalloc.stop()
    return {
        "name": "memory",
        "what": "tracemalloc peak/retained memory tracked vs plain (median of 5, alternating); lineage bytes per op",
        "pipelines": pipe_rows,
        "single_ops": op_rows,
        "cellprov_anchor": anchor,
        "problems": problems,
    }
