"""The linear probe: multinomial logistic regression with an L2 penalty, fitted to
convergence, as the yardstick of a representation (Alain & Bengio 2016, "Understanding
intermediate layers using linear classifier probes"; the protocol of representation-learning
papers since: a frozen feature map phi, a linear classifier on phi(x), test accuracy).

For features phi_n in R^D (standardised with the labelled set's mean and standard deviation)
and labels y_n in {0..K-1}, n = 1..N, the probe minimises the convex objective

    J(W, b) = (1/N) sum_n [ -log softmax(W^T phi_n + b)_{y_n} ] + (lambda / 2) ||W||_F^2,

W (D, K), b (K,) unpenalised, with L-BFGS (Nocedal 1980; ``scipy.optimize.minimize``) on
the exact gradient

    dJ/dW = (1/N) Phi^T (P - Y) + lambda W,    dJ/db = (1/N) 1^T (P - Y),

P (N, K) the softmax probabilities and Y (N, K) the one-hot labels. The log-softmax is
computed as logits - logsumexp(logits) with the maximum shifted out (no overflow). (In
scikit-learn's terms lambda = 1 / (C N).)

lambda is chosen from a grid by accuracy on a held-out validation set (``select_l2``): the
path is fitted from the strongest penalty down, each fit warm-started from the previous one.

This is host-side float64 optimisation with SciPy: features are copied to the host.
"""
import math

# host-side: scipy.optimize works on host float64 arrays; features are copied there once
import numpy as np
# host-side: L-BFGS has no CuPy counterpart
import scipy.optimize

from ._arrays import host_float64

__all__ = ["logistic_objective", "fit_logistic_regression", "LogisticProbe", "standardize",
           "select_l2", "DEFAULT_L2_GRID"]

# lambda from strong to weak: 10 values, a factor of ~4.6 apart (three per decade)
DEFAULT_L2_GRID = tuple(float(v) for v in np.logspace(0, -6, 10))


def _check_xy(features, labels, num_classes, who):
    x = host_float64(features)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{who}: features must be a non-empty 2-D array (N examples, D "
                         f"features), got shape {tuple(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{who}: features contain NaN or inf ({int((~np.isfinite(x)).sum())} "
                         "entries)")
    y = np.asarray(host_float64(labels))
    if y.shape != (x.shape[0],):
        raise ValueError(f"{who}: labels must have shape ({x.shape[0]},) to match features "
                         f"{tuple(x.shape)}, got {tuple(y.shape)}")
    if y.size and (np.any(y != np.round(y)) or y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{who}: labels must be integers in 0..{num_classes - 1}, got values "
                         f"in [{y.min()}, {y.max()}]")
    return x, y.astype(np.int64)


def logistic_objective(params, features, labels, num_classes, l2):
    """(J, dJ/dparams) of the module docstring at ``params`` = concat(W.ravel(), b), the
    flat vector L-BFGS moves; features (N, D) float64, labels (N,) int."""
    n, d = features.shape
    k = num_classes
    w = params[:d * k].reshape(d, k)
    b = params[d * k:]
    logits = features @ w + b                                  # (N, K)
    shifted = logits - logits.max(axis=1, keepdims=True)       # log-sum-exp without overflow
    log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_z                                    # log softmax, (N, K)
    nll = -log_p[np.arange(n), labels].mean()
    value = nll + 0.5 * l2 * float(np.sum(w * w))
    residual = np.exp(log_p)                                   # P - Y, (N, K)
    residual[np.arange(n), labels] -= 1.0
    grad_w = features.T @ residual / n + l2 * w
    grad_b = residual.mean(axis=0)
    return value, np.concatenate([grad_w.ravel(), grad_b])


class LogisticProbe:
    """A fitted probe: ``weight`` (D, K), ``bias`` (K,), the penalty ``l2``, whether L-BFGS
    ``converged`` (gradient norm below its tolerance) and its iteration count ``n_iter``."""

    def __init__(self, weight, bias, l2, converged, n_iter, objective):
        self.weight, self.bias, self.l2 = weight, bias, float(l2)
        self.converged, self.n_iter, self.objective = bool(converged), int(n_iter), \
            float(objective)

    def logits(self, features):
        x = host_float64(features)
        if x.ndim != 2 or x.shape[1] != self.weight.shape[0]:
            raise ValueError(f"LogisticProbe: features must be (N, {self.weight.shape[0]}), "
                             f"got shape {tuple(x.shape)}")
        return x @ self.weight + self.bias

    def predict(self, features):
        """argmax_k of the logits, (N,) int."""
        return self.logits(features).argmax(axis=1)

    def accuracy(self, features, labels):
        """The fraction of ``labels`` predicted correctly."""
        y = host_float64(labels).astype(np.int64)
        return float((self.predict(features) == y).mean())

    @property
    def params(self):
        return np.concatenate([self.weight.ravel(), self.bias])


