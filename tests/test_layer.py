"""KronLinear and the nets against independent references: torch.kron, F.linear, nn.Linear, known counts."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kron_report as kr
import kron_utils as ku

CASES = [  # in_factors, out_factors, rank, tied
    ((6,), (4,), 1, False),
    ((3, 4), (2, 5), 1, False),
    ((3, 4), (2, 5), 2, False),
    ((2, 3, 2), (3, 1, 2), 1, False),
    ((2, 3, 2), (3, 1, 2), 3, False),
    ((4, 4), (3, 3), 1, True),
    ((2, 2, 2), (3, 3, 3), 2, True),
]


def reference_weight(layer: ku.KronLinear) -> torch.Tensor:
    """sum_r torch.kron(F1[r], F2[r], ...) written with torch.kron directly."""
    k = len(layer.in_factors)
    total = 0
    for r in range(layer.rank):
        w = layer.factor(0)[r]
        for j in range(1, k):
            w = torch.kron(w, layer.factor(j)[r])
        total = total + w
    return total


@pytest.mark.parametrize("ins,outs,rank,tied", CASES)
def test_dense_weight_matches_torch_kron(ins, outs, rank, tied):
    torch.manual_seed(0)
    layer = ku.KronLinear(ins, outs, rank=rank, tied=tied)
    assert layer.dense_weight().shape == (math.prod(outs), math.prod(ins))
    torch.testing.assert_close(layer.dense_weight(), reference_weight(layer))


@pytest.mark.parametrize("ins,outs,rank,tied", CASES)
@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
def test_forward_matches_linear_with_rebuilt_weight(ins, outs, rank, tied, lead):
    torch.manual_seed(1)
    layer = ku.KronLinear(ins, outs, rank=rank, tied=tied)
    x = torch.randn(*lead, math.prod(ins))
    expected = F.linear(x, reference_weight(layer), layer.bias)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_forward_matches_nn_linear_holding_the_same_weight():
    torch.manual_seed(2)
    layer = ku.KronLinear((28, 28), (25, 25))
    dense = nn.Linear(784, 625)
    with torch.no_grad():
        dense.weight.copy_(reference_weight(layer))
        dense.bias.copy_(layer.bias)
    x = torch.randn(64, 784)
    torch.testing.assert_close(layer(x), dense(x), rtol=1e-4, atol=1e-5)


def test_no_bias_and_kron_of_many_factors():
    a, b, c = torch.randn(2, 3), torch.randn(4, 1), torch.randn(2, 2)
    torch.testing.assert_close(ku.kron(a, b, c), torch.kron(torch.kron(a, b), c))
    layer = ku.KronLinear((3, 1, 2), (2, 4, 2), bias=False)
    assert layer.bias is None
    x = torch.randn(7, 6)
    torch.testing.assert_close(layer(x), x @ reference_weight(layer).T, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ins,outs,rank,tied", [((3, 2), (2, 2), 2, False), ((2, 2), (3, 3), 1, True),
                                                ((2, 1, 3), (1, 2, 2), 2, False)])
def test_gradcheck_float64(ins, outs, rank, tied):
    torch.manual_seed(3)
    layer = ku.KronLinear(ins, outs, rank=rank, tied=tied).double()
    x = torch.randn(4, math.prod(ins), dtype=torch.float64, requires_grad=True)
    params = tuple(layer.factors) + (layer.bias,)

    def f(x, *ps):
        return torch.func.functional_call(layer, {**{f"factors.{i}": p for i, p in enumerate(ps[:-1])},
                                                  "bias": ps[-1]}, (x,))
    assert torch.autograd.gradcheck(f, (x, *params))


def test_factor_gradients_match_those_through_torch_kron():
    torch.manual_seed(4)
    layer = ku.KronLinear((4, 5), (3, 6), rank=2)
    x = torch.randn(8, 20)
    layer(x).pow(2).sum().backward()
    got = [f.grad.clone() for f in layer.factors]
    layer.zero_grad()
    F.linear(x, reference_weight(layer), layer.bias).pow(2).sum().backward()
    for g, f in zip(got, layer.factors):
        torch.testing.assert_close(g, f.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("ins,outs,rank,tied", [((28, 28), (25, 25), 1, False), ((28, 28), (25, 25), 1, True),
                                                ((28, 28), (25, 25), 8, False), ((7, 4, 7, 4), (5, 5, 5, 5), 1, False),
                                                ((7, 4, 7, 4), (5, 5, 5, 5), 3, False), ((25, 25), (5, 2), 1, False),
                                                ((2, 3, 2), (3, 1, 2), 2, False), ((4, 4, 4), (2, 2, 2), 1, True)])
def test_init_std_matches_nn_linear(ins, outs, rank, tied):
    torch.manual_seed(5)
    layer = ku.KronLinear(ins, outs, rank=rank, tied=tied)
    dense_std = nn.Linear(math.prod(ins), math.prod(outs)).weight.std().item()  # ~ 1/sqrt(3*in)
    assert 1 / math.sqrt(3 * math.prod(ins)) == pytest.approx(dense_std, rel=0.1)
    assert layer.dense_weight().std().item() == pytest.approx(1 / math.sqrt(3 * math.prod(ins)), rel=0.1)
    bound = 1 / math.sqrt(math.prod(ins))
    assert layer.bias.abs().max() <= bound and layer.bias.std() > bound / 4


@pytest.mark.parametrize("kwargs,message", [
    (dict(in_factors=(), out_factors=()), "non-empty"),
    (dict(in_factors=(28, 28), out_factors=(25,)), "same length"),
    (dict(in_factors=(28, 0), out_factors=(25, 25)), "positive"),
    (dict(in_factors=(28, -3), out_factors=(25, 25)), "positive"),
    (dict(in_factors=(28, 28), out_factors=(25, 25), rank=0), "rank"),
    (dict(in_factors=(28, 28), out_factors=(25, 25), rank=1.5), "rank"),
    (dict(in_factors=(28, 27), out_factors=(25, 25), tied=True), "identical"),
    (dict(in_factors=(4, 7), out_factors=(5, 5, 5)), "same length"),
    (dict(in_factors=0, out_factors=10), "positive"),
    (dict(in_factors=(2.5, 2), out_factors=(2, 2)), "positive integer"),
    (dict(in_factors="28", out_factors=(25,)), "sequence"),
    (dict(in_factors=784, out_factors=7), "cannot split 7"),
])
def test_invalid_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ku.KronLinear(**kwargs)


def test_forward_rejects_wrong_width():
    with pytest.raises(ValueError, match="expected last dimension 12"):
        ku.KronLinear((3, 4), (2, 2))(torch.randn(2, 11))


def test_extra_repr_shows_factors_rank_tied_and_weights():
    text = repr(ku.KronLinear((28, 28), (25, 25), rank=2, tied=True))
    for part in ["in_factors=(28, 28)", "out_factors=(25, 25)", "rank=2", "tied=True", "weights=1,400"]:
        assert part in text


def test_int_sizes_use_factorize():
    layer = ku.KronLinear(784, 10)
    assert layer.in_factors == (28, 28) and layer.out_factors == (5, 2)
    layer = ku.KronLinear(784, 625, num_factors=4)
    assert sorted(layer.in_factors) == [4, 4, 7, 7] and layer.out_factors == (5, 5, 5, 5)


@pytest.mark.parametrize("n,k", [(784, 2), (784, 4), (625, 4), (10, 2), (784, 3), (1000, 3), (96, 5), (12, 1)])
def test_factorize_is_balanced(n, k):
    got = ku.factorize(n, k)
    assert len(got) == k and math.prod(got) == n and (k == 1 or min(got) >= 2)
    # brute force: no k-tuple of factors >= 2 has a smaller max/min ratio
    import itertools
    divisors = [d for d in range(2, n + 1) if n % d == 0]
    best = min((max(c) / min(c) for c in itertools.combinations_with_replacement(divisors, k)
                if math.prod(c) == n), default=1.0)
    assert max(got) / min(got) == pytest.approx(best)


def test_factorize_examples_and_primes():
    assert ku.factorize(784) == (28, 28)
    assert ku.factorize(10) == (5, 2)
    assert ku.factorize(625, 4) == (5, 5, 5, 5)
    assert sorted(ku.factorize(784, 4)[:2]) == [4, 7] and ku.factorize(784, 4)[:2] == ku.factorize(784, 4)[2:]
    assert ku.factorize(13, 1) == (13,)
    with pytest.raises(ValueError, match="cannot split 13"):
        ku.factorize(13, 2)
    with pytest.raises(ValueError, match="positive"):
        ku.factorize(0, 2)


# --- the post's nets ----------------------------------------------------------------------------

POST_WEIGHTS = {"original": 496_250, "one_kron": 6_950, "two_kron": 7_650,
                "one_kron_out_kron": 875, "two_kron_out_kron": 1_575, "width10": 7_940}
PARAMS_WITH_BIASES = {"original": 784 * 625 + 625 + 625 * 10 + 10, "one_kron": 700 + 625 + 6250 + 10,
                      "two_kron": 1400 + 625 + 6250 + 10, "one_kron_out_kron": 700 + 625 + 175 + 10,
                      "two_kron_out_kron": 1400 + 625 + 175 + 10, "width10": 795 * 10 + 10}


@pytest.mark.parametrize("variant", list(POST_WEIGHTS))
def test_post_weight_and_parameter_counts(variant):
    model = ku.build_model(variant)
    assert ku.count_weights(model) == POST_WEIGHTS[variant]
    assert ku.count_params(model) == PARAMS_WITH_BIASES[variant]
    out = model(torch.randn(3, 784))
    assert out.shape == (3, 10)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(3))


def test_variants_table_and_families():
    assert list(ku.VARIANTS) == list(POST_WEIGHTS)
    assert ku.count_weights(ku.build_model("width32")) == 794 * 32
    assert ku.count_weights(ku.build_model("lowrank3")) == 3 * (784 + 625) + 6250
    assert ku.count_weights(ku.build_model("kron2_r4")) == 4 * 1400 + 6250
    assert ku.count_weights(ku.build_model("tiedkron2_r2")) == 2 * 700 + 6250
    assert ku.count_weights(ku.build_model("kron4_r1")) == 2 * (5 * 7 + 5 * 4) + 6250


@pytest.mark.parametrize("name", ["Original", "two-kron", "width0", "kron2_r0", "", "tiedkron4_r1"])
def test_unknown_or_invalid_variant_raises(name):
    with pytest.raises(ValueError) as info:
        ku.build_model(name)
    if name != "tiedkron4_r1":
        assert "original" in str(info.value) and "width10" in str(info.value)


# --- the one registry: the post's names are aliases of family members ----------------------------

def explicit_post_net(variant):
    """The post's nets built by hand from nn.Linear and KronLinear, as the code built them before the registry."""
    kron_in = lambda tied: ku.KronLinear((28, 28), (25, 25), tied=tied)  # noqa: E731
    dense_out = lambda: nn.Linear(625, 10)  # noqa: E731
    kron_out = lambda: ku.KronLinear((25, 25), (5, 2))  # noqa: E731
    return {"original": lambda: ku.mlp(nn.Linear(784, 625), dense_out()),
            "one_kron": lambda: ku.mlp(kron_in(True), dense_out()),
            "two_kron": lambda: ku.mlp(kron_in(False), dense_out()),
            "one_kron_out_kron": lambda: ku.mlp(kron_in(True), kron_out()),
            "two_kron_out_kron": lambda: ku.mlp(kron_in(False), kron_out()),
            "width10": lambda: ku.mlp(nn.Linear(784, 10), nn.Linear(10, 10))}[variant]()


