"""The one what-if path: scenarios on the calibrated twin (or the as-built network), written to a UTC folder.

`run_whatif` serves every caller: the ``pumptwin whatif`` command, the Prefect ``what-if`` flow
(`flows.what_if`) and the candidate responses of ``twin-sync`` (`flows.twin_sync_steps.respond_to_alerts`).
It

1. gathers the scenarios: declared specs, then a scenario file's, then one from command-line style
   flags (`twin.whatif.scenarios.scenario_from_flags`);
2. loads the network (the configured one, or the one given) and, when a saved calibration exists
   and the network is the configured one, applies it: the calibrated wear and friction of the line
   (`twin.health.estimation.calibrated_network`), the pumps as they ran in the calibration's last
   window (`twin.sync.operating_network`) and every pump's calibrated machine condition; otherwise
   it solves the as-built network and says why;
3. resolves the rated speed (given > the file's > the fleet registry's with a calibration >
   `DEFAULT_RATED_RPM`) and the ambient temperature (given > the file's > `DEFAULT_AMBIENT_C`; 0 degC
   is an ambient like any other), and uses that rated speed for rpm values and the surge check;
4. reads the line's latest integrity assessment (`twin.integrity.store.read_assessed` in
   ``settings.integrity_dir``) when there is one and the network is the configured one: every
   scenario's pressure (and the surge check's transient envelope) is checked against each
   feature's safe pressure times ``settings.integrity.margin``, and the derating (largest
   throughput and station discharge pressures that keep every feature safe) is reported;
   otherwise the report says integrity was not checked and why;
5. solves and assesses the scenarios in one batch (`twin.whatif.scenarios.run_scenarios`) and writes
   the markdown, JSON, tables and plots into a new folder ``<whatif_dir>/<UTC stamp>-<random suffix>``
   (`new_run_folder`: two runs never share one), or into the folder given.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pumptwin.flows.settings import Settings
from pumptwin.flows.twin_store import lines_registry, load_calibration
from pumptwin.twin.health.estimation import calibrated_network
from pumptwin.twin.hydraulic.io import load_network, reference_pipeline_path
from pumptwin.twin.hydraulic.network import Network
from pumptwin.twin.integrity.line import IntegrityLimits, integrity_limits
from pumptwin.twin.integrity.store import assessed_path, read_assessed
from pumptwin.twin.sync import machine_conditions, operating_network, rated_speeds_rpm
from pumptwin.twin.times import utc_stamp
from pumptwin.twin.whatif.report import WhatIfReport
from pumptwin.twin.whatif.scenarios import (
    BASE_NAME,
    DEFAULT_AMBIENT_C,
    DEFAULT_RATED_RPM,
    ScenarioError,
    ScenarioSet,
    ScenarioSpec,
    read_scenarios,
    run_scenarios,
    scenario_from_flags,
    transient_surge_check,
)

FOLDER_SUFFIX_BYTES = 3
"""Random bytes in a run folder's name after its UTC stamp (six hex digits)."""
FOLDER_ATTEMPTS = 16
"""Names tried for a new run folder before giving up."""
NO_CALIBRATION = "no calibration"
"""Why the as-built network was used: nothing is calibrated yet."""
NOT_ASKED = "calibration not asked for"
"""Why the as-built network was used: the caller asked for it."""
NO_ASSESSMENT = "integrity not checked (no ILI assessment)"
"""What the report says when the line has no integrity assessment."""
INTEGRITY_NOT_ASKED = "integrity not checked (not asked for)"
"""What the report says when the caller turned the integrity check off."""


