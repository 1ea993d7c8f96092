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


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(doctest_optionflags=ELLIPSIS | NORMALIZE_WHITESPACE), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    setup=_setup,
    teardown=_teardown,
).pytest()
