"""U-Net against a PyTorch U-Net written here with the same structure and parameter names:
the torch state_dict loads 1:1 (strict), and outputs, parameter gradients and input
gradients (x, and continuous t) agree in float64 to rtol 1e-10."""
import math

import numpy as np  # host-side: state_dict conversion and comparisons
import pytest

import autodiff
from refgen.backbones.convert import convert_state_dict
from refgen.backbones.embeddings import timestep_embedding
from refgen.backbones.unet import UNet
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck


def torch_unet_classes(torch):
    """The reference model in PyTorch (DDPM / improved DDPM layout, ADM parameter names)."""
    nn, F = torch.nn, torch.nn.functional

    def sinusoid(t, dim, flip, max_period):
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
        ang = t.to(torch.float64)[:, None] * freqs[None]
        parts = [torch.cos(ang), torch.sin(ang)] if flip else [torch.sin(ang), torch.cos(ang)]
        if dim % 2:
            parts.append(torch.zeros_like(ang[:, :1]))
        return torch.cat(parts, dim=1)

    class Res(nn.Module):
        def __init__(self, cin, emb, cout, dropout, scale_shift, groups, up=False, down=False):
            super().__init__()
            self.scale_shift, self.up, self.down = scale_shift, up, down
            self.in_layers = nn.Sequential(nn.GroupNorm(groups, cin), nn.SiLU(),
                                           nn.Conv2d(cin, cout, 3, padding=1))
            self.emb_layers = nn.Sequential(nn.SiLU(),
                                            nn.Linear(emb, cout * (2 if scale_shift else 1)))
            self.out_layers = nn.Sequential(nn.GroupNorm(groups, cout), nn.SiLU(),
                                            nn.Dropout(dropout), nn.Conv2d(cout, cout, 3, padding=1))
            self.skip_connection = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

        def resample(self, x):
            if self.up:
                return F.interpolate(x, scale_factor=2, mode="nearest")
            return F.avg_pool2d(x, 2) if self.down else x

        def forward(self, x, emb):
            h = self.in_layers[1](self.in_layers[0](x))
            h = self.in_layers[2](self.resample(h))
            x = self.resample(x)
            e = self.emb_layers(emb)[..., None, None]
            if self.scale_shift:
                scale, shift = torch.chunk(e, 2, dim=1)
                h = self.out_layers[0](h) * (1 + scale) + shift
                for layer in list(self.out_layers)[1:]:
                    h = layer(h)
            else:
                h = self.out_layers(h + e)
            return self.skip_connection(x) + h

    class Attn(nn.Module):
        def __init__(self, c, heads, groups, order):
            super().__init__()
            self.heads, self.order = heads, order
            self.norm = nn.GroupNorm(groups, c)
            self.qkv = nn.Conv1d(c, 3 * c, 1)
            self.proj_out = nn.Conv1d(c, c, 1)

        def forward(self, x):
            b, c, hh, ww = x.shape
            d, T = c // self.heads, hh * ww
            flat = x.reshape(b, c, T)
            qkv = self.qkv(self.norm(flat))
            if self.order == "heads_first":
                qkv = qkv.reshape(b, self.heads, 3, d, T)
                q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
            else:
                qkv = qkv.reshape(b, 3, self.heads, d, T)
                q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
            w = torch.softmax(torch.einsum("bhdt,bhds->bhts", q, k) / math.sqrt(d), dim=-1)
            a = torch.einsum("bhts,bhds->bhdt", w, v).reshape(b, c, T)
            return (flat + self.proj_out(a)).reshape(b, c, hh, ww)

    class Down(nn.Module):
        def __init__(self, c, use_conv):
            super().__init__()
            if use_conv:
                self.op = nn.Conv2d(c, c, 3, stride=2, padding=1)
            self.use_conv = use_conv

        def forward(self, x):
            return self.op(x) if self.use_conv else F.avg_pool2d(x, 2)

    class Up(nn.Module):
        def __init__(self, c, use_conv):
            super().__init__()
            if use_conv:
                self.conv = nn.Conv2d(c, c, 3, padding=1)
            self.use_conv = use_conv

        def forward(self, x):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            return self.conv(x) if self.use_conv else x

    class Seq(nn.Sequential):
        def forward(self, x, emb):
            for layer in self:
                x = layer(x, emb) if isinstance(layer, Res) else layer(x)
            return x

    class TorchUNet(nn.Module):
        def __init__(self, in_channels, out_channels, model_channels, channel_mult,
                     num_res_blocks, attention_resolutions=(), image_size=None, num_heads=1,
                     qkv_order="heads_first", dropout=0.0, num_groups=32, num_classes=None,
                     cfg=False, use_scale_shift_norm=False, resblock_updown=False,
                     conv_resample=True, flip_sin_to_cos=True):
            super().__init__()
            mc, emb = model_channels, 4 * model_channels
            self.mc, self.flip = mc, flip_sin_to_cos
            self.time_embed = nn.Sequential(nn.Linear(mc, emb), nn.SiLU(), nn.Linear(emb, emb))
            if num_classes is not None:
                self.label_emb = nn.Embedding(num_classes + int(cfg), emb)

            def res(a, b, **kw):
                return Res(a, emb, b, dropout, use_scale_shift_norm, num_groups, **kw)

            def attn_at(level):
                return image_size is not None and image_size >> level in attention_resolutions

            def attn(c):
                return Attn(c, num_heads, num_groups, qkv_order)

            self.input_blocks = nn.ModuleList([Seq(nn.Conv2d(in_channels, mc, 3, padding=1))])
            chans, ch, last = [mc], mc, len(channel_mult) - 1
            for level, mult in enumerate(channel_mult):
                for _ in range(num_res_blocks):
                    layers = [res(ch, mult * mc)]
                    ch = mult * mc
                    layers += [attn(ch)] if attn_at(level) else []
                    self.input_blocks.append(Seq(*layers))
                    chans.append(ch)
                if level < last:
                    self.input_blocks.append(Seq(res(ch, ch, down=True) if resblock_updown
                                                 else Down(ch, conv_resample)))
                    chans.append(ch)
            self.middle_block = Seq(res(ch, ch), attn(ch), res(ch, ch))
            self.output_blocks = nn.ModuleList()
            for level in range(last, -1, -1):
                for i in range(num_res_blocks + 1):
                    layers = [res(ch + chans.pop(), channel_mult[level] * mc)]
                    ch = channel_mult[level] * mc
                    layers += [attn(ch)] if attn_at(level) else []
                    if level > 0 and i == num_res_blocks:
                        layers.append(res(ch, ch, up=True) if resblock_updown
                                      else Up(ch, conv_resample))
                    self.output_blocks.append(Seq(*layers))
            self.out = nn.Sequential(nn.GroupNorm(num_groups, ch), nn.SiLU(),
                                     nn.Conv2d(ch, out_channels, 3, padding=1))

        def forward(self, x, t, y=None):
            emb = self.time_embed(sinusoid(t, self.mc, self.flip, 10000.0))
            if y is not None:
                emb = emb + self.label_emb(y)
            hs, h = [], x
            for block in self.input_blocks:
                h = block(h, emb)
                hs.append(h)
            h = self.middle_block(h, emb)
            for block in self.output_blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            return self.out(h)

    return TorchUNet


