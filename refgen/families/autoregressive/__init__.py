"""The autoregressive family: p_theta(x) = prod_d p_theta(x_d | x_{<d}), exact likelihoods,
sampling one dimension at a time.

* ``made``: MADE, a masked MLP (Germain et al. 2015) on ``refgen.families.common.made``;
* ``pixelcnn``: masked convolutions (van den Oord et al. 2016a) and the gated PixelCNN
  without blind spot (van den Oord et al. 2016b);
* ``heads``: the per-dimension output distributions they share (Bernoulli, L-way softmax,
  discretized logistic mixture, Gaussian mixture).

Each model module is a family module of the registry (``kind``, ``default_config``,
``build``, ``train_defaults``, ``smoke_config``, ``SMOKE_DATA``).
"""
