"""The TRAK reference implementation (PyPI ``traker``, MadryLab) run side by side with whence.

Two entry points, used by the CIFAR-2 benchmark (``bench_cifar.py``) and the Adult benchmark:

- :func:`traker_scores`: ``TRAKer`` on a torch classifier over one or several checkpoints (independently trained
  models), with its CPU projector (``BasicProjector``, Gaussian, generated block by block), the
  ``image_classification`` model output (correct-class margin, ``1 - p`` re-weighting), and its
  ``featurize`` / ``finalize_features`` / ``start_scoring_checkpoint`` / ``score`` / ``finalize_scores`` cycle.
- :func:`traker_linear_scores`: a binary logistic regression given as weights, wrapped as a torch
  ``Linear(d, 1)`` with TRAK's binary-classification output (margin ``(2y - 1) * logit``, out-to-loss
  ``1 - sigmoid(margin)``).

Both return ``(scores, seconds)``: a float32 ``(n_test, n_train)`` matrix (traker's own is
``(n_train, n_test)``; transposed here) and the wall-clock seconds of everything traker does (constructing the
``TRAKer`` and its projector, featurizing, finalizing, scoring), not the data preparation.

Settings: ``device="cpu"``; ``use_half_precision=False`` (float16 matmuls on CPU are slow in torch, and float32
is what a CPU user would choose: traker's own default ``True`` is for GPUs); ``lambda_reg`` is traker's default
0 unless given.  traker's progress bars and INFO logging are silenced for the duration of a call.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import shutil
import tempfile
import time

import numpy as np

__all__ = ["traker_scores", "traker_linear_scores", "traker_version"]


def traker_version():
    """The installed ``traker`` version, or None when it cannot be imported."""
    try:
        from importlib.metadata import version
        return version("traker")
    except Exception:  # noqa: BLE001
        return None


@contextlib.contextmanager
def _quiet():
    import trak.traker as tt
    old = tt.tqdm
    tt.tqdm = lambda it, *a, **k: it
    lg = logging.getLogger("TRAK")
    lvl = lg.level
    try:
        yield
    finally:
        tt.tqdm = old
        lg.setLevel(lvl)


def _batches(data, batch_size):
    """(x, y) tensor batches from a DataLoader-like iterable or an ``(X, y)`` pair of tensors/arrays."""
    import torch
    if isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = (torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for v in data)
        if X.dtype == torch.float64:
            X = X.float()
        for i in range(0, len(X), batch_size):
            yield X[i:i + batch_size], y[i:i + batch_size]
    else:
        for b in data:
            yield b[0], b[1]


def _count(data):
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return len(data[0])
    return len(data.dataset)


def _state_dict(ckpt):
    import torch
    if isinstance(ckpt, torch.nn.Module):
        return ckpt.state_dict()
    return ckpt


def traker_scores(model, train, test, task="image_classification", proj_dim=2048, checkpoints=None,
                  device="cpu", batch_size=128, lambda_reg=0.0, use_half_precision=False, seed=0):
    """TRAK scores of the PyPI ``traker`` for ``test`` against ``train``.

    Parameters
    ----------
    model : torch.nn.Module
        The architecture (its weights are replaced by each checkpoint's).
    train, test : DataLoader or (X, y)
        Training and target samples, in order.
    task : str or trak ``AbstractModelOutput``
        ``"image_classification"`` (multiclass margin) or ``"binary"`` (a one-logit model).
    proj_dim : int
        traker's projection dimension.
    checkpoints : list of state_dicts or modules, optional
        The independently trained models (traker's model ids 0, 1, ...); default: ``model`` itself.
    device, batch_size, lambda_reg, use_half_precision, seed
        Passed to ``TRAKer`` (``seed`` as ``projector_seed``).

    Returns
    -------
    (ndarray float32 (n_test, n_train), float seconds)
    """
    from trak import TRAKer

    if task == "binary":
        task = _binary_output()
    ckpts = [_state_dict(c) for c in (checkpoints if checkpoints is not None else [model])]
    net = copy.deepcopy(model).to(device).eval()
    n_train, n_test = _count(train), _count(test)
    tmp = tempfile.mkdtemp(prefix="whence-traker-")
    try:
        with _quiet():
            t0 = time.perf_counter()
            tr = TRAKer(model=net, task=task, train_set_size=n_train, save_dir=tmp, load_from_save_dir=True,
                        device=device, proj_dim=proj_dim, use_half_precision=use_half_precision,
                        projector_seed=seed, lambda_reg=lambda_reg, logging_level=logging.WARNING)
            for mid, sd in enumerate(ckpts):
                tr.load_checkpoint(sd, model_id=mid)
                for xb, yb in _batches(train, batch_size):
                    tr.featurize(batch=(xb.to(device), yb.to(device)), num_samples=len(xb))
            tr.finalize_features()
            _restore_projector(tr.projector)
            for mid, sd in enumerate(ckpts):
                tr.start_scoring_checkpoint(exp_name="test", checkpoint=sd, model_id=mid, num_targets=n_test)
                for xb, yb in _batches(test, batch_size):
                    tr.score(batch=(xb.to(device), yb.to(device)), num_samples=len(xb))
            S = np.asarray(tr.finalize_scores(exp_name="test"), dtype=np.float32).T.copy()
            seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return S, seconds


def traker_scores_sweep(model, train, test, task="image_classification", proj_dim=2048, checkpoints=None,
                        counts=None, lambda_regs=(0.0,), device="cpu", batch_size=128, use_half_precision=False,
                        seed=0):
    """traker's scores for the first ``M`` checkpoints, for every ``M`` in ``counts`` and every ``lambda_reg``,
    featurizing each checkpoint once.

    Each result is what :func:`traker_scores` with ``checkpoints[:M]`` and that ``lambda_reg`` computes (the same
    calls: ``featurize``, ``finalize_features``, ``score``, ``finalize_scores`` on the first ``M`` model ids), and
    its time is the sum of traker's own stages for those models, timed one by one: constructing the ``TRAKer``,
    featurizing each model's training set, finalizing its features with that ``lambda_reg``, its target gradients,
    and the final ``finalize_scores`` over the ``M`` models.

    Returns
    -------
    dict ``{(lambda_reg, M): {"scores": float32 (n_test, n_train), "wall_s": ..., "cpu_s": ...}}``
    """
    from trak import TRAKer

    if task == "binary":
        task = _binary_output()
    ckpts = [_state_dict(c) for c in (checkpoints if checkpoints is not None else [model])]
    counts = sorted(set(counts or [len(ckpts)]))
    if counts[-1] > len(ckpts) or counts[0] < 1:
        raise ValueError(f"counts {counts} do not fit {len(ckpts)} checkpoints")
    used = ckpts[:counts[-1]]
    net = copy.deepcopy(model).to(device).eval()
    n_train, n_test = _count(train), _count(test)
    tmp = tempfile.mkdtemp(prefix="whence-traker-")
    clock = lambda: (time.perf_counter(), time.process_time())  # noqa: E731

    def since(t):
        w, c = clock()
        return np.array([w - t[0], c - t[1]])

    out = {}
    try:
        with _quiet():
            t = clock()
            tr = TRAKer(model=net, task=task, train_set_size=n_train, save_dir=tmp, load_from_save_dir=True,
                        device=device, proj_dim=proj_dim, use_half_precision=use_half_precision,
                        projector_seed=seed, lambda_reg=float(lambda_regs[0]), logging_level=logging.WARNING)
            t_init = since(t)
            t_feat = []
            for mid, sd in enumerate(used):
                t = clock()
                tr.load_checkpoint(sd, model_id=mid)
                for xb, yb in _batches(train, batch_size):
                    tr.featurize(batch=(xb.to(device), yb.to(device)), num_samples=len(xb))
                t_feat.append(since(t))
            t_target = [None] * len(used)
            for li, lam in enumerate(lambda_regs):
                tr.score_computer.lambda_reg = float(lam)
                t_fin = []
                for mid in range(len(used)):
                    tr.saver.model_ids[mid]["is_finalized"] = 0
                    t = clock()
                    _restore_projector(tr.projector, any_blocks=True)   # a second free_memory() would fail
                    tr.finalize_features(model_ids=[mid])
                    _restore_projector(tr.projector)
                    t_fin.append(since(t))
                if li == 0:      # the target gradients do not depend on lambda_reg
                    for mid, sd in enumerate(used):
                        t = clock()
                        tr.start_scoring_checkpoint(exp_name="test", checkpoint=sd, model_id=mid,
                                                    num_targets=n_test)
                        for xb, yb in _batches(test, batch_size):
                            tr.score(batch=(xb.to(device), yb.to(device)), num_samples=len(xb))
                        t_target[mid] = since(t)
                for M in counts:
                    t = clock()
                    S = np.asarray(tr.finalize_scores(exp_name="test", model_ids=list(range(M))),
                                   dtype=np.float32).T.copy()
                    tot = t_init + since(t) + sum(t_feat[m] + t_fin[m] + t_target[m] for m in range(M))
                    out[(float(lam), M)] = {"scores": S, "wall_s": float(tot[0]), "cpu_s": float(tot[1])}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _restore_projector(P, any_blocks=False):
    """Work around a traker 0.3.2 bug: ``finalize_features`` frees the ``BasicProjector``'s matrix, and with a
    single block (``proj_dim <= 100``) and a single model ``project`` never regenerates it (AttributeError
    ``proj_matrix``).  Regenerating it from the saved generator state gives the same matrix as featurizing used.
    ``any_blocks``: regenerate whatever the number of blocks (``free_memory`` itself fails when called twice)."""
    if getattr(P, "proj_matrix_available", True) is False and (any_blocks or getattr(P, "num_blocks", 0) == 1):
        P.generate_sketch_matrix(P.generator_states[0])


def _binary_output():
    """TRAK's binary-classification model output for a one-logit model: margin ``(2y - 1) * logit`` (the
    log-odds of the correct class) and out-to-loss ``1 - sigmoid(margin)``."""
    import torch
    from trak.modelout_functions import AbstractModelOutput

    class BinaryModelOutput(AbstractModelOutput):
        def __init__(self):
            super().__init__()

        @staticmethod
        def get_output(model, weights, buffers, x, label):
            z = torch.func.functional_call(model, (weights, buffers), x.unsqueeze(0)).reshape(())
            return (2 * label.to(z.dtype) - 1) * z

        def get_out_to_loss_grad(self, model, weights, buffers, batch):
            x, label = batch
            z = torch.func.functional_call(model, (weights, buffers), x).reshape(-1)
            margin = (2 * label.to(z.dtype) - 1) * z
            return (1 - torch.sigmoid(margin)).clone().detach().unsqueeze(-1)

    return BinaryModelOutput()


def traker_linear_scores(W, b, X_train, y_train, X_test, y_test, proj_dim=2048, batch_size=1024,
                         lambda_reg=0.0, seed=0):
    """traker on a binary logistic regression given by its weights ``W`` (d,) or (1, d) and intercept ``b``.

    The model is ``torch.nn.Linear(d, 1)`` in float32 with TRAK's binary output (see :func:`_binary_output`);
    labels are 0/1.  ``proj_dim`` is capped at the number of parameters ``d + 1``: projecting to more dimensions
    than there are parameters adds nothing, and leaves traker's ``X^T X`` (k x k, rank <= d + 1) singular, which
    it would invert with ``lambda_reg = 0``.  Returns ``(scores float32 (n_test, n_train), seconds)``.
    """
    import torch
    W = np.asarray(W, np.float32).reshape(1, -1)
    d = W.shape[1]
    proj_dim = int(min(proj_dim, d + 1))
    lin = torch.nn.Linear(d, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(W))
        lin.bias.copy_(torch.as_tensor(np.asarray(b, np.float32).reshape(1)))
    Xtr = torch.as_tensor(np.asarray(X_train, np.float32))
    Xte = torch.as_tensor(np.asarray(X_test, np.float32))
    ytr = torch.as_tensor(np.asarray(y_train).astype(np.int64))
    yte = torch.as_tensor(np.asarray(y_test).astype(np.int64))
    if set(np.unique(ytr.numpy())) - {0, 1}:
        raise ValueError("traker_linear_scores expects 0/1 labels")
    return traker_scores(lin, (Xtr, ytr), (Xte, yte), task="binary", proj_dim=proj_dim, checkpoints=[lin],
                         batch_size=batch_size, lambda_reg=lambda_reg, seed=seed)
