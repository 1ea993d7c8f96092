"""The explorer's web application: JSON endpoints under ``/api`` over one saved store, and the page.

The app keeps what it read of the store until the file changes (see ``_StoreAccess``): a save by another
process replaces the file atomically and never waits for the explorer; the first request that finds it changed
opens the new file in a worker thread and is answered from it, while requests arriving meanwhile are answered
from the previous file.  The server's own timings are at ``/api/server/timings`` (:mod:`whence.web.timing`).
Store errors map to the status codes of ``STORE_ERROR_STATUS`` (404 for a missing run or object, 409
for a damaged, foreign or newer store, 503 for a file locked by another program), never to a 500.
"""

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ..errors import (LineageQueryError, NotAStoreError, NotTrackedError, StoreArrayMissingError,
                      StoreCorruptError, StoreError, StoreKeyError, StoreLockedError, StoreStaleError,
                      StoreVersionError)
from .models import (BackwardAnswer, CellSet, ForwardAnswer, Graph, GraphEdge, GraphNode, ObjectInfo, OpDetail,
                     OpLink, ResultInfo, RunDetail, RunSummary, SourceInfo, TraceAnswer, TraceRow)
from .timing import ServerTimings, TimingMiddleware

__all__ = ["create_app", "STATIC_DIR", "STORE_ERROR_STATUS"]

#: The status code of each store error (the body is ``{"detail": message, "error": class name}``); never a 500.
STORE_ERROR_STATUS = {
    StoreKeyError: 404,           # no such run, object or source
    StoreCorruptError: 409,       # the file (or an array file) is truncated or damaged
    NotAStoreError: 409,          # the file is not a whence store
    StoreVersionError: 409,       # written with a newer store schema
    StoreArrayMissingError: 409,  # an index array's Parquet file beside the store is gone
    StoreStaleError: 409,         # a run changed under a request (the next request reads the new file)
    StoreError: 409,
    StoreLockedError: 503,        # another program holds the file locked: try again (Retry-After: 1)
}

STATIC_DIR = Path(__file__).resolve().parent / "static"
_OVERVIEW_BINS = 40
_MAX_LIMIT = 100_000
_MAP_CHARS = 3000

_CELL_HELP = ("the cell, as comma-separated positions, one per axis (`3,2`); empty for a 0-d array")
_WINDOW_HELP = ("only list cells inside rows `r0:r1` and columns `c0:c1` of the array seen as 2-D (the first "
                "axis by the others flattened), e.g. `100:120,0:16`; for the array named by `source`/`target`")


