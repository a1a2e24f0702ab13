"""Feast definitions of the pump features: entity, source, feature views and one service per model.

`feast apply` (run in this folder) imports this module: it only constructs Feast objects. The
field lists come from `features.transforms.schema.feature_groups`, the same lists `pump_features`
produces with the default windows (1 h and 24 h), so the schema cannot drift from the transform.

Views (all keyed by the entity ``pump`` with join key ``pump_id``, rows every 10 minutes):

- ``pump_physics``: physics residuals at the row's 10-minute interval (head, power, efficiency,
  NPSH margin, %BEP, bearing and winding rise, vibration over its baseline);
- ``pump_rolling_short``: mean, std, max, kurtosis and slope per measure over the last hour,
  running fraction and hourly means of the residuals;
- ``pump_rolling_long``: the same over the last 24 hours.

Services: ``anomaly_detector`` (all three views: its inputs are 24 h means of residuals),
``failure_diagnosis`` (all three views),
``time_to_failure`` (physics + long).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Float64
from feast.value_type import ValueType

from pumptwin.features.transforms.schema import feature_groups

PROJECT = "pumptwin"
"""Feast project name (as in `feature_store.yaml`)."""
DATA_FILE = "pump_features.parquet"
"""Offline feature file name inside the feast data folder."""
REPO_DATA_PATH = f"../.pumptwin/feast/data/{DATA_FILE}"
"""Offline file as `feast apply` in `features/` registers it (relative to this folder)."""
FEATURE_TTL = timedelta(hours=2)
"""How old a feature row may be and still join to an entity timestamp."""
VIEW_GROUPS = {
    "pump_physics": "physics",
    "pump_rolling_short": "rolling_short",
    "pump_rolling_long": "rolling_long",
}
"""Feature view name -> feature group of `features.transforms.schema.feature_groups`."""
SERVICES = {
    "anomaly_detector": ("pump_physics", "pump_rolling_short", "pump_rolling_long"),
    "failure_diagnosis": ("pump_physics", "pump_rolling_short", "pump_rolling_long"),
    "time_to_failure": ("pump_physics", "pump_rolling_long"),
}
"""Feature service name -> the views it serves."""


def build_definitions(data_path: str) -> list[Any]:
    """Entity, source, views and services, with the offline parquet file at ``data_path``.

    Args:
        data_path: Path of the offline parquet file (absolute, or relative to the repo folder).

    Returns:
        Objects for `FeatureStore.apply`: the entity, the source, the views, then the services.
    """
    pump = Entity(
        name="pump",
        join_keys=["pump_id"],
        value_type=ValueType.STRING,
        description="A pump of the fleet, STATION.ASSET (PS01.P1).",
    )
    source = FileSource(
        name="pump_features_source",
        path=data_path,
        timestamp_field="event_timestamp",
        description="Per-pump features every 10 minutes, written by features.store.write_offline.",
    )
    groups = feature_groups()
    views = {
        name: FeatureView(
            name=name,
            entities=[pump],
            ttl=FEATURE_TTL,
            schema=[Field(name=col, dtype=Float64) for col in groups[group]],
            source=source,
            online=True,
            tags={"group": group},
        )
        for name, group in VIEW_GROUPS.items()
    }
    services = [
        FeatureService(name=name, features=[views[v] for v in view_names], description=f"Features of {name}.")
        for name, view_names in SERVICES.items()
    ]
    return [pump, source, *views.values(), *services]


pump_entity, pump_features_source, pump_physics, pump_rolling_short, pump_rolling_long, *_services = build_definitions(
    REPO_DATA_PATH
)
anomaly_detector, failure_diagnosis, time_to_failure = _services
