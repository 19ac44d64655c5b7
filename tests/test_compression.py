"""The t3f tutorial's compression experiment: TT-SVD of a trained dense layer (against tensorly and an exact
tensor train), the Kronecker sum of the same budget, and the tables and sentences built from them."""

import numpy as np
import pandas as pd
import pytest
import tensorly as tl
import torch
from tensorly.tt_matrix import tt_matrix_to_matrix
from torch import nn

import kron_report as kr
import kron_utils as ku


def dense_net_with(weight: torch.Tensor) -> nn.Sequential:
    """The 784-625-10 dense net with the given input weight (the rest from seed 0)."""
    net = ku.seeded_model("original", 0)
    with torch.no_grad():
        net.fc1.weight.copy_(weight)
    return net


def test_tt_compression_recovers_an_exact_tensor_train_and_keeps_the_rest_of_the_net():
    source = ku.build_model("tt4_r3").fc1
    net = dense_net_with(source.dense_weight().detach())
    compressed = kr.tt_compression(net, 3)
    assert compressed.fc1.ranks == (1, 3, 3, 3, 1)
    torch.testing.assert_close(compressed.fc1.dense_weight(), source.dense_weight(), rtol=1e-4, atol=1e-6)
    x = torch.randn(5, 784)
    torch.testing.assert_close(compressed(x), net(x), rtol=1e-4, atol=1e-5)   # nn.Linear's net is the reference
    assert compressed.fc2 is not net.fc2 and torch.equal(compressed.fc2.weight, net.fc2.weight)


def test_tt_compression_cores_are_tensorlys_tt_svd():
    torch.manual_seed(0)
    weight = torch.randn(625, 784)
    compressed = kr.tt_compression(dense_net_with(weight), 4).fc1
    from tensorly.decomposition import tensor_train_matrix
    with tl.backend_context("numpy"):
        cores = tensor_train_matrix(weight.double().reshape(5, 5, 5, 5, 7, 4, 7, 4).numpy(), rank=[1, 4, 4, 4, 1])
        want = torch.from_numpy(tt_matrix_to_matrix(cores.factors)).float()
    torch.testing.assert_close(compressed.dense_weight(), want, rtol=1e-4, atol=1e-5)
    errors = [(weight - kr.tt_compression(dense_net_with(weight), r).fc1.dense_weight()).norm() for r in (1, 4, 16)]
    assert errors[0] > errors[1] > errors[2]   # a larger TT-rank keeps more


def test_the_kronecker_partner_of_the_tutorials_tt_layer_has_kronecker_rank_11():
    tt = kr.tt_compression(ku.seeded_model("original", 1), 16).fc1
    assert tt.ranks == (1, 16, 16, 16, 1)
    assert tt.num_weights() == 1 * 35 * 16 + 16 * 20 * 16 + 16 * 35 * 16 + 16 * 20 * 1 == 14_960   # t3f: 15,585 - 625
    assert kr.matching_kron_rank(14_960) == 11    # 11 x 1,400 = 15,400 (+2.9%); 10 x 1,400 = 14,000 (-6.4%)
    assert kr.matching_kron_rank(100) == 1


def test_compression_experiment_on_synthetic_data():
    source = [ku.seeded_model("original", s) for s in (1, 2)]
    settings = ku.TrainSettings(epochs=1, lr=1e-3, optimizer="adam", dataset="synthetic")
    rows = kr.compression_experiment(source, [1, 2], 2, settings, data_dir="unused", device="cpu")
    assert list(dict.fromkeys(rows.variant)) == ["original", "compressed-tt4_r2", "compressed-kron2_r1"]
    assert sorted(set(rows[rows.variant != "original"].epoch)) == [0, 1] and set(rows.seed) == {1, 2}
    for seed, net in zip((1, 2), source):   # ||W - W_tt|| / ||W||, with tensorly's reconstruction
        weight = net.fc1.weight.detach()
        want = float((weight - kr.tt_compression(net, 2).fc1.dense_weight().detach()).norm() / weight.norm())
        got = rows[(rows.variant == "compressed-tt4_r2") & (rows.seed == seed)].relative_error.iloc[0]
        assert got == pytest.approx(want, rel=1e-5)
    f = kr.compression_findings(rows)
    assert f["tt"]["net"] == "tt4_r2" and f["kron"]["net"] == "kron2_r1" and f["epochs"] == 1
    assert f["tt"]["weights"] == 330 and f["kron"]["weights"] == 1400 and len(f["dense"]) == 2


