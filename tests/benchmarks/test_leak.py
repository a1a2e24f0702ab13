"""Small pieces of the leak benchmark: targets, the headline's exit status, the meter sweep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import leak


def _row(size: float, detected: int = 10, runs: int = 10, tta: float = 4.0, loc: float = 1.0) -> dict[str, Any]:
    return {
        "kind": "steady",
        "size_pct": size,
        "runs": runs,
        "detected": detected,
        "false_before_leak": 0,
        "tta_median_min": tta,
        "tta_max_min": tta,
        "loc_err_median_km": loc,
        "loc_err_max_km": loc,
        "rate_err_median_pct": 1.0,
        "rate_err_max_pct": 2.0,
        "loc_err_ends_median_km": loc,
        "loc_err_ends_max_km": loc,
    }


def _record(loc_1pct: float = 1.0, false_alarms: int = 0, tta_1pct: float = 4.0) -> dict[str, Any]:
    return {
        "tables": {"steady": [_row(0.5, tta=12.0, loc=3.0), _row(1.0, tta=tta_1pct, loc=loc_1pct)]},
        "reliability": [{"false_alarms": false_alarms, "days": 30.0, "shutdowns": 12, "operations": 30}],
    }


def test_targets_met_checks_each_target() -> None:
    assert all(leak.targets_met(_record()).values())
    assert leak.targets_met(_record(loc_1pct=2.01)) == {
        "detect_1pct_10min": True,
        "detect_0p5pct_60min": True,
        "no_false_alarm": True,
        "location_2km_at_1pct": False,
    }
    assert not leak.targets_met(_record(false_alarms=1))["no_false_alarm"]
    assert not leak.targets_met(_record(tta_1pct=10.5))["detect_1pct_10min"]
    missed = _record()
    missed["tables"]["steady"][1]["detected"] = 9
    assert not leak.targets_met(missed)["detect_1pct_10min"]
    assert not leak.targets_met(missed)["location_2km_at_1pct"]


def _fake_run(headline: dict[str, Any], secondary: dict[str, Any]) -> Any:
    def run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        variants = {leak.HEADLINE: headline, "exact": secondary}
        for record in variants.values():
            record["targets_met"] = leak.targets_met(record)
            record["tables"].update({"after_speed_change": [], "shut_in": []})
        return {"variants": variants, "seconds": {"total": 0.0}}

    return run


@pytest.mark.parametrize(
    ("headline", "secondary", "status"),
    [
        (_record(), _record(), 0),
        (_record(loc_1pct=2.2), _record(), 1),  # the mismatched twin misses: 1 even if the exact one meets
        (_record(), _record(loc_1pct=2.2), 0),  # the exact twin does not decide
    ],
)
def test_exit_status_follows_the_headline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, headline: dict[str, Any], secondary: dict[str, Any], status: int
) -> None:
    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path))
    monkeypatch.setattr(leak, "run", _fake_run(headline, secondary))
    assert leak.main(["--sweep-scales", ""]) == status
    written = json.loads((tmp_path / "bench" / "leak.json").read_text())
    assert written["result"]["exit_status"] == status
    assert written["result"]["targets_met"] == leak.targets_met(headline)


def test_exit_status_two_on_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("simulator failed")

    monkeypatch.setenv("PUMPTWIN_HOME", str(tmp_path))
    monkeypatch.setattr(leak, "run", broken)
    assert leak.main(["--sweep-scales", ""]) == 2


def test_needed_scale_is_the_largest_scale_up_to_the_first_miss() -> None:
    rows = [
        {"scale": 0.5, "detected": 5, "runs": 5, "loc_err_max_km": 0.8},
        {"scale": 1.0, "detected": 5, "runs": 5, "loc_err_max_km": 1.5},
        {"scale": 2.0, "detected": 5, "runs": 5, "loc_err_max_km": 2.4},
        {"scale": 3.0, "detected": 5, "runs": 5, "loc_err_max_km": 1.9},  # a lucky draw after a miss
    ]
    assert leak.needed_scale(rows, "loc_err_max_km", 2.0) == 1.0
    assert leak.needed_scale(rows, "loc_err_max_km", 0.5) is None
    rows[0]["detected"] = 4
    assert leak.needed_scale(rows, "loc_err_max_km", 2.0) is None


def test_scaled_meters_scale_every_random_error() -> None:
    base, double = leak.scaled_meters(1.0), leak.scaled_meters(2.0)
    for name in ("flow_noise_frac", "flow_bias_frac", "flow_bias_span_frac", "flow_drift_frac", "pressure_noise_pa"):
        assert getattr(double, name) == pytest.approx(2.0 * getattr(base, name))
    assert double.pressure_positions_m == base.pressure_positions_m
    assert double.sample_s == base.sample_s


def test_headline_is_the_mismatched_twin() -> None:
    assert leak.HEADLINE == "mismatch"
    config = leak._config((0.0, 12_500.0, 25_000.0, 37_500.0, 50_000.0), leak.HEADLINE)
    assert config.line.wave_speed_m_s != leak.LINE.wave_speed_m_s
    assert config.line.roughness_m != leak.LINE.roughness_m
    assert not set(leak.DEV_METER_SEEDS) & {leak.METER_SEED + k for k in range(8)}