def fit_logistic_regression(features, labels, num_classes, l2, init=None, max_iter=5000,
                            gtol=1e-6):
    """Minimise J(W, b) (module docstring) by L-BFGS from ``init`` (a ``LogisticProbe`` or a
    flat parameter vector; default zeros); ``gtol`` bounds the largest gradient entry at the
    solution. Returns a ``LogisticProbe``; its ``converged`` says whether ``gtol`` was met
    within ``max_iter`` iterations."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 2:
        raise ValueError(f"fit_logistic_regression: num_classes must be an int >= 2, got "
                         f"{num_classes!r}")
    k = int(num_classes)
    x, y = _check_xy(features, labels, k, "fit_logistic_regression")
    if not (isinstance(l2, (int, float)) and math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"fit_logistic_regression: l2 must be a finite number >= 0, got "
                         f"{l2!r}")
    d = x.shape[1]
    if init is None:
        p0 = np.zeros(d * k + k)
    else:
        # a copy on the host (host_float64 also takes a backend array or Tensor explicitly)
        p0 = np.array(host_float64(init.params if isinstance(init, LogisticProbe) else init))
        if p0.shape != (d * k + k,):
            raise ValueError(f"fit_logistic_regression: init must hold {d * k + k} parameters "
                             f"(D={d}, K={k}), got shape {tuple(p0.shape)}")
    result = scipy.optimize.minimize(logistic_objective, p0, args=(x, y, k, float(l2)),
                                     jac=True, method="L-BFGS-B",
                                     options={"maxiter": int(max_iter), "gtol": float(gtol),
                                              "ftol": 1e-14, "maxcor": 20})
    _, grad = logistic_objective(result.x, x, y, k, float(l2))
    converged = float(np.abs(grad).max()) <= 10 * gtol
    return LogisticProbe(result.x[:d * k].reshape(d, k).copy(), result.x[d * k:].copy(),
                         l2, converged, result.nit, result.fun)


def standardize(train, *others):
    """z-score every array by the mean and standard deviation of ``train`` (features the
    training set holds constant, such as MNIST's border pixels, are only centred): the same
    lambda then means the same thing across representations of different scales."""
    t = host_float64(train)
    mean = t.mean(axis=0)
    std = t.std(axis=0)
    std = np.where(std > 1e-12 * max(1.0, float(np.abs(t).max(initial=0.0))), std, 1.0)
    out = [(t - mean) / std] + [(host_float64(o) - mean) / std for o in others]
    return out


def select_l2(train_x, train_y, val_x, val_y, num_classes, l2_grid=DEFAULT_L2_GRID,
              test_x=None, test_y=None, **fit_options):
    """Fit the probe for every lambda of ``l2_grid`` (strongest first, warm-started) on
    standardised features and keep the one with the best validation accuracy (the larger
    lambda on a tie). Returns a dict: ``l2``, ``val_accuracy``, ``train_accuracy``,
    ``test_accuracy`` (when a test set is given), ``converged`` (all fits on the path),
    ``path`` [(lambda, val accuracy), ...] and the chosen ``probe``."""
    grid = sorted((float(v) for v in l2_grid), reverse=True)
    if not grid or any(not (math.isfinite(v) and v >= 0) for v in grid):
        raise ValueError(f"select_l2: l2_grid must be non-empty finite numbers >= 0, got "
                         f"{list(l2_grid)!r}")
    arrays = [train_x, val_x] + ([test_x] if test_x is not None else [])
    scaled = standardize(*arrays)
    tr, va = scaled[0], scaled[1]
    best, path, probe, all_converged = None, [], None, True
    for l2 in grid:
        probe = fit_logistic_regression(tr, train_y, num_classes, l2, init=probe,
                                        **fit_options)
        all_converged &= probe.converged
        acc = probe.accuracy(va, val_y)
        path.append((l2, acc))
        if best is None or acc > best[1]:
            best = (l2, acc, probe)
    l2, val_acc, chosen = best
    out = {"l2": l2, "val_accuracy": val_acc, "train_accuracy": chosen.accuracy(tr, train_y),
           "converged": bool(all_converged), "path": path, "probe": chosen}
    if test_x is not None:
        out["test_accuracy"] = chosen.accuracy(scaled[2], test_y)
    return out
