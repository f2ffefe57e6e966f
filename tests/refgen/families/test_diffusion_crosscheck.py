"""Cross-check tier (float64): the ddpm family's schedules and samplers against the
reference libraries, given the same inputs and the same model output.

* diffusers (pinned in the ``crosscheck`` extra): ``DDPMScheduler`` and ``DDIMScheduler``:
  betas (``linear``, ``squaredcos_cap_v2``), ``add_noise``, and ``step`` with eps, x_0
  (``sample``) and v prediction, with and without clipping, sigma^2 = beta_tilde, beta and
  learned (``fixed_small``, ``fixed_large``, ``learned_range``), DDIM with eta 0 and 1 on
  respaced timesteps.
* k-diffusion (``sample_euler``, ``sample_heun``, ``sample_dpmpp_2m``, ``get_sigmas_karras``):
  the whole trajectory for the same denoiser and the same Karras sigmas.

diffusers keeps its schedule in float32; the betas are compared at float32's rounding, and
for the steps its ``alphas_cumprod`` is replaced by our float64 alpha_bar so that the
update formulas are compared at float64 rounding (1e-10 relative).

k-diffusion 0.1.1.post1's package ``__init__`` imports its training stack (torchvision,
scikit-image, CLIP, clean-fid, ...); its ``sampling`` module needs only torch, scipy,
torchdiffeq, torchsde, tqdm and ``utils.append_dims``. When the full import fails, the test
loads ``sampling.py`` from the installed package with a stand-in ``utils`` holding only
``append_dims`` (written here), so the ``crosscheck`` extra (torchsde, torchdiffeq) and
``pip install --no-deps k-diffusion==0.1.1.post1`` are enough.
"""
import importlib.util
import math
import sys
import types

import numpy as np  # host-side: comparisons
import pytest

import autodiff
from autodiff import backend as B
from autodiff import nn
from refgen.families import diffusion
from refgen.families.diffusion import samplers as S
from refgen.families.diffusion.schedules import NoiseSchedule, cosine_betas, linear_betas

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

pytestmark = pytest.mark.crosscheck

PREDICTION_TYPES = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}


def _np(t):
    return B.to_numpy(t.data if isinstance(t, autodiff.Tensor) else t)


def _t(a):
    return autodiff.Tensor(B.to_backend(np.asarray(a, dtype=np.float64)))


class _FixedNoise:
    """A stand-in generator whose ``normal`` returns given noise (the one diffusers draws)."""

    def __init__(self, noise):
        self.noise = noise

    def normal(self, shape, dtype):
        assert tuple(shape) == self.noise.shape
        return B.to_backend(self.noise.astype(dtype))


class _FixedOutput(nn.Module):
    """A 'network' that returns a given output whatever its input."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        self.dummy = nn.Parameter(autodiff.zeros(1))

    def forward(self, x, t, y=None):
        return self.out


def _model(prediction, out, loss="simple", variance="beta_tilde"):
    info = {"kind": "image", "shape": [2, 4, 4], "levels": 256, "value_range": [-1.0, 1.0],
            "name": "x"}
    config = diffusion.smoke_config(info)
    config.update({"prediction": prediction, "loss": loss, "variance": variance,
                   "timesteps": 1000, "data_info": info})
    model = diffusion.build(config)
    model.net = _FixedOutput(_t(out))
    return model


def _patch_float64(scheduler, schedule):
    scheduler.alphas_cumprod = torch.from_numpy(_np(schedule.alpha_bar).copy())
    if hasattr(scheduler, "final_alpha_cumprod"):
        scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)


@pytest.mark.parametrize("name,theirs", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_betas_equal_diffusers(name, theirs):
    ours = _np(linear_betas(1000) if name == "linear" else cosine_betas(1000))
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule=theirs).betas.numpy()
    assert ref.dtype == np.float32
    # diffusers rounds to float32 (relative 2^-24 ~ 6e-8); torch.linspace in float32 adds
    # a few ulps more
    np.testing.assert_allclose(ours, ref.astype(np.float64), rtol=4e-7, atol=0)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_add_noise_equals_diffusers(name):
    sched = NoiseSchedule.from_name(name, 1000)
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000,
                                  beta_schedule="linear" if name == "linear" else
                                  "squaredcos_cap_v2")
    _patch_float64(ref, sched)
    gen = np.random.default_rng(0)
    x0, eps = gen.standard_normal((8, 2, 4, 4)), gen.standard_normal((8, 2, 4, 4))
    t = np.array([0, 1, 10, 250, 500, 750, 998, 999])
    ours = _np(sched.q_sample(_t(x0), t, _t(eps)))
    theirs = ref.add_noise(torch.from_numpy(x0), torch.from_numpy(eps),
                           torch.from_numpy(t)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def _step_pair(scheduler, model, schedule, t, prev_t, x, noise, sampler, **kw):
    """Our sampler's update from x at timestep t to prev_t (a 2-step respaced chain), and
    the model's x0_hat there."""
    short = schedule.respace([prev_t, t] if prev_t >= 0 else [t])
    seen = {}
    fn = model.chain_model(short, clip=kw.pop("clip"))
    sampler(fn, _t(x), short, _FixedNoise(noise), callback=lambda d: seen.setdefault(
        "x", (_np(d["x"]), _np(d["denoised"]))), **kw)
    return seen["x"]


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("variance,theirs", [("beta_tilde", "fixed_small"),
                                             ("beta", "fixed_large"),
                                             ("learned", "learned_range")])
