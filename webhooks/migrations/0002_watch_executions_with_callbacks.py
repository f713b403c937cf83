from django.db import migrations


def watch_executions_with_callbacks(apps, schema_editor):
    """Executions that had a callbackUrl before ``Execution.watched`` existed are watched: the webhook
    listener asks for callbacks only on watched executions (an approval may keep one waiting for days)."""
    Execution = apps.get_model("executions", "Execution")
    ExecutionCallback = apps.get_model("webhooks", "ExecutionCallback")
    Execution.objects.filter(pk__in=ExecutionCallback.objects.values("execution_id")).update(watched=True)


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0004_execution_watched"),
        ("webhooks", "0001_initial"),
    ]

    operations = [migrations.RunPython(watch_executions_with_callbacks, migrations.RunPython.noop)]
