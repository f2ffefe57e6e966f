"""The benchmark models, written once for both frameworks.

Each ``make_*`` takes a framework adapter ``fw`` (``benchmarks.frameworks``) and builds
the model from ``fw.nn`` / ``fw.F`` / ``fw.lib``. Because refgen mirrors PyTorch's names,
the same lines give a ``torch.nn.Module`` and an ``autodiff.nn.Module`` with identical
structure and parameter names, so ``torch_model.state_dict()`` loads into the refgen model.

Shapes in comments: B batch, C channels, H/W spatial, T sequence length, D model width.
"""
import math


# --------------------------------------------------------------------------- (b) MLP
def make_mlp(fw, sizes=(784, 512, 512, 10)):
    """784-512-512-10 with ReLU: x (B, 784) -> logits (B, 10)."""
    nn, F = fw.nn, fw.F

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(sizes[0], sizes[1])
            self.fc2 = nn.Linear(sizes[1], sizes[2])
            self.fc3 = nn.Linear(sizes[2], sizes[3])

        def forward(self, x):
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    return MLP()


# --------------------------------------------------------------------------- (c) conv net
def make_convnet(fw):
    """conv3x3 1->32, conv 32->64 stride 2, conv 64->64 stride 2, global mean pool, linear.

    x (B, 1, 28, 28) -> (B, 32, 28, 28) -> (B, 64, 14, 14) -> (B, 64, 7, 7) -> (B, 64) -> (B, 10)
    """
    nn, F = fw.nn, fw.F

    class ConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
            self.conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
            self.conv3 = nn.Conv2d(64, 64, 3, stride=2, padding=1)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.relu(self.conv2(x))
            x = F.relu(self.conv3(x))
            return self.fc(x.mean(dim=(2, 3)))

    return ConvNet()


# --------------------------------------------------------------------------- (d) U-Net
def make_unet(fw, ch=(32, 64), tdim=128, groups=8):
    """A small DDPM-style U-Net (Ho et al. 2020, Appendix B, scaled down).

    x (B, 1, 28, 28), t (B,) float timesteps -> predicted noise (B, 1, 28, 28).
    Levels: 28x28 with ch[0] channels, 14x14 and 7x7 with ch[1]; residual blocks with
    GroupNorm, SiLU and the time embedding added per block; self-attention at 7x7;
    skip connections from the down path to the up path.
    """
    nn, F, lib = fw.nn, fw.F, fw.lib
    c0, c1 = ch

    def timestep_embedding(t, dim):
        """Sinusoidal embedding (Vaswani et al. 2017, Section 3.5): (B,) -> (B, dim)."""
        half = dim // 2
        freqs = lib.exp(lib.arange(half, dtype=t.dtype) * (-math.log(10000.0) / half))
        args = t[:, None] * freqs[None, :]
        return lib.cat([lib.sin(args), lib.cos(args)], dim=1)

    class ResBlock(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.norm1 = nn.GroupNorm(groups, cin)
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
            self.temb = nn.Linear(tdim, cout)
            self.norm2 = nn.GroupNorm(groups, cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
            self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

        def forward(self, x, temb):
            h = self.conv1(F.silu(self.norm1(x)))
            h = h + self.temb(F.silu(temb))[:, :, None, None]
            h = self.conv2(F.silu(self.norm2(h)))
            return self.skip(x) + h

    class AttnBlock(nn.Module):
        """Single-head self-attention over the H*W positions, with a residual."""

        def __init__(self, c):
            super().__init__()
            self.norm = nn.GroupNorm(groups, c)
            self.qkv = nn.Conv2d(c, 3 * c, 1)
            self.proj = nn.Conv2d(c, c, 1)

        def forward(self, x):
            b, c, h, w = x.shape
            qkv = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2)  # (B, 3, HW, C)
            q, k, v = qkv.unbind(1)
            out = F.scaled_dot_product_attention(q, k, v)                            # (B, HW, C)
            return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))

    class Upsample(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1)

        def forward(self, x):
            return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.time_fc1 = nn.Linear(c0, tdim)
            self.time_fc2 = nn.Linear(tdim, tdim)
            self.inc = nn.Conv2d(1, c0, 3, padding=1)
            self.down1 = ResBlock(c0, c0)                                  # 28x28
            self.pool1 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)        # -> 14x14
            self.down2 = ResBlock(c0, c1)                                  # 14x14
            self.pool2 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)        # -> 7x7
            self.mid1 = ResBlock(c1, c1)
            self.mid_attn = AttnBlock(c1)                                  # attention at 7x7
            self.mid2 = ResBlock(c1, c1)
            self.up2 = Upsample(c1)                                        # -> 14x14
            self.dec2 = ResBlock(c1 + c1, c1)                              # skip from down2
            self.up1 = Upsample(c1)                                        # -> 28x28
            self.dec1 = ResBlock(c1 + c0, c0)                              # skip from down1
            self.out_norm = nn.GroupNorm(groups, c0)
            self.out_conv = nn.Conv2d(c0, 1, 3, padding=1)

        def forward(self, x, t):
            temb = self.time_fc2(F.silu(self.time_fc1(timestep_embedding(t, c0))))  # (B, tdim)
            h = self.inc(x)
            s1 = self.down1(h, temb)                                        # (B, c0, 28, 28)
            s2 = self.down2(self.pool1(s1), temb)                           # (B, c1, 14, 14)
            h = self.pool2(s2)                                              # (B, c1, 7, 7)
            h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
            h = self.dec2(lib.cat([self.up2(h), s2], dim=1), temb)          # (B, c1, 14, 14)
            h = self.dec1(lib.cat([self.up1(h), s1], dim=1), temb)          # (B, c0, 28, 28)
            return self.out_conv(F.silu(self.out_norm(h)))

    return UNet()


# --------------------------------------------------------------------------- (e) Transformer
def make_transformer(fw, vocab=256, block_size=64, n_layer=4, d_model=128, n_head=4):
    """A GPT-style decoder: pre-LayerNorm blocks, causal attention, GELU MLP (4x).

    tokens (B, T) int64 -> logits (B, T, vocab). Learned position embeddings.
    """
    nn, F, lib = fw.nn, fw.F, fw.lib

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.proj = nn.Linear(d_model, d_model)

        def forward(self, x):
            b, t, d = x.shape
            qkv = self.qkv(x).reshape(b, t, 3, n_head, d // n_head).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)                                        # (B, nh, T, dh)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.proj(y.transpose(1, 2).reshape(b, t, d))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(d_model)
            self.attn = CausalSelfAttention()
            self.ln2 = nn.LayerNorm(d_model)
            self.fc = nn.Linear(d_model, 4 * d_model)
            self.fc_proj = nn.Linear(4 * d_model, d_model)

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.fc_proj(F.gelu(self.fc(self.ln2(x))))

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_emb = nn.Embedding(vocab, d_model)
            self.pos_emb = nn.Embedding(block_size, d_model)
            self.blocks = nn.ModuleList([Block() for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab, bias=False)

        def forward(self, idx):
            t = idx.shape[1]
            x = self.tok_emb(idx) + self.pos_emb(lib.arange(t))           # (B, T, D)
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_f(x))

    return Decoder()
