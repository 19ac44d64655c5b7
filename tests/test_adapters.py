"""The Kronecker adapter against Hugging Face peft's LoKr, the reference implementation: the same ΔW, forward,
trainable count and merged weight for the same factors; and against torch.kron for a Kronecker sum."""
import copy
import math

import pytest
import torch
from peft import LoKrConfig, get_peft_model
from torch import nn

import kron_utils as ku


class Net(nn.Module):
    """The post's MLP shape, as peft sees a model: named Linear layers."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(784, 625), nn.Linear(625, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def lokr(r: int = 16, alpha: float = 16, seed: int = 0):
    """(the base net, peft's LoKr on its fc1, that LoKr layer) with peft's factor lokr_w1 drawn non-zero."""
    torch.manual_seed(seed)
    base = Net()
    model = get_peft_model(copy.deepcopy(base), LoKrConfig(r=r, alpha=alpha, target_modules=["fc1"]))
    layer = model.base_model.model.fc1
    with torch.no_grad():
        layer.lokr_w1["default"].normal_(0, 0.05)  # its init is zero: make the check see both factors
    return base, model, layer


def adapter_like(base: Net, layer) -> ku.KronAdapter:
    """Our adapter on a copy of the base's fc1, holding peft's two factors and scale."""
    ours = ku.KronAdapter(copy.deepcopy(base.fc1), rank=1, scale=layer.scaling["default"])
    with torch.no_grad():
        ours.delta.factors[0][0].copy_(layer.lokr_w1["default"])
        ours.delta.factors[1][0].copy_(layer.lokr_w2["default"])
    return ours


@pytest.mark.parametrize("r,alpha", [(16, 16), (14, 7), (25, 50)])
def test_same_factors_give_peft_lokrs_delta_and_forward(r, alpha):
    base, _, layer = lokr(r, alpha)
    assert set(layer.lokr_w1) == {"default"} and set(layer.lokr_w2) == {"default"}  # no rank decomposition at r >= 14
    assert tuple(layer.lokr_w1["default"].shape) == (25, 28) and layer.scaling["default"] == pytest.approx(alpha / r)
    ours = adapter_like(base, layer)
    torch.testing.assert_close(ours.delta_weight(), layer.get_delta_weight("default"), rtol=1e-5, atol=1e-7)
    x = torch.randn(6, 784)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), layer(x), rtol=1e-5, atol=1e-5)


def test_trainable_count_matches_peft():
    base, model, layer = lokr()
    trainable, _ = model.get_nb_trainable_parameters()
    ours = adapter_like(base, layer)
    assert ours.num_trainable() == trainable == 2 * 25 * 28  # 1,400 by hand: A and B, each 25 x 28
    assert ku.KronAdapter(nn.Linear(784, 625), rank=3).num_trainable() == 3 * 1400


def test_merging_matches_peft_merge_and_unload():
    base, model, layer = lokr(16, 8)
    ours = adapter_like(base, layer)
    merged = model.merge_and_unload().fc1
    torch.testing.assert_close(ours.merged().weight, merged.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.merged().bias, merged.bias)
    x = torch.randn(4, 784)
    with torch.no_grad():
        torch.testing.assert_close(ours.merged()(x), ours(x), rtol=1e-5, atol=1e-5)


def test_a_kronecker_sum_adapter_starts_at_the_base_and_trains_only_its_factors():
    torch.manual_seed(1)
    fc1 = nn.Linear(784, 625)
    adapter = ku.KronAdapter(fc1, rank=3, scale=0.5)
    x = torch.randn(8, 784)
    torch.testing.assert_close(adapter(x), fc1(x))  # A starts at zero: ΔW = 0
    with torch.no_grad():
        adapter.delta.factors[0].normal_()
    (a, b) = adapter.delta.factors
    expected = 0.5 * sum(torch.kron(a[r], b[r]) for r in range(3))
    torch.testing.assert_close(adapter.delta_weight(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(adapter(x), x @ (fc1.weight + expected).T + fc1.bias, rtol=1e-4, atol=1e-4)
    adapter(x).sum().backward()
    assert fc1.weight.grad is None and fc1.bias.grad is None and a.grad is not None and b.grad is not None
    bound = 1 / math.sqrt(28)  # kaiming_uniform(a=sqrt(5)) on a 25 x 28 factor, as peft draws lokr_w2
    assert b.abs().max() <= bound and b.abs().max() > 0.8 * bound


@pytest.mark.parametrize("base,factors,message", [
    (nn.Conv2d(1, 1, 3), ((28, 28), (25, 25)), "must be an nn.Linear"),
    (nn.Linear(784, 625), ((28, 28), (25, 24)), "600 update for a 784 -> 625 layer")])
def test_bad_adapters_fail_clearly(base, factors, message):
    with pytest.raises(ValueError, match=message):
        ku.KronAdapter(base, *factors)
