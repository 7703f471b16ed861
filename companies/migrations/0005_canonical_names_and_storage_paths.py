"""Company names NFKC-normalised and storage paths canonical (storage.fields, storage.paths).

Existing rows are rewritten first; a row that cannot be (a path with `..`, two names that
become equal) stops the migration with the rows named (storage/migrations/_canonical.py).
"""

import django.db.models.functions.text
from django.db import migrations, models

import storage.fields
from storage.migrations._canonical import name_of, path_of, rewrite


def canonicalize(apps, schema_editor):
    Company = apps.get_model("companies", "Company")
    db = schema_editor.connection.alias
    rewrite(Company, "name", name_of("name"), unique_within=(), ignore_case=True, using=db)
    rewrite(Company, "storage_path", path_of("storage_path"), using=db)


class Migration(migrations.Migration):

    dependencies = [
        ('companies', '0004_search_trigram_indexes'),
        ('storage', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(canonicalize, migrations.RunPython.noop),
        migrations.AlterField(
            model_name='company',
            name='metadata',
            field=models.JSONField(blank=True, default=dict, validators=[storage.fields.storable_json_object]),
        ),
        migrations.AlterField(
            model_name='company',
            name='name',
            field=storage.fields.NameField(max_length=255),
        ),
        migrations.AlterField(
            model_name='company',
            name='storage_path',
            field=storage.fields.CanonicalPathField(blank=True, max_length=1024, null=True),
        ),
        migrations.AddConstraint(
            model_name='company',
            constraint=models.CheckConstraint(condition=models.Q(('storage_path__isnull', True), models.Q(('storage_path__regex', '^(/|(/[^/\\\\\\x01-\\x1f\\x7f-\\x9f]+)+)$'), models.Q(('storage_path__regex', '/\\.\\.?(/|$)'), _negated=True)), _connector='OR'), name='company_storage_path_canonical'),
        ),
        migrations.AlterConstraint(
            model_name='company',
            name='company_name_unique_ignoring_case',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('name'), name='company_name_unique_ignoring_case', violation_error_message='A company with this name already exists (names are compared ignoring case).'),
        ),
    ]
