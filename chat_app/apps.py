from django.apps import AppConfig


class ChatAppConfig(AppConfig):
    name = "chat_app"
    verbose_name = "Chat"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from chat_app import listeners
        from executions import lifecycle

        lifecycle.subscribe(listeners.execution_update_post, events=listeners.EVENTS)
        # The demo processes' phrases and examples exist from the first migrate (and after a test flush).
        post_migrate.connect(_seed_after_migrate, sender=self)


def _seed_after_migrate(**kwargs: object) -> None:
    from chat_app.demo import chat_phrases_seed

    chat_phrases_seed()
