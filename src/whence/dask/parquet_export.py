"""Lineage relations over dask arrays written to a partitioned Parquet dataset, chunk by chunk.

:func:`relation_to_parquet` is what :meth:`whence.query.Relation.to_parquet` calls for a relation over dask
arrays: each operation's rectangles are clipped to the output chunks and written in parallel (on the cluster
when a ``dask.distributed`` client is set up); :func:`export_estimate` sizes a write before it starts and
:func:`register_duckdb` exposes a written dataset to DuckDB.
"""

from __future__ import annotations

import itertools
import math
import os
import sys

import numpy as np

from ..errors import LineageQueryError
from ..maps import GatherMap, UnionMap
from ..tracked import is_lazy
from .gather import ARRAYS, DaskGatherMap, dask_array, has_unknown_size

__all__ = ["relation_to_parquet", "register_duckdb", "export_estimate", "ESTIMATE_ABOVE_BYTES"]


def _parts(m):
    if isinstance(m, UnionMap):
        out = []
        for sub, ix in m.parts:
            out.extend((s, tuple(ix[i] for i in sx)) for s, sx in _parts(sub))
        return out
    return [(m, tuple(range(len(m.parent_shapes))))]


def _chunk_boxes(chunks):
    """(block number in C order, lo, hi inclusive) of every block of a chunk grid."""
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) if len(c) else np.zeros(0, int) for c in chunks]
    for num, idx in enumerate(itertools.product(*[range(len(c)) for c in chunks])):
        lo = tuple(int(starts[a][i]) for a, i in enumerate(idx))
        hi = tuple(int(starts[a][i] + chunks[a][i] - 1) for a, i in enumerate(idx))
        yield num, lo, hi


def _write_rects(fname, parent_ids, rows, boxes):
    """Rectangles ``rows`` of one operation clipped to each output chunk in ``boxes``: one Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    cols = {k: [] for k in ("chunk", "parent_id", "out_lo", "out_hi", "lo_ax", "lo_mul", "lo_off", "hi_ax",
                            "hi_mul", "hi_off")}
    cells = 0
    for b, (bi, lo, hi) in enumerate(boxes):
        for row in rows:
            parent, olo, ohi = row[0], row[1], row[2]
            if row[3] == (-2,):  # a flat identity (reshape): one row over flat indices, kept in the first chunk
                if b:
                    continue
                clo, chi = olo, ohi
            else:
                clo = tuple(max(a, c) for a, c in zip(olo, lo))
                chi = tuple(min(a, c) for a, c in zip(ohi, hi))
                if any(a > c for a, c in zip(clo, chi)):
                    continue
            cols["chunk"].append(int(bi))
            cols["parent_id"].append(int(parent_ids[parent]))
            cols["out_lo"].append(list(clo))
            cols["out_hi"].append(list(chi))
            for name, v in zip(("lo_ax", "lo_mul", "lo_off", "hi_ax", "hi_mul", "hi_off"), row[3:]):
                cols[name].append([int(t) for t in v])
        cells += math.prod(h - l + 1 for l, h in zip(lo, hi))
    schema = pa.schema([("chunk", pa.int64()), ("parent_id", pa.int64())] +
                       [(k, pa.list_(pa.int64())) for k in list(cols)[2:]])
    pq.write_table(pa.table(cols, schema=schema), fname)
    return cells


def _write_index_block(fname, block, lo, shape, parent_ids, offsets):
    """One block of a source-index array as (out, parent_id, src) rows: output flat index, parent op id,
    flat index in that parent (constant cells left out)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    b = np.asarray(block).astype(np.int64, copy=False)
    grids = np.meshgrid(*[np.arange(l, l + n, dtype=np.int64) for l, n in zip(lo, b.shape)], indexing="ij") \
        if b.ndim else []
    out = np.ravel_multi_index(tuple(g.ravel() for g in grids), shape) if b.ndim else np.zeros(1, np.int64)
    v = b.ravel()
    keep = v > 0
    out, v = out[keep], v[keep] - 1
    k = np.searchsorted(np.asarray(offsets[1:]), v, side="right")
    pid = np.asarray(parent_ids, np.int64)[k]
    src = v - np.asarray(offsets, np.int64)[k]
    pq.write_table(pa.table({"out": out, "parent_id": pid, "src": src}), fname)
    return int(b.size)


