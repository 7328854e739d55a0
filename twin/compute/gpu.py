"""The GPU node's roofline: decode and prefill times of a replica on 8-GPU nodes.

A replica holds its model on g GPUs: tensor parallelism over the GPUs of one
node (tp of them, joined by NVLink), pipeline parallelism across nodes (pp
stages of a node each, joined by the network). A replica on the hall takes
whole nodes (tp = 8, pp = its nodes); one of fewer GPUs (tp = g, pp = 1) is
what the published single-node figures measure (`twin calibrate --system
gpu_node`, `twin perf --gpus`).

The work is the wafer's (`twin.compute.perf.layer_work`, `head_work`); the
times are a GPU's roofline. A stage of L / pp layers on tp GPUs takes, for a
micro-batch of t tokens,

    max(bytes read / (tp x HBM bandwidth x hbm_efficiency),
        FLOPs      / (tp x dense FLOP/s at the weights' precision x flops_efficiency))
    + 2 all-reduces a layer of (allreduce_s + 2 (tp - 1) / tp x t x hidden x 2 bytes / NVLink)

(the attention's and the feed-forward's outputs are summed across the GPUs of
a tensor-parallel group, a ring all-reduce; none with one GPU). The output
projection is on the last stage, a stage boundary a network hop of
network_latency_s + t x hidden x 2 bytes / (tp x NIC bandwidth). A decode step
and a prefill follow the shared pipeline schedule (`pipelined_step`,
`chunked_prefill`: stages are nodes) and each costs one engine iteration's
fixed time, step_s. The KV cache splits over the GPUs by key-value head; a
model with fewer key-value heads than tp holds tp / kv_heads copies of it
(memory and reads).

Weights and KV cache live in HBM: a replica fits when they take at most
`hbm_usable` of its GPUs' HBM (`FitError` otherwise, with the bytes missing).
The four constants are fitted by `twin.compute.calibration` on NVIDIA's
published serving figures (docs/compute.md, *The GPU node*).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.compute.catalogue import ModelSpec
from twin.compute.hardware import GpuNode
from twin.compute.memory import FitError, kv_bytes
from twin.compute.perf import (
    ACTIVATION_BYTES,
    Load,
    chunked_prefill,
    head_work,
    layer_work,
    pipelined_step,
)

__all__ = ["node_replicas", "Layout", "layout", "kv_copies", "check_gpus"]


@dataclass(frozen=True)
class Layout:
    """How a replica's g = tp x pp GPUs are arranged, and the nodes they take."""

    tp: np.ndarray  # GPUs per stage, tensor parallel (within a node)
    pp: np.ndarray  # stages, pipeline parallel (a node each when more than one)
    nodes: np.ndarray  # nodes the replica takes (1 for a replica of fewer GPUs)


def kv_copies(model: ModelSpec, tp: np.ndarray) -> np.ndarray:
    """Copies of the KV cache across tp GPUs: each GPU holds its share of the key-value
    heads, so with fewer heads than GPUs a head is held by tp / kv_heads of them."""
    return np.maximum(1.0, np.asarray(tp, dtype=float) / model.kv_heads)


def _held(model: ModelSpec, load: Load, used: np.ndarray, tp: np.ndarray) -> np.ndarray:
    """HBM a replica on tp-GPU stages takes: `used` plus the KV cache's extra copies."""
    extra = kv_bytes(model, load.kv_bits, load.context, load.batch) * (kv_copies(model, tp) - 1.0)
    return used + extra


def check_gpus(node: GpuNode, gpus: object, model: ModelSpec | None = None) -> None:
    """`ValueError` unless `gpus` is part of one node or whole nodes' worth, and (given
    the `model`) its tensor parallelism splits the model's attention heads evenly, as
    serving frameworks require (tp GPUs of one node each take heads / tp heads)."""
    per_node = node.gpus
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1 or (
            gpus > per_node and gpus % per_node):
        raise ValueError(f"gpus: expected 1 to {per_node} GPUs of one node or a multiple "
                         f"of {per_node} (whole nodes), got {gpus!r}")
    if model is not None:
        _check_split(model, min(gpus, per_node), per_node)


def _check_split(model: ModelSpec, tp: int, per_node: int) -> None:
    if model.heads % tp:
        divisors = [d for d in range(1, per_node + 1) if model.heads % d == 0]
        raise ValueError(
            f"gpus: a tensor-parallel group of {tp} GPUs does not split {model.name}'s "
            f"{model.heads} attention heads evenly; expected {', '.join(map(str, divisors))} "
            "GPUs of one node, or whole nodes")


