"""Connection names NFKC-normalised and compared ignoring case; folder paths and remote
base paths canonical (storage.paths); no control characters in any base path.

Existing rows are rewritten first; a row that cannot be (a path with `..`, two folders of
one company that become one path, two names that become equal) stops the migration with
the rows named (storage/migrations/_canonical.py).
"""

import django.db.models.functions.text
from django.db import migrations, models

import storage.fields
from storage.migrations._canonical import name_of, path_of, rewrite
from storage.paths import canonical_path, reject_control_characters


def connection_base_path(row):
    if row.base_path is None:
        return None
    if row.provider == "local_disk":  # a filesystem path: kept as it is
        return reject_control_characters(row.base_path)
    return canonical_path(row.base_path)


def canonicalize(apps, schema_editor):
    StorageConnection = apps.get_model("storage", "StorageConnection")
    StorageFolder = apps.get_model("storage", "StorageFolder")
    db = schema_editor.connection.alias
    rewrite(StorageConnection, "name", name_of("name"), unique_within=(), ignore_case=True, using=db)
    rewrite(StorageConnection, "base_path", connection_base_path, using=db)
    rewrite(StorageFolder, "path", path_of("path", allow_root=False), unique_within=("company_id",), using=db)


class Migration(migrations.Migration):

    dependencies = [
        ('storage', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(canonicalize, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='storageconnection',
            name='metadata',
            field=models.JSONField(blank=True, default=dict, validators=[storage.fields.storable_json_object]),
        ),
        migrations.AlterField(
            model_name='storageconnection',
            name='name',
            field=storage.fields.NameField(max_length=255),
        ),
        migrations.AlterField(
            model_name='storagefolder',
            name='path',
            field=storage.fields.CanonicalPathField(allow_root=False, max_length=1024),
        ),
        migrations.AddConstraint(
            model_name='storageconnection',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('name'), name='storage_connection_name_unique_ignoring_case', violation_error_message='A storage connection with this name already exists (names are compared ignoring case).'),
        ),
        migrations.AddConstraint(
            model_name='storageconnection',
            constraint=models.CheckConstraint(condition=models.Q(('base_path__isnull', True), models.Q(models.Q(('base_path__regex', '[\\x01-\\x1f\\x7f-\\x9f]'), _negated=True), models.Q(('provider', 'local_disk'), models.Q(('base_path__regex', '^(/|(/[^/\\\\\\x01-\\x1f\\x7f-\\x9f]+)+)$'), models.Q(('base_path__regex', '/\\.\\.?(/|$)'), _negated=True)), _connector='OR')), _connector='OR'), name='base_path_canonical_unless_local'),
        ),
        migrations.AddConstraint(
            model_name='storagefolder',
            constraint=models.CheckConstraint(condition=models.Q(('path__regex', '^(/[^/\\\\\\x01-\\x1f\\x7f-\\x9f]+)+$'), models.Q(('path__regex', '/\\.\\.?(/|$)'), _negated=True)), name='folder_path_canonical'),
        ),
    ]
