from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Processes and executions"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from executions import registry

        registry.autodiscover()
        # Keep the Process table in step with the code on every migrate, so a fresh install lists the
        # shipped processes without an extra command.
        post_migrate.connect(_sync_after_migrate, sender=self)


def _sync_after_migrate(**kwargs: object) -> None:
    from executions.services import processes_sync

    processes_sync()
