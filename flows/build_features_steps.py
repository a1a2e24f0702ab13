"""The steps of building features: raw readings to checked per-pump features in the feature store.

Plain functions over the settings: the Prefect flow ``build-features`` (`flows.build_features`)
wraps them as tasks, the demo and the tests call them directly. Features at a time need readings
up to one long window before it, so a window [start, end) reads raw data from
``start - long_window``; only feature rows inside the window are written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.features.feature_checks import FeatureCheck, check_features
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.settings import Settings
from pumptwin.twin.assets import Registry, build_registry, lines_for_stations
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.times import utc_or_none


@dataclass(frozen=True)
class FeatureBuild:
    """What one build did.

    Attributes:
        rows: Feature rows computed inside the window.
        stored: Rows written to the offline store (the good ones).
        pumps: Pumps with at least one feature row.
        start: First feature timestamp written (None when nothing was).
        end: Last feature timestamp written.
        check: The feature check (kept rows, quarantine, missing rates).
        offline_path: The offline store's parquet file.
        quarantine_path: Where quarantined rows were written (None when none were).
    """

    rows: int
    stored: int
    pumps: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    check: FeatureCheck
    offline_path: Path
    quarantine_path: Path | None

    def summary(self) -> dict[str, Any]:
        """The build's counts and window as plain data (timestamps ISO 8601)."""
        return {
            "rows": self.rows,
            "stored": self.stored,
            "quarantined": len(self.check.quarantined),
            "pumps": self.pumps,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
        }

    def to_markdown(self) -> str:
        """The build as markdown for the flow's artifact."""
        window = f"{self.start} .. {self.end}" if self.start is not None else "nothing in the window"
        head = [
            "# Feature build",
            "",
            f"- window: {window}",
            f"- pumps: {self.pumps}",
            f"- rows computed: {self.rows:,}, stored: {self.stored:,}",
            f"- offline store: `{self.offline_path}`",
        ]
        if self.quarantine_path is not None:
            head.append(f"- quarantine: `{self.quarantine_path}`")
        return "\n".join([*head, "", "## Checks", "", self.check.to_markdown()])


def read_fault_labels(settings: Settings) -> pd.DataFrame:
    """Every stored fault label (empty frame with the label columns when there is none)."""
    files = sorted(settings.labels_dir.glob("*.parquet")) if settings.labels_dir.is_dir() else []
    frames = [pd.read_parquet(f) for f in files]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["asset", "station", "mode", "onset_ts", "failure_ts"])
    return pd.concat(frames, ignore_index=True).drop_duplicates(subset=["asset", "mode", "onset_ts"])


def fleet_registry(settings: Settings, stations: list[str]) -> Registry:
    """The registry of the fleet whose stations are ``stations``, on the configured network."""
    network = load_network(settings.twin.network)
    return build_registry(network, lines_for_stations(network, stations))


VIB_BASELINE_FILE = "vib_baseline.parquet"
"""Each pump's vibration reference (`features.transforms.build.vibration_baseline`), in the feast folder."""


def last_feature_time(settings: Settings) -> pd.Timestamp | None:
    """The newest feature row in the offline store (None before the first build)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pumptwin.features.store import offline_path

    path = offline_path(settings.feast_dir)
    if not path.is_file():
        return None
    newest = pc.max(pq.read_table(path, columns=["event_timestamp"]).column(0)).as_py()
    return None if newest is None else utc_or_none(newest)


def _stored_baseline(settings: Settings) -> pd.DataFrame | None:
    path = settings.feast_dir / VIB_BASELINE_FILE
    return pd.read_parquet(path) if path.is_file() else None


def features_and_new_baselines(
    settings: Settings, readings: pd.DataFrame, registry: Registry, network: Network
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-pump features of ``readings`` and the vibration references of pumps that have none stored.

    Vibration is compared with each pump's stored reference (``<feast_dir>/vib_baseline.parquet``).
    A pump without one gets a reference fitted on these readings; it is returned, not written
    (`save_baselines` writes it), and reused from then on: a window-by-window build would otherwise
    refit it on data that may be degraded.

    Returns:
        The feature rows (every timestamp the readings support) and the newly fitted references
        (maybe empty).
    """
    from pumptwin.features.transforms.build import pump_features, vibration_baseline

    cfg = settings.models
    baseline = _stored_baseline(settings)
    frame = pump_features(
        readings,
        registry,
        network,
        cadence_s=cfg.cadence_s,
        short_window_s=cfg.short_window_s,
        long_window_s=cfg.long_window_s,
        vib_baseline=baseline,
    )
    known = set() if baseline is None else set(baseline["pump_id"])
    fitted = pd.DataFrame()
    if set(frame["pump_id"]) - known:
        fitted = vibration_baseline(readings, registry, network, cadence_s=cfg.cadence_s)
        fitted = fitted[~fitted["pump_id"].isin(known)].reset_index(drop=True)
    return frame, fitted


