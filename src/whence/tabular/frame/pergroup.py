"""The per-group rule's plumbing: the user's function as pandas runs it on each group (its tracked results kept,
:class:`GroupRuns`), and the parts of the groups' results put side by side (:func:`merge_disjoint`).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from ..relations import LazyCSR, RowRel
from .base import attach, guard_depth, guard_state, lineage_of, remap


def merge_disjoint(parts):
    """Parts of the groups of a per-group result merged into one part per (input, role, columns) where their
    output rows do not overlap: the relations' codes are put side by side (through one CSR relation, the
    codes of each shifted past the previous ones', when they do not share one).  Every cell keeps its
    lineage; the number of parts no longer grows with the number of groups."""
    out, acc = [], {}
    for p in parts:
        rel = p.rel
        if type(rel) is not RowRel or rel.all_rows or rel.codes is None:
            out.append(p)
            continue
        ok = rel.codes >= 0
        key = (id(p.node), p.control, p.wide, p.cmat.shape, p.cmat.tobytes(), rel.n_out, rel.n_src,
               rel.csr is None)
        for e in acc.setdefault(key, []):
            if not (e[0] & ok).any():
                e[0] |= ok
                e[1].append(rel)
                break
        else:
            acc[key].append([ok.copy(), [rel], p])
    for entries in acc.values():
        for _, rels, p in entries:
            out.append(p if len(rels) == 1 else p.with_(rel=side_by_side(rels)))
    return out


def side_by_side(rels):
    """One relation for relations of the same output rows whose rows (codes >= 0) do not overlap."""
    n, n_src = rels[0].n_out, rels[0].n_src
    codes = np.full(n, -1, np.int64)
    if rels[0].csr is None:
        for r in rels:
            m = r.codes >= 0
            codes[m] = r.codes[m]
        return RowRel(n, n_src, codes)
    # the codes each CSR relation is read at (its first ``span`` codes): their CSRs go one after the other,
    # built when a query first needs them (a group-by's are lazy; building them all now would cost more than
    # the whole operation)
    spans, masks = {}, []
    for r in rels:
        m = r.codes >= 0
        masks.append(m)
        top = int(r.codes[m].max()) + 1 if m.any() else 0
        spans[id(r.csr)] = max(spans.get(id(r.csr), 0), top)
    bases, csrs, off = {}, [], 0
    for r in rels:
        if id(r.csr) not in bases:
            bases[id(r.csr)] = off
            span = spans[id(r.csr)]
            csrs.append((r.csr, span))
            off += span
    for r, m in zip(rels, masks):
        codes[m] = r.codes[m] + bases[id(r.csr)]
    return RowRel(n, n_src, codes, LazyCSR(fn=functools.partial(_csr_one_after_another, tuple(csrs))))


def _csr_one_after_another(csrs):
    """The CSR relation of the first ``span`` codes of each ``(csr, span)`` one after the other."""
    ptrs, idxs, top = [np.zeros(1, np.int64)], [], 0
    for csr, span in csrs:
        ip, ix = csr.get()
        ip = np.asarray(ip[:span + 1], np.int64)
        idxs.append(ix[ip[0]:ip[-1]])
        ptrs.append(ip[1:] - ip[0] + top)
        top += int(ip[-1] - ip[0])
    return np.concatenate(ptrs), (np.concatenate(idxs) if idxs else np.zeros(0, np.int64))


_NO_NAME = object()


class GroupRuns:
    """``func`` as pandas itself calls it on each group in ``transform(func)`` / ``apply(func)``: a call on the
    rows of one group of the selected columns runs with tracking on (the group's rows carry their lineage, as
    ``col.iloc[rows]`` would give them), and its tracked result is kept for that group.  The per-group rule
    then reads these results instead of running ``func`` a second time on every group.

    A call that cannot be matched to a group's rows (pandas' column-by-column probe in a frame's
    ``transform``, a group whose key is not found, a group whose rows differ) runs untracked, as pandas'
    own; the per-group rule runs ``func`` again on such groups.  The last call on a group wins (the one
    whose result pandas kept)."""

    def __init__(self, col, indices, func):
        self.col, self.indices, self.func = col, indices, func
        self.lin = lineage_of(col)
        self.runs = {}
        self.frame = isinstance(col, pd.DataFrame)

    def _rows(self, piece):
        col = self.col
        if self.frame:
            if not isinstance(piece, pd.DataFrame) or not piece.columns.equals(col.columns):
                return None
            key = piece.__dict__.get("name", _NO_NAME)
        else:
            if not isinstance(piece, pd.Series):
                return None
            key = piece.name
        try:
            idx = self.indices.get(key)
        except TypeError:  # an unhashable name: not a group key
            return None
        if idx is None or len(idx) != len(piece):
            return None
        idx = np.asarray(idx, np.int64)
        if not piece.index.equals(col.index[idx]):
            return None
        return key, idx, piece.index

    def __call__(self, piece, *args, **kwargs):
        hit = self._rows(piece) if guard_depth() else None
        if hit is None:
            return self.func(piece, *args, **kwargs)
        key, idx, labels = hit
        sub = attach(piece, remap(self.lin, None, idx), "iloc", [self.col])
        if sub is not piece:
            object.__setattr__(sub, "name", key)
        depth = guard_state.depth
        guard_state.depth = 0  # the user's code on the group's tracked rows: its operations are recorded
        try:
            r = self.func(sub, *args, **kwargs)
        finally:
            guard_state.depth = depth
        self.runs[key] = (idx, r, labels)
        return r
