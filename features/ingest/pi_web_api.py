r"""A client for the PI Web API's REST endpoints: points, recorded values and batch requests.

Endpoints used (paths below the base URL, which ends in `/piwebapi`):

* `GET points?path=\\\\SERVER\\TAG` -> the point (`WebId`, `Name`, `Path`, ...);
* `GET dataservers?name=SERVER` -> the data server; `GET dataservers/{webId}/points?nameFilter=...`
  (paged with `startIndex` and `maxCount`) -> `{"Items": [point, ...]}`;
* `GET streams/{webId}/recorded?startTime=...&endTime=...&maxCount=...` ->
  `{"Items": [{"Timestamp": "...Z", "Value": 12.3, "Good": true, "Questionable": false,
  "Substituted": false, ...}], "Links": {...}}`; a `Value` can be a digital state
  `{"Name": "...", "Value": n, "IsSystem": true}`;
* `POST batch` with `{"1": {"Method": "GET", "Resource": "<absolute URL>"}, ...}` ->
  `{"1": {"Status": 200, "Headers": {...}, "Content": {...}}, ...}`.

Recorded values are read window by window. The server caps the values it returns (`maxCount`,
`MaxReturnedItemsPerCall`, the archive's `ArcMaxCollect`): a window that comes back with `maxCount`
items, or with an error about too many values, is split in halves until each part fits; after a
window fits, the next one is twice as long (up to `max_chunk`). Windows are half-open,
`[start, end)`, so a value on a boundary is read once.

Connection errors, timeouts, bodies cut off by a dropped connection, HTTP 5xx and 429 (honouring
`Retry-After`) are retried with exponential backoff and jitter; when they outlast the retries they
raise `PIWebAPITransientError`. Other failures raise a `PIWebAPIError` whose one-line message names
the URL path, the status and the server's message (bounded and printable):

* HTTP 401 and 403 -> `PIWebAPIAuthError` (check the user, password or token);
* HTTP 404 -> `PIWebAPINotFoundError` (check the URL and the name asked for);
* a 2xx answer that is HTML (a login page, a proxy), invalid or truncated JSON, or JSON of another
  shape than the one documented above (no `Items`, no `WebId`) -> `PIWebAPIResponseError`, naming
  the URL and the first bytes of the body.

When reading many streams, a stream the server refuses (403 on one point, 404, a cap it cannot
meet) becomes a `SourceProblem` for that stream while the others go on.
Credentials are sent as basic or bearer auth and never logged or shown in a repr or a message.

Quality flags map to the contract as: not `Good` -> `bad`; `Questionable` -> `questionable`;
`Substituted` -> `substituted`; otherwise `good`. A system digital state (`IsSystem: true`, e.g.
"I/O Timeout") becomes value NaN with quality `bad`.

Example:
    >>> client = PIWebAPIClient("https://pi.example/piwebapi", auth=BasicAuth("svc", "secret"))  # doctest: +SKIP
    >>> web_id = client.point(r"\\\\PISRV01\\PS01.P2.VIB_DE_RMS").web_id  # doctest: +SKIP
    >>> result = client.read_recorded({"PS01.P2.VIB_DE_RMS": web_id}, start, end)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import logging
import math
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pandas as pd
import requests
from requests.auth import AuthBase

from pumptwin.features.ingest.sources import SourceProblem, SourceResult, concat_results, readings_from_columns
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.safety import printable, shorten
from pumptwin.twin.times import to_utc

logger = logging.getLogger(__name__)

# Errors a PI server returns when a request would return more values than it allows.
_CAP_ERROR = re.compile(
    r"ArcMaxCollect|-11091|maximum allowed|too many (?:values|events|items)|exceed(?:s|ed)? the maxim",
    re.IGNORECASE,
)
_MAX_ALLOWED = re.compile(r"maxCount\W.*?maximum allowed\D*(\d+)", re.IGNORECASE)
_HTTP_OK, _HTTP_REDIRECT, _HTTP_CLIENT_ERROR = 200, 300, 400
_HTTP_UNAUTHORIZED, _HTTP_FORBIDDEN, _HTTP_NOT_FOUND, _HTTP_SERVER_ERROR = 401, 403, 404, 500
_BODY_SHOWN = 60
"""Characters of an unusable body shown in a message."""
AUTH_HINT = "check PUMPTWIN_HISTORIAN__USERNAME and PUMPTWIN_HISTORIAN__PASSWORD, or PUMPTWIN_HISTORIAN__TOKEN"
"""What to check when the server refuses the credentials (the settings that hold them)."""
NOT_FOUND_HINT = "check PUMPTWIN_HISTORIAN__URL (it ends in /piwebapi) and the name asked for"
"""What to check when the server finds no such resource."""
_SELECTED_FIELDS = "Items.Timestamp;Items.Value;Items.Good;Items.Questionable;Items.Substituted"


class PIWebAPIError(PumptwinError, RuntimeError):
    """The PI Web API refused a request or answered something unusable.

    Attributes:
        status: The HTTP status, or None when no response came.
        url: The URL of the request (never holds credentials).
        errors: The server's error messages.
    """

    def __init__(
        self, message: str, *, status: int | None = None, url: str | None = None, errors: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.errors = tuple(errors)


class PIWebAPITransientError(PIWebAPIError):
    """A transient failure (connection error, timeout, 5xx, 429) that lasted through every retry."""


class PIWebAPIAuthError(PIWebAPIError):
    """The server refused the credentials (HTTP 401) or the access (HTTP 403); the message says what to check."""


class PIWebAPINotFoundError(PIWebAPIError):
    """The server has no such resource (HTTP 404): a wrong base URL, data server, point or WebId."""


class PIWebAPIResponseError(PIWebAPIError):
    """A 2xx answer that is not the documented JSON: HTML, invalid or truncated JSON, or another shape."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried.

    Attributes:
        attempts: Tries in all, the first included (>= 1).
        backoff_s: Wait before the second try, in s; doubles with each further try.
        max_backoff_s: Longest wait between tries, in s.
        jitter: Fraction of the wait drawn at random (0 waits exactly; 0.5 waits 50-100%).
        max_retry_after_s: Longest `Retry-After` honoured, in s.
        statuses: HTTP statuses that are retried.
    """

    attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    jitter: float = 0.5
    max_retry_after_s: float = 120.0
    statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("backoff_s and max_backoff_s must be >= 0 and jitter within [0, 1]")

    def delay_s(self, failures: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """Return the wait before the next try.

        Args:
            failures: Failed tries so far (>= 1).
            rng: Random source of the jitter.
            retry_after_s: The server's `Retry-After`, in s, if it sent one.

        Returns:
            The wait in s: exponential backoff with jitter, at least `Retry-After` (capped).
        """
        wait = min(self.max_backoff_s, self.backoff_s * 2 ** (failures - 1)) * (1 - self.jitter * rng.random())
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_retry_after_s))
        return wait


class BasicAuth(AuthBase):
    """HTTP basic authentication whose password never appears in a repr or a log.

    Args:
        username: The user.
        password: The password.
    """

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Authorization header to `request`."""
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password='**********')"


