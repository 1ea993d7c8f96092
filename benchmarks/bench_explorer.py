"""Benchmark: the explorer under load, alone and with a process saving into its store (issue 17).

A store holds a numpy run (a 200 x 120 image through a calibration, a smoothing window, a threshold, a sort and
a reduction) and a pandas run (two CSV files, a filter, a group-by and a join, 2,000 rows).  The explorer
(``whence.web.serve``, uvicorn, one process) listens on a loopback port in a subprocess; a load generator in
this process (asyncio + httpx, ``CONNECTIONS`` connections kept alive) sends a mix of requests for
``seconds`` seconds: the graph of a run (1 in 5), the backward lineage of a random cell of a random object
(3 in 5) and the file lines of a random row (1 in 5).

Phase ``alone``: the explorer only.  Phase ``with_writer``: the same load while another process saves
``SAVES`` runs into the same store, one after the other (each save takes the write lock, writes a copy and
swaps it in); the phase lasts until the writer is done.  Reported per phase: requests/s, latency p50 / p99,
failed reads (any status other than 200, or a transport error), and for the writer the saves it reported
and the runs found in the store afterwards.  Targets: >= 300 requests/s and p99 <= 200 ms at 32
connections, 0 failed reads, every save landed.

The load generator shares the machine's cores with the server (and with whatever else runs): the figures
are for this machine as it was, and say so in ``env``.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

CONNECTIONS = 32
SAVES = 50

_SERVER = textwrap.dedent("""
    import sys
    from whence.web.server import serve
    serve(sys.argv[1], port=0, announce=True)
""")

_WRITER = textwrap.dedent("""
    import sys, numpy as np, whence as wh
    path, n = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(1)
    landed = 0
    wh.save(path + ".warm", "warm", y=wh.track(np.ones(3), name="warm") + 1, progress=False)  # imports paid
    wh.reset()
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(n):
        wh.reset()
        a = wh.track(rng.random((100, 40)), name="w")
        y = np.cumsum(np.sort(a, axis=1) * 2, axis=0)[::2]
        wh.save(path, f"w{i:03d}", y=y, progress=False, lock_timeout=120)
        landed += 1
        print("saved", i, flush=True)
    print("done", landed, flush=True)
