"""Going beyond the post: the nearest-Kronecker projection, the model cache, and the Part 3 notebook."""

import numpy as np
import pytest
import torch
from torch import nn

import kron_report as kr
import kron_utils as ku


def rearrangement_tail(w: np.ndarray, o, i, r: int) -> float:
    """Eckart-Young, computed independently: the best rank-r Kronecker sum leaves the singular values
    of the block-rearranged matrix beyond r. Here each (o2 x i2) block becomes one row, by loops."""
    (o1, o2), (i1, i2) = o, i
    rows = [w[a * o2:(a + 1) * o2, c * i2:(c + 1) * i2].reshape(-1) for a in range(o1) for c in range(i1)]
    s = np.linalg.svd(np.stack(rows), compute_uv=False)
    return float(np.sqrt((s[r:] ** 2).sum()))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_from_dense_recovers_an_exact_kronecker_sum(rank):
    torch.manual_seed(rank)
    a, b = torch.randn(rank, 4, 3), torch.randn(rank, 2, 5)
    w = sum(torch.kron(a[r], b[r]) for r in range(rank))
    layer = ku.KronLinear.from_dense(w, (3, 5), (4, 2), rank=rank)
    torch.testing.assert_close(layer.dense_weight(), w, rtol=1e-4, atol=1e-5)
    assert layer.bias is None


@pytest.mark.parametrize("rank", [1, 2, 5])
def test_from_dense_is_the_nearest_kronecker_sum(rank):
    torch.manual_seed(10 + rank)
    w = torch.randn(12, 10, dtype=torch.float64)
    layer = ku.KronLinear.from_dense(w, (5, 2), (3, 4), rank=rank)
    best = (w - layer.dense_weight().double()).norm().item()
    assert best == pytest.approx(rearrangement_tail(w.numpy(), (3, 4), (5, 2), rank), rel=1e-5)
    for trial in range(20):  # random sums and perturbations of the optimum are never closer
        other = ku.KronLinear((5, 2), (3, 4), rank=rank).double()
        assert (w - other.dense_weight()).norm().item() >= best
        with torch.no_grad():
            for f, g in zip(other.factors, layer.factors):
                f.copy_(g.double() + 1e-3 * torch.randn_like(f))
        assert (w - other.dense_weight()).norm().item() >= best - 1e-9


def test_from_dense_copies_the_bias_and_rejects_bad_input():
    dense = nn.Linear(6, 4)
    layer = ku.KronLinear.from_dense(dense.weight, (3, 2), (2, 2), bias=dense.bias)
    torch.testing.assert_close(layer.bias, dense.bias)
    with pytest.raises(ValueError, match="shape"):
        ku.KronLinear.from_dense(dense.weight, (3, 3), (2, 2))
    with pytest.raises(ValueError, match="exactly two factors"):
        ku.KronLinear.from_dense(torch.randn(8, 8), (2, 2, 2), (2, 2, 2))
    with pytest.raises(ValueError, match="rank"):
        ku.KronLinear.from_dense(dense.weight, (3, 2), (2, 2), rank=7)


def test_projection_of_a_dense_net_that_is_a_kronecker_product_changes_nothing():
    torch.manual_seed(3)
    net = ku.build_model("original")
    with torch.no_grad():
        net.fc1.weight.copy_(torch.kron(torch.randn(25, 28), torch.randn(25, 28)) * 0.05)
    projected = kr.kron_projection(net, rank=1)
    x = torch.randn(5, 784)
    torch.testing.assert_close(projected(x), net(x), rtol=1e-3, atol=1e-4)
    assert ku.count_weights(projected) == 1400 + 6250
    with pytest.raises(ValueError, match="dense 784->625"):
        kr.kron_projection(ku.build_model("two_kron"), rank=1)


def test_trained_models_are_cached_with_their_settings(tmp_path, monkeypatch):
    settings = ku.TrainSettings(epochs=1, dataset="synthetic")
    first = kr.trained_models("width10", [1, 2], settings, tmp_path)
    real_train = ku.train
    monkeypatch.setattr(ku, "train", lambda *a, **k: pytest.fail("retrained a cached model"))
    again = kr.trained_models("width10", [1, 2], settings, tmp_path)
    for a, b in zip(first, again):
        for (_, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(p, q)
    calls = []
    monkeypatch.setattr(ku, "train", lambda *a, **k: calls.append(a) or real_train(*a, **k))
    kr.trained_models("width10", [1, 2], ku.TrainSettings(epochs=2, dataset="synthetic"), tmp_path)
    assert len(calls) == 1  # other settings: retrained, in a folder of their own


def test_projection_experiment_rows():
    settings = ku.TrainSettings(epochs=2, dataset="synthetic")
    _, dense = ku.train("original", [1, 2], settings, progress=False)
    rows = kr.projection_experiment(dense, [1, 2], [1, 4], settings)
    assert set(rows.variant) == {"projected-kron2_r1", "projected-kron2_r4"}
    assert sorted(rows.epoch.unique()) == [0, 1, 2] and len(rows) == 2 * 2 * 3
    errors = rows.groupby("variant").relative_error.mean()
    assert 0 < errors["projected-kron2_r4"] < errors["projected-kron2_r1"] < 1
    # the learned change and how far training moved, by hand for seed 1
    w = dense[0].fc1.weight.detach()
    update = w - ku.seeded_model("original", 1).fc1.weight.detach()
    seed1 = rows[(rows.seed == 1) & (rows.variant == "projected-kron2_r4")].iloc[0]
    assert seed1.moved == pytest.approx(float(update.norm() / w.norm()), rel=1e-5)
    a, b = ku.nearest_kron(update, (28, 28), (25, 25), rank=4)
    best = sum(torch.kron(a[r], b[r]) for r in range(4))
    assert seed1.update_error == pytest.approx(float((update - best).norm() / update.norm()), rel=1e-4)


BEYOND_DEFAULTS = dict(dataset="synthetic", harder_dataset="", seeds=None, epochs=2, kron_variants=None, tt_ranks=None,
                       t3f_epochs=1, dense_widths=None, low_ranks=None, projection_ranks=[1, 2], finetune_epochs=1,
                       tolerance_pp=0.5)


@pytest.mark.parametrize("params,message", [(dict(projection_ranks=[0]), "projection_ranks"),
                                            (dict(seeds=[1]), "at least 2 seeds"),
                                            (dict(kron_variants=["kron2_r0"]), "unknown variant"),
                                            (dict(low_ranks="[]"), "low_ranks"), (dict(epochs=0), "epochs"),
                                            (dict(tt_ranks=[0]), "tt_ranks"), (dict(t3f_epochs=0), "epochs"),
                                            (dict(harder_dataset="cifar"), "04_beyond: harder_dataset must be one of"),
                                            (dict(tolerance_pp=-1), "tolerance_pp"),
                                            (dict(compression_tt_rank=0), "compression_tt_rank"),
                                            (dict(compression_epochs=0), "compression_epochs"),
                                            (dict(compression_finetune_epochs=-1), "compression_finetune_epochs")])
def test_beyond_plan_rejects_a_bad_grid(tmp_path, params, message):
    dirs = dict(results_dir=str(tmp_path / "results"), figures_dir=str(tmp_path / "figures"))
    with pytest.raises(ValueError, match=message):
        kr.BeyondPlan.from_parameters({**BEYOND_DEFAULTS, **dirs, **params})
    assert not (tmp_path / "results").exists()
