"""Variant: one immutable value that names everything defining a run.

Every knob of the workbench lives here and flows one way: Variant -> load -> run -> measure.
Invalid values fail at construction with a `VariantError` naming the field.

**Each knob is defined once, here.** A field carries its documentation in its metadata,
`field(default=..., metadata=knob(label, help, choices))`: a short label (the app's control), one
line of help (command-line help, the panel's hint) and, for a closed set of values, the choices.
Everything else is derived from the fields: the command-line flags of `python -m g3n_core
generate` / `info` and `python app.py` (g3n_core.knobs), the spec strings of `evals run` and the
Compare tab (`parse_variant_spec`), JSON (`to_dict` / `from_dict`) and the model panel's controls
(app.model_panel). Values given as text (flags, specs, text boxes) become the field's type through
`field_from_text` (true/false words for bools, comma lists for tuples). To add a knob: add one
field with its `knob(...)` metadata and a check in `__post_init__`; every surface picks it up.
Defaults that depend on the machine (`default_device`, `default_dtype`) are here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

import torch

from .errors import ModelSourceError, SliceError, VariantError
from .hardware import check_feature
from .matformer.spec import MatformerSlice, custom_label
from .remote import RemoteVariant, is_remote_spec, parse_remote_spec
from .sources import ModelSource, classify, num_text_layers, read_config, source_layers
from .sparsity import check_layer_count, format_sparsity, parse_sparsity

ATTN_IMPLS = ("eager", "sdpa", "flex_attention", "flash_attention_2")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_ALIASES = {"fp32": "float32", "f32": "float32", "bf16": "bfloat16", "fp16": "float16", "f16": "float16", "half": "float16"}
DTYPE_SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
TOWERS = ("vision", "audio")
PLE_MODES = ("resident", "mmap")
KV_CACHES = ("dynamic", "static")
QUANTS = ("none", "int8")
FLOAT16_WARNING = (
    "float16: real Gemma 3n weights overflow in float16 (activations reach inf); results may be wrong. "
    "Use bfloat16, or float32 where bfloat16 is not supported"
)


def dtype_warnings(dtype: str) -> list[str]:
    """Warnings that come with running in `dtype` (float16 overflows on real Gemma 3n weights)."""
    return [FLOAT16_WARNING] if dtype == "float16" else []

def knob(label: str, help: str, choices: tuple[str, ...] | None = None) -> dict[str, Any]:  # noqa: A002 - argparse's word
    """A field's metadata: `label` names its control, `help` is one line for people, `choices` lists a closed set."""
    return {"label": label, "help": help, "choices": tuple(choices) if choices is not None else None}


