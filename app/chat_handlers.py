"""Chat turns: from the page's messages to g3n_core's stream_chat and back, one session at a time.

A session's conversation is a list of Gradio chat messages kept in that session's gr.State (never
read back from the browser). User turns hold text plus {"path", "mime_type"} file parts; each
reply is followed by a "stats" message (a collapsed Chatbot thought titled with prompt tokens,
time to first token and tokens/s) that is shown but never sent to the model.
"""

from __future__ import annotations

import contextlib
import mimetypes
import re
from collections.abc import Callable, Iterator, Mapping
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr
from gradio_client.utils import is_http_url_like

from g3n_core import ChatReply, GenerationSettings, G3nError, LoadedModel, Variant, stream_chat
from g3n_core.generation import settings_from_values, user_settings
from g3n_core.errors import MessageError, UnsupportedMediaError
from g3n_core.media import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES

from .feedback import progress_callback, readable_error, show_error
from .safety import upload_folder
from .workbench import Workbench

History = list[dict]
STATS_MARK = "g3n-stats"  # metadata id prefix of the per-reply stats message
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly."


# -- settings ------------------------------------------------------------------------------------


DEFAULTS = GenerationSettings()  # the one set of sampling defaults: sliders, /chat API and CLI alike
SETTING_NAMES = tuple(f.name for f in user_settings())  # the order of the settings controls and /chat parameters


def settings_from_ui(values: Mapping[str, Any]) -> GenerationSettings:
    """GenerationSettings from the page's controls or the API's parameters (by field name); temperature 0 is greedy;
    NaN, infinities and wrongly typed values are a SettingsError."""
    return settings_from_values(values)


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
    """One line: prompt tokens, time to first token, decode speed, video frames and seconds of sound (windows of a
    long clip), and whether it was stopped."""
    line = f"{reply.prompt_tokens} prompt tokens · first token {reply.ttft_s:.2f} s · {reply.tokens_per_s:.1f} tokens/s"
    line += "".join(" · " + part for part in reply.media_parts())
    return line + (" · stopped" if reply.finish_reason == "cancelled" else "")


