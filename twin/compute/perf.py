"""The throughput core: decode and prefill times of one replica, vectorized.

A replica of S systems holds its model's layers in a pipeline across its
wafers. Its layers spread over a share of its cores (`core_share`, 1 by
default: all of them), each layer an equal part; the draft model of
speculative decoding, if any, takes a part in proportion to its weights.
One pass of a micro-batch of m tokens through a layer of n cores takes

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
the KV cache of the micro-batch's sequences. A pass through the model adds
(S - 1) wafer-to-wafer hops of hop_s + activations / I/O bandwidth.

A decode step advances every sequence of the batch by one token (one
verification with speculation): B <= L sequences (L layers) travel one per
micro-batch and the step is one pass; beyond that, micro-batches of B / L
sequences fill the pipeline and the step is one pass at that micro-batch.
Prefill pushes the prompt through the same pipeline in chunks.
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


def expected_tokens(tokens: int, acceptance: float) -> float:
    """Tokens one verification yields on average: the accepted prefix of the
    draft plus the target's own next token, (1 - a^(k+1)) / (1 - a)."""
    if acceptance >= 1.0:
        return float(tokens + 1)
    return (1.0 - acceptance ** (tokens + 1)) / (1.0 - acceptance)


def _layer_time(model: ModelSpec, hw: Hardware, cores: np.ndarray, tokens: np.ndarray,
                seqs: np.ndarray, context: np.ndarray, bits: np.ndarray,
                kv_bits: np.ndarray) -> np.ndarray:
    """Time of one layer (the model's average layer) for a micro-batch of `tokens`
    tokens from `seqs` sequences at `context`, on `cores` cores."""
    per_layer = 1.0 / model.layers
    if model.moe:
        expert = (model.params - model.active_params) / (model.experts - model.active_experts)
        dense = model.active_params - model.active_experts * expert
        touched = model.experts * (1.0 - (1.0 - model.active_experts / model.experts) ** tokens)
        read_params = dense + expert * touched
    else:
        read_params = np.full_like(tokens, model.params)
    kv_per_token = model.kv_values_per_token * per_layer * kv_bits / 8.0
    read = read_params * per_layer * bits / 8.0 + seqs * context * kv_per_token
    attention = 4.0 * model.heads * model.head_dim * context  # scores and weighted sum
    flops = tokens * (2.0 * model.active_params * per_layer + attention)
    moved = 2.0 * tokens * model.hidden * ACTIVATION_BYTES  # in and out of the layer
    share = cores / hw.cores
    # a token's broadcasts and reductions span the cores of the weights it uses
    span = np.sqrt(cores * model.active_params / model.params)
    return hw.span_s * span + np.maximum.reduce([
        read / (share * hw.sram_bandwidth * hw.efficiency),
        flops / (share * hw.peak_flops * hw.efficiency),
        moved / (share * hw.fabric_bandwidth),
    ])


def _pass_time(model: ModelSpec, hw: Hardware, cores: np.ndarray, systems: np.ndarray,
               tokens: np.ndarray, seqs: np.ndarray, context: np.ndarray, bits: np.ndarray,
               kv_bits: np.ndarray) -> np.ndarray:
    """One micro-batch through every layer and every wafer-to-wafer hop."""
    layer = _layer_time(model, hw, cores, tokens, seqs, context, bits, kv_bits)
    hop = hw.hop_s + tokens * model.hidden * ACTIVATION_BYTES / hw.io_bandwidth
    return model.layers * layer + (systems - 1) * hop


def _decode_step(model: ModelSpec, hw: Hardware, cores: np.ndarray, systems: np.ndarray,
                 batch: np.ndarray, per_seq: float, context: np.ndarray, bits: np.ndarray,
                 kv_bits: np.ndarray) -> np.ndarray:
    """Wall time for every one of `batch` sequences to pass `per_seq` tokens through
    the model once: micro-batches of max(1, batch / layers) sequences."""
    seqs = np.maximum(1.0, batch / model.layers)
    return _pass_time(model, hw, cores, systems, seqs * per_seq, seqs, context, bits, kv_bits)


