"""Pipe integrity: in-line inspection lists, metal-loss assessment, corrosion growth, dig lists, safe pressures."""
