"""The throughput core: decode and prefill times of one replica, vectorized.

A replica of S systems holds its model's layers in a pipeline across its
wafers, then the output projection onto the vocabulary as a stage of its
own. The model spreads over a share of the replica's cores (`core_share`,
1 by default: all of them), each layer, the projection and the input
embedding (a lookup, no time) taking cores in proportion to their weights;
the draft model of speculative decoding, if any, takes a part in proportion
to its weights. One pass of a micro-batch of m tokens through a layer of n
cores takes

    span_s x sqrt(n x active / all parameters)
      + max(bytes read / (n cores' SRAM bandwidth x efficiency),
            FLOPs / (n cores' peak arithmetic x efficiency),
            activations moved / (n cores' fabric bandwidth))

The first term is the latency of the layer's broadcasts and reductions
across the patch of the two-dimensional mesh that a token's weights occupy
(all the layer's cores for a dense model, the active experts' share for a
mixture of experts): it grows with the patch's side. The second is the
roofline of the work: the bytes read are the layer's weights (for a mixture
of experts, the dense part and the experts the m tokens are routed to) and
the KV cache of the micro-batch's sequences. The output projection is one
more stage of the same form. A pass through the model adds (S - 1)
wafer-to-wafer hops of hop_s + activations / I/O bandwidth.

A decode step advances every sequence of the batch by one token (one
verification with speculation). The scheduler cuts the B sequences into M
micro-batches of B / M sequences, M in 1..min(B, L) (L layers): every
micro-batch crosses every stage (each layer, the output projection, each
wafer-to-wafer link), a stage takes one at a time, and a micro-batch's next
token needs its last, so the step lasts

    max(one pass of a micro-batch, M x the slowest stage's time for one)

and the scheduler picks the M that makes it shortest. At batch 1 that is one
pass; M x a link's time is the time it takes to carry the activations of the
whole batch, whatever M. Prefill pushes the prompt through the same pipeline in chunks:
one chunk's pass, then one more layer (or link) time per further chunk.
`docs/compute.md` derives this and calibrates span_s, hop_s and efficiency.

All inputs broadcast (numpy); `evaluate` returns a `Perf` of arrays.

What every system shares lives here: the work of a layer and of the output
projection (`layer_work`, `head_work`: bytes read, FLOPs, activations), the
pipeline schedule of a decode step (`pipelined_step`) and of a chunked
prefill (`chunked_prefill`), speculative decoding and the memory fit. A
`Replica` turns that work into times on one kind of system: the wafers
here, a GPU node in `twin.compute.gpu` (`evaluate` with a `GpuNode`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from twin.compute.catalogue import ModelSpec
from twin.compute.hardware import CS3, GpuNode, Hardware
from twin.compute.memory import FitError, replica_bytes, systems_needed

__all__ = ["Speculative", "Perf", "evaluate", "at_speed", "expected_tokens", "DEFAULT_DRAFT_TOKENS",
           "DEFAULT_ACCEPTANCE", "Load", "Replica", "layer_work", "head_work", "pipelined_step",
           "chunked_prefill"]

ACTIVATION_BYTES = 2.0  # activations travel at 16 bit whatever the weights' precision
# defaults of speculative decoding (docs/compute.md): tokens drafted per verification and
# the chance each is accepted, for a draft a few percent of the target's size
DEFAULT_DRAFT_TOKENS = 4
DEFAULT_ACCEPTANCE = 0.8


@dataclass(frozen=True)
class Speculative:
    """Speculative decoding: `draft` proposes `tokens` tokens one at a time, the
    target model verifies them in one pass and keeps each with probability
    `acceptance` (independently, until the first rejection)."""

    draft: ModelSpec
    tokens: int
    acceptance: float

    def __post_init__(self) -> None:
        if isinstance(self.tokens, bool) or not isinstance(self.tokens, int) or self.tokens < 1:
            raise ValueError(f"speculative tokens: expected an integer >= 1, got {self.tokens!r}")
        if not 0.0 <= self.acceptance <= 1.0:
            raise ValueError(f"speculative acceptance: expected a probability in [0, 1], "
                             f"got {self.acceptance!r}")


class Perf(NamedTuple):
    """Performance of one replica; every field an ndarray broadcast over the inputs."""

    systems: np.ndarray  # systems (wafers) per replica
    sram_bytes: np.ndarray  # SRAM used per replica: weights + KV cache (+ draft)
    step_s: np.ndarray  # wall time of one decode step of the whole active batch
    tokens_per_step: np.ndarray  # expected output tokens per sequence per step
    user_tps: np.ndarray  # output tokens/s per sequence
    aggregate_tps: np.ndarray  # output tokens/s per replica
    prefill_tps: np.ndarray  # prompt tokens/s per replica
    ttft_s: np.ndarray  # time to first token of a `prompt`-token request at this batch
    micro_batches: np.ndarray  # micro-batches a decode step (verification) is cut into


def expected_tokens(tokens: int, acceptance: float) -> float:
    """Tokens one verification yields on average: the accepted prefix of the
    draft plus the target's own next token, (1 - a^(k+1)) / (1 - a)."""
    if acceptance >= 1.0:
        return float(tokens + 1)
    return (1.0 - acceptance ** (tokens + 1)) / (1.0 - acceptance)


