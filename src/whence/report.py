"""A self-contained HTML report of a saved lineage store: one file, no scripts or styles fetched from anywhere.

For every run: its objects (kind, shape, completeness, operations, sources), its source files (path, rows,
sha256), the operation graph drawn as an SVG (a layered layout by grandalf: sources at the top, edges routed
between the layers; PARTIAL operations in red), and, for a chosen row of each object, the source rows it derives
from with their files and lines.  Then the results saved with the run (:mod:`whence.store.results`):
attributions (top and bottom training rows with their source lines, the score by source table as a bar
chart), unlearning figures beside the retrained model, tables; and the benchmark summary when one is given
or found.  Charts are drawn by matplotlib into inline SVG.

Examples
--------
>>> import os, tempfile, numpy as np, whence as wh
>>> wh.reset()
>>> y = np.cumsum(wh.track(np.ones((3, 4)), name="a"), axis=1)
>>> d = tempfile.mkdtemp()
>>> _ = wh.save(os.path.join(d, "run.duckdb"), "demo", y=y)
>>> out = write_report(os.path.join(d, "run.duckdb"), os.path.join(d, "report.html"))
>>> "Operation graph" in out.read_text()
True
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from .results_html import (attribution_html, bar_chart_svg, counterfactual_html,  # noqa: F401 - re-exported
                           table_html, unlearning_html)

__all__ = ["write_report"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pos{color:#1b5e9b}.neg{color:#b3261e}.chart svg{max-width:100%;height:auto}details{margin:.5em 0}
summary{cursor:pointer;font-weight:600}.partial{color:#b00020;font-weight:600}.full{color:#1b7f3b;font-weight:600}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}.graph{overflow:auto;max-height:80vh;border:1px solid #eee}
td{overflow-wrap:anywhere}button.copy{font-size:.8em;padding:0 .4em;cursor:pointer}.note{font-size:.9em;color:#555}
"""


def _esc(x):
    return html.escape(str(x))


def _digest_cell(sha256, note=None):
    """A sha256 shortened to its first 12 hex digits (the whole value in the tooltip) with a button that copies
    the whole value; a note (why there is none) wraps.

    >>> cell = _digest_cell("ab" * 32)
    >>> "abababababab…" in cell and 'data-sha256="' + "ab" * 32 in cell and "<button" in cell
    True
    """
    if not sha256:
        return f"<span class='note'>{_esc(note or '')}</span>"
    full = _esc(sha256)
    return (f"<code class='sha' title='{full}'>{full[:12]}…</code> <button type='button' class='copy' "
            f"data-sha256=\"{full}\" title='copy the whole sha256' "
            f"onclick='navigator.clipboard.writeText(this.dataset.sha256)'>copy</button>")


class _Box:
    """grandalf's view of a vertex: its size in, its position out."""

    def __init__(self, w, h):
        self.w, self.h, self.xy = w, h, (0.0, 0.0)


class _Route:
    """grandalf's view of an edge: the polyline it routes (through the dummy vertices of long edges)."""

    pts = None

    def setpath(self, pts):
        self.pts = pts


def _drawn_parents(n, composed):
    """The parents drawn for ``n``: a table operation's first ``composed[n.id]`` inputs are its relation composed
    straight to the sources, drawn only when the node has no other input (as in the explorer)."""
    k = composed.get(n.id, 0) if composed else 0
    idx = list(range(len(n.parents)))
    return [i for i in idx if i >= k] or idx


def graph_layout(nodes, width=150, height=34, composed=None):
    """Positions of the operation graph's boxes and routes of its edges, by a layered (Sugiyama) layout.

    The layout is grandalf's: layers from sources (top) to results (bottom), crossings reduced by barycentre
    sweeps, long edges routed through dummy vertices between the layers.

    Returns
    -------
    pos : dict
        node id -> (x, y) of the box's top-left corner, all coordinates >= 0.
    routes : dict
        (parent id, child id) -> list of (x, y) points of the edge, from the parent's box to the child's.

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.ones((2, 3)), name="a")
    >>> y = (a * 2).sum(axis=0)
    >>> from whence.query import upstream_nodes
    >>> nodes = sorted(upstream_nodes(y.node), key=lambda n: n.id)
    >>> pos, routes = graph_layout(nodes)
    >>> [pos[n.id][1] for n in nodes]   # one layer per step, top to bottom
    [0.0, 74.0, 148.0]
    """
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    if not nodes:
        return {}, {}
    vs = {n.id: Vertex(n.id) for n in nodes}
    for v in vs.values():
        v.view = _Box(width, height)
    edges = []
    for n in nodes:
        for p in dict.fromkeys(n.parents[i].id for i in _drawn_parents(n, composed)):
            if p in vs:
                e = Edge(vs[p], vs[n.id])
                e.view = _Route()
                edges.append(e)
    graph = Graph(list(vs.values()), edges)
    x0 = 0.0
    pos, routes = {}, {}
    for comp in graph.C:  # connected components side by side
        lay = SugiyamaLayout(comp)
        lay.xspace, lay.yspace = 24, 40
        lay.init_all()
        lay.draw(N=8)
        xs = [v.view.xy[0] for v in comp.sV]
        rxs = [x for e in comp.sE if e.view.pts for x, _ in e.view.pts]
        lo = min([x - width / 2 for x in xs] + rxs)
        hi = max([x + width / 2 for x in xs] + rxs)
        ys = [v.view.xy[1] for v in comp.sV]
        top = min(ys) - height / 2
        for v in comp.sV:
            cx, cy = v.view.xy
            pos[v.data] = (x0 + cx - width / 2 - lo, cy - height / 2 - top)
        for e in comp.sE:
            pts = e.view.pts or [e.v[0].view.xy, e.v[1].view.xy]
            routes[(e.v[0].data, e.v[1].data)] = [(x0 + x - lo, y - top) for x, y in pts]
        x0 += hi - lo + 40
    return pos, routes


