"""The reference docs cover what the code has: every scenario key, every KPI."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from twin.engine import simulate
from twin.scenario import Scenario

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_keys(annotation, f"{key}."))
        else:
            keys.append(key)
    return keys


def test_every_scenario_key_is_documented() -> None:
    text = (DOCS / "scenarios.md").read_text()
    documented = set(re.findall(r"`([a-z_.A-Z]+)`", text))
    for key in _keys(Scenario):
        if key in ("components", "spares"):
            continue  # documented per entry as components.NAME.* and spares.PART.*
        assert key in documented, f"docs/scenarios.md does not document {key}"
    for field in Scenario.model_fields["components"].annotation.__args__[1].model_fields:
        assert f"components.NAME.{field}" in text, field
    for field in Scenario.model_fields["spares"].annotation.__args__[1].model_fields:
        assert f"spares.PART.{field}" in text, field


def test_every_kpi_is_documented() -> None:
    text = (DOCS / "kpis.md").read_text()
    names = set(re.findall(r"`([a-z_.<>]+)`", text))
    kpis = simulate(Scenario(hall={"rows": 2}), until=24.0 * 60).kpis
    classes = set(Scenario().components) | set(Scenario().spares) | {"wafer", "cores", "thermal"}
    for name in kpis:
        parts = name.split(".")
        generic = {
            ".".join(p if p not in classes or i == 0 else f"<{kind}>" for i, p in enumerate(parts))
            for kind in ("class", "part", "cause")
        }
        assert name in names or generic & names, f"docs/kpis.md does not define {name}"
