"""Benchmark: the GradientStore and the gradient projections (issue 6, item 3).

1. **Write**: a float16 store of n = 1e6 rows x k = 4096 (8.2 GB; ``--quick``: n = 1e5) written with
   ``GradientStore.write`` (what ``fill`` does, without its progress bar) in chunks of 4096 rows cycled from a
   pool of 4 random float32 blocks (made beforehand: the store is timed, not the random generator).  Reported: the fill into the page cache (``fill_s``) and the
   fill plus ``flush`` to disk (``fill_flush_s``), as GB/s of file written and rows/s; median of the rounds,
   each on a freshly created file.
2. **Score**: ``topk(Q, k=10)`` for m = 1000 random queries over the reopened (read-only) store: rows scored per
   second and GFLOP/s (2 m k flops per row), against, alternating with it in the same run, a plain in-memory
   float32 ``np.dot`` of (m, k) x (k, block) with the store's block size (this machine's matmul speed):
   ``fraction_of_matmul`` = scoring GFLOP/s / matmul GFLOP/s.
3. **Gram**: ``gram()`` (float64 per block, and ``precision="float32"``) timed on the first rows of the store
   (``n_gram``) and extrapolated linearly to the whole store (``extrapolated: true``): n k^2 flops for 1e6 rows
   is minutes on two cores.
4. **Projection** from d = 1e7 parameters to k = 4096: ``nbytes`` of SJLT (s = 4) and of the blocked Rademacher
   projection against the 164 GB a dense float32 k x d matrix would take, and the time to project 8 gradients
   (float32).  The dense Rademacher projection is O(n d k) work (4e10 generated signs at d = 1e7): in
   ``--quick`` it is timed at d = 1e6 and its d = 1e7 time is extrapolated (``extrapolated: true``).

The store file lives in a temporary directory removed at the end.  When the disk has less than 20 GB free,
n is reduced so that the file takes at most a third of the free space, and ``config.n_reduced_reason`` says so.

Published figure, for comparison (not measured here): Traceprop's GradientStore plan, k = 4096 for 1M samples
= 15.3 GB in float32 (15.3 GiB = 1e6 x 4096 x 4 bytes); whence's float16 file is half of it.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import tempfile
import time

import numpy as np

from whence.attribution.gradient_store import GradientStore
from whence.attribution.projection import RademacherProjection, SJLTProjection

K = 4096
M_QUERIES = 1000
TOP = 10
CHUNK = 4096
POOL = 4
MIN_FREE = 20 * 10**9
TRACEPROP_PUBLISHED = {"store_gib_float32_k4096_n1e6": 15.3, "k": 4096, "n": 1_000_000, "dtype": "float32",
                       "source": "Traceprop preprint (2026): GradientStore with a JL projection, k=4096 for 1M "
                                 "samples = 15.3 GB float32 (numpy.memmap proposed)",
                       "note": "published figure, not measured here"}


def _med(xs):
    return statistics.median(xs) if xs else None


def _t(fn):
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# --------------------------------------------------------------------------------------------- write
def bench_write(tmp, n, reps, pool, log):
    path = os.path.join(tmp, "grads.f16")
    chunks = -(-n // CHUNK)

    def blocks():
        for i in range(chunks):
            rows = min(CHUNK, n - i * CHUNK)
            yield pool[i % POOL][:rows]

    # warm-up: pays one-time imports (torch's cast, when installed) outside the timing
    w = GradientStore(os.path.join(tmp, "warm.f16"), 2 * CHUNK, K)
    w.fill([pool[0], pool[1]], progress=False)
    w.close()
    fill_s, flush_s = [], []
    for _ in range(reps):
        if os.path.exists(path):
            os.remove(path)
        store = GradientStore(path, n, K, dtype="float16")
        gc.collect()
        t0 = time.perf_counter()
        for i, b in enumerate(blocks()):
            store.write(i * CHUNK, b)
        t1 = time.perf_counter()
        store.flush()
        t2 = time.perf_counter()
        store.close()
        fill_s.append(t1 - t0)
        flush_s.append(t2 - t0)
    nbytes = n * K * 2
    f, ff = _med(fill_s), _med(flush_s)
    res = {"path_bytes": os.path.getsize(path), "rounds": reps, "fill_s": fill_s, "fill_flush_s": flush_s,
           "fill_median_s": f, "fill_flush_median_s": ff,
           "gb_per_s_page_cache": nbytes / f / 1e9, "gb_per_s_on_disk": nbytes / ff / 1e9,
           "rows_per_s_page_cache": n / f, "rows_per_s_on_disk": n / ff,
           "input_gb_per_s_float32": n * K * 4 / ff / 1e9}
    log(f"  write: {nbytes / 1e9:.2f} GB float16 in {ff:.2f} s with flush ({res['gb_per_s_on_disk']:.2f} GB/s, "
        f"{res['rows_per_s_on_disk']:,.0f} rows/s); {f:.2f} s into the page cache "
        f"({res['gb_per_s_page_cache']:.2f} GB/s)")
    # the `fill` API itself (with its progress bar machinery), once, for the record
    store = GradientStore(path, n, K, dtype="float16")
    t, _ = _t(lambda: store.fill(blocks(), progress=False))
    store.close()
    res["fill_api_s"] = t
    return path, res


# --------------------------------------------------------------------------------------------- score
def bench_score(path, n, reps, log):
    store = GradientStore.open(path)
    rng = np.random.default_rng(1)
    Q = rng.standard_normal((M_QUERIES, K), dtype=np.float32)
    block = store._block_rows(None, M_QUERIES)
    ref_B = rng.standard_normal((block, K), dtype=np.float32)
    out = np.empty((M_QUERIES, block), np.float32)
    np.matmul(Q, ref_B.T, out=out)               # warm-up
    mm_reps = max(3, min(20, int(2.0 * 60e9 / (2 * M_QUERIES * K * block))))  # ~2 s of matmul per round
    top_s, mm_s = [], []
    first = None
    for r in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(mm_reps):
            np.matmul(Q, ref_B.T, out=out)
        mm_s.append((time.perf_counter() - t0) / mm_reps)
        t, res_ = _t(lambda: store.topk(Q, k=TOP))
        top_s.append(t)
        if first is None:
            first = res_
    store.close()
    flops_row = 2 * M_QUERIES * K
    t, m = _med(top_s), _med(mm_s)
    gf_score = flops_row * n / t / 1e9
    gf_mm = flops_row * block / m / 1e9
    res = {"m": M_QUERIES, "top": TOP, "block_rows": block, "rounds": reps, "topk_s": top_s, "topk_median_s": t,
           "rows_per_s": n / t, "scores_per_s": n * M_QUERIES / t, "gflops": gf_score,
           "matmul_block_s": mm_s, "matmul_gflops": gf_mm, "fraction_of_matmul": gf_score / gf_mm,
           "fraction_of_matmul_paired": statistics.median(
               (flops_row * n / a) / (flops_row * block / b) for a, b in zip(top_s, mm_s)),
           "sane": bool(first.indices.shape == (M_QUERIES, TOP))}
    log(f"  score: top-{TOP} for {M_QUERIES} queries over {n:,} rows in {t:.2f} s ({res['rows_per_s']:,.0f} "
        f"rows/s, {gf_score:.1f} GFLOP/s) = {res['fraction_of_matmul']:.2f} of in-memory float32 matmul "
        f"({gf_mm:.1f} GFLOP/s)")
    return res


# ---------------------------------------------------------------------------------------------- gram
def bench_gram(path, n, n_gram, log):
    full = GradientStore.open(path)
    sub = GradientStore(None, n_gram, K, dtype="float16")
    sub.write(0, full.array[:n_gram])
    full.close()
    GradientStore(None, 256, K, dtype="float16").gram()      # warm-up
    t64 = [_t(lambda: sub.gram())[0] for _ in range(3)]
    t32 = [_t(lambda: sub.gram(precision="float32"))[0] for _ in range(3)]
    a, b = _med(t64), _med(t32)
    res = {"n_gram": n_gram, "float64_s": t64, "float32_s": t32, "float64_median_s": a, "float32_median_s": b,
           "rows_per_s_float64": n_gram / a, "rows_per_s_float32": n_gram / b,
           "full_n": n, "full_float64_s": a * n / n_gram, "full_float32_s": b * n / n_gram, "extrapolated": True,
           "gflops_float64": n_gram * K * K / a / 1e9, "gflops_float32": n_gram * K * K / b / 1e9}
    log(f"  gram ({K}x{K}): {n_gram:,} rows in {a:.2f} s float64 ({b:.2f} s float32); extrapolated to "
        f"{n:,} rows: {res['full_float64_s']:.0f} s ({res['full_float32_s']:.0f} s)")
    return res


# ---------------------------------------------------------------------------------------- projection
def bench_projection(quick, log):
    d = 10_000_000
    n_rows = 8
    dense = 4 * K * d
    rng = np.random.default_rng(2)
    G = rng.standard_normal((n_rows, d), dtype=np.float32)
    res = {"d": d, "k": K, "n_rows": n_rows, "dense_bytes": dense}
    t_build, P = _t(lambda: SJLTProjection(d, K, s=4, seed=0))
    P.project(G[:1])                               # warm-up (scipy matrix)
    ts = [_t(lambda: P.project(G))[0] for _ in range(3 if quick else 5)]
    t = _med(ts)
    res["sjlt"] = {"s": 4, "nbytes": P.nbytes, "dense_over_nbytes": dense / P.nbytes, "build_s": t_build,
                   "project_s": ts, "project_median_s": t, "rows_per_s": n_rows / t,
                   "gb_per_s_input": n_rows * d * 4 / t / 1e9}
    log(f"  SJLT d=1e7 -> {K}: holds {P.nbytes / 1e6:.0f} MB ({dense / P.nbytes:,.0f}x less than a dense "
        f"{dense / 1e9:.0f} GB matrix); built in {t_build:.2f} s; {n_rows} gradients in {t:.3f} s "
        f"({n_rows / t:.1f} rows/s)")
    P = None  # free the SJLT before the Rademacher runs
    gc.collect()
    d_r = 1_000_000 if quick else d
    R = RademacherProjection(d, K, seed=0)
    nb = R.nbytes
    Rm = RademacherProjection(d_r, K, seed=0)
    Gr = G[:, :d_r]
    ts = [_t(lambda: Rm.project(Gr))[0] for _ in range(3 if quick else 1)]   # d=1e7: minutes per call
    t = _med(ts)
    t_full = t * d / d_r
    res["rademacher"] = {"nbytes": nb, "block": R.block, "dense_over_nbytes": dense / nb, "d_measured": d_r,
                         "project_s": ts, "project_median_s": t, "project_s_at_d": t_full,
                         "extrapolated": d_r != d, "rows_per_s_at_d": n_rows / t_full,
                         "ns_per_sign": t / (d_r * K) * 1e9}
    log(f"  Rademacher d=1e7 -> {K}: holds {nb / 1e6:.1f} MB ({dense / nb:,.0f}x less than dense); "
        f"{n_rows} gradients at d={d_r:.0e} in {t:.2f} s"
        + (f" (d=1e7 extrapolated: {t_full:.0f} s)" if d_r != d else ""))
    return res


# ----------------------------------------------------------------------------------------------- run
def _rows(res):
    c, w, s, g, p = res["config"], res["write"], res["score"], res["gram"], res["projection"]
    gb = c["file_bytes"] / 1e9
    pub_b = TRACEPROP_PUBLISHED["store_gib_float32_k4096_n1e6"] * 2**30
    n_label = f"n={c['n']:,}"
    rows = [
        (f"GradientStore file, {n_label}, k={K}, float16", "<= 1/2 of Traceprop's 15.3 GB (float32)",
         f"{gb:.2f} GB ({c['file_bytes'] / 2**30:.2f} GiB)",
         "PASS" if c["bytes_at_1e6"] <= 0.5 * pub_b + 1 else "MISS",
         (f"at n=1e6: {c['bytes_at_1e6'] / 2**30:.2f} GiB = {c['bytes_at_1e6'] / pub_b:.2f} of Traceprop's "
          "published 15.3 GiB (published figure, not measured)")),
        (f"GradientStore write throughput ({n_label})", "(report)",
         f"{w['gb_per_s_on_disk']:.2f} GB/s, {w['rows_per_s_on_disk']:,.0f} rows/s", "INFO",
         ("chunked fill of 4096-row float32 blocks, float16 conversion and NaN check, flush to disk included; "
          f"into the page cache {w['gb_per_s_page_cache']:.2f} GB/s; median of {w['rounds']}")),
        (f"GradientStore top-{TOP} scoring, {M_QUERIES} queries ({n_label})", "(report)",
         f"{s['rows_per_s']:,.0f} rows/s ({s['gflops']:.1f} GFLOP/s)", "INFO",
         (f"streaming, never holds the (m, n) matrix; {s['topk_median_s']:.1f} s for the whole store; median of "
          f"{s['rounds']}")),
        ("GradientStore scoring speed / this machine's float32 matmul", "(report)",
         f"{s['fraction_of_matmul']:.2f}", "INFO",
         (f"in-memory np.dot (m, k) x (k, {s['block_rows']}) at {s['matmul_gflops']:.1f} GFLOP/s, alternating; "
          f"paired {s['fraction_of_matmul_paired']:.2f}")),
        (f"GradientStore gram ({K}x{K}, float64)", "(report)",
         f"{g['rows_per_s_float64']:,.0f} rows/s", "INFO",
         (f"{g['n_gram']:,} rows timed; whole store extrapolated {g['full_float64_s']:.0f} s (float32 blocks "
          f"{g['full_float32_s']:.0f} s)")),
        (f"projection memory, d=1e7 -> k={K}: SJLT (s=4) / Rademacher", "O(d), never k x d",
         f"{p['sjlt']['nbytes'] / 1e6:.0f} MB / {p['rademacher']['nbytes'] / 1e6:.1f} MB", "INFO",
         (f"a dense float32 k x d matrix: {p['dense_bytes'] / 1e9:.0f} GB ({p['sjlt']['dense_over_nbytes']:,.0f}x "
          f"/ {p['rademacher']['dense_over_nbytes']:,.0f}x more)")),
        (f"projection time, {p['n_rows']} gradients, d=1e7 -> k={K}: SJLT / Rademacher", "(report)",
         f"{p['sjlt']['project_median_s']:.2f} s / {p['rademacher']['project_s_at_d']:.0f} s", "INFO",
         ("Rademacher timed at d=1e6 and extrapolated; " if p["rademacher"]["extrapolated"] else "")
         + f"Rademacher is O(n d k): {p['rademacher']['ns_per_sign']:.2f} ns per generated sign"),
    ]
    return [list(r) for r in rows]


def run(quick=False, log=print):
    n_req = 100_000 if quick else 1_000_000
    tmp = tempfile.mkdtemp(prefix="whence-bench-gstore-")
    try:
        res = {"name": "gradient_store", "problems": [], "skipped": [], "published": TRACEPROP_PUBLISHED,
               "loadavg_start": _load()}
        free = shutil.disk_usage(tmp).free
        n, why = n_req, None
        if free < MIN_FREE:
            n = int(min(n_req, free // 3 // (K * 2)) // CHUNK * CHUNK)
            why = (f"only {free / 1e9:.1f} GB free in {tmp} (< {MIN_FREE / 1e9:.0f} GB): n reduced from "
                   f"{n_req:,} to {n:,}")
            res["skipped"].append(why)
            log("  " + why)
            if n < CHUNK:
                res["problems"].append("not enough disk for the benchmark")
                return res
        res["config"] = {"n": n, "n_requested": n_req, "k": K, "dtype": "float16", "m": M_QUERIES, "top": TOP,
                         "chunk_rows": CHUNK, "file_bytes": n * K * 2, "bytes_at_1e6": 1_000_000 * K * 2,
                         "free_disk_gb": round(free / 1e9, 1), "n_reduced": n != n_req, "n_reduced_reason": why,
                         "tmpdir": tmp}
        g = np.random.default_rng(0)
        pool = [g.standard_normal((CHUNK, K), dtype=np.float32) for _ in range(POOL)]
        path, res["write"] = bench_write(tmp, n, 5 if quick else 3, pool, log)
        del pool
        gc.collect()
        res["score"] = bench_score(path, n, 5 if quick else 3, log)
        res["gram"] = bench_gram(path, n, min(n, 4096 if quick else 16_384), log)
        os.remove(path)
        res["projection"] = bench_projection(quick, log)
        res["loadavg_end"] = _load()
        res["table_rows"] = _rows(res)
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import json
    import sys
    r = run(quick="--quick" in sys.argv)
    if "--out" in sys.argv:
        with open(sys.argv[sys.argv.index("--out") + 1], "w") as f:
            json.dump(r, f, indent=1, default=float)
    for row in r.get("table_rows", []):
        print(" | ".join(map(str, row)))
