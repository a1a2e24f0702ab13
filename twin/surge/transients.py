"""Surge (water hammer) in a single pipeline by the method of characteristics.

Model. One-dimensional unsteady flow in an elastic pipe, in head H (m) and flow
Q (m3/s): along dx/dt = +a the C+ characteristic gives H_P = C_P - B_P Q_P, along
dx/dt = -a the C- characteristic gives H_P = C_M + B_M Q_P, with B = a / (g A).
The line is a chain of pipes (`Reach`); each pipe is cut into reaches of
length a dt, so the Courant number is exactly 1 in every reach. For one time
step dt the number of reaches per pipe is round(L / (a dt)) and each pipe's
wave speed is adjusted to L / (n dt); `discretise` picks the largest dt at or
below the requested spacing for which no wave speed moves by more than
``wave_speed_tolerance`` (default 1 %) and reports the largest adjustment.
Pipes meet at shared grid nodes (one head, one flow: no minor loss there).

Friction. Steady Darcy-Weisbach friction, f constant in time (the value at the
initial flow), integrated with the linearised form R Q_P |Q_A| (Wylie and
Streeter): B_P = B + R |Q_A|, C_P = H_A + B Q_A with R = f dx / (2 g D A^2). It
keeps the steady state exactly (H_P = H_A - R Q |Q|) and stays stable for long,
high-friction lines where the explicit term R Q_A |Q_A| does not.

Column separation. Discrete vapour cavity model (DVCM) at the grid nodes: where
the head would fall below the vapour head z + (p_v - p_atm) / (rho g), it is
clamped there, the flows on the two sides of the node are taken from their own
characteristics and the cavity volume grows by dt (Q_out - Q_in) (fully implicit
weighting, psi = 1); the cavity collapses when its volume returns to zero, and
the node goes back to the ordinary solution. Collapse pressure spikes are only
as accurate as the DVCM.

Boundaries. Upstream: a `Reservoir` or a `PumpStation` (N identical pumps in
parallel from a constant-head suction, head s^2 h0 - r s^(2-n) (Q/N)^n from
`twin.pumps.HeadCurve`; on a trip the speed runs down by the torque balance
I omega_R^2 s ds/dt = -P_shaft with P_shaft = rho g q h / eta, eta from the
pump's efficiency curve by affinity; a check valve closes instantly when the
pump can no longer push forward and reopens when it can; station piping
losses are neglected; the speed is advanced once per step with the torque of
the last solution, as ds/dt = -c s^2 with c frozen over the step, which keeps it
positive; the run-down ends at 1 % speed). Downstream: a
`Reservoir`, a `Valve` discharging to a constant head with the closure law
tau(t) = (1 - (t - t0) / t_c)^m (m = 1 linear, 2 quadratic; t_c = 0 closes at
once) or a `DeadEnd`.

Everything is SI; heads are in m above datum, pressures gauge Pa, the vapour and
atmospheric pressures absolute Pa. `simulate` returns time series at chosen
points, the max and min head envelopes with their times, pressures against
110 % of MAOP and the nodes where the column separated. `line_from_network`
builds a case from a path of the twin's network with wave speeds from pipe
elasticity (Korteweg) and the twin's steady solution.

Defaults (all overridable): fluid bulk modulus by fluid name (water 2.19 GPa,
crude and diesel 1.5 GPa, gasoline 1.0 GPa), carbon steel walls (E = 207 GPa,
nu = 0.3, anchored), wall thickness D / 50, rotor inertia 50 kg m2 per pump set,
rated speed 1480 rpm. Boundary nodes model a cavity only where the boundary
can let the head fall (pump, valve, dead end), not at reservoirs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.friction import darcy_friction_factor
from pumptwin.twin.hydraulic.network import Network, Pipe, Pump
from pumptwin.twin.hydraulic.network import Reservoir as NetworkReservoir
from pumptwin.twin.hydraulic.pumps import EfficiencyCurve, HeadCurve, fit_efficiency_curve, fit_head_curve
from pumptwin.twin.units import ATMOSPHERIC_PRESSURE_PA, G_M_S2, WATER_DENSITY_KG_M3, WATER_VAPOUR_PRESSURE_PA

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SURGE_FACTOR = 1.10
"""Surge pressure allowed as a multiple of MAOP (110 %)."""
DEFAULT_BULK_MODULUS_PA = {"water": 2.19e9, "crude": 1.5e9, "diesel": 1.5e9, "gasoline": 1.0e9}
"""Fluid bulk modulus by fluid name, in Pa (typical values at about 15-20 C)."""
STEEL_YOUNGS_MODULUS_PA = 207e9
"""Young's modulus of carbon steel, in Pa."""
STEEL_POISSON_RATIO = 0.3
"""Poisson's ratio of carbon steel (-)."""
DEFAULT_DIAMETER_WALL_RATIO = 50.0
"""Diameter / wall thickness assumed when the wall thickness is not given (-)."""
DEFAULT_INERTIA_KG_M2 = 50.0
"""Rotor inertia (pump, coupling and motor) assumed per pump set when none is given, in kg m2."""
DEFAULT_EFFICIENCY = 0.75
"""Pump efficiency used when a station has no efficiency curve (fraction)."""
MIN_RUNDOWN_SPEED = 0.01
"""Relative speed at which a tripped pump counts as stopped; the run-down ends there (-)."""
DEFAULT_MAX_MEMORY_MB = 4096.0
"""Largest estimated memory of one transient run (grid, envelopes and time series), MB."""
GRID_NODE_BYTES = 8 * 32
"""Memory per grid node: the grid's arrays, the state, the envelopes and the result, bytes."""
STEP_VALUE_BYTES = 8
"""Memory per recorded value and time step (time, speed, valve opening, probe heads, flows, pressures), bytes."""
_BYTES_PER_MB = 1e6
_TINY = 1e-12
_MAX_POISSON = 0.5
_FLOW_BRACKET_M3S = 1e9
_NO_FLOW_M3S = 1e-9


