"""Row relations, column sets and the map that joins them: the lineage of a table.

A table's lineage is *row lineage times column lineage*.  For each input it derives from (a source table,
or any tracked array), a :class:`Part` holds

- a :class:`RowRel`: for every output row, the input rows it derives from, kept as int64 arrays (one code
  per output row, and a CSR relation when a row derives from many input rows, as after a group-by);
- a boolean matrix ``cmat``: for every output column (index levels first), the input columns it derives from.

Output cell ``(i, j)`` derives from the input cells ``rows(i) x cols(j)`` of every part.  Relations are
composed eagerly, operation by operation, with vectorised numpy (a take for a filter, a sort or a join; a
CSR build for a group-by), so that a query on a table is one hop back to its inputs whatever the length of
the pandas pipeline.  No per-row Python object is ever made.
"""

from __future__ import annotations

import functools

import numpy as np

from ..graph import Node
from ..maps import Map

__all__ = ["RowRel", "Part", "Lineage", "TableMap"]

_EMPTY = np.zeros(0, np.int64)


def _expand(starts, lens):
    """Concatenated ranges ``starts[k] : starts[k] + lens[k]`` as one int64 array."""
    total = int(lens.sum())
    if total == 0:
        return _EMPTY
    ends = np.cumsum(lens)
    return np.repeat(starts - (ends - lens), lens) + np.arange(total, dtype=np.int64)


class LazyCSR:
    """A CSR relation from codes to input rows, built on first use (group-bys record only their codes)."""

    __slots__ = ("fn", "indptr", "indices")

    def __init__(self, indptr=None, indices=None, fn=None):
        self.indptr, self.indices, self.fn = indptr, indices, fn

    def get(self):
        if self.fn is not None:
            self.indptr, self.indices = self.fn()
            self.fn = None
        return self.indptr, self.indices

    @property
    def nbytes(self):
        if self.fn is not None:
            return 0
        return self.indptr.nbytes + self.indices.nbytes


