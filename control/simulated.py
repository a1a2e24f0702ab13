"""The plant simulator behind the control interface, so the closed loop can be run end to end offline.

`SimulatedController` implements `Controller` on a `pumptwin.plant.simulator.Plant`:

- ``apply`` writes through the plant's step API: a speed to ``STATION.ASSET.SPEED_SP`` (relative
  speed times the pump's rated rpm), a start or stop to ``STATION.ASSET.STATUS`` (1 or 0). Like a
  real control system, the plant acts on a write at its next scan: after writing, the controller
  advances the plant by one time step, so the write is applied and the readback shows it (each
  write therefore costs one step of plant time). The simulated plant has no controllable valves.
- ``speed_setpoint`` and ``running`` answer from the control system's own state (the plant's
  `Operations`), not from the sensors.
- ``read`` answers from the historian's tags: it drains `Plant.read_tags` into a cache of the
  latest good reading of each tag (bad readings, NaN, do not replace a good one; an out-of-order
  reading older than the cached one is ignored) and returns the cached values (NaN for a tag not
  seen yet).
- ``wait`` advances the plant. The plant moves in whole time steps: a remainder shorter than a
  step is carried over to the next wait, so many short waits add up to the right plant time.
- ``take_readings`` hands over every reading drained from the plant since the last call (good or
  not), as a historian would archive them, so the closed loop can ingest what the plant did
  after a write. The readings wait in a buffer until taken, at most `MAX_BUFFERED_READINGS` of
  them (the oldest are dropped beyond that and counted in ``readings_dropped``); the buffer is
  saved with the controller.

The controller can be saved and loaded (`save`, `load`) to continue a simulated plant in a later
process; the file is a pickle, so load only files this program wrote.
"""

from __future__ import annotations

import math
import os
import pickle
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pumptwin.control.interface import ControlError, Write
from pumptwin.control.interlocks import SpeedRange
from pumptwin.plant.simulator import Plant, PlantError
from pumptwin.twin.safety import shorten

STEP_TOLERANCE = 1e-9
"""Fraction of a time step below which carried-over wait time is treated as a whole step."""
MAX_BUFFERED_READINGS = 1_000_000
"""Most readings `SimulatedController.take_readings` keeps waiting (about a week of the reference line
at 60-s steps, ~20 MB); older ones are dropped first."""
READING_COLUMNS = ("tag", "ts", "value", "quality")