class TransientError(PumptwinError, ValueError):
    """Invalid transient input; the message names the bad value."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise TransientError(message)


def _positive(value: float, what: str) -> None:
    _require(isinstance(value, int | float) and math.isfinite(value) and value > 0, f"{what} must be > 0, got {value}")


def _finite(value: float, what: str) -> None:
    _require(isinstance(value, int | float) and math.isfinite(value), f"{what} must be a finite number, got {value}")


def _check_memory(needed_bytes: float, max_memory_mb: float, what: str) -> None:
    """Refuse a run whose estimated memory (bytes) is above ``max_memory_mb`` (MB)."""
    _positive(max_memory_mb, "memory limit max_memory_mb (MB)")
    _require(
        needed_bytes <= max_memory_mb * _BYTES_PER_MB,
        f"{what} would need about {needed_bytes / _BYTES_PER_MB:.4g} MB, above the limit of {max_memory_mb:g} MB",
    )


# --------------------------------------------------------------------------------------------
# Line and boundaries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reach:
    """One pipe of the line, from its upstream end to its downstream end.

    Attributes:
        length_m: Length in m (> 0).
        diameter_m: Inside diameter in m (> 0).
        wave_speed_m_s: Pressure wave speed in m/s (> 0), e.g. `korteweg_wave_speed_m_s`.
        elevation_start_m: Elevation of the upstream end in m (linear in between).
        elevation_end_m: Elevation of the downstream end in m.
        friction_factor: Darcy friction factor (-); None takes it from ``roughness_m``
            at the initial steady flow (Swamee-Jain, 64 / Re when laminar).
        roughness_m: Absolute roughness in m (>= 0), used when ``friction_factor`` is None.
        maop_pa: Maximum allowable operating pressure, gauge Pa (None: no limit).
        name: Pipe id used in tables and messages.
    """

    length_m: float
    diameter_m: float
    wave_speed_m_s: float
    elevation_start_m: float = 0.0
    elevation_end_m: float = 0.0
    friction_factor: float | None = None
    roughness_m: float = 0.0
    maop_pa: float | None = None
    name: str = "pipe"

    def __post_init__(self) -> None:
        """Check lengths, speeds and friction are finite and in range."""
        _positive(self.length_m, f"reach {self.name!r}: length (m)")
        _positive(self.diameter_m, f"reach {self.name!r}: diameter (m)")
        _positive(self.wave_speed_m_s, f"reach {self.name!r}: wave speed (m/s)")
        _finite(self.elevation_start_m, f"reach {self.name!r}: start elevation (m)")
        _finite(self.elevation_end_m, f"reach {self.name!r}: end elevation (m)")
        if self.friction_factor is not None:
            _require(
                math.isfinite(self.friction_factor) and self.friction_factor >= 0,
                f"reach {self.name!r}: friction factor must be >= 0, got {self.friction_factor}",
            )
        _require(
            math.isfinite(self.roughness_m) and self.roughness_m >= 0,
            f"reach {self.name!r}: roughness must be >= 0 m, got {self.roughness_m}",
        )
        if self.maop_pa is not None:
            _positive(self.maop_pa, f"reach {self.name!r}: MAOP (Pa)")

    @property
    def area_m2(self) -> float:
        """Flow area in m2."""
        return math.pi * self.diameter_m**2 / 4.0


@dataclass(frozen=True, slots=True)
class TransientLine:
    """A pipeline: pipes in series and the fluid in them.

    Attributes:
        reaches: The pipes from upstream to downstream (at least one).
        density_kg_m3: Fluid density in kg/m3.
        vapour_pressure_pa: Absolute vapour pressure in Pa.
        atmospheric_pressure_pa: Absolute atmospheric pressure in Pa.
        kinematic_viscosity_m2_s: Kinematic viscosity in m2/s (for friction from roughness).
        name: Line id.
    """

    reaches: tuple[Reach, ...]
    density_kg_m3: float = WATER_DENSITY_KG_M3
    vapour_pressure_pa: float = WATER_VAPOUR_PRESSURE_PA
    atmospheric_pressure_pa: float = ATMOSPHERIC_PRESSURE_PA
    kinematic_viscosity_m2_s: float = 1.004e-6
    name: str = "line"

    def __post_init__(self) -> None:
        """Check there is a pipe and the fluid properties are in range."""
        _require(len(self.reaches) > 0, f"line {self.name!r}: needs at least one reach")
        _positive(self.density_kg_m3, f"line {self.name!r}: density (kg/m3)")
        _positive(self.kinematic_viscosity_m2_s, f"line {self.name!r}: kinematic viscosity (m2/s)")
        _positive(self.atmospheric_pressure_pa, f"line {self.name!r}: atmospheric pressure (Pa)")
        _require(
            math.isfinite(self.vapour_pressure_pa) and self.vapour_pressure_pa >= 0,
            f"line {self.name!r}: vapour pressure must be >= 0 Pa, got {self.vapour_pressure_pa}",
        )

    @property
    def length_m(self) -> float:
        """Total length in m."""
        return float(sum(r.length_m for r in self.reaches))


@dataclass(frozen=True, slots=True)
class Reservoir:
    """A constant-head boundary (m), upstream or downstream."""

    head_m: float

    def __post_init__(self) -> None:
        """Check the head is finite."""
        _finite(self.head_m, "reservoir head (m)")


@dataclass(frozen=True, slots=True)
class PumpStation:
    """An upstream pump station: N identical pumps in parallel from a constant-head suction.

    Attributes:
        suction_head_m: Head at the pumps' suction in m (held constant).
        head_curve: Head curve of one pump at rated speed (`twin.pumps.HeadCurve`).
        efficiency_curve: Efficiency curve of one pump; None uses `DEFAULT_EFFICIENCY`
            (then a pump at zero flow takes no power and the run-down stops there).
        n_running: Pumps running (>= 1).
        speed: Relative speed before the trip (-), > 0.
        rated_speed_rpm: Rated speed in rpm (> 0).
        inertia_kg_m2: Rotor inertia of one pump set (pump, coupling, motor) in kg m2 (> 0).
        trip_time_s: Time of the power failure in s (None: no trip).
    """

    suction_head_m: float
    head_curve: HeadCurve
    efficiency_curve: EfficiencyCurve | None = None
    n_running: int = 1
    speed: float = 1.0
    rated_speed_rpm: float = 1480.0
    inertia_kg_m2: float = DEFAULT_INERTIA_KG_M2
    trip_time_s: float | None = None

    def __post_init__(self) -> None:
        """Check the station's numbers."""
        _finite(self.suction_head_m, "pump station: suction head (m)")
        _require(self.n_running >= 1, f"pump station: needs at least one running pump, got {self.n_running}")
        _positive(self.speed, "pump station: relative speed")
        _positive(self.rated_speed_rpm, "pump station: rated speed (rpm)")
        _positive(self.inertia_kg_m2, "pump station: inertia (kg m2)")
        if self.trip_time_s is not None:
            _require(
                math.isfinite(self.trip_time_s) and self.trip_time_s >= 0,
                f"pump station: trip time must be >= 0 s, got {self.trip_time_s}",
            )

    def head_m(self, flow_m3s: float, speed: float) -> float:
        """Station head (discharge minus suction) in m at total flow (m3/s, >= 0) and relative speed."""
        c = self.head_curve
        q = max(flow_m3s, 0.0) / self.n_running
        return float(speed * speed * c.h0_m - c.r * speed ** (2.0 - c.n) * q**c.n)

    def shaft_power_w(self, flow_m3s: float, head_m: float, speed: float, density_kg_m3: float) -> float:
        """Shaft power of one pump in W at total flow (m3/s), station head (m) and relative speed.

        P = rho g q h / eta with eta(q / s) from the efficiency curve (affinity). Below
        the best-efficiency flow eta / q is taken from the polynomial directly, so the
        power stays finite at zero flow; above it eta is floored at 1 %.
        """
        q = max(flow_m3s, 0.0) / self.n_running
        h = max(head_m, 0.0)
        e = self.efficiency_curve
        if e is None:
            return density_kg_m3 * G_M_S2 * q * h / DEFAULT_EFFICIENCY
        x = q / speed
        poly = e.a + e.b * x + e.c * x * x
        eta_per_flow = poly / speed if x <= e.bep_flow_m3s() else max(x * poly, 0.01) / max(q, _TINY)
        return density_kg_m3 * G_M_S2 * h / max(eta_per_flow, _TINY)


