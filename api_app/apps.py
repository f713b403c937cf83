from django.apps import AppConfig


class ApiAppConfig(AppConfig):
    name = "api_app"
    verbose_name = "REST API"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from api_app import schema  # noqa: F401  (registers the OpenAPI authentication extension)
        from api_app.models import ApiKey

        # Web processes keep local copies of key rows and their users (api_keys "Cache"): any change to
        # either makes them read again. Logins only touch last_login, which no key check reads.
        for model in (ApiKey, get_user_model()):
            post_save.connect(_keys_changed, sender=model, dispatch_uid=f"api-keys-changed-save-{model.__name__}")
            post_delete.connect(_keys_changed, sender=model, dispatch_uid=f"api-keys-changed-del-{model.__name__}")


def _keys_changed(sender: type, update_fields: frozenset[str] | None = None, **kwargs: object) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    from heptora.local_cache import API_KEYS

    API_KEYS.changed()
