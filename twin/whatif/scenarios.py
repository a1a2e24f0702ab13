"""Declarative what-if scenarios: a versioned YAML schema, command-line actions, and their resolution.

A scenario file (schema version 1) holds several scenarios; each is a mapping of
actions, all optional::

    version: 1
    rated_speed_rpm: 1480          # one number, or {pump id: rpm}; needed for speeds in rpm
    ambient_c: 25                  # for predicted bearing temperatures
    scenarios:
      - name: throughput +10 %
        flow: +10%                 # change of delivered flow (%, or a target such as 2300 m3/h)
      - name: PS2 slower, standby at PS1
        speed: {PS2: 0.95, PS1-P1: 1400rpm}   # pump, station or "all": factor on the current speed, or rpm
        standby: [PS1-P1]          # stop the pump and start a stopped pump of its station
      - name: leak and low suction
        leak: {km: 90, size: 50 m3/h}         # or size: 2% (of the base throughput); or node: KP090
        suction_drop: 0.5 bar      # the source's head falls by dp / (rho g)

Other actions: ``stop``, ``start``, ``trip`` (lists of pump ids; a trip is a stop in the steady
result), ``links`` ({pipe or valve: open | closed}), ``valves`` ({valve: open | closed | setting},
a number throttles: PRV/PSV/PBV m, FCV m3/s, TCV loss coefficient), ``demand_factor``,
``demand`` ({junction: flow}), ``fixed_heads`` ({reservoir or tank: head m}), ``rupture``
({km or node, area_fraction}: a line break).

Resolution against the network (`resolve`) needs the line's main path and its base solution:

- **Chainage** is cumulative pipe length along the main path from its source (`twin.whatif.main_path`).
  A leak or rupture given by km is placed at the junction of the main path nearest to that
  chainage; the note on the result names the junction and its chainage.
- **Leak size** in m3/h, L/s or m3/s, or % of the base throughput, becomes a leak flow; the
  solver finds the emitter coefficient C (q = C p^0.5, p in m of pressure head) that discharges
  that flow in the scenario's own pressures.
- **Rupture**: an orifice of the pipe bore, q = Cd A sqrt(2 g p) with Cd = 0.6 and A the
  largest adjacent pipe's bore area times ``area_fraction``, i.e. C = Cd A sqrt(2 g).
- **Speeds**: a plain number is a factor on the pump's base speed (1.0 = rated for a stopped
  pump, which it starts); ``NNNNrpm`` is an absolute speed over the rated rpm. A station or
  ``all`` means its pumps that run in the base state.
- **Flow** ``+10%`` is a throughput target of 1.10 x base, met by scaling every running pump's
  speed by one common factor.

Errors raise `ScenarioError` naming the file, the scenario and the bad key or value.

The pieces live by concern: the declared scenario and its defaults in `twin.whatif.spec`,
values, files and flags in `twin.whatif.parsing`, resolution and the batch run in
`twin.whatif.resolve`, the surge check in `twin.whatif.surge`; this module is their one import.
"""

from __future__ import annotations

from pumptwin.twin.whatif.parsing import (
    parse_flow,
    parse_flow_change,
    parse_location,
    parse_number,
    parse_pressure_pa,
    parse_scenario,
    parse_scenarios,
    parse_speed,
    read_scenarios,
    scenario_from_flags,
)
from pumptwin.twin.whatif.resolve import (
    LineContext,
    line_context,
    resolve,
    run_scenarios,
)
from pumptwin.twin.whatif.spec import (
    BASE_NAME,
    DEFAULT_AMBIENT_C,
    DEFAULT_RATED_RPM,
    EXPONENT_TOLERANCE,
    FILE_KEYS,
    KM_TOLERANCE,
    RUPTURE_DISCHARGE_COEFF,
    SCENARIO_KEYS,
    SCHEMA_VERSION,
    LeakSpec,
    RuptureSpec,
    ScenarioError,
    ScenarioSet,
    ScenarioSpec,
    SpeedChange,
)
from pumptwin.twin.whatif.surge import (
    transient_surge_check,
)

__all__ = [
    "BASE_NAME",
    "DEFAULT_AMBIENT_C",
    "DEFAULT_RATED_RPM",
    "EXPONENT_TOLERANCE",
    "FILE_KEYS",
    "KM_TOLERANCE",
    "LeakSpec",
    "LineContext",
    "RUPTURE_DISCHARGE_COEFF",
    "RuptureSpec",
    "SCENARIO_KEYS",
    "SCHEMA_VERSION",
    "ScenarioError",
    "ScenarioSet",
    "ScenarioSpec",
    "SpeedChange",
    "line_context",
    "parse_flow",
    "parse_flow_change",
    "parse_location",
    "parse_number",
    "parse_pressure_pa",
    "parse_scenario",
    "parse_scenarios",
    "parse_speed",
    "read_scenarios",
    "resolve",
    "run_scenarios",
    "scenario_from_flags",
    "transient_surge_check",
]
