"""The ``whence`` command line: look into a saved lineage store, trace rows to source lines, run the demo.

::

    whence show STORE                          runs, objects, operations, sources, completeness
    whence trace STORE RUN OBJECT --row N      the source rows (table, file, line, columns) of a row
    whence report STORE -o report.html         a self-contained HTML report (no network needed to view it)
    whence serve STORE [--port N]              the lineage explorer in a web browser (loopback only)
    whence demo                                the walk-through of ``make demo``
    whence bench [NAME ...]                    the benchmarks (from a clone of the repository)

Every command takes ``--help``.  Exit status: 0 on success, 1 when the store, run, object or row is not there
(the reason on stderr), 2 for a malformed command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _store(path):
    from .store import open as open_store
    return open_store(path)


def cmd_show(args):
    with _store(args.store) as store:
        out = {"store": str(Path(args.store).resolve()), "schema_version": store.schema_version, "runs": []}
        for name in store.runs():
            run = store[name]
            objs = []
            for o in run.objects():
                h = run[o]
                objs.append({"name": o, "kind": h.kind, "shape": list(h.shape), "completeness": h.completeness,
                             "ops": len(h.ops()), "sources": h.sources()})
            src = store.sql("SELECT name, kind, path, n_rows, sha256 FROM sources WHERE run = ? ORDER BY name",
                            [name])
            n_src = sum(1 for n in run.nodes() if n.is_source)
            # operations are the graph's nodes less its sources (as the report and the explorer count them)
            out["runs"].append({"run": name, "operations": run.n_nodes - n_src, "nodes": run.n_nodes, "objects": objs,
                                "sources": json.loads(src.to_json(orient="records"))})
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{out['store']} (store schema {out['schema_version']}): {len(out['runs'])} run(s)")
    for r in out["runs"]:
        print(f"\nrun {r['run']!r}: {r['operations']} operations, {r['nodes'] - r['operations']} sources")
        for o in r["objects"]:
            print(f"  {o['name']:<20} {o['kind']:<7} {'x'.join(map(str, o['shape'])) or 'scalar':<14} "
                  f"{o['completeness']:<8} {o['ops']:>4} ops  from {', '.join(o['sources'])}")
        for s in r["sources"]:
            where = s["path"] or "(memory)"
            rows = f"{s['n_rows']} rows" if s["n_rows"] is not None else s["kind"]
            sha = f"  sha256 {s['sha256'][:12]}..." if s.get("sha256") else ""
            print(f"  source {s['name']:<22} {rows:<12} {where}{sha}")
    return 0


def cmd_trace(args):
    from .tabular.trace import trace_to_file
    with _store(args.store) as store:
        h = store[args.run][args.object]
        t = trace_to_file(h, row=args.row, control=args.control)
        rows = [{"table": r.table, "row": r.row, "line": r.line, "path": r.path, "columns": list(r.columns)}
                for r in t]
    if args.json:
        print(json.dumps({"object": args.object, "row": args.row, "complete": t.complete, "sources": rows},
                         indent=1))
        return 0
    print(f"{args.run}/{args.object} row {args.row}: {len(rows)} source row(s), "
          f"{'FULL' if t.complete else 'PARTIAL'}")
    print(f"  {'table':<22} {'row':>8} {'line':>8}  {'file':<40} columns")
    for r in rows:
        cols = ", ".join(map(str, r["columns"]))
        print(f"  {r['table']:<22} {r['row']:>8} {str(r['line'] if r['line'] is not None else '-'):>8}  "
              f"{str(r['path'] or '(memory)'):<40} {cols[:60] + ('...' if len(cols) > 60 else '')}")
    return 0


def cmd_report(args):
    from .report import write_report
    import os
    bench = args.bench
    if bench is None and not args.no_bench and os.path.isfile(os.path.join("benchmarks", "results", "summary.md")):
        bench = os.path.join("benchmarks", "results", "summary.md")
    out = write_report(args.store, args.output, row=args.row, bench=None if args.no_bench else bench)
    print(f"wrote {out}")
    return 0


def cmd_serve(args):
    from ._extras import MissingExtraError, require
    try:
        require("whence serve", "web", "store")
        from .web import is_loopback, serve
    except MissingExtraError as e:
        print(f"whence serve: {e}", file=sys.stderr)
        return 1
    if not args.allow_remote and not is_loopback(args.host):
        print(f"whence serve: refusing to listen on {args.host!r}: the explorer has no authentication and only "
              f"listens on loopback addresses (127.0.0.1, ::1, localhost); add --allow-remote to listen on "
              f"{args.host!r} anyway", file=sys.stderr)
        return 2
    _store(args.store).close()  # a missing or unreadable store: exit 1 with the reason, before binding
    try:
        serve(args.store, host=args.host, port=args.port, open_browser=args.open, allow_remote=args.allow_remote)
    except OSError as e:
        print(f"whence serve: cannot listen on {args.host}:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args):
    from . import demo
    from ._extras import MissingExtraError
    try:
        demo.main()
    except MissingExtraError as e:
        print(f"whence demo: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_bench(args):
    import subprocess
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(f"whence bench: no benchmark named {', '.join(map(repr, unknown))}; the benchmarks: "
              f"{', '.join(BENCHMARKS)} (whence bench --help describes them)", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
    if not root.exists():
        print("whence bench: the benchmarks live in the source repository (benchmarks/run.py); run this from a "
              "clone of it", file=sys.stderr)
        return 1
    cmd = [sys.executable, str(root)]
    if args.quick:
        cmd.append("--quick")
    if args.names:
        cmd += ["--only", *args.names]
    return subprocess.call(cmd)


#: The benchmarks of ``benchmarks/run.py`` (its ORDER), with what each measures.
BENCHMARKS = {
    "big": "1e8-cell pipelines: capture overhead and whole-array queries (a subprocess; skipped by --quick)",
    "ops": "per-operation capture overhead, tracked / plain, by bucket and size",
    "dslog": "DSLog's workload (random 10-step pipelines of 77 numpy functions): storage and query speed",
    "query": "query latency through pipelines of depth 10, 100 and 1000",
    "compare": "side by side with traceprop and a per-cell Python baseline",
    "memory": "peak memory of tracked vs plain runs, lineage bytes per operation",
    "tabular": "the credit-risk pandas ETL: overhead and trace_to_file",
    "store": "the DuckDB lineage store: save, reopen, queries, backward_sql",
    "attribution": "attribution on Adult: LDS and time beside traceprop and traker",
    "cifar": "TRAK-style attribution of a small ResNet on CIFAR-2 (needs torch)",
    "gradient_store": "the gradient store and its projections: size and top-k throughput",
    "unlearn": "unlearning judged against retraining, beside gradient ascent",
    "dask": "a 1e9-cell dask.array pipeline: overhead, queries, relation export, scaling model",
    "dask_gradients": "distributed gradient top-k and dask-frame overhead",
    "timeseries": "a time-series feature pipeline (windows, lags, fills, resample): tracked / plain",
    "compose": "long loops of where / masks / sort: memory, and one-cell queries through 1,000 operations",
    "corpus": "the corpus of public pandas / scikit-learn pipelines: overhead and the oracle's table",
    "elision": "operator chains on 1e5 to 1e7 cells (temporary elision), beside traceprop",
    "explorer": "the explorer under 32 connections, alone and with a process saving into its store",
    "counterfactual": "effects of deleting source rows against deleting, re-running the ETL and retraining",
}


def _parser():
    p = argparse.ArgumentParser(prog="whence", description="Cell-level lineage, attribution and unlearning: "
                                "look into saved lineage stores and run the demo.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"whence {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("show", help="runs, objects, operations and sources of a store")
    s.add_argument("store", help="a store written by whence.save (a .duckdb file)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(fn=cmd_show)
    t = sub.add_parser("trace", help="the source rows (table, file, line, columns) of a row of a saved object")
    t.add_argument("store", help="a store written by whence.save (a .duckdb file)")
    t.add_argument("run", help="the run's name (the second argument of whence.save; `whence show` lists them)")
    t.add_argument("object", help="a saved object of the run (a keyword of whence.save, e.g. X) or a source name")
    t.add_argument("--row", type=int, required=True, help="row position (negative counts from the end)")
    t.add_argument("--control", action="store_true", help="also the rows whose cells chose this row")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(fn=cmd_trace)
    r = sub.add_parser("report", help="a self-contained HTML report of a store (op graph, objects, sources, a traced row)")
    r.add_argument("store")
    r.add_argument("-o", "--output", default="report.html", help="the HTML file to write (default report.html)")
    r.add_argument("--row", type=int, default=0, help="the row of each object to trace (default 0)")
    r.add_argument("--bench", default=None, help="a benchmark summary to include (default: "
                   "benchmarks/results/summary.md when it exists)")
    r.add_argument("--no-bench", action="store_true", help="leave the benchmark table out")
    r.set_defaults(fn=cmd_report)
    w = sub.add_parser("serve", help="the lineage explorer: a local web app over a store (graph, cells, rows, "
                       "attribution)")
    w.add_argument("store")
    w.add_argument("--port", type=int, default=8000, help="the port (default 8000; 0 picks a free one)")
    w.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1; only "
                   "loopback addresses unless --allow-remote)")
    w.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host (no authentication: "
                   "anyone who reaches it reads the store)")
    w.add_argument("--open", action="store_true", help="open the page in the default web browser")
    w.set_defaults(fn=cmd_serve)
    d = sub.add_parser("demo", help="the walk-through of `make demo`")
    d.set_defaults(fn=cmd_demo)
    b = sub.add_parser("bench", help="run the benchmarks (from a clone of the repository)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="benchmarks:\n" + "\n".join(f"  {k:<15} {v}" for k, v in BENCHMARKS.items()))
    b.add_argument("names", nargs="*", metavar="NAME",
                   help="benchmarks to run (all when omitted; listed below)")
    b.add_argument("--quick", action="store_true", help="small sizes")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv=None):
    """Entry point of the ``whence`` console script; returns the exit status."""
    p = _parser()
    args = p.parse_args(argv)
    if not getattr(args, "fn", None):
        p.print_help()
        return 2
    from .errors import LineageQueryError, StoreError
    try:
        return args.fn(args)
    except FileNotFoundError as e:
        print(f"whence {args.command}: {e}", file=sys.stderr)
        return 1
    except (StoreError, LineageQueryError) as e:
        print(f"whence {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
