#!/usr/bin/env python3
"""Drive the official Anthropic and OpenAI Python SDKs through a running Keyway.

The SDKs are used unmodified, configured exactly as a user would point them at
Keyway: only the base URL and the API key change.

Environment:
  KEYWAY_BASE_URL    required, e.g. http://127.0.0.1:PORT (no /v1)
  KEYWAY_CLIENT_KEY  required, the client key Keyway accepts
  KEYWAY_WRONG_KEY   optional, a key Keyway must reject (default: a fixed bogus key)
  KEYWAY_SDK_CHECKS  optional, comma-separated subset of the checks below
                     (default: all of them)
  KEYWAY_SDK_TIMEOUT optional, per-request timeout in seconds (default 20)

Checks: anthropic_messages, anthropic_stream, anthropic_count_tokens,
        openai_chat, openai_chat_stream, openai_responses,
        openai_responses_stream, auth_errors

Prints one JSON object on stdout with what came back. Exit 0 when every selected
check passed; otherwise the tracebacks go to stderr, the partial JSON (with a
"failed" list) still goes to stdout, and the exit code is 1. Exit 2 on bad usage.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from typing import Any, Callable

# The SDKs read many variables on their own (keys, base URLs, profiles, config
# dirs, custom headers, organization ids). A developer's shell may have any of
# them set; none may leak into a test, so every ANTHROPIC_* and OPENAI_*
# variable is dropped and the SDKs see only what is passed explicitly below.
_SDK_ENV_PREFIXES = ("ANTHROPIC_", "OPENAI_")

ANTHROPIC_MODEL = "claude-sonnet-4-5"
OPENAI_CHAT_MODEL = "gpt-4o-mini"
OPENAI_RESPONSES_MODEL = "gpt-5"
PROMPT = [{"role": "user", "content": "Say hi."}]
# Server-sent event types of the Messages API. Iterating the SDK's MessageStream
# also yields events the SDK synthesizes itself ("text", "thinking", ...);
# anthropic_stream_events counts only these wire events.
ANTHROPIC_WIRE_EVENTS = frozenset(
    (
        "message_start",
        "message_delta",
        "message_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "ping",
        "error",
    )
)


def _usage() -> None:
    print(__doc__, file=sys.stderr)
    sys.exit(2)


def _clean_env() -> None:
    for name in [n for n in os.environ if n.startswith(_SDK_ENV_PREFIXES)]:
        del os.environ[name]
    # The model names are fixed by the tests' contract with the fake upstream;
    # the SDK's notice that one of them is being retired is noise here.
    warnings.filterwarnings("ignore", message=r"The model .* is deprecated", category=DeprecationWarning)
    # Keyway listens on loopback: never send that traffic through a proxy.
    loopback = "127.0.0.1,localhost,::1"
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name, "")
        os.environ[name] = f"{current},{loopback}" if current else loopback


def _anthropic_text(message: Any) -> str:
    return "".join(b.text for b in message.content if getattr(b, "type", None) == "text")


def _usage_dict(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        k: getattr(usage, k, None)
        for k in ("input_tokens", "output_tokens", "prompt_tokens", "completion_tokens", "total_tokens")
        if getattr(usage, k, None) is not None
    }


class Checks:
    def __init__(self, base_url: str, key: str, wrong_key: str, timeout: float) -> None:
        import anthropic
        import openai

        self.anthropic = anthropic
        self.openai = openai
        self.base_url = base_url
        self.wrong_key = wrong_key
        self.timeout = timeout
        self.a = self.anthropic_client(key)
        self.o = self.openai_client(key)

    def anthropic_client(self, key: str) -> Any:
        return self.anthropic.Anthropic(
            base_url=self.base_url, api_key=key, max_retries=0, timeout=self.timeout
        )

    def openai_client(self, key: str) -> Any:
        return self.openai.OpenAI(
            base_url=self.base_url + "/v1", api_key=key, max_retries=0, timeout=self.timeout
        )

    # --- Anthropic Messages ---------------------------------------------------

    def anthropic_messages(self) -> dict[str, Any]:
        msg = self.a.messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=PROMPT)
        return {
            "anthropic_text": _anthropic_text(msg),
            "anthropic_id": msg.id,
            "anthropic_model": msg.model,
            "anthropic_stop_reason": msg.stop_reason,
            "anthropic_usage": _usage_dict(msg.usage),
        }

    def anthropic_stream(self) -> dict[str, Any]:
        deltas: list[str] = []
        event_types: dict[str, int] = {}
        events = 0
        with self.a.messages.stream(model=ANTHROPIC_MODEL, max_tokens=64, messages=PROMPT) as stream:
            for event in stream:
                event_types[event.type] = event_types.get(event.type, 0) + 1
                if event.type in ANTHROPIC_WIRE_EVENTS:
                    events += 1
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    deltas.append(event.delta.text)
            final = stream.get_final_message()
        return {
            "anthropic_stream_text": "".join(deltas),
            "anthropic_stream_text_deltas": len(deltas),
            "anthropic_stream_events": events,
            "anthropic_stream_event_types": event_types,
            "anthropic_stream_final_text": _anthropic_text(final),
            "anthropic_stream_stop_reason": final.stop_reason,
        }

    def anthropic_count_tokens(self) -> dict[str, Any]:
        if not hasattr(self.a.messages, "count_tokens"):
            return {"anthropic_count_tokens": None}
        res = self.a.messages.count_tokens(model=ANTHROPIC_MODEL, messages=PROMPT)
        return {"anthropic_count_tokens": res.input_tokens}

    # --- OpenAI Chat Completions -----------------------------------------------

    def openai_chat(self) -> dict[str, Any]:
        res = self.o.chat.completions.create(
            model=OPENAI_CHAT_MODEL, messages=PROMPT, max_completion_tokens=64
        )
        return {
            "openai_chat_text": res.choices[0].message.content if res.choices else None,
            "openai_chat_id": res.id,
            "openai_chat_model": res.model,
            "openai_chat_finish_reason": res.choices[0].finish_reason if res.choices else None,
            "openai_chat_usage": _usage_dict(res.usage),
        }

    def openai_chat_stream(self) -> dict[str, Any]:
        deltas: list[str] = []
        chunks = 0
        finish_reason = None
        stream = self.o.chat.completions.create(
            model=OPENAI_CHAT_MODEL, messages=PROMPT, max_completion_tokens=64, stream=True
        )
        with stream:
            for chunk in stream:
                chunks += 1
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        deltas.append(choice.delta.content)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        return {
            "openai_chat_stream_text": "".join(deltas),
            "openai_chat_stream_chunks": chunks,
            "openai_chat_stream_text_deltas": len(deltas),
            "openai_chat_stream_finish_reason": finish_reason,
        }

    # --- OpenAI Responses -------------------------------------------------------

    def openai_responses(self) -> dict[str, Any]:
        res = self.o.responses.create(model=OPENAI_RESPONSES_MODEL, input="hi")
        return {
            "openai_responses_text": res.output_text,
            "openai_responses_id": res.id,
            "openai_responses_model": res.model,
            "openai_responses_status": res.status,
            "openai_responses_usage": _usage_dict(res.usage),
        }

    def openai_responses_stream(self) -> dict[str, Any]:
        deltas: list[str] = []
        event_types: dict[str, int] = {}
        events = 0
        completed_text = None
        stream = self.o.responses.create(model=OPENAI_RESPONSES_MODEL, input="hi", stream=True)
        with stream:
            for event in stream:
                events += 1
                event_types[event.type] = event_types.get(event.type, 0) + 1
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
                elif event.type == "response.completed":
                    completed_text = event.response.output_text
        return {
            "openai_responses_stream_text": "".join(deltas),
            "openai_responses_stream_text_deltas": len(deltas),
            "openai_responses_stream_events": events,
            "openai_responses_stream_event_types": event_types,
            "openai_responses_stream_completed_text": completed_text,
        }

    # --- Rejected key -------------------------------------------------------------

    def auth_errors(self) -> dict[str, Any]:
        a_bad = self.anthropic_client(self.wrong_key)
        o_bad = self.openai_client(self.wrong_key)
        calls: dict[str, tuple[type[BaseException], Callable[[], Any]]] = {
            "anthropic_messages": (
                self.anthropic.AuthenticationError,
                lambda: a_bad.messages.create(model=ANTHROPIC_MODEL, max_tokens=64, messages=PROMPT),
            ),
            "openai_chat": (
                self.openai.AuthenticationError,
                lambda: o_bad.chat.completions.create(model=OPENAI_CHAT_MODEL, messages=PROMPT),
            ),
            "openai_responses": (
                self.openai.AuthenticationError,
                lambda: o_bad.responses.create(model=OPENAI_RESPONSES_MODEL, input="hi"),
            ),
        }
        details: dict[str, Any] = {}
        for name, (expected, call) in calls.items():
            try:
                call()
            except expected as err:  # the SDK's own class for HTTP 401
                details[name] = {
                    "exception": f"{type(err).__module__}.{type(err).__name__}",
                    "status_code": err.status_code,
                    "message": err.message,
                    "body": err.body,
                }
                continue
            raise AssertionError(
                f"{name}: a wrong key was accepted, expected {expected.__module__}.{expected.__name__}"
            )
        return {"auth_errors_ok": True, "auth_errors": details}


ALL_CHECKS = (
    "anthropic_messages",
    "anthropic_stream",
    "anthropic_count_tokens",
    "openai_chat",
    "openai_chat_stream",
    "openai_responses",
    "openai_responses_stream",
    "auth_errors",
)


def main() -> int:
    base_url = os.environ.get("KEYWAY_BASE_URL", "").rstrip("/")
    key = os.environ.get("KEYWAY_CLIENT_KEY", "")
    if not base_url or not key:
        print("sdk_check.py: KEYWAY_BASE_URL and KEYWAY_CLIENT_KEY must be set", file=sys.stderr)
        _usage()
    wrong_key = os.environ.get("KEYWAY_WRONG_KEY") or "sk-keyway-sdk-check-wrong-key"
    if wrong_key == key:
        print("sdk_check.py: KEYWAY_WRONG_KEY equals KEYWAY_CLIENT_KEY", file=sys.stderr)
        _usage()
    selected = [c.strip() for c in os.environ.get("KEYWAY_SDK_CHECKS", "").split(",") if c.strip()]
    unknown = sorted(set(selected) - set(ALL_CHECKS))
    if unknown:
        print(f"sdk_check.py: unknown check(s) {unknown}; known: {list(ALL_CHECKS)}", file=sys.stderr)
        return 2
    timeout = float(os.environ.get("KEYWAY_SDK_TIMEOUT", "20"))

    _clean_env()
    import anthropic
    import openai

    checks = Checks(base_url, key, wrong_key, timeout)
    result: dict[str, Any] = {
        "anthropic_sdk_version": anthropic.__version__,
        "openai_sdk_version": openai.__version__,
        "checks": [],
        "failed": [],
    }
    for name in selected or ALL_CHECKS:
        try:
            result.update(getattr(checks, name)())
            result["checks"].append(name)
        except Exception:  # report every failing check, not only the first
            result["failed"].append(name)
            print(f"sdk_check.py: check {name} failed:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)

    print(json.dumps(result, sort_keys=True, default=str))
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
