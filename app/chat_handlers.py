"""Chat turns: from the page's messages to g3n_core's stream_chat and back, one session at a time.

A session's conversation is a list of Gradio chat messages kept in that session's gr.State (never
read back from the browser). User turns hold text plus {"path", "mime_type"} file parts; each
reply is followed by a "stats" message (a collapsed Chatbot thought titled with prompt tokens,
time to first token and tokens/s) that is shown but never sent to the model.
"""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path

import gradio as gr

from g3n_core import ChatReply, GenerationSettings, G3nError, LoadedModel, Variant, stream_chat
from g3n_core.errors import MessageError, UnsupportedMediaError
from g3n_core.generation import settings_from_numbers
from g3n_core.media import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES

from .feedback import progress_callback, readable_error
from .workbench import Workbench

History = list[dict]
STATS_MARK = "g3n-stats"  # metadata id prefix of the per-reply stats message
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly."


# -- settings ------------------------------------------------------------------------------------


def settings_from_ui(max_new_tokens: float, temperature: float, top_p: float, top_k: float, seed: float) -> GenerationSettings:
    """GenerationSettings from the sliders: temperature 0 means greedy decoding; NaN or a wrong type is a SettingsError."""
    return settings_from_numbers(max_new_tokens, temperature, top_p, top_k, seed)


# -- messages ------------------------------------------------------------------------------------


def file_kind(path: str, mime_type: str | None = None) -> str:
    """'image', 'audio' or 'video' for an attached file, from its MIME type or else its suffix."""
    major = (mime_type or mimetypes.guess_type(path)[0] or "").split("/")[0]
    if major in ("image", "audio", "video"):
        return major
    suffix = Path(path).suffix.lower()
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES), ("video", VIDEO_SUFFIXES)):
        if suffix in suffixes:
            return kind
    raise UnsupportedMediaError(Path(path).name, "attach images, audio clips or videos; this file is none of them")


def _file_path(item) -> str:
    return item if isinstance(item, str) else item["path"]


def _content(message: dict) -> list:
    """A chat message's content as a list of parts (Gradio gives a bare string for plain text)."""
    return message["content"] if isinstance(message["content"], list) else [message["content"]]


def _box(text: str | None, files) -> dict:
    """A MultimodalTextbox value: the text and the paths of the files (given as paths or file dicts)."""
    return {"text": text or "", "files": [_file_path(f) for f in files or []]}


def user_message(message: dict | str | None) -> dict:
    """The chat message for what the user sent: file parts first (as Gemma's prompts put media), then the text."""
    if isinstance(message, str):
        message = {"text": message, "files": []}
    message = message or {}
    if not isinstance(message, dict) or not isinstance(message.get("text") or "", str) or not isinstance(message.get("files") or [], list):
        raise MessageError('a message is {"text": a string, "files": a list of uploaded files}')
    box = _box(message.get("text"), message.get("files"))
    text, files = box["text"].strip(), box["files"]
    if not text and not files:
        raise MessageError("the message is empty: type some text or attach an image, audio clip or video")
    content: list = [{"path": p, "mime_type": mimetypes.guess_type(p)[0]} for p in files]
    if text:
        content.append(text)
    return {"role": "user", "content": content}


def is_stats(message: dict) -> bool:
    """True for the per-reply stats messages (shown in the page, never sent to the model)."""
    return str((message.get("metadata") or {}).get("id", "")).startswith(STATS_MARK)


def _model_part(item) -> dict:
    if isinstance(item, str):
        return {"type": "text", "text": item}
    if item.get("type") == "text":
        return {"type": "text", "text": item["text"]}
    path = item["file"]["path"] if item.get("type") == "file" else item["path"]
    kind = file_kind(path, item.get("mime_type"))
    return {"type": kind, kind: path}


def model_messages(history: History, system_prompt: str = "") -> list[dict]:
    """g3n_core chat messages for a conversation: stats dropped, consecutive same-role messages merged."""
    messages: list[dict] = []
    if system_prompt and system_prompt.strip():
        messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt.strip()}]})
    for message in history:
        if is_stats(message):
            continue
        parts = [_model_part(item) for item in _content(message)]
        if messages and messages[-1]["role"] == message["role"]:
            messages[-1]["content"] += parts
        else:
            messages.append({"role": message["role"], "content": parts})
    return messages


