"""Family ``pixelcnn``: PixelCNN (van den Oord et al. 2016a) and the gated PixelCNN without
blind spot (van den Oord et al. 2016b), on one-channel images.

The pixels are generated in raster order (row by row, left to right); the network gives, for
every pixel i, the parameters of p_theta(x_i | x_{<i}) in one pass of convolutions whose
kernels are masked so that output i never sees pixel i or a later one:

    log p_theta(x) = sum_i log p_theta(x_i | x_1, ..., x_{i-1})     (2016a, eq. 1-2)

Masked convolutions (2016a, sec. 3.4, fig. 2). For a k x k kernel with centre c = k // 2 the
mask keeps the rows above the centre and, in the centre row, the columns left of it; type
A (the first layer) drops the centre itself, type B (every later layer) keeps it (a feature
at pixel i has already only seen pixels before i, so it may pass itself on).

``architecture="plain"``: a 7x7 type-A convolution, residual blocks (ReLU, 1x1, ReLU, 3x3
type B, ReLU, 1x1; 2016a, fig. 5), and two 1x1 layers to the outputs. Stacking masked
convolutions leaves a BLIND SPOT: the receptive field grows up and to the left but misses
the pixels above and to the right (2016b, fig. 1).

``architecture="gated"`` (2016b, sec. 2.1-2.3, fig. 2) removes it with two stacks:

* the vertical stack sees every row above the current one (a k x k kernel whose rows below
  the centre are masked, and in the first layer the centre row too), all columns of its
  receptive field, so its width grows to both sides;
* the horizontal stack sees the current row left of the pixel (a 1 x k kernel, masked right
  of the centre, and the centre itself in the first layer), plus the vertical stack's
  features at the same pixel through a 1x1 convolution (v -> h; never h -> v, which would
  leak the current row into the vertical stack);
* the masked part of a stack's kernel is always zero, so ``StackConv2d`` does not store or
  multiply it: it keeps only the allowed rows (vertical: (c + 1) x k, first layer c x k)
  or columns (horizontal: 1 x (c + 1), first layer 1 x c) and pads the image on the top or
  left only (the shifted-kernel form of common implementations): the same function as the
  masked k x k kernel with 2/3 of its multiply-adds for k = 3 (measured: about 10 % less
  CPU per training step; the padding and cropping copies take part of the gain);
* each layer is gated, y = tanh(W_f * x + V_f c) (.) sigmoid(W_g * x + V_g c) (2016b, eq. 4),
  with c a learned class embedding added inside both gates for a class-conditional model;
  the horizontal stack is residual after the first layer.

The outputs are a head of ``heads.py`` (Bernoulli for binary pixels, an L-way softmax for up
to 64 levels, the discretized logistic mixture of PixelCNN++ (Salimans et al. 2017) for
8-bit data). Sampling runs the network once per pixel (``nfe_per_sample = H W``).

Shapes: x (N, 1, H, W) -> params (N, P, H, W), flattened to (N, P, D) for the head with
D = H W in raster order.
"""
import autodiff
import autodiff.functional as F
from autodiff import backend as B
from autodiff import nn

from .model import AutoregressiveModel

__all__ = ["MaskedConv2d", "StackConv2d", "raster_mask", "vertical_mask", "horizontal_mask",
           "PixelCNN", "GatedPixelCNN", "GatedLayer", "PixelCNNModel", "default_config",
           "build", "train_defaults", "smoke_config", "SMOKE_DATA", "kind"]

kind = "autoregressive"
SMOKE_DATA = ["digits"]
ARCHITECTURES = ("gated", "plain")


# --------------------------------------------------------------------------- masks
def raster_mask(k, mask_type):
    """(k, k) mask of a PixelCNN kernel: rows above the centre and, in the centre row, the
    columns left of it; type 'B' also keeps the centre, type 'A' does not (2016a, fig. 2)."""
    if mask_type not in ("A", "B"):
        raise ValueError(f"raster_mask: mask_type must be 'A' or 'B', got {mask_type!r}")
    c = k // 2
    mask = B.xp.ones((k, k))
    mask[c, c + (mask_type == "B"):] = 0.0
    mask[c + 1:, :] = 0.0
    return mask


def vertical_mask(k, first):
    """(k, k) mask of the vertical stack: the rows above the centre and the centre row, all
    columns; in the first layer the centre row too is dropped, so the stack never sees the
    current row at all (2016b, sec. 2.2)."""
    c = k // 2
    mask = B.xp.ones((k, k))
    mask[c + (0 if first else 1):, :] = 0.0
    return mask


def horizontal_mask(k, first):
    """(1, k) mask of the horizontal stack: the columns left of the centre, and the centre
    itself except in the first layer."""
    c = k // 2
    mask = B.xp.ones((1, k))
    mask[0, c + (0 if first else 1):] = 0.0
    return mask


