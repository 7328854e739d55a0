"""Build a hall from a scenario, simulate it, and return its records and KPIs.

Phases: build (hall, fleet arrays, one stream per mechanism, mechanisms
wired to each other), run (`env.run(until)`), post-simulate (close open
outages, integrate the change log into KPIs and bucketed metrics, hand the
records to the sink). `simulate` is the one entry point; it never prints
and never touches a database.
"""

from __future__ import annotations

import gc
import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import simpy

from twin.facility import (
    Cooling,
    FacilityEnergy,
    PowerChain,
    apply_cap,
    facility_energy,
    failure_domains,
)
from twin.fleet import QUANTITIES, ChangeArrays, Fleet, Recorder
from twin.hall import Hall
from twin.kpis import collect_kpis
from twin.mechanisms.ageing import Working
from twin.mechanisms.components import ComponentClass
from twin.mechanisms.package import Package
from twin.mechanisms.repair import Crews, RepairShop
from twin.mechanisms.spares import PartStock
from twin.mechanisms.thermal import Thermal
from twin.mechanisms.wafer import Wafers
from twin.metrics import bucket_edges, bucket_integrals
from twin.records import MetricSeries, RunResult, Sink
from twin.rng import Streams
from twin.saturation import Queue, Saturation
from twin.scenario import Scenario
from twin.workloads.serving.core import Fidelity, Outcome, Serving
from twin.workloads.training import TrainingJob

__all__ = ["simulate", "Model", "build"]

# metric name of each tracked quantity, and whether it is a mean per system
_METRICS = {
    "up": ("availability", True),
    "capacity": ("capacity", True),
    "power_kw": ("it_power_kw", False),
    "throttled": ("throttled", True),
    "tripped": ("tripped", True),
}


@dataclass
class Model:
    """A built hall: the SimPy environment and every mechanism, wired."""

    scenario: Scenario
    env: simpy.Environment
    hall: Hall
    fleet: Fleet
    thermal: Thermal
    crews: Crews
    stock: dict[str, PartStock]
    shop: RepairShop
    classes: list[ComponentClass]
    wafers: Wafers | None  # a wafer-scale hall's (none on GPU nodes)
    recorder: Recorder
    saturation: Saturation
    serving: Serving | None = None  # a scenario with a [serving] section
    fidelity: Fidelity | None = None  # how its serving is simulated
    package: Package | None = None  # a scenario with a [package] section
    power: PowerChain | None = None  # a scenario with a [facility] section
    cooling: Cooling | None = None  # the same
    capped: int = 0  # systems the facility's power budget caps
    training: TrainingJob | None = None  # a scenario with a [training] section
    working: Working | None = None  # its systems that age, with ageing = "while_running"


def build(
    scenario: Scenario, seed: int, sink: Sink | None = None, until: float | None = None
) -> Model:
    """Build the hall of `scenario` with independent random streams from `seed`, for a
    run to `until` (the scenario's horizon by default: the facility's weather needs it)."""
    streams = Streams(seed)
    env = simpy.Environment(initial_time=0.0)  # a float clock from the start
    hall = Hall.from_spec(scenario.hall)
    recorder = Recorder(sink, scenario.recording.events)
    sys_spec = scenario.system
    fleet = Fleet(
        env, hall, recorder,
        power_kw=sys_spec.power, idle_kw=sys_spec.idle_power, boot_h=sys_spec.boot_time,
    )
    thermal = Thermal(env, fleet, scenario.thermal)
    crews = Crews(env, scenario.repair)
    stock = {name: PartStock(env, name, spec, recorder) for name, spec in scenario.spares.items()}
    shop = RepairShop(env, fleet, scenario.repair, crews, stock)
    # only the job's systems age: every clock stands still until its system works
    while_running = scenario.training is not None and scenario.training.ageing == "while_running"
    classes = [
        ComponentClass(
            env, name, spec, fleet, thermal, shop,
            streams=streams, start_age=scenario.hall.start_age, while_running=while_running,
        )
        for name, spec in scenario.components.items()
    ]
    wafers = None
    if scenario.wafer is not None and scenario.spare_systems is not None:
        wafers = Wafers(
            env, scenario.wafer, scenario.spare_systems, fleet, crews, shop, classes,
            streams, source=scenario.source, while_running=while_running,
        )
    working = None
    if while_running:
        clocks: list[Callable[[int, bool], None]] = [cls.set_working for cls in classes]
        if wafers is not None:
            clocks.append(wafers.set_working)
        working = Working(fleet.n, clocks)
    package = None
    if scenario.package is not None and wafers is not None:  # validation: wafers with it
        package = Package(env, scenario.package, fleet, thermal, wafers, streams)
    saturation = Saturation(env, _watched(env, scenario, crews, stock, wafers))
    power = cooling = None
    capped = 0
    if scenario.facility is not None:
        spec = scenario.facility.power
        [psu] = [cls for cls in classes if cls.name == spec.psu_class]
        power = PowerChain(
            env, spec, fleet, psu.up, psu.spec.count, psu.spec.required, streams,
        )
        psu.on_change.append(power.psu_changed)
        thermal.on_update.append(power.heat_changed)
        horizon = scenario.run.until if until is None else until
        cooling = Cooling(env, scenario.facility.cooling, fleet, thermal, streams, horizon)
        capped = apply_cap(scenario.facility.cap, fleet)
    serving = fidelity = None
    if scenario.serving is not None:
        domains = None if scenario.facility is None else failure_domains(fleet.hall)
        serving = Serving(env, scenario, fleet, thermal, domains)
        fidelity = _fidelity(env, serving, streams)
    training = None
    if scenario.training is not None:
        training = TrainingJob(env, scenario.training, fleet)
        if working is not None:  # only the gang's systems age
            training.on_active.append(working.set)
        training.start()
    return Model(
        scenario, env, hall, fleet, thermal, crews, stock, shop, classes, wafers, recorder,
        saturation, serving, fidelity, package, power, cooling, capped, training, working,
    )


