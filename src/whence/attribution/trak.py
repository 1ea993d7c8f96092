"""TRAK-style attribution for torch models: per-sample gradients, a random projection, ensembles.

For each of ``M`` independently trained models (``checkpoints``) with parameters ``theta_m``:

1. the *output* of a sample ``z = (x, y)`` is the correct-class margin for classifiers,
   ``f = logit_y - logsumexp_{c != y} logit_c`` (``log p / (1 - p)``; for a one-logit binary model
   ``(2y - 1) * logit``), the prediction for regressors;
2. the per-sample gradients ``grad_theta f(z_i)`` of the training set are computed with ``torch.func``
   (``vmap(grad(functional_call))``), in batches, and projected to ``k = proj_dim`` dimensions with a random
   projection that holds O(parameters) memory (:class:`~whence.attribution.projection.SJLTProjection` by default,
   or the blocked dense :class:`~whence.attribution.projection.RademacherProjection`), giving the features
   ``Phi_m`` (n, k), kept in a :class:`~whence.attribution.gradient_store.GradientStore` (in memory, or a
   memory-mapped file per model under ``store_path``) with the ``q`` weights below;
3. the score of training row ``i`` for a target ``x`` is the TRAK estimator

       tau_m(x)_i = phi_m(x)^T (Phi_m^T Phi_m + lam_m I)^-1 phi_m(z_i) * q_m(z_i)

   with ``q = 1 - p`` (``p`` the probability of the correct class, ``sigmoid(f)``: TRAK's "Q" term, the
   derivative of the loss with respect to the output) for classifiers and ``q = y - f`` (the residual) for
   squared-error regression;
4. the scores are averaged over the ``M`` models.

``lam_m`` defaults to ``lam_rel * trace(Phi_m^T Phi_m) / min(k, n)``, ``lam_rel`` times the mean nonzero
eigenvalue of the Gram, with ``lam_rel = 10`` in full mode and ``1`` in last-layer mode; pass ``lam`` (absolute)
or ``lam_rel`` to override.  Why so much ridge: a network trained for a few epochs is far from the minimum of its
loss, and a strong ridge (like early stopping) keeps the few dominant directions of the Gram inverted and
treats the rest as a gradient dot product.  It also keeps the solve well posed when ``k`` exceeds the number of
training rows (the Gram is then singular; the reference implementation's ``lambda_reg = 0`` then inverts
rounding noise).  These defaults were chosen on CIFAR-2 with a small ResNet (``benchmarks/bench_cifar.py``) on
LDS subsets other than the reported ones: full-gradient LDS with 5 models rose from 0.12 (``lam_rel = 1e-2``) to
0.28 (``3`` to ``10``) and fell again beyond ``30``; last-layer LDS was best at ``1``.  For a convex model trained to
convergence (where the TRAK estimate approaches the influence function) pass a small ``lam_rel`` (say ``1e-6``).
Each model gets its own projection seed (``seed + m``), so projection errors do not repeat across the ensemble.

When ``proj_dim`` is at least the number of parameters the gradients are used as they are (no projection).

``mode="last_layer"`` takes the gradient with respect to the last ``torch.nn.Linear`` layer only, in closed form:
``d f / d W = r h^T`` and ``d f / d b = r``, with ``h`` the layer's input and ``r = d f / d logits`` (the one-hot
of the label minus the softmax over the other classes); one forward pass, no per-sample backward.

Examples
--------
>>> import torch
>>> from whence.attribution.trak import TorchAttributor
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> X = torch.randn(40, 3); y = (X[:, 0] > 0).long()
>>> net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
>>> attr = TorchAttributor(net, (X, y), task="classification", proj_dim=16)
>>> S = attr.scores(X[:5], y[:5])
>>> S.shape, S.dtype
((5, 40), dtype('float32'))
"""

from __future__ import annotations

import copy
import math
import os
import time

import numpy as np

from .._extras import require

require("whence.attribution.trak", "torch")

import torch  # noqa: E402

from ..errors import UnsupportedModelError
from .explain import Explanation
from .model_math import has_lineage

__all__ = ["TorchAttributor", "UnsupportedModelError"]


_TASKS = ("classification", "regression")
_MODES = ("full", "last_layer")
_PROJECTORS = ("sjlt", "rademacher")
LAM_REL = {"full": 10.0, "last_layer": 1.0}   # see the module's description


# --------------------------------------------------------------------------------------------- helpers