def layout(model: ModelSpec, node: GpuNode, load: Load, used: np.ndarray, systems: object,
           gpus: int | None) -> tuple[Layout, np.ndarray]:
    """The replica's layout (given as `gpus`, or whole nodes: `systems`, the fewest that
    hold it when None) and the HBM it takes; `FitError` when its GPUs cannot hold it."""
    per_node = node.gpus
    if gpus is not None:
        if systems is not None:
            raise ValueError("gpus and systems: give one, not both")
        check_gpus(node, gpus, model)
        tp, pp = min(gpus, per_node), max(1, gpus // per_node)
        shape = (Layout(np.asarray(tp, dtype=float), np.asarray(pp, dtype=float),
                        np.asarray(pp, dtype=np.int64)))
    else:
        _check_split(model, per_node, per_node)
        whole = np.asarray(float(per_node))
        if systems is None:
            held = _held(model, load, used, whole)
            nodes = np.maximum(1, np.ceil(held / (per_node * node.capacity))).astype(np.int64)
        else:
            nodes = np.asarray(systems, dtype=np.int64)
            if np.any(nodes < 1):
                raise ValueError("systems: expected an integer >= 1")
        shape = Layout(np.full(nodes.shape, whole), nodes.astype(float), nodes)
    held = _held(model, load, used, shape.tp)
    missing = held - shape.tp * shape.pp * node.capacity
    if np.any(missing > 0):
        gap = float(np.max(missing))
        count = int(np.max(shape.tp * shape.pp))
        raise FitError(f"{model.name}: {count} GPU(s) hold {node.capacity * count / 1e9:.1f} GB "
                       f"of weights and KV cache; the replica needs {gap / 1e9:.2f} GB more", gap)
    return shape, held


@dataclass(frozen=True)
class _Gpus:
    """A replica's GPUs as a `twin.compute.perf.Replica`: tp per stage, pp stages."""

    node: GpuNode
    tp: np.ndarray
    pp: np.ndarray

    def _rate(self, load: Load) -> np.ndarray:
        """Dense FLOP/s of one GPU at the weights' precision (8-bit arithmetic for 8 bits
        and fewer: the GPU has none narrower)."""
        return np.where(load.bits > 8.0, self.node.flops_16, self.node.flops_8)

    def _roofline(self, load: Load, tp: np.ndarray, read: np.ndarray,
                  flops: np.ndarray) -> np.ndarray:
        node = self.node
        memory = read / (tp * node.hbm_bandwidth * node.hbm_efficiency)
        compute = flops / (tp * self._rate(load) * node.flops_efficiency)
        return np.maximum(memory, compute)

    def _stage(self, model: ModelSpec, load: Load, tp: np.ndarray, pp: np.ndarray,
               tokens: np.ndarray, seqs: np.ndarray, context: np.ndarray) -> np.ndarray:
        """L / pp layers on tp GPUs, with two all-reduces a layer."""
        read, flops, _ = layer_work(model, load, tokens, seqs, context)
        kv = seqs * context * model.kv_values_per_token / model.layers * load.kv_bits / 8.0
        read = read + kv * (kv_copies(model, tp) - 1.0)
        node = self.node
        ring = 2.0 * (tp - 1.0) / tp * tokens * model.hidden * ACTIVATION_BYTES
        allreduce = np.where(tp > 1.0, node.allreduce_s + ring / node.nvlink_bandwidth, 0.0)
        layers = model.layers / pp
        return layers * (self._roofline(load, tp, read, flops) + 2.0 * allreduce)

    def _head(self, model: ModelSpec, load: Load, tp: np.ndarray,
              tokens: np.ndarray) -> np.ndarray:
        read, flops, _ = head_work(model, load, tokens)
        return self._roofline(load, tp, read, flops)

    def _hop(self, model: ModelSpec, tp: np.ndarray, pp: np.ndarray,
             tokens: np.ndarray) -> np.ndarray:
        """A stage boundary: the activations over the network, each GPU its share."""
        node = self.node
        wire = tokens * model.hidden * ACTIVATION_BYTES / (tp * node.network_bandwidth)
        return np.where(pp > 1.0, node.network_latency_s + wire, 0.0)

    def decode(self, model: ModelSpec, load: Load, per_seq: float
               ) -> tuple[np.ndarray, np.ndarray]:
        """The stages are the nodes: a micro-batch crosses each, and every link between
        them; the last stage carries the output projection too."""
        expand = load.with_axis()
        tp, pp = self.tp[..., None], self.pp[..., None]

        def times(seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            tokens = seqs * per_seq
            stage = self._stage(model, expand, tp, pp, tokens, seqs, expand.context)
            last = stage + self._head(model, expand, tp, tokens)
            hop = self._hop(model, tp, pp, tokens)
            return (pp - 1.0) * (stage + hop) + last, np.maximum(last, hop)

        step, micro = pipelined_step(load.batch, self.pp, times)
        return step + self.node.step_s, micro

    def prefill(self, model: ModelSpec, load: Load) -> np.ndarray:
        """The prompt in min(prompt, pp) chunks, each token attending on average to half
        the prompt; the output projection for its last token only."""
        tp, pp = self.tp, self.pp

        def times(size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            one = np.ones_like(size)
            stage = self._stage(model, load, tp, pp, size, one, load.prompt / 2.0)
            hop = self._hop(model, tp, pp, size)
            one_pass = pp * stage + (pp - 1.0) * hop + self._head(model, load, tp, one)
            return one_pass, np.maximum(stage, hop)

        return chunked_prefill(load.prompt, pp, times) + self.node.step_s


def node_replicas(model: ModelSpec, node: GpuNode, load: Load, used: np.ndarray,
                  systems: object, gpus: int | None, draft: ModelSpec | None
                  ) -> tuple[np.ndarray, np.ndarray, _Gpus, _Gpus | None]:
    """The nodes of a replica, the HBM it takes, its target model's GPUs and its draft's
    (the draft runs on the first stage's GPUs, between the target's steps)."""
    shape, held = layout(model, node, load, used, systems, gpus)
    target = _Gpus(node, shape.tp, shape.pp)
    drafter = None if draft is None else _Gpus(node, shape.tp, np.ones_like(shape.pp))
    return shape.nodes, held, target, drafter