class RowRel:
    """Output rows to input rows.

    Parameters
    ----------
    n_out, n_src : int
        Rows of the output and of the input.
    codes : ndarray of int64, optional
        One code per output row (-1: no input row).  ``None`` means code ``i`` for row ``i``.
    csr : _CSR, optional
        Relation from codes to input rows (built lazily); without it a code *is* an input row.
    all_rows : bool
        Every output row derives from every input row (the answer of an operation whence does not cover).
    """

    __slots__ = ("n_out", "n_src", "codes", "csr", "all_rows", "_inv")

    def __init__(self, n_out, n_src, codes=None, csr=None, all_rows=False):
        self.n_out = int(n_out)
        self.n_src = int(n_src)
        self.codes = codes
        self.csr = csr
        self.all_rows = all_rows
        self._inv = None  # the inverse relation, built by the first forward query (see forward_rows)

    @classmethod
    def identity(cls, n):
        return cls(n, n)

    @classmethod
    def everything(cls, n_out, n_src):
        return cls(n_out, n_src, all_rows=True)

    @property
    def is_identity(self):
        return self.codes is None and self.csr is None and not self.all_rows and self.n_out == self.n_src

    @property
    def indptr(self):
        return None if self.csr is None else self.csr.get()[0]

    @property
    def indices(self):
        return None if self.csr is None else self.csr.get()[1]

    @property
    def nbytes(self):
        n = 0 if self.codes is None else self.codes.nbytes
        return n + (0 if self.csr is None else self.csr.nbytes)

    # --- composition -------------------------------------------------------------------------------------
    def take(self, sel):
        """The relation of ``output[sel]`` (``sel`` int64 positions, -1 for a row with no input)."""
        sel = np.asarray(sel, np.int64)
        n = sel.shape[0]
        if self.all_rows:
            if n == 0 or sel.min() >= 0:
                return RowRel(n, self.n_src, all_rows=True)
            return self._some_rows_all(sel >= 0)  # a row with no input row reads nothing
        if self.codes is None:
            return RowRel(n, self.n_src, sel, self.csr)
        if n == 0 or sel.min() >= 0:
            return RowRel(n, self.n_src, self.codes[sel], self.csr)
        ext = np.empty(self.codes.shape[0] + 1, np.int64)
        ext[:-1] = self.codes
        ext[-1] = -1
        return RowRel(n, self.n_src, ext[sel], self.csr)

    def group(self, gcodes, ngroups):
        """The relation of a group-by: output row ``g`` derives from every row ``r`` with ``gcodes[r] == g``.

        Only the codes are kept now; the CSR relation is built when a query first needs it.
        """
        gcodes = np.asarray(gcodes, np.int64)
        if self.all_rows:
            full = np.zeros(ngroups, bool)
            full[gcodes[gcodes >= 0]] = True
            if full.all():
                return RowRel(ngroups, self.n_src, all_rows=True)
            return self._some_rows_all(full)  # an empty group (an unused category) reads nothing
        return RowRel(ngroups, self.n_src, None, LazyCSR(fn=lambda: self._group_csr(gcodes, ngroups)))

    def _some_rows_all(self, full):
        """The relation whose output row ``i`` derives from every input row where ``full[i]``, from none
        elsewhere (one code shared by the full rows, -1 for the others)."""
        csr = LazyCSR(np.array([0, self.n_src], np.int64), np.arange(self.n_src, dtype=np.int64))
        return RowRel(full.shape[0], self.n_src, np.where(full, 0, -1).astype(np.int64), csr)

    def _group_csr(self, gcodes, ngroups):
        valid = gcodes >= 0
        counts = np.bincount(gcodes[valid], minlength=ngroups) if ngroups else np.zeros(0, np.int64)
        indptr = np.zeros(ngroups + 1, np.int64)
        np.cumsum(counts, out=indptr[1:])
        members = group_member_rows(gcodes, valid, ngroups)
        if self.codes is None and self.csr is None:
            return indptr, members
        c = members if self.codes is None else self.codes[members]
        if self.csr is None:
            keep = c >= 0
            if keep.all():
                return indptr, c
            ck = np.zeros(keep.shape[0] + 1, np.int64)
            np.cumsum(keep, out=ck[1:])
            return ck[indptr], c[keep]
        # through a CSR relation: many members of a group often share a code (rows that all derive from the
        # same fitted statistics); each (group, code) pair is expanded once, so a group's size is the size of
        # the union it stands for, not the sum of its members' (no n x n blow-up of composed fits)
        sp, si = self.csr.get()
        ncode = sp.shape[0] - 1
        gm = np.repeat(np.arange(ngroups, dtype=np.int64), counts)
        ok = c >= 0
        if ncode <= 0 or not ok.any():
            return np.zeros(ngroups + 1, np.int64), _EMPTY
        key = np.unique(gm[ok] * ncode + c[ok])
        g3, c3 = np.divmod(key, ncode)
        starts = sp[c3]
        lens = sp[c3 + 1] - starts
        idx = _expand(starts, lens)
        per = np.bincount(g3, weights=lens, minlength=ngroups).astype(np.int64)
        out = np.zeros(ngroups + 1, np.int64)
        np.cumsum(per, out=out[1:])
        return out, si[idx]

    # --- queries -----------------------------------------------------------------------------------------
    def _codes_of(self, rows):
        return rows if self.codes is None else self.codes[rows]

    def rows_per(self, rows):
        """CSR ``(ptr, src_rows)``: the input rows of each output row in ``rows``."""
        rows = np.asarray(rows, np.int64)
        k = rows.shape[0]
        if self.all_rows:
            ptr = np.arange(k + 1, dtype=np.int64) * self.n_src
            return ptr, np.tile(np.arange(self.n_src, dtype=np.int64), k)
        c = self._codes_of(rows)
        ok = c >= 0
        if self.csr is None:
            ptr = np.zeros(k + 1, np.int64)
            np.cumsum(ok, out=ptr[1:])
            return ptr, c[ok]
        if not ok.any():
            return np.zeros(k + 1, np.int64), _EMPTY
        sp, si = self.csr.get()
        last = sp.shape[0] - 1
        cc = np.where(ok, c, 0)
        starts = sp[np.minimum(cc, last)]
        lens = np.where(ok, sp[np.minimum(cc + 1, last)] - starts, 0)
        ptr = np.zeros(k + 1, np.int64)
        np.cumsum(lens, out=ptr[1:])
        return ptr, si[_expand(starts, lens)]

    def back_mask(self, out_rows_mask):
        """Input rows (bool mask) reached from the output rows in ``out_rows_mask``."""
        m = np.zeros(self.n_src, bool)
        if not out_rows_mask.any():
            return m
        if self.all_rows:
            m[:] = True
            return m
        rows = np.flatnonzero(out_rows_mask)
        c = self._codes_of(rows)
        c = c[c >= 0]
        if self.csr is None:
            m[c] = True
            return m
        # each distinct code once: rows that share a code (every row filled with one fitted statistic) expand
        # its input rows once, not once per row
        sp, si = self.csr.get()
        last = sp.shape[0] - 1
        seen = np.zeros(last, bool)
        seen[c[c < last]] = True
        uc = np.flatnonzero(seen)
        starts = sp[uc]
        m[si[_expand(starts, sp[uc + 1] - starts)]] = True
        return m

    def forward_mask(self, src_rows_mask):
        """Output rows (bool mask) that derive from any input row in ``src_rows_mask``."""
        if self.all_rows:
            return np.full(self.n_out, bool(src_rows_mask.any()))
        if self.csr is None:
            hit = src_rows_mask
        else:
            sp, si = self.csr.get()
            hits = src_rows_mask[si].astype(np.int64)
            cs = np.zeros(hits.shape[0] + 1, np.int64)
            np.cumsum(hits, out=cs[1:])
            hit = (cs[sp[1:]] - cs[sp[:-1]]) > 0
        if self.codes is None:
            return hit[:self.n_out].copy() if hit.shape[0] >= self.n_out else np.pad(hit, (0, self.n_out - hit.shape[0]))
        ok = self.codes >= 0
        out = np.zeros(self.n_out, bool)
        out[ok] = hit[self.codes[ok]]
        return out


    def forward_rows(self, src_rows):
        """Output rows (sorted positions) that derive from any of the input rows ``src_rows``: the sparse
        form of :meth:`forward_mask`, with no mask over the input rows (one scan of the relation's arrays)."""
        src_rows = np.unique(np.asarray(src_rows, np.int64))
        if type(self) is not RowRel or self.all_rows:
            m = np.zeros(self.n_src, bool)
            m[src_rows] = True
            return np.flatnonzero(self.forward_mask(m))
        if not src_rows.size:
            return src_rows
        # the inverse, sorted once (O(rows), like the CSR form a first backward query builds); then a query
        # costs O(log rows + answer) in time and memory
        inv = getattr(self, "_inv", None)
        if inv is None:
            by_code = None
            if self.codes is not None:
                o = np.argsort(self.codes, kind="stable")
                by_code = (self.codes[o], o)
            by_src = None
            if self.csr is not None:
                sp, si = self.csr.get()
                grp = np.repeat(np.arange(sp.shape[0] - 1, dtype=np.int64), np.diff(sp))
                o = np.argsort(si, kind="stable")
                by_src = (si[o], grp[o])
            inv = self._inv = (by_code, by_src)
        by_code, by_src = inv
        if by_src is None:
            hit = src_rows
        else:
            keys, grp = by_src
            lo = np.searchsorted(keys, src_rows, "left")
            hit = np.unique(grp[_expand(lo, np.searchsorted(keys, src_rows, "right") - lo)])
        if by_code is None:
            return hit[hit < self.n_out]
        keys, pos = by_code
        lo = np.searchsorted(keys, hit, "left")
        return np.sort(pos[_expand(lo, np.searchsorted(keys, hit, "right") - lo)])


