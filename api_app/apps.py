from django.apps import AppConfig


class ApiAppConfig(AppConfig):
    name = "api_app"
    verbose_name = "REST API"

    def ready(self) -> None:
        from api_app import schema  # noqa: F401  (registers the OpenAPI authentication extension)
