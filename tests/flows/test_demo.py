"""The demo trains diagnosis and time to failure on another history, never on the faults it then flags."""

from __future__ import annotations

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
