"""The failover transient for k of n: which failures start one.

`required` of the units that are up carry the load, every up unit equally
likely to be one of them, so a failure that leaves the system running
starts a transient with probability required / up (up counted just before
the failure): 2/4 for the first failure of a 2-of-4 class, 2/3 for the
second while the first is still down (not required / count = 2/4 again).
"""

from __future__ import annotations

import math

from twinkit import NEVER, quiet_scenario

from twin.engine import build

SYSTEMS = 2_000


def test_a_failure_hits_a_load_carrying_unit_with_probability_required_over_up():
    model = build(quiet_scenario(
        hall={"rows": SYSTEMS // 100, "racks_per_row": 1, "systems_per_rack": 100},
        components={"pump": {"count": 4, "required": 2, "failure": NEVER, "repair": NEVER,
                             "failover": {"dist": "deterministic", "value": "100 h"},
                             "failover_factor": 2.0}}), 1)
    pump = next(c for c in model.classes if c.name == "pump")
    for s in range(SYSTEMS):
        pump._agenda.schedule(4 * s, 1.0)
        pump._agenda.schedule(4 * s + 1, 2.0)
    model.env.run(until=1.5)
    first = list(pump.in_failover)
    model.env.run(until=2.5)
    second = [b - a for a, b in zip(first, pump.in_failover, strict=True)]
    assert all(d == 2 for d in pump.down)
    for hits, p in ((sum(first), 2 / 4), (sum(second), 2 / 3)):
        assert abs(hits - SYSTEMS * p) <= 4 * math.sqrt(SYSTEMS * p * (1 - p)), (hits, p)