""")


def build_store(d):
    import whence as wh
    rng = np.random.default_rng(0)
    wh.reset()
    img = wh.track(rng.normal(100, 15, size=(200, 120)).round(1), name="img")
    gains = wh.track(rng.uniform(0.9, 1.1, size=120), name="gains")
    calibrated = img * gains
    smooth = (calibrated[:, :-1] + calibrated[:, 1:]) / 2
    picked = np.where(smooth > 100, smooth, 0.0)
    ranked = np.sort(picked, axis=1)[:, ::-1]
    score = ranked[:, :10].mean(axis=1)
    n = 2000
    people = Path(d) / "people.csv"
    people.write_text("id,age,score\n" + "".join(f"{i},{20 + i % 50},{(i * 7) % 100 / 100}\n" for i in range(n)))
    orders = Path(d) / "orders.csv"
    orders.write_text("order,id,amount\n" + "".join(f"{k},{(k * 13) % n},{k % 17 + 0.5}\n" for k in range(3 * n)))
    t = wh.read_csv(people, name="people")
    o = wh.read_csv(orders, name="orders")
    spent = o.groupby("id", as_index=False).agg(spent=("amount", "sum"))
    df = t[t["age"] > 25].merge(spent, on="id", how="left")
    X = df[["age", "score", "spent"]].to_numpy()
    path = Path(d) / "explorer.duckdb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wh.save(path, "arrays", calibrated=calibrated, smooth=smooth, picked=picked, ranked=ranked, score=score,
                progress=False)
        wh.save(path, "tables", df=df, X=X, progress=False)
    shapes = {("arrays", "calibrated"): calibrated.shape, ("arrays", "smooth"): smooth.shape,
              ("arrays", "picked"): picked.shape, ("arrays", "ranked"): ranked.shape,
              ("arrays", "score"): score.shape, ("tables", "X"): X.shape}
    return path, shapes, len(df)


def request_mix(shapes, n_rows, rng):
    """An endless stream of request paths: graph 1/5, cell backward 3/5, row trace 1/5."""
    objects = list(shapes)
    while True:
        k = rng.random()
        if k < 0.2:
            yield f"/api/runs/{rng.choice(['arrays', 'tables'])}/graph"
        elif k < 0.8:
            run, name = rng.choice(objects)
            cell = ",".join(str(rng.randrange(s)) for s in shapes[(run, name)])
            yield f"/api/runs/{run}/objects/{name}/backward?cell={cell}&limit=200"
        else:
            yield f"/api/runs/tables/objects/{rng.choice(['df', 'X'])}/trace?row={rng.randrange(n_rows)}&limit=50"


async def _load(base, paths, seconds, connections, stop=None):
    import httpx
    lat, failed, errors = [], 0, []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30.0) as client:
        async def worker():
            nonlocal failed
            while time.perf_counter() < deadline and not (stop is not None and stop()):
                p = next(paths)
                t0 = time.perf_counter()
                try:
                    r = await client.get(p)
                    ok = r.status_code == 200
                    if not ok and len(errors) < 5:
                        errors.append(f"{r.status_code} {p}: {r.text[:200]}")
                except Exception as e:  # noqa: BLE001
                    ok = False
                    if len(errors) < 5:
                        errors.append(f"{type(e).__name__} {p}: {e}")
                lat.append(time.perf_counter() - t0)
                failed += not ok
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        wall = time.perf_counter() - t0
    lat = np.sort(np.asarray(lat))
    return {"requests": int(len(lat)), "seconds": wall, "requests_per_s": len(lat) / wall,
            "p50_ms": float(np.percentile(lat, 50) * 1e3) if len(lat) else None,
            "p99_ms": float(np.percentile(lat, 99) * 1e3) if len(lat) else None,
            "failed": int(failed), "errors": errors}


def _cpu_seconds(pid):
    """User + system CPU seconds of a process so far (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _measured(base, paths, seconds, connections, server_pid, stop=None):
    """One load phase, with the CPU seconds the server and this client spent per request."""
    s0, c0 = _cpu_seconds(server_pid), time.process_time()
    out = asyncio.run(_load(base, paths, seconds, connections, stop))
    s1, c1 = _cpu_seconds(server_pid), time.process_time()
    n = max(out["requests"], 1)
    out["server_cpu_ms_per_request"] = None if s0 is None or s1 is None else (s1 - s0) / n * 1e3
    out["client_cpu_ms_per_request"] = (c1 - c0) / n * 1e3
    out["loadavg_after"] = os.getloadavg()[0]
    return out


_WRK_LUA = """
local paths = {%s}
local i = 0
init = function(args) i = (offset or 0) %% #paths end
request = function()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
local counter = 0
setup = function(thread)
  thread:set("offset", counter * 997)
  counter = counter + 1
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WHENCE %%d %%d %%d %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _wrk(wrk, base, script, seconds, connections):
    """One wrk run (2 threads, ``connections`` connections kept alive) over the request list of ``script``."""
    cmd = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), base + "/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("WHENCE ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary: {out[-2000:]}")
    n, dur_us, conn, read, write, status, timeout, p50, p99, mx = (int(float(v)) for v in line.split()[1:])
    return {"requests": n, "seconds": dur_us / 1e6, "requests_per_s": n / (dur_us / 1e6),
            "p50_ms": p50 / 1e3, "p99_ms": p99 / 1e3, "max_ms": mx / 1e3,
            "failed": status + conn + read + write + timeout,
            "errors": {"status": status, "connect": conn, "read": read, "write": write, "timeout": timeout}}


def _wrk_measured(wrk, base, script, seconds, connections, server_pid, writer=None, chunk=4):
    """A wrk phase of ``seconds``, or, with a writer, chunks of ``chunk`` seconds until the writer is done:
    requests/s over the whole phase; p50 the request-weighted median of the chunks' and p99 the largest of
    the chunks' p99 (an upper bound of the phase's p99)."""
    s0 = _cpu_seconds(server_pid)
    parts = []
    if writer is None:
        parts.append(_wrk(wrk, base, script, int(seconds), connections))
    else:
        while writer.poll() is None:
            parts.append(_wrk(wrk, base, script, chunk, connections))
    s1 = _cpu_seconds(server_pid)
    n = sum(p["requests"] for p in parts)
    wall = sum(p["seconds"] for p in parts)
    p50s = sorted((p["p50_ms"], p["requests"]) for p in parts)
    acc, p50 = 0, None
    for v, k in p50s:
        acc += k
        if acc >= n / 2:
            p50 = v
            break
    errs = {k: sum(p["errors"][k] for p in parts) for k in parts[0]["errors"]} if parts else {}
    return {"requests": n, "seconds": wall, "requests_per_s": n / wall if wall else 0.0, "p50_ms": p50,
            "p99_ms": max((p["p99_ms"] for p in parts), default=None),
            "max_ms": max((p["max_ms"] for p in parts), default=None), "chunks": len(parts),
            "chunk_p99_ms": [round(p["p99_ms"], 1) for p in parts],
            "chunk_requests_per_s": [round(p["requests_per_s"]) for p in parts],
            "failed": sum(p["failed"] for p in parts), "errors": errs,
            "server_cpu_ms_per_request": None if s0 is None or s1 is None else (s1 - s0) / max(n, 1) * 1e3,
            "client_cpu_ms_per_request": None, "loadavg_after": os.getloadavg()[0], "load_generator": "wrk"}


def _server_timings(base, since=None):
    """The server's own timings (``/api/server/timings``), of what it recorded after ``since`` (an earlier
    answer); None where it does not answer."""
    import json
    import urllib.request
    q = ""
    if since is not None:
        q = (f"?requests_since={since['requests']['count']}&loop_lag_since={since['loop_lag']['count']}"
             f"&store_opens_since={since['store_opens']['count']}")
    try:
        with urllib.request.urlopen(base + "/api/server/timings" + q, timeout=30) as r:
            return json.loads(r.read())
    except Exception:  # noqa: BLE001 - an explorer without the endpoint
        return None


def _with_server_side(base, phase):
    """``phase()``, with the server's timings of the requests it served meanwhile under ``"server"``."""
    before = _server_timings(base)
    out = phase()
    after = _server_timings(base, before) if before is not None else None
    out["server"] = after
    out["loadavg_1_5_15"] = os.getloadavg()
    return out


