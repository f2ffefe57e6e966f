"""Module machinery: registration, traversal, state_dict round trips and load errors,
train/eval, zero_grad, apply, dtype conversion, repr, parameter counts, containers."""
import numpy as np  # host-side: tests build state dicts from NumPy arrays
import pytest

import autodiff
import autodiff.nn as nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.scale = nn.Parameter(autodiff.ones(4))
        self.register_buffer("step", autodiff.zeros(()))
        self.register_buffer("cache", autodiff.zeros(2), persistent=False)

    def forward(self, x):
        return self.norm(self.fc(x)) * self.scale


def ids(tensors):
    return [id(t) for t in tensors]


def test_registration_by_assignment():
    b = Block()
    names = [n for n, _ in b.named_parameters()]
    assert names == ["scale", "fc.weight", "fc.bias", "norm.weight", "norm.bias"]
    assert [n for n, _ in b.named_buffers()] == [
        "step", "cache", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"]
    assert [n for n, _ in b.named_children()] == ["fc", "norm"]
    assert [n for n, _ in b.named_modules()] == ["", "fc", "norm"]
    # buffers are not parameters and vice versa
    assert not set(ids(b.parameters())) & set(ids(b.buffers()))
    assert ids(b.parameters(recurse=False)) == [id(b.scale)]
    assert all(p.requires_grad for p in b.parameters())
    assert not any(t.requires_grad for t in b.buffers())


def test_reassign_and_delete():
    b = Block()
    b.fc = nn.Identity()  # a module replaces a module
    assert "fc.weight" not in dict(b.named_parameters())
    b.scale = None  # a declared parameter may be set to None
    assert "scale" not in dict(b.named_parameters())
    with pytest.raises(TypeError, match="parameter 'scale'"):
        b.scale = autodiff.ones(4)  # a plain Tensor is not a Parameter
    b.step = autodiff.ones(())  # assigning to a buffer name updates the buffer
    assert float(b.state_dict()["step"]) == 1.0
    del b.norm
    assert [n for n, _ in b.named_children()] == ["fc"]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        b.nothing


def test_shared_parameter_counted_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert nn.num_parameters(seq) == 6 == seq.num_parameters()
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_init_must_run_first():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(autodiff.ones(1))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_state_dict_names_and_round_trip():
    b = Block()
    sd = b.state_dict()
    assert list(sd) == ["scale", "step", "fc.weight", "fc.bias", "norm.weight", "norm.bias",
                        "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"]
    assert "cache" not in sd  # non-persistent buffer
    assert not any(v.requires_grad for v in sd.values())
    arrays = {k: v.numpy() * 0 + np.arange(v.numpy().size).reshape(v.shape) for k, v in sd.items()}
    c = Block()
    fc_weight = c.fc.weight
    res = c.load_state_dict(arrays)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert c.fc.weight is fc_weight  # loaded in place
    for k, v in c.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), arrays[k])
    assert c.norm.num_batches_tracked.dtype == np.int64
    # and back from Tensors
    d = Block()
    d.load_state_dict(c.state_dict())
    x = autodiff.randn(5, 3)
    c.eval(), d.eval()
    np.testing.assert_array_equal(c(x).numpy(), d(x).numpy())


def test_state_dict_shares_memory():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    with autodiff.no_grad():
        lin.weight.fill_(3.0)
    assert float(sd["weight"].numpy()[0, 0]) == 3.0


def test_load_state_dict_lists_every_problem():
    b = Block()
    sd = {k: v.numpy() for k, v in b.state_dict().items()}
    del sd["fc.bias"], sd["norm.running_var"]
    sd["extra.weight"] = np.zeros(3)
    sd["fc.weight"] = np.zeros((5, 3))
    with pytest.raises(RuntimeError) as info:
        b.load_state_dict(sd)
    msg = str(info.value)
    for piece in ("'fc.bias'", "'norm.running_var'", "'extra.weight'",
                  "fc.weight: checkpoint shape (5, 3), model shape (4, 3)",
                  "missing keys", "unexpected keys", "mis-shaped keys"):
        assert piece in msg, msg
    # non-strict: missing/unexpected are reported, shapes still checked
    with pytest.raises(RuntimeError, match="mis-shaped"):
        b.load_state_dict(sd, strict=False)
    sd["fc.weight"] = np.ones((4, 3))
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc.bias", "norm.running_var"]
    assert res.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(b.fc.weight.numpy(), np.ones((4, 3)))


