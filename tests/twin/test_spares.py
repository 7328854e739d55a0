"""Spare parts: an (s, Q) policy with lead time, stockouts and repairs waiting for parts.

With instant diagnosis, every fault goes to a crew and asks for a part at
the moment the unit fails, so the sequence of part requests is the sequence
of failures in the event log. That lets the test replay the (s, Q) policy
by hand: after each request the stock position (on hand + on order -
backorders) is reviewed and, at or below s, Q parts are ordered and
delivered a lead time later.
"""

from __future__ import annotations

import pytest
from twinkit import of, quiet_scenario, run_model

REPAIR_H = 2.0


def psu_hall(stock: int, reorder_point: int, order_quantity: int, lead_time: float,
             mtbf: str = "500 h", systems: int = 4):
    return quiet_scenario(
        hall={"systems_per_rack": systems},
        components={"psu": {"failure": {"dist": "exponential", "mean": mtbf},
                            "repair": {"dist": "deterministic", "value": f"{REPAIR_H} h"}}},
        spares={"psu": {"stock": stock, "reorder_point": reorder_point,
                        "order_quantity": order_quantity, "lead_time": f"{lead_time} h"}},
    )


def replay_s_q(requests, stock, s, Q, lead, until):
    """Delivery times and stockout count of an (s, Q) policy, by hand."""
    level, on_order, backorders, stockouts = stock, 0, 0, 0
    deliveries: list[float] = []
    arrived = 0
    for t in requests:
        while arrived < len(deliveries) and deliveries[arrived] <= t:
            level += Q
            on_order -= Q
            served = min(level, backorders)
            level, backorders = level - served, backorders - served
            arrived += 1
        if level == 0:
            stockouts += 1
            backorders += 1
        else:
            level -= 1
        if level + on_order - backorders <= s:
            on_order += Q
            deliveries.append(t + lead)
    return [t for t in deliveries if t <= until], stockouts


def test_with_no_stock_every_repair_waits_exactly_one_lead_time_for_its_part():
    lead, until = 50.0, 3_000.0
    model, sink = run_model(psu_hall(0, 0, 1, lead), until=until)
    stock = model.stock["psu"]
    stockouts = [e.t for e in of(sink.events, "stockout", "hall.spares.psu")]
    failures = [e.t for e in of(sink.events, "failure") if e.cause == "psu"]
    assert len(stockouts) > 100
    assert stockouts == failures  # every request finds the shelf empty
    assert stock.stockouts == len(stockouts) == stock.orders
    restocks = of(sink.events, "restock", "hall.spares.psu")
    due = [t + lead for t in stockouts if t + lead <= until]
    assert [e.t for e in restocks] == pytest.approx(due)
    assert all(e.value == 1.0 for e in restocks)
    assert model.shop.restore_hours["psu"] == pytest.approx(
        [lead + REPAIR_H] * len(model.shop.restore_hours["psu"]))
    assert stock.used == len(restocks)  # each delivery went straight to a waiting repair


def test_the_stock_follows_the_s_q_policy_replayed_from_the_failures():
    stock0, s, Q, lead, until = 4, 2, 5, 100.0, 4_000.0
    model, sink = run_model(psu_hall(stock0, s, Q, lead, mtbf="300 h"), until=until)
    stock = model.stock["psu"]
    requests = [e.t for e in of(sink.events, "failure") if e.cause == "psu"]
    deliveries, stockouts = replay_s_q(requests, stock0, s, Q, lead, until)
    restocks = of(sink.events, "restock", "hall.spares.psu")
    assert [e.t for e in restocks] == pytest.approx(deliveries)
    assert stock.stockouts == stockouts > 0
    assert len(of(sink.events, "stockout", "hall.spares.psu")) == stockouts
    # conservation: on the shelf = initial + delivered - taken
    assert stock.on_hand == stock0 + Q * len(restocks) - stock.used
    assert stock.on_order == Q * (stock.orders - len(restocks))
    assert stock.used == len(model.shop.restore_hours["psu"]) + model.classes[0].up.count(False) \
        - stock.backorders


def test_a_repair_that_hit_a_stockout_ends_a_repair_time_after_a_delivery():
    model, sink = run_model(psu_hall(2, 1, 3, 100.0, mtbf="300 h"), until=4_000.0)
    psu = model.classes[0]
    restock_times = {e.t for e in of(sink.events, "restock")}
    stockout_times = {e.t for e in of(sink.events, "stockout")}
    waited = 0
    for unit in range(model.fleet.n * psu.count):
        scope = psu.unit_scope(unit)
        failures = [e.t for e in sink.events if e.scope == scope and e.kind == "failure"]
        repairs = [e.t for e in sink.events if e.scope == scope and e.kind == "repaired"]
        for failed, repaired in zip(failures, repairs, strict=False):
            if failed in stockout_times:
                waited += 1
                started = repaired - REPAIR_H
                assert any(started == pytest.approx(t) for t in restock_times)
                assert started > failed
            else:
                assert repaired == pytest.approx(failed + REPAIR_H)
    assert waited > 10
    assert psu.failures > model.stock["psu"].stockouts


def test_plenty_of_stock_never_runs_out_and_never_orders():
    model, sink = run_model(psu_hall(1_000, 0, 1, 10.0), until=2_000.0)
    stock = model.stock["psu"]
    assert stock.stockouts == 0 == stock.orders
    # instant diagnosis, no automated fix: every fault takes its part as it happens
    # (those still down at the end have theirs in the crew's hands)
    assert stock.used == model.classes[0].failures
    assert stock.on_hand == 1_000 - stock.used
    assert not of(sink.events, "stockout")
