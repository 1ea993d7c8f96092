"""Results kept beside the lineage in a store: attributions, unlearning figures, benchmark tables.

``whence.save(path, run, X=X, results={"attribution": explanations, "unlearning": forget_result})`` turns each
result into a JSON document of a known ``kind`` and stores it in the ``results`` table; ``store[run].results()``
lists them and ``store[run].result(name)`` reads one back.  The report and the explorer draw them.

Kinds and their documents
-------------------------
``attribution`` (from an :class:`~whence.attribution.Explanation` or a list of them)
    ``{"model", "n_train", "train_object", "k", "test_rows": [{"test_row", "label", "output", "prediction",
    "top": [{"rank", "train_row", "score", "sources": [{"table", "row", "path", "line"}]}], "bottom": [...],
    "by_source": [{"table", "score"}], "counterfactual": {...}}]}``.  ``sources`` are the source rows of each
    training row, through the lineage of the training matrix (empty when it has none); ``by_source`` is the
    equal-split convention (a bookkeeping of training-row scores, not an effect); ``counterfactual``, present
    when :meth:`~whence.attribution.Explanation.counterfactual` was asked, holds the effects of deleting source
    rows (:meth:`~whence.attribution.counterfactual.Counterfactual.to_dict`: ``output``, per-table ``tables``
    summary, the ``largest`` source rows with file lines, ``delete_table`` effects, ``rules``).
``unlearning`` (from :func:`whence.unlearn.forget_sources`'s result, a
:class:`~whence.unlearn.ComparisonReport`, or a :class:`~whence.unlearn.Certificate`)
    ``{"method", "n_forgotten", "figures": {name: number}, "detail": {...}}``.
``table`` (from a pandas DataFrame, such as a benchmark table)
    ``{"columns": [...], "rows": [[...], ...]}``.
any other kind
    A ``dict`` with a ``"kind"`` key, stored as it is (it must be JSON-serialisable).

Examples
--------
>>> import numpy as np
>>> from whence.attribution import Explanation
>>> kind, doc = to_result(Explanation(np.array([0.5, -2.0, 1.5], np.float32)), k=2)
>>> kind, [r["train_row"] for r in doc["test_rows"][0]["top"]]
('attribution', [2, 0])
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, is_dataclass

import numpy as np

__all__ = ["to_result", "encode_result", "RESULT_KINDS"]

RESULT_KINDS = ("attribution", "unlearning", "table")


def _plain(x):
    """JSON-ready values: numpy scalars and arrays to Python, NaN and infinities to None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else None
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if is_dataclass(x) and not isinstance(x, type):
        return _plain(asdict(x))
    if x is None or isinstance(x, (str, int, bool)):
        return x
    return str(x)


def _source_rows(ex, row):
    if ex.train is None:
        return []
    try:
        from ..tabular.trace import trace_to_file
        tr = trace_to_file(ex.train, row=int(row))
    except Exception:  # noqa: BLE001 - a training matrix whose rows do not come from tables: no file lines
        return []
    return [{"table": s.table, "row": int(s.row), "path": s.path, "line": None if s.line is None else int(s.line)}
            for s in tr]


def _attribution(explanations, k, model, train_object):
    if not explanations:
        raise ValueError("an attribution result needs at least one Explanation")
    test_rows = []
    relations = {}
    for pos, ex in enumerate(explanations):
        by_source = []
        if ex.train is not None:
            try:
                from ..attribution.sources import row_relation, scores_by_source
                rel = relations.get(id(ex.train))
                if rel is None:
                    rel = relations[id(ex.train)] = row_relation(ex.train)
                tables = scores_by_source(ex.train, ex.scores, rows=False, relation=rel)["tables"]
                by_source = [{"table": t, "score": float(v)} for t, v in tables.items()]
            except Exception:  # noqa: BLE001 - no table lineage: the bar chart is left out
                by_source = []
        entry = {
            "test_row": int(getattr(ex, "test_row", None) if getattr(ex, "test_row", None) is not None else pos),
            "label": _plain(getattr(ex, "target", None)),
            "output": ex.label,
            "prediction": _plain(ex.output),
            "top": [{"rank": r.rank, "train_row": r.row, "score": r.score, "sources": _source_rows(ex, r.row)}
                    for r in ex.top(k)],
            "bottom": [{"rank": r.rank, "train_row": r.row, "score": r.score, "sources": _source_rows(ex, r.row)}
                       for r in ex.bottom(k)],
            "by_source": by_source,
        }
        cf = getattr(ex, "_counterfactual", None)
        if cf is not None:  # Explanation.counterfactual() was asked: the effects of deleting source rows
            entry["counterfactual"] = cf.to_dict(k=k)
        test_rows.append(entry)
    first = explanations[0]
    return {"model": model or getattr(first, "model", None) or "", "n_train": int(first.scores.size),
            "train_object": train_object or "", "k": int(k), "test_rows": _plain(test_rows)}


