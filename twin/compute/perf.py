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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from twin.compute.catalogue import ModelSpec
from twin.compute.hardware import CS3, Hardware
from twin.compute.memory import FitError, replica_bytes, systems_needed

__all__ = ["Speculative", "Perf", "evaluate", "at_speed", "expected_tokens", "DEFAULT_DRAFT_TOKENS",
           "DEFAULT_ACCEPTANCE"]

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
class _Load:
    """What one replica is asked to do, as float arrays that broadcast together."""

    bits: np.ndarray
    kv_bits: np.ndarray
    batch: np.ndarray
    context: np.ndarray
    prompt: np.ndarray

    @classmethod
    def of(cls, bits: object, kv_bits: object, batch: object, context: object,
           prompt: object) -> _Load:
        arrays = {name: np.asarray(value, dtype=float) for name, value in (
            ("bits", bits), ("kv_bits", bits if kv_bits is None else kv_bits),
            ("batch", batch), ("context", context), ("prompt", prompt))}
        for name, value in arrays.items():
            least = 0 if name == "context" else 1
            if not np.all(np.isfinite(value)) or np.any(value < least):
                raise ValueError(f"{name}: expected finite numbers >= {least}")
        return cls(**arrays)

    def with_axis(self) -> _Load:
        """The same load with one more (last) axis of length one, for a choice's candidates."""
        return _Load(**{name: value[..., None] for name, value in vars(self).items()})


