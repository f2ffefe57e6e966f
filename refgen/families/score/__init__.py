"""The score-based family (Song & Ermon 2019; Song et al. 2021b): ``ncsn`` and ``sde``.

* ``ncsn``: the noise-conditional score network, annealed Langevin dynamics;
* ``sde_model`` (registered as ``sde``): a score model under the VE, VP or sub-VP SDE
  (``refgen.families.common.sde``), its samplers and the probability-flow ODE likelihood;
* ``samplers``: Euler-Maruyama, reverse diffusion, predictor-corrector, PF-ODE (RK4, RK45);
* ``objectives``: denoising and sliced score matching;
* ``adapters``: an eps-predictor (a trained DDPM) or a denoiser as a score function;
* ``analytic``: Gaussian mixtures with analytic perturbed scores (the tests' reference);
* ``networks``: the noise-conditional network (MLP for 2-D, U-Net for images).
"""
from . import adapters, analytic, ncsn, objectives, samplers, sde_model  # noqa: F401
