"""SQL store for runs, events, metrics and KPIs (SQLite by default, PostgreSQL by URL)."""
