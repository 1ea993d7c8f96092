"""Exceptions and warnings raised by whence."""

__all__ = [
    "WhenceError",
    "NotTrackedError",
    "SourceNameError",
    "LineageQueryError",
    "PartialLineageWarning",
    "LineageLostWarning",
    "ConstantValueWarning",
    "StoreError",
    "StoreVersionError",
    "StoreKeyError",
    "StoreCorruptError",
    "StoreLockedError",
    "NotAStoreError",
    "StoreArrayMissingError",
    "StoreStaleError",
    "UnsupportedModelError",
]


class WhenceError(Exception):
    """Base class of every error raised by whence."""


class NotTrackedError(WhenceError, TypeError):
    """A lineage query was asked about an object that carries no lineage."""


class SourceNameError(WhenceError, ValueError):
    """A source name is invalid or already in use."""


class LineageQueryError(WhenceError, IndexError):
    """A query named cells that do not exist (index out of range, wrong mask shape)."""


class PartialLineageWarning(UserWarning):
    """An operation's exact lineage is unknown; its result falls back to all-to-all and is PARTIAL."""


class LineageLostWarning(UserWarning):
    """Tracked values were written into a plain (untracked) array, so their lineage stops there."""


class ConstantValueWarning(UserWarning):
    """A value computed outside tracked objects (a plain array, a list, an untracked Series or Index) was written
    into a tracked frame: by the contract its cells are constants with no lineage.  The lineage answers stay
    exact (FULL); the warning says that a lineage may have been lost by mistake.  Silence it for a deliberate
    constant with :func:`whence.constant`."""


class StoreError(WhenceError):
    """A lineage store cannot be written or read: not a whence store, truncated or corrupted, locked by a
    writer, or a run or object that is not there."""


class StoreVersionError(StoreError):
    """A lineage store was written with a schema version this whence cannot read."""


class StoreKeyError(StoreError, KeyError):
    """A run, object or source that the store does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StoreCorruptError(StoreError):
    """A lineage store whose file (or one of its array files) is truncated or damaged."""


class NotAStoreError(StoreError):
    """A file that is not a whence lineage store (not a DuckDB database, or a DuckDB database of something
    else)."""


class StoreLockedError(StoreError):
    """A lineage store whose write lock was not obtained within the time allowed (another process was saving
    to it all along), or whose file another program holds locked."""


class StoreArrayMissingError(StoreError):
    """An index array that a run references is not there: its Parquet file beside the store is gone."""


class StoreStaleError(StoreError):
    """A run was overwritten or deleted after it was opened: open the store again to read the new one."""


class UnsupportedModelError(WhenceError, TypeError):
    """The model is not one whence can attribute or unlearn exactly (or is not fitted, or not usable as given)."""