@pytest.mark.parametrize("num_inference_steps", [1000, 50])
def test_ddpm_step_equals_diffusers(prediction, clip, variance, theirs, num_inference_steps):
    learned = variance == "learned"
    gen = np.random.default_rng(1)
    x = 1.5 * gen.standard_normal((3, 2, 4, 4))
    out = 1.5 * gen.standard_normal((3, 4 if learned else 2, 4, 4))
    if learned:
        out[:, 2:] = np.tanh(out[:, 2:])          # the variance output lives in [-1, 1]
    model = _model(prediction, out, loss="hybrid" if learned else "simple",
                   variance="beta_tilde" if learned else variance)
    sched = model.schedule
    ref = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                  prediction_type=PREDICTION_TYPES[prediction],
                                  variance_type=theirs, clip_sample=clip)
    ref.set_timesteps(num_inference_steps)
    _patch_float64(ref, sched)
    stride = 1000 // num_inference_steps
    for t in (int(ref.timesteps[0]), int(ref.timesteps[len(ref.timesteps) // 2]),
              int(ref.timesteps[-2])):
        g = torch.Generator().manual_seed(t)
        theirs_out = ref.step(torch.from_numpy(out), t, torch.from_numpy(x), generator=g)
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(t),
                            dtype=torch.float64).numpy()
        ours_x, ours_x0 = _step_pair(ref, model, sched, t, t - stride, x, noise,
                                     S.sample_ancestral, clip=clip, variance=variance)
        np.testing.assert_allclose(ours_x0, theirs_out.pred_original_sample.numpy(),
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours_x, theirs_out.prev_sample.numpy(), rtol=1e-10,
                                   atol=1e-12)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("eta", [0.0, 1.0, 0.3])
def test_ddim_step_equals_diffusers(prediction, clip, eta):
    gen = np.random.default_rng(2)
    x = 1.5 * gen.standard_normal((3, 2, 4, 4))
    out = 1.5 * gen.standard_normal((3, 2, 4, 4))
    model = _model(prediction, out)
    sched = model.schedule
    ref = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                  prediction_type=PREDICTION_TYPES[prediction],
                                  clip_sample=clip, set_alpha_to_one=True)
    ref.set_timesteps(20)
    _patch_float64(ref, sched)
    noise = gen.standard_normal(x.shape)
    for t in (int(ref.timesteps[0]), int(ref.timesteps[10]), int(ref.timesteps[-1])):
        theirs = ref.step(torch.from_numpy(out), t, torch.from_numpy(x), eta=eta,
                          use_clipped_model_output=True,
                          variance_noise=torch.from_numpy(noise))
        ours_x, ours_x0 = _step_pair(ref, model, sched, t, t - 1000 // 20, x, noise,
                                     S.sample_ddim, clip=clip, eta=eta)
        np.testing.assert_allclose(ours_x0, theirs.pred_original_sample.numpy(), rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(ours_x, theirs.prev_sample.numpy(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- k-diffusion
def _k_sampling():
    """k-diffusion's ``sampling`` module (see the module docstring)."""
    try:
        from k_diffusion import sampling
        return sampling
    except ImportError:
        pass
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("k-diffusion is not installed: pip install -e '.[crosscheck]' and "
                    "pip install --no-deps k-diffusion==0.1.1.post1")
    for dep in ("torchsde", "torchdiffeq", "tqdm"):
        pytest.importorskip(dep)
    name = "_refgen_kdiffusion"
    if name + ".sampling" in sys.modules:
        return sys.modules[name + ".sampling"]
    package = types.ModuleType(name)
    package.__path__ = []
    utils = types.ModuleType(name + ".utils")

    def append_dims(x, target_dims):
        """x with trailing singleton dims up to ``target_dims`` dims."""
        return x.reshape(tuple(x.shape) + (1,) * (target_dims - x.ndim))
    utils.append_dims = append_dims
    sys.modules[name], sys.modules[name + ".utils"] = package, utils
    path = spec.submodule_search_locations[0] + "/sampling.py"
    module_spec = importlib.util.spec_from_file_location(name + ".sampling", path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name + ".sampling"] = module
    module_spec.loader.exec_module(module)
    return module


_MEANS = np.array([[2.0, 0.0], [-1.0, 1.5], [0.0, -2.0]])
_WEIGHTS = np.array([0.5, 0.3, 0.2])
_STD = 0.3


def _mixture_denoiser_np(x, sigma):
    """E[x_0 | x_0 + sigma eps = x] for x_0 ~ sum_k w_k N(mu_k, s^2 I) (a non-linear
    denoiser): responsibilities r_k(x) of N(mu_k, (s^2 + sigma^2) I), and per component
    mu_k + s^2 / (s^2 + sigma^2) (x - mu_k)."""
    var = _STD ** 2 + sigma ** 2
    d2 = ((x[:, None, :] - _MEANS[None]) ** 2).sum(-1)             # (N, K)
    logits = np.log(_WEIGHTS)[None] - 0.5 * d2 / var
    r = np.exp(logits - logits.max(1, keepdims=True))
    r /= r.sum(1, keepdims=True)
    comp = _MEANS[None] + (_STD ** 2 / var) * (x[:, None, :] - _MEANS[None])
    return (r[..., None] * comp).sum(1)


@pytest.mark.parametrize("name", ["euler", "heun", "dpmpp_2m"])
def test_k_samplers_trajectory_equals_k_diffusion(name):
    ks = _k_sampling()
    torch.set_default_dtype(torch.float64)
    n = 12
    ours_sigmas = S.get_sigmas_karras(n, 0.01, 40.0)
    theirs_sigmas = ks.get_sigmas_karras(n, 0.01, 40.0, rho=7.0)
    np.testing.assert_allclose(ours_sigmas, theirs_sigmas.numpy(), rtol=1e-12, atol=0)
    x = np.random.default_rng(3).standard_normal((64, 2)) * 40.0

    def theirs_model(x, sigma):
        return torch.from_numpy(_mixture_denoiser_np(x.numpy(), float(sigma[0])))

    def ours_model(x, sigma):
        return _t(_mixture_denoiser_np(_np(x), sigma))

    theirs_traj, ours_traj = [], []
    fn = {"euler": ks.sample_euler, "heun": ks.sample_heun, "dpmpp_2m": ks.sample_dpmpp_2m}[name]
    final = fn(theirs_model, torch.from_numpy(x.copy()),
               torch.tensor(ours_sigmas, dtype=torch.float64),
               callback=lambda d: theirs_traj.append(d["x"].numpy().copy()), disable=True)
    ours = S.K_SAMPLERS[name](ours_model, _t(x), ours_sigmas,
                              callback=lambda d: ours_traj.append(_np(d["x"])))
    # k-diffusion's callback sees x before each step; ours after it
    theirs_after = theirs_traj[1:] + [final.numpy()]
    assert len(ours_traj) == len(theirs_after) == n
    for i, (a, b) in enumerate(zip(ours_traj, theirs_after)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=f"step {i}")
    np.testing.assert_allclose(_np(ours), final.numpy(), rtol=1e-10, atol=1e-10)
