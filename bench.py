"""Speed ratios of the project's fast paths, each measured side by side in one run.

    make bench            # or: .venv/bin/python bench.py [--repeats 3] [--device auto]

Every ratio is the median over --repeats of (baseline seconds / our seconds), both timed in the
same repeat. Needs real MNIST (make data). Rows e and f sweep the post's six nets x 10 seeds for a measured
fraction of the epochs, with the local scheduler and serially; row g puts each net's epoch time beside its compute
floor (its FLOPs at the measured sgemm rate); row h times the layers against tensorly-torch and peft, row i a
tensor train against the Kronecker net with the same input weights, row j the input layer of each family (the
beyond page's speed table reads it), row k one adapter training step at each of Part 4's budgets: the Kronecker
sum (the path its cost model picks, and each path forced) beside full fine-tuning, peft's LoRA and peft's LoKr,
with its multiply-adds against full fine-tuning's and Adam's update timed alone.

    .venv/bin/python bench.py --rows j   # only these rows, merged into the committed record (each row keeps its date)
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

import kron_report as kr
import kron_utils as ku

RECIPE = ku.TrainSettings()  # the pytorch/examples recipe both pipelines follow
SWEEP_EPOCHS = 5             # rows e, f: the measured fraction of the full sweep's epochs
MNIST = ku.DATASETS["mnist"]


def timed(fn, repeats: int = 1) -> float:
    """Seconds for one call of fn (best of `repeats` inner calls after a warm-up)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def examples_style_epoch(variant: str, device) -> None:
    """One epoch the pytorch/examples way: torchvision dataset, ToTensor+Normalize per sample, DataLoader."""
    from torchvision import datasets, transforms
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST["mean"],), (MNIST["std"],))])
    loaders = [torch.utils.data.DataLoader(datasets.MNIST(str(kr.project_path("data")), train=t, transform=transform),
                                           batch_size=RECIPE.batch_size if t else RECIPE.test_batch_size, shuffle=t)
               for t in (True, False)]
    model = ku.seeded_model(variant, 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=RECIPE.lr, momentum=RECIPE.momentum)
    model.train()
    for data, target in loaders[0]:
        data, target = data.to(device).view(-1, ku.IMAGE_SIZE), target.to(device)
        optimizer.zero_grad()
        F.nll_loss(model(data), target).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for data, target in loaders[1]:
            model(data.to(device).view(-1, ku.IMAGE_SIZE)).argmax(1).eq(target.to(device)).sum().item()
    sync(device)


def our_epochs(variant, seeds, device, limit=None):
    """One epoch of ku.train (compiled, all seeds stacked in one step), as the sweeps run it."""
    settings = ku.TrainSettings(epochs=1, train_limit=limit)
    ku.train(variant, seeds, settings, data_dir=kr.project_path("data"), device=device, progress=False)
    sync(device)


def layer_step(layer, x):
    def step():
        layer.zero_grad(set_to_none=True)
        layer(x).sum().backward()
    return step


class RebuiltKron(nn.Module):
    """What peft LoKr does by default: rebuild W = kron(A, B) on every forward, then F.linear."""
    def __init__(self, kron_layer: ku.KronLinear):
        super().__init__()
        self.a, self.b = (nn.Parameter(f.detach()[0].clone()) for f in kron_layer.factors)
        self.bias = nn.Parameter(kron_layer.bias.detach().clone())

    def forward(self, x):
        return F.linear(x, torch.kron(self.a, self.b), self.bias)


