"""The experiments beyond the post: equal-budget baselines, ranks, tensor-train partners, the t3f
tutorial's recipe, nearest-Kronecker projection of a trained layer, and the transpose symmetry.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

import kron_utils as ku

from .fetch import verify_dataset
from .stats import compare_final, epochs_phrase, final_epochs, mean_sd, outcome
from .store import cached, settings_key


def transpose_images(x: torch.Tensor) -> torch.Tensor:
    """Each flattened 28x28 image of ``x`` (N, 784) transposed (rows become columns)."""
    side = ku.IMAGE_FACTORS
    return x.reshape(-1, *side).transpose(-1, -2).reshape(x.shape)


def transpose_permutation(factors: Sequence[int] = ku.HIDDEN_FACTORS) -> torch.Tensor:
    """The index p with h(Xᵀ) = h(X)[p] for a tied Kronecker layer without bias: unit (a, b) -> (b, a)."""
    a, b = factors
    return torch.arange(a * b).reshape(a, b).T.reshape(-1)


@torch.no_grad()
def transpose_changes_prediction(model: nn.Module, x: torch.Tensor) -> float:
    """Fraction of the images in ``x`` whose predicted class changes when the image is transposed."""
    model.eval()
    return float((model(x).argmax(-1) != model(transpose_images(x)).argmax(-1)).float().mean())


def equal_budget_baselines(variant: str) -> tuple[str, str]:
    """For a net with a Kronecker input layer: (the low-rank net whose input layer has about as many
    weights, the dense net of about the same total parameter count)."""
    model = ku.build_model(variant)
    per_rank = ku.IMAGE_SIZE + ku.HIDDEN_SIZE                            # P.Q: 1,409 weights per unit of rank
    per_width = ku.IMAGE_SIZE + 1 + ku.NUM_CLASSES                       # 784-h-10: 795 parameters per unit
    rank = max(1, round(ku.count_weights(model.fc1) / per_rank))
    width = max(1, round((ku.count_params(model) - ku.NUM_CLASSES) / per_width))
    return f"lowrank{rank}", f"width{width}"


def input_layer_weight(variant: str, seed: int = 0) -> torch.Tensor:
    """The input layer's (out, in) matrix of a freshly initialised net, multiplied out in float64 (so that
    ranks are not blurred by float32 rounding)."""
    fc1 = copy.deepcopy(ku.seeded_model(variant, seed).fc1).double()
    with torch.no_grad():
        if hasattr(fc1, "dense_weight"):
            return fc1.dense_weight()
        if isinstance(fc1, nn.Sequential):
            return fc1[1].weight @ fc1[0].weight
        return fc1.weight.detach()


def input_layer_rank(variant: str, seed: int = 0) -> int:
    """Matrix rank of the input layer of a freshly initialised net (its rank in general position)."""
    return int(torch.linalg.matrix_rank(input_layer_weight(variant, seed)))


def input_weights(variant: str) -> int:
    """The number of weights (biases excluded) of the net's input layer."""
    return ku.count_weights(ku.build_model(variant).fc1)


def nearest_budget(variant: str, candidates: Sequence[str]) -> str:
    """Of ``candidates``, the net whose input layer has the weight count nearest to ``variant``'s (by ratio;
    on a tie, the first given)."""
    if not candidates:
        raise ValueError("no candidates to compare with")
    own = input_weights(variant)
    return min(candidates, key=lambda c: abs(math.log(input_weights(c) / own)))


#: A tensor train is a Kronecker net's partner when their input layers' weights are within this factor.
TT_PARTNER_RATIO = 1.5
#: The Pareto figure's zoom: nets up to this many weights within this many points of the best.
PARETO_ZOOM = dict(weights=30_000, points=1.5)


def tt_baseline(variant: str, tt_variants: Sequence[str], within: float = TT_PARTNER_RATIO) -> str | None:
    """The tensor-train net whose input layer has the weight count nearest to ``variant``'s, if it is within a
    factor ``within`` of it (else None: no TT net of the grid has about that budget)."""
    if not tt_variants:
        return None
    nearest = nearest_budget(variant, tt_variants)
    ratio = input_weights(nearest) / input_weights(variant)
    return nearest if max(ratio, 1 / ratio) <= within else None


TT_CORES = 4  # (7,4,7,4) -> (5,5,5,5), the t3f tutorial's split


