"""Exports of the lineage of an object to the formats other tools read: Parquet, W3C PROV-JSON, OpenLineage.

Every export starts from the graph node of the object asked about (a tracked array, a tracked frame or
series, a plain array handed out by ``np.asarray(frame)``, or a handle of a saved store) and walks the
operations upstream of it.  Nothing but that graph (:class:`whence.graph.Node`: op, shape, map, parents,
control inputs, completeness; and the :class:`~whence.tabular.source_tables.TableSource` of source tables) is read,
so a store handle, which rebuilds the same graph from its file, exports exactly what the live object did.

- :func:`parquet`: the relation kept compressed (ProvRC rectangles, the index arrays of data-dependent
  operations, the row and column relations of tables), and as explicit cell pairs on request;
- :func:`prov_json`: the run in W3C PROV-JSON: entities for arrays, tables and files, activities for
  operations, ``used`` / ``wasGeneratedBy`` / ``wasDerivedFrom`` between them;
- :func:`openlineage`: the two OpenLineage run events (START, COMPLETE) of the computation, with the
  column-level lineage of the object in the ``columnLineage`` facet of its output dataset.

The OpenLineage events declare the spec versions they are checked against in the tests:
:data:`OPENLINEAGE_SCHEMA_URL` (core spec 2-0-0), :data:`COLUMN_LINEAGE_SCHEMA_URL` (facet 1-1-0) and
:data:`SCHEMA_FACET_SCHEMA_URL` (facet 1-0-0).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import math
import os
import re
import sys
import uuid
from urllib.parse import urlsplit

import numpy as np

from ..maps import ElementwiseMap, GatherMap, PairsMap, UnionMap
from ..query import Relation, node_of as _node_of, upstream_nodes as _upstream, backward

__all__ = ["COLUMN_LINEAGE_SCHEMA_URL", "DEFAULT_PRODUCER", "OPENLINEAGE_SCHEMA_URL", "SCHEMA_FACET_SCHEMA_URL",
           "openlineage", "parquet", "prov_json"]

PROV_NAMESPACE = "http://www.w3.org/ns/prov#"
OPENLINEAGE_SCHEMA_URL = "https://openlineage.io/spec/2-0-0/OpenLineage.json#/$defs/RunEvent"
COLUMN_LINEAGE_SCHEMA_URL = ("https://openlineage.io/spec/facets/1-1-0/ColumnLineageDatasetFacet.json"
                             "#/$defs/ColumnLineageDatasetFacet")
SCHEMA_FACET_SCHEMA_URL = ("https://openlineage.io/spec/facets/1-0-0/SchemaDatasetFacet.json"
                           "#/$defs/SchemaDatasetFacet")


def _version():
    from .. import __version__
    return __version__


DEFAULT_PRODUCER = f"urn:whence:{_version()}"

_RUN_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


# ------------------------------------------------------------------------------------------ the graph
def _table_source(node):
    """The TableSource of a source node, or None (array sources; pandas never imported)."""
    mod = sys.modules.get("whence.tabular.source_tables")
    return None if mod is None else mod.table_source(node)


def _is_table_node(node):
    return getattr(node.map, "kind", None) == "table" or _table_source(node) is not None


def _edges(node):
    """``(parent, role)`` for every parent of ``node``.

    Roles: ``"input"`` (cells are computed or copied from it), ``"control"`` (its cells chose which cells
    are there: masks, conditions, index arrays, join and group keys) and ``"operand"`` (for tables: the
    frame a pandas operation was applied to; its cells reach the output through the composed relation to
    the other inputs, so it carries none itself).
    """
    m = node.map
    n_in = m.n_inputs if getattr(m, "kind", None) == "table" else None
    out = []
    for k, p in enumerate(node.parents):
        if n_in is not None and k >= n_in:
            out.append((p, "operand"))
        else:
            out.append((p, "control" if k in node.control else "input"))
    return out


_RANK = {"input": 0, "operand": 1, "control": 2}


class _Graph:
    """The upstream graph of one node, with internal helper steps linked through."""

    def __init__(self, node):
        self.node = node
        self.all = _upstream(node)
        self.visible = [n for n in self.all if not n.internal or n is node]
        self.partial = {}
        for n in self.all:  # creation order is a topological order
            self.partial[n.id] = n.partial is not None or any(self.partial[p.id] for p in n.parents)
        self.edges = {n.id: self._visible_edges(n) for n in self.visible if n.parents}

    def _visible_edges(self, node):
        out = {}
        stack = [(p, r) for p, r in reversed(_edges(node))]
        seen = set()
        while stack:
            p, role = stack.pop()
            if p.internal and p is not self.node:
                if (p.id, role) in seen:
                    continue
                seen.add((p.id, role))
                for q, r in reversed(_edges(p)):
                    stack.append((q, max(role, r, key=_RANK.__getitem__)))
                continue
            out.setdefault((p.id, role), (p, role))
        return list(out.values())

    @property
    def sources(self):
        return sorted((n for n in self.all if n.is_source), key=lambda n: n.name)


# ----------------------------------------------------------------------------------- naming columns
def _label(c):
    if isinstance(c, tuple):
        return ".".join(str(v) for v in c)
    return str(c)


def _unique_names(names):
    seen = {}
    out = []
    for j, nm in enumerate(names):
        if nm in seen:
            nm = f"{nm}#{j}"
        seen[nm] = j
        out.append(nm)
    return out


def _output_columns(x, node):
    """Names of the columns of the object: its labels when it has them, else ``col{j}`` (``value`` for an
    object of fewer than two dimensions)."""
    shape = node.shape
    if len(shape) < 2:
        nm = None
        if _is_pandas(x) and getattr(x, "ndim", None) == 1:
            nm = getattr(x, "name", None)
        return [_label(nm) if nm is not None else "value"]
    ncols = int(shape[1])
    cols = getattr(x, "columns", None)
    if cols is not None and not isinstance(cols, str):
        try:
            cols = list(cols)
        except TypeError:
            cols = None
        if cols is not None and len(cols) == ncols:
            return _unique_names([_label(c) for c in cols])
    return [f"col{j}" for j in range(ncols)]


def _is_pandas(x):
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(x, (pd.DataFrame, pd.Series))


def _source_field(src, ts, c):
    """The name of column ``c`` of a source (a file column, or ``col{c}`` / ``value`` for arrays)."""
    if ts is not None and c < len(ts.columns):
        return _label(ts.columns[c])
    return f"col{c}" if len(src.shape) >= 2 else "value"


def _source_fields(src, ts):
    if ts is not None:
        return [_label(c) for c in ts.columns]
    if len(src.shape) >= 2:
        return [f"col{c}" for c in range(int(src.shape[1]))]
    return ["value"]


def _object_name(x, default):
    """The name of the exported object: a store handle's name; else ``default``."""
    if _is_pandas(x) or isinstance(x, np.ndarray):
        return default
    nm = getattr(x, "name", None)
    return nm if isinstance(nm, str) and nm else default


