"""Exact time integrals of the change log, and the metrics the engine writes from them.

`bucket_integrals` integrates piecewise-constant quantities given by their
jumps. The reference here integrates the same step functions the slow way:
sort the jumps, cut time at every jump and bucket edge, and add value x
length piece by piece.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twinkit import quiet_scenario, run_model

from twin.engine import simulate
from twin.fleet import QUANTITIES, ChangeLog
from twin.metrics import bucket_edges, bucket_integrals
from twin.records import ListSink


def step_integrals(jumps, n_groups, edges):
    """Integral of each group's step function over each bucket, piece by piece."""
    out = np.zeros((n_groups, len(edges) - 1))
    for g in range(n_groups):
        mine = sorted((t, d) for t, grp, d in jumps if grp == g)
        cuts = sorted({*edges.tolist(), *(t for t, _ in mine if t < edges[-1])})
        for left, right in zip(cuts, cuts[1:], strict=False):
            value = sum(d for t, d in mine if t <= left)
            bucket = int(np.searchsorted(edges, left, side="right") - 1)
            out[g, bucket] += value * (right - left)
    return out


@st.composite
def change_logs(draw):
    horizon = draw(st.floats(0.5, 100.0))
    bucket = draw(st.floats(0.1, 50.0))
    edges = bucket_edges(horizon, bucket)
    n_groups = draw(st.integers(1, 4))
    on_edge = st.sampled_from(edges.tolist())  # jumps exactly on a bucket edge
    anywhere = st.floats(0.0, horizon * 1.2)  # some after the horizon: ignored
    jumps = draw(st.lists(
        st.tuples(st.one_of(anywhere, on_edge), st.integers(0, n_groups - 1),
                  st.floats(-5.0, 5.0)),
        max_size=40))
    return jumps, n_groups, edges


@given(change_logs())
def test_bucket_integrals_equal_the_piecewise_integration(log):
    jumps, n_groups, edges = log
    t = np.array([j[0] for j in jumps], dtype=float)
    group = np.array([j[1] for j in jumps], dtype=np.int64)
    delta = np.array([j[2] for j in jumps], dtype=float)
    got = bucket_integrals(t, group, delta, n_groups, edges)
    expected = step_integrals(jumps, n_groups, edges)
    scale = (1.0 + np.abs(delta).sum()) * edges[-1]
    assert got.shape == expected.shape
    assert np.allclose(got, expected, rtol=0.0, atol=1e-9 * scale)


@given(horizon=st.floats(1e-3, 1e4), bucket=st.floats(1e-2, 1e3))
def test_bucket_edges_cover_the_run_in_buckets_of_at_most_one_bucket(horizon, bucket):
    edges = bucket_edges(horizon, bucket)
    assert edges[0] == 0.0 and edges[-1] == horizon
    assert np.all(np.diff(edges) > 0)
    assert np.all(np.diff(edges) <= bucket * (1 + 1e-9))
    assert len(edges) - 1 == max(1, math.ceil(horizon / bucket - 1e-9))


def busy_hall(**recording):
    """PSUs, pumps and fans failing often, and core losses: many changes to integrate."""
    return quiet_scenario(
        hall={"rows": 2, "racks_per_row": 2, "systems_per_rack": 3},
        components={
            "psu": {"failure": {"dist": "exponential", "mean": "30 h"},
                    "repair": {"dist": "exponential", "mean": "5 h"}},
            "fan": {"failure": {"dist": "exponential", "mean": "40 h"},
                    "repair": {"dist": "lognormal", "median": "3 h", "sigma": 0.5}},
            "pump": {"failure": {"dist": "exponential", "mean": "60 h"},
                     "repair": {"dist": "exponential", "mean": "4 h"}},
        },
        wafer={"physical_cores": 1000, "active_cores": 990, "cores_per_failure": 3.0,
               "core_failures": {"dist": "exponential", "mean": "20 h"},
               "remap_time": "15 min"},
        system={"boot_time": "20 min"},
        recording=recording,
    )


@settings(max_examples=10, deadline=None)
@given(until=st.floats(5.0, 300.0), bucket=st.sampled_from(["1 h", "7 h", "0.3 h"]))
def test_hall_metrics_averaged_over_the_run_are_the_run_kpis(until, bucket):
    sink = ListSink()
    kpis = simulate(busy_hall(hall_bucket=bucket), seed=2, until=until, sink=sink).kpis

    def run_mean(name):
        ms = [m for m in sink.metrics if m.scope == "hall" and m.name == name]
        assert sum(m.bucket for m in ms) == pytest.approx(until, rel=1e-12)
        return sum(m.value * m.bucket for m in ms) / until

    assert run_mean("availability") == pytest.approx(kpis["availability"], rel=1e-9)
    assert run_mean("capacity") == pytest.approx(kpis["capacity"], rel=1e-9)
    assert run_mean("it_power_kw") * until / 1000 == pytest.approx(kpis["energy.it_mwh"], rel=1e-9)
    assert run_mean("tripped") * 12 * until == pytest.approx(kpis["thermal.trip_h"], abs=1e-9)


