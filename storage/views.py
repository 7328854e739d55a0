"""SQL views over the store, written for SQLite and PostgreSQL.

`metrics` shows the metric series of every run (whatever its status) in long
form, one row per bucket. The `v_` views answer the common questions and
count completed runs only: a failed or interrupted run keeps its rows for
inspection but never enters an aggregate. The `v_` SQL is shared by both
backends except the one expression that differs (the calendar date of a
timestamp); unnesting a JSON array differs more, so `metrics` has one text
per dialect. Migrations create the views from `view_sql`, and a revision that
changes a view replaces it (PostgreSQL) or drops and recreates it (SQLite).
A run is named in the views by `runs.name` from revision 0004 on.

`v_serving_tokens` reads the `serving.tokens.*` KPIs of runs with serving.
Event kinds the views rely on: ``failure`` (counted), ``outage`` (value = its
duration in hours, the whole system lost) and ``throttle`` (value = capacity
lost in system-hours).
"""

from __future__ import annotations

__all__ = ["VIEW_NAMES", "CURRENT", "view_sql", "create_views_sql", "drop_views_sql"]

# date(started) in SQLite yields 'YYYY-MM-DD'; CAST(... AS DATE) there would
# parse the text as a number, so each dialect gets its own spelling.
_NIGHT = {"sqlite": "date(r.started)", "postgresql": "CAST(r.started AS DATE)"}

_AVAILABILITY = """
SELECT r.id AS run_id, s.name AS scenario, r.seed AS seed, r.started AS started,
       k.value AS availability
FROM runs r
JOIN scenarios s ON s.id = r.scenario_id
JOIN kpis k ON k.run_id = r.id AND k.name = 'availability'
WHERE r.status = 'completed'
"""

# The i-th value (0-based) of a series covers [t0 + i*bucket, min(t0 + (i+1)*bucket, t_end)):
# the same arithmetic as `MetricSeries.metrics()`, so the view gives back the
# very floats the engine wrote. An infinite value is written as the JSON
# number 1e999 (SQLite reads it as infinity; PostgreSQL needs telling).
_METRICS_SQLITE = """
SELECT m.run_id AS run_id,
       m.t0 + j.key * m.bucket AS t,
       MIN(m.bucket, m.t_end - (m.t0 + j.key * m.bucket)) AS bucket,
       m.scope AS scope, m.name AS name,
       j.value AS value
FROM metric_series m, json_each(m.series) j
"""

_METRICS_POSTGRESQL = """
SELECT m.run_id AS run_id,
       m.t0 + (j.ord - 1) * m.bucket AS t,
       LEAST(m.bucket, m.t_end - (m.t0 + (j.ord - 1) * m.bucket)) AS bucket,
       m.scope AS scope, m.name AS name,
       CASE j.value
           WHEN '1e999' THEN CAST('Infinity' AS DOUBLE PRECISION)
           WHEN '-1e999' THEN CAST('-Infinity' AS DOUBLE PRECISION)
           ELSE CAST(j.value AS DOUBLE PRECISION)
       END AS value
FROM metric_series m
CROSS JOIN LATERAL
     json_array_elements_text(CAST(m.series AS json)) WITH ORDINALITY AS j(value, ord)
"""

_METRICS = {"sqlite": _METRICS_SQLITE, "postgresql": _METRICS_POSTGRESQL}

_FAILURES_BY_CAUSE = """
SELECT e.run_id AS run_id, e.cause AS cause,
       SUM(CASE WHEN e.kind = 'failure' THEN 1 ELSE 0 END) AS failures,
       COALESCE(SUM(CASE WHEN e.kind = 'outage' THEN e.value END), 0.0) AS downtime_h
FROM events e
JOIN runs r ON r.id = e.run_id
WHERE r.status = 'completed' AND e.kind IN ('failure', 'outage')
GROUP BY e.run_id, e.cause
"""

# An outage loses its whole system for its duration; a throttle episode
# carries the capacity it lost (the integral of 1 - power fraction).
_CAPACITY_LOST_BY_CAUSE = """
SELECT e.run_id AS run_id, e.cause AS cause,
       COALESCE(SUM(e.value), 0.0) AS capacity_lost_system_h
FROM events e
JOIN runs r ON r.id = e.run_id
WHERE r.status = 'completed' AND e.kind IN ('outage', 'throttle')
GROUP BY e.run_id, e.cause
"""

