"""Reference runner: batches of steady-state scenarios solved by EPANET 2.2's toolkit.

This is the baseline the project's own batched solver is measured against, so it
is written to be the fastest honest way to drive EPANET from Python:

* the network file is opened once and the hydraulic solver opened once
  (``EN_openH``); every scenario only changes values in memory, then runs
  ``EN_initH`` + ``EN_runH`` (one steady-state period);
* the toolkit's entry points are called through fresh ctypes prototypes bound
  to the library that :class:`wntr.epanet.toolkit.ENepanet` loaded, with
  argument types declared, so no Python wrapper runs per call;
* per-scenario work is driven by ``map`` over pre-resolved indices, and
  results are written by EPANET straight into the output arrays;
* a value is set only when it differs from the previous scenario's, so a
  batch never pays for unchanged inputs (and nothing needs resetting).

Semantics (all inputs and outputs in SI):

* ``pump_speed``: relative speed; 0 (or ``link_open`` False) stops the pump.
* ``link_open``: open/closed status of pipes, pumps and valves. A valve that
  is open follows its setting (``valve_setting``, else the file's); a valve
  with no setting in the file is then fixed open.
* ``junction_demand_m3s``: the junction's demand in the solve: the first
  demand category gets ``value / demand multiplier`` with no time pattern and
  any other categories are zeroed.
* ``emitter_coeff``: C in ``q = C p^n`` (q in m3/s, p in m of pressure head,
  n the file's emitter exponent, 0.5 by default).
* ``reservoir_head_m`` / ``tank_level_m``: fixed head of a reservoir / initial
  level of a tank above its bottom.
* ``valve_setting``: PRV/PSV/PBV in m of pressure head, FCV in m3/s, TCV the
  loss coefficient.

Time patterns of the elements a scenario set controls are removed, so the
value given is the value solved with; other elements keep their period-0
pattern multipliers (as EPANET would run the file at time 0). Simple controls
and rules are deleted unless ``apply_controls=True``: they would otherwise
override the scenario's pump and link statuses at time 0 (Net3's tank-level
controls do). By default ``EN_initH(0)`` is used, as in EPANET's own time
stepping: each scenario starts from the previous scenario's flows. A warm start
can end at another solution than a cold one, or not converge where a cold one
does (on the reference pipeline, 2 of 4,000 random scenarios: one ends 0.06 m
of head away, one does not converge and ends 377 m away), so a result then
depends on the scenarios before it.
``init_flows=True`` restarts every scenario from EPANET's initial flows
(``EN_initH(10)``) instead, which makes each result that of its own scenario.

Timing: `solve_scenarios` times its scenario loop and, inside it, the time
spent in ``EN_initH`` + ``EN_runH`` (the solver alone) and in the set calls;
the rest is reading the results. `solve_scenarios_parallel` solves disjoint
contiguous parts of a batch in separate processes whose loops start together.

EPANET's toolkit works in the file's units; this module converts with exact
factors (1 ft = 0.3048 m, 1 US gal = 3.785411784 L, ...). Pressure-based
values (emitters, PRV/PSV/PBV settings) are converted with the factor EPANET
itself uses between head and pressure (0.4333 psi/ft for US files), measured
from a probe solve of the file.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import wntr
from numpy.typing import NDArray
from wntr.epanet.exceptions import EpanetException
from wntr.epanet.toolkit import ENepanet
from wntr.epanet.util import EN

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

__all__ = [
    "EpanetResult",
    "NetworkInfo",
    "ScenarioSet",
    "concat_results",
    "random_scenarios",
    "read_network",
    "solve_file",
    "solve_scenarios",
    "solve_scenarios_parallel",
    "split_bounds",
    "take_scenarios",
]

FloatArray = NDArray[np.float64]
_Fn = Callable[..., int]  # a toolkit entry point (returns an EPANET error code)

FT = 0.3048
US_GALLON_M3 = 0.003785411784
# EN_FLOWUNITS code -> m3/s per file flow unit (exact definitions).
FLOW_FACTOR_M3S = {
    int(EN.CFS): FT**3,
    int(EN.GPM): US_GALLON_M3 / 60.0,
    int(EN.MGD): 1e6 * US_GALLON_M3 / 86400.0,
    int(EN.IMGD): 1e6 * 0.00454609 / 86400.0,
    int(EN.AFD): 43560.0 * FT**3 / 86400.0,
    int(EN.LPS): 1e-3,
    int(EN.LPM): 1e-3 / 60.0,
    int(EN.MLD): 1e3 / 86400.0,
    int(EN.CMH): 1.0 / 3600.0,
    int(EN.CMD): 1.0 / 86400.0,
}
US_FLOW_UNITS = frozenset({int(EN.CFS), int(EN.GPM), int(EN.MGD), int(EN.IMGD), int(EN.AFD)})
PSI_PER_FT = 0.4333  # EPANET's own head-to-pressure factor for US files

# Toolkit codes (EPANET 2.2 epanet2_enums.h).
_JUNCTION, _RESERVOIR, _TANK = int(EN.JUNCTION), int(EN.RESERVOIR), int(EN.TANK)
_CVPIPE, _PIPE, _PUMP = int(EN.CVPIPE), int(EN.PIPE), int(EN.PUMP)
_PRV, _PSV, _PBV, _FCV, _TCV, _GPV = (int(EN.PRV), int(EN.PSV), int(EN.PBV), int(EN.FCV), int(EN.TCV), int(EN.GPV))
_ELEVATION, _PATTERN, _EMITTER, _TANKLEVEL = int(EN.ELEVATION), int(EN.PATTERN), int(EN.EMITTER), int(EN.TANKLEVEL)
_HEAD, _PRESSURE, _MINLEVEL, _MAXLEVEL = int(EN.HEAD), int(EN.PRESSURE), int(EN.MINLEVEL), int(EN.MAXLEVEL)
_INITSTATUS, _INITSETTING, _FLOW, _STATUS = int(EN.INITSTATUS), int(EN.INITSETTING), int(EN.FLOW), int(EN.STATUS)
_LINKPATTERN = int(EN.LINKPATTERN)
_TRIALS, _ACCURACY, _EMITEXPON, _DEMANDMULT = int(EN.TRIALS), int(EN.ACCURACY), int(EN.EMITEXPON), int(EN.DEMANDMULT)
_DURATION, _ITERATIONS = int(EN.DURATION), int(EN.ITERATIONS)
_NODECOUNT, _LINKCOUNT, _CONTROLCOUNT, _RULECOUNT = int(EN.NODECOUNT), int(EN.LINKCOUNT), int(EN.CONTROLCOUNT), 6
_MISSING_BELOW = -1e8  # EPANET stores "no setting" as -1e10 (times a unit factor)
_DOUBLE = 8  # bytes per float64 result written by the toolkit
_FIRST_ERROR = 100  # EPANET codes below this are warnings
_MIN_PROBE_HEAD = 1e-3  # a junction's |head - elevation| that gives the pressure factor to full precision

# random_scenarios' distributions.
PUMP_SPEED_RANGE = (0.8, 1.05)
PUMP_OFF_PROBABILITY = 0.15
DEMAND_SCALE_RANGE = (0.6, 1.4)  # one factor per scenario
DEMAND_LOCAL_RANGE = (0.9, 1.1)  # one factor per junction and scenario
LEAK_PROBABILITY = 0.5
LEAK_FLOW_RANGE_M3S = (0.5e-3, 5e-3)  # leak flow at LEAK_PRESSURE_M
LEAK_PRESSURE_M = 30.0

_int, _dbl, _ptr = ctypes.c_int, ctypes.c_double, ctypes.c_void_p


@dataclass
class ScenarioSet:
    """B scenarios: each field maps an EPANET id to an array of shape (B,) (SI units).

    Attributes:
        n: Number of scenarios B.
        pump_speed: Relative pump speed; 0 stops the pump.
        link_open: True open / False closed, for pipes, pumps and valves.
        junction_demand_m3s: Junction demand in m3/s (replaces its base demand; no pattern).
        emitter_coeff: C in q = C p^0.5 (q m3/s, p m); 0 = no emitter.
        reservoir_head_m: Reservoir head in m.
        tank_level_m: Initial tank level above the tank bottom in m.
        valve_setting: PRV/PSV/PBV m of head, FCV m3/s, TCV loss coefficient.
    """

    n: int
    pump_speed: dict[str, np.ndarray] = field(default_factory=dict)
    link_open: dict[str, np.ndarray] = field(default_factory=dict)
    junction_demand_m3s: dict[str, np.ndarray] = field(default_factory=dict)
    emitter_coeff: dict[str, np.ndarray] = field(default_factory=dict)
    reservoir_head_m: dict[str, np.ndarray] = field(default_factory=dict)
    tank_level_m: dict[str, np.ndarray] = field(default_factory=dict)
    valve_setting: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class EpanetResult:
    """Results of a scenario batch (SI units).

    Attributes:
        node_ids: Node ids in EPANET's index order (columns of ``head_m``).
        link_ids: Link ids in EPANET's index order (columns of ``flow_m3s``, ``status``).
        head_m: (B, n_nodes) hydraulic heads in m.
        flow_m3s: (B, n_links) flows in m3/s, positive from start to end node.
        status: (B, n_links) EN_STATUS after the solve (EPANET 2.2: 0 closed, 1 open or active).
        elapsed_s: Wall time of the scenario loop (set calls, solves, get calls), s.
        iterations: (B,) solver iterations (EN_ITERATIONS), -1 where a scenario failed.
        code: (B,) EN_runH return code: 0 ok, 1-6 EPANET warnings (1 = did not converge
            within the trials, 6 = negative pressures, ...), >= 100 error (results NaN).
        solver_s: Time spent inside the EN_initH and EN_runH calls only (EPANET's own solver), s.
        set_s: Time spent setting the scenarios' values (the ctypes set calls), s.
        started_s: ``time.perf_counter()`` when the scenario loop started, s (a system-wide
            monotonic clock, so loops timed in different processes can be laid side by side).
    """

    node_ids: list[str]
    link_ids: list[str]
    head_m: FloatArray
    flow_m3s: FloatArray
    status: NDArray[np.int32]
    elapsed_s: float
    iterations: NDArray[np.int64]
    code: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    solver_s: float = 0.0
    set_s: float = 0.0
    started_s: float = 0.0


@dataclass(frozen=True)
class NetworkInfo:
    """Element ids, types and base values of an EPANET file, read with the toolkit (SI units).

    Attributes:
        node_ids: Node ids in index order.
        node_types: EN node type codes (0 junction, 1 reservoir, 2 tank).
        link_ids: Link ids in index order.
        link_types: EN link type codes (0 CV pipe, 1 pipe, 2 pump, 3+ valves).
        flow_units: EN_FLOWUNITS code of the file.
        flow_factor: m3/s per file flow unit.
        head_factor: m per file length unit (0.3048 for US files, else 1).
        base_demand_m3s: (n_nodes,) total base demand (times the demand multiplier), 0 off junctions.
        emitter_file: (n_nodes,) emitter coefficients in file units (0 = none).
        min_level_m: (n_nodes,) tank minimum levels (NaN off tanks).
        max_level_m: (n_nodes,) tank maximum levels (NaN off tanks).
        demand_multiplier: The file's global demand multiplier.
        emitter_exponent: The file's emitter exponent.
    """

    node_ids: list[str]
    node_types: NDArray[np.int64]
    link_ids: list[str]
    link_types: NDArray[np.int64]
    flow_units: int
    flow_factor: float
    head_factor: float
    base_demand_m3s: FloatArray
    emitter_file: FloatArray
    min_level_m: FloatArray
    max_level_m: FloatArray
    demand_multiplier: float
    emitter_exponent: float

    def ids_of_node_type(self, node_type: int) -> list[str]:
        """Ids of the nodes of one EN type code."""
        return [i for i, t in zip(self.node_ids, self.node_types, strict=True) if t == node_type]

    def ids_of_link_type(self, link_type: int) -> list[str]:
        """Ids of the links of one EN type code."""
        return [i for i, t in zip(self.link_ids, self.link_types, strict=True) if t == link_type]


class _Project:
    """An open EPANET 2.2 project with typed entry points.

    The prototypes are bound to the library ``ENepanet`` loaded, but are new
    function objects, so declaring argument types does not touch wntr's own.
    """

    def __init__(self, inp_path: str | os.PathLike[str]) -> None:
        path = Path(inp_path)
        if not path.is_file():
            raise FileNotFoundError(path)
        self.en = ENepanet()
        self.en.ENopen(str(path), os.devnull, "")
        self.ph = ctypes.c_void_p(self.en._project.value)  # noqa: SLF001 - the project handle of the 2.2 API
        lib = self.en.ENlib

        def fn(name: str, *argtypes: type) -> _Fn:
            return ctypes.CFUNCTYPE(_int, _ptr, *argtypes)((name, lib))

        self.setnodevalue = fn("EN_setnodevalue", _int, _int, _dbl)
        self.setlinkvalue = fn("EN_setlinkvalue", _int, _int, _dbl)
        self.setbasedemand = fn("EN_setbasedemand", _int, _int, _dbl)
        self.getnodevalue = fn("EN_getnodevalue", _int, _int, _ptr)
        self.getlinkvalue = fn("EN_getlinkvalue", _int, _int, _ptr)
        self.getbasedemand = fn("EN_getbasedemand", _int, _int, _ptr)
        self.getnumdemands = fn("EN_getnumdemands", _int, _ptr)
        self.setdemandpattern = fn("EN_setdemandpattern", _int, _int, _int)
        self.adddemand = fn("EN_adddemand", _int, _dbl, ctypes.c_char_p, ctypes.c_char_p)
        self.getoption = fn("EN_getoption", _int, _ptr)
        self.setoption = fn("EN_setoption", _int, _dbl)
        self.settimeparam = fn("EN_settimeparam", _int, ctypes.c_long)
        self.setstatusreport = fn("EN_setstatusreport", _int)
        self.deletecontrol = fn("EN_deletecontrol", _int)
        self.deleterule = fn("EN_deleterule", _int)
        self.getstatistic = fn("EN_getstatistic", _int, _ptr)
        self.getnodeid = fn("EN_getnodeid", _int, ctypes.c_char_p)
        self.getlinkid = fn("EN_getlinkid", _int, ctypes.c_char_p)
        self.openH = fn("EN_openH")
        self.initH = fn("EN_initH", _int)
        self.runH = fn("EN_runH", _ptr)
        self.closeH = fn("EN_closeH")
        self._value = ctypes.c_double()
        self._value_addr = ctypes.addressof(self._value)

        # Hot-path entry points without declared argument types: ctypes then passes
        # Python ints and ctypes objects straight through, about twice as fast as
        # converting each argument (measured 0.35 vs 0.74 us per EN_getnodevalue call).
        def raw(name: str) -> _Fn:
            f = ctypes.CFUNCTYPE(_int)((name, lib))
            f.argtypes = None  # type: ignore[assignment]
            return f

        self.raw_setnodevalue = raw("EN_setnodevalue")
        self.raw_setlinkvalue = raw("EN_setlinkvalue")
        self.raw_setbasedemand = raw("EN_setbasedemand")
        self.raw_getnodevalue = raw("EN_getnodevalue")
        self.raw_getlinkvalue = raw("EN_getlinkvalue")
        self.raw_getstatistic = raw("EN_getstatistic")
        self.raw_initH = raw("EN_initH")
        self.raw_runH = raw("EN_runH")

    @staticmethod
    def check(code: int) -> None:
        """Raise for an EPANET error code (>= 100)."""
        if code >= _FIRST_ERROR:
            raise EpanetException(code)

    def node(self, index: int, code: int) -> float:
        """One node property, file units."""
        self.check(self.getnodevalue(self.ph, index, code, self._value_addr))
        return self._value.value

    def link(self, index: int, code: int) -> float:
        """One link property, file units."""
        self.check(self.getlinkvalue(self.ph, index, code, self._value_addr))
        return self._value.value

    def option(self, code: int) -> float:
        """One analysis option."""
        self.check(self.getoption(self.ph, code, self._value_addr))
        return self._value.value

    def num_demands(self, index: int) -> int:
        """Number of demand categories of a junction."""
        n = ctypes.c_int()
        self.check(self.getnumdemands(self.ph, index, ctypes.addressof(n)))
        return n.value

    def base_demand(self, index: int, category: int) -> float:
        """Base demand of one demand category, file units."""
        self.check(self.getbasedemand(self.ph, index, category, self._value_addr))
        return self._value.value

    def info(self) -> NetworkInfo:
        """Ids, types and base values of the open network."""
        en = self.en
        n_nodes, n_links = en.ENgetcount(_NODECOUNT), en.ENgetcount(_LINKCOUNT)
        buf = ctypes.create_string_buffer(64)  # EN_MAXID is 31 characters

        def ident(getter: _Fn, i: int) -> str:
            self.check(getter(self.ph, i, buf))
            return buf.value.decode("latin-1")

        node_ids = [ident(self.getnodeid, i) for i in range(1, n_nodes + 1)]
        node_types = np.array([en.ENgetnodetype(i) for i in range(1, n_nodes + 1)], dtype=np.int64)
        link_ids = [ident(self.getlinkid, i) for i in range(1, n_links + 1)]
        link_types = np.array([en.ENgetlinktype(i) for i in range(1, n_links + 1)], dtype=np.int64)
        units = en.ENgetflowunits()
        qf = FLOW_FACTOR_M3S[units]
        hf = FT if units in US_FLOW_UNITS else 1.0
        dmult = self.option(_DEMANDMULT)
        base = np.zeros(n_nodes)
        emit = np.zeros(n_nodes)
        lo = np.full(n_nodes, np.nan)
        hi = np.full(n_nodes, np.nan)
        for i in range(1, n_nodes + 1):
            t = node_types[i - 1]
            if t == _JUNCTION:
                total = sum(self.base_demand(i, c) for c in range(1, self.num_demands(i) + 1))
                base[i - 1] = total * dmult * qf
                emit[i - 1] = self.node(i, _EMITTER)
            elif t == _TANK:
                lo[i - 1] = self.node(i, _MINLEVEL) * hf
                hi[i - 1] = self.node(i, _MAXLEVEL) * hf
        return NetworkInfo(
            node_ids=node_ids,
            node_types=node_types,
            link_ids=link_ids,
            link_types=link_types,
            flow_units=units,
            flow_factor=qf,
            head_factor=hf,
            base_demand_m3s=base,
            emitter_file=emit,
            min_level_m=lo,
            max_level_m=hi,
            demand_multiplier=dmult,
            emitter_exponent=self.option(_EMITEXPON),
        )

    def pressure_per_m(self, info: NetworkInfo) -> float:
        """File pressure units per m of head, as EPANET converts them (probe solve of the file as it is)."""
        self.check(self.openH(self.ph))
        try:
            self.check(self.initH(self.ph, 0))
            t = ctypes.c_long()
            self.check(self.runH(self.ph, ctypes.addressof(t)))
            best, ratio = 0.0, math.nan
            for i in np.flatnonzero(info.node_types == _JUNCTION) + 1:
                dh = self.node(int(i), _HEAD) - self.node(int(i), _ELEVATION)
                if abs(dh) > best:
                    best, ratio = abs(dh), self.node(int(i), _PRESSURE) / dh
        finally:
            self.check(self.closeH(self.ph))
        if best > _MIN_PROBE_HEAD:
            return ratio / info.head_factor
        return PSI_PER_FT / FT if info.flow_units in US_FLOW_UNITS else 1.0

    def close(self) -> None:
        """Close the project."""
        self.en.ENclose()


def read_network(inp_path: str | os.PathLike[str]) -> NetworkInfo:
    """Ids, types and base values of an EPANET file, read with the toolkit."""
    proj = _Project(inp_path)
    try:
        return proj.info()
    finally:
        proj.close()


# --------------------------------------------------------------------------------------------
# Scenario inputs -> per-scenario toolkit calls
# --------------------------------------------------------------------------------------------


class _Calls:
    """Toolkit set calls of one kind: column j sets (index[j], code[b, j], value[b, j]) in scenario b."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.index: list[int] = []
        self.codes: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    def add(self, index: int, code: int | np.ndarray, values: np.ndarray) -> None:
        self.index.append(index)
        self.codes.append(np.broadcast_to(np.asarray(code, dtype=np.int64), (self.n,)))
        self.values.append(np.asarray(values, dtype=np.float64))

    def schedule(self) -> tuple[list[int], list[int], list[float], list[int]]:
        """Flat argument lists of the calls whose (code, value) changed from the previous scenario.

        Returns (index, code, value, offsets): scenario b makes calls offsets[b]:offsets[b + 1].
        """
        if not self.index:
            return [], [], [], [0] * (self.n + 1)
        idx = np.asarray(self.index, dtype=np.int64)
        code = np.stack(self.codes, axis=1)
        val = np.stack(self.values, axis=1)
        changed = np.ones(code.shape, dtype=bool)
        changed[1:] = (code[1:] != code[:-1]) | (val[1:] != val[:-1])
        rows, cols = np.nonzero(changed)
        offsets = np.concatenate(([0], np.cumsum(changed.sum(axis=1)))).tolist()
        return idx[cols].tolist(), code[rows, cols].tolist(), val[rows, cols].tolist(), offsets


def _lookup(index_of: dict[str, int], key: str, what: str) -> int:
    try:
        return index_of[key]
    except KeyError:
        raise KeyError(f"{what}: no element {key!r} in the network") from None


class _Planner:
    """Validates a scenario set, applies its one-off model changes and builds its set calls (file units)."""

    def __init__(self, proj: _Project, info: NetworkInfo, sc: ScenarioSet) -> None:
        self.proj, self.info, self.sc, self.n = proj, info, sc, sc.n
        self.node_index = {k: i + 1 for i, k in enumerate(info.node_ids)}
        self.link_index = {k: i + 1 for i, k in enumerate(info.link_ids)}
        self.nodes, self.demands, self.links = _Calls(self.n), _Calls(self.n), _Calls(self.n)
        pressure_valves = (_PRV, _PSV, _PBV)
        needs_pressure = bool(sc.emitter_coeff) or any(
            info.link_types[_lookup(self.link_index, k, "valve_setting") - 1] in pressure_valves
            for k in sc.valve_setting
        )
        # File pressure units per m of head (only needed for emitters and pressure settings).
        self.fp = proj.pressure_per_m(info) if needs_pressure else 1.0

    def column(self, what: str, key: str, dtype: type = np.float64, *, nonnegative: bool = False) -> np.ndarray:
        """One scenario column, checked for shape (and for finite values >= 0 when asked)."""
        arr = np.asarray(getattr(self.sc, what)[key])
        if arr.shape != (self.n,):
            raise ValueError(f"{what}[{key!r}]: expected shape ({self.n},), got {arr.shape}")
        arr = arr.astype(dtype)
        if nonnegative and ((arr < 0).any() or not np.isfinite(arr).all()):
            raise ValueError(f"{what}[{key!r}]: values must be finite and >= 0")
        return arr

    def node(self, key: str, what: str, node_type: int) -> int:
        """Index of a node of the expected type."""
        i = _lookup(self.node_index, key, what)
        if self.info.node_types[i - 1] != node_type:
            raise ValueError(f"{what}: {key!r} is not a {('junction', 'reservoir', 'tank')[node_type]}")
        return i

    def plan_nodes(self) -> None:
        """Demands, emitters, reservoir heads and tank levels."""
        proj, info, sc = self.proj, self.info, self.sc
        ph, qf, hf = proj.ph, info.flow_factor, info.head_factor
        for key in sc.junction_demand_m3s:
            i = self.node(key, "junction_demand_m3s", _JUNCTION)
            v = self.column("junction_demand_m3s", key)
            if info.demand_multiplier == 0:
                raise ValueError("junction_demand_m3s: the file's demand multiplier is 0")
            ncat = proj.num_demands(i)
            if ncat == 0:
                proj.check(proj.adddemand(ph, i, 0.0, b"", b""))
                ncat = 1
            for c in range(2, ncat + 1):
                proj.check(proj.setbasedemand(ph, i, c, 0.0))
            proj.check(proj.setdemandpattern(ph, i, 1, 0))
            self.demands.add(i, 1, v / (qf * info.demand_multiplier))
        for key in sc.emitter_coeff:
            i = self.node(key, "emitter_coeff", _JUNCTION)
            v = self.column("emitter_coeff", key, nonnegative=True)
            self.nodes.add(i, _EMITTER, v / (qf * self.fp**info.emitter_exponent))
        for key in sc.reservoir_head_m:
            i = self.node(key, "reservoir_head_m", _RESERVOIR)
            proj.check(proj.setnodevalue(ph, i, _PATTERN, 0.0))
            self.nodes.add(i, _ELEVATION, self.column("reservoir_head_m", key) / hf)
        for key in sc.tank_level_m:
            i = self.node(key, "tank_level_m", _TANK)
            v = self.column("tank_level_m", key)
            lo, hi = info.min_level_m[i - 1], info.max_level_m[i - 1]
            tol = 1e-9 * (1.0 + abs(hi))
            if (v < lo - tol).any() or (v > hi + tol).any() or not np.isfinite(v).all():
                raise ValueError(f"tank_level_m[{key!r}]: levels must lie within [{lo}, {hi}] m")
            lo_f, hi_f = proj.node(i, _MINLEVEL), proj.node(i, _MAXLEVEL)
            margin = min(1e-9, 0.25 * (hi_f - lo_f))  # keep the round trip through EPANET's units inside
            self.nodes.add(i, _TANKLEVEL, np.clip(v / hf, lo_f + margin, hi_f - margin))

    def plan_links(self) -> None:
        """Pump speeds, link statuses and valve settings."""
        sc = self.sc
        for key in dict.fromkeys([*sc.pump_speed, *sc.link_open, *sc.valve_setting]):
            k = _lookup(self.link_index, key, "link")
            t = int(self.info.link_types[k - 1])
            is_open = self.column("link_open", key, bool) if key in sc.link_open else np.ones(self.n, dtype=bool)
            if t == _PUMP:
                self.plan_pump(key, k, is_open)
                continue
            if key in sc.pump_speed:
                raise ValueError(f"pump_speed: {key!r} is not a pump")
            if t in (_PIPE, _CVPIPE):
                if key in sc.valve_setting:
                    raise ValueError(f"valve_setting: {key!r} is a pipe")
                if t == _CVPIPE and not is_open.all():
                    raise ValueError(f"link_open: {key!r} has a check valve; EPANET cannot close it")
                if t == _PIPE:
                    self.links.add(k, _INITSTATUS, is_open.astype(np.float64))
                continue
            self.plan_valve(key, k, t, is_open)

    def plan_pump(self, key: str, k: int, is_open: np.ndarray) -> None:
        """A pump: one EN_INITSETTING call (speed, 0 = closed); its speed pattern is removed."""
        if key in self.sc.valve_setting:
            raise ValueError(f"valve_setting: {key!r} is a pump")
        if key in self.sc.pump_speed:
            speed = self.column("pump_speed", key, nonnegative=True)
        else:
            s0 = self.proj.link(k, _INITSETTING)
            speed = np.full(self.n, s0 if s0 > 0 else 1.0)
        self.proj.check(self.proj.setlinkvalue(self.proj.ph, k, _LINKPATTERN, 0.0))
        self.links.add(k, _INITSETTING, np.where(is_open, speed, 0.0))

    def plan_valve(self, key: str, k: int, t: int, is_open: np.ndarray) -> None:
        """A valve: closed (EN_INITSTATUS 0), or active at its setting (EN_INITSETTING), or fixed open."""
        if key in self.sc.valve_setting:
            if t == _GPV:
                raise ValueError(f"valve_setting: {key!r} is a GPV (its setting is a curve)")
            s = self.column("valve_setting", key, nonnegative=True)
            to_file = {_PRV: self.fp, _PSV: self.fp, _PBV: self.fp, _FCV: 1.0 / self.info.flow_factor}
            setting = s * to_file.get(t, 1.0)
        else:
            s0 = self.proj.link(k, _INITSETTING) if t != _GPV else _MISSING_BELOW * 10
            setting = np.full(self.n, np.nan if s0 <= _MISSING_BELOW else s0)
        fixed_open = np.isnan(setting)
        code = np.where(~is_open | fixed_open, _INITSTATUS, _INITSETTING)
        value = np.where(~is_open, 0.0, np.where(fixed_open, 1.0, setting))
        self.links.add(k, code, value)


# --------------------------------------------------------------------------------------------
# Solve
# --------------------------------------------------------------------------------------------


def solve_scenarios(  # noqa: PLR0912, PLR0913, PLR0915
    inp_path: str | os.PathLike[str],
    scenarios: ScenarioSet,
    accuracy: float = 1e-8,
    trials: int = 200,
    *,
    apply_controls: bool = False,
    init_flows: bool = False,
    before_loop: Callable[[], object] | None = None,
) -> EpanetResult:
    """Solve B steady-state scenarios of an EPANET network with the EPANET 2.2 toolkit.

    Args:
        inp_path: EPANET .inp file.
        scenarios: The scenarios (SI units; see the module docstring for each field's meaning).
        accuracy: EPANET's ACCURACY (sum |dq| / sum |q| at convergence).
        trials: EPANET's TRIALS (maximum iterations; extra trials follow the file's UNBALANCED option).
        apply_controls: Keep the file's simple controls and rules (applied at time 0).
        init_flows: Restart every scenario from EPANET's initial flows (``EN_initH(10)``) instead of
            the previous scenario's solution (``EN_initH(0)``).
        before_loop: Called once everything is set up, right before the timed loop starts (e.g. a
            barrier that starts loops in several processes together).

    Returns:
        Heads, flows and statuses per scenario; ``elapsed_s`` times the scenario loop only, of which
        ``solver_s`` is spent inside EN_initH/EN_runH and ``set_s`` in the set calls.
    """
    n = int(scenarios.n)
    if n < 0:
        raise ValueError("scenarios.n must be >= 0")
    proj = _Project(inp_path)
    try:
        info = proj.info()
        ph = proj.ph
        proj.check(proj.settimeparam(ph, _DURATION, 0))
        proj.check(proj.setoption(ph, _TRIALS, float(trials)))
        proj.check(proj.setoption(ph, _ACCURACY, float(accuracy)))
        proj.check(proj.setstatusreport(ph, 0))
        if not apply_controls:
            for i in range(proj.en.ENgetcount(_CONTROLCOUNT), 0, -1):
                proj.check(proj.deletecontrol(ph, i))
            for i in range(proj.en.ENgetcount(_RULECOUNT), 0, -1):
                proj.check(proj.deleterule(ph, i))
        plan = _Planner(proj, info, scenarios)
        plan.plan_nodes()
        plan.plan_links()
        n_idx, n_code, n_val, n_off = plan.nodes.schedule()
        d_idx, d_code, d_val, d_off = plan.demands.schedule()
        l_idx, l_code, l_val, l_off = plan.links.schedule()

        nn, nl = len(info.node_ids), len(info.link_ids)
        head = np.full((n, nn), np.nan)
        flow = np.full((n, nl), np.nan)
        status = np.full((n, nl), np.nan)
        iters = np.full(n, -1.0)
        codes = np.zeros(n, dtype=np.int32)
        # Reused ctypes objects: EPANET writes one scenario's results into these row buffers.
        head_row, flow_row, status_row = (ctypes.c_double * nn)(), (ctypes.c_double * nl)(), (ctypes.c_double * nl)()
        head_ptr = [ctypes.byref(head_row, _DOUBLE * i) for i in range(nn)]
        flow_ptr = [ctypes.byref(flow_row, _DOUBLE * i) for i in range(nl)]
        status_ptr = [ctypes.byref(status_row, _DOUBLE * i) for i in range(nl)]
        head_np, flow_np, status_np = (np.ctypeslib.as_array(a) for a in (head_row, flow_row, status_row))
        node_range, link_range = range(1, nn + 1), range(1, nl + 1)
        n_iter, t_now = ctypes.c_double(), ctypes.c_long()
        n_iter_ptr, t_ptr = ctypes.byref(n_iter), ctypes.byref(t_now)
        setnode, setdemand, setlink = proj.raw_setnodevalue, proj.raw_setbasedemand, proj.raw_setlinkvalue
        getnode, getlink, getstat = proj.raw_getnodevalue, proj.raw_getlinkvalue, proj.raw_getstatistic
        init_h, run_h = proj.raw_initH, proj.raw_runH
        dbl = ctypes.c_double
        flag = 10 if init_flows else 0
        proj.check(proj.openH(ph))
        if before_loop is not None:
            before_loop()

        clock = time.perf_counter
        solver_s = set_s = 0.0
        t0 = clock()
        init = flag
        for b in range(n):
            t_set = clock()
            s, e = n_off[b], n_off[b + 1]
            if e > s and any(map(setnode, repeat(ph), n_idx[s:e], n_code[s:e], map(dbl, n_val[s:e]))):
                _raise_first(setnode, ph, n_idx[s:e], n_code[s:e], n_val[s:e])
            s, e = d_off[b], d_off[b + 1]
            if e > s and any(map(setdemand, repeat(ph), d_idx[s:e], d_code[s:e], map(dbl, d_val[s:e]))):
                _raise_first(setdemand, ph, d_idx[s:e], d_code[s:e], d_val[s:e])
            s, e = l_off[b], l_off[b + 1]
            if e > s and any(map(setlink, repeat(ph), l_idx[s:e], l_code[s:e], map(dbl, l_val[s:e]))):
                _raise_first(setlink, ph, l_idx[s:e], l_code[s:e], l_val[s:e])
            t_solve = clock()
            init_h(ph, init)
            rc = run_h(ph, t_ptr)
            t_done = clock()
            set_s += t_solve - t_set
            solver_s += t_done - t_solve
            if rc:
                codes[b] = rc
                if rc >= _FIRST_ERROR:  # failed solve: leave NaN, restart the next one from initial flows
                    init = 10
                    continue
            init = flag
            getstat(ph, _ITERATIONS, n_iter_ptr)
            if (
                any(map(getnode, repeat(ph), node_range, repeat(_HEAD), head_ptr))
                or any(map(getlink, repeat(ph), link_range, repeat(_FLOW), flow_ptr))
                or any(map(getlink, repeat(ph), link_range, repeat(_STATUS), status_ptr))
            ):
                raise RuntimeError("EPANET: reading results failed")
            iters[b] = n_iter.value
            head[b] = head_np
            flow[b] = flow_np
            status[b] = status_np
        head *= info.head_factor
        flow *= info.flow_factor
        elapsed = time.perf_counter() - t0

        proj.check(proj.closeH(ph))
    finally:
        proj.close()
    return EpanetResult(
        node_ids=info.node_ids,
        link_ids=info.link_ids,
        head_m=head,
        flow_m3s=flow,
        status=np.where(np.isnan(status), -1, status).astype(np.int32),
        elapsed_s=elapsed,
        iterations=iters.astype(np.int64),
        code=codes,
        solver_s=solver_s,
        set_s=set_s,
        started_s=t0,
    )


def _raise_first(fn: _Fn, ph: ctypes.c_void_p, idx: list[int], code: list[int], val: list[float]) -> None:
    """Redo a failed group of set calls one by one and raise for the first error."""
    for i, c, v in zip(idx, code, val, strict=True):
        rc = fn(ph, i, c, ctypes.c_double(v))
        if rc:
            raise EpanetException(rc)


# --------------------------------------------------------------------------------------------
# Several processes
# --------------------------------------------------------------------------------------------


def split_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """Disjoint, contiguous ``(start, stop)`` ranges that cover scenarios 0..n-1 in near-equal parts.

    Args:
        n: Number of scenarios.
        parts: Number of ranges (at least 1; ranges are empty where parts > n).

    Returns:
        ``parts`` ranges, in order.
    """
    if n < 0 or parts < 1:
        raise ValueError("need n >= 0 and parts >= 1")
    edges = [n * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def take_scenarios(scenarios: ScenarioSet, start: int, stop: int) -> ScenarioSet:
    """Scenarios ``start`` to ``stop - 1`` of a set, every field's columns cut alike."""
    if not 0 <= start <= stop <= scenarios.n:
        raise ValueError(f"range {start}:{stop} is not within 0:{scenarios.n}")
    columns = {
        f.name: {k: np.asarray(v)[start:stop].copy() for k, v in getattr(scenarios, f.name).items()}
        for f in fields(ScenarioSet)
        if f.name != "n"
    }
    return ScenarioSet(n=stop - start, **columns)


def concat_results(parts: list[EpanetResult]) -> EpanetResult:
    """Results of consecutive scenario ranges, solved side by side in separate processes, as one result.

    Times are wall-clock figures of loops run together: ``elapsed_s`` spans from the first loop's
    start to the last loop's end; ``solver_s`` and ``set_s`` are the largest of the parts'.
    """
    if not parts:
        raise ValueError("no results to join")
    start = min(r.started_s for r in parts)
    return EpanetResult(
        node_ids=parts[0].node_ids,
        link_ids=parts[0].link_ids,
        head_m=np.concatenate([r.head_m for r in parts]),
        flow_m3s=np.concatenate([r.flow_m3s for r in parts]),
        status=np.concatenate([r.status for r in parts]),
        elapsed_s=max(r.started_s + r.elapsed_s for r in parts) - start,
        iterations=np.concatenate([r.iterations for r in parts]),
        code=np.concatenate([r.code for r in parts]),
        solver_s=max(r.solver_s for r in parts),
        set_s=max(r.set_s for r in parts),
        started_s=start,
    )


_PARALLEL_TIMEOUT_S = 3600.0


def _solve_part(  # noqa: PLR0913 - a process entry point gets everything it needs as arguments
    inp_path: str,
    scenarios: ScenarioSet,
    options: dict[str, Any],
    barrier: Barrier,
    results: Queue[tuple[int, EpanetResult | None, str]],
    part: int,
) -> None:
    """Process body of `solve_scenarios_parallel`: set up, wait for the others, run the loop, send the result."""
    try:
        res = solve_scenarios(inp_path, scenarios, before_loop=lambda: barrier.wait(_PARALLEL_TIMEOUT_S), **options)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
        results.put((part, None, f"{type(exc).__name__}: {exc}"))
        barrier.abort()  # the others stop waiting
        return
    results.put((part, res, ""))


def solve_scenarios_parallel(  # noqa: PLR0913
    inp_path: str | os.PathLike[str],
    scenarios: ScenarioSet,
    processes: int,
    accuracy: float = 1e-8,
    trials: int = 200,
    *,
    apply_controls: bool = False,
    init_flows: bool = False,
) -> EpanetResult:
    """Solve B scenarios with ``processes`` EPANET processes, each on a disjoint contiguous range.

    Each process (started with ``spawn``) opens the file and plans its calls, then all start
    their scenario loops together (a barrier) and run them as `solve_scenarios` does.

    Args:
        inp_path: EPANET .inp file.
        scenarios: The scenarios (SI units).
        processes: Number of processes (ranges), at least 1.
        accuracy: EPANET's ACCURACY.
        trials: EPANET's TRIALS.
        apply_controls: Keep the file's simple controls and rules.
        init_flows: Restart every scenario from EPANET's initial flows (``EN_initH(10)``).

    Returns:
        The joined result (see `concat_results` for its times): ``elapsed_s`` is the wall time
        from the first loop's start to the last loop's end.
    """
    options = {"accuracy": accuracy, "trials": trials, "apply_controls": apply_controls, "init_flows": init_flows}
    bounds = split_bounds(int(scenarios.n), processes)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(bounds))
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=_solve_part,
            args=(str(inp_path), take_scenarios(scenarios, a, b), options, barrier, results, i),
            daemon=True,
        )
        for i, (a, b) in enumerate(bounds)
    ]
    for proc in procs:
        proc.start()
    got: dict[int, EpanetResult] = {}
    errors: dict[int, str] = {}
    deadline = time.monotonic() + _PARALLEL_TIMEOUT_S
    try:
        while len(got) + len(errors) < len(procs):  # every worker reports once, a result or an error
            try:
                part, res, error = results.get(timeout=1.0)
            except queue.Empty:
                dead = [
                    p.exitcode
                    for i, p in enumerate(procs)
                    if p.exitcode not in (None, 0) and i not in got and i not in errors
                ]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"EPANET worker processes failed (exit codes {dead})") from None
                continue
            if res is None:
                errors[part] = error
            else:
                got[part] = res
        if errors:
            raise RuntimeError("EPANET workers failed: " + "; ".join(f"{i}: {e}" for i, e in sorted(errors.items())))
    finally:
        for proc in procs:
            proc.join(timeout=10.0)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    return concat_results([got[i] for i in range(len(procs))])


