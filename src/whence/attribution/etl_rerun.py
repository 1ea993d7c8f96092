"""Re-running the user's ETL without some source rows, in plain pandas, and matching its training rows to the
first run's through the anchor table.

The answer of deletion propagation (:mod:`whence.attribution.deletion`) for what has no deletion rule, and of
:func:`whence.unlearn.forget_sources`.
"""

from __future__ import annotations

import numpy as np

from .training_matrix import anchor_of
from ..errors import WhenceError

__all__ = ["CounterfactualError", "read_table", "run_etl", "rerun_without"]


class CounterfactualError(WhenceError, ValueError):
    """A deletion that whence cannot propagate as asked (the reason names the table, operation or input)."""


def read_table(path):
    """A source file (Parquet or CSV) as a plain DataFrame."""
    import pandas as pd
    p = str(path)
    return pd.read_parquet(p) if p.endswith(".parquet") else pd.read_csv(p)


def run_etl(etl, frames, target=None):
    """Call the user's ETL on ``{name: frame}`` (keywords, or positional in that order) and return ``(X, y)``."""
    import inspect
    try:
        sig = inspect.signature(etl)
    except (TypeError, ValueError):
        raise CounterfactualError(f"the ETL {etl!r} is not a function whence can call") from None
    params = list(sig.parameters)
    if all(k in params for k in frames) or any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        out = etl(**frames)
    else:
        out = etl(*[frames[k] for k in frames])
    if isinstance(out, tuple):
        return out[0], out[1]
    if target is None:
        raise ValueError("the ETL returned one table: name its label column with target=...")
    if target not in out.columns:
        raise ValueError(f"target {target!r} is not a column of the ETL's output ({list(out.columns)[:8]}...)")
    return out.drop(columns=[target]), out[target]


def rerun_without(etl, sources, dropped, target=None, *, a_name, a_rows0, frames=None):
    """Run the ETL again on the sources without the ``dropped`` rows and match its training rows to the first
    run's through the anchor table.

    Parameters
    ----------
    etl, sources, target : as for :func:`whence.unlearn.forget_sources`
    dropped : dict
        ``{table: source rows}`` to leave out.
    a_name, a_rows0 : the anchor table and the anchor row of every training row of the first run
    frames : dict, optional
        The plain source frames, read once by the caller.

    Returns
    -------
    (X1, y1, match)
        The new training set and, for every new training row, the first run's training row (``match``).
    """
    from .. import graph, tabular
    from .source_scores import row_relation
    keep_maps, frames1 = {}, {}
    for name, path in sources.items():
        df = frames[name] if frames is not None else read_table(path)
        rows = np.asarray(dropped.get(name, np.zeros(0, np.int64)), np.int64)
        keep = np.setdiff1d(np.arange(len(df)), rows)
        keep_maps[name] = keep
        graph.release(name)
        frames1[name] = tabular.track_frame(df.iloc[keep].reset_index(drop=True), name=name)
    try:
        X1, y1 = run_etl(etl, frames1, target)
    except CounterfactualError:
        raise
    except Exception as e:  # noqa: BLE001 - the user's ETL failed on the reduced sources
        raise CounterfactualError(f"the ETL cannot be re-run without the rows {dict((k, list(v)[:5]) for k, v in dropped.items())}: "
                                  f"{type(e).__name__}: {e}") from e
    n1 = len(y1)
    anchor1 = anchor_of(row_relation(X1), n1)
    if anchor1 is None or anchor1[0] != a_name:
        raise CounterfactualError(f"after dropping the rows, {a_name!r} no longer maps one to one onto the "
                                  f"training rows, so the two runs cannot be matched")
    a_rows1 = keep_maps[a_name][anchor1[1]]
    pos0 = np.full(int(max(a_rows0.max(initial=-1), a_rows1.max(initial=-1))) + 1, -1, np.int64)
    pos0[a_rows0] = np.arange(a_rows0.size)
    match = pos0[a_rows1]
    if (match < 0).any():
        raise CounterfactualError("the second ETL run produced training rows the first did not have")
    return X1, y1, match
