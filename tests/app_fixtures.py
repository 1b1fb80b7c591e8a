"""Helpers for the app tests: a Workbench on the session's tiny model, the app (or any ASGI app) served on a free port."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from contextlib import contextmanager

import uvicorn

from app.launch import build_parser, launch_demo
from app.workbench import Workbench, make_workbench
from g3n_core import ModelCache, load_model


def tiny_bench(tiny, results_root, **options) -> Workbench:
    """A Workbench whose cache hands out the already-loaded tiny model (other variants load normally)."""
    cache = ModelCache(loader=lambda variant, progress=None: tiny if variant == tiny.variant else load_model(variant, progress))
    return make_workbench(tiny.variant, cache=cache, results_root=results_root, **options)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(bench: Workbench, *cli: str):
    """Serve `bench` on 127.0.0.1:<free port> with app.py's command-line options `cli`; yields the URL."""
    args = build_parser().parse_args(["--host", "127.0.0.1", "--port", str(free_port()), *cli])
    demo = launch_demo(bench, args, block=False)
    try:
        yield demo.local_url
    finally:
        demo.close()


@contextmanager
def serving(api):
    """Serve the ASGI app `api` with uvicorn on 127.0.0.1:<free port> in a thread; yields its base URL."""
    with socket.socket() as sock:  # the socket stays bound, so no one else takes the port before uvicorn does
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(api, log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            server.should_exit = True
            thread.join(timeout=30)


@contextmanager
def recording_site():
    """A local HTTP site that records the paths asked of it: yields (base URL, hits), for proving a URL was never fetched."""
    hits: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    site = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}", hits
    finally:
        site.shutdown()
