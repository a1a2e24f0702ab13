"""Sensor realism: what a historian records when instruments measure the true values.

`apply_sensors` turns a block of true values (K time steps x T tags, engineering units) into PI
style readings ``(tag, ts, value, quality)``. In order, it applies:

1. **Sampling** per tag: a tag reports every ``sample_period_s`` (rounded up to whole steps).
2. **Drift**: a share of tags drifts linearly from the plant's start.
3. **Noise** (absolute plus relative, Gaussian), the transmitter's **range** (clipping) and
   **quantisation** to the instrument's resolution.
4. **Stuck values**: episodes in which a tag repeats one value (quality stays good).
5. **Spikes**: single readings far off the true value (quality stays good).
6. **Quality flags**: questionable, bad (value NaN, as for "I/O Timeout") and substituted
   (value held from the previous reading), each at its rate; the rest are good.
7. **Communication outages** (every tag of a station missing for a while) and **dropouts**
   (single missing readings).
8. **Duplicates** (a reading sent twice with the same timestamp) and **out-of-order** arrival
   (a reading delivered after the tag's next readings).

All randomness comes from the generator passed in, so a seeded generator gives the same
readings. Rates are per scheduled reading unless their name says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from pumptwin.twin.assets import TagSpec
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.units import DAY_S

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

QUALITY_NAMES: tuple[str, ...] = ("good", "questionable", "bad", "substituted")
"""PI quality flags, indexed by quality code."""
GOOD, QUESTIONABLE, BAD, SUBSTITUTED = 0, 1, 2, 3
OUT_OF_ORDER_MAX_PERIODS = 3


class SensorError(PumptwinError, ValueError):
    """Invalid sensor configuration; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Characteristic:
    """An instrument's accuracy, in the tag's engineering unit.

    Attributes:
        noise_abs: Standard deviation of absolute noise.
        noise_rel: Standard deviation of noise relative to the value (fraction).
        resolution: Quantisation step (0: none).
    """

    noise_abs: float
    noise_rel: float
    resolution: float


