"""Scoring when the online store (Redis) is unreachable: one clear error, and the last scores stay whole.

The unreachable Redis is a real one: a closed port on 127.0.0.1 (no server needed).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pumptwin.features.store import apply_definitions, offline_path, open_store
from pumptwin.flows import score_steps
from pumptwin.flows.score_steps import (
    HISTORY_FILE,
    LATEST_FILE,
    OnlineStoreUnavailableError,
    read_latest_scores,
    score_fleet,
    write_scores,
)
from pumptwin.flows.settings import FeastSettings, Settings
from pumptwin.flows.train_steps import FAMILIES
from pumptwin.twin.errors import PumptwinError

PUMPS = ["PS01.P1", "PS01.P2"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Detector:
    """A stand-in anomaly champion that records whether it was asked to score."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        return pd.DataFrame({"pump_id": frame["pump_id"], "score": 0.1, "alarm": False})


def scores(ts: str, value: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"asset": PUMPS, "event_timestamp": pd.Timestamp(ts), "anomaly_score": value, "model_version": "anomaly:v1"}
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fleet of two pumps with offline features, an applied registry, earlier scores, and Redis down."""
    embedded = Settings(home=tmp_path)
    apply_definitions(open_store(embedded.feast_dir))  # registry on SQLite; online store on Redis below
    stamps = pd.date_range("2026-11-01T00:00:00Z", periods=3, freq="10min")
    history = pd.DataFrame(
        [{"pump_id": p, "event_timestamp": t, "flow_m3s": 1.0} for p in PUMPS for t in stamps],
    )
    offline_path(embedded.feast_dir).parent.mkdir(parents=True, exist_ok=True)
    history.to_parquet(offline_path(embedded.feast_dir), index=False)
    write_scores(embedded, scores("2026-10-31T23:50:00Z", 0.5))
    online = f"redis://:s3cret@127.0.0.1:{closed_port()}/0"
    return Settings(home=tmp_path, feast=FeastSettings(online_store=online))


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_an_unreachable_redis_fails_clearly_and_keeps_the_last_scores(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    detector = Detector()
    anomaly_name = FAMILIES["anomaly"][1]
    monkeypatch.setattr(score_steps, "_champion", lambda _s, name: (detector, "2") if name == anomaly_name else None)
    before = files(settings.scores_dir)
    port = settings.feast.online_store.rsplit(":", 1)[1].split("/")[0]  # type: ignore[union-attr]
    with pytest.raises(
        OnlineStoreUnavailableError, match=rf"online feature store redis://127.0.0.1:{port}/0 is unreachable"
    ):
        score_fleet(settings)
    assert detector.calls == 0
    assert files(settings.scores_dir) == before  # no partial scores, no temporary file left
    latest = read_latest_scores(settings)
    assert latest is not None and latest["anomaly_score"].tolist() == [0.5, 0.5]


def test_the_error_is_a_pumptwin_error_without_the_password(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(score_steps, "_champion", lambda _s, _name: (Detector(), "2"))
    with pytest.raises(PumptwinError) as caught:
        score_fleet(settings)
    assert isinstance(caught.value, ConnectionError) and "s3cret" not in str(caught.value)
    assert "no scores were written" in str(caught.value)


def test_scores_files_are_replaced_whole(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    before = files(settings.scores_dir)
    real = pd.DataFrame.to_parquet

    def disk_full(self: pd.DataFrame, path: Any, **kwargs: Any) -> None:  # noqa: ANN401
        Path(path).write_bytes(b"PAR1")  # half a file, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_scores(settings, scores("2026-11-01T00:20:00Z", 0.9))
    assert files(settings.scores_dir) == before
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    write_scores(settings, scores("2026-11-01T00:20:00Z", 0.9))
    assert len(pd.read_parquet(settings.scores_dir / HISTORY_FILE)) == 4
    assert pd.read_parquet(settings.scores_dir / LATEST_FILE)["anomaly_score"].tolist() == [0.9, 0.9]
