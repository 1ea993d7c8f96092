"""Every Python block of README.md and docs/*.md runs as a test, in document order (Sybil).

Each document runs in a fresh temporary directory holding the small input files its examples name
(``data/...``), with one namespace shared by its blocks.  A block that prints shows its output as a
doctest (``>>>`` lines) and the output is checked.  A block that cannot run here (a cluster address,
a server that blocks) is preceded by a visible ``<!-- skip: next "reason" -->`` comment.
"""
from __future__ import annotations

import os
import tempfile
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser


def _example_files(root):
    """The small CSV files the documentation's examples read (``data/...``)."""
    import numpy as np

    data = os.path.join(root, "data")
    os.makedirs(data, exist_ok=True)
    rng = np.random.default_rng(0)
    regions = np.array(["north", "south", "east", "west"])
    next_id = 1
    for part in range(3):
        n = 200
        ids = np.arange(next_id, next_id + n)
        next_id += n
        with open(os.path.join(data, f"applications-{part}.csv"), "w") as f:
            f.write("id,income,region\n")
            for i, inc, reg in zip(ids, rng.integers(5_000, 60_000, n), rng.choice(regions, n)):
                f.write(f"{i},{inc},{reg}\n")
    with open(os.path.join(data, "bureau.csv"), "w") as f:
        f.write("id,debt\n")
        for i in rng.integers(1, next_id, 900):
            f.write(f"{i},{rng.integers(0, 20_000)}\n")


def _setup(namespace):
    tmp = tempfile.TemporaryDirectory(prefix="whence-docs-")
    namespace["_docs_tmp"] = tmp
    namespace["_docs_cwd"] = os.getcwd()
    namespace["_missing"] = lambda *modules: bool(_absent(modules))  # for <!-- skip: next if(...) -->
    _example_files(tmp.name)
    os.chdir(tmp.name)


def _teardown(namespace):
    os.chdir(namespace["_docs_cwd"])
    client = namespace.get("client")
    if client is not None and hasattr(client, "close"):
        client.close()
    import whence as wh
    wh.reset()
    namespace["_docs_tmp"].cleanup()


# modules whose doctests need an optional extra: not collected when its packages are missing (the header of the
# test run lists them); their tests skip by themselves
_OPTIONAL = {
    "src/whence/attribution/trak.py": ("torch",),
    "src/whence/dask": ("dask", "distributed"),
    "src/whence/web/app.py": ("fastapi", "uvicorn"),
    "src/whence/attribution/influence.py": ("sklearn", "scipy"),
    "src/whence/unlearn": ("sklearn", "scipy"),
}
_ROOT = os.path.dirname(os.path.abspath(__file__))


def _absent(modules):
    import importlib.util
    out = []
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                out.append(m)
        except (ImportError, ValueError):
            out.append(m)
    return out


_SKIPPED = {path: _absent(mods) for path, mods in _OPTIONAL.items()}
_SKIPPED = {path: absent for path, absent in _SKIPPED.items() if absent}


def pytest_ignore_collect(collection_path, config):
    rel = os.path.relpath(str(collection_path), _ROOT).replace(os.sep, "/")
    if any(rel == p or rel.startswith(p + "/") for p in _SKIPPED):
        return True
    return None


_CHROMIUM = os.environ.get("WHENCE_CHROMIUM", "/usr/bin/chromium")


def _browser_note():
    if os.path.exists(_CHROMIUM):
        return None
    return (f"the explorer's browser tests do NOT run: no Chromium at {_CHROMIUM} (apt-get install chromium; "
            f".ci/run installs it, and WHENCE_REQUIRE_BROWSER=1 turns their skip into a failure)")


def pytest_report_header(config):
    lines = []
    if _SKIPPED:
        lines.append("optional packages missing, doctests not collected: " + "; ".join(
            f"{p} (needs {', '.join(a)})" for p, a in sorted(_SKIPPED.items())))
    if _browser_note():
        lines.append("NOTE: " + _browser_note())
    return lines or None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    # said again at the end, where it is seen: a skipped browser suite is not a passed one
    skipped = terminalreporter.stats.get("skipped", [])
    note = _browser_note()
    if note and any("Chromium" in str(getattr(r, "longrepr", "")) for r in skipped):
        terminalreporter.write_sep("=", "browser tests skipped", yellow=True, bold=True)
        terminalreporter.write_line(note)


# documents that are about one optional part
_DOC_NEEDS = {"docs/dask.md": ("dask", "distributed"), "docs/explorer.md": ("fastapi", "uvicorn", "httpx")}

pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(doctest_optionflags=ELLIPSIS | NORMALIZE_WHITESPACE), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    excludes=[doc for doc, mods in _DOC_NEEDS.items() if _absent(mods)],
    setup=_setup,
    teardown=_teardown,
).pytest()
