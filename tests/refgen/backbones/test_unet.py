"""U-Net: shapes at 8x8, 28x28, 32x32; zero initialisation; gradient checks; conditioning
(time, class, classifier-free null token); the errors. Tiny channel counts throughout."""
import numpy as np  # host-side: comparisons in the tests
import pytest

import autodiff
from autodiff.checks import gradcheck
from refgen.backbones.unet import AttentionBlock, Downsample, ResBlock, UNet, Upsample


def tiny(**kw):
    cfg = dict(in_channels=1, model_channels=4, channel_mult=(1, 2), num_res_blocks=1,
               num_groups=2, zero_init=False, zero_init_out=False,
               generator=autodiff.Generator(0))
    cfg.update(kw)
    return UNet(**cfg)


@pytest.mark.parametrize("size, channel_mult, attention", [
    (8, (1, 2), ()), (8, (1, 2), (4,)),
    (28, (1, 2, 2), ()), (28, (1, 2, 2), (14, 7)),
    (32, (1, 2, 2), ()), (32, (1, 1, 2, 2), (16,)),
])
@pytest.mark.parametrize("classes", [None, 3])
def test_output_shape(size, channel_mult, attention, classes):
    m = UNet(in_channels=2, out_channels=3, model_channels=4, channel_mult=channel_mult,
             num_res_blocks=1, attention_resolutions=attention,
             image_size=size if attention else None, num_heads=2, num_groups=2,
             num_classes=classes, zero_init_out=False)
    x = autodiff.randn(2, 2, size, size)
    y = None if classes is None else autodiff.tensor([0, 2])
    out = m(x, autodiff.tensor([0, 999]), y)
    assert out.shape == (2, 3, size, size)
    assert np.isfinite(out.numpy()).all()
    n_attn = sum(isinstance(mod, AttentionBlock) for mod in m.modules())
    # one per ResBlock at the chosen levels (down: num_res_blocks, up: num_res_blocks + 1),
    # plus the middle one
    assert n_attn == 1 + 3 * len(attention)


@pytest.mark.parametrize("updown, conv_resample, scale_shift",
                         [(False, True, False), (True, True, True), (False, False, True)])
def test_variants_run_at_28(updown, conv_resample, scale_shift):
    m = tiny(channel_mult=(1, 2, 2), resblock_updown=updown, conv_resample=conv_resample,
             use_scale_shift_norm=scale_shift, num_res_blocks=2)
    assert m(autodiff.randn(1, 1, 28, 28), [10]).shape == (1, 1, 28, 28)


def test_zero_init_out_gives_zero_output():
    m = UNet(in_channels=1, model_channels=4, num_res_blocks=1, num_groups=2,
             zero_init_out=True)
    out = m(autodiff.randn(2, 1, 8, 8), [1, 2])
    np.testing.assert_array_equal(out.numpy(), 0.0)
    assert not np.all(tiny()(autodiff.randn(2, 1, 8, 8), [1, 2]).numpy() == 0.0)


def test_zero_init_makes_residual_branches_identity():
    x, emb = autodiff.randn(2, 4, 6, 6), autodiff.randn(2, 5)
    block = ResBlock(4, 5, num_groups=2, use_scale_shift_norm=True)
    np.testing.assert_array_equal(block(x, emb).numpy(), x.numpy())
    attn = AttentionBlock(4, num_heads=2, num_groups=2)
    np.testing.assert_array_equal(attn(x).numpy(), x.numpy())
    assert not np.allclose(ResBlock(4, 5, num_groups=2, zero_init=False)(x, emb).numpy(),
                           x.numpy())


def test_scale_shift_norm_is_one_plus_scale():
    """GroupNorm(h) * (1 + scale) + shift (Nichol & Dhariwal 2021): with the embedding
    projection zero (scale = shift = 0) the block equals the plain block with the same
    weights (GroupNorm removes no shift there: e = 0); with scale = -1 the normalised h is
    multiplied by 0 and the branch, out_rest(shift), no longer depends on x."""
    ss = ResBlock(4, 5, num_groups=2, use_scale_shift_norm=True, zero_init=False,
                  generator=autodiff.Generator(1))
    plain = ResBlock(4, 5, num_groups=2, zero_init=False, generator=autodiff.Generator(2))
    with autodiff.no_grad():
        plain_params = dict(plain.named_parameters())
        for name, p in ss.named_parameters():
            if name.startswith("emb_layers"):
                p.data[...] = 0.0
                plain_params[name].data[...] = 0.0
            else:
                plain_params[name].data[...] = p.data
    x, emb = autodiff.randn(2, 4, 6, 6, dtype="float64"), autodiff.randn(2, 5, dtype="float64")
    ss.to("float64"), plain.to("float64")
    np.testing.assert_allclose(ss(x, emb).numpy(), plain(x, emb).numpy(), rtol=1e-12, atol=0)
    with autodiff.no_grad():
        ss.emb_layers[1].bias.data[:4] = -1.0                           # scale = -1
        ss.emb_layers[1].bias.data[4:] = np.arange(4.0)                 # shift
    x2 = autodiff.randn(2, 4, 6, 6, dtype="float64")
    branch = ss(x, emb).numpy() - x.numpy()
    branch2 = ss(x2, emb).numpy() - x2.numpy()
    np.testing.assert_allclose(branch, branch2, rtol=1e-12, atol=1e-12)
    shift = autodiff.tensor(np.broadcast_to(np.arange(4.0)[None, :, None, None], (2, 4, 6, 6)))
    np.testing.assert_allclose(branch, ss.out_layers[1:](shift).numpy(), rtol=1e-12, atol=1e-12)


