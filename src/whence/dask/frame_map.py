"""The lineage map of a lazy dask frame's cells, for the queries that reach it through ``to_dask_array``.

:class:`FrameRowsMap` maps the cells of a dask frame (or of the array from ``to_dask_array``) to the source
cells, evaluated on query by the frame's lazy lineage (:mod:`whence.dask.frame_lineage`);
:func:`graph_source_node` gives a dask source its node in the whence graph.
"""

from __future__ import annotations

import numpy as np

from ..maps import Map
from .frame_lineage import cell_hits, cells_out, resolve_cells

__all__ = ["FrameRowsMap", "graph_source_node"]


def graph_source_node(src):
    """The whence graph source node of a dask source (made once, on the first ``to_dask_array``)."""
    node = getattr(src, "_node", None)
    if node is None:
        from ..graph import new_source
        node = src._node = new_source((int(src.offsets()[-1]), len(src.columns)), src.name)
    return node


class FrameRowsMap(Map):
    """Cells of a dask frame (or of the array from ``to_dask_array``) to the source cells, one hop,
    evaluated by the frame's lazy lineage (the hidden row ids and group keys) when a query asks.

    Parents: the source nodes twice, data edges first, then control edges (the cells with control, for
    ``control=True`` queries).
    """

    kind = "dask_frame_rows"

    def __init__(self, frame, srcs, out_shape):
        self.frame = frame
        self.srcs = srcs
        self.out_shape = tuple(out_shape)
        shapes = tuple((int(s.offsets()[-1]), len(s.columns)) for s in srcs)
        self.parent_shapes = shapes + shapes

    def _rows(self, rows):
        f = self.frame
        if len(rows) > 64 or "all" in f._cache:
            return f._hidden_all().iloc[rows]
        return f._hidden_rows([int(r) for r in rows])

    def backward_sparse(self, flat):
        flat = np.asarray(flat, np.int64)
        ncols = self.out_shape[1] if len(self.out_shape) > 1 else 1
        rows, cols = np.divmod(flat, ncols)
        names = list(self.frame._lin.cols)
        out = []
        for control in (False, True):
            acc = {}
            for j in np.unique(cols).tolist():
                R = np.unique(rows[cols == j])
                resolve_cells(self.frame, self._rows(R), self.frame._lin.cols[names[j]], control, acc)
            cells = cells_out(acc)
            for s in self.srcs:
                c = cells.get(s)
                out.append(None if c is None or not len(c) else c[:, 0] * len(s.columns) + c[:, 1])
        return out

    def backward(self, out_mask):
        res = self.backward_sparse(np.flatnonzero(np.asarray(out_mask).reshape(-1)))
        out = []
        for shape, fl in zip(self.parent_shapes, res):
            m = np.zeros(shape, bool)
            if fl is not None:
                m.reshape(-1)[fl] = True
            out.append(m)
        return out

    def forward(self, k, in_mask):
        ns = len(self.srcs)
        src, control = self.srcs[k % ns], k >= ns
        im = np.asarray(in_mask).reshape(self.parent_shapes[k])
        out = np.zeros(self.out_shape, bool).reshape(self.out_shape[0], -1)
        for c in np.flatnonzero(im.any(0)).tolist():
            target = (src, np.flatnonzero(im[:, c]), frozenset([src.columns[c]]))
            out |= cell_hits(self.frame, target, control, {})
        return out.reshape(self.out_shape)

    def forward_sparse(self, k, flat):
        return None
