"""The steps of ingestion: read a source, validate it, store the good rows, quarantine the rest.

A source is named by one string:

- a file or folder path: CSV or Parquet, long (``tag, ts, value, quality``) or wide tables;
- ``simulator:NAME`` (a shipped plant scenario, e.g. ``simulator:bearing_failure``) or
  ``simulator:PATH.yaml``: readings from the plant simulator;
- ``pi:FILTER`` (e.g. ``pi:PS01.*``): recorded values from the PI Web API historian in the
  settings (``PUMPTWIN_HISTORIAN__URL`` ...), for the points whose names match the filter.

These are plain functions: the Prefect flow (`flows.ingest`) wraps them as tasks, and the CLI
(``pumptwin ingest``) runs them without an orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from pumptwin.features.ingest.pi_web_api import BasicAuth, BearerAuth, PIWebAPIClient
from pumptwin.features.ingest.pipeline import IngestSummary, ingest_source, new_run_id
from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.features.ingest.sources import SourceResult, from_frame, read_path
from pumptwin.features.validation import TagValidator
from pumptwin.flows.settings import Settings, SettingsError
from pumptwin.plant.scenario import read_scenario, shipped_scenario
from pumptwin.plant.simulator import Plant
from pumptwin.twin.assets import build_registry, measure_ranges
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.times import to_utc

SIMULATOR = "simulator:"
PI = "pi:"


@dataclass(frozen=True)
class IngestReport:
    """What one ingest run did: the store's summary and the validation report (markdown)."""

    summary: IngestSummary
    validation_markdown: str

    @property
    def clean(self) -> bool:
        """True when nothing was quarantined or refused."""
        return self.summary.clean

    def to_markdown(self) -> str:
        """The run as markdown: rows in, stored, quarantined by reason, per station, validation."""
        return f"{self.summary.to_markdown()}\n\n## Validation\n\n{self.validation_markdown}"


def _window(frame: SourceResult, start: datetime | None, end: datetime | None) -> SourceResult:
    """Keep the readings in [start, end); rows outside the window are not this run's (nothing is lost)."""
    if start is None and end is None:
        return frame
    ts = frame.readings["ts"]
    keep = pd.Series(True, index=frame.readings.index)
    if start is not None:
        keep &= ts >= to_utc(start)
    if end is not None:
        keep &= ts < to_utc(end)
    origin = frame.origin[keep] if frame.origin is not None else None
    return SourceResult(frame.readings[keep], frame.rejected, frame.problems, frame.source, origin)


def write_fault_labels(labels: pd.DataFrame, name: str, settings: Settings) -> Path:
    """Keep a simulated run's fault labels (asset, mode, onset, failure) for training and evaluation.

    Written to ``<labels_dir>/<name>.parquet``; training reads every file there. Labels describe
    what was simulated; the twin itself never reads them.
    """
    folder = settings.labels_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    labels.to_parquet(path, index=False)
    return path


def read_source(
    source: str, settings: Settings, start: datetime | None = None, end: datetime | None = None
) -> SourceResult:
    """Read ``source`` (a path, ``simulator:...`` or ``pi:...``) over the window [start, end).

    Raises:
        PIWebAPITransientError: The historian did not answer after the client's retries (the flow
            retries the task).
        SettingsError: A ``pi:`` source without a historian URL, data server or window.
    """
    if source.startswith(SIMULATOR):
        name = source.removeprefix(SIMULATOR)
        scenario = read_scenario(name) if name.endswith((".yaml", ".yml")) else shipped_scenario(name)
        plant = Plant(scenario)
        if end is None:
            readings = plant.run()
        else:  # simulate only as far as the window needs
            plant.advance(
                max(0.0, min((to_utc(end) - scenario.start).total_seconds(), scenario.n_steps * plant.step_s))
            )
            readings = plant.read_tags()
        write_fault_labels(plant.ground_truth().labels, scenario.name, settings)
        return _window(from_frame(readings, source), start, end)
    if source.startswith(PI):
        hist = settings.historian
        if hist.url is None or hist.data_server is None or start is None or end is None:
            raise SettingsError("a pi: source needs PUMPTWIN_HISTORIAN__URL, __DATA_SERVER and a start and end")
        auth = (
            BearerAuth(hist.token.get_secret_value())
            if hist.token is not None
            else BasicAuth(hist.username or "", hist.password.get_secret_value())
            if hist.password is not None
            else None
        )
        client = PIWebAPIClient(
            hist.url, auth=auth, timeout_s=hist.timeout_s, verify=hist.verify_tls, max_count=hist.max_count
        )
        points = client.find_points(client.data_server(hist.data_server), source.removeprefix(PI))
        return client.read_recorded({p.name: p.web_id for p in points}, start, end)
    return _window(read_path(Path(source)), start, end)


def store_source(
    result: SourceResult, settings: Settings, *, incremental: bool = True, now: pd.Timestamp | None = None
) -> IngestReport:
    """Validate ``result`` against the reference fleet's physical ranges, store it and quarantine bad rows."""
    ranges = measure_ranges(build_registry(load_network(settings.twin.network)))
    end = now if now is not None else (result.readings["ts"].max() if len(result.readings) else None)
    validator = TagValidator(ranges, report_dir=settings.validation_dir, now=end, source=result.source)
    summary = ingest_source(
        result, RawStore(settings.raw_dir), validate=validator, incremental=incremental, run_id=new_run_id()
    )
    markdown = "\n\n".join(o.markdown for o in validator.outcomes) or "nothing to validate"
    return IngestReport(summary, markdown)