@dataclass(frozen=True)
class Load:
    """What one replica is asked to do, as float arrays that broadcast together."""

    bits: np.ndarray
    kv_bits: np.ndarray
    batch: np.ndarray
    context: np.ndarray
    prompt: np.ndarray

    @classmethod
    def of(cls, bits: object, kv_bits: object, batch: object, context: object,
           prompt: object) -> Load:
        arrays = {name: np.asarray(value, dtype=float) for name, value in (
            ("bits", bits), ("kv_bits", bits if kv_bits is None else kv_bits),
            ("batch", batch), ("context", context), ("prompt", prompt))}
        for name, value in arrays.items():
            least = 0 if name == "context" else 1
            if not np.all(np.isfinite(value)) or np.any(value < least):
                raise ValueError(f"{name}: expected finite numbers >= {least}")
        return cls(**arrays)

    def with_axis(self) -> Load:
        """The same load with one more (last) axis of length one, for a choice's candidates."""
        return Load(**{name: value[..., None] for name, value in vars(self).items()})


Work = tuple[np.ndarray, np.ndarray, np.ndarray]  # bytes read, FLOPs, activation bytes moved


def layer_work(model: ModelSpec, load: Load, tokens: np.ndarray, seqs: np.ndarray,
               context: np.ndarray) -> Work:
    """What one layer (the model's average layer) does for a micro-batch of `tokens`
    tokens from `seqs` sequences at `context`: the bytes it reads (its weights, for a
    mixture of experts the dense part and the experts the tokens are routed to, and
    the sequences' KV cache), its FLOPs and the activations it takes in and gives out."""
    per_layer = 1.0 / model.layers
    if model.moe:
        expert = (model.body_params - model.body_active) / (model.experts - model.active_experts)
        dense = model.body_active - model.active_experts * expert
        touched = model.experts * (1.0 - (1.0 - model.active_experts / model.experts) ** tokens)
        read_params = dense + expert * touched
    else:
        read_params = np.full_like(tokens, model.body_params)
    kv_per_token = model.kv_values_per_token * per_layer * load.kv_bits / 8.0
    read = read_params * per_layer * load.bits / 8.0 + seqs * context * kv_per_token
    attention = 4.0 * model.heads * model.head_dim * context  # scores and weighted sum
    flops = tokens * (2.0 * model.body_active * per_layer + attention)
    moved = 2.0 * tokens * model.hidden * ACTIVATION_BYTES  # in and out of the layer
    return read, flops, moved


