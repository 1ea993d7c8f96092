"""Serving the explorer: loopback only unless asked otherwise, on a socket bound before the server starts."""

import ipaddress
import socket
import sys
import threading
import time
from contextlib import contextmanager

__all__ = ["serve", "running", "is_loopback", "host_names", "RemoteBindRefused", "LOOPBACK_NAMES"]

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


class RemoteBindRefused(ValueError):
    """The explorer was asked to listen on an address other machines could reach, without permission."""


def is_loopback(host):
    """Whether ``host`` names this machine's loopback interface only.

    Examples
    --------
    >>> [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "192.168.1.5", "example.org")]
    [True, True, True, False, False, False]
    """
    h = str(host).strip().strip("[]")
    if h.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def host_names(host):
    """The ``Host`` header names the explorer answers to when it listens on loopback address ``host``.

    The loopback names (``127.0.0.1``, ``localhost``, ``[::1]``) and ``host`` itself, as written and in its
    canonical form (an IPv6 address in brackets, as a ``Host`` header carries it).

    Examples
    --------
    >>> host_names("127.0.0.2")
    ['127.0.0.1', 'localhost', '::1', '[::1]', '127.0.0.2']
    >>> host_names("0:0:0:0:0:0:0:1")[-2:]
    ['0:0:0:0:0:0:0:1', '[0:0:0:0:0:0:0:1]']
    """
    names = ["127.0.0.1", "localhost", "::1", "[::1]"]
    h = str(host).strip().strip("[]").lower()
    forms = [h]
    try:
        forms.append(str(ipaddress.ip_address(h)))
    except ValueError:
        pass
    for f in forms:
        for n in ((f, f"[{f}]") if ":" in f else (f,)):
            if n not in names:
                names.append(n)
    return names


def bind(host, port):
    """A listening TCP socket on ``host``:``port`` (port 0: any free port); OSError when it cannot bind."""
    h = str(host).strip().strip("[]")
    if h.lower() == "localhost":
        h = "127.0.0.1"
    family = socket.AF_INET6 if ":" in h else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((h, int(port)))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def url_of(sock, host):
    port = sock.getsockname()[1]
    h = str(host).strip().strip("[]")
    return f"http://[{h}]:{port}/" if ":" in h else f"http://{h}:{port}/"


def serve(store_path, host="127.0.0.1", port=8000, *, open_browser=False, allow_remote=False,
          log_level="warning", announce=True):
    """Serve the explorer over the store at ``store_path`` until interrupted (Ctrl-C).

    Parameters
    ----------
    store_path : str or path-like
        A store written by :func:`whence.save`.
    host : str, default "127.0.0.1"
        The address to listen on.  Only loopback addresses (``127.0.0.1``, ``::1``, ``localhost``) are
        accepted unless ``allow_remote``: the explorer has no authentication.
    port : int, default 8000
        0 picks a free port.
    open_browser : bool, default False
        Open the page in the default web browser once the server listens.
    allow_remote : bool, default False
        Allow any ``host`` (for example ``0.0.0.0``): whoever can reach it can read the store's lineage,
        file paths and results.
    log_level : str, default "warning"
        uvicorn's log level.
    announce : bool, default True
        Print the URL to stdout.

    Raises
    ------
    RemoteBindRefused
        ``host`` is not a loopback address and ``allow_remote`` is False.
    FileNotFoundError, whence.errors.StoreError
        The store is missing or unreadable.
    OSError
        The address cannot be bound (for example the port is in use).

    Examples
    --------
    >>> import whence.web
    >>> whence.web.serve("demo/run.duckdb", port=8765)  # doctest: +SKIP
    whence explorer on http://127.0.0.1:8765/ (Ctrl-C to stop)
    """
    if not allow_remote and not is_loopback(host):
        raise RemoteBindRefused(f"refusing to listen on {host!r}: the explorer has no authentication, so it "
                                f"only listens on loopback addresses ({', '.join(LOOPBACK_NAMES)}); pass "
                                f"allow_remote=True (--allow-remote) to listen on {host!r} anyway")
    from .._extras import require
    require("the explorer", "web")
    import uvicorn

    from .app import create_app
    hosts = None if allow_remote else host_names(host)
    app = create_app(store_path, allowed_hosts=hosts)
    app.state.timings.probe = True  # the event loop's lag, in /api/server/timings
    sock = bind(host, port)
    url = url_of(sock, host)
    if announce:
        print(f"whence explorer on {url} (Ctrl-C to stop)", flush=True)
    if open_browser:
        import webbrowser
        threading.Timer(0.8, webbrowser.open, [url]).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="off"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops on Ctrl-C, then raises the signal again
        pass
    finally:
        sock.close()
    if announce:
        print("whence explorer stopped", file=sys.stderr)
    return url


@contextmanager
def running(store_path, host="127.0.0.1", port=0):
    """Serve the explorer in a background thread for the duration of a ``with`` block; yields its URL.

    For scripts and tests that drive the page (screenshots, browser tests).  Loopback hosts only.

    Examples
    --------
    >>> from whence.web.server import running
    >>> with running("demo/run.duckdb") as url:  # doctest: +SKIP
    ...     print(url)
    http://127.0.0.1:40123/
    """
    if not is_loopback(host):
        raise RemoteBindRefused(f"running() listens on loopback addresses only, not {host!r}")
    from .._extras import require
    require("the explorer", "web")
    import uvicorn

    from .app import create_app
    app = create_app(store_path)
    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="whence-explorer", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the explorer's server did not start")
            time.sleep(0.02)
        yield url_of(sock, host)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
