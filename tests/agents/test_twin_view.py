"""The recommender's view of one line of the twin."""

from __future__ import annotations

import pytest

from pumptwin.agents.twin_view import TwinView
from pumptwin.twin.assets import build_registry
from pumptwin.twin.hydraulic.io import load_network
from pumptwin.twin.whatif.spec import ScenarioSpec


def test_a_speed_change_means_the_same_relative_speed_whatever_rated_speeds_the_view_has() -> None:
    net = load_network(None)
    reg = build_registry(net)
    rated = {p.pump_id: p.rated_speed_rpm for p in reg.pumps}
    base = TwinView(net, reg, rated_speed_rpm=rated).simulate([]).outcomes[0]
    pid = next(p.pump for p in base.pumps if p.running)
    views = [
        TwinView(net, reg, rated_speed_rpm=rated),
        TwinView(net, reg, rated_speed_rpm={k: v for k, v in rated.items() if k != pid}),  # none for the pump
        TwinView(net, reg),  # none at all
    ]
    speeds = []
    for view in views:
        outcome = view.simulate([ScenarioSpec(name="slower", speeds=(view.speed_change(pid, 0.9),))]).outcomes[1]
        speeds.append(next(p.speed for p in outcome.pumps if p.pump == pid))
    assert speeds == pytest.approx([0.9, 0.9, 0.9])