@pytest.mark.parametrize("variant", list(POST_WEIGHTS))
def test_each_alias_builds_the_same_state_dict_as_before(variant):
    """The committed results stay valid: same seed, same parameters, bit for bit, via the name, its
    family member, and the explicit construction."""
    member = ku.POST_NETS[variant][1]
    built = {}
    for name, build in (("alias", lambda: ku.build_model(variant)), ("member", lambda: ku.build_model(member)),
                        ("explicit", lambda: explicit_post_net(variant))):
        torch.manual_seed(11)
        built[name] = build().state_dict()
    for name in ("member", "explicit"):
        assert list(built[name]) == list(built["alias"])
        for key in built["alias"]:
            assert torch.equal(built[name][key], built["alias"][key]), (name, key)


def test_every_registered_name_has_a_family_and_unknown_families_are_errors():
    assert kr.variant_family("two_kron") == kr.variant_family("kron2_r8") == "Kronecker, 2 factors, Kronecker rank r"
    assert kr.variant_family("kron4_r1") == "Kronecker, 4 factors, Kronecker rank r"
    assert kr.variant_family("original") == kr.variant_family("width10") == "dense (width h)"
    assert kr.variant_family("one_kron") == kr.variant_family("tiedkron2_r4")
    assert kr.variant_family("two_kron_out_kron") == kr.variant_family("kron2_r1_outkron")
    for name in ("conv3", "kron2", "tiedkron2_r0"):
        with pytest.raises(ValueError, match="unknown variant"):
            kr.variant_family(name)


