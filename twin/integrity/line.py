"""Integrity along the line: the pressure at each assessed feature against its safe pressure, and the derating.

The integrity flow assesses each in-line inspection feature (`twin.integrity.store.read_assessed`): its
safe pressure (gauge Pa) and its chainage on the line's main path. `integrity_limits` turns that
frame into `IntegrityLimits`, the arrays the what-ifs check against, with ``margin`` the share of
each safe pressure a scenario may use.

Pressure at a feature (`pressure_at_features`) is read off the steady profile along the main path by
linear interpolation in chainage between the path's nodes. That is exact here: between two nodes of
the path a pipe carries one flow, so its head falls linearly with length (the friction gradient is
constant along a pipe of constant flow and diameter), and the twin's elevation profile is itself
linear between profile nodes; so the pressure, head minus elevation times rho g, is linear too. At
a station, where the suction and discharge share one chainage, a feature takes the higher of the
two (the discharge side). A feature off the profile (beyond its ends by more than `END_TOLERANCE_M`)
is not checked.

`steady_excess` and `envelope_excess` give one `FeatureExcess` per feature over its usable safe
pressure, worst (highest pressure over limit) first, named ``<feature_id> (<pipe_id>, <km> km)``. At
most `MAX_LISTED` are listed; when more features are over, the last one listed says how many more
(``"... and 12 more"`` in its ``where``), so a report stays short on a badly corroded line. The
what-ifs (`twin.whatif.assess.steady_violations`, `twin.whatif.assess.envelope_violations`) turn
them into ``INTEGRITY`` violations; this package sits below the what-ifs and does not import them.

`derate` finds the largest throughput and the highest discharge pressure per station that keep
every feature at or below its usable safe pressure, from batched solves of the twin (`solve_batch`)
on a grid of common speed factors on the running pumps, then bracketing and refining the crossing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.solver import CLOSED, FloatArray, HydraulicModel, ScenarioBatch, base_batch, solve_batch
from pumptwin.twin.units import G_M_S2, M3H_PER_M3S, M_PER_KM, PA_PER_MPA

if TYPE_CHECKING:
    import pandas as pd

MAX_LISTED = 5
"""Features listed as violations per check; the last one listed counts the rest."""
END_TOLERANCE_M = 1.0
"""Distance beyond the ends of the profile within which a feature is still read at the end, m."""
GRID_FACTORS = tuple(np.round(np.linspace(0.25, 2.0, 36), 4))
"""Common speed factors of the first derating grid (step 0.05)."""
REFINE_POINTS = 17
"""Speed factors solved across a bracket in each refinement."""
REFINE_ROUNDS = 3
"""Refinements of a bracket (each divides it by ``REFINE_POINTS - 1``)."""
MIN_POINTS = 2
"""Fewest points of a profile or a bracket that can be interpolated."""
LIMIT_NAMES = ("integrity", "MAOP", "pump speed")
"""Limits `Derating.first_limit` may name."""


class MainPath(Protocol):
    """The line's main path as the derating reads it (`twin.whatif.path.LinePath` is one).

    Attributes:
        nodes: Node indices along the path, source first.
        forward: For each link, whether the path runs from its start to its end node.
        chainage_m: Chainage of each node, m.
        delivery_link: Index of the last link, whose flow along the path is the throughput.
    """

    @property
    def nodes(self) -> tuple[int, ...]: ...  # noqa: D102 - see the class docstring
    @property
    def forward(self) -> tuple[bool, ...]: ...  # noqa: D102
    @property
    def chainage_m(self) -> FloatArray: ...  # noqa: D102
    @property
    def delivery_link(self) -> int: ...  # noqa: D102


class LineCheckError(PumptwinError, ValueError):
    """An assessed-feature frame or margin the line checks cannot use; the message names it."""


@dataclass(frozen=True, eq=False)
class IntegrityLimits:
    """Usable safe pressures of the line's assessed features, in chainage order (compared by identity).

    Attributes:
        feature_ids: (F,) vendor feature ids.
        chainage_m: (F,) chainage along the line's main path, m.
        safe_pa: (F,) usable safe pressure, gauge Pa: the assessed safe pressure times ``margin``.
        pipe_ids: (F,) pipe of each feature.
        margin: Share of the assessed safe pressure that is usable (1.0: all of it).
        source: Where the assessment came from (file and time), for reports ("" when not known).
    """

    feature_ids: npt.NDArray[np.str_]
    chainage_m: FloatArray
    safe_pa: FloatArray
    pipe_ids: npt.NDArray[np.str_]
    margin: float = 1.0
    source: str = ""

    def __post_init__(self) -> None:
        n = len(self.feature_ids)
        if not (len(self.chainage_m) == len(self.safe_pa) == len(self.pipe_ids) == n):
            raise LineCheckError(
                f"integrity limits: arrays differ in length ({n}, {len(self.chainage_m)}, "
                f"{len(self.safe_pa)}, {len(self.pipe_ids)})"
            )
        if not 0 < self.margin <= 1.0:
            raise LineCheckError(f"integrity limits: margin must be in (0, 1], got {self.margin}")

    def __len__(self) -> int:
        """Number of features."""
        return len(self.feature_ids)

    @classmethod
    def empty(cls) -> IntegrityLimits:
        """No features: every check passes and nothing is derated."""
        return cls(np.array([], dtype=str), np.array([]), np.array([]), np.array([], dtype=str))

    def label(self, i: int) -> str:
        """How violation ``where`` names feature ``i``: ``<feature_id> (<pipe_id>, <km> km)``."""
        return f"{self.feature_ids[i]} ({self.pipe_ids[i]}, {self.chainage_m[i] / M_PER_KM:.1f} km)"


def integrity_limits(assessed: pd.DataFrame, margin: float = 1.0, *, source: str = "") -> IntegrityLimits:
    """The usable safe pressures of an assessed-feature frame.

    Args:
        assessed: Columns ``feature_id``, ``chainage_m`` (m), ``safe_pa`` (gauge Pa) and ``pipe_id``;
            rows without a finite safe pressure or chainage (dents, welds, features not mapped) are dropped;
            a negative safe pressure counts as zero (any pressure is over it).
        margin: Share of each safe pressure a scenario may use, in (0, 1].
        source: Where the assessment came from, for reports.

    Returns:
        The limits, sorted by chainage.

    Raises:
        LineCheckError: A missing column or a margin outside (0, 1].
    """
    missing = [c for c in ("feature_id", "chainage_m", "safe_pa", "pipe_id") if c not in assessed.columns]
    if missing:
        raise LineCheckError(f"assessed features: missing column(s) {', '.join(missing)}")
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and 0 < margin <= 1.0):
        raise LineCheckError(f"integrity margin must be in (0, 1], got {margin!r}")
    chain = np.asarray(assessed["chainage_m"], dtype=np.float64)
    safe = np.asarray(assessed["safe_pa"], dtype=np.float64)
    keep = np.isfinite(chain) & np.isfinite(safe)
    order = np.argsort(chain[keep], kind="stable")
    return IntegrityLimits(
        feature_ids=np.asarray(assessed["feature_id"].astype(str))[keep][order],
        chainage_m=chain[keep][order],
        safe_pa=np.maximum(safe[keep][order], 0.0) * margin,
        pipe_ids=np.asarray(assessed["pipe_id"].fillna("").astype(str))[keep][order],
        margin=float(margin),
        source=source,
    )


def _candidates(chainage_m: FloatArray, x_m: FloatArray) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    """Two (segment start index, weight) readings of each x on a piecewise-linear profile (NaN weight: none).

    One takes the segment that starts at or before x (the downstream side of a jump), the other the
    segment that ends at or after x (the upstream side); inside a segment both are the same.
    """
    c = np.asarray(chainage_m, dtype=np.float64)
    n = c.size
    x = np.clip(x_m, c[0], c[-1]) if n else x_m
    out = []
    for side in ("right", "left"):
        a = np.searchsorted(c, x, side=side) - 1
        valid = (a >= 0) & (a + 1 < n)
        a_safe = np.clip(a, 0, max(n - 2, 0))
        span = c[np.minimum(a_safe + 1, n - 1)] - c[a_safe] if n else np.zeros_like(x)
        valid &= span > 0
        w = np.where(valid, (x - c[a_safe]) / np.where(span > 0, span, 1.0), np.nan)
        out.append((a_safe.astype(np.int64), w))
    return out


def _profile_at(chainage_m: FloatArray, values: FloatArray, x_m: FloatArray) -> FloatArray:
    """Values of a piecewise-linear profile (..., N) at chainages x (F,): (..., F), the higher side at a jump.

    NaN where x is beyond the profile's ends by more than `END_TOLERANCE_M`.
    """
    c = np.asarray(chainage_m, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    x = np.asarray(x_m, dtype=np.float64)
    if c.size < MIN_POINTS or x.size == 0:
        return np.full((*v.shape[:-1], x.size), np.nan)
    reads = []
    for a, w in _candidates(c, x):
        wf = np.nan_to_num(w)
        val = v[..., a] * (1.0 - wf) + v[..., np.minimum(a + 1, c.size - 1)] * wf
        reads.append(np.where(np.isnan(w), -np.inf, val))
    out = np.maximum(reads[0], reads[1])
    off = (x < c[0] - END_TOLERANCE_M) | (x > c[-1] + END_TOLERANCE_M) | ~np.isfinite(out)
    return np.where(off, np.nan, out)


def pressure_at_features(limits: IntegrityLimits, chainage_km: FloatArray, pressure_mpa: FloatArray) -> FloatArray:
    """Steady pressure at each feature from a profile along the main path, MPa gauge.

    Linear interpolation in chainage between the profile's nodes (exact for the twin: see the module
    docstring); at a station the discharge side; NaN for a feature off the profile.

    Args:
        limits: The features.
        chainage_km: (N,) chainage of the profile's nodes, km (non-decreasing).
        pressure_mpa: (N,) or (B, N) gauge pressure at the nodes, MPa.

    Returns:
        (F,) or (B, F) pressure at each feature, MPa.
    """
    return _profile_at(np.asarray(chainage_km, dtype=np.float64) * M_PER_KM, pressure_mpa, limits.chainage_m)


@dataclass(frozen=True)
class FeatureExcess:
    """A feature whose pressure is above its usable safe pressure.

    Attributes:
        where: ``<feature_id> (<pipe_id>, <km> km)``; the last one listed of a capped list ends with
            ``and <n> more``.
        value_mpa: Pressure at the feature, MPa gauge.
        limit_mpa: Its usable safe pressure, MPa gauge.
    """

    where: str
    value_mpa: float
    limit_mpa: float


def over_limit(
    limits: IntegrityLimits, pressure_mpa: FloatArray, *, max_listed: int = MAX_LISTED
) -> tuple[FeatureExcess, ...]:
    """Features whose pressure is above their usable safe pressure, worst first (see the module docstring).

    Args:
        limits: The features.
        pressure_mpa: (F,) pressure at each feature, MPa gauge (NaN: not checked).
        max_listed: Most features listed; the last one listed counts the rest.

    Returns:
        One excess per feature over its limit, highest pressure over limit first.
    """
    limit_mpa = limits.safe_pa / PA_PER_MPA
    p = np.asarray(pressure_mpa, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        over = np.flatnonzero(np.isfinite(p) & (p > limit_mpa))
    if over.size == 0:
        return ()
    with np.errstate(divide="ignore"):
        ranked = over[np.argsort(-(p[over] / limit_mpa[over]), kind="stable")]
    shown = ranked[: max(max_listed, 1)]
    rest = ranked.size - shown.size
    out = []
    for n, i in enumerate(shown):
        where = limits.label(int(i))
        if rest and n == shown.size - 1:
            where += f" and {rest} more"
        out.append(FeatureExcess(where, float(p[i]), float(limit_mpa[i])))
    return tuple(out)


def steady_excess(
    limits: IntegrityLimits, chainage_km: FloatArray, pressure_mpa: FloatArray, *, max_listed: int = MAX_LISTED
) -> tuple[FeatureExcess, ...]:
    """Features whose steady pressure along a profile is above their usable safe pressure, worst first.

    Args:
        limits: The features.
        chainage_km: (N,) chainage of the profile's nodes along the main path, km.
        pressure_mpa: (N,) gauge pressure at the nodes, MPa.
        max_listed: Most features listed.
    """
    if len(limits) == 0:
        return ()
    return over_limit(limits, pressure_at_features(limits, chainage_km, pressure_mpa), max_listed=max_listed)


def envelope_excess(
    limits: IntegrityLimits, x_chainage_m: FloatArray, pressure_max_pa: FloatArray, *, max_listed: int = MAX_LISTED
) -> tuple[FeatureExcess, ...]:
    """Features on a simulated span whose transient pressure envelope passes their usable safe pressure.

    Args:
        limits: The features.
        x_chainage_m: (N,) line chainage of the transient grid's nodes, m (increasing).
        pressure_max_pa: (N,) highest transient pressure at the nodes, gauge Pa.
        max_listed: Most features listed.

    Returns:
        The excesses, worst first; features off the span are not checked.
    """
    x = np.asarray(x_chainage_m, dtype=np.float64)
    if len(limits) == 0 or x.size < MIN_POINTS:
        return ()
    on = (limits.chainage_m >= x[0]) & (limits.chainage_m <= x[-1])
    p = np.where(on, np.interp(limits.chainage_m, x, np.asarray(pressure_max_pa, dtype=np.float64)), np.nan)
    return over_limit(limits, p / PA_PER_MPA, max_listed=max_listed)


# --------------------------------------------------------------------------------------------
# Derating


@dataclass(frozen=True)
class Derating:
    """The largest throughput and station discharge pressures that keep every feature at or below its limit.

    Found by scaling the running pumps' speeds together from the base state (see `derate`).

    Attributes:
        throughput_m3h: Largest throughput keeping every feature safe, m3/h (NaN: no speed factor does).
        speed_factor: Common speed factor on the running pumps at that throughput (-).
        binding_feature: The feature that reaches its limit there (``<feature_id> (<pipe_id>, <km> km)``).
        binding_chainage_km: Its chainage, km.
        discharge_limit_mpa: Highest discharge pressure per station, MPa gauge: its discharge pressure
            at the derated throughput plus the least headroom of the features between it and the
            next station (NaN: no feature there).
        discharge_node: Discharge node of each station.
        current_throughput_m3h: Throughput of the base state, m3/h.
        maop_throughput_m3h: Throughput at which a pipe first reaches its MAOP, m3/h (NaN: not reached).
        speed_throughput_m3h: Throughput at which a running pump reaches its highest speed, m3/h.
        first_limit: Which of ``integrity``, ``MAOP`` and ``pump speed`` binds first (lowest throughput).
        features: Features checked.
        margin: Share of the safe pressure used.
        reached: Whether the integrity limit is reached within the speed factors tried.
        notes: How the derating was found or why it is not.
    """

    throughput_m3h: float
    speed_factor: float
    binding_feature: str
    binding_chainage_km: float
    discharge_limit_mpa: dict[str, float]
    discharge_node: dict[str, str]
    current_throughput_m3h: float
    maop_throughput_m3h: float
    speed_throughput_m3h: float
    first_limit: str
    features: int
    margin: float = 1.0
    reached: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN as None)."""

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "throughput_m3h": num(self.throughput_m3h),
            "speed_factor": num(self.speed_factor),
            "binding_feature": self.binding_feature,
            "binding_chainage_km": num(self.binding_chainage_km),
            "discharge_limit_mpa": {k: num(v) for k, v in self.discharge_limit_mpa.items()},
            "discharge_node": dict(self.discharge_node),
            "current_throughput_m3h": num(self.current_throughput_m3h),
            "maop_throughput_m3h": num(self.maop_throughput_m3h),
            "speed_throughput_m3h": num(self.speed_throughput_m3h),
            "first_limit": self.first_limit,
            "features": self.features,
            "margin": self.margin,
            "reached": self.reached,
            "notes": list(self.notes),
        }

    def to_lines(self) -> list[str]:
        """Markdown bullet lines of the derating."""

        def fmt(x: float, spec: str = ".0f") -> str:
            return format(x, spec) if math.isfinite(x) else "-"

        out = [
            f"- derated throughput {fmt(self.throughput_m3h)} m3/h (now {fmt(self.current_throughput_m3h)} m3/h, "
            f"common speed factor {fmt(self.speed_factor, '.3f')}), bound by {self.binding_feature or '-'}",
            f"- MAOP reached at {fmt(self.maop_throughput_m3h)} m3/h, pump speed limit at "
            f"{fmt(self.speed_throughput_m3h)} m3/h: {self.first_limit} binds first",
        ]
        for station, p in self.discharge_limit_mpa.items():
            out.append(f"- {station} discharge ({self.discharge_node.get(station, '')}) at most {fmt(p, '.2f')} MPa")
        out += [f"- note: {n}" for n in self.notes]
        return out


