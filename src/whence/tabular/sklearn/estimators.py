"""Estimator wrapping: the covered methods of every scikit-learn estimator class (and of every class defined later)
run on the untracked data and return tracked outputs; pipelines, ``FunctionTransformer(validate=False)`` and the
user's own transformers let the tracked data flow through their steps, so that numpy and pandas tracking record
the exact lineage.
"""

from __future__ import annotations

import functools
import sys
import types
import warnings
import weakref

import numpy as np
import pandas as pd

from ...tracked import TrackedArray
from .base import (
    FRAME_TYPES, METHODS, TRACKED_TYPES, WRAPPED_MARK, call_on_untracked, calls, defining_class, is_sklearn,
    nesting, pandas_untracked, warn_partial,
)
from .columns import ColumnMaps, all_columns, maps_for, pipeline_maps, predictor_maps
from .fits import control_parts, fit_entry, fitted_inputs, forget_fit, record_fit
from .inputs import TrackedInput
from .outputs import data_parts, emit_tracked, is_tracked_output, output_shape, result_node, track_result


def _op(est, name):
    return f"{type(est).__name__}.{name}"


def _user_code(est, name):
    """True when ``name`` of ``est`` runs the user's own code (a transformer class written outside
    scikit-learn): ``fit_transform`` counts when the user wrote ``fit`` and ``transform``."""
    tp = type(est)
    if is_sklearn(tp):
        return False
    d = defining_class(tp, name)
    if d is not None and not is_sklearn(d) and d.__module__ != "builtins":
        return True
    if name == "fit_transform":
        return all(defining_class(tp, m) is not None and not is_sklearn(defining_class(tp, m))
                   for m in ("fit", "transform"))
    return False


def _flow(cls, est, name):
    if is_sklearn(cls, "Pipeline"):
        return "pipeline"
    if _user_code(est, name):
        return "user"  # the user's own fit/transform run on the tracked data: numpy and pandas tracking record
    if name == "fit_transform" and is_sklearn(cls, "TransformerMixin"):
        return "mixin"  # fit then transform: the tracked data flows into both (their own wrappers record)
    if is_sklearn(cls, "FunctionTransformer") and name == "transform" and not getattr(est, "validate", True):
        return "function"
    return None


def _run(cls, name, fn, est, args, kwargs, X, y):
    if nesting("depth"):
        # inside a call whence already covers, with plain data: no second record
        return call_on_untracked(fn, est, args, kwargs)
    flow = _flow(cls, est, name)
    fitting = name in ("fit", "fit_transform")
    predict = name not in ("fit", "transform", "fit_transform")
    flowed = False
    if flow == "pipeline":
        calls.flow = nesting("flow") + 1
        try:
            res = fn(est, *args, **kwargs)
        finally:
            calls.flow -= 1
    elif flow == "mixin":
        res = fn(est, *args, **kwargs)
        flowed = True
    elif flow in ("function", "user"):
        try:
            res = fn(est, *args, **kwargs)
            flowed = True
        except Exception:
            res = call_on_untracked(fn, est, args, kwargs)  # the user's own error is raised here, unchanged
    else:
        res = call_on_untracked(fn, est, args, kwargs)
    if fitting:
        record_fit(est, args, kwargs, X, y)
    if name == "fit" or not isinstance(X, TRACKED_TYPES):
        return res
    if flow == "pipeline":
        return _pipeline_output(est, name, res, X, predict)
    if flowed and is_tracked_output(res):
        return res
    op = _op(est, name)
    inp = TrackedInput(X)
    n_in = inp.ncols
    if predict:
        return track_result(est, res, inp, lambda k: predictor_maps(k, n_in), op, True)
    key = cls
    if name == "fit_transform" and is_sklearn(cls):
        key = defining_class(type(est), "transform") or cls
    if flow == "function":
        reason = "FunctionTransformer: func did not keep lineage on tracked data"
        return track_result(est, res, inp, lambda k: ColumnMaps(all_columns(k, n_in), None, None, [reason]), op, False)
    return track_result(est, res, inp, lambda k: maps_for(key, est, n_in, k, inp.names), op, False)


def _pipeline_output(pipe, name, res, X, predict):
    """The result of a pipeline whose steps saw the tracked data: add the control of the pipeline's fit."""
    inp = TrackedInput(X)
    op = _op(pipe, name)

    def control_maps(k):
        try:
            return pipeline_maps(pipe, inp.ncols, k, inp.names, False, predict)
        except Exception:
            return predictor_maps(k, inp.ncols)

    tracked = is_tracked_output(res) or (isinstance(res, (tuple, list)) and
                                          any(is_tracked_output(v) for v in res))
    if not tracked:
        # a step dropped the lineage: fall back to the whole row (a prediction's contract, else PARTIAL)
        reasons = []
        if not predict:
            warn_partial(f"{type(pipe).__name__} (a step did not keep lineage)")
            reasons.append(f"{type(pipe).__name__}: a step did not keep lineage; each output cell is taken to "
                           f"derive from the whole input row")

        def maps_fn(k):
            c = control_maps(k)
            return ColumnMaps(all_columns(k, inp.ncols), c.C, c.Y, reasons)

        return track_result(pipe, res, inp, maps_fn, op, predict)
    if nesting("flow") or fit_entry(pipe) is None:
        return res
    return _add_control(pipe, res, inp, control_maps, op)


