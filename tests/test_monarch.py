"""The Monarch layer against an independent construction (torch.block_diag and explicit permutation matrices) and,
tied, against KronLinear; the FLOPs of every family from its shapes against torch's FlopCounterMode."""
import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import kron_utils as ku


def permutation_matrix(rows: int, cols: int) -> torch.Tensor:
    """P with P @ vec_row_major(Z) = vec_row_major(Z.T) for Z of shape (rows, cols)."""
    p = torch.zeros(rows * cols, rows * cols)
    for a in range(rows):
        for b in range(cols):
            p[b * rows + a, a * cols + b] = 1.0
    return p


def block_diagonal_monarch(layer: ku.MonarchLinear) -> torch.Tensor:
    """W = P_2 diag(L_h(1), ..., L_h(o2)) P_1 diag(R_g(1), ..., R_g(i1)), from the blocks, by hand."""
    (i1, i2), (o1, o2) = layer.in_factors, layer.out_factors
    g = [a * layer.row_blocks // i1 for a in range(i1)]
    h = [b * layer.col_blocks // o2 for b in range(o2)]
    right = torch.block_diag(*[layer.right[g[a]] for a in range(i1)])   # (i1 o2, i1 i2): row a of X -> row a of Z
    left = torch.block_diag(*[layer.left[h[b]] for b in range(o2)])     # (o2 o1, o2 i1): column b of Z -> column b of Y
    return permutation_matrix(o2, o1) @ left @ permutation_matrix(i1, o2) @ right


@pytest.mark.parametrize("shape,blocks", [(((28, 28), (25, 25)), (1, 1)), (((28, 28), (25, 25)), (2, 2)),
                                          (((28, 28), (25, 25)), (28, 25)), (((6, 4), (3, 5)), (4, 2)),
                                          (((6, 4), (3, 5)), (5, 3)), (((7, 3), (2, 4)), (3, 4))])
def test_monarch_equals_the_block_diagonal_construction(shape, blocks):
    torch.manual_seed(0)
    layer = ku.MonarchLinear(*shape, *blocks)
    with torch.no_grad():
        layer.left.normal_()
        layer.right.normal_()
    w = block_diagonal_monarch(layer)
    torch.testing.assert_close(layer.dense_weight(), w, rtol=1e-5, atol=1e-5)
    x = torch.randn(5, layer.in_features)
    torch.testing.assert_close(layer(x), x @ w.T + layer.bias, rtol=1e-4, atol=1e-4)
    assert layer.num_weights() == blocks[0] * shape[1][1] * shape[0][1] + blocks[1] * shape[1][0] * shape[0][0]
    assert layer.weight_rms() == pytest.approx(w.square().mean().sqrt().item(), rel=1e-5)


def test_monarch_with_one_block_each_is_the_kronecker_layer():
    torch.manual_seed(4)
    monarch = ku.MonarchLinear((28, 28), (25, 25), 1, 1)
    torch.manual_seed(4)
    kron = ku.KronLinear((28, 28), (25, 25))
    torch.testing.assert_close(monarch.left, kron.factors[0].detach())   # the same draws: L = U, R = V
    torch.testing.assert_close(monarch.right, kron.factors[1].detach())
    torch.testing.assert_close(monarch.dense_weight(), torch.kron(kron.factors[0][0], kron.factors[1][0]))
    x = torch.randn(3, 784)
    torch.testing.assert_close(monarch(x), kron(x), rtol=1e-5, atol=1e-5)
    torch.manual_seed(7)
    a = ku.build_model("monarch1x1")
    torch.manual_seed(7)
    b = ku.build_model("two_kron")
    torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-5)


def test_monarch_initialisation_has_nn_linears_std_and_budgets_match_kronecker_sums():
    torch.manual_seed(0)
    layer = ku.MonarchLinear((28, 28), (25, 25), 4, 4)
    assert layer.dense_weight().std().item() == pytest.approx(1 / math.sqrt(3 * 784), rel=0.02)
    assert layer.weight_rms() == pytest.approx(1 / math.sqrt(3 * 784), rel=1e-5)
    weights = {v: ku.count_weights(ku.build_model(v)) - 6250 for v in ("monarch2x2", "monarch4x4", "monarch8x8")}
    kron = {v: ku.count_weights(ku.build_model(v)) - 6250 for v in ("kron2_r2", "kron2_r4", "kron2_r8")}
    assert list(weights.values()) == list(kron.values()) == [2800, 5600, 11200]
    for bad, message in (("monarch29x1", "row_blocks must be at most 28"), ("monarch1x26", "col_blocks must be at most 25"),
                         ("monarch0x1", "unknown variant")):
        with pytest.raises(ValueError, match=message):
            ku.build_model(bad)


def test_monarch_blocks_are_tied_in_contiguous_groups_and_untied_blocks_differ_per_row():
    layer = ku.MonarchLinear((28, 28), (25, 25), 2, 5)
    assert layer.row_group.tolist() == [0] * 14 + [1] * 14 and layer.col_group.tolist() == sum([[g] * 5 for g in range(5)], [])
    with torch.no_grad():
        layer.right[1].zero_()                       # rows 14..27 of the image now reach nothing
    x = torch.zeros(1, 784)
    x[0, 14 * 28:] = 1.0
    assert layer(x).sub(layer.bias).abs().max() == 0


FLOP_NETS = ["original", "width10", "lowrank8", "two_kron", "one_kron", "kron2_r2", "kron4_r1", "kron4_r4",
             "two_kron_out_kron", "one_kron_out_kron", "tt4_r4", "tt4_r5-4-5", "tt4_r2-3-2", "kron_25x16_25x49",
             "monarch2x2", "monarch28x25"]


@pytest.mark.parametrize("variant", FLOP_NETS)
def test_forward_flops_from_shapes_equal_torchs_flop_counter(variant):
    model = ku.build_model(variant)
    for batch in (1, 64, 1000):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(batch, 784))
        assert ku.forward_flops(variant, batch) == counter.get_total_flops(), (variant, batch)


