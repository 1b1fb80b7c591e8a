"""Checkpoints this project writes map every weight 16-byte aligned (some CPUs round float32 decode by alignment)."""

from __future__ import annotations

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from g3n_core.builtin.checkpoint import ensure_tiny
from g3n_core.matformer.safetensors_stream import StreamedTensor, write_streamed
from g3n_core.speed.file_pages import release_file_pages
from g3n_core.weight_files import DATA_ALIGNMENT, align_weight_file, align_weight_files, data_start


def _tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"a.weight": torch.randn(8, 16, generator=generator), "b.weight": torch.randn(4, generator=generator)}


def test_padding_the_header_keeps_every_tensor(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(_tensors(), path, metadata={"format": "pt"})
    assert data_start(path) % DATA_ALIGNMENT != 0  # safetensors pads to 8 bytes only
    assert align_weight_file(path)
    assert data_start(path) % DATA_ALIGNMENT == 0
    assert not align_weight_file(path)  # already aligned: left alone
    with safe_open(str(path), framework="pt") as file:
        assert file.metadata() == {"format": "pt"}
        for name, tensor in _tensors().items():
            assert torch.equal(file.get_tensor(name), tensor)
    assert not list(tmp_path.glob(".*"))  # no staging file left behind


def test_streamed_export_files_start_aligned(tmp_path):
    path = tmp_path / "model.safetensors"
    tensors = _tensors()
    streamed = [StreamedTensor(name, "F32", tuple(t.shape), lambda t=t: iter([t])) for name, t in tensors.items()]
    write_streamed(path, streamed)
    assert data_start(path) % DATA_ALIGNMENT == 0
    assert align_weight_files(tmp_path) == 0


def test_tiny_maps_every_weight_16_byte_aligned_from_its_file():
    from transformers import Gemma3nForConditionalGeneration

    checkpoint = ensure_tiny()
    assert data_start(checkpoint / "model.safetensors") % DATA_ALIGNMENT == 0
    model = Gemma3nForConditionalGeneration.from_pretrained(checkpoint)
    misaligned = [name for name, p in model.named_parameters() if p.data_ptr() % 16]
    assert misaligned == []
    assert release_file_pages(model.parameters()) > 0  # still the file's own pages, not private copies
