"""A self-contained HTML report of a saved lineage store: one file, no scripts or styles fetched from anywhere.

For every run: its objects (kind, shape, completeness, operations, sources), its source files (path, rows,
sha256), the operation graph drawn as an SVG (sources on the left, each operation one column further than its
deepest input; PARTIAL operations in red), and, for a chosen row of each object, the source rows it derives
from with their files and lines.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

__all__ = ["write_report"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f5f5f5}.partial{color:#b00020;font-weight:600}.full{color:#1b7f3b;font-weight:600}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}.graph{overflow-x:auto;border:1px solid #eee}
"""


def _esc(x):
    return html.escape(str(x))


def _graph_svg(nodes):
    """An SVG of the operation graph: one column per depth (longest path from a source)."""
    depth = {}
    for n in nodes:  # topological: parents first
        depth[n.id] = 0 if not n.parents else 1 + max(depth[p.id] for p in n.parents)
    cols = {}
    for n in nodes:
        cols.setdefault(depth[n.id], []).append(n)
    W, H, gx, gy = 150, 34, 40, 14
    pos = {}
    for d, ns in cols.items():
        for i, n in enumerate(ns):
            pos[n.id] = (10 + d * (W + gx), 10 + i * (H + gy))
    width = 20 + (max(cols) + 1) * (W + gx) if cols else 100
    height = 20 + max(len(v) for v in cols.values()) * (H + gy) if cols else 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="operation graph">']
    for n in nodes:
        x2, y2 = pos[n.id]
        for k, p in enumerate(n.parents):
            x1, y1 = pos[p.id]
            dash = ' stroke-dasharray="4 3"' if k in n.control else ""
            out.append(f'<line x1="{x1 + W}" y1="{y1 + H / 2}" x2="{x2}" y2="{y2 + H / 2}" stroke="#999"{dash}/>')
    for n in nodes:
        x, y = pos[n.id]
        fill = "#e8f1fb" if n.is_source else ("#fde7ea" if n.partial else "#f4f4f4")
        label = f"{n.name}" if n.is_source else n.op
        title = f"{label} {n.shape}" + (f" PARTIAL: {n.partial}" if n.partial else "")
        out.append(f'<g class="node" data-op="{_esc(label)}"><title>{_esc(title)}</title>'
                   f'<rect x="{x}" y="{y}" width="{W}" height="{H}" rx="5" fill="{fill}" stroke="#888"/>'
                   f'<text x="{x + 6}" y="{y + 14}" font-size="11">{_esc(label[:22])}</text>'
                   f'<text x="{x + 6}" y="{y + 27}" font-size="10" fill="#666">'
                   f'{_esc("x".join(map(str, n.shape)) or "scalar")}</text></g>')
    out.append("</svg>")
    return "\n".join(out)


def write_report(store_path, out_path, row=0):
    """Write the HTML report of the store at ``store_path`` to ``out_path``; returns the path written."""
    import whence as wh
    from .query import _upstream
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>whence report</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>Lineage report</h1><p>Store <code>{_esc(Path(store_path).resolve())}</code>, written by "
             f"whence {_esc(wh.__version__)}.</p>"]
    with wh.open(store_path) as store:
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
                             f"<td><code>{_esc((r['sha256'] or r['line_note'] or '')[:64])}</code></td></tr>")
            parts.append("</table>")
            nodes = sorted({n.id: n for h in handles for n in _upstream(h._whence_node)}.values(),
                           key=lambda n: n.id)
            parts.append(f"<h3>Operation graph ({sum(1 for n in nodes if not n.is_source)} operations)</h3>"
                         f"<div class='graph'>{_graph_svg(nodes)}</div>")
            for h in handles:
                if not h.shape:
                    continue
                r = row if -h.shape[0] <= row < h.shape[0] else 0
                try:
                    t = wh.trace_to_file(h, row=r)
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
    parts.append("</body></html>")
    out = Path(out_path)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
