"""Attribution and tabular lineage on dask (issue 9): distributed gradient scoring, dask-frame overhead.

1. **Distributed top-k** over a :class:`whence.dask.attribution.DaskGradientStore` of n = 1e7 rows x k = 1024
   float16 features (``--quick``: n = 1e6), m = 64 query gradients, top 10: per-partition top-k on the workers
   (blocked float32 matrix products of 32768 rows), merged in a tree.  The features are generated partition by
   partition on the workers (a per-process random base block of 16384 rows, rotated by an amount drawn per
   partition; nothing of size n x k is written or sent), so each task does what scoring a shard read from the
   page cache does: gather 128 Ki rows of float16, convert to float32, multiply, keep the best.  Run on a
   ``LocalCluster`` of 1 and then 2 worker processes (one thread each, BLAS single-threaded), the first run
   of each cluster a warm-up; reported: median seconds, rows/s, rows/s per worker, scaling efficiency, the
   CPU seconds the workers used (rows per worker CPU second, and the fraction of the wall time the workers
   were busy: below 1 when other work shares the cores), and the peak resident memory of each worker and of
   the client.
2. **Dask-frame lineage overhead**: a few million CSV rows in 4 files (``--quick``: 400k), the pipeline
   ``read_csv -> filter -> assign -> merge (1000-row table) -> groupby.agg -> compute`` with plain
   ``dask.dataframe`` and with ``whence.read_csv`` on the glob, alternating plain / tracked, median of 5
   runs each, ratio of the medians (threaded scheduler); then the time of ``trace_to_file`` for one output
   row (which finds the group's rows: one more pass over the pre-group frame) and of a filter row query.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import alternate  # noqa: E402

K, M, TOP = 1024, 64, 10
CHUNK_ROWS = 1 << 17


def _worker_peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _worker_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_topk(n, workers, reps, log):
    import distributed
    from whence.dask.attribution import DaskGradientStore
    for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = "1"
    Q = np.random.default_rng(1).standard_normal((M, K)).astype(np.float32)
    out = {"workers": workers}
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  memory_limit="2.5GiB", dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        warm = DaskGradientStore.generated(CHUNK_ROWS * workers, K, CHUNK_ROWS, seed=0)
        warm.topk(Q, k=TOP, client=client)  # base blocks made, BLAS warmed on every worker
        store = DaskGradientStore.generated(n, K, CHUNK_ROWS, seed=0)
        times, cpus = [], []
        for r in range(reps):
            c0 = client.run(_worker_cpu)
            t0 = time.perf_counter()
            top = store.topk(Q, k=TOP, client=client)
            times.append(time.perf_counter() - t0)
            c1 = client.run(_worker_cpu)
            cpus.append(sum(c1[w] - c0[w] for w in c1))
            log(f"  [dask_gradients] top-k n={n:.0e} on {workers} worker(s): {times[-1]:.1f} s, "
                f"{cpus[-1]:.1f} CPU s on the workers")
        peaks = client.run(_worker_peak)
    med = statistics.median(times)
    cpu = statistics.median(cpus)
    out.update({"seconds": times, "median_s": med, "rows_per_s": n / med, "rows_per_s_per_worker": n / med / workers,
                "worker_cpu_s": cpus, "rows_per_cpu_s": n / cpu, "cpu_busy_fraction": cpu / (med * workers),
                "gflops": 2.0 * M * K * n / med / 1e9, "worker_peak_rss_bytes": sorted(peaks.values()),
                "check_first_index": int(top.indices[0, 0])})
    return out


def _write_csv(d, rows, files, seed=0):
    import pandas as pd
    rng = np.random.default_rng(seed)
    per = rows // files
    paths = []
    for f in range(files):
        df = pd.DataFrame({"k": rng.integers(0, 1000, per), "v": rng.standard_normal(per).round(4),
                           "w": rng.integers(0, 100, per), "s": rng.choice(["a", "b", "c"], per)})
        p = os.path.join(d, f"part{f}.csv")
        df.to_csv(p, index=False)
        paths.append(p)
    dim = os.path.join(d, "dim.csv")
    pd.DataFrame({"k": np.arange(1000), "z": np.arange(1000) * 0.5}).to_csv(dim, index=False)
    return os.path.join(d, "part*.csv"), dim


def _pipeline(a, b):
    x = a[a["v"] > 0]
    x = x.assign(u=x["v"] * 2 + x["w"])
    x = x.merge(b, on="k", how="inner")
    return x.groupby("k").agg(total=("u", "sum"), zmax=("z", "max"), n=("w", "count"))


def bench_frame(rows, log):
    import dask
    import dask.dataframe as dd
    import whence as wh
    import whence.dask as whd
    d = tempfile.mkdtemp(prefix="whence-bench-ddf-")
    try:
        t0 = time.perf_counter()
        glob, dim = _write_csv(d, rows, 4)
        log(f"  [dask_gradients] wrote {rows:,} CSV rows in 4 files ({time.perf_counter() - t0:.1f} s)")
        kw = {"dtype": {"k": "int64", "v": "float64", "w": "int64", "s": "str"}}

        def plain():
            a = dd.read_csv(glob, blocksize=None, **kw)
            b = dd.read_csv(dim, blocksize=None)
            return _pipeline(a, b).compute()

        def tracked():
            a = wh.read_csv(glob, name="facts", **kw)
            b = whd.read_csv([dim], name="dim")
            return _pipeline(a, b).compute()

        with dask.config.set(scheduler="threads", num_workers=2):
            r = alternate({"plain": plain, "tracked": tracked}, reps=5, number=1, min_batch=0.0)
            a = wh.read_csv(glob, name="facts", **kw)
            b = whd.read_csv([dim], name="dim")
            g = _pipeline(a, b)
            res = g.compute()
            t0 = time.perf_counter()
            tr = wh.trace_to_file(g, row=0)
            t_trace = time.perf_counter() - t0
            f = a[a["v"] > 3]
            t0 = time.perf_counter()
            f.backward(0)
            t_filter = time.perf_counter() - t0
        return {"rows": rows, "files": 4, "groups": len(res), "plain_s": r["median_s"]["plain"],
                "tracked_s": r["median_s"]["tracked"], "ratio": r["ratio"]["tracked"], "reps": r["reps"],
                "samples_s": r["samples_s"], "trace_one_group_row_s": t_trace, "trace_rows": len(tr),
                "filter_row_backward_s": t_filter, "scheduler": "threads, 2 workers"}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(quick=False, log=print):
    n = 1_000_000 if quick else 10_000_000
    reps = 3 if quick else 2
    res = {"name": "dask_gradients", "problems": [], "skipped": [],
           "config": {"n": n, "k": K, "m": M, "top": TOP, "dtype": "float16", "rows_per_partition": CHUNK_ROWS,
                      "partitions": -(-n // CHUNK_ROWS), "bytes_if_stored": n * K * 2}}
    res["topk"] = [bench_topk(n, w, reps, log) for w in (1, 2)]
    one, two = res["topk"]
    res["scaling_efficiency_2_workers"] = two["rows_per_s"] / (2 * one["rows_per_s"])
    res["client_peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak = max(sum(t["worker_peak_rss_bytes"]) for t in res["topk"]) + res["client_peak_rss_bytes"]
    res["peak_total_rss_bytes"] = peak
    if peak > 6e9:
        res["problems"].append(f"dask_gradients: peak memory {peak / 1e9:.1f} GB > 6 GB")
    res["frame"] = bench_frame(400_000 if quick else 3_000_000, log)
    return res


def rows(d):
    """Rows for the targets table (benchmarks/report.py)."""
    if "topk" not in d:
        return [("dask gradient store (issue 9)", "see issue 9", "—", "NOT RUN", d.get("error", "not run"))]
    c = d["config"]
    one, two = d["topk"]
    f = d.get("frame", {})
    out = [
        (f"dask GradientStore top-{c['top']}: n={c['n']:.0e}, k={c['k']}, m={c['m']} float16, 1 worker",
         "(report)", f"{one['rows_per_s_per_worker']:.3g} rows/s/worker", "INFO",
         f"{one['median_s']:.1f} s, {one['gflops']:.1f} GFLOP/s; {one.get('rows_per_cpu_s', 0):.3g} rows per "
         f"worker CPU second"),
        ("same, 2 workers", "(report)", f"{two['rows_per_s_per_worker']:.3g} rows/s/worker", "INFO",
         f"{two['median_s']:.1f} s; 2-worker efficiency {d['scaling_efficiency_2_workers']:.2f} "
         f"(2 cores shared with other work; workers busy {two.get('cpu_busy_fraction', 0):.0%} of the time); "
         f"{two.get('rows_per_cpu_s', 0):.3g} rows per worker CPU second; "
         f"peak memory {d['peak_total_rss_bytes'] / 1e9:.2f} GB"),
    ]
    if f:
        out.append((f"dask frame lineage: tracked / plain ({f['rows']:.1e} CSV rows, filter+merge+groupby)",
                    "(report)", f"{f['ratio']:.2f}x", "INFO",
                    f"plain {f['plain_s']:.2f} s, tracked {f['tracked_s']:.2f} s, {f['reps']} alternating runs; "
                    f"trace of a group row {f['trace_one_group_row_s']:.2f} s"))
    return out


if __name__ == "__main__":
    import json
    quick = "--quick" in sys.argv
    r = run(quick=quick)
    print(json.dumps(r, indent=1, default=float))