# ------------------------------------------------------------------------------------------- Parquet
def parquet(x, dir, pairs=False):
    """Write the lineage relation of ``x`` to the directory ``dir`` as Parquet files.

    The relation stays compressed: :meth:`whence.Relation.to_parquet` writes ``ops.parquet`` (one row per
    operation and source), ``rectangles.parquet`` (ProvRC rectangles of the shape-determined operations)
    and ``index_arrays.parquet`` (the stored index arrays of data-dependent operations); this function adds

    - ``sources.parquet``: one row per source: ``name``, ``node_id``, ``kind`` (``"table"`` or
      ``"array"``), ``shape``, ``path``, ``format``, ``n_rows``, ``size``, ``mtime_ns``, ``sha256``,
      ``columns`` (nulls where unknown);
    - ``table_relations.parquet``: the relations of table (pandas) operations, which have no rectangles:
      one row per table node and input part with ``node_id``, ``op``, ``entry``, ``parent_id``,
      ``parent_pos``, ``control``, ``wide``, ``nidx``, the column relation as parallel lists ``out_cols`` /
      ``in_cols`` (output column ``out_cols[i]`` derives from input column ``in_cols[i]``; index levels in
      ``index_levels`` / ``index_in_cols``), and the row relation as parallel lists ``out_rows`` /
      ``in_rows``.  Parts that share one row relation share its ``rel_id``, and its pairs are written on the
      first of them only (null on the others); ``all_rows`` marks a relation where every output row derives
      from every input row (written as that flag, not as pairs);
    - ``op_pairs.parquet``: the one-hop relation, as explicit ``out_flat`` / ``in_flat`` cell pairs (flat
      C-order indices) per operation and parent, of the operations that have neither rectangles nor a single
      index array (unions of maps such as boolean-mask indexing, ``where``, ``take`` with a computed index,
      in-place writes; explicit-pair maps).

    With ``pairs=True`` also ``pairs.parquet``: the whole relation as explicit (output cell, source cell)
    pairs, one backward query per output cell (large; for comparisons).

    Parameters
    ----------
    x : TrackedArray, tracked frame or series, array from a tracked frame, or store handle
    dir : str or path-like
        A directory, created if missing.  Files of the same names in it are replaced.
    pairs : bool, default False

    Returns
    -------
    list of str
        The files written.

    Raises
    ------
    whence.NotTrackedError
        ``x`` carries no lineage.
    NotADirectoryError
        ``dir`` is an existing file.
    ImportError
        pyarrow is not installed.

    Examples
    --------
    >>> import os, tempfile, numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    >>> files = wh.export.parquet((a * 2).sum(axis=1), tempfile.mkdtemp())
    >>> sorted(os.path.basename(f) for f in files)  # doctest: +NORMALIZE_WHITESPACE
    ['index_arrays.parquet', 'op_pairs.parquet', 'ops.parquet', 'rectangles.parquet', 'sources.parquet',
     'table_relations.parquet']
    """
    node = _node_of(x)
    path = os.fspath(dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(
            f"whence.export.parquet writes a directory of Parquet files, but {path!r} is an existing file; "
            f"give the path of a new or existing directory")
    from .._extras import import_module
    pa = import_module("pyarrow", "whence.export.parquet", "store")
    pq = import_module("pyarrow.parquet", "whence.export.parquet", "store")
    rel = Relation(node)
    files = list(rel.to_parquet(path, pairs=pairs))
    graph = _Graph(node)
    for fname, table in (("sources.parquet", _sources_table(pa, graph)),
                         ("table_relations.parquet", _table_relations(pa, graph)),
                         ("op_pairs.parquet", _op_pairs_table(pa, graph, rel))):
        f = os.path.join(path, fname)
        pq.write_table(table, f)
        files.append(f)
    return files


def _sources_table(pa, graph):
    rows = {k: [] for k in ("name", "node_id", "kind", "shape", "path", "format", "n_rows", "size", "mtime_ns",
                            "sha256", "columns")}
    for n in graph.sources:
        ts = _table_source(n)
        rows["name"].append(n.name)
        rows["node_id"].append(n.id)
        rows["kind"].append("table" if ts is not None else "array")
        rows["shape"].append([int(d) for d in n.shape])
        rows["path"].append(getattr(ts, "path", None))
        rows["format"].append(getattr(ts, "format", None))
        rows["n_rows"].append(getattr(ts, "n_rows", None))
        rows["size"].append(getattr(ts, "size", None))
        rows["mtime_ns"].append(getattr(ts, "mtime_ns", None))
        rows["sha256"].append(getattr(ts, "sha256", None))
        rows["columns"].append([_label(c) for c in ts.columns] if ts is not None else None)
    schema = pa.schema([("name", pa.string()), ("node_id", pa.int64()), ("kind", pa.string()),
                        ("shape", pa.list_(pa.int64())), ("path", pa.string()), ("format", pa.string()),
                        ("n_rows", pa.int64()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
                        ("sha256", pa.string()), ("columns", pa.list_(pa.string()))])
    return pa.table(rows, schema=schema)


def _table_relations(pa, graph):
    names = ("node_id", "op", "entry", "parent_id", "parent_pos", "control", "wide", "nidx", "out_cols",
             "in_cols", "index_levels", "index_in_cols", "rel_id", "n_out", "n_src", "all_rows", "out_rows",
             "in_rows")
    rows = {k: [] for k in names}
    rel_ids = {}
    for n in graph.all:
        m = n.map
        if getattr(m, "kind", None) != "table":
            continue
        for e, (k, part) in enumerate(m.entries):
            if k >= m.n_inputs:  # entries only describe inputs; kept defensive
                continue
            oc, ic = np.nonzero(part.data_cm(m.nidx, m.ncols))
            if part.wide or not m.nidx:
                il, iic = np.zeros(0, np.int64), np.zeros(0, np.int64)
            else:
                il, iic = np.nonzero(part.cmat[:m.nidx])
            r = part.rel
            first = id(r) not in rel_ids
            rid = rel_ids.setdefault(id(r), (len(rel_ids), r))[0]
            out_rows = in_rows = None
            if first and not r.all_rows:
                ptr, src = r.rows_per(np.arange(r.n_out, dtype=np.int64))
                out_rows = np.repeat(np.arange(r.n_out, dtype=np.int64), np.diff(ptr)).tolist()
                in_rows = np.asarray(src, np.int64).tolist()
            for key, v in (("node_id", n.id), ("op", n.op), ("entry", e), ("parent_id", n.parents[k].id),
                           ("parent_pos", int(k)), ("control", bool(part.control)), ("wide", bool(part.wide)),
                           ("nidx", int(m.nidx)), ("out_cols", oc.tolist()), ("in_cols", ic.tolist()),
                           ("index_levels", il.tolist()), ("index_in_cols", iic.tolist()), ("rel_id", rid),
                           ("n_out", r.n_out), ("n_src", r.n_src), ("all_rows", bool(r.all_rows)),
                           ("out_rows", out_rows), ("in_rows", in_rows)):
                rows[key].append(v)
    i64, lst = pa.int64(), pa.list_(pa.int64())
    types = {"op": pa.string(), "control": pa.bool_(), "wide": pa.bool_(), "all_rows": pa.bool_(),
             **{k: lst for k in ("out_cols", "in_cols", "index_levels", "index_in_cols", "out_rows", "in_rows")}}
    schema = pa.schema([(k, types.get(k, i64)) for k in names])
    return pa.table(rows, schema=schema)


def _op_pairs_table(pa, graph, rel):
    """Explicit one-hop pairs of the operations that Relation.to_parquet leaves out (no rectangles, no single
    index array) and that are not tables."""
    indexed = set(rel.index_arrays())
    rows = {k: [] for k in ("op_id", "op", "map", "parent_id", "parent_pos", "control", "out_flat", "in_flat")}
    for n in graph.all:
        m, lparents, lcontrol = n.lineage  # composed where dead intermediates were folded into it
        if m is None or not lparents or m.kind == "table" or n.id in indexed:
            continue
        if m.rectangles() is not None:
            continue
        for k, (o, i) in sorted(_one_hop(m).items()):
            rows["op_id"].append(n.id)
            rows["op"].append(n.op)
            rows["map"].append(type(m).__name__)
            rows["parent_id"].append(lparents[k].id)
            rows["parent_pos"].append(int(k))
            rows["control"].append(k in lcontrol)
            rows["out_flat"].append(o.tolist())
            rows["in_flat"].append(i.tolist())
    i64, lst = pa.int64(), pa.list_(pa.int64())
    schema = pa.schema([("op_id", i64), ("op", pa.string()), ("map", pa.string()), ("parent_id", i64),
                        ("parent_pos", i64), ("control", pa.bool_()), ("out_flat", lst), ("in_flat", lst)])
    return pa.table(rows, schema=schema)


def _one_hop(m):
    """``{parent position: (out flat, in flat)}``: a map's relation as explicit pairs, sorted and unique."""
    acc = {}
    for k, o, i in _one_hop_raw(m):
        acc.setdefault(k, []).append((np.asarray(o, np.int64).ravel(), np.asarray(i, np.int64).ravel()))
    out = {}
    for k, parts in acc.items():
        o = np.concatenate([p[0] for p in parts])
        i = np.concatenate([p[1] for p in parts])
        if o.size:
            pr = np.unique(np.stack([o, i], axis=1), axis=0)
            o, i = pr[:, 0], pr[:, 1]
        out[k] = (o, i)
    return out


def _one_hop_raw(m):
    kind = type(m)  # (the exact class: a subclass computes its relation its own way, and takes the general path)
    nparents = len(m.parent_shapes)
    out_shape = tuple(m.out_shape)
    if kind is UnionMap:
        for sub, ix in m.parts:
            for k, o, i in _one_hop_raw(sub):
                yield ix[k], o, i
        return
    if kind is GatherMap:
        src = np.ravel(m.src()).astype(np.int64, copy=False)
        o = np.flatnonzero(src > 0)
        s = src[o] - 1
        for k in range(nparents):
            lo, hi = m.offsets[k], m.offsets[k + 1]
            sel = (s >= lo) & (s < hi)
            yield k, o[sel], s[sel] - lo
        return
    if kind is PairsMap:
        for k in range(nparents):
            o, i = m._pairs(k)
            yield k, o, i
        return
    if kind is ElementwiseMap:
        valid = np.ones(out_shape, bool) if m.valid is None else np.broadcast_to(m.valid, out_shape)
        o = np.flatnonzero(valid)
        for k, s in enumerate(m.parent_shapes):
            idx = np.arange(math.prod(s), dtype=np.int64).reshape(s)
            yield k, o, np.broadcast_to(idx, out_shape).ravel()[o]
        return
    # any other map: one backward step per output cell (a per-cell pass over this operation only)
    size = math.prod(out_shape)
    mask = np.zeros(size, bool)
    found = [([], []) for _ in range(nparents)]
    for f in range(size):
        mask[f] = True
        res = m.backward(mask.reshape(out_shape))
        mask[f] = False
        for k, pm in enumerate(res):
            if pm is None:
                continue
            i = np.flatnonzero(pm)
            found[k][0].append(np.full(i.size, f, np.int64))
            found[k][1].append(i)
    for k, (os_, is_) in enumerate(found):
        if os_:
            yield k, np.concatenate(os_), np.concatenate(is_)


# ------------------------------------------------------------------------------------------ PROV-JSON
def _check_namespace_uri(namespace):
    if not isinstance(namespace, str) or not namespace or any(c.isspace() for c in namespace):
        raise ValueError(f"namespace must be an absolute URI with no spaces, such as 'urn:whence:' or "
                         f"'https://example.org/lineage/', got {namespace!r}")
    if not urlsplit(namespace).scheme or namespace[-1] not in ":/#":
        raise ValueError(f"namespace must be an absolute URI ending in ':', '/' or '#' (identifiers are "
                         f"namespace + local name), such as 'urn:whence:', got {namespace!r}")


def _qn(value):
    """A qualified-name attribute value (PROV-JSON typed literal)."""
    return {"$": value, "type": "prov:QUALIFIED_NAME"}


class _ProvIds:
    """The identifiers of one PROV document (``pre``: the run's prefix, or empty)."""

    def __init__(self, pre):
        self.pre = pre

    def ent(self, n):
        return f"whence:{self.pre}node-{n.id}"

    def act(self, n):
        return f"whence:{self.pre}op-{n.id}"


def _prov_entity(x, n, node, g, ts, out_name):
    """The attributes of the PROV entity of node ``n`` (``node``: the exported object's, ``ts``: the table
    source of a source node)."""
    kind = "table" if _is_table_node(n) else "array"
    role = "source" if n.is_source else ("output" if n is node else "intermediate")
    attrs = {"prov:type": _qn("whence:Table" if kind == "table" else "whence:Array"),
             "prov:label": n.name if n.is_source else (out_name if n is node else n.op),
             "whence:node": n.id, "whence:kind": kind, "whence:shape": json.dumps([int(d) for d in n.shape]),
             "whence:ndim": len(n.shape), "whence:completeness": "PARTIAL" if g.partial[n.id] else "FULL",
             "whence:role": role}
    if n.is_source:
        attrs["whence:source"] = n.name
    else:
        attrs["whence:op"] = n.op
    cols = None
    if ts is not None:
        cols = [_label(c) for c in ts.columns]
        attrs["whence:n_rows"] = int(ts.n_rows)
        attrs["whence:format"] = ts.format
    elif n is node and len(n.shape) >= 2 and getattr(x, "columns", None) is not None:
        cols = _output_columns(x, n)
    if cols:
        attrs["whence:columns"] = cols
    return attrs


def _prov_file(doc, ids, files, n, ts):
    """The entity of the file of source table ``n`` (one per path, ``files``: path -> id) and its derivation."""
    pre = ids.pre
    fid = files.get(ts.path)
    if fid is None:
        fid = files[ts.path] = f"whence:{pre}file-{len(files)}"
        fattrs = {"prov:type": _qn("whence:File"), "prov:label": os.path.basename(ts.path),
                  "whence:path": ts.path, "whence:format": ts.format}
        for key in ("size", "mtime_ns", "sha256"):
            v = getattr(ts, key, None)
            if v is not None:
                fattrs[f"whence:{key}"] = v
        doc["entity"][fid] = fattrs
    doc["wasDerivedFrom"][f"whence:{pre}der-{n.id}-file"] = {"prov:generatedEntity": ids.ent(n),
                                                              "prov:usedEntity": fid}


def _prov_activity(doc, ids, n, g, run):
    """The activity of operation ``n``, its generation, its uses of the parents and the derivations."""
    pre, ent, act = ids.pre, ids.ent, ids.act
    a = {"prov:label": n.op, "whence:node": n.id,
         "whence:completeness": "FULL" if n.partial is None else "PARTIAL"}
    if n.partial is not None:
        a["whence:reason"] = n.partial
    if n.detail:
        a["whence:detail"] = n.detail
    if n.lineage[0] is not None:
        a["whence:map"] = type(n.lineage[0]).__name__
    if run is not None:
        a["whence:run"] = run
    doc["activity"][act(n)] = a
    doc["wasGeneratedBy"][f"whence:{pre}gen-{n.id}"] = {"prov:entity": ent(n), "prov:activity": act(n)}
    derived = {}
    for i, (p, r) in enumerate(g.edges.get(n.id, ())):
        doc["used"][f"whence:{pre}use-{n.id}-{i}"] = {"prov:activity": act(n), "prov:entity": ent(p),
                                                      "prov:role": r}
        derived.setdefault(p.id, (p, []))[1].append(r)
    for i, (p, roles) in enumerate(derived.values()):
        doc["wasDerivedFrom"][f"whence:{pre}der-{n.id}-{i}"] = {
            "prov:generatedEntity": ent(n), "prov:usedEntity": ent(p), "prov:activity": act(n),
            "whence:roles": sorted(set(roles), key=_RANK.__getitem__)}


def prov_json(x, *, namespace="urn:whence:", run=None, as_string=False):
    """The lineage of ``x`` as a W3C PROV-JSON document.

    - ``entity``: one per array or table of the graph (sources, the object itself and every intermediate
      result), identified as ``whence:node-<id>``, with ``whence:kind`` (``"array"`` or ``"table"``),
      ``whence:shape`` (JSON text), ``whence:completeness`` (``"PARTIAL"`` when an operation on the way up is
      PARTIAL, as a query on it would report) and ``whence:role`` (``"source"``, ``"output"`` or
      ``"intermediate"``); one per source *file* (``whence:file-<k>``) with ``whence:path``,
      ``whence:format``, ``whence:size``, ``whence:mtime_ns`` and ``whence:sha256`` where known (a source
      read back from a store knows it);
    - ``activity``: one per operation (``whence:op-<id>``), ``prov:label`` the operation's name, with
      ``whence:completeness`` and, for PARTIAL operations, ``whence:reason``;
    - ``used``: the activity used each parent entity, ``prov:role`` ``"input"``, ``"control"`` (masks,
      conditions, index arrays, join and group keys) or ``"operand"`` (for pandas operations: the frame the
      operation was applied to, whose relation to the sources is composed into the ``"input"`` edges);
    - ``wasGeneratedBy``: each non-source entity by its activity;
    - ``wasDerivedFrom``: each entity from each parent entity (``whence:roles`` lists the roles), and each
      source table from its file.

    Internal helper steps (``Node.internal``) are left out: edges are linked through them, with the
    strongest role met on the way (control over operand over input), so the document has exactly one
    activity per operation of :func:`whence.ops`.

    Parameters
    ----------
    x : TrackedArray, tracked frame or series, array from a tracked frame, or store handle
    namespace : str, default ``"urn:whence:"``
        The URI bound to the ``whence`` prefix; it must end in ``:``, ``/`` or ``#``.
    run : str, optional
        A run label (letters, digits, ``_`` and ``-``): identifiers become ``whence:<run>.node-<id>`` so that
        documents of several runs can be merged without clashes, and activities get ``whence:run``.
    as_string : bool, default False
        Return the JSON text (indented) instead of the dict.

    Returns
    -------
    dict or str

    Raises
    ------
    whence.NotTrackedError
        ``x`` carries no lineage.
    ValueError
        A bad ``namespace`` or ``run``.

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    >>> doc = wh.export.prov_json(np.cumsum(a + 1, axis=1))
    >>> sorted(v["prov:label"] for v in doc["activity"].values())
    ['add', 'cumsum']
    >>> sorted(v["prov:role"] for v in doc["used"].values())
    ['input', 'input']
    """
    node = _node_of(x)
    _check_namespace_uri(namespace)
    if run is not None and (not isinstance(run, str) or not _RUN_RE.match(run)):
        raise ValueError(f"run must be a label of letters, digits, '_' and '-', got {run!r}")
    g = _Graph(node)
    ids = _ProvIds(f"{run}." if run is not None else "")
    doc = {"prefix": {"whence": namespace, "prov": PROV_NAMESPACE}, "entity": {}, "activity": {},
           "wasGeneratedBy": {}, "used": {}, "wasDerivedFrom": {}}
    files = {}
    out_name = _object_name(x, "output")
    for n in g.visible:
        ts = _table_source(n) if n.is_source else None
        doc["entity"][ids.ent(n)] = _prov_entity(x, n, node, g, ts, out_name)
        if ts is not None and ts.path:
            _prov_file(doc, ids, files, n, ts)
        if not n.is_source:
            _prov_activity(doc, ids, n, g, run)
    doc = {k: v for k, v in doc.items() if v or k in ("prefix", "entity")}
    return json.dumps(doc, indent=2) if as_string else doc


# ---------------------------------------------------------------------------------------- OpenLineage
def _check_ol_args(job, namespace, run_id, producer):
    if not isinstance(job, str) or not job.strip():
        raise ValueError(f"job must be a non-empty string naming the job (e.g. 'etl.features'), got {job!r}")
    if not isinstance(namespace, str) or not namespace or any(c.isspace() or ord(c) < 32 for c in namespace):
        raise ValueError(f"namespace must be a non-empty OpenLineage namespace with no spaces (e.g. "
                         f"'my-scheduler' or 's3://bucket'), got {namespace!r}")
    if run_id is None:
        run_id = uuid.uuid4()
    else:
        try:
            run_id = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id))
        except ValueError:
            raise ValueError(f"run_id must be a UUID (OpenLineage runs are identified by UUIDs), "
                             f"got {run_id!r}") from None
    if not isinstance(producer, str) or not urlsplit(producer).scheme or any(c.isspace() for c in producer):
        raise ValueError(f"producer must be an absolute URI identifying the producer, got {producer!r}")
    return str(run_id)


