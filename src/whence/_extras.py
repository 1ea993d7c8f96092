"""The optional parts of whence and the extras that install them.

Each optional part checks its extra when it is first imported, before it reads or writes anything, and a
missing package raises :class:`MissingExtraError` (an ``ImportError``) naming the extra to install.

>>> from whence._extras import EXTRAS, missing
>>> EXTRAS["store"]
('duckdb', 'pyarrow')
>>> missing("no_such_module_here")
['no_such_module_here']
"""
from __future__ import annotations

import importlib
import importlib.util

#: The import names of the packages each extra of ``pyproject.toml`` installs.
EXTRAS = {
    "pandas": ("pandas", "pyarrow"),
    "sklearn": ("sklearn", "scipy"),
    "store": ("duckdb", "pyarrow"),
    "torch": ("torch",),
    "web": ("fastapi", "uvicorn"),
    "dask": ("dask", "distributed", "pandas", "pyarrow"),
}


class MissingExtraError(ImportError):
    """An optional part of whence was used without the extra that installs its packages."""


def missing(*modules):
    """The modules among ``modules`` that are not installed (found without importing them)."""
    out = []
    for m in modules:
        try:
            found = importlib.util.find_spec(m) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(m)
    return out


def _message(what, extras, absent):
    names = ",".join(extras)
    return (f"{what} needs the {' and '.join(repr(e) for e in extras)} extra{'s' if len(extras) > 1 else ''} "
            f"(missing: {', '.join(absent)}): pip install 'whence[{names}]'")


def require(what, *extras, modules=None):
    """Raise :class:`MissingExtraError` when a package of ``extras`` (or only ``modules``) is not installed.

    Parameters
    ----------
    what : str
        The part of whence that needs them, for the message ("whence.read_csv", "whence serve", ...).
    *extras : str
        Names of extras in :data:`EXTRAS`.
    modules : sequence of str, optional
        The import names to check (default: every package of the extras).

    Examples
    --------
    >>> require("whence.track", modules=["numpy"])
    >>> try:
    ...     require("the thing", "web", modules=["no_such_module_here"])
    ... except MissingExtraError as e:
    ...     print(e)
    the thing needs the 'web' extra (missing: no_such_module_here): pip install 'whence[web]'
    """
    if modules is None:
        modules = [m for e in extras for m in EXTRAS[e]]
    absent = missing(*dict.fromkeys(modules))
    if absent:
        raise MissingExtraError(_message(what, extras, absent))


def import_module(name, what, extra):
    """Import ``name``; a missing package names the extra, an installed one that fails to import says so.

    >>> import_module("math", "whence", "store").__name__
    'math'
    """
    try:
        return importlib.import_module(name)
    except ImportError as e:
        top = name.split(".")[0]
        if missing(top):
            raise MissingExtraError(_message(what, (extra,), [top])) from e
        # installed, but it refuses to load (for example a pyarrow built for numpy 2 under numpy 1.x)
        raise ImportError(f"{what} needs {top}, which is installed but cannot be imported here: {e}") from e