@dataclass(frozen=True, slots=True)
class Valve:
    """A downstream valve discharging to a constant head, with a closure law.

    Fully open it loses K V^2 / (2 g) (V the velocity in the last pipe); opening
    tau scales its discharge, Q = tau Q0 sqrt(dH / dH0).

    Attributes:
        downstream_head_m: Head beyond the valve in m.
        loss_coefficient: K of the fully open valve on the line velocity (> 0).
        closure_start_s: When closure starts in s (None: the valve stays open).
        closure_time_s: Closure duration in s (>= 0; 0 closes it at once).
        exponent: m in tau = (1 - (t - t0) / t_c)^m (> 0; 1 linear, 2 quadratic).
        final_opening: Opening tau at the end of the stroke (0 = shut).
    """

    downstream_head_m: float
    loss_coefficient: float
    closure_start_s: float | None = None
    closure_time_s: float = 0.0
    exponent: float = 1.0
    final_opening: float = 0.0

    def __post_init__(self) -> None:
        """Check the closure law."""
        _finite(self.downstream_head_m, "valve: downstream head (m)")
        _positive(self.loss_coefficient, "valve: loss coefficient")
        if self.closure_start_s is not None:
            _require(
                math.isfinite(self.closure_start_s) and self.closure_start_s >= 0,
                f"valve: closure start must be >= 0 s, got {self.closure_start_s}",
            )
        _require(
            math.isfinite(self.closure_time_s) and self.closure_time_s >= 0,
            f"valve: closure time must be >= 0 s, got {self.closure_time_s}",
        )
        _positive(self.exponent, "valve: closure exponent")
        _require(0 <= self.final_opening <= 1, f"valve: final opening must be in [0, 1], got {self.final_opening}")

    def opening(self, time_s: float) -> float:
        """Relative opening tau (-) at time ``time_s`` in s."""
        t0 = self.closure_start_s
        if t0 is None or time_s < t0:
            return 1.0
        if self.closure_time_s == 0 or time_s >= t0 + self.closure_time_s:
            return self.final_opening
        frac = (1.0 - (time_s - t0) / self.closure_time_s) ** self.exponent
        return float(self.final_opening + (1.0 - self.final_opening) * frac)


@dataclass(frozen=True, slots=True)
class DeadEnd:
    """A closed downstream end (no flow)."""


Upstream = Reservoir | PumpStation
Downstream = Reservoir | Valve | DeadEnd


@dataclass(frozen=True, slots=True)
class TransientCase:
    """A line with its two boundaries: what `simulate` runs."""

    line: TransientLine
    upstream: Upstream
    downstream: Downstream


# --------------------------------------------------------------------------------------------
# Wave speed
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PipeElasticity:
    """Pipe wall and fluid compressibility for the Korteweg wave speed.

    Attributes:
        bulk_modulus_pa: Fluid bulk modulus in Pa (None: by fluid name from
            `DEFAULT_BULK_MODULUS_PA`, water's value for an unknown fluid).
        youngs_modulus_pa: Wall Young's modulus in Pa (default carbon steel, 207 GPa).
        wall_thickness_m: Wall thickness in m (None: diameter / 50).
        poisson_ratio: Wall Poisson ratio (default 0.3); the pipe is taken as
            anchored against axial movement, restraint factor 1 - nu^2.
    """

    bulk_modulus_pa: float | None = None
    youngs_modulus_pa: float = STEEL_YOUNGS_MODULUS_PA
    wall_thickness_m: float | None = None
    poisson_ratio: float = STEEL_POISSON_RATIO

    def __post_init__(self) -> None:
        """Check the moduli and thickness."""
        if self.bulk_modulus_pa is not None:
            _positive(self.bulk_modulus_pa, "pipe elasticity: bulk modulus (Pa)")
        _positive(self.youngs_modulus_pa, "pipe elasticity: Young's modulus (Pa)")
        if self.wall_thickness_m is not None:
            _positive(self.wall_thickness_m, "pipe elasticity: wall thickness (m)")
        _require(
            0 <= self.poisson_ratio < _MAX_POISSON,
            f"pipe elasticity: Poisson ratio must be in [0, 0.5), got {self.poisson_ratio}",
        )


def korteweg_wave_speed_m_s(
    diameter_m: float,
    wall_thickness_m: float,
    density_kg_m3: float,
    bulk_modulus_pa: float,
    youngs_modulus_pa: float = STEEL_YOUNGS_MODULUS_PA,
    restraint_factor: float = 1.0 - STEEL_POISSON_RATIO**2,
) -> float:
    """Pressure wave speed in m/s: sqrt(K / rho / (1 + c1 K D / (E e))) (Korteweg, thin wall).

    Args:
        diameter_m: Inside diameter D in m.
        wall_thickness_m: Wall thickness e in m.
        density_kg_m3: Fluid density rho in kg/m3.
        bulk_modulus_pa: Fluid bulk modulus K in Pa.
        youngs_modulus_pa: Wall Young's modulus E in Pa.
        restraint_factor: c1 (-): 1 - nu^2 anchored against axial movement, 1 with expansion joints.

    Raises:
        TransientError: A value that is not > 0.
    """
    for value, what in (
        (diameter_m, "diameter (m)"),
        (wall_thickness_m, "wall thickness (m)"),
        (density_kg_m3, "density (kg/m3)"),
        (bulk_modulus_pa, "bulk modulus (Pa)"),
        (youngs_modulus_pa, "Young's modulus (Pa)"),
        (restraint_factor, "restraint factor"),
    ):
        _positive(value, f"wave speed: {what}")
    stiffness = 1.0 + restraint_factor * bulk_modulus_pa * diameter_m / (youngs_modulus_pa * wall_thickness_m)
    return math.sqrt(bulk_modulus_pa / density_kg_m3 / stiffness)


# --------------------------------------------------------------------------------------------
# Grid and steady state
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """The computational grid: N reaches, N + 1 nodes, Courant number 1 in every reach.

    Attributes:
        dt_s: Time step in s.
        x_m: (N+1,) distance of each node from the upstream end, in m.
        elevation_m: (N+1,) node elevations in m.
        maop_pa: (N+1,) MAOP at each node (the lower of the pipes meeting there), gauge Pa; NaN if none.
        pipe_of_node: (N+1,) index of the pipe each node belongs to (a shared node: the upstream pipe).
        reach_pipe: (N,) pipe index of each reach.
        reach_length_m: (N,) reach lengths a dt, in m.
        wave_speed_m_s: (N,) adjusted wave speed of each reach, in m/s.
        area_m2: (N,) flow area of each reach, in m2.
        diameter_m: (N,) diameter of each reach, in m.
        reaches_per_pipe: Reaches in each pipe.
        max_wave_speed_adjustment: Largest |a_used / a_given - 1| over the pipes (-).
    """

    dt_s: float
    x_m: FloatArray
    elevation_m: FloatArray
    maop_pa: FloatArray
    pipe_of_node: npt.NDArray[np.int64]
    reach_pipe: npt.NDArray[np.int64]
    reach_length_m: FloatArray
    wave_speed_m_s: FloatArray
    area_m2: FloatArray
    diameter_m: FloatArray
    reaches_per_pipe: tuple[int, ...]
    max_wave_speed_adjustment: float

    @property
    def n_reaches(self) -> int:
        """Number of reaches N."""
        return int(self.reach_length_m.size)


