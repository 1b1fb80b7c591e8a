"""Elastic MatFormer slices: served from the resident parent's weights, equal to the exported slice
loaded on its own, no weights copied, independent of each other, and resolved by the ModelCache."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch
from matformer_cases import GREEDY_TOKENS, SLICES, CountingLoader, greedy, logits, prompts

from g3n_core import GenerationSettings, ModelCache, ModelTooLargeError, Variant, chat, load_model, sources
from g3n_core.matformer.elastic import elastic_refusal, elastic_view, is_elastic, parent_variant
from g3n_core.matformer.export import export_slice

@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread):
    """tiny runs fastest on one thread, especially on a busy machine."""


def storages(model) -> dict[int, int]:
    """Bytes of every distinct storage behind the model's parameters and buffers, by address."""
    found = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.device.type != "meta":
            storage = tensor.untyped_storage()
            found[storage.data_ptr()] = storage.nbytes()
    return found


@pytest.fixture(scope="module")
def loader():
    return CountingLoader()


@pytest.fixture(scope="module")
def cache(loader):
    return ModelCache(loader=loader)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each slice written as a checkpoint and loaded on its own, as any model."""
    root = tmp_path_factory.mktemp("elastic-exports")
    return {name: load_model(Variant(model=str(export_slice("tiny", slc, root / name)))) for name, slc in SLICES.items()}


@pytest.fixture(scope="module")
def inputs(tiny, media):
    return prompts(tiny, media)


def test_a_slice_loads_its_parent_once_and_every_slice_is_a_view(cache, loader):
    parent = Variant()
    views = [cache.get(Variant(matformer=slc)) for slc in SLICES.values()]
    assert loader.loads == [parent]  # the parent, not a slice, and only once
    assert all(is_elastic(view) for view in views)
    assert cache.variants() == [parent] and len(cache.views()) == len(SLICES)
    assert cache.get(parent) is views[0].extras["elastic_parent"]
    assert all(view.lock is cache.get(parent).lock for view in views)


@pytest.mark.parametrize("name", list(SLICES))
def test_elastic_slice_equals_the_exported_slice_loaded_on_its_own(cache, exported, inputs, name):
    view = cache.get(Variant(matformer=SLICES[name]))
    alone = exported[name]
    for modality, x in inputs.items():
        torch.testing.assert_close(logits(view.model, x), logits(alone.model, x), rtol=0, atol=1e-5, msg=f"{name}, {modality}")
        assert torch.equal(greedy(view.model, x), greedy(alone.model, x)), f"{name}, {modality}: greedy tokens differ"


def test_views_copy_no_weights_and_leave_the_parent_untouched(cache, tiny, inputs):
    parent = cache.get(Variant())
    views = [cache.get(Variant(matformer=slc)) for slc in SLICES.values()]
    before = {name: logits(parent.model, x) for name, x in inputs.items()}
    for view in views:
        logits(view.model, inputs["text"])
    own = storages(parent.model)
    everything = dict(own)
    for view in views:
        weights = storages(view.model)
        # every parameter of a view lives in a storage of the parent's: nothing was copied
        assert {t.untyped_storage().data_ptr() for t in view.model.parameters()} <= set(own)
        everything.update(weights)
    assert sum(everything.values()) <= 1.02 * sum(own.values())  # any number of views: within the parent + 2%
    for name, x in inputs.items():
        assert torch.equal(logits(parent.model, x), before[name])
    config = parent.model.config.text_config
    assert config.num_hidden_layers == 15 and config.num_kv_shared_layers == 10 and list(config.intermediate_size) == [512] * 15
    assert [layer.mlp.gate_proj.weight.shape[0] for layer in parent.model.model.language_model.layers] == [512] * 15
    assert torch.equal(logits(parent.model, inputs["text"]), logits(tiny.model, inputs["text"]))


def test_switching_slices_is_a_lookup_that_builds_and_allocates_nothing(cache, loader):
    a, b = Variant(matformer=SLICES["ffn-only"]), Variant(matformer=SLICES["preset-like"])
    first_a, first_b = cache.get(a), cache.get(b)
    loads = len(loader.loads)
    held = storages(cache.get(Variant()).model)
    for _ in range(5):
        assert cache.get(a) is first_a and cache.get(b) is first_b
    assert len(loader.loads) == loads
    for view in (first_a, first_b):  # weights are the parent's; a view owns only a few-byte index of kept layers
        assert {t.untyped_storage().data_ptr() for t in view.model.parameters()} <= held.keys()
        assert sum(n for ptr, n in storages(view.model).items() if ptr not in held) < 1024


def test_a_first_switch_reads_no_config_and_validates_nothing_again(cache, monkeypatch):
    """The first use of a slice builds its view from what the parent and the variant already hold."""
    cache.get(Variant(matformer=SLICES["ffn-only"]))  # the parent and the checkpoint's sparsity pattern, read once per model
    variant = Variant(matformer=SLICES["skip-only"])  # made (and validated) before the switch
    key = variant.unsliced()
    assert key == variant.replace(matformer=None, sparsity="default") and key.source == variant.source
    assert variant.unsliced() is key and key.unsliced() is key  # made once per variant
    assert dataclasses.asdict(variant)["model"] == "tiny"  # no cycle through the memo (gr.State turns values into dicts)
    parsed, checked = [], []
    monkeypatch.setattr(sources, "_parsed_config", lambda *a: parsed.append(a))
    monkeypatch.setattr(Variant, "__post_init__", lambda self: checked.append(self))
    cache.evict(variant)
    view = cache.get(variant)
    assert is_elastic(view) and parsed == [] and checked == []


def test_two_slices_of_one_parent_run_at_once_without_interfering(cache, inputs):
    """Each view is its own module tree with its own configuration: nothing is switched, so even
    forward passes in two threads at once (bypassing the shared lock) give the sequential results."""
    names = ("ffn-and-skip", "preset-like")
    views = {name: cache.get(Variant(matformer=SLICES[name])) for name in names}
    x = inputs["image"]
    expected = {name: logits(view.model, x) for name, view in views.items()}
    results: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def work(name: str) -> None:
        for _ in range(4):
            results[name].append(logits(views[name].model, x))

    threads = [threading.Thread(target=work, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in names:
        assert len(results[name]) == 4 and all(torch.equal(r, expected[name]) for r in results[name]), name
    assert not torch.allclose(expected[names[0]], expected[names[1]], atol=1e-3)

    # chat requests on both slices at once: the same replies as one after the other
    messages = [{"role": "user", "content": [{"type": "text", "text": "Count to five."}]}]
    settings = GenerationSettings(max_new_tokens=8)
    alone = {name: chat(view, messages, settings).text for name, view in views.items()}
    together: dict[str, str] = {}
    threads = [threading.Thread(target=lambda n=name: together.__setitem__(n, chat(views[n], messages, settings).text)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert together == alone


def test_evicting_the_parent_drops_its_views():
    cache = ModelCache()
    slc = Variant(matformer=SLICES["skip-only"])
    cache.get(slc)
    assert slc in cache
    assert cache.evict(Variant())
    assert slc not in cache and cache.views() == []


def test_slices_that_cannot_be_elastic_load_on_their_own(bf16_cpu):
    int8 = Variant(quant="int8", matformer=SLICES["preset-like"])
    assert "int8" in elastic_refusal(int8)
    assert "packed" in elastic_refusal(Variant(dtype="bfloat16", prepack=True, matformer=SLICES["preset-like"]))
    loader = CountingLoader()
    cache = ModelCache(loader=loader)
    loaded = cache.get(int8)
    assert loader.loads == [int8] and not is_elastic(loaded)
    with pytest.raises(Exception, match="cannot run elastically"):
        elastic_view(cache.get(Variant(quant="int8")), int8)


def test_a_slice_whose_parent_exceeds_the_budget_loads_on_its_own():
    slc = Variant(towers=(), matformer=SLICES["preset-like"])
    probe = ModelCache()
    parent_bytes, slice_bytes = probe.estimate(parent_variant(slc)), probe.estimate(slc)
    assert slice_bytes < parent_bytes
    loader = CountingLoader()
    cache = ModelCache(budget_bytes=(parent_bytes + slice_bytes) // 2, loader=loader)
    assert not is_elastic(cache.get(slc)) and loader.loads == [slc]
    with pytest.raises(ModelTooLargeError):  # neither fits: refused for the slice itself, nothing loaded
        ModelCache(budget_bytes=slice_bytes // 2, loader=loader).get(slc)
    assert loader.loads == [slc]


def test_a_slice_with_its_own_sparsity_shares_the_parent_and_keeps_the_parent_setting():
    loader = CountingLoader()
    cache = ModelCache(loader=loader)
    parent = cache.get(Variant(sparsity="off"))
    view = cache.get(Variant(sparsity="default", matformer=SLICES["preset-like"]))
    assert loader.loads == [Variant(sparsity="off")]
    assert [layer.mlp.activation_sparsity for layer in view.model.model.language_model.layers] == [0.95] * 5 + [0.0] * 5
    assert all(layer.mlp.activation_sparsity == 0.0 for layer in parent.model.model.language_model.layers)


@pytest.mark.parametrize(
    "features",
    [{"towers": ()}, {"sparse_ffn": True}, {"ple": "mmap"}, {"kv_cache": "static"}],
    ids=["text-only", "sparse-ffn", "ple-mmap", "static-cache"],
)
def test_elastic_slices_compose_with_the_parent_speed_features(exported, inputs, features, tmp_path):
    name = "ffn-and-skip"
    view = ModelCache().get(Variant(matformer=SLICES[name], **features))
    assert is_elastic(view)
    alone = load_model(Variant(model=str(exported[name].checkpoint), **features))
    x = inputs["text"] if features.get("towers") != () else {"input_ids": inputs["text"]["input_ids"]}
    short = {"input_ids": x["input_ids"][:, :6]}  # few tokens: sparse FFN takes its gather path
    for prompt in (x, short):
        torch.testing.assert_close(logits(view.model, prompt), logits(alone.model, prompt), rtol=0, atol=1e-5)
    kwargs = view.extras["generate_kwargs"]
    with torch.no_grad():
        got = view.model.generate(**x, max_new_tokens=GREEDY_TOKENS, do_sample=False, **kwargs)
        want = alone.model.generate(**x, max_new_tokens=GREEDY_TOKENS, do_sample=False, **alone.extras["generate_kwargs"])
    assert torch.equal(got, want)
    if features.get("sparse_ffn"):
        assert view.extras["sparse_ffn_layers"] == alone.extras["sparse_ffn_layers"]


def test_exported_copy_check_is_real(exported, inputs):
    """Guard: the exported slices differ from each other, so the equality above is not trivially true."""
    a, b = exported["ffn-only"], exported["skip-only"]
    assert not torch.allclose(logits(a.model, inputs["text"]), logits(b.model, inputs["text"]), atol=1e-3)