def test_load_state_dict_casts_dtype():
    lin = nn.Linear(2, 3, dtype=autodiff.float32)
    lin.load_state_dict({"weight": np.ones((3, 2)), "bias": np.zeros(3)})
    assert lin.weight.dtype == np.float32


@pytest.mark.parametrize("value", ["abc", np.full((3, 2), "x"), np.zeros((3, 2), dtype=object)])
def test_load_state_dict_rejects_non_numeric_values_by_key(value):
    lin = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="value for 'weight'"):
        lin.load_state_dict({"weight": value, "bias": np.zeros(3)})


def test_train_eval_flags():
    seq = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2)))
    assert all(m.training for m in seq.modules())
    assert seq.eval() is seq
    assert not any(m.training for m in seq.modules())
    seq.train()
    assert all(m.training for m in seq.modules())


def test_zero_grad_and_requires_grad():
    lin = nn.Linear(3, 2)
    lin(autodiff.randn(4, 3)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    assert np.all(lin.weight.grad.numpy() == 0)
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None
    lin.requires_grad_(False)
    assert not lin(autodiff.randn(4, 3)).requires_grad


def test_apply_visits_children_first():
    seen = []
    seq = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    seq.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]


def test_to_dtype_keeps_parameter_objects():
    bn = nn.BatchNorm1d(3, dtype=autodiff.float32)
    w = bn.weight
    bn.to(autodiff.float64)
    assert bn.weight is w and w.dtype == np.float64 and bn.running_mean.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64  # integer buffers untouched
    assert bn.float().weight.dtype == np.float32


def test_repr_like_torch():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.ModuleList([nn.Tanh()]))
    assert repr(seq) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): ModuleList(\n"
        "    (0): Tanh()\n"
        "  )\n"
        ")")
    assert repr(nn.Conv2d(1, 2, 3, padding=1)) == \
        "Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    assert repr(nn.Parameter(autodiff.zeros(1))).startswith("Parameter containing:\n")


def test_sequential_container():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == [b, c]
    x = autodiff.randn(4, 2)
    np.testing.assert_array_equal(seq(x).numpy(), c(b(a(x))).numpy())
    with pytest.raises(IndexError, match="index 3 is out of range for 3"):
        seq[3]
    del seq[0]
    assert list(dict(seq.named_children())) == ["0", "1"]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict(first=nn.Linear(1, 1)))
    assert list(named.state_dict()) == ["first.weight", "first.bias"]


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(2)])
    ml.append(nn.Linear(1, 2))
    ml.insert(0, nn.ReLU())
    assert len(ml) == 4 and isinstance(ml[0], nn.ReLU)
    assert list(ml.state_dict())[:2] == ["1.weight", "1.bias"]
    md = nn.ModuleDict({"enc": nn.Linear(2, 2), "dec": nn.Linear(2, 2)})
    assert "enc" in md and list(md.keys()) == ["enc", "dec"]
    assert list(md.state_dict())[0] == "enc.weight"
    with pytest.raises(KeyError, match="no key 'x'"):
        md["x"]


def test_deepcopy_gives_independent_parameters():
    import copy
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    c = copy.deepcopy(m)
    assert isinstance(c[0].weight, nn.Parameter) and c[0].weight is not m[0].weight
    with autodiff.no_grad():
        c[0].weight.fill_(0.0)
    assert np.any(m[0].weight.numpy() != 0)
    assert list(c.state_dict()) == list(m.state_dict())
