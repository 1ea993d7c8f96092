"""Benchmark 1e8: the 1e8-cell figures, run by ``run.py`` in a subprocess (memory stays isolated).

* per-op overhead at 1e8 cells (1e6 x 100) for every op of :mod:`bench_ops` (5 to 9 rounds, as fit in
  10 s per op);
* ``sum(axis=1)`` over 1e4 x 1e4: absolute overhead (tracked - plain median) in ms;
* the 10-op class A/B pipeline at 1e8 cells: plain, tracked, and, on the tracked result, the whole-array
  relation (``whence.lineage(y)`` with its ``nbytes``) and the whole-array ``whence.backward(y)`` (all
  source cells of every output cell, as int64 coordinate arrays), four variants alternating, one call per
  batch, median of 7.

Run only when ``/proc/meminfo`` MemAvailable allows (about 10 GiB for everything); parts that do not fit are
skipped and listed under ``skipped``.

Usage: ``python benchmarks/bench_big.py --out results/big.json``
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import whence as wh

import bench_ops
from common import alternate, environment, mem_available_bytes, rng

GiB = 2**30
BIG_OPS = list(bench_ops.ALL_OPS)


def log(msg):
    print(msg, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cells", type=float, default=1e8)
    args = ap.parse_args(argv)
    cells = int(args.cells)
    t_start = time.perf_counter()
    res = {"name": "big", "cells": cells, "env": environment(), "skipped": [], "problems": []}
    avail = mem_available_bytes() or 0
    res["mem_available_bytes_at_start"] = avail
    need_ops = 5 * cells * 8  # x, y, a result of each variant, masks
    need_pipe = 8 * cells * 8  # a, b, intermediates, whole-array backward coordinates
    # ---- per-op
    if avail >= need_ops:
        try:
            res["ops"] = bench_ops.run_ops([cells], BIG_OPS, reps=5, min_batch=0.05, log=log, budget=10.0)
        except MemoryError as exc:
            res["skipped"].append(f"per-op at {cells:.0e}: MemoryError {exc}")
    else:
        res["skipped"].append(f"per-op at {cells:.0e}: needs ~{need_ops/GiB:.1f} GiB, {avail/GiB:.1f} GiB available")
    wh.reset()
    # ---- sum(axis=1) over 1e4 x 1e4
    side = int(round(cells ** 0.5))
    if (mem_available_bytes() or 0) >= 3 * side * side * 8:
        g = rng(12)
        xp = g.random((side, side))
        x = wh.track(xp, name="x", copy=False)
        r = alternate({"plain": lambda: xp.sum(axis=1), "tracked": lambda: x.sum(axis=1)}, reps=5, min_batch=0.05,
                      budget=5.0)
        res["sum_axis1"] = {"shape": [side, side], "plain_s": r["median_s"]["plain"],
                            "tracked_s": r["median_s"]["tracked"], "ratio": r["ratio"]["tracked"],
                            "overhead_ms": (r["median_s"]["tracked"] - r["median_s"]["plain"]) * 1e3,
                            "reps": r["reps"], "number": r["number"], "samples_s": r["samples_s"]}
        log(f"  big sum(axis=1) {side}x{side}: plain {r['median_s']['plain']*1e3:.1f} ms tracked "
            f"{r['median_s']['tracked']*1e3:.1f} ms overhead {res['sum_axis1']['overhead_ms']:.2f} ms")
        del x, xp
        wh.reset()
    else:
        res["skipped"].append(f"sum(axis=1) over {side}x{side}: not enough memory")
    # ---- A/B pipeline and the whole-array relation
    if (mem_available_bytes() or 0) >= need_pipe:
        try:
            p, t, nops = bench_ops.pipeline_case("ab", cells)
            y = t()
            n_ops = len(wh.ops(y))
            holder = {}

            def relation():
                rel = wh.lineage(y)
                holder["nbytes"] = rel.nbytes
                return rel

            def backward_all():
                out = wh.backward(y)
                holder["cells"] = {k: int(len(v)) for k, v in out.items()}
                holder["complete"] = out.complete
                return out
            r = alternate({"plain": p, "tracked": t, "relation": relation, "backward_all": backward_all},
                          reps=7, number=1, warmup=False)
            med = r["median_s"]
            res["ab_pipeline"] = {
                "cells": cells, "n_ops": n_ops, "plain_s": med["plain"], "tracked_s": med["tracked"],
                "ratio": r["ratio"]["tracked"], "ratio_paired": r["ratio_paired"]["tracked"],
                "lineage_s": med["relation"],
                "lineage_vs_plain": r["ratio"]["relation"], "lineage_nbytes": int(holder["nbytes"]),
                "lineage_nbytes_per_op": holder["nbytes"] / n_ops,
                "backward_all_s": med["backward_all"], "backward_all_vs_plain": r["ratio"]["backward_all"],
                "backward_all_cells": holder.get("cells"), "backward_all_complete": holder.get("complete"),
                "reps": r["reps"], "samples_s": r["samples_s"],
            }
            a = res["ab_pipeline"]
            log(f"  big A/B pipeline {cells:.0e}: plain {a['plain_s']:.2f} s tracked {a['tracked_s']:.2f} s "
                f"(x{a['ratio']:.3f}); lineage(y) {a['lineage_s']*1e3:.2f} ms, {a['lineage_nbytes']} B "
                f"({a['lineage_nbytes_per_op']:.0f} B/op); backward(y) all cells {a['backward_all_s']:.2f} s "
                f"(x{a['backward_all_vs_plain']:.2f} plain)")
            expected_a = cells // 2
            got = (holder.get("cells") or {}).get("a")
            if got != expected_a:
                res["problems"].append(f"1e8 A/B backward(y) gave {got} cells of a, expected {expected_a}")
            del y, p, t
        except MemoryError as exc:
            res["skipped"].append(f"A/B pipeline at {cells:.0e}: MemoryError {exc}")
    else:
        res["skipped"].append(f"A/B pipeline at {cells:.0e}: needs ~{need_pipe/GiB:.1f} GiB, "
                              f"{(mem_available_bytes() or 0)/GiB:.1f} GiB available")
    res["seconds"] = time.perf_counter() - t_start
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
