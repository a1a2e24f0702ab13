"""The OPC UA controller against a real in-process OPC UA server (127.0.0.1, a free port)."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest
from asyncua import ua
from asyncua.sync import Client as SyncClient

from pumptwin.control.interface import ConnectionLost, ControlError, Controller, Write
from pumptwin.control.opcua import OpcUaController, is_link_loss, status_name, tag_node_id
from pumptwin.control.opcua_server import NodeLimits, OpcServerError, PlantOpcServer

PUMPS = ("PS01.P1", "PS01.P2")
RATED = {"PS01.P1": 1500.0, "PS01.P2": 1480.0}
LIMITS = {"PS01.P1": NodeLimits(750.0, 1650.0), "PS01.P2": NodeLimits(740.0, 1628.0)}
TAGS = ("PS01.P1.FLOW", "PS01.P2.FLOW", "PS01.P1.BRG_DE_TEMP")
NAMESPACE = "urn:pumptwin:plant"


class FakeController:
    """An in-memory control system: flow follows speed, the bearing warms with time, speeds above 1.05 are refused."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.speed = {p: 0.9 for p in PUMPS}
        self.on = {p: True for p in PUMPS}
        self.clock_s = 0.0
        self.applied: list[Write] = []
        self.delay_s = 0.0  # how long a write takes to be acknowledged

    def read(self, tags: Sequence[str]) -> dict[str, float]:
        values = {}
        for tag in tags:
            station, pump, measure = tag.split(".")
            name = f"{station}.{pump}"
            if measure == "FLOW":
                values[tag] = 1000.0 * self.speed[name] if self.on[name] else 0.0
            elif measure == "BRG_DE_TEMP":
                values[tag] = 40.0 + self.clock_s / 60.0
            else:
                values[tag] = math.nan
        return values

    def speed_setpoint(self, pump: str) -> float:
        return self.speed[pump]

    def running(self, pump: str) -> bool:
        return self.on[pump]

    def apply(self, write: Write) -> None:
        time.sleep(self.delay_s)
        if write.kind == "speed" and write.value > 1.05:
            raise ControlError(f"speed {write.value} for {write.target} is above the interlock")
        self.applied.append(write)
        if write.kind == "speed":
            self.speed[write.target] = write.value
        elif write.kind in ("start", "stop"):
            self.on[write.target] = write.kind == "start"

    def wait(self, seconds: float) -> None:
        self.clock_s += seconds


@pytest.fixture(scope="module")
def fake() -> FakeController:
    return FakeController()


@pytest.fixture(scope="module")
def server(fake: FakeController) -> Iterator[PlantOpcServer]:
    srv = PlantOpcServer(fake, PUMPS, RATED, LIMITS, tags=TAGS)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def plc(server: PlantOpcServer, fake: FakeController) -> Iterator[OpcUaController]:
    fake.reset()
    server.advance(0.0)  # publish the reset state
    controller = OpcUaController(server.url, RATED, timeout_s=3.0, sleep=server.advance)
    try:
        controller.connect()
        yield controller
    finally:
        controller.close()


@pytest.fixture
def raw(server: PlantOpcServer) -> Iterator[SyncClient]:
    """A plain asyncua client, to send writes the controller would never send."""
    client = SyncClient(server.url, timeout=3.0)
    try:
        client.connect()
        yield client
    finally:
        client.disconnect()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_controller_implements_the_protocol() -> None:
    assert isinstance(OpcUaController("opc.tcp://127.0.0.1:4840/", RATED), Controller)


def test_start_returns_an_endpoint_with_a_real_port(server: PlantOpcServer) -> None:
    assert server.url.startswith("opc.tcp://127.0.0.1:") and server.url.endswith("/pumptwin/")
    assert 0 < int(server.url.split(":")[2].split("/")[0]) < 65536
    with pytest.raises(OpcServerError, match="already running"):
        server.start()


def test_reads_tags_in_engineering_units(plc: OpcUaController) -> None:
    values = plc.read(["PS01.P1.FLOW", "PS01.P1.BRG_DE_TEMP", "PS01.P1.SPEED_SP", "PS01.P2.STATUS"])
    assert values == {
        "PS01.P1.FLOW": pytest.approx(900.0),
        "PS01.P1.BRG_DE_TEMP": pytest.approx(40.0),
        "PS01.P1.SPEED_SP": pytest.approx(0.9 * 1500.0),
        "PS01.P2.STATUS": 1.0,
    }
    assert plc.read([]) == {}
    assert plc.speed_setpoint("PS01.P2") == pytest.approx(0.9)
    assert plc.running("PS01.P1")


