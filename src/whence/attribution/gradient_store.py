"""A memory-mapped matrix of projected per-sample gradients, with blocked Gram, scoring and streaming top-k.

``GradientStore`` holds an ``(n, k)`` float16 or float32 matrix ``G`` (one row per training sample, ``k`` the
projection dimension) in a file mapped with ``numpy.memmap``, or in memory when ``path`` is None.  Everything
reads it in row blocks, so ``n`` is bounded by the disk, not the memory: n = 1e6, k = 4096 in float16 is an
8.2 GB file.

File format
-----------
``path``
    The raw matrix: ``n * k`` values, row-major (C order), little-endian float16 or float32, no header.
``path + ".json"``
    A small sidecar: ``{"format": "whence.GradientStore", "version": 1, "n": ..., "k": ..., "dtype": "float16",
    "order": "C", "byteorder": "little", "weights": null}``; ``weights`` names an ``.npy`` file next to ``path``
    (``path + ".weights.npy"``) when per-row weights were saved.

Keeping the matrix headerless means any tool can map it (``np.memmap(path, dtype, shape=(n, k))``), and the
sidecar is what ``GradientStore.open`` checks the file against: a file shorter or longer than
``n * k * itemsize`` bytes is refused.

Scores
------
``scores(Q)`` is ``Q @ G.T`` (``(m, n)``, float32), times the optional per-row ``weights`` (TRAK's ``1 - p``
factors) as a column scaling; ``topk(Q, k)`` returns the ``k`` largest (and with ``also_bottom`` the ``k``
smallest) scores per query without ever holding the ``(m, n)`` matrix: one ``(m, block)`` block at a time,
merged into a running top-k.  Ties are broken by the lower training index, so ``topk`` agrees exactly with
``np.argsort(-scores(Q), axis=1, kind="stable")[:, :k]`` (and ``np.argsort(scores(Q), kind="stable")`` for the
bottom).  ``gram()`` is ``G.T @ G`` in float64, accumulated block by block (unweighted).

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> G = np.random.default_rng(0).standard_normal((1000, 64)).astype(np.float32)
>>> tmp = tempfile.mkdtemp()
>>> path = os.path.join(tmp, "grads.f16")
>>> store = GradientStore(path, n=1000, k=64, dtype="float16")
>>> store.fill(G[i:i + 300] for i in range(0, 1000, 300))
1000
>>> store.close()
>>> store = GradientStore.open(path)
>>> store.shape, store.dtype
((1000, 64), dtype('float16'))
>>> values, index = store.topk(G[:2], k=3)
>>> index[:, 0]                # each training row scores highest against itself
array([0, 1])
>>> bool(np.allclose(store.gram(), G.T.astype(np.float64) @ G, rtol=1e-2, atol=1.0))
True
>>> store.close()
"""

from __future__ import annotations

import json
import os
import warnings
from collections import namedtuple

import numpy as np

from ..progress import progress_bar

__all__ = ["GradientStore", "TopK"]

FORMAT = "whence.GradientStore"
VERSION = 1
_DTYPES = {"float16": np.dtype("<f2"), "float32": np.dtype("<f4")}
_F16_MAX = float(np.finfo(np.float16).max)    # 65504
_BLOCK_BYTES = 1 << 25                        # float32 working block of the store (32 MiB)

TopK = namedtuple("TopK", ["values", "indices"])
TopK.__doc__ = """Top-k scores per query: ``values`` (m, k) float32 sorted best first, ``indices`` (m, k) int64."""


# --------------------------------------------------------------------------------------------- helpers
_TORCH = None


def _torch():
    """torch if importable (used only to cast float16 <-> float32 several times faster than numpy), else False."""
    global _TORCH
    if _TORCH is None:
        try:
            import torch
            _TORCH = torch
        except Exception:  # noqa: BLE001 - torch is optional; any import failure means "no torch"
            _TORCH = False
    return _TORCH


