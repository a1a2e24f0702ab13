"""A thin typed wrapper over the Feast feature store of the pump features; paths come in as arguments.

Layout of a feast folder (``<PUMPTWIN_HOME>/feast`` by default, the same as `feature_store.yaml`
in ``features/`` points at)::

    registry.db                    SQL registry on SQLite
    online_store.db                SQLite online store
    data/pump_features.parquet     offline store (read by DuckDB)

`open_store` builds the configuration of `feature_store.yaml` in code for any folder, or with the
registry on a SQL server and the online store on Redis (production);
`apply_definitions` registers `features.definitions` with the offline file of that folder;
`write_offline` merges feature rows into the offline file; `training_set` joins features to
entity rows point-in-time correctly; `materialize` loads the online store; `online_features`
reads the latest values. Feast is imported inside the functions.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pumptwin.features.transforms.schema import KEY_COLUMNS, feature_names
from pumptwin.twin.errors import PumptwinError

if TYPE_CHECKING:
    from feast import FeatureStore

DATA_DIR = "data"
REGISTRY_FILE = "registry.db"
ONLINE_FILE = "online_store.db"


class StoreError(PumptwinError, ValueError):
    """Invalid feature rows, entity rows, service name or store URL; the message names the value."""


def offline_path(feast_dir: Path) -> Path:
    """The offline parquet file of a feast folder."""
    from pumptwin.features.definitions import DATA_FILE  # noqa: PLC0415 - imports feast

    return Path(feast_dir) / DATA_DIR / DATA_FILE


REDIS_SCHEMES = ("redis", "rediss")
REGISTRY_CACHE_TTL_S = 60
"""How long a store trusts its cached copy of the registry, s (a SQL registry is shared by processes)."""


def redis_online_config(url: str) -> dict[str, Any]:
    """Feast's redis online-store configuration for a ``redis://[[user]:password@]host[:port][/db]`` URL.

    ``rediss://`` turns TLS on. Feast takes ``host:port,db=N[,username=...][,password=...][,ssl=true]``.

    Raises:
        StoreError: Not a redis URL, no host, a bad port or database number, or a comma in the credentials.
    """
    from urllib.parse import unquote, urlsplit  # noqa: PLC0415

    parts = urlsplit(url)
    if parts.scheme not in REDIS_SCHEMES or not parts.hostname:
        raise StoreError(f"online store {url!r} is not a redis://host:port/db URL")
    try:
        port = parts.port or 6379
    except ValueError:
        raise StoreError(f"online store {url!r} has an invalid port") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise StoreError(f"online store {url!r}: database {path!r} is not a number")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    fields = [f"{host}:{port}", f"db={int(path) if path else 0}"]
    for name, value in (("username", parts.username), ("password", parts.password)):
        if value:
            text = unquote(value)
            if "," in text:
                raise StoreError(f"online store {parts.hostname}:{port}: the {name} may not contain a comma")
            fields.append(f"{name}={text}")
    if parts.scheme == "rediss":
        fields.append("ssl=true")
    return {"type": "redis", "connection_string": ",".join(fields)}


def sql_registry_config(url: str) -> dict[str, Any]:
    """Feast's SQL registry configuration on a SQLAlchemy URL (e.g. ``postgresql+psycopg2://u:p@host/feast``).

    Raises:
        StoreError: Not a SQLAlchemy URL.
    """
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"registry {url!r} is not a SQLAlchemy URL (dialect+driver://user:password@host/db)") from None
    engine_kwargs: dict[str, Any] = {"echo": False}
    if parsed.get_backend_name() != "sqlite":
        engine_kwargs["pool_pre_ping"] = True  # a restarted server's dropped connections are replaced
    return {
        "registry_type": "sql",
        "path": url,
        "cache_ttl_seconds": REGISTRY_CACHE_TTL_S,
        "sqlalchemy_config_kwargs": engine_kwargs,
    }


def open_store(feast_dir: Path, *, online_store: str | None = None, registry: str | None = None) -> FeatureStore:
    """A Feast store with its offline file under ``feast_dir`` (created); registry and online store there or on servers.

    Same settings as `feature_store.yaml` by default: project ``pumptwin``, local provider, SQL registry
    on SQLite, SQLite online store, DuckDB offline store, entity key serialization version 3.

    Args:
        feast_dir: The feast folder (offline file; embedded registry and online store).
        online_store: ``redis://[:password@]host:port/db`` for Feast's redis online store; None: SQLite.
        registry: SQLAlchemy URL of a SQL registry (PostgreSQL in production); None: SQLite.

    Raises:
        StoreError: An invalid online-store or registry URL.
    """
    from feast import FeatureStore, RepoConfig  # noqa: PLC0415 - heavy import

    from pumptwin.features.definitions import PROJECT  # noqa: PLC0415

    root = Path(feast_dir).absolute()
    if online_store is None:
        online: dict[str, Any] = {"type": "sqlite", "path": str(root / ONLINE_FILE)}
    else:
        online = redis_online_config(online_store)
    registry_config = sql_registry_config(
        f"sqlite:///{(root / REGISTRY_FILE).as_posix()}" if registry is None else registry
    )
    (root / DATA_DIR).mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project=PROJECT,
        provider="local",
        registry=registry_config,
        online_store=online,
        offline_store={"type": "duckdb"},
        entity_key_serialization_version=3,
        repo_path=root,
    )
    return FeatureStore(config=config)


def apply_definitions(store: FeatureStore) -> None:
    """Register the entity, source, views and services, with the offline file of the store's folder."""
    from pumptwin.features.definitions import build_definitions  # noqa: PLC0415

    root = Path(store.config.repo_path or ".").absolute()
    store.apply(build_definitions(str(offline_path(root))))