def group_member_rows(gcodes, valid, ngroups):
    """Row positions sorted by group (stable), rows with a negative code left out."""
    try:
        from pandas.core.sorting import get_group_index_sorter
        order = get_group_index_sorter(np.where(valid, gcodes, -1).astype(np.intp), ngroups)
        order = order.astype(np.int64, copy=False)
        nbad = int((~valid).sum())
        return order[nbad:] if nbad else order  # the -1 codes sort first
    except Exception:  # pragma: no cover - pandas missing or its helper moved
        pos = np.flatnonzero(valid)
        return pos[np.argsort(gcodes[pos], kind="stable")]


class Part:
    """The cells one input contributes: ``rows(i) x cols(j)``.

    Parameters
    ----------
    node : whence.graph.Node
        The input (a source table, or any tracked array of one or two dimensions).
    rel : RowRel
    cmat : ndarray of bool, shape (index levels + columns, input columns)
    control : bool
        A control part (cells that chose which rows are there: masks, join keys, group keys) rather than data.
    """

    __slots__ = ("node", "rel", "cmat", "control", "wide")

    def __init__(self, node, rel, cmat, control=False, wide=False):
        self.node = node
        self.rel = rel
        self.cmat = cmat
        self.control = control
        self.wide = wide  # cmat is one row that holds for every cell (control parts)

    def with_(self, rel=None, cmat=None, control=None):
        return Part(self.node, self.rel if rel is None else rel, self.cmat if cmat is None else cmat,
                    self.control if control is None else control, self.wide)

    def data_row(self, nidx):
        """Input columns used by any data column of the output."""
        return self.cmat[0] if self.wide else self.cmat[nidx:].any(0)

    def data_cm(self, nidx, ncols):
        """The (columns, input columns) matrix of the data columns."""
        if self.wide:
            return np.broadcast_to(self.cmat[0], (ncols, self.cmat.shape[1]))
        return self.cmat[nidx:]


