"""`simulate` keeps the objects that predate a run out of the collector's passes
during it, and leaves the collector as it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence

import pytest
from twinkit import quiet_scenario

from twin.engine import simulate
from twin.records import EventRow, MetricSeries

SCENARIO = quiet_scenario(run={"until": "10 d"})


class FreezeWatcher:
    """A sink that notes how many objects the collector holds frozen while it is called."""

    def __init__(self) -> None:
        self.frozen: list[int] = []

    def write_events(self, events: Sequence[EventRow]) -> None:
        self.frozen.append(gc.get_freeze_count())

    def write_series(self, series: Sequence[MetricSeries]) -> None:
        self.frozen.append(gc.get_freeze_count())


@pytest.fixture
def collector() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.unfreeze()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def test_objects_older_than_the_run_are_frozen_during_it_and_thawed_after(collector: None) -> None:
    older = [object() for _ in range(1000)]  # noqa: F841 - tracked objects from before the run
    watcher = FreezeWatcher()
    simulate(SCENARIO, sink=watcher)
    assert watcher.frozen and min(watcher.frozen) > 1000
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_a_callers_frozen_objects_stay_frozen(collector: None) -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    watcher = FreezeWatcher()
    simulate(SCENARIO, sink=watcher)
    # frozen objects that die leave the count: it may fall, never rise or reach 0
    assert 0 < min(watcher.frozen) and max(watcher.frozen) <= frozen
    assert 0 < gc.get_freeze_count() <= frozen


def test_a_disabled_collector_stays_disabled_and_nothing_is_frozen(collector: None) -> None:
    gc.disable()
    watcher = FreezeWatcher()
    simulate(SCENARIO, sink=watcher)
    assert set(watcher.frozen) == {0} and not gc.isenabled()
