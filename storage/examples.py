"""Example queries over the views (the `metrics` view included), valid on SQLite and PostgreSQL.

docs/store.md shows these verbatim and the tests run each of them on both
backends, so the documentation cannot drift from SQL that works.
"""

from __future__ import annotations

__all__ = ["EXAMPLES"]

EXAMPLES: dict[str, str] = {
    "availability_by_run": """
SELECT run_id, scenario, seed, availability
FROM v_availability
ORDER BY availability, run_id
""",
    "failures_by_cause": """
SELECT cause, SUM(failures) AS failures, SUM(downtime_h) AS downtime_h
FROM v_failures_by_cause
GROUP BY cause
ORDER BY failures DESC, cause
""",
    "capacity_lost_by_cause": """
SELECT cause, AVG(capacity_lost_system_h) AS mean_system_h_per_run
FROM v_capacity_lost_by_cause
GROUP BY cause
ORDER BY mean_system_h_per_run DESC, cause
""",
    "mean_power_by_scope": """
SELECT m.run_id, m.scope,
       SUM(m.value * m.bucket) / SUM(CASE WHEN m.value IS NOT NULL THEN m.bucket END) AS mean_kw,
       MAX(m.value) AS peak_kw
FROM metrics m
JOIN runs r ON r.id = m.run_id
WHERE r.status = 'completed' AND m.name = 'it_power_kw'
GROUP BY m.run_id, m.scope
ORDER BY m.run_id, m.scope
""",
    "nightly_trend": """
SELECT night, scenario, mean_value AS availability, runs
FROM v_kpi_trend
WHERE kpi = 'availability'
ORDER BY night, scenario
""",
    "tokens_lost_by_cause": """
SELECT cause, SUM(tokens) AS tokens_lost
FROM v_serving_tokens
WHERE kind = 'lost'
GROUP BY cause
ORDER BY tokens_lost DESC, cause
""",
    "serving_by_tenant": """
SELECT run_id, tenant,
       SUM(CASE WHEN kind = 'demanded' THEN tokens END) AS demanded,
       SUM(CASE WHEN kind = 'served' THEN tokens END) AS served,
       SUM(CASE WHEN kind = 'goodput' THEN tokens END) AS goodput,
       SUM(CASE WHEN kind = 'lost' THEN tokens END) AS lost
FROM v_serving_tokens
GROUP BY run_id, tenant
ORDER BY run_id, tenant
""",
    "runs_not_completed": """
SELECT r.id, s.name AS scenario, r.status, r.started, r.error
FROM runs r JOIN scenarios s ON s.id = r.scenario_id
WHERE r.status <> 'completed'
ORDER BY r.started DESC
""",
}
EXAMPLES = {name: sql.strip() for name, sql in EXAMPLES.items()}