def test_forward_flops_by_hand():
    assert ku.forward_flops("width10") == 2 * (784 * 10 + 10 * 10)
    # U X V^T: 28 rows x 28 pixels x 25 outputs, then 25 x 28 x 25; then the dense 625 -> 10
    assert ku.forward_flops("two_kron") == ku.forward_flops("monarch4x4") == 2 * (28 * 28 * 25 + 25 * 28 * 25 + 6250)
    with pytest.raises(ValueError, match="does not know Conv1d"):
        ku.layer_macs(torch.nn.Conv1d(1, 1, 3))


def _runs(table: dict) -> "pd.DataFrame":
    import pandas as pd
    return pd.DataFrame([dict(dataset="mnist", variant=v, seed=s, epoch=1, weights=1, params=1, train_loss=0.1,
                              test_loss=0.2, test_accuracy=a, seconds=1.0, status="ok")
                         for v, values in table.items() for s, a in enumerate(values, start=1)])


def test_monarch_partners_match_kronecker_sums_exactly_and_are_compared_in_the_tt_vocabulary():
    import pandas as pd

    import kron_report as kr
    assert [kr.monarch_partner(v) for v in ("kron2_r2", "kron2_r8", "two_kron", "kron4_r4", "tiedkron2_r2",
                                            "kron2_r2_gauss")] == ["monarch2x2", "monarch8x8", None, None, None, None]
    assert all(kr.input_weights(kr.monarch_partner(v)) == kr.input_weights(v) for v in ("kron2_r2", "kron2_r4"))
    rows = _runs({"kron2_r2": [97.0, 97.1, 97.2], "monarch2x2": [97.6, 97.7, 97.8],
                  "kron2_r4": [97.5, 97.6, 97.7], "monarch4x4": [97.5, 97.6, 97.7]})
    c = kr.monarch_comparisons(rows, ["kron2_r2", "kron2_r4", "two_kron"])
    assert c.variant.tolist() == ["kron2_r2", "kron2_r4"] and c.outcome.tolist() == ["loss", "tie"]
    assert c["diff"].iloc[0] == pytest.approx(-0.6)
    table = kr.monarch_table(c)
    assert table.verdict.tolist() == ["Kronecker behind", "level"] and table.seeds.tolist() == ["3/3", "3/3"]
    words = kr.monarch_summary(c)
    assert "At the budget of `kron2_r2`, the Monarch layer is ahead beyond" in words
    assert "At the budget of `kron2_r4`, the two are level within" in words
    assert "every budget" in kr.monarch_summary(c.iloc[:1])
    assert "untying at equal weights pays at some budgets" in words
    leaders = pd.DataFrame([dict(net="monarch4x4", high=100_000, outcome="win"), dict(net="original", high=10**6,
                                                                                      outcome="win")])
    assert "`monarch4x4` is ahead of every other family up to 100,000 FLOPs" in kr.monarch_summary(c, leaders)
    assert "At equal compute" not in kr.monarch_summary(c, leaders.iloc[1:])


def test_the_flops_plane_and_the_speed_table_read_shapes_and_the_bench_record():
    import kron_report as kr
    points = kr.net_points(_runs({"two_kron": [97.0, 97.1], "original": [98.0, 98.1], "width10": [94.0, 94.1]}))
    flops = kr.flops_points(points)
    assert flops.flops.to_dict() == {v: ku.forward_flops(v) for v in ("two_kron", "original", "width10")}
    best = kr.best_by_flops(flops, [20_000, 100_000, 1_000_000])
    assert best.winner.tolist()[0] == "dense (width h)" and len(best) == 3
    record = dict(rows=[dict(name=f"layer_ms_{v}_{b}", value=t * b) for v, t in (("original", 0.01), ("two_kron", 0.005))
                        for b in (64, 1000)] + [dict(name=f"layer_speed_two_kron_{b}", value=2.0) for b in (64, 1000)])
    table = kr.speed_table(record, ["original", "two_kron", "monarch4x4"])
    assert table["input layer"].tolist() == ["original", "two_kron"]  # no measurement, no row
    assert table["× dense, batch 64"].tolist() == ["1", "2.0"] and table["ms, batch 1,000"].tolist() == ["10.000", "5.000"]
    assert table["FLOPs per image"].tolist() == [2 * 784 * 625, 2 * (28 * 28 * 25 + 25 * 28 * 25)]
    assert kr.speed_table(None, ["original"]) is None and kr.speed_table(dict(rows=[]), ["original"]) is None