def _fidelity(env: simpy.Environment, serving: Serving, streams: Streams) -> Fidelity:
    """The serving model `serving.fidelity` asks for: fluid (solved after the run from
    the replicas' log) or request-level (each request simulated,
    `requests.RequestServing`)."""
    if serving.spec.fidelity == "request":
        requests = importlib.import_module("twin.workloads.serving.requests")
        return requests.RequestServing(env, serving, streams)  # type: ignore[no-any-return]
    from twin.workloads.serving.fluid import FluidServing

    return FluidServing(serving)


def _watched(
    env: simpy.Environment,
    scenario: Scenario,
    crews: Crews,
    stock: dict[str, PartStock],
    wafers: Wafers | None,
) -> list[Queue]:
    """The resources `Saturation` watches: each queue, with its demand and capacity
    in one unit (`twin.saturation` says why these); spare systems on a wafer-scale
    hall only."""
    repair = scenario.repair
    queues = [] if repair.unlimited_crews else [  # unlimited crews: no fault waits for one
        Queue(
            "crews", "faults waited for a crew", "repair.crews", lambda: crews.waiting,
            lambda: crews.busy_h, lambda: repair.crew_count * crews.on_shift_hours(env.now),
            "hands-on hours / on-shift crew-hours",
        ),
    ]
    queues.extend(_part_queue(env, name, part) for name, part in stock.items())
    swaps = scenario.spare_systems
    if wafers is not None and swaps is not None:
        away_h = swaps.swap_time.mean() + swaps.rma_time.mean()  # a spare out of the pool
        queues.append(Queue(
            "spare_systems", "systems waited for a spare system", "spare_systems.count",
            lambda: len(wafers.pool.get_queue),
            lambda: wafers.failures * away_h, lambda: swaps.count * env.now,
            "wafer failures x (swap_time + rma_time) / count",
        ))
    return queues


def _part_queue(env: simpy.Environment, name: str, part: PartStock) -> Queue:
    """A part's stock as `Saturation` watches it: demand over a lead time against the
    mean stock position of its (s, Q) policy."""
    spec = part.spec
    return Queue(
        f"spares.{name}", "repairs waited for a part",
        f"spares.{name}.reorder_point and order_quantity",
        lambda: part.backorders,
        lambda: (part.used + part.backorders) * spec.lead_time,
        lambda: (spec.reorder_point + (spec.order_quantity + 1) / 2) * env.now,
        "demand over a lead time / (reorder_point + (order_quantity + 1) / 2)",
    )


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    until: float | None = None,
    sink: Sink | None = None,
    phases: dict[str, float] | None = None,
) -> RunResult:
    """Run one replication; records go to `sink` as the run goes, KPIs are returned.

    `phases`, when given, receives what the benchmarks split a run into: wall
    seconds of ``build``, ``run`` (the event loop) and ``post`` (the rest, the
    collector's last pass included), and ``events``, the SimPy events the run
    scheduled (a timeout, a process step, an agenda's wake-up; one that was
    superseded counts too)."""
    started = time.perf_counter()
    seed = scenario.run.seed if seed is None else seed
    horizon = scenario.run.until if until is None else until
    with _untouched_by_gc_of_the_run():
        model = build(scenario, seed, sink, horizon)
        built = time.perf_counter()
        model.env.run(until=horizon)
        ran = time.perf_counter()
        if phases is not None:
            # SimPy numbers the events it schedules from one counter (no public reader)
            phases["events"] = float(next(model.env._eid))  # type: ignore[attr-defined]
        model.thermal.close()
        model.fleet.close()
        model.recorder.flush()
        log = model.fleet.log.arrays()
        integrals = _whole_run_integrals(log, horizon)
        outcome = _serving_outcome(model, horizon)
        energy = _facility_energy(model, log, horizon)
        if sink is not None:
            _write_metrics(model, log, horizon, sink)
            if outcome is not None:
                sink.write_series(outcome.series)
            if energy is not None:
                sink.write_series(energy.series(horizon))
        kpis = collect_kpis(model, horizon, integrals, outcome, energy)
        systems = model.hall.n_systems
        warnings = model.saturation.warnings()
        del model  # a model is cyclic garbage: collected as the run's freeze ends
    if phases is not None:
        phases.update(build=built - started, run=ran - built, post=time.perf_counter() - ran)
    return RunResult(
        scenario_name=scenario.name,
        scenario_hash=scenario.digest(),
        scenario=scenario.document(),
        seed=seed,
        until_h=horizon,
        systems=systems,
        wall_s=time.perf_counter() - started,
        kpis=kpis,
        warnings=warnings,
    )


