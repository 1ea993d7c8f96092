"""Attribution past one machine: gradient stores partitioned across dask workers, and LDS on a cluster.

:class:`DaskGradientStore` holds the ``(n, k)`` gradient features as a dask array chunked by rows (one chunk
per partition: a slice of an in-memory array, a shard file of a :class:`~whence.attribution.GradientStore`,
or features generated on the worker).  Scoring is blocked matrix products, chunk by chunk on the workers;
:meth:`DaskGradientStore.topk` keeps the best ``k`` of each chunk on its worker (the same streaming top-k as
:meth:`GradientStore.topk <whence.attribution.gradient_store.GradientStore.topk>`) and merges the candidates
in a tree, so only ``(m, k)`` values per chunk travel.  Ties are broken by the lower global row, so the
answer is the single-machine answer (the rows; a score may differ from the one-machine score in the last
place of float32, as products blocked otherwise round otherwise).

:func:`lds` runs the LDS harness's retraining jobs as tasks on a dask cluster (through joblib's dask
backend); every job has the seed it has in the serial harness, so the result is the same.

Examples
--------
>>> import numpy as np
>>> from whence.attribution.gradient_store import GradientStore
>>> G = np.random.default_rng(0).standard_normal((1000, 16)).astype(np.float32)
>>> Q = G[:3]
>>> ds = DaskGradientStore.from_array(G, rows_per_chunk=300)
>>> ds.npartitions, ds.shape
(4, (1000, 16))
>>> top = ds.topk(Q, k=5)
>>> ref = GradientStore.from_array(None, G, dtype="float32").topk(Q, k=5)
>>> bool((top.indices == ref.indices).all()), top.indices.shape
(True, (3, 5))
"""

from __future__ import annotations

import numpy as np

from ..attribution.gradient_store import GradientStore, RunningTopK as _Best, TopK, cast_into as _cast_into

__all__ = ["DaskGradientStore", "lds", "chunk_topk", "merge_topk"]

_SUB_ROWS = 1 << 15  # store rows per matrix product inside a chunk


def chunk_topk(X, A, lo, k, n, largest=True, weights=None, sub_rows=_SUB_ROWS):
    """Best ``k`` per query row of ``A @ X.T`` for the rows ``lo : lo + len(X)`` of the store.

    Parameters
    ----------
    X : ndarray (rows, d), float16 or float32
        One chunk of the store.
    A : ndarray (m, d) float32
        The queries.
    lo : int
        Global index of the chunk's first row.
    k, n : int
        How many to keep; the number of rows of the whole store (placeholder index of empty slots).
    largest : bool
        False: the smallest scores (kept negated, so that merging is the same).
    weights : ndarray (rows,), optional
        Per-row weights of the chunk.

    Returns
    -------
    (values, indices) : float32 (m, k) and int64 (m, k), best first; negated values when ``largest`` is False.
    """
    best = _Best(A.shape[0], k, n)
    buf = None
    for s in range(0, X.shape[0], sub_rows):
        blk = X[s:s + sub_rows]
        if blk.dtype != np.float32:
            if buf is None:
                buf = np.empty((min(sub_rows, X.shape[0]), X.shape[1]), np.float32)
            b32 = buf[:blk.shape[0]]
            _cast_into(b32, blk)
            blk = b32
        S = A @ blk.T
        if weights is not None:
            S *= weights[s:s + sub_rows]
        if not largest:
            np.negative(S, out=S)
        best.push(S, lo + s)
    return best.vals, best.idx


def merge_topk(parts, k):
    """Merge per-chunk candidates ``[(values, indices), ...]`` into the best ``k`` per row (ties: lower index).

    Examples
    --------
    >>> a = (np.array([[3.0, 1.0]], np.float32), np.array([[4, 0]]))
    >>> b = (np.array([[3.0, 2.0]], np.float32), np.array([[2, 7]]))
    >>> v, i = merge_topk([a, b], 3)
    >>> v.tolist(), i.tolist()
    ([[3.0, 3.0, 2.0]], [[2, 4, 7]])
    """
    V = np.concatenate([p[0] for p in parts], axis=1)
    Ix = np.concatenate([p[1] for p in parts], axis=1)
    m = V.shape[0]
    rows = np.repeat(np.arange(m), V.shape[1])
    order = np.lexsort((Ix.reshape(-1), -V.reshape(-1), rows)).reshape(m, -1)[:, :k]
    order = order - (np.arange(m) * V.shape[1])[:, None]
    return np.take_along_axis(V, order, 1), np.take_along_axis(Ix, order, 1)


