"""`twin perf MODEL`: the batch x context x precision grid as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json

import click
import pytest
from click.testing import CliRunner

from twin.compute import catalogue, evaluate


def _perf(twin: click.Group, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(twin, ["perf", *args], terminal_width=200)
    return result.exit_code, result.output


def test_json_gives_one_row_per_grid_point_as_the_library_computes_it(
    twin: click.Group,
) -> None:
    code, out = _perf(twin, "llama-3.3-70b", "--batch", "1,8", "--context", "1k,32k",
                      "--precision", "16,8,4", "--prompt", "500", "--json")
    assert code == 0, out
    document = json.loads(out)
    rows = document["rows"]
    assert len(rows) == 2 * 2 * 3
    assert [r["bits"] for r in rows[:4]] == [16] * 4
    assert {(r["batch"], r["context"]) for r in rows} == {(1, 1024), (1, 32768), (8, 1024),
                                                           (8, 32768)}
    row = next(r for r in rows if (r["bits"], r["batch"], r["context"]) == (8, 8, 32768))
    perf = evaluate(catalogue()["llama-3.3-70b"], bits=8, batch=8, context=32768, prompt=500)
    assert row["user_tps"] == pytest.approx(float(perf.user_tps))
    assert row["systems"] == int(perf.systems)
    assert row["ttft_ms"] == pytest.approx(1e3 * float(perf.ttft_s))
    assert document["speculative"] is None


def test_csv_has_a_header_and_the_grid(twin: click.Group) -> None:
    code, out = _perf(twin, "qwen3-32b", "--batch", "1,64", "--context", "4k",
                      "--precision", "16", "--format", "csv")
    assert code == 0, out
    table = list(csv.DictReader(io.StringIO(out)))
    assert [int(float(r["batch"])) for r in table] == [1, 64]
    assert float(table[1]["aggregate_tps"]) > float(table[0]["aggregate_tps"])


def test_the_table_names_the_model_and_its_columns(twin: click.Group) -> None:
    code, out = _perf(twin, "llama-3.1-8b", "--batch", "1", "--context", "1k",
                      "--precision", "16")
    assert code == 0, out
    assert "llama-3.1-8b" in out and "user_tps" in out and "ttft_ms" in out


def test_speculative_decoding_uses_the_family_draft_and_yields_more_per_step(
    twin: click.Group,
) -> None:
    code, out = _perf(twin, "llama-3.1-405b", "--speculative", "--batch", "1",
                      "--context", "2k", "--precision", "16", "--acceptance", "0.5", "--json")
    assert code == 0, out
    document = json.loads(out)
    assert document["speculative"] == {"draft": "llama-3.2-1b", "tokens": 4, "acceptance": 0.5}
    assert document["rows"][0]["tokens_per_step"] == pytest.approx(1.9375)


def test_an_unknown_model_exits_2_listing_the_known_ones(twin: click.Group) -> None:
    code, out = _perf(twin, "gpt-5")
    assert code == 2
    assert "gpt-5" in out and "llama-3.3-70b" in out and "qwen3-235b-a22b" in out


@pytest.mark.parametrize("args,key", [
    (("--systems", "2", "--precision", "16", "--batch", "1", "--context", "1k"), "--systems"),
    (("--draft", "qwen3-0.6b"), "--draft"),
    (("--batch", "1,eight"), "--batch"),
    (("--context", "0"), "--context"),
    (("--precision", "16,160"), "--precision"),  # a typo, not 160 bits per weight
])
def test_bad_input_exits_2_naming_the_option(twin: click.Group, args: tuple[str, ...],
                                              key: str) -> None:
    code, out = _perf(twin, "llama-3.1-70b", *args)
    assert code == 2, out
    assert key in out


def test_speculation_without_a_draft_for_the_model_asks_for_one(twin: click.Group) -> None:
    code, out = _perf(twin, "gpt-oss-120b", "--speculative")
    assert code == 2 and "--draft" in out
    code, out = _perf(twin, "llama-3.1-8b", "--draft", "llama-3.2-1b", "--batch", "1",
                      "--context", "2k", "--precision", "16", "--json")
    assert code == 0, out
    assert json.loads(out)["speculative"]["draft"] == "llama-3.2-1b"


def test_the_gpu_node_grid_names_nodes_and_hbm_as_the_library_computes_them(
    twin: click.Group,
) -> None:
    from twin.compute import H100_NODE

    code, out = _perf(twin, "llama-3.3-70b", "--system", "gpu_node", "--gpus", "2",
                      "--batch", "1,32", "--context", "5k", "--precision", "8", "--json")
    assert code == 0, out
    document = json.loads(out)
    assert document["system"] == "gpu_node"
    row = document["rows"][1]
    perf = evaluate(catalogue()["llama-3.3-70b"], bits=8, batch=32, context=5120, prompt=1024,
                    hardware=H100_NODE, gpus=2)
    assert row["nodes"] == 1 and "systems" not in row
    assert row["hbm_gb"] == pytest.approx(float(perf.sram_bytes) / 1e9)
    assert row["aggregate_tps"] == pytest.approx(float(perf.aggregate_tps))


def test_gpus_need_a_gpu_node_and_enough_of_them(twin: click.Group) -> None:
    code, out = _perf(twin, "llama-3.3-70b", "--gpus", "2")
    assert code == 2 and "--gpus" in out
    code, out = _perf(twin, "llama-3.3-70b", "--system", "gpu_node", "--gpus", "1",
                      "--precision", "16")
    assert code == 2 and "--gpus" in out and "GB more" in out


def test_gpus_that_are_neither_part_of_a_node_nor_whole_nodes_are_a_usage_error(
    twin: click.Group,
) -> None:
    code, out = _perf(twin, "llama-3.1-8b", "--system", "gpu_node", "--gpus", "12")
    assert code == 2 and "--gpus" in out and "multiple of 8" in out
    code, out = _perf(twin, "llama-3.1-8b", "--system", "gpu_node", "--gpus", "3")
    assert code == 2 and "--gpus" in out and "32 attention heads evenly" in out
