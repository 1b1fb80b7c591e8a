"""Every knob of a mini training run, documented once: train_mini's command line is built from these fields."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .mini_data.families import TRAINING_SEEDS


def _knob(default, help: str):  # noqa: A002 - argparse's word
    return field(default=default, metadata={"help": help})


@dataclass
class TrainSettings:
    """Every knob of a training run; the command line is built from these fields."""

    seed: int = _knob(0, f"random seed, in {TRAINING_SEEDS.start}..{TRAINING_SEEDS.stop - 1} (evaluation uses one outside)")
    steps: int = _knob(11500, "optimizer steps, the --curriculum phases included (mini v2: 11 500 in 85 minutes of 2 cores; 0.23 s per phase step, 0.78 s per mixed step)")
    text_batch: int = _knob(8, "text examples per step (chat and completion forms)")
    image_batch: int = _knob(4, "image examples per step")
    audio_batch: int = _knob(2, "speech examples per step (transcription and translation)")
    micro_batch: int = _knob(16, "most examples per forward pass (text is sorted by length and cut into the passes that cost the fewest padded tokens)")
    lr: float = _knob(3e-3, "peak learning rate (AdamW; linear warm-up, cosine decay to a tenth of it)")
    warmup: int = _knob(100, "warm-up steps")
    weight_decay: float = _knob(0.01, "AdamW weight decay")
    vision_lr_scale: float = _knob(0.01, "the vision tower's learning rate as a fraction of --lr (MobileNetV5 at this width collapses above ~1e-4; docs/mini.md)")
    audio_lr_scale: float = _knob(1.0, "the audio encoder's learning rate as a fraction of --lr")
    image_probe_weight: float = _knob(
        1.0,
        "weight of an auxiliary loss: a small head (not saved) names each training picture's colour, shape, count or word from "
        "its soft tokens, so the tower learns to tell pictures apart before the decoder reads them (0: off)",
    )
    audio_probe_weight: float = _knob(
        1.0,
        "weight of an auxiliary loss on the audio encoder: a small head (not saved) spells each transcription clip's digits "
        "(CTC) and names each translation clip's word from its soft tokens (0: off)",
    )
    audio_warmup_steps: int = _knob(
        1000,
        "before the run, train the audio encoder and its head alone (no decoder) for this many steps of --micro-batch clips, "
        "so the clips are told apart before the decoder settles on answering without them (needs --audio-probe-weight)",
    )
    clip_per_part: bool = _knob(True, "clip the gradient norm to 1 per part (decoder, vision tower, audio encoder) rather than over the whole model (v1)")
    open_layer_scales: bool = _knob(True, "start the vision blocks without a skip at layer scale 1, not timm's 1e-5 (which shrinks everything after them to ~1e-5)")
    supervise_shots: bool = _knob(False, "completion examples also carry loss on their shots' answers (off: the last answer only, as v1)")
    family_loss_floor: float = _knob(
        0.0,
        "draw text families in proportion to their running answer-token loss, never below this, so learnt families "
        "(letter counts, colours) stop taking the steps that arithmetic and comparison need (0: fixed weights, as v1; "
        "the one run with 0.2 lost colour facts, docs/mini.md)",
    )
    family_weights: str = _knob(
        "plus=1.5,minus=1.5,larger=2",
        "text families' sampling weights as FAMILY=W,... (e.g. plus=3,minus=3,larger=3); families not named keep the even "
        "draw (1; alphabet and after_letter 0.5); '' draws every family evenly",
    )
    curriculum: str = _knob(
        "2400:plus=1;2000:minus=1,plus=0.25;3100:larger=1,plus=0.2,minus=0.2",
        "text-only phases before the mixed steps, as STEPS:FAMILY=W,...;STEPS:...; each phase draws only the families it "
        "names, by their weights, and trains no pictures or speech; the --steps left after them are the ordinary mix "
        "(the default is mini v2's: addition leaves its plateau only with ~16 000 examples of its own, docs/mini.md; '' for none)",
    )
    p_full: float = _knob(0.5, "probability that a step trains the whole model rather than a nested sub-model")
    p_skip: float = _knob(0.5, "probability that a sub-model step also skips one of the ladder's layer sets")
    images_per_kind: int = _knob(1200, "pictures drawn per image family (colour, shape, count, word)")
    asr_clips: int = _knob(1500, "spoken digit strings for transcription")
    clips_per_word: int = _knob(40, "spoken clips per translation word")
    threads: int = _knob(2, "torch CPU threads")
    max_minutes: float = _knob(87.0, "stop early after this many wall-clock minutes of training, so a slower machine stays in the 90-minute budget (0: no limit)")
    save_every: int = _knob(0, "also write a loadable snapshot to DIR/snapshot every this many steps (0: only at the end)")

    def __post_init__(self) -> None:
        if self.seed not in TRAINING_SEEDS:
            raise SystemExit(f"--seed must be in {TRAINING_SEEDS.start}..{TRAINING_SEEDS.stop - 1}; the evaluation suites own the others")
        self.family_weight_overrides()  # refuse malformed lists before anything is built
        if self.curriculum_phases() and not self.text_batch:
            raise SystemExit("--curriculum's phases draw text: give --text-batch above 0")
        if sum(steps for steps, _ in self.curriculum_phases()) > self.steps:
            raise SystemExit("--curriculum's phases take more steps than --steps: --steps counts the phases and the mixed steps after them")
        if self.audio_warmup_steps and not self.audio_probe_weight:
            raise SystemExit("--audio-warmup-steps trains the audio encoder through its head: give --audio-probe-weight too (1 was measured)")

    def family_weight_overrides(self) -> dict[str, float]:
        """--family-weights as {family: weight} (family names are checked against the data by the trainer)."""
        return _family_weights(self.family_weights, "--family-weights")

    def curriculum_phases(self) -> list[tuple[int, dict[str, float]]]:
        """--curriculum as [(steps, {family: weight}), ...] in order (family names are checked by the trainer)."""
        phases = []
        for part in filter(None, (p.strip() for p in self.curriculum.split(";"))):
            steps, _, weights = part.partition(":")
            try:
                count = int(steps)
            except ValueError:
                raise SystemExit(f"--curriculum wants STEPS:FAMILY=W,...;... (e.g. 2500:plus=1;2500:minus=1); got {part!r}") from None
            if count <= 0:
                raise SystemExit(f"--curriculum: a phase needs at least one step; got {part!r}")
            named = _family_weights(weights, "--curriculum")
            if not any(named.values()):
                raise SystemExit(f"--curriculum: phase {part!r} gives no family a weight above 0")
            phases.append((count, named))
        return phases


def _family_weights(text: str, flag: str) -> dict[str, float]:
    """FAMILY=W,... as {family: weight}, refusing what is not a finite weight >= 0."""
    weights = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        try:
            weight = float(value)
        except ValueError:
            raise SystemExit(f"{flag} wants FAMILY=W,... (e.g. plus=3,larger=3); got {part!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise SystemExit(f"{flag}: {name}'s weight must be a finite number >= 0")
        weights[name] = weight
    return weights