def _graph_svg(nodes, composed=None):
    """An SVG of the operation graph, laid out in layers by :func:`graph_layout`."""
    W, H = 150, 34
    pos, routes = graph_layout(nodes, W, H, composed)
    width = 20 + max([x + W for x, _ in pos.values()] + [x for r in routes.values() for x, _ in r], default=W)
    height = 20 + max((y for _, y in pos.values()), default=0) + H
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" role="img" '
           f'aria-label="operation graph"><g transform="translate(10,10)">']
    for n in nodes:
        for k in dict((n.parents[i].id, i) for i in _drawn_parents(n, composed)).values():
            p = n.parents[k]
            pts = routes.get((p.id, n.id))
            if pts is None:
                continue
            (x1, y1), (x2, y2) = pos[p.id], pos[n.id]
            pts = [(x1 + W / 2, y1 + H)] + pts[1:-1] + [(x2 + W / 2, y2)]  # from box edge to box edge
            dash = ' stroke-dasharray="4 3"' if k in n.control else ""
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline class="edge" points="{path}" fill="none" stroke="#999"{dash}/>')
    for n in nodes:
        x, y = pos[n.id]
        fill = "#e8f1fb" if n.is_source else ("#fde7ea" if n.partial else "#f4f4f4")
        label = f"{n.name}" if n.is_source else n.op
        title = f"{label} {n.shape}" + (f" PARTIAL: {n.partial}" if n.partial else "")
        out.append(f'<g class="node" data-op="{_esc(label)}"><title>{_esc(title)}</title>'
                   f'<rect x="{x:.1f}" y="{y:.1f}" width="{W}" height="{H}" rx="5" fill="{fill}" stroke="#888"/>'
                   f'<text x="{x + 6:.1f}" y="{y + 14:.1f}" font-size="11">{_esc(label[:22])}</text>'
                   f'<text x="{x + 6:.1f}" y="{y + 27:.1f}" font-size="10" fill="#666">'
                   f'{_esc("x".join(map(str, n.shape)) or "scalar")}</text></g>')
    out.append("</g></svg>")
    return "\n".join(out)


def markdown_tables_html(text):
    """The headings and pipe tables of a markdown benchmark summary as HTML (other lines as paragraphs)."""
    out, rows = [], []

    def flush():
        if rows:
            head, body = rows[0], [r for r in rows[1:] if not all(set(c.strip()) <= set("-:") for c in r)]
            out.append("<table><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>" for r in body)
                       + "</table>")
            rows.clear()
    for line in text.splitlines():
        st = line.strip()
        if st.startswith("|") and st.endswith("|"):
            rows.append([c.strip().strip("`") for c in st[1:-1].split("|")])
            continue
        flush()
        if st.startswith("#"):
            level = min(5, 2 + len(st) - len(st.lstrip("#")))  # under the report's h2 "Benchmarks"
            out.append(f"<h{level}>{_esc(st.lstrip('#').strip())}</h{level}>")
        elif st:
            out.append(f"<p>{_esc(st)}</p>")
    flush()
    return "\n".join(out)


def _results_html(run):
    items = run.results() if hasattr(run, "results") else []
    if not items:
        return ""
    parts = [f"<h3>Results saved with the run ({len(items)})</h3>"]
    for item in items:
        doc = run.result(item["name"])
        kind = item["kind"]
        parts.append(f"<h3>{_esc(kind.capitalize())}: <code>{_esc(item['name'])}</code></h3>")
        if kind == "attribution":
            parts.append(attribution_html(doc))
        elif kind == "unlearning":
            parts.append(unlearning_html(doc))
        elif kind == "table":
            parts.append(table_html(doc))
        else:
            parts.append(f"<pre>{_esc(json.dumps(doc, indent=1)[:20000])}</pre>")
    return "\n".join(parts)


