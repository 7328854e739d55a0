"""Random streams: one per mechanism, named, so adding one does not shift the others.

This is what makes scenario comparisons fair (common random numbers): the
PSUs of a hall with an extra component class must see the same lives as
without it.
"""

from __future__ import annotations

import numpy as np
import pytest
from twinkit import merge, quiet_scenario, run_logged

from twin.engine import build
from twin.rng import Streams

BUSY_PSU = {"components": {"psu": {"failure": {"dist": "exponential", "mean": "200 h"},
                                   "repair": {"dist": "exponential", "mean": "3 h"}}}}
VALVES = {
    "components": {"valve": {"count": 2, "required": 1, "part": "valve",
                             "failure": {"dist": "exponential", "mean": "100 h"},
                             "repair": {"dist": "exponential", "mean": "3 h"}}},
    "spares": {"valve": {"stock": 1000, "reorder_point": 0, "order_quantity": 1,
                         "lead_time": "1 h"}},
}
RANDOM_DIAGNOSIS = {"repair": {"diagnosis": {"dist": "lognormal", "median": "20 min",
                                             "sigma": 0.6}}}


def psu_history(events):
    return [(e.t, e.scope, e.kind) for e in events
            if e.cause == "psu" and e.kind in ("failure", "repaired")]


def test_a_stream_depends_on_its_name_and_the_seed_only():
    alone = Streams(7)["components.psu"].random(5)
    crowded = Streams(7)
    crowded["components.valve"].random(100)
    crowded["repair"].random(3)
    assert crowded["components.psu"].random(5).tolist() == alone.tolist()
    assert Streams(8)["components.psu"].random(5).tolist() != alone.tolist()
    assert Streams(7)["components.fan"].random(5).tolist() != alone.tolist()


def test_adding_a_component_class_leaves_the_psu_history_unchanged():
    # with a deterministic pipeline the PSUs share nothing random with the valves
    _, plain = run_logged(quiet_scenario(**BUSY_PSU), until=1_000.0)
    _, extra = run_logged(quiet_scenario(**merge(BUSY_PSU, VALVES)), until=1_000.0)
    assert len(psu_history(plain)) > 200
    assert any(e.cause == "valve" for e in extra)
    assert psu_history(extra) == psu_history(plain)


def test_adding_a_component_class_leaves_the_first_psu_lives_unchanged():
    # whatever the pipeline does later, each unit's first life is drawn at build
    first = []
    for overrides in (BUSY_PSU, merge(BUSY_PSU, VALVES)):
        _, events = run_logged(quiet_scenario(**merge(overrides, RANDOM_DIAGNOSIS)), until=1_000.0)
        firsts: dict[str, float] = {}
        for t, scope, kind in psu_history(events):
            if kind == "failure":
                firsts.setdefault(scope, t)
        first.append(firsts)
    assert len(first[0]) > 20
    assert first[0] == first[1]


@pytest.mark.xfail(strict=True, reason=(
    "engine design: RepairShop draws the diagnosis, automated-fix and escalation "
    "outcomes of every class from one shared 'repair' stream "
    "(twin/engine.py build, twin/mechanisms/repair.py), so another class's "
    "faults shift the PSUs' repair times and, through them, every later PSU life"))
def test_adding_a_component_class_leaves_the_psu_history_unchanged_with_random_diagnosis():
    _, plain = run_logged(quiet_scenario(**merge(BUSY_PSU, RANDOM_DIAGNOSIS)), until=1_000.0)
    _, extra = run_logged(quiet_scenario(**merge(merge(BUSY_PSU, VALVES), RANDOM_DIAGNOSIS)),
                          until=1_000.0)
    assert psu_history(extra) == psu_history(plain)


def test_the_wafer_stream_does_not_move_when_a_class_is_added():
    overrides = {"wafer": {"defect_density": "0.1 /cm2"}}
    plain = build(quiet_scenario(**overrides), seed=1)
    extra = build(quiet_scenario(**merge(overrides, VALVES)), seed=1)
    assert plain.wafers.defects.sum() > 0
    assert np.array_equal(plain.wafers.defects, extra.wafers.defects)