def _cast_into(dst, src):
    """``dst[...] = src`` with a dtype conversion; torch's multi-threaded cast when it can, else numpy's."""
    if dst.dtype != src.dtype and src.size >= 1 << 16:
        torch = _torch()
        if torch and dst.flags.writeable and src.shape == dst.shape:
            try:
                with warnings.catch_warnings():
                    # a read-only source (a store opened with mode "r"): torch only reads it
                    warnings.simplefilter("ignore", UserWarning)
                    torch.from_numpy(dst).copy_(torch.from_numpy(src))
                return
            except (TypeError, ValueError, RuntimeError):
                pass
    np.copyto(dst, src, casting="unsafe")


def _min_max(a):
    """(min, max) of a float array; NaN when it holds a NaN (torch's multi-threaded ``aminmax`` when it can)."""
    if a.size >= 1 << 16 and a.dtype in (np.float32, np.float64):
        torch = _torch()
        if torch:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    lo, hi = torch.aminmax(torch.from_numpy(a))
                return float(lo), float(hi)
            except (TypeError, ValueError, RuntimeError):
                pass
    return float(a.min()), float(a.max())


def _as_numpy(x, what):
    if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind != "f":
        raise TypeError(f"{what} must be a floating-point array, got dtype {a.dtype}")
    return a


def _check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"GradientStore dtype must be 'float16' or 'float32', got {dtype!r}") from None
    if dt.kind != "f" or dt.itemsize not in (2, 4):
        raise ValueError(f"GradientStore dtype must be 'float16' or 'float32', got {dtype!r}")
    return _DTYPES["float16" if dt.itemsize == 2 else "float32"]


def _check_size(name, v, lo=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v}")
    return int(v)


def _sidecar(path):
    return os.fspath(path) + ".json"


def _weights_file(path):
    return os.fspath(path) + ".weights.npy"


def _rows_list(rows, limit=10):
    rows = [int(r) for r in rows[:limit + 1]]
    s = ", ".join(map(str, rows[:limit]))
    return s + (", ..." if len(rows) > limit else "")


class _Best:
    """Running best ``k`` per row (larger is better; ties: lower index), fed block by block."""

    def __init__(self, m, k, n):
        self.m, self.k = m, k
        self.vals = np.full((m, k), -np.inf, np.float32)
        self.idx = np.full((m, k), n, np.int64)         # placeholder index n: loses every tie with a real row

    def push(self, S, lo):
        m, b = S.shape
        k = self.k
        thr = self.vals[:, -1]
        mask = S > thr[:, None]                          # equal values lose: their index is larger
        c = int(np.count_nonzero(mask))
        if c == 0:
            return
        if c <= max(4 * m * k, b):
            flat = np.flatnonzero(mask)
            r, col = np.divmod(flat, b)
            v = S[r, col]
        else:                                            # early blocks: the best k of each row
            kk = min(k, b)
            part = np.argpartition(S, b - kk, axis=1)[:, b - kk:]
            pv = np.take_along_axis(S, part, 1)
            t = pv.min(axis=1)
            ties = np.flatnonzero(np.count_nonzero(S >= t[:, None], axis=1) > kk)
            for row in ties:                             # several equal values at the boundary: by index
                part[row] = np.argsort(-S[row], kind="stable")[:kk]
            r = np.repeat(np.arange(m), kk)
            col = part.reshape(-1)
            v = S[r, col]
        # merge the candidates into the rows that got any
        counts = np.bincount(r, minlength=m)
        rows = np.flatnonzero(counts)
        pos = np.full(m, -1, np.int64)
        pos[rows] = np.arange(rows.size)
        nr = rows.size
        all_r = np.concatenate([np.repeat(np.arange(nr), k), pos[r]])
        all_v = np.concatenate([self.vals[rows].reshape(-1), v.astype(np.float32, copy=False)])
        all_i = np.concatenate([self.idx[rows].reshape(-1), col.astype(np.int64) + lo])
        order = np.lexsort((all_i, -all_v, all_r))
        per = k + counts[rows]
        starts = np.concatenate([[0], np.cumsum(per)[:-1]])
        sel = order[(starts[:, None] + np.arange(k)).reshape(-1)]
        self.vals[rows] = all_v[sel].reshape(nr, k)
        self.idx[rows] = all_i[sel].reshape(nr, k)


