from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Processes and executions"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from executions import registry
        from executions.models import Process
        from heptora.local_cache import DEFINITIONS

        registry.autodiscover()
        # Keep the Process table in step with the code on every migrate, so a fresh install lists the
        # shipped processes without an extra command.
        post_migrate.connect(_sync_after_migrate, sender=self)
        # Every start reads its process row from a process-local copy (heptora.local_cache): any change to
        # a process (pause, resume, admin edit) makes every web and worker process read it again.
        DEFINITIONS.renew_on_change(Process)


def _sync_after_migrate(**kwargs: object) -> None:
    from executions.services import processes_sync

    processes_sync()
