"""Where a model comes from: a built-in name, a local folder, or a Hugging Face hub id.

Nothing here waits on an unreachable hub: `HF_HUB_OFFLINE=1` is honoured, and otherwise a
two-second reachability probe, through huggingface_hub's own HTTP client (its endpoint, proxies),
decides before any download is tried.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from transformers import AutoConfig, Gemma3nConfig

from .builtin.checkpoint import MARKER, ensure_tiny
from .builtin.configs import SHAPES, shape_config, tiny_config
from .builtin.mini import mini_checkpoint
from .errors import ModelSourceError

BUILTIN_NAMES = ("mini", "tiny", "e2b-shape", "e4b-shape")
HUB_IDS = ("google/gemma-3n-E2B-it", "google/gemma-3n-E4B-it", "google/gemma-3n-E2B", "google/gemma-3n-E4B")
REACH_TIMEOUT_S = 2.0
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(name: str) -> bool:
    """True when `name` has the form of a hub id (org/name); it may still name a local folder."""
    return _HUB_ID.match(name) is not None


@dataclass(frozen=True)
class ModelSource:
    """A classified model name. `kind` is "builtin", "local" or "hub"."""

    name: str
    kind: str

    @property
    def is_shape(self) -> bool:
        """True for e2b-shape / e4b-shape, which exist only in memory."""
        return self.name in SHAPES

    @property
    def short_name(self) -> str:
        """Readable name for tables: the built-in name, the hub repo name, or the folder name."""
        if self.kind == "builtin":
            return self.name
        return Path(self.name.rstrip("/")).name


def classify(model: str) -> ModelSource:
    """Decide what kind of source `model` names, touching only the local file system."""
    if not isinstance(model, str) or not model.strip():
        raise ModelSourceError("no model given: use 'mini' or 'tiny', a hub id such as google/gemma-3n-E2B-it, or a folder")
    model = model.strip()
    if model in BUILTIN_NAMES:
        return ModelSource(model, "builtin")
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"{model} is a folder without config.json; point at a Hugging Face checkpoint folder")
        return ModelSource(str(path.resolve()), "local")
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_like_path or not _HUB_ID.match(model):
        raise ModelSourceError(
            f"{model!r} is neither a built-in model ({', '.join(BUILTIN_NAMES)}), an existing folder, nor a hub id like org/name"
        )
    return ModelSource(model, "hub")


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE asks for no network (as huggingface_hub read it, or as the environment says now)."""
    from huggingface_hub import constants

    return constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_endpoint() -> str:
    """The hub huggingface_hub talks to: HF_ENDPOINT (a mirror) or https://huggingface.co."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_reachable(timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether huggingface_hub's endpoint answers within `timeout` seconds, asked the way huggingface_hub asks.

    The probe goes through huggingface_hub's own HTTP client (`get_session()`: its proxies from
    HTTPS_PROXY / HTTP_PROXY, its endpoint from HF_ENDPOINT), so a mirror or a proxy that
    huggingface_hub would download through counts as reachable. Any HTTP answer below 500 does; the
    result is remembered per endpoint for the process.
    """
    if hub_offline():
        return False
    endpoint = hub_endpoint()
    if endpoint not in _REACHABLE:
        _REACHABLE[endpoint] = _probe(endpoint, timeout)
    return _REACHABLE[endpoint]


_REACHABLE: dict[str, bool] = {}


def _probe(endpoint: str, timeout: float) -> bool:
    from huggingface_hub.utils import get_session

    result: list[bool] = []

    def probe() -> None:
        try:
            response = get_session().head(endpoint, timeout=timeout, follow_redirects=False)
            result.append(response.status_code < 500)
        except Exception:  # noqa: BLE001 - connection refused, DNS, TLS, proxy and timeout errors all mean "not now"
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)  # DNS lookups ignore the client's timeout; the join does not
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def unreachable_advice(model: str) -> str:
    """What to say when a hub model is not cached and the hub cannot be asked."""
    why = "HF_HUB_OFFLINE=1 is set" if hub_offline() else f"{hub_endpoint()} did not answer within {REACH_TIMEOUT_S:.0f} s"
    return (
        f"{model} is not in the local Hugging Face cache and the hub is unreachable ({why}). "
        "Connect to the network (behind a proxy: set HTTPS_PROXY; with a mirror: set HF_ENDPOINT), "
        "or use 'mini' or 'tiny', or a folder holding the checkpoint."
    )


