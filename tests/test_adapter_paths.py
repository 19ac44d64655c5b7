"""The Kronecker-sum adapter's two ways of applying its update, against torch.kron and FlopCounterMode; and the class
filter that builds Part 4's transfer settings, against counts by hand."""
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import kron_report as kr
import kron_utils as ku

# (in_factors, out_factors) of A and B: balanced, a 16x49 grid, unbalanced, and the LoRA-like 1x784 (x) 625x1
SHAPES = [((28, 28), (25, 25)), ((49, 16), (5, 125)), ((4, 196), (125, 5)), ((784, 1), (1, 625))]


def reference_delta(adapter: ku.KronAdapter) -> torch.Tensor:
    """sum_r torch.kron(A_r, B_r), built term by term: the independent reference."""
    a, b = adapter.delta.factor(0), adapter.delta.factor(1)
    return adapter.scale * sum(torch.kron(a[r], b[r]) for r in range(a.shape[0]))


def drawn_adapter(in_factors, out_factors, rank, path, seed=0, scale=1.0):
    torch.manual_seed(seed)
    adapter = ku.KronAdapter(nn.Linear(784, 625), in_factors, out_factors, rank=rank, path=path, scale=scale)
    with torch.no_grad():
        adapter.delta.factors[0].normal_(0, 0.05)   # A starts at zero: draw it so that ΔW is not trivially 0
    return adapter


