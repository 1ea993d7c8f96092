"""The numpy function table, one module per bucket (see :mod:`whence.buckets.registry`)."""

from . import registry, ufuncs  # noqa: F401
from . import index_maps, region_maps, selection, opaque  # noqa: F401
from . import numpy1  # noqa: F401  (numpy 1.x names, after the functions they delegate to)
from .registry import BUCKETS, BUCKET_NAMES, HANDLERS, bucket_of, implements  # noqa: F401

from .. import hooks as _hooks  # noqa: E402

# TrackedArray reaches the function table through whence.hooks (it sits in the layer below)
_hooks.ARRAY.update(reduce=region_maps.reduce_fast, ufunc=ufuncs.handle_ufunc, gufunc_labels=ufuncs.gufunc_labels,
                    dispatch=registry.dispatch)
