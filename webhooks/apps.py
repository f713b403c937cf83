from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from executions import lifecycle
        from webhooks import services

        # Deliveries are rows written with the status change that causes them; they queue themselves on commit.
        lifecycle.subscribe(services.deliveries_create_for_event, events=services.PUBLIC_EVENTS, phase="transaction",
                            interested=services.deliveries_may_follow)
        from django.contrib.auth import get_user_model

        from heptora.local_cache import WEBHOOK_ENDPOINTS
        from webhooks.models import WebhookEndpoint

        # Each process keeps a copy of the active endpoints and their owners (heptora.local_cache): any change
        # to either (an owner deactivated, too) makes every process read them again.
        WEBHOOK_ENDPOINTS.renew_on_change(WebhookEndpoint, get_user_model())
