"""Part 3's experiments on trained layers: the t3f tutorial's recipe, nearest-Kronecker projection of a
trained dense layer, and tensor-train compression with fine-tuning.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Mapping, Sequence

import kron_utils as ku
import pandas as pd
import torch
from torch import nn

from ..nets import input_weights
from ..stats import compare_final, final_epochs, mean_sd, outcome
from ..words import epochs_phrase
from .budgets import TT_CORES, TT_GRID, tt_name

__all__ = ["T3F_COMMIT", "T3F_TUTORIAL", "T3F_COMPRESSION", "T3F_VARIANTS", "t3f_settings", "t3f_table",
           "kron_projection", "tt_compression", "compress_and_tune", "t3f_compression_settings",
           "matching_kron_rank", "compression_experiment", "projection_experiment", "compression_findings",
           "compression_table", "projection_gaps", "projection_name", "projection_rank", "scratch_name",
           "projection_table", "t3f_comparison", "projection_findings"]


#: The t3f "tensor nets" tutorial (Bihaqo/t3f, docs/tutorials/tensor_nets.ipynb at commit abd4f77, the version
#: quoted here): its net is our tt4_r4, trained with Keras' Adam at 1e-2 and batches of 64; the accuracy is
#: the one it reports after 3 epochs.
T3F_COMMIT = "abd4f77"


T3F_TUTORIAL = dict(variant="tt4_r4", params=7_985, epochs=3, lr=1e-2, batch_size=64, accuracy=96.38, commit=T3F_COMMIT)


#: The same tutorial's second experiment: the dense 784-625-10 net trained with Adam at 1e-3, batches of 64, for
#: 5 epochs (97.14% reported), its input layer compressed to a TT-matrix of TT-rank 16 by t3f.to_tt_matrix
#: (64.43% right after), then 2 more epochs of Adam at 1e-3 (97.65%).
T3F_COMPRESSION = dict(epochs=5, lr=1e-3, batch_size=64, tt_rank=16, finetune_epochs=2, dense=97.14,
                       compressed=64.43, finetuned=97.65)


T3F_VARIANTS = ("tt4_r4", "two_kron")  # the tutorial's net, and the post's net beside it


def t3f_settings(epochs: int = T3F_TUTORIAL["epochs"], dataset: str = "mnist") -> ku.TrainSettings:
    """The t3f tutorial's recipe: Adam at lr 1e-2, batches of 64, ``epochs`` epochs (3 in the tutorial)."""
    return ku.TrainSettings(epochs=epochs, lr=T3F_TUTORIAL["lr"], batch_size=T3F_TUTORIAL["batch_size"],
                            optimizer="adam", dataset=dataset)


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
    table.append(dict(net=f"{tutorial['variant']} in the t3f tutorial (Keras, commit {tutorial['commit']})", params=tutorial["params"],
                      recipe=f"Adam lr {tutorial['lr']:g}, batches of {tutorial['batch_size']}, {epochs_phrase(tutorial['epochs'])}",
                      seeds=1, accuracy=f"{tutorial['accuracy']:.2f} (as reported)", range="–"))
    return pd.DataFrame(table)


def kron_projection(model: nn.Module, rank: int) -> nn.Sequential:
    """A copy of a dense 784-625-10 net whose input layer is replaced by its nearest rank-r
    Kronecker sum (28,28)->(25,25) (:meth:`KronLinear.from_dense`); bias and output layer are kept."""
    fc1 = _dense_input_layer(model)
    layer = ku.KronLinear.from_dense(fc1.weight, ku.IMAGE_FACTORS, ku.HIDDEN_FACTORS, rank=rank, bias=fc1.bias)
    return ku.mlp(layer, copy.deepcopy(model.fc2))


def tt_compression(model: nn.Module, rank: int) -> nn.Sequential:
    """A copy of a dense 784-625-10 net whose input layer is replaced by its TT-SVD in :data:`TT_GRID` with every
    TT-rank at most ``rank`` (tensorly's ``tensor_train_matrix``, as t3f's ``to_tt_matrix``); bias and output
    layer are kept."""
    import tensorly
    from tensorly.decomposition import tensor_train_matrix
    weight = _dense_input_layer(model).weight.detach().double().cpu()
    in_factors, out_factors = TT_GRID
    tensor = weight.reshape(*out_factors, *in_factors).numpy()
    with tensorly.backend_context("numpy"):  # whatever backend the caller has set
        cores = tensor_train_matrix(tensor, rank=[1] + [rank] * (TT_CORES - 1) + [1]).factors
    layer = ku.TTLinear(in_factors, out_factors, ranks=[core.shape[-1] for core in cores[:-1]])
    with torch.no_grad():
        for mine, core in zip(layer.cores, cores):
            mine.copy_(torch.from_numpy(core))
        layer.bias.copy_(model.fc1.bias)
    return ku.mlp(layer, copy.deepcopy(model.fc2))