def _facet(producer, schema_url, **fields):
    return {"_producer": producer, "_schemaURL": schema_url, **fields}


def _cols_of(cells, shape):
    """Column coordinates of source cells (0 for sources of fewer than two dimensions)."""
    if len(shape) >= 2:
        return cells[:, 1]
    return np.zeros(len(cells), np.int64)


def _flat(cells, shape):
    if not len(shape):
        return np.zeros(len(cells), np.int64)
    return np.ravel_multi_index(tuple(cells.T), shape).astype(np.int64)


def _ol_inputs(g, namespace, producer):
    """The input datasets of the sources of graph ``g``: ``(source name -> (namespace, name), {(namespace,
    name): dataset})``, a file's dataset shared by its tables, each with the ``schema`` facet."""
    ident = {}  # source name -> (namespace, name)
    inputs = {}
    for n in g.sources:
        ts = _table_source(n)
        key = ("file", ts.path) if ts is not None and ts.path else (namespace, n.name)
        ident[n.name] = key
        ds = inputs.get(key)
        if ds is None:
            ds = inputs[key] = {"namespace": key[0], "name": key[1],
                                "facets": {"schema": _facet(producer, SCHEMA_FACET_SCHEMA_URL, fields=[])}}
        fields = ds["facets"]["schema"]["fields"]
        have = {f["name"] for f in fields}
        for f in _source_fields(n, ts):
            if f not in have:
                have.add(f)
                fields.append({"name": f})
    return ident, inputs


