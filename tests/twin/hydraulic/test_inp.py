"""EPANET .inp import/export: conversions checked against wntr's own parser, round trips and bad input."""

from __future__ import annotations

import functools
import math
import re
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
import wntr

from pumptwin.twin.hydraulic.inp import FLOW_UNITS_M3S, format_inp, parse_inp, read_inp, write_inp
from pumptwin.twin.hydraulic.network import Curve, Junction, LinkStatus, Network, NetworkError, Tank, ValveType
from pumptwin.twin.units import WATER_VISCOSITY_M2_S

LIBRARY = Path(wntr.__file__).parent / "library" / "networks"
EXAMPLES = ["Net1.inp", "Net2.inp", "Net3.inp", "ky10.inp", "ky4.inp", "Net6.inp"]
REL = 1e-9
FT, GPM, PSI_M = 0.3048, 0.003785411784 / 60.0, 0.3048 / 0.4333

# A small SI network that uses every section the reader supports. Times use only formats wntr reads
# the way EPANET does, so the whole file can be cross-checked against wntr.
SI_NET = """\
[TITLE]
synthetic SI network
second title line is ignored

[JUNCTIONS]
;ID  Elev  Demand  Pattern
 J1  10    1.5     PD      ; trailing comment
 J2  12    2
 J3  11    0
 J4  9     3
[RESERVOIRS]
 R1  50  PH
[TANKS]
 T1  30  2    1    5  8   3  VC
 T2  31  2.5  0.5  6  10
[PIPES]
 P1  R1  J1  100  200  0.1  0.5  Open
 P2  J1  J2  150  150  0.2  0    CV
 P3  J2  T1  120  150  0.1
 P4  J2  J3  80   100  0.1  0    Closed
 P5  J3  J4  90   100  0.1
 P6  J4  T2  95   100  0.1
[PUMPS]
 PU1  J3  J4  HEAD C1  SPEED 0.9  PATTERN PS
 PU2  J1  J3  POWER 15
[VALVES]
 V1  J1  J4  100  PRV  20   0.2
 V2  J2  J4  80   FCV  5
 V3  J3  J2  90   TCV  3.5
 V4  J4  J1  75   GPV  C3
[DEMANDS]
 J2  4  PD  ; replaces the [JUNCTIONS] demand
 J2  1      ; adds a second category
 J3  0.5
[EMITTERS]
 J4  0.8
[STATUS]
 PU2  Closed
 V3   Open
 V1   25
[PATTERNS]
 PD  1  1.2  0.8
 PH  1  1.05
 PS  1  0.95
[CURVES]
;PUMP: head curve
 C1  0   60
 C1  10  50
 C1  20  30
;EFFICIENCY: in percent
 C2  5   50
 C2  15  75
 VC  0   0
 VC  5   300
;HEADLOSS:
 C3  0   0
 C3  10  2
[CONTROLS]
 LINK PU1 CLOSED IF NODE T1 ABOVE 4.5
 link PU1 open if node J3 below 20
 LINK V1 30 AT TIME 2:30
 LINK P4 OPEN AT CLOCKTIME 6:15 PM
[RULES]
 RULE 1
 IF TANK T1 LEVEL ABOVE 5
 THEN PUMP PU1 STATUS IS CLOSED
[ENERGY]
 Global Efficiency 75
 Pump PU1 Efficiency C2
[OPTIONS]
 Units CMH
 Headloss D-W
 Specific Gravity 1.0
 Viscosity 1.1
 Trials 60
 Accuracy 0.0005
 Unbalanced Continue 5
 Pattern PD
 Demand Multiplier 1.1
 Emitter Exponent 0.5
 CHECKFREQ 3
 MAXCHECK 12
 DAMPLIMIT 0.1
 Quality None
[TIMES]
 Duration 48:00
 Hydraulic Timestep 0:30
 Pattern Timestep 2
 Pattern Start 1:00
 Report Timestep 1:00
 Report Start 0
 Start ClockTime 6:30 AM
[COORDINATES]
 J1  1  2
[END]
this text after [END] is ignored
"""

# Small network in US units (CFS, feet, inches, psi, D-W millifeet) for unit checks against wntr.
US_NET = """\
[JUNCTIONS]
 J1  100  0.5
 J2  90   0.25
[RESERVOIRS]
 R1  300
[PIPES]
 P1  R1  J1  1000  12  0.5
[VALVES]
 V1  J1  J2  8  PRV  40
[EMITTERS]
 J2  0.3
[CONTROLS]
 LINK V1 50 IF NODE J1 BELOW 30
[OPTIONS]
 UNITS CFS
 HEADLOSS D-W
"""


