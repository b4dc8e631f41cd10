"""Check the tiny model against a real vLLM server.

For every generation step of every script: the prompt ids from vLLM's ``/tokenize`` must equal
the ids the model was trained on, and ``/v1/chat/completions`` at temperature 0, streamed and not,
must return the scripted tool calls (parsed by the hermes parser) or the scripted text.

    python -m tests.support.verify_tiny_model [--model DIR] [--port 8765] [--url URL]

Without ``--url`` it starts (and afterwards stops) a vLLM server on ``--port``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support import processes
from tests.support.scripts import SCRIPTS, Sample, all_samples
from tests.support.tiny_model import build_tiny_model, encode_prompt

SERVER_FLAGS = [
    *("--dtype", "float32", "--enforce-eager", "--gpu-memory-utilization", "0.15"),
    *("--block-size", "32", "--max-model-len", "2048"),
    *("--enable-auto-tool-choice", "--tool-call-parser", "hermes"),
]


@contextmanager
def vllm_server(model: Path, port: int, timeout: float = 600.0) -> Iterator[str]:
    """Start a vLLM OpenAI server for the model; yield its base URL; stop it."""
    log = Path(tempfile.mkdtemp(prefix="vllm-tiny-")) / "vllm.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model)]
    proc = processes.start([*cmd, "--port", str(port), *SERVER_FLAGS], log)
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_http(f"{url}/health", proc, timeout, log)
        yield url
    finally:
        processes.stop(proc)


def check_tokenize(client: httpx.Client, model: Path, samples: Sequence[Sample]) -> list[str]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    failures: list[str] = []
    for s in samples:
        body = {"model": str(model), "messages": s.messages, "tools": s.tools, "add_generation_prompt": True}
        response = client.post("/tokenize", json=body)
        response.raise_for_status()
        served = response.json()["tokens"]
        ours = encode_prompt(tokenizer, s)
        same = served == ours
        print(
            f"tokenize  {s.script:18} turn {s.turn}: {len(served):4} tokens  {'match' if same else 'MISMATCH'}"
        )
        if not same:
            at = next((i for i, (a, b) in enumerate(zip(served, ours, strict=False)) if a != b), None)
            failures.append(
                f"tokenize {s.script} turn {s.turn}: lengths {len(served)}/{len(ours)}, first diff {at}"
            )
    return failures


def check_chat(client: httpx.Client, model: Path, samples: Sequence[Sample], stream: bool) -> list[str]:
    failures: list[str] = []
    for s in samples:
        body: dict[str, Any] = {
            "model": str(model),
            "messages": s.messages,
            "tools": s.tools,
            "temperature": 0,
            "max_tokens": 96,
        }
        if s.tool_choice is not None:
            body["tool_choice"] = {"type": "function", "function": {"name": s.tool_choice}}
        content, calls, finish = _stream_chat(client, body) if stream else _chat(client, body)
        script = SCRIPTS[s.script]
        turn = script.turns[s.turn]
        # This server has no reasoning parser: a script's <think> block stays in the content.
        thought = f"<think>\n{script.reasoning[s.turn]}\n</think>\n\n" if script.reasoning else ""
        if isinstance(turn, str):
            ok = content == thought + turn and not calls and finish == "stop"
            want = repr(thought + turn)
        else:
            expected = [(c.name, c.arguments_json) for c in turn]
            # vLLM (like OpenAI) finishes a call forced by a named tool_choice with "stop".
            finished = finish == ("stop" if s.tool_choice else "tool_calls")
            ok = calls == expected and (content or "") == thought and finished
            want = json.dumps({"content": thought, "tool_calls": expected})
        got = json.dumps({"content": content, "tool_calls": calls, "finish": finish})
        label = ("stream" if stream else "chat").ljust(9)
        forced = " (forced)" if s.tool_choice else ""
        print(f"{label} {s.script:18} turn {s.turn}: {'match' if ok else 'MISMATCH'}{forced}  {got}")
        if not ok:
            failures.append(f"{label.strip()} {s.script} turn {s.turn}: want {want}, got {got}")
    return failures


Reply = tuple[str | None, list[tuple[str, str]], str | None]  # content, (name, arguments) calls, finish


def _chat(client: httpx.Client, body: dict[str, Any]) -> Reply:
    response = client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    choice = response.json()["choices"][0]
    message = choice["message"]
    calls = [(c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or []]
    return message.get("content"), calls, choice["finish_reason"]


def _stream_chat(client: httpx.Client, body: dict[str, Any]) -> Reply:
    content: str | None = None
    calls: dict[int, list[str]] = {}
    finish: str | None = None
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[len("data: ") :])["choices"]:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    content = (content or "") + delta["content"]
                for call in delta.get("tool_calls") or []:
                    name_args = calls.setdefault(call["index"], ["", ""])
                    function = call.get("function") or {}
                    name_args[0] += function.get("name") or ""
                    name_args[1] += function.get("arguments") or ""
                finish = choice.get("finish_reason") or finish
    return content, [(name, args) for _, (name, args) in sorted(calls.items())], finish


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model directory (default: build or reuse the cached one)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--url", help="use this running server (serving --model) instead of starting one")
    args = parser.parse_args(argv)

    logging.getLogger("httpx").setLevel(logging.WARNING)
    model = args.model or build_tiny_model()
    print(f"model: {model}")
    samples = all_samples()
    server = vllm_server(model, args.port) if args.url is None else _given(args.url)
    with server as url, httpx.Client(base_url=url, timeout=120) as client:
        failures = check_tokenize(client, model, samples)
        failures += check_chat(client, model, samples, stream=False)
        failures += check_chat(client, model, samples, stream=True)
    print(f"{len(samples)} prompts: {'all match' if not failures else f'{len(failures)} failures'}")
    for failure in failures:
        print("  " + failure)
    return 1 if failures else 0


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url.rstrip("/")


if __name__ == "__main__":
    sys.exit(main())
