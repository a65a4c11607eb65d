#!/usr/bin/env python3
"""Turn a fake-upstream `--dump` of real clients' requests into the session fixtures in
tests/clients/*.json: one request per client, its headers (keys replaced by `<key>`, `host`
and `content-length` left out) and the parts of its body that identify a conversation. Long
texts the clients ship (system prompts, tool descriptions) are left out: they are the
clients' own, and routing reads none of them.

usage: fixture.py DUMP OUT_DIR VERSIONS_JSON
"""
import json
import sys

SECRET_HEADERS = {"x-api-key", "authorization", "x-goog-api-key"}
DROPPED_HEADERS = {"host", "content-length"}
KEPT_BODY_FIELDS = {
    "anthropic": ["model", "metadata", "stream", "max_tokens"],
    "openai": ["model", "prompt_cache_key", "store", "include", "stream", "user"],
    "google": [],
}


def client_of(request):
    path = request["path"]
    if path.startswith("/v1/messages"):
        return "claude-code", "anthropic"
    if path.startswith("/v1/responses"):
        return "codex-cli", "openai"
    if path.startswith("/v1beta/"):
        return "gemini-cli", "google"
    return None, None


def headers(request):
    out = []
    for name, value in request["headers"]:
        if name in DROPPED_HEADERS:
            continue
        if name in SECRET_HEADERS:
            value = "Bearer <key>" if name == "authorization" else "<key>"
        out.append([name, value])
    return out


def body(request, provider):
    full = request["body"] if isinstance(request["body"], dict) else {}
    kept = {k: full[k] for k in KEPT_BODY_FIELDS[provider] if k in full}
    if provider == "anthropic":
        kept["messages"] = [{"role": "user", "content": "Say hi"}]
    elif provider == "openai":
        kept["input"] = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hi"}]}]
    else:
        kept["contents"] = [{"role": "user", "parts": [{"text": "Say hi"}]}]
    return kept


def main():
    dump, out_dir, versions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    seen = {}
    for request in json.load(open(dump)):
        client, provider = client_of(request)
        # The last request of each client is its main turn (Gemini CLI first asks a small
        # model to route the prompt).
        if client:
            seen[client] = (request, provider)
    for client, (request, provider) in seen.items():
        fixture = {
            "client": client,
            "version": versions.get(client, ""),
            "method": request["method"],
            "path": request["path"],
            "headers": headers(request),
            "body": body(request, provider),
        }
        with open(f"{out_dir}/{client}.json", "w") as f:
            json.dump(fixture, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