def _dense_input_layer(model: nn.Module) -> nn.Linear:
    fc1 = model.fc1
    if not isinstance(fc1, nn.Linear) or tuple(fc1.weight.shape) != (ku.HIDDEN_SIZE, ku.IMAGE_SIZE):
        raise ValueError(f"compressing needs a dense 784->625 input layer, got {fc1}")
    return fc1


def compress_and_tune(source: Sequence[nn.Module], seeds, name: str, compress, settings: ku.TrainSettings, *,
                      data_dir: str | Path = "data", device: str = "auto") -> pd.DataFrame:
    """Tidy rows of the nets ``compress(model)`` of ``source`` (one per seed), labelled ``name``: epoch 0
    right after compression, then ``settings.epochs`` epochs of fine-tuning; ``relative_error`` is
    ||W - W_c|| / ||W|| of the input layer."""
    seeds = ku.check_seeds(seeds)
    compressed = [compress(m) for m in source]
    with torch.no_grad():
        errors = [float((_dense_input_layer(m).weight - c.fc1.dense_weight()).norm() / m.fc1.weight.norm())
                  for m, c in zip(source, compressed)]
    losses, accuracies = ku.evaluate(compressed, settings.dataset, data_dir, device, settings.test_batch_size)
    start = pd.DataFrame(dict(dataset=settings.dataset, variant=name, seed=seeds, epoch=0,
                              weights=ku.count_weights(compressed[0]), params=ku.count_params(compressed[0]),
                              train_loss=math.nan, test_loss=losses, test_accuracy=accuracies, seconds=0.0,
                              status="ok"))
    tuned, _ = ku.train(name, seeds, settings, data_dir=data_dir, device=device, initial_models=compressed,
                        progress=False)
    run = pd.concat([start, tuned], ignore_index=True)
    run["relative_error"] = run.seed.map(dict(zip(seeds, errors)))
    return run


def t3f_compression_settings(dataset: str = "mnist", epochs: int = T3F_COMPRESSION["epochs"]) -> ku.TrainSettings:
    """The recipe of the t3f tutorial's dense net and of its fine-tuning: Adam at 1e-3, batches of 64."""
    return ku.TrainSettings(epochs=epochs, lr=T3F_COMPRESSION["lr"], batch_size=T3F_COMPRESSION["batch_size"],
                            optimizer="adam", dataset=dataset)


def matching_kron_rank(weights: int) -> int:
    """The Kronecker rank r whose two-factor sum kron2_r<r> has the input-layer weight count nearest to ``weights``."""
    return max(1, round(weights / input_weights("kron2_r1")))


def compression_experiment(source: Sequence[nn.Module], seeds, tt_rank: int, finetune: ku.TrainSettings, *,
                           data_dir: str | Path = "data", device: str = "auto") -> pd.DataFrame:
    """The t3f tutorial's compression, and the Kronecker sum of about the same input-layer budget beside it:
    tidy rows of ``original`` (the trained dense nets, epoch 0), ``compressed-tt4_r<rank>`` (TT-SVD) and
    ``compressed-kron2_r<r>`` (Van Loan-Pitsianis), each right after compression and through fine-tuning."""
    seeds = ku.check_seeds(seeds)
    losses, accuracies = ku.evaluate(source, finetune.dataset, data_dir, device, finetune.test_batch_size)
    dense = pd.DataFrame(dict(dataset=finetune.dataset, variant="original", seed=seeds, epoch=0,
                              weights=ku.count_weights(source[0]), params=ku.count_params(source[0]), train_loss=math.nan,
                              test_loss=losses, test_accuracy=accuracies, seconds=0.0, status="ok", relative_error=0.0))
    layer = tt_compression(source[0], tt_rank).fc1
    tt, kron_rank = tt_name(layer.ranks[1:-1]), matching_kron_rank(layer.num_weights())
    frames = [dense] + [compress_and_tune(source, seeds, f"compressed-{name}", compress, finetune, data_dir=data_dir,
                                          device=device)
                        for name, compress in [(tt, lambda m: tt_compression(m, tt_rank)),
                                               (f"kron2_r{kron_rank}", lambda m: kron_projection(m, kron_rank))]]
    return pd.concat(frames, ignore_index=True)


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
        run = compress_and_tune(source, seeds, projection_name(rank), lambda m: kron_projection(m, rank), settings,
                                data_dir=data_dir, device=device)
        run["update_error"] = run.seed.map(dict(zip(seeds, (ku.relative_error(d, rank) for d in updates))))
        run["moved"] = run.seed.map(moved)
        frames.append(run)
    return pd.concat(frames, ignore_index=True)