def _ol_column_lineage(node, out_cols, srcs, ident):
    """The ``columnLineage`` fields: for each output column, its input fields with ``DIRECT`` and ``INDIRECT``
    transformations (from backward queries without and with control on the column)."""
    lineage = {}
    for j, col in enumerate(out_cols):
        kw = {"columns": [j]} if len(node.shape) >= 2 else {}
        direct = backward(node, **kw)
        both = backward(node, control=True, **kw)
        entries = {}  # (dataset key, field) -> set of transformation types
        for sname, cells in both.items():
            src = srcs[sname]
            ts = _table_source(src)
            d = direct.get(sname)
            dcols = np.unique(_cols_of(d, src.shape)) if d is not None else np.zeros(0, np.int64)
            extra = cells
            if d is not None and len(d):
                keep = ~np.isin(_flat(cells, src.shape), _flat(d, src.shape))
                extra = cells[keep]
            icols = np.unique(_cols_of(extra, src.shape))
            for c in np.union1d(dcols, icols):
                types = entries.setdefault((ident[sname], _source_field(src, ts, int(c))), set())
                if c in dcols:
                    types.add("DIRECT")
                if c in icols:
                    types.add("INDIRECT")
        inputs_of = []
        for (key, field), types in entries.items():
            tr = []
            for t in ("DIRECT", "INDIRECT"):
                if t in types:
                    rec = {"type": t}
                    res = direct if t == "DIRECT" else both
                    if not res.complete:
                        rec["description"] = "PARTIAL lineage, a superset: " + "; ".join(res.reasons)
                    tr.append(rec)
            inputs_of.append({"namespace": key[0], "name": key[1], "field": field, "transformations": tr})
        lineage[col] = {"inputFields": inputs_of}
    return lineage