@functools.cache
def ours(name: str) -> Network:
    """Our model of a wntr library network."""
    return read_inp(LIBRARY / name)


@functools.cache
def theirs(name: str) -> Any:
    """wntr's model of a wntr library network (SI)."""
    return wntr.network.WaterNetworkModel(str(LIBRARY / name))


WNTR_REL = 2e-5


def close(a: float, b: float) -> bool:
    """Equal to wntr's value within 2e-5 relative (or 1e-12 absolute near zero).

    wntr converts flow units exactly; the reader uses EPANET 2.2's own factors
    (e.g. 28.317 LPS per cfs), which differ by up to 1e-5.
    """
    return math.isclose(a, b, rel_tol=WNTR_REL, abs_tol=1e-12)


def assert_same(a: object, b: object, where: str = "network") -> None:
    """Recursive equality of two models, floats to 1e-9 relative (fields outside comparisons left out)."""
    if is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), where
        for f in fields(a):
            if not f.compare:
                continue
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert isinstance(b, float) and close(a, b), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def wntr_status(link: Any) -> LinkStatus:
    """wntr's initial status as ours."""
    return LinkStatus(str(link.initial_status).upper())


def check_against_wntr(net: Network, wn: Any) -> None:  # noqa: PLR0915 - one long checklist
    """Every converted value wntr also reads must agree with it."""
    counts = (wn.num_junctions, wn.num_tanks, wn.num_reservoirs, wn.num_pipes, wn.num_pumps, wn.num_valves)
    assert (len(net.junctions), len(net.tanks), len(net.reservoirs)) == counts[:3]
    assert (len(net.pipes), len(net.pumps), len(net.valves)) == counts[3:]
    assert len(net.controls) == sum(type(c).__name__ == "Control" for _, c in wn.controls())  # [RULES] are skipped
    assert {c.id for c in net.curves} == set(wn.curve_name_list)
    for j in net.junctions:
        w = wn.get_node(j.id)
        assert close(j.elevation_m, w.elevation)
        assert close(j.base_demand_m3s, sum(d.base_value for d in w.demand_timeseries_list))
        assert close(j.emitter_coeff, w.emitter_coefficient or 0.0)
    for r in net.reservoirs:
        assert close(r.head_m, wn.get_node(r.id).base_head)
    for t in net.tanks:
        w = wn.get_node(t.id)
        ours_t = (t.elevation_m, t.init_level_m, t.min_level_m, t.max_level_m, t.diameter_m, t.min_volume_m3)
        theirs_t = (w.elevation, w.init_level, w.min_level, w.max_level, w.diameter, w.min_vol)
        assert all(close(a, b) for a, b in zip(ours_t, theirs_t, strict=True)), t.id
        assert t.volume_curve == w.vol_curve_name
    for p in net.pipes:
        w = wn.get_link(p.id)
        assert close(p.length_m, w.length) and close(p.diameter_m, w.diameter), p.id
        assert close(p.roughness, w.roughness) and close(p.minor_loss, w.minor_loss), p.id
        assert (p.check_valve, p.status) == (w.check_valve, wntr_status(w)), p.id
    for m in net.pumps:
        w = wn.get_link(m.id)
        assert close(m.speed, w.base_speed) and m.status == wntr_status(w), m.id
        if m.head_curve is None:
            assert m.power_w is not None and close(m.power_w, w.power)
        else:
            head = net.curve(m.head_curve)
            assert head.kind == "HEAD" and m.head_curve == w.pump_curve_name
            assert all(close(a, b) for p, q in zip(head.points, w.get_pump_curve().points, strict=True)
                       for a, b in zip(p, q, strict=True))  # fmt: skip
    for v in net.valves:
        w = wn.get_link(v.id)
        assert v.valve_type.value == w.valve_type and close(v.diameter_m, w.diameter), v.id
        assert close(v.minor_loss, w.minor_loss) and v.status == wntr_status(w), v.id
        if v.valve_type != ValveType.GPV:
            assert close(v.setting, w.initial_setting), v.id
    t, h, o = wn.options.time, wn.options.hydraulic, net.options
    assert (o.duration_s, o.hydraulic_step_s, o.pattern_step_s) == (
        t.duration,
        t.hydraulic_timestep,
        t.pattern_timestep,
    )
    assert (o.pattern_start_s, o.report_step_s, o.report_start_s) == (
        t.pattern_start,
        t.report_timestep,
        t.report_start,
    )
    assert o.start_clocktime_s == t.start_clocktime
    assert (o.trials, o.accuracy, o.check_frequency, o.max_check) == (h.trials, h.accuracy, h.checkfreq, h.maxcheck)
    assert (o.headloss, o.default_pattern, o.damp_limit) == (h.headloss, h.pattern or "1", h.damplimit)
    assert (o.demand_multiplier, o.emitter_exponent, o.specific_gravity) == (
        h.demand_multiplier, h.emitter_exponent, h.specific_gravity)  # fmt: skip
    assert close(o.viscosity_m2_s, h.viscosity * WATER_VISCOSITY_M2_S)
    assert o.unbalanced_continue == (None if h.unbalanced == "STOP" else h.unbalanced_value)
    for pattern in net.patterns:
        assert list(pattern.multipliers) == list(wn.get_pattern(pattern.id).multipliers)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_networks_match_wntr(name: str) -> None:
    check_against_wntr(ours(name), theirs(name))


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("Net1.inp", (9, 1, 1, 12, 1, 0, 2)),
        ("Net2.inp", (35, 1, 0, 40, 0, 0, 0)),
        ("Net3.inp", (92, 3, 2, 117, 2, 0, 18)),
        ("ky10.inp", (920, 13, 2, 1043, 13, 5, 6)),
    ],
)
def test_example_counts(name: str, counts: tuple[int, ...]) -> None:
    net = ours(name)
    elements = (net.junctions, net.tanks, net.reservoirs, net.pipes, net.pumps, net.valves, net.controls)
    assert tuple(map(len, elements)) == counts


