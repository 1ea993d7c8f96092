"""Saves take turns: the store's write lock, and the clean-up a save does under it.

A save holds an exclusive lock (``flock``, through :mod:`filelock`) on ``<path>.lock`` while it copies the
store, commits its run into the copy and renames the copy over the store (see
:mod:`whence.store.duckdb_store`, "Concurrency guarantees").  Under the lock no other save runs, so what a killed
save left (its temporary copy, its Parquet array files) can be removed.
"""

from __future__ import annotations

import glob
import os
from contextlib import contextmanager
from pathlib import Path

from ..errors import StoreError, StoreLockedError

__all__ = ["lock_path", "write_lock", "remove_leftovers", "remove_orphan_arrays", "fsync_path"]


def lock_path(path):
    """The file whose lock a save holds: ``<path>.lock``."""
    return Path(str(path) + ".lock")


@contextmanager
def write_lock(path, timeout):
    """The store's write lock: an exclusive lock (``flock``) on ``<path>.lock``, held while saving."""
    import filelock
    lock = filelock.FileLock(str(lock_path(path)), timeout=-1 if timeout is None else float(timeout))
    try:
        lock.acquire()
    except filelock.Timeout:
        raise StoreLockedError(f"{str(path)!r} is being saved to by another process: its write lock "
                               f"({lock_path(path).name}) was not free within {timeout} s; try again, or "
                               f"pass a longer lock_timeout") from None
    except OSError as e:
        raise StoreError(f"cannot create the write lock {str(lock_path(path))!r} of {str(path)!r}: {e}") from e
    try:
        yield
    finally:
        lock.release()


def remove_leftovers(path):
    """Remove what a killed save left beside the store (its temporary file and log); called under the lock,
    when no other save can be running."""
    for f in path.parent.glob(f".{glob.escape(path.name)}.*.tmp*"):
        try:
            os.remove(f)
        except OSError:
            pass


def remove_orphan_arrays(array_dir, kept):
    """Remove the Parquet array files that no run of the store references (left by a killed save, or by a run
    that was overwritten); called under the lock."""
    if not array_dir.is_dir():
        return
    for f in array_dir.glob("*.parquet"):
        if f.name not in kept:
            try:
                os.remove(f)
            except OSError:
                pass


def fsync_path(p):
    """Flush a file (or a directory: a rename in it) to disk; quietly nothing where the system cannot."""
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
