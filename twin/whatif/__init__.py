"""What-ifs: declarative scenarios solved on the (calibrated) twin, their margins, limits and plots."""
