"""Hydraulic core: the network model, EPANET import, pump curves, the batched solver and extended period."""
