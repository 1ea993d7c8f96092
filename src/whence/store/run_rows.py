"""A run as the rows of the store's tables, gathered before the file is touched.

:func:`collect_rows` walks the graph upstream of the objects saved and turns every operation into its rows:
the node (with its map's record, see :mod:`whence.store.codec`), its edges, the ProvRC rectangles of its
relation, and, for a source, the description of the table or array it is.  Nothing is written here: an error
leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings

import numpy as np

from ..errors import NotTrackedError, PartialLineageWarning
from . import codec
from .runs import ObjectHandle

__all__ = ["collect_rows"]


def collect_rows(run, objs):
    """Everything to write for the objects ``objs`` (``{name: object}``) saved under the run name ``run``.

    Returns
    -------
    dict
        ``run``, the rows of the tables (``nodes``, ``edges``, ``rects``, ``sources``, ``objects``), the index
        arrays (``arrays``: ``[(id, ndarray)]``) and their number (``n_arrays``).
    """
    from ..query import compose_before_query, prepare_node, upstream_nodes
    # lazy (Dask) objects: shapes unknown at capture are resolved first, as before any query
    roots = {name: prepare_node(_object_node(x)) for name, x in objs.items()}
    for node in roots.values():  # the relation of each object composed as a query composes it (its rectangles)
        compose_before_query(node)
    seen = {}
    for node in roots.values():
        for n in upstream_nodes(node):
            seen[n.id] = n
    order = [seen[i] for i in sorted(seen)]
    num = {n.id: i for i, n in enumerate(order)}
    w = codec.ArrayWriter()
    nodes, edges, rects, sources = [], [], [], []
    warned = []
    for n in order:
        i = num[n.id]
        kind, map_json, partial, node_rects = _relation_rows(run, n, num, w, warned)
        rects.extend(node_rects)
        nodes.append((run, i, n.op, list(n.shape), n.name, "FULL" if partial is None else "PARTIAL", partial,
                      bool(n.internal), n.detail or "", kind, map_json,
                      int(n.record().lineage_nbytes) if not n.is_source else 0))
        for k, p in enumerate(n.parents):
            edges.append((run, i, num[p.id], k, k in n.control))
        if n.is_source:
            sources.append(_source_row(run, i, n, w))
    if warned:
        warnings.warn("lineage saved as PARTIAL (all-to-all) for: " + "; ".join(warned), PartialLineageWarning,
                      stacklevel=3)
    objects = []
    for name, x in objs.items():
        node = roots[name]
        kind, columns = _object_kind(x)
        partial = any(n.partial for n in upstream_nodes(node))
        objects.append((run, name, num[node.id], kind, list(node.shape),
                        None if columns is None else json.dumps(columns), "PARTIAL" if partial else "FULL"))
    return {"run": run, "nodes": nodes, "edges": edges, "rects": rects, "sources": sources, "objects": objects,
            "arrays": w.arrays, "n_arrays": len(w.arrays)}


def _relation_rows(run, n, num, w, warned):
    """The relation of node ``n`` as the store keeps it: ``(map_kind, map JSON, partial reason, rectangles)``.

    The relation queries follow is the node's own map, or the composed one when dead intermediates were folded
    into it (written with its own parents, as a ``"link"``); a folded node keeps only its history.  A map that
    cannot be stored is saved as all-to-all (PARTIAL, with a warning naming it, appended to ``warned``).
    """
    from ..compose import FOLDED
    partial = n.partial
    m, lparents, lcontrol = n.lineage
    if n.link is FOLDED:
        return "folded", json.dumps({"kind": "folded"}), partial, []
    if m is None:
        return None, None, partial, []
    m, rec, note = _encoded(m, n, lparents, w, warned)
    partial = _with_note(partial, note)
    kind = rec["kind"]
    if n.link is not None:
        rec = {"kind": "link", "map": rec, "parents": [num[p.id] for p in lparents],
               "control": sorted(int(c) for c in lcontrol)}
        # the relation before a query composed it over live steps (forward walks from a start that
        # the composed relation passes over follow it: see whence.compose.forward_lineage)
        before = (n.cache or {}).get("uncompacted")
        if before is not None and before[0] is not None:
            bm, bparents, bcontrol = before
            _, brec, note = _encoded(bm, n, bparents, w, warned)
            partial = _with_note(partial, note)
            rec["before"] = {"map": brec, "parents": [num[p.id] for p in bparents],
                             "control": sorted(int(c) for c in bcontrol)}
    rects = []
    for row in (m.rectangles() if lparents else None) or ():
        pos = int(row[0])
        rects.append((run, num[n.id], pos, num[lparents[pos].id], *[list(map(int, v)) for v in row[1:]]))
    return kind, json.dumps(rec, separators=(",", ":")), partial, rects


def _encoded(m, n, parents, w, warned):
    """``(map, record, note)``: the record of ``m`` (of node ``n``, over ``parents``), or, when ``m`` cannot be
    stored, that of an all-to-all map in its place with the note that says so (and ``warned`` told)."""
    try:
        return m, codec.encode_map(m, w), None
    except codec.Unstorable as e:
        from ..maps import OpaqueMap
        m = OpaqueMap(n.shape, [p.shape for p in parents])
        warned.append(f"{n.op}: {e}")
        return m, codec.encode_map(m, w), f"{e} cannot be stored: saved as all-to-all"


def _with_note(partial, note):
    """The partial reason ``partial`` with ``note`` added (None: unchanged)."""
    if note is None:
        return partial
    return (partial + "; " if partial else "") + note


def _object_node(x):
    """The node of an object to save; NotTrackedError when it has none."""
    from ..query import node_of
    try:
        return node_of(x)
    except NotTrackedError as e:
        raise NotTrackedError(f"{e}; only tracked objects (or handles of a store) can be saved") from None


def _object_kind(x):
    """``(kind, columns)`` of an object saved: ``array``, ``frame`` (with its column labels), ``series``."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return "array", None
    if isinstance(x, pd.DataFrame):
        return "frame", [str(c) for c in x.columns]
    if isinstance(x, pd.Series):
        return "series", None
    if isinstance(x, ObjectHandle):
        return x.kind, x.columns
    return "array", None


