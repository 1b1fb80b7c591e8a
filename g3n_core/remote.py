"""RemoteVariant: a model behind an OpenAI-compatible endpoint (vLLM, llama.cpp, Ollama, `g3n_core serve`), named like a Variant.

A local `Variant` names how to load and run the weights; a remote one can only name where the
server is and what it calls the model, so it is its own small value with the same surface
(`name`, `to_dict` / `to_json` / `from_dict`, validation at construction). The spec parser is the
one entry point for both: `parse_variant_spec("openai:http://HOST:PORT/v1 model=NAME")`.
The API key is never part of the value (it would land in results files): `key_env` names the
environment variable that holds it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

from .errors import VariantError

REMOTE_PREFIX = "openai:"
REMOTE_TOWERS = ("vision", "audio")


@dataclass(frozen=True)
class RemoteVariant:
    """An OpenAI-compatible endpoint and the model it serves; compared beside local Variants."""

    base_url: str = field(metadata={"help": "the API root, e.g. http://127.0.0.1:8000/v1"})
    model: str = field(default="", metadata={"help": "the model name the server expects (GET /v1/models lists them)"})
    key_env: str | None = field(default=None, metadata={"help": "environment variable holding the API key (sent as a Bearer token)"})
    towers: tuple[str, ...] = field(default=REMOTE_TOWERS, metadata={"help": "media the endpoint takes: vision, audio, or text for neither"})
    timeout_s: float = field(default=300.0, metadata={"help": "seconds one request may take"})

    def __post_init__(self) -> None:
        url = str(self.base_url).strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise VariantError("base_url", f"{self.base_url!r} is not an http(s) URL; write openai:http://HOST:PORT/v1")
        if parts.username or parts.password:
            raise VariantError("base_url", "credentials in the URL would be written to results files; put the key in an environment variable and name it with key_env=")
        object.__setattr__(self, "base_url", url)
        if not self.model or not str(self.model).strip():
            raise VariantError("model", "name the served model: model=NAME (the server's GET /v1/models lists its names)")
        if self.key_env is not None and not str(self.key_env).replace("_", "").isalnum():
            raise VariantError("key_env", f"{self.key_env!r} is not an environment variable name")
        towers = (self.towers,) if isinstance(self.towers, str) else tuple(self.towers)
        unknown = [t for t in towers if t not in REMOTE_TOWERS]
        if unknown:
            raise VariantError("towers", f"unknown tower(s) {unknown}; say which media the endpoint takes: vision, audio, or text")
        object.__setattr__(self, "towers", tuple(t for t in REMOTE_TOWERS if t in towers))
        try:
            timeout = float(self.timeout_s)
        except (TypeError, ValueError):
            timeout = 0.0
        if not timeout > 0:
            raise VariantError("timeout_s", f"must be a number of seconds > 0, got {self.timeout_s!r}")
        object.__setattr__(self, "timeout_s", timeout)

    @property
    def name(self) -> str:
        """Short label for tables: the served model at the server's address."""
        parts = [f"{self.model} @{urlsplit(self.base_url).netloc}"]
        if self.towers != REMOTE_TOWERS:
            parts.append("text-only" if not self.towers else "+" + "+".join(self.towers))
        return " ".join(parts)

    @property
    def device(self) -> str:
        """Where it runs, as far as this machine can tell."""
        return "remote"

    def api_key(self) -> str:
        """The key from `key_env` ("none" when the endpoint needs none); a VariantError when the variable is unset."""
        if self.key_env is None:
            return "none"
        value = os.environ.get(self.key_env)
        if not value:
            raise VariantError("key_env", f"${self.key_env} is not set in this process's environment (on a Ray cluster: on the worker nodes)")
        return value

    def replace(self, **changes: Any) -> RemoteVariant:
        """A copy with some fields changed (validated again)."""
        return RemoteVariant.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        return {"base_url": self.base_url, "model": self.model, "key_env": self.key_env, "towers": list(self.towers), "timeout_s": self.timeout_s}

    def to_json(self) -> str:
        """Stable JSON (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> RemoteVariant:
        """Build from a dict; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise VariantError(key, f"unknown field of a remote variant; known fields are {', '.join(sorted(known))}")
        data = dict(data)
        if isinstance(data.get("towers"), list):
            data["towers"] = tuple(data["towers"])
        if "base_url" not in data:
            raise VariantError("base_url", "a remote variant needs the endpoint's base_url")
        return cls(**data)


def is_remote_spec(spec: str) -> bool:
    """True for 'openai:http://...' specs."""
    return spec.strip().lower().startswith(REMOTE_PREFIX)


def parse_remote_spec(spec: str) -> RemoteVariant:
    """'openai:http://HOST:PORT/v1 model=NAME [key_env=VAR] [towers=text|vision|audio|vision,audio] [timeout_s=S]'."""
    first, *rest = spec.strip().split()
    data: dict[str, Any] = {"base_url": first[len(REMOTE_PREFIX) :]}
    for token in rest:
        if "=" not in token:
            raise VariantError("model", f"{token!r}: write model={token} (a remote spec names its fields)")
        key, value = token.split("=", 1)
        key = key.strip().replace("-", "_")
        if key == "towers":
            data[key] = tuple(t for t in value.replace("+", ",").split(",") if t and t != "text")
        else:
            data[key] = value
    return RemoteVariant.from_dict(data)