def hand_compression() -> pd.DataFrame:
    """Two seeds: dense 97 and 98; TT 60, 70 right after and 97, 97.2 tuned; Kronecker 50, 52 then 96, 96.2."""
    def run(variant, accs, error):
        return [dict(variant=variant, seed=s, epoch=e, test_accuracy=a, relative_error=error)
                for (s, e), a in accs.items()]
    return pd.DataFrame(run("original", {(1, 0): 97.0, (2, 0): 98.0}, 0.0)
                        + run("compressed-tt4_r16", {(1, 0): 60.0, (2, 0): 70.0, (1, 2): 97.0, (2, 2): 97.2}, 0.9)
                        + run("compressed-kron2_r11", {(1, 0): 50.0, (2, 0): 52.0, (1, 2): 96.0, (2, 2): 96.2}, 0.95)
                        ).assign(dataset="d")


def test_compression_findings_table_and_sentences_by_hand():
    f = kr.compression_findings(hand_compression())
    assert f["tt"]["first"].mean() == 65.0 and f["kron"]["after"].mean() == pytest.approx(96.1)
    assert f["first_gap"]["diff"] == pytest.approx(14.0) and f["after_gap"]["diff"] == pytest.approx(1.0)
    table = kr.compression_table(f)
    ours = table["ours: accuracy (%)"].tolist()
    assert ours == ["97.50 ± 0.71", "65.00 ± 7.07", "97.10 ± 0.14", "51.00 ± 1.41", "96.10 ± 0.14"]
    assert table[f"t3f tutorial ({kr.T3F_COMMIT}), 1 run"].tolist() == ["97.14", "64.43", "97.65", "–", "–"]
    text = kr.compression_summary(f, kr.T3F_COMPRESSION)
    # the table holds the accuracies; the sentence states the two gaps: +14.0 right after (two seeds, wide), +1.0 after
    assert text.startswith("Right after compression the tensor train is level with the Kronecker sum")
    assert "after fine-tuning it is ahead of it (+" in text                 # every seed 1.0 apart: beyond the noise
    assert kr.prose_problems(text) == []
    story = kr.compression_story(dict(errors=pd.Series({1: 0.99, 8: 0.97}), top_rank=8), f)
    # the worse of the two fine-tuned nets is 97.50 - 96.10 = 1.40 below the dense nets: not "within a point"
    assert "Neither structure" in story and "relative error is" in story and "head start" not in story
    # three seeds each, the worse 0.38 behind with an interval reaching past 0.4: the bound is the next margin, 0.5
    close = dict(f, dense=np.array([97.80, 97.85, 97.90]), tt=dict(f["tt"], after=np.array([97.42, 97.47, 97.52])),
                 kron=dict(f["kron"], after=np.array([97.55, 97.60, 97.65])))
    story = kr.compression_story(dict(errors=pd.Series({1: 0.99, 8: 0.97}), top_rank=8), close)
    assert "bring both to within 0.5 points of the dense net" in story and "0.4" not in story
    both = pd.concat([pd.DataFrame(dict(dataset=d, variant="a", seed=list(range(1, n + 1)), epoch=1, test_accuracy=90.0))
                      for d, n in (("mnist", 10), ("fashion-mnist", 5))])
    assert kr.seeds_note(both) == ("*Mean ± sd over each net's seeds: on mnist, ten seeds (1 to 10) for every net; on "
                                   "fashion-mnist, five seeds (1 to 5) for every net.*")


