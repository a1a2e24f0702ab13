from __future__ import annotations

from pathlib import Path

import pytest

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.integrity.pipe import (
    GRADES,
    MARKER_COLUMNS,
    PipeError,
    PipeProperties,
    load_pipe_properties,
    packaged_integrity_file,
    reference_markers,
)


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "line.integrity.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_grade_table_holds_the_api_5l_grades_in_pa() -> None:
    assert set(GRADES) == {"B", "X42", "X46", "X52", "X56", "X60", "X65", "X70", "X80"}
    assert GRADES["X52"] == (360e6, 460e6)
    assert GRADES["X42"][0] == 290e6
    smys = [GRADES[g][0] for g in GRADES]
    assert smys == sorted(smys)
    assert all(smts >= smys for smys, smts in GRADES.values())


def test_pipe_properties_are_validated() -> None:
    pipe = PipeProperties("X52", 360e6, 460e6, 0.0079, 0.66)
    assert pipe.diameter_over_wall == pytest.approx(0.66 / 0.0079)
    with pytest.raises(PipeError, match="wall_m"):
        PipeProperties("X52", 360e6, 460e6, -0.001, 0.66)
    with pytest.raises(PipeError, match="SMTS"):
        PipeProperties("X52", 460e6, 360e6, 0.0079, 0.66)
    with pytest.raises(PipeError, match="too thick"):
        PipeProperties("X52", 360e6, 460e6, 0.4, 0.66)
    with pytest.raises(PipeError, match="smys_pa"):
        PipeProperties("X52", float("nan"), 460e6, 0.0079, 0.66)
    assert issubclass(PipeError, PumptwinError) and issubclass(PipeError, ValueError)


def test_the_reference_file_loads_against_the_reference_network(network: Network) -> None:
    path = packaged_integrity_file()
    assert path.is_file() and path.name == "reference_pipeline.integrity.yaml"
    pipes = load_pipe_properties(path, network)
    assert set(pipes) == {p.id for p in network.pipes}
    line = [p for pid, p in pipes.items() if pid.startswith("L")]
    assert all(p.diameter_m == pytest.approx(0.660) for p in line)
    assert all(0.0071 - 1e-9 <= p.wall_m <= 0.0095 + 1e-9 for p in pipes.values())
    assert {p.grade for p in line} <= {"X42", "X52", "X60"}
    assert pipes["L060-065"].grade == "X42" and pipes["L060-065"].wall_m == pytest.approx(0.0071)
    assert pipes["SUC1"].diameter_m == pytest.approx(0.762)


def test_the_reference_markers_cover_the_line_every_ten_km_or_so() -> None:
    markers = reference_markers(packaged_integrity_file())
    assert tuple(markers.columns) == MARKER_COLUMNS
    assert markers["chainage_m"].is_monotonic_increasing
    assert markers["name"].is_unique
    assert {"launcher", "receiver", "marker", "valve"} <= set(markers["kind"])
    gaps = markers["chainage_m"].drop_duplicates().diff().dropna()
    assert gaps.max() <= 11_000.0
    assert markers["chainage_m"].iloc[0] == 200.0 and markers["chainage_m"].iloc[-1] == 120_200.0


def test_default_block_and_overrides_merge(tmp_path: Path, network: Network) -> None:
    path = write(
        tmp_path,
        "default: {grade: x60, wall_mm: 8.0}\n"
        "pipes:\n"
        "  L000-005: {wall_mm: 9.5, outside_diameter_mm: 660}\n"
        "  L005-010: {grade: Vintage, smys_mpa: 250, smts_mpa: 400}\n"
        "  L010-015: {grade: X52, smys_mpa: 370}\n",
    )
    pipes = load_pipe_properties(path, network)
    assert pipes["L000-005"] == PipeProperties("X60", 415e6, 520e6, 0.0095, 0.66)
    assert pipes["L005-010"].grade == "Vintage" and pipes["L005-010"].smys_pa == 250e6
    assert pipes["L010-015"].smys_pa == 370e6 and pipes["L010-015"].smts_pa == 460e6
    # without an outside diameter a pipe takes its network diameter
    assert pipes["L020-025"].diameter_m == pytest.approx(0.660)
    assert pipes["SUC1"].diameter_m == pytest.approx(0.762)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default: {grade: X52, wall_mm: 7.9}\npipes:\n  L999: {wall_mm: 8}\n", "L999"),
        ("default: {grade: X52, wall_mm: 7.9}\npipes:\n  PS1-P1: {wall_mm: 8}\n", "pump or valve"),
        ("default: {grade: X99, wall_mm: 7.9}\n", "X99"),
        ("default: {grade: X52, wall_mm: -7.9}\n", "wall_mm must be > 0"),
        ("default: {grade: X52, wall_mm: 0}\n", "wall_mm must be > 0"),
        ("default: {grade: X52}\n", "no wall_mm"),
        ("default: {wall_mm: 7.9}\n", "no grade"),
        ("default: {grade: X52, wall_mm: 7.9, colour: red}\n", "colour"),
        ("default: {grade: X52, wall_mm: 7.9}\npipes:\n  L000-005: {outside_diameter_mm: -1}\n", "L000-005"),
        ("default: {grade: X52, wall_mm: 7.9, smys_mpa: abc}\n", "smys_mpa"),
        ("default: {grade: X52, wall_mm: 7.9}\nstuff: 1\n", "stuff"),
    ],
)
def test_bad_entries_are_named(tmp_path: Path, network: Network, text: str, message: str) -> None:
    with pytest.raises(PipeError, match=message) as info:
        load_pipe_properties(write(tmp_path, text), network)
    assert str(info.value).startswith("line.integrity.yaml")


def test_a_missing_file_is_a_pipe_error(tmp_path: Path, network: Network) -> None:
    with pytest.raises(PipeError, match="no such"):
        load_pipe_properties(tmp_path / "none.yaml", network)


@pytest.mark.parametrize(
    ("markers", "message"),
    [
        ("- {name: A, chainage_km: 1}\n- {name: A, chainage_km: 2}\n", "used twice"),
        ("- {name: A, chainage_km: -1}\n", "chainage_km must be >= 0"),
        ("- {name: A, chainage_km: 1, kind: lamppost}\n", "lamppost"),
        ("- {chainage_km: 1}\n", "no name"),
        ("- {name: A}\n", "exactly one"),
        ("- {name: A, chainage_km: 1, chainage_m: 1000}\n", "exactly one"),
    ],
)
def test_bad_markers_are_named(tmp_path: Path, markers: str, message: str) -> None:
    with pytest.raises(PipeError, match=message):
        reference_markers(write(tmp_path, "markers:\n" + "\n".join("  " + m for m in markers.splitlines()) + "\n"))


def test_markers_read_in_km_or_m_and_sorted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "markers:\n  - {name: B, chainage_m: 2500}\n  - {name: A, chainage_km: 1.2, kind: valve}\n",
    )
    markers = reference_markers(path)
    assert markers["name"].tolist() == ["A", "B"]
    assert markers["chainage_m"].tolist() == [1200.0, 2500.0]
    assert markers["kind"].tolist() == ["valve", "marker"]
    empty = reference_markers(write(tmp_path, "default: {grade: X52, wall_mm: 7}\n"))
    assert empty.empty and tuple(empty.columns) == MARKER_COLUMNS
