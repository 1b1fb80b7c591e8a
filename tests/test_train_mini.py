"""mini's trainer (g3n_core.builtin.train_mini): parts, learning rates, clipping and the towers' spread log.

One real optimizer step on a handful of examples; the full run is a script (docs/mini.md).
"""

from __future__ import annotations

import math

import pytest
import torch

from g3n_core.builtin.train_mini import Trainer, TrainSettings, parameter_parts


def _settings(**overrides) -> TrainSettings:
    small = {"steps": 4, "text_batch": 2, "image_batch": 2, "audio_batch": 2, "micro_batch": 2, "images_per_kind": 2, "asr_clips": 2, "clips_per_word": 1}
    return TrainSettings(**(small | overrides))


@pytest.fixture(scope="module")
def trainer(tmp_path_factory) -> Trainer:
    trainer = Trainer(_settings(), tmp_path_factory.mktemp("run"))
    trainer.build_data()
    return trainer


def test_parts_cover_every_parameter_once(trainer):
    parts = parameter_parts(trainer.model)
    ids = [id(p) for params in parts.values() for p in params]
    assert len(ids) == len(set(ids)) == len(list(trainer.model.parameters()))
    vision = {id(p) for p in trainer.model.model.vision_tower.parameters()}
    assert {id(p) for p in parts["vision"]} == vision


def test_unskipped_vision_blocks_start_open(trainer):
    gammas = [(b.has_skip, b.layer_scale.gamma) for b in trainer.model.model.vision_tower.modules() if hasattr(getattr(b, "layer_scale", None), "gamma")]
    assert any(not skip for skip, _ in gammas) and any(skip for skip, _ in gammas)
    for skip, gamma in gammas:
        if skip:  # near-identity residual blocks keep timm's start
            assert float(gamma.detach().abs().max()) < 1e-3
        else:
            assert torch.allclose(gamma.detach(), torch.ones_like(gamma), atol=0.05)


def test_closed_layer_scales_on_request(tmp_path):
    closed = Trainer(_settings(open_layer_scales=False), tmp_path)
    gammas = [b.layer_scale.gamma for b in closed.model.model.vision_tower.modules() if hasattr(getattr(b, "layer_scale", None), "gamma")]
    assert max(float(g.detach().abs().max()) for g in gammas) < 1e-3


def test_one_step_uses_each_parts_learning_rate_and_logs_spread(trainer):
    row = trainer.step(50)  # past warm-up
    s = trainer.s
    by_part = {g["part"]: g["lr"] for g in trainer.optimizer.param_groups}
    assert by_part["text"] == pytest.approx(row["lr"])
    assert by_part["vision"] == pytest.approx(row["lr"] * s.vision_lr_scale)
    assert by_part["audio"] == pytest.approx(row["lr"] * s.audio_lr_scale)
    assert math.isfinite(row["loss"]) and row["loss"] > 0
    for part in ("text", "vision", "audio"):
        assert row[f"grad_norm_{part}"] > 0
    # two different pictures and two different clips: the towers' outputs differ between them
    assert 0 < row["spread_vision"] < 2 and 0 < row["spread_audio"] < 2
    # the spread is one step's: a step without pictures logs none
    trainer.s.image_batch = 0
    try:
        assert math.isnan(trainer.step(51)["spread_vision"])
    finally:
        trainer.s.image_batch = 2