def test_speed_write_reaches_the_plant_and_reads_back_as_relative_speed(
    plc: OpcUaController, fake: FakeController
) -> None:
    plc.apply(Write("PS01.P1", "speed", 0.8))
    assert fake.applied == [Write("PS01.P1", "speed", pytest.approx(0.8))]
    assert plc.speed_setpoint("PS01.P1") == pytest.approx(0.8)
    values = plc.read(["PS01.P1.SPEED_SP", "PS01.P1.FLOW"])
    assert values["PS01.P1.SPEED_SP"] == pytest.approx(1200.0)
    assert values["PS01.P1.FLOW"] == pytest.approx(800.0)  # every node refreshed after the write
    assert plc.speed_setpoint("PS01.P2") == pytest.approx(0.9)  # the other pump untouched


def test_start_and_stop(plc: OpcUaController, fake: FakeController) -> None:
    plc.apply(Write("PS01.P2", "stop"))
    assert not fake.on["PS01.P2"] and not plc.running("PS01.P2")
    assert plc.read(["PS01.P2.FLOW"]) == {"PS01.P2.FLOW": 0.0}
    plc.apply(Write("PS01.P2", "start"))
    assert fake.on["PS01.P2"] and plc.running("PS01.P2")
    assert [w.kind for w in fake.applied] == ["stop", "start"]


def test_wait_lets_the_plant_run_and_refreshes_the_nodes(plc: OpcUaController, fake: FakeController) -> None:
    plc.wait(600.0)
    assert fake.clock_s == 600.0
    assert plc.read(["PS01.P1.BRG_DE_TEMP"])["PS01.P1.BRG_DE_TEMP"] == pytest.approx(50.0)
    with pytest.raises(ControlError, match="cannot wait"):
        plc.wait(-1.0)


@pytest.mark.parametrize("speed", [1.2, 0.3])
def test_server_limit_refuses_an_out_of_range_speed(plc: OpcUaController, fake: FakeController, speed: float) -> None:
    with pytest.raises(ControlError, match=r"PS01\.P1\.SPEED_SP.*BadOutOfRange") as err:
        plc.apply(Write("PS01.P1", "speed", speed))
    assert not isinstance(err.value, ConnectionLost)
    assert fake.applied == [] and fake.speed["PS01.P1"] == 0.9  # never reached the controller
    assert plc.speed_setpoint("PS01.P1") == pytest.approx(0.9)
    plc.apply(Write("PS01.P1", "speed", 1.0))  # the session is still usable
    assert fake.speed["PS01.P1"] == 1.0


def test_a_refusal_by_the_wrapped_controller_is_a_bad_status(plc: OpcUaController, fake: FakeController) -> None:
    with pytest.raises(ControlError, match=r"PS01\.P1\.SPEED_SP.*BadInvalidState"):
        plc.apply(Write("PS01.P1", "speed", 1.08))  # 1620 rpm: within the node limits, above the interlock
    assert fake.speed["PS01.P1"] == 0.9 and plc.speed_setpoint("PS01.P1") == pytest.approx(0.9)


def test_wrong_typed_and_out_of_range_raw_writes_are_refused(
    server: PlantOpcServer, raw: SyncClient, fake: FakeController, plc: OpcUaController
) -> None:
    idx = raw.get_namespace_index(NAMESPACE)
    speed = raw.get_node(tag_node_id("PS01.P1.SPEED_SP", idx))
    with pytest.raises(ua.UaStatusCodeError) as err:
        speed.write_value(ua.DataValue(ua.Variant(1200, ua.VariantType.Int64)))
    assert err.value.code == ua.StatusCodes.BadTypeMismatch
    with pytest.raises(ua.UaStatusCodeError) as err:
        speed.write_value(ua.DataValue(ua.Variant("1200", ua.VariantType.String)))
    assert err.value.code == ua.StatusCodes.BadTypeMismatch
    status = raw.get_node(tag_node_id("PS01.P1.STATUS", idx))
    with pytest.raises(ua.UaStatusCodeError) as err:
        status.write_value(ua.DataValue(ua.Variant(0.5, ua.VariantType.Double)))
    assert err.value.code == ua.StatusCodes.BadOutOfRange
    with pytest.raises(ua.UaStatusCodeError) as err:
        speed.write_value(ua.DataValue(ua.Variant(math.nan, ua.VariantType.Double)))
    assert err.value.code == ua.StatusCodes.BadOutOfRange
    flow = raw.get_node(tag_node_id("PS01.P1.FLOW", idx))
    with pytest.raises(ua.UaStatusCodeError) as err:
        flow.write_value(ua.DataValue(ua.Variant(1.0, ua.VariantType.Double)))
    assert err.value.code == ua.StatusCodes.BadUserAccessDenied  # measurements are read-only
    assert fake.applied == []
    assert speed.read_value() == pytest.approx(1350.0) and flow.read_value() == pytest.approx(900.0)
    speed.write_value(ua.DataValue(ua.Variant(1125.0, ua.VariantType.Double)))  # a good raw write goes through
    assert fake.speed["PS01.P1"] == pytest.approx(0.75) and plc.speed_setpoint("PS01.P1") == pytest.approx(0.75)