class _StoreAccess:
    """The store as last read, kept until the file changes; a newly saved file opened off the event loop.

    The explorer opens the store once and keeps what it read (the connection, the runs' graphs, sources and
    index arrays) for as long as the file stays the same (device, inode, size and modification time).  A save
    replaces the file atomically.  The first request that sees the new identity starts opening the new file in
    a worker thread (attaching it and reading its list of runs: 5 to 70 ms) and waits for it without holding
    the event loop; requests that arrive while it opens are answered from the previous file, which was the
    current one a moment earlier, so that a save never stalls the requests in flight.  When the new file is
    open it is swapped in at once (on the event loop, between two requests): it carries over the runs already
    read that the save left as they were (same run id), with their graphs, arrays and the answers derived from
    them, and the previous file is closed off the request's path.  A request thus reads one file from start
    to end, and a client that saved and then asks is answered from what it saved.
    """

    def __init__(self, store_path, timings=None):
        from ..store.duckdb_store import Store, file_identity
        self._Store, self._identity = Store, file_identity
        self.path = Path(store_path)
        self.timings = timings
        self.ident = None
        self.store = None
        self.opened = 0
        self._pending = None  # (identity, number, concurrent.futures.Future of (Store, run ids)) being opened
        self._started = self._installed = 0  # opens started, and the number of the one installed
        self._memo = {}
        ident = self._identity(self.path)
        self._install(ident, 0, *self._open(ident))  # FileNotFoundError / StoreError: reported by the caller

    def _open(self, ident):
        """Open the file of identity ``ident`` (in a worker thread once serving): the store and its run ids."""
        if ident is None:
            raise FileNotFoundError(f"no lineage store at {str(self.path)!r}")
        t0 = time.perf_counter()
        new = self._Store(self.path, follow=False)
        try:
            uids = {name: row[0] for name, row in new.all_runs().items()}
        except StoreError:  # the request that waits reads the file again, and reports
            uids = {}
        if self.timings is not None:
            self.timings.store_opens.add((time.perf_counter() - t0) * 1e3)
        return new, uids

    def _install(self, ident, number, new, uids):
        if number < self._installed:  # a newer file is in place already (the file changed twice meanwhile)
            threading.Thread(target=new.close, name="whence-store-close", daemon=True).start()
            return
        old = self.store
        if old is not None:
            new.carry_runs_from(old, uids)  # the graphs of runs the save left alone are still right
            # closing detaches the file (a few ms): not on the request's path
            threading.Thread(target=old.close, name="whence-store-close", daemon=True).start()
        self.store, self.ident, self._installed = new, ident, number
        self.opened += 1

    async def get(self):
        """The store to answer a request from (see the class docstring)."""
        ident = self._identity(self.path)
        if ident == self.ident and self.store is not None:
            return self.store
        if ident is None:
            raise FileNotFoundError(f"no lineage store at {str(self.path)!r}")
        pending = self._pending
        if pending is not None and pending[0] == ident and not pending[2].done():
            return self.store  # being opened for another request: the previous file meanwhile
        if pending is None or pending[0] != ident:
            self._started += 1
            pending = self._pending = (ident, self._started, _opener().submit(self._open, ident))
        try:
            new, uids = await asyncio.wrap_future(pending[2])
        finally:
            if self._pending is pending:
                self._pending = None
        if self._installed != pending[1]:  # not installed yet by another request that waited for it
            self._install(ident, pending[1], new, uids)
        return self.store

    def memo(self, key, compute, limit=256):
        """``compute()``, kept under ``key`` (which names a run by its id: a saved run never changes)."""
        v = self._memo.get(key)
        if v is None:
            if len(self._memo) >= limit:
                self._memo.clear()
            v = self._memo[key] = compute()
        return v


_OPENER: list[ThreadPoolExecutor] = []


def _opener():
    """The worker thread that opens newly saved store files (one for the process: an open is rare)."""
    if not _OPENER:
        _OPENER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="whence-store-open"))
    return _OPENER[0]


# ============================================================================================= parsing
def _bad(message):
    return HTTPException(status_code=422, detail=message)


def _parse_cell(text, shape):
    """``"3,2"`` -> (3, 2), checked against ``shape``."""
    text = (text or "").strip().strip("[]()").strip()
    parts = [p.strip() for p in text.split(",")] if text else []
    try:
        cell = tuple(int(p) for p in parts)
    except ValueError:
        raise _bad(f"cell {text!r} is not a list of integer positions such as '3,2'") from None
    if len(cell) != len(shape):
        raise _bad(f"cell {list(cell)} has {len(cell)} position(s); the array has shape {list(shape)} "
                   f"({len(shape)} axes)")
    for axis, (i, n) in enumerate(zip(cell, shape)):
        if not 0 <= i < n:
            raise _bad(f"cell {list(cell)} is out of range: position {i} on axis {axis} of length {n} "
                       f"(shape {list(shape)})")
    return cell


def _parse_window(text):
    if text is None or not text.strip():
        return None
    try:
        rows, cols = text.split(",")
        r0, r1 = (int(v) for v in rows.split(":"))
        c0, c1 = (int(v) for v in cols.split(":"))
    except ValueError:
        raise _bad(f"window {text!r} is not of the form 'r0:r1,c0:c1' (integers)") from None
    if r0 < 0 or c0 < 0 or r1 < r0 or c1 < c0:
        raise _bad(f"window {text!r}: need 0 <= r0 <= r1 and 0 <= c0 <= c1")
    return r0, r1, c0, c1


