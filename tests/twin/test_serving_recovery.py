"""Serving on a quiet hall where the test takes systems down by hand: the recovery
sequence with its causes, and the fluid integrals against a hand-computed timeline.

One deployment of Llama 3.1 8B at 8 bit (one system per replica) with two
replicas; a tenant asks a flat demand D between one and two replicas' admitted
capacity (`admitted`: 0.95 x the tokens/s a replica gives this tenant), so
losing a replica loses D minus one replica's admitted capacity.
"""

from __future__ import annotations

import math

import pytest
from twinkit import merge, quiet_scenario

from twin.engine import build
from twin.kpis import collect_kpis
from twin.records import ListSink
from twin.scenario import Scenario

HOUR = 3600.0
LOAD_H = 10 / 60


def serving_scenario(systems: int, hot_spares: int, **tenant) -> Scenario:
    return quiet_scenario(
        hall={"systems_per_rack": systems},
        run={"until": "6 h"},
        serving={
            "hot_spares": hot_spares, "load_time": "10 min",
            "deployments": {"small": {"model": "llama-3.1-8b", "bits": 8, "batch": 32,
                                      "replicas": 2}},
            "tenants": {"chat": merge({
                "deployment": "small", "requests_per_s": 1.0,
                "output": {"dist": "deterministic", "value": 100},
                "prompt": {"dist": "deterministic", "value": 100},
                "ttft": "100 s", "tpot": "1 s",
            }, tenant)},
        },
    )


def run(scenario: Scenario, actions):
    """Build, let `actions(model)` schedule what happens, run to the horizon and
    return the model, its outcome and its serving events."""
    sink = ListSink()
    model = build(scenario, 1, sink)
    model.env.process(actions(model))
    horizon = scenario.run.until
    model.env.run(until=horizon)
    model.recorder.flush()
    outcome = model.fidelity.outcome(horizon, 1.0)
    events = [(e.t, e.kind, e.cause, e.value) for e in sink.events
              if e.kind.startswith(("replica", "failover"))]
    return model, outcome, events


def admitted(model) -> float:
    """Output tokens/s one replica admits for the tenant: 0.95 x its output over the
    replica-seconds a request takes (prefill, then its share of the decode steps)."""
    chat = model.serving.tenants[0]
    return 0.95 * chat.output_tokens / chat.work_s


def with_demand(systems: int, hot_spares: int, share: float, **tenant) -> Scenario:
    """The scenario with D = `share` x one replica's admitted capacity."""
    probe = build(serving_scenario(systems, hot_spares), 1)
    rate = share * admitted(probe) / 100.0
    return serving_scenario(systems, hot_spares, requests_per_s=rate, **tenant)


def nothing(model):
    yield model.env.timeout(0)


def psu_down_at(t: float, hours: float, system: int = 0):
    def actions(model):
        yield model.env.timeout(t)
        model.fleet.hold(system, model.fleet.bit("psu"), "psu", hours)
    return actions


def test_a_lost_system_fails_over_to_a_hot_spare_after_the_load_time():
    model, outcome, events = run(with_demand(3, 1, 1.5), psu_down_at(1.5, 2.0))
    t_back = 1.5 + LOAD_H
    assert events[0] == (1.5, "replica_down", "psu", events[0][3])
    assert math.isnan(events[0][3])
    assert events[1:] == [
        (pytest.approx(t_back), "failover", "psu", pytest.approx(LOAD_H)),
        (pytest.approx(t_back), "replica_restore", "psu", pytest.approx(LOAD_H)),
    ]
    replicas = model.serving.replicas
    assert sorted(s for systems in replicas.systems for s in systems) == [1, 2]
    assert replicas.replica_of[0] == -1 and 0 in replicas._idle[0]  # back in the pool
    assert replicas.failovers == 1 and replicas.downs == 1


def test_served_and_lost_tokens_integrate_the_timeline_exactly():
    scenario = with_demand(3, 1, 1.5)
    model, outcome, _ = run(scenario, psu_down_at(1.5, 2.0))
    per_replica = admitted(model)
    demand = 1.5 * per_replica
    chat = outcome.tenants["chat"]
    short = (demand - per_replica) * LOAD_H * HOUR  # one replica for the load time
    assert chat.demanded == pytest.approx(demand * 6 * HOUR, rel=1e-12)
    assert chat.served == pytest.approx(demand * 6 * HOUR - short, rel=1e-12)
    assert chat.lost["psu"] == pytest.approx(short, rel=1e-9)
    assert chat.lost["overload"] == 0.0
    assert chat.reservation_cost == 0.0


def test_without_an_idle_system_the_replica_waits_for_its_own():
    model, outcome, events = run(with_demand(2, 0, 1.5), psu_down_at(1.5, 2.0))
    assert [e[:3] for e in events] == [(1.5, "replica_down", "psu"),
                                       (3.5, "replica_restore", "psu")]
    assert events[1][3] == pytest.approx(2.0)
    per_replica = admitted(model)
    assert outcome.tenants["chat"].lost["psu"] == pytest.approx(
        0.5 * per_replica * 2.0 * HOUR, rel=1e-9)