#: The t3f "tensor nets" tutorial (Bihaqo/t3f, docs/tutorials/tensor_nets.ipynb): its net is our tt4_r4, trained
#: with Keras' Adam at 1e-2 and batches of 64; the accuracy is the one it reports after 3 epochs.
T3F_TUTORIAL = dict(variant="tt4_r4", params=7_985, epochs=3, lr=1e-2, batch_size=64, accuracy=96.38)


T3F_VARIANTS = ("tt4_r4", "two_kron")  # the tutorial's net, and the post's net beside it


def t3f_settings(epochs: int = T3F_TUTORIAL["epochs"], dataset: str = "mnist") -> ku.TrainSettings:
    """The t3f tutorial's recipe: Adam at lr 1e-2, batches of 64, ``epochs`` epochs (3 in the tutorial)."""
    return ku.TrainSettings(epochs=epochs, lr=T3F_TUTORIAL["lr"], batch_size=T3F_TUTORIAL["batch_size"],
                            optimizer="adam", dataset=dataset)


def budget_table(points: pd.DataFrame, kron_variants: Sequence[str], tt_variants: Sequence[str] = ()) -> pd.DataFrame:
    """Each Kronecker net beside its two equal-budget baselines (and, where the grid has one, the tensor-train
    net of about the same input-layer weights): weights, rank and accuracy of each."""
    def acc(v):
        return f"{points.loc[v, 'mean']:.2f} ± {points.loc[v, 'std']:.2f}"
    table = []
    for v in kron_variants:
        low, narrow = equal_budget_baselines(v)
        tt = tt_baseline(v, tt_variants)
        tt_cells = [tt, points.loc[tt, "weights"], input_layer_rank(tt), acc(tt)] if tt else ["–"] * 4
        table.append([v, points.loc[v, "weights"], points.loc[v, "params"], input_layer_rank(v), acc(v),
                      low, points.loc[low, "weights"], input_layer_rank(low), acc(low),
                      narrow, points.loc[narrow, "params"], input_layer_rank(narrow), acc(narrow)]
                     + (tt_cells if tt_variants else []))
    columns = pd.MultiIndex.from_tuples(
        [("Kronecker net", c) for c in ("net", "weights", "params", "rank", "accuracy (%)")]
        + [("low-rank, same input weights", c) for c in ("net", "weights", "rank", "accuracy (%)")]
        + [("narrow dense, same parameters", c) for c in ("net", "params", "rank", "accuracy (%)")]
        + ([("tensor train, about the same input weights", c) for c in ("net", "weights", "rank", "accuracy (%)")]
           if tt_variants else []))
    return pd.DataFrame(table, columns=columns)


def equal_budget_comparisons(rows: pd.DataFrame, kron_variants: Sequence[str]) -> pd.DataFrame:
    """Each Kronecker net against each of its equal-budget baselines: difference, interval, outcome, ranks."""
    out = []
    for v in kron_variants:
        for baseline in equal_budget_baselines(v):
            c = compare_final(rows, v, baseline)
            out.append(dict(variant=v, baseline=baseline, diff=c["diff"], low=c["low"], high=c["high"],
                            outcome=outcome(c), rank=input_layer_rank(v), baseline_rank=input_layer_rank(baseline)))
    return pd.DataFrame(out)


def tt_comparisons(rows: pd.DataFrame, kron_variants: Sequence[str], tt_variants: Sequence[str]) -> pd.DataFrame:
    """Each Kronecker net against the tensor-train net of about its input-layer weights (:func:`tt_baseline`):
    difference Kronecker - TT in final accuracy, 95% Welch interval, outcome. Nets without one are left out."""
    out = []
    for v in kron_variants:
        tt = tt_baseline(v, tt_variants)
        if tt:
            c = compare_final(rows, v, tt)
            out.append(dict(variant=v, baseline=tt, weights=input_weights(v), baseline_weights=input_weights(tt),
                            diff=c["diff"], low=c["low"],
                            high=c["high"], outcome=outcome(c)))
    return pd.DataFrame(out, columns=["variant", "baseline", "weights", "baseline_weights", "diff", "low", "high",
                                      "outcome"])


#: The 4-core grid of the TT-rank columns: 784 = 7x4x7x4 -> 625 = 5x5x5x5 (the t3f tutorial's split).
TT_GRID = (ku.factorize(ku.IMAGE_SIZE, TT_CORES), ku.factorize(ku.HIDDEN_SIZE, TT_CORES))


