"""Fluid and request-level serving agree on the tokens served (issue 9, item 7).

The same quiet hall, the same demand and the same hours, simulated both ways:
one deployment of Llama 3.1 8B at 8 bit (one system per replica), two
replicas of batch 32, one tenant with a flat Poisson demand, prompts of 2,000
tokens and exponential outputs of mean 1,000 tokens, 15 minutes. Prefill runs
alone on a replica in both models and is a tenth of a request's work here, so
a model that did not charge it would be off by that in saturation. The served
tokens must agree within 5 % (issue 9) in each regime the fluid model claims:
below saturation (served = demanded), saturated (served = 0.95 x capacity:
the admission rule) and with a replica down for a third of the run (a PSU
held by hand, no hot spare: the deployment at half capacity meanwhile).

Why 5 % holds here: below saturation both serve what is asked, less, for the
request model, what is still in flight at the horizon (about a second of
tokens of 900) and the noise of its ~80,000 Poisson arrivals (seed 1 draws
1.2 % fewer than the mean: 3.6 standard deviations, measured on 30 seeds to
be luck); saturated, its admission lets in 5 s of burst on top (0.6 %).
Measured: -1.4 %, +0.5 %, +0.3 %.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import simpy
from twinkit import quiet_scenario

from twin.engine import Model, build
from twin.scenario import Scenario
from twin.workloads.serving.core import OVERLOAD, Outcome

HORIZON_H = 0.25
OUTPUT = 1000.0
PROMPT = 2000


def scenario(fidelity: str, requests_per_s: float) -> Scenario:
    return quiet_scenario(
        run={"until": f"{HORIZON_H} h"},
        serving={
            "fidelity": fidelity,
            "deployments": {"small": {"model": "llama-3.1-8b", "bits": 8, "batch": 32,
                                      "replicas": 2}},
            "tenants": {"chat": {
                "deployment": "small", "requests_per_s": requests_per_s,
                "output": {"dist": "exponential", "mean": OUTPUT},
                "prompt": {"dist": "deterministic", "value": PROMPT},
                "ttft": "10 s", "tpot": "1 s",
            }},
        },
    )


def capacity_requests_per_s() -> float:
    """Both replicas' admitted capacity (0.95 of their time), in requests per second."""
    model = build(scenario("fluid", 1.0), 1)
    assert model.serving is not None
    return 2 * 0.95 / model.serving.tenants[0].work_s


Actions = Callable[[Model], Iterator[simpy.Event]]


def nothing(model: Model) -> Iterator[simpy.Event]:
    yield model.env.timeout(0)


def psu_down_for_a_third(model: Model) -> Iterator[simpy.Event]:
    yield model.env.timeout(HORIZON_H / 3)
    system = model.serving.replicas.systems[0][0]  # type: ignore[union-attr]
    model.fleet.hold(system, model.fleet.bit("psu"), "psu", HORIZON_H / 3)


def outcome(fidelity: str, requests_per_s: float, actions: Actions) -> Outcome:
    model = build(scenario(fidelity, requests_per_s), 1)
    model.env.process(actions(model))
    model.env.run(until=HORIZON_H)
    assert model.fidelity is not None
    return model.fidelity.outcome(HORIZON_H, 1.0)


def served(fidelity: str, requests_per_s: float, actions: Actions) -> tuple[float, float]:
    chat = outcome(fidelity, requests_per_s, actions).tenants["chat"]
    return chat.served, chat.demanded


@pytest.mark.parametrize(("share", "actions", "saturated"), [
    (0.6, nothing, False),
    (1.5, nothing, True),
    (0.75, psu_down_for_a_third, True),
], ids=["below-saturation", "saturated", "a-replica-down"])
def test_fluid_and_request_level_serve_the_same_tokens(
    share: float, actions: Actions, saturated: bool,
) -> None:
    rate = share * capacity_requests_per_s()
    fluid, fluid_demand = served("fluid", rate, actions)
    request, request_demand = served("request", rate, actions)
    # the regime is the one named: the fluid model serves all or turns some away
    assert (fluid < 0.97 * fluid_demand) == saturated
    assert request == pytest.approx(fluid, rel=0.05)


def test_at_request_fidelity_the_outage_shows_in_retries_lost_tokens_and_latency() -> None:
    """The replica-down case at request fidelity: the requests on the replica that
    lost its PSU restart elsewhere (retried), the tokens they had made are lost to
    `psu`, the overload while half the capacity is gone is turned away, and the
    queue it builds shows in the TTFT tail."""
    seen = outcome("request", 0.75 * capacity_requests_per_s(), psu_down_for_a_third)
    chat, k = seen.tenants["chat"], seen.kpis
    assert k["serving.requests_retried.chat"] > 0
    assert chat.lost["psu"] > 0
    assert chat.lost[OVERLOAD] > 0 and k["serving.requests_turned_away.chat"] > 0
    assert k["serving.ttft_p99_s.chat"] > 2 * k["serving.ttft_p50_s.chat"]


