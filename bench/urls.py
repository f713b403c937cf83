"""Benchmark-only routes; heptora/urls.py mounts them at /bench/ only when HEPTORA_BENCH_ENDPOINTS=1."""

from django.urls import path

from bench import views

app_name = "bench"

urlpatterns = [
    path("bare", views.BareView.as_view(), name="bare"),
    path("nopublish/processes/<slug:process_id>/execute", views.NoPublishExecuteView.as_view(),
         name="execute-nopublish"),
]