def peer_layers(device):
    """Our layers beside what a user would take from a library instead, holding the same numbers (checked):
    {'KronLinear': (ours, tensorly-torch's FactorizedLinear, a TT-matrix of rank 1 = U (x) V),
     'KronAdapter': (ours, peft's LoKr layer, w1 (25x28) (x) w2 (25x28) on the same frozen nn.Linear(784, 625))}."""
    import copy
    import warnings
    import tltorch
    from peft import LoKrConfig, get_peft_model
    torch.manual_seed(0)
    kron = ku.KronLinear(ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS)
    tl = tltorch.FactorizedLinear(ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS, factorization="blocktt", rank=(1, 1, 1),
                                  implementation="factorized")
    with torch.no_grad():
        for core, factor in zip(tl.weight.factors, kron.factors):
            core.copy_(factor[0][None, ..., None])
        tl.bias.copy_(kron.bias)
    base = nn.Sequential()
    base.fc1 = nn.Linear(ku.IMAGE_SIZE, ku.HIDDEN_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lokr = get_peft_model(copy.deepcopy(base), LoKrConfig(r=16, alpha=16, target_modules=["fc1"])).base_model.model.fc1
    adapter = ku.KronAdapter(copy.deepcopy(base.fc1), rank=1, scale=lokr.scaling["default"])
    with torch.no_grad():
        lokr.lokr_w1["default"].normal_(0, 0.05)  # peft starts it at zero; the check must see both factors
        adapter.delta.factors[0][0].copy_(lokr.lokr_w1["default"])
        adapter.delta.factors[1][0].copy_(lokr.lokr_w2["default"])
    x = torch.randn(8, ku.IMAGE_SIZE)
    pairs = {"KronLinear": (kron, tl), "KronAdapter": (adapter, lokr)}
    with torch.no_grad():
        for name, (ours, theirs) in pairs.items():
            torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5, msg=f"{name} and its peer differ")
    return {name: (ours.to(device), theirs.to(device)) for name, (ours, theirs) in pairs.items()}


FAMILY_LAYERS = kr.SPEED_LAYERS  # row j: one input layer per family (the beyond page's speed table)


