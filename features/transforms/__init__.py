"""Per-pump features from historian readings: rolling statistics and physics residuals.

`pump_features` turns the tag table (``tag, ts, value, quality``; tags ``STATION.ASSET.MEASURE``)
into one row per pump and time on a regular grid (``pump_id`` ``PS01.P1``, ``event_timestamp`` a
multiple of the cadence, UTC, microseconds), with float64 feature columns only. Everything is
vectorised: samples are binned once into cadence intervals, and every window statistic comes from
running sums of per-bin power sums, so a month of a 20-station fleet takes seconds.

Cleaning
    Rows whose quality is not ``good`` or ``substituted``, whose value is not finite or lies
    outside the tag's physical range in the registry (as validation would quarantine it), are
    dropped; a repeated (tag, ts) keeps its last row; order does not matter. Tags of pumps that
    are not in the registry, and measures not listed here, are ignored. A pump without a reading
    gives no rows; a missing measure gives NaN in its columns.

Causal windows
    The row at time T uses the samples with T - W < ts <= T for a window W (a whole number of
    cadence intervals). Per measure and window: ``mean``, ``std`` (sample, ddof 1), ``max``,
    ``kurt`` (excess kurtosis, population moments; NaN below 4 samples or with no spread) and
    ``slope_per_h`` (least-squares slope against time, units per hour). The process measures
    (speed, flow, pressures, motor power and current, vibration, strainer loss) use only the
    samples of cadence intervals in which the pump was running (``STATUS`` mean >= 0.5, or speed
    above 5 % of rated when ``STATUS`` is missing), so a stop does not read as spread; the
    temperatures and the seal leak use every sample. ``running_frac_<w>`` is the mean ``STATUS``
    (0..1) over the window. Columns are named ``<measure>_<unit>_<stat>_<window>``, e.g.
    ``vib_de_rms_mm_s_mean_1h``, ``brg_de_temp_c_slope_per_h_24h``.

Physics residuals (at T, from the means of the last cadence interval (T - cadence, T])
    With flow q (m3/s), relative speed s = rpm / rated rpm, suction and discharge gauge pressures
    p_s, p_d (Pa), density rho and g from the network:

    - ``head_residual_m`` = (p_d - p_s) / (rho g) - H(q, s), where H is the rated head curve by
      affinity, s^2 h0 - r s^(2-n) q^n (`twin.pumps.HeadCurve`); ``head_residual_pct`` is it as a
      percentage of H. The velocity-head and gauge-elevation differences are neglected.
    - ``power_residual_kw`` = measured motor power - rho g q H(q, s) / eta(q, s) / eta_motor,
      eta the rated efficiency curve by affinity eta(q / s) (0.75 without a curve) and eta_motor
      the motor's rated efficiency; ``power_residual_pct`` relative to the expected power.
    - ``efficiency_residual`` = rho g q (p_d - p_s)/(rho g) / (P_motor eta_motor) - eta(q, s)
      (fraction).
    - ``npsh_available_m`` = p_s / (rho g) + (p_atm - p_vap) / (rho g) + v^2 / (2 g), v the
      velocity in the suction pipe; ``npsh_margin_m`` = NPSHa - s^2 NPSHr(q / s) (NaN without an
      NPSHr curve). The suction pressure is read after the strainer, so a clogging strainer lowers
      the margin.
    - ``percent_bep`` = 100 q / (s q_BEP).
    - ``brg_de_rise_norm_k``, ``brg_nde_rise_norm_k``: bearing temperature minus station ambient
      (``PSnn.SITE.AMBIENT_TEMP``, carried forward up to an hour) over the friction-heat load
      s^1.5 (0.6 + 0.4 (1 + 1.5 (q/q_BEP(s) - 1)^2)): constant for a healthy bearing across speed
      and flow, in K.
    - ``winding_rise_norm_k``: winding minus ambient over 0.25 + 0.75 (I / I_rated)^2, in K.
    - ``vib_de_baseline_ratio``, ``vib_nde_baseline_ratio``: vibration over its expected value at
      the same operating point. Expected = s^1.5 x the median of vib / s^1.5 in the pump's own
      reference period (its first `VIB_BASELINE_S` of running data in the frame), per 10 %-wide
      bin of %BEP (a bin with fewer than `MIN_BASELINE_BINS` intervals falls back to the pump's
      median over all bins). A robust median per bin needs no model form and tolerates outliers;
      the speed factor spans imbalance (s^2) and misalignment (s). Inside the reference period
      the ratio is in-sample. Features built window by window should use one fixed reference:
      fit it once with `vibration_baseline` on healthy history and pass it as ``vib_baseline``.

    Residuals are NaN when the pump is not running through the whole interval (``STATUS`` mean
    below 0.99), at speed below 5 % of rated, at zero flow or when an input is missing, so a stop
    never produces a residual. Each residual also has causal window means (``_mean_1h``,
    ``_mean_24h``) over the intervals where it is defined.

The column lists are fixed by the window lengths (`feature_names`, `feature_groups`); the Feast
definitions use the same lists.
"""
