"""Common random numbers for logistics: every independent draw has its own stream.

Lives (``components.<class>.life``, ``.residual``), lot membership (``.lot``), whether a
failure hits a load-carrying unit (``.failover``) and the failover time
(``.failover_time``) are separate streams, and so is every stage of a repair
(``repair.<class>.<stage>``). Changing a logistics parameter then leaves
the failure history wherever physics says it must stay: a different failover
law changes nothing but the transients; a repair parameter of one class
leaves the other classes alone (crews and parts are plentiful, so classes do
not meet in a queue); any logistics change leaves every unit's first failure
and every core failure (no wafer ever fails here, so no swap renews a system).
"""

from __future__ import annotations

import pytest
from twinkit import merge, quiet_scenario, run_logged

BUSY = {
    "run": {"until": "2000 h"},
    "hall": {"systems_per_rack": 12},
    "components": {
        "psu": {"failure": {"dist": "exponential", "mean": "800 h"},
                "repair": {"dist": "lognormal", "median": "2 h", "sigma": 0.5},
                "escalate_probability": 0.7},
        "pump": {"failure": {"dist": "weibull", "shape": 1.5, "scale": "600 h"},
                 "repair": {"dist": "lognormal", "median": "3 h", "sigma": 0.5},
                 "escalate_probability": 0.9,
                 "failover": {"dist": "lognormal", "median": "1 min", "sigma": 1.0},
                 "failover_factor": 2.0},
        "fan": {"failure": {"dist": "weibull", "shape": 1.3, "scale": "900 h"},
                "repair": {"dist": "lognormal", "median": "45 min", "sigma": 0.4},
                "escalate_probability": 0.8},
    },
    "wafer": {"core_failures": {"dist": "exponential", "mean": "300 h"}},
    "repair": {"diagnosis": {"dist": "lognormal", "median": "20 min", "sigma": 0.6},
               "auto_fix": {"dist": "deterministic", "value": "15 min"},
               # no mistaken replacement: it would renew a unit before its first failure
               "wrong_unit_probability": 0.0, "silent_failure_probability": 0.05,
               "detection_delay": {"dist": "exponential", "mean": "2 h"}},
}

CHANGES = {
    "failover law": ({"components": {"pump": {"failover": {
        "dist": "deterministic", "value": "2 min"}}}}, "all"),
    "pump repair time": ({"components": {"pump": {"repair": {
        "dist": "deterministic", "value": "7 h"}}}}, ("psu", "fan")),
    "pump spares": ({"spares": {"pump": {"stock": 3, "reorder_point": 1,
                                         "order_quantity": 2, "lead_time": "30 h"}}},
                    ("psu", "fan")),
    "diagnosis": ({"repair": {"diagnosis": {"dist": "exponential", "mean": "3 h"}}}, ()),
    "detection delay": ({"repair": {"detection_delay": {
        "dist": "deterministic", "value": "5 h"}}}, ()),
    "crew count": ({"repair": {"crews": 2}}, ()),
    "silent automated fixes": ({"repair": {"auto_silent_failure_probability": 0.3}}, ()),
}


def failures(events, cls: str | None = None):
    return [(e.t, e.scope, e.cause, e.value) for e in events
            if e.kind == "failure" and (cls is None or e.cause == cls)]


def first_failures(events):
    firsts: dict[str, float] = {}
    for e in events:
        if e.kind == "failure" and e.cause not in ("cores", "wafer"):
            firsts.setdefault(e.scope, e.t)
    return firsts


@pytest.fixture(scope="module")
def baseline():
    return run_logged(quiet_scenario(**BUSY))[1]


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_a_logistics_change_leaves_the_failures_that_physics_keeps(baseline, change):
    overrides, unchanged = CHANGES[change]
    _, events = run_logged(quiet_scenario(**merge(BUSY, overrides)))
    assert len(failures(baseline, "pump")) > 50 and len(failures(baseline, "cores")) > 50
    if unchanged == "all":
        assert events != baseline  # the change does change something (the throttles)
        assert failures(events) == failures(baseline)
        return
    assert failures(events) != failures(baseline)  # the change does change something
    for cls in (*unchanged, "cores"):
        assert failures(events, cls) == failures(baseline, cls), cls
    assert first_failures(events) == first_failures(baseline)