def _adjustment(line: TransientLine, dt_s: float) -> tuple[list[int], float]:
    counts = [max(1, round(r.length_m / (r.wave_speed_m_s * dt_s))) for r in line.reaches]
    worst = max(
        abs(r.length_m / (n * dt_s) / r.wave_speed_m_s - 1.0) for r, n in zip(line.reaches, counts, strict=True)
    )
    return counts, worst


def discretise(
    line: TransientLine,
    *,
    dt_s: float | None = None,
    max_reach_m: float = 1000.0,
    wave_speed_tolerance: float = 0.01,
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
) -> Grid:
    """Cut the line into reaches of length a dt (Courant number 1), adjusting wave speeds.

    Without ``dt_s`` the step starts at min(max_reach_m / a_max, min L / a) and is
    divided by 2, 3, ... until no pipe's wave speed must move by more than the
    tolerance. With ``dt_s`` that step is used as given and the tolerance checked.

    Args:
        line: The pipeline.
        dt_s: Time step in s (> 0), or None to choose one.
        max_reach_m: Longest reach wanted, in m (> 0), when ``dt_s`` is None.
        wave_speed_tolerance: Largest relative wave speed adjustment allowed (> 0).
        max_memory_mb: Largest estimated memory of the grid nodes, MB (checked before they exist).

    Returns:
        The grid.

    Raises:
        TransientError: A non-positive dt, reach length or tolerance, a dt for
            which a wave speed would move by more than the tolerance, or a grid above
            ``max_memory_mb``.
    """
    _positive(wave_speed_tolerance, "wave speed tolerance")
    if dt_s is not None:
        _positive(dt_s, "time step dt_s (s)")
        counts, worst = _adjustment(line, dt_s)
        _require(
            worst <= wave_speed_tolerance,
            f"time step {dt_s} s would change a wave speed by {100 * worst:.2f} % "
            f"(tolerance {100 * wave_speed_tolerance:.2f} %); choose a smaller or better fitting dt",
        )
        dt = dt_s
    else:
        _positive(max_reach_m, "maximum reach length max_reach_m (m)")
        a_max = max(r.wave_speed_m_s for r in line.reaches)
        dt0 = min(max_reach_m / a_max, *(r.length_m / r.wave_speed_m_s for r in line.reaches))
        for k in range(1, 10_001):
            counts, worst = _adjustment(line, dt0 / k)
            if worst <= wave_speed_tolerance:
                dt = dt0 / k
                break
        else:  # pragma: no cover - some k always fits within 10,000 divisions for a 1e-4 tolerance
            raise TransientError(f"no time step fits the wave speeds within {wave_speed_tolerance}")
    n_nodes = sum(counts) + 1
    _check_memory(n_nodes * GRID_NODE_BYTES, max_memory_mb, f"a grid of {n_nodes} nodes (dt {dt:.3g} s)")
    reach_pipe = np.repeat(np.arange(len(line.reaches)), counts)
    lengths = np.concatenate([np.full(n, r.length_m / n) for r, n in zip(line.reaches, counts, strict=True)])
    x = np.concatenate([[0.0], np.cumsum(lengths)])
    elevation = [np.array([line.reaches[0].elevation_start_m])]
    maop = np.full(x.size, np.nan)
    pipe_of_node = np.zeros(x.size, np.int64)
    node = 0
    for i, (r, n) in enumerate(zip(line.reaches, counts, strict=True)):
        elevation.append(np.linspace(r.elevation_start_m, r.elevation_end_m, n + 1)[1:])
        limit = np.nan if r.maop_pa is None else r.maop_pa
        seg = slice(node, node + n + 1)
        maop[seg] = np.fmin(maop[seg], limit)
        pipe_of_node[node + 1 : node + n + 1] = i
        node += n
    diam = np.array([line.reaches[i].diameter_m for i in reach_pipe])
    return Grid(
        dt_s=float(dt),
        x_m=x,
        elevation_m=np.concatenate(elevation),
        maop_pa=maop,
        pipe_of_node=pipe_of_node,
        reach_pipe=reach_pipe,
        reach_length_m=lengths,
        wave_speed_m_s=lengths / dt,
        area_m2=np.pi * diam**2 / 4.0,
        diameter_m=diam,
        reaches_per_pipe=tuple(counts),
        max_wave_speed_adjustment=float(worst),
    )


def _friction_factors(line: TransientLine, flow_m3s: float) -> list[float]:
    out = []
    for r in line.reaches:
        if r.friction_factor is not None:
            out.append(r.friction_factor)
        else:
            re = 4.0 * abs(flow_m3s) / (math.pi * r.diameter_m * line.kinematic_viscosity_m2_s)
            out.append(float(darcy_friction_factor(re, r.roughness_m / r.diameter_m)))
    return out


def _line_loss_m(line: TransientLine, flow_m3s: float) -> float:
    """Friction head loss over the whole line in m at a flow in m3/s (signed with the flow)."""
    f = _friction_factors(line, flow_m3s)
    qq = flow_m3s * abs(flow_m3s)
    return sum(
        fi * r.length_m / (2.0 * G_M_S2 * r.diameter_m * r.area_m2**2) * qq
        for fi, r in zip(f, line.reaches, strict=True)
    )


@dataclass(frozen=True)
class SteadyState:
    """The initial steady state on the grid.

    Attributes:
        flow_m3s: Flow in m3/s (the same in every reach).
        head_m: (N+1,) heads at the grid nodes in m.
        friction_factor: Darcy friction factor of each pipe (-), held during the transient.
    """

    flow_m3s: float
    head_m: FloatArray
    friction_factor: tuple[float, ...]


def _valve_loss_m(valve: Valve, area_m2: float, flow_m3s: float) -> float:
    return valve.loss_coefficient * flow_m3s * abs(flow_m3s) / (2.0 * G_M_S2 * area_m2**2)


def steady_state(case: TransientCase, grid: Grid) -> SteadyState:
    """Solve the steady flow between the two boundaries and the heads on the grid.

    Solves H_up(Q) - friction(Q) - H_down(Q) = 0 for Q (brentq; every term is
    monotone in Q), then H_j = H_0 - sum of R_k Q |Q| over the reaches before j.

    Raises:
        TransientError: A pump station that cannot deliver against the line.
    """
    line, up, down = case.line, case.upstream, case.downstream
    area_end = line.reaches[-1].area_m2

    def head_up(q: float) -> float:
        if isinstance(up, PumpStation):
            return up.suction_head_m + up.head_m(q, up.speed)
        return up.head_m

    def head_down(q: float) -> float:
        if isinstance(down, Valve):
            return down.downstream_head_m + _valve_loss_m(down, area_end, q)
        if isinstance(down, Reservoir):
            return down.head_m
        return math.nan

    if isinstance(down, DeadEnd):
        q0 = 0.0
    else:

        def gap(q: float) -> float:
            return head_up(q) - _line_loss_m(line, q) - head_down(q)

        if isinstance(up, PumpStation):
            lo = 0.0
            _require(
                gap(0.0) > 0,
                f"pump station: shutoff head {head_up(0.0):.4g} m does not exceed the downstream head "
                f"{head_down(0.0):.4g} m, so it delivers no flow",
            )
        else:
            lo = -1.0
            while gap(lo) < 0:
                lo *= 2.0
                _require(lo > -_FLOW_BRACKET_M3S, "steady state: no flow balances the boundaries")
        hi = 1.0
        while gap(hi) > 0:
            hi *= 2.0
            _require(hi < _FLOW_BRACKET_M3S, "steady state: no flow balances the boundaries")
        q0 = float(brentq(gap, lo, hi, xtol=1e-14, rtol=1e-14)) if gap(lo) != 0 else lo
    f = _friction_factors(line, q0)
    r_reach = _reach_resistance(grid, f)
    drops = r_reach * q0 * abs(q0)
    head = head_up(q0) - np.concatenate([[0.0], np.cumsum(drops)])
    return SteadyState(q0, head, tuple(f))


