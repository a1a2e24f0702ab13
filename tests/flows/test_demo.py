"""The demo trains diagnosis and time to failure on another history, never on the faults it then flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pumptwin.features.labels import pump_labels
from pumptwin.flows import demo
from pumptwin.flows.train_steps import known_fault_labels, pump_restarts
from pumptwin.plant.scenario import shipped_scenario
from pumptwin.plant.simulator import Plant

END = pd.Timestamp(demo.DEMO_WINDOW_END)


def _keys(pumps: list[str]) -> pd.DataFrame:
    ts = pd.date_range("2024-03-01T00:10:00Z", END, freq="10min")
    return pd.DataFrame([(p, t) for p in pumps for t in ts], columns=["pump_id", "event_timestamp"])


def test_history_is_other_pumps_whose_failures_lie_within_the_data():
    history = demo.history_scenario()
    own = shipped_scenario(demo.DEMO_SCENARIO)
    assert history.seed != own.seed
    targets = {f.target for f in history.faults}
    assert {t.split(".")[0] for t in targets} <= set(demo.HISTORY_STATIONS)
    assert not targets & {f.target for f in own.faults}
    assert not {f.target.split(".")[0] for f in own.faults} & set(demo.HISTORY_STATIONS)
    assert history.start + pd.Timedelta(seconds=history.duration_s) == END
    assert all(f.failure_s <= history.duration_s for f in history.faults)
    assert {f.mode for f in own.faults} <= {f.mode for f in history.faults}  # the modes it flags are learnt


def test_maintenance_records_hold_only_failures_before_the_data_end():
    labels = pd.DataFrame(
        {
            "asset": ["PS03.P1", "PS03.P2"],
            "mode": ["bearing_wear", "impeller_wear"],
            "onset_ts": pd.to_datetime(["2024-03-02", "2024-03-05"], utc=True),
            "failure_ts": pd.to_datetime(["2024-03-09", "2024-03-20"], utc=True),
        }
    )
    records = demo.maintenance_records(labels, END)
    assert records["asset"].tolist() == ["PS03.P1"]
    assert (records["action"] == demo.FINDING).all() and (records["failure_ts"] <= END).all()
    assert pump_restarts(records).empty  # a finding is not a repair: the pump's baseline stays


def test_demo_training_labels_exclude_the_demo_run():
    own = Plant(shipped_scenario(demo.DEMO_SCENARIO)).ground_truth().labels
    history = Plant(demo.history_scenario()).ground_truth().labels
    # the demo's faults fail after its data ends: the field does not know them yet
    assert (pd.to_datetime(own["failure_ts"], utc=True) > END).all()
    assert known_fault_labels(own, END).empty
    records = demo.maintenance_records(history, END)
    demo_pumps = ["PS01.P1", "PS01.P2", "PS02.P1", "PS02.P2"]
    keys = _keys([*demo_pumps, "PS03.P1", "PS04.P2"])
    labelled = pump_labels(keys, known_fault_labels(own, END), records)
    mine = labelled[labelled["pump_id"].isin(demo_pumps)]
    assert (mine["anomaly"] == 0).all() and (mine["mode"] == "healthy").all() and mine["ttf_s"].isna().all()
    other = labelled[~labelled["pump_id"].isin(demo_pumps)]
    assert set(other["mode"]) == {"healthy", "bearing_wear"}
    # every time to failure the models learn from ends within the data
    developing = other[other["ttf_s"].notna()]
    assert len(developing) and (developing["event_timestamp"] + pd.to_timedelta(developing["ttf_s"], "s") <= END).all()
    assert np.isfinite(developing["ttf_s"]).all()


# ---------------------------------------------------------------------------------------- the screen


def test_numbers_for_people_never_use_an_exponent():
    assert demo.fmt_num(2093.06) == "2,093"
    assert demo.fmt_num(33.94) == "33.9"
    assert demo.fmt_num(0.7342) == "0.734"
    assert demo.fmt_num(6170.0) == "6,170"
    assert demo.fmt_num(1.19e-117) == "<0.01"
    assert demo.fmt_num(float("nan")) == "-"
    assert demo.fmt_fraction(1.19e-117) == "<0.01"
    assert demo.fmt_fraction(5.42e-06) == "<0.01"
    assert demo.fmt_fraction(0.999) == ">0.99"
    assert demo.fmt_fraction(1.0) == "1.00"
    assert demo.fmt_fraction(0.0) == "0.00"
    assert demo.fmt_fraction(0.0168) == "0.02"
    assert demo.fmt_signed(0.8) == "+0.80" and demo.fmt_signed(float("nan")) == "n/a"
    assert demo.fmt_duration(3.845e5) == "4.5 d" and demo.fmt_duration(5400) == "1.5 h"
    assert demo.fmt_quantity(1013.2, "PS01.P1.FLOW") == "1,013 m3/h"
    assert demo.fmt_quantity(27.43, "PS01.P1.DISCH_PRESS") == "27.4 bar"
    assert demo.fmt_quantity(61.234, "PS01.P1.BRG_DE_TEMP") == "61.2 degC"


def test_network_ids_become_the_operators_names():
    settings = demo.Settings(home=Path("unused"))
    names = demo.line_names(settings, 1)
    assert names["PS1-P2"] == "PS01.P2" and names["PS2-P1"] == "PS02.P1" and names["PS1-D"] == "PS01 discharge"
    text = "POR PS1-P2: 123.3 % of BEP (limit 120); NPSH PS2-P1: -3.4 m margin; MAOP L000-005; KP005 PS1-P22"
    out = demo.rename(text, names)
    assert out == "POR PS01.P2: 123.3 % of BEP (limit 120); NPSH PS02.P1: -3.4 m margin; MAOP L000-005; KP005 PS1-P22"
    line2 = demo.line_names(settings, 2)
    assert line2["PS1-P1"] == "PS03.P1"


def test_tables_print_people_numbers_and_operator_names():
    health = pd.DataFrame(
        {
            "asset": ["PS01.P1", "PS01.P2"],
            "kind": ["pump", "pump"],
            "health_index": [1.19e-117, 0.9991],
            "status": ["alarm", "normal"],
            "driver": ["p_bearing_wear", ""],
            "alerts": [3, 0],
        }
    )
    table = demo.health_table(health)
    assert table["health"].tolist() == ["<0.01", ">0.99"]
    assert table["driver"].tolist() == ["P(bearing wear)", "-"]
    whatif = pd.DataFrame(
        {
            "scenario": ["base case", "PS01.P1: speed -10 %"],
            "status": ["ok", "negative pressure"],
            "throughput_m3h": [2093.06, 2020.4],
            "power_kw": [3133.7, 2880.1],
            "specific_energy_kwh_m3": [1.4972, 1.43],
            "min_maop_margin_mpa": [0.315, 0.626],
            "min_npsh_margin_m": [8.447, -5.01],
            "max_vibration_mm_s": [2.63, 4.16],
            "worst_zone": ["B", "B"],
            "max_bearing_c": [66.76, 70.9],
            "violations": ["none", "POR PS1-P2: 123.3 % of BEP (limit 120); NPSH PS2-P1: -3.4 m margin (limit 1)" * 2],
        }
    )
    out = demo.whatif_table(whatif, demo.line_names(demo.Settings(home=Path("unused")), 1))
    text = out.to_string(index=False)
    assert "e+" not in text and "e-" not in text
    assert out["flow m3/h"].tolist() == ["2,093", "2,020"] and out["MAOP margin bar"].tolist() == ["3.1", "6.3"]
    assert "PS1-P2" not in text and "PS01.P2" in text
    assert len(out["limits violated"].iloc[1]) == demo.VIOLATIONS_SHOWN


def test_alert_lines_name_durations_and_values_for_people():
    from pumptwin.twin.health.state import Alert

    since = pd.Timestamp("2024-03-16T12:00:00Z")
    ttf = Alert("PS01.P1", "ttf_s", "model", "alarm", 3.845e5, 6.048e5, "s", 1.6, since, since, "ttf:v1")
    line = demo.alert_line(ttf)
    assert line == "ALARM   PS01.P1 time to failure 4.5 d (alarm at 7.0 d) since 2024-03-16 12:00 UTC [ttf:v1]"
    p = Alert("PS02.P1", "p_impeller_wear", "model", "alarm", 0.921, 0.5, "-", 1.8, since, since, "diagnosis:v1")
    assert "P(impeller wear) 0.921 (alarm at 0.500)" in demo.alert_line(p)


def test_library_output_goes_to_the_log_file(tmp_path, capfd):
    import logging
    import os
    import sys
    import warnings

    log = tmp_path / "logs" / "demo.log"
    loggers = [logging.getLogger("some.library"), logging.getLogger("py.warnings")]
    # Libraries imported by earlier tests may have filtered warnings process-wide: this one is shown.
    with warnings.catch_warnings(), demo.library_output_to(log):
        warnings.simplefilter("always")
        handler = logging.StreamHandler()  # as a library configures its logging: to standard error
        for logger in loggers:
            logger.addHandler(handler)
        try:
            demo.show("the story")
            os.write(2, b"chatter on fd 2\n")
            sys.stderr.write("a library's line\n")
            warnings.warn("a library warning", UserWarning, stacklevel=1)
            loggers[0].warning("a library log record")
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
    handler.emit(logging.LogRecord("late", logging.INFO, __file__, 1, "logged at exit", None, None))
    out, err = capfd.readouterr()
    assert out == "the story\n" and err == ""
    text = log.read_text(encoding="utf-8")
    assert "chatter on fd 2" in text and "a library's line" in text
    assert "a library warning" in text and "a library log record" in text
    assert "logged at exit" in text  # a handler made in the block still writes to the log afterwards
    os.write(2, b"back on the terminal\n")
    assert "back on the terminal" in capfd.readouterr().err


def test_flow_messages_show_times_for_people():
    text = "folded 12 readings in 3 windows of 3600 s from 2024-03-01 00:00:00+00:00; next 2024-03-16T12:21:00.5Z"
    assert demo.readable_times(text) == (
        "folded 12 readings in 3 windows of 3600 s from 2024-03-01 00:00 UTC; next 2024-03-16 12:21 UTC"
    )
