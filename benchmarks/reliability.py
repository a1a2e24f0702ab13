"""Benchmark: reliability of the command line and the raw store under hostile input, concurrency and kills.

``python -m benchmarks.reliability [--quick]`` (``make bench-reliability``) runs three parts and
writes ``<PUMPTWIN_HOME>/bench/reliability.json``:

1. A corpus of hostile inputs (CSV and Parquet files, EPANET files, what-if and plant scenario
   files, command-line values, a PI Web API that answers badly), each run as ``pumptwin ...`` in a
   subprocess with a fresh ``PUMPTWIN_HOME``, a timeout and a memory cap. Each case states the
   expected exit code (0 = all stored or within limits, 1 = rows quarantined or limits violated,
   2 = error, with a one-line ``error:`` message), optionally a fragment of stderr and a
   post-condition (rows stored or quarantined, nothing written outside the case's folder).
   Counted: wrong exit codes (timeouts included), tracebacks, failed post-conditions.
2. Concurrent ingest: several processes write overlapping readings (identical duplicates,
   single-writer updates, keys contested with different values, keys of their own) into one raw
   store, round after round. Counted: rows lost, rows doubled, values wrong, worker errors.
3. Kill and rerun: an ingest of a large CSV is killed (SIGKILL) at a seeded random moment (even
   seeds: anywhere in the run; odd seeds: once it has begun writing partitions) and run again.
   Counted against an uninterrupted ingest of the same file: rows lost, doubled or wrong,
   temporary files left, watermarks that disagree with the stored rows, unreadable stores.

The exit code is 0 only when every count is 0.
"""

from __future__ import annotations

import argparse
import http.server
import json
import math
import multiprocessing as mp
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CASE_TIMEOUT_S = 120.0
"""Wall-clock limit of one command of the corpus; a command killed by it counts as a wrong exit."""

MEMORY_CAP_BYTES = 4 * 1024**3
"""Address-space limit of every command the benchmark starts (RLIMIT_AS)."""

TRACEBACK = "Traceback (most recent call last)"

GOOD_TAGS = ("PS01.P1.SPEED", "PS01.P1.FLOW", "PS02.P2.SPEED")
"""Tags of the reference fleet with values inside their ranges (speed 1400 rpm, flow 900 m3/h)."""

GOOD_VALUES = {"PS01.P1.SPEED": 1400.0, "PS01.P1.FLOW": 900.0, "PS02.P2.SPEED": 1380.0}

SMALL_INP = """\
[JUNCTIONS]
;ID\tElev\tDemand
J1\t10\t0
J2\t12\t{demand}
J3\t8\t3

[RESERVOIRS]
;ID\tHead
SRC\t60

[PIPES]
;ID\tNode1\tNode2\tLength\tDiameter\tRoughness\tMinorLoss\tStatus
P1\tSRC\tJ1\t100\t300\t0.045\t0\tOpen
P2\tJ1\tJ2\t800\t250\t0.045\t0\tOpen
P3\tJ2\tJ3\t500\t250\t0.045\t0\tOpen

[OPTIONS]
 Units LPS
 Headloss D-W

[END]
"""
"""A small network fed by gravity: a reservoir and three junctions; ``demand`` in L/s at J2."""


