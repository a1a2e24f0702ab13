"""Hostile scenario files and values: errors stay `ScenarioError`s with short, printable messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pumptwin.twin.whatif.parsing import (
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_VALUE_CHARS,
    element_id,
    parse_flow,
    parse_location,
    parse_number,
    parse_scenarios,
    read_scenarios,
    scenario_from_flags,
)
from pumptwin.twin.whatif.spec import ScenarioError

HUGE = "x" * 1_000_000
CLEAR_SCREEN = "\x1b[2J"


def write(tmp_path: Path, scenario: dict[str, object], **top: object) -> Path:
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "scenarios": [scenario], **top}), encoding="utf-8")
    return path


def test_a_megabyte_value_in_a_file_gives_a_short_message(tmp_path: Path) -> None:
    path = write(tmp_path, {"name": "more flow", "flow": HUGE})
    with pytest.raises(ScenarioError, match=r"hostile\.yaml: scenario 1 \('more flow'\): flow") as info:
        read_scenarios(path)
    assert len(str(info.value)) < 300


def test_a_terminal_escape_in_a_file_is_shown_not_sent(tmp_path: Path) -> None:
    path = write(tmp_path, {"name": "more flow", "flow": CLEAR_SCREEN})
    with pytest.raises(ScenarioError) as info:
        read_scenarios(path)
    assert "\x1b" not in str(info.value)
    assert "\\x1b[2J" in str(info.value)


@pytest.mark.parametrize(
    ("scenario", "top"),
    [
        ({"name": "s", "flow": HUGE}, {}),
        ({"name": "s", HUGE: 1}, {}),
        ({"name": "s", "speed": {HUGE: "1400rpm"}}, {}),
        ({"name": "s", "speed": {"PS1": HUGE}}, {}),
        ({"name": "s", "links": {HUGE: HUGE}}, {}),
        ({"name": "s", "valves": {"V1": HUGE}}, {}),
        ({"name": "s", "demand": {HUGE: "2%"}}, {}),
        ({"name": "s", "fixed_heads": {"R1": HUGE}}, {}),
        ({"name": "s", "suction_drop": HUGE}, {}),
        ({"name": "s", "stop": [HUGE, 1]}, {}),
        ({"name": "s", "stop": ["P1", HUGE]}, {}),
        ({"name": "s", "leak": {"node": HUGE, "size": "2%"}}, {}),
        ({"name": "s", "leak": {"km": 90, "size": HUGE}}, {}),
        ({"name": "s", "leak": {"km": 90, HUGE: 1}}, {}),
        ({"name": "s", "rupture": {"node": "J1", "area_fraction": HUGE}}, {}),
        ({"name": HUGE}, {}),
        ({"name": "s"}, {HUGE: 1}),
        ({"name": "s"}, {"version": HUGE}),
        ({"name": "s"}, {"rated_speed_rpm": {HUGE: HUGE}}),
        ({"name": "s"}, {"ambient_c": HUGE}),
        ({"name": "s"}, {"source": HUGE}),
    ],
)
def test_megabyte_keys_and_values_give_short_messages(scenario: dict[str, object], top: dict[str, object]) -> None:
    data = {"version": 1, "scenarios": [scenario], **top}
    with pytest.raises(ScenarioError) as info:
        parse_scenarios(data, "f.yaml")
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    "scenario",
    [
        {"name": "s", "flow": CLEAR_SCREEN},
        {"name": "s", "speed": {CLEAR_SCREEN: "fast"}},
        {"name": "s", "links": {CLEAR_SCREEN: "ajar"}},
        {"name": "s", CLEAR_SCREEN: 1},
        {"name": CLEAR_SCREEN},
    ],
)
def test_escapes_in_keys_and_values_are_shown_not_sent(scenario: dict[str, object]) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenarios({"version": 1, "scenarios": [scenario]}, "f.yaml")
    assert "\x1b" not in str(info.value)


@pytest.mark.parametrize("name", ["x" * (MAX_NAME_CHARS + 1), "a\nb", "line\u2028break", "a\u202eb"])
def test_names_that_would_garble_a_report_are_refused(name: str) -> None:
    with pytest.raises(ScenarioError, match="scenario name"):
        parse_scenarios({"version": 1, "scenarios": [{"name": name}]}, "f.yaml")


def test_a_long_printable_name_is_kept() -> None:
    name = "trip PS1-P1 at 90 km, café " + "x" * (MAX_NAME_CHARS - 27)
    assert parse_scenarios({"version": 1, "scenarios": [{"name": name}]}, "f.yaml").scenarios[0].name == name


@pytest.mark.parametrize("value", ["1" * 5000 + "!", "1" * 30 + "!", " " * 5000 + "1", "9" * (MAX_VALUE_CHARS + 1)])
def test_long_numbers_are_refused_before_parsing(value: str) -> None:
    with pytest.raises(ScenarioError, match="expected a number"):
        parse_flow(value, "leak.size")


def test_values_up_to_the_limit_still_parse() -> None:
    assert parse_number("1" + " " * (MAX_VALUE_CHARS - 1), "x") == 1.0
    assert parse_flow("50 m3/h", "x")[0] == pytest.approx(50 / 3600)
    assert parse_location("1" * 30 + "!", "x") == ("1" * 30 + "!", None)


@pytest.mark.parametrize("bad", ["1" * 5000 + "!", "x" * (MAX_ID_CHARS + 1), "J1\x1b[2J", "J\n1", " "])
def test_ids_are_short_and_printable(bad: str) -> None:
    with pytest.raises(ScenarioError, match="is no id") as info:
        element_id(bad, "leak")
    assert "\x1b" not in str(info.value) and len(str(info.value)) < 200


def test_ids_up_to_the_limit_are_kept() -> None:
    assert element_id("x" * MAX_ID_CHARS, "leak") == "x" * MAX_ID_CHARS
    assert element_id(" PS1-P2 ", "stop") == "PS1-P2"
    assert element_id(7, "stop") == "7"


def test_keys_of_mixed_types_give_a_scenario_error() -> None:
    with pytest.raises(ScenarioError, match="unknown key"):
        parse_scenarios({"version": 1, "scenarios": [{"name": "s", 1: "a", "b": 2}]}, "f.yaml")


def test_many_scenario_names_are_checked_for_repeats() -> None:
    items = [{"name": f"s{i}"} for i in range(5000)] + [{"name": "s7"}]
    with pytest.raises(ScenarioError, match="'s7' is used twice"):
        parse_scenarios({"version": 1, "scenarios": items}, "f.yaml")


def test_a_yaml_bomb_is_a_scenario_error(tmp_path: Path) -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bomb\.yaml: not valid YAML: .*nodes"):
        read_scenarios(path)


@pytest.mark.parametrize(
    "flags",
    [
        {"leak": [f"90={HUGE}{CLEAR_SCREEN}"]},
        {"leak": [f"{HUGE}{CLEAR_SCREEN}=2%"]},
        {"speed": [f"{HUGE}{CLEAR_SCREEN}=0.9"]},
        {"stop": [f"{HUGE}{CLEAR_SCREEN}"]},
        {"flow": f"{HUGE}{CLEAR_SCREEN}"},
    ],
)
def test_flag_values_are_bounded_in_messages(flags: dict[str, object]) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_flags(**flags)  # type: ignore[arg-type]
    assert len(str(info.value)) < 300
    assert "\x1b" not in str(info.value)
