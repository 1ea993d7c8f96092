"""Training-data attribution: which training rows raised or lowered a prediction, reported in source rows.

>>> from whence.attribution import Attributor, GradientStore, lds
"""

from .explain import Explanation, RankedRow, SourceScore


def __getattr__(name):
    # the heavier parts load on first use
    if name in ("Attributor",):
        from .influence import Attributor
        return Attributor
    if name == "GradientStore":
        from .gradient_store import GradientStore
        return GradientStore
    if name in ("lds", "LDSResult"):
        import importlib
        mod = importlib.import_module(".lds", __name__)
        # the submodule import bound the package attribute ``lds`` to the module: the function wins
        globals()["lds"], globals()["LDSResult"] = mod.lds, mod.LDSResult
        return globals()[name]
    raise AttributeError(f"module 'whence.attribution' has no attribute {name!r}")


__all__ = ["Attributor", "GradientStore", "lds", "LDSResult", "Explanation", "RankedRow", "SourceScore"]
