"""The lineage store: save a run to DuckDB, reopen it, and get the same answers as from memory.

Round trips are checked on the random pipelines of the numpy and pandas oracle tests (whose live answers
those tests check against brute-force oracles): every query on the reopened store must equal the query on
the live objects, cell for cell.  Then the credit case study, SQL over the tables, the backward query as SQL,
bad input (not a store, truncated, corrupted, wrong version, missing run or object, re-saving a run), a
process killed while saving, and several processes reading at once.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import strategies as S  # noqa: E402

wh = pytest.importorskip("whence")
duckdb = pytest.importorskip("duckdb")

from whence.errors import StoreError, StoreKeyError, StoreVersionError  # noqa: E402

cfg = S.cfg


def same_result(a, b, ctx=""):
    assert sorted(a) == sorted(b), f"sources differ: {sorted(a)} vs {sorted(b)} {ctx}"
    for k in a:
        assert np.array_equal(np.asarray(a[k]), np.asarray(b[k])), f"cells of {k!r} differ {ctx}"
    assert a.complete == b.complete, f"completeness differs {ctx}"


def strip_ids(records):
    """OpRecords without node ids (ids are per process)."""
    return [(r.op, r.shape, r.completeness, r.reason, r.source, r.lineage_nbytes, r.detail) for r in records]


def check_same(live, h, rng, ctx, sources=()):
    """Every kind of query on the handle equals the query on the live object."""
    shape = np.shape(live) if not hasattr(live, "_whence_node") else live._whence_node.shape
    node_shape = h.shape
    assert tuple(node_shape) == tuple(shape), ctx
    assert wh.sources(h) == wh.sources(live), ctx
    assert wh.ops(h) == wh.ops(live), ctx
    assert strip_ids(wh.ancestors(h)) == strip_ids(wh.ancestors(live)), ctx
    assert strip_ids(wh.ancestors(h, depth=1)) == strip_ids(wh.ancestors(live, depth=1)), ctx
    same_result(wh.backward(live), wh.backward(h), f"backward(all) {ctx}")
    size = int(np.prod(shape)) if shape else 1
    for _ in range(min(6, size)):
        cell = tuple(int(rng.integers(d)) for d in shape) if shape else ()
        for control in (False, True):
            same_result(wh.backward(live, cell, control=control), wh.backward(h, cell, control=control),
                        f"backward({cell}, control={control}) {ctx}")
    if shape and size:
        m = rng.random(shape) < 0.3
        same_result(wh.backward(live, m), wh.backward(h, m), f"backward(mask) {ctx}")
    for name, sshape in sources:
        if name not in wh.sources(live):
            continue
        if sshape and 0 in sshape:
            continue
        for _ in range(3):
            cell = tuple(int(rng.integers(d)) for d in sshape) if sshape else ()
            a = wh.forward(name, cell, live)
            b = wh.forward(name, cell, h)
            assert np.array_equal(a, b), f"forward({name}, {cell}) {ctx}"


# ----------------------------------------------------------------------------------------------------------
# numpy: the random pipelines of the oracle tests
# ----------------------------------------------------------------------------------------------------------

@cfg(60)
@given(S.pipelines(ops=S.NO_OPAQUE + ("opaque",)), st.integers(0, 2**31 - 1))
def test_numpy_pipelines_round_trip(p, seed):
    pool, _ = p.replay()
    rng = np.random.default_rng(seed)
    objs = {f"v{i}": y for i, y in enumerate(pool) if wh.is_tracked(y)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.duckdb")
        with warnings.catch_warnings():
            warnings.simplefilter("error", wh.PartialLineageWarning)  # every map kind must be storable
            wh.save(path, "r", objs)
        srcs = [(n, np.shape(v)) for n, v in p.sources]
        with wh.open(path) as store:
            run = store["r"]
            assert run.objects() == sorted(objs)
            for i in p.output_indices():
                name = f"v{i}"
                if name in objs:
                    check_same(objs[name], run[name], rng, f"{name}\n{p.script()}", srcs)


# ----------------------------------------------------------------------------------------------------------
# pandas: the random pipelines of the tabular oracle tests, sources read from CSV files
# ----------------------------------------------------------------------------------------------------------

@cfg(30)
@given(st.data(), st.integers(0, 2**31 - 1))
def test_pandas_pipelines_round_trip(data, seed):
    import pandas as pd
    import tabular_strategies as T
    import whence.tabular  # noqa: F401
    p = data.draw(T.pipelines(csv=True, max_len=5, terminal=0.4))
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, df in p.sources.items():
            paths[name] = os.path.join(tmp, f"{name}.csv")
            df.to_csv(paths[name], index=False)
        wh.reset()
        ns = {"pd": pd, "np": np}
        for name in p.sources:
            ns[name] = wh.read_csv(paths[name], name=name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for var, code, _ in p.lines:
                exec(code, ns)  # noqa: S102  (the pipeline's own pandas code)
        final = ns[p.final]
        path = os.path.join(tmp, "run.duckdb")
        wh.save(path, "etl", out=final)
        srcs = [(n, ns[n].shape) for n in p.sources]
        with wh.open(path) as store:
            h = store["etl"]["out"]
            if isinstance(final, pd.DataFrame):
                assert h.kind == "frame" and h.columns == [str(c) for c in final.columns]
            check_same(final, h, rng, p.script(), srcs)
            n = h.shape[0] if h.shape else 0
            for r in sorted({int(rng.integers(n)) for _ in range(3)}) if n else ():
                a, b = wh.trace_to_file(final, row=r), wh.trace_to_file(h, row=r)
                assert list(a) == list(b) and a.complete == b.complete, p.script()


# ----------------------------------------------------------------------------------------------------------
# the credit case study
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def credit(tmp_path_factory):
    from whence.datasets import credit_risk, credit_risk_etl
    d = tmp_path_factory.mktemp("credit")
    wh.reset()
    files = credit_risk(1500, seed=3, path=d)
    apps, bureau, prev = files.read()
    X, y, names, df = credit_risk_etl(apps, bureau, prev, return_frame=True)
    path = d / "credit.duckdb"
    wh.save(path, "etl", X=X, y=y, df=df)
    return {"X": X, "y": y, "df": df, "path": path, "files": files, "bureau": bureau}


def test_credit_round_trip(credit):
    rng = np.random.default_rng(0)
    X, df = credit["X"], credit["df"]
    with wh.open(credit["path"]) as store:
        run = store["etl"]
        assert run.objects() == ["X", "df", "y"]
        assert run.sources() == ["application", "bureau", "previous_application"]
        Xh = run["X"]
        assert Xh.kind == "array" and run["df"].kind == "frame" and run["df"].columns == list(map(str, df.columns))
        for r in [0, 7, X.shape[0] - 1]:
            a, b = wh.trace_to_file(X, row=r), wh.trace_to_file(Xh, row=r)
            assert list(a) == list(b) and len(b) >= 1
            assert all(s.line is not None for s in b)
        check_same(X, Xh, rng, "credit X", [("bureau", credit["bureau"].shape)])
        check_same(df, run["df"], rng, "credit df")
        for rows in ([3], [0, 10, 200]):
            assert np.array_equal(wh.forward("bureau", X, rows=rows), wh.forward(run["bureau"], Xh, rows=rows))
            assert np.array_equal(wh.forward("bureau", X, rows=rows), wh.forward("bureau", Xh, rows=rows))
        same_result(wh.backward(df, rows=[4]), wh.backward(run["df"], rows=[4]))
        src = store.sql("SELECT name, path, size, sha256, n_rows FROM sources ORDER BY name")
        import hashlib
        for _, r in src.iterrows():
            data = pathlib.Path(r["path"]).read_bytes()
            assert r["size"] == len(data) and r["sha256"] == hashlib.sha256(data).hexdigest()
        assert src["n_rows"].tolist() == [len(pd_read(p)) for p in src["path"]]


def pd_read(p):
    import pandas as pd
    return pd.read_csv(p)


def test_credit_trace_without_the_files(credit, tmp_path):
    """The store answers trace_to_file (lines included) after the source files are gone."""
    import shutil
    copy = tmp_path / "moved.duckdb"
    shutil.copy(credit["path"], copy)
    code = textwrap.dedent(f"""
        import whence as wh, json
        s = wh.open({str(copy)!r})
        t = wh.trace_to_file(s["etl"]["X"], row=7)
        print(json.dumps([[r.table, r.row, r.line] for r in t]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": _pythonpath()}, cwd=tmp_path)
    got = json.loads(out.stdout)
    exp = [[r.table, r.row, r.line] for r in wh.trace_to_file(credit["X"], row=7)]
    assert got == exp


# ----------------------------------------------------------------------------------------------------------
# several runs, overwrite, SQL
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture
def small(tmp_path):
    wh.reset()
    a = wh.track(np.arange(24.0).reshape(4, 6), name="a")
    b = wh.track(np.arange(6.0), name="b")
    y = np.cumsum(a * b, axis=1)[::2, 1:]
    z = np.sort(a, axis=1)[a[:, 0] > 5]
    return {"a": a, "b": b, "y": y, "z": z, "path": tmp_path / "s.duckdb"}


def test_several_runs_and_overwrite(small):
    path = small["path"]
    wh.save(path, "first", y=small["y"])
    wh.save(path, "second", z=small["z"], y=small["y"])
    with pytest.raises(StoreError, match="already in"):
        wh.save(path, "first", z=small["z"])
    with wh.open(path) as store:
        assert store.runs() == ["first", "second"]
        assert store["first"].objects() == ["y"]
    wh.save(path, "first", objects={"the z": small["z"]}, overwrite=True)
    with wh.open(path) as store:
        assert store["first"].objects() == ["the z"]
        same_result(wh.backward(small["z"], (0, 1)), wh.backward(store["first"]["the z"], (0, 1)))
        counts = store.sql("SELECT run, count(*) AS n FROM nodes GROUP BY run ORDER BY run")
        assert counts["run"].tolist() == ["first", "second"]


def test_open_handle_survives_a_save_in_the_same_process(small):
    path = small["path"]
    wh.save(path, "one", y=small["y"])
    store = wh.open(path)
    h = store["one"]["y"]
    wh.save(path, "two", z=small["z"])  # the reader's connection is released and comes back
    same_result(wh.backward(small["y"], (1, 2)), wh.backward(h, (1, 2)))
    assert store.runs() == ["one", "two"]
    store.close()


def test_stale_handle_after_overwrite_is_an_error(small):
    path = small["path"]
    wh.save(path, "r", z=small["z"])
    store = wh.open(path)
    h = store["r"]["z"]
    wh.save(path, "r", z=small["z"] + 1, overwrite=True)
    with pytest.raises(StoreError, match="overwritten"):
        wh.backward(h, (0, 0))  # its sort permutation is read lazily, and the run it belonged to is gone
    fresh = store["r"]["z"]  # asking the store again gives the new run
    same_result(wh.backward(small["z"] + 1, (0, 0)), wh.backward(fresh, (0, 0)))
    store.close()


def test_sql_tables_and_rectangles(small):
    path = small["path"]
    wh.save(path, "r", y=small["y"])
    with wh.open(path) as store:
        for t in ("whence_meta", "runs", "objects", "nodes", "edges", "rectangles", "arrays", "sources"):
            store.sql(f"SELECT * FROM {t} LIMIT 1")
        meta = dict(store.sql("SELECT key, value FROM whence_meta").values.tolist())
        assert meta["format"] == "whence-lineage-store" and meta["schema_version"] == str(wh.store.SCHEMA_VERSION)
        ops = store.sql("SELECT op FROM nodes WHERE run = 'r' ORDER BY node")["op"].tolist()
        assert ops == ["source", "source", "multiply", "cumsum", "getitem"]
        # the cumsum is one rectangle to its input: output (i, j) <- input (i, 0..j); its input is the product
        # a * b, or a itself (and one more row, to b) when the product, gone, was composed into it
        r = store.sql("SELECT out_lo, out_hi, lo_ax, lo_off, hi_ax, hi_mul, hi_off FROM rectangles r JOIN nodes n "
                      "ON r.run = n.run AND r.node = n.node WHERE n.op = 'cumsum' AND r.parent IN "
                      "(SELECT node FROM nodes WHERE run = 'r' AND (source = 'a' OR op = 'multiply'))")
        assert len(r) == 1
        row = r.iloc[0]
        assert list(row["lo_ax"]) == [0, -1] and list(row["hi_ax"]) == [0, 1] and list(row["hi_off"]) == [0, 0]
        edges = store.sql("SELECT count(*) AS n FROM edges WHERE run = 'r'")["n"][0]
        assert edges == 4
        with pytest.raises(StoreError, match="SQL error"):
            store.sql("SELECT nope FROM nodes")
        with pytest.raises(StoreError):
            store.sql("DELETE FROM nodes")  # the store is opened read-only


@cfg(40)
@given(S.pipelines(ops=("unary", "binary", "reduce", "cumulative", "matmul", "slice", "view", "viewchain", "sort",
                        "fancy", "mask", "where", "center"), max_steps=8), st.integers(0, 2**31 - 1))
def test_backward_as_sql_equals_backward(p, seed):
    pool, _ = p.replay()
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "q.duckdb")
        i = len(pool) - 1
        y = pool[i]
        if not wh.is_tracked(y):
            return
        wh.save(path, "r", y=y)
        with wh.open(path) as store:
            h = store["r"]["y"]
            size = int(np.prod(h.shape)) if h.shape else 1
            if not size:
                return
            if any(kind is None for _, kind in wh.store.sql_plan(h)):
                with pytest.raises(wh.LineageQueryError, match="no SQL form"):
                    wh.store.backward_sql(h, tuple(0 for _ in h.shape))
                return
            for _ in range(3):
                cell = tuple(int(rng.integers(d)) for d in h.shape)
                exp = wh.backward(y, cell)
                got = wh.store.backward_sql(h, cell)
                assert sorted(got) == sorted(exp), p.script()
                for k in exp:
                    assert np.array_equal(got[k], exp[k]), f"{k} at {cell}\n{p.script()}"


# ----------------------------------------------------------------------------------------------------------
# arrays beside the store
# ----------------------------------------------------------------------------------------------------------

def test_large_index_arrays_go_to_parquet_beside(tmp_path):
    wh.reset()
    rng = np.random.default_rng(1)
    a = wh.track(rng.random((300, 40)), name="a")
    y = np.sort(a, axis=0)[a[:, 0] > 0.2]
    path = tmp_path / "big.duckdb"
    wh.save(path, "r", y=y, inline_limit=1024)
    beside = sorted((tmp_path / "big.duckdb.arrays").iterdir())
    assert beside and all(f.suffix == ".parquet" for f in beside)
    with wh.open(path) as store:
        codecs = set(store.sql("SELECT codec FROM arrays")["codec"])
        assert "parquet" in codecs
        same_result(wh.backward(y, (3, 5)), wh.backward(store["r"]["y"], (3, 5)))
    for f in beside:
        f.unlink()
    with wh.open(path) as store:
        with pytest.raises(StoreError, match="missing"):
            wh.backward(store["r"]["y"], (3, 5))
    # overwriting the run removes its old files
    wh.save(path, "r", y=y, inline_limit=1024, overwrite=True)
    assert len(list((tmp_path / "big.duckdb.arrays").iterdir())) == len(beside)


# ----------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------

def test_bad_input_to_save(small, tmp_path):
    path = small["path"]
    with pytest.raises(ValueError, match="run name"):
        wh.save(path, "", y=small["y"])
    with pytest.raises(ValueError, match="nothing to save"):
        wh.save(path, "r")
    with pytest.raises(wh.NotTrackedError, match="can be saved"):
        wh.save(path, "r", y=np.ones(3))
    with pytest.raises(StoreError, match="directory"):
        wh.save(tmp_path, "r", y=small["y"])
    with pytest.raises(ValueError, match="twice"):
        wh.save(path, "r", objects={"y": small["y"]}, y=small["y"])
    assert not path.exists()  # nothing was written by the failed calls


def test_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError):
        wh.open(tmp_path / "missing.duckdb")
    txt = tmp_path / "notes.duckdb"
    txt.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(StoreError, match="not a whence store: it is a text file, not a DuckDB database") as e:
        wh.open(txt)
    assert "in-memory" not in str(e.value)  # none of DuckDB's own wording about how it tried
    csv = tmp_path / "table.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(StoreError, match="wh.read_csv"):
        wh.open(csv)
    with pytest.raises(StoreError):
        wh.save(txt, "r", y=wh.track(np.ones(2), name="q") + 1)
    assert txt.read_text().startswith("hello")  # left as it was
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not a whence store"):
        wh.open(other)


