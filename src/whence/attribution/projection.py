"""Random projections that compress per-sample gradients from ``d`` parameters to ``k`` dimensions.

TRAK-style attribution keeps one ``k``-dimensional sketch ``P g`` of each per-sample gradient ``g`` (``d`` up to
~1e8 parameters).  A dense ``k x d`` projection matrix would take ``4 k d`` bytes (k = 4096, d = 1e7: 164 GB), so
neither class here ever builds one:

``SJLTProjection``
    A sparse Johnson-Lindenstrauss transform (the CountSketch generalisation of Kane and Nelson): input coordinate
    ``j`` is sent to ``s`` output coordinates, one in each of ``s`` contiguous blocks of the output, with random
    signs ``+-1/sqrt(s)``.  It keeps its ``d x s`` nonzeros (int32 output rows, float32 values): O(d s) memory,
    O(n d s) time.
``RademacherProjection``
    The dense ``+-1/sqrt(k)`` matrix, generated ``block`` input coordinates at a time from a counter-based
    generator (numpy's ``Philox``, counter = row of the matrix), used once and dropped: O(block k) memory, O(n d k)
    time.  Row ``j`` of the matrix depends on ``seed`` and ``j`` only, never on ``block``.

Both map an ``(n, d)`` numpy array or torch tensor (or one ``(d,)`` vector) to ``(n, k)`` float32 in the same
library, are deterministic given ``seed`` (numpy and torch inputs give the same result up to float rounding), keep
inner products in expectation (``E <P x, P y> = <x, y>``) and report the memory they hold in ``nbytes``.

Examples
--------
>>> import numpy as np
>>> G = np.random.default_rng(0).standard_normal((3, 10_000)).astype(np.float32)
>>> P = SJLTProjection(d=10_000, k=512, seed=0)
>>> Z = P.project(G)
>>> Z.shape, Z.dtype
((3, 512), dtype('float32'))
>>> bool(abs(np.linalg.norm(Z[0]) / np.linalg.norm(G[0]) - 1) < 0.2)
True
>>> np.array_equal(Z, SJLTProjection(10_000, 512, seed=0).project(G))
True
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["RademacherProjection", "SJLTProjection"]

_SJLT_SALT = 0x534A4C54     # "SJLT": keeps the two classes' streams apart for the same seed
_RADEMACHER_SALT = 0x52414445
_GEN_CHUNK = 1 << 20        # coordinates generated at a time when building an SJLT
_CAST_BYTES = 1 << 28       # float32 working copy of the input per step (256 MiB)


def _check_int(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v}")
    return int(v)


def _check_seed(seed):
    seed = _check_int("seed", seed, lo=0)
    if seed >= 2**64:
        raise ValueError("seed must be < 2**64")
    return seed


def _is_torch(x):
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


_SPARSE = None


def _scipy_sparse():
    """``scipy.sparse`` if importable (the fast numpy path of SJLT), else ``False``."""
    global _SPARSE
    if _SPARSE is None:
        try:
            import scipy.sparse as sp
            _SPARSE = sp
        except ImportError:  # pragma: no cover - scipy is in the sklearn extra
            _SPARSE = False
    return _SPARSE


class _Projection:
    """What both projections share: input checks and the numpy / torch dispatch."""

    d: int
    k: int
    seed: int

    def __call__(self, G, **kw):
        return self.project(G, **kw)

    def _check_input(self, G):
        shape = tuple(G.shape)
        if len(shape) not in (1, 2) or shape[-1] != self.d:
            raise ValueError(f"{type(self).__name__}: expected an array of shape (n, {self.d}) or ({self.d},), "
                             f"got {shape}")
        if _is_torch(G):
            if G.is_complex() or not G.is_floating_point():
                raise TypeError(f"{type(self).__name__}: expected a floating-point tensor, got {G.dtype}")
        else:
            if np.asarray(G[:0]).dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}: expected a floating-point array, got "
                                f"{np.asarray(G[:0]).dtype}")
        return len(shape) == 1

    def project(self, G, *, backend="auto"):
        """Project the rows of ``G``.

        Parameters
        ----------
        G : numpy.ndarray or torch.Tensor, shape (n, d) or (d,)
            Floating point (float16/32/64; bfloat16 for torch); computed in float32.
        backend : {"auto", "numpy", "torch"}
            ``auto``: numpy arrays use numpy; CPU tensors use the numpy kernels on a zero-copy view (faster on
            CPU) and come back as tensors; tensors on another device are projected there with torch.
            ``torch`` forces the torch kernels for a tensor (``numpy`` forces the numpy ones).

        Returns
        -------
        numpy.ndarray or torch.Tensor, shape (n, k) or (k,), float32
            The same library (and device) as ``G``.
        """
        if backend not in ("auto", "numpy", "torch"):
            raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
        vec = self._check_input(G)
        if _is_torch(G):
            import torch
            T = G.detach()
            T2 = T.reshape(1, -1) if vec else T
            if backend == "numpy" or (backend == "auto" and T.device.type == "cpu" and self._numpy_fast()):
                if T2.dtype not in (torch.float32, torch.float64, torch.float16):
                    T2 = T2.to(torch.float32)
                out = torch.from_numpy(self._project_numpy(T2.cpu().numpy()))
                out = out.to(T.device)
            else:
                out = self._project_torch(T2)
            return out[0] if vec else out
        A = np.asarray(G)
        out = self._project_numpy(A.reshape(1, -1) if vec else A)
        return out[0] if vec else out

    def _numpy_fast(self):
        return True

    def _row_chunks(self, n, d):
        """Rows of the input per step so that a float32 working copy stays within ``_CAST_BYTES``."""
        return max(1, _CAST_BYTES // max(1, 4 * d))


class SJLTProjection(_Projection):
    """Sparse Johnson-Lindenstrauss projection from ``d`` to ``k`` dimensions with ``s`` nonzeros per column.

    The output is split into ``s`` contiguous blocks; input coordinate ``j`` goes to one uniformly drawn output
    coordinate in each block with an independent sign ``+-1/sqrt(s)``, so the ``s`` targets are distinct and
    ``E <P x, P y> = <x, y>`` with variance comparable to a dense Gaussian sketch (``s = 1`` is CountSketch).

    Parameters
    ----------
    d : int
        Input dimension (parameters).
    k : int
        Output dimension, ``k >= s``.
    s : int, default 4
        Nonzeros per input coordinate.
    seed : int, default 0
        Seeds the draw (any int in ``[0, 2**64)``); the same seed gives the same projection everywhere.

    Attributes
    ----------
    rows : numpy.ndarray, (d, s) int32
        Output coordinate of each nonzero (a view).
    values : numpy.ndarray, (d, s) float32
        ``+-1/sqrt(s)`` (a view).
    nbytes : int
        Bytes held: the nonzeros (4 + 4 bytes each), the row pointer of the sparse matrix and, once a tensor has
        been projected with the torch kernels, the transposed copy cached for that device.  O(d s), never O(d k).

    Examples
    --------
    >>> import numpy as np
    >>> P = SJLTProjection(d=10_000_000, k=4096, s=4, seed=1)
    >>> P.nbytes < 400e6 < 4 * 4096 * 10_000_000     # 0.36 GB held, a dense matrix would take 164 GB
    True
    >>> x = np.zeros(10_000_000, np.float32); x[[3, 7]] = 1.0
    >>> z = P.project(x)
    >>> float(np.dot(z, z))      # exact here: 2 coordinates, s = 4 distinct targets each
    2.0
    """

    def __init__(self, d, k, s=4, seed=0):
        self.d = _check_int("d", d)
        self.k = _check_int("k", k)
        self.s = _check_int("s", s)
        self.seed = _check_seed(seed)
        if self.s > self.k:
            raise ValueError(f"s ({self.s}) must be <= k ({self.k})")
        d, k, s = self.d, self.k, self.s
        nnz = d * s
        itype = np.int32 if nnz < 2**31 - 1 else np.int64
        bounds = [t * k // s for t in range(s + 1)]
        lo = np.asarray(bounds[:-1], itype)
        size = np.diff(np.asarray(bounds, np.int64))
        rng = np.random.Generator(np.random.Philox(key=np.array([self.seed, _SJLT_SALT], np.uint64)))
        indices = np.empty((d, s), itype)
        values = np.empty((d, s), np.float32)
        scale = np.float32(1.0 / math.sqrt(s))
        equal = bool((size == size[0]).all())
        for c0 in range(0, d, _GEN_CHUNK):
            c1 = min(d, c0 + _GEN_CHUNK)
            m = c1 - c0
            # one uniform draw per output block, shifted into its block: the s targets are distinct
            if equal:
                r = rng.integers(0, int(size[0]), (m, s), dtype=itype)
            else:
                r = np.empty((m, s), itype)
                for t in range(s):
                    r[:, t] = rng.integers(0, int(size[t]), m, dtype=itype)
            np.add(r, lo, out=indices[c0:c1])
            bits = rng.integers(0, 2, (m, s), dtype=np.int8)
            np.multiply(1 - 2 * bits, scale, out=values[c0:c1], dtype=np.float32, casting="unsafe")
        self._indices = indices.reshape(-1)
        self._values = values.reshape(-1)
        self._indptr = np.arange(0, nnz + 1, s, dtype=itype)
        self._mat = None            # scipy CSR (d x k), built on first use, sharing the arrays above
        self._torch_cache = {}      # device -> torch CSR (k x d)

    # -------------------------------------------------------------------------------------------- views
    @property
    def rows(self):
        return self._indices.reshape(self.d, self.s)

    @property
    def values(self):
        return self._values.reshape(self.d, self.s)

    @property
    def nbytes(self):
        b = self._indices.nbytes + self._values.nbytes + self._indptr.nbytes
        for t in self._torch_cache.values():
            b += sum(x.element_size() * x.numel() for x in (t.crow_indices(), t.col_indices(), t.values()))
        return int(b)

    def __repr__(self):
        return f"SJLTProjection(d={self.d}, k={self.k}, s={self.s}, seed={self.seed})"

    # -------------------------------------------------------------------------------------------- numpy
    def _matrix(self):
        sp = _scipy_sparse()
        if self._mat is None and sp:
            cls = getattr(sp, "csr_array", None) or sp.csr_matrix
            self._mat = cls((self._values, self._indices, self._indptr), shape=(self.d, self.k), copy=False)
        return self._mat

    def _project_numpy(self, A):
        n = A.shape[0]
        out = np.empty((n, self.k), np.float32)
        S = self._matrix()
        # scipy transposes each chunk of rows into a temporary copy: bound it
        step = self._row_chunks(n, self.d)
        for r0 in range(0, n, max(1, step)):
            r1 = min(n, r0 + step)
            X = A[r0:r1].astype(np.float32, copy=False)
            if S is not None:
                out[r0:r1] = np.asarray(X @ S)
            else:  # no scipy: one bincount per row
                for i in range(r1 - r0):
                    w = np.repeat(X[i], self.s) * self._values
                    out[r0 + i] = np.bincount(self._indices, weights=w, minlength=self.k)
        return out

    def _numpy_fast(self):
        return bool(_scipy_sparse())

    # -------------------------------------------------------------------------------------------- torch
    def _torch_matrix(self, device):
        """The transposed (k x d) CSR tensor on ``device``, built once per device."""
        import warnings

        import torch
        key = str(device)
        M = self._torch_cache.get(key)
        if M is None:
            S = self._matrix()
            if S is not None:       # scipy's CSR -> CSC conversion is an O(nnz) counting sort
                St = S.T.tocsr()
                crow, col, val = St.indptr, St.indices, St.data
                crow, col, val = (torch.from_numpy(np.asarray(a)) for a in (crow, col, val))
            else:
                idx = torch.from_numpy(self._indices).to(device)
                order = torch.argsort(idx, stable=True)
                col = (order // self.s).to(idx.dtype)
                val = torch.from_numpy(self._values).to(device)[order]
                counts = torch.bincount(idx.long(), minlength=self.k)
                crow = torch.zeros(self.k + 1, dtype=idx.dtype, device=device)
                crow[1:] = torch.cumsum(counts, 0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # "sparse CSR support is in beta"
                M = torch.sparse_csr_tensor(crow.to(device), col.to(device), val.to(device),
                                            size=(self.k, self.d), check_invariants=False)
            self._torch_cache[key] = M
        return M

    def _project_torch(self, T):
        import torch
        M = self._torch_matrix(T.device)
        n = T.shape[0]
        out = torch.empty((n, self.k), dtype=torch.float32, device=T.device)
        step = n if T.dtype == torch.float32 else self._row_chunks(n, self.d)
        with torch.no_grad():
            for r0 in range(0, n, max(1, step)):
                r1 = min(n, r0 + step)
                X = T[r0:r1].to(torch.float32)
                out[r0:r1] = (M @ X.T).T
        return out


class RademacherProjection(_Projection):
    """Dense Rademacher projection ``+-1/sqrt(k)`` from ``d`` to ``k`` dimensions, generated block by block.

    The ``d x k`` matrix ``R`` is never held: row ``j`` (the image of input coordinate ``j``) is read off the
    ``Philox`` counter-based generator with key ``(seed, salt)`` at counter ``j * ceil(k / 256)``, so any block of
    rows can be generated on its own, ``block`` rows at a time, and the result depends on ``seed`` only.
    ``project`` accumulates ``G[:, block] @ R[block]``.

    Parameters
    ----------
    d, k : int
        Input and output dimensions.
    seed : int, default 0
    block : int, optional
        Rows of ``R`` (input coordinates) generated per step; default ``max(16, 2**20 // k)`` (4 MiB of float32,
        so that a block stays in cache between its generation and its product: larger is slower on CPU).

    Attributes
    ----------
    nbytes : int
        Bytes used: one float32 block of ``R`` (``block * k * 4``), its random bits and an 8 KiB sign table.
        O(block k), never O(d k).

    Examples
    --------
    >>> import numpy as np
    >>> P = RademacherProjection(d=1000, k=64, seed=3, block=100)
    >>> R = P.matrix(0, 1000)            # the whole matrix, for small d only
    >>> G = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    >>> bool(np.allclose(P.project(G), G @ R, atol=1e-4))
    True
    >>> np.array_equal(RademacherProjection(1000, 64, seed=3, block=7).matrix(0, 1000), R)  # block-independent
    True
    """

    def __init__(self, d, k, seed=0, block=None):
        self.d = _check_int("d", d)
        self.k = _check_int("k", k)
        self.seed = _check_seed(seed)
        self.block = max(16, (1 << 20) // self.k) if block is None else _check_int("block", block)
        self._steps = -(-self.k // 256)        # Philox counter steps per row (4 x 64 bits each)
        self._words = 4 * self._steps          # uint64 words per row
        scale = 1.0 / math.sqrt(self.k)
        v = np.arange(256, dtype=np.uint8)[:, None]
        bits = (v >> np.arange(8, dtype=np.uint8)) & 1
        self._table = ((1.0 - 2.0 * bits) * scale).astype(np.float32)   # byte -> 8 signs

    @property
    def nbytes(self):
        b = min(self.block, self.d)
        return int(b * self.k * 4 + b * self._words * 8 + self._table.nbytes)

    def __repr__(self):
        return f"RademacherProjection(d={self.d}, k={self.k}, seed={self.seed}, block={self.block})"

    def matrix(self, start, stop):
        """Rows ``start:stop`` of the projection matrix ``R`` (``(stop - start, k)`` float32, ``+-1/sqrt(k)``)."""
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop <= self.d:
            raise ValueError(f"rows {start}:{stop} out of range for d={self.d}")
        m = stop - start
        bg = np.random.Philox(key=np.array([self.seed, _RADEMACHER_SALT], np.uint64),
                              counter=np.array([start * self._steps, 0, 0, 0], np.uint64))
        raw = bg.random_raw(m * self._words).view(np.uint8).reshape(m, self._words * 8)
        nb = -(-self.k // 8)
        R = np.take(self._table, raw[:, :nb], axis=0).reshape(m, nb * 8)   # take: ~10x faster than []
        return R if nb * 8 == self.k else np.ascontiguousarray(R[:, :self.k])

    def _project_numpy(self, A):
        n = A.shape[0]
        out = np.zeros((n, self.k), np.float32)
        for c0 in range(0, self.d, self.block):
            c1 = min(self.d, c0 + self.block)
            R = self.matrix(c0, c1)
            X = A[:, c0:c1].astype(np.float32, copy=False)
            out += X @ R
        return out

    def _project_torch(self, T):
        import torch
        n = T.shape[0]
        out = torch.zeros((n, self.k), dtype=torch.float32, device=T.device)
        with torch.no_grad():
            for c0 in range(0, self.d, self.block):
                c1 = min(self.d, c0 + self.block)
                R = torch.from_numpy(self.matrix(c0, c1)).to(T.device)
                out += T[:, c0:c1].to(torch.float32) @ R
        return out