def _stage(hw: Hardware, cores: np.ndarray, span_cores: np.ndarray, read: np.ndarray,
           flops: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """One pipeline stage on `cores` cores: the latency of its broadcasts and reductions
    across the `span_cores` a token's weights occupy, plus the roofline of its work."""
    share = cores / hw.cores
    memory = read / (share * hw.sram_bandwidth * hw.efficiency)
    compute = flops / (share * hw.peak_flops * hw.efficiency)
    fabric = moved / (share * hw.fabric_bandwidth)
    return hw.span_s * np.sqrt(span_cores) + np.maximum(np.maximum(memory, compute), fabric)


def _layer_time(model: ModelSpec, hw: Hardware, load: _Load, cores: np.ndarray,
                tokens: np.ndarray, seqs: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Time of one layer (the model's average layer) for a micro-batch of `tokens`
    tokens from `seqs` sequences at `context`, on `cores` cores."""
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
    # a token of a mixture of experts reaches only its experts' share of the cores
    return _stage(hw, cores, cores * model.body_active / model.body_params, read, flops, moved)


def _head_time(model: ModelSpec, hw: Hardware, load: _Load, cores: np.ndarray,
               tokens: np.ndarray) -> np.ndarray:
    """The output projection onto the vocabulary, a stage of its own, for `tokens` tokens."""
    read = model.embedding_params * load.bits / 8.0
    flops = 2.0 * tokens * model.embedding_params
    moved = tokens * (model.hidden + model.vocab) * ACTIVATION_BYTES
    return _stage(hw, cores, cores, read, flops, moved)


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


def _decode_step(model: ModelSpec, hw: Hardware, load: _Load, cores: np.ndarray,
                 systems: np.ndarray, per_seq: float) -> tuple[np.ndarray, np.ndarray]:
    """Wall time for every sequence of the batch to pass `per_seq` tokens through the
    model once, and the number of micro-batches the step is cut into.

    With M micro-batches of B / M sequences, the step lasts at least one pass of a
    micro-batch (its next token needs its last), and at least M times the slowest
    stage's time for one micro-batch (a layer, the output projection or a
    wafer-to-wafer link: each handles one micro-batch at a time and every
    micro-batch crosses every one). The scheduler picks M in 1..min(B, L), the
    shortest step; the candidates are one more (last) array axis."""
    expand = load.with_axis()
    cores, systems = cores[..., None], systems[..., None]
    micro = np.arange(1.0, min(model.layers, int(np.max(load.batch))) + 1.0)
    seqs = expand.batch / micro
    tokens = seqs * per_seq
    layer_cores, head_cores = _split(model, cores)
    layer = _layer_time(model, hw, expand, layer_cores, tokens, seqs, expand.context)
    head = _head_time(model, hw, expand, head_cores, tokens)
    one_pass = model.layers * layer + head + _hops(model, hw, systems, tokens)
    slowest = np.maximum(np.maximum(layer, head), _link(model, hw, systems, tokens))
    step = np.where(micro <= expand.batch, np.maximum(one_pass, micro * slowest), np.inf)
    best = np.argmin(step, axis=-1)
    return np.take_along_axis(step, best[..., None], axis=-1)[..., 0], best + 1.0


def _prefill_time(model: ModelSpec, hw: Hardware, load: _Load, cores: np.ndarray,
                  systems: np.ndarray) -> np.ndarray:
    """The prompt through the pipeline in min(prompt, layers) chunks: one chunk's
    pass, then each further chunk one stage-time later (the slower of a layer and a
    wafer-to-wafer link: each carries every chunk), each token of a chunk attending
    on average to half the prompt; the output projection for the prompt's last
    token gives the first token (the other tokens do not cross it)."""
    chunks = np.minimum(load.prompt, model.layers)
    size = load.prompt / chunks
    layer_cores, head_cores = _split(model, cores)
    layer = _layer_time(model, hw, load, layer_cores, size, np.ones_like(size),
                        load.prompt / 2.0)
    head = _head_time(model, hw, load, head_cores, np.ones_like(size))
    one_pass = model.layers * layer + head + _hops(model, hw, systems, size)
    return one_pass + (chunks - 1.0) * np.maximum(layer, _link(model, hw, systems, size))


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


def evaluate(model: ModelSpec, *, bits: object, batch: object, context: object,
             prompt: object, kv_bits: object = None, speculative: Speculative | None = None,
             systems: object = None, hardware: Hardware = CS3,
             core_share: float = 1.0) -> Perf:
    """Performance of one replica of `model` at full speed (see the module docstring).

    bits, kv_bits (default: bits), batch (>= 1), context and prompt broadcast.
    systems=None uses the fewest systems that hold the replica; an explicit count
    too small for some input raises `FitError` with the largest shortfall in bytes.
    core_share is the share of the replica's cores its layers spread over (the
    rest stay idle): 1 spreads them over every core (the calibrated default),
    smaller packs them tighter, never tighter than their bytes need.
    """
    load = _Load.of(bits, kv_bits, batch, context, prompt)
    if not 0.0 < core_share <= 1.0:
        raise ValueError(f"core_share: expected a share in (0, 1], got {core_share!r}")
    draft = speculative.draft if speculative is not None else None
    if draft is not None and draft.vocab != model.vocab:
        raise ValueError(f"speculative draft {draft.name!r} has another vocabulary than "
                         f"{model.name!r}: it cannot propose tokens the target verifies")
    used = replica_bytes(model, load.bits, load.kv_bits, load.context, load.batch, draft)
    count = _systems(model, hardware, used, systems)
    cores = count * float(hardware.cores) * np.maximum(core_share,
                                                       used / (count * hardware.capacity))
    if speculative is None:
        step, micro = _decode_step(model, hardware, load, cores, count, 1.0)
        tokens = 1.0
    else:
        # the draft takes cores in proportion to its weights, on one wafer (no hops)
        share = speculative.draft.params / (speculative.draft.params + model.params)
        drafting, _ = _decode_step(speculative.draft, hardware, load, cores * share,
                                   np.ones_like(count), 1.0)
        cores = cores * (1.0 - share)
        verify, micro = _decode_step(model, hardware, load, cores, count,
                                     speculative.tokens + 1.0)
        step = speculative.tokens * drafting + verify
        tokens = expected_tokens(speculative.tokens, speculative.acceptance)
    prefill = _prefill_time(model, hardware, load, cores, count)
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
