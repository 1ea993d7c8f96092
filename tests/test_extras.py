"""Every optional part fails clearly when its extra is missing: the message names the extra to install, and
nothing is written first.  Each case runs in a fresh interpreter whose import system refuses the packages of
the extra (as if they were not installed)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import whence as wh

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = set(sys.argv[1].split(","))
    class _Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, _Absent())
""")


def _run(blocked, code, cwd):
    src = str(Path(wh.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "WHENCE_PROGRESS": "0"}
    env.pop("WHENCE_REQUIRE_BROWSER", None)  # the browser (playwright) is among what these runs take away
    # (the timeout guards against a hang; it is not a timing)
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), ",".join(blocked)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def _raises(blocked, statement, extra, tmp_path):
    code = f"""
        from whence._extras import MissingExtraError
        try:
            {statement}
        except MissingExtraError as e:
            print("MESSAGE", e)
        else:
            print("NO ERROR")
    """
    p = _run(blocked, code, tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "MESSAGE" in p.stdout, p.stdout
    assert f"pip install 'whence[{extra}]'" in p.stdout, p.stdout
    return p.stdout


@pytest.mark.parametrize("blocked, statement, extra", [
    (["pandas"], "import whence as wh; wh.read_csv('t.csv', name='t')", "pandas"),
    (["scipy"], "import whence.unlearn", "sklearn"),
    (["scipy"], "from whence.attribution import Attributor", "sklearn"),
    (["dask"], "import whence.dask", "dask"),
    (["torch"], "import whence.attribution.trak", "torch"),
    (["fastapi"], "import whence.web; whence.web.create_app('s.duckdb')", "web"),
    (["duckdb"], "import whence as wh, numpy as np; wh.save('s.duckdb', 'r', y=wh.track(np.ones(2), name='a') + 1)",
     "store"),
])
def test_a_missing_extra_is_named(blocked, statement, extra, tmp_path):
    out = _raises(blocked, statement, extra, tmp_path)
    assert f"missing: {blocked[0]}" in out
    if extra == "dask":
        assert "pandas" not in out  # dask is what is missing, not pandas
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_serve_without_the_web_extra_says_so(tmp_path):
    code = """
        import sys
        from whence.cli import main
        sys.exit(main(["serve", "nothing.duckdb"]))
    """
    p = _run(["fastapi", "uvicorn"], code, tmp_path)
    assert p.returncode == 1
    assert "pip install 'whence[web" in p.stderr and "Traceback" not in p.stderr


def test_demo_names_every_missing_extra_at_once_before_writing(tmp_path):
    code = """
        import sys
        from whence.cli import main
        sys.exit(main(["demo"]))
    """
    p = _run(["sklearn", "duckdb"], code, tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "'sklearn' and 'store' extras" in p.stderr and "whence[pandas,sklearn,store]" in p.stderr
    assert "missing: sklearn, duckdb" in p.stderr
    assert list(tmp_path.iterdir()) == []  # no demo/data written


def test_an_installed_package_that_fails_to_import_is_not_called_missing():
    from whence._extras import MissingExtraError, import_module
    # "json.nonexistent" fails although json is installed: the message says it is installed
    with pytest.raises(ImportError, match="installed but cannot be imported") as e:
        import_module("json.nonexistent", "the thing", "store")
    assert not isinstance(e.value, MissingExtraError)
    with pytest.raises(MissingExtraError, match=r"pip install 'whence\[store\]'"):
        import_module("no_such_package_here", "the thing", "store")


def test_the_suite_collects_without_torch_and_dask(tmp_path):
    """Collecting every test module and doctest with torch and dask absent: no import error (what needs them
    skips)."""
    root = Path(__file__).resolve().parents[1]
    code = f"""
        import sys, pytest
        sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--rootdir", {str(root)!r},
                              {str(root / 'src' / 'whence')!r}, {str(root / 'tests')!r}]))
    """
    p = _run(["torch", "dask", "distributed", "playwright"], code, tmp_path)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert "error" not in p.stdout.splitlines()[-1].lower(), p.stdout[-2000:]


def test_deprecations_in_whence_code_fail_the_suite():
    """pyproject's filterwarnings turns a DeprecationWarning / FutureWarning attributed to a whence module into an
    error (the warnings numpy, pandas and scikit-learn emit for a call whence makes), and leaves others alone."""
    import warnings
    ns = {"__name__": "whence.some_module"}
    exec("import warnings\ndef call(cat):\n    warnings.warn('going away', cat)\n", ns)
    for cat in (DeprecationWarning, FutureWarning):
        with pytest.raises(cat):
            ns["call"](cat)
    other = {"__name__": "someone_else"}
    exec("import warnings\ndef call(cat):\n    warnings.warn('going away', cat)\n", other)
    with warnings.catch_warnings(record=True):
        other["call"](FutureWarning)  # not whence's: a warning, not an error


def test_make_test_says_when_the_browser_tests_do_not_run(tmp_path):
    """Without Chromium the browser tests skip, and the run says so at its end (and in its header)."""
    root = Path(__file__).resolve().parents[1]
    src = str(Path(wh.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
           "WHENCE_CHROMIUM": str(tmp_path / "no-chromium-here"), "WHENCE_REQUIRE_BROWSER": ""}
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(root),
                        str(root / "tests" / "test_web_browser.py")], capture_output=True, text=True, env=env,
                       cwd=root, timeout=300)
    assert p.returncode in (0, 5), p.stdout[-2000:]  # 5: the module skipped whole, no test collected
    assert "browser tests skipped" in p.stdout and "do NOT run" in p.stdout


def test_licence_file_matches_the_declared_licence():
    """The LICENSE file (shipped in the wheel's .dist-info/licenses by hatchling) is the licence pyproject names."""
    root = Path(__file__).resolve().parents[1]
    text = (root / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License") and "Neither the name of the copyright holder" in text
    assert 'license = { text = "BSD-3-Clause" }' in (root / "pyproject.toml").read_text()
