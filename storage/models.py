from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from storage import credentials as credentials_at_rest
from storage.addresses import minio_endpoint_refusal
from storage.fields import CanonicalPathField, EncryptedJSONField, NameField, storable_json_object
from storage.paths import canonical_path, canonical_path_q, no_control_characters_q, reject_control_characters
from storage.roots import outside_roots


class Provider(models.TextChoices):
    LOCAL_DISK = "local_disk", "Local disk"
    MINIO = "minio", "MinIO"
    YANDEX_DISK = "yandex_disk", "Yandex Disk"


class TestStatus(models.TextChoices):
    SUCCESS = "success", "Success"
    ERROR = "error", "Error"


def connection_base_path(provider: str, base_path: str | None) -> str | None:
    """A connection's base_path as stored: a remote provider's in canonical form (storage.paths),
    a local_disk one as given (an absolute filesystem path), neither with control characters.
    ValueError says what is wrong."""
    if base_path is None:
        return None
    if provider == Provider.LOCAL_DISK:
        return reject_control_characters(base_path)
    return canonical_path(base_path)


class StorageConnection(models.Model):
    """Where companies' files live. Credentials are write-only (never shown by the API or
    admin) and encrypted at rest (storage.credentials)."""

    name = NameField(max_length=255)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    base_path = models.CharField(max_length=1024, null=True, blank=True)
    credentials = EncryptedJSONField(default=dict, blank=True, validators=[storable_json_object])
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    last_tested_at = models.DateTimeField(null=True, blank=True, editable=False)
    test_status = models.CharField(max_length=32, choices=TestStatus.choices, null=True, blank=True, editable=False)
    test_error = models.TextField(null=True, blank=True, editable=False)
    metadata = models.JSONField(default=dict, blank=True, validators=[storable_json_object])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="storage_connection_name_unique_ignoring_case",
                violation_error_message="A storage connection with this name already exists"
                " (names are compared ignoring case).",
            ),
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_storage_connection"
            ),
            models.CheckConstraint(
                condition=~Q(provider=Provider.LOCAL_DISK) | (Q(base_path__isnull=False) & ~Q(base_path="")),
                name="local_disk_needs_base_path",
            ),
            models.CheckConstraint(
                condition=Q(base_path__isnull=True)
                | (
                    no_control_characters_q("base_path")
                    & (Q(provider=Provider.LOCAL_DISK) | canonical_path_q("base_path"))
                ),
                name="base_path_canonical_unless_local",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def decrypted_credentials(self) -> dict[str, Any]:
        """The credentials in clear, for the code that uses them (the check, key rotation) and
        nowhere else; UnreadableCredentials when no configured key decrypts them."""
        return credentials_at_rest.decrypted(self.credentials)

    def clean(self) -> None:
        try:
            self.base_path = connection_base_path(self.provider, self.base_path)
        except ValueError as exc:
            raise ValidationError({"base_path": f"Path {exc}."}) from None
        # The admin's form errors; the API's 422s are the service's (storage.services).
        if self.provider == Provider.LOCAL_DISK and self.base_path and (problem := outside_roots(self.base_path)):
            raise ValidationError({"base_path": problem})
        # New credentials only (stored ones stay encrypted): a MinIO endpoint checks may not reach.
        if self.provider == Provider.MINIO and isinstance(self.credentials, dict):
            if problem := minio_endpoint_refusal(self.credentials):
                raise ValidationError({"credentials": problem})


class FolderType(models.TextChoices):
    PORTRAITS = "portraits", "Portraits"
    VIDEOS = "videos", "Videos"
    MARKERS = "markers", "Markers"
    CUSTOM = "custom", "Custom"


class StorageFolder(models.Model):
    """A company's folder on its storage connection."""

    company = models.ForeignKey("companies.Company", on_delete=models.PROTECT, related_name="folders")
    name = models.CharField(max_length=255)
    path = CanonicalPathField(max_length=1024, allow_root=False)
    folder_type = models.CharField(max_length=32, choices=FolderType.choices, default=FolderType.CUSTOM)
    files_count = models.PositiveIntegerField(default=0)
    total_size_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path", "id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "path"], name="folder_path_unique_per_company"),
            models.CheckConstraint(condition=canonical_path_q("path", allow_root=False), name="folder_path_canonical"),
        ]

    def __str__(self) -> str:
        return self.path