def test_check_variants():
    assert kr.check_variants("two_kron, width32") == ["two_kron", "width32"]
    with pytest.raises(ValueError, match=r"unknown variant\(s\) \['tiedkron4_r1'\]"):
        kr.check_variants(["tiedkron4_r1"])  # parses, but (7,4,7,4) has no identical factor shapes
    with pytest.raises(ValueError, match="distinct"):
        kr.check_variants(["width10", "width10"])
    with pytest.raises(ValueError, match="non-empty"):
        kr.check_variants([])


def test_gaussian_init_draws_normal_factors_with_the_dense_std_in_expectation():
    torch.manual_seed(0)
    stds, kurtoses = [], []
    for _ in range(20):
        layer = ku.KronLinear((28, 28), (25, 25), init="gauss")
        stds.append(layer.dense_weight().std().item())
        f = torch.cat([p.detach().flatten() for p in layer.factors])
        kurtoses.append(float(((f - f.mean()) ** 4).mean() / f.var() ** 2))
    sigma = 1 / math.sqrt(3 * 784)  # nn.Linear's default std for 784 inputs
    assert sum(stds) / len(stds) == pytest.approx(sigma, rel=0.05)
    assert sum(kurtoses) / len(kurtoses) == pytest.approx(3.0, abs=0.25)  # normal: 3; uniform would be 1.8
    uniform = ku.KronLinear((28, 28), (25, 25))
    f = torch.cat([p.detach().flatten() for p in uniform.factors])
    assert float(((f - f.mean()) ** 4).mean() / f.var() ** 2) == pytest.approx(1.8, abs=0.15)
    with pytest.raises(ValueError, match="init must be one of"):
        ku.KronLinear((2, 2), (2, 2), init="xavier")


