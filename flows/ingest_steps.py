"""The steps of ingestion: read a source, validate it, store the good rows, quarantine the rest.

A source is named by one string:

- a file or folder path: CSV or Parquet, long (``tag, ts, value, quality``) or wide tables;
- ``simulator:NAME`` (a shipped plant scenario, e.g. ``simulator:bearing_failure``) or
  ``simulator:PATH.yaml``: readings from the plant simulator;
- ``pi:FILTER`` (e.g. ``pi:PS01.*``): recorded values from the PI Web API historian in the
  settings (``PUMPTWIN_HISTORIAN__URL`` ...), for the points whose names match the filter.

These are plain functions: the Prefect flow (`flows.ingest`) wraps them as tasks, and the CLI
(``pumptwin ingest``) runs them without an orchestrator.

A file or folder is not read here: `read_source` returns a `PathSource`, and `store_source` reads,
validates and stores it chunk by chunk (``settings.ingest.chunk_readings`` readings at a time), so
a large file never sits in memory whole. The watermark decides what to read, not what to keep:
for a ``pi:`` source without a start, an incremental read starts at the oldest watermark of its
points minus ``settings.ingest.overlap_s``; files and the simulator are stored whole (rows already
stored are counted as duplicates). Readings later than the wall clock plus
``settings.ingest.max_future_s`` and readings of tags no asset of the registry carries are
quarantined, never stored.

With ``settings.storage.raw_url`` set (``s3://bucket/prefix``, on ``settings.storage.endpoint_url``
for an S3-compatible server), the partitions a run stored are pushed to that copy of the raw store
after the run (`features.ingest.objectstore.replicate`); a failed push leaves them listed in
``<raw>/_replica_pending.json`` for the next run and never fails the rows stored.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from pumptwin.features.ingest.objectstore import ObjectStoreError, ReplicaSync, mark_pending, replicate
from pumptwin.features.ingest.pi_web_api import BasicAuth, BearerAuth, PIWebAPIClient
from pumptwin.features.ingest.pipeline import IngestSummary, ingest_chunks, new_run_id
from pumptwin.features.ingest.rawstore import RawStore, WriteResult
from pumptwin.features.ingest.sources import SourceResult, from_frame, iter_path
from pumptwin.features.validation import NEWEST, TagRules, TagValidator
from pumptwin.flows.settings import Settings, SettingsError
from pumptwin.flows.store_steps import raw_store
from pumptwin.plant.scenario import read_scenario, shipped_scenario
from pumptwin.plant.simulator import Plant
from pumptwin.twin.assets import LINE_PREFIX, build_registry, lines_for_stations, measure_ranges
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.safety import child_path
from pumptwin.twin.times import to_utc

_LOG = logging.getLogger(__name__)

SIMULATOR = "simulator:"
PI = "pi:"

MAX_FLEET_LINES = 1000
"""Most lines a fleet's registry is built for when checking tags (a station number beyond is unknown)."""


@dataclass(frozen=True)
class IngestReport:
    """What one ingest run did: the store's summary, the validation report (markdown) and the replica push.

    `replica` is None when no object-storage replica is set (``settings.storage.raw_url``).
    """

    summary: IngestSummary
    validation_markdown: str
    replica: ReplicaSync | None = None

    @property
    def clean(self) -> bool:
        """True when nothing was quarantined or refused."""
        return self.summary.clean

    def to_markdown(self) -> str:
        """The run as markdown: rows in, stored, quarantined by reason, per station, validation, replica."""
        text = f"{self.summary.to_markdown()}\n\n## Validation\n\n{self.validation_markdown}"
        if self.replica is not None:
            text += f"\n\n## Replica\n\n{self.replica.to_markdown()}"
        return text


