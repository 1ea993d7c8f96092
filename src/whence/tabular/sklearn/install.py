"""Installing the hooks: now for the scikit-learn modules already imported, or, through a finder on
``sys.meta_path``, right after each one is imported.
"""

from __future__ import annotations

import importlib.abc
import sys
import warnings

from .estimators import install_estimators
from .functions import patch_preprocessing, patch_split


_AFTER = {"sklearn.base": install_estimators, "sklearn.model_selection._split": patch_split,
          "sklearn.utils.metaestimators": patch_split, "sklearn.preprocessing": patch_preprocessing}


class _Loader:
    """Runs the real loader, then the hook (the spec keeps the real loader afterwards)."""

    def __init__(self, inner, name, finder):
        self._inner = inner
        self._name = name
        self._finder = finder

    def create_module(self, spec):
        create = getattr(self._inner, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        try:
            self._inner.exec_module(module)
        finally:
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self._inner
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self._inner
        self._finder.done(self._name, module)

    def __getattr__(self, attr):
        return getattr(self._inner, attr)


class _Finder(importlib.abc.MetaPathFinder):
    """Watches for scikit-learn modules and installs the hooks right after they are imported."""

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, fullname, self)
        return spec

    def done(self, name, module):
        self.names.discard(name)
        if not self.names:
            try:
                sys.meta_path.remove(self)
            except ValueError:
                pass
        try:
            _AFTER[name](module)
        except Exception as exc:  # pragma: no cover - never break importing scikit-learn
            warnings.warn(f"whence: could not install the scikit-learn lineage hooks: {exc}", RuntimeWarning)


_installed = False


def install():
    """Install the scikit-learn hooks now (scikit-learn already imported) or when it is imported."""
    global _installed
    if _installed:
        return
    _installed = True
    watch = []
    for name, fn in _AFTER.items():
        mod = sys.modules.get(name)
        if mod is not None:
            fn(mod)
        else:
            watch.append(name)
    if watch:
        sys.meta_path.insert(0, _Finder(watch))
