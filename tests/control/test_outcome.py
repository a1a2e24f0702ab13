"""Outcomes of implemented actions on synthetic readings: medians, verdicts, trends, labels, the audit log's view."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pumptwin.control.approval import ApprovalRequest, Decision, Requests
from pumptwin.control.audit import AuditLog
from pumptwin.control.interface import Write
from pumptwin.control.interlocks import Expectation, Interlocked, InterlockSettings, SpeedRange
from pumptwin.control.outcome import (
    ACTION_OUTCOME_COLUMNS,
    CONFIRMED,
    FALSE_ALARM_LABEL,
    AlertedRequest,
    Implementation,
    Outcome,
    OutcomeError,
    Trend,
    alerted_requests,
    confirmed_fault_rows,
    effect_targets,
    evaluate_outcome,
    implementation_time,
    implementations,
    outcome_labels,
    outcome_report_id,
    outcome_report_markdown,
    ramp_arrival,
    trend_per_hour,
)

T0 = pd.Timestamp("2024-03-10T12:00:00Z")
BRG = "PS01.P1.BRG_DE_TEMP"
FLOW = "PS01.P1.FLOW"


def readings(
    tag: str, start: pd.Timestamp, minutes: int, value: Callable[[int], float] | float, quality: str = "good"
) -> pd.DataFrame:
    """One reading a minute of ``tag`` from ``start``: ``value(i)`` for the i-th minute (or a constant)."""
    ts = [start + pd.Timedelta(minutes=i) for i in range(minutes)]
    values = [float(value(i)) if callable(value) else float(value) for i in range(minutes)]
    return pd.DataFrame({"tag": tag, "ts": ts, "value": values, "quality": quality})


def table(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


def bearing(before_per_h: float, after_per_h: float, at: pd.Timestamp = T0) -> pd.DataFrame:
    """Bearing temperature rising ``before_per_h`` degC/h for two hours before ``at``, ``after_per_h`` after."""
    start = at - pd.Timedelta(hours=2)
    rise = readings(BRG, start, 120, lambda i: 60.0 + before_per_h * i / 60.0)
    top = 60.0 + before_per_h * 2.0
    fall = readings(BRG, at, 120, lambda i: top + after_per_h * i / 60.0)
    return table(rise, fall)


# ---------------------------------------------------------------------------------------- trends


def test_trend_is_the_slope_per_hour_of_good_readings() -> None:
    frame = bearing(0.8, 0.1)
    assert trend_per_hour(frame, BRG, T0 - pd.Timedelta(hours=1), T0) == pytest.approx(0.8)
    assert trend_per_hour(frame, BRG, T0, T0 + pd.Timedelta(hours=1)) == pytest.approx(0.1)
    # a bad reading (a spike with bad quality) and NaN values do not count; other tags are ignored
    spiked = table(
        frame,
        readings(BRG, T0 + pd.Timedelta(seconds=30), 1, 500.0, "bad"),
        readings(BRG, T0 + pd.Timedelta(seconds=40), 1, math.nan),
        readings(FLOW, T0, 60, lambda i: 1000.0 - 50 * i),
    )
    assert trend_per_hour(spiked, BRG, T0, T0 + pd.Timedelta(hours=1)) == pytest.approx(0.1)
    # too few readings: unknown
    assert math.isnan(trend_per_hour(frame, BRG, T0, T0 + pd.Timedelta(minutes=2)))
    assert math.isnan(trend_per_hour(frame, "PS09.P9.BRG_DE_TEMP", T0, T0 + pd.Timedelta(hours=1)))


def test_trend_refuses_a_frame_without_the_tag_table_columns() -> None:
    with pytest.raises(OutcomeError, match="missing columns"):
        trend_per_hour(pd.DataFrame({"tag": [BRG]}), BRG, T0, T0 + pd.Timedelta(hours=1))


# ---------------------------------------------------------------------------------------- verdicts


def plant(flow_after: float, *, at: pd.Timestamp = T0) -> pd.DataFrame:
    """Flow 1000 m3/h before ``at`` and ``flow_after`` (with a little noise) from ``at`` on, plus a bearing."""
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 2.0, 120)
    return table(
        readings(FLOW, at - pd.Timedelta(hours=2), 120, 1000.0),
        readings(FLOW, at, 120, lambda i: flow_after + noise[i]),
        bearing(0.8, 0.1, at),
    )


def test_a_response_within_tolerance_is_confirmed_with_the_effect_on_the_asset() -> None:
    expect = [Expectation(FLOW, 950.0, 20.0)]
    out = evaluate_outcome(
        expect,
        plant(955.0),
        T0,
        3600.0,
        settle_s=120.0,
        request="R1",
        action="slow P1",
        at_risk=[("PS01.P1", "bearing_wear")],
    )
    assert out.verdict == "confirmed"
    assert out.window_start == T0 + pd.Timedelta(seconds=120) and out.window_s == 3600.0
    (check,) = out.checks
    assert check.observed == pytest.approx(955.0, abs=1.0) and check.error == pytest.approx(5.0, abs=1.0)
    assert check.readings == 60 and check.within
    trend = next(t for t in out.effects if t.tag == BRG)
    assert trend.before_per_h == pytest.approx(0.8) and trend.after_per_h == pytest.approx(0.1)
    assert trend.describe() == "PS01.P1.BRG_DE_TEMP trend +0.80 degC/h before, +0.10 degC/h after"
    assert "confirmed: 1 of 1" in out.message() and trend.describe() in out.message()
    d = out.to_dict()
    assert d["verdict"] == "confirmed" and d["checks"][0]["within"] is True and d["assets"] == ["PS01.P1"]


def test_a_response_outside_tolerance_deviates_and_missing_readings_are_no_data() -> None:
    expect = [Expectation(FLOW, 950.0, 20.0)]
    deviated = evaluate_outcome(expect, plant(900.0), T0, 3600.0)
    assert deviated.verdict == "deviated" and deviated.checks[0].error == pytest.approx(-50.0, abs=1.0)
    assert not deviated.checks[0].within
    # the median ignores a few wild readings that the mean would not
    wild = table(plant(955.0), readings(FLOW, T0 + pd.Timedelta(seconds=10), 5, 5000.0))
    assert evaluate_outcome(expect, wild, T0, 3600.0).verdict == "confirmed"
    # no reading of an expected tag in the window: no data (one missing, one within: still no data)
    before_only = plant(955.0)
    before_only = before_only[~((before_only["tag"] == FLOW) & (before_only["ts"] >= T0))]
    assert evaluate_outcome(expect, before_only, T0, 3600.0).verdict == "no_data"
    both = [*expect, Expectation("PS01.P1.DISCH_PRESS", 30.0, 1.0)]
    partial = evaluate_outcome(both, plant(955.0), T0, 3600.0)
    assert partial.verdict == "no_data" and partial.checks[1].readings == 0 and math.isnan(partial.checks[1].observed)
    # a tag out of tolerance decides even when another has no data
    assert evaluate_outcome(both, plant(900.0), T0, 3600.0).verdict == "deviated"
    # nothing was predicted: nothing to confirm
    assert evaluate_outcome([], plant(955.0), T0, 3600.0).verdict == "no_data"


def test_evaluation_refuses_bad_windows() -> None:
    with pytest.raises(OutcomeError, match="window_s"):
        evaluate_outcome([], plant(955.0), T0, 0.0)
    with pytest.raises(OutcomeError, match="settle_s"):
        evaluate_outcome([], plant(955.0), T0, 60.0, settle_s=-1.0)
    with pytest.raises(OutcomeError, match="implemented_at"):
        evaluate_outcome([], plant(955.0), "not a time", 60.0)


def test_labels_one_row_per_asset_with_its_main_trend() -> None:
    out = evaluate_outcome(
        [Expectation(FLOW, 950.0, 20.0)],
        plant(955.0),
        T0,
        3600.0,
        request="R1",
        action="slow P1",
        at_risk=[("PS01.P1", "bearing_wear"), ("PS01.P2", "")],
    )
    rows = outcome_labels(out)
    assert [r["asset"] for r in rows] == ["PS01.P1", "PS01.P2"]
    assert all(set(r) == set(ACTION_OUTCOME_COLUMNS) for r in rows)
    p1 = rows[0]
    assert p1["tag"] == BRG and p1["verdict"] == "confirmed" and p1["mode"] == "bearing_wear"
    assert float(p1["effect"]) == pytest.approx(-0.7) and p1["ts"] == T0.isoformat() and p1["request"] == "R1"
    assert rows[1]["effect"] == ""  # no readings of PS01.P2: its trend is unknown
    # without assets at risk, the pumps of the predictions are the assets
    plain = evaluate_outcome([Expectation(FLOW, 950.0, 20.0)], plant(955.0), T0, 3600.0)
    assert [r["asset"] for r in outcome_labels(plain)] == ["PS01.P1"]


def test_effect_tags_follow_the_failure_mode() -> None:
    tags = [t for _, _, t in effect_targets([("PS01.P1", "bearing_wear"), ("PS02.P1", "seal_failure")])]
    assert tags == ["PS01.P1.BRG_DE_TEMP", "PS01.P1.BRG_NDE_TEMP", "PS02.P1.SEAL_LEAK"]
    assert [t for _, _, t in effect_targets([("PS01.P2", "")])] == ["PS01.P2.BRG_DE_TEMP", "PS01.P2.VIB_DE_RMS"]


# ---------------------------------------------------------------------------------------- when it took effect


def setpoints(values: list[float], start: pd.Timestamp = T0) -> pd.DataFrame:
    return pd.DataFrame({"ts": [start + pd.Timedelta(minutes=i) for i in range(len(values))], "value": values})


def test_ramp_arrival_finds_the_ramp_from_before_to_target() -> None:
    series = setpoints([0.945, 0.945, 0.928, 0.912, 0.895, 0.895, 0.945, 0.928, 0.895])
    assert ramp_arrival(series, 0.945, 0.895, 0.003) == T0 + pd.Timedelta(minutes=4)
    # the second ramp, when the first lies before the bound
    assert ramp_arrival(series, 0.945, 0.895, 0.003, T0 + pd.Timedelta(minutes=5)) == T0 + pd.Timedelta(minutes=8)
    # a value reached from elsewhere is no ramp from ``before``
    assert ramp_arrival(setpoints([0.80, 0.895]), 0.945, 0.895, 0.003) is None
    assert ramp_arrival(setpoints([0.945, 0.945]), 0.945, 0.895, 0.003) is None


def impl(**kwargs: object) -> Implementation:
    base: dict[str, object] = {
        "request": "R1",
        "action": "slow P1",
        "status": "done",
        "seq": 9,
        "hash": "h",
        "recorded_at": pd.Timestamp("2026-12-01T00:00:00Z"),
        "speeds": {"PS01.P1": 0.895},
        "before": {"PS01.P1.speed": 0.945, "PS01.P1.running": 1.0},
    }
    return Implementation(**(base | kwargs))  # type: ignore[arg-type]


def test_implementation_time_reads_the_setpoint_tag_in_rpm() -> None:
    rpm = 1480.0
    sp = setpoints([0.945, 0.945, 0.92, 0.895, 0.895])
    frame = pd.DataFrame({"tag": "PS01.P1.SPEED_SP", "ts": sp["ts"], "value": sp["value"] * rpm, "quality": "good"})
    assert implementation_time(frame, impl(), {"PS01.P1": rpm}) == T0 + pd.Timedelta(minutes=3)
    assert implementation_time(frame, impl(), {}) is None  # no rated speed: cannot tell
    assert implementation_time(frame.iloc[:3], impl(), {"PS01.P1": rpm}) is None  # not there yet
    # a stop: the STATUS tag
    status = pd.DataFrame({"tag": "PS01.P2.STATUS", "ts": sp["ts"], "value": [1, 1, 1, 0, 0.0], "quality": "good"})
    stop = impl(speeds={}, running={"PS01.P2": 0.0}, before={"PS01.P2.speed": 0.9, "PS01.P2.running": 1.0})
    assert implementation_time(status, stop, {}) == T0 + pd.Timedelta(minutes=3)


# ---------------------------------------------------------------------------------------- the audit log


def audited_implementation(tmp_path: Path) -> tuple[AuditLog, str]:
    """A recommendation and a verified implementation on a fake controller, through the real interlocks."""

    class Fake:
        def __init__(self) -> None:
            self.sp = 0.945

        def read(self, tags: Sequence[str]) -> dict[str, float]:
            return {t: 950.0 for t in tags}

        def speed_setpoint(self, pump: str) -> float:
            return self.sp

        def running(self, pump: str) -> bool:
            return True

        def apply(self, write: Write) -> None:
            self.sp = write.value

        def wait(self, seconds: float) -> None:
            pass

    log = AuditLog(tmp_path / "audit.jsonl")
    request = ApprovalRequest(
        id="R1",
        line=1,
        action="PS01.P1 speed 0.895",
        kind="setpoint",
        setpoints={"PS01.P1": 0.895},
        numbers={},
        pumps=("PS01.P1", "PS01.P2"),
        assets=("PS01.P1",),
        created=pd.Timestamp("2026-12-01T00:00:00Z"),
        expires=pd.Timestamp("2026-12-01T01:00:00Z"),
    )
    since = "2024-03-10T08:00:00+00:00"
    alert = f"WARNING PS01.P1 thermal_drift_de = 4.1 degC (alarm at 3) since {since} [physics-1]"
    log.append("recommendation", "R1", "recommend", request.action, why=alert, data=request.to_dict())
    Requests(log).decide(request, Decision(True, "j.doe"))
    lock = Interlocked(
        Fake(),
        {"PS01.P1": SpeedRange(0.7, 1.05)},
        InterlockSettings(settle_s=60.0),
        audit=log,
        request="R1",
        who="j.doe",
    )
    result = lock.implement([Write("PS01.P1", "speed", 0.895)], expect=[Expectation(FLOW, 950.0, 95.0)])
    assert result.status == "done"
    return log, since


def test_implementations_read_the_interlocks_records(tmp_path: Path) -> None:
    log, since = audited_implementation(tmp_path)
    (found,) = implementations(log.records())
    done = log.records(kind="done")[0]
    assert found.request == "R1" and found.action == "PS01.P1 speed 0.895" and found.status == "done"
    assert found.seq == done.seq and found.hash == done.hash
    assert found.speeds == {"PS01.P1": pytest.approx(0.895)}
    assert found.before["PS01.P1.speed"] == pytest.approx(0.945)
    assert found.expectations == (Expectation(FLOW, 950.0, 95.0),)
    assert found.at_risk == (("PS01.P1", "bearing_wear"),)
    assert found.alerted_since == pd.Timestamp(since)


def test_alerted_requests_and_false_alarms(tmp_path: Path) -> None:
    log, since = audited_implementation(tmp_path)
    request = ApprovalRequest.from_dict({**log.records(kind="recommendation")[0].data, "id": "R2"})
    alert = f"WARNING PS01.P2 vib_excess_de_mm_s = 7 mm/s (alarm at 4.5) since {since} [physics-1]"
    log.append("recommendation", "R2", "recommend", "slow P2", why=alert, data=request.to_dict())
    Requests(log).decide(request, Decision(False, "a.smith", reason="false alarm"))
    found = alerted_requests(log.records())
    assert found == [
        AlertedRequest("R1", "PS01.P1", "bearing_wear", pd.Timestamp(since), False),
        AlertedRequest("R2", "PS01.P2", "vibration", pd.Timestamp(since), True),
        # R2 also names PS01.P1 at risk (no alert line): it takes the request's creation time
        AlertedRequest("R2", "PS01.P1", "", pd.Timestamp("2026-12-01T00:00:00Z"), True),
    ]


# ---------------------------------------------------------------------------------------- field confirmation


SINCE = pd.Timestamp("2024-03-05T00:00:00Z")


def test_a_finding_after_the_alert_confirms_the_fault() -> None:
    orders = pd.DataFrame(
        {
            "asset": ["PS01.P1", "PS01.P2", "PS01.P1"],
            "ts": ["2024-03-04T00:00:00Z", "2024-03-08T00:00:00Z", "2024-03-09T00:00:00Z"],
            "action": ["inspect", "repair", "repair"],
            "mode": ["bearing_wear", "", "bearing_wear"],
        }
    )
    requests = [
        AlertedRequest("R1", "PS01.P1", "bearing_wear", SINCE),
        AlertedRequest("R2", "PS01.P2", "vibration", SINCE, false_alarm=True),
        AlertedRequest("R3", "PS02.P1", "", SINCE),
    ]
    rows = confirmed_fault_rows(orders, requests, horizon_s=7 * 86_400.0)
    assert [(r["request"], r["label"]) for r in rows] == [("R1", CONFIRMED), ("R2", FALSE_ALARM_LABEL)]
    r1 = rows[0]
    # the finding before the alert does not count; the one after it does
    assert r1["work_order_ts"] == pd.Timestamp("2024-03-09T00:00:00Z") and r1["onset_ts"] == SINCE
    assert r1["failure_ts"] == r1["work_order_ts"] and r1["mode"] == "bearing_wear" and r1["station"] == "PS01"
    # R2's work order found nothing (no mode): the false alarm stays; R3: nothing known, no label
    assert pd.isna(rows[1]["failure_ts"])
    # beyond the horizon the finding no longer confirms the alert
    late = confirmed_fault_rows(orders, requests[:1], horizon_s=86_400.0)
    assert late == []
    # a finding that contradicts a false alarm confirms it, with the work order's own onset and failure
    contra = orders.assign(onset_ts=["", "", "2024-03-06T00:00:00Z"], failure_ts=["", "", "2024-03-12T00:00:00Z"])
    (row,) = confirmed_fault_rows(contra, [AlertedRequest("R4", "PS01.P1", "", SINCE, True)])
    assert row["label"] == CONFIRMED and row["onset_ts"] == pd.Timestamp("2024-03-06T00:00:00Z")
    assert row["failure_ts"] == pd.Timestamp("2024-03-12T00:00:00Z")
    assert confirmed_fault_rows(None, requests) == [rows[1]]
    with pytest.raises(OutcomeError, match="horizon_s"):
        confirmed_fault_rows(orders, requests, horizon_s=-1.0)


def test_of_several_setpoint_changes_the_records_pick_theirs() -> None:
    rpm = 1480.0
    step = pd.Timedelta(minutes=30)
    # the same change twice: by hand at 01:00, back at 02:30, by the implementation at 04:00
    values = [0.945, 0.945, 0.895, 0.895, 0.895, 0.945, 0.945, 0.92, 0.895, 0.895, 0.895, 0.895]
    ts = [T0 + i * step for i in range(len(values))]
    frame = pd.DataFrame({"tag": "PS01.P1.SPEED_SP", "ts": ts, "value": np.array(values) * rpm, "quality": "good"})
    flow = pd.DataFrame({"tag": FLOW, "ts": ts, "value": [900.0 + i / 10 for i in range(len(ts))], "quality": "good"})
    first, second = T0 + 2 * step, T0 + 8 * step
    rated = {"PS01.P1": rpm}
    # the value the interlocks read on settling is in the historian just after the second change
    seen = impl(observed={FLOW: 900.8})
    assert implementation_time(table(frame, flow), seen, rated, settle_s=120.0) == second
    # without that reading the audit time decides when it lies near one (a live plant), else the first
    assert implementation_time(frame, seen, rated, settle_s=120.0) == first
    near = impl(observed={}, recorded_at=second + pd.Timedelta(minutes=2, seconds=5))
    assert implementation_time(frame, near, rated, settle_s=120.0) == second
    # a bound after both: nothing
    assert implementation_time(frame, seen, rated, second + step) is None


def test_an_outcome_report_is_a_corpus_document_with_the_verdict_in_words() -> None:
    import yaml

    deviated = Outcome(
        "REQ 7#b",
        'PS01.P1: speed 90 % "eco"',
        T0,
        T0 + pd.Timedelta(hours=1),
        T0 + pd.Timedelta(hours=3),
        (),
        "deviated",
        (Trend("PS01.P1", "bearing_wear", BRG, 0.8, 0.5),),
        ("PS01.P1",),
    )
    text = outcome_report_markdown(deviated, ["bearing_wear", "bearing_wear"])
    head, body = text.split("---\n")[1], text.split("---\n", 2)[2]
    front = yaml.safe_load(head)
    assert outcome_report_id("REQ 7#b") == "OUT-REQ-7-b" == front["id"]
    assert front["doc_type"] == "outcome" and front["assets"] == ["PS01.P1"]
    assert front["failure_modes"] == ["bearing_wear"] and str(front["date"]) == "2024-03-10"
    assert front["title"] == 'Outcome of PS01.P1: speed 90 % "eco", 2024-03-10'
    assert "Verdict: deviated, the plant did not respond as the twin predicted (no predictions to compare)." in body
    assert f"Effect on PS01.P1 (bearing wear): {BRG} trend +0.80 degC/h before, +0.50 degC/h after." in body
