"""Measurements: KV-cache bytes, realised sparsity, latency figures, memory by component."""

from __future__ import annotations

import math

import pytest

from evals.measure import MeasureSettings, kv_cache_bytes, measure_latency, measure_memory, realised_sparsity
from g3n_core import ModelCache, Variant, load_model, model_info

pytestmark = pytest.mark.usefixtures("single_thread")


def test_kv_cache_bytes_follow_the_config(tiny):
    config = tiny.text_config
    kinds = config.layer_types[: config.num_hidden_layers - config.num_kv_shared_layers]  # shared layers store nothing
    per_token = 2 * config.num_key_value_heads * config.head_dim * 4  # keys and values, float32
    for context in (10, 200):
        tokens = [context if kind == "full_attention" else min(context, config.sliding_window - 1) for kind in kinds]
        assert kv_cache_bytes(tiny, context) == per_token * sum(tokens)


def test_realised_sparsity_matches_the_setting(tiny):
    fractions = realised_sparsity(tiny, 64)
    targets = tiny.text_config.activation_sparsity_pattern
    for fraction, target in zip(fractions, targets):
        assert fraction == pytest.approx(target, abs=0.02) if target else fraction < 0.01
    dense = load_model(Variant(towers=(), sparsity="off"))
    assert max(realised_sparsity(dense, 64)) < 0.01


def test_latency_reports_medians_and_tails(tiny):
    rows = {m.name: m for m in measure_latency(tiny, MeasureSettings(prompt_tokens=20, new_tokens=4, repeats=2))}
    assert set(rows) == {f"{n}_{s}" for n in ("prefill_tokens_per_s", "ttft_s", "decode_tokens_per_s") for s in ("median", "p95")}
    assert all(m.value > 0 and math.isfinite(m.value) and m.n == 2 for m in rows.values())
    assert rows["decode_tokens_per_s_p95"].value <= rows["decode_tokens_per_s_median"].value  # p95: the slow tail
    assert rows["ttft_s_p95"].value >= rows["ttft_s_median"].value


def test_memory_by_component_and_peak():
    variant = Variant(towers=())
    cache = ModelCache()
    rows = {m.name: m.value for m in measure_memory(variant, cache, MeasureSettings(kv_context=32))}
    components = {k: v for k, v in rows.items() if k.startswith("weight_bytes_") and k != "weight_bytes_loaded"}
    assert sum(components.values()) == model_info(variant).resident_bytes  # what only the files hold is not a row
    assert "weight_bytes_shared_kv_in_files" not in components
    assert components["weight_bytes_vision_tower"] == 0 and components["weight_bytes_per_layer_embeddings"] > 0
    assert rows["peak_rss_bytes"] >= rows["peak_memory_bytes"] > 0 and rows["kv_cache_bytes"] > 0
    assert variant in cache  # loaded once, through the cache, and kept for the tasks that follow
