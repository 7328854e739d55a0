"""Warnings for a resource that cannot keep up (issue 7, item 13).

A resource is saturated when, over the second half of the run, work waited
for it on at least half of the days and its demand reached its capacity
(`twin.saturation`). Queues fed by periodic deliveries (an (s, Q) reorder,
an RMA return) drain now and then even while they cannot keep up: the bad
wafer lot's spare systems and the PSU stock of a hall with a tenth of its
support did, and went unwarned by the rule this one replaced ("never emptied
over the second half, and grew"). The default hall and a hall scaled with
its support do not warn, nor does a day shift's overnight queue, nor a run
too short to tell.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from twin.engine import simulate
from twin.scenario import load_scenario, scale_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
HALL = SCENARIOS / "hall.toml"
YEAR = 365 * 24.0

# The default hall with a tenth of its support: a tenth of each part's reorder point
# and order quantity (rounded to whole parts, at least one), one spare system. Per
# system it is the hall of 200 rows with the default support, at a tenth of the cost.
TENTH_OF_THE_SUPPORT = [
    "spares.psu.stock=6", "spares.psu.reorder_point=2", "spares.psu.order_quantity=4",
    "spares.pump.stock=3", "spares.pump.reorder_point=1", "spares.pump.order_quantity=2",
    "spares.fan.stock=2", "spares.fan.reorder_point=1", "spares.fan.order_quantity=1",
    "spare_systems.count=1",
]


def saturated(warnings: tuple[str, ...]) -> dict[str, str]:
    """The warnings by the resource they name."""
    return {w.split(" saturated: ")[0]: w for w in warnings}


def load_in(warning: str) -> float:
    """The demand / capacity a warning reports."""
    match = re.search(r" = ([\d,.]+|inf) there;", warning)
    assert match, warning
    return float(match.group(1).replace(",", ""))


def test_the_default_hall_does_not_warn():
    assert simulate(load_scenario(HALL)).warnings == ()


def test_a_hall_scaled_with_its_support_does_not_warn():
    scaled = scale_scenario(load_scenario(HALL), 4)
    assert simulate(scaled, until=YEAR / 2).warnings == ()


def test_a_bad_wafer_lot_runs_out_of_spare_systems():
    # a year of it (seed 1): 106 failures found no spare, 65 systems still wait at the end;
    # the pool drains when a system comes back from RMA, so the queue was empty at times
    warnings = saturated(simulate(load_scenario(SCENARIOS / "bad-wafers.toml")).warnings)
    assert list(warnings) == ["spare_systems"], warnings
    message = warnings["spare_systems"]
    assert "65 at the end" in message and message.endswith("raise spare_systems.count")
    assert load_in(message) > 1.0


def test_a_hall_with_a_tenth_of_its_support_runs_short_of_parts_and_spare_systems():
    warnings = saturated(simulate(load_scenario(HALL, TENTH_OF_THE_SUPPORT)).warnings)
    assert {"spares.psu", "spares.pump", "spare_systems"} <= set(warnings), warnings
    assert "crews" not in warnings  # two crews are ~8 % busy: they keep up
    # the PSU backlog is stable (the reorders keep coming) but every delivery falls short:
    # ~526 PSUs a year (docs/model.md) over a 7 d lead time against a mean stock
    # position of reorder point + (order + 1) / 2 = 4.5; ~263 PSUs in the half
    # (Poisson: 6 % sd), 20 % is over 3 sd
    assert load_in(warnings["spares.psu"]) == pytest.approx(526 * 7 / 365 / 4.5, rel=0.2)
    assert "raise spares.psu.reorder_point and order_quantity" in warnings["spares.psu"]


def test_a_hall_of_200_rows_with_the_default_support_warns_within_a_month():
    warnings = saturated(simulate(load_scenario(HALL, ["hall.rows=200"]), until=30 * 24.0).warnings)
    assert {"spares.psu", "spare_systems"} <= set(warnings), warnings


@pytest.mark.slow
def test_a_hall_of_200_rows_with_the_default_support_warns_for_its_psus_over_3_years():
    # the reviewer's case: 15,177 PSU stockouts in 3 years, a PSU queue that never grew
    result = simulate(load_scenario(HALL, ["hall.rows=200"]), until=3 * YEAR)
    assert {"spares.psu", "spare_systems"} <= set(saturated(result.warnings)), result.warnings


def test_crews_that_cannot_keep_up_warn():
    # one crew, PSU replacements of ~20 h: ~526 x 20 h a year of hands-on work for 8,760
    # crew-hours; a crew that cannot keep up is busy all its on-shift hours
    slow_psus = [
        "repair.crews=1", 'components.psu.repair={dist="lognormal", median="20 h", sigma=0.4}',
    ]
    warnings = saturated(simulate(load_scenario(HALL, slow_psus), until=120 * 24.0).warnings)
    assert list(warnings) == ["crews"], warnings
    assert load_in(warnings["crews"]) == pytest.approx(1.0, abs=0.05)
    assert warnings["crews"].endswith("raise repair.crews")


def test_a_day_shift_s_overnight_queue_is_not_saturation():
    # crews on shift 08:00-12:00: at every midnight look the faults since noon wait,
    # but the crews are busy about half their on-shift hours
    day_shift = ['repair.shift_start="8 h"', 'repair.shift_length="4 h"']
    assert simulate(load_scenario(HALL, day_shift)).warnings == ()


def test_a_run_too_short_to_tell_does_not_warn():
    result = simulate(load_scenario(HALL, ["hall.rows=200"]), until=7 * 24.0)
    assert result.warnings == ()


def test_twin_run_prints_the_warnings_in_json_and_in_the_table():
    args = ["run", str(HALL), "--no-store", "--until", "30 d", "--set", "hall.rows=2",
            "--set", "spare_systems.count=0",
            "--set", 'wafer.failure={dist="exponential", mean="500 h"}']
    out = CliRunner().invoke(cli, [*args, "--json"])
    assert out.exit_code == 0, out.output
    warnings = json.loads(out.output)["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("spare_systems saturated")
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "warning: spare_systems saturated" in table.output