def evaluate(model: ModelSpec, *, bits: object, batch: object, context: object,
             prompt: object, kv_bits: object = None, speculative: Speculative | None = None,
             systems: object = None, hardware: Hardware = CS3,
             core_share: float = 1.0) -> Perf:
    """Performance of one replica of `model` at full speed (see the module docstring).

    bits, kv_bits (default: bits), batch, context and prompt broadcast. systems=None
    uses the fewest systems that hold the replica; an explicit count too small
    for some input raises `FitError` with the largest shortfall in bytes.
    core_share is the share of the replica's cores its layers spread over (the
    rest stay idle): 1 spreads them over every core (the calibrated default),
    smaller packs them tighter, never tighter than their bytes need.
    """
    bits_a, batch_a, context_a, prompt_a = (np.asarray(v, dtype=float)
                                            for v in (bits, batch, context, prompt))
    kv_a = bits_a if kv_bits is None else np.asarray(kv_bits, dtype=float)
    for name, value in (("bits", bits_a), ("kv_bits", kv_a), ("batch", batch_a),
                        ("context", context_a), ("prompt", prompt_a)):
        if not np.all(np.isfinite(value)) or np.any(value < (0 if name == "context" else 1)):
            raise ValueError(f"{name}: expected finite numbers >= "
                             f"{0 if name == 'context' else 1}")
    draft = speculative.draft if speculative is not None else None
    if draft is not None and draft.vocab != model.vocab:
        raise ValueError(f"speculative draft {draft.name!r} has another vocabulary than "
                         f"{model.name!r}: it cannot propose tokens the target verifies")
    used = replica_bytes(model, bits_a, kv_a, context_a, batch_a, draft)
    needed = systems_needed(used, hardware)
    if systems is None:
        count = needed
    else:
        count = np.asarray(systems, dtype=np.int64)
        if np.any(count < 1):
            raise ValueError("systems: expected an integer >= 1")
        missing = used - count * hardware.capacity
        if np.any(missing > 0):
            gap = float(np.max(missing))
            raise FitError(f"{model.name}: {int(np.max(count))} system(s) hold "
                           f"{hardware.capacity * np.max(count) / 1e9:.1f} GB; the replica needs "
                           f"{gap / 1e9:.2f} GB more", gap)
    shape = np.broadcast_shapes(*(np.shape(v) for v in (bits_a, kv_a, batch_a, context_a,
                                                        prompt_a, count)))
    if not 0.0 < core_share <= 1.0:
        raise ValueError(f"core_share: expected a share in (0, 1], got {core_share!r}")
    spread = np.maximum(core_share, used / (count * hardware.capacity))
    all_cores = count * float(hardware.cores) * spread
    if draft is None:
        target_cores = all_cores
        step = _decode_step(model, hardware, target_cores / model.layers, count, batch_a, 1.0,
                            context_a, bits_a, kv_a)
        tokens = np.ones_like(step)
    else:
        assert speculative is not None
        draft_share = draft.params / (draft.params + model.params)
        target_cores = all_cores * (1.0 - draft_share)
        draft_cores = all_cores * draft_share / draft.layers
        one = np.ones_like(count)  # the draft sits on one wafer: no hops
        drafting = speculative.tokens * _decode_step(draft, hardware, draft_cores, one, batch_a,
                                                     1.0, context_a, bits_a, kv_a)
        verify = _decode_step(model, hardware, target_cores / model.layers, count, batch_a,
                              speculative.tokens + 1.0, context_a, bits_a, kv_a)
        step = drafting + verify
        tokens = np.full_like(step, expected_tokens(speculative.tokens, speculative.acceptance))
    prefill = _prefill_time(model, hardware, target_cores / model.layers, count, prompt_a,
                            bits_a, kv_a)
    user = tokens / step
    aggregate = batch_a * user
    fields = (count, used, step, tokens, user, aggregate, prompt_a / prefill, prefill + step)
    return Perf(*(np.broadcast_to(x, shape).copy() for x in fields))


def _prefill_time(model: ModelSpec, hw: Hardware, cores: np.ndarray, systems: np.ndarray,
                  prompt: np.ndarray, bits: np.ndarray, kv_bits: np.ndarray) -> np.ndarray:
    """The prompt through the pipeline in min(prompt, layers) chunks: the pipeline
    fills and drains, (layers + chunks - 1) chunk-stages in all, each token of a
    chunk attending on average to half the prompt."""
    chunks = np.minimum(prompt, model.layers)
    size = prompt / chunks
    layer = _layer_time(model, hw, cores, size, np.ones_like(size), prompt / 2.0, bits, kv_bits)
    hop = hw.hop_s + size * model.hidden * ACTIVATION_BYTES / hw.io_bandwidth
    return (model.layers + chunks - 1.0) * layer + (systems - 1) * hop


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