@dataclass(frozen=True)
class WhatIfRun:
    """What-if results written to a folder.

    Attributes:
        report: The what-if report.
        folder: Where its files are.
        paths: Files by kind (``markdown``, ``json``, ``table``, ``pumps``, ``pump_curves``,
            ``pressure_profile``).
        calibrated_at: End of the calibration applied (UTC; None: the as-built network).
        line: The line the scenarios ran on, 1-based.
        as_built_reason: Why the as-built network was used (unused with a calibration).
        integrity: What was checked of the line's integrity (`integrity_basis`).
    """

    report: WhatIfReport
    folder: Path
    paths: dict[str, Path]
    calibrated_at: pd.Timestamp | None
    line: int = 1
    as_built_reason: str = NO_CALIBRATION
    integrity: str = NO_ASSESSMENT

    @property
    def twin(self) -> str:
        """What the scenarios ran on: ``calibrated twin (calibration of <UTC>)`` or ``as-built network (<why>)``."""
        return twin_basis(self.calibrated_at, self.as_built_reason)

    def to_markdown(self) -> str:
        """The scenario table, then the twin it ran on and the files (plots) written."""
        files = [f"- {kind}: `{path}`" for kind, path in self.paths.items()]
        body = whatif_markdown(self.report, twin=self.twin, line=self.line, integrity=self.integrity)
        return f"{body}\nFiles:\n\n" + "\n".join(files) + "\n"


def twin_basis(calibrated_at: pd.Timestamp | None, as_built_reason: str = NO_CALIBRATION) -> str:
    """One phrase naming what a what-if ran on (the calibration time in UTC, ISO 8601)."""
    if calibrated_at is None:
        return f"as-built network ({as_built_reason})"
    return f"calibrated twin (calibration of {calibrated_at.tz_convert('UTC').isoformat()})"


def load_integrity(settings: Settings, line: int = 1) -> IntegrityLimits | None:
    """The line's assessed features as limits (safe pressure times ``settings.integrity.margin``), None without.

    The limits' ``source`` names the assessment file and its modification time (UTC, ISO 8601).
    """
    frame = read_assessed(settings.integrity_dir, line)
    if frame is None:
        return None
    path = assessed_path(settings.integrity_dir, line)
    written = pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC").floor("s")
    return integrity_limits(frame, settings.integrity.margin, source=f"{path} (written {written.isoformat()})")


def integrity_basis(limits: IntegrityLimits | None, reason: str = NO_ASSESSMENT) -> str:
    """One phrase saying what was checked of the line's integrity: the features and assessment, or why not."""
    if limits is None:
        return reason
    return f"integrity checked: {len(limits)} features from {limits.source or 'the assessment'}"


def gather_specs(
    specs: Sequence[ScenarioSpec] = (),
    flags: Mapping[str, Any] | None = None,
    file: str | Path | None = None,
) -> tuple[list[ScenarioSpec], ScenarioSet | None]:
    """Scenarios from specs, a scenario file and command-line style flags, with the file read.

    Args:
        specs: Declared scenarios.
        flags: Keyword arguments of `twin.whatif.scenarios.scenario_from_flags` (one scenario).
        file: A scenario file (YAML, schema version 1).

    Returns:
        The scenarios (specs, then the file's, then the flags') and the file (None without one).

    Raises:
        ScenarioError: An invalid file or flag.
    """
    out = list(specs)
    loaded = read_scenarios(file) if file is not None else None
    if loaded is not None:
        out += list(loaded.scenarios)
    if flags:
        one = scenario_from_flags(**flags)
        if one is not None:
            out.append(one)
    return out, loaded


def _is_configured(network: str | Path | None, settings: Settings) -> bool:
    """Whether ``network`` (None: the configured one) is the network the twin is calibrated on."""
    if network is None:
        return True
    configured = settings.twin.network if settings.twin.network is not None else reference_pipeline_path()
    return Path(network).resolve() == Path(configured).resolve()


