"""Train `mini` from a fixed seed on the CPU: python -m g3n_core.builtin.train_mini --out DIR

Data is procedural (g3n_core.builtin.mini_data: the training side of the held-out split, media
drawn once into memory). Every step trains one nested sub-model (the whole model half the time,
else an FFN width per layer from {1, 3/4, 1/2, 1/4} and sometimes the ladder's layer skips) on a
text batch (chat and completion forms), an image batch and a speech batch, with loss on answer
tokens only and activation sparsity on (the config's own pattern). The vision tower trains at a
hundredth of the rate with its unskipped blocks opened and an auxiliary picture-naming head, the
recipe that keeps MobileNetV5 at this width from collapsing (docs/mini.md). DIR receives `checkpoint/`
(the released checkpoints' layout, bfloat16), `loss.csv`, `loss.html`, `media_hashes.json` and
`run.json` (settings, wall and CPU time). `python -m g3n_core.builtin.train_mini --install DIR`
copies the checkpoint into g3n_core/builtin/mini/.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import resource
import shlex
import sys
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import torch

from ..dataclass_args import add_dataclass_args, dataclass_from_args
from .configs import mini_config
from .nesting import NestedModel, sample_sub_model
from .train_settings import TrainSettings


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _lr_at(step: int, s: TrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _skip_sets() -> list[tuple[int, ...]]:
    from ..matformer.mini_ladder import training_skip_sets

    return training_skip_sets()


def parameter_parts(model) -> dict[str, list[torch.nn.Parameter]]:
    """The model's parameters by part: the vision tower, the audio encoder, and the rest (decoder and embedders)."""
    inner = model.model
    towers = {"vision": list(inner.vision_tower.parameters()), "audio": list(inner.audio_tower.parameters())}
    seen = {id(p) for params in towers.values() for p in params}
    return {"text": [p for p in model.parameters() if id(p) not in seen], **towers}


def _forward_loss(model, batch: dict, totals: dict, examples: list) -> torch.Tensor:
    from .mini_data.batches import answer_loss, family_totals

    labels = batch.pop("labels")
    logits = model(**batch).logits
    loss, per_token = answer_loss(logits, labels)
    family_totals(per_token, labels, examples, totals)
    return loss


