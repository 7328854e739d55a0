"""docs/kpis.md: its KPI table is one table (every row a row, no paragraph inside
it) and lists the KPIs a run has, zeros included."""

from __future__ import annotations

import re
from pathlib import Path

from twin.engine import simulate
from twin.scenario import Scenario

KPIS_MD = Path(__file__).resolve().parents[1] / "docs" / "kpis.md"


def kpi_table() -> list[str]:
    """The lines of the first table: from its header to the first line that is not a
    table row (a paragraph between rows would end the table in Markdown)."""
    lines = KPIS_MD.read_text().splitlines()
    start = lines.index("| KPI | unit | definition |")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_kpi_table_is_one_table_that_names_every_kpi_a_run_has():
    names = {re.match(r"\| `([^`]+)`", row).group(1) for row in kpi_table()}  # type: ignore[union-attr]
    kpis = simulate(Scenario(hall={"rows": 1, "racks_per_row": 1}), until=24.0).kpis
    classes = {*Scenario().components, *Scenario().spares}
    causes = {*Scenario().components, "wafer", "cores", "thermal"}
    for name in kpis:
        family, _, last = name.rpartition(".")
        generic = {f"{family}.<class>" if last in classes else name,
                   f"{family}.<part>" if last in classes else name,
                   f"{family}.<cause>" if last in causes else name}
        assert name in names or generic & names, f"no row of the KPI table defines {name}"
    for family in ("downtime_h", "outages"):
        assert {f"{family}.{cause}" for cause in causes} <= kpis.keys()  # zeros included