def test_truncated_and_corrupted(small, tmp_path):
    path = small["path"]
    # a sort of random values: its index array is stored (z's gathers are a few runs, written as rows)
    w = np.sort(wh.track(np.random.default_rng(0).random((40, 30)), name="c"), axis=1)
    wh.save(path, "r", z=small["z"], w=w)
    data = path.read_bytes()
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreError):
        s = wh.open(cut)
        wh.backward(s["r"]["z"], (0, 0))
    garbled = tmp_path / "garbled.duckdb"
    g = bytearray(data)
    for i in range(0, len(g), 97):
        g[i] ^= 0xFF
    garbled.write_bytes(bytes(g))
    with pytest.raises(StoreError):
        s = wh.open(garbled)
        wh.backward(s["r"]["z"], (0, 0))
    # a damaged index array fails its checksum
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(data)
    con = duckdb.connect(str(bad))
    n = con.execute("SELECT count(*) FROM arrays").fetchone()[0]
    assert n >= 1
    con.execute("UPDATE arrays SET crc32 = crc32 + 1")
    con.close()
    with wh.open(bad) as s:
        with pytest.raises(StoreError, match="checksum"):
            wh.backward(s["r"]["w"], (0, 0))


def test_missing_run_and_object(small):
    path = small["path"]
    wh.save(path, "r", y=small["y"])
    with wh.open(path) as store:
        with pytest.raises(StoreKeyError, match="no run named 'nope'"):
            store["nope"]
        with pytest.raises(KeyError):
            store["nope"]
        with pytest.raises(StoreKeyError, match="no object or source named 'w'"):
            store["r"]["w"]
        assert store["r"]["a"].kind == "source"  # sources are reachable by name
    with pytest.raises(StoreError, match="closed"):
        store.runs()


