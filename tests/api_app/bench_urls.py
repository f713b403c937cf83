"""The project's routes plus the benchmark's, as heptora/urls.py mounts them with HEPTORA_BENCH_ENDPOINTS=1."""

from django.urls import include, path

from heptora.urls import urlpatterns as project_urlpatterns

urlpatterns = [*project_urlpatterns, path("bench/", include("bench.urls"))]
