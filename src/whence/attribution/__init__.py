"""Training-data attribution: which training rows raised or lowered a prediction, reported in source rows.

>>> from whence.attribution import Attributor, GradientStore, lds
>>> callable(lds)
True
"""

from .explain import Explanation, RankedRow, SourceScore
# the LDS harness needs only numpy; importing it here binds ``lds`` to the function for good (a later import of
# the submodule ``whence.attribution.lds`` finds it loaded and leaves the name alone)
from .lds import LDSResult, lds


def __getattr__(name):
    # the heavier parts load on first use
    if name == "Attributor":
        from .influence import Attributor
        return Attributor
    if name in ("Counterfactual", "SourceEffects", "SourceEffect", "GroupEffect", "CounterfactualError"):
        from . import counterfactual
        return getattr(counterfactual, name)
    if name == "GradientStore":
        from .gradient_store import GradientStore
        return GradientStore
    raise AttributeError(f"module 'whence.attribution' has no attribute {name!r}")


__all__ = ["Attributor", "GradientStore", "lds", "LDSResult", "Explanation", "RankedRow", "SourceScore",
           "Counterfactual", "SourceEffects", "SourceEffect", "GroupEffect", "CounterfactualError"]
