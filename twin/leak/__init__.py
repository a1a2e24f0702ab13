"""Leak detection: mass balance, pressure-point analysis and location on a liquid line."""