def layer_ranks(variant: str) -> dict:
    """The input layer's weight count, matrix rank and minimal TT-ranks in :data:`TT_GRID` ('a-b-c'), taken
    on a freshly initialised net (:func:`kron_utils.unfolding_ranks`)."""
    weight = input_layer_weight(variant)
    return dict(input_weights=input_weights(variant), matrix_rank=int(torch.linalg.matrix_rank(weight)),
                tt_ranks="-".join(map(str, ku.unfolding_ranks(weight, *TT_GRID))))


def rank_table(points: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    """For nets with a 784 -> 625 input layer: :func:`layer_ranks`, family and accuracy."""
    return pd.DataFrame([dict(net=v, family=points.loc[v, "family"], **layer_ranks(v),
                              accuracy=f"{points.loc[v, 'mean']:.2f} ± {points.loc[v, 'std']:.2f}") for v in variants])


def nearest_kronecker(variant: str, candidates: Sequence[str]) -> str:
    """Of ``candidates``, the net with a Kronecker input layer whose input weights are nearest to ``variant``'s."""
    kron = [c for c in candidates if isinstance(ku.build_model(c).fc1, ku.KronLinear)]
    if not kron:
        raise ValueError(f"none of {list(candidates)} has a Kronecker input layer")
    return nearest_budget(variant, kron)


def t3f_table(sgd_rows: pd.DataFrame, adam_rows: pd.DataFrame, tutorial: Mapping = T3F_TUTORIAL) -> pd.DataFrame:
    """The t3f tutorial's net and the post's two_kron under both recipes (final epoch, mean ± sd and range over
    seeds), and the tutorial's own reported number."""
    table = []
    for recipe, rows in [(f"Adam lr {tutorial['lr']:g}, batches of 64, {epochs_phrase(adam_rows.epoch.max())} (t3f)", adam_rows),
                         (f"SGD lr 0.01 momentum 0.5, batches of 64, {epochs_phrase(sgd_rows.epoch.max())} (the post)", sgd_rows)]:
        finals = final_epochs(rows)
        for v, acc in finals.groupby("variant", sort=False).test_accuracy:
            table.append(dict(net=v, params=int(finals.loc[finals.variant == v, "params"].iloc[0]), recipe=recipe,
                              seeds=len(acc), accuracy=mean_sd(acc), range=f"{acc.min():.2f} to {acc.max():.2f}"))
    table.append(dict(net=f"{tutorial['variant']} in the t3f tutorial (Keras)", params=tutorial["params"],
                      recipe=f"Adam lr {tutorial['lr']:g}, batches of {tutorial['batch_size']}, {epochs_phrase(tutorial['epochs'])}",
                      seeds=1, accuracy=f"{tutorial['accuracy']:.2f} (as reported)", range="–"))
    return pd.DataFrame(table)


def kron_projection(model: nn.Module, rank: int) -> nn.Sequential:
    """A copy of a dense 784-625-10 net whose input layer is replaced by its nearest rank-r
    Kronecker sum (28,28)->(25,25) (:meth:`KronLinear.from_dense`); bias and output layer are kept."""
    fc1 = model.fc1
    if not isinstance(fc1, nn.Linear) or tuple(fc1.weight.shape) != (ku.HIDDEN_SIZE, ku.IMAGE_SIZE):
        raise ValueError(f"kron_projection needs a dense 784->625 input layer, got {fc1}")
    layer = ku.KronLinear.from_dense(fc1.weight, ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS, rank=rank, bias=fc1.bias)
    return ku.mlp(layer, copy.deepcopy(model.fc2))


def trained_models(variant: str, seeds, settings: ku.TrainSettings, cache_dir: str | Path, *,
                   data_dir: str | Path = "data", device: str = "auto") -> list[nn.Module]:
    """Nets trained with ``ku.train`` (all seeds together), their weights cached through :func:`cached`
    in <cache_dir>/<dataset>/<settings key>/<variant>.pt; other settings or seeds are retrained."""
    seeds = ku.check_seeds(seeds)
    verify_dataset(data_dir, settings.dataset)
    path = Path(cache_dir) / settings.dataset / settings_key(settings) / f"{variant}.pt"

    def compute():
        _, models = ku.train(variant, seeds, settings, data_dir=data_dir, device=device)
        return [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in models]
    states = cached(path, dict(variant=variant, seeds=seeds, settings=settings.record()), compute,
                    save=torch.save, load=lambda p: torch.load(p, map_location="cpu", weights_only=True))
    models = []
    for state in states:
        model = ku.build_model(variant)
        model.load_state_dict(state)
        models.append(model)
    return models


def projection_experiment(source: Sequence[nn.Module], seeds, ranks, settings: ku.TrainSettings, *,
                          data_dir: str | Path = "data", device: str = "auto") -> pd.DataFrame:
    """Project each trained dense net onto rank-r Kronecker sums, then fine-tune for settings.epochs.

    Tidy rows with variant 'projected-kron2_r<r>': epoch 0 is right after projection (no training),
    then one row per fine-tuning epoch. Per seed: ``relative_error`` = ||W - W_r|| / ||W||;
    ``update_error`` = the same for the learned change W - W0 (W0 the seed's initialisation);
    ``moved`` = ||W - W0|| / ||W||. The table holds all the report needs, so it can be shipped.
    """
    seeds, frames = ku.check_seeds(seeds), []
    weights = [m.fc1.weight.detach() for m in source]
    updates = [w - ku.seeded_model("original", s).fc1.weight.detach() for w, s in zip(weights, seeds)]
    moved = {s: float(d.norm() / w.norm()) for s, d, w in zip(seeds, updates, weights)}
    for rank in [ku.check_positive_int(r, "each of projection_ranks") for r in ranks]:
        projected = [kron_projection(m, rank) for m in source]
        losses, accuracies = ku.evaluate(projected, settings.dataset, data_dir, device, settings.test_batch_size)
        name = projection_name(rank)
        start = pd.DataFrame(dict(dataset=settings.dataset, variant=name, seed=seeds, epoch=0,
                                  weights=ku.count_weights(projected[0]), params=ku.count_params(projected[0]),
                                  train_loss=math.nan, test_loss=losses, test_accuracy=accuracies,
                                  seconds=0.0, status="ok"))
        tuned, _ = ku.train(name, seeds, settings, data_dir=data_dir, device=device, initial_models=projected,
                            progress=False)
        run = pd.concat([start, tuned], ignore_index=True)
        run["relative_error"] = run.seed.map(dict(zip(seeds, (ku.relative_error(w, rank) for w in weights))))
        run["update_error"] = run.seed.map(dict(zip(seeds, (ku.relative_error(d, rank) for d in updates))))
        run["moved"] = run.seed.map(moved)
        frames.append(run)
    return pd.concat(frames, ignore_index=True)


def projection_name(rank: int) -> str:
    """The label of the nets projected onto rank-r Kronecker sums: 'projected-kron2_r<r>'."""
    return f"projected-kron2_r{rank}"


def projection_rank(name: str) -> int:
    """The rank r of a 'projected-kron2_r<r>' label, read through the variant registry."""
    return ku.parse_variant(name.removeprefix("projected-"))[1]["r"]


def scratch_name(rank: int) -> str:
    """The from-scratch net with the same structure as a rank-r projection."""
    return "two_kron" if rank == 1 else f"kron2_r{rank}"


def projection_table(projected: pd.DataFrame, scratch: pd.DataFrame, finetune_epochs: int, epochs: int) -> pd.DataFrame:
    """Per rank: weights, relative error, accuracy right after projection and after fine-tuning, and the
    same structure trained from scratch for as many epochs and for the full run (mean ± sd over seeds)."""
    def at(df, e):
        values = df[df.epoch == e].test_accuracy
        return mean_sd(values) if len(values) else "not in the sweep"
    table = []
    for variant, mine in projected.groupby("variant", sort=False):
        rank = projection_rank(variant)
        theirs = scratch[scratch.variant == scratch_name(rank)]
        table.append({"rank r": rank, "weights": int(mine.weights.iloc[0]),
                      "relative error ‖W−Wᵣ‖/‖W‖": f"{mine.relative_error.mean():.3f}",
                      "projected, no training": at(mine, 0),
                      f"projected + {epochs_phrase(finetune_epochs)}": at(mine, finetune_epochs),
                      f"from scratch, {epochs_phrase(finetune_epochs)}": at(theirs, finetune_epochs),
                      f"from scratch, {epochs_phrase(epochs)}": at(theirs, epochs)})
    return pd.DataFrame(table)


def tt_partners(rows: pd.DataFrame, ranks: pd.DataFrame, tt_variants: Sequence[str]) -> pd.DataFrame:
    """Each tensor train against the Kronecker net of ``rows`` nearest in input weights: both nets' weights
    and TT-ranks (from :func:`rank_table`, else :func:`layer_ranks`), difference TT - Kronecker, interval, outcome."""
    table = ranks.set_index("net")
    present = [v for v in dict.fromkeys(rows.variant) if v not in tt_variants]
    out = []
    for v in tt_variants:
        k = nearest_kronecker(v, present)
        c = compare_final(rows, v, k)
        partner = table.loc[k] if k in table.index else layer_ranks(k)
        out.append(dict(net=v, weights=table.loc[v, "input_weights"], tt_ranks=table.loc[v, "tt_ranks"], partner=k,
                        partner_weights=partner["input_weights"], partner_tt_ranks=partner["tt_ranks"],
                        diff=c["diff"], low=c["low"], high=c["high"], outcome=outcome(c)))
    return pd.DataFrame(out)


def rank_contrast(ranks: pd.DataFrame) -> dict:
    """From :func:`rank_table`: the layer of lowest matrix rank (``lowest``, with its TT-ranks), the layers of
    full matrix rank (``full``) and the smallest TT-ranks among them (``lowest_tt``)."""
    table = ranks.set_index("net")
    lowest = table.loc[table.matrix_rank.idxmin()]
    full = list(table[table.matrix_rank == table.matrix_rank.max()].index)
    return dict(lowest=lowest.name, lowest_rank=int(lowest.matrix_rank), lowest_tt=lowest.tt_ranks, full=full,
                full_rank=int(table.matrix_rank.max()), layers=len(table),
                lowest_tt_of_full=min((table.loc[v, "tt_ranks"] for v in full),
                                      key=lambda t: sum(map(int, t.split("-")))))


def t3f_comparison(sgd_rows: pd.DataFrame, adam_rows: pd.DataFrame, tutorial: Mapping = T3F_TUTORIAL) -> dict:
    """The t3f net under both recipes: its parameter count, its final accuracies under the tutorial's recipe
    (``adam``) and the post's (``sgd``), their epochs, and its Welch comparison with two_kron under each."""
    net = tutorial["variant"]
    return dict(net=net, params=ku.count_params(ku.build_model(net)), tutorial=dict(tutorial),
                adam=final_epochs(adam_rows[adam_rows.variant == net]).test_accuracy.reset_index(drop=True),
                sgd=final_epochs(sgd_rows[sgd_rows.variant == net]).test_accuracy.reset_index(drop=True),
                adam_epochs=int(adam_rows.epoch.max()), sgd_epochs=int(sgd_rows.epoch.max()),
                vs_two_kron=dict(adam=compare_final(adam_rows, net, "two_kron"),
                                 sgd=compare_final(sgd_rows, net, "two_kron")))


def projection_findings(projected: pd.DataFrame, scratch: pd.DataFrame, finetune_epochs: int, epochs: int) -> dict:
    """The projection experiment's numbers: accuracy right after projection (``first``, per rank) and after
    fine-tuning (``after``), relative errors, how far training moved the weights and how close the change
    W - W0 is to the top rank's Kronecker sum, and per rank the fine-tuned net minus the same structure trained
    from scratch for as many epochs (``gains``) and whether the full-length scratch run ends higher (``longer``)."""
    by_rank = lambda s: s.rename(index=projection_rank)  # noqa: E731 - one relabelling, used thrice
    first = by_rank(projected[projected.epoch == 0].groupby("variant").test_accuracy.mean())
    after = by_rank(projected[projected.epoch == finetune_epochs].groupby("variant").test_accuracy.mean())
    errors = by_rank(projected.groupby("variant").relative_error.mean())
    top = projected[projected.variant == projection_name(int(errors.index.max()))]
    start = scratch[scratch.epoch == finetune_epochs].groupby("variant").test_accuracy.mean()
    full = scratch[scratch.epoch == epochs].groupby("variant").test_accuracy.mean()
    gains = {r: after[r] - start[scratch_name(r)] for r in sorted(after.index) if scratch_name(r) in start}
    return dict(first=first, after=after, errors=errors, top_rank=int(errors.index.max()),
                update_error=float(top.update_error.mean()), moved=float(top.moved.mean()), gains=gains,
                longer=[r for r in gains if scratch_name(r) in full and full[scratch_name(r)] > after[r]],
                finetune_epochs=finetune_epochs, epochs=epochs)
