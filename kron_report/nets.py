"""Reading trained nets, for any page: the input layer's dense weight, its rank and weight count, undoing a pixel
permutation, receptive fields, and a cached set of trained models.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import kron_utils as ku
import torch
from torch import nn

from .fetch import verify_dataset
from .store import cached, settings_key, settings_record

__all__ = ["input_layer_weight", "input_layer_rank", "input_weights", "trained_models", "unpermute_weight",
           "receptive_fields"]


def input_layer_weight(variant: str, seed: int = 0) -> torch.Tensor:
    """The input layer's (out, in) matrix of a freshly initialised net, multiplied out in float64 (so that
    ranks are not blurred by float32 rounding)."""
    fc1 = copy.deepcopy(ku.seeded_model(variant, seed).fc1).double()
    with torch.no_grad():
        return ku.layer_weight(fc1).detach()


def input_layer_rank(variant: str, seed: int = 0) -> int:
    """Matrix rank of the input layer of a freshly initialised net (its rank in general position)."""
    return int(torch.linalg.matrix_rank(input_layer_weight(variant, seed)))


def input_weights(variant: str) -> int:
    """The number of weights (biases excluded) of the net's input layer."""
    return ku.count_weights(ku.build_model(variant).fc1)


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
    states = cached(path, dict(variant=variant, seeds=seeds, settings=settings_record(settings)), compute,
                    save=torch.save, load=lambda p: torch.load(p, map_location="cpu", weights_only=True))
    models = []
    for state in states:
        model = ku.build_model(variant)
        model.load_state_dict(state)
        models.append(model)
    return models


def unpermute_weight(weight: torch.Tensor, perm: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """The (out, 784) weight a layer trained on permuted images (pixel j the original pixel perm[j]) puts on
    each *original* pixel: column perm[j] of the result is column j of ``weight``, for display on the image grid."""
    perm = torch.as_tensor(perm)
    out = torch.empty_like(weight)
    out[:, perm] = weight
    return out


def receptive_fields(u: torch.Tensor, v: torch.Tensor, perm: Sequence[int] | None = None) -> torch.Tensor:
    """The (25, 25, 28, 28) receptive fields of the input layer U (x) V: field (a, b) is row (25a + b) of the
    weight, on the image grid. With ``perm`` (the net was trained on permuted images) each row is first put back
    on the original pixels by :func:`nets.unpermute_weight`."""
    weight = torch.kron(u, v)
    if perm is not None:
        weight = unpermute_weight(weight, perm)
    return weight.reshape(u.shape[0], v.shape[0], *ku.IMAGE_FACTORS)
