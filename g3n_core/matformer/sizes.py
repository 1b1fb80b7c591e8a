"""How big a MatFormer slice is: parameters, effective parameters, bytes, and a per-layer FFN profile.

Everything is counted on the meta device (no weights allocated), with `g3n_core.info`'s own
counting, so the numbers here are the ones `python -m g3n_core info --matformer ...` prints. The
towers do not change with a slice: they are counted once on the parent, and each slice builds only
a text decoder on meta (a tenth of a second even for E4B).
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ..errors import SliceError
from ..info import count_components, effective_params, meta_model, with_file_only
from ..sources import classify, read_config
from ..variant import DTYPES
from .presets import LabPreset, lab_presets
from .slicing import check_slice, plan_slice, slice_model
from .spec import MatformerSlice

TEXT_COMPONENTS = ("token_embeddings", "per_layer_embeddings", "text_decoder")


@lru_cache(maxsize=8)
def _tower_params(model: str) -> tuple[tuple[str, int], ...]:
    """Vision and audio tower parameters of the parent (unchanged by any slice)."""
    counts = count_components(meta_model(read_config(classify(model))))
    return tuple((name, count) for name, count in counts.items() if name not in TEXT_COMPONENTS)


def _sized(model: str, slc: MatformerSlice | None, dtype: str) -> dict:
    """Parameters by component, totals, effective parameters and bytes of `model` cut to `slc`."""
    config = read_config(classify(model))
    text = meta_model(config, text_only=True)
    if slc is not None:
        text = slice_model(text, slc)
    params = {name: count for name, count in count_components(text).items() if name in TEXT_COMPONENTS}
    params.update(_tower_params(model))
    params = with_file_only(params, text.config)  # the k/v weights the files hold for KV-shared layers
    element = torch.empty(0, dtype=DTYPES[dtype]).element_size()
    text_config = text.config
    return {
        "layers": text_config.num_hidden_layers,
        "kv_shared_layers": text_config.num_kv_shared_layers,
        "params": params,
        "total_params": sum(params.values()),
        "effective_params": effective_params(text),
        "bytes": sum(params.values()) * element,
        "dtype": dtype,
    }


def variant_size(model: str, slc: MatformerSlice | None, dtype: str, towers: tuple[str, ...]) -> tuple[int, int]:
    """(effective parameters, bytes of the weights) of `model` cut to `slc` with only `towers` loaded."""
    sized = _sized(model, slc, dtype)
    kept = {*TEXT_COMPONENTS, *(f"{tower}_tower" for tower in towers)}
    params = sum(count for name, count in sized["params"].items() if name in kept)
    return sized["effective_params"], params * torch.empty(0, dtype=DTYPES[dtype]).element_size()


def ffn_profile(model: str, slc: MatformerSlice | None) -> list[dict]:
    """One row per parent layer: attention type, KV role, parent and sliced FFN width (0 when skipped), new index."""
    parent = read_config(classify(model)).text_config
    plan = plan_slice(parent, slc or MatformerSlice())
    modes = parent.kv_sharing_modes
    rows = []
    for layer in range(parent.num_hidden_layers):
        new = plan.kept.index(layer) if layer in plan.kept else None
        rows.append(
            {
                "layer": layer,
                "attention": "global" if parent.layer_types[layer] == "full_attention" else "local",
                "kv": {"reuse": "shared", "store": "producer"}.get(modes[layer], "own"),
                "parent_width": int(parent.intermediate_size[layer]),
                "width": plan.widths[new] if new is not None else 0,
                "skipped": new is None,
                "new_index": new,
            }
        )
    return rows


def _lab(preset: LabPreset) -> dict:
    return {"lab_effective_params": round(preset.effective_params_b * 1e9), "lab_mmlu": preset.mmlu_pt_accuracy}


def slice_report(model: str, slc: MatformerSlice, dtype: str = "bfloat16") -> dict:
    """Size of any slice of `model` next to its parent's, with the per-layer FFN profile; raises SliceError if it does not fit."""
    sliced = _sized(model, slc, dtype)
    parent = _sized(model, None, dtype)
    lab = next((p for p in lab_presets() if p.key == slc.preset), None)
    return {
        "model": model,
        "label": slc.label,
        "slice": slc.to_dict(),
        **sliced,
        "parent": {k: parent[k] for k in ("layers", "total_params", "effective_params", "bytes")},
        "effective_fraction": sliced["effective_params"] / parent["effective_params"],
        **(_lab(lab) if lab else {}),
        "ffn_profile": ffn_profile(model, slc),
    }


def preset_table(model: str, dtype: str = "bfloat16") -> list[dict]:
    """One row per Lab preset that fits `model`: layers, total/effective params, bytes at `dtype`, the Lab's figures."""
    parent = read_config(classify(model)).text_config
    rows = []
    for preset in lab_presets():
        slc = preset.to_slice()
        try:
            check_slice(parent, slc)  # cheap: no model is built for presets that do not fit
        except SliceError:
            continue
        sized = _sized(model, slc, dtype)
        rows.append(
            {
                "preset": preset.key,
                "name": preset.name,
                **sized,
                **_lab(preset),
                "skip": list(preset.skip),
                "ffn_widths": sorted(set(preset.ffn)),
            }
        )
    return rows
