"""TTLinear against tensorly's TT-matrix, F.linear, nn.Linear's layout, and KronLinear."""
import math

import numpy as np
import pytest
import tensorly as tl
import torch
import torch.nn.functional as F
from tensorly.tt_matrix import tt_matrix_to_matrix
from torch import nn

import kron_report as kr
import kron_utils as ku

tl.set_backend("pytorch")

SHAPES = [((7, 4, 7, 4), (5, 5, 5, 5), 4), ((7, 4, 7, 4), (5, 5, 5, 5), (2, 3, 5)), ((2, 3, 4), (4, 3, 2), (2, 3)),
          ((28, 28), (25, 25), 3), ((6,), (5,), 1), ((3, 5), (7, 2), 1), ((9, 2, 2), (2, 3, 9), 2)]


def random_layer(in_factors, out_factors, ranks, seed=0):
    """A TTLinear with random (not std-matched) cores, so that the checks do not rely on the init."""
    torch.manual_seed(seed)
    layer = ku.TTLinear(in_factors, out_factors, ranks)
    with torch.no_grad():
        for core in layer.cores:
            core.normal_()
        layer.bias.normal_()
    return layer


@pytest.mark.parametrize("in_factors,out_factors,ranks", SHAPES)
def test_dense_weight_matches_tensorly(in_factors, out_factors, ranks):
    layer = random_layer(in_factors, out_factors, ranks)
    want = tt_matrix_to_matrix([c.detach() for c in layer.cores])
    got = layer.dense_weight().detach()
    assert got.shape == (math.prod(out_factors), math.prod(in_factors)) == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("in_factors,out_factors,ranks", SHAPES)
def test_forward_and_gradients_match_f_linear_on_the_rebuilt_weight(in_factors, out_factors, ranks):
    layer = random_layer(in_factors, out_factors, ranks, seed=1)
    x = torch.randn(2, 3, layer.in_features)
    y = layer(x)
    dense = F.linear(x, layer.dense_weight(), layer.bias)
    assert y.shape == (2, 3, layer.out_features)
    torch.testing.assert_close(y, dense, rtol=1e-4, atol=1e-3 * dense.abs().max().item())
    (g_forward,) = torch.autograd.grad(y.square().sum(), layer.cores[0])
    (g_dense,) = torch.autograd.grad(dense.square().sum(), layer.cores[0])
    torch.testing.assert_close(g_forward, g_dense, rtol=1e-3, atol=1e-3 * g_dense.abs().max().item())


