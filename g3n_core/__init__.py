"""g3n_core: the one model layer of the Gemma 3n workbench.

Load real Gemma 3n checkpoints or the built-in `tiny` one, name every run with a `Variant`, chat
with text, images, audio and video, and size models without allocating them.
"""

from __future__ import annotations

import logging as _logging
import os as _os

# torchao (imported by transformers when installed) registers enums in a way torch 2.14 warns about
# on every start; the warning is not actionable for users of this package.
_logging.getLogger("torch.utils._pytree").setLevel(_logging.ERROR)
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .errors import (  # noqa: E402
    ContextOverflowError,
    DiskQuotaError,
    EvalError,
    ExportError,
    G3nError,
    MediaError,
    MessageError,
    ModelSourceError,
    ModelTooLargeError,
    NumericalError,
    SettingsError,
    SliceError,
    UnsupportedError,
    VariantError,
)
from .generation import ChatReply, ChatStream, GenerationSettings, chat, stream_chat  # noqa: E402
from .info import ModelInfo, model_info  # noqa: E402
from .loading import LoadedModel, load_model  # noqa: E402
from .matformer.spec import MatformerSlice  # noqa: E402
from .media import MediaPolicy  # noqa: E402
from .model_cache import ModelCache  # noqa: E402
from .remote import RemoteVariant  # noqa: E402
from .variant import Variant, parse_variant_spec  # noqa: E402

__all__ = [
    "ChatReply",
    "ChatStream",
    "ContextOverflowError",
    "DiskQuotaError",
    "EvalError",
    "ExportError",
    "G3nError",
    "GenerationSettings",
    "LoadedModel",
    "MatformerSlice",
    "MediaError",
    "MediaPolicy",
    "MessageError",
    "ModelCache",
    "ModelInfo",
    "ModelSourceError",
    "ModelTooLargeError",
    "NumericalError",
    "RemoteVariant",
    "SettingsError",
    "SliceError",
    "UnsupportedError",
    "Variant",
    "VariantError",
    "chat",
    "load_model",
    "model_info",
    "parse_variant_spec",
    "stream_chat",
]
