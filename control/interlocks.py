"""The interlocks that guard every write to the plant: checks, ramps, readbacks, retries and rollback.

`Interlocked.implement` takes a set of writes (one recommendation) and either carries all of it
out and confirms it, or leaves the plant as it found it, and says which:

1. **Check** every write first (`check_writes`): known pump, speed finite and inside the pump's
   range, valve opening inside 0..1, one speed and one start/stop per pump, no speed for a pump
   that ends stopped, and no speed for a pump that is stopped now and not started by the set (the
   recommendation was made for a plant that has changed since). Starting a running pump or stopping
   a stopped pump is allowed: it asks for the state the pump is already in, so it is not sent and
   the audit log notes it. Valve writes are refused by `implement`: the control interface cannot
   read a valve back, so such a write could be neither confirmed nor rolled back. If anything
   fails, the whole set is refused and nothing is written.
2. **Record** the state before: each pump's speed setpoint (``PUMP.speed``, relative) and whether
   it runs (``PUMP.running``, 1 or 0).
3. **Write** in the order given (a pump's start goes before its own speed write). A speed change
   of a running pump is ramped in steps of at most ``ramp_step``, spaced so the setpoint never
   changes faster than ``max_rate_per_s``; a stopped pump's setpoint is written in one step.
   Every write is read back (``speed_setpoint`` within ``readback_tolerance``; ``running`` for a
   start or stop). A dropped link or a disagreeing readback is retried (read back first, in case
   the write arrived, then sent again) up to ``retries`` attempts, ``retry_wait_s`` apart.
4. If a write still cannot be confirmed, or the control system refuses it, **roll back** every
   pump touched to its state before (ramped, confirmed the same way): ``rolled_back``. If even the
   rollback cannot be confirmed: ``unconfirmed``, with the last confirmed setpoint of each pump in
   the message, so the state is never unknown.
5. **Verify**: after the last write, wait ``settle_s`` and read the expected tags; one outside its
   tolerance, or NaN, rolls everything back. With no expectations there is nothing to settle for.

Every write, readback, retry and rollback and the final status go to the audit log when one is
given. The kinds used: ``note`` (a start or stop not sent, the pump being in that state already),
``write`` (recorded before the write is sent: a write the log cannot record is not sent),
``write_error`` (link lost, or refused by the control system), ``readback``, ``retry``,
``rollback``, ``verified`` (expectations met) and, last for every call, the status: ``done``,
``rolled_back``, ``unconfirmed`` or ``refused``. If the audit log fails in the middle of a call,
nothing more is written to the plant: what was changed is rolled back, unlogged, and the result
says so.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from pumptwin.control.audit import AuditError, AuditLog
from pumptwin.control.interface import ConnectionLost, ControlError, Controller, Write
from pumptwin.twin.safety import shorten

Status = Literal["done", "rolled_back", "refused", "unconfirmed"]
T = TypeVar("T")
KINDS = ("speed", "start", "stop", "valve")
"""Write kinds the interlocks know."""
RAMP_EPS = 1e-9
"""Relative slack when counting ramp steps, so a change of exactly n steps takes n steps."""


class InterlockError(ControlError):
    """Interlock settings or arguments that cannot be used; the message names the value."""


def _finite(*values: float) -> bool:
    return all(isinstance(v, numbers.Real) and math.isfinite(v) for v in values)


@dataclass(frozen=True)
class SpeedRange:
    """A pump's allowed relative speed range (1.0 = rated).

    Attributes:
        low: Lowest allowed relative speed.
        high: Highest allowed relative speed.
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        """Check the range is finite, positive and ordered."""
        if not (_finite(self.low, self.high) and 0 < self.low <= self.high):
            raise InterlockError(f"speed range {self.low}..{self.high} must be finite with 0 < low <= high")

    def __contains__(self, speed: object) -> bool:
        return isinstance(speed, numbers.Real) and self.low <= float(speed) <= self.high


