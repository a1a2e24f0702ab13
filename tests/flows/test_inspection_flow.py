"""The inspection-ingest steps and flow on a tmp home: route files admitted, quarantined, checked and fused."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from pumptwin.features.ingest.rawstore import RawStore
from pumptwin.flows.inspection_steps import (
    PROCESSED,
    admit_routes,
    batch_flags,
    fuse_saved_state,
    inspection_markdown,
    route_dir,
    route_quarantine_dir,
    route_store,
)
from pumptwin.flows.settings import Settings
from pumptwin.flows.twin_store import load_twin, state_paths
from pumptwin.twin.health.io import write_state
from pumptwin.twin.health.state import DEFAULT_RULES, TwinState, assess

T = pd.Timestamp("2026-11-30T08:00Z")
NOW = "2026-12-01T12:00Z"


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    with mock.patch.dict(os.environ):
        monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path / "home"))
        yield tmp_path / "home"


def online(tag: str, level: float, seed: int) -> pd.DataFrame:
    """An hour of readings at 10 s around `T`, noisy around `level`."""
    ts = pd.date_range(T - pd.Timedelta(minutes=30), periods=360, freq="10s", tz="UTC")
    values = level + 0.02 * level * np.random.default_rng(seed).standard_normal(len(ts))
    return pd.DataFrame({"tag": tag, "ts": ts, "value": values, "quality": "good"})


def plant(home: Path, de_level: float = 3.0) -> Settings:
    """A home whose raw store holds PS01/PS02 readings around `T` and whose twin state is saved."""
    settings = Settings(home=home)
    readings = pd.concat(
        [
            online("PS01.P1.VIB_DE_RMS", de_level, 1),
            online("PS01.P1.VIB_NDE_RMS", 2.0, 2),
            online("PS01.P1.SPEED", 1480.0, 3),
            online("PS02.P1.SPEED", 1480.0, 4),
        ],
        ignore_index=True,
    )
    RawStore(settings.raw_dir).write(readings)
    health = tuple(assess(a, "pump", {"impeller_wear": 0.005}, DEFAULT_RULES) for a in ("PS01.P1", "PS01.P2"))
    write_state(TwinState(pd.Timestamp("2026-11-30T12:00Z"), health), state_paths(settings)["state"])
    return settings


def drop(settings: Settings) -> Path:
    """Four files in the drop folder: a vibration route, visual findings with a bad row, junk, a PDF."""
    folder = route_dir(settings)
    folder.mkdir(parents=True)
    vib = [
        ("PS01.P1", "DE", "H", 6.0),
        ("PS01.P1", "DE", "V", 5.0),
        ("PS01.P1", "NDE", "H", 2.0),
        ("PS01.P2", "DE", "H", 1.0),
    ]
    pd.DataFrame(
        [{"Equipment": a, "Date/Time": T.isoformat(), "Point": p, "Dir": d, "Overall (mm/s)": v} for a, p, d, v in vib]
    ).to_csv(folder / "route-a.csv", index=False)
    pd.DataFrame(
        [
            {"asset": "PS01.P2", "time": T.isoformat(), "finding": "coupling guard cracked", "severity": "severe",
             "method": "drone", "photo": "DJI_0001.jpg"},
            {"asset": "PS77.P1", "time": T.isoformat(), "finding": "unknown pump", "severity": "1", "method": "",
             "photo": ""},
        ]
    ).to_csv(folder / "walk.csv", index=False)  # fmt: skip
    pd.DataFrame([{"foo": 1, "bar": 2}]).to_csv(folder / "junk.csv", index=False)
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4")
    (folder / "copying.csv.part").write_text("asset,ti")
    return folder


def test_files_are_admitted_quarantined_and_moved(home: Path) -> None:
    settings = plant(home)
    folder = drop(settings)
    admission = admit_routes(settings, now=NOW)
    by_name = {f.name: f for f in admission.files}
    assert sorted(by_name) == ["junk.csv", "route-a.csv", "scan.pdf", "walk.csv"]
    assert by_name["route-a.csv"].kind == "vibration" and by_name["route-a.csv"].stored == 4
    walk = by_name["walk.csv"]
    assert (walk.kind, walk.stored, walk.quarantined) == ("visual", 1, 1)
    assert walk.reasons == {"asset not in the registry": 1}
    assert walk.rows_file is not None
    rejected = pd.read_csv(walk.rows_file)
    assert rejected["row"].tolist() == [3] and rejected["asset"].tolist() == ["PS77.P1"]
    quarantine = route_quarantine_dir(settings)
    for name in ("junk.csv", "scan.pdf"):
        assert by_name[name].error and (quarantine / name).is_file()
        assert by_name[name].error in (quarantine / f"{name}.reason.txt").read_text()
    assert "no recognisable route kind" in by_name["junk.csv"].error
    assert sorted(p.name for p in (folder / PROCESSED).iterdir()) == ["route-a.csv", "walk.csv"]
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["copying.csv.part"]  # still being copied
    assert admission.stored == 5 and admission.quarantined == 3

    store = route_store(settings)
    assert len(store.read("vibration")) == 4 and len(store.read("visual")) == 1
    assert store.last_visits() == {"PS01.P1": T, "PS01.P2": T}

    # the same file delivered again: nothing new, the copy keeps both names
    shutil.copy(folder / PROCESSED / "route-a.csv", folder / "route-a.csv")
    again = admit_routes(settings, now=NOW)
    assert again.stored == 0 and len(list((folder / PROCESSED).glob("*route-a.csv"))) == 2
    text = inspection_markdown(admission, [], None)
    for part in ("| walk.csv | visual | 1 | 1 | 1 |", "asset not in the registry", "No twin state yet"):
        assert part in text


def test_sensor_flags_and_fusion_into_the_saved_state(home: Path) -> None:
    settings = plant(home, de_level=3.0)  # the online DE sensor reads half the route's 6 mm/s
    drop(settings)
    admission = admit_routes(settings, now=NOW)
    flags = batch_flags(settings, admission)
    assert [(f.tag, round(f.online_value)) for f in flags] == [("PS01.P1.VIB_DE_RMS", 3)]
    fusion = fuse_saved_state(settings)
    assert fusion is not None
    _, saved = load_twin(settings)
    assert saved is not None and saved.alerts == fusion.state.alerts
    p1, p2 = saved.asset("PS01.P1"), saved.asset("PS01.P2")
    assert p1.evidence["route_vib_de_mm_s"] == 6.0 and p1.evidence["sensor_flag"] == 1.0
    assert p1.status == "warning" and p2.status == "warning" and p2.evidence["route_visual"] == 3.0
    versions = {(a.asset, a.source): a.model_version for a in saved.alerts}
    assert versions[("PS01.P1", "route_vib_de_iso")] == "route:vibration:route-a.csv"
    assert versions[("PS01.P1", "sensor_flag")] == "route:sensor-check:VIB_DE_RMS"
    assert versions[("PS01.P2", "route_visual")] == "route:visual:walk.csv"
    assert "| PS01.P1 |" in state_paths(settings)["state_md"].read_text()
    text = inspection_markdown(admission, flags, fusion)
    for part in ("## Sensor flags", "PS01.P1.VIB_DE_RMS", "## Route findings", "coupling guard cracked", "ISO zone C"):
        assert part in text


def test_agreeing_sensor_raises_no_flag(home: Path) -> None:
    settings = plant(home, de_level=5.8)
    drop(settings)
    assert batch_flags(settings, admit_routes(settings, now=NOW)) == []


def test_no_state_yet_and_nothing_waiting(home: Path) -> None:
    settings = Settings(home=home)
    assert admit_routes(settings).files == ()
    assert fuse_saved_state(settings) is None


@pytest.fixture(scope="module")
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_inspection_ingest_flow(harness: None, home: Path) -> None:
    from pumptwin.flows.inspection import inspection_ingest

    plant(home)
    drop(Settings(home=home))
    out = inspection_ingest(now=NOW)
    assert out["stored"] == 5 and out["quarantined"] == 3 and out["fused"]
    assert len(out["flags"]) == 1 and "VIB_DE_RMS" in out["flags"][0]
    assert {f["name"]: f["kind"] for f in out["files"]}["route-a.csv"] == "vibration"