def _source_row(run, i, n, w):
    """The row of the ``sources`` table for source node ``n`` (number ``i``): a table read from a file or a frame,
    or an array."""
    t = None
    try:
        # a table source is known to the tables layer only when it was loaded (a run without tables never loads it)
        mod = sys.modules.get("whence.tabular.source_tables")
        if mod is not None:
            t = mod.table_source(n)
    except Exception:  # pragma: no cover
        t = None
    if t is None:
        return (run, i, n.name, "array", list(n.shape), None, None, None, None, None, None, None, None, None)
    sha, notes, lines_ref = None, [], None
    if t.path is not None:
        sha, changed = _file_sha256(t)
        if changed:
            notes.append("the file changed (or is gone) since it was read: no sha256")
    lines = t.lines() if hasattr(t, "lines") else None
    if lines is None and getattr(t, "line_note", None):
        notes.append(t.line_note)
    note = "; ".join(dict.fromkeys(notes)) or None
    if lines is not None:
        lines_ref = json.dumps(w.put(np.asarray(lines, np.int64)))
    return (run, i, n.name, "table", list(n.shape), json.dumps([str(c) for c in t.columns]), t.path, t.format,
            t.size, t.mtime_ns, sha, t.n_rows, note, lines_ref)


def _file_sha256(t):
    """(sha256 hex, changed): None when the file is gone or changed since it was read."""
    stored = getattr(t, "sha256", None)
    if stored is not None:
        return stored, False
    try:
        st = os.stat(t.path)
    except OSError:
        return None, True
    if (st.st_size, st.st_mtime_ns) != (t.size, t.mtime_ns):
        return None, True
    h = hashlib.sha256()
    with open(t.path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest(), False
