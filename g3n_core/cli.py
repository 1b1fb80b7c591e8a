"""`python -m g3n_core`: generate, info, tiny, serve (and the MatFormer tools), in the spirit of `transformers run`.

Bad input exits with status 2 and a one-line message on stderr; set G3N_DEBUG=1 for tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from .errors import G3nError, MessageError, SettingsError
from .knobs import add_media_limit_args, add_settings_args, add_variant_args, media_limits, settings_from_args, variant_from_args

Handler = Callable[[argparse.Namespace], int]


# -- generate ------------------------------------------------------------------------------------


def _generate(args: argparse.Namespace) -> int:
    from .generation import stream_chat
    from .loading import load_model
    from .media import MediaPolicy

    if args.max_video_frames < 1:
        raise SettingsError(f"--max-frames {args.max_video_frames}: sample at least 1 frame from each video (default 8)")
    if len(args.audio) > 1:
        raise MessageError(f"{len(args.audio)} --audio clips given: one turn carries at most one audio clip; send the others separately")
    content: list[dict] = [{"type": "image", "image": p} for p in args.image]
    content += [{"type": "video", "video": p} for p in args.video]
    content += [{"type": "audio", "audio": p} for p in args.audio]
    content.append({"type": "text", "text": args.prompt})
    settings = settings_from_args(args)
    hears = args.audio or (args.video and settings.video_sound)  # a video's sound needs the audio tower too
    needed = tuple(t for t, used in (("vision", args.image or args.video), ("audio", hears)) if used)
    policy = MediaPolicy(allow_network=args.allow_network, **media_limits(args))
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
        media = "".join(", " + part for part in reply.media_parts())
        for warning in reply.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(
            f"[{reply.prompt_tokens} prompt tokens, {reply.new_tokens} new, ttft {reply.ttft_s:.2f} s, "
            f"{reply.tokens_per_s:.1f} tokens/s{media}{', random weights' if loaded.random_weights else ''}]",
            file=sys.stderr,
        )
    return 0


def _register_generate(sub) -> None:
    p = sub.add_parser("generate", help="chat once with text, images, audio or video")
    p.add_argument("prompt", help="the user's text")
    p.add_argument("--image", action="append", default=[], help="image file (repeat for several)")
    p.add_argument("--audio", action="append", default=[], help="audio file (one clip per turn; over 30 s see --long-audio)")
    p.add_argument("--video", action="append", default=[], help="video file: frames spread over it (--max-frames) and its sound")
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--allow-network", action="store_true", help="allow http(s) URLs as media")
    p.add_argument("--json", action="store_true", help="print one JSON object with text, tokens and timings")
    add_variant_args(p)
    add_settings_args(p)
    add_media_limit_args(p)
    p.set_defaults(handler=_generate)


# -- info ----------------------------------------------------------------------------------------


def _features(args: argparse.Namespace) -> int:
    from .hardware import cpu_info, features_table
    from .variant import default_device

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
    p.add_argument("--json", action="store_true")
    p.add_argument("--features", action="store_true", help="which speed features this machine runs (at --device, --dtype; default bfloat16), and why")
    add_variant_args(p)
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
    from .serve.cli import register as register_serve

    parser = argparse.ArgumentParser(prog="python -m g3n_core", description="Gemma 3n workbench core")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (_register_generate, _register_info, _register_tiny, register_matformer, register_serve):
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
        _say(f"error: {err}")
        return 2
    except (OSError, ValueError, RuntimeError) as err:
        if os.environ.get("G3N_DEBUG"):
            raise
        _say(f"error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        return 1
    except KeyboardInterrupt:
        return 130


def _say(line: str) -> None:
    """One line on stderr, even when it quotes text that is not valid Unicode (undecodable bytes of an argument)."""
    print(line.encode("utf-8", "backslashreplace").decode("utf-8"), file=sys.stderr)