def test_gauss_variants_are_the_same_nets_with_other_factors():
    for name in ("two_kron", "one_kron", "two_kron_out_kron", "kron2_r4"):
        torch.manual_seed(3)
        a = ku.build_model(name)
        torch.manual_seed(3)
        b = ku.build_model(f"{name}_gauss")
        assert ku.count_weights(a) == ku.count_weights(b) and {k: v.shape for k, v in a.state_dict().items()} == {
            k: v.shape for k, v in b.state_dict().items()}
        assert b.fc1.init == "gauss" and a.fc1.init == "uniform"
    for name in ("width10_gauss", "original_gauss", "lowrank2_gauss"):
        with pytest.raises(ValueError, match="unknown variant"):
            ku.build_model(name)


@pytest.mark.parametrize("ins,outs,rank", [((28, 28), (25, 25), 1), ((3, 5), (4, 2), 3), ((2, 3, 4), (3, 2, 2), 2)])
def test_the_functional_core_is_f_linear_on_the_sum_of_torch_krons(ins, outs, rank):
    """kron_linear(x, factors, bias) against an independent dense reference built with torch.kron."""
    torch.manual_seed(rank)
    factors = [torch.randn(rank, o, i, dtype=torch.float64) for o, i in zip(outs, ins)]
    bias = torch.randn(math.prod(outs), dtype=torch.float64)
    weight = sum(_nested_kron([f[r] for f in factors]) for r in range(rank))
    x = torch.randn(2, 5, math.prod(ins), dtype=torch.float64)
    torch.testing.assert_close(ku.kron_linear(x, factors, bias), F.linear(x, weight, bias))
    torch.testing.assert_close(ku.kron_linear(x, factors), F.linear(x, weight))
    with pytest.raises(ValueError, match="expected last dimension"):
        ku.kron_linear(torch.randn(2, math.prod(ins) + 1, dtype=torch.float64), factors)


