from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.integrity.ili import (
    FEATURE_COLUMNS,
    FEATURE_TYPES,
    WELD_COLUMNS,
    IliError,
    IliRun,
    chainage_from_log,
    read_ili,
    write_quarantine,
)

METRIC = (
    "Feature ID,Log Distance [m],GW No.,Dist. to U/S GW [m],O'clock,Event,Dim. Class,Depth [%],"
    "Length [mm],Width [mm],Int/Ext,WT [mm],ERF,Burst Pressure [bar],Comment"
)
IMPERIAL = (
    "Anomaly No.,Log Dist. (ft),Upstream Weld,Dist. to U/S GW (ft),Orientation,Feature Type,"
    "Peak Depth (%WT),Length (in),Width (in),Surface Location,WT (in),Psafe (psi),Burst Pressure (psi)"
)


def write(tmp_path: Path, lines: list[str], name: str = "run_2024-05-03.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def metric_rows() -> list[str]:
    return [
        METRIC,
        "1,0.00,,,,Launcher,,,,,,,,,PS1 launcher",
        "2,11.90,10,0,,Girth Weld,,,,,,,,,",
        "3,15.40,10,3.5,4:30,Metal Loss,GENE,25,40,35,Ext,7.9,0.62,95.5,",
        "4,23.80,20,0,,GW,,,,,,,,,",
        "5,30.10,20,6.3,6:00,Corrosion,PITT,18,12,15,Int,7.9,,,",
        "6,36.00,30,0.2,11:15,Dent,,2.1,300,200,,7.9,,,",
        "7,40.00,30,4.2,,AGM,,,,,,,,,Marker 1",
    ]


def test_a_metric_export_is_read_in_si(tmp_path: Path) -> None:
    run = read_ili(write(tmp_path, metric_rows()), vendor="Acme", tool="MFL")
    assert isinstance(run, IliRun)
    assert tuple(run.features.columns) == FEATURE_COLUMNS
    assert tuple(run.welds.columns) == WELD_COLUMNS
    assert run.quarantined.empty
    assert run.date == pd.Timestamp("2024-05-03", tz="UTC")
    assert (run.run_id, run.vendor, run.tool) == ("run_2024-05-03", "Acme", "MFL")
    assert run.depth_sd_frac == pytest.approx(0.078, abs=1e-3) and run.length_sd_m == pytest.approx(0.0195, abs=1e-4)
    f = run.features.set_index("feature_id")
    assert list(f.index) == ["1", "3", "5", "6", "7"]
    assert set(f["feature_type"]) <= set(FEATURE_TYPES)
    ml = f.loc["3"]
    assert ml["feature_type"] == "metal_loss" and ml["dimension_class"] == "general"
    assert ml["log_distance_m"] == pytest.approx(15.4)
    assert ml["depth_frac"] == pytest.approx(0.25)
    assert ml["length_m"] == pytest.approx(0.040) and ml["width_m"] == pytest.approx(0.035)
    assert ml["clock_h"] == pytest.approx(4.5) and ml["surface"] == "external"
    assert ml["wall_m"] == pytest.approx(0.0079)
    assert ml["vendor_erf"] == pytest.approx(0.62) and ml["vendor_failure_pa"] == pytest.approx(95.5e5)
    assert (ml["weld_number"], ml["weld_distance_m"]) == (10.0, pytest.approx(3.5))
    assert f.loc["5", "surface"] == "internal" and f.loc["5", "dimension_class"] == "pitting"
    dent = f.loc["6"]
    assert dent["feature_type"] == "dent" and math.isnan(dent["depth_frac"])
    assert dent["clock_h"] == pytest.approx(11.25)
    assert f.loc["1", "feature_type"] == "fitting" and f.loc["7", "feature_type"] == "marker"
    assert run.welds["weld_number"].tolist() == [10.0, 20.0]
    assert run.welds["log_distance_m"].tolist() == [11.9, 23.8]
    # no markers given: chainage is the launch chainage plus the log distance, and the run says so
    assert f.loc["3", "chainage_m"] == pytest.approx(15.4)
    assert any("no marker list" in n for n in run.notes)
    shifted = read_ili(write(tmp_path, metric_rows()), launch_chainage_m=200.0)
    assert shifted.welds["chainage_m"].tolist() == pytest.approx([211.9, 223.8])


def test_an_imperial_export_is_converted(tmp_path: Path) -> None:
    lines = [
        IMPERIAL,
        "A1,100.0,10,4.0,135,CORR,40,2.0,1.5,External,0.312,1000,1390",
        "A2,130.5,20,0.5,04:30,ML,12.5,0.5,0.5,Internal,0.312,,",
        "A3,90.0,10,,,Girth Weld,,,,,,,",
    ]
    run = read_ili(write(tmp_path, lines), date="2023-01-02")
    f = run.features.set_index("feature_id")
    a1 = f.loc["A1"]
    assert a1["log_distance_m"] == pytest.approx(30.48)
    assert a1["weld_distance_m"] == pytest.approx(4.0 * 0.3048)
    assert a1["clock_h"] == pytest.approx(4.5)  # 135 degrees
    assert a1["depth_frac"] == pytest.approx(0.40)
    assert a1["length_m"] == pytest.approx(0.0508) and a1["width_m"] == pytest.approx(0.0381)
    assert a1["wall_m"] == pytest.approx(0.312 * 0.0254)
    assert a1["vendor_failure_pa"] == pytest.approx(1390 * 6894.757, rel=1e-6)
    assert f.loc["A2", "clock_h"] == pytest.approx(4.5) and f.loc["A2", "depth_frac"] == pytest.approx(0.125)
    # rows out of distance order are fine
    assert run.quarantined.empty and len(run.welds) == 1
    assert run.date == pd.Timestamp("2023-01-02", tz="UTC")


def test_an_excel_export_with_a_units_row_and_time_cells(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["ILI final report"])
    sheet.append(["Run date", "2025-09-30"])
    sheet.append([])
    sheet.append(["Anomaly No.", "Odometer", "Upstream Weld", "O'clock", "Identification", "Depth", "Length", "Width"])
    sheet.append([None, "ft", None, None, None, "%", "in", "in"])
    sheet.append(["X1", 1000, 80, dt.time(7, 30), "Metal Loss", 20, 1.0, 1.0])
    sheet.append(["X2", 1010.5, 80, "2:15", "Mill anomaly", None, 3.0, 1.0])
    sheet.append(["X3", 1020, 80, "3:00", "Metal Loss", 120, 1.0, 1.0])
    path = tmp_path / "vendor.xlsx"
    book.save(path)
    run = read_ili(path)
    assert run.date == pd.Timestamp("2025-09-30", tz="UTC")
    f = run.features.set_index("feature_id")
    assert f.loc["X1", "log_distance_m"] == pytest.approx(304.8)
    assert f.loc["X1", "clock_h"] == pytest.approx(7.5)
    assert f.loc["X1", "length_m"] == pytest.approx(0.0254)
    assert f.loc["X2", "feature_type"] == "manufacturing"
    assert f.loc["X1", "depth_frac"] == pytest.approx(0.20)
    # quarantined on its sheet row
    assert run.quarantined["row"].tolist() == [8]
    assert run.quarantined["Anomaly No."].tolist() == ["X3"]
    assert run.quarantined["reason"].tolist() == ["depth over 100 % of wall (120 %)"]


def test_depth_in_mm_with_a_wall_becomes_a_fraction(tmp_path: Path) -> None:
    lines = ["Feature ID,Log Distance [m],Event,Depth [mm],WT [mm],Length [mm],O'clock", "1,5,ML,3.95,7.9,30,6:00"]
    run = read_ili(write(tmp_path, lines))
    assert run.features["depth_frac"].iloc[0] == pytest.approx(0.5)


def test_a_semicolon_file_with_decimal_commas_and_a_units_column(tmp_path: Path) -> None:
    lines = [
        "Feature No.;Log Distance;Clock Position;Event;Max. Depth;Axial Length;Units",
        "F1;12,5;4:30;Metal Loss;30;1,5;imperial",
        "F2;20,25;6:00;Metal Loss;30;40;metric",
        "F3;21;6:00;Metal Loss;30;40;",
    ]
    run = read_ili(write(tmp_path, lines))
    f = run.features.set_index("feature_id")
    assert f.loc["F1", "log_distance_m"] == pytest.approx(12.5 * 0.3048)
    assert f.loc["F1", "length_m"] == pytest.approx(1.5 * 0.0254)
    assert f.loc["F2", "log_distance_m"] == pytest.approx(20.25)
    assert f.loc["F2", "length_m"] == pytest.approx(0.040)
    assert f.loc["F3", "length_m"] == pytest.approx(0.040)  # blank: metric


def test_a_unit_column_per_quantity(tmp_path: Path) -> None:
    lines = [
        "Feature ID,Log Distance [m],Event,Depth,Length,Length Unit",
        "1,5,ML,30,40,mm",
        "2,6,ML,30,2,in",
        "3,7,ML,30,2,cubits",
    ]
    run = read_ili(write(tmp_path, lines))
    assert run.features["length_m"].tolist() == pytest.approx([0.040, 0.0508])
    assert run.quarantined["reason"].tolist() == ["unknown unit 'cubits' for 'Length'"]


GOOD = "10,100.0,,,6:00,Metal Loss,,20,30,30,Ext,7.9,,,"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("11,101.0,,,6:00,Metal Loss,,112,30,30,Ext,7.9,,,", "depth over 100 % of wall (112 %)"),
        ("11,101.0,,,6:00,Metal Loss,,-3,30,30,Ext,7.9,,,", "negative depth (-3 %)"),
        ("11,101.0,,,6:00,Metal Loss,,20,,30,Ext,7.9,,,", "missing length"),
        ("11,101.0,,,6:00,Metal Loss,,20,0,30,Ext,7.9,,,", "zero length"),
        ("11,101.0,,,6:00,Metal Loss,,,30,30,Ext,7.9,,,", "missing depth"),
        ("11,101.0,,,6:00,Metal Loss,,2o,30,30,Ext,7.9,,,", "unparseable number in 'Depth [%]': '2o'"),
        ("11,1O1.0,,,6:00,Metal Loss,,20,30,30,Ext,7.9,,,", "unparseable number in 'Log Distance [m]': '1O1.0'"),
        ("11,101.0,,,25:00,Metal Loss,,20,30,30,Ext,7.9,,,", "unparseable clock '25:00'"),
        ("11,101.0,,,noon,Metal Loss,,20,30,30,Ext,7.9,,,", "unparseable clock 'noon'"),
        ("11,101.0,,,6:00,Spooky,,20,30,30,Ext,7.9,,,", "unknown feature type 'Spooky'"),
        ("11,101.0,,,6:00,,,20,30,30,Ext,7.9,,,", "missing feature type"),
        ("10,101.0,,,6:00,Metal Loss,,20,30,30,Ext,7.9,,,", "duplicate feature id '10' (first on row 2)"),
        (",101.0,,,6:00,Metal Loss,,20,30,30,Ext,7.9,,,", "missing feature id"),
        ("11,,,,6:00,Metal Loss,,20,30,30,Ext,7.9,,,", "missing log distance"),
    ],
)
def test_every_bad_row_is_quarantined_with_its_reason_and_line(tmp_path: Path, row: str, reason: str) -> None:
    later = "12,50.0,,,6:00,Metal Loss,,20,30,30,Ext,7.9,,,"  # out of distance order: not a reason
    run = read_ili(write(tmp_path, [METRIC, GOOD, row, later]))
    assert run.quarantined["reason"].tolist() == [reason]
    assert run.quarantined["row"].tolist() == [3]
    assert run.quarantined["Feature ID"].iloc[0] == row.split(",", maxsplit=1)[0]
    assert run.features["feature_id"].tolist() == ["10", "12"]