# --------------------------------------------------------------------------------------------
# Random scenarios
# --------------------------------------------------------------------------------------------


def random_scenarios(inp_path: str | os.PathLike[str], n: int, seed: int) -> ScenarioSet:
    """Draw n random operating scenarios of a network (deterministic for a seed).

    Per scenario: each pump runs at a speed uniform in [0.8, 1.05] or is off with
    probability 0.15 (at least one pump stays on); every junction's demand is its
    base demand times a scenario-wide factor uniform in [0.6, 1.4] times a
    per-junction factor uniform in [0.9, 1.1]; with probability 0.5 one random
    junction (without an emitter in the file) leaks through an emitter that
    discharges 0.5-5 L/s at 30 m; tank levels are uniform between their minimum
    and maximum. Reservoirs keep their heads.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    info = read_network(inp_path)
    rng = np.random.default_rng(seed)
    pumps = info.ids_of_link_type(_PUMP)
    junctions = info.ids_of_node_type(_JUNCTION)
    tanks = info.ids_of_node_type(_TANK)
    node_pos = {k: i for i, k in enumerate(info.node_ids)}

    speed = rng.uniform(*PUMP_SPEED_RANGE, size=(n, len(pumps)))
    off = rng.random((n, len(pumps))) < PUMP_OFF_PROBABILITY
    keep = rng.integers(0, max(len(pumps), 1), size=n)
    if pumps:
        all_off = np.flatnonzero(off.all(axis=1))
        off[all_off, keep[all_off]] = False
    speed[off] = 0.0

    jpos = np.array([node_pos[k] for k in junctions], dtype=np.int64)
    base = info.base_demand_m3s[jpos]
    scale = rng.uniform(*DEMAND_SCALE_RANGE, size=n)
    local = rng.uniform(*DEMAND_LOCAL_RANGE, size=(n, len(junctions)))
    demand = base[None, :] * scale[:, None] * local

    eligible = np.flatnonzero(info.emitter_file[jpos] == 0)
    leaks = rng.random(n) < LEAK_PROBABILITY
    where = rng.integers(0, max(len(eligible), 1), size=n)
    q_leak = rng.uniform(*LEAK_FLOW_RANGE_M3S, size=n)
    emitter: dict[str, np.ndarray] = {}
    if len(eligible):
        for b in np.flatnonzero(leaks):
            key = junctions[eligible[where[b]]]
            emitter.setdefault(key, np.zeros(n))[b] = q_leak[b] / math.sqrt(LEAK_PRESSURE_M)

    tpos = np.array([node_pos[k] for k in tanks], dtype=np.int64)
    u = rng.random((n, len(tanks)))
    levels = info.min_level_m[tpos][None, :] + u * (info.max_level_m[tpos] - info.min_level_m[tpos])[None, :]

    return ScenarioSet(
        n=n,
        pump_speed={k: speed[:, j].copy() for j, k in enumerate(pumps)},
        junction_demand_m3s={k: demand[:, j].copy() for j, k in enumerate(junctions)},
        emitter_coeff=emitter,
        tank_level_m={k: levels[:, j].copy() for j, k in enumerate(tanks)},
    )


def _main() -> None:
    """Print scenarios/s for 500 random scenarios on Net3 and Net1 (best of 3 runs, one core)."""
    nets = Path(wntr.__file__).parent / "library" / "networks"
    for name in ("Net3", "Net1"):
        inp = nets / f"{name}.inp"
        sc = random_scenarios(inp, 500, seed=1)
        for acc in (1e-8, 1e-3):
            res = min((solve_scenarios(inp, sc, accuracy=acc) for _ in range(3)), key=lambda r: r.elapsed_s)
            print(
                f"{name}: {sc.n / res.elapsed_s:7.0f} scenarios/s at accuracy {acc:g} "
                f"(mean {res.iterations[res.iterations >= 0].mean():.1f} iterations, "
                f"{int((res.code != 0).sum())} of {sc.n} with EPANET warnings)"
            )


if __name__ == "__main__":
    _main()


# --------------------------------------------------------------------------------------------
# A file's own steady state
# --------------------------------------------------------------------------------------------


def solve_file(
    inp_path: str | os.PathLike[str], accuracy: float | None = None, trials: int | None = None
) -> EpanetResult:
    """The steady state of an EPANET file at time 0 as EPANET 2.2 solves it (its controls and rules applied).

    Args:
        inp_path: EPANET .inp file.
        accuracy: EPANET's ACCURACY; None keeps the file's.
        trials: EPANET's TRIALS; None keeps the file's (extra trials follow its UNBALANCED option).

    Returns:
        One scenario: heads, flows, statuses, iterations and the EN_runH code (1 = did not converge).
    """
    proj = _Project(inp_path)
    try:
        acc = proj.option(_ACCURACY) if accuracy is None else accuracy
        n_trials = int(proj.option(_TRIALS)) if trials is None else trials
    finally:
        proj.close()
    return solve_scenarios(inp_path, ScenarioSet(n=1), acc, n_trials, apply_controls=True, init_flows=True)