@dataclass(frozen=True)
class InterlockSettings:
    """How cautiously writes are made.

    Attributes:
        max_rate_per_s: Fastest change of a running pump's speed setpoint, relative speed per s.
        ramp_step: Largest single setpoint step, relative speed.
        settle_s: Wait after the last write before checking the response, s.
        readback_tolerance: A setpoint read back further than this (relative speed) is not confirmed.
        retries: Attempts per write when the link drops or the readback disagrees (at least 1).
        retry_wait_s: Wait between attempts, s.
    """

    max_rate_per_s: float = 0.002
    ramp_step: float = 0.02
    settle_s: float = 120.0
    readback_tolerance: float = 0.002
    retries: int = 3
    retry_wait_s: float = 1.0

    def __post_init__(self) -> None:
        """Check every setting is finite and in range."""
        if not (_finite(self.max_rate_per_s) and self.max_rate_per_s > 0):
            raise InterlockError(f"max_rate_per_s must be > 0, got {self.max_rate_per_s}")
        if not (_finite(self.ramp_step) and self.ramp_step > 0):
            raise InterlockError(f"ramp_step must be > 0, got {self.ramp_step}")
        for name in ("settle_s", "readback_tolerance", "retry_wait_s"):
            value = getattr(self, name)
            if not (_finite(value) and value >= 0):
                raise InterlockError(f"{name} must be >= 0, got {value}")
        if not (isinstance(self.retries, int) and self.retries >= 1):
            raise InterlockError(f"retries must be an integer >= 1, got {self.retries}")


DEFAULT_SETTINGS = InterlockSettings()
"""The settings `Interlocked` uses unless told otherwise."""


@dataclass(frozen=True)
class Expectation:
    """What the twin predicts a tag reads once the plant has settled after the writes.

    Attributes:
        tag: Tag name (``PS01.P1.FLOW``).
        value: Predicted reading in the tag's engineering unit.
        tolerance: Largest acceptable absolute difference, same unit.
    """

    tag: str
    value: float
    tolerance: float

    def __post_init__(self) -> None:
        """Check the prediction and tolerance are finite."""
        if not _finite(self.value):
            raise InterlockError(f"expectation for {shorten(self.tag)}: value must be finite, got {self.value}")
        if not (_finite(self.tolerance) and self.tolerance >= 0):
            raise InterlockError(f"expectation for {shorten(self.tag)}: tolerance must be >= 0, got {self.tolerance}")

    def met_by(self, reading: float) -> bool:
        """Whether ``reading`` is within the tolerance (NaN never is)."""
        return math.isfinite(reading) and abs(reading - self.value) <= self.tolerance


@dataclass(frozen=True)
class ImplementResult:
    """What `Interlocked.implement` did.

    Attributes:
        status: ``done`` (all confirmed and, if asked, verified), ``rolled_back`` (the plant is back
            where it was), ``refused`` (nothing written) or ``unconfirmed`` (even the rollback could
            not be confirmed; see the message for the last confirmed state).
        message: One line for a person.
        before: Setpoints (relative) and running flags (1/0) before, by ``PUMP.speed``/``PUMP.running``.
        after: The same, as last confirmed at the end.
        steps: Every write sent, in order (ramp steps, resends and rollback writes included).
        observed: The expectation tags as read after settling.
        reasons: Why refused, rolled back or unconfirmed.
        unmet: The expectations the plant's response missed, one line each, when that is why the
            writes were rolled back (empty otherwise).
    """

    status: Status
    message: str
    before: Mapping[str, float]
    after: Mapping[str, float]
    steps: tuple[Write, ...]
    observed: Mapping[str, float]
    reasons: tuple[str, ...] = ()
    unmet: tuple[str, ...] = ()


def speed_key(pump: str) -> str:
    """State key of a pump's relative speed setpoint (``PS01.P1.speed``)."""
    return f"{pump}.speed"