def test_the_request_level_series_add_up_to_its_totals() -> None:
    """Hourly series at request fidelity (here 5-minute buckets): tokens served and
    demanded per second, times each bucket's length, sum to the run's totals."""
    model = build(scenario("request", 0.6 * capacity_requests_per_s()), 1)
    model.env.run(until=HORIZON_H)
    assert model.fidelity is not None
    bucket = HORIZON_H / 3
    seen = model.fidelity.outcome(HORIZON_H, bucket)
    series = {(s.scope, s.name): s.values for s in seen.series}
    chat = seen.tenants["chat"]
    for name, total in (("tokens_served_per_s", chat.served),
                        ("tokens_demanded_per_s", chat.demanded)):
        values = series[("hall.tenants.chat", name)]
        assert len(values) == 3
        assert sum(values) * bucket * 3600 == pytest.approx(total)
    assert series[("hall.deployments.small", "replicas_available")] == (2.0, 2.0, 2.0)


def two_tenants(fidelity: str, gold: dict[str, object], bronze_per_s: float,
                replicas: int, lend: bool) -> Scenario:
    """The deployment above with `replicas` replicas, a tenant `gold` (its keys given)
    and a tenant `bronze` of priority 0 asking `bronze_per_s` requests a second."""
    common = {"deployment": "small", "output": {"dist": "exponential", "mean": OUTPUT},
              "prompt": {"dist": "deterministic", "value": PROMPT},
              "ttft": "10 s", "tpot": "1 s"}
    return quiet_scenario(
        run={"until": f"{HORIZON_H} h"},
        serving={
            "fidelity": fidelity, "lend_reserved": lend,
            "deployments": {"small": {"model": "llama-3.1-8b", "bits": 8, "batch": 32,
                                      "replicas": replicas}},
            "tenants": {"gold": {**common, **gold},
                        "bronze": {**common, "requests_per_s": bronze_per_s}},
        },
    )


@pytest.mark.parametrize(("gold", "bronze", "replicas", "lend"), [
    ({"priority": 1, "share": 0.5}, 1.0, 2, False),
    ({"reserved": 1, "share": 0.25}, 1.0, 3, False),
    ({"reserved": 1, "share": 0.25}, 1.0, 3, True),
], ids=["priority", "reservation", "reservation-lent"])
def test_under_overload_both_fidelities_split_the_same_way(
    gold: dict[str, float], bronze: float, replicas: int, lend: bool,
) -> None:
    """Overload shared by a tenant served first (by priority, or from the replica
    it reserved) and a tenant of priority 0 asking the whole deployment: the fluid
    model serves the first all it asks and the second the rest of 0.95 x capacity
    (x 0.95 of the shared replicas only, when the reservation is not lent);
    request-level admission must split it the same way, each tenant within 5 %
    (an admission per deployment, blind to priority and reservation, served the
    first tenant 0.67 to 0.81 of what the fluid model serves it; now within 0.7 %)."""
    per_replica = capacity_requests_per_s() / 2
    keys = {k: v for k, v in gold.items() if k != "share"}
    keys["requests_per_s"] = gold["share"] * replicas * per_replica
    rate = bronze * replicas * per_replica
    seen = {}
    for fidelity in ("fluid", "request"):
        model = build(two_tenants(fidelity, keys, rate, replicas, lend), 1)
        model.env.run(until=HORIZON_H)
        assert model.fidelity is not None
        seen[fidelity] = model.fidelity.outcome(HORIZON_H, 1.0).tenants
    fluid, request = seen["fluid"], seen["request"]
    assert fluid["gold"].served == pytest.approx(fluid["gold"].demanded)  # served first
    assert fluid["bronze"].served < 0.8 * fluid["bronze"].demanded  # the overload
    for tenant in ("gold", "bronze"):
        assert request[tenant].served == pytest.approx(fluid[tenant].served, rel=0.05), tenant


def test_at_request_fidelity_slo_attainment_does_not_count_requests_in_flight_as_misses() -> None:
    """SLOs no request misses (10 s to the first token, 1 s a token): the tokens made
    by requests still decoding at the horizon met them so far, so goodput equals what
    was served and the attainment is 1 (counting only finished requests gave ~0.99
    here: the tokens in flight read as misses)."""
    model = build(scenario("request", 0.6 * capacity_requests_per_s()), 1)
    model.env.run(until=HORIZON_H)
    assert model.fidelity is not None
    seen = model.fidelity.outcome(HORIZON_H, HORIZON_H)
    chat, k = seen.tenants["chat"], seen.kpis
    assert k["serving.requests_completed.chat"] < k["serving.requests.chat"]  # some in flight
    assert chat.ttft_attainment == chat.tpot_attainment == 1.0
    assert chat.goodput == pytest.approx(chat.served, rel=1e-12)
    series = {s.name: s.values for s in seen.series if s.scope == "hall.tenants.chat"}
    assert series["goodput_per_s"] == pytest.approx(series["tokens_served_per_s"], rel=1e-12)
