"""The store under concurrency and faults: concurrent savers, killed saves, corrupted files, a loaded explorer.

* several processes save distinct runs at once, into a new file and into an existing one: every save that
  reports success is in the file afterwards (saves take the write lock in turn);
* a save killed (SIGKILL) at random points leaves the old runs intact and the new one whole or absent; the
  next save removes what the killed one left beside the file (temporary file, Parquet arrays);
* corrupted copies of a store (bytes flipped in DuckDB blocks, blocks overwritten, truncation, damaged
  Parquet array files) raise only :class:`~whence.errors.StoreError` subclasses, never a wrong answer, and
  never hang (the fuzz runs in a subprocess with a time limit);
* the explorer answers every request while another process saves into its store.

Counts and times are bounded: a few processes, a few dozen corrupted copies, loopback only.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

wh = pytest.importorskip("whence")
duckdb = pytest.importorskip("duckdb")



def _env():
    src = str(pathlib.Path(wh.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def _orphans(path):
    """Files a save leaves beside the store only while it runs: temporary files, unreferenced array files."""
    path = pathlib.Path(path)
    left = [p.name for p in path.parent.glob(f".{path.name}.*")]
    arrays = pathlib.Path(str(path) + ".arrays")
    if arrays.is_dir() and path.exists():
        with wh.open(path) as store:
            kept = set(store.sql("SELECT path FROM arrays WHERE path IS NOT NULL")["path"])
        left += [p.name for p in arrays.iterdir() if p.name not in kept]
    return left


# ---------------------------------------------------------------------------------------- concurrent saves
_SAVER = textwrap.dedent("""
    import sys, time, numpy as np, whence as wh
    from whence.errors import StoreError
    path, who, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    rng = np.random.default_rng(abs(hash(who)) % 2**32)
    a = wh.track(rng.random((30, 8)), name="a")
    y = np.sort(a, axis=0)[::-1] * 2
    while time.time() < start:
        time.sleep(0.005)
    for j in range(n):
        run = f"{who}-{j}"
        try:
            wh.save(path, run, y=y, progress=False, lock_timeout=60, inline_limit=0 if j % 2 else 1 << 20)
            print("saved", run, flush=True)
        except StoreError as e:
            print("error", run, type(e).__name__, e, flush=True)
""")


@pytest.mark.parametrize("existing", [False, True], ids=["new store", "existing store"])
def test_concurrent_savers_lose_no_run(tmp_path, existing):
    path = tmp_path / "c.duckdb"
    if existing:
        wh.reset()
        wh.save(path, "base", y=wh.track(np.arange(6.0), name="b") + 1, progress=False)
    start = time.time() + 2.0  # every process is past its imports by then
    procs = [subprocess.Popen([sys.executable, "-c", _SAVER, str(path), f"p{k}", "3", str(start)], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]
    saved, errors = [], []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        for line in out.splitlines():
            kind, run = line.split()[:2]
            (saved if kind == "saved" else errors).append(line if kind != "saved" else run)
    assert not errors, errors  # the lock is waited for: no saver gives up within 60 s
    assert len(saved) == 12
    with wh.open(path) as store:
        runs = store.runs()
        for run in saved:
            assert run in runs
            r = wh.backward(store[run]["y"], (0, 1))
            assert sorted(r) == ["a"] and len(r["a"]) == 1
        if existing:
            assert "base" in runs
    assert _orphans(path) == []


def test_a_save_waits_for_the_lock_for_lock_timeout(tmp_path):
    """A save finds the write lock held (another process saving) and gives up after lock_timeout, with a
    StoreLockedError, leaving the store as it was."""
    import filelock
    from whence.errors import StoreLockedError
    path = tmp_path / "l.duckdb"
    wh.reset()
    a = wh.track(np.arange(4.0), name="a")
    wh.save(path, "r", y=a + 1, progress=False)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import filelock, sys, time
        with filelock.FileLock({str(path) + '.lock'!r}):
            print("held", flush=True)
            sys.stdin.readline()
    """)], env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(StoreLockedError, match="within 0.5 s"):
            wh.save(path, "r2", y=a * 2, progress=False, lock_timeout=0.5)
        assert 0.4 < time.monotonic() - t0 < 10
    finally:
        holder.communicate("done\n", timeout=30)
    with wh.open(path) as store:
        assert store.runs() == ["r"]
    wh.save(path, "r2", y=a * 2, progress=False, lock_timeout=5)  # free again
    assert isinstance(filelock.FileLock(str(path) + ".lock"), filelock.BaseFileLock)