def _write_ops_table(path, nodes, chunks_of):
    """``ops.parquet``: one row per operation (``chunks``: the output chunk sizes per axis); returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    f = os.path.join(path, "ops.parquet")
    pq.write_table(pa.table({
        "id": [n.id for n in nodes], "op": [n.op if not n.is_source else "source" for n in nodes],
        "source": [n.name for n in nodes], "shape": [list(n.shape) for n in nodes],
        "parents": [[p.id for p in n.parents] for n in nodes], "control": [sorted(n.control) for n in nodes],
        "map": [type(n.map).__name__ if n.map is not None else None for n in nodes],
        "completeness": ["FULL" if not n.partial else "PARTIAL" for n in nodes],
        "reason": [n.partial for n in nodes],
        "chunks": [[list(map(int, c)) for c in chunks_of[n.id]] for n in nodes]}), f)
    return f


def _operation_tasks(n, path, chunks, files, tasks):
    """Add to ``tasks`` (and their files to ``files``) the delayed writes of operation ``n``: its rectangles
    clipped to the output chunks, and the blocks of its index arrays.  Returns the index-array cells written."""
    import dask
    delayed = dask.delayed
    index_cells = 0
    pids = [p.id for p in n.parents]
    rect_rows = []
    for m, ix in _parts(n.map):
        rows = m.rectangles()
        if rows is not None:
            rect_rows.extend((ix[r[0]],) + tuple(r[1:]) for r in rows)
            continue
        if isinstance(m, GatherMap):
            s = m.lazy_src() if isinstance(m, DaskGatherMap) else m.src()
            if not is_lazy(s):
                s = dask_array().from_array(np.asarray(s), chunks=chunks if not has_unknown_size(n.shape) else -1)
            d = os.path.join(path, "index_arrays", f"op_id={n.id}")
            os.makedirs(d, exist_ok=True)
            sub_pids = [pids[i] for i in ix]
            blocks = s.to_delayed().ravel()
            index_cells += math.prod(s.shape) if not has_unknown_size(s.shape) else 0
            for b, (bi, lo, hi) in zip(blocks, _chunk_boxes(s.chunks)):
                fn = os.path.join(d, f"block-{bi}.parquet")
                files.append(fn)
                tasks.append(delayed(_write_index_block)(fn, b, lo, tuple(s.shape), sub_pids, m.offsets))
            continue
        raise LineageQueryError(f"the relation of {n.op!r} ({type(m).__name__}) cannot be written chunk by "
                                f"chunk")
    if rect_rows:
        d = os.path.join(path, "rectangles", f"op_id={n.id}")
        os.makedirs(d, exist_ok=True)
        boxes = list(_chunk_boxes(chunks))
        per = max(1, math.ceil(len(boxes) / 64))
        for j in range(0, len(boxes), per):
            fn = os.path.join(d, f"part-{j // per}.parquet")
            files.append(fn)
            tasks.append(delayed(_write_rects)(fn, pids, rect_rows, boxes[j:j + per]))
    return index_cells


def relation_to_parquet(rel, path, pairs=False):
    """Write the relation of an array computed from dask arrays as a partitioned Parquet dataset.

    Called by :meth:`whence.query.Relation.to_parquet` (returns None, and the numpy writer runs, when no
    operation of the relation is lazy).  The dataset, chunk by chunk and written in parallel by the active
    dask scheduler (the workers of a ``dask.distributed`` cluster; a multi-node cluster needs ``path`` on a
    file system every worker sees):

    ``ops.parquet``
        one row per operation, as for numpy (``chunks``: the output chunk sizes per axis);
    ``rectangles/op_id=<id>/part.parquet``
        the ProvRC rectangles of every class A/B operation, clipped to each output chunk (column ``chunk``:
        the block index);
    ``index_arrays/op_id=<id>/block-<i>.parquet``
        the gathered cells of every class C operation, one file per output block: ``out`` (flat output
        index), ``parent_id``, ``src`` (flat index in that parent).

    Returns
    -------
    dict
        ``{"files": [...], "cells": output cells covered, "ops": operations written}``.

    Examples
    --------
    >>> import tempfile, numpy as np, dask.array as da, whence as wh
    >>> wh.reset()
    >>> x = wh.track(da.arange(8.0, chunks=4), name="x")
    >>> y = np.cumsum(x[x > 2])
    >>> out = wh.lineage(y).to_parquet(tempfile.mkdtemp())
    >>> sorted({f.split(os.sep)[-3] for f in out["files"] if "op_id=" in f})
    ['index_arrays', 'rectangles']
    """
    if pairs or not any(n in ARRAYS and n.map is not None for n in rel.nodes):
        return None
    import dask
    os.makedirs(path, exist_ok=True)
    nodes = rel.nodes
    chunks_of = {n.id: (ARRAYS[n].chunks if n in ARRAYS else tuple((d,) for d in n.shape)) for n in nodes}
    files = [_write_ops_table(path, nodes, chunks_of)]
    tasks = []
    index_cells = 0
    for n in nodes:
        if n.map is None or not n.parents:
            continue
        index_cells += _operation_tasks(n, path, chunks_of[n.id], files, tasks)
    est = export_estimate(index_cells, len(tasks))
    if est["bytes"] >= ESTIMATE_ABOVE_BYTES and _progress_enabled():
        print(f"whence: writing the lineage relation to {path}: about {_human(est['bytes'])} "
              f"({index_cells:.3g} index-array cells), about {est['seconds']:.0f} s with {est['threads']} "
              f"thread(s); ask about cells with wh.backward instead when the whole relation is not needed",
              file=sys.stderr, flush=True)
    from ..progress import progress_bar
    counts = []
    with progress_bar(len(tasks), "relation to Parquet", unit="chunks") as bar:
        step = max(1, 4 * est["threads"])  # batches keep every worker busy and let the bar move
        for j in range(0, len(tasks), step):
            counts.extend(dask.compute(*tasks[j:j + step]))
            bar.update(len(tasks[j:j + step]))
    return {"files": files, "cells": int(sum(counts)), "ops": sum(1 for n in nodes if n.map is not None),
            "estimate": est}


#: Above this estimated size, :func:`relation_to_parquet` says how big and how long before it writes.
ESTIMATE_ABOVE_BYTES = 256 * 2**20
#: Measured: the 1e9-cell example of the README wrote 4.0 GB of index arrays in 121 s on 2 cores.
_BYTES_PER_INDEX_CELL = 4.0
_INDEX_CELLS_PER_THREAD_SECOND = 4.1e6


def _progress_enabled():
    return os.environ.get("WHENCE_PROGRESS", "1") not in ("0", "false", "no", "off")


def _human(nbytes):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{nbytes:.0f} B"
        nbytes /= 1000


def _threads():
    """Threads of the active dask scheduler: the cluster's when a distributed client is the default."""
    try:
        from distributed import default_client
        return max(1, sum(default_client().nthreads().values()))
    except (ImportError, ValueError):
        return os.cpu_count() or 1