def _nested_kron(matrices):
    out = matrices[0]
    for m in matrices[1:]:
        out = torch.kron(out, m)
    return out


def test_kron2_forward_is_the_product_never_formed():
    """The post's two-factor layer as shown on the first page: (U ⊗ V) x by two small products, against torch.kron
    and against KronLinear holding the same factors."""
    torch.manual_seed(0)
    U, V = torch.randn(25, 28), torch.randn(25, 28)
    x = torch.randn(5, 784)
    torch.testing.assert_close(ku.kron2_forward(x, U, V), x @ torch.kron(U, V).T, rtol=1e-4, atol=1e-4)
    layer = ku.KronLinear(ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS, bias=False)
    U2, V2 = (f.detach()[0] for f in layer.factors)
    with torch.no_grad():
        torch.testing.assert_close(ku.kron2_forward(x, U2, V2), layer(x), rtol=1e-5, atol=1e-5)
    A, B = torch.randn(2, 3), torch.randn(4, 5)            # not square: the shapes must follow U and V
    y = torch.randn(7, 15)
    torch.testing.assert_close(ku.kron2_forward(y, A, B), y @ torch.kron(A, B).T, rtol=1e-5, atol=1e-5)


def test_source_listing_can_leave_out_the_docstring():
    import kron_report as kr
    full, short = kr.source_listing(ku.kron2_forward), kr.source_listing(ku.kron2_forward, docstrings=False)
    assert '"""' in full and '"""' not in short
    assert short.splitlines()[1].startswith("def kron2_forward(") and "return (U @ X @ V.T)" in short
    assert len(short.splitlines()) == 5       # the fence, the signature, two lines of body, the fence


def test_kron_linear_is_tensorly_torchs_rank_one_tt_matrix_layer():
    """tensorly-torch's FactorizedLinear with a TT-matrix ('blocktt') of rank 1 is U (x) V: the same cores give the
    same weight, outputs and gradients as KronLinear (make bench times the two side by side)."""
    import tltorch
    torch.manual_seed(3)
    ours = ku.KronLinear((4, 7), (3, 5))
    theirs = tltorch.FactorizedLinear((4, 7), (3, 5), factorization="blocktt", rank=(1, 1, 1), implementation="factorized")
    with torch.no_grad():
        for core, factor in zip(theirs.weight.factors, ours.factors):
            core.copy_(factor[0][None, ..., None])
        theirs.bias.copy_(ours.bias)
    torch.testing.assert_close(theirs.weight.to_matrix(), torch.kron(ours.factors[0][0], ours.factors[1][0]))
    x = torch.randn(6, 28)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    ours(x).square().sum().backward()
    theirs(x).square().sum().backward()
    for core, factor in zip(theirs.weight.factors, ours.factors):
        torch.testing.assert_close(core.grad[0, ..., 0], factor.grad[0], rtol=1e-4, atol=1e-6)