def _server_text(p):
    """The server-side figures of a phase, in words."""
    s = p.get("server")
    if not s:
        return "no server-side timings"
    r, lag, op = s["requests"], s["loop_lag"], s["store_opens"]
    out = (f"in the server: p50 {r.get('p50_ms', 0):.2f} ms, p99 {r.get('p99_ms', 0):.2f} ms, max "
           f"{r.get('max_ms', 0):.1f} ms over {r['n']} requests; event loop woke late by p99 "
           f"{lag.get('p99_ms', 0):.1f} ms, max {lag.get('max_ms', 0):.1f} ms ({lag['late_20ms']} wake-ups over 20 ms "
           f"late, {lag['late_20ms_not_running']} of them with the loop's thread not running)")
    if op["n"]:
        out += f"; {op['n']} store files opened, p50 {op['p50_ms']:.1f} ms, max {op['max_ms']:.1f} ms"
    la = p.get("loadavg_1_5_15")
    if la:
        out += f"; load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}"
    return out


def rows(d):
    """The rows of the targets table: (figure, target, measured, status, detail)."""
    if "error" in d:
        return [("explorer under load (issue 17)", "see issue 17", "—", "ERROR", d["error"])]
    out = []
    gen = d.get("load_generator", "?")
    for phase, label in (("alone", "explorer alone"), ("with_writer", "explorer while a process saves")):
        p = d.get(phase)
        if not p:
            continue
        ok = p["pass_rate"] and p["pass_p99"] and p["failed"] == 0
        out.append((f"{label}: mixed graph / cell backward / row trace, {d['connections']} connections",
                    ">= 300 req/s, p99 <= 200 ms, 0 failed",
                    f"{p['requests_per_s']:.0f} req/s, p50 {p['p50_ms']:.1f} ms, p99 {p['p99_ms']:.1f} ms, "
                    f"{p['failed']} failed", "PASS" if ok else "MISS",
                    f"{p['requests']} requests in {p['seconds']:.1f} s, load generator {gen} on the same cores; "
                    f"server CPU {p['server_cpu_ms_per_request']:.2f} ms/request; load average "
                    f"{p['loadavg_after']:.1f} after; {_server_text(p)}"))
    e = d.get("with_writer_elsewhere")
    if e:
        out.append(("explorer while a process saves into another file (the cores it takes, no file swapped)",
                    "information", f"{e['requests_per_s']:.0f} req/s, p50 {e['p50_ms']:.1f} ms, p99 "
                    f"{e['p99_ms']:.1f} ms, {e['failed']} failed", "INFO", _server_text(e)))
    w = d.get("writer")
    if w:
        out.append(("saves landed while the explorer is loaded", f"{w['saves']}/{w['saves']}",
                    f"{w['landed']}/{w['saves']} (reported {w['reported']})", "PASS" if d["pass_saves"] else "MISS",
                    f"one process saving one run after another, {w['seconds']:.1f} s in all"))
    return out


