"""Slicing in memory is a pure reduction of the parent, on real tensors and on the meta device."""

from __future__ import annotations

import copy

import pytest
import torch
from matformer_cases import SLICES, logits, prompts, run_as_sliced, widths_by_parent_layer
from transformers import Gemma3nForCausalLM, Gemma3nForConditionalGeneration

from g3n_core import MatformerSlice, Variant, load_model
from g3n_core.info import count_components, model_info, with_file_only
from g3n_core.matformer.slicing import slice_model, text_model
from g3n_core.prompt import prepare_prompt

@pytest.fixture(scope="module")
def inputs(tiny, media):
    return prompts(tiny, media)


@pytest.fixture(scope="module")
def parent_logits(tiny, inputs):
    return {name: logits(tiny.model, x) for name, x in inputs.items()}


@pytest.mark.parametrize("name", list(SLICES))
def test_slice_equals_parent_with_layers_bypassed_and_ffn_cut(tiny, inputs, parent_logits, name):
    slc = SLICES[name]
    sliced = slice_model(copy.deepcopy(tiny.model), slc)
    widths = widths_by_parent_layer(slc.ffn, slc.skip, 15)
    with run_as_sliced(tiny.model, widths, set(slc.skip)) as reference:
        for modality, x in inputs.items():
            expected = logits(reference, x)
            got = logits(sliced, x)
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5, msg=f"{name}, {modality} prompt")
            # and the cut is not a no-op: the slice really changed the model's output
            assert not torch.allclose(got, parent_logits[modality], atol=1e-3)


def test_sliced_model_is_an_ordinary_gemma3n(tiny):
    slc = SLICES["ffn-and-skip"]
    sliced = slice_model(copy.deepcopy(tiny.model), slc)
    text = text_model(sliced)
    config = sliced.config.text_config
    kept = [i for i in range(15) if i not in slc.skip]
    assert config.num_hidden_layers == len(text.layers) == 12
    assert list(config.intermediate_size) == list(slc.ffn)
    assert [layer.mlp.gate_proj.weight.shape[0] for layer in text.layers] == list(slc.ffn)
    assert [layer.mlp.down_proj.weight.shape[1] for layer in text.layers] == list(slc.ffn)
    assert config.layer_types == [tiny.text_config.layer_types[i] for i in kept]
    assert config.activation_sparsity_pattern == [0.95] * 4 + [0.0] * 8  # layer 2 (sparse) was skipped
    # 10 shared layers minus the skipped 6 and 13; the producers 3 and 4 are now layers 2 and 3
    assert config.num_kv_shared_layers == 8
    assert config.kv_sharing_modes == [None, None, "store", "store"] + ["reuse"] * 8
    for new, layer in enumerate(text.layers):
        assert layer.layer_idx == layer.self_attn.layer_idx == new
        assert layer.self_attn.is_kv_shared_layer == (config.kv_sharing_modes[new] == "reuse")
        assert layer.self_attn.store_full_length_kv == (config.kv_sharing_modes[new] == "store")
        assert layer.mlp.activation_sparsity == config.activation_sparsity_pattern[new]
        assert layer.mlp.intermediate_size == config.intermediate_size[new]
        assert layer.config is config and layer.self_attn.config is config
    ple = tiny.text_config.hidden_size_per_layer_input
    assert text.embed_tokens_per_layer.weight.shape == (tiny.text_config.vocab_size_per_layer_input, 12 * ple)
    assert text.per_layer_model_projection.weight.shape == (12 * ple, tiny.text_config.hidden_size)
    # the parent's config object is untouched
    assert tiny.text_config.num_hidden_layers == 15 and tiny.model.config.text_config.num_kv_shared_layers == 10


def test_empty_slice_gives_identical_logits(tiny, inputs, parent_logits):
    for slc in (MatformerSlice(), MatformerSlice(ffn=(512,) * 15, preset="full")):
        sliced = slice_model(copy.deepcopy(tiny.model), slc)
        for modality, x in inputs.items():
            assert torch.equal(logits(sliced, x), parent_logits[modality]), modality


def test_save_pretrained_round_trip(tiny, inputs, tmp_path):
    sliced = slice_model(copy.deepcopy(tiny.model), SLICES["preset-like"])
    sliced.save_pretrained(tmp_path)
    reloaded = Gemma3nForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert reloaded.config.text_config.to_dict() == sliced.config.text_config.to_dict()
    assert torch.equal(logits(reloaded, inputs["text"]), logits(sliced, inputs["text"]))


def test_cached_generation_matches_uncached_greedy_decoding(tiny):
    """Renumbered layers must write the KV cache slots their config says (and sliding windows still work)."""
    sliced = slice_model(copy.deepcopy(tiny.model), SLICES["ffn-and-skip"])
    prompt = prepare_prompt(tiny, "Count slowly from one to twenty, one number per line, and then stop.", 8).inputs
    generated = sliced.generate(**prompt, max_new_tokens=8, do_sample=False, min_new_tokens=8)
    ids = prompt["input_ids"]
    for _ in range(8):
        next_id = logits(sliced, {"input_ids": ids})[0, -1].argmax()
        ids = torch.cat([ids, next_id.view(1, 1)], dim=1)
    assert ids.shape[1] > 16  # past tiny's sliding window
    assert torch.equal(generated, ids)


def test_text_only_model_slices_like_the_text_decoder_of_the_full_one(tiny, inputs):
    slc = SLICES["preset-like"]
    full = slice_model(copy.deepcopy(tiny.model), slc)
    text_only = load_model(Variant(towers=(), matformer=slc))
    assert isinstance(text_only.model, Gemma3nForCausalLM)
    assert text_only.text_config.num_hidden_layers == 10
    x = {"input_ids": inputs["text"]["input_ids"]}
    torch.testing.assert_close(logits(text_only.model, x), logits(full, x), rtol=1e-6, atol=1e-6)


def test_load_model_applies_the_variant_slice_and_meta_sizes_match_real_tensors(tiny, inputs):
    slc = SLICES["ffn-and-skip"]
    loaded = load_model(Variant(matformer=slc))
    reference = slice_model(copy.deepcopy(tiny.model), slc)
    assert torch.equal(logits(loaded.model, inputs["image"]), logits(reference, inputs["image"]))
    info = model_info(Variant(matformer=slc))  # meta device
    assert info.params == with_file_only(count_components(loaded.model), loaded.text_config)  # + the KV-shared k/v files hold
    assert info.config["layers"] == 12 and info.config["kv_shared_layers"] == 8
    assert info.effective_params < model_info(Variant()).effective_params
