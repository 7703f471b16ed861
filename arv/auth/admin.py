from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from arv.auth.models import ApiToken
from arv.auth.tokens import token_issue, token_revoke

# The new token's secret waits in the (server-side) session for the one page that shows it:
# never in a cookie (the messages cookie is signed, not encrypted), never in a URL.
NEW_TOKEN_SESSION_KEY = "arv_auth.new_api_token"


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

    def get_urls(self):
        created = self.admin_site.admin_view(self.created_view)  # staff only, Cache-Control: no-store
        return [path("<int:pk>/created/", created, name="arv_auth_apitoken_created"), *super().get_urls()]

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        # The secret is never stored: only its hash. It is shown once, on created_view's page.
        token, raw = token_issue(user=obj.user, name=obj.name)
        obj.pk, obj.key_id, obj.created_at = token.pk, token.key_id, token.created_at
        request.session[NEW_TOKEN_SESSION_KEY] = {"pk": token.pk, "secret": raw}

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:arv_auth_apitoken_created", args=[obj.pk]))

    def created_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The new token, once: the session forgets it as the page is made, so a reload shows nothing."""
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        token = get_object_or_404(ApiToken.objects.select_related("user"), pk=pk)
        new = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
        if not new or new["pk"] != token.pk:
            self.message_user(request, f"The secret of token {token.key_id} was shown once; it cannot be shown again.")
            return HttpResponseRedirect(reverse("admin:arv_auth_apitoken_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "New API token",
            "api_token": token,
            "secret": new["secret"],
        }
        return TemplateResponse(request, "admin/arv_auth/apitoken/created.html", context)

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token)
        self.message_user(request, "Revoked.")