class MaskedConv2d(nn.Conv2d):
    """A 'same'-padded Conv2d whose weight is multiplied by a fixed (kh, kw) spatial mask
    (broadcast over the channels; one-channel images need no channel mask).

    Parameters: ``weight`` (out, in, kh, kw), ``bias`` (out,) with PyTorch's init; buffer
    ``mask`` (kh, kw), non-persistent (rebuilt from the config). (N, in, H, W) -> (N, out, H, W).

    The forward convolves with the smallest box of kernel rows and columns that holds every
    unmasked weight, the image padded to match, so the all-zero rows are never multiplied:
    for a raster mask the k // 2 rows below the centre, 3/7 of a 7x7 kernel's products and
    1/3 of a 3x3's. The result equals the 'same' convolution with ``weight * mask``; the
    weights outside the box get a zero gradient, as the mask gives them.
    """

    def __init__(self, in_channels, out_channels, mask, bias=True):
        kh, kw = (int(s) for s in mask.shape)
        super().__init__(in_channels, out_channels, (kh, kw), padding=(kh // 2, kw // 2),
                         bias=bias)
        self.register_buffer("mask", autodiff.Tensor(B.xp.asarray(mask, dtype=self.weight.dtype)),
                             persistent=False)
        self.box, self.box_padding = _unmasked_box(B.to_numpy(B.xp.asarray(mask)), kh, kw)

    def forward(self, input):
        if self.box is None:   # nothing unmasked: the output is the bias alone
            return F.conv2d(input, self.weight * self.mask, self.bias, 1, self.padding)
        (r0, r1), (c0, c1) = self.box
        weight = (self.weight * self.mask)[:, :, r0:r1, c0:c1]
        (top, bottom), (left, right) = self.box_padding
        x = F.pad(input, (max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)))
        if min(top, bottom, left, right) < 0:   # a box that stops short of the centre
            x = x[:, :, max(-top, 0):x.shape[2] - max(-bottom, 0),
                  max(-left, 0):x.shape[3] - max(-right, 0)]
        return F.conv2d(x, weight, self.bias)