def test_unknown_tags_pumps_and_nodes(plc: OpcUaController) -> None:
    with pytest.raises(ControlError, match=r"unknown tag 'PS01\.P9\.FLOW'"):
        plc.read(["PS01.P1.FLOW", "PS01.P9.FLOW"])
    with pytest.raises(ControlError, match="no rated speed for pump 'PS09.P1'"):
        plc.speed_setpoint("PS09.P1")
    with pytest.raises(ControlError, match=r"unknown tag 'PS01\.P3\.STATUS'"):
        plc.running("PS01.P3")
    with pytest.raises(ControlError, match=r"V01\.POSITION: no such node"):
        plc.apply(Write("V01", "valve", 0.5))
    with pytest.raises(ControlError, match="finite"):
        plc.apply(Write("PS01.P1", "speed", math.nan))
    assert plc.read(["PS01.P1.FLOW"]) == {"PS01.P1.FLOW": pytest.approx(900.0)}  # the session survived


def test_a_stopped_server_gives_connection_lost_and_a_restarted_one_reconnects(fake: FakeController) -> None:
    fake.reset()
    first = PlantOpcServer(fake, PUMPS, RATED, LIMITS, tags=TAGS)
    second = None
    plc = None
    try:
        url = first.start()
        plc = OpcUaController(url, RATED, timeout_s=2.0)
        assert plc.read(["PS01.P1.FLOW"]) == {"PS01.P1.FLOW": pytest.approx(900.0)}  # connects on first use
        assert plc.connected
        first.stop()
        with pytest.raises(ConnectionLost, match="lost during the read of PS01.P1.FLOW"):
            plc.read(["PS01.P1.FLOW"])
        assert not plc.connected
        with pytest.raises(ConnectionLost, match="cannot connect"):
            plc.apply(Write("PS01.P1", "speed", 0.8))  # nothing listens: refused
        assert fake.applied == []
        second = PlantOpcServer(fake, PUMPS, RATED, LIMITS, tags=TAGS, endpoint=url)
        assert second.start() == url
        plc.apply(Write("PS01.P1", "speed", 0.8))  # reconnects on the next call
        assert plc.speed_setpoint("PS01.P1") == pytest.approx(0.8)
    finally:
        if plc is not None:
            plc.close()
        first.stop()
        if second is not None:
            second.stop()


def test_a_server_that_does_not_answer_in_time_gives_connection_lost(
    server: PlantOpcServer, fake: FakeController
) -> None:
    fake.reset()
    server.advance(0.0)
    plc = OpcUaController(server.url, RATED, timeout_s=0.5)
    try:
        assert plc.read("PS01.P1.FLOW") == {"PS01.P1.FLOW": pytest.approx(900.0)}
        fake.delay_s = 1.0
        with pytest.raises(ConnectionLost, match="the write of 1275 to PS01.P1.SPEED_SP: TimeoutError"):
            plc.apply(Write("PS01.P1", "speed", 0.85))
        fake.delay_s = 0.0
        assert plc.speed_setpoint("PS01.P1") == pytest.approx(0.85)  # the unconfirmed write did land; reconnected
    finally:
        fake.delay_s = 0.0
        plc.close()


def test_refused_connection_and_missing_namespace(server: PlantOpcServer) -> None:
    nobody = OpcUaController(f"opc.tcp://127.0.0.1:{free_port()}/", RATED, timeout_s=2.0)
    try:
        with pytest.raises(ConnectionLost, match="cannot connect"):
            nobody.connect()
        assert not nobody.connected
    finally:
        nobody.close()
    plc = OpcUaController(server.url, RATED, namespace="urn:elsewhere", timeout_s=2.0)
    try:
        with pytest.raises(ControlError, match="no namespace 'urn:elsewhere'"):
            plc.connect()
        assert not plc.connected
    finally:
        plc.close()


