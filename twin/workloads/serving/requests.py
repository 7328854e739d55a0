"""Request-level serving: every request a record, every replica's continuous batch exact.

The `--fidelity request` alternative to the fluid allocator, for short
horizons: it draws each request and follows it through a queue, a prefill
and a decode on one replica, and reports latency percentiles (TTFT, TPOT)
next to the tokens served. It sits where the fluid allocator does: the
serving wiring tells it each flow's arrival rate (`set_rate`) and each
replica's speed (`set_speed`: the slowest system's `phi`, 0 while the
replica is down) as they change, and reads `summary` at the end.

The model of a replica (docs/serving.md, *Request-level serving*):

- **Queue.** A deployment has one FIFO queue per priority (highest first); a
  request that finds no replica ready waits there. A replica is *ready*
  when it is up, not prefilling and has fewer than `batch` sequences
  decoding; an arriving request goes to the ready replica with the fewest
  sequences decoding (lowest index on a tie), so the queue is central: with
  `batch = 1` the deployment is an M/G/c queue, and Erlang C holds.
- **Prefill.** One prompt at a time, taking `prefill_s(prompt) / phi`, and
  pausing the replica's decoding meanwhile (a prefill pass runs alone, as in
  an engine without chunked prefill).
- **Decode.** With `n` sequences decoding, one step takes
  `step_s[n] / phi` and gives every sequence `tokens_per_step[n]` tokens:
  each sequence makes `phi * tokens_per_step[n] / step_s[n]` tokens per
  second, as a rate (a last step is not rounded up to a whole one), so a
  request's end is exact however the batch changes. Its first token comes
  with its first step (`twin.compute`'s TTFT is prefill + one step):
  TTFT = wait + prefill + the time to make `tokens_per_step` tokens;
  TPOT = (end - first token) / (output - 1), the serving benchmarks'
  definition.
- **Failure.** A replica that goes down hands its requests (prefilling or
  decoding) back to the front of their queue, as a router's retry would;
  they start again from their prefill. Their tokens made so far are
  *wasted*, not served; their arrival time is kept, so the outage shows in
  their TTFT.

How it stays fast (the performance target is 100,000 requests per wall
second on one core; docs/performance.md): a replica keeps one *level*, the
tokens each of its decoding sequences has made since it started, growing at
the current per-sequence rate; a sequence joins with its end mark, level +
output, in a heap, so the next end is one division away and a change of
batch size, speed or prefill costs O(log batch), whatever the batch. The
level's breakpoints are kept (a trace per replica), so first tokens, at
level + tokens_per_step, are found after the run by one search each rather
than an event each. Requests are entries of flat arrays (8 bytes a field).
Pending times (each replica's next prefill end or completion, each flow's
next arrival) are on one `Agenda` whose process fires, in one burst, every
time due before the next event of any other mechanism (`_Burst`): nothing
else can happen in between, so the request model costs no SimPy event per
request.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import simpy

from twin.agenda import Agenda
from twin.compute import ModelSpec, Speculative, evaluate
from twin.rng import Streams

__all__ = ["BatchSpeed", "Flow", "FlowSummary", "RequestServer", "PERCENTILES"]

HOUR_S = 3600.0
PERCENTILES = (50, 90, 99)
_CHUNK = 4096  # draws per refill of a flow's buffers
_BUSY = 1 << 62  # the key of a replica that cannot take a request now
_TIE = 1e-12  # relative: ends whose levels differ by less are one event

Lengths = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class BatchSpeed:
    """How fast one replica of a deployment serves at full speed (`phi` = 1).

    `step_s[n - 1]` is one decode step with `n` sequences active and
    `tokens_per_step[n - 1]` what it gives each of them, for n = 1..`batch`.
    """

    batch: int
    step_s: tuple[float, ...]
    tokens_per_step: tuple[float, ...]
    prefill_s: Callable[[np.ndarray], np.ndarray]  # seconds to prefill each prompt

    def __post_init__(self) -> None:
        if not len(self.step_s) == len(self.tokens_per_step) == self.batch >= 1:
            raise ValueError("step_s and tokens_per_step need one entry per batch size 1..batch")
        if min(self.step_s) <= 0 or min(self.tokens_per_step) <= 0:
            raise ValueError("step times and tokens per step must be positive")

    @classmethod
    def of(cls, model: ModelSpec, *, bits: int, kv_bits: int | None, batch: int, context: int,
           speculative: Speculative | None, systems: int | None) -> BatchSpeed:
        """A replica of `model` as `twin.compute.evaluate` sees it, at every batch size up
        to `batch` (the arguments are evaluate's; `systems` as the deployment gives it)."""
        sizes = np.arange(1, batch + 1)
        perf = evaluate(model, bits=bits, kv_bits=kv_bits, batch=sizes, context=context,
                        prompt=1, speculative=speculative, systems=systems)
        # every batch size on the systems the full batch needs: a replica does not shrink
        held = int(perf.systems[-1])

        def prefill_s(prompt: np.ndarray) -> np.ndarray:
            prompt = np.maximum(prompt, 1.0)
            p = evaluate(model, bits=bits, kv_bits=kv_bits, batch=np.full_like(prompt, batch),
                         context=context, prompt=prompt, speculative=speculative, systems=held)
            return np.asarray(prompt / p.prefill_tps, float)

        if systems is None:
            perf = evaluate(model, bits=bits, kv_bits=kv_bits, batch=sizes, context=context,
                            prompt=1, speculative=speculative, systems=held)
        return cls(batch, tuple(perf.step_s.tolist()), tuple(perf.tokens_per_step.tolist()),
                   prefill_s)

    def rates_per_h(self) -> list[float]:
        """Tokens per hour of one sequence with n decoding, index n (0: none)."""
        return [0.0] + [k / s * HOUR_S for k, s in zip(self.tokens_per_step, self.step_s,
                                                       strict=True)]


@dataclass(frozen=True)
class Flow:
    """One tenant's requests to one deployment: lengths in tokens, SLOs in seconds."""

    tenant: str
    deployment: int
    priority: int
    prompt: Lengths
    output: Lengths  # at least 1 token each
    ttft_slo_s: float
    tpot_slo_s: float


@dataclass(frozen=True)
class FlowSummary:
    """What one tenant's requests did in a run (times in seconds, tokens in tokens)."""

    tenant: str
    arrived: int
    completed: int
    retried: int  # restarts after a replica failure
    tokens_served: float  # output tokens made before the horizon, wasted ones excluded
    tokens_wasted: float  # made by requests whose replica then failed
    tokens_good: float  # of requests completed within both SLOs
    slo_attainment: float  # share of completed requests within both SLOs
    wait_mean_s: float  # arrival to (last) prefill start, completed and started requests
    ttft_s: tuple[float, ...]  # at PERCENTILES, of requests with a first token
    tpot_s: tuple[float, ...]  # at PERCENTILES, of completed requests of 2+ tokens


class _Burst(Agenda):
    """An `Agenda` that fires, without yielding, every time due before the next
    event of the simulation: between its own times nothing else runs, so a
    request costs no SimPy event. The handler reads the time it fires at from
    `now` (the SimPy clock stays at the start of the burst) and must not create
    SimPy events (the next one is looked up once per burst)."""

    now = 0.0

    def _run(self):  # type: ignore[no-untyped-def]
        env, heap, stamp, handler = self.env, self._heap, self._stamp, self._handler
        pop = heapq.heappop
        while True:
            while heap and stamp.get(heap[0][2]) != heap[0][1]:
                pop(heap)
            t = heap[0][0] if heap else math.inf
            self._wake_at = t
            try:
                yield env.timeout(max(t - env.now, 0.0)) if t < math.inf else env.event()
            except simpy.Interrupt:
                continue
            self._wake_at = -math.inf
            start, limit = env.now, env.peek()
            while heap:
                t, seq, key = heap[0]
                if stamp.get(key) != seq:
                    pop(heap)
                    continue
                if t > start and t >= limit:
                    break
                pop(heap)
                del stamp[key]
                self.now = t if t > start else start
                handler(key)


class RequestServer:
    """Requests of every flow on the replicas of every deployment (see the module)."""

    def __init__(
        self,
        env: simpy.Environment,
        speeds: Sequence[BatchSpeed],
        deployment_of: Sequence[int],
        flows: Sequence[Flow],
        streams: Streams,
    ) -> None:
        self.env = env
        self.flows = list(flows)
        self.speeds = list(speeds)
        nrep = self._nrep = len(deployment_of)
        self._agenda = _Burst(env, self._fire)
        # per deployment
        self._batch = [s.batch for s in speeds]
        self._rates = [s.rates_per_h() for s in speeds]
        self._first_at = [(0.0, *s.tokens_per_step) for s in speeds]
        ranks = sorted({f.priority for f in self.flows}, reverse=True)
        self._queues: list[list[deque[int]]] = [[deque() for _ in ranks] for _ in speeds]
        self._members: list[list[int]] = [[] for _ in speeds]
        # per replica: its deployment, its place among the members, its state
        self._dep = [int(d) for d in deployment_of]
        self._place = []
        for r, d in enumerate(self._dep):
            self._place.append(len(self._members[d]))
            self._members[d].append(r)
        self._ready = [[0] * len(m) for m in self._members]  # decoding, or _BUSY
        self._phi = [1.0] * nrep
        self._level = [0.0] * nrep  # tokens each decoding sequence made, as of `_since`
        self._since = [0.0] * nrep
        self._rate = [0.0] * nrep  # of the level, tokens per hour
        self._active = [0] * nrep  # sequences decoding
        self._ends: list[list[tuple[float, int]]] = [[] for _ in range(nrep)]  # (level, i)
        self._prefilling = [-1] * nrep  # the request in prefill, -1 for none
        self._prefill_end = [0.0] * nrep
        # the level's breakpoints: from trace_t[k] on it grows at trace_rate[k]
        self._trace_t = [array("d", [0.0]) for _ in range(nrep)]
        self._trace_level = [array("d", [0.0]) for _ in range(nrep)]
        self._trace_rate = [array("d", [0.0]) for _ in range(nrep)]
        # per flow
        self._queue_of = [ranks.index(f.priority) for f in self.flows]
        self._arrival_rate = [0.0] * len(self.flows)  # per hour
        self._next_arrival = [math.inf] * len(self.flows)
        self._unit_left = [math.nan] * len(self.flows)  # of a unit gap while the rate is 0
        self._gaps: list[list[float]] = [[] for _ in self.flows]
        self._draws: list[list[tuple[float, float]]] = [[] for _ in self.flows]  # prefill, output
        self._rng = [
            tuple(streams[f"serving.requests.{f.tenant}.{f.deployment}.{what}"]
                  for what in ("arrivals", "prompt", "output"))
            for f in self.flows
        ]
        self.wasted = [0.0] * len(self.flows)  # tokens
        self.retried = [0] * len(self.flows)  # requests restarted
        # per request: times in hours, lengths in tokens
        self.flow = array("q")
        self.arrived = array("d")
        self.prefill_h = array("d")  # at full speed
        self.output = array("d")
        self.started = array("d")  # its (last) prefill start
        self.finished = array("d")
        self.replica = array("q")  # where it (last) decoded
        self.first_level = array("d")  # of that replica, at its first token

    # -- inputs from the serving wiring ------------------------------------------------
    def set_rate(self, flow: int, per_hour: float) -> None:
        """Requests per hour of `flow` from now on (a Poisson process between changes:
        the gap to the pending arrival is stretched, which keeps it Poisson)."""
        old = self._arrival_rate[flow]
        if per_hour == old:
            return
        now = self.env.now
        pending = self._next_arrival[flow]
        if pending < math.inf:
            unit = (pending - now) * old
        else:
            unit = self._unit_left[flow]
            if math.isnan(unit):
                unit = self._gap(flow)
        self._arrival_rate[flow] = per_hour
        key = self._nrep + flow
        if per_hour > 0.0:
            self._next_arrival[flow] = t = now + unit / per_hour
            self._agenda.schedule(key, t)
        else:
            self._unit_left[flow] = unit
            self._next_arrival[flow] = math.inf
            self._agenda.cancel(key)

    def set_speed(self, replica: int, phi: float) -> None:
        """Speed factor of `replica` from now on: its slowest system's; 0 while down."""
        old = self._phi[replica]
        if phi == old:
            return
        now = self.env.now
        self._phi[replica] = phi
        if phi == 0.0:
            self._evict(replica, now)
        elif old == 0.0:
            self._next(replica, now)
        elif self._prefilling[replica] >= 0:
            end = now + (self._prefill_end[replica] - now) * old / phi
            self._prefill_end[replica] = end
            self._agenda.schedule(replica, end)
        else:
            self._plan(replica, now)

    def submit(self, flow: int, prompt: float, output: float) -> None:
        """One request of `flow` now, besides its Poisson arrivals (a replayed trace)."""
        speed = self.speeds[self.flows[flow].deployment]
        prefill_s = float(speed.prefill_s(np.array([prompt], float))[0])
        self._submit(flow, prefill_s / HOUR_S, output, self.env.now)

    # -- the events ------------------------------------------------------------------
    def _fire(self, key: int) -> None:
        now = self._agenda.now
        if key >= self._nrep:
            self._arrive(key - self._nrep, now)
        elif self._prefilling[key] >= 0:
            self._prefilled(key, now)
        else:
            self._ended(key, now)

    def _arrive(self, f: int, now: float) -> None:
        draws = self._draws[f]
        if not draws:
            self._refill(f)
        self._submit(f, *draws.pop(), now)
        self._next_arrival[f] = t = now + self._gap(f) / self._arrival_rate[f]
        self._agenda.schedule(self._nrep + f, t)

    def _submit(self, f: int, prefill_h: float, output: float, now: float) -> None:
        i = len(self.arrived)
        self.flow.append(f)
        self.arrived.append(now)
        self.prefill_h.append(prefill_h)
        self.output.append(output)
        self.started.append(math.nan)
        self.finished.append(math.nan)
        self.replica.append(-1)
        self.first_level.append(math.nan)
        d = self.flows[f].deployment
        ready = self._ready[d]
        least = min(ready) if ready else _BUSY
        if least < _BUSY:
            self._start_prefill(self._members[d][ready.index(least)], i, now)
        else:
            self._queues[d][self._queue_of[f]].append(i)

    def _start_prefill(self, r: int, i: int, now: float) -> None:
        self._set_rate(r, now, 0.0)
        self._prefilling[r] = i
        self.started[i] = now
        self._prefill_end[r] = t = now + self.prefill_h[i] / self._phi[r]
        self._ready[self._dep[r]][self._place[r]] = _BUSY
        self._agenda.schedule(r, t)

    def _prefilled(self, r: int, now: float) -> None:
        """The prompt of `r`'s prefill is in: the request joins the decoding batch."""
        i = self._prefilling[r]
        self._prefilling[r] = -1
        level, output = self._level[r], self.output[i]
        n = self._active[r] = self._active[r] + 1
        first = self._first_at[self._dep[r]][n]
        self.first_level[i] = level + (first if first < output else output)
        self.replica[i] = r
        heapq.heappush(self._ends[r], (level + output, i))
        self._next(r, now)

    def _ended(self, r: int, now: float) -> None:
        """The level of `r` reached its lowest end mark (and any tied with it)."""
        ends = self._ends[r]
        level, i = heapq.heappop(ends)
        self.finished[i] = now
        ended = 1
        tie = level + _TIE * (1.0 + level)
        while ends and ends[0][0] <= tie:
            self.finished[heapq.heappop(ends)[1]] = now
            ended += 1
        self._level[r] = level
        self._since[r] = now
        self._active[r] -= ended
        self._next(r, now)

    # -- a replica's state -------------------------------------------------------------
    def _set_rate(self, r: int, now: float, rate: float) -> None:
        """The level of `r` grows at `rate` from now: a breakpoint of its trace."""
        old = self._rate[r]
        level = self._level[r] + old * (now - self._since[r])
        self._level[r] = level
        self._since[r] = now
        if rate == old:
            return
        self._rate[r] = rate
        self._trace_t[r].append(now)
        self._trace_level[r].append(level)
        self._trace_rate[r].append(rate)

    def _next(self, r: int, now: float) -> None:
        """After a change on `r`: prefill the next request waiting if `r` has room,
        else decode at the rate of its batch."""
        d = self._dep[r]
        if self._active[r] < self._batch[d]:
            for queue in self._queues[d]:
                if queue:
                    self._start_prefill(r, queue.popleft(), now)
                    return
        self._plan(r, now)

    def _plan(self, r: int, now: float) -> None:
        """Decode on `r` from now (not prefilling): its rate, readiness, next end."""
        n = self._active[r]
        d = self._dep[r]
        phi = self._phi[r]
        rate = phi * self._rates[d][n]
        self._set_rate(r, now, rate)
        self._ready[d][self._place[r]] = n if n < self._batch[d] and phi > 0.0 else _BUSY
        if n:
            self._agenda.schedule(r, now + (self._ends[r][0][0] - self._level[r]) / rate)
        else:
            self._agenda.cancel(r)

    def _evict(self, r: int, now: float) -> None:
        """`r` went down: its requests go back to the front of their queues, the
        tokens they made wasted."""
        self._set_rate(r, now, 0.0)
        d = self._dep[r]
        level = self._level[r]
        back = []
        for end, i in self._ends[r]:
            back.append(i)
            self.wasted[self.flow[i]] += self.output[i] - (end - level)
        if self._prefilling[r] >= 0:
            back.append(self._prefilling[r])
            self._prefilling[r] = -1
        for i in sorted(back, reverse=True):  # the earliest arrival ends up first
            self.retried[self.flow[i]] += 1
            self.started[i] = self.first_level[i] = math.nan
            self._queues[d][self._queue_of[self.flow[i]]].appendleft(i)
        self._ends[r] = []
        self._active[r] = 0
        self._ready[d][self._place[r]] = _BUSY
        self._agenda.cancel(r)
        self._dispatch(d, now)

    def _dispatch(self, d: int, now: float) -> None:
        """Start waiting requests of `d` on its ready replicas, while both last."""
        ready, members = self._ready[d], self._members[d]
        for queue in self._queues[d]:
            while queue:
                least = min(ready)
                if least == _BUSY:
                    return
                self._start_prefill(members[ready.index(least)], queue.popleft(), now)

    # -- draws ----------------------------------------------------------------------
    def _gap(self, f: int) -> float:
        gaps = self._gaps[f]
        if not gaps:
            gaps.extend(self._rng[f][0].exponential(1.0, _CHUNK).tolist())
        return gaps.pop()

    def _refill(self, f: int) -> None:
        """The next `_CHUNK` requests' prefill time and output, drawn at once."""
        flow, (_, prompt_rng, output_rng) = self.flows[f], self._rng[f]
        prompt = np.asarray(flow.prompt(prompt_rng, _CHUNK), float)
        prefill_h = self.speeds[flow.deployment].prefill_s(prompt) / HOUR_S
        output = np.asarray(flow.output(output_rng, _CHUNK), float)
        self._draws[f].extend(zip(prefill_h.tolist(), output.tolist(), strict=True))

    # -- results --------------------------------------------------------------------
    def first_tokens(self) -> np.ndarray:
        """Time of each request's first token (hours; NaN: none yet, as of now): where
        its replica's level, as traced, reached its first-token level."""
        now = self.env.now
        target = np.frombuffer(self.first_level)
        replica = np.frombuffer(self.replica, dtype=np.int64)
        first = np.full(len(target), math.nan)
        for r in np.unique(replica[~np.isnan(target)]):
            mine = np.flatnonzero((replica == r) & ~np.isnan(target))
            t = np.frombuffer(self._trace_t[r])
            level = np.frombuffer(self._trace_level[r])
            rate = np.frombuffer(self._trace_rate[r])
            k = np.searchsorted(level, target[mine], side="left") - 1  # the segment it is in
            with np.errstate(divide="ignore", invalid="ignore"):
                at = t[k] + (target[mine] - level[k]) / rate[k]
            first[mine] = np.where((rate[k] > 0) & (at <= now), at, math.nan)
        return first

    def summary(self) -> list[FlowSummary]:
        """Per tenant (in the order of first appearance among the flows), at the
        current time: the horizon once the run is over."""
        now = self.env.now
        flow = np.frombuffer(self.flow, dtype=np.int64)
        arrived, output = np.frombuffer(self.arrived), np.frombuffer(self.output)
        started, finished = np.frombuffer(self.started), np.frombuffer(self.finished)
        first = self.first_tokens()
        made = np.where(np.isnan(finished), 0.0, output)
        for r, ends in enumerate(self._ends):
            level = self._level[r] + self._rate[r] * (now - self._since[r])
            for end, i in ends:
                made[i] = output[i] - (end - level)
        ttft = (first - arrived) * HOUR_S
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = (finished - first) * HOUR_S / (output - 1.0)
        done = ~np.isnan(finished)
        ttft_slo = np.array([f.ttft_slo_s for f in self.flows])[flow]
        tpot_slo = np.array([f.tpot_slo_s for f in self.flows])[flow]
        good = done & (ttft <= ttft_slo) & ((output <= 1.0) | (tpot <= tpot_slo))
        out = []
        for tenant in dict.fromkeys(f.tenant for f in self.flows):
            ids = [k for k, f in enumerate(self.flows) if f.tenant == tenant]
            mine = np.isin(flow, ids)
            completed = int((mine & done).sum())
            out.append(FlowSummary(
                tenant=tenant,
                arrived=int(mine.sum()),
                completed=completed,
                retried=sum(self.retried[k] for k in ids),
                tokens_served=float(made[mine].sum()),
                tokens_wasted=float(sum(self.wasted[k] for k in ids)),
                tokens_good=float(output[mine & good].sum()),
                slo_attainment=float((mine & good).sum()) / completed if completed else math.nan,
                wait_mean_s=_mean((started - arrived)[mine & ~np.isnan(started)] * HOUR_S),
                ttft_s=_percentiles(ttft[mine & ~np.isnan(first)]),
                tpot_s=_percentiles(tpot[mine & done & (output > 1.0)]),
            ))
        return out


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _percentiles(values: np.ndarray) -> tuple[float, ...]:
    if not values.size:
        return (math.nan,) * len(PERCENTILES)
    return tuple(float(v) for v in np.percentile(values, PERCENTILES))