def _serving_outcome(model: Model, horizon: float) -> Outcome | None:
    """What the run's serving delivered (None without serving); its series are
    bucketed like the hall's metrics."""
    if model.fidelity is None:
        return None
    return model.fidelity.outcome(horizon, model.scenario.recording.hall_bucket)


def _facility_energy(model: Model, log: ChangeArrays, horizon: float) -> FacilityEnergy | None:
    """The facility's hourly energy (None without a facility)."""
    cooling, facility = model.cooling, model.scenario.facility
    if cooling is None or facility is None:
        return None
    t, _, q, d = log
    it = q == QUANTITIES.index("power_kw")
    pumps = (np.asarray(cooling.pump_t), np.asarray(cooling.pump_delta))
    return facility_energy(facility, cooling.outdoor, (t[it], d[it]), pumps, horizon)


@contextmanager
def _untouched_by_gc_of_the_run() -> Iterator[None]:
    """Keep every object that predates the run out of the collector's passes during
    it, and collect what the run leaves behind as it ends.

    A full pass of the cyclic garbage collector visits every tracked object:
    with scenario validation, SQLAlchemy and pandas loaded that is ~100k,
    and one pass took 40-60 ms of a 0.3 s hall-year. The objects the run
    creates are collected as usual. A caller that froze objects itself is
    left its freeze; one that turned the collector off is left alone. The
    freeze is process-wide: runs in several threads of one process (a Dask
    worker's) stay correct, and a run that starts while another holds the
    freeze simply goes without it.

    A built model is cyclic garbage once the run drops it (a SimPy
    environment, resource or container binds its event classes to itself as
    methods, and the mechanisms call each other back), and `gc.freeze`
    resets the counters that schedule full passes, so in a loop of runs the
    models (~7 MB a hall-year) were never reclaimed. The last pass, made
    while the older objects are still frozen, visits only the run's own
    objects: ~5 ms of a hall-year (tests/twin/test_memory_across_runs.py).
    """
    if not gc.isenabled():
        yield
        return
    froze = not gc.get_freeze_count()
    if froze:
        gc.freeze()
    try:
        yield
    finally:
        gc.collect()
        if froze:
            gc.unfreeze()


def _whole_run_integrals(log: ChangeArrays, horizon: float) -> dict[str, float]:
    """Hall-wide integral of each quantity over the run (unit x hours)."""
    t, _, q, d = log
    edges = np.array([0.0, horizon])
    out = {}
    for i, name in enumerate(QUANTITIES):
        sel = q == i
        total = bucket_integrals(t[sel], np.zeros(int(sel.sum()), np.int64), d[sel], 1, edges)
        out[name] = float(total[0, 0])
    return out


def _write_metrics(model: Model, log: ChangeArrays, horizon: float, sink: Sink) -> None:
    """Hall metrics per `hall_bucket`, one more level per `scope_bucket`, as series."""
    spec = model.scenario.recording
    levels = [("hall", spec.hall_bucket)]
    if spec.scope_level != "none":
        levels.append((spec.scope_level, spec.scope_bucket))
    t, system, q, d = log
    series: list[MetricSeries] = []
    for level, bucket in levels:
        edges = bucket_edges(horizon, bucket)
        index = model.hall.index_of(level)
        scopes = model.hall.scopes(level)
        per_scope = np.bincount(index, minlength=len(scopes)).astype(float)
        lengths = np.diff(edges)
        for i, quantity in enumerate(QUANTITIES):
            name, per_system = _METRICS[quantity]
            sel = q == i
            means = bucket_integrals(t[sel], index[system[sel]], d[sel], len(scopes), edges)
            means /= lengths
            if per_system:
                means /= per_scope[:, None]
            series.extend(
                MetricSeries(scope, name, 0.0, bucket, horizon, tuple(row))
                for scope, row in zip(scopes, means.tolist(), strict=True)
            )
    sink.write_series(series)
