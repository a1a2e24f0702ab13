"""The one Darcy friction factor (`twin.hydraulic.friction`) against closed forms and the solver's kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pumptwin.twin.hydraulic._kernels import _friction_factor
from pumptwin.twin.hydraulic.friction import LAMINAR_RE, TURBULENT_RE, darcy_friction_factor


def test_laminar_is_64_over_re_and_no_flow_is_no_friction() -> None:
    assert float(darcy_friction_factor(1000.0, 1e-4)) == pytest.approx(0.064)
    assert float(darcy_friction_factor(-1000.0, 1e-4)) == pytest.approx(0.064)  # the sign is the flow's
    assert float(darcy_friction_factor(0.0, 1e-4)) == 0.0


def test_turbulent_is_swamee_jain_written_out() -> None:
    for re, e in ((1e5, 1e-4), (2e6, 5e-5), (TURBULENT_RE, 1e-3)):
        by_hand = 0.25 / math.log10(e / 3.7 + 5.74 / re**0.9) ** 2
        assert float(darcy_friction_factor(re, e)) == pytest.approx(by_hand, rel=1e-12)


def test_transition_joins_both_regimes() -> None:
    e = 2e-4
    below, above = darcy_friction_factor([LAMINAR_RE, TURBULENT_RE - 1e-6], e)
    assert below == pytest.approx(64.0 / LAMINAR_RE)
    assert above == pytest.approx(float(darcy_friction_factor(TURBULENT_RE, e)), rel=1e-6)
    assert float(darcy_friction_factor(LAMINAR_RE + 1e-6, e)) == pytest.approx(64.0 / LAMINAR_RE, rel=1e-6)


@pytest.mark.parametrize("relative_roughness", [1e-6, 1e-4, 1e-3, 1e-2])
def test_the_solver_kernel_uses_the_same_formula(relative_roughness: float) -> None:
    kinematic_viscosity_m2_s, diameter_m = 1.0e-6, 0.6
    s = kinematic_viscosity_m2_s * diameter_m
    reynolds = np.concatenate([np.linspace(2001.0, 3999.0, 37), np.geomspace(4000.0, 1e8, 41)])
    ours = darcy_friction_factor(reynolds, relative_roughness)
    for re, f in zip(reynolds, ours, strict=True):
        flow_m3s = re * math.pi / 4.0 * s  # Re = 4 q / (pi nu d)
        kernel, _ = _friction_factor(flow_m3s, relative_roughness, s, 1.0 / s)
        assert kernel == pytest.approx(float(f), rel=1e-9), re
