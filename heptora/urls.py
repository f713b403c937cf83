from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from forms_app import views as forms_views


def health(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and the start script: the process answers and the database is reachable."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


admin.site.site_header = "Heptora"
admin.site.site_title = "Heptora admin"
admin.site.index_title = "Processes, executions and access"

urlpatterns = [
    path("", forms_views.home, name="home"),
    path("accounts/login/", forms_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", forms_views.LogoutView.as_view(), name="logout"),
    path("", include("forms_app.urls")),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("api/v1/", include("api_app.urls")),
    path("chat/", include("chat_app.urls")),
    path("approvals/", include("approvals.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="api_app/redoc.html"),
         name="redoc"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]

if settings.HEPTORA_BENCH_ENDPOINTS:  # benchmark only (bench/run.sh); kept out of the OpenAPI schema
    urlpatterns.append(path("bench/", include("bench.urls")))