def _cached_hub_file(repo_id: str, filename: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    return Path(found) if isinstance(found, str) else None


@lru_cache(maxsize=32)
def _parsed_config(folder: str, content: str | None) -> Gemma3nConfig:
    """A config by its folder and its config.json's content hash (None: built in code): an edited file is parsed again."""
    return shape_config(folder) if folder in SHAPES else tiny_config() if folder == "tiny" else AutoConfig.from_pretrained(folder)


def _folder_config(folder: str | Path) -> Gemma3nConfig:
    """The config a folder holds, parsed once per content of its file; each caller gets its own copy to change."""
    path = Path(folder) / "config.json"
    if not path.is_file():  # let transformers say what is missing
        return AutoConfig.from_pretrained(str(folder))
    content = hashlib.sha1(path.read_bytes()).hexdigest()  # a few KB: microseconds, where parsing takes milliseconds
    return copy.deepcopy(_parsed_config(str(folder), content))


def read_config(source: ModelSource) -> Gemma3nConfig:
    """The model's configuration, without loading weights (and without building tiny).

    Parsed once per process (built-in configs) or per content of the file (folders, the hub's
    cache) and copied per call: Variant validation reads it on every request, and parsing costs
    milliseconds where a copy costs a fraction of one.
    """
    if source.name == "tiny" or source.is_shape:
        return copy.deepcopy(_parsed_config(source.name, None))
    if source.name == "mini":
        return _checked(_folder_config(mini_checkpoint()), source)
    if source.kind == "local":
        return _checked(_folder_config(source.name), source)
    cached = _cached_hub_file(source.name, "config.json")
    if cached is not None:
        return _checked(_folder_config(cached.parent), source)
    if not hub_reachable():
        raise ModelSourceError(unreachable_advice(source.name))
    try:
        return _checked(AutoConfig.from_pretrained(source.name), source)
    except OSError as err:
        raise ModelSourceError(f"could not fetch {source.name}'s config: {err}. Gemma repos need an accepted licence and HF_TOKEN.") from err


def _checked(config, source: ModelSource) -> Gemma3nConfig:
    if getattr(config, "model_type", None) != "gemma3n":
        raise ModelSourceError(f"{source.name} is a {getattr(config, 'model_type', 'unknown')!r} model, not Gemma 3n (gemma3n)")
    return config


def checkpoint_path(source: ModelSource) -> Path:
    """A folder holding the checkpoint, building tiny or downloading from the hub when needed."""
    if source.name == "tiny":
        return ensure_tiny()
    if source.name == "mini":
        return mini_checkpoint()
    if source.is_shape:
        raise ModelSourceError(f"{source.name} has random weights built in memory and no checkpoint folder")
    if source.kind == "local":
        return Path(source.name)
    from huggingface_hub import snapshot_download

    if not hub_reachable() and _cached_hub_file(source.name, "config.json") is None:
        raise ModelSourceError(unreachable_advice(source.name))
    try:
        return Path(snapshot_download(source.name, local_files_only=not hub_reachable()))
    except Exception as err:  # noqa: BLE001 - hub errors come in many types; all mean the same to a user
        raise ModelSourceError(f"could not get {source.name}: {err}. Gemma repos need an accepted licence and HF_TOKEN.") from err


def has_random_weights(source: ModelSource, path: Path | None = None) -> bool:
    """True for the built-in models but mini, and for any folder this project generated with random weights (marker file)."""
    if source.kind == "builtin" and source.name != "mini":
        return True
    folder = path or (mini_checkpoint() if source.name == "mini" else Path(source.name) if source.kind == "local" else None)
    if folder is None or not (folder / MARKER).is_file():
        return False
    return bool(json.loads((folder / MARKER).read_text()).get("random_weights", False))


def num_text_layers(model: str) -> int | None:
    """The parent model's text layer count when it can be known without network, else None."""
    try:
        source = classify(model)
    except ModelSourceError:
        return None
    return source_layers(source)


def source_layers(source: ModelSource) -> int | None:
    """`num_text_layers` of an already classified source."""
    if source.kind == "hub" and _cached_hub_file(source.name, "config.json") is None:
        return None
    try:
        return read_config(source).text_config.num_hidden_layers
    except (ModelSourceError, OSError, ValueError):
        return None
