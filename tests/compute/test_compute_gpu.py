"""The GPU node's roofline against closed forms, its memory fit, and its calibration."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.compute import H100_NODE, FitError, Speculative, at_speed, catalogue, evaluate
from twin.compute.calibration import GPU_NODE, fit, load, markdown, table
from twin.compute.hardware import H100_PUBLISHED, for_system, load_fitted
from twin.compute.memory import kv_bytes, weight_bytes

MODELS = catalogue()
L70 = MODELS["llama-3.3-70b"]
# the published node with no fitted overheads: times are the roofline's alone
BARE = H100_PUBLISHED


def _bytes_per_step(model, bits: float, context: float, batch: float = 1.0) -> float:
    """What a decode step reads: every weight but the input embedding (a lookup), and
    each sequence's KV cache."""
    weights = (model.params - (0 if model.tied else model.embedding_params)) * bits / 8
    return weights + float(kv_bytes(model, np.asarray(bits), np.asarray(context),
                                    np.asarray(batch)))


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_a_decode_step_at_batch_1_reads_its_bytes_at_the_hbm_bandwidth(gpus: int) -> None:
    model = MODELS["llama-3.1-8b"] if gpus == 1 else L70
    perf = evaluate(model, bits=8, batch=1, context=4096, prompt=1, hardware=BARE, gpus=gpus)
    expected = _bytes_per_step(model, 8, 4096) / (gpus * BARE.hbm_bandwidth)
    # tensor parallel GPUs sum their partial results twice a layer over NVLink
    ring = 2 * (gpus - 1) / gpus * model.hidden * 2 / BARE.nvlink_bandwidth
    expected += 2 * model.layers * ring
    assert float(perf.step_s) == pytest.approx(expected, rel=1e-12)
    assert int(perf.systems) == 1


def test_the_fitted_constants_add_their_fixed_times_and_efficiency() -> None:
    node = replace(BARE, hbm_efficiency=0.5, allreduce_s=1e-5, step_s=2e-3)
    perf = evaluate(L70, bits=8, batch=1, context=1, prompt=1, hardware=node, gpus=2)
    bare = evaluate(L70, bits=8, batch=1, context=1, prompt=1, hardware=BARE, gpus=2)
    memory = _bytes_per_step(L70, 8, 1) / (2 * BARE.hbm_bandwidth)
    extra = memory + 2 * L70.layers * 1e-5 + 2e-3  # half the bandwidth: the memory time twice
    assert float(perf.step_s) == pytest.approx(float(bare.step_s) + extra, rel=1e-12)


def test_a_long_prompt_is_compute_bound_at_the_dense_rate_of_its_precision() -> None:
    model, prompt = MODELS["llama-3.1-8b"], 8000
    for bits, rate in ((16, BARE.flops_16), (8, BARE.flops_8)):
        perf = evaluate(model, bits=bits, batch=1, context=prompt, prompt=prompt,
                        hardware=BARE, gpus=1)
        attention = 4 * model.heads * model.head_dim * prompt / 2  # half the prompt, on average
        flops = prompt * (2 * model.body_active + model.layers * attention)
        # the first token's projection onto the vocabulary reads its weights for one token
        head = model.embedding_params * bits / 8 / BARE.hbm_bandwidth
        prefill = float(prompt / perf.prefill_tps)
        assert prefill == pytest.approx(flops / rate + head, rel=1e-12)
        assert float(perf.ttft_s) == pytest.approx(prefill + float(perf.step_s), rel=1e-12)


def test_a_model_on_two_nodes_pays_a_network_hop_per_pass() -> None:
    model = MODELS["llama-3.1-405b"]
    perf = evaluate(model, bits=16, batch=1, context=1024, prompt=1, hardware=BARE)
    assert int(perf.systems) == 2  # 810 GB of weights: more than a node's 576 GB usable
    one = evaluate(model, bits=16, batch=1, context=1024, prompt=1, hardware=BARE, gpus=16)
    assert float(one.step_s) == float(perf.step_s)
    hop = BARE.network_latency_s + model.hidden * 2 / (8 * BARE.network_bandwidth)
    # a token crosses the two nodes one after the other: each node's 8 GPUs read its half
    memory = _bytes_per_step(model, 16, 1024) / (8 * BARE.hbm_bandwidth)
    ring = 2 * 7 / 8 * model.hidden * 2 / BARE.nvlink_bandwidth
    assert float(perf.step_s) == pytest.approx(memory + 2 * model.layers * ring + hop,
                                               rel=1e-12)


