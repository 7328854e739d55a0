"""Placement learns the facility's failure domains (twin.facility.failure_domains):
spread puts a deployment's replicas in distinct CDU loops (rows) and then distinct
rack PDUs (racks); pack keeps a replica in as few of them as it can; a CDU loss
then takes at most one replica of a spread deployment."""

from __future__ import annotations

from typing import Any

import numpy as np
from twinkit import NEVER, quiet_scenario, run_logged

from twin.compute import PLACEMENTS
from twin.engine import build
from twin.facility import failure_domains
from twin.hall import Hall

HALL = Hall(rows=4, racks_per_row=3, systems_per_rack=4)


def test_the_facility_domains_are_the_cdu_loop_then_the_rack():
    domains = failure_domains(HALL)
    assert np.array_equal(domains, np.stack([HALL.row_of, HALL.rack_of]))


def test_spread_uses_distinct_loops_then_distinct_rack_pdus():
    """8 replicas of 2 systems over 4 rows of 3 racks: two per loop, never two in one
    rack. Without the facility's domains (rows only) the second replica of a row goes
    to the leftmost room, the first replica's rack."""
    free = np.ones(HALL.n_systems, dtype=bool)
    placed = PLACEMENTS["spread"].place(HALL, 8, 2, free, failure_domains(HALL))
    rows = HALL.row_of[placed]
    racks = HALL.rack_of[placed]
    assert (rows == rows[:, :1]).all() and (racks == racks[:, :1]).all()  # one rack each
    assert np.bincount(rows[:, 0], minlength=HALL.rows).tolist() == [2] * HALL.rows
    assert len(set(racks[:, 0])) == 8
    # the first four, one per loop: a loop's loss takes one of them
    assert sorted(rows[:4, 0]) == list(range(HALL.rows))
    plain = PLACEMENTS["spread"].place(HALL, 8, 2, free)
    assert len(set(HALL.rack_of[plain][:, 0])) == 4


def test_pack_keeps_a_replica_in_one_loop_and_the_fewest_rack_pdus():
    free = np.ones(HALL.n_systems, dtype=bool)
    free[[0, 1, 2]] = False  # rack 1 has one free system
    placed = PLACEMENTS["pack"].place(HALL, 2, 4, free, failure_domains(HALL))
    for replica in placed:
        assert len(set(HALL.row_of[replica])) == 1
        assert len(set(HALL.rack_of[replica])) == 1
    assert np.array_equal(placed, PLACEMENTS["pack"].place(HALL, 2, 4, free))


def serving_with_facility(placement: str, rows: int = 3, replicas: int = 3) -> Any:
    never = {"failure": NEVER}
    cooling = {
        "chillers": {**never, "count": 2, "capacity": "1000 kW"},
        "cdu": {**never, "pumps": 3, "required": 2, "pump_flow": "2 kg/s",
                "outages": [{"start": "2 h", "duration": "30 h", "units": 3, "row": 1}]},
    }
    power = {"utility": {"outage_interval": "1e9 h"}, "pdu": {"failure": NEVER}}
    return quiet_scenario(
        run={"until": "40 h"},
        hall={"rows": rows, "racks_per_row": 2, "systems_per_rack": 2},
        facility={"power": power, "cooling": cooling},
        serving={
            "placement": placement, "load_time": "10 min",
            "deployments": {"small": {"model": "llama-3.1-8b", "bits": 8, "batch": 32,
                                      "replicas": replicas}},
            "tenants": {"chat": {
                "deployment": "small", "requests_per_s": 1.0,
                "output": {"dist": "deterministic", "value": 100},
                "prompt": {"dist": "deterministic", "value": 100},
                "ttft": "100 s", "tpot": "1 s",
            }},
        },
    )


def test_a_cdu_loss_takes_one_replica_of_a_spread_deployment_and_all_of_a_packed_one():
    """Row 1's CDU loses all its pumps for 30 h: its systems trip, and each replica
    on them goes down (charged to `cdu`) until it is moved. Spread has one replica per
    loop, so one replica is hit; pack put all three in row 1."""
    hit = {}
    for placement in ("spread", "pack"):
        _, events = run_logged(serving_with_facility(placement))
        hit[placement] = sorted({e.scope for e in events if e.kind == "replica_down"})
        assert {e.cause for e in events if e.kind == "replica_down"} == {"cdu"}
    replica = "hall.deployments.small.replica"
    assert hit == {"spread": [f"{replica}1"], "pack": [f"{replica}{k}" for k in (1, 2, 3)]}


def test_the_engine_gives_serving_the_facility_domains():
    """4 replicas over 2 rows of 2 racks: with the facility each has its own rack
    PDUs (with the hall's rows alone two would share the first rack of a row)."""
    model = build(serving_with_facility("spread", rows=2, replicas=4), 1)
    racks = [int(model.fleet.hall.rack_of[s]) for r in model.serving.replicas.systems
             for s in r]
    assert sorted(racks) == [0, 1, 2, 3]