def _keys_utc(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    missing = [c for c in KEY_COLUMNS if c not in frame.columns]
    if missing:
        raise StoreError(f"{what}: missing key columns {missing}")
    out = frame.copy()
    out["pump_id"] = out["pump_id"].astype(str)
    try:
        ts = pd.to_datetime(out["event_timestamp"], utc=True)
    except (ValueError, TypeError) as exc:
        raise StoreError(f"{what}: event_timestamp is not a timestamp column: {exc}") from None
    out["event_timestamp"] = ts.dt.floor("us").astype("datetime64[us, UTC]")
    return out


def write_offline(frame: pd.DataFrame, feast_dir: Path) -> Path:
    """Merge feature rows into the offline file; rewriting a window replaces it, never duplicates.

    For each pump in ``frame``, stored rows of that pump between its first and last new
    timestamp are replaced by the new rows. Timestamps are floored to microseconds (DuckDB
    rejects nanoseconds). The file is replaced atomically.

    Args:
        frame: `features.transforms.build.pump_features` output (default windows).
        feast_dir: The feast folder.

    Returns:
        Path of the offline parquet file.

    Raises:
        StoreError: Missing key or feature columns.
    """
    names = feature_names()
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise StoreError(f"feature rows: missing feature columns {missing[:5]} ({len(missing)} in all)")
    new = _keys_utc(frame, "feature rows")[[*KEY_COLUMNS, *names]]
    new = new.drop_duplicates(list(KEY_COLUMNS), keep="last")
    new[names] = new[names].astype(np.float64)
    path = offline_path(feast_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and len(new):
        old = pd.read_parquet(path)
        span = new.groupby("pump_id")["event_timestamp"].agg(["min", "max"])
        lo = old["pump_id"].map(span["min"])
        hi = old["pump_id"].map(span["max"])
        replaced = lo.notna() & (old["event_timestamp"] >= lo) & (old["event_timestamp"] <= hi)
        merged = pd.concat([old[~replaced.to_numpy()], new], ignore_index=True)
    elif path.exists():
        return path
    else:
        merged = new
    merged = merged.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
    tmp = path.with_name(f".{path.name}.tmp")
    merged.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Keep Feast's progress printing off stdout and the offline engine's deprecation notices off stderr."""
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.filterwarnings("ignore", message=".*fetch_arrow_table.*", category=DeprecationWarning)
        yield out


def materialize(store: FeatureStore, start: datetime, end: datetime) -> None:
    """Load the online store with the latest features in [start, end] (a full, not incremental, load)."""
    with _quiet():
        store.materialize(start_date=pd.Timestamp(start).to_pydatetime(), end_date=pd.Timestamp(end).to_pydatetime())


def _service(store: FeatureStore, service: str) -> Any:  # noqa: ANN401 - feast's FeatureService
    from pumptwin.features.definitions import SERVICES  # noqa: PLC0415

    if service not in SERVICES:
        raise StoreError(f"feature service {service!r} is not one of {sorted(SERVICES)}")
    return store.get_feature_service(service)


def training_set(store: FeatureStore, entity_df: pd.DataFrame, service: str) -> pd.DataFrame:
    """Features of a service joined point-in-time correctly to entity rows.

    Each row gets the latest feature row of its pump at or before its ``event_timestamp``
    and no older than the views' ttl (NaN otherwise); features written later never leak in.

    Args:
        store: From `open_store`, with definitions applied.
        entity_df: ``pump_id``, ``event_timestamp`` and any label columns (passed through).
        service: ``anomaly_detector``, ``failure_diagnosis`` or ``time_to_failure``.

    Returns:
        ``entity_df``'s rows in their order (timestamps floored to µs, UTC) plus the features.

    Raises:
        StoreError: Missing key columns or an unknown service.
    """
    fs = _service(store, service)
    entities = _keys_utc(entity_df, "entity rows").reset_index(drop=True)
    entities["_row"] = np.arange(len(entities))
    with _quiet():
        out = store.get_historical_features(entity_df=entities, features=fs).to_df()
    out = out.sort_values("_row").drop(columns="_row").reset_index(drop=True)
    out["event_timestamp"] = pd.to_datetime(out["event_timestamp"], utc=True)
    return out


def online_features(store: FeatureStore, pump_ids: list[str], service: str) -> pd.DataFrame:
    """The latest materialized features of a service for each pump (NaN for a pump not loaded).

    Raises:
        StoreError: An unknown service.
    """
    fs = _service(store, service)
    rows = [{"pump_id": str(p)} for p in pump_ids]
    return store.get_online_features(features=fs, entity_rows=rows).to_df()
