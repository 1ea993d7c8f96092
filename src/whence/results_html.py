"""The HTML of the results kept with a run: attributions, counterfactual effects, unlearning figures, tables.

Each function takes a result's stored document (see :mod:`whence.store.results`) and returns an HTML fragment;
charts are drawn by matplotlib into inline SVG.  The report (:mod:`whence.report`) and the notebook displays
(:mod:`whence.notebook`) both draw results with them; neither reads a store here.
"""

from __future__ import annotations

import html
import re

__all__ = ["bar_chart_svg", "attribution_html", "counterfactual_html", "unlearning_html", "table_html"]


def _esc(x):
    return html.escape(str(x))


def _svg_figure(fig):
    """A matplotlib figure as inline SVG text (fonts as text, not paths: small and searchable)."""
    import io

    import matplotlib
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)  # creator/date RDF block


def bar_chart_svg(labels, values, title="", xlabel=""):
    """A horizontal bar chart (positive bars blue, negative red) as inline SVG, drawn by matplotlib.

    Examples
    --------
    >>> svg = bar_chart_svg(["bureau", "application"], [0.5, -0.25], title="score by source")
    >>> svg.startswith("<svg") and "bureau" in svg
    True
    """
    from matplotlib.figure import Figure
    values = [float(v) for v in values]
    fig = Figure(figsize=(6.0, 0.45 * max(2, len(values)) + 0.6))
    ax = fig.add_subplot()
    ypos = list(range(len(values)))[::-1]
    ax.barh(ypos, values, color=["#1b5e9b" if v >= 0 else "#b3261e" for v in values], height=0.6)
    ax.set_yticks(ypos, [str(x) for x in labels])
    ax.axvline(0, color="#444", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title, loc="left", fontsize=10)
    if xlabel:
        ax.set_xlabel(xlabel)
    return _svg_figure(fig)


def _num(v, digits=4):
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return _esc(v)


def _source_lines(srcs, limit=4):
    if not srcs:
        return ""
    out = [f"{_esc(s['table'])}{'' if s.get('line') is None else ' line ' + str(s['line'])}" for s in srcs[:limit]]
    return "; ".join(out) + (f"; +{len(srcs) - limit} more" if len(srcs) > limit else "")


def _ranking_table(rows, title):
    out = [f"<h4>{_esc(title)}</h4><table><tr><th>rank</th><th>training row</th><th>score</th>"
           f"<th>source rows (table, file line)</th></tr>"]
    for r in rows:
        cls = "pos" if r["score"] >= 0 else "neg"
        out.append(f"<tr><td>{r['rank']}</td><td>{r['train_row']}</td><td class='num {cls}'>{r['score']:+.4g}</td>"
                   f"<td>{_source_lines(r.get('sources') or [])}</td></tr>")
    out.append("</table>")
    return "".join(out)


def attribution_html(doc, max_rows=5):
    """HTML of an ``attribution`` result: per test row, the top and bottom training rows with their source
    lines, and the score by source table as a bar chart."""
    parts = [f"<p>Model <code>{_esc(doc.get('model') or '?')}</code>, {doc.get('n_train', 0):,} training rows"
             + (f" (<code>{_esc(doc['train_object'])}</code>)" if doc.get("train_object") else "")
             + f"; {len(doc.get('test_rows', []))} test row(s) explained.</p>"]
    for i, t in enumerate(doc.get("test_rows", [])[:max_rows]):
        head = (f"Test row {t['test_row']}: {_esc(t.get('output') or 'output')}"
                + (f" = {t['prediction']:.4g}" if isinstance(t.get("prediction"), (int, float)) else "")
                + (f", label {_esc(t['label'])}" if t.get("label") is not None else ""))
        parts.append(f"<details{' open' if i == 0 else ''}><summary>{head}</summary>")
        if t.get("counterfactual"):
            parts.append(counterfactual_html(t["counterfactual"]))
        if t.get("by_source"):
            parts.append("<div class='chart'>" + bar_chart_svg(
                [b["table"] for b in t["by_source"]], [b["score"] for b in t["by_source"]],
                title="score by source table, equal split (a convention: training-row scores shared out, "
                      "not the effect of deleting the table)", xlabel="score") + "</div>")
        parts.append(_ranking_table(t.get("top", []), "Training rows that raised it most"))
        parts.append(_ranking_table(t.get("bottom", []), "Training rows that lowered it most"))
        parts.append("</details>")
    if len(doc.get("test_rows", [])) > max_rows:
        parts.append(f"<p>... and {len(doc['test_rows']) - max_rows} more test rows (in the store).</p>")
    return "\n".join(parts)