# ---------------------------------------------------------------------------------------- killed saves
_BIG_SAVER = textwrap.dedent("""
    import sys, numpy as np, whence as wh
    path, run, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(0)
    a = wh.track(rng.random((n, 20)), name="a")
    objs, y = {}, a
    for i in range(24):
        y = np.sort(y, axis=0) if i % 3 == 0 else (y[rng.permutation(y.shape[0])] if i % 3 == 1 else y + 1)
        objs[f"o{i}"] = y
    print("saving", flush=True)
    wh.save(path, run, objs, progress=False, inline_limit=4096)
    print("saved", flush=True)
""")


def test_sigkill_at_random_points_of_a_save(tmp_path):
    path = tmp_path / "k.duckdb"
    subprocess.run([sys.executable, "-c", _BIG_SAVER, str(path), "base", "300"], check=True, env=_env(),
                   capture_output=True)
    with wh.open(path) as store:
        base = wh.backward(store["base"]["o23"], (7, 3))
    rng = random.Random(17)
    outcomes = []
    for k in range(5):
        run = f"k{k}"
        proc = subprocess.Popen([sys.executable, "-c", _BIG_SAVER, str(path), run, "30000"], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "saving", proc.stderr.read()
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with wh.open(path) as store:
            runs = store.runs()
            assert "base" in runs
            r = wh.backward(store["base"]["o23"], (7, 3))
            assert sorted(r) == sorted(base) and all(np.array_equal(r[s], base[s]) for s in r)
            if run in runs:
                outcomes.append("whole")
                assert store[run].objects() == sorted(f"o{i}" for i in range(24))
                wh.backward(store[run]["o23"], (5, 3))  # every array there and readable
            else:
                outcomes.append("absent")
    # what the killed saves left beside the file is gone after the next save
    wh.reset()
    wh.save(path, "after", y=wh.track(np.ones(3), name="z") + 1, progress=False)
    assert _orphans(path) == []
    assert "absent" in outcomes  # at least one kill landed mid-save


# ---------------------------------------------------------------------------------------- corruption fuzz
_FUZZ = textwrap.dedent("""
    import json, os, random, shutil, sys, numpy as np, whence as wh
    from whence.errors import StoreError
    src, work, cases, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    truth = json.load(open(sys.argv[5]))
    rng = random.Random(seed)
    stats = {"store_errors": 0, "right": 0, "wrong": 0, "other": []}
    arrays = src + ".arrays"
    parquet = sorted(os.listdir(arrays))

    def answers(path):
        out = {}
        with wh.open(path) as store:
            for key in truth:
                run, name, cell = key.split("|")
                r = wh.backward(store[run][name], tuple(int(v) for v in cell.split(",")))
                out[key] = {s: np.asarray(r[s]).tolist() for s in sorted(r)}
        return out

    for i in range(cases):
        d = os.path.join(work, f"c{i}")
        os.makedirs(d)
        p = os.path.join(d, "s.duckdb")
        shutil.copyfile(src, p)
        shutil.copytree(arrays, p + ".arrays")
        kind = rng.choice(["flip", "flip", "block", "truncate", "parquet_flip", "parquet_truncate"])
        if kind in ("flip", "block", "truncate"):
            data = bytearray(open(p, "rb").read())
            if kind == "flip":
                for _ in range(rng.randint(1, 8)):
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            elif kind == "block":
                b = rng.randrange(len(data) // 4096)
                data[b * 4096:(b + 1) * 4096] = bytes(rng.randrange(256) for _ in range(4096))
            else:
                data = data[: rng.randrange(len(data))]
            open(p, "wb").write(bytes(data))
        else:
            f = os.path.join(p + ".arrays", rng.choice(parquet))
            data = bytearray(open(f, "rb").read())
            if kind == "parquet_flip":
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            else:
                data = data[: rng.randrange(len(data))]
            open(f, "wb").write(bytes(data))
        try:
            got = answers(p)
        except StoreError:
            stats["store_errors"] += 1
        except Exception as e:
            stats["other"].append(f"{kind}: {type(e).__name__}: {str(e)[:200]}")
        else:
            stats["right" if got == truth else "wrong"] += 1
        shutil.rmtree(d)
    print(json.dumps(stats), flush=True)
""")


def test_corruption_fuzz_only_store_errors_no_wrong_answer_no_hang(tmp_path):
    wh.reset()
    rng = np.random.default_rng(5)
    a = wh.track(rng.random((40, 6)), name="a")
    b = wh.track(rng.random(6), name="b")
    s = np.sort(a * b, axis=0)
    m = s[s[:, 0] > 0.3]
    c = np.cumsum(a, axis=1)[rng.permutation(40)]
    path = tmp_path / "f.duckdb"
    wh.save(path, "inline", s=s, c=c, progress=False)
    wh.save(path, "parquet", m=m, c=c, progress=False, inline_limit=0)  # index arrays in Parquet files
    truth = {}
    for run, name, obj in [("inline", "s", s), ("inline", "c", c), ("parquet", "m", m), ("parquet", "c", c)]:
        for cell in [(0, 0), (obj.shape[0] - 1, 3), (obj.shape[0] // 2, 5)]:
            r = wh.backward(obj, cell)
            truth[f"{run}|{name}|{cell[0]},{cell[1]}"] = {k: np.asarray(r[k]).tolist() for k in sorted(r)}
    tj = tmp_path / "truth.json"
    tj.write_text(json.dumps(truth))
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", _FUZZ, str(path), str(work), "60", "3", str(tj)], env=_env(),
                          capture_output=True, text=True, timeout=240)  # a hang fails here
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    print("corruption fuzz:", stats)
    assert stats["other"] == [], stats["other"]
    assert stats["wrong"] == 0, stats
    assert stats["store_errors"] + stats["right"] == 60
    assert stats["store_errors"] > 0  # the damage was seen


def test_error_classes_say_what_happened(tmp_path):
    from whence.errors import (NotAStoreError, StoreArrayMissingError, StoreCorruptError, StoreKeyError,
                               StoreVersionError)
    wh.reset()
    a = wh.track(np.random.default_rng(0).permutation(20).astype(float), name="a")
    path = tmp_path / "e.duckdb"
    wh.save(path, "r", y=np.sort(a)[::-1], progress=False, inline_limit=0)
    txt = tmp_path / "t.duckdb"
    txt.write_text("not a database\n" * 100)
    with pytest.raises(NotAStoreError):
        wh.open(txt)
    other = tmp_path / "o.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(NotAStoreError, match="not a whence store"):
        wh.open(other)
    with wh.open(path) as store:
        with pytest.raises(StoreKeyError):
            store["nope"]
    # a corruption message may contain "block": it is not a lock
    data = bytearray(path.read_bytes())
    bad = tmp_path / "b.duckdb"
    for off in range(4096, len(data), 4096):
        data[off + 100] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError) as e:
        s = wh.open(bad)
        s["r"]["y"].backward((0,))
    assert "another process" not in str(e.value)
    shutil.rmtree(str(path) + ".arrays")
    with wh.open(path) as store:
        with pytest.raises(StoreArrayMissingError, match="copy the .arrays folder"):
            wh.backward(store["r"]["y"], (0,))
    con = duckdb.connect(str(path))
    con.execute("UPDATE whence_meta SET value = '7' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreVersionError):
        wh.open(path)


# ---------------------------------------------------------------------------------------- explorer
_WRITER = textwrap.dedent("""
    import sys, numpy as np, whence as wh
    path, n = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(2)
    print("ready", flush=True)
    for i in range(n):
        wh.reset()
        a = wh.track(rng.random((20, 5)), name="w")
        wh.save(path, f"w{i}", y=np.cumsum(np.sort(a, axis=1), axis=0), progress=False, lock_timeout=60)
        print("saved", i, flush=True)
""")


def test_explorer_answers_every_request_while_a_process_saves(tmp_path):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from whence.web.server import running
    wh.reset()
    rng = np.random.default_rng(4)
    a = wh.track(rng.random((12, 7)), name="a")
    y = np.sort(a, axis=1)[:, ::-1] + np.cumsum(a, axis=0)
    path = tmp_path / "x.duckdb"
    wh.save(path, "base", y=y, progress=False)
    cells = [(int(i), int(j)) for i, j in zip(rng.integers(0, 12, 20), rng.integers(0, 7, 20))]
    truth = {c: wh.backward(y, c)["a"].tolist() for c in cells}
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), "12"], env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    failures, answered = [], [0]
    with running(path) as url:
        assert writer.stdout.readline().strip() == "ready"

        def client():
            with httpx.Client(base_url=url, timeout=30) as c:
                k = 0
                while writer.poll() is None or k < 5:
                    cell = cells[k % len(cells)]
                    k += 1
                    for p in (f"/api/runs/base/objects/y/backward?cell={cell[0]},{cell[1]}", "/api/runs",
                              "/api/runs/base/graph"):
                        r = c.get(p)
                        if r.status_code != 200:
                            failures.append((p, r.status_code, r.text[:300]))
                        elif "backward" in p and r.json()["sources"][0]["cells"] != truth[cell]:
                            failures.append((p, "wrong cells"))
                        answered[0] += 1

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        with httpx.Client(base_url=url) as c:
            runs = [r["run"] for r in c.get("/api/runs").json()]
    assert failures == []
    assert answered[0] > 20
    assert sum(1 for ln in out.splitlines() if ln.startswith("saved")) == 12
    assert runs == ["base"] + [f"w{i}" for i in range(12)]


