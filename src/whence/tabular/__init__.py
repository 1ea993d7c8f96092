"""Row and cell lineage through pandas: read tracked frames, run ordinary pandas code, trace back to files.

>>> import io, whence as wh
>>> wh.reset()
>>> apps = wh.read_csv(io.StringIO("id,income\\n1,10\\n2,20\\n3,30\\n"), name="apps")
>>> rich = apps[apps["income"] > 15]
>>> X = rich[["income"]].to_numpy()
>>> [(s.table, s.row, s.line, s.columns) for s in wh.trace_to_file(X, row=1)]
[('apps', 2, None, ('income',))]
"""

from __future__ import annotations

import os

import numpy as np

from .._extras import require

require("whence's tables (read_csv, read_parquet, track_frame, trace_to_file)", "pandas", modules=["pandas"])

import pandas as pd  # noqa: E402

from .. import hooks as _hooks
from ..errors import SourceNameError
from ..graph import sources_by_name as _sources, new_source
from .frame import TrackedFrame, TrackedGroupBy, TrackedSeries, is_tracked_frame, lineage_of  # noqa: F401
from .frame.values import constant
from .relations import Lineage, Part, RowRel
from .reshape import install as _install
from .source_tables import SkipRecorder, TableSource, csv_line_options, csv_line_reason, register, table_source
from .trace import SourceRow, Trace, trace_to_file

__all__ = ["read_csv", "read_parquet", "track_frame", "trace_to_file", "TrackedFrame", "TrackedSeries",
           "TrackedGroupBy", "Trace", "SourceRow", "TableSource", "table_source", "is_tracked_frame", "constant"]

_install()
from . import sklearn as _sklearn_hooks  # noqa: E402,F401  (scikit-learn keeps lineage: hooks now, or when it is imported)


def _check_name(name):
    if name is not None and (not isinstance(name, str) or not name):
        raise SourceNameError(f"a source name must be a non-empty string, got {name!r}")
    if name is not None and name in _sources:
        raise SourceNameError(
            f"source name {name!r} is already in use by a live tracked object; choose another name, "
            f"or call whence.release({name!r}) / whence.reset() to free it")


def _default_name(path):
    if isinstance(path, (str, os.PathLike)):
        base = os.path.basename(os.fspath(path))
        for ext in (".gz", ".bz2", ".xz", ".zip", ".zst"):
            if base.endswith(ext):
                base = base[: -len(ext)]
        return os.path.splitext(base)[0] or None
    return None


def _track(df, name, path, fmt, line_opts=None):
    if isinstance(df, TrackedFrame):
        raise TypeError("this frame is already tracked; use it directly")
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    n = len(df)
    default_index = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    nidx = df.index.nlevels
    idx_cols = [] if default_index else [nm if nm is not None else f"level_{i}" for i, nm in enumerate(df.index.names)]
    src_cols = idx_cols + list(df.columns)
    node = new_source((n, len(src_cols)), name)
    table = TableSource(node.name, src_cols, n, path=path, format=fmt, line_opts=line_opts)
    register(node, table)
    cm = np.zeros((nidx + df.shape[1], len(src_cols)), bool)
    if default_index:
        cm[nidx:] = np.eye(df.shape[1], dtype=bool)
    else:
        cm[:] = np.eye(nidx + df.shape[1], dtype=bool)
    lin = Lineage([Part(node, RowRel.identity(n), cm)], n, nidx, df.shape[1], op="source")
    if default_index:
        lin.node = node  # the frame *is* the source: queries start and end on it
    t = TrackedFrame(df)
    object.__setattr__(t, "_wh", lin)
    # forward(t, ...) starts from the source cells, in the coordinates backward answers in (index levels
    # first), also after t is written in place
    object.__setattr__(t, "_wh_origin", node)
    return t


def read_csv(filepath_or_buffer, *, name=None, **kwargs):
    """Read a CSV file into a tracked DataFrame (``pandas.read_csv``, same arguments).

    Every row remembers its file and line; ordinary pandas code on the frame keeps row and column lineage.
    A list of paths or a glob pattern (``"parts/*.csv"``) reads the files lazily with dask, one partition
    per file, and gives a :class:`whence.dask.DaskTrackedFrame` (see :func:`whence.dask.read_csv`).

    Parameters
    ----------
    filepath_or_buffer : str, path or file-like
    name : str, optional
        The source name in query answers; the file's stem by default.
    **kwargs
        Passed to :func:`pandas.read_csv`.

    Returns
    -------
    TrackedFrame

    Raises
    ------
    whence.errors.SourceNameError
        When ``name`` is in use by a live tracked object (checked before reading).
    Exception
        pandas' own errors (missing file, malformed line), unchanged; nothing is recorded.

    Examples
    --------
    >>> import io, whence as wh
    >>> wh.reset()
    >>> df = wh.read_csv(io.StringIO("a,b\\n1,2\\n3,4\\n"), name="t")
    >>> type(df).__name__, list(df.columns)
    ('TrackedFrame', ['a', 'b'])
    """
    if kwargs.get("chunksize") is not None or kwargs.get("iterator"):
        raise ValueError("whence.read_csv reads whole files; chunksize/iterator are not supported")
    if isinstance(filepath_or_buffer, (list, tuple)) or (
            isinstance(filepath_or_buffer, (str, os.PathLike)) and any(ch in os.fspath(filepath_or_buffer)
                                                                      for ch in "*?[")
            and not os.path.exists(filepath_or_buffer)):
        # globs and lists of files read lazily: the dask backend, one layer up, loaded through whence.hooks
        return _hooks.LAZY["dataframe"]().read_csv(filepath_or_buffer, name=name, **kwargs)
    if name is None:
        name = _default_name(filepath_or_buffer)
    _check_name(name)
    if callable(kwargs.get("skiprows")):  # its answers kept: the rows' lines follow the rows it skipped
        kwargs = dict(kwargs, skiprows=SkipRecorder(kwargs["skiprows"]))
    df = pd.read_csv(filepath_or_buffer, **kwargs)
    path = os.fspath(filepath_or_buffer) if isinstance(filepath_or_buffer, (str, os.PathLike)) else None
    if path is not None and not os.path.isfile(path):
        path = None  # a URL
    if isinstance(kwargs.get("skiprows"), SkipRecorder):
        kwargs["skiprows"] = kwargs["skiprows"].answers()
    # the options lines are computed with, or the reason they are not
    return _track(df, name, path, "csv", (csv_line_options(kwargs) or csv_line_reason(kwargs)) if path else None)


def read_parquet(path, *, name=None, **kwargs):
    """Read a Parquet file into a tracked DataFrame (``pandas.read_parquet``, same arguments).

    Rows are traced to their position in the file (Parquet has no lines).
    """
    if name is None:
        name = _default_name(path)
    _check_name(name)
    df = pd.read_parquet(path, **kwargs)
    p = os.fspath(path) if isinstance(path, (str, os.PathLike)) and os.path.isfile(os.fspath(path)) else None
    return _track(df, name, p, "parquet")


def track_frame(df, name=None):
    """Start tracking a DataFrame already in memory (its rows are traced by position).

    Examples
    --------
    >>> import pandas as pd, whence as wh
    >>> wh.reset()
    >>> t = wh.track_frame(pd.DataFrame({"x": [1.0, 2.0]}), name="mem")
    >>> wh.backward((t["x"] * 2).to_numpy(), (1,))["mem"].tolist()
    [[1, 0]]
    """
    _check_name(name)
    return _track(df, name, None, "frame")
