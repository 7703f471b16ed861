from bench.contenders.sync_gthread import views
from bench.contenders.urls import api_urls

urlpatterns = api_urls(views)
