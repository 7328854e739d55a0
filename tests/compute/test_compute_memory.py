"""Memory: weights at the deployment's precision plus KV cache, in systems of 44 GB."""

from __future__ import annotations

import numpy as np
import pytest

from twin.compute import CS3, FitError, Speculative, catalogue, evaluate

MODELS = catalogue()


def _systems(name: str, bits: float, batch: float = 1, context: float = 8192) -> int:
    return int(evaluate(MODELS[name], bits=bits, batch=batch, context=context,
                        prompt=1).systems)


def test_llama_70b_at_16_bit_needs_four_systems_as_published() -> None:
    assert _systems("llama-3.1-70b", 16) == 4
    assert _systems("llama-3.3-70b", 16) == 4


def test_an_8b_model_fits_one_system_and_405b_needs_about_twenty() -> None:
    assert _systems("llama-3.1-8b", 16) == 1
    assert 19 <= _systems("llama-3.1-405b", 16) <= 22  # a public estimate: 19-22 (sources B3)


def test_kv_cache_is_two_x_layers_x_kv_heads_x_head_dim_x_bytes_per_token() -> None:
    model = MODELS["llama-3.1-70b"]
    base = evaluate(model, bits=16, batch=1, context=0, prompt=1)
    more = evaluate(model, bits=16, batch=3, context=1000, prompt=1)
    per_token = 2 * 80 * 8 * 128 * 2  # bytes at 16 bit
    assert float(more.sram_bytes - base.sram_bytes) == pytest.approx(3 * 1000 * per_token)
    assert float(base.sram_bytes) == pytest.approx(70.6e9 * 2)


def test_a_mixture_of_experts_holds_all_its_parameters() -> None:
    maverick = MODELS["llama-4-maverick"]
    perf = evaluate(maverick, bits=8, batch=1, context=0, prompt=1)
    assert float(perf.sram_bytes) == pytest.approx(400e9)
    assert int(perf.systems) == int(np.ceil(400e9 / CS3.capacity))


def test_fewer_bits_never_need_more_systems() -> None:
    bits = np.array([32, 16, 8, 6, 4, 2])[:, None, None]
    batch = np.array([1, 4, 32, 256])[None, :, None]
    context = np.array([0, 1024, 32768, 131072])[None, None, :]
    for model in MODELS.values():
        systems = evaluate(model, bits=bits, batch=batch, context=context, prompt=1).systems
        assert np.all(np.diff(systems, axis=0) <= 0), model.name


def test_the_draft_model_takes_memory_too() -> None:
    target, draft = MODELS["llama-3.1-405b"], MODELS["llama-3.2-1b"]
    alone = evaluate(target, bits=16, batch=1, context=0, prompt=1)
    both = evaluate(target, bits=16, batch=1, context=0, prompt=1,
                    speculative=Speculative(draft, tokens=4, acceptance=0.8))
    assert float(both.sram_bytes - alone.sram_bytes) == pytest.approx(1.24e9 * 2)


def test_fit_error_reports_the_bytes_missing_for_the_worst_point() -> None:
    model = MODELS["llama-3.1-8b"]
    context = np.array([1024, 65536])
    need = evaluate(model, bits=16, batch=8, context=context, prompt=1).sram_bytes
    with pytest.raises(FitError) as caught:
        evaluate(model, bits=16, batch=8, context=context, prompt=1, systems=1)
    assert caught.value.missing_bytes == pytest.approx(float(need[1]) - CS3.capacity)
    assert evaluate(model, bits=16, batch=8, context=1024, prompt=1, systems=1).systems == 1
