from django.apps import AppConfig


class FormsAppConfig(AppConfig):
    name = "forms_app"
    verbose_name = "Forms and parameter definitions"

    def ready(self) -> None:
        from executions import hooks
        from forms_app.parameters import definition

        hooks.register_parameter_definition(definition)
