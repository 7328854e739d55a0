"""`twin perf MODEL`: throughput, latency and memory of a model over a grid, no simulation.

Parses the grid (`--batch 1,8,64 --context 1k,32k,128k --precision 16,8,4`),
calls `twin.compute.grid.perf_grid` on CS-3 systems or, with `--system
gpu_node`, on 8-GPU nodes (`--gpus` for a replica of part of a node), and
prints its rows as a table, CSV or JSON. An unknown model, a malformed list
or a system count that cannot hold the model are bad input (exit code 2).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from cli.formats import print_rows, write_csv
from twin.errors import ScenarioError

if TYPE_CHECKING:
    from twin.compute import ModelSpec, Speculative

__all__ = ["perf"]

_SUFFIX = {"k": 1024, "m": 1024 * 1024}
MAX_BITS = 32  # bits per weight, as --kv-bits: 160 is a typo of 16, not a precision


def _numbers(text: str, option: str, *, integer: bool, most: float = 1e9) -> list[float]:
    """'1,8,64' or '1k,32k,128k' (k = 1024 tokens) -> numbers from 1 to `most`."""
    values = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = _SUFFIX.get(part[-1:], 1)
        digits = part[:-1] if scale > 1 else part
        try:
            value = float(digits) * scale
        except ValueError:
            raise click.BadParameter(f"expected numbers separated by commas, got {text!r}",
                                     param_hint=option) from None
        if not value >= 1 or (integer and value != int(value)) or value > most:
            raise click.BadParameter(f"expected {'whole ' if integer else ''}numbers "
                                     f"from 1 to {most:g}, got {part!r}", param_hint=option)
        values.append(value)
    return values


def _model(models: Mapping[str, ModelSpec], name: str, option: str) -> ModelSpec:
    if name not in models:
        raise click.BadParameter(f"unknown model {name!r}; known: {', '.join(sorted(models))}",
                                 param_hint=option)
    return models[name]


def _speculation(models: Mapping[str, ModelSpec], target: ModelSpec, draft: str | None,
                 tokens: int | None, acceptance: float | None) -> Speculative:
    from twin.compute import DEFAULT_ACCEPTANCE, DEFAULT_DRAFT_TOKENS, Speculative
    from twin.compute.catalogue import draft_for

    drafter = _model(models, draft, "--draft") if draft else draft_for(target, models)
    if drafter is None:
        raise ScenarioError("twin perf", "--draft", f"a draft model for {target.name}: no "
                            "catalogue model of its vocabulary is a tenth of its size or less, "
                            "name one")
    if drafter.vocab != target.vocab:
        raise ScenarioError("twin perf", "--draft", f"a draft with the vocabulary of "
                            f"{target.name} ({target.vocab} tokens)", drafter.name)
    return Speculative(drafter, tokens or DEFAULT_DRAFT_TOKENS,
                       DEFAULT_ACCEPTANCE if acceptance is None else acceptance)


@click.command()
@click.argument("model")
@click.option("--batch", default="1,8,64", show_default=True, metavar="LIST",
              help="Sequences decoded together per replica.")
@click.option("--context", default="1k,32k,128k", show_default=True, metavar="LIST",
              help="Tokens in each sequence's KV cache (k = 1,024).")
@click.option("--precision", default="16,8,4", show_default=True, metavar="LIST",
              help="Bits per weight.")
@click.option("--kv-bits", type=click.FloatRange(min=1, max=MAX_BITS), metavar="BITS",
              help="Bits per KV-cache value [default: the weights' precision].")
@click.option("--prompt", default="1k", show_default=True, metavar="N",
              help="Prompt tokens of the request whose time to first token is shown.")
@click.option("--system", "kind", type=click.Choice(["wafer", "gpu_node"]), default="wafer",
              show_default=True, help="CS-3 systems or 8-GPU nodes.")
@click.option("--systems", type=click.IntRange(min=1), metavar="N",
              help="Systems (nodes) per replica [default: the fewest that hold it].")
@click.option("--gpus", type=click.IntRange(min=1), metavar="N",
              help="GPUs of a replica on GPU nodes: up to 8 of one node, or whole nodes' "
                   "worth [default: whole nodes].")
@click.option("--speculative/--no-speculative", default=False, show_default=True,
              help="Speculative decoding with a draft model.")
@click.option("--draft", metavar="MODEL",
              help="Draft model [default: the smallest of the same vocabulary].")
@click.option("--draft-tokens", type=click.IntRange(min=1, max=64), metavar="N",
              help="Tokens drafted per verification [default: 4].")
@click.option("--acceptance", type=click.FloatRange(min=0, max=1), metavar="P",
              help="Chance the target accepts a drafted token [default: 0.8].")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def perf(model: str, batch: str, context: str, precision: str, kv_bits: float | None,
         prompt: str, kind: str, systems: int | None, gpus: int | None, speculative: bool,
         draft: str | None,
         draft_tokens: int | None, acceptance: float | None, fmt: str, as_json: bool) -> None:
    """Tokens/s, time to first token and systems of a model over a grid, without a run.

    For each precision x batch x context: systems per replica and SRAM used
    (weights, KV cache, draft), output tokens/s per user and per replica,
    time to first token of a --prompt token request and prefill tokens/s,
    at full speed on CS-3 systems or, with --system gpu_node, on 8-GPU H100
    nodes (docs/compute.md). --draft, --draft-tokens and --acceptance imply
    --speculative.

    Example:

    \b
        twin perf llama-3.3-70b --batch 1,8,64 --context 1k,32k --precision 16,8
        twin perf llama-3.1-405b --speculative --batch 1 --json
        twin perf llama-3.3-70b --system gpu_node --gpus 2 --precision 8
    """
    from twin.compute import FitError
    from twin.compute.catalogue import catalogue
    from twin.compute.grid import columns, perf_grid
    from twin.compute.hardware import GpuNode, for_system

    models = catalogue()
    spec = _model(models, model, "MODEL")
    bits = _numbers(precision, "--precision", integer=False, most=MAX_BITS)
    batches = _numbers(batch, "--batch", integer=True)
    contexts = _numbers(context, "--context", integer=True)
    prompts = _numbers(prompt, "--prompt", integer=True)
    if len(prompts) != 1:
        raise click.BadParameter("expected one number", param_hint="--prompt")
    prompt_tokens = int(prompts[0])
    if gpus is not None and (kind != "gpu_node" or systems is not None):
        raise click.UsageError("--gpus needs --system gpu_node and no --systems")
    hardware = for_system(kind)
    if gpus is not None and isinstance(hardware, GpuNode):  # a GPU node: checked above
        from twin.compute.gpu import check_gpus

        try:
            check_gpus(hardware, gpus, spec)
        except ValueError as exc:
            raise click.BadParameter(str(exc).removeprefix("gpus: "), param_hint="--gpus") from None
    names = columns(hardware)
    speculation = None
    if speculative or draft or draft_tokens or acceptance is not None:
        speculation = _speculation(models, spec, draft, draft_tokens, acceptance)
    try:
        rows = perf_grid(spec, bits=bits, batch=batches, context=contexts,
                         prompt=prompt_tokens, kv_bits=kv_bits, speculative=speculation,
                         systems=systems, hardware=hardware, gpus=gpus)
    except FitError as exc:
        option = "--gpus" if gpus is not None else "--systems"
        raise ScenarioError("twin perf", option, f"enough {option[2:]}: {exc}") from exc
    fmt = "json" if as_json else fmt
    if fmt == "json":
        document = {
            "model": spec.name, "source": spec.source, "system": kind, "prompt": prompt_tokens,
            "speculative": None if speculation is None else {
                "draft": speculation.draft.name, "tokens": speculation.tokens,
                "acceptance": speculation.acceptance},
            "rows": [dict(zip(names, row, strict=True)) for row in rows],
        }
        click.echo(json.dumps(document))
    elif fmt == "csv":
        write_csv(sys.stdout, names, rows)
    else:
        title = spec.name + ("" if kind == "wafer" else f", on {hardware.name}s")
        if speculation is not None:
            title += (f", speculative: {speculation.draft.name} x{speculation.tokens}, "
                      f"acceptance {speculation.acceptance:g}")
        print_rows(names, rows, title=title)