def epoch_flops(variant: str) -> float:
    """FLOPs of one training epoch of one seed: a training step (forward and backward, :func:`ku.training_flops`) per
    batch of the training set and a forward pass per test batch, counted by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as test, torch.no_grad():
        ku.build_model(variant)(torch.randn(RECIPE.test_batch_size, ku.IMAGE_SIZE))
    train, tests = ku.train_size("mnist") / RECIPE.batch_size, 10_000 / RECIPE.test_batch_size
    return ku.training_flops(variant, RECIPE.batch_size) * train + test.get_total_flops() * tests


def step_seconds(layers: dict, x: torch.Tensor, device) -> dict:
    """Seconds of 200 (batch 64) or 20 (batch 1000) forward and backward steps of each layer on ``x``, one layer after
    the other in the same repeat."""
    inner = 200 if len(x) == RECIPE.batch_size else 20
    return {name: timed(lambda: ([layer_step(m, x)() for _ in range(inner)], sync(device))) for name, m in layers.items()}


def sgemm_gflops(device, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    seconds = timed(lambda: (a @ b, sync(device)), repeats=5)
    return 2 * n ** 3 / seconds / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="smaller epochs for rows a and d (a smoke run)")
    parser.add_argument("--rows", default="abhcdijkefg",
                        help="which rows to run (letters); a subset is merged into the committed record")
    args = parser.parse_args()
    if set(args.rows) - set("abcdefghijk") or not args.rows:
        parser.error(f"--rows takes letters among abcdefghijk, got {args.rows!r}")
    device = ku.resolve_device(args.device)
    kr.verify_dataset(kr.project_path("data"), "mnist")
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    rows, seeds = [], list(range(1, 11))

    bench_rows = []

    def report(key, what, ratios, goal, unit="x", fmt="{:.1f}", lower_is_better=False, name=None):
        """Record the median ratio; goal None means 'measured and reported' only. ``name`` keys it in the
        committed record that the pages read."""
        value = statistics.median(ratios)
        met = value <= goal if lower_is_better else value >= goal if goal is not None else None
        verdict = "-" if goal is None else "met" if met else "MISSED"
        goal_text = "-" if goal is None else (("<= " if lower_is_better else ">= ") + fmt + unit).format(goal)
        rows.append((key, what, (fmt + unit).format(value), goal_text, verdict))
        bench_rows.append(dict(row=key, name=name, what=what, value=float(value), ratios=[float(r) for r in ratios],
                               unit=unit.strip(), goal=goal, met=None if met is None else bool(met)))
        print(f"  {key} {what}: {fmt.format(value)}{unit} (goal {goal_text}, {verdict})", flush=True)

    # a. one training epoch of two_kron, ours vs the pytorch/examples pipeline
    if not args.quick and "a" in args.rows:
        ratios = []
        our_epochs("two_kron", [1], device)  # warm the data cache
        for _ in range(args.repeats):
            slow = timed(lambda: examples_style_epoch("two_kron", device))
            fast = timed(lambda: our_epochs("two_kron", [1], device))
            ratios.append(slow / fast)
        report("a", "two_kron epoch: ours vs pytorch/examples DataLoader pipeline", ratios, 10, name="epoch_vs_examples")

    # b. KronLinear forward+backward vs rebuilt-with-torch.kron and vs dense nn.Linear
    batches = (RECIPE.batch_size, RECIPE.test_batch_size) if "b" in args.rows else ()
    torch.manual_seed(0)
    kron = ku.KronLinear(ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS).to(device)
    rebuilt, dense = RebuiltKron(kron).to(device), nn.Linear(ku.IMAGE_SIZE, ku.HIDDEN_SIZE).to(device)
    for batch in batches:
        x = torch.randn(batch, ku.IMAGE_SIZE, device=device)
        vs_rebuilt, vs_dense = [], []
        for _ in range(args.repeats):
            t = step_seconds(dict(kron=kron, rebuilt=rebuilt, dense=dense), x, device)
            vs_rebuilt.append(t["rebuilt"] / t["kron"])
            vs_dense.append(t["dense"] / t["kron"])
        report("b", f"KronLinear fwd+bwd, batch {batch}: vs torch.kron rebuilt every step", vs_rebuilt, 3,
               name=f"layer_vs_rebuilt_{batch}")
        report("b", f"KronLinear fwd+bwd, batch {batch}: vs dense nn.Linear({ku.IMAGE_SIZE}, {ku.HIDDEN_SIZE})", vs_dense,
               2 if batch == RECIPE.batch_size else None, name=f"layer_vs_dense_{batch}")

    # j. the input layer of each family, forward and backward, side by side in each repeat: milliseconds a step and
    # speed against the dense layer (Part 3's speed table)
    for batch in (RECIPE.batch_size, RECIPE.test_batch_size) if "j" in args.rows else ():
        torch.manual_seed(0)
        layers = {v: ku.build_model(v).fc1.to(device) for v in FAMILY_LAYERS}
        x = torch.randn(batch, ku.IMAGE_SIZE, device=device)
        times = [step_seconds(layers, x, device) for _ in range(args.repeats)]
        inner = 200 if batch == RECIPE.batch_size else 20
        for v in FAMILY_LAYERS:
            report("j", f"{v} input layer fwd+bwd, batch {batch}: milliseconds a step", [1e3 * t[v] / inner for t in times],
                   None, unit=" ms", fmt="{:.3f}", name=f"layer_ms_{v}_{batch}")
            if v != "original":
                report("j", f"{v} input layer fwd+bwd, batch {batch}: vs the dense 784x625 layer",
                       [t["original"] / t[v] for t in times], None, name=f"layer_speed_{v}_{batch}")

    # h. the layers against the libraries a user would take them from, the same numbers in each (checked first)
    peers = peer_layers(device) if "h" in args.rows else {}
    for batch in (RECIPE.batch_size, RECIPE.test_batch_size) if peers else ():
        x = torch.randn(batch, ku.IMAGE_SIZE, device=device)
        for name, (ours, theirs) in peers.items():
            ratios = []
            for _ in range(args.repeats):
                t = step_seconds(dict(ours=ours, theirs=theirs), x, device)
                ratios.append(t["theirs"] / t["ours"])
            peer = ("tensorly-torch FactorizedLinear (TT-matrix of rank 1, factorized)" if name == "KronLinear" else
                    "peft LoKr on the same frozen nn.Linear (w1 25x28 (x) w2 25x28)")
            report("h", f"{name} fwd+bwd, batch {batch}: vs {peer}", ratios, None,
                   name=f"{name.lower()}_vs_{'tltorch' if name == 'KronLinear' else 'peft'}_{batch}")

    if "k" in args.rows:
        row_k(report, args)

    # c. dense original: achieved GFLOP/s of a training epoch vs the machine's sgemm
    if "c" in args.rows:
        row_c(report, args, device)
    if "d" in args.rows:
        row_d(report, args, device, seeds)
    if "i" in args.rows:
        row_i(report, args, device, seeds)
    if set("efg") & set(args.rows):
        rows_efg(report, args, device, seeds)
    print("\n| | measurement | measured | goal | |\n|---|---|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if not args.quick:
        meta = dict(machine=kr.machine_name(), threads=torch.get_num_threads(), torch=torch.__version__,
                    device=str(device), date=time.strftime("%Y-%m-%d"), repeats=args.repeats)
        for r in bench_rows:
            r["date"] = meta["date"]
        old = kr.bench_record(device.type)
        if set(args.rows) != set("abcdefghijk") and old is not None:  # a subset: the other rows stay as committed
            bench_rows[:0] = [r for r in old["rows"] if r["row"] not in set(args.rows)]
            meta = dict(old, rows=None, partial=sorted(set(old.get("partial", [])) | set(args.rows)))
            meta.pop("rows")
        path = kr.save_bench(dict(meta, rows=bench_rows), device.type)
        print(f"\nwritten to {path.relative_to(kr.ROOT)} (the pages read it)")


def row_k(report, args):
    """k. One adapter training step (Adam on the trainable weights, new head included, batch 64, CPU) at each of
    Part 4's budgets, every net timed in turn in each repeat (:func:`kr.step_seconds`): the Kronecker sum on the
    path its cost model picks ('auto') and on each path forced, against full fine-tuning of the layer, peft's LoRA
    and peft's LoKr of the same budget. Goals: never slower than full fine-tuning, within 1.5x of LoRA."""
    torch.manual_seed(0)
    base = ku.build_model(kr.BASE_VARIANT)
    x, y = torch.randn(6_400, ku.IMAGE_SIZE), torch.randint(0, ku.NUM_CLASSES, (6_400,))
    arms = kr.budget_arms()
    nets = {"full_fc1": kr.adapted_net(kr.Arm("full"), base, 1)}
    for level in range(len(kr.BUDGET_RANKS)):
        lora, lokr, kron = kr.level_members(arms, level)
        nets[lora.name], nets[lokr.name] = kr.adapted_net(lora, base, 1), kr.adapted_net(lokr, base, 1)
        for path in ku.ADAPTER_PATHS:
            net = kr.adapted_net(kron, base, 1)
            net.fc1.path = path
            nets[f"{kron.name}:{path}"] = net
    table = kr.step_seconds(nets, x, y, steps=100, rounds=args.repeats)
    times = [dict(zip(t.net, t.seconds_per_step)) for _, t in table.groupby("round")]
    report("k", "full fine-tuning of fc1, Adam step, batch 64: milliseconds", [1e3 * t["full_fc1"] for t in times],
           None, unit=" ms", fmt="{:.3f}", name="adapter_ms_full_fc1")
    autos = []   # each budget's Kronecker sum on its chosen path
    for level in range(len(kr.BUDGET_RANKS)):
        lora, lokr, kron = kr.level_members(arms, level)
        budget = f"{kr.adapter_weights(kron):,} weights"
        auto = f"{kron.name}:auto"
        autos.append(auto)
        chosen = nets[auto].fc1.step_path(RECIPE.batch_size)
        for name in (lora.name, lokr.name, auto, f"{kron.name}:contract", f"{kron.name}:form"):
            report("k", f"{name} ({budget}), Adam step, batch 64: milliseconds", [1e3 * t[name] for t in times], None,
                   unit=" ms", fmt="{:.3f}", name=f"adapter_ms_{name.replace(':', '_')}")
        report("k", f"{kron.name} ({budget}, the {chosen} path) vs full fine-tuning: step time ratio",
               [t[auto] / t["full_fc1"] for t in times], 1.0, lower_is_better=True, fmt="{:.2f}",
               name=f"adapter_vs_full_{kron.name}")
        report("k", f"{kron.name} ({budget}) vs {lora.name}: step time ratio", [t[auto] / t[lora.name] for t in times],
               1.5, lower_is_better=True, fmt="{:.2f}", name=f"adapter_vs_lora_{kron.name}")
        report("k", f"{kron.name} ({budget}) vs peft {lokr.name}: speed-up", [t[lokr.name] / t[auto] for t in times],
               None, fmt="{:.2f}", name=f"adapter_vs_lokr_{kron.name}")
        report("k", f"{kron.name} ({budget}, the {chosen} path): the layer's multiply-adds per step (counted by "
               "ku.adapter_step_macs) vs full fine-tuning's", [adapter_macs_ratio(nets[auto].fc1)], None, fmt="{:.2f}",
               name=f"adapter_macs_vs_full_{kron.name}")
    adam = adam_seconds({name: nets[name] for name in ("full_fc1", *autos)}, rounds=args.repeats)
    for name, seconds in adam.items():
        weights = sum(p.numel() for p in nets[name].parameters() if p.requires_grad)
        report("k", f"{name.removesuffix(':auto')}: torch.optim.Adam's update alone ({weights:,} trainable weights, "
               "head included): milliseconds", [1e3 * s for s in seconds], None, unit=" ms", fmt="{:.3f}",
               name=f"adam_ms_{name.removesuffix(':auto')}")