def test_the_hbm_holds_weights_and_kv_cache_or_the_fit_fails_with_the_bytes_missing() -> None:
    capacity = BARE.hbm_bytes * BARE.hbm_usable
    weights = float(weight_bytes(L70, np.asarray(8.0)))
    per_seq = float(kv_bytes(L70, np.asarray(8.0), np.asarray(8192.0), np.asarray(1.0)))
    most = int((2 * capacity - weights) // per_seq)
    evaluate(L70, bits=8, batch=most, context=8192, prompt=1, hardware=BARE, gpus=2)
    with pytest.raises(FitError) as caught:
        evaluate(L70, bits=8, batch=most + 1, context=8192, prompt=1, hardware=BARE, gpus=2)
    assert caught.value.missing_bytes == pytest.approx(weights + (most + 1) * per_seq
                                                       - 2 * capacity)
    with pytest.raises(FitError):
        evaluate(L70, bits=16, batch=1, context=1, prompt=1, hardware=BARE, gpus=1)
    # the fewest whole nodes otherwise
    assert int(evaluate(L70, bits=16, batch=1, context=1, prompt=1, hardware=BARE).systems) == 1


def test_fewer_key_value_heads_than_gpus_hold_copies_of_the_cache() -> None:
    model = MODELS["qwen3-235b-a22b"]  # 4 key-value heads on 8 GPUs: two copies
    assert model.kv_heads == 4
    perf = evaluate(model, bits=8, batch=16, context=32768, prompt=1, hardware=BARE)
    kv = float(kv_bytes(model, np.asarray(8.0), np.asarray(32768.0), np.asarray(16.0)))
    assert float(perf.sram_bytes) == pytest.approx(float(weight_bytes(model, np.asarray(8.0)))
                                                   + 2 * kv)


@pytest.mark.parametrize("gpus", [0, 9, 12, True])
def test_a_replica_takes_up_to_a_node_or_whole_nodes(gpus: object) -> None:
    with pytest.raises(ValueError, match="gpus"):
        evaluate(L70, bits=8, batch=1, context=1, prompt=1, hardware=BARE, gpus=gpus)


@pytest.mark.parametrize("gpus", [3, 5, 6, 7])
def test_tensor_parallelism_splits_the_attention_heads_evenly(gpus: int) -> None:
    # Llama 3.3 70B has 64 heads: 3, 5, 6 or 7 GPUs cannot each take an equal share
    assert L70.heads == 64
    with pytest.raises(ValueError, match=f"group of {gpus} GPUs does not split .* 64 "
                                         "attention heads evenly; expected 1, 2, 4, 8"):
        evaluate(L70, bits=8, batch=1, context=1, prompt=1, hardware=BARE, gpus=gpus)


def test_gpus_are_a_gpu_nodes_and_cores_a_wafers() -> None:
    with pytest.raises(ValueError, match="gpus"):
        evaluate(L70, bits=8, batch=1, context=1, prompt=1, gpus=2)
    with pytest.raises(ValueError, match="gpus and systems"):
        evaluate(L70, bits=8, batch=1, context=1, prompt=1, hardware=BARE, gpus=2, systems=1)
    assert for_system("gpu_node") is H100_NODE


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["llama-3.1-8b", "llama-3.3-70b", "qwen3-32b", "gpt-oss-120b"]),
       st.sampled_from([16, 8]), st.integers(0, 7), st.integers(10, 14))
def test_at_a_fixed_size_more_batch_never_lowers_the_aggregate_nor_raises_per_user(
        name: str, bits: int, small: int, large: int) -> None:
    model = MODELS[name]
    batch = np.array([2.0**small, 2.0**large / 16])
    perf = evaluate(model, bits=bits, batch=batch, context=2048, prompt=512, hardware=H100_NODE,
                    systems=2)
    low, high = np.argsort(batch)
    assert perf.aggregate_tps[high] >= perf.aggregate_tps[low]
    assert perf.user_tps[high] <= perf.user_tps[low]


def test_speculation_and_speed_factors_work_as_on_the_wafer() -> None:
    draft = MODELS["llama-3.2-1b"]
    plain = evaluate(L70, bits=8, batch=1, context=2048, prompt=100, hardware=H100_NODE)
    spec = evaluate(L70, bits=8, batch=1, context=2048, prompt=100, hardware=H100_NODE,
                    speculative=Speculative(draft, 4, 0.8))
    assert float(spec.tokens_per_step) == pytest.approx((1 - 0.8**5) / 0.2)
    assert float(spec.user_tps) > float(plain.user_tps)
    half = at_speed(plain, 0.5)
    assert float(half.aggregate_tps) == pytest.approx(0.5 * float(plain.aggregate_tps))


def test_refitting_the_stored_gpu_figures_gives_the_stored_constants() -> None:
    fitted, _ = load(target=GPU_NODE)
    refit, stored = fit(fitted, target=GPU_NODE), load_fitted(GPU_NODE.path)
    assert set(stored) == set(GPU_NODE.constants)
    for name in GPU_NODE.constants:
        assert refit[name] == pytest.approx(stored[name], rel=1e-4, abs=1e-12), name
        assert getattr(H100_NODE, name) == stored[name]


def test_the_fitted_gpu_figures_are_met_within_one_percent() -> None:
    fitted, _ = load(target=GPU_NODE)
    assert {f.model for f in fitted} == {"llama-3.3-70b", "llama-3.1-8b"}
    for row in table(fitted, H100_NODE):
        assert 0.99 <= row.ratio <= 1.01, (row.figure.label, row.ratio)


def test_every_out_of_sample_gpu_figure_is_predicted_and_none_is_fitted() -> None:
    fitted, checks = load(target=GPU_NODE)
    rows = table(checks, H100_NODE)
    assert len(rows) == len(checks) >= 20
    assert all(row.predicted > 0 for row in rows)
    fitted_keys = {(f.label, f.metric) for f in fitted}
    assert not fitted_keys & {(f.label, f.metric) for f in checks}
    # the memory-bound plateau of the 70B curve is predicted: concurrency 100 and 200
    # run the same 81 sequences, the most two GPUs' HBM holds at 5,500 tokens each
    plateau = {row.figure.label: row.predicted for row in rows}
    assert plateau["NIM Llama 3.3 70B, concurrency 200"] == pytest.approx(917.26, rel=0.01)


def test_the_docs_show_the_gpu_calibration_the_code_computes() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "compute.md").read_text()
    fitted, checks = load(target=GPU_NODE)
    for figures in (fitted, checks):
        for line in markdown(table(figures, H100_NODE)):
            assert line in text, f"docs/compute.md lacks the row {line!r}"