def compression_findings(compressed: pd.DataFrame) -> dict:
    """The compression experiment's numbers, per compressed structure (``tt`` and ``kron``): its label, input
    weights, relative error and accuracies right after compression (``first``) and after fine-tuning (``after``);
    the trained dense nets' accuracy (``dense``); and the Welch comparisons TT - Kronecker at both points."""
    dense = compressed[compressed.variant == "original"].test_accuracy
    out = dict(dense=dense.reset_index(drop=True), epochs=int(compressed.epoch.max()))
    labels = [v for v in dict.fromkeys(compressed.variant) if v != "original"]
    for key, name in zip(("tt", "kron"), labels):
        mine, net = compressed[compressed.variant == name], name.removeprefix("compressed-")
        out[key] = dict(net=net, weights=input_weights(net), error=float(mine.relative_error.mean()),
                        first=mine[mine.epoch == 0].test_accuracy.reset_index(drop=True),
                        after=mine[mine.epoch == mine.epoch.max()].test_accuracy.reset_index(drop=True))
    out["first_gap"] = compare_final(compressed[compressed.epoch == 0], labels[0], labels[1])
    out["after_gap"] = compare_final(compressed, labels[0], labels[1])
    return out


def compression_table(f: Mapping, tutorial: Mapping = T3F_COMPRESSION) -> pd.DataFrame:
    """Our numbers beside the t3f tutorial's (commit :data:`T3F_COMMIT`): the trained dense net, and each
    compressed structure right after compression and after fine-tuning (mean ± sd over seeds)."""
    tune = epochs_phrase(f["epochs"])
    rows = [dict(net="dense original (784-625-10)", **{"input weights": ku.IMAGE_SIZE * ku.HIDDEN_SIZE},
                 stage=f"trained, Adam, {epochs_phrase(tutorial['epochs'])}", **{"relative error": "–"},
                 ours=mean_sd(f["dense"]), seeds=len(f["dense"]), tutorial=f"{tutorial['dense']:.2f}")]
    for key, what in (("tt", f"TT-SVD, TT-ranks ≤ {tutorial['tt_rank']}"), ("kron", "nearest Kronecker sum")):
        c = f[key]
        for stage, values, theirs in (("right after compression", c["first"], "compressed"),
                                      (f"+ {tune} of Adam", c["after"], "finetuned")):
            rows.append(dict(net=f"{what} ({c['net']})", **{"input weights": c["weights"]}, stage=stage,
                             **{"relative error": f"{c['error']:.3f}"}, ours=mean_sd(values), seeds=len(values),
                             tutorial=f"{tutorial[theirs]:.2f}" if key == "tt" else "–"))
    return pd.DataFrame(rows).rename(columns={"ours": "ours: accuracy (%)",
                                              "tutorial": f"t3f tutorial ({T3F_COMMIT}), 1 run"})


def projection_gaps(projected: pd.DataFrame, scratch: pd.DataFrame, finetune_epochs: int, epochs: int) -> pd.DataFrame:
    """Per Kronecker rank: the projected and fine-tuned nets minus the same structure trained from scratch for as
    many epochs (``against`` = finetune_epochs) and for the full run (``against`` = epochs), with Welch intervals."""
    out = []
    for name in dict.fromkeys(projected.variant):
        rank = projection_rank(name)
        mine = projected[(projected.variant == name) & (projected.epoch <= finetune_epochs)]
        for against in dict.fromkeys([finetune_epochs, epochs]):
            theirs = scratch[(scratch.variant == scratch_name(rank)) & (scratch.epoch <= against)]
            if theirs.seed.nunique() >= 2 and (theirs.epoch == against).any():
                c = compare_final(pd.concat([mine, theirs]), name, scratch_name(rank))
                out.append(dict(rank=rank, against=against, diff=c["diff"], low=c["low"], high=c["high"],
                                n=c["n_a"], baseline_n=c["n_b"], outcome=outcome(c)))
    return pd.DataFrame(out, columns=["rank", "against", "diff", "low", "high", "n", "baseline_n", "outcome"])


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
    same structure trained from scratch for as many epochs and for the full run (mean ± sd over seeds; the 'seeds'
    column counts the projected nets, and a scratch cell over another number of seeds, all that net has, names it:
    '97.76 ± 0.09 (10)')."""
    def at(df, e, seeds):
        values = df[df.epoch == e].test_accuracy
        if not len(values):
            return "not in the sweep"
        return mean_sd(values) + (f" ({len(values)})" if len(values) != seeds else "")
    table = []
    for variant, mine in projected.groupby("variant", sort=False):
        rank = projection_rank(variant)
        theirs, n = scratch[scratch.variant == scratch_name(rank)], int(mine.seed.nunique())
        table.append({"Kronecker rank r": rank, "weights": int(mine.weights.iloc[0]), "seeds": n,
                      "relative error ‖W−Wᵣ‖/‖W‖": f"{mine.relative_error.mean():.3f}",
                      "projected, no training": at(mine, 0, n),
                      f"projected + {epochs_phrase(finetune_epochs)}": at(mine, finetune_epochs, n),
                      f"from scratch, {epochs_phrase(finetune_epochs)}": at(theirs, finetune_epochs, n),
                      f"from scratch, {epochs_phrase(epochs)}": at(theirs, epochs, n)})
    return pd.DataFrame(table)


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
