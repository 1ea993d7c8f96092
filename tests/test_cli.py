"""The ``whence`` command line, through its real entry points (the console script and ``python -m whence``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import whence as wh


def _run(*args, check=False):
    exe = shutil.which("whence", path=str(Path(sys.executable).parent))
    cmd = [exe, *args] if exe else [sys.executable, "-m", "whence", *args]
    src = str(Path(wh.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=check, timeout=300)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    csv = d / "people.csv"
    csv.write_text("id,age,city\n1,30,Oslo\n2,41,Lima\n3,25,Oslo\n4,52,Pune\n")
    wh.reset()
    t = wh.read_csv(csv, name="people")
    older = t[t["age"] > 28]
    X = older[["id", "age"]].to_numpy()
    a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    path = d / "run.duckdb"
    wh.save(path, "etl", X=X, y=np.cumsum(a, axis=1))
    return path, csv, X


def test_show(store):
    path, csv, _ = store
    r = _run("show", str(path))
    assert r.returncode == 0, r.stderr
    assert "run 'etl'" in r.stdout and "people" in r.stdout and str(csv.resolve()) in r.stdout
    j = json.loads(_run("show", str(path), "--json").stdout)
    objs = {o["name"]: o for o in j["runs"][0]["objects"]}
    assert objs["X"]["shape"] == [3, 2] and objs["X"]["completeness"] == "FULL" and objs["y"]["sources"] == ["a"]
    # operations are counted as the report counts them: the graph's nodes less its sources
    with wh.open(path) as s:
        from whence.query import _upstream
        run = s["etl"]
        nodes = {n.id: n for o in run.objects() for n in _upstream(run[o]._whence_node)}
    n_ops = sum(1 for n in nodes.values() if not n.is_source)
    assert j["runs"][0]["operations"] == n_ops and j["runs"][0]["nodes"] == len(nodes)
    assert f"{n_ops} operations, {len(nodes) - n_ops} sources" in r.stdout


def test_trace(store):
    path, csv, X = store
    r = _run("trace", str(path), "etl", "X", "--row", "1", "--json")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    exp = wh.trace_to_file(X, row=1)
    assert [(s["table"], s["row"], s["line"]) for s in j["sources"]] == [(e.table, e.row, e.line) for e in exp]
    assert j["sources"][0]["line"] == 3  # id 2 is on line 3 of the file
    text = _run("trace", str(path), "etl", "X", "--row", "1").stdout
    assert "people" in text and "FULL" in text


@pytest.mark.parametrize("args, message", [
    (["trace", "{path}", "nope", "X", "--row", "0"], "no run named 'nope'"),
    (["trace", "{path}", "etl", "Z", "--row", "0"], "no object or source named 'Z'"),
    (["trace", "{path}", "etl", "X", "--row", "9"], "out of range"),
    (["show", "{missing}"], "no lineage store"),
    (["show", "{notastore}"], "not a whence store"),
])
def test_errors_exit_1_with_the_reason(store, tmp_path, args, message):
    path, _, _ = store
    bad = tmp_path / "notes.duckdb"
    bad.write_text("not a database\n" * 50)
    args = [a.format(path=path, missing=tmp_path / "missing.duckdb", notastore=bad) for a in args]
    r = _run(*args)
    assert r.returncode == 1 and message in r.stderr, (r.returncode, r.stderr)


def test_usage_and_help():
    r = _run()
    assert r.returncode == 2 and "show" in r.stdout
    assert _run("--help").returncode == 0
    for c in ("show", "trace", "report", "demo", "bench"):
        h = _run(c, "--help")
        assert h.returncode == 0 and "usage" in h.stdout
    bad = _run("trace", "x.duckdb", "run", "obj")  # --row missing
    assert bad.returncode == 2 and "--row" in bad.stderr
    assert _run("--version").stdout.startswith("whence ")
    # whence bench --help lists every benchmark of benchmarks/run.py; trace --help describes its arguments
    import ast
    run_py = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    order = next(ast.literal_eval(n.value) for n in ast.parse(run_py.read_text()).body
                 if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "ORDER")
    bench_help = _run("bench", "--help").stdout
    assert all(f"  {name} " in bench_help for name in order)
    assert _run("bench", "nosuch").returncode == 2
    trace_help = _run("trace", "--help").stdout
    assert "the run's name" in trace_help and "a saved object" in trace_help


def test_report(store, tmp_path):
    path, csv, X = store
    out = tmp_path / "report.html"
    r = _run("report", str(path), "-o", str(out), "--row", "1")
    assert r.returncode == 0, r.stderr
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    with wh.open(path) as s:
        n_ops = len(wh.ops(s["etl"]["X"])) + len(wh.ops(s["etl"]["y"]))
    assert page.count('class="node"') >= n_ops + 2  # every operation and both sources are drawn
    assert str(csv.resolve()) in page and "<td>3</td>" in page  # row 1 of X: id 2, line 3 of the file


def test_whence_demo_end_to_end(tmp_path):
    """``whence demo`` (what ``make demo`` runs) from an empty directory: the store, the report and the summary,
    then the other commands on the store it wrote."""
    exe = shutil.which("whence", path=str(Path(sys.executable).parent))
    cmd = [exe, "demo"] if exe else [sys.executable, "-m", "whence", "demo"]
    src = str(Path(wh.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "WHENCE_PROGRESS": "0"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    assert "Summary" in out and "FULL" in out and " serve demo/run.duckdb" in out
    # the next command as printed runs as typed (whence on the PATH, or the script's path, or python -m whence)
    import re
    import shlex
    nxt = re.search(r"Next: (.+) serve demo/run\.duckdb", out).group(1)
    shown = subprocess.run([*shlex.split(nxt), "show", "demo/run.duckdb"], capture_output=True, text=True,
                           env=env, timeout=300, cwd=tmp_path)
    assert shown.returncode == 0 and "etl" in shown.stdout, shown.stderr
    assert "training rows changed:" in out and "column median" in out
    store, report = tmp_path / "demo" / "run.duckdb", tmp_path / "demo" / "report.html"
    assert store.stat().st_size > 0 and report.stat().st_size > 0
    with wh.open(store) as s:
        run = s["etl"]
        assert {"X", "y", "df"} <= set(run.objects())
        assert {r["kind"] for r in run.results()} == {"attribution", "unlearning"}
        att = run.result("attribution")
        assert len(att["test_rows"]) == 5
        # the effects of deleting source rows, with their file lines, for every explained prediction
        assert all(t["counterfactual"]["largest"][0]["line"] >= 2 for t in att["test_rows"])
        # every ranked training row carries its source lines, in the three files the demo wrote
        files = {p.name for p in (tmp_path / "demo" / "data").iterdir()}
        for t in att["test_rows"]:
            for r in t["top"] + t["bottom"]:
                assert r["sources"] and all(Path(x["path"]).name in files for x in r["sources"])
        figs = run.result("unlearning")["figures"]
        # retraining with scikit-learn < 1.4 stops short of the optimum (lbfgs's ftol on the summed loss)
        sk = tuple(int(p) for p in __import__("sklearn").__version__.split(".")[:2])
        assert figs["param_distance_to_retrained"] < (1e-2 if sk >= (1, 4) else 0.1)
        assert figs["update_seconds"] > 0 and figs["retrain_seconds"] > 0  # the times are compared in make bench
    html = report.read_text()
    for part in ("Operation graph", "score by source table", "Training rows that raised it most",
                 "param distance to retrained", "time to take the rows out"):
        assert part in html
    t = _run("trace", str(store), "etl", "X", "--row", "5", check=True)
    assert "application" in t.stdout and "bureau" in t.stdout
