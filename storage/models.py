from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from storage.providers.local_disk import outside_roots


class Provider(models.TextChoices):
    LOCAL_DISK = "local_disk", "Local disk"
    MINIO = "minio", "MinIO"
    YANDEX_DISK = "yandex_disk", "Yandex Disk"


class TestStatus(models.TextChoices):
    SUCCESS = "success", "Success"
    ERROR = "error", "Error"


class StorageConnection(models.Model):
    """Where companies' files live. Credentials are write-only: never shown by the API or admin."""

    name = models.CharField(max_length=255, unique=True)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    base_path = models.CharField(max_length=1024, null=True, blank=True)
    credentials = models.JSONField(default=dict, blank=True)
    is_default = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    last_tested_at = models.DateTimeField(null=True, blank=True, editable=False)
    test_status = models.CharField(max_length=32, choices=TestStatus.choices, null=True, blank=True, editable=False)
    test_error = models.TextField(null=True, blank=True, editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_storage_connection"
            ),
            models.CheckConstraint(
                condition=~Q(provider=Provider.LOCAL_DISK) | (Q(base_path__isnull=False) & ~Q(base_path="")),
                name="local_disk_needs_base_path",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # The admin's form error; the API's 422 is the service's (storage.services).
        if self.provider == Provider.LOCAL_DISK and self.base_path and (problem := outside_roots(self.base_path)):
            raise ValidationError({"base_path": problem})


class FolderType(models.TextChoices):
    PORTRAITS = "portraits", "Portraits"
    VIDEOS = "videos", "Videos"
    MARKERS = "markers", "Markers"
    CUSTOM = "custom", "Custom"


class StorageFolder(models.Model):
    """A company's folder on its storage connection."""

    company = models.ForeignKey("companies.Company", on_delete=models.PROTECT, related_name="folders")
    name = models.CharField(max_length=255)
    path = models.CharField(max_length=1024)
    folder_type = models.CharField(max_length=32, choices=FolderType.choices, default=FolderType.CUSTOM)
    files_count = models.PositiveIntegerField(default=0)
    total_size_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["path", "id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "path"], name="folder_path_unique_per_company"),
        ]

    def __str__(self) -> str:
        return self.path