def test_net1_values_in_si() -> None:
    """Net1 by hand: GPM, feet, inches and the pump curve converted exactly."""
    net = ours("Net1.inp")
    assert net.name == "EPANET Example Network 1"
    pipe = net.link("10")
    assert close(pipe.length_m, 10530 * FT) and close(pipe.diameter_m, 18 * 0.0254)
    junction = net.node("11")
    assert isinstance(junction, Junction) and close(junction.base_demand_m3s, 150 * GPM)
    assert junction.demands[0].pattern is None and net.options.default_pattern == "1"
    tank = net.node("2")
    assert isinstance(tank, Tank) and close(tank.diameter_m, 50.5 * FT) and close(tank.init_level_m, 120 * FT)
    curve = net.curve("1")
    assert curve.kind == "HEAD" and close(curve.x[0], 1500 * GPM) and close(curve.y[0], 250 * FT)
    below, above = net.controls
    assert (below.link, below.node, below.status) == ("9", "2", LinkStatus.OPEN) and close(below.below or 0, 110 * FT)
    assert above.status == LinkStatus.CLOSED and close(above.above or 0, 140 * FT)
    assert net.options.pattern_step_s == 7200 and net.options.duration_s == 86400


def test_net3_time_controls_and_status() -> None:
    net = ours("Net3.inp")
    timed = [c for c in net.controls if c.time_s is not None]
    assert len(timed) == 14 and timed[0].time_s == 3600 and timed[-1].time_s == 159 * 3600
    assert net.link("10").status == LinkStatus.CLOSED
    tank = net.node("1")
    assert isinstance(tank, Tank) and close(tank.elevation_m, 131.9 * FT) and close(tank.diameter_m, 85 * FT)


def test_ky10_power_pumps_and_prvs() -> None:
    net = ours("ky10.inp")
    assert close(net.pumps[0].power_w or 0, 5 * 745.699872)
    prv = net.valves[0]
    assert prv.valve_type == ValveType.PRV and close(prv.setting, 39.99 * PSI_M)


@pytest.mark.parametrize("name", EXAMPLES)
def test_round_trip(name: str, tmp_path: Path) -> None:
    net = ours(name)
    write_inp(net, tmp_path / "copy.inp")
    assert_same(net, read_inp(tmp_path / "copy.inp"))