# ------------------------------------------------------------------------------------------------ store
class GradientStore:
    """An ``(n, k)`` matrix of projected per-sample gradients, memory-mapped (or in memory), read in row blocks.

    Parameters
    ----------
    path : str, os.PathLike or None
        The data file (created or overwritten), with its sidecar ``path + ".json"``.  None: an in-memory
        array, for small cases.
    n : int
        Rows (training samples).
    k : int
        Columns (projection dimension).
    dtype : {"float16", "float32"}, default "float16"
        Storage type.  float16 halves the file (values beyond 65504 in magnitude are refused); every
        computation reads it back as float32.
    mode : {"w+", "r+", "r"}, default "w+"
        ``w+`` creates the file; ``r+`` and ``r`` reopen an existing store (as ``GradientStore.open``), whose
        ``n``, ``k`` and ``dtype`` must then match.
    weights : array_like (n,), optional
        Per-row weights applied as a column scaling in ``scores`` and ``topk`` (see ``weights``).

    Attributes
    ----------
    n, k : int
    dtype : numpy.dtype
    path : str or None
    array : numpy.memmap or numpy.ndarray, (n, k)
        The raw matrix (read-only when opened with ``mode="r"``).

    Examples
    --------
    >>> import numpy as np
    >>> s = GradientStore(None, n=4, k=3, dtype="float32")        # in memory
    >>> s.write(0, np.eye(4, 3, dtype=np.float32))
    4
    >>> s.scores(np.array([[1.0, 2.0, 3.0]], np.float32))
    array([[1., 2., 3., 0.]], dtype=float32)
    >>> s.write(3, np.array([[np.nan, 0.0, 0.0]]))
    Traceback (most recent call last):
    ...
    ValueError: GradientStore.write: the block for rows 3:4 has NaN or infinite values in rows [3]
    """

    def __init__(self, path, n, k, dtype="float16", mode="w+", weights=None):
        n = _check_size("n", n)
        k = _check_size("k", k)
        dt = _check_dtype(dtype)
        if mode not in ("w+", "r+", "r"):
            raise ValueError(f"mode must be 'w+', 'r+' or 'r', got {mode!r}")
        self._closed = False
        self._weights = None
        if mode in ("r", "r+"):
            if path is None:
                raise ValueError(f"mode {mode!r} reopens a file: a path is required")
            meta = self._read_meta(path)
            if (meta["n"], meta["k"], meta["dtype"]) != (n, k, dt.name):
                raise ValueError(f"GradientStore {os.fspath(path)!r} holds (n={meta['n']}, k={meta['k']}, "
                                 f"{meta['dtype']}), not (n={n}, k={k}, {dt.name})")
            self._attach(path, meta, mode)
        else:
            self.n, self.k, self.dtype, self.mode = n, k, dt, mode
            if path is None:
                self.path = None
                self._arr = np.zeros((n, k), dt)
            else:
                self.path = os.fspath(path)
                d = os.path.dirname(os.path.abspath(self.path))
                if not os.path.isdir(d):
                    raise FileNotFoundError(f"GradientStore: directory {d!r} does not exist")
                self._arr = np.memmap(self.path, dtype=dt, mode="w+", shape=(n, k))
                wf = _weights_file(self.path)
                if os.path.exists(wf):
                    os.remove(wf)                        # a stale one from an overwritten store
                self._write_meta()
        if weights is not None:
            self.weights = weights

    # ----------------------------------------------------------------------------------- construction
    @classmethod
    def open(cls, path, mode="r"):
        """Reopen a store written earlier (read-only by default; ``mode="r+"`` to write into it).

        Raises
        ------
        FileNotFoundError
            No data file or no sidecar.
        ValueError
            The sidecar is not a GradientStore's, or the data file is truncated (or longer than the sidecar says).
        """
        if mode not in ("r", "r+"):
            raise ValueError(f"GradientStore.open: mode must be 'r' or 'r+', got {mode!r}")
        meta = cls._read_meta(path)
        self = cls.__new__(cls)
        self._closed = False
        self._weights = None
        self._attach(path, meta, mode)
        return self

    @classmethod
    def from_array(cls, path, G, dtype="float16", weights=None, block=None, progress=False):
        """A store holding the rows of ``G`` (``(n, k)`` numpy array or torch tensor), written in chunks.

        ``path`` None gives an in-memory store.

        Examples
        --------
        >>> import numpy as np
        >>> s = GradientStore.from_array(None, np.ones((5, 2), np.float32), dtype="float32")
        >>> s.shape, float(s.array.sum())
        ((5, 2), 10.0)
        """
        A = _as_numpy(G, "GradientStore.from_array: G")
        if A.ndim != 2:
            raise ValueError(f"GradientStore.from_array: G must be 2-D (n, k), got shape {A.shape}")
        n, k = A.shape
        self = cls(path, n, k, dtype=dtype, weights=weights)
        step = block or max(1, _BLOCK_BYTES // (4 * k))
        self.fill((A[i:i + step] for i in range(0, n, step)), progress=progress)
        return self

    @staticmethod
    def _read_meta(path):
        path = os.fspath(path)
        side = _sidecar(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"GradientStore: no data file {path!r}")
        if not os.path.exists(side):
            raise FileNotFoundError(f"GradientStore: no sidecar {side!r} next to {path!r} (n, k and dtype live "
                                    f"there)")
        try:
            with open(side) as f:
                meta = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"GradientStore: unreadable sidecar {side!r}: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"GradientStore: {side!r} is not a GradientStore sidecar")
        if meta.get("version", 0) > VERSION:
            raise ValueError(f"GradientStore: {side!r} has version {meta.get('version')}, this whence reads "
                             f"up to {VERSION}")
        try:
            n = _check_size("n", meta["n"])
            k = _check_size("k", meta["k"])
            dt = _check_dtype(meta["dtype"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"GradientStore: bad sidecar {side!r}: {e}") from None
        expected = n * k * dt.itemsize
        size = os.path.getsize(path)
        if size < expected:
            raise ValueError(f"GradientStore: {path!r} is truncated: {size} bytes, expected {expected} "
                             f"(n={n} x k={k} x {dt.itemsize} bytes)")
        if size > expected:
            raise ValueError(f"GradientStore: {path!r} has {size} bytes, expected {expected} "
                             f"(n={n} x k={k} x {dt.itemsize} bytes): not the file its sidecar describes")
        meta = dict(meta, n=n, k=k, dtype=dt.name)
        return meta

    def _attach(self, path, meta, mode):
        self.path = os.fspath(path)
        self.n, self.k, self.dtype, self.mode = meta["n"], meta["k"], _DTYPES[meta["dtype"]], mode
        self._arr = np.memmap(self.path, dtype=self.dtype, mode=mode, shape=(self.n, self.k))
        if meta.get("weights"):
            wf = os.path.join(os.path.dirname(os.path.abspath(self.path)), meta["weights"])
            if not os.path.exists(wf):
                raise FileNotFoundError(f"GradientStore: the weights file {wf!r} named by the sidecar is missing")
            self._weights = self._check_weights(np.load(wf))

    def _write_meta(self):
        meta = {"format": FORMAT, "version": VERSION, "n": self.n, "k": self.k, "dtype": self.dtype.name,
                "order": "C", "byteorder": "little",
                "weights": os.path.basename(_weights_file(self.path)) if self._weights is not None else None}
        side = _sidecar(self.path)
        tmp = side + ".tmp"
        with open(tmp, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, side)

    # ---------------------------------------------------------------------------------------- basics
    @property
    def shape(self):
        return (self.n, self.k)

    @property
    def array(self):
        self._check_open()
        return self._arr

    @property
    def nbytes(self):
        """Bytes of the matrix (on disk for a file-backed store)."""
        return self.n * self.k * self.dtype.itemsize

    @property
    def readonly(self):
        return self.mode == "r"

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        """Rows as stored (numpy indexing on the mapped array)."""
        self._check_open()
        return self._arr[idx]

    def __repr__(self):
        where = "memory" if self.path is None else repr(self.path)
        state = ", closed" if self._closed else ""
        return f"GradientStore({where}, n={self.n}, k={self.k}, dtype={self.dtype.name}, mode={self.mode!r}{state})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_open(self):
        if self._closed:
            raise ValueError("GradientStore: the store is closed")

    def flush(self):
        """Write dirty pages of a file-backed store to disk."""
        self._check_open()
        if isinstance(self._arr, np.memmap) and self.mode != "r":
            self._arr.flush()

    def close(self):
        """Flush and unmap; the store cannot be used afterwards (``open`` it again)."""
        if self._closed:
            return
        self.flush()
        self._arr = None
        self._closed = True

    # --------------------------------------------------------------------------------------- weights
    def _check_weights(self, w):
        w = _as_numpy(w, "GradientStore weights").astype(np.float32)
        if w.shape != (self.n,):
            raise ValueError(f"GradientStore weights must have shape ({self.n},), got {w.shape}")
        if not np.isfinite(w).all():
            raise ValueError(f"GradientStore weights have NaN or infinite values at rows "
                             f"[{_rows_list(np.flatnonzero(~np.isfinite(w)))}]")
        return w

    @property
    def weights(self):
        """Per-row weights (``(n,)`` float32) or None: ``scores`` and ``topk`` multiply column ``j`` by
        ``weights[j]`` (TRAK's per-sample ``1 - p``).  Setting them on a writable file-backed store saves them
        next to it (``path + ".weights.npy"``); on a read-only store they are kept in memory only.  ``gram``
        ignores them."""
        return self._weights

    @weights.setter
    def weights(self, w):
        self._check_open()
        if w is None:
            self._weights = None
            if self.path is not None and self.mode != "r":
                wf = _weights_file(self.path)
                if os.path.exists(wf):
                    os.remove(wf)
                self._write_meta()
            return
        self._weights = self._check_weights(w)
        if self.path is not None and self.mode != "r":
            np.save(_weights_file(self.path), self._weights)
            self._write_meta()

    # ---------------------------------------------------------------------------------------- writes
    def write(self, start, block):
        """Write ``block`` (``(b, k)`` or one ``(k,)`` row; numpy or torch, any float dtype) at rows
        ``start:start + b``; returns ``start + b`` (where the next block goes).

        Raises
        ------
        ValueError
            Read-only store, rows out of range, wrong shape, NaN or infinite values (naming the rows), or values
            beyond float16's range in a float16 store.
        TypeError
            A non-floating-point block.
        """
        self._check_open()
        if self.mode == "r":
            raise ValueError("GradientStore.write: the store was opened read-only (open it with mode='r+')")
        B = _as_numpy(block, "GradientStore.write: block")
        if B.ndim == 1:
            B = B[None, :]
        if B.ndim != 2 or B.shape[1] != self.k:
            raise ValueError(f"GradientStore.write: expected a block of shape (b, {self.k}), got {B.shape}")
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
            raise TypeError(f"GradientStore.write: start must be an integer, got {type(start).__name__}")
        start = int(start)
        stop = start + B.shape[0]
        if start < 0 or stop > self.n:
            raise ValueError(f"GradientStore.write: rows {start}:{stop} are out of range for a store of "
                             f"n={self.n} rows")
        if B.shape[0] == 0:
            return stop
        # finiteness (and float16 range) by two SIMD reductions; the rows are found only when they fail
        lo, hi = _min_max(B)
        limit = _F16_MAX if self.dtype.itemsize == 2 else np.inf
        if not (np.isfinite(lo) and np.isfinite(hi) and -limit <= lo and hi <= limit):
            bad = np.flatnonzero(~np.isfinite(B).all(axis=1))
            if bad.size:
                raise ValueError(f"GradientStore.write: the block for rows {start}:{stop} has NaN or infinite "
                                 f"values in rows [{_rows_list(bad + start)}]")
            over = np.flatnonzero((np.abs(B) > limit).any(axis=1))
            raise ValueError(f"GradientStore.write: the block for rows {start}:{stop} has values beyond float16's "
                             f"range (|x| > {_F16_MAX:g}) in rows [{_rows_list(over + start)}]; use "
                             f"dtype='float32' or scale the gradients")
        _cast_into(self._arr[start:stop], B)
        return stop

    def fill(self, chunks, progress=True, start=0):
        """Write an iterable of ``(n_i, k)`` blocks one after another from row ``start``; returns the row after
        the last one written.

        ``progress``: a bar on stderr (tqdm's if installed) that shows up once the fill has taken a second.
        """
        self._check_open()
        pos = int(start)
        bar = progress_bar(self.n - pos, "GradientStore.fill", enabled=bool(progress), unit="rows")
        try:
            for blk in chunks:
                new = self.write(pos, blk)
                bar.update(new - pos)
                pos = new
        finally:
            bar.close()
        self.flush()
        return pos

    # ----------------------------------------------------------------------------------------- reads
    def _block_rows(self, block, m=1):
        if block is None:
            return int(max(1, min(self.n, _BLOCK_BYTES // (4 * self.k), _BLOCK_BYTES // (4 * max(1, m)))))
        return _check_size("block", block)

    def _blocks(self, block):
        """Row blocks of the store as float32 arrays (a reused buffer for float16)."""
        self._check_open()
        buf = None
        for lo in range(0, self.n, block):
            hi = min(self.n, lo + block)
            X = self._arr[lo:hi]
            if self.dtype != np.float32:
                if buf is None:
                    buf = np.empty((min(block, self.n), self.k), np.float32)
                Xb = buf[:hi - lo]
                _cast_into(Xb, np.asarray(X))
                X = Xb
            yield lo, hi, X

    def rows(self, start=0, stop=None):
        """Rows ``start:stop`` as a float32 copy."""
        self._check_open()
        return np.array(self._arr[start:stop], dtype=np.float32)

    def gram(self, block=None, precision="float64"):
        """``G.T @ G`` as a ``(k, k)`` float64 matrix, accumulated over row blocks (weights are not applied).

        Parameters
        ----------
        block : int, optional
            Rows per step (default: at least ``k``, so that adding each block's ``k x k`` product costs little).
        precision : {"float64", "float32"}
            Each block's product in float64 (default) or in float32 (about twice as fast; the sum over blocks
            is float64 either way).

        Examples
        --------
        >>> import numpy as np
        >>> G = np.arange(12, dtype=np.float32).reshape(4, 3)
        >>> s = GradientStore.from_array(None, G, dtype="float32")
        >>> np.array_equal(s.gram(block=3), G.T.astype(np.float64) @ G)
        True
        """
        if precision not in ("float64", "float32"):
            raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
        if block is None:
            block = min(self.n, max(self.k, (1 << 27) // (8 * self.k)))
        block = _check_size("block", block)
        acc = np.zeros((self.k, self.k), np.float64)
        buf = None
        for lo, hi, X in self._blocks(block):
            if precision == "float64":
                if buf is None:
                    buf = np.empty((min(block, self.n), self.k), np.float64)
                Xd = buf[:hi - lo]
                np.copyto(Xd, X)
                acc += Xd.T @ Xd                       # same buffer transposed: numpy calls syrk
            else:
                acc += X.T @ X
        return acc

    def _check_queries(self, Q, what):
        A = _as_numpy(Q, f"GradientStore.{what}: Q")
        vec = A.ndim == 1
        if vec:
            A = A[None, :]
        if A.ndim != 2 or A.shape[1] != self.k:
            raise ValueError(f"GradientStore.{what}: Q must have shape (m, {self.k}) or ({self.k},), "
                             f"got {np.shape(Q)}")
        A = np.ascontiguousarray(A, dtype=np.float32)
        if not np.isfinite(A).all():
            bad = np.flatnonzero(~np.isfinite(A).all(axis=1))
            raise ValueError(f"GradientStore.{what}: Q has NaN or infinite values in rows [{_rows_list(bad)}]")
        return A, vec

    def _weights_for(self, weights):
        if weights is None:
            return self._weights
        return self._check_weights(weights)

    def scores(self, Q, block=None, out=None, weights=None):
        """The full score matrix ``Q @ G.T`` (times ``weights`` per column): ``(m, n)`` float32.

        Parameters
        ----------
        Q : array_like (m, k) or (k,)
            Projected query gradients (float; computed in float32).
        block : int, optional
            Store rows per step.
        out : numpy.ndarray (m, n) float32, optional
            Where to write (may be a memmap).
        weights : array_like (n,), optional
            Overrides the store's ``weights`` for this call.

        Returns
        -------
        numpy.ndarray, (m, n) float32, or (n,) for a 1-D ``Q``.
        """
        A, vec = self._check_queries(Q, "scores")
        m = A.shape[0]
        w = self._weights_for(weights)
        if out is None:
            out = np.empty((m, self.n), np.float32)
        else:
            if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.shape != (m, self.n):
                raise ValueError(f"GradientStore.scores: out must be a float32 array of shape ({m}, {self.n}), "
                                 f"got {getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
        b = self._block_rows(block, m)
        for lo, hi, S in self._score_blocks(A, b, w):
            out[:, lo:hi] = S
        return out[0] if vec else out

    def _score_blocks(self, A, b, w):
        """``(lo, hi, A @ G[lo:hi].T * w[lo:hi])`` per row block, in a reused ``(m, b)`` float32 buffer."""
        Sbuf = None
        for lo, hi, X in self._blocks(b):
            if hi - lo == b:
                if Sbuf is None:
                    Sbuf = np.empty((A.shape[0], b), np.float32)
                S = np.matmul(A, X.T, out=Sbuf)
            else:
                S = A @ X.T
            if w is not None:
                S *= w[lo:hi]
            yield lo, hi, S

    def topk(self, Q, k=10, largest=True, block=None, also_bottom=False, weights=None):
        """The ``k`` best training rows per query, streaming: never holds the ``(m, n)`` score matrix.

        Parameters
        ----------
        Q : array_like (m, k) or (k,)
        k : int, default 10
            How many (clipped to ``n``).
        largest : bool, default True
            The largest scores (most helpful); False: the smallest (most harmful), most negative first.
        block : int, optional
            Store rows per step.
        also_bottom : bool, default False
            Also return the ``k`` smallest (with ``largest=True`` only).
        weights : array_like (n,), optional
            Overrides the store's ``weights`` for this call.

        Returns
        -------
        TopK(values, indices)
            ``(m, k)`` float32 and int64 (``(k,)`` for a 1-D ``Q``), sorted best first, ties by lower index:
            the same as ``np.argsort(-scores(Q), axis=1, kind="stable")[:, :k]`` (``largest=False``:
            ``np.argsort(scores(Q), ...)``).  With ``also_bottom``: a pair ``(top, bottom)`` of ``TopK``.

        Examples
        --------
        >>> import numpy as np
        >>> s = GradientStore.from_array(None, np.array([[1.0], [3.0], [-2.0], [3.0]]), dtype="float32")
        >>> top, bottom = s.topk(np.array([1.0]), k=2, also_bottom=True)
        >>> top.indices.tolist(), top.values.tolist(), bottom.indices.tolist()
        ([1, 3], [3.0, 3.0], [2, 0])
        """
        kk = _check_size("k", k)
        if also_bottom and not largest:
            raise ValueError("GradientStore.topk: also_bottom needs largest=True (the bottom is then the smallest)")
        A, vec = self._check_queries(Q, "topk")
        m = A.shape[0]
        kk = min(kk, self.n)
        w = self._weights_for(weights)
        top = _Best(m, kk, self.n) if (largest or also_bottom) else None
        bot = _Best(m, kk, self.n) if (not largest or also_bottom) else None
        b = self._block_rows(block, m)
        for lo, hi, S in self._score_blocks(A, b, w):
            if top is not None:
                top.push(S, lo)
            if bot is not None:
                np.negative(S, out=S)
                bot.push(S, lo)

        def res(best, sign):
            v = best.vals if sign > 0 else -best.vals
            i = best.idx
            return TopK(v[0], i[0]) if vec else TopK(v, i)

        if also_bottom:
            return res(top, 1), res(bot, -1)
        return res(top, 1) if largest else res(bot, -1)


#: public names of the helpers the lazy (dask) attribution shares: the running best ``k`` per row, and a
#: dtype-converting copy ``dst[...] = src``
RunningTopK = _Best
cast_into = _cast_into
