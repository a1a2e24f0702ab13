"""Rule-based controls ([RULES]): parsing, writing back and extended periods against EPANET's toolkit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from wntr.epanet.toolkit import ENepanet

from pumptwin.twin.hydraulic.eps import simulate
from pumptwin.twin.hydraulic.inp import FLOW_UNITS_M3S, format_inp, parse_inp, read_inp
from pumptwin.twin.hydraulic.network import LinkStatus, NetworkError, RuleAction, RulePremise
from pumptwin.twin.hydraulic.solver import compile_network

TANK_AND_PUMPS = """[TITLE]
tank filled by a pump under rules

[JUNCTIONS]
 J1  0  0
 J2  5  3

[RESERVOIRS]
 R1  0

[TANKS]
;ID elev init min max diam minvol
 T1  40  3  0.5  6  12  0

[PIPES]
 P1  J1  T1  500  300  120  0  Open
 P2  T1  J2  800  250  120  0  Open
 P3  J2  R1  50   50   100  0  Closed

[PUMPS]
 PU1  R1  J1  HEAD C1
 PU2  R1  J1  HEAD C1

[CURVES]
 C1  40  60

[PATTERNS]
 D1  0.5 0.6 1.2 1.6 1.8 1.4 1.0 0.7

[DEMANDS]
 J2  3  D1

[RULES]
RULE FILL
IF TANK T1 LEVEL BELOW 2.5
THEN PUMP PU1 STATUS IS OPEN
PRIORITY 2

RULE FULL
IF TANK T1 LEVEL ABOVE 5
THEN PUMP PU1 STATUS IS CLOSED
AND PUMP PU2 STATUS IS CLOSED
PRIORITY 3

RULE DAY
IF SYSTEM CLOCKTIME >= 6 AM
AND SYSTEM CLOCKTIME < 6 PM
AND TANK T1 LEVEL BELOW 4
THEN PUMP PU2 STATUS IS OPEN
ELSE PUMP PU2 STATUS IS CLOSED
PRIORITY 1

RULE SPEED
IF SYSTEM DEMAND > 8
OR JUNCTION J2 PRESSURE BELOW 10
THEN PUMP PU1 SETTING IS 1.1
ELSE PUMP PU1 SETTING IS 1.0

[TIMES]
 Duration 24:00
 Hydraulic Timestep 1:00
 Pattern Timestep 3:00
 Report Timestep 1:00

[OPTIONS]
 Units LPS
 Headloss H-W
 Accuracy 0.000001

