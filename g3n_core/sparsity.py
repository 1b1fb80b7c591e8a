"""Activation sparsity: the Variant's setting, the per-layer pattern it yields, and applying it to a model.

Gemma 3n cuts each sparse layer's gate activations at mean + std * Phi^-1(target) (a statistical
top-k), so that about `target` of them are exactly zero. The setting is one of:

- ``default``: the checkpoint's own pattern (0.95 on the first 10 layers of E2B/E4B);
- ``off``: no layer is sparse;
- ``0.9``: the checkpoint's sparse layers, with this target instead;
- ``0.9@0-4,7``: this target on the listed layers, all others dense;
- ``0.95,0.95,0,...``: one value per layer of the model that runs (after any MatFormer slice).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class SparsitySpec:
    """Parsed form of a sparsity setting string."""

    mode: str  # "default" | "off" | "target" | "pattern"
    target: float | None = None
    layers: tuple[int, ...] | None = None  # with mode "target"; None means the checkpoint's sparse layers
    pattern: tuple[float, ...] | None = None


def _check_target(value: float) -> float:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"sparsity target {value} must be in [0, 1): it is the fraction of gate activations set to zero")
    return value


def _parse_layers(text: str) -> tuple[int, ...]:
    layers: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            if hi < lo:
                raise ValueError(f"layer range {part} runs backwards")
            layers.update(range(lo, hi + 1))
        elif part:
            layers.add(int(part))
    if not layers:
        raise ValueError("no layers listed after '@'")
    return tuple(sorted(layers))


def parse_sparsity(text: str) -> SparsitySpec:
    """Parse a setting string; raises ValueError with the reason."""
    text = str(text).strip().lower()
    if text in ("default", ""):
        return SparsitySpec("default")
    if text in ("off", "none", "0"):
        return SparsitySpec("off")
    try:
        if "@" in text:
            value, layers = text.split("@", 1)
            return SparsitySpec("target", target=_check_target(float(value)), layers=_parse_layers(layers))
        if "," in text:
            return SparsitySpec("pattern", pattern=tuple(_check_target(float(v)) for v in text.split(",")))
        return SparsitySpec("target", target=_check_target(float(text)))
    except ValueError as err:
        if "must be" in str(err) or "layer" in str(err):
            raise
        raise ValueError(f"cannot read sparsity setting {text!r}: use default, off, 0.9, 0.9@0-9 or one value per layer") from err


def format_sparsity(spec: SparsitySpec) -> str:
    """Canonical string form of a parsed setting (what the Variant stores)."""
    if spec.mode in ("default", "off"):
        return spec.mode
    if spec.mode == "pattern":
        return ",".join(f"{v:g}" for v in spec.pattern)
    if spec.layers is None:
        return f"{spec.target:g}"
    return f"{spec.target:g}@" + ",".join(str(i) for i in spec.layers)


def check_layer_count(spec: SparsitySpec, num_layers: int) -> None:
    """Raise ValueError when the setting names layers the model does not have."""
    if spec.mode == "pattern" and len(spec.pattern) != num_layers:
        raise ValueError(f"pattern has {len(spec.pattern)} values but the model has {num_layers} layers")
    if spec.mode == "target" and spec.layers and max(spec.layers) >= num_layers:
        raise ValueError(f"layer {max(spec.layers)} does not exist: the model has layers 0-{num_layers - 1}")


def resolve_pattern(spec: SparsitySpec, checkpoint_pattern: list[float]) -> list[float]:
    """The per-layer sparsity list for a model whose checkpoint pattern is `checkpoint_pattern`."""
    num_layers = len(checkpoint_pattern)
    check_layer_count(spec, num_layers)
    if spec.mode == "default":
        return list(checkpoint_pattern)
    if spec.mode == "off":
        return [0.0] * num_layers
    if spec.mode == "pattern":
        return list(spec.pattern)
    layers = set(spec.layers) if spec.layers is not None else {i for i, v in enumerate(checkpoint_pattern) if v > 0}
    return [spec.target if i in layers else 0.0 for i in range(num_layers)]


def text_decoder(model: nn.Module) -> nn.Module:
    """The Gemma3nTextModel inside a Gemma 3n model, multimodal or text-only."""
    inner = model.model
    return inner.language_model if hasattr(inner, "language_model") else inner


def text_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a Gemma 3n model, multimodal or text-only."""
    return text_decoder(model).layers


def set_activation_sparsity(model: nn.Module, pattern: list[float]) -> None:
    """Apply a per-layer sparsity list to a loaded model: the config and every MLP agree afterwards."""
    layers = text_layers(model)
    if len(pattern) != len(layers):
        raise ValueError(f"pattern has {len(pattern)} values but the model has {len(layers)} layers")
    text_config = model.config.get_text_config()
    text_config.activation_sparsity_pattern = [float(v) for v in pattern]
    for layer, value in zip(layers, pattern):
        layer.mlp.activation_sparsity = float(value)
