"""Where the living twin's saved calibration and state live under the settings' state folder.

`flows.twin_sync_steps` writes them; `flows.what_if_steps` reads the calibration to run what-ifs on
the calibrated twin; the demo reads the state. Files: ``<state_dir>/calibration.json``,
``<state_dir>/state.json`` and ``<state_dir>/state.md``.

What is read (the calibration, the state, and the registry of the network's lines that goes with
them, `lines_registry`) is parsed once per process while the files' content stays the same, and
the latest version of each is kept for the process's life.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pumptwin.flows.settings import Settings
from pumptwin.twin.assets import Registry, build_registry
from pumptwin.twin.health.estimation import TwinCalibration
from pumptwin.twin.health.io import read_calibration, read_state
from pumptwin.twin.health.state import TwinState
from pumptwin.twin.hydraulic.io import load_network, reference_pipeline_path

CALIBRATION_FILE = "calibration.json"
STATE_FILE = "state.json"
STATE_MARKDOWN = "state.md"

T = TypeVar("T")
_loaded: dict[tuple[str, ...], tuple[tuple[tuple[int, ...], ...], tuple[bytes, ...], object]] = {}
_loaded_lock = threading.Lock()


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
    return _read_once((str(path),), (path,), lambda: read_calibration(path)) if path.is_file() else None


def load_twin(settings: Settings) -> tuple[TwinCalibration | None, TwinState | None]:
    """The saved calibration and state (None for what is not saved yet).

    Raises:
        ValueError: An unreadable saved file (the message names it).
    """
    paths = state_paths(settings)
    cal = load_calibration(settings)
    path = paths["state"]
    if not path.is_file():
        return cal, None
    return cal, _read_once((str(path),), (path, paths["calibration"]), lambda: read_state(path, cal))


def lines_registry(network: str | Path | None, n_lines: int) -> Registry:
    """The registry of ``n_lines`` copies of the network in the file ``network`` (`build_registry`).

    Built once per process for each content of the network file and its sidecar and each line
    count (every line's what-ifs and recommendation of a cycle need it; building it is linear
    in the fleet). None is the packaged reference pipeline, as for `load_network`.

    Raises:
        NetworkError: An unreadable network file.
        RegistryError: A network without pumps.
    """
    path = Path(network) if network is not None else reference_pipeline_path()
    files = (path, path.with_suffix(".yaml"))
    return _read_once((str(path), str(n_lines)), files, lambda: build_registry(load_network(path), n_lines))


def _stat_key(path: Path) -> tuple[int, ...]:
    """The file's identity, size and times (ns); empty when it is missing."""
    try:
        st = path.stat()
    except OSError:
        return ()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _digest(path: Path) -> bytes:
    """A digest of the file's bytes (empty when it cannot be read)."""
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except OSError:
        return b""


def _read_once(name: tuple[str, ...], paths: tuple[Path, ...], read: Callable[[], T]) -> T:
    """``read()``, or what it gave the last time under ``name`` while none of ``paths`` has changed since.

    A fleet's calibration and state are read by every line's what-ifs and recommendation of a
    cycle; parsing them each time made each line's work grow with the fleet. A file is taken as
    unchanged while its inode, size and times are (a save writes a new file and renames it over
    the old one), or, when those moved, while a digest of its bytes is the same. What is read is
    frozen (`TwinCalibration`, `TwinState`, `Registry`), so the one object is shared; only the
    latest version per name is kept.
    """
    stats = tuple(_stat_key(p) for p in paths)
    with _loaded_lock:
        hit = _loaded.get(name)
    if hit is not None and hit[0] == stats:
        return hit[2]  # type: ignore[return-value]
    digests = tuple(_digest(p) for p in paths)
    if hit is not None and hit[1] == digests:
        with _loaded_lock:
            _loaded[name] = (stats, digests, hit[2])
        return hit[2]  # type: ignore[return-value]
    value = read()
    if tuple(_stat_key(p) for p in paths) == stats:  # not rewritten while being read
        with _loaded_lock:
            _loaded[name] = (stats, digests, value)
    return value
