"""Deterministic dev / test halves of a task's examples, for searches that must not see the test set.

Examples are ordered by a hash of their content (sha1 of the doc as sorted JSON, salted with the task
name), and the first half (rounded up) is `dev`, the rest `test`. The split depends on what an example
says, not on its position, so regenerating or reordering a suite keeps each example on its side, and
no example is in both. `builtin_mc:dev` / `builtin_mc:test` name the halves wherever a task name goes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from g3n_core.errors import EvalError

SPLITS = ("dev", "test")


def doc_key(task: str, doc: dict) -> str:
    """Stable content hash of one example."""
    return hashlib.sha1((task + "\0" + json.dumps(doc, sort_keys=True, default=str)).encode()).hexdigest()


def split_docs(task: str, docs: list[dict], split: str) -> list[dict]:
    """The `split` half of `docs`, in their original order."""
    if split not in SPLITS:
        raise EvalError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    order = sorted(range(len(docs)), key=lambda i: doc_key(task, docs[i]))
    dev = set(order[: (len(docs) + 1) // 2])
    return [doc for i, doc in enumerate(docs) if (i in dev) == (split == "dev")]


def split_task(task, split: str):
    """A copy of `task` named `NAME:split` that holds only that half of its examples (few-shot pools unchanged)."""
    if split not in SPLITS:
        raise EvalError(f"unknown split {split!r} in {task.name}:{split}; use {task.name}:dev or {task.name}:test")
    load = task.load
    return dataclasses.replace(task, name=f"{task.name}:{split}", load=lambda: split_docs(task.name, load(), split))
