"""Trigram indexes for company search (PostgreSQL only; SQLite keeps scanning).

`search` is a case-insensitive substring match on name or contact e-mail
(`icontains`), which Django sends to PostgreSQL as
`UPPER(column::text) LIKE UPPER('%term%')`. No B-tree helps a leading
wildcard, so every search scanned the whole table, twice (the count and the
page): 23 ms a query at 34,000 companies (bench/). A pg_trgm GIN index on
exactly that expression turns a term of three or more characters into an
index lookup. pg_trgm is a trusted extension: a database owner may create it.

fastupdate is off: new rows go straight into the index. With GIN's default
pending list (up to 4 MB, merged at vacuum), a table that had rows inserted
since its last vacuum makes the planner price the index above a sequential
scan, and searches scan again (bench: 2-worker search after the create
scenarios, 52-59 requests/s; a bitmap scan's cost estimate went 1,386 -> 66).
"""

from django.db import migrations

INDEXES = {
    "companies_company_name_trgm": "name",
    "companies_company_contact_email_trgm": "contact_email",
}


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for index, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {index} ON companies_company"
            f" USING gin (UPPER({column}::text) gin_trgm_ops) WITH (fastupdate = off)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for index in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {index}")


class Migration(migrations.Migration):
    dependencies = [("companies", "0003_seed_defaults")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
