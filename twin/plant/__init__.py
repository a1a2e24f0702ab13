"""The plant simulator: a stand-in for real pump stations, reached only through tags and setpoints.

Modules:
    registry: the asset and tag registry built from a network (``STATION.ASSET.MEASURE`` tags).
    health: pure pump and motor health physics and the hidden degradation modes.
    sensors: sensor realism (noise, drift, stuck values, dropouts, PI quality flags).
    operations: the control system's state (start/stop, speed setpoints, standby switching).
    scenario: scenarios described in YAML files (operations, faults, sensors).
    simulator: `Plant`, which runs a fleet of stations and produces PI-style readings.

The twin never reads the simulator's truth: ground truth lives in `Plant.ground_truth()`, apart
from the readings.
"""