def format_stats(reply: ChatReply) -> str:
    """One line: prompt tokens, time to first token, decode speed (and whether it was stopped)."""
    line = f"{reply.prompt_tokens} prompt tokens · first token {reply.ttft_s:.2f} s · {reply.tokens_per_s:.1f} tokens/s"
    return line + (" · stopped" if reply.finish_reason == "cancelled" else "")


def stats_message(reply: ChatReply, variant: Variant) -> dict:
    """The collapsed 'thought' shown under a reply, with the details inside."""
    ending = {"stop": "the model ended its turn", "length": "reached max new tokens", "cancelled": "stopped by you"}
    lines = [
        f"- model: `{variant.name}`",
        f"- {reply.new_tokens} new tokens in {reply.total_s:.2f} s ({ending.get(reply.finish_reason, reply.finish_reason)})",
        *(f"- ⚠️ {escape(w)}" for w in reply.warnings),
    ]
    return {
        "role": "assistant",
        "content": "\n".join(lines),
        "metadata": {"title": "📊 " + format_stats(reply), "id": f"{STATS_MARK}-{id(reply)}", "status": "done"},
    }


def transcript(history: History) -> list[dict]:
    """A plain view of a conversation: role, text and attached file names (stats left out)."""
    rows = []
    for message in history:
        if is_stats(message):
            continue
        content = _content(message)
        texts = [c if isinstance(c, str) else c.get("text", "") for c in content if isinstance(c, str) or c.get("type") == "text"]
        files = [Path(c["path"]).name for c in content if isinstance(c, dict) and "path" in c]
        rows.append({"role": message["role"], "text": "\n".join(texts), "files": files})
    return rows


# -- history edits (retry / undo) ----------------------------------------------------------------


def split_last_turn(history: History) -> tuple[History, dict | None]:
    """The history before the last user message, and that message (None when there is none)."""
    for index in range(len(history) - 1, -1, -1):
        if history[index]["role"] == "user":
            return history[:index], history[index]
    return list(history), None


def textbox_value(message: dict | None) -> dict:
    """A MultimodalTextbox value holding a user message again (for undo)."""
    if message is None:
        return {"text": "", "files": []}
    content = _content(message)
    return _box("\n".join(c for c in content if isinstance(c, str)), [c for c in content if isinstance(c, dict) and "path" in c])


def attach_snapshot(message: dict | None, snapshot: str | None) -> tuple[dict, None]:
    """Add a webcam snapshot to the message being written (its text and other files kept); clear the camera."""
    if not snapshot:
        raise gr.Error("No snapshot yet: start the webcam and take a picture first.", title="Webcam")
    message = message or {}
    return _box(message.get("text"), [*(message.get("files") or []), snapshot]), None


# -- generation ----------------------------------------------------------------------------------


def loaded_model(
    bench: Workbench, variant: Variant, progress: Callable[[float, str], None] | None = None, html: bool | None = None
) -> LoadedModel:
    """The session's model from the shared cache (loading it, with progress, when needed)."""
    try:
        return bench.cache.get(variant, progress)
    except G3nError as err:
        raise readable_error(err, html) from err


def stream_turn(
    bench: Workbench,
    history: History,
    turn: dict,
    variant: Variant,
    system_prompt: str,
    settings: GenerationSettings,
    progress: Callable[[float, str], None] | None = None,
    session: str | None = None,
    html: bool | None = None,
) -> Iterator[tuple[History, str, ChatReply | None]]:
    """Answer `turn` after `history`: yields (conversation so far, reply text so far, final reply or None).

    Bad input raises a gr.Error before anything is yielded. The session's stop button
    (`bench.streams.stop(session)`) ends the reply early, which then finishes with its stats;
    closing the iterator (an API client cancelling) also cancels g3n_core's ChatStream, so either
    way the model is free within a token. Errors and warnings are HTML-escaped for the page, plain for API clients (`html=False`).
    """
    loaded = loaded_model(bench, variant, progress, html)
    try:
        stream = stream_chat(loaded, model_messages([*history, turn], system_prompt), settings, bench.policy)
    except G3nError as err:
        raise readable_error(err, html) from err
    base = [*history, turn]
    text = ""
    if session is not None:
        bench.streams.started(session, stream)
    try:
        with contextlib.closing(_pieces(stream, html)) as pieces:
            for piece in pieces:
                text += piece
                yield [*base, {"role": "assistant", "content": text}], text, None
    finally:
        if session is not None:
            bench.streams.finished(session, stream)
    reply = stream.reply
    for warning in reply.warnings:
        gr.Warning(warning if html is False else escape(warning))
    yield [*base, {"role": "assistant", "content": reply.text}, stats_message(reply, variant)], reply.text, reply


