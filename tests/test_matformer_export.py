"""Exported slices: stock transformers loads them, they equal the in-memory slice, and writing streams."""

from __future__ import annotations

import copy
import json
import shutil
import weakref

import pytest
import torch
from matformer_cases import logits
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor, Gemma3nForConditionalGeneration

from g3n_core import MatformerSlice
from g3n_core.builtin.checkpoint import ensure_tiny
from g3n_core.cli import main
from g3n_core.matformer import export
from g3n_core.matformer.export import export_slice
from g3n_core.matformer.slicing import slice_model
from g3n_core.sources import has_random_weights

SLICE = MatformerSlice(ffn=(256, 512, 128, 512, 384, 256, 256, 100, 256, 256), skip=(5, 6, 7, 8, 9))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_slice("tiny", SLICE, tmp_path_factory.mktemp("export") / "tiny-sliced")


@pytest.fixture(scope="module")
def sliced(tiny):
    return slice_model(copy.deepcopy(tiny.model), SLICE)


def _messages(*parts):
    return [{"role": "user", "content": [*parts, {"type": "text", "text": "Describe what you get, in detail."}]}]


def test_stock_transformers_loads_the_export_and_matches_the_in_memory_slice(exported, sliced, media):
    processor = AutoProcessor.from_pretrained(exported)
    model = AutoModelForImageTextToText.from_pretrained(exported).eval()
    assert type(model).__name__ == "Gemma3nForConditionalGeneration"
    assert model.config.text_config.num_hidden_layers == 10
    image = {"type": "image", "image": str(media["image"])}
    audio = {"type": "audio", "audio": str(media["audio"])}
    for parts in ((), (image, audio)):
        inputs = processor.apply_chat_template(
            _messages(*parts), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )
        assert torch.equal(logits(model, inputs), logits(sliced, inputs)), [p["type"] for p in parts]
    generated = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 5
    assert processor.decode(generated[0, inputs["input_ids"].shape[1] :]) != ""


def test_export_holds_exactly_the_sliced_weights_and_the_parent_files(exported, sliced):
    written = load_file(exported / "model.safetensors")
    state = sliced.state_dict()
    assert set(written) == set(state) - {"lm_head.weight"}  # tied to the token embeddings, as in the parent
    for name, tensor in written.items():
        assert torch.equal(tensor, state[name]), name
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "processor_config.json", "chat_template.jinja", "generation_config.json"):
        assert (exported / name).is_file(), name
    record = json.loads((exported / "matformer_slice.json").read_text())
    assert record["kept_layers"] == [0, 1, 2, 3, 4, 10, 11, 12, 13, 14] and record["skip"] == [5, 6, 7, 8, 9]
    assert "MatFormer slice of tiny" in (exported / "README.md").read_text()
    assert has_random_weights(export.classify(str(exported)))  # the parent's random-weights marker travels along
    assert not list(exported.parent.glob(".*partial*"))


class _Tracker:
    """Counts tensors read from safetensors that are still alive, via weak references."""

    def __init__(self):
        self.alive = self.alive_bytes = self.peak_bytes = self.reads = self.read_bytes = 0
        self.alive_at_read = []

    def track(self, tensor: torch.Tensor) -> torch.Tensor:
        self.alive_at_read.append(self.alive)
        nbytes = tensor.numel() * tensor.element_size()
        self.reads += 1
        self.read_bytes += nbytes
        self.alive += 1
        self.alive_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.alive_bytes)
        weakref.finalize(tensor, self._freed, nbytes)
        return tensor

    def _freed(self, nbytes: int) -> None:
        self.alive -= 1
        self.alive_bytes -= nbytes


class _TrackedSlice:
    def __init__(self, handle, tracker):
        self.handle, self.tracker = handle, tracker

    def get_dtype(self):
        return self.handle.get_dtype()

    def get_shape(self):
        return self.handle.get_shape()

    def __getitem__(self, index):
        return self.tracker.track(self.handle[index])