def test_demand_beyond_full_capacity_is_overload_and_the_rest_goes_to_the_cause():
    # D = 2.5 replicas: 0.5 is overload all the time; losing one replica for 2 h
    # loses one more replica's worth, charged to psu
    model, outcome, _ = run(with_demand(2, 0, 2.5), psu_down_at(1.0, 2.0))
    per_replica = admitted(model)
    chat = outcome.tenants["chat"]
    assert chat.lost["overload"] == pytest.approx(0.5 * per_replica * 6 * HOUR, rel=1e-12)
    assert chat.lost["psu"] == pytest.approx(per_replica * 2 * HOUR, rel=1e-9)
    assert chat.demanded == pytest.approx(chat.served + sum(chat.lost.values()), rel=1e-12)


def test_a_degraded_wafer_slows_its_replica_and_fails_a_tight_tpot():
    # at 2 h system 0 keeps half its cores: its replica runs at 0.5, blamed on cores;
    # the TPOT SLO needs 0.6 of full speed, so its tokens miss it from then on
    probe = build(serving_scenario(2, 0), 1)
    user_tps = probe.serving.deployments[0].user_tps
    tpot = f"{1 / (0.6 * user_tps)!r} s"
    scenario = with_demand(2, 0, 1.2, tpot=tpot)

    def degrade(model):
        yield model.env.timeout(2.0)
        model.fleet.set_core_fraction(0, 0.5)

    model, outcome, events = run(scenario, degrade)
    assert events == []  # slowed, never down
    assert model.serving.replicas.speed == [0.5, 1.0]
    assert model.serving.replicas.cause == ["cores", ""]
    per_replica = admitted(model)
    chat = outcome.tenants["chat"]
    # 1.2 asked of 1.5 left: all served, 1/3 of it on the slow replica for 4 of 6 h
    assert chat.served == pytest.approx(1.2 * per_replica * 6 * HOUR, rel=1e-12)
    assert chat.tpot_attainment == pytest.approx(1 - (1 / 3) * (4 / 6), rel=1e-9)
    assert chat.lost["cores"] == 0.0


def test_the_kpis_name_every_cause_and_the_reservation_cost():
    scenario = with_demand(3, 1, 1.5)
    model, outcome, _ = run(scenario, psu_down_at(1.5, 2.0))
    kpis = collect_kpis(model, 6.0, {"up": 1.0, "capacity": 1.0, "power_kw": 1.0,
                                     "throttled": 0.0, "tripped": 0.0}, outcome)
    lost = {k.rpartition(".")[2] for k in kpis if k.startswith("serving.tokens.lost.chat.")}
    assert lost == {"psu", "pump", "fan", "wafer", "cores", "thermal", "overload"}
    assert kpis["serving.replicas_available.small"] == pytest.approx(2 - LOAD_H / 6, rel=1e-12)
    assert kpis["serving.failovers"] == 1.0


@pytest.mark.parametrize(("lend", "cost"), [(False, 0.5), (True, 0.0)])
def test_a_reservation_costs_the_others_its_idle_replicas_unless_lent(lend, cost):
    # H holds 1 of the 2 replicas and asks half a replica; O asks 1.5 replicas: with
    # the replicas pooled both are served; held, O gets one replica's worth
    probe = build(serving_scenario(2, 0), 1)
    per_replica = admitted(probe)
    base = serving_scenario(2, 0)
    spec = base.document()
    chat = spec["serving"]["tenants"]["chat"]
    chat["requests_per_s"] = 1.5 * per_replica / 100
    spec["serving"]["tenants"]["holder"] = {**chat, "requests_per_s": 0.5 * per_replica / 100,
                                            "reserved": 1}
    spec["serving"]["lend_reserved"] = lend
    _, outcome, _ = run(Scenario.model_validate(spec), nothing)
    assert outcome.tenants["chat"].reservation_cost == pytest.approx(
        cost * per_replica * 6 * HOUR, rel=1e-12, abs=1e-3)
    assert outcome.tenants["holder"].reservation_cost == pytest.approx(0.0, abs=1e-3)
    assert outcome.tenants["chat"].lost["overload"] == pytest.approx(
        cost * per_replica * 6 * HOUR, rel=1e-12, abs=1e-3)


def test_a_request_takes_its_prefill_and_its_share_of_the_decode_steps():
    from twin.compute import catalogue, evaluate

    model = build(serving_scenario(2, 0), 1)
    chat, dep = model.serving.tenants[0], model.serving.deployments[0]
    perf = evaluate(catalogue()["llama-3.1-8b"], bits=8, batch=32, context=8192, prompt=100)
    prefill = 100 / float(perf.prefill_tps)
    assert chat.prefill_s.tolist() == pytest.approx([prefill] * len(chat.prefill_s))
    assert chat.work_s == pytest.approx(prefill + 100 / float(perf.aggregate_tps), rel=1e-12)
    assert dep.step_s == float(perf.step_s)


