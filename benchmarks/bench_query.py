"""Benchmark 3: query latency through pipelines of depth 10, 100 and 1000.

The pipeline cycles through four class A operations on an (n, n) array ``a`` and a broadcast row ``r``
(1, n), both tracked::

    y = y * 1.0001      # elementwise
    y = y + r           # broadcast
    y = y[::-1]         # slice (a view, reversed rows)
    y = np.tanh(y)      # ufunc

so a cell of ``y`` derives from exactly one cell of ``a`` and one of ``r``.  Intermediate arrays are freed
as the chain grows (only the lineage graph is kept), so memory stays at a few arrays.

Queries timed (median of >= 5, ``number`` calls per timed batch for the fast ones):

* ``backward(y, cell)``, ``backward(y, 10x10 region)``, ``backward(y)`` (whole array);
* ``forward(a, cell, y)``, ``forward(a, 10x10 region, y)``, ``forward(a, None, y)`` (whole array);
* ``ancestors(y, depth=d)`` on the pipeline of depth d, ``sources(y)``, ``ops(y)``;
* ``lineage(y)`` and its ``nbytes``.

Issue 2's basic figure, one-cell backward latency through a 100-op pipeline, is the depth-100 one-cell row.
"""

from __future__ import annotations

import numpy as np
import whence as wh

from common import median_time, rng

STEP_NAMES = ["multiply", "add(broadcast)", "getitem[::-1]", "tanh"]


def build(a, r, depth):
    y = a
    for i in range(depth):
        k = i % 4
        if k == 0:
            y = y * 1.0001
        elif k == 1:
            y = y + r
        elif k == 2:
            y = y[::-1]
        else:
            y = np.tanh(y)
    return y


def run(quick=False, log=print):
    n = 200 if quick else 1000
    depths = [10, 100, 1000]
    reps = 5
    g = rng(3)
    ap = g.random((n, n))
    rp = g.random((1, n))
    c = n // 2
    cell = (c, c)
    region = (slice(c, c + 10), slice(c, c + 10))
    rows = []
    problems = []
    for depth in depths:
        wh.reset()
        a = wh.track(ap, name="a", copy=False)
        r = wh.track(rp, name="r", copy=False)
        y = build(a, r, depth)
        # correctness spot check: the one-cell answer is one cell of a (and one of r when depth > 1)
        res = wh.backward(y, cell)
        flips = sum(1 for i in range(depth) if i % 4 == 2)
        row_a = c if flips % 2 == 0 else n - 1 - c
        if res.get("a") is None or res["a"].tolist() != [[row_a, c]]:
            problems.append(f"depth {depth}: backward(y, {cell})['a'] = {res.get('a')!r}, expected [[{row_a}, {c}]]")
        fw = wh.forward(a, (row_a, c), y)
        if fw.tolist() != [[c, c]]:
            problems.append(f"depth {depth}: forward(a, ({row_a}, {c}), y) = {fw.tolist()!r}, expected [[{c}, {c}]]")
        entry = {"depth": depth, "shape": [n, n], "queries": {}}
        q = {
            "backward_cell": lambda: wh.backward(y, cell),
            "backward_region_10x10": lambda: wh.backward(y, region),
            "backward_all": lambda: wh.backward(y),
            "forward_cell": lambda: wh.forward(a, cell, y),
            "forward_region_10x10": lambda: wh.forward(a, region, y),
            "forward_all": lambda: wh.forward(a, None, y),
            "ancestors": lambda: wh.ancestors(y, depth=depth),
            "sources": lambda: wh.sources(y),
            "ops": lambda: wh.ops(y),
            "lineage": lambda: wh.lineage(y),
        }
        for name, fn in q.items():
            try:
                m = median_time(fn, reps=reps, min_batch=0.002)
                entry["queries"][name] = {"median_s": m["median_s"], "reps": reps, "number": m["number"],
                                          "samples_s": m["samples_s"]}
                log(f"  query depth {depth:4d} {name:22s} {m['median_s']*1e3:10.3f} ms")
            except Exception as exc:  # noqa: BLE001
                entry["queries"][name] = {"error": f"{type(exc).__name__}: {exc}"}
                problems.append(f"depth {depth}: {name} raised {type(exc).__name__}: {exc}")
                log(f"  query depth {depth:4d} {name:22s} ERROR {exc}")
        anc = wh.ancestors(y, depth=depth)
        entry["ancestors_returned"] = len(anc)
        entry["lineage_nbytes"] = int(wh.lineage(y).nbytes)
        entry["ops_returned"] = len(wh.ops(y))
        rows.append(entry)
        del y, a, r
        wh.reset()
    return {
        "name": "query",
        "what": "query latency through depth 10/100/1000 chains of elementwise/broadcast/slice/tanh on "
                f"{n}x{n} arrays",
        "steps_cycle": STEP_NAMES,
        "shape": [n, n],
        "cell": list(cell),
        "region": f"[{c}:{c+10}, {c}:{c+10}]",
        "depths": rows,
        "problems": problems,
    }
