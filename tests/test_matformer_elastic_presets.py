"""The 16 MatFormer Lab presets run elastically on E4B's layer structure exactly as the cut-out slice does.

Numbers: a stand-in with E4B's 35 layers, attention pattern, KV sharing (15 shared layers fed by
layers 18 and 19) and sparse first 10 layers, at tiny widths (FFN 16384 -> 64, every preset width
scaled by the same 1/256), in float32. Structure: the real e4b-shape on the meta device, every
parameter shape and the config of the view against `slice_model`'s.
"""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import Gemma3nForCausalLM, Gemma3nTextConfig

from g3n_core.info import meta_model
from g3n_core.matformer.elastic import elastic_model
from g3n_core.matformer.presets import lab_presets
from g3n_core.matformer.slicing import plan_slice, slice_model
from g3n_core.matformer.spec import MatformerSlice
from g3n_core.sources import classify, read_config

E4B_FFN = 16_384
SCALE = 256  # stand-in FFN width = E4B's / SCALE
PRESETS = {p.key: p for p in lab_presets()}


def stand_in_config() -> Gemma3nTextConfig:
    """E4B's text layer structure at tiny's widths."""
    e4b = read_config(classify("e4b-shape")).text_config
    config = Gemma3nTextConfig(
        vocab_size=512, vocab_size_per_layer_input=512, hidden_size=64, intermediate_size=[E4B_FFN // SCALE] * 35,
        num_hidden_layers=35, num_attention_heads=2, num_key_value_heads=1, head_dim=32, sliding_window=16,
        hidden_size_per_layer_input=16, laurel_rank=8, altup_num_inputs=4, num_kv_shared_layers=15,
        activation_sparsity_pattern=list(e4b.activation_sparsity_pattern), layer_types=list(e4b.layer_types),
    )  # fmt: skip
    assert config.kv_sharing_modes == e4b.kv_sharing_modes
    return config


def scaled(preset) -> MatformerSlice:
    return MatformerSlice(ffn=tuple(w // SCALE for w in preset.ffn), skip=preset.skip, preset=preset.key)


@pytest.fixture(scope="module")
def parent(single_thread):
    torch.manual_seed(0)
    return Gemma3nForCausalLM(stand_in_config()).eval()


@pytest.mark.parametrize("key", list(PRESETS))
def test_lab_preset_elastic_equals_the_sliced_model_on_e4b_structure(parent, key):
    slc = scaled(PRESETS[key])
    plan = plan_slice(parent.config, slc)
    view = elastic_model(parent, plan)
    alone = slice_model(copy.deepcopy(parent), slc)
    ids = torch.randint(3, 512, (1, 40), generator=torch.Generator().manual_seed(1))  # longer than the window
    with torch.no_grad():
        torch.testing.assert_close(view(input_ids=ids).logits, alone(input_ids=ids).logits, rtol=0, atol=1e-5)
        got = view.generate(input_ids=ids, max_new_tokens=5, min_new_tokens=5, do_sample=False)
        want = alone.generate(input_ids=ids, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert torch.equal(got, want), key


@pytest.fixture(scope="module")
def e4b_meta():
    return meta_model(read_config(classify("e4b-shape")), text_only=True)


@pytest.mark.parametrize("key", list(PRESETS))
def test_lab_preset_view_has_the_exported_structure_on_e4b_shape(e4b_meta, key):
    slc = PRESETS[key].to_slice()
    view = elastic_model(e4b_meta, plan_slice(e4b_meta.config, slc))
    alone = slice_model(meta_model(read_config(classify("e4b-shape")), text_only=True), slc)
    for field in ("num_hidden_layers", "layer_types", "intermediate_size", "num_kv_shared_layers", "activation_sparsity_pattern"):
        assert getattr(view.config, field) == getattr(alone.config, field), field
    assert view.config.kv_sharing_modes == alone.config.kv_sharing_modes
    for mine, theirs in zip(view.model.layers, alone.model.layers, strict=True):
        assert mine.layer_idx == theirs.layer_idx and mine.self_attn.layer_idx == theirs.self_attn.layer_idx
        assert mine.self_attn.is_kv_shared_layer == theirs.self_attn.is_kv_shared_layer
        assert mine.self_attn.store_full_length_kv == theirs.self_attn.store_full_length_kv
        for name in ("gate_proj", "up_proj", "down_proj"):
            assert getattr(mine.mlp, name).weight.shape == getattr(theirs.mlp, name).weight.shape
    assert view.model.embed_tokens_per_layer.embedding_dim == alone.model.embed_tokens_per_layer.embedding_dim
    assert view.model.per_layer_model_projection.out_features == alone.model.per_layer_model_projection.out_features
    assert e4b_meta.config.num_hidden_layers == 35  # the parent keeps its own structure