def running_key(pump: str) -> str:
    """State key of whether a pump runs (``PS01.P1.running``, 1 or 0)."""
    return f"{pump}.running"


def ramp(current: float, target: float, step: float) -> list[float]:
    """Setpoints from ``current`` to ``target``, evenly spaced, none further apart than ``step``.

    Args:
        current: Setpoint now (not included).
        target: Final setpoint (the last element, exactly).
        step: Largest step, > 0.

    Returns:
        The intermediate setpoints and the target; empty when ``current == target``.

    Raises:
        InterlockError: A non-finite value or a step that is not > 0.
    """
    if not (_finite(current, target, step) and step > 0):
        raise InterlockError(f"cannot ramp from {current} to {target} in steps of {step}")
    if current == target:
        return []
    n = max(1, math.ceil(abs(target - current) / step - RAMP_EPS))
    return [current + (target - current) * i / n for i in range(1, n)] + [target]


def check_writes(
    writes: Sequence[Write], ranges: Mapping[str, SpeedRange], running: Mapping[str, bool] | None = None
) -> list[str]:
    """Why a set of writes must not be made (empty: allowed).

    Refused: an unknown kind; a pump not in ``ranges``; a speed that is not finite or outside the
    pump's range; a valve opening that is not finite or outside 0..1; two speed writes, or two
    start/stop writes, for one pump; a speed write for a pump the set stops. With ``running``: a
    speed write for a pump that is stopped and not started by the set (the plant has changed since
    the writes were planned), or for a pump whose state is not given. Starting a running pump or
    stopping a stopped pump is allowed (it asks for the state the pump is in).

    Args:
        writes: The set of writes.
        ranges: Allowed relative speed range of every pump.
        running: Whether each pump runs now, if known.

    Returns:
        One line per problem.
    """
    reasons: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for w in writes:
        problem = _value_problem(w, ranges)
        if problem:
            reasons.append(problem)
        if w.kind not in KINDS or (w.kind != "valve" and w.target not in ranges):
            continue
        group = {"speed": "speed", "valve": "valve"}.get(w.kind, "start/stop")
        seen[(w.target, group)] = seen.get((w.target, group), 0) + 1
        if seen[(w.target, group)] == 2:  # noqa: PLR2004 - report a duplicate once
            reasons.append(f"{shorten(w.target)}: more than one {group} write in one set")
    status = {w.target: w.kind for w in writes if w.kind in ("start", "stop")}
    for w in writes:
        if w.kind != "speed" or w.target not in ranges:
            continue
        name = shorten(w.target)
        if status.get(w.target) == "stop":
            reasons.append(f"{name}: speed write for a pump the same set stops")
        elif running is not None and status.get(w.target) != "start":
            if w.target not in running:
                reasons.append(f"{name}: running state unknown")
            elif not running[w.target]:
                reasons.append(f"{name} is stopped: a speed write needs it running or started in the same set")
    return reasons


def _value_problem(w: Write, ranges: Mapping[str, SpeedRange]) -> str:
    """What is wrong with one write on its own ("" when nothing)."""
    name = shorten(w.target)
    if w.kind not in KINDS:
        return f"{name}: unknown write kind {shorten(w.kind)}"
    if w.kind == "valve":
        ok = _finite(w.value) and 0 <= w.value <= 1
        return "" if ok else f"valve {name}: opening {w.value} is not a number in 0..1"
    if w.target not in ranges:
        return f"unknown pump {name}"
    r = ranges[w.target]
    if w.kind == "speed" and not _finite(w.value):
        return f"{name}: speed {w.value} is not a number"
    if w.kind == "speed" and w.value not in r:
        return f"{name}: speed {w.value:g} is outside its range {r.low:g}..{r.high:g}"
    return ""


# --------------------------------------------------------------------------------------------
# Carrying writes out
# --------------------------------------------------------------------------------------------


class _Unconfirmed(Exception):
    """A write or read that could not be confirmed; the message says why."""


