"""Window lineage of scipy.ndimage filters, checked by perturbing one source cell at a time."""


import numpy as np
import pytest

import whence as wh
from whence import ndimage as wnd

ndi = pytest.importorskip("scipy.ndimage")


def perturbation_oracle(fn, x):
    """out cell -> set of input cells whose change changes it (exact for positive linear filters)."""
    base = fn(x)
    rel = {}
    for idx in np.ndindex(*x.shape):
        y = x.copy()
        y[idx] += 1000.0
        changed = np.argwhere(~np.isclose(fn(y), base, rtol=0, atol=1e-9))
        for c in changed:
            rel.setdefault(tuple(c), set()).add(idx)
    return rel


def lineage_relation(t, src_name):
    rel = {}
    for idx in np.ndindex(*t.shape):
        r = wh.backward(t, idx)
        if src_name in r:
            rel[idx] = {tuple(c) for c in r[src_name].tolist()}
    return rel


CASES = [
    ("uniform", dict(size=3)), ("uniform", dict(size=(2, 4), origin=(0, 1))), ("uniform", dict(size=3, mode="constant")),
    ("uniform", dict(size=4, mode="nearest", origin=-1)), ("gaussian", dict(sigma=0.7)),
    ("gaussian", dict(sigma=(1.0, 0.4), mode="mirror")), ("correlate", dict(origin=(-1, 1))),
    ("convolve", dict()), ("convolve", dict(origin=(0, -1), mode="constant")),
    ("uniform", dict(size=5, origin=2)), ("uniform", dict(size=(4, 5), origin=(-2, -2), mode="mirror")),
    ("uniform", dict(size=(9, 11), mode="reflect")), ("uniform", dict(size=(9, 11), mode="mirror")),
    ("uniform", dict(size=(3, 5), origin=(1, 2), mode="constant")),
]


@pytest.mark.parametrize("kind,kw", CASES)
def test_linear_filters_match_perturbation(kind, kw):
    wh.reset()
    rng = np.random.default_rng(3)
    x = rng.random((6, 7))
    w = rng.random((2, 3)) + 0.1
    plain = {
        "uniform": lambda v: ndi.uniform_filter(v, **kw),
        "gaussian": lambda v: ndi.gaussian_filter(v, **kw),
        "correlate": lambda v: ndi.correlate(v, w, **kw),
        "convolve": lambda v: ndi.convolve(v, w, **kw),
    }[kind]
    t = wh.track(x, name="x")
    tracked = {
        "uniform": lambda: wnd.uniform_filter(t, **kw),
        "gaussian": lambda: wnd.gaussian_filter(t, **kw),
        "correlate": lambda: wnd.correlate(t, w, **kw),
        "convolve": lambda: wnd.convolve(t, w, **kw),
    }[kind]()
    np.testing.assert_allclose(np.asarray(tracked), plain(x))
    assert lineage_relation(tracked, "x") == perturbation_oracle(plain, x)


@pytest.mark.parametrize("name", ["median_filter", "maximum_filter", "minimum_filter"])
def test_rank_filters_have_the_window_of_a_uniform_filter(name):
    wh.reset()
    x = np.random.default_rng(0).random((5, 6))
    t = wh.track(x, name="x")
    got = getattr(wnd, name)(t, size=(3, 2), origin=(0, -1))
    np.testing.assert_allclose(np.asarray(got), getattr(ndi, name)(x, size=(3, 2), origin=(0, -1)))
    ref = wnd.uniform_filter(t, size=(3, 2), origin=(0, -1))
    assert lineage_relation(got, "x") == lineage_relation(ref, "x")


def test_tracked_weights_and_partial_modes():
    wh.reset()
    t = wh.track(np.ones((4, 4)), name="x")
    w = wh.track(np.ones((3, 3)), name="w")
    r = wnd.correlate(t, w)
    assert len(wh.backward(r, (0, 0))["w"]) == 9
    with pytest.warns(wh.PartialLineageWarning, match="wrap"):
        wr = wnd.uniform_filter(t, size=3, mode="wrap")
    res = wh.backward(wr, (0, 0))
    assert not res.complete and len(res["x"]) == 16
    with pytest.warns(wh.PartialLineageWarning, match="footprint"):
        wnd.maximum_filter(t, footprint=np.array([[1, 0], [0, 1]], bool))
    with pytest.raises(ValueError, match="size or footprint"):
        wnd.median_filter(t)
