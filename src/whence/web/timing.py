"""Server-side timings of the explorer: how long each request spent in the app, how late the event loop ran,
and how long opening a newly saved store file took (``GET /api/server/timings``).

A client measures the time from sending a request to reading its answer: that includes the time the request
waited in the machine's queues (the server's socket, the event loop busy with other requests, a process
descheduled because the cores are shared).  The server measures what it controls:

``requests``
    per request, from the moment the app is called to the moment the last byte of the answer is handed to the
    server (uvicorn), wall-clock; by kind of request (the last part of the path: ``graph``, ``backward``,
    ``forward``, ``trace``, ...).
``loop_lag``
    (under :func:`whence.web.serve`) a probe that asks the event loop to wake it every 10 ms and records how late it woke, with the CPU time
    the loop's thread used meanwhile: a late wake with little CPU used means the thread was not running (the
    machine's other processes, or a thread of this process holding the interpreter), not that a request was
    slow.
``store_opens``
    the time to open a store file a save put in place (off the event loop, see :mod:`whence.web.app`).

Each series keeps its last ``capacity`` values; a client asks for the values recorded after sequence number
``since`` (the ``count`` of an earlier answer), so that one load phase can be measured on its own.

Examples
--------
>>> t = Series(capacity=4)
>>> for v in (1.0, 2.0, 3.0, 50.0, 5.0):
...     t.add(v)
>>> s = t.summary(since=1)
>>> s["count"], s["n"], s["max_ms"], s["p50_ms"]
(5, 4, 50.0, 4.0)
>>> t.summary(since=0)["n"]  # only the last 4 are kept
4
"""

import asyncio
import threading
import time

import numpy as np

__all__ = ["Series", "ServerTimings", "TimingMiddleware"]

_QUANTILES = (50, 90, 99, 99.9)


class Series:
    """The last ``capacity`` values (milliseconds) of one measured quantity, with the total count so far."""

    def __init__(self, capacity=1 << 17):
        self.capacity = int(capacity)
        self.values = np.zeros(self.capacity, np.float64)
        self.tags = np.zeros(self.capacity, np.int16)
        self.count = 0
        self._lock = threading.Lock()

    def add(self, ms, tag=0):
        with self._lock:
            i = self.count % self.capacity
            self.values[i] = ms
            self.tags[i] = tag
            self.count += 1

    def _since(self, since):
        with self._lock:
            n = self.count
            k = max(0, min(n - int(since), self.capacity, n))
            idx = (np.arange(n - k, n) % self.capacity) if k else np.zeros(0, np.int64)
            return n, self.values[idx].copy(), self.tags[idx].copy()

    @staticmethod
    def _stats(v):
        out = {"n": int(len(v))}
        if len(v):
            for q, x in zip(_QUANTILES, np.percentile(v, _QUANTILES)):
                out[f"p{q:g}_ms"] = round(float(x), 3)
            out["max_ms"] = round(float(v.max()), 3)
            out["mean_ms"] = round(float(v.mean()), 3)
        return out

    def summary(self, since=0, names=None):
        """Count so far, and quantiles of the values recorded after the ``since``-th (per tag with ``names``)."""
        n, v, tags = self._since(since)
        out = {"count": n, **self._stats(v)}
        if names is not None:
            out["by_kind"] = {name: self._stats(v[tags == t]) for t, name in enumerate(names) if (tags == t).any()}
        return out


class ServerTimings:
    """The explorer's timing series (see the module's docstring)."""

    KINDS = ("other", "graph", "backward", "forward", "trace", "ops", "runs", "results", "objects")

    def __init__(self, capacity=1 << 17):
        self.probe = False  # the loop-lag probe runs where set (whence.web.serve: one loop for the server's life)
        self.requests = Series(capacity)
        self.loop_lag = Series(capacity)
        self.loop_lag_cpu = Series(capacity)
        self.store_opens = Series(4096)
        self._kind = {k: i for i, k in enumerate(self.KINDS)}
        self._probe = None

    def kind_of(self, path):
        parts = path.rstrip("/").split("/")
        k = self._kind.get(parts[-1])
        if k is None and len(parts) >= 2:
            k = self._kind.get(parts[-2])  # /ops/{node}, /objects/{name}, /results/{name}
        return k or 0

    def start_probe(self, period=0.010):
        """Start the event-loop lag probe on the running loop (once)."""
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._lag_probe(period))

    async def _lag_probe(self, period):
        while True:
            t0, c0 = time.perf_counter(), time.thread_time()
            await asyncio.sleep(period)
            t1, c1 = time.perf_counter(), time.thread_time()
            self.loop_lag.add(max(0.0, (t1 - t0 - period) * 1e3))
            self.loop_lag_cpu.add((c1 - c0) * 1e3)

    def summary(self, since=None):
        """JSON-ready quantiles; ``since``: the ``count`` values of an earlier summary, per series."""
        since = since or {}
        lag = self.loop_lag.summary(since.get("loop_lag", 0))
        n, v, _ = self.loop_lag._since(since.get("loop_lag", 0))
        _, cpu, _ = self.loop_lag_cpu._since(since.get("loop_lag", 0))
        m = min(len(v), len(cpu))
        late = v[-m:] > 20.0 if m else np.zeros(0, bool)
        # of the wake-ups more than 20 ms late, how many had the loop's thread use under half of the time
        # elapsed: the thread was waiting for a core (or for the interpreter), not running a request
        elapsed = v[-m:] + 10.0
        lag["late_20ms"] = int(late.sum())
        lag["late_20ms_not_running"] = int((late & (cpu[-m:] < elapsed / 2)).sum()) if m else 0
        return {"requests": self.requests.summary(since.get("requests", 0), self.KINDS),
                "loop_lag": lag,
                "store_opens": self.store_opens.summary(since.get("store_opens", 0))}


class TimingMiddleware:
    """ASGI middleware recording each HTTP request's time in the app into ``timings.requests``."""

    def __init__(self, app, timings):
        self.app, self.timings = app, timings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t = self.timings
        if t.probe and t._probe is None:
            t.start_probe()
        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            t.requests.add((time.perf_counter() - t0) * 1e3, t.kind_of(scope.get("path", "")))