def test_explorer_maps_store_errors_to_documented_codes(tmp_path):
    pytest.importorskip("fastapi")
    from whence.web.app import STORE_ERROR_STATUS, create_app
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    wh.reset()
    a = wh.track(np.random.default_rng(1).permutation(8).astype(float), name="a")
    path = tmp_path / "m.duckdb"
    wh.save(path, "r", y=np.sort(a), progress=False, inline_limit=0)
    c = TestClient(create_app(path), raise_server_exceptions=False)
    assert c.get("/api/runs/nope").status_code == 404
    shutil.rmtree(str(path) + ".arrays")  # an array file gone
    r = c.get("/api/runs/r/objects/y/backward", params={"cell": "3"})
    assert r.status_code == 409 and r.json()["error"] == "StoreArrayMissingError", r.text
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0garbage" * 5000)
    os.replace(junk, path)  # the file replaced by something else: the next request reads it
    r = c.get("/api/runs")
    assert r.status_code == 409 and r.json()["error"] in ("NotAStoreError", "StoreCorruptError"), r.text
    assert set(STORE_ERROR_STATUS.values()) <= {404, 409, 503}


def test_host_allow_list_accepts_the_loopback_address_served(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    import uvicorn
    import whence.web.app as web_app
    from whence.web.server import host_names, serve
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    wh.reset()
    path = tmp_path / "h.duckdb"
    wh.save(path, "r", y=wh.track(np.ones(2), name="a") + 1, progress=False)
    made = {}
    real = web_app.create_app

    def spy(store_path, *, allowed_hosts=None):
        made["hosts"] = allowed_hosts
        return real(store_path, allowed_hosts=allowed_hosts)

    monkeypatch.setattr(web_app, "create_app", spy)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    serve(path, host="127.0.0.2", port=0, announce=False)
    assert "127.0.0.2" in made["hosts"]
    import starlette
    cases = [("127.0.0.2", "127.0.0.2:8000"), ("127.0.0.1", "127.0.0.1"), ("::1", "[::1]:80"),
             ("127.1.2.3", "127.1.2.3"), ("localhost", "localhost:1")]
    if tuple(int(v) for v in starlette.__version__.split(".")[:2]) < (0, 40):
        cases.remove(("::1", "[::1]:80"))  # an older test client cannot parse a bracketed IPv6 host
    for host, header in cases:
        c = TestClient(real(path, allowed_hosts=host_names(host)), base_url=f"http://{header}")
        assert c.get("/api/runs").status_code == 200, host
        assert TestClient(real(path, allowed_hosts=host_names(host)),
                          base_url="http://evil.example").get("/api/runs").status_code == 400


def test_bad_lock_timeout_is_a_clear_error_and_writes_nothing(tmp_path):
    wh.reset()
    a = wh.track(np.arange(3.0), name="a")
    for bad in (-1, "10", True, float("nan")):
        with pytest.raises(ValueError, match="lock_timeout"):
            wh.save(tmp_path / "b.duckdb", "r", y=a + 1, lock_timeout=bad, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_log_left_beside_the_store_is_kept_by_the_next_save(tmp_path):
    """A program that wrote the store in place and stopped left committed changes in ``<store>.wal``: the next
    save carries them into the new file and removes the log."""
    wh.reset()
    path = tmp_path / "w.duckdb"
    wh.save(path, "r", y=wh.track(np.arange(4.0), name="a") + 1, progress=False)
    subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, os
        c = duckdb.connect({str(path)!r})
        c.execute("SET checkpoint_threshold = '1TB'")
        c.execute("INSERT INTO results VALUES ('r', 'note', 'table', '{{}}')")
        os._exit(0)  # no checkpoint: the insert is only in the log
    """)], check=True, env=_env())
    assert pathlib.Path(str(path) + ".wal").exists()
    wh.save(path, "r2", y=wh.track(np.arange(3.0), name="b") * 2, progress=False)
    assert not pathlib.Path(str(path) + ".wal").exists()
    with wh.open(path) as store:
        assert store.runs() == ["r", "r2"]
        assert [x["name"] for x in store["r"].results()] == ["note"]