@dataclass(frozen=True)
class _Scan:
    """Batched solves at common speed factors: what the derating reads of each."""

    factors: FloatArray
    throughput_m3h: FloatArray
    path_pressure_mpa: FloatArray
    maop_use: FloatArray
    ok: npt.NDArray[np.bool_]


def _scan(
    model: HydraulicModel,
    base: ScenarioBatch,
    path: MainPath,
    factors: FloatArray,
    accuracy: float,
    max_maop_use: float,
) -> _Scan:
    """Solve the base row with every running pump's speed times each factor."""
    from pumptwin.twin.hydraulic.metrics import line_metrics

    grid = base.take(np.zeros(factors.size, dtype=np.int64))
    grid.pump_speed *= factors[:, None]
    sol = solve_batch(model, grid, accuracy=accuracy)
    rho_g = model.network.fluid.density_kg_m3 * G_M_S2
    nodes = np.array(path.nodes)
    sign = 1.0 if path.forward[-1] else -1.0
    pressure = (sol.head_m[:, nodes] - model.elevation_m[nodes]) * rho_g / PA_PER_MPA
    lm = line_metrics(model, sol.head_m)
    with np.errstate(invalid="ignore", divide="ignore"):
        use = lm.pipe_max_pressure_pa / (lm.maop_pa * max_maop_use)
    maop_use = np.nanmax(np.where(np.isfinite(use), use, -np.inf), axis=1) if use.shape[1] else np.zeros(factors.size)
    return _Scan(factors, sign * sol.flow_m3s[:, path.delivery_link] * M3H_PER_M3S, pressure, maop_use, sol.converged)