@pytest.mark.filterwarnings("ignore:Changing the headloss formula")
def test_synthetic_si_network_matches_wntr(tmp_path: Path) -> None:
    (tmp_path / "si.inp").write_text(SI_NET)
    net = read_inp(tmp_path / "si.inp")
    check_against_wntr(net, wntr.network.WaterNetworkModel(str(tmp_path / "si.inp")))
    cmh = FLOW_UNITS_M3S["CMH"]  # EPANET: 101.94 CMH per cfs
    j2, j3 = net.node("J2"), net.node("J3")
    assert isinstance(j2, Junction) and isinstance(j3, Junction)
    assert [d.pattern for d in j2.demands] == ["PD", None]
    assert [d.base_m3s for d in j2.demands] == pytest.approx([4 * cmh, 1 * cmh])
    assert j3.demands[0].base_m3s == pytest.approx(0.5 * cmh)
    assert net.curve("C2") == Curve("C2", ((5 * cmh, 0.5), (15 * cmh, 0.75)), "EFFICIENCY")
    assert (net.curve("VC").kind, net.curve("C3").kind, net.curve("C1").kind) == ("VOLUME", "HEADLOSS", "HEAD")
    pu1, pu2 = net.pumps
    assert (pu1.efficiency_curve, pu1.speed_pattern, pu1.speed) == ("C2", "PS", 0.9)
    assert pu2.power_w == 15_000 and pu2.status == LinkStatus.CLOSED
    v1, v2, v3, v4 = net.valves
    assert (v1.setting, v1.status, v3.status, v4.curve) == (25.0, LinkStatus.ACTIVE, LinkStatus.OPEN, "C3")
    assert v2.setting == pytest.approx(5 * cmh)
    assert net.pipes[0].roughness == pytest.approx(0.1e-3) and net.pipes[1].check_valve
    assert net.controls[2].setting == 30 and net.controls[2].time_s == 9000
    assert net.controls[3].clocktime_s == 18 * 3600 + 15 * 60
    assert net.options.duration_s == 48 * 3600 and net.options.start_clocktime_s == 6.5 * 3600
    assert net.name == "synthetic SI network"
    assert_same(net, parse_inp(format_inp(net)))


@pytest.mark.filterwarnings("ignore:Changing the headloss formula")
def test_us_units_match_wntr(tmp_path: Path) -> None:
    (tmp_path / "us.inp").write_text(US_NET)
    net = read_inp(tmp_path / "us.inp")
    check_against_wntr(net, wntr.network.WaterNetworkModel(str(tmp_path / "us.inp")))
    assert net.name == "us"
    assert net.pipes[0].roughness == pytest.approx(0.5e-3 * FT, rel=REL)
    assert net.valves[0].setting == pytest.approx(40 * PSI_M, rel=REL)
    assert net.controls[0].below == pytest.approx(30 * PSI_M, rel=REL)
    assert net.controls[0].setting == pytest.approx(50 * PSI_M, rel=REL)
    j2 = net.node("J2")
    assert isinstance(j2, Junction) and j2.emitter_coeff == pytest.approx(0.3 * FT**3 / PSI_M**0.5, rel=REL)
    assert_same(net, parse_inp(format_inp(net)))


def test_specific_gravity_and_emitter_exponent_scale_pressures() -> None:
    text = US_NET.replace("HEADLOSS D-W", "HEADLOSS D-W\n SPECIFIC GRAVITY 0.8\n EMITTER EXPONENT 0.6")
    net = parse_inp(text)
    assert net.valves[0].setting == pytest.approx(40 * PSI_M / 0.8, rel=REL)
    j2 = net.node("J2")
    assert isinstance(j2, Junction) and j2.emitter_coeff == pytest.approx(0.3 * FT**3 / (PSI_M / 0.8) ** 0.6, rel=REL)
    assert_same(net, parse_inp(format_inp(net)))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1:30", 5400), ("1:30:15", 5415), ("0.5", 1800), ("90 MIN", 5400), ("30 SEC", 30), ("2 DAYS", 172800),
     ("3 hours", 10800), ("12 AM", 0), ("12 PM", 43200), ("1:30 PM", 48600), ("11 am", 39600)],
)  # fmt: skip
def test_time_formats(value: str, seconds: float) -> None:
    net = parse_inp(f"{US_NET}\n[TIMES]\n START CLOCKTIME {value}\n DURATION {value}\n")
    assert net.options.start_clocktime_s == seconds and net.options.duration_s == seconds


def test_curve_kind_from_use_when_no_hint() -> None:
    text = (
        SI_NET.replace(";PUMP: head curve\n", "").replace(";EFFICIENCY: in percent\n", "").replace(";HEADLOSS:\n", "")
    )
    net = parse_inp(text.replace("[END]", "[CURVES]\n UNUSED 1 2\n[END]"))
    kinds = {c.id: c.kind for c in net.curves}
    assert kinds == {"C1": "HEAD", "C2": "EFFICIENCY", "VC": "VOLUME", "C3": "HEADLOSS", "UNUSED": "GENERIC"}
    assert net.curve("UNUSED").points == ((1.0, 2.0),)


