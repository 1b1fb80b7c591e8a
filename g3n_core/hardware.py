"""What this machine can run: the CPU's instruction sets as this process may use them, and the speed features that follow.

Machines differ (Intel Xeons with AVX-512 BF16/VNNI, AMD EPYC Zen 3 with AVX2 only), and so do the
kernels each speed feature needs. `cpu_info()` reads, once per process:

- the CPU's flags (`/proc/cpuinfo`) and model name;
- torch's CPU capability (`torch.backends.cpu.get_cpu_capability()`: the ATen kernels in use, which
  `ATEN_CPU_CAPABILITY=avx2` caps);
- oneDNN's ceiling, `ONEDNN_MAX_CPU_ISA` (e.g. `AVX2`), and what torch's oneDNN says it can do in
  bfloat16 (`torch.ops.mkldnn._is_mkldnn_bf16_supported()`, which honours that ceiling).

So a process started with `ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2` sees exactly what an
AVX2-only CPU offers these two libraries (how the benchmarks simulate one), and tests replace
`cpu_info` to check both kinds of machine on either. `feature_support()` says, per speed feature,
whether it runs and why; `check_feature()` is what `Variant` calls.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import VariantError
from .host import cpu_model

# oneDNN's ISA names for ONEDNN_MAX_CPU_ISA, lowest first (aliases share a rank).
ONEDNN_ISA_RANK = {
    "SSE41": 0, "AVX": 1, "AVX2": 2, "AVX2_VNNI": 3, "AVX2_VNNI_2": 4, "AVX512_CORE": 5, "AVX512_CORE_VNNI": 6,
    "AVX512_CORE_BF16": 7, "AVX10_1_512": 8, "AVX512_CORE_FP16": 8, "AVX10_1_512_AMX": 9, "AVX512_CORE_AMX": 9,
    "AVX10_1_512_AMX_FP16": 10, "AVX512_CORE_AMX_FP16": 10, "AVX10_2_512": 11, "AVX10_2_512_AMX_2": 12,
}  # fmt: skip
AVX512_CORE_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512dq")
# Environment variables that cap what the libraries use (the simulation of an AVX2-only machine sets all three).
SIMULATE_AVX2_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
# On CPUs with AMX, oneDNN's packed bfloat16 kernel uses it for some shapes (one-token products with 8192
# inputs, 33+ tokens) and sums in another order than plain transformers' product; capped below AMX the
# packed kernel is bit-identical for every shape (measured on e2b-shape's, 1..128 tokens, on a Sapphire
# Rapids Xeon). Without native bfloat16 instructions (AVX-512 without AVX512_BF16: Ice Lake class) the
# packed kernel rounds 2 outputs in a million differently, by at most half a bfloat16 step of the row's
# largest output, mostly at odd token counts, under any cap (e2b-shape's, 1..128 tokens, measured
# 2026-12-06; tests/test_hardware.py checks both promises).
IDENTICAL_PREPACK_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}
_IDENTICAL_PREPACK_SETTING = " ".join(f"{k}={v}" for k, v in IDENTICAL_PREPACK_ENV.items())
CXX_NAMES = ("g++", "c++", "clang++")
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU as this process may use it."""

    model: str
    flags: frozenset[str]
    aten_capability: str  # torch's CPU capability: "AVX512", "AVX2", "DEFAULT", ...
    onednn_max_isa: str | None = None  # ONEDNN_MAX_CPU_ISA when set
    onednn_bf16_reported: bool = True  # torch.ops.mkldnn._is_mkldnn_bf16_supported() in this process
    cxx: str | None = "g++"  # the C++ compiler torch.compile's CPU backend would call
    caps: tuple[str, ...] = ()  # the SIMULATE_AVX2_ENV variables set in this process, as NAME=VALUE

    def _onednn_allows(self, isa: str) -> bool:
        cap = (self.onednn_max_isa or "").upper()
        return cap not in ONEDNN_ISA_RANK or ONEDNN_ISA_RANK[cap] >= ONEDNN_ISA_RANK[isa]

    @property
    def onednn_bf16(self) -> bool:
        """oneDNN runs bfloat16 (packing, native bf16 kernels): AVX-512 BW/VL/DQ or AVX-NE-CONVERT, within its ISA ceiling."""
        avx512 = all(f in self.flags for f in AVX512_CORE_FLAGS) and self._onednn_allows("AVX512_CORE")
        ne_convert = "avx_ne_convert" in self.flags and self._onednn_allows("AVX2_VNNI_2")
        return self.onednn_bf16_reported and (avx512 or ne_convert)

    @property
    def onednn_native_bf16(self) -> bool:
        """oneDNN's bfloat16 kernels have the CPU's bfloat16 dot products (AVX512_BF16) and may use them."""
        return self.onednn_bf16 and "avx512_bf16" in self.flags and self._onednn_allows("AVX512_CORE_BF16")

    @property
    def onednn_amx(self) -> bool:
        """oneDNN may use AMX tiles for bfloat16 (the CPU has them and no ceiling below AMX is set)."""
        return "amx_bf16" in self.flags and self._onednn_allows("AVX512_CORE_AMX")

    @property
    def simd(self) -> str:
        """The widest vector ISA the ATen kernels use, as people name it (AVX-512, AVX2, ...)."""
        return {"AVX512": "AVX-512", "AVX2": "AVX2"}.get(self.aten_capability.upper(), self.aten_capability)

    @property
    def flag_isa(self) -> str:
        """The widest vector ISA the CPU's flags name, before any cap."""
        if all(f in self.flags for f in AVX512_CORE_FLAGS):
            return "AVX-512"
        return "AVX2" if "avx2" in self.flags else "no AVX2"

    @property
    def limits(self) -> str:
        """The environment caps in force, for messages ('' when none)."""
        return f" (capped to {self.simd} by {' '.join(self.caps)})" if self.caps else ""

    def describe(self) -> str:
        """One line: the model, the ISA in use, oneDNN's bfloat16."""
        kind = "AMX" if self.onednn_amx else "AVX512_BF16" if self.onednn_native_bf16 else "no bfloat16 instructions"
        bf16 = f"oneDNN bfloat16 kernels ({kind})" if self.onednn_bf16 else "no oneDNN bfloat16 kernels"
        return f"{self.model}: {self.simd} kernels, {bf16}{self.limits}"


