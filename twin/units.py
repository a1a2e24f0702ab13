"""Physical constants and unit factors: the one place each is written down.

Inside pumptwin every quantity is SI (m, s, kg, Pa, m3/s, W); tags and reports use the plant's
units (bar, m3/h, kW, mm/s, degC). A factor is named ``<UNIT>_<SI UNIT>``-style for what one unit
is worth: ``PA_PER_BAR`` Pa in a bar, so ``pressure_pa = pressure_bar * PA_PER_BAR`` and
``flow_m3h = flow_m3s * M3H_PER_M3S``.
"""

from __future__ import annotations

# --- gravity and water --------------------------------------------------------------------------
G_M_S2 = 9.80665
"""Standard gravity for pressures and power, m/s2."""
FT_M = 0.3048
"""One foot, m."""
IN_M = 0.0254
"""One inch, m."""
MM_PER_M = 1e3
"""mm in one m."""
G_EPANET_M_S2 = 32.2 * FT_M
"""Gravity EPANET 2.2 uses in its head-loss formulas (32.2 ft/s2), m/s2."""
WATER_DENSITY_KG_M3 = 998.2
"""Density of water at 20 degC, kg/m3."""
WATER_VAPOUR_PRESSURE_PA = 2_339.0
"""Absolute vapour pressure of water at 20 degC, Pa."""
WATER_VISCOSITY_M2_S = 1.1e-5 * FT_M**2
"""EPANET's reference kinematic viscosity (water at 20 degC, 1.1e-5 ft2/s), m2/s."""
ATMOSPHERIC_PRESSURE_PA = 101_325.0
"""Standard atmospheric pressure, Pa."""

# --- time ---------------------------------------------------------------------------------------
MINUTE_S = 60.0
"""Seconds in a minute."""
HOUR_S = 3_600.0
"""Seconds in an hour."""
DAY_S = 86_400.0
"""Seconds in a day."""
WEEK_S = 7 * DAY_S
"""Seconds in a week."""

# --- pressure, flow, power ----------------------------------------------------------------------
PA_PER_BAR = 1e5
"""Pa in one bar."""
PA_PER_KPA = 1e3
"""Pa in one kPa."""
PA_PER_MPA = 1e6
"""Pa in one MPa."""
PA_PER_PSI = 6_894.757293168361
"""Pa in one psi (lbf/in2)."""
M3H_PER_M3S = HOUR_S
"""m3/h in one m3/s (a flow in m3/s times this is in m3/h)."""
LPS_PER_M3S = 1e3
"""L/s in one m3/s."""
W_PER_KW = 1e3
"""W in one kW."""
J_PER_KWH = 3.6e6
"""J in one kWh (energy per volume in kWh/m3 is power in W over flow in m3/s over this)."""
M_PER_KM = 1e3
"""m in one km."""

# --- temperature --------------------------------------------------------------------------------
KELVIN_AT_0C = 273.15
"""0 degC in K."""
FAHRENHEIT_AT_0C = 32.0
"""0 degC in degF."""
FAHRENHEIT_PER_KELVIN = 1.8
"""degF in one K of difference."""
