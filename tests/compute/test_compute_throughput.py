"""The throughput core behaves as physics says: batch, context, precision, experts, speed."""

from __future__ import annotations

import numpy as np
import pytest

from twin.compute import CS3, Speculative, catalogue, evaluate

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
