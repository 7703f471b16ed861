from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Prometheus metrics and `manage.py dbstatus` (the pools of the running servers, read from
    their metrics files). The pool (arv.db) counts; this app reads the counts, never the reverse."""

    name = "arv.metrics"
    label = "arv_metrics"
    verbose_name = "Metrics"
