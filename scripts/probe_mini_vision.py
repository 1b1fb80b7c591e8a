"""Reproduce the collapse of mini's vision tower in two minutes, with no decoder in the loop.

    python scripts/probe_mini_vision.py [--lr 3e-3] [--optimizer adamw|sgd] [--steps 100] [--open-unskipped] [--freeze-vectors]

Trains only mini's freshly initialised MobileNetV5 tower, its embedder and a small classification
head (`g3n_core.builtin.tower_heads`) to name each training picture's colour, shape, dot count or
word from the soft tokens the decoder would receive, and prints every 25 steps the soft tokens'
spread between pictures (0: the same for every picture) and the head's accuracy per kind on
held-back pictures. A tower that learns keeps its spread and gains accuracy; mini v1's tower lost
its spread within 25 steps even under this purely discriminative loss (docs/mini.md, "Towards v2").
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g3n_core.builtin.configs import mini_config  # noqa: E402
from g3n_core.builtin.mini import build_mini_processor  # noqa: E402
from g3n_core.builtin.mini_data.examples import IMAGE_KINDS, build_media_pool  # noqa: E402
from g3n_core.builtin.tower_heads import ImageHead, open_unskipped_blocks, spread  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Train the tower with the head and print spread and accuracy as it goes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (20 warm-up steps); mini v1 trained at 3e-3 with AdamW")
    parser.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw", help="sgd: momentum 0.9, no per-weight step normalisation")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=24, help="pictures per step")
    parser.add_argument("--pictures", type=int, default=300, help="pictures drawn per kind (one in ten held back)")
    parser.add_argument("--open-unskipped", action="store_true", help="layer scale 1 (not timm's 1e-5) on the blocks without a skip")
    parser.add_argument("--freeze-vectors", action="store_true", help="train only the tower's matrices (norm weights and layer scales fixed)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    from transformers import Gemma3nForConditionalGeneration

    model = Gemma3nForConditionalGeneration(mini_config())
    if args.open_unskipped:
        print(f"layer scale 1 on {open_unskipped_blocks(model.model.vision_tower)} blocks without a skip")
    pool = build_media_pool(build_mini_processor(), 0, args.pictures, 0, 0)
    heads = ImageHead(model.config.text_config.hidden_size, pool.image_labels)
    tower = [p for p in model.model.vision_tower.parameters() if not (args.freeze_vectors and p.ndim == 1)]
    params = tower + list(model.model.embed_vision.parameters()) + list(heads.parameters())
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9)
    else:
        optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0, betas=(0.9, 0.98))
    rnd = random.Random(0)
    held_back = list(range(0, len(pool.image_labels), 10))
    training = [i for i in range(len(pool.image_labels)) if i % 10]

    def soft_tokens(indices: list[int]) -> torch.Tensor:
        return model.model.get_image_features(torch.from_numpy(pool.pixels[indices]).float() / 255.0).pooler_output

    start = time.perf_counter()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 20)
        batch = rnd.sample(training, args.batch)
        loss = heads.loss(soft_tokens(batch), [pool.image_labels[i] for i in batch])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 25 == 0 or step == args.steps - 1:
            with torch.no_grad():
                tokens = soft_tokens(held_back)
                right = heads.correct(tokens, [pool.image_labels[i] for i in held_back])
            kinds = [pool.image_labels[i][0] for i in held_back]
            accuracy = {k: round(float(np.mean([r for r, kind in zip(right, kinds) if kind == k])), 2) for k in IMAGE_KINDS}
            print(f"step {step:4d}  loss {float(loss):.3f}  spread {spread(tokens):.5f}  held-back accuracy {accuracy}  {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
