"""A real OPC UA server in front of any `Controller`, so the closed loop can be run against a true endpoint.

The server publishes one Double variable per tag, NodeId ``ns=<idx>;s=<TAG>`` in the namespace
``urn:pumptwin:plant`` (the tag names are the historian's):

- ``STATION.PUMP.SPEED_SP`` (rpm) and ``STATION.PUMP.STATUS`` (1 running, 0 stopped), writable;
- every tag in ``tags`` (``PS01.P1.FLOW``, ``PS01.P1.BRG_DE_TEMP``, ...), read-only.

Writes go through the server's own checks before they reach the wrapped controller, as on a real
control system: a value of the wrong type is refused (``BadTypeMismatch``, by asyncua's type check), a
speed outside the node's limits or a status other than 0/1 is refused (``BadOutOfRange``), and a write
the wrapped controller refuses comes back as ``BadInvalidState``. The checks are a value setter on
each writable node (`asyncua.Server.set_attribute_value_setter`): the setter runs inside the Write
service, and the status it raises is the status the client receives. An accepted write is forwarded
to the controller (``apply``), the node then shows what the controller reports, and every node is
refreshed once the Write service has finished (a ``PostWrite`` server callback).

The server runs on its own event loop in a background thread; the caller's thread drives simulated
time with `PlantOpcServer.advance`. Calls into the wrapped controller are serialised by a lock.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import threading
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, Self, TypeVar, cast
from urllib.parse import urlparse, urlunparse

from asyncua import Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback
from asyncua.server.address_space import NodeData

from pumptwin.control.interface import ControlError, Controller, Write
from pumptwin.control.opcua import DEFAULT_NAMESPACE, SPEED_MEASURE, STATUS_MEASURE, tag_node_id
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.tags import is_tag

_LOG = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
"""How long `PlantOpcServer.start` and `PlantOpcServer.stop` wait for the server, s."""

_T = TypeVar("_T")
_REFRESHING: contextvars.ContextVar[bool] = contextvars.ContextVar("pumptwin_opcua_refreshing", default=False)
"""True while the server itself writes node values (a refresh), so the write setters store them unchecked."""


class OpcServerError(PumptwinError, RuntimeError):
    """The OPC UA server cannot be configured, started or used; the message names the value or endpoint."""


@dataclass(frozen=True, slots=True)
class NodeLimits:
    """Server-side limits of a writable node, in its engineering unit (rpm for a speed setpoint).

    Attributes:
        low: Lowest value the server accepts.
        high: Highest value the server accepts.
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        """Refuse limits that are not finite or not ordered.

        Raises:
            OpcServerError: ``low`` or ``high`` is not finite, or ``low > high``.
        """
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise OpcServerError(f"node limits must be finite with low <= high, got [{self.low}, {self.high}]")

    def admits(self, value: float) -> bool:
        """Whether ``value`` lies within the limits (both ends included)."""
        return self.low <= value <= self.high


def _tag(pump: str, measure: str) -> str:
    """The tag of a pump's measure, ``STATION.PUMP.MEASURE``."""
    return f"{pump}.{measure}"


def _double(value: float) -> ua.DataValue:
    """A Double data value stamped now (UTC) as sampled by this server."""
    now = cast(ua.DateTime, datetime.now(UTC))
    return ua.DataValue(ua.Variant(float(value), ua.VariantType.Double), SourceTimestamp=now, ServerTimestamp=now)


