from django.conf import settings
from django.db import connections, models
from django.db.models import Q
from django.db.models.functions import Lower

from storage.fields import CanonicalPathField, NameField, storable_json_object
from storage.paths import canonical_path_q


class SubscriptionTier(models.TextChoices):
    BASIC = "basic", "Basic"
    PRO = "pro", "Pro"
    ENTERPRISE = "enterprise", "Enterprise"


class CompanyQuerySet(models.QuerySet):
    def count(self) -> int:
        """Every company's count from the counter PostgreSQL keeps (migration 0006) instead of a
        count(*) over the table: the same number, at a cost that does not grow with the table.
        Any filter, join, grouping, slice or DISTINCT counts rows as Django does."""
        query = self.query
        unfiltered = (
            self._result_cache is None
            and not query.where
            and len(query.alias_map) <= 1
            and query.group_by is None
            and not query.distinct
            and not query.combinator
            and not query.is_sliced
        )
        connection = connections[self.db]
        if not unfiltered or connection.vendor != "postgresql":
            return super().count()
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(sum(n), 0) FROM companies_company_rows")
            return int(cursor.fetchone()[0])


class Company(models.Model):
    name = NameField(max_length=255)
    slug = models.SlugField(max_length=255, unique=True)
    contact_email = models.EmailField(max_length=255, null=True, blank=True)
    contact_phone = models.CharField(max_length=64, null=True, blank=True)
    telegram_chat_id = models.CharField(max_length=64, null=True, blank=True)
    # PROTECT: a connection in use cannot be deleted (the API answers 409).
    storage_connection = models.ForeignKey(
        "storage.StorageConnection", on_delete=models.PROTECT, null=True, blank=True, related_name="companies"
    )
    storage_path = CanonicalPathField(max_length=1024, null=True, blank=True)
    subscription_tier = models.CharField(
        max_length=32, choices=SubscriptionTier.choices, default=SubscriptionTier.BASIC
    )
    storage_quota_gb = models.PositiveIntegerField(default=10)
    storage_used_bytes = models.PositiveBigIntegerField(default=0)
    projects_limit = models.PositiveIntegerField(default=10)
    is_active = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, editable=False)
    subscription_expires_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True, validators=[storable_json_object])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "companies"
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="company_name_unique_ignoring_case",
                violation_error_message="A company with this name already exists (names are compared ignoring case).",
            ),
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_company"),
            models.CheckConstraint(
                condition=Q(storage_path__isnull=True) | canonical_path_q("storage_path"),
                name="company_storage_path_canonical",
            ),
        ]
        indexes = [models.Index(fields=["-created_at", "-id"], name="company_newest_first")]

    def __str__(self) -> str:
        return self.name


class CompanyMembership(models.Model):
    """A non-staff user's company: a user belongs to at most one."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="company_membership")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "member"

    def __str__(self) -> str:
        return f"{self.user} @ {self.company}"
