"""Plots of lineage with matplotlib: the source cells of a cell, drawn over the source arrays.

``whence.plot.backward(y, idx)`` runs :func:`whence.backward` for the cell (or region) ``idx`` of ``y`` and
draws one panel per source: the source array as a heatmap (its values when the tracked source array is still
alive and unchanged, else a plain grid), with the cells that ``y[idx]`` derives from outlined.  Large sources
are cropped to the rows and columns around the highlighted cells, and the panel's title says so.

Examples
--------
>>> import numpy as np, whence as wh
>>> wh.reset()
>>> a = wh.track(np.arange(20.0).reshape(4, 5), name="a")
>>> y = np.cumsum(a, axis=1)
>>> fig = wh.plot.backward(y, (2, 3))
>>> [ax.get_title(loc="left") for ax in fig.axes]
['a: 4 cells of 4x5 (values)']
"""

from __future__ import annotations

import numpy as np

__all__ = ["backward"]


def _as_grid(shape):
    """The 2-D shape a source is drawn as: rows x last axis (leading axes flattened)."""
    if len(shape) == 0:
        return (1, 1)
    if len(shape) == 1:
        return (1, shape[0])
    return (int(np.prod(shape[:-1])), int(shape[-1]))


def _grid_cells(cells, shape):
    """Cells (k, ndim) of a source as (row, column) positions of its 2-D drawing."""
    cells = np.asarray(cells, np.int64).reshape(-1, max(len(shape), 1))
    if len(shape) == 0:
        return np.zeros((len(cells), 2), np.int64)
    if len(shape) == 1:
        return np.stack([np.zeros(len(cells), np.int64), cells[:, 0]], axis=1)
    lead = np.ravel_multi_index(tuple(cells[:, :-1].T), shape[:-1]) if len(shape) > 2 else cells[:, 0]
    return np.stack([lead, cells[:, -1]], axis=1)


def _window(lo, hi, n, limit):
    """A window of at most ``limit`` positions of ``0..n-1`` that covers ``lo..hi`` as far as it can."""
    if n <= limit:
        return 0, n
    mid = (lo + hi) // 2
    start = max(0, min(n - limit, mid - limit // 2))
    if hi - lo + 1 <= limit:
        start = max(0, min(lo - (limit - (hi - lo + 1)) // 2, n - limit))
    return start, start + limit


def _source_values(node):
    """The values of a live, unchanged tracked source array (else None)."""
    from .graph import source_arrays
    from .tracked import plain
    arr = source_arrays.get(node.id)
    if arr is None or getattr(arr, "_origin", None) is not node or arr.node is not node:
        return None
    data = plain(arr)
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
        return None
    return data


def backward(y, idx, control=False, *, max_rows=60, max_cols=60, cmap="Greys", figsize=None, axes=None):
    """Draw the source cells of ``y[idx]`` as heatmaps of the source arrays.

    Parameters
    ----------
    y : TrackedArray, tracked frame or store handle
        The array whose cell is explained.
    idx : tuple, int or mask
        The cell or region of ``y``, as for :func:`whence.backward`.
    control : bool, default False
        Include control cells (masks, conditions, keys); they are outlined in a second colour.
    max_rows, max_cols : int
        The largest window of a source drawn; bigger sources are cropped around the highlighted cells.
    cmap : str
        The colour map of the values.
    figsize : tuple, optional
        The figure's size in inches (default: wide enough for one panel per source).
    axes : sequence of matplotlib Axes, optional
        Draw into these (one per source) instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    whence.errors.NotTrackedError
        When ``y`` carries no lineage.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from . import query
    from .query import node_of as _node_of, upstream_nodes as _upstream
    res = query.backward(y, idx, control=control)
    data_only = query.backward(y, idx, control=False) if control else res
    node = _node_of(y)
    nodes = {n.name: n for n in _upstream(node) if n.is_source}
    names = [k for k in res.keys() if k in nodes] or sorted(nodes)
    if axes is None:
        n = max(1, len(names))
        fig = Figure(figsize=figsize or (min(5.0 * n, 16.0), 4.2), layout="constrained")
        axes = [fig.add_subplot(1, n, i + 1) for i in range(n)]
    else:
        axes = list(axes)
        if len(axes) < len(names):
            raise ValueError(f"{len(names)} sources to draw ({names}) but {len(axes)} axes given")
        fig = axes[0].figure
    for ax, name in zip(axes, names):
        src = nodes[name]
        shape = tuple(src.shape)
        rows = _grid_cells(res.get(name, np.zeros((0, len(shape)), np.int64)), shape)
        grid = _as_grid(shape)
        data_cells = {tuple(c) for c in _grid_cells(data_only.get(name, np.zeros((0, len(shape)), np.int64)),
                                                   shape).tolist()}
        if len(rows):
            r0, r1 = _window(int(rows[:, 0].min()), int(rows[:, 0].max()), grid[0], max_rows)
            c0, c1 = _window(int(rows[:, 1].min()), int(rows[:, 1].max()), grid[1], max_cols)
        else:
            r0, r1, c0, c1 = 0, min(grid[0], max_rows), 0, min(grid[1], max_cols)
        values = _source_values(src)
        if values is not None:
            img = np.asarray(values, np.float64).reshape(grid)[r0:r1, c0:c1]
            shown = "values"
        else:
            img = np.zeros((r1 - r0, c1 - c0))
            shown = "cells"
        ax.imshow(img, cmap=cmap, aspect="auto", interpolation="nearest",
                  extent=(c0 - 0.5, c1 - 0.5, r1 - 0.5, r0 - 0.5), alpha=0.85 if values is not None else 0.15)
        inside = 0
        for r, c in rows.tolist():
            if r0 <= r < r1 and c0 <= c < c1:
                inside += 1
                colour = "#d62728" if (r, c) in data_cells else "#ff7f0e"
                ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=True, facecolor=colour, alpha=0.35,
                                       edgecolor=colour, linewidth=1.5))
        crop = "" if (r1 - r0, c1 - c0) == grid else f"\nrows {r0}..{r1 - 1}, columns {c0}..{c1 - 1} shown"
        off = f", {len(rows) - inside} cells outside" if inside < len(rows) else ""
        ax.set_title(f"{name}: {len(rows)} cell{'s' if len(rows) != 1 else ''} of {'x'.join(map(str, shape))}"
                     f" ({shown}){crop}{off}", fontsize=9, loc="left")
        ax.set_xlabel("last axis" if len(shape) > 1 else "index")
        if grid[0] == 1:
            ax.set_yticks([])
        if len(shape) > 2:
            ax.set_ylabel("leading axes (flattened)")
        elif len(shape) == 2:
            ax.set_ylabel("row")
    which = idx if isinstance(idx, tuple) else (idx,)
    fig.suptitle(f"backward of cell {which}: source cells in red"
                 + (", control cells in orange" if control else "")
                 + ("" if res.completeness == "FULL" else "  [PARTIAL: an opaque step, all cells]"), fontsize=10)
    return fig
