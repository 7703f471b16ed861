from django.apps import AppConfig


class ApiAuthConfig(AppConfig):
    name = "arv.auth"
    label = "arv_auth"
    verbose_name = "API access"