def _reach_resistance(grid: Grid, friction: Sequence[float]) -> FloatArray:
    """R = f dx / (2 g D A^2) of each reach, in s2/m5."""
    f = np.asarray(friction, dtype=np.float64)[grid.reach_pipe]
    return f * grid.reach_length_m / (2.0 * G_M_S2 * grid.diameter_m * grid.area_m2**2)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransientResult:
    """A transient run (SI units; pressures gauge Pa).

    Attributes:
        time_s: (T,) recorded times in s (every step).
        probe_x_m: (P,) distance of each probe from the upstream end, in m (snapped to grid nodes).
        probe_head_m: (T, P) head at the probes in m.
        probe_flow_m3s: (T, P) flow at the probes in m3/s (mean of the two sides at a cavity).
        probe_pressure_pa: (T, P) gauge pressure at the probes in Pa.
        x_m: (N+1,) node distances in m.
        elevation_m: (N+1,) node elevations in m.
        pipe_of_node: (N+1,) pipe index of each node.
        pipe_names: Pipe names.
        steady_head_m: (N+1,) initial steady heads in m.
        steady_flow_m3s: Initial steady flow in m3/s.
        head_max_m, head_min_m: (N+1,) head envelopes in m.
        time_head_max_s, time_head_min_s: (N+1,) when each extreme first occurred, in s.
        pressure_max_pa, pressure_min_pa: (N+1,) pressure envelopes, gauge Pa.
        maop_pa: (N+1,) MAOP at each node, gauge Pa (NaN: none set).
        surge_limit_pa: (N+1,) 110 % of MAOP, gauge Pa.
        surge_margin_pa: (N+1,) surge limit minus max pressure, Pa (negative: exceeded).
        surge_violation: (N+1,) max pressure above 110 % of MAOP.
        vapour_pressure_pa: Vapour pressure as gauge Pa (the floor of the pressure).
        column_separation: (N+1,) a vapour cavity formed at the node.
        time_column_separation_s: (N+1,) first time a cavity formed, s (NaN: never).
        cavity_volume_max_m3: (N+1,) largest cavity volume in m3.
        pump_speed: (T,) relative speed of the upstream pumps (None without a station).
        valve_opening: (T,) downstream valve opening tau (None without a valve).
        dt_s: Time step in s.
        max_wave_speed_adjustment: Largest relative wave speed change made for Courant 1 (-).
    """

    time_s: FloatArray
    probe_x_m: FloatArray
    probe_head_m: FloatArray
    probe_flow_m3s: FloatArray
    probe_pressure_pa: FloatArray
    x_m: FloatArray
    elevation_m: FloatArray
    pipe_of_node: npt.NDArray[np.int64]
    pipe_names: tuple[str, ...]
    steady_head_m: FloatArray
    steady_flow_m3s: float
    head_max_m: FloatArray
    head_min_m: FloatArray
    time_head_max_s: FloatArray
    time_head_min_s: FloatArray
    pressure_max_pa: FloatArray
    pressure_min_pa: FloatArray
    maop_pa: FloatArray
    surge_limit_pa: FloatArray
    surge_margin_pa: FloatArray
    surge_violation: BoolArray
    vapour_pressure_pa: float
    column_separation: BoolArray
    time_column_separation_s: FloatArray
    cavity_volume_max_m3: FloatArray
    pump_speed: FloatArray | None
    valve_opening: FloatArray | None
    dt_s: float
    max_wave_speed_adjustment: float

    def summary(self) -> dict[str, float | bool]:
        """Headline figures: extremes with where and when, MAOP check and column separation."""
        imax = int(np.argmax(self.head_max_m))
        imin = int(np.argmin(self.head_min_m))
        ipmax = int(np.argmax(self.pressure_max_pa))
        margin = self.surge_margin_pa[np.isfinite(self.surge_margin_pa)]
        cav = self.time_column_separation_s[self.column_separation]
        return {
            "max_head_m": float(self.head_max_m[imax]),
            "max_head_x_km": float(self.x_m[imax] / 1000.0),
            "max_head_time_s": float(self.time_head_max_s[imax]),
            "min_head_m": float(self.head_min_m[imin]),
            "min_head_x_km": float(self.x_m[imin] / 1000.0),
            "min_head_time_s": float(self.time_head_min_s[imin]),
            "max_pressure_mpa": float(self.pressure_max_pa[ipmax] / 1e6),
            "max_pressure_x_km": float(self.x_m[ipmax] / 1000.0),
            "min_pressure_mpa": float(self.pressure_min_pa.min() / 1e6),
            "min_surge_margin_mpa": float(margin.min() / 1e6) if margin.size else math.nan,
            "surge_violation": bool(self.surge_violation.any()),
            "column_separation": bool(self.column_separation.any()),
            "column_separation_nodes": int(self.column_separation.sum()),
            "first_column_separation_s": float(cav.min()) if cav.size else math.nan,
            "max_cavity_volume_m3": float(self.cavity_volume_max_m3.max()),
        }

    def surge_table(self) -> list[dict[str, object]]:
        """One row per pipe: head and pressure envelopes, 110 % MAOP margin, column separation.

        Units are in the keys (m, MPa gauge, km, s); a pipe's row covers its nodes, both ends included.
        """
        rows: list[dict[str, object]] = []
        node_start = 0
        for i, name in enumerate(self.pipe_names):
            last = int(np.flatnonzero(self.pipe_of_node == i)[-1])
            sel = slice(node_start, last + 1)
            node_start = last
            pmax = self.pressure_max_pa[sel]
            k = int(np.argmax(pmax))
            margin = self.surge_margin_pa[sel]
            cav = self.time_column_separation_s[sel]
            rows.append(
                {
                    "pipe": name,
                    "from_km": round(float(self.x_m[sel.start] / 1000.0), 3),
                    "to_km": round(float(self.x_m[last] / 1000.0), 3),
                    "max_head_m": round(float(self.head_max_m[sel].max()), 2),
                    "min_head_m": round(float(self.head_min_m[sel].min()), 2),
                    "max_pressure_mpa": round(float(pmax[k] / 1e6), 4),
                    "time_max_pressure_s": round(float(self.time_head_max_s[sel][k]), 2),
                    "min_pressure_mpa": round(float(self.pressure_min_pa[sel].min() / 1e6), 4),
                    "maop_mpa": round(float(np.nanmin(self.maop_pa[sel]) / 1e6), 4)
                    if np.isfinite(self.maop_pa[sel]).any()
                    else None,
                    "surge_margin_mpa": round(float(np.nanmin(margin) / 1e6), 4) if np.isfinite(margin).any() else None,
                    "surge_violation": bool(self.surge_violation[sel].any()),
                    "column_separation": bool(self.column_separation[sel].any()),
                    "first_column_separation_s": round(float(np.nanmin(cav)), 2) if np.isfinite(cav).any() else None,
                }
            )
        return rows


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