def _add_control(est, res, inp, control_maps, op):
    if isinstance(res, (tuple, list)):
        items = [(_add_control(est, v, inp, control_maps, op) if is_tracked_output(v) else v) for v in res]
        if isinstance(res, list):
            return items
        return type(res)._make(items) if hasattr(type(res), "_make") else type(res)(items)
    info = output_shape(res._data if isinstance(res, TrackedArray) else res)
    if info is None:
        return res
    n_out, k, nidx, _ = info
    cparts = control_parts(est, control_maps(k), n_out, k, nidx, inp.names)
    if not cparts:
        return res
    own = TrackedInput(res) if isinstance(res, FRAME_TYPES) else TrackedInput(node=result_node(res))
    parts = data_parts(own, np.eye(k, dtype=bool), n_out, nidx, True) + cparts
    data = res._data if isinstance(res, TrackedArray) else res
    if isinstance(data, (pd.DataFrame, pd.Series)):
        with pandas_untracked:
            data = pd.DataFrame(data) if isinstance(data, pd.DataFrame) else pd.Series(data)
    return emit_tracked(data, own, parts, list(own.reasons), op, info)


# --------------------------------------------------------------------------------------------- patching

def _make_wrapper(cls, name, fn):
    if name in ("fit", "fit_transform"):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            if args:
                X = args[0]
                y = args[1] if len(args) > 1 else kwargs.get("y")
            else:
                X = kwargs.get("X")
                y = kwargs.get("y")
            if not isinstance(X, TRACKED_TYPES) and not isinstance(y, TRACKED_TYPES):
                if fitted_inputs:
                    forget_fit(self)
                return fn(self, *args, **kwargs)
            return _run(cls, name, fn, self, args, kwargs, X, y)
    else:
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            X = args[0] if args else kwargs.get("X")
            if not isinstance(X, TRACKED_TYPES):
                return fn(self, *args, **kwargs)
            return _run(cls, name, fn, self, args, kwargs, X, None)
    setattr(wrapper, WRAPPED_MARK, True)
    return wrapper


_patched: weakref.WeakSet = weakref.WeakSet()


def _patch_own(cls):
    """Wrap the covered methods defined in ``cls.__dict__`` (functions and ``available_if`` descriptors)."""
    d = cls.__dict__
    for name in METHODS:
        attr = d.get(name)
        if attr is None:
            continue
        if isinstance(attr, types.FunctionType):
            if not getattr(attr, WRAPPED_MARK, False):
                setattr(cls, name, _make_wrapper(cls, name, attr))
        elif hasattr(attr, "fn") and hasattr(attr, "check") and callable(attr.fn):
            # sklearn.utils._available_if._AvailableIfDescriptor: keep the descriptor (hasattr semantics)
            if not getattr(attr.fn, WRAPPED_MARK, False):
                attr.fn = _make_wrapper(cls, name, attr.fn)


def _patch_mro(cls):
    for b in cls.__mro__:
        if b is object or b.__module__ == "builtins" or b in _patched:
            continue
        try:
            _patch_own(b)
            _patched.add(b)
        except TypeError:  # a class whose attributes cannot be set
            pass


def _all_subclasses(root):
    seen, stack, out = set(), [root], []
    while stack:
        c = stack.pop()
        try:
            subs = c.__subclasses__()
        except TypeError:
            subs = type.__subclasses__(c)
        for s in subs:
            if s not in seen:
                seen.add(s)
                out.append(s)
                stack.append(s)
    return out


def _hook_init_subclass(klass, base_estimator):
    """Wrap ``klass.__init_subclass__`` (keeping the existing one) so that new estimator classes get patched
    once every ``__init_subclass__`` of the chain has run (``set_output`` wraps ``transform`` in one)."""
    existing = klass.__dict__.get("__init_subclass__")
    func = getattr(existing, "__func__", None)
    if func is not None and getattr(func, WRAPPED_MARK, False):
        return

    def __init_subclass__(cls, **kwargs):
        calls.hook = nesting("hook") + 1
        try:
            if func is not None:
                func(cls, **kwargs)
            else:
                super(klass, cls).__init_subclass__(**kwargs)
        finally:
            calls.hook -= 1
        if not calls.hook and issubclass(cls, base_estimator):
            try:
                _patch_mro(cls)
            except Exception as exc:  # pragma: no cover - never break a class definition
                warnings.warn(f"whence: could not add lineage to {cls.__name__}: {exc}", RuntimeWarning)

    if func is not None:
        functools.update_wrapper(__init_subclass__, func)
    setattr(__init_subclass__, WRAPPED_MARK, True)
    klass.__init_subclass__ = classmethod(__init_subclass__)


def install_estimators(base_mod):
    """Wrap the covered methods of every estimator class of ``sklearn.base`` (``base_mod``) and of every class
    defined later."""
    BE = base_mod.BaseEstimator
    _hook_init_subclass(BE, BE)
    so = sys.modules.get("sklearn.utils._set_output")
    mixin = getattr(so, "_SetOutputMixin", None) if so is not None else None
    if mixin is not None:
        _hook_init_subclass(mixin, BE)
    for c in _all_subclasses(BE):
        _patch_mro(c)