def adapter_macs_ratio(adapter: ku.KronAdapter, batch: int = RECIPE.batch_size) -> float:
    """Multiply-adds of one training step of ``adapter`` (the frozen product x W_0^T plus what its path adds, by
    ku.adapter_step_macs) against full fine-tuning of the same layer (x W^T and the weight gradient g^T x)."""
    left, right = tuple(adapter.delta.factor(0).shape), tuple(adapter.delta.factor(1).shape)
    layer = batch * adapter.base.in_features * adapter.base.out_features
    return (layer + ku.adapter_step_macs(left, right, batch, adapter.step_path(batch))) / (2 * layer)


def adam_seconds(nets: dict, *, steps: int = 200, rounds: int = 3) -> dict[str, list[float]]:
    """Seconds of torch.optim.Adam's step alone over each net's trainable weights (their gradients drawn once),
    every net in turn in each round: what full fine-tuning pays for updating all of the layer's weights."""
    times = {name: [] for name in nets}
    for _ in range(rounds):
        for name, net in nets.items():
            params = [p for p in net.parameters() if p.requires_grad]
            for p in params:
                p.grad = torch.randn_like(p)
            optimizer = torch.optim.Adam(params, lr=1e-4)
            times[name].append(timed(lambda: [optimizer.step() for _ in range(steps)]) / steps)
    return times