def head_work(model: ModelSpec, load: Load, tokens: np.ndarray) -> Work:
    """What the output projection onto the vocabulary does for `tokens` tokens."""
    read = model.embedding_params * load.bits / 8.0
    flops = 2.0 * tokens * model.embedding_params
    moved = tokens * (model.hidden + model.vocab) * ACTIVATION_BYTES
    return read, flops, moved


# The times of one micro-batch (or chunk) of `seqs` sequences (tokens): its pass through
# the whole pipeline and the slowest stage's time for it.
StageTimes = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def pipelined_step(batch: np.ndarray, stages: object, times: StageTimes
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A decode step of `batch` sequences through a pipeline of `stages` stages, and the
    number of micro-batches it is cut into.

    With M micro-batches of B / M sequences, the step lasts at least one pass of a
    micro-batch (its next token needs its last), and at least M times the slowest
    stage's time for one micro-batch (each stage handles one micro-batch at a time
    and every micro-batch crosses every one). The scheduler picks M in
    1..min(B, stages), the shortest step; `times` sees the candidates as one more
    (last) axis."""
    most: np.ndarray = np.asarray(stages, dtype=float)[..., None]
    micro = np.arange(1.0, min(float(np.max(most)), float(np.max(batch))) + 1.0)
    one_pass, slowest = times(batch[..., None] / micro)
    possible = (micro <= batch[..., None]) & (micro <= most)
    step = np.where(possible, np.maximum(one_pass, micro * slowest), np.inf)
    best = np.argmin(step, axis=-1)
    return np.take_along_axis(step, best[..., None], axis=-1)[..., 0], best + 1.0


def chunked_prefill(prompt: np.ndarray, stages: object, times: StageTimes) -> np.ndarray:
    """A prompt through a pipeline of `stages` stages in min(prompt, stages) chunks:
    one chunk's pass, then each further chunk one stage-time later (`times` of the
    chunk size)."""
    chunks = np.minimum(prompt, np.asarray(stages, dtype=float))
    one_pass, stage = times(prompt / chunks)
    return one_pass + (chunks - 1.0) * stage


class Replica(Protocol):
    """A replica's systems as the throughput core sees them: how long a decode step
    takes (with the micro-batches it is cut into) and a prefill."""

    def decode(self, model: ModelSpec, load: Load, per_seq: float
               ) -> tuple[np.ndarray, np.ndarray]:
        """Every sequence of the batch passes `per_seq` tokens through the model."""
        ...

    def prefill(self, model: ModelSpec, load: Load) -> np.ndarray:
        """The prompt through the model, up to its first token."""
        ...


def _stage(hw: Hardware, cores: np.ndarray, span_cores: np.ndarray, work: Work) -> np.ndarray:
    """One pipeline stage on `cores` cores: the latency of its broadcasts and reductions
    across the `span_cores` a token's weights occupy, plus the roofline of its work."""
    read, flops, moved = work
    share = cores / hw.cores
    memory = read / (share * hw.sram_bandwidth * hw.efficiency)
    compute = flops / (share * hw.peak_flops * hw.efficiency)
    fabric = moved / (share * hw.fabric_bandwidth)
    return hw.span_s * np.sqrt(span_cores) + np.maximum(np.maximum(memory, compute), fabric)


