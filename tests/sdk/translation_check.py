#!/usr/bin/env python3
"""The translation conformance matrix: the official Python SDKs through Keyway.

Each client surface (Anthropic Messages, OpenAI Chat Completions, OpenAI
Responses, Gemini generateContent) is driven with its official SDK, unmodified
(only the base URL and the API key are set), at a model name that Keyway routes
to each of the three upstream formats, streamed and not, through these
scenarios: text, one tool call, parallel calls, a tool result, an image,
reasoning, a tool loop (reasoning on, two calls, then the answer as the SDK
gave it sent back with the results) and two upstream errors (a 429 and a
context window 400). The answers come from the fake upstream of Keyway's
tests, which reads directives in the last user turn (see
tests/src/fake/mod.rs).

Environment:
  KEYWAY_BASE_URL     required, e.g. http://127.0.0.1:PORT (no /v1)
  KEYWAY_CLIENT_KEY   required, the client key Keyway accepts
  KEYWAY_ROUTES       required, JSON: {"anthropic": {"model": M, "key": K}, "openai": …,
                      "gemini": …}; a request for model M reaches that upstream format,
                      where the fake answers it with account key K
  KEYWAY_CONTROL      optional, "1" when the caller scripts upstream errors (below);
                      without it the error scenarios are skipped
  KEYWAY_CASES        optional, comma-separated substrings: run only the cases whose
                      name (client/upstream/mode/scenario) contains one of them
  KEYWAY_SDK_TIMEOUT  optional, per-request timeout in seconds (default 20)

Control: before an error case the script writes a line
  KEYWAY-CONTROL {"op": "arm", "upstream": U, "behaviour": "rate_limit"|"context_window"}
on stdout and waits for one JSON line on stdin: the caller makes the next request of
upstream U's account fail that way (after clearing any cooldown of that account). After
the case, {"op": "count", "upstream": U} asks how many requests that account's key got
since it was armed; the answer is {"requests": N}. After a tool loop, {"op": "reasoning",
"upstream": U} asks whether the last request U's account got turned reasoning on; the
answer is {"reasoning": true|false, "path": P}.

Prints one JSON object as the last line on stdout: {"cases": [{"name", "ok",
"problems", ...}], "failed": [names], "versions": {...}}. Exit 0 when every case
passed, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import sys
import traceback
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

# Every variable the SDKs read on their own (keys, base URLs, Vertex switches…) is
# dropped: they see only what is passed explicitly.
_SDK_ENV_PREFIXES = ("ANTHROPIC_", "OPENAI_", "GOOGLE_", "GEMINI_")

CLIENTS = ("messages", "chat", "responses", "gemini")
UPSTREAMS = ("anthropic", "openai", "gemini")
MODES = ("once", "stream")
SCENARIOS = (
    "text",
    "tool_call",
    "parallel_calls",
    "tool_result",
    "image",
    "reasoning",
    "tool_loop",
    "rate_limit",
    "context_window",
)
ERRORS = {"rate_limit": 429, "context_window": 400}

SYSTEM = "Be brief."
TURNS = ("Hello there.", "Nice to meet you.", "How are you today?")
WEATHER_ARGS = {"city": "Paris"}
TIME_ARGS = {"zone": "CET"}
RESULT = "sunny, 21 C"
TIME_RESULT = "12:00"
THINKING_PREFIX = "Thinking about: [[think]]"
# The SDK sends bytes as URL-safe base64, so these bytes go out as Google's documented
# placeholder signature, "skip_thought_signature_validator".
SKIP_THOUGHT_SIGNATURE = base64.urlsafe_b64decode("skip_thought_signature_validator")
TOOLS = (
    {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city."}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
    {
        "name": "get_time",
        "description": "The current time in a time zone.",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "description": "The zone."}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
)


def _png() -> bytes:
    """A valid 2×2 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([255, 0, 0, 0, 0, 255]) for _ in range(2))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = _png()
PNG_B64 = base64.b64encode(PNG).decode()
PNG_LINE = f"image image/png {len(PNG)} bytes"


@dataclass
class Outcome:
    """What a client's SDK made of an answer, in neutral terms."""

    text: str = ""
    calls: list[tuple[str, Any]] = field(default_factory=list)
    stop: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning: str | None = None
    # The id of each call, where the client's shape has one.
    ids: list[Any] = field(default_factory=list)
    # Client-specific facts worth seeing when a case fails.
    extra: dict[str, Any] = field(default_factory=dict)