def _crossing(
    model: HydraulicModel,
    base: ScenarioBatch,
    path: MainPath,
    accuracy: float,
    max_maop_use: float,
    use_of: Callable[[_Scan], FloatArray],
) -> tuple[float, bool]:
    """The speed factor at which a utilisation (``use_of``: 1 at the limit) first reaches 1 going up.

    Returns:
        (factor, reached): NaN and False when it is over 1 already at the lowest factor, the highest
        factor and False when it stays below 1 on the whole grid.
    """
    factors = np.array(GRID_FACTORS)
    scan = _scan(model, base, path, factors, accuracy, max_maop_use)
    use = np.where(scan.ok, use_of(scan), np.nan)
    good = np.isfinite(use)
    f, u = factors[good], use[good]
    if f.size == 0 or u[0] > 1.0:
        return math.nan, False
    over = np.flatnonzero(u > 1.0)
    if over.size == 0:
        return float(f[-1]), False
    lo, hi = float(f[over[0] - 1]), float(f[over[0]])
    u_lo, u_hi = float(u[over[0] - 1]), float(u[over[0]])
    for _ in range(REFINE_ROUNDS):
        sub = np.linspace(lo, hi, REFINE_POINTS)
        s = _scan(model, base, path, sub, accuracy, max_maop_use)
        su = np.where(s.ok, use_of(s), np.nan)
        keep = np.isfinite(su)
        sf, su = sub[keep], su[keep]
        k = np.flatnonzero(su > 1.0)
        if sf.size < MIN_POINTS or k.size == 0 or k[0] == 0:
            break
        lo, hi, u_lo, u_hi = float(sf[k[0] - 1]), float(sf[k[0]]), float(su[k[0] - 1]), float(su[k[0]])
    factor = lo + (hi - lo) * (1.0 - u_lo) / (u_hi - u_lo) if u_hi > u_lo else lo
    return float(np.clip(factor, lo, hi)), True


