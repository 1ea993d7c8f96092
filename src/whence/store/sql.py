"""Backward lineage as one SQL query over the store's tables, run inside DuckDB (as DSLog does).

:func:`backward_sql` writes a single SQL statement for a backward query from cells of a saved object and
runs it on the store's connection.  Each operation on the way is one step of the statement:

* shape-determined operations join the cells reached so far with the operation's rows of the
  ``rectangles`` table and expand the parent ranges (relative bounds are evaluated from the output cell's
  coordinates, then the ranges are unnested axis by axis);
* data-dependent operations (gathers, explicit pairs) join with their index array, exposed to DuckDB as a
  relation ``(output flat index, parent flat index)``.

The statement is generated from the graph (it needs each array's number of axes), but every join and
expansion runs in DuckDB on the stored, compressed tables.  Operations with neither form (table row
relations, masked reductions, lifted writes) raise :class:`whence.LineageQueryError`: ask
:func:`whence.backward` instead, which covers every map.
"""

from __future__ import annotations

import numpy as np

from ..errors import LineageQueryError
from ..maps import GatherMap, PairsMap

__all__ = ["backward_sql", "sql_plan"]


def _strides(shape):
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc)
        acc *= d
    return list(reversed(st))


def _cols(nd):
    return [f"c{j}" for j in range(max(nd, 1))]


def _flat(alias, shape):
    if not shape:
        return "0"
    return " + ".join(f"{alias}.c{j} * {s}" for j, s in enumerate(_strides(shape)))


def _unravel(expr, shape):
    if not shape:
        return ["0"]
    return [f"(({expr}) // {s}) % {d}" for s, d in zip(_strides(shape), shape)]


def _map_kind(m):
    kind = m.kind
    if type(m) in (GatherMap, PairsMap):  # (not a subclass: a lazy or lifted gather has no plain index array)
        return kind
    if m.rectangles() is not None:
        return "rect"
    if kind == "union" and all(_map_kind(sub) is not None for sub, _ in m.parts):
        return "union"
    return None


def _sqlable(node):
    return _map_kind(node.lineage[0])


def sql_plan(handle):
    """The operations a backward query from ``handle`` would run through, with how each is answered in SQL
    (``rect``, ``gather``, ``pairs``) or None where it has no SQL form."""
    from ..query import lineage_upstream as _lineage_upstream
    return [(n.op, None if n.lineage[0] is None else _sqlable(n)) for n in _lineage_upstream(handle.node)
            if not n.is_source]


