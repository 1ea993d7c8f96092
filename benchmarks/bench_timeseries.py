"""Time-series feature engineering under whence: capture overhead and one-cell queries.

The pipeline is the everyday one: per-entity sensor readings (a datetime column, an entity key, two value
columns with NaN), sorted by entity and time, then rolling means, lags, diffs, an exponential mean, a
forward fill, cumulative sums and group-wise transforms (``groupby().transform``, ``shift``, ``diff``,
``cumsum``, ``rolling``), and a daily ``resample``.  It runs on plain pandas frames and on tracked frames,
alternating (:func:`common.alternate`); the figure is tracked / plain of the medians.  Then one-cell
``backward`` / ``forward`` / ``trace_to_file`` queries on the result are timed (first call and steady
state) and checked against the expected rows.

Run alone: ``python benchmarks/bench_timeseries.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import alternate, median_time, perf, rng  # noqa: E402

TARGET = 1.2


def readings(n, entities=500, seed=0):
    """``n`` readings of ``entities`` sensors, hourly, with some NaN (in entity order, then time)."""
    r = rng(seed)
    k = np.sort(r.integers(0, entities, n))
    first = np.r_[True, k[1:] != k[:-1]]
    step = np.arange(n) - np.maximum.accumulate(np.where(first, np.arange(n), 0))
    t = pd.Timestamp("2024-01-01") + pd.to_timedelta(step, unit="h")
    v = r.normal(20, 5, n)
    v[r.random(n) < 0.02] = np.nan
    w = r.normal(0, 1, n)
    return pd.DataFrame({"sensor": k, "t": t, "v": v, "w": w})


def features(df):
    """The feature pipeline (ordinary pandas code)."""
    df = df.sort_values(["sensor", "t"], kind="stable").reset_index(drop=True)
    df["v"] = df["v"].ffill()
    df["v_roll24"] = df["v"].rolling(24, min_periods=1).mean()
    df["v_lag1"] = df["v"].shift(1)
    df["v_d1"] = df["v"].diff()
    df["v_ewm"] = df["v"].ewm(span=12).mean()
    df["w_cum"] = df["w"].cumsum()
    g = df.groupby("sensor")
    df["v_mean_sensor"] = g["v"].transform("mean")
    df["v_lag_sensor"] = g["v"].shift(1)
    df["v_d_sensor"] = g["v"].diff()
    df["w_cum_sensor"] = g["w"].cumsum()
    df["v_roll_sensor"] = g["v"].rolling(6, min_periods=1).mean().to_numpy()  # (rows already in sensor order)
    daily = df.resample("1D", on="t")[["v", "w"]].mean()
    return df, daily


def run(quick=False, log=print):
    import whence as wh
    sizes = [20_000] if quick else [100_000]
    problems, entries = [], []
    for n in sizes:
        plain = readings(n)

        def run_plain():
            return features(plain.copy())

        def run_tracked():
            wh.reset()
            return features(wh.track_frame(plain.copy(), name="readings"))

        r = alternate({"plain": run_plain, "tracked": run_tracked}, reps=5, min_batch=0.02,
                      budget=12 if quick else 40)
        ratio = r["ratio"]["tracked"]
        log(f"  {n} rows: plain {r['median_s']['plain']*1e3:8.1f} ms  tracked {r['median_s']['tracked']*1e3:8.1f} ms  "
            f"ratio {ratio:.3f}x (paired {r['ratio_paired']['tracked']:.3f}x, {r['reps']} rounds)")
        entry = {"rows": n, "median_s": r["median_s"], "ratio": r["ratio"], "ratio_paired": r["ratio_paired"],
                 "ratio_min": r["ratio_min"], "reps": r["reps"]}
        if ratio > TARGET:
            problems.append(f"time-series pipeline at {n} rows: tracked/plain {ratio:.3f}x > {TARGET}x")
        # one-cell queries on the result
        wh.reset()
        out, daily = features(wh.track_frame(plain.copy(), name="readings"))
        ref, _ = features(plain.copy())
        i = n // 2
        col = list(out.columns).index("v_roll_sensor")
        t0 = perf()
        res = wh.backward(out, (i, col))
        first = perf() - t0
        steady = median_time(lambda: wh.backward(out, (i, col)), reps=5)["median_s"]
        got = sorted({int(rw) for rw, _ in np.asarray(res["readings"]).reshape(-1, 2)})
        # expected: the sensor's last <= 6 readings (ffilled values: the row each value was copied from)
        order = plain.assign(__r=np.arange(n)).sort_values(["sensor", "t"], kind="stable")["__r"].to_numpy()
        srt = plain.iloc[order].reset_index(drop=True)
        s = srt["sensor"].to_numpy()
        rows = [j for j in range(max(0, i - 5), i + 1) if s[j] == s[i]]
        vv = srt["v"].to_numpy()
        src = []
        for j in rows:
            q = j
            while np.isnan(vv[q]) and q > 0:
                q -= 1
            src.append(int(order[q]))
        exact = res.complete and got == sorted(set(src))
        if not exact:
            problems.append(f"backward of v_roll_sensor row {i}: {got} != {sorted(set(src))}")
        # (v_roll_sensor came in through to_numpy(), an array hop that trace_to_file walks the slow way)
        feats = out.drop(columns=["v_roll_sensor"])
        t0 = perf()
        tr = wh.trace_to_file(feats, row=i)
        tr_first = perf() - t0
        tr_steady = median_time(lambda: wh.trace_to_file(feats, row=i), reps=5)["median_s"]
        t0 = perf()
        fw = wh.forward("readings", (int(order[i]), 2), daily)
        fw_s = perf() - t0
        entry["queries"] = {"backward_first_s": first, "backward_steady_s": steady, "trace_first_s": tr_first,
                            "trace_steady_s": tr_steady, "trace_rows": len(tr), "forward_to_daily_s": fw_s, "exact": bool(exact),
                            "forward_cells": int(len(fw))}
        log(f"  one-cell backward {first*1e3:.2f} ms first, {steady*1e3:.3f} ms steady; trace_to_file of a row "
            f"({len(tr)} source rows) {tr_first*1e3:.2f} / {tr_steady*1e3:.3f} ms; forward to the daily table {fw_s*1e3:.2f} ms; "
            f"exact: {exact}")
        assert out.to_csv() == ref.to_csv()
        entries.append(entry)
    return {"name": "timeseries",
            "what": "time-series feature pipeline (rolling, lags, diffs, ewm, ffill, cumsum, group-wise "
                    "transform/shift/diff/cumsum/rolling, daily resample): tracked/plain, one-cell queries",
            "target_ratio": TARGET, "sizes": entries, "problems": problems}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    res = run(quick=args.quick)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
