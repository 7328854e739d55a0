"""The agenda: pending times by key, fired in time order, the earliest first.

Equal times fire in the order they were scheduled; a key rescheduled keeps
only its last time; an earlier time than the one armed wakes the agenda
then. A fresh agenda keeps its first batch as sorted arrays instead of heap
entries (`twin/agenda.py`): an agenda fed the same keys one by one must fire
exactly as it does, through reschedules, cancels and earlier times.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from twin.agenda import Agenda


def fired_by(
    feed, until: float = 100.0, churn: int | None = None, times: np.ndarray | None = None
) -> list[tuple[float, int]]:
    """(time, key) of every firing of an agenda of a key per time fed by `feed(agenda,
    keys, times)` (by default 50 keys, at times with some ties); with `churn` (a seed),
    each firing reschedules, cancels or pulls forward a few keys drawn from that seed."""
    if times is None:
        times = np.round(np.random.default_rng(7).exponential(30.0, 50), 1)  # some ties
    n = len(times)
    env = simpy.Environment(initial_time=0.0)
    fired: list[tuple[float, int]] = []
    rng = np.random.default_rng(churn)

    def handler(key: int) -> None:
        fired.append((env.now, key))
        if churn is not None:
            agenda.schedule(key, env.now + float(rng.exponential(10.0)))
            other = int(rng.integers(n))
            roll = rng.random()
            if roll < 0.2:
                agenda.cancel(other)
            elif roll < 0.5:  # earlier than anything armed: the agenda is re-armed
                agenda.schedule(other, env.now + float(rng.random()) * 0.01)
            else:
                agenda.schedule(other, env.now + float(rng.exponential(20.0)))

    agenda = Agenda(env, handler)
    feed(agenda, np.arange(n), times)
    env.run(until=until)
    return fired


def batch(agenda: Agenda, keys: np.ndarray, times: np.ndarray) -> None:
    agenda.schedule_many(keys, times)


def one_by_one(agenda: Agenda, keys: np.ndarray, times: np.ndarray) -> None:
    for key, t in zip(keys.tolist(), times.tolist(), strict=True):
        agenda.schedule(key, t)


def test_keys_fire_in_time_order_and_equal_times_in_the_order_scheduled():
    fired = fired_by(one_by_one, until=1e9)
    times = np.round(np.random.default_rng(7).exponential(30.0, 50), 1)
    expected = sorted(zip(times.tolist(), range(50), strict=True))
    assert fired == expected
    assert len({t for t, _ in fired}) < 50  # ties were there to order


@pytest.mark.parametrize("churn", [None, 1, 2, 3])
def test_a_first_batch_fires_as_the_same_times_scheduled_one_by_one(churn):
    by_batch = fired_by(batch, churn=churn)
    assert by_batch == fired_by(one_by_one, churn=churn)
    assert len(by_batch) > (40 if churn is None else 100)


@pytest.mark.parametrize("churn", [None, 4])
def test_a_batch_sorted_a_chunk_at_a_time_fires_as_if_sorted_whole(churn):
    # 3,000 keys at 40 distinct times: every chunk ends amid a tie, and the batch is
    # read through all its chunks
    times = np.random.default_rng(5).integers(0, 40, 3_000).astype(float)
    by_batch = fired_by(batch, until=1e9 if churn is None else 50.0, churn=churn, times=times)
    assert by_batch == fired_by(one_by_one, until=1e9 if churn is None else 50.0,
                                churn=churn, times=times)
    if churn is None:
        assert by_batch == sorted(zip(times.tolist(), range(3_000), strict=True))


def test_an_earlier_time_fires_before_the_armed_one_and_a_cancelled_key_never():
    env = simpy.Environment(initial_time=0.0)
    fired: list[tuple[float, int]] = []
    agenda = Agenda(env, lambda key: fired.append((env.now, key)))
    agenda.schedule_many(range(3), [10.0, 20.0, 30.0])

    def meddle():  # type: ignore[no-untyped-def]
        yield env.timeout(5.0)
        agenda.schedule(2, 7.0)  # earlier than the armed 10
        agenda.cancel(1)
        agenda.schedule(0, 12.0)  # a key keeps only its last time

    env.process(meddle())
    env.run(until=100.0)
    assert fired == [(7.0, 2), (12.0, 0)]


def test_a_batch_with_a_key_twice_keeps_its_later_time():
    env = simpy.Environment(initial_time=0.0)
    fired: list[tuple[float, int]] = []
    agenda = Agenda(env, lambda key: fired.append((env.now, key)))
    agenda.schedule_many([4, 5, 4], [1.0, 2.0, 3.0])
    env.run(until=10.0)
    assert fired == [(2.0, 5), (3.0, 4)]
