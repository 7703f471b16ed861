from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from arv.db.transaction import outside_result
from storage.models import StorageConnection, StorageFolder
from storage.services import check_target, check_targets, connection_clear_other_defaults, connection_record_test


class NoCredentialsLookups:
    """ModelAdmin mixin: no changelist filter may reach a credentials field, on this model or
    through a relation (`?credentials__secret_key__startswith=...` was an oracle for the
    secret, one character at a time). Django answers a refused lookup with 400."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if "credentials" in lookup.split(LOOKUP_SEP):
            return False
        return super().lookup_allowed(lookup, value, request)


class WriteOnlyJSONField(forms.JSONField):
    def prepare_value(self, value):
        # Write-only: never rendered, not even what was typed into a form sent back with errors.
        return ""


class StorageConnectionForm(forms.ModelForm):
    """Credentials are write-only: the form starts empty and an empty field keeps the stored value."""

    credentials = WriteOnlyJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="JSON object. Write-only: leave empty to keep the stored credentials.",
    )

    class Meta:
        model = StorageConnection
        fields = ["name", "provider", "base_path", "credentials", "is_default", "is_active", "metadata"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.initial["credentials"] = None

    def clean_credentials(self) -> dict:
        value = self.cleaned_data.get("credentials")
        if value in (None, "", {}):
            return self.instance.credentials if self.instance.pk else {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Credentials must be a JSON object.")
        return value


@admin.register(StorageConnection)
@method_decorator(sensitive_post_parameters("credentials"), name="changeform_view")  # kept out of error reports
class StorageConnectionAdmin(NoCredentialsLookups, admin.ModelAdmin):
    form = StorageConnectionForm
    list_display = [
        "name",
        "provider",
        "base_path",
        "is_default",
        "is_active",
        "test_status",
        "last_tested_at",
        "companies_count",
    ]
    list_filter = ["provider", "is_default", "is_active", "test_status"]
    search_fields = ["name", "base_path"]
    readonly_fields = ["last_tested_at", "test_status", "test_error", "created_at", "updated_at"]
    ordering = ["name"]
    actions = ["test_connections"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[StorageConnection]:
        return super().get_queryset(request).annotate(companies_count=Count("companies"))

    @admin.display(description="companies", ordering="companies_count")
    def companies_count(self, connection: StorageConnection) -> int:
        return connection.companies_count

    def save_model(self, request: HttpRequest, obj: StorageConnection, form, change: bool) -> None:
        if obj.is_default:
            connection_clear_other_defaults(obj.pk)
        super().save_model(request, obj, form, change)

    @admin.action(description="Test selected storage connections", permissions=["change"])  # it writes a probe
    def test_connections(self, request: HttpRequest, queryset: QuerySet[StorageConnection]) -> None:
        connections = list(queryset.order_by("pk"))
        # Checked holding no database worker: the pipeline runs the checks off the worker,
        # then this request again, where the same call returns their outcomes.
        outcomes = outside_result(check_targets, [check_target(connection) for connection in connections])
        for connection, outcome in zip(connections, outcomes, strict=True):
            result = connection_record_test(user=request.user, connection_id=connection.pk, outcome=outcome)
            level = messages.SUCCESS if result.status == "success" else messages.ERROR
            self.message_user(request, f"{connection.name}: {result.message}", level)


@admin.register(StorageFolder)
class StorageFolderAdmin(NoCredentialsLookups, admin.ModelAdmin):
    list_display = ["path", "name", "company", "folder_type", "files_count", "total_size_bytes", "updated_at"]
    list_filter = ["folder_type"]
    search_fields = ["path", "name", "company__name"]
    list_select_related = ["company"]
    autocomplete_fields = ["company"]
    readonly_fields = ["created_at", "updated_at"]