class _TouchedStore(RawStore):
    """The raw store of the settings, remembering the partitions its writes touched (for the replica)."""

    def __init__(self, store: RawStore) -> None:
        super().__init__(
            store.root,
            compression=store.compression,
            max_workers=store.max_workers,
            lock_timeout_s=store.lock_timeout_s,
            max_future_s=store.max_future_s,
            clock=store.clock,
            compact_files=store.compact_files,
        )
        self.touched: set[tuple[str, date]] = set()

    def write(
        self,
        readings: pd.DataFrame,
        *,
        ingested_at: datetime | pd.Timestamp | None = None,
        now: datetime | pd.Timestamp | None = None,
    ) -> WriteResult:
        """Store readings (see `RawStore.write`) and remember the partitions written."""
        result = super().write(readings, ingested_at=ingested_at, now=now)
        self.touched.update(result.partitions)
        return result


@dataclass(frozen=True)
class PathSource:
    """A file or folder to ingest, read chunk by chunk when stored (see `store_source`).

    Attributes:
        path: The file or folder.
        start: Only readings at or after this instant (UTC); None for no bound.
        end: Only readings before this instant (UTC); None for no bound.
        chunk_readings: Readings per chunk, at most.
    """

    path: Path
    start: datetime | None = None
    end: datetime | None = None
    chunk_readings: int = 1_000_000

    @property
    def source(self) -> str:
        """The source's name: the path."""
        return str(self.path)

    def chunks(self) -> Iterator[SourceResult]:
        """Read the file or folder chunk by chunk, keeping the readings in [start, end).

        Yields:
            One `SourceResult` per chunk (a refused file as one chunk with a refusing problem).
        """
        for chunk in iter_path(self.path, chunk_readings=self.chunk_readings):
            windowed = _window(chunk, self.start, self.end)
            del chunk  # not held while the next chunk is read
            yield windowed
            del windowed


class RegistryTags:
    """The tags of the fleet's registry, sized to the stations a chunk names (`known_tags` of the pipeline).

    A fleet is copies (lines) of the network; ``PS05`` on a two-station network lies on line 3, and
    ``LINE03`` meters on line 3. The registry is built for as many lines as the chunk's stations
    and meters need, up to `MAX_FLEET_LINES`.

    Args:
        network: The network every line copies.
    """

    def __init__(self, network: Network) -> None:
        self.network = network

    @functools.lru_cache(maxsize=8)  # noqa: B019 - one instance per run; the cache dies with it
    def _tags(self, lines: int) -> frozenset[str]:
        return frozenset(build_registry(self.network, lines).tag_names)

    def __call__(self, tags: Sequence[str]) -> Collection[str]:
        """Return the tags among `tags` that the registry knows.

        Args:
            tags: Tag names of a chunk.

        Returns:
            The known ones.
        """
        stations = {tag.split(".", 1)[0] for tag in tags}
        meters = [s.removeprefix(LINE_PREFIX) for s in stations if s.startswith(LINE_PREFIX)]
        lines = max([lines_for_stations(self.network, stations)] + [int(n) for n in meters if n.isdigit()])
        return self._tags(min(lines, MAX_FLEET_LINES)).intersection(tags)


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

    Raises:
        UnsafePathError: When ``name`` would lead outside the labels folder (``../x``, an absolute path).
    """
    folder = settings.labels_dir
    path = child_path(folder, f"{name}.parquet", what="scenario name")
    path.parent.mkdir(parents=True, exist_ok=True)
    labels.to_parquet(path, index=False)
    return path


def read_source(
    source: str,
    settings: Settings,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    incremental: bool = True,
    now: datetime | None = None,
) -> SourceResult | PathSource:
    """Read ``source`` (a path, ``simulator:...`` or ``pi:...``) over the window [start, end).

    A path is not read yet: it comes back as a `PathSource` that `store_source` reads in chunks.

    Args:
        source: A file or folder path, ``simulator:SCENARIO`` or ``pi:NAME_FILTER``.
        settings: The settings of this entry point.
        start: Start of the window (UTC). For ``pi:`` without it, an incremental read starts at the
            points' oldest watermark minus ``settings.ingest.overlap_s``.
        end: End of the window (UTC, exclusive); for ``pi:`` default the wall clock.
        incremental: For ``pi:`` without a start, start from the watermarks.
        now: The wall clock; default the current time.

    Returns:
        The readings (simulator, historian) or the path to read in chunks.

    Raises:
        PIWebAPITransientError: The historian did not answer after the client's retries (the flow
            retries the task).
        SettingsError: A ``pi:`` source without a historian URL or data server, or without a start
            where a point has no watermark yet (or the read is not incremental).
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
        return _read_historian(source, settings, start, end, incremental=incremental, now=now)
    return PathSource(Path(source), start, end, settings.ingest.chunk_readings)


