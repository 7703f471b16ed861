from bench.contenders.async_pool import views
from bench.contenders.urls import api_urls

urlpatterns = api_urls(views)
