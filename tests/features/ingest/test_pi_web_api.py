"""PI Web API client against a fake PI Web API on 127.0.0.1.

The fake server answers the documented JSON shapes of the PI Web API:

* `GET /piwebapi/points?path=\\\\PISRV01\\TAG` -> `{"WebId": ..., "Name": ..., "Path": ...}`
* `GET /piwebapi/dataservers?name=PISRV01` -> `{"WebId": "DS1", ...}`
* `GET /piwebapi/dataservers/DS1/points?nameFilter=&startIndex=&maxCount=` -> `{"Items": [...]}`
* `GET /piwebapi/streams/{webId}/recorded?startTime=&endTime=&maxCount=` ->
  `{"Items": [{"Timestamp", "Value", "Good", "Questionable", "Substituted", ...}], "Links": {}}`
  (both ends inclusive, as PI's `boundaryType=Inside`)
* `POST /piwebapi/batch` -> `{"1": {"Status": ..., "Headers": {...}, "Content": {...}}}`

and can misbehave: cap the values per request with an ArcMaxCollect error (`cap`), refuse a
`maxCount` above a limit (`max_returned`), fail the first requests with 503 or 429 (`fail_first`),
fail sub-requests of a batch (`fail_sub_requests`), answer the first request late
(`delay_first_s`), require basic auth (`auth`, refused with `auth_status`), answer every request
with a raw body (`raw`: status, content type and bytes, e.g. HTML or truncated JSON), or drop the
connection halfway through the body (`cut_body`).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from pumptwin.features.ingest.contract import REASON_VALUE
from pumptwin.features.ingest.pi_web_api import (
    BasicAuth,
    BearerAuth,
    PIWebAPIAuthError,
    PIWebAPIClient,
    PIWebAPIError,
    PIWebAPINotFoundError,
    PIWebAPIResponseError,
    PIWebAPITransientError,
    RetryPolicy,
    item_value,
    map_quality,
)
from pumptwin.twin.errors import PumptwinError

SERVER = "PISRV01"


def pi_items(start: str, n: int, freq: str = "1min", value0: float = 0.0) -> list[dict[str, Any]]:
    """`n` good recorded items from `start` every `freq`, values value0, value0 + 1, ..."""
    stamps = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return [
        {
            "Timestamp": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Value": value0 + i,
            "UnitsAbbreviation": "",
            "Good": True,
            "Questionable": False,
            "Substituted": False,
            "Annotated": False,
        }
        for i, t in enumerate(stamps)
    ]


@dataclass
class FakePI:
    """State and behaviour of the fake PI Web API."""

    streams: dict[str, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)  # webId -> (tag, items)
    cap: int | None = None
    cap_status: int = 400
    max_returned: int | None = None
    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    fail_sub_requests: int = 0
    delay_first_s: float = 0.0
    auth: tuple[str, str] | None = None
    auth_status: int = 401
    raw: tuple[int, str, bytes] | None = None
    cut_body: bool = False
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, web_id: str, tag: str, items: list[dict[str, Any]]) -> None:
        self.streams[web_id] = (tag, items)

    def recorded_windows(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """(start, end) of every recorded-values request, in order."""
        return [
            (pd.Timestamp(q["startTime"]), pd.Timestamp(q["endTime"]))
            for _, path, q in self.log
            if path.endswith("/recorded")
        ]

    # --- answers -----------------------------------------------------------------------

    def answer(self, method: str, url: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        with self._lock:
            self.log.append((method, path, query))
        if method == "POST" and path == "/piwebapi/batch":
            return self.batch(body)
        if method != "GET":
            return 405, {"Errors": [f"{method} not allowed"]}, {}
        return self.get(path, query)

    def get(self, path: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:  # noqa: PLR0911 - a router
        if path == "/piwebapi/points":
            wanted = query.get("path", "")
            for web_id, (tag, _) in self.streams.items():
                if wanted.lower() == f"\\\\{SERVER}\\{tag}".lower():
                    return 200, self.point(web_id), {}
            return 404, {"Errors": [f"PI Point not found '{wanted}'."]}, {}
        if path == "/piwebapi/dataservers":
            if query.get("name") == SERVER:
                return 200, {"WebId": "DS1", "Name": SERVER, "Path": f"\\\\{SERVER}"}, {}
            return 404, {"Errors": ["Data server not found."]}, {}
        if path == "/piwebapi/dataservers/DS1/points":
            pattern = query.get("nameFilter", "*")
            names = sorted(
                (tag, web_id) for web_id, (tag, _) in self.streams.items() if fnmatch.fnmatchcase(tag, pattern)
            )
            first, count = int(query.get("startIndex", 0)), int(query.get("maxCount", 1000))
            return 200, {"Items": [self.point(w) for _, w in names[first : first + count]], "Links": {}}, {}
        if path.startswith("/piwebapi/streams/") and path.endswith("/recorded"):
            return self.recorded(path.split("/")[3], query)
        return 404, {"Errors": [f"No resource at {path}"]}, {}

    def point(self, web_id: str) -> dict[str, Any]:
        tag = self.streams[web_id][0]
        return {
            "WebId": web_id,
            "Id": 1,
            "Name": tag,
            "Path": f"\\\\{SERVER}\\{tag}",
            "PointType": "Float32",
            "EngineeringUnits": "mm/s",
            "Links": {},
        }

    def recorded(self, web_id: str, query: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if web_id not in self.streams:
            return 404, {"Errors": [f"Unknown or invalid WebID format: {web_id}."]}, {}
        max_count = int(query.get("maxCount", 1000))
        if self.max_returned is not None and max_count > self.max_returned:
            return (
                400,
                {"Errors": [f"Parameter 'maxCount' is greater than the maximum allowed ({self.max_returned})."]},
                {},
            )
        start, end = pd.Timestamp(query["startTime"]), pd.Timestamp(query["endTime"])
        items = [i for i in self.streams[web_id][1] if start <= pd.Timestamp(i["Timestamp"]) <= end]
        if self.cap is not None and len(items) > self.cap:
            message = "[-11091] Event collection exceeded the maximum allowed (ArcMaxCollect)."
            return self.cap_status, {"Errors": [message]}, {}
        return 200, {"Items": items[:max_count], "UnitsAbbreviation": "", "Links": {}}, {}

    def batch(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        answers = {}
        for key, sub in body.items():
            with self._lock:
                failing = self.fail_sub_requests > 0
                self.fail_sub_requests -= 1 if failing else 0
            if failing:
                status, content, headers = 503, {"Errors": ["Service Unavailable"]}, {}
            else:
                status, content, headers = self.answer(sub["Method"], sub["Resource"], sub.get("Content"))
            answers[key] = {"Status": status, "Headers": headers, "Content": content}
        ok = all(200 <= a["Status"] < 300 for a in answers.values())
        return (200 if ok else 207), answers, {}

    # --- misbehaviour ------------------------------------------------------------------

    def before(self, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]] | None:
        with self._lock:
            self._count += 1
            count = self._count
            self.headers_seen.append(headers)
        if count == 1 and self.delay_first_s:
            time.sleep(self.delay_first_s)
        if self.auth is not None:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            if headers.get("Authorization") != f"Basic {token}":
                return self.auth_status, {"Errors": ["Unauthorized" if self.auth_status == 401 else "Forbidden"]}, {}
        if count <= self.fail_first:
            extra = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return self.fail_status, {"Errors": ["Service Unavailable"]}, extra
        return None


def _handler(fake: FakePI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def reply(self, status: int, content: Any, headers: dict[str, str]) -> None:
            self.reply_raw(status, "application/json; charset=utf-8", json.dumps(content).encode(), headers)

        def reply_raw(self, status: int, kind: str, data: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data) * (2 if fake.cut_body else 1)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
                if fake.cut_body:  # the rest of the promised body never comes
                    self.wfile.flush()
                    self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

        def serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            early = fake.before(dict(self.headers))
            if early is not None:
                self.reply(*early)
                return
            if fake.raw is not None:
                with fake._lock:
                    fake.log.append((method, urlsplit(self.path).path, {}))
                self.reply_raw(*fake.raw)
                return
            self.reply(*fake.answer(method, f"http://{self.headers['Host']}{self.path}", body))

        def do_GET(self) -> None:
            self.serve("GET")

        def do_POST(self) -> None:
            self.serve("POST")

    return Handler


@contextmanager
def fake_pi_servers() -> Iterator[Callable[..., tuple[FakePI, str]]]:
    """Start fake PI Web API servers on 127.0.0.1 until the block ends; yields a factory: (fake, base URL)."""
    servers: list[ThreadingHTTPServer] = []

    def start(**options: Any) -> tuple[FakePI, str]:
        fake = FakePI(**options)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return fake, f"http://127.0.0.1:{server.server_address[1]}/piwebapi"

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def pi_server() -> Iterator[Callable[..., tuple[FakePI, str]]]:
    """Start fake PI Web API servers on 127.0.0.1; returns a factory: (fake, base URL)."""
    with fake_pi_servers() as start:
        yield start


START = pd.Timestamp("2026-11-01T00:00Z")
FAST_RETRY = RetryPolicy(attempts=4, backoff_s=0.01, max_backoff_s=0.05)


def client_for(url, sleeps, **options):
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("timeout_s", 5.0)
    return PIWebAPIClient(url, sleep=sleeps, seed=0, **options)


# --- quality and values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("good", "questionable", "substituted", "system", "expected"),
    [
        (True, False, False, False, "good"),
        (None, None, None, False, "good"),
        (True, True, False, False, "questionable"),
        (True, False, True, False, "substituted"),
        (True, True, True, False, "questionable"),
        (False, False, False, False, "bad"),
        (False, True, True, False, "bad"),
        (True, False, False, True, "bad"),
    ],
)
def test_quality_mapping(good, questionable, substituted, system, expected):
    assert map_quality(good, questionable, substituted, system=system) == expected


def test_item_values():
    value, system = item_value({"Name": "I/O Timeout", "Value": 246, "IsSystem": True})
    assert math.isnan(value) and system
    assert item_value({"Name": "Running", "Value": 1, "IsSystem": False}) == (1.0, False)
    assert item_value({"Name": "Open", "IsSystem": False}) == ("Open", False)
    assert item_value(True) == (1.0, False)
    assert item_value(3) == (3.0, False)
    assert item_value("12.5") == ("12.5", False)
    assert math.isnan(item_value(None)[0])


def test_retry_policy_backoff_grows_with_jitter_and_honours_retry_after():
    policy = RetryPolicy(backoff_s=1.0, max_backoff_s=8.0, jitter=0.5)
    rng = random.Random(0)
    waits = [policy.delay_s(n, rng) for n in range(1, 6)]
    for n, wait in enumerate(waits, start=1):
        base = min(8.0, 2 ** (n - 1))
        assert base / 2 <= wait <= base
    assert policy.delay_s(1, rng, retry_after_s=5.0) >= 5.0
    assert policy.delay_s(1, rng, retry_after_s=1e6) == policy.max_retry_after_s
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


# --- points ----------------------------------------------------------------------------------


def test_point_lookup_by_path_and_by_name_filter(pi_server, sleeps):
    fake, url = pi_server()
    for i, tag in enumerate(["PS01.P1.FLOW_M3S", "PS01.P2.FLOW_M3S", "PS01.P3.FLOW_M3S", "PS02.P1.FLOW_M3S"]):
        fake.add(f"W{i}", tag, [])
    with client_for(url, sleeps) as client:
        point = client.point(f"\\\\{SERVER}\\PS01.P2.FLOW_M3S")
        assert (point.web_id, point.name, point.engineering_units) == ("W1", "PS01.P2.FLOW_M3S", "mm/s")
        server = client.data_server(SERVER)
        assert server == "DS1"
        found = client.find_points(server, "PS01.*", page_size=2)  # two pages, then a short one
        assert [p.name for p in found] == ["PS01.P1.FLOW_M3S", "PS01.P2.FLOW_M3S", "PS01.P3.FLOW_M3S"]
        with pytest.raises(PIWebAPIError, match=r"HTTP 404: PI Point not found") as caught:
            client.point(f"\\\\{SERVER}\\NOPE")
        assert caught.value.status == 404
        points, problems = client.points(
            {"PS01.P1.FLOW_M3S": f"\\\\{SERVER}\\PS01.P1.FLOW_M3S", "PS09.X.Y": f"\\\\{SERVER}\\PS09.X.Y"}
        )
    assert points["PS01.P1.FLOW_M3S"].web_id == "W0"
    assert [p.file for p in problems] == ["pi:PS09.X.Y"] and "not found" in problems[0].problem
    assert fake.log[0][2]["path"] == f"\\\\{SERVER}\\PS01.P2.FLOW_M3S"  # backslashes arrive intact


# --- recorded values: cap, chunking, paging --------------------------------------------------


def test_server_cap_errors_are_met_by_splitting_windows_then_growing(pi_server, sleeps):
    fake, url = pi_server(cap=100)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 1000))
    client = client_for(url, sleeps, initial_chunk=pd.Timedelta("1D"), max_count=10_000)
    items = client.recorded("W1", START, START + pd.Timedelta("1D"))
    assert [i["Value"] for i in items] == [float(v) for v in range(1000)]  # all, once each, in order
    windows = fake.recorded_windows()
    spans = [end - start for start, end in windows]
    assert spans[0] == pd.Timedelta("1D")
    assert min(spans) < pd.Timedelta("100min")  # split until a window fits the cap
    grew = [b > a for a, b in zip(spans, spans[1:], strict=False)]
    assert any(grew)  # and grown again after successes
    assert sleeps.waits == []  # splitting is not a retry


@pytest.mark.parametrize("cap_status", [400, 502])
def test_cap_error_is_not_retried_as_transient(pi_server, sleeps, cap_status):
    fake, url = pi_server(cap=10, cap_status=cap_status)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 30))
    items = client_for(url, sleeps).recorded("W1", START, START + pd.Timedelta("1h"))
    assert len(items) == 30 and sleeps.waits == []


def test_full_pages_of_max_count_are_split(pi_server, sleeps):
    fake, url = pi_server()
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 500))
    client = client_for(url, sleeps, max_count=50, initial_chunk=pd.Timedelta("7D"), max_chunk=pd.Timedelta("7D"))
    items = client.recorded("W1", START, START + pd.Timedelta("7D"))
    assert len(items) == 500
    assert len({i["Timestamp"] for i in items}) == 500
    assert all(int(q["maxCount"]) == 50 for _, path, q in fake.log if path.endswith("/recorded"))


def test_max_count_above_the_servers_maximum_is_lowered(pi_server, sleeps):
    fake, url = pi_server(max_returned=200)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 300))
    client = client_for(url, sleeps, max_count=150_000)
    assert len(client.recorded("W1", START, START + pd.Timedelta("1D"))) == 300
    assert client.max_count == 200


def test_cap_that_cannot_be_met_is_a_clear_error(pi_server, sleeps):
    fake, url = pi_server(cap=5)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 20, freq="100ms"))
    client = client_for(url, sleeps, min_chunk=pd.Timedelta("1s"), initial_chunk=pd.Timedelta("1min"))
    with pytest.raises(PIWebAPIError, match="shortest window allowed"):
        client.recorded("W1", START, START + pd.Timedelta("1min"))


def test_boundary_values_are_read_once(pi_server, sleeps):
    fake, url = pi_server()
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 121))  # 00:00 .. 02:00 inclusive
    client = client_for(url, sleeps, initial_chunk=pd.Timedelta("30min"), max_chunk=pd.Timedelta("30min"))
    items = client.recorded("W1", START, START + pd.Timedelta("2h"))
    assert len(items) == 120  # [start, end): 02:00 is not included, no boundary value twice


# --- transient failures ----------------------------------------------------------------------


def test_two_503s_then_success(pi_server, sleeps):
    fake, url = pi_server(fail_first=2)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 10))
    items = client_for(url, sleeps).recorded("W1", START, START + pd.Timedelta("1h"))
    assert len(items) == 10
    assert len(sleeps.waits) == 2 and sleeps.waits[1] > 0
    assert len(fake.log) == 1  # the two failures were answered before routing


def test_429_waits_as_long_as_retry_after(pi_server, sleeps):
    fake, url = pi_server(fail_first=1, fail_status=429, retry_after="3")
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 10))
    assert len(client_for(url, sleeps).recorded("W1", START, START + pd.Timedelta("1h"))) == 10
    assert sleeps.waits == [pytest.approx(3.0)]


def test_persistent_503_gives_up_with_a_transient_error(pi_server, sleeps):
    fake, url = pi_server(fail_first=100)
    fake.add("W1", "PS01.P1.FLOW_M3S", [])
    with pytest.raises(PIWebAPIError, match="HTTP 503"):
        client_for(url, sleeps).recorded("W1", START, START + pd.Timedelta("1h"))
    assert len(sleeps.waits) == FAST_RETRY.attempts - 1
    with pytest.raises(PIWebAPITransientError, match="HTTP 503"):
        client_for(url, sleeps).get("dataservers", name=SERVER)


def test_timeout_is_retried(pi_server, sleeps):
    fake, url = pi_server(delay_first_s=1.0)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 5))
    items = client_for(url, sleeps, timeout_s=0.2).recorded("W1", START, START + pd.Timedelta("1h"))
    assert len(items) == 5 and len(sleeps.waits) == 1


def test_unreachable_server_raises_after_retries(sleeps):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for(f"http://127.0.0.1:{port}/piwebapi", sleeps)
    with pytest.raises(PIWebAPITransientError, match="ConnectionError after 4 tries"):
        client.recorded("W1", START, START + pd.Timedelta("1h"))
    assert len(sleeps.waits) == 3
    assert sleeps.waits == sorted(sleeps.waits) or max(sleeps.waits) <= FAST_RETRY.max_backoff_s


def test_client_errors_are_not_retried(pi_server, sleeps):
    fake, url = pi_server()
    with pytest.raises(PIWebAPIError, match=r"HTTP 404: Unknown or invalid WebID format: NOPE"):
        client_for(url, sleeps).recorded("NOPE", START, START + pd.Timedelta("1h"))
    assert len(fake.log) == 1 and sleeps.waits == []


# --- batch -----------------------------------------------------------------------------------


def test_batch_endpoint_shapes(pi_server, sleeps):
    fake, url = pi_server()
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 3))
    client = client_for(url, sleeps)
    window = {"startTime": "2026-11-01T00:00:00Z", "endTime": "2026-11-02T00:00:00Z"}
    answers = client.batch(
        {
            "1": {"Method": "GET", "Resource": client.url("streams/W1/recorded", window)},
            "2": {"Method": "GET", "Resource": client.url("streams/NOPE/recorded", window)},
        }
    )
    assert answers["2"].status == 404 and not answers["2"].ok
    assert fake.log[0][:2] == ("POST", "/piwebapi/batch")
    assert all(h.get("X-Requested-With") == "XMLHttpRequest" for h in fake.headers_seen)


def test_read_recorded_many_streams_through_batches(pi_server, sleeps):
    fake, url = pi_server(cap=40)
    tags = {f"W{i}": f"PS0{i}.P1.FLOW_M3S" for i in range(1, 4)}
    for web_id, tag in tags.items():
        fake.add(web_id, tag, pi_items("2026-11-01T00:00Z", 90, value0=100 * int(web_id[1:])))
    streams = {tag: web_id for web_id, tag in tags.items()} | {"PS09.P1.FLOW_M3S": "MISSING"}
    client = client_for(url, sleeps, batch_size=2, initial_chunk=pd.Timedelta("2h"))
    result = client.read_recorded(streams, START, START + pd.Timedelta("90min"))
    assert result.source == f"pi:{url.split('/')[2]}"
    assert result.readings.groupby("tag").size().to_dict() == dict.fromkeys(tags.values(), 90)
    assert result.readings["ts"].dtype == "datetime64[ns, UTC]"
    assert [p.file for p in result.problems] == ["pi:PS09.P1.FLOW_M3S"]
    assert result.problems[0].refused and "HTTP 404" in result.problems[0].problem
    batches = [method for method, path, _ in fake.log if path == "/piwebapi/batch"]
    assert batches and set(batches) == {"POST"}
    assert len(fake.headers_seen) == len(batches)  # every HTTP request was a batch


def test_transient_sub_request_failures_in_a_batch_are_retried(pi_server, sleeps):
    fake, url = pi_server(fail_sub_requests=2)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 10))
    result = client_for(url, sleeps).read_recorded({"PS01.P1.FLOW_M3S": "W1"}, START, START + pd.Timedelta("1h"))
    assert len(result.readings) == 10 and len(sleeps.waits) == 2


def test_batch_post_failing_twice_with_503_then_succeeding(pi_server, sleeps):
    fake, url = pi_server(fail_first=2)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 10))
    result = client_for(url, sleeps).read_recorded({"PS01.P1.FLOW_M3S": "W1"}, START, START + pd.Timedelta("1h"))
    assert len(result.readings) == 10 and len(sleeps.waits) == 2


def test_digital_states_text_and_quality_flags_become_readings(pi_server, sleeps):
    fake, url = pi_server()
    items = pi_items("2026-11-01T00:00Z", 5)
    items[1].update(Value={"Name": "I/O Timeout", "Value": 246, "IsSystem": True}, Good=False)
    items[2].update(Questionable=True)
    items[3].update(Substituted=True, Value="7.5")
    items[4].update(Value="Calibrating")
    fake.add("W1", "PS01.P1.FLOW_M3S", items)
    result = client_for(url, sleeps).read_recorded({"PS01.P1.FLOW_M3S": "W1"}, START, START + pd.Timedelta("1h"))
    got = result.readings
    assert got["quality"].tolist() == ["good", "bad", "questionable", "substituted"]
    assert math.isnan(got["value"].iloc[1]) and got["value"].iloc[3] == 7.5
    assert result.rejected["reason"].tolist() == [REASON_VALUE]
    assert result.rejected["value"].tolist() == ["Calibrating"]


def test_start_per_tag_from_watermarks(pi_server, sleeps):
    fake, url = pi_server()
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 60))
    fake.add("W2", "PS01.P2.FLOW_M3S", pi_items("2026-11-01T00:00Z", 60))
    starts = {"PS01.P1.FLOW_M3S": START + pd.Timedelta("50min"), "PS01.P2.FLOW_M3S": START}
    result = client_for(url, sleeps).read_recorded(
        {"PS01.P1.FLOW_M3S": "W1", "PS01.P2.FLOW_M3S": "W2"}, starts, START + pd.Timedelta("1h"), use_batch=False
    )
    assert result.readings.groupby("tag").size().to_dict() == {"PS01.P1.FLOW_M3S": 10, "PS01.P2.FLOW_M3S": 60}
    assert {path for _, path, _ in fake.log} == {"/piwebapi/streams/W1/recorded", "/piwebapi/streams/W2/recorded"}


# --- auth ------------------------------------------------------------------------------------


def test_basic_auth_is_sent_and_never_shown(pi_server, sleeps, caplog):
    fake, url = pi_server(auth=("svc-pumptwin", "s3cret-pw"), fail_first=1)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 3))
    auth = BasicAuth("svc-pumptwin", "s3cret-pw")
    client = client_for(url, sleeps, auth=auth)
    with caplog.at_level(logging.DEBUG):
        assert len(client.recorded("W1", START, START + pd.Timedelta("1h"))) == 3
    assert "s3cret-pw" not in repr(auth) and "s3cret-pw" not in repr(client)
    assert "s3cret-pw" not in caplog.text and "c3ZjLXB1bXB0d2luOnMzY3JldC1wdw" not in caplog.text
    assert "retry" not in caplog.text.lower() or "try 2 of 4" in caplog.text
    with pytest.raises(PIWebAPIError, match="HTTP 401"):
        client_for(url, sleeps, auth=BasicAuth("svc-pumptwin", "wrong")).get("dataservers", name=SERVER)


def test_bearer_auth_repr_hides_the_token():
    assert "tok-123" not in repr(BearerAuth("tok-123"))


def test_naive_times_and_bad_settings_are_refused():
    client = PIWebAPIClient("http://127.0.0.1:9/piwebapi")
    with pytest.raises(ValueError, match="timezone-aware"):
        client.recorded("W1", "2026-11-01", START)
    with pytest.raises(ValueError, match="min_chunk"):
        PIWebAPIClient("http://127.0.0.1:9/piwebapi", min_chunk=pd.Timedelta("2D"))


# --- unusable answers: one clear error each --------------------------------------------------

TRUNCATED = json.dumps({"Items": pi_items("2026-11-01T00:00Z", 3), "Links": {}}).encode()[:-40]
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in\x1b[2J</title></head><body>Corporate SSO</body></html>"


def assert_one_clear_line(error: BaseException, *fragments: str) -> None:
    """The error is a project error whose message is one printable line holding every fragment."""
    message = str(error)
    assert isinstance(error, PumptwinError)
    assert "\n" not in message and "\x1b" not in message and len(message) < 600, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        ((200, "text/html; charset=utf-8", HTML), ["answered HTML", "/piwebapi/dataservers", "<!DOCTYPE html>"]),
        ((200, "application/json", HTML), ["answered HTML", "<!DOCTYPE html>"]),  # HTML that claims to be JSON
        ((200, "application/json", b'{"WebId": "DS1", '), ["invalid or truncated JSON", '{"WebId": "DS1"']),
        ((200, "application/json", TRUNCATED), ["invalid or truncated JSON", '{"Items"']),
        ((200, "application/json", b"not json at all"), ["invalid or truncated JSON", "not json"]),
        ((200, "application/json", b""), ["an empty body"]),
        ((200, "application/json", b"[1, 2]"), ["expected a JSON object with a 'WebId'", "[1, 2]"]),
        ((200, "application/json", b'{"Name": "PISRV01"}'), ["expected a JSON object with a 'WebId'"]),
    ],
)
def test_unusable_answers_raise_a_response_error(pi_server, sleeps, raw, fragments):
    fake, url = pi_server(raw=raw)
    with pytest.raises(PIWebAPIResponseError) as caught:
        client_for(url, sleeps).data_server(SERVER)
    assert_one_clear_line(caught.value, f"{url}/dataservers", *fragments)
    assert "\\x1b" in str(caught.value) or b"\x1b" not in raw[2]  # escapes shown, not sent to a terminal
    assert sleeps.waits == []  # not retried


@pytest.mark.parametrize(
    "body",
    [b'{"Links": {}}', b'{"Items": {"WebId": "W1"}}', b'{"Items": [1, 2]}', b"[]"],
)
def test_a_list_answer_without_items_raises_a_response_error(pi_server, sleeps, body):
    fake, url = pi_server(raw=(200, "application/json", body))
    with pytest.raises(PIWebAPIResponseError, match="expected a JSON object with a list of objects in 'Items'") as c:
        client_for(url, sleeps).find_points("DS1", "PS01.*")
    assert_one_clear_line(c.value, "/piwebapi/dataservers/DS1/points")


@pytest.mark.parametrize("body", [HTML, TRUNCATED, b'{"Links": {}}'])
def test_unusable_recorded_values_raise_a_response_error(pi_server, sleeps, body):
    fake, url = pi_server(raw=(200, "application/json", body))
    with pytest.raises(PIWebAPIResponseError) as caught:
        client_for(url, sleeps).recorded("W1", START, START + pd.Timedelta("1h"))
    assert_one_clear_line(caught.value, "/piwebapi/streams/W1/recorded")
    with pytest.raises(PIWebAPIResponseError):  # the same answer to a batch request
        client_for(url, sleeps).read_recorded({"PS01.P1.FLOW_M3S": "W1"}, START, START + pd.Timedelta("1h"))


def test_a_sub_request_answer_without_items_raises_a_response_error(pi_server, sleeps, monkeypatch):
    fake, url = pi_server()
    fake.add("W1", "PS01.P1.FLOW_M3S", [])
    monkeypatch.setattr(fake, "recorded", lambda web_id, query: (200, "<html>proxy</html>", {}))
    with pytest.raises(PIWebAPIResponseError, match="expected a JSON object with a list of objects in 'Items'"):
        client_for(url, sleeps).read_recorded({"PS01.P1.FLOW_M3S": "W1"}, START, START + pd.Timedelta("1h"))


def test_a_body_cut_off_is_retried_then_a_transient_error(pi_server, sleeps):
    fake, url = pi_server(raw=(200, "application/json", TRUNCATED), cut_body=True)
    with pytest.raises(PIWebAPITransientError) as caught:
        client_for(url, sleeps).data_server(SERVER)
    assert_one_clear_line(caught.value, "/piwebapi/dataservers", "after 4 tries")
    assert len(sleeps.waits) == FAST_RETRY.attempts - 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_after_the_retries_are_one_transient_line(pi_server, sleeps, status):
    page = b"<html>\n<body>\n<h1>Internal Server Error</h1>\n" + b"x" * 5000 + b"\n</body></html>"
    fake, url = pi_server(raw=(status, "text/html", page))
    with pytest.raises(PIWebAPITransientError) as caught:
        client_for(url, sleeps).data_server(SERVER)
    assert_one_clear_line(caught.value, "/piwebapi/dataservers", f"HTTP {status}", "Internal Server Error")
    assert caught.value.status == status and len(fake.log) == FAST_RETRY.attempts


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_raise_an_auth_error_that_says_what_to_check(pi_server, sleeps, status):
    fake, url = pi_server(auth=("svc-pumptwin", "s3cret-pw"), auth_status=status)
    fake.add("W1", "PS01.P1.FLOW_M3S", pi_items("2026-11-01T00:00Z", 3))
    client = client_for(url, sleeps, auth=BasicAuth("svc-pumptwin", "wrong-pw"))
    with pytest.raises(PIWebAPIAuthError) as caught:
        client.data_server(SERVER)
    error = caught.value
    assert_one_clear_line(error, "/piwebapi/dataservers", f"HTTP {status}", "PUMPTWIN_HISTORIAN__PASSWORD")
    assert "PUMPTWIN_HISTORIAN__TOKEN" in str(error) and "wrong-pw" not in str(error)
    assert error.status == status and sleeps.waits == []
    with pytest.raises(PIWebAPIError, match=f"HTTP {status}"):  # the recorded values alike
        client.recorded("W1", START, START + pd.Timedelta("1h"))


def test_not_found_names_what_to_check(pi_server, sleeps):
    fake, url = pi_server()
    with pytest.raises(PIWebAPINotFoundError) as caught:
        client_for(url, sleeps).data_server("NO_SUCH_SERVER")
    assert_one_clear_line(caught.value, "HTTP 404", "Data server not found", "PUMPTWIN_HISTORIAN__URL")


def test_an_invalid_url_is_a_clear_error(sleeps):
    with pytest.raises(PIWebAPIError, match="MissingSchema") as caught:
        client_for("pi.example/piwebapi", sleeps).data_server(SERVER)
    assert_one_clear_line(caught.value, "pi.example/piwebapi/dataservers")