def stats_message(reply: ChatReply, variant: Variant) -> dict:
    """The collapsed 'thought' shown under a reply, with the details inside."""
    ending = {"stop": "the model ended its turn", "length": "reached max new tokens", "cancelled": "stopped by you"}
    lines = [
        f"- model: `{variant.name}`",
        f"- {reply.new_tokens} new tokens in {reply.total_s:.2f} s ({ending.get(reply.finish_reason, reply.finish_reason)})",
        *(f"- ⚠️ {escape(w)}" for w in reply.warnings),
        *([f"- answered over this transcript of the audio: {escape(reply.transcript)}"] if reply.transcript else []),
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
    message = message or {}
    if not snapshot:
        gr.Warning("No snapshot yet: start the webcam and take a picture first.", title="Webcam")
        return _box(message.get("text"), message.get("files")), None
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

    Bad input raises a gr.Error before anything is yielded; its message names files by the user's
    own file names, never by their server paths. The session's stop button
    (`bench.streams.stop(session)`) ends the reply early, which then finishes with its stats;
    closing the iterator (an API client cancelling) also cancels g3n_core's ChatStream, so either
    way the model is free within a token. Errors and warnings are HTML-escaped for the page, plain for API clients (`html=False`).
    """
    try:
        yield from _stream_turn(bench, history, turn, variant, system_prompt, settings, progress, session, html)
    except gr.Error as err:
        raise public_error(err, [*history, turn]) from err


def _stream_turn(bench, history, turn, variant, system_prompt, settings, progress, session, html):
    loaded = loaded_model(bench, variant, progress, html)
    try:
        stream = stream_chat(loaded, model_messages([*history, turn], system_prompt), settings, bench.policy)
    except G3nError as err:
        raise readable_error(err, html) from err
    for warning in stream.prepared.warnings:  # known before the first token: say them at once (the stats repeat them)
        gr.Warning(warning if html is False else escape(warning))
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
    yield [*base, {"role": "assistant", "content": reply.text}, stats_message(reply, variant)], reply.text, reply


def public_error(err: gr.Error, conversation: History) -> gr.Error:
    """`err` with every server path of the conversation's files replaced by the file's own name (what the user uploaded)."""
    message = err.message
    for part in (c for m in conversation for c in _content(m) if isinstance(c, dict) and "path" in c):
        path, name = part["path"], Path(part["path"]).name
        message = message.replace(escape(path), escape(name)).replace(path, name)
    # Anything else inside Gradio's upload folder (<folder>/<digest>/<name>) loses its folders too.
    folder = str(upload_folder())
    message = re.sub(f"(?:{re.escape(escape(folder))}|{re.escape(folder)})/[^/\\s]+/", "", message)
    return gr.Error(message, title=err.title, print_exception=False)


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
        gr.Warning(escape(str(err)), title="Message")
        return history, None, gr.MultimodalTextbox()
    return [*history, turn], turn, gr.MultimodalTextbox(value=None, interactive=False, submit_btn=False, stop_btn=True)


def unlocked_box(message: dict | None = None) -> gr.MultimodalTextbox:
    """The textbox ready for the next message; holding `message` again (its text and attachments) when given.

    A URL is never put back: Gradio would fetch it to show it.
    """
    value = {}
    if message is not None:
        box = textbox_value(message)
        value = {"value": {**box, "files": [f for f in box["files"] if not is_http_url_like(f)]}}
    return gr.MultimodalTextbox(interactive=True, submit_btn=True, stop_btn=False, **value)


def respond(
    bench: Workbench,
    history: History,
    turn: dict | None,
    variant: Variant,
    system_prompt: str,
    settings: Mapping[str, Any],
    progress: gr.Progress | None = None,
    session: str | None = None,
) -> Iterator[tuple[History, History, Any]]:
    """Stream the reply to `turn` into the chatbot, the session's history and (at the end) the textbox.

    `settings` holds the settings controls' values by field name. A failed turn never locks the
    page: whatever went wrong (bad media, two audio clips, over the context, a refused URL, a model
    error) nothing is raised; the failed turn is taken off the page, the message is shown (naming
    the user's file, never a server path), and the user's text and attachments are back in the
    unlocked box for editing.
    """
    if turn is None:
        yield history, history, unlocked_box()
        return
    try:
        steps = stream_turn(bench, history, turn, variant, system_prompt, settings_from_ui(settings), progress_callback(progress), session)
        with contextlib.closing(steps):
            for conversation, _, _ in steps:
                yield conversation, conversation, gr.skip()
    except Exception as err:  # noqa: BLE001 - every failure of a turn is shown, and the chat stays usable
        show_error(public_error(err if isinstance(err, gr.Error) else readable_error(err), [*history, turn]))
        yield history, history, unlocked_box(turn)
        return
    yield gr.skip(), gr.skip(), unlocked_box()


def finish_turn() -> gr.MultimodalTextbox:
    """Unlock the textbox after a reply (finished, failed or stopped): `respond` already did, this is the safety net."""
    return unlocked_box()


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
    max_new_tokens: float = DEFAULTS.max_new_tokens,
    temperature: float = DEFAULTS.temperature,
    top_p: float = DEFAULTS.top_p,
    top_k: float = DEFAULTS.top_k,
    repetition_penalty: float = DEFAULTS.repetition_penalty,
    seed: float = DEFAULTS.seed,
    long_audio: str = DEFAULTS.long_audio,
    video_sound: bool = DEFAULTS.video_sound,
) -> Iterator[tuple[str, History]]:
    """The /chat API: the reply text (streamed), appended with the message to this session's history.

    Its setting parameters are GenerationSettings' fields, in SETTING_NAMES order, with its defaults
    (named here so that API clients see them). Refusals reach the client as the typed error's
    plain-text message (nothing is HTML-escaped here).
    """
    try:
        settings = settings_from_ui(dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                                         repetition_penalty=repetition_penalty, seed=seed, long_audio=long_audio,
                                         video_sound=video_sound))
        turn = user_message(message)
    except G3nError as err:
        raise readable_error(err, html=False) from err
    with contextlib.closing(stream_turn(bench, history, turn, variant, system_prompt, settings, html=False)) as steps:
        for conversation, text, _ in steps:
            yield text, conversation


def api_history(history: History) -> list[dict]:
    """The /history API: this session's conversation as role, text and file names."""
    return transcript(history)
