"""SQL views over the store, written for SQLite and PostgreSQL.

`metrics` shows the metric series of every run (whatever its status) in long
form, one row per bucket. The `v_` views answer the common questions and
count completed runs only (`v_events` aside): a failed or interrupted run keeps its rows for
inspection but never enters an aggregate. The `v_` SQL is shared by both
backends except the one expression that differs (the calendar date of a
timestamp); unnesting a JSON array differs more, so `metrics` has one text
per dialect. Migrations create the views from `view_sql`, and a revision that
changes a view replaces it (PostgreSQL) or drops and recreates it (SQLite).
A run is named in the views by `runs.name` from revision 0004 on. The sweep
views of 0006 (`v_sweep_kpis`, `v_sweep_differences`, `v_nightly_changes`,
`v_events`) count only runs of sweeps except `v_events` (every event, as
`events`); `v_nightly_changes` reads `v_sweep_kpis`, so views are created in
their listed order and dropped in reverse.

`v_serving_tokens` (0007) reads the `serving.tokens.*` KPIs of runs with serving.
Event kinds the views rely on: ``failure`` (counted), ``outage`` (value = its
duration in hours, the whole system lost) and ``throttle`` (value = capacity
lost in system-hours).
"""

from __future__ import annotations

__all__ = [
    "VIEW_NAMES", "SWEEP_VIEWS", "CURRENT", "view_sql", "create_views_sql", "drop_views_sql",
]

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

# -- 0006: sweeps. The same SQL on both backends: SQLite is given STDDEV_SAMP,
# SQRT and SPLIT_PART on every connection (storage/sqlite_functions.py), and
# the t quantile of a 95 % interval comes from the table `t_quantiles` (df up
# to 1000; past it, two terms of its expansion in 1/df, within 3e-6).
_T975 = """CASE WHEN {n} > 1 THEN COALESCE({q}.t975, 1.959964 + 2.372272 / ({n} - 1)) END"""

# A sweep's KPIs per level: what ran is the level's scenario hash and overrides.
_SWEEP_KPIS = f"""
SELECT a.sweep_id AS sweep_id, a.level AS level, a.scenario_hash AS scenario_hash,
       a.overrides AS overrides, a.name AS name, a.kpi AS kpi, a.n AS n,
       a.mean AS mean, a.sd AS sd,
       a.sd / SQRT(a.n) * {_T975.format(n="a.n", q="q")} AS half_width
FROM (
    SELECT r.sweep_id AS sweep_id, r.level AS level, s.hash AS scenario_hash,
           r.overrides AS overrides, r.name AS name, k.name AS kpi,
           COUNT(k.value) AS n, AVG(k.value) AS mean, STDDEV_SAMP(k.value) AS sd
    FROM runs r
    JOIN scenarios s ON s.id = r.scenario_id
    JOIN kpis k ON k.run_id = r.id
    WHERE r.status = 'completed' AND r.sweep_id IS NOT NULL
    GROUP BY r.sweep_id, r.level, s.hash, r.overrides, r.name, k.name
) a
LEFT JOIN t_quantiles q ON q.df = a.n - 1
"""

# Paired differences (level_b - level_a) between the levels of a sweep: replication
# i of every level shares its seed, so the pairs are common random numbers.
_SWEEP_DIFFERENCES = f"""
SELECT d.sweep_id AS sweep_id, d.kpi AS kpi, d.level_a AS level_a, d.level_b AS level_b,
       d.n AS n, d.mean_difference AS mean_difference, d.sd_difference AS sd_difference,
       d.sd_difference / SQRT(d.n) * {_T975.format(n="d.n", q="q")} AS half_width
FROM (
    SELECT a.sweep_id AS sweep_id, ka.name AS kpi, a.level AS level_a, b.level AS level_b,
           COUNT(kb.value - ka.value) AS n, AVG(kb.value - ka.value) AS mean_difference,
           STDDEV_SAMP(kb.value - ka.value) AS sd_difference
    FROM runs a
    JOIN runs b ON b.sweep_id = a.sweep_id AND b.replication = a.replication
                   AND b.level > a.level
    JOIN kpis ka ON ka.run_id = a.id
    JOIN kpis kb ON kb.run_id = b.id AND kb.name = ka.name
    WHERE a.status = 'completed' AND b.status = 'completed'
    GROUP BY a.sweep_id, ka.name, a.level, b.level
) d
LEFT JOIN t_quantiles q ON q.df = d.n - 1
"""

