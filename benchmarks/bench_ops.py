"""Benchmark 1: per-operation capture overhead, tracked / plain, per op class and size.

Every op runs on arrays of shape (cells // 100, 100).  The inputs are tracked once, outside the timing
(``copy=False``: the tracked and the plain variant read the very same buffers); what is timed is the one
numpy call.  Inputs that an op class needs (masks, conditions, argsort orders) are computed beforehand,
tracked where the op would receive a tracked array in a real pipeline.

Also: the two pipelines of :mod:`common` (the 10-op elementwise pipeline of issue 2 and the 10-op
class A/B pipeline), timed end to end, ``whence.track`` included in the tracked variant.
"""

from __future__ import annotations

import numpy as np
import whence as wh

from common import AB_OPS, ELEMENTWISE_OPS, ab_pipeline, alternate, elementwise_pipeline, rng, \
    shape_for, size_label

OP_CLASS = {
    "elementwise": "A", "broadcast": "A", "reshape": "A", "transpose": "A", "slice": "A",
    "reduction": "B", "cumsum": "B", "matmul": "B",
    "sort": "C", "boolean_mask": "C", "fancy_index": "C", "take_along_axis": "C", "where": "C",
}

OP_CODE = {
    "elementwise": "x * y",
    "broadcast": "x + r            # r: (1, 100)",
    "reshape": "x.reshape(-1)",
    "transpose": "x.T",
    "slice": "x[1:-1, ::2]",
    "reduction": "x.sum(axis=1)",
    "cumsum": "np.cumsum(x, axis=1)",
    "matmul": "x @ w            # w: (100, 100)",
    "sort": "np.sort(x, axis=1)",
    "boolean_mask": "x[m]             # m = x > 0.5 (tracked)",
    "fancy_index": "x[idx]           # idx: a permutation of the rows (int64)",
    "take_along_axis": "np.take_along_axis(x, o, axis=1)  # o = np.argsort(x, axis=1) (tracked)",
    "where": "np.where(c, x, y)  # c = x > 0.5 (tracked)",
}

ALL_OPS = list(OP_CLASS)


def make_case(op, cells, seed=0):
    """(plain callable, tracked callable) for one op at one size; tracked inputs are made here."""
    g = rng(seed)
    shp = shape_for(cells)
    R, C = shp
    wh.reset()
    xp = g.random(shp)
    x = wh.track(xp, name="x", copy=False)
    if op == "elementwise":
        yp = g.random(shp)
        y = wh.track(yp, name="y", copy=False)
        return (lambda: xp * yp), (lambda: x * y)
    if op == "broadcast":
        rp = g.random((1, C))
        r = wh.track(rp, name="r", copy=False)
        return (lambda: xp + rp), (lambda: x + r)
    if op == "reshape":
        return (lambda: xp.reshape(-1)), (lambda: x.reshape(-1))
    if op == "transpose":
        return (lambda: xp.T), (lambda: x.T)
    if op == "slice":
        return (lambda: xp[1:-1, ::2]), (lambda: x[1:-1, ::2])
    if op == "reduction":
        return (lambda: xp.sum(axis=1)), (lambda: x.sum(axis=1))
    if op == "cumsum":
        return (lambda: np.cumsum(xp, axis=1)), (lambda: np.cumsum(x, axis=1))
    if op == "matmul":
        wp = g.random((C, C))
        w = wh.track(wp, name="w", copy=False)
        return (lambda: xp @ wp), (lambda: x @ w)
    if op == "sort":
        return (lambda: np.sort(xp, axis=1)), (lambda: np.sort(x, axis=1))
    if op == "boolean_mask":
        m = x > 0.5
        mp = np.asarray(m)
        return (lambda: xp[mp]), (lambda: x[m])
    if op == "fancy_index":
        idx = g.permutation(R)
        return (lambda: xp[idx]), (lambda: x[idx])
    if op == "take_along_axis":
        o = np.argsort(x, axis=1)
        op_ = np.asarray(o)
        return (lambda: np.take_along_axis(xp, op_, axis=1)), (lambda: np.take_along_axis(x, o, axis=1))
    if op == "where":
        yp = g.random(shp)
        y = wh.track(yp, name="y", copy=False)
        c = x > 0.5
        cp = np.asarray(c)
        return (lambda: np.where(cp, xp, yp)), (lambda: np.where(c, x, y))
    raise KeyError(op)


def check_case(op, cells):
    """The tracked variant returns a TrackedArray with the plain values (else a whence bug)."""
    p, t = make_case(op, min(cells, 10_000))
    vp, vt = p(), t()
    problems = []
    if not isinstance(vt, wh.TrackedArray):
        problems.append(f"{op}: result is {type(vt).__name__}, not a TrackedArray")
    elif not np.array_equal(np.asarray(vt), vp):
        problems.append(f"{op}: tracked values differ from plain numpy")
    return problems