def node_cols(node):
    return 1 if len(node.shape) < 2 else int(node.shape[1])


def data_cmat(row, nidx, ncols):
    """A cmat that gives every data column (not the index levels) the input columns ``row``: the control of
    a row's values (the rows they were read from, the key cells of their group), as opposed to a wide part's
    control of the row itself (the cells that chose it)."""
    cm = np.zeros((nidx + ncols, row.shape[0]), bool)
    cm[nidx:] = row
    return cm


class Lineage:
    """The lineage of one DataFrame or Series: its parts, its shape, why it is PARTIAL, and its graph node.

    ``nidx`` rows of every ``cmat`` describe the index levels (they become cells again after
    ``reset_index``); the rest describe the columns.

    The graph node (:attr:`node`) is built when first asked for (a query, a store, a plot): most frames of a
    pipeline are intermediates that nothing ever asks about, and building a node and its map per pandas call
    was a large share of whence's cost per call.  ``history`` may hold the :class:`Lineage` objects of the
    frames the table was computed from (their nodes are built first, so that a parent's id stays smaller than
    its child's) or graph nodes.
    """

    __slots__ = ("parts", "n", "nidx", "ncols", "reasons", "_node", "series", "_spec", "memo", "_aggregate",
                 "__weakref__")

    def __init__(self, parts, n, nidx, ncols, reasons=(), op="frame", history=(), series=False, detail="",
                 checked=False):
        # (``checked``: no part is empty, as when the parts are another Lineage's)
        self.parts = list(parts) if checked else [p for p in parts if np.count_nonzero(p.cmat)]
        self.n = int(n)
        self.nidx = int(nidx)
        self.ncols = int(ncols)
        self.reasons = tuple(dict.fromkeys(reasons)) if reasons else ()
        self.series = series
        self._node = None
        self._spec = (op, history, detail)
        # derived lineages that depend on nothing but this one (a column taken by label), built once: a
        # Lineage never changes once made, so objects with the same derivation may share one
        self.memo = None
        self._aggregate = None

    @property
    def aggregate(self):
        """What a group-by aggregation computed (:class:`~whence.tabular.aggregates.AggregateRecord`), or None;
        it goes on the node's map (``node.map.aggregate``), now or when the node is built."""
        return self._aggregate

    @aggregate.setter
    def aggregate(self, record):
        self._aggregate = record
        if self._node is not None:
            self._node.map.aggregate = record

    @property
    def op(self):
        """The name of the operation that made the table."""
        return self._node.op if self._spec is None else self._spec[0]

    @property
    def node(self):
        """The table's graph node (built at the first call, with the nodes of its history)."""
        nd = self._node
        if nd is None:
            nd = self._build_nodes()
        return nd

    @node.setter
    def node(self, value):
        self._node = value
        self._spec = None

    def _build_nodes(self):
        # the unbuilt history first (oldest first), without recursion: a long chain of in-place writes
        # that nothing asked about is a long chain of unbuilt lineages
        todo = [(self, False)]
        while todo:
            lin, ready = todo.pop()
            if lin._node is not None:
                continue
            if ready:
                op, history, detail = lin._spec
                lin._node = lin._make_node(op, history, detail)
                lin._spec = None
                continue
            todo.append((lin, True))
            for h in lin._spec[1]:
                if type(h) is Lineage and h._node is None:
                    todo.append((h, False))
        return self._node

    def _make_node(self, op, history, detail):
        shape = (self.n,) if self.series else (self.n, self.ncols)
        parents, pos = [], {}
        control = []
        entries = []
        for p in self.parts:
            key = (p.node.id, p.control)
            k = pos.get(key)
            if k is None:
                k = pos[key] = len(parents)
                parents.append(p.node)
                if p.control:
                    control.append(k)
            entries.append((k, p))
        n_inputs = len(parents)
        for h in history:
            if h is not None:
                parents.append(h._node if type(h) is Lineage else h)
        partial = "; ".join(self.reasons) if self.reasons else None
        m = TableMap(shape, self.nidx, entries, [pn.shape for pn in parents], n_inputs)
        if self._aggregate is not None:
            m.aggregate = self._aggregate
        return Node(op, shape, m, tuple(parents), frozenset(control), partial, detail=detail)

    @property
    def data_parts(self):
        return [p for p in self.parts if not p.control]

    @property
    def nbytes(self):
        return sum(p.rel.nbytes + p.cmat.nbytes for p in self.parts)


