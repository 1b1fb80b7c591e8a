"""Run by tests/test_hub_mirror.py in a subprocess whose HF_ENDPOINT is the local hub mirror: the real hub path.

    python tests/hub_client.py online|offline OUT_DIR

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE once, at import, so each hub
situation gets its own process. Prints one JSON object of what it observed; the test asserts on it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import torch
from safetensors import safe_open

from g3n_core import GenerationSettings, MatformerSlice, Variant, chat, load_model, model_info
from g3n_core.sources import hub_reachable

REPO = "google/gemma-3n-E2B-it"
HELLO = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]


def _last_logits(loaded) -> torch.Tensor:
    ids = torch.tensor([[2, 1000, 1001, 1002]])
    with torch.inference_mode():
        return loaded.model(ids).logits[0, -1].float()


def _file_params(folder: Path) -> int:
    """Parameters the checkpoint's safetensors files hold."""
    total = 0
    for path in folder.glob("*.safetensors"):
        with safe_open(str(path), framework="pt") as file:
            total += sum(math.prod(file.get_slice(key).get_shape()) for key in file.keys())
    return total


def _mapped_file(address: int) -> str:
    """The file this process maps at `address` (from /proc/self/maps)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        low, high = (int(x, 16) for x in parts[0].split("-"))
        if low <= address < high:
            return parts[5] if len(parts) == 6 else ""
    return ""


def online(out: Path) -> dict:
    """Download through the mirror, then everything a user does with a hub model."""
    facts: dict = {"reachable": hub_reachable(), "endpoint": os.environ["HF_ENDPOINT"]}
    full = load_model(Variant(model=REPO, dtype="bfloat16"))
    facts["checkpoint"] = str(full.checkpoint)
    facts["weights"] = {p.name: os.path.realpath(p) for p in full.checkpoint.glob("*.safetensors")}
    facts["reply_tokens"] = chat(full, HELLO, GenerationSettings(max_new_tokens=3)).new_tokens
    facts["info_total"] = model_info(Variant(model=REPO, dtype="bfloat16")).total_params
    facts["file_params"] = _file_params(full.checkpoint)
    del full
    text = dict(model=REPO, dtype="bfloat16", towers=())
    resident = load_model(Variant(**text))
    mapped = load_model(Variant(**text, ple="mmap"))
    table = mapped.model.model.embed_tokens_per_layer.table
    facts["ple_mapped_from"] = _mapped_file(table.data_ptr())
    facts["ple_logits_equal"] = bool(torch.equal(_last_logits(resident), _last_logits(mapped)))
    del resident, mapped
    facts["released"] = {
        name: load_model(Variant(**text, **fields)).extras["released_file_bytes"]
        for name, fields in (("sparse_ffn", {"sparse_ffn": True}), ("int8", {"quant": "int8"}))
    }
    from g3n_core.matformer.export import export_slice

    exported = export_slice(REPO, MatformerSlice(skip=(5, 6, 7, 8, 9)), out / "sliced")
    facts["export_config"] = json.loads((exported / "config.json").read_text())
    sliced = load_model(Variant(model=str(exported), dtype="bfloat16", towers=()))
    facts["export_layers"] = sliced.text_config.num_hidden_layers
    facts["export_reply_tokens"] = chat(sliced, HELLO, GenerationSettings(max_new_tokens=2)).new_tokens
    return facts


def offline(out: Path) -> dict:
    """HF_HUB_OFFLINE=1 after the download: the same model from the cache, asking the hub nothing."""
    loaded = load_model(Variant(model=REPO, dtype="bfloat16", towers=()))
    return {"reachable": hub_reachable(), "checkpoint": str(loaded.checkpoint),
            "reply_tokens": chat(loaded, HELLO, GenerationSettings(max_new_tokens=2)).new_tokens}


if __name__ == "__main__":
    step, folder = sys.argv[1], Path(sys.argv[2])
    print(json.dumps({"online": online, "offline": offline}[step](folder)))
