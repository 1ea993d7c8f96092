"""Benchmark: operator chains on 1e5 to 1e7 cells, where numpy's temporary elision matters (issue 21).

``a * 2 + 1`` on plain numpy allocates one buffer: numpy sees that ``a * 2`` is a temporary and computes
``+ 1`` into it.  whence does the same for tracked temporaries (:mod:`whence.elision`).  Each expression
runs on a plain array, on a whence array and on a traceprop array (PyPI, ``traceprop.from_numpy``), the
three alternating in one run; the inputs are wrapped once, outside the timing (``copy=False``: the same
buffer).  Reported: the median of each and the ratio to plain.

``np.add(np.multiply(a, 2), 1)`` is a reference row: plain numpy cannot elide a function call's operand,
whence can, so whence may be faster than plain there.
"""

from __future__ import annotations

import numpy as np
import whence as wh
from whence import elision

from common import alternate, rng, size_label

EXPRESSIONS = {
    "a * 2 + 1": lambda a: a * 2 + 1,
    "((a * a) * a + 1) * 2": lambda a: ((a * a) * a + 1) * 2,
    "(a * 2 + 1) - a.mean()": lambda a: (a * 2 + 1) - a.mean(),
    "10-operator chain": lambda a: (((((a * 1.5 + 0.5) * a - 0.25) * 0.5 + a) * a - 1.0) * 2.0) + a,
    "np.tanh(a * 2) + 1": lambda a: np.tanh(a * 2) + 1,
    "np.add(np.multiply(a, 2), 1)": lambda a: np.add(np.multiply(a, 2), 1),
}
#: the rows of the issue's target (<= 1.15x plain at every size)
TARGETS = ["a * 2 + 1", "((a * a) * a + 1) * 2", "(a * 2 + 1) - a.mean()", "10-operator chain"]
TARGET_RATIO = 1.15


def _traceprop():
    try:
        import traceprop as tp
        return tp, getattr(tp, "__version__", "?"), None
    except Exception as exc:  # noqa: BLE001
        return None, None, f"traceprop not importable: {exc}"


def run(quick=False, log=print):
    sizes = [1e5, 1e6] if quick else [1e5, 1e6, 1e7]
    tp, tp_version, problem = _traceprop()
    problems = [problem] if problem else []
    if not elision.ACTIVE:
        problems.append("whence.elision is off on this interpreter / numpy: whence figures are without elision")
    rows = []
    for cells in sizes:
        n = int(cells)
        ap = rng(21).random(n) + 0.5
        wh.reset()
        at = wh.track(ap, name="a", copy=False)
        tpa = tp.from_numpy(ap, source_id="a") if tp is not None else None
        for label, fn in EXPRESSIONS.items():
            variants = {"plain": lambda fn=fn: fn(ap), "whence": lambda fn=fn: fn(at)}
            if tpa is not None:
                variants["traceprop"] = lambda fn=fn: fn(tpa)
            ref = fn(ap)
            elision.stats(reset=True)
            got = np.asarray(fn(at))
            elided = elision.stats()["elided"]
            if not np.array_equal(got, ref):
                problems.append(f"{label} {size_label(cells)}: whence values differ from plain numpy")
            if tpa is not None and not np.allclose(np.asarray(fn(tpa)), ref):
                problems.append(f"{label} {size_label(cells)}: traceprop values differ from plain numpy")
            r = alternate(variants, reps=5 if quick else 7, min_batch=0.005 if quick else 0.02,
                          budget=0.5 if quick else 3.0)
            med = r["median_s"]
            row = {"expression": label, "cells": n, "size": size_label(cells), "median_s": med,
                   "ratio": r["ratio"], "ratio_min": r.get("ratio_min"), "reps": r["reps"],
                   "number": r["number"], "elided_ops": elided, "target": label in TARGETS}
            rows.append(row)
            tpr = r["ratio"].get("traceprop")
            log(f"  elision {size_label(cells):>4} {label:30s} plain {med['plain'] * 1e6:10.1f} us  whence "
                f"x{r['ratio']['whence']:.2f}  traceprop {'-' if tpr is None else f'x{tpr:.2f}'}  "
                f"(elided {elided})")
            if label in TARGETS and r["ratio"]["whence"] > TARGET_RATIO:
                problems.append(f"{label} {size_label(cells)}: whence x{r['ratio']['whence']:.2f} plain "
                                f"(target <= {TARGET_RATIO})")
        del at, tpa
        wh.reset()
    return {"name": "elision", "what": "operator chains on 1e5-1e7 cells: plain numpy, whence and traceprop "
            "alternating; inputs wrapped once outside the timing", "traceprop_version": tp_version,
            "elision_active": elision.ACTIVE, "rows": rows, "problems": problems}


def cpu_rounds(cells=1e5, rounds=15, log=print):
    """The target rows at one size, in CPU time (``time.process_time``, steadier than wall time on a shared
    machine): ``rounds`` rounds of a plain batch then a whence batch, each batch about 20 million cells of
    work; returns ``{expression: (median plain seconds, median whence seconds, ratio of the medians)}``."""
    import gc
    import statistics
    import time

    n = int(cells)
    ap = rng(21).random(n) + 0.5
    wh.reset()
    at = wh.track(ap, name="a", copy=False)
    calls = max(5, int(2e7 // n))

    def batch(fn, x):
        gc.collect()
        t = time.process_time()
        for _ in range(calls):
            fn(x)
        return (time.process_time() - t) / calls

    out = {}
    for label in TARGETS:
        fn = EXPRESSIONS[label]
        fn(ap), fn(at)
        plain, tracked = [], []
        for _ in range(rounds):
            plain.append(batch(fn, ap))
            tracked.append(batch(fn, at))
        p, w = statistics.median(plain), statistics.median(tracked)
        out[label] = (p, w, w / p)
        log(f"  cpu {size_label(cells):>4} {label:30s} plain {p * 1e6:9.1f} us  whence {w * 1e6:9.1f} us  "
            f"x{w / p:.3f}")
    del at
    wh.reset()
    return out


def markdown(res):
    """The table: one row per expression and size, medians of plain and ratios of whence and traceprop."""
    rows = res.get("rows") or []
    if not rows:
        return ""
    out = ["| expression | cells | plain | whence | traceprop | elided ops |", "|---|---|---|---|---|---|"]
    for r in rows:
        p = r["median_s"]["plain"]
        pt = f"{p * 1e6:.1f} us" if p < 1e-3 else f"{p * 1e3:.2f} ms"
        tpr = r["ratio"].get("traceprop")
        w = r["ratio"]["whence"]
        mark = " **MISS**" if r["target"] and w > TARGET_RATIO else ""
        out.append(f"| `{r['expression']}` | {r['size']} | {pt} | {w:.2f}x{mark} | "
                   f"{'-' if tpr is None else f'{tpr:.2f}x'} | {r['elided_ops']} |")
    return "\n".join(out)


if __name__ == "__main__":
    import argparse
    import json
    import sys

    ap_ = argparse.ArgumentParser(description=__doc__)
    ap_.add_argument("--quick", action="store_true")
    ap_.add_argument("--out")
    ap_.add_argument("--cpu", type=float, metavar="CELLS",
                     help="only the target rows at this size, in CPU time (15 alternating rounds)")
    args = ap_.parse_args()
    if args.cpu:
        cpu_rounds(args.cpu)
        sys.exit(0)
    res = run(quick=args.quick)
    print()
    print(markdown(res))
    for p in res["problems"]:
        print("problem:", p, file=sys.stderr)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1, default=float)
