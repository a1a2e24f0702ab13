"""Computational pipeline monitoring: compensated volume balance, CUSUM alarms, leak location and rate.

The detector sees only what the field sees: inlet and outlet flow meters and pressure
transmitters at known chainages, plus the twin's line model (length, diameter, roughness,
elevation profile, liquid and wave speed). It never reads a simulator's truth.

1. **Compensated volume balance.** For a window ``[t - W, t]``::

       I_W = (V_in - V_out - dLP) / W

   where ``V_in``, ``V_out`` are the metered volumes (trapezoid integrals of the flows) and
   ``LP = A / (rho a^2) * integral of p dx`` is the line pack (m3), taken from the measured
   pressures interpolated linearly between transmitters (held flat beyond the end ones). Windows
   of 1, 5, 15 and 60 min are evaluated every minute.
2. **Noise model learned on leak-free data** (`fit_noise_model`): the meters' systematic
   imbalance ``beta q + b0 r`` (relative and fixed bias; ``r`` is the share of the window with
   flow above the low-flow cut-off) by least squares on steady running periods; the
   spread ``sigma_W`` of each window's residual ``e_W = I_W - beta q - b0`` (robust scale on
   steady periods); the transient factor ``kappa_W``; the CUSUM thresholds. Nothing comes from
   knowledge of a leak.
3. **Transient tolerance.** The line-pack estimate is wrong while the pressure profile is
   changing (it is not linear between transmitters then). The unsteadiness at time t is
   ``tau(t)`` = the largest one-minute line-pack change over the preceding 5 min (m3); the
   residual's standard deviation is inflated to
   ``sqrt(sigma_W^2 + kappa_W^2 (tau(t)^2 + tau(t - W)^2) / W^2 + 2 (u q)^2)``, where the last
   term is the flow meters' stated long-term stability ``u`` (slow drift, which no window
   averages out and a short training run cannot see). Inflation depends on the
   window's two ends only, so once both ends are steady again a window that spans a start or a
   stop is trusted again: the long windows "catch up" on whatever happened during the transient.
4. **Sequential test.** A one-sided CUSUM per window on ``z = e_W / sigma_eff``:
   ``S = max(0, S + z - k_W)``; an alarm when ``S > h_W``. ``k_W`` and ``h_W`` come from the
   leak-free training run (its largest steady ``z`` and its largest ``S``, with margins). The time
   ``S`` last left zero is the estimated leak onset.
5. **Leak rate** = the residual imbalance averaged from onset (plus a settling time) to now.
6. **Leak location** by the hydraulic-gradient intersection: the upstream gradient starts at the
   inlet head and falls with the friction slope of the inlet flow, the downstream one ends at the
   outlet head with the slope of the (bias-corrected) outlet flow; they meet at the leak::

       x = (H_in - H_out - d - S_out L) / (S_in - S_out)

   with ``S(q) = c f q|q| / (2 g D A^2)`` (Darcy, Swamee-Jain) and ``c``, ``d`` calibrated on
   leak-free steady data. With a steady pre-leak baseline the location uses changes from it
   (biases and offsets cancel): by default the change of every transmitter's head is fitted with a
   profile that kinks at the leak, the flow meters' slope changes acting as priors, weighted by
   the spreads of head and flow changes learnt on leak-free data (`locate_leak_profile`), so
   intermediate transmitters confine the flow meters' errors to the leak's segment. Without a
   steady baseline (a leak just after a speed change) the heads are fitted the same way against
   the leak-free profile at the inlet flow, each segment calibrated on its own in training
   (`locate_leak_absolute`), which absorbs the line model's friction errors.

Bad data: a missing meter column, an unsorted or duplicated time index, or a streamed chunk that
does not start after the last reading already seen raise `LeakError`; rows
with a NaN in a meter column are dropped (integrals bridge short gaps linearly); a window that
contains a gap longer than ``max_gap_s`` is not evaluated (its CUSUM is held) and the status says
so. Units are SI: m, s, m3/s, Pa (gauge), kg/m3.

The code is split by concern: `pumptwin.twin.leak.model` (line model, meters, noise model,
configuration, status, input checks), `.balance` (windows, noise-model fit), `.location`
(gradient intersection, profile fit, pressure residuals) and `.monitor` (the streaming monitor and
frame helpers); this module gathers their public names.
"""

from __future__ import annotations

from pumptwin.twin.leak.balance import (
    fit_noise_model,
)
from pumptwin.twin.leak.location import (
    fit_kinked_profile,
    head_profile_residual,
    locate_leak,
    locate_leak_absolute,
    locate_leak_change,
    locate_leak_profile,
    pressure_residuals,
    profile_misfit,
)
from pumptwin.twin.leak.model import (
    DEFAULT_WINDOWS_S,
    LOCATION_METHODS,
    LeakConfig,
    LeakError,
    LeakStatus,
    LineModel,
    MeterLayout,
    NoiseModel,
    clean_readings,
    line_pack_weights,
)
from pumptwin.twin.leak.monitor import (
    AlarmSummary,
    LeakMonitor,
    monitor_frame,
    status_frame,
    summarise_alarm,
)

__all__ = [
    "AlarmSummary",
    "DEFAULT_WINDOWS_S",
    "LOCATION_METHODS",
    "LeakConfig",
    "LeakError",
    "LeakMonitor",
    "LeakStatus",
    "LineModel",
    "MeterLayout",
    "NoiseModel",
    "clean_readings",
    "fit_kinked_profile",
    "fit_noise_model",
    "head_profile_residual",
    "line_pack_weights",
    "locate_leak",
    "locate_leak_absolute",
    "locate_leak_change",
    "locate_leak_profile",
    "monitor_frame",
    "pressure_residuals",
    "profile_misfit",
    "status_frame",
    "summarise_alarm",
]
