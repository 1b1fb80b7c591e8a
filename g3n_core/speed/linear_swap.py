"""Replacing the text decoder's linear layers (and the LM head) with another implementation."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..sparsity import text_decoder
from .file_pages import release_file_pages


def swap_linears(model: nn.Module, accept: Callable[[nn.Module], bool], make: Callable[[nn.Module], nn.Module]) -> int:
    """Put `make(child)` in place of every child module of the text decoder or LM head that `accept`s; returns how many."""
    slots = [(parent, name, child) for parent in text_decoder(model).modules() for name, child in parent.named_children()]
    head = getattr(model, "lm_head", None)
    if head is not None:
        slots.append((model, "lm_head", head))  # tied to the token table: the new module is used for logits only
    count = 0
    for parent, name, child in slots:
        if accept(child):
            setattr(parent, name, make(child))
            release_file_pages(child.parameters())  # one layer's copy at a time, not the whole model's, at the peak
            count += 1
    return count
