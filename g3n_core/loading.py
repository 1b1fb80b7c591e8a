"""One loading path for every model: Variant -> (config -> weights -> slice -> sparsity -> device) -> LoadedModel.

Real checkpoints and the built-in tiny go through transformers' own
`Gemma3nForConditionalGeneration.from_pretrained` (or `Gemma3nForCausalLM` for text-only runs);
e2b-shape / e4b-shape are built in memory with random weights, or, in bfloat16, loaded from their
copy in the cache once one is written (always for ple="mmap", which needs a file to map).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from transformers import AutoProcessor, Gemma3nConfig, Gemma3nForCausalLM, Gemma3nForConditionalGeneration, Gemma3nProcessor

from .builtin.checkpoint import MARKER, SHAPE_DTYPE, build_shape_model, ensure_shape_checkpoint, shape_checkpoint_dir
from .builtin.configs import AUDIO_TOKENS, REAL_IMAGE_SIZE, REAL_IMAGE_TOKENS, REAL_LAYOUT
from .builtin.processor import build_processor
from .errors import ModelSourceError, VariantError
from .sources import checkpoint_path, has_random_weights, read_config
from .sparsity import parse_sparsity, resolve_pattern, set_activation_sparsity
from .variant import Variant

Progress = Callable[[float, str], None]

# Released checkpoints store the text decoder under model.language_model; Gemma3nForCausalLM wants model.
TEXT_ONLY_KEY_MAPPING = {r"^model\.language_model\.": "model."}


@dataclass
class LoadedModel:
    """A model ready to run, with the processor that feeds it and what is known about it."""

    variant: Variant
    model: Gemma3nForConditionalGeneration | Gemma3nForCausalLM
    processor: Gemma3nProcessor
    config: Gemma3nConfig  # the full multimodal config, also for text-only runs
    random_weights: bool
    checkpoint: Path | None
    load_seconds: float
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    extras: dict = field(default_factory=dict, repr=False)  # state owned by speed features

    @property
    def tokenizer(self):
        """The processor's tokenizer."""
        return self.processor.tokenizer

    @property
    def text_config(self):
        """The text decoder's config as it runs (after any slice)."""
        return self.model.config.get_text_config()

    @property
    def device(self) -> torch.device:
        """Where the weights live."""
        return next(self.model.parameters()).device

    @property
    def context_length(self) -> int:
        """Maximum tokens of prompt plus reply."""
        return int(self.text_config.max_position_embeddings)

    @property
    def has_vision(self) -> bool:
        """True when images can be given."""
        return getattr(getattr(self.model, "model", None), "vision_tower", None) is not None

    @property
    def has_audio(self) -> bool:
        """True when audio can be given."""
        return getattr(getattr(self.model, "model", None), "audio_tower", None) is not None

    def weight_bytes(self) -> int:
        """Bytes held by parameters and buffers (tied tensors counted once)."""
        seen: set[int] = set()
        total = 0
        for tensor in [*self.model.parameters(), *self.model.buffers()]:
            if tensor.data_ptr() in seen or tensor.device.type == "meta":
                continue
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
        # Opaque weights (oneDNN-packed, see g3n_core.speed.prepack) are no parameters; they report their size.
        return total + sum(m.packed_bytes() for m in self.model.modules() if hasattr(m, "packed_bytes"))


def attn_implementation(variant: Variant) -> dict[str, str]:
    """The text decoder takes the variant's attention; the timm and audio towers only know sdpa/eager."""
    towers = variant.attn if variant.attn in ("eager", "sdpa") else "sdpa"
    return {"": variant.attn, "text_config": variant.attn, "vision_config": towers, "audio_config": towers}


@lru_cache(maxsize=1)
def shape_processor() -> Gemma3nProcessor:
    """Processor with the released checkpoints' token ids and image size, for the random-weight shapes."""
    return build_processor(REAL_LAYOUT, REAL_IMAGE_SIZE, REAL_IMAGE_TOKENS, AUDIO_TOKENS)


def _drop_unused_towers(model: torch.nn.Module, variant: Variant) -> None:
    if isinstance(model, Gemma3nForCausalLM):
        return
    if "vision" not in variant.towers:
        model.model.vision_tower = None
    if "audio" not in variant.towers:
        model.model.audio_tower = None


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (the text-only load skips tower weights on purpose)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _from_pretrained(variant: Variant, config: Gemma3nConfig, path: Path):
    from .speed.file_pages import releasing_converted_sources
    from .speed.ple_mmap import deferring_per_layer_table

    model_class = Gemma3nForCausalLM if variant.text_only else Gemma3nForConditionalGeneration
    if variant.ple == "mmap":
        model_class = deferring_per_layer_table(model_class)  # the table is mapped afterwards, never loaded
    with releasing_converted_sources():
        return _load_class(model_class, variant, config, path)


