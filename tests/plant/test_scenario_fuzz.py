"""Fuzzing the scenario readers: a mutated scenario file raises a `PumptwinError` or reads, nothing else.

The shipped plant scenarios (`plant/scenarios/*.yaml`, read by `plant.scenario.read_scenario`)
and what-if scenario files (`twin/whatif_scenarios/*.yaml`, read by
`twin.whatif.parsing.read_scenarios`) are mutated two ways: as text (lines dropped, duplicated,
swapped or re-indented; random and non-UTF-8 bytes; anchors and aliases; truncation) and as data
(values replaced by other types, nan, inf, huge numbers, odd strings; keys removed or added).
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pumptwin.plant.scenario import read_scenario, scenarios_dir
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.io import reference_pipeline_path
from pumptwin.twin.whatif.parsing import read_scenarios

PLANT_FILES = sorted(scenarios_dir().glob("*.yaml"))
WHATIF_FILES = sorted((reference_pipeline_path().parent.parent / "whatif_scenarios").glob("*.yaml"))

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    10**30,
    -(10**30),
    math.nan,
    math.inf,
    -math.inf,
    1e-320,
    "",
    "nan",
    "inf",
    "-5%",
    "1e999 m3/h",
    "90 km",
    "abc",
    "../../etc/passwd",
    "\x1b[31m",
    "\u00e9\u00e8",
    "2099-01-01T00:00:00Z",
    "2026-11-01 00:00:00",
    "0s",
    "-1d",
    "99999999d",
    [],
    [1, 2],
    {},
    {"a": 1},
    [[[]]],
]
TEXT_SNIPPETS = [
    b"&a [1, 2, 3]",
    b"*a",
    b"!!python/object:os.system ['true']",
    b"!!binary AAAA",
    b"? complex key",
    b"- - - -",
    b"{",
    b"]",
    b"'unterminated",
    b'"\\xff\\u0000"',
    b"\t",
    b"%YAML 1.2",
    b"---",
    b"...",
    b"\xff\xfe\x00",
    b"\x80\x81\x82",
    b"key: &b [*b]",
]
ALIAS_CHAIN = b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode() for i in range(4)
)


def _texts(files: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in files]


@st.composite
def text_mutated(draw: st.DrawFn, sources: list[bytes]) -> bytes:
    """Draw a scenario file mutated as text."""
    lines = draw(st.sampled_from(sources)).split(b"\n")
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["drop", "dup", "swap", "indent", "bytes", "snippet", "truncate", "aliases"]))
        if not lines:
            lines = [b""]
        i = draw(st.integers(0, len(lines) - 1))
        if kind == "drop":
            del lines[i]
        elif kind == "dup":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "indent":
            lines[i] = b" " * draw(st.integers(1, 5)) + lines[i].lstrip()
        elif kind == "bytes":
            lines.insert(i, draw(st.binary(min_size=1, max_size=30)))
        elif kind == "snippet":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.sampled_from(TEXT_SNIPPETS)) + lines[i][at:]
        elif kind == "truncate":
            lines = lines[: i + 1]
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        else:
            lines = [*ALIAS_CHAIN.rstrip(b"\n").split(b"\n"), *lines]
    return b"\n".join(lines)


def _mutate(node: Any, draw: st.DrawFn, depth: int = 0) -> Any:  # noqa: ANN401 - any YAML value
    """Return `node` with some leaves replaced, keys removed or unknown keys added."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(ODD_VALUES))
    if isinstance(node, dict) and depth < 6:
        out = {}
        for key, value in node.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # key removed
            out[key] = _mutate(value, draw, depth + 1) if choice < 5 else value
        if draw(st.integers(0, 7)) == 0:
            out[draw(st.sampled_from(["unknown", "x", "name", "version", "scenarios", "faults"]))] = draw(
                st.sampled_from(ODD_VALUES)
            )
        return out
    if isinstance(node, list) and depth < 6:
        items = [_mutate(item, draw, depth + 1) for item in node]
        if items and draw(st.integers(0, 5)) == 0:
            items.append(items[0])
        return items
    return node


@st.composite
def data_mutated(draw: st.DrawFn, sources: list[bytes]) -> bytes:
    """Draw a scenario file whose parsed data was mutated and written back as YAML."""
    data = yaml.safe_load(draw(st.sampled_from(sources)))
    return yaml.safe_dump(_mutate(data, draw), allow_unicode=True, sort_keys=False).encode("utf-8")


def _read(data: bytes, reader: Callable[[Path], object]) -> None:
    """Write `data` to a temporary scenario file and read it; only project errors may escape."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_bytes(data)
        with contextlib.suppress(PumptwinError):
            reader(path)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_infinite_seed_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("name: x\nstart: 2024-03-01T00:00:00Z\nduration: 1d\nseed: .inf\n")
    with pytest.raises(PumptwinError):
        read_scenario(path)


def test_shipped_files_are_found_and_valid() -> None:
    assert PLANT_FILES and WHATIF_FILES
    for path in PLANT_FILES:
        read_scenario(path)
    for path in WHATIF_FILES:
        read_scenarios(path)


@FUZZ
@given(data=text_mutated(_texts(PLANT_FILES)))
def test_text_mutated_plant_scenario_raises_only_pumptwin_errors(data: bytes) -> None:
    _read(data, read_scenario)


@FUZZ
@given(data=data_mutated(_texts(PLANT_FILES)))
def test_data_mutated_plant_scenario_raises_only_pumptwin_errors(data: bytes) -> None:
    _read(data, read_scenario)


@FUZZ
@given(data=text_mutated(_texts(WHATIF_FILES)))
def test_text_mutated_whatif_scenarios_raise_only_pumptwin_errors(data: bytes) -> None:
    _read(data, read_scenarios)


@FUZZ
@given(data=data_mutated(_texts(WHATIF_FILES)))
def test_data_mutated_whatif_scenarios_raise_only_pumptwin_errors(data: bytes) -> None:
    _read(data, read_scenarios)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_random_bytes_raise_only_pumptwin_errors(data: bytes) -> None:
    _read(data, read_scenario)
    _read(data, read_scenarios)
