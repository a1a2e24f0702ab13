"""Benchmarks and reference runners: external solvers that the project's own hydraulics are measured against."""
