"""Each knob is defined once: Variant fields and GenerationSettings carry their help and choices, and the command
lines, spec strings, the model panel, the chat's sliders and the /chat API are generated from them."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from app_fixtures import tiny_bench

from g3n_core import GenerationSettings, MatformerSlice, Variant, parse_variant_spec
from g3n_core.cli import build_parser
from g3n_core.generation import user_settings
from g3n_core.knobs import flag, settings_from_args, variant_from_args
from g3n_core.variant import knobs

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
NON_DEFAULT = dict(attn="eager", dtype="bfloat16", towers=("audio",), sparsity="0.9@0-4", matformer=MatformerSlice(ffn=(256,) * 14, skip=(7,)),
                   sparse_ffn=True, ple="mmap", kv_cache="static", compile=True, quant="int8", prepack=True)


def test_every_variant_field_has_help_and_a_flag_in_generate_info_and_app_help():
    assert [f.name for f in knobs()] == [n for n in Variant.__dataclass_fields__ if not n.startswith("_")]
    assert all(f.metadata["label"] and f.metadata["help"] for f in knobs())
    outputs = [subprocess.run([sys.executable, *cmd, "--help"], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300).stdout
               for cmd in (["-m", "g3n_core", "generate"], ["-m", "g3n_core", "info"], ["app.py"])]
    for f in knobs():
        for out in outputs:
            assert flag(f.name) in out, (f.name, out[:200])
    assert "--prepack, --no-prepack" in outputs[0] and "choices: resident, mmap" in " ".join(outputs[2].split())


def test_evals_run_help_lists_every_spec_key(capsys):
    from evals.cli import build_parser as evals_parser

    with pytest.raises(SystemExit):
        evals_parser().parse_args(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "MODEL" in shown and all(f.name in shown for f in knobs()[1:]) and "kv_cache=dynamic|static" in shown


def test_every_field_is_settable_from_the_command_line(bf16_cpu):
    args = build_parser().parse_args(["generate", "hi", "--attn", "eager", "--dtype", "bf16", "--towers", "audio", "--sparsity", "0.9@0-4",
                                      "--matformer", "ffn=256*14;skip=7", "--sparse-ffn", "--ple", "mmap", "--kv-cache", "static", "--compile",
                                      "--quant", "int8", "--prepack", "--temperature", "0.5", "--repetition-penalty", "1.1"])
    assert variant_from_args(args) == Variant(**NON_DEFAULT)
    assert settings_from_args(args) == GenerationSettings(temperature=0.5, repetition_penalty=1.1)
    plain = build_parser().parse_args(["generate", "hi"])
    assert variant_from_args(plain, ()) == Variant(towers=())  # tiny on the CPU: float32; towers from the inputs
    assert settings_from_args(plain) == GenerationSettings()  # the CLI's defaults are GenerationSettings'


def test_every_field_round_trips_through_a_spec_string(bf16_cpu):
    variant = Variant(**NON_DEFAULT)
    assert parse_variant_spec(variant.to_spec()) == variant
    assert Variant().to_spec() == "tiny" and parse_variant_spec("tiny prepack=true dtype=bf16").prepack
    preset = Variant(model="e4b-shape", dtype="bfloat16", matformer=MatformerSlice(ffn=(8192,) * 30, skip=(20, 21, 22, 23, 24), preset="E2B"))
    assert preset.to_spec() == "e4b-shape dtype=bfloat16 matformer=E2B" and parse_variant_spec(preset.to_spec()) == preset


@pytest.fixture(scope="module")
def demo(tiny, tmp_path_factory):
    from app.ui import build_demo

    return build_demo(tiny_bench(tiny, tmp_path_factory.mktemp("runs")))


def _by_id(demo) -> dict:
    return {block.elem_id: block for block in demo.blocks.values() if getattr(block, "elem_id", None)}


def test_the_model_panel_has_a_control_for_every_variant_field(demo):
    blocks = _by_id(demo)
    for f in knobs():
        control = blocks[f"knob-{f.name}"]
        assert control.label == f.metadata["label"], f.name
        if f.metadata["choices"] and f.name != "towers":
            assert [c[1] for c in control.choices] == list(f.metadata["choices"]), f.name


def test_sliders_api_and_cli_share_generation_settings_defaults(demo, tiny):
    from app import chat_handlers as h

    blocks, defaults = _by_id(demo), GenerationSettings()
    for f in user_settings():
        control = blocks[f.name.replace("_", "-")]
        assert control.value == getattr(defaults, f.name), f.name
    assert blocks["max-new-tokens"].maximum == tiny.context_length  # the slider stops at the model's context
    params = list(inspect.signature(h.api_chat).parameters.values())[5:]
    assert [p.name for p in params] == list(h.SETTING_NAMES) == [f.name for f in user_settings()]
    assert [p.default for p in params] == [getattr(defaults, n) for n in h.SETTING_NAMES]
    assert defaults.temperature == 0 and not defaults.do_sample  # greedy everywhere by default


def test_the_max_new_tokens_slider_follows_the_sessions_model(tiny, tmp_path):
    from app.chat_tab import context_limit

    bench = tiny_bench(tiny, tmp_path)
    shape = Variant(model="e2b-shape", dtype="bfloat16", towers=())

    class Contexts:  # the context lengths the cache would report, without building e2b-shape
        def get(self, variant, progress=None):
            return type("Loaded", (), {"context_length": 32768 if variant == shape else tiny.context_length})()

    bench.cache = Contexts()
    assert context_limit(bench, shape).maximum == 32768 and context_limit(bench, tiny.variant).maximum == tiny.context_length


def test_a_matformer_slice_keeps_the_base_variants_sparsity_and_speed_knobs(tiny, tmp_path):
    from app import matformer_tab as m

    base = Variant(sparsity="0.9", sparse_ffn=True, kv_cache="static", compile=True, quant="int8", ple="mmap", attn="eager")
    bench = tiny_bench(tiny, tmp_path)
    bench.default_variant = base
    slc = MatformerSlice(ffn=(256,) * 14, skip=(7,))
    assert m.slice_variant(bench, "tiny", slc) == base.replace(matformer=slc)


def test_no_cli_module_is_imported_by_the_app_or_the_matformer_cli():
    for path in [*ROOT.glob("app/*.py"), ROOT / "g3n_core/matformer/cli.py", ROOT / "g3n_core/knobs.py", ROOT / "g3n_core/variant.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert module not in ("g3n_core.cli", "..cli", ".cli"), (path, module)