def test_other_schema_version(small):
    path = small["path"]
    wh.save(path, "r", y=small["y"])
    con = duckdb.connect(str(path))
    con.execute("UPDATE whence_meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreVersionError, match="schema 99"):
        wh.open(path)
    with pytest.raises(StoreVersionError):
        wh.save(path, "r2", y=small["y"])


def test_unstorable_map_is_saved_partial_with_a_warning(small):
    from whence.graph import Node
    from whence.maps import Map

    class Strange(Map):
        kind = "strange"

        def __init__(self, out_shape, parent_shapes):
            self.out_shape, self.parent_shapes = out_shape, parent_shapes

        def backward(self, out_mask):
            return [np.broadcast_to(out_mask.any(), s).copy() for s in self.parent_shapes]

        def forward(self, k, in_mask):
            return np.full(self.out_shape, in_mask.any())

    a = small["a"]
    node = Node("strange", (2,), Strange((2,), (a.shape,)), (a._node,))
    with pytest.warns(wh.PartialLineageWarning, match="strange"):
        wh.save(small["path"], "r", s=node)
    with wh.open(small["path"]) as store:
        r = wh.backward(store["r"]["s"], (0,))
        assert not r.complete and len(r["a"]) == a.size


# ----------------------------------------------------------------------------------------------------------
# reliability: a process killed while saving, several readers
# ----------------------------------------------------------------------------------------------------------

def _pythonpath():
    src = str(pathlib.Path(wh.__file__).resolve().parents[1])
    return os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])