@pytest.mark.parametrize("in_factors,out_factors", SHAPES)
@pytest.mark.parametrize("rank", [1, 3])
def test_the_built_update_is_the_sum_of_kronecker_products(in_factors, out_factors, rank):
    adapter = drawn_adapter(in_factors, out_factors, rank, "auto", scale=0.5)
    torch.testing.assert_close(adapter.delta_weight(), reference_delta(adapter), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(adapter.merged().weight, adapter.base.weight + reference_delta(adapter))


@pytest.mark.parametrize("in_factors,out_factors", SHAPES)
@pytest.mark.parametrize("rank", [1, 4])
def test_both_paths_give_the_same_output_and_gradients_as_the_dense_reference(in_factors, out_factors, rank):
    x, target = torch.randn(32, 784), torch.randn(32, 625)
    outputs, grads = {}, {}
    for path in ("contract", "form"):
        adapter = drawn_adapter(in_factors, out_factors, rank, path, seed=7)
        y = adapter(x)
        ((y - target) ** 2).sum().backward()
        outputs[path], grads[path] = y.detach(), [p.grad.clone() for p in adapter.delta.factors]
        assert adapter.base.weight.grad is None                  # the base stays frozen on either path
    reference = drawn_adapter(in_factors, out_factors, rank, "contract", seed=7)
    dense = x @ (reference.base.weight + reference_delta(reference)).T + reference.base.bias
    ((dense - target) ** 2).sum().backward()
    for path in ("contract", "form"):
        torch.testing.assert_close(outputs[path], dense.detach(), rtol=1e-4, atol=1e-4)
        for got, want in zip(grads[path], reference.delta.factors):
            torch.testing.assert_close(got, want.grad, rtol=1e-3, atol=1e-3)


def adapter_flops(adapter: ku.KronAdapter, batch: int) -> int:
    """FLOPs that FlopCounterMode counts for one forward and backward pass of the adapter on ``batch`` rows
    (inputs that need no gradient, as a first layer's)."""
    x = torch.randn(batch, 784)
    with FlopCounterMode(display=False) as counter:
        adapter(x).sum().backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("in_factors,out_factors", SHAPES[:3])
@pytest.mark.parametrize("rank,batch", [(1, 64), (8, 64), (2, 1000)])
def test_the_cost_model_counts_what_flopcountermode_counts(in_factors, out_factors, rank, batch):
    base_macs = batch * 625 * 784                            # the frozen layer's own product, on either path
    for path in ("contract", "form"):
        adapter = drawn_adapter(in_factors, out_factors, rank, path)
        left, right = tuple(adapter.delta.factor(0).shape), tuple(adapter.delta.factor(1).shape)
        assert adapter_flops(adapter, batch) == 2 * (base_macs + ku.adapter_step_macs(left, right, batch, path))


def test_the_cost_model_by_hand_and_the_path_it_picks():
    one, eight = (1, 25, 28), (8, 25, 28)
    # contract: x (28x28) with A (25x28) then B (25x28): 19,600 + 17,500 per row; backward 2 e1 + 3 e2 in all
    assert ku.adapter_step_macs(one, one, 64, "contract") == 64 * (2 * 19_600 + 3 * 17_500)
    # form: build ΔW (490,000 per term), its gradient (64 rows), each factor's gradient (490,000 per term each)
    assert ku.adapter_step_macs(one, one, 64, "form") == 3 * 490_000 + 64 * 490_000
    assert ku.adapter_step_macs(one, one, 64, "form", grad=False) == 490_000
    assert ku.adapter_path(one, one, 64) == "contract" and ku.adapter_path(eight, eight, 64) == "form"
    assert ku.adapter_path(eight, eight, 1) == "contract"    # one row: never worth building ΔW
    adapter = ku.KronAdapter(nn.Linear(784, 625), rank=8)
    assert adapter.step_path(64) == "form" and adapter.step_path(1) == "contract"
    with pytest.raises(ValueError, match="path must be one of"):
        ku.KronAdapter(nn.Linear(784, 625), path="fast")
    with pytest.raises(ValueError, match="path must be 'contract' or 'form'"):
        ku.adapter_step_macs(one, one, 64, "auto")


def test_the_auto_path_switches_with_the_batch_and_computes_the_same_either_way():
    adapter = drawn_adapter((28, 28), (25, 25), 8, "auto", seed=3)
    x = torch.randn(64, 784)
    with torch.no_grad():
        torch.testing.assert_close(adapter(x), x @ (adapter.base.weight + reference_delta(adapter)).T
                                   + adapter.base.bias, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(adapter(x[:1]), adapter(x)[:1], rtol=1e-4, atol=1e-4)  # the other path


# --- the class filter ---

def test_class_counts_by_hand_and_a_bad_range_is_refused():
    assert ku.train_size("mnist", "0-4") == 5923 + 6742 + 5958 + 6131 + 5842 == 30_596
    assert ku.train_size("mnist", "5-9") == 60_000 - 30_596 and ku.train_size("fashion-mnist", "3-3") == 6000
    assert ku.parse_classes("5-9") == (5, 6, 7, 8, 9) and ku.parse_classes(None) is None
    for bad in ("9-5", "0-10", "five", "0,4", 4):
        with pytest.raises(ValueError, match="classes must be"):
            ku.TrainSettings(classes=bad)
    with pytest.raises(ValueError, match="validation must be .* \\[0, 29,404\\)"):
        ku.TrainSettings(classes="5-9", validation=30_000)
    with pytest.raises(ValueError, match="train_limit 25000 exceeds the 19,404"):
        ku.TrainSettings(classes="5-9", validation=10_000, train_limit=25_000)


def test_the_class_filter_comes_before_the_validation_split_and_the_labelled_set():
    settings = ku.TrainSettings(dataset=ku.SYNTHETIC, classes="5-9", validation=30, train_limit=50)
    splits = ku.data_splits(settings)
    x, y = ku.load_dataset(split="train", dataset=ku.SYNTHETIC)
    kept = (y >= 5).nonzero().squeeze(1)                     # by hand: the images of labels 5 to 9, in order
    torch.testing.assert_close(splits["validation"][0], x[kept[-30:]])
    torch.testing.assert_close(splits["train"][0], x[kept[:50]])
    xt, yt = ku.load_dataset(split="test", dataset=ku.SYNTHETIC)
    torch.testing.assert_close(splits["test"][1], yt[yt >= 5])
    assert ku.train_size(ku.SYNTHETIC, "5-9") == len(kept)
    assert kr.settings_record(ku.TrainSettings()) == kr.settings_record(ku.TrainSettings(classes=None))  # old keys


def test_tasks_name_a_dataset_and_its_classes():
    assert kr.task_parts("mnist:0-4") == ("mnist", "0-4") and kr.task_parts("fashion-mnist") == ("fashion-mnist", None)
    assert kr.task_text("mnist:5-9") == "MNIST digits 5–9" and kr.task_slug("mnist:0-4") == "mnist-0-4"
    settings = kr.adapter_settings(0.001, 30, "mnist:5-9", 10_000, 1000)
    assert (settings.dataset, settings.classes, settings.train_limit, settings.validation) == ("mnist", "5-9", 1000, 10_000)
    assert kr.base_settings("mnist:0-4").classes == "0-4" and kr.base_settings("mnist") == ku.TrainSettings()


def test_shape_arms_match_the_budget_by_hand():
    arms = {a.name: a for a in kr.shape_arms(8, [(1, 784), (25, 28), (5, 49), (125, 16), (25, 4)])}
    assert set(arms) == {"kronsum_1x784_r8", "kronsum_r8", "kronsum_5x49_r5", "kronsum_125x16_r5"}  # 25x4: 9 or 10 terms miss
    assert kr.adapter_weights(arms["kronsum_5x49_r5"]) == 5 * (5 * 49 + 125 * 16) == 11_225
    assert kr.adapter_weights(arms["kronsum_1x784_r8"]) == 8 * (784 + 625)   # LoRA's count at r = 8


def test_a_kronecker_sum_of_1x784_and_625x1_factors_is_a_lora_of_the_same_rank():
    torch.manual_seed(0)
    net = kr.adapted_net(kr.Arm("kronsum", 3, shape=(1, 784)), ku.build_model("original"), seed=1)
    with torch.no_grad():
        net.fc1.delta.factors[0].normal_()
    delta = net.fc1.delta_weight()
    a, b = net.fc1.delta.factor(0)[:, 0, :], net.fc1.delta.factor(1)[:, :, 0]   # rows (r, 784), columns (r, 625)
    torch.testing.assert_close(delta, b.T @ a)                                  # B · A, as LoRA's update
    assert int(torch.linalg.matrix_rank(delta)) == 3


# --- the shifted domains ---

def test_a_rotated_domain_is_torchvisions_rotation_and_a_quarter_turn_is_rot90():
    import torchvision.transforms.functional as TF
    info = ku.DATASETS["mnist"]
    images = torch.rand(4, 1, 28, 28)
    x = ((images - info["mean"]) / info["std"]).reshape(4, 784)
    rotated = ku.shift_domain(x, "rotate30", "mnist", "train") * info["std"] + info["mean"]
    expected = TF.rotate(images, 30.0, interpolation=TF.InterpolationMode.BILINEAR)   # counter-clockwise
    torch.testing.assert_close(rotated.reshape(4, 1, 28, 28), expected, rtol=0, atol=1e-5)
    quarter = ku.shift_domain(x, "rotate90", "mnist", "test")
    torch.testing.assert_close(quarter.reshape(4, 28, 28), torch.rot90(x.reshape(4, 28, 28), 1, (1, 2)),
                               rtol=0, atol=1e-4)


def test_a_noisy_domain_is_fixed_per_split_and_stays_grey_levels():
    info = ku.DATASETS["mnist"]
    x = ((torch.rand(50, 784) - info["mean"]) / info["std"])
    a, b = (ku.shift_domain(x, "noise0.5", "mnist", "train") for _ in range(2))
    torch.testing.assert_close(a, b)                                    # the same noisy images every run
    assert not torch.equal(a, ku.shift_domain(x, "noise0.5", "mnist", "test"))   # each split its own draw
    grey = a * info["std"] + info["mean"]
    assert grey.min() >= -1e-6 and grey.max() <= 1 + 1e-6               # clipped to [0, 1]
    mid = torch.full((50, 784), (0.5 - info["mean"]) / info["std"])   # grey 0.5: a std of 0.1 is never clipped
    noise = ku.shift_domain(mid, "noise0.1", "mnist", "train") * info["std"] + info["mean"] - 0.5
    assert abs(float(noise.std()) - 0.1) < 0.002 and abs(float(noise.mean())) < 0.002
    assert ku.shift_domain(x, None, "mnist", "train") is x
    for bad in ("blur2", "noise0", "rotate", "noise-1"):
        with pytest.raises(ValueError, match="domain must be"):
            ku.TrainSettings(domain=bad)


def test_a_task_with_a_shift_names_its_domain_and_keeps_its_classes():
    assert kr.task_parts("mnist:0-4+rotate30") == ("mnist", "0-4") and kr.task_domain("mnist+noise0.5") == "noise0.5"
    assert kr.task_text("mnist+noise0.5") == "noisy MNIST (σ = 0.5)" and kr.task_text("mnist+rotate30") == "MNIST rotated 30°"
    assert kr.task_slug("mnist+noise0.5") == "mnist-noise0.5"
    settings = kr.adapter_settings(0.001, 30, "mnist+noise0.5", 10_000, 1000)
    assert settings.domain == "noise0.5" and kr.settings_record(settings)["domain"] == "noise0.5"
    with pytest.raises(ValueError, match="domain must be"):
        kr.task_parts("mnist+blur")


def test_the_bench_rows_multiply_add_ratio_against_full_fine_tuning_by_hand():
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench", kr.ROOT / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # 32 terms build W (batch 64): the frozen product 64 O I, then 3 * 32 O I + 64 O I; full fine-tuning 2 * 64 O I
    assert bench.adapter_macs_ratio(ku.KronAdapter(nn.Linear(784, 625), rank=32)) == (64 + 96 + 64) / 128 == 1.75
    # one term contracts: per row 2 * 19,600 + 3 * 17,500 multiply-adds beside the frozen 490,000
    one = bench.adapter_macs_ratio(ku.KronAdapter(nn.Linear(784, 625), rank=1))
    assert one == (490_000 + 2 * 19_600 + 3 * 17_500) / 980_000
