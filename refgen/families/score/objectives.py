"""Score-matching objectives: denoising (Vincent 2011) and sliced (Song et al. 2019).

**Denoising score matching** (Vincent 2011, eq. 11; with a time weighting, Song et al.
2021b, eq. 7). For x(t) = m(t) x0 + std(t) eps the conditional score is
grad log p_0t(x(t) | x0) = -eps / std(t), so

    L_DSM(theta) = E_t E_x0 E_eps [ lambda(t) || s_theta(x(t), t) + eps / std(t) ||^2 ]

is minimised by s_theta(., t) = grad log p_t (it differs from the Fisher divergence
E ||s_theta - grad log p_t||^2 by a constant independent of theta). With lambda(t) = std(t)^2
(Song & Ermon 2019, eq. 6; "likelihood-free" weighting of score_sde) the per-example term is
|| std s_theta + eps ||^2, and with the parameterisation s_theta = -eps_theta / std it is
DDPM's simple loss || eps_theta - eps ||^2 (Ho et al. 2020, eq. 14).

**Sliced score matching** (Song, Garg, Shi & Ermon 2019, eq. 7 and 8) needs no noise model:
for projections v with E[v v^T] = I,

    L_SSM(theta) = E_x E_v [ v^T (d s_theta / dx) v + (v^T s_theta(x))^2 / 2 ]
    L_SSM-VR     = E_x E_v [ v^T (d s_theta / dx) v ] + E_x || s_theta(x) ||^2 / 2   (eq. 9)

equal to E ||s_theta - grad log p||^2 / 2 minus a constant (Hyvarinen 2005, Theorem 1,
sliced). v^T (ds/dx) v = v . grad_x (v . s) is one vector-Jacobian product, differentiated
again in training: it needs ``create_graph=True``. For an SDE it is applied to x(t) ~ p_t
with the weighting lambda(t) = std(t)^2 (the score of p_t, whatever x0 was).

Shapes: x, eps, v and s are (N, *event); the losses are per example, (N,).
"""
import autodiff

__all__ = ["dsm_loss", "sliced_score_matching_loss", "projections"]


def _flat_sum(a):
    return a.reshape(a.shape[0], -1).sum(dim=1)


def dsm_loss(score, eps, std):
    """|| std s + eps ||^2 per example (N,): denoising score matching with lambda = std^2.

    :param score: s_theta(x(t), t) (N, *event) at x(t) = m x0 + std eps.
    :param eps: the noise eps (N, *event) that made x(t).
    :param std: std(t), an (N,) Tensor.
    """
    if tuple(score.shape) != tuple(eps.shape):
        raise ValueError(f"dsm_loss: score {tuple(score.shape)} and eps {tuple(eps.shape)} "
                         "must have the same shape")
    std = std.reshape((std.shape[0],) + (1,) * (eps.ndim - 1))
    r = std * score + eps
    return _flat_sum(r * r)


def projections(shape, kind="rademacher", generator=None, dtype=None):
    """Random projections v with E[v v^T] = I: 'rademacher' (+-1) or 'gaussian'."""
    if kind == "gaussian":
        return autodiff.randn(*shape, generator=generator, dtype=dtype)
    if kind != "rademacher":
        raise ValueError(f"projections: kind must be 'rademacher' or 'gaussian', got {kind!r}")
    u = autodiff.rand(*shape, generator=generator, dtype=dtype)
    return (u < 0.5).to(u.dtype) * 2.0 - 1.0


def sliced_score_matching_loss(score_fn, x, v, variance_reduced=False):
    """v^T (ds/dx) v + (v^T s)^2 / 2 per example (N,) (Song et al. 2019, eq. 8), or with
    ``variance_reduced`` v^T (ds/dx) v + ||s||^2 / 2 (eq. 9; for Gaussian v).

    :param score_fn: x -> s_theta(x) (N, *event); examples must not interact.
    :param x: the points (N, *event) (detached here; gradients reach theta only).
    :param v: projections (N, *event) with E[v v^T] = I (``projections``).
    :return: (N,) per-example losses, differentiable in theta (second order in x).
    """
    if tuple(v.shape) != tuple(x.shape):
        raise ValueError(f"sliced_score_matching_loss: v {tuple(v.shape)} must have the shape "
                         f"of x {tuple(x.shape)}")
    with autodiff.enable_grad():
        x = x.detach().requires_grad_(True)
        s = score_fn(x)
        if tuple(s.shape) != tuple(x.shape):
            raise ValueError(f"sliced_score_matching_loss: score_fn returned shape "
                             f"{tuple(s.shape)} for x of shape {tuple(x.shape)}")
        sv = s * v
        # grad_x (v . s) = (ds/dx)^T v; dotted with v: v^T (ds/dx) v. Kept differentiable.
        (g,) = autodiff.grad(sv.sum(), [x], create_graph=True)
        jvp_term = _flat_sum(g * v)
        if variance_reduced:
            return jvp_term + 0.5 * _flat_sum(s * s)
        proj = _flat_sum(sv)
        return jvp_term + 0.5 * proj * proj