def counterfactual_html(cf, max_rows=10):
    """HTML of one prediction's counterfactual effects: what the output would be without each source table
    (a bar chart), per table the largest single-row effect and the rows that fed nothing, and the source rows
    whose deletion would change it most, with their file lines."""
    out = ["<h4>Without these source rows: the effect of deleting them (output with minus output without)</h4>"]
    dt = cf.get("delete_table") or {}
    if dt:
        out.append("<div class='chart'>" + bar_chart_svg(
            list(dt), [v["effect"] for v in dt.values()],
            title="effect of deleting each file (ETL re-run through the lineage, model moved to its new optimum)",
            xlabel="output with - output without") + "</div>")
    tabs = cf.get("tables") or {}
    if tabs:
        out.append("<div class='chart'>" + bar_chart_svg(
            list(tabs), [v["largest"] for v in tabs.values()],
            title="largest effect of deleting one source row, per table", xlabel="output with - output without")
            + "</div>")
    for name, why in (cf.get("delete_table_undefined") or {}).items():
        out.append(f"<p class='muted'>Without the whole {_esc(name)} file: no answer ({_esc(why)}).</p>")
    out.append("<table><tr><th>table</th><th>source rows</th><th>fed nothing (effect 0)</th><th>largest single "
               "effect</th><th>sum of positive</th><th>sum of negative</th><th>without the whole file</th>"
               "<th>rules</th></tr>")
    for name, s in (cf.get("tables") or {}).items():
        d = dt.get(name)
        out.append(f"<tr><td>{_esc(name)}</td><td class='num'>{s['rows']:,}</td><td class='num'>"
                   f"{s['fed_nothing']:,}</td><td class='num'>{_num(s['largest'])} (row {s['largest_row']})</td>"
                   f"<td class='num'>{_num(s['sum_positive'])}</td><td class='num'>{_num(s['sum_negative'])}</td>"
                   f"<td class='num'>{_num(d['prediction_without']) if d else 'n/a'}</td>"
                   f"<td>{'exact' if s['exact'] else 'ETL re-run'}</td></tr>")
    out.append("</table><h4>Source rows whose deletion would change it most</h4><table><tr><th>rank</th>"
               "<th>table</th><th>row</th><th>file line</th><th>effect</th><th>training rows changed</th></tr>")
    for e in (cf.get("largest") or [])[:max_rows]:
        cls = "pos" if (e.get("effect") or 0) >= 0 else "neg"
        line = e.get("line")
        where = f"{_esc(e.get('path') or '')}:{line}" if line is not None else "-"
        out.append(f"<tr><td>{e['rank']}</td><td>{_esc(e['table'])}</td><td class='num'>{e['row']}</td>"
                   f"<td><code>{where}</code></td><td class='num {cls}'>{_num(e['effect'])}</td>"
                   f"<td class='num'>{e['train_rows']}</td></tr>")
    out.append("</table>")
    return "".join(out)


def unlearning_html(doc):
    """HTML of an ``unlearning`` result: its figures, and the update time beside retraining as a chart."""
    fig = doc.get("figures", {})
    parts = [f"<p>{_esc(doc.get('method') or '')}"
             + (f": {doc['n_forgotten']:,} source rows forgotten" if doc.get("n_forgotten") is not None else "")
             + ".</p><table><tr><th>figure</th><th>value</th></tr>"]
    for k, v in fig.items():
        parts.append(f"<tr><td>{_esc(k.replace('_', ' '))}</td><td class='num'>{_num(v)}</td></tr>")
    parts.append("</table>")
    up, re_ = fig.get("update_seconds", fig.get("unlearn_seconds")), fig.get("retrain_seconds")
    if isinstance(up, (int, float)) and isinstance(re_, (int, float)):
        parts.append("<div class='chart'>" + bar_chart_svg(
            ["model edit (Newton update)", "retraining from scratch"], [up * 1e3, re_ * 1e3],
            title="time to take the rows out (ms)", xlabel="milliseconds") + "</div>")
    return "\n".join(parts)


def table_html(doc, limit=200):
    """HTML of a ``table`` result (``{"columns", "rows"}``)."""
    out = ["<table><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in doc.get("columns", [])) + "</tr>"]
    for r in doc.get("rows", [])[:limit]:
        out.append("<tr>" + "".join(f"<td>{_num(v)}</td>" for v in r) + "</tr>")
    out.append("</table>")
    return "".join(out)