def run_ops(sizes, ops, reps, min_batch, log=print, budget=None):
    rows = []
    for cells in sizes:
        for op in ops:
            p, t = make_case(op, cells)
            r = alternate({"plain": p, "tracked": t}, reps=reps, min_batch=min_batch, budget=budget)
            med = r["median_s"]
            row = {
                "op": op, "class": OP_CLASS[op], "cells": int(cells), "size": size_label(cells),
                "shape": list(shape_for(cells)), "code": OP_CODE[op],
                "plain_s": med["plain"], "tracked_s": med["tracked"], "ratio": r["ratio"]["tracked"],
                "ratio_min": r["ratio_min"]["tracked"], "ratio_paired": r["ratio_paired"]["tracked"],
                "overhead_us": (med["tracked"] - med["plain"]) * 1e6,
                "reps": r["reps"], "number": r["number"], "samples_s": r["samples_s"],
            }
            rows.append(row)
            log(f"  ops {size_label(cells):>4} {op:16s} plain {med['plain']*1e6:11.1f} us  tracked "
                f"{med['tracked']*1e6:11.1f} us  x{row['ratio']:.2f}")
            del p, t
            wh.reset()
    return rows


def pipeline_case(kind, cells, seed=1):
    g = rng(seed)
    shp = shape_for(cells)
    ap, bp = g.random(shp), g.random(shp)
    if kind == "elementwise":
        def plain():
            return elementwise_pipeline(ap, bp)

        def tracked():
            wh.reset()
            a = wh.track(ap, name="a", copy=False)
            b = wh.track(bp, name="b", copy=False)
            return elementwise_pipeline(a, b)
        return plain, tracked, ELEMENTWISE_OPS
    rp = g.random((1, shp[1]))

    def plain():
        return ab_pipeline(ap, bp, rp)

    def tracked():
        wh.reset()
        a = wh.track(ap, name="a", copy=False)
        b = wh.track(bp, name="b", copy=False)
        r = wh.track(rp, name="r", copy=False)
        return ab_pipeline(a, b, r)
    return plain, tracked, AB_OPS


def run_pipelines(sizes, reps, min_batch, log=print, kinds=("elementwise", "ab"), budget=None):
    rows = []
    for cells in sizes:
        for kind in kinds:
            p, t, nops = pipeline_case(kind, cells)
            r = alternate({"plain": p, "tracked": t}, reps=reps, min_batch=min_batch, budget=budget)
            med = r["median_s"]
            rows.append({
                "pipeline": kind, "cells": int(cells), "size": size_label(cells), "n_ops": nops,
                "plain_s": med["plain"], "tracked_s": med["tracked"], "ratio": r["ratio"]["tracked"],
                "ratio_min": r["ratio_min"]["tracked"], "ratio_paired": r["ratio_paired"]["tracked"],
                "overhead_us_per_op": (med["tracked"] - med["plain"]) * 1e6 / nops,
                "reps": r["reps"], "number": r["number"], "samples_s": r["samples_s"],
            })
            log(f"  pipeline {size_label(cells):>4} {kind:12s} plain {med['plain']*1e3:10.3f} ms  tracked "
                f"{med['tracked']*1e3:10.3f} ms  x{r['ratio']['tracked']:.3f}")
            del p, t
            wh.reset()
    return rows


def run(quick=False, log=print):
    sizes = [1e3, 1e4, 1e5] if quick else [1e3, 1e4, 1e5, 1e6, 1e7]
    reps = 5
    min_batch = 0.003 if quick else 0.02
    budget = 0.5 if quick else 6.0  # seconds per measurement: as many rounds (5..21) as fit
    problems = []
    for op in ALL_OPS:
        try:
            problems += check_case(op, 10_000)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{op}: raised {type(exc).__name__}: {exc}")
    ops_rows = run_ops(sizes, ALL_OPS, reps, min_batch, log, budget=budget)
    pipe_sizes = sizes + [1e6] if quick else sizes  # issue 2 asks for the 1M-cell pipeline in any mode
    pipe_rows = run_pipelines(pipe_sizes, reps, min_batch, log, budget=budget)
    return {
        "name": "ops",
        "what": "per-op overhead tracked/plain per op class and size (shape (cells//100, 100)); "
                "inputs tracked once outside the timing; pipelines include whence.track(copy=False)",
        "sizes": [int(s) for s in sizes],
        "note_1e8": "1e8 cells are measured in a subprocess by bench_big.py (see big.json)",
        "ops": ops_rows,
        "pipelines": pipe_rows,
        "problems": problems,
    }
