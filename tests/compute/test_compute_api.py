"""The twin.compute contract: the catalogue, evaluate's shapes and errors, speed factor."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.compute import (
    CS3,
    FitError,
    Perf,
    Speculative,
    at_speed,
    catalogue,
    evaluate,
)

SHIPPED = ("llama-3.1-8b", "llama-3.1-70b", "llama-3.3-70b", "llama-3.1-405b", "qwen3-32b",
           "qwen3-235b-a22b", "gpt-oss-120b", "llama-4-maverick", "llama-3.2-1b")


def test_the_catalogue_ships_the_models_the_issue_names_each_with_its_source() -> None:
    models = catalogue()
    for name in SHIPPED:
        assert models[name].source.startswith("https://"), name
    assert models["llama-4-maverick"].experts == 128
    assert models["llama-4-maverick"].active_params == pytest.approx(17e9)
    assert models["llama-3.1-70b"].layers == models["llama-3.3-70b"].layers == 80


def _entry(**change: object) -> dict[str, object]:
    base = {"params": 7e9, "active_params": 7e9, "layers": 32, "hidden": 4096, "heads": 32,
            "kv_heads": 8, "head_dim": 128, "ffn": 11008, "vocab": 32000, "experts": 1,
            "active_experts": 1, "source": "https://example.org/paper"}
    return {**base, **change}


def test_a_scenario_adds_its_own_model_and_a_bad_field_is_named() -> None:
    assert catalogue({"mine-7b": _entry()})["mine-7b"].layers == 32
    with pytest.raises(ValueError, match="'kv_heads'"):
        catalogue({"mine": _entry(kv_heads=0)})
    with pytest.raises(ValueError, match="'layres'"):
        catalogue({"mine": {**_entry(), "layres": 3}})
    with pytest.raises(ValueError, match="'source'"):
        catalogue({"mine": {k: v for k, v in _entry().items() if k != "source"}})
    with pytest.raises(ValueError, match="'tied'"):
        catalogue({"mine": _entry(tied="yes")})
    with pytest.raises(ValueError, match="'active_params'"):  # no room for the layers
        catalogue({"mine": _entry(params=0.2e9, active_params=0.2e9)})
    assert catalogue({"mine": _entry(tied=True)})["mine"].tied
    with pytest.raises(ValueError, match="'active_params'"):  # 2 of 8 experts, yet all used
        catalogue({"mine": _entry(experts=8, active_experts=2)})
    with pytest.raises(ValueError, match="'active_params'"):  # less than 2 experts in 8 use
        catalogue({"mine": _entry(params=70e9, active_params=7e9, experts=8, active_experts=2)})
    with pytest.raises(ValueError, match="'active_params'"):  # every expert, not every weight
        catalogue({"mine": _entry(params=14e9, active_params=7e9, experts=8, active_experts=8)})
    with pytest.raises(ValueError, match="already"):
        catalogue({"llama-3.1-8b": _entry()})


def test_a_model_whose_tokens_use_every_expert_runs_as_a_dense_one() -> None:
    # experts == active_experts divided by zero (ZeroDivisionError) in the layer time
    models = catalogue({"all-experts": _entry(experts=8, active_experts=8), "dense": _entry()})
    kwargs = dict(bits=16, batch=np.array([1, 64]), context=1024, prompt=512)
    every, dense = evaluate(models["all-experts"], **kwargs), evaluate(models["dense"], **kwargs)
    assert np.array_equal(every.user_tps, dense.user_tps)
    assert np.array_equal(every.ttft_s, dense.ttft_s)


def test_evaluate_broadcasts_every_input() -> None:
    model = catalogue()["llama-3.1-8b"]
    perf = evaluate(model, bits=np.array([16, 8, 4])[:, None, None],
                    batch=np.array([1, 8])[None, :, None],
                    context=np.array([1024, 32768, 131072]), prompt=512)
    assert isinstance(perf, Perf)
    for field in perf:
        assert np.shape(field) == (3, 2, 3)
    assert np.all(perf.aggregate_tps == pytest.approx(perf.user_tps * np.array([1, 8])[:, None]))


def test_an_explicit_system_count_too_small_raises_fit_error_with_the_bytes_missing() -> None:
    model = catalogue()["llama-3.1-70b"]
    perf = evaluate(model, bits=16, batch=1, context=8192, prompt=100)
    with pytest.raises(FitError) as caught:
        evaluate(model, bits=16, batch=1, context=8192, prompt=100, systems=2)
    assert caught.value.missing_bytes == pytest.approx(float(perf.sram_bytes) - 2 * CS3.capacity)
    assert isinstance(caught.value, ValueError)


def test_speculation_yields_the_expected_accepted_tokens_per_step() -> None:
    models = catalogue()
    spec = Speculative(models["llama-3.2-1b"], tokens=3, acceptance=0.5)
    perf = evaluate(models["llama-3.3-70b"], bits=16, batch=1, context=4096, prompt=100,
                    speculative=spec)
    assert float(perf.tokens_per_step) == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    assert float(perf.user_tps) == pytest.approx(float(perf.tokens_per_step / perf.step_s))
    with pytest.raises(ValueError, match="acceptance"):
        Speculative(models["llama-3.2-1b"], tokens=3, acceptance=1.5)


def test_a_replica_at_speed_factor_phi_is_phi_times_as_fast_and_zero_serves_nothing() -> None:
    perf = evaluate(catalogue()["llama-3.1-8b"], bits=16, batch=4, context=2048, prompt=256)
    slow = at_speed(perf, np.array([1.0, 0.5, 0.0]))
    assert slow.aggregate_tps.tolist() == pytest.approx(
        [float(perf.aggregate_tps), float(perf.aggregate_tps) / 2, 0.0])
    assert slow.ttft_s[1] == pytest.approx(2 * float(perf.ttft_s))
    assert slow.ttft_s[2] == np.inf


@given(model=st.sampled_from(sorted(catalogue())), bits=st.sampled_from([4, 8, 16]),
       batch=st.integers(1, 4096), context=st.integers(0, 200_000),
       prompt=st.integers(1, 100_000))
def test_every_deployment_obeys_the_identities_of_perf(model: str, bits: int, batch: int,
                                                       context: int, prompt: int) -> None:
    perf = evaluate(catalogue()[model], bits=bits, batch=batch, context=context, prompt=prompt)
    assert perf.systems >= 1
    assert float(perf.sram_bytes) <= int(perf.systems) * CS3.capacity
    assert float(perf.sram_bytes) > (int(perf.systems) - 1) * CS3.capacity  # the fewest
    assert float(perf.user_tps) == pytest.approx(float(perf.tokens_per_step / perf.step_s))
    assert float(perf.aggregate_tps) == pytest.approx(batch * float(perf.user_tps))
    assert float(perf.ttft_s) > float(perf.step_s) > 0
    assert float(perf.prefill_tps) > 0