def _tree_merge(parts, k, fan_in=8):
    from dask import delayed
    while len(parts) > 1:
        parts = [delayed(merge_topk, pure=True)(parts[i:i + fan_in], k) for i in range(0, len(parts), fan_in)]
    return parts[0]


def _open_shard(path, lo, hi):
    s = GradientStore.open(path)
    try:
        return np.array(s.array[lo:hi])
    finally:
        s.close()


_BASE: dict = {}


def _generated_block(seed, part, rows, k, dtype):
    """Features of one partition, made on the worker: a per-process random base block (made once) with its
    rows rotated by an amount drawn for the partition, so that no two partitions hold the same matrix."""
    key = (seed, k, dtype)
    base = _BASE.get(key)
    nb = 1 << 14
    if base is None:
        rng = np.random.default_rng(seed)
        base = _BASE[key] = rng.standard_normal((nb, k), dtype=np.float32).astype(dtype)
    start = int(np.random.default_rng((seed, part)).integers(nb))
    out = np.empty((rows, k), dtype)
    pos = 0
    while pos < rows:
        take = min(nb - start, rows - pos)
        out[pos:pos + take] = base[start:start + take]
        pos += take
        start = 0
    return out


class DaskGradientStore:
    """An ``(n, k)`` gradient store whose rows are partitioned across dask workers.

    Parameters
    ----------
    G : dask.array.Array (n, k)
        Chunked by rows only (one chunk per partition), float16 or float32.
    weights : array_like (n,), optional
        Per-row weights, as :class:`~whence.attribution.gradient_store.GradientStore` ``weights``.
    """

    def __init__(self, G, weights=None):
        import dask.array as da
        if not isinstance(G, da.Array) or G.ndim != 2:
            raise TypeError("DaskGradientStore needs a 2-D dask array")
        if len(G.chunks[1]) != 1:
            G = G.rechunk({1: -1})
        self.G = G
        self.weights = None if weights is None else np.asarray(weights, np.float32)
        if self.weights is not None and self.weights.shape != (G.shape[0],):
            raise ValueError(f"weights must have shape ({G.shape[0]},)")

    # -- construction
    @classmethod
    def from_array(cls, G, rows_per_chunk, weights=None):
        """Partition an in-memory ``(n, k)`` array by rows."""
        import dask.array as da
        return cls(da.from_array(np.asarray(G), chunks=(int(rows_per_chunk), -1)), weights)

    @classmethod
    def from_stores(cls, paths, rows_per_chunk=None):
        """One partition per :class:`GradientStore` shard file (rows in the order of ``paths``), read on the
        worker that scores it.  ``rows_per_chunk`` splits big shards further."""
        import dask.array as da
        from dask import delayed
        blocks = []
        dtype = None
        for p in paths:
            s = GradientStore.open(p)
            n, k, dt = s.n, s.k, s.dtype
            s.close()
            dtype = dt if dtype is None else dtype
            if dt != dtype:
                raise ValueError("all shards must have the same dtype")
            step = n if rows_per_chunk is None else int(rows_per_chunk)
            for lo in range(0, n, max(step, 1)):
                hi = min(n, lo + step)
                blocks.append(da.from_delayed(delayed(_open_shard, pure=True)(p, lo, hi), (hi - lo, k), dtype))
        return cls(da.concatenate(blocks, axis=0))

    @classmethod
    def generated(cls, n, k, rows_per_chunk, dtype="float16", seed=0):
        """A store of synthetic features generated partition by partition on the workers (for benchmarks:
        nothing of size ``n * k`` is ever made on the client or written to disk)."""
        import dask.array as da
        from dask import delayed
        dtype = np.dtype(dtype)
        blocks = []
        for part, lo in enumerate(range(0, int(n), int(rows_per_chunk))):
            rows = min(int(n) - lo, int(rows_per_chunk))
            blocks.append(da.from_delayed(delayed(_generated_block, pure=True)(seed, part, rows, int(k), dtype),
                                          (rows, int(k)), dtype))
        return cls(da.concatenate(blocks, axis=0))

    # -- properties
    @property
    def shape(self):
        return tuple(int(s) for s in self.G.shape)

    @property
    def npartitions(self):
        return len(self.G.chunks[0])

    def __repr__(self):
        return f"<DaskGradientStore {self.shape[0]} x {self.shape[1]} {self.G.dtype}, {self.npartitions} partitions>"

    def _queries(self, Q):
        A = np.asarray(Q, np.float32)
        vec = A.ndim == 1
        if vec:
            A = A[None, :]
        if A.ndim != 2 or A.shape[1] != self.shape[1]:
            raise ValueError(f"Q must have shape (m, {self.shape[1]}) or ({self.shape[1]},), got {np.shape(Q)}")
        if not np.isfinite(A).all():
            raise ValueError("Q has NaN or infinite values")
        return np.ascontiguousarray(A), vec

    # -- scoring
    def scores(self, Q):
        """``Q @ G.T`` times the weights, as a lazy ``(m, n)`` float32 dask array (blocked by partition)."""
        import dask.array as da
        A, vec = self._queries(Q)
        S = self.G.map_blocks(lambda X: (np.asarray(X, np.float32) @ A.T), dtype=np.float32,
                              chunks=(self.G.chunks[0], (A.shape[0],))).T
        if self.weights is not None:
            S = S * da.from_array(self.weights, chunks=(self.G.chunks[0],))[None, :]
        return S[0] if vec else S

    def topk(self, Q, k=10, largest=True, client=None):
        """The ``k`` best rows per query: per-partition top-k on the workers, merged in a tree.

        Parameters
        ----------
        Q : array_like (m, k) or (k,)
        k : int
        largest : bool, default True
            False: the smallest scores, most negative first.
        client : distributed.Client, optional
            Where to run (default: dask's current scheduler).

        Returns
        -------
        TopK(values, indices)
            As :meth:`GradientStore.topk`: equal to ``np.argsort(-scores, kind="stable")[:, :k]``.
        """
        from dask import delayed
        A, vec = self._queries(Q)
        n = self.shape[0]
        kk = min(int(k), n)
        if kk < 1:
            raise ValueError("k must be >= 1")
        Ad = delayed(A, pure=True) if client is None else client.scatter(A, broadcast=True, hash=False)
        blocks = self.G.to_delayed().ravel()
        starts = np.concatenate([[0], np.cumsum(self.G.chunks[0])[:-1]])
        parts = []
        for blk, lo, rows in zip(blocks, starts, self.G.chunks[0]):
            w = None if self.weights is None else self.weights[lo:lo + rows]
            parts.append(delayed(chunk_topk, pure=True)(blk, Ad, int(lo), kk, n, largest, w))
        res = _tree_merge(parts, kk)
        V, idx = client.compute(res).result() if client is not None else res.compute()
        if not largest:
            V = -V
        return TopK(V[0], idx[0]) if vec else TopK(V, idx)


def lds(attr, X_train, y_train, X_test, y_test, *, client=None, **kwargs):
    """The LDS harness (:func:`whence.attribution.lds.lds`) with its retraining jobs run as dask tasks.

    Parameters
    ----------
    client : distributed.Client, optional
        The cluster; the current default client when omitted.
    **kwargs
        As :func:`whence.attribution.lds.lds` (``n_jobs`` defaults to the cluster's worker threads).

    Returns
    -------
    LDSResult
        Equal to the serial harness's result (each job keeps its seed).
    """
    import joblib
    from distributed import get_client
    from ..attribution.lds import lds as _lds
    client = get_client() if client is None else client
    threads = sum(client.nthreads().values()) or 1
    kwargs.setdefault("n_jobs", max(2, threads))
    kwargs.setdefault("progress", False)
    with joblib.parallel_config(backend="dask", client=client):
        return _lds(attr, X_train, y_train, X_test, y_test, **kwargs)
