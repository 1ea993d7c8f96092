"""The explorer's JSON API (``whence serve``), in-process through FastAPI's test client.

Every lineage answer is checked against ``whence.backward`` / ``whence.forward`` / ``whence.trace_to_file`` on
the live objects the store was saved from, at random cells and rows.
"""

from __future__ import annotations

import importlib.resources
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("duckdb")
pytest.importorskip("pandas")

import whence as wh  # noqa: E402
from whence.cli import main  # noqa: E402
from whence.errors import StoreError  # noqa: E402
from whence.web import RemoteBindRefused, create_app, serve  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note on its test client's transport
    from fastapi.testclient import TestClient  # noqa: E402

ATTRIBUTION = {
    "kind": "attribution", "model": "logistic regression", "n_train": 3, "train_object": "X",
    "test_rows": [{"test_row": 0, "label": 1, "prediction": 0.75,
                   "top": [{"train_row": 2, "score": 0.5,
                            "sources": [{"table": "people", "row": 2, "path": "people.csv", "line": 4}]}],
                   "bottom": [{"train_row": 0, "score": -0.25, "sources": []}],
                   "by_source": [{"table": "people", "score": 0.2}, {"table": "orders", "score": -0.1}]}],
}
UNLEARNING = {"kind": "unlearning", "method": "newton", "n_forgotten": 2, "figures": {"param_distance": 0.01}}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A numpy pipeline and a pandas pipeline from two CSV files, saved to a store; the live objects kept."""
    d = tmp_path_factory.mktemp("web")
    people = d / "people.csv"
    people.write_text("id,age,city,score\n1,30,Oslo,0.5\n2,41,Lima,0.7\n3,25,Oslo,0.1\n4,52,Pune,0.9\n"
                      "5,38,Lima,0.4\n6,29,Pune,0.8\n")
    orders = d / "orders.csv"
    orders.write_text("order,id,amount\n10,1,5.0\n11,2,7.5\n12,2,1.0\n13,4,3.0\n14,5,2.5\n15,5,9.0\n16,6,4.0\n")
    wh.reset()
    rng = np.random.default_rng(3)
    img = wh.track(rng.normal(100, 15, size=(6, 8)).round(1), name="img")
    gains = wh.track(rng.uniform(0.9, 1.1, size=8), name="gains")
    calibrated = img * gains
    smooth = (calibrated[:, :-1] + calibrated[:, 1:]) / 2
    picked = np.where(smooth > 100, smooth, 0.0)
    ranked = np.sort(picked, axis=1)[:, ::-1]
    score = ranked[:, :3].mean(axis=1)
    cube = calibrated.reshape(2, 3, 8)
    total = calibrated.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectrum = np.abs(np.fft.rfft(img, axis=1))  # opaque: PARTIAL
    t = wh.read_csv(people, name="people")
    o = wh.read_csv(orders, name="orders")
    spent = o.groupby("id", as_index=False).agg(spent=("amount", "sum"))
    df = t[t["age"] > 26].merge(spent, on="id", how="left")
    X = df[["age", "score", "spent"]].to_numpy()
    live = {"calibrated": calibrated, "smooth": smooth, "picked": picked, "score": score, "cube": cube,
            "total": total, "spectrum": spectrum, "df": df, "X": X}
    path = d / "run.duckdb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wh.save(path, "arrays", calibrated=calibrated, smooth=smooth, picked=picked, score=score, cube=cube,
                total=total, spectrum=spectrum)
        wh.save(path, "tables", df=df, X=X, results={"attr": ATTRIBUTION, "forget": UNLEARNING})
    sources = {"img": img, "gains": gains, "people": "people", "orders": "orders"}
    return {"path": path, "live": live, "sources": sources, "people": people, "orders": orders}


@pytest.fixture(scope="module")
def client(pipeline):
    return TestClient(create_app(pipeline["path"]))


def _ok(r):
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def _sorted(cells):
    return sorted(map(tuple, cells))


def _random_cells(shape, n, rng):
    if not shape:
        return [()]
    return [tuple(int(rng.integers(0, d)) for d in shape) for _ in range(n)]


# =================================================================================================== runs
def test_store_and_runs(client, pipeline):
    info = _ok(client.get("/api/store"))
    assert info["runs"] == ["arrays", "tables"] and info["schema_version"] == wh.store.SCHEMA_VERSION
    runs = _ok(client.get("/api/runs"))
    with wh.open(pipeline["path"]) as store:
        assert [(r["run"], r["n_nodes"], r["n_objects"]) for r in runs] == [
            (n, store[n].n_nodes, len(store[n].objects())) for n in store.runs()]


def test_run_detail_lists_objects_sources_and_results(client, pipeline):
    d = _ok(client.get("/api/runs/arrays"))
    with wh.open(pipeline["path"]) as store:
        run = store["arrays"]
        assert [o["name"] for o in d["objects"]] == run.objects()
        for o in d["objects"]:
            h = run[o["name"]]
            assert (tuple(o["shape"]), o["kind"], o["completeness"], o["sources"]) == (
                h.shape, h.kind, h.completeness, h.sources())
    objs = {o["name"]: o for o in d["objects"]}
    assert objs["spectrum"]["completeness"] == "PARTIAL" and objs["score"]["completeness"] == "FULL"
    assert objs["total"]["shape"] == [] and objs["cube"]["shape"] == [2, 3, 8]
    assert {s["name"]: s["kind"] for s in d["sources"]} == {"gains": "array", "img": "array"}
    assert d["results"] == []
    t = _ok(client.get("/api/runs/tables"))
    src = {s["name"]: s for s in t["sources"]}
    assert src["people"]["path"] == str(pipeline["people"].resolve()) and src["people"]["n_rows"] == 6
    assert src["orders"]["columns"] == ["order", "id", "amount"] and len(src["orders"]["sha256"]) == 64
    assert t["results"] == [{"name": "attr", "kind": "attribution"}, {"name": "forget", "kind": "unlearning"}]
    assert _ok(client.get("/api/runs/tables/objects/df"))["columns"] == [str(c) for c in pipeline["live"]["df"].columns]


# =================================================================================================== graph
def test_graph_matches_the_stored_graph(client, pipeline):
    for run_name in ("arrays", "tables"):
        g = _ok(client.get(f"/api/runs/{run_name}/graph"))
        with wh.open(pipeline["path"]) as store:
            run = store[run_name]
            nodes = run._nodes()
            assert [n["id"] for n in g["nodes"]] == list(range(run.n_nodes))
            for n, live in zip(g["nodes"], nodes):
                assert n["op"] == live.op and tuple(n["shape"]) == live.shape and n["source"] == live.name
                assert n["completeness"] == ("FULL" if live.partial is None else "PARTIAL")
                assert n["reason"] == live.partial
                assert n["parents"] == [nodes.index(p) for p in live.parents]
            named = {o: run[o]._index for o in run.objects()}
        assert {o: n["id"] for n in g["nodes"] for o in n["objects"]} == named
        assert sum(len(n["parents"]) for n in g["nodes"]) == len(g["edges"])


def test_op_detail_inputs_outputs_and_partial_reasons(client, pipeline):
    g = _ok(client.get("/api/runs/arrays/graph"))
    for n in g["nodes"]:
        d = _ok(client.get(f"/api/runs/arrays/ops/{n['id']}"))
        assert [i["node"] for i in d["inputs"]] == n["parents"]
        assert sorted(o["node"] for o in d["outputs"]) == sorted(
            m["id"] for m in g["nodes"] for p in m["parents"] if p == n["id"])
        assert d["node"]["map_kind"] == n["map_kind"]
        assert (d["map"] is None) == (n["map_kind"] is None)
    fft = next(n for n in g["nodes"] if n["completeness"] == "PARTIAL")
    d = _ok(client.get(f"/api/runs/arrays/ops/{fft['id']}"))
    assert d["node"]["reason"] and d["upstream_completeness"] == "PARTIAL" and d["upstream_reasons"]
    srt = next(n for n in g["nodes"] if n["op"] == "sort")
    assert _ok(client.get(f"/api/runs/arrays/ops/{srt['id']}"))["upstream_completeness"] == "FULL"


# =================================================================================================== lineage
@pytest.mark.parametrize("run_name, names", [
    ("arrays", ["calibrated", "smooth", "picked", "score", "cube", "total", "spectrum"]),
    ("tables", ["df", "X"]),
])
def test_backward_equals_the_live_answer_at_random_cells(client, pipeline, run_name, names):
    rng = np.random.default_rng(11)
    for name in names:
        live = pipeline["live"][name]
        shape = tuple(np.shape(live))
        for cell in dict.fromkeys(_random_cells(shape, 6, rng)):
            for control in (False, True):
                exp = wh.backward(live, cell, control=control)
                got = _ok(client.get(f"/api/runs/{run_name}/objects/{name}/backward",
                                     params={"cell": ",".join(map(str, cell)), "control": control}))
                assert got["cell"] == list(cell) and got["complete"] == exp.complete
                by = {s["name"]: s for s in got["sources"]}
                assert set(by) == set(wh.sources(live))
                for src, s in by.items():
                    want = _sorted(exp.get(src, np.zeros((0, 1), np.int64)))
                    assert _sorted(s["cells"]) == want and s["count"] == len(want), (name, cell, src)
                    assert not s["truncated"]
                    assert sum(map(sum, s["overview"])) == len(want)
                    if want:
                        arr = np.array(want)
                        assert s["bbox"] == [[int(a), int(b)] for a, b in zip(arr.min(0), arr.max(0))]


def test_forward_from_sources_equals_the_live_answer(client, pipeline):
    rng = np.random.default_rng(5)
    live, srcs = pipeline["live"], pipeline["sources"]
    cases = [("arrays", "img", (6, 8)), ("arrays", "gains", (8,)), ("tables", "people", (6, 4)),
             ("tables", "orders", (7, 3))]
    for run_name, src, shape in cases:
        objs = _ok(client.get(f"/api/runs/{run_name}"))["objects"]
        for cell in dict.fromkeys(_random_cells(shape, 5, rng)):
            got = _ok(client.get(f"/api/runs/{run_name}/objects/{src}/forward",
                                 params={"cell": ",".join(map(str, cell))}))
            targets = {t["name"]: t for t in got["targets"]}
            assert set(targets) == {o["name"] for o in objs if src in o["sources"]}
            for name, t in targets.items():
                exp = wh.forward(srcs[src], cell, live[name])
                assert _sorted(t["cells"]) == _sorted(exp) and t["count"] == len(exp), (src, cell, name)


def test_forward_from_an_object_reaches_the_objects_downstream(client, pipeline):
    live = pipeline["live"]
    rng = np.random.default_rng(8)
    for cell in dict.fromkeys(_random_cells((6, 8), 5, rng)):
        got = _ok(client.get("/api/runs/arrays/objects/calibrated/forward", params={"cell": f"{cell[0]},{cell[1]}"}))
        targets = {t["name"]: t for t in got["targets"]}
        assert set(targets) == {"smooth", "picked", "score", "cube", "total"}  # not spectrum: it reads img
        for name, t in targets.items():
            assert _sorted(t["cells"]) == _sorted(wh.forward(live["calibrated"], cell, live[name]))
    # and from a frame to the matrix taken from it
    got = _ok(client.get("/api/runs/tables/objects/df/forward", params={"cell": "1,1"}))
    (t,) = got["targets"]
    assert t["name"] == "X" and _sorted(t["cells"]) == _sorted(wh.forward(live["df"], (1, 1), live["X"]))


def test_trace_equals_trace_to_file_at_every_row(client, pipeline):
    for name in ("df", "X"):
        live = pipeline["live"][name]
        for row in range(len(live)):
            for control in (False, True):
                exp = wh.trace_to_file(live, row=row, control=control)
                got = _ok(client.get(f"/api/runs/tables/objects/{name}/trace",
                                     params={"row": row, "control": control}))
                assert got["complete"] == exp.complete and got["count"] == len(exp)
                assert [(s["table"], s["row"], s["path"], s["line"], s["columns"]) for s in got["sources"]] == [
                    (e.table, e.row, e.path, e.line, [str(c) for c in e.columns]) for e in exp]
    got = _ok(client.get("/api/runs/tables/objects/X/trace", params={"row": 0}))
    assert {s["path"] for s in got["sources"]} == {str(pipeline["people"].resolve()), str(pipeline["orders"].resolve())}


def test_limit_and_window_page_through_a_large_set(client, pipeline):
    live = pipeline["live"]["total"]  # every cell of img and gains
    full = _ok(client.get("/api/runs/arrays/objects/total/backward", params={"cell": ""}))
    img = next(s for s in full["sources"] if s["name"] == "img")
    assert img["count"] == 48 and img["bbox"] == [[0, 5], [0, 7]]
    part = _ok(client.get("/api/runs/arrays/objects/total/backward", params={"cell": "", "limit": 5}))
    img = next(s for s in part["sources"] if s["name"] == "img")
    assert img["truncated"] and len(img["cells"]) == 5 and img["count"] == 48
    win = _ok(client.get("/api/runs/arrays/objects/total/backward",
                         params={"cell": "", "source": "img", "window": "2:4,3:5"}))
    img = next(s for s in win["sources"] if s["name"] == "img")
    assert _sorted(img["cells"]) == [(2, 3), (2, 4), (3, 3), (3, 4)] and img["count"] == 48
    gains = next(s for s in win["sources"] if s["name"] == "gains")
    assert _sorted(gains["cells"]) == _sorted(wh.backward(live, ())["gains"])  # the window is for img only
    cube = _ok(client.get("/api/runs/arrays/objects/cube/backward", params={"cell": "1,2,5"}))
    assert next(s for s in cube["sources"] if s["name"] == "img")["cells"] == [[5, 5]]


# =================================================================================================== results
def test_results(client, pipeline):
    assert _ok(client.get("/api/runs/tables/results")) == [{"name": "attr", "kind": "attribution"},
                                                           {"name": "forget", "kind": "unlearning"}]
    attr = _ok(client.get("/api/runs/tables/results/attr"))
    assert attr["kind"] == "attribution"
    assert {k: v for k, v in attr["payload"].items() if k != "kind"} == {
        k: v for k, v in ATTRIBUTION.items() if k != "kind"}
    forget = _ok(client.get("/api/runs/tables/results/forget"))
    assert forget["payload"]["figures"] == UNLEARNING["figures"]
    assert _ok(client.get("/api/runs/arrays/results")) == []


def test_a_run_without_results_support_lists_none(pipeline, monkeypatch):
    from whence.store.duckdb_store import Run
    monkeypatch.delattr(Run, "results", raising=False)
    c = TestClient(create_app(pipeline["path"]))
    assert _ok(c.get("/api/runs/tables/results")) == []
    assert c.get("/api/runs/tables/results/attr").status_code == 404


# =================================================================================================== errors
@pytest.mark.parametrize("url, status, message", [
    ("/api/runs/nope", 404, "no run named 'nope'"),
    ("/api/runs/nope/graph", 404, "no run named 'nope'"),
    ("/api/runs/arrays/objects/nope", 404, "no object or source named 'nope'"),
    ("/api/runs/arrays/objects/nope/backward?cell=0,0", 404, "no object or source named 'nope'"),
    ("/api/runs/arrays/ops/999", 404, "has no operation 999"),
    ("/api/runs/arrays/ops/-1", 404, "has no operation -1"),
    ("/api/runs/arrays/ops/x", 422, None),
    ("/api/runs/tables/results/nope", 404, "no result named 'nope'"),
    ("/api/runs/arrays/objects/smooth/backward?cell=6,0", 422, "out of range"),
    ("/api/runs/arrays/objects/smooth/backward?cell=0,7", 422, "out of range"),
    ("/api/runs/arrays/objects/smooth/backward?cell=-1,0", 422, "out of range"),
    ("/api/runs/arrays/objects/smooth/backward?cell=1", 422, "has 1 position(s)"),
    ("/api/runs/arrays/objects/smooth/backward?cell=a,b", 422, "not a list of integer positions"),
    ("/api/runs/arrays/objects/smooth/backward", 422, "has 0 position(s)"),
    ("/api/runs/arrays/objects/smooth/backward?cell=1,1&window=1-2", 422, "r0:r1,c0:c1"),
    ("/api/runs/arrays/objects/smooth/backward?cell=1,1&limit=-1", 422, None),
    ("/api/runs/arrays/objects/img/forward?cell=9,9", 422, "out of range"),
    ("/api/runs/tables/objects/X/trace?row=99", 422, "row 99 is out of range"),
    ("/api/runs/tables/objects/X/trace", 422, None),
    ("/api/runs/arrays/objects/total/trace?row=0", 422, "0-d"),
])
def test_bad_input_is_a_clear_4xx(client, url, status, message):
    r = client.get(url)
    assert r.status_code == status, (r.status_code, r.text)
    detail = r.json()["detail"]
    if message is not None:
        assert message in detail, detail


def test_missing_or_broken_store(tmp_path):
    with pytest.raises(FileNotFoundError):
        create_app(tmp_path / "missing.duckdb")
    bad = tmp_path / "notes.duckdb"
    bad.write_text("not a database\n" * 50)
    with pytest.raises(StoreError, match="not a whence store"):
        create_app(bad)


def test_a_run_saved_while_serving_is_seen(pipeline, tmp_path):
    path = tmp_path / "live.duckdb"
    wh.reset()
    a = wh.track(np.arange(4.0), name="a")
    wh.save(path, "first", y=a * 2)
    c = TestClient(create_app(path))
    assert [r["run"] for r in _ok(c.get("/api/runs"))] == ["first"]
    wh.save(path, "second", y=np.cumsum(a))  # the app does not hold the file between requests
    assert [r["run"] for r in _ok(c.get("/api/runs"))] == ["first", "second"]
    assert _ok(c.get("/api/runs/second/objects/y/backward", params={"cell": "2"}))["sources"][0]["cells"] == [
        [0], [1], [2]]


# =================================================================================================== documents
def test_openapi_documents_every_endpoint(client):
    doc = _ok(client.get("/openapi.json"))
    paths = doc["paths"]
    for p in ["/api/store", "/api/runs", "/api/runs/{run}", "/api/runs/{run}/graph", "/api/runs/{run}/ops/{node}",
              "/api/runs/{run}/objects/{name}", "/api/runs/{run}/objects/{name}/backward",
              "/api/runs/{run}/objects/{name}/forward", "/api/runs/{run}/objects/{name}/trace",
              "/api/runs/{run}/results", "/api/runs/{run}/results/{name}"]:
        assert p in paths and paths[p]["get"].get("summary"), p
    assert "BackwardAnswer" in doc["components"]["schemas"] and "TraceAnswer" in doc["components"]["schemas"]
    params = {q["name"] for q in paths["/api/runs/{run}/objects/{name}/backward"]["get"]["parameters"]}
    assert {"cell", "control", "limit", "source", "window"} <= params
    assert client.get("/docs").status_code == 404  # its page would load scripts from a CDN


def test_page_and_static_files_are_served_and_shipped(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"] and "explorer.js" in r.text
    static = importlib.resources.files("whence.web").joinpath("static")
    for name in ("index.html", "explorer.js", "explorer.css"):
        assert static.joinpath(name).is_file(), name
        text = static.joinpath(name).read_text(encoding="utf-8")
        assert client.get(f"/static/{name}").text == text
        # nothing fetched from elsewhere: the only URL is the SVG namespace
        assert set(re.findall(r"https?://[^\s\"'`)]+", text)) <= {"http://www.w3.org/2000/svg"}, name


def test_host_header_checked_when_asked(pipeline):
    c = TestClient(create_app(pipeline["path"], allowed_hosts=["127.0.0.1", "localhost"]),
                   base_url="http://evil.example")
    assert c.get("/api/runs").status_code == 400
    c = TestClient(create_app(pipeline["path"], allowed_hosts=["127.0.0.1", "localhost"]),
                   base_url="http://127.0.0.1:8000")
    assert c.get("/api/runs").status_code == 200


# =================================================================================================== serving
def test_cli_refuses_a_non_loopback_host_without_binding(pipeline, monkeypatch, capsys):
    import whence.web as web
    import whence.web.server as server
    calls = []
    monkeypatch.setattr(web, "serve", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(server, "bind", lambda *a, **k: calls.append(("bind", a)))
    for host in ("0.0.0.0", "192.168.1.20", "example.org", "::"):
        assert main(["serve", str(pipeline["path"]), "--host", host]) == 2
        err = capsys.readouterr().err
        assert "refusing to listen" in err and "--allow-remote" in err
    assert calls == []
    assert main(["serve", str(pipeline["path"]), "--host", "0.0.0.0", "--allow-remote", "--port", "9"]) == 0
    assert calls == [((str(pipeline["path"]),), {"host": "0.0.0.0", "port": 9, "open_browser": False,
                                                 "allow_remote": True})]


def test_cli_serve_bad_store_exits_1(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing.duckdb")]) == 1
    assert "no lineage store" in capsys.readouterr().err
    bad = tmp_path / "notes.duckdb"
    bad.write_text("not a database\n" * 50)
    assert main(["serve", str(bad)]) == 1
    assert "not a whence store" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["serve"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["serve", "x.duckdb", "--port", "http"])
    assert e.value.code == 2


def test_serve_function_refuses_a_remote_host(pipeline):
    with pytest.raises(RemoteBindRefused, match="allow_remote"):
        serve(pipeline["path"], host="0.0.0.0")


def test_cli_reports_a_port_in_use(pipeline, capsys):
    from whence.web.server import bind
    sock = bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert main(["serve", str(pipeline["path"]), "--port", str(port)]) == 1
        assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
    finally:
        sock.close()


def test_running_serves_on_a_real_socket(pipeline):
    import httpx

    from whence.web.server import running
    with running(pipeline["path"]) as url:
        assert url.startswith("http://127.0.0.1:")
        assert [r["run"] for r in httpx.get(url + "api/runs", timeout=10).json()] == ["arrays", "tables"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(url + "api/runs", timeout=2)
