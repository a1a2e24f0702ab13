"""Fuzzing the EPANET reader: a mutated .inp file raises a `PumptwinError` or loads, nothing else.

A small valid network is mutated line by line (lines dropped, duplicated, swapped, truncated;
random bytes, non-UTF-8 bytes, unknown sections; numbers replaced by nan, inf, huge or negative
values; ids removed) and read by `load_network`, the reader ``pumptwin solve`` uses, then compiled
for the solver. Through the command line, every mutated file ends with exit code 0, 1 or 2 and
never prints a traceback.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pumptwin.flows.cli import app
from pumptwin.twin.errors import PumptwinError
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.hydraulic.solver import compile_network

SMALL_NET = """\
[TITLE]
Small fuzz network: a source, one pump, three junctions, a tank

[JUNCTIONS]
;ID\tElev\tDemand\tPattern
J1\t10\t0
J2\t12\t5\tPAT1
J3\t8\t3

[RESERVOIRS]
;ID\tHead
SRC\t20

[TANKS]
;ID\tElev\tInit\tMin\tMax\tDiam\tMinVol
T1\t30\t4\t1\t8\t15\t0

[PIPES]
;ID\tNode1\tNode2\tLength\tDiameter\tRoughness\tMinorLoss\tStatus
P1\tSRC\tJ1\t100\t300\t0.045\t0\tOpen
P2\tJ2\tJ3\t800\t250\t0.045\t0\tOpen
P3\tJ3\tT1\t500\t250\t0.045\t0\tOpen

[PUMPS]
;ID\tNode1\tNode2\tParameters
PU1\tJ1\tJ2\tHEAD C1

[CURVES]
;ID\tFlow\tHead
C1\t0\t60
C1\t20\t50
C1\t40\t30

[PATTERNS]
PAT1\t1.0\t1.2\t0.8

[OPTIONS]
 Units LPS
 Headloss D-W
 Specific Gravity 0.85
 Viscosity 9.79
 Trials 100
 Accuracy 0.000001

[TIMES]
 Duration 2:00
 Hydraulic Timestep 1:00
 Pattern Timestep 1:00
 Report Timestep 1:00

[END]
"""

TOKENS = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "1e999",
    "-1",
    "-1e9",
    "0",
    "-0",
    "999999999999999999999999",
    "",
    "abc",
    "1,5",
    "0x10",
    "J9",
    "[JUNCTIONS]",
    ";",
    "\u00e9",
    "\x00",
]
SECTIONS = ["[BOGUS]", "[junctions]", "[PIPES", "[]", "[END]", "[TANKS]", "[CONTROLS]", "[RULES]"]

_LINES = SMALL_NET.encode().split(b"\n")


@st.composite
def mutated_inp(draw: st.DrawFn) -> bytes:
    """Draw a mutated copy of `SMALL_NET` as bytes (possibly not UTF-8)."""
    lines = list(_LINES)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["drop", "dup", "swap", "bytes", "token", "section", "truncate_line", "drop_id"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if not lines:
            lines = [b""]
        if kind == "drop":
            del lines[i]
        elif kind == "dup":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "bytes":
            lines.insert(i, draw(st.binary(min_size=1, max_size=40)))
        elif kind == "token":
            fields = lines[i].split(b"\t") if b"\t" in lines[i] else lines[i].split(b" ")
            k = draw(st.integers(0, max(len(fields) - 1, 0)))
            fields[k] = draw(st.sampled_from(TOKENS)).encode("utf-8")
            lines[i] = b"\t".join(fields)
        elif kind == "section":
            lines.insert(i, draw(st.sampled_from(SECTIONS)).encode())
        elif kind == "truncate_line":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        else:  # drop the id (first field) of a line
            lines[i] = b"\t".join(lines[i].split(b"\t")[1:])
    text = b"\n".join(lines)
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.sampled_from([b"\xff\xfe", b"\xef\xbb\xbf", b"\x80\x81"])) + text
    return text


def _load(data: bytes) -> None:
    """Write `data` to a temporary .inp file, load it and compile it for the solver."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.inp"
        path.write_bytes(data)
        compile_network(load_network(path))


def test_small_net_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "small.inp"
    path.write_text(SMALL_NET)
    network = load_network(path)
    compile_network(network)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_inp())
def test_mutated_inp_raises_only_pumptwin_errors(data: bytes) -> None:
    with contextlib.suppress(PumptwinError):
        _load(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=400))
def test_random_bytes_raise_only_pumptwin_errors(data: bytes) -> None:
    with contextlib.suppress(PumptwinError):
        _load(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_inp())
def test_solve_command_exits_cleanly_on_mutated_inp(data: bytes) -> None:
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.inp"
        path.write_bytes(data)
        result = runner.invoke(app, ["solve", str(path)])
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code in {0, 1, 2}, (result.exit_code, output, result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"solve raised {result.exception!r}") from result.exception
    assert "Traceback" not in output
    if result.exit_code == 2:
        assert "error:" in output


@pytest.mark.parametrize(
    ("duration_h", "codes"),
    [
        ("nan", {2}),
        ("inf", {2}),
        ("-inf", {2}),
        ("-1", {2}),
        ("1e9", {2}),
        ("1e300", {2}),
        ("0", {0, 1}),
        ("2", {0, 1}),
    ],
)
def test_solve_command_checks_the_duration(tmp_path: Path, duration_h: str, codes: set[int]) -> None:
    path = tmp_path / "small.inp"
    path.write_text(SMALL_NET)
    result = CliRunner().invoke(app, ["solve", str(path), "--duration-h", duration_h])
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code in codes, output
    assert "Traceback" not in output