def row_c(report, args, device):
    """c. dense original: achieved GFLOP/s of a training epoch vs the machine's sgemm."""
    our_epochs("original", [1], device)
    n_train, n_test = ku.train_size("mnist"), len(ku.load_dataset(kr.project_path("data"), "test")[1])
    fc1, fc2 = ku.IMAGE_SIZE * ku.HIDDEN_SIZE, ku.HIDDEN_SIZE * ku.NUM_CLASSES
    # forward 2*MACs; weight gradients 2*MACs; input gradient only for fc2 (fc1's input needs none)
    flops = n_train * (2 * (fc1 + fc2) + 2 * (fc1 + fc2) + 2 * fc2) + n_test * 2 * (fc1 + fc2)
    fractions = []
    for _ in range(args.repeats):
        peak = sgemm_gflops(device)
        achieved = flops / timed(lambda: our_epochs("original", [1], device)) / 1e9
        fractions.append(100 * achieved / peak)
    print(f"    (sgemm 2048^3: {peak:.0f} GFLOP/s; original epoch: {achieved:.0f} GFLOP/s)")
    report("c", "dense original: epoch GFLOP/s as % of sgemm GFLOP/s", fractions, 40, unit="%", fmt="{:.0f}")


def row_d(report, args, device, seeds):
    """d. 10 seeds stacked in one step vs 10 solo runs, the Kronecker variants."""
    limit = 6400 if args.quick else 19200
    for variant in ("one_kron", "two_kron", "one_kron_out_kron", "two_kron_out_kron"):
        ratios = []
        for _ in range(args.repeats):
            solo = sum(timed(lambda: our_epochs(variant, [k], device, limit)) for k in seeds)
            batched = timed(lambda: our_epochs(variant, seeds, device, limit))
            ratios.append(solo / batched)
        report("d", f"{variant}: 10 seeds batched vs 10 solo runs", ratios, 3)


