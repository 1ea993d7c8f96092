"""The type check: mypy over the package with the configuration in pyproject.toml (``[tool.mypy]``), and the
``py.typed`` marker that tells type checkers the package carries annotations."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_py_typed_is_shipped():
    import whence
    assert (Path(whence.__file__).parent / "py.typed").is_file()


def test_mypy_passes(monkeypatch):
    """No type error in the package (the configuration's paths are relative to the repository root)."""
    api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(ROOT)
    cache = os.environ.get("MYPY_CACHE_DIR", str(ROOT / ".mypy_cache"))
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", cache])
    assert status == 0, out + err
    assert "Success" in out, out


def test_core_modules_are_checked_strictly():
    """The errors, graph and hooks modules are under mypy's strict checks, and the modules left out of the check
    are listed (each with its reason in pyproject.toml), not left out by a blanket switch."""
    tomllib = pytest.importorskip("tomllib")
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert not cfg.get("ignore_errors") and not cfg.get("ignore_missing_imports")
    strict = [o for o in cfg["overrides"] if o.get("disallow_untyped_defs")]
    assert strict and {"whence.errors", "whence.graph", "whence.hooks"} <= set(strict[0]["module"])
    assert strict[0].get("disallow_untyped_calls") and strict[0].get("warn_return_any")
    ignored = [m for o in cfg["overrides"] if o.get("ignore_errors") for m in o["module"]]
    assert all(m.startswith("whence.") and not m.endswith("*") for m in ignored), ignored
