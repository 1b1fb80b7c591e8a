"""Totals count what the released files hold: the k/v projections of KV-shared layers too (effective counts unchanged)."""

from __future__ import annotations

import pytest

from g3n_core import Variant, model_info
from g3n_core.info import FILE_ONLY


@pytest.mark.parametrize(("model", "total_b", "effective_b"), [("e2b-shape", 5.44, 1.91), ("e4b-shape", 7.85, 3.98)])
def test_shape_totals_match_the_released_checkpoints(model, total_b, effective_b):
    info = model_info(Variant(model=model, dtype="bfloat16"))
    assert round(info.total_params / 1e9, 2) == total_b
    assert round(info.effective_params / 1e9, 2) == effective_b
    assert info.params[FILE_ONLY] > 0 and info.total_params == sum(info.params.values())
    assert info.total_bytes == 2 * info.total_params