_SAVER = textwrap.dedent("""
    import sys, numpy as np, whence as wh
    path, run, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(0)
    a = wh.track(rng.random((n, 50)), name="a")
    objs = {}
    y = a
    for i in range(40):
        y = np.sort(y, axis=0) if i % 4 == 0 else (y[rng.permutation(y.shape[0])] if i % 4 == 1 else y * 2)
        objs[f"o{i}"] = y
    print("saving", flush=True)
    wh.save(path, run, objs)
    print("saved", flush=True)
""")


def test_kill_during_save_leaves_old_state_or_whole_run(tmp_path):
    path = tmp_path / "k.duckdb"
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    subprocess.run([sys.executable, "-c", _SAVER, str(path), "base", "200"], check=True, env=env,
                   capture_output=True)
    with wh.open(path) as store:
        base_nodes = store["base"].n_nodes
    outcomes = set()
    for delay in (0.0, 0.05, 0.15, 0.3, 0.6, 1.0):
        run = f"r{int(delay * 1000)}"
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), run, "20000"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        assert line.strip() == "saving", proc.stderr.read()
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with wh.open(path) as store:
            runs = store.runs()
            assert "base" in runs and store["base"].n_nodes == base_nodes
            if run in runs:
                outcomes.add("complete")
                r = store[run]
                assert r.objects() == sorted(f"o{i}" for i in range(40))
                wh.backward(r["o39"], (5, 3))  # every array is there and readable
            else:
                outcomes.add("as before")
            n = store.sql("SELECT count(*) AS n FROM nodes WHERE run = ?".replace("?", f"'{run}'"))["n"][0]
            assert n in (0, store[run].n_nodes if run in runs else 0)
    assert "as before" in outcomes  # at least one kill landed mid-save


