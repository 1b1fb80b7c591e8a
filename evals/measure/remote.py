"""Measurements of a remote endpoint, from the client: time to first token and decode speed from the stream; the rest unknown.

The latency prompt is the fixed paragraph sent as a raw-text completion (about `prompt_tokens`
tokens at ~4 characters per token; the server's usage reports the real count). TTFT runs from
sending the request to the first streamed text, so it includes the network round trip and any
wait in the server's line. Decode tokens/s is (tokens - 1) / (time of the last text - time of the
first); tokens are the server's usage.completion_tokens when it reports usage in the stream,
else the number of streamed text chunks (the note says which). The server may stop early (end
of text): the `n` column is the repeats, the note gives the tokens. Prefill speed cannot be told
apart from the round trip, and memory and realised sparsity live on the server: those rows are
`unsupported`.
"""

from __future__ import annotations

from .common import PROMPT_TEXT, Measurement, MeasureSettings, median_p95

CHARS_PER_TOKEN = 4  # for sizing the latency prompt without the server's tokenizer
UNKNOWN = {
    "latency": [("prefill_tokens_per_s_median", "tokens/s"), ("prefill_tokens_per_s_p95", "tokens/s")],
    "memory": [("weight_bytes_loaded", "bytes"), ("peak_memory_bytes", "bytes"), ("kv_cache_bytes", "bytes")],
    "sparsity": [("realised_sparsity", "fraction")],
}
WHY = {
    "latency": "unsupported: a client cannot tell prefill time apart from the network round trip",
    "memory": "unsupported: memory is the server's, not visible to a client",
    "sparsity": "unsupported: realised sparsity is measured inside the model, on the server",
}


def latency_prompt(tokens: int) -> str:
    """About `tokens` tokens of the fixed paragraph."""
    chars = tokens * CHARS_PER_TOKEN
    return (PROMPT_TEXT * (chars // len(PROMPT_TEXT) + 1))[:chars]


def measure_remote(model, what: str, settings: MeasureSettings | None = None) -> list[Measurement]:
    """`what` (latency, memory, sparsity) of a RemoteEvalModel's endpoint; what a client cannot see is `unsupported`."""
    settings = settings or MeasureSettings()
    rows = [Measurement(name, None, unit, WHY[what], status="unsupported") for name, unit in UNKNOWN[what]]
    if what != "latency":
        return rows
    prompt = latency_prompt(settings.prompt_tokens)
    runs = [model.stream_completion(prompt, settings.new_tokens) for _ in range(settings.warmup + settings.repeats)][settings.warmup :]
    ttft = [r.ttft_s for r in runs]
    decode = [(r.tokens - 1) / r.decode_s for r in runs if r.tokens > 1 and r.decode_s > 0]
    last = runs[-1]
    note = (
        f"client-side, streamed: {last.prompt_tokens if last.prompt_tokens is not None else '?'}-token prompt, {last.tokens} new tokens "
        f"(counted by {last.counted_by}), {settings.warmup} warm-up + {settings.repeats} repeats"
    )
    for name, values, unit, higher in (("ttft_s", ttft, "s", False), ("decode_tokens_per_s", decode, "tokens/s", True)):
        if values:
            median, worst = median_p95(values, higher)
            rows += [Measurement(f"{name}_median", median, unit, note, len(values), repeats=tuple(values)), Measurement(f"{name}_p95", worst, unit, note, len(values))]
        else:
            rows += [Measurement(f"{name}_{s}", None, unit, "unsupported: the server streamed at most one token", status="unsupported") for s in ("median", "p95")]
    return rows
