"""OpenAI's error shape for every failure: {"error": {"message", "type", "param", "code"}} with the right HTTP status.

Typed g3n_core errors keep their message (it says what to do); anything unexpected becomes a 500
whose message names no internals (the server log has the traceback).
"""

from __future__ import annotations

import logging

from fastapi.responses import JSONResponse

from ..errors import (
    ContextOverflowError,
    G3nError,
    MediaAccessError,
    MediaError,
    ModelSourceError,
    UnsupportedError,
)

log = logging.getLogger("g3n_core.serve")


class APIError(Exception):
    """An error to send to the client as OpenAI does."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param

    def body(self) -> dict:
        """The JSON body."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        """The HTTP response."""
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def from_exception(err: BaseException) -> APIError:
    """The APIError for any exception raised while answering."""
    if isinstance(err, APIError):
        return err
    if isinstance(err, ContextOverflowError):
        return APIError(400, str(err), code="context_length_exceeded", param="messages")
    if isinstance(err, MediaAccessError):
        return APIError(403, str(err), type="permission_error", code="media_access_refused", param="messages")
    if isinstance(err, MediaError):
        return APIError(400, str(err), code="invalid_media", param="messages")
    if isinstance(err, UnsupportedError):
        return APIError(400, str(err), code="unsupported")
    if isinstance(err, ModelSourceError):
        return APIError(503, str(err), type="server_error", code="model_unavailable")
    if isinstance(err, G3nError):
        return APIError(400, str(err))
    log.exception("unexpected error while answering a request", exc_info=err)
    return APIError(500, "the server failed to answer this request (its log has the details); try again", type="server_error", code="internal_error")
