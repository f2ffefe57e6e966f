"""convert_state_dict on real PyTorch state_dicts (float64, bfloat16, integer buffers), and the
safetensors reader against the ``safetensors`` package when it happens to be installed (it is
not a dependency)."""
import numpy as np  # host-side: reference arrays in tests
import pytest

import autodiff
from autodiff import nn
from refgen.backbones.convert import convert_state_dict, read_safetensors
from tests.crosscheck_utils import torch_or_skip, to_torch, assert_close

pytestmark = pytest.mark.crosscheck


def test_torch_state_dict_loads_and_gives_the_same_outputs():
    torch = torch_or_skip()
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.BatchNorm2d(3),
                                 torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5))
    with torch.no_grad():                       # non-default running statistics
        theirs[1].running_mean.normal_()
        theirs[1].running_var.uniform_(0.5, 2.0)
    theirs.eval()
    ours = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 5)).eval()
    sd = convert_state_dict(theirs.state_dict(), ours)
    assert sd["1.num_batches_tracked"].dtype == np.int64
    ours.load_state_dict(sd)
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4))
    assert_close(ours(autodiff.tensor(x)), theirs(to_torch(x)), what="converted Sequential")


def test_bfloat16_and_float16_torch_tensors_convert_exactly():
    torch = torch_or_skip()
    src = torch.randn(4, 3)
    sd = convert_state_dict({"bf": src.to(torch.bfloat16), "h": src.to(torch.float16)})
    assert sd["bf"].dtype == np.float32 and sd["h"].dtype == np.float16
    np.testing.assert_array_equal(sd["bf"].numpy(), src.to(torch.bfloat16).float().numpy())
    np.testing.assert_array_equal(sd["h"].numpy(), src.to(torch.float16).numpy())


def test_reader_agrees_with_the_safetensors_package(tmp_path):
    torch = torch_or_skip()
    st_torch = pytest.importorskip("safetensors.torch",
                                   reason="the optional safetensors package is not installed")
    tensors = {"f64": torch.randn(3, 2, dtype=torch.float64), "f32": torch.randn(4),
               "bf16": torch.randn(2, 5).to(torch.bfloat16), "f16": torch.randn(3).half(),
               "i64": torch.arange(5), "i32": torch.arange(4, dtype=torch.int32),
               "u8": torch.arange(6, dtype=torch.uint8), "b": torch.tensor([True, False])}
    path = tmp_path / "ref.safetensors"
    st_torch.save_file(tensors, str(path))
    back = read_safetensors(path)
    for name, t in tensors.items():
        want = t.float() if t.dtype == torch.bfloat16 else t
        np.testing.assert_array_equal(back[name], want.numpy(), err_msg=name)