def test_projection_gaps_by_hand():
    projected = pd.DataFrame([dict(variant="projected-kron2_r1", seed=s, epoch=e, test_accuracy=a, dataset="d")
                              for (s, e), a in {(1, 0): 20.0, (2, 0): 30.0, (1, 1): 96.0, (2, 1): 96.4}.items()])
    scratch = pd.DataFrame([dict(variant="two_kron", seed=s, epoch=e, test_accuracy=a, dataset="d")
                            for (s, e), a in {(1, 1): 95.0, (2, 1): 95.2, (3, 1): 95.1, (1, 3): 97.0, (2, 3): 97.4,
                                              (3, 3): 97.2}.items()])
    gaps = kr.projection_gaps(projected, scratch, finetune_epochs=1, epochs=3).set_index("against")
    assert gaps.loc[1, "diff"] == pytest.approx(96.2 - 95.1) and gaps.loc[3, "diff"] == pytest.approx(96.2 - 97.2)
    # Welch: se = sqrt(0.08/2 + 0.04/3) = 0.231 on 1.7 df, so -1.00 is within the noise of two seeds
    assert (gaps.loc[1, "n"], gaps.loc[1, "baseline_n"]) == (2, 3) and gaps.loc[3, "outcome"] == "tie"


def test_seeds_are_stated_per_net():
    rows = pd.DataFrame([dict(dataset="d", variant=v, seed=s, epoch=1, test_accuracy=90.0)
                         for v, seeds in {"a": range(1, 11), "b": range(1, 11), "c": range(1, 6), "d": range(1, 6),
                                          "e": range(1, 6), "f": range(1, 6)}.items() for s in seeds])
    assert kr.seeds_statement(rows) == ("ten seeds (1 to 10) for `a` and `b`; five seeds (1 to 5) for the other four nets")
    assert kr.seeds_statement(rows, ["a", "c"]) == "ten seeds (1 to 10) for `a`; five seeds (1 to 5) for `c`"
    assert kr.seeds_statement(rows, ["c", "d"]) == "five seeds (1 to 5) for every net"
    assert kr.seeds_note(rows, ["a"]).startswith("*Mean ± sd over each net's seeds: ten seeds")


# --- figures a reader can read -------------------------------------------------------------------------------

def test_every_family_has_one_colour_on_both_pages():
    assert kr.family_style(kr.variant_family("width10")) == kr.family_style(kr.variant_family("original")) == ("black", "s")
    kron = {kr.family_style(kr.variant_family(v))[0] for v in ("two_kron", "one_kron", "kron2_r4", "tiedkron2_r2",
                                                              "kron4_r1", "two_kron_out_kron")}
    assert kron == {"tab:blue"}
    assert kr.family_style(kr.variant_family("tt4_r2-3-2"))[0] == "tab:green"
    assert kr.family_style(kr.variant_family("lowrank4"))[0] == "tab:orange"


def test_the_curves_band_is_scipys_95_percent_t_interval_of_the_mean():
    import numpy as np
    from scipy import stats
    values = [97.1, 97.9, 97.4, 97.6]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert kr.mean_interval(values) == pytest.approx((low, high))
    assert kr.mean_interval([97.0]) == (97.0, 97.0)


def test_compression_lede_says_within_only_for_the_whole_interval():
    f = kr.compression_findings(hand_compression())
    text = kr.compression_lede(f, kr.T3F_COMPRESSION)
    # dense 97.50 ± 0.71 (two seeds); the worse fine-tuned net, the Kronecker sum, 96.10 ± 0.14: an interval that wide
    # cannot be 'within' a point, and the sentence names both structures' loss at once
    assert "with a TT-SVD and" in text and "the worse of the two is" in text and "within 1 point" not in text
    assert kr.prose_problems(text) == []