_READER = textwrap.dedent("""
    import sys, time, whence as wh
    s = wh.open(sys.argv[1])
    print("open", flush=True)
    time.sleep(1.0)
    r = wh.backward(s["r"]["z"], (0, 1))
    print(sorted(r), flush=True)
""")


def test_several_processes_read_at_once(small):
    path = small["path"]
    wh.save(path, "r", z=small["z"])
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    procs = [subprocess.Popen([sys.executable, "-c", _READER, str(path)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    with wh.open(path) as store:  # and this process too
        same_result(wh.backward(small["z"], (0, 1)), wh.backward(store["r"]["z"], (0, 1)))
        outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.split("\n")[1] == "['a']"


def test_writer_while_another_process_reads_is_not_blocked(small):
    """A reader holds the store open; a save lands at once, and the reader goes on answering."""
    path = small["path"]
    wh.save(path, "r", z=small["z"])
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    p = subprocess.Popen([sys.executable, "-c", _READER, str(path)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "open"
        wh.save(path, "r2", y=small["y"], lock_timeout=5)
    finally:
        out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert out.strip() == "['a']"
    with wh.open(path) as store:
        assert store.runs() == ["r", "r2"]


def test_source_file_changed_before_saving(tmp_path):
    """A file edited after it was read gets no sha256 and says why; lines computed before the edit are kept."""
    f = tmp_path / "t.csv"
    f.write_text("k,v\n1,5\n2,6\n3,7\n")
    wh.reset()
    t = wh.read_csv(f, name="t")
    y = t[t["v"] > 5]
    before = wh.trace_to_file(y, row=0)
    time.sleep(0.01)
    f.write_text("k,v\n9,9\n")
    path = tmp_path / "s.duckdb"
    wh.save(path, "r", y=y)
    with wh.open(path) as store:
        row = store.sql("SELECT sha256, line_note FROM sources").iloc[0]
        assert row["sha256"] is None and "changed" in row["line_note"]
        assert list(wh.trace_to_file(store["r"]["y"], row=0)) == list(before)


@pytest.mark.parametrize("cond", [True, False])
def test_backward_sql_through_a_0d_where_equals_backward(tmp_path, cond):
    """A 0-d ``where`` (one cell chosen from two 0-d operands): the SQL answer is the in-memory one (DuckDB 1.2
    and 1.3 once emptied the statement through its empty branch)."""
    wh.reset()
    c = wh.track(np.array(cond), name="c")
    x, y = wh.track(np.array(3.0), name="x"), wh.track(np.array(5.0), name="y")
    z = np.where(c, x, y) * 2
    path = tmp_path / "w.duckdb"
    wh.save(path, "r", z=z)
    with wh.open(path) as s:
        h = s["r"]["z"]
        got, want = wh.store.backward_sql(h, ()), wh.backward(h, ())
        assert sorted(got) == sorted(want) == ["x" if cond else "y"]
        assert all(got[k].shape == want[k].shape == (1, 0) for k in got)


@pytest.mark.parametrize("query_first", [False, True])
def test_forward_from_a_saved_intermediate_matches_the_live_answer(tmp_path, query_first):
    """A saved object's relation composed over a live intermediate that is saved too (at the save, or by a
    query before it): forward from that intermediate follows the relation before composition, in the store
    as in memory (the composed one passes over it and would answer a superset)."""
    wh.reset()
    rng = np.random.default_rng(3)
    img = wh.track(rng.uniform(50, 200, (6, 8)), name="img")
    gains = wh.track(rng.uniform(0.5, 1.5, 8), name="gains")
    calibrated = img * gains
    smooth = (calibrated[:, :-1] + calibrated[:, 1:]) / 2
    picked = np.where(smooth > 100, smooth, 0.0)
    cube = calibrated.reshape(2, 3, 8)
    live = {"smooth": smooth, "picked": picked, "cube": cube}
    if query_first:
        for t in live.values():
            wh.backward(t, (0,) * t.ndim)
    path = tmp_path / "s.duckdb"
    wh.save(path, run="r", calibrated=calibrated, **live)
    run = wh.open(path)["r"]
    for cell in [(0, 0), (4, 2), (5, 7), (2, 5)]:
        for name, t in live.items():
            want = sorted(map(tuple, np.asarray(wh.forward(calibrated, cell, t)).tolist()))
            got = sorted(map(tuple, np.asarray(wh.forward(run["calibrated"], cell, run[name])).tolist()))
            assert got == want, (cell, name)
            # backward from the composed object stays the same too
            wb = wh.backward(t, want[0]) if want else None
            if wb is not None:
                gb = wh.backward(run[name], want[0])
                assert {k: sorted(map(tuple, np.asarray(v).tolist())) for k, v in gb.items()} == \
                    {k: sorted(map(tuple, np.asarray(v).tolist())) for k, v in wb.items()}


# ----------------------------------------------------------------------------------------------------------
# gathers written as their rectangle rows
# ----------------------------------------------------------------------------------------------------------

_MOVES = {
    "roll_delete": lambda a: np.roll(np.delete(a, [5, 7001], axis=0), 1000, axis=0),
    "transpose_roll": lambda a: np.roll(a.T, 5, axis=1),
    "rot_tile": lambda a: np.tile(np.rot90(a), (1, 2)),
    "pad": lambda a: np.pad(a, ((2, 0), (0, 3))),
    "concatenate": lambda a: np.concatenate([a[::-1], a], axis=1),
}


@pytest.mark.parametrize("name", sorted(_MOVES))
def test_a_gather_its_rows_describe_is_stored_as_rows(tmp_path, name):
    """A gather whose index array is a few affine runs (a roll, a delete, a flip, a pad, a concatenate) is
    written as its rectangle rows, without its index array: the store holds no array of the gather's size,
    and every answer (cells, masks, everything, forward, SQL) is the live one."""
    from whence import compose
    from whence.maps import GatherMap

    old = compose.set_mode("off")  # the gather itself (composition would fold the moves into other forms)
    try:
        wh.reset()
        a = wh.track(np.random.default_rng(0).random((8000, 3)), name="a")
        y = _MOVES[name](a)
        m = y.node.map
        assert type(m) is GatherMap and m.rectangles() is not None, name
        path = tmp_path / "rows.duckdb"
        wh.save(path, "r", y=y)
        with wh.open(path) as store:
            arrays = store.sql("SELECT nbytes FROM arrays")["nbytes"]
            assert sum(int(v) for v in arrays) < 1000, (name, list(arrays))  # not 8 bytes per output cell
            h = store["r"]["y"]
            check_same(y, h, np.random.default_rng(1), name, [("a", a.shape)])
            for cell in [(0, 0), tuple(d - 1 for d in y.shape), tuple(d // 3 for d in y.shape)]:
                got, want = wh.store.backward_sql(h, cell), wh.backward(y, cell)
                assert sorted(got) == sorted(want) and all(
                    np.array_equal(np.asarray(got[k]), want[k]) for k in want), (name, cell)
    finally:
        compose.set_mode(old)


def test_a_gather_its_rows_do_not_describe_keeps_its_index_array(tmp_path):
    """A sort of random values has no few runs: its index array is written, and answers the same."""
    wh.reset()
    a = wh.track(np.random.default_rng(0).random(5000), name="a")
    y = np.sort(a)
    path = tmp_path / "sort.duckdb"
    wh.save(path, "r", y=y)
    with wh.open(path) as store:
        assert sum(int(v) for v in store.sql("SELECT nbytes FROM arrays")["nbytes"]) >= 4 * 5000
        check_same(y, store["r"]["y"], np.random.default_rng(1), "sort", [("a", a.shape)])