@dataclass
class _Boundary:
    """Scalar state of the two boundaries during a run."""

    speed: float = 1.0
    cavity_up_m3: float = 0.0
    cavity_down_m3: float = 0.0
    valve_q0_m3s: float = 0.0
    valve_dh0_m: float = 0.0
    history_speed: list[float] = field(default_factory=list)


def _cavity(
    h: float, q: float, hv: float, vol: float, q_in_hv: float, q_out_hv: float, dt: float
) -> tuple[float, float, float, float]:
    """DVCM at a boundary node: (head, inflow, outflow, cavity volume) after one step."""
    if vol <= 0 and h >= hv:
        return h, q, q, 0.0
    grown = vol + dt * (q_out_hv - q_in_hv)
    if grown <= 0:
        return h, q, q, 0.0
    return hv, q_in_hv, q_out_hv, grown


def _pump_flow(st: PumpStation, c_m: float, b_m: float, speed: float) -> float:
    """Station flow (m3/s, >= 0) against the C- line H = c_m + b_m Q; 0 when the check valve is shut."""
    drive = st.suction_head_m + st.head_m(0.0, speed) - c_m
    if drive <= 0:
        return 0.0
    return float(
        brentq(lambda q: st.suction_head_m + st.head_m(q, speed) - c_m - b_m * q, 0.0, drive / b_m, xtol=1e-12)
    )


def _pump_flow_at_head(st: PumpStation, head_m: float, speed: float) -> float:
    """Station flow (m3/s) delivered into a node held at ``head_m``; 0 at or above shutoff."""
    rise = st.suction_head_m + st.head_m(0.0, speed) - head_m
    if rise <= 0:
        return 0.0
    c = st.head_curve
    return float(st.n_running * (rise / (c.r * speed ** (2.0 - c.n))) ** (1.0 / c.n))


def _pump_node(
    st: PumpStation, c_m: float, b_m: float, hv: float, vol: float, speed: float, dt: float
) -> tuple[float, float, float, float]:
    """Pump node after one step: (head m, inflow from the pumps, outflow into the line, cavity volume m3)."""
    q = _pump_flow(st, c_m, b_m, speed)
    return _cavity(c_m + b_m * q, q, hv, vol, _pump_flow_at_head(st, hv, speed), (hv - c_m) / b_m, dt)


def _rundown_rate(st: PumpStation, flow_m3s: float, speed: float, density_kg_m3: float, omega_r: float) -> float:
    """C in ds/dt = -c s^2 (1/s) for one pump set: P_shaft / (I omega_R^2 s^3) at the station's flow and speed."""
    power = st.shaft_power_w(flow_m3s, st.head_m(flow_m3s, speed), speed, density_kg_m3)
    return power / (st.inertia_kg_m2 * omega_r**2 * speed**3)


def _valve_flow(c_p: float, b_p: float, cv: float, h_down: float) -> float:
    """Valve flow (m3/s) from C+ (H = c_p - b_p Q) and Q |Q| = cv (H - h_down)."""
    if cv <= 0:
        return 0.0
    d = c_p - h_down
    if d >= 0:
        return 0.5 * (-cv * b_p + math.sqrt((cv * b_p) ** 2 + 4.0 * cv * d))
    return 0.5 * (cv * b_p - math.sqrt((cv * b_p) ** 2 - 4.0 * cv * d))


def _probe_nodes(grid: Grid, probes_m: Sequence[float] | None) -> npt.NDArray[np.int64]:
    length = float(grid.x_m[-1])
    wanted = [0.0, 0.5 * length, length] if probes_m is None else list(probes_m)
    for x in wanted:
        _require(math.isfinite(x) and 0 <= x <= length, f"probe at {x} m lies outside the line (0..{length} m)")
    return np.array([int(np.argmin(np.abs(grid.x_m - x))) for x in wanted], dtype=np.int64)


