from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from arv.db.queries import PageOfPaginator, plan_for_each_search
from companies.models import Company, CompanyMembership
from companies.selectors import with_folders_count
from companies.services import company_slug
from storage.models import StorageFolder


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
class CompanyAdmin(admin.ModelAdmin):
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
        return with_folders_count(super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Company], search_term: str):
        if search_term:
            plan_for_each_search()
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="folders", ordering="folders_count")
    def folder_count(self, company: Company) -> int:
        return company.folders_count

    def save_model(self, request: HttpRequest, obj: Company, form, change: bool) -> None:
        if not change or "name" in form.changed_data:
            obj.slug = company_slug(obj.name)
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj: Company | None = None) -> bool:
        return not (obj and obj.is_default) and super().has_delete_permission(request, obj)


@admin.register(CompanyMembership)
class CompanyMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "company", "created_at"]
    search_fields = ["user__username", "company__name"]
    list_select_related = ["user", "company"]
    autocomplete_fields = ["user", "company"]
    readonly_fields = ["created_at"]
