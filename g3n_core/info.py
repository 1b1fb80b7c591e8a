"""Parameter counts and bytes by component, and Gemma 3n's "effective parameters".

Counting happens on the meta device, so even E4B is sized without allocating its weights. Totals
include the k/v projections of KV-shared layers that the released files hold but transformers does
not build (`FILE_ONLY`): 5.44B for E2B, 7.85B for E4B, as the released checkpoints count.
Effective parameters, as Google counts them for Gemma 3n: the text decoder without the token
embedding and per-layer-embedding tables, with the k/v projections of KV-shared layers counted as
the released checkpoints hold them (transformers does not build those modules).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from transformers import Gemma3nConfig, Gemma3nForCausalLM, Gemma3nForConditionalGeneration

from .builtin.random_weights import canonical_name
from .sources import read_config
from .variant import DTYPES, Variant, dtype_warnings

COMPONENTS = ("token_embeddings", "per_layer_embeddings", "text_decoder", "vision_tower", "audio_tower")
# The k/v projections (and k norms) of KV-shared layers: the released checkpoint files hold them, transformers
# builds no modules for them (those layers read the producer layer's cache). Totals count them, as the files do.
FILE_ONLY = "shared_kv_in_files"


@dataclass
class ModelInfo:
    """Sizes of a model by component, at a dtype."""

    model: str
    dtype: str
    random_weights: bool
    params: dict[str, int]
    bytes: dict[str, int]
    total_params: int
    total_bytes: int
    effective_params: int
    config: dict
    warnings: list[str] = field(default_factory=list)  # e.g. float16's overflow on real weights

    @property
    def resident_bytes(self) -> int:
        """Bytes the loaded model holds: the total less what only the files hold (FILE_ONLY)."""
        return self.total_bytes - self.bytes.get(FILE_ONLY, 0)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def human_count(n: float, sep: str = " ") -> str:
    """9_900_000 -> '9.90 M' (sep between number and unit; '' for compact tables)."""
    for unit in ("", "K", "M", "B"):
        if abs(n) < 1000:
            return f"{n:.2f}{sep}{unit}" if unit else f"{n:.0f}"
        n /= 1000
    return f"{n:.2f}{sep}T"


def human_bytes(n: float) -> str:
    """Bytes in MiB / GiB."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def component_of(name: str, text_only: bool = False) -> str:
    """Which component a parameter (named as in the loaded model) belongs to."""
    full = canonical_name(name, text_only)
    if full.startswith(("model.vision_tower.", "model.embed_vision.")):
        return "vision_tower"
    if full.startswith(("model.audio_tower.", "model.embed_audio.")):
        return "audio_tower"
    if full.startswith("model.language_model.embed_tokens_per_layer."):
        return "per_layer_embeddings"
    if full.startswith(("model.language_model.embed_tokens.", "lm_head.")):
        return "token_embeddings"
    return "text_decoder"


def shared_kv_params(text_config) -> int:
    """Parameters of the k/v projections (and k norm) that KV-shared layers hold in released checkpoints."""
    shared = sum(1 for mode in text_config.kv_sharing_modes if mode == "reuse")
    kv_width = text_config.num_key_value_heads * text_config.head_dim
    bias = 2 * kv_width if text_config.attention_bias else 0
    return shared * (2 * text_config.hidden_size * kv_width + bias + text_config.head_dim)


def with_file_only(params: dict[str, int], text_config) -> dict[str, int]:
    """`params` plus the KV-shared layers' k/v weights that the released files hold (FILE_ONLY), so totals match the files."""
    return {**params, FILE_ONLY: shared_kv_params(text_config)}


def count_components(model: nn.Module) -> dict[str, int]:
    """Parameter count by component (tied weights once)."""
    text_only = isinstance(model, Gemma3nForCausalLM)
    counts = dict.fromkeys(COMPONENTS, 0)
    for name, param in model.named_parameters():
        counts[component_of(name, text_only)] += param.numel()
    return counts


def effective_params(model: nn.Module) -> int:
    """Gemma 3n's effective parameter count of a (possibly sliced) model."""
    return count_components(model)["text_decoder"] + shared_kv_params(model.config.get_text_config())


def meta_model(config: Gemma3nConfig, text_only: bool = False) -> nn.Module:
    """The model's modules with weights on the meta device: shapes without memory."""
    with torch.device("meta"):
        if text_only:
            return Gemma3nForCausalLM(config.text_config)
        return Gemma3nForConditionalGeneration(config)


def variant_meta_model(variant: Variant) -> nn.Module:
    """A meta-device model with the Variant's towers and MatFormer slice applied."""
    config = read_config(variant.source)
    model = meta_model(config, variant.text_only)
    if not variant.text_only:
        if "vision" not in variant.towers:
            model.model.vision_tower = None
        if "audio" not in variant.towers:
            model.model.audio_tower = None
    if variant.matformer is not None:
        from .matformer.slicing import check_slice, slice_model

        check_slice(config.text_config, variant.matformer)
        model = slice_model(model, variant.matformer)
    return model


def config_summary(text_config) -> dict:
    """The text configuration's defining numbers."""
    widths = list(text_config.intermediate_size)
    sparsity = list(text_config.activation_sparsity_pattern)
    return {
        "layers": text_config.num_hidden_layers,
        "hidden_size": text_config.hidden_size,
        "ffn_widths": sorted(set(widths)) if len(set(widths)) > 1 else widths[0],
        "kv_shared_layers": text_config.num_kv_shared_layers,
        "attention": f"{text_config.num_attention_heads} heads, {text_config.num_key_value_heads} KV heads, head dim {text_config.head_dim}",
        "global_layers": [i for i, t in enumerate(text_config.layer_types) if t == "full_attention"],
        "sliding_window": text_config.sliding_window,
        "sparse_layers": [i for i, v in enumerate(sparsity) if v > 0],
        "sparsity_targets": sorted({v for v in sparsity if v > 0}),
        "vocab_size": text_config.vocab_size,
        "per_layer_embedding": f"{text_config.vocab_size_per_layer_input} x {text_config.hidden_size_per_layer_input} per layer",
        "context": text_config.max_position_embeddings,
    }


def describe(model: nn.Module, name: str, dtype: str, random_weights: bool) -> ModelInfo:
    """ModelInfo of a model (meta or real) at `dtype`."""
    params = with_file_only(count_components(model), model.config.get_text_config())
    element = torch.empty(0, dtype=DTYPES[dtype]).element_size()
    sizes = {k: v * element for k, v in params.items()}
    return ModelInfo(
        model=name,
        dtype=dtype,
        random_weights=random_weights,
        params=params,
        bytes=sizes,
        total_params=sum(params.values()),
        total_bytes=sum(sizes.values()),
        effective_params=effective_params(model),
        config=config_summary(model.config.get_text_config()),
        warnings=dtype_warnings(dtype),
    )


def model_info(variant: Variant) -> ModelInfo:
    """Sizes of the model a Variant names, computed without allocating weights."""
    from .sources import has_random_weights

    source = variant.source
    return describe(variant_meta_model(variant), variant.model, variant.dtype, has_random_weights(source))