class Problems(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _v(x: Any) -> Any:
    """An enum's value (Gemini's finish reasons), else the thing itself."""
    return getattr(x, "value", x)


def _args(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return f"<not JSON: {text!r}>"


# --- the four clients ------------------------------------------------------------


class Conversing:
    """The tool loop of a client whose history is the caller's to keep: the first answer as
    the SDK gave it goes back (`follow_up`) with a result for each call."""

    def converse(self, model: str, stream: bool, results: dict[str, str]) -> tuple[Outcome, Outcome]:
        req = self.request("tool_loop", user_text("tool_loop"))
        first, native = self.send(model, req, stream)
        answers = [results.get(name, "?") for name, _ in first.calls]
        second, _ = self.send(model, self.follow_up(req, native, answers), stream)
        return first, second


class Messages(Conversing):
    """Anthropic Messages through the `anthropic` SDK."""

    tool_stop = "tool_use"
    end_stop = "end_turn"
    has_ids = True

    def __init__(self, base_url: str, key: str, timeout: float) -> None:
        import anthropic

        self.sdk = anthropic
        self.client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=timeout)

    def errors(self) -> dict[int, type[BaseException]]:
        return {429: self.sdk.RateLimitError, 400: self.sdk.BadRequestError}

    def tools(self) -> list[dict[str, Any]]:
        return [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in TOOLS]

    def request(self, scenario: str, text: str) -> dict[str, Any]:
        req: dict[str, Any] = {"max_tokens": 256}
        if scenario == "text":
            req["system"] = SYSTEM
            req["messages"] = [
                {"role": "user", "content": TURNS[0]},
                {"role": "assistant", "content": TURNS[1]},
                {"role": "user", "content": TURNS[2]},
            ]
            return req
        if scenario in ("tool_call", "parallel_calls", "tool_result", "tool_loop"):
            req["tools"] = self.tools()
        if scenario == "tool_result":
            req["messages"] = [
                {"role": "user", "content": text},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": WEATHER_ARGS}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": RESULT}]},
            ]
            return req
        content: Any = text
        if scenario == "image":
            content = [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "text", "text": text},
            ]
        if scenario in ("reasoning", "tool_loop"):
            req["max_tokens"] = 4096
            req["thinking"] = {"type": "enabled", "budget_tokens": 2048}
        req["messages"] = [{"role": "user", "content": content}]
        return req

    def follow_up(self, req: dict[str, Any], msg: Any, results: list[str]) -> dict[str, Any]:
        """`req` continued with the answer `msg` as it came and a result for each of its calls."""
        uses = [b for b in msg.content if b.type == "tool_use"]
        answers = [{"type": "tool_result", "tool_use_id": b.id, "content": r} for b, r in zip(uses, results)]
        messages = [*req["messages"], {"role": "assistant", "content": msg.content}, {"role": "user", "content": answers}]
        return {**req, "messages": messages}

    def run(self, model: str, scenario: str, text: str, stream: bool) -> Outcome:
        return self.send(model, self.request(scenario, text), stream)[0]

    def send(self, model: str, req: dict[str, Any], stream: bool) -> tuple[Outcome, Any]:
        if stream:
            with self.client.messages.stream(model=model, **req) as s:
                msg = s.get_final_message()
        else:
            msg = self.client.messages.create(model=model, **req)
        out = Outcome(stop=msg.stop_reason, input_tokens=msg.usage.input_tokens, output_tokens=msg.usage.output_tokens)
        thinking = []
        for block in msg.content:
            if block.type == "text":
                out.text += block.text
            elif block.type == "tool_use":
                out.calls.append((block.name, block.input))
                out.ids.append(block.id)
            elif block.type == "thinking":
                thinking.append(block.thinking)
        if thinking:
            out.reasoning = "".join(thinking)
        out.extra["blocks"] = [b.type for b in msg.content]
        return out, msg


class OpenAiClient(Conversing):
    def __init__(self, base_url: str, key: str, timeout: float) -> None:
        import openai

        self.sdk = openai
        self.client = openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0, timeout=timeout)

    def errors(self) -> dict[int, type[BaseException]]:
        return {429: self.sdk.RateLimitError, 400: self.sdk.BadRequestError}


