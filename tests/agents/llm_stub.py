"""A scripted OpenAI-compatible chat endpoint on 127.0.0.1, for tests of the language-model paths.

`StubLLM` serves ``POST /v1/chat/completions`` (and ``/chat/completions``) from a thread on a free
port. Each request takes the next scripted `Reply`: plain assistant text, tool calls (OpenAI
``tool_calls`` format, ``finish_reason`` "tool_calls"), an HTTP error status, or a delay (to make the
client time out). Every request body is recorded.

Example::

    with StubLLM() as llm:
        llm.script(tool_reply(("twin_state", {})), text_reply("Reduce speed [SOP-103#step-2]."))
        ...  # point the client at llm.url
        llm.requests[1]["messages"][-1]["role"]  # "tool"
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    Attributes:
        text: Assistant text (None with tool calls).
        tool_calls: ``(tool name, arguments)`` pairs the assistant asks for.
        status: HTTP status; not 200 answers an OpenAI-style error body.
        delay_s: Seconds to wait before answering, s.
    """

    text: str | None = None
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    status: int = 200
    delay_s: float = 0.0


def text_reply(text: str, delay_s: float = 0.0) -> Reply:
    """An assistant message with ``text``."""
    return Reply(text=text, delay_s=delay_s)


def tool_reply(*calls: tuple[str, dict[str, Any]]) -> Reply:
    """An assistant message asking for tool calls."""
    return Reply(tool_calls=tuple(calls))


def error_reply(status: int = 500) -> Reply:
    """An HTTP error."""
    return Reply(status=status)


class StubLLM:
    """The scripted endpoint; a context manager that starts and stops the server."""

    def __init__(self, model: str = "stub-model") -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._calls = 0

    @property
    def url(self) -> str:
        """Base URL for an OpenAI client (``http://127.0.0.1:<port>/v1``)."""
        assert self._server is not None, "the stub is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue answers, served in order; a request with none left gets HTTP 500."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted answers not yet served."""
        with self._lock:
            return len(self._replies)

    def _next(self, path: str, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.paths.append(path)
            self._calls += 1
            return self._replies.popleft() if self._replies else Reply(status=500, text="no scripted answer left")

    def completion(self, reply: Reply) -> dict[str, Any]:
        """The chat-completion body for ``reply``."""
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{self._calls}_{i}",
                    "type": "function",
                    "function": {"name": n, "arguments": json.dumps(a)},
                }
                for i, (n, a) in enumerate(reply.tool_calls)
            ]
        return {
            "id": f"chatcmpl-{self._calls}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if reply.tool_calls else "stop"}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }

    def __enter__(self) -> StubLLM:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout)
                    pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.path.rstrip("/") not in PATHS:
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                reply = stub._next(self.path, json.loads(raw or b"{}"))
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    error = {"message": reply.text or "scripted error", "type": "server_error", "code": reply.status}
                    self._send(reply.status, {"error": error})
                    return
                self._send(200, stub.completion(reply))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None
