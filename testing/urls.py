"""ARV's URLs plus test-only views (testing.views): ROOT_URLCONF of testing.settings only."""

from django.urls import path

from arv.urls import urlpatterns as product_urlpatterns
from testing import views

urlpatterns = [
    path("api/test/async-orm", views.async_orm),
    path("api/test/outside-worker", views.outside_worker),
    path("api/test/lock-pair", views.async_lock_pair),
    path("api/test/broken-query", views.broken_query),
    path("api/test/threads", views.threads),
    path("api/test/interpreter", views.interpreter),
    path("api/test/request-signals", views.request_signals),
    path("site-test/write-then-fail", views.sync_write_then_fail),
    path("site-test/lock-pair", views.sync_lock_pair),
    path("site-test/slow", views.sync_slow),
    path("api/test/outside-db", views.outside_db),
    path("api/test/read-where", views.read_where),
    path("api/test/loop-read-then-write", views.loop_read_then_write),
    path("api/test/insert-company", views.insert_company),
    path("api/test/read-on-primary", views.read_on_primary),
    path("site-test/read-only-once", views.read_only_once),
    path("site-test/lost-at-commit", views.lost_at_commit),
    path("site-test/runs-of", views.runs_of),
    *product_urlpatterns,
]
