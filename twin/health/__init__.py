"""Calibration and health: state estimation from tags, condition models learnt per asset, health index and alerts."""
