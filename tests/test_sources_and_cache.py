"""Model sources never wait on an unreachable hub; the model cache keeps variants under a budget."""

from __future__ import annotations

import time

import pytest

from g3n_core import ModelCache, ModelSourceError, Variant, load_model
from g3n_core.sources import classify, hub_reachable, read_config


def test_hub_ids_fail_fast_and_clearly_when_offline():
    start = time.perf_counter()
    assert hub_reachable() is False
    with pytest.raises(ModelSourceError, match="unreachable"):
        read_config(classify("google/gemma-3n-E2B-it"))
    with pytest.raises(ModelSourceError, match="unreachable"):
        load_model(Variant(model="google/gemma-3n-E4B-it"))
    assert time.perf_counter() - start < 10


def test_classify_tells_builtin_local_and_hub(tmp_path):
    assert classify("tiny").kind == "builtin"
    assert classify("google/gemma-3n-E2B-it").kind == "hub"
    (tmp_path / "config.json").write_text("{}")
    assert classify(str(tmp_path)).kind == "local"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelSourceError, match="without config.json"):
        classify(str(empty))


def test_configs_are_parsed_once_per_file_version_and_copied_per_caller(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    read_config(classify("tiny")).save_pretrained(folder)
    source = classify(str(folder))
    first = read_config(source)
    first.text_config.num_hidden_layers = 3  # a caller's own copy: the next reader sees the file
    assert read_config(source).text_config.num_hidden_layers == 15
    config = read_config(source)
    config.text_config.final_logit_softcapping = 20.0
    config.save_pretrained(folder)  # the file changed (same size, maybe the same mtime tick): parsed again
    assert read_config(source).text_config.final_logit_softcapping == 20.0
    tiny = read_config(classify("tiny"))
    assert tiny is not read_config(classify("tiny")) and tiny.to_dict() == read_config(classify("tiny")).to_dict()


def test_cache_returns_the_same_model_and_evicts_least_recently_used():
    loads: list[Variant] = []

    def loader(variant, progress=None):
        loads.append(variant)
        return load_model(variant, progress)

    text_only = Variant(towers=())
    budget = int(load_model(text_only).weight_bytes() * 2.5)
    cache = ModelCache(budget_bytes=budget, loader=loader)
    a, b, c = text_only, text_only.replace(attn="eager"), text_only.replace(sparsity="off")
    first = cache.get(a)
    assert cache.get(a) is first  # switching back is instant: no second load
    cache.get(b)
    cache.get(a)  # a is now the most recently used
    cache.get(c)  # over budget: b (least recently used) goes
    assert cache.variants() == [a, c]
    assert loads == [a, b, c]
    assert cache.used_bytes() <= budget


def test_loading_reports_progress_up_to_ready():
    seen: list[tuple[float, str]] = []
    load_model(Variant(towers=()), lambda fraction, message: seen.append((fraction, message)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1][1].startswith("ready")