class Chat(OpenAiClient):
    """OpenAI Chat Completions through the `openai` SDK."""

    tool_stop = "tool_calls"
    end_stop = "stop"
    has_ids = True

    def request(self, scenario: str, text: str) -> dict[str, Any]:
        req: dict[str, Any] = {}
        if scenario == "text":
            req["messages"] = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": TURNS[0]},
                {"role": "assistant", "content": TURNS[1]},
                {"role": "user", "content": TURNS[2]},
            ]
            return req
        if scenario in ("tool_call", "parallel_calls", "tool_result", "tool_loop"):
            req["tools"] = [{"type": "function", "function": dict(t)} for t in TOOLS]
        if scenario == "tool_result":
            call = {"name": "get_weather", "arguments": json.dumps(WEATHER_ARGS)}
            req["messages"] = [
                {"role": "user", "content": text},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "call_01", "type": "function", "function": call}],
                },
                {"role": "tool", "tool_call_id": "call_01", "content": RESULT},
            ]
            return req
        content: Any = text
        if scenario == "image":
            content = [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
            ]
        if scenario in ("reasoning", "tool_loop"):
            req["reasoning_effort"] = "medium"
        req["messages"] = [{"role": "user", "content": content}]
        return req

    def follow_up(self, req: dict[str, Any], res: Any, results: list[str]) -> dict[str, Any]:
        """`req` continued with the answer's message (its content and calls, as clients keep
        them) and a tool message for each call."""
        msg = res.choices[0].message
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in msg.tool_calls or []
        ]
        answers = [{"role": "tool", "tool_call_id": c["id"], "content": r} for c, r in zip(calls, results)]
        turn = {"role": "assistant", "content": msg.content, "tool_calls": calls}
        return {**req, "messages": [*req["messages"], turn, *answers]}

    def run(self, model: str, scenario: str, text: str, stream: bool) -> Outcome:
        return self.send(model, self.request(scenario, text), stream)[0]

    def send(self, model: str, req: dict[str, Any], stream: bool) -> tuple[Outcome, Any]:
        if stream:
            with self.client.chat.completions.stream(
                model=model, stream_options={"include_usage": True}, **req
            ) as s:
                res = s.get_final_completion()
        else:
            res = self.client.chat.completions.create(model=model, **req)
        choice = res.choices[0]
        msg = choice.message
        out = Outcome(text=msg.content or "", stop=choice.finish_reason)
        if res.usage is not None:
            out.input_tokens = res.usage.prompt_tokens
            out.output_tokens = res.usage.completion_tokens
        for call in msg.tool_calls or []:
            out.calls.append((call.function.name, _args(call.function.arguments)))
            out.ids.append(call.id)
        extra = msg.model_extra or {}
        out.reasoning = extra.get("reasoning_content")
        out.extra["message_extra_fields"] = sorted(extra)
        return out, res