class BearerAuth(AuthBase):
    """HTTP bearer-token authentication whose token never appears in a repr or a log.

    Args:
        token: The bearer token.
    """

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Authorization header to `request`."""
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "BearerAuth(token='**********')"


@dataclass(frozen=True, slots=True)
class PIPoint:
    r"""A PI point as the PI Web API describes it.

    Attributes:
        web_id: Its WebId, the key of every stream request.
        name: The point (tag) name.
        path: Its path, `\\\\SERVER\\TAG`.
        point_type: The PI point type (`Float32`, `Digital`, ...), when given.
        engineering_units: Its units, when given.
    """

    web_id: str
    name: str
    path: str = ""
    point_type: str = ""
    engineering_units: str = ""

    @classmethod
    def from_json(cls, content: Mapping[str, Any]) -> PIPoint:
        """Build a point from the JSON object the API returns.

        Args:
            content: A point object (`WebId`, `Name`, `Path`, `PointType`, `EngineeringUnits`).

        Returns:
            The point.
        """
        return cls(
            web_id=str(content["WebId"]),
            name=str(content.get("Name", "")),
            path=str(content.get("Path", "")),
            point_type=str(content.get("PointType", "") or ""),
            engineering_units=str(content.get("EngineeringUnits", "") or ""),
        )


@dataclass(frozen=True, slots=True)
class BatchResponse:
    """The answer to one sub-request of a batch.

    Attributes:
        status: Its HTTP status.
        content: Its JSON content (or text).
        headers: Its headers.
    """

    status: int
    content: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return _is_2xx(self.status)


# --- values and quality ----------------------------------------------------------------------


def map_quality(good: bool | None, questionable: bool | None, substituted: bool | None, *, system: bool = False) -> str:
    """Map PI's quality flags to the contract's quality.

    Args:
        good: PI's `Good` flag (None when absent: taken as good).
        questionable: PI's `Questionable` flag.
        substituted: PI's `Substituted` flag.
        system: The value is a system digital state (e.g. "I/O Timeout", "Shutdown").

    Returns:
        `bad` when not good or a system state, else `questionable`, `substituted` or `good`.
    """
    if system or good is False:
        return "bad"
    if questionable:
        return "questionable"
    if substituted:
        return "substituted"
    return "good"


def item_value(value: object) -> tuple[object, bool]:
    """Return (value, is a system digital state) for a recorded item's `Value`.

    Numbers pass; booleans become 1.0/0.0; None becomes NaN; a digital state becomes its code, or
    NaN when it is a system state; text is returned as-is (a number in text is parsed later,
    other text is rejected as "value is not a number").

    Args:
        value: The item's `Value` field.

    Returns:
        The value and whether it is a system digital state.
    """
    system = False
    if isinstance(value, Mapping):  # a digital state: {"Name": ..., "Value": n, "IsSystem": ...}
        system = bool(value.get("IsSystem"))
        inner = value.get("Value")
        is_code = isinstance(inner, int | float) and not isinstance(inner, bool)
        value = None if system else inner if is_code else str(value.get("Name", inner))
    if value is None:
        return math.nan, system
    if isinstance(value, bool | int | float):
        return float(value), False
    return value if isinstance(value, str) else str(value), False


def items_to_columns(items: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[Any], list[str]]:
    """Turn recorded items into (timestamps, values, qualities) columns.

    Args:
        items: The `Items` of a recorded-values response.

    Returns:
        Timestamps as sent (ISO 8601 text), values (see `item_value`) and contract qualities.
    """
    stamps: list[Any] = []
    values: list[Any] = []
    qualities: list[str] = []
    for item in items:
        value, system = item_value(item.get("Value"))
        stamps.append(item.get("Timestamp"))
        values.append(value)
        qualities.append(
            map_quality(item.get("Good"), item.get("Questionable"), item.get("Substituted"), system=system)
        )
    return stamps, values, qualities


def _is_2xx(status: int) -> bool:
    """True for a successful HTTP status."""
    return _HTTP_OK <= status < _HTTP_REDIRECT


def _errors_of(content: object) -> list[str]:
    """The error messages in a response body (`Errors`, `Message`, or the text itself)."""
    if isinstance(content, Mapping):
        errors = content.get("Errors") or content.get("errors") or []
        if isinstance(errors, str):
            errors = [errors]
        if not isinstance(errors, list | tuple):
            errors = [errors]
        message = content.get("Message")
        return [_clip(str(e)) for e in errors] + ([_clip(str(message))] if message else [])
    if isinstance(content, str) and content.strip():
        return [shorten(" ".join(content.split()), limit=2 * _BODY_SHOWN)]
    return []


def _clip(text: str, limit: int = 300) -> str:
    """A server's message on one printable line of at most about `limit` characters."""
    line = printable(" ".join(text.split()))
    return line if len(line) <= limit else f"{line[: limit - 3]}..."