def build_pair(torch, **cfg):
    """(ours, theirs) with the same random weights (every parameter ~ N(0, 0.3^2), so zero
    inits and GroupNorm's ones/zeros do not hide any term): the torch state_dict goes through
    refgen.backbones.convert (names and shapes checked against ours) and a strict
    load_state_dict."""
    theirs = torch_unet_classes(torch)(**cfg)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    ours = UNet(**cfg, zero_init=False, zero_init_out=False)
    ours.load_state_dict(convert_state_dict(theirs.state_dict(), target_module=ours))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())
    return ours, theirs


CONFIGS = {
    "ddpm": dict(attention_resolutions=(4,), image_size=8),
    "adm_scale_shift_updown": dict(attention_resolutions=(8, 4), image_size=8, num_heads=2,
                                   use_scale_shift_norm=True, resblock_updown=True,
                                   num_classes=3, cfg=True),
    "qkv_first_pool": dict(attention_resolutions=(4,), image_size=8, num_heads=2,
                           qkv_order="qkv_first", conv_resample=False, num_classes=3,
                           flip_sin_to_cos=False),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_outputs_and_gradients_match_torch_8x8(name):
    torch = torch_or_skip()
    cfg = dict(in_channels=2, out_channels=3, model_channels=4, channel_mult=(1, 2),
               num_res_blocks=2, num_groups=2, **CONFIGS[name])
    ours, theirs = build_pair(torch, **cfg)
    x = autodiff.randn(2, 2, 8, 8, requires_grad=True)
    t = autodiff.tensor([3.5, 740.25], requires_grad=True)   # continuous t: d/dt compared too
    y = autodiff.tensor([0, 2]) if cfg.get("num_classes") else None
    if cfg.get("cfg"):
        y = autodiff.tensor([1, 3])                         # 3 = the learned null class
    xt, tt = to_torch(x, requires_grad=True), to_torch(t, requires_grad=True)
    yt = None if y is None else to_torch(y)
    out, out_t = ours(x, t, y), theirs(xt, tt, yt)
    assert_close(out, out_t, what=f"{name}: output")

    g = autodiff.randn(*out.shape)
    (out * g).sum().backward()
    (out_t * to_torch(g)).sum().backward()
    assert_close(x.grad, xt.grad, what=f"{name}: d/dx")
    assert_close(t.grad, tt.grad, what=f"{name}: d/dt")
    torch_params = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        assert_close(p.grad, torch_params[pname].grad, what=f"{name}: d/d {pname}")


def test_forward_matches_torch_28x28():
    torch = torch_or_skip()
    cfg = dict(in_channels=1, out_channels=1, model_channels=4, channel_mult=(1, 2, 2),
               num_res_blocks=1, num_groups=2, attention_resolutions=(7,), image_size=28,
               num_heads=2, use_scale_shift_norm=True, num_classes=10)
    ours, theirs = build_pair(torch, **cfg)
    x = autodiff.randn(2, 1, 28, 28)
    t, y = autodiff.tensor([1, 999]), autodiff.tensor([4, 9])
    with torch.no_grad():
        ref = theirs(to_torch(x), to_torch(t), to_torch(y))
    assert_close(ours(x, t, y), ref, what="28x28 output")


@pytest.mark.parametrize("flip", [False, True])
def test_time_embedding_matches_torch_formula(flip):
    """Against the ADM/diffusers-style vectorised torch expression (independent of the
    U-Net reference above only in being a second implementation of the same formula)."""
    torch = torch_or_skip()
    t = torch.tensor([0.0, 1.0, 17.5, 999.0])
    half = 5
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    ang = t[:, None] * freqs[None]
    parts = (torch.cos(ang), torch.sin(ang)) if flip else (torch.sin(ang), torch.cos(ang))
    ref = torch.cat(parts + (torch.zeros(4, 1),), dim=1)
    assert_close(timestep_embedding(np.array([0.0, 1.0, 17.5, 999.0]), 11, flip_sin_to_cos=flip),
                 ref, what="timestep embedding")
