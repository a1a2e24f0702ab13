"""The one base class of every pumptwin error.

Each package raises its own error class (`twin.hydraulic.network.NetworkError`,
`twin.whatif.scenarios.ScenarioError`, `features.store.StoreError`, ...). Every one of them derives
from `PumptwinError` and keeps its built-in base (mostly `ValueError`), so entry points catch
`PumptwinError` in one place and give one exit code and a one-line message, while
``except ValueError`` keeps working::

    class NetworkError(PumptwinError, ValueError):
        '''A network that cannot be read or solved; the message names the element.'''
"""

from __future__ import annotations


class PumptwinError(Exception):
    """Base of every error pumptwin raises on purpose; the message names the bad value and where it is."""