def _safe_url(url: str) -> str:
    """A URL for a message: scheme, host, port and path; never the user, password or query."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return printable(parts.path)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return printable(f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}")


def _head(body: bytes) -> str:
    """The first characters of a body, bounded and printable, for a message."""
    return shorten(body.decode("utf-8", errors="replace"), limit=_BODY_SHOWN)


def _json_of(response: requests.Response, method: str, url: str) -> Any:  # noqa: ANN401 - JSON
    """The JSON of a 2xx response.

    Raises:
        PIWebAPIResponseError: The body is HTML, empty, or not valid JSON (e.g. cut short).
    """
    body = response.content or b""
    where = f"PI Web API {method} {_safe_url(url)}: HTTP {response.status_code}"
    if "html" in response.headers.get("Content-Type", "").lower() or body.lstrip().startswith(b"<"):
        raise PIWebAPIResponseError(
            f"{where} answered HTML, not JSON (a login page or a proxy?); body starts {_head(body)}",
            status=response.status_code,
            url=url,
        )
    try:
        return response.json()
    except ValueError as exc:
        problem = "an empty body" if not body.strip() else f"invalid or truncated JSON ({_clip(str(exc), 80)})"
        raise PIWebAPIResponseError(
            f"{where} answered {problem}; body starts {_head(body)}", status=response.status_code, url=url
        ) from exc


def _items(content: object, url: str) -> list[Mapping[str, Any]]:
    """The `Items` of a list answer (points, recorded values).

    Raises:
        PIWebAPIResponseError: The answer is not an object with a list of objects in `Items`.
    """
    items = content.get("Items") if isinstance(content, Mapping) else None
    if not isinstance(items, list) or not all(isinstance(item, Mapping) for item in items):
        raise PIWebAPIResponseError(
            f"PI Web API {_safe_url(url)}: expected a JSON object with a list of objects in 'Items', "
            f"got {shorten(content)}",
            url=url,
        )
    return items


def _with_web_id(content: object, url: str) -> Mapping[str, Any]:
    """An answer that describes one object (a point, a data server) and holds its `WebId`.

    Raises:
        PIWebAPIResponseError: The answer is not an object with a text `WebId`.
    """
    if not isinstance(content, Mapping) or not isinstance(content.get("WebId"), str):
        raise PIWebAPIResponseError(
            f"PI Web API {_safe_url(url)}: expected a JSON object with a 'WebId', got {shorten(content)}", url=url
        )
    return content


def _is_cap_error(status: int, content: object) -> bool:
    """True when an error response says the request would return too many values."""
    return status >= _HTTP_CLIENT_ERROR and any(_CAP_ERROR.search(e) for e in _errors_of(content))


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds asked for by a `Retry-After` header (seconds or an HTTP date), if any."""
    text = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if text is None:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(text) - pd.Timestamp.now(tz="UTC").to_pydatetime()).total_seconds())
        except (TypeError, ValueError):
            return None


