"""Screenshots of the lineage explorer for the documentation, taken in headless Chromium.

Usage (from the repository root)::

    python docs/screenshots.py [--store demo/run.duckdb] [--out docs/img] [--chromium /usr/bin/chromium]

It uses the demo's store (``demo/run.duckdb``; when it is missing, ``python -m whence.demo`` writes it), serves
the explorer on a free loopback port, and saves:

``explorer-graph.png``
    the operation graph of the credit-risk ETL with one operation (a merge) selected;
``explorer-cells.png``
    the training matrix ``X`` with a cell clicked: its source cells in the three tables, and the cells of the
    other saved objects downstream of one of them;
``explorer-rows.png``
    a row of ``X`` traced to the lines of the three CSV files it was computed from;
``explorer-attribution.png``
    the attribution saved with the run (when there is one): a test row's most helpful and most harmful
    training rows with their source lines, and its score by source table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def demo_store(path):
    """The demo's store, written by the demo when it is missing."""
    path = Path(path)
    if not path.exists():
        print(f"{path} is missing: running the demo to write it (about a minute)", flush=True)
        subprocess.run([sys.executable, "-m", "whence.demo"], cwd=path.parent.parent, check=True,
                       stdout=subprocess.DEVNULL)
    return path


def shoot(store, out, chromium, width=1440, height=860):
    from playwright.sync_api import sync_playwright

    from whence.web.server import running
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with running(store) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            page.goto(url + "#/etl/graph")
            page.wait_for_selector("body[data-ready='1'] #graph-svg .node")
            merge = page.locator("#graph-svg .node[data-op='merge']").last.get_attribute("data-node")
            page.goto(url + f"#/etl/graph/{merge}")  # selected, and centred in the view
            page.wait_for_selector(f"#op-detail .op-detail-body[data-node='{merge}']")
            page.wait_for_timeout(200)
            written.append(_save(page, out / "explorer-graph.png"))

            row, col = _telling_cell(store, "etl", "X", row=5)
            page.goto(url + f"#/etl/cells/X/{row},{col}")  # the cell clicked, the window around it
            page.wait_for_selector(f"#main-grid td.selected[data-cell='{row},{col}']")
            page.wait_for_selector("#backward-panel .card.backward")
            first = page.locator("#backward-panel .card.backward td.hl").first
            first.click()
            page.wait_for_selector("#forward-panel #forward-summary")
            written.append(_save(page, out / "explorer-cells.png"))

            page.click("#main-grid th.row[data-row='5']")
            page.wait_for_selector("#trace-table tbody tr")
            page.locator("#trace-panel").scroll_into_view_if_needed()
            written.append(_save(page, out / "explorer-rows.png"))

            page.goto(url + "#/etl/results")
            if page.wait_for_selector("#test-rows tbody tr, #results-empty").get_attribute("id") != "results-empty":
                page.wait_for_selector("#by-source-chart")
                written.append(_save(page, out / "explorer-attribution.png"))
        finally:
            browser.close()
    return written


def _telling_cell(store, run, name, row):
    """The cell of ``row`` whose backward lineage reaches the most sources, then the most cells."""
    import whence as wh
    with wh.open(store) as s:
        h = s[run][name]
        best = max(range(min(h.shape[1], 40)), key=lambda j: (
            len(r := wh.backward(h, (row, j))), sum(len(v) for v in r.values())))
    return row, best


def _save(page, path):
    page.screenshot(path=str(path))
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KiB)")
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", default=str(ROOT / "demo" / "run.duckdb"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="a Chromium binary (Debian's location)")
    args = ap.parse_args(argv)
    shoot(demo_store(args.store), Path(args.out), args.chromium)
    return 0


if __name__ == "__main__":
    sys.exit(main())
