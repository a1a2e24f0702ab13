"""The steps of scoring: online features to the champions' scores, written for the twin.

Plain functions over the settings; the Prefect flow ``score`` (`flows.score`) wraps them.

The latest feature row of every pump comes from Feast's online store. The anomaly detectors are
causal (smoothing, persistence, windows), so each pump's recent history (``history_s``) is read
from the offline store and the online row is scored at its end. The champions of the three
families (`models.registry.load_model`, alias ``champion``) give per pump: ``anomaly_score``
(1 = alarm threshold) and ``alarm``, failure-mode probabilities ``p_<mode>``, and time to failure
``ttf_s`` with ``ttf_low_s`` / ``ttf_high_s`` (only for a pump in alarm or diagnosed with a fault: the
model learnt from developing faults only), with the versions that produced them. The latest
scores go to ``<scores_dir>/latest.parquet`` (what the twin reads) and are appended to
``<scores_dir>/history.parquet``. A family without a champion is left out, not invented.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from pumptwin.flows.build_features_steps import last_feature_time
from pumptwin.flows.settings import Settings
from pumptwin.flows.train_steps import FAMILIES, tracking
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.times import to_utc

HISTORY_S = 24 * 3600.0
"""Feature history each pump is scored with (causal detectors need their past)."""
LATEST_FILE = "latest.parquet"
HISTORY_FILE = "history.parquet"


class OnlineStoreUnavailableError(PumptwinError, ConnectionError):
    """The online feature store did not answer (after its client's retries); no scores were written."""


@dataclass(frozen=True)
class ScoreReport:
    """What one scoring run did: the scores per pump and which champion versions produced them."""

    scores: pd.DataFrame
    versions: dict[str, str]
    path: Path | None

    def to_markdown(self) -> str:
        """The scores as a markdown table for the flow's artifact."""
        if self.scores.empty:
            return "# Scores\n\nno pump could be scored (no features online or no champion model)"
        versions = ", ".join(f"{k} v{v}" for k, v in self.versions.items()) or "none"
        cols = [c for c in ("asset", "event_timestamp", "anomaly_score", "alarm", "mode", "ttf_s") if c in self.scores]
        return f"# Scores\n\nchampions: {versions}\n\n{self.scores[cols].to_markdown(index=False)}"


def _recent_history(settings: Settings, now: pd.Timestamp | None) -> pd.DataFrame:
    """Offline feature rows of the last ``HISTORY_S`` before ``now`` (default: the newest row); only those are read."""
    import pyarrow.parquet as pq

    from pumptwin.features.store import offline_path

    path = offline_path(settings.feast_dir)
    if not path.is_file():
        return pd.DataFrame()
    newest = last_feature_time(settings) if now is None else pd.Timestamp(now)
    if newest is None:
        return pd.DataFrame()
    end = to_utc(newest)
    since = end - pd.Timedelta(seconds=HISTORY_S)
    frame = pq.read_table(path, filters=[("event_timestamp", ">=", since), ("event_timestamp", "<=", end)]).to_pandas()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


def _champion(settings: Settings, name: str) -> tuple[Any, str] | None:
    from pumptwin.models.registry import RegistryError, champion_version, load_model

    track = tracking(settings)
    try:
        version = champion_version(track, name)
    except RegistryError:  # never registered: no champion to score with
        return None
    if version is None:
        return None
    return load_model(track, name), str(version.version)


def latest_features(settings: Settings, service: str, pump_ids: list[str]) -> pd.DataFrame:
    """The online store's latest features of ``pump_ids`` through ``service``."""
    from pumptwin.features.store import online_features
    from pumptwin.flows.store_steps import feature_store

    if not pump_ids:
        return pd.DataFrame()
    return online_features(feature_store(settings), pump_ids, service)


def _unreachable() -> tuple[type[BaseException], ...]:
    """Errors of a store that does not answer: refused or dropped connections, timeouts (Redis's own too)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    with contextlib.suppress(ImportError):
        from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: PLC0415
        from redis.exceptions import TimeoutError as RedisTimeoutError  # noqa: PLC0415

        errors += [RedisConnectionError, RedisTimeoutError]
    return tuple(errors)


def online_store_name(settings: Settings) -> str:
    """The online store as an operator knows it, without credentials: ``redis://host:port/db`` or the SQLite file."""
    url = settings.feast.online_store
    if url is None:
        return f"SQLite online store in {settings.feast_dir}"
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _online(settings: Settings, service: str, pump_ids: list[str]) -> pd.DataFrame:
    """`latest_features`, with an online store that does not answer turned into one clear error.

    Raises:
        OnlineStoreUnavailableError: The online store refused, dropped or timed out (after its client's retries).
    """
    try:
        return latest_features(settings, service, pump_ids)
    except _unreachable() as exc:
        raise OnlineStoreUnavailableError(
            f"online feature store {online_store_name(settings)} is unreachable ({type(exc).__name__}: {exc}); "
            "no scores were written and the last ones stay: start it or fix PUMPTWIN_FEAST__ONLINE_STORE, "
            "then score again"
        ) from exc


def score_pumps(
    settings: Settings, now: pd.Timestamp | None = None, pumps: Sequence[str] | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Score pumps' latest features with the champions; nothing is written.

    The anomaly detector compares each pump with its running sister pumps, so a subset must hold
    whole stations.

    Args:
        settings: Feature store and registry.
        now: Newest feature time to score at (UTC); None: the newest stored row.
        pumps: The pumps to score; None: every pump with recent features.

    Returns:
        One row per pump (``asset``, ``event_timestamp``, ``anomaly_score``, ``alarm``, ``mode``,
        ``p_<mode>``, ``ttf_*``, ``model_version``) and the champion versions used by family; an
        empty frame and no versions without features or champions.

    Raises:
        OnlineStoreUnavailableError: The online store does not answer. Scoring from the offline store
            instead would hide the outage and may use older rows than the online store holds.
    """
    history = _recent_history(settings, now)
    if not history.empty and pumps is not None:
        history = history[history["pump_id"].isin(set(pumps))].reset_index(drop=True)
    if history.empty:
        return pd.DataFrame(), {}
    names = sorted(history["pump_id"].unique())
    latest = history.sort_values("event_timestamp").groupby("pump_id").tail(1).set_index("pump_id")
    out = pd.DataFrame({"asset": names, "event_timestamp": latest.loc[names, "event_timestamp"].to_numpy()})
    versions: dict[str, str] = {}

    anomaly_service, anomaly_name, _ = FAMILIES["anomaly"]
    champion = _champion(settings, anomaly_name)
    if champion is not None:
        model, versions["anomaly"] = champion
        online = _online(settings, anomaly_service, names)
        frame = _with_online(history, online)
        scored = model.score(frame)
        last = scored.assign(_ts=frame["event_timestamp"].to_numpy()).sort_values("_ts").groupby("pump_id").tail(1)
        last = last.set_index("pump_id").reindex(names)
        out["anomaly_score"] = last["score"].to_numpy(dtype=float)
        out["alarm"] = last["alarm"].fillna(False).to_numpy(dtype=bool)

    for family in ("diagnosis", "ttf"):
        service, name, _ = FAMILIES[family]
        champion = _champion(settings, name)
        if champion is None:
            continue
        model, versions[family] = champion
        online = _online(settings, service, names)
        rows = _rows_for(online, latest, names, model)
        if family == "diagnosis":
            proba = np.asarray(model.predict_proba(rows), dtype=float)
            classes = [str(c) for c in model.classes_]
            out["mode"] = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
            for j, cls in enumerate(classes):
                if cls != "healthy":
                    out[f"p_{cls}"] = proba[:, j]
        else:
            low, med, high = model.predict_interval(rows)
            # time to failure means something only for a pump with a fault developing: alarmed or diagnosed
            developing = out["alarm"].to_numpy(bool) if "alarm" in out else np.zeros(len(out), dtype=bool)
            if "mode" in out:
                developing |= (out["mode"] != "healthy").to_numpy()
            out["ttf_s"] = np.where(developing, med, np.nan)
            out["ttf_low_s"] = np.where(developing, low, np.nan)
            out["ttf_high_s"] = np.where(developing, high, np.nan)
    out["model_version"] = ", ".join(f"{k}:v{v}" for k, v in versions.items())
    return out, versions


def score_fleet(settings: Settings, now: pd.Timestamp | None = None) -> ScoreReport:
    """Score every pump's latest features with the champions and write the scores for the twin.

    Scores are written only once every family has been scored, so a failure leaves the last scores as they were.

    Raises:
        OnlineStoreUnavailableError: The online store does not answer (see `score_pumps`); the run
            fails, the twin keeps the last scores, and the next scheduled run scores again.
    """
    out, versions = score_pumps(settings, now)
    if out.empty:
        return ScoreReport(pd.DataFrame(), {}, None)
    path = write_scores(settings, out) if versions else None
    return ScoreReport(out, versions, path)


def _with_online(history: pd.DataFrame, online: pd.DataFrame) -> pd.DataFrame:
    """History plus the online rows that are newer than it (the online store wins on equal keys)."""
    if online.empty or "event_timestamp" not in online.columns:
        return history.reset_index(drop=True)
    online = online.assign(event_timestamp=pd.to_datetime(online["event_timestamp"], utc=True))
    both = pd.concat([history, online[[c for c in online.columns if c in history.columns]]], ignore_index=True)
    both = both.drop_duplicates(subset=["pump_id", "event_timestamp"], keep="last")
    return both.sort_values(["pump_id", "event_timestamp"], kind="stable").reset_index(drop=True)


def _rows_for(online: pd.DataFrame, latest: pd.DataFrame, pumps: list[str], model: Any) -> pd.DataFrame:  # noqa: ANN401
    """The model's input rows per pump, by the feature names it was fitted with: online, else offline."""
    names = [str(c) for c in model.feature_names_in_]
    source = online.set_index("pump_id") if "pump_id" in online.columns and not online.empty else latest
    if any(c not in source.columns for c in names):
        source = latest
    return source.reindex(pumps)[names].astype(float)


def _replace_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a parquet file through a temporary file beside it and a rename: readers never see half of one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_scores(settings: Settings, scores: pd.DataFrame) -> Path:
    """Write the latest scores for the twin and append them to the score history (each file replaced whole)."""
    folder = settings.scores_dir
    folder.mkdir(parents=True, exist_ok=True)
    latest = folder / LATEST_FILE
    history = folder / HISTORY_FILE
    old = pd.read_parquet(history) if history.is_file() else None
    merged = scores if old is None else pd.concat([old, scores], ignore_index=True)
    merged = merged.drop_duplicates(subset=["asset", "event_timestamp"], keep="last")
    _replace_parquet(merged, history)
    _replace_parquet(scores, latest)
    return latest


def read_latest_scores(settings: Settings) -> pd.DataFrame | None:
    """The latest scores written by `score_fleet`, or None when there are none."""
    path = settings.scores_dir / LATEST_FILE
    return pd.read_parquet(path) if path.is_file() else None
