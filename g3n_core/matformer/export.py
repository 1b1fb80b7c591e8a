"""Exporting a MatFormer slice as a complete checkpoint that stock transformers loads.

The weights stream from the parent's safetensors shards to the new ones tensor by tensor, and large
tensors row-chunk by row-chunk (`chunk_bytes`), so slicing E4B to E2B never holds the model, or
even the 4.7 GB per-layer-embedding table, in memory at once. Everything else a checkpoint needs
(tokenizer, processor, chat template, generation config) is copied from the parent as it is; nothing else is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors import safe_open

from ..builtin.checkpoint import MARKER
from ..errors import ExportError
from ..sources import checkpoint_path, classify, read_config
from .safetensors_stream import ITEM_BYTES, StreamedTensor, write_streamed
from .slicing import SlicePlan, keep_columns, layer_blocks, plan_slice, slice_config
from .spec import MatformerSlice

Progress = Callable[[float, str], None]
TEXT = "model.language_model."
LAYER_KEY = re.compile(r"^model\.language_model\.layers\.(\d+)\.(.+)$")
DEFAULT_CHUNK_BYTES = 64 * 2**20
# Copied from the parent as they are: tokenizer, processor, chat template, generation config, random-weights
# marker. Nothing else in the parent's folder travels (an export must never carry other files out of it).
CHECKPOINT_FILES = frozenset({
    "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json",
    "chat_template.jinja", "chat_template.json", "generation_config.json", MARKER,
})
SLICE_FILE = "matformer_slice.json"
WEIGHT_FILE = re.compile(r"^model(-\d+-of-\d+)?\.safetensors$")


def is_export_file(name: str) -> bool:
    """True for the names of the files an export writes (the only ones an export's download may carry)."""
    written = {"config.json", "README.md", SLICE_FILE, "model.safetensors.index.json"}
    return name in CHECKPOINT_FILES or name in written or bool(WEIGHT_FILE.match(name))

_CARD = """---
library_name: transformers
pipeline_tag: image-text-to-text
base_model: {parent}
tags: [gemma3n, matformer]
---
# {label}: a MatFormer slice of {parent}

Written by the Gemma 3n workbench (`python -m g3n_core matformer slice`). It keeps {layers} of the
parent's {parent_layers} text layers (skipped: {skipped}) and the first k neurons of each FFN
(widths {widths}); the vision and audio towers, tokenizer and processor are the parent's. It is an
ordinary Gemma 3n checkpoint: load it with `AutoModelForImageTextToText.from_pretrained`. The slice
itself is in `{slice_file}`. The parent's licence and terms of use apply.
"""


# -- what each source tensor becomes --------------------------------------------------------------------


def _rows(handle, blocks: list[tuple[int, int]], row_bytes: int, chunk_bytes: int, cols: int | None = None, col_blocks=None) -> Iterator[torch.Tensor]:
    """Row chunks of `handle` (a safetensors slice) over `blocks`, optionally cut to columns."""
    step = max(1, chunk_bytes // max(row_bytes, 1))
    for a, b in blocks:
        for start in range(a, b, step):
            stop = min(start + step, b)
            piece = handle[start:stop] if cols is None else handle[start:stop, :cols]
            if col_blocks is not None:
                read, piece = piece, keep_columns(piece, col_blocks)
                del read  # only the kept columns stay alive
            yield piece
            del piece


def _streamed(file, source: str, plan: SlicePlan, chunk_bytes: int) -> StreamedTensor | None:
    """The output tensor made from source tensor `source`, or None when the slice drops it."""
    handle = file.get_slice(source)
    dtype = handle.get_dtype()
    shape = list(handle.get_shape())
    if not shape:  # a scalar: nothing to chunk
        return StreamedTensor(source, dtype, (), lambda: iter([file.get_tensor(source)]))
    row_bytes = (torch.Size(shape[1:]).numel() if len(shape) > 1 else 1) * ITEM_BYTES[dtype]
    name, rows, cols, col_blocks = source, [(0, shape[0])], None, None
    match = LAYER_KEY.match(source)
    if match:
        layer, rest = int(match.group(1)), match.group(2)
        if layer not in plan.kept:
            return None
        new = plan.kept.index(layer)
        name = f"{TEXT}layers.{new}.{rest}"
        width = plan.widths[new]
        if rest in ("mlp.gate_proj.weight", "mlp.up_proj.weight"):
            rows, shape[0] = [(0, width)], width
        elif rest == "mlp.down_proj.weight":
            cols, shape[1] = width, width
            row_bytes = width * ITEM_BYTES[dtype]
    elif source == f"{TEXT}embed_tokens_per_layer.weight":
        col_blocks = layer_blocks(plan)
        shape[1] = len(plan.kept) * plan.per_layer_dim
    elif source == f"{TEXT}per_layer_model_projection.weight":
        rows = layer_blocks(plan)
        shape[0] = len(plan.kept) * plan.per_layer_dim
    return StreamedTensor(name, dtype, tuple(shape), lambda: _rows(handle, rows, row_bytes, chunk_bytes, cols, col_blocks))


# -- the checkpoint ---------------------------------------------------------------------------------


def source_shards(folder: Path) -> tuple[list[str], bool]:
    """The parent's safetensors files, and whether they come with an index."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return sorted(set(json.loads(index.read_text())["weight_map"].values())), True
    if (folder / "model.safetensors").is_file():
        return ["model.safetensors"], False
    raise ExportError(f"{folder} holds no safetensors weights (model.safetensors or model.safetensors.index.json); export streams from them")


def _source_folder(model: str) -> Path:
    source = classify(model)
    if source.is_shape:
        raise ExportError(
            f"{source.name} has random weights built in memory and no checkpoint to stream from. To run a slice of it "
            f"use --matformer (Variant.matformer); to size one use `matformer presets`/`matformer size`; for an exportable "
            "checkpoint slice tiny, a folder, or a hub id"
        )
    return checkpoint_path(source)


def _staging(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} exists and is not an empty folder; choose a new folder for the checkpoint")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))


def _write_weights(src: Path, staging: Path, plan: SlicePlan, chunk_bytes: int, progress: Progress) -> None:
    shards, indexed = source_shards(src)
    weight_map: dict[str, str] = {}
    total = 0
    for number, shard in enumerate(shards):
        progress(0.05 + 0.85 * number / len(shards), f"writing {shard}")
        with safe_open(str(src / shard), framework="pt") as file:
            tensors = [t for t in (_streamed(file, key, plan, chunk_bytes) for key in file.keys()) if t is not None]
            total += write_streamed(staging / shard, tensors, file.metadata() or {"format": "pt"})
        weight_map.update({t.name: shard for t in tensors})
    if indexed:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (staging / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _confinement(src: Path) -> Path:
    """The folder every copied file must really lie in: the checkpoint folder, or for a hub snapshot
    (snapshots/<rev>/ whose files link to ../../blobs) the model's cache folder."""
    real = src.resolve()
    return real.parents[1] if real.parent.name == "snapshots" else real


def _copy_assets(src: Path, staging: Path) -> list[str]:
    """Copy the parent's CHECKPOINT_FILES (the config and weights are written, not copied); a file that
    links out of the checkpoint is left behind."""
    confine = _confinement(src)
    copied = []
    for name in sorted(CHECKPOINT_FILES):
        path = src / name
        if path.is_file() and path.resolve().is_relative_to(confine):
            shutil.copyfile(path, staging / name)
            copied.append(name)
    return copied


def legacy_keys(config: dict, dtype: str | None = None) -> dict:
    """`config` (a config.json dict) with the keys transformers 4 wrote beside transformers 5's: `torch_dtype`
    next to `dtype` (top level and every sub-config), `rope_theta` / `rope_local_base_freq` next to the text
    config's `rope_parameters`. Tools that read the released checkpoints' keys keep working on exports."""
    out = dict(config)
    dtype = out.get("dtype") or dtype
    if dtype is not None:
        out["torch_dtype"] = dtype
    rope = out.get("rope_parameters")
    if isinstance(rope, dict) and "full_attention" in rope:
        out["rope_theta"] = rope["full_attention"].get("rope_theta")
        out["rope_local_base_freq"] = rope.get("sliding_attention", {}).get("rope_theta")
    for key, value in config.items():
        if key.endswith("_config") and isinstance(value, dict):
            out[key] = legacy_keys(value, dtype)
    return out


def add_legacy_keys(path: Path) -> None:
    """Rewrite a config.json with `legacy_keys` added."""
    path.write_text(json.dumps(legacy_keys(json.loads(path.read_text())), indent=2, sort_keys=True) + "\n")


def _describe(staging: Path, model: str, slc: MatformerSlice, plan: SlicePlan) -> None:
    skipped = [i for i in range(plan.parent_layers) if i not in plan.kept]
    record = {"parent": model, "parent_layers": plan.parent_layers, "kept_layers": list(plan.kept), **slc.to_dict()}
    (staging / SLICE_FILE).write_text(json.dumps(record, indent=1) + "\n")
    widths = sorted(set(plan.widths))
    (staging / "README.md").write_text(
        _CARD.format(
            parent=model if classify(model).kind != "local" else Path(model).name,
            label=slc.label,
            layers=len(plan.kept),
            parent_layers=plan.parent_layers,
            skipped=", ".join(map(str, skipped)) or "none",
            widths=", ".join(map(str, widths)),
            slice_file=SLICE_FILE,
        )
    )


def export_bytes(model: str, slc: MatformerSlice) -> int:
    """What `export_slice` will write, in bytes, read from the parent's safetensors headers (no weights read):
    the sliced tensors plus the copied tokenizer/processor files (config and card are a few KB more)."""
    src = _source_folder(model)
    plan = plan_slice(read_config(classify(str(src))).text_config, slc)
    total = 0
    for shard in source_shards(src)[0]:
        with safe_open(str(src / shard), framework="pt") as file:
            total += sum(t.nbytes for t in (_streamed(file, key, plan, DEFAULT_CHUNK_BYTES) for key in file.keys()) if t is not None)
    return total + sum((src / name).stat().st_size for name in CHECKPOINT_FILES if (src / name).is_file())


def export_slice(
    model: str, slc: MatformerSlice, out: str | Path, chunk_bytes: int = DEFAULT_CHUNK_BYTES, progress: Progress | None = None
) -> Path:
    """Write the slice of `model` (tiny, a folder or a hub id) as a checkpoint folder `out`; returns it."""
    progress = progress or (lambda fraction, message: None)
    out = Path(out).expanduser().resolve()
    src = _source_folder(model)
    config = read_config(classify(str(src)))
    plan = plan_slice(config.text_config, slc)
    staging = _staging(out)
    try:
        _write_weights(src, staging, plan, chunk_bytes, progress)
        progress(0.92, "writing config, tokenizer and processor files")
        slice_config(config, plan).save_pretrained(staging)
        add_legacy_keys(staging / "config.json")
        _copy_assets(src, staging)
        _describe(staging, model, slc, plan)
        if out.exists():
            out.rmdir()
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(1.0, f"wrote {out}")
    return out
