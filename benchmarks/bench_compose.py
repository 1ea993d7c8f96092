"""Benchmark: long runs under composition (whence.compose) -- memory of loops, hops per query, dispatch.

1. **Loops on 1e6 cells** (each in its own subprocess, so that its peak RSS is its own): ``where``, a boolean
   mask, ``sort`` and a mix of them with elementwise steps, ``iters`` iterations each (10,000 in full mode;
   fewer in quick mode, where the RSS checkpoints still show whether memory is flat).  The plain loop runs
   first, then the tracked one, in the same process.  Reported: RSS at checkpoints of the tracked loop, the
   process's peak RSS, plain and tracked seconds, and whether sampled one-cell backward answers (and control
   answers for ``where``) equal the oracle's, which follows each cell's source index through the same loop
   in plain numpy.
2. **One-cell backward through 1,000 operations** (the query benchmark's chain: elementwise, broadcast,
   reversed slice, tanh on a 1000 x 1000 array): intermediates dead (folded into their readers' maps) and all
   alive (kept in a list); median latency.
3. **Dispatch on 1e3 cells**: ``(E * 2.0 + 1.0) - E.mean()`` plain and tracked, alternating (ratio), and the
   time added per call for a ufunc with a scalar, a view, a reduction, ``matmul`` and ``cumsum``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import whence as wh

from common import alternate, median_time, rng

HERE = os.path.dirname(os.path.abspath(__file__))
LOOPS = ("where", "mask", "sort", "mix")
RSS_TARGET_MB = 300


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _step(kind, y):
    if kind == "where":
        return np.where(y > 0.5, y * 1.0001, y * 0.9999)
    if kind == "mask":
        return y[y > -1.0]
    if kind == "sort":
        return np.sort(y * 1.0001)
    # mix: a where, a mask, elementwise steps and (every 10th iteration) a sort
    y = np.where(y > 0.5, y * 0.9999, y + 0.0001)
    return y[y > -1.0] * 1.0


def _oracle_step(kind, v, idx, i):
    """The same step on plain values, carrying each cell's source index."""
    if kind == "where":
        return np.where(v > 0.5, v * 1.0001, v * 0.9999), idx
    if kind == "mask":
        m = v > -1.0
        return v[m], idx[m]
    if kind == "sort":
        v = v * 1.0001
        p = np.argsort(v, kind="stable")
        return v[p], idx[p]
    v = np.where(v > 0.5, v * 0.9999, v + 0.0001)
    m = v > -1.0
    v, idx = v[m] * 1.0, idx[m]
    if i % 10 == 9:
        p = np.argsort(v, kind="stable")
        v, idx = v[p], idx[p]
    return v, idx


