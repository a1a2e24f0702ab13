"""The control interface over OPC UA: a synchronous `Controller` that reads and writes a server's tag nodes.

Each tag is a Double variable with a string NodeId ``ns=<idx>;s=<TAG>`` in the plant's namespace
(``urn:pumptwin:plant``), as `pumptwin.control.opcua_server.PlantOpcServer` publishes them:
``STATION.PUMP.SPEED_SP`` (rpm), ``STATION.PUMP.STATUS`` (1/0), ``VALVE.POSITION`` (opening 0-1) and
read-only measurements such as ``PS01.P1.FLOW``. Speeds are relative to rated on this side and rpm on
the server's side; the controller converts with each pump's rated speed.

The asyncua client runs on an event loop in a background thread (`asyncua.sync.ThreadLoop`); each call
waits for its answer for at most ``timeout_s``. A status the server answers with (a refused write, an
unknown node) raises `ControlError` naming the node and the status; a refused connection, a dropped
link or a timeout raises `ConnectionLost`, and the next call connects afresh.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlparse

from asyncua import Client, ua
from asyncua.sync import ThreadLoop
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from pumptwin.control.interface import ConnectionLost, ControlError, Write

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_NAMESPACE = "urn:pumptwin:plant"
"""Namespace URI of the plant's nodes."""
SPEED_MEASURE = "SPEED_SP"
"""Measure of a pump's writable speed setpoint node, rpm."""
STATUS_MEASURE = "STATUS"
"""Measure of a pump's writable run status node, 1 running, 0 stopped."""
POSITION_MEASURE = "POSITION"
"""Measure of a valve's writable opening node, 0-1."""
RUNNING_THRESHOLD = 0.5
"""A ``STATUS`` value at or above this means running."""

LINK_STATUSES = frozenset(
    {
        ua.StatusCodes.BadCommunicationError,
        ua.StatusCodes.BadConnectionClosed,
        ua.StatusCodes.BadNoCommunication,
        ua.StatusCodes.BadNotConnected,
        ua.StatusCodes.BadRequestTimeout,
        ua.StatusCodes.BadSecureChannelClosed,
        ua.StatusCodes.BadSecureChannelIdInvalid,
        ua.StatusCodes.BadServerHalted,
        ua.StatusCodes.BadServerNotConnected,
        ua.StatusCodes.BadSessionClosed,
        ua.StatusCodes.BadSessionIdInvalid,
        ua.StatusCodes.BadShutdown,
        ua.StatusCodes.BadTcpInternalError,
        ua.StatusCodes.BadTimeout,
    }
)
"""Status codes that mean the link (channel, session, server) is gone rather than the request refused."""


def tag_node_id(tag: str, namespace_index: int) -> ua.NodeId:
    """The NodeId of a tag's variable, ``ns=<namespace_index>;s=<tag>``."""
    return ua.NodeId(ua.String(tag), ua.Int16(namespace_index))


def status_name(code: int) -> str:
    """The symbolic name of an OPC UA status code (``BadOutOfRange``), with its hex value when unknown."""
    name = ua.StatusCode(ua.UInt32(code)).name
    return (
        name
        if name not in ("Good", "Uncertain", "Bad") or code in (0, 0x40000000, 0x80000000)
        else f"{name} 0x{code:08X}"
    )


def is_link_loss(exc: BaseException) -> bool:
    """Whether ``exc`` means the link to the server is gone (refused, dropped, timed out) rather than a refusal."""
    if isinstance(exc, UaStatusCodeError):
        return exc.code in LINK_STATUSES
    return isinstance(exc, OSError | TimeoutError | EOFError)