def to_result(obj, *, k=10, model=None, train_object=None):
    """The ``(kind, document)`` stored for a result object (see the module for the kinds).

    Parameters
    ----------
    obj : Explanation, list of Explanation, ForgetSourcesResult, ComparisonReport, Certificate, DataFrame or dict
        The result.  A ``dict`` must carry its ``"kind"``.
    k : int, default 10
        For attributions: how many top and bottom training rows to keep (with their source rows).
    model, train_object : str, optional
        For attributions: the model's description and the name of the training matrix in the run.

    Returns
    -------
    (str, dict)

    Raises
    ------
    TypeError
        For an object of another type.
    """
    from ..attribution.explain import Explanation
    if isinstance(obj, Explanation):
        return "attribution", _attribution([obj], k, model, train_object)
    if isinstance(obj, (list, tuple)) and not obj:
        raise ValueError("an attribution result needs at least one Explanation (got an empty list)")
    if isinstance(obj, (list, tuple)) and all(isinstance(e, Explanation) for e in obj):
        return "attribution", _attribution(list(obj), k, model, train_object)
    name = type(obj).__name__
    if name == "ForgetSourcesResult":
        r = obj.report
        figures = {"training_rows_before": r["training_rows"]["before"],
                   "training_rows_after": r["training_rows"]["after"],
                   "training_rows_removed": r["training_rows"]["removed"],
                   "training_rows_changed": r["training_rows"]["changed"],
                   "source_rows_dropped": sum(r["source_rows_dropped"].values()),
                   "update_seconds": r["seconds"]["update"]}
        if "retrained" in r:
            figures["retrain_seconds"] = r["seconds"]["retrain"]
            figures["param_distance_to_retrained"] = r["retrained"]["param_distance"]
            figures["kl_retrained_vs_unlearned"] = r["retrained"]["test_kl_on_new_training_set"]
        cert = r.get("certificate") or getattr(obj.model, "certificate", None)
        if cert is not None:
            figures["gradient_residual_relative"] = cert.residual_relative
            figures["newton_steps"] = cert.steps
        detail = {k2: v for k2, v in r.items() if k2 != "certificate"}
        return "unlearning", _plain({"method": "forget_sources (Newton update through the lineage)",
                                     "n_forgotten": sum(r["source_rows_dropped"].values()),
                                     "figures": figures, "detail": detail})
    if name == "ComparisonReport":
        figures = {"param_distance_to_retrained": obj.param_distance, "kl_retrained_vs_unlearned": obj.test_kl}
        for part in ("test", "forget"):
            for metric, by_model in getattr(obj, part).items():
                for m, v in by_model.items():
                    figures[f"{part}_{metric}_{m}"] = v
        for kk, v in (obj.seconds or {}).items():
            figures[f"{kk}_seconds"] = v
        if obj.forget_gap_closed is not None:
            figures["forget_gap_closed"] = obj.forget_gap_closed
        return "unlearning", _plain({"method": "comparison with retraining", "n_forgotten": None,
                                     "figures": figures, "detail": asdict(obj)})
    if name == "Certificate":
        d = asdict(obj)
        return "unlearning", _plain({"method": obj.method, "n_forgotten": obj.removed,
                                     "figures": {k2: v for k2, v in d.items() if isinstance(v, (int, float))},
                                     "detail": d})
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is part of the store extra
        pd = None
    if pd is not None and isinstance(obj, pd.DataFrame):
        return "table", {"columns": [str(c) for c in obj.columns], "rows": _plain(obj.to_numpy().tolist())}
    if isinstance(obj, dict):
        if not isinstance(obj.get("kind"), str) or not obj["kind"]:
            raise TypeError("a result given as a dict needs a 'kind' string (and JSON-serialisable values)")
        doc = {k2: v for k2, v in obj.items() if k2 != "kind"}
        return obj["kind"], _plain(doc)
    raise TypeError(f"cannot store a result of type {name}: give an Explanation (or a list of them), a "
                    f"forget_sources result, a ComparisonReport, a Certificate, a DataFrame or a dict with a 'kind'")


def encode_result(name, obj):
    """``(name, kind, json text)`` for the ``results`` table (errors name the result)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a result name must be a non-empty string, got {name!r}")
    try:
        kind, doc = to_result(obj)
        text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise type(e)(f"result {name!r}: {e}") from None
    return name, kind, text
