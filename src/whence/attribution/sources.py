"""The former name of :mod:`whence.attribution.source_scores` (scores of training rows carried back to source
rows); kept so that existing imports keep working."""

from .source_scores import SourceScore, row_relation, scores_by_source  # noqa: F401

__all__ = ["row_relation", "scores_by_source", "SourceScore"]
