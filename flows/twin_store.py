"""Where the living twin's saved calibration and state live under the settings' state folder.

`flows.twin_sync_steps` writes them; `flows.what_if_steps` reads the calibration to run what-ifs on
the calibrated twin; the demo reads the state. Files: ``<state_dir>/calibration.json``,
``<state_dir>/state.json`` and ``<state_dir>/state.md``.
"""

from __future__ import annotations

from pathlib import Path

from pumptwin.flows.settings import Settings
from pumptwin.twin.health.estimation import TwinCalibration
from pumptwin.twin.health.io import read_calibration, read_state
from pumptwin.twin.health.state import TwinState

CALIBRATION_FILE = "calibration.json"
STATE_FILE = "state.json"
STATE_MARKDOWN = "state.md"


def state_paths(settings: Settings) -> dict[str, Path]:
    """Where the twin's calibration and state live, by kind (``calibration``, ``state``, ``state_md``)."""
    folder = settings.state_dir
    return {
        "calibration": folder / CALIBRATION_FILE,
        "state": folder / STATE_FILE,
        "state_md": folder / STATE_MARKDOWN,
    }


def load_calibration(settings: Settings) -> TwinCalibration | None:
    """The saved calibration (None before the first synchronisation).

    Raises:
        ValueError: An unreadable calibration file (the message names it).
    """
    path = state_paths(settings)["calibration"]
    return read_calibration(path) if path.is_file() else None


def load_twin(settings: Settings) -> tuple[TwinCalibration | None, TwinState | None]:
    """The saved calibration and state (None for what is not saved yet).

    Raises:
        ValueError: An unreadable saved file (the message names it).
    """
    paths = state_paths(settings)
    cal = load_calibration(settings)
    state = read_state(paths["state"], cal) if paths["state"].is_file() else None
    return cal, state
