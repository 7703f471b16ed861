"""Settings for the tests: the product's settings plus what only tests need.

pytest loads it (pytest.ini), and so does every server a test starts that serves the
test-only views (testing.servers: DJANGO_SETTINGS_MODULE=testing.settings). The product's
settings (arv.settings) have no way to mount those views.
"""

from arv.settings import *  # noqa: F403  (the product's settings, unchanged)

# ARV's URLs plus test-only views written as a contributor would (testing.views).
ROOT_URLCONF = "testing.urls"
