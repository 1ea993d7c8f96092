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
    assert len(ALL) > 240  # about 260 dispatched functions in these namespaces (numpy 1.26: 250, numpy 2.x: 260)


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


_NUMPY1 = [n for n in ("alltrue", "sometrue", "product", "cumproduct", "round_", "trapz", "msort", "in1d", "asfarray")
           if hasattr(np, n)]


@pytest.mark.skipif(not _NUMPY1, reason="numpy 2 has none of numpy 1.x's removed names")
@pytest.mark.parametrize("name", _NUMPY1)
def test_numpy1_names_have_the_lineage_of_what_they_compute(name):
    """Each numpy 1.x name gives the values and the lineage of the numpy 2 call it stands for (on random data)."""
    rng = np.random.default_rng(5)
    v = rng.random((4, 5)) * 3
    same = {"alltrue": lambda a: np.all(a > 1, axis=0), "sometrue": lambda a: np.any(a > 1, axis=1),
            "product": lambda a: np.prod(a, axis=1), "cumproduct": lambda a: np.cumprod(a, axis=0),
            "round_": lambda a: np.round(a, 1), "msort": lambda a: np.sort(a, axis=0),
            "in1d": lambda a: np.isin(a, a[1]).ravel(), "asfarray": lambda a: a.astype(np.float64)}
    old = {"alltrue": lambda a: np.alltrue(a > 1, axis=0), "sometrue": lambda a: np.sometrue(a > 1, axis=1),
           "product": lambda a: np.product(a, axis=1), "cumproduct": lambda a: np.cumproduct(a, axis=0),
           "round_": lambda a: np.round_(a, 1), "msort": lambda a: np.msort(a), "in1d": lambda a: np.in1d(a, a[1]),
           "asfarray": lambda a: np.asfarray(a), "trapz": lambda a: np.trapz(a, axis=1)}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 1.25+ warns about these names
        wh.reset()
        a = wh.track(v, name="a")
        got = old[name](a)

        np.testing.assert_array_equal(np.asarray(got), old[name](v))
        if name == "trapz":
            for i in range(got.shape[0]):  # a region map: each output cell from its whole row
                assert wh.backward(got, (i,))["a"].tolist() == [[i, j] for j in range(5)]
            return
        want = same[name](a)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        for idx in np.ndindex(got.shape):
            g, w = wh.backward(got, idx), wh.backward(want, idx)
            assert sorted(g) == sorted(w) and all(g[k].tolist() == w[k].tolist() for k in g)
            assert g.completeness == w.completeness
