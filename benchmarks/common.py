"""Shared helpers for the whence benchmarks: alternating timers, shapes, pipelines, environment facts.

Measurement rule (issue 3): every figure is a ratio measured in one run, the plain and the tracked
variants alternating (plain, tracked, plain, tracked, ...), median of at least 5 repetitions, timed with
``time.perf_counter`` and with ``gc.collect()`` before every timed batch.  Reported: the median of each
variant and the ratio of the medians.

A *batch* runs a callable ``number`` times and divides; ``number`` is 1 for slow calls and, for fast ones,
chosen per variant so that a batch lasts at least ``min_batch`` seconds (timer resolution).
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

perf = time.perf_counter


# ------------------------------------------------------------------------------------------------ timing

def calibrate(fn, min_batch):
    """How many calls of ``fn`` make a batch of at least ``min_batch`` seconds (1 for slow calls)."""
    t0 = perf()
    fn()
    t = perf() - t0
    if t >= min_batch:
        return 1
    # a second, more accurate look for very fast calls
    n = max(1, int(min_batch / max(t, 1e-7) / 10))
    t0 = perf()
    for _ in range(n):
        fn()
    t = (perf() - t0) / n
    return max(1, min(200_000, math.ceil(min_batch / max(t, 1e-8))))


def alternate(variants, reps=5, min_batch=0.01, number=None, warmup=True, between=None, budget=None,
              max_reps=21):
    """Time several variants of one job, alternating, ``reps`` rounds.

    Parameters
    ----------
    variants : dict label -> callable
        Called with no argument; the first is the reference (``plain``).  Order of the dict is the order
        of each round: plain, tracked, plain, tracked, ...
    reps : int
        Rounds (>= 5 for a reported figure).
    min_batch : float
        Seconds a timed batch should last at least; sets each variant's ``number`` (calls per batch).
    number : int, optional
        Calls per batch for every variant (skips calibration).
    between : callable, optional
        Called (untimed) before every batch, e.g. ``whence.reset``.
    budget : float, optional
        Seconds this measurement may take: more rounds than ``reps`` (up to ``max_reps``) when the
        warm-up says they fit, for a steadier median on a noisy machine.  Never fewer than ``reps``.

    Returns
    -------
    dict with ``median_s`` {label: seconds per call}, ``samples_s`` {label: [...]}, ``number``
    {label: calls per batch}, ``reps``, and ``ratio`` {label: median(label) / median(first)}.
    """
    labels = list(variants)
    numbers = {}
    firsts = {}
    for k in labels:
        fn = variants[k]
        if number is not None:
            if warmup:
                if between:
                    between()
                fn()
            numbers[k] = number
            continue
        if between:
            between()
        t0 = perf()
        fn()  # warm-up
        first = perf() - t0
        firsts[k] = first
        if first >= min_batch:
            numbers[k] = 1  # a slow call: the warm-up told us enough
        else:
            if between:
                between()
            numbers[k] = calibrate(fn, min_batch)
    if budget is not None and firsts:
        per_round = sum(numbers[k] * firsts[k] for k in labels)
        if per_round > 0:
            reps = max(reps, min(max_reps, int(budget / per_round)))
    samples = {k: [] for k in labels}
    for _ in range(reps):
        for k in labels:
            fn = variants[k]
            n = numbers[k]
            if between:
                between()
            gc.collect()
            t0 = perf()
            for _ in range(n):
                fn()
            samples[k].append((perf() - t0) / n)
    med = {k: statistics.median(v) for k, v in samples.items()}
    ref = med[labels[0]]
    return {
        "median_s": med,
        "samples_s": samples,
        "number": numbers,
        "reps": reps,
        "ratio": {k: (med[k] / ref if ref > 0 else float("nan")) for k in labels},
        # secondary figures for a noisy machine (not the reported one): the median of the per-round
        # ratios (each round's variants ran back to back, under the same load), and the ratio of the
        # fastest batches
        "ratio_paired": {k: statistics.median(a / b for a, b in zip(samples[k], samples[labels[0]]) if b > 0)
                         for k in labels},
        "ratio_min": {k: (min(samples[k]) / min(samples[labels[0]]) if min(samples[labels[0]]) > 0
                          else float("nan")) for k in labels},
    }


def median_time(fn, reps=5, min_batch=0.005, between=None, number=None):
    """Median seconds per call of one callable (for latencies that have no plain counterpart)."""
    r = alternate({"x": fn}, reps=reps, min_batch=min_batch, between=between, number=number)
    return {"median_s": r["median_s"]["x"], "samples_s": r["samples_s"]["x"], "number": r["number"]["x"],
            "reps": reps}


# ------------------------------------------------------------------------------------------------ shapes

COLS = 100


def shape_for(cells, cols=COLS):
    """2-D shape with ``cells`` cells: (cells // 100, 100), as DSLog's 1000 x 100 arrays."""
    cells = int(cells)
    if cells < cols:
        return (1, cells)
    return (cells // cols, cols)


def size_label(n):
    e = math.log10(n)
    return f"1e{int(round(e))}" if abs(e - round(e)) < 1e-9 else f"{n:g}"


# --------------------------------------------------------------------------------------------- pipelines

ELEMENTWISE_OPS = 10


def elementwise_pipeline(a, b):
    """Issue 2's elementwise pipeline: 10 ufunc calls over two same-shape arrays (works on ndarrays,
    whence and traceprop arrays, and object arrays of per-cell provenance)."""
    y = a * b
    y = y + 1.0
    y = np.tanh(y)
    y = y * a
    y = y - b
    y = np.exp(y)
    y = y * 0.5
    y = y + a
    y = np.sqrt(y)
    y = -y
    return y


AB_OPS = 10


def ab_pipeline(a, b, r):
    """A class A/B pipeline of 10 numpy operations: elementwise, broadcast, transpose, slices, reshape and
    a cumulative sum.  ``a``, ``b``: (R, C); ``r``: (1, C)."""
    y = a * b                       # elementwise
    y = y + r                       # broadcast
    y = np.tanh(y)                  # ufunc
    y = y.T                         # transpose (view)
    y = y[:, ::2]                   # slice (view)
    y = y * 2.0                     # elementwise (materialises)
    y = np.cumsum(y, axis=1)        # class B: prefix
    y = y.reshape(-1)               # reshape (view)
    y = y[::-1]                     # slice (view)
    y = y - 1.0                     # elementwise
    return y


# ------------------------------------------------------------------------------------------------- facts

def mem_available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def environment():
    import whence
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True,
                                    text=True, timeout=10).stdout.strip())
    except Exception:  # noqa: BLE001
        rev, dirty = "", None
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "whence": getattr(whence, "__version__", "?"),
        "git": rev,
        "src_dirty": dirty,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "mem_available_gb": round((mem_available_bytes() or 0) / 2**30, 1),
        "loadavg": load,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def rng(seed=0):
    return np.random.default_rng(seed)