def _unmasked_box(mask, kh, kw):
    """((r0, r1), (c0, c1)), the rows r0..r1-1 and columns c0..c1-1 of the (kh, kw) host mask
    that hold every nonzero entry, and the padding ((top, bottom), (left, right)) that keeps
    the output of that cropped kernel the size of the input (negative: rows or columns of
    the input to drop); (None, None) for an all-zero mask."""
    rows = [i for i in range(kh) if mask[i].any()]
    cols = [j for j in range(kw) if mask[:, j].any()]
    if not rows:
        return None, None
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return ((r0, r1), (c0, c1)), ((kh // 2 - r0, r1 - 1 - kh // 2),
                                  (kw // 2 - c0, c1 - 1 - kw // 2))


class StackConv2d(nn.Conv2d):
    """The convolution of one stack of the gated PixelCNN with its masked part cut away.

    With c = k // 2, ``stack="vertical"``: kernel (c + 1, k) (first layer (c, k)), the image
    padded by c rows on top and c columns on each side, so output (i, j) sees rows
    i - c..i (first layer i - c..i - 1) and columns j - c..j + c; ``stack="horizontal"``:
    kernel (1, c + 1) (first layer (1, c)), c columns of padding on the left, so output
    (i, j) sees row i, columns j - c..j (first layer j - c..j - 1). Exactly the masked k x k
    (1 x k) convolution with ``vertical_mask``/``horizontal_mask``, without the zero weights.
    Parameters ``weight`` (out, in, kh, kw), ``bias`` (out,). (N, in, H, W) -> (N, out, H, W).
    """

    def __init__(self, in_channels, out_channels, stack, kernel_size, first):
        c = int(kernel_size) // 2
        if c < 1:
            raise ValueError(f"StackConv2d: kernel_size must be >= 3 (odd), got {kernel_size!r}")
        if stack == "vertical":
            kernel, pad = (c if first else c + 1, 2 * c + 1), (c, c, c, 0)
        elif stack == "horizontal":
            kernel, pad = (1, c if first else c + 1), (c, 0, 0, 0)
        else:
            raise ValueError(f"StackConv2d: stack must be 'vertical' or 'horizontal', got "
                             f"{stack!r}")
        super().__init__(in_channels, out_channels, kernel)
        self.stack, self.first, self.pad = stack, bool(first), pad

    def forward(self, input):
        H, W = input.shape[2], input.shape[3]
        out = F.conv2d(F.pad(input, self.pad), self.weight, self.bias)
        return out[:, :, :H, :W]   # the first layer's output has one extra row (column)

    def extra_repr(self):
        return f"{super().extra_repr()}, stack={self.stack!r}, first={self.first}"


def _conv1x1(a, b):
    return nn.Conv2d(a, b, 1)


# --------------------------------------------------------------------------- plain PixelCNN
class ResidualBlock(nn.Module):
    """x + 1x1(ReLU(3x3_B(ReLU(1x1(ReLU(x)))))), channels h -> h/2 -> h/2 -> h (2016a, fig. 5);
    ``cond`` (N, h) is added to the input of the block (a class bias)."""

    def __init__(self, channels, kernel_size):
        super().__init__()
        half = max(1, channels // 2)
        self.reduce = _conv1x1(channels, half)
        self.conv = MaskedConv2d(half, half, raster_mask(kernel_size, "B"))
        self.expand = _conv1x1(half, channels)

    def forward(self, x, cond=None):
        h = x if cond is None else x + cond[:, :, None, None]
        h = self.reduce(F.relu(h))
        h = self.conv(F.relu(h))
        return x + self.expand(F.relu(h))


class PixelCNN(nn.Module):
    """The plain PixelCNN: 7x7 type A, ``num_layers`` residual blocks with k x k type B,
    ReLU-1x1-ReLU-1x1 to ``out_channels``. (N, 1, H, W) -> (N, out_channels, H, W)."""

    def __init__(self, out_channels, channels=64, num_layers=5, kernel_size=3,
                 first_kernel_size=7, num_classes=0):
        super().__init__()
        self.first = MaskedConv2d(1, channels, raster_mask(first_kernel_size, "A"))
        self.blocks = nn.ModuleList([ResidualBlock(channels, kernel_size)
                                     for _ in range(num_layers)])
        self.embedding = nn.Embedding(num_classes, channels) if num_classes else None
        self.out1 = _conv1x1(channels, channels)
        self.out2 = _conv1x1(channels, out_channels)

    def forward(self, x, labels=None):
        e = None if self.embedding is None else self.embedding(labels)   # (N, channels)
        h = self.first(x)
        for block in self.blocks:
            h = block(h, e)
        return self.out2(F.relu(self.out1(F.relu(h))))


# --------------------------------------------------------------------------- gated PixelCNN
class GatedLayer(nn.Module):
    """One layer of the gated PixelCNN (2016b, fig. 2), channels h:

        v_pre = V_conv(v)                          (N, 2h)   rows above (StackConv2d)
        h_pre = H_conv(h) + 1x1(v_pre)             (N, 2h)   left in the row
        (+ class embeddings e_v, e_h inside both gates)
        v'    = tanh(v_pre[:h]) * sigmoid(v_pre[h:])
        h'    = 1x1(tanh(h_pre[:h]) * sigmoid(h_pre[h:])) + h      (residual after layer 1)
    """

    def __init__(self, in_channels, channels, kernel_size, first, num_classes=0):
        super().__init__()
        self.channels, self.first = int(channels), bool(first)
        self.v_conv = StackConv2d(in_channels, 2 * channels, "vertical", kernel_size, first)
        self.h_conv = StackConv2d(in_channels, 2 * channels, "horizontal", kernel_size, first)
        self.v_to_h = _conv1x1(2 * channels, 2 * channels)
        self.h_out = _conv1x1(channels, channels)
        self.embedding = nn.Embedding(num_classes, 4 * channels) if num_classes else None

    @staticmethod
    def _gate(pre, h):
        return autodiff.tanh(pre[:, :h]) * autodiff.sigmoid(pre[:, h:])

    def forward(self, v, h, labels=None):
        c = self.channels
        v_pre = self.v_conv(v)
        h_pre = self.h_conv(h) + self.v_to_h(v_pre)
        if self.embedding is not None:
            e = self.embedding(labels)[:, :, None, None]                 # (N, 4h, 1, 1)
            v_pre = v_pre + e[:, :2 * c]
            h_pre = h_pre + e[:, 2 * c:]
        v_new = self._gate(v_pre, c)
        h_new = self.h_out(self._gate(h_pre, c))
        return v_new, (h_new if self.first else h + h_new)


class GatedPixelCNN(nn.Module):
    """``num_layers`` gated layers (the first with the type-A masks), then ReLU-1x1-ReLU-1x1
    on the horizontal stack. (N, 1, H, W) -> (N, out_channels, H, W)."""

    def __init__(self, out_channels, channels=64, num_layers=5, kernel_size=3,
                 first_kernel_size=7, num_classes=0):
        super().__init__()
        layers = [GatedLayer(1, channels, first_kernel_size, True, num_classes)]
        layers += [GatedLayer(channels, channels, kernel_size, False, num_classes)
                   for _ in range(num_layers - 1)]
        self.layers = nn.ModuleList(layers)
        self.out1 = _conv1x1(channels, channels)
        self.out2 = _conv1x1(channels, out_channels)

    def forward(self, x, labels=None):
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h, labels)
        return self.out2(F.relu(self.out1(F.relu(h))))


# --------------------------------------------------------------------------- the family
def default_config(data_info):
    """The issue's comparison model: 7x7 A, 5 layers of 3x3, 64 channels; gated."""
    return {
        "architecture": "gated",    # gated (no blind spot, 2016b) | plain (2016a)
        "channels": 64,
        "num_layers": 5,            # residual blocks (plain) or gated layers
        "kernel_size": 3,
        "first_kernel_size": 7,
        "head": "auto",             # bernoulli | categorical | dmol | auto (model.auto_head)
        "num_components": 5,        # discretized logistic mixture components
        "binarize": None,           # None | "dynamic"
        "conditional": False,       # class embedding inside the gates
    }


def train_defaults(data_info):
    return {"steps": 5000, "batch_size": 64, "lr": 1e-3, "log_every": 50, "eval_every": 1000,
            "checkpoint_every": 500, "grad_clip": 1.0}


def smoke_config(data_info):
    config = default_config(data_info)
    config.update(channels=4, num_layers=2, first_kernel_size=3, num_components=2)
    return config


class PixelCNNModel(AutoregressiveModel):
    """PixelCNN as a ``GenerativeModel`` (player ``"model"``); see the module docstring."""

    family = "pixelcnn"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        shape = self.example_shape
        if self.data_info.get("kind") != "image" or len(shape) != 3 or shape[0] != 1:
            raise ValueError(f"pixelcnn: needs one-channel images (1, H, W); data set "
                             f"{self.data_info.get('name', '?')!r} has examples of shape "
                             f"{shape} (kind {self.data_info.get('kind')!r})")
        if self.head_name == "gmm":
            raise ValueError("pixelcnn: head 'gmm' is for continuous points; use bernoulli, "
                             "categorical or dmol")
        arch = c.get("architecture", "gated")
        if arch not in ARCHITECTURES:
            raise ValueError(f"pixelcnn: unknown architecture {arch!r}; known: "
                             f"{', '.join(ARCHITECTURES)}")
        for key in ("kernel_size", "first_kernel_size"):
            k = int(c.get(key, 3))
            if k < 3 or k % 2 == 0:
                raise ValueError(f"pixelcnn: {key} must be odd and >= 3, got {k!r}")
        for key in ("channels", "num_layers"):
            if int(c.get(key, 1)) < 1:
                raise ValueError(f"pixelcnn: {key} must be >= 1, got {c.get(key)!r}")
        cls = GatedPixelCNN if arch == "gated" else PixelCNN
        self.net = cls(self.head.outputs_per_dim, channels=int(c.get("channels", 64)),
                       num_layers=int(c.get("num_layers", 5)),
                       kernel_size=int(c.get("kernel_size", 3)),
                       first_kernel_size=int(c.get("first_kernel_size", 7)),
                       num_classes=self.num_classes if self.conditional else 0)

    def params_flat(self, x_flat, labels):
        """The head's parameters (N, P, D) for every pixel, one network pass."""
        n = x_flat.shape[0]
        x = self._scaled(x_flat).reshape((n,) + self.example_shape)
        out = self.net(x, None if labels is None else autodiff.Tensor(labels))
        return out.reshape(n, self.head.outputs_per_dim, self.num_dims)

    def log_prob_flat(self, x_flat, labels, step=None):
        """sum_i log p(x_i | x_{<i}) (N,), one pass."""
        return self.head.log_prob(self.params_flat(x_flat, labels), x_flat).sum(dim=1)

    def sample(self, n, generator=None, cond=None, temperature=None, **options):
        """n samples (n, 1, H, W): pixel after pixel in raster order, each drawn from the
        head at that pixel of a full pass over the image so far (H W passes)."""
        n, gen, labels, T = self._sample_setup(n, generator, cond, temperature, options)
        dtype = self.net.out2.weight.dtype
        x = B.xp.zeros((n, self.num_dims), dtype=dtype)
        with autodiff.no_grad():
            for i in range(self.num_dims):
                params = self.params_flat(autodiff.Tensor(x), labels)      # (n, P, D)
                x[:, i] = self.head.sample(params[:, :, i:i + 1], gen, T)[:, 0]
        return autodiff.Tensor(x.reshape((n,) + self.example_shape))

    @property
    def nfe_per_sample(self):
        """H W network passes per sample, one per pixel."""
        return int(self.num_dims)


def build(config, data_info=None):
    from ..base import with_data_info
    config = with_data_info(config, data_info)
    return PixelCNNModel(config)
