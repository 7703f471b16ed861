"""The ASGI entry: `uvicorn arv.asgi:application`.

Sets Django up and builds the one request pipeline (arv.pipeline), which every
HTTP request goes through, and which answers the lifespan protocol. With metrics on
(ARV_METRICS_TOKEN), first picks the directory where this server's processes keep
them (arv.metrics.directory), before prometheus_client loads.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arv.settings")

from django.conf import settings  # noqa: E402

from arv.metrics.directory import use_server_dir  # noqa: E402  (no prometheus_client yet)

if settings.METRICS_TOKEN:  # reading a setting loads the settings (and the .env file)
    use_server_dir()
django.setup(set_prefix=False)

from arv.pipeline import Pipeline, spare_django_request_upkeep  # noqa: E402  (needs Django set up)

spare_django_request_upkeep()  # done by each unit of work on its worker instead (see there)
application = Pipeline()
