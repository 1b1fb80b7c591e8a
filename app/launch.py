"""`python app.py [--model M] [--host H] [--port P] [--share]`: pick the model, load it, serve the page.

The model is --model, else $G3N_MODEL, else google/gemma-3n-E4B-it on Hugging Face Spaces ($SPACE_ID),
else tiny. A hub model that is neither cached nor reachable (no network, HF_HUB_OFFLINE=1) falls
back to tiny within seconds and the page says so.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping
from pathlib import Path

SPACES_MODEL = "google/gemma-3n-E4B-it"
DEFAULT_MAX_FILE_SIZE = "50mb"


def build_parser() -> argparse.ArgumentParser:
    """The command line: the Variant knobs of the launch model plus server options."""
    from g3n_core.knobs import add_media_limit_args, add_variant_args
    from g3n_core.serve import ServeSettings
    from g3n_core.settings_args import add_settings_args

    from .results_quota import DEFAULT_RESULTS_QUOTA, parse_size

    parser = argparse.ArgumentParser(prog="python app.py", description="Gemma 3n Workbench: multimodal chat, comparisons and MatFormer slicing in the browser")
    add_variant_args(parser)
    parser.set_defaults(model=None)  # resolved by requested_model: --model, $G3N_MODEL, Spaces, tiny
    parser.add_argument("--host", default=None, help="interface to listen on (default $GRADIO_SERVER_NAME, else 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $GRADIO_SERVER_PORT, else the first free one from 7860)")
    parser.add_argument("--share", action="store_true", help="also serve through a public gradio.live link")
    parser.add_argument("--allow-url-media", action="store_true", help="let users give http(s) URLs as media (off: only uploads are read)")
    parser.add_argument("--model-root", action="append", default=[], help="folder whose checkpoint subfolders users may load (repeatable)")
    parser.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE, help="largest upload, e.g. 50mb (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=2, help="chat requests running at once on the model (default %(default)s)")
    parser.add_argument("--results-dir", default="results/app", help="where Compare runs are written and listed (default %(default)s)")
    parser.add_argument(
        "--results-quota", default=DEFAULT_RESULTS_QUOTA, type=parse_size,
        help="most disk the results folder may use (exports, Compare runs, downloads), e.g. 2gb; least recently used go first (default %(default)s)",
    )
    parser.add_argument("--remote-endpoint", action="append", default=[], metavar="URL",
                        help="an OpenAI-compatible endpoint (http://HOST:PORT/v1) users may compare as 'openai:URL model=NAME' (repeatable; none by default)")
    add_settings_args(parser.add_argument_group("OpenAI-compatible API at /v1 (docs/serve.md)"), ServeSettings, exclude=("allow_url_media",))
    add_media_limit_args(parser)
    return parser


def requested_model(cli_model: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """--model, else $G3N_MODEL, else the E4B hub model on Spaces, else tiny."""
    if cli_model:
        return cli_model
    if environ.get("G3N_MODEL"):
        return environ["G3N_MODEL"]
    if environ.get("SPACE_ID"):
        return SPACES_MODEL
    return "tiny"


def usable_model(model: str) -> tuple[str, list[str]]:
    """`model` when its configuration can be read now, else tiny with a note saying why (never waits on the hub)."""
    from g3n_core.errors import ModelSourceError
    from g3n_core.sources import classify, read_config

    source = classify(model)
    if source.kind != "hub":
        return model, []
    try:
        read_config(source)  # the cache, else a 2 s reachability probe (HF_HUB_OFFLINE honoured) before any download
    except ModelSourceError as err:
        return "tiny", [f"{model} is not available here ({err}). Running the built-in tiny model instead."]
    return model, []


def startup_variant(args: argparse.Namespace, environ: Mapping[str, str] = os.environ):
    """The launch Variant and the notes to show about how it was chosen."""
    from g3n_core.knobs import variant_from_args

    model, notes = usable_model(requested_model(args.model, environ))
    args = argparse.Namespace(**{**vars(args), "model": model})
    return variant_from_args(args), notes


def make_bench(args: argparse.Namespace, environ: Mapping[str, str] = os.environ):
    """The Workbench for these arguments, with the launch model loaded (falling back to tiny if a hub load fails)."""
    from g3n_core.errors import ModelSourceError

    from g3n_core.knobs import media_limits

    from .workbench import make_workbench

    variant, notes = startup_variant(args, environ)
    bench = make_workbench(
        variant,
        allow_url_media=args.allow_url_media,
        results_root=args.results_dir,
        model_roots=tuple(Path(r) for r in args.model_root),
        concurrency_limit=args.concurrency,
        remote_endpoints=tuple(args.remote_endpoint),
        notes=notes,
        results_quota=args.results_quota,
        media_limits=media_limits(args),
    )
    started = time.perf_counter()
    report = lambda fraction, message: print(f"[{fraction:4.0%}] {message}", flush=True)  # noqa: E731
    try:
        bench.cache.get(variant, report)
    except ModelSourceError as err:
        if variant.model == "tiny":
            raise
        fallback = variant.replace(model="tiny", dtype="float32", matformer=None, sparsity="default")
        bench.notes.append(f"{variant.model} could not be loaded ({err}). Running the built-in tiny model instead.")
        bench.default_variant = fallback
        bench.cache.get(fallback, report)
    for note in bench.notes:
        print(f"note: {note}", flush=True)
    print(f"model ready: {bench.default_variant.name} ({time.perf_counter() - started:.1f} s)", flush=True)
    return bench


def openai_routes(args: argparse.Namespace, bench) -> list:
    """The OpenAI-compatible API on the launch model, mounted at /v1 (media: uploads to this app and /v1/files only)."""
    from starlette.routing import Mount

    from g3n_core.serve import ServeSettings, build_api
    from g3n_core.settings_args import settings_from_args

    settings = settings_from_args(ServeSettings, args)
    api, _ = build_api(lambda: bench.cache.get(bench.default_variant), bench.default_variant.model, settings, bench.policy.allowed_roots)
    return [Mount("/v1", app=api)]  # the API's routes keep its upload store alive


def launch_kwargs(args: argparse.Namespace, bench) -> dict:
    """Keyword arguments of gr.Blocks.launch: address, share, upload cap, readable folders, look, the /v1 API."""
    from .export_zip import export_zip_route
    from .ui import CSS, THEME

    return dict(
        # FastAPI(routes=...), matched before Gradio's own: the /v1 API and MatFormer exports as zips streamed on demand
        app_kwargs={"routes": [*openai_routes(args, bench), export_zip_route(bench.exports_dir)]},
        server_name=args.host,  # None: Gradio reads GRADIO_SERVER_NAME, else 127.0.0.1
        server_port=args.port,  # None: Gradio reads GRADIO_SERVER_PORT, else the first free port from 7860
        share=args.share,
        max_file_size=args.max_file_size,
        # Served by URL: the chat examples and the copies the app makes for download; never the run folders or exports.
        allowed_paths=[str(Path(bench.examples_dir).resolve()), str(bench.downloads_dir)],
        show_error=False,
        ssr_mode=False,
        theme=THEME,
        css=CSS,
    )


def launch_demo(bench, args: argparse.Namespace, block: bool = True):
    """Build the page for `bench` and serve it as `args` say; returns the running gr.Blocks."""
    from .ui import build_demo

    from .feedback import refuse_malformed_inputs

    demo = refuse_malformed_inputs(build_demo(bench, allow_url_media=args.allow_url_media))
    demo.queue(default_concurrency_limit=4, max_size=256)
    demo.launch(prevent_thread_lock=not block, **launch_kwargs(args, bench))
    return demo


def serve(args: argparse.Namespace, environ: Mapping[str, str] = os.environ, block: bool = True):
    """Load the launch model and serve the app (blocking when `block`)."""
    from .feedback import setup_logging
    from .zerogpu import spaces_gpu

    setup_logging()  # one line per refused request
    spaces_gpu()  # on ZeroGPU, `import spaces` must come before CUDA is touched
    return launch_demo(make_bench(args, environ), args, block)


def main(argv: list[str] | None = None) -> None:
    """Entry point of app.py."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported, which serve() does first
    serve(build_parser().parse_args(argv))