def test_index_layout_is_nn_linear_row_major_and_entries_are_core_products():
    """W[row, col] with row = (o_1..o_k), col = (i_1..i_k) both row-major: the product of core slices."""
    in_factors, out_factors = (7, 4, 7, 4), (5, 5, 5, 5)
    layer = random_layer(in_factors, out_factors, (2, 3, 2), seed=2)
    rng = np.random.default_rng(0)
    linear = nn.Linear(layer.in_features, layer.out_features)
    with torch.no_grad():
        linear.weight.copy_(layer.dense_weight())
        linear.bias.copy_(layer.bias)
    x = torch.randn(4, layer.in_features)
    torch.testing.assert_close(layer(x), linear(x), rtol=1e-4, atol=1e-3)
    for _ in range(20):
        o = [int(rng.integers(n)) for n in out_factors]
        i = [int(rng.integers(n)) for n in in_factors]
        product = torch.ones(1, 1, dtype=torch.float64)
        for core, a, b in zip(layer.cores, o, i):
            product = product @ core[:, a, b, :].detach().double()
        row, col = np.ravel_multi_index(o, out_factors), np.ravel_multi_index(i, in_factors)
        assert linear.weight[row, col].item() == pytest.approx(product.item(), rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("in_factors,out_factors", [((28, 28), (25, 25)), ((7, 4, 7, 4), (5, 5, 5, 5)),
                                                    ((2, 3, 4), (4, 3, 2))])
def test_all_ranks_one_is_the_kronecker_layer(in_factors, out_factors):
    tt = random_layer(in_factors, out_factors, 1, seed=3)
    kron = ku.KronLinear(in_factors, out_factors)
    with torch.no_grad():
        for f, core in zip(kron.factors, tt.cores):
            f.copy_(core[0, :, :, 0].unsqueeze(0))
        kron.bias.copy_(tt.bias)
    torch.testing.assert_close(tt.dense_weight(), ku.kron(*(c[0, :, :, 0] for c in tt.cores)))
    x = torch.randn(5, tt.in_features)
    torch.testing.assert_close(tt(x), kron(x), rtol=1e-4, atol=1e-3)
    assert tt.num_weights() == kron.num_weights() == sum(o * i for o, i in zip(out_factors, in_factors))


@pytest.mark.parametrize("rank", [2, 4])
def test_two_cores_of_rank_r_are_a_rank_r_kronecker_sum(rank):
    tt = random_layer((28, 28), (25, 25), rank, seed=4)
    kron = ku.KronLinear((28, 28), (25, 25), rank=rank)
    with torch.no_grad():
        kron.factors[0].copy_(tt.cores[0][0].permute(2, 0, 1))  # s-th term: G_1[0, :, :, s]
        kron.factors[1].copy_(tt.cores[1][..., 0])              # and G_2[s, :, :, 0]
        kron.bias.copy_(tt.bias)
    torch.testing.assert_close(tt.dense_weight(), kron.dense_weight(), rtol=1e-5, atol=1e-4)
    assert tt.num_weights() == kron.num_weights() == rank * 2 * 25 * 28


@pytest.mark.parametrize("ranks", [1, 2, 4, (3, 1, 6)])
def test_init_gives_the_dense_layers_std_and_bias_range(ranks):
    torch.manual_seed(5)
    layer = ku.TTLinear((7, 4, 7, 4), (5, 5, 5, 5), ranks)
    w = layer.dense_weight().detach()
    assert w.square().mean().sqrt().item() == pytest.approx(1 / math.sqrt(3 * 784), rel=1e-4)
    assert layer.weight_rms() == pytest.approx(w.square().mean().sqrt().item(), rel=1e-4)
    assert layer.bias.abs().max().item() <= 1 / math.sqrt(784)
    assert nn.Linear(784, 625).weight.std().item() == pytest.approx(w.std().item(), rel=0.02)


def test_the_t3f_tutorial_net_has_7985_parameters():
    model = ku.build_model("tt4_r4")
    assert model.fc1.in_factors == (7, 4, 7, 4) and model.fc1.out_factors == (5, 5, 5, 5)
    assert model.fc1.ranks == (1, 4, 4, 4, 1)
    assert [tuple(c.shape) for c in model.fc1.cores] == [(1, 5, 7, 4), (4, 5, 4, 4), (4, 5, 7, 4), (4, 5, 4, 1)]
    # by hand: 1*5*7*4 + 4*5*4*4 + 4*5*7*4 + 4*5*4*1 = 140 + 320 + 560 + 80 = 1,100 core entries, + 625 biases,
    # + 625*10 + 10 for the dense output: the tutorial's 1,725 + 6,260
    assert ku.count_weights(model.fc1) == 1100 and ku.count_params(model.fc1) == 1725
    assert ku.count_params(model) == 7985 and ku.count_weights(model) == 7350


def test_tt_rank_one_net_is_the_four_factor_kronecker_net():
    a, b = ku.seeded_model("tt4_r1", 7), ku.seeded_model("kron4_r1", 7)
    torch.testing.assert_close(a.fc1.dense_weight(), b.fc1.dense_weight(), rtol=0, atol=0)
    x = torch.randn(3, 784)
    torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ranks,message", [(0, "ranks"), ((2, 2), "3 positive ints"), ("4", "ranks"),
                                           ((2, 0, 2), "each entry of ranks"), (True, "ranks")])