# From 0004 a run is named by `runs.name` (its label, or its scenario's name,
# marked when `--set` changed it), so a what-if run is not averaged as its base.
_AVAILABILITY_0004 = """
SELECT r.id AS run_id, r.name AS scenario, r.seed AS seed, r.started AS started,
       k.value AS availability
FROM runs r
JOIN kpis k ON k.run_id = r.id AND k.name = 'availability'
WHERE r.status = 'completed'
"""

_KPI_TREND = """
SELECT {night} AS night, s.name AS scenario, k.name AS kpi,
       AVG(k.value) AS mean_value, COUNT(k.value) AS runs
FROM runs r
JOIN scenarios s ON s.id = r.scenario_id
JOIN kpis k ON k.run_id = r.id
WHERE r.status = 'completed'
GROUP BY {night}, s.name, k.name
"""

_BODIES_0002: dict[str, str | dict[str, str]] = {
    "metrics": _METRICS,
    "v_availability": _AVAILABILITY,
    "v_failures_by_cause": _FAILURES_BY_CAUSE,
    "v_capacity_lost_by_cause": _CAPACITY_LOST_BY_CAUSE,
    "v_kpi_trend": _KPI_TREND,
}

_KPI_TREND_0004 = """
SELECT {night} AS night, r.name AS scenario, k.name AS kpi,
       AVG(k.value) AS mean_value, COUNT(k.value) AS runs
FROM runs r
JOIN kpis k ON k.run_id = r.id
WHERE r.status = 'completed'
GROUP BY {night}, r.name, k.name
"""

_BODIES_0004 = {
    **_BODIES_0002,
    "v_availability": _AVAILABILITY_0004,
    "v_kpi_trend": _KPI_TREND_0004,
}

# Tokens of each tenant of a run with serving, from its `serving.tokens.*` KPIs
# (docs/kpis.md): kind demanded, served, goodput or lost, and for lost the root
# cause (`serving.tokens.lost.<tenant>.<cause>`; tenant names hold no dot). The
# name is split with the position of a dot, whose function differs by dialect.
_POSITION = {"sqlite": "instr", "postgresql": "strpos"}

_SERVING_TOKENS = """
SELECT run_id, scenario,
       CASE WHEN dot > 0 THEN substr(tail, 1, dot - 1) ELSE tail END AS tenant,
       kind,
       CASE WHEN dot > 0 THEN substr(tail, dot + 1) END AS cause,
       tokens
FROM (
    SELECT run_id, scenario, kind, tail, {pos}(tail, '.') AS dot, tokens
    FROM (
        SELECT r.id AS run_id, r.name AS scenario,
               substr(k.name, 16, {pos}(substr(k.name, 16), '.') - 1) AS kind,
               substr(k.name, 16 + {pos}(substr(k.name, 16), '.')) AS tail,
               k.value AS tokens
        FROM runs r
        JOIN kpis k ON k.run_id = r.id
        WHERE r.status = 'completed' AND k.name LIKE 'serving.tokens.%'
    ) named
) split
"""

_BODIES_0006 = {
    **_BODIES_0004,
    "v_serving_tokens": {d: _SERVING_TOKENS.format(pos=f) for d, f in _POSITION.items()},
}

_BY_REVISION = {"0002": _BODIES_0002, "0004": _BODIES_0004, "0006": _BODIES_0006}
CURRENT = "0006"

VIEW_NAMES = tuple(_BY_REVISION[CURRENT])


def view_sql(dialect: str, revision: str = CURRENT) -> dict[str, str]:
    """The SELECT behind each view for `dialect` ('sqlite' or 'postgresql')."""
    if dialect not in _NIGHT:
        raise ValueError(f"no view SQL for dialect {dialect!r}")
    out = {}
    for name, body in _BY_REVISION[revision].items():
        text = body[dialect] if isinstance(body, dict) else body.format(night=_NIGHT[dialect])
        out[name] = text.strip()
    return out


def create_views_sql(dialect: str, revision: str = CURRENT, *, replace: bool = False) -> list[str]:
    """CREATE VIEW statements for the views of `revision` (none depends on another).

    `replace` (PostgreSQL): CREATE OR REPLACE, which keeps the grants on a view
    whose columns keep their names and types.
    """
    verb = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW"
    return [f"{verb} {name} AS\n{body}" for name, body in view_sql(dialect, revision).items()]


def drop_views_sql(revision: str = CURRENT) -> list[str]:
    """DROP VIEW statements for the views of `revision` (safe when one is missing)."""
    return [f"DROP VIEW IF EXISTS {name}" for name in reversed(tuple(_BY_REVISION[revision]))]
