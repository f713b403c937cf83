from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from executions import lifecycle
        from notifications import services

        # The row is written with the outcome and sent after commit (the handler registers the send).
        lifecycle.subscribe(services.notification_create_for_outcome, events=services.OUTCOME_EVENTS,
                            phase="transaction", interested=services.notification_may_follow)
