"""Continuous batching, request by request: the kernel of request-level serving.

`RequestServer` draws each request of each flow (a tenant's Poisson arrivals
at a rate that changes over time, prompt and output lengths from its laws)
and follows it through admission, a queue, a prefill and a decode on one
replica; `requests.RequestServing` wires it to a run (docs/serving.md,
*Request-level serving*). The model of a deployment and its replicas:

- **Admission.** With `admission` set, each pool of replicas admits work
  at most at `admission` x its capacity now, as the fluid allocation does
  (`allocation`): work in replica-seconds at full speed (a request's
  prefill plus output / full-batch tokens per second), capacity the sum of
  the pool's replicas' speeds; the pools are each holder's reserved
  replicas and each deployment's shared ones. A bucket of work per pool,
  refilled at that rate, pays for each request, into debt if need be (a
  long request is never refused for its length). A holder's request pays
  from its own pool's bucket while it is above 0, else from the shared one.
  The shared bucket is as deep as `burst_s` seconds of its refill
  (ASSUMPTION: 5 s) per priority level of the deployment's tenants, and a
  request of the k-th highest level (k = 0, 1, ...) is admitted only while
  the bucket holds more than k such depths: under overload the bucket sits
  at the lowest admitted level's threshold and higher levels pass, so in
  the mean the shared pool serves by strict priority, and tenants of one
  level in proportion to their work asked (each sees the same bucket), as
  the fluid rule. With `lend`, what a holder's full bucket would gain
  spills into its deployment's shared bucket. A request not admitted is
  turned away (overload).
- **Queue.** Each flow has a FIFO queue. A *ready* replica (up, not
  prefilling, fewer than `batch` sequences decoding) takes a request: an
  arriving one goes to the ready replica with the fewest sequences decoding
  among its tenant's reserved replicas,
  then the deployment's shared ones, then (`lend`) other tenants' reserved
  ones; a replica with room, done with a prefill or a sequence, takes the
  oldest waiting request of the highest priority it serves (a reserved
  replica: its holder's first, others' only with `lend`). The queue is
  central: with `batch = 1` a deployment is an M/G/c queue, and Erlang C
  holds.
- **Prefill.** One prompt at a time, taking `prefill_s(prompt) / phi`
  alone on the replica: its decoding pauses meanwhile (an engine without
  chunked prefill; the fluid model charges prefill the same way).
- **Decode.** With `n` sequences decoding, one step takes
  `step_s[n] / phi` and gives every sequence `tokens_per_step[n]` tokens:
  each makes `phi * tokens_per_step[n] / step_s[n]` tokens per second, as a
  rate (a last step is not rounded up to a whole one), so a request's end
  is exact however the batch changes. Its first token comes with its first
  step (`twin.compute`'s TTFT is prefill + one step): TTFT = wait + prefill
  + the time to make `tokens_per_step` tokens; TPOT = (end - first token) /
  (output - 1), the serving benchmarks' definition.
- **Failure.** A replica that goes down hands its requests back to the
  front of their queues, as a router's retry would; they start again from
  their prefill. The tokens they made are *wasted* (not served), charged to
  the cause the caller gives; their arrival time is kept, so the outage
  shows in their TTFT.

How it stays fast (the target is 100,000 requests per wall second on one
core; docs/performance.md): a replica keeps one *level*, the tokens each of
its decoding sequences has made since it started, growing at the current
per-sequence rate; a sequence joins with its end mark, level + output, in a
heap, so the next end is one division away and a change of batch, speed or
prefill costs O(log batch), whatever the batch. The level's breakpoints are
kept (a trace per replica), so first tokens, at level + tokens_per_step, are
found after the run by one search each rather than an event each. Requests
are entries of flat arrays (8 bytes a field). Pending times (each replica's
next end, each prefill's end, each flow's next arrival) are on one `Agenda`
whose process fires, in one burst, every time due before the next event of
any other mechanism (`_Burst`): nothing else can happen in between, so a
request costs no SimPy event (a SimPy process per request measured ~2-3x
slower on the same kernel; notes in docs/serving.md).
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

from twin.agenda import NO_TIME, Agenda
from twin.compute import CS3, GpuNode, Hardware, ModelSpec, Speculative, evaluate
from twin.rng import Streams
from twin.workloads.serving.core import SECONDS_PER_HOUR as HOUR_S

__all__ = ["BatchSpeed", "Flow", "RequestServer"]

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
           speculative: Speculative | None, systems: int | None,
           hardware: Hardware | GpuNode = CS3) -> BatchSpeed:
        """A replica of `model` as `twin.compute.evaluate` sees it, at every batch size up
        to `batch` (the arguments are evaluate's; `systems` as the deployment gives it)."""
        sizes = np.arange(1, batch + 1)
        perf = evaluate(model, bits=bits, kv_bits=kv_bits, batch=sizes, context=context,
                        prompt=1, speculative=speculative, systems=systems, hardware=hardware)
        # every batch size on the systems the full batch needs: a replica does not shrink
        held = int(perf.systems[-1])

        def prefill_s(prompt: np.ndarray) -> np.ndarray:
            prompt = np.maximum(prompt, 1.0)
            p = evaluate(model, bits=bits, kv_bits=kv_bits, batch=batch, context=context,
                         prompt=prompt, speculative=speculative, systems=held,
                         hardware=hardware)
            return np.asarray(prompt / p.prefill_tps, float)

        if systems is None:
            perf = evaluate(model, bits=bits, kv_bits=kv_bits, batch=sizes, context=context,
                            prompt=1, speculative=speculative, systems=held, hardware=hardware)
        return cls(batch, tuple(perf.step_s.tolist()), tuple(perf.tokens_per_step.tolist()),
                   prefill_s)

    def rates_per_h(self) -> list[float]:
        """Tokens per hour of one sequence with n decoding, index n (0: none)."""
        return [0.0] + [k / s * HOUR_S for k, s in zip(self.tokens_per_step, self.step_s,
                                                       strict=True)]


@dataclass(frozen=True)
class Flow:
    """One tenant's requests to one deployment (lengths in tokens)."""

    tenant: str
    deployment: int
    priority: int  # higher is served first
    prompt: Lengths
    output: Lengths  # at least 1 token each
    reserved: tuple[int, ...] = ()  # replicas it holds


class _Burst(Agenda):
    """An `Agenda` that fires, without yielding, every time due before the next
    event of the simulation: between its own times nothing else runs, so a
    request costs no SimPy event. The handler reads the time it fires at from
    `now` (the SimPy clock stays at the start of the burst) and must not create
    SimPy events (the next one is looked up once per burst). Its times are all
    scheduled one by one: no batch, only the heap."""

    now = 0.0

    def _fire(self, event: simpy.Event) -> None:
        if event is not self._timer:
            return  # a timeout an earlier time replaced
        self._wake_at = -math.inf
        env, heap, stamp, handler = self.env, self._heap, self._stamp, self._handler
        pop = heapq.heappop
        start, limit = env.now, env.peek()
        while heap:
            t, seq, key = heap[0]
            if stamp.get(key) != seq:
                pop(heap)
                continue
            if t > start and t >= limit:
                break
            pop(heap)
            stamp[key] = NO_TIME
            self.now = t if t > start else start
            handler(key)
        self._arm()



class RequestServer:
    """Requests of every flow on the replicas of every deployment (see the module).

    Replica `r` belongs to deployment `deployment_of[r]`; the caller tells it of
    changes with `set_rate` and `set_speed` and reads the per-request arrays and
    `first_tokens()` after the run. Times are hours (the run's clock).
    """

    def __init__(
        self,
        env: simpy.Environment,
        speeds: Sequence[BatchSpeed],
        deployment_of: Sequence[int],
        flows: Sequence[Flow],
        streams: Streams,
        *,
        admission: float | None = None,
        burst_s: float = 5.0,
        lend: bool = False,
    ) -> None:
        self.env = env
        self.flows = list(flows)
        self.speeds = list(speeds)
        nrep = self._nrep = len(deployment_of)
        self._agenda = _Burst(env, self._fire)
        self._batch = [s.batch for s in speeds]
        self._rates = [s.rates_per_h() for s in speeds]
        self._first_at = [(0.0, *s.tokens_per_step) for s in speeds]
        self._dep = [int(d) for d in deployment_of]
        self._phi = [1.0] * nrep
        self._groups(lend)
        self._admission(admission, burst_s, lend)
        # per replica
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
        self._queues: list[deque[int]] = [deque() for _ in self.flows]
        self._arrival_rate = [0.0] * len(self.flows)  # per hour
        self._next_arrival = [math.inf] * len(self.flows)
        self._unit_left = [math.nan] * len(self.flows)  # of a unit gap while the rate is 0
        self._gaps: list[list[float]] = [[] for _ in self.flows]
        self._draws: list[list[tuple[float, float]]] = [[] for _ in self.flows]  # prefill, out
        self._rng = [
            tuple(streams[f"serving.requests.{f.tenant}.{what}"]
                  for what in ("arrivals", "prompt", "output"))
            for f in self.flows
        ]
        self.rejected: list[list[int]] = [[] for _ in self.flows]  # turned away, by flow
        self.retried = [0] * len(self.flows)  # restarts after a replica failure
        self.wasted: list[dict[str, float]] = [{} for _ in self.flows]  # tokens, by cause
        # per request: times in hours, lengths in tokens
        self.flow = array("q")
        self.arrived = array("d")
        self.prefill_h = array("d")  # at full speed
        self.output = array("d")
        self.started = array("d")  # its (last) prefill start
        self.finished = array("d")
        self.replica = array("q")  # where it (last) decoded
        self.first_level = array("d")  # of that replica, at its first token

    def _groups(self, lend: bool) -> None:
        """Who serves whom: each tenant's reserved replicas form a group, the rest of
        each deployment its shared group; an arrival tries `_tries[f]` in order, a
        replica with room takes from the tiers of `_tiers[r]` in order."""
        nrep, ndep = self._nrep, len(self.speeds)
        holder = [-1] * nrep
        for f, flow in enumerate(self.flows):
            for r in flow.reserved:
                holder[r] = f
        # group d < ndep: deployment d's shared replicas; ndep + f: those flow f holds
        group_of = [d if holder[r] < 0 else ndep + holder[r] for r, d in enumerate(self._dep)]
        self._members: list[list[int]] = [[] for _ in range(ndep + len(self.flows))]
        self._place = []
        for r, g in enumerate(group_of):
            self._place.append(len(self._members[g]))
            self._members[g].append(r)
        self._group = group_of
        # each member's key, its sequences decoding or _BUSY, and a heap of (key, place)
        # holding every ready member's key (and stale ones, dropped when on top)
        self._ready = [[0] * len(m) for m in self._members]
        self._ready_heap = [[(0, p) for p in range(len(m))] for m in self._members]
        tiers_of_dep = []
        for d in range(ndep):
            mine = [f for f, flow in enumerate(self.flows) if flow.deployment == d]
            levels = sorted({self.flows[f].priority for f in mine}, reverse=True)
            tiers_of_dep.append([[f for f in mine if self.flows[f].priority == level]
                                 for level in levels])
        self._tiers: list[list[list[int]]] = []  # of each replica
        for r, d in enumerate(self._dep):
            held = [[holder[r]]] if holder[r] >= 0 else []
            self._tiers.append(held + (tiers_of_dep[d] if holder[r] < 0 or lend else []))
        self._tries: list[list[int]] = []  # groups, of each flow
        for f, flow in enumerate(self.flows):
            d = flow.deployment
            others = [ndep + g for g, other in enumerate(self.flows)
                      if lend and g != f and other.deployment == d and other.reserved]
            own = [ndep + f] if flow.reserved else []
            self._tries.append([g for g in [*own, d, *others] if self._members[g]])

    def _admission(self, admission: float | None, burst_s: float, lend: bool) -> None:
        """A bucket of work (replica-hours at full speed) per group of replicas,
        refilled at admission x the sum of its members' speeds now, and each flow's
        threshold in its shared bucket (see the module); None: admit everything."""
        ndep, groups = len(self.speeds), len(self._members)
        self._admit = admission
        # replica-hours at full speed per output token, decoding with the batch full
        self._decode_work = [1.0 / (s.batch * s.rates_per_h()[-1]) for s in self.speeds]
        self._fill = [0.0] * groups  # replica-hours per hour
        self._bucket = [0.0] * groups
        self._bucket_at = [0.0] * groups
        self._depth = [0.0] * groups
        # a holder's group spills into its deployment's shared group (with lend), -1: none
        self._spill = [-1] * groups
        self._lenders: list[list[int]] = [[] for _ in range(groups)]
        self._own = [ndep + f if flow.reserved else -1 for f, flow in enumerate(self.flows)]
        self._floor = [0.0] * len(self.flows)  # level of the shared bucket it needs
        if admission is None:
            return
        levels = [sorted({f.priority for f in self.flows if f.deployment == d}, reverse=True)
                  for d in range(ndep)]
        for g, members in enumerate(self._members):
            self._fill[g] = admission * len(members)
            tiers = len(levels[g]) if g < ndep else 1
            self._bucket[g] = self._depth[g] = self._fill[g] * burst_s / HOUR_S * tiers
        for f, flow in enumerate(self.flows):
            d = flow.deployment
            self._floor[f] = (levels[d].index(flow.priority) * self._depth[d]
                              / len(levels[d]))
            if lend and self._own[f] >= 0:
                self._spill[self._own[f]] = d
                self._lenders[d].append(self._own[f])

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

    def set_speed(self, replica: int, phi: float, cause: str = "") -> None:
        """Speed factor of `replica` from now on: its slowest system's; 0 while down
        (the tokens its requests made are wasted, charged to `cause`)."""
        old = self._phi[replica]
        if phi == old:
            return
        now = self.env.now
        if self._admit is not None:
            g = self._group[replica]
            self._bucket_level(g, now)
            self._fill[g] += self._admit * (phi - old)
        self._phi[replica] = phi
        if phi == 0.0:
            self._evict(replica, now, cause)
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
        if self._admit is not None:
            d = self.flows[f].deployment
            g = self._own[f]
            if g < 0 or self._bucket_level(g, now) <= 0.0:
                g = d
                if self._bucket_level(d, now) <= self._floor[f]:
                    self.rejected[f].append(i)
                    return
            # its work, into debt if need be: a long request is let in
            self._bucket[g] -= prefill_h + output * self._decode_work[d]
        for g in self._tries[f]:
            keys, heap = self._ready[g], self._ready_heap[g]
            while heap and keys[heap[0][1]] != heap[0][0]:
                heapq.heappop(heap)
            if heap:
                self._start(self._members[g][heap[0][1]], i, now)
                return
        self._queues[f].append(i)

    def _bucket_level(self, g: int, now: float) -> float:
        """The level of group `g`'s bucket now (a shared one after its lenders' spill)."""
        for lender in self._lenders[g]:
            self._bucket_level(lender, now)
        level = self._bucket[g] + self._fill[g] * (now - self._bucket_at[g])
        self._bucket_at[g] = now
        if level > self._depth[g]:
            if self._spill[g] >= 0:
                self._bucket[self._spill[g]] += level - self._depth[g]
            level = self._depth[g]
        self._bucket[g] = level
        return level

    def _start(self, r: int, i: int, now: float) -> None:
        """`r` starts the prefill of request `i`: its decoding pauses meanwhile."""
        if self._rate[r]:
            self._move_level(r, now)
            self._set_rate(r, now, 0.0)
        self._prefilling[r] = i
        self.started[i] = now
        self.replica[i] = r
        self._prefill_end[r] = t = now + self.prefill_h[i] / self._phi[r]
        self._ready[self._group[r]][self._place[r]] = _BUSY  # its heap entry is stale
        self._agenda.schedule(r, t)

    def _prefilled(self, r: int, now: float) -> None:
        """The prompt of `r`'s prefill is in: the request joins the decoding batch."""
        i = self._prefilling[r]
        self._prefilling[r] = -1
        self._since[r] = now  # the level stood still during the prefill
        level, output = self._level[r], self.output[i]
        n = self._active[r] = self._active[r] + 1
        first = self._first_at[self._dep[r]][n]
        self.first_level[i] = level + (first if first < output else output)
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
    def _move_level(self, r: int, now: float) -> None:
        self._level[r] += self._rate[r] * (now - self._since[r])
        self._since[r] = now

    def _set_rate(self, r: int, now: float, rate: float) -> None:
        """The level of `r` (moved to now) grows at a new `rate` from now: a breakpoint
        of its trace."""
        self._rate[r] = rate
        self._trace_t[r].append(now)
        self._trace_level[r].append(self._level[r])
        self._trace_rate[r].append(rate)

    def _next(self, r: int, now: float) -> None:
        """After a change on `r` (up, not prefilling): prefill the oldest request of
        the highest tier it serves if it has room, else decode."""
        if self._active[r] < self._batch[self._dep[r]]:
            queues = self._queues
            for tier in self._tiers[r]:
                best = -1
                for f in tier:
                    q = queues[f]
                    if q and (best < 0 or q[0] < queues[best][0]):
                        best = f
                if best >= 0:
                    self._start(r, queues[best].popleft(), now)
                    return
        self._plan(r, now)

    def _plan(self, r: int, now: float) -> None:
        """Decode on `r` from now (not prefilling): its rate, readiness, next end."""
        level = self._level[r] = self._level[r] + self._rate[r] * (now - self._since[r])
        self._since[r] = now
        n, d, phi = self._active[r], self._dep[r], self._phi[r]
        rate = phi * self._rates[d][n]
        if rate != self._rate[r]:
            self._set_rate(r, now, rate)
        g, place = self._group[r], self._place[r]
        key = n if n < self._batch[d] and phi > 0.0 else _BUSY
        if key != self._ready[g][place]:
            self._ready[g][place] = key
            if key < _BUSY:
                heap = self._ready_heap[g]
                heapq.heappush(heap, (key, place))
                if len(heap) > 4 * len(self._ready[g]) + 16:  # mostly stale: rebuild
                    heap[:] = [(k, p) for p, k in enumerate(self._ready[g]) if k < _BUSY]
                    heapq.heapify(heap)
        if n:
            self._agenda.schedule(r, now + (self._ends[r][0][0] - level) / rate)
        else:
            self._agenda.cancel(r)

    def _evict(self, r: int, now: float, cause: str) -> None:
        """`r` went down: its requests go back to the front of their queues (and on to
        any ready replica that serves them), the tokens they made wasted."""
        self._move_level(r, now)
        level = self._level[r]
        back = []
        for end, i in self._ends[r]:
            back.append(i)
            wasted = self.wasted[self.flow[i]]
            wasted[cause] = wasted.get(cause, 0.0) + self.output[i] - (end - level)
        if self._prefilling[r] >= 0:
            back.append(self._prefilling[r])
            self._prefilling[r] = -1
        for i in sorted(back, reverse=True):  # the earliest arrival ends up first
            f = self.flow[i]
            self.retried[f] += 1
            self.started[i] = self.first_level[i] = math.nan
            self._queues[f].appendleft(i)
        self._ends[r] = []
        self._active[r] = 0
        self._plan(r, now)  # rate 0, not ready
        for other in range(self._nrep):
            if (self._dep[other] == self._dep[r] and self._phi[other] > 0.0
                    and self._prefilling[other] < 0):
                self._next(other, now)

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
        joined = np.flatnonzero(~np.isnan(target))
        by_replica = joined[np.argsort(replica[joined], kind="stable")]
        bounds = np.searchsorted(replica[by_replica], np.arange(self._nrep + 1))
        for r in range(self._nrep):
            mine = by_replica[bounds[r]:bounds[r + 1]]
            if not mine.size:
                continue
            t = np.frombuffer(self._trace_t[r])
            level = np.frombuffer(self._trace_level[r])
            rate = np.frombuffer(self._trace_rate[r])
            k = np.searchsorted(level, target[mine], side="left") - 1  # the segment it is in
            with np.errstate(divide="ignore", invalid="ignore"):
                at = t[k] + (target[mine] - level[k]) / rate[k]
            first[mine] = np.where((rate[k] > 0) & (at <= now), at, math.nan)
        return first

    def made(self) -> np.ndarray:
        """Output tokens each request has made by now (its wasted tokens excluded)."""
        now = self.env.now
        output, finished = np.frombuffer(self.output), np.frombuffer(self.finished)
        made = np.where(np.isnan(finished), 0.0, output)
        for r, ends in enumerate(self._ends):
            level = self._level[r] + self._rate[r] * (now - self._since[r])
            for end, i in ends:
                made[i] = output[i] - (end - level)
        return made
