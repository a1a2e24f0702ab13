"""The Prefect ``what-if`` flow: scenarios entered in the Prefect UI, evaluated on the calibrated twin.

Deployed from ``prefect.yaml`` as ``flows/what_if.py:what_if``. Its parameters are simple
typed values an operator types into the run form (a flow change in %, a speed per pump, lists of
pumps to stop, start, switch to standby or trip, a leak's chainage and size, a suction pressure
drop, a scenario file, an ambient temperature, a rated speed, the surge check); they make one
scenario, run after the base case (and after the file's scenarios) by the one what-if path,
`flows.what_if_steps.run_whatif`, that ``pumptwin whatif`` also calls. The run publishes a
markdown artifact (``what-if``) with the scenario table, what it ran on (the calibrated twin and
its calibration time, or the as-built network), what of the line's integrity was checked (how many
assessed features, from which assessment file and its time, and the derating; or that there is no
ILI assessment) and the paths of the files and plots.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from pumptwin.flows.settings import get_settings
from pumptwin.flows.what_if_steps import run_whatif
from pumptwin.twin.whatif.scenarios import ScenarioError

run_whatif_task = task(name="run-whatif")(run_whatif)


def whatif_flags(  # noqa: PLR0913 - one argument per form field
    flow_change_pct: float | None = None,
    speeds: dict[str, float] | None = None,
    stop: list[str] | None = None,
    start: list[str] | None = None,
    standby: list[str] | None = None,
    trip: list[str] | None = None,
    leak_km: float | None = None,
    leak_m3h: float | None = None,
    suction_drop_bar: float | None = None,
) -> dict[str, Any]:
    """The form's values as `twin.whatif.scenarios.scenario_from_flags` arguments.

    Raises:
        ScenarioError: A leak with a chainage but no size, or a size but no chainage.
    """
    if (leak_km is None) != (leak_m3h is None):
        raise ScenarioError(f"a leak needs both leak_km and leak_m3h, got {leak_km} km and {leak_m3h} m3/h")
    return {
        "flow": None if flow_change_pct is None else f"{flow_change_pct:+g}%",
        "speed": [f"{pump}={factor:g}" for pump, factor in (speeds or {}).items()],
        "stop": stop or [],
        "start": start or [],
        "standby": standby or [],
        "trip": trip or [],
        "leak": [] if leak_km is None else [f"{leak_km:g}={leak_m3h:g}m3/h"],
        "suction_drop": None if suction_drop_bar is None else f"{suction_drop_bar:g}bar",
    }


@flow(name="what-if")
def what_if(  # noqa: PLR0913 - one parameter per form field
    flow_change_pct: float | None = None,
    speeds: dict[str, float] | None = None,
    stop: list[str] | None = None,
    start: list[str] | None = None,
    standby: list[str] | None = None,
    trip: list[str] | None = None,
    leak_km: float | None = None,
    leak_m3h: float | None = None,
    suction_drop_bar: float | None = None,
    scenario_file: str | None = None,
    line: int = 1,
    calibrated: bool = True,
    ambient_c: float | None = None,
    rated_speed_rpm: float | None = None,
    surge: bool = False,
    integrity: bool = True,
) -> dict[str, Any]:
    """Evaluate one scenario (and a scenario file's) against the base case on the calibrated twin.

    Args:
        flow_change_pct: Change of the delivered flow, % (e.g. -10).
        speeds: Speed factor on the current speed by pump id (``{"PS2-P2": 0.95}``).
        stop: Pumps to stop.
        start: Pumps to start.
        standby: Pumps to stop, each with a stopped pump of its station started.
        trip: Pumps that trip.
        leak_km: Chainage of a leak, km (with ``leak_m3h``).
        leak_m3h: Size of the leak, m3/h.
        suction_drop_bar: Suction pressure drop at the source, bar.
        scenario_file: Path of a scenario file (YAML, schema version 1).
        line: Which line's calibration to use, 1-based.
        calibrated: Use the saved calibration (False: the as-built network).
        ambient_c: Ambient temperature, degC (default: the file's, else 25; 0 is a valid ambient).
        rated_speed_rpm: Rated speed of every pump, rpm (default: the file's, else the fleet's).
        surge: Simulate the surge of scenarios with pump trips.
        integrity: Check the pressures against the safe pressures of the line's assessed features
            (when an assessment exists) and report the derating.

    Returns:
        The scenario names, whether all are within limits, the folder, what the scenarios ran on
        (``twin``), the calibration time (ISO 8601 UTC; None on the as-built network) and what of
        the line's integrity was checked (``integrity``).
    """
    settings = get_settings()
    flags = whatif_flags(flow_change_pct, speeds, stop, start, standby, trip, leak_km, leak_m3h, suction_drop_bar)
    run = run_whatif_task(
        settings,
        flags=flags,
        file=scenario_file,
        line=line,
        calibrated=calibrated,
        ambient_c=ambient_c,
        rated_speed_rpm=rated_speed_rpm,
        surge=surge,
        integrity=integrity,
    )
    create_markdown_artifact(key="what-if", markdown=run.to_markdown(), description="what-if")
    get_run_logger().info(
        "%d scenarios on the %s, within limits: %s, files in %s",
        len(run.report.outcomes),
        run.twin,
        run.report.within_limits,
        run.folder,
    )
    return {
        "scenarios": [o.name for o in run.report.outcomes],
        "within_limits": run.report.within_limits,
        "folder": str(run.folder),
        "twin": run.twin,
        "calibrated_at": None if run.calibrated_at is None else run.calibrated_at.isoformat(),
        "integrity": run.integrity,
    }