def _read_historian(
    source: str,
    settings: Settings,
    start: datetime | None,
    end: datetime | None,
    *,
    incremental: bool,
    now: datetime | None,
) -> SourceResult:
    """Read the recorded values of the ``pi:`` source's points; the window starts at the watermarks."""
    hist = settings.historian
    if hist.url is None or hist.data_server is None:
        raise SettingsError("a pi: source needs PUMPTWIN_HISTORIAN__URL and PUMPTWIN_HISTORIAN__DATA_SERVER")
    if start is None and not incremental:
        raise SettingsError("a pi: source needs a start (--start) when the read is not incremental")
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
    wall = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    if start is None:
        start = raw_store(settings).window_start(
            [p.name for p in points], overlap=timedelta(seconds=settings.ingest.overlap_s), now=wall
        )
        if start is None:
            raise SettingsError(
                f"a pi: source needs a start (--start): some of its {len(points)} points have no watermark yet"
            )
    return client.read_recorded({p.name: p.web_id for p in points}, start, end if end is not None else wall)


def store_source(
    result: SourceResult | PathSource, settings: Settings, *, now: pd.Timestamp | None = None
) -> IngestReport:
    """Validate ``result`` against the fleet's registry, store the good rows and quarantine the rest.

    A `PathSource` is read, validated and stored chunk by chunk. Readings later than the wall
    clock plus ``settings.ingest.max_future_s`` and readings of tags no asset of the registry
    carries are quarantined; freshness is judged as of each chunk's newest admissible reading.

    Args:
        result: What `read_source` returned.
        settings: The settings of this entry point.
        now: The wall clock; default the current time (tests pass a fixed one).

    Returns:
        The store's summary, the validation summaries and, with ``settings.storage.raw_url`` set,
        the push of the partitions written (plus any left pending by earlier runs) to the replica.
        A failed push does not fail the step: the rows stay stored locally, the partitions stay
        listed in ``<raw>/_replica_pending.json`` and the next run pushes them; the report and a
        warning say the replica is behind.
    """
    wall = to_utc(now) if now is not None else pd.Timestamp.now(tz="UTC")
    network = load_network(settings.twin.network)
    rules = TagRules(
        max_future=timedelta(seconds=settings.ingest.max_future_s), chunk_rows=settings.ingest.chunk_readings
    )
    validator = TagValidator(
        measure_ranges(build_registry(network)),
        report_dir=settings.validation_dir,
        now=wall,
        as_of=NEWEST,
        rules=rules,
        source=result.source,
        keep_rows=False,
    )
    chunks = result.chunks() if isinstance(result, PathSource) else [result]
    # One partition at a time: parallel appends and compactions would multiply the peak memory.
    store = _TouchedStore(raw_store(settings, max_workers=1))
    replica_url = settings.storage.raw_url
    try:
        summary = ingest_chunks(
            chunks,
            store,
            source=result.source,
            validate=validator,
            known_tags=RegistryTags(network),
            run_id=new_run_id(),
            now=wall,
        )
    except BaseException:
        if replica_url is not None and store.touched:  # what earlier chunks stored goes up with the next push
            with contextlib.suppress(ObjectStoreError, OSError):
                mark_pending(store.root, store.touched, lock_timeout_s=settings.ingest.lock_timeout_s)
        raise
    replica = None
    if replica_url is not None:
        replica = replicate(
            store.root,
            replica_url,
            store.touched,
            endpoint_url=settings.storage.endpoint_url,
            lock_timeout_s=settings.ingest.lock_timeout_s,
        )
        if replica.behind:
            _LOG.warning("%s", replica.to_markdown())
    markdown = "\n\n".join(o.markdown for o in validator.outcomes) or "nothing to validate"
    return IngestReport(summary, markdown, replica)
