"""The plant simulator: a stand-in for real pump stations, reached only through tags and setpoints.

Modules:
    health: pure pump and motor health physics and the hidden degradation modes.
    sensors: sensor realism (noise, drift, stuck values, dropouts, PI quality flags).
    operations: the control system's state (start/stop, speed setpoints, standby switching).
    scenario: scenarios described in YAML files (operations, faults, sensors).
    simulator: `Plant`, which runs a fleet of stations and produces PI-style readings.

The asset registry (what an operator knows) is the twin's, `pumptwin.twin.assets`; the simulator
draws its hidden per-asset physics from priors of its own. The twin never reads the simulator's
truth: ground truth lives in `Plant.ground_truth()`, apart from the readings.
"""