class TableMap(Map):
    """The map of a table node: one hop from output cells to the cells of each input (see :class:`Part`).

    Parents past ``n_inputs`` are the frames the table was computed from; they are there so that
    ``ops``/``ancestors`` show the pandas operations, and carry no cells (the relation is already composed).
    """

    kind = "table"

    def __init__(self, out_shape, nidx, entries, parent_shapes, n_inputs):
        self.out_shape = tuple(out_shape)
        self.parent_shapes = tuple(tuple(s) for s in parent_shapes)
        self.nidx = nidx
        self.entries = entries
        self.n_inputs = n_inputs
        self.ncols = 1 if len(self.out_shape) < 2 else self.out_shape[1]

    @property
    def nbytes(self):
        return sum(p.rel.nbytes for _, p in self.entries)

    def arrays(self):
        """The index arrays this map holds (shared with other tables' maps: count each once)."""
        out = []
        for _, p in self.entries:
            rel = p.rel
            if rel.codes is not None:
                out.append(rel.codes)
            if rel.csr is not None and rel.csr.fn is None:
                out.extend([rel.csr.indptr, rel.csr.indices])
        return out

    def held_arrays(self):
        """The index arrays this map holds (the :class:`~whence.maps.Map` protocol's name for :meth:`arrays`)."""
        return tuple(self.arrays())

    def _data_cm(self, p):
        return p.data_cm(self.nidx, self.ncols)

    def backward_sparse(self, flat, skip=()):
        """Input cells of the output cells ``flat``, per parent; parents in ``skip`` (the control inputs of a
        data query) are not computed."""
        flat = np.asarray(flat, np.int64)
        ncols = self.ncols
        rows, cols = np.divmod(flat, ncols)
        acc = [[] for _ in self.parent_shapes]
        for k, p in self.entries:
            if k in skip:
                continue
            sub = self._data_cm(p)[cols]
            has = sub.any(1)
            if not has.any():
                continue
            if not has.all():
                sub = sub[has]
                r = rows[has]
            else:
                r = rows
            ptr, srows = p.rel.rows_per(r)
            kk, sc = np.nonzero(sub)
            lens = ptr[kk + 1] - ptr[kk]
            idx = _expand(ptr[kk], lens)
            nsc = sub.shape[1]
            acc[k].append(srows[idx] * nsc + np.repeat(sc.astype(np.int64), lens))
        return [np.concatenate(a) if a else None for a in acc]

    def backward(self, out_mask, skip=()):
        om = np.asarray(out_mask).reshape(self.out_shape[0], self.ncols)
        res = [None] * len(self.parent_shapes)
        for k, p in self.entries:
            if k in skip:
                continue
            cm = self._data_cm(p)
            shape = self.parent_shapes[k]
            nsrc_cols = 1 if len(shape) < 2 else shape[1]
            m = res[k]
            if m is None:
                m = res[k] = np.zeros((shape[0], nsrc_cols), bool)
            cache = {}
            for j in np.flatnonzero(cm.any(0)):
                colsel = cm[:, j]
                key = colsel.tobytes()
                need = cache.get(key)
                if need is None:
                    need = cache[key] = p.rel.back_mask(om[:, colsel].any(1))
                m[:, j] |= need
        return [None if r is None else r.reshape(self.parent_shapes[k]) for k, r in enumerate(res)]

    def forward(self, k, in_mask):
        out = np.zeros((self.out_shape[0], self.ncols), bool)
        if k < self.n_inputs:
            shape = self.parent_shapes[k]
            im = np.asarray(in_mask).reshape(shape[0], 1 if len(shape) < 2 else shape[1])
            for kk, p in self.entries:
                if kk != k:
                    continue
                cm = self._data_cm(p)
                for j in np.flatnonzero(cm.any(0) & im.any(0)):
                    rows = p.rel.forward_mask(im[:, j])
                    out |= rows[:, None] & cm[:, j][None, :]
        return out.reshape(self.out_shape)

    def forward_sparse(self, k, flat):
        """Output cells (sorted flat indices) that derive from the input cells ``flat`` of parent ``k``: per
        input column asked, the rows it reaches through the row relation (a row mask over the input rows, no
        cell mask), times the output columns that read it."""
        if k >= self.n_inputs:
            return np.zeros(0, np.int64)
        shape = self.parent_shapes[k]
        nsrc_cols = 1 if len(shape) < 2 else shape[1]
        srows, scols = np.divmod(np.asarray(flat, np.int64), nsrc_cols)
        ncols = self.ncols
        acc = []
        for kk, p in self.entries:
            if kk != k:
                continue
            cm = self._data_cm(p)
            for j in np.unique(scols):
                ocols = np.flatnonzero(cm[:, j])
                if not ocols.size:
                    continue
                rows = p.rel.forward_rows(srows[scols == j])
                if rows.size:
                    acc.append((rows[:, None] * ncols + ocols[None, :]).ravel())
        return np.unique(np.concatenate(acc)) if acc else np.zeros(0, np.int64)


