"""scikit-learn keeps lineage: tracked data in, tracked predictions and features out.

When a tracked input (a :class:`whence.TrackedArray`, a :class:`~whence.tabular.TrackedFrame` or a
:class:`~whence.tabular.TrackedSeries`) is passed to ``fit``, ``transform``, ``fit_transform``, ``predict``,
``predict_proba``, ``predict_log_proba``, ``decision_function`` or ``score_samples`` of any scikit-learn
estimator, the output is tracked:

- an ndarray comes back as a :class:`whence.TrackedArray`, a DataFrame (``set_output(transform="pandas")``)
  as a :class:`~whence.tabular.TrackedFrame`; a scipy sparse output stays sparse and is registered
  (:func:`output_node`), so its lineage can be queried;
- output row ``i`` derives from input row ``i``;
- columns follow the fitted transformer: one-to-one for the scalers and the ordinal encoder, one block per
  input feature for the one-hot encoder, the kept columns (and indicator columns) for the simple imputer,
  ``powers_`` for polynomial features, the whole row for the normalizer and the projections, the selected
  columns for feature selectors, and the composition of the parts for ``ColumnTransformer``, ``FeatureUnion``
  and ``Pipeline`` (tracked data flows through a pipeline's steps; ``FunctionTransformer(validate=False)``
  runs ``func`` on the tracked data, so numpy tracking gives the exact lineage).  Any other transformer
  falls back to the whole input row, is marked PARTIAL and raises a
  :class:`~whence.errors.PartialLineageWarning` naming its class.  A prediction (``predict``,
  ``predict_proba``, ...) derives from its whole input row: that is the contract, and it is FULL;
- fitted statistics are *control* lineage: an estimator remembers (weakly) the node of the data it was fit
  on; a transformer's output column ``j`` control-depends on every row of the fit data's columns behind
  ``j``, a prediction on every cell of the fit data (and of ``y`` when ``y`` was tracked).  Queries follow
  them only with ``control=True``.

``train_test_split`` returns tracked splits with exact row lineage (tracked frames are split with ``iloc``).

The hooks are installed when :mod:`whence.tabular` is imported, whether scikit-learn was imported before or
is imported after: every class deriving from :class:`sklearn.base.BaseEstimator` (and the mixins in its
MRO) has those methods wrapped, and so has every class defined later.  A call with no tracked argument costs
one ``isinstance`` check.

The package holds one module per concern, and this module re-exports their names (callers import from
``whence.tabular.sklearn``):

- :mod:`~whence.tabular.sklearn.base`: what the modules share (the covered methods, the tracked types, the
  nesting counters, the call of a method on the untracked values of its arguments);
- :mod:`~whence.tabular.sklearn.columns`: the column maps of the fitted transformers;
- :mod:`~whence.tabular.sklearn.inputs`: a tracked input of a call;
- :mod:`~whence.tabular.sklearn.fits`: fitted statistics as control lineage;
- :mod:`~whence.tabular.sklearn.outputs`: the tracked outputs (and the registry of sparse ones);
- :mod:`~whence.tabular.sklearn.estimators`: the wrapping of the estimators' methods;
- :mod:`~whence.tabular.sklearn.functions`: ``train_test_split``, the preprocessing functions,
  ``label_binarize``;
- :mod:`~whence.tabular.sklearn.install`: installing the hooks now or when scikit-learn is imported.
"""

from __future__ import annotations

from ... import hooks as _hooks
from .base import (
    FRAME_TYPES, METHODS, TRACKED_TYPES, WRAPPED_MARK, call_on_untracked, defining_class, is_sklearn, untracked_value,
    warn_partial,
)
from .columns import ColumnMaps, maps_for, pipeline_maps, predictor_maps, transformer_maps
from .estimators import install_estimators
from .fits import control_parts, fit_entry, fitted_inputs, forget_fit, record_fit
from .functions import patch_preprocessing, patch_split
from .inputs import TrackedInput
from .install import install
from .outputs import emit_tracked, output_node, track_result

__all__ = ["install", "output_node", "METHODS"]

# the former private spellings of the names that tests read
_fits = fitted_inputs
_fit_entry = fit_entry

install()

# the query layer asks for the node of a model output whence could not wrap (see whence.hooks)
if output_node not in _hooks.NODE_RESOLVERS:
    _hooks.NODE_RESOLVERS.append(output_node)
