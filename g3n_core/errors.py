"""Typed errors of the workbench. Each message says what went wrong and what to do about it.

Every error derives from `G3nError`, so callers (CLI, app, evals) can catch one type and show
`str(err)` to a person; the subclasses let tests and code tell the cases apart.
"""

from __future__ import annotations


class G3nError(Exception):
    """Base class: a problem a user can fix, with a message that says how."""


class VariantError(G3nError, ValueError):
    """A Variant field holds a value that cannot run; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"Variant.{field}: {message}")
        self.field = field


class ModelSourceError(G3nError):
    """A model name, hub id or folder cannot be resolved or loaded."""


class MediaError(G3nError, ValueError):
    """An image, audio clip or video cannot be used; `source` names the input."""

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}")
        self.source = source


class EmptyMediaError(MediaError):
    """A media file has zero bytes."""


class CorruptMediaError(MediaError):
    """A media file is truncated or not decodable."""


class UnsupportedMediaError(MediaError):
    """A media file's format or type is not one the model can take."""


class MediaAccessError(MediaError):
    """A media reference points somewhere the caller may not read (a URL with network off, a path outside the allowed roots)."""


class MessageError(G3nError, ValueError):
    """A chat message is malformed: empty, wrong roles, two audio clips in one turn, unknown content type."""


class SettingsError(G3nError, ValueError):
    """A generation setting is out of range (max_new_tokens, temperature, top_p, top_k, ...)."""


class ContextOverflowError(G3nError, ValueError):
    """The prompt plus the requested new tokens do not fit the model's context."""


class SliceError(G3nError, ValueError):
    """A MatFormer slice does not fit its parent model; `layer` names the offending layer when there is one."""

    def __init__(self, message: str, layer: int | None = None):
        prefix = f"layer {layer}: " if layer is not None else ""
        super().__init__(prefix + message)
        self.layer = layer


class EvalError(G3nError, ValueError):
    """An evaluation cannot run as asked: unknown task or measurement, a dataset that cannot be read, a bad results folder."""


class NumericalError(G3nError, FloatingPointError):
    """A model produced inf or NaN (float16 overflow on real Gemma 3n weights, or weights that are broken)."""


class ExportError(G3nError, ValueError):
    """A checkpoint cannot be written: no weights to stream from, or the destination is not usable."""


class ModelTooLargeError(G3nError):
    """A model's estimated resident size is over the model cache's whole budget; the message names what would fit.

    `needed` and `budget` are bytes; `alternatives` lists (Variant changes as spec tokens, estimated bytes) that fit.
    """

    def __init__(self, message: str, needed: int, budget: int, alternatives: list[tuple[str, int]] | None = None):
        super().__init__(message)
        self.needed = needed
        self.budget = budget
        self.alternatives = list(alternatives or [])


class DiskQuotaError(G3nError):
    """Writing would take the results folder over its size quota; the message names the sizes and what to do."""


class UnsupportedError(G3nError):
    """The model or endpoint cannot do what was asked (a server without prompt log-probabilities, memory of a remote model)."""