def openlineage(x, *, job, namespace, run_id=None, producer=DEFAULT_PRODUCER, name=None):
    """The OpenLineage run events (START and COMPLETE) of the computation of ``x``.

    - ``inputs``: one dataset per source; a source read from a file is the dataset ``namespace="file"``,
      ``name=<absolute path>``, any other source (tracked arrays, frames tracked from memory) is the
      dataset ``name=<source name>`` in ``namespace``.  Each carries the ``schema`` facet: the file's
      columns, or ``col0 ... col<n-1>`` for a 2-D array (``value`` for a 1-D one);
    - ``outputs``: one dataset for ``x`` in ``namespace`` (named ``name``; a store handle's name, or
      ``<job>.output``), with the ``schema`` facet (its column labels, or ``col<j>`` / ``value``) and the
      ``columnLineage`` facet: for each output column, the input fields it derives from, computed from the
      graph by :func:`whence.backward` on that column; a field whose cells are copied or computed into the
      column carries a ``DIRECT`` transformation, a field whose cells only chose which cells are there
      (masks, join and group keys, sort keys) an ``INDIRECT`` one (``control=True`` in whence's terms).
      When an operation on the way is PARTIAL the transformation says so in its ``description`` (the
      fields are then a superset of the true lineage).

    The events declare the spec versions they are validated against in whence's tests:
    ``schemaURL`` is :data:`OPENLINEAGE_SCHEMA_URL` (core spec 2-0-0), facets
    :data:`COLUMN_LINEAGE_SCHEMA_URL` (1-1-0) and :data:`SCHEMA_FACET_SCHEMA_URL` (1-0-0).  Both events carry
    the same run, job and datasets; ``eventTime`` is the time of the call (UTC, ISO 8601).

    Parameters
    ----------
    x : TrackedArray, tracked frame or series, array from a tracked frame, or store handle
    job : str
        The job name, non-empty.
    namespace : str
        The namespace of the job and of datasets that are not files (no spaces).
    run_id : str or uuid.UUID, optional
        The run's UUID; a new random one by default.
    producer : str
        A URI identifying the producer of the events (``urn:whence:<version>`` by default).
    name : str, optional
        Name of the output dataset.

    Returns
    -------
    list of dict
        ``[START event, COMPLETE event]``, JSON-ready.

    Raises
    ------
    whence.NotTrackedError
        ``x`` carries no lineage.
    ValueError
        An empty ``job``, a bad ``namespace``, ``run_id`` or ``producer``.

    Examples
    --------
    >>> import numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.arange(6.0).reshape(2, 3), name="a")
    >>> b = wh.track(np.ones(2), name="b")
    >>> y = a[:, ::2] * b[:, None]
    >>> start, done = wh.export.openlineage(y, job="demo", namespace="whence-demo")
    >>> start["eventType"], done["eventType"], start["run"] == done["run"]
    ('START', 'COMPLETE', True)
    >>> lin = done["outputs"][0]["facets"]["columnLineage"]["fields"]
    >>> [(f["name"], f["field"]) for f in lin["col1"]["inputFields"]]
    [('a', 'col2'), ('b', 'value')]
    """
    node = _node_of(x)
    rid = _check_ol_args(job, namespace, run_id, producer)
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"name must be a non-empty string naming the output dataset, got {name!r}")
    g = _Graph(node)
    ident, inputs = _ol_inputs(g, namespace, producer)
    out_cols = _output_columns(x, node)
    lineage = _ol_column_lineage(node, out_cols, {n.name: n for n in g.sources}, ident)

    out_name = name if name is not None else _object_name(x, f"{job}.output")
    output = {"namespace": namespace, "name": out_name, "facets": {
        "schema": _facet(producer, SCHEMA_FACET_SCHEMA_URL, fields=[{"name": c} for c in out_cols]),
        "columnLineage": _facet(producer, COLUMN_LINEAGE_SCHEMA_URL, fields=lineage)}}
    events = []
    for etype in ("START", "COMPLETE"):
        events.append({"eventType": etype,
                       "eventTime": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
                       "run": {"runId": rid}, "job": {"namespace": namespace, "name": job},
                       "inputs": copy.deepcopy(list(inputs.values())), "outputs": [copy.deepcopy(output)],
                       "producer": producer, "schemaURL": OPENLINEAGE_SCHEMA_URL})
    return events