class OpcUaController:
    """The plant's control system over OPC UA.

    Example::

        with OpcUaController("opc.tcp://127.0.0.1:4840/pumptwin/", {"PS01.P1": 1480.0}) as plc:
            plc.apply(Write("PS01.P1", "speed", 0.9))  # writes 1332 rpm to PS01.P1.SPEED_SP
            plc.read(["PS01.P1.FLOW"])  # {"PS01.P1.FLOW": 1043.2}

    Args:
        url: Endpoint URL, ``opc.tcp://HOST:PORT/PATH``.
        rated_rpm: Rated speed of each pump, rpm.
        namespace: Namespace URI of the plant's nodes.
        timeout_s: Longest wait for the server's answer to one call (connecting included), s.
        sleep: What `wait` calls (real time by default; a simulated plant's clock in tests and demos).

    Raises:
        ControlError: A URL that is not ``opc.tcp``, a timeout that is not positive, or a rated
            speed that is not positive.
    """

    def __init__(
        self,
        url: str,
        rated_rpm: Mapping[str, float],
        *,
        namespace: str = DEFAULT_NAMESPACE,
        timeout_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "opc.tcp" or not parsed.hostname:
            raise ControlError(f"OPC UA endpoint must be opc.tcp://HOST:PORT/..., got {url!r}")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ControlError(f"timeout_s must be > 0, got {timeout_s}")
        for pump, rpm in rated_rpm.items():
            if not (math.isfinite(rpm) and rpm > 0):
                raise ControlError(f"rated speed of {pump!r} must be > 0 rpm, got {rpm}")
        self.url = url
        self.namespace = namespace
        self.timeout_s = float(timeout_s)
        self._rated = {pump: float(rpm) for pump, rpm in rated_rpm.items()}
        self._sleep = sleep
        self._tloop: ThreadLoop | None = None
        self._client: Client | None = None
        self._ns = 0

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        """Whether a session is open (it may still turn out dropped on the next call)."""
        return self._client is not None

    def connect(self) -> None:
        """Open a session if none is open; every other call does this too when needed.

        A failed attempt leaves no session and no thread behind.

        Raises:
            ConnectionLost: The server refused the connection or did not answer.
            ControlError: The server has no namespace ``namespace``.
        """
        if self._client is not None:
            return
        if self._tloop is None:
            tloop = ThreadLoop(timeout=None)
            tloop.daemon = True  # a controller left open must not keep the process alive
            tloop.start()
            self._tloop = tloop
        client = Client(self.url, timeout=self.timeout_s, watchdog_intervall=self.timeout_s)
        try:
            self._post(client.connect())
            namespaces = self._post(client.get_namespace_array())
        except Exception as exc:
            self._discard(client)
            self.close()
            if is_link_loss(exc):
                raise ConnectionLost(f"cannot connect to OPC UA server {self.url}: {_describe(exc)}") from exc
            raise ControlError(f"cannot open a session on {self.url}: {_describe(exc)}") from exc
        if self.namespace not in namespaces:
            self._discard(client)
            self.close()
            raise ControlError(f"OPC UA server {self.url} has no namespace {self.namespace!r}")
        self._client, self._ns = client, namespaces.index(self.namespace)
        _LOG.info("connected to %s (namespace %s = %d)", self.url, self.namespace, self._ns)

    def close(self) -> None:
        """Close the session and stop the client's thread; a later call connects again."""
        client, self._client = self._client, None
        if client is not None:
            self._discard(client)
        tloop, self._tloop = self._tloop, None
        if tloop is not None:
            tloop.stop()

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ Controller

    def read(self, tags: Sequence[str]) -> dict[str, float]:
        """Latest value of each tag, in the tag's engineering unit (NaN when the node holds none).

        Raises:
            ControlError: A tag the server does not know, a bad status, or a value that is not a number.
            ConnectionLost: The link dropped.
        """
        names = list(dict.fromkeys([tags] if isinstance(tags, str) else tags))
        if not names:
            return {}
        values = self._call(
            f"the read of {names[0]}" + (f" and {len(names) - 1} more tags" if len(names) > 1 else ""),
            lambda client, ns: client.uaclient.read_attributes(
                [tag_node_id(tag, ns) for tag in names], ua.AttributeIds.Value
            ),
        )
        return {tag: self._reading(tag, value) for tag, value in zip(names, values, strict=True)}

    def speed_setpoint(self, pump: str) -> float:
        """The pump's speed setpoint relative to rated (``STATION.PUMP.SPEED_SP`` over the rated speed).

        Raises:
            ControlError: No rated speed for the pump, or its node cannot be read.
            ConnectionLost: The link dropped.
        """
        rated = self._rated_rpm(pump)
        tag = f"{pump}.{SPEED_MEASURE}"
        return self.read([tag])[tag] / rated

    def running(self, pump: str) -> bool:
        """Whether the pump runs (``STATION.PUMP.STATUS`` is 1).

        Raises:
            ControlError: The pump's status node cannot be read.
            ConnectionLost: The link dropped.
        """
        tag = f"{pump}.{STATUS_MEASURE}"
        return self.read([tag])[tag] >= RUNNING_THRESHOLD

    def apply(self, write: Write) -> None:
        """Send one write: speed (rpm on ``SPEED_SP``), start/stop (1/0 on ``STATUS``), valve (``POSITION``).

        Raises:
            ControlError: The server refused it (the message names the node and the status), the node
                does not exist, the pump has no rated speed, or the value is not a finite number.
            ConnectionLost: The link dropped; the write is unconfirmed until read back.
        """
        if write.kind == "speed":
            self._write(f"{write.target}.{SPEED_MEASURE}", self._finite(write) * self._rated_rpm(write.target))
        elif write.kind == "start":
            self._write(f"{write.target}.{STATUS_MEASURE}", 1.0)
        elif write.kind == "stop":
            self._write(f"{write.target}.{STATUS_MEASURE}", 0.0)
        elif write.kind == "valve":
            self._write(f"{write.target}.{POSITION_MEASURE}", self._finite(write))
        else:
            raise ControlError(f"{write.target}: unknown write kind {write.kind!r}")

    def wait(self, seconds: float) -> None:
        """Let the plant respond for ``seconds`` by calling the injected ``sleep``.

        Raises:
            ControlError: ``seconds`` is negative or not finite.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ControlError(f"cannot wait {seconds} s")
        self._sleep(seconds)

    # ------------------------------------------------------------------ helpers

    def _rated_rpm(self, pump: str) -> float:
        if pump not in self._rated:
            raise ControlError(f"no rated speed for pump {pump!r}; known: {sorted(self._rated)}")
        return self._rated[pump]

    @staticmethod
    def _finite(write: Write) -> float:
        if not math.isfinite(write.value):
            raise ControlError(f"{write.target}: {write.kind} value must be a finite number, got {write.value}")
        return float(write.value)

    def _reading(self, tag: str, value: ua.DataValue) -> float:
        """A tag's value as a float, or ControlError for a bad status or a value that is not a number."""
        status = value.StatusCode
        if status is not None and status.is_bad():
            if status.value == ua.StatusCodes.BadNodeIdUnknown:
                raise ControlError(f"unknown tag {tag!r} on {self.url}")
            raise ControlError(f"{tag}: read refused by {self.url} ({status_name(status.value)})")
        variant = value.Value
        if variant is None or variant.Value is None:
            return math.nan
        number = variant.Value
        if isinstance(number, bool | int | float):
            return float(number)
        raise ControlError(f"{tag}: value {number!r} on {self.url} is not a number")

    def _write(self, tag: str, value: float) -> None:
        """Write a Double to a tag's node; ControlError naming the node and the status when refused."""
        datavalue = ua.DataValue(ua.Variant(float(value), ua.VariantType.Double))
        results = self._call(
            f"the write of {value:g} to {tag}",
            lambda client, ns: client.uaclient.write_attributes(
                [tag_node_id(tag, ns)], [datavalue], ua.AttributeIds.Value
            ),
        )
        status = results[0]
        if status.is_good():
            return
        # A server may answer a write to a missing node with BadUserAccessDenied (asyncua checks access first).
        if status.value == ua.StatusCodes.BadNodeIdUnknown or not self._exists(tag):
            raise ControlError(f"{tag}: no such node on {self.url} (BadNodeIdUnknown)")
        raise ControlError(f"{self.url} refused the write of {value:g} to {tag} ({status_name(status.value)})")

    def _exists(self, tag: str) -> bool:
        """Whether the server has a node for ``tag`` (its NodeClass attribute can be read)."""
        values = self._call(
            f"the lookup of {tag}",
            lambda client, ns: client.uaclient.read_attributes([tag_node_id(tag, ns)], ua.AttributeIds.NodeClass),
        )
        status = values[0].StatusCode
        return status is None or status.value != ua.StatusCodes.BadNodeIdUnknown

    def _call(self, what: str, request: Callable[[Client, int], Coroutine[Any, Any, _T]]) -> _T:
        """Run one request on the open session (connecting first if needed).

        Args:
            what: The request in words, for messages (``the write of 1332 to PS01.P1.SPEED_SP``).
            request: Makes the request's coroutine from the client and the namespace index.

        Raises:
            ConnectionLost: The link is gone; the session is dropped so the next call reconnects.
            ControlError: The server refused the request as a whole (the message names its status).
        """
        self.connect()
        client = self._client
        if client is None:  # pragma: no cover - connect() either opens a session or raises
            raise ConnectionLost(f"no session on {self.url}")
        try:
            return self._post(request(client, self._ns))
        except UaError as exc:
            if not is_link_loss(exc):
                raise ControlError(f"{self.url} refused {what} ({_describe(exc)})") from exc
            self._client = None
            self._discard(client)
            raise ConnectionLost(f"OPC UA link to {self.url} lost during {what}: {_describe(exc)}") from exc
        except Exception as exc:
            if not is_link_loss(exc):
                raise
            self._client = None
            self._discard(client)
            raise ConnectionLost(f"OPC UA link to {self.url} lost during {what}: {_describe(exc)}") from exc

    def _post(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on the client's loop, at most ``timeout_s`` (TimeoutError beyond)."""
        tloop = self._tloop
        if tloop is None or tloop.loop is None:
            coro.close()
            raise ConnectionError("the client's event loop is not running")
        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, self.timeout_s), tloop.loop)
        try:
            return future.result(self.timeout_s + 1.0)
        except TimeoutError:
            future.cancel()
            raise

    def _discard(self, client: Client) -> None:
        """Close a client's session and socket, ignoring a link that is already gone."""
        try:
            self._post(client.disconnect())
        except Exception as exc:  # noqa: BLE001 - the link may already be gone; nothing to report
            _LOG.debug("closing the OPC UA session on %s: %s", self.url, _describe(exc))
            tloop = self._tloop
            if tloop is not None and tloop.loop is not None:
                tloop.loop.call_soon_threadsafe(client.disconnect_socket)


def _describe(exc: BaseException) -> str:
    """A one-line description of an exception: its status name, or its type and message."""
    if isinstance(exc, UaStatusCodeError):
        return status_name(exc.code)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
