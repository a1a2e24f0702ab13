"""The limits a what-if scenario is checked against: NPSH, bearing temperature, vibration, MAOP, pressure, leaks.

Besides the machine and pipe limits, `Limits` holds the lowest pressure that is physical and how
closely a leak given as a flow must be reached.

Vibration is graded in ISO 10816-3 zones: A (new), B (unrestricted long-term operation), C (not
for long-term operation), D (damage). The default boundaries are those of group 1 machines (above
300 kW) on rigid foundations: 2.3, 4.5 and 7.1 mm/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pumptwin.twin.hydraulic.network import NetworkError


@dataclass(frozen=True)
class IsoZones:
    """ISO 10816-3 vibration zone boundaries (velocity RMS, mm/s).

    The default is group 1 (rated power above 300 kW) on a rigid foundation. Group 1 flexible:
    3.5, 7.1, 11.0; group 2 (15-300 kW) rigid: 1.4, 2.8, 4.5; group 2 flexible: 2.3, 4.5, 7.1.

    Attributes:
        ab_mm_s: Boundary between zones A (new machines) and B (long-term operation).
        bc_mm_s: Boundary between B and C (not for long-term operation): the alarm limit.
        cd_mm_s: Boundary between C and D (vibration causes damage).
    """

    ab_mm_s: float = 2.3
    bc_mm_s: float = 4.5
    cd_mm_s: float = 7.1

    def __post_init__(self) -> None:
        if not 0 < self.ab_mm_s < self.bc_mm_s < self.cd_mm_s:
            raise NetworkError(
                f"ISO zones: need 0 < A/B < B/C < C/D, got {self.ab_mm_s}, {self.bc_mm_s}, {self.cd_mm_s} mm/s"
            )

    def zone(self, vibration_mm_s: float) -> str:
        """Zone letter A, B, C or D of a vibration velocity RMS in mm/s."""
        if vibration_mm_s < self.ab_mm_s:
            return "A"
        if vibration_mm_s < self.bc_mm_s:
            return "B"
        return "C" if vibration_mm_s < self.cd_mm_s else "D"


@dataclass(frozen=True)
class Limits:
    """Limits a scenario is checked against.

    Attributes:
        min_npsh_margin_m: Least NPSHa - NPSHr, m.
        bearing_alarm_c: Highest bearing temperature, degC.
        zones: Vibration zone boundaries; zone C or D is a violation.
        max_maop_use: Highest pressure as a fraction of MAOP (1.0: at MAOP).
        min_pressure_m: Lowest pressure head at any junction, m gauge; below it the steady result
            is not physical (EPANET's negative pressures) and the scenario's status says so.
        leak_tolerance: Relative difference between a requested leak and the leak the line
            achieves beyond which the leak counts as not reached (-) ...
        leak_tolerance_m3h: ... when the difference is also above this many m3/h.
    """

    min_npsh_margin_m: float = 1.0
    bearing_alarm_c: float = 90.0
    zones: IsoZones = field(default_factory=IsoZones)
    max_maop_use: float = 1.0
    min_pressure_m: float = 0.0
    leak_tolerance: float = 0.02
    leak_tolerance_m3h: float = 1.0

    def __post_init__(self) -> None:
        if not (self.leak_tolerance >= 0 and self.leak_tolerance_m3h >= 0):
            raise NetworkError(
                f"limits: leak tolerances must be >= 0, got {self.leak_tolerance} and {self.leak_tolerance_m3h} m3/h"
            )

    def leak_reached(self, requested_m3h: float, achieved_m3h: float) -> bool:
        """Whether an achieved leak (m3/h) matches the requested one within both tolerances."""
        gap = abs(achieved_m3h - requested_m3h)
        return gap <= max(self.leak_tolerance * abs(requested_m3h), self.leak_tolerance_m3h)
