"""Scenario files: durations, shipped scenarios, round trip, clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pumptwin.plant.health import MODE_INFO, Mode
from pumptwin.plant.scenario import (
    Scenario,
    ScenarioError,
    check_name,
    parse_duration,
    read_scenario,
    scenario_from_dict,
    shipped_scenario,
    shipped_scenarios,
    write_scenario,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("15m", 900.0), ("6h", 21600.0), ("2d", 172800.0), ("1w", 604800.0), ("1d12h", 129600.0),
     (45, 45.0), ("2.5h", 9000.0), ("120", 120.0)],
)  # fmt: skip
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@given(st.integers(0, 10**6))
def test_duration_of_parts(n: int) -> None:
    d, rest = divmod(n, 86400)
    h, rest = divmod(rest, 3600)
    assert parse_duration(f"{d}d{h}h{rest}s") == n


@pytest.mark.parametrize("bad", ["soon", "3x", "-1", True, None, "1d-2h"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ScenarioError):
        parse_duration(bad)


def test_shipped_scenarios_read_and_round_trip(tmp_path: Path) -> None:
    names = set(shipped_scenarios())
    assert {"healthy_month", "bearing_failure", "impeller_wear", "cavitation_event", "pipeline_leak"} <= names
    for name in names:
        scenario = shipped_scenario(name)
        back = read_scenario(write_scenario(scenario, tmp_path / f"{name}.yaml"))
        assert back == scenario
    bearing = shipped_scenario("bearing_failure")
    fault = bearing.faults[0]
    assert fault.mode is Mode.BEARING_WEAR and fault.trip
    assert (fault.onset_s, fault.failure_s) == (4 * 86400.0, 18 * 86400.0)
    assert shipped_scenario("healthy_month").duration_s == 30 * 86400.0


def test_defaults_and_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "start": "2024-05-01T00:00:00Z",
                "duration": "2d",
                "faults": [{"mode": "seal_failure", "target": "PS01.P1", "onset": "2024-05-01T06:00:00Z",
                            "failure": "1d"}],
            }
        )
    )  # fmt: skip
    s = read_scenario(path)
    f = s.faults[0]
    assert f.onset_s == 6 * 3600.0
    assert f.magnitude == MODE_INFO[Mode.SEAL_FAILURE].magnitude
    assert f.magnitude_si == pytest.approx(60e-3 / 3600)
    assert f.law == "exponential" and f.trip
    assert s.step_s == 60.0 and s.lines == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown fields"),
        ({"faults": [{"mode": "gremlins", "target": "PS01.P1"}]}, "unknown mode"),
        ({"faults": [{"mode": "bearing_wear", "target": "PS01.P1", "onset": "3d", "failure": "1d"}]}, "onset"),
        ({"operations": {"events": [{"at": "1h", "target": "PS01", "action": "dance"}]}}, "unknown action"),
        ({"sensors": {"dropout_rate": 3}}, "fraction"),
        ({"duration": "later"}, "duration"),
        ({"version": 7}, "version"),
    ],
)
def test_errors_name_file_and_field(tmp_path: Path, change: dict[str, object], message: str) -> None:
    data: dict[str, object] = {"name": "x", "start": "2024-05-01T00:00:00Z", "duration": "1d", **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match=message) as info:
        read_scenario(path)
    assert "bad.yaml" in str(info.value)


# --- hostile input ------------------------------------------------------------------------------


def _scenario_file(tmp_path: Path, **change: object) -> Path:
    data: dict[str, object] = {"name": "x", "start": "2024-05-01T00:00:00Z", "duration": "1d", **change}
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["bearing_failure", "run-2.v1", "A", "x" * 100, "7"])
def test_safe_scenario_names_are_kept(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["../../tmp/x", "a/b", "a\\b", "..", ".hidden", "", "x" * 101, "/etc/passwd", "a b", "a\x00b", "caf\u00e9"]
)
def test_unsafe_scenario_names_are_refused(name: str) -> None:
    with pytest.raises(ScenarioError, match="scenario name"):
        check_name(name)


def test_a_scenario_file_cannot_name_a_path_outside_its_folder(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="scenario name") as info:
        read_scenario(_scenario_file(tmp_path, name="../../tmp/x"))
    assert "hostile.yaml" in str(info.value)


def test_a_scenario_built_in_code_checks_its_name_too(make_scenario: Callable[..., Scenario]) -> None:
    with pytest.raises(ScenarioError, match="scenario name"):
        make_scenario(name="../out")


HUGE = "x" * 1_000_000


@pytest.mark.parametrize(
    "field",
    [
        {"duration": HUGE},
        {"start": HUGE},
        {"name": HUGE},
        {"version": HUGE},
        {"seed": HUGE},
        {HUGE: 1},
        {"faults": [{"mode": HUGE, "target": "PS01.P1"}]},
        {"faults": [{"mode": "leak", "target": "LINE01.KP040", "magnitude": HUGE}]},
        {"faults": [{"mode": "leak", "target": HUGE, "law": HUGE}]},
        {"operations": {"speed": HUGE}},
        {"operations": {"events": [{"at": "1h", "target": "PS01", "action": HUGE}]}},
        {"sensors": {"dropout_rate": HUGE}},
        {"ambient": {"mean_c": HUGE}},
    ],
)
def test_a_megabyte_value_gives_a_short_message(field: dict[str, object]) -> None:
    data = {"name": "x", "start": "2024-05-01T00:00:00Z", "duration": "1d", **field}
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data)
    assert len(str(info.value)) < 400


def test_a_megabyte_value_in_a_file_gives_a_short_message(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        read_scenario(_scenario_file(tmp_path, duration=HUGE))
    message = str(info.value)
    assert "hostile.yaml" in message and "duration" in message
    assert len(message) < 400 + len(str(tmp_path))


@pytest.mark.parametrize(
    "field",
    [
        {"duration": "\x1b[2J"},
        {"name": "\x1b[2J"},
        {"faults": [{"mode": "\x1b[2J", "target": "PS01.P1"}]},
        {"faults": [{"mode": "leak", "target": "\x1b[2J", "law": "\x1b[2J"}]},
        {"\x1b[2J": 1},
    ],
)
def test_terminal_escapes_are_shown_not_sent(tmp_path: Path, field: dict[str, object]) -> None:
    with pytest.raises(ScenarioError) as info:
        read_scenario(_scenario_file(tmp_path, **field))
    message = str(info.value)
    assert "\x1b" not in message
    assert "\\x1b[2J" in message


@pytest.mark.parametrize(
    "field",
    [
        {"operations": [1, 2]},
        {"operations": {"events": {"at": "1h"}}},
        {"operations": {"events": [{"at": "1h", "action": "stop"}]}},
        {"operations": {"events": ["stop"]}},
        {"faults": {"mode": "leak"}},
        {"faults": [{"target": "PS01.P1"}]},
        {"faults": ["leak"]},
        {"fleet": "reference"},
        {"fleet": {"lines": [1]}},
        {"sensors": [0.1]},
        {"seed": 1.5},
        {"ambient": {"mean_c": [1]}},
    ],
)
def test_wrong_shapes_are_scenario_errors(tmp_path: Path, field: dict[str, object]) -> None:
    with pytest.raises(ScenarioError) as info:
        read_scenario(_scenario_file(tmp_path, **field))
    assert "hostile.yaml" in str(info.value)


def test_a_yaml_bomb_is_a_scenario_error(tmp_path: Path) -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="bomb.yaml.*nodes"):
        read_scenario(path)