def run_whatif(  # noqa: PLR0913 - the knobs of one what-if study
    settings: Settings,
    specs: Sequence[ScenarioSpec] = (),
    *,
    flags: Mapping[str, Any] | None = None,
    file: str | Path | None = None,
    network: str | Path | None = None,
    line: int = 1,
    calibrated: bool = True,
    current_state: bool = True,
    ambient_c: float | None = None,
    rated_speed_rpm: float | None = None,
    surge: bool = False,
    out: Path | None = None,
    plots: bool = True,
    integrity: bool = True,
) -> WhatIfRun:
    """Evaluate scenarios on the calibrated twin (or the as-built network) and write table, JSON and plots.

    Args:
        settings: Settings (network, state folder, what-if folder, solver accuracy).
        specs: Declared scenarios.
        flags: Keyword arguments of `twin.whatif.scenarios.scenario_from_flags` (one more scenario).
        file: A scenario file (its rated speed, ambient, source and delivery apply).
        network: Network file (default the configured one); the calibration applies only to the
            configured network.
        line: Which line's calibration to apply, 1-based.
        calibrated: Apply the saved calibration when there is one (False: the as-built network).
        current_state: With a calibration, start from the pumps that ran in its last window, not
            from the network file's statuses.
        ambient_c: Ambient temperature, degC (default: the file's, else `DEFAULT_AMBIENT_C`).
        rated_speed_rpm: Rated speed of every pump, rpm (default: the file's, else the fleet's with
            a calibration, else `DEFAULT_RATED_RPM`); used for rpm values and the surge check.
        surge: Simulate the surge (method of characteristics) of scenarios with pump trips.
        out: Folder for the files (default a new ``<whatif_dir>/<UTC stamp>-<suffix>``, see `new_run_folder`).
        plots: Also draw the pump curves and the pressure profile.
        integrity: Check the line's integrity assessment when there is one (and the network is the
            configured one): safe pressures in every scenario, the surge envelope and the derating.

    Returns:
        The run: report, folder, files and what the scenarios ran on.

    Raises:
        ScenarioError: An invalid scenario, or one that names what the network lacks.
        NetworkError: An unreadable network file.
        ValueError: An unreadable calibration or a line it does not hold.
    """
    chosen, loaded = gather_specs(specs, flags, file)
    include_base = not any(s.name == BASE_NAME for s in chosen)
    if not chosen and not include_base:
        raise ScenarioError("no scenarios to run")
    network_file = network if network is not None else settings.twin.network
    as_built = load_network(network_file)
    reason = NO_CALIBRATION
    if not calibrated:
        reason = NOT_ASKED
    elif not _is_configured(network, settings):
        reason = f"the calibration is of the configured network, not {Path(network or '').name}"
    cal = load_calibration(settings) if reason == NO_CALIBRATION else None
    if cal is not None and cal.ts is None:
        cal = None
    rated: float | dict[str, float] = DEFAULT_RATED_RPM
    conditions = None
    net = as_built
    if cal is not None:
        registry = lines_registry(network_file, max(cal.lines, default=1))
        start = operating_network(as_built, cal, line) if current_state else as_built
        net = calibrated_network(start, cal, line)
        conditions = machine_conditions(cal, registry, as_built, line)
        rated = rated_speeds_rpm(registry, line)
    if loaded is not None and loaded.rated_speed_rpm is not None:
        rated = loaded.rated_speed_rpm
    if rated_speed_rpm is not None:
        rated = rated_speed_rpm
    if ambient_c is None:
        ambient_c = loaded.ambient_c if loaded is not None and loaded.ambient_c is not None else DEFAULT_AMBIENT_C
    limits, why_not = None, INTEGRITY_NOT_ASKED
    if integrity and not _is_configured(network, settings):
        why_not = f"integrity not checked (the assessment is of the configured line, not {Path(network or '').name})"
    elif integrity:
        limits, why_not = load_integrity(settings, line), NO_ASSESSMENT
    report = run_scenarios(
        net,
        chosen,
        rated_speed_rpm=rated,
        ambient_c=ambient_c,
        conditions=conditions,
        source=loaded.source if loaded is not None else None,
        delivery=loaded.delivery if loaded is not None else None,
        accuracy=settings.twin.accuracy,
        include_base=include_base,
        surge_check=transient_surge_check(
            rated_speed_rpm=rated, max_memory_mb=settings.twin.max_memory_mb, integrity=limits
        )
        if surge
        else None,
        max_memory_mb=settings.twin.max_memory_mb,
        integrity=limits,
        derating=limits is not None,
    )
    folder = out if out is not None else new_run_folder(settings.whatif_dir)
    calibrated_at = cal.ts if cal is not None else None
    checked = integrity_basis(limits, why_not)
    paths = write_whatif(
        report, net, folder, twin=twin_basis(calibrated_at, reason), line=line, plots=plots, integrity=checked
    )
    return WhatIfRun(report, folder, paths, calibrated_at, line, reason, checked)


