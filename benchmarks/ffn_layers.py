"""Per-layer FFN time at decode: plain transformers' dense MLP against the sparse path, on real decode inputs."""

from __future__ import annotations

import torch

from benchmarks.timing import median
from evals.measure.common import timed
from g3n_core.sparsity import text_layers
from g3n_core.speed.sparse_ffn import SparseDecodeMLP


def capture_decode_inputs(model, input_ids: torch.Tensor, layers: list[int]) -> dict[int, torch.Tensor]:
    """The MLP input of each listed layer at the first decode step after `input_ids`."""
    seen: dict[int, torch.Tensor] = {}
    hooks = [
        text_layers(model)[i].mlp.register_forward_pre_hook(lambda module, args, i=i: seen.__setitem__(i, args[0].detach().clone()))
        for i in layers
    ]
    try:
        with torch.inference_mode():
            model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=2, min_new_tokens=2, do_sample=False)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def time_ffn_layers(plain, input_ids: torch.Tensor, rounds: int = 5) -> dict:
    """Median ms per sparse layer: plain transformers' dense MLP against a SparseDecodeMLP on the same weights.

    The sparse modules are built from the plain model's own layers (up rows shared, down transposed
    once), fed the MLP input each layer sees at the first decode step. All layers are cycled each
    round so a layer's weights are not still in the cache when it is timed.
    """
    layers = [i for i, layer in enumerate(text_layers(plain)) if layer.mlp.activation_sparsity > 0]
    if not layers:
        return {}
    inputs = capture_decode_inputs(plain, input_ids, layers)
    dense = {i: text_layers(plain)[i].mlp for i in layers}
    sparse = {i: SparseDecodeMLP(dense[i]) for i in layers}
    times: dict[str, dict[int, list[float]]] = {"dense": {i: [] for i in layers}, "sparse": {i: [] for i in layers}}
    with torch.inference_mode():
        for _ in range(rounds + 1):  # the first round warms up and is dropped
            for kind, modules in (("dense", dense), ("sparse", sparse)):
                for i in layers:
                    times[kind][i].append(timed(inputs[i].device, lambda: modules[i](inputs[i]))[0])
        exact = {i: bool(torch.equal(dense[i](inputs[i]), sparse[i](inputs[i]))) for i in layers}
    per_layer = {
        i: {"dense_ms": 1e3 * median(times["dense"][i][1:]), "sparse_ms": 1e3 * median(times["sparse"][i][1:]), "bitwise_equal": exact[i]}
        for i in layers
    }
    dense_total = sum(row["dense_ms"] for row in per_layer.values())
    sparse_total = sum(row["sparse_ms"] for row in per_layer.values())
    return {
        "layers": per_layer,
        "dense_ms": dense_total,
        "sparse_ms": sparse_total,
        "ratio": sparse_total / dense_total,
        "active_fraction": {i: sparse[i].active_fraction() for i in layers},
        "bitwise_equal_layers": sum(exact.values()),
    }
