"""What the recommender sees of the twin: one line's calibrated network and a way to simulate on it.

`TwinView` holds the line's network as it runs now (the pumps that ran in the calibration's last
window, the calibrated wear), the machines' learnt condition models, rated speeds and limits;
`simulate` solves a list of declared scenarios in one batch on it (the base case first) and
`surge` runs the transient check of a scenario's pump stops. With the line's assessed features
(`integrity`) every simulation checks each feature's safe pressure, the surge check its transient
envelope, and `derating` gives the largest throughput and station discharge pressures that keep
every feature safe, which the recommender treats as hard limits. The flows build it from the saved
calibration and integrity assessment (`flows.recommend_steps.twin_view`); tests build it from a
network directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from pumptwin.twin.assets import PumpSpec, Registry
from pumptwin.twin.health.condition import MachineCondition
from pumptwin.twin.hydraulic.network import LinkStatus, Network
from pumptwin.twin.integrity.line import Derating, IntegrityLimits
from pumptwin.twin.whatif.assess import ENVELOPE_INTEGRITY_UNIT
from pumptwin.twin.whatif.limits import Limits
from pumptwin.twin.whatif.report import ScenarioOutcome, Violation, WhatIfReport
from pumptwin.twin.whatif.resolve import run_scenarios
from pumptwin.twin.whatif.spec import DEFAULT_AMBIENT_C, DEFAULT_RATED_RPM, ScenarioSpec, SpeedChange


@dataclass(frozen=True)
class TwinView:
    """One line of the calibrated twin, ready to simulate candidate actions.

    Attributes:
        network: The line's network in its current operating state (stopped pumps closed).
        registry: The fleet (asset names, pump ids, speed ranges, BEP).
        line: The line, 1-based.
        conditions: Learnt machine condition by pump id (empty: what an operator knows of a new machine).
        rated_speed_rpm: Rated speed by pump id, rpm.
        ambient_c: Ambient temperature, degC.
        accuracy: Solver convergence limit.
        limits: The limits every scenario is checked against.
        max_memory_mb: Largest estimated memory of one batch, MB.
        basis: What the network is (``calibrated twin (calibration of ...)`` or ``as-built network``).
        min_suction_bar: The stations' low suction pressure alarm, bar g: a candidate that takes a
            running station's suction below it (or further below) is rejected.
        integrity: The line's assessed features (None: no integrity assessment).
    """

    network: Network
    registry: Registry
    line: int = 1
    conditions: Mapping[str, MachineCondition] = field(default_factory=dict)
    rated_speed_rpm: Mapping[str, float] = field(default_factory=dict)
    ambient_c: float = DEFAULT_AMBIENT_C
    accuracy: float = 1e-6
    limits: Limits = field(default_factory=Limits)
    max_memory_mb: float | None = 4096.0
    basis: str = "as-built network"
    min_suction_bar: float = 0.6
    integrity: IntegrityLimits | None = None

    @cached_property
    def derating(self) -> Derating | None:
        """The integrity derating of the line as it runs now (None without assessed features); solved once."""
        if self.integrity is None or len(self.integrity) == 0:
            return None
        from pumptwin.twin.hydraulic.solver import compile_network
        from pumptwin.twin.integrity.line import derate
        from pumptwin.twin.whatif.path import main_path

        model = compile_network(self.network)
        return derate(
            model, self.integrity, path=main_path(model), accuracy=self.accuracy, max_maop_use=self.limits.max_maop_use
        )

    def suction_nodes(self) -> dict[str, str]:
        """Suction node by network station of the line's stations."""
        return {s.network_station: s.suction_node for s in self.registry.stations if s.line == self.line}

    @property
    def pumps(self) -> tuple[PumpSpec, ...]:
        """The line's pumps of the registry, in registry order."""
        ids = {p.id for p in self.network.pumps}
        return tuple(p for p in self.registry.pumps if p.line == self.line and p.pump_id in ids)

    def pump(self, asset: str) -> PumpSpec | None:
        """The line's pump named ``asset`` (``PS01.P1``), None when it is not a pump of the line."""
        return next((p for p in self.pumps if p.name == asset), None)

    def running(self) -> tuple[str, ...]:
        """Pump ids running now."""
        return tuple(p.id for p in self.network.pumps if p.status != LinkStatus.CLOSED)

    def speed_change(self, pump_id: str, relative: float) -> SpeedChange:
        """A speed change of pump ``pump_id`` to ``relative`` x its rated speed.

        A pump the view has no rated speed for takes the what-ifs' default (`DEFAULT_RATED_RPM`),
        so the rpm written here means the same relative speed to the solver.
        """
        return SpeedChange(pump_id, rpm=relative * self.rated_speed_rpm.get(pump_id, DEFAULT_RATED_RPM))

    def simulate(self, specs: Sequence[ScenarioSpec]) -> WhatIfReport:
        """Solve the base case and ``specs`` in one batch and assess them against the limits."""
        return run_scenarios(
            self.network,
            list(specs),
            rated_speed_rpm=dict(self.rated_speed_rpm) or DEFAULT_RATED_RPM,
            ambient_c=self.ambient_c,
            conditions=self.conditions,
            limits=self.limits,
            accuracy=self.accuracy,
            include_base=True,
            max_memory_mb=self.max_memory_mb,
            integrity=self.integrity,
        )

    def surge(self, spec: ScenarioSpec) -> tuple[Violation, ...]:
        """Surge, column-separation and transient-envelope integrity violations if ``spec``'s stopped pumps tripped.

        A controlled stop ramps the speed down and is gentler than a trip, so a stop that passes
        this check as a trip passes it as a stop (the check is on the safe side).
        """
        from pumptwin.twin.whatif.surge import transient_surge_check

        tripped = replace(spec, name=f"{spec.name} (as a trip)", trip=(*spec.trip, *spec.stop), stop=())
        rated = dict(self.rated_speed_rpm) or DEFAULT_RATED_RPM
        report = run_scenarios(
            self.network,
            [tripped],
            rated_speed_rpm=rated,
            ambient_c=self.ambient_c,
            conditions=self.conditions,
            limits=self.limits,
            accuracy=self.accuracy,
            include_base=False,
            surge_check=transient_surge_check(
                rated_speed_rpm=rated, max_memory_mb=self.max_memory_mb, integrity=self.integrity
            ),
            max_memory_mb=self.max_memory_mb,
        )
        out: ScenarioOutcome = report.outcomes[0]
        return tuple(v for v in out.violations if v.limit in SURGE_LIMITS or v.unit == ENVELOPE_INTEGRITY_UNIT)


SURGE_LIMITS = ("SURGE", "COLUMN SEPARATION")
"""Violations the transient check adds (besides the ``INTEGRITY`` ones of its pressure envelope)."""
