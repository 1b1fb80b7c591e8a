"""The built-in tiny checkpoint: every part of Gemma 3n present, real on-disk layout, stock transformers loads it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from g3n_core import Variant, load_model
from g3n_core.builtin.checkpoint import build_tiny_model
from g3n_core.builtin.configs import tiny_config
from g3n_core.prompt import prepare_prompt


def test_tiny_has_every_part_of_the_architecture():
    config = tiny_config()
    text = config.text_config
    assert text.altup_num_inputs == 4 and text.laurel_rank > 0 and text.hidden_size_per_layer_input > 0
    assert text.layer_types == (["sliding_attention"] * 4 + ["full_attention"]) * 3
    assert text.kv_sharing_modes.count("reuse") == 10 and text.kv_sharing_modes.count("store") == 2
    assert [v > 0 for v in text.activation_sparsity_pattern] == [True] * 5 + [False] * 10
    assert config.vision_config.architecture == "mobilenetv5_300m_enc"
    model = build_tiny_model()
    names = {n for n, _ in model.named_modules()}
    for part in ("altup", "laurel", "per_layer_input_gate", "embed_tokens_per_layer", "msfa", "conformer.0", "subsample_conv_projection"):
        assert any(part in n for n in names), part
    layers = model.model.language_model.layers
    assert not hasattr(layers[5].self_attn, "k_proj") and hasattr(layers[4].self_attn, "k_proj")


def test_random_weights_are_seeded_and_exercise_every_path():
    a, b = build_tiny_model(), build_tiny_model()
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), name
    # transformers would zero AltUp's output scale, silencing per-layer embeddings; ours are not zero.
    assert a.model.language_model.layers[0].altup.correct_output_scale.abs().min() > 0


def test_tiny_cli_writes_the_released_layout_and_stock_transformers_generates(tmp_path, media):
    out = tmp_path / "tiny"
    subprocess.run([sys.executable, "-m", "g3n_core", "tiny", "--out", str(out)], check=True, capture_output=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "processor_config.json",
                 "chat_template.jinja", "generation_config.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["model_type"] == "gemma3n"

    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out)
    messages = [{"role": "user", "content": [
        {"type": "image", "image": Image.open(media["image"])},
        {"type": "audio", "audio": np.zeros(16_000, np.float32)},
        {"type": "text", "text": "Describe both."},
    ]}]
    inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 4 or generated[0, -1].item() in (1, 6)

    # Our loader on the same folder sees the same model: identical logits on the same ids.
    ours = load_model(Variant(model=str(out)))
    assert ours.random_weights
    with torch.no_grad():
        ids = inputs["input_ids"][:, :12]
        assert torch.equal(ours.model(input_ids=ids).logits, model(input_ids=ids).logits)


def test_our_prompt_ids_match_the_stock_processor(tiny, media):
    messages = [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {"role": "user", "content": [{"type": "image", "image": str(media["image"])}, {"type": "text", "text": "What is it?"}]}]
    ours = prepare_prompt(tiny, messages, 4).inputs
    stock = tiny.processor.apply_chat_template(
        [{"role": m["role"], "content": [dict(p, image=Image.open(p["image"])) if p["type"] == "image" else p for p in m["content"]]} for m in messages],
        add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")
    assert ours["input_ids"].tolist() == stock["input_ids"].tolist()
    assert torch.allclose(ours["pixel_values"], stock["pixel_values"])