BAD = [
    ("[PUMPS]\n PX J1 J2 HEAD C9", "[PUMPS] pump 'PX': curve 'C9' does not exist"),
    ("[PIPES]\n PX J1 J9 100 100 100", "[PIPES] pipe 'PX': node 'J9' does not exist"),
    ("[PIPES]\n PX J1 J2 100 -2 100", "[PIPES] pipe 'PX': diameter must be > 0 m, got -0.002"),
    ("[PIPES]\n PX J1 J2 1OO 100 100", "[PIPES] pipe 'PX': malformed number '1OO' for length"),
    ("[PIPES]\n PX J1 J2 100", "[PIPES] pipe 'PX': missing diameter"),
    ("[PIPES]\n PX J1 J2 100 100 100 0 SHUT", "[PIPES] pipe 'PX': status must be one of OPEN, CLOSED, CV"),
    ("[PIPES]\n P1 J1 J2 100 100 100", "[PIPES] pipe 'P1': link id is used twice"),
    ("[JUNCTIONS]\n JX 1 2 NOPAT", "[JUNCTIONS] junction 'JX': pattern 'NOPAT' does not exist"),
    ("[JUNCTIONS]\n JX nan", "[JUNCTIONS] junction 'JX': elevation is not a finite number"),
    ("[TANKS]\n TX 1 5 1 4 10", "[TANKS] tank 'TX': needs min level <= initial level <= max level"),
    ("[VALVES]\n VX J1 J2 100 XYZ 1", "[VALVES] valve 'VX': valve type must be one of PRV"),
    ("[VALVES]\n VX J1 J2 100 GPV NOCURVE", "[VALVES] valve 'VX': curve 'NOCURVE' does not exist"),
    ("[DEMANDS]\n JX 1", "[DEMANDS] junction 'JX': junction does not exist"),
    ("[EMITTERS]\n J1 -1", "[EMITTERS] junction 'J1': emitter coefficient must be >= 0"),
    ("[STATUS]\n P1 0.5", "[STATUS] link 'P1': a pipe takes OPEN or CLOSED"),
    ("[STATUS]\n PX OPEN", "[STATUS] link 'PX': link 'PX' does not exist"),
    ("[CONTROLS]\n LINK P1 OPEN IF NODE JX ABOVE 3", "[CONTROLS] control on link 'P1': node 'JX' does not exist"),
    ("[CONTROLS]\n LINK PX OPEN AT TIME 3", "[CONTROLS] control on link 'PX': needs LINK <existing link id>"),
    ("[CONTROLS]\n LINK P1 OPEN AT TIME 3 FORTNIGHTS", "[CONTROLS] control on link 'P1': unknown time unit"),
    ("[CONTROLS]\n LINK P1 OPEN WHEN NODE J1 ABOVE 3", "[CONTROLS] control on link 'P1': expected IF NODE"),
    ("[CURVES]\n CX 2 1\n CX 1 2", "[CURVES] curve 'CX': x values must increase"),
    ("[PATTERNS]\n PX 1 two", "[PATTERNS] pattern 'PX': malformed number 'two' for multiplier"),
    ("[OPTIONS]\n UNITS FURLONGS", "[OPTIONS] option 'UNITS': flow units must be one of CFS"),
    ("[OPTIONS]\n TRIALS many", "[OPTIONS] option 'TRIALS': malformed value 'many'"),
    ("[OPTIONS]\n HEADLOSS X-Y", "[OPTIONS] options: unknown head-loss formula 'X-Y'"),
    ("[TIMES]\n HYDRAULIC TIMESTEP 0", "[TIMES] options: time steps must be > 0"),
    ("[TIMES]\n DURATION 1:xx", "[TIMES] option 'DURATION': malformed time '1:xx'"),
    ("[ENERGY]\n PUMP PX EFFIC C1", "[ENERGY] pump 'PX': pump does not exist"),
    ("[FOO]", "unknown section '[FOO]'"),
]
BASE = """\
[JUNCTIONS]
 J1 10 1
 J2 12 2
[RESERVOIRS]
 R1 50
[PIPES]
 P1 R1 J1 100 200 100
 P2 J1 J2 100 150 100
[OPTIONS]
 UNITS LPS
"""


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_input_names_file_line_section_and_element(extra: str, message: str) -> None:
    text = BASE + extra + "\n"
    bad_line = len(text.splitlines())  # the offending line is the last one
    with pytest.raises(NetworkError) as info:
        parse_inp(text, "bad.inp")
    assert re.match(rf"bad\.inp line {bad_line}\b", str(info.value)), str(info.value)
    assert message in str(info.value)


