"""What two or more families share, written once (GUIDE.md, "Families").

* ``made``: MADE's degrees and masked layers (the autoregressive family's MADE; MAF and IAF);
* ``ode``: ODE solvers and the instantaneous change of variables (the continuous flow;
  the score models' probability-flow likelihood);
* ``sde``: the abstract SDE with VE, VP and sub-VP instances (diffusion and score models);
* ``langevin``: Langevin dynamics (NCSN's annealed sampler; the energy model's sampler).
"""