def export_estimate(index_cells, tasks=0):
    """The size and time of a relation export with ``index_cells`` cells of class-C index arrays.

    Rectangles (classes A and B) are a few rows per chunk and negligible; index arrays take about 4 bytes per
    cell in Parquet and are written at about 4e6 cells per second per thread (measured on the 1e9-cell
    pipeline of the README: 4.0 GB in 121 s on 2 cores).

    >>> est = export_estimate(1e9)
    >>> _human(est["bytes"])
    '4.0 GB'
    """
    threads = _threads()
    return {"bytes": index_cells * _BYTES_PER_INDEX_CELL, "index_cells": int(index_cells), "tasks": tasks,
            "threads": threads, "seconds": index_cells / (_INDEX_CELLS_PER_THREAD_SECOND * threads)}


def register_duckdb(con, path, prefix="whence_"):
    """Create DuckDB views over a dataset written by :func:`relation_to_parquet`: ``<prefix>ops``,
    ``<prefix>rectangles`` and ``<prefix>index_arrays`` (``op_id`` from the partition directories).

    Examples
    --------
    >>> import tempfile, duckdb, numpy as np, dask.array as da, whence as wh
    >>> wh.reset()
    >>> x = wh.track(da.arange(6.0, chunks=3), name="x")
    >>> d = tempfile.mkdtemp()
    >>> _ = wh.lineage(np.where(x > 2, x, 0.0)).to_parquet(d)
    >>> con = duckdb.connect()
    >>> register_duckdb(con, d)
    >>> con.sql("SELECT out, src FROM whence_index_arrays ORDER BY out").fetchall()
    [(3, 3), (4, 4), (5, 5)]
    """
    p = os.path.abspath(path)
    con.execute(f"CREATE OR REPLACE VIEW {prefix}ops AS SELECT * FROM read_parquet('{p}/ops.parquet')")
    for name in ("rectangles", "index_arrays"):
        files = os.path.join(p, name, "*", "*.parquet")
        if os.path.isdir(os.path.join(p, name)) and any(os.scandir(os.path.join(p, name))):
            con.execute(f"CREATE OR REPLACE VIEW {prefix}{name} AS SELECT * FROM "
                        f"read_parquet('{files}', hive_partitioning = true)")
        else:
            con.execute(f"CREATE OR REPLACE VIEW {prefix}{name} AS SELECT NULL::BIGINT AS op_id WHERE false")