# Each nightly sweep's KPIs against the latest earlier night of the same entry (label),
# by night, not by id (a night run later, --night in the past, is compared with its own past):
# flagged when the means differ by more than the root sum of squares of the two
# half-widths (the 95 % interval of a difference of two independent means).
_NIGHTLY_CHANGES = """
WITH nightly AS (
    SELECT w.id AS sweep_id, w.label AS label, w.night AS night,
           w.code_version AS code_version, v.kpi AS kpi, v.n AS n, v.mean AS mean,
           v.half_width AS half_width
    FROM sweeps w
    JOIN v_sweep_kpis v ON v.sweep_id = w.id AND v.level = 0
    WHERE w.night IS NOT NULL AND w.status = 'completed'
),
nights AS (
    SELECT id AS sweep_id, label, night FROM sweeps
    WHERE night IS NOT NULL AND status = 'completed'
),
previous AS (
    SELECT c.sweep_id AS sweep_id,
           (SELECT p.sweep_id FROM nights p
            WHERE p.label = c.label AND p.night < c.night
            ORDER BY p.night DESC, p.sweep_id DESC LIMIT 1) AS previous_id
    FROM nights c
)
SELECT c.night AS night, c.label AS label, c.sweep_id AS sweep_id,
       c.code_version AS code_version, c.kpi AS kpi, c.n AS n, c.mean AS mean,
       c.half_width AS half_width, p.night AS previous_night,
       p.sweep_id AS previous_sweep_id, p.mean AS previous_mean,
       p.half_width AS previous_half_width, c.mean - p.mean AS change,
       CASE WHEN c.half_width IS NULL OR p.half_width IS NULL THEN NULL
            WHEN ABS(c.mean - p.mean) > SQRT(c.half_width * c.half_width
                                             + p.half_width * p.half_width) THEN 1
            ELSE 0 END AS flagged
FROM nightly c
LEFT JOIN previous x ON x.sweep_id = c.sweep_id
LEFT JOIN nightly p ON p.sweep_id = x.previous_id AND p.kpi = c.kpi
"""

# Events with the row and rack of their scope (`hall.row2.rack7.sys1.psu3`:
# `hall.row2`, `hall.row2.rack7`); NULL for a scope outside the racks (spares).
_EVENTS = """
SELECT e.id AS id, e.run_id AS run_id, e.t AS t, e.scope AS scope, e.kind AS kind,
       e.cause AS cause, e.value AS value,
       CASE WHEN SPLIT_PART(e.scope, '.', 2) LIKE 'row%'
            THEN SPLIT_PART(e.scope, '.', 1) || '.' || SPLIT_PART(e.scope, '.', 2)
       END AS row_scope,
       CASE WHEN SPLIT_PART(e.scope, '.', 2) LIKE 'row%'
                 AND SPLIT_PART(e.scope, '.', 3) LIKE 'rack%'
            THEN SPLIT_PART(e.scope, '.', 1) || '.' || SPLIT_PART(e.scope, '.', 2) || '.'
                 || SPLIT_PART(e.scope, '.', 3)
       END AS rack_scope
FROM events e
"""

# in creation order: v_nightly_changes reads v_sweep_kpis
SWEEP_VIEWS = ("v_sweep_kpis", "v_sweep_differences", "v_nightly_changes", "v_events")

_BODIES_0006 = {
    **_BODIES_0004,
    "v_sweep_kpis": _SWEEP_KPIS,
    "v_sweep_differences": _SWEEP_DIFFERENCES,
    "v_nightly_changes": _NIGHTLY_CHANGES,
    "v_events": _EVENTS,
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

_BODIES_0007 = {
    **_BODIES_0006,
    "v_serving_tokens": {d: _SERVING_TOKENS.format(pos=f) for d, f in _POSITION.items()},
}

_BY_REVISION = {
    "0002": _BODIES_0002, "0004": _BODIES_0004, "0006": _BODIES_0006, "0007": _BODIES_0007,
}
CURRENT = "0007"

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


def create_views_sql(
    dialect: str,
    revision: str = CURRENT,
    *,
    replace: bool = False,
    names: tuple[str, ...] | None = None,
) -> list[str]:
    """CREATE VIEW statements for the views of `revision` (or only `names` of them),
    in an order where a view comes after those it reads.

    `replace` (PostgreSQL): CREATE OR REPLACE, which keeps the grants on a view
    whose columns keep their names and types.
    """
    verb = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW"
    return [
        f"{verb} {name} AS\n{body}"
        for name, body in view_sql(dialect, revision).items()
        if names is None or name in names
    ]


def drop_views_sql(revision: str = CURRENT, *, names: tuple[str, ...] | None = None) -> list[str]:
    """DROP VIEW statements for the views of `revision` (or only `names` of them), those
    that read another first (safe when one is missing)."""
    return [
        f"DROP VIEW IF EXISTS {name}"
        for name in reversed(tuple(_BY_REVISION[revision]))
        if names is None or name in names
    ]
