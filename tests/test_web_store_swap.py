"""The explorer's store access across saves: a new file opened off the event loop and swapped in when ready,
requests meanwhile answered from the previous file, runs left alone by a save carried over, a file that changed
twice never replaced by its older version; and the server-side timings endpoint.

The open is held on an event in these tests, so that what is served while it runs is checked step by step
(no timing, no sleeps).
"""

from __future__ import annotations

import asyncio
import threading
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("duckdb")

import whence as wh  # noqa: E402
from whence.web.app import _StoreAccess, create_app  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402


def _save(path, run, seed):
    wh.reset()
    a = wh.track(np.random.default_rng(seed).random((4, 3)), name="a")
    wh.save(path, run, y=np.cumsum(np.sort(a, axis=1), axis=0), progress=False)


class _HeldOpens(_StoreAccess):
    """Opens wait for their event to be set (after the first, done at construction)."""

    def __init__(self, path):
        self.gates = []
        super().__init__(path)

    def _open(self, ident):
        if self.store is not None:
            gate = threading.Event()
            self.gates.append(gate)
            assert gate.wait(30)
        return super()._open(ident)


async def _until(pred):
    for _ in range(3000):
        if pred():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not reached")


def test_a_new_file_is_opened_aside_and_swapped_in_when_ready(tmp_path):
    path = tmp_path / "s.duckdb"
    _save(path, "r", 0)
    access = _HeldOpens(path)

    async def scenario():
        first = await access.get()
        g = first["r"]._nodes()  # a run read before the save
        assert first.runs() == ["r"]
        _save(path, "s", 1)
        waiting = asyncio.ensure_future(access.get())  # sees the new file: opens it, and waits for it
        await _until(lambda: len(access.gates) == 1)
        assert not waiting.done()
        meanwhile = await access.get()  # another request while it opens: the previous file
        assert meanwhile is first and meanwhile.runs() == ["r"]
        access.gates[0].set()
        new = await waiting
        assert new is not first and new.runs() == ["r", "s"]
        assert new["r"]._nodes() is g  # the run the save left alone: its graph carried over
        assert await access.get() is new
        return access.opened

    assert asyncio.run(scenario()) == 2


def test_a_file_changed_twice_is_never_replaced_by_its_older_version(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from whence.web import app as app_module
    pool = ThreadPoolExecutor(2)  # two opens at once, so that the newer can finish first
    monkeypatch.setattr(app_module, "_opener", lambda: pool)
    path = tmp_path / "s.duckdb"
    _save(path, "r", 0)
    access = _HeldOpens(path)

    async def scenario():
        await access.get()
        _save(path, "s", 1)
        older = asyncio.ensure_future(access.get())
        await _until(lambda: len(access.gates) == 1)
        _save(path, "t", 2)
        newer = asyncio.ensure_future(access.get())
        await _until(lambda: len(access.gates) == 2)
        access.gates[1].set()  # the newer file opens first
        assert (await newer).runs() == ["r", "s", "t"]
        access.gates[0].set()
        await older
        assert (await access.get()).runs() == ["r", "s", "t"]

    asyncio.run(scenario())
    pool.shutdown()


def test_a_failed_open_is_reported_to_the_request_that_waited_and_retried(tmp_path):
    path = tmp_path / "s.duckdb"
    _save(path, "r", 0)
    c = TestClient(create_app(path), raise_server_exceptions=False)
    assert c.get("/api/runs").status_code == 200
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0garbage" * 5000)
    junk.replace(path)
    for _ in range(2):  # each request that finds the file changed tries again, and says what it found
        r = c.get("/api/runs")
        assert r.status_code == 409 and r.json()["error"] in ("NotAStoreError", "StoreCorruptError"), r.text
    path.unlink()
    _save(path, "again", 3)
    assert [x["run"] for x in c.get("/api/runs").json()] == ["again"]


def test_server_timings_count_the_requests_by_kind(tmp_path):
    path = tmp_path / "s.duckdb"
    _save(path, "r", 0)
    c = TestClient(create_app(path))
    before = c.get("/api/server/timings").json()
    for cell in ("0,0", "3,2", "1,1"):
        assert c.get("/api/runs/r/objects/y/backward", params={"cell": cell}).status_code == 200
    assert c.get("/api/runs/r/graph").status_code == 200
    _save(path, "s", 1)
    assert c.get("/api/runs/s/graph").status_code == 200
    t = c.get("/api/server/timings", params={"requests_since": before["requests"]["count"],
                                             "store_opens_since": before["store_opens"]["count"]}).json()
    req = t["requests"]
    assert req["n"] == 6  # the five above and the first timings request
    assert req["by_kind"]["backward"]["n"] == 3 and req["by_kind"]["graph"]["n"] == 2
    assert 0 <= req["p50_ms"] <= req["p99_ms"] <= req["max_ms"]
    assert t["store_opens"]["n"] == 1 and t["store_files_opened"] == 2
    assert t["loop_lag"]["n"] == 0  # the probe runs under whence.web.serve only