def loop_child(kind, n, iters, checkpoints=10):
    """Run one loop plain then tracked; returns a dict (run in a subprocess by :func:`run`)."""
    g = np.random.default_rng(5)
    x0 = g.random(n)
    t0 = time.perf_counter()
    y = x0
    for i in range(iters):
        y = _step(kind, y)
        if kind == "mix" and i % 10 == 9:
            y = np.sort(y)
    plain_s = time.perf_counter() - t0
    del y
    rss_before = _rss_mb()
    every = max(1, iters // checkpoints)
    rss = []
    t0 = time.perf_counter()
    y = wh.track(x0, name="x", copy=False)
    for i in range(iters):
        y = _step(kind, y)
        if kind == "mix" and i % 10 == 9:
            y = np.sort(y)
        if (i + 1) % every == 0:
            rss.append([i + 1, round(_rss_mb(), 1)])
    tracked_s = time.perf_counter() - t0
    # the oracle: each cell's source index through the same loop
    v, idx = x0, np.arange(n)
    for i in range(iters):
        v, idx = _oracle_step(kind, v, idx, i)
    ok = bool(np.array_equal(v, np.asarray(y)))
    cells = np.random.default_rng(1).integers(0, len(idx), 20)
    t_q = time.perf_counter()
    for c in cells:
        r = wh.backward(y, (int(c),))
        ok &= r.complete and r["x"].tolist() == [[int(idx[c])]]
        if kind == "where":
            r = wh.backward(y, (int(c),), control=True)
            ok &= r["x"].tolist() == [[int(idx[c])]]
    query_ms = (time.perf_counter() - t_q) / len(cells) * 1e3
    return {"loop": kind, "cells": n, "iters": iters, "plain_s": plain_s, "tracked_s": tracked_s,
            "ratio": tracked_s / plain_s if plain_s else None, "rss_before_tracked_mb": round(rss_before, 1),
            "rss_checkpoints_mb": rss, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "answers_equal_oracle": ok, "backward_ms_per_cell": query_ms,
            "lineage_nbytes": int(wh.lineage(y).nbytes), "ops_recorded": len(wh.ops(y)),
            "folded": wh.compose.stats()["folded"]}


def _run_loop(kind, n, iters, timeout):
    code = (f"import sys, json; sys.path.insert(0, {HERE!r}); import bench_compose as b; "
            f"print(json.dumps(b.loop_child({kind!r}, {n}, {iters})))")
    # the child imports the same whence as this process (a relative PYTHONPATH would not survive cwd=HERE)
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(wh.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (pkg, os.environ.get("PYTHONPATH", "")) if p))
    proc = subprocess.run([sys.executable, "-c", code], cwd=HERE, text=True, capture_output=True, timeout=timeout,
                          env=env)
    if proc.returncode != 0:
        return {"loop": kind, "error": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _chain(a, r, depth, keep):
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
        if keep is not None:
            keep.append(y)
    return y


def chain_queries(n=1000, depth=1000):
    g = rng(3)
    ap, rp = g.random((n, n)), g.random((1, n))
    c = n // 2
    out = {}
    for label, keep in (("dead", None), ("alive", [])):
        wh.reset()
        a = wh.track(ap, name="a", copy=False)
        r = wh.track(rp, name="r", copy=False)
        y = _chain(a, r, depth, keep)
        flips = sum(1 for i in range(depth) if i % 4 == 2)
        row_a = c if flips % 2 == 0 else n - 1 - c
        res = wh.backward(y, (c, c))
        ok = res["a"].tolist() == [[row_a, c]] and res["r"].tolist() == [[0, c]] and res.complete
        m = median_time(lambda: wh.backward(y, (c, c)), reps=7, min_batch=0.02)
        out[label] = {"depth": depth, "backward_cell_ms": m["median_s"] * 1e3, "answer_ok": bool(ok),
                      "ops": len(wh.ops(y)), "hops": len(__import__("whence.query", fromlist=["x"])
                                                       ._lineage_upstream(y._node)) - 2}
        del y, keep, a, r
    return out


def dispatch(reps=7):
    g = rng(4)
    e_plain = g.random(1000)
    wh.reset()
    E = wh.track(e_plain, name="E", copy=False)
    m_plain = g.random((30, 30))
    M = wh.track(m_plain, name="M", copy=False)
    res = {}
    expr = alternate({"plain": lambda: (e_plain * 2.0 + 1.0) - e_plain.mean(),
                      "tracked": lambda: (E * 2.0 + 1.0) - E.mean()}, reps=reps, min_batch=0.02)
    res["expression_1e3"] = {"plain_us": expr["median_s"]["plain"] * 1e6,
                             "tracked_us": expr["median_s"]["tracked"] * 1e6, "ratio": expr["ratio"]["tracked"]}
    calls = {
        "ufunc_scalar": (lambda: e_plain * 2.0, lambda: E * 2.0),
        "view": (lambda: e_plain[1:], lambda: E[1:]),
        "reduction": (lambda: e_plain.sum(), lambda: E.sum()),
        "matmul": (lambda: m_plain @ m_plain, lambda: M @ M),
        "cumsum": (lambda: np.cumsum(e_plain), lambda: np.cumsum(E)),
    }
    for name, (p, t) in calls.items():
        r = alternate({"plain": p, "tracked": t}, reps=reps, min_batch=0.02)
        res[name] = {"plain_us": r["median_s"]["plain"] * 1e6, "tracked_us": r["median_s"]["tracked"] * 1e6,
                     "added_us": (r["median_s"]["tracked"] - r["median_s"]["plain"]) * 1e6,
                     "ratio": r["ratio"]["tracked"]}
    return res


def run(quick=False, log=print):
    n = 1_000_000
    iters = {"where": 10_000, "mask": 10_000, "sort": 10_000, "mix": 10_000}
    if quick:
        iters = {"where": 150, "mask": 150, "sort": 20, "mix": 40}
    env = os.environ.get("WHENCE_BENCH_LOOP_ITERS")
    if env:
        iters = {k: int(env) for k in iters}
    problems = []
    loops = []
    for kind in LOOPS:
        log(f"  loop {kind}: {iters[kind]} iterations on {n} cells (subprocess)")
        r = _run_loop(kind, n, iters[kind], timeout=4 * 3600)
        loops.append(r)
        if "error" in r:
            problems.append(f"loop {kind} failed: {r['error'][-300:]}")
            continue
        log(f"    peak RSS {r['peak_rss_mb']:.0f} MB, checkpoints {[v for _, v in r['rss_checkpoints_mb']]}, "
            f"x{r['ratio']:.2f} plain, answers {'ok' if r['answers_equal_oracle'] else 'WRONG'}")
        if not r["answers_equal_oracle"]:
            problems.append(f"loop {kind}: answers differ from the oracle's")
    chain = chain_queries(n=200 if quick else 1000)
    for label, c in chain.items():
        log(f"  chain of {c['depth']} ops, {label}: one-cell backward {c['backward_cell_ms']:.3f} ms "
            f"({c['hops']} hops)")
        if not c["answer_ok"]:
            problems.append(f"chain {label}: wrong answer")
    disp = dispatch()
    for name, d in disp.items():
        log(f"  dispatch {name}: x{d['ratio']:.2f}" + (f", +{d['added_us']:.2f} us" if "added_us" in d else ""))
    return {"name": "compose", "what": "long loops under composition (RSS, answers), one-cell backward through "
                                       "1,000 ops (dead / alive), dispatch on 1e3 cells",
            "quick": quick, "loops": loops, "chain": chain, "dispatch": disp, "problems": problems,
            "targets": {"peak_rss_mb": RSS_TARGET_MB, "chain_dead_ms": 1.0, "chain_alive_ms": 2.0,
                        "expression_ratio": 2.0, "added_us": {"ufunc_scalar": 3, "view": 3, "reduction": 3,
                                                              "matmul": 5, "cumsum": 5}}}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1, default=float))