# --------------------------------------------------------------------------------------------
# Running commands
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One finished (or killed) command.

    Attributes:
        code: Exit code; -9 when the command was killed for running past its timeout.
        stdout: Its standard output.
        stderr: Its standard error.
        seconds: Wall time.
        timed_out: True when it ran past its timeout and was killed.
    """

    code: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def traceback(self) -> bool:
        """True when a Python traceback appeared on stdout or stderr."""
        return TRACEBACK in self.stdout or TRACEBACK in self.stderr


def _limit_memory() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Cap the child's address space so that a bomb cannot take the machine."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))


def cli_env(home: Path, numba_cache: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a ``pumptwin`` subprocess: its own home, a shared numba cache, no historian.

    Args:
        home: The command's ``PUMPTWIN_HOME``.
        numba_cache: Folder of numba's compiled kernels, shared by all commands.
        extra: More variables to set.

    Returns:
        The environment.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUMPTWIN_")}
    env.update({"PUMPTWIN_HOME": str(home), "NUMBA_CACHE_DIR": str(numba_cache), "OMP_NUM_THREADS": "1"})
    env.update(extra or {})
    return env


def start_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start ``pumptwin ARGS`` in its own process group with the memory cap.

    Args:
        args: Arguments after ``pumptwin``.
        env: Its environment (see `cli_env`).
        cwd: Its working folder.

    Returns:
        The running process.
    """
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "pumptwin.flows.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        preexec_fn=_limit_memory,  # noqa: PLW1509 - a plain setrlimit, no locks
        start_new_session=True,
    )


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout_s: float = CASE_TIMEOUT_S) -> Run:
    """Run ``pumptwin ARGS`` to completion, killing its process group past `timeout_s`.

    Args:
        args: Arguments after ``pumptwin``.
        env: Its environment.
        cwd: Its working folder.
        timeout_s: Wall-clock limit, s.

    Returns:
        What it did.
    """
    t0 = time.perf_counter()
    proc = start_cli(args, env, cwd)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return Run(-9, out, err, time.perf_counter() - t0, timed_out=True)
    return Run(proc.returncode, out, err, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ctx:
    """Where a case runs.

    Attributes:
        work: The case's folder (its input files; the current folder of its commands).
        home: Its ``PUMPTWIN_HOME`` (inside `work`).
        base: A UTC midnight some days before now: the day of the case's readings.
        pi_url: Base URL of the local misbehaving PI Web API (``.../<mode>/piwebapi``).
    """

    work: Path
    home: Path
    base: pd.Timestamp
    pi_url: str = ""


Check = Callable[[Ctx, Run], str | None]
"""A post-condition: None when it holds, else what is wrong."""


@dataclass(frozen=True)
class Case:
    """One hostile input.

    Attributes:
        name: Short unique name.
        group: What it exercises (ingest, solve, whatif, plant, pi).
        build: Writes the input files under `Ctx.work` and returns the commands to run (arguments
            after ``pumptwin``); every command but the last must exit 0.
        expect: Accepted exit codes of the last command.
        stderr: A fragment its stderr must contain (case-insensitive), or None.
        check: A post-condition, or None.
        writes: Paths under `Ctx.work`, outside the home, the commands may create.
        env: Extra environment variables.
        timeout_s: Limit of each command, s.
        quick: Part of the ``--quick`` corpus.
    """

    name: str
    group: str
    build: Callable[[Ctx], list[list[str]]]
    expect: tuple[int, ...]
    stderr: str | None = None
    check: Check | None = None
    writes: tuple[str, ...] = ()
    env: Callable[[Ctx], dict[str, str]] | None = None
    timeout_s: float = CASE_TIMEOUT_S
    quick: bool = True


@dataclass
class CaseResult:
    """What one case did.

    Attributes:
        name: The case.
        group: Its group.
        code: Exit code of its last command (-9 when killed at the timeout).
        expected: Accepted exit codes.
        traceback: A traceback appeared in any command's output.
        seconds: Wall time of all its commands.
        timed_out: A command ran past its timeout.
        problems: Why the case failed (wrong code, missing stderr fragment, post-condition).
        stderr_tail: The end of the last command's stderr.
    """

    name: str
    group: str
    code: int
    expected: tuple[int, ...]
    traceback: bool
    seconds: float
    timed_out: bool = False
    problems: list[str] = field(default_factory=list)
    stderr_tail: str = ""

    @property
    def wrong_exit(self) -> bool:
        """True when the exit code was not an expected one (or the command timed out)."""
        return self.timed_out or self.code not in self.expected

    @property
    def ok(self) -> bool:
        """True when nothing was wrong."""
        return not self.problems and not self.traceback


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def _ts(base: pd.Timestamp, minute: int) -> str:
    return (base + pd.Timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def good_rows(base: pd.Timestamp, minutes: int, start: int = 0) -> list[str]:
    """Lines ``tag,ts,value,quality`` of valid readings, one per good tag and minute.

    Example: ``PS01.P1.SPEED,2026-11-24T00:00:00Z,1400.0,good``.
    """
    return [
        f"{tag},{_ts(base, m)},{GOOD_VALUES[tag] + (m % 7):.1f},good"
        for m in range(start, start + minutes)
        for tag in GOOD_TAGS
    ]


def long_csv(rows: list[str]) -> str:
    """A long CSV with the header ``tag,ts,value,quality`` and the given lines."""
    return "tag,ts,value,quality\n" + "".join(f"{r}\n" for r in rows)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The bytes of `frame` written as Parquet (no index)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.parquet"
        frame.to_parquet(path, index=False)
        return path.read_bytes()


def good_frame(base: pd.Timestamp, minutes: int) -> pd.DataFrame:
    """Valid readings as a long frame (``ts`` UTC), one per good tag and minute."""
    rows = [r.split(",") for r in good_rows(base, minutes)]
    frame = pd.DataFrame(rows, columns=["tag", "ts", "value", "quality"])
    return frame.assign(ts=pd.to_datetime(frame["ts"], utc=True), value=frame["value"].astype(float))


def store_counts(home: Path) -> tuple[pd.DataFrame, int]:
    """The stored readings and the number of quarantined rows of the raw store under `home`."""
    from pumptwin.features.ingest.rawstore import RawStore

    store = RawStore(home / "raw")
    return store.read(), len(store.read_quarantine())


def holds(stored: int | None = None, accounted: int | None = None, tags: tuple[str, ...] | None = None) -> Check:
    """A post-condition on the raw store.

    Args:
        stored: Exact number of stored readings, or None.
        accounted: Least number of stored plus quarantined rows (rows of the input), or None.
        tags: Tags that must all be stored, or None.

    Returns:
        The check; it also fails on a (tag, ts) stored twice or an unreadable store.
    """

    def check(ctx: Ctx, run: Run) -> str | None:
        try:
            frame, quarantined = store_counts(ctx.home)
        except Exception as exc:  # noqa: BLE001 - any failure to read the store is the finding
            return f"store unreadable: {type(exc).__name__}: {exc}"
        problems = []
        if frame.duplicated(["tag", "ts"]).any():
            problems.append(f"{int(frame.duplicated(['tag', 'ts']).sum())} (tag, ts) stored twice")
        if stored is not None and len(frame) != stored:
            problems.append(f"store holds {len(frame)} rows, expected {stored}")
        if accounted is not None and len(frame) + quarantined < accounted:
            problems.append(f"store {len(frame)} + quarantine {quarantined} < {accounted} rows read")
        if tags is not None and not set(tags) <= set(frame["tag"]):
            problems.append(f"tags missing from the store: {sorted(set(tags) - set(frame['tag']))}")
        return "; ".join(problems) or None

    return check


def no_escape_echoed(ctx: Ctx, run: Run) -> str | None:
    """Post-condition: no raw terminal escape sequence (ESC) was echoed from the input."""
    return "raw ESC character echoed to the terminal" if "\x1b" in run.stdout + run.stderr else None


def file_exists(relative: str) -> Check:
    """Post-condition: `relative` (under `Ctx.work`) was written."""

    def check(ctx: Ctx, run: Run) -> str | None:
        return None if (ctx.work / relative).exists() else f"{relative} was not written"

    return check


def json_mentions(relative: str, text: str) -> Check:
    """Post-condition: the JSON file `relative` exists and contains `text`."""

    def check(ctx: Ctx, run: Run) -> str | None:
        path = ctx.work / relative
        if not path.is_file():
            return f"{relative} was not written"
        return (
            None
            if text in json.dumps(json.loads(path.read_text(encoding="utf-8")), ensure_ascii=False)
            else (f"{relative} does not mention {text!r}")
        )

    return check


def _ingest(name: str, data: str | bytes, *extra: str) -> Callable[[Ctx], list[list[str]]]:
    """A build step: write `data` to `name` and ingest it with ``--full``."""

    def build(ctx: Ctx) -> list[list[str]]:
        _write(ctx.work / name, data)
        return [["ingest", name, "--full", *extra]]

    return build


def _ingest_made(name: str, make: Callable[[Ctx], str | bytes], *extra: str) -> Callable[[Ctx], list[list[str]]]:
    """A build step: write ``make(ctx)`` to `name` and ingest it with ``--full``."""

    def build(ctx: Ctx) -> list[list[str]]:
        _write(ctx.work / name, make(ctx))
        return [["ingest", name, "--full", *extra]]

    return build


def _solve(text: str | bytes, *extra: str, sidecar: str | bytes | None = None) -> Callable[[Ctx], list[list[str]]]:
    """A build step: write `text` to ``net.inp`` (and `sidecar` to ``net.yaml``) and solve it."""

    def build(ctx: Ctx) -> list[list[str]]:
        _write(ctx.work / "net.inp", text)
        if sidecar is not None:
            _write(ctx.work / "net.yaml", sidecar)
        return [["solve", "net.inp", *extra]]

    return build


def _whatif(args: list[str], files: dict[str, str | bytes] | None = None) -> Callable[[Ctx], list[list[str]]]:
    """A build step: write `files` and run ``pumptwin whatif ARGS``."""

    def build(ctx: Ctx) -> list[list[str]]:
        for name, data in (files or {}).items():
            _write(ctx.work / name, data)
        return [["whatif", *args]]

    return build


def _plant(text: Callable[[Ctx], str | bytes]) -> Callable[[Ctx], list[list[str]]]:
    """A build step: write a plant scenario to ``scenario.yaml`` and ingest the simulator's readings."""

    def build(ctx: Ctx) -> list[list[str]]:
        _write(ctx.work / "scenario.yaml", text(ctx))
        return [["ingest", f"simulator:{ctx.work / 'scenario.yaml'}", "--full"]]

    return build


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """YAML anchors and aliases that expand to ``width ** levels`` strings (anchor ``bomb``).

    Example (levels 2, width 2)::

        l0: &l0 [lol, lol]
        bomb: &bomb [*l0, *l0]
    """
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        name = "bomb" if i == levels - 1 else f"l{i}"
        lines.append(f"{name}: &{name} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def plant_yaml(name: str, duration: str = "1h", seed: str = "1") -> str:
    """A short plant scenario on the reference fleet."""
    return (
        f"version: 1\nname: {name}\nstart: 2024-03-01T00:00:00Z\nduration: {duration}\nstep: 60s\nseed: {seed}\n"
        "fleet: {network: reference, lines: 1}\n"
    )


def _mixed(ctx: Ctx) -> str:
    rows = good_rows(ctx.base, 10)
    bad = [
        f"PS01.P1.SPEED,{_ts(ctx.base, 100)},abc,good",
        "PS01.P1.SPEED,2026-11-01 00:00:00,1400,good",
        f"ps01-bad-tag,{_ts(ctx.base, 101)},1400,good",
        f"PS01.P1.SPEED,{_ts(ctx.base, 102)},1400,excellent",
        f"PS01.P1.SPEED,{_ts(ctx.base, 103)},1e12,good",
    ]
    return long_csv(rows + bad)  # bad rows last: a reading older than one before it is quarantined by design


OUTSIDE_VALUE = 1111.0
"""The value of the reading in the file outside a folder, reached through a symlink."""


def _symlink_outside(ctx: Ctx) -> list[list[str]]:
    outside = _write(
        ctx.work / "outside" / "secret.csv", long_csv([f"PS02.P2.SPEED,{_ts(ctx.base, 0)},{OUTSIDE_VALUE},good"])
    )
    folder = ctx.work / "data"
    _write(folder / "good.csv", long_csv(good_rows(ctx.base, 5)))
    (folder / "link.csv").symlink_to(outside)
    return [["ingest", "data", "--full"]]


def _outside_not_stored(ctx: Ctx, run: Run) -> str | None:
    frame, _ = store_counts(ctx.home)
    if (frame["value"] == OUTSIDE_VALUE).any():
        return "rows of a file outside the folder (reached through a symlink) were stored"
    return None if len(frame) == 3 * 5 else f"store holds {len(frame)} rows, expected the folder's 15"


def _symlink_loop(ctx: Ctx) -> list[list[str]]:
    folder = ctx.work / "data"
    _write(folder / "good.csv", long_csv(good_rows(ctx.base, 5)))
    (folder / "a").symlink_to(folder / "b")
    (folder / "b").symlink_to(folder / "a")
    (folder / "self").symlink_to(folder)
    return [["ingest", "data", "--full"]]


def _late_data(ctx: Ctx) -> list[list[str]]:
    _write(ctx.work / "new.csv", long_csv(good_rows(ctx.base + pd.Timedelta(days=1), 5)))
    _write(ctx.work / "old.csv", long_csv(good_rows(ctx.base, 5)))
    return [["ingest", "new.csv"], ["ingest", "old.csv"]]


def _twice(ctx: Ctx) -> list[list[str]]:
    _write(ctx.work / "a.csv", long_csv(good_rows(ctx.base, 5)))
    return [["ingest", "a.csv"], ["ingest", "a.csv", "--full"]]


def _pi_env(mode: str) -> Callable[[Ctx], dict[str, str]]:
    def env(ctx: Ctx) -> dict[str, str]:
        return {
            "PUMPTWIN_HISTORIAN__URL": ctx.pi_url.replace("<mode>", mode),
            "PUMPTWIN_HISTORIAN__DATA_SERVER": "archive",
            "PUMPTWIN_HISTORIAN__TIMEOUT_S": "5",
        }

    return env


def _pi(ctx: Ctx) -> list[list[str]]:
    start = ctx.base.strftime("%Y-%m-%dT%H:%M:%S")
    end = (ctx.base + pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    return [["ingest", "pi:PS01.*", "--start", start, "--end", end]]


def _nothing_in(relative: str) -> Check:
    def check(ctx: Ctx, run: Run) -> str | None:
        return f"{relative} was written" if (ctx.work / relative).exists() else None

    return check


def _nothing_named(prefix: str) -> Check:
    """Post-condition: no file whose name starts with `prefix` in the case's folder, its subfolders or beside it."""

    def check(ctx: Ctx, run: Run) -> str | None:
        found = [*ctx.work.rglob(f"{prefix}*"), *ctx.work.parent.glob(f"{prefix}*")]
        return f"written: {[str(p) for p in found][:3]}" if found else None

    return check


def _with_huge(ctx: Ctx) -> str:
    return long_csv([*good_rows(ctx.base, 3), f"PS01.P1.SPEED,{_ts(ctx.base, 50)},{'9' * 100_000},good"])


def _csv(make: Callable[[Ctx], list[str]]) -> Callable[[Ctx], str]:
    """A file maker: the long CSV of the lines ``make(ctx)`` returns."""
    return lambda ctx: long_csv(make(ctx))


def _values(values: list[str]) -> Callable[[Ctx], list[str]]:
    """Lines of PS01.P1.SPEED readings, one a minute, with the given raw values."""
    return lambda c: [f"PS01.P1.SPEED,{_ts(c.base, i)},{v},good" for i, v in enumerate(values)]


def _wide(header: str, row: str) -> Callable[[Ctx], str]:
    """A file maker: a wide CSV with `header`; `row` is formatted with ``ts`` and ``m`` for 5 minutes."""
    return lambda c: f"{header}\n" + "".join(row.format(ts=_ts(c.base, m), m=m) + "\n" for m in range(5))


def _good(minutes: int) -> Callable[[Ctx], list[str]]:
    return lambda c: good_rows(c.base, minutes)


def _plus(minutes: int, *extra: str) -> Callable[[Ctx], list[str]]:
    """Good lines for `minutes` minutes, then `extra` lines (formatted with ``t``, a timestamp of the day)."""
    return lambda c: [*good_rows(c.base, minutes), *(e.format(t=_ts(c.base, 50)) for e in extra)]


def _pq(frame: Callable[[pd.DataFrame], pd.DataFrame], minutes: int = 3) -> Callable[[Ctx], bytes]:
    """A file maker: Parquet bytes of `frame` applied to the good readings of `minutes` minutes."""
    return lambda c: parquet_bytes(frame(good_frame(c.base, minutes)))


def corpus() -> list[Case]:
    """The hostile inputs, grouped by command: a table of cases.

    Returns:
        The cases; those with ``quick=False`` are left out of ``--quick`` runs.
    """
    net = SMALL_INP.format(demand=5)
    truncated = net[: net.index("P2\tJ1\tJ2") + 10]  # cut inside a pipe's row
    bomb_scenarios = alias_bomb() + "version: 1\nscenarios:\n  - {name: *bomb, flow: +5%}\n"
    huge_scenarios = "version: 1\nscenarios:\n" + "  - {name: s, flow: +1%}\n" * 1_300_000  # about 30 MB
    latin1_scenarios = b"version: 1\nscenarios:\n  - name: caf\xe9\n    flow: +5%\n"
    escape_header = "qual\x1b[2J\x1b]0;title\x07"
    err = "error:"
    # fmt: off
    cases = [
        # --- ingest: CSV -----------------------------------------------------------------------------------------
        Case("csv good (control)", "ingest", _ingest_made("a.csv", _csv(_good(10))), (0,), check=holds(stored=30)),
        Case("csv empty (0 bytes)", "ingest", _ingest("a.csv", b""), (1,), check=holds(stored=0)),
        Case("csv header only", "ingest", _ingest("a.csv", "tag,ts,value,quality\n"), (1,), check=holds(stored=0)),
        Case("csv blank lines only", "ingest", _ingest("a.csv", "\n\n \n\t\n"), (1,), check=holds(stored=0)),
        Case("csv no delimiter", "ingest", _ingest("a.csv", "hello world\nfoo bar\nbaz qux\n"), (1,)),
        Case("csv NUL bytes", "ingest",
             _ingest_made("a.csv", lambda c: long_csv(good_rows(c.base, 4)).replace("good\n", "go\x00od\n", 3)),
             (1,), check=holds(accounted=12)),
        Case("csv non-UTF-8 (latin-1 tag)", "ingest",
             _ingest_made("a.csv", lambda c: long_csv(_plus(3, "PS01.P1.SP\xc9ED,{t},1,good")(c)).encode("latin-1")),
             (1,), check=holds(stored=9, accounted=10)),
        Case("csv escape sequences in header", "ingest",
             _ingest_made("a.csv", lambda c: long_csv(good_rows(c.base, 3)).replace("quality", escape_header, 1)),
             (1,), check=no_escape_echoed),
        Case("csv 100k-char cell", "ingest", _ingest_made("a.csv", _with_huge), (1,),
             check=holds(stored=9, accounted=10)),
        Case("csv wrong field counts", "ingest",
             _ingest_made("a.csv", _csv(_plus(3, "PS01.P1.SPEED,x", "a,b,c,d,e,f"))), (1,),
             check=holds(stored=9, accounted=11)),
        Case("csv nan/inf/text values", "ingest",
             _ingest_made("a.csv", _csv(_values(["inf", "-inf", "abc", "1e999", "0x10"]))), (1,),
             check=holds(stored=0, accounted=5)),
        Case("csv naive timestamps", "ingest",
             _ingest_made("a.csv", lambda c: long_csv([r.replace("Z,", ",") for r in good_rows(c.base, 3)])), (1,),
             check=holds(stored=0, accounted=9)),
        Case("csv offset timestamps (+02:00)", "ingest",
             _ingest_made("a.csv", lambda c: long_csv([r.replace("Z,", "+02:00,") for r in good_rows(c.base, 3)])),
             (0,), check=holds(stored=9)),
        Case("csv future timestamps (2099)", "ingest",
             _ingest_made("a.csv", _csv(_plus(3, "PS01.P1.SPEED,2099-01-01T00:00:00Z,1400,good"))), (1,),
             check=holds(stored=9, accounted=10)),
        Case("csv duplicate rows", "ingest", _ingest_made("a.csv", lambda c: long_csv(good_rows(c.base, 3) * 3)),
             (0, 1), check=holds(stored=9)),
        Case("csv unknown tags", "ingest", _ingest_made("a.csv", _csv(_plus(3, "PS77.P9.NOSUCH,{t},5,good"))), (1,),
             check=holds(stored=9, accounted=10)),
        Case("csv mixed good and bad rows", "ingest", _ingest_made("a.csv", _mixed), (1,),
             check=holds(stored=30, accounted=35)),
        Case("csv quoted line break and stray quote", "ingest",
             _ingest_made("a.csv", _csv(_plus(3, 'PS01.P1.SPEED,"2026\n11",1,good', 'PS01.P1.FLOW,"open,1,good'))),
             (1,)),
        Case("csv BOM and CRLF (valid)", "ingest",
             _ingest_made("a.csv", lambda c: ("\ufeff" + long_csv(good_rows(c.base, 3))).replace("\n", "\r\n")),
             (0,), check=holds(stored=9)),
        Case("csv semicolons and decimal commas (valid)", "ingest",
             _ingest_made("a.csv", lambda c: long_csv(good_rows(c.base, 3)).replace(",", ";").replace(".0;", ",0;")),
             (0,), check=holds(stored=9)),
        Case("csv binary garbage", "ingest", _ingest("a.csv", random.Random(3).randbytes(4096)), (1,)),
        Case("wide csv (valid)", "ingest",
             _ingest_made("a.csv", _wide("ts,PS01.P1.SPEED,PS01.P1.FLOW", "{ts},1400,900")), (0,),
             check=holds(stored=10)),
        Case("wide csv with bad cells", "ingest",
             _ingest_made("a.csv", _wide("ts,PS01.P1.SPEED,PS01.P1.FLOW,not a tag", "{ts},1400,x{m},7")), (1,),
             check=holds(stored=5)),
        Case("unsupported file type", "ingest", _ingest("a.xlsx", b"PK\x03\x04"), (1,)),
        Case("missing path", "ingest", lambda c: [["ingest", "no-such-file.csv"]], (1, 2)),
        # --- ingest: Parquet, folders, order -----------------------------------------------------------------------
        Case("parquet good (control)", "ingest", _ingest_made("a.parquet", _pq(lambda f: f, 5)), (0,),
             check=holds(stored=15)),
        Case("parquet truncated", "ingest",
             _ingest_made("a.parquet", lambda c: parquet_bytes(good_frame(c.base, 50))[:-100]), (1,),
             check=holds(stored=0)),
        Case("parquet empty (0 bytes)", "ingest", _ingest("a.parquet", b""), (1,)),
        Case("parquet garbage bytes", "ingest",
             _ingest("a.parquet", b"PAR1" + random.Random(4).randbytes(2048) + b"PAR1"), (1,)),
        Case("parquet naive timestamps", "ingest",
             _ingest_made("a.parquet", _pq(lambda f: f.assign(ts=f["ts"].dt.tz_localize(None)))), (1,),
             check=holds(stored=0, accounted=9)),
        Case("parquet nan/inf values", "ingest",
             _ingest_made("a.parquet", _pq(lambda f: f.assign(value=[math.inf, -math.inf, 1e308, *[1400.0] * 6]))),
             (1,), check=holds(stored=6, accounted=9)),
        Case("folder with a symlink to a file outside", "ingest", _symlink_outside, (0, 1), check=_outside_not_stored),
        Case("folder with a symlink loop", "ingest", _symlink_loop, (0, 1), check=holds(stored=15)),
        Case("late data after the watermark", "ingest", _late_data, (0,), check=holds(stored=30)),
        Case("same file twice", "ingest", _twice, (0,), check=holds(stored=15)),
        # --- solve -------------------------------------------------------------------------------------------------
        Case("inp valid (control)", "solve", _solve(net, "--json", "out/sol.json"), (0,),
             check=file_exists("out/sol.json"), writes=("out",)),
        Case("inp truncated", "solve", _solve(truncated), (2,), stderr=err),
        Case("inp cp1252 ids", "solve", _solve(net.replace("J3", "J\xe9").encode("cp1252"), "--json", "sol.json"), (0,),
             check=json_mentions("sol.json", "J\xe9"), writes=("sol.json",)),
        Case("inp binary garbage", "solve", _solve(random.Random(5).randbytes(3000)), (2,), stderr=err),
        Case("inp empty", "solve", _solve(b""), (2,), stderr=err),
        Case("inp nan pipe length", "solve", _solve(net.replace("800", "nan")), (2,), stderr=err),
        Case("inp impossible demand (negative pressures)", "solve", _solve(SMALL_INP.format(demand=5000)), (1,)),
        Case("inp sidecar alias bomb", "solve", _solve(net, sidecar="fluid: *bomb\n" + alias_bomb()), (2,), stderr=err),
        Case("--duration-h huge", "solve", _solve(net, "--duration-h", "1e9"), (2,), stderr=err),
        Case("--duration-h nan", "solve", _solve(net, "--duration-h", "nan"), (2,), stderr=err),
        Case("--duration-h -1", "solve", _solve(net, "--duration-h", "-1"), (2,), stderr=err),
        Case("--duration-h inf", "solve", _solve(net, "--duration-h", "inf"), (2,), stderr=err),
        Case("--json at a folder", "solve", _solve(net, "--json", "."), (2,), stderr=err),
        Case("missing network file", "solve", lambda c: [["solve", "nope.inp"]], (2,), stderr=err),
        # --- what-if -----------------------------------------------------------------------------------------------
        Case("whatif +5 % flow (control)", "whatif", _whatif(["--flow", "+5%", "--out", "res"]), (0, 1),
             check=file_exists("res"), writes=("res",)),
        Case("whatif unreachable leak 500 m3/h", "whatif", _whatif(["--leak", "90=500m3/h", "--out", "res"]), (1,),
             writes=("res",)),
        Case("whatif YAML alias bomb", "whatif",
             _whatif(["--file", "s.yaml", "--out", "res"], {"s.yaml": bomb_scenarios}), (2,), stderr=err,
             timeout_s=60, writes=("res",)),
        Case("whatif non-UTF-8 YAML", "whatif",
             _whatif(["--file", "s.yaml", "--out", "res"], {"s.yaml": latin1_scenarios}), (2,), stderr=err,
             writes=("res",)),
        Case("whatif huge YAML (30 MB)", "whatif",
             _whatif(["--file", "s.yaml", "--out", "res"], {"s.yaml": huge_scenarios}), (2,), stderr=err, timeout_s=60,
             writes=("res",)),
        Case("whatif empty YAML", "whatif", _whatif(["--file", "s.yaml"], {"s.yaml": ""}), (2,), stderr=err),
        Case("whatif --out an existing file", "whatif", _whatif(["--flow", "+5%", "--out", "f.txt"], {"f.txt": "x"}),
             (2,), stderr=err),
        Case("whatif --flow nan%", "whatif", _whatif(["--flow", "nan%"]), (2,), stderr=err),
        Case("whatif --speed all=-1", "whatif", _whatif(["--speed", "all=-1"]), (2,), stderr=err),
        Case("whatif garbage network", "whatif",
             _whatif(["--network", "g.inp", "--flow", "+5%"], {"g.inp": random.Random(6).randbytes(2000)}), (2,),
             stderr=err),
        Case("whatif scenario name with ../", "whatif",
             _whatif(["--file", "s.yaml", "--out", "res"],
                     {"s.yaml": "version: 1\nscenarios:\n  - {name: ../../escaped, flow: +5%}\n"}),
             (0, 1, 2), writes=("res",), check=_nothing_named("escaped")),
        # --- plant scenarios (simulator:PATH.yaml) -----------------------------------------------------------------
        Case("plant name ../../tmp/x", "plant", _plant(lambda c: plant_yaml("../../tmp/x")), (2,), stderr=err,
             check=_nothing_in("tmp")),
        Case("plant absolute name", "plant", _plant(lambda c: plant_yaml(str(c.work / "abs_escape"))), (2,), stderr=err,
             check=_nothing_in("abs_escape.parquet")),
        Case("plant YAML alias bomb", "plant", _plant(lambda c: alias_bomb() + plant_yaml("*bomb")), (2,), stderr=err,
             timeout_s=60),
        Case("plant seed .inf", "plant", _plant(lambda c: plant_yaml("inf_seed", seed=".inf")), (2,), stderr=err),
        Case("plant non-UTF-8 YAML", "plant", _plant(lambda c: plant_yaml("caf\xe9").encode("latin-1")), (2,),
             stderr=err),
        Case("plant unknown shipped scenario", "plant", lambda c: [["ingest", "simulator:no_such_scenario"]], (2,),
             stderr=err),
        Case("plant duration 1000000 days", "plant", _plant(lambda c: plant_yaml("long", duration="1000000d")), (2,),
             stderr=err, timeout_s=60, quick=False),
        # --- PI Web API --------------------------------------------------------------------------------------------
        Case("pi source with no server configured", "pi", lambda c: [["ingest", "pi:PS01.*"]], (2,), stderr=err),
        *(Case(f"pi server answers {mode}", "pi", _pi, (2,), stderr=err, env=_pi_env(mode),
               quick=mode in ("401", "html")) for mode in ("401", "403", "500", "html", "truncated")),
    ]
    # fmt: on
    return cases


# --------------------------------------------------------------------------------------------
# A misbehaving PI Web API on loopback
# --------------------------------------------------------------------------------------------


class _BadPIHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request by the first path part: 401, 403, 500, html or truncated (JSON)."""

    def do_GET(self) -> None:  # noqa: N802 - the handler's protocol name
        mode = self.path.strip("/").split("/", 1)[0]
        status, body, kind = {
            "401": (401, b'{"Errors": ["unauthorized"]}', "application/json"),
            "403": (403, b'{"Errors": ["forbidden"]}', "application/json"),
            "500": (500, b"internal error", "text/plain"),
            "html": (200, b"<html><body>Sign in</body></html>", "text/html"),
        }.get(mode, (200, b'{"Items": [{"Name": "archive", "WebId": "F1', "application/json"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401 - the base class's signature
        """Keep the benchmark's output clean."""


@contextmanager
def bad_pi_server() -> Iterator[str]:
    """Serve `_BadPIHandler` on loopback; yield the URL pattern ``http://127.0.0.1:PORT/<mode>/piwebapi``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BadPIHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/<mode>/piwebapi"
    finally:
        server.shutdown()
        server.server_close()


def _files_outside_home(ctx: Ctx) -> set[Path]:
    return {p for p in ctx.work.rglob("*") if ctx.home not in p.parents and p != ctx.home}


def run_case(case: Case, root: Path, numba_cache: Path, pi_url: str = "") -> CaseResult:
    """Build and run one case in a fresh folder under `root` and judge it.

    Args:
        case: The case.
        root: Parent of the case's folder.
        numba_cache: Shared numba cache folder.
        pi_url: URL pattern of the misbehaving PI server.

    Returns:
        The case's result.
    """
    work = Path(tempfile.mkdtemp(prefix="case-", dir=root))
    ctx = Ctx(
        work=work,
        home=work / "home",
        base=(pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=10)).floor("D"),
        pi_url=pi_url,
    )
    steps = case.build(ctx)
    before = _files_outside_home(ctx)
    env = cli_env(ctx.home, numba_cache, case.env(ctx) if case.env else None)
    runs = [run_cli(args, env, work, case.timeout_s) for args in steps]
    last = runs[-1]
    result = CaseResult(
        name=case.name,
        group=case.group,
        code=last.code,
        expected=case.expect,
        traceback=any(r.traceback for r in runs),
        seconds=sum(r.seconds for r in runs),
        timed_out=any(r.timed_out for r in runs),
        stderr_tail=last.stderr.strip()[-400:],
    )
    for args, run in zip(steps[:-1], runs[:-1], strict=True):
        if run.code != 0:
            result.problems.append(f"setup step `pumptwin {' '.join(args)}` exited {run.code}")
    if result.timed_out:
        result.problems.append(f"timed out after {case.timeout_s:g} s")
    elif last.code not in case.expect:
        result.problems.append(f"exit {last.code}, expected {'/'.join(map(str, case.expect))}")
    if case.stderr is not None and case.stderr.lower() not in last.stderr.lower():
        result.problems.append(f"stderr lacks {case.stderr!r}")
    if result.traceback:
        result.problems.append("traceback printed")
    new = {
        p
        for p in _files_outside_home(ctx) - before
        if not any(p == work / w or work / w in p.parents for w in case.writes)
    }
    if new:
        result.problems.append(f"wrote outside its home: {sorted(str(p.relative_to(work)) for p in new)[:3]}")
    if case.check is not None and not result.timed_out:
        try:
            problem = case.check(ctx, last)
        except Exception as exc:  # noqa: BLE001 - a failing check is a finding, not a crash of the benchmark
            problem = f"post-condition raised {type(exc).__name__}: {exc}"
        if problem:
            result.problems.append(problem)
    return result


def run_corpus(cases: list[Case], root: Path, numba_cache: Path, progress: bool = True) -> list[CaseResult]:
    """Run every case (with the misbehaving PI server up) and return their results in order."""
    results = []
    with bad_pi_server() as pi_url:
        for case in cases:
            result = run_case(case, root, numba_cache, pi_url)
            results.append(result)
            if progress:
                status = "ok" if result.ok else "FAIL: " + "; ".join(result.problems)
                print(
                    f"  {case.group:6} {case.name:45} exit {result.code:>3} {result.seconds:6.1f} s  {status}",
                    flush=True,
                )
    return results


# --------------------------------------------------------------------------------------------
# Concurrent ingest
# --------------------------------------------------------------------------------------------

CONCURRENT_TAGS = tuple(f"{station}.P{k}.SPEED" for station in ("PS01", "PS02") for k in (1, 2, 3))
SHARED_MINUTES = range(0, 600)  # every process writes the same value (identical duplicates)
OWN_MINUTES = 100  # each process's own block after the shared minutes (single-writer updates across rounds)
CONTESTED_MINUTES = range(1300, 1400)  # every process writes its own value: any one of them may win


def round_day(base: pd.Timestamp, round_no: int) -> pd.Timestamp:
    """The day a round writes: three days in turn, so later rounds update earlier partitions."""
    return base + pd.Timedelta(days=round_no % 3)


def round_frame(base: pd.Timestamp, round_no: int, proc: int) -> pd.DataFrame:
    """The readings process `proc` writes in round `round_no` (long, ``ts`` UTC, quality good).

    Shared minutes carry ``1000 + round + tag index`` (the same in every process), the process's
    own minutes ``2000 + 10 * proc + round`` and contested minutes ``3000 + proc``.
    """
    day = round_day(base, round_no)
    own = range(SHARED_MINUTES.stop + proc * OWN_MINUTES, SHARED_MINUTES.stop + (proc + 1) * OWN_MINUTES)
    parts = []
    for i, tag in enumerate(CONCURRENT_TAGS):
        for minutes, value in (
            (SHARED_MINUTES, 1000.0 + round_no + i),
            (own, 2000.0 + 10 * proc + round_no),
            (CONTESTED_MINUTES, 3000.0 + proc),
        ):
            ts = day + pd.to_timedelta(np.asarray(minutes), unit="min")
            parts.append(pd.DataFrame({"tag": tag, "ts": ts, "value": value, "quality": "good"}))
    return pd.concat(parts, ignore_index=True)


def expected_after_round(
    expected: dict[tuple[str, int], frozenset[float]], base: pd.Timestamp, round_no: int, procs: int
) -> None:
    """Update `expected` ((tag, ts ns) -> values allowed in the store) with a finished round."""
    allowed: dict[tuple[str, int], set[float]] = {}
    for proc in range(procs):
        frame = round_frame(base, round_no, proc)
        for tag, ts, value in zip(frame["tag"], frame["ts"].astype("int64"), frame["value"], strict=True):
            allowed.setdefault((tag, int(ts)), set()).add(float(value))
    expected.update({key: frozenset(values) for key, values in allowed.items()})


def compare_store(frame: pd.DataFrame, expected: dict[tuple[str, int], frozenset[float]]) -> dict[str, int]:
    """Count rows lost, doubled, wrong and unexpected in a stored frame against `expected`."""
    keys = list(zip(frame["tag"], frame["ts"].astype("int64").tolist(), strict=True))
    values = frame["value"].tolist()
    stored: dict[tuple[str, int], float] = {}
    doubled = 0
    for key, value in zip(keys, values, strict=True):
        if key in stored:
            doubled += 1
        stored[key] = value
    lost = sum(1 for key in expected if key not in stored)
    wrong = sum(1 for key, value in stored.items() if key in expected and value not in expected[key])
    extra = sum(1 for key in stored if key not in expected)
    return {"lost": lost, "doubled": doubled, "wrong": wrong, "extra": extra}


def _concurrent_worker(proc: int, root: str, base_ns: int, jobs: Any, results: Any, barrier: Any) -> None:  # noqa: ANN401 - multiprocessing queues and barrier
    """Ingest this process's frame of each round handed out on `jobs`; report on `results`."""
    from pumptwin.features.ingest.pipeline import ingest_frame
    from pumptwin.features.ingest.rawstore import RawStore

    base = pd.Timestamp(base_ns, tz="UTC")
    while (round_no := jobs.get()) is not None:
        frame = round_frame(base, round_no, proc)
        error = None
        t0 = time.perf_counter()
        try:
            barrier.wait(timeout=120)
            ingest_frame(frame, RawStore(root), source_name=f"proc{proc}", run_id=f"r{round_no}-p{proc}")
        except Exception as exc:  # noqa: BLE001 - every failure is reported to the parent
            error = f"{type(exc).__name__}: {exc}"
        results.put((proc, round_no, error, time.perf_counter() - t0))


def run_concurrent(root: Path, procs: int, rounds: int, progress: bool = True) -> dict[str, Any]:
    """Run `rounds` rounds of `procs` concurrent ingests into one store and count the damage.

    Args:
        root: The raw store's folder (fresh).
        procs: Processes writing at once.
        rounds: Rounds; each ends when every process has written.
        progress: Print a line per round.

    Returns:
        Totals (``lost``, ``doubled``, ``wrong``, ``extra``, ``errors``), per-round counts and seconds.
    """
    from pumptwin.features.ingest.rawstore import RawStore

    base = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=20)).floor("D")
    ctx = mp.get_context("spawn")
    jobs = [ctx.Queue() for _ in range(procs)]
    results = ctx.Queue()
    barrier = ctx.Barrier(procs)
    workers = [
        ctx.Process(target=_concurrent_worker, args=(p, str(root), base.value, jobs[p], results, barrier), daemon=True)
        for p in range(procs)
    ]
    for w in workers:
        w.start()
    expected: dict[tuple[str, int], frozenset[float]] = {}
    totals = {"lost": 0, "doubled": 0, "wrong": 0, "extra": 0, "errors": 0}
    per_round = []
    errors: list[str] = []
    t0 = time.perf_counter()
    try:
        for round_no in range(rounds):
            for q in jobs:
                q.put(round_no)
            answers = [results.get(timeout=600) for _ in range(procs)]
            round_errors = [f"round {r} proc {p}: {e}" for p, r, e, _ in answers if e]
            errors.extend(round_errors)
            expected_after_round(expected, base, round_no, procs)
            try:
                counts = compare_store(RawStore(root).read(), expected)
            except Exception as exc:  # noqa: BLE001 - an unreadable store is a finding
                counts = {"lost": len(expected), "doubled": 0, "wrong": 0, "extra": 0}
                round_errors.append(f"round {round_no}: store unreadable: {type(exc).__name__}: {exc}")
                errors.append(round_errors[-1])
            counts["errors"] = len(round_errors)
            per_round.append({"round": round_no, **counts, "seconds": max(a[3] for a in answers)})
            if progress:
                print(f"  round {round_no:2}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)
            for key in totals:
                totals[key] += counts[key]
    finally:
        for q in jobs:
            q.put(None)
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.kill()
    return {
        "processes": procs,
        "rounds": rounds,
        "rows_per_process_round": len(round_frame(base, 0, 0)),
        **totals,
        "error_messages": errors[:20],
        "per_round": per_round,
        "seconds": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------------------------------
# Kill and rerun
# --------------------------------------------------------------------------------------------


def make_kill_csv(path: Path, rows: int, base: pd.Timestamp) -> int:
    """Write a long CSV of about `rows` valid readings of the reference fleet's tags; return its row count.

    Each tag gets a value inside its range that drifts slowly, one reading a minute from `base`.
    """
    from pumptwin.twin.assets import build_registry
    from pumptwin.twin.hydraulic.io import load_network

    specs = [t for t in build_registry(load_network()).tags if t.station.startswith("PS")][:60]
    minutes = max(1, rows // len(specs))
    m = np.arange(minutes)
    ts = (base + pd.to_timedelta(m, unit="min")).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = []
    for i, spec in enumerate(specs):
        low, high = float(spec.low), float(spec.high)
        values = low + (high - low) * (0.5 + 0.2 * np.sin(m / 97.0 + i))
        parts.append(pd.DataFrame({"tag": spec.tag, "ts": ts, "value": np.round(values, 4), "quality": "good"}))
    frame = pd.concat(parts, ignore_index=True)
    frame.to_csv(path, index=False)
    return len(frame)


def store_state(home: Path) -> dict[str, Any]:
    """Read the raw store under `home`: its readings, watermarks and temporary files.

    Returns:
        ``frame`` (or None when unreadable), ``error``, ``watermarks`` and ``temporaries``.
    """
    from pumptwin.features.ingest.rawstore import RawStore

    store = RawStore(home / "raw")
    temporaries = sorted(str(p) for p in (home / "raw").rglob("*.tmp")) if (home / "raw").exists() else []
    try:
        frame, marks, error = store.read(), store.watermarks(), None
    except Exception as exc:  # noqa: BLE001 - an unreadable store is a finding
        frame, marks, error = None, {}, f"{type(exc).__name__}: {exc}"
    return {"frame": frame, "watermarks": marks, "error": error, "temporaries": temporaries}


def judge_rerun(state: dict[str, Any], reference: pd.DataFrame) -> dict[str, int]:
    """Count the damage of a killed-and-rerun store against the uninterrupted reference store."""
    counts = {
        "lost": 0,
        "doubled": 0,
        "wrong": 0,
        "extra": 0,
        "temporaries": len(state["temporaries"]),
        "watermark_mismatches": 0,
        "unreadable": 0,
    }
    frame = state["frame"]
    if frame is None:
        counts["unreadable"] = 1
        counts["lost"] = len(reference)
        return counts
    counts["doubled"] = int(frame.duplicated(["tag", "ts"]).sum())
    merged = reference.merge(
        frame.drop_duplicates(["tag", "ts"]), on=["tag", "ts"], how="outer", suffixes=("_ref", "_got"), indicator=True
    )
    counts["lost"] = int((merged["_merge"] == "left_only").sum())
    counts["extra"] = int((merged["_merge"] == "right_only").sum())
    both_sides = merged[merged["_merge"] == "both"]
    counts["wrong"] = int((~np.isclose(both_sides["value_ref"], both_sides["value_got"], equal_nan=True)).sum())
    latest = frame.groupby("tag")["ts"].max()
    marks = state["watermarks"]
    counts["watermark_mismatches"] = sum(1 for tag, ts in latest.items() if marks.get(tag) != ts) + sum(
        1 for tag in marks if tag not in latest.index
    )
    return counts


def timed_ingest(data: Path, env: dict[str, str], cwd: Path, timeout_s: float = 1800.0) -> tuple[Run, float]:
    """Run ``pumptwin ingest DATA`` to completion, noting when its first partition file appeared.

    Args:
        data: The file to ingest.
        env: The command's environment (its ``PUMPTWIN_HOME`` names the store).
        cwd: Its working folder.
        timeout_s: Wall-clock limit, s.

    Returns:
        The run and the seconds from its start to its first partition file (its whole time when
        none appeared).
    """
    raw = Path(env["PUMPTWIN_HOME"]) / "raw"
    t0 = time.perf_counter()
    proc = start_cli(["ingest", str(data)], env, cwd)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.communicate()), daemon=True)  # drains the pipes
    reader.start()
    first_write_s: float | None = None
    while reader.is_alive() and time.perf_counter() - t0 < timeout_s:
        if first_write_s is None and _has_partition(raw):
            first_write_s = time.perf_counter() - t0
        time.sleep(0.05)
    timed_out = reader.is_alive()
    if timed_out:
        os.killpg(proc.pid, signal.SIGKILL)
    reader.join()
    seconds = time.perf_counter() - t0
    out, err = (output + ["", ""])[:2]
    run = Run(proc.returncode if not timed_out else -9, out, err, seconds, timed_out=timed_out)
    return run, first_write_s if first_write_s is not None else seconds


def _has_partition(raw: Path) -> bool:
    return raw.exists() and next(raw.rglob("part-*.parquet"), None) is not None


def kill_after(data: Path, env: dict[str, str], cwd: Path, delay_s: float, *, after_first_write: bool) -> bool:
    """Start ``pumptwin ingest DATA`` and SIGKILL it `delay_s` after its start or after its first partition write.

    Args:
        data: The file to ingest.
        env: The command's environment (its ``PUMPTWIN_HOME`` names the store).
        cwd: Its working folder.
        delay_s: Seconds to wait before the kill.
        after_first_write: Count `delay_s` from the moment its first partition file appears.

    Returns:
        True when it was killed, False when it had finished first.
    """
    raw = Path(env["PUMPTWIN_HOME"]) / "raw"
    proc = start_cli(["ingest", str(data)], env, cwd)
    reader = threading.Thread(target=proc.communicate, daemon=True)  # drains the pipes
    reader.start()
    start = None if after_first_write else time.perf_counter()
    killed = False
    while reader.is_alive():
        now = time.perf_counter()
        if start is None and _has_partition(raw):
            start = now
        if start is not None and now - start >= delay_s:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    reader.join()
    return killed


def run_kill_rerun(root: Path, numba_cache: Path, rows: int, seeds: int, progress: bool = True) -> dict[str, Any]:
    """Kill an ingest at a seeded random moment, rerun it, and compare with an uninterrupted ingest.

    Args:
        root: A fresh working folder.
        numba_cache: Shared numba cache folder.
        rows: Readings in the CSV.
        seeds: Kill-and-rerun repetitions (seeds 0 ... seeds-1).
        progress: Print a line per seed.

    Returns:
        The reference run, per-seed counts and totals.
    """
    base = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=30)).floor("D")
    data = root / "readings.csv"
    n = make_kill_csv(data, rows, base)
    ref_home = root / "reference"
    ref, first_write_s = timed_ingest(data, cli_env(ref_home, numba_cache), root)
    reference = store_state(ref_home)["frame"]
    if reference is None or ref.code not in (0, 1):
        return {
            "rows": n,
            "reference_exit": ref.code,
            "reference_seconds": ref.seconds,
            "error": f"the uninterrupted ingest failed: {ref.stderr.strip()[-400:]}",
            "totals": {"unreadable": 1},
        }
    if progress:
        print(
            f"  reference ingest of {n:,} rows: exit {ref.code}, {ref.seconds:.1f} s (first partition written after"
            f" {first_write_s:.1f} s), {len(reference):,} stored",
            flush=True,
        )
    runs = []
    totals: dict[str, int] = {}
    for seed in range(seeds):
        home = root / f"seed{seed}"
        env = cli_env(home, numba_cache)
        # Even seeds kill anywhere in the run; odd seeds once the run has begun writing partitions.
        writing = seed % 2 == 1
        span = (ref.seconds - first_write_s) * 0.8 if writing else ref.seconds * 0.9
        delay = (0.0 if writing else 0.05 * ref.seconds) + random.Random(seed).uniform(0.0, max(span, 0.05))
        killed = kill_after(data, env, root, delay, after_first_write=writing)
        partitions_at_kill = len(list((home / "raw").rglob("part-*.parquet"))) if (home / "raw").exists() else 0
        rerun = run_cli(["ingest", str(data)], env, root, timeout_s=1800)
        counts = judge_rerun(store_state(home), reference)
        counts["rerun_bad_exit"] = int(rerun.code not in (0, 1) or rerun.traceback)
        runs.append(
            {
                "seed": seed,
                "kill_after_s": delay,
                "kill_counted_from": "first partition write" if writing else "start",
                "killed": killed,
                "partitions_at_kill": partitions_at_kill,
                "rerun_exit": rerun.code,
                "rerun_seconds": rerun.seconds,
                **counts,
                "rerun_stderr": rerun.stderr.strip()[-300:] if counts["rerun_bad_exit"] else "",
            }
        )
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        if progress:
            print(
                f"  seed {seed}: kill {delay:5.2f} s after {'first write' if writing else 'start'}"
                f" ({'killed' if killed else 'had finished'}, {partitions_at_kill} partitions written),"
                f" rerun exit {rerun.code} in {rerun.seconds:.1f} s; "
                + ", ".join(f"{k} {v}" for k, v in counts.items()),
                flush=True,
            )
    return {
        "rows": n,
        "stored_by_reference": len(reference),
        "reference_exit": ref.code,
        "reference_seconds": ref.seconds,
        "reference_first_write_s": first_write_s,
        "seeds": seeds,
        "runs": runs,
        "totals": totals,
    }


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def counts_of(results: list[CaseResult], concurrent: dict[str, Any], kill: dict[str, Any]) -> dict[str, int]:
    """The counts that must all be 0 for the benchmark to pass."""
    kill_totals = kill.get("totals", {})
    return {
        "corpus_wrong_exit": sum(r.wrong_exit for r in results),
        "corpus_tracebacks": sum(r.traceback for r in results),
        "corpus_failed_checks": sum(1 for r in results if not r.wrong_exit and not r.traceback and r.problems),
        "concurrent_lost": concurrent.get("lost", 0),
        "concurrent_doubled": concurrent.get("doubled", 0),
        "concurrent_wrong": concurrent.get("wrong", 0) + concurrent.get("extra", 0),
        "concurrent_errors": concurrent.get("errors", 0),
        "kill_lost": kill_totals.get("lost", 0),
        "kill_doubled": kill_totals.get("doubled", 0),
        "kill_wrong": kill_totals.get("wrong", 0) + kill_totals.get("extra", 0),
        "kill_temporaries": kill_totals.get("temporaries", 0),
        "kill_watermark_mismatches": kill_totals.get("watermark_mismatches", 0),
        "kill_unreadable": kill_totals.get("unreadable", 0),
        "kill_rerun_bad_exit": kill_totals.get("rerun_bad_exit", 0),
    }


def table(results: list[CaseResult]) -> str:
    """The corpus results as a markdown table."""
    lines = ["| group | case | exit | expected | traceback | s | result |", "|---|---|---|---|---|---|---|"]
    for r in results:
        verdict = "ok" if r.ok else "; ".join(r.problems).replace("|", "/")
        lines.append(
            f"| {r.group} | {r.name} | {r.code} | {'/'.join(map(str, r.expected))} | {'yes' if r.traceback else 'no'}"
            f" | {r.seconds:.1f} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print and write the figures; exit 0 only when every count is 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases, rounds, rows and seeds")
    parser.add_argument("--procs", type=int, default=8, help="concurrent ingest processes")
    parser.add_argument("--rounds", type=int, default=None, help="concurrent rounds (default 20, 5 with --quick)")
    parser.add_argument("--rows", type=int, default=None, help="kill test readings (default 1.2 M, 200 k with --quick)")
    parser.add_argument("--seeds", type=int, default=None, help="kill test seeds (default 10, 3 with --quick)")
    parser.add_argument(
        "--only", choices=["corpus", "concurrent", "kill"], action="append", help="run only these parts"
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.quick else 20)
    rows = args.rows or (200_000 if args.quick else 1_200_000)
    seeds = args.seeds or (3 if args.quick else 10)
    parts = set(args.only or ["corpus", "concurrent", "kill"])
    from pumptwin.flows.settings import get_settings

    settings = get_settings()
    numba_cache = (settings.home / "numba").absolute()
    started = time.perf_counter()
    results: list[CaseResult] = []
    concurrent: dict[str, Any] = {}
    kill: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pumptwin-reliability-") as tmp:
        root = Path(tmp)
        if "corpus" in parts:
            cases = [c for c in corpus() if c.quick or not args.quick]
            print(f"corpus: {len(cases)} hostile inputs, each `pumptwin ...` in a subprocess", flush=True)
            (root / "corpus").mkdir()
            results = run_corpus(cases, root / "corpus", numba_cache)
            print("\n" + table(results) + "\n")
        if "concurrent" in parts:
            print(f"concurrent ingest: {args.procs} processes x {rounds} rounds into one store", flush=True)
            concurrent = run_concurrent(root / "concurrent" / "raw", args.procs, rounds)
        if "kill" in parts:
            print(f"kill and rerun: {rows:,} readings, {seeds} seeds", flush=True)
            (root / "kill").mkdir()
            kill = run_kill_rerun(root / "kill", numba_cache, rows, seeds)
    counts = counts_of(results, concurrent, kill)
    print("counts (all must be 0): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    report = {
        "benchmark": "reliability",
        "quick": args.quick,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "seconds": time.perf_counter() - started,
        "counts": counts,
        "corpus": [asdict(r) | {"ok": r.ok} for r in results],
        "concurrent": {k: v for k, v in concurrent.items()},
        "kill_rerun": kill,
    }
    path = settings.bench_dir / "reliability.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {path} in {report['seconds']:.0f} s")
    return 0 if not any(counts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
