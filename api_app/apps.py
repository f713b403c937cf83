from django.apps import AppConfig


class ApiAppConfig(AppConfig):
    name = "api_app"
    verbose_name = "REST API"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from api_app import schema  # noqa: F401  (registers the OpenAPI authentication extension)
        from api_app.models import ApiKey
        from heptora.local_cache import API_KEYS

        # Web processes keep local copies of key rows and their users (api_keys "Cache"): any change to
        # either makes them read again.
        API_KEYS.renew_on_change(ApiKey, get_user_model())
