"""The deployments a Django user would otherwise pick, measured beside ARV by bench/run.

Each is ARV's own models, selectors, services, token check and schemas behind the same
endpoints (GET /api/companies/{id}, GET and POST /api/companies), written the textbook way:

    sync_gthread/  plain sync views under gunicorn's gthread workers, CONN_MAX_AGE,
                   CONN_HEALTH_CHECKS and ATOMIC_REQUESTS (one transaction per request)
    async_pool/    async views on Django's async ORM, Django's psycopg pool (CONN_MAX_AGE 0),
                   under uvicorn; the create runs ARV's service in one transaction.atomic
                   through sync_to_async, as Django's async documentation recommends

Both import ARV's settings for the apps and templates and replace what a deployment picks:
the database entry, the middleware (SecurityMiddleware and CommonMiddleware: an API with
bearer tokens needs no sessions or CSRF), the URLs.
"""
