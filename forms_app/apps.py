from __future__ import annotations

from django.apps import AppConfig


class FormsAppConfig(AppConfig):
    name = "forms_app"
    verbose_name = "Forms and parameter definitions"

    def ready(self) -> None:
        from executions import hooks
        from forms_app.models import FormDefinition, FormField
        from forms_app.parameters import definition
        from heptora.local_cache import DEFINITIONS

        hooks.register_parameter_definition(definition)
        # Each process keeps local copies of the compiled definitions for the start's path: any change to a
        # form or one of its fields (admin, import, a shell) makes every process read them again.
        DEFINITIONS.renew_on_change(FormDefinition, FormField)