def simulate(  # noqa: PLR0915 - one time loop with its two boundaries
    case: TransientCase,
    duration_s: float,
    *,
    dt_s: float | None = None,
    max_reach_m: float = 1000.0,
    wave_speed_tolerance: float = 0.01,
    probes_m: Sequence[float] | None = None,
    max_memory_mb: float = DEFAULT_MAX_MEMORY_MB,
) -> TransientResult:
    """Run the transient from the steady state for ``duration_s`` seconds.

    Args:
        case: Line and boundaries (events: a pump trip time, a valve closure law).
        duration_s: Simulated time in s (> 0).
        dt_s: Time step in s; None chooses it from ``max_reach_m`` (see `discretise`).
        max_reach_m: Longest reach wanted, in m.
        wave_speed_tolerance: Largest relative wave speed adjustment allowed (-).
        probes_m: Distances from the upstream end (m) to record; default both ends and the middle.
        max_memory_mb: Largest estimated memory of the run (grid and time series), MB; checked
            before either is allocated.

    Returns:
        Time series at the probes, envelopes, MAOP check and column separation.

    Raises:
        TransientError: Non-positive duration or time step, probes off the line, a run above
            ``max_memory_mb``, or a case without a steady state.
    """
    _positive(duration_s, "duration (s)")
    line, up, down = case.line, case.upstream, case.downstream
    grid = discretise(
        line,
        dt_s=dt_s,
        max_reach_m=max_reach_m,
        wave_speed_tolerance=wave_speed_tolerance,
        max_memory_mb=max_memory_mb,
    )
    n_probes = 3 if probes_m is None else len(probes_m)
    n_steps_est = duration_s / grid.dt_s + 1.0
    _check_memory(
        grid.x_m.size * GRID_NODE_BYTES + n_steps_est * (3 * n_probes + 3) * STEP_VALUE_BYTES,
        max_memory_mb,
        f"a transient of {duration_s:g} s in steps of {grid.dt_s:.3g} s ({n_steps_est:.4g} steps)",
    )
    steady = steady_state(case, grid)
    dt = grid.dt_s
    rho_g = line.density_kg_m3 * G_M_S2
    z = grid.elevation_m
    hv = z + (line.vapour_pressure_pa - line.atmospheric_pressure_pa) / rho_g
    b = grid.wave_speed_m_s / (G_M_S2 * grid.area_m2)
    r = _reach_resistance(grid, steady.friction_factor)
    b_l, r_l, b_r, r_r = b[:-1], r[:-1], b[1:], r[1:]
    n_nodes = grid.x_m.size
    probes = _probe_nodes(grid, probes_m)
    n_steps = math.ceil(duration_s / dt - 1e-9)

    h = steady.head_m.copy()
    q_in = np.full(n_nodes, steady.flow_m3s)
    q_out = q_in.copy()
    vol = np.zeros(n_nodes)
    h_max, h_min = h.copy(), h.copy()
    t_max, t_min = np.zeros(n_nodes), np.zeros(n_nodes)
    cav_first = np.full(n_nodes, np.nan)
    vol_max = np.zeros(n_nodes)
    times = np.arange(n_steps + 1, dtype=np.float64) * dt
    rec_h = np.empty((n_steps + 1, probes.size))
    rec_q = np.empty((n_steps + 1, probes.size))
    rec_h[0], rec_q[0] = h[probes], q_in[probes]
    speed_hist = np.full(n_steps + 1, np.nan)
    tau_hist = np.full(n_steps + 1, np.nan)

    bnd = _Boundary()
    if isinstance(up, PumpStation):
        bnd.speed = up.speed
        omega_r = up.rated_speed_rpm * 2.0 * math.pi / 60.0
        speed_hist[0] = up.speed
    if isinstance(down, Valve):
        bnd.valve_q0_m3s = steady.flow_m3s
        bnd.valve_dh0_m = float(h[-1]) - down.downstream_head_m
        _require(bnd.valve_dh0_m > 0 and steady.flow_m3s > 0, "valve: needs a positive initial flow through it")
        tau_hist[0] = 1.0

    for step in range(1, n_steps + 1):
        t = step * dt
        # Characteristics from the old time level (semi-implicit friction).
        c_p = h[:-2] + b_l * q_out[:-2]
        bp = b_l + r_l * np.abs(q_out[:-2])
        c_m = h[2:] - b_r * q_in[2:]
        bm = b_r + r_r * np.abs(q_in[2:])
        cm0 = h[1] - b[0] * q_in[1]
        bm0 = b[0] + r[0] * abs(q_in[1])
        cpn = h[-2] + b[-1] * q_out[-2]
        bpn = b[-1] + r[-1] * abs(q_out[-2])

        # Interior nodes, with the discrete vapour cavity model.
        inv = 1.0 / (bp + bm)
        hn = (c_p * bm + c_m * bp) * inv
        qn = (c_p - c_m) * inv
        hv_i = hv[1:-1]
        cav = (hn < hv_i) | (vol[1:-1] > 0)
        if cav.any():
            qu_c = (c_p - hv_i) / bp
            qd_c = (hv_i - c_m) / bm
            grown = vol[1:-1] + dt * (qd_c - qu_c)
            keep = cav & (grown > 0)
            h[1:-1] = np.where(keep, hv_i, hn)
            q_in[1:-1] = np.where(keep, qu_c, qn)
            q_out[1:-1] = np.where(keep, qd_c, qn)
            vol[1:-1] = np.where(keep, grown, 0.0)
        else:
            h[1:-1] = hn
            q_in[1:-1] = qn
            q_out[1:-1] = qn

        # Upstream boundary.
        if isinstance(up, Reservoir):
            h[0] = up.head_m
            q_in[0] = q_out[0] = (up.head_m - cm0) / bm0
        else:
            s_old = bnd.speed
            if up.trip_time_s is not None and t > up.trip_time_s and s_old > MIN_RUNDOWN_SPEED:
                # Heun on ds/dt = -c s^2: rate from the last solution, then from the predicted one.
                c_old = _rundown_rate(up, float(q_in[0]), s_old, line.density_kg_m3, omega_r)
                s_new = max(s_old / (1.0 + c_old * s_old * dt), MIN_RUNDOWN_SPEED)
                node = _pump_node(up, cm0, bm0, hv[0], bnd.cavity_up_m3, s_new, dt)
                c_new = _rundown_rate(up, node[1], s_new, line.density_kg_m3, omega_r)
                s_new = max(s_old / (1.0 + 0.5 * (c_old + c_new) * s_old * dt), MIN_RUNDOWN_SPEED)
                bnd.speed = s_new
            h[0], q_in[0], q_out[0], bnd.cavity_up_m3 = _pump_node(up, cm0, bm0, hv[0], bnd.cavity_up_m3, bnd.speed, dt)
            speed_hist[step] = bnd.speed

        # Downstream boundary.
        if isinstance(down, Reservoir):
            h[-1] = down.head_m
            q_in[-1] = q_out[-1] = (cpn - down.head_m) / bpn
        elif isinstance(down, Valve):
            tau = down.opening(t)
            tau_hist[step] = tau
            cv = (tau * bnd.valve_q0_m3s) ** 2 / bnd.valve_dh0_m
            q = _valve_flow(cpn, bpn, cv, down.downstream_head_m)
            dh_v = hv[-1] - down.downstream_head_m
            q_hv = math.copysign(math.sqrt(cv * abs(dh_v)), dh_v)
            h[-1], q_in[-1], q_out[-1], bnd.cavity_down_m3 = _cavity(
                cpn - bpn * q, q, hv[-1], bnd.cavity_down_m3, (cpn - hv[-1]) / bpn, q_hv, dt
            )
        else:
            h[-1], q_in[-1], q_out[-1], bnd.cavity_down_m3 = _cavity(
                cpn, 0.0, hv[-1], bnd.cavity_down_m3, (cpn - hv[-1]) / bpn, 0.0, dt
            )
        vol[0], vol[-1] = bnd.cavity_up_m3, bnd.cavity_down_m3

        # Envelopes and records.
        up_mask = h > h_max
        h_max[up_mask] = h[up_mask]
        t_max[up_mask] = t
        low_mask = h < h_min
        h_min[low_mask] = h[low_mask]
        t_min[low_mask] = t
        if vol.any():
            new_cav = (vol > 0) & np.isnan(cav_first)
            cav_first[new_cav] = t
            np.maximum(vol_max, vol, out=vol_max)
        rec_h[step] = h[probes]
        rec_q[step] = 0.5 * (q_in[probes] + q_out[probes])

    p_max = rho_g * (h_max - z)
    p_min = rho_g * (h_min - z)
    limit = SURGE_FACTOR * grid.maop_pa
    margin = limit - p_max
    return TransientResult(
        time_s=times,
        probe_x_m=grid.x_m[probes],
        probe_head_m=rec_h,
        probe_flow_m3s=rec_q,
        probe_pressure_pa=rho_g * (rec_h - z[probes]),
        x_m=grid.x_m,
        elevation_m=z,
        pipe_of_node=grid.pipe_of_node,
        pipe_names=tuple(r.name for r in line.reaches),
        steady_head_m=steady.head_m,
        steady_flow_m3s=steady.flow_m3s,
        head_max_m=h_max,
        head_min_m=h_min,
        time_head_max_s=t_max,
        time_head_min_s=t_min,
        pressure_max_pa=p_max,
        pressure_min_pa=p_min,
        maop_pa=grid.maop_pa,
        surge_limit_pa=limit,
        surge_margin_pa=margin,
        surge_violation=np.isfinite(margin) & (margin < 0),
        vapour_pressure_pa=line.vapour_pressure_pa - line.atmospheric_pressure_pa,
        column_separation=~np.isnan(cav_first),
        time_column_separation_s=cav_first,
        cavity_volume_max_m3=vol_max,
        pump_speed=speed_hist if isinstance(up, PumpStation) else None,
        valve_opening=tau_hist if isinstance(down, Valve) else None,
        dt_s=dt,
        max_wave_speed_adjustment=grid.max_wave_speed_adjustment,
    )


# --------------------------------------------------------------------------------------------
# From the twin's network
# --------------------------------------------------------------------------------------------


