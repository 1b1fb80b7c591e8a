"""The request bodies this server reads (OpenAI's chat completions and completions), validated with pydantic.

Fields OpenAI defines that cannot be honoured here (several choices, tool calls, JSON mode, log
probabilities of generated tokens) are refused with a 400 naming the field rather than silently
ignored; unknown extra fields (vendor extensions such as vLLM's) are ignored, as most compatible
servers do.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import APIError


class SamplingFields(BaseModel):
    """What chat completions and completions share."""

    model_config = ConfigDict(extra="ignore")

    model: str
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = 1

    def stops(self) -> list[str]:
        """The stop strings (at most 4, as OpenAI allows)."""
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4 or any(not isinstance(s, str) or not s for s in stops):
            raise APIError(400, "stop takes up to 4 non-empty strings", param="stop")
        return stops

    @property
    def include_usage(self) -> bool:
        """stream_options.include_usage: a last chunk with the token counts."""
        return bool((self.stream_options or {}).get("include_usage"))

    def refuse_unsupported(self) -> None:
        """400 for what this server cannot do."""
        if self.n != 1:
            raise APIError(400, "this server returns one choice per request: n must be 1", param="n")


class ChatCompletionRequest(SamplingFields):
    """POST /v1/chat/completions."""

    messages: list[Any]
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None

    @property
    def asked_tokens(self) -> int | None:
        """max_completion_tokens, else the older max_tokens."""
        return self.max_completion_tokens or self.max_tokens

    def refuse_unsupported(self) -> None:
        """400 for what this server cannot do."""
        super().refuse_unsupported()
        if self.logprobs:
            raise APIError(400, "log probabilities of generated tokens are not offered; score a text with /v1/completions (echo=true, max_tokens=0)", code="unsupported", param="logprobs")
        if self.tools:
            raise APIError(400, "tool calling is not supported by this server", code="unsupported", param="tools")
        if self.response_format and self.response_format.get("type", "text") != "text":
            raise APIError(400, "only text responses are supported (response_format type 'text')", code="unsupported", param="response_format")


class CompletionRequest(SamplingFields):
    """POST /v1/completions (raw text prompts; `echo` + `logprobs` with max_tokens=0 scores them)."""

    prompt: str | list[str]
    max_tokens: int | None = Field(default=16, ge=0)
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=20)

    def prompts(self) -> list[str]:
        """The prompts as a list."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    @property
    def scores_only(self) -> bool:
        """True for a scoring request: echo the prompt with its log-probabilities, generate nothing."""
        return self.echo and self.max_tokens == 0

    def refuse_unsupported(self) -> None:
        """400 for what this server cannot do."""
        super().refuse_unsupported()
        if not self.prompts() or any(not isinstance(p, str) for p in self.prompts()):
            raise APIError(400, "prompt must be a string or a non-empty list of strings (token-id prompts are not supported)", param="prompt")
        if self.max_tokens == 0 and not self.echo:
            raise APIError(400, "max_tokens=0 generates nothing: give echo=true (with logprobs) to score the prompt", param="max_tokens")
        if self.logprobs is not None and not self.scores_only:
            raise APIError(400, "log probabilities are offered for the prompt only: use echo=true with max_tokens=0", code="unsupported", param="logprobs")
        if self.stream and (len(self.prompts()) != 1 or self.scores_only):
            raise APIError(400, "streaming takes one prompt and max_tokens >= 1", param="stream")


def parse(model: type[BaseModel], body: Any) -> Any:
    """The validated request, or a 400 naming the first bad field."""
    if not isinstance(body, dict):
        raise APIError(400, "the request body must be a JSON object")
    try:
        request = model.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        param = ".".join(str(p) for p in first.get("loc", ())) or None
        raise APIError(400, f"{param}: {first.get('msg')}" if param else str(first.get("msg")), param=param) from err
    request.refuse_unsupported()
    return request
