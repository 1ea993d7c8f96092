"""Run the whence benchmark suite: ``make bench`` (full) or ``python benchmarks/run.py --quick``.

Writes ``benchmarks/results/<name>.json`` for each benchmark (ops, big, dslog, query, compose, compare, memory,
tabular, timeseries, store, attribution, cifar, gradient_store,
unlearn, dask, dask_gradients, corpus, elision, explorer, counterfactual), prints a markdown table of the
targets with PASS / MISS per row, and writes
it, with the detailed tables, to ``benchmarks/results/summary.md``.  See ``benchmarks/README.md`` for what
each figure means.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULTS, environment, mem_available_bytes  # noqa: E402
import report  # noqa: E402

ORDER = ["big", "ops", "dslog", "query", "compose", "compare", "memory", "tabular", "timeseries", "store",
         "attribution", "cifar", "gradient_store", "unlearn", "dask", "dask_gradients", "corpus", "elision",
         "explorer", "counterfactual"]


def log(msg):
    print(msg, flush=True)


def run_big(quick, out_path):
    if quick:
        return {"name": "big", "skipped": ["1e8-cell figures: not run in --quick mode"], "problems": []}
    avail = mem_available_bytes() or 0
    log(f"[big] 1e8 cells in a subprocess (MemAvailable {avail / 2**30:.1f} GiB)")
    cmd = [sys.executable, str(HERE / "bench_big.py"), "--out", str(out_path)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=HERE, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=15 * 60)
    for line in proc.stdout.splitlines():
        log(line)
    if proc.returncode != 0 or not out_path.exists():
        why = "killed (out of memory?)" if proc.returncode in (-9, 137) else f"exit status {proc.returncode}"
        return {"name": "big", "skipped": [f"1e8-cell subprocess failed: {why}"],
                "problems": [f"bench_big.py {why}: {proc.stdout[-2000:]}"], "seconds": time.perf_counter() - t0}
    with open(out_path) as f:
        return json.load(f)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    ap.add_argument("--only", nargs="*", choices=ORDER, help="run only these benchmarks (others' old JSON "
                    "files are reused for the table when present)")
    ap.add_argument("--table-only", action="store_true", help="rebuild the table from the JSON files")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    mode = "quick" if args.quick else "full"
    env = environment()
    log(f"whence benchmarks ({mode}); numpy {env['numpy']}, {env['cpus']} cpus, "
        f"{env['mem_available_gb']} GiB available, load {env['loadavg']}")
    t_all = time.perf_counter()
    results = {}
    names = [] if args.table_only else (args.only or ORDER)
    for name in ORDER:
        path = RESULTS / f"{name}.json"
        if name not in names:
            if path.exists():
                with open(path) as f:
                    results[name] = json.load(f)
            continue
        log(f"[{name}]")
        t0 = time.perf_counter()
        try:
            if name == "big":
                res = run_big(args.quick, path)
            else:
                mod = __import__(f"bench_{name}")
                res = mod.run(quick=args.quick, log=log)
        except Exception as exc:  # noqa: BLE001
            res = {"name": name, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                   "problems": [f"benchmark {name} crashed: {type(exc).__name__}: {exc}"]}
            log(traceback.format_exc())
        res["mode"] = mode
        res.setdefault("env", env)
        res["seconds"] = time.perf_counter() - t0
        with open(path, "w") as f:
            json.dump(res, f, indent=1, default=float)
        log(f"[{name}] {res['seconds']:.1f} s -> {path.relative_to(HERE.parent)}")
        results[name] = res
    total = time.perf_counter() - t_all
    md = report.summary(results, mode=mode, env=env, total_s=total if names else None)
    (RESULTS / "summary.md").write_text(md)
    print()
    print(report.targets_markdown(results))
    print()
    if names:
        log(f"total {total / 60:.1f} min; full tables in {RESULTS.relative_to(HERE.parent)}/summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