class _TrackedFile:
    def __init__(self, path, framework, tracker):
        self.file, self.tracker = safe_open(path, framework=framework), tracker

    def __enter__(self):
        self.file.__enter__()
        return self

    def __exit__(self, *exc):
        return self.file.__exit__(*exc)

    def keys(self):
        return self.file.keys()

    def metadata(self):
        return self.file.metadata()

    def get_slice(self, name):
        return _TrackedSlice(self.file.get_slice(name), self.tracker)

    def get_tensor(self, name):
        return self.tracker.track(self.file.get_tensor(name))


def test_export_streams_one_small_piece_at_a_time(monkeypatch, tmp_path, exported):
    tracker = _Tracker()
    monkeypatch.setattr(export, "safe_open", lambda path, framework: _TrackedFile(path, framework, tracker))
    chunk = 16 * 1024
    out = export_slice("tiny", SLICE, tmp_path / "streamed", chunk_bytes=chunk)
    checkpoint_bytes = (ensure_tiny() / "model.safetensors").stat().st_size
    assert checkpoint_bytes > 1000 * chunk  # so the bound below means something
    assert tracker.reads > 1000
    # nothing read before is still alive when the next piece is read, and no piece exceeds the chunk
    assert max(tracker.alive_at_read) == 0
    assert tracker.peak_bytes <= chunk
    assert tracker.read_bytes < checkpoint_bytes  # the skipped layers and cut neurons are never even read
    # chunking changes nothing in the result
    assert (out / "model.safetensors").read_bytes() == (exported / "model.safetensors").read_bytes()


def test_cli_slice_and_its_errors(tmp_path, capsys):
    out = tmp_path / "e2b-like"
    assert main(["matformer", "slice", "--model", "tiny", "--ffn", "256,3-4:512", "--skip", "5-9", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["text_config"]
    assert config["num_hidden_layers"] == 10 and config["intermediate_size"] == [256, 256, 256, 512, 512] + [256] * 5
    assert config["num_kv_shared_layers"] == 5
    assert main(["matformer", "slice", "--model", "tiny", "--skip", "6", "--out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["matformer", "slice", "--model", "e4b-shape", "--preset", "E2B", "--out", str(tmp_path / "x")]) == 2
    assert "no checkpoint to stream from" in capsys.readouterr().err
    assert main(["matformer", "slice", "--model", "tiny", "--preset", "E2B", "--out", str(tmp_path / "y")]) == 2
    assert "35-layer" in capsys.readouterr().err
    assert main(["matformer", "slice", "--model", "tiny", "--skip", "3", "--out", str(tmp_path / "z")]) == 2
    assert "layer 3" in capsys.readouterr().err
    assert not (tmp_path / "z").exists() and not list(tmp_path.glob(".*partial*"))


def test_cli_size_and_presets_as_json(capsys):
    assert main(["matformer", "size", "--model", "tiny", "--ffn", "256", "--skip", "5-9", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layers"] == 10 and len(report["ffn_profile"]) == 15
    assert main(["matformer", "presets", "--model", "tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_sharded_parent_folder_gives_sharded_export_with_the_same_weights(tmp_path, exported):
    parent = tmp_path / "sharded-parent"
    Gemma3nForConditionalGeneration.from_pretrained(ensure_tiny()).save_pretrained(parent, max_shard_size="8MB")
    for path in ensure_tiny().iterdir():
        if not (parent / path.name).exists():
            shutil.copyfile(path, parent / path.name)
    shards = sorted(parent.glob("model-*.safetensors"))
    assert len(shards) > 2
    out = export_slice(str(parent), SLICE, tmp_path / "sharded-slice")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == [p.name for p in shards]
    written = {}
    for shard in shards:
        written.update(load_file(out / shard.name))
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in written.values())
    single = load_file(exported / "model.safetensors")
    assert set(written) == set(single) == set(index["weight_map"])
    assert all(torch.equal(written[name], single[name]) for name in single)
    assert AutoModelForImageTextToText.from_pretrained(out).config.text_config.num_hidden_layers == 10