def backward_sql(handle, index, *, return_sql=False):
    """Source cells of cells of a saved object, computed by one SQL query in DuckDB.

    Parameters
    ----------
    handle : whence.store.ObjectHandle
        An object of a run (``store["run"]["X"]``).
    index : tuple of int, or int array (k, ndim)
        One cell, or several cells.
    return_sql : bool, default False
        Also return the statement.

    Returns
    -------
    dict
        ``{source name: int64 array (k, source ndim)}``, rows sorted, as :func:`whence.backward` returns.

    Examples
    --------
    >>> import os, tempfile, numpy as np, whence as wh
    >>> wh.reset()
    >>> a = wh.track(np.arange(20.0).reshape(4, 5), name="a")
    >>> y = np.cumsum(a.T[::2], axis=1)
    >>> path = os.path.join(tempfile.mkdtemp(), "q.duckdb")
    >>> _ = wh.save(path, "r", y=y)
    >>> with wh.open(path) as store:
    ...     got = wh.store.backward_sql(store["r"]["y"], (1, 2))
    >>> got["a"].tolist() == wh.backward(y, (1, 2))["a"].tolist()
    True
    """
    from ..query import lineage_upstream as _lineage_upstream
    node = handle.node
    run = handle.run
    cells = np.asarray(index, np.int64)
    if cells.ndim == 1:
        cells = cells[None, :] if node.shape else cells.reshape(1, 0)
    if cells.shape[1] != len(node.shape):
        raise LineageQueryError(f"a cell of {handle.name!r} needs {len(node.shape)} indices, got {cells.shape[1]}")
    for j, d in enumerate(node.shape):
        if cells.size and (cells[:, j].min() < 0 or cells[:, j].max() >= d):
            raise LineageQueryError(f"cells out of range for shape {node.shape}")
    up = _lineage_upstream(node)  # the relations queries follow (composed where intermediates were folded)
    nodes = run.nodes()
    num = {n.id: i for i, n in enumerate(nodes)}
    for n in up:
        if not n.is_source and n.lineage[0] is not None and _sqlable(n) is None:
            raise LineageQueryError(f"operation {n.op!r} ({type(n.lineage[0]).__name__}) has no SQL form; use "
                                    f"whence.backward, which answers every map")
    con = run.store.connection
    registered = []
    ctes = []
    # the start cells
    qcols = _cols(len(node.shape))
    if node.shape:
        vals = ", ".join("(" + ", ".join(str(int(v)) for v in row) + ")" for row in cells) or "(NULL)"
        ctes.append(f"n{num[node.id]} AS (SELECT * FROM (VALUES {vals}) t({', '.join(qcols)}))")
    else:
        ctes.append(f"n{num[node.id]} AS (SELECT 0 AS c0)")
    # children of every upstream node, through which cells reach it
    children = {n.id: [] for n in up}
    for n in up:
        _, lparents, lcontrol = n.lineage
        for k, p in enumerate(lparents):
            if k in lcontrol or p.id not in children:
                continue
            children[p.id].append((n, k))
    order = sorted(up, key=lambda n: -n.id)
    for n in order[1:]:
        parts = []
        for ch, k in children[n.id]:
            parts.append(_hop(ch, k, n, num, run, con, registered))
        cols = ", ".join(_cols(len(n.shape)))
        body = " UNION ".join(f"SELECT {cols} FROM ({p})" for p in parts) if parts else _empty(len(n.shape))
        ctes.append(f"n{num[n.id]} AS MATERIALIZED ({body})")
    srcs = [n for n in up if n.is_source]
    width = max([len(s.shape) for s in srcs] + [1])
    sels = []
    for t, s in enumerate(srcs):
        cols = [f"c{j}" if j < len(s.shape) else "NULL" for j in range(width)]
        sels.append(f"SELECT DISTINCT {t} AS src, {', '.join(cols)} FROM n{num[s.id]}")
    q = f"WITH {', '.join(ctes)} SELECT * FROM ({' UNION ALL '.join(sels)}) ORDER BY ALL"
    out = {}
    try:
        rows = con.execute(q).fetchall()
    finally:
        for r in registered:
            con.unregister(r)
    if rows:
        arr = np.asarray([[v if v is not None else 0 for v in row] for row in rows], np.int64)
        for t, s in enumerate(srcs):
            sel = arr[arr[:, 0] == t, 1:1 + len(s.shape)]
            if len(sel):
                out[s.name] = sel if s.shape else sel[:1, :0]
    sql_all = q
    out = dict(sorted(out.items()))
    return (out, sql_all) if return_sql else out


def _hop(ch, k, parent, num, run, con, registered):
    """SQL for the cells of ``parent`` reached from the cells of ``ch`` through its input ``k``."""
    src = f"n{num[ch.id]}"
    kind = _sqlable(ch)
    if kind == "rect":
        rel = f"(SELECT * FROM rectangles WHERE run = '{_q(run.name)}' AND node = {num[ch.id]})"
        return _rect_hop(src, ch.shape, k, parent.shape, rel)
    return _map_hop(ch.lineage[0], k, src, ch.shape, parent.shape, f"{num[ch.id]}_{k}", con, registered)


def _map_hop(m, k, src, oshape, pshape, tag, con, registered):
    """A hop through a map that is not in the rectangles table as a whole (a union with gathers, or a
    gather): its parts' rectangles and index arrays are handed to DuckDB as relations."""
    import pyarrow as pa
    kind = _map_kind(m)
    if kind == "union":
        parts = []
        for t, (sub, ix) in enumerate(m.parts):
            for j, kk in enumerate(ix):
                if kk == k:
                    parts.append(_map_hop(sub, j, src, oshape, pshape, f"{tag}_{t}_{j}", con, registered))
        if not parts:
            return _empty(len(pshape))
        return " UNION ALL ".join(f"SELECT * FROM ({p})" for p in parts)
    name = f"_whence_idx_{tag}"
    if kind == "rect":
        if name not in registered:
            rows = m.rectangles()
            cols = list(zip(*rows)) if rows else [[] for _ in range(9)]
            con.register(name, pa.table({
                "position": pa.array([int(v) for v in cols[0]], pa.int64()),
                **{c: pa.array([list(map(int, v)) for v in vals], pa.list_(pa.int64()))
                   for c, vals in zip(("out_lo", "out_hi", "lo_ax", "lo_mul", "lo_off", "hi_ax", "hi_mul", "hi_off"),
                                      cols[1:])}}))
            registered.append(name)
        return _rect_hop(src, oshape, k, pshape, name)
    if name not in registered:
        if kind == "gather":
            s = np.ravel(m.src()).astype(np.int64)
            lo, hi = m.offsets[k], m.offsets[k + 1]
            local = s - 1 - lo
            ok = (local >= 0) & (local < hi - lo)
            o, i = np.flatnonzero(ok), local[ok]
        else:
            o, i = (np.asarray(v, np.int64) for v in m._pairs(k))
        con.register(name, pa.table({"o": o.astype(np.int64), "i": i.astype(np.int64)}))
        registered.append(name)
    pcols = _cols(len(pshape))
    return (f"SELECT {', '.join(f'{e} AS {c}' for e, c in zip(_unravel('g.i', pshape), pcols))} FROM {src} f "
            f"JOIN {name} g ON g.o = {_flat('f', oshape)}")


