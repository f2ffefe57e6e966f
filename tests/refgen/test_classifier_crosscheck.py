"""DigitClassifier against the same network written in PyTorch, with the same weights."""
import pytest

import autodiff
from refgen.backbones.classifier import DigitClassifier
from tests.crosscheck_utils import assert_close, to_torch, torch_or_skip

pytestmark = pytest.mark.crosscheck


@pytest.mark.parametrize("size", [8, 28])
def test_logits_and_features_match_torch(size):
    torch = torch_or_skip()
    nn = torch.nn
    net = DigitClassifier(image_size=size, num_classes=10)
    layers, c_in = [], 1
    for i, c in enumerate(net.config["channels"]):
        stride = 2 if 1 <= i <= net.config["downsamples"] else 1
        layers += [nn.Conv2d(c_in, c, 3, stride=stride, padding=1), nn.ReLU()]
        c_in = c

    flatten = net.config["pool"] == "flatten"
    side = 7 if size == 28 else 4

    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(*layers)
            self.fc = nn.Linear(c_in * side * side if flatten else c_in, net.hidden)
            self.head = nn.Linear(net.hidden, 10)

        def features(self, x):
            h = self.body(x)
            h = torch.flatten(h, 1) if flatten else h.mean(dim=(2, 3))
            return torch.relu(self.fc(h))

    ref = Reference().double()
    ref.load_state_dict({k: to_torch(v) for k, v in net.state_dict().items()})
    x = autodiff.rand(3, 1, size, size)
    with torch.no_grad():
        feats = ref.features(to_torch(x))
        assert_close(net.features(x), feats, what="features")
        assert_close(net.logits(x), ref.head(feats), what="logits")
