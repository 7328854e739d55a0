"""`Cooling`: chillers, the facility water loop and a CDU per row, driving each
system's inlet temperature.

Heat flows from the wafers into their row's loop, through the row's CDU (a heat
exchanger and N+1 pumps) into the facility water, and out through the
chillers. Each loop is one lumped thermal mass C. While its heat exceeds what
can leave it (a CDU: running pumps x `pump_flow` x c_p x `design_rise`; the
facility water: chillers up x `capacity`, derated in hot hours) it warms at
(heat - capacity) / C; when there is capacity to spare it cools back to
nominal at (heat - capacity) / C. Both are linear between events, so the
time a loop gains or loses a `step` is solved for and put on the agenda; at
each step the inlet of every system behind the loop moves
(`Thermal.set_inlet`), and the existing throttle and trip physics follow.
The inlet passes on `level` whole steps: it rises a step when the loop's
gain reaches level + 1 steps and falls one when the gain is back at
level - 1 (a dead band of a step each way: a governor holding the heat at
what the loop can carry would otherwise move the inlet up and down at the
same instant forever).
The heat of a loop is kept as a running sum, moved at every change of a
system's heat (a hook on `Thermal.on_update`); a loop that can fall short
(capacity below the full power of every system behind it) or has gained is
re-solved then, so its steps are exact. A loop that cannot fall short (and
has gained nothing) is not solved at all.

The outdoor temperature is hourly (a synthetic diurnal and seasonal profile,
or given values) plus heat waves; it derates the heat rejection
(`rejection_share`) and sets the chillers' COP (`twin.facility.energy`).
Chillers lose `derate` of their capacity per K above `design_outdoor`; dry
coolers (no compressor) reject heat only while the outdoor air is colder than
the water they must return, `supply` - `approach`: full capacity up to
`design_outdoor`, then linearly less, none from `supply` - `approach` on (a
coil's heat flow is proportional to the difference), so in hot hours their
facility water warms. Chillers and pumps fail and are repaired (streams
``facility.chiller.life``, ``.repair``, ``facility.pump.life``, ``.repair``);
scheduled outages take units out for a while.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from twin.agenda import Agenda
from twin.facility.outdoor import outdoor_hourly
from twin.fleet import Fleet
from twin.mechanisms.thermal import Thermal
from twin.rng import Streams
from twin.scenario import ChillerSpec, CoolingSpec, UnitOutageSpec

__all__ = ["Cooling", "CP_WATER", "loop_rise", "time_to_gain", "rejection_share"]

CP_WATER = 4.186  # kJ/(kg K), liquid water near 30 C
_WEATHER = -1  # agenda key of the next hour the chillers' derating changes


def loop_rise(heat_kw: float, flow_kg_s: float) -> float:
    """Steady temperature rise (K) of a coolant flow carrying `heat_kw`."""
    return heat_kw / (flow_kg_s * CP_WATER)


def rejection_share(spec: ChillerSpec, outdoor: np.ndarray) -> np.ndarray:
    """Share of its rated capacity a heat-rejection unit of `spec` has at each
    outdoor temperature (C)."""
    if spec.kind == "dry_cooler":
        limit = spec.supply - spec.approach
        return np.clip((limit - outdoor) / (limit - spec.design_outdoor), 0.0, 1.0)
    return np.maximum(1.0 - spec.derate * np.maximum(outdoor - spec.design_outdoor, 0.0), 0.0)


def time_to_gain(kelvin: float, heat_kw: float, capacity_kw: float, mass_kj_k: float) -> float:
    """Hours for a loop of heat capacity `mass_kj_k` to warm by `kelvin` while `heat_kw`
    enters and `capacity_kw` leaves (inf when it does not warm)."""
    short = heat_kw - capacity_kw
    return math.inf if short <= 0.0 else mass_kj_k * kelvin / short / 3600.0


class Cooling:
    """Loop temperatures (0: facility water, 1 + r: row r's CDU loop), units up, and
    the inlet each system sees."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: CoolingSpec,
        fleet: Fleet,
        thermal: Thermal,
        streams: Streams,
        horizon: float,
    ) -> None:
        self.env, self.spec, self.fleet, self.thermal = env, spec, fleet, thermal
        hall = fleet.hall
        self.rows = hall.rows
        per_row = hall.racks_per_row * hall.systems_per_rack
        self.members = [range(0, fleet.n)] + [
            range(r * per_row, (r + 1) * per_row) for r in range(self.rows)
        ]
        self.row_of = hall.row_of.tolist()
        n_loops = 1 + self.rows
        self.gain = [0.0] * n_loops  # K above nominal at `since`
        self.slope = [0.0] * n_loops  # K/h since `since`
        self.since = [0.0] * n_loops
        self.level = [0] * n_loops  # whole steps passed on to the inlets
        self.mass = [spec.water_heat_capacity] + [spec.cdu.loop_heat_capacity] * self.rows
        self.outdoor = outdoor_hourly(spec.outdoor, horizon)
        chillers = spec.chillers
        self.derating = rejection_share(chillers, self.outdoor)
        self.chillers_failed = 0
        self.chillers_out = 0  # held out by scheduled outages
        cdu = spec.cdu
        self.pumps_failed = [0] * self.rows
        self.pumps_out = [0] * self.rows
        self.chiller_failures = 0
        self.pump_failures = 0
        self.inlet_max = thermal.spec.inlet
        # running pumps (min(up, required)) hall-wide: changes as (t, delta), for energy
        self.pump_t: list[float] = [0.0]
        self.pump_delta: list[float] = [float(min(cdu.pumps, cdu.required) * self.rows)]
        self._chiller_life = streams["facility.chiller.life"]
        self._chiller_repair = streams["facility.chiller.repair"]
        self._pump_life = streams["facility.pump.life"]
        self._pump_repair = streams["facility.pump.repair"]
        self._loops = Agenda(env, self._cross)
        self._chillers = Agenda(env, self._chiller_fail)
        self._pumps = Agenda(env, self._pump_fail)
        self._chillers.schedule_many(
            range(chillers.count),
            chillers.failure.sample(self._chiller_life, np.ones(chillers.count)),
        )
        n_pumps = cdu.pumps * self.rows
        self._pumps.schedule_many(
            range(n_pumps), cdu.failure.sample(self._pump_life, np.ones(n_pumps))
        )
        for outage in chillers.outages:
            self._schedule_outage(outage, 0)
        for outage in cdu.outages:
            self._schedule_outage(outage, outage.row)
        self._changes = np.flatnonzero(np.diff(self.derating)) + 1  # hours the derating moves
        self._next_change = 0
        self._heat_of = [fleet.heat_kw(s) for s in range(fleet.n)]  # as last summed
        self._heat = [sum(self._heat_of[s] for s in members) for members in self.members]
        self._full = [len(members) * fleet.full_kw for members in self.members]
        # whether a change of heat can move the loop: it has gained, or its capacity
        # (as of its last re-solve: every change of capacity re-solves) is short of _full
        self._watched = [True] * n_loops
        thermal.on_update.append(self._heat_changed)
        self._weather()
        self.resolve(0)

    # -- capacities ----------------------------------------------------------
    def chillers_up(self) -> int:
        return max(self.spec.chillers.count - self.chillers_failed - self.chillers_out, 0)

    def pumps_running(self, row: int) -> int:
        cdu = self.spec.cdu
        return min(max(cdu.pumps - self.pumps_failed[row] - self.pumps_out[row], 0), cdu.required)

    def capacity(self, loop: int) -> float:
        """kW that can leave `loop` now."""
        if loop == 0:
            hour = min(int(self.env.now), len(self.derating) - 1)
            return self.chillers_up() * self.spec.chillers.capacity * float(self.derating[hour])
        cdu = self.spec.cdu
        flow = self.pumps_running(loop - 1) * cdu.pump_flow
        return flow * CP_WATER * cdu.design_rise

    def heat(self, loop: int) -> float:
        """kW the systems behind `loop` put into it now."""
        return self._heat[loop]

    def _heat_changed(self, s: int, _temperature: float) -> None:
        """System `s` was re-solved: if its heat moved, move its loops' sums and
        re-solve those that can fall short or have gained."""
        heat = self.fleet.heat_kw(s)
        delta = heat - self._heat_of[s]
        if delta == 0.0:
            return
        self._heat_of[s] = heat
        for loop in (0, 1 + self.row_of[s]):
            self._heat[loop] += delta
            if self._watched[loop]:
                self.resolve(loop)

    # -- loops ---------------------------------------------------------------
    def _advance(self, loop: int) -> None:
        now = self.env.now
        self.gain[loop] = max(self.gain[loop] + self.slope[loop] * (now - self.since[loop]), 0.0)
        self.since[loop] = now

    def resolve(self, loop: int) -> None:
        """Re-solve `loop` after its heat or capacity changed: its slope and the time
        of its next step."""
        self._advance(loop)
        capacity = self.capacity(loop)
        self._watched[loop] = self.gain[loop] > 0.0 or capacity < self._full[loop]
        if not self._watched[loop]:
            self.slope[loop] = 0.0  # cannot fall short: nothing to solve
            self._loops.cancel(loop)
            return
        short = self.heat(loop) - capacity
        slope = short / self.mass[loop] * 3600.0
        step, gain, level = self.spec.step, self.gain[loop], self.level[loop]
        if slope > 0.0:
            self.slope[loop] = slope
            self._loops.schedule(loop, self.env.now + ((level + 1) * step - gain) / slope)
        elif slope < 0.0 and gain > 0.0:
            self.slope[loop] = slope
            self._loops.schedule(loop, self.env.now + (gain - max(level - 1, 0) * step) / -slope)
        else:
            self.slope[loop] = 0.0
            self._loops.cancel(loop)

    def _cross(self, loop: int) -> None:
        if loop == _WEATHER:
            self._weather()
            self.resolve(0)
            return
        self._advance(loop)
        step = self.spec.step
        if self.slope[loop] > 0.0:
            self.level[loop] += 1
            self.gain[loop] = self.level[loop] * step  # exact, not rounded off
        elif self.level[loop] > 0:
            self.level[loop] -= 1
            self.gain[loop] = self.level[loop] * step
        else:
            self.gain[loop] = 0.0
        self._apply(loop)
        self.resolve(loop)

    def inlet(self, s: int) -> float:
        """Inlet temperature of system `s` as the loops have passed it on."""
        levels = self.level[0] + self.level[1 + self.row_of[s]]
        return self.thermal.spec.inlet + levels * self.spec.step

    def cause(self, s: int) -> str:
        """The part to blame for the inlet of `s` above nominal: the chillers when the
        facility water is warm, else its row's CDU ("" at nominal)."""
        if self.level[0]:
            return "chiller"
        return "cdu" if self.level[1 + self.row_of[s]] else ""

    def causes(self) -> list[str]:
        """Every cause the cooling chain can charge throttling and trips to."""
        return ["chiller", "cdu"]

    def _apply(self, loop: int) -> None:
        for s in self.members[loop]:
            inlet = self.inlet(s)
            self.inlet_max = max(self.inlet_max, inlet)
            self.thermal.set_inlet(s, inlet, self.cause(s))

    # -- weather ---------------------------------------------------------------
    def _weather(self) -> None:
        """At an hour the chillers' derating moves: re-solve the water loop and wait
        for the next such hour."""
        if self._next_change < len(self._changes):
            hour = float(self._changes[self._next_change])
            self._next_change += 1
            self._loops.schedule(_WEATHER, hour)

    # -- units ---------------------------------------------------------------
    def _schedule_outage(self, outage: UnitOutageSpec, row: int) -> None:
        def begin(_event: object) -> None:
            self._hold(row, outage.units)
            self.env.timeout(outage.duration).callbacks.append(
                lambda _e: self._hold(row, -outage.units)
            )

        self.env.timeout(outage.start).callbacks.append(begin)

    def _hold(self, row: int, units: int) -> None:
        """`units` more (or fewer) units out: chillers (row 0) or row `row`'s pumps."""
        if row == 0:
            self.chillers_out += units
            self.resolve(0)
        else:
            self._pumps_change(row - 1, out=units)

    def _pumps_change(self, row: int, failed: int = 0, out: int = 0) -> None:
        """Row `row` has `failed` more pumps failed and `out` more held out."""
        before = self.pumps_running(row)
        self.pumps_failed[row] += failed
        self.pumps_out[row] += out
        delta = self.pumps_running(row) - before
        if delta:
            self.pump_t.append(self.env.now)
            self.pump_delta.append(float(delta))
        self.resolve(1 + row)

    def _chiller_fail(self, unit: int) -> None:
        self.chiller_failures += 1
        self.chillers_failed += 1
        self.fleet.recorder.emit(
            self.env.now, f"facility.cooling.chiller{unit + 1}", "failure", "chiller"
        )
        self.resolve(0)
        hours = float(self.spec.chillers.repair.sample(self._chiller_repair))
        self.env.timeout(hours).callbacks.append(lambda _e: self._chiller_restore(unit))

    def _chiller_restore(self, unit: int) -> None:
        self.chillers_failed -= 1
        now = self.env.now
        self.fleet.recorder.emit(now, f"facility.cooling.chiller{unit + 1}", "repaired", "chiller")
        self._chillers.schedule(
            unit, now + float(self.spec.chillers.failure.sample(self._chiller_life))
        )
        self.resolve(0)

    def _pump_fail(self, unit: int) -> None:
        row = unit // self.spec.cdu.pumps
        self.pump_failures += 1
        self.fleet.recorder.emit(self.env.now, self._pump_scope(unit), "failure", "cdu")
        self._pumps_change(row, failed=1)
        hours = float(self.spec.cdu.repair.sample(self._pump_repair))
        self.env.timeout(hours).callbacks.append(lambda _e: self._pump_restore(unit))

    def _pump_restore(self, unit: int) -> None:
        row = unit // self.spec.cdu.pumps
        now = self.env.now
        self.fleet.recorder.emit(now, self._pump_scope(unit), "repaired", "cdu")
        self._pumps.schedule(unit, now + float(self.spec.cdu.failure.sample(self._pump_life)))
        self._pumps_change(row, failed=-1)

    def _pump_scope(self, unit: int) -> str:
        row, k = divmod(unit, self.spec.cdu.pumps)
        return f"{self.fleet.hall.row_scope(row)}.cdu.pump{k + 1}"

    # -- results -------------------------------------------------------------
    def kpis(self) -> dict[str, float]:
        return {
            "facility.chiller_failures": float(self.chiller_failures),
            "facility.pump_failures": float(self.pump_failures),
            "facility.inlet_max_c": self.inlet_max,
        }