def test_unknown_unit_in_a_units_column_is_quarantined(tmp_path: Path) -> None:
    lines = ["Feature ID,Log Distance,Event,Depth,Length,Units", "1,5,ML,30,40,metric", "2,6,ML,30,40,furlongs"]
    run = read_ili(write(tmp_path, lines))
    assert run.quarantined["reason"].tolist() == ["unknown unit 'furlongs'"]
    assert run.features["feature_id"].tolist() == ["1"]


def test_several_reasons_are_joined_and_line_numbers_count_the_preamble(tmp_path: Path) -> None:
    lines = ["Vendor: X", "Inspection date: 2024-02-01", "", METRIC, GOOD, "11,101,,,99:00,Metal Loss,,150,,30,,,,,"]
    run = read_ili(write(tmp_path, lines, name="run.csv"))
    assert run.date == pd.Timestamp("2024-02-01", tz="UTC")
    assert run.quarantined["row"].tolist() == [6]
    reason = run.quarantined["reason"].iloc[0]
    assert "unparseable clock" in reason and "depth over 100 %" in reason and "missing length" in reason


def test_write_quarantine(tmp_path: Path) -> None:
    run = read_ili(write(tmp_path, [METRIC, GOOD, "11,101.0,,,6:00,Metal Loss,,112,30,30,Ext,7.9,,,"]))
    path = write_quarantine(run, tmp_path / "out")
    assert path is not None and path.name == "run_2024-05-03_quarantine.csv"
    back = pd.read_csv(path, dtype=str)
    assert back["reason"].tolist() == ["depth over 100 % of wall (112 %)"]
    assert back["row"].tolist() == ["3"]
    hostile = read_ili(write(tmp_path, [METRIC, GOOD, "=cmd(),101.0,,,6:00,Metal Loss,,112,30,30,Ext,7.9,,,"]))
    back = pd.read_csv(write_quarantine(hostile, tmp_path / "out3"), dtype=str)
    assert back["Feature ID"].tolist() == ["'=cmd()"]
    clean = read_ili(write(tmp_path, [METRIC, GOOD]))
    assert write_quarantine(clean, tmp_path / "out2") is None


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["Feature ID,Event,Depth [%],Length [mm]", "1,ML,20,30"], "no log distance column"),
        (["a,b,c", "1,2,3"], "no header row"),
        (["Feature ID,Log Distance [furlong],Event,Depth", "1,2,ML,3"], "unknown unit in header"),
    ],
)
def test_a_file_that_cannot_be_read_is_an_ili_error(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(IliError, match=message):
        read_ili(write(tmp_path, lines))
    assert issubclass(IliError, PumptwinError) and issubclass(IliError, ValueError)


def test_missing_file_and_missing_date(tmp_path: Path) -> None:
    with pytest.raises(IliError, match="no such"):
        read_ili(tmp_path / "none.csv")
    with pytest.raises(IliError, match="no run date"):
        read_ili(write(tmp_path, [METRIC, GOOD], name="run.csv"))
    with pytest.raises(IliError, match="run date"):
        read_ili(write(tmp_path, [METRIC, GOOD], name="run.csv"), date="someday")


def test_chainage_from_log_is_piecewise_linear_and_extrapolates() -> None:
    ref_log = np.array([0.0, 100.0, 300.0])
    ref_ch = np.array([1000.0, 1102.0, 1300.0])
    out = chainage_from_log(np.array([-10.0, 50.0, 200.0, 400.0]), ref_log, ref_ch)
    assert out == pytest.approx([1000.0 - 10.2, 1051.0, 1201.0, 1300.0 + 99.0])
    assert chainage_from_log(np.array([5.0]), np.array([10.0]), np.array([110.0])) == pytest.approx([105.0])
    with pytest.raises(IliError):
        chainage_from_log(np.array([1.0]), np.array([]), np.array([]))
    with pytest.raises(IliError):
        chainage_from_log(np.array([1.0]), np.array([0.0, 0.0]), np.array([1.0, 2.0]))


def marker_run(tmp_path: Path, scale: float, offset: float) -> tuple[Path, pd.DataFrame, dict[str, float]]:
    """A run whose odometer reads ``(chainage - 200) * scale + offset``, with markers and features."""
    markers = pd.DataFrame(
        {
            "name": ["LAUNCH", "AGM-1", "AGM-2", "AGM-3", "FAR"],
            "chainage_m": [200.0, 3200.0, 7100.0, 9800.0, 50_000.0],
            "kind": ["launcher", "marker", "marker", "valve", "marker"],
        }
    )
    truth = {"F1": 1500.0, "F2": 5200.0, "F3": 9000.0, "F4": 11_000.0, "F5": 150.0}
    lines = ["Feature ID,Log Distance [m],Event,Depth [%],Length [mm],O'clock,Comment"]

    def log(ch: float) -> float:
        return (ch - 200.0) * scale + offset

    events = [
        ("M0", 200.0, "Launcher", "Launcher"),
        ("M1", 3200.0, "AGM", "agm 1"),
        ("M2", 7100.0, "Marker", "AGM-2"),
        ("M3", 9800.0, "Valve", "AGM-3"),
    ]
    for fid, ch, event, name in events:
        lines.append(f"{fid},{log(ch):.3f},{event},,,,{name}")
    for fid, ch in truth.items():
        lines.append(f"{fid},{log(ch):.3f},Metal Loss,20,30,6:00,")
    return write(tmp_path, lines), markers, truth


def test_odometer_error_is_taken_out_through_the_markers(tmp_path: Path) -> None:
    path, markers, truth = marker_run(tmp_path, scale=1.004, offset=7.0)
    run = read_ili(path, markers=markers)
    f = run.features.set_index("feature_id")
    for fid, chainage in truth.items():
        assert f.loc[fid, "chainage_m"] == pytest.approx(chainage, abs=1.0), fid
    # plain log distance would be off by up to ~50 m
    assert abs(f.loc["F4", "log_distance_m"] + 200.0 - truth["F4"]) > 40.0
    refs = run.references
    assert refs["name"].tolist() == ["AGM-1", "AGM-2", "AGM-3"]  # "Launch" is not a listed name
    assert refs["used"].all()
    assert any("3 markers" in n for n in run.notes)


def test_markers_out_of_order_are_not_used(tmp_path: Path) -> None:
    path, markers, truth = marker_run(tmp_path, scale=1.0, offset=0.0)
    markers.loc[markers["name"] == "AGM-2", "chainage_m"] = 2000.0  # a wrong record
    run = read_ili(path, markers=markers)
    assert run.references.set_index("name")["used"].to_dict() == {"AGM-1": True, "AGM-2": False, "AGM-3": True}
    assert any("AGM-2" in n and "not used" in n for n in run.notes)
    f = run.features.set_index("feature_id")
    assert f.loc["F3", "chainage_m"] == pytest.approx(truth["F3"], abs=0.01)


def test_no_marker_detected_falls_back_to_the_launch_chainage(tmp_path: Path) -> None:
    path, _, _ = marker_run(tmp_path, scale=1.0, offset=0.0)
    other = pd.DataFrame({"name": ["Elsewhere"], "chainage_m": [1.0]})
    run = read_ili(path, markers=other, launch_chainage_m=200.0)
    f = run.features.set_index("feature_id")
    assert f.loc["F2", "chainage_m"] == pytest.approx(5200.0, abs=0.01)
    assert any("no marker of the list was detected" in n for n in run.notes)
    with pytest.raises(IliError, match="chainage_m"):
        read_ili(path, markers=pd.DataFrame({"name": ["x"]}))


def test_welds_fill_a_features_upstream_weld(tmp_path: Path) -> None:
    lines = [
        "Feature ID,Log Distance [m],Event,Depth [%],Length [mm]",
        "1,10.0,GW,,",
        "2,14.0,ML,20,30",
        "3,22.0,Girth Weld,,",
        "4,22.5,ML,20,30",
        "5,5.0,ML,20,30",
    ]
    run = read_ili(write(tmp_path, lines))
    f = run.features.set_index("feature_id")
    assert f.loc["2", "weld_distance_m"] == pytest.approx(4.0)
    assert f.loc["4", "weld_distance_m"] == pytest.approx(0.5)
    assert math.isnan(f.loc["5", "weld_number"])  # before the first weld
    assert run.welds["log_distance_m"].tolist() == [10.0, 22.0]
    assert "girth_weld" not in set(run.features["feature_type"])
