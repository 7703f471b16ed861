"""Seed what the old service seeded: the "Local Storage" connection and the default company.

Idempotent: an existing default connection or default company is left as it is.
"""

from pathlib import Path

from django.conf import settings
from django.db import migrations

LOCAL_STORAGE_NAME = "Local Storage"
DEFAULT_COMPANY_NAME = "Default Company"


def seed_defaults(apps, schema_editor):
    StorageConnection = apps.get_model("storage", "StorageConnection")
    Company = apps.get_model("companies", "Company")
    db = schema_editor.connection.alias

    connection = StorageConnection.objects.using(db).filter(is_default=True).first()
    if connection is None:
        root = Path(settings.LOCAL_STORAGE_ROOT)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # the connection test will say what is wrong with the path
        connection, _ = StorageConnection.objects.using(db).get_or_create(
            name=LOCAL_STORAGE_NAME,
            defaults={"provider": "local_disk", "base_path": str(root), "is_default": True, "is_active": True},
        )
    if not Company.objects.using(db).filter(is_default=True).exists():
        Company.objects.using(db).create(
            name=DEFAULT_COMPANY_NAME,
            slug="default",
            is_default=True,
            storage_connection=connection,
            storage_path="default",
        )


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0002_initial"),
        ("storage", "0001_initial"),
    ]

    operations = [migrations.RunPython(seed_defaults, migrations.RunPython.noop)]
