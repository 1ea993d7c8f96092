"""Read connections to a store file: one snapshot each, every DuckDB failure turned into a StoreError.

Store files are attached to one in-memory DuckDB database of the process (:func:`shared_instance`), each
under its own catalog name, rather than opened by path: DuckDB keeps one database per path within a process,
so a file replaced by a save would go on being read as it was.  :func:`connect_snapshot` attaches the file as
it is now, read-only; DuckDB keeps the file it attached open, so a save that renames a new file over it later
does not change what the connection reads.  :func:`file_identity` is what changes when a file is replaced.
"""

from __future__ import annotations

import itertools
import os
import threading
import weakref

from ..errors import StoreCorruptError, StoreLockedError
from .schema import duckdb_module, first_line, is_lock_message, open_error, sql_string

__all__ = ["Connection", "StatementResult", "connect_snapshot", "shared_instance", "catalog_alias", "file_identity"]


class StatementResult:
    """A DuckDB result whose fetches raise StoreErrors."""

    __slots__ = ("_res", "_con")

    def __init__(self, res, con):
        self._res, self._con = res, con

    def fetchone(self):
        return self._con._call(self._res.fetchone)

    def fetchall(self):
        return self._con._call(self._res.fetchall)

    def df(self):
        return self._con._call(self._res.df)


class Connection:
    """A read connection to one snapshot of a store: every DuckDB failure becomes a StoreError that says what
    happened (a damaged file, a lock held by another program)."""

    def __init__(self, raw, path, alias=None, owned=True):
        self.raw = raw
        self.path = path
        self.alias = alias
        # detached and closed when closed, or when nobody holds it any more (a store that moved on to a
        # newer file drops its old connection; a graph being read from it keeps it until done)
        self._finalizer = weakref.finalize(self, _release, raw, alias) if owned else None

    def _call(self, f, *args):
        duckdb = duckdb_module()
        try:
            return f(*args)
        except duckdb.Error as e:
            msg = first_line(e)
            if is_lock_message(msg.lower()):
                raise StoreLockedError(f"{str(self.path)!r} is held locked by another program ({msg})") from e
            if isinstance(e, (duckdb.CatalogException, duckdb.BinderException)):
                raise StoreCorruptError(f"{str(self.path)!r} lacks a table or column of the whence store "
                                        f"format ({msg}): the store is corrupted") from e
            raise StoreCorruptError(f"{str(self.path)!r} cannot be read: the store is corrupted ({msg})") from e

    def execute(self, query, params=None):
        return StatementResult(self._call(self.raw.execute, query, params or []), self)

    def register(self, name, table):
        return self._call(self.raw.register, name, table)

    def unregister(self, name):
        return self._call(self.raw.unregister, name)

    def close(self):
        if self._finalizer is not None:
            self._finalizer()


def _release(raw, alias):
    try:
        if alias is not None:
            raw.execute("USE memory")
            raw.execute(f"DETACH {alias}")
    except Exception:  # noqa: BLE001 - the instance may be gone (interpreter exit)
        pass
    finally:
        try:
            raw.close()
        except Exception:  # noqa: BLE001
            pass


def file_identity(path):
    """What changes when a store file is replaced or written: (device, inode, size, mtime); None if missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


_shared = {"pid": None, "db": None}
_shared_lock = threading.Lock()
_aliases = itertools.count()


def shared_instance():
    """The process's in-memory DuckDB database, to which store files are attached.

    Files are attached, not opened by path: DuckDB keeps one database per path within a process, so a file
    replaced by a save would go on being read as it was.  One instance for all (a new one costs ~20 ms);
    each store gets its own connection (a cursor) and its own catalog name.
    """
    duckdb = duckdb_module()
    if tuple(int(v) for v in duckdb.__version__.split(".")[:2]) < (1, 4):
        # DuckDB before 1.4: a USE on one cursor of an instance can change what another cursor's
        # current_database() is (seen with 1.2): one instance per store there, at ~20 ms an open
        return duckdb.connect()
    with _shared_lock:
        if _shared["db"] is None or _shared["pid"] != os.getpid():  # not across a fork
            _shared["db"], _shared["pid"] = duckdb_module().connect(), os.getpid()
        return _shared["db"]


def catalog_alias(prefix):
    """A catalog name for a file attached to the shared instance, unique in the process."""
    return f"whence_{prefix}{next(_aliases)}"


def connect_snapshot(path):
    """A read-only connection to the store file as it is now (a snapshot: a save that replaces the file
    later does not change what this connection reads; DuckDB keeps the file it attached open)."""
    duckdb = duckdb_module()
    raw = shared_instance().cursor()
    alias = catalog_alias("r")
    try:
        raw.execute(f"ATTACH '{sql_string(path)}' AS {alias} (READ_ONLY)")
        raw.execute(f"USE {alias}")
    except duckdb.Error as e:
        raw.close()
        raise open_error(path, e) from e
    except BaseException:
        raw.close()
        raise
    return Connection(raw, path, alias)
