"""The built-in `mini`: a small Gemma 3n trained here (g3n_core.builtin.train_mini), weights committed.

The checkpoint folder `g3n_core/builtin/mini/` holds exactly what a released checkpoint holds
(config.json, model.safetensors in bfloat16, tokenizer, processor, chat template, generation
config) plus `g3n_builtin.json` (random_weights: false, the training run's record) and the ladder
it was measured with. `install_mini` copies a training run's output there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ..errors import ModelSourceError
from .configs import AUDIO_TOKENS, MINI_LAYOUT, TINY_IMAGE_SIZE, TINY_IMAGE_TOKENS
from .processor import MINI_VOCABULARY, build_processor

MINI_DIR = Path(__file__).parent / "mini"
MINI_VERSION = 2  # bump with every newly trained set of weights (install_mini stamps it)
MINI_DTYPE = torch.bfloat16  # the committed weights' dtype, as the released checkpoints
MAX_WEIGHT_BYTES = 20 * 2**20  # the repository's limit for committed weights
CHECKPOINT_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
    "chat_template.jinja",
)


def build_mini_processor():
    """mini's processor: character tokenizer (BOS on plain text, as Gemma's), 128-pixel images, 16 image / 188 audio tokens."""
    return build_processor(MINI_LAYOUT, TINY_IMAGE_SIZE, TINY_IMAGE_TOKENS, AUDIO_TOKENS, MINI_VOCABULARY, add_bos=True)


def mini_checkpoint() -> Path:
    """The committed mini folder, checked to be complete."""
    missing = [name for name in CHECKPOINT_FILES if not (MINI_DIR / name).is_file()]
    if missing:
        raise ModelSourceError(
            f"the mini checkpoint in {MINI_DIR} lacks {', '.join(missing)}; restore it from git "
            "(git checkout -- g3n_core/builtin/mini) or train one: python -m g3n_core.builtin.train_mini --out DIR"
        )
    return MINI_DIR


def install_mini(run_dir: str | Path, target: Path = MINI_DIR) -> Path:
    """Copy a training run's checkpoint (run_dir/checkpoint) into `target` as version MINI_VERSION, refusing one over the size limit."""
    source = Path(run_dir) / "checkpoint"
    if not (source / "model.safetensors").is_file():
        raise ModelSourceError(f"{source} holds no checkpoint; run python -m g3n_core.builtin.train_mini --out {run_dir} first")
    size = (source / "model.safetensors").stat().st_size
    if size > MAX_WEIGHT_BYTES:
        raise ModelSourceError(f"{source}/model.safetensors is {size / 2**20:.1f} MiB, over the {MAX_WEIGHT_BYTES // 2**20} MiB limit")
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    # The run stamped the version current when it trained; the installed weights are this version.
    marker = json.loads((target / "g3n_builtin.json").read_text())
    (target / "g3n_builtin.json").write_text(json.dumps({**marker, "version": MINI_VERSION}, indent=1) + "\n")
    return target


def mini_record() -> dict:
    """The training run's record committed with the weights (g3n_builtin.json)."""
    return json.loads((mini_checkpoint() / "g3n_builtin.json").read_text())
