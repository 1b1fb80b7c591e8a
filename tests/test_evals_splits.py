"""Dev / test halves of a task: deterministic, disjoint, complete, and tied to content, not position."""

from __future__ import annotations

import pytest

from evals.tasks import resolve_tasks
from evals.tasks.splits import split_docs
from g3n_core.errors import EvalError


@pytest.mark.parametrize("name", ["builtin_mc", "builtin_short_answer", "builtin_image_qa", "builtin_speech_asr"])
def test_halves_are_disjoint_and_cover_the_task(name):
    full = resolve_tasks([name])[0].docs()
    dev, test = (resolve_tasks([f"{name}:{split}"])[0] for split in ("dev", "test"))
    assert dev.name == f"{name}:dev" and test.name == f"{name}:test"
    a, b = dev.docs(), test.docs()
    assert len(a) == (len(full) + 1) // 2 and len(a) + len(b) == len(full)
    key = lambda doc: repr(sorted(doc.items()))  # noqa: E731
    assert not {key(d) for d in a} & {key(d) for d in b}
    assert sorted(map(key, a + b)) == sorted(map(key, full))


def test_a_split_follows_the_content_not_the_order():
    docs = [{"query": f"question {i}", "gold": i % 4} for i in range(30)]
    dev = split_docs("t", docs, "dev")
    assert split_docs("t", docs, "dev") == dev  # deterministic
    assert sorted(map(repr, split_docs("t", docs[::-1], "dev"))) == sorted(map(repr, dev))  # order-free
    with pytest.raises(EvalError, match="unknown split"):
        split_docs("t", docs, "train")
    with pytest.raises(EvalError):
        resolve_tasks(["builtin_mc:train"])
