"""The explorer's page in a real headless Chromium (Playwright), against a server on a free loopback port.

What the page highlights is read back from the DOM (classes and data attributes) and compared with
``whence.backward`` / ``whence.forward`` / ``whence.trace_to_file`` on the live objects.  Screenshots go to
``$WHENCE_ARTIFACTS`` (default ``tests/artifacts/``).

The module is skipped when Debian's Chromium (``/usr/bin/chromium``) is missing, unless
``WHENCE_REQUIRE_BROWSER=1``: then it fails.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = os.environ.get("WHENCE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
_REQUIRED = os.environ.get("WHENCE_REQUIRE_BROWSER") == "1"

if not Path(CHROMIUM).exists():
    if _REQUIRED:
        pytest.fail(f"WHENCE_REQUIRE_BROWSER=1 but there is no Chromium at {CHROMIUM} (apt-get install chromium)",
                    pytrace=False)
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover
    if _REQUIRED:
        pytest.fail("WHENCE_REQUIRE_BROWSER=1 but playwright is not installed", pytrace=False)
    pytest.skip("playwright is not installed", allow_module_level=True)
pytest.importorskip("fastapi")
pytest.importorskip("pandas")

import whence as wh  # noqa: E402
from whence.web.server import running  # noqa: E402

ARTIFACTS = Path(os.environ.get("WHENCE_ARTIFACTS") or Path(__file__).parent / "artifacts")
TIMEOUT_MS = 15_000

ATTRIBUTION = {
    "kind": "attribution", "model": "logistic regression", "n_train": 4, "train_object": "X",
    "test_rows": [
        {"test_row": 3, "label": 1, "prediction": 0.8, "output": "margin of class 1",
         "top": [{"train_row": 1, "score": 0.4, "sources": [{"table": "people", "row": 1, "path": "p.csv", "line": 3}]},
                 {"train_row": 2, "score": 0.1, "sources": []}],
         "bottom": [{"train_row": 0, "score": -0.3, "sources": [{"table": "orders", "row": 0, "path": "o.csv",
                                                                  "line": 2}]}],
         "by_source": [{"table": "people", "score": 0.5}, {"table": "orders", "score": -0.2}]},
        {"test_row": 7, "label": 0, "prediction": 0.1, "top": [], "bottom": [],
         "by_source": [{"table": "people", "score": 0.05}],
         "counterfactual": {"output": 0.1, "tables": {"people": {"rows": 4, "fed_nothing": 1, "exact": True},
                                                       "orders": {"rows": 6, "fed_nothing": 0, "exact": True}},
                            "largest": [{"rank": 0, "table": "orders", "row": 5, "effect": -0.02, "line": 7,
                                         "path": "o.csv", "train_rows": 1}],
                            "delete_table": {"orders": {"effect": -0.07}}}},
    ],
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    people = d / "people.csv"
    people.write_text("id,age,city,score\n1,30,Oslo,0.5\n2,41,Lima,0.7\n3,25,Oslo,0.1\n4,52,Pune,0.9\n"
                      "5,38,Lima,0.4\n")
    orders = d / "orders.csv"
    orders.write_text("order,id,amount\n10,1,5.0\n11,2,7.5\n12,2,1.0\n13,4,3.0\n14,5,2.5\n")
    wh.reset()
    rng = np.random.default_rng(2)
    img = wh.track(rng.normal(100, 15, size=(6, 8)).round(1), name="img")
    gains = wh.track(rng.uniform(0.9, 1.1, size=8), name="gains")
    smooth = ((img * gains)[:, :-1] + (img * gains)[:, 1:]) / 2
    score = np.sort(np.where(smooth > 100, smooth, 0.0), axis=1)[:, ::-1][:, :3].mean(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spectrum = np.abs(np.fft.rfft(img, axis=1))
    t = wh.read_csv(people, name="people")
    o = wh.read_csv(orders, name="orders")
    spent = o.groupby("id", as_index=False).agg(spent=("amount", "sum"))
    df = t[t["age"] > 26].merge(spent, on="id", how="left")
    X = df[["age", "score", "spent"]].to_numpy()
    path = d / "run.duckdb"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wh.save(path, "arrays", smooth=smooth, score=score, spectrum=spectrum)
        wh.save(path, "tables", df=df, X=X, results={"attribution": ATTRIBUTION})
    return {"path": path, "img": img, "gains": gains, "smooth": smooth, "score": score, "X": X, "df": df}


@pytest.fixture(scope="module")
def server(pipeline):
    with running(pipeline["path"]) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.url_base = server
    yield pg
    ctx.close()
    assert not errors, errors


def _shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _cells(locator):
    return sorted(tuple(int(v) for v in k.split(",")) for k in locator.evaluate_all(
        "els => els.map(e => e.dataset.cell)"))


def _expected(cells):
    return sorted(map(tuple, np.asarray(cells).tolist()))


def test_graph_click_an_operation(page, pipeline):
    page.goto(page.url_base + "#/arrays/graph")
    page.wait_for_selector("body[data-ready='1'] #graph-svg .node")
    with wh.open(pipeline["path"]) as store:
        nodes = store["arrays"]._nodes()
        sort_id = next(i for i, n in enumerate(nodes) if n.op == "sort")
        fft_id = next(i for i, n in enumerate(nodes) if n.partial)
        n_parents = len(nodes[sort_id].parents)
        kinds = dict(store.sql("SELECT node, map_kind FROM nodes WHERE run = 'arrays'").values.tolist())
    assert page.locator("#graph-svg .node").count() == len(nodes)
    page.locator(f"#graph-svg .node[data-node='{sort_id}']").click()
    body = page.wait_for_selector(f"#op-detail .op-detail-body[data-node='{sort_id}']")
    assert "sort" in body.query_selector(".op-title").inner_text()
    assert page.locator("#op-detail ul.inputs li").count() == n_parents
    assert page.locator(f"#graph-svg .node[data-node='{sort_id}']").get_attribute("class").split().count("selected")
    kv = dict(zip(page.locator("#op-detail table.kv th").all_inner_texts(),
                  page.locator("#op-detail table.kv td").all_inner_texts()))
    assert kv["map kind"] == kinds[sort_id] and kv["node"] == str(sort_id)
    # an input is a link to its own operation
    parent = page.locator("#op-detail ul.inputs a.op-ref").first
    pid = parent.get_attribute("data-node")
    parent.click()
    page.wait_for_selector(f"#op-detail .op-detail-body[data-node='{pid}']")
    # a PARTIAL operation says why
    page.goto(page.url_base + f"#/arrays/graph/{fft_id}")
    page.wait_for_selector(f"#op-detail .op-detail-body[data-node='{fft_id}']")
    assert page.locator("#op-detail .reason").inner_text().startswith("PARTIAL")
    assert "partial" in page.locator(f"#graph-svg .node[data-node='{fft_id}']").get_attribute("class")
    # pan and zoom move the drawing
    vp = page.locator("#graph-viewport")
    before = vp.get_attribute("transform")
    page.click("#zoom-in")
    zoomed = vp.get_attribute("transform")
    assert zoomed != before
    box = page.locator("#graph-svg").bounding_box()
    page.mouse.move(box["x"] + 12, box["y"] + box["height"] - 12)
    page.mouse.down()
    page.mouse.move(box["x"] + 80, box["y"] + box["height"] - 40, steps=4)
    page.mouse.up()
    assert vp.get_attribute("transform") != zoomed
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    before_wheel = vp.get_attribute("transform")
    page.mouse.wheel(0, 300)
    page.wait_for_function("t => document.getElementById('graph-viewport').getAttribute('transform') !== t",
                           arg=before_wheel)
    _shot(page, "explorer-graph")


def test_click_array_cells_highlights_their_lineage(page, pipeline):
    smooth, img, gains = pipeline["smooth"], pipeline["img"], pipeline["gains"]
    page.goto(page.url_base + "#/arrays/cells/smooth")
    page.wait_for_selector("#main-grid td[data-cell='0,0']")
    rng = np.random.default_rng(4)
    for cell in [(2, 3)] + [tuple(int(v) for v in rng.integers(0, d)) for d in [smooth.shape]] + \
            [(int(rng.integers(0, 6)), int(rng.integers(0, 7))) for _ in range(2)]:
        key = f"{cell[0]},{cell[1]}"
        page.click(f"#main-grid td[data-cell='{key}']")
        page.wait_for_selector(f"#backward-panel h3:has-text('smooth[{key}]')")
        exp = wh.backward(smooth, cell)
        for src in ("img", "gains"):
            card = page.locator(f"#backward-panel .card[data-name='{src}']")
            assert int(card.get_attribute("data-count")) == len(exp[src])
            assert _cells(card.locator("td.hl")) == _expected(exp[src]), (cell, src)
        assert page.locator("#main-grid td.selected").get_attribute("data-cell") == key
    # a source cell pushed forward: the cells of the object highlighted in its grid
    hl = page.locator("#backward-panel .card[data-name='img'] td.hl").first
    src_key = hl.get_attribute("data-cell")
    hl.click()
    page.wait_for_selector(f"#forward-panel h3:has-text('img[{src_key}]')")
    src_cell = tuple(int(v) for v in src_key.split(","))
    assert _cells(page.locator("#main-grid td.fwd")) == _expected(wh.forward(img, src_cell, smooth))
    _shot(page, "explorer-cells")
    # a 1-D object, and gains seen through it
    page.goto(page.url_base + "#/arrays/cells/score/4")
    page.wait_for_selector("#backward-panel h3:has-text('score[4]')")
    exp = wh.backward(pipeline["score"], (4,))
    for src in ("img", "gains"):
        got = _cells(page.locator(f"#backward-panel .card[data-name='{src}'] td.hl"))
        assert got == _expected(exp[src]), src
    g = page.locator("#backward-panel .card[data-name='gains'] td.hl").first
    gkey = g.get_attribute("data-cell")
    g.click()
    page.wait_for_selector(f"#forward-panel h3:has-text('gains[{gkey}]')")
    assert _cells(page.locator("#main-grid td.fwd")) == _expected(wh.forward(gains, (int(gkey),), pipeline["score"]))


def test_click_a_table_row_lists_its_file_lines(page, pipeline):
    X = pipeline["X"]
    page.goto(page.url_base + "#/tables/cells/X")
    page.wait_for_selector("#main-grid th.row[data-row='0']")
    for row in range(len(X)):
        page.click(f"#main-grid th.row[data-row='{row}']")
        page.wait_for_selector(f"#trace-panel h3:has-text('X row {row}')")
        got = page.locator("#trace-table tbody tr").evaluate_all(
            "trs => trs.map(t => [t.dataset.table, +t.dataset.row, t.dataset.line === '' ? null : +t.dataset.line,"
            " t.dataset.path])")
        exp = wh.trace_to_file(X, row=row)
        assert got == [[e.table, e.row, e.line, e.path] for e in exp], row
        assert page.locator("#trace-summary").inner_text().startswith(f"{len(exp)} source row")
    assert page.locator("#row-tab").is_visible() and not page.locator("#cell-tab").is_visible()
    _shot(page, "explorer-rows")
    # the table of a source row opens that source's cells at the row
    first = wh.trace_to_file(X, row=len(X) - 1)[0]
    page.locator("#trace-table tbody tr a.tbl").first.click()
    page.wait_for_selector("#main-grid td.selected")
    assert page.locator(".obj-head h2").inner_text() == first.table
    assert page.locator("#main-grid td.selected").get_attribute("data-cell") == f"{first.row},0"
    # a frame's cell: backward into the tables, columns named
    page.goto(page.url_base + "#/tables/cells/df/1,4")
    page.wait_for_selector("#backward-panel h3:has-text('df[1,4]')")
    exp = wh.backward(pipeline["df"], (1, 4))
    for src in ("people", "orders"):
        card = page.locator(f"#backward-panel .card[data-name='{src}']")
        assert _cells(card.locator("td.hl")) == _expected(exp.get(src, np.zeros((0, 2)))), src


def test_attribution_view(page):
    page.goto(page.url_base + "#/tables/results")
    page.wait_for_selector("#test-rows tbody tr")
    assert page.locator("#test-rows tbody tr").evaluate_all("t => t.map(r => +r.dataset.testRow)") == [3, 7]
    first = ATTRIBUTION["test_rows"][0]
    bars = page.locator("#by-source-chart rect.bar")
    assert bars.evaluate_all("b => b.map(r => [r.dataset.table, +r.dataset.score])") == [
        [s["table"], s["score"]] for s in first["by_source"]]
    assert page.locator("table.attr-rows.top tbody tr").evaluate_all("t => t.map(r => +r.dataset.trainRow)") == [1, 2]
    assert "people row 1 · line 3" in page.locator("table.attr-rows.top tbody tr").first.inner_text()
    assert page.locator("#by-source-chart rect.bar.neg").get_attribute("data-table") == "orders"
    # the explained output is named as the explanation names it (a margin is not a prediction)
    detail = page.locator("#attr-detail").inner_text()
    assert "margin of class 1" in detail and "prediction" not in detail
    assert "prediction" not in page.locator("#test-rows thead").inner_text()
    _shot(page, "explorer-attribution")
    page.click("#test-rows tbody tr[data-test-row='7']")
    page.wait_for_selector("#attr-detail h2:has-text('Test row 7')")
    assert page.locator("#by-source-chart rect.bar").count() == 1
    # the effects of deleting source rows, when the result has them
    assert page.locator("#counterfactual-chart rect.bar.neg").get_attribute("data-table") == "orders"
    assert "orders row 5 · line 7" in page.locator("#cf-rows tbody tr").first.inner_text()
    # a run without results says so
    page.goto(page.url_base + "#/arrays/results")
    page.wait_for_selector("#results-empty")


def test_bad_address_shows_an_error_not_a_blank_page(page):
    page.goto(page.url_base + "#/arrays/cells/nope")
    page.wait_for_selector("#error-banner:not([hidden])")
    assert "nope" in page.locator("#error-banner").inner_text()
