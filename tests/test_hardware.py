"""CPU features decide what runs: detection honours the ISA caps, Variants refuse what cannot run, both kinds of machine."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch
from cpu_kinds import AVX512_FLAGS, ICELAKE, XEON, ZEN3

from g3n_core import Variant, VariantError, hardware
from g3n_core.cli import main
from g3n_core.hardware import SIMULATE_AVX2_ENV, CpuInfo

REAL = hardware.cpu_info()  # before any test replaces it


@pytest.fixture(params=[ZEN3, XEON], ids=["avx2", "avx512"])
def machine(request, monkeypatch):
    """Each test runs as if on an AVX2-only AMD EPYC and on an AVX-512 Xeon."""
    monkeypatch.setattr(hardware, "cpu_info", lambda: request.param)
    return request.param


def test_the_simulated_avx2_machine_is_what_the_libraries_see():
    """Under the caps the benchmarks use, torch reports AVX2 and oneDNN refuses bf16 packing exactly as on an AMD EPYC."""
    probe = (
        "import json, torch\n"
        "from g3n_core.hardware import cpu_info\n"
        "info = cpu_info()\n"
        "try:\n"
        "    torch.ops.mkldnn._reorder_linear_weight(torch.ones(16, 16, dtype=torch.bfloat16), 1); error = ''\n"
        "except RuntimeError as err:\n"
        "    error = str(err)\n"
        "print(json.dumps({'aten': torch.backends.cpu.get_cpu_capability(), 'bf16': info.onednn_bf16, 'simd': info.simd, 'error': error}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **SIMULATE_AVX2_ENV}, capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["aten"] == "AVX2" and seen["simd"] == "AVX2" and seen["bf16"] is False
    assert "bf16 path needs the cpu support avx_ne_convert or avx512bw" in seen["error"]


def test_detection_agrees_with_torch_here():
    info = hardware.cpu_info()
    assert info.aten_capability == torch.backends.cpu.get_cpu_capability()
    assert info.onednn_bf16 == (info.onednn_bf16_reported and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def test_onednn_cap_alone_turns_bf16_off():
    capped = CpuInfo("x", AVX512_FLAGS, "AVX512", onednn_max_isa="AVX2")
    assert XEON.onednn_bf16 and not capped.onednn_bf16 and not ZEN3.onednn_bf16
    assert CpuInfo("x", frozenset({"avx2", "avx_ne_convert"}), "AVX2").onednn_bf16  # AVX-NE-CONVERT (Arrow Lake, Sierra Forest)


def test_prepack_runs_only_where_onednn_has_bfloat16(machine):
    if machine.onednn_bf16:
        assert Variant(dtype="bfloat16", prepack=True).prepack
        return
    with pytest.raises(VariantError) as caught:
        Variant(dtype="bfloat16", prepack=True)
    message = str(caught.value)
    assert caught.value.field == "prepack" and "\n" not in message
    assert "AVX-512" in message and "AVX2" in message  # what is missing, what the CPU has
    assert "sparse_ffn=true" in message and "quant=int8" in message  # what runs instead


def test_prepack_in_float32_is_refused_on_every_cpu(machine):
    with pytest.raises(VariantError, match="bfloat16 only"):
        Variant(dtype="float32", prepack=True)


def test_compile_needs_a_cxx_compiler(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_info", lambda: CpuInfo("x", AVX512_FLAGS, "AVX512", cxx=None))
    with pytest.raises(VariantError, match="C\\+\\+ compiler") as caught:
        Variant(kv_cache="static", compile=True)
    assert caught.value.field == "compile"


def test_info_features_lists_every_feature_with_its_reason(machine, capsys):
    assert main(["info", "--features", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    rows = {row["feature"]: row for row in table["features"]}
    assert {"prepack=true", "quant=int8", "sparse_ffn=true", "ple=mmap", "kv_cache=static compile=true"} <= set(rows)
    assert rows["prepack=true"]["available"] == machine.onednn_bf16
    assert rows["quant=int8"]["available"] and machine.simd in rows["quant=int8"]["why"]
    assert machine.model in table["cpu"]
    assert main(["info", "--features"]) == 0
    assert ("NOT available" in capsys.readouterr().out) != machine.onednn_bf16
    assert ("prepack=true" in hardware.features_note()) != machine.onednn_bf16  # the model panel's line


def test_sparse_ffn_chooses_its_bfloat16_product_by_cpu(machine):
    from tests.test_speed_sparse_ffn import _mlp

    from g3n_core.speed.sparse_ffn import SparseDecodeMLP

    dense = _mlp(0.95, torch.bfloat16)
    sparse = SparseDecodeMLP(dense)
    assert sparse.down_rows.float32_combine == (not machine.onednn_bf16)
    x = torch.randn(1, 1, dense.hidden_size, dtype=torch.bfloat16)
    with torch.inference_mode():
        torch.testing.assert_close(sparse(x).float(), dense(x).float(), rtol=2e-2, atol=2e-2)


def test_roofline_measures_only_layouts_that_run(machine):
    from g3n_core.speed.roofline import measure_matvec

    if machine.onednn_bf16 and not REAL.onednn_bf16:
        pytest.skip("packing really runs here, so it needs a CPU with oneDNN bfloat16")

    _, kernel = measure_matvec(dtype=torch.bfloat16, total_bytes=1 << 20, repeats=1, shapes=((256, 256),))
    assert machine.onednn_bf16 or "oneDNN" not in kernel


@pytest.mark.skipif(not REAL.onednn_bf16, reason="prepack needs oneDNN bfloat16 (AVX-512 or AVX-NE-CONVERT); this CPU has neither")
def test_prepack_is_bit_identical_where_it_runs():
    from g3n_core import load_model

    plain = load_model(Variant(dtype="bfloat16", towers=()))
    packed = load_model(Variant(dtype="bfloat16", towers=(), prepack=True))
    assert packed.extras["packed_linears"] > 0
    ids = torch.tensor([[2, 1000, 1001, 1002, 1003]])
    with torch.inference_mode():
        assert torch.equal(plain.model(ids).logits, packed.model(ids).logits)


def test_amx_is_named_and_prepack_says_how_to_stay_bit_identical():
    amx = XEON  # its flags include amx_bf16
    no_amx = CpuInfo("x", AVX512_FLAGS - {"amx_bf16"}, "AVX512")
    capped = CpuInfo("x", AVX512_FLAGS, "AVX512", onednn_max_isa=hardware.IDENTICAL_PREPACK_ENV["ONEDNN_MAX_CPU_ISA"])
    assert amx.onednn_amx and not no_amx.onednn_amx and not capped.onednn_amx and capped.onednn_bf16
    why = {cpu: next(r.why for r in hardware.feature_support(cpu=cpu) if r.feature == "prepack=true") for cpu in (amx, no_amx, capped)}
    assert "ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16" in why[amx] and "differ" in why[amx]
    assert why[no_amx] == why[capped] and "bit-identical" in why[no_amx] and "differ" not in why[no_amx]


def test_without_native_bfloat16_prepack_runs_but_promises_no_identity():
    icelake_capped = dataclasses.replace(ICELAKE, onednn_max_isa=hardware.IDENTICAL_PREPACK_ENV["ONEDNN_MAX_CPU_ISA"])
    for cpu in (ICELAKE, icelake_capped):
        assert cpu.onednn_bf16 and not cpu.onednn_native_bf16 and not cpu.onednn_amx
        packed = next(r for r in hardware.feature_support(cpu=cpu) if r.feature == "prepack=true")
        assert packed.available and "differ" in packed.why and "bit-identical" not in packed.why


_PACKED_AGAINST_PLAIN = """
import json, torch
from g3n_core.speed.prepack import pack_weight, packed_linear
torch.manual_seed(0)
differing, worst = 0, 0.0
for out_f, in_f in ((2048, 8192), (8192, 2048)):
    w = (torch.randn(out_f, in_f) * 0.02).bfloat16()
    p = pack_weight(w)
    for m in (1, 2, 3, 16, 33, 64, 127):
        x = torch.randn(1, m, in_f).bfloat16()
        plain, packed = torch.nn.functional.linear(x, w).float(), packed_linear(x, p).float()
        step = torch.exp2(torch.floor(torch.log2(plain.abs().amax(-1, keepdim=True))) - 7)  # a bf16 step of the row's largest
        differing += int((plain != packed).sum())
        worst = max(worst, ((plain - packed).abs() / step).max().item())
print(json.dumps({"differing": differing, "worst_steps": worst}))
"""


@pytest.mark.skipif(not REAL.onednn_bf16, reason="prepack needs oneDNN's bfloat16 kernels (AVX-512); this CPU has none")
def test_prepacks_advice_holds_on_e2b_shapes():
    """Started as prepack's advice says, e2b-shape's packed products equal plain ones bit for bit where it promises so, else nearly."""
    env = {**os.environ, **hardware.IDENTICAL_PREPACK_ENV}
    advised = dataclasses.replace(REAL, onednn_max_isa=env["ONEDNN_MAX_CPU_ISA"])
    why = next(r.why for r in hardware.feature_support(cpu=advised) if r.feature == "prepack=true")
    done = subprocess.run([sys.executable, "-c", _PACKED_AGAINST_PLAIN], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.splitlines()[-1])
    if "bit-identical" in why:
        assert measured["differing"] == 0, (REAL.model, measured)
    else:
        assert "differ" in why and measured["worst_steps"] <= 1.0, (REAL.model, measured)