def _layer_time(model: ModelSpec, hw: Hardware, load: Load, cores: np.ndarray,
                tokens: np.ndarray, seqs: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Time of one layer for a micro-batch of `tokens` tokens from `seqs` sequences at
    `context`, on `cores` cores; a token of a mixture of experts reaches only its
    experts' share of the cores."""
    return _stage(hw, cores, cores * model.body_active / model.body_params,
                  layer_work(model, load, tokens, seqs, context))


def _head_time(model: ModelSpec, hw: Hardware, load: Load, cores: np.ndarray,
               tokens: np.ndarray) -> np.ndarray:
    """The output projection onto the vocabulary, a stage of its own, for `tokens` tokens."""
    return _stage(hw, cores, cores, head_work(model, load, tokens))


def _hops(model: ModelSpec, hw: Hardware, systems: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """The wafer-to-wafer hops of one pass of `tokens` tokens."""
    return (systems - 1) * (hw.hop_s + _link(model, hw, systems, tokens))


def _link(model: ModelSpec, hw: Hardware, systems: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """How long a wafer-to-wafer link is busy carrying `tokens` tokens' activations
    (no link on a single system)."""
    return np.where(systems > 1, tokens * model.hidden * ACTIVATION_BYTES / hw.io_bandwidth, 0.0)


def _split(model: ModelSpec, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cores of one layer and of the output projection, in proportion to their weights
    (an untied input embedding takes its share too, for a lookup that costs no time)."""
    return (cores * model.body_params / model.params / model.layers,
            cores * model.embedding_params / model.params)


@dataclass(frozen=True)
class _Wafers:
    """A replica on `systems` wafers whose model spreads over `cores` cores."""

    hw: Hardware
    cores: np.ndarray
    systems: np.ndarray

    def decode(self, model: ModelSpec, load: Load, per_seq: float
               ) -> tuple[np.ndarray, np.ndarray]:
        """The stages are the L layers, the output projection and the S - 1
        wafer-to-wafer links (`pipelined_step`, at most L micro-batches)."""
        hw, expand = self.hw, load.with_axis()
        cores, systems = self.cores[..., None], self.systems[..., None]
        layer_cores, head_cores = _split(model, cores)

        def times(seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            tokens = seqs * per_seq
            layer = _layer_time(model, hw, expand, layer_cores, tokens, seqs, expand.context)
            head = _head_time(model, hw, expand, head_cores, tokens)
            one_pass = model.layers * layer + head + _hops(model, hw, systems, tokens)
            return one_pass, np.maximum(np.maximum(layer, head), _link(model, hw, systems, tokens))

        return pipelined_step(load.batch, model.layers, times)

    def prefill(self, model: ModelSpec, load: Load) -> np.ndarray:
        """Chunks through the layers (`chunked_prefill`), paced by the slower of a layer
        and a link (each carries every chunk), each token of a chunk attending on
        average to half the prompt; the output projection for the prompt's last token
        gives the first token (the other tokens do not cross it)."""
        hw, systems = self.hw, self.systems
        layer_cores, head_cores = _split(model, self.cores)

        def times(size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            layer = _layer_time(model, hw, load, layer_cores, size, np.ones_like(size),
                                load.prompt / 2.0)
            head = _head_time(model, hw, load, head_cores, np.ones_like(size))
            one_pass = model.layers * layer + head + _hops(model, hw, systems, size)
            return one_pass, np.maximum(layer, _link(model, hw, systems, size))

        return chunked_prefill(load.prompt, model.layers, times)


def _systems(model: ModelSpec, hw: Hardware, used: np.ndarray, systems: object) -> np.ndarray:
    """The replica's systems: the fewest that hold `used` bytes, or those given if enough."""
    if systems is None:
        return systems_needed(used, hw)
    count = np.asarray(systems, dtype=np.int64)
    if np.any(count < 1):
        raise ValueError("systems: expected an integer >= 1")
    missing = used - count * hw.capacity
    if np.any(missing > 0):
        gap = float(np.max(missing))
        raise FitError(f"{model.name}: {int(np.max(count))} system(s) hold "
                       f"{hw.capacity * np.max(count) / 1e9:.1f} GB; the replica needs "
                       f"{gap / 1e9:.2f} GB more", gap)
    return count


def _wafer_replicas(model: ModelSpec, hw: Hardware, used: np.ndarray, systems: object,
                    core_share: float, draft: ModelSpec | None
                    ) -> tuple[np.ndarray, Replica, Replica | None]:
    """The systems of a wafer replica, its target model's cores and its draft's: the
    draft takes cores in proportion to its weights, on one wafer (no hops)."""
    if not 0.0 < core_share <= 1.0:
        raise ValueError(f"core_share: expected a share in (0, 1], got {core_share!r}")
    count = _systems(model, hw, used, systems)
    cores = count * float(hw.cores) * np.maximum(core_share, used / (count * hw.capacity))
    if draft is None:
        return count, _Wafers(hw, cores, count), None
    share = draft.params / (draft.params + model.params)
    return (count, _Wafers(hw, cores * (1.0 - share), count),
            _Wafers(hw, cores * share, np.ones_like(count)))


def evaluate(model: ModelSpec, *, bits: object, batch: object, context: object,
             prompt: object, kv_bits: object = None, speculative: Speculative | None = None,
             systems: object = None, hardware: Hardware | GpuNode = CS3,
             core_share: float = 1.0, gpus: int | None = None) -> Perf:
    """Performance of one replica of `model` at full speed (see the module docstring).

    bits, kv_bits (default: bits), batch (>= 1), context and prompt broadcast.
    systems=None uses the fewest systems that hold the replica; an explicit count
    too small for some input raises `FitError` with the largest shortfall in bytes.
    On wafers (`Hardware`), core_share is the share of the replica's cores its
    layers spread over (the rest stay idle): 1 spreads them over every core (the
    calibrated default), smaller packs them tighter, never tighter than their bytes
    need. On a GPU node (`GpuNode`, `twin.compute.gpu`) a replica takes whole nodes
    (`systems`), or `gpus` GPUs of one node or whole nodes' worth.
    """
    load = Load.of(bits, kv_bits, batch, context, prompt)
    draft = speculative.draft if speculative is not None else None
    if draft is not None and draft.vocab != model.vocab:
        raise ValueError(f"speculative draft {draft.name!r} has another vocabulary than "
                         f"{model.name!r}: it cannot propose tokens the target verifies")
    used = replica_bytes(model, load.bits, load.kv_bits, load.context, load.batch, draft)
    target: Replica
    drafter: Replica | None
    if isinstance(hardware, GpuNode):
        from twin.compute.gpu import node_replicas  # the GPU node builds on this module

        count, used, target, drafter = node_replicas(model, hardware, load, used, systems,
                                                     gpus, draft)
    else:
        if gpus is not None:
            raise ValueError("gpus: only a replica on GPU nodes has GPUs")
        count, target, drafter = _wafer_replicas(model, hardware, used, systems, core_share,
                                                 draft)
    if speculative is None or drafter is None:
        step, micro = target.decode(model, load, 1.0)
        tokens = 1.0
    else:
        drafting, _ = drafter.decode(speculative.draft, load, 1.0)
        verify, micro = target.decode(model, load, speculative.tokens + 1.0)
        step = speculative.tokens * drafting + verify
        tokens = expected_tokens(speculative.tokens, speculative.acceptance)
    prefill = target.prefill(model, load)
    user = tokens / step
    fields = (count, used, step, np.full_like(step, tokens), user, load.batch * user,
              load.prompt / prefill, prefill + step, micro)
    shape = np.broadcast_shapes(*(np.shape(x) for x in (*fields, load.kv_bits, load.context)))
    return Perf(*(np.broadcast_to(x, shape).copy() for x in fields))


def at_speed(perf: Perf, phi: object) -> Perf:
    """`perf` of a replica whose slowest system runs at speed factor `phi` in [0, 1]:
    times divided by phi, rates multiplied by it; phi = 0 (a system down) serves nothing."""
    phi_a = np.asarray(phi, dtype=float)
    if np.any((phi_a < 0) | (phi_a > 1)):
        raise ValueError("phi: expected speed factors in [0, 1]")
    with np.errstate(divide="ignore"):
        slow = 1.0 / phi_a
    return perf._replace(
        step_s=perf.step_s * slow,
        user_tps=perf.user_tps * phi_a,
        aggregate_tps=perf.aggregate_tps * phi_a,
        prefill_tps=perf.prefill_tps * phi_a,
        ttft_s=perf.ttft_s * slow,
    )