class Responses(OpenAiClient):
    """OpenAI Responses through the `openai` SDK."""

    tool_stop = "completed"
    end_stop = "completed"
    has_ids = True

    def request(self, scenario: str, text: str) -> dict[str, Any]:
        req: dict[str, Any] = {}
        if scenario == "text":
            req["instructions"] = SYSTEM
            req["input"] = [
                {"role": "user", "content": TURNS[0]},
                {"role": "assistant", "content": TURNS[1]},
                {"role": "user", "content": TURNS[2]},
            ]
            return req
        if scenario in ("tool_call", "parallel_calls", "tool_result", "tool_loop"):
            req["tools"] = [{"type": "function", "strict": False, **t} for t in TOOLS]
        if scenario == "tool_result":
            req["input"] = [
                {"role": "user", "content": text},
                {
                    "type": "function_call",
                    "call_id": "call_01",
                    "name": "get_weather",
                    "arguments": json.dumps(WEATHER_ARGS),
                },
                {"type": "function_call_output", "call_id": "call_01", "output": RESULT},
            ]
            return req
        content: Any = text
        if scenario == "image":
            content = [
                {"type": "input_text", "text": text},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}", "detail": "auto"},
            ]
        if scenario in ("reasoning", "tool_loop"):
            req["reasoning"] = {"effort": "medium", "summary": "auto"}
        req["input"] = [{"role": "user", "content": content}]
        return req

    def follow_up(self, req: dict[str, Any], res: Any, results: list[str]) -> dict[str, Any]:
        """`req` continued with every output item as it came (OpenAI's documented
        `input += response.output`) and an output for each call."""
        calls = [item for item in res.output if item.type == "function_call"]
        answers = [{"type": "function_call_output", "call_id": c.call_id, "output": r} for c, r in zip(calls, results)]
        return {**req, "input": [*req["input"], *res.output, *answers]}

    def run(self, model: str, scenario: str, text: str, stream: bool) -> Outcome:
        return self.send(model, self.request(scenario, text), stream)[0]

    def send(self, model: str, req: dict[str, Any], stream: bool) -> tuple[Outcome, Any]:
        if stream:
            with self.client.responses.stream(model=model, **req) as s:
                res = s.get_final_response()
        else:
            res = self.client.responses.create(model=model, **req)
        out = Outcome(text=res.output_text, stop=res.status)
        if res.usage is not None:
            out.input_tokens = res.usage.input_tokens
            out.output_tokens = res.usage.output_tokens
        summaries = []
        for item in res.output:
            if item.type == "function_call":
                out.calls.append((item.name, _args(item.arguments)))
                out.ids.append(item.call_id)
            elif item.type == "reasoning":
                summaries.extend(s.text for s in item.summary or [])
        if summaries:
            out.reasoning = "".join(summaries)
        out.extra["items"] = [item.type for item in res.output]
        return out, res


class Gemini:
    """Gemini generateContent / streamGenerateContent through `google-genai`."""

    tool_stop = "STOP"
    end_stop = "STOP"
    # Gemini's own calls come without ids.
    has_ids = False

    def __init__(self, base_url: str, key: str, timeout: float) -> None:
        from google import genai
        from google.genai import errors, types

        self.types = types
        self.sdk_errors = errors
        self.client = genai.Client(
            api_key=key,
            http_options=types.HttpOptions(base_url=base_url, api_version="v1beta", timeout=int(timeout * 1000)),
        )

    def errors(self) -> dict[int, type[BaseException]]:
        return {429: self.sdk_errors.ClientError, 400: self.sdk_errors.ClientError}

    def request(self, scenario: str, text: str) -> tuple[list[Any], Any]:
        t = self.types
        config = t.GenerateContentConfig()

        def user(*parts: Any) -> Any:
            return t.Content(role="user", parts=list(parts))

        if scenario == "text":
            config.system_instruction = SYSTEM
            contents = [
                user(t.Part(text=TURNS[0])),
                t.Content(role="model", parts=[t.Part(text=TURNS[1])]),
                user(t.Part(text=TURNS[2])),
            ]
            return contents, config
        if scenario in ("tool_call", "parallel_calls", "tool_result", "tool_loop"):
            config.tools = [
                t.Tool(
                    function_declarations=[
                        t.FunctionDeclaration(
                            name=d["name"], description=d["description"], parameters_json_schema=d["parameters"]
                        )
                        for d in TOOLS
                    ]
                )
            ]
        if scenario == "tool_result":
            contents = [
                user(t.Part(text=text)),
                t.Content(
                    role="model",
                    # History from elsewhere: Google's documented stand-in for the thought
                    # signature Gemini 3 wants on a call of the current turn.
                    parts=[
                        t.Part(
                            function_call=t.FunctionCall(name="get_weather", args=WEATHER_ARGS),
                            thought_signature=SKIP_THOUGHT_SIGNATURE,
                        )
                    ],
                ),
                user(
                    t.Part(function_response=t.FunctionResponse(name="get_weather", response={"result": RESULT}))
                ),
            ]
            return contents, config
        parts = [t.Part(text=text)]
        if scenario == "image":
            parts.insert(0, t.Part.from_bytes(data=PNG, mime_type="image/png"))
        if scenario in ("reasoning", "tool_loop"):
            config.thinking_config = t.ThinkingConfig(include_thoughts=True, thinking_budget=2048)
        return [user(*parts)], config

    def converse(self, model: str, stream: bool, results: dict[str, str]) -> tuple[Outcome, Outcome]:
        """The tool loop in the SDK's own chat session, which keeps the history itself (a
        streamed answer as one model turn per chunk), answering each call by its id when it
        has one."""
        t = self.types
        contents, config = self.request("tool_loop", user_text("tool_loop"))
        chat = self.client.chats.create(model=model, config=config)

        def send(message: Any) -> tuple[Outcome, list[Any]]:
            if stream:
                return self.outcome(list(chat.send_message_stream(message)))
            return self.outcome([chat.send_message(message)])

        first, parts = send(contents[0].parts)
        calls = [p.function_call for p in parts if p.function_call is not None]
        answers = [
            t.Part(
                function_response=t.FunctionResponse(id=c.id, name=c.name, response={"result": results.get(c.name, "?")})
            )
            for c in calls
        ]
        second, _ = send(answers)
        return first, second

    def run(self, model: str, scenario: str, text: str, stream: bool) -> Outcome:
        contents, config = self.request(scenario, text)
        if stream:
            chunks = list(self.client.models.generate_content_stream(model=model, contents=contents, config=config))
        else:
            chunks = [self.client.models.generate_content(model=model, contents=contents, config=config)]
        return self.outcome(chunks)[0]

    def outcome(self, chunks: list[Any]) -> tuple[Outcome, list[Any]]:
        """The answer in `chunks`, and all their parts in order."""
        out = Outcome()
        thoughts = []
        kinds = []
        parts_seen = []
        for chunk in chunks:
            if chunk.usage_metadata is not None:
                out.input_tokens = chunk.usage_metadata.prompt_token_count
                out.output_tokens = chunk.usage_metadata.candidates_token_count
            for cand in chunk.candidates or []:
                if cand.finish_reason is not None:
                    out.stop = _v(cand.finish_reason)
                for part in (cand.content.parts if cand.content else None) or []:
                    parts_seen.append(part)
                    if part.function_call is not None:
                        kinds.append("functionCall")
                        out.calls.append((part.function_call.name, part.function_call.args))
                        out.ids.append(part.function_call.id)
                    elif part.thought and part.text is not None:
                        kinds.append("thought")
                        thoughts.append(part.text)
                    elif part.text is not None:
                        kinds.append("text")
                        out.text += part.text
        if thoughts:
            out.reasoning = "".join(thoughts)
        out.extra["chunks"] = len(chunks)
        out.extra["parts"] = kinds
        return out, parts_seen