def default_device() -> str:
    """cuda when a GPU is visible, else cpu."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(model: str, device: str) -> str:
    """float32 for the built-in mini and tiny on the CPU (exact and fast enough); bfloat16 for real sizes and on GPUs."""
    return "float32" if model in ("mini", "tiny") and device == "cpu" else "bfloat16"


@dataclass(frozen=True)
class Variant:
    """Everything that defines a run. Defaults: the tiny model, SDPA, float32 on the CPU, all towers."""

    model: str = field(default="tiny", metadata=knob(
        "Model", "mini, tiny, e2b-shape, e4b-shape, a hub id (google/gemma-3n-E2B-it) or a checkpoint folder"))
    attn: str = field(default="sdpa", metadata=knob(
        "Attention", "attention implementation; flex_attention and flash_attention_2 need a CUDA GPU", ATTN_IMPLS))
    dtype: str = field(default="float32", metadata=knob(
        "dtype", "weights' dtype (float16: GPUs only, and real weights overflow in it); when not given: float32 for mini and tiny on the CPU, else bfloat16", tuple(DTYPES)))
    device: str = field(default="cpu", metadata=knob("Device", "cpu, cuda or cuda:N; when not given: cuda when one is visible"))
    towers: tuple[str, ...] = field(default=TOWERS, metadata=knob(
        "Towers", "encoders loaded beside the text decoder, a comma list; none or text = text only", TOWERS))
    sparsity: str = field(default="default", metadata=knob(
        "Activation sparsity", "default, off, 0.9, 0.9@0-9 (target on those layers), or one value per layer"))
    matformer: MatformerSlice | None = field(default=None, metadata=knob(
        "MatFormer slice", "a MatFormer Lab preset (E2B, E2.98B-layer, ...) or ffn=...;skip=... (docs/matformer.md)"))
    # Speed and memory features (see g3n_core.speed); each is a plain on/off or a named mode.
    sparse_ffn: bool = field(default=False, metadata=knob(
        "Sparse FFN decode", "exact sparse FFN decode on the activation-sparse layers"))
    ple: str = field(default="resident", metadata=knob(
        "Per-layer embeddings", "resident in memory, or mmap: left memory-mapped in the checkpoint file", PLE_MODES))
    kv_cache: str = field(default="dynamic", metadata=knob(
        "KV cache", "dynamic, or static (fixed shapes, needed by compile)", KV_CACHES))
    compile: bool = field(default=False, metadata=knob("torch.compile", "compile the decode step (needs kv_cache=static)"))
    quant: str = field(default="none", metadata=knob("Quantization", "none, or int8 weights (changes the outputs)", QUANTS))
    prepack: bool = field(default=False, metadata=knob(
        "Packed bf16 weights", "oneDNN-packed bfloat16 linears on the CPU (bit-identical, faster decode; needs AVX-512 or AVX-NE-CONVERT)"))
    fuse_linears: bool = field(default=False, metadata=knob(
        "Fused projections", "q|k|v and gate|up each computed as one product (bit-identical, fewer kernel calls)"))
    hugepages: bool = field(default=False, metadata=knob(
        "Huge-page weights", "weights copied once into 2 MiB transparent huge pages on the CPU (bit-identical, fewer TLB misses)"))
    # Values derived once per instance (model source, parent layer count); never copied by replace().
    _meta: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._check_model()
        self._check_device_and_dtype()
        self._check_attn()
        self._check_towers()
        self._check_matformer()
        self._check_sparsity()
        self._check_speed()

    # -- validation, one field at a time ------------------------------------------------------

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _check_model(self) -> None:
        try:
            source = classify(self.model)
        except ModelSourceError as err:
            raise VariantError("model", str(err)) from err
        self._set("model", source.name)
        self._meta["source"] = source

    @property
    def source(self) -> ModelSource:
        """Where the model comes from (built-in, local folder or hub), resolved once at construction."""
        return self._meta["source"]

    def _check_device_and_dtype(self) -> None:
        device = str(self.device).strip().lower()
        if device == "cpu":
            pass
        elif device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise VariantError("device", f"{device!r} asked for, but no CUDA GPU is visible; use 'cpu'")
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            if index >= torch.cuda.device_count():
                raise VariantError("device", f"{device!r}: only {torch.cuda.device_count()} CUDA device(s) exist")
        else:
            raise VariantError("device", f"unknown device {self.device!r}; use 'cpu', 'cuda' or 'cuda:N'")
        self._set("device", device)

        dtype = DTYPE_ALIASES.get(str(self.dtype).lower(), str(self.dtype).lower())
        if dtype not in DTYPES:
            raise VariantError("dtype", f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        if dtype == "float16" and device == "cpu":
            raise VariantError("dtype", "float16 is not supported on the CPU here (slow, incomplete kernels); use bfloat16 or float32")
        if dtype == "bfloat16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
            raise VariantError(
                "dtype", f"this GPU ({torch.cuda.get_device_name()}) has no bfloat16 support; use float32 "
                "(float16 overflows on real Gemma 3n weights)"
            )
        self._set("dtype", dtype)

    def _check_attn(self) -> None:
        if self.attn not in ATTN_IMPLS:
            raise VariantError("attn", f"unknown attention implementation {self.attn!r}; choose one of {', '.join(ATTN_IMPLS)}")
        if self.attn == "flash_attention_2":
            if not self.device.startswith("cuda"):
                raise VariantError("attn", "flash_attention_2 runs only on a CUDA GPU; use sdpa or eager on the CPU")
            try:
                import flash_attn  # noqa: F401
            except ImportError as err:
                raise VariantError("attn", "flash_attention_2 needs the flash-attn package (pip install flash-attn)") from err
        if self.attn == "flex_attention" and self.device == "cpu":
            raise VariantError(
                "attn",
                "flex_attention needs a CUDA GPU here: torch 2.14's compiled CPU decode kernel for it fails to build "
                "(an inductor code-generation bug); use sdpa or eager on the CPU",
            )

    def _check_towers(self) -> None:
        towers = (self.towers,) if isinstance(self.towers, str) else tuple(self.towers)
        unknown = [t for t in towers if t not in TOWERS]
        if unknown:
            raise VariantError("towers", f"unknown tower(s) {unknown}; the text decoder is always loaded, add 'vision' and/or 'audio'")
        self._set("towers", tuple(t for t in TOWERS if t in towers))

    def _check_matformer(self) -> None:
        if isinstance(self.matformer, dict):
            try:
                self._set("matformer", MatformerSlice.from_dict(self.matformer))
            except SliceError as err:
                raise VariantError("matformer", str(err)) from err
        if self.matformer is not None and not isinstance(self.matformer, MatformerSlice):
            raise VariantError("matformer", f"expected a MatformerSlice, got {type(self.matformer).__name__}")
        if self.matformer is not None and self.matformer.is_empty and self.matformer.preset is None:
            self._set("matformer", None)
        if self.matformer is not None and self.parent_layers() is not None:
            from .matformer.slicing import check_slice

            try:
                check_slice(read_config(self.source).text_config, self.matformer)
            except SliceError as err:
                raise VariantError("matformer", str(err)) from err

    def parent_layers(self) -> int | None:
        """Text layers of the parent checkpoint, when known without network."""
        if "parent_layers" not in self._meta:
            self._meta["parent_layers"] = source_layers(self.source)
        return self._meta["parent_layers"]

    def run_layers(self) -> int | None:
        """Text layers of the model that actually runs (after skipping MatFormer layers)."""
        parent = self.parent_layers()
        if parent is None:
            return None
        return parent - len(self.matformer.skip) if self.matformer else parent

    def _check_sparsity(self) -> None:
        try:
            spec = parse_sparsity(self.sparsity)
            layers = self.run_layers()
            if layers is not None:
                check_layer_count(spec, layers)
        except ValueError as err:
            raise VariantError("sparsity", str(err)) from err
        self._set("sparsity", format_sparsity(spec))

    def _check_speed(self) -> None:
        if self.ple not in PLE_MODES:
            raise VariantError("ple", f"unknown per-layer-embedding placement {self.ple!r}; choose {' or '.join(PLE_MODES)}")
        if self.kv_cache not in KV_CACHES:
            raise VariantError("kv_cache", f"unknown KV cache {self.kv_cache!r}; choose {' or '.join(KV_CACHES)}")
        if self.quant not in QUANTS:
            raise VariantError("quant", f"unknown quantization {self.quant!r}; choose {' or '.join(QUANTS)}")
        for name in BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise VariantError(name, f"must be true or false, got {getattr(self, name)!r}")
        if self.prepack:
            check_feature("prepack", "prepack=true", self.device, self.dtype)
        if self.compile and self.kv_cache != "static":
            raise VariantError("compile", "compiling the decode step needs fixed shapes: set kv_cache=static as well")
        if self.compile:
            check_feature("compile", "kv_cache=static compile=true", self.device, self.dtype)
        if self.fuse_linears and self.quant != "none":
            raise VariantError("fuse_linears", f"fuses float weights; with quant={self.quant} leave it off")
        if self.hugepages:
            check_feature("hugepages", "hugepages=true", self.device, self.dtype)

    # -- derived values -----------------------------------------------------------------------

    @property
    def torch_dtype(self) -> torch.dtype:
        """The torch dtype named by `dtype`."""
        return DTYPES[self.dtype]

    @property
    def warnings(self) -> list[str]:
        """What a person reading this variant's results must know (float16's overflow on real weights)."""
        return dtype_warnings(self.dtype)

    @property
    def text_only(self) -> bool:
        """True when neither the vision nor the audio tower is loaded."""
        return not self.towers

    @property
    def name(self) -> str:
        """Short, stable, human-readable name: the model, then only the knobs that differ from defaults."""
        parts = [self.source.short_name, self.attn, DTYPE_SHORT[self.dtype]]
        if self.device != "cpu":
            parts.append(self.device)
        if self.towers != TOWERS:
            parts.append("text-only" if self.text_only else "+" + "+".join(self.towers))
        if self.matformer is not None:
            parts.append(f"mf:{self.matformer.label}")
        if self.sparsity != "default":
            parts.append(f"sp:{self.sparsity if len(self.sparsity) <= 12 else custom_label(self.sparsity)}")
        parts += [name.replace("_", "-") for name in BOOL_FIELDS if getattr(self, name)]
        parts += [f"ple:{self.ple}"] if self.ple != "resident" else []
        parts += [f"kv:{self.kv_cache}"] if self.kv_cache != "dynamic" else []
        parts += [self.quant] if self.quant != "none" else []
        return " ".join(parts)

    def to_spec(self) -> str:
        """The spec string `parse_variant_spec` reads back into this Variant: the model, then each knob that differs."""
        parts = [self.model]
        for f in knobs()[1:]:
            value = getattr(self, f.name)
            if value == field_default(f):
                continue
            kind = field_kind(f)
            if kind == "slice":  # a preset by name, else its own ffn= / skip= tokens
                parts.append(f"{f.name}={value.preset}" if value.preset else value.spec.replace(";", " "))
                continue
            text = {"bool": lambda v: str(v).lower(), "list": lambda v: ",".join(v) or "text"}.get(kind, str)(value)
            parts.append(f"{f.name}={text}")
        return " ".join(parts)

    def replace(self, **changes: Any) -> Variant:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def unsliced(self) -> Variant:
        """This variant without its MatFormer slice and at the default sparsity: the weights its slice runs on.

        Made once per instance and not validated again (validation reads the model's config, the
        larger part of switching to a new elastic slice): every other field was checked when this
        variant was made, and dropping the slice and the sparsity setting cannot make it invalid.
        """
        if self.matformer is None and self.sparsity == "default":
            return self
        found = self._meta.get("unsliced")
        if found is None:
            found = object.__new__(Variant)
            changes = {"matformer": None, "sparsity": "default", "_meta": {}}
            for f in fields(self):  # in field order, as __init__ sets them
                object.__setattr__(found, f.name, changes.get(f.name, getattr(self, f.name)))
            found._meta.update({key: self._meta[key] for key in ("source", "parent_layers") if key in self._meta})
            self._meta["unsliced"] = found
        return found

    # -- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-ready dict of every field."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        data["towers"] = list(self.towers)
        data["matformer"] = self.matformer.to_dict() if self.matformer else None
        return data

    def to_json(self) -> str:
        """Stable JSON (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> Variant:
        """Build from a dict; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        for key in data:
            if key not in known:
                raise VariantError(key, f"unknown field; known fields are {', '.join(sorted(known))}")
        data = dict(data)
        if data.get("matformer") is not None and isinstance(data["matformer"], dict):
            try:
                data["matformer"] = MatformerSlice.from_dict(data["matformer"])
            except SliceError as err:
                raise VariantError("matformer", str(err)) from err
        if "towers" in data:
            data["towers"] = tuple(data["towers"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Variant:
        """Inverse of `to_json`."""
        return cls.from_dict(json.loads(text))


# -- the knobs as data: what the command line, specs and the app are generated from ------------------


def knobs() -> tuple[Field, ...]:
    """The user-facing Variant fields (those with `knob` metadata), in declaration order."""
    return tuple(f for f in fields(Variant) if "help" in f.metadata)


def variant_fields() -> list[str]:
    """Names of the user-facing Variant fields, in declaration order."""
    return [f.name for f in knobs()]


def field_kind(f: Field) -> str:
    """How a knob's value is written as text: 'bool', 'list' (a tuple of choices), 'slice' or 'text'."""
    annotation = str(f.type)
    if annotation == "bool":
        return "bool"
    if annotation.startswith("tuple"):
        return "list"
    return "slice" if "MatformerSlice" in annotation else "text"


def field_default(f: Field) -> Any:
    """A knob's default value."""
    return f.default_factory() if f.default is MISSING else f.default


BOOL_FIELDS = tuple(f.name for f in knobs() if field_kind(f) == "bool")  # on/off knobs: true/false in specs and JSON
_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_NO_SLICE = ("", "none", "off", "full")


def field_from_text(name: str, text: str, model: str = "tiny") -> Any:
    """The value of knob `name` written as `text` (a flag, a spec token, a text box); `model` sizes slice rules.

    Bools take true/false/yes/no/on/off/1/0; lists are comma (or +) separated, 'text' and 'none' meaning
    empty; a slice is a Lab preset or ffn=...;skip=... ('none' for no slice); anything else stays text.
    """
    known = {f.name: f for f in knobs()}
    if name not in known:
        raise VariantError(name, f"unknown field; known fields are {', '.join(sorted(known))}")
    kind, value = field_kind(known[name]), str(text).strip()
    if kind == "bool":
        if value.lower() not in _BOOL_WORDS:
            raise VariantError(name, f"expected true/false, got {value!r}")
        return _BOOL_WORDS[value.lower()]
    if kind == "list":
        return tuple(t for t in value.replace("+", ",").split(",") if t.strip() and t.strip() not in ("text", "none"))
    if kind == "slice":
        if value.lower() in _NO_SLICE:
            return None
        from .matformer.presets import parse_slice

        try:
            return parse_slice(value, num_text_layers(model))
        except SliceError as err:
            raise VariantError("matformer", str(err)) from err
    return value


def parse_variant_spec(spec: str, check_model: Callable[[str], str] | None = None) -> Variant | RemoteVariant:
    """Parse 'MODEL key=value ...' (or 'key=value,...'), e.g. 'tiny attn=eager sparsity=off towers=text'.

    Keys are the Variant's fields (`knobs()`, '-' or '_'); values are read by `field_from_text`. A
    MatFormer slice is 'matformer=E2B' (a preset) or 'ffn=... skip=...' (see docs/matformer.md).
    `check_model` vets the model named (the app's allow-list) before anything reads it.
    'openai:http://HOST:PORT/v1 model=NAME' names a model behind an OpenAI-compatible server (g3n_core.remote).
    """
    if is_remote_spec(spec):
        return parse_remote_spec(spec)
    raw: dict[str, str] = {}
    for token in spec.replace(";", " ").split():
        key, value = token.split("=", 1) if "=" in token else ("model", token)
        key = key.strip().replace("-", "_")
        if key in raw:
            raise VariantError(key, f"given twice in {spec!r}")
        raw[key] = value
    model = raw.pop("model", "tiny")
    model = check_model(model) if check_model is not None else model
    ffn, skip = raw.pop("ffn", None), raw.pop("skip", None)
    data: dict[str, Any] = {"model": model, **{key: field_from_text(key, value, model) for key, value in raw.items()}}
    if "matformer" in data and (ffn is not None or skip is not None):
        raise VariantError("matformer", "give matformer=PRESET or ffn=.../skip=..., not both")
    if ffn is not None or skip is not None:
        from .matformer.presets import slice_from_parts

        try:
            data["matformer"] = slice_from_parts(ffn, skip, num_text_layers(model))
        except SliceError as err:
            raise VariantError("matformer", str(err)) from err
    return Variant.from_dict(data)


def variant_from_dict(data: dict) -> Variant | RemoteVariant:
    """A Variant, or a RemoteVariant when the dict names an endpoint (`base_url`)."""
    return RemoteVariant.from_dict(data) if "base_url" in data else Variant.from_dict(data)
