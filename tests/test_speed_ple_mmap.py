"""Per-layer embeddings memory-mapped from the checkpoint (ple="mmap"): identical outputs, table left in the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.fidelity import teacher_forced_logits
from benchmarks.plain import fixed_prompt
from benchmarks.timing import timed_generate
from g3n_core import GenerationSettings, Variant, VariantError, chat, load_model
from g3n_core.builtin.checkpoint import ensure_tiny
from g3n_core.errors import ModelSourceError
from g3n_core.sparsity import text_decoder
from g3n_core.speed.ple_mmap import MappedPerLayerEmbedding, map_per_layer_table


@pytest.fixture(scope="module")
def resident():
    return load_model(Variant(towers=()))


@pytest.fixture(scope="module")
def mapped():
    return load_model(Variant(towers=(), ple="mmap"))


def _mapping_of(tensor: torch.Tensor) -> str | None:
    """The file behind the memory mapping that holds `tensor`'s first byte, if any."""
    address = tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split()
        low, high = (int(x, 16) for x in parts[0].split("-"))
        if low <= address < high:
            return parts[5] if len(parts) > 5 else None
    return None


def test_the_table_stays_in_the_checkpoint_file(mapped, resident):
    module = text_decoder(mapped.model).embed_tokens_per_layer
    assert isinstance(module, MappedPerLayerEmbedding)
    assert _mapping_of(module.table) == str(mapped.checkpoint / "model.safetensors")
    table_bytes = module.table.numel() * module.table.element_size()
    assert resident.weight_bytes() - mapped.weight_bytes() == table_bytes  # no longer held as a parameter


def test_identical_logits_and_greedy_tokens(mapped, resident):
    ids = fixed_prompt(24)
    tokens = timed_generate(resident.model, ids, 32).tokens
    assert timed_generate(mapped.model, ids, 32).tokens == tokens
    assert torch.equal(teacher_forced_logits(mapped.model, ids, tokens[:8]), teacher_forced_logits(resident.model, ids, tokens[:8]))


def test_rows_are_cast_after_the_lookup_like_a_cast_table():
    # tiny's checkpoint is float32: a bfloat16 run casts looked-up rows, transformers casts the whole table.
    ids = fixed_prompt(16, seed=3)
    cast_table = load_model(Variant(towers=(), dtype="bfloat16"))
    cast_rows = load_model(Variant(towers=(), dtype="bfloat16", ple="mmap"))
    assert text_decoder(cast_rows.model).embed_tokens_per_layer.table.dtype == torch.float32
    forced = timed_generate(cast_table.model, ids, 6).tokens
    assert torch.equal(teacher_forced_logits(cast_rows.model, ids, forced), teacher_forced_logits(cast_table.model, ids, forced))


def test_multimodal_model_maps_the_nested_table_and_chats(tiny, media):
    mapped = load_model(Variant(ple="mmap"))
    assert isinstance(mapped.model.model.language_model.embed_tokens_per_layer, MappedPerLayerEmbedding)
    settings = GenerationSettings(max_new_tokens=6)
    message = [{"role": "user", "content": [{"type": "image", "image": str(media["image"])}, {"type": "text", "text": "What is it?"}]}]
    assert chat(mapped, message, settings).text == chat(tiny, message, settings).text


def test_shapes_map_their_bfloat16_checkpoint_in_any_dtype():
    for dtype in ("bfloat16", "float32"):  # float32 reads the bf16 checkpoint's rows and casts them; nothing is built here
        Variant(model="e2b-shape", ple="mmap", dtype=dtype, towers=())


@pytest.mark.parametrize("skip", [(), (5, 6, 7, 8, 9)], ids=["full", "layer-skipping slice"])
def test_the_table_is_never_loaded(monkeypatch, skip):
    """from_pretrained never reads the checkpoint's per-layer table with ple=mmap (nor does a slice cut it)."""
    from transformers import core_model_loading

    from g3n_core import MatformerSlice

    shapes: list[tuple[int, ...]] = []
    spawn = core_model_loading.spawn_materialize

    def recording(pool, tensor, *args, **kwargs):  # every checkpoint tensor transformers reads passes here
        shapes.append(tuple(tensor.get_shape()) if hasattr(tensor, "get_shape") else tuple(tensor.shape))
        return spawn(pool, tensor, *args, **kwargs)

    monkeypatch.setattr(core_model_loading, "spawn_materialize", recording)
    matformer = MatformerSlice(ffn=(256,) * (15 - len(skip)), skip=skip) if skip else None
    table = tuple(map_per_layer_table(ensure_tiny()).shape)
    load_model(Variant(towers=(), matformer=matformer, dtype="bfloat16"))
    assert table in shapes  # the resident load reads it (and converts it to bfloat16) ...
    shapes.clear()
    mapped = load_model(Variant(towers=(), matformer=matformer, dtype="bfloat16", ple="mmap"))
    assert shapes and table not in shapes  # ... the mapped one never does
    assert isinstance(text_decoder(mapped.model).embed_tokens_per_layer, MappedPerLayerEmbedding)


def test_a_folder_without_safetensors_is_a_clear_error(tmp_path):
    with pytest.raises(ModelSourceError, match="safetensors"):
        map_per_layer_table(tmp_path)


def test_a_slice_that_skips_layers_reads_the_kept_layers_columns():
    from g3n_core import MatformerSlice

    slc = MatformerSlice(ffn=(256,) * 10, skip=(5, 6, 7, 8, 9))
    sliced = load_model(Variant(towers=(), matformer=slc))
    mapped = load_model(Variant(towers=(), matformer=slc, ple="mmap"))
    module = text_decoder(mapped.model).embed_tokens_per_layer
    assert module.embedding_dim == 10 * 16 and module.table.shape[1] == 15 * 16  # parent table, kept blocks read
    ids = fixed_prompt(16, seed=4)
    forced = timed_generate(sliced.model, ids, 6).tokens
    assert torch.equal(teacher_forced_logits(mapped.model, ids, forced), teacher_forced_logits(sliced.model, ids, forced))


def test_checkpoint_numel_counts_the_file_from_its_headers(monkeypatch, capsys):
    from safetensors import safe_open

    from benchmarks import memory

    checkpoint = ensure_tiny()
    with safe_open(str(checkpoint / "model.safetensors"), framework="pt") as file:
        expected = sum(torch.Size(file.get_slice(key).get_shape()).numel() for key in file.keys())
    assert memory.checkpoint_numel(checkpoint) == expected
    # The load-peak benchmark measures plain transformers only where its converted load fits.
    monkeypatch.setattr(memory, "available_memory_gb", lambda: expected * 4 / 1e9 / 0.8 * 1.01)
    assert memory.plain_fits("tiny", "float32")
    monkeypatch.setattr(memory, "available_memory_gb", lambda: expected * 4 / 1e9 / 0.8 * 0.99)
    assert not memory.plain_fits("tiny", "float32")
    assert "skipped [plain transformers]: its float32 load would allocate" in capsys.readouterr().out
