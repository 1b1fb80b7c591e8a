"""The OpenAI-compatible API as a FastAPI application, mounted at /v1 by `python -m g3n_core serve` and by the app.

Routes (relative to the mount): GET /models, GET /models/{id}, POST /chat/completions, POST
/completions, POST|GET /files, GET|DELETE /files/{id}. Every failure answers in OpenAI's error
shape; request bodies over `max_body_bytes` are cut off with 413 while they are read.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..errors import SettingsError
from .chat import chat_completions
from .completions import completions
from .errors import APIError, from_exception
from .files import FileStore
from .replies import ServedModel


class BodyLimit:
    """ASGI middleware: refuse bodies over `max_bytes` (by Content-Length at once, else while reading)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self) -> APIError:
        return APIError(413, f"the request body is over this server's {self.max_bytes}-byte limit; send smaller media or upload files first", code="request_too_large")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large().response()(scope, receive, send)
            return
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited, send)


def _answers(fn: Callable[..., Awaitable]) -> Callable[..., Awaitable]:
    """Route wrapper: any exception becomes OpenAI's error response."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        try:
            return await fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - mapped to a status and a typed message
            return from_exception(err).response()

    return wrapper


async def _json(request: Request) -> object:
    try:
        return await request.json()
    except ValueError as err:
        raise APIError(400, f"the request body is not valid JSON ({err})") from err


def _api_key(served: ServedModel) -> str | None:
    name = served.settings.api_key_env
    if not name:
        return None
    key = os.environ.get(name)
    if not key:
        raise SettingsError(f"--api-key-env {name}: ${name} is not set; export the key there (or drop the option to serve without one)")
    return key


def openai_api(served: ServedModel, files: FileStore) -> FastAPI:
    """The API's FastAPI app (mount it at /v1)."""
    key = _api_key(served)
    api = FastAPI(title="Gemma 3n workbench: OpenAI-compatible API", docs_url=None, redoc_url=None, openapi_url=None)
    api.add_middleware(BodyLimit, max_bytes=served.settings.max_body_bytes)

    @api.middleware("http")
    async def authorize(request: Request, call_next):
        if key is not None:
            given = request.headers.get("authorization", "")
            if not (given.startswith("Bearer ") and secrets.compare_digest(given[7:].encode(), key.encode())):
                return APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", code="invalid_api_key").response()
        return await call_next(request)

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        message = "no such route; see GET /v1/models" if err.status_code == 404 else str(err.detail)
        return APIError(err.status_code, message, code="not_found" if err.status_code == 404 else None).response()

    @api.exception_handler(APIError)
    async def api_error(request: Request, err: APIError):
        return err.response()

    def model_card() -> dict:
        return {"id": served.model_id, "object": "model", "created": served.created, "owned_by": "g3n-workbench"}

    @api.get("/models")
    async def list_models():
        return {"object": "list", "data": [model_card()]}

    @api.get("/models/{model_id:path}")
    @_answers
    async def get_model(model_id: str):
        served.check(model_id)
        return model_card()

    @api.post("/chat/completions")
    @_answers
    async def chat(request: Request):
        return await chat_completions(served, files, await _json(request))

    @api.post("/completions")
    @_answers
    async def complete(request: Request):
        return await completions(served, await _json(request))

    @api.post("/files")
    @_answers
    async def upload(request: Request):
        form = await request.form(max_files=1, max_fields=8)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise APIError(400, "send the file as multipart form field 'file' (and 'purpose')", param="file")
        data = await upload.read()
        if len(data) > served.settings.max_media_bytes:
            raise APIError(413, f"the file is over this server's {served.settings.max_media_bytes}-byte limit for one media item", code="file_too_large", param="file")
        return files.save(upload.filename or "", data, str(form.get("purpose") or "user_data"))

    @api.get("/files")
    async def list_files():
        return {"object": "list", "data": files.list()}

    @api.get("/files/{file_id}")
    @_answers
    async def get_file(file_id: str):
        return files.public(files.get(file_id))

    @api.delete("/files/{file_id}")
    @_answers
    async def delete_file(file_id: str):
        return files.delete(file_id)

    return api


def mount_root(api: FastAPI) -> FastAPI:
    """A root app with the API at /v1 (what `python -m g3n_core serve` runs)."""
    root = FastAPI(title="Gemma 3n workbench server", docs_url=None, redoc_url=None, openapi_url=None)
    root.mount("/v1", api)

    @root.get("/health")
    async def health():
        return JSONResponse({"status": "ok"})

    return root
