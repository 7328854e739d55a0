"""The fluid allocation rule on hand-made cases (docs/serving.md "Allocation"):
reservation first, then priority strictly, ties in proportion to what is asked."""

from __future__ import annotations

import numpy as np
import pytest

from twin.workloads.serving.allocation import Pools, allocate


def test_priority_is_strict_and_a_tie_shares_in_proportion_to_demand():
    # one deployment, 10 tokens/s: A (priority 2) asks 6, B and C (priority 1) ask 3 and 5
    pools = Pools(deployment=[0, 0, 0], holds=[-1, -1, -1], priority=[2, 1, 1], shared=[0])
    served = allocate(np.array([[6.0, 3.0, 5.0]]), np.array([[10.0]]), pools, lend=False)
    assert served.tolist() == [[6.0, 1.5, 2.5]]  # 4 left for 8 asked: half each


def test_enough_capacity_serves_everyone_and_none_serves_no_one():
    pools = Pools(deployment=[0, 0], holds=[-1, -1], priority=[0, 0], shared=[0])
    demand = np.array([[3.0, 4.0], [3.0, 4.0]])
    served = allocate(demand, np.array([[100.0], [0.0]]), pools, lend=False)
    assert served.tolist() == [[3.0, 4.0], [0.0, 0.0]]


def test_reserved_replicas_serve_their_holder_first_and_stay_idle_unless_lent():
    # H holds a pool of 4 and asks 2; O (higher priority) asks 10 of the shared 6
    pools = Pools(deployment=[0, 0], holds=[0, -1], priority=[0, 5], shared=[1])
    capacity = np.array([[4.0, 6.0]])
    demand = np.array([[2.0, 10.0]])
    assert allocate(demand, capacity, pools, lend=False).tolist() == [[2.0, 6.0]]
    assert allocate(demand, capacity, pools, lend=True).tolist() == [[2.0, 8.0]]


def test_a_holder_asking_beyond_its_reservation_competes_for_the_rest_by_priority():
    # H holds 4 and asks 7 (3 more, priority 1); O asks 5 (priority 0) of the shared 6
    pools = Pools(deployment=[0, 0], holds=[0, -1], priority=[1, 0], shared=[1])
    served = allocate(np.array([[7.0, 5.0]]), np.array([[4.0, 6.0]]), pools, lend=False)
    assert served.tolist() == [[7.0, 3.0]]
    # without the reservation (the counterfactual of the reservation's cost): one pool of
    # 10, H first by priority: the same here, as H outranks O anyway
    merged = allocate(np.array([[7.0, 5.0]]), np.array([[0.0, 10.0]]), pools.merged(), False)
    assert merged.tolist() == [[7.0, 3.0]]


def test_a_reservation_costs_a_higher_priority_tenant_what_the_holder_gets():
    # O (priority 9) and H (priority 0, holds 4) each ask 8 of 10 tokens/s in all
    pools = Pools(deployment=[0, 0], holds=[-1, 0], priority=[9, 0], shared=[1])
    demand = np.array([[8.0, 8.0]])
    served = allocate(demand, np.array([[4.0, 6.0]]), pools, lend=False)  # H own 4, shared 6
    merged = allocate(demand, np.array([[0.0, 10.0]]), pools.merged(), lend=False)
    assert served.tolist() == [[6.0, 4.0]]
    assert merged.tolist() == [[8.0, 2.0]]
    cost = merged - served
    assert cost.tolist() == [[2.0, -2.0]]  # O's loss is H's gain


def test_deployments_do_not_share_capacity():
    pools = Pools(deployment=[0, 1], holds=[-1, -1], priority=[0, 0], shared=[0, 1])
    served = allocate(np.array([[5.0, 5.0]]), np.array([[10.0, 1.0]]), pools, lend=False)
    assert served.tolist() == [[5.0, 1.0]]


@pytest.mark.parametrize("capacity", [0.0, 2.5, 7.0, 12.0, 40.0])
def test_more_capacity_never_serves_a_tenant_less(capacity):
    # monotone in capacity: what makes "full speed less actual" a loss, never a gain
    pools = Pools(deployment=[0, 0, 0], holds=[0, -1, -1], priority=[0, 2, 1], shared=[1])
    demand = np.array([[5.0, 6.0, 7.0]])
    low = allocate(demand, np.array([[capacity / 3, capacity]]), pools, lend=True)
    high = allocate(demand, np.array([[capacity / 3 + 1, capacity + 1]]), pools, lend=True)
    assert (high >= low).all()
