from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from executions import lifecycle
        from webhooks import services

        # Deliveries are rows written with the status change that causes them; they queue themselves on commit.
        lifecycle.subscribe(services.deliveries_create_for_event, events=services.PUBLIC_EVENTS, phase="transaction")
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from webhooks.models import WebhookEndpoint

        # Each process keeps a copy of the active endpoints and their owners (heptora.local_cache): any change
        # to either (an owner deactivated, too) makes every process read them again.
        for model in (WebhookEndpoint, get_user_model()):
            post_save.connect(_endpoints_changed, sender=model, dispatch_uid=f"webhooks-changed-save-{model.__name__}")
            post_delete.connect(_endpoints_changed, sender=model,
                                dispatch_uid=f"webhooks-changed-del-{model.__name__}")


def _endpoints_changed(sender: type, update_fields: frozenset[str] | None = None, **kwargs: object) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    from heptora.local_cache import WEBHOOK_ENDPOINTS

    WEBHOOK_ENDPOINTS.changed()
