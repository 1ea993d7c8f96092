"""The former name of :mod:`whence.unlearn.source_removal` (forgetting source rows through the ETL); kept so
that existing imports keep working."""

from .source_removal import ForgetSourcesResult, forget_sources  # noqa: F401

__all__ = ["forget_sources", "ForgetSourcesResult"]
