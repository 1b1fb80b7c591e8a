"""`python -m g3n_core serve --model M [--host H] [--port P]`: load one Variant and serve the OpenAI-compatible API at /v1."""

from __future__ import annotations

import argparse
import signal
import sys


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..knobs import variant_from_args
    from ..loading import load_model
    from ..settings_args import settings_from_args
    from . import build_api, mount_root
    from .settings import ServeSettings

    settings = settings_from_args(ServeSettings, args)
    variant = variant_from_args(args)
    loaded = load_model(variant, lambda fraction, message: print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True))
    api, files = build_api(lambda: loaded, settings.model_name or variant.model, settings)
    note = " (random weights)" if loaded.random_weights else ""
    print(f"serving {settings.model_name or variant.model} ({variant.name}){note} at http://{args.host}:{args.port}/v1", file=sys.stderr, flush=True)
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it to the handler found at start: make that
    # handler an exit, so the upload folder below is removed instead of the process dying on the spot.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        uvicorn.run(mount_root(api), host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    finally:
        files.close()
    return 0


def register(sub) -> None:
    """Add the `serve` command."""
    from ..knobs import add_variant_args
    from ..settings_args import add_settings_args
    from .settings import ServeSettings

    p = sub.add_parser("serve", help="serve a model through an OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models)")
    add_variant_args(p)
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default %(default)s; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"), help="uvicorn's log level")
    add_settings_args(p.add_argument_group("limits and access"), ServeSettings)
    p.set_defaults(handler=_serve)
