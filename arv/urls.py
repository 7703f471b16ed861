from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from arv.api import api

admin.site.site_header = "ARV administration"
admin.site.site_title = "ARV"

urlpatterns = [
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),  # under --root-path too
]
