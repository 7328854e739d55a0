"""The PostgreSQL role `twin query` runs ad-hoc SQL as: it can read the store, nothing else.

Migrations create it (revision 0005) and grant it each relation of the store
by name, never a whole schema, so that other tables in the schema stay
private; a revision that adds a table or a view grants it with
`grant_sql`. Roles belong to the whole server: every store on a server
shares this one, which can read each of them and write none.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["READER_ROLE", "create_role_sql", "grant_sql", "revoke_sql"]

READER_ROLE = "wafertwin_reader"


def create_role_sql() -> str:
    """Create the role unless it exists; a user that may not create roles gets a notice.

    Two stores migrating at once may both try: the loser's "already exists"
    (raised as duplicate_object or, in a race, unique_violation) is no error.
    """
    return f"""
DO $create$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
        CREATE ROLE {READER_ROLE} LOGIN NOINHERIT
            NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'role {READER_ROLE} not created (no CREATEROLE); see docs/store.md';
END
$create$
"""


def _each(statement: str, relations: Iterable[str]) -> str:
    return "\n".join(
        f"EXECUTE format('{statement}', current_schema(), '{name}');" for name in relations
    )


def _if_role(body: str) -> str:
    return f"""
DO $grant$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
{body}
    END IF;
END
$grant$
"""


def grant_sql(relations: Iterable[str]) -> str:
    """USAGE on the current schema and SELECT on `relations` to the role, if it exists."""
    usage = f"EXECUTE format('GRANT USAGE ON SCHEMA %I TO {READER_ROLE}', current_schema());"
    return _if_role(usage + "\n" + _each(f"GRANT SELECT ON %I.%I TO {READER_ROLE}", relations))


def revoke_sql(relations: Iterable[str]) -> str:
    """Take back what `grant_sql` gave on this schema (the role stays: others share it)."""
    usage = f"EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {READER_ROLE}', current_schema());"
    return _if_role(_each(f"REVOKE SELECT ON %I.%I FROM {READER_ROLE}", relations) + "\n" + usage)
