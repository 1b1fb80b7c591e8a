"""Reproduce the collapse of mini's vision tower in two minutes, with no decoder in the loop.

    python scripts/probe_mini_vision.py [--lr 3e-3] [--optimizer adamw|sgd] [--steps 100]
        [--head-steps N] [--tower-lr 3e-4] [--width 0.0625] [--inverted] [--no-stem-bias]
        [--open-unskipped] [--freeze-vectors] [--readout embedder|tower] [--check-gradients]

Trains only mini's freshly initialised MobileNetV5 tower, its embedder and a small classification
head (`g3n_core.builtin.tower_heads`) to name each training picture's colour, shape, dot count or
word from the soft tokens the decoder would receive, and prints every 25 steps the soft tokens'
spread between pictures (0: the same for every picture) and the head's accuracy per kind on
held-back pictures. A tower that learns keeps its spread and gains accuracy; mini v1's tower lost
its spread within 25 steps even under this purely discriminative loss; with `--open-unskipped
--tower-lr 3e-5 --steps 300` it keeps it and learns (docs/mini.md, "Towards v2", third round).
`--check-gradients` instead compares autograd's gradient with central finite differences (float64)
stage by stage, to rule out a wrong backward pass.
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

STAGES = ("conv_stem", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "msfa")


def check_gradients(model, heads: ImageHead, pixels: torch.Tensor, labels: list) -> None:
    """Print, per tower stage, autograd's directional derivative along a random direction beside central finite differences."""
    model.double()
    heads.double()
    pixels = pixels.double()

    def loss() -> torch.Tensor:
        return heads.loss(model.model.get_image_features(pixels).pooler_output, labels)

    for stage in STAGES:
        params = [p for n, p in model.model.vision_tower.timm_model.named_parameters() if n.startswith(stage)]
        model.zero_grad()
        loss().backward()
        direction = [torch.randn_like(p) for p in params]
        analytic = sum(float((p.grad * d).sum()) for p, d in zip(params, direction))
        eps, sides = 1e-6, []
        with torch.no_grad():
            for shift in (eps, -2 * eps, eps):  # to +eps, to -eps, back to the start
                for p, d in zip(params, direction):
                    p.add_(shift * d)
                if len(sides) < 2:
                    sides.append(float(loss()))
        print(f"{stage:10s} autograd {analytic:+.6e}   finite differences {(sides[0] - sides[1]) / (2 * eps):+.6e}")


def main(argv: list[str] | None = None) -> int:
    """Train the tower with the head and print spread and accuracy as it goes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=3e-3, help="the head's peak learning rate, and the tower's unless --tower-lr (20 warm-up steps); mini v1 trained at 3e-3 with AdamW")
    parser.add_argument("--tower-lr", type=float, default=None, help="the tower's and embedder's peak learning rate (default: --lr)")
    parser.add_argument("--head-steps", type=int, default=0, help="train the head alone for this many steps first (linear probe, then fine-tune)")
    parser.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw", help="sgd: momentum 0.9, no per-weight step normalisation")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=24, help="pictures per step")
    parser.add_argument("--pictures", type=int, default=300, help="pictures drawn per kind (one in ten held back)")
    parser.add_argument("--width", type=float, default=None, help="MobileNetV5 channel multiplier (mini: 1/32; tiny: 1/16)")
    parser.add_argument("--inverted", action="store_true", help="feed 1 - pixel, so the white background is 0")
    parser.add_argument("--no-stem-bias", action="store_true", help="stem bias 0 and fixed: with --inverted the tower has no input-independent term")
    parser.add_argument("--open-unskipped", action="store_true", help="layer scale 1 (not timm's 1e-5) on the blocks without a skip")
    parser.add_argument("--freeze-vectors", action="store_true", help="train only the tower's matrices (norm weights and layer scales fixed)")
    parser.add_argument("--readout", choices=("embedder", "tower"), default="embedder", help="tower: the head reads the tower's own output (its 2048 channels, max-pooled, one linear layer), no embedder")
    parser.add_argument("--check-gradients", action="store_true", help="compare autograd with finite differences per stage (through the embedder) and stop")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    from transformers import Gemma3nForConditionalGeneration

    config = mini_config()
    if args.width:
        config.vision_config.model_args["channel_multiplier"] = args.width
    model = Gemma3nForConditionalGeneration(config)
    vision = model.model.vision_tower
    if args.open_unskipped:
        print(f"layer scale 1 on {open_unskipped_blocks(vision)} blocks without a skip")
    if args.no_stem_bias:
        with torch.no_grad():
            vision.timm_model.conv_stem.conv.bias.zero_()
        vision.timm_model.conv_stem.conv.bias.requires_grad_(False)
    pool = build_media_pool(build_mini_processor(), 0, args.pictures, 0, 0)
    if args.readout == "tower":
        heads = ImageHead(vision.timm_model.num_features, pool.image_labels, pooled=True)
    else:
        heads = ImageHead(model.config.text_config.hidden_size, pool.image_labels)

    def pixels(indices: list[int]) -> torch.Tensor:
        x = torch.from_numpy(pool.pixels[indices]).float() / 255.0
        return 1.0 - x if args.inverted else x

    if args.check_gradients:
        probe = list(range(0, len(pool.image_labels), max(1, len(pool.image_labels) // 16)))
        check_gradients(model, heads, pixels(probe), [pool.image_labels[i] for i in probe])
        return 0
    tower = [p for p in vision.parameters() if p.requires_grad and not (args.freeze_vectors and p.ndim == 1)]
    tower += list(model.model.embed_vision.parameters())
    groups = [{"params": list(heads.parameters()), "peak": args.lr, "start": 0}]
    groups.append({"params": tower, "peak": args.lr if args.tower_lr is None else args.tower_lr, "start": args.head_steps})
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=args.lr, momentum=0.9)
    else:
        optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.0, betas=(0.9, 0.98))
    rnd = random.Random(0)
    held_back = list(range(0, len(pool.image_labels), 10))
    training = [i for i in range(len(pool.image_labels)) if i % 10]

    def soft_tokens(indices: list[int]) -> torch.Tensor:
        if args.readout == "tower":  # [B, 2048, 4, 4] -> [B, 16, 2048]
            return vision.timm_model.forward_features(pixels(indices)).flatten(2).transpose(1, 2)
        return model.model.get_image_features(pixels(indices)).pooler_output

    start = time.perf_counter()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = 0.0 if step < group["start"] else group["peak"] * min(1.0, (step - group["start"] + 1) / 20)
        batch = rnd.sample(training, args.batch)
        loss = heads.loss(soft_tokens(batch), [pool.image_labels[i] for i in batch])
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
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
