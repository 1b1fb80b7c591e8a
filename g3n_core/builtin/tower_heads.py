"""Probing mini's towers: heads that name a picture's or a clip's content from its soft tokens, and their spread.

Trained through the decoder alone, mini v1's vision tower became input-independent (its soft
tokens the same for every picture to 1e-7). `scripts/probe_mini_vision.py` trains the tower with
this head and no decoder, to tell an optimisation collapse from the decoder learning to ignore
the picture: at v1's rate the tower collapses even then; with its unskipped blocks opened and at
3e-5 it learns (docs/mini.md, "Towards v2"), and train_mini uses the head as an auxiliary loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class AttentionProbe(nn.Module):
    """A learned query attending over soft tokens, its output classified."""

    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, dim) * dim**-0.5)
        self.attention = nn.MultiheadAttention(dim, num_heads=1, batch_first=True)
        self.classify = nn.Linear(dim, classes)

    def forward(self, tokens: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, D] soft tokens (`padding` [B, T]: True where a token is not part of the item) -> [B, classes] logits."""
        query = self.query.expand(tokens.shape[0], -1, -1)
        pooled, _ = self.attention(query, tokens, tokens, key_padding_mask=padding, need_weights=False)
        return self.classify(pooled[:, 0])


class MaxPoolProbe(nn.Module):
    """Each feature's maximum over the tokens, classified by one linear layer: the quickest learner of a plain CNN."""

    def __init__(self, dim: int, classes: int):
        super().__init__()
        self.classify = nn.Linear(dim, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, T, D] tokens -> [B, classes] logits."""
        return self.classify(tokens.amax(1))


def spread(embeddings: torch.Tensor) -> float:
    """How much a batch's soft embeddings differ between items: mean |e_i - mean| / mean |e_i| (0: input-independent)."""
    if embeddings.shape[0] < 2:
        return float("nan")
    flat = embeddings.detach().flatten(1).float()
    return float((flat - flat.mean(0)).norm(dim=1).mean() / flat.norm(dim=1).mean().clamp(min=1e-12))


def open_unskipped_blocks(vision_tower: nn.Module) -> int:
    """Layer scale 1 on the vision blocks without a skip connection; returns how many were changed.

    timm starts every MobileNetV5 layer scale at 1e-5: a near-identity start in a block with a skip,
    but a stride-2 or widening block has none, so at 1/32 width everything after stage 1 is ~1e-5 in size.
    """
    changed = 0
    for block in vision_tower.modules():
        gamma = getattr(getattr(block, "layer_scale", None), "gamma", None)
        if gamma is not None and not getattr(block, "has_skip", True):
            with torch.no_grad():
                gamma.fill_(1.0)
            changed += 1
    return changed


class ImageHead(nn.Module):
    """One class per (kind, answer) of the pictures: colour, shape, dot count, word (`pooled`: a max-pool probe, not attention)."""

    def __init__(self, dim: int, labels: list[tuple[str, str]], pooled: bool = False):
        super().__init__()
        self.classes = {label: n for n, label in enumerate(sorted(set(labels)))}
        self.probe = (MaxPoolProbe if pooled else AttentionProbe)(dim, len(self.classes))

    def _kind_logits(self, tokens: torch.Tensor, labels: list[tuple[str, str]]) -> torch.Tensor:
        """Logits with every class of another kind masked: the head answers the picture's own question."""
        logits = self.probe(tokens)
        kinds = [kind for kind, _ in self.classes]
        allowed = torch.tensor([[k == kind for k in kinds] for kind, _ in labels])
        return logits.masked_fill(~allowed, float("-inf"))

    def loss(self, tokens: torch.Tensor, labels: list[tuple[str, str]]) -> torch.Tensor:
        """Cross-entropy of each picture's answer among its kind's answers."""
        target = torch.tensor([self.classes[label] for label in labels])
        return nn.functional.cross_entropy(self._kind_logits(tokens, labels), target)

    def correct(self, tokens: torch.Tensor, labels: list[tuple[str, str]]) -> list[bool]:
        """Whether the head names each picture's answer."""
        target = torch.tensor([self.classes[label] for label in labels])
        return (self._kind_logits(tokens, labels).argmax(-1) == target).tolist()


class AudioHead(nn.Module):
    """Names a clip's content from its soft tokens: CTC over the spoken digits of a transcription, the word of a translation.

    The audio encoder's analogue of ImageHead: in speech-only runs the decoder stops reading the clip
    within 200 steps and the encoder's gradient vanishes (docs/mini.md), so this gives it its own.
    """

    BLANK = 10  # CTC's blank, after the digits 0-9

    def __init__(self, dim: int, labels: list[tuple[str, str]]):
        super().__init__()
        self.words = {word: n for n, word in enumerate(sorted({a for task, a in labels if task == "translate"}))}
        self.digits = nn.Linear(dim, self.BLANK + 1)
        self.word = AttentionProbe(dim, len(self.words)) if self.words else None

    def loss(self, tokens: torch.Tensor, padding: torch.Tensor, labels: list[tuple[str, str]]) -> torch.Tensor:
        """Mean over the clips of the CTC loss per digit (transcriptions) or the word's cross-entropy (translations)."""
        losses = []
        asr = [n for n, (task, _) in enumerate(labels) if task == "asr"]
        if asr:
            targets = [torch.tensor([int(d) for d in labels[n][1].split()]) for n in asr]
            log_probs = self.digits(tokens[asr]).float().log_softmax(-1).transpose(0, 1)  # [T, B, classes]
            lengths = (~padding[asr]).sum(1)
            ctc = nn.functional.ctc_loss(
                log_probs, torch.cat(targets), lengths, torch.tensor([len(t) for t in targets]),
                blank=self.BLANK, reduction="none", zero_infinity=True,
            )
            losses.append(ctc / torch.tensor([len(t) for t in targets]))
        translate = [n for n, (task, _) in enumerate(labels) if task == "translate"]
        if translate and self.word is not None:
            logits = self.word(tokens[translate], padding[translate])
            target = torch.tensor([self.words[labels[n][1]] for n in translate])
            losses.append(nn.functional.cross_entropy(logits.float(), target, reduction="none"))
        return torch.cat(losses).mean()


def warm_up_audio_head(model, head: AudioHead, draw: Callable[[], tuple[dict, list]], optimizer, steps: int, lr: float, progress=None) -> list[float]:
    """Train the audio encoder and its head alone for `steps` steps (no decoder); returns the head's loss per step.

    In a full run the head sits at chance for ~400-600 steps before the encoder tells clips apart, and
    by then the decoder has learnt to answer from the prior (docs/mini.md); this gives it a head start.
    `draw()` returns one collated speech batch and its clips' labels; only the encoder's and the head's
    parameter groups (part "audio" and "probe") move, at `lr` after a 50-step linear ramp.
    """
    losses = []
    for step in range(steps):
        batch, labels = draw()
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50) * group["lr_scale"] if group["part"] in ("audio", "probe") else 0.0
        features = model.model.get_audio_features(batch["input_features"], ~batch["input_features_mask"], return_dict=True)
        loss = head.loss(features.pooler_output, features.audio_mel_mask, labels)
        loss.backward()
        for group in optimizer.param_groups:
            if group["part"] not in ("audio", "probe"):
                for p in group["params"]:
                    p.grad = None  # the embedder stays as it is: AdamW would otherwise count these steps in its moments
        torch.nn.utils.clip_grad_norm_(model.model.audio_tower.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(losses[-1])
    return losses
