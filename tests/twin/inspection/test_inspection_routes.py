"""Route file loaders, validation with quarantine, and the route store."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.inspection.routes import (
    REASON_ASSET,
    REASON_DELTA,
    REASON_DIRECTION,
    REASON_METHOD,
    REASON_MOTOR_POINT,
    REASON_POINT,
    REASON_SEVERITY,
    REASON_TEMPERATURE,
    REASON_TS_FUTURE,
    REASON_TS_LOCAL,
    REASON_TS_MISSING,
    REASON_TS_UNPARSED,
    REASON_UNIT,
    REASON_VALUE_MISSING,
    REASON_VELOCITY,
    THERMOGRAPHY_COLUMNS,
    VIBRATION_COLUMNS,
    VISUAL_COLUMNS,
    RouteBatch,
    RouteError,
    RouteStore,
    detect_kind,
    header_field,
    load_route,
    parse_route,
)

ASSETS = {"PS01.P1", "PS01.P2", "PS02.P1"}
NOW = pd.Timestamp("2026-12-01T12:00Z")


def write_csv(folder: Path, name: str, rows: list[dict[str, object]]) -> Path:
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def vib_rows() -> list[dict[str, object]]:
    return [
        {"Equipment": "PS01.P1", "Date/Time": "2026-11-30 08:00", "Point": "DE", "Dir": "H", "Overall (mm/s)": "3.1"},
        {"Equipment": "PS01.P1", "Date/Time": "2026-11-30 08:01", "Point": "DE", "Dir": "V", "Overall (mm/s)": "2.4"},
        {
            "Equipment": "ps01-p1",
            "Date/Time": "2026-11-30 08:02",
            "Point": "non drive end",
            "Dir": "axial",
            "Overall (mm/s)": "1,5",
        },
        {
            "Equipment": "PS01.P2",
            "Date/Time": "2026-11-30 08:10",
            "Point": "3",
            "Dir": "horizontal",
            "Overall (mm/s)": "4.0",
        },
    ]


def test_vibration_csv_is_read_into_the_canonical_frame(tmp_path: Path) -> None:
    batch = load_route(write_csv(tmp_path, "route.csv", vib_rows()), ASSETS, now=NOW, collector="jd")
    v = batch.vibration
    assert tuple(v.columns) == VIBRATION_COLUMNS
    assert batch.thermography.empty and batch.visual.empty and batch.quarantined.empty
    assert list(v["asset"]) == ["PS01.P1", "PS01.P1", "PS01.P1", "PS01.P2"]
    assert list(v["point"]) == ["DE", "DE", "NDE", "DE"]
    assert list(v["direction"]) == ["H", "V", "A", "H"]
    assert v["overall_mm_s"].tolist() == pytest.approx([3.1, 2.4, 1.5, 4.0])
    assert str(v["ts"].dtype) == "datetime64[ns, UTC]" and v["ts"][0] == pd.Timestamp("2026-11-30T08:00Z")
    assert v["band_1x_mm_s"].isna().all()
    assert set(v["collector"]) == {"jd"} and set(v["source"]) == {"route.csv"} and batch.source == "route.csv"


def test_inches_per_second_and_bands_are_converted(tmp_path: Path) -> None:
    rows = [
        {"asset": "PS01.P1", "time": "2026-11-30T08:00Z", "point": "DE", "direction": "H", "overall": "0.2",
         "unit": "in/s", "1x": "0.1", "2x": "0.05", "band low": "0.01", "band high": "0.02"},
        {"asset": "PS01.P1", "time": "2026-11-30T08:01Z", "point": "DE", "direction": "V", "overall": "5",
         "unit": "mm/s", "1x": "4", "2x": "", "band low": "", "band high": ""},
    ]  # fmt: skip
    v = load_route(write_csv(tmp_path, "ips.csv", rows), ASSETS, now=NOW).vibration
    assert v["overall_mm_s"].tolist() == pytest.approx([5.08, 5.0])
    assert v["band_1x_mm_s"].tolist() == pytest.approx([2.54, 4.0])
    assert v["band_2x_mm_s"][0] == pytest.approx(1.27) and np.isnan(v["band_2x_mm_s"][1])
    assert v["band_low_mm_s"][0] == pytest.approx(0.254) and v["band_high_mm_s"][0] == pytest.approx(0.508)
    # a unit stated in the header
    header = [{"asset": "PS01.P1", "time": "2026-11-30T08:00Z", "point": "DE", "direction": "H", "overall_in_s": "0.1"}]
    v2 = load_route(write_csv(tmp_path, "hdr.csv", header), ASSETS, now=NOW).vibration
    assert v2["overall_mm_s"][0] == pytest.approx(2.54)


def test_excel_route_is_read(tmp_path: Path) -> None:
    path = tmp_path / "route.xlsx"
    pd.DataFrame(vib_rows()).to_excel(path, index=False, engine="openpyxl")
    batch = load_route(path, ASSETS, now=NOW)
    assert len(batch.vibration) == 4 and batch.vibration["overall_mm_s"][3] == pytest.approx(4.0)
    # separate date and time columns, the date as an Excel date cell
    split = tmp_path / "split.xlsx"
    frame = pd.DataFrame(vib_rows()).drop(columns="Date/Time")
    frame.insert(1, "Date", pd.Timestamp("2026-11-30"))
    frame.insert(2, "Time", ["08:00", "08:01", "08:02", ""])
    frame.to_excel(split, index=False, engine="openpyxl")
    both = load_route(split, ASSETS, now=NOW)
    assert both.vibration["ts"].tolist() == [pd.Timestamp(f"2026-11-30T08:0{i}Z") for i in range(3)]
    assert both.quarantined["reason"].tolist() == [REASON_TS_MISSING] and both.quarantined["row"].tolist() == [5]


def test_thermography_in_celsius_and_fahrenheit(tmp_path: Path) -> None:
    rows = [
        {"Asset": "PS01.P1", "Timestamp": "2026-11-30T09:00Z", "Component": "DE bearing", "Spot (°C)": "61.0",
         "Reference (°C)": "48.0", "Delta": "13.0"},
        {"Asset": "PS01.P2", "Timestamp": "2026-11-30T09:05Z", "Component": "motor", "Spot (°C)": "55",
         "Reference (°C)": "", "Delta": "20"},
    ]  # fmt: skip
    t = load_route(write_csv(tmp_path, "ir.csv", rows), ASSETS, now=NOW).thermography
    assert tuple(t.columns) == THERMOGRAPHY_COLUMNS
    assert t["delta_k"].tolist() == pytest.approx([13.0, 20.0])
    assert t["reference_c"].tolist() == pytest.approx([48.0, 35.0])
    rows_f = [
        {"asset": "PS01.P1", "time": "2026-11-30T09:00Z", "component": "NDE bearing", "spot": "212", "reference": "194",
         "unit": "degF"},
        {"asset": "PS01.P1", "time": "2026-11-30T09:01Z", "component": "coupling", "spot": "122", "delta": "18",
         "unit": "F"},
    ]  # fmt: skip
    tf = load_route(write_csv(tmp_path, "irf.csv", rows_f), ASSETS, now=NOW).thermography
    assert tf["spot_c"].tolist() == pytest.approx([100.0, 50.0])
    assert tf["delta_k"].tolist() == pytest.approx([10.0, 10.0])


def test_visual_findings_with_numbers_and_words(tmp_path: Path) -> None:
    rows = [
        {"Asset": "PS01.P1", "Time": "2026-11-30T10:00Z", "Finding": "oil mist at DE seal", "Severity": "2",
         "Method": "drone", "Photo": "IMG_0042.jpg", "Inspector": "robot-7"},
        {"Asset": "PS02.P1", "Time": "2026-11-30T10:30Z", "Finding": "loose guard", "Severity": "Critical",
         "Method": "", "Photo": "", "Inspector": ""},
        {"Asset": "PS02.P1", "Time": "2026-11-30T10:31Z", "Finding": "paint", "Severity": "minor",
         "Method": "crawler", "Photo": "", "Inspector": ""},
    ]  # fmt: skip
    v = load_route(write_csv(tmp_path, "vis.csv", rows), ASSETS, now=NOW, collector="ops").visual
    assert tuple(v.columns) == VISUAL_COLUMNS
    assert v["severity"].tolist() == [2, 4, 1] and v["severity"].dtype == np.int64
    assert v["method"].tolist() == ["drone", "visual", "robot"]
    assert v["photo_ref"][0] == "IMG_0042.jpg" and v["collector"].tolist() == ["robot-7", "ops", "ops"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"asset": "PS09.P1"}, REASON_ASSET),
        ({"time": ""}, REASON_TS_MISSING),
        ({"time": "yesterday-ish"}, REASON_TS_UNPARSED),
        ({"time": "2026-12-02T12:00Z"}, REASON_TS_FUTURE),
        ({"overall": "-0.3"}, REASON_VELOCITY),
        ({"overall": "120"}, REASON_VELOCITY),
        ({"overall": ""}, REASON_VALUE_MISSING),
        ({"unit": "g"}, REASON_UNIT),
        ({"unit": "in/s pk"}, REASON_UNIT),
        ({"point": "X7"}, REASON_POINT),
        ({"point": "MOTOR DE"}, REASON_MOTOR_POINT),
        ({"point": "1"}, REASON_MOTOR_POINT),
        ({"direction": "diagonal"}, REASON_DIRECTION),
    ],
)
def test_bad_vibration_rows_are_quarantined(tmp_path: Path, row: dict[str, str], reason: str) -> None:
    good = {"asset": "PS01.P1", "time": "2026-11-30T08:00Z", "point": "DE", "direction": "H", "overall": "2.0",
            "unit": "mm/s"}  # fmt: skip
    rows = [good, {**good, **row}, {**good, "direction": "V"}]
    batch = load_route(write_csv(tmp_path, "bad.csv", rows), ASSETS, now=NOW)
    assert len(batch.vibration) == 2
    q = batch.quarantined
    assert len(q) == 1 and q["row"][0] == 3 and q["reason"][0].startswith(reason)
    assert q["source"][0] == "bad.csv" and q["kind"][0] == "vibration"
    assert {"asset", "time", "overall"} <= set(q.columns)  # the raw values are kept


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"spot": "350"}, REASON_TEMPERATURE),
        ({"spot": "-60"}, REASON_TEMPERATURE),
        ({"reference": "", "delta": ""}, REASON_VALUE_MISSING),
        ({"delta": "3"}, REASON_DELTA),
        ({"unit": "Rankine"}, REASON_UNIT),
    ],
)
def test_bad_thermography_rows_are_quarantined(row: dict[str, str], reason: str) -> None:
    good = {"asset": "PS01.P1", "time": "2026-11-30T08:00Z", "component": "DE bearing", "spot": "60",
            "reference": "50", "delta": "10", "unit": "C"}  # fmt: skip
    batch = parse_route(pd.DataFrame([good, {**good, **row}]), ASSETS, source="ir.csv", now=NOW)
    assert len(batch.thermography) == 1
    assert batch.quarantined["reason"][0].startswith(reason) and batch.quarantined["row"][0] == 3


@pytest.mark.parametrize(
    ("row", "reason"), [({"severity": "5"}, REASON_SEVERITY), ({"severity": "-1"}, REASON_SEVERITY),
                        ({"severity": "2.5"}, REASON_SEVERITY), ({"severity": "meh"}, REASON_SEVERITY),
                        ({"method": "satellite"}, REASON_METHOD), ({"finding": ""}, REASON_VALUE_MISSING)],
)  # fmt: skip
def test_bad_visual_rows_are_quarantined(row: dict[str, str], reason: str) -> None:
    good = {"asset": "PS01.P1", "time": "2026-11-30T08:00Z", "finding": "leak", "severity": "1", "method": "visual"}
    batch = parse_route(pd.DataFrame([{**good, **row}, good]), ASSETS, source="v.csv", now=NOW)
    assert len(batch.visual) == 1
    assert batch.quarantined["reason"][0].startswith(reason) and batch.quarantined["row"][0] == 2


def test_times_without_zone_are_read_in_the_given_zone() -> None:
    rows = [{"asset": "PS01.P1", "time": "2026-07-01 10:00", "finding": "ok", "severity": "0"}]
    batch = parse_route(pd.DataFrame(rows), ASSETS, now=NOW, naive_tz="Europe/Berlin")
    assert batch.visual["ts"][0] == pd.Timestamp("2026-07-01T08:00Z")
    dst = [{**rows[0], "time": "2026-10-25 02:30"}, {**rows[0], "time": "2026-03-29 02:30"}]
    bad = parse_route(pd.DataFrame(dst), ASSETS, now=NOW, naive_tz="Europe/Berlin")
    assert bad.visual.empty and all(r.startswith(REASON_TS_LOCAL) for r in bad.quarantined["reason"])


def test_unreadable_or_unrecognised_files_are_route_errors(tmp_path: Path) -> None:
    unknown = write_csv(tmp_path, "odd.csv", [{"foo": 1, "bar": 2}])
    with pytest.raises(RouteError, match="odd.csv: no recognisable route kind"):
        load_route(unknown, ASSETS, now=NOW)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(RouteError, match="empty.csv"):
        load_route(empty, ASSETS, now=NOW)
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    with pytest.raises(RouteError, match="csv or .xlsx"):
        load_route(pdf, ASSETS, now=NOW)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(RouteError, match="cannot read"):
        load_route(broken, ASSETS, now=NOW)
    err = RouteError("x")
    assert isinstance(err, PumptwinError) and isinstance(err, ValueError)


def test_kind_is_recognised_by_columns() -> None:
    assert header_field("Overall (in/s)") == ("overall", "in/s")
    assert header_field("spot_c") == ("spot", "degC")
    assert detect_kind(["Machine", "Measured", "Location", "Axis", "Velocity RMS"])[0] == "vibration"
    assert detect_kind(["asset", "ts", "component", "spot_c", "reference_c", "delta_k"])[0] == "thermography"
    assert detect_kind(["asset", "ts", "finding", "severity", "method", "photo_ref"])[0] == "visual"


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


def batch_at(day: str, value: float = 2.0, asset: str = "PS01.P1", source: str = "r.csv") -> RouteBatch:
    rows = [{"asset": asset, "time": f"{day}T08:00Z", "point": p, "direction": d, "overall": str(value)}
            for p in ("DE", "NDE") for d in ("H", "V")]  # fmt: skip
    return parse_route(pd.DataFrame(rows), ASSETS, source=source, now=NOW)


def test_store_append_is_idempotent_and_reads_back(tmp_path: Path) -> None:
    store = RouteStore(tmp_path / "routes")
    assert store.read("vibration").empty and store.last_visits() == {}
    first = batch_at("2026-11-01")
    assert store.append(first) == 4
    assert store.append(first) == 0
    assert store.append(batch_at("2026-11-01", source="again.csv")) == 0  # same content, another file
    assert store.append(batch_at("2026-11-15")) == 4
    back = store.read("vibration")
    assert len(back) == 8 and tuple(back.columns) == VIBRATION_COLUMNS
    pd.testing.assert_frame_equal(back.iloc[:4].reset_index(drop=True), first.vibration)
    assert len(store.read("vibration", since="2026-11-10T00:00Z")) == 4
    with pytest.raises(RouteError, match="route kind"):
        store.read("acoustic")  # type: ignore[arg-type]


def test_last_visits_take_every_kind(tmp_path: Path) -> None:
    store = RouteStore(tmp_path / "routes")
    store.append(batch_at("2026-11-01"))
    store.append(batch_at("2026-10-01", asset="PS02.P1"))
    vis = [{"asset": "PS02.P1", "time": "2026-11-20T10:00Z", "finding": "ok", "severity": "0"}]
    store.append(parse_route(pd.DataFrame(vis), ASSETS, now=NOW))
    assert store.last_visits() == {
        "PS01.P1": pd.Timestamp("2026-11-01T08:00Z"),
        "PS02.P1": pd.Timestamp("2026-11-20T10:00Z"),
    }


def test_two_writers_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "routes"
    batches = [batch_at(f"2026-11-{d:02d}", value=1.0 + d / 10) for d in range(1, 21)]
    errors: list[BaseException] = []

    def write(part: list[RouteBatch]) -> None:
        store = RouteStore(root)
        try:
            for b in part:
                store.append(b)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(batches[i::2],)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(RouteStore(root).read("vibration")) == 80