def _untracked_values(X):
    """The values of a tracked array without its lineage (any other object as it is)."""
    try:
        from ..tracked import plain
        return plain(X)
    except Exception:  # noqa: BLE001
        return X


def _has_lineage(X):
    """:func:`~whence.attribution.model_math.has_lineage`, False when the look-up fails."""
    try:
        return has_lineage(X)
    except Exception:  # noqa: BLE001
        return False


def _as_tensor(X, name, dtype=None):
    if isinstance(X, torch.Tensor):
        T = X.detach()
    else:
        A = np.asarray(_untracked_values(X))
        if A.dtype == object:
            raise TypeError(f"{name}: expected a numeric array, got dtype object")
        A = np.ascontiguousarray(A)
        if not A.flags.writeable:           # torch warns on read-only memory
            A = A.copy()
        T = torch.from_numpy(A)
    if dtype is not None and T.is_floating_point():
        T = T.to(dtype)
    return T


def _check_finite(T, name):
    if T.is_floating_point() and not bool(torch.isfinite(T).all()):
        bad = int((~torch.isfinite(T)).reshape(len(T), -1).any(1).sum()) if T.ndim else 1
        raise ValueError(f"{name} contains NaN or infinite values ({bad} rows)")


def _labels(y, task, name):
    """Labels as a tensor: int64 class indices for classification, float32 targets for regression."""
    y = _as_tensor(y, name)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {tuple(y.shape)}")
    if task == "classification":
        if y.is_floating_point():
            if not bool(torch.isfinite(y).all()) or not bool((y == torch.round(y)).all()):
                raise ValueError(f"{name}: classification labels must be integer class indices")
        y = y.to(torch.int64)
        if len(y) and int(y.min()) < 0:
            raise ValueError(f"{name}: class labels must be >= 0, got {int(y.min())}")
    else:
        y = y.to(torch.float32)
        _check_finite(y, name)
    return y


def _state_dict(ckpt, i):
    if isinstance(ckpt, torch.nn.Module):
        return None
    if isinstance(ckpt, dict):
        return ckpt
    raise TypeError(f"checkpoints[{i}] must be a state_dict or a torch.nn.Module, got {type(ckpt).__name__}")


def _margin_from_logits(z, y, task):
    """The attributed output of each sample from the model's raw output ``z`` (B, C) or (B,)."""
    if z.ndim == 1:
        z = z[:, None]
    if task == "regression":
        return z[:, 0]
    C = z.shape[1]
    if C == 1:
        return (2 * y.to(z.dtype) - 1) * z[:, 0]
    mask = torch.arange(C, device=z.device)[None, :] == y[:, None]
    zy = (z * mask).sum(1)
    others = torch.where(mask, torch.full_like(z, -math.inf), z)
    return zy - torch.logsumexp(others, 1)


def _q_weight(out, y, task):
    """TRAK's out-to-loss term: 1 - p (classification, p = sigmoid(margin)) or the residual y - f."""
    if task == "regression":
        return y.to(out.dtype) - out
    return torch.sigmoid(-out)


def _margin_grad_wrt_logits(z, y, task):
    """d output / d logits (B, C) for the last-layer closed form."""
    if z.ndim == 1:
        z = z[:, None]
    B, C = z.shape
    if task == "regression":
        return torch.ones(B, 1, dtype=z.dtype)
    if C == 1:
        return (2 * y.to(z.dtype) - 1)[:, None]
    mask = torch.arange(C)[None, :] == y[:, None]
    others = torch.where(mask, torch.full_like(z, -math.inf), z)
    soft = torch.softmax(others, 1)
    return mask.to(z.dtype) - soft


# --------------------------------------------------------------------------------------------- the class

