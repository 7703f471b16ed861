"""The Django deployments measured beside ARV by bench/run, behind the same endpoints
(GET /api/companies/{id}, GET and POST /api/companies) and JSON shapes (../shared/API.md).

The alternatives, what a Django user who does not pick ARV writes (textbook.py: their own
querysets, django-ninja schemas and token lookup; only ARV's models, so the same tables and
indexes):

    textbook_sync/   django-ninja sync operations under gunicorn's gthread workers, CONN_MAX_AGE,
                     CONN_HEALTH_CHECKS and ATOMIC_REQUESTS (one transaction per request)
    textbook_async/  django-ninja async operations on Django's async ORM (aget, acount, async
                     iteration) with Django's psycopg pool (CONN_MAX_AGE 0), under uvicorn

The diagnostic rows, "ARV's queries on a textbook server": ARV's own models, selectors,
services, token check and schemas on the same two servers. They isolate the serving stack
and are shown beside the others, but do not count in bench/run's "best":

    sync_gthread/  plain sync views, gunicorn gthread, CONN_MAX_AGE, CONN_HEALTH_CHECKS,
                   ATOMIC_REQUESTS
    async_pool/    async views on Django's async ORM and pool under uvicorn; the create runs
                   ARV's service in one transaction.atomic through sync_to_async, as Django's
                   async documentation recommends

All import ARV's settings for the apps and templates and replace what a deployment picks:
the database entry, the middleware (SecurityMiddleware and CommonMiddleware: an API with
bearer tokens needs no sessions or CSRF), the URLs.
"""