[END]
"""
"""A tank filled by two pumps: level rules with priorities, a clock window, and a speed rule whose ELSE
re-opens a closed pump (EPANET sets a closed pump's speed by opening it), so the level rides at 5 m."""

VALVE_AND_TIMES = """[TITLE]
PRV and a pump under time and status rules

[JUNCTIONS]
 J1  0   0
 J2  10  2
 J3  5   4

[RESERVOIRS]
 R1  60

[TANKS]
 T1  30  2  0.2  5  10  0

[PIPES]
 P1  R1  J1  300  300  120  0  Open
 P3  J2  J3  400  200  110  0  Open
 P4  J3  T1  300  200  110  0  Open
 P5  J1  T1  900  150  110  0  Open

[PUMPS]
 PU1  T1  J3  HEAD C1  SPEED 0.9

[VALVES]
 V1  J1  J2  200  PRV  30  0

[CURVES]
 C1  30  20

[PATTERNS]
 D1  0.4 0.8 1.3 1.5 1.1 0.7

[DEMANDS]
 J2  2  D1
 J3  4  D1

[STATUS]
 PU1  Closed

[RULES]
RULE NIGHT-SETTING
IF SYSTEM CLOCKTIME >= 22:00
OR SYSTEM CLOCKTIME < 5:00
THEN VALVE V1 SETTING IS 20
ELSE VALVE V1 SETTING IS 35

RULE BOOST
IF SYSTEM TIME = 7:30
AND LINK V1 STATUS IS ACTIVE
THEN PUMP PU1 STATUS IS OPEN
PRIORITY 4

RULE STOP-BOOST
IF TANK T1 DRAINTIME < 1.5
OR TANK T1 LEVEL BELOW 1
THEN PUMP PU1 STATUS IS CLOSED
PRIORITY 5

RULE SLOW
IF PUMP PU1 FLOW > 5
AND JUNCTION J3 PRESSURE ABOVE 30
THEN PUMP PU1 SETTING IS 0.8

RULE FILL-CLOSE
IF TANK T1 FILLTIME < 0.5
THEN PIPE P5 STATUS IS CLOSED
ELSE PIPE P5 STATUS IS OPEN

[TIMES]
 Duration 36:00
 Hydraulic Timestep 1:00
 Pattern Timestep 4:00
 Report Timestep 1:00
 Rule Timestep 0:05
 Start ClockTime 3 PM

[OPTIONS]
 Units LPS
 Headloss H-W
 Accuracy 0.000001

[END]
"""
"""A PRV whose setting follows the clock (a window across midnight), a pipe closed by a tank's fill time,
and a pump rule on a valve's status, a tank's drain time and a junction pressure; the day starts at 3 PM."""


def epanet_run(path: Path) -> tuple[list[int], np.ndarray, np.ndarray]:
    """EPANET 2.2's toolkit stepping through the file: reporting times, heads (m), flows (m3/s; files in LPS)."""
    en = ENepanet()
    en.ENopen(str(path), str(path.with_suffix(".rpt")), "")
    model = compile_network(read_inp(path))
    nodes = [en.ENgetnodeindex(n) for n in model.node_ids]
    links = [en.ENgetlinkindex(k) for k in model.link_ids]
    en.ENopenH()
    en.ENinitH(0)
    times, heads, flows = [], [], []
    while True:
        t = en.ENrunH()
        if t % 3600 == 0:
            times.append(t)
            heads.append([en.ENgetnodevalue(i, 10) for i in nodes])
            flows.append([en.ENgetlinkvalue(i, 8) * FLOW_UNITS_M3S["LPS"] for i in links])
        if en.ENnextH() <= 0:
            break
    en.ENcloseH()
    en.ENclose()
    return times, np.array(heads), np.array(flows)


@pytest.mark.parametrize("text", [TANK_AND_PUMPS, VALVE_AND_TIMES], ids=["tank-and-pumps", "valve-and-times"])
def test_an_extended_period_under_rules_matches_epanet(text: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.inp"
    path.write_text(text)
    times, heads, flows = epanet_run(path)
    ours = simulate(compile_network(read_inp(path)), accuracy=1e-6)
    assert list(ours.times_s) == times
    assert ours.converged.all()
    np.testing.assert_allclose(ours.head_m[:, 0], heads, atol=1e-4)
    np.testing.assert_allclose(ours.flow_m3s[:, 0], flows, atol=1e-6)


def test_the_rules_change_the_run(tmp_path: Path) -> None:
    """Without its rules the tank network runs otherwise (so the comparison above tests the rules)."""
    network = parse_inp(TANK_AND_PUMPS)
    bare = parse_inp(
        TANK_AND_PUMPS[: TANK_AND_PUMPS.index("[RULES]")] + TANK_AND_PUMPS[TANK_AND_PUMPS.index("[TIMES]") :]
    )
    with_rules = simulate(compile_network(network), accuracy=1e-6)
    without = simulate(compile_network(bare), accuracy=1e-6)
    assert np.abs(with_rules.head_m - without.head_m).max() > 1.0


def test_rules_are_read_in_si_and_written_back() -> None:
    network = parse_inp(TANK_AND_PUMPS)
    rules = {r.id: r for r in network.rules}
    assert list(rules) == ["FILL", "FULL", "DAY", "SPEED"]
    assert rules["FULL"].priority == 3.0
    assert rules["FULL"].then == (
        RuleAction("PU1", status=LinkStatus.CLOSED),
        RuleAction("PU2", status=LinkStatus.CLOSED),
    )
    day = rules["DAY"].premises
    assert [p.value for p in day[:2]] == [6 * 3600.0, 18 * 3600.0]  # 6 AM, 6 PM
    speed = rules["SPEED"]
    assert speed.premises[0] == RulePremise("SYSTEM", None, "DEMAND", ">", 8.0 * FLOW_UNITS_M3S["LPS"])
    assert speed.premises[1].join == "OR" and speed.premises[1].relation == "<"
    assert speed.otherwise == (RuleAction("PU1", setting=1.0),)
    assert parse_inp(format_inp(network)).rules == network.rules
    valves = parse_inp(VALVE_AND_TIMES)
    assert parse_inp(format_inp(valves)).rules == valves.rules
    night = next(r for r in valves.rules if r.id == "NIGHT-SETTING")
    assert night.then[0].setting == pytest.approx(20.0)  # m: the file's pressure unit is METERS
    drain = next(r for r in valves.rules if r.id == "STOP-BOOST").premises[0]
    assert (drain.variable, drain.value) == ("DRAINTIME", 1.5 * 3600.0)


BASE = TANK_AND_PUMPS[: TANK_AND_PUMPS.index("[RULES]")]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ("THEN PUMP PU1 STATUS IS OPEN", "THEN before the first RULE"),
        ("RULE A\nTHEN PUMP PU1 STATUS IS OPEN", "misplaced THEN"),
        ("RULE A\nIF TANK T1 LEVEL BELOW 2\nPRIORITY 3", "misplaced PRIORITY"),
        ("RULE A\nIF TANK T1 LEVEL BELOW 2", "no IF and THEN"),
        ("RULE A\nIF BASIN T1 LEVEL BELOW 2\nTHEN PUMP PU1 STATUS IS OPEN", "unknown rule object"),
        ("RULE A\nIF TANK T9 LEVEL BELOW 2\nTHEN PUMP PU1 STATUS IS OPEN", "node 'T9' does not exist"),
        ("RULE A\nIF TANK T1 LEVEL BELOW\nTHEN PUMP PU1 STATUS IS OPEN", "a premise has 6 words"),
        (
            "RULE A\nIF JUNCTION J1 FILLTIME BELOW 2\nTHEN PUMP PU1 STATUS IS OPEN",
            "FILLTIME of 'J1', which is not a tank",
        ),
        ("RULE A\nIF TANK T1 LEVEL BELOW 2\nTHEN PUMP PU9 STATUS IS OPEN", "link 'PU9' does not exist"),
        ("RULE A\nIF PIPE P1 STATUS IS 2\nTHEN PUMP PU1 STATUS IS OPEN", "a STATUS premise takes OPEN"),
        ("RULE A B\nIF TANK T1 LEVEL BELOW 2\nTHEN PUMP PU1 STATUS IS OPEN", "RULE takes one id"),
    ],
)
def test_a_malformed_rule_is_refused_naming_its_line(rules: str, message: str) -> None:
    with pytest.raises(NetworkError, match=message) as err:
        parse_inp(BASE + "[RULES]\n" + rules + "\n[END]\n", "x.inp")
    assert "x.inp line" in str(err.value)


def test_a_pipe_setting_in_an_action_is_its_status_and_a_check_valve_cannot_be_ruled() -> None:
    closing = BASE + "[RULES]\nRULE A\nIF TANK T1 LEVEL ABOVE 5\nTHEN PIPE P3 SETTING IS 0\n[END]\n"
    assert parse_inp(closing).rules[0].then == (RuleAction("P3", status=LinkStatus.CLOSED),)
    cv = closing.replace(" P3  J2  R1  50   50   100  0  Closed", " P3  J2  R1  50   50   100  0  CV")
    with pytest.raises(NetworkError, match="check valve"):
        parse_inp(cv)
