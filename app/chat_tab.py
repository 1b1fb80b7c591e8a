"""The Chat tab's layout and event wiring; the logic is in chat_handlers."""

from __future__ import annotations

from functools import partial

import gradio as gr

from g3n_core import Variant
from g3n_core.generation import user_settings

from . import chat_handlers as h
from .examples import chat_examples
from .safety import refuse_url_files
from .workbench import Workbench
from .zerogpu import on_gpu


def setting_control(f, context: int) -> gr.components.Component:
    """The control of one GenerationSettings field, from its metadata: a slider over its range (max new
    tokens up to the model's context), a number when it has no upper end, a checkbox for on/off, a
    dropdown for a choice."""
    meta = f.metadata
    common = dict(label=f.name.replace("_", " ").capitalize(), info=meta["help"], elem_id=f.name.replace("_", "-"))
    if str(f.type) == "bool":
        return gr.Checkbox(f.default, **common)
    if meta.get("choices"):
        return gr.Dropdown(list(meta["choices"]), value=f.default, **common)
    high = context if f.name == "max_new_tokens" else meta["high"]
    if high is None:
        return gr.Number(f.default, minimum=meta["low"], precision=0 if str(f.type) == "int" else None, **common)
    return gr.Slider(meta["low"], high, min(f.default, high), step=meta["step"], **common)


def context_limit(bench: Workbench, variant: Variant) -> gr.Slider:
    """The max-new-tokens slider follows the session's model: at most its context."""
    context = bench.cache.get(variant).context_length
    return gr.Slider(maximum=context)


def render_chat_tab(bench: Workbench, variant_state: gr.State, allow_url_media: bool) -> None:
    """Chatbot, multimodal textbox (files + microphone), settings column, and the /chat and /history APIs."""
    history = gr.State([])  # this session's conversation; never read back from the browser
    pending = gr.State(None)  # the user message being answered
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                label="Conversation",
                show_label=False,  # its floating badge would cover the first reply on narrow screens
                height=520,
                examples=chat_examples(bench.examples_dir),
                placeholder="**Ask about text, images, audio or video.** Attach files with 📎, record with 🎙️, or start from an example.",
                buttons=["copy", "copy_all"],
                feedback_options=None,
                elem_id="chatbot",
            )
            textbox = gr.MultimodalTextbox(
                placeholder="Type a message, attach images / audio / video, or record…",
                file_types=["image", "audio", "video"],
                file_count="multiple",
                sources=["upload", "microphone"],
                show_label=False,
                autofocus=False,  # focusing it on load scrolled the header out of view
                elem_id="chat-input",
            )
            refuse_url_files(textbox, allow_url_media)
            # MultimodalTextbox has no webcam source, so a snapshot is taken here and attached as an image file.
            with gr.Accordion("📷 Webcam", open=False, elem_id="webcam"):
                snapshot = gr.Image(sources=["webcam"], type="filepath", label="Snapshot", height=240, elem_id="webcam-image")
                attach = gr.Button("Attach snapshot to message", size="sm", elem_id="webcam-attach")
        with gr.Column(scale=1, min_width=260):
            system_prompt = gr.Textbox(h.DEFAULT_SYSTEM_PROMPT, label="System prompt", lines=3)
            with gr.Accordion("Generation settings", open=True):
                context = bench.cache.get(bench.default_variant).context_length
                controls = {f.name: setting_control(f, context) for f in user_settings()}
    settings = [system_prompt, *(controls[name] for name in h.SETTING_NAMES)]

    generate = dict(concurrency_id=bench.chat_concurrency_id, concurrency_limit=bench.concurrency_limit, api_visibility="undocumented")
    ui = dict(queue=False, api_visibility="undocumented")

    # Closures rather than functools.partial: Gradio passes gr.Request only to functions whose type hints it can read.
    def start_turn(message: dict, history: h.History, request: gr.Request):
        bench.streams.new_turn(request.session_hash)
        return h.start_turn(message, history)

    def retry_turn(history: h.History, request: gr.Request):
        bench.streams.new_turn(request.session_hash)
        return h.retry_turn(history)

    # Gradio hands gr.Request and gr.Progress only to parameters before *values: one value per settings control.
    def respond(history, turn, variant, system_prompt, request: gr.Request, progress=gr.Progress(), *values):
        settings = dict(zip(h.SETTING_NAMES, values))
        yield from h.respond(bench, history, turn, variant, system_prompt, settings, progress, request.session_hash)

    def stop(request: gr.Request) -> None:
        bench.streams.stop(request.session_hash)

    respond = on_gpu(respond)
    unlock = dict(fn=h.finish_turn, outputs=[textbox], **ui)
    submitted = textbox.submit(start_turn, [textbox, history], [chatbot, pending, textbox], **ui)
    submitted.then(respond, [history, pending, variant_state, *settings], [chatbot, history, textbox], **generate).then(**unlock)
    retried = chatbot.retry(retry_turn, [history], [chatbot, history, pending], **ui)
    retried.then(respond, [history, pending, variant_state, *settings], [chatbot, history, textbox], **generate).then(**unlock)
    # Stop ends the reply through its ChatStream (it then finishes with its stats) instead of cancelling the
    # Gradio event, whose cancellation can race the last streamed update and blank the chat.
    textbox.stop(stop, None, None, **ui)
    chatbot.undo(h.undo_turn, [history], [chatbot, history, textbox], **ui)
    chatbot.clear(lambda: [], None, [history], **ui)
    chatbot.example_select(h.example_message, None, [textbox], **ui)
    attach.click(h.attach_snapshot, [textbox, snapshot], [textbox, snapshot], **ui)

    # The API: /chat takes {"text", "files"} (+ optional settings) and returns the reply text;
    # /history returns the caller's own conversation. Both run on the caller's session state.
    reply_text = gr.Textbox(visible=False)
    api_button = gr.Button(visible=False)
    api_button.click(
        on_gpu(partial(h.api_chat, bench)),
        [textbox, history, variant_state, *settings],
        [reply_text, history],
        api_name="chat",
        api_description="Chat with the model: message {'text': str, 'files': [uploaded files]} -> reply text",
        concurrency_id=bench.chat_concurrency_id,
        concurrency_limit=bench.concurrency_limit,
    )
    variant_state.change(partial(context_limit, bench), [variant_state], [controls["max_new_tokens"]], queue=False, api_visibility="undocumented")
    history_json = gr.JSON(visible=False)
    gr.Button(visible=False).click(h.api_history, [history], [history_json], api_name="history", queue=False)