class TorchAttributor:
    """TRAK-style attribution of a torch model's outputs to its training rows (see the module's description).

    Parameters
    ----------
    model : torch.nn.Module
        The trained model (used as the architecture when ``checkpoints`` are state_dicts).  Taken as trained:
        torch keeps no "fitted" flag.  Put in ``eval()`` mode while gradients are taken (batch norm uses its
        running statistics, dropout is off); its mode is restored afterwards.
    train_data : (X, y) or torch Dataset
        The training rows, in order: tensors or arrays (``X`` may be a whence ``TrackedArray``: explanations
        then follow its lineage), or a map-style dataset of ``(x, y)`` pairs.
    task : {"classification", "regression"}
        Classification: integer labels, output = correct-class margin; regression: output = prediction.
    checkpoints : list of state_dicts or modules, optional
        Independently trained models (the ensemble); default ``[model]``.
    proj_dim : int, default 2048
        Dimension ``k`` of the projected gradients (no projection when the gradient is no longer than this).
    train_fn : callable, optional
        ``train_fn(train_subset, seed) -> trained model``: retrains from scratch on a subset (``(X, y)`` tensors,
        or a ``torch.utils.data.Subset``); needed by :meth:`retrain_outputs` (the LDS harness).
    lam : float, optional
        Absolute ridge term added to ``Phi^T Phi``; default ``lam_rel * trace(Phi^T Phi) / min(k, n)`` per model.
    lam_rel : float, optional
        Default 10 (``mode="full"``) or 1 (``mode="last_layer"``); see the module's description.
    mode : {"full", "last_layer"}
    batch_size : int, default 128
    seed : int, default 0
        Projection seed (model ``m`` uses ``seed + m``).
    device : str, default "cpu"
    projector : {"sjlt", "rademacher"}
    store_path : str, optional
        A directory: each model's projected training gradients (and their ``q`` weights) go to a memory-mapped
        :class:`~whence.attribution.gradient_store.GradientStore` file there (``trak_model{m}.bin``; reopen with
        ``GradientStore.open``).  Default: in memory.
    store_dtype : {"float32", "float16"}
        Dtype of the stored projected gradients.
    """

    def __init__(self, model, train_data, task="classification", checkpoints=None, proj_dim=2048, *,
                 train_fn=None, lam=None, lam_rel=None, mode="full", batch_size=128, seed=0, device="cpu",
                 projector="sjlt", store_path=None, store_dtype="float32"):
        if not isinstance(model, torch.nn.Module):
            kind = type(model).__module__.split(".")[0]
            hint = (" (a scikit-learn model: use whence.attribution.Attributor(model, X, y))"
                    if kind == "sklearn" else "")
            raise UnsupportedModelError(f"TorchAttributor needs a torch.nn.Module, got {type(model).__name__}{hint}")
        if task not in _TASKS:
            raise ValueError(f"task must be one of {_TASKS}, got {task!r}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if projector not in _PROJECTORS:
            raise ValueError(f"projector must be one of {_PROJECTORS}, got {projector!r}")
        if isinstance(proj_dim, bool) or not isinstance(proj_dim, (int, np.integer)) or proj_dim < 1:
            raise ValueError(f"proj_dim must be a positive integer, got {proj_dim!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if lam is not None and not (np.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
        if lam_rel is None:
            lam_rel = LAM_REL[mode]
        if not (np.isfinite(lam_rel) and lam_rel >= 0):
            raise ValueError(f"lam_rel must be a finite number >= 0, got {lam_rel!r}")
        if train_fn is not None and not callable(train_fn):
            raise TypeError("train_fn must be callable: train_fn(train_subset, seed) -> trained model")
        if store_dtype not in ("float32", "float16"):
            raise ValueError(f"store_dtype must be 'float32' or 'float16', got {store_dtype!r}")
        self.model = model
        self.task = task
        self.mode = mode
        self.proj_dim = int(proj_dim)
        self.train_fn = train_fn
        self.lam = None if lam is None else float(lam)
        self.lam_rel = float(lam_rel)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.device = torch.device(device)
        self.projector = projector
        self.store_path = store_path
        self.store_dtype = store_dtype
        self.checkpoints = [model] if checkpoints is None else list(checkpoints)
        if not self.checkpoints:
            raise ValueError("checkpoints is empty: give at least one trained model or state_dict")
        for i, c in enumerate(self.checkpoints):
            _state_dict(c, i)
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]
        if not self._names:
            raise UnsupportedModelError(f"{type(model).__name__} has no trainable parameters to attribute")
        self.n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        # floating-point inputs are cast to the model's dtype; integer inputs (token ids) are left as they are
        self._dtype = next(p for p in model.parameters() if p.requires_grad).dtype
        if not self._dtype.is_floating_point:
            raise UnsupportedModelError(f"{type(model).__name__} has non-floating-point parameters")

        # ---- the training data
        self.train = None
        if isinstance(train_data, torch.utils.data.Dataset) and not isinstance(train_data, (tuple, list)):
            self.dataset = train_data
            self.X = self.y = None
            self.n_train = len(train_data)
            x0, _ = train_data[0]
            self.x_shape = tuple(_as_tensor(x0, "train_data[0][0]").shape)
        elif isinstance(train_data, (tuple, list)) and len(train_data) == 2:
            X, y = train_data
            if _has_lineage(X):
                self.train = X
            self.dataset = None
            self.X = _as_tensor(X, "X_train", self._dtype)
            if self.X.ndim < 1:
                raise ValueError("X_train must have one row per training sample")
            self.y = _labels(y, task, "y_train")
            if len(self.X) != len(self.y):
                raise ValueError(f"X_train has {len(self.X)} rows but y_train has {len(self.y)}")
            _check_finite(self.X, "X_train")
            self.n_train = len(self.X)
            self.x_shape = tuple(self.X.shape[1:])
        else:
            raise TypeError("train_data must be a pair (X, y) of arrays/tensors or a torch Dataset of (x, y) pairs")
        if self.n_train < 1:
            raise ValueError("the training set is empty")
        self._last = None
        if mode == "last_layer":
            lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
            if not lin:
                raise UnsupportedModelError(f"mode='last_layer' needs a torch.nn.Linear output layer; "
                                            f"{type(model).__name__} has none")
            self._last = [n for n, m in model.named_modules() if m is lin[-1]][0]
        self._fitted = None
        self.lam_ = None
        self.seconds = {}
        self._check_output()

    # ------------------------------------------------------------------------------------ data access
    def _batches(self, X=None, y=None):
        """Yield (start, x, y) batches of the training data (or of the given tensors)."""
        bs = self.batch_size
        if X is not None:
            for s in range(0, len(X), bs):
                yield s, X[s:s + bs], y[s:s + bs]
            return
        if self.dataset is None:
            for s in range(0, self.n_train, bs):
                yield s, self.X[s:s + bs], self.y[s:s + bs]
            return
        for s in range(0, self.n_train, bs):
            items = [self.dataset[i] for i in range(s, min(self.n_train, s + bs))]
            xb = torch.stack([_as_tensor(a, "x", self._dtype) for a, _ in items])
            yb = _labels(torch.stack([torch.as_tensor(_untracked_values(b)) for _, b in items]), self.task, "y")
            _check_finite(xb, f"train_data rows {s}:{s + len(items)}")
            yield s, xb, yb

    def _model(self, m):
        c = self.checkpoints[m]
        if isinstance(c, torch.nn.Module):
            return c
        net = copy.deepcopy(self.model)
        try:
            net.load_state_dict(c)
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"checkpoints[{m}] does not fit the model {type(self.model).__name__}: {e}") from e
        return net

    def _check_output(self):
        """Run the model on two rows: the output shape must suit the task, labels must be in range."""
        _, xb, yb = next(self._batches())
        net = self.model
        was = net.training
        net.eval()
        try:
            with torch.no_grad():
                z = net(xb[:2].to(self.device))
        except Exception as e:  # noqa: BLE001
            raise UnsupportedModelError(f"{type(net).__name__} failed on training rows of shape "
                                        f"{tuple(xb.shape[1:])}: {e}") from e
        finally:
            net.train(was)
        if not isinstance(z, torch.Tensor) or z.ndim not in (1, 2) or len(z) != len(xb[:2]):
            raise UnsupportedModelError(f"{type(net).__name__} must return a (batch,) or (batch, outputs) tensor, "
                                        f"got {getattr(z, 'shape', type(z).__name__)}")
        C = 1 if z.ndim == 1 else z.shape[1]
        if self.task == "regression" and C != 1:
            raise UnsupportedModelError(f"task='regression' needs one output per sample, the model gives {C}")
        self.n_outputs = C
        if self.task == "classification" and self.y is not None:
            top = int(self.y.max())
            limit = 2 if C == 1 else C
            if top >= limit:
                raise ValueError(f"y_train has class {top} but the model has {C} output"
                                 f"{'s' if C > 1 else ' (binary: labels 0/1)'}")

    def _check_test(self, X_test, y_test):
        X = _as_tensor(X_test, "X_test", self._dtype)
        if tuple(X.shape[1:]) != self.x_shape:
            raise ValueError(f"X_test rows have shape {tuple(X.shape[1:])}, the training rows {self.x_shape}")
        y = _labels(y_test, self.task, "y_test")
        if len(X) != len(y):
            raise ValueError(f"X_test has {len(X)} rows but y_test has {len(y)}")
        _check_finite(X, "X_test")
        if self.task == "classification" and len(y):
            limit = 2 if self.n_outputs == 1 else self.n_outputs
            if int(y.max()) >= limit:
                raise ValueError(f"y_test has class {int(y.max())}; the model has {self.n_outputs} output(s)")
        return X, y

    # ------------------------------------------------------------------------------------ gradients
    def _grad_fn(self, net):
        """(params, buffers, per-batch function) computing flat per-sample gradients and outputs of a batch."""
        task = self.task
        if self.mode == "last_layer":
            lin = dict(net.named_modules())[self._last]
            has_b = lin.bias is not None and lin.bias.requires_grad

            def fn(xb, yb):
                seen = {}
                h = lin.register_forward_hook(lambda mod, inp, out: seen.update(x=inp[0], z=out))
                try:
                    with torch.no_grad():
                        z = net(xb)
                finally:
                    h.remove()
                zl = seen["z"]
                if zl.numel() != z.numel() or not torch.equal(zl.reshape(z.shape), z):
                    raise UnsupportedModelError(
                        f"mode='last_layer': the output of the last Linear layer {self._last!r} is not the "
                        f"model's output (something follows it); use mode='full'")
                hx = seen["x"].reshape(len(xb), -1)
                zz = z if z.ndim == 2 else z[:, None]
                r = _margin_grad_wrt_logits(zz, yb, task)
                parts = [(r[:, :, None] * hx[:, None, :]).reshape(len(xb), -1)] if lin.weight.requires_grad \
                    else []
                if has_b:
                    parts.append(r)
                return torch.cat(parts, 1), _margin_from_logits(zz, yb, task)

            dim = (lin.weight.numel() if lin.weight.requires_grad else 0) + (lin.bias.numel() if has_b else 0)
            return fn, dim

        from torch.func import functional_call, grad_and_value, vmap
        names = self._names
        params = {n: p.detach() for n, p in net.named_parameters() if n in set(names)}
        frozen = {n: p.detach() for n, p in net.named_parameters() if n not in set(names)}
        buffers = {n: b.detach() for n, b in net.named_buffers()}
        const = {**frozen, **buffers}

        def single(p, x, y):
            z = functional_call(net, (p, const), (x.unsqueeze(0),))
            return _margin_from_logits(z, y.unsqueeze(0), task)[0]

        g1 = vmap(grad_and_value(single), in_dims=(None, 0, 0))

        def fn(xb, yb):
            g, out = g1(params, xb, yb)
            # the flat gradients laid out parameter-major, (d, B), and returned as a (B, d) view: the sparse
            # projection reads that layout without the transposed copy it would otherwise make
            B = len(xb)
            buf = torch.empty(self.n_params, B, dtype=out.dtype, device=out.device)
            off = 0
            for n in names:
                gi = g[n].reshape(B, -1)
                buf[off:off + gi.shape[1]].copy_(gi.T)
                off += gi.shape[1]
            return buf.T, out

        return fn, self.n_params

    def _projection(self, dim, m):
        if dim <= self.proj_dim:
            return None
        from .projection import RademacherProjection, SJLTProjection
        cls = SJLTProjection if self.projector == "sjlt" else RademacherProjection
        return cls(dim, self.proj_dim, seed=self.seed + m)

    def _features(self, net, fn, P, X=None, y=None, store=None):
        """Projected gradients and q-weights of the training set (into ``store``) or of (X, y) (returned)."""
        outs, feats = [], []
        for s, xb, yb in self._batches(X, y):
            xb, yb = xb.to(self.device), yb.to(self.device)
            g, out = fn(xb, yb)
            phi = g.detach() if P is None else P.project(g.detach())
            phi = phi.to("cpu", torch.float32).numpy()
            if not np.isfinite(phi).all():     # a NaN or inf gradient survives the projection
                raise ValueError(f"non-finite gradients for rows {s}:{s + len(xb)} (diverged model?)")
            if store is not None:
                store.write(s, phi)
            else:
                feats.append(phi)
            outs.append(out.detach().to("cpu", torch.float64))
        out = torch.cat(outs)
        return (None if store is not None else np.concatenate(feats)), out

    def _new_store(self, n, k, m):
        from .gradient_store import GradientStore
        path = None
        if self.store_path is not None:
            os.makedirs(self.store_path, exist_ok=True)
            path = os.path.join(self.store_path, f"trak_model{m}.bin")
        return GradientStore(path, n, k, dtype=self.store_dtype, mode="w+")

    # ------------------------------------------------------------------------------------ fitting
    def fit(self):
        """Featurize the training set for every model and factor each regularised Gram (done once, lazily)."""
        if self._fitted is not None:
            return self
        t0, c0 = time.perf_counter(), time.process_time()
        fitted = []
        t_grad = t_solve = 0.0
        for m in range(len(self.checkpoints)):
            net = self._model(m)
            was = net.training
            net.eval()
            try:
                ta = time.perf_counter()
                fn, dim = self._grad_fn(net)
                P = self._projection(dim, m)
                k = dim if P is None else self.proj_dim
                store = self._new_store(self.n_train, k, m)
                _, out = self._features(net, fn, P, store=store)
                q = _q_weight(out, self.y if self.y is not None else self._all_labels(), self.task)
                store.weights = q.numpy().astype(np.float32)     # TRAK's 1 - p, kept beside the gradients
                tb = time.perf_counter()
                kernel = self.n_train <= k
                if kernel:      # push-through: Phi_t (Phi^T Phi + lam)^-1 Phi^T = Phi_t Phi^T (Phi Phi^T + lam)^-1
                    M = torch.from_numpy(_cross64(store.array, store.array))
                else:
                    M = torch.from_numpy(np.asarray(store.gram(), np.float64))
                lam = (self.lam if self.lam is not None
                       else self.lam_rel * float(torch.trace(M)) / min(k, self.n_train))
                solver = _RidgeSolver(M, lam)
                t_grad += tb - ta
                t_solve += time.perf_counter() - tb
            finally:
                net.train(was)
            fitted.append({"store": store, "solver": solver, "kernel": kernel,
                           "q": q.numpy().astype(np.float32), "P": P, "dim": dim, "lam": lam, "k": k})
        self._fitted = fitted
        self.lam_ = [f["lam"] for f in fitted]
        self.seconds.update(featurize=t_grad, solve=t_solve, fit_wall=time.perf_counter() - t0,
                            fit_cpu=time.process_time() - c0)
        return self

    def _all_labels(self):
        return torch.cat([yb for _, _, yb in self._batches()])

    # ------------------------------------------------------------------------------------ scoring
    def scores(self, X_test, y_test):
        """TRAK scores: float32 (n_test, n_train), the effect of each training row on each test output
        (averaged over the models; positive: the row raised the output)."""
        X, y = self._check_test(X_test, y_test)
        self.fit()
        t0 = time.perf_counter()
        S = np.zeros((len(X), self.n_train), np.float32)
        for m, f in enumerate(self._fitted):
            net = self._model(m)
            was = net.training
            net.eval()
            try:
                fn, _ = self._grad_fn(net)
                phi, _ = self._features(net, fn, f["P"], X, y)
            finally:
                net.train(was)
            store = f["store"]
            if f["kernel"]:
                B = _cross64(phi, store.array)                                           # (m, n) = phi_t Phi^T
                Sm = f["solver"].solve(B.T).T.astype(np.float32)
                Sm *= f["q"][None, :]
            else:
                Qm = f["solver"].solve(phi.T.astype(np.float64)).T.astype(np.float32)   # (m, k)
                Sm = store.scores(Qm)                                                    # times the 1 - p weights
            S += Sm
        S /= len(self._fitted)
        self.seconds["score"] = time.perf_counter() - t0
        return S

    def outputs(self, X, y):
        """The attributed output (margin or prediction) of each row, float64 (n,), averaged over the models."""
        X, y = self._check_test(X, y)
        tot = np.zeros(len(X))
        for m in range(len(self.checkpoints)):
            tot += _model_outputs(self._model(m), X, y, self.task, self.batch_size, self.device)
        return tot / len(self.checkpoints)

    def explain(self, x, y):
        """The :class:`~whence.attribution.explain.Explanation` of one test sample's output."""
        X = _as_tensor(x, "x", self._dtype)
        if tuple(X.shape) == self.x_shape:
            X = X[None]
        yy = torch.as_tensor(_untracked_values(y)).reshape(-1)
        if len(X) != 1 or len(yy) != 1:
            raise ValueError(f"explain takes one sample of shape {self.x_shape} and one label")
        s = self.scores(X, yy)[0]
        out = float(self.outputs(X, yy)[0])
        label = (f"margin of class {int(yy[0])}" if self.task == "classification" else "prediction")
        return Explanation(s, train=self.train, output=out, label=label)

    def source_effects(self, *args, **kwargs):
        """Not available: counterfactual effects of source rows need the Hessian of the training objective,
        which a torch model's TRAK-style estimator does not have."""
        raise UnsupportedModelError(
            "counterfactual effects of source rows need a model family with a Hessian (the scikit-learn families "
            "of Attributor); a torch model's TRAK-style scores rank training rows but do not move the model")

    counterfactual = source_effects

    def retrain_outputs(self, train_idx, X_test, y_test, seed=0):
        """Outputs (float64, (n_test,)) on the test points of a model trained from scratch on rows ``train_idx``
        with ``train_fn``."""
        if self.train_fn is None:
            raise RuntimeError("retrain_outputs needs train_fn=callable(train_subset, seed) -> trained model")
        X, y = self._check_test(X_test, y_test)
        idx = np.asarray(train_idx, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_train):
            raise IndexError(f"train_idx out of range for {self.n_train} training rows")
        if self.dataset is not None:
            sub = torch.utils.data.Subset(self.dataset, idx.tolist())
        else:
            t = torch.from_numpy(idx)
            sub = (self.X[t], self.y[t])
        net = self.train_fn(sub, int(seed))
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"train_fn must return a torch.nn.Module, got {type(net).__name__}")
        return _model_outputs(net, X, y, self.task, self.batch_size, self.device)

    def __getstate__(self):
        # the fitted features stay behind when the attributor is sent to a retraining worker
        d = self.__dict__.copy()
        d["_fitted"] = None
        return d

    def __repr__(self):
        lam = (f"{self.lam:g}" if self.lam is not None else f"{self.lam_rel:g} x mean eigenvalue")
        state = "fitted" if self._fitted is not None else "not fitted"
        return (f"<whence TorchAttributor {type(self.model).__name__} ({self.n_params} parameters), "
                f"{self.task}, mode={self.mode}, {len(self.checkpoints)} model(s), {self.n_train} training rows, "
                f"proj_dim={self.proj_dim} ({self.projector}), lam={lam}, {state}"
                f"{', with lineage' if self.train is not None else ''}>")


