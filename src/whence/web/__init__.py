"""The lineage explorer: a local web app over a saved store (``whence serve STORE``).

Views: the operation graph (pan, zoom; click an operation for its inputs, outputs, map kind and
completeness), a grid of an object's cells (click a cell for its backward lineage in the sources and its
forward lineage in the objects downstream; click a row for its source file lines), and stored attribution
results per test row.  JSON endpoints live under ``/api`` and are described at ``/openapi.json``; see
``docs/explorer.md``.

Why FastAPI and uvicorn: a small, well-known stack (an optional extra, ``whence[web]``) whose request models
give the OpenAPI document for free, with a test client (httpx) that runs the app in-process.  The page is
plain hand-written HTML, CSS and JavaScript shipped in ``whence/web/static``: no build step, nothing fetched
from the network.  The server listens on loopback addresses only unless told otherwise.

>>> from whence.web import is_loopback
>>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
(True, False)
"""

from .server import LOOPBACK_NAMES, RemoteBindRefused, is_loopback, serve

__all__ = ["create_app", "serve", "is_loopback", "RemoteBindRefused", "LOOPBACK_NAMES"]


def create_app(store_path, *, allowed_hosts=None):
    """The explorer's FastAPI application over a store (see :func:`whence.web.app.create_app`).

    Examples
    --------
    >>> import os, tempfile, numpy as np, whence as wh
    >>> from fastapi.testclient import TestClient
    >>> wh.reset()
    >>> a = wh.track(np.ones((2, 2)), name="a")
    >>> path = os.path.join(tempfile.mkdtemp(), "s.duckdb")
    >>> _ = wh.save(path, "r", total=a.sum(axis=0))
    >>> TestClient(create_app(path)).get("/api/runs").json()[0]["run"]
    'r'
    """
    from .._extras import require
    require("the explorer", "web")
    from .app import create_app as _create
    return _create(store_path, allowed_hosts=allowed_hosts)