def _stations(model: HydraulicModel, base: ScenarioBatch, path: MainPath) -> list[tuple[str, int, int]]:
    """Running stations on the main path: (name, discharge node, its index on the path), in path order."""
    net = model.network
    running = (base.link_status[0, model.pump_link] != CLOSED) & (base.pump_speed[0] > 0)
    found: dict[str, tuple[int, int]] = {}
    for i, pump in enumerate(net.pumps):
        node = model.node_index[pump.end]
        if running[i] and node in path.nodes:
            found.setdefault(pump.station or pump.id, (node, path.nodes.index(node)))
    return sorted(((s, n, k) for s, (n, k) in found.items()), key=lambda t: t[2])


def derate(  # noqa: PLR0913, PLR0915 - one search with its reporting
    model: HydraulicModel,
    limits: IntegrityLimits,
    *,
    path: MainPath,
    base: ScenarioBatch | None = None,
    accuracy: float = 1e-6,
    max_maop_use: float = 1.0,
) -> Derating:
    """The largest throughput and the highest station discharge pressures that keep every feature safe.

    The running pumps' speeds are scaled together from the base state, as a throughput target of a
    what-if is (`twin.whatif.engine`): a first batched solve over `GRID_FACTORS` finds the first
    factor, going up, at which some feature passes its usable safe pressure; `REFINE_ROUNDS` batched
    solves of `REFINE_POINTS` factors across the bracket narrow it (to about 2e-4 in speed factor),
    and the crossing is interpolated linearly between its ends; one last solve at that factor gives
    the throughput, the binding feature and the pressures. The same search gives the throughput at
    which a pipe reaches its MAOP (times ``max_maop_use``); the pump speed limit is the factor at
    which the first running pump reaches its highest speed.

    A station's highest discharge pressure is its discharge pressure at the derated throughput plus
    the least headroom (usable safe pressure minus pressure) of the features between its discharge
    and the next station on the main path: raising a station's discharge pressure at that flow
    raises the pressure of its whole segment by as much.

    Args:
        model: Compiled network.
        limits: The features.
        path: The line's main path (`twin.whatif.path.main_path`; the what-ifs sit above this
            package, so the caller passes it).
        base: Base operating state, one row (default: the network's own).
        accuracy: Solver convergence limit.
        max_maop_use: Highest pressure as a fraction of MAOP, for the MAOP comparison.

    Returns:
        The derating.
    """
    base = base if base is not None else base_batch(model)
    base = base.take(np.array([0]))
    chain_km = path.chainage_m / M_PER_KM
    stations = _stations(model, base, path)
    limit_mpa = limits.safe_pa / PA_PER_MPA
    notes: list[str] = []
    now = _scan(model, base, path, np.array([1.0]), accuracy, max_maop_use)
    current = float(now.throughput_m3h[0])

    def feature_use(s: _Scan) -> FloatArray:
        p = pressure_at_features(limits, chain_km, s.path_pressure_mpa)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = p / limit_mpa
        return np.asarray(np.nanmax(np.where(np.isfinite(r), r, -np.inf), axis=1), dtype=np.float64)

    def maop_use(s: _Scan) -> FloatArray:
        return s.maop_use

    def throughput_at(factor: float) -> float:
        if not math.isfinite(factor):
            return math.nan
        return float(_scan(model, base, path, np.array([factor]), accuracy, max_maop_use).throughput_m3h[0])

    run = (base.link_status[0, model.pump_link] != CLOSED) & (base.pump_speed[0] > 0)
    max_speed = np.array([p.max_speed for p in model.network.pumps])
    speed_factor_limit = float(np.min(max_speed[run] / base.pump_speed[0, run])) if run.any() else math.nan
    speed_thr = throughput_at(speed_factor_limit)
    maop_factor, maop_reached = _crossing(model, base, path, accuracy, max_maop_use, maop_use)
    maop_thr = throughput_at(maop_factor) if maop_reached else math.nan
    on_profile = np.isfinite(pressure_at_features(limits, chain_km, now.path_pressure_mpa[0]))
    if len(limits) and not on_profile.all():
        notes.append(f"{int((~on_profile).sum())} feature(s) off the main path's profile, not checked")
    if not on_profile.any():
        notes.append("no feature on the main path: nothing to derate")
        return Derating(
            math.nan, math.nan, "", math.nan, {s: math.nan for s, _, _ in stations},
            {s: model.node_ids[n] for s, n, _ in stations}, current, maop_thr, speed_thr,
            _first(math.inf, maop_thr, speed_thr), len(limits), limits.margin, False, tuple(notes),
        )  # fmt: skip
    factor, reached = _crossing(model, base, path, accuracy, max_maop_use, feature_use)
    if not math.isfinite(factor):
        notes.append(f"a feature is over its safe pressure even at speed factor {GRID_FACTORS[0]:g}")
    elif not reached:
        notes.append(f"no feature reaches its safe pressure up to speed factor {GRID_FACTORS[-1]:g}")
    at = _scan(model, base, path, np.array([factor if math.isfinite(factor) else GRID_FACTORS[0]]), accuracy, 1.0)
    p_feat = pressure_at_features(limits, chain_km, at.path_pressure_mpa[0])
    headroom = limit_mpa - p_feat
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(np.isfinite(headroom), headroom / limit_mpa, np.inf)
    binding = int(np.argmin(np.where(np.isnan(relative), -np.inf, relative)))
    discharge: dict[str, float] = {}
    bounds = [path.chainage_m[k] for _, _, k in stations] + [math.inf]
    for (station, _, k), end in zip(stations, bounds[1:], strict=True):
        seg = (limits.chainage_m >= path.chainage_m[k]) & (limits.chainage_m < end) & np.isfinite(headroom)
        discharge[station] = (
            float(at.path_pressure_mpa[0, k] + np.min(headroom[seg]))
            if seg.any() and math.isfinite(factor)
            else math.nan
        )
    thr = float(at.throughput_m3h[0]) if math.isfinite(factor) else math.nan
    return Derating(
        throughput_m3h=thr,
        speed_factor=factor,
        binding_feature=limits.label(binding),
        binding_chainage_km=float(limits.chainage_m[binding]) / M_PER_KM,
        discharge_limit_mpa=discharge,
        discharge_node={s: model.node_ids[n] for s, n, _ in stations},
        current_throughput_m3h=current,
        maop_throughput_m3h=maop_thr,
        speed_throughput_m3h=speed_thr,
        first_limit=_first(thr if reached else math.inf, maop_thr, speed_thr) if math.isfinite(factor) else "integrity",
        features=len(limits),
        margin=limits.margin,
        reached=reached,
        notes=tuple(notes),
    )


def _first(integrity_m3h: float, maop_m3h: float, speed_m3h: float) -> str:
    """Which limit binds at the lowest throughput (NaN and inf: not reached); ties go to integrity."""
    values: Sequence[float] = (integrity_m3h, maop_m3h, speed_m3h)
    finite = [(v, i) for i, v in enumerate(values) if math.isfinite(v)]
    if not finite:
        return "none"
    return LIMIT_NAMES[min(finite)[1]]
