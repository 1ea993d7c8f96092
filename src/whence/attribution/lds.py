"""The linear datamodeling score (LDS), measured the way the field does.

For ``n_subsets`` random subsets ``S_j`` of the training rows, the model is trained from scratch on ``S_j``
(``runs_per_subset`` times, with different seeds; the mean output is used) and its output on every test point
is recorded.  An attribution's prediction for subset ``S_j`` is the sum of the scores of the rows in ``S_j``.
The LDS of a test point is the Spearman correlation, across subsets, between prediction and actual output; the
reported figure is the mean over test points, with a bootstrap 95 % confidence interval over test points.

Reported beside it, so that the figure can be judged:

* ``random_baseline``: the same score for random (zero-mean Gaussian) attributions, which should be near 0;
* ``noise_ceiling``: how well the actual outputs of one set of training runs predict those of another set on
  the same subsets (split-half agreement, Spearman), the best any attribution can reach when training is noisy.
  Deterministic training (a convex model solved to tolerance) gives 1.

Two protocols: ``"fixed"`` (subsets of exactly ``round(alpha * n)`` rows, as in TRAK and dattri; the default)
and ``"bernoulli"`` (each row kept with probability ``alpha``, as in Traceprop's evaluation, run there with 500
subsets).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..progress import progress_bar

__all__ = ["lds", "LDSResult", "spearman_rows", "subset_masks"]


@dataclass
class LDSResult:
    """The outcome of :func:`lds`.

    Attributes
    ----------
    mean : float
        Mean LDS over test points.
    ci95 : (float, float)
        Bootstrap 95 % confidence interval of the mean (test points resampled).
    per_target : ndarray (n_test,)
        LDS of each test point (NaN where the output did not vary across subsets).
    random_baseline : float
        Mean LDS of random attributions (same subsets and outputs).
    random_ci95 : (float, float)
    noise_ceiling : float or None
        Split-half agreement of the retrained outputs (None when not measured).
    protocol, alpha, n_subsets, runs_per_subset : as asked
    seconds : dict
        Time spent scoring and retraining.
    """

    mean: float
    ci95: tuple
    per_target: np.ndarray
    random_baseline: float
    random_ci95: tuple
    noise_ceiling: float | None
    protocol: str
    alpha: float
    n_subsets: int
    runs_per_subset: int
    seconds: dict = field(default_factory=dict)
    outputs: np.ndarray | None = field(default=None, repr=False)
    masks: np.ndarray | None = field(default=None, repr=False)

    def __repr__(self):
        nc = "not measured" if self.noise_ceiling is None else f"{self.noise_ceiling:.3f}"
        return (f"LDS {self.mean:.3f} (95% CI {self.ci95[0]:.3f} to {self.ci95[1]:.3f}; random "
                f"{self.random_baseline:+.3f}; noise ceiling {nc}) over {self.per_target.size} test points, "
                f"{self.n_subsets} {self.protocol} subsets (alpha {self.alpha})")

    def as_dict(self):
        return {"mean": self.mean, "ci95": list(self.ci95), "random_baseline": self.random_baseline,
                "random_ci95": list(self.random_ci95), "noise_ceiling": self.noise_ceiling,
                "protocol": self.protocol, "alpha": self.alpha, "n_subsets": self.n_subsets,
                "runs_per_subset": self.runs_per_subset, "n_targets": int(self.per_target.size),
                "seconds": self.seconds}


def subset_masks(n, n_subsets, alpha=0.5, protocol="fixed", seed=0):
    """Boolean (n_subsets, n) masks of the training rows kept in each subset."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = np.random.default_rng(seed)
    if protocol == "fixed":
        k = int(round(alpha * n))
        if not 0 < k < n:
            raise ValueError(f"alpha {alpha} of {n} rows leaves an empty subset or its complement")
        masks = np.zeros((n_subsets, n), bool)
        for j in range(n_subsets):
            masks[j, rng.choice(n, k, replace=False)] = True
        return masks
    if protocol == "bernoulli":
        return rng.random((n_subsets, n)) < alpha
    raise ValueError(f"protocol must be 'fixed' or 'bernoulli', got {protocol!r}")


