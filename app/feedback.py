"""How the app reports to the page: typed errors as readable toasts (raised, or shown without failing the event),
load progress as a gr.Progress bar.

A refused request logs one line (the error's type and message) at INFO; its traceback only at DEBUG.
Gradio renders an error's message as (sanitized) HTML in the page's toast but hands it to API
clients as it is, so a refusal is HTML-escaped for the page and plain text for gradio_client and
HTTP clients (`readable_error` tells them apart by the request).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from html import escape
from typing import Any

import gradio as gr
import pydantic

from g3n_core import G3nError, ModelSourceError, ModelTooLargeError, SliceError, VariantError

log = logging.getLogger("g3n.app")


def error_title(err: Exception) -> str:
    """The toast's title for an error."""
    if isinstance(err, (VariantError, ModelSourceError, SliceError, ModelTooLargeError)):
        return "Model settings error"
    return "Request error" if isinstance(err, G3nError) else "Unexpected error"


def from_api_client() -> bool:
    """True while Gradio runs an event for gradio_client (its x-gradio-user header) or the HTTP API (/gradio_api/call/)."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    if request is None:
        return False
    try:
        return request.headers.get("x-gradio-user") == "api" or "/call/" in request.url.path
    except AttributeError:  # a Request built without an HTTP request (tests, MCP)
        return False


def readable_error(err: Exception, html: bool | None = None) -> gr.Error:
    """A gr.Error carrying the typed error's own message (it says what to do); logged once, without a traceback.

    The message is HTML-escaped for the page's toast and plain for API clients: `html=None` tells
    them apart by the request being served (`from_api_client`); the /chat endpoint passes False.
    """
    html = not from_api_client() if html is None else html
    message = str(err) if isinstance(err, G3nError) else f"{type(err).__name__}: {err}"
    if isinstance(err, G3nError):
        log.info("refused (%s): %s", type(err).__name__, message)
        log.debug("refused request", exc_info=err)
    else:  # a bug, not a bad request: worth its traceback
        log.error("failed: %s", message, exc_info=err)
    return gr.Error(escape(message) if html else message, title=error_title(err), print_exception=False)


def setup_logging(level: int = logging.INFO) -> None:
    """Send the app's own log lines (one per refused request) to stderr, once."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(level)
        log.propagate = False


def refuse_malformed_inputs(demo: gr.Blocks) -> gr.Blocks:
    """Answer a request whose inputs Gradio cannot read (wrongly typed JSON) like any refusal: one log line and a
    plain message naming the input, instead of a traceback and `{"error": null}`.

    Gradio validates and converts every input in `Blocks.preprocess_data` before the event function
    runs; it is wrapped on this instance only (as `safety.refuse_url_files` wraps a component's method).
    """
    preprocess = demo.preprocess_data

    async def checked(block_fn, inputs: list[Any], state, explicit_call: bool = False):
        try:
            return await preprocess(block_fn, inputs, state, explicit_call)
        except gr.Error as err:  # Gradio's own refusals (a slider value out of its range): named, logged once
            index = _out_of_range_input(block_fn, inputs)
            message = f"{_input_name(block_fn, index)}: {err.message}" if index is not None else str(err.message)
            log.info("refused (input out of range): %s", message)
            raise gr.Error(message, title="Request error", print_exception=False) from err
        except (pydantic.ValidationError, ValueError, TypeError) as err:
            message = malformed_input_message(block_fn, inputs, err)
            log.info("refused (malformed input): %s", message)
            log.debug("malformed input", exc_info=err)
            raise gr.Error(message, title="Request error", print_exception=False) from err

    demo.preprocess_data = checked
    return demo


def malformed_input_message(block_fn, inputs: list[Any], err: Exception) -> str:
    """'input 5 (temperature): expected float, got 'hot'': which input of an event could not be read, and why."""
    index = _failing_input(block_fn, inputs, err)
    if index is None:
        return f"the request's inputs cannot be read ({_first_line(err)}); see the endpoint's parameters with Client.view_api()"
    value = repr(inputs[index]) if index < len(inputs) else "nothing"
    if isinstance(block_fn.inputs[index], (gr.Number, gr.Slider)):
        why = "expected a number"
    elif isinstance(err, pydantic.ValidationError):
        why = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in err.errors()[:3])
    else:
        why = _first_line(err.__cause__ or err)
    return f"input {index} ({_input_name(block_fn, index)}) cannot be read: {why} (got {value[:80]}); see the endpoint's parameters with Client.view_api()"


def _failing_input(block_fn, inputs: list[Any], err: Exception) -> int | None:
    found = re.search(r"component at index (\d+)", str(err))
    if found:
        return int(found.group(1))
    for index, block in enumerate(block_fn.inputs):
        model = getattr(block, "data_model", None)
        if model is None or getattr(block, "stateful", False) or index >= len(inputs) or inputs[index] is None:
            continue
        try:
            model.model_validate(inputs[index], context={"validate_meta": True})
        except (pydantic.ValidationError, ValueError, TypeError):
            return index
    return None


def _out_of_range_input(block_fn, inputs: list[Any]) -> int | None:
    for index, block in enumerate(block_fn.inputs):
        if isinstance(block, (gr.Number, gr.Slider)) and index < len(inputs):
            try:
                block.preprocess(inputs[index])
            except gr.Error:
                return index
            except (TypeError, ValueError):
                continue
    return None


def _input_name(block_fn, index: int) -> str:
    """The event function's parameter name for an input (what gradio_client calls it), else the component's label."""
    try:
        names = [p.name for p in inspect.signature(block_fn.fn).parameters.values() if p.kind is not p.VAR_KEYWORD]
    except (TypeError, ValueError):
        names = []
    if len(names) >= len(block_fn.inputs):
        return names[index]
    block = block_fn.inputs[index]
    return getattr(block, "label", None) or block.get_block_name()


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def progress_callback(progress: gr.Progress | None) -> Callable[[float, str], None] | None:
    """g3n_core's progress(fraction, message) feeding a gr.Progress bar."""
    if progress is None:
        return None
    return lambda fraction, message: progress(fraction, desc=message)


def show_error(err: Exception) -> str:
    """Show `err` as a toast without failing the event (a failed event marks its outputs "Error") and return
    the same message as one Markdown line for the page."""
    shown = err if isinstance(err, gr.Error) else readable_error(err)
    gr.Warning(shown.message, duration=20, title=shown.title or "Error")
    return f"⚠️ **{shown.title or 'Error'}:** {shown.message}"
