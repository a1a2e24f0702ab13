"""Tests for `twin.io`: the reference pipeline and its sidecar, bad sidecars, and solution dictionaries."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import pytest
import wntr
import yaml

from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.health.estimation import TwinCalibration
from pumptwin.twin.hydraulic import io as hydraulic_io
from pumptwin.twin.hydraulic.eps import simulate
from pumptwin.twin.hydraulic.inp import read_inp
from pumptwin.twin.hydraulic.io import (
    MAX_YAML_ALIASES,
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    BoundedLoader,
    load_network,
    read_yaml_mapping,
    reference_pipeline_path,
    solution_to_dict,
)
from pumptwin.twin.hydraulic.network import FLUIDS, Network, NetworkError
from pumptwin.twin.hydraulic.solver import compile_network

NET1 = Path(wntr.__file__).parent / "library" / "networks" / "Net1.inp"


@pytest.fixture(scope="module")
def reference() -> Network:
    return load_network(reference_pipeline_path())


def test_reference_pipeline_files_exist() -> None:
    path = reference_pipeline_path()
    assert path.is_file() and path.suffix == ".inp"
    assert path.with_suffix(".yaml").is_file()


def test_sidecar_sets_the_fluid(reference: Network) -> None:
    fluid = reference.fluid
    assert (fluid.name, fluid.density_kg_m3, fluid.kinematic_viscosity_m2_s, fluid.vapour_pressure_pa) == (
        "crude",
        850.0,
        1.0e-5,
        30_000.0,
    )
    assert reference.atmospheric_pressure_pa == 101_325.0
    assert fluid.specific_gravity == pytest.approx(reference.options.specific_gravity)


def test_sidecar_sets_maop_on_every_pipe(reference: Network) -> None:
    pipes = {p.id: p for p in reference.pipes}
    assert all(p.maop_pa is not None for p in pipes.values())
    assert pipes["SUC1"].maop_pa == pytest.approx(1.0e6)
    assert pipes["L000-005"].maop_pa == pytest.approx(3.1e6)
    assert pipes["L020-025"].maop_pa == pytest.approx(2.5e6)
    assert pipes["L060-065"].maop_pa == pytest.approx(2.6e6)
    assert pipes["DEL"].maop_pa == pytest.approx(2.0e6)


def test_sidecar_sets_stations_speeds_and_npshr_curve(reference: Network) -> None:
    pumps = reference.pumps
    assert [p.id for p in pumps] == ["PS1-P1", "PS1-P2", "PS1-P3", "PS2-P1", "PS2-P2", "PS2-P3"]
    for p in pumps:
        assert p.station == p.id[:3]
        assert p.npshr_curve == "NPSHR1"
        assert (p.min_speed, p.max_speed) == (0.70, 1.05)
        assert p.efficiency_curve == "EF1"  # from the .inp's [ENERGY], kept
    curve = reference.curve("NPSHR1")
    assert curve.kind == "NPSHR"
    assert curve.points == ((0.10, 6.0), (0.28, 11.0), (0.40, 19.0))  # m3/s and m, as written


def test_default_path_is_the_reference_pipeline(reference: Network) -> None:
    assert load_network() == reference


def test_without_a_sidecar_the_file_is_read_as_is(tmp_path: Path) -> None:
    inp = tmp_path / "line.inp"
    shutil.copy(reference_pipeline_path(), inp)
    net = load_network(inp)
    assert net == read_inp(inp)
    assert net.fluid == type(net.fluid)()  # the default water
    assert all(p.maop_pa is None for p in net.pipes)
    assert all(p.station is None for p in net.pumps)


def test_missing_file_is_a_network_error(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="nothing.inp"):
        load_network(tmp_path / "nothing.inp")


def with_sidecar(tmp_path: Path, text: str) -> Path:
    """The reference .inp copied to tmp_path/line.inp with ``text`` as line.yaml beside it."""
    inp = tmp_path / "line.inp"
    shutil.copy(reference_pipeline_path(), inp)
    (tmp_path / "line.yaml").write_text(text, encoding="utf-8")
    return inp


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("pumps:\n  NOPE: {station: PS9}\n", ["NOPE"]),
        ("pumps:\n  PS1-P1: {colour: red}\n", ["colour"]),
        ("pumps:\n  PS1-P1: {npshr_curve: NOCURVE}\n", ["PS1-P1", "NOCURVE"]),
        ("maop_mpa:\n  SUC1: 0\n", ["SUC1", "MAOP > 0"]),
        ("maop_mpa:\n  L000-005: -3.1\n", ["L000-005", "MAOP > 0"]),
        ("maop_mpa:\n  NOPE: 2.0\n", ["NOPE"]),
        ("fluid: {name: crude, density_kg_m3: -850}\n", ["density"]),
        ("fluid: {name: crude, colour: black}\n", ["fluid", "colour"]),
        ("fluid: [crude, 850\n", ["not valid YAML"]),
        ("maop_mpa: {SUC1: 1.0\n", ["not valid YAML"]),
        ("- crude\n- 850\n", ["mapping"]),
    ],
    ids=[
        "unknown-pump",
        "unknown-pump-field",
        "unknown-curve",
        "maop-zero",
        "maop-negative",
        "maop-unknown-pipe",
        "bad-density",
        "unknown-fluid-field",
        "invalid-yaml",
        "unclosed-mapping",
        "not-a-mapping",
    ],
)
def test_bad_sidecar_names_the_sidecar(tmp_path: Path, text: str, names: list[str]) -> None:
    inp = with_sidecar(tmp_path, text)
    with pytest.raises(NetworkError) as err:
        load_network(inp)
    message = str(err.value)
    assert message.startswith("line.yaml"), message
    for name in names:
        assert name in message, message


def test_empty_sidecar_changes_nothing(tmp_path: Path) -> None:
    inp = with_sidecar(tmp_path, "# nothing here\n")
    assert load_network(inp) == read_inp(inp)


def test_non_numeric_maop_names_the_sidecar(tmp_path: Path) -> None:
    inp = with_sidecar(tmp_path, "maop_mpa:\n  SUC1: high\n")
    with pytest.raises(NetworkError, match=r"line\.yaml.*SUC1"):
        load_network(inp)


def test_fluid_table_has_crude() -> None:
    assert FLUIDS["crude"].density_kg_m3 == 850.0


def test_solution_dict_of_a_steady_state(reference: Network) -> None:
    model = compile_network(reference)
    out = simulate(model, duration_s=0)
    d = solution_to_dict(model, out)
    assert d["times_s"] == [0]
    assert d["converged"] is True
    assert list(d["nodes"]) == list(model.node_ids)
    assert list(d["links"]) == list(model.link_ids)
    node = d["nodes"]["PS1-D"]
    i = model.node_index["PS1-D"]
    assert node["head_m"] == pytest.approx(out.head_m[0, 0, i])
    assert node["pressure_m"] == pytest.approx(out.head_m[0, 0, i] - 52.0)
    assert d["links"]["DEL"]["flow_m3s"] == pytest.approx(out.flow_m3s[0, 0, model.link_index["DEL"]])
    assert d["links"]["PS1-P1"]["status"] == "OPEN"
    assert d["links"]["PS1-P3"]["status"] == "CLOSED"
    assert all(isinstance(v["head_m"], float) for v in d["nodes"].values())
    assert all(isinstance(v["flow_m3s"], float) for v in d["links"].values())
    json.dumps(d)  # plain JSON types only


def test_solution_dict_of_an_extended_period() -> None:
    model = compile_network(read_inp(NET1))
    out = simulate(model, duration_s=3 * 3600)
    d = solution_to_dict(model, out)
    assert d["times_s"] == [0, 3600, 7200, 10800]
    assert set(d["nodes"]) == set(model.node_ids) and set(d["links"]) == set(model.link_ids)
    tank = d["nodes"]["2"]["head_m"]
    assert isinstance(tank, list) and len(tank) == 4
    assert tank == pytest.approx(list(out.head_m[:, 0, model.node_index["2"]]))
    assert all(len(v["flow_m3s"]) == 4 and len(v["status"]) == 4 for v in d["links"].values())
    assert set(d["links"]["9"]["status"]) <= {"OPEN", "CLOSED"}
    json.dumps(d)


def test_solution_dict_picks_the_scenario() -> None:
    from pumptwin.twin.hydraulic.solver import base_batch

    model = compile_network(read_inp(NET1))
    batch = base_batch(model, 2)
    batch.demand_m3s[1] *= 1.5
    out = simulate(model, batch, duration_s=0)
    first, second = solution_to_dict(model, out, 0), solution_to_dict(model, out, 1)
    assert second["links"]["10"]["flow_m3s"] != pytest.approx(first["links"]["10"]["flow_m3s"])
    assert second["links"]["10"]["flow_m3s"] == pytest.approx(out.flow_m3s[0, 1, model.link_index["10"]])


# --------------------------------------------------------------------------------------------
# Calibration and twin state files
# --------------------------------------------------------------------------------------------


def _calibration() -> TwinCalibration:
    """A calibration built in code with every kind of value (NaN, infinities, nanoseconds, two lines)."""
    import math

    import pandas as pd

    from pumptwin.twin.assets import build_registry
    from pumptwin.twin.health.estimation import Estimate, VibrationBaseline, initial_calibration

    registry = build_registry(load_network(), 2)
    cal = initial_calibration(registry)
    p1 = cal.pumps["PS01.P1"]
    from dataclasses import replace

    worn = replace(
        p1,
        impeller_wear=Estimate(0.0123456789012345, 1e-17),
        efficiency_loss=Estimate(-0.1 / 3, 0.02),
        vib_de=VibrationBaseline(
            tuple(float(i) / 7 for i in range(36)), (1.0 / 3, 2.0 / 3, 0.1, 0, 0, 1), 123.456, 0.321
        ),
        vib_de_mm_s=2.5,
        vib_excess_de_mm_s=math.nan,
        thermal_de=Estimate(41.0000000001, math.inf),
        thermal_ref_de_k=-math.inf,
        npsh_margin_m=7.25,
        running_fraction=0.5,
        n_samples=42,
        last_running_ts=pd.Timestamp("2024-03-01T12:34:56.123456789Z"),
    )
    line = replace(cal.lines[2], flow_m3s=0.5, maop_margin=0.2, maop_element="PS3-D", segments=("a>b", "b>c"))
    return replace(
        cal,
        ts=pd.Timestamp("2024-03-02T00:00:00Z"),
        pumps={**cal.pumps, "PS01.P1": worn},
        lines={**cal.lines, 2: line},
        n_updates=7,
    )


def test_calibration_round_trips_exactly_through_json(tmp_path: Path) -> None:
    from pumptwin.twin.health.io import calibration_from_dict, calibration_to_dict, read_calibration, write_calibration

    cal = _calibration()
    data = calibration_to_dict(cal)
    text = json.dumps(data, allow_nan=False)  # JSON-safe: NaN and inf are named, not written raw
    back = calibration_from_dict(json.loads(text))
    assert json.dumps(calibration_to_dict(back), allow_nan=False) == text
    p = back.pumps["PS01.P1"]
    assert p.impeller_wear.value == 0.0123456789012345  # every bit kept
    assert p.impeller_wear.sd == 1e-17
    assert p.thermal_de.sd == float("inf") and p.thermal_ref_de_k == float("-inf")
    assert p.vib_excess_de_mm_s != p.vib_excess_de_mm_s  # NaN
    assert p.vib_de == cal.pumps["PS01.P1"].vib_de
    assert p.last_running_ts == cal.pumps["PS01.P1"].last_running_ts  # nanoseconds kept
    assert back.ts == cal.ts and back.n_updates == 7
    assert set(back.lines) == {1, 2} and back.lines[2].segments == ("a>b", "b>c")
    assert back.lines[1].meter_bias_m3s == cal.lines[1].meter_bias_m3s
    path = write_calibration(cal, tmp_path / "twin" / "calibration.json")
    assert json.dumps(calibration_to_dict(read_calibration(path)), allow_nan=False) == text
    assert data["format"] == "pumptwin.calibration" and data["version"] == 2


def test_calibration_files_refuse_other_versions_and_malformed_fields(tmp_path: Path) -> None:
    from pumptwin.twin.health.io import calibration_from_dict, calibration_to_dict, read_calibration

    data = calibration_to_dict(_calibration())
    with pytest.raises(NetworkError, match="version 3"):
        calibration_from_dict({**data, "version": 3})
    with pytest.raises(NetworkError, match="format"):
        calibration_from_dict({**data, "format": "other"})
    broken = json.loads(json.dumps(data))
    broken["pumps"]["PS01.P1"]["impeller_wear"]["value"] = "a lot"
    with pytest.raises(NetworkError, match=r"PS01\.P1\.impeller_wear\.value"):
        calibration_from_dict(broken)
    broken = json.loads(json.dumps(data))
    del broken["pumps"]["PS01.P2"]["vib_nde"]
    with pytest.raises(NetworkError, match="vib_nde"):
        calibration_from_dict(broken)
    with pytest.raises(NetworkError, match="no such calibration file"):
        read_calibration(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(NetworkError, match="bad.json: not valid JSON"):
        read_calibration(tmp_path / "bad.json")


def test_twin_state_round_trips_with_its_alerts(tmp_path: Path) -> None:
    import pandas as pd

    from pumptwin.twin.health.io import read_state, write_state
    from pumptwin.twin.health.state import update_state

    cal = _calibration()
    scores = pd.DataFrame({"asset": ["PS01.P2"], "anomaly_score": [1.4], "model_version": ["anomaly:v3"]})
    state = update_state(None, cal, scores, pd.Timestamp("2024-03-02T00:00:00Z"))
    assert state.alerts  # the anomaly score is over its alarm threshold
    path = write_state(state, tmp_path / "state.json")
    back = read_state(path, cal)
    assert back.to_json() == state.to_json()
    assert back.alerts == state.alerts
    assert back.calibration is cal
    later = update_state(back, cal, scores, pd.Timestamp("2024-03-02T01:00:00Z"))
    assert later.alerts[0].since == state.alerts[0].since  # carried across the file
    (tmp_path / "broken.json").write_text(json.dumps({"ts": "2024-03-02T00:00:00Z", "health": []}))
    with pytest.raises(NetworkError, match="alerts"):
        read_state(tmp_path / "broken.json")


# --------------------------------------------------------------------------------------------
# Hostile YAML: every YAML file the project reads goes through read_yaml_mapping
# --------------------------------------------------------------------------------------------


class HostileError(PumptwinError, ValueError):
    """The error class a caller gives read_yaml_mapping."""


def billion_laughs() -> str:
    """The classic alias bomb: nine levels of nine aliases, 9**9 strings once expanded (342 bytes)."""
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    return "\n".join(levels) + "\n"


def read_hostile(tmp_path: Path, content: str | bytes) -> dict[str, object]:
    path = tmp_path / "hostile.yaml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return read_yaml_mapping(path, HostileError, "test file", label="hostile.yaml")


def test_an_alias_bomb_is_refused_while_composing(tmp_path: Path) -> None:
    """The bomb is refused after a few hundred real nodes: memory stays far below what it asks for."""
    tracemalloc.start()
    try:
        with pytest.raises(HostileError, match=r"hostile\.yaml: not valid YAML: line \d+, column \d+: more than"):
            read_hostile(tmp_path, billion_laughs())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20


def test_the_bomb_is_refused_by_the_loader_itself() -> None:
    with pytest.raises(yaml.composer.ComposerError, match=f"more than {MAX_YAML_NODES} nodes"):
        yaml.load(billion_laughs(), Loader=BoundedLoader)  # noqa: S506 - the bounded safe loader


def test_aliases_are_capped_in_number(tmp_path: Path) -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (MAX_YAML_ALIASES + 1)) + "]\n"
    with pytest.raises(HostileError, match=f"more than {MAX_YAML_ALIASES} aliases"):
        read_hostile(tmp_path, text)


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HostileError, match="refers to a node that contains it"):
        read_hostile(tmp_path, "a: &a [1, *a]\n")


def test_a_few_aliases_still_load(tmp_path: Path) -> None:
    data = read_hostile(
        tmp_path, "curve: &c {kind: HEAD, points: [[0, 1], [2, 3]]}\nother: *c\nmerged: {<<: *c, x: 1}\n"
    )
    assert data["other"] == data["curve"] == {"kind": "HEAD", "points": [[0, 1], [2, 3]]}
    assert data["merged"] == {"kind": "HEAD", "points": [[0, 1], [2, 3]], "x": 1}


@pytest.mark.parametrize(
    "text",
    ["a: " + "[" * 100_000 + "]" * 100_000 + "\n", "a: " + "{b: " * 10_000 + "1" + "}" * 10_000 + "\n"],
    ids=["deep-lists", "deep-mappings"],
)
def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(HostileError, match=f"nesting deeper than {MAX_YAML_DEPTH} levels"):
        read_hostile(tmp_path, text)


def test_nesting_up_to_the_limit_loads(tmp_path: Path) -> None:
    data = read_hostile(tmp_path, "a: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1) + "\n")
    assert isinstance(data["a"], list)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_YAML_BYTES + 1)  # sparse: nothing is written, nothing may be read
    with pytest.raises(HostileError, match=rf"big\.yaml: {MAX_YAML_BYTES + 1} bytes is more than"):
        read_yaml_mapping(path, HostileError)


def test_too_many_nodes_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hydraulic_io, "MAX_YAML_NODES", 1000)
    assert len(read_hostile(tmp_path, "a: [" + "1," * 997 + "]\n")["a"]) == 997  # type: ignore[arg-type]
    with pytest.raises(HostileError, match="more than 1000 nodes"):
        read_hostile(tmp_path, "a: [" + "1," * 998 + "]\n")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("a: café\n".encode("latin-1"), r"not UTF-8 text \(byte 0xe9 at position 6\); save it as UTF-8"),
        ("a: 1\n".encode("utf-16"), r"not UTF-8 text \(byte 0xff at position 0\)"),
        (bytes(range(256)) * 4, r"not UTF-8 text"),
        (b"a: 1\n\x00\x01\x02", r"not valid YAML: character U\+0000 at position 5"),
        ("a:\n\tb: 1\n", r"not valid YAML: line 2, column 1: while scanning for the next token, found character '\\t'"),
        ("a: 2024-13-45\n", r"not valid YAML: month must be in 1\.\.12"),
        ("a: " + "9" * 5000 + "\n", r"not valid YAML: Exceeds the limit"),
        (
            "a: 1\n---\nb: 2\n",
            r"not valid YAML: line 2, column 1: expected a single document in the stream, but found another document",
        ),
        ("a: !!python/object:os.system {}\n", r"not valid YAML: .*could not determine a constructor"),
    ],
    ids=["latin-1", "utf-16", "binary", "nul", "tab", "bad-date", "huge-int", "two-documents", "python-tag"],
)
def test_bad_bytes_and_bad_yaml_are_the_callers_error(tmp_path: Path, content: str | bytes, match: str) -> None:
    with pytest.raises(HostileError, match=f"^hostile\\.yaml: {match}") as info:
        read_hostile(tmp_path, content)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    assert read_hostile(tmp_path, "\ufeffname: café\n".encode()) == {"name": "café"}


def test_yaml_problems_quote_input_bounded_and_printable(tmp_path: Path) -> None:
    with pytest.raises(HostileError) as info:
        read_hostile(tmp_path, "a: *" + "x" * 1_000_000 + "\n")
    assert len(str(info.value)) < 300
    with pytest.raises(HostileError) as info:
        read_hostile(tmp_path, "a: [1\n\u202eb: 2\n")
    assert "\u202e" not in str(info.value)


def test_the_shipped_yaml_files_still_load() -> None:
    reference = read_yaml_mapping(reference_pipeline_path().with_suffix(".yaml"), HostileError)
    assert "maop_mpa" in reference
    for path in sorted((reference_pipeline_path().parent.parent.parent / "plant" / "scenarios").glob("*.yaml")):
        assert "name" in read_yaml_mapping(path, HostileError), path


LONG = "x" * 100_000


@pytest.mark.parametrize(
    "text",
    [
        "maop_mpa:\n  SUC1: " + LONG + "\n",
        "maop_mpa:\n  " + LONG + ": 1\n",
        "pumps:\n  " + LONG + ": {}\n",
        "pumps:\n  PS1-P1: {" + LONG + ": 1}\n",
        "fluid: {name: " + LONG + ", density_kg_m3: -1}\n",
        "fluid: {" + LONG + ": 1}\n",
        "curves:\n  C9: {points: [[1, " + LONG + "]]}\n",
        'maop_mpa:\n  SUC1: "\\e[2J"\n',
        "maop_mpa: [1, 2]\n",
        "curves:\n  C9: {points: [1, 2]}\n",
        "pumps:\n  PS1-P1: {min_speed: [1]}\n",
    ],
    ids=[
        "huge-value",
        "huge-pipe",
        "huge-pump",
        "huge-pump-field",
        "huge-fluid-name",
        "huge-fluid-field",
        "huge-point",
        "escape",
        "maop-list",
        "flat-points",
        "speed-list",
    ],
)
def test_sidecar_messages_are_short_and_printable(tmp_path: Path, text: str) -> None:
    with pytest.raises(NetworkError) as err:
        load_network(with_sidecar(tmp_path, text))
    message = str(err.value)
    assert message.startswith("line.yaml"), message[:300]
    assert len(message) < 400 and "\x1b" not in message