def _ranks(a):
    """Average ranks along axis 0 (ties share their mean rank), as Spearman needs."""
    a = np.asarray(a, np.float64)
    order = np.argsort(a, axis=0, kind="mergesort")
    ranks = np.empty_like(a)
    n = a.shape[0]
    cols = np.arange(a.shape[1])
    ranks[order, cols[None, :]] = np.arange(n, dtype=np.float64)[:, None]
    # ties: average the ranks of equal values
    sa = np.take_along_axis(a, order, axis=0)
    for j in np.flatnonzero((np.diff(sa, axis=0) == 0).any(axis=0)):
        col = sa[:, j]
        _, start, counts = np.unique(col, return_index=True, return_counts=True)
        r = np.empty(n)
        for s, c in zip(start, counts):
            r[s:s + c] = s + (c - 1) / 2
        ranks[order[:, j], j] = r
    return ranks


def spearman_rows(pred, truth):
    """Spearman correlation of each column of ``pred`` with the same column of ``truth`` (n_subsets, n_test);
    NaN for a constant column."""
    rp, rt = _ranks(pred), _ranks(truth)
    rp -= rp.mean(axis=0)
    rt -= rt.mean(axis=0)
    num = (rp * rt).sum(axis=0)
    den = np.sqrt((rp ** 2).sum(axis=0) * (rt ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _bootstrap_ci(values, n_boot=2000, seed=0):
    v = values[np.isfinite(values)]
    if not v.size:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    means = v[idx].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def _retrain_job(attr, idx, X_test, y_test, seed):
    return np.asarray(attr.retrain_outputs(idx, X_test, y_test, seed=seed), np.float64)


def _load_cache(cache, key):
    """``{(subset, run): outputs}`` kept in the ``.npz`` file ``cache`` by an earlier run of the same protocol
    (``key``), or {}."""
    outs = {}
    if cache is not None and os.path.exists(cache):
        with np.load(cache) as z:
            if str(z["key"]) == key:
                for (j, r), v in zip(z["jobs"], z["values"]):
                    outs[(int(j), int(r))] = v
    return outs


def _noise_ceiling(outs, n_subsets, runs_per_subset, extra):
    """The noise ceiling: split-half agreement of the runs on the same subsets (None without two runs)."""
    ceiling = None
    if runs_per_subset >= 2:
        h = runs_per_subset // 2
        A = np.stack([np.mean([outs[(j, r)] for r in range(h)], axis=0) for j in range(n_subsets)])
        B = np.stack([np.mean([outs[(j, r)] for r in range(h, 2 * h)], axis=0) for j in range(n_subsets)])
        ceiling = float(np.nanmean(spearman_rows(A, B)))
    elif extra >= 3:
        A = np.stack([outs[(j, 0)] for j in range(extra)])
        B = np.stack([outs[(j, 1)] for j in range(extra)])
        if np.allclose(A, B, rtol=1e-9, atol=1e-12):
            ceiling = 1.0  # training is deterministic: the two runs agree exactly
        else:
            ceiling = float(np.nanmean(spearman_rows(A, B)))
    return ceiling


def _retrain_jobs(attr, todo, masks, X_test, y_test, seed_of, outs, n_jobs, bar, save_cache):
    """Retrain a model for every ``(subset, run)`` of ``todo`` (in parallel processes when there are several
    cores and jobs), putting its test outputs in ``outs`` and saving the cache as it goes."""
    workers = (os.cpu_count() or 1) if n_jobs is None else int(n_jobs)
    if workers > 1 and len(todo) > 4:
        from joblib import Parallel, delayed
        batch = max(workers * 4, 8)
        for s in range(0, len(todo), batch):
            chunk = todo[s:s + batch]
            vals = Parallel(n_jobs=workers)(delayed(_retrain_job)(
                attr, np.flatnonzero(masks[j]), X_test, y_test, seed_of(j, r)) for j, r in chunk)
            for jr, v in zip(chunk, vals):
                outs[jr] = v
            bar.update(len(chunk))
            save_cache()
    else:
        for k, (j, r) in enumerate(todo):
            outs[(j, r)] = _retrain_job(attr, np.flatnonzero(masks[j]), X_test, y_test, seed_of(j, r))
            bar.update()
            if k % 10 == 9:
                save_cache()
        save_cache()


def lds(attr, X_train, y_train, X_test, y_test, n_subsets=100, alpha=0.5, runs_per_subset=1, seed=0, *,
        protocol="fixed", scores=None, noise_subsets=None, n_jobs=None, progress=True, cache=None,
        n_boot=2000):
    """The linear datamodeling score of an attributor (see the module's description).

    Parameters
    ----------
    attr : Attributor (or any object with ``scores(X_test, y_test)`` and ``retrain_outputs(idx, X_test,
        y_test, seed)``)
    X_train, y_train : the training data the attributor was built on (its row count sets the subsets)
    X_test, y_test : the test points whose outputs are attributed
    n_subsets : int, default 100
    alpha : float, default 0.5
        Fraction of the training rows in each subset.
    runs_per_subset : int, default 1
        Models trained per subset (different seeds); the mean output is used.
    seed : int
    protocol : ``"fixed"`` or ``"bernoulli"``
    scores : ndarray (n_test, n_train), optional
        Precomputed attribution scores (for example another method's), evaluated on the same subsets.
    noise_subsets : int, optional
        With ``runs_per_subset == 1``, how many subsets get a second run for the noise ceiling (default
        ``min(n_subsets, 20)``; 0 to skip).
    n_jobs : int, optional
        Parallel retraining processes (default: the number of cores).
    progress : bool
        A progress bar on stderr for long runs.
    cache : str, optional
        A ``.npz`` file where retrained outputs are kept as they are computed; a run that stops can be
        resumed (the file is checked against the protocol, sizes and seed).

    Returns
    -------
    LDSResult
    """
    n = len(y_train)
    m = len(y_test)
    if runs_per_subset < 1:
        raise ValueError("runs_per_subset must be >= 1")
    t0 = time.perf_counter()
    S = attr.scores(X_test, y_test) if scores is None else np.asarray(scores)
    if S.shape != (m, n):
        raise ValueError(f"scores have shape {S.shape}, expected (n_test, n_train) = {(m, n)}")
    t_scores = time.perf_counter() - t0
    masks = subset_masks(n, n_subsets, alpha, protocol, seed)
    extra = (min(n_subsets, 20) if noise_subsets is None else int(noise_subsets)) if runs_per_subset == 1 else 0
    jobs = [(j, r) for j in range(n_subsets) for r in range(runs_per_subset)]
    jobs += [(j, 1) for j in range(extra)]
    key = hashlib.sha256(f"{protocol}|{alpha}|{n_subsets}|{runs_per_subset}|{extra}|{seed}|{n}|{m}".encode()
                         + masks.tobytes()[:1 << 16]).hexdigest()[:16]
    outs = _load_cache(cache, key)
    todo = [jr for jr in jobs if jr not in outs]
    t1 = time.perf_counter()
    bar = progress_bar(len(todo), "LDS retraining", progress, unit="models")

    def save_cache():
        if cache is None:
            return
        ks = sorted(outs)
        tmp = f"{cache}.tmp.npz"
        np.savez(tmp, key=key, jobs=np.array(ks, np.int64).reshape(-1, 2),
                 values=np.array([outs[k] for k in ks]).reshape(len(ks), m))
        os.replace(tmp, cache)

    def seed_of(j, r):
        return int(seed) * 1_000_003 + j * 101 + r

    try:
        _retrain_jobs(attr, todo, masks, X_test, y_test, seed_of, outs, n_jobs, bar, save_cache)
    finally:
        bar.close()
    t_retrain = time.perf_counter() - t1
    O = np.stack([np.mean([outs[(j, r)] for r in range(runs_per_subset)], axis=0) for j in range(n_subsets)])
    pred = masks.astype(np.float64) @ np.asarray(S, np.float64).T  # (n_subsets, n_test)
    per = spearman_rows(pred, O)
    rng = np.random.default_rng(seed + 7)
    R = rng.standard_normal((n, m))
    rnd = spearman_rows(masks.astype(np.float64) @ R, O)
    ceiling = _noise_ceiling(outs, n_subsets, runs_per_subset, extra)
    return LDSResult(mean=float(np.nanmean(per)), ci95=_bootstrap_ci(per, n_boot, seed), per_target=per,
                     random_baseline=float(np.nanmean(rnd)), random_ci95=_bootstrap_ci(rnd, n_boot, seed + 1),
                     noise_ceiling=ceiling, protocol=protocol, alpha=float(alpha), n_subsets=int(n_subsets),
                     runs_per_subset=int(runs_per_subset),
                     seconds={"scores": t_scores, "retraining": t_retrain, "jobs": len(todo)},
                     outputs=O, masks=masks)
