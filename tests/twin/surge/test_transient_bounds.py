"""Bounds of a transient run: a duration or grid that would exhaust memory is refused before it is allocated."""

from __future__ import annotations

import pytest

from pumptwin.twin.surge.transients import (
    GRID_NODE_BYTES,
    DeadEnd,
    Reach,
    Reservoir,
    TransientCase,
    TransientError,
    TransientLine,
    discretise,
    simulate,
)


def case() -> TransientCase:
    """Reservoir (50 m) feeding 1 km of 0.3 m pipe (wave speed 1000 m/s) to a dead end."""
    line = TransientLine((Reach(1000.0, 0.3, 1000.0, 0.0, 10.0, friction_factor=0.02, name="P1"),))
    return TransientCase(line, Reservoir(50.0), DeadEnd())


def test_a_very_long_duration_is_refused() -> None:
    with pytest.raises(TransientError, match=r"a transient of 1e\+12 s in steps of .* would need about .* MB, above"):
        simulate(case(), 1e12, max_reach_m=100.0)


def test_a_very_fine_grid_is_refused_before_it_exists() -> None:
    with pytest.raises(TransientError, match=r"a grid of \d+ nodes .* above the limit of 4096 MB"):
        simulate(case(), 1.0, max_reach_m=1e-6)
    with pytest.raises(TransientError, match="above the limit of 4096 MB"):
        simulate(case(), 1.0, dt_s=1e-12)


def test_the_limit_can_be_set_and_a_run_within_it_goes_ahead() -> None:
    grid = discretise(case().line, max_reach_m=100.0)
    assert grid.x_m.size == 11
    needed_mb = 11 * GRID_NODE_BYTES / 1e6
    with pytest.raises(TransientError, match="a grid of 11 nodes"):
        discretise(case().line, max_reach_m=100.0, max_memory_mb=0.5 * needed_mb)
    assert simulate(case(), 1.0, max_reach_m=100.0, max_memory_mb=1.0).time_s[-1] == pytest.approx(1.0)
