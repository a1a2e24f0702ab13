"""Which samples count: temperatures after a start, hydraulics away from a start or stop, shared head loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from pumptwin.twin.health.pumps import PumpWindow, common_head_loss, hydraulic_samples, thermal_settled

START = pd.Timestamp("2024-03-01T00:00:00Z")


def test_a_run_that_starts_in_the_window_settles_after_the_settling_time() -> None:
    times = pd.date_range(START, periods=10, freq="15min")
    on = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    settled, since = thermal_settled(on, times, False, None, 3600.0)
    assert since == times[2]
    assert settled.tolist() == [False] * 6 + [True] * 4


def test_a_carried_run_keeps_its_start_and_an_unknown_start_is_settled() -> None:
    times = pd.date_range(START, periods=4, freq="15min")
    on = np.ones(4, dtype=bool)
    begun = START - pd.Timedelta(minutes=30)
    settled, since = thermal_settled(on, times, True, begun, 3600.0)
    assert since == begun and settled.tolist() == [False, False, True, True]
    settled, since = thermal_settled(on, times, True, None, 3600.0)
    assert since is None and settled.all()
    settled, since = thermal_settled(on, times, False, begun, 3600.0)  # it stopped in between: a new run
    assert since == START and not settled.any()


@given(
    on=st.lists(st.booleans(), min_size=1, max_size=40),
    continues=st.booleans(),
    carried_h=st.one_of(st.none(), st.floats(0.0, 5.0)),
    settle_h=st.floats(0.1, 3.0),
)
@settings(max_examples=60, deadline=None)
def test_settled_samples_are_running_and_stay_settled_within_a_run(
    on: list[bool], continues: bool, carried_h: float | None, settle_h: float
) -> None:
    flags = np.asarray(on)
    times = pd.date_range(START, periods=len(on), freq="15min")
    since = None if carried_h is None else START - pd.Timedelta(hours=carried_h)
    settled, last = thermal_settled(flags, times, continues, since, settle_h * 3600.0)
    assert not (settled & ~flags).any()
    for i in range(1, len(on)):
        if flags[i] and flags[i - 1] and settled[i - 1]:
            assert settled[i]
    if not flags[-1]:
        assert last is None
    elif not (flags.all() and continues):
        assert last is not None and last >= START  # a run that began in the window
    else:
        assert last == since
        if since is None:  # running since before the twin's first window
            assert settled.all()


def test_a_head_loss_counts_as_the_stations_when_two_pumps_share_it() -> None:
    assert common_head_loss([0.13, 0.12, float("nan")], 0.03) == [True, True, False]
    assert common_head_loss([0.13, 0.001, 0.12], 0.03) == [True, False, True]
    assert common_head_loss([0.13, 0.001, 0.002], 0.03) == [False, False, False]  # one pump's own
    assert common_head_loss([], 0.03) == []


def _window(on: list[bool]) -> PumpWindow:
    n = len(on)
    ones = np.ones(n)
    return PumpWindow(np.asarray(on), *(ones for _ in range(14)))


def test_samples_next_to_a_start_or_stop_say_nothing_of_the_impeller() -> None:
    assert hydraulic_samples(_window([True] * 5)).tolist() == [True] * 5  # a run across the window's edges
    assert hydraulic_samples(_window([False, True, True, True, True])).tolist() == [False, False, True, True, True]
    assert hydraulic_samples(_window([True, True, True, False, False])).tolist() == [True, True, False, False, False]
    assert not hydraulic_samples(_window([False, True, False])).any()
