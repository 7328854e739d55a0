"""The model catalogue: open-weight models and their published architecture.

The shipped models live in `models.toml` beside this module, each with the
URL of the config or paper its figures come from. A scenario may add its own
models (`catalogue(extra)`); every entry, shipped or added, is checked here,
so the rest of `twin.compute` can trust a `ModelSpec`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["ModelSpec", "catalogue", "draft_for", "MODELS_FILE"]

MODELS_FILE = Path(__file__).with_name("models.toml")


@dataclass(frozen=True)
class ModelSpec:
    """One model: sizes as published (counts of parameters, widths, heads)."""

    name: str
    params: float  # all parameters: what SRAM must hold
    active_params: float  # parameters used per token: what a token computes with
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int  # feed-forward width, of one expert for a mixture of experts
    vocab: int
    experts: int  # routed experts per MoE layer; 1 for a dense model
    active_experts: int  # routed experts a token uses
    source: str  # where the figures were published
    tied: bool = False  # the output projection shares the input embedding's weights

    @property
    def moe(self) -> bool:
        """A mixture of experts: a token uses only some of the experts (a model whose
        tokens use every expert computes with all its weights, as a dense one)."""
        return self.experts > self.active_experts

    @property
    def embedding_params(self) -> int:
        """Parameters of the input embedding, and of the output projection."""
        return self.vocab * self.hidden

    @property
    def body_params(self) -> float:
        """Parameters of the transformer layers: all but embedding and output projection."""
        return self.params - self.embedding_params * (1 if self.tied else 2)

    @property
    def body_active(self) -> float:
        """Parameters of the layers a token uses."""
        return self.active_params - self.embedding_params * (1 if self.tied else 2)

    @property
    def kv_values_per_token(self) -> int:
        """Key and value entries one token adds to the cache, over all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim


_INTEGERS = ("layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "experts",
             "active_experts")
_FIELDS = tuple(f.name for f in fields(ModelSpec) if f.name not in ("name", "tied"))


def _spec(name: str, entry: Mapping[str, Any]) -> ModelSpec:
    """A checked `ModelSpec`; ValueError naming the model and field otherwise."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"model {name!r}: expected a table of fields, got {type(entry).__name__}")
    unknown = sorted(set(entry) - {*_FIELDS, "tied"})
    if unknown:
        raise ValueError(f"model {name!r}: unknown field {unknown[0]!r}")
    missing = [key for key in _FIELDS if key not in entry]
    if missing:
        raise ValueError(f"model {name!r}: missing field {missing[0]!r}")
    values: dict[str, Any] = {}
    for key in _FIELDS:
        value = entry[key]
        if key == "source":
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"model {name!r}: field 'source' must name where the figures "
                                 "were published")
        elif key in _INTEGERS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"model {name!r}: field {key!r} must be an integer >= 1, "
                                 f"got {value!r}")
        elif (isinstance(value, bool) or not isinstance(value, int | float)
              or not math.isfinite(value) or value <= 0):
            raise ValueError(f"model {name!r}: field {key!r} must be a positive number, "
                             f"got {value!r}")
        values[key] = value
    tied = entry.get("tied", False)
    if not isinstance(tied, bool):
        raise ValueError(f"model {name!r}: field 'tied' must be true or false, got {tied!r}")
    spec = ModelSpec(name=name, **values, tied=tied)
    _check_consistent(spec)
    return spec


def _check_consistent(spec: ModelSpec) -> None:
    problems = {
        "active_params": spec.active_params > spec.params or spec.body_active <= 0,
        "kv_heads": spec.heads % spec.kv_heads != 0,
        "active_experts": spec.active_experts > spec.experts,
    }
    if not spec.moe and spec.active_params != spec.params:
        problems["active_params"] = True  # a dense model uses all its parameters
    if spec.moe and (spec.active_params >= spec.params
                     or spec.body_active * spec.experts < spec.active_experts * spec.body_params):
        # fewer experts than all: fewer parameters; and the active ones at least the
        # active experts' share of the layers (else the part every token uses is negative)
        problems["active_params"] = True
    for key, bad in problems.items():
        if bad:
            raise ValueError(f"model {spec.name!r}: field {key!r} is inconsistent "
                             "(active_params <= params, equal for a dense model or one whose "
                             "tokens use every expert, less for a mixture of experts but at "
                             "least the active experts' share; more than the embedding and "
                             "output projection, vocab x hidden each; heads a multiple of "
                             "kv_heads; active_experts <= experts)")


@cache
def _shipped() -> dict[str, ModelSpec]:
    with MODELS_FILE.open("rb") as handle:
        data = tomllib.load(handle)
    return {name: _spec(name, entry) for name, entry in data["models"].items()}


def catalogue(extra: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, ModelSpec]:
    """The shipped models plus `extra` (name -> fields, as in models.toml), all checked.

    An extra model may not reuse a shipped name: a scenario that wants other
    figures for a known model gives it a name of its own.
    """
    models = dict(_shipped())
    for name, entry in (extra or {}).items():
        if name in models:
            raise ValueError(f"model {name!r}: already in the catalogue; choose another name")
        models[name] = _spec(name, entry)
    return models


def draft_for(model: ModelSpec, models: Mapping[str, ModelSpec]) -> ModelSpec | None:
    """The default draft model for speculative decoding of `model`: the smallest
    dense model of `models` with the same vocabulary (a draft must propose tokens
    the target can verify), at most a tenth of its size; None if there is none."""
    drafts = [m for m in models.values()
              if m.vocab == model.vocab and not m.moe and m.params * 10 <= model.params]
    return min(drafts, key=lambda m: m.params, default=None)