def _cross64(A, B, budget=1 << 27):
    """``A @ B.T`` in float64 for (m, k) and (n, k) arrays, over column blocks (at most ``budget`` bytes of
    float64 copies at a time): the kernel form never holds a float64 copy of a wide feature matrix."""
    m, k = A.shape
    n = B.shape[0]
    step = max(1, budget // (8 * max(1, m + n)))
    out = np.zeros((m, n))
    for c in range(0, k, step):
        a = np.asarray(A[:, c:c + step], np.float64)
        b = a if B is A else np.asarray(B[:, c:c + step], np.float64)
        out += a @ b.T
    return out


class _RidgeSolver:
    """Solves ``(M + lam I) X = B`` for a symmetric positive semi-definite ``M`` (float64): Cholesky, or an
    eigendecomposition (clipping negative rounding) when the factorisation fails (``lam`` = 0, singular M)."""

    def __init__(self, M, lam):
        M = torch.as_tensor(M, dtype=torch.float64)
        self.lam = float(lam)
        A = M + self.lam * torch.eye(M.shape[0], dtype=torch.float64)
        L, info = torch.linalg.cholesky_ex(A)
        if int(info) == 0:
            self.L, self.V = L, None
        else:
            w, V = torch.linalg.eigh((M + M.T) / 2)
            w = torch.clamp(w, min=0) + self.lam
            inv = torch.where(w > w.max() * 1e-12, 1 / w, torch.zeros_like(w))
            self.L, self.V, self.inv = None, V, inv

    def solve(self, B):
        B = torch.as_tensor(np.ascontiguousarray(B), dtype=torch.float64)
        if self.L is not None:
            return torch.cholesky_solve(B, self.L).numpy()
        return (self.V @ (self.inv[:, None] * (self.V.T @ B))).numpy()


def _model_outputs(net, X, y, task, batch_size, device):
    was = net.training
    net.eval()
    out = []
    try:
        with torch.no_grad():
            for s in range(0, len(X), batch_size):
                z = net(X[s:s + batch_size].to(device))
                out.append(_margin_from_logits(z, y[s:s + batch_size].to(device), task).to("cpu", torch.float64))
    finally:
        net.train(was)
    return torch.cat(out).numpy() if out else np.zeros(0)
