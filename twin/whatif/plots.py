"""Figures of what-if results, drawn with matplotlib (imported lazily, Agg backend) and saved as PNG.

- `plot_pump_curves`: per pump curve (one panel per head curve), head and efficiency
  against flow at each scenario's speed (affinity laws: Q ~ s, H ~ s^2, efficiency at the
  homologous flow), with each scenario's operating points marked.
- `plot_pressure_profile`: gauge pressure along the line's main path against chainage, one
  line per scenario, with the MAOP as a step line, each assessed feature's usable safe pressure
  as a point at its chainage (a feature over it in a scenario marked again with a cross in that
  scenario's colour) and the elevation on a second axis; `pressure_profile_figure` draws it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pumptwin.twin.hydraulic.metrics import pump_assets
from pumptwin.twin.hydraulic.solver import HydraulicModel
from pumptwin.twin.units import M3H_PER_M3S
from pumptwin.twin.whatif.report import WhatIfReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot() -> Any:  # noqa: ANN401 - the pyplot module
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return out


def plot_pump_curves(model: HydraulicModel, report: WhatIfReport, path: str | Path) -> Path:
    """Head and efficiency against flow for each head curve, at each scenario's speeds, with operating points.

    Args:
        model: The compiled network the report was solved on.
        report: Results from `twin.whatif.assess`.
        path: PNG file to write.

    Returns:
        The path written.
    """
    from pumptwin.twin.hydraulic.pumps import fit_head_curve

    plt = _pyplot()
    net = model.network
    assets = pump_assets(model)
    groups: dict[str, list[int]] = {}
    for i, pump in enumerate(net.pumps):
        if pump.head_curve is not None:
            groups.setdefault(pump.head_curve, []).append(i)
    ncol = max(len(groups), 1)
    fig, axes = plt.subplots(1, ncol, figsize=(6.0 * ncol, 4.5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (curve_id, members) in zip(axes[0], groups.items(), strict=False):
        curve = fit_head_curve(net.curve(curve_id), curve_id)
        eff = assets.efficiency[members[0]]
        ax2 = ax.twinx() if eff is not None else None
        q_max = curve.max_flow_m3s(1.0)
        for s_i, outcome in enumerate(report.outcomes):
            if outcome.status == "disconnected":
                continue
            colour = colours[s_i % len(colours)]
            points = [outcome.pumps[i] for i in members if outcome.pumps[i].running]
            for speed in sorted({round(p.speed, 4) for p in points}):
                q = np.linspace(0.0, q_max * speed, 60)
                ax.plot(q * M3H_PER_M3S, curve.head_m(q, speed), color=colour, lw=1.0, alpha=0.7)
                if ax2 is not None and eff is not None:
                    ax2.plot(q * M3H_PER_M3S, 100 * eff.efficiency(q, speed), color=colour, lw=0.8, ls=":", alpha=0.7)
            if points:
                ax.plot(
                    [p.flow_m3h for p in points],
                    [p.head_m for p in points],
                    "o",
                    color=colour,
                    label=outcome.name,
                )
        ax.set_title(f"{curve_id}: {', '.join(net.pumps[i].id for i in members)}")
        ax.set_xlabel("flow (m3/h)")
        ax.set_ylabel("head (m)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if ax2 is not None:
            ax2.set_ylabel("efficiency (%, dotted)")
            ax2.set_ylim(0, 100)
    handles, labels = axes[0][-1].get_legend_handles_labels()
    if handles:  # no running pump on the last curve: nothing to label
        axes[0][-1].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.12, 1.0))
    fig.suptitle(f"Pump curves and operating points: {report.network[:80]}", fontsize=9)
    return _save(fig, path)


SAFE_LABEL = "safe pressure (ILI features)"
"""Legend label of the features' usable safe pressures."""
OVER_LABEL = "{name}: feature over safe pressure"
"""Legend label of the features a scenario puts over their safe pressure."""


def plot_pressure_profile(report: WhatIfReport, path: str | Path) -> Path:
    """Gauge pressure along the main path per scenario, MAOP (step line), features' safe pressures, elevation.

    Args:
        report: Results from `twin.whatif.assess`.
        path: PNG file to write.

    Returns:
        The path written.
    """
    return _save(pressure_profile_figure(report), path)


def pressure_profile_figure(report: WhatIfReport) -> Figure:
    """The pressure-profile figure (see `plot_pressure_profile`); its first axes hold the pressures.

    Each assessed feature (``report.integrity``) is a point at its chainage and usable safe
    pressure (label `SAFE_LABEL`); the features a scenario puts over it are drawn again as crosses
    in the scenario's colour (label `OVER_LABEL`).
    """
    from pumptwin.twin.integrity.line import pressure_at_features
    from pumptwin.twin.units import M_PER_KM, PA_PER_MPA

    plt = _pyplot()
    fig: Figure
    fig, ax = plt.subplots(figsize=(10.0, 5.0))
    first = report.outcomes[0]
    limits = report.integrity
    has_features = limits is not None and len(limits) > 0
    for outcome in report.outcomes:
        if outcome.status == "disconnected":
            continue
        style = "--" if outcome.status != "ok" else "-"
        (line,) = ax.plot(outcome.chainage_km, outcome.profile_pressure_mpa, style, lw=1.2, label=outcome.name)
        if has_features and limits is not None:
            at = pressure_at_features(limits, outcome.chainage_km, outcome.profile_pressure_mpa)
            with np.errstate(invalid="ignore"):
                over = np.isfinite(at) & (at > limits.safe_pa / PA_PER_MPA)
            if over.any():
                ax.plot(
                    limits.chainage_m[over] / M_PER_KM,
                    limits.safe_pa[over] / PA_PER_MPA,
                    "X",
                    ms=8,
                    zorder=4,
                    color=line.get_color(),
                    label=OVER_LABEL.format(name=outcome.name),
                )
    if np.isfinite(first.maop_mpa).any():
        ax.plot(first.chainage_km, first.maop_mpa, color="red", lw=2.0, drawstyle="steps-post", label="MAOP")
    if has_features and limits is not None:
        ax.plot(
            limits.chainage_m / M_PER_KM,
            limits.safe_pa / PA_PER_MPA,
            "v",
            ms=4,
            color="darkred",
            ls="none",
            label=SAFE_LABEL,
        )
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_xlabel("chainage (km)")
    ax.set_ylabel("pressure (MPa g)")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.fill_between(first.chainage_km, first.elevation_m, float(np.min(first.elevation_m)), color="tan", alpha=0.3)
    ax2.set_ylabel("elevation (m)")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.08, 1.0))
    ax.set_title(f"Pressure along the line: {report.network[:80]}", fontsize=9)
    return fig
