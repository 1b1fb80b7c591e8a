"""The kinds of CPU this project's machines have, as CpuInfo values a test can pretend to run on."""

from __future__ import annotations

from g3n_core.hardware import CpuInfo

AVX512_FLAGS = frozenset("fma f16c avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni amx_bf16".split())
ZEN3 = CpuInfo("AMD EPYC 7763 64-Core Processor", frozenset("fma f16c avx2".split()), "AVX2", onednn_bf16_reported=False)
XEON = CpuInfo("Intel(R) Xeon(R) Platinum 8480+", AVX512_FLAGS, "AVX512")
# AVX-512 with VNNI but no AVX512_BF16 or AMX (Ice Lake class): oneDNN runs bfloat16 without native dot products.
ICELAKE = CpuInfo("Intel(R) Xeon(R) Processor @ 2.80GHz", AVX512_FLAGS - {"avx512_bf16", "amx_bf16"}, "AVX512")