class _Bounds:
    """The bounds of a :class:`RangeRel` (``lo``, ``hi``, ``order``), or the function that computes them on first
    use (``make``)."""

    __slots__ = ("lo", "hi", "order", "make")

    def __init__(self, make=None):
        self.lo = self.hi = self.order = None
        self.make = make

    def set(self, lo, hi, order):
        self.lo = np.asarray(lo, np.int64)
        self.hi = np.asarray(hi, np.int64)
        self.order = None if order is None else np.asarray(order, np.int64)

    def resolved(self):
        if self.make is not None:
            self.set(*self.make())
            self.make = None
        return self


def _range_positions(b, rows):
    """(pointers, positions in the base's output rows) of the windows of ``rows``, bounds ``b`` resolved."""
    lo, hi = b.lo[rows], b.hi[rows]
    lens = hi - lo
    ptr = np.zeros(rows.shape[0] + 1, np.int64)
    np.cumsum(lens, out=ptr[1:])
    pos = _expand(lo, lens)
    return ptr, (pos if b.order is None else b.order[pos])


def _range_rows_per(b, base, rows):
    """The CSR (pointers, input rows) of a :class:`RangeRel`'s ``rows``, from its bounds and base."""
    rows = np.asarray(rows, np.int64)
    ptr1, pos = _range_positions(b.resolved(), rows)
    if base.is_identity:
        return ptr1, pos
    ptr2, src = base.rows_per(pos)
    return ptr2[ptr1], src


def _range_csr(b, base, n_out):
    return _range_rows_per(b, base, np.arange(n_out, dtype=np.int64))