def save_baselines(settings: Settings, fitted: Sequence[pd.DataFrame]) -> None:
    """Add newly fitted vibration references to the stored ones (a stored pump's reference is kept)."""
    fitted = [f for f in fitted if len(f)]
    if not fitted:
        return
    baseline = _stored_baseline(settings)
    known = set() if baseline is None else set(baseline["pump_id"])
    added: list[pd.DataFrame] = []
    for part in fitted:  # a pump's reference (several rows) comes whole from the first that has it
        new = part[~part["pump_id"].isin(known)]
        known |= set(new["pump_id"])
        added.append(new)
    merged = pd.concat(([baseline] if baseline is not None else []) + added, ignore_index=True)
    path = settings.feast_dir / VIB_BASELINE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    merged.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def compute_features(
    settings: Settings,
    start: datetime | pd.Timestamp | str | None = None,
    end: datetime | pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """Per-pump features over [start, end) from the raw store.

    Without ``start`` a build resumes at the newest stored feature row (that row is recomputed, as
    its windows may have been partly filled), so a scheduled build does only new work; the first
    build covers the whole raw store.

    Vibration is compared with each pump's stored reference, fitted on the first build that saw the
    pump running and kept from then on (`features_and_new_baselines`).
    """
    first, last = utc_or_none(start), utc_or_none(end)
    if first is None:
        first = last_feature_time(settings)
    store = RawStore(settings.raw_dir)
    stations = sorted({s for s, _ in store.partitions()})
    read_from = None if first is None else first - pd.Timedelta(seconds=settings.models.long_window_s)
    readings = store.read(None, read_from, last)
    network = load_network(settings.twin.network)
    registry = build_registry(network, lines_for_stations(network, stations))
    frame, fitted = features_and_new_baselines(settings, readings, registry, network)
    save_baselines(settings, [fitted])
    if first is not None:
        frame = frame[frame["event_timestamp"] >= first]
    if last is not None:
        frame = frame[frame["event_timestamp"] < last]
    return frame.reset_index(drop=True)


def store_features(settings: Settings, frame: pd.DataFrame) -> FeatureBuild:
    """Check ``frame``, write the good rows to the offline store, register the definitions, materialise.

    Quarantined rows go to ``<feast_dir>/quarantine/<first>_<last>.parquet`` with their reasons.
    """
    from pumptwin.features.store import apply_definitions, materialize, write_offline
    from pumptwin.flows.store_steps import feature_store

    check = check_features(frame)
    feast_dir = settings.feast_dir
    quarantine_path = None
    if len(check.quarantined):
        folder = feast_dir / "quarantine"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
        quarantine_path = folder / f"features_{stamp}.parquet"
        check.quarantined.to_parquet(quarantine_path, index=False)
    good = check.good
    offline_path = write_offline(good, feast_dir)
    store = feature_store(settings)
    apply_definitions(store)
    first = last = None
    if len(good):
        first, last = good["event_timestamp"].min(), good["event_timestamp"].max()
        materialize(store, first.to_pydatetime(), (last + pd.Timedelta(microseconds=1)).to_pydatetime())
    return FeatureBuild(
        rows=len(frame),
        stored=len(good),
        pumps=int(good["pump_id"].nunique()) if len(good) else 0,
        start=first,
        end=last,
        check=check,
        offline_path=offline_path,
        quarantine_path=quarantine_path,
    )
