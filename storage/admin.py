from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import URLPattern, path
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from arv.db.transaction import run_db, run_outside_db
from storage.models import StorageConnection, StorageFolder
from storage.providers import Outcome
from storage.services import (
    CheckTarget,
    check_target,
    check_targets,
    connection_clear_other_defaults,
    connection_record_test,
)

# The changelist's action that StorageConnectionAdmin.check_connections serves (async).
TEST_ACTION = "test_connections"


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

    @admin.action(description="Test selected storage connections", permissions=["change"])
    def test_connections(self, request: HttpRequest, queryset: QuerySet[StorageConnection]) -> None:
        """The action's entry in the changelist's menu. Choosing it is served by
        check_connections (see get_urls), never by Django's action dispatch."""
        raise RuntimeError("served by StorageConnectionAdmin.check_connections")

    def get_urls(self) -> list[URLPattern]:
        """The changelist's URL serves an async view: the "Test selected storage connections"
        action it runs itself (check_connections: no database worker held while the checks
        wait), anything else it hands to Django's own changelist view in one database trip.
        An async view, so the pipeline runs it on the event loop (arv.pipeline.SiteHandler)."""
        urls = super().get_urls()
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        changelist = next(url for url in urls if url.name == name)

        @never_cache
        async def changelist_or_check(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
            if request.method == "POST" and request.POST.get("action") == TEST_ACTION:
                response = await self.check_connections(request)
                if response is not None:
                    return response
            return await run_db(changelist.callback, request, *args, **kwargs)

        return [path("", changelist_or_check, name=name), *(url for url in urls if url is not changelist)]

    async def check_connections(self, request: HttpRequest) -> HttpResponseBase | None:
        """The action, as the API's check does it: read what the checks need (one short unit of
        work), check holding no worker (run_outside_db), store each outcome (a second unit).
        None when Django's changelist view answers instead (not logged in, nothing selected)."""
        targets = await run_db(self.selected_targets, request)
        if targets is None:
            return None
        outcomes = await run_outside_db(check_targets, [target for _, _, target in targets])
        await run_db(self.record_outcomes, request, targets, outcomes)
        return HttpResponseRedirect(request.get_full_path())

    def selected_targets(self, request: HttpRequest) -> list[tuple[int, str, CheckTarget]] | None:
        """(pk, name, what its check needs) of each selected connection, as Django's action
        dispatch selects them (the ticked rows, or all the changelist's filters match)."""
        if not self.admin_site.has_permission(request):
            return None  # Django's changelist view sends the visitor to the login page
        if not self.has_change_permission(request):
            raise PermissionDenied
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        select_across = request.POST.get("select_across") == "1"
        if not selected and not select_across:
            return None  # Django's changelist view says that items must be selected
        queryset = self.get_changelist_instance(request).get_queryset(request)
        if not select_across:
            queryset = queryset.filter(pk__in=selected)
        return [(connection.pk, connection.name, check_target(connection)) for connection in queryset.order_by("pk")]

    def record_outcomes(
        self, request: HttpRequest, targets: list[tuple[int, str, CheckTarget]], outcomes: list[Outcome]
    ) -> None:
        """Each outcome stored on its connection, and one message per connection."""
        for (pk, name, _), outcome in zip(targets, outcomes, strict=True):
            result = connection_record_test(user=request.user, connection_id=pk, outcome=outcome)
            level = messages.SUCCESS if result.status == "success" else messages.ERROR
            self.message_user(request, f"{name}: {result.message}", level)


@admin.register(StorageFolder)
class StorageFolderAdmin(NoCredentialsLookups, admin.ModelAdmin):
    list_display = ["path", "name", "company", "folder_type", "files_count", "total_size_bytes", "updated_at"]
    list_filter = ["folder_type"]
    search_fields = ["path", "name", "company__name"]
    list_select_related = ["company"]
    autocomplete_fields = ["company"]
    readonly_fields = ["created_at", "updated_at"]
