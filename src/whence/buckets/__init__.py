"""The numpy function table, one module per bucket (see :mod:`whence.ops.registry`)."""

from . import registry, ufuncs  # noqa: F401
from . import index_maps, region_maps, selection, opaque  # noqa: F401
from . import numpy1  # noqa: F401  (numpy 1.x names, after the functions they delegate to)
from .registry import BUCKETS, BUCKET_NAMES, HANDLERS, bucket_of, implements  # noqa: F401
