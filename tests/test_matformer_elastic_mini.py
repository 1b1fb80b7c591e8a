"""Elastic slices of the trained `mini` (issue 10): equal to the exported slice loaded on its own on
text, image and audio prompts, and served from one load of mini. Skipped while mini is not a
built-in model of this checkout (its weights land with the mini branch).

The slices are derived from mini's own config (half of every FFN; that plus the first run of
KV-shared layers skipped, as E2B is cut from E4B), so the test needs nothing but mini itself.
"""

from __future__ import annotations

import pytest
import torch
from matformer_cases import CountingLoader, greedy, logits, prompts

from g3n_core import ModelCache, Variant, load_model
from g3n_core.errors import ModelSourceError
from g3n_core.matformer.elastic import is_elastic
from g3n_core.matformer.export import export_slice
from g3n_core.matformer.search import SliceSpace, State
from g3n_core.sources import classify, read_config

MODEL = "mini"


def _built_in(model: str) -> bool:
    try:
        read_config(classify(model))
    except (ModelSourceError, OSError):
        return False
    return True


pytestmark = pytest.mark.skipif(not _built_in(MODEL), reason=f"{MODEL} is not a built-in model of this checkout yet (issue 10)")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread):
    """Small models run fastest on one thread on a busy machine."""


@pytest.fixture(scope="module")
def slices():
    space = SliceSpace(Variant(model=MODEL))
    half = State(tuple(max(1, w // 2) for w in space.parent_widths))
    return {"half": half.to_slice(), "half-and-skip": State(half.widths, frozenset(space.skip_runs()[0])).to_slice()}


@pytest.fixture(scope="module")
def served(slices):
    """Every slice through one ModelCache (float32, for the 1e-5 bound), and how often it loaded."""
    loader = CountingLoader()
    cache = ModelCache(loader=loader)
    views = {name: cache.get(Variant(model=MODEL, matformer=slc)) for name, slc in slices.items()}
    return views, loader


def test_slices_of_mini_load_it_once_and_are_views(served):
    views, loader = served
    assert loader.loads == [Variant(model=MODEL)]
    assert all(is_elastic(view) for view in views.values())


def test_elastic_slice_of_mini_equals_its_export(served, slices, media, tmp_path_factory):
    views, _ = served
    root = tmp_path_factory.mktemp("mini-exports")
    for name, slc in slices.items():
        alone = load_model(Variant(model=str(export_slice(MODEL, slc, root / name))))
        view = views[name]
        for modality, x in prompts(alone, media).items():
            torch.testing.assert_close(logits(view.model, x), logits(alone.model, x), rtol=0, atol=1e-5, msg=f"{name}, {modality}")
            assert torch.equal(greedy(view.model, x), greedy(alone.model, x)), f"{name}, {modality}: greedy tokens differ"