def test_network_level_error_names_file() -> None:
    with pytest.raises(NetworkError, match=r"^empty\.inp: network 'empty': has no nodes"):
        parse_inp("[OPTIONS]\n UNITS LPS\n", "empty.inp")


def test_data_before_section_and_error_is_not_a_raw_traceback(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match=r"^x\.inp line 1: data before the first"):
        parse_inp("J1 1 2\n", "x.inp")
    path = tmp_path / "Net9.inp"
    path.write_text(BASE.replace("P2 J1 J2 100 150 100", "P2 J1 J2 100 150"))
    with pytest.raises(NetworkError, match=re.escape("Net9.inp line 8 [PIPES] pipe 'P2': missing roughness")):
        read_inp(path)


# --------------------------------------------------------------------------------------------
# What EPANET's input parser (input3.c) accepts beyond the documented forms
# --------------------------------------------------------------------------------------------


def test_units_si_is_lps_as_in_epanet() -> None:
    si = parse_inp(BASE.replace("UNITS LPS", "UNITS SI"))
    lps = parse_inp(BASE)
    assert si.junctions[1].base_demand_m3s == lps.junctions[1].base_demand_m3s == pytest.approx(2e-3, rel=1e-4)
    assert si.pipes[1].diameter_m == pytest.approx(0.150)


def test_tank_given_by_its_head_alone_is_a_reservoir() -> None:
    text = BASE.replace("[RESERVOIRS]\n R1 50", "[TANKS]\n R1 50\n[PATTERNS]\n PH 1 1.1")
    net = parse_inp(text + "[TANKS]\n T2 40 PH\n[PIPES]\n P3 J2 T2 10 100 100\n")
    assert [(r.id, r.head_m, r.pattern) for r in net.reservoirs] == [("R1", 50.0, None), ("T2", 40.0, "PH")]
    assert net.tanks == ()


@pytest.mark.parametrize(
    ("value", "units", "viscosity_m2_s"),
    [
        ("1.5", "LPS", 1.5 * WATER_VISCOSITY_M2_S),  # above 1e-3: relative to water at 20 C
        ("2e-6", "LPS", 2e-6),  # at most 1e-3: absolute, in m2/s for SI files
        ("0.000011", "GPM", 0.000011 * 0.3048**2),  # and in ft2/s for US files
    ],
)
def test_viscosity_relative_or_absolute_as_epanet_reads_it(value: str, units: str, viscosity_m2_s: float) -> None:
    net = parse_inp(BASE.replace("UNITS LPS", f"UNITS {units}\n VISCOSITY {value}"))
    assert net.options.viscosity_m2_s == pytest.approx(viscosity_m2_s, rel=1e-12)
    again = parse_inp(format_inp(net))
    assert again.options.viscosity_m2_s == pytest.approx(viscosity_m2_s, rel=1e-9)


PDA_LINE = """[JUNCTIONS]
 J1 0 10
[RESERVOIRS]
 R1 100
[PIPES]
 P1 R1 J1 1000 12 100
[OPTIONS]
 UNITS GPM
{options}
[END]
"""


def test_pressure_driven_demand_options_are_read_in_the_files_pressure_unit() -> None:
    """EPANET's PDA pressures are in the file's pressure unit (psi here), its defaults (0 and 0.1) too under PDA."""
    psi_m = 0.3048 / 0.4333
    given = parse_inp(PDA_LINE.format(options=" DEMAND MODEL PDA\n REQUIRED PRESSURE 20\n MINIMUM PRESSURE 5")).options
    assert given.demand_model == "PDA"
    assert given.required_pressure_m == pytest.approx(20 * psi_m) and given.minimum_pressure_m == pytest.approx(
        5 * psi_m
    )
    default = parse_inp(PDA_LINE.format(options=" DEMAND MODEL PDA\n PRESSURE EXPONENT 0.6")).options
    assert default.required_pressure_m == pytest.approx(0.1 * psi_m) and default.pressure_exponent == 0.6
    assert parse_inp(PDA_LINE.format(options="")).options.demand_model == "DDA"
    network = parse_inp(PDA_LINE.format(options=" DEMAND MODEL PDA\n REQUIRED PRESSURE 20"))
    assert parse_inp(format_inp(network)).options.required_pressure_m == pytest.approx(20 * psi_m, rel=1e-9)
