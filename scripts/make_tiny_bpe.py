"""Train the byte-fallback BPE that the built-in `tiny` tokenizer is made from.

The result is committed as g3n_core/builtin/assets/tiny_bpe.json, so that building `tiny`
never depends on training being bit-for-bit reproducible. Re-run only to change the vocabulary:

    python scripts/make_tiny_bpe.py
"""

from __future__ import annotations

import json
import pydoc
import sys
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

OUT = Path(__file__).resolve().parents[1] / "g3n_core" / "builtin" / "assets" / "tiny_bpe.json"
NUM_PIECES = 1700  # learned pieces beyond the 256 byte-fallback tokens


def corpus() -> list[str]:
    """English prose that ships with Python itself: the standard library's docstrings."""
    texts = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in {"antigravity", "this", "idlelib", "tkinter", "turtle"}:
            continue
        try:
            module = pydoc.safeimport(name)
        except Exception:  # noqa: BLE001 - some stdlib modules need platform support
            continue
        if module is None:
            continue
        for obj in [module, *vars(module).values()]:
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str) and len(doc) > 40:
                texts.append(doc)
    return sorted(set(texts))


def main() -> None:
    """Train and write the BPE vocabulary and merges."""
    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="▁", behavior="merged_with_next")
    bytes_ = [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=len(bytes_) + NUM_PIECES,
        special_tokens=["<unk>", *bytes_],
        show_progress=False,
        max_token_length=12,
    )
    tok.train_from_iterator(corpus(), trainer=trainer)
    data = json.loads(tok.to_str())["model"]
    vocab = sorted(data["vocab"].items(), key=lambda kv: kv[1])
    pieces = [t for t, _ in vocab if t != "<unk>" and not (t.startswith("<0x") and t.endswith(">"))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["merges"]]
    OUT.write_text(json.dumps({"source": "BPE trained on CPython 3.11 standard-library docstrings "
                                         "by scripts/make_tiny_bpe.py",
                               "pieces": pieces, "merges": merges}, ensure_ascii=False) + "\n")
    print(f"wrote {OUT} ({len(pieces)} pieces, {len(merges)} merges)")


if __name__ == "__main__":
    main()
