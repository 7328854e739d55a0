"""The fluid allocation rule on hand-made cases (docs/serving.md "Allocation"):
reservation first, then priority strictly, ties in proportion to what is asked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@st.composite
def cases(draw):
    """A deployment or two, tenants with priorities, some holding a pool, and demands and
    capacities over a few intervals."""
    n_d = draw(st.integers(1, 2))
    n_t = draw(st.integers(1, 5))
    deployment = [draw(st.integers(0, n_d - 1)) for _ in range(n_t)]
    holds = [t if draw(st.booleans()) else -1 for t in range(n_t)]
    priority = [draw(st.integers(0, 2)) for _ in range(n_t)]
    pools = Pools(deployment, holds, priority, shared=[n_t + d for d in range(n_d)])
    amount = st.floats(0, 100, allow_nan=False)
    rows = draw(st.integers(1, 3))
    demand = np.array([[draw(amount) for _ in range(n_t)] for _ in range(rows)])
    capacity = np.array([[draw(amount) for _ in range(n_t + n_d)] for _ in range(rows)])
    return pools, demand, capacity, draw(st.booleans())


@given(cases())
@settings(max_examples=200, deadline=None)
def test_allocation_invariants(case):
    pools, demand, capacity, lend = case
    served = allocate(demand, capacity, pools, lend)
    tol = 1e-9 * (1 + demand.sum() + capacity.sum())
    assert (served >= -tol).all() and (served <= demand + tol).all()
    dep = np.array(pools.deployment)
    for d, shared in enumerate(pools.shared):
        mine = dep == d
        own = [pools.holds[t] for t in np.flatnonzero(mine) if pools.holds[t] >= 0]
        total = capacity[:, shared] + capacity[:, own].sum(axis=1)
        # never more than the deployment's pools
        assert (served[:, mine].sum(axis=1) <= total + tol).all()
        # no reservation and something unserved: the shared pool is used up
        if not own:
            short = (demand[:, mine] - served[:, mine]).sum(axis=1) > tol
            assert np.allclose(served[short][:, mine].sum(axis=1), capacity[short, shared])
        # without reservations a tenant short of its demand leaves nothing to lower ones
        if not own:
            for t in np.flatnonzero(mine):
                lower = mine & (np.array(pools.priority) < pools.priority[t])
                short = demand[:, t] - served[:, t] > tol
                assert (served[short][:, lower] <= tol).all()