# ============================================================================================= cell sets
def _view_coords(cells, shape):
    """Row and column of each cell in the array seen as 2-D (first axis x the others flattened)."""
    k = len(cells)
    if len(shape) == 0:
        return np.zeros(k, np.int64), np.zeros(k, np.int64), 1, 1
    rows = cells[:, 0]
    if len(shape) == 1:
        return rows, np.zeros(k, np.int64), shape[0], 1
    cols = np.ravel_multi_index(tuple(cells[:, 1:].T), shape[1:]) if k else np.zeros(0, np.int64)
    return rows, np.asarray(cols, np.int64), shape[0], int(np.prod(shape[1:]))


def _cell_set(name, kind, shape, columns, cells, limit, window=None):
    shape = [int(d) for d in shape]
    cells = np.asarray(cells, np.int64)
    if cells.ndim != 2:
        cells = cells.reshape(-1, len(shape)) if shape else cells.reshape(cells.size and 1, 0)
    rows, cols, n_rows, n_cols = _view_coords(cells, shape)
    rb, cb = max(1, min(n_rows, _OVERVIEW_BINS)), max(1, min(n_cols, _OVERVIEW_BINS))
    if len(cells):
        flat = (rows * rb // max(n_rows, 1)) * cb + cols * cb // max(n_cols, 1)
        overview = np.bincount(flat, minlength=rb * cb).reshape(rb, cb)
        bbox = [[int(lo), int(hi)] for lo, hi in zip(cells.min(axis=0), cells.max(axis=0))]
    else:
        overview = np.zeros((rb, cb), np.int64)
        bbox = None
    listed = cells
    if window is not None:
        r0, r1, c0, c1 = window
        keep = (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
        listed = cells[keep]
    return CellSet(name=name, kind=kind, shape=shape, columns=columns, count=len(cells), bbox=bbox,
                   cells=listed[:limit].tolist(), truncated=len(listed) > limit, overview=overview.tolist())


# ============================================================================================= helpers
def _run(store, name):
    return store[name]  # StoreKeyError -> 404


def _handle(run, name):
    return run[name]  # objects and sources; StoreKeyError -> 404


def _results_of(run):
    f = getattr(run, "results", None)
    if f is None:
        return []
    out = []
    for r in f():
        if isinstance(r, dict):
            out.append(ResultInfo(name=str(r.get("name")), kind=str(r.get("kind", ""))))
        else:  # a (name, kind) pair
            out.append(ResultInfo(name=str(r[0]), kind=str(r[1])))
    return out


def _frame(store, query, params=None):
    """A query over the store's own tables as a DataFrame; a failure is the StoreError of a damaged file."""
    return store.connection.execute(query, params).df()


def _node_rows(store, run_name):
    df = _frame(store, "SELECT node, op, shape, source, completeness, reason, internal, detail, map_kind, "
                   "lineage_nbytes, CAST(json_extract(map, '$.n_inputs') AS BIGINT) AS n_inputs FROM nodes "
                   "WHERE run = ? ORDER BY node", [run_name])
    return json.loads(df.to_json(orient="records"))


def _graph(store, run_name):
    nodes = _node_rows(store, run_name)
    edges = store.connection.execute("SELECT child, parent, position, control FROM edges WHERE run = ? "
                               "ORDER BY child, position", [run_name]).fetchall()
    objs = store.connection.execute("SELECT name, node FROM objects WHERE run = ? ORDER BY name", [run_name]).fetchall()
    parents = {n["node"]: [] for n in nodes}
    control = {n["node"]: [] for n in nodes}
    for child, parent, pos, ctl in edges:
        parents[child].append(int(parent))
        if ctl:
            control[child].append(int(pos))
    named = {}
    for name, node in objs:
        named.setdefault(int(node), []).append(name)
    out = []
    for n in nodes:
        i = int(n["node"])
        label = n["source"] if n["source"] else n["op"] + (f" {n['detail']}" if n["detail"] else "")
        out.append(GraphNode(id=i, op=n["op"], label=label, shape=n["shape"] or [], source=n["source"],
                             completeness=n["completeness"], reason=n["reason"], internal=bool(n["internal"]),
                             detail=n["detail"] or "", map_kind=n["map_kind"], parents=parents[i],
                             control=control[i], objects=named.get(i, [])))
    # a table operation lists first the inputs of its composed relation (straight to the sources), then the
    # frames it was computed from: the edges of the pipeline as written
    composed_below = {int(n["node"]): (int(n["n_inputs"]) if n["map_kind"] == "table" and n["n_inputs"] is not None
                                       else 0) for n in nodes}
    return out, [GraphEdge(child=int(c), parent=int(p), position=int(k), control=bool(x),
                           composed=int(k) < composed_below[int(c)]) for c, p, k, x in edges]


def _map_summary(text):
    if text is None:
        return None
    rec = json.loads(text)
    if len(text) <= _MAP_CHARS:
        return rec
    small = {k: v for k, v in rec.items() if len(json.dumps(v)) <= 200}
    small["truncated"] = f"the full record is {len(text)} characters (see the nodes table of the store)"
    return small


# ============================================================================================= the app
def create_app(store_path, *, allowed_hosts=None):
    """The explorer's web application over the store at ``store_path``.

    Parameters
    ----------
    store_path : str or path-like
        A store written by :func:`whence.save`.
    allowed_hosts : list of str, optional
        Host names the app answers to (the ``Host`` header); any when None.  :func:`whence.web.serve` sets it
        to the loopback names unless remote access is allowed, so that a web page elsewhere cannot read the
        store through a name that resolves to this machine.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    FileNotFoundError
        There is no such file.
    whence.errors.StoreError
        The file is not a readable whence store.

    Examples
    --------
    >>> import os, tempfile, numpy as np, whence as wh
    >>> from fastapi.testclient import TestClient
    >>> from whence.web import create_app
    >>> wh.reset()
    >>> a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    >>> path = os.path.join(tempfile.mkdtemp(), "run.duckdb")
    >>> _ = wh.save(path, "r", y=np.cumsum(a, axis=1))
    >>> client = TestClient(create_app(path))
    >>> client.get("/api/runs/r/objects/y/backward", params={"cell": "1,2"}).json()["sources"][0]["cells"]
    [[1, 0], [1, 1], [1, 2]]
    """
    timings = ServerTimings()
    access = _StoreAccess(store_path, timings)
    app = FastAPI(
        docs_url=None, redoc_url=None,  # their pages load scripts from a CDN; the document is /openapi.json
        title="whence lineage explorer",
        version=_version(),
        description="Read-only JSON API over one saved whence lineage store: runs, objects, sources, the "
                    "operation graph, backward and forward cell lineage, source file lines of rows, and "
                    "stored results (attribution, unlearning).  Cells are positions: the store keeps lineage, "
                    "not values.",
    )
    if allowed_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_middleware(TimingMiddleware, timings=timings)
    app.state.store_path = str(access.path.resolve())
    app.state.timings = timings

    _add_error_handlers(app)
    _add_store_routes(app, access, timings)
    _add_graph_routes(app, access)
    _add_lineage_routes(app, access)
    _add_result_routes(app, access)
    _add_page(app)
    return app


def _add_error_handlers(app):
    """The JSON answers of the store's and the queries' errors (404 for an unknown name, 422 for a bad query,
    the status of ``STORE_ERROR_STATUS`` for the store's own errors, 409 when the file is gone)."""
    @app.exception_handler(StoreKeyError)
    async def _not_found(request: Request, exc: StoreKeyError):
        return JSONResponse(status_code=404, content={"detail": str(exc), "error": type(exc).__name__})

    @app.exception_handler(LineageQueryError)
    async def _bad_query(request: Request, exc: LineageQueryError):
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(NotTrackedError)
    async def _not_tracked(request: Request, exc: NotTrackedError):
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError):
        status, headers = STORE_ERROR_STATUS.get(type(exc), 409), None
        if status == 503:
            headers = {"Retry-After": "1"}
        return JSONResponse(status_code=status, content={"detail": str(exc), "error": type(exc).__name__},
                            headers=headers)

    @app.exception_handler(FileNotFoundError)
    async def _gone(request: Request, exc: FileNotFoundError):
        return JSONResponse(status_code=409, content={"detail": f"the store file is gone: {exc}",
                                                      "error": "FileNotFoundError"})


def _object_info(r, name):
    """The :class:`ObjectInfo` of the object or source ``name`` of run ``r``."""
    h = _handle(r, name)
    cols = None if h.columns is None else [str(c) for c in h.columns]
    return ObjectInfo(name=name, node=h.node_number, kind=h.kind, shape=list(h.shape), columns=cols,
                      completeness=h.completeness, sources=h.sources(), n_ops=len(h.ops()))


def _add_store_routes(app, access, timings):
    """The routes of the store, its runs and their objects (and the server's own timings)."""
    @app.get("/api/server/timings", summary="Server-side timings: time in the app per request, event-loop lag, "
                                            "store opens",
             description="Quantiles (ms) of the last values of each series (see `whence.web.timing`); "
                         "`requests_since`, `loop_lag_since`, `store_opens_since`: only the values recorded "
                         "after that many (the `count` of an earlier answer), to measure one load phase.")
    async def server_timings(requests_since: int = Query(0, ge=0), loop_lag_since: int = Query(0, ge=0),
                             store_opens_since: int = Query(0, ge=0)) -> dict:
        return {**timings.summary({"requests": requests_since, "loop_lag": loop_lag_since,
                                   "store_opens": store_opens_since}),
                "store_files_opened": access.opened}

    @app.get("/api/store", summary="The store: its file, schema version and runs")
    async def store_info() -> dict:
        store = await access.get()
        return {"path": app.state.store_path, "schema_version": store.schema_version, "runs": store.runs(),
                "whence_version": _version()}

    @app.get("/api/runs", response_model=list[RunSummary], summary="The runs saved in the store")
    async def runs():
        store = await access.get()
        df = _frame(store, "SELECT run, CAST(created AS VARCHAR) AS created, whence_version, n_nodes, n_objects, "
                       "n_sources FROM runs ORDER BY created, run")
        return [RunSummary(**r) for r in json.loads(df.to_json(orient="records"))]

    @app.get("/api/runs/{run}", response_model=RunDetail,
             summary="A run: its objects, its sources (files, lines, sha256) and its stored results")
    async def run_detail(run: str):
        store = await access.get()
        r = _run(store, run)
        objects = [_object_info(r, name) for name in r.objects()]
        src = _frame(store, "SELECT node, name, kind, shape, columns, path, format, n_rows, sha256, line_note "
                        "FROM sources WHERE run = ? ORDER BY name", [run])
        sources = []
        for s in json.loads(src.to_json(orient="records")):
            sources.append(SourceInfo(name=s["name"], node=s["node"], kind=s["kind"], shape=s["shape"] or [],
                                      columns=None if s["columns"] is None else json.loads(s["columns"]),
                                      path=s["path"], format=s["format"], n_rows=s["n_rows"],
                                      sha256=s["sha256"], note=s["line_note"]))
        return RunDetail(run=run, store=app.state.store_path, objects=objects, sources=sources,
                         results=_results_of(r))

    @app.get("/api/runs/{run}/objects/{name}", response_model=ObjectInfo,
             summary="One saved object (or source) of a run: kind, shape, columns, completeness, sources")
    async def object_info(run: str, name: str):
        store = await access.get()
        return _object_info(_run(store, run), name)


def _add_graph_routes(app, access):
    """The routes of the operation graph and of one operation."""
    @app.get("/api/runs/{run}/graph", response_model=Graph,
             summary="The operation graph of a run: nodes (sources and operations) and edges")
    async def graph(run: str):
        store = await access.get()
        r = _run(store, run)
        # the answer's JSON kept per run id (a saved run never changes; a save that leaves it alone keeps it)
        def answer():
            nodes, edges = access.memo(("graph", r.run_uid), lambda: _graph(store, run))
            return Graph(run=run, nodes=nodes, edges=edges).model_dump_json().encode()
        body = access.memo(("graph-json", r.run_uid, run), answer)
        return Response(content=body, media_type="application/json")

    @app.get("/api/runs/{run}/ops/{node}", response_model=OpDetail,
             summary="One operation: inputs, outputs, map kind and parameters, completeness and reasons")
    async def op_detail(run: str, node: int):
        from ..query import upstream_nodes as _upstream
        store = await access.get()
        r = _run(store, run)
        nodes, edges = access.memo(("graph", r.run_uid), lambda: _graph(store, run))
        if not 0 <= node < len(nodes):
            raise HTTPException(status_code=404, detail=f"run {run!r} has no operation {node} (it has "
                                                        f"{len(nodes)} nodes, numbered 0 to {len(nodes) - 1})")
        me = nodes[node]
        inputs = [OpLink(node=e.parent, label=nodes[e.parent].label, op=nodes[e.parent].op,
                         shape=nodes[e.parent].shape, position=e.position, control=e.control,
                         composed=e.composed) for e in edges if e.child == node]
        outputs = [OpLink(node=e.child, label=nodes[e.child].label, op=nodes[e.child].op,
                          shape=nodes[e.child].shape, position=e.position, control=e.control,
                          composed=e.composed) for e in edges if e.parent == node]
        row = store.connection.execute("SELECT map, lineage_nbytes FROM nodes WHERE run = ? AND node = ?",
                                 [run, node]).fetchone()
        live = r.nodes()[node]
        reasons = [f"{n.op}: {n.partial}" for n in _upstream(live) if n.partial]
        return OpDetail(run=run, node=me, inputs=inputs, outputs=outputs, lineage_nbytes=int(row[1] or 0),
                        map=_map_summary(row[0]), upstream_completeness="PARTIAL" if reasons else "FULL",
                        upstream_reasons=reasons)


def _add_lineage_routes(app, access):
    """The routes of the lineage queries: backward, forward and trace to the source file."""
    @app.get("/api/runs/{run}/objects/{name}/backward", response_model=BackwardAnswer,
             summary="Backward lineage of one cell: the source cells it was computed or copied from",
             description="Answers `whence.backward(run[name], cell, control)`.  Each source of the object is "
                         "listed, with the number of cells, their bounding box, a coarse overview (counts "
                         "per block) and the cells themselves up to `limit`.")
    async def backward(run: str, name: str,
                 cell: str = Query("", description=_CELL_HELP),
                 control: bool = Query(False, description="also the cells that chose a copy (masks, "
                                                          "conditions, index arrays)"),
                 limit: int = Query(5000, ge=0, le=_MAX_LIMIT, description="most cells listed per source"),
                 source: str | None = Query(None, description="the source `window` applies to"),
                 window: str | None = Query(None, description=_WINDOW_HELP)):
        from ..query import backward
        win = _parse_window(window)
        store = await access.get()
        r = _run(store, run)
        h = _handle(r, name)
        c = _parse_cell(cell, h.shape)
        res = backward(h, c, control=control)
        out = []
        for s in h.sources():
            sh = r.source(s)
            cols = None if sh.columns is None else [str(x) for x in sh.columns]
            cells = res.get(s, np.zeros((0, len(sh.shape)), np.int64))
            out.append(_cell_set(s, "source", sh.shape, cols, cells, limit, win if s == source else None))
        return BackwardAnswer(run=run, object=name, cell=list(c), control=control, complete=res.complete,
                              reasons=list(res.reasons), sources=out)

    @app.get("/api/runs/{run}/objects/{name}/forward", response_model=ForwardAnswer,
             summary="Forward lineage of one cell: the cells of the saved objects downstream derived from it",
             description="Answers `whence.forward(run[name], cell, run[target])` for every saved object "
                         "`target` that lies downstream of `name` (a source or a saved object).")
    async def forward(run: str, name: str,
                cell: str = Query("", description=_CELL_HELP),
                control: bool = Query(False, description="also follow control edges (a mask cell reaches the "
                                                         "cells it selected)"),
                limit: int = Query(5000, ge=0, le=_MAX_LIMIT, description="most cells listed per object"),
                target: str | None = Query(None, description="the object `window` applies to"),
                window: str | None = Query(None, description=_WINDOW_HELP)):
        from ..query import forward, upstream_nodes as _upstream
        win = _parse_window(window)
        store = await access.get()
        r = _run(store, run)
        h = _handle(r, name)
        c = _parse_cell(cell, h.shape)
        start = h.node
        out = []
        for o in r.objects():
            t = r[o]
            if o == name or t.node is start:
                continue
            if start.id not in {n.id for n in _upstream(t.node)}:
                continue
            cells = forward(h, c, t, control=control)
            cols = None if t.columns is None else [str(x) for x in t.columns]
            out.append(_cell_set(o, t.kind, t.shape, cols, cells, limit, win if o == target else None))
        return ForwardAnswer(run=run, start=name, cell=list(c), control=control, targets=out)

    @app.get("/api/runs/{run}/objects/{name}/trace", response_model=TraceAnswer,
             summary="The source rows (table, file, line, columns) of one row",
             description="Answers `whence.trace_to_file(run[name], row, control)`.")
    async def trace(run: str, name: str,
              row: int = Query(description="row position (0-based)"),
              control: bool = Query(False, description="also the rows whose cells chose this row"),
              limit: int = Query(2000, ge=0, le=_MAX_LIMIT, description="most source rows listed")):
        from ..tabular.trace import trace_to_file
        store = await access.get()
        h = _handle(_run(store, run), name)
        if not h.shape:
            raise _bad(f"{name!r} is 0-d: it has no rows to trace")
        if not 0 <= row < h.shape[0]:
            raise _bad(f"row {row} is out of range for {h.shape[0]} rows of {name!r}")
        t = trace_to_file(h, row=row, control=control)
        rows = [TraceRow(table=s.table, row=int(s.row), path=s.path,
                         line=None if s.line is None else int(s.line), columns=[str(c) for c in s.columns])
                for s in t[:limit]]
        return TraceAnswer(run=run, object=name, row=row, complete=t.complete, reasons=list(t.reasons),
                           count=len(t), truncated=len(t) > limit, sources=rows)


def _add_result_routes(app, access):
    """The routes of the results stored with a run (attribution, unlearning)."""
    @app.get("/api/runs/{run}/results", response_model=list[ResultInfo],
             summary="Results stored with a run (attribution, unlearning): names and kinds")
    async def results(run: str):
        store = await access.get()
        return _results_of(_run(store, run))

    @app.get("/api/runs/{run}/results/{name}", summary="One stored result, as saved (JSON)",
             description="Kind `attribution`: `{model, n_train, train_object, test_rows: [{test_row, label, "
                         "prediction, top, bottom, by_source, counterfactual?}]}` (`counterfactual`: the effects of deleting "
                         "source rows, when asked: `{output, tables, largest, delete_table, rules}`); kind `unlearning`: `{method, n_forgotten, "
                         "figures}`.")
    async def result(run: str, name: str) -> dict:
        store = await access.get()
        r = _run(store, run)
        known = {x.name: x.kind for x in _results_of(r)}
        if name not in known:
            raise HTTPException(status_code=404, detail=f"run {run!r} has no result named {name!r}; results: "
                                                        f"{sorted(known)}")
        payload = r.result(name)
        return {"name": name, "kind": known[name], "payload": payload}


def _add_page(app):
    """The explorer's page and its static files."""
    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _version():
    from .. import __version__
    return __version__