def _cpu_flags() -> frozenset[str]:
    """The instruction-set flags of /proc/cpuinfo (empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """What this process's CPU runs (read once)."""
    import torch

    compiler = os.environ.get("CXX") or next((name for name in CXX_NAMES if shutil.which(name)), None)
    return CpuInfo(
        model=cpu_model(),
        flags=_cpu_flags(),
        aten_capability=torch.backends.cpu.get_cpu_capability(),
        onednn_max_isa=os.environ.get("ONEDNN_MAX_CPU_ISA") or None,
        onednn_bf16_reported=bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        cxx=compiler if compiler and shutil.which(compiler) else None,
        caps=tuple(f"{k}={os.environ[k]}" for k in SIMULATE_AVX2_ENV if os.environ.get(k)),
    )


@dataclass(frozen=True)
class Support:
    """Whether a feature runs on this machine for a device and dtype, and why (or what is missing)."""

    feature: str  # as a Variant spec: "prepack=true", "quant=int8", ...
    available: bool
    why: str


def thp_mode() -> str:
    """The kernel's transparent-huge-page mode ('always', 'madvise' or 'never'; 'never' where unknown)."""
    try:
        text = THP_SETTING.read_text()
    except OSError:
        return "never"
    return text[text.index("[") + 1 : text.index("]")] if "[" in text else "never"