# --- the cases ----------------------------------------------------------------------


class Control:
    """The caller's scripting of upstream errors (see the module docs)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        print("KEYWAY-CONTROL " + json.dumps(request), flush=True)
        line = sys.stdin.readline()
        if not line:
            raise RuntimeError("the caller closed the control channel")
        return json.loads(line)


def user_text(scenario: str) -> str:
    return {
        "text": TURNS[2],
        "tool_call": f"Weather please. [[call get_weather {json.dumps(WEATHER_ARGS)}]]",
        "parallel_calls": (
            f"Weather and time please. [[call get_weather {json.dumps(WEATHER_ARGS)}]] "
            f"[[call get_time {json.dumps(TIME_ARGS)}]]"
        ),
        "tool_result": "What is the weather in Paris?",
        "image": "What is in this image?",
        "reasoning": "[[think]] Why is the sky blue?",
        "tool_loop": (
            f"[[think]] Weather and time please. [[call get_weather {json.dumps(WEATHER_ARGS)}]] "
            f"[[call get_time {json.dumps(TIME_ARGS)}]]"
        ),
        "rate_limit": "Hello.",
        "context_window": "Hello.",
    }[scenario]


def check(client: Any, scenario: str, stream: bool, key: str, out: Outcome, reasoning: bool = False) -> list[str]:
    """What differs from the expected answer, in words. `reasoning`: the answer must start
    with reasoning (as the "reasoning" scenario's)."""
    problems: list[str] = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{what}: expected {want!r}, got {got!r}")

    served = f"served by {key}"
    if scenario == "text":
        expect("text", out.text, served + (" +1 +2" if stream else ""))
    elif scenario == "tool_call":
        expect("calls", out.calls, [("get_weather", WEATHER_ARGS)])
    elif scenario == "parallel_calls":
        expect("calls", out.calls, [("get_weather", WEATHER_ARGS), ("get_time", TIME_ARGS)])
    elif scenario == "tool_result":
        if not (out.text.startswith("tool result: ") and RESULT in out.text):
            problems.append(f"text: expected 'tool result: …{RESULT}…', got {out.text!r}")
    elif scenario == "image":
        if PNG_LINE not in out.text.splitlines():
            problems.append(f"text: expected a line {PNG_LINE!r}, got {out.text!r}")
    elif scenario == "reasoning":
        expect("text", out.text, served)
        reasoning = True
    elif scenario == "tool_loop":
        at = [out.text.find(r) for r in (RESULT, TIME_RESULT)]
        if not out.text.startswith("tool result: ") or -1 in at or at != sorted(at):
            problems.append(f"text: expected 'tool result: …{RESULT}…{TIME_RESULT}…', got {out.text!r}")
    if reasoning and (out.reasoning is None or not out.reasoning.startswith(THINKING_PREFIX)):
        problems.append(f"reasoning: expected text starting {THINKING_PREFIX!r}, got {out.reasoning!r}")

    if client.has_ids and (not all(out.ids) or len(set(out.ids)) != len(out.ids)):
        problems.append(f"call ids: expected distinct non-empty ids, got {out.ids!r}")
    if scenario in ("tool_call", "parallel_calls"):
        expect("stop reason", out.stop, client.tool_stop)
    else:
        expect("stop reason", out.stop, client.end_stop)
        expect("calls", out.calls, [])
    if not reasoning and out.reasoning:
        problems.append(f"reasoning nobody asked for: {out.reasoning!r}")
    for what, n in (("input tokens", out.input_tokens), ("output tokens", out.output_tokens)):
        if not isinstance(n, int) or n <= 0:
            problems.append(f"usage {what}: expected > 0, got {n!r}")
    return problems


def answer_facts(out: Outcome) -> dict[str, Any]:
    return {
        "text": out.text,
        "calls": out.calls,
        "ids": out.ids,
        "stop": out.stop,
        "usage": [out.input_tokens, out.output_tokens],
        "reasoning": out.reasoning,
        **out.extra,
    }


def run_tool_loop(
    client: Any, control: Control, upstream: str, model: str, stream: bool
) -> tuple[dict[str, Any], list[str]]:
    """Reasoning on, two calls; then the answer as the SDK gave it, sent back with a result
    for each call, is answered with both results in order, and reasoning stays on upstream
    (the reasoning the first answer carried went back with it), except from a Chat client to
    an Anthropic upstream: Chat has no place for Anthropic's signatures, and Anthropic takes
    no thinking in a tool loop whose last assistant turn has no signed thinking (the README's
    translation table, note 13)."""
    first, second = client.converse(model, stream, {"get_weather": RESULT, "get_time": TIME_RESULT})
    facts = {"first": answer_facts(first), "second": answer_facts(second)}
    problems = [f"first answer: {p}" for p in check(client, "parallel_calls", stream, "", first, reasoning=True)]
    problems += [f"second answer: {p}" for p in check(client, "tool_loop", stream, "", second)]
    if control.enabled:
        sent = control.ask({"op": "reasoning", "upstream": upstream})
        facts["second_upstream_reasoning"] = sent
        expected = not (isinstance(client, Chat) and upstream == "anthropic")
        if sent.get("reasoning") != expected:
            problems.append(
                f"second request: reasoning on upstream: expected {expected}, got {sent.get('reasoning')!r} ({sent})"
            )
    return facts, problems


def run_error(client: Any, control: Control, upstream: str, scenario: str, call: Callable[[], Any]) -> dict[str, Any]:
    status = ERRORS[scenario]
    expected = client.errors()[status]
    control.ask({"op": "arm", "upstream": upstream, "behaviour": scenario})
    problems: list[str] = []
    facts: dict[str, Any] = {}
    try:
        call()
        problems.append(f"no error: expected {expected.__module__}.{expected.__name__} ({status})")
    except expected as err:
        code = getattr(err, "status_code", None) or getattr(err, "code", None)
        response = getattr(err, "response", None)
        headers = getattr(response, "headers", None) or {}
        message = str(getattr(err, "message", None) or err)
        facts = {"exception": f"{type(err).__module__}.{type(err).__name__}", "status": code, "message": message}
        if code != status:
            problems.append(f"status: expected {status}, got {code!r}")
        if status == 429 and headers.get("retry-after") is None:
            problems.append("no retry-after header on the 429")
        if status == 400 and not re.search(r"token|context|too long", message, re.I):
            problems.append(f"the message does not say the prompt is too long: {message!r}")
    except Exception as err:  # the wrong class: say which
        problems.append(
            f"expected {expected.__module__}.{expected.__name__} ({status}), "
            f"got {type(err).__module__}.{type(err).__name__}: {err}"
        )
    reached = control.ask({"op": "count", "upstream": upstream}).get("requests")
    if reached != 1:
        problems.append(f"the upstream got {reached} request(s) for the case, expected 1")
    if problems:
        raise Problems(problems)
    return facts


def main() -> int:
    base_url = os.environ.get("KEYWAY_BASE_URL", "").rstrip("/")
    key = os.environ.get("KEYWAY_CLIENT_KEY", "")
    try:
        routes = json.loads(os.environ.get("KEYWAY_ROUTES", ""))
        assert set(routes) == set(UPSTREAMS)
    except (ValueError, AssertionError):
        routes = None
    if not base_url or not key or routes is None:
        print("translation_check.py: KEYWAY_BASE_URL, KEYWAY_CLIENT_KEY and KEYWAY_ROUTES must be set", file=sys.stderr)
        print(__doc__, file=sys.stderr)
        return 2
    control = Control(os.environ.get("KEYWAY_CONTROL") == "1")
    only = [s.strip() for s in os.environ.get("KEYWAY_CASES", "").split(",") if s.strip()]
    timeout = float(os.environ.get("KEYWAY_SDK_TIMEOUT", "20"))

    for name in [n for n in os.environ if n.startswith(_SDK_ENV_PREFIXES)]:
        del os.environ[name]
    warnings.filterwarnings("ignore")
    loopback = "127.0.0.1,localhost,::1"
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name, "")
        os.environ[name] = f"{current},{loopback}" if current else loopback

    import anthropic
    import openai
    from google import genai

    clients = {
        "messages": Messages(base_url, key, timeout),
        "chat": Chat(base_url, key, timeout),
        "responses": Responses(base_url, key, timeout),
        "gemini": Gemini(base_url, key, timeout),
    }
    result: dict[str, Any] = {
        "versions": {"anthropic": anthropic.__version__, "openai": openai.__version__, "google-genai": genai.__version__},
        "cases": [],
        "failed": [],
        "skipped": [],
    }
    # Errors last: a 429 cools the account down, and the control channel clears that.
    for scenario in SCENARIOS:
        for client_name in CLIENTS:
            client = clients[client_name]
            for upstream in UPSTREAMS:
                for mode in MODES:
                    name = f"{client_name}/{upstream}/{mode}/{scenario}"
                    if only and not any(s in name for s in only):
                        continue
                    if scenario in ERRORS and not control.enabled:
                        result["skipped"].append(name)
                        continue
                    model, served_by = routes[upstream]["model"], routes[upstream]["key"]
                    text = user_text(scenario)
                    stream = mode == "stream"
                    case: dict[str, Any] = {"name": name, "ok": True, "problems": []}
                    try:
                        if scenario in ERRORS:
                            case["error"] = run_error(
                                client, control, upstream, scenario, lambda: client.run(model, scenario, text, stream)
                            )
                        elif scenario == "tool_loop":
                            case["answer"], case["problems"] = run_tool_loop(client, control, upstream, model, stream)
                        else:
                            out = client.run(model, scenario, text, stream)
                            case["answer"] = answer_facts(out)
                            case["problems"] = check(client, scenario, stream, served_by, out)
                    except Problems as p:
                        case["problems"] = p.problems
                    except Exception as err:
                        lines = traceback.format_exception_only(type(err), err)
                        case["problems"] = [f"raised {''.join(lines).strip()}"]
                        print(f"translation_check.py: {name}:", file=sys.stderr)
                        traceback.print_exc(file=sys.stderr)
                    case["ok"] = not case["problems"]
                    result["cases"].append(case)
                    if not case["ok"]:
                        result["failed"].append(name)

    print(json.dumps(result, sort_keys=True, default=str), flush=True)
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