def write_report(store_path, out_path, row=0, bench=None):
    """Write the HTML report of the store at ``store_path`` to ``out_path``; returns the path written.

    Parameters
    ----------
    store_path : str or path-like
        A store written by :func:`whence.save`.
    out_path : str or path-like
        The HTML file to write (one file: styles inline, charts as inline SVG).
    row : int, default 0
        The row of each object whose source rows are listed.
    bench : str or path-like, optional
        A benchmark summary (``benchmarks/results/summary.md`` of ``make bench``) to include.
    """
    from . import __version__
    from .query import upstream_nodes as _upstream
    from .store import open as open_store
    from .tabular.trace import trace_to_file
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>whence report</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Lineage report</h1><p>Store <code>{_esc(Path(store_path).resolve())}</code>, written by "
             f"whence {_esc(__version__)}.</p>"]
    with open_store(store_path) as store:
        for run_name in store.runs():
            run = store[run_name]
            parts.append(f"<h2>Run <code>{_esc(run_name)}</code></h2>")
            parts.append("<table><tr><th>object</th><th>kind</th><th>shape</th><th>completeness</th>"
                         "<th>operations</th><th>sources</th></tr>")
            handles = [run[o] for o in run.objects()]
            for h in handles:
                comp = h.completeness
                parts.append(f"<tr><td><code>{_esc(h.name)}</code></td><td>{_esc(h.kind)}</td>"
                             f"<td>{_esc('x'.join(map(str, h.shape)) or 'scalar')}</td>"
                             f"<td class='{comp.lower()}'>{comp}</td><td>{len(h.ops())}</td>"
                             f"<td>{_esc(', '.join(h.sources()))}</td></tr>")
            parts.append("</table>")
            src = store.sql("SELECT name, kind, path, n_rows, sha256, line_note FROM sources WHERE run = ? "
                            "ORDER BY name", [run_name])
            parts.append("<h3>Sources</h3><table><tr><th>source</th><th>kind</th><th>file</th><th>rows</th>"
                         "<th>sha256</th></tr>")
            for r in json.loads(src.to_json(orient="records")):
                parts.append(f"<tr><td><code>{_esc(r['name'])}</code></td><td>{_esc(r['kind'])}</td>"
                             f"<td><code>{_esc(r['path'] or '(memory)')}</code></td><td>{_esc(r['n_rows'] or '')}</td>"
                             f"<td>{_digest_cell(r['sha256'], r['line_note'])}</td></tr>")
            parts.append("</table>")
            nodes = sorted({n.id: n for h in handles for n in _upstream(h.node)}.values(),
                           key=lambda n: n.id)
            stored = run.nodes()  # the store's node numbers -> the nodes loaded in this process
            composed = {stored[int(k)].id: int(v) for k, v in store.sql(
                "SELECT node, CAST(json_extract(map, '$.n_inputs') AS BIGINT) AS n FROM nodes WHERE run = ? AND "
                "map_kind = 'table' AND json_extract(map, '$.n_inputs') IS NOT NULL", [run_name]).values.tolist()}
            parts.append(f"<h3>Operation graph ({sum(1 for n in nodes if not n.is_source)} operations, "
                         f"{sum(1 for n in nodes if n.is_source)} sources)</h3>"
                         f"<p>The pipeline's edges, sources at the top; table operations also keep their lineage "
                         f"composed straight to the sources (not drawn).</p>"
                         f"<div class='graph'>{_graph_svg(nodes, composed)}</div>")
            for h in handles:
                if not h.shape:
                    continue
                r = row if -h.shape[0] <= row < h.shape[0] else 0
                try:
                    t = trace_to_file(h, row=r)
                except Exception as e:  # noqa: BLE001  (a report shows what it can)
                    parts.append(f"<p>trace of {_esc(h.name)} row {r}: {_esc(e)}</p>")
                    continue
                parts.append(f"<h3>Row {r} of <code>{_esc(h.name)}</code>: {len(t)} source row(s), "
                             f"<span class='{'full' if t.complete else 'partial'}'>"
                             f"{'FULL' if t.complete else 'PARTIAL'}</span></h3>")
                parts.append("<table><tr><th>table</th><th>row</th><th>line</th><th>file</th><th>columns</th></tr>")
                for s in list(t)[:50]:
                    parts.append(f"<tr><td>{_esc(s.table)}</td><td>{s.row}</td>"
                                 f"<td>{'' if s.line is None else s.line}</td><td><code>{_esc(s.path or '')}</code></td>"
                                 f"<td>{_esc(', '.join(map(str, s.columns)))}</td></tr>")
                parts.append("</table>")
            parts.append(_results_html(run))
    if bench is not None:
        bench = Path(bench)
        if not bench.is_file():
            raise FileNotFoundError(f"no benchmark summary at {str(bench)!r} (make bench writes "
                                    f"benchmarks/results/summary.md)")
        parts.append("<h2>Benchmarks</h2>" + markdown_tables_html(bench.read_text(encoding="utf-8")))
    parts.append("</body></html>")
    out = Path(out_path)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