def test_parameters_reproducible_from_generator():
    a, b = tiny(generator=autodiff.Generator(3)), tiny(generator=autodiff.Generator(3))
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb
        np.testing.assert_array_equal(pa.numpy(), pb.numpy())


def _with_parameters(model, names, fn):
    """fn(*inputs) evaluated with the named parameters replaced by extra Tensor arguments, so
    gradcheck can differentiate with respect to them."""
    owners = [model.get_submodule(n.rpartition(".")[0]) for n in names]
    keys = [n.rpartition(".")[2] for n in names]

    def wrapped(*args):
        n_in = len(args) - len(names)
        saved = [o._parameters[k] for o, k in zip(owners, keys)]
        for o, k, p in zip(owners, keys, args[n_in:]):
            o._parameters[k] = p
        try:
            return fn(*args[:n_in])
        finally:
            for o, k, p in zip(owners, keys, saved):
                o._parameters[k] = p
    return wrapped


GRAD_PARAMS = ["time_embed.0.weight", "label_emb.weight", "input_blocks.1.0.in_layers.2.weight",
               "input_blocks.1.0.emb_layers.1.bias", "middle_block.1.qkv.weight",
               "output_blocks.0.0.out_layers.0.weight", "output_blocks.1.0.skip_connection.weight",
               "out.2.bias"]


@pytest.mark.parametrize("scale_shift, updown", [(False, False), (True, True)])
def test_gradcheck_first_order(scale_shift, updown):
    m = tiny(attention_resolutions=(2,), image_size=4, num_heads=2, num_classes=3, cfg=True,
             use_scale_shift_norm=scale_shift, resblock_updown=updown)
    y = autodiff.tensor([1, 3])
    fn = _with_parameters(m, GRAD_PARAMS, lambda x, t: m(x, t, y))
    x = autodiff.randn(2, 1, 4, 4, requires_grad=True)
    t = autodiff.tensor([0.5, 7.0], requires_grad=True)   # continuous time: d/dt too
    params = [m.get_parameter(n).detach().requires_grad_() for n in GRAD_PARAMS]
    gradcheck(fn, [x, t] + params, second_order=False)


def test_gradcheck_second_order_very_small():
    m = tiny(channel_mult=(1,), model_channels=2, num_groups=1, use_scale_shift_norm=True)
    names = ["input_blocks.1.0.in_layers.2.weight", "middle_block.1.qkv.weight"]
    fn = _with_parameters(m, names, lambda x: m(x, [3]))
    x = autodiff.randn(1, 1, 2, 2, requires_grad=True)
    gradcheck(fn, [x] + [m.get_parameter(n).detach().requires_grad_() for n in names],
              n_directions=1)


def test_time_and_class_change_the_output():
    m = tiny(num_classes=3)
    x = autodiff.randn(1, 1, 8, 8)
    base = m(x, [5], [0]).numpy()
    assert not np.allclose(base, m(x, [6], [0]).numpy())
    assert not np.allclose(base, m(x, [5], [1]).numpy())
    # a scalar timestep is broadcast over the batch
    x2 = autodiff.randn(3, 1, 8, 8)
    np.testing.assert_array_equal(m(x2, 5, [0, 1, 2]).numpy(), m(x2, [5, 5, 5], [0, 1, 2]).numpy())


def test_cfg_null_token():
    m = tiny(num_classes=3, cfg=True)
    assert m.null_class == 3 and m.label_emb.weight.shape == (4, 16)
    x = autodiff.randn(2, 1, 8, 8)
    np.testing.assert_array_equal(m(x, [1, 2], None).numpy(), m(x, [1, 2], [3, 3]).numpy())
    assert tiny(num_classes=3).null_class is None


