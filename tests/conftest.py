"""Shared test setup: offline environment, per-session state folder, and no network.

Environment variables that libraries read at import (numba, matplotlib, Hugging Face, Prefect)
are set here, at conftest import, before any test module imports them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pumptwin.flows.settings import OFFLINE_ENVIRONMENT

REPO_ROOT = Path(__file__).resolve().parent.parent

for _name, _value in OFFLINE_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
# Persistent across runs, so numba compiles each kernel once per machine, not once per session.
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO_ROOT / ".pumptwin" / "numba"))
# One OpenMP thread per test process: scikit-learn's gradient boosting otherwise spins a thread per
# core and, on a busy machine, spends most of its time waiting for them.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Headless plotting; effective for any later `import matplotlib`.
os.environ["MPLBACKEND"] = "Agg"
if "matplotlib" in sys.modules:  # imported before this file (by a plugin): switch it too
    sys.modules["matplotlib"].use("Agg")


class NetworkBlockedError(RuntimeError):
    """A unit test tried to open a connection to a non-loopback address."""


def _is_loopback(address: Any) -> bool:
    """Return True for Unix sockets and loopback hosts (127.0.0.0/8, ::1, localhost)."""
    if not isinstance(address, tuple):  # AF_UNIX path or abstract name
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:  # a host name other than localhost
        return False


@pytest.fixture(scope="session", autouse=True)
def pumptwin_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point `PUMPTWIN_HOME` at a fresh folder for the whole session."""
    home = tmp_path_factory.mktemp("pumptwin-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PUMPTWIN_HOME", str(home))
        yield home


@pytest.fixture(autouse=True)
def block_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make connections to non-loopback addresses raise, except in `integration` tests.

    Loopback stays open for in-process servers (a local Prefect API, MLflow, Qdrant).
    """
    if request.node.get_closest_marker("integration") is not None:
        return
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            raise NetworkBlockedError(f"unit tests may not reach the network (connect to {address!r})")
        real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            raise NetworkBlockedError(f"unit tests may not reach the network (connect to {address!r})")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
