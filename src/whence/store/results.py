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

Each results class encodes itself where it is defined: :func:`whence.attribution.explain.attribution_document`
for explanations, and the method ``result_document()`` (returning ``(kind, document)``) of the unlearning
results (:class:`~whence.unlearn.source_removal.ForgetSourcesResult`, :class:`~whence.unlearn.ComparisonReport`,
:class:`~whence.unlearn.Certificate`); a new results class defines ``result_document()`` to be storable.

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
from ..attribution.explain import json_ready

__all__ = ["to_result", "encode_result", "RESULT_KINDS"]

RESULT_KINDS = ("attribution", "unlearning", "table")


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
    from ..attribution.explain import Explanation, attribution_document
    if isinstance(obj, Explanation):
        return "attribution", attribution_document([obj], k, model, train_object)
    if isinstance(obj, (list, tuple)) and not obj:
        raise ValueError("an attribution result needs at least one Explanation (got an empty list)")
    if isinstance(obj, (list, tuple)) and all(isinstance(e, Explanation) for e in obj):
        return "attribution", attribution_document(list(obj), k, model, train_object)
    name = type(obj).__name__
    document = getattr(type(obj), "result_document", None)
    if document is not None:  # a results object that encodes itself (the unlearning results)
        return document(obj)
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is part of the store extra
        pd = None
    if pd is not None and isinstance(obj, pd.DataFrame):
        return "table", {"columns": [str(c) for c in obj.columns], "rows": json_ready(obj.to_numpy().tolist())}
    if isinstance(obj, dict):
        if not isinstance(obj.get("kind"), str) or not obj["kind"]:
            raise TypeError("a result given as a dict needs a 'kind' string (and JSON-serialisable values)")
        doc = {k2: v for k2, v in obj.items() if k2 != "kind"}
        return obj["kind"], json_ready(doc)
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


#: the former name of :func:`whence.attribution.explain.json_ready`
_plain = json_ready
