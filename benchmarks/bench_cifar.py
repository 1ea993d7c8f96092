"""Benchmark: TRAK-style attribution of a small ResNet on CIFAR-2 (cat/dog), whence beside ``traker`` (issue 6).

Data: the real CIFAR-10 cat/dog subset in ``../shared/data/cifar/cifar2_cat_dog.npz`` (989 training, 191 test
images), normalised per channel with the training statistics.

Model: a small ResNet-style CNN (conv-BN-ReLU stages with max pooling, two residual blocks, global max pool,
linear head; ``width = 16`` channels in the first stage, 116k parameters) trained with Adam and a one-cycle schedule for a few epochs,
random horizontal flips, fixed seeds: seconds per model on a CPU.  ``M`` independently trained models (seeds
0..M-1) form the ensembles, for M in (1, 5, 10) (quick: 1, 2).

Methods, on the same models, with the same ``proj_dim`` (2048):

- whence: :class:`whence.attribution.trak.TorchAttributor` (full per-sample gradients with ``torch.func``, SJLT
  projection, its default ridge ``lam = 10 x`` the Gram's mean eigenvalue, ``1 - p`` weighting per model, average
  over models); also its ``last_layer`` mode (information only);
- traker: the PyPI reference implementation (``peers_traker``: CPU ``BasicProjector``, float32) with its default
  ``lambda_reg = 0``; and, for information, with ``lambda_reg`` set to whence's ridge of the same relative size
  (traker's features are ``P g / sqrt(d)`` with a Gaussian ``P``, so whence's ``lam`` becomes ``lam k / d``): it
  says how much of the difference is the ridge.  Each model is featurized by traker once
  (``traker_scores_sweep``); the time of ``M`` models is the sum of traker's own stages for those models;
- random scores (the LDS harness's zero-mean baseline).

LDS: :func:`whence.attribution.lds`, fixed-size subsets (alpha = 0.5, subset seed ``LDS_SEED = 1``: whence's
ridge default was chosen on other subsets, seed 0), one model retrained from scratch per subset (same recipe),
the correct-class margin on every test image; Spearman per test image, mean with a bootstrap 95 % CI; a noise
ceiling from a second retraining on the first few subsets (split-half agreement of two single retrainings: a
perfect predictor of the mean output can exceed it, up to about its square root).  All methods are scored on the
*same* subsets and retrained outputs (the harness's cache); the difference whence - traker gets a paired
bootstrap CI over test images.

Time: wall-clock and process CPU seconds of each method's whole attribution run (featurising the training set,
solving, featurising and scoring the test set), the models already trained, after an untimed warm-up of each
(imports, first ``torch.func`` call).  Everything runs with one torch thread: on this shared 2-core machine two
OpenMP threads spin when the other core is busy (one model trained in 7 s of CPU with one thread, 144 s with
two), which would make CPU times meaningless.  The target is whence's CPU time <= 1/5 of traker's at every model
count, with LDS >= traker's.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar" / "cifar2_cat_dog.npz"

FULL = dict(width=16, epochs=8, counts=(1, 5, 10), n_subsets=40, noise_subsets=10, proj_dim=2048)
QUICK = dict(width=16, epochs=8, counts=(1, 2), n_subsets=10, noise_subsets=3, proj_dim=2048)
LDS_SEED = 1        # subsets and retraining seeds; whence's ridge default was chosen on seed 0's subsets


# ------------------------------------------------------------------------------------------------ data, model

def load_cifar2(path=DATA):
    """(X_train, y_train, X_test, y_test) as torch tensors, images (n, 3, 32, 32) float32 normalised."""
    import torch
    with np.load(path) as d:
        xtr, ytr, xte, yte = d["x_train"], d["y_train"], d["x_test"], d["y_test"]
    Xtr = torch.from_numpy(xtr).permute(0, 3, 1, 2).float().div_(255)
    Xte = torch.from_numpy(xte).permute(0, 3, 1, 2).float().div_(255)
    mean = Xtr.mean((0, 2, 3), keepdim=True)
    std = Xtr.std((0, 2, 3), keepdim=True)
    return ((Xtr - mean) / std).contiguous(), torch.from_numpy(ytr).long(), \
        ((Xte - mean) / std).contiguous(), torch.from_numpy(yte).long()


def _cbr(i, o):
    import torch.nn as nn
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())


def small_resnet(width=16, classes=2):
    """A ResNet-9-like CNN, scaled down: conv(w) pool conv(2w) pool res(2w) conv(4w) pool res(4w) maxpool fc."""
    import torch.nn as nn

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.a, self.b = _cbr(c, c), _cbr(c, c)

        def forward(self, x):
            return x + self.b(self.a(x))

    w = width
    return nn.Sequential(_cbr(3, w), nn.MaxPool2d(2), _cbr(w, 2 * w), nn.MaxPool2d(2), Residual(2 * w),
                         _cbr(2 * w, 4 * w), nn.MaxPool2d(2), Residual(4 * w), nn.AdaptiveMaxPool2d(1),
                         nn.Flatten(), nn.Linear(4 * w, classes))


def train_model(X, y, seed, width=16, epochs=8, batch_size=64, lr=3e-3):
    """Train ``small_resnet(width)`` from scratch on (X, y): Adam, one-cycle, random flips, seeded."""
    import torch
    if os.environ.get("WHENCE_BENCH_PID") not in (None, str(os.getpid())):
        torch.set_num_threads(1)   # a retraining worker: one thread each, the workers fill the cores
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = small_resnet(width)
    n = len(X)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            xb = X[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = torch.nn.functional.cross_entropy(net(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def _train_subset(sub, seed, width=16, epochs=8):
    return train_model(sub[0], sub[1], seed, width=width, epochs=epochs)


def _accuracy(net, X, y):
    import torch
    with torch.no_grad():
        return float((net(X).argmax(1) == y).float().mean())


def _paired_ci(a, b, n_boot=2000, seed=0):
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    d = d[np.isfinite(d)]
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (n_boot, d.size))].mean(1)
    return float(d.mean()), [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


# ------------------------------------------------------------------------------------------------ the run

def _lds_entry(r):
    return {"lds": r.mean, "ci95": list(r.ci95)}


def run(quick=False, log=print, **override):
    import torch

    from whence.attribution import lds
    from whence.attribution.trak import TorchAttributor

    cfg = dict(QUICK if quick else FULL)
    cfg.update(override)
    res = {"name": "cifar", "mode": "quick" if quick else "full",
           "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
           "problems": [], "skipped": [], "table_rows": []}
    if not DATA.exists():
        res["skipped"].append(f"CIFAR-2 data not found at {DATA}")
        res["table_rows"].append(("CIFAR-2 LDS / time beside traker (issue 6)", "LDS >= traker, <= 1/5 CPU time",
                                  "—", "NOT RUN", f"no data at {DATA}"))
        return res
    try:
        import peers_traker
    except ImportError:
        import sys
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import peers_traker
    os.environ["WHENCE_BENCH_PID"] = str(os.getpid())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="whence-bench-cifar-")
    try:
        _run(res, cfg, log, tmp, lds, TorchAttributor, peers_traker)
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def _run(res, cfg, log, tmp, lds, TorchAttributor, peers_traker):
    Xtr, ytr, Xte, yte = load_cifar2()
    width, epochs, k = cfg["width"], cfg["epochs"], cfg["proj_dim"]
    counts = list(cfg["counts"])
    d = sum(p.numel() for p in small_resnet(width).parameters())
    res.update(n_train=len(Xtr), n_test=len(Xte), parameters=d, threads=1,
               traker_version=peers_traker.traker_version())
    log(f"  CIFAR-2: {len(Xtr)} train / {len(Xte)} test; small ResNet width {width} ({d} parameters), "
        f"{epochs} epochs; models {counts}; proj_dim {k}; one torch thread")

    # ---- the ensemble
    t0 = time.perf_counter()
    models = [train_model(Xtr, ytr, seed, width, epochs) for seed in range(max(counts))]
    res["train_seconds_per_model"] = (time.perf_counter() - t0) / len(models)
    accs = [_accuracy(m, Xte, yte) for m in models]
    res["test_accuracy"] = {"mean": float(np.mean(accs)), "min": float(np.min(accs)), "max": float(np.max(accs))}
    log(f"  trained {len(models)} models, {res['train_seconds_per_model']:.1f} s each; test accuracy "
        f"{np.mean(accs):.3f} ({np.min(accs):.3f}-{np.max(accs):.3f})")
    states = [m.state_dict() for m in models]
    train_fn = functools.partial(_train_subset, width=width, epochs=epochs)

    def whence_attr(M, mode="full", X=Xtr, y=ytr):
        return TorchAttributor(small_resnet(width), (X, y), task="classification", checkpoints=states[:M],
                               proj_dim=k, mode=mode, train_fn=train_fn, batch_size=128, seed=0)

    def timed(fn):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - w0, time.process_time() - c0

    # ---- warm-up (imports, first torch.func call), untimed, for both methods
    whence_attr(1, X=Xtr[:64], y=ytr[:64]).scores(Xte[:8], yte[:8])
    peers_traker.traker_scores(small_resnet(width), (Xtr[:64], ytr[:64]), (Xte[:8], yte[:8]), proj_dim=k,
                               checkpoints=states[:1])

    # ---- the retrained outputs, once: every method below is scored on them (the harness's cache)
    cache = os.path.join(tmp, "lds_outputs.npz")
    lds_kw = dict(n_subsets=cfg["n_subsets"], alpha=0.5, runs_per_subset=1, seed=LDS_SEED,
                  noise_subsets=cfg["noise_subsets"], cache=cache, progress=False)
    attr0 = whence_attr(1)
    warm = np.random.default_rng(1).standard_normal((len(Xte), len(Xtr))).astype(np.float32)
    t0 = time.perf_counter()
    base = lds(attr0, Xtr, ytr, Xte, yte, scores=warm, **lds_kw)
    res["retrain_seconds"] = time.perf_counter() - t0
    res["random_baseline"] = {"mean": base.random_baseline, "ci95": list(base.random_ci95)}
    res["noise_ceiling"] = base.noise_ceiling
    res["lds_protocol"] = {"protocol": "fixed", "alpha": 0.5, "n_subsets": cfg["n_subsets"], "runs_per_subset": 1,
                           "noise_subsets": cfg["noise_subsets"], "seed": LDS_SEED}
    log(f"  retrained {cfg['n_subsets']} + {cfg['noise_subsets']} subset models in {res['retrain_seconds']:.0f} s; "
        f"noise ceiling (split-half) {base.noise_ceiling:.3f}; random {base.random_baseline:+.3f}")

    def evaluate(S):
        return lds(attr0, Xtr, ytr, Xte, yte, scores=S, **lds_kw)

    rows = {M: {} for M in counts}
    per = {}
    lam_used = []
    for M in counts:
        for key, mode in (("whence", "full"), ("whence_last_layer", "last_layer")):
            attr = whence_attr(M, mode)
            S, wall, cpu = timed(lambda: attr.scores(Xte, yte))
            r = evaluate(S)
            rows[M][key] = {**_lds_entry(r), "wall_s": wall, "cpu_s": cpu}
            per[(key, M)] = r.per_target
            if mode == "full":
                lam_used.append(float(np.mean(attr.lam_)))
        log(f"  whence M={M:>2}: LDS {rows[M]['whence']['lds']:.3f} {rows[M]['whence']['cpu_s']:.1f} s CPU; "
            f"last layer {rows[M]['whence_last_layer']['lds']:.3f} {rows[M]['whence_last_layer']['cpu_s']:.1f} s")

    # ---- traker: its defaults (lambda_reg 0), and, for information, the ridge whence uses (same relative size)
    lam_t = float(np.mean(lam_used)) * k / d      # traker's features are P g / sqrt(d), P Gaussian: |x|^2 ~ k/d |g|^2
    res["traker_lambda_matched"] = lam_t
    try:
        sweep = peers_traker.traker_scores_sweep(small_resnet(width), (Xtr, ytr), (Xte, yte),
                                                 task="image_classification", proj_dim=k, checkpoints=states,
                                                 counts=counts, lambda_regs=(0.0, lam_t), device="cpu",
                                                 batch_size=128)
    except Exception as e:  # noqa: BLE001
        sweep = None
        res["skipped"].append(f"traker: {type(e).__name__}: {e}")
        log(f"  traker not run: {type(e).__name__}: {e}")
    for M in counts:
        row = rows[M]
        if sweep is None:
            row["traker"] = None
            continue
        for key, lam in (("traker", 0.0), ("traker_lambda_matched", lam_t)):
            v = sweep[(float(lam), M)]
            S = v["scores"]
            if not np.isfinite(S).all():
                res["problems"].append(f"{key} M={M}: {int((~np.isfinite(S)).sum())} non-finite scores (set to 0)")
                S = np.nan_to_num(S, nan=0.0, posinf=0.0, neginf=0.0)
            r = evaluate(S)
            row[key] = {**_lds_entry(r), "wall_s": v["wall_s"], "cpu_s": v["cpu_s"], "lambda_reg": lam}
            per[(key, M)] = r.per_target
        diff, ci = _paired_ci(per[("whence", M)], per[("traker", M)])
        row["whence_minus_traker"] = {"mean": diff, "ci95": ci}
        diff, ci = _paired_ci(per[("whence", M)], per[("traker_lambda_matched", M)])
        row["whence_minus_traker_lambda_matched"] = {"mean": diff, "ci95": ci}
        row["cpu_ratio"] = row["whence"]["cpu_s"] / row["traker"]["cpu_s"]
        row["wall_ratio"] = row["whence"]["wall_s"] / row["traker"]["wall_s"]
        row["pass_lds"] = bool(row["whence"]["lds"] >= row["traker"]["lds"])
        row["pass_time"] = bool(row["cpu_ratio"] <= 0.2)
        t, tm = row["traker"], row["traker_lambda_matched"]
        log(f"  traker M={M:>2}: LDS {t['lds']:.3f} {t['cpu_s']:.1f} s CPU (whence/traker CPU "
            f"{row['cpu_ratio']:.3f}); with whence's ridge {tm['lds']:.3f}")
    res["models"] = {str(M): v for M, v in rows.items()}

    # ---- table rows for the summary
    for M, row in rows.items():
        w, t = row["whence"], row.get("traker")
        if t is None:
            res["table_rows"].append((f"CIFAR-2 small ResNet, {M} model(s): LDS / CPU time",
                                      "LDS >= traker, <= 1/5 CPU time", f"{w['lds']:.3f}, {w['cpu_s']:.1f} s",
                                      "NOT RUN", "traker not run"))
            continue
        dd, tm = row["whence_minus_traker"], row["traker_lambda_matched"]
        res["table_rows"].append((
            f"CIFAR-2 small ResNet ({d} params), {M} model(s): LDS whence vs traker", ">= traker",
            f"{w['lds']:.3f} [{w['ci95'][0]:.3f}, {w['ci95'][1]:.3f}] vs {t['lds']:.3f} "
            f"[{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}]", "PASS" if row["pass_lds"] else "MISS",
            f"paired difference {dd['mean']:+.3f} [{dd['ci95'][0]:+.3f}, {dd['ci95'][1]:+.3f}]; traker with "
            f"whence's ridge (lambda_reg {lam_t:.3g}) {tm['lds']:.3f}; last-layer mode "
            f"{row['whence_last_layer']['lds']:.3f}; random {res['random_baseline']['mean']:+.3f}; split-half "
            f"noise ceiling {res['noise_ceiling']:.3f}; {cfg['n_subsets']} subsets, alpha 0.5"))
        res["table_rows"].append((
            f"CIFAR-2, {M} model(s): attribution CPU time whence / traker", "<= 0.2",
            f"{row['cpu_ratio']:.3f} ({w['cpu_s']:.1f} s vs {t['cpu_s']:.1f} s)",
            "PASS" if row["pass_time"] else "MISS",
            f"wall {w['wall_s']:.1f} s vs {t['wall_s']:.1f} s; featurize + solve + score, proj_dim {k}, one "
            f"thread; traker {res.get('traker_version')} BasicProjector, float32"))
    return res


if __name__ == "__main__":
    import json
    import sys
    r = run(quick="--quick" in sys.argv)
    print(json.dumps({k: v for k, v in r.items() if k != "table_rows"}, indent=1))
