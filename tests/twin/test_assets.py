"""The asset and tag registry: names, ranges, round trip through its versioned file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pumptwin.twin.assets import (
    PUMP_MEASURES,
    REGISTRY_VERSION,
    RegistryError,
    TagSpec,
    build_registry,
    default_meters,
    read_registry,
    registry_frame,
    sanitize,
    write_registry,
)
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.network import Network


@pytest.fixture(scope="module")
def network() -> Network:
    """The packaged reference pipeline (2 stations x 3 pumps)."""
    return load_network()


def test_reference_fleet_tags(network: Network) -> None:
    reg = build_registry(network, n_lines=1)
    names = set(reg.tag_names)
    assert "PS01.P2.VIB_DE_RMS" in names
    assert "PS02.P3.MOTOR_WINDING_TEMP" in names
    assert "PS01.SITE.AMBIENT_TEMP" in names
    assert {"LINE01.DEL.FLOW", "LINE01.DEL_IN.PRESS", "LINE01.PS2_S.PRESS", "LINE01.SUC1.FLOW"} <= names
    assert len(reg.pumps) == 6
    assert len(PUMP_MEASURES) == 15
    per_pump = [t for t in reg.tags if t.station == "PS01" and t.asset == "P1"]
    assert len(per_pump) == 15
    assert reg.pumps[reg.pump_index("PS01.P2")].pump_id == "PS1-P2"
    assert len(reg.tags) == 6 * 15 + 2 + len(default_meters(network))


def test_fleet_renames_stations_line_by_line(network: Network) -> None:
    reg = build_registry(network, n_lines=10)
    assert [s.name for s in reg.stations][:4] == ["PS01", "PS02", "PS03", "PS04"]
    ps20 = reg.stations[-1]
    assert (ps20.name, ps20.line, ps20.network_station) == ("PS20", 10, "PS2")
    assert len(reg.pumps) == 60
    assert "LINE10.DEL.FLOW" in reg.tag_names


def test_ranges_units_and_design(network: Network) -> None:
    reg = build_registry(network)
    for t in reg.tags:
        assert t.low < t.high
        assert t.sample_period_s > 0
    disch = reg.tag("PS01.P1.DISCH_PRESS")
    assert disch.unit == "bar g"
    assert 30 < disch.high < 60  # 1.5 x MAOP 3.1 MPa; a value in psi (x14.5) falls outside
    p = reg.pumps[0]
    assert 0.2 < p.bep_flow_m3s < 0.35
    assert p.motor_rated_w >= p.bep_shaft_power_w * p.max_speed**3
    assert reg.tag("PS01.P1.MOTOR_CURRENT").high == pytest.approx(2 * p.motor_rated_current_a)


def test_frame_columns(network: Network) -> None:
    frame = registry_frame(build_registry(network))
    assert list(frame.columns) == ["tag", "station", "asset", "measure", "unit", "low", "high", "sample_period_s"]
    row = frame.set_index("tag").loc["PS01.P2.VIB_DE_RMS"]
    assert (row["station"], row["asset"], row["measure"], row["unit"]) == ("PS01", "P2", "VIB_DE_RMS", "mm/s")


def test_round_trip(network: Network, tmp_path: Path) -> None:
    reg = build_registry(network, n_lines=2, sample_periods_s={"VIB_DE_RMS": 2.0})
    path = write_registry(reg, tmp_path / "registry.yaml")
    back = read_registry(path)
    assert back == reg
    assert back.tag("PS03.P1.VIB_DE_RMS").sample_period_s == 2.0
    assert yaml.safe_load(path.read_text())["version"] == REGISTRY_VERSION


def test_bad_files_and_entries(network: Network, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no such registry file"):
        read_registry(tmp_path / "missing.yaml")
    path = write_registry(build_registry(network), tmp_path / "r.yaml")
    data = yaml.safe_load(path.read_text())
    data["version"] = 99
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RegistryError, match=r"r\.yaml.*version 99"):
        read_registry(path)
    with pytest.raises(RegistryError, match="STATION.ASSET.MEASURE"):
        TagSpec("PS01.P1", "PS01", "P1", "", "-", 0.0, 1.0, 1.0)
    with pytest.raises(RegistryError, match="low < high"):
        TagSpec("PS01.P1.FLOW", "PS01", "P1", "FLOW", "m3/h", 5.0, 1.0, 1.0)
    with pytest.raises(RegistryError, match="not a pipe|needs a pipe|does not exist"):
        build_registry(network, meters=[("NOPE", "FLOW")])
    assert sanitize("DEL-IN") == "DEL_IN"


def test_lines_for_stations_counts_lines_from_station_numbers():
    from pumptwin.twin.assets import lines_for_stations
    from pumptwin.twin.hydraulic.io import load_network

    net = load_network()  # two stations per line
    assert lines_for_stations(net, ["PS01", "PS02"]) == 1
    assert lines_for_stations(net, ["PS01", "PS03", "LINE02", "junk"]) == 2
    assert lines_for_stations(net, ["PS20"]) == 10
    assert lines_for_stations(net, []) == 1


# --- hostile files ------------------------------------------------------------------------------

HUGE = "x" * 100_000


def _edited(network: Network, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    path = write_registry(build_registry(network), tmp_path / "r.yaml")
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "huge version": lambda d: d.update(version=HUGE),
    "huge n_lines": lambda d: d.update(n_lines=HUGE),
    "huge tag": lambda d: d["tags"][0].update(tag=HUGE),
    "huge low": lambda d: d["tags"][0].update(low=HUGE),
    "huge field": lambda d: d["tags"][0].update({HUGE: 1}),
    "huge missing field": lambda d: d.pop("network"),
    "escape in tag": lambda d: d["tags"][0].update(tag="PS01.P1.\x1b[2J"),
    "escape in a field name": lambda d: d["pumps"][0].update({"\x1b[2J": 1}),
    "station not a mapping": lambda d: d["stations"].__setitem__(0, "\x1b[2J"),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_a_hostile_registry_gives_a_short_printable_registry_error(
    network: Network, tmp_path: Path, edit: Callable[[dict[str, Any]], None]
) -> None:
    with pytest.raises(RegistryError) as info:
        read_registry(_edited(network, tmp_path, edit))
    message = str(info.value)
    assert "r.yaml" in message
    assert len(message) < 400 + len(str(tmp_path))
    assert "\x1b" not in message


def test_a_yaml_bomb_is_a_registry_error(tmp_path: Path) -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\n", encoding="utf-8")
    with pytest.raises(RegistryError, match="nodes"):
        read_registry(path)


def test_unknown_names_are_bounded_in_messages(network: Network) -> None:
    registry = build_registry(network)
    for call in (lambda: registry.tag(HUGE), lambda: registry.pump_index(HUGE), lambda: sanitize(" " * 10**6)):
        with pytest.raises(RegistryError) as info:
            call()
        assert len(str(info.value)) < 300
