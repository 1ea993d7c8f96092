"""A tracked input of an estimator call: its node, rows and columns, and (when its lineage is a table map) its
parts, so that the output's lineage is composed in one hop to the inputs' own inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...graph import Node
from ..frame import lineage_of
from ..relations import TableMap
from .base import FRAME_TYPES, pandas_untracked


def _ncols(node):
    return 1 if len(node.shape) < 2 else int(node.shape[1])


def _dcm(p, nidx, ncols):
    if getattr(p, "wide", False):
        return np.broadcast_to(p.cmat[0], (ncols, p.cmat.shape[1]))
    return p.cmat[nidx:]


def _icm(p, nidx):
    if getattr(p, "wide", False) or nidx == 0:
        return None
    return p.cmat[:nidx]


class TrackedInput:
    """A tracked input: its node, rows and columns, and (when its lineage is a table map) its parts, so that
    the output's lineage is composed in one hop to the inputs' own inputs."""

    __slots__ = ("node", "n", "ncols", "parts", "nidx", "reasons", "history", "frame", "names", "index")

    def __init__(self, X=None, node=None):
        self.frame = None
        self.names = None
        self.index = None
        self.parts = None
        self.nidx = 0
        self.reasons = ()
        self.history = ()
        if isinstance(X, FRAME_TYPES):
            lin = lineage_of(X)
            self.node = lin.node
            self.n = lin.n
            self.ncols = lin.ncols
            self.nidx = lin.nidx
            self.parts = [(p.node, p.rel, _dcm(p, lin.nidx, lin.ncols), p.control, _icm(p, lin.nidx))
                          for p in lin.parts]
            self.reasons = tuple(lin.reasons)
            self.history = (lin.node,)
            self.frame = X
            with pandas_untracked:
                self.index = X.index
                if isinstance(X, pd.DataFrame):
                    self.names = list(X.columns)
            return
        if node is None:
            node = X.node
        shape = node.shape
        if len(shape) > 2:
            flat = (shape[0], int(np.prod(shape[1:])))
            from ...maps import ViewMap
            node = Node("reshape", flat, ViewMap(flat, shape, "reshape"), (node,))
            shape = flat
        self.node = node
        self.n = shape[0] if shape else 1
        self.ncols = _ncols(node)
        m = node.map
        if type(m) is TableMap and len(shape) <= 2 and m.ncols == self.ncols:
            self.parts = [(p.node, p.rel, _dcm(p, m.nidx, m.ncols), p.control, None) for _, p in m.entries]
            self.reasons = (node.partial,) if node.partial else ()
            self.history = (node,)


def with_index_rows(cm, nidx, top=None):
    """The columns matrix ``cm`` with ``nidx`` index-level rows on top (``top``, or rows of False)."""
    if not nidx:
        return cm
    if top is None or top.shape[0] != nidx:
        top = np.zeros((nidx, cm.shape[1]), bool)
    return np.concatenate([top, cm], axis=0)