class RangeRel(RowRel):
    """Output row ``i`` derives from the rows ``order[lo[i]:hi[i]]`` of a base relation's output.

    The relation of a window (``rolling``, ``expanding``, ``ewm``, the cumulative family, ``diff``, a
    group's prefix): two int64 bounds per output row, and optionally a permutation ``order`` of the base's
    output rows (a group-by's sorted members, or explicit small sets written as consecutive runs).  Nothing
    per cell is stored: a query expands the ranges of the rows it asks about only, and a whole-column query
    is a difference array (backward) or a prefix sum (forward), O(rows).  The CSR form (``csr``) is
    materialised only where a caller insists on it (saving to a store).

    Parameters
    ----------
    lo, hi : ndarray of int64, shape (n_out,)
        Bounds into ``order`` (or into the base's output rows when ``order`` is None); ``lo == hi``: no row.
    base : RowRel
        The relation of the rows being windowed to the input.
    order : ndarray of int64, optional
        Base output rows in window order.
    """

    __slots__ = ("_b", "base")

    def __init__(self, lo, hi, base, order=None, n_out=None, make=None):
        self.base = base
        # the bounds live in an object of their own, which the lazy CSR form refers to (a CSR referring back
        # to the relation would make every window relation a reference cycle)
        self._b = b = _Bounds(make)  # make: bounds computed on first use, make() -> (lo, hi, order)
        if make is None:
            b.set(lo, hi, order)
            n_out = b.lo.shape[0]
        super().__init__(n_out, base.n_src, None, LazyCSR(fn=functools.partial(_range_csr, b, base, int(n_out))))

    @property
    def lo(self):
        return self._b.resolved().lo

    @property
    def hi(self):
        return self._b.resolved().hi

    @property
    def order(self):
        return self._b.resolved().order

    @property
    def ranged(self):
        return True

    @property
    def is_identity(self):
        return False

    @property
    def nbytes(self):
        b = self._b
        if b.make is not None:
            return self.base.nbytes
        n = b.lo.nbytes + b.hi.nbytes + (0 if b.order is None else b.order.nbytes)
        return n + self.base.nbytes

    def _positions(self, rows):
        return _range_positions(self._b.resolved(), rows)

    def take(self, sel):
        sel = np.asarray(sel, np.int64)

        def make():
            if sel.shape[0] == 0 or sel.min() >= 0:
                return self.lo[sel], self.hi[sel], self.order
            ok = sel >= 0
            if self.lo.shape[0] == 0:  # no rows to take from (every sel is -1): empty ranges
                zero = np.zeros(sel.shape[0], np.int64)
                return zero, zero.copy(), self.order
            s = np.where(ok, sel, 0)
            return np.where(ok, self.lo[s], 0), np.where(ok, self.hi[s], 0), self.order
        return RangeRel(None, None, self.base, n_out=sel.shape[0], make=make)

    def group(self, gcodes, ngroups):
        gcodes = np.asarray(gcodes, np.int64)
        return RowRel(ngroups, self.n_src, None, LazyCSR(fn=lambda: self._group_csr(gcodes, ngroups)))

    def _group_csr(self, gcodes, ngroups):
        valid = gcodes >= 0
        members = group_member_rows(gcodes, valid, ngroups)
        ptr, src = self.rows_per(members)
        g = np.repeat(gcodes[members], ptr[1:] - ptr[:-1])
        key = np.unique(g * max(self.n_src, 1) + src)
        gg, ss = np.divmod(key, max(self.n_src, 1))
        indptr = np.zeros(ngroups + 1, np.int64)
        np.cumsum(np.bincount(gg, minlength=ngroups), out=indptr[1:])
        return indptr, ss

    def rows_per(self, rows):
        return _range_rows_per(self._b, self.base, rows)

    def back_mask(self, out_rows_mask):
        m = np.zeros(self.n_src, bool)
        if not out_rows_mask.any():
            return m
        space = self.base.n_out if self.order is None else self.order.shape[0]
        rows = np.flatnonzero(out_rows_mask)
        lo, hi = self.lo[rows], self.hi[rows]
        keep = hi > lo
        d = np.zeros(space + 1, np.int64)
        np.add.at(d, lo[keep], 1)
        np.add.at(d, hi[keep], -1)
        hit = np.cumsum(d[:-1]) > 0
        if self.order is not None:
            bm = np.zeros(self.base.n_out, bool)
            bm[self.order[hit]] = True
        else:
            bm = hit
        return bm if self.base.is_identity else self.base.back_mask(bm)

    def forward_mask(self, src_rows_mask):
        hit = src_rows_mask if self.base.is_identity else self.base.forward_mask(src_rows_mask)
        if self.order is not None:
            hit = hit[self.order]
        cs = np.zeros(hit.shape[0] + 1, np.int64)
        np.cumsum(hit, out=cs[1:])
        return (cs[self.hi] - cs[self.lo]) > 0


#: the public name the store uses for the compressed-rows relation class
CSR = LazyCSR
#: public names of the row helpers other packages use: ``expand_ranges(starts, lens)`` concatenates ranges,
#: ``group_members(codes, valid, ngroups)`` lists row positions sorted by group
expand_ranges = _expand
group_members = group_member_rows
