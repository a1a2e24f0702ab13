"""The control interface: what the closed loop may read from the plant's control system and write to it.

Speeds are relative to the pump's rated speed (1.0 = rated), as in the twin and the recommender;
an implementation converts to the units of its system (rpm on the tags ``STATION.PUMP.SPEED_SP``).
Tags are named as the historian names them (``PS01.P1.BRG_DE_TEMP``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pumptwin.twin.errors import PumptwinError

WriteKind = Literal["speed", "start", "stop", "valve"]


class ControlError(PumptwinError, RuntimeError):
    """A write the control system refused, or a read it could not answer; the message names the target."""


class ConnectionLost(ControlError):
    """The link to the control system dropped; a write in flight is unconfirmed until it is read back."""


@dataclass(frozen=True)
class Write:
    """One write to the control system.

    Attributes:
        target: Pump (``PS01.P1``) or valve id.
        kind: ``speed`` (relative speed setpoint), ``start``, ``stop`` or ``valve`` (opening 0-1).
        value: Relative speed for ``speed``, opening for ``valve``; ignored for ``start``/``stop``.
    """

    target: str
    kind: WriteKind
    value: float = float("nan")


@runtime_checkable
class Controller(Protocol):
    """A control system the closed loop can read and write."""

    def read(self, tags: Sequence[str]) -> dict[str, float]:
        """Latest value of each tag, in the tag's engineering unit (NaN when none yet)."""
        ...

    def speed_setpoint(self, pump: str) -> float:
        """The pump's current speed setpoint, relative to rated."""
        ...

    def running(self, pump: str) -> bool:
        """Whether the pump is running."""
        ...

    def apply(self, write: Write) -> None:
        """Send one write; raises `ControlError` when refused, `ConnectionLost` when the link drops."""
        ...

    def wait(self, seconds: float) -> None:
        """Let the plant respond for ``seconds`` (simulated time on the simulator, real time on a live link)."""
        ...