def test_errors_are_classified_and_named() -> None:
    assert is_link_loss(ConnectionRefusedError()) and is_link_loss(TimeoutError())
    assert is_link_loss(ua.UaStatusCodeError(ua.StatusCodes.BadSessionClosed))
    assert not is_link_loss(ua.UaStatusCodeError(ua.StatusCodes.BadOutOfRange))
    assert not is_link_loss(ValueError())
    assert status_name(ua.StatusCodes.BadOutOfRange) == "BadOutOfRange"
    assert status_name(0x80FF0000) == "Bad 0x80FF0000"


def test_configuration_is_checked_before_anything_starts(fake: FakeController) -> None:
    with pytest.raises(OpcServerError, match="PS01.P2"):
        PlantOpcServer(fake, PUMPS, RATED, {"PS01.P1": LIMITS["PS01.P1"]})
    with pytest.raises(OpcServerError, match="rated speed"):
        PlantOpcServer(fake, PUMPS, {**RATED, "PS01.P2": 0.0}, LIMITS)
    with pytest.raises(OpcServerError, match="low <= high"):
        NodeLimits(1600.0, 800.0)
    with pytest.raises(OpcServerError, match="not a STATION.ASSET.MEASURE tag"):
        PlantOpcServer(fake, PUMPS, RATED, LIMITS, tags=["flow"])
    with pytest.raises(OpcServerError, match="endpoint"):
        PlantOpcServer(fake, PUMPS, RATED, LIMITS, endpoint="http://127.0.0.1:4840/")
    idle = PlantOpcServer(fake, PUMPS, RATED, LIMITS)
    with pytest.raises(OpcServerError, match="not running"):
        idle.advance(1.0)
    idle.stop()  # stopping a server that never started does nothing
    with pytest.raises(ControlError, match="opc.tcp"):
        OpcUaController("http://127.0.0.1/", RATED)
    with pytest.raises(ControlError, match="rated speed"):
        OpcUaController("opc.tcp://127.0.0.1:4840/", {"PS01.P1": -1.0})


def test_the_simulated_plant_behind_the_server() -> None:
    simulated = pytest.importorskip(
        "pumptwin.control.simulated", reason="pumptwin.control.simulated (SimulatedController) is not available yet"
    )
    from pumptwin.plant.scenario import shipped_scenario
    from pumptwin.plant.sensors import SensorConfig
    from pumptwin.plant.simulator import Plant

    scenario = replace(
        shipped_scenario("healthy_month"), duration_s=6 * 3600.0, sensors=SensorConfig.ideal(), truth_period_s=60.0
    )
    plant = Plant(scenario)
    sim = simulated.SimulatedController(plant)
    pumps = [p.name for p in plant.registry.pumps if p.station == "PS01"]
    rated = {p.name: p.rated_speed_rpm for p in plant.registry.pumps if p.name in pumps}
    ranges = sim.ranges()
    limits = {p: NodeLimits(ranges[p].low * rated[p], ranges[p].high * rated[p]) for p in pumps}
    tags = [f"{p}.{m}" for p in pumps for m in ("FLOW", "SPEED", "BRG_DE_TEMP")]
    with PlantOpcServer(sim, pumps, rated, limits, tags=tags) as server:
        server.advance(600.0)
        with OpcUaController(server.url, rated, timeout_s=10.0, sleep=server.advance) as plc:
            before = plc.read(tags)
            assert all(math.isfinite(v) for v in before.values()), before
            pump = next(p for p in pumps if plc.running(p))
            target = max(ranges[pump].low, round(plc.speed_setpoint(pump) - 0.08, 3))
            plc.apply(Write(pump, "speed", target))
            assert plc.speed_setpoint(pump) == pytest.approx(target)
            assert sim.speed_setpoint(pump) == pytest.approx(target)
            plc.wait(900.0)
            after = plc.read(tags)
            assert after[f"{pump}.SPEED"] == pytest.approx(target * rated[pump], abs=2.0)
            assert after[f"{pump}.FLOW"] < before[f"{pump}.FLOW"]
            with pytest.raises(ControlError, match="BadOutOfRange"):
                plc.apply(Write(pump, "speed", ranges[pump].high + 0.05))
            assert sim.speed_setpoint(pump) == pytest.approx(target)
