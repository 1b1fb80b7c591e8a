"""`python -m g3n_core`: generate, info, tiny (and the MatFormer tools), in the spirit of `transformers run`.

Bad input exits with status 2 and a one-line message on stderr; set G3N_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from .errors import G3nError

Handler = Callable[[argparse.Namespace], int]


def default_device() -> str:
    """cuda when a GPU is visible, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(model: str, device: str) -> str:
    """float32 for tiny on the CPU (exact and fast enough); bfloat16 for real sizes and on GPUs."""
    return "float32" if model == "tiny" and device == "cpu" else "bfloat16"


def add_variant_args(parser: argparse.ArgumentParser, towers: bool = True) -> None:
    """The Variant knobs shared by every command that runs a model."""
    parser.add_argument("--model", default="tiny", help="tiny, e2b-shape, e4b-shape, a hub id (google/gemma-3n-E2B-it) or a folder")
    parser.add_argument("--attn", default="sdpa", help="eager, sdpa, flex_attention (CUDA) or flash_attention_2 (CUDA)")
    parser.add_argument("--dtype", default=None, help="float32, bfloat16 or float16 (GPU only; overflows on real weights) (default: float32 for tiny on CPU, else bfloat16)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--sparsity", default="default", help="default, off, 0.9, 0.9@0-9, or one value per layer")
    parser.add_argument("--matformer", default=None, help="MatFormer preset (E2B, E2.98B-layer, ...) or 'ffn=...;skip=...' (docs/matformer.md)")
    if towers:
        parser.add_argument("--towers", default=None, help="comma list of vision,audio (default: what the inputs need)")


def variant_from_args(args: argparse.Namespace, towers: tuple[str, ...] | None = None):
    """The Variant the command-line knobs describe."""
    from .matformer.presets import parse_slice
    from .sources import num_text_layers
    from .variant import Variant

    device = args.device or default_device()
    if getattr(args, "towers", None) is not None:
        towers = tuple(t for t in args.towers.split(",") if t and t != "text")
    return Variant(
        model=args.model,
        attn=args.attn,
        dtype=args.dtype or default_dtype(args.model, device),
        device=device,
        towers=towers if towers is not None else ("vision", "audio"),
        sparsity=args.sparsity,
        matformer=parse_slice(args.matformer, num_text_layers(args.model)) if args.matformer else None,
    )


# -- generate ------------------------------------------------------------------------------------


def _generate(args: argparse.Namespace) -> int:
    from .generation import GenerationSettings, stream_chat
    from .loading import load_model
    from .media import MediaPolicy

    content: list[dict] = [{"type": "image", "image": p} for p in args.image]
    content += [{"type": "video", "video": p} for p in args.video]
    content += [{"type": "audio", "audio": args.audio}] if args.audio else []
    content.append({"type": "text", "text": args.prompt})
    needed = tuple(t for t, used in (("vision", args.image or args.video), ("audio", args.audio)) if used)
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens,
        do_sample=args.do_sample,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        seed=args.seed,
    )
    policy = MediaPolicy(allow_network=args.allow_network, max_video_frames=args.max_frames)
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [{"role": "user", "content": content}]
    loaded = load_model(variant_from_args(args, needed))
    stream = stream_chat(loaded, messages, settings, policy)
    for piece in stream:
        if not args.json:
            print(piece, end="", flush=True)
    reply = stream.reply
    if args.json:
        print(json.dumps({**reply.to_dict(), "variant": loaded.variant.to_dict(), "random_weights": loaded.random_weights}))
    else:
        print()
        for warning in reply.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(
            f"[{reply.prompt_tokens} prompt tokens, {reply.new_tokens} new, ttft {reply.ttft_s:.2f} s, "
            f"{reply.tokens_per_s:.1f} tokens/s{', random weights' if loaded.random_weights else ''}]",
            file=sys.stderr,
        )
    return 0


def _register_generate(sub) -> None:
    p = sub.add_parser("generate", help="chat once with text, images, audio or video")
    add_variant_args(p)
    p.add_argument("prompt", help="the user's text")
    p.add_argument("--image", action="append", default=[], help="image file (repeat for several)")
    p.add_argument("--audio", default=None, help="audio file (one clip, up to 30 s)")
    p.add_argument("--video", action="append", default=[], help="video file, sampled to --max-frames frames")
    p.add_argument("--max-frames", type=int, default=8, help="frames sampled from each video (default 8)")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-network", action="store_true", help="allow http(s) URLs as media")
    p.add_argument("--json", action="store_true", help="print one JSON object with text, tokens and timings")
    p.set_defaults(handler=_generate)


# -- info ----------------------------------------------------------------------------------------


def _features(args: argparse.Namespace) -> int:
    from .hardware import cpu_info, features_table

    device, dtype = args.device or default_device(), args.dtype or "bfloat16"
    rows = features_table(device, dtype)
    if args.json:
        print(json.dumps({"cpu": cpu_info().describe(), "device": device, "dtype": dtype, "features": rows}))
        return 0
    print(f"{cpu_info().describe()}\nspeed features on {device} in {dtype}:")
    for row in rows:
        print(f"  {row['feature']:<30} {'available' if row['available'] else 'NOT available':<14} {row['why']}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .info import FILE_ONLY, human_count, model_info

    if args.features:
        return _features(args)
    info = model_info(variant_from_args(args))
    if args.json:
        print(json.dumps(info.to_dict()))
        return 0
    print(f"{info.model} ({info.dtype}){'  [random weights]' if info.random_weights else ''}")
    for name, count in info.params.items():
        print(f"  {name:<22} {human_count(count, ''):>9} params  {info.bytes[name] / 2**20:>10.1f} MiB")
    print(f"  {'total':<22} {human_count(info.total_params, ''):>9} params  {info.total_bytes / 2**20:>10.1f} MiB")
    print(f"  effective params (Gemma 3n count): {human_count(info.effective_params, '')}")
    print(f"  ({FILE_ONLY}: k/v projections of KV-shared layers, held in the released files, not built by transformers)")
    for key, value in info.config.items():
        print(f"  {key}: {value}")
    for warning in info.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _register_info(sub) -> None:
    p = sub.add_parser("info", help="parameter counts and bytes by component, effective parameters, config summary")
    add_variant_args(p)
    p.add_argument("--json", action="store_true")
    p.add_argument("--features", action="store_true", help="which speed features this machine runs (at --device, --dtype; default bfloat16), and why")
    p.set_defaults(handler=_info)


# -- tiny ----------------------------------------------------------------------------------------


def _tiny(args: argparse.Namespace) -> int:
    from .builtin.checkpoint import write_tiny

    out = write_tiny(args.out)
    print(f"wrote the tiny Gemma 3n checkpoint (random weights) to {out}")
    return 0


def _register_tiny(sub) -> None:
    p = sub.add_parser("tiny", help="write the built-in tiny checkpoint to a folder")
    p.add_argument("--out", required=True, help="destination folder")
    p.set_defaults(handler=_tiny)


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser."""
    from .matformer.cli import register as register_matformer

    parser = argparse.ArgumentParser(prog="python -m g3n_core", description="Gemma 3n workbench core")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (_register_generate, _register_info, _register_tiny, register_matformer):
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    return run_handler(build_parser().parse_args(argv))


def run_handler(args: argparse.Namespace) -> int:
    """Run a parsed command's handler: typed errors print one line (exit 2), other failures exit 1."""
    try:
        return args.handler(args)
    except G3nError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError, RuntimeError) as err:
        if os.environ.get("G3N_DEBUG"):
            raise
        print(f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
