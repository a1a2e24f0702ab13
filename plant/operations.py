"""The control system of the fleet: which pumps run, at what speed setpoint, and how speed follows it.

`Operations` holds the commanded state of every pump (on/off, speed setpoint, available,
under manual control) and a queue of commands: scheduled operator actions, throughput
nominations (speed changes that follow a daily cycle), protection trips at functional
failure (with the station's standby started after a delay) and setpoints written through the
plant's step API. `Operations.timeline` plays the queue over a block of time steps and
returns the commanded state and the actual speed, which follows its target at a ramp rate.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pumptwin.plant.scenario import OperationsSpec
from pumptwin.twin.assets import Registry
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.units import DAY_S

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

SPEED_QUANTUM = 0.005
"""Nominations are rounded to this relative speed."""
NOMINATION_PHASE_H = 9.0
"""Hour of the day at which the daily throughput cycle crosses its mean going up."""


class OperationsError(PumptwinError, ValueError):
    """An unknown target or an impossible command."""


@dataclass(frozen=True, slots=True, order=True)
class Command:
    """A command to the control system, applied at the start of global step ``step``.

    Attributes:
        step: Global time step index.
        seq: Issue order (ties at one step apply in this order).
        action: ``speed``, ``start``, ``stop``, ``trip`` or ``switch``.
        pumps: Pump indices (for ``switch``: the pump to stop, then the pump to start).
        value: Relative speed for ``speed``.
        source: ``scenario``, ``nomination``, ``protection`` or ``setpoint``.
    """

    step: int
    seq: int
    action: str
    pumps: tuple[int, ...]
    value: float = math.nan
    source: str = "scenario"


@dataclass(frozen=True, slots=True)
class OpsTimeline:
    """Commanded and actual state over K steps, arrays of shape (K, P).

    Attributes:
        on: Pump commanded to run.
        setpoint: Speed setpoint (relative).
        speed: Actual shaft speed (relative), ramping towards ``on * setpoint``.
        applied: Commands applied in the block.
    """

    on: BoolArray
    setpoint: FloatArray
    speed: FloatArray
    applied: tuple[Command, ...]


class Operations:
    """The fleet's control system (mutable: the plant owns one).

    Args:
        registry: Stations and pumps of the fleet.
        spec: Operating rules from the scenario.
        step_s: Simulation time step in s.
        start_clock_s: Seconds since midnight (UTC) at step 0, for the daily cycle.
        seed: Seed of the nomination jitter.
        initially_on: (P,) pumps running at step 0.
    """

    def __init__(
        self,
        registry: Registry,
        spec: OperationsSpec,
        step_s: float,
        start_clock_s: float,
        seed: int,
        initially_on: Sequence[bool],
    ) -> None:
        self.registry = registry
        self.spec = spec
        self.step_s = step_s
        self.start_clock_s = start_clock_s
        self.seed = seed
        pumps = registry.pumps
        self.min_speed = np.array([p.min_speed for p in pumps])
        self.max_speed = np.array([p.max_speed for p in pumps])
        self.line = np.array([p.line - 1 for p in pumps], dtype=np.int64)
        stations = [s.name for s in registry.stations]
        self.station = np.array([stations.index(p.station) for p in pumps], dtype=np.int64)
        self.on = np.asarray(initially_on, dtype=bool).copy()
        self.setpoint = np.clip(np.full(len(pumps), spec.speed), self.min_speed, self.max_speed)
        self.available = np.ones(len(pumps), dtype=bool)
        self.manual = np.zeros(len(pumps), dtype=bool)
        self.speed = np.where(self.on, self.setpoint, 0.0)
        self._queue: list[Command] = []
        self._seq = 0
        self._nomination_steps = max(1, round(spec.nomination_s / step_s)) if spec.nomination_s > 0 else 0

    # ---------------------------------------------------------------- targets and commands

    def pumps_of(self, target: str) -> tuple[int, ...]:
        """Pump indices named by ``target``: ``PS01.P1``, ``PS01``, ``LINE01`` or ``*``.

        Raises:
            OperationsError: Nothing of that name.
        """
        reg = self.registry
        if target == "*":
            return tuple(range(len(reg.pumps)))
        if "." in target:
            for i, p in enumerate(reg.pumps):
                if p.name == target:
                    return (i,)
            raise OperationsError(f"no pump {target!r} in the fleet")
        if target.startswith("LINE") and target[4:].isdigit():
            line = int(target[4:])
            found = tuple(i for i, p in enumerate(reg.pumps) if p.line == line)
        else:
            found = tuple(i for i, p in enumerate(reg.pumps) if p.station == target)
        if not found:
            raise OperationsError(f"no station or line {target!r} in the fleet")
        return found

    def schedule(
        self, step: int, action: str, pumps: Sequence[int], value: float = math.nan, source: str = "scenario"
    ) -> None:
        """Queue a command for global step ``step``."""
        if action not in ("speed", "start", "stop", "trip", "switch"):
            raise OperationsError(f"unknown action {action!r}")
        heapq.heappush(self._queue, Command(int(step), self._seq, action, tuple(int(p) for p in pumps), value, source))
        self._seq += 1

    def nomination(self, step: int) -> FloatArray:
        """Relative speed nominated for every line at global step ``step`` (a nomination boundary)."""
        spec = self.spec
        t = step * self.step_s
        hour = ((self.start_clock_s + t) % DAY_S) / 3600.0
        base = spec.speed * (1.0 + spec.daily_swing * math.sin(2 * math.pi * (hour - NOMINATION_PHASE_H) / 24.0))
        slot = step // max(self._nomination_steps, 1)
        n_lines = self.registry.n_lines
        jitter = np.array([np.random.default_rng([self.seed, 101, slot, line]).normal() for line in range(n_lines)])
        return np.asarray(np.round((base + spec.nomination_jitter * jitter) / SPEED_QUANTUM) * SPEED_QUANTUM)

    # ---------------------------------------------------------------- applying commands

    def _station_speed(self, p: int) -> float:
        mates = (self.station == self.station[p]) & self.on
        mates[p] = False
        return float(self.setpoint[mates].mean()) if mates.any() else float(self.setpoint[p])

    def _start(self, p: int) -> bool:
        if not self.available[p] or self.on[p]:
            return False
        self.setpoint[p] = self._station_speed(p)
        self.on[p] = True
        return True

    def _apply(self, cmd: Command) -> bool:
        """Apply one command; return whether it changed anything."""
        changed = False
        if cmd.action == "speed":
            for p in cmd.pumps:
                if cmd.source == "nomination" and self.manual[p]:
                    continue
                self.setpoint[p] = float(np.clip(cmd.value, self.min_speed[p], self.max_speed[p]))
                self.manual[p] |= cmd.source == "setpoint"
                changed = True
        elif cmd.action == "start":
            changed = any([self._start(p) for p in cmd.pumps])
        elif cmd.action == "stop":
            changed = bool(self.on[list(cmd.pumps)].any())
            self.on[list(cmd.pumps)] = False
        elif cmd.action == "switch":
            stop, start = cmd.pumps
            if self.available[start] and not self.on[start]:
                self.on[stop] = False
                changed = self._start(start)
        elif cmd.action == "trip":
            for p in cmd.pumps:
                was_on = bool(self.on[p])
                self.on[p] = False
                self.available[p] = False
                changed = True
                if was_on and self.spec.auto_standby:
                    self._queue_standby(p, cmd.step)
        return changed

    def _queue_standby(self, p: int, step: int) -> None:
        candidates = np.flatnonzero((self.station == self.station[p]) & self.available & ~self.on)
        if candidates.size:
            delay = max(1, round(self.spec.standby_delay_s / self.step_s))
            self.schedule(step + delay, "start", (int(candidates[0]),), source="protection")

    def timeline(self, k0: int, k: int) -> OpsTimeline:
        """Play the queued commands and nominations over global steps k0 .. k0 + k - 1.

        Returns:
            Commanded state and actual speed at each step (commands at a step apply before it).
        """
        k_end = k0 + k
        if self._nomination_steps:
            every = self._nomination_steps
            first = -(-k0 // every) * every
            for step in range(first, k_end, every):
                speeds = self.nomination(step)
                for line, value in enumerate(speeds):
                    self.schedule(step, "speed", np.flatnonzero(self.line == line).tolist(), float(value), "nomination")
        on = np.empty((k, self.on.size), dtype=bool)
        sp = np.empty((k, self.on.size))
        applied: list[Command] = []
        row = 0
        while self._queue and self._queue[0].step < k_end:
            cmd = heapq.heappop(self._queue)
            at = max(cmd.step - k0, 0)
            on[row:at] = self.on
            sp[row:at] = self.setpoint
            row = max(row, at)
            if self._apply(cmd):
                applied.append(cmd)
        on[row:] = self.on
        sp[row:] = self.setpoint
        speed = self._ramp(np.where(on, sp, 0.0))
        return OpsTimeline(on, sp, speed, tuple(applied))

    def _ramp(self, target: FloatArray) -> FloatArray:
        """Actual speed following ``target`` (K, P) at the ramp rate; updates the held speed."""
        limit = self.spec.ramp_per_s * self.step_s
        if limit >= float(self.max_speed.max(initial=1.0)):
            self.speed = target[-1].copy()
            return target
        out = np.empty_like(target)
        cur = self.speed.copy()
        for i in range(target.shape[0]):
            cur = np.clip(target[i], cur - limit, cur + limit)
            out[i] = cur
        self.speed = cur
        return out