def _rect_hop(src, oshape, k, pshape, rel):
    """Cells of the parent reached from the cells in ``src`` through the rectangle rows in ``rel``."""
    pcols = _cols(len(pshape))
    od = len(oshape)
    coords = "[" + ", ".join(f"f.c{j}" for j in range(od)) + "]" if od else "[0]"
    flat_out = _flat("f", oshape)
    box = " AND ".join(f"f.c{j} BETWEEN r.out_lo[{j + 1}] AND r.out_hi[{j + 1}]" for j in range(od)) or "true"
    conds = [f"r.position = {k}",
             f"CASE WHEN coalesce(r.lo_ax[1], 0) = -2 THEN ({flat_out}) BETWEEN r.out_lo[1] AND r.out_hi[1] "
             f"ELSE {box} END"]
    bounds = []
    for j in range(len(pshape)):
        lo = (f"r.lo_off[{j + 1}] + CASE WHEN r.lo_ax[{j + 1}] >= 0 THEN r.lo_mul[{j + 1}] * "
              f"list_extract({coords}, r.lo_ax[{j + 1}] + 1) ELSE 0 END")
        hi = (f"r.hi_off[{j + 1}] + CASE WHEN r.hi_ax[{j + 1}] >= 0 THEN r.hi_mul[{j + 1}] * "
              f"list_extract({coords}, r.hi_ax[{j + 1}] + 1) ELSE 0 END")
        bounds.append((f"greatest({lo}, 0)", f"least({hi}, {pshape[j] - 1})"))
    sel = [f"CASE WHEN coalesce(r.lo_ax[1], 0) = -2 THEN r.lo_off[1] + r.lo_mul[1] * ({flat_out}) ELSE NULL END AS flat"]
    for j, (lo, hi) in enumerate(bounds):
        sel.append(f"{lo} AS lo{j}, {hi} AS hi{j}")
    base = f"SELECT {', '.join(sel)} FROM {src} f JOIN {rel} r ON {' AND '.join(conds)}"
    if not pshape:
        return f"SELECT 0 AS c0 FROM ({base})"
    # reshape rows: one parent cell per output cell; other rows: a box, unnested axis by axis
    flat_q = (f"SELECT {', '.join(f'{e} AS {c}' for e, c in zip(_unravel('flat', pshape), pcols))} FROM ({base}) "
              f"WHERE flat IS NOT NULL")
    q = f"SELECT * FROM ({base}) WHERE flat IS NULL"
    for j in range(len(pshape)):
        keep = [f"c{i}" for i in range(j)] + [f"lo{i}, hi{i}" for i in range(j + 1, len(pshape))]
        q = (f"SELECT {', '.join(keep + [f'unnest(range(lo{j}, hi{j} + 1)) AS c{j}'])} FROM ({q}) "
             f"WHERE lo{j} <= hi{j}")
    return f"{flat_q} UNION ALL SELECT {', '.join(pcols)} FROM ({q})"


def _empty(nd):
    """No cells: ``range(0)`` rather than ``... WHERE false``, which DuckDB 1.2 and 1.3 let empty the whole
    statement when it stands in a materialized CTE (a 0-d ``where`` answered ``{}``)."""
    return f"SELECT {', '.join('range AS ' + c for c in _cols(nd))} FROM range(0)"


def _q(s):
    return s.replace("'", "''")
