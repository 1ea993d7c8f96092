"""Benchmark 2: DSLog's workload, random 10-step pipelines from ``../shared/bench/dslog_functions.json``.

For every pipeline:

* **capture overhead**: plain numpy vs whence (``whence.track(copy=False)`` + the same 10 calls), alternating,
  median of 5, over 1000 x 100 uniform random floats, and (full mode) the same pipelines over 1e7 cells
  (100000 x 100);
* **storage**: ``whence.lineage(y).nbytes`` (the compressed relation held for y's whole upstream) against the
  same relation written as explicit (output cell, input cell) pairs in Parquet (pyarrow default, snappy) and
  in gzip-Parquet.

What whence counts: the relation of ``y`` as ``whence.lineage`` holds it, the maps of consecutive operations
composed where that is exact (ProvRC's chain composition: a pipeline of moves and elementwise steps is one
set of rectangle rows), per map a descriptor (id, op code, shape, parents) and its rectangle rows, or the
index arrays of the operations whose relation is not a few rectangles (a sort of random values); integers
count 4 bytes (int32, the width of the pairs' columns) when they fit.  ``maps`` lists per pipeline what is
stored.  The compression target is the median over the pipelines without sort/partition/unique
(``data_dependent`` false); every pipeline is reported.

How the explicit-pairs size is obtained (it is *estimated*, and the JSON says so per pipeline): writing every
pair of a 1000 x 100 pipeline would take one ``whence.backward`` per output cell (1e5 queries) and, after a
reduction or a cumulative op, up to billions of rows.  Instead

1. the **number of pairs** is estimated from a uniform random sample of output cells: total = (number of
   output cells) x (mean number of source cells per sampled output cell), each from a real ``whence.backward``
   query (exact when the sample covers every output cell);
2. the **bytes per pair** come from a real Parquet file: the pairs of a contiguous block of output cells
   (row-major, random start) are written with pyarrow (int32 columns ``out_0.., in_0..``, rows sorted by
   output then input cell), once with the default codec and once with gzip; the size of an empty file with
   the same schema (footer, metadata) is subtracted before dividing, and added back once to the estimate;
3. estimated file size = empty-file size + bytes per pair x estimated number of pairs.

A contiguous block is used for the bytes per pair because it has the same run structure as the full file
(Parquet's dictionary/RLE encoding benefits from it), so the estimate does not favour whence.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import whence as wh

from common import alternate, rng, shape_for

FUNCTIONS_JSON = Path(os.environ.get("WHENCE_DSLOG_FUNCTIONS", "/work/shared/bench/dslog_functions.json"))
if not FUNCTIONS_JSON.exists():
    FUNCTIONS_JSON = Path(__file__).resolve().parents[2] / "shared" / "bench" / "dslog_functions.json"

RENAMED = {"round_": "round", "trapz": "trapezoid"}
NEEDS_2D = {"fliplr", "rot90"}
# steps whose lineage depends on the values (their index arrays are stored): the compression target is the
# median over the pipelines without them
DATA_DEPENDENT = ("sort", "partition", "unique")
MAX_GROWTH = 4  # a step may not make the array larger than 4x the input (tile/repeat twice would be 16x)


def load_functions():
    with open(FUNCTIONS_JSON) as f:
        spec = json.load(f)
    return spec


def _choose_params(fn, shape, g):
    """Concrete keyword arguments (with 'custom' kept as fractions, resolved per shape), or None if the
    function cannot apply to an array of ``shape``."""
    name = fn["name"]
    ndim = len(shape)
    if ndim == 0:
        return None
    if name in NEEDS_2D and ndim < 2:
        return None
    params = {}
    for key, values in fn["params"].items():
        vals = list(values)
        if key in ("axis", "source", "destination", "axis1", "axis2"):
            vals = [v for v in vals if isinstance(v, int) and v < ndim]
            if not vals:
                return None
        v = vals[g.integers(len(vals))]
        if v == "custom":
            if key == "kth":
                v = {"custom": "kth", "frac": float(g.random())}
            elif key == "obj" and name == "delete":
                v = {"custom": "delete_obj", "fracs": sorted(float(u) for u in g.random(g.integers(1, 4)))}
            elif key == "obj" and name == "insert":
                v = {"custom": "insert_obj", "frac": float(g.random())}
            elif key == "values":
                v = {"custom": "value", "value": float(g.random())}
        params[key] = v
    if name in ("repeat", "tile") and "reps" in params and isinstance(params["reps"], list):
        params["reps"] = list(params["reps"])
    return params


def _resolve(name, params, shape):
    """Turn the 'custom' fractions into values valid for an array of ``shape``."""
    kw = {}
    axis = params.get("axis", None)
    ax_len = shape[axis] if (axis is not None and len(shape)) else (int(np.prod(shape)) if shape else 1)
    for key, v in params.items():
        if isinstance(v, dict) and "custom" in v:
            kind = v["custom"]
            if kind == "kth":
                v = min(ax_len - 1, int(v["frac"] * ax_len))
            elif kind == "delete_obj":
                v = sorted({min(ax_len - 1, int(u * ax_len)) for u in v["fracs"]})
            elif kind == "insert_obj":
                v = int(v["frac"] * ax_len)
            elif kind == "value":
                v = v["value"]
        elif isinstance(v, list):
            v = tuple(v)
        kw[key] = v
    return kw


def apply_step(step, x):
    name, params = step["name"], step["params"]
    kw = _resolve(name, params, np.shape(x))
    if name == "msort":
        return np.sort(x, axis=0)
    fn = getattr(np, RENAMED.get(name, name))
    return fn(x, **kw)


def run_pipeline(steps, x):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for s in steps:
            x = apply_step(s, x)
    return x


def make_pipelines(n, spec, seed=7, steps=10, shape=(1000, 100)):
    """``n`` random pipelines, each validated step by step on a plain array of ``shape``."""
    g = rng(seed)
    funcs = spec["functions"]
    x0 = g.random(shape)
    pipes = []
    while len(pipes) < n:
        x = x0
        chosen = []
        tries = 0
        while len(chosen) < steps and tries < 500:
            tries += 1
            fn = funcs[g.integers(len(funcs))]
            params = _choose_params(fn, np.shape(x), g)
            if params is None:
                continue
            step = {"name": fn["name"], "params": params}
            try:
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    y = apply_step(step, x)
            except Exception:  # noqa: BLE001  (e.g. an axis out of range after a reduction)
                continue
            y = np.asarray(y)
            if y.ndim == 0 or y.size == 0 or y.size > MAX_GROWTH * x0.size or y.dtype.kind not in "biuf":
                continue
            chosen.append(step)
            x = y
        if len(chosen) == steps:
            pipes.append(chosen)
    return pipes


def describe(steps, shape=(1000, 100)):
    out = []
    x = np.zeros(shape)
    for s in steps:
        kw = _resolve(s["name"], s["params"], x.shape)
        out.append(s["name"] + "(" + ", ".join(f"{k}={v!r}" for k, v in kw.items()) + ")")
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = np.asarray(apply_step(s, x))
    return out


# ----------------------------------------------------------------------------------------------- storage

def _write_parquet(cols, path, compression):
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table(cols)
    pq.write_table(table, path, compression=compression)
    return os.path.getsize(path)


def _pairs_table(out_cells, src_cells, out_ndim, src_ndim):
    cols = {}
    for i in range(out_ndim):
        cols[f"out_{i}"] = out_cells[:, i].astype(np.int32)
    for i in range(src_ndim):
        cols[f"in_{i}"] = src_cells[:, i].astype(np.int32)
    return cols


def storage(y, src_name, src_ndim, n_count, block, g, tmpdir):
    """Estimated sizes of the explicit pairs relation of ``y`` against source ``src_name``."""
    shape = y.shape
    n_out = int(np.prod(shape))
    rel = wh.lineage(y)
    flat_all = n_count >= n_out
    # 1. number of pairs
    if flat_all:
        sample = np.arange(n_out)
    else:
        sample = g.choice(n_out, size=n_count, replace=False)
    counts = []
    query_errors = []
    for f in sample:
        cell = np.unravel_index(int(f), shape)
        try:
            res = wh.backward(y, tuple(int(c) for c in cell))
        except Exception as exc:  # noqa: BLE001
            query_errors.append(f"backward(y, {cell}) raised {type(exc).__name__}: {exc}")
            break
        counts.append(len(res.get(src_name, ())))
    counts = np.asarray(counts, dtype=np.float64)
    mean_k = float(counts.mean()) if len(counts) else float("nan")
    est_pairs = mean_k * n_out
    # 2. bytes per pair from a contiguous block: grow it until it holds enough pairs (or cells, or time)
    n_block, min_pairs, max_seconds = block
    nb_max = min(n_block, n_out)
    start = int(g.integers(0, n_out - min(nb_max, n_out) + 1))
    outs, ins = [], []
    block_pairs = 0
    nb = 0
    t0 = time.perf_counter()
    for f in range(start, min(n_out, start + nb_max)):
        cell = np.unravel_index(f, shape)
        res = wh.backward(y, tuple(int(c) for c in cell))
        src = res.get(src_name, np.zeros((0, src_ndim), np.int64))
        nb += 1
        if len(src):
            ins.append(src)
            outs.append(np.broadcast_to(np.asarray(cell, np.int64), (len(src), len(shape))))
            block_pairs += len(src)
        if block_pairs >= min_pairs or time.perf_counter() - t0 > max_seconds:
            break
    if outs:
        out_cells, src_cells = np.vstack(outs), np.vstack(ins)
    else:
        out_cells = np.zeros((0, len(shape)), np.int64)
        src_cells = np.zeros((0, src_ndim), np.int64)
    block_pairs = len(out_cells)
    cols = _pairs_table(out_cells, src_cells, len(shape), src_ndim)
    empty = _pairs_table(out_cells[:0], src_cells[:0], len(shape), src_ndim)
    res = {}
    for codec in ("snappy", "gzip"):
        size = _write_parquet(cols, os.path.join(tmpdir, f"block_{codec}.parquet"), codec)
        esize = _write_parquet(empty, os.path.join(tmpdir, f"empty_{codec}.parquet"), codec)
        bpp = (size - esize) / block_pairs if block_pairs else float("nan")
        est = esize + bpp * est_pairs
        res[codec] = {"block_file_bytes": size, "empty_file_bytes": esize, "bytes_per_pair": bpp,
                      "est_file_bytes": est, "ratio_vs_whence": est / rel.nbytes if rel.nbytes else None}
    maps = []
    for nd in rel.nodes:
        m, ps, _ = nd.lineage
        if m is None or not ps:
            continue
        rows = rel._op_rects().get(nd.id)
        maps.append({"op": nd.op, "map": type(m).__name__,
                     "stored": f"{len(rows)} rectangle rows" if rows is not None else
                     f"{sum(a.nbytes for a in m.held_arrays())} bytes of index arrays"})
    return {
        "whence_nbytes": int(rel.nbytes),
        "maps": maps,
        "whence_complete": bool(rel.complete),
        "output_shape": list(shape),
        "output_cells": n_out,
        "pairs_method": "exact count over every output cell" if flat_all else
                        f"estimated: {len(counts)} uniformly sampled output cells x {n_out} output cells",
        "sampled_cells": int(len(counts)),
        "mean_pairs_per_output_cell": mean_k,
        "min_max_pairs_per_sampled_cell": [float(counts.min()), float(counts.max())] if len(counts) else None,
        "est_pairs": est_pairs,
        "block": {"start_flat": start, "cells": nb, "pairs": block_pairs},
        "parquet": res["snappy"],
        "gzip_parquet": res["gzip"],
        "query_errors": query_errors,
    }


# ------------------------------------------------------------------------------------------------- run

def run(quick=False, log=print):
    spec = load_functions()
    n_pipes = 5 if quick else 20
    n_big = 0 if quick else 5
    n_count = 40 if quick else 300
    block = (500, 5_000, 2.0) if quick else (10_000, 100_000, 8.0)  # max cells, min pairs, max seconds
    big_shape = shape_for(1e7)
    pipes = make_pipelines(n_pipes, spec)
    g = rng(11)
    rows = []
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, steps in enumerate(pipes):
            x0 = rng(100 + i).random((1000, 100))

            def plain(steps=steps, x0=x0):
                return run_pipeline(steps, x0)

            def tracked(steps=steps, x0=x0):
                wh.reset()
                return run_pipeline(steps, wh.track(x0, name="a", copy=False))

            row = {"id": i, "steps": describe(steps),
                   "data_dependent": any(any(w in s["name"] for w in DATA_DEPENDENT) for s in steps)}
            try:
                yp = plain()
                yt = tracked()
                if not isinstance(yt, wh.TrackedArray):
                    problems.append(f"pipeline {i}: result is {type(yt).__name__}, not tracked")
                elif not np.array_equal(np.asarray(yt), np.asarray(yp), equal_nan=True):
                    problems.append(f"pipeline {i}: tracked values differ from plain ({row['steps']})")
                r = alternate({"plain": plain, "tracked": tracked}, reps=5, min_batch=0.005,
                              budget=0.5 if quick else 2.0)
                row.update({"cells": 100_000, "plain_s": r["median_s"]["plain"],
                            "tracked_s": r["median_s"]["tracked"], "ratio": r["ratio"]["tracked"],
                            "ratio_min": r["ratio_min"]["tracked"], "reps": r["reps"], "number": r["number"]})
                row["storage"] = storage(yt, "a", 2, n_count, block, g, tmp)
                problems += [f"pipeline {i}: {e}" for e in row["storage"]["query_errors"]]
                st = row["storage"]
                log(f"  dslog #{i:2d} {'DD' if row['data_dependent'] else '  '} x{row['ratio']:.2f}  "
                    f"whence {st['whence_nbytes']:>9d} B ({len(st['maps'])} maps)  "
                    f"pairs~{st['est_pairs']:.3g}  parquet~{st['parquet']['est_file_bytes']:.3g} B "
                    f"({st['parquet']['ratio_vs_whence']:.3g}x)  gzip~{st['gzip_parquet']['est_file_bytes']:.3g} B"
                    f"  | {'; '.join(row['steps'])}")
            except Exception as exc:  # noqa: BLE001
                row["error"] = f"{type(exc).__name__}: {exc}"
                problems.append(f"pipeline {i} raised {row['error']} ({row['steps']})")
                log(f"  dslog #{i:2d} ERROR {row['error']}")
            rows.append(row)
            wh.reset()
        big_rows = []
        for i, steps in enumerate(pipes[:n_big]):
            x0 = rng(200 + i).random(big_shape)

            def plain(steps=steps, x0=x0):
                return run_pipeline(steps, x0)

            def tracked(steps=steps, x0=x0):
                wh.reset()
                return run_pipeline(steps, wh.track(x0, name="a", copy=False))
            try:
                r = alternate({"plain": plain, "tracked": tracked}, reps=5, number=1, warmup=False)
                big_rows.append({"id": i, "cells": int(np.prod(big_shape)), "plain_s": r["median_s"]["plain"],
                                 "tracked_s": r["median_s"]["tracked"], "ratio": r["ratio"]["tracked"],
                                 "reps": 5})
                log(f"  dslog 1e7 #{i} plain {r['median_s']['plain']:.3f} s tracked "
                    f"{r['median_s']['tracked']:.3f} s x{r['ratio']['tracked']:.3f}")
            except Exception as exc:  # noqa: BLE001
                big_rows.append({"id": i, "error": f"{type(exc).__name__}: {exc}"})
                problems.append(f"pipeline {i} at 1e7 raised {type(exc).__name__}: {exc}")
            del x0
            wh.reset()

    ok = [r for r in rows if "ratio" in r]
    ratios = [r["ratio"] for r in ok]
    stor = [r["storage"] for r in ok]
    summary = {
        "pipelines": len(rows),
        "capture_ratio_median": statistics.median(ratios) if ratios else None,
        "capture_ratio_max": max(ratios) if ratios else None,
        "capture_ratio_total": (sum(r["tracked_s"] for r in ok) / sum(r["plain_s"] for r in ok)) if ok else None,
        "capture_ratio_median_1e7": statistics.median([r["ratio"] for r in big_rows if "ratio" in r])
        if any("ratio" in r for r in big_rows) else None,
        "parquet_ratio_median": statistics.median([s["parquet"]["ratio_vs_whence"] for s in stor]) if stor else None,
        "gzip_parquet_ratio_median": statistics.median([s["gzip_parquet"]["ratio_vs_whence"] for s in stor])
        if stor else None,
        "whence_nbytes_median": statistics.median([s["whence_nbytes"] for s in stor]) if stor else None,
        "gzip_parquet_ratio_median_shape_determined": statistics.median(
            [r["storage"]["gzip_parquet"]["ratio_vs_whence"] for r in ok if not r["data_dependent"]])
        if any(not r["data_dependent"] for r in ok) else None,
        "parquet_ratio_median_shape_determined": statistics.median(
            [r["storage"]["parquet"]["ratio_vs_whence"] for r in ok if not r["data_dependent"]])
        if any(not r["data_dependent"] for r in ok) else None,
        "gzip_parquet_ratio_all": [r["storage"]["gzip_parquet"]["ratio_vs_whence"] for r in ok],
        "parquet_ratio_min": min([s["parquet"]["ratio_vs_whence"] for s in stor]) if stor else None,
    }
    return {
        "name": "dslog",
        "what": "DSLog workload: random 10-step pipelines over 1000x100 uniform floats (and 1e7 cells); "
                "capture overhead and compressed lineage vs explicit pairs in Parquet / gzip-Parquet",
        "functions_json": str(FUNCTIONS_JSON),
        "storage_method": __doc__.split("How the explicit-pairs size is obtained")[1].strip(),
        "quick": quick,
        "skipped": [] if n_big else ["1e7-cell pipelines (quick mode)"],
        "summary": summary,
        "pipelines": rows,
        "pipelines_1e7": big_rows,
        "problems": problems,
    }