def _load_class(model_class, variant: Variant, config: Gemma3nConfig, path: Path):
    if variant.text_only:
        return model_class.from_pretrained(
            path,
            config=config.text_config,
            dtype=variant.torch_dtype,
            attn_implementation=variant.attn,
            key_mapping=TEXT_ONLY_KEY_MAPPING,
        )
    return model_class.from_pretrained(path, config=config, dtype=variant.torch_dtype, attn_implementation=attn_implementation(variant))


def _use_shape_checkpoint(name: str, variant: Variant) -> bool:
    """ple=mmap needs the shape on disk; a bfloat16 shape already written loads from it too (same weights, seconds
    instead of a minute, and transformers maps the file instead of holding a copy)."""
    if variant.ple == "mmap":
        return True
    written = shape_checkpoint_dir(name, variant.text_only) / MARKER
    return variant.torch_dtype == SHAPE_DTYPE and written.is_file()


def _load_weights(variant: Variant, config: Gemma3nConfig, progress: Progress):
    """(model, processor, checkpoint folder or None, whether the model was built already sliced)."""
    source = variant.source
    if source.is_shape and _use_shape_checkpoint(source.name, variant):
        progress(0.1, f"writing {source.name} to {shape_checkpoint_dir(source.name, variant.text_only)} (first use only)")
        path = ensure_shape_checkpoint(source.name, variant.text_only)
        progress(0.2, f"mapping weights from {path}")
        with quiet_transformers():
            return _from_pretrained(variant, config, path).eval(), shape_processor(), path, False
    if source.is_shape:
        if variant.matformer is not None:
            # Random weights: build the slice's shape directly rather than the whole parent and cut
            # it down, which would need the parent's memory (e4b-shape: ~16 GB) first.
            from .matformer.slicing import plan_slice, slice_config

            config = slice_config(config, plan_slice(config.text_config, variant.matformer))
        progress(0.2, f"building {source.name} with random weights")
        model = build_shape_model(source.name, variant.text_only, variant.torch_dtype, config)
        return model, shape_processor(), None, variant.matformer is not None
    path = checkpoint_path(source)
    progress(0.2, f"loading weights from {path}")
    try:
        with quiet_transformers():
            processor = AutoProcessor.from_pretrained(path)
            model = _from_pretrained(variant, config, path)
    except (OSError, ValueError) as err:
        raise ModelSourceError(f"could not load {variant.model}: {err}") from err
    return model.eval(), processor, path, False


def _apply_slice(model, variant: Variant, progress: Progress):
    if variant.matformer is None:
        return model
    from .matformer.slicing import slice_model

    progress(0.6, f"slicing to MatFormer {variant.matformer.label}")
    return slice_model(model, variant.matformer)


def _apply_sparsity(model, variant: Variant) -> None:
    current = list(model.config.get_text_config().activation_sparsity_pattern)
    try:
        pattern = resolve_pattern(parse_sparsity(variant.sparsity), current)
    except ValueError as err:
        raise VariantError("sparsity", str(err)) from err
    set_activation_sparsity(model, pattern)


def load_model(variant: Variant, progress: Progress | None = None) -> LoadedModel:
    """Load (or build) the model a Variant names, apply its slice, sparsity and speed features, and place it."""
    progress = progress or (lambda fraction, message: None)
    start = time.perf_counter()
    source = variant.source
    progress(0.05, f"reading the configuration of {variant.model}")
    config = read_config(source)
    if variant.matformer is not None:
        from .matformer.slicing import check_slice

        check_slice(config.text_config, variant.matformer)
    model, processor, path, built_sliced = _load_weights(variant, config, progress)
    _drop_unused_towers(model, variant)
    if not built_sliced:
        model = _apply_slice(model, variant, progress)
    _apply_sparsity(model, variant)
    if variant.ple == "mmap":
        from .speed.ple_mmap import map_per_layer_embeddings

        progress(0.7, "leaving the per-layer embeddings memory-mapped in the checkpoint file")
        map_per_layer_embeddings(model, path, variant.torch_dtype, config.text_config, variant.matformer)  # before .to()
    progress(0.8, f"moving to {variant.device}")
    model.to(variant.device)
    loaded = LoadedModel(
        variant=variant,
        model=model,
        processor=processor,
        config=config,
        random_weights=has_random_weights(source, path),
        checkpoint=path,
        load_seconds=0.0,
    )
    from .speed import apply_speed_features

    apply_speed_features(loaded, progress)
    loaded.load_seconds = time.perf_counter() - start
    progress(1.0, f"ready: {variant.name} in {loaded.load_seconds:.1f} s")
    return loaded