OUTPUT_FILES: dict[str, str] = {
    "markdown": "whatif.md",
    "json": "whatif.json",
    "table": "whatif.csv",
    "pumps": "pumps.csv",
    "pump_curves": "pump_curves.png",
    "pressure_profile": "pressure_profile.png",
}
"""The files a what-if writes into its folder, by kind."""


def new_run_folder(parent: Path, *, attempts: int = FOLDER_ATTEMPTS) -> Path:
    """Create and return a new folder ``<parent>/<UTC stamp>-<random suffix>`` that no other run has.

    The stamp is to the microsecond and the suffix random, and the folder is created with
    ``exist_ok=False``, so two runs started in the same instant (two processes, or a clock that
    does not move) get different folders; a name already taken is retried with a new suffix.

    Args:
        parent: The folder of the runs (created when missing).
        attempts: Names tried before giving up.

    Returns:
        The new, empty folder.

    Raises:
        FileExistsError: When every name tried is taken.
    """
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        folder = parent / f"{utc_stamp()}-{secrets.token_hex(FOLDER_SUFFIX_BYTES)}"
        try:
            folder.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{parent}: no free run folder after {attempts} attempts")


def whatif_dict(report: WhatIfReport, *, twin: str, line: int, integrity: str | None = None) -> dict[str, Any]:
    """The JSON of a what-if: the report's, with the twin it ran on, the line and what of its integrity was checked."""
    out = {**report.to_dict(), "twin": twin, "line": line}
    if integrity is not None:
        out["integrity_check"] = integrity
    return out


def whatif_markdown(report: WhatIfReport, *, twin: str, line: int, integrity: str | None = None) -> str:
    """The markdown of a what-if: the report's table, then the line, the twin it ran on and its integrity check."""
    checked = f" {integrity[0].upper()}{integrity[1:]}." if integrity else ""
    return f"{report.to_markdown().rstrip()}\n\nLine {line}, {twin}.{checked}\n"


def write_whatif(  # noqa: PLR0913 - what a what-if's files say
    report: WhatIfReport,
    network: Network,
    folder: Path,
    *,
    twin: str,
    line: int = 1,
    plots: bool = True,
    integrity: str | None = None,
) -> dict[str, Path]:
    """Write a report's markdown, JSON, tables and (optionally) plots into ``folder``.

    Args:
        report: The what-if report.
        network: The network the scenarios were solved on (for the pump curves).
        folder: Where to write (created).
        twin: What the scenarios ran on (`twin_basis`).
        line: The line, 1-based.
        plots: Also draw the pump curves and the pressure profile.
        integrity: What of the line's integrity was checked (`integrity_basis`; None: not said).

    Returns:
        Files by kind (``markdown``, ``json``, ``table``, ``pumps``, ``pump_curves``, ``pressure_profile``).
    """
    from pumptwin.twin.hydraulic.solver import compile_network

    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / OUTPUT_FILES[kind] for kind in ("markdown", "json", "table", "pumps")}
    paths["markdown"].write_text(whatif_markdown(report, twin=twin, line=line, integrity=integrity), encoding="utf-8")
    text = json.dumps(whatif_dict(report, twin=twin, line=line, integrity=integrity), indent=1)
    paths["json"].write_text(text, encoding="utf-8")
    report.to_frame().to_csv(paths["table"])
    report.pumps_frame().to_csv(paths["pumps"], index=False)
    if plots:
        from pumptwin.twin.whatif.plots import plot_pressure_profile, plot_pump_curves

        curves, profile = folder / OUTPUT_FILES["pump_curves"], folder / OUTPUT_FILES["pressure_profile"]
        paths["pump_curves"] = plot_pump_curves(compile_network(network), report, curves)
        paths["pressure_profile"] = plot_pressure_profile(report, profile)
    return paths