def _env():
    src = str(Path(__file__).resolve().parents[1] / "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def run(quick=False, log=print, connections=CONNECTIONS, saves=SAVES, use_wrk=True):
    import whence as wh
    seconds = 6.0 if quick else 20.0
    saves = 10 if quick else saves
    d = tempfile.mkdtemp(prefix="whence-explorer-")
    path, shapes, n_rows = build_store(d)
    server_cmd = [sys.executable, "-c", _SERVER] if not os.environ.get("WHENCE_BENCH_SERVER") else [
        sys.executable, os.environ["WHENCE_BENCH_SERVER"]]
    server = subprocess.Popen(server_cmd + [str(path)], env=_env(), stdout=subprocess.PIPE,
                              stderr=None if os.environ.get("WHENCE_BENCH_SERVER") else subprocess.PIPE, text=True)
    res = {"name": "explorer", "connections": connections, "problems": [], "mode_seconds": seconds}
    try:
        line = server.stdout.readline()
        if "http://" not in line:
            raise RuntimeError(f"the explorer did not start: {line!r} {server.stderr.read()[-2000:]}")
        base = line.split(" on ")[1].split(" ")[0].rstrip("/")
        rng = random.Random(0)
        paths = request_mix(shapes, n_rows, rng)
        wrk = shutil.which("wrk") if use_wrk else None
        res["load_generator"] = "wrk" if wrk else "httpx (asyncio)"
        if wrk:
            script = Path(d) / "mix.lua"
            script.write_text(_WRK_LUA % ", ".join(f'"{next(paths)}"' for _ in range(5000)))
            _wrk(wrk, base, script, 2, connections)  # warm-up: graphs and arrays read once
            def phase(w=None):
                return _wrk_measured(wrk, base, script, seconds, connections, server.pid, w)
        else:
            asyncio.run(_load(base, paths, 2.0, connections))
            def phase(w=None):
                return _measured(base, paths, 600.0 if w else seconds, connections, server.pid,
                                 None if w is None else (lambda: w.poll() is not None))
        log(f"[explorer] {connections} connections, {seconds:.0f} s alone, load generator {res['load_generator']}")
        res["alone"] = _with_server_side(base, phase)
        a = res["alone"]
        log(f"[explorer] alone: {a['requests_per_s']:.0f} req/s, p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms, "
            f"{a['failed']} failed; server CPU per request {a['server_cpu_ms_per_request']:.2f} ms; "
            f"{_server_text(a)}")
        def with_writer(target):
            writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(saves)], env=_env(),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            ready = writer.stdout.readline()
            if ready.strip() != "ready":
                raise RuntimeError(f"the writer did not start: {ready!r} {writer.stderr.read()[-2000:]}")
            time.sleep(1.0)  # the server settles after the writer's start-up
            writer.stdin.write("go\n")
            writer.stdin.flush()
            t0 = time.perf_counter()
            p = _with_server_side(base, lambda: phase(writer))
            out, err = writer.communicate(timeout=600)
            return p, out, err, writer.returncode, time.perf_counter() - t0

        # the same writer saving into another file: what the explorer loses to the cores the writer takes,
        # without a file to swap in (information; the target is the phase below)
        res["with_writer_elsewhere"], *_ = with_writer(Path(d) / "elsewhere.duckdb")
        e = res["with_writer_elsewhere"]
        log(f"[explorer] with a writer saving into another file: {e['requests_per_s']:.0f} req/s, p50 "
            f"{e['p50_ms']:.1f} ms, p99 {e['p99_ms']:.1f} ms, {e['failed']} failed; {_server_text(e)}")
        res["with_writer"], out, err, code, writer_s = with_writer(path)
        reported = sum(1 for ln in out.splitlines() if ln.startswith("saved"))
        with wh.open(path) as store:
            landed = sum(1 for r in store.runs() if r.startswith("w"))
        res["writer"] = {"saves": saves, "reported": reported, "landed": landed, "seconds": writer_s,
                         "exit": code, "stderr": err[-2000:]}
        w = res["with_writer"]
        log(f"[explorer] with a writer: {w['requests_per_s']:.0f} req/s, p50 {w['p50_ms']:.1f} ms, p99 "
            f"{w['p99_ms']:.1f} ms, {w['failed']} failed; saves {reported} reported, {landed}/{saves} landed "
            f"in {writer_s:.1f} s; {_server_text(w)}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    for phase in ("alone", "with_writer_elsewhere", "with_writer"):
        p = res.get(phase)
        if p is None:
            continue
        p["pass_rate"] = p["requests_per_s"] >= 300
        p["pass_p99"] = p["p99_ms"] is not None and p["p99_ms"] <= 200
        if p["failed"]:
            res["problems"].append(f"{phase}: {p['failed']} failed reads: {p['errors']}")
    wr = res.get("writer", {})
    res["pass_saves"] = wr.get("landed") == wr.get("saves") == wr.get("reported")
    if not res["pass_saves"]:
        res["problems"].append(f"saves: {wr}")
    return res


if __name__ == "__main__":
    import argparse
    import json
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--connections", type=int, default=CONNECTIONS)
    ap.add_argument("--httpx", action="store_true", help="the Python load generator even where wrk is installed")
    args = ap.parse_args()
    print(json.dumps(run(quick=args.quick, connections=args.connections, use_wrk=not args.httpx), indent=1,
                     default=float))