def _pieces(stream, html: bool | None = None) -> Iterator[str]:
    try:
        yield from stream
    except Exception as err:  # noqa: BLE001 - a failed generation (typed or not) is shown in the page; the app keeps serving
        raise readable_error(err, html) from err
    finally:
        if stream.reply is None:
            stream.cancel()


# -- event functions (wired in chat_tab.py; Gradio passes the session's gr.State values) -----------


def start_turn(message: dict, history: History) -> tuple[History, dict | None, gr.MultimodalTextbox]:
    """Show the user's message at once and lock the textbox (its stop button shows) while the reply streams."""
    try:
        turn = user_message(message)
    except G3nError as err:
        gr.Warning(escape(str(err)))
        return history, None, gr.MultimodalTextbox()
    return [*history, turn], turn, gr.MultimodalTextbox(value=None, interactive=False, submit_btn=False, stop_btn=True)


def respond(
    bench: Workbench,
    history: History,
    turn: dict | None,
    variant: Variant,
    system_prompt: str,
    max_new_tokens: float,
    temperature: float,
    top_p: float,
    top_k: float,
    seed: float,
    progress: gr.Progress | None = None,
    session: str | None = None,
) -> Iterator[tuple[History, History]]:
    """Stream the reply to `turn` into the chatbot and the session's history (both outputs, every step).

    On bad input the failed message is taken off the page again and the error is shown.
    """
    if turn is None:
        yield history, history
        return
    try:
        settings = settings_from_ui(max_new_tokens, temperature, top_p, top_k, seed)
        steps = stream_turn(bench, history, turn, variant, system_prompt, settings, progress_callback(progress), session)
        with contextlib.closing(steps):
            for conversation, _, _ in steps:
                yield conversation, conversation
    except G3nError as err:
        yield history, history
        raise readable_error(err) from err
    except gr.Error:
        yield history, history
        raise


def finish_turn() -> gr.MultimodalTextbox:
    """Unlock the textbox after a reply (finished, failed or stopped)."""
    return gr.MultimodalTextbox(interactive=True, submit_btn=True, stop_btn=False)


def retry_turn(history: History) -> tuple[History, History, dict | None]:
    """Drop the last reply and send the last user message again."""
    before, turn = split_last_turn(history)
    shown = [*before, turn] if turn else before
    return shown, before, turn


def undo_turn(history: History) -> tuple[History, History, dict]:
    """Drop the last exchange and put the user's message back into the textbox."""
    before, turn = split_last_turn(history)
    return before, before, textbox_value(turn)


def example_message(evt: gr.SelectData) -> dict:
    """The textbox value of a clicked chat example."""
    value = evt.value or {}
    return _box(value.get("text"), value.get("files"))


def api_chat(
    bench: Workbench,
    message: dict,
    history: History,
    variant: Variant,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    max_new_tokens: float = 256,
    temperature: float = 0.0,
    top_p: float = 0.95,
    top_k: float = 64,
    seed: float = 0,
) -> Iterator[tuple[str, History]]:
    """The /chat API: the reply text (streamed), appended with the message to this session's history.

    Refusals reach the client as the typed error's plain-text message (nothing is HTML-escaped here).
    """
    try:
        settings = settings_from_ui(max_new_tokens, temperature, top_p, top_k, seed)
        turn = user_message(message)
    except G3nError as err:
        raise readable_error(err, html=False) from err
    with contextlib.closing(stream_turn(bench, history, turn, variant, system_prompt, settings, html=False)) as steps:
        for conversation, text, _ in steps:
            yield text, conversation


def api_history(history: History) -> list[dict]:
    """The /history API: this session's conversation as role, text and file names."""
    return transcript(history)
