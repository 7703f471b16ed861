"""An exact count of companies kept by PostgreSQL itself (companies.models.CompanyQuerySet.count).

The list's exact `total` and the admin paginator's count were a count(*) over the whole table:
about 1 ms at 10,000 companies, tens of ms at 1,000,000 (bench/ --sizes). Statement triggers
add each INSERT's and DELETE's row count to a counter table in the same transaction, so a
snapshot sees the counter and the rows alike: the sum is exactly what count(*) would say,
including the transaction's own uncommitted rows. The increments go to one of 64 slots
picked by the backend's pid, so concurrent creates on other connections do not queue on one
row's lock. TRUNCATE resets it. Not a Django model: flush and test serialization leave it to
the triggers. PostgreSQL only; SQLite counts the rows.
"""

from django.db import migrations

CREATE = [
    "CREATE TABLE companies_company_rows (slot smallint PRIMARY KEY, n bigint NOT NULL)",
    """
    CREATE FUNCTION companies_company_rows_add() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE delta bigint;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT count(*) INTO delta FROM new_rows;
        ELSE
            SELECT -count(*) INTO delta FROM old_rows;
        END IF;
        IF delta <> 0 THEN
            INSERT INTO companies_company_rows (slot, n) VALUES (mod(pg_backend_pid(), 64), delta)
            ON CONFLICT (slot) DO UPDATE SET n = companies_company_rows.n + EXCLUDED.n;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION companies_company_rows_reset() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM companies_company_rows;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER companies_company_rows_insert AFTER INSERT ON companies_company"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION companies_company_rows_add()",
    "CREATE TRIGGER companies_company_rows_delete AFTER DELETE ON companies_company"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION companies_company_rows_add()",
    "CREATE TRIGGER companies_company_rows_truncate AFTER TRUNCATE ON companies_company"
    " FOR EACH STATEMENT EXECUTE FUNCTION companies_company_rows_reset()",
    # The rows already there; no write may slip in between (the migration's transaction holds the lock).
    "LOCK TABLE companies_company IN SHARE MODE",
    "INSERT INTO companies_company_rows (slot, n) SELECT 0, count(*) FROM companies_company",
]
DROP = [
    "DROP TRIGGER IF EXISTS companies_company_rows_insert ON companies_company",
    "DROP TRIGGER IF EXISTS companies_company_rows_delete ON companies_company",
    "DROP TRIGGER IF EXISTS companies_company_rows_truncate ON companies_company",
    "DROP FUNCTION IF EXISTS companies_company_rows_add()",
    "DROP FUNCTION IF EXISTS companies_company_rows_reset()",
    "DROP TABLE IF EXISTS companies_company_rows",
]


def create_counter(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def drop_counter(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("companies", "0005_canonical_names_and_storage_paths")]

    operations = [migrations.RunPython(create_counter, drop_counter, elidable=False)]
