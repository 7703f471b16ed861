"""Storage credentials encrypted at rest (storage.credentials, Fernet).

The plaintext jsonb column is replaced by a text column of ciphertext: a new column is
filled from the old one, the old one dropped, the new one renamed. Reversible: migrating
back to 0002 decrypts into a jsonb column again.
"""

from django.db import migrations, models

import storage.credentials
import storage.fields


def encrypt(apps, schema_editor):
    StorageConnection = apps.get_model("storage", "StorageConnection")
    for connection in StorageConnection.objects.using(schema_editor.connection.alias).order_by("pk"):
        connection.encrypted_credentials = connection.credentials or {}
        connection.save(update_fields=["encrypted_credentials"])


def decrypt(apps, schema_editor):
    StorageConnection = apps.get_model("storage", "StorageConnection")
    for connection in StorageConnection.objects.using(schema_editor.connection.alias).order_by("pk"):
        connection.credentials = storage.credentials.decrypted(connection.encrypted_credentials)
        connection.save(update_fields=["credentials"])


class Migration(migrations.Migration):
    dependencies = [("storage", "0002_canonical_names_and_paths")]

    operations = [
        migrations.AddField(
            model_name="storageconnection",
            name="encrypted_credentials",
            field=storage.fields.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.RunPython(encrypt, decrypt),
        migrations.RemoveField(model_name="storageconnection", name="credentials"),
        migrations.RenameField(
            model_name="storageconnection", old_name="encrypted_credentials", new_name="credentials"
        ),
        migrations.AlterField(
            model_name="storageconnection",
            name="credentials",
            field=storage.fields.EncryptedJSONField(
                blank=True, default=dict, validators=[storage.fields.storable_json_object]
            ),
        ),
    ]
