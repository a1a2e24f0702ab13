"""The interlocks: ramps, checks, readbacks, retries, rollback and verification, on a fake and on the simulator."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from pumptwin.control.audit import AuditError, AuditLog
from pumptwin.control.interface import ConnectionLost, ControlError, Write
from pumptwin.control.interlocks import (
    Expectation,
    Interlocked,
    InterlockError,
    InterlockSettings,
    SpeedRange,
    check_writes,
    ramp,
)

RANGES = {p: SpeedRange(0.7, 1.05) for p in ("PS01.P1", "PS01.P2", "PS01.P3")}
FAST = InterlockSettings(settle_s=60.0, retry_wait_s=2.0)


# --------------------------------------------------------------------------------------------
# A fake control system with injectable faults
# --------------------------------------------------------------------------------------------


@dataclass
class FakeControl:
    """An in-memory control system: setpoints, running flags, a clock and faults.

    Faults: ``down`` lists call numbers (every method call counts, from 1) that raise ConnectionLost;
    ``ignore`` drops writes silently; ``offset`` is added to every setpoint read back; ``refuse``
    names targets whose writes are refused; ``start_speed`` is the setpoint a start sets.
    """

    sp: dict[str, float] = field(default_factory=lambda: {"PS01.P1": 0.95, "PS01.P2": 0.95, "PS01.P3": 0.95})
    on: dict[str, bool] = field(default_factory=lambda: {"PS01.P1": True, "PS01.P2": True, "PS01.P3": False})
    t: float = 0.0
    calls: int = 0
    down: set[int] = field(default_factory=set)
    ignore: bool = False
    offset: float = 0.0
    refuse: set[str] = field(default_factory=set)
    start_speed: float = 0.9
    sent: list[tuple[float, Write]] = field(default_factory=list)
    tags: dict[str, Callable[[FakeControl], float]] = field(default_factory=dict)

    def _call(self) -> None:
        self.calls += 1
        if self.calls in self.down:
            raise ConnectionLost(f"link down (call {self.calls})")

    def drop(self, n: int, after: int = 0) -> None:
        """Make the ``n`` calls after the next ``after`` calls lose the link."""
        self.down |= set(range(self.calls + after + 1, self.calls + after + n + 1))

    def read(self, tags):
        self._call()
        return {t: self.tags[t](self) if t in self.tags else math.nan for t in tags}

    def speed_setpoint(self, pump):
        self._call()
        return self.sp[pump] + self.offset

    def running(self, pump):
        self._call()
        return self.on[pump]

    def apply(self, write):
        self._call()
        self.sent.append((self.t, write))
        if write.target in self.refuse:
            raise ControlError(f"{write.target}: refused")
        if self.ignore:
            return
        if write.kind == "speed":
            self.sp[write.target] = write.value
        elif write.kind == "start":
            self.on[write.target] = True
            self.sp[write.target] = self.start_speed
        elif write.kind == "stop":
            self.on[write.target] = False

    def wait(self, seconds):
        self.t += seconds

    def state(self) -> dict[str, float]:
        out = {}
        for p in self.sp:
            out[f"{p}.speed"] = self.sp[p]
            out[f"{p}.running"] = float(self.on[p])
        return out


def flow_of(pump: str) -> Callable[[FakeControl], float]:
    return lambda c: 1000.0 * c.sp[pump] if c.on[pump] else 0.0


def guard(ctl: FakeControl, tmp_path: Path | None = None, **kw) -> Interlocked:
    audit = AuditLog(tmp_path / "audit.jsonl") if tmp_path is not None else None
    return Interlocked(ctl, RANGES, kw.pop("settings", FAST), audit=audit, request="REQ-1", **kw)


def speeds_sent(ctl: FakeControl, pump: str = "PS01.P1") -> list[float]:
    return [w.value for _, w in ctl.sent if w.target == pump and w.kind == "speed"]


# --------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target", "step", "n"),
    [(0.95, 0.89, 0.02, 3), (0.89, 0.95, 0.02, 3), (0.95, 0.94, 0.02, 1), (0.7, 1.05, 0.02, 18), (0.9, 0.9, 0.02, 0)],
)
def test_ramp(current: float, target: float, step: float, n: int) -> None:
    points = ramp(current, target, step)
    assert len(points) == n
    if n:
        assert points[-1] == target  # exactly
        gaps = [abs(b - a) for a, b in zip([current, *points], points, strict=False)]
        assert max(gaps) <= step + 1e-12
        assert all((b - a) * (target - current) > 0 for a, b in zip([current, *points], points, strict=False))
    with pytest.raises(InterlockError):
        ramp(current, target, 0.0)
    with pytest.raises(InterlockError):
        ramp(math.nan, target, step)


def test_check_writes() -> None:
    ok = [Write("PS01.P1", "speed", 0.9), Write("PS01.P3", "start"), Write("PS01.P2", "stop")]
    assert check_writes(ok, RANGES) == []
    assert check_writes(ok, RANGES, {"PS01.P1": True, "PS01.P2": True, "PS01.P3": False}) == []
    # starting a running pump / stopping a stopped one is allowed: it asks for the state it is in
    assert check_writes([Write("PS01.P1", "start"), Write("PS01.P3", "stop")], RANGES, {"PS01.P1": True}) == []
    bad = {
        "unknown pump 'PS09.P1'": [Write("PS09.P1", "speed", 0.9)],
        "outside its range 0.7..1.05": [Write("PS01.P1", "speed", 1.2)],
        "not a number": [Write("PS01.P1", "speed", math.nan)],
        "opening 1.5 is not a number in 0..1": [Write("V1", "valve", 1.5)],
        "more than one speed write": [Write("PS01.P1", "speed", 0.9), Write("PS01.P1", "speed", 0.91)],
        "more than one start/stop write": [Write("PS01.P3", "start"), Write("PS01.P3", "stop")],
        "the same set stops": [Write("PS01.P1", "stop"), Write("PS01.P1", "speed", 0.9)],
        "unknown write kind": [Write("PS01.P1", "open", 1.0)],  # type: ignore[arg-type]
    }
    for reason, writes in bad.items():
        found = check_writes(writes, RANGES)
        assert len(found) == 1 and reason in found[0], (reason, found)
    stale = check_writes([Write("PS01.P3", "speed", 0.9)], RANGES, {"PS01.P3": False})
    assert len(stale) == 1 and "is stopped" in stale[0]
    assert check_writes([Write("PS01.P3", "speed", 0.9), Write("PS01.P3", "start")], RANGES, {"PS01.P3": False}) == []
    assert "running state unknown" in check_writes([Write("PS01.P1", "speed", 0.9)], RANGES, {})[0]


def test_settings_and_expectations_are_validated() -> None:
    with pytest.raises(InterlockError, match="retries"):
        InterlockSettings(retries=0)
    with pytest.raises(InterlockError, match="max_rate_per_s"):
        InterlockSettings(max_rate_per_s=0.0)
    with pytest.raises(InterlockError, match="tolerance"):
        Expectation("PS01.P1.FLOW", 1.0, -1.0)
    with pytest.raises(InterlockError):
        SpeedRange(1.0, 0.5)
    assert not Expectation("X", 1.0, 0.5).met_by(math.nan) and Expectation("X", 1.0, 0.5).met_by(1.4)


# --------------------------------------------------------------------------------------------
# implement on the fake
# --------------------------------------------------------------------------------------------


def test_speed_change_is_ramped_at_the_rate_limit_and_verified(tmp_path: Path) -> None:
    ctl = FakeControl(tags={"PS01.P1.FLOW": flow_of("PS01.P1")})
    result = guard(ctl, tmp_path).implement(
        [Write("PS01.P1", "speed", 0.89)], [Expectation("PS01.P1.FLOW", 890.0, 5.0)]
    )
    assert result.status == "done", result.message
    assert speeds_sent(ctl) == pytest.approx([0.93, 0.91, 0.89]) and [w.value for w in result.steps][-1] == 0.89
    times = [t for t, _ in ctl.sent]
    values = [0.95, *speeds_sent(ctl)]
    for i in range(1, len(times)):  # never faster than the rate limit
        assert abs(values[i + 1] - values[i]) / (times[i] - times[i - 1]) <= FAST.max_rate_per_s * (1 + 1e-9)
    assert ctl.t - times[-1] >= FAST.settle_s
    assert result.before["PS01.P1.speed"] == 0.95 and result.before["PS01.P1.running"] == 1.0
    assert result.after["PS01.P1.speed"] == pytest.approx(0.89)
    assert result.observed == {"PS01.P1.FLOW": pytest.approx(890.0)}
    log = AuditLog(tmp_path / "audit.jsonl")
    assert log.verify() > 0
    kinds = [r.kind for r in log.records(request="REQ-1")]
    assert kinds.count("write") == 3 and kinds.count("readback") == 3 and kinds[-2:] == ["verified", "done"]
    first_write = log.records(kind="write")[0]
    assert first_write.before == {"PS01.P1.speed": 0.95, "PS01.P1.running": 1.0}
    assert first_write.after == {"PS01.P1.speed": pytest.approx(0.93)}


def test_bad_set_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    ctl = FakeControl()
    writes = [Write("PS01.P1", "speed", 0.9), Write("PS01.P2", "speed", 1.3)]
    result = guard(ctl, tmp_path).implement(writes)
    assert result.status == "refused" and "outside its range" in result.message
    assert ctl.sent == [] and result.steps == ()
    stale = guard(ctl, tmp_path).implement([Write("PS01.P3", "speed", 0.9)])  # P3 is stopped
    assert stale.status == "refused" and "is stopped" in stale.reasons[0] and ctl.sent == []
    valve = guard(ctl).implement([Write("V1", "valve", 0.5)])
    assert valve.status == "refused" and "cannot be read back" in valve.message
    assert [r.kind for r in AuditLog(tmp_path / "audit.jsonl").records()] == ["refused", "refused"]


def test_link_drop_is_retried(tmp_path: Path) -> None:
    ctl = FakeControl()
    ctl.drop(2, after=2)  # 2 reads of the state before, then the first write and the retry's readback are lost
    result = guard(ctl, tmp_path).implement([Write("PS01.P1", "speed", 0.93)])
    assert result.status == "done", result.message
    assert len(result.steps) == 2 and ctl.sp["PS01.P1"] == 0.93  # sent twice: the first never arrived
    assert len(AuditLog(tmp_path / "audit.jsonl").records(kind="retry")) == 1


def test_write_that_arrived_is_not_sent_again() -> None:
    ctl = FakeControl()
    ctl.drop(1, after=3)  # the write arrives, its readback is lost
    result = guard(ctl).implement([Write("PS01.P1", "speed", 0.93)])
    assert result.status == "done" and len(result.steps) == 1


def test_ignored_writes_are_rolled_back(tmp_path: Path) -> None:
    ctl = FakeControl(ignore=True)
    before = ctl.state()
    result = guard(ctl, tmp_path).implement([Write("PS01.P1", "speed", 0.91)])
    assert result.status == "rolled_back"
    assert "not confirmed after 3 attempts" in result.reasons[0] and "read back PS01.P1.speed = 0.95" in result.message
    assert len(result.steps) == 3  # three attempts at the first step, no rollback write needed
    assert ctl.state() == before and result.after == result.before
    kinds = [r.kind for r in AuditLog(tmp_path / "audit.jsonl").records()]
    assert kinds[-2:] == ["rollback", "rolled_back"]


def test_refusal_midway_rolls_back_what_changed() -> None:
    ctl = FakeControl(refuse={"PS01.P2"})
    before = ctl.state()
    result = guard(ctl).implement([Write("PS01.P1", "speed", 0.91), Write("PS01.P2", "speed", 0.91)])
    assert result.status == "rolled_back" and "refused" in result.message
    assert result.unmet == ()  # undone for the control system's refusal, not for the plant's response
    assert speeds_sent(ctl) == pytest.approx([0.93, 0.91, 0.93, 0.95])  # ramped down, then ramped back
    assert ctl.state() == pytest.approx(before) and result.after == pytest.approx(result.before)


def test_wrong_readbacks_end_unconfirmed_with_the_last_known_state() -> None:
    ctl = FakeControl(offset=0.01)
    result = guard(ctl).implement([Write("PS01.P1", "speed", 0.92)])
    assert result.status == "unconfirmed"
    # the control system last reported 0.95 (it was at 0.94 and reads 0.01 high)
    assert "last confirmed: PS01.P1 speed 0.9500 running" in result.message
    assert result.after["PS01.P1.speed"] == pytest.approx(0.95)


def test_dead_link_midway_ends_unconfirmed() -> None:
    ctl = FakeControl()
    ctl.drop(10_000, after=4)  # state read (2), first step and its readback, then nothing
    result = guard(ctl).implement([Write("PS01.P1", "speed", 0.91)])
    assert result.status == "unconfirmed"
    assert "last confirmed: PS01.P1 speed 0.9300 running" in result.message
    assert result.after["PS01.P1.speed"] == pytest.approx(0.93)


def test_link_drop_shorter_than_the_retries_rolls_back_cleanly() -> None:
    ctl = FakeControl()
    ctl.drop(5, after=4)  # the second step fails three times; the link is back for the rollback
    result = guard(ctl).implement([Write("PS01.P1", "speed", 0.91)])
    assert result.status == "rolled_back" and "link lost" in result.message
    assert ctl.sp["PS01.P1"] == pytest.approx(0.95)


def test_unexpected_response_rolls_back(tmp_path: Path) -> None:
    ctl = FakeControl(tags={"PS01.P1.FLOW": flow_of("PS01.P1")})
    expect = [Expectation("PS01.P1.FLOW", 700.0, 20.0), Expectation("PS01.P1.VIB_DE_RMS", 2.0, 1.0)]
    result = guard(ctl, tmp_path).implement([Write("PS01.P1", "speed", 0.91)], expect)
    assert result.status == "rolled_back"
    assert "PS01.P1.FLOW read 910, expected 700 ± 20" in result.message and "(and 1 more)" in result.message
    assert math.isnan(result.observed["PS01.P1.VIB_DE_RMS"])  # no reading is not a confirmation
    assert len(result.unmet) == 2 and result.unmet[0].startswith("PS01.P1.FLOW read 910")
    assert ctl.sp["PS01.P1"] == pytest.approx(0.95)
    last = AuditLog(tmp_path / "audit.jsonl").records()[-1]
    assert last.kind == "rolled_back" and last.data["status"] == "rolled_back"


def test_start_stop_switch_and_its_rollback() -> None:
    ctl = FakeControl(tags={"PS01.P3.FLOW": flow_of("PS01.P3")})
    before = ctl.state()
    switch = [Write("PS01.P3", "speed", 0.94), Write("PS01.P3", "start"), Write("PS01.P1", "stop")]
    done = guard(ctl).implement(switch, [Expectation("PS01.P3.FLOW", 940.0, 5.0)])
    assert done.status == "done", done.message
    kinds = [(w.target, w.kind) for w in done.steps]
    assert kinds[0] == ("PS01.P3", "start") and kinds[-1] == ("PS01.P1", "stop")  # start before its speed
    assert speeds_sent(ctl, "PS01.P3") == pytest.approx([0.92, 0.94])  # ramped up from where the start left it
    assert ctl.on == {"PS01.P1": False, "PS01.P2": True, "PS01.P3": True}
    assert done.after["PS01.P3.running"] == 1.0 and done.after["PS01.P1.running"] == 0.0

    ctl = FakeControl(tags={"PS01.P3.FLOW": flow_of("PS01.P3")})
    back = guard(ctl).implement(switch, [Expectation("PS01.P3.FLOW", 500.0, 5.0)])
    assert back.status == "rolled_back"
    assert ctl.state() == pytest.approx(before)


def test_noop_start_is_not_sent(tmp_path: Path) -> None:
    ctl = FakeControl()
    result = guard(ctl, tmp_path).implement([Write("PS01.P1", "start")])
    assert result.status == "done" and ctl.sent == []
    assert "already running" in AuditLog(tmp_path / "audit.jsonl").records(kind="note")[0].what


def test_rate_limit_holds_across_calls() -> None:
    ctl = FakeControl()
    g = guard(ctl)
    assert g.implement([Write("PS01.P1", "speed", 0.93)]).status == "done"
    assert g.implement([Write("PS01.P1", "speed", 0.91)]).status == "done"
    (t0, _), (t1, _) = ctl.sent
    assert t1 - t0 >= 0.02 / FAST.max_rate_per_s - 1e-9


# --------------------------------------------------------------------------------------------
# implement on the plant simulator
# --------------------------------------------------------------------------------------------


def small_controller(**changes):
    from pumptwin.control.simulated import SimulatedController
    from pumptwin.plant.scenario import shipped_scenario
    from pumptwin.plant.sensors import SensorConfig
    from pumptwin.plant.simulator import Plant

    base = shipped_scenario("healthy_month")
    ops = replace(base.operations, nomination_s=0.0, daily_swing=0.0, nomination_jitter=0.0, events=())
    small = replace(base, step_s=2.0, duration_s=3600.0, operations=ops, sensors=SensorConfig.ideal(), **changes)
    plant = Plant(small)
    ctl = SimulatedController(plant)
    ctl.wait(300.0)
    return ctl


def test_on_the_simulator_a_good_prediction_is_done_and_a_wrong_one_rolled_back(tmp_path: Path) -> None:
    from pumptwin.control.simulated import SimulatedController

    ctl = small_controller()
    twin = tmp_path / "twin.pkl"  # a copy of the plant stands in for the twin's prediction
    ctl.save(twin)
    copy = SimulatedController.load(twin)
    copy.apply(Write("PS01.P1", "speed", 0.91))
    copy.wait(FAST.settle_s + 60.0)
    predicted = copy.read(["PS01.P1.FLOW"])["PS01.P1.FLOW"]
    flow0 = ctl.read(["PS01.P1.FLOW"])["PS01.P1.FLOW"]
    assert predicted < flow0 - 20

    audit = AuditLog(tmp_path / "audit.jsonl")
    g = Interlocked(ctl, ctl.ranges(), FAST, audit=audit, request="REQ-7")
    done = g.implement([Write("PS01.P1", "speed", 0.91)], [Expectation("PS01.P1.FLOW", predicted, 0.02 * predicted)])
    assert done.status == "done", done.message
    assert [round(w.value, 6) for w in done.steps] == [0.93, 0.91]
    assert ctl.speed_setpoint("PS01.P1") == pytest.approx(0.91)

    back = g.implement([Write("PS01.P1", "speed", 0.95)], [Expectation("PS01.P1.FLOW", 2 * predicted, 10.0)])
    assert back.status == "rolled_back" and "PS01.P1.FLOW" in back.message
    assert ctl.speed_setpoint("PS01.P1") == pytest.approx(0.91, abs=1e-9)
    assert audit.verify() == len(audit.records(request="REQ-7"))


def test_on_the_simulator_a_tripped_pump_is_refused_by_the_control_system() -> None:
    from pumptwin.plant.health import MODE_INFO, Mode
    from pumptwin.plant.scenario import FaultSpec

    magnitude = MODE_INFO[Mode.SEAL_FAILURE].magnitude
    trip = FaultSpec(Mode.SEAL_FAILURE, "PS01.P1", 0.0, 120.0, law="linear", magnitude=magnitude, trip=True)
    ctl = small_controller(faults=(trip,))  # P1 trips at 120 s; the standby P3 starts after it
    assert not ctl.running("PS01.P1") and ctl.running("PS01.P3")
    result = Interlocked(ctl, ctl.ranges(), FAST).implement([Write("PS01.P1", "start")])
    assert result.status == "rolled_back" and "locked out" in result.message
    assert not ctl.running("PS01.P1") and len(result.steps) == 1


class FailingAudit(AuditLog):
    """An audit log that fails (as on a full disk) after ``ok`` records."""

    def __init__(self, path: Path, ok: int) -> None:
        super().__init__(path)
        self.ok = ok

    def append(self, *args, **kwargs):
        if self.ok <= 0:
            raise AuditError("no space left on device")
        self.ok -= 1
        return super().append(*args, **kwargs)


def test_audit_failure_stops_writing_and_undoes(tmp_path: Path) -> None:
    ctl = FakeControl()
    audit = FailingAudit(tmp_path / "audit.jsonl", ok=2)  # write, readback, then the next write cannot be logged
    result = Interlocked(ctl, RANGES, FAST, audit=audit).implement([Write("PS01.P1", "speed", 0.91)])
    assert result.status == "rolled_back" and "audit log failed" in result.message
    assert speeds_sent(ctl) == pytest.approx([0.93, 0.95])  # the unlogged step was never sent
    assert ctl.sp["PS01.P1"] == pytest.approx(0.95)
    assert [r.kind for r in AuditLog(tmp_path / "audit.jsonl").records()] == ["write", "readback"]

    ctl = FakeControl()
    result = Interlocked(ctl, RANGES, FAST, audit=FailingAudit(tmp_path / "b.jsonl", ok=0)).implement(
        [Write("PS01.P1", "speed", 0.91)]
    )
    assert result.status == "rolled_back" and ctl.sent == []  # a write the log cannot record is not sent