def _path(network: Network, start_node: str, end_node: str) -> list[tuple[Pipe, bool]]:
    """Pipes from ``start_node`` to ``end_node`` along a chain, each with True where it is reversed."""
    out: list[tuple[Pipe, bool]] = []
    node, used = start_node, set[str]()
    while node != end_node:
        nxt = [(p, p.end == node) for p in network.pipes if p.id not in used and node in (p.start, p.end)]
        _require(len(nxt) == 1, f"path {start_node!r} -> {end_node!r}: node {node!r} is not on a single chain of pipes")
        pipe, rev = nxt[0]
        used.add(pipe.id)
        out.append((pipe, rev))
        node = pipe.start if rev else pipe.end
    _require(len(out) > 0, f"path {start_node!r} -> {end_node!r}: start and end are the same node")
    return out


def line_from_network(  # noqa: PLR0913 - every option has a documented default
    network: Network,
    start_node: str,
    end_node: str,
    *,
    elasticity: PipeElasticity | None = None,
    head_m: Sequence[float] | None = None,
    flow_m3s: Sequence[float] | None = None,
    inertia_kg_m2: float = DEFAULT_INERTIA_KG_M2,
    rated_speed_rpm: float = 1480.0,
    trip_time_s: float | None = None,
) -> TransientCase:
    """A transient case for the pipe chain from ``start_node`` to ``end_node`` of a twin network.

    The steady state is the twin's (`twin.hydraulics.solve_batch` on the network's
    own initial conditions unless heads and flows are given). Each pipe's Darcy
    friction factor is set so that its steady head loss equals the twin's (minor
    losses included), so the MOC line starts in the twin's steady state. Wave
    speeds come from `korteweg_wave_speed_m_s` with ``elasticity``.

    Upstream: the reservoir at ``start_node``; or, where pumps discharge into it,
    the station of its running pumps (identical curves; suction head held at the
    twin's value); otherwise a constant head at the twin's value. Downstream: the
    reservoir at ``end_node`` or a constant head at the twin's value there (for a
    downstream station's suction, an approximation: the station is not modelled).

    Args:
        network: The twin network (fluid and MAOPs from its sidecar).
        start_node: Upstream node id, e.g. ``"PS1-D"``.
        end_node: Downstream node id, e.g. ``"PS2-S"``.
        elasticity: Wall and fluid moduli (defaults: steel, D / e = 50, fluid by name).
        head_m: Node heads in m in the compiled model's node order (None: solve).
        flow_m3s: Link flows in m3/s in link order (None: solve).
        inertia_kg_m2: Rotor inertia per pump set in kg m2.
        rated_speed_rpm: Rated pump speed in rpm.
        trip_time_s: Pump trip time in s for an upstream station (None: no trip).

    Returns:
        The case; replace its boundaries (`dataclasses.replace`) for other events.

    Raises:
        TransientError: No single pipe chain between the nodes, running pumps with
            different curves, or a pipe without a steady flow.
    """
    from pumptwin.twin.hydraulic.solver import base_batch, compile_network, solve_batch

    model = compile_network(network)
    if head_m is None or flow_m3s is None:
        sol = solve_batch(model, base_batch(model))
        heads = sol.head_m[0] if head_m is None else np.asarray(head_m, dtype=np.float64)
        flows = sol.flow_m3s[0] if flow_m3s is None else np.asarray(flow_m3s, dtype=np.float64)
    else:
        heads, flows = np.asarray(head_m, dtype=np.float64), np.asarray(flow_m3s, dtype=np.float64)
    el = elasticity or PipeElasticity()
    fluid = network.fluid
    bulk = el.bulk_modulus_pa or DEFAULT_BULK_MODULUS_PA.get(fluid.name, DEFAULT_BULK_MODULUS_PA["water"])

    def node_head(nid: str) -> float:
        return float(heads[model.node_index[nid]])

    def elevation(nid: str) -> float:
        return float(model.elevation_m[model.node_index[nid]])

    reaches = []
    for pipe, rev in _path(network, start_node, end_node):
        a, bnode = (pipe.end, pipe.start) if rev else (pipe.start, pipe.end)
        q = float(flows[model.link_index[pipe.id]]) * (-1.0 if rev else 1.0)
        area = math.pi * pipe.diameter_m**2 / 4.0
        if abs(q) > _NO_FLOW_M3S:
            drop = node_head(a) - node_head(bnode)
            f = drop * 2.0 * G_M_S2 * pipe.diameter_m * area**2 / (pipe.length_m * q * abs(q))
            _require(f >= 0, f"pipe {pipe.id!r}: head rises along the flow in the steady state")
        else:
            f = None
        wall = el.wall_thickness_m or pipe.diameter_m / DEFAULT_DIAMETER_WALL_RATIO
        wave = korteweg_wave_speed_m_s(
            pipe.diameter_m, wall, fluid.density_kg_m3, bulk, el.youngs_modulus_pa, 1.0 - el.poisson_ratio**2
        )
        reaches.append(
            Reach(
                length_m=pipe.length_m,
                diameter_m=pipe.diameter_m,
                wave_speed_m_s=wave,
                elevation_start_m=elevation(a),
                elevation_end_m=elevation(bnode),
                friction_factor=f,
                roughness_m=pipe.roughness if network.options.headloss == "D-W" else 0.0,
                maop_pa=pipe.maop_pa,
                name=pipe.id,
            )
        )
    line = TransientLine(
        reaches=tuple(reaches),
        density_kg_m3=fluid.density_kg_m3,
        vapour_pressure_pa=fluid.vapour_pressure_pa,
        atmospheric_pressure_pa=network.atmospheric_pressure_pa,
        kinematic_viscosity_m2_s=fluid.kinematic_viscosity_m2_s,
        name=f"{start_node}->{end_node}",
    )
    running = [p for p in network.pumps if p.end == start_node and float(flows[model.link_index[p.id]]) > _NO_FLOW_M3S]
    start = network.node(start_node)
    upstream: Upstream
    if isinstance(start, NetworkReservoir):
        upstream = Reservoir(start.head_m)
    elif running:
        upstream = replace(
            _station(network, start_node, running, node_head),
            rated_speed_rpm=rated_speed_rpm,
            inertia_kg_m2=inertia_kg_m2,
            trip_time_s=trip_time_s,
        )
    else:
        upstream = Reservoir(node_head(start_node))
    end = network.node(end_node)
    downstream = Reservoir(end.head_m if isinstance(end, NetworkReservoir) else node_head(end_node))
    return TransientCase(line, upstream, downstream)


def _station(network: Network, start_node: str, running: list[Pump], node_head: Callable[[str], float]) -> PumpStation:
    """The station of the running pumps discharging into ``start_node``."""
    pump = running[0]
    _require(
        all(p.head_curve == pump.head_curve and p.speed == pump.speed and p.start == pump.start for p in running)
        and pump.head_curve is not None,
        f"station at {start_node!r}: running pumps must share one head curve, speed and suction node",
    )
    assert pump.head_curve is not None
    eff = fit_efficiency_curve(network.curve(pump.efficiency_curve)) if pump.efficiency_curve else None
    return PumpStation(
        suction_head_m=node_head(pump.start),
        head_curve=fit_head_curve(network.curve(pump.head_curve)),
        efficiency_curve=eff,
        n_running=len(running),
        speed=pump.speed,
    )
