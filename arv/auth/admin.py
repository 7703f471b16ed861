from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from arv.auth.models import ApiToken
from arv.auth.tokens import token_issue, token_revoke


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["key_id", "user", "name", "created_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["key_id", "user__username", "name"]
    list_select_related = ["user"]
    readonly_fields = ["key_id", "created_at", "revoked_at"]
    fields = ["user", "name", "key_id", "created_at", "revoked_at"]
    autocomplete_fields = ["user"]
    actions = ["revoke"]

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        # The secret is shown once, here, and never stored.
        token, raw = token_issue(user=obj.user, name=obj.name)
        obj.pk, obj.key_id, obj.created_at = token.pk, token.key_id, token.created_at
        self.message_user(request, f"New API token (copy it now, it is not shown again): {raw}", messages.WARNING)

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token)
        self.message_user(request, "Revoked.")
