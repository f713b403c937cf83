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
        _renew_grants_on_change()


def _renew_grants_on_change() -> None:
    """The "yes" answers of executions.access are local copies: any write that could take one back (or give
    one) renews them everywhere."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.db.models.signals import post_delete, post_save
    from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

    from executions.models import Process
    from heptora.local_cache import GRANTS

    user = get_user_model()
    GRANTS.renew_on_change(user, Group, Permission, Process)
    # guardian keeps every model's object permissions in the same tables (approval requests too): only those
    # on processes count here.
    for model in {get_user_obj_perms_model(Process), get_group_obj_perms_model(Process)}:
        post_save.connect(_process_permission_changed, sender=model, dispatch_uid=f"grants-{model._meta.label}-save")
        post_delete.connect(_process_permission_changed, sender=model,
                            dispatch_uid=f"grants-{model._meta.label}-delete")
    memberships = [field.remote_field.through for field in (
        user._meta.get_field("groups"), user._meta.get_field("user_permissions"), Group._meta.get_field("permissions"))]
    # user.groups.remove(…), group.permissions.clear(), the admin's forms. (Django sends no signal for rows
    # of these tables written as rows or in SQL: see docs/deploy.md, "Changes made outside Heptora".)
    GRANTS.renew_on_m2m_change(*memberships)


def _sync_after_migrate(**kwargs: object) -> None:
    from executions.services import processes_sync

    processes_sync()


def _process_permission_changed(instance: object, **kwargs: object) -> None:
    from django.contrib.contenttypes.models import ContentType

    from executions.models import Process
    from heptora.local_cache import GRANTS

    if getattr(instance, "content_type_id", None) in (None, ContentType.objects.get_for_model(Process).pk):
        GRANTS.changed()
