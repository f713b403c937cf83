from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from executions import lifecycle
        from webhooks import services

        # Deliveries are rows written with the status change that causes them; they queue themselves on commit.
        lifecycle.subscribe(services.deliveries_create_for_event, events=services.PUBLIC_EVENTS, phase="transaction")
