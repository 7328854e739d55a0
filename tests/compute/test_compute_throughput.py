"""The throughput core behaves as physics says: batch, context, precision, experts, speed."""

from __future__ import annotations

import numpy as np
import pytest

from twin.compute import CS3, ModelSpec, Perf, Speculative, catalogue, evaluate
from twin.compute.catalogue import draft_for

MODELS = catalogue()
BATCH = 2 ** np.arange(21)  # 1 to a million sequences


@pytest.mark.parametrize("name,systems", [("llama-3.1-8b", 8), ("llama-3.3-70b", 12),
                                          ("qwen3-235b-a22b", 16)])
def test_aggregate_throughput_rises_with_batch_towards_a_bound(name: str, systems: int) -> None:
    # a context of one token: KV cache small enough to batch until compute is the bound
    model = MODELS[name]
    perf = evaluate(model, bits=8, batch=BATCH, context=1, prompt=1, systems=systems)
    aggregate = perf.aggregate_tps
    # every token of a step crosses each wafer-to-wafer link: 150 GB/s of 16-bit activations
    links = CS3.io_bandwidth / (model.hidden * 2)
    assert np.all(aggregate <= links * (1 + 1e-12))
    rising = aggregate < links * (1 - 1e-12)
    assert np.all(np.diff(aggregate)[rising[:-1]] > 0) and np.all(np.diff(aggregate) >= 0)
    gains = aggregate[1:] / aggregate[:-1]  # per doubling of the batch
    assert gains[0] == pytest.approx(2.0, rel=1e-6)  # latency-bound: twice the batch, same step
    assert np.all(np.diff(gains) <= 1e-9)  # ever smaller gains: a concave approach to a bound
    assert gains[-1] < 1.1


def test_per_user_speed_falls_with_context() -> None:
    context = np.array([0, 1024, 8192, 32768, 131072])
    for name in ("llama-3.1-8b", "llama-3.3-70b", "gpt-oss-120b", "llama-4-maverick"):
        fixed = evaluate(MODELS[name], bits=16, batch=4, context=context, prompt=1, systems=30)
        assert np.all(np.diff(fixed.user_tps) < 0), name
        fewest = evaluate(MODELS[name], bits=16, batch=4, context=context, prompt=1)
        assert np.all(np.diff(fewest.user_tps) <= 0), name


def test_time_to_first_token_grows_with_the_prompt() -> None:
    prompt = np.array([1, 16, 256, 4096, 32768])
    perf = evaluate(MODELS["llama-3.3-70b"], bits=16, batch=1, context=1024, prompt=prompt,
                    systems=6)
    assert np.all(np.diff(perf.ttft_s) > 0)
    assert np.all(perf.ttft_s > perf.step_s)


def test_a_mixture_of_experts_computes_with_its_active_parameters() -> None:
    moe = MODELS["qwen3-235b-a22b"]
    dense_twin = catalogue({"dense-235b": {
        **{k: getattr(moe, k) for k in ("layers", "hidden", "heads", "kv_heads", "head_dim",
                                        "ffn", "vocab", "source")},
        "params": moe.params, "active_params": moe.params, "experts": 1, "active_experts": 1,
    }})["dense-235b"]
    kwargs = dict(bits=16, batch=np.array([1, 4096]), context=256, prompt=2048, systems=40)
    sparse, dense = evaluate(moe, **kwargs), evaluate(dense_twin, **kwargs)
    assert np.all(sparse.sram_bytes == dense.sram_bytes)
    assert np.all(sparse.user_tps > 2 * dense.user_tps)
    assert float(sparse.prefill_tps[0]) > 2 * float(dense.prefill_tps[0])


def test_speculation_helps_a_large_target_with_a_small_draft() -> None:
    target, draft = MODELS["llama-3.1-405b"], MODELS["llama-3.2-1b"]
    plain = evaluate(target, bits=16, batch=1, context=2048, prompt=1)
    good = evaluate(target, bits=16, batch=1, context=2048, prompt=1,
                    speculative=Speculative(draft, tokens=4, acceptance=0.8))
    useless = evaluate(target, bits=16, batch=1, context=2048, prompt=1,
                       speculative=Speculative(draft, tokens=4, acceptance=0.0))
    assert float(good.user_tps) > 2 * float(plain.user_tps)
    assert float(useless.user_tps) < float(plain.user_tps)  # drafting costs time for nothing
    with pytest.raises(ValueError, match="vocabulary"):
        evaluate(MODELS["llama-4-maverick"], bits=16, batch=1, context=1, prompt=1,
                 speculative=Speculative(draft, tokens=4, acceptance=0.8))


def test_layers_packed_tighter_than_their_bytes_allow_are_not() -> None:
    model = MODELS["llama-3.3-70b"]
    spread = evaluate(model, bits=16, batch=1, context=2048, prompt=1, systems=8)
    tight = evaluate(model, bits=16, batch=1, context=2048, prompt=1, systems=8,
                     core_share=1e-6)
    least = evaluate(model, bits=16, batch=1, context=2048, prompt=1, systems=4,
                     core_share=1e-6)
    assert float(tight.step_s) < float(spread.step_s)  # smaller patches: shorter broadcasts
    # the tightest packing on 8 systems is that of 4 full ones, with four more hops
    assert float(tight.step_s) >= float(least.step_s)