@pytest.mark.parametrize(("slack", "attained"), [(0.9, 0.0), (1.5, 1.0)])
def test_the_ttft_slo_is_met_when_prefill_and_a_step_fit_in_it(slack, attained):
    # demand of half a replica: no request waits (C ~ 0), so TTFT = prefill + one step
    probe = build(serving_scenario(2, 0), 1)
    chat, dep = probe.serving.tenants[0], probe.serving.deployments[0]
    ttft = slack * (float(chat.prefill_s[0]) + dep.step_s)
    _, outcome, _ = run(with_demand(2, 0, 0.5, ttft=f"{ttft!r} s"), nothing)
    assert outcome.tenants["chat"].ttft_attainment == pytest.approx(attained, abs=1e-9)


def test_a_throttled_system_slows_its_replica_blamed_on_the_throttle():
    # 45 C water (restart at 50 C): full power would settle at 45 + 23 x 1.8 = 86.4 C,
    # above the 85 C throttle: the governor holds every system below full power
    scenario = serving_scenario(2, 0)
    spec = scenario.document()
    spec["thermal"]["inlet"] = "45 C"
    spec["thermal"]["restart"] = "50 C"
    model, outcome, events = run(Scenario.model_validate(spec), nothing)
    fraction = model.fleet.fraction[0]
    assert 0.5 <= fraction < 1.0
    assert model.serving.replicas.speed == [fraction, model.fleet.fraction[1]]
    assert model.serving.replicas.cause == ["thermal", "thermal"]
    assert events == []


def test_a_power_capped_system_slows_its_replica_blamed_on_the_cap():
    # a budget of 80 % of the two systems' full power, uniform: each runs at 0.8; a
    # demand of both replicas' full capacity loses 0.2 of it to the cap, all run
    spec = with_demand(2, 0, 2.0).document()
    spec["facility"] = {"cap": {"budget": f"{0.8 * 2 * 23.0} kW", "policy": "uniform"}}
    model, outcome, events = run(Scenario.model_validate(spec), nothing)
    assert model.fleet.fraction == [pytest.approx(0.8)] * 2
    assert model.serving.replicas.speed == [pytest.approx(0.8)] * 2
    assert model.serving.replicas.cause == ["power_cap", "power_cap"]
    assert events == []
    chat = outcome.tenants["chat"]
    assert chat.lost["power_cap"] == pytest.approx(0.2 * 2 * admitted(model) * 6 * HOUR,
                                                   rel=1e-9)
    assert "cores" not in chat.lost or chat.lost["cores"] == 0.0
    kpis = collect_kpis(model, 6.0, {"up": 0.0, "capacity": 0.0, "power_kw": 0.0,
                                     "throttled": 0.0, "tripped": 0.0}, outcome)
    assert kpis["serving.tokens.lost.chat.power_cap"] == chat.lost["power_cap"]


def test_the_hourly_series_are_the_timeline_bucket_by_bucket():
    model, outcome, _ = run(with_demand(3, 1, 1.5), psu_down_at(1.5, 2.0))
    per_replica = admitted(model)
    demand = 1.5 * per_replica
    series = {(s.scope, s.name): s for s in outcome.series}
    served = series[("hall.tenants.chat", "tokens_served_per_s")]
    assert (served.t0, served.bucket, served.t_end) == (0.0, 1.0, 6.0)
    short = (demand - per_replica) * LOAD_H  # the hour 1-2 h lost this much per second
    assert served.values == pytest.approx([demand, demand - short, demand, demand, demand,
                                           demand], rel=1e-12)
    lost = series[("hall.tenants.chat", "tokens_lost_per_s")].values
    assert lost == pytest.approx([0, short, 0, 0, 0, 0], abs=1e-6)
    assert series[("hall.tenants.chat", "tokens_demanded_per_s")].values == pytest.approx(
        [demand] * 6, rel=1e-12)
    up = series[("hall.deployments.small", "replicas_available")].values
    assert up == pytest.approx([2, 2 - LOAD_H, 2, 2, 2, 2], rel=1e-12)
    waits = series[("hall.tenants.chat", "delay_mean_s")].values
    assert len(waits) == 6 and all(w >= 0 for w in waits)


def test_a_replica_that_waited_for_its_own_system_stops_waiting_when_it_is_back():
    # no idle system: replica 0 waits for one; its own system comes back at 3.5 h and it
    # serves again: it no longer waits (else every idle system's change would re-read it)
    model, _, events = run(with_demand(2, 0, 1.5), psu_down_at(1.5, 2.0))
    assert [e[1] for e in events] == ["replica_down", "replica_restore"]
    assert model.serving.replicas._waiting == set()