def _written_double(value: ua.DataValue) -> float:
    """The number a client wrote, or a ``BadTypeMismatch`` when the write carries no Double.

    Raises:
        ua.UaStatusCodeError: ``BadTypeMismatch``.
    """
    variant = value.Value
    if variant is None or variant.VariantType != ua.VariantType.Double or not isinstance(variant.Value, float):
        raise ua.UaStatusCodeError(ua.StatusCodes.BadTypeMismatch)
    return variant.Value


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """Run ``loop`` until stopped, then cancel what is left on it and close it (the server thread's body)."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


class PlantOpcServer:
    """An OPC UA server that publishes a controller's tags and forwards accepted writes to it.

    Example::

        limits = {"PS01.P1": NodeLimits(740.0, 1628.0)}
        with PlantOpcServer(controller, ["PS01.P1"], {"PS01.P1": 1480.0}, limits, tags=["PS01.P1.FLOW"]) as server:
            url = server.url  # opc.tcp://127.0.0.1:<port>/pumptwin/
            server.advance(600.0)  # the wrapped plant runs 10 min; the nodes show its new values

    Args:
        controller: The control system behind the server (the plant simulator in tests and demos).
        pumps: Pumps (``PS01.P1``) that get a writable ``SPEED_SP`` and ``STATUS`` node.
        rated_rpm: Rated speed of each pump, rpm (converts rpm on the node to relative speed and back).
        limits_rpm: Server-side limits of each pump's ``SPEED_SP`` node, rpm.
        tags: Read-only tags to publish, refreshed from ``controller.read``.
        endpoint: Endpoint URL to listen on; port 0 picks a free port.
        namespace: Namespace URI of the nodes.

    Raises:
        OpcServerError: A pump without a valid tag name, a rated speed or limits; a bad tag; a bad endpoint.
    """

    def __init__(
        self,
        controller: Controller,
        pumps: Sequence[str],
        rated_rpm: Mapping[str, float],
        limits_rpm: Mapping[str, NodeLimits],
        *,
        tags: Sequence[str] = (),
        endpoint: str = "opc.tcp://127.0.0.1:0/pumptwin/",
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        self._controller = controller
        self._pumps = tuple(pumps)
        if len(set(self._pumps)) != len(self._pumps):
            raise OpcServerError(f"pumps listed more than once: {list(self._pumps)}")
        self._rated = {p: _rated_of(p, rated_rpm) for p in self._pumps}
        self._limits = {p: _limits_of(p, limits_rpm) for p in self._pumps}
        writable = {_tag(p, m) for p in self._pumps for m in (SPEED_MEASURE, STATUS_MEASURE)}
        for tag in tags:
            if not is_tag(tag):
                raise OpcServerError(f"{tag!r} is not a STATION.ASSET.MEASURE tag")
        self._tags = tuple(dict.fromkeys(t for t in tags if t not in writable))
        parsed = urlparse(endpoint)
        if parsed.scheme != "opc.tcp" or not parsed.hostname:
            raise OpcServerError(f"endpoint must be opc.tcp://HOST:PORT/..., got {endpoint!r}")
        if not namespace:
            raise OpcServerError("namespace URI must not be empty")
        self._endpoint = endpoint
        self._namespace = namespace
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._idx = 0
        self._url: str | None = None

    # ------------------------------------------------------------------ life cycle

    @property
    def url(self) -> str:
        """The endpoint URL clients connect to, with the actual port.

        Raises:
            OpcServerError: The server is not running.
        """
        return self._require_running()

    def _require_running(self) -> str:
        """The endpoint URL of the running server.

        Raises:
            OpcServerError: The server is not running.
        """
        if self._url is None:
            raise OpcServerError("the OPC UA server is not running: call start() first")
        return self._url

    @property
    def namespace_index(self) -> int:
        """Index of the plant's namespace on the running server.

        Raises:
            OpcServerError: The server is not running.
        """
        self._require_running()
        return self._idx

    def start(self) -> str:
        """Start the server on its own event loop in a background thread.

        Returns:
            The endpoint URL with the actual port (a free one when the endpoint's port is 0).

        Raises:
            OpcServerError: Already running, or the endpoint cannot be listened on.
        """
        if self._thread is not None:
            raise OpcServerError(f"the OPC UA server is already running at {self._url}")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=_serve, args=(loop,), name="pumptwin-opcua-server", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._url = self._submit(self._open(), START_TIMEOUT_S)
        except BaseException:
            self._halt_loop()
            raise
        _LOG.info("OPC UA server listening at %s", self._url)
        return self._url

    def stop(self) -> None:
        """Stop the server and its thread; does nothing when it is not running."""
        if self._thread is None:
            return
        try:
            if self._server is not None:
                self._submit(self._close(), START_TIMEOUT_S)
        except Exception:
            _LOG.exception("OPC UA server at %s did not stop cleanly", self._url)
        finally:
            self._halt_loop()

    def advance(self, seconds: float) -> None:
        """Let the wrapped plant run for ``seconds`` (``controller.wait``), then refresh every node.

        The server keeps answering reads while the plant runs; a write that arrives meanwhile waits
        for it.

        Args:
            seconds: Time to let pass, s (simulated time on the simulator).

        Raises:
            OpcServerError: The server is not running, or ``seconds`` is negative or not finite.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise OpcServerError(f"cannot advance by {seconds} s")
        self._require_running()
        self._submit(self._advance(seconds), None)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ thread plumbing

    def _submit(self, coro: Coroutine[Any, Any, _T], timeout_s: float | None) -> _T:
        """Run ``coro`` on the server's loop and wait for its result (``timeout_s`` None: no limit)."""
        if self._loop is None:
            coro.close()
            raise OpcServerError("the OPC UA server is not running: call start() first")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except TimeoutError:
            future.cancel()
            raise OpcServerError(f"the OPC UA server at {self._endpoint} did not answer in {timeout_s} s") from None

    def _halt_loop(self) -> None:
        """Stop the event loop, join its thread and forget the server."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = self._server = None
        self._url = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(START_TIMEOUT_S)

    # ------------------------------------------------------------------ on the server's loop

    async def _open(self) -> str:
        """Build the address space, start listening and publish the first values; returns the URL."""
        server = Server()
        await server.init()
        server.set_endpoint(self._endpoint)
        server.set_server_name("pumptwin plant")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace(self._namespace)
        folder = await server.nodes.objects.add_folder(tag_node_id("Plant", idx), ua.QualifiedName("Plant", idx))
        for pump in self._pumps:
            for measure in (SPEED_MEASURE, STATUS_MEASURE):
                node = await folder.add_variable(*self._node_args(_tag(pump, measure), idx))
                await node.set_writable()
                server.set_attribute_value_setter(node.nodeid, partial(self._on_client_write, pump, measure))
        for tag in self._tags:
            await folder.add_variable(*self._node_args(tag, idx))
        server.subscribe_server_callback(CallbackType.PostWrite, self._after_write)
        try:
            await server.start()
        except OSError as exc:
            raise OpcServerError(f"cannot listen on {self._endpoint}: {exc}") from None
        self._server, self._idx = server, idx
        try:
            await self._refresh()
        except BaseException:
            await server.stop()
            raise
        port = server.bserver.port if server.bserver is not None else urlparse(self._endpoint).port
        parsed = urlparse(self._endpoint)
        return urlunparse(parsed._replace(netloc=f"{parsed.hostname}:{port}"))

    @staticmethod
    def _node_args(tag: str, idx: int) -> tuple[ua.NodeId, ua.QualifiedName, ua.Variant]:
        """NodeId, browse name and initial value (NaN) of a tag's variable."""
        return tag_node_id(tag, idx), ua.QualifiedName(tag, idx), ua.Variant(math.nan, ua.VariantType.Double)

    async def _close(self) -> None:
        """Stop listening and drop every client."""
        if self._server is not None:
            await self._server.stop()

    async def _advance(self, seconds: float) -> None:
        """Run the controller's ``wait`` in a worker thread (the server keeps answering), then refresh."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._locked_wait, seconds)
        await self._refresh()

    def _locked_wait(self, seconds: float) -> None:
        with self._lock:
            self._controller.wait(seconds)

    def _snapshot(self) -> dict[str, float]:
        """What the controller reports now, by tag: speed setpoints in rpm, statuses 1/0, the tags."""
        with self._lock:
            values = dict(self._controller.read(self._tags)) if self._tags else {}
            for pump in self._pumps:
                values[_tag(pump, SPEED_MEASURE)] = self._controller.speed_setpoint(pump) * self._rated[pump]
                values[_tag(pump, STATUS_MEASURE)] = 1.0 if self._controller.running(pump) else 0.0
        return values

    async def _refresh(self) -> None:
        """Write what the controller reports into every node (the write setters store these unchecked)."""
        server = self._server
        if server is None:
            return
        values = self._snapshot()
        token = _REFRESHING.set(True)
        try:
            for tag in (*self._tags, *(_tag(p, m) for p in self._pumps for m in (SPEED_MEASURE, STATUS_MEASURE))):
                await server.write_attribute_value(tag_node_id(tag, self._idx), _double(values.get(tag, math.nan)))
        finally:
            _REFRESHING.reset(token)

    def _on_client_write(
        self, pump: str, measure: str, node: NodeData, attr: ua.AttributeIds, value: ua.DataValue
    ) -> None:
        """Value setter of a writable node: check the write, forward it, and store what the controller reports.

        Raises:
            ua.UaStatusCodeError: ``BadTypeMismatch`` (not a Double), ``BadOutOfRange`` (outside the
                node's limits, or a status other than 0/1), ``BadInvalidState`` (the controller refused).
        """
        attribute = node.attributes[attr]
        if _REFRESHING.get():
            attribute.value, attribute.value_callback = value, None
            return
        number = _written_double(value)
        if measure == SPEED_MEASURE:
            if not (math.isfinite(number) and self._limits[pump].admits(number)):
                raise ua.UaStatusCodeError(ua.StatusCodes.BadOutOfRange)
            write = Write(pump, "speed", number / self._rated[pump])
        elif number in (0.0, 1.0):
            write = Write(pump, "start" if number == 1.0 else "stop")
        else:
            raise ua.UaStatusCodeError(ua.StatusCodes.BadOutOfRange)
        with self._lock:
            try:
                self._controller.apply(write)
            except ControlError as exc:
                _LOG.warning("%s: the controller refused %s: %s", _tag(pump, measure), write, exc)
                raise ua.UaStatusCodeError(ua.StatusCodes.BadInvalidState) from exc
            if measure == SPEED_MEASURE:
                shown = self._controller.speed_setpoint(pump) * self._rated[pump]
            else:
                shown = 1.0 if self._controller.running(pump) else 0.0
        attribute.value, attribute.value_callback = _double(shown), None

    async def _after_write(self, event: ServerItemCallback, _dispatcher: object) -> None:
        """After a client's Write service: refresh every node from the controller if anything was written."""
        results = event.response_params or []
        if event.is_external and any(status.is_good() for status in results):
            await self._refresh()


def _rated_of(pump: str, rated_rpm: Mapping[str, float]) -> float:
    """A pump's rated speed, rpm, checked.

    Raises:
        OpcServerError: Not a ``STATION.PUMP`` name, or no finite positive rated speed.
    """
    if not is_tag(_tag(pump, SPEED_MEASURE)):
        raise OpcServerError(f"pump {pump!r} is not named STATION.PUMP")
    rated = rated_rpm.get(pump)
    if rated is None or not (math.isfinite(rated) and rated > 0):
        raise OpcServerError(f"pump {pump!r} needs a finite rated speed > 0 rpm, got {rated}")
    return float(rated)


def _limits_of(pump: str, limits_rpm: Mapping[str, NodeLimits]) -> NodeLimits:
    """A pump's speed setpoint limits, rpm.

    Raises:
        OpcServerError: The pump has none.
    """
    limits = limits_rpm.get(pump)
    if not isinstance(limits, NodeLimits):
        raise OpcServerError(f"pump {pump!r} needs NodeLimits for its speed setpoint, got {limits!r}")
    return limits
