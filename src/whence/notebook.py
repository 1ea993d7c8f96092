"""Rich displays in Jupyter: the HTML that ``_repr_html_`` returns for whence's objects.

A tracked array shows its values with a lineage summary under them (last operation, operations, sources,
FULL or PARTIAL); a tracked frame shows pandas' own table with the same summary and the files of its sources;
an attribution explanation shows its top and bottom training rows and the score by source table as a bar
chart; an unlearning result shows its figures beside the retrained model.  Nothing here computes lazy (Dask)
values: they are described, not materialised.

Examples
--------
>>> import numpy as np, whence as wh
>>> wh.reset()
>>> a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
>>> html = (a * 2).sum(axis=1)._repr_html_()
>>> "FULL" in html and "multiply" in html and "<code>a</code>" in html
True
"""

from __future__ import annotations

import html as _html

import numpy as np

__all__ = ["lineage_summary", "array_html", "frame_html", "explanation_html", "unlearning_html"]

_STYLE = ("<style>.whence-box{font:13px/1.4 system-ui,sans-serif;margin:.3em 0}"
          ".whence-box table{border-collapse:collapse}.whence-box td,.whence-box th{padding:1px 8px;"
          "text-align:left;border-bottom:1px solid #eee}.whence-full{color:#1b7f3b;font-weight:600}"
          ".whence-partial{color:#b00020;font-weight:600}.whence-box pre{margin:.2em 0;font-size:12px}</style>")


def _esc(x):
    return _html.escape(str(x))


def lineage_summary(node):
    """``{"last", "ops", "op_names", "sources", "partial", "reasons"}`` of the graph above ``node``."""
    from .query import upstream_nodes as _upstream
    nodes = _upstream(node)
    ops = [n for n in nodes if not n.is_source and not n.internal]
    names = []
    for n in ops:
        if n.op not in names:
            names.append(n.op)
    return {"last": f"source {node.name!r}" if node.is_source else node.op, "ops": len(ops), "op_names": names,
            "sources": [n.name for n in nodes if n.is_source],
            "partial": any(n.partial for n in nodes),
            "reasons": [f"{n.op}: {n.partial}" for n in nodes if n.partial][:5]}


def _summary_html(node, files=None):
    s = lineage_summary(node)
    badge = ("<span class='whence-partial'>PARTIAL</span>" if s["partial"]
             else "<span class='whence-full'>FULL</span>")
    ops = ", ".join(_esc(o) for o in s["op_names"][:12]) + (" ..." if len(s["op_names"]) > 12 else "")
    rows = [f"<tr><th>lineage</th><td>{badge} &middot; last: {_esc(s['last'])} &middot; {s['ops']} operation"
            f"{'s' if s['ops'] != 1 else ''}</td></tr>"]
    if ops:
        rows.append(f"<tr><th>operations</th><td>{ops}</td></tr>")
    src = []
    for name in s["sources"]:
        f = (files or {}).get(name)
        src.append(f"<code>{_esc(name)}</code>" + (f" (<code>{_esc(f)}</code>)" if f else ""))
    rows.append(f"<tr><th>sources</th><td>{', '.join(src) or '(none)'}</td></tr>")
    for r in s["reasons"]:
        rows.append(f"<tr><th>partial</th><td class='whence-partial'>{_esc(r)}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def array_html(t):
    """The HTML of a :class:`~whence.TrackedArray`: its values (lazy ones described) and lineage summary."""
    from .tracked import plain
    data = plain(t)  # the values as they are held: a lazy array is described, not computed
    if isinstance(data, np.ndarray):
        with np.printoptions(threshold=200, edgeitems=3, linewidth=100):
            body = f"<pre>{_esc(np.array2string(data))}</pre>"
        head = f"TrackedArray {_esc(data.dtype)} {_esc(data.shape)}"
    else:  # a lazy (Dask) array: its own description, never its values
        own = getattr(data, "_repr_html_", None)
        body = own() if callable(own) else f"<pre>{_esc(repr(data))}</pre>"
        head = f"TrackedArray over {_esc(type(data).__module__.split('.')[0])} {_esc(getattr(data, 'shape', ''))}"
    return (f"{_STYLE}<div class='whence-box'><b>{head}</b>{body}{_summary_html(t.node)}</div>")


def _source_files(node):
    from .query import upstream_nodes as _upstream
    out = {}
    try:
        from .tabular import table_source
    except ImportError:  # pragma: no cover - pandas is optional
        return out
    for n in _upstream(node):
        if n.is_source:
            ts = table_source(n)
            path = getattr(ts, "path", None) if ts is not None else None
            if path:
                out[n.name] = str(path)
    return out


def frame_html(f, table_html):
    """The HTML of a tracked frame or series: pandas' table (``table_html``) and a lineage summary."""
    node = f._whence_node
    if node is None:
        return table_html
    return (f"{_STYLE}<div class='whence-box'>{table_html}{_summary_html(node, _source_files(node))}</div>")


def explanation_html(ex, k=5):
    """The HTML of an :class:`~whence.attribution.Explanation`."""
    from .results_html import attribution_html
    from .store.results import to_result
    return f"{_STYLE}<div class='whence-box'>{attribution_html(to_result(ex, k=k)[1])}</div>"


def unlearning_html(obj):
    """The HTML of an unlearning result (``forget_sources``'s result, a ComparisonReport or a Certificate)."""
    from .results_html import unlearning_html as figures
    from .store.results import to_result
    return f"{_STYLE}<div class='whence-box'>{figures(to_result(obj)[1])}</div>"
