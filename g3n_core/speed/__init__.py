"""Speed and memory features selected by Variant fields, one concern per module.

- sparse_ffn.py           sparse_ffn=True: exact sparse FFN decode in layers with activation sparsity
- ple_mmap.py             ple="mmap": per-layer embeddings memory-mapped from the checkpoint file
- generation_settings.py  kv_cache="static", compile=True: keyword arguments for model.generate
- quantize.py             quant="int8": weight-only int8 linear layers
- prepack.py              prepack=True: bfloat16 linear weights pre-packed for oneDNN (CPU; faster; bit-identical with AVX512_BF16)
- fused_linears.py        fuse_linears=True: q|k|v and gate|up as one stacked product each (bit-identical)
- hugepages.py            hugepages=True: weights copied into transparent huge pages (bit-identical, fewer TLB misses)
- linear_swap.py          putting another implementation in place of the decoder's linear layers
- file_pages.py           after rewriting weights, drop the mapped checkpoint pages the rewrite touched
- roofline.py             bytes read per decoded token and the machine's read bandwidth (benchmarks)

`load_model` maps the per-layer table before placing the model on its device (`ple_mmap`), then
calls `apply_speed_features` last.
"""

from __future__ import annotations

from .file_pages import release_file_pages
from .fused_linears import fuse_linears
from .hugepages import weights_to_huge_pages
from .generation_settings import generate_kwargs
from .prepack import prepack_linears
from .quantize import quantize_decoder_int8
from .sparse_ffn import enable_sparse_ffn


def apply_speed_features(loaded, progress) -> None:
    """Turn on the speed features a loaded model's Variant asks for (after weights are placed)."""
    variant = loaded.variant
    model = loaded.model
    rewrites = variant.sparse_ffn or variant.quant != "none" or variant.prepack or variant.fuse_linears or variant.hugepages
    originals = [*model.parameters(), *model.buffers()] if rewrites else []  # the weights as loaded
    if variant.sparse_ffn:
        progress(0.85, "sparse FFN decode on the layers with activation sparsity")
        loaded.extras["sparse_ffn_layers"] = enable_sparse_ffn(model)
    if variant.fuse_linears:
        progress(0.87, "stacking q|k|v and gate|up into one product each")
        loaded.extras["fused_groups"] = fuse_linears(model)
    if variant.quant == "int8":
        progress(0.9, "quantizing linear layers to int8")
        loaded.extras["int8_linears"] = quantize_decoder_int8(model)
    if variant.prepack:
        progress(0.95, "packing linear weights for oneDNN")
        loaded.extras["packed_linears"] = prepack_linears(model)
    if variant.hugepages:
        progress(0.97, "copying weights into huge pages")
        loaded.extras["hugepage_bytes"] = weights_to_huge_pages(model)
    if rewrites:
        loaded.extras["released_file_bytes"] = release_file_pages([*originals, *model.parameters(), *model.buffers()])
    loaded.extras["generate_kwargs"] = generate_kwargs(variant)
