from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db import transaction
from django.db.models.signals import post_delete, post_save


class FormsAppConfig(AppConfig):
    name = "forms_app"
    verbose_name = "Forms and parameter definitions"

    def ready(self) -> None:
        from executions import hooks
        from forms_app.models import FormDefinition, FormField
        from forms_app.parameters import definition

        hooks.register_parameter_definition(definition)
        # The compiled definitions are cached for the API's hot path: any change to a form or one of its
        # fields (admin, import, a shell) forgets them, now and again after commit (a reader may have
        # cached the old rows in between).
        for model in (FormDefinition, FormField):
            post_save.connect(_forget_cached_fields, sender=model, dispatch_uid=f"forms_cache_save_{model.__name__}")
            post_delete.connect(_forget_cached_fields, sender=model,
                                dispatch_uid=f"forms_cache_delete_{model.__name__}")


def _forget_cached_fields(sender: Any, instance: Any, **kwargs: Any) -> None:
    from forms_app.parameters import fields_cache_clear

    fields_cache_clear()
    transaction.on_commit(fields_cache_clear)
