"""Package fatigue: thermal cycles, Coffin-Manson damage, Miner's rule, cracked packages.

Every cold outage of a system (one that powered it off: a component below
its k of n, a thermal trip, a wafer swap; not a remap, during which it stays
powered) is one thermal cycle of the package. Its amplitude is the one the
thermal model gives: dT = the wafer temperature when the system stopped
running minus the coldest it reached before running again. Between
re-solves the RC path moves monotonically, so those extremes are at
re-solves, which `Thermal.on_update` reports: nothing is polled. A trip
cycles between the trip and restart thresholds; an outage of more than a few
time constants between the operating and inlet temperatures.

Damage: a cycle of amplitude dT costs 1 / N_f of the package's life, with
Coffin-Manson cycles to failure N_f = cycles (reference_delta / dT)^exponent,
summed by Miner's rule, D = sum 1 / N_f. A package cracks when D reaches its
own threshold, drawn when it is built from a lognormal of median 1 and
log-sd `scatter` (0: Miner's rule exactly, every package at D = 1). The
crack is found as the cycle ends (the boot): the system goes down at once
and is swapped through the wafer path (`Wafers.fail_package`), cause
``package``. A swapped-in system has a new package (D = 0, a new threshold);
its first boot completes no cycle.

Streams: ``package.threshold`` for the hall's first packages,
``package.replacement.threshold`` for those swapped in (as for the wafers,
so logistics never shift the first packages' draws).
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from twin.fleet import Fleet
from twin.mechanisms.thermal import Thermal
from twin.mechanisms.wafer import Wafers
from twin.rng import Streams
from twin.scenario import PackageSpec

__all__ = ["Package", "cycle_damage"]


def cycle_damage(delta: float, spec: PackageSpec) -> float:
    """Miner's damage 1 / N_f of one cycle of amplitude `delta` (K, above 0):
    N_f = cycles (reference_delta / delta)^exponent."""
    return float((delta / spec.reference_delta) ** spec.exponent / spec.cycles)


class Package:
    """Accumulated damage, thresholds and thermal-cycle tracking of every system."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: PackageSpec,
        fleet: Fleet,
        thermal: Thermal,
        wafers: Wafers,
        streams: Streams,
    ) -> None:
        self.env, self.spec, self.fleet, self.wafers = env, spec, fleet, wafers
        n = fleet.n
        self._replacement = streams["package.replacement.threshold"]
        self.threshold: list[float] = self._thresholds(streams["package.threshold"], n)
        self.damage: list[float] = [0.0] * n
        self.cycles = 0
        self._running = [fleet.running(s) for s in range(n)]
        self._hot: list[float] = [-math.inf] * n  # temperature when it stopped running
        self._coldest: list[float] = [math.inf] * n  # coldest since
        thermal.on_update.append(self._observe)
        wafers.on_renew.append(self._renew)

    def _thresholds(self, rng: np.random.Generator, n: int) -> list[float]:
        return list(np.exp(self.spec.scatter * rng.standard_normal(n)).tolist())

    def _observe(self, s: int, T: float) -> None:
        running = self.fleet.running(s)
        if not running and T < self._coldest[s]:
            self._coldest[s] = T
        if running == self._running[s]:
            return
        self._running[s] = running
        if not running:
            self._hot[s] = self._coldest[s] = T
        elif self.fleet.cold[s]:
            self._cycle(s, self._hot[s] - self._coldest[s])

    def _cycle(self, s: int, delta: float) -> None:
        """A thermal cycle of amplitude `delta` (K) of the package of `s` has ended."""
        if not delta > 0.0:  # a new package's first boot, or no swing at all
            return
        self.cycles += 1
        self.damage[s] += cycle_damage(delta, self.spec)
        if self.damage[s] >= self.threshold[s]:
            generation = self.fleet.generation[s]
            # after the boot that found it has finished changing the fleet's state
            self.env.timeout(0.0).callbacks.append(lambda _ev: self._crack(s, generation))

    def _crack(self, s: int, generation: int) -> None:
        if self.fleet.generation[s] == generation:
            self.wafers.fail_package(s)

    def _renew(self, s: int) -> None:
        """System `s` was swapped: a new package, no damage, no cycle on its first boot."""
        self.damage[s] = 0.0
        [self.threshold[s]] = self._thresholds(self._replacement, 1)
        self._hot[s], self._coldest[s] = -math.inf, math.inf
