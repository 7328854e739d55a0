"""Runs in one process leave nothing behind: memory stays flat over replications.

A built model is cyclic garbage once `simulate` returns (SimPy binds its
event classes to each environment, resource and container as methods); the
collector's pass at the end of the run reclaims it. Before, 50 runs of the
small hall, recorded to a `ListSink`, kept 12 MB alive (~7 MB a hall-year).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import simpy

from twin.engine import simulate
from twin.records import ListSink
from twin.scenario import load_scenario

SMALL = Path(__file__).resolve().parents[2] / "scenarios" / "small.toml"

# Less than what five runs of the small hall kept before the fix; what is left
# are caches that fill once (e.g. numpy's) and tracemalloc's own noise.
GROWTH_BOUND = 512 * 1024


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The collector as a fresh process has it: enabled, nothing frozen, no garbage."""
    enabled = gc.isenabled()
    gc.unfreeze()
    gc.enable()
    gc.collect()
    yield
    if not enabled:
        gc.disable()


def environments() -> int:
    return sum(isinstance(o, simpy.Environment) for o in gc.get_objects())


def test_a_run_leaves_no_simpy_environment_behind(collector_on: None) -> None:
    before = environments()
    simulate(load_scenario(SMALL), until=24.0 * 5)
    assert environments() == before


def test_fifty_replications_in_one_process_keep_memory_flat(collector_on: None) -> None:
    scenario = load_scenario(SMALL)
    for seed in range(3):  # caches that fill once, before the baseline
        simulate(scenario, seed=seed, sink=ListSink())
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for seed in range(50):
            result = simulate(scenario, seed=seed, sink=ListSink())
            assert result.kpis["availability"] > 0  # each is a real run of the hall
        growth = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    assert growth < GROWTH_BOUND, f"{growth / 1024:.0f} kB kept over 50 runs"


def test_a_caller_that_froze_objects_gets_the_runs_garbage_collected_too(
    collector_on: None,
) -> None:
    gc.freeze()
    try:
        before = environments()
        simulate(load_scenario(SMALL), until=24.0 * 5)
        assert environments() == before
    finally:
        gc.unfreeze()


def test_with_the_collector_off_nothing_is_collected(collector_on: None) -> None:
    gc.disable()
    before = environments()
    simulate(load_scenario(SMALL), until=24.0 * 5)
    assert environments() == before + 1, "the caller chose to collect: the model waits for it"
    gc.enable()
    gc.collect()
    assert environments() == before
