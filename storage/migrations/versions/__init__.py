"""Schema revisions, oldest first (0001 the first schema, 0002 sweeps, metrics, views,
0003 events indexed by run alone, 0004 run provenance, 0005 the PostgreSQL reader role)."""
