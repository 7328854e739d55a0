"""The continuous-batching kernel of request-level serving
(twin/workloads/serving/batching.py) on its own: hand-checked timelines, failures
and speed, admission, reservations, arrivals that follow their rate,
priorities, and Erlang C for one request at a time."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.rng import Streams
from twin.workloads.serving.batching import BatchSpeed, Flow, RequestServer

H = 3600.0  # seconds per hour: the clock is in hours
TWO = BatchSpeed(batch=2, step_s=(0.01, 0.02), tokens_per_step=(1.0, 1.0),
                 prefill_s=lambda prompt: prompt / 1000.0)
ONE = BatchSpeed(batch=1, step_s=(0.01,), tokens_per_step=(1.0,), prefill_s=lambda p: 0 * p)


def never(rng: np.random.Generator, n: int) -> np.ndarray:
    raise AssertionError("no Poisson arrivals in this test")


def flow(tenant: str = "a", priority: int = 0, output: Callable[..., np.ndarray] = never,
         prompt: Callable[..., np.ndarray] = never, reserved: tuple[int, ...] = ()) -> Flow:
    return Flow(tenant, 0, priority, prompt, output, reserved)


def server(speed: BatchSpeed = TWO, replicas: int = 1, flows: tuple[Flow, ...] = (),
           seed: int = 1, **options: object) -> tuple[simpy.Environment, RequestServer]:
    env = simpy.Environment()
    srv = RequestServer(env, [speed], [0] * replicas, list(flows or [flow()]), Streams(seed),
                        **options)  # type: ignore[arg-type]
    return env, srv


def seconds(values: object) -> list[float]:
    return [v * H for v in values]  # type: ignore[attr-defined]


def at(env: simpy.Environment, t_s: float, action: Callable[[], object]) -> None:
    """Call `action` at `t_s` seconds."""
    def run():  # type: ignore[no-untyped-def]
        yield env.timeout(t_s / H)
        action()
    env.process(run())


def test_two_requests_share_a_batch_of_two_as_worked_by_hand() -> None:
    """A (prompt 100, output 11) at 0 and B (prompt 50, output 6) at 0.05 s on one
    replica of batch 2; prefill 1,000 tokens/s, alone on the replica; a step takes
    0.01 s alone, 0.02 s for two. 0-0.1 A prefills (B waits from 0.05); 0.1-0.15 B
    prefills (A's decode paused); from 0.15 both decode at 50 tokens/s: both first
    tokens at 0.17, B's sixth at 0.27; A, alone, makes its last 5 at 100/s: 0.32."""
    env, srv = server()
    at(env, 0.0, lambda: srv.submit(0, 100, 11))
    at(env, 0.05, lambda: srv.submit(0, 50, 6))
    env.run(until=1.0 / H)
    assert seconds(srv.started) == pytest.approx([0.0, 0.1], abs=1e-12)
    assert seconds(srv.first_tokens()) == pytest.approx([0.17, 0.17], abs=1e-12)
    assert seconds(srv.finished) == pytest.approx([0.32, 0.27], abs=1e-12)
    assert srv.made().tolist() == [11.0, 6.0]


def test_the_horizon_counts_what_a_request_in_flight_made() -> None:
    """The same two, stopped at 0.2 s: both decoded from 0.15 at 50 tokens/s, 2.5
    tokens each (fluid tokens: the rate, not whole steps); both first tokens in."""
    env, srv = server()
    at(env, 0.0, lambda: srv.submit(0, 100, 11))
    at(env, 0.05, lambda: srv.submit(0, 50, 6))
    env.run(until=0.2 / H)
    assert srv.made().tolist() == pytest.approx([2.5, 2.5])
    assert seconds(srv.first_tokens()) == pytest.approx([0.17, 0.17])
    assert np.isnan(srv.finished).all()


def test_half_speed_doubles_every_time() -> None:
    env, srv = server()
    srv.set_speed(0, 0.5)
    at(env, 0.0, lambda: srv.submit(0, 100, 11))
    at(env, 0.1, lambda: srv.submit(0, 50, 6))
    env.run(until=1.0 / H)
    assert seconds(srv.first_tokens()) == pytest.approx([0.34, 0.34], abs=1e-12)
    assert seconds(srv.finished) == pytest.approx([0.64, 0.54], abs=1e-12)


def test_a_slowdown_mid_decode_stretches_what_is_left() -> None:
    """One request (prompt 0, 101 tokens) alone: 100 steps after its first of
    0.01 s; at 0.51 s (51 tokens made) the replica drops to half speed: the last
    50 take 1 s."""
    env, srv = server()
    at(env, 0.0, lambda: srv.submit(0, 0, 101))
    at(env, 0.51, lambda: srv.set_speed(0, 0.5))
    env.run(until=2.0 / H)
    assert seconds(srv.finished) == pytest.approx([1.51], abs=1e-12)


def test_a_replica_down_sends_its_requests_back_and_wastes_their_tokens() -> None:
    """Two replicas of batch 2. A and B (prompt 0, 11 tokens) go to different replicas
    (each to the one with fewer sequences); replica 0 goes down at 0.05 s, when A has
    made 5 tokens: A goes back to the queue and on to replica 1, which has room
    (B alone), at 0.05 s; its 5 tokens are wasted, charged to the cause given."""
    env, srv = server(replicas=2)
    at(env, 0.0, lambda: srv.submit(0, 0, 11))
    at(env, 0.0, lambda: srv.submit(0, 0, 11))
    at(env, 0.05, lambda: srv.set_speed(0, 0.0, "psu"))
    env.run(until=1.0 / H)
    assert (srv.retried, srv.wasted) == ([1], [{"psu": 5.0}])
    # B: 5 tokens alone by 0.05 s, then with A at 0.02 s a step: 6 more by 0.17 s.
    # A restarts at 0.05 s: its first at 0.07 s, 11 tokens by 0.17 + 5 x 0.01 s alone.
    assert seconds(srv.started) == pytest.approx([0.05, 0.0], abs=1e-12)
    assert seconds(srv.first_tokens()) == pytest.approx([0.07, 0.01], abs=1e-12)
    assert seconds(srv.finished) == pytest.approx([0.22, 0.17], abs=1e-12)
    assert srv.made().tolist() == [11.0, 11.0]


def test_requests_wait_while_every_replica_is_down_and_resume_when_one_is_back() -> None:
    env, srv = server()
    srv.set_speed(0, 0.0)
    at(env, 0.0, lambda: srv.submit(0, 100, 3))
    at(env, 1.0, lambda: srv.set_speed(0, 1.0))
    env.run(until=2.0 / H)
    assert seconds(srv.started) == pytest.approx([1.0])
    assert seconds(srv.finished) == pytest.approx([1.13])


def test_higher_priority_leaves_the_queue_first() -> None:
    """Batch 1, one replica busy with a long request; a low then a high priority
    request queue behind it: the high one starts first."""
    env, srv = server(ONE, flows=(flow("low", 0), flow("high", 5)))
    at(env, 0.0, lambda: srv.submit(0, 0, 100))
    at(env, 0.1, lambda: srv.submit(0, 0, 10))
    at(env, 0.2, lambda: srv.submit(1, 0, 10))
    env.run(until=5.0 / H)
    assert seconds(srv.started) == pytest.approx([0.0, 1.1, 1.0])


@pytest.mark.parametrize("lend", [False, True])
def test_reserved_replicas_serve_their_holder_first_and_others_only_when_lent(lend: bool) -> None:
    """Two replicas of batch 1; "vip" holds replica 0. A vip request goes to replica 0;
    a second vip request overflows to the shared replica 1; then an "other" request
    at 0.5 s, with replica 0 free again, may take it only when `lend` is set."""
    vip, other = flow("vip", reserved=(0,)), flow("other")
    env, srv = server(ONE, replicas=2, flows=(vip, other), lend=lend)
    at(env, 0.0, lambda: srv.submit(0, 0, 10))  # replica 0 until 0.1
    at(env, 0.0, lambda: srv.submit(0, 0, 100))  # replica 1 until 1.0
    at(env, 0.5, lambda: srv.submit(1, 0, 10))
    env.run(until=3.0 / H)
    assert srv.replica.tolist() == [0, 1, 0 if lend else 1]
    assert seconds(srv.started) == pytest.approx([0.0, 0.0, 0.5 if lend else 1.0])


def test_admission_turns_away_what_exceeds_its_share_of_capacity() -> None:
    """One replica of batch 2 makes 100 tokens/s with its batch full (2 x 50): a
    request of a 1-token prompt (1 ms of prefill) and 10 output tokens is 0.101 s of
    its work. Admission 0.5 admits 0.5 s of work a second, plus a burst of 10 s of
    that. 20 requests a second (4x the admitted work) for 100 s: 50 + 5 s of work
    admitted, to within one request; the rest is turned away."""
    tens = flow(output=lambda rng, n: np.full(n, 10.0), prompt=lambda rng, n: np.ones(n))
    env, srv = server(flows=(tens,), admission=0.5, burst_s=10.0)
    srv.set_rate(0, 20 * H)
    env.run(until=100.0 / H)
    admitted = len(srv.arrived) - len(srv.rejected[0])
    assert admitted * 0.101 == pytest.approx(55.0, abs=0.101)
    assert len(srv.rejected[0]) > 0.6 * len(srv.arrived)


def test_speculation_gives_more_tokens_per_step() -> None:
    """2.5 tokens per step of 0.04 s: the first step gives the first token (at
    0.04 s) and 26 tokens take 26 / 2.5 steps."""
    spec = BatchSpeed(batch=1, step_s=(0.04,), tokens_per_step=(2.5,), prefill_s=lambda p: 0 * p)
    env, srv = server(spec)
    at(env, 0.0, lambda: srv.submit(0, 0, 26))
    env.run(until=1.0 / H)
    assert seconds(srv.first_tokens()) == pytest.approx([0.04])
    assert seconds(srv.finished) == pytest.approx([26 / 2.5 * 0.04])


def test_arrivals_follow_their_rate_and_stop_at_zero() -> None:
    """1,000 requests/h for 2 h, then 3,000/h for 1 h, then none for 1 h: the counts
    are Poisson (2,000 and 3,000), within 4 standard deviations."""
    lengths = flow(output=lambda rng, n: np.ones(n), prompt=lambda rng, n: np.ones(n))
    fast = BatchSpeed(batch=64, step_s=(1e-6,) * 64, tokens_per_step=(1.0,) * 64,
                      prefill_s=lambda p: 1e-6 * p)
    env, srv = server(fast, replicas=4, flows=(lengths,))
    srv.set_rate(0, 1000.0)
    at(env, 2 * H, lambda: srv.set_rate(0, 3000.0))
    at(env, 3 * H, lambda: srv.set_rate(0, 0.0))
    env.run(until=4.0)
    counts = np.histogram(np.asarray(srv.arrived), bins=[0, 2, 3, 4])[0]
    assert abs(counts[0] - 2000) <= 4 * math.sqrt(2000)
    assert abs(counts[1] - 3000) <= 4 * math.sqrt(3000)
    assert counts[2] == 0


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    def run(seed: int) -> np.ndarray:
        lengths = flow(output=lambda rng, n: 1 + rng.integers(0, 50, n),
                       prompt=lambda rng, n: rng.integers(1, 500, n))
        env, srv = server(replicas=3, flows=(lengths,), seed=seed)
        srv.set_rate(0, 100_000.0)
        env.run(until=0.01)
        return np.array(srv.finished)
    assert np.array_equal(run(3), run(3), equal_nan=True)
    assert not np.array_equal(run(3), run(4), equal_nan=True)


def erlang_c(c: int, a: float) -> float:
    """P(wait > 0) in an M/M/c queue with offered load a = lambda / mu < c."""
    terms = [a**k / math.factorial(k) for k in range(c)]
    last = a**c / math.factorial(c) * c / (c - a)
    return last / (sum(terms) + last)


def batch_means(values: np.ndarray, batches: int) -> tuple[float, float]:
    """Mean and its standard error from `batches` consecutive batch means."""
    means = values[: len(values) // batches * batches].reshape(batches, -1).mean(axis=1)
    return float(means.mean()), float(means.std(ddof=1) / math.sqrt(batches))


def test_one_request_at_a_time_waits_as_erlang_c_says() -> None:
    """c = 4 replicas of batch 1, Poisson arrivals at load 0.7, exponential output
    lengths (mean 100 tokens at 0.01 s a token: service 1 s mean, exponential),
    no prefill: an M/M/4 queue. Mean wait and P(wait > 0) over 200,000 requests
    (the first 2 % dropped as warm-up), their standard errors from 20 batch means;
    each must lie within 4 standard errors of Erlang C (0.357 s and 0.429), and the
    standard errors must be below 3.5 % of the values (seeds 1-6: at most 2.5 %),
    so a model off by 14 % cannot pass."""
    c, rho, mean_s = 4, 0.7, 1.0
    exponential = flow(output=lambda rng, n: rng.exponential(100.0, n),
                       prompt=lambda rng, n: np.ones(n))
    env, srv = server(ONE, replicas=c, flows=(exponential,))
    lam = rho * c / mean_s  # per second
    srv.set_rate(0, lam * H)
    requests = 200_000
    env.run(until=requests / lam / H)
    arrived, started = np.asarray(srv.arrived), np.asarray(srv.started)
    waits = (started - arrived)[requests // 50:] * H
    waits = waits[~np.isnan(waits)]
    p_wait = erlang_c(c, lam * mean_s)
    mean_wait = p_wait * mean_s / (c - lam * mean_s)
    for observed, expected in ((waits, mean_wait), (waits > 0, p_wait)):
        mean, se = batch_means(observed.astype(float), 20)
        assert se < 0.035 * expected
        assert abs(mean - expected) <= 4 * se, (mean, expected, se)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.floats(0.0, 2.0), st.sampled_from(["submit", "speed"]), st.integers(0, 1),
    st.integers(0, 300), st.integers(1, 40), st.sampled_from([0.0, 0.5, 1.0]),
), max_size=40), st.booleans(), st.floats(0.2, 3.0))
def test_no_request_is_lost_whatever_happens(
    events: list[tuple[float, str, int, int, int, float]], lend: bool, horizon_s: float,
) -> None:
    """Requests of two tenants (one holding replica 0) and replicas slowed, downed
    and restored at random: at the horizon every request is in exactly one place
    (turned away, waiting, prefilling, decoding, finished), none made more tokens
    than it asked or fewer once finished, and its times are in order."""
    env, srv = server(replicas=2, flows=(flow("vip", 1, reserved=(0,)), flow("other", 0)),
                      admission=0.9, lend=lend)
    for t, kind, who, prompt, output, phi in events:
        if kind == "submit":
            at(env, t, lambda who=who, p=prompt, o=output: srv.submit(who, p, o))
        else:
            at(env, t, lambda who=who, phi=phi: srv.set_speed(who, phi, "psu"))
    env.run(until=horizon_s / H)
    n = len(srv.arrived)
    turned = [i for rejected in srv.rejected for i in rejected]
    waiting = [i for q in srv._queues for i in q]
    prefilling = [i for i in srv._prefilling if i >= 0]
    decoding = [i for ends in srv._ends for _, i in ends]
    finished = [i for i in range(n) if not math.isnan(srv.finished[i])]
    places = turned + waiting + prefilling + decoding + finished
    assert sorted(places) == list(range(n))
    made, output = srv.made(), np.array(srv.output)
    assert (made <= output + 1e-9).all() and (made >= -1e-9).all()
    assert (made[finished] == output[finished]).all()
    first, arrived = srv.first_tokens(), np.array(srv.arrived)
    started, ended = np.array(srv.started), np.array(srv.finished)
    for i in range(n):
        assert not started[i] < arrived[i]
        assert not first[i] < started[i]
        assert not ended[i] < first[i] - 1e-15


def test_a_deployment_s_speed_is_twin_compute_s_at_every_batch_size() -> None:
    from twin.compute import catalogue, evaluate

    model = catalogue()["llama-3.1-8b"]
    speed = BatchSpeed.of(model, bits=8, kv_bits=None, batch=16, context=4096,
                          speculative=None, systems=None)
    full = evaluate(model, bits=8, batch=16, context=4096, prompt=1)
    for n in (1, 7, 16):
        at_n = evaluate(model, bits=8, batch=n, context=4096, prompt=1, systems=full.systems)
        assert speed.step_s[n - 1] == pytest.approx(float(at_n.step_s))
        assert speed.tokens_per_step[n - 1] == pytest.approx(float(at_n.tokens_per_step))
    prompts = np.array([1.0, 300.0, 5000.0])
    at_prompts = evaluate(model, bits=8, batch=16, context=4096, prompt=prompts)
    assert speed.prefill_s(prompts) == pytest.approx(prompts / at_prompts.prefill_tps)