class Interlocked:
    """Writes to a control system through the interlocks (see the module docstring).

    Example::

        guard = Interlocked(ctl, ctl.ranges(), audit=AuditLog(home / "audit.jsonl"), request="REQ-7")
        result = guard.implement([Write("PS01.P1", "speed", 0.93)], [Expectation("PS01.P1.FLOW", 850.0, 40.0)])
        result.status  # "done"

    Args:
        controller: The control system.
        ranges: Allowed relative speed range of every pump.
        settings: Rates, steps, waits, tolerances and retries.
        audit: Audit log for every write, readback, retry, rollback and result (none: not logged).
        request: Request id the audit records belong to.
        who: Who acts, in the audit log.
    """

    def __init__(
        self,
        controller: Controller,
        ranges: Mapping[str, SpeedRange],
        settings: InterlockSettings = DEFAULT_SETTINGS,
        *,
        audit: AuditLog | None = None,
        request: str = "",
        who: str = "interlocks",
    ) -> None:
        if not isinstance(controller, Controller):
            raise InterlockError(f"{type(controller).__name__} is not a Controller")
        if not isinstance(settings, InterlockSettings):
            raise InterlockError(f"settings must be InterlockSettings, got {type(settings).__name__}")
        self.controller = controller
        self.ranges = dict(ranges)
        self.settings = settings
        self.audit = audit
        self.request = request
        self.who = who
        self._clock_s = 0.0  # time waited so far, s (the interlocks' own clock for pacing)
        self._last_step: dict[str, tuple[float, float]] = {}  # pump -> (clock, setpoint) of its last step

    def implement(self, writes: Sequence[Write], expect: Sequence[Expectation] = ()) -> ImplementResult:
        """Carry out a set of writes and confirm it, or leave the plant as it was (see the module docstring).

        Args:
            writes: The writes, in order.
            expect: Tags the twin predicts after settling, with tolerances.

        Returns:
            The status, a one-line message, the state before and after, the writes sent, the
            expectation tags observed and the reasons.
        """
        return _Run(self, tuple(writes), tuple(expect)).execute()

    # ---------------------------------------------------------------- shared with a run

    def _log(
        self,
        kind: str,
        what: str,
        *,
        why: str = "",
        before: Mapping[str, float] | None = None,
        after: Mapping[str, float] | None = None,
        data: Mapping[str, object] | None = None,
    ) -> None:
        if self.audit is not None:
            self.audit.append(kind, self.request, self.who, what, why=why, before=before, after=after, data=data)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.controller.wait(seconds)
            self._clock_s += seconds

    def _pace(self, pump: str, setpoint: float, current: float) -> None:
        """Wait until a step of ``pump`` to ``setpoint`` keeps within the rate limit, then note the step.

        The step is measured from the last setpoint sent and from the last confirmed one
        (``current``), whichever is further: a step whose confirmation was lost may or may not
        have arrived.
        """
        last = self._last_step.get(pump)
        if last is not None:
            t, sent = last
            size = max(abs(setpoint - sent), abs(setpoint - current))
            self._wait(size / self.settings.max_rate_per_s - (self._clock_s - t))
        self._last_step[pump] = (self._clock_s, setpoint)


