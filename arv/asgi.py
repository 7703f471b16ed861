"""The ASGI entry: `uvicorn arv.asgi:application`.

Sets Django up and builds the one request pipeline (arv.pipeline), which every
HTTP request goes through, and which answers the lifespan protocol.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arv.settings")
django.setup(set_prefix=False)

from arv.pipeline import Pipeline  # noqa: E402  (needs Django set up)

application = Pipeline()