def _iso(moment: pd.Timestamp) -> str:
    """Format a UTC timestamp as the API expects (`2026-11-01T00:00:00.000000Z`)."""
    return moment.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- adaptive windows ------------------------------------------------------------------------


@dataclass
class _Stream:
    """Progress of one stream through [start, end): the next window and what was read."""

    tag: str
    web_id: str
    position: pd.Timestamp
    end: pd.Timestamp
    chunk: pd.Timedelta
    stamps: list[Any] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    qualities: list[str] = field(default_factory=list)
    failures: int = 0
    problem: str | None = None

    @property
    def done(self) -> bool:
        return self.problem is not None or self.position >= self.end

    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.position, min(self.position + self.chunk, self.end)


class PIWebAPIClient:
    """A client for the PI Web API (see the module docstring).

    Args:
        base_url: The API root, e.g. `https://pi.example.com/piwebapi`.
        auth: `BasicAuth`, `BearerAuth`, any `requests` auth, or None (e.g. Kerberos on the session).
        timeout_s: Connect and read timeout of each HTTP request, in s.
        verify: TLS verification: True, False, or a CA bundle path.
        retry: How transient failures are retried.
        max_count: `maxCount` of each recorded-values request; lowered automatically when the
            server says its maximum is smaller.
        initial_chunk: Length of the first window of each stream.
        min_chunk: Shortest window; a window this short that still exceeds the cap is an error.
        max_chunk: Longest window after growing.
        batch_size: Sub-requests per batch request.
        session: A `requests.Session` to use (the client closes only one it made).
        sleep: Called with the wait in s between retries (tests pass a recorder).
        seed: Seed of the jitter's random source.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: AuthBase | None = None,
        timeout_s: float = 30.0,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        max_count: int = 10_000,
        initial_chunk: timedelta = timedelta(days=1),
        min_chunk: timedelta = timedelta(seconds=1),
        max_chunk: timedelta = timedelta(days=31),
        batch_size: int = 50,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        if max_count < 1 or batch_size < 1 or timeout_s <= 0:
            raise ValueError("max_count and batch_size must be >= 1 and timeout_s > 0")
        if not timedelta(0) < min_chunk <= initial_chunk <= max_chunk:
            raise ValueError("need 0 < min_chunk <= initial_chunk <= max_chunk")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.max_count = max_count
        self.initial_chunk = pd.Timedelta(initial_chunk)
        self.min_chunk = pd.Timedelta(min_chunk)
        self.max_chunk = pd.Timedelta(max_chunk)
        self.batch_size = batch_size
        self._own_session = session is None
        self._session = session or requests.Session()
        if auth is not None:
            self._session.auth = auth
        self._session.verify = verify
        self._session.headers.update({"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"})
        self._sleep = sleep
        self._rng = random.Random(seed)

    def __repr__(self) -> str:
        auth = type(self._session.auth).__name__ if self._session.auth is not None else None
        return f"PIWebAPIClient({self.base_url!r}, auth={auth})"

    def close(self) -> None:
        """Close the HTTP session if the client made it."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> PIWebAPIClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # --- HTTP ------------------------------------------------------------------------------

    def url(self, resource: str, params: Mapping[str, Any] | None = None) -> str:
        """Return the absolute URL of a resource below the base URL.

        Args:
            resource: A path below the base URL, e.g. `streams/{webId}/recorded`.
            params: Query parameters (encoded; backslashes of PI paths included).

        Returns:
            The URL.
        """
        url = f"{self.base_url}/{resource.lstrip('/')}"
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None}, quote_via=quote, safe="*")
        return url

    def _request(self, method: str, url: str, *, json_body: dict[str, Any] | None = None) -> requests.Response:
        """Send a request, retrying transient failures; return the last response."""
        where = urlsplit(url).path
        for attempt in range(1, self.retry.attempts + 1):
            retry_after: float | None = None
            try:
                response = self._session.request(method, url, json=json_body, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                reason = f"{type(exc).__name__}"
                if attempt == self.retry.attempts:
                    raise PIWebAPITransientError(
                        f"PI Web API {method} {where}: {reason} after {attempt} tries", url=url
                    ) from exc
            except requests.RequestException as exc:  # an invalid URL, a body that cannot be decoded
                raise PIWebAPIError(
                    f"PI Web API {method} {_safe_url(url)}: {type(exc).__name__}: {_clip(str(exc), 200)}", url=url
                ) from exc
            else:
                if response.status_code not in self.retry.statuses or _is_cap_error(
                    response.status_code, _content(response)
                ):
                    return response
                if attempt == self.retry.attempts:
                    return response
                reason = f"HTTP {response.status_code}"
                retry_after = _retry_after_s(response.headers)
            wait = self.retry.delay_s(attempt, self._rng, retry_after)
            logger.warning(
                "PI Web API %s %s: %s; try %d of %d in %.2f s",
                *(method, where, reason, attempt + 1, self.retry.attempts, wait),
            )
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, resource: str, **params: object) -> Any:  # noqa: ANN401 - JSON
        """GET a resource and return its JSON.

        Args:
            resource: A path below the base URL.
            **params: Query parameters.

        Returns:
            The decoded JSON.

        Raises:
            PIWebAPIError: On a non-2xx answer (with the server's messages).
            PIWebAPITransientError: When transient failures outlast the retries.
        """
        url = self.url(resource, params)
        return _checked(self._request("GET", url), "GET", url)

    # --- points ----------------------------------------------------------------------------

    def point(self, path: str) -> PIPoint:
        r"""Look up a point by path.

        Args:
            path: `\\\\SERVER\\TAG`.

        Returns:
            The point, with its WebId.
        """
        url = self.url("points", {"path": path})
        return PIPoint.from_json(_with_web_id(_checked(self._request("GET", url), "GET", url), url))

    def data_server(self, name: str) -> str:
        """Return the WebId of a data server.

        Args:
            name: The data server's name.

        Returns:
            Its WebId.
        """
        url = self.url("dataservers", {"name": name})
        return str(_with_web_id(_checked(self._request("GET", url), "GET", url), url)["WebId"])

    def find_points(self, data_server_web_id: str, name_filter: str = "*", *, page_size: int = 1000) -> list[PIPoint]:
        """List the points of a data server whose names match a filter, page by page.

        Args:
            data_server_web_id: WebId of the data server.
            name_filter: PI name filter with `*` and `?` wildcards, e.g. `PS01.*`.
            page_size: Points per page (`maxCount`).

        Returns:
            The points, in the server's order.
        """
        points: list[PIPoint] = []
        while True:
            params = {"nameFilter": name_filter, "startIndex": len(points), "maxCount": page_size}
            url = self.url(f"dataservers/{data_server_web_id}/points", params)
            items = _items(_checked(self._request("GET", url), "GET", url), url)
            points += [PIPoint.from_json(_with_web_id(item, url)) for item in items]
            if len(items) < page_size:
                return points

    def points(self, paths: Mapping[str, str]) -> tuple[dict[str, PIPoint], list[SourceProblem]]:
        r"""Look up many points at once through batch requests.

        Args:
            paths: {tag: `\\\\SERVER\\TAG` path}.

        Returns:
            {tag: point} for the points found, and a problem for each one not found.
        """
        found: dict[str, PIPoint] = {}
        problems: list[SourceProblem] = []
        tags = list(paths)
        for first in range(0, len(tags), self.batch_size):
            chunk = tags[first : first + self.batch_size]
            answers = self.batch(
                {
                    str(i): {"Method": "GET", "Resource": self.url("points", {"path": paths[tag]})}
                    for i, tag in enumerate(chunk)
                }
            )
            for i, tag in enumerate(chunk):
                answer = answers.get(str(i))
                if answer is not None and answer.ok:
                    found[tag] = PIPoint.from_json(
                        _with_web_id(answer.content, self.url("points", {"path": paths[tag]}))
                    )
                else:
                    status = answer.status if answer is not None else "no answer"
                    errors = "; ".join(_errors_of(answer.content)) if answer is not None else ""
                    problems.append(
                        SourceProblem(f"pi:{tag}", f"point {paths[tag]!r} not found (HTTP {status}: {errors})", 0, True)
                    )
        return found, problems

    # --- batch -----------------------------------------------------------------------------

    def batch(self, requests_: Mapping[str, Mapping[str, Any]]) -> dict[str, BatchResponse]:
        """Send sub-requests in one `POST batch`.

        Args:
            requests_: {id: {"Method": "GET", "Resource": absolute URL, ...}}.

        Returns:
            {id: BatchResponse} for every id the server answered.

        Raises:
            PIWebAPIError: When the batch request itself fails.
        """
        url = self.url("batch")
        content = _checked(self._request("POST", url, json_body=dict(requests_)), "POST", url)
        if not isinstance(content, Mapping):
            raise PIWebAPIResponseError(
                f"PI Web API POST {_safe_url(url)}: expected a JSON object, got {shorten(content)}", url=url
            )
        answers = {}
        for key, answer in content.items():
            status = answer.get("Status") if isinstance(answer, Mapping) else None
            headers = answer.get("Headers") or {} if isinstance(answer, Mapping) else None
            if not isinstance(status, int) or not isinstance(headers, Mapping):
                raise PIWebAPIResponseError(
                    f"PI Web API POST {_safe_url(url)}: expected {{id: {{'Status', 'Headers', 'Content'}}}}, "
                    f"got {shorten(key)}: {shorten(answer)}",
                    url=url,
                )
            answers[str(key)] = BatchResponse(status=status, content=answer.get("Content"), headers=dict(headers))
        return answers

    # --- recorded values -------------------------------------------------------------------

    def _recorded_url(self, stream: _Stream) -> str:
        first, last = stream.window()
        params = {
            "startTime": _iso(first),
            "endTime": _iso(last),
            "boundaryType": "Inside",
            "maxCount": self.max_count,
            "selectedFields": _SELECTED_FIELDS,
        }
        return self.url(f"streams/{stream.web_id}/recorded", params)

    def _handle(
        self, stream: _Stream, status: int, content: object, headers: Mapping[str, str], *, retried: bool = False
    ) -> float | None:
        """Advance `stream` by one answer; return a wait in s when the window must be retried later.

        `retried` says the answer already went through `_request`'s retries (no more are made).
        """
        first, last = stream.window()
        if _is_2xx(status):
            items = _items(content, self._recorded_url(stream))
            if len(items) < self.max_count:
                stamps, values, qualities = items_to_columns(items)
                parsed = pd.to_datetime(pd.Series(stamps, dtype=object), utc=True, format="ISO8601", errors="coerce")
                inside = (parsed.isna() | ((parsed >= first) & (parsed < last))).to_numpy()
                for i in inside.nonzero()[0]:
                    stream.stamps.append(stamps[i])
                    stream.values.append(values[i])
                    stream.qualities.append(qualities[i])
                stream.position = last
                stream.chunk = min(stream.chunk * 2, self.max_chunk)
                stream.failures = 0
                return None
            return self._shrink(stream, f"{len(items)} values (maxCount) in", first, last)
        errors = _errors_of(content)
        if _is_cap_error(status, content):
            allowed = next((int(m.group(1)) for e in errors if (m := _MAX_ALLOWED.search(e))), None)
            if allowed is not None and allowed < self.max_count:
                logger.warning("PI Web API allows maxCount <= %d; lowering it from %d", allowed, self.max_count)
                self.max_count = allowed
                return 0.0
            return self._shrink(stream, "too many values (server error) in", first, last)
        message = f"HTTP {status}: {'; '.join(errors) or 'no message'}"
        if status == _HTTP_UNAUTHORIZED:
            path = urlsplit(self._recorded_url(stream)).path
            raise PIWebAPIAuthError(f"PI Web API GET {path}: {message}; {AUTH_HINT}", status=status, errors=errors)
        if status == _HTTP_FORBIDDEN:
            message += " (the account may not read this point)"
        if status in self.retry.statuses and not retried:
            stream.failures += 1
            if stream.failures < self.retry.attempts:
                return self.retry.delay_s(stream.failures, self._rng, _retry_after_s(headers))
            message += f" (after {stream.failures} tries)"
        stream.problem = f"recorded values {_iso(first)} to {_iso(last)}: {message}"
        return None

    def _shrink(self, stream: _Stream, what: str, first: pd.Timestamp, last: pd.Timestamp) -> float | None:
        """Halve the window of `stream`, or give up when it is already the shortest allowed."""
        span = last - first
        if span <= self.min_chunk:
            stream.problem = (
                f"{what} {span} from {_iso(first)}, the shortest window allowed: raise max_count "
                f"({self.max_count}) or lower min_chunk ({self.min_chunk})"
            )
            return None
        stream.chunk = max(span / 2, self.min_chunk)
        logger.debug("PI Web API stream %s: %s %s; window now %s", stream.tag, what, span, stream.chunk)
        return 0.0

    def recorded(
        self, web_id: str, start: datetime | pd.Timestamp | str, end: datetime | pd.Timestamp | str
    ) -> list[dict[str, Any]]:
        """Read one stream's recorded values in [start, end) with one GET per window.

        Args:
            web_id: The stream's WebId.
            start: First time included (timezone-aware).
            end: First time excluded (timezone-aware).

        Returns:
            Items `{"Timestamp", "Value", "Quality"}` (value as in `item_value`, contract quality).

        Raises:
            PIWebAPIError: When the server refuses the stream or the cap cannot be met.
            PIWebAPITransientError: When transient failures outlast the retries.
        """
        stream = self._run(
            [(web_id, web_id)],
            to_utc(start, naive_is_utc=False, what="start"),
            to_utc(end, naive_is_utc=False, what="end"),
            use_batch=False,
        )[0]
        if stream.problem is not None:
            raise PIWebAPIError(f"PI Web API stream {web_id}: {stream.problem}")
        return [
            {"Timestamp": t, "Value": v, "Quality": q}
            for t, v, q in zip(stream.stamps, stream.values, stream.qualities, strict=True)
        ]

    def read_recorded(
        self,
        streams: Mapping[str, str],
        start: datetime | pd.Timestamp | str | Mapping[str, datetime | pd.Timestamp | str],
        end: datetime | pd.Timestamp | str,
        *,
        use_batch: bool = True,
    ) -> SourceResult:
        """Read the recorded values of many streams in [start, end) as a source.

        Windows of all streams travel together in batch requests (`use_batch`), each stream with
        its own adaptive window. A stream the server refuses becomes a problem (`pi:<tag>`); the
        others go on.

        Args:
            streams: {tag: WebId}; the tag names the readings (`STATION.ASSET.MEASURE`).
            start: First time included (timezone-aware), or {tag: start}, e.g. from the store's
                watermarks; tags missing from the mapping are skipped.
            end: First time excluded (timezone-aware).
            use_batch: Send windows through `POST batch`; otherwise one GET each.

        Returns:
            Readings, rejected rows (e.g. text values) and problems, with source `pi:<host>`.

        Raises:
            PIWebAPITransientError: When the server cannot be reached through every retry.
        """
        last = to_utc(end, naive_is_utc=False, what="end")
        if isinstance(start, Mapping):
            starts = {
                tag: to_utc(start[tag], naive_is_utc=False, what=f"start of {tag}") for tag in streams if tag in start
            }
        else:
            first = to_utc(start, naive_is_utc=False, what="start")
            starts = dict.fromkeys(streams, first)
        source = f"pi:{urlsplit(self.base_url).netloc}"
        items = [(tag, streams[tag]) for tag in starts]
        done = self._run(items, starts, last, use_batch=use_batch)
        results = [
            readings_from_columns([s.tag] * len(s.stamps), s.stamps, s.values, s.qualities, source)
            for s in done
            if s.stamps
        ]
        problems = [SourceProblem(f"pi:{s.tag}", s.problem, 0, refused=True) for s in done if s.problem is not None]
        joined = concat_results(results, source)
        for problem in problems:
            logger.warning("%s", problem)
        return SourceResult(
            joined.readings, joined.rejected, (*joined.problems, *problems), source=source, origin=joined.origin
        )

    def _run(
        self,
        streams: Sequence[tuple[str, str]],
        start: pd.Timestamp | Mapping[str, pd.Timestamp],
        end: pd.Timestamp,
        *,
        use_batch: bool,
    ) -> list[_Stream]:
        """Read windows of every stream until each reaches `end` or fails."""
        state = [
            _Stream(
                tag,
                web_id,
                start[tag] if isinstance(start, Mapping) else start,
                end,
                self.initial_chunk,
            )
            for tag, web_id in streams
        ]
        while active := [s for s in state if not s.done]:
            waits: list[float] = []
            for first in range(0, len(active), self.batch_size if use_batch else 1):
                group = active[first : first + (self.batch_size if use_batch else 1)]
                if use_batch:
                    answers = self.batch(
                        {str(i): {"Method": "GET", "Resource": self._recorded_url(s)} for i, s in enumerate(group)}
                    )
                    for i, stream in enumerate(group):
                        answer = answers.get(str(i), BatchResponse(0, {"Errors": ["no answer in the batch response"]}))
                        wait = self._handle(stream, answer.status, answer.content, answer.headers)
                        waits += [wait] if wait else []
                else:
                    stream = group[0]
                    url = self._recorded_url(stream)
                    response = self._request("GET", url)
                    content = _json_of(response, "GET", url) if _is_2xx(response.status_code) else _content(response)
                    wait = self._handle(stream, response.status_code, content, response.headers, retried=True)
                    waits += [wait] if wait else []
            if waits:
                self._sleep(max(waits))
        return state


