"""On the strict backend (NumPy with CuPy's refusals, ``autodiff.strict_backend``), sampling
and metric computations make no device-to-host transfers beyond the documented ones:

* sampling a GAN, a RealNVP flow and an NCSN: none (noise comes host-to-device from the
  ``Generator``, which its docstring documents);
* KID: one finiteness check per feature set and the two numbers it reports (mean, std), the
  same count for 3 or 30 subsets (it read one number back per subset before issue 8);
* FID: the two feature sets, copied explicitly to the host for SciPy's matrix square root.
"""
import pytest

import autodiff
from autodiff import backend as B
from autodiff.strict_backend import host_transfers


@pytest.fixture
def strict():
    previous = B.get_backend()
    autodiff.set_backend("strict")
    autodiff.set_default_dtype("float64")
    yield
    autodiff.set_backend(previous)


def _smoke_model(name):
    from refgen import families
    from refgen.data import load_dataset
    from refgen.families.base import data_info_for_config
    family = families.get_family(name)
    data = family.SMOKE_DATA[0]
    info = dict(load_dataset(data, split="train").info)
    info.setdefault("name", data)
    config = family.smoke_config(info)
    config["data_info"] = data_info_for_config(info)
    return family.build(config, info)


@pytest.mark.parametrize("family", ["gan", "realnvp", "ncsn"])
def test_sampling_makes_no_host_transfer(strict, family):
    model = _smoke_model(family)
    with host_transfers() as c:
        x = model.sample(4, generator=autodiff.Generator(0))
    assert (c["explicit"], c["scalar"]) == (0, 0), dict(c)
    assert tuple(x.shape)[0] == 4


@pytest.mark.parametrize("num_subsets", [3, 30])
def test_kid_reads_back_only_what_it_reports(strict, num_subsets):
    from refgen.metrics import kid
    real, fake = autodiff.randn(40, 8).data, (autodiff.randn(40, 8) + 0.5).data
    with host_transfers() as c:
        result = kid(real, fake, num_subsets=num_subsets, subset_size=20)
    assert (c["explicit"], c["scalar"]) == (0, 4), dict(c)   # 2 finite checks, mean, std
    assert result.mean > 0 and result.std > 0


def test_fid_copies_the_features_to_the_host_explicitly(strict):
    from refgen.metrics import fid_from_features
    real, fake = autodiff.randn(40, 8).data, (autodiff.randn(40, 8) + 0.5).data
    with host_transfers() as c:
        fid_from_features(real, fake)
    assert (c["explicit"], c["scalar"]) == (2, 0), dict(c)
