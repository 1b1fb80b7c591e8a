"""Requests: what a task asks of a model, independent of how the model answers.

As in lm-evaluation-harness, a task turns each example into requests and a model answers them:
the log-likelihood of a continuation after a context, or a generation that stops at a string.
Generation prompts are either raw text (completion style, as lm-eval's `generate_until`) or chat
messages in the transformers format, which may carry images and audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context). Word-boundary spaces belong to the continuation, as in lm-eval."""

    context: str
    continuation: str


@dataclass(frozen=True)
class GenerateRequest:
    """Greedy generation from a prompt until one of `until` appears or `max_new_tokens` are made.

    `prompt` is raw text (tokenized with the tokenizer's BOS, no chat template) or a list of chat
    messages (rendered with the checkpoint's chat template; parts may be images and audio).
    """

    prompt: str | list[dict[str, Any]]
    until: tuple[str, ...] = ()
    max_new_tokens: int = 32
    long_audio: str = "truncate"  # clips over 30 s: g3n_core's long_audio mode (chunk answers by windows, per window max_new_tokens)

    @property
    def is_chat(self) -> bool:
        """True when the prompt is chat messages (may hold media)."""
        return not isinstance(self.prompt, str)


@dataclass
class Loglikelihood:
    """The answer to a LoglikelihoodRequest: summed log-probability and whether greedy decoding yields it."""

    logprob: float
    is_greedy: bool
    num_tokens: int = 0


@dataclass
class Generation:
    """The answer to a GenerateRequest."""

    text: str
    new_tokens: int = 0
    extras: dict = field(default_factory=dict)