class Trainer:
    """One run: model, data, optimizer, logs."""

    def __init__(self, settings: TrainSettings, out: Path):
        from .mini import build_mini_processor

        self.s, self.out = settings, out
        torch.manual_seed(settings.seed)
        self.rnd = random.Random(settings.seed)
        from transformers import Gemma3nForConditionalGeneration

        self.processor = build_mini_processor()
        self.model = Gemma3nForConditionalGeneration(mini_config()).train()
        self.nested = NestedModel(self.model.model.language_model)
        self.skip_sets = _skip_sets()
        if settings.open_layer_scales:
            from .tower_heads import open_unskipped_blocks

            open_unskipped_blocks(self.model.model.vision_tower)
        self.parts = parameter_parts(self.model)
        self.spreads: dict[str, float] = {}
        for part in ("vision", "audio"):
            getattr(self.model.model, f"{part}_tower").register_forward_hook(self._spread_hook(part))
        self.soft_tokens: dict[str, torch.Tensor] = {}
        self.audio_padding: torch.Tensor | None = None
        for part in ("vision", "audio"):
            getattr(self.model.model, f"embed_{part}").register_forward_hook(self._soft_token_hook(part), with_kwargs=True)
        scales = {"vision": settings.vision_lr_scale, "audio": settings.audio_lr_scale, "text": 1.0}
        groups = []
        for part, params in self.parts.items():
            for decays in (True, False):
                chosen = [p for p in params if (p.ndim >= 2) == decays]
                if chosen:
                    groups.append({"params": chosen, "weight_decay": settings.weight_decay if decays else 0.0, "lr_scale": scales[part], "part": part})
        self.optimizer = torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.98))

    def _spread_hook(self, part: str):
        """Record how much the tower's output differs between the batch's items: a dying tower shows here first."""
        from .tower_heads import spread

        def hook(module, args, output) -> None:
            self.spreads[part] = spread(output.last_hidden_state)
            if part == "audio":
                self.audio_padding = output.audio_mel_mask  # True where a soft token is past the clip's end

        return hook

    def _soft_token_hook(self, part: str):
        """Keep a tower's soft tokens (the embedder's output for `inputs_embeds`, not for hard ids) for its auxiliary head."""

        def hook(module, args, kwargs, output) -> None:
            if kwargs.get("inputs_embeds") is not None:
                self.soft_tokens[part] = output

        return hook

    def build_data(self) -> None:
        """Text examples and the media pool (drawn and spoken once)."""
        from tqdm import tqdm

        from .mini_data.examples import MediaExamples, TextExamples, build_media_pool

        self.text = TextExamples(self.processor)
        overrides = self._known_families(self.s.family_weight_overrides(), "--family-weights")
        self.text.weights = [overrides.get(f, w) for f, w in zip(self.text.families, self.text.weights)]
        # Each phase's last step (exclusive) and its weights: a family the phase does not name is not drawn in it.
        self.phases, end = [], 0
        for steps, named in self.s.curriculum_phases():
            end += steps
            self.phases.append((end, [self._known_families(named, "--curriculum").get(f, 0.0) for f in self.text.families]))
        if self.s.text_batch and not any(self.text.weights):
            raise SystemExit("--family-weights leaves every text family at weight 0: give at least one a weight above 0 (or train no text: --text-batch 0)")
        self.family_loss = {family: 1.0 for family in self.text.families}  # running answer-token loss, for --family-loss-floor
        bar = tqdm(desc="speaking clips", unit="clip", file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        s = self.s
        # Media that no step asks for are not drawn (a text-only run starts at once).
        speech = bool(s.audio_batch or s.audio_warmup_steps)
        self.pool = build_media_pool(
            self.processor, s.seed, s.images_per_kind if s.image_batch else 0, s.asr_clips if speech else 0, s.clips_per_word if speech else 0, progress
        )
        bar.close()
        self.media = MediaExamples(self.text, self.pool)
        self.image_head = None
        if s.image_probe_weight and self.pool.image_labels:
            from .tower_heads import ImageHead

            self.image_head = ImageHead(self.model.config.text_config.hidden_size, self.pool.image_labels)
            self.optimizer.add_param_group({"params": list(self.image_head.parameters()), "weight_decay": 0.0, "lr_scale": 1.0, "part": "probe"})
        self.audio_head = None
        if s.audio_probe_weight and self.pool.audio_labels:
            from .tower_heads import AudioHead

            self.audio_head = AudioHead(self.model.config.text_config.hidden_size, self.pool.audio_labels)
            self.optimizer.add_param_group({"params": list(self.audio_head.parameters()), "weight_decay": 0.0, "lr_scale": 1.0, "part": "probe"})

    def warm_up_audio(self) -> dict:
        """The audio encoder's head start (--audio-warmup-steps); returns its record for run.json."""
        from tqdm import tqdm

        from .mini_data.batches import collate
        from .tower_heads import warm_up_audio_head

        s, wall0 = self.s, time.perf_counter()
        if not s.audio_warmup_steps or self.audio_head is None:
            return {}

        def draw() -> tuple[dict, list]:
            clips = [self.media.audio(self.rnd) for _ in range(s.micro_batch)]
            return collate(clips, self.pool), [self.pool.audio_labels[e.audio] for e in clips]

        with tqdm(total=s.audio_warmup_steps, desc="warming up the audio encoder", unit="step", file=sys.stderr) as bar:
            def progress(loss: float) -> None:
                bar.update(1)
                bar.set_postfix(head_loss=f"{loss:.3f}")

            losses = warm_up_audio_head(self.model, self.audio_head, draw, self.optimizer, s.audio_warmup_steps, s.lr, progress)
        tail = max(1, len(losses) // 10)
        return {"steps": len(losses), "head_loss_first": round(sum(losses[:tail]) / tail, 3),
                "head_loss_last": round(sum(losses[-tail:]) / tail, 3), "wall_s": round(time.perf_counter() - wall0, 1)}

    def _known_families(self, weights: dict[str, float], flag: str) -> dict[str, float]:
        """`weights`, refused when it names a family the data does not have."""
        unknown = sorted(set(weights) - set(self.text.families))
        if unknown:
            raise SystemExit(f"{flag} names no family {', '.join(unknown)}; the families are {', '.join(self.text.families)}")
        return weights

    def phase(self, step: int) -> int:
        """The curriculum phase `step` is in, from 1; 0 once the phases are over (the ordinary mix)."""
        return next((n for n, (end, _) in enumerate(self.phases, 1) if step < end), 0)

    def _family_weights(self, phase: int = 0) -> list[float] | None:
        """The text families' sampling weights this step (None: TextExamples' fixed ones)."""
        if phase:
            return self.phases[phase - 1][1]
        floor = self.s.family_loss_floor
        if not floor:
            return None
        return [w * max(self.family_loss[f], floor) for f, w in zip(self.text.families, self.text.weights)]

    def _probe_loss(self, name: str, group: list) -> torch.Tensor | None:
        """The auxiliary head's loss on the group's soft tokens just computed (None when that part has no head)."""
        if name == "image" and self.image_head is not None:
            return self.image_head.loss(self.soft_tokens["vision"], [self.pool.image_labels[e.image] for e in group])
        if name == "audio" and self.audio_head is not None:
            return self.audio_head.loss(self.soft_tokens["audio"], self.audio_padding, [self.pool.audio_labels[e.audio] for e in group])
        return None

    def step(self, step: int) -> dict:
        """One optimizer step; returns the row logged to loss.csv."""
        from .mini_data.batches import collate, length_groups

        s = self.s
        sub = sample_sub_model(self.rnd, self.nested.full_widths, self.skip_sets, s.p_full, s.p_skip)
        self.nested.set(sub)
        lr = _lr_at(step, s)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        phase = self.phase(step)
        weights = self._family_weights(phase)
        parts = {
            "text": [self.text.sample(self.rnd, weights, s.supervise_shots) for _ in range(s.text_batch)],
            "image": [self.media.image(self.rnd) for _ in range(0 if phase else s.image_batch)],
            "audio": [self.media.audio(self.rnd) for _ in range(0 if phase else s.audio_batch)],
        }
        losses = {}
        for name, examples in parts.items():
            if not examples:
                continue
            groups = length_groups(examples, s.micro_batch)
            value = 0.0
            for group in groups:
                loss = _forward_loss(self.model, collate(group, self.pool), totals, group)
                probe = self._probe_loss(name, group)
                if probe is not None:
                    totals[f"{name}_probe"][0] += float(probe.detach()) * len(group)
                    totals[f"{name}_probe"][1] += len(group)
                    loss = loss + (s.image_probe_weight if name == "image" else s.audio_probe_weight) * probe
                loss = loss * (len(group) / len(examples))
                loss.backward()
                value += float(loss.detach())
            losses[name] = value
        # Clipped per part, so that one part's spike (usually the vision tower's) does not shrink the other parts' steps.
        if s.clip_per_part:
            norms = {part: float(torch.nn.utils.clip_grad_norm_(params, 1.0)) for part, params in self.parts.items()}
        else:
            norms = {part: float(torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])) for part, params in self.parts.items()}
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        for head in (self.image_head, self.audio_head):
            if head is not None:
                torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        for family, (summed, count) in totals.items():
            if family in self.family_loss and count:
                self.family_loss[family] += 0.05 * (summed / count - self.family_loss[family])
        row = {"step": step, "phase": phase, "lr": lr, "loss": sum(losses.values()), "full": sub.widths == self.nested.full_widths and not sub.skip}
        row |= {f"grad_norm_{k}": v for k, v in norms.items()}
        row |= {f"spread_{k}": self.spreads.pop(k, float("nan")) for k in ("vision", "audio")}
        row |= {f"loss_{k}": v for k, v in losses.items()}
        row |= {f"fam_{k}": v[0] / max(v[1], 1) for k, v in sorted(totals.items())}
        return row

    def save(self, record: dict, folder: str = "checkpoint") -> Path:
        """The checkpoint in bfloat16, in the released checkpoints' layout, with the run's record (training continues)."""
        from transformers import Gemma3nForConditionalGeneration

        from ..weight_files import align_weight_files
        from .checkpoint import MARKER, generation_config
        from .configs import MINI_LAYOUT
        from .mini import MINI_DTYPE, MINI_VERSION

        target = self.out / folder
        model = Gemma3nForConditionalGeneration(mini_config()).to(MINI_DTYPE)
        model.load_state_dict({k: v.to(MINI_DTYPE) for k, v in self.model.state_dict().items()})
        model.generation_config = generation_config(MINI_LAYOUT.end_of_turn)
        model.eval().save_pretrained(target)
        align_weight_files(target)
        self.processor.save_pretrained(target)
        (target / "README.md").write_text(
            "# mini: a small Gemma 3n trained by the Gemma 3n workbench\n\n"
            "See docs/mini.md in the workbench repository for what it knows, how it was trained and its limits.\n"
        )
        marker = {"name": "mini", "version": MINI_VERSION, "random_weights": False, "training": record}
        (target / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
        (target / "media_hashes.json").write_text(json.dumps(self.pool.hashes) + "\n")
        return target


def _plot(rows: list[dict], path: Path) -> None:
    import plotly.graph_objects as go

    figure = go.Figure()
    steps = [r["step"] for r in rows]
    for key in ("loss", "loss_text", "loss_image", "loss_audio"):
        if key in rows[0]:
            figure.add_trace(go.Scatter(x=steps, y=[r.get(key) for r in rows], name=key, mode="lines"))
    figure.update_layout(title="mini training loss (answer tokens)", xaxis_title="step", yaxis_title="cross-entropy", yaxis_type="log")
    figure.write_html(path, include_plotlyjs="cdn")


def train(settings: TrainSettings, out: Path) -> Path:
    """Run training into `out`; returns the checkpoint folder."""
    from tqdm import tqdm

    from ..host import cpu_model

    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(settings.threads)
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    trainer = Trainer(settings, out)
    trainer.build_data()
    data_wall, data_cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0
    train0 = time.perf_counter()  # --max-minutes counts the warm-up too
    warmup = trainer.warm_up_audio()
    rows: list[dict] = []
    fieldnames: list[str] | None = None
    with open(out / "loss.csv", "w", newline="") as handle, tqdm(total=settings.steps, desc="training mini", unit="step", file=sys.stderr) as bar:
        writer = None
        for step in range(settings.steps):
            row = trainer.step(step)
            row["wall_s"] = round(time.perf_counter() - wall0, 1)
            row["cpu_s"] = round(_cpu_seconds() - cpu0, 1)
            if writer is None:
                fieldnames = list(row) + [f"fam_{f}" for f in _ALL_FAMILIES if f"fam_{f}" not in row]
                writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore")
                writer.writeheader()
            writer.writerow(row)
            handle.flush()
            rows.append(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.1e}")
            if settings.save_every and (step + 1) % settings.save_every == 0 and step + 1 < settings.steps:
                trainer.save({"snapshot_at_step": step + 1, "wall_s": row["wall_s"], "cpu_s": row["cpu_s"]}, "snapshot")
            if settings.max_minutes and time.perf_counter() - train0 > settings.max_minutes * 60:
                break
    record = {
        "settings": asdict(settings),
        "steps_done": len(rows),
        "wall_s": round(time.perf_counter() - wall0, 1),
        "cpu_s": round(_cpu_seconds() - cpu0, 1),
        "data_wall_s": round(data_wall, 1),
        "data_cpu_s": round(data_cpu, 1),
        "audio_warmup": warmup,
        "final_loss": rows[-1]["loss"] if rows else None,
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "command": shlex.join(["python", "-m", "g3n_core.builtin.train_mini", *sys.argv[1:]]),  # quoted: --curriculum holds ";"
    }
    record["dedicated_2_core_minutes"] = round(record["cpu_s"] / 2 / 60, 1)
    record["stopped_by_max_minutes"] = len(rows) < settings.steps
    checkpoint = trainer.save(record)
    (out / "run.json").write_text(json.dumps(record, indent=1) + "\n")
    if rows:
        _plot(rows, out / "loss.html")
    if record["stopped_by_max_minutes"]:
        print(_cut_short_warning(len(rows), settings), file=sys.stderr)
    return checkpoint


def _cut_short_warning(steps_done: int, settings: TrainSettings) -> str:
    """What a run stopped by --max-minutes tells its user: fewer steps than the recipe, so a weaker model."""
    return (
        f"warning: --max-minutes {settings.max_minutes:g} stopped the run after {steps_done} of {settings.steps} steps. "
        "This machine trains slower than the one the recipe was measured on, so the model had fewer (mixed) steps "
        "and will not reach the committed mini's accuracy; measure it before installing it, or give --max-minutes 0 "
        "to run every step."
    )


_ALL_FAMILIES = (
    "plus", "minus", "larger", "after_letter", "after_number", "letters", "colour", "alphabet",
    "image_colour", "image_shape", "image_count", "image_word", "image_probe", "speech_asr", "speech_translate", "audio_probe",
)


def main(argv: list[str] | None = None) -> int:
    """Command line: train into --out, or --install a run's checkpoint into the repository."""
    parser = argparse.ArgumentParser(prog="python -m g3n_core.builtin.train_mini", description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="output folder of the run")
    parser.add_argument("--install", metavar="RUN_DIR", help="copy RUN_DIR/checkpoint into g3n_core/builtin/mini/ and stop")
    add_dataclass_args(parser, TrainSettings)
    args = parser.parse_args(argv)
    if args.install:
        from .mini import install_mini

        print(f"installed {install_mini(args.install)}")
        return 0
    if not args.out:
        parser.error("--out DIR is required (or --install RUN_DIR)")
    settings = dataclass_from_args(TrainSettings, args)
    checkpoint = train(settings, Path(args.out))
    print(f"wrote {checkpoint}; see {Path(args.out) / 'run.json'} and loss.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
