"""Results saved with a run (attribution, unlearning, tables) and the HTML report that draws them."""

import json
import re

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import whence as wh
from whence.attribution import Attributor, Explanation
from whence.errors import StoreKeyError
from whence.report import markdown_tables_html, write_report
from whence.store.results import to_result


@pytest.fixture
def frames_run(tmp_path):
    """A two-table pipeline from CSV files, a model on it and five explained test rows."""
    wh.reset()
    rng = np.random.default_rng(3)
    n = 60
    a = pd.DataFrame({"id": np.arange(n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    b = pd.DataFrame({"id": rng.integers(0, n, 150), "v": rng.normal(size=150)})
    a.to_csv(tmp_path / "a.csv", index=False)
    b.to_csv(tmp_path / "b.csv", index=False)
    ta = wh.read_csv(tmp_path / "a.csv", name="a")
    tb = wh.read_csv(tmp_path / "b.csv", name="b")
    agg = tb.groupby("id", as_index=False).agg(v=("v", "mean"))
    df = ta.merge(agg, on="id", how="left").fillna(0.0)
    X = df[["x1", "x2", "v"]].to_numpy()
    y = (np.asarray(X)[:, 0] + np.asarray(X)[:, 2] > 0).astype(int)
    model = LogisticRegression(max_iter=1000).fit(np.asarray(X), y)
    attr = Attributor(model, X, y)
    exs = [attr.explain(np.asarray(X)[i], y[i], test_row=i) for i in rng.choice(n, 5, replace=False)]
    return tmp_path, X, y, exs


def test_attribution_result_round_trip(frames_run):
    tmp, X, y, exs = frames_run
    path = tmp / "run.duckdb"
    table = pd.DataFrame({"figure": ["a", "b"], "value": [1.5, 2.0]})
    wh.save(path, "etl", X=X, results={"attr": exs, "bench": table, "note": {"kind": "note", "text": "hi"}})
    with wh.open(path) as store:
        run = store["etl"]
        assert run.results() == [{"name": "attr", "kind": "attribution"}, {"name": "bench", "kind": "table"},
                                 {"name": "note", "kind": "note"}]
        doc = run.result("attr")
        assert doc["kind"] == "attribution" and doc["n_train"] == X.shape[0]
        assert doc["model"] == "LogisticRegression" and len(doc["test_rows"]) == 5
        for ex, t in zip(exs, doc["test_rows"]):
            assert t["test_row"] == ex.test_row
            assert [r["train_row"] for r in t["top"]] == [r.row for r in ex.top(10)]
            assert [r["train_row"] for r in t["bottom"]] == [r.row for r in ex.bottom(10)]
            np.testing.assert_allclose([r["score"] for r in t["top"]], [r.score for r in ex.top(10)], rtol=1e-6)
            # the source rows of each ranked training row are trace_to_file's answer
            for r in t["top"][:3] + t["bottom"][:3]:
                want = [(s.table, s.row, s.line) for s in wh.trace_to_file(X, row=r["train_row"])]
                assert [(s["table"], s["row"], s["line"]) for s in r["sources"]] == want
            # table totals: by_source's; each is the summed score of the training rows that table fed
            tables = ex.by_source()["tables"]
            assert {b["table"]: pytest.approx(b["score"], rel=1e-6, abs=1e-9) for b in t["by_source"]} == tables
            for table, total in tables.items():
                rows_fed = [i for i in range(X.shape[0]) if any(s.table == table for s in wh.trace_to_file(X, row=i))]
                assert rows_fed and total == pytest.approx(float(ex.scores.astype(np.float64)[rows_fed].sum()),
                                                           rel=1e-5, abs=1e-9)
        assert run.result("bench") == {"columns": ["figure", "value"], "rows": [["a", 1.5], ["b", 2.0]],
                                       "kind": "table"}
        assert run.result("note") == {"text": "hi", "kind": "note"}
        with pytest.raises(StoreKeyError, match="no result named 'nope'.*attr"):
            run.result("nope")


def test_unlearning_result(tmp_path):
    from whence.unlearn import compare, forget
    wh.reset()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)
    model = LogisticRegression(C=1.0, max_iter=1000, tol=1e-10).fit(X, y)
    drop = np.arange(10)
    new = forget(model, X, y, drop)
    keep = np.setdiff1d(np.arange(200), drop)
    retrained = LogisticRegression(C=1.0, max_iter=1000, tol=1e-10).fit(X[keep], y[keep])
    rep = compare(new, model, retrained, X[keep], y[keep], forget=(X[drop], y[drop]))
    kind, doc = to_result(rep)
    assert kind == "unlearning"
    assert doc["figures"]["param_distance_to_retrained"] == pytest.approx(rep.param_distance)
    kind, cert = to_result(new.certificate)
    assert kind == "unlearning" and cert["n_forgotten"] == 10 and cert["method"] == "newton"
    t = wh.track(X, name="X")
    wh.save(tmp_path / "u.duckdb", "u", X=t, results={"unlearning": rep})
    with wh.open(tmp_path / "u.duckdb") as store:
        got = store["u"].result("unlearning")
        assert got["figures"]["kl_retrained_vs_unlearned"] == pytest.approx(rep.test_kl)
    html = write_report(tmp_path / "u.duckdb", tmp_path / "u.html").read_text()
    assert "param distance to retrained" in html


def test_bad_results_leave_the_store_as_it_was(tmp_path):
    wh.reset()
    a = wh.track(np.arange(6.0), name="a")
    path = tmp_path / "r.duckdb"
    wh.save(path, "first", y=a * 2)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="results must be a dict"):
        wh.save(path, "second", y=a * 3, results=[1, 2])
    with pytest.raises(TypeError, match="result 'x'.*cannot store a result of type object"):
        wh.save(path, "second", y=a * 3, results={"x": object()})
    with pytest.raises(TypeError, match="result 'x'.*'kind'"):
        wh.save(path, "second", y=a * 3, results={"x": {"value": 1}})
    with pytest.raises(ValueError, match="result name must be a non-empty string"):
        wh.save(path, "second", y=a * 3, results={"": {"kind": "k"}})
    with pytest.raises(ValueError, match="at least one Explanation"):
        to_result([])  # an empty list is neither
    assert path.read_bytes() == before
    with wh.open(path) as store:
        assert store.runs() == ["first"] and store["first"].results() == []


def test_store_without_results_table_reads_as_empty(tmp_path):
    """A store written before results were kept (no such table) opens, lists no results, and takes new runs."""
    wh.reset()
    a = wh.track(np.arange(6.0), name="a")
    path = tmp_path / "old.duckdb"
    wh.save(path, "old", y=a + 1)
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE results")
    con.close()
    with wh.open(path) as store:
        assert store["old"].results() == []
    wh.save(path, "new", y=a * 2, results={"t": pd.DataFrame({"x": [1]})})
    with wh.open(path) as store:
        assert store["old"].results() == [] and store["new"].results() == [{"name": "t", "kind": "table"}]


def test_overwrite_replaces_results(tmp_path):
    wh.reset()
    a = wh.track(np.arange(6.0), name="a")
    path = tmp_path / "r.duckdb"
    wh.save(path, "r", y=a, results={"one": {"kind": "k", "v": 1}})
    wh.save(path, "r", y=a, results={"two": {"kind": "k", "v": 2}}, overwrite=True)
    with wh.open(path) as store:
        assert [r["name"] for r in store["r"].results()] == ["two"]


def test_report_draws_results_and_benchmarks(frames_run):
    tmp, X, y, exs = frames_run
    path = tmp / "run.duckdb"
    wh.save(path, "etl", X=X, results={"attr": exs})
    bench = tmp / "summary.md"
    bench.write_text("# whence benchmarks\n\nSome words.\n\n| figure | target | measured |\n|---|---|---|\n"
                     "| save | <= 1 s | 0.2 s |\n")
    html = write_report(path, tmp / "report.html", bench=bench).read_text()
    assert "<script" not in html and not re.search(r"(src|href)=[\"']?(https?:)?//", html)  # nothing to fetch
    assert "score by source table" in html and html.count("<svg") >= 2  # the op graph and a bar chart
    for t in exs[:1]:
        assert f"Test row {t.test_row}" in html
    assert "<th>figure</th><th>target</th><th>measured</th>" in html and "<td>0.2 s</td>" in html
    # the charts name every source table
    for table in ("a", "b"):
        assert re.search(rf">{table}<", html)
    with pytest.raises(FileNotFoundError, match="no benchmark summary"):
        write_report(path, tmp / "r2.html", bench=tmp / "missing.md")


def test_markdown_tables_html_skips_rules():
    html = markdown_tables_html("## T\n| a | b |\n|:--|--:|\n| 1 | `x` |\ntext")
    assert html == "<h4>T</h4>\n<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>x</td></tr></table>\n<p>text</p>"


def test_explanation_result_without_lineage():
    kind, doc = to_result(Explanation(np.array([1.0, -1.0, 0.5], np.float32), output=0.3, label="prediction"))
    assert kind == "attribution" and doc["test_rows"][0]["by_source"] == []
    assert doc["test_rows"][0]["top"][0]["sources"] == [] and doc["test_rows"][0]["prediction"] == pytest.approx(0.3)
    json.dumps(doc, allow_nan=False)


def test_report_graph_of_the_credit_etl_is_a_readable_layered_layout(tmp_path):
    """The report's operation graph of the credit-risk ETL (about 50 operations): boxes laid out in layers by
    grandalf, none overlapping, every pipeline edge pointing down to a later layer, a page-sized drawing; the
    sources' sha256 shortened with a copy button."""
    from whence.datasets import credit_risk, credit_risk_etl
    from whence.query import _upstream
    from whence.report import graph_layout
    wh.reset()
    files = credit_risk(300, seed=0, path=tmp_path / "data")
    X, y, _, df = credit_risk_etl(*files.read(), return_frame=True)
    path = tmp_path / "run.duckdb"
    wh.save(path, "etl", X=X, y=y, df=df)
    out = write_report(path, tmp_path / "report.html")
    page = out.read_text()
    svg = page[page.index('<svg xmlns="http://www.w3.org/2000/svg" width'):]
    svg = svg[:svg.index("</svg>")]
    rects = [tuple(map(float, m)) for m in re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="(\d+)" height="(\d+)"',
                                                      svg)]
    with wh.open(path) as s:
        run = s["etl"]
        nodes = sorted({n.id: n for o in run.objects() for n in _upstream(run[o]._whence_node)}.values(),
                       key=lambda n: n.id)
    assert len(rects) == len(nodes) >= 40
    for i, (x1, y1, w1, h1) in enumerate(rects):  # no two boxes overlap
        for x2, y2, w2, h2 in rects[i + 1:]:
            assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
    width, height = map(float, re.search(r'width="(\d+)" height="(\d+)"', svg).groups())
    assert width <= 2000 and height <= 4000  # not a strip of thousands of pixels: readable at 100 %
    pos, routes = graph_layout(nodes)
    assert routes and all(pos[c][1] > pos[p][1] for p, c in routes)  # edges go down, layer by layer
    n_ops = sum(1 for n in nodes if not n.is_source)
    assert f"Operation graph ({n_ops} operations, 3 sources)" in page
    assert page.count("class='copy'") == 3 and page.count("…</code>") >= 3  # sha256: 12 digits and a copy button
    assert "<script" not in page
