from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import patch_cache_control

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
        # Only the secret's hash is stored; the secret itself lives on this request alone and
        # is shown once, in the answer to this POST (response_add): never in the session
        # (django_session is signed, not encrypted), a cookie, a URL or a redirect.
        token, raw = token_issue(user=obj.user, name=obj.name)
        obj.pk, obj.key_id, obj.created_at = token.pk, token.key_id, token.created_at
        obj.new_secret = raw

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "New API token",
            "api_token": obj,
            "secret": obj.new_secret,
        }
        response = TemplateResponse(request, "admin/arv_auth/apitoken/created.html", context)
        patch_cache_control(response, no_store=True, private=True)  # admin_view's never_cache says so too
        return response

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token)
        self.message_user(request, "Revoked.")