def _head_stage_s(model: ModelSpec, bits: float, cores: np.ndarray,
                  tokens: np.ndarray) -> np.ndarray:
    """The output projection's time for `tokens` tokens on `cores` cores, restated from
    docs/compute.md: its patch's span plus the roofline of its weights, FLOPs and the
    activations and logits it moves."""
    hw, params = CS3, model.vocab * model.hidden
    share = cores / hw.cores
    return hw.span_s * np.sqrt(cores) + np.maximum.reduce([
        np.broadcast_to(params * bits / 8 / (share * hw.sram_bandwidth * hw.efficiency),
                        np.shape(tokens)),
        2 * tokens * params / (share * hw.peak_flops * hw.efficiency),
        tokens * (model.hidden + model.vocab) * 2 / (share * hw.fabric_bandwidth)])


def _head_cores(model: ModelSpec, systems: np.ndarray, spec: Speculative | None) -> np.ndarray:
    """Cores of the output projection: the replica's (every core used, less the draft's
    share with speculation) in proportion to the projection's weights."""
    cores = systems * float(CS3.cores)
    if spec is not None:
        cores = cores * model.params / (model.params + spec.draft.params)
    return cores * model.vocab * model.hidden / model.params


# where the output projection outran the step when a step was one pass of micro-batches
# of batch / layers sequences (h-review1): bits, systems, speculation, the largest batch
# (the replica's KV cache at a 1,024-token context fills those systems)
BOTTLENECKED = [("llama-3.1-8b", 16, 1, False, 64), ("llama-3.3-70b", 16, 6, False, 256),
                ("gpt-oss-120b", 8, 4, False, 1024), ("qwen3-235b-a22b", 8, 11, True, 1024),
                ("llama-4-maverick", 8, 13, False, 1024)]


def _evaluate(name: str, bits: int, systems: int, speculative: bool, largest: int,
              ) -> tuple[ModelSpec, Speculative | None, np.ndarray, Perf]:
    """Every batch from 1 to 300 (the scheduler's choices change at each), then doublings."""
    model = MODELS[name]
    spec = Speculative(draft_for(model, MODELS), 4, 0.8) if speculative else None
    batch = np.concatenate([np.arange(1.0, 301.0), 2.0 ** np.arange(9, 11)])
    batch = batch[batch <= largest]
    return model, spec, batch, evaluate(model, bits=bits, batch=batch, context=1024,
                                        prompt=1000, systems=systems, speculative=spec)


@pytest.mark.parametrize("name,bits,systems,speculative,largest", BOTTLENECKED)
def test_a_step_lasts_its_micro_batches_through_the_slowest_stage(
        name: str, bits: int, systems: int, speculative: bool, largest: int) -> None:
    # every micro-batch of a step crosses every stage, and a stage takes one at a time
    model, spec, batch, perf = _evaluate(name, bits, systems, speculative, largest)
    micro = perf.micro_batches
    assert np.array_equal(micro, np.round(micro))
    assert np.all((micro >= 1) & (micro <= np.minimum(batch, model.layers)))
    per_seq = 5.0 if spec else 1.0  # a verification passes 4 drafted tokens and one more
    tokens = batch / micro * per_seq  # per micro-batch
    head = _head_stage_s(model, bits, _head_cores(model, perf.systems, spec), tokens)
    link = tokens * model.hidden * 2 / CS3.io_bandwidth
    assert np.all(perf.step_s >= micro * np.maximum(head, link) * (1 - 1e-9))


@pytest.mark.parametrize("name,bits,systems,speculative,largest", BOTTLENECKED)
def test_aggregate_throughput_stays_under_what_the_output_projection_computes(
        name: str, bits: int, systems: int, speculative: bool, largest: int) -> None:
    # every token a step passes crosses the output projection, on its share of the cores
    model, spec, batch, perf = _evaluate(name, bits, systems, speculative, largest)
    per_seq = 5.0 if spec else 1.0
    whole = _head_stage_s(model, bits, _head_cores(model, perf.systems, spec), batch * per_seq)
    assert np.all(perf.aggregate_tps <= batch * perf.tokens_per_step / whole * (1 + 1e-9))


@pytest.mark.parametrize("name,bits,systems,speculative,largest", BOTTLENECKED)
def test_the_schedule_keeps_aggregate_rising_and_per_user_speed_falling(
        name: str, bits: int, systems: int, speculative: bool, largest: int) -> None:
    # the scheduler's choice of micro-batches never makes a larger batch serve fewer
    # tokens per second, nor any sequence faster, nor a longer context faster
    model, spec, batch, perf = _evaluate(name, bits, systems, speculative, largest)
    assert np.all(np.diff(perf.aggregate_tps) >= 0)
    assert np.all(np.diff(perf.user_tps) <= 0)
    context = np.array([0.0, 128, 512, 1024])[:, None]  # the largest batch fits at 1,024
    longer = evaluate(model, bits=bits, batch=batch, context=context, prompt=1000,
                      systems=systems, speculative=spec)
    assert np.all(np.diff(longer.user_tps, axis=0) <= 0)


@pytest.mark.parametrize("name,systems", [("gpt-oss-120b", 30), ("llama-3.1-8b", 12)])
def test_a_prompt_crosses_every_link_chunk_by_chunk(name: str, systems: int) -> None:
    # prefill in min(prompt, layers) chunks: the first link carries every chunk, then the
    # last chunk still crosses the other links, one link-time each
    model = MODELS[name]
    prompt = np.array([1000.0, 8192, 60000, 131072])
    perf = evaluate(model, bits=8, batch=1, context=1, prompt=prompt, systems=systems)
    per_token = model.hidden * 2 / CS3.io_bandwidth
    chunk = prompt / np.minimum(prompt, model.layers)
    least = prompt * per_token + (systems - 2) * chunk * per_token
    assert np.all(prompt / perf.prefill_tps >= least * (1 - 1e-9))
