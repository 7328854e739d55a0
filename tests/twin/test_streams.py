"""Random streams: one per mechanism, named, so adding one does not shift the others.

This is what makes scenario comparisons fair (common random numbers): the
PSUs of a hall with an extra component class must see the same lives as
without it, and, since each class repairs from its own stream
(``repair.<class>``), the same repairs.
"""

from __future__ import annotations

import numpy as np
import pytest
from twinkit import merge, quiet_scenario, run_logged

from twin.engine import build
from twin.rng import Stream, Streams

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
# every random step of the pipeline: diagnosis, automated fix and its outcome,
# wrong units, silent failures, detection
RANDOM_PIPELINE = merge(RANDOM_DIAGNOSIS, {
    "components": {"psu": {"escalate_probability": 0.5}},
    "repair": {"auto_fix": {"dist": "exponential", "mean": "15 min"},
               "wrong_unit_probability": 0.1, "silent_failure_probability": 0.1,
               "detection_delay": {"dist": "exponential", "mean": "2 h"}}})


def psu_history(events):
    return [(e.t, e.scope, e.kind) for e in events if e.cause == "psu" and e.kind in (
        "failure", "repaired", "wrong_unit", "silent_repair_failure")]


def test_a_stream_depends_on_its_name_and_the_seed_only():
    alone = Streams(7)["components.psu"].random(5)
    crowded = Streams(7)
    crowded["components.valve"].random(100)
    crowded["repair.valve"].random(3)
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


@pytest.mark.parametrize("pipeline", [RANDOM_DIAGNOSIS, RANDOM_PIPELINE],
                         ids=["random diagnosis", "random pipeline"])
def test_adding_a_component_class_leaves_the_psu_history_unchanged_with_random_repairs(
        pipeline):
    # the valves' faults draw from repair.valve: the PSUs' repairs, and through them
    # every later PSU life, stay the same
    _, plain = run_logged(quiet_scenario(**merge(BUSY_PSU, pipeline)), until=1_000.0)
    _, extra = run_logged(quiet_scenario(**merge(merge(BUSY_PSU, VALVES), pipeline)),
                          until=1_000.0)
    assert len(psu_history(plain)) > 200
    assert sum(e.cause == "valve" and e.kind == "failure" for e in extra) > 20
    assert psu_history(extra) == psu_history(plain)
    if pipeline is RANDOM_PIPELINE:  # the random branches were taken, by both classes
        for events in (plain, extra):
            assert {"wrong_unit", "silent_repair_failure"} <= {
                e.kind for e in events if e.cause == "psu"}
        assert {"wrong_unit", "silent_repair_failure"} <= {
            e.kind for e in extra if e.cause == "valve"}


def test_the_wafer_stream_does_not_move_when_a_class_is_added():
    overrides = {"wafer": {"defect_density": "0.1 /cm2"}}
    plain = build(quiet_scenario(**overrides), seed=1)
    extra = build(quiet_scenario(**merge(overrides, VALVES)), seed=1)
    assert plain.wafers.defects.sum() > 0
    assert np.array_equal(plain.wafers.defects, extra.wafers.defects)


# every way the engine and its layers draw, singly and as arrays
DRAWS = [
    lambda g: g.random(), lambda g: g.standard_exponential(), lambda g: g.exponential(2.5),
    lambda g: g.exponential(np.float64(0.7)), lambda g: g.standard_normal(),
    lambda g: g.weibull(1.5), lambda g: g.weibull(0.5), lambda g: g.geometric(0.25),
    lambda g: g.geometric(0.6), lambda g: g.random(3).tolist(),
    lambda g: g.exponential(1.0, (2,)).tolist(), lambda g: g.exponential(1.0, ()).tolist(),
    lambda g: g.integers(5), lambda g: g.integers(0, 970_000, 4).tolist(),
    lambda g: g.poisson(46.0, 3).tolist(), lambda g: g.gamma(0.6, 1.0, 3).tolist(),
    lambda g: g.choice(10), lambda g: g.standard_normal((1,)).tolist(),
    lambda g: g.binomial(5, 0.3),
]


@pytest.mark.parametrize("seed", range(40))
def test_a_stream_gives_a_generators_numbers_whatever_the_mix_of_calls(seed):
    # single draws come from blocks (twin/rng.py): runs of one kind, switches, arrays
    # and other methods in between must all see the numbers one call at a time gives
    rng = np.random.default_rng(seed)
    plain = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    stream = Stream(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1,))))
    calls = []
    while len(calls) < 600:
        draw = DRAWS[int(rng.integers(len(DRAWS)))]
        calls += [draw] * int(rng.integers(1, 150))  # a run of one kind
    for draw in calls:
        a, b = draw(plain), draw(stream)
        assert a == b and type(a) is type(b)
    assert stream.bit_generator.state == plain.bit_generator.state