class _Run:
    """One call of `Interlocked.implement`: its writes, the state it confirmed and what it sent."""

    def __init__(self, guard: Interlocked, writes: tuple[Write, ...], expect: tuple[Expectation, ...]) -> None:
        self.g = guard
        self.ctl = guard.controller
        self.s = guard.settings
        self.writes = writes
        self.expect = expect
        self.before: dict[str, float] = {}
        self.state: dict[str, float] = {}  # last confirmed
        self.touched: list[str] = []
        self.steps: list[Write] = []
        self.observed: dict[str, float] = {}
        self.audit_error: str | None = None  # set when the audit log failed: log nothing more

    # ---------------------------------------------------------------- the run

    def execute(self) -> ImplementResult:
        if not self.writes:
            return self._finish("done", "nothing to write")
        pumps = list(dict.fromkeys(w.target for w in self.writes if w.target in self.g.ranges))
        reasons = check_writes(self.writes, self.g.ranges)
        reasons += [
            f"valve {shorten(w.target)}: a valve cannot be read back, so its write could be neither confirmed "
            "nor rolled back"
            for w in self.writes
            if w.kind == "valve"
        ]
        if not reasons:
            try:
                for p in pumps:
                    self._read_state(p)
            except _Unconfirmed as exc:
                reasons.append(f"could not read the state before writing: {exc}")
            self.before = dict(self.state)
        if not reasons:
            running = {p: bool(self.state[running_key(p)]) for p in pumps}
            reasons = check_writes(self.writes, self.g.ranges, running)
        if reasons:
            return self._finish("refused", f"refused: {reasons[0]}" + _more(reasons), reasons)
        try:
            return self._carry_out()
        except AuditError as exc:  # nothing more may be written unrecorded: undo, unlogged
            self.audit_error = str(exc)
            return self._roll_back(f"the audit log failed ({exc}), so the writes were undone")

    def _carry_out(self) -> ImplementResult:
        try:
            self._write_all()
        except _Unconfirmed as exc:
            return self._roll_back(str(exc))
        if self.expect:
            self.g._wait(self.s.settle_s)
            self.observed = self._read_tags([e.tag for e in self.expect])
            off = [
                f"{e.tag} read {self.observed[e.tag]:.6g}, expected {e.value:.6g} ± {e.tolerance:.6g}"
                for e in self.expect
                if not e.met_by(self.observed[e.tag])
            ]
            if off:
                return self._roll_back(
                    f"after {self.s.settle_s:g} s the plant did not respond as expected: {off[0]}" + _more(off),
                    off,
                    unmet=off,
                )
            self._log(
                "verified",
                f"all {len(self.expect)} expectations met after {self.s.settle_s:g} s",
                after=self.observed,
                data={"expect": [[e.tag, e.value, e.tolerance] for e in self.expect]},
            )
        n = len(self.writes)
        k = len(self.steps)
        return self._finish("done", f"done: {n} write{'s' * (n != 1)} in {k} step{'s' * (k != 1)}, all confirmed")

    def _write_all(self) -> None:
        done: set[int] = set()
        for i, w in enumerate(self.writes):
            if i in done:
                continue
            if w.kind == "speed":  # the pump's own start goes first: a start may reset the setpoint
                for j in range(i + 1, len(self.writes)):
                    if self.writes[j].target == w.target and self.writes[j].kind == "start":
                        self._status(self.writes[j], "implement")
                        done.add(j)
                self._speed(w.target, float(w.value), "implement")
            else:
                self._status(w, "implement")

    def _roll_back(self, reason: str, extra: Sequence[str] = (), *, unmet: Sequence[str] = ()) -> ImplementResult:
        reasons = [reason, *extra] if extra else [reason]
        self._log("rollback", f"rolling back {len(self.touched)} pumps", why=reason, before=self.state)
        failed: list[str] = []
        for p in reversed(self.touched):
            try:
                self._restore(p)
            except _Unconfirmed as exc:
                failed.append(str(exc))
        if not failed:
            return self._finish("rolled_back", f"rolled back: {reason}", reasons, unmet)
        known = ", ".join(
            f"{p} speed {self.state[speed_key(p)]:.4f} {'running' if self.state[running_key(p)] else 'stopped'}"
            for p in self.touched
        )
        return self._finish(
            "unconfirmed",
            f"UNCONFIRMED: {reason}; the rollback failed ({failed[0]}); last confirmed: {known}",
            [*reasons, *failed],
        )

    def _restore(self, pump: str) -> None:
        """Bring one pump back to its state before (read where it is now first, if the link allows)."""
        with contextlib.suppress(_Unconfirmed):  # unreadable: go from the last confirmed state
            self._read_state(pump)
        on, was_on = bool(self.state[running_key(pump)]), bool(self.before[running_key(pump)])
        if on and not was_on:
            self._status(Write(pump, "stop"), "rollback")
        elif was_on and not on:
            self._status(Write(pump, "start"), "rollback")
        target = self.before[speed_key(pump)]
        if abs(self.state[speed_key(pump)] - target) > self.s.readback_tolerance:
            self._speed(pump, target, "rollback")

    # ---------------------------------------------------------------- writes

    def _speed(self, pump: str, target: float, phase: str) -> None:
        current = self.state[speed_key(pump)]
        points = ramp(current, target, self.s.ramp_step) if self.state[running_key(pump)] else [target]
        if current == target:
            points = []
        for value in points:
            self.g._pace(pump, value, self.state[speed_key(pump)])
            self._send(Write(pump, "speed", value), phase, functools.partial(self._check_speed, pump, value))

    def _status(self, write: Write, phase: str) -> None:
        pump, on = write.target, write.kind == "start"
        if bool(self.state[running_key(pump)]) == on:
            self._log("note", f"{pump} already {'running' if on else 'stopped'}: {write.kind} not sent")
            return
        self._send(write, phase, lambda: self._check_running(pump, on))

    def _send(self, write: Write, phase: str, check: Callable[[], tuple[bool, dict[str, float]]]) -> None:
        """Send one write and confirm it, retrying on a lost link or a disagreeing readback.

        Raises:
            _Unconfirmed: Not confirmed after every attempt, or refused by the control system.
        """
        pump = write.target
        if pump not in self.touched:
            self.touched.append(pump)
        desc = _describe(write)
        reason = ""
        for attempt in range(1, self.s.retries + 1):
            if attempt > 1:
                self._log("retry", f"{desc}: attempt {attempt} of {self.s.retries}", why=reason)
                self.g._wait(self.s.retry_wait_s)
                if self._confirm(write, check, attempt, phase):  # it may have arrived after all
                    return
            was = {k: v for k, v in self.state.items() if k.startswith(f"{pump}.")}
            data = {"phase": phase, "attempt": attempt, "kind": write.kind, "value": write.value}
            self._log("write", f"send {desc}", before=was, after=_target_state(write), data=data)  # ahead of it
            self.steps.append(write)
            try:
                self.ctl.apply(write)
            except ConnectionLost as exc:
                reason = f"link lost while writing {desc}: {exc}"
                self._log("write_error", f"{desc}: link lost", why=str(exc), data=data)
                continue
            except ControlError as exc:
                self._log("write_error", f"{desc}: refused by the control system", why=str(exc), data=data)
                raise _Unconfirmed(f"the control system refused {desc}: {exc}") from None
            if self._confirm(write, check, attempt, phase):
                return
            reason = self._last_reason
        raise _Unconfirmed(f"{desc} not confirmed after {self.s.retries} attempts: {reason}")

    def _confirm(
        self, write: Write, check: Callable[[], tuple[bool, dict[str, float]]], attempt: int, phase: str
    ) -> bool:
        """Read a write back; on agreement store the confirmed state. Leaves the reason in `_last_reason`."""
        desc = _describe(write)
        try:
            ok, seen = check()
        except ControlError as exc:  # ConnectionLost or a failed read
            self._last_reason = f"could not read back {desc}: {exc}"
            self._log("readback", f"{desc}: no readback", why=str(exc), data={"attempt": attempt, "phase": phase})
            return False
        self._log(
            "readback",
            f"{desc}: {'confirmed' if ok else 'disagrees'}",
            after=seen,
            data={"ok": ok, "attempt": attempt, "phase": phase},
        )
        if ok:
            self.state.update(seen)
            return True
        self._last_reason = "read back " + ", ".join(f"{k} = {v:.6g}" for k, v in seen.items())
        return False

    _last_reason = ""

    # ---------------------------------------------------------------- reads

    def _check_speed(self, pump: str, value: float) -> tuple[bool, dict[str, float]]:
        sp = float(self.ctl.speed_setpoint(pump))
        return math.isfinite(sp) and abs(sp - value) <= self.s.readback_tolerance, {speed_key(pump): sp}

    def _check_running(self, pump: str, on: bool) -> tuple[bool, dict[str, float]]:
        running = bool(self.ctl.running(pump))
        seen = {running_key(pump): float(running)}
        if running == on and on:  # a start may set the setpoint (to the station's speed)
            seen[speed_key(pump)] = float(self.ctl.speed_setpoint(pump))
        return running == on, seen

    def _retrying(self, what: str, read: Callable[[], T]) -> T:
        """``read()``, retried on a lost link; raises `_Unconfirmed` after every attempt failed."""
        error = ""
        for attempt in range(1, self.s.retries + 1):
            if attempt > 1:
                self.g._wait(self.s.retry_wait_s)
            try:
                return read()
            except ConnectionLost as exc:
                error = str(exc)
            except ControlError as exc:
                raise _Unconfirmed(f"{what}: {exc}") from None
        raise _Unconfirmed(f"{what}: link lost after {self.s.retries} attempts ({error})")

    def _read_state(self, pump: str) -> None:
        """Read a pump's setpoint and running flag into the confirmed state."""
        sp = self._retrying(f"setpoint of {pump}", lambda: float(self.ctl.speed_setpoint(pump)))
        on = self._retrying(f"running state of {pump}", lambda: bool(self.ctl.running(pump)))
        if not math.isfinite(sp):
            raise _Unconfirmed(f"setpoint of {pump} reads {sp}")
        self.state[speed_key(pump)] = sp
        self.state[running_key(pump)] = 1.0 if on else 0.0

    def _read_tags(self, tags: list[str]) -> dict[str, float]:
        try:
            values = self._retrying("expectation tags", lambda: self.ctl.read(tags))
        except _Unconfirmed:
            return dict.fromkeys(tags, math.nan)
        return {t: float(values.get(t, math.nan)) for t in tags}

    # ---------------------------------------------------------------- the result

    def _log(
        self,
        kind: str,
        what: str,
        *,
        why: str = "",
        before: Mapping[str, float] | None = None,
        after: Mapping[str, float] | None = None,
        data: Mapping[str, object] | None = None,
    ) -> None:
        """Append to the audit log, unless it failed earlier in this run (raises `AuditError` when it fails)."""
        if self.audit_error is None:
            self.g._log(kind, what, why=why, before=before, after=after, data=data)

    def _finish(
        self, status: Status, message: str, reasons: Sequence[str] = (), unmet: Sequence[str] = ()
    ) -> ImplementResult:
        after = {**self.before, **self.state}
        try:
            self._log(
                status,
                message,
                why="; ".join(reasons),
                before=self.before,
                after=after,
                data={"status": status, "steps": len(self.steps), "observed": self.observed},
            )
        except AuditError as exc:
            self.audit_error = str(exc)
            message += f"; this result is not in the audit log ({exc})"
            reasons = [*reasons, f"the audit log failed: {exc}"]
        return ImplementResult(
            status=status,
            message=message,
            before=dict(self.before),
            after=after,
            steps=tuple(self.steps),
            observed=dict(self.observed),
            reasons=tuple(reasons),
            unmet=tuple(unmet),
        )


def _more(items: Sequence[str]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""


def _describe(write: Write) -> str:
    if write.kind in ("speed", "valve"):
        return f"{write.kind} {write.value:.4f} for {write.target}"
    return f"{write.kind} {write.target}"


def _target_state(write: Write) -> dict[str, float]:
    if write.kind == "speed":
        return {speed_key(write.target): write.value}
    if write.kind in ("start", "stop"):
        return {running_key(write.target): 1.0 if write.kind == "start" else 0.0}
    return {}