CHARACTERISTICS: dict[str, Characteristic] = {
    "SUCT_PRESS": Characteristic(0.01, 0.0, 0.01),
    "DISCH_PRESS": Characteristic(0.03, 0.0, 0.01),
    "FLOW": Characteristic(2.0, 0.003, 0.1),
    "SPEED": Characteristic(1.0, 0.0, 1.0),
    "SPEED_SP": Characteristic(0.0, 0.0, 1.0),
    "MOTOR_CURRENT": Characteristic(0.3, 0.003, 0.1),
    "MOTOR_POWER": Characteristic(1.0, 0.003, 0.1),
    "VIB_DE_RMS": Characteristic(0.03, 0.03, 0.01),
    "VIB_NDE_RMS": Characteristic(0.03, 0.03, 0.01),
    "BRG_DE_TEMP": Characteristic(0.15, 0.0, 0.1),
    "BRG_NDE_TEMP": Characteristic(0.15, 0.0, 0.1),
    "MOTOR_WINDING_TEMP": Characteristic(0.3, 0.0, 0.1),
    "SEAL_LEAK": Characteristic(0.01, 0.05, 0.01),
    "STRAINER_DP": Characteristic(0.003, 0.01, 0.001),
    "STATUS": Characteristic(0.0, 0.0, 1.0),
    "AMBIENT_TEMP": Characteristic(0.1, 0.0, 0.1),
    "PRESS": Characteristic(0.02, 0.0, 0.01),
}
"""Instrument accuracy per measure (line ``FLOW`` meters use the pump ``FLOW`` entry)."""


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """How imperfect the instruments and the data path are (rates are fractions of scheduled readings).

    Attributes:
        noise_scale: Multiplier on every instrument's noise (0: noiseless).
        quantise: Round values to the instrument resolution.
        drift_fraction: Share of tags that drift.
        drift_per_day: Standard deviation of a drifting tag's drift, fraction of its range per day.
        stuck_per_tag_day: Stuck episodes per tag per day.
        stuck_mean_s: Mean length of a stuck episode, s.
        outage_per_station_day: Communication outages per station per day.
        outage_mean_s: Mean length of an outage, s.
        dropout_rate: Single readings that never arrive.
        spike_rate: Readings replaced by a spike.
        duplicate_rate: Readings delivered twice with the same timestamp.
        out_of_order_rate: Readings delivered after the tag's later readings.
        questionable_rate: Readings flagged questionable.
        bad_rate: Readings flagged bad (value NaN).
        substituted_rate: Readings flagged substituted (value held from the previous reading).
    """

    noise_scale: float = 1.0
    quantise: bool = True
    drift_fraction: float = 0.05
    drift_per_day: float = 0.002
    stuck_per_tag_day: float = 0.01
    stuck_mean_s: float = 3600.0
    outage_per_station_day: float = 0.02
    outage_mean_s: float = 900.0
    dropout_rate: float = 0.001
    spike_rate: float = 1e-4
    duplicate_rate: float = 5e-4
    out_of_order_rate: float = 2e-4
    questionable_rate: float = 5e-4
    bad_rate: float = 5e-4
    substituted_rate: float = 2e-4

    def __post_init__(self) -> None:
        """Check every setting is finite and >= 0, and rates are fractions."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                continue
            if not (math.isfinite(value) and value >= 0):
                raise SensorError(f"sensor setting {f.name} must be a finite number >= 0, got {value}")
            if (f.name.endswith("_rate") or f.name == "drift_fraction") and value > 1:
                raise SensorError(f"sensor setting {f.name} is a fraction; got {value}")
        if self.questionable_rate + self.bad_rate + self.substituted_rate > 1:
            raise SensorError("questionable, bad and substituted rates add up to more than 1")
        if self.stuck_mean_s <= 0 or self.outage_mean_s <= 0:
            raise SensorError("mean episode lengths must be > 0 s")

    @classmethod
    def ideal(cls) -> SensorConfig:
        """Perfect instruments and data path: readings equal the true values."""
        zero: dict[str, Any] = {f.name: 0.0 for f in fields(cls)}
        return cls(**{**zero, "quantise": False, "stuck_mean_s": 1.0, "outage_mean_s": 1.0})


@dataclass(frozen=True, slots=True, eq=False)
class TagTable:
    """Per-tag instrument constants as arrays of shape (T,), ready for `apply_sensors`.

    Attributes:
        names: Tag names.
        station: Station index of each tag (for communication outages).
        low, high: Transmitter range in the tag's unit.
        noise_abs, noise_rel, resolution: Instrument accuracy (`Characteristic`), noise scaled.
        period_steps: Sampling period in whole time steps (>= 1).
        drift_per_s: Drift rate in unit/s (0 for most tags).
        can_spike: Whether the tag can spike (analogue measurements).
    """

    names: tuple[str, ...]
    station: IntArray
    low: FloatArray
    high: FloatArray
    noise_abs: FloatArray
    noise_rel: FloatArray
    resolution: FloatArray
    period_steps: IntArray
    drift_per_s: FloatArray
    can_spike: NDArray[np.bool_]

    @property
    def size(self) -> int:
        """Number of tags T."""
        return len(self.names)

    @property
    def n_stations(self) -> int:
        """Number of distinct stations."""
        return int(self.station.max()) + 1 if self.station.size else 0


def tag_table(specs: Sequence[TagSpec], step_s: float, config: SensorConfig, rng: np.random.Generator) -> TagTable:
    """Instrument constants of every tag, with the drifting tags and their rates drawn from ``rng``.

    Args:
        specs: Tags in the order the true-value columns come.
        step_s: Simulation time step in s; periods round up to whole steps.
        config: Sensor settings.
        rng: Random generator.
    """
    stations: dict[str, int] = {}
    st = np.array([stations.setdefault(s.station, len(stations)) for s in specs], dtype=np.int64)
    chars = [CHARACTERISTICS.get(s.measure, Characteristic(0.0, 0.0, 0.0)) for s in specs]
    low = np.array([s.low for s in specs], dtype=np.float64)
    high = np.array([s.high for s in specs], dtype=np.float64)
    noise_abs = np.array([c.noise_abs for c in chars]) * config.noise_scale
    noise_rel = np.array([c.noise_rel for c in chars]) * config.noise_scale
    resolution = np.array([c.resolution for c in chars]) if config.quantise else np.zeros(len(specs))
    analogue = np.array([c.noise_abs + c.noise_rel > 0 for c in chars], dtype=bool)
    period = np.array([max(1, math.ceil(s.sample_period_s / step_s - 1e-9)) for s in specs], dtype=np.int64)
    drifting = analogue & (rng.random(len(specs)) < config.drift_fraction)
    drift = np.where(drifting, rng.normal(0.0, config.drift_per_day, len(specs)) * (high - low) / DAY_S, 0.0)
    return TagTable(
        tuple(s.tag for s in specs), st, low, high, noise_abs, noise_rel, resolution, period, drift, analogue
    )


@dataclass(frozen=True, slots=True, eq=False)
class SensorState:
    """What the data path remembers between blocks.

    Attributes:
        stuck_until: (T,) global step at which each tag's stuck episode ends (-1: not stuck).
        stuck_value: (T,) the value a stuck tag repeats.
        outage_until: (n_stations,) global step at which each station's outage ends (-1: none).
        last_value: (T,) each tag's latest reading (for substituted values).
    """

    stuck_until: IntArray
    stuck_value: FloatArray
    outage_until: IntArray
    last_value: FloatArray

    @classmethod
    def initial(cls, table: TagTable) -> SensorState:
        """No episode running, no reading yet."""
        t = table.size
        return cls(np.full(t, -1, np.int64), np.zeros(t), np.full(table.n_stations, -1, np.int64), np.full(t, np.nan))


@dataclass(frozen=True, slots=True, eq=False)
class ReadingBlock:
    """Readings in arrival order, as arrays of equal length.

    Attributes:
        tag: Tag index (into `TagTable.names`).
        ts_ns: Timestamp, ns since the Unix epoch (UTC).
        value: Value in the tag's unit (NaN for bad readings).
        quality: Quality code (index into `QUALITY_NAMES`).
    """

    tag: NDArray[np.int32]
    ts_ns: IntArray
    value: FloatArray
    quality: NDArray[np.int8]

    @property
    def size(self) -> int:
        """Number of readings."""
        return int(self.tag.size)

    @classmethod
    def empty(cls) -> ReadingBlock:
        """No readings."""
        return cls(np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int8))

    @classmethod
    def concat(cls, blocks: Sequence[ReadingBlock]) -> ReadingBlock:
        """The blocks one after the other."""
        if not blocks:
            return cls.empty()
        if len(blocks) == 1:
            return blocks[0]
        return cls(*(np.concatenate([getattr(b, f.name) for b in blocks]) for f in fields(cls)))


def _choose(rng: np.random.Generator, n: int, rate: float) -> IntArray:
    """Distinct random indices below n, each picked with probability ``rate`` (sorted)."""
    if rate <= 0 or n == 0:
        return np.zeros(0, np.int64)
    m = int(rng.binomial(n, min(rate, 1.0)))
    return np.sort(rng.choice(n, size=m, replace=False)).astype(np.int64)


def _episodes(
    rng: np.random.Generator, n_units: int, k: int, rate_per_step: float, mean_steps: float
) -> tuple[IntArray, IntArray, IntArray]:
    """Random episodes (unit, start step, length in steps >= 1) starting within k steps."""
    m = int(rng.poisson(rate_per_step * k * n_units)) if rate_per_step > 0 and n_units else 0
    unit = rng.integers(0, max(n_units, 1), m)
    start = rng.integers(0, k, m)
    length = 1 + rng.exponential(mean_steps, m).astype(np.int64)
    order = np.argsort(start, kind="stable")
    return unit[order], start[order], length[order]


def apply_sensors(
    true_values: FloatArray,
    k0: int,
    start_ns: int,
    step_s: float,
    table: TagTable,
    config: SensorConfig,
    state: SensorState,
    rng: np.random.Generator,
) -> tuple[ReadingBlock, SensorState]:
    """Readings of a block of K time steps.

    Args:
        true_values: (K, T) true values in each tag's unit at steps k0 .. k0 + K - 1.
        k0: Global index of the block's first step (step 0 is the plant's start).
        start_ns: The plant's start time, ns since the Unix epoch (UTC).
        step_s: Time step in s.
        table: Per-tag constants (T tags, in the columns' order).
        config: Sensor settings.
        state: Episodes and last readings carried from the previous block.
        rng: Random generator.

    Returns:
        The readings in arrival order, and the state to pass to the next block.
    """
    k_n, t_n = true_values.shape
    if t_n != table.size:
        raise SensorError(f"true values have {t_n} columns but the tag table has {table.size} tags")
    steps = k0 + np.arange(k_n, dtype=np.int64)
    sampled = (steps[:, None] % table.period_steps[None, :]) == 0
    kk, tt = np.nonzero(sampled)
    n = kk.size
    pos = np.full((k_n, t_n), -1, np.int64)
    pos[kk, tt] = np.arange(n)
    v = true_values[kk, tt].astype(np.float64, copy=True)
    if np.any(table.drift_per_s):
        v += table.drift_per_s[tt] * (steps[kk] * step_s)
    if config.noise_scale > 0:
        sd = table.noise_abs[tt] + table.noise_rel[tt] * np.abs(v)
        v += sd * rng.standard_normal(n)
    np.clip(v, table.low[tt], table.high[tt], out=v)
    if config.quantise:
        res = table.resolution[tt]
        safe = np.where(res > 0, res, 1.0)
        v = np.where(res > 0, np.round(v / safe) * safe, v)
    stuck_until, stuck_value = state.stuck_until.copy(), state.stuck_value.copy()
    _apply_stuck(v, pos, k0, step_s, config, stuck_until, stuck_value, rng)
    spikes = _choose(rng, n, config.spike_rate)
    spikes = spikes[table.can_spike[tt[spikes]]]
    if spikes.size:
        span = table.high[tt[spikes]] - table.low[tt[spikes]]
        sign = rng.choice(np.array([-1.0, 1.0]), spikes.size)
        v[spikes] += sign * rng.uniform(0.2, 1.0, spikes.size) * span
    quality = np.zeros(n, np.int8)
    _apply_quality(v, quality, kk, tt, pos, table, config, state, rng)
    keep = np.ones(n, dtype=bool)
    outage_until = state.outage_until.copy()
    _apply_outages(keep, pos, k0, step_s, table, config, outage_until, rng)
    keep[_choose(rng, n, config.dropout_rate)] = False
    counts = keep.astype(np.int64)
    counts[_choose(rng, n, config.duplicate_rate)] *= 2
    order = _out_of_order(np.arange(n), kk, tt, pos, table, config, rng)
    rows = np.repeat(order, counts[order])
    step_ns = round(step_s * 1e9)
    block = ReadingBlock(
        tag=tt[rows].astype(np.int32),
        ts_ns=start_ns + steps[kk[rows]] * step_ns,
        value=v[rows],
        quality=quality[rows],
    )
    last = state.last_value.copy()
    last_k = k_n - 1 - ((k0 + k_n - 1) % table.period_steps)
    has = last_k >= 0
    last[has] = v[pos[last_k[has], np.flatnonzero(has)]]
    return block, SensorState(stuck_until, stuck_value, outage_until, last)


def _apply_stuck(
    v: FloatArray,
    pos: IntArray,
    k0: int,
    step_s: float,
    config: SensorConfig,
    stuck_until: IntArray,
    stuck_value: FloatArray,
    rng: np.random.Generator,
) -> None:
    """Freeze tags during stuck episodes (carried and new), updating the episode state in place."""
    k_n, t_n = pos.shape
    for t in np.flatnonzero(stuck_until > k0):
        rows = pos[: min(k_n, int(stuck_until[t]) - k0), t]
        v[rows[rows >= 0]] = stuck_value[t]
    rate = config.stuck_per_tag_day * step_s / DAY_S
    for t, start, length in zip(*_episodes(rng, t_n, k_n, rate, config.stuck_mean_s / step_s), strict=True):
        if stuck_until[t] > k0 + start:
            continue
        rows = pos[start : start + length, t]
        rows = rows[rows >= 0]
        if rows.size == 0:
            continue
        v[rows] = v[rows[0]]
        stuck_until[t] = k0 + start + length
        stuck_value[t] = v[rows[0]]


def _apply_quality(
    v: FloatArray,
    quality: NDArray[np.int8],
    kk: IntArray,
    tt: IntArray,
    pos: IntArray,
    table: TagTable,
    config: SensorConfig,
    state: SensorState,
    rng: np.random.Generator,
) -> None:
    """Flag questionable, bad (NaN) and substituted (held) readings in place; the sets are disjoint."""
    n = v.size
    total = config.questionable_rate + config.bad_rate + config.substituted_rate
    chosen = _choose(rng, n, total)
    if chosen.size == 0:
        return
    u = rng.random(chosen.size) * total
    questionable = chosen[u < config.questionable_rate]
    bad = chosen[(u >= config.questionable_rate) & (u < config.questionable_rate + config.bad_rate)]
    subst = chosen[u >= config.questionable_rate + config.bad_rate]
    quality[questionable] = QUESTIONABLE
    if subst.size:
        prev_k = kk[subst] - table.period_steps[tt[subst]]
        prev_row = np.where(prev_k >= 0, pos[np.maximum(prev_k, 0), tt[subst]], -1)
        held = np.where(prev_row >= 0, v[np.maximum(prev_row, 0)], state.last_value[tt[subst]])
        ok = np.isfinite(held)
        v[subst[ok]] = held[ok]
        quality[subst[ok]] = SUBSTITUTED
    quality[bad] = BAD
    v[bad] = np.nan


def _apply_outages(
    keep: NDArray[np.bool_],
    pos: IntArray,
    k0: int,
    step_s: float,
    table: TagTable,
    config: SensorConfig,
    outage_until: IntArray,
    rng: np.random.Generator,
) -> None:
    """Drop every reading of a station during its communication outages (carried and new)."""
    k_n = pos.shape[0]
    for s in np.flatnonzero(outage_until > k0):
        rows = pos[: min(k_n, int(outage_until[s]) - k0)][:, table.station == s]
        keep[rows[rows >= 0]] = False
    rate = config.outage_per_station_day * step_s / DAY_S
    for s, start, length in zip(
        *_episodes(rng, table.n_stations, k_n, rate, config.outage_mean_s / step_s), strict=True
    ):
        rows = pos[start : start + length][:, table.station == s]
        keep[rows[rows >= 0]] = False
        outage_until[s] = max(int(outage_until[s]), k0 + int(start) + int(length))


def _out_of_order(
    order: IntArray,
    kk: IntArray,
    tt: IntArray,
    pos: IntArray,
    table: TagTable,
    config: SensorConfig,
    rng: np.random.Generator,
) -> IntArray:
    """Move some readings to just after one of the same tag's next 1-3 readings (late delivery)."""
    movers = _choose(rng, order.size, config.out_of_order_rate)
    if movers.size == 0:
        return order
    k_n = pos.shape[0]
    periods = table.period_steps[tt[movers]]
    later_k = kk[movers] + periods * rng.integers(1, OUT_OF_ORDER_MAX_PERIODS + 1, movers.size)
    ok = later_k < k_n
    movers, later_k = movers[ok], later_k[ok]
    if movers.size == 0:
        return order
    target = pos[later_k, tt[movers]]
    rest = np.delete(order, movers)
    at = np.searchsorted(rest, target, side="right")
    return np.insert(rest, at, movers)


def utc_timestamps(ts_ns: IntArray) -> pd.api.extensions.ExtensionArray:
    """Timestamps (datetime64[ns, UTC]) from ns since the Unix epoch, without a copy of the input order."""
    return pd.array(np.asarray(ts_ns, dtype=np.int64).view("datetime64[ns]"), dtype="datetime64[ns]").tz_localize("UTC")


def readings_frame(block: ReadingBlock, names: Sequence[str]) -> pd.DataFrame:
    """Readings as the project's tag table: ``tag`` (str), ``ts`` (datetime64[ns, UTC]), ``value``, ``quality``.

    Example::

        tag                  ts                         value  quality
        PS01.P1.VIB_DE_RMS   2024-01-01 00:00:00+00:00  1.23   good
        PS01.P1.FLOW         2024-01-01 00:00:00+00:00  NaN    bad
    """
    tag = np.asarray(names, dtype=object)[block.tag]
    quality = np.asarray(QUALITY_NAMES, dtype=object)[block.quality]
    ts = utc_timestamps(block.ts_ns)
    return pd.DataFrame({"tag": tag, "ts": ts, "value": block.value, "quality": quality}, copy=False)