class SimulatedController:
    """A `Controller` on the plant simulator.

    Example::

        ctl = SimulatedController(Plant(shipped_scenario("healthy_month")))
        ctl.apply(Write("PS01.P1", "speed", 0.93))
        ctl.speed_setpoint("PS01.P1")  # 0.93
        ctl.wait(600.0)
        ctl.read(["PS01.P1.FLOW"])  # {"PS01.P1.FLOW": 872.4}

    Args:
        plant: The simulated plant; the controller drives its time from now on.

    Attributes:
        readings_dropped: Readings drained from the plant but dropped from the full buffer before
            `take_readings` took them.
    """

    def __init__(self, plant: Plant) -> None:
        if not isinstance(plant, Plant):
            raise ControlError(f"a simulated controller needs a Plant, got {type(plant).__name__}")
        self._plant = plant
        self._known = frozenset(plant.registry.tag_names)
        self._latest: dict[str, tuple[int, float]] = {}  # tag -> (ts in ns, value)
        self._carry_s = 0.0
        self._buffer: list[pd.DataFrame] = []  # drained readings not yet taken, tag and quality as categories
        self._buffered = 0
        self.readings_dropped = 0

    def __repr__(self) -> str:
        return f"SimulatedController(plant={self._plant.scenario.name!r}, now={self._plant.now})"

    @property
    def plant(self) -> Plant:
        """The simulated plant."""
        return self._plant

    def ranges(self) -> dict[str, SpeedRange]:
        """Each pump's allowed relative speed range, from the plant's registry."""
        return {p.name: SpeedRange(p.min_speed, p.max_speed) for p in self._plant.registry.pumps}

    # ------------------------------------------------------------------ Controller

    def read(self, tags: Sequence[str]) -> dict[str, float]:
        """Latest good reading of each tag, in its engineering unit (NaN when none yet).

        Raises:
            ControlError: A tag the plant does not have.
        """
        if isinstance(tags, str):
            tags = [tags]
        unknown = [t for t in tags if t not in self._known]
        if unknown:
            raise ControlError(f"tag {shorten(unknown[0])} is not in the simulated plant")
        self._drain()
        return {t: self._latest[t][1] if t in self._latest else math.nan for t in tags}

    def speed_setpoint(self, pump: str) -> float:
        """The pump's speed setpoint in the control system, relative to rated.

        Raises:
            ControlError: An unknown pump.
        """
        return float(self._plant.operations.setpoint[self._index(pump)])

    def running(self, pump: str) -> bool:
        """Whether the control system has the pump running (commanded on; a trip turns it off).

        Raises:
            ControlError: An unknown pump.
        """
        return bool(self._plant.operations.on[self._index(pump)])

    def apply(self, write: Write) -> None:
        """Send one write and let the plant scan it (advance one time step).

        Raises:
            ControlError: A valve write, an unknown pump or kind, a speed that is not finite or
                outside the pump's range, or a write to a pump its protection tripped (locked out).
        """
        if write.kind == "valve":
            raise ControlError(f"valve {shorten(write.target)}: the simulated plant has no controllable valves")
        if write.kind not in ("speed", "start", "stop"):
            raise ControlError(f"{shorten(write.target)}: unknown write kind {shorten(write.kind)}")
        i = self._index(write.target)
        ops = self._plant.operations
        pump = self._plant.registry.pumps[i]
        if write.kind != "stop" and not ops.available[i]:
            raise ControlError(
                f"pump {write.target} tripped on a protection and is locked out: cannot {write.kind} it until reset"
            )
        if write.kind == "speed":
            value = float(write.value)
            if not (math.isfinite(value) and pump.min_speed <= value <= pump.max_speed):
                raise ControlError(
                    f"speed {value:g} for {write.target} is outside its range {pump.min_speed:g}..{pump.max_speed:g}"
                )
            tag, setpoint = f"{write.target}.SPEED_SP", value * pump.rated_speed_rpm
        else:
            tag, setpoint = f"{write.target}.STATUS", 1.0 if write.kind == "start" else 0.0
        try:
            self._plant.write_setpoint(tag, setpoint)
        except PlantError as exc:
            raise ControlError(f"{write.target}: {exc}") from None
        self._plant.advance(self._plant.step_s)  # the control system's scan

    def wait(self, seconds: float) -> None:
        """Advance the plant by ``seconds`` (whole steps; a remainder is carried to the next wait).

        Raises:
            ControlError: A negative or non-finite duration.
        """
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ControlError(f"cannot wait {seconds} s")
        step = self._plant.step_s
        total = self._carry_s + seconds
        n = math.floor(total / step + STEP_TOLERANCE)
        self._carry_s = max(total - n * step, 0.0)
        if n:
            self._plant.advance(n * step)

    def take_readings(self) -> pd.DataFrame:
        """Every reading drained from the plant since the last call, as the tag table in arrival order.

        Includes the readings that `read` drained (bad and questionable ones too) and any the plant
        produced since; `read` keeps working as before. At most `MAX_BUFFERED_READINGS` are kept
        between calls (the oldest are dropped first and counted in ``readings_dropped``).

        Returns:
            ``tag`` (str), ``ts`` (datetime64[ns, UTC]), ``value`` (float, engineering unit, NaN when
            bad) and ``quality``; empty (with these columns) when there is nothing new.
        """
        self._drain()
        frames = getattr(self, "_buffer", [])
        self._buffer, self._buffered = [], 0
        if not frames:
            return pd.DataFrame(
                {
                    "tag": pd.Series(dtype=object),
                    "ts": pd.Series(dtype="datetime64[ns, UTC]"),
                    "value": pd.Series(dtype=np.float64),
                    "quality": pd.Series(dtype=object),
                }
            )
        out = pd.concat(frames, ignore_index=True)
        return out.astype({"tag": object, "quality": object})[list(READING_COLUMNS)]

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path) -> None:
        """Write the controller and its plant to ``path`` atomically (temporary file, then rename).

        Raises:
            ControlError: The file cannot be written.
        """
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ControlError(f"cannot save the simulated plant to {path}: {exc.strerror or exc}") from None

    @classmethod
    def from_scenario(cls, name: str) -> SimulatedController:
        """A controller on a fresh plant of a scenario: a shipped name or a scenario YAML file.

        Raises:
            ControlError: The scenario cannot be read or built.
        """
        from pumptwin.plant.scenario import ScenarioError, read_scenario, shipped_scenario

        try:
            scenario = read_scenario(name) if name.endswith((".yaml", ".yml")) else shipped_scenario(name)
            return cls(Plant(scenario))
        except (ScenarioError, PlantError, OSError) as exc:
            raise ControlError(f"cannot build the simulated plant of scenario {name!r}: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> SimulatedController:
        """Read a controller written by `save` (a pickle: load only files this program wrote).

        Raises:
            ControlError: The file is missing, unreadable or holds something else.
        """
        path = Path(path)
        try:
            with path.open("rb") as f:
                obj = pickle.load(f)  # noqa: S301 - our own file, written by save
        except OSError as exc:
            raise ControlError(f"cannot load a simulated plant from {path}: {exc.strerror or exc}") from None
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as exc:
            raise ControlError(f"{path} is not a saved simulated plant: {exc}") from None
        if not isinstance(obj, cls):
            raise ControlError(f"{path} holds a {type(obj).__name__}, not a saved simulated plant")
        return obj

    # ------------------------------------------------------------------ helpers

    def _index(self, pump: str) -> int:
        try:
            return self._plant.registry.pump_index(pump)
        except ValueError:
            raise ControlError(f"no pump {shorten(pump)} in the simulated plant") from None

    def _drain(self) -> None:
        """Move readings since the last drain into the buffer and the cache of the latest good value per tag."""
        frame = self._plant.read_tags()
        if frame.empty:
            return
        self._keep(frame)
        values = frame["value"].to_numpy(dtype=np.float64)
        good = np.isfinite(values)
        if not good.any():
            return
        frame = frame.loc[good]
        frame = frame.assign(ns=pd.DatetimeIndex(frame["ts"]).as_unit("ns").asi8)
        last = frame.sort_values("ns", kind="stable").drop_duplicates("tag", keep="last")  # arrival order breaks ties
        for tag, t, v in zip(last["tag"], last["ns"], last["value"], strict=True):
            old = self._latest.get(tag)
            if old is None or t >= old[0]:
                self._latest[tag] = (int(t), float(v))

    def _keep(self, frame: pd.DataFrame) -> None:
        """Buffer drained readings for `take_readings`, dropping the oldest beyond `MAX_BUFFERED_READINGS`."""
        if not hasattr(self, "_buffer"):  # a controller saved before readings were buffered
            self._buffer, self._buffered, self.readings_dropped = [], 0, 0
        compact = frame[list(READING_COLUMNS)].astype({"tag": "category", "quality": "category"})
        self._buffer.append(compact.reset_index(drop=True))
        self._buffered += len(compact)
        while self._buffered > MAX_BUFFERED_READINGS:
            excess = self._buffered - MAX_BUFFERED_READINGS
            first = self._buffer[0]
            if len(first) <= excess:
                self._buffer.pop(0)
                cut = len(first)
            else:
                self._buffer[0] = first.iloc[excess:].reset_index(drop=True)
                cut = excess
            self._buffered -= cut
            self.readings_dropped += cut
