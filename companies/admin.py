from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from arv.db.queries import PageOfPaginator, plan_for_each_search
from companies.models import Company, CompanyMembership
from companies.selectors import with_folders_count
from companies.services import company_slug
from storage.admin import NoCredentialsLookups
from storage.models import StorageFolder


class CompanyForm(forms.ModelForm):
    """The slug is derived from the name (read-only here), so a name whose slug another
    company has is this form's error, as the API's 409 is."""

    def clean(self) -> dict:
        cleaned = super().clean()
        name = cleaned.get("name")
        if name and (self.instance.pk is None or "name" in self.changed_data):
            slug = company_slug(name)
            if Company.objects.filter(slug=slug).exclude(pk=self.instance.pk).exists():
                self.add_error("name", f"Another company already has the slug “{slug}” this name gives.")
            self.instance.slug = slug
        return cleaned


class StorageFolderInline(admin.TabularInline):
    model = StorageFolder
    extra = 1
    fields = ["name", "path", "folder_type", "files_count", "total_size_bytes", "updated_at"]
    readonly_fields = ["updated_at"]


class CompanyMembershipInline(admin.TabularInline):
    model = CompanyMembership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["created_at"]


@admin.register(Company)
class CompanyAdmin(NoCredentialsLookups, admin.ModelAdmin):
    form = CompanyForm
    list_display = [
        "name",
        "slug",
        "is_active",
        "subscription_tier",
        "storage_connection",
        "folder_count",
        "is_default",
        "updated_at",
    ]
    list_filter = ["is_active", "subscription_tier", "is_default", "storage_connection__provider"]
    # slug by prefix (its B-tree): every column searched has an index, so a search stays an index scan
    search_fields = ["name", "contact_email", "slug__startswith"]
    list_select_related = ["storage_connection"]
    readonly_fields = ["slug", "is_default", "storage_used_bytes", "created_at", "updated_at"]
    ordering = ["-created_at", "-id"]
    paginator = PageOfPaginator  # folder counts for the page's rows only, not for every row before it
    inlines = [StorageFolderInline, CompanyMembershipInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active", "is_default"]}),
        ("Contact", {"fields": ["contact_email", "contact_phone", "telegram_chat_id"]}),
        ("Storage", {"fields": ["storage_connection", "storage_path", "storage_quota_gb", "storage_used_bytes"]}),
        ("Subscription", {"fields": ["subscription_tier", "subscription_expires_at", "projects_limit"]}),
        ("Other", {"fields": ["notes", "metadata", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Company]:
        # The connection's credentials are never shown here: not read, not decrypted.
        return with_folders_count(super().get_queryset(request)).defer("storage_connection__credentials")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Company], search_term: str):
        if search_term:
            plan_for_each_search()
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="folders", ordering="folders_count")
    def folder_count(self, company: Company) -> int:
        return company.folders_count

    def has_delete_permission(self, request: HttpRequest, obj: Company | None = None) -> bool:
        return not (obj and obj.is_default) and super().has_delete_permission(request, obj)


@admin.register(CompanyMembership)
class CompanyMembershipAdmin(NoCredentialsLookups, admin.ModelAdmin):
    list_display = ["user", "company", "created_at"]
    search_fields = ["user__username", "company__name"]
    list_select_related = ["user", "company"]
    autocomplete_fields = ["user", "company"]
    readonly_fields = ["created_at"]
