"""`PowerChain`: utility sources, UPS batteries, generators, feeds and rack PDUs.

Every system draws from two feeds, A and B, through a PDU per rack per feed;
its PSUs of class `psu_class` are split across them (units 1..`psus_on_a` on
A, the rest on B). A feed delivers while its source is live and its rack PDU
works. A system is held down by the reason ``power`` while the working PSUs
on its delivering feeds are fewer than the class requires; the downtime is
charged to the part whose loss did it (``generator.A``, ``ups.B``, ``pdu.A``,
...; the rack is in the event's scope), so downtime by facility root cause is
a query over the outage events (docs/facility.md).

A source (2N: one per feed; N+1: one for both) is live while its utility is
up, its generators carry the load, or its UPS battery holds charge. When an
outage begins the UPS carries the load at once; each generator starts with
probability 1 - `fail_to_start`, and if `required` of `count` start they carry
the load `start_delay` later (then the battery recharges). The battery's
state of charge is linear between events, so the moment it empties is solved
for and put on the agenda: E / (load / efficiency) from now, at the load the
source carries now; while a battery is on duty every change of a system's
heat (a hook on `Thermal.on_update`, wired by the engine) re-solves it. If
it empties first the source dies and the systems behind it that cannot live on their other feed drop
hard; they come back (and boot) when the generators carry or the utility
returns. Nothing is polled.

A PSU that fails, is repaired or renewed is seen at that moment (a listener
on the PSU class): a system running on one feed drops when a PSU of that
feed fails and leaves fewer than required, charged to the PSU class (the
event that crossed the threshold, as a feed or PDU loss is charged to its
part when PSUs were already out); it comes back (and boots) when the repair
gives it enough working PSUs on its delivering feeds, whether or not the
dead feed has returned. With both feeds delivering the PSU class's own
k-of-n reason is the same condition, so the chain only looks at systems
with a feed out or already held.

Streams: ``facility.power.<source>.outage`` (gaps between outages),
``.duration`` (their lengths), ``.generator`` (fail-to-start draws),
``facility.pdu.life`` and ``facility.pdu.repair``.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from twin.agenda import Agenda
from twin.fleet import Fleet
from twin.rng import Streams
from twin.scenario import PowerSpec

__all__ = ["PowerChain", "FEEDS", "ride_through_h"]

FEEDS = ("A", "B")
# kinds of a source's pending event (the agenda key is kind * sources + source)
_OUTAGE, _RESTORE, _CARRY, _EMPTY = range(4)
_SCHEDULED = 4  # a scheduled outage: key _SCHEDULED * sources + its index


def ride_through_h(energy_kwh: float, load_kw: float, efficiency: float) -> float:
    """Hours a battery of `energy_kwh` carries `load_kw` delivered at `efficiency`."""
    return math.inf if load_kw <= 0.0 else energy_kwh * efficiency / load_kw


class PowerChain:
    """Sources, feeds and PDUs of the hall, and the systems they hold down."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: PowerSpec,
        fleet: Fleet,
        psu_up: list[bool],
        psu_count: int,
        psu_required: int,
        streams: Streams,
    ) -> None:
        self.env, self.spec, self.fleet = env, spec, fleet
        self._psu_up, self._psu_count, self._psu_required = psu_up, psu_count, psu_required
        self.sources = spec.sources
        n_src = len(self.sources)
        self.feed_source = [0, 1] if n_src == 2 else [0, 0]
        self._gaps = [streams[f"facility.power.{x}.outage"] for x in self.sources]
        self._lengths = [streams[f"facility.power.{x}.duration"] for x in self.sources]
        self._starts = [streams[f"facility.power.{x}.generator"] for x in self.sources]
        self._pdu_life = streams["facility.pdu.life"]
        self._pdu_repair = streams["facility.pdu.repair"]
        self.utility_up = [True] * n_src
        self.outage_end = [0.0] * n_src
        self.coming = [False] * n_src  # generators started, carrying at _CARRY
        self.carrying = [False] * n_src  # generators carrying the load
        self.live = [True] * n_src
        self.cause = [""] * n_src  # what killed a dead source
        self.energy = [spec.ups.energy] * n_src  # battery charge at `since`
        self.rate = [0.0] * n_src  # kW into the battery since `since` (< 0: discharging)
        self.since = [0.0] * n_src
        self.racks = fleet.hall.n_racks
        self.rack_of = fleet.hall.rack_of.tolist()
        self.pdu_up = [True] * (self.racks * len(FEEDS))  # unit = rack * 2 + feed
        self.lost = [False] * fleet.n  # held down by `power`
        self._heat_of = [0.0] * fleet.n  # each system's heat as last summed into _loads
        self._loads = [0.0] * n_src  # kW each source delivers, kept while a battery is on duty
        self._duty = False  # a battery is on duty (every change of it re-solves them)
        self.bit = fleet.bit("power")
        self.utility_outages = 0
        self.generator_failures = 0  # generators that failed to start
        self.source_losses = 0  # a source died: battery empty before generators carried
        self.pdu_failures = 0
        self.scopes = [f"facility.power.{x}" for x in self.sources]
        self._agenda = Agenda(env, self._fire)
        self._pdus = Agenda(env, self._pdu_fail)
        gap = spec.utility.outage_interval
        for i in range(n_src):
            self._agenda.schedule(_OUTAGE * n_src + i, self._gaps[i].exponential(gap))
        for j, outage in enumerate(spec.outages):
            self._agenda.schedule((_SCHEDULED + j) * n_src, outage.start)
        lives = spec.pdu.failure.sample(self._pdu_life, np.ones(len(self.pdu_up)))
        self._pdus.schedule_many(range(len(self.pdu_up)), lives)

    # -- causes --------------------------------------------------------------
    def causes(self) -> list[str]:
        """Every cause the power chain can charge downtime to."""
        return [
            *(f"{part}.{x}" for x in self.sources for part in ("feed", "ups", "generator")),
            *(f"pdu.{f}" for f in FEEDS),
        ]

    # -- sources -------------------------------------------------------------
    def _fire(self, key: int) -> None:
        n_src = len(self.sources)
        kind, i = divmod(key, n_src)
        if kind >= _SCHEDULED:
            outage = self.spec.outages[kind - _SCHEDULED]
            self._outage(self.sources.index(outage.source), outage.duration)
        elif kind == _OUTAGE:
            utility = self.spec.utility
            gap = self._gaps[i].exponential(utility.outage_interval)
            self._agenda.schedule(key, self.env.now + gap)
            self._outage(i, float(utility.outage_duration.sample(self._lengths[i])))
        elif kind == _RESTORE:
            self._charge(i, self.spec.ups.recharge)
            self.utility_up[i] = True
            self.carrying[i] = self.coming[i] = False
            self._cancel(i, _CARRY, _EMPTY)
            utility_name = f"utility.{self.sources[i]}"
            self.fleet.recorder.emit(self.env.now, self.scopes[i], "repaired", utility_name)
            self._revive(i)
        elif kind == _CARRY:
            self._charge(i, self.spec.ups.recharge)
            self.carrying[i], self.coming[i] = True, False
            self._cancel(i, _EMPTY)
            self._revive(i)
        else:  # _EMPTY
            self._charge(i, 0.0)
            self.energy[i] = 0.0
            self._die(i, self._blame(i))

    def _outage(self, i: int, hours: float) -> None:
        """The utility of source `i` is lost for `hours` (an outage under way is extended)."""
        now, n_src = self.env.now, len(self.sources)
        end = now + hours
        if not self.utility_up[i]:
            if end > self.outage_end[i]:
                self.outage_end[i] = end
                self._agenda.schedule(_RESTORE * n_src + i, end)
            return
        self.utility_up[i] = False
        self.outage_end[i] = end
        self.utility_outages += 1
        name = self.sources[i]
        self.fleet.recorder.emit(now, self.scopes[i], "failure", f"utility.{name}", hours)
        self._agenda.schedule(_RESTORE * n_src + i, end)
        gens = self.spec.generators
        started = int(self._starts[i].binomial(gens.count, 1.0 - gens.fail_to_start))
        if started < gens.count:
            self.generator_failures += gens.count - started
            self.fleet.recorder.emit(
                now, self.scopes[i], "failure", f"generator.{name}", float(gens.count - started)
            )
        if gens.count > 0 and started >= gens.required:
            self.coming[i] = True
            self._agenda.schedule(_CARRY * n_src + i, now + gens.start_delay)
        self._rebalance()  # an empty battery empties now

    def _blame(self, i: int) -> str:
        """The part of source `i` to blame when its battery empties: the generators
        when too few started, the UPS when they were on their way (or there are none
        but a UPS), the feed itself when it has neither."""
        name, spec = self.sources[i], self.spec
        if spec.generators.count > 0 and not self.coming[i]:
            return f"generator.{name}"
        if spec.generators.count == 0 and spec.ups.energy == 0.0:
            return f"feed.{name}"
        return f"ups.{name}"

    def _on_battery(self, i: int) -> bool:
        return not self.utility_up[i] and not self.carrying[i] and self.live[i]

    def battery(self, i: int) -> float:
        """Charge (kWh) of source `i`'s battery now: linear since the last event,
        between empty and full."""
        e = self.energy[i] + self.rate[i] * (self.env.now - self.since[i])
        return min(max(e, 0.0), self.spec.ups.energy)

    def _charge(self, i: int, rate: float) -> None:
        """From now the battery of `i` takes `rate` kW (negative: delivers)."""
        self.energy[i] = self.battery(i)
        self.since[i] = self.env.now
        self.rate[i] = rate

    def _cancel(self, i: int, *kinds: int) -> None:
        for kind in kinds:
            self._agenda.cancel(kind * len(self.sources) + i)

    def _die(self, i: int, cause: str) -> None:
        self.live[i] = False
        self.cause[i] = cause
        self.source_losses += 1
        self.fleet.recorder.emit(self.env.now, self.scopes[i], "failure", cause)
        self._evaluate(range(self.fleet.n), cause)
        self._rebalance()

    def _revive(self, i: int) -> None:
        if not self.live[i]:
            self.live[i] = True
            self._evaluate(range(self.fleet.n))
        self._rebalance()

    def heat_changed(self, s: int, _temperature: float) -> None:
        """System `s` was re-solved: while a battery is on duty, move the load of its
        delivering feeds' sources by its change of heat and re-solve the batteries."""
        if not self._duty:
            return
        heat = self.fleet.heat_kw(s)
        delta = heat - self._heat_of[s]
        if delta == 0.0:
            return
        self._heat_of[s] = heat
        feeds = [f for f in range(len(FEEDS)) if self._delivers(s, f)]
        for f in feeds:
            self._loads[self.feed_source[f]] += delta / len(feeds)
        self._solve_batteries()

    def _rebalance(self) -> None:
        """Re-solve the moment each battery on duty empties, at the load now."""
        self._loads = self.loads()
        self._solve_batteries()

    def _solve_batteries(self) -> None:
        """Re-solve the moment each battery on duty empties, at `_loads`."""
        n_src = len(self.sources)
        self._duty = False
        for i in range(n_src):
            if self._on_battery(i):
                self._duty = True
                load = max(self._loads[i], 0.0)
                self._charge(i, -load / self.spec.ups.efficiency)
                hours = ride_through_h(self.energy[i], load, self.spec.ups.efficiency)
                if hours < math.inf:
                    self._agenda.schedule(_EMPTY * n_src + i, self.env.now + hours)
                else:
                    self._cancel(i, _EMPTY)

    def loads(self) -> list[float]:
        """kW each source delivers now: each system's power shared by its live feeds
        (and each system's heat, as summed, kept for `heat_changed`)."""
        loads = [0.0] * len(self.sources)
        fleet = self.fleet
        heat_of = self._heat_of
        for s in range(fleet.n):
            heat = heat_of[s] = fleet.heat_kw(s)
            if heat == 0.0:
                continue
            feeds = [f for f in range(len(FEEDS)) if self._delivers(s, f)]
            for f in feeds:
                loads[self.feed_source[f]] += heat / len(feeds)
        return loads

    # -- systems -------------------------------------------------------------
    def _delivers(self, s: int, feed: int) -> bool:
        return self.live[self.feed_source[feed]] and self.pdu_up[self.rack_of[s] * 2 + feed]

    def powered(self, s: int) -> bool:
        """Whether the working PSUs of `s` on its delivering feeds are enough."""
        count, on_a = self._psu_count, self.spec.psus_on_a
        first = s * count
        working = 0
        if self._delivers(s, 0):
            working += sum(self._psu_up[first:first + on_a])
        if self._delivers(s, 1):
            working += sum(self._psu_up[first + on_a:first + count])
        return working >= self._psu_required

    def _culprit(self, s: int) -> str:
        """What keeps `s` unpowered: a dead source or PDU on its way, else its PSUs."""
        for f, feed in enumerate(FEEDS):
            i = self.feed_source[f]
            if not self.live[i]:
                return self.cause[i]
            if not self.pdu_up[self.rack_of[s] * 2 + f]:
                return f"pdu.{feed}"
        return self.spec.psu_class

    def _evaluate(self, systems: range, cause: str = "") -> None:
        """Drop the `systems` that lost power (blaming `cause`, or what keeps each
        unpowered), restore those that have it again."""
        fleet = self.fleet
        for s in systems:
            ok = self.powered(s)
            if not ok and not self.lost[s]:
                self.lost[s] = True
                fleet.add_reason(s, self.bit, cause or self._culprit(s))
            elif ok and self.lost[s]:
                self.lost[s] = False
                fleet.clear_reason(s, self.bit)

    def psu_changed(self, s: int) -> None:
        """A PSU of system `s` failed, was repaired or renewed: re-evaluate `s` if a
        feed of it is out (otherwise the PSU class's own reason decides)."""
        if self.lost[s] or not (self._delivers(s, 0) and self._delivers(s, 1)):
            was = self.lost[s]
            self._evaluate(range(s, s + 1), "" if was else self.spec.psu_class)
            if self.lost[s] != was:
                self._rebalance()

    # -- PDUs ----------------------------------------------------------------
    def pdu_scope(self, unit: int) -> str:
        rack, feed = divmod(unit, 2)
        return f"{self.fleet.hall.rack_scope(rack)}.pdu{FEEDS[feed]}"

    def _rack_systems(self, rack: int) -> range:
        per = self.fleet.hall.systems_per_rack
        return range(rack * per, (rack + 1) * per)

    def _pdu_fail(self, unit: int) -> None:
        rack, feed = divmod(unit, 2)
        cause = f"pdu.{FEEDS[feed]}"
        self.pdu_up[unit] = False
        self.pdu_failures += 1
        now = self.env.now
        self.fleet.recorder.emit(now, self.pdu_scope(unit), "failure", cause)
        self._evaluate(self._rack_systems(rack), cause)
        self._rebalance()
        hours = float(self.spec.pdu.repair.sample(self._pdu_repair))
        self.env.timeout(hours).callbacks.append(lambda _ev: self._pdu_restore(unit))

    def _pdu_restore(self, unit: int) -> None:
        rack, feed = divmod(unit, 2)
        self.pdu_up[unit] = True
        now = self.env.now
        self.fleet.recorder.emit(now, self.pdu_scope(unit), "repaired", f"pdu.{FEEDS[feed]}")
        life = float(self.spec.pdu.failure.sample(self._pdu_life))
        self._pdus.schedule(unit, now + life)
        self._evaluate(self._rack_systems(rack))
        self._rebalance()

    # -- results -------------------------------------------------------------
    def kpis(self) -> dict[str, float]:
        return {
            "facility.utility_outages": float(self.utility_outages),
            "facility.generator_failures": float(self.generator_failures),
            "facility.source_losses": float(self.source_losses),
            "facility.pdu_failures": float(self.pdu_failures),
        }