def test_dropout_only_in_training():
    m = tiny(dropout=0.5)
    x = autodiff.randn(2, 1, 8, 8)
    m.eval()
    np.testing.assert_array_equal(m(x, [1, 2]).numpy(), m(x, [1, 2]).numpy())
    m.train()
    assert not np.allclose(m(x, [1, 2]).numpy(), m(x, [1, 2]).numpy())


def test_float32_end_to_end():
    m = tiny(dtype=autodiff.float32, num_classes=2)
    out = m(autodiff.randn(2, 1, 8, 8, dtype=autodiff.float32), [1, 900], [0, 1])
    assert out.dtype == autodiff.float32
    out.sum().backward()
    assert all(p.grad.dtype == autodiff.float32 for p in m.parameters())


def test_resampling_layers():
    x = autodiff.randn(1, 2, 6, 6)
    assert Downsample(2, True, 3)(x).shape == (1, 3, 3, 3)
    np.testing.assert_allclose(Downsample(2, False)(x).numpy(),
                               x.numpy().reshape(1, 2, 3, 2, 3, 2).mean(axis=(3, 5)), atol=1e-15)
    np.testing.assert_array_equal(Upsample(2, False)(x).numpy(),
                                  x.numpy().repeat(2, axis=2).repeat(2, axis=3))
    assert Upsample(2, True)(x).shape == (1, 2, 12, 12)


def test_attention_qkv_orders_are_permutations_of_each_other():
    """The two layouts compute the same function once the qkv rows are permuted."""
    c, heads = 6, 3
    d = c // heads
    a = AttentionBlock(c, heads, num_groups=3, qkv_order="heads_first", zero_init=False)
    b = AttentionBlock(c, heads, num_groups=3, qkv_order="qkv_first", zero_init=False)
    state = {k: v.numpy() for k, v in a.state_dict().items()}
    # heads_first row of (head h, part j, channel i) is h*3d + j*d + i; qkv_first is j*c + h*d + i
    perm = [h * 3 * d + j * d + i for j in range(3) for h in range(heads) for i in range(d)]
    state["qkv.weight"] = state["qkv.weight"][perm]
    state["qkv.bias"] = state["qkv.bias"][perm]
    b.load_state_dict(state)
    x = autodiff.randn(2, c, 3, 3)
    np.testing.assert_allclose(a(x).numpy(), b(x).numpy(), rtol=1e-12, atol=1e-13)


def test_num_head_channels_sets_heads():
    assert AttentionBlock(8, num_head_channels=2, num_groups=2).num_heads == 4


def test_errors_name_the_problem():
    m = tiny(num_classes=3)
    with pytest.raises(ValueError, match=r"divisible by 2\^\(len\(channel_mult\)-1\) = 2"):
        m(autodiff.randn(1, 1, 7, 7), [1], [0])
    with pytest.raises(ValueError, match=r"input must be \(N, 1, H, W\), got shape \(1, 3, 8, 8\)"):
        m(autodiff.randn(1, 3, 8, 8), [1], [0])
    with pytest.raises(ValueError, match=r"t must have shape \(N,\) = \(2,\)"):
        m(autodiff.randn(2, 1, 8, 8), [1, 2, 3], [0, 1])
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        m(autodiff.randn(1, 1, 8, 8), [1], [3])
    with pytest.raises(ValueError, match="y .* class labels are required"):
        m(autodiff.randn(1, 1, 8, 8), [1])
    with pytest.raises(ValueError, match=r"y must be \(N,\) = \(1,\) integer labels"):
        m(autodiff.randn(1, 1, 8, 8), [1], autodiff.tensor([0.5]))
    with pytest.raises(ValueError, match="num_classes=None"):
        tiny()(autodiff.randn(1, 1, 8, 8), [1], [0])
    with pytest.raises(ValueError, match=r"attention_resolutions \[5\] match no level; .* \[8, 4\]"):
        tiny(attention_resolutions=(5,), image_size=8)
    with pytest.raises(ValueError, match="give image_size"):
        tiny(attention_resolutions=(4,))
    with pytest.raises(ValueError, match=r"input must be 8x8"):
        tiny(attention_resolutions=(4,), image_size=8)(autodiff.randn(1, 1, 16, 16), [1])
    with pytest.raises(ValueError, match=r"num_groups \(3\) must divide"):
        tiny(num_groups=3)
    with pytest.raises(ValueError, match="cfg=True needs num_classes"):
        tiny(cfg=True)
    with pytest.raises(ValueError, match="unknown qkv_order 'kqv'; known: heads_first, qkv_first"):
        AttentionBlock(4, qkv_order="kqv", num_groups=2)
    with pytest.raises(ValueError, match=r"emb must be \(N, 5\)"):
        ResBlock(4, 5, num_groups=2)(autodiff.randn(2, 4, 4, 4), autodiff.randn(2, 6))