def _cpu_features(cpu: CpuInfo, dtype: str) -> list[Support]:
    bf16 = dtype == "bfloat16"
    packed = Support("prepack=true", cpu.onednn_bf16 and bf16, (
        "bfloat16 only (in float32 MKL is faster and the packed kernel is not bit-identical)" if not bf16 else
        "oneDNN bfloat16 kernels with AMX: faster decode, but AMX sums some products in another order than plain "
        f"transformers, so greedy tokens can differ; start the process with {_IDENTICAL_PREPACK_SETTING} for bit-identical results"
        if cpu.onednn_bf16 and cpu.onednn_amx else
        "oneDNN bfloat16 kernels: bit-identical, faster decode" if cpu.onednn_native_bf16 else
        "oneDNN bfloat16 kernels without the CPU's bfloat16 instructions (no AVX512_BF16): faster decode, but the packed "
        "kernel rounds a few outputs in a million differently from plain transformers' product, so greedy tokens can "
        "differ; no ONEDNN_MAX_CPU_ISA setting makes them equal on this CPU" if cpu.onednn_bf16 else
        f"needs oneDNN's bfloat16 kernels, i.e. AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT; this CPU has {cpu.flag_isa}{cpu.limits}"
    ))  # fmt: skip
    int8_kernel = f"ATen's {cpu.simd} kernel" if cpu.simd in ("AVX-512", "AVX2") else "ATen's scalar kernel (slow: no AVX2)"
    quant = Support("quant=int8", True, f"torch._weight_int8pack_mm, {int8_kernel}; lossy")
    sparse = Support("sparse_ffn=true", True, "gathers the surviving neurons' rows; exact up to summation order")
    compiled = Support("kv_cache=static compile=true", cpu.cxx is not None, (
        f"inductor with {cpu.cxx}, {cpu.simd} code; no faster than eager on the CPU (bandwidth-bound)" if cpu.cxx else
        "torch.compile on the CPU needs a C++ compiler (g++ or clang++; set CXX); none found"
    ))  # fmt: skip
    matmul = Support("dtype=bfloat16", True, (
        "oneDNN's bfloat16 kernels, with the CPU's bfloat16 dot products" if cpu.onednn_native_bf16 else
        "oneDNN's bfloat16 kernels (bfloat16 converted to float32 arithmetic: no AVX512_BF16)" if cpu.onednn_bf16 else
        f"ATen's {cpu.simd} kernels (bfloat16 converted to float32 arithmetic; no oneDNN bfloat16 on {cpu.simd})"
    ))  # fmt: skip
    fused = Support("fuse_linears=true", True, "one stacked product per q|k|v and gate|up (bit-identical on ATen's and oneDNN's kernels)")
    thp = thp_mode()
    huge = Support("hugepages=true", thp != "never", (
        f"weights copied into 2 MiB transparent huge pages (kernel THP mode: {thp})" if thp != "never" else
        "the kernel's transparent huge pages are off (/sys/kernel/mm/transparent_hugepage/enabled: never)"
    ))  # fmt: skip
    return [packed, quant, sparse, compiled, matmul, fused, huge]


def feature_support(device: str = "cpu", dtype: str = "bfloat16", cpu: CpuInfo | None = None) -> list[Support]:
    """Each speed feature on `device` at `dtype`: available or not, and why."""
    common = [
        Support("ple=mmap", True, "per-layer embeddings read from the mapped checkpoint (any machine)"),
        Support("kv_cache=static", True, "transformers' static cache (any machine)"),
    ]
    if device.startswith("cuda"):
        gpu = [
            Support("prepack=true", False, "a CPU feature (oneDNN); on a GPU the plain kernels are used"),
            Support("quant=int8", True, "torch._weight_int8pack_mm on CUDA (bfloat16/float16; float32 dequantises per product)"),
            Support("sparse_ffn=true", True, "gathers the surviving neurons' rows"),
            Support("kv_cache=static compile=true", True, "CUDA graphs (mode reduce-overhead)"),
            Support("fuse_linears=true", True, "one stacked product per q|k|v and gate|up"),
            Support("hugepages=true", False, "a CPU feature (host-memory page size); GPU weights live on the GPU"),
        ]
        return gpu + common
    return _cpu_features(cpu or cpu_info(), dtype) + common


def check_feature(field: str, feature: str, device: str, dtype: str) -> None:
    """Raise a one-line VariantError when `feature` cannot run here, naming what is missing and what does run."""
    rows = feature_support(device, dtype)
    row = next(r for r in rows if r.feature == feature)
    if row.available:
        return
    others = [r.feature for r in rows if r.available and r.feature != feature and not r.feature.startswith("dtype=")]
    raise VariantError(field, f"{row.why}. Runs here ({device}, {dtype}): {', '.join(others) or 'no speed features'}")


def features_table(device: str = "cpu", dtype: str = "bfloat16") -> list[dict]:
    """JSON-ready rows of feature_support, for the CLI and the app."""
    return [{"feature": r.feature, "available": r.available, "why": r.why} for r in feature_support(device, dtype)]


def features_note(device: str = "cpu", dtype: str = "bfloat16") -> str:
    """One line for the app: this CPU, and the speed features that do not run here with why."""
    missing = [f"{r.feature} ({r.why})" for r in feature_support(device, dtype) if not r.available]
    where = cpu_info().describe() if device == "cpu" else device
    return f"{where}. " + (f"Not available here: {'; '.join(missing)}" if missing else "Every speed feature runs here")
