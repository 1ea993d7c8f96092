"""Every numpy function that dispatches through __array_function__ sits in exactly one bucket."""

import warnings

import numpy as np
import pytest

import whence as wh
from whence.buckets.registry import BUCKET_NAMES, BUCKETS, HANDLERS, REGISTRATIONS


def _dispatched(module):
    out = {}
    for name in dir(module):
        if name.startswith("_"):
            continue
        f = getattr(module, name)
        if type(f).__name__ == "_ArrayFunctionDispatcher" or hasattr(f, "_implementation"):
            out[f"{module.__name__}.{name}"] = f
    return out


NAMESPACES = [np, np.linalg, np.fft]
ALL = {}
for _m in NAMESPACES:
    ALL.update(_dispatched(_m))


def test_namespaces_are_enumerated():
    assert len(ALL) > 250  # numpy 2.x: about 260 dispatched functions in these namespaces


@pytest.mark.parametrize("qualname", sorted(ALL))
def test_every_function_in_exactly_one_bucket(qualname):
    f = ALL[qualname]
    buckets = {b for g, b in REGISTRATIONS if g is f}
    assert buckets, f"{qualname} is in no bucket"
    assert len(buckets) == 1, f"{qualname} is in several buckets: {sorted(buckets)}"
    assert BUCKETS[f] in BUCKET_NAMES
    assert f in HANDLERS


def test_no_registration_of_unknown_objects():
    known = set(map(id, ALL.values()))
    extra = [getattr(f, "__name__", f) for f, _ in REGISTRATIONS if id(f) not in known]
    assert extra == []


def test_every_ufunc_records_elementwise_lineage():
    wh.reset()
    ufuncs = [getattr(np, n) for n in dir(np) if isinstance(getattr(np, n), np.ufunc)]
    assert len(ufuncs) > 60
    rng = np.random.default_rng(1)
    for uf in ufuncs:
        if uf.signature is not None:
            continue
        types = uf.types
        sig = next((t for t in types if set(t.split("->")[0]) <= set("d")), None) or \
            next((t for t in types if set(t.split("->")[0]) <= set("l")), None) or \
            next((t for t in types if set(t.split("->")[0]) <= set("?")), None)
        if sig is None:
            continue
        code = sig.split("->")[0][0]
        dtype = {"d": np.float64, "l": np.int64, "?": np.bool_}[code]
        args = []
        for k in range(uf.nin):
            v = (rng.random((3, 4)) * 3 + 0.5) if dtype is np.float64 else rng.integers(1, 4, (3, 4))
            args.append(wh.track(v.astype(dtype), name=f"{uf.__name__}{k}"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = uf(*args)
        for r in (res if isinstance(res, tuple) else (res,)):
            assert isinstance(r, wh.TrackedArray), uf.__name__
            got = wh.backward(r, (1, 2))
            assert sorted(got) == sorted(f"{uf.__name__}{k}" for k in range(uf.nin)), uf.__name__
            for k in range(uf.nin):
                assert got[f"{uf.__name__}{k}"].tolist() == [[1, 2]], uf.__name__
        wh.reset()
