"""Surge: method-of-characteristics transients of a liquid line, Joukowsky and 2L/a checks."""
