"""Benchmark: the lineage store (issue 5).

1. **1e8-cell class A/B pipeline**: ``whence.save`` of its lineage, then ``whence.open`` + the first one-cell
   backward query on the reopened store; seconds (median of 5, after one warm-up save that pays the
   imports) and bytes on disk.
2. **100 operations deep**: one-cell backward from a reopened store through 100 ops (median latency on the
   handle; and open + first query).
3. **DSLog's workload** (random 10-step pipelines from ``dslog_functions.json`` over 1000 x 100 arrays):
   - size: the run's bytes in the store (map records, rectangles, compressed index arrays, as DuckDB holds
     them: ``octet_length`` of every value) and the store file amortised over all pipelines, against the
     explicit per-operation (output cell, input cell) pairs written to gzip-Parquet (int32 columns), the
     "raw" representation DSLog compares ProvRC with;
   - query latency: one-cell backward from the final array to the source, and one-cell forward from the
     source to the final array, (a) from the reopened store with ``whence.backward``/``forward``, (b) as
     one SQL statement over the store's rectangles (``whence.store.backward_sql``), against (c) DuckDB
     joining the explicit per-operation pairs tables hop by hop (the same pipeline, the pairs loaded into
     DuckDB tables); medians over random cells, the three in one run.

The explicit pairs are computed exactly from the maps (rectangles expanded with numpy, gathers and pairs
read off), with no per-cell Python; pipelines whose explicit relation would exceed ``MAX_PAIRS`` pairs in one
operation are left out of the latency comparison and say so.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import tempfile
import time
import warnings

import numpy as np
import whence as wh

from common import rng

MAX_PAIRS = 30_000_000


def _median(xs):
    return statistics.median(xs) if xs else None


def _timeit(fn, reps=5):
    out = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


# --------------------------------------------------------------------------------------- 1e8 A/B pipeline
def big_ab(tmp, cells, log):
    side = int(round(cells ** 0.5))
    wh.reset()
    a = wh.track(np.ones((side, side), np.float32), name="a", copy=False)
    r = wh.track(np.ones((1, side), np.float32), name="r", copy=False)
    y = a * 2.0
    y = y + r
    y = y.T
    y = y[:, ::2]
    y = np.cumsum(y, axis=1)
    y = y.reshape(-1)
    y = y[::-1]
    y = y - 1.0
    y = y.reshape(side, side // 2)[:, 1:].sum(axis=1)
    n_ops = len(wh.ops(y))
    warm = os.path.join(tmp, "warm.duckdb")
    wh.save(warm, "w", y=y)  # pays the imports of duckdb and pyarrow once
    paths = []

    def save():
        p = os.path.join(tmp, f"big{len(paths)}.duckdb")
        paths.append(p)
        wh.save(p, "ab", y=y)

    save_s = _timeit(save)
    size = os.path.getsize(paths[-1])
    cell = (side // 4,)
    exp = wh.backward(y, cell)
    live_q = _timeit(lambda: wh.backward(y, cell))

    def reopen():
        with wh.open(paths[-1]) as s:
            h = s["ab"]["y"]
            assert wh.sources(h) == ["a", "r"] and len(wh.ancestors(h)) == n_ops + 2

    def reopen_query():
        with wh.open(paths[-1]) as s:
            got = wh.backward(s["ab"]["y"], cell)
        assert sorted(got) == sorted(exp) and all(np.array_equal(got[k], exp[k]) for k in exp)

    open_s = _timeit(reopen)
    open_q = _timeit(reopen_query)
    total = _median(save_s) + _median(open_s)
    log(f"  1e8 A/B: save {_median(save_s) * 1e3:.1f} ms, reopen (graph, sources, ancestors) "
        f"{_median(open_s) * 1e3:.1f} ms, reopen + one-cell backward {_median(open_q) * 1e3:.1f} ms (the same "
        f"query on the live array {_median(live_q) * 1e3:.1f} ms), {size / 1024:.0f} KiB")
    return {"cells": side * side, "ops": n_ops, "save_s": save_s, "save_median_s": _median(save_s),
            "open_s": open_s, "open_median_s": _median(open_s), "open_query_s": open_q,
            "open_query_median_s": _median(open_q), "live_query_median_s": _median(live_q),
            "total_median_s": total,
            "bytes": size, "pass_time": total <= 1.0, "pass_bytes": size <= 1_000_000}


# ------------------------------------------------------------------------------------------ 100 ops deep
def _chain_b(x, depth):
    """A chain whose cell sets grow: cumulative sums along alternating axes make one cell's lineage a whole
    box of the source (info row)."""
    y = x
    for i in range(depth):
        k = i % 5
        if k == 0:
            y = y * 1.001
        elif k == 1:
            y = np.tanh(y)
        elif k == 2:
            y = y.T
        elif k == 3:
            y = np.cumsum(y, axis=1) if i % 10 == 3 else y + 1.0
        else:
            y = y[::-1]
    return y


def deep(tmp, depth, log, chain="a"):
    """One-cell backward through ``depth`` ops from a reopened store; chain ``a`` is issue 3's query chain
    (multiply, broadcast add, reversed slice, tanh over 1000 x 1000), chain ``b`` grows the cell sets."""
    from bench_query import build
    wh.reset()
    g = rng(5)
    if chain == "a":
        x = wh.track(g.random((1000, 1000)), name="x", copy=False)
        r = wh.track(g.random((1, 1000)), name="r", copy=False)
        y = build(x, r, depth)
    else:
        x = wh.track(g.random((1000, 100)), name="x")
        y = _chain_b(x, depth)
    assert len(wh.ops(y)) == depth
    path = os.path.join(tmp, f"deep_{chain}.duckdb")
    wh.save(path, "deep", y=y)
    cells = [tuple(int(g.integers(d)) for d in y.shape) for _ in range(7)]
    first = []
    for c in cells[:5]:
        gc.collect()
        t0 = time.perf_counter()
        with wh.open(path) as s:
            r_ = wh.backward(s["deep"]["y"], c)
        first.append(time.perf_counter() - t0)
        exp = wh.backward(y, c)
        assert sorted(r_) == sorted(exp) and all(np.array_equal(r_[k], exp[k]) for k in exp)
    store = wh.open(path)
    h = store["deep"]["y"]
    wh.backward(h, cells[0])
    lat, live = [], []
    for c in cells * 3:
        t0 = time.perf_counter()
        wh.backward(h, c)
        lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        wh.backward(y, c)
        live.append(time.perf_counter() - t0)
    store.close()
    log(f"  depth {depth} (chain {chain}): backward from the reopened store {_median(lat) * 1e3:.2f} ms (live "
        f"{_median(live) * 1e3:.2f} ms), open + first query {_median(first) * 1e3:.1f} ms")
    return {"depth": depth, "chain": chain, "backward_median_s": _median(lat),
            "live_backward_median_s": _median(live), "open_first_query_median_s": _median(first),
            "pass": _median(lat) <= 5e-3}


# -------------------------------------------------------------------------------------- explicit pairs
def _expand_rect_rows(rows, out_shape, pshape, k, limit):
    """Exact (out flat, parent flat) pairs of the rectangle rows for parent ``k``."""
    outs, ins = [], []
    total = 0
    for row in rows:
        parent, olo, ohi, lax, lmul, loff, hax, hmul, hoff = row
        if parent != k:
            continue
        if tuple(lax) == (-2,):
            f = np.arange(olo[0], ohi[0] + 1, dtype=np.int64)
            outs.append(f)
            ins.append(f)
            total += f.size
            continue
        grids = np.indices([h - lo + 1 for lo, h in zip(olo, ohi)], dtype=np.int64).reshape(len(olo), -1)
        O = grids + np.asarray(olo, np.int64)[:, None] if len(olo) else np.zeros((0, 1), np.int64)
        m = O.shape[1] if len(olo) else 1
        los, his = [], []
        for j in range(len(pshape)):
            lo = loff[j] + (lmul[j] * O[lax[j]] if lax[j] >= 0 else np.zeros(m, np.int64))
            hi = hoff[j] + (hmul[j] * O[hax[j]] if hax[j] >= 0 else np.zeros(m, np.int64))
            lo = np.maximum(lo, 0)
            hi = np.minimum(hi, pshape[j] - 1)
            los.append(lo)
            his.append(hi)
        lens = [np.maximum(h - lo + 1, 0) for lo, h in zip(los, his)]
        count = np.prod(np.stack(lens), axis=0) if lens else np.ones(m, np.int64)
        total += int(count.sum())
        if total > limit:
            raise OverflowError
        oflat = np.ravel_multi_index(O, out_shape) if len(out_shape) else np.zeros(m, np.int64)
        # expand the boxes: cell index repeated, then per axis the offset within the box (C order)
        idx = np.repeat(np.arange(m), count)
        start = np.repeat(np.cumsum(count) - count, count)
        within = np.arange(idx.size) - start
        coords = []
        rem = within
        for j in reversed(range(len(pshape))):
            L = lens[j][idx]
            coords.append(los[j][idx] + rem % np.maximum(L, 1))
            rem = rem // np.maximum(L, 1)
        coords = coords[::-1]
        pflat = np.ravel_multi_index(coords, pshape) if len(pshape) else np.zeros(idx.size, np.int64)
        outs.append(oflat[idx])
        ins.append(pflat)
    if not outs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(outs), np.concatenate(ins)


def map_pairs(m, k, limit=MAX_PAIRS):
    """Exact explicit pairs of one map for parent ``k`` (raises OverflowError past ``limit``)."""
    kind = type(m).__name__
    if kind == "GatherMap":
        s = np.ravel(m.src()).astype(np.int64)
        lo, hi = m.offsets[k], m.offsets[k + 1]
        local = s - 1 - lo
        ok = (local >= 0) & (local < hi - lo)
        return np.flatnonzero(ok), local[ok]
    if kind == "PairsMap":
        o, i = m._pairs(k)
        return np.asarray(o, np.int64), np.asarray(i, np.int64)
    if kind == "UnionMap":
        os_, is_ = [], []
        for sub, ix in m.parts:
            for j, kk in enumerate(ix):
                if kk == k:
                    o, i = map_pairs(sub, j, limit)
                    os_.append(o)
                    is_.append(i)
        if not os_:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pr = np.unique(np.stack([np.concatenate(os_), np.concatenate(is_)], 1), axis=0)
        return pr[:, 0], pr[:, 1]
    rows = m.rectangles() if hasattr(m, "rectangles") else None
    if rows is None:
        raise NotImplementedError(kind)
    return _expand_rect_rows(rows, tuple(m.out_shape), tuple(m.parent_shapes[k]), k, limit)


def uncomposed_run(steps, x0, run_pipeline):
    """``run_pipeline(steps, x)`` on a fresh tracked copy of ``x0`` with composition off, so that every
    operation keeps the map it recorded (the maps of dead intermediates are otherwise folded into their
    readers', and a node's map then no longer relates it to the parents its history lists).  Returns
    (y, source node)."""
    old = wh.compose.set_mode("off")
    try:
        x = wh.track(x0.copy(), name="x")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = run_pipeline(steps, x)
    finally:
        wh.compose.set_mode(old)
    return y, x._node


def explicit_hops(y):
    """Per operation on the way from the source to ``y``: (node, parent position, out flat, in flat).  Every
    node on the way must still hold its own map (see :func:`uncomposed_run`)."""
    from whence.query import _upstream
    hops = []
    for n in _upstream(y._node):
        if n.is_source or n.map is None:
            continue
        for k, p in enumerate(n.parents):
            if k in n.control:
                continue
            o, i = map_pairs(n.map, k)
            hops.append((n, p, o, i))
    return hops


# ------------------------------------------------------------------------------------------------- DSLog
def _pairs_sql(con, hops, src_node, y_node, cell_flat, direction):
    """One SQL statement: the cells reached from one cell through the explicit pairs tables."""
    ids = {}
    for n, p, _, _ in hops:
        ids.setdefault(n.id, len(ids))
    parents = {}
    for t, (n, p, _, _) in enumerate(hops):
        parents.setdefault(n.id, []).append((t, p.id))
    order = sorted({n.id for n, _, _, _ in hops} | {src_node.id})
    if direction == "backward":
        ctes = [f"s{y_node.id} AS (SELECT {cell_flat}::BIGINT AS c)"]
        for nid in sorted(order, reverse=True):
            if nid == y_node.id:
                continue
            parts = [f"SELECT h.i AS c FROM h{t} h JOIN s{n.id} s ON h.o = s.c"
                     for t, (n, p, _, _) in enumerate(hops) if p.id == nid]
            ctes.append(f"s{nid} AS ({' UNION '.join(parts) if parts else 'SELECT NULL::BIGINT AS c WHERE false'})")
        return f"WITH {', '.join(ctes)} SELECT DISTINCT c FROM s{src_node.id}"
    ctes = [f"s{src_node.id} AS (SELECT {cell_flat}::BIGINT AS c)"]
    for nid in order:
        if nid == src_node.id:
            continue
        parts = [f"SELECT h.o AS c FROM h{t} h JOIN s{p} s ON h.i = s.c" for t, p in parents.get(nid, [])]
        ctes.append(f"s{nid} AS ({' UNION '.join(parts) if parts else 'SELECT NULL::BIGINT AS c WHERE false'})")
    return f"WITH {', '.join(ctes)} SELECT DISTINCT c FROM s{y_node.id}"


def dslog(tmp, n_pipes, log, queries=5):
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
    from bench_dslog import describe, load_functions, make_pipelines, run_pipeline
    spec = load_functions()
    pipes = make_pipelines(n_pipes, spec)
    g = rng(11)
    x0 = g.random((1000, 100))
    shared = os.path.join(tmp, "dslog_all.duckdb")
    out = []
    for pi, steps in enumerate(pipes):
        # the explicit baseline: one pairs table per operation, from a run that keeps every operation's map
        wh.reset()
        y_ex, src_node = uncomposed_run(steps, x0, run_pipeline)
        try:
            hops = explicit_hops(y_ex) if wh.is_tracked(y_ex) else None
        except (OverflowError, NotImplementedError) as ex:
            hops = ex
        y_node = getattr(y_ex, "_node", None)
        del y_ex
        wh.reset()
        x = wh.track(x0.copy(), name="x")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = run_pipeline(steps, x)
        e = {"pipeline": pi, "steps": describe(steps), "shape": list(np.shape(y))}
        if not wh.is_tracked(y) or "x" not in wh.sources(y):
            e["skipped"] = "result not tracked"
            out.append(e)
            continue
        e["complete"] = bool(wh.lineage(y).complete)
        run = f"p{pi}"
        path = os.path.join(tmp, f"{run}.duckdb")
        wh.save(path, run, y=y)
        wh.save(shared, run, y=y)
        with wh.open(path) as s:
            e["store_payload_bytes"] = int(sum(s.sql(q)["b"].fillna(0).sum() for q in (
                "SELECT sum(strlen(coalesce(map, '')) + strlen(op) + 16) AS b FROM nodes",
                "SELECT sum(8 * (len(out_lo) * 2 + len(lo_ax) * 6) + 24) AS b FROM rectangles",
                "SELECT sum(octet_length(data) + 40) AS b FROM arrays",
                "SELECT count(*) * 24 AS b FROM edges")))
            e["store_file_bytes"] = os.path.getsize(path)
        # explicit pairs, per operation
        if hops is None or isinstance(hops, Exception):
            ex = hops if hops is not None else ValueError("the uncomposed run's result is not tracked")
            e["pairs"] = f"not computed: {type(ex).__name__} {ex}"
            out.append(e)
            log(f"  pipeline {pi}: explicit pairs not computed ({type(ex).__name__})")
            continue
        n_pairs = int(sum(o.size for _, _, o, _ in hops))
        e["explicit_pairs"] = n_pairs
        pdir = os.path.join(tmp, f"pairs{pi}")
        os.makedirs(pdir, exist_ok=True)
        size = 0
        for t, (n, p, o, i) in enumerate(hops):
            f = os.path.join(pdir, f"h{t}.parquet")
            pq.write_table(pa.table({"out": o.astype(np.int32), "in": i.astype(np.int32)}), f, compression="gzip")
            size += os.path.getsize(f)
        e["pairs_gzip_parquet_bytes"] = size
        e["ratio_payload"] = size / max(e["store_payload_bytes"], 1)
        # query latency, in one run
        con = duckdb.connect()
        for t, (n, p, o, i) in enumerate(hops):
            con.register(f"h{t}_src", pa.table({"o": o, "i": i}))
            con.execute(f"CREATE TABLE h{t} AS SELECT * FROM h{t}_src")
            con.unregister(f"h{t}_src")
        cells_out = [tuple(int(g.integers(d)) for d in y.shape) for _ in range(queries)]
        cells_in = [tuple(int(g.integers(d)) for d in x0.shape) for _ in range(queries)]
        store = wh.open(path)
        h = store[run]["y"]
        wh.backward(h, cells_out[0])  # graph built, index arrays read once
        sqlable = all(k is not None for _, k in wh.store.sql_plan(h))
        t_store_b, t_store_f, t_sql_b, t_pairs_b, t_pairs_f = [], [], [], [], []
        for co, ci in zip(cells_out, cells_in):
            t0 = time.perf_counter()
            rb = wh.backward(h, co)
            t_store_b.append(time.perf_counter() - t0)
            fo = int(np.ravel_multi_index(co, y.shape))
            q = _pairs_sql(con, hops, src_node, y_node, fo, "backward")
            t0 = time.perf_counter()
            pb = con.execute(q).fetchall()
            t_pairs_b.append(time.perf_counter() - t0)
            exp = set(np.ravel_multi_index(rb["x"].T, x0.shape).tolist()) if "x" in rb else set()
            assert {v[0] for v in pb} == exp, f"pipeline {pi}: explicit pairs and whence disagree at {co}"
            if sqlable:
                t0 = time.perf_counter()
                wh.store.backward_sql(h, co)
                t_sql_b.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rf = wh.forward("x", ci, h)
            t_store_f.append(time.perf_counter() - t0)
            fi = int(np.ravel_multi_index(ci, x0.shape))
            q = _pairs_sql(con, hops, src_node, y_node, fi, "forward")
            t0 = time.perf_counter()
            pf = con.execute(q).fetchall()
            t_pairs_f.append(time.perf_counter() - t0)
            expf = set(np.ravel_multi_index(rf.T, y.shape).tolist()) if len(rf) else set()
            assert {v[0] for v in pf} == expf, f"pipeline {pi}: explicit pairs and whence disagree forward at {ci}"
        store.close()
        con.close()
        shutil.rmtree(pdir, ignore_errors=True)
        e.update(store_backward_s=_median(t_store_b), store_forward_s=_median(t_store_f),
                 sql_backward_s=_median(t_sql_b), pairs_backward_s=_median(t_pairs_b),
                 pairs_forward_s=_median(t_pairs_f), sqlable=sqlable)
        e["speedup_backward"] = e["pairs_backward_s"] / e["store_backward_s"]
        e["speedup_forward"] = e["pairs_forward_s"] / e["store_forward_s"]
        if e["sql_backward_s"]:
            e["speedup_sql_backward"] = e["pairs_backward_s"] / e["sql_backward_s"]
        log(f"  pipeline {pi}: {n_pairs:,} pairs, gzip-Parquet {size / 1024:.0f} KiB vs store payload "
            f"{e['store_payload_bytes'] / 1024:.1f} KiB ({e['ratio_payload']:.0f}x); backward store "
            f"{e['store_backward_s'] * 1e3:.2f} ms / SQL "
            f"{(e['sql_backward_s'] or float('nan')) * 1e3:.1f} ms / pairs {e['pairs_backward_s'] * 1e3:.1f} ms; "
            f"forward store {e['store_forward_s'] * 1e3:.2f} ms / pairs {e['pairs_forward_s'] * 1e3:.1f} ms")
        out.append(e)
    done = [e for e in out if "ratio_payload" in e]
    amort = os.path.getsize(shared) / max(len(pipes), 1)
    summary = {
        "pipelines": len(pipes), "compared": len(done),
        "shared_store_bytes": os.path.getsize(shared), "shared_store_bytes_per_pipeline": amort,
        "ratio_payload_median": _median([e["ratio_payload"] for e in done]),
        "ratio_payload_max": max([e["ratio_payload"] for e in done], default=None),
        "ratio_amortised_file_median": _median([e["pairs_gzip_parquet_bytes"] / amort for e in done]),
        "speedup_backward_median": _median([e["speedup_backward"] for e in done]),
        "speedup_forward_median": _median([e["speedup_forward"] for e in done]),
        "speedup_sql_backward_median": _median([e["speedup_sql_backward"] for e in done
                                                if "speedup_sql_backward" in e]),
        "speedup_backward_max": max([e["speedup_backward"] for e in done], default=None),
    }
    return {"per_pipeline": out, "summary": summary}


def run(quick=False, log=print):
    tmp = tempfile.mkdtemp(prefix="whence-bench-store-")
    try:
        res = {"name": "store", "problems": [], "skipped": []}
        res["big_ab"] = big_ab(tmp, 1e6 if quick else 1e8, log)
        res["deep"] = deep(tmp, 100, log, "a")
        res["deep_growing"] = deep(tmp, 100, log, "b")
        res["dslog"] = dslog(tmp, 4 if quick else 20, log)
        s = res["dslog"]["summary"]
        log(f"  DSLog workload: payload ratio median {s['ratio_payload_median']:.0f}x; backward speed-up median "
            f"{s['speedup_backward_median']:.1f}x, forward {s['speedup_forward_median']:.1f}x")
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import json
    import sys
    r = run(quick="--quick" in sys.argv)
    print(json.dumps(r["dslog"]["summary"], indent=1))
