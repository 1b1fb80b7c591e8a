"""mini's trainer (g3n_core.builtin.train_mini): parts, learning rates, clipping and the towers' spread log.

One real optimizer step on a handful of examples; the full run is a script (docs/mini.md).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from g3n_core.builtin.train_mini import Trainer, TrainSettings, parameter_parts


def _settings(**overrides) -> TrainSettings:
    small = {"steps": 4, "text_batch": 2, "image_batch": 2, "audio_batch": 2, "micro_batch": 2, "images_per_kind": 2, "asr_clips": 2, "clips_per_word": 1,
             "curriculum": "", "family_weights": "", "audio_probe_weight": 0.0, "audio_warmup_steps": 0}  # v2's recipe off: each test turns on what it checks
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


def test_completion_supervises_every_shots_answer_on_request(trainer):
    from g3n_core.builtin.mini_data.examples import IGNORE

    text, decode = trainer.text, trainer.text.tokenizer.decode
    shots = [("What is 1 plus 2?", "3", "plus"), ("Which is larger, 4 or 9?", "9", "larger")]
    last_only = text.completion("What is 3 plus 4?", "7", "plus", shots)
    every = text.completion("What is 3 plus 4?", "7", "plus", shots, supervise_shots=True)
    assert every.ids == last_only.ids
    assert decode([i for i, label in zip(last_only.ids, last_only.labels) if label != IGNORE]) == " 7\n"
    assert decode([i for i, label in zip(every.ids, every.labels) if label != IGNORE]) == " 3\n 9\n 7\n"
    # each answer's loss is logged under its own family
    assert [(f, decode(every.ids[a:b])) for f, a, b in every.spans] == [("plus", " 3\n"), ("larger", " 9\n"), ("plus", " 7\n")]


def test_family_totals_follow_the_spans(trainer):
    from g3n_core.builtin.mini_data.batches import answer_loss, collate, family_totals

    shots = [("Which is larger, 4 or 9?", "9", "larger")]
    example = trainer.text.completion("What is 3 plus 4?", "7", "plus", shots, supervise_shots=True)
    batch = collate([example])
    logits = torch.randn(1, len(example.ids), trainer.model.config.text_config.vocab_size)
    mean, per_token = answer_loss(logits, batch["labels"])
    totals = {"plus": [0.0, 0], "larger": [0.0, 0]}
    family_totals(per_token, batch["labels"], [example], totals)
    assert totals["plus"][1] == totals["larger"][1] == 3  # " 7\n" and " 9\n", one character each
    assert (totals["plus"][0] + totals["larger"][0]) / 6 == pytest.approx(float(mean), rel=1e-5)


def test_families_are_drawn_by_their_running_loss_above_the_floor(trainer):
    families = trainer.text.families
    saved = dict(trainer.family_loss)
    assert trainer._family_weights() is None  # off by default: the fixed weights
    trainer.s.family_loss_floor = 0.2
    try:
        trainer.family_loss.update({f: 0.01 for f in families} | {"plus": 1.0})
        weights = dict(zip(families, trainer._family_weights()))
        assert weights["plus"] == pytest.approx(5 * weights["letters"])  # 1.0 against the floor 0.2
        assert weights["after_letter"] == pytest.approx(weights["letters"] / 2)  # the fixed half weight stays
        trainer.s.family_loss_floor = 0.0
        assert trainer._family_weights() is None
    finally:
        trainer.family_loss.update(saved)
        trainer.s.family_loss_floor = 0.0


def test_audio_head_learns_digits_and_words_from_soft_tokens():
    from g3n_core.builtin.tower_heads import AudioHead

    torch.manual_seed(0)
    labels = [("asr", "3 7 1"), ("asr", "8 8"), ("translate", "rouge"), ("translate", "deux")]
    head = AudioHead(16, labels)
    tokens = torch.randn(4, 12, 16)
    padding = torch.zeros(4, 12, dtype=torch.bool)
    padding[1, 6:] = True  # a shorter clip
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-2)
    with torch.no_grad():
        first = float(head.loss(tokens, padding, labels))
    for _ in range(60):
        loss = head.loss(tokens, padding, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.2 * first
    assert sorted(head.words) == ["deux", "rouge"]


def test_audio_probe_sends_gradient_into_the_encoder(tmp_path):
    with_head = Trainer(_settings(audio_probe_weight=1.0, text_batch=0, image_batch=0), tmp_path)
    with_head.build_data()
    row = with_head.step(50)
    assert math.isfinite(row["fam_audio_probe"]) and row["fam_audio_probe"] > 0
    assert row["grad_norm_audio"] > 0 and row["loss_audio"] > 0
    assert with_head.audio_head is not None and any(g["part"] == "probe" for g in with_head.optimizer.param_groups)


def test_audio_warmup_trains_the_encoder_and_head_alone(tmp_path):
    trainer = Trainer(_settings(audio_probe_weight=1.0, audio_warmup_steps=30, micro_batch=4), tmp_path)
    trainer.build_data()
    inner = trainer.model.model
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    record = trainer.warm_up_audio()
    moved = {name for name, p in trainer.model.named_parameters() if not torch.equal(p, before[name])}
    assert record["steps"] == 30 and record["head_loss_last"] < record["head_loss_first"]
    assert moved and all(name.startswith("model.audio_tower.") for name in moved)
    assert len(moved) > 0.5 * len(list(inner.audio_tower.parameters()))
    # The run's optimizer carries on from the warm-up: the encoder's moments are there, the decoder's are not yet.
    state = trainer.optimizer.state
    assert all(p in state for p in inner.audio_tower.parameters() if p.requires_grad)
    assert not any(p in state for p in inner.language_model.parameters())


def test_audio_warmup_without_its_head_is_refused():
    with pytest.raises(SystemExit, match="--audio-probe-weight"):
        _settings(audio_warmup_steps=10)


def test_a_text_only_run_draws_no_media(tmp_path):
    trainer = Trainer(_settings(image_batch=0, audio_batch=0, images_per_kind=50, asr_clips=50), tmp_path)
    trainer.build_data()
    assert len(trainer.pool.pixels) == 0 and trainer.pool.features == []
    assert trainer.image_head is None and trainer.audio_head is None
    row = trainer.step(50)
    assert math.isfinite(row["loss_text"]) and "loss_image" not in row


def test_family_weights_override_the_even_draw(tmp_path):
    trainer = Trainer(_settings(family_weights="plus=3, larger=0", image_batch=0, audio_batch=0), tmp_path)
    trainer.build_data()
    weights = dict(zip(trainer.text.families, trainer.text.weights))
    assert weights["plus"] == 3.0 and weights["larger"] == 0.0 and weights["minus"] == 1.0 and weights["alphabet"] == 0.5
    import random

    drawn = {trainer.text.sample(random.Random(n)).family for n in range(300)}
    assert "larger" not in drawn and "plus" in drawn


@pytest.mark.parametrize("bad", ["plus", "plus=x", "plus=-1", "plus=nan", "plus=inf"])
def test_malformed_family_weights_are_refused(bad):
    with pytest.raises(SystemExit, match="--family-weights"):
        _settings(family_weights=bad)


def test_all_zero_family_weights_are_refused_before_the_first_step(tmp_path):
    from g3n_core.builtin.mini import build_mini_processor
    from g3n_core.builtin.mini_data.examples import TextExamples

    families = TextExamples(build_mini_processor()).families
    zeros = ",".join(f"{f}=0" for f in families)
    trainer = Trainer(_settings(family_weights=zeros, image_batch=0, audio_batch=0), tmp_path)
    with pytest.raises(SystemExit, match="every text family at weight 0"):
        trainer.build_data()
    Trainer(_settings(family_weights=zeros, text_batch=0, image_batch=0, audio_batch=0), tmp_path).build_data()  # no text drawn: nothing to refuse


def test_unknown_family_is_refused_with_the_list(tmp_path):
    trainer = Trainer(_settings(family_weights="times=2", image_batch=0, audio_batch=0), tmp_path)
    with pytest.raises(SystemExit, match="names no family times.*plus"):
        trainer.build_data()


def test_curriculum_phases_draw_only_their_families_and_no_media(tmp_path):
    trainer = Trainer(_settings(steps=6, curriculum="2:plus=1; 1:minus=1,plus=0.5"), tmp_path)
    trainer.build_data()
    assert [trainer.phase(step) for step in range(6)] == [1, 1, 2, 0, 0, 0]
    weights = dict(zip(trainer.text.families, trainer._family_weights(2)))
    assert weights["minus"] == 1.0 and weights["plus"] == 0.5 and weights["larger"] == 0.0 and weights["colour"] == 0.0
    import random

    drawn = {trainer.text.sample(random.Random(n), trainer._family_weights(1)).family for n in range(200)}
    assert drawn == {"plus"}
    row = trainer.step(0)
    assert row["phase"] == 1 and "loss_image" not in row and "loss_audio" not in row
    assert set(k for k in row if k.startswith("fam_")) == {"fam_plus"}
    row = trainer.step(3)  # past the phases: the ordinary mix, media included
    assert row["phase"] == 0 and "loss_image" in row and "loss_audio" in row


@pytest.mark.parametrize(
    "bad, message",
    [
        ("plus=1", "STEPS:FAMILY=W"),
        ("x:plus=1", "STEPS:FAMILY=W"),
        ("0:plus=1", "at least one step"),
        ("2:plus=0,minus=0", "no family a weight above 0"),
        ("2:plus=-1", "finite number"),
        ("3:plus=1;2:minus=1", "more steps than --steps"),
    ],
)
def test_malformed_curriculum_is_refused(bad, message):
    with pytest.raises(SystemExit, match=message):
        _settings(curriculum=bad)


def test_curriculum_naming_an_unknown_family_is_refused(tmp_path):
    trainer = Trainer(_settings(curriculum="2:times=1", image_batch=0, audio_batch=0), tmp_path)
    with pytest.raises(SystemExit, match="--curriculum names no family times"):
        trainer.build_data()


def _brute_force_cost(lengths: list[int], size: int, pass_cost: int) -> int:
    """Least padded-token cost over every contiguous cut of the sorted lengths (2^(n-1) cuts)."""
    from itertools import product

    best = None
    for cuts in product((False, True), repeat=len(lengths) - 1):
        groups, start = [], 0
        for i, cut in enumerate(cuts, 1):
            if cut:
                groups.append(lengths[start:i])
                start = i
        groups.append(lengths[start:])
        if all(len(g) <= size for g in groups):
            cost = sum(pass_cost + len(g) * max(g) for g in groups)
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_length_groups_cut_passes_at_the_least_padded_cost(seed):
    import random

    from g3n_core.builtin.mini_data.batches import length_groups
    from g3n_core.builtin.mini_data.examples import Example

    rnd = random.Random(seed)
    examples = [Example([1] * rnd.choice((40, 45, 52, 60, 90, 150, 190, 197)), [1] * 3, "plus") for _ in range(rnd.randint(1, 11))]
    size = rnd.choice((2, 4, 16))
    groups = length_groups(examples, size, pass_cost=80)
    assert sorted(map(id, (e for g in groups for e in g))) == sorted(map(id, examples))
    assert all(0 < len(g) <= size for g in groups)
    lengths = sorted(len(e.ids) for e in examples)
    assert sum(80 + len(g) * max(len(e.ids) for e in g) for g in groups) == _brute_force_cost(lengths, size, 80)


def test_one_long_example_gets_its_own_pass(trainer):
    """A 3-shot completion no longer pads seven chat turns to its length."""
    from g3n_core.builtin.mini_data.batches import length_groups

    chats = [trainer.text.chat("What is 7 plus 5?", "12", "plus") for _ in range(7)]
    shots = [(i.question, i.answer, i.family) for i in trainer.text.fewshot[:3]]
    long = trainer.text.completion("What is 3 plus 4?", "7", "plus", shots)
    groups = length_groups([*chats, long], 16)
    assert [len(g) for g in groups] == [7, 1] and groups[1] == [long]


def test_install_stamps_the_current_version_and_refuses_a_missing_checkpoint(tmp_path):
    from g3n_core.builtin.mini import MINI_VERSION, install_mini
    from g3n_core.errors import ModelSourceError

    run = tmp_path / "run"
    with pytest.raises(ModelSourceError, match="holds no checkpoint"):
        install_mini(run, tmp_path / "installed")
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "model.safetensors").write_bytes(b"\0" * 8)
    (run / "checkpoint" / "g3n_builtin.json").write_text(json.dumps({"name": "mini", "version": MINI_VERSION - 1, "random_weights": False}))
    target = install_mini(run, tmp_path / "installed")
    assert json.loads((target / "g3n_builtin.json").read_text()) == {"name": "mini", "version": MINI_VERSION, "random_weights": False}
    assert (target / "model.safetensors").read_bytes() == b"\0" * 8


def test_the_default_run_is_the_committed_minis_recipe():
    from dataclasses import asdict

    from g3n_core.builtin.mini import mini_record

    recorded = mini_record()["training"]["settings"]
    defaults = {k: v for k, v in asdict(TrainSettings()).items() if k != "save_every"}  # snapshots do not change the weights
    assert {k: recorded.get(k) for k in defaults} == defaults  # `train_mini --out DIR` retrains what is committed


@pytest.mark.parametrize("max_minutes, steps_done", [(0.0, 2), (1e-9, 1)])
def test_a_run_cut_short_by_max_minutes_says_so(tmp_path, capsys, max_minutes, steps_done):
    from g3n_core.builtin.train_mini import train

    train(_settings(steps=2, max_minutes=max_minutes, text_batch=2, image_batch=0, audio_batch=0), tmp_path)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["steps_done"] == steps_done
    assert record["stopped_by_max_minutes"] is (steps_done < 2)
    warned = "stopped the run after 1 of 2 steps" in capsys.readouterr().err
    assert warned is (steps_done < 2)