@pytest.mark.parametrize("level", ["row", "rack", "system"])
def test_scope_metrics_are_per_system_means_that_average_to_the_hall(level):
    until = 200.0
    sink = ListSink()
    kpis = simulate(busy_hall(scope_level=level, scope_bucket="200 h"), seed=3, until=until,
                    sink=sink).kpis
    per_scope = [m for m in sink.metrics if m.name == "availability" and m.scope != "hall"]
    n_scopes = {"row": 2, "rack": 4, "system": 12}[level]
    assert len(per_scope) == n_scopes  # one bucket covers the run
    assert all(0.0 <= m.value <= 1.0 for m in per_scope)
    # equal systems per scope: the hall mean is the plain mean of scope means
    assert np.mean([m.value for m in per_scope]) == pytest.approx(kpis["availability"], rel=1e-9)
    assert kpis["availability"] < 1.0  # something happened


# One wafer dead on arrival (some 10 of 100 cores usable, none spare) and no spare
# system: the hall is down from t = 0. Its capacity jumps +1, -(1 - c), -c at t = 0
# (c the usable share), which in floats integrates to a few 1e-16 system-hours,
# below or above zero depending on c.
DEAD_HALL = quiet_scenario(
    hall={"systems_per_rack": 1},
    wafer={"physical_cores": 100, "active_cores": 100, "min_active_fraction": 1.0,
           "area": "200 cm2", "defect_density": "1 /cm2"},
    spare_systems={"count": 0})


def raw_capacity_h(model, until: float) -> float:
    """The capacity integral of a run, unclipped (what the KPI is made of)."""
    t, _, q, d = model.fleet.log.arrays()
    sel = q == QUANTITIES.index("capacity")
    return float(bucket_integrals(t[sel], np.zeros(int(sel.sum()), np.int64), d[sel], 1,
                                  np.array([0.0, until]))[0, 0])


def test_a_hall_down_all_run_never_reads_below_zero():
    until = 10.0
    below_zero = 0
    for seed in range(1, 11):
        model, _ = run_model(DEAD_HALL, until=until, seed=seed)
        assert 0 < model.wafers.usable[0] < 100  # dead on arrival, with a share left
        below_zero += raw_capacity_h(model, until) < 0.0
        kpis = simulate(DEAD_HALL, seed=seed, until=until).kpis
        assert kpis["availability"] == 0.0  # +1 and -1 cancel exactly
        assert kpis["capacity"] >= 0.0  # clipped (and not -0.0: copysign below)
        assert math.copysign(1.0, kpis["capacity"]) == 1.0
        assert kpis["downtime_h.wafer"] == until
    assert below_zero  # the rounding did go below zero for some seeds


def test_a_hall_down_all_run_has_no_capacity_either():
    until = 10.0
    model, _ = run_model(DEAD_HALL, until=until, seed=2)
    assert raw_capacity_h(model, until) > 0.0  # (for this seed) rounding above zero
    kpis = simulate(DEAD_HALL, seed=2, until=until).kpis
    assert kpis["availability"] == 0.0
    assert kpis["capacity"] <= kpis["availability"]


def test_the_change_log_gives_each_quantity_s_jumps_from_the_system_s_value_before():
    # the fleet logs a system's quantities as they are after each change; the jumps are
    # each value less the same system's value before it (0 before its first entry),
    # in the order of the changes and of QUANTITIES, none where nothing changed
    k = len(QUANTITIES)
    log = ChangeLog()
    entries = [
        (0.0, 0, [1.0, 1.0, 23.0, 0.0, 0.0]),
        (0.0, 1, [1.0, 1.0, 23.0, 0.0, 0.0]),
        (2.0, 1, [0.0, 0.0, 2.0, 0.0, 0.0]),
        (2.5, 0, [1.0, 0.5, 11.5, 1.0, 0.0]),
        (3.0, 1, [0.0, 0.0, 2.0, 0.0, 0.0]),  # nothing changed
        (4.0, 1, [0.0, 0.0, 0.0, 0.0, 1.0]),
    ]
    for t, s, values in entries:
        assert len(values) == k
        log.t.append(t)
        log.system.append(s)
        log.values.extend(values)
    t, system, quantity, delta = log.arrays()
    expected = []
    before = {0: [0.0] * k, 1: [0.0] * k}
    for time, s, values in entries:
        for q, value in enumerate(values):
            if value != before[s][q]:
                expected.append((time, s, q, value - before[s][q]))
        before[s] = values
    got = list(zip(t.tolist(), system.tolist(), quantity.tolist(), delta.tolist(), strict=True))
    assert got == expected
    assert len(got) == 14