def _content(response: requests.Response) -> Any:  # noqa: ANN401 - JSON
    """The JSON body of a response, or its text when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return response.text


def _checked(response: requests.Response, method: str, url: str) -> Any:  # noqa: ANN401 - JSON
    """Return the JSON of a 2xx response; raise a `PIWebAPIError` with the server's messages otherwise.

    Raises:
        PIWebAPIAuthError: HTTP 401 or 403.
        PIWebAPINotFoundError: HTTP 404.
        PIWebAPITransientError: HTTP 429 or 5xx (after the retries of `_request`).
        PIWebAPIResponseError: A 2xx answer that is not JSON.
        PIWebAPIError: Any other status.
    """
    status = response.status_code
    if _is_2xx(status):
        return _json_of(response, method, url)
    errors = _errors_of(_content(response))
    message = "; ".join(errors) or _clip(response.reason or "") or "no message"
    text = f"PI Web API {method} {urlsplit(url).path}: HTTP {status}: {message}"
    kind: type[PIWebAPIError] = PIWebAPIError
    if status in (_HTTP_UNAUTHORIZED, _HTTP_FORBIDDEN):
        kind, text = PIWebAPIAuthError, f"{text}; {AUTH_HINT}"
    elif status == _HTTP_NOT_FOUND:
        kind, text = PIWebAPINotFoundError, f"{text}; {NOT_FOUND_HINT}"
    elif status in RetryPolicy().statuses or status >= _HTTP_SERVER_ERROR:
        kind = PIWebAPITransientError
    raise kind(text, status=status, url=url, errors=errors)
