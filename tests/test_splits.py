"""Validation splits, permuted pixels and explicit factor shapes, each against an independent reference:
reference_train on hand-sliced or hand-permuted tensors, torch.kron, and settings keys written out by hand."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import kron_report as kr
import kron_utils as ku

TINY = dict(epochs=2, batch_size=50, test_batch_size=100, dataset="synthetic")


def test_validation_is_the_last_images_and_is_never_trained_on():
    settings = ku.TrainSettings(**TINY, validation=112)
    x, y = ku.load_dataset(dataset="synthetic")
    splits = ku.data_splits(settings)
    torch.testing.assert_close(splits["train"][0], x[:400])
    torch.testing.assert_close(splits["validation"][0], x[400:])
    torch.testing.assert_close(splits["validation"][1], y[400:])
    rows, (model,) = ku.train("two_kron", [3], settings, progress=False)
    reference = ku.reference_train("two_kron", 3, settings, x[:400], y[:400])  # the first 400 only
    for got, want in zip(model.state_dict().values(), reference.state_dict().values()):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert list(rows.columns) == ku.RESULT_COLUMNS + ["validation_loss", "validation_accuracy"]
    with torch.no_grad():  # the recorded validation accuracy is the model's on the held-out images
        accuracy = 100 * (reference(x[400:]).argmax(1) == y[400:]).float().mean().item()
    assert rows.validation_accuracy.iloc[-1] == pytest.approx(accuracy, abs=1e-3)


def test_a_run_without_validation_records_no_validation_columns():
    rows, _ = ku.train("width10", [1], ku.TrainSettings(**TINY), progress=False)
    assert list(rows.columns) == ku.RESULT_COLUMNS


def test_permuted_pixels_train_as_the_reference_loop_on_hand_permuted_images():
    settings = ku.TrainSettings(**TINY, train_limit=200, permutation_seed=7)
    perm = ku.pixel_permutation(7)
    assert sorted(perm.tolist()) == list(range(784)) and not torch.equal(perm, torch.arange(784))
    x, y = ku.load_dataset(dataset="synthetic")
    x_test, _ = ku.load_dataset(dataset="synthetic", split="test")
    splits = ku.data_splits(settings)
    torch.testing.assert_close(splits["test"][0], x_test[:, perm])  # test images are permuted alike
    assert splits["train"][0][5, 0] == x[5, perm[0]]
    rows, (model,) = ku.train("two_kron", [2], settings, progress=False)
    reference = ku.reference_train("two_kron", 2, settings, x[:200][:, perm], y[:200])
    for got, want in zip(model.state_dict().values(), reference.state_dict().values()):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    plain, _ = ku.train("two_kron", [2], ku.TrainSettings(**TINY, train_limit=200), progress=False)
    assert not np.allclose(rows.train_loss, plain.train_loss)  # the permutation changed what a Kronecker net sees


def test_a_dense_net_absorbs_a_permutation_exactly():
    """A dense first layer with its columns permuted computes the same function on permuted images."""
    torch.manual_seed(0)
    layer, perm = torch.nn.Linear(784, 10), ku.pixel_permutation(3)
    x = torch.randn(5, 784)
    permuted = torch.nn.Linear(784, 10)
    with torch.no_grad():
        permuted.weight.copy_(layer.weight[:, perm])
        permuted.bias.copy_(layer.bias)
    torch.testing.assert_close(permuted(x[:, perm]), layer(x))
    torch.testing.assert_close(kr.unpermute_weight(permuted.weight, perm), layer.weight)


def test_default_settings_keep_their_results_folder_and_new_fields_change_it():
    # written out by hand: the committed Part 2 folder of the post's recipe
    assert kr.settings_key(ku.TrainSettings()) == "c61bac6735"
    assert kr.settings_record(ku.TrainSettings()) == dict(epochs=35, lr=0.01, momentum=0.5, batch_size=64, test_batch_size=1000,
                                               train_limit=None, dataset="mnist")
    keys = {kr.settings_key(ku.TrainSettings(**change)) for change in
            ({}, {"validation": 10_000}, {"permutation_seed": 0}, {"permutation_seed": 1})}
    assert len(keys) == 4


@pytest.mark.parametrize("change,message", [
    (dict(validation=-1), "validation must be"), (dict(validation=60_000), "validation must be"),
    (dict(validation=True), "validation must be"), (dict(permutation_seed=-2), "permutation_seed"),
    (dict(permutation_seed="3"), "permutation_seed"),
    (dict(validation=10_000, train_limit=55_000), "exceeds the 50,000 training images of mnist left beside")])
def test_bad_split_settings_fail_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        ku.TrainSettings(**change)


def test_records_with_validation_round_trip_and_the_permutation_is_stored(tmp_path):
    settings = ku.TrainSettings(**TINY, validation=100, permutation_seed=5)
    rows, _ = ku.train("width10", [1, 2], settings, progress=False)
    kr.save_runs(rows, settings, tmp_path)
    back = kr.load_results(tmp_path, settings)
    pd.testing.assert_frame_equal(back.sort_values(["seed", "epoch"], ignore_index=True),
                                  rows.sort_values(["seed", "epoch"], ignore_index=True), check_dtype=False)
    stored = json.loads((kr.settings_folder(tmp_path, settings) / "permutation.json").read_text())
    assert stored == torch.randperm(784, generator=torch.Generator().manual_seed(5)).tolist()
    assert kr.stored_permutation(tmp_path, settings) == stored
    path = kr.run_file(tmp_path, settings, "width10", 1)
    damaged = pd.read_csv(path)
    damaged.loc[0, "validation_accuracy"] = 140.0
    damaged.to_csv(path, index=False)
    with pytest.raises(kr.BadRecord, match="validation_accuracy must lie"):
        kr.load_results(tmp_path, settings)


@pytest.mark.parametrize("name,in_factors,out_factors", [("kron_25x16_25x49", (16, 49), (25, 25)),
                                                         ("kron_25x49_25x16", (49, 16), (25, 25)),
                                                         ("kron_5x28_125x28", (28, 28), (5, 125))])
def test_explicit_factor_shapes_match_torch_kron(name, in_factors, out_factors):
    torch.manual_seed(0)
    model = ku.build_model(name)
    (u,), (v,) = model.fc1.factors[0], model.fc1.factors[1]
    assert tuple(u.shape) == (out_factors[0], in_factors[0]) and tuple(v.shape) == (out_factors[1], in_factors[1])
    assert ku.count_weights(model) == u.numel() + v.numel() + 625 * 10
    x = torch.randn(3, 784)
    torch.testing.assert_close(model.fc1(x), x @ torch.kron(u, v).T + model.fc1.bias, rtol=1e-5, atol=1e-5)


def test_the_aligned_explicit_shape_is_two_kron():
    a, b = ku.seeded_model("kron_25x28_25x28", 4), ku.seeded_model("two_kron", 4)
    for got, want in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", ["kron_25x16_25x48", "kron_0x28_25x28"])
def test_explicit_shapes_that_do_not_fit_fail(name):
    with pytest.raises(ValueError):
        ku.build_model(name)