def row_i(report, args, device, seeds):
    """i. a tensor train against the Kronecker net with the same input weights, 5 seeds stacked as Part 3 trains them:
    full epochs 2 and 3 of one training (after compiling), as a sweep runs them."""
    tt, kron = "tt4_r5-4-5", "two_kron"
    flop_ratio = ku.training_flops(tt, RECIPE.batch_size) / ku.training_flops(kron, RECIPE.batch_size)

    def steady_epoch(variant):
        rows, _ = ku.train(variant, seeds[:5], ku.TrainSettings(epochs=3), data_dir=kr.project_path("data"),
                           device=device, progress=False)
        return rows[rows.epoch > 1].seconds.mean()
    ratios = [steady_epoch(tt) / steady_epoch(kron) for _ in range(args.repeats)]
    report("i", f"{tt} epoch vs {kron} epoch ({ku.count_weights(ku.build_model(tt).fc1):,} vs "
           f"{ku.count_weights(ku.build_model(kron).fc1):,} input weights), 5 seeds stacked, epochs 2 and 3; it "
           f"does {flop_ratio:.1f}x the FLOPs per training image", ratios, 1.5, lower_is_better=True,
           name="tt_vs_kron_epoch")


def rows_efg(report, args, device, seeds):
    """e, f, g: the post's six nets x 10 seeds as make report FORCE=1 sweeps them, for a measured fraction of the epochs:
    on the local Dask cluster (the default) and serially in one process, the same runs, side by side; g, each net's
    epoch against its compute floor."""
    epochs = 2 if args.quick else SWEEP_EPOCHS
    walls, records = {}, {}
    with tempfile.TemporaryDirectory() as folder:  # untimed: whichever sweep ran first would compile for both
        kr.run_sweep(list(ku.VARIANTS), seeds, ku.TrainSettings(epochs=1), results_dir=folder,
                     data_dir=kr.project_path("data"), device=str(device), scheduler="local")
    for scheduler in ("local", "serial"):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            kr.run_sweep(list(ku.VARIANTS), seeds, ku.TrainSettings(epochs=epochs), results_dir=folder,
                         data_dir=kr.project_path("data"), device=str(device), scheduler=scheduler)
            walls[scheduler] = time.perf_counter() - start
            records[scheduler] = kr.load_results(folder, ku.TrainSettings(epochs=epochs))
    full = RECIPE.epochs
    minutes = walls["local"] * full / epochs / 60
    report("e", f"the post's 6 nets x 10 seeds x {full} epochs on the local Dask cluster: {epochs} epochs measured "
           f"({walls['local']:.0f} s), times {full / epochs:.1f} (compile and start-up counted that often too: an upper bound)",
           [minutes], 15, unit=" min", fmt="{:.1f}", lower_is_better=True)
    report("f", f"the same sweep: local Dask cluster vs serial in one process ({walls['serial']:.0f} s)",
           [walls["serial"] / walls["local"]], None)

    # g. each net's training epoch against its compute floor: its FLOPs (counted by torch's FlopCounterMode on one
    # step and one test batch) at this machine's sgemm rate, against the serial sweep's seconds per seed and epoch
    # (epochs 2 on, after compiling; a seed's share of the stacked step)
    peak = sgemm_gflops(device) * 1e9
    for variant in ku.VARIANTS:
        runs = records["serial"][(records["serial"].variant == variant) & (records["serial"].epoch > 1)]
        floor, measured = epoch_flops(variant) / peak, runs.seconds.median()
        report("g", f"{variant}: epoch time at its compute floor ({floor:.3f} s per seed-epoch at {peak / 1e9:.0f} "
               f"GFLOP/s) as % of the measured {measured:.3f} s", [100 * floor / measured],
               35 if ku.count_weights(ku.build_model(variant)) <= ku.STACK_WEIGHT_LIMIT else None, unit="%", fmt="{:.0f}")


if __name__ == "__main__":
    main()