def test_bad_ranks_raise(ranks, message):
    with pytest.raises(ValueError, match=message):
        ku.TTLinear((7, 4, 7, 4), (5, 5, 5, 5), ranks)


def test_tt_variant_names_parse_and_bad_ones_are_rejected():
    assert kr.variant_family("tt4_r2") == kr.variant_family("tt4_r2-3-2") == "tensor train, 4 cores"
    assert "TT-matrix of 4 cores with TT-ranks 2" in kr.describe_variant("tt4_r2")
    assert "TT-ranks 2-3-2" in kr.describe_variant("tt4_r2-3-2")
    layer = ku.build_model("tt4_r2-3-2").fc1
    assert layer.ranks == (1, 2, 3, 2, 1) and ku.count_weights(layer) == 35 * 2 + 2 * 20 * 3 + 3 * 35 * 2 + 2 * 20
    for bad in ["tt4_r0", "tt0_r2", "tt4", "tt4_r2_gauss", "tt4_r2_outkron", "tt4_r0-1-1", "tt4_r2--3", "tt4_r2-"]:
        with pytest.raises(ValueError, match="tt<k>_r<r>"):
            ku.build_model(bad)
    with pytest.raises(ValueError, match="3 positive ints"):   # 4 cores have 3 inner bonds
        ku.build_model("tt4_r2-3")


@pytest.mark.parametrize("in_factors,out_factors,ranks", [((7, 4, 7, 4), (5, 5, 5, 5), (1, 4, 4, 4, 1)),
                                                          ((3, 2), (2, 4), (1, 3, 1)), ((2, 3, 2), (3, 2, 2), (1, 2, 3, 1))])
def test_the_functional_core_is_f_linear_on_tensorlys_matrix(in_factors, out_factors, ranks):
    torch.manual_seed(sum(ranks))
    cores = [torch.randn(ranks[j], o, i, ranks[j + 1], dtype=torch.float64)
             for j, (o, i) in enumerate(zip(out_factors, in_factors))]
    weight = tt_matrix_to_matrix(cores)
    x, bias = torch.randn(6, math.prod(in_factors), dtype=torch.float64), torch.randn(math.prod(out_factors),
                                                                                      dtype=torch.float64)
    torch.testing.assert_close(ku.tt_linear(x, cores, bias), F.linear(x, weight, bias))


@pytest.mark.parametrize("in_factors,out_factors,ranks", SHAPES + [((50, 2, 2), (2, 2, 50), (2, 3)),
                                                                   ((2, 2, 50), (50, 2, 2), (3, 2)),
                                                                   ((7, 4, 7, 4), (5, 5, 5, 5), (5, 4, 5))])
@pytest.mark.parametrize("batch", [1, 64])
def test_every_split_is_tensorlys_matrix_and_tt_split_takes_the_fewest_flops(in_factors, out_factors, ranks, batch):
    """tt_linear at any split m gives F.linear on tensorly's TT-matrix; tt_split picks the split whose FLOPs, as
    torch's FlopCounterMode counts them, are fewest (unbalanced grids move it off the middle)."""
    from torch.utils.flop_counter import FlopCounterMode
    layer = random_layer(in_factors, out_factors, ranks).double()
    cores = list(layer.cores)
    x = torch.randn(batch, layer.in_features, dtype=torch.float64)
    reference = F.linear(x, tt_matrix_to_matrix([c.detach() for c in cores]), layer.bias)
    flops = {}
    for m in range(1, max(2, len(cores))):  # one core: m = 1, nothing on the right
        with FlopCounterMode(display=False) as counter:
            out = ku.tt_linear(x, cores, layer.bias, split=m)
        torch.testing.assert_close(out, reference)
        flops[m] = counter.get_total_flops()
    chosen = ku.tt_split([tuple(c.shape) for c in cores], batch)
    assert flops[chosen] == min(flops.values()), (chosen, flops)
    torch.testing.assert_close(ku.tt_linear(x, cores, layer.bias), reference)
