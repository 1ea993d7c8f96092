"""ProvRC-style rectangle rows: how a map describes its relation without visiting cells, and how two such
relations compose.

``rectangles()`` describes a map's relation as rows
``(parent, out_lo, out_hi, lo_ax, lo_mul, lo_off, hi_ax, hi_mul, hi_off)``: for output cells ``o`` with
``out_lo <= o <= out_hi`` (per output axis), the parent cells ``i`` with, on every parent axis ``j``,
``lo_off[j] + lo_mul[j] * o[lo_ax[j]] <= i[j] <= hi_off[j] + hi_mul[j] * o[hi_ax[j]]``, where an axis of
-1 means the bound is absolute (``mul`` 0).  Relative bounds make an identity or a shift over a whole
array one row (ProvRC); a stride (strided slices) is the multiplier.  A row over flat (C-order) indices is
marked by ``lo_ax == hi_ax == (-2,)``: the output cells with flat index ``f`` in ``out_lo[0] .. out_hi[0]``
copy the parent cell with flat index ``lo_off[0] + lo_mul[0] * f`` (a reshape is one such row, with
multiplier 1 and offset 0).  A gather (a copy of one parent cell per output cell) describes itself by the
runs of its index array where the source moves by a constant step per output cell, when there are at most
``MAX_ROWS`` of them (a roll, a flip, a delete, a transpose: a few rows); a gather with more (a sort of
random values, a repeat) returns None: its index array is its compressed form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import shape_size

__all__ = ["compose_rects", "rectangles_to_pairs", "DEFERRED"]


def _row(parent, out_shape, lo, hi):
    """``lo``/``hi``: per parent axis (ax, mul, off)."""
    return (parent, tuple(0 for _ in out_shape), tuple(d - 1 for d in out_shape),
            tuple(t[0] for t in lo), tuple(t[1] for t in lo), tuple(t[2] for t in lo),
            tuple(t[0] for t in hi), tuple(t[1] for t in hi), tuple(t[2] for t in hi))


def relative_bound(ax, mul=1, off=0):
    """The (lower, upper) bounds of a parent axis at ``off + mul * o[ax]`` for output cell ``o`` (one cell)."""
    return (ax, mul, off), (ax, mul, off)


def absolute_bound(lo, hi):
    """The (lower, upper) bounds of a parent axis fixed at ``lo .. hi`` whatever the output cell."""
    return (-1, 0, lo), (-1, 0, hi)


def rows_from_axes(parent, out_shape, axes):
    """One row over the whole output of ``out_shape`` to ``parent``, with ``axes`` the (lower, upper) bounds of
    each parent axis (:func:`relative_bound`, :func:`absolute_bound`)."""
    return _row(parent, out_shape, [a[0] for a in axes], [a[1] for a in axes])


def rectangles_to_pairs(rows, out_shape, parent_shapes):
    """Expand rectangle rows into explicit (out flat, parent flat) pairs per parent (for tests and size
    comparisons; this is the per-cell pass that the rectangles avoid)."""
    res: dict[int, list[Any]] = {k: [] for k in range(len(parent_shapes))}
    for parent, olo, ohi, lax, lmul, loff, hax, hmul, hoff in rows:
        pshape = parent_shapes[parent]
        if lax == (-2,):
            f = np.arange(olo[0], ohi[0] + 1)
            res[parent].append(np.stack([f, loff[0] + lmul[0] * f], axis=1))
            continue
        for o in np.ndindex(*[h - l + 1 for l, h in zip(olo, ohi)]):
            o = tuple(a + l for a, l in zip(o, olo))
            ranges = []
            for j in range(len(pshape)):
                lo = loff[j] + (lmul[j] * o[lax[j]] if lax[j] >= 0 else 0)
                hi = hoff[j] + (hmul[j] * o[hax[j]] if hax[j] >= 0 else 0)
                ranges.append(range(max(lo, 0), min(hi, pshape[j] - 1) + 1))
            of = np.ravel_multi_index(o, out_shape) if out_shape else 0
            for i in np.ndindex(*[len(r) for r in ranges]):
                cell = tuple(r[x] for r, x in zip(ranges, i))
                res[parent].append(np.array([[of, np.ravel_multi_index(cell, pshape) if pshape else 0]]))
    return {k: (np.unique(np.vstack(v), axis=0) if v else np.zeros((0, 2), np.int64)) for k, v in res.items()}

MAX_ROWS = 64  # rows of one relation at most: a map with more keeps its own form (an index array, a chain)
#: ``[True]`` while maps are folded as arrays die (see :mod:`whence.compose`): a gather whose rows are not
#: known yet answers None instead of reading its index array (that pass belongs to a query, not to capture)
DEFERRED = [False]


def affine_runs(fs, valid, cap=MAX_ROWS):
    """Split ``0 .. L-1`` into maximal runs where ``valid`` holds and every integer function in ``fs`` (1-D
    arrays of length ``L``) is affine: a list of ``(start, end, [(mul, off), ...])`` with
    ``f[i] == mul * i + off`` on ``start .. end``; None when there are more than ``cap`` runs."""
    L = len(valid)
    if not L:
        return []
    cuts = [np.flatnonzero(valid[1:] != valid[:-1]) + 1] if L > 1 else []
    segs_lo = np.concatenate([np.zeros(1, np.int64)] + cuts) if cuts else np.array([0])
    segs_hi = np.concatenate([segs_lo[1:] - 1, [L - 1]])
    if len(segs_lo) > 2 * cap + 1:
        return None
    ds = [np.diff(f) for f in fs]
    if ds:
        # d-index k (between cells k and k+1) starts a new step where some step changes
        change = np.zeros(max(L - 2, 0), bool)
        for d in ds:
            change |= d[1:] != d[:-1]
        starts = np.concatenate([[0], np.flatnonzero(change) + 1])
        if len(starts) > 2 * cap + 2:
            return None
        ends = np.concatenate([starts[1:] - 1, [max(L - 2, 0)]])
    runs: list[Any] = []
    for a, b in zip(segs_lo.tolist(), segs_hi.tolist()):
        if not valid[a]:
            continue
        i = a
        while i <= b:
            if i == b or not ds:
                e = b if not ds else i
                if not ds:
                    runs.append((i, e, []))
                    break
                runs.append((i, i, [(0, int(f[i])) for f in fs]))
                i += 1
            else:
                k = int(np.searchsorted(starts, i, side="right")) - 1  # the step run holding d-index i
                e = min(int(ends[k]) + 1, b)
                runs.append((i, e, [(int(d[i]), int(f[i]) - int(d[i]) * i) for f, d in zip(fs, ds)]))
                i = e + 1
            if len(runs) > cap:
                return None
    return runs


def _to_flat(row, out_shape, in_shape):
    """``row`` as a row over flat indices (None where it is not one)."""
    if row[3] == (-2,):
        return row
    p, olo, ohi, lax, lmul, loff, hax, hmul, hoff = row
    if (lax, lmul, loff) != (hax, hmul, hoff):
        return None
    if out_shape == in_shape and olo == tuple(0 for _ in out_shape) and ohi == tuple(d - 1 for d in out_shape) \
            and lax == tuple(range(len(out_shape))) and set(lmul) <= {1} and set(loff) <= {0}:
        return (p, (0,), (shape_size(out_shape) - 1,), (-2,), (1,), (0,), (-2,), (1,), (0,))  # an identity
    if len(out_shape) != 1 or len(in_shape) != 1:
        return None
    m = lmul[0] if lax[0] >= 0 else 0
    return (p, olo, ohi, (-2,), (m,), (loff[0],), (-2,), (m,), (loff[0],))


def _to_axes(row, out_shape, in_shape):
    """``row`` as a row over axes (None where a row over flat indices is not one)."""
    if row[3] != (-2,):
        return row
    if len(out_shape) != 1 or len(in_shape) != 1:
        return None
    p, olo, ohi, _, lmul, loff, _, _, _ = row
    ax = (0,) if lmul[0] else (-1,)
    return (p, olo, ohi, ax, lmul, loff, ax, lmul, loff)


def _cdiv(a, b):
    return -((-a) // b)


def _affine_range(mul, off, lo, hi, o_lo, o_hi):
    """The output coordinates ``o`` in ``o_lo .. o_hi`` with ``lo <= mul * o + off <= hi``, as (lo, hi)
    (empty when lo > hi)."""
    if mul == 0:
        return (o_lo, o_hi) if lo <= off <= hi else (1, 0)
    if mul > 0:
        a, b = _cdiv(lo - off, mul), (hi - off) // mul
    else:
        a, b = _cdiv(hi - off, mul), (lo - off) // mul
    return max(a, o_lo), min(b, o_hi)


def _compose_flat(outer_rows, inner_rows):
    out = []
    for orow in outer_rows:
        s, e, a1, c1 = orow[1][0], orow[2][0], orow[4][0], orow[5][0]
        for irow in inner_rows:
            s2, e2, a2, c2 = irow[1][0], irow[2][0], irow[4][0], irow[5][0]
            lo, hi = _affine_range(a1, c1, s2, e2, s, e)
            if lo > hi:
                continue
            m, o = a2 * a1, a2 * c1 + c2
            out.append((0, (lo,), (hi,), (-2,), (m,), (o,), (-2,), (m,), (o,)))
    return out


def _compose_axes(outer_rows, inner_rows, mid_shape):
    out = []
    for orow in outer_rows:
        _, olo, ohi, lax, lmul, loff, hax, hmul, hoff = orow
        for irow in inner_rows:
            _, ilo, ihi, ilax, ilmul, iloff, ihax, ihmul, ihoff = irow
            box_lo, box_hi = list(olo), list(ohi)
            L, H = [], []  # per mid axis: the bounds (ax, mul, off) of the mid cells reached, in this row
            empty = False
            for t, dt in enumerate(mid_shape):
                lt, ht = (lax[t], lmul[t], loff[t]), (hax[t], hmul[t], hoff[t])
                if ilo[t] == 0 and ihi[t] == dt - 1:
                    L.append(lt)
                    H.append(ht)
                elif lt[0] < 0 and ht[0] < 0:
                    a, b = max(lt[2], ilo[t]), min(ht[2], ihi[t])
                    if a > b:
                        empty = True
                        break
                    L.append((-1, 0, a))
                    H.append((-1, 0, b))
                elif lt == ht:
                    a, b = _affine_range(lt[1], lt[2], ilo[t], ihi[t], box_lo[lt[0]], box_hi[lt[0]])
                    if a > b:
                        empty = True
                        break
                    box_lo[lt[0]], box_hi[lt[0]] = a, b
                    L.append(lt)
                    H.append(lt)
                else:
                    return None  # a range of mid cells across a piece of the inner relation
            if empty:
                continue
            used: dict[int, int] = {}
            nl: list[Any] = []
            nh: list[Any] = []
            for j in range(len(ilax)):
                for side, (ax, mul, off), dst in ((0, (ilax[j], ilmul[j], iloff[j]), nl),
                                                  (1, (ihax[j], ihmul[j], ihoff[j]), nh)):
                    if ax < 0 or mul == 0:
                        dst.append((-1, 0, off))
                        continue
                    point = L[ax] == H[ax]
                    if not point:
                        if abs(mul) > 1:
                            return None  # a stride over a range of mid cells is not a range of parent cells
                        if used.setdefault(ax, j) != j:
                            return None  # two parent axes over one range of mid cells: not a box
                    # the lower parent bound comes from the lower mid bound when the map increases
                    a, m, o = (L[ax] if (mul >= 0) == (side == 0) else H[ax])
                    if a < 0:
                        dst.append((-1, 0, off + mul * o))
                    else:
                        dst.append((a, mul * m, off + mul * o))
            out.append((0, tuple(box_lo), tuple(box_hi), *(tuple(t[c] for t in nl) for c in range(3)),
                        *(tuple(t[c] for t in nh) for c in range(3))))
    return out


def _merge_rows(rows):
    """Adjacent rows with the same bounds merged into one (the pieces of a roll of a roll, say)."""
    rows = sorted(set(rows), key=lambda r: (r[3:], r[1]))
    changed = True
    while changed and len(rows) > 1:
        changed = False
        for i in range(len(rows) - 1):
            a, b = rows[i], rows[i + 1]
            if a[0] != b[0] or a[3:] != b[3:]:
                continue
            diff = [x for x in range(len(a[1])) if (a[1][x], a[2][x]) != (b[1][x], b[2][x])]
            if len(diff) == 1 and a[2][diff[0]] + 1 == b[1][diff[0]]:
                x = diff[0]
                hi = tuple(b[2][y] if y == x else a[2][y] for y in range(len(a[2])))
                rows[i:i + 2] = [(a[0], a[1], hi) + tuple(a[3:])]
                changed = True
                break
    return rows


def compose_rects(outer_rows, inner_rows, mid_shape, out_shape=None, parent_shape=None):
    """Rectangle rows of the composition (output -> mid -> parent) of two one-parent relations given as
    rows (see the module docstring), or None when it is not one set of at most ``MAX_ROWS`` rows of the same
    form.

    A row of ``outer`` bounds each mid axis by an affine function of one output axis; a row of ``inner``
    bounds each parent axis by an affine function of one mid axis over a box of mid cells.  The output cells
    whose mid cells fall in that box form a box again (a point bound restricts its output axis, an absolute
    range is intersected), and the image of a range of mid cells under a step of -1, 0 or 1 is the range
    between the images of its ends, which is again affine in the output coordinates (ProvRC's chain
    composition).  Rows over flat indices compose with rows over flat indices (and with rows between 1-D
    arrays, which are the same thing), when ``out_shape`` and ``parent_shape`` are given.

    Examples
    --------
    >>> from whence.maps import compose_rects, ViewMap
    >>> flip = ViewMap((4,), (4,), "slice", (slice(None, None, -1),)).rectangles()
    >>> tail = ViewMap((4,), (5,), "slice", (slice(1, 5, 1),)).rectangles()
    >>> [(r[1], r[2], r[4], r[5]) for r in compose_rects(flip, tail, (4,))]  # output o copies cell 4 - o
    [((0,), (3,), (-1,), (4,))]
    """
    mid_shape = tuple(mid_shape)
    flat = any(r[3] == (-2,) for r in outer_rows) or any(r[3] == (-2,) for r in inner_rows)
    if flat:
        if out_shape is None or parent_shape is None:
            return None
        out_shape, parent_shape = tuple(out_shape), tuple(parent_shape)
        fo = [_to_flat(r, out_shape, mid_shape) for r in outer_rows]
        fi = [_to_flat(r, mid_shape, parent_shape) for r in inner_rows]
        if all(r is not None for r in fo) and all(r is not None for r in fi):
            rows = _compose_flat(fo, fi)
        else:
            ao = [_to_axes(r, out_shape, mid_shape) for r in outer_rows]
            ai = [_to_axes(r, mid_shape, parent_shape) for r in inner_rows]
            if any(r is None for r in ao) or any(r is None for r in ai):
                return None
            rows = _compose_axes(ao, ai, mid_shape)
    else:
        rows = _compose_axes(outer_rows, inner_rows, mid_shape)
    if rows is None:
        return None
    rows = _merge_rows(rows)
    return rows if len(rows) <= MAX_ROWS else None
